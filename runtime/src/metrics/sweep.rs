//! AIPerf 0.13's sweep-line metrics: quantities over the time of a phase rather than over
//! its requests. How many requests were in flight, in prefill (start to first token) and
//! in decode (first token to end); the token rates of prefill (input tokens spread evenly
//! over a request's prefill), decode (output tokens after the first spread over its decode,
//! or over each gap between content chunks when the chunks are known) and both; those rates
//! per request in that stage; and the tokens a server holds for the requests in flight.
//!
//! Each is a step function of time built by sorting every request's start and end events
//! and summing their contributions. Its statistics over a window are time-weighted: the
//! average and deviation weight each value by how long it was held, min and max are over
//! the values held for some time, and a percentile is the first value, in ascending order,
//! by which the cumulative share of time reaches it. The `active_*` variants leave out the
//! time when nothing was in the stage the rate belongs to.
//!
//! Events are sorted as AIPerf sorts them (by instant, then decreases before increases,
//! then AIPerf's concatenation order), and a running sum within a billionth of the curve's
//! largest magnitude is snapped to zero, as AIPerf snaps its floating-point residue, so the
//! results agree with AIPerf's to rounding (see `runtime/tests/sweep_oracle.py`).
//!
//! Memory: [`SweepColumns`] keeps 40 bytes a request for the whole phase. Summarizing
//! builds two curves at a time, each a sorted list of 4-byte event ids (2 to 4 events a
//! request), and the segments of one window, 16 bytes each (about one per event), plus 16
//! bytes an event for the curve being sorted: some 140 MB at peak for a million requests
//! (4.8 s on a 2-core VM). With chunk gaps known, decode throughput and tokens in flight
//! have events per chunk instead, plus 20 bytes a chunk of chunk instants, so their cost
//! grows with the chunks streamed, as AIPerf's does.

use std::cmp::Ordering;

use super::catalogue;
use crate::results::{MetricResult, Stats};

const NS_PER_S: f64 = 1e9;
/// Rows per storage chunk: a long run never copies its columns to grow them.
const CHUNK: usize = 1 << 14;
/// An event id is its kind (AIPerf's position among the arrays it concatenates) in the
/// top bits and the request or chunk it belongs to below: 2^29 of either per phase.
const KIND_SHIFT: u32 = 29;
const MAX_INDEX: usize = 1 << KIND_SHIFT;
const NO_NS: u64 = u64::MAX;
const NO_TOKENS: u32 = u32::MAX;

/// One request's instants (ns on one clock) and token counts.
#[derive(Debug, Clone, Copy)]
struct Row {
    start: u64,
    /// The first content response (AIPerf's generation start); [`NO_NS`] when the request
    /// has no time to first token (not streamed, failed).
    gen: u64,
    end: u64,
    isl: u32,
    osl: u32,
    /// How many chunk gaps (inter-chunk latencies) the request has.
    gaps: u32,
}

/// The per-request inputs of the sweep for every request of a phase, in arrival order.
#[derive(Debug, Clone, Default)]
pub struct SweepColumns {
    rows: Vec<Vec<Row>>,
    len: usize,
}

fn tokens(v: Option<f64>) -> u32 {
    // Token counts are whole and far below u32::MAX; anything else is left out.
    match v {
        Some(v) if v.is_finite() && v >= 0.0 && v < f64::from(NO_TOKENS) => v.round() as u32,
        _ => NO_TOKENS,
    }
}

impl SweepColumns {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds a request that went out at `start` and ended at `end`; `gen` is its first
    /// content response when it has a time to first token, `gaps` the number of chunk
    /// gaps it contributed to the phase's inter-chunk latencies.
    pub fn push(
        &mut self,
        start: u64,
        gen: Option<u64>,
        end: u64,
        isl: Option<f64>,
        osl: Option<f64>,
        gaps: usize,
    ) {
        let row = Row {
            start,
            gen: gen.filter(|&g| g != NO_NS).unwrap_or(NO_NS),
            end,
            isl: tokens(isl),
            osl: tokens(osl),
            gaps: u32::try_from(gaps).unwrap_or(u32::MAX),
        };
        match self.rows.last_mut() {
            Some(last) if last.len() < CHUNK => last.push(row),
            _ => {
                let mut chunk = Vec::with_capacity(if self.len == 0 { 64 } else { CHUNK });
                chunk.push(row);
                self.rows.push(chunk);
            }
        }
        self.len += 1;
    }

