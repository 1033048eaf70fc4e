//! Golden bytes of every artifact for one small fixed run.

use std::path::PathBuf;

use super::{console, csv, json, RecordWriter};
use crate::metrics::stats;
use crate::record::{
    ErrorDetails, Outcome, ParsedRecord, ParsedResponse, Phase, RequestRecord, ResponseData,
    RunClock,
};
use crate::results::{ErrorCount, MetricRecord, MetricResult, MetricValue, RunResults};

fn record_metric(
    tag: &'static str,
    header: &'static str,
    unit: &'static str,
    order: Option<u32>,
    values: &[f64],
) -> MetricResult {
    let s = stats(values).unwrap();
    MetricResult {
        tag,
        header,
        unit,
        display_order: order,
        avg: s.avg,
        stats: Some(s),
    }
}

fn single(
    tag: &'static str,
    header: &'static str,
    unit: &'static str,
    order: Option<u32>,
    value: f64,
) -> MetricResult {
    MetricResult {
        tag,
        header,
        unit,
        display_order: order,
        stats: None,
        avg: value,
    }
}

fn fixture() -> RunResults {
    RunResults {
        metrics: vec![
            record_metric(
                "time_to_first_token",
                "Time to First Token",
                "ms",
                Some(100),
                &[400.0, 100.0, 300.0, 200.0],
            ),
            record_metric(
                "request_latency",
                "Request Latency",
                "ms",
                Some(300),
                &[1000.0, 1500.0, 2000.0, 2500.0],
            ),
            record_metric(
                "output_token_throughput_per_user",
                "Output Token Throughput Per User",
                "tokens/sec/user",
                Some(500),
                &[293.46],
            ),
            record_metric(
                "usage_prompt_tokens",
                "Usage Prompt Tokens",
                "tokens",
                Some(1000),
                &[64.0, 64.0],
            ),
            record_metric(
                "inter_chunk_latency",
                "Inter Chunk Latency",
                "ms",
                None,
                &[1.0, 2.0],
            ),
            single(
                "request_throughput",
                "Request Throughput",
                "requests/sec",
                Some(900),
                18.24,
            ),
            single(
                "request_count",
                "Request Count",
                "requests",
                Some(1100),
                20.0,
            ),
            single(
                "benchmark_duration",
                "Benchmark Duration",
                "sec",
                None,
                1.0965,
            ),
            single(
                "request_error_rate",
                "Request Error Rate",
                "%",
                Some(1080),
                f64::NAN,
            ),
        ],
        error_summary: vec![ErrorCount {
            error_details: ErrorDetails::new(Some(500), "Internal Server Error", "boom"),
            count: 4,
        }],
        metrics_title: "LLM Metrics".into(),
        artifact_dir: PathBuf::from("/tmp/none"),
        benchmark_id: "abc123def456".into(),
        input_config: serde_json::json!({"models": {"items": [{"name": "m"}]}}),
        client_config: serde_json::json!({"workers": 2, "io_driver": "auto"}),
        cli_command: "aiperf profile -m m".into(),
        random_seed: Some(42),
        start_time: "2026-01-02T03:04:05.123456".into(),
        end_time: "2026-01-02T03:04:06.223456".into(),
        was_cancelled: false,
        client_health: serde_json::Value::Null,
        export_prefix: None,
        warmup_metrics: None,
        timeslices: Vec::new(),
    }
}

const GOLDEN_JSON: &str = r#"{
  "schema_version": "1.4",
  "aiperf_version": "0.1.0",
  "benchmark_id": "abc123def456",
  "request_throughput": {
    "unit": "requests/sec",
    "avg": 18.24
  },
  "request_latency": {
    "unit": "ms",
    "avg": 1750.0,
    "p1": 1015.0,
    "p5": 1075.0,
    "p10": 1150.0,
    "p25": 1375.0,
    "p50": 1750.0,
    "p75": 2125.0,
    "p90": 2350.0,
    "p95": 2425.0,
    "p99": 2485.0,
    "min": 1000.0,
    "max": 2500.0,
    "std": 559.0169943749474,
    "count": 4,
    "sum": 7000.0
  },
  "request_count": {
    "unit": "requests",
    "avg": 20.0
  },
  "time_to_first_token": {
    "unit": "ms",
    "avg": 250.0,
    "p1": 103.0,
    "p5": 115.0,
    "p10": 130.0,
    "p25": 175.0,
    "p50": 250.0,
    "p75": 325.0,
    "p90": 370.0,
    "p95": 385.0,
    "p99": 397.0,
    "min": 100.0,
    "max": 400.0,
    "std": 111.80339887498948,
    "count": 4,
    "sum": 1000.0
  },
  "output_token_throughput_per_user": {
    "unit": "tokens/sec/user",
    "avg": 293.46,
    "p1": 293.46,
    "p5": 293.46,
    "p10": 293.46,
    "p25": 293.46,
    "p50": 293.46,
    "p75": 293.46,
    "p90": 293.46,
    "p95": 293.46,
    "p99": 293.46,
    "min": 293.46,
    "max": 293.46,
    "std": 0.0,
    "count": 1,
    "sum": 293.46
  },
  "inter_chunk_latency": {
    "unit": "ms",
    "avg": 1.5,
    "p1": 1.01,
    "p5": 1.05,
    "p10": 1.1,
    "p25": 1.25,
    "p50": 1.5,
    "p75": 1.75,
    "p90": 1.9,
    "p95": 1.95,
    "p99": 1.99,
    "min": 1.0,
    "max": 2.0,
    "std": 0.5,
    "count": 2,
    "sum": 3.0
  },
  "benchmark_duration": {
    "unit": "sec",
    "avg": 1.0965
  },
  "usage_prompt_tokens": {
    "unit": "tokens",
    "avg": 64.0,
    "p1": 64.0,
    "p5": 64.0,
    "p10": 64.0,
    "p25": 64.0,
    "p50": 64.0,
    "p75": 64.0,
    "p90": 64.0,
    "p95": 64.0,
    "p99": 64.0,
    "min": 64.0,
    "max": 64.0,
    "std": 0.0,
    "count": 2,
    "sum": 128.0
  },
  "request_error_rate": {
    "unit": "%",
    "avg": null
  },
  "telemetry_data": {
    "summary": {
      "endpoints_configured": [],
      "endpoints_successful": [],
      "start_time": "2026-01-02T03:04:05.123456",
      "end_time": "2026-01-02T03:04:06.223456"
    },
    "endpoints": {},
    "error_summary": []
  },
  "input_config": {
    "models": {
      "items": [
        {
          "name": "m"
        }
      ]
    }
  },
  "aiperf_gen_config": {
    "io_driver": "auto",
    "workers": 2
  },
  "run_info": {
    "benchmark_id": "abc123def456",
    "random_seed": 42,
    "trial": 0,
    "cli_command": "aiperf profile -m m"
  },
  "was_cancelled": false,
  "is_complete": true,
  "error_summary": [
    {
      "error_details": {
        "code": 500,
        "type": "Internal Server Error",
        "message": "boom"
      },
      "count": 4
    }
  ],
  "start_time": "2026-01-02T03:04:05.123456",
  "end_time": "2026-01-02T03:04:06.223456"
}"#;

#[test]
fn json_golden() {
    assert_eq!(json::render(&fixture()), GOLDEN_JSON);
}

