//! Run-level aggregation: per-request metrics in, AIPerf's run summary out.

use super::catalogue;
use super::compute::record_error;
use super::stats::Values;
use super::sweep::{self, SweepColumns};
use crate::record::{ErrorDetails, Nanos, ParsedRecord};
use crate::results::{ErrorCount, MetricRecord, MetricResult, MetricValue};

/// OSL mismatch counts when |OSL - requested| exceeds min(requested * 5 %, 50 tokens).
const OSL_MISMATCH_PCT: f64 = 5.0;
const OSL_MISMATCH_MAX_TOKENS: f64 = 50.0;
/// A usage diff above this percentage counts as a discrepancy.
const USAGE_DIFF_PCT: f64 = 10.0;
/// The per-chunk gaps AIPerf's chunk-aware sweep curves follow.
const INTER_CHUNK_LATENCY: &str = "inter_chunk_latency";
/// A valid request's SLO verdict under `--goodput` (1 good, 0 not).
const GOOD_REQUEST_COUNT: &str = "good_request_count";

/// Errors grouped by code, type and message (as AIPerf groups them), in first-seen order;
/// each group keeps the first error's cause.
#[derive(Debug, Clone, Default)]
pub struct ErrorTally {
    counts: Vec<ErrorCount>,
}

impl ErrorTally {
    pub fn add(&mut self, details: &ErrorDetails) {
        self.add_n(details, 1);
    }

    fn add_n(&mut self, details: &ErrorDetails, n: u64) {
        match self
            .counts
            .iter_mut()
            .find(|c| c.error_details.same_group(details))
        {
            Some(c) => c.count += n,
            None => self.counts.push(ErrorCount {
                error_details: details.clone(),
                count: n,
            }),
        }
    }

    pub fn merge(&mut self, other: &ErrorTally) {
        for c in &other.counts {
            self.add_n(&c.error_details, c.count);
        }
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().map(|c| c.count).sum()
    }

    pub fn summary(&self) -> Vec<ErrorCount> {
        self.counts.clone()
    }
}

/// The values of one per-request metric over the run (all of them, exactly: see
/// [`Values`] for how they are kept compact).
#[derive(Debug, Clone)]
struct Series {
    tag: &'static str,
    unit: &'static str,
    values: Values,
}

/// Collects `(ParsedRecord, MetricRecord)` pairs of a run (one instance per worker if
/// wanted, then [`merge`](Self::merge)d) and summarizes them as AIPerf does.
///
/// It summarizes every record it is given: the engine gives each phase's records to that
/// phase's own accumulator (warmup records never reach the profiling summary, as AIPerf
/// keeps them out of the root one). Every tag found in the metric records is summarized,
/// so metrics of other record processors are carried through with full statistics.
#[derive(Debug, Clone, Default)]
pub struct MetricsAccumulator {
    series: Vec<Series>,
    index: catalogue::TagMap<usize>,
    /// The series of each entry position of the last record: records of a run carry the
    /// same tags in the same order, so a string compare usually replaces the map lookup.
    positions: Vec<usize>,
    valid: u64,
    errors: ErrorTally,
    /// Earliest start and latest last-content instant of valid records.
    first_start: Option<Nanos>,
    last_end: Option<Nanos>,
    osl_mismatch: Option<u64>,
    usage_discrepancy: Option<u64>,
    /// Failed requests whose error reads as a context overflow (AIPerf's
    /// `context_overflow_count`, reported when any request failed).
    context_overflow: u64,
    /// `--goodput` is set: the goodput metrics are reported.
    goodput: bool,
    /// Valid requests judged against the SLOs (`good_request_count` present) that met
    /// them; `None` while none was judged.
    good: Option<u64>,
    /// Summarizes one time slice (see [`for_timeslice`](Self::for_timeslice)).
    timeslice: bool,
    /// A record of an endpoint that produces tokens was seen: AIPerf computes its
    /// PRODUCES_TOKENS_ONLY run-level metrics (total OSL, output throughput, ...) only
    /// then, although an embeddings run has per-request OSLs (0) to sum.
    produces_tokens: bool,
    /// Send time minus trace timestamp (ns) of each valid request sent on a fixed schedule
    /// (see [`crate::record::RequestRecord::trace_ms`]): AIPerf's replay schedule lag.
    replay_offsets: Vec<i64>,
    /// The replay-degraded warning was logged (a phase is summarized more than once).
    degraded_warned: std::cell::Cell<bool>,
    /// Every request's instants and token counts, for the sweep-line metrics. Its chunk
    /// gaps are not copied: they are the `inter_chunk_latency` series, request after
    /// request in the same order (each row says how many are its own).
    sweep: SweepColumns,
}