    /// Moves every request of `other` after this one's.
    pub fn append(&mut self, other: &mut SweepColumns) {
        for chunk in std::mem::take(&mut other.rows) {
            for row in chunk {
                self.push_row(row);
            }
        }
        other.len = 0;
    }

    fn push_row(&mut self, r: Row) {
        let gen = (r.gen != NO_NS).then_some(r.gen);
        let tok = |t: u32| (t != NO_TOKENS).then_some(f64::from(t));
        self.push(r.start, gen, r.end, tok(r.isl), tok(r.osl), r.gaps as usize);
    }

    fn row(&self, i: usize) -> &Row {
        &self.rows[i / CHUNK][i % CHUNK]
    }

    fn iter(&self) -> impl Iterator<Item = &Row> + '_ {
        self.rows.iter().flatten()
    }

    /// The phase's extent: its first start and last end, the window of its summary.
    pub fn span(&self) -> Option<(u64, u64)> {
        let start = self.iter().map(|r| r.start).min()?;
        let end = self.iter().map(|r| r.end).max()?;
        Some((start, end.max(start)))
    }
}

/// The columns read as AIPerf's float arrays: NaN where a value is missing.
#[derive(Clone, Copy)]
struct Cols<'a>(&'a SweepColumns);

fn ns(v: u64) -> f64 {
    if v == NO_NS {
        f64::NAN
    } else {
        v as f64
    }
}

fn count(t: u32) -> f64 {
    if t == NO_TOKENS {
        f64::NAN
    } else {
        f64::from(t)
    }
}

/// An instant of a request.
#[derive(Clone, Copy)]
enum At {
    Start,
    Gen,
    End,
}

impl Cols<'_> {
    fn len(&self) -> usize {
        self.0.len
    }

    fn at(&self, i: usize, at: At) -> f64 {
        let r = self.0.row(i);
        match at {
            At::Start => ns(r.start),
            At::Gen => ns(r.gen),
            At::End => ns(r.end),
        }
    }

    fn start(&self, i: usize) -> f64 {
        self.at(i, At::Start)
    }

    fn gen(&self, i: usize) -> f64 {
        self.at(i, At::Gen)
    }

    fn end(&self, i: usize) -> f64 {
        self.at(i, At::End)
    }

    fn isl(&self, i: usize) -> f64 {
        count(self.0.row(i).isl)
    }

    fn osl(&self, i: usize) -> f64 {
        count(self.0.row(i).osl)
    }
}

/// Per-chunk data of the chunk-aware curves: where each chunk gap ends (the first content
/// response plus the gaps so far), the gap, and its request.
struct Chunks {
    end: Vec<f64>,
    gap: Vec<f64>,
    owner: Vec<u32>,
    /// Per request: its gaps, those of more than zero, and whether any chunk of it counts (AIPerf's
    /// `has_icl`).
    count: Vec<u32>,
    nonzero: Vec<u32>,
    counted: Vec<bool>,
}

/// The 14 sweep-line metrics, in the order AIPerf adds them to a summary (effective ones,
/// then active ones).
pub const SWEEP_TAGS: [&str; 14] = [
    "effective_concurrency",
    "effective_decode_throughput",
    "effective_prefill_throughput",
    "effective_decode_concurrency",
    "effective_prefill_concurrency",
    "effective_total_throughput",
    "effective_decode_throughput_per_user",
    "effective_prefill_throughput_per_user",
    "tokens_in_flight",
    "active_decode_throughput",
    "active_prefill_throughput",
    "active_decode_throughput_per_user",
    "active_prefill_throughput_per_user",
    "active_total_throughput",
];

/// Whether metric `i` of [`SWEEP_TAGS`] is in tokens per ns (reported per second).
fn is_rate(i: usize) -> bool {
    !matches!(i, 0 | 3 | 4 | 8)
}

/// Time-weighted statistics of one curve over one window, in the curve's own unit.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SweepStats {
    pub avg: f64,
    pub min: f64,
    pub max: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub std: f64,
}