/// `--no-gpu-telemetry` leaves out what AIPerf leaves out then: `telemetry_data` in the
/// JSON and the GPU table in the CSV (both are written, empty, when telemetry is on).
#[test]
fn no_gpu_telemetry_leaves_out_the_telemetry_sections() {
    let on = fixture();
    assert!(json::render(&on).contains("\n  \"telemetry_data\": {"));
    assert!(csv::render(&on).ends_with("\r\n\r\n\r\nEndpoint,GPU_Index,GPU_Name,GPU_UUID,Platform,Metric,avg,min,max,sum,p1,p5,p10,p25,p50,p75,p90,p95,p99,std\r\n"));
    let mut off = fixture();
    off.input_config["gpu_telemetry"] = serde_json::json!({"enabled": false});
    assert!(!json::render(&off).contains("telemetry_data"));
    assert_eq!(csv::render(&off), csv::render_metrics(&off));
}

#[test]
fn csv_golden() {
    let expected = concat!(
        "Metric,avg,min,max,sum,p1,p5,p10,p25,p50,p75,p90,p95,p99,std\r\n",
        "Inter Chunk Latency (ms),1.50,1.00,2.00,3.00,1.01,1.05,1.10,1.25,1.50,1.75,1.90,1.95,1.99,0.50\r\n",
        "Output Token Throughput Per User (tokens/sec/user),293.46,293.46,293.46,293.46,293.46,293.46,293.46,293.46,293.46,293.46,293.46,293.46,293.46,0.00\r\n",
        "Request Latency (ms),1750.00,1000.00,2500.00,7000.00,1015.00,1075.00,1150.00,1375.00,1750.00,2125.00,2350.00,2425.00,2485.00,559.02\r\n",
        "Time to First Token (ms),250.00,100.00,400.00,1000.00,103.00,115.00,130.00,175.00,250.00,325.00,370.00,385.00,397.00,111.80\r\n",
        "Usage Prompt Tokens (tokens),64.00,64.00,64.00,128.00,64.00,64.00,64.00,64.00,64.00,64.00,64.00,64.00,64.00,0.00\r\n",
        "\r\n",
        "Metric,Value\r\n",
        "Benchmark Duration (sec),1.10\r\n",
        "Request Count,20.00\r\n",
        "Request Error Rate (%),\r\n",
        "Request Throughput (requests/sec),18.24\r\n",
    );
    assert_eq!(csv::render_metrics(&fixture()), expected);
    // The run's file ends as AIPerf 0.13's does without GPU telemetry data: two blank
    // rows and the telemetry table's header (the bytes of a real run's last 3 rows).
    let telemetry = concat!(
        "\r\n",
        "\r\n",
        "Endpoint,GPU_Index,GPU_Name,GPU_UUID,Platform,Metric,avg,min,max,sum,p1,p5,p10,p25,",
        "p50,p75,p90,p95,p99,std\r\n",
    );
    assert_eq!(csv::render(&fixture()), format!("{expected}{telemetry}"));
}

#[test]
fn console_golden() {
    let expected = concat!(
        "                          NVIDIA AIPerf | LLM Metrics: Usage                           \n",
        "┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━┳━━━━━━━┳━━━━━━━┳━━━━━━━┳━━━━━━━┳━━━━━━━┳━━━━━━┓\n",
        "┃                       Metric ┃   avg ┃   min ┃   max ┃   p99 ┃   p90 ┃   p50 ┃  std ┃\n",
        "┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━╇━━━━━━━╇━━━━━━━╇━━━━━━━╇━━━━━━━╇━━━━━━━╇━━━━━━┩\n",
        "│ Usage Prompt Tokens (tokens) │ 64.00 │ 64.00 │ 64.00 │ 64.00 │ 64.00 │ 64.00 │ 0.00 │\n",
        "└──────────────────────────────┴───────┴───────┴───────┴───────┴───────┴───────┴──────┘\n",
        "                                          NVIDIA AIPerf | LLM Metrics                                           \n",
        "┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━┓\n",
        "┃                            Metric ┃      avg ┃      min ┃      max ┃      p99 ┃      p90 ┃      p50 ┃    std ┃\n",
        "┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━┩\n",
        "│          Time to First Token (ms) │   250.00 │   100.00 │   400.00 │   397.00 │   370.00 │   250.00 │ 111.80 │\n",
        "│              Request Latency (ms) │ 1,750.00 │ 1,000.00 │ 2,500.00 │ 2,485.00 │ 2,350.00 │ 1,750.00 │ 559.02 │\n",
        "│  Output Token Throughput Per User │   293.46 │   293.46 │   293.46 │   293.46 │   293.46 │   293.46 │   0.00 │\n",
        "│                 (tokens/sec/user) │          │          │          │          │          │          │        │\n",
        "│ Request Throughput (requests/sec) │    18.24 │      N/A │      N/A │      N/A │      N/A │      N/A │    N/A │\n",
        "│            Request Error Rate (%) │      N/A │      N/A │      N/A │      N/A │      N/A │      N/A │    N/A │\n",
        "│          Request Count (requests) │    20.00 │      N/A │      N/A │      N/A │      N/A │      N/A │    N/A │\n",
        "└───────────────────────────────────┴──────────┴──────────┴──────────┴──────────┴──────────┴──────────┴────────┘\n",
    );
    assert_eq!(console::render_metrics_table(&fixture()), expected);
}

#[test]
fn error_summary_golden() {
    let expected = concat!(
        "          NVIDIA AIPerf | Error Summary           \n",
        "┏━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━┳━━━━━━━┓\n",
        "┃ Code ┃                  Type ┃ Message ┃ Count ┃\n",
        "┡━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━╇━━━━━━━┩\n",
        "│  500 │ Internal Server Error │ boom    │     4 │\n",
        "└──────┴───────────────────────┴─────────┴───────┘\n",
    );
    assert_eq!(
        console::render_error_summary(&fixture().error_summary),
        expected
    );
    assert_eq!(console::render_error_summary(&[]), "");

    // A long message fills the 140 columns AIPerf's console export has, then wraps.
    let mut long = fixture().error_summary;
    long[0].error_details.message = format!("{} {}", "x".repeat(90), "y".repeat(30));
    let table = console::render_error_summary(&long);
    let widths: Vec<usize> = table.lines().map(|l| l.chars().count()).collect();
    assert!(widths.iter().all(|&w| w <= 140), "{table}");
    assert_eq!(widths.iter().max(), Some(&140), "{table}");
    assert_eq!(
        table.lines().filter(|l| l.starts_with('│')).count(),
        2,
        "{table}"
    );
    // A message of short lines keeps its lines and the column their width.
    long[0].error_details.message = "short\nlines".to_owned();
    let table = console::render_error_summary(&long);
    assert!(table.lines().all(|l| l.chars().count() < 60), "{table}");
    // A 100-character message (the example of an HTTP 500 body) stays on one line.
    long[0].error_details.message = "z".repeat(80);
    let table = console::render_error_summary(&long);
    assert_eq!(
        table.lines().filter(|l| l.starts_with('│')).count(),
        1,
        "{table}"
    );
}

/// Wide characters take two columns, as in rich's table: a CJK message keeps the rules
/// and bars aligned, and wraps where its cells, not its characters, run out.
#[test]
fn error_summary_measures_wide_characters_in_columns() {
    let mut errors = fixture().error_summary;
    errors[0].error_details.message = "服务器错误".to_owned();
    let expected = concat!(
        "            NVIDIA AIPerf | Error Summary            \n",
        "┏━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━┓\n",
        "┃ Code ┃                  Type ┃ Message    ┃ Count ┃\n",
        "┡━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━┩\n",
        "│  500 │ Internal Server Error │ 服务器错误 │     4 │\n",
        "└──────┴───────────────────────┴────────────┴───────┘\n",
    );
    assert_eq!(console::render_error_summary(&errors), expected);

    // 120 wide characters are 240 columns: they wrap at the room left (140 columns in
    // all), every line the same width on a terminal.
    errors[0].error_details.message = "错".repeat(120);
    let table = console::render_error_summary(&errors);
    let widths: Vec<usize> = table
        .lines()
        .map(unicode_width::UnicodeWidthStr::width)
        .collect();
    assert!(widths[1..].iter().all(|&w| w == 140), "{widths:?}\n{table}");
    assert_eq!(
        table.lines().filter(|l| l.starts_with('│')).count(),
        3,
        "{table}"
    );
}

