//! End to end: `aiperf-gen build --plugins core`, then the built binary benchmarks
//! `aiperf-mock` and its artifacts must match the mock's configured truth.
//!
//! The core binary is built once per test process (release, shared target directory)
//! and reused by every test here.

mod common;

use common::{core_binary, profile, profile_url, read_json, read_records, run_dir, stat, Mock};

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

/// The console note of a run stopped with four requests in flight.
const FOUR_CUT_OFF: &str = "NOTE: 4 requests in flight when the run stopped were cancelled: \
                            like AIPerf, the metrics leave them out; profile_export.jsonl \
                            keeps them (error 499, was_cancelled).";

/// The issue's acceptance run: TTFT 40 ms, ITL 4 ms, 64 tokens, concurrency 8, 200 requests.
fn check_streaming_run(driver: &str) {
    core_binary();
    let mock = Mock::start(&["--ttft-ms", "40", "--itl-ms", "4", "--output-tokens", "64"]);
    let dir = run_dir(driver);
    let output = profile(
        &mock,
        &dir,
        &[
            "--endpoint-type",
            "chat",
            "--streaming",
            "--concurrency",
            "8",
            "--request-count",
            "200",
            "--io-driver",
            driver,
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("NVIDIA AIPerf | LLM Metrics"),
        "no console table:\n{stdout}"
    );
    assert!(
        stdout.contains("Time to First Token (ms)"),
        "no TTFT row:\n{stdout}"
    );

    let text = std::fs::read_to_string(dir.join("profile_export_aiperf.json")).expect("json");
    let json: Value = serde_json::from_str(&text).expect("valid json");
    assert_eq!(stat(&json, "request_count", "avg"), 200.0);
    let errors = json
        .get("error_request_count")
        .and_then(|m| m["avg"].as_f64())
        .unwrap_or(0.0);
    assert_eq!(errors, 0.0, "errors: {:#}", json["error_summary"]);
    let ttft = stat(&json, "time_to_first_token", "p50");
    assert!(
        (ttft - 40.0).abs() <= 2.0,
        "TTFT p50 {ttft} ms, expected 40 ± 2"
    );
    let itl = stat(&json, "inter_token_latency", "p50");
    assert!(
        (itl - 4.0).abs() <= 0.5,
        "ITL p50 {itl} ms, expected 4 ± 0.5"
    );
    for field in ["min", "max", "avg"] {
        assert_eq!(
            stat(&json, "output_sequence_length", field),
            64.0,
            "OSL {field}"
        );
    }
    assert_eq!(
        stat(&json, "input_sequence_length", "avg"),
        550.0,
        "ISL default 550"
    );
    let latency = stat(&json, "request_latency", "p50");
    let expected = 40.0 + 63.0 * 4.0;
    assert!(
        (latency - expected).abs() <= 3.0,
        "latency p50 {latency}, expected {expected}"
    );

    let records = std::fs::read_to_string(dir.join("profile_export.jsonl")).expect("jsonl");
    let lines: Vec<Value> = records
        .lines()
        .map(|l| serde_json::from_str(l).expect("jsonl line"))
        .collect();
    assert_eq!(lines.len(), 200);
    assert!(lines
        .iter()
        .all(|l| l["metadata"]["benchmark_phase"] == "profiling"));
    assert!(lines.iter().all(|l| l.get("error").is_none()));

    let csv = std::fs::read_to_string(dir.join("profile_export_aiperf.csv")).expect("csv");
    // AIPerf writes its CSV with Python's csv module: CRLF row ends.
    assert!(csv.starts_with("Metric,avg,min,max,sum,p1,p5,p10,p25,p50,p75,p90,p95,p99,std\r\n"));
    assert!(csv.contains("\r\nRequest Count,200.00\r\n"), "csv:\n{csv}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn core_binary_measures_the_mock_on_io_uring_or_its_fallback() {
    check_streaming_run("auto");
}

#[test]
fn core_binary_measures_the_mock_on_epoll() {
    check_streaming_run("epoll");
}

#[test]
fn non_streaming_completions_and_embeddings() {
    let mock = Mock::start(&["--ttft-ms", "5", "--output-tokens", "8"]);
    for endpoint in ["completions", "embeddings"] {
        let dir = run_dir(endpoint);
        profile(
            &mock,
            &dir,
            &[
                "--endpoint-type",
                endpoint,
                "--concurrency",
                "2",
                "--request-count",
                "10",
            ],
        );
        let text = std::fs::read_to_string(dir.join("profile_export_aiperf.json")).expect("json");
        let json: Value = serde_json::from_str(&text).expect("valid json");
        assert_eq!(stat(&json, "request_count", "avg"), 10.0, "{endpoint}");
        let latency = stat(&json, "request_latency", "min");
        assert!(
            latency >= 5.0,
            "{endpoint}: latency {latency} below the mock's 5 ms"
        );
    }
}

#[test]
fn unknown_endpoint_is_refused_with_a_suggestion() {
    let output = Command::new(core_binary())
        .args(["profile", "--model", "m", "--endpoint-type", "chta"])
        .output()
        .expect("run the core binary");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("invalid value 'chta' for '--endpoint-type"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "[possible values: chat, completions, responses, messages, embeddings, \
             chat_embeddings, nim_embeddings, nim_rankings, cohere_rankings, \
             hf_tei_rankings, huggingface_generate, image_generation, video_generation, \
             solido_rag, template]"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("a similar value exists: 'chat'"),
        "{stderr}"
    );
}

#[test]
fn plugins_command_lists_what_is_linked() {
    let output = Command::new(core_binary())
        .args(["plugins", "endpoint"])
        .output()
        .expect("run");
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    for name in ["chat", "completions", "embeddings"] {
        assert!(
            stdout.contains(&format!("│ {name} ")),
            "{name} missing:\n{stdout}"
        );
    }
}

#[test]
fn constant_request_rate_is_kept() {
    let mock = Mock::start(&["--ttft-ms", "1", "--output-tokens", "4"]);
    let dir = run_dir("rate");
    profile(
        &mock,
        &dir,
        &[
            "--streaming",
            "--request-rate",
            "100",
            "--arrival-pattern",
            "constant",
            "--request-count",
            "100",
            "--isl",
            "32",
        ],
    );
    let json = read_json(&dir);
    assert_eq!(stat(&json, "request_count", "avg"), 100.0);
    // 100 starts planned 10 ms apart, from the phase start that every worker shares.
    let mut records = read_records(&dir);
    let ns = |r: &Value, f: &str| r["metadata"][f].as_u64().expect("timestamp") as f64 / 1e9;
    records.sort_by(|a, b| ns(a, "credit_issued_ns").total_cmp(&ns(b, "credit_issued_ns")));
    let (first, last) = (&records[0], &records[records.len() - 1]);
    let planned = ns(last, "credit_issued_ns") - ns(first, "credit_issued_ns");
    assert!((planned - 0.99).abs() < 1e-6, "planned span {planned} s");
    // The measured span is that, plus the last request's few milliseconds, less however
    // late the first one went out (the OS may start a worker late on a loaded machine;
    // the schedule does not move for it).
    let first_late = ns(first, "request_start_ns") - ns(first, "credit_issued_ns");
    let duration = stat(&json, "benchmark_duration", "avg");
    assert!(
        (0.99 - first_late..1.1).contains(&duration),
        "duration {duration} s, first request {first_late} s late"
    );
    let lateness = stat(&json, "scheduling_lateness", "p50");
    assert!(lateness < 2.0, "scheduling lateness p50 {lateness} ms");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn warmup_requests_are_recorded_but_not_counted() {
    let mock = Mock::start(&["--ttft-ms", "2", "--output-tokens", "4"]);
    let dir = run_dir("warmup");
    profile(
        &mock,
        &dir,
        &[
            "--warmup-request-count",
            "5",
            "--request-count",
            "20",
            "--concurrency",
            "2",
        ],
    );
    assert_eq!(stat(&read_json(&dir), "request_count", "avg"), 20.0);
    let records = read_records(&dir);
    let phase = |r: &Value| {
        r["metadata"]["benchmark_phase"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(records.len(), 25);
    assert_eq!(records.iter().filter(|r| phase(r) == "warmup").count(), 5);
    assert_eq!(
        records.iter().filter(|r| phase(r) == "profiling").count(),
        20
    );

    // As AIPerf with two phases: the warmup's metrics beside the root's, each phase's
    // own summaries under phases/, and the manifest that lists them.
    let root = read_json(&dir);
    assert_eq!(root["warmup_metrics"]["request_count"]["avg"], 5.0);
    assert!(root["warmup_metrics"]["request_latency"]["avg"].as_f64() > Some(1.9));
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("phase_manifest.json")).expect("manifest"),
    )
    .expect("manifest json");
    assert_eq!(manifest["schema_version"], 1);
    let phases = manifest["phases"].as_array().expect("phases");
    assert_eq!(phases.len(), 2);
    for (index, (phase, name, count)) in
        [(&phases[0], "warmup", 5u64), (&phases[1], "profiling", 20)]
            .into_iter()
            .enumerate()
    {
        assert_eq!(phase["phase_index"], index as u64);
        assert_eq!(phase["phase_name"], name);
        assert_eq!(phase["phase_kind"], name);
        assert_eq!(phase["total_request_count"], count);
        assert_eq!(phase["successful_request_count"], count);
        assert_eq!(phase["error_request_count"], 0);
        assert_eq!(phase["error_summary"], serde_json::json!([]));
        assert_eq!(phase["was_cancelled"], false);
        assert!(
            phase["start_ns"].as_u64() < phase["end_ns"].as_u64(),
            "{phase}"
        );
        let json_path = format!("phases/{name}/profile_export_aiperf.json");
        assert_eq!(phase["metrics_json"], json_path.as_str());
        assert_eq!(
            phase["metrics_csv"],
            format!("phases/{name}/profile_export_aiperf.csv").as_str()
        );
        let summary: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(&json_path)).expect("phase summary"),
        )
        .expect("phase json");
        assert_eq!(summary["request_count"]["avg"], count as f64);
        assert!(summary.get("warmup_metrics").is_none());
        assert!(summary.get("telemetry_data").is_none(), "{summary}");
        let csv =
            std::fs::read_to_string(dir.join(format!("phases/{name}/profile_export_aiperf.csv")))
                .expect("phase csv");
        assert!(csv.contains(&format!("Request Count,{count}")), "{csv}");
        // AIPerf exports a phase without telemetry: no section for it.
        assert!(!csv.contains("GPU_Index"), "{csv}");
    }
    // The root file ends with AIPerf's (empty) GPU telemetry section, as its files do.
    let csv = std::fs::read_to_string(dir.join("profile_export_aiperf.csv")).expect("csv");
    let telemetry = "\r\n\r\n\r\nEndpoint,GPU_Index,GPU_Name,GPU_UUID,Platform,Metric,avg,min,\
                     max,sum,p1,p5,p10,p25,p50,p75,p90,p95,p99,std\r\n";
    assert!(csv.ends_with(telemetry), "{csv}");
    // And its JSON has AIPerf's telemetry summary when no endpoint answered.
    let root = read_json(&dir);
    let summary = &root["telemetry_data"]["summary"];
    assert_eq!(
        summary["endpoints_configured"],
        serde_json::json!([]),
        "{root}"
    );
    assert_eq!(summary["start_time"], root["start_time"]);
    assert_eq!(csv.matches("GPU_Index").count(), 1);
    assert_eq!(phases[0]["profiling_index"], Value::Null);
    assert_eq!(phases[1]["profiling_index"], 0);
    assert!(phases[0]["end_ns"].as_u64() <= phases[1]["end_ns"].as_u64());
    // The profiling phase's file is the root summary's metrics.
    let profiling: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("phases/profiling/profile_export_aiperf.json"))
            .expect("profiling summary"),
    )
    .expect("json");
    assert_eq!(profiling["request_latency"], root["request_latency"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--profile-export-prefix` names each phase's summaries too, as AIPerf 0.13 names them
/// (`phases/<phase>/my_run.{json,csv}` for `my_run.jsonl`), and the manifest points
/// there; a later run without a warmup clears them as it clears unprefixed ones.
#[test]
fn the_export_prefix_names_the_phase_summaries() {
    let mock = Mock::start(&["--ttft-ms", "2", "--output-tokens", "2"]);
    let dir = run_dir("warmup-prefix");
    let prefix = ["--profile-export-prefix", "my_run.jsonl"];
    let mut args = vec!["--warmup-request-count", "2", "--request-count", "3"];
    args.extend(prefix);
    profile(&mock, &dir, &args);
    let mut files: Vec<String> = ["warmup", "profiling"]
        .iter()
        .flat_map(|phase| {
            std::fs::read_dir(dir.join("phases").join(phase))
                .expect("phase directory")
                .map(move |e| {
                    format!(
                        "{phase}/{}",
                        e.expect("entry").file_name().to_string_lossy()
                    )
                })
        })
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "profiling/my_run.csv",
            "profiling/my_run.json",
            "warmup/my_run.csv",
            "warmup/my_run.json"
        ]
    );
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("phase_manifest.json")).expect("manifest"),
    )
    .expect("manifest json");
    for (phase, name, count) in [(0, "warmup", 2.0), (1, "profiling", 3.0)] {
        let entry = &manifest["phases"][phase];
        assert_eq!(
            entry["metrics_json"],
            format!("phases/{name}/my_run.json").as_str()
        );
        assert_eq!(
            entry["metrics_csv"],
            format!("phases/{name}/my_run.csv").as_str()
        );
        let summary: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("phases/{name}/my_run.json")))
                .expect("phase summary"),
        )
        .expect("phase json");
        assert_eq!(summary["request_count"]["avg"], count);
    }
    let mut args = vec!["--request-count", "3"];
    args.extend(prefix);
    let output = common::run_profile(&[mock.url.as_str()], &dir, &args);
    common::assert_succeeded(&output);
    for name in ["warmup", "profiling"] {
        for file in ["my_run.json", "my_run.csv"] {
            let path = dir.join("phases").join(name).join(file);
            assert!(!path.exists(), "{} of the earlier run", path.display());
        }
    }
    assert!(!dir.join("phase_manifest.json").exists());
    // Nor do the emptied directories.
    assert!(!dir.join("phases").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--warmup-duration` bounds the warmup by time: about 0.3 s of two 20 ms slots, then
/// exactly the profiling requests asked for.
#[test]
fn warmup_duration_bounds_the_warmup_phase() {
    let mock = Mock::start(&["--ttft-ms", "20", "--output-tokens", "2"]);
    let dir = run_dir("warmup-duration");
    profile(
        &mock,
        &dir,
        &[
            "--warmup-duration",
            "0.3",
            "--request-count",
            "6",
            "--concurrency",
            "2",
        ],
    );
    let records = read_records(&dir);
    let warmup = records
        .iter()
        .filter(|r| r["metadata"]["benchmark_phase"] == "warmup")
        .count() as u64;
    assert!(
        (16..=32).contains(&warmup),
        "{warmup} warmup requests in 0.3 s"
    );
    assert_eq!(records.len() as u64, warmup + 6);
    assert_eq!(stat(&read_json(&dir), "request_count", "avg"), 6.0);
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("phase_manifest.json")).expect("manifest"),
    )
    .expect("manifest json");
    let phase = &manifest["phases"][0];
    assert_eq!(phase["total_request_count"], warmup);
    let span_s = (phase["end_ns"].as_u64().unwrap_or(0) as f64
        - phase["start_ns"].as_u64().unwrap_or(0) as f64)
        / 1e9;
    assert!((0.29..0.4).contains(&span_s), "warmup spanned {span_s} s");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A timed warmup waits for all its requests in flight, as AIPerf 0.13's does, unless
/// `--warmup-grace-period` cuts that wait: 400 ms requests started in a 0.1 s warmup
/// finish without one, and are cancelled 0.1 s after the warmup with one.
#[test]
fn a_timed_warmup_waits_for_its_requests_unless_given_a_grace_period() {
    let mock = Mock::start(&["--ttft-ms", "400", "--output-tokens", "1"]);
    let dir = run_dir("warmup-grace");
    let warmup_outcomes = |grace: Option<&str>| {
        let mut args = vec![
            "--warmup-duration",
            "0.1",
            "--concurrency",
            "2",
            "--request-count",
            "2",
        ];
        if let Some(g) = grace {
            args.extend(["--warmup-grace-period", g]);
        }
        let output = profile(&mock, &dir, &args);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let records = read_records(&dir);
        let warmup: Vec<&Value> = records
            .iter()
            .filter(|r| r["metadata"]["benchmark_phase"] == "warmup")
            .collect();
        let cancelled = warmup
            .iter()
            .filter(|r| r["metadata"]["was_cancelled"] == true)
            .count();
        (warmup.len(), cancelled, read_json(&dir), stdout)
    };
    let (sent, cancelled, _, stdout) = warmup_outcomes(None);
    assert_eq!((sent, cancelled), (2, 0), "both warmup requests finish");
    assert!(!stdout.contains("NOTE: "), "{stdout}");
    let (sent, cancelled, json, stdout) = warmup_outcomes(Some("0.1"));
    assert_eq!((sent, cancelled), (2, 2), "both cut by the grace period");
    assert!(
        stdout.contains(
            "NOTE: 2 requests in flight when the warmup stopped were cancelled: like AIPerf, \
             the metrics leave them out; profile_export.jsonl keeps them (error 499, \
             was_cancelled)."
        ),
        "{stdout}"
    );
    assert_eq!(json["input_config"]["phases"][0]["grace_period"], 0.1);
    assert_eq!(stat(&json, "request_count", "avg"), 2.0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Each warmup setting falls back to the run's, as in AIPerf 0.13: with only
/// `--warmup-arrival-pattern constant`, the warmup paces at the run's `--request-rate`
/// (20/s: 4 requests 50 ms apart, exactly, where Poisson's gaps would vary).
#[test]
fn warmup_settings_fall_back_to_the_run_s() {
    let mock = Mock::start(&["--ttft-ms", "1", "--output-tokens", "1"]);
    let dir = run_dir("warmup-fallback");
    profile(
        &mock,
        &dir,
        &[
            "--warmup-request-count",
            "4",
            "--warmup-arrival-pattern",
            "constant",
            "--request-rate",
            "20",
            "--request-count",
            "2",
        ],
    );
    let records = read_records(&dir);
    let mut issued: Vec<f64> = records
        .iter()
        .filter(|r| r["metadata"]["benchmark_phase"] == "warmup")
        .map(|r| r["metadata"]["credit_issued_ns"].as_u64().unwrap_or(0) as f64 / 1e6)
        .collect();
    issued.sort_by(f64::total_cmp);
    assert_eq!(issued.len(), 4);
    for gap in issued.windows(2).map(|w| w[1] - w[0]) {
        assert!((gap - 50.0).abs() < 0.5, "warmup gaps {issued:?} ms");
    }
    let json = read_json(&dir);
    let warmup = &json["input_config"]["phases"][0];
    assert_eq!(warmup["type"], "constant");
    assert_eq!(warmup["rate"], 20.0);

    // Warmup settings without a warmup are not used, as AIPerf 0.13 ignores them, and
    // said so instead of refused (a script written for AIPerf still runs).
    let output = profile(
        &mock,
        &dir,
        &["--warmup-concurrency", "4", "--request-count", "2"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the warmup load flags are not used: there is no warmup"),
        "{stderr}"
    );
    assert_eq!(read_records(&dir).len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The warmup at its own load: 6 requests of 100 ms at `--warmup-concurrency 3` take two
/// waves (about 0.2 s), then profiling runs at the run's concurrency 1 (4 × 0.1 s).
#[test]
fn the_warmup_runs_at_its_own_load() {
    let mock = Mock::start(&["--ttft-ms", "100", "--output-tokens", "1"]);
    let dir = run_dir("warmup-load");
    profile(
        &mock,
        &dir,
        &[
            "--warmup-request-count",
            "6",
            "--warmup-concurrency",
            "3",
            "--concurrency",
            "1",
            "--request-count",
            "4",
        ],
    );
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("phase_manifest.json")).expect("manifest"),
    )
    .expect("manifest json");
    let span_s = |phase: &Value| {
        (phase["end_ns"].as_u64().unwrap_or(0) as f64
            - phase["start_ns"].as_u64().unwrap_or(0) as f64)
            / 1e9
    };
    let (warmup, profiling) = (&manifest["phases"][0], &manifest["phases"][1]);
    assert_eq!(warmup["total_request_count"], 6);
    assert!(
        (0.19..0.35).contains(&span_s(warmup)),
        "warmup {} s",
        span_s(warmup)
    );
    assert_eq!(profiling["total_request_count"], 4);
    assert!(
        (0.39..0.6).contains(&span_s(profiling)),
        "profiling {} s",
        span_s(profiling)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `input_config` in AIPerf 0.13's layout, as the binary writes it: the flags given are
/// listed even at their defaults (`--endpoint-type chat`), the phases are resolved, and
/// our own settings sit beside it, under `aiperf_gen_config`.
#[test]
fn input_config_is_written_in_aiperf_layout() {
    let mock = Mock::start(&["--output-tokens", "3"]);
    let dir = run_dir("input-config");
    profile(
        &mock,
        &dir,
        &[
            "--endpoint-type",
            "chat",
            "--streaming",
            "--request-count",
            "4",
            "--concurrency",
            "2",
            "--warmup-request-count",
            "2",
            "--isl",
            "32",
            "--osl",
            "3",
            "--random-seed",
            "5",
            "--workers",
            "1",
        ],
    );
    let artifacts = std::path::absolute(&dir).expect("absolute artifact dir");
    let expected = serde_json::json!({
        "models": {"items": [{"name": "m"}]},
        "endpoint": {"urls": [mock.url], "type": "chat", "streaming": true},
        "datasets": [{
            "name": "main",
            "type": "synthetic",
            "entries": 4,
            "random_seed": 5,
            "prompts": {"isl": {"mean": 32.0}, "osl": {"mean": 3.0}},
        }],
        "phases": [
            {
                "name": "warmup",
                "kind": "warmup",
                "type": "concurrency",
                "exclude_from_results": true,
                "requests": 2,
                "concurrency": 2,
            },
            {
                "name": "profiling",
                "kind": "profiling",
                "type": "concurrency",
                "requests": 4,
                "concurrency": 2,
            },
        ],
        "artifacts": {
            "dir": artifacts.to_string_lossy(),
            "auto_plot": false,
            "plot_required": false,
        },
        "tokenizer": {"name": "builtin"},
        "network_latency": {"enabled": false},
        "otel": {},
        "mlflow": {},
        "wandb": {},
        "runtime": {"ui": "none"},
    });
    let json = read_json(&dir);
    assert_eq!(json["input_config"], expected, "{:#}", json["input_config"]);
    assert_eq!(
        json["aiperf_gen_config"],
        serde_json::json!({"workers": 1, "io_driver": "auto"})
    );
    // Each phase's own summary carries the same configuration.
    let warmup: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("phases/warmup/profile_export_aiperf.json"))
            .expect("the warmup's summary"),
    )
    .expect("valid json");
    assert_eq!(warmup["input_config"], expected);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn benchmark_duration_bounds_the_run() {
    let mock = Mock::start(&["--ttft-ms", "20", "--output-tokens", "2"]);
    let dir = run_dir("duration");
    profile(
        &mock,
        &dir,
        &["--benchmark-duration", "1", "--concurrency", "2"],
    );
    let json = read_json(&dir);
    let count = stat(&json, "request_count", "avg");
    // Two slots of ~20 ms requests for one second: about 100 requests.
    assert!((60.0..=110.0).contains(&count), "{count} requests in 1 s");
    let duration = stat(&json, "benchmark_duration", "avg");
    assert!((0.95..1.2).contains(&duration), "duration {duration} s");
    let _ = std::fs::remove_dir_all(&dir);
}

/// With no grace period, the requests in flight when the duration ends are cut off, as
/// AIPerf 0.13 cuts them: recorded in the JSONL, left out of the counts and errors, and
/// the phase (the window its rates are per second of) ends when they were cancelled.
#[test]
fn requests_in_flight_at_the_duration_end_are_cut_off_not_failed() {
    // Each request takes 50 + 19 × 20 = 430 ms: two rounds of four finish in 1 s.
    let mock = Mock::start(&["--ttft-ms", "50", "--itl-ms", "20", "--output-tokens", "20"]);
    let dir = run_dir("duration-cut-off");
    let args = [
        "--streaming",
        "--benchmark-duration",
        "1",
        "--benchmark-grace-period",
        "0",
        "--concurrency",
        "4",
    ];
    let output = profile(&mock, &dir, &args);
    let records = read_records(&dir);
    let cut: Vec<&Value> = records
        .iter()
        .filter(|r| r["metadata"]["was_cancelled"] == true)
        .collect();
    assert_eq!((records.len(), cut.len()), (12, 4), "{records:#?}");
    for r in &cut {
        assert_eq!(r["error"]["code"], 499, "{r}");
    }
    let json = read_json(&dir);
    assert_eq!(stat(&json, "request_count", "avg"), 8.0);
    assert!(json.get("error_request_count").is_none(), "{json:#}");
    assert_eq!(json["error_summary"], serde_json::json!([]));
    let ns = |r: &Value, field: &str| r["metadata"][field].as_u64().expect(field) as f64;
    let first = records
        .iter()
        .map(|r| ns(r, "credit_issued_ns"))
        .fold(f64::MAX, f64::min);
    let last = records
        .iter()
        .map(|r| ns(r, "request_end_ns"))
        .fold(0.0, f64::max);
    let window_s = (last - first) / 1e9;
    assert!((1.0..1.1).contains(&window_s), "window {window_s} s");
    let throughput = stat(&json, "request_throughput", "avg");
    assert!(
        (throughput - 8.0 / window_s).abs() < 1e-3 * throughput,
        "{throughput} requests/s over {window_s} s"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(FOUR_CUT_OFF), "{stdout}");
    // Without a records file the note points nowhere.
    let output = profile(
        &mock,
        &dir,
        &[&args[..], &["--export-level", "summary"]].concat(),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(
            "NOTE: 4 requests in flight when the run stopped were cancelled: like AIPerf, the \
             metrics leave them out."
        ),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn request_options_reach_the_payload_and_secrets_stay_out_of_artifacts() {
    let mock = Mock::start(&["--output-tokens", "3"]);
    let dir = run_dir("options");
    let secret = "sk-e2e-secret-value";
    // Headers of any name may carry credentials: none of their values may be written.
    let header_secrets = ["hdrsecretvalue123", "subkeysecret456", "foovalue789"];
    let output = profile(
        &mock,
        &dir,
        &[
            "--request-count",
            "3",
            "--extra-inputs",
            "temperature:0.5",
            "--header",
            "X-Foo:foovalue789",
            "-H",
            "X-Secret-Hdr:hdrsecretvalue123",
            "--header=Ocp-Apim-Subscription-Key:subkeysecret456",
            "--api-key",
            secret,
            "--osl",
            "3",
            "--random-seed",
            "7",
            // The raw export holds every header as sent: it must redact them too.
            "--export-level",
            "raw",
        ],
    );
    assert!(dir.join("profile_export_raw.jsonl").exists());
    // Listed as AIPerf lists it, after the summaries.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let raw_line = format!(
        "JSON Export: {}\nRaw Records: {}\n",
        dir.join("profile_export_aiperf.json").display(),
        dir.join("profile_export_raw.jsonl").display()
    );
    assert!(stdout.contains(&raw_line), "{stdout}");
    let inputs: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("inputs.json")).expect("inputs.json"),
    )
    .expect("valid inputs.json");
    let payload = &inputs["data"][0]["payloads"][0];
    assert_eq!(payload["temperature"], 0.5);
    assert_eq!(payload["max_completion_tokens"], 3);
    assert_eq!(payload["model"], "m");
    assert_eq!(stat(&read_json(&dir), "output_sequence_length", "avg"), 3.0);
    let json = read_json(&dir);
    // AIPerf's layout (an object by name under `endpoint`); every value redacted.
    let endpoint = &json["input_config"]["endpoint"];
    assert_eq!(
        endpoint["headers"],
        serde_json::json!({
            "X-Foo": "<redacted>",
            "X-Secret-Hdr": "<redacted>",
            "Ocp-Apim-Subscription-Key": "<redacted>"
        })
    );
    assert_eq!(endpoint["api_key"], "<redacted>");
    assert_eq!(endpoint["extra"], serde_json::json!({"temperature": 0.5}));
    let cli = json["run_info"]["cli_command"]
        .as_str()
        .expect("cli_command");
    assert!(cli.contains("-H X-Secret-Hdr:<redacted>"), "{cli}");
    let mut texts = vec![
        (
            "stdout".to_owned(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        ),
        (
            "stderr".to_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ),
    ];
    let mut dirs = vec![dir.clone()];
    while let Some(next) = dirs.pop() {
        for entry in std::fs::read_dir(&next).expect("artifacts").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("artifact");
                texts.push((
                    path.display().to_string(),
                    String::from_utf8_lossy(&bytes).into(),
                ));
            }
        }
    }
    assert!(texts.len() > 4, "too few artifacts: {texts:?}");
    for (name, text) in &texts {
        for leaked in header_secrets.iter().chain([&secret]) {
            assert!(!text.contains(leaked), "{name} leaks `{leaked}`");
        }
    }

    // The same seed composes the same prompts.
    let again = run_dir("options-again");
    profile(
        &mock,
        &again,
        &["--request-count", "3", "--random-seed", "7", "--osl", "3"],
    );
    let first = std::fs::read_to_string(dir.join("inputs.json")).expect("inputs");
    let second = std::fs::read_to_string(again.join("inputs.json")).expect("inputs");
    let prompt = |text: &str| -> Value {
        let v: Value = serde_json::from_str(text).expect("json");
        v["data"][0]["payloads"][0]["messages"].clone()
    };
    assert_eq!(prompt(&first), prompt(&second));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&again);
}

/// A mock whose requests take 0.2 s + 99 × 20 ms ≈ 2.2 s: a signal finds them in flight.
fn slow_mock() -> Mock {
    Mock::start(&[
        "--ttft-ms",
        "200",
        "--itl-ms",
        "20",
        "--output-tokens",
        "100",
    ])
}

/// Waits until a run started in `dir` is ready to send: signals are timed from then
/// (inputs.json is written just before the workers start), not from launch, which is
/// slow on a loaded machine.
fn wait_until_ready(dir: &Path) {
    let ready = std::time::Instant::now();
    while !dir.join("inputs.json").exists() {
        assert!(
            ready.elapsed() < std::time::Duration::from_secs(30),
            "the run never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Starts a profile run in the background and interrupts it: each `(delay_ms, signal)`
/// sends `kill -SIGNAL` after the delay. The run must exit 128 + the first signal.
/// Returns the JSON export and how long the run took to stop after the last signal.
fn interrupted_run(
    mock: &Mock,
    dir: &Path,
    extra: &[&str],
    interrupts: &[(u64, &str)],
) -> (Value, std::time::Duration) {
    let _serial = common::measuring();
    let _ = std::fs::remove_dir_all(dir);
    let mut child = Command::new(core_binary())
        .args(["profile", "--model", "m", "--url", &mock.url, "--streaming"])
        .args([
            "--artifact-dir",
            dir.to_str().expect("utf-8 path"),
            "--ui-type",
            "none",
        ])
        .args(["--concurrency", "4", "--request-count", "1000"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run the core binary");
    wait_until_ready(dir);
    for (delay_ms, signal) in interrupts {
        std::thread::sleep(std::time::Duration::from_millis(*delay_ms));
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            panic!("the run did not stop after {interrupts:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let expected = match interrupts.first().map(|i| i.1) {
        Some("TERM") => 143,
        _ => 130,
    };
    assert_eq!(
        status.code(),
        Some(expected),
        "exit status after {interrupts:?}"
    );
    // Everything a finished run leaves is there, marked cancelled.
    for file in ["profile_export_aiperf.csv", "profile_export_console.txt"] {
        assert!(
            dir.join(file).exists(),
            "{file} missing after {interrupts:?}"
        );
    }
    let ready = std::fs::read_to_string(dir.join(".aiperf_results_ready.json")).expect("ready");
    assert!(ready.contains("\"was_cancelled\":true"), "{ready}");
    let console = std::fs::read_to_string(dir.join("profile_export_console.txt")).expect("text");
    let signal = if expected == 143 { "SIGTERM" } else { "SIGINT" };
    assert!(
        console.contains(&format!("WARNING: the run was interrupted ({signal})")),
        "{console}"
    );
    // AIPerf 0.13's banner over the tables of a cancelled run.
    assert!(
        console.starts_with(
            "\n\nNVIDIA AIPerf | INCOMPLETE RESULTS\nRun cancelled before all records were \
             processed.\nThese metrics were computed over a subset of the run and must not be \
             compared against complete runs.\n"
        ),
        "{console}"
    );
    (read_json(dir), started.elapsed())
}

#[test]
fn sigint_cancels_in_flight_requests_after_the_grace_period_and_keeps_every_record() {
    // Each request takes 0.2 s + 99 × 20 ms ≈ 2.2 s: all four are in flight at the signal.
    let mock = slow_mock();
    let dir = run_dir("sigint");
    let (json, _) = interrupted_run(
        &mock,
        &dir,
        &["--benchmark-grace-period", "0.3"],
        &[(700, "INT")],
    );
    assert_eq!(json["was_cancelled"], true);
    assert_eq!(json["is_complete"], false);
    assert_eq!(
        json["incomplete_reason"],
        "Run cancelled before all records were processed."
    );
    let records = read_records(&dir);
    assert_eq!(records.len(), 4, "every sent request is recorded");
    for r in &records {
        assert_eq!(r["metadata"]["was_cancelled"], true, "{r}");
        assert_eq!(r["error"]["type"], "RequestCancellationError", "{r}");
    }
    // Cut off by the stop, not failed: AIPerf keeps no record of them and counts no error.
    assert_eq!(json["error_summary"], serde_json::json!([]));
    assert!(json.get("error_request_count").is_none(), "{json:#}");
    let console = std::fs::read_to_string(dir.join("profile_export_console.txt")).expect("text");
    assert!(console.contains(FOUR_CUT_OFF), "{console}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Records are spooled while a run lasts, so a process killed outright loses them; a
/// stop signal writes them out at once, before the grace period ends, as `docker stop`
/// kills 10 s after its SIGTERM. Here requests take 2 s at concurrency 20: the signal
/// comes after two rounds (40 records), the kill 0.6 s later, before the third ends.
#[test]
fn a_stop_signal_writes_the_spooled_records_before_a_kill() {
    let _serial = common::measuring();
    let mock = Mock::start(&["--ttft-ms", "2000", "--output-tokens", "2"]);
    let dir = run_dir("sigint-then-kill");
    let _ = std::fs::remove_dir_all(&dir);
    let mut child = Command::new(core_binary())
        .args(["profile", "--model", "m", "--url", &mock.url])
        .args(["--artifact-dir", dir.to_str().expect("utf-8 path")])
        .args(["--ui-type", "none", "--concurrency", "20"])
        .args(["--request-count", "1000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run the core binary");
    wait_until_ready(&dir);
    std::thread::sleep(std::time::Duration::from_millis(5000));
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill")
        .success());
    std::thread::sleep(std::time::Duration::from_millis(600));
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let text = std::fs::read_to_string(dir.join("profile_export.jsonl")).expect("records");
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a whole record per line"))
        .collect();
    assert!(records.len() >= 40, "{} records", records.len());
    assert!(records
        .iter()
        .all(|r| r["metadata"]["was_cancelled"] == false));
    assert!(!dir.join("profile_export_aiperf.json").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A signal that comes once every request has ended, while the spooled records are being
/// processed, stops nothing: the results are complete, say so, and the run exits 0 (it
/// was marked cancelled and incomplete, exit 130, with every record written). The signal
/// goes as the log says the run ended; a run whose processing was over by then is
/// repeated with more requests.
#[test]
fn a_signal_after_the_last_request_leaves_the_results_complete() {
    use std::io::BufRead;
    let _serial = common::measuring();
    let mock = Mock::start(&["--ttft-ms", "0", "--output-tokens", "2"]);
    let dir = run_dir("sigint-after-run");
    for requests in [20_000, 60_000, 150_000] {
        let _ = std::fs::remove_dir_all(&dir);
        let count = requests.to_string();
        let mut child = Command::new(core_binary())
            .args(["profile", "--model", "m", "--url", &mock.url])
            .args(["--artifact-dir", dir.to_str().expect("utf-8 path")])
            .args(["--ui-type", "none", "--concurrency", "32"])
            .args(["--request-count", &count, "--isl", "8"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the core binary");
        let stderr = child.stderr.take().expect("piped stderr");
        let mut lines = std::io::BufReader::new(stderr).lines();
        let ended = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|line| line.contains("run ended; processing"));
        assert!(ended, "no 'run ended' line");
        let pid = child.id().to_string();
        let signalled = Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill")
            .success();
        // Drained so the child never blocks on a full pipe.
        let rest: Vec<String> = lines.map_while(Result::ok).collect();
        let status = child.wait().expect("wait");
        let noticed = rest
            .iter()
            .any(|l| l.contains("interrupted after the last request ended"));
        if !(signalled && noticed) {
            // Processing was over before the signal: nothing was tested.
            continue;
        }
        assert_eq!(status.code(), Some(0), "{rest:?}");
        let json = read_json(&dir);
        assert_eq!(json["was_cancelled"], false);
        assert_eq!(json["is_complete"], true);
        assert_eq!(read_records(&dir).len(), requests);
        let console =
            std::fs::read_to_string(dir.join("profile_export_console.txt")).expect("console");
        assert!(!console.contains("INCOMPLETE"), "{console}");
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    panic!("every run had processed its records before the signal came");
}

/// A client far behind its rate sends nothing new after the first signal: thousands of
/// its requests wait for connections, and they went on being sent for seconds after the
/// stop (the last 9 s after it here). Those not yet written are recorded as cancelled,
/// unsent. One worker cannot send 200,000 requests a second, so it is behind anywhere.
#[test]
fn a_client_behind_its_rate_sends_nothing_after_the_signal() {
    let _serial = common::measuring();
    let mock = Mock::start(&["--ttft-ms", "0", "--output-tokens", "1"]);
    let dir = run_dir("sigint-behind");
    let _ = std::fs::remove_dir_all(&dir);
    // Under a low open-file limit: a client this far behind opens a connection per
    // request in flight, and thousands of them would take the loopback ports other
    // tests running beside this one have reserved.
    let mut child = common::profile_under_ulimit("-n 256", &mock.url, &dir)
        .args(["--workers", "1", "--isl", "8"])
        .args(["--request-rate", "200000", "--benchmark-duration", "0.5"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run the core binary");
    wait_until_ready(&dir);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let signalled = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after the epoch")
        .as_nanos();
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill")
        .success());
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130));
    let records = read_records(&dir);
    // A response's first bytes come after its request was written. (Most requests of
    // such a run may fail before that: one connection per request in flight soon runs
    // into the open-file limit.)
    let answered_after: Vec<f64> = records
        .iter()
        .filter_map(|r| r["metadata"]["request_ack_ns"].as_u64())
        .map(|ack| (i128::from(ack) - signalled as i128) as f64 / 1e6)
        .filter(|&ms| ms >= 500.0)
        .collect();
    let unsent = records
        .iter()
        .filter(|r| {
            r["error"]["message"] == "cancelled before it was sent: the run stopped"
                && r["metadata"]["was_cancelled"] == true
        })
        .count();
    assert!(
        unsent > 0,
        "no request was held back ({} records)",
        records.len()
    );
    let console = std::fs::read_to_string(dir.join("profile_export_console.txt")).expect("console");
    let note = match unsent {
        1 => "NOTE: one request waiting for a connection when the run stopped was not sent"
            .to_owned(),
        n => format!(
            "NOTE: {n} requests waiting for a connection when the run stopped were not sent"
        ),
    };
    assert!(console.contains(&note), "{console}");
    // They waited past their time: the client was behind, though the requests it did send
    // may have left on time.
    // The health counts them, and the arrivals due before the signal that the loop had
    // not reached yet (no record: nothing was composed for them to send).
    let health = &read_json(&dir)["client_health"];
    let at_stop = health["unsent_at_stop"].as_u64().unwrap_or(0);
    assert!(at_stop >= unsent as u64, "{at_stop} < {unsent}: {health}");
    assert_eq!(health["client_bottleneck"], true);
    let waited = health["unsent_wait_max_ms"].as_f64().unwrap_or(0.0);
    assert!(waited > 1.0, "{health}");
    let reason = match at_stop {
        1 => "1 request was still waiting to be sent when the run stopped".to_owned(),
        n => format!("{n} requests were still waiting to be sent when the run stopped"),
    };
    assert!(console.contains(&reason), "{console}");
    assert!(
        answered_after.is_empty(),
        "{} responses began 500 ms or more after the signal (up to {:.0} ms; {} records, \
         {unsent} unsent)",
        answered_after.len(),
        answered_after.iter().copied().fold(0.0, f64::max),
        records.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A first signal `first`, then SIGINT: the second cancels the in-flight requests at once
/// (the default 30 s grace period would outlast the test), and their records are written.
fn second_signal_cancels_at_once(name: &str, first: &'static str) {
    let mock = slow_mock();
    let dir = run_dir(name);
    let (json, stopped_after) = interrupted_run(&mock, &dir, &[], &[(500, first), (200, "INT")]);
    assert!(
        stopped_after < std::time::Duration::from_secs(3),
        "{stopped_after:?}"
    );
    assert_eq!(json["was_cancelled"], true);
    assert_eq!(read_records(&dir).len(), 4);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Stopped during the warmup: the empty profiling tables come with the reason, and the
/// warmup's requests cut off in flight are still recorded.
#[test]
fn a_run_stopped_during_the_warmup_says_so() {
    let mock = slow_mock();
    let dir = run_dir("sigint-warmup");
    let (json, _) = interrupted_run(
        &mock,
        &dir,
        &["--warmup-request-count", "100"],
        &[(500, "INT"), (200, "INT")],
    );
    assert_eq!(json["was_cancelled"], true);
    // The four warmup requests in flight were cut off: recorded, not summarized.
    let warmup: Vec<Value> = read_records(&dir)
        .into_iter()
        .filter(|r| r["metadata"]["benchmark_phase"] == "warmup")
        .collect();
    assert_eq!(warmup.len(), 4);
    let console = std::fs::read_to_string(dir.join("profile_export_console.txt")).expect("console");
    assert!(
        console.contains(
            "WARNING: no profiling request finished: the run stopped during the warmup, \
             cancelling its 4 requests in flight."
        ),
        "{console}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A dataset composed while the run goes (100,000 conversations of 200 tokens) and a run
/// stopped early: `inputs.json` lists, in order, the conversations composed so far and is
/// whole JSON; composing the other 99,000 would make the stop wait for them.
#[test]
fn a_stopped_run_lists_the_conversations_composed_so_far() {
    let ids = stopped_on_demand_run("sigint-on-demand", &[]);
    // The four sessions sent, and the queue composed ahead of them (at most 1,024 and
    // a batch), none beyond.
    assert!(
        (4..=1100).contains(&ids.len()),
        "{} conversations",
        ids.len()
    );
}

/// The same with the sessions drawn at random: nothing is listed while such a run goes
/// (its draws are not the dataset's order), so the stop lists, in dataset order, the
/// conversations it drew.
#[test]
fn a_stopped_sampled_run_lists_the_conversations_it_drew() {
    let ids = stopped_on_demand_run(
        "sigint-on-demand-random",
        &[
            "--dataset-sampling-strategy",
            "random",
            "--random-seed",
            "3",
        ],
    );
    assert!(
        (4..=1100).contains(&ids.len()),
        "{} conversations",
        ids.len()
    );
    let numbers: Vec<usize> = ids
        .iter()
        .map(|id| {
            id.trim_start_matches("session_")
                .parse()
                .expect("a numbered id")
        })
        .collect();
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "in dataset order: {numbers:?}"
    );
    // Random draws over 100,000 conversations: not the first ones in a row.
    assert!(
        numbers.last().is_some_and(|&n| n >= ids.len()),
        "{numbers:?}"
    );
}

/// Runs a 100,000-conversation dataset (composed on demand) stopped by two Ctrl-C, and
/// checks that the export is whole, `inputs.json` is JSON with distinct ids, and every
/// record's conversation is listed; the listed session ids.
fn stopped_on_demand_run(name: &str, extra: &[&str]) -> Vec<String> {
    let mock = slow_mock();
    let dir = run_dir(name);
    let mut args = vec!["--num-dataset-entries", "100000", "--isl", "200"];
    args.extend_from_slice(extra);
    let (json, stopped_after) = interrupted_run(&mock, &dir, &args, &[(500, "INT"), (200, "INT")]);
    assert_eq!(json["was_cancelled"], true);
    assert!(stopped_after.as_secs_f64() < 2.0, "{stopped_after:?}");
    let text = std::fs::read_to_string(dir.join("inputs.json")).expect("inputs.json");
    let inputs: Value = serde_json::from_str(&text).expect("inputs.json is JSON");
    let ids: Vec<String> = inputs["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|c| c["session_id"].as_str().expect("an id").to_owned())
        .collect();
    let unique: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
    assert_eq!(unique.len(), ids.len());
    // Unseeded, AIPerf names its sessions with UUIDs; conversations that were never held
    // whole get the same id in the records as in inputs.json.
    if !extra.contains(&"--random-seed") {
        assert!(ids.iter().all(|id| common::is_uuid(id)), "{ids:?}");
    }
    let records = read_records(&dir);
    assert!(!records.is_empty());
    for record in &records {
        let id = record["metadata"]["conversation_id"]
            .as_str()
            .expect("an id");
        assert!(unique.contains(id), "{id} is not in inputs.json");
    }
    let _ = std::fs::remove_dir_all(&dir);
    ids
}

#[test]
fn second_sigint_cancels_at_once() {
    second_signal_cancels_at_once("sigint2", "INT");
}

/// `docker stop` and Kubernetes send SIGTERM: it stops the run as a first Ctrl-C does,
/// and the export is complete.
#[test]
fn sigterm_stops_like_the_first_sigint_and_exports_everything() {
    let mock = slow_mock();
    let dir = run_dir("sigterm");
    let (json, _) = interrupted_run(
        &mock,
        &dir,
        &["--benchmark-grace-period", "0.3"],
        &[(700, "TERM")],
    );
    assert_eq!(json["was_cancelled"], true);
    assert_eq!(json["is_complete"], false);
    assert_eq!(
        json["incomplete_reason"],
        "Run cancelled before all records were processed."
    );
    let records = read_records(&dir);
    assert_eq!(records.len(), 4, "every sent request is recorded");
    for r in &records {
        assert_eq!(r["error"]["type"], "RequestCancellationError", "{r}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A second signal of either kind cancels the in-flight requests at once.
#[test]
fn sigterm_then_sigint_cancels_at_once() {
    second_signal_cancels_at_once("sigterm2", "TERM");
}

#[test]
fn a_share_of_requests_is_cancelled_on_purpose() {
    let mock = Mock::start(&["--ttft-ms", "50", "--itl-ms", "5", "--output-tokens", "20"]);
    let dir = run_dir("cancel-rate");
    profile(
        &mock,
        &dir,
        &[
            "--streaming",
            "--concurrency",
            "8",
            "--request-count",
            "200",
            "--request-cancellation-rate",
            "25",
            "--request-cancellation-delay",
            "0.01",
            "--random-seed",
            "3",
            "--warmup-request-count",
            "40",
        ],
    );
    let mut records = read_records(&dir);
    assert_eq!(records.len(), 240);
    // As AIPerf, whose simulator draws no cancellation for a warmup request (here 10 of
    // 40 were cancelled), and whose warmup phase has no `cancellation` in input_config.
    let warmup: Vec<Value> = records
        .extract_if(.., |r| r["metadata"]["benchmark_phase"] == "warmup")
        .collect();
    assert_eq!(warmup.len(), 40);
    assert!(warmup
        .iter()
        .all(|r| r["metadata"]["was_cancelled"] == false && r.get("error").is_none()));
    let config = read_json(&dir)["input_config"].clone();
    let phases = config["phases"].as_array().cloned().unwrap_or_default();
    let cancellation = |name: &str| {
        phases
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p.get("cancellation").cloned())
    };
    assert_eq!(cancellation("warmup"), Some(None), "{config}");
    assert!(
        matches!(cancellation("profiling"), Some(Some(_))),
        "{config}"
    );
    let cancelled = records
        .iter()
        .filter(|r| r["metadata"]["was_cancelled"] == true)
        .count();
    // 25% of 200, binomial sd ≈ 6.
    assert!((30..=70).contains(&cancelled), "{cancelled} cancelled");
    // In AIPerf's words, stamped where the request ended.
    for r in records
        .iter()
        .filter(|r| r["metadata"]["was_cancelled"] == true)
    {
        assert_eq!(
            r["error"]["message"], "Request cancelled 0.010s after being sent",
            "{r}"
        );
        assert_eq!(
            r["metadata"]["cancellation_time_ns"], r["metadata"]["request_end_ns"],
            "{r}"
        );
    }
    assert!(records
        .iter()
        .filter(|r| r["metadata"]["was_cancelled"] == false)
        .all(|r| r["metadata"].get("cancellation_time_ns").is_none()));
    let json = read_json(&dir);
    assert_eq!(
        stat(&json, "request_count", "avg") as usize,
        200 - cancelled
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn built_binary_lists_plugins_exactly_as_the_generator_does() {
    let gen = |args: &[&str]| -> String {
        let mut argv = vec!["aiperf-gen", "plugins", "--plugins", "core"];
        argv.extend_from_slice(args);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = aiperf_gen::cli::run(argv.into_iter().map(Into::into), &mut out, &mut err);
        assert_eq!(code, 0, "{}", String::from_utf8_lossy(&err));
        String::from_utf8_lossy(&out).into_owned()
    };
    let bin = |args: &[&str]| -> String {
        let out = Command::new(core_binary())
            .arg("plugins")
            .args(args)
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The usage hints name the program that prints them.
        String::from_utf8_lossy(&out.stdout).replace("aiperf-core plugins", "aiperf-gen plugins")
    };
    for args in [
        &[][..],
        &["--all"],
        &["endpoint"],
        &["endpoint", "chat"],
        &["ui", "none"],
    ] {
        assert_eq!(bin(args), gen(args), "plugins {args:?}");
    }
}

/// The heads of `count` requests to a [`common::capture_requests`] server.
fn capture_heads(count: usize) -> (String, std::thread::JoinHandle<Vec<String>>) {
    let (url, server) = common::capture_requests(count);
    let heads = std::thread::spawn(move || {
        let requests = server.join().expect("server");
        requests.into_iter().map(|(head, _)| head).collect()
    });
    (url, heads)
}

/// The values of header `name` in a request head, in order.
fn header_values<'a>(head: &'a str, name: &str) -> Vec<&'a str> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

#[test]
fn requests_carry_aiperf_id_headers_matching_their_records() {
    let (url, server) = capture_heads(4);
    let dir = run_dir("id-headers");
    profile_url(&url, &dir, &["--request-count", "4", "--concurrency", "1"]);
    let heads = server.join().expect("server");
    let mut records = read_records(&dir);
    records.sort_by_key(|r| r["metadata"]["request_start_ns"].as_u64());
    assert_eq!(heads.len(), records.len());
    let mut request_ids = std::collections::HashSet::new();
    for (head, record) in heads.iter().zip(&records) {
        let meta = &record["metadata"];
        let request_id = meta["x_request_id"].as_str().expect("x_request_id");
        let correlation = meta["x_correlation_id"].as_str().expect("x_correlation_id");
        assert_eq!(header_values(head, "x-request-id"), [request_id], "{head}");
        assert_eq!(
            header_values(head, "x-correlation-id"),
            [correlation],
            "{head}"
        );
        assert_eq!(
            header_values(head, "x-session-affinity"),
            [correlation],
            "{head}"
        );
        assert_eq!(request_id.len(), 36, "{request_id}");
        assert_eq!(&request_id[14..15], "4", "version 4: {request_id}");
        // Single-turn: every request is a session of its own.
        assert_ne!(request_id, correlation);
        assert!(
            request_ids.insert(request_id.to_owned()),
            "repeated {request_id}"
        );
        assert_eq!(meta["root_correlation_id"].as_str(), Some(correlation));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--session-header` renames the session id's header, as AIPerf 0.13's does: the records'
/// correlation ids go out under that name and `X-Correlation-ID` is not sent.
#[test]
fn the_session_header_renames_the_correlation_header() {
    let (url, server) = capture_heads(2);
    let dir = run_dir("session-header");
    profile_url(
        &url,
        &dir,
        &["--request-count", "2", "--session-header", "X-Session-ID"],
    );
    let heads = server.join().expect("server");
    let mut records = read_records(&dir);
    records.sort_by_key(|r| r["metadata"]["request_start_ns"].as_u64());
    assert_eq!(heads.len(), 2);
    for (head, record) in heads.iter().zip(&records) {
        let correlation = record["metadata"]["x_correlation_id"].as_str().expect("id");
        assert_eq!(header_values(head, "x-session-id"), [correlation], "{head}");
        assert!(header_values(head, "x-correlation-id").is_empty(), "{head}");
    }
    let json = read_json(&dir);
    assert_eq!(
        json["input_config"]["endpoint"]["session_header"],
        "X-Session-ID"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A header given by the user replaces ours, and the records carry the value that was
/// sent, so they can still be matched with the server's logs.
#[test]
fn a_header_given_by_the_user_replaces_the_id_header() {
    let (url, server) = capture_heads(2);
    let dir = run_dir("id-headers-user");
    profile_url(
        &url,
        &dir,
        &[
            "--request-count",
            "2",
            "--header",
            "X-Request-ID:first",
            "--header",
            "X-Request-ID:mine",
            "--header",
            r#"{"x-correlation-id": " ours "}"#,
        ],
    );
    for head in server.join().expect("server") {
        assert_eq!(header_values(&head, "x-request-id"), ["mine"], "{head}");
        assert_eq!(header_values(&head, "x-correlation-id"), ["ours"], "{head}");
    }
    let records = std::fs::read_to_string(dir.join("profile_export.jsonl")).expect("jsonl");
    assert_eq!(records.lines().count(), 2, "{records}");
    for line in records.lines() {
        let record: serde_json::Value = serde_json::from_str(line).expect("record");
        let meta = &record["metadata"];
        assert_eq!(meta["x_request_id"], "mine", "{line}");
        assert_eq!(meta["x_correlation_id"], "ours", "{line}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--dataset-sampling-strategy`: `sequential` (the default) sends the file in order,
/// `shuffle` each row once per pass in a new order, `random` draws with replacement; the
/// seeded ones repeat with `--random-seed`, and an unknown name is refused with the
/// linked ones.
#[test]
fn dataset_samplers_choose_each_sessions_conversation() {
    let mock = Mock::start(&["--output-tokens", "1"]);
    let inputs = run_dir("samplers-input");
    std::fs::create_dir_all(&inputs).expect("input dir");
    let file = inputs.join("rows.jsonl");
    let rows: String = (0..5)
        .map(|i| format!("{{\"session_id\": \"p{i}\", \"text\": \"prompt {i}\"}}\n"))
        .collect();
    std::fs::write(&file, rows).expect("input file");
    let order = |extra: &[&str]| -> Vec<String> {
        let dir = run_dir("samplers");
        let mut args = vec![
            "--input-file",
            file.to_str().expect("utf-8 path"),
            "--request-count",
            "10",
            "--concurrency",
            "1",
        ];
        args.extend_from_slice(extra);
        profile(&mock, &dir, &args);
        let sent = read_records(&dir)
            .iter()
            .map(|r| {
                r["metadata"]["conversation_id"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect();
        let _ = std::fs::remove_dir_all(&dir);
        sent
    };
    let names = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let in_order = names(&["p0", "p1", "p2", "p3", "p4", "p0", "p1", "p2", "p3", "p4"]);
    assert_eq!(order(&[]), in_order);
    assert_eq!(
        order(&["--dataset-sampling-strategy", "sequential"]),
        in_order
    );

    let shuffled = order(&[
        "--dataset-sampling-strategy",
        "shuffle",
        "--random-seed",
        "3",
    ]);
    for pass in shuffled.chunks(5) {
        let mut sorted = pass.to_vec();
        sorted.sort();
        assert_eq!(sorted, in_order[..5], "{shuffled:?}");
    }
    assert_ne!(shuffled, in_order);
    assert_eq!(
        order(&[
            "--dataset-sampling-strategy",
            "shuffle",
            "--random-seed",
            "3"
        ]),
        shuffled
    );

    let random = order(&[
        "--dataset-sampling-strategy",
        "random",
        "--random-seed",
        "3",
    ]);
    assert_eq!(random.len(), 10);
    assert!(random.iter().all(|id| in_order.contains(id)), "{random:?}");
    let mut distinct = random.clone();
    distinct.sort();
    distinct.dedup();
    assert!(distinct.len() < 10, "ten draws of five repeat: {random:?}");
    assert_eq!(
        order(&[
            "--dataset-sampling-strategy",
            "random",
            "--random-seed",
            "3"
        ]),
        random
    );

    let dir = run_dir("samplers-bad");
    let output = common::run_profile(
        &[&mock.url],
        &dir,
        &["--dataset-sampling-strategy", "shufle"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "--dataset-sampling-strategy needs the dataset_sampler plugin `shufle`, which \
             this binary does not link (linked: sequential, random, shuffle)"
        ),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&inputs);
}

/// `--input-file DIR` of random_pool files: each request's message is one row of every
/// pool (a text and an image here), as the chat body shows.
#[test]
fn a_directory_of_random_pools_composes_each_turn_from_every_pool() {
    let mock = Mock::start(&["--output-tokens", "1"]);
    let inputs = run_dir("random-pool-input");
    std::fs::create_dir_all(&inputs).expect("input dir");
    std::fs::write(
        inputs.join("1-texts.jsonl"),
        "{\"text\": \"describe this\"}\n{\"text\": \"what is it\"}\n",
    )
    .expect("texts");
    std::fs::write(
        inputs.join("2-images.jsonl"),
        "{\"image\": \"data:image/png;base64,iVBORw0KGgo=\"}\n",
    )
    .expect("images");
    let dir = run_dir("random-pool");
    profile(
        &mock,
        &dir,
        &[
            "--input-file",
            inputs.to_str().expect("utf-8 path"),
            "--num-dataset-entries",
            "3",
            "--request-count",
            "3",
        ],
    );
    assert_eq!(read_records(&dir).len(), 3);
    let sent: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("inputs.json")).expect("inputs.json"),
    )
    .expect("json");
    let entries = sent["data"].as_array().expect("entries");
    assert_eq!(entries.len(), 3);
    for entry in entries {
        let content = &entry["payloads"][0]["messages"][0]["content"];
        assert_eq!(content[0]["type"], "text", "{content}");
        assert!(
            ["describe this", "what is it"].contains(&content[0]["text"].as_str().unwrap_or(""))
        );
        assert_eq!(
            content[1]["image_url"]["url"], "data:image/png;base64,iVBORw0KGgo=",
            "{content}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&inputs);
}

/// `--seq-dist` and `--random-range-ratio` reach every request: each record's ISL and OSL
/// is one of the pairs (in about its share) or inside the window, input_config lists the
/// flags as AIPerf does, and a ratio without `--osl` stops the run before it starts.
#[test]
fn length_shaping_flags_shape_each_request() {
    let mock = Mock::start(&["--ttft-ms", "1", "--output-tokens", "500"]);
    let dir = run_dir("seq-dist");
    profile(
        &mock,
        &dir,
        &[
            "--seq-dist",
            "16,4:25;48,12:75",
            "--request-count",
            "400",
            "--num-dataset-entries",
            "400",
            "--concurrency",
            "8",
            "--random-seed",
            "11",
        ],
    );
    let lengths = |dir: &Path| -> Vec<(u64, u64)> {
        read_records(dir)
            .iter()
            .map(|r| {
                let value = |tag: &str| {
                    r["metrics"][tag]["value"]
                        .as_u64()
                        .unwrap_or_else(|| panic!("{tag} in {r}"))
                };
                (
                    value("input_sequence_length"),
                    value("output_sequence_length"),
                )
            })
            .collect()
    };
    let drawn = lengths(&dir);
    assert_eq!(drawn.len(), 400);
    assert!(
        drawn.iter().all(|d| [(16, 4), (48, 12)].contains(d)),
        "{drawn:?}"
    );
    // 400 draws of a 25% pair: a standard error of 2.2 points; 8 points is over three.
    let short = drawn.iter().filter(|d| d.0 == 16).count() as f64 / 400.0;
    assert!(
        (short - 0.25).abs() < 0.08,
        "{short} of requests drew (16, 4)"
    );
    let json = read_json(&dir);
    assert_eq!(
        json["input_config"]["datasets"][0]["prompts"]["sequence_distribution"],
        serde_json::json!([
            {"isl": {"mean": 16.0, "stddev": 0.0}, "osl": {"mean": 4.0, "stddev": 0.0},
             "probability": 25.0},
            {"isl": {"mean": 48.0, "stddev": 0.0}, "osl": {"mean": 12.0, "stddev": 0.0},
             "probability": 75.0},
        ])
    );

    let window = run_dir("range-ratio");
    profile(
        &mock,
        &window,
        &[
            "--isl",
            "20",
            "--osl",
            "8",
            "--random-range-ratio",
            "0.5",
            "--request-count",
            "200",
            "--num-dataset-entries",
            "200",
            "--concurrency",
            "8",
            "--random-seed",
            "11",
        ],
    );
    let drawn = lengths(&window);
    assert_eq!(drawn.len(), 200);
    // vLLM's window: [floor(20 * 0.5), ceil(20 * 1.5)] and [floor(8 * 0.5), ceil(8 * 1.5)].
    assert!(
        drawn
            .iter()
            .all(|&(i, o)| (10..=30).contains(&i) && (4..=12).contains(&o)),
        "{drawn:?}"
    );
    assert!(drawn.iter().any(|d| d.0 != drawn[0].0), "lengths must vary");

    let refused = common::run_profile(
        &[&mock.url],
        &run_dir("range-ratio-refused"),
        &["--random-range-ratio", "0.3"],
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "--random-range-ratio requires --osl to be set explicitly. There is no safe \
             default when a ratio window is requested."
        ),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&window);
}