impl SweepStats {
    fn scaled(self, k: f64) -> SweepStats {
        SweepStats {
            avg: self.avg * k,
            min: self.min * k,
            max: self.max * k,
            p50: self.p50 * k,
            p90: self.p90 * k,
            p95: self.p95 * k,
            p99: self.p99 * k,
            std: self.std * k,
        }
    }

    /// As a run-level metric, with the catalogue's header, unit and console place.
    pub fn into_result(self, tag: &'static str) -> MetricResult {
        let def = catalogue::lookup(tag);
        MetricResult {
            tag,
            header: def.map_or(tag, |d| d.header),
            unit: def.map_or("", |d| d.unit),
            display_order: def.and_then(|d| d.console_order()),
            avg: self.avg,
            stats: Some(Stats::time_weighted(
                self.avg, self.min, self.max, self.p50, self.p90, self.p95, self.p99, self.std,
            )),
        }
    }
}

/// The 14 metrics of one window as run-level results, in [`SWEEP_TAGS`] order.
pub fn results(stats: &[SweepStats; 14]) -> Vec<MetricResult> {
    SWEEP_TAGS
        .iter()
        .zip(stats)
        .map(|(tag, s)| s.into_result(tag))
        .collect()
}

/// The sweep-line metrics of `cols` over each of `windows` (start, end; ascending and not
/// overlapping, as a phase's time slices are), in [`SWEEP_TAGS`] order, in display units.
/// `gaps` are the requests' chunk gaps in ns, request after request, as many for each as
/// its row says; when there are any, decode throughput and tokens in flight follow the
/// chunks, as AIPerf's do when it keeps them. Empty when no request has both a start and
/// an end, as AIPerf then reports none; also when a phase has more than 2^29 requests or
/// chunks, far past what a run can hold.
pub fn sweep_metrics(
    cols: &SweepColumns,
    gaps: impl IntoIterator<Item = f64>,
    windows: &[(f64, f64)],
) -> Vec<[SweepStats; 14]> {
    if cols.is_empty() || cols.len() >= MAX_INDEX || windows.is_empty() {
        return Vec::new();
    }
    let c = Cols(cols);
    let chunks = match build_chunks(c, gaps) {
        Ok(chunks) => chunks,
        Err(()) => return Vec::new(),
    };
    let mut out = vec![[SweepStats::default(); 14]; windows.len()];
    let mut segs = Vec::new();
    let put = |i: usize, stats: Vec<SweepStats>, out: &mut Vec<[SweepStats; 14]>| {
        let k = if is_rate(i) { NS_PER_S } else { 1.0 };
        for (w, s) in stats.into_iter().enumerate() {
            out[w][i] = s.scaled(k);
        }
    };

    // Overall concurrency and total throughput (its active variant is masked by the
    // former).
    {
        let conc = concurrency(c, At::Start, At::End);
        if conc.is_empty() {
            return Vec::new();
        }
        let total = total_throughput(c);
        put(0, weighted(&conc, windows, &mut segs), &mut out);
        put(5, weighted(&total, windows, &mut segs), &mut out);
        put(13, active(&total, &conc, windows, &mut segs), &mut out);
    }
    // Decode: requests between first token and end.
    {
        let conc = concurrency(c, At::Gen, At::End);
        let rate = match &chunks {
            Some(ch) => throughput_chunks(c, ch),
            None => throughput(c),
        };
        let per_user = Divided(&rate, &conc);
        put(3, weighted(&conc, windows, &mut segs), &mut out);
        put(1, weighted(&rate, windows, &mut segs), &mut out);
        put(6, weighted(&per_user, windows, &mut segs), &mut out);
        put(9, active(&rate, &conc, windows, &mut segs), &mut out);
        put(11, active(&per_user, &conc, windows, &mut segs), &mut out);
    }
    // Prefill: requests between start and first token.
    {
        let conc = concurrency(c, At::Start, At::Gen);
        let rate = prefill_throughput(c);
        let per_user = Divided(&rate, &conc);
        put(4, weighted(&conc, windows, &mut segs), &mut out);
        put(2, weighted(&rate, windows, &mut segs), &mut out);
        put(7, weighted(&per_user, windows, &mut segs), &mut out);
        put(10, active(&rate, &conc, windows, &mut segs), &mut out);
        put(12, active(&per_user, &conc, windows, &mut segs), &mut out);
    }
    {
        let held = match &chunks {
            Some(ch) => tokens_in_flight_chunks(c, ch),
            None => tokens_in_flight(c),
        };
        put(8, weighted(&held, windows, &mut segs), &mut out);
    }
    out
}