#[test]
fn empty_run_writes_valid_files_without_metrics() {
    let mut r = fixture();
    r.metrics.clear();
    r.error_summary.clear();
    r.input_config = serde_json::Value::Null;
    r.random_seed = None;
    assert_eq!(csv::render_metrics(&r), "");
    assert_eq!(
        csv::render(&r),
        "\r\n\r\nEndpoint,GPU_Index,GPU_Name,GPU_UUID,Platform,Metric,avg,min,max,sum,p1,p5,\
         p10,p25,p50,p75,p90,p95,p99,std\r\n"
    );
    assert_eq!(console::render_metrics_table(&r), "");
    let doc: serde_json::Value = serde_json::from_str(&json::render(&r)).unwrap();
    assert_eq!(doc["schema_version"], "1.4");
    assert_eq!(doc["error_summary"], serde_json::json!([]));
    assert_eq!(
        doc["run_info"],
        serde_json::json!({
            "benchmark_id": "abc123def456", "trial": 0, "cli_command": "aiperf profile -m m"
        })
    );
    assert!(doc.get("request_count").is_none());
}

#[test]
fn csv_quotes_like_python() {
    let mut r = fixture();
    r.metrics = vec![single("x", "Odd, \"quoted\"", "requests", None, 1.0)];
    assert_eq!(
        csv::render_metrics(&r),
        "Metric,Value\r\n\"Odd, \"\"quoted\"\"\",1.00\r\n"
    );
}

#[test]
fn thousands_separators() {
    assert_eq!(console::thousands(1167.125), "1,167.12");
    assert_eq!(console::thousands(-1234567.891), "-1,234,567.89");
    assert_eq!(console::thousands(999.999), "1,000.00");
    assert_eq!(console::thousands(0.0), "0.00");
    assert_eq!(console::thousands(f64::INFINITY), "N/A");
}

#[test]
fn long_error_messages_wrap() {
    let long = "x".repeat(130);
    let errors = [ErrorCount {
        error_details: ErrorDetails::new(None, "", format!("first line\n{long}")),
        count: 1234,
    }];
    let table = console::render_error_summary(&errors);
    let rows: Vec<&str> = table.lines().skip(4).collect();
    assert!(
        rows[0].starts_with("│  N/A │  N/A │ first line "),
        "{table}"
    );
    assert!(rows[0].ends_with("│ 1,234 │"), "{table}");
    // "first line", then 130 characters in the 114 columns the 140-wide console leaves
    // the messages (lines of 114 and 16); then the bottom rule.
    assert_eq!(rows.len(), 4, "{table}");
    assert!(
        rows[2].starts_with(&format!("│      │      │ {} ", "x".repeat(16))),
        "{table}"
    );
    assert_eq!(rows[0].chars().count(), 140, "{table}");
    assert!(table
        .lines()
        .all(|l| l.chars().count() == rows[0].chars().count() || l.contains("NVIDIA")));
}

fn parsed(phase: Phase, outcome: Outcome) -> ParsedRecord {
    ParsedRecord {
        raw: RequestRecord {
            worker_id: 3,
            credit_index: 7,
            conversation_index: 2,
            turn_index: 0,
            phase: Some(phase),
            x_request_id: "req-1".into(),
            x_correlation_id: "corr-1".into(),
            intended_ns: 1_000,
            start_ns: 2_000,
            ack_ns: Some(3_000),
            end_ns: 9_000,
            ..Default::default()
        },
        responses: vec![ParsedResponse {
            recv_ns: 8_000,
            data: ResponseData::Text("hi".into()),
            usage: None,
        }],
        outcome,
        error: (outcome != Outcome::Success)
            .then(|| ErrorDetails::new(Some(500), "Internal Server Error", "boom")),
        produces_tokens: true,
        input_tokens: Some(64),
        output_tokens: Some(1),
        reasoning_tokens: None,
        usage: None,
    }
}

#[test]
fn jsonl_lines() {
    let clock = RunClock::new();
    let wall = |ns| clock.wall_ns(ns);
    let mut writer = RecordWriter::new(Vec::new());

    let mut ok = MetricRecord::default();
    ok.push("request_latency", MetricValue::Scalar(0.006), "ms");
    ok.push("output_sequence_length", MetricValue::Scalar(1.0), "tokens");
    ok.push(
        "inter_chunk_latency",
        MetricValue::List(vec![1.5, f64::NAN]),
        "ms",
    );
    writer
        .write(&clock, &parsed(Phase::Warmup, Outcome::Success), &ok)
        .unwrap();

    let mut err = MetricRecord::default();
    err.push("error_isl", MetricValue::Scalar(64.0), "tokens");
    writer
        .write(&clock, &parsed(Phase::Profiling, Outcome::HttpError), &err)
        .unwrap();

    let text = String::from_utf8(writer.into_inner().unwrap()).unwrap();
    let meta = |phase: &str, index: u32, profiling: &str| {
        format!(
            "{{\"session_num\":7,\"x_request_id\":\"req-1\",\"x_correlation_id\":\"corr-1\",\
             \"conversation_id\":\"session_000002\",\"turn_index\":0,\"credit_issued_ns\":{},\
             \"request_start_ns\":{},\"request_ack_ns\":{},\"request_end_ns\":{},\
             \"worker_id\":\"worker_3\",\"record_processor_id\":\"record_processor_0\",\
             \"benchmark_phase\":\"{phase}\",\"phase_index\":{index},{profiling}\
             \"phase_name\":\"{phase}\",\"phase_kind\":\"{phase}\",\"was_cancelled\":false,\
             \"context_overflow_skip\":false,\"agent_depth\":0,\
             \"root_correlation_id\":\"corr-1\"}}",
            wall(1_000),
            wall(2_000),
            wall(3_000),
            wall(9_000)
        )
    };
    let expected = format!(
        "{{\"metadata\":{},\"metrics\":{{\"request_latency\":{{\"value\":0.006,\"unit\":\"ms\"}},\
         \"output_sequence_length\":{{\"value\":1,\"unit\":\"tokens\"}},\
         \"inter_chunk_latency\":{{\"value\":[1.5,null],\"unit\":\"ms\"}}}}}}\n\
         {{\"metadata\":{},\"metrics\":{{\"error_isl\":{{\"value\":64,\"unit\":\"tokens\"}}}},\
         \"error\":{{\"code\":500,\"type\":\"Internal Server Error\",\"message\":\"boom\"}}}}\n",
        meta("warmup", 0, ""),
        meta("profiling", 1, "\"profiling_index\":0,"),
    );
    assert_eq!(text, expected);
    for line in text.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap();
    }
}

