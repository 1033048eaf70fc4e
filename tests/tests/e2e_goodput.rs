//! End to end: `--goodput` against `aiperf-mock` with a known TTFT of 40 ms. An SLO the
//! mock always meets makes every request good, one it can never meet none; the counts
//! must be exact in the summary and in every per-request line.

mod common;

use common::{core_binary, metric, profile, read_json, read_records, run_dir, stat, Mock};

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

const REQUESTS: u64 = 40;

fn goodput_run(mock: &Mock, name: &str, slo: &str) -> (Value, Vec<Value>, String) {
    let dir = run_dir(name);
    let count = REQUESTS.to_string();
    let output = profile(
        mock,
        &dir,
        &[
            "--endpoint-type",
            "chat",
            "--streaming",
            "--concurrency",
            "4",
            "--request-count",
            &count,
            "--goodput",
            slo,
        ],
    );
    let csv = std::fs::read_to_string(dir.join("profile_export_aiperf.csv")).expect("csv");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let json = read_json(&dir);
    let records = read_records(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    (json, records, csv + &stdout)
}

/// Every record's `good_request_count` verdict.
fn verdicts(records: &[Value]) -> Vec<Value> {
    records
        .iter()
        .map(|r| r["metrics"]["good_request_count"].clone())
        .collect()
}

#[test]
fn goodput_counts_requests_within_the_ttft_slo() {
    core_binary();
    let mock = Mock::start(&["--ttft-ms", "40", "--itl-ms", "2", "--output-tokens", "8"]);
    let n = REQUESTS as f64;

    // 60 ms is above the mock's 40 ms: every request is good.
    let (json, records, text) = goodput_run(&mock, "goodput-all", "time_to_first_token:60");
    assert_eq!(stat(&json, "request_count", "avg"), n);
    let ttft_max = stat(&json, "time_to_first_token", "max");
    assert!(
        ttft_max < 60.0,
        "TTFT max {ttft_max} ms: the SLO run is void"
    );
    assert_eq!(
        metric(&json, "good_request_count"),
        &json!({"unit": "requests", "avg": n})
    );
    assert_eq!(stat(&json, "good_request_fraction", "avg"), 1.0);
    // Same count over the same duration.
    let goodput = stat(&json, "goodput", "avg");
    let throughput = stat(&json, "request_throughput", "avg");
    assert!(
        (goodput - throughput).abs() <= 1e-9 * throughput,
        "goodput {goodput}, request throughput {throughput}"
    );
    assert_eq!(metric(&json, "goodput")["unit"], "requests/sec");
    assert_eq!(
        json["input_config"]["slos"],
        json!({"time_to_first_token": 60.0})
    );
    assert_eq!(records.len(), REQUESTS as usize);
    let one = json!({"value": 1, "unit": "requests"});
    assert!(verdicts(&records).iter().all(|v| v == &one), "{records:?}");
    assert!(text.contains("\r\nGood Request Count,40.00\r\n"), "{text}");
    assert!(
        text.contains("\r\nGoodRequestFraction (ratio),1.00\r\n"),
        "{text}"
    );
    assert!(text.contains("Goodput (requests/sec)"), "{text}");

    // 20 ms is below it: no request can be good.
    let (json, records, text) = goodput_run(&mock, "goodput-none", "time_to_first_token:20");
    assert_eq!(stat(&json, "request_count", "avg"), n);
    assert_eq!(
        metric(&json, "good_request_count"),
        &json!({"unit": "requests", "avg": 0.0})
    );
    assert_eq!(stat(&json, "good_request_fraction", "avg"), 0.0);
    assert_eq!(stat(&json, "goodput", "avg"), 0.0);
    let zero = json!({"value": 0, "unit": "requests"});
    assert_eq!(records.len(), REQUESTS as usize);
    assert!(verdicts(&records).iter().all(|v| v == &zero), "{records:?}");
    assert!(text.contains("\r\nGood Request Count,0.00\r\n"), "{text}");
}

/// A tag the run cannot judge stops it before any request, naming the tag and the
/// tags it accepts.
#[test]
fn goodput_with_a_bad_tag_fails_at_start_up() {
    let mock = Mock::start(&["--ttft-ms", "1", "--output-tokens", "2"]);
    let dir = run_dir("goodput-bad-tag");
    let run = |extra: &[&str]| {
        let _ = std::fs::remove_dir_all(&dir);
        let output = Command::new(core_binary())
            .args([
                "profile",
                "--model",
                "m",
                "--url",
                &mock.url,
                "--ui-type",
                "none",
            ])
            .args(["--artifact-dir", dir.to_str().expect("utf-8 path")])
            .args(extra)
            .output()
            .expect("run the core binary");
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        assert!(!Path::new(&dir).join("profile_export.jsonl").exists());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let stderr = run(&["--streaming", "--goodput", "ttft:5"]);
    assert!(
        stderr.contains(
            "error: Invalid --goodput: unknown metric tag 'ttft'. Valid tags for this run: \
             time_to_first_token, time_to_second_token,"
        ),
        "{stderr}"
    );
    // Without --streaming there is no TTFT to judge.
    let stderr = run(&["--goodput", "request_latency:100 time_to_first_token:5"]);
    assert!(
        stderr.contains(
            "error: Invalid --goodput: 'time_to_first_token' is not applicable to this run \
             (it needs --streaming). Valid tags for this run: request_latency, \
             e2e_output_token_throughput,"
        ),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