/// The chunk instants, or `None` when no request has chunk gaps (the request-level curves
/// are used then); `Err` past [`MAX_INDEX`] chunks.
fn build_chunks(c: Cols<'_>, gaps: impl IntoIterator<Item = f64>) -> Result<Option<Chunks>, ()> {
    let cols = c.0;
    let total: u64 = cols.iter().map(|r| u64::from(r.gaps)).sum();
    if total == 0 {
        return Ok(None);
    }
    if total >= MAX_INDEX as u64 {
        return Err(());
    }
    let n = total as usize;
    let mut ch = Chunks {
        end: Vec::with_capacity(n),
        gap: Vec::with_capacity(n),
        owner: Vec::with_capacity(n),
        count: cols.iter().map(|r| r.gaps).collect(),
        nonzero: vec![0; cols.len()],
        counted: vec![false; cols.len()],
    };
    let mut gaps = gaps.into_iter();
    for (i, r) in cols.iter().enumerate() {
        let mut since_first = 0.0;
        for _ in 0..r.gaps {
            // Fewer gaps than the rows announce: the missing ones are unknown (NaN).
            let g = gaps.next().unwrap_or(f64::NAN);
            since_first += g;
            ch.end.push(c.gen(i) + since_first);
            ch.gap.push(g);
            ch.owner.push(i as u32);
            ch.nonzero[i] += u32::from(g > 0.0);
            // AIPerf's per-record `has_icl`: a chunk that adds tokens in flight.
            ch.counted[i] |= !c.gen(i).is_nan() && g >= 0.0 && c.osl(i) >= 1.0;
        }
    }
    Ok(Some(ch))
}

/// A step function as a sorted list of events: `source.event(id)` is an event's instant
/// and its change to the running sum.
struct Curve<'a> {
    order: Vec<u32>,
    source: Source<'a>,
    /// Running sums below this magnitude are floating-point residue: zero.
    snap: f64,
}