#[test]
fn record_writer_creates_its_file() {
    let dir = std::env::temp_dir().join(format!("aiperf-jsonl-{}", std::process::id()));
    let path = dir.join("nested").join(super::RECORDS_FILE);
    let clock = RunClock::new();
    let mut writer = RecordWriter::create(&path).unwrap();
    writer
        .write(
            &clock,
            &parsed(Phase::Profiling, Outcome::Success),
            &MetricRecord::default(),
        )
        .unwrap();
    writer.finish().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 1);
    super::write_atomically(&dir.join("a.json"), "{}").unwrap();
    assert_eq!(std::fs::read_to_string(dir.join("a.json")).unwrap(), "{}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--goodput`: the three goodput metrics reach the JSON, the CSV and the console where
/// AIPerf puts them, and each valid record's verdict reaches its JSONL line.
#[test]
fn goodput_in_every_artifact() {
    use crate::metrics::{
        compute_record_metrics_with_goodput, Goodput, MetricsAccumulator, RecordMetricsOptions,
    };
    let opts = RecordMetricsOptions::new(true);
    // TTFT at most 5 µs; the records start at 2 µs.
    let slos = [("time_to_first_token".to_owned(), 0.005)];
    let goodput = Goodput::new(&slos, &opts, false).unwrap();
    let mut acc = MetricsAccumulator::new().with_goodput(true);
    let clock = RunClock::new();
    let mut writer = RecordWriter::new(Vec::new());
    let mut records = Vec::new();
    for content_ns in [6_000, 7_000, 8_000] {
        let mut rec = parsed(Phase::Profiling, Outcome::Success);
        rec.responses[0].recv_ns = content_ns;
        records.push(rec);
    }
    records.push(parsed(Phase::Profiling, Outcome::HttpError));
    for rec in &records {
        let mut m = MetricRecord::default();
        compute_record_metrics_with_goodput(rec, &opts, Some(&goodput), &mut m);
        writer.write(&clock, rec, &m).unwrap();
        acc.add(rec, &m);
    }
    let lines = String::from_utf8(writer.into_inner().unwrap()).unwrap();
    let verdicts: Vec<Option<serde_json::Value>> = lines
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["metrics"].get("good_request_count").cloned()
        })
        .collect();
    let verdict = |n: u8| Some(serde_json::json!({"value": n, "unit": "requests"}));
    // TTFT 4, 5 (at the SLO) and 6 µs, then the error, which gets no verdict.
    assert_eq!(verdicts, [verdict(1), verdict(1), verdict(0), None]);

    let mut r = fixture();
    r.metrics = acc.summarize(None);
    // Two good of three valid requests and one error, over 6 µs (2 to 8 µs).
    let goodput_avg = 2.0 / 6e-6;
    let text = json::render(&r);
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        doc["good_request_count"],
        serde_json::json!({"unit": "requests", "avg": 2.0})
    );
    assert_eq!(
        doc["good_request_fraction"],
        serde_json::json!({"unit": "ratio", "avg": 0.5})
    );
    assert_eq!(doc["goodput"]["unit"], "requests/sec");
    let avg = doc["goodput"]["avg"].as_f64().unwrap();
    assert!((avg - goodput_avg).abs() < 1e-6, "{avg}");
    // AIPerf's declared order: goodput, then good_request_count, after the ISL.
    let at = |key: &str| text.find(&format!("\n  \"{key}\"")).unwrap();
    assert!(at("input_sequence_length") < at("goodput"));
    assert!(at("goodput") < at("good_request_count"));
    assert!(at("good_request_count") < at("output_token_count"));

    let csv = csv::render(&r);
    assert!(
        csv.contains(
            "\r\nGood Request Count,2.00\r\nGoodRequestFraction (ratio),0.50\r\n\
             Goodput (requests/sec),333333.33\r\n"
        ),
        "{csv}"
    );

    let console = console::render_metrics_table(&r);
    let rows: Vec<&str> = console.lines().collect();
    let row = |label: &str| rows.iter().position(|l| l.contains(label));
    let goodput_row = row("Goodput (requests/sec)").expect("goodput row");
    assert_eq!(
        row("Request Throughput (requests/sec)"),
        Some(goodput_row - 1)
    );
    assert!(rows[goodput_row].contains(" 333,333.33 │"), "{console}");
    assert_eq!(row("Good Request Count"), None);
    assert_eq!(row("GoodRequestFraction"), None);
}

/// A fixed run cut into one-second slices: two requests in the first slice, none in the
/// second, one success and one failure in the third, where the run ends 0.45 s in.
fn sliced_fixture() -> RunResults {
    const MS: u64 = 1_000_000;
    const ORIGIN: u64 = 2_000 * MS;
    let request = |start: u64, ttft: u64, latency: u64| {
        let content = |at: u64| ParsedResponse {
            recv_ns: ORIGIN + start + at,
            data: ResponseData::Text("x".into()),
            usage: None,
        };
        let record = ParsedRecord {
            raw: RequestRecord {
                intended_ns: ORIGIN + start,
                start_ns: ORIGIN + start,
                end_ns: ORIGIN + start + latency,
                phase: Some(Phase::Profiling),
                ..RequestRecord::default()
            },
            responses: vec![content(ttft), content(latency)],
            outcome: Outcome::Success,
            error: None,
            produces_tokens: true,
            input_tokens: None,
            output_tokens: None,
            reasoning_tokens: None,
            usage: None,
        };
        let mut metrics = MetricRecord::default();
        metrics.push(
            "time_to_first_token",
            MetricValue::Scalar(ttft as f64 / 1e6),
            "ms",
        );
        (record, metrics)
    };
    let mut slicer = crate::metrics::Timeslicer::new(1_000 * MS, false);
    slicer.anchor(ORIGIN);
    let (failed, _) = request(2_400 * MS, 0, 50 * MS);
    let failed = ParsedRecord {
        responses: Vec::new(),
        outcome: Outcome::HttpError,
        error: Some(ErrorDetails::new(
            Some(500),
            "Internal Server Error",
            "boom",
        )),
        ..failed
    };
    for (record, metrics) in [
        request(0, 40 * MS, 100 * MS),
        request(500 * MS, 60 * MS, 200 * MS),
        request(2_200 * MS, 50 * MS, 150 * MS),
        (failed, MetricRecord::default()),
    ] {
        slicer.add(&record, &metrics);
    }
    RunResults {
        timeslices: slicer.finish(|t| 1_767_000_000_000_000_000 + t),
        input_config: serde_json::json!({"models": ["m"], "slice_duration": 1.0}),
        client_config: serde_json::Value::Null,
        ..fixture()
    }
}

#[test]
fn timeslices_json_golden() {
    let got = super::timeslices::render_json(&sliced_fixture());
    assert_eq!(got, TIMESLICES_JSON, "{got}");
}

#[test]
fn timeslices_csv_golden() {
    let got = super::timeslices::render_csv(&sliced_fixture());
    assert_eq!(got, TIMESLICES_CSV, "{got}");
}

