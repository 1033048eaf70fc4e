//! Summary statistics as AIPerf computes them for per-request metrics.

use crate::results::Stats;

/// The percentiles AIPerf reports, in `Stats` field order.
const PERCENTILES: [f64; 9] = [1.0, 5.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0];

/// Statistics of `values` (any order). Non-finite values are ignored, so one broken
/// measurement cannot turn every figure into NaN; `None` when nothing finite remains.
///
/// `avg` = sum / n, `std` is the population deviation, percentiles interpolate linearly
/// at `q/100 * (n-1)` of the sorted values (numpy's default, which AIPerf uses).
pub fn stats(values: &[f64]) -> Option<Stats> {
    stats_of(values.iter().copied(), values.len())
}

/// [`stats`] of values given in arrival order (`hint`: how many there are).
fn stats_of(values: impl Iterator<Item = f64>, hint: usize) -> Option<Stats> {
    // Sorted as integer keys, in `f64::total_cmp`'s order: a native comparison instead of
    // two conversions per comparison (the percentiles' sort was the largest share of a
    // long run's summary).
    let mut keys: Vec<u64> = Vec::with_capacity(hint);
    // Summed in arrival order, as AIPerf's running sum is; from -0.0, as `Iterator::sum`.
    let mut sum = -0.0;
    for v in values.filter(|v| v.is_finite()) {
        sum += v;
        keys.push(order_key(v));
    }
    if keys.is_empty() {
        return None;
    }
    keys.sort_unstable();
    let at = |i: usize| from_order_key(keys[i]);
    let n = keys.len();
    let avg = sum / n as f64;
    let var = keys
        .iter()
        .map(|&k| (from_order_key(k) - avg) * (from_order_key(k) - avg))
        .sum::<f64>()
        / n as f64;
    let p = PERCENTILES.map(|q| percentile_sorted(n, at, q));
    Some(assemble(
        [avg, at(0), at(n - 1), sum, var.sqrt()],
        n as u64,
        p,
    ))
}