/// What a curve's events are, each computed from its id when the curve is read (4 bytes
/// an event kept instead of 20). An enum, not closures behind a pointer: the curves are
/// few and their kinds known, and the event of each kind is a plain match.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// Requests between instants `a` and `b`: +1 at the first, -1 at the second.
    Concurrency(Cols<'a>, At, At),
    Throughput(Cols<'a>),
    PrefillThroughput(Cols<'a>),
    TotalThroughput(Cols<'a>),
    TokensInFlight(Cols<'a>),
    ThroughputChunks(Cols<'a>, &'a Chunks),
    TokensInFlightChunks(Cols<'a>, &'a Chunks),
}

impl Source<'_> {
    fn event(&self, e: u32) -> (f64, f64) {
        let i = index(e);
        match *self {
            Source::Concurrency(c, a, b) => match kind(e) {
                0 => (c.at(i, a), 1.0),
                _ => (c.at(i, b), -1.0),
            },
            Source::Throughput(c) => {
                let r = decode_rate(c, i).unwrap_or(0.0);
                match kind(e) {
                    0 => (c.gen(i), r),
                    _ => (c.end(i), -r),
                }
            }
            Source::PrefillThroughput(c) => {
                let r = prefill_rate(c, i).unwrap_or(0.0);
                match kind(e) {
                    0 => (c.start(i), r),
                    _ => (c.gen(i), -r),
                }
            }
            Source::TotalThroughput(c) => {
                let p = || prefill_rate(c, i).unwrap_or(0.0);
                let d = || decode_rate(c, i).unwrap_or(0.0);
                match kind(e) {
                    0 => (c.start(i), p()),
                    1 => (c.gen(i), -p()),
                    2 => (c.gen(i), d()),
                    _ => (c.end(i), -d()),
                }
            }
            Source::TokensInFlight(c) => match kind(e) {
                0 => (c.start(i), c.isl(i)),
                1 => (c.gen(i), c.osl(i)),
                2 => (c.end(i), -(c.isl(i) + c.osl(i))),
                3 => (c.end(i), -c.isl(i)),
                _ => (c.end(i), -c.osl(i)),
            },
            Source::ThroughputChunks(c, ch) => {
                let r = chunk_rate(c, ch, i).unwrap_or(0.0);
                match kind(e) {
                    0 => (ch.end[i] - ch.gap[i], r),
                    _ => (ch.end[i], -r),
                }
            }
            Source::TokensInFlightChunks(c, ch) => match kind(e) {
                0 => (c.gen(i), 1.0),
                1 => {
                    let owner = ch.owner[i] as usize;
                    let share = (c.osl(owner) - 1.0) / f64::from(ch.count[owner]);
                    (chunk_instant(c, ch, i), share)
                }
                2 => (c.start(i), c.isl(i)),
                3 => (c.end(i), -(c.isl(i) + c.osl(i))),
                4 => (c.end(i), -c.isl(i)),
                _ => (c.end(i), -c.osl(i)),
            },
        }
    }
}

fn id(kind: u32, index: usize) -> u32 {
    (kind << KIND_SHIFT) | index as u32
}

fn index(id: u32) -> usize {
    (id & ((1 << KIND_SHIFT) - 1)) as usize
}

fn kind(id: u32) -> u32 {
    id >> KIND_SHIFT
}

impl<'a> Curve<'a> {
    fn new(mut order: Vec<u32>, source: Source<'a>) -> Self {
        // By instant, then decreases (and zero changes) before increases, then AIPerf's
        // concatenation order, which the ids follow (kind, then request or chunk). Each
        // event's key is computed once, in id order, and the keys sorted as plain integers:
        // a comparator that computed both events' instants and changes made the chunk
        // curves of a 100k-request streaming run take seconds (random reads of the rows,
        // a division per look). The keys are 16 bytes an event, held only while sorting.
        let mut keys: Vec<u128> = order
            .iter()
            .map(|&e| {
                let (t, d) = source.event(e);
                (u128::from(ordered_bits(t)) << 64) | (u128::from(d > 0.0) << 32) | u128::from(e)
            })
            .collect();
        keys.sort_unstable();
        order.clear();
        // The low 32 bits are the id put there above.
        order.extend(keys.iter().map(|&k| k as u32));
        drop(keys);
        let mut sum = 0.0f64;
        let mut max_abs = 0.0f64;
        for &e in &order {
            sum += source.event(e).1;
            max_abs = max_abs.max(sum.abs());
        }
        Curve {
            order,
            source,
            snap: 1e-9 * max_abs,
        }
    }
}

/// Something that can list its (instant, value after it) points in time order.
trait Steps {
    fn is_empty(&self) -> bool;
    /// Points in time order; a later point at the same instant replaces an earlier one.
    /// Only called on a non-empty curve.
    fn points(&self) -> impl Iterator<Item = (f64, f64)> + '_;
}

impl Steps for Curve<'_> {
    fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    fn points(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        let mut sum = 0.0f64;
        self.order.iter().map(move |&e| {
            let (t, d) = self.source.event(e);
            sum += d;
            let v = if sum.abs() < self.snap { 0.0 } else { sum };
            (t, v)
        })
    }
}

/// The values after each instant: the last point of each run of equal instants.
fn grouped(points: impl Iterator<Item = (f64, f64)>) -> impl Iterator<Item = (f64, f64)> {
    let mut points = points.peekable();
    std::iter::from_fn(move || {
        let (t, mut v) = points.next()?;
        while let Some(&(t2, v2)) = points.peek() {
            if t2 != t {
                break;
            }
            v = v2;
            points.next();
        }
        Some((t, v))
    })
}

/// Two step functions side by side: at each instant either changes, both values.
fn merged(
    a: impl Iterator<Item = (f64, f64)>,
    b: impl Iterator<Item = (f64, f64)>,
) -> impl Iterator<Item = (f64, f64, f64)> {
    let mut a = grouped(a).peekable();
    let mut b = grouped(b).peekable();
    let (mut va, mut vb) = (0.0, 0.0);
    std::iter::from_fn(move || {
        let t = match (a.peek(), b.peek()) {
            (Some(&(ta, _)), Some(&(tb, _))) => ta.min(tb),
            (Some(&(ta, _)), None) => ta,
            (None, Some(&(tb, _))) => tb,
            (None, None) => return None,
        };
        if let Some(&(ta, v)) = a.peek() {
            if ta == t {
                va = v;
                a.next();
            }
        }
        if let Some(&(tb, v)) = b.peek() {
            if tb == t {
                vb = v;
                b.next();
            }
        }
        Some((t, va, vb))
    })
}

/// One curve divided by another where the latter is positive (zero elsewhere), on the
/// instants of both: a rate per request in flight.
struct Divided<'a, 'b>(&'b Curve<'a>, &'b Curve<'a>);

impl Steps for Divided<'_, '_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty() || self.1.is_empty()
    }

    fn points(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        merged(self.0.points(), self.1.points())
            .map(|(t, n, d)| (t, if d > 0.0 { n / d } else { 0.0 }))
    }
}