const TIMESLICES_JSON: &str = r#"{
  "timeslices": [
    {
      "start_ns": 1767000002000000000,
      "end_ns": 1767000003000000000,
      "time_to_first_token": {
        "unit": "ms",
        "avg": 50.0,
        "p1": 40.2,
        "p5": 41.0,
        "p10": 42.0,
        "p25": 45.0,
        "p50": 50.0,
        "p75": 55.0,
        "p90": 58.0,
        "p95": 59.0,
        "p99": 59.8,
        "min": 40.0,
        "max": 60.0,
        "std": 10.0,
        "count": 2,
        "sum": 100.0
      },
      "request_throughput": {
        "unit": "requests/sec",
        "avg": 2.0
      },
      "completed_request_count": {
        "unit": "requests",
        "avg": 2.0
      },
      "request_error_rate": {
        "unit": "%",
        "avg": 0.0
      },
      "request_count": {
        "unit": "requests",
        "avg": 2.0
      },
      "effective_concurrency": {
        "unit": "requests",
        "avg": 0.3,
        "p50": 0.0,
        "p90": 1.0,
        "p95": 1.0,
        "p99": 1.0,
        "min": 0.0,
        "max": 1.0,
        "std": 0.458257569495584
      },
      "effective_decode_throughput": {
        "unit": "tokens/sec",
        "avg": 0.0,
        "p50": 0.0,
        "p90": 0.0,
        "p95": 0.0,
        "p99": 0.0,
        "min": 0.0,
        "max": 0.0,
        "std": 0.0
      },
      "effective_prefill_throughput": {
        "unit": "tokens/sec",
        "avg": 0.0,
        "p50": 0.0,
        "p90": 0.0,
        "p95": 0.0,
        "p99": 0.0,
        "min": 0.0,
        "max": 0.0,
        "std": 0.0
      },
      "effective_decode_concurrency": {
        "unit": "requests",
        "avg": 0.2,
        "p50": 0.0,
        "p90": 1.0,
        "p95": 1.0,
        "p99": 1.0,
        "min": 0.0,
        "max": 1.0,
        "std": 0.4
      },
      "effective_prefill_concurrency": {
        "unit": "requests",
        "avg": 0.1,
        "p50": 0.0,
        "p90": 0.0,
        "p95": 1.0,
        "p99": 1.0,
        "min": 0.0,
        "max": 1.0,
        "std": 0.3
      },
      "effective_total_throughput": {
        "unit": "tokens/sec",
        "avg": 0.0,
        "p50": 0.0,
        "p90": 0.0,
        "p95": 0.0,
        "p99": 0.0,
        "min": 0.0,
        "max": 0.0,
        "std": 0.0
      },
      "effective_decode_throughput_per_user": {
        "unit": "tokens/sec/user",
        "avg": 0.0,
        "p50": 0.0,
        "p90": 0.0,
        "p95": 0.0,
        "p99": 0.0,
        "min": 0.0,
        "max": 0.0,
        "std": 0.0
      },
      "effective_prefill_throughput_per_user": {
        "unit": "tokens/sec/user",
        "avg": 0.0,
        "p50": 0.0,
        "p90": 0.0,
        "p95": 0.0,
        "p99": 0.0,
        "min": 0.0,
        "max": 0.0,
        "std": 0.0
      },
      "tokens_in_flight": {
        "unit": "tokens",
        "avg": 0.0,
        "p50": 0.0,
        "p90": 0.0,
        "p95": 0.0,
        "p99": 0.0,
        "min": 0.0,
        "max": 0.0,
        "std": 0.0
      },
      "active_decode_throughput": {
        "unit": "tokens/sec",
        "avg": 0.0,
        "p50": 0.0,
        "p90": 0.0,
        "p95": 0.0,
        "p99": 0.0,
        "min": 0.0,
        "max": 0.0,
        "std": 0.0
      },
      "active_prefill_throughput": {
        "unit": "tokens/sec",
        "avg": 0.0,
        "p50": 0.0,
        "p90": 0.0,
        "p95": 0.0,
        "p99": 0.0,
        "min": 0.0,
        "max": 0.0,
        "std": 0.0
      },
      "active_decode_throughput_per_user": {
        "unit": "tokens/sec/user",
        "avg": 0.0,
        "p50": 0.0,
        "p90": 0.0,
        "p95": 0.0,
        "p99": 0.0,
        "min": 0.0,
        "max": 0.0,
        "std": 0.0
      },
      "active_prefill_throughput_per_user": {
        "unit": "tokens/sec/user",
        "avg": 0.0,
        "p50": 0.0,
        "p90": 0.0,
        "p95": 0.0,
        "p99": 0.0,
        "min": 0.0,
        "max": 0.0,
        "std": 0.0
      },
      "active_total_throughput": {
        "unit": "tokens/sec",
        "avg": 0.0,
        "p50": 0.0,
        "p90": 0.0,
        "p95": 0.0,
        "p99": 0.0,
        "min": 0.0,
        "max": 0.0,
        "std": 0.0
      },
      "benchmark_duration": {
        "unit": "sec",
        "avg": 0.7
      }
    },
    {
      "start_ns": 1767000004000000000,
      "end_ns": 1767000004450000000,
      "is_complete": false,
      "time_to_first_token": {
        "unit": "ms",
        "avg": 50.0,
        "p1": 50.0,
        "p5": 50.0,
        "p10": 50.0,
        "p25": 50.0,
        "p50": 50.0,
        "p75": 50.0,
        "p90": 50.0,
        "p95": 50.0,
        "p99": 50.0,
        "min": 50.0,
        "max": 50.0,
        "std": 0.0,
        "count": 1,
        "sum": 50.0
      },
      "adj_time_to_first_token": {
        "unit": "ms",
        "p1": 50.0,
        "p5": 50.0,
        "p10": 50.0,
        "p25": 50.0,
        "p50": 50.0,
        "min": 50.0,
        "count": 2
      },
      "request_throughput": {
        "unit": "requests/sec",
        "avg": 2.2222222222222223
      },
      "completed_request_count": {
        "unit": "requests",
        "avg": 2.0
      },
      "request_error_rate": {
        "unit": "%",
        "avg": 50.0
      },
      "request_count": {
        "unit": "requests",
        "avg": 1.0
      },
      "effective_concurrency": {
        "unit": "requests",
        "avg": 0.4444444444444444,
        "p50": 0.0,
        "p90": 1.0,
        "p95": 1.0,
        "p99": 1.0,
        "min": 0.0,
        "max": 1.0,
        "std": 0.4969039949999533
      },
      "effective_decode_throughput": {
        "unit": "tokens/sec",
        "avg": 0.0,
        "p50": 0.0,
        "p90": 0.0,
        "p95": 0.0,
        "p99": 0.0,
        "min": 0.0,
        "max": 0.0,
        "std": 0.0
      },
      "effective_prefill_throughput": {
        "unit": "tokens/sec",
        "avg": 0.0,
        "p50": 0.0,
        "p90": 0.0,
        "p95": 0.0,
        "p99": 0.0,
        "min": 0.0,
        "max": 0.0,
        "std": 0.0
      },
      "effective_decode_concurrency": {
        "unit": "requests",
        "avg": 0.2222222222222222,
        "p50": 0.0,
        "p90": 1.0,
        "p95": 1.0,
        "p99": 1.0,
        "min": 0.0,
        "max": 1.0,
        "std": 0.41573970964154905
      },
      "effective_prefill_concurrency": {
        "unit": "requests",
        "avg": 0.1111111111111111,
        "p50": 0.0,
        "p90": 1.0,
        "p95": 1.0,
        "p99": 1.0,
        "min": 0.0,
        "max": 1.0,
        "std": 0.31426968052735443
      },
      "effective_total_throughput": {
        "unit": "tokens/sec",
        "avg": 0.0,
        "p50": 0.0,
        "p90": 0.0,
        "p95": 0.0,
        "p99": 0.0,
        "min": 0.0,
        "max": 0.0,
        "std": 0.0
      },
      "effective_decode_throughput_per_user": {
        "unit": "tokens/sec/user",
        "avg": 0.0,
        "p50": 0.0,
        "p90": 0.0,
        "p95": 0.0,
        "p99": 0.0,
        "min": 0.0,
        "max": 0.0,
        "std": 0.0
      },
      "effective_prefill_throughput_per_user": {
        "unit": "tokens/sec/user",
        "avg": 0.0,
        "p50": 0.0,
        "p90": 0.0,
        "p95": 0.0,
        "p99": 0.0,
        "min": 0.0,
        "max": 0.0,
        "std": 0.0
      },
      "tokens_in_flight": {
        "unit": "tokens",
        "avg": 0.0,
        "p50": 0.0,
        "p90": 0.0,
        "p95": 0.0,
        "p99": 0.0,
        "min": 0.0,
        "max": 0.0,
        "std": 0.0
      },
      "active_decode_throughput": {
        "unit": "tokens/sec",
        "avg": 0.0,
        "p50": 0.0,
        "p90": 0.0,
        "p95": 0.0,
        "p99": 0.0,
        "min": 0.0,
        "max": 0.0,
        "std": 0.0
      },
      "active_prefill_throughput": {
        "unit": "tokens/sec",
        "avg": 0.0,
        "p50": 0.0,
        "p90": 0.0,
        "p95": 0.0,
        "p99": 0.0,
        "min": 0.0,
        "max": 0.0,
        "std": 0.0
      },
      "active_decode_throughput_per_user": {
        "unit": "tokens/sec/user",
        "avg": 0.0,
        "p50": 0.0,
        "p90": 0.0,
        "p95": 0.0,
        "p99": 0.0,
        "min": 0.0,
        "max": 0.0,
        "std": 0.0
      },
      "active_prefill_throughput_per_user": {
        "unit": "tokens/sec/user",
        "avg": 0.0,
        "p50": 0.0,
        "p90": 0.0,
        "p95": 0.0,
        "p99": 0.0,
        "min": 0.0,
        "max": 0.0,
        "std": 0.0
      },
      "active_total_throughput": {
        "unit": "tokens/sec",
        "avg": 0.0,
        "p50": 0.0,
        "p90": 0.0,
        "p95": 0.0,
        "p99": 0.0,
        "min": 0.0,
        "max": 0.0,
        "std": 0.0
      },
      "benchmark_duration": {
        "unit": "sec",
        "avg": 0.15
      },
      "error_request_count": {
        "unit": "requests",
        "avg": 1.0
      },
      "context_overflow_count": {
        "unit": "requests",
        "avg": 0.0
      }
    }
  ],
  "input_config": {
    "models": [
      "m"
    ],
    "slice_duration": 1.0
  }
}"#;