/// `v` as an integer that orders as `f64::total_cmp` orders the floats.
fn order_key(v: f64) -> u64 {
    let bits = v.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

/// The float [`order_key`] was made from.
fn from_order_key(key: u64) -> f64 {
    if key >> 63 == 1 {
        f64::from_bits(key & !(1 << 63))
    } else {
        f64::from_bits(!key)
    }
}

/// `Stats` of `[avg, min, max, sum, std]`, a count and the [`PERCENTILES`] in order.
fn assemble([avg, min, max, sum, std]: [f64; 5], count: u64, p: [f64; 9]) -> Stats {
    Stats {
        avg,
        min,
        max,
        sum,
        std,
        count,
        p1: p[0],
        p5: p[1],
        p10: p[2],
        p25: p[3],
        p50: p[4],
        p75: p[5],
        p90: p[6],
        p95: p[7],
        p99: p[8],
    }
}

/// AIPerf's error-adjusted statistics of a latency: the successes' values plus one `+inf`
/// per failed request (a request that never answered took forever), with nearest-rank
/// percentiles (the value at rank `ceil(q/100 * n)`). What lands on a failure (`avg`,
/// `sum`, `max`, `std` and the upper percentiles) is infinite: exporters leave it out.
/// `None` when there are no failures (the metric would equal the plain one) or no values.
pub fn error_adjusted(values: impl Iterator<Item = f64>, failures: u64) -> Option<Stats> {
    let mut sorted: Vec<f64> = values.filter(|v| v.is_finite()).collect();
    if failures == 0 || sorted.is_empty() {
        return None;
    }
    sorted.sort_unstable_by(f64::total_cmp);
    let n = sorted.len() as u64 + failures;
    let rank = |q: f64| {
        let rank = ((q / 100.0) * n as f64).ceil().max(1.0) as usize;
        sorted.get(rank - 1).copied().unwrap_or(f64::INFINITY)
    };
    let inf = f64::INFINITY;
    Some(assemble(
        [inf, sorted[0], inf, inf, inf],
        n,
        PERCENTILES.map(rank),
    ))
}

/// Values per storage chunk. The first chunk grows by doubling up to exactly this (a short
/// run holds little); every later one is allocated whole, so a long run never copies a
/// series nor leaves freed buffers of every size behind.
const CHUNK: usize = 1 << 14;

/// Every value of one per-request metric, in arrival order, kept exactly (the exported
/// percentiles are computed from all of them, as AIPerf does) but compactly: a series
/// whose values are all whole numbers in `u32` range (token counts, most often) takes 4
/// bytes a value instead of 8, and switches to `f64` for good at its first other value.
#[derive(Debug, Clone, Default)]
pub struct Values {
    len: usize,
    store: Store,
}

#[derive(Debug, Clone)]
enum Store {
    Whole(Vec<Vec<u32>>),
    Float(Vec<Vec<f64>>),
}

impl Default for Store {
    fn default() -> Self {
        Store::Whole(Vec::new())
    }
}

/// `v` as a `u32` when that is lossless: converting back gives the same bits (so -0.0,
/// fractions, NaN and out-of-range values are not).
fn as_whole(v: f64) -> Option<u32> {
    let w = v as u32;
    (f64::from(w).to_bits() == v.to_bits()).then_some(w)
}

fn push_chunked<T>(chunks: &mut Vec<Vec<T>>, v: T) {
    match chunks.last_mut() {
        Some(last) if last.len() < CHUNK => last.push(v),
        Some(_) => {
            let mut chunk = Vec::with_capacity(CHUNK);
            chunk.push(v);
            chunks.push(chunk);
        }
        None => chunks.push(vec![v]),
    }
}

impl Values {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, v: f64) {
        self.len += 1;
        if let Store::Whole(chunks) = &mut self.store {
            match as_whole(v) {
                Some(w) => return push_chunked(chunks, w),
                None => self.store = Store::Float(to_float(chunks)),
            }
        }
        if let Store::Float(chunks) = &mut self.store {
            push_chunked(chunks, v);
        }
    }

    pub fn extend(&mut self, values: impl IntoIterator<Item = f64>) {
        for v in values {
            self.push(v);
        }
    }

    /// The values in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = f64> + '_ {
        let (whole, float) = match &self.store {
            Store::Whole(chunks) => (Some(chunks), None),
            Store::Float(chunks) => (None, Some(chunks)),
        };
        let whole = whole.into_iter().flatten().flatten().map(|&w| f64::from(w));
        let float = float.into_iter().flatten().flatten().copied();
        whole.chain(float)
    }

    /// [`stats`] of these values.
    pub fn stats(&self) -> Option<Stats> {
        stats_of(self.iter(), self.len())
    }

    /// Heap bytes the values take (what a long run pays per metric).
    #[cfg(test)]
    fn heap_bytes(&self) -> usize {
        match &self.store {
            Store::Whole(chunks) => chunks.iter().map(|c| c.capacity() * 4).sum(),
            Store::Float(chunks) => chunks.iter().map(|c| c.capacity() * 8).sum(),
        }
    }
}

fn to_float(chunks: &mut Vec<Vec<u32>>) -> Vec<Vec<f64>> {
    std::mem::take(chunks)
        .into_iter()
        .map(|c| c.into_iter().map(f64::from).collect())
        .collect()
}

