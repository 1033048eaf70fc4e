//! End to end: the acceptance run for thread-per-core scheduling. Poisson at
//! 2,000 req/s for 10 s over two workers must keep the achieved rate within 2% and the
//! coefficient of variation of the actual inter-arrival times within 0.05 of 1.
//!
//! It lives in its own test binary because cargo runs test binaries one at a time: here
//! it shares the machine with nothing but the mock, so the figures are the client's. On
//! a machine loaded by other work the OS scheduler, not the client, decides the send
//! times (cv 1.034 measured with a fuzzer busy on the other core, 1.34 at load average
//! 7); the failure message prints the load average and the client's lateness for that.

mod common;

use common::{core_binary, profile, read_records, run_dir, Mock};

use serde_json::Value;

/// A nanosecond field of a record's metadata.
fn ns(record: &Value, field: &str) -> i128 {
    i128::from(
        record["metadata"][field]
            .as_u64()
            .unwrap_or_else(|| panic!("{field} missing from {record}")),
    )
}

/// Mean and coefficient of variation (population standard deviation over mean).
fn mean_and_cv(samples: &[f64]) -> (f64, f64) {
    let n = samples.len() as f64;
    let mean = samples.iter().sum::<f64>() / n;
    let var = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt() / mean)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_else(|_| "unknown".into())
}

/// One run: `Ok` with its summary, or `Err` naming what was off.
fn poisson_run(mock: &Mock) -> Result<String, String> {
    let dir = run_dir("poisson");
    profile(
        mock,
        &dir,
        &[
            "--request-rate",
            "2000",
            "--arrival-pattern",
            "poisson",
            "--benchmark-duration",
            "10",
            "--workers",
            "2",
            "--isl",
            "8",
            "--osl",
            "1",
            "--random-seed",
            "11",
        ],
    );
    let records = read_records(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    let merged_cv = |field: &str| {
        let mut times: Vec<i128> = records.iter().map(|r| ns(r, field)).collect();
        times.sort_unstable();
        let gaps: Vec<f64> = times.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
        (times, mean_and_cv(&gaps).1)
    };
    let (_, intended_cv) = merged_cv("credit_issued_ns");
    let (sent, cv) = merged_cv("request_start_ns");
    let span_s = (sent[sent.len() - 1] - sent[0]) as f64 / 1e9;
    let rate = (sent.len() - 1) as f64 / span_s;
    let mut lateness: Vec<i128> = records
        .iter()
        .map(|r| ns(r, "request_start_ns") - ns(r, "credit_issued_ns"))
        .collect();
    lateness.sort_unstable();
    let late_us = |q: f64| lateness[((lateness.len() - 1) as f64 * q) as usize] as f64 / 1e3;
    let summary = format!(
        "poisson 2000/s x 10 s on 2 workers: {} requests, {rate:.1} req/s over {span_s:.3} s, \
         inter-arrival cv {cv:.4} (schedule {intended_cv:.4}); scheduling lateness p50 {:.0} \
         us, p99 {:.0} us; load average {}",
        sent.len(),
        late_us(0.5),
        late_us(0.99),
        load_average().trim()
    );
    // The two workers' schedules merge into one Poisson process, sent as scheduled.
    let ok = (intended_cv - 1.0).abs() <= 0.05
        && (rate - 2000.0).abs() <= 2000.0 * 0.02
        && (cv - 1.0).abs() <= 0.05;
    if ok {
        Ok(summary)
    } else {
        Err(summary)
    }
}

/// The figures are the client's only on a machine it has to itself: a run that misses
/// (a build or another benchmark took the cores) is repeated once, and the test fails
/// only when both miss.
#[test]
fn poisson_over_two_workers_keeps_rate_and_cv() {
    core_binary();
    let mock = Mock::start(&["--ttft-ms", "1", "--output-tokens", "1", "--threads", "2"]);
    match poisson_run(&mock) {
        Ok(summary) => eprintln!("{summary}"),
        Err(first) => {
            eprintln!("missed, running again: {first}");
            match poisson_run(&mock) {
                Ok(summary) => eprintln!("{summary}"),
                Err(second) => panic!("missed twice:\n{first}\n{second}"),
            }
        }
    }
}