// Metrics by tag; per metric, the statistics in AIPerf's order. The error-adjusted
// statistics that land on the failure (avg, max, sum, p75 up, std) have no row.
const TIMESLICES_CSV: &str = concat!(
    "Timeslice,Start_NS,End_NS,Metric,Unit,Stat,Value\r\n",
    "0,1767000002000000000,1767000003000000000,Active Decode Throughput,tokens/sec,avg,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Decode Throughput,tokens/sec,min,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Decode Throughput,tokens/sec,max,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Decode Throughput,tokens/sec,p50,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Decode Throughput,tokens/sec,p90,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Decode Throughput,tokens/sec,p95,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Decode Throughput,tokens/sec,p99,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Decode Throughput,tokens/sec,std,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Decode Throughput Per User,tokens/sec/user,avg,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Decode Throughput Per User,tokens/sec/user,min,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Decode Throughput Per User,tokens/sec/user,max,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Decode Throughput Per User,tokens/sec/user,p50,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Decode Throughput Per User,tokens/sec/user,p90,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Decode Throughput Per User,tokens/sec/user,p95,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Decode Throughput Per User,tokens/sec/user,p99,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Decode Throughput Per User,tokens/sec/user,std,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Prefill Throughput,tokens/sec,avg,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Prefill Throughput,tokens/sec,min,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Prefill Throughput,tokens/sec,max,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Prefill Throughput,tokens/sec,p50,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Prefill Throughput,tokens/sec,p90,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Prefill Throughput,tokens/sec,p95,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Prefill Throughput,tokens/sec,p99,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Prefill Throughput,tokens/sec,std,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Prefill Throughput Per User,tokens/sec/user,avg,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Prefill Throughput Per User,tokens/sec/user,min,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Prefill Throughput Per User,tokens/sec/user,max,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Prefill Throughput Per User,tokens/sec/user,p50,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Prefill Throughput Per User,tokens/sec/user,p90,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Prefill Throughput Per User,tokens/sec/user,p95,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Prefill Throughput Per User,tokens/sec/user,p99,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Prefill Throughput Per User,tokens/sec/user,std,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Total Throughput,tokens/sec,avg,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Total Throughput,tokens/sec,min,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Total Throughput,tokens/sec,max,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Total Throughput,tokens/sec,p50,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Total Throughput,tokens/sec,p90,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Total Throughput,tokens/sec,p95,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Total Throughput,tokens/sec,p99,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Active Total Throughput,tokens/sec,std,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Benchmark Duration,sec,avg,0.70\r\n",
    "0,1767000002000000000,1767000003000000000,Completed Requests (Success + Error),requests,avg,2.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Concurrency,requests,avg,0.30\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Concurrency,requests,min,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Concurrency,requests,max,1.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Concurrency,requests,p50,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Concurrency,requests,p90,1.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Concurrency,requests,p95,1.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Concurrency,requests,p99,1.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Concurrency,requests,std,0.46\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Decode Concurrency,requests,avg,0.20\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Decode Concurrency,requests,min,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Decode Concurrency,requests,max,1.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Decode Concurrency,requests,p50,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Decode Concurrency,requests,p90,1.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Decode Concurrency,requests,p95,1.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Decode Concurrency,requests,p99,1.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Decode Concurrency,requests,std,0.40\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Decode Throughput,tokens/sec,avg,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Decode Throughput,tokens/sec,min,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Decode Throughput,tokens/sec,max,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Decode Throughput,tokens/sec,p50,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Decode Throughput,tokens/sec,p90,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Decode Throughput,tokens/sec,p95,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Decode Throughput,tokens/sec,p99,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Decode Throughput,tokens/sec,std,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Decode Throughput Per User,tokens/sec/user,avg,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Decode Throughput Per User,tokens/sec/user,min,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Decode Throughput Per User,tokens/sec/user,max,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Decode Throughput Per User,tokens/sec/user,p50,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Decode Throughput Per User,tokens/sec/user,p90,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Decode Throughput Per User,tokens/sec/user,p95,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Decode Throughput Per User,tokens/sec/user,p99,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Decode Throughput Per User,tokens/sec/user,std,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Prefill Concurrency,requests,avg,0.10\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Prefill Concurrency,requests,min,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Prefill Concurrency,requests,max,1.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Prefill Concurrency,requests,p50,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Prefill Concurrency,requests,p90,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Prefill Concurrency,requests,p95,1.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Prefill Concurrency,requests,p99,1.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Prefill Concurrency,requests,std,0.30\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Prefill Throughput,tokens/sec,avg,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Prefill Throughput,tokens/sec,min,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Prefill Throughput,tokens/sec,max,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Prefill Throughput,tokens/sec,p50,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Prefill Throughput,tokens/sec,p90,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Prefill Throughput,tokens/sec,p95,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Prefill Throughput,tokens/sec,p99,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Prefill Throughput,tokens/sec,std,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Prefill Throughput Per User,tokens/sec/user,avg,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Prefill Throughput Per User,tokens/sec/user,min,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Prefill Throughput Per User,tokens/sec/user,max,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Prefill Throughput Per User,tokens/sec/user,p50,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Prefill Throughput Per User,tokens/sec/user,p90,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Prefill Throughput Per User,tokens/sec/user,p95,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Prefill Throughput Per User,tokens/sec/user,p99,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Prefill Throughput Per User,tokens/sec/user,std,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Total Throughput,tokens/sec,avg,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Total Throughput,tokens/sec,min,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Total Throughput,tokens/sec,max,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Total Throughput,tokens/sec,p50,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Total Throughput,tokens/sec,p90,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Total Throughput,tokens/sec,p95,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Total Throughput,tokens/sec,p99,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Effective Total Throughput,tokens/sec,std,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Request Count,requests,avg,2.00\r\n",
    "0,1767000002000000000,1767000003000000000,Request Error Rate,%,avg,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Request Throughput,requests/sec,avg,2.00\r\n",
    "0,1767000002000000000,1767000003000000000,Time to First Token,ms,avg,50.00\r\n",
    "0,1767000002000000000,1767000003000000000,Time to First Token,ms,min,40.00\r\n",
    "0,1767000002000000000,1767000003000000000,Time to First Token,ms,max,60.00\r\n",
    "0,1767000002000000000,1767000003000000000,Time to First Token,ms,sum,100.00\r\n",
    "0,1767000002000000000,1767000003000000000,Time to First Token,ms,p1,40.20\r\n",
    "0,1767000002000000000,1767000003000000000,Time to First Token,ms,p5,41.00\r\n",
    "0,1767000002000000000,1767000003000000000,Time to First Token,ms,p10,42.00\r\n",
    "0,1767000002000000000,1767000003000000000,Time to First Token,ms,p25,45.00\r\n",
    "0,1767000002000000000,1767000003000000000,Time to First Token,ms,p50,50.00\r\n",
    "0,1767000002000000000,1767000003000000000,Time to First Token,ms,p75,55.00\r\n",
    "0,1767000002000000000,1767000003000000000,Time to First Token,ms,p90,58.00\r\n",
    "0,1767000002000000000,1767000003000000000,Time to First Token,ms,p95,59.00\r\n",
    "0,1767000002000000000,1767000003000000000,Time to First Token,ms,p99,59.80\r\n",
    "0,1767000002000000000,1767000003000000000,Time to First Token,ms,std,10.00\r\n",
    "0,1767000002000000000,1767000003000000000,Tokens In Flight,tokens,avg,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Tokens In Flight,tokens,min,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Tokens In Flight,tokens,max,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Tokens In Flight,tokens,p50,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Tokens In Flight,tokens,p90,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Tokens In Flight,tokens,p95,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Tokens In Flight,tokens,p99,0.00\r\n",
    "0,1767000002000000000,1767000003000000000,Tokens In Flight,tokens,std,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Decode Throughput,tokens/sec,avg,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Decode Throughput,tokens/sec,min,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Decode Throughput,tokens/sec,max,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Decode Throughput,tokens/sec,p50,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Decode Throughput,tokens/sec,p90,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Decode Throughput,tokens/sec,p95,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Decode Throughput,tokens/sec,p99,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Decode Throughput,tokens/sec,std,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Decode Throughput Per User,tokens/sec/user,avg,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Decode Throughput Per User,tokens/sec/user,min,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Decode Throughput Per User,tokens/sec/user,max,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Decode Throughput Per User,tokens/sec/user,p50,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Decode Throughput Per User,tokens/sec/user,p90,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Decode Throughput Per User,tokens/sec/user,p95,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Decode Throughput Per User,tokens/sec/user,p99,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Decode Throughput Per User,tokens/sec/user,std,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Prefill Throughput,tokens/sec,avg,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Prefill Throughput,tokens/sec,min,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Prefill Throughput,tokens/sec,max,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Prefill Throughput,tokens/sec,p50,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Prefill Throughput,tokens/sec,p90,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Prefill Throughput,tokens/sec,p95,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Prefill Throughput,tokens/sec,p99,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Prefill Throughput,tokens/sec,std,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Prefill Throughput Per User,tokens/sec/user,avg,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Prefill Throughput Per User,tokens/sec/user,min,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Prefill Throughput Per User,tokens/sec/user,max,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Prefill Throughput Per User,tokens/sec/user,p50,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Prefill Throughput Per User,tokens/sec/user,p90,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Prefill Throughput Per User,tokens/sec/user,p95,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Prefill Throughput Per User,tokens/sec/user,p99,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Prefill Throughput Per User,tokens/sec/user,std,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Total Throughput,tokens/sec,avg,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Total Throughput,tokens/sec,min,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Total Throughput,tokens/sec,max,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Total Throughput,tokens/sec,p50,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Total Throughput,tokens/sec,p90,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Total Throughput,tokens/sec,p95,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Total Throughput,tokens/sec,p99,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Active Total Throughput,tokens/sec,std,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Time to First Token (error-adjusted),ms,min,50.00\r\n",
    "1,1767000004000000000,1767000004450000000,Time to First Token (error-adjusted),ms,p1,50.00\r\n",
    "1,1767000004000000000,1767000004450000000,Time to First Token (error-adjusted),ms,p5,50.00\r\n",
    "1,1767000004000000000,1767000004450000000,Time to First Token (error-adjusted),ms,p10,50.00\r\n",
    "1,1767000004000000000,1767000004450000000,Time to First Token (error-adjusted),ms,p25,50.00\r\n",
    "1,1767000004000000000,1767000004450000000,Time to First Token (error-adjusted),ms,p50,50.00\r\n",
    "1,1767000004000000000,1767000004450000000,Benchmark Duration,sec,avg,0.15\r\n",
    "1,1767000004000000000,1767000004450000000,Completed Requests (Success + Error),requests,avg,2.00\r\n",
    "1,1767000004000000000,1767000004450000000,Context Overflow Count,requests,avg,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Concurrency,requests,avg,0.44\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Concurrency,requests,min,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Concurrency,requests,max,1.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Concurrency,requests,p50,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Concurrency,requests,p90,1.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Concurrency,requests,p95,1.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Concurrency,requests,p99,1.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Concurrency,requests,std,0.50\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Decode Concurrency,requests,avg,0.22\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Decode Concurrency,requests,min,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Decode Concurrency,requests,max,1.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Decode Concurrency,requests,p50,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Decode Concurrency,requests,p90,1.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Decode Concurrency,requests,p95,1.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Decode Concurrency,requests,p99,1.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Decode Concurrency,requests,std,0.42\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Decode Throughput,tokens/sec,avg,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Decode Throughput,tokens/sec,min,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Decode Throughput,tokens/sec,max,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Decode Throughput,tokens/sec,p50,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Decode Throughput,tokens/sec,p90,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Decode Throughput,tokens/sec,p95,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Decode Throughput,tokens/sec,p99,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Decode Throughput,tokens/sec,std,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Decode Throughput Per User,tokens/sec/user,avg,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Decode Throughput Per User,tokens/sec/user,min,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Decode Throughput Per User,tokens/sec/user,max,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Decode Throughput Per User,tokens/sec/user,p50,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Decode Throughput Per User,tokens/sec/user,p90,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Decode Throughput Per User,tokens/sec/user,p95,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Decode Throughput Per User,tokens/sec/user,p99,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Decode Throughput Per User,tokens/sec/user,std,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Prefill Concurrency,requests,avg,0.11\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Prefill Concurrency,requests,min,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Prefill Concurrency,requests,max,1.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Prefill Concurrency,requests,p50,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Prefill Concurrency,requests,p90,1.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Prefill Concurrency,requests,p95,1.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Prefill Concurrency,requests,p99,1.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Prefill Concurrency,requests,std,0.31\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Prefill Throughput,tokens/sec,avg,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Prefill Throughput,tokens/sec,min,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Prefill Throughput,tokens/sec,max,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Prefill Throughput,tokens/sec,p50,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Prefill Throughput,tokens/sec,p90,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Prefill Throughput,tokens/sec,p95,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Prefill Throughput,tokens/sec,p99,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Prefill Throughput,tokens/sec,std,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Prefill Throughput Per User,tokens/sec/user,avg,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Prefill Throughput Per User,tokens/sec/user,min,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Prefill Throughput Per User,tokens/sec/user,max,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Prefill Throughput Per User,tokens/sec/user,p50,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Prefill Throughput Per User,tokens/sec/user,p90,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Prefill Throughput Per User,tokens/sec/user,p95,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Prefill Throughput Per User,tokens/sec/user,p99,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Prefill Throughput Per User,tokens/sec/user,std,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Total Throughput,tokens/sec,avg,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Total Throughput,tokens/sec,min,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Total Throughput,tokens/sec,max,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Total Throughput,tokens/sec,p50,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Total Throughput,tokens/sec,p90,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Total Throughput,tokens/sec,p95,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Total Throughput,tokens/sec,p99,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Effective Total Throughput,tokens/sec,std,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Error Request Count,requests,avg,1.00\r\n",
    "1,1767000004000000000,1767000004450000000,Request Count,requests,avg,1.00\r\n",
    "1,1767000004000000000,1767000004450000000,Request Error Rate,%,avg,50.00\r\n",
    "1,1767000004000000000,1767000004450000000,Request Throughput,requests/sec,avg,2.22\r\n",
    "1,1767000004000000000,1767000004450000000,Time to First Token,ms,avg,50.00\r\n",
    "1,1767000004000000000,1767000004450000000,Time to First Token,ms,min,50.00\r\n",
    "1,1767000004000000000,1767000004450000000,Time to First Token,ms,max,50.00\r\n",
    "1,1767000004000000000,1767000004450000000,Time to First Token,ms,sum,50.00\r\n",
    "1,1767000004000000000,1767000004450000000,Time to First Token,ms,p1,50.00\r\n",
    "1,1767000004000000000,1767000004450000000,Time to First Token,ms,p5,50.00\r\n",
    "1,1767000004000000000,1767000004450000000,Time to First Token,ms,p10,50.00\r\n",
    "1,1767000004000000000,1767000004450000000,Time to First Token,ms,p25,50.00\r\n",
    "1,1767000004000000000,1767000004450000000,Time to First Token,ms,p50,50.00\r\n",
    "1,1767000004000000000,1767000004450000000,Time to First Token,ms,p75,50.00\r\n",
    "1,1767000004000000000,1767000004450000000,Time to First Token,ms,p90,50.00\r\n",
    "1,1767000004000000000,1767000004450000000,Time to First Token,ms,p95,50.00\r\n",
    "1,1767000004000000000,1767000004450000000,Time to First Token,ms,p99,50.00\r\n",
    "1,1767000004000000000,1767000004450000000,Time to First Token,ms,std,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Tokens In Flight,tokens,avg,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Tokens In Flight,tokens,min,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Tokens In Flight,tokens,max,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Tokens In Flight,tokens,p50,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Tokens In Flight,tokens,p90,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Tokens In Flight,tokens,p95,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Tokens In Flight,tokens,p99,0.00\r\n",
    "1,1767000004000000000,1767000004450000000,Tokens In Flight,tokens,std,0.00\r\n",
);