/// Time-weighted statistics of `curve` over each window: the window's whole length
/// weighs, time before the first event at zero.
fn weighted<S: Steps>(
    curve: &S,
    windows: &[(f64, f64)],
    segs: &mut Vec<(f64, f64)>,
) -> Vec<SweepStats> {
    let mut out = vec![SweepStats::default(); windows.len()];
    if curve.is_empty() {
        return out;
    }
    let mut points = grouped(curve.points()).peekable();
    let mut cur = 0.0;
    for (w, &(ws, we)) in windows.iter().enumerate() {
        let total = we - ws;
        // Values up to the window's start: the one held at its start.
        while let Some(&(t, v)) = points.peek() {
            if t > ws {
                break;
            }
            cur = v;
            points.next();
        }
        if total.is_nan() || total <= 0.0 {
            continue;
        }
        segs.clear();
        let mut from = ws;
        while let Some(&(t, v)) = points.peek() {
            if t >= we {
                break;
            }
            if t - from > 0.0 {
                segs.push((cur, t - from));
            }
            from = t;
            cur = v;
            points.next();
        }
        if we - from > 0.0 {
            segs.push((cur, we - from));
        }
        out[w] = stats_of(segs, total);
    }
    out
}

/// Statistics of `rate` over each window, counting only the time `mask` is positive.
fn active<R: Steps, M: Steps>(
    rate: &R,
    mask: &M,
    windows: &[(f64, f64)],
    segs: &mut Vec<(f64, f64)>,
) -> Vec<SweepStats> {
    let mut out = vec![SweepStats::default(); windows.len()];
    if rate.is_empty() || mask.is_empty() {
        return out;
    }
    let mut points = merged(rate.points(), mask.points()).peekable();
    let (mut r, mut m) = (0.0, 0.0);
    for (w, &(ws, we)) in windows.iter().enumerate() {
        while let Some(&(t, rv, mv)) = points.peek() {
            if t > ws {
                break;
            }
            (r, m) = (rv, mv);
            points.next();
        }
        if (we - ws).is_nan() || we - ws <= 0.0 {
            continue;
        }
        segs.clear();
        let mut from = ws;
        let mut push = |from: f64, to: f64, r: f64, m: f64| {
            if m > 0.0 && to - from > 0.0 {
                segs.push((r, to - from));
            }
        };
        while let Some(&(t, rv, mv)) = points.peek() {
            if t >= we {
                break;
            }
            push(from, t, r, m);
            from = t;
            (r, m) = (rv, mv);
            points.next();
        }
        push(from, we, r, m);
        let held: f64 = segs.iter().map(|s| s.1).sum();
        if held > 0.0 {
            out[w] = stats_of(segs, held);
        }
    }
    out
}

