//! End to end: AIPerf's sweep-line metrics (the Effective and Active tables) of a
//! closed-loop run against `aiperf-mock`.

mod common;

use common::{core_binary, profile, read_json, run_dir, stat, Mock};

use serde_json::Value;

/// Concurrency 4 against a mock answering in 20 ms + 15 × 2 ms: four requests are in flight
/// nearly all the time (a request's successor goes out within a fraction of a millisecond
/// of its end, and the last round ends together), so the time-weighted concurrency is 4
/// within 10 %, and it splits into prefill (the 20 ms to the first token) and decode.
#[test]
fn effective_concurrency_follows_the_closed_loop() {
    core_binary();
    let mock = Mock::start(&["--ttft-ms", "20", "--itl-ms", "2", "--output-tokens", "16"]);
    let dir = run_dir("sweep_closed_loop");
    let output = profile(
        &mock,
        &dir,
        &[
            "--endpoint-type",
            "chat",
            "--streaming",
            "--concurrency",
            "4",
            "--request-count",
            "40",
            "--slice-duration",
            "0.1",
        ],
    );
    let json = read_json(&dir);
    let conc = stat(&json, "effective_concurrency", "avg");
    assert!((conc - 4.0).abs() <= 0.4, "effective concurrency {conc}");
    assert_eq!(stat(&json, "effective_concurrency", "max"), 4.0);
    // Every request of this run is either waiting for its first token or decoding.
    let prefill = stat(&json, "effective_prefill_concurrency", "avg");
    let decode = stat(&json, "effective_decode_concurrency", "avg");
    assert!(
        (prefill + decode - conc).abs() <= 1e-6 * conc,
        "{prefill} + {decode}"
    );
    assert!(
        prefill > 0.5 && decode > 0.5,
        "prefill {prefill}, decode {decode}"
    );
    // A time-weighted metric has no count, sum or lower percentiles, as in AIPerf.
    let m = &json["effective_concurrency"];
    assert_eq!(m["unit"], "requests");
    for absent in ["count", "sum", "p1", "p25", "p75"] {
        assert!(m.get(absent).is_none(), "{absent} in {m}");
    }
    // Active decode throughput counts decode time only, so it is at least the effective.
    let eff = stat(&json, "effective_decode_throughput", "avg");
    let act = stat(&json, "active_decode_throughput", "avg");
    assert!(eff > 0.0 && act >= eff, "effective {eff}, active {act}");
    assert!(stat(&json, "tokens_in_flight", "max") >= 4.0 * 550.0);

    let stdout = String::from_utf8_lossy(&output.stdout);
    for title in ["LLM Metrics: Effective", "LLM Metrics: Active"] {
        assert!(stdout.contains(title), "no {title} table:\n{stdout}");
    }
    let effective = stdout.find("Effective Concurrency").expect("row");
    let active = stdout.find("Active Decode Throughput").expect("row");
    let default = stdout.find("Time to First Token").expect("row");
    assert!(
        effective < active && active < default,
        "table order:\n{stdout}"
    );
    // AIPerf 0.13's CO-aware latency is the Effective table's last row.
    let co_aware = stdout.find("Effective Latency (CO-aware)").expect("row");
    let in_flight = stdout.find("Tokens In Flight").expect("row");
    let active_title = stdout.find("LLM Metrics: Active").expect("title");
    assert!(
        in_flight < co_aware && co_aware < active_title,
        "Effective table:\n{stdout}"
    );
    assert_eq!(stdout.matches("Effective Latency (CO-aware)").count(), 1);

    let csv = std::fs::read_to_string(dir.join("profile_export_aiperf.csv")).expect("csv");
    let row = csv
        .lines()
        .find(|l| l.starts_with("Effective Concurrency,"))
        .expect("CSV row");
    // avg,min,max, no sum, no p1..p25, p50, no p75, p90,p95,p99,std.
    let cells: Vec<&str> = row.split(',').collect();
    assert_eq!(cells.len(), 15, "{row}");
    assert!(
        cells[4..8].iter().all(|c| c.is_empty()) && cells[10].is_empty(),
        "{row}"
    );

    // Each time slice has them, over its own window.
    let text = std::fs::read_to_string(dir.join("profile_export_aiperf_timeslices.json"))
        .expect("timeslices");
    let slices: Value = serde_json::from_str(&text).expect("valid json");
    let slices = slices["timeslices"].as_array().expect("slices");
    assert!(slices.len() >= 2, "{} slices", slices.len());
    for slice in slices {
        let c = slice["effective_concurrency"]["avg"]
            .as_f64()
            .expect("slice metric");
        assert!((0.0..=4.0).contains(&c), "{c}");
    }
}