/// AIPerf 0.13 shows `effective_latency` in its Effective table (console group EFFECTIVE,
/// no display order: last), not in the default one.
#[test]
fn effective_latency_closes_the_effective_table() {
    let order = |tag: &str| crate::metrics::lookup(tag).and_then(|d| d.console_order());
    let mut r = fixture();
    r.metrics = vec![
        record_metric(
            "request_latency",
            "Request Latency",
            "ms",
            order("request_latency"),
            &[20.0, 30.0],
        ),
        record_metric(
            "effective_latency",
            "Effective Latency (CO-aware)",
            "ms",
            order("effective_latency"),
            &[21.0, 33.0],
        ),
        record_metric(
            "effective_concurrency",
            "Effective Concurrency",
            "requests",
            order("effective_concurrency"),
            &[2.0, 2.0],
        ),
    ];
    let expected = concat!(
        "                           NVIDIA AIPerf | LLM Metrics: Effective                           \n",
        "┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━┳━━━━━━━┳━━━━━━━┳━━━━━━━┳━━━━━━━┳━━━━━━━┳━━━━━━┓\n",
        "┃                            Metric ┃   avg ┃   min ┃   max ┃   p99 ┃   p90 ┃   p50 ┃  std ┃\n",
        "┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━╇━━━━━━━╇━━━━━━━╇━━━━━━━╇━━━━━━━╇━━━━━━━╇━━━━━━┩\n",
        "│  Effective Concurrency (requests) │  2.00 │  2.00 │  2.00 │  2.00 │  2.00 │  2.00 │ 0.00 │\n",
        "│ Effective Latency (CO-aware) (ms) │ 27.00 │ 21.00 │ 33.00 │ 32.88 │ 31.80 │ 27.00 │ 6.00 │\n",
        "└───────────────────────────────────┴───────┴───────┴───────┴───────┴───────┴───────┴──────┘\n",
        "                          NVIDIA AIPerf | LLM Metrics                          \n",
        "┏━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━┳━━━━━━━┳━━━━━━━┳━━━━━━━┳━━━━━━━┳━━━━━━━┳━━━━━━┓\n",
        "┃               Metric ┃   avg ┃   min ┃   max ┃   p99 ┃   p90 ┃   p50 ┃  std ┃\n",
        "┡━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━╇━━━━━━━╇━━━━━━━╇━━━━━━━╇━━━━━━━╇━━━━━━━╇━━━━━━┩\n",
        "│ Request Latency (ms) │ 25.00 │ 20.00 │ 30.00 │ 29.90 │ 29.00 │ 25.00 │ 5.00 │\n",
        "└──────────────────────┴───────┴───────┴───────┴───────┴───────┴───────┴──────┘\n",
    );
    assert_eq!(console::render_metrics_table(&r), expected);
}

