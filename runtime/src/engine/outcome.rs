//! How a finished run is judged beyond its metrics: a warning when most requests failed.

use crate::results::{ErrorCount, RunResults};

/// Share of failed requests from which the run warns: below it, errors are part of the
/// measurement; above it, the numbers mostly describe the failures.
const WARN_FAILED_SHARE: f64 = 0.5;

/// A warning when all, or at least half, of the profiling requests failed, naming the
/// most common error: what tells a person, or a script reading the console, that the
/// server was barely measured. A run where every request failed also exits 1, as AIPerf
/// 0.13's does; unlike AIPerf's, it still writes its summary, whose `error_summary` says
/// what went wrong.
pub(crate) fn failure_warning(results: &RunResults) -> Option<String> {
    let failed: u64 = results.error_summary.iter().map(|e| e.count).sum();
    let succeeded = results
        .metric("request_count")
        .map_or(0, |m| m.avg.max(0.0) as u64);
    let total = failed.saturating_add(succeeded);
    if failed == 0 || (failed as f64) < WARN_FAILED_SHARE * total as f64 {
        return None;
    }
    let top = results.error_summary.iter().max_by_key(|e| e.count)?;
    let share = if succeeded == 0 && failed == 1 {
        "the only request failed".to_owned()
    } else if succeeded == 0 {
        format!("all {} requests failed", group(failed))
    } else {
        format!(
            "{} of {} requests ({:.1}%) failed",
            group(failed),
            group(total),
            100.0 * failed as f64 / total as f64
        )
    };
    let times = match top.count {
        1 => "once".to_owned(),
        n => format!("{} requests", group(n)),
    };
    let meaning = if succeeded == 0 {
        "The metrics describe the failures, not the server.".to_owned()
    } else {
        format!(
            "The latencies describe only the {} that succeeded; the error-adjusted rows \
             count the failures.",
            match succeeded {
                1 => "one request".to_owned(),
                n => format!("{} requests", group(n)),
            }
        )
    };
    Some(format!(
        "WARNING: {share}; most common error: {} ({times}). {meaning}",
        describe(top),
    ))
}

fn describe(e: &ErrorCount) -> String {
    let d = &e.error_details;
    match d.code {
        Some(code) => format!("{} {code}: {}", d.kind, d.message),
        None => format!("{}: {}", d.kind, d.message),
    }
}

/// `90688` as `90,688`, as the console tables write counts.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ErrorDetails;
    use crate::results::MetricResult;

    fn results(valid: Option<f64>, errors: &[(&str, u64)]) -> RunResults {
        RunResults {
            metrics: valid
                .map(|avg| MetricResult {
                    tag: "request_count",
                    header: "Request Count",
                    unit: "requests",
                    display_order: None,
                    stats: None,
                    avg,
                })
                .into_iter()
                .collect(),
            error_summary: errors
                .iter()
                .map(|(kind, count)| ErrorCount {
                    error_details: ErrorDetails::new(None, *kind, "Connection refused"),
                    count: *count,
                })
                .collect(),
            ..RunResults::default()
        }
    }

    #[test]
    fn every_request_failing_is_named_with_its_top_error() {
        let w = failure_warning(&results(
            None,
            &[("Timeout", 3), ("ConnectionRefused", 90688)],
        ))
        .expect("a warning");
        assert_eq!(
            w,
            "WARNING: all 90,691 requests failed; most common error: ConnectionRefused: \
             Connection refused (90,688 requests). The metrics describe the failures, not \
             the server."
        );
    }

    #[test]
    fn a_single_failed_request_reads_as_one() {
        let w = failure_warning(&results(None, &[("ConnectionRefused", 1)])).expect("warn");
        assert_eq!(
            w,
            "WARNING: the only request failed; most common error: ConnectionRefused: \
             Connection refused (once). The metrics describe the failures, not the server."
        );
    }

    #[test]
    fn a_majority_of_failures_warns_and_a_minority_does_not() {
        let w = failure_warning(&results(Some(40.0), &[("ConnectionReset", 60)])).expect("warn");
        assert_eq!(
            w,
            "WARNING: 60 of 100 requests (60.0%) failed; most common error: ConnectionReset: \
             Connection refused (60 requests). The latencies describe only the 40 requests \
             that succeeded; the error-adjusted rows count the failures."
        );
        assert_eq!(failure_warning(&results(Some(60.0), &[("X", 40)])), None);
        assert_eq!(failure_warning(&results(Some(10.0), &[])), None);
    }
}