/// Statistics of (value, duration) segments over `total` time; zeros when there are none.
fn stats_of(segs: &mut [(f64, f64)], total: f64) -> SweepStats {
    if segs.is_empty() {
        return SweepStats::default();
    }
    let avg = segs.iter().map(|&(v, d)| v * d).sum::<f64>() / total;
    let var = segs
        .iter()
        .map(|&(v, d)| d * (v - avg) * (v - avg))
        .sum::<f64>()
        / total;
    segs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let last = segs.len() - 1;
    let held: f64 = segs.iter().map(|s| s.1).sum();
    let mut q = [0.50, 0.90, 0.95, 0.99].into_iter().peekable();
    let mut p = [segs[last].0; 4];
    let mut cum = 0.0;
    let mut k = 0;
    for &(v, d) in segs.iter() {
        cum += d;
        // The first value by which the cumulative share of time reaches q.
        while let Some(&want) = q.peek() {
            if cum / held < want {
                break;
            }
            p[k] = v;
            k += 1;
            q.next();
        }
    }
    SweepStats {
        avg,
        min: segs[0].0,
        max: segs[last].0,
        p50: p[0],
        p90: p[1],
        p95: p[2],
        p99: p[3],
        std: var.sqrt(),
    }
}

/// Ids of `kind` for every index below `n` that `valid` accepts.
fn ids_where(n: usize, kind: u32, valid: impl Fn(usize) -> bool, out: &mut Vec<u32>) {
    out.extend((0..n).filter(|&i| valid(i)).map(|i| id(kind, i)));
}