impl MetricsAccumulator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reports AIPerf's goodput metrics (`--goodput` is set); records carry their
    /// verdict as `good_request_count`.
    pub fn with_goodput(mut self, goodput: bool) -> Self {
        self.goodput = goodput;
        self
    }

    /// Summarizes one time slice of a run as AIPerf does: without the CO-aware
    /// `effective_latency`, which AIPerf derives over the whole run only, and (with
    /// [`summarize_window`](Self::summarize_window)) with rates per second of the slice.
    pub fn for_timeslice(mut self) -> Self {
        self.timeslice = true;
        self
    }

    /// Valid (successful, with content) profiling requests seen so far.
    pub fn request_count(&self) -> u64 {
        self.valid
    }

    /// Failed profiling requests seen so far.
    pub fn error_count(&self) -> u64 {
        self.errors.total()
    }

    /// Errors grouped as AIPerf's `error_summary`.
    pub fn error_summary(&self) -> Vec<ErrorCount> {
        self.errors.summary()
    }

    pub fn add(&mut self, record: &ParsedRecord, metrics: &MetricRecord) {
        self.produces_tokens |= record.produces_tokens;
        let gaps_before = self.icl_len();
        for (position, entry) in metrics.entries.iter().enumerate() {
            // An aggregate counter in AIPerf: summed below, not summarized.
            if entry.tag == GOOD_REQUEST_COUNT {
                continue;
            }
            let series = self.series_at(position, entry.tag, entry.unit);
            match &entry.value {
                MetricValue::Scalar(v) => series.values.push(*v),
                MetricValue::List(vs) => series.values.extend(vs.iter().copied()),
            }
        }
        self.add_sweep_row(record, metrics, self.icl_len() - gaps_before);
        // Queueing behind the schedule, which AIPerf adds next to the service-time
        // latencies (coordinated omission, BC-25), over every request, failures included.
        if !self.timeslice {
            let raw = &record.raw;
            let (intended, start) = (i128::from(raw.intended_ns), i128::from(raw.start_ns));
            let effective = (i128::from(raw.end_ns) - intended) as f64 / 1e6;
            self.series_mut("effective_latency", "ms")
                .values
                .push(effective);
            // Clamped as AIPerf clamps it: a latency is never negative.
            let credit_to_start = (start - intended).max(0) as f64 / 1e6;
            self.series_mut("credit_to_start_latency", "ms")
                .values
                .push(credit_to_start);
        }
        if let Some(error) = record_error(record) {
            self.context_overflow += u64::from(is_context_overflow(&error.message));
            self.errors.add(&error);
            return;
        }
        self.valid += 1;
        if let Some(trace_ms) = record.raw.trace_ms.filter(|_| !self.timeslice) {
            // Both in ns: only their differences between requests count.
            let scheduled = (trace_ms * 1e6).round() as i128;
            let offset = i128::from(record.raw.start_ns) - scheduled;
            self.replay_offsets
                .push(offset.clamp(i64::MIN.into(), i64::MAX.into()) as i64);
        }
        let start = record.raw.start_ns;
        if let Some(end) = record.content_times().last() {
            self.first_start = Some(self.first_start.map_or(start, |s| s.min(start)));
            self.last_end = Some(self.last_end.map_or(end, |e| e.max(end)));
        }
        self.count_mismatches(record, metrics);
        if let Some(good) = metrics.scalar(GOOD_REQUEST_COUNT) {
            *self.good.get_or_insert(0) += u64::from(good > 0.0);
        }
    }

    fn icl_len(&self) -> usize {
        self.index
            .get(INTER_CHUNK_LATENCY)
            .map_or(0, |&i| self.series[i].values.len())
    }

    /// The request's row of the sweep: failed ones count too (they were in flight), as
    /// in AIPerf; one that never went out (its start left at 0) does not.
    fn add_sweep_row(&mut self, record: &ParsedRecord, metrics: &MetricRecord, gaps: usize) {
        let raw = &record.raw;
        if raw.start_ns == 0 && gaps == 0 {
            return;
        }
        // AIPerf's generation start is the start plus the time to first token: the first
        // content response, for the requests that have that metric.
        let gen = metrics
            .scalar("time_to_first_token")
            .and_then(|_| record.content_times().next());
        self.sweep.push(
            raw.start_ns,
            gen,
            raw.end_ns,
            metrics.scalar("input_sequence_length"),
            metrics.scalar("output_sequence_length"),
            gaps,
        );
    }

    /// The chunk gaps of every request in ns, in the order of the sweep's rows. They are
    /// kept in ms (whole ns / 1e6), so rounding recovers the measured ns exactly.
    fn chunk_gaps_ns(&self) -> impl Iterator<Item = f64> + '_ {
        let series = self
            .index
            .get(INTER_CHUNK_LATENCY)
            .map(|&i| &self.series[i].values);
        series
            .into_iter()
            .flat_map(|v| v.iter())
            .map(|ms| (ms * 1e6).round())
    }

    /// Moves this accumulator's sweep rows and chunk gaps out, for a sweep over several
    /// (the time slices of a phase, see [`Timeslicer`](super::Timeslicer)).
    pub(crate) fn take_sweep(&mut self, rows: &mut SweepColumns, gaps: &mut Vec<f64>) {
        gaps.extend(self.chunk_gaps_ns());
        rows.append(&mut self.sweep);
    }

    /// AIPerf's sweep-line metrics over `window`, or from the first request's start to the
    /// last one's end.
    fn sweep_results(&self, window: Option<(Nanos, Nanos)>) -> Vec<MetricResult> {
        let Some((start, end)) = window.or_else(|| self.sweep.span()) else {
            return Vec::new();
        };
        let window = [(start as f64, end as f64)];
        let stats = sweep::sweep_metrics(&self.sweep, self.chunk_gaps_ns(), &window);
        stats.first().map(sweep::results).unwrap_or_default()
    }

    fn count_mismatches(&mut self, record: &ParsedRecord, metrics: &MetricRecord) {
        if let (Some(osl), Some(req)) = (
            metrics.scalar("output_sequence_length"),
            record
                .raw
                .requested_output_tokens
                .filter(|_| metrics.scalar("osl_mismatch_diff_pct").is_some()),
        ) {
            let req = f64::from(req);
            let threshold = (req * OSL_MISMATCH_PCT / 100.0).min(OSL_MISMATCH_MAX_TOKENS);
            let hit = (osl - req).abs() > threshold;
            *self.osl_mismatch.get_or_insert(0) += u64::from(hit);
        }
        // AIPerf needs both the prompt and completion diffs to judge a record.
        if let (Some(prompt), Some(completion)) = (
            metrics.scalar("usage_prompt_tokens_diff_pct"),
            metrics.scalar("usage_completion_tokens_diff_pct"),
        ) {
            let reasoning = metrics
                .scalar("usage_reasoning_tokens_diff_pct")
                .unwrap_or(0.0);
            let hit = prompt > USAGE_DIFF_PCT
                || completion > USAGE_DIFF_PCT
                || reasoning > USAGE_DIFF_PCT;
            *self.usage_discrepancy.get_or_insert(0) += u64::from(hit);
        }
    }

    /// [`series_mut`](Self::series_mut), trying first the series that entry `position`
    /// of the previous record went to.
    fn series_at(&mut self, position: usize, tag: &'static str, unit: &'static str) -> &mut Series {
        let hinted = self.positions.get(position).copied();
        // Tags are `'static` and usually the very same constant: the address settles it.
        let same = |s: &Series| std::ptr::eq(s.tag, tag) || s.tag == tag;
        let idx = match hinted.filter(|&i| self.series.get(i).is_some_and(same)) {
            Some(i) => i,
            None => {
                let i = self.series_index(tag, unit);
                if self.positions.len() <= position {
                    self.positions.resize(position + 1, usize::MAX);
                }
                self.positions[position] = i;
                i
            }
        };
        &mut self.series[idx]
    }

    fn series_mut(&mut self, tag: &'static str, unit: &'static str) -> &mut Series {
        let idx = self.series_index(tag, unit);
        &mut self.series[idx]
    }

    /// The position of `tag`'s series, created empty on first sight.
    fn series_index(&mut self, tag: &'static str, unit: &'static str) -> usize {
        *self.index.entry(tag).or_insert_with(|| {
            self.series.push(Series {
                tag,
                unit,
                values: Values::new(),
            });
            self.series.len() - 1
        })
    }

    /// Folds another share of the run into this one.
    pub fn merge(&mut self, other: MetricsAccumulator) {
        for s in other.series {
            self.series_mut(s.tag, s.unit)
                .values
                .extend(s.values.iter());
        }
        self.valid += other.valid;
        self.replay_offsets.extend(other.replay_offsets);
        self.errors.merge(&other.errors);
        self.first_start = min_opt(self.first_start, other.first_start);
        self.last_end = max_opt(self.last_end, other.last_end);
        self.osl_mismatch = add_opt(self.osl_mismatch, other.osl_mismatch);
        self.usage_discrepancy = add_opt(self.usage_discrepancy, other.usage_discrepancy);
        self.context_overflow += other.context_overflow;
        self.goodput |= other.goodput;
        self.good = add_opt(self.good, other.good);
        self.timeslice |= other.timeslice;
        self.produces_tokens |= other.produces_tokens;
        let mut rows = other.sweep;
        self.sweep.append(&mut rows);
    }

    fn sum(&self, tag: &str) -> Option<f64> {
        let s = &self.series[*self.index.get(tag)?];
        let finite = s.values.iter().filter(|v| v.is_finite());
        (!s.values.is_empty()).then(|| finite.sum())
    }

    /// The run's metrics in display units: per-request metrics with statistics, then
    /// the run-level counters and rates. Metrics without a value are left out.
    ///
    /// `window` (run clock: start, end) is the phase's observation window, as AIPerf
    /// summarizes a phase: the rates (throughputs, goodput) are per second of it and the
    /// sweep-line metrics cover it. Without one, the rates are per second of the benchmark
    /// duration (first start to last response) and the sweeps cover the requests' extent.
    /// An empty window gives no rates.
    pub fn summarize(&self, window: Option<(Nanos, Nanos)>) -> Vec<MetricResult> {
        let window_s = window.map(|(start, end)| end.saturating_sub(start) as f64 / 1e9);
        self.summarize_over(window_s, window)
    }

    /// [`summarize`](Self::summarize) with the rates per second of an observation window
    /// of `window_s` seconds, as AIPerf rates a time slice. An empty window gives no rates.
    pub fn summarize_window(&self, window_s: Option<f64>) -> Vec<MetricResult> {
        self.summarize_over(window_s, None)
    }

    fn summarize_over(
        &self,
        window_s: Option<f64>,
        sweep_window: Option<(Nanos, Nanos)>,
    ) -> Vec<MetricResult> {
        let mut out = Vec::new();
        for s in &self.series {
            let Some(st) = s.values.stats() else { continue };
            let def = catalogue::lookup(s.tag);
            out.push(MetricResult {
                tag: s.tag,
                header: def.map_or(s.tag, |d| d.header),
                unit: def.map_or(s.unit, |d| d.unit),
                display_order: def.and_then(|d| d.console_order()),
                avg: st.avg,
                stats: Some(st),
            });
        }

        let errors = self.errors.total();
        // AIPerf's `adj_<tag>` "(error-adjusted)" latencies, when requests failed.
        for s in &self.series {
            let adjusts = catalogue::lookup(s.tag).is_some_and(|d| {
                d.flags
                    .contains(catalogue::MetricFlags::PERCENTILE_INCLUDES_FAILED_REQUESTS)
            });
            let adjusted = catalogue::lookup(&format!("adj_{}", s.tag));
            let (true, Some(def)) = (adjusts, adjusted) else {
                continue;
            };
            if let Some(st) = super::stats::error_adjusted(s.values.iter(), errors) {
                out.push(MetricResult {
                    tag: def.tag,
                    header: def.header,
                    unit: def.unit,
                    display_order: def.console_order(),
                    avg: st.avg,
                    stats: Some(st),
                });
            }
        }
        let duration_s = match (self.first_start, self.last_end) {
            (Some(s), Some(e)) if e > s => Some((e - s) as f64 / 1e9),
            _ => None,
        };
        let total_isl = self.sum("input_sequence_length");
        let total_osl = self.sum("output_sequence_length");
        let produces_tokens = self.produces_tokens;
        let mut single = |tag: &'static str, value: Option<f64>| {
            let def = catalogue::lookup(tag).filter(|d| {
                produces_tokens
                    || !d
                        .flags
                        .contains(catalogue::MetricFlags::PRODUCES_TOKENS_ONLY)
            });
            if let (Some(v), Some(def)) = (value.filter(|v| v.is_finite()), def) {
                out.push(MetricResult {
                    tag,
                    header: def.header,
                    unit: def.unit,
                    display_order: def.console_order(),
                    stats: None,
                    avg: v,
                });
            }
        };
        let per = window_s.map_or(duration_s, |w| (w > 0.0).then_some(w));
        let per_sec = |v: Option<f64>| Some(v? / per?);
        let count = |n: u64| (n > 0).then_some(n as f64);
        let total = self.valid + errors;

        single("request_count", count(self.valid));
        single("error_request_count", count(errors));
        single("completed_request_count", count(total));
        single(
            "request_error_rate",
            (total > 0).then(|| 100.0 * errors as f64 / total as f64),
        );
        single("benchmark_duration", duration_s);
        single("request_throughput", per_sec(count(self.valid)));
        if self.goodput {
            let good = self.good.map(|n| n as f64);
            single("good_request_count", good);
            single("goodput", per_sec(good));
            // Over every attempted request, so failures count against it (AIPerf: 0 when
            // nothing was attempted).
            let fraction = match total {
                0 => 0.0,
                _ => self.good.unwrap_or(0) as f64 / total as f64,
            };
            single("good_request_fraction", Some(fraction));
        }
        single("total_osl", total_osl);
        single("output_token_throughput", per_sec(total_osl));
        single("total_isl", total_isl);
        single("input_token_throughput", per_sec(total_isl));
        single(
            "total_token_throughput",
            per_sec(total_isl.zip(total_osl).map(|(i, o)| i + o)),
        );
        single("total_output_tokens", self.sum("output_token_count"));
        single("total_reasoning_tokens", self.sum("reasoning_token_count"));
        single("total_usage_prompt_tokens", self.sum("usage_prompt_tokens"));
        single(
            "total_usage_completion_tokens",
            self.sum("usage_completion_tokens"),
        );
        single(
            "total_usage_reasoning_tokens",
            self.sum("usage_reasoning_tokens"),
        );
        single("total_usage_total_tokens", self.sum("usage_total_tokens"));
        let total_cache_read = self.sum("usage_prompt_cache_read_tokens");
        single("total_usage_prompt_cache_read_tokens", total_cache_read);
        single(
            "total_usage_prompt_cache_write_tokens",
            self.sum("usage_prompt_cache_write_tokens"),
        );
        single(
            "total_usage_prompt_cache_miss_tokens",
            self.sum("usage_prompt_cache_miss_tokens"),
        );
        for (total, per_request) in [
            (
                "total_usage_prompt_audio_tokens",
                "usage_prompt_audio_tokens",
            ),
            (
                "total_usage_tool_use_prompt_tokens",
                "usage_tool_use_prompt_tokens",
            ),
            (
                "total_usage_prompt_audio_seconds",
                "usage_prompt_audio_seconds",
            ),
            (
                "total_usage_completion_audio_tokens",
                "usage_completion_audio_tokens",
            ),
            (
                "total_usage_accepted_prediction_tokens",
                "usage_accepted_prediction_tokens",
            ),
            (
                "total_usage_rejected_prediction_tokens",
                "usage_rejected_prediction_tokens",
            ),
        ] {
            single(total, self.sum(per_request));
        }
        let total_prompt = self.sum("usage_prompt_tokens").filter(|&n| n != 0.0);
        single(
            "overall_usage_prompt_cache_read_pct",
            total_cache_read
                .zip(total_prompt)
                .map(|(read, prompt)| read / prompt * 100.0),
        );
        single("total_error_isl", self.sum("error_isl"));
        single("osl_mismatch_count", self.osl_mismatch.map(|n| n as f64));
        single(
            "context_overflow_count",
            (errors > 0).then_some(self.context_overflow as f64),
        );
        single(
            "usage_discrepancy_count",
            self.usage_discrepancy.map(|n| n as f64),
        );
        if let Some(lag) = self.replay_lag() {
            single("replay_sched_lag_p50", Some(lag.p50));
            single("replay_sched_lag_p90", Some(lag.p90));
            single("replay_sched_lag_p99", Some(lag.p99));
            let degraded = lag.p99 > REPLAY_DEGRADED_MS;
            single("replay_sched_degraded", Some(f64::from(u8::from(degraded))));
            if degraded && !self.degraded_warned.replace(true) {
                tracing::warn!(
                    "Replay schedule degraded: anchored send lag p50={:.0} ms, p90={:.0} ms, \
                     p99={:.0} ms exceeds {REPLAY_DEGRADED_MS:.0} ms. Request timing no longer \
                     tracks the recorded schedule; consider lowering the offered load.",
                    lag.p50,
                    lag.p90,
                    lag.p99
                );
            }
        }

        // AIPerf sweeps a time slice's window over the whole phase: the time slicer adds
        // those.
        if !self.timeslice {
            out.extend(self.sweep_results(sweep_window));
        }

        // Catalogue order, so every run lists the same metric in the same place.
        out.sort_by_key(|m| catalogue::catalogue_index(m.tag));
        out
    }
}

