//! End to end: `--slice-duration` against `aiperf-mock` with a known TTFT. A 3 s profiling
//! phase in 1 s slices must give three slices one second apart, whose request counts add
//! up to the run's, whose requests are exactly those `profile_export.jsonl` places in
//! them by their start, and whose TTFT is the mock's; the warmup is never sliced.

mod common;

use common::{core_binary, profile, read_json, read_records, run_dir, stat, Mock};

use serde_json::Value;

const SEC: u64 = 1_000_000_000;

/// A slice's single value or statistic.
fn slice_stat(slice: &Value, tag: &str, field: &str) -> f64 {
    slice[tag][field]
        .as_f64()
        .unwrap_or_else(|| panic!("{tag}.{field} missing from {slice:#}"))
}

fn ns(value: &Value) -> u64 {
    value.as_u64().unwrap_or_else(|| panic!("not ns: {value}"))
}

#[test]
fn a_three_second_run_in_one_second_slices() {
    core_binary();
    let mock = Mock::start(&["--ttft-ms", "40", "--itl-ms", "2", "--output-tokens", "8"]);
    let dir = run_dir("timeslices");
    let output = profile(
        &mock,
        &dir,
        &[
            "--endpoint-type",
            "chat",
            "--streaming",
            "--concurrency",
            "4",
            "--warmup-request-count",
            "8",
            "--benchmark-duration",
            "3",
            "--benchmark-grace-period",
            "5",
            "--slice-duration",
            "1",
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    for line in [
        "Timeslice JSON Export: ",
        "Timeslice CSV Export: ",
        "profile_export_aiperf_timeslices.json",
    ] {
        assert!(stdout.contains(line), "no {line:?} in:\n{stdout}");
    }

    let run = read_json(&dir);
    let text = std::fs::read_to_string(dir.join("profile_export_aiperf_timeslices.json"))
        .expect("timeslices json");
    let doc: Value = serde_json::from_str(&text).expect("valid json");
    assert_eq!(doc["input_config"]["artifacts"]["slice_duration"], 1.0);
    let slices = doc["timeslices"].as_array().expect("timeslices");
    // Requests start only within the 3 s after the first one: three slices, none empty.
    assert_eq!(slices.len(), 3, "{text}");
    let starts: Vec<u64> = slices.iter().map(|s| ns(&s["start_ns"])).collect();
    assert_eq!(starts[1] - starts[0], SEC);
    assert_eq!(starts[2] - starts[1], SEC);
    for (i, slice) in slices.iter().enumerate() {
        let end = ns(&slice["end_ns"]);
        let complete = slice.get("is_complete").is_none();
        if complete {
            assert_eq!(end, starts[i] + SEC, "slice {i}");
        } else {
            assert_eq!(slice["is_complete"], false);
            assert!(i == 2 && end < starts[i] + SEC, "slice {i}: {slice:#}");
        }
        assert!(slice.get("effective_latency").is_none(), "whole run only");
        // Rates are per second of the slice's window.
        let window_s = (end - starts[i]) as f64 / 1e9;
        let count = slice_stat(slice, "request_count", "avg");
        let rate = slice_stat(slice, "request_throughput", "avg");
        assert!((rate - count / window_s).abs() < 1e-9 * rate, "slice {i}");
        // The mock's TTFT, in every slice.
        let ttft = slice_stat(slice, "time_to_first_token", "p50");
        assert!(
            (ttft - 40.0).abs() <= 3.0,
            "slice {i}: TTFT p50 {ttft} ms, expected 40 ± 3"
        );
        assert_eq!(
            slice_stat(slice, "time_to_first_token", "count"),
            count,
            "slice {i}: one TTFT per request"
        );
    }

    // The slices share out the run's requests, warmup excluded.
    let counts: Vec<f64> = slices
        .iter()
        .map(|s| slice_stat(s, "request_count", "avg"))
        .collect();
    let total = stat(&run, "request_count", "avg");
    assert_eq!(counts.iter().sum::<f64>(), total, "{counts:?}");
    assert!(
        counts.iter().all(|&c| c >= 10.0),
        "every second holds requests: {counts:?}"
    );
    // Exactly the requests whose start falls in each window, by the records' own stamps.
    let records = read_records(&dir);
    assert_eq!(
        records
            .iter()
            .filter(|r| r["metadata"]["benchmark_phase"] == "warmup")
            .count(),
        8
    );
    let mut by_start = [0.0; 3];
    for r in records
        .iter()
        .filter(|r| r["metadata"]["benchmark_phase"] == "profiling")
    {
        let start = ns(&r["metadata"]["request_start_ns"]);
        assert!(
            start >= starts[0],
            "a request started before the first slice"
        );
        let index = ((start - starts[0]) / SEC) as usize;
        by_start[index] += 1.0;
    }
    assert_eq!(by_start.to_vec(), counts);

    // The CSV says the same, row by row.
    let csv = std::fs::read_to_string(dir.join("profile_export_aiperf_timeslices.csv"))
        .expect("timeslices csv");
    assert!(csv.starts_with("Timeslice,Start_NS,End_NS,Metric,Unit,Stat,Value\r\n"));
    for (i, count) in counts.iter().enumerate() {
        let row = format!(
            "\r\n{i},{},{},Request Count,requests,avg,{count:.2}\r\n",
            starts[i],
            ns(&slices[i]["end_ns"])
        );
        assert!(csv.contains(&row), "no {row:?} in the CSV");
    }
    assert!(!csv.contains("\r\n3,"), "three slices only");
    let _ = std::fs::remove_dir_all(&dir);
}