/// Linear interpolation at `q/100 * (n-1)` of `n` (non-zero) sorted values, the `i`-th
/// read by `at(i)`.
fn percentile_sorted(n: usize, at: impl Fn(usize) -> f64, q: f64) -> f64 {
    let idx = q / 100.0 * (n - 1) as f64;
    let lo = (idx as usize).min(n - 1);
    let hi = (lo + 1).min(n - 1);
    let frac = idx - lo as f64;
    at(lo) + frac * (at(hi) - at(lo))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn one_to_ten() {
        let v: Vec<f64> = (1..=10).rev().map(f64::from).collect();
        let s = stats(&v).unwrap();
        assert_eq!((s.min, s.max, s.sum, s.count), (1.0, 10.0, 55.0, 10));
        assert!(close(s.avg, 5.5));
        assert!(close(s.std, 8.25f64.sqrt()));
        // Index q/100 * 9: p1 0.09, p5 0.45, p10 0.9, p25 2.25, p50 4.5, p75 6.75,
        // p90 8.1, p95 8.55, p99 8.91.
        let expected = [1.09, 1.45, 1.9, 3.25, 5.5, 7.75, 9.1, 9.55, 9.91];
        let got = [s.p1, s.p5, s.p10, s.p25, s.p50, s.p75, s.p90, s.p95, s.p99];
        for (g, e) in got.iter().zip(expected) {
            assert!(close(*g, e), "{got:?}");
        }
    }

    #[test]
    fn four_values() {
        let s = stats(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        // Index q/100 * 3.
        assert!(close(s.p25, 1.75));
        assert!(close(s.p50, 2.5));
        assert!(close(s.p75, 3.25));
        assert!(close(s.p99, 3.97));
        assert!(close(s.p1, 1.03));
        assert!(close(s.std, 1.25f64.sqrt()));
    }

    /// Eight successes and two failures: ten values ranked nearest, the top two infinite.
    #[test]
    fn error_adjusted_ranks_failures_as_infinite() {
        let values = [8.0, 1.0, 7.0, 2.0, 6.0, 3.0, 5.0, 4.0];
        let s = error_adjusted(values.iter().copied(), 2).expect("adjusted");
        assert_eq!(s.count, 10);
        assert_eq!(s.min, 1.0);
        // Ranks ceil(q/100 * 10): 1, 1, 1, 3, 5, 8, 9, 10, 10.
        assert_eq!(
            [s.p1, s.p5, s.p10, s.p25, s.p50, s.p75],
            [1.0, 1.0, 1.0, 3.0, 5.0, 8.0]
        );
        for v in [s.p90, s.p95, s.p99, s.avg, s.max, s.sum, s.std] {
            assert_eq!(v, f64::INFINITY);
        }
        assert_eq!(error_adjusted(values.iter().copied(), 0), None);
        assert_eq!(error_adjusted(std::iter::empty(), 3), None);
    }

    /// The compact store gives back exactly what was pushed, in order, across chunks and
    /// the switch from whole numbers to floats, and the same statistics as a plain slice.
    #[test]
    fn values_are_kept_exactly_and_compactly() {
        let mut values = Values::new();
        let whole: Vec<f64> = (0..CHUNK as u32 * 2 + 5)
            .map(|i| f64::from(i % 977))
            .collect();
        values.extend(whole.iter().copied());
        assert_eq!(values.len(), whole.len());
        assert!(values.iter().eq(whole.iter().copied()));
        // Whole numbers take 4 bytes each: two full chunks and a third allocated whole.
        assert_eq!(values.heap_bytes(), 3 * CHUNK * 4);
        assert_eq!(values.stats(), stats(&whole));

        let mut all = whole.clone();
        for v in [0.5, -0.0, f64::from(u32::MAX) + 1.0, f64::NAN, 3.0, -2.0] {
            values.push(v);
            all.push(v);
        }
        assert_eq!(values.len(), all.len());
        let bits = |v: f64| v.to_bits();
        assert!(values.iter().map(bits).eq(all.iter().copied().map(bits)));
        assert_eq!(values.stats(), stats(&all));
        assert!(Values::new().stats().is_none());
    }

    #[test]
    fn single_value_and_degenerate_input() {
        let s = stats(&[7.5]).unwrap();
        assert_eq!(
            (s.p1, s.p99, s.min, s.max, s.std, s.count),
            (7.5, 7.5, 7.5, 7.5, 0.0, 1)
        );
        assert!(stats(&[]).is_none());
        assert!(stats(&[f64::NAN, f64::INFINITY]).is_none());
        let s = stats(&[f64::NAN, 2.0, f64::NEG_INFINITY, 4.0]).unwrap();
        assert_eq!((s.count, s.avg), (2, 3.0));
    }

    /// The integer keys sort floats exactly as `total_cmp` does, and give them back.
    #[test]
    fn order_keys_sort_as_total_cmp() {
        let mut values = vec![
            -0.0,
            0.0,
            1.5,
            -1.5,
            f64::MIN,
            f64::MAX,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            1e-310,
            -1e-310,
            3.0,
            3.0,
        ];
        let mut keys: Vec<u64> = values.iter().map(|&v| order_key(v)).collect();
        keys.sort_unstable();
        values.sort_unstable_by(f64::total_cmp);
        let back: Vec<u64> = keys
            .into_iter()
            .map(|k| from_order_key(k).to_bits())
            .collect();
        assert_eq!(back, values.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    }
}