/// The summary carries each group's error as AIPerf's does: its first record's, cause
/// and chain included, keys in the model's order.
#[test]
fn error_summary_keeps_cause_and_chain() {
    let mut r = fixture();
    r.error_summary = vec![ErrorCount {
        error_details: ErrorDetails::exception(
            "TimeoutError",
            "TimeoutError()".to_owned(),
            Some("CancelledError()".to_owned()),
            &["TimeoutError", "CancelledError"],
        ),
        count: 3,
    }];
    let text = json::render(&r);
    // The run's, not the (empty) telemetry's.
    let from = text.find("\n  \"error_summary\"").map_or(0, |i| i + 3);
    let to = text.find(",\n  \"start_time\"").unwrap_or_default();
    let summary = text.get(from..to).unwrap_or_default();
    let expected = "\"error_summary\": [\n    {\n      \"error_details\": {\n        \
                    \"type\": \"TimeoutError\",\n        \"message\": \"TimeoutError()\",\n        \
                    \"cause\": \"CancelledError()\",\n        \"cause_chain\": [\n          \
                    \"TimeoutError\",\n          \"CancelledError\"\n        ]\n      },\n      \
                    \"count\": 3\n    }\n  ]";
    assert_eq!(summary, expected);
}

/// rich's wrapping of a printed note: a word goes to the next line when its text (not
/// the space after it) passes column 140, and a broken line keeps that space.
#[test]
fn notes_wrap_as_rich_prints_them() {
    let word = "x".repeat(69);
    let text = format!("{word} {word} {word} a");
    assert_eq!(
        console::render_note(&text),
        format!("\n{word} {word} \n{word} a\n")
    );
    // 69 + 1 + 70 = 140 columns: the second word still fits.
    let text = format!("{word} {word}y z");
    assert_eq!(
        console::render_note(&text),
        format!("\n{word} {word}y \nz\n")
    );
    assert_eq!(console::render_note("short"), "\nshort\n");
}

/// A cancelled run's summary says why it is incomplete, in AIPerf 0.13's words and
/// place; a finished one has no reason.
#[test]
fn a_cancelled_summary_gives_aiperf_s_incomplete_reason() {
    let mut r = fixture();
    r.was_cancelled = true;
    let text = json::render(&r);
    assert!(
        text.contains(
            "\"was_cancelled\": true,\n  \"is_complete\": false,\n  \"incomplete_reason\": \
             \"Run cancelled before all records were processed.\",\n  \"error_summary\""
        ),
        "{text}"
    );
    r.was_cancelled = false;
    assert!(!json::render(&r).contains("incomplete_reason"));
}
