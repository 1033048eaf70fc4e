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
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    // Summed in arrival order, as AIPerf's running sum is.
    let sum: f64 = sorted.iter().sum();
    sorted.sort_unstable_by(f64::total_cmp);
    let n = sorted.len();
    let avg = sum / n as f64;
    let var = sorted.iter().map(|v| (v - avg) * (v - avg)).sum::<f64>() / n as f64;
    let p = PERCENTILES.map(|q| percentile_sorted(&sorted, q));
    Some(Stats {
        avg,
        min: sorted[0],
        max: sorted[n - 1],
        sum,
        std: var.sqrt(),
        count: n as u64,
        p1: p[0],
        p5: p[1],
        p10: p[2],
        p25: p[3],
        p50: p[4],
        p75: p[5],
        p90: p[6],
        p95: p[7],
        p99: p[8],
    })
}

/// Linear interpolation at `q/100 * (n-1)` of non-empty sorted values.
fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    let idx = q / 100.0 * (n - 1) as f64;
    let lo = (idx as usize).min(n - 1);
    let hi = (lo + 1).min(n - 1);
    let frac = idx - lo as f64;
    sorted[lo] + frac * (sorted[hi] - sorted[lo])
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
}