/// Requests between instants `a` and `b` (each where both are known).
fn concurrency(c: Cols<'_>, a: At, b: At) -> Curve<'_> {
    let ok = move |i: usize| !c.at(i, a).is_nan() && !c.at(i, b).is_nan();
    let mut ids = Vec::new();
    ids_where(c.len(), 0, ok, &mut ids);
    ids_where(c.len(), 1, ok, &mut ids);
    Curve::new(ids, Source::Concurrency(c, a, b))
}

/// Decode rate of request `i`, when it has one: output tokens after the first over its
/// decode.
fn decode_rate(c: Cols<'_>, i: usize) -> Option<f64> {
    let (dur, osl) = (c.end(i) - c.gen(i), c.osl(i));
    (!c.gen(i).is_nan() && !osl.is_nan() && dur > 0.0 && osl >= 1.0).then(|| (osl - 1.0) / dur)
}

/// Prefill rate of request `i`: its input tokens over its prefill.
fn prefill_rate(c: Cols<'_>, i: usize) -> Option<f64> {
    let (dur, isl) = (c.gen(i) - c.start(i), c.isl(i));
    (!c.start(i).is_nan() && !c.gen(i).is_nan() && !isl.is_nan() && dur > 0.0).then(|| isl / dur)
}

fn throughput(c: Cols<'_>) -> Curve<'_> {
    let ok = move |i: usize| decode_rate(c, i).is_some();
    let mut ids = Vec::new();
    ids_where(c.len(), 0, ok, &mut ids);
    ids_where(c.len(), 1, ok, &mut ids);
    Curve::new(ids, Source::Throughput(c))
}

fn prefill_throughput(c: Cols<'_>) -> Curve<'_> {
    let ok = move |i: usize| prefill_rate(c, i).is_some();
    let mut ids = Vec::new();
    ids_where(c.len(), 0, ok, &mut ids);
    ids_where(c.len(), 1, ok, &mut ids);
    Curve::new(ids, Source::PrefillThroughput(c))
}

/// Prefill and decode rates together, as AIPerf sums them in one sweep.
fn total_throughput(c: Cols<'_>) -> Curve<'_> {
    let pre = move |i: usize| prefill_rate(c, i).is_some();
    let dec = move |i: usize| decode_rate(c, i).is_some();
    let mut ids = Vec::new();
    ids_where(c.len(), 0, pre, &mut ids);
    ids_where(c.len(), 1, pre, &mut ids);
    ids_where(c.len(), 2, dec, &mut ids);
    ids_where(c.len(), 3, dec, &mut ids);
    Curve::new(ids, Source::TotalThroughput(c))
}

/// Whether request `i` has a prefill that holds its input tokens.
fn holds_input(c: Cols<'_>, i: usize) -> bool {
    let (start, gen) = (c.start(i), c.gen(i));
    !start.is_nan() && !c.isl(i).is_nan() && !gen.is_nan() && gen > start
}

/// Input tokens held from a request's start, output tokens from its first token, all
/// released at its end.
fn tokens_in_flight(c: Cols<'_>) -> Curve<'_> {
    let prefill = move |i: usize| holds_input(c, i);
    let decode =
        move |i: usize| !c.gen(i).is_nan() && !c.osl(i).is_nan() && c.end(i) - c.gen(i) > 0.0;
    let ends = move |i: usize| !c.end(i).is_nan();
    let n = c.len();
    let mut ids = Vec::new();
    ids_where(n, 0, prefill, &mut ids);
    ids_where(n, 1, decode, &mut ids);
    ids_where(n, 2, |i| ends(i) && prefill(i) && decode(i), &mut ids);
    ids_where(n, 3, |i| ends(i) && prefill(i) && !decode(i), &mut ids);
    ids_where(n, 4, |i| ends(i) && !prefill(i) && decode(i), &mut ids);
    Curve::new(ids, Source::TokensInFlight(c))
}

/// Decode rate spread over the chunk gaps: each gap of more than zero carries an equal
/// share of the output tokens after the first.
fn throughput_chunks<'a>(c: Cols<'a>, ch: &'a Chunks) -> Curve<'a> {
    let n = ch.gap.len();
    let mut ids = Vec::new();
    ids_where(n, 0, |j| chunk_rate(c, ch, j).is_some(), &mut ids);
    ids_where(n, 1, |j| chunk_rate(c, ch, j).is_some(), &mut ids);
    Curve::new(ids, Source::ThroughputChunks(c, ch))
}

/// The decode rate over chunk gap `j`, when it carries one.
fn chunk_rate(c: Cols<'_>, ch: &Chunks, j: usize) -> Option<f64> {
    let i = ch.owner[j] as usize;
    let (osl, g) = (c.osl(i), ch.gap[j]);
    let ok = !c.gen(i).is_nan() && g > 0.0 && !osl.is_nan() && osl >= 1.0;
    ok.then(|| ((osl - 1.0) / f64::from(ch.nonzero[i])) / g)
}

/// When chunk `j` adds its tokens: its end, kept just before its request's end so the
/// request's release sorts after its chunks.
fn chunk_instant(c: Cols<'_>, ch: &Chunks, j: usize) -> f64 {
    let end = c.end(ch.owner[j] as usize);
    if !end.is_nan() && ch.end[j] >= end {
        next_down(end)
    } else {
        ch.end[j]
    }
}

/// Tokens in flight with output tokens added chunk by chunk: one at the first token, an
/// equal share of the rest at the end of each gap (kept before the request's end).
fn tokens_in_flight_chunks<'a>(c: Cols<'a>, ch: &'a Chunks) -> Curve<'a> {
    let chunk_ok = move |j: usize| {
        let i = ch.owner[j] as usize;
        !c.gen(i).is_nan() && ch.gap[j] >= 0.0 && !c.osl(i).is_nan() && c.osl(i) >= 1.0
    };
    let counted = move |i: usize| ch.counted[i];
    let first = move |i: usize| !c.gen(i).is_nan() && counted(i) && c.osl(i) >= 1.0;
    let prefill = move |i: usize| holds_input(c, i);
    let ends = move |i: usize| !c.end(i).is_nan();
    let n = c.len();
    let mut ids = Vec::new();
    ids_where(n, 0, first, &mut ids);
    ids_where(ch.gap.len(), 1, chunk_ok, &mut ids);
    ids_where(n, 2, prefill, &mut ids);
    ids_where(n, 3, |i| prefill(i) && ends(i) && counted(i), &mut ids);
    ids_where(n, 4, |i| prefill(i) && ends(i) && !counted(i), &mut ids);
    ids_where(n, 5, |i| !prefill(i) && ends(i) && counted(i), &mut ids);
    Curve::new(ids, Source::TokensInFlightChunks(c, ch))
}

/// `v`'s bits mapped so that unsigned order is [`f64::total_cmp`]'s order.
fn ordered_bits(v: f64) -> u64 {
    let b = v.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | (1 << 63)
    }
}

/// The largest float below `v` (numpy's `nextafter(v, -inf)`), for finite positive `v`
/// and zero.
fn next_down(v: f64) -> f64 {
    match v.partial_cmp(&0.0) {
        Some(Ordering::Greater) => f64::from_bits(v.to_bits() - 1),
        Some(Ordering::Equal) => -f64::from_bits(1),
        _ => f64::from_bits(v.to_bits() + 1),
    }
}

#[cfg(test)]
#[path = "sweep_tests.rs"]
mod tests;