/// Anchored replay lag p99 (ms) past which AIPerf calls a replay degraded: the tail of the
/// trace went out half a second or more behind its least-late request.
const REPLAY_DEGRADED_MS: f64 = 500.0;

impl MetricsAccumulator {
    /// Statistics of each scheduled request's send lag behind the least-late one, in ms:
    /// AIPerf anchors there because it keeps no instant of the schedule's zero (this
    /// client does, and reports the absolute lag as `scheduling_lateness`). Over the whole
    /// phase only: anchored per slice, the drift it shows would vanish.
    fn replay_lag(&self) -> Option<crate::results::Stats> {
        let least = *self.replay_offsets.iter().min()?;
        let lags: Vec<f64> = self
            .replay_offsets
            .iter()
            .map(|&o| (i128::from(o) - i128::from(least)) as f64 / 1e6)
            .collect();
        super::stats::stats(&lags)
    }
}

fn min_opt(a: Option<Nanos>, b: Option<Nanos>) -> Option<Nanos> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max_opt(a: Option<Nanos>, b: Option<Nanos>) -> Option<Nanos> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn add_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    }
}

/// Phrases by which servers say a prompt did not fit the model's context, matched
/// case-insensitively anywhere in an error's message: AIPerf 0.13's default list
/// (`AIPERF_AGENTX_CONTEXT_OVERFLOW_SUBSTRINGS`).
const CONTEXT_OVERFLOW_PHRASES: [&str; 4] = [
    "context length",
    "maximum context",
    "context_length_exceeded",
    "prompt is too long",
];

fn is_context_overflow(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    CONTEXT_OVERFLOW_PHRASES.iter().any(|p| message.contains(p))
}
