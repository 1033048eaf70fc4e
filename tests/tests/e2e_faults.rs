//! End to end against a misbehaving server: `aiperf-mock --fault MODE` replays each
//! response case of the client cases (and resets, stalls, slow headers, garbage, error
//! statuses) over a real socket, the core binary benchmarks it, and the recorded outcome
//! must be the case's: in `profile_export.jsonl` (one line per request, its error),
//! the JSON `error_summary` and the console's error table. Also TLS and several URLs.
//!
//! The core binary is the one `e2e_core` builds (same path, same shared target).

mod common;

use common::{read_json, read_records, run_dir, workspace, Mock};

use std::path::Path;
use std::process::Output;

use serde_json::{json, Value};

fn tls_fixture(name: &str) -> String {
    workspace()
        .join("tests/fixtures/tls")
        .join(name)
        .to_str()
        .expect("utf-8 path")
        .to_owned()
}

/// Runs a streaming chat benchmark against `urls` and returns its output. Whatever its
/// requests met, the run writes its summary and exits 0, or 1 when no request succeeded
/// (as AIPerf 0.13 does).
fn profile(urls: &[&str], dir: &Path, extra: &[&str]) -> Output {
    let _ = std::fs::remove_dir_all(dir);
    let args = [&["--streaming", "--isl", "16"], extra].concat();
    let output = common::run_profile(urls, dir, &args);
    let succeeded = common::read_json(dir)
        .get("request_count")
        .is_some_and(|m| m["avg"].as_f64() > Some(0.0));
    assert_eq!(
        output.status.code(),
        Some(if succeeded { 0 } else { 1 }),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn metric(record: &Value, tag: &str) -> f64 {
    record["metrics"][tag]["value"]
        .as_f64()
        .unwrap_or_else(|| panic!("no {tag} in {record:#}"))
}

/// `inter_chunk_latency`: the gaps between content events, in ms.
fn chunk_gaps(record: &Value) -> Vec<f64> {
    record["metrics"]["inter_chunk_latency"]["value"]
        .as_array()
        .map(|gaps| gaps.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default()
}

/// A fault run of `count` requests, one at a time, whose requests all meet `fault`.
struct Run {
    records: Vec<Value>,
    json: Value,
    stdout: String,
}

fn run_fault(name: &str, mock: &Mock, count: usize, extra: &[&str]) -> Run {
    let dir = run_dir(name);
    let n = count.to_string();
    let mut args = vec!["--request-count", n.as_str(), "--concurrency", "1"];
    args.extend_from_slice(extra);
    let output = profile(&[&mock.url], &dir, &args);
    let run = Run {
        records: read_records(&dir),
        json: read_json(&dir),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
    };
    assert_eq!(run.records.len(), count, "one record per request");
    let _ = std::fs::remove_dir_all(&dir);
    run
}

/// Every request failed with exactly `error`: each record carries it, the summary counts
/// them all under it, and the console's error table lists it.
fn assert_all_failed_with(run: &Run, error: &Value) {
    for record in &run.records {
        assert_eq!(&record["error"], error, "{record:#}");
    }
    let mut details = error.clone();
    if let Some(obj) = details.as_object_mut() {
        // The summary groups by code, type and message only.
        obj.remove("details");
    }
    assert_eq!(
        run.json["error_summary"],
        json!([{"error_details": details, "count": run.records.len()}]),
    );
    assert!(
        run.stdout.contains("NVIDIA AIPerf | Error Summary"),
        "no error table:\n{}",
        run.stdout
    );
    // The console writes an empty type as AIPerf does, `N/A`.
    let kind = match error["type"].as_str() {
        Some("") | None => "N/A",
        Some(kind) => kind,
    };
    let table = run
        .stdout
        .split_once("NVIDIA AIPerf | Error Summary")
        .map_or("", |(_, table)| table);
    let row = table
        .lines()
        .find(|l| l.contains(kind))
        .unwrap_or_else(|| panic!("no row for {kind}:\n{}", run.stdout));
    assert!(
        row.trim_end_matches(['│', ' '])
            .ends_with(&run.records.len().to_string()),
        "{row}"
    );
}

fn assert_all_succeeded(run: &Run) {
    for record in &run.records {
        assert!(record.get("error").is_none(), "{record:#}");
    }
    assert_eq!(run.json["error_summary"], json!([]));
    assert!(!run.stdout.contains("Error Summary"), "{}", run.stdout);
}

fn assert_near(what: &str, value: f64, expected: f64, tolerance: f64) {
    assert!(
        (value - expected).abs() <= tolerance,
        "{what} = {value}, expected {expected} ± {tolerance}"
    );
}

/// A time the mock's schedule fixes from below (nothing is sent early, and the request
/// reached the mock after the client started its clock); a loaded machine only adds.
fn assert_ttft(value: f64, expected: f64) {
    assert!(
        (expected..expected + 50.0).contains(&value),
        "TTFT = {value} ms, expected {expected} ms (+50 ms for a loaded machine)"
    );
}

#[test]
fn bc01_several_events_in_one_read() {
    let mock = Mock::fault("bc01", &[]);
    let run = run_fault("bc01", &mock, 3, &[]);
    assert_all_succeeded(&run);
    for r in &run.records {
        assert_eq!(metric(r, "output_sequence_length"), 2.0);
        assert_ttft(metric(r, "time_to_first_token"), 120.0);
        // Both tokens came in one read: a zero gap is data, not an error.
        assert_eq!(metric(r, "inter_token_latency"), 0.0);
    }
}

#[test]
fn bc02_event_split_across_reads() {
    let mock = Mock::fault("bc02", &[]);
    let run = run_fault("bc02", &mock, 2, &[]);
    assert_all_succeeded(&run);
    for r in &run.records {
        assert_eq!(metric(r, "output_sequence_length"), 2.0, "Hello, there");
        // The first event completes when its blank line arrives (320 ms), not at 300.
        assert_ttft(metric(r, "time_to_first_token"), 320.0);
    }
}

#[test]
fn bc03_data_without_space_and_tgi_error_frame() {
    let mock = Mock::fault("bc03", &[]);
    let run = run_fault("bc03", &mock, 2, &[]);
    assert_all_failed_with(
        &run,
        &json!({"type": "generation", "message": "generation failed: shape mismatch"}),
    );
}

#[test]
fn bc04_comments_produce_no_token() {
    // The case's minute, at a hundredth: comments at 300 and 600 ms, tokens at 615 ms.
    let mock = Mock::fault("bc04", &["--fault-time-scale", "0.01"]);
    let run = run_fault("bc04", &mock, 2, &[]);
    assert_all_succeeded(&run);
    for r in &run.records {
        // The output "AB" is one o200k token.
        assert_eq!(metric(r, "output_sequence_length"), 1.0);
        assert_eq!(chunk_gaps(r).len(), 1, "two content events, comments none");
        assert_ttft(metric(r, "time_to_first_token"), 615.0);
    }
}

#[test]
fn bc05_crlf_and_bare_cr() {
    let mock = Mock::fault("bc05", &[]);
    let run = run_fault("bc05", &mock, 2, &[]);
    assert_all_succeeded(&run);
    for r in &run.records {
        // The output "xy" is one o200k token; the events are what CRLF must not hide.
        assert_eq!(metric(r, "output_sequence_length"), 1.0);
        assert_ttft(metric(r, "time_to_first_token"), 200.0);
        let gaps = chunk_gaps(r);
        assert_eq!(gaps.len(), 1, "events at 200 and 215 ms");
        assert_near("chunk gap", gaps[0], 15.0, 8.0);
    }
}

#[test]
fn bc06_finish_reason_without_done_is_success() {
    let mock = Mock::fault("bc06", &[]);
    let run = run_fault("bc06", &mock, 2, &[]);
    assert_all_succeeded(&run);
    for r in &run.records {
        assert_eq!(metric(r, "output_sequence_length"), 1.0);
        assert_ttft(metric(r, "time_to_first_token"), 150.0);
    }
}

#[test]
fn bc06_neither_finish_reason_nor_done_is_truncated() {
    let mock = Mock::fault("bc06-truncated", &[]);
    let run = run_fault("bc06-truncated", &mock, 2, &[]);
    assert_all_failed_with(
        &run,
        &json!({
            "type": "TruncatedStream",
            "message": "the event stream ended without [DONE] or a finish reason"
        }),
    );
}

#[test]
fn bc07_error_objects_after_200() {
    let mock = Mock::fault("bc07a", &["--fault-time-scale", "0.1"]);
    let run = run_fault("bc07a", &mock, 2, &[]);
    assert_all_failed_with(
        &run,
        &json!({"code": 504, "type": "GatewayTimeout", "message": "upstream timed out"}),
    );
    // An `event: error` fails the request where it ends, as AIPerf's stream reader raises
    // an `SSEResponseError` (502) naming the event and the monotonic time of its read.
    let mock = Mock::fault("bc07b", &[]);
    let run = run_fault("bc07b", &mock, 2, &[]);
    let mut perf = Vec::new();
    for r in &run.records {
        let message = r["error"]["message"].as_str().unwrap_or_default();
        let digits: String = message
            .split("perf_ns=")
            .nth(1)
            .unwrap_or_default()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let perf_ns: u64 = digits.parse().unwrap_or_else(|_| panic!("{message}"));
        let data = "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\
                    \"message\":\"busy\"}}";
        let expected = json!({
            "code": 502,
            "type": "SSEResponseError",
            "message": format!(
                "SSEResponseError('Error occurred in SSE response: Unknown error in SSE \
                 response: SSEMessage(perf_ns={perf_ns}, packets=[SSEField(name=\\'event\\', \
                 value=\\'error\\'), SSEField(name=\\'data\\', value=\\'{data}\\')])')"
            ),
            "cause_chain": ["SSEResponseError"],
        });
        assert_eq!(r["error"], expected, "{r:#}");
        let end = r["metadata"]["request_end_ns"].as_u64().unwrap_or_default();
        perf.push((perf_ns, end));
    }
    // The time is the request's end, on the monotonic clock: as far from the other's as
    // the wall clock says (both tick in nanoseconds).
    let gap = |(a, b): (u64, u64)| a as i128 - b as i128;
    let skew = gap((perf[1].0, perf[0].0)) - gap((perf[1].1, perf[0].1));
    assert!(skew.abs() < 1_000_000, "{perf:?}");
    // Each record is its own group, as in AIPerf (no two reads share a time).
    let summary = run.json["error_summary"].as_array().map_or(0, Vec::len);
    assert_eq!(summary, 2, "{:#}", run.json["error_summary"]);
}

/// The comment of an `event: error` is AIPerf's message, without a time.
#[test]
fn an_error_event_s_comment_is_its_message() {
    let sse = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\
         \r\n{}",
        chunked(&[
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n",
            "event: error\n: model crashed\ndata: {\"x\":1}\n\n",
        ])
    );
    let run = run_script("sse-error-comment", &sse, "keep-alive", &[]);
    assert_all_failed_with(
        &run,
        &json!({
            "code": 502,
            "type": "SSEResponseError",
            "message": "SSEResponseError('Error occurred in SSE response: model crashed')",
            "cause_chain": ["SSEResponseError"],
        }),
    );
}

#[test]
fn bc08_role_prelude_is_not_the_first_token() {
    let mock = Mock::fault("bc08", &[]);
    let run = run_fault("bc08", &mock, 2, &[]);
    assert_all_succeeded(&run);
    for r in &run.records {
        assert_ttft(metric(r, "time_to_first_token"), 850.0);
        assert_near("ITL", metric(r, "inter_token_latency"), 20.0, 8.0);
        assert_eq!(metric(r, "output_sequence_length"), 2.0);
    }
}

#[test]
fn bc10_usage_only_chunk_with_the_wrong_object() {
    let mock = Mock::fault("bc10", &[]);
    let run = run_fault("bc10", &mock, 2, &[]);
    assert_all_succeeded(&run);
    for r in &run.records {
        assert_eq!(metric(r, "output_sequence_length"), 1.0);
        assert_eq!(metric(r, "usage_completion_tokens"), 1.0);
        assert_eq!(metric(r, "usage_prompt_tokens"), 7.0);
    }
}

#[test]
fn bc15_several_tokens_per_chunk() {
    let mock = Mock::fault("bc15", &[]);
    let run = run_fault("bc15", &mock, 2, &[]);
    assert_all_succeeded(&run);
    for r in &run.records {
        assert_eq!(metric(r, "output_sequence_length"), 16.0);
        assert_ttft(metric(r, "time_to_first_token"), 100.0);
        // (130 - 100) / (16 - 1)
        assert_near("ITL", metric(r, "inter_token_latency"), 2.0, 1.0);
        let gaps = chunk_gaps(r);
        assert_eq!(gaps.len(), 3, "{r:#}");
        for gap in gaps {
            assert_near("chunk gap", gap, 10.0, 8.0);
        }
    }
}

#[test]
fn bc19_itl_excludes_ttft() {
    // TTFT 200 ms, then 99 tokens 2 ms apart: the case at a tenth.
    let mock = Mock::fault("bc19", &["--fault-time-scale", "0.1"]);
    let run = run_fault("bc19", &mock, 1, &[]);
    assert_all_succeeded(&run);
    let r = &run.records[0];
    assert_eq!(metric(r, "output_sequence_length"), 100.0);
    assert_ttft(metric(r, "time_to_first_token"), 200.0);
    assert_near("ITL", metric(r, "inter_token_latency"), 2.0, 0.5);
}

#[test]
fn bc20_reused_connection_closed_by_the_server_is_retried() {
    // The mock closes a kept-alive connection when its second request arrives.
    let mock = Mock::fault("bc20", &["--output-tokens", "3"]);
    let run = run_fault("bc20", &mock, 4, &[]);
    assert_all_succeeded(&run);
    for r in &run.records {
        assert_eq!(metric(r, "output_sequence_length"), 3.0);
    }
}

/// With several pooled connections the server has closed, the retry must not take
/// another of them (it used to, and one request in five failed).
#[test]
fn bc20_retry_goes_on_a_new_connection() {
    let mock = Mock::fault("bc20", &["--output-tokens", "2"]);
    let dir = run_dir("bc20-pooled");
    let args = ["--request-count", "60", "--concurrency", "4"];
    profile(&[&mock.url], &dir, &args);
    let run = Run {
        records: read_records(&dir),
        json: read_json(&dir),
        stdout: String::new(),
    };
    assert_eq!(run.records.len(), 60);
    assert_all_succeeded(&run);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A server that reads every second request and closes without answering it, on a
/// connection it had kept alive: those requests fail as AIPerf records them, and none is
/// sent again (it may have been acted on). The retry of BC-20 used to take them for the
/// idle-timeout race: the run read 10 successes, the server got 19 requests.
#[test]
fn a_request_read_then_dropped_on_a_kept_alive_connection_fails() {
    let mock = Mock::start(&[
        "--fault",
        "close-before-response",
        "--fault-every",
        "2",
        "--output-tokens",
        "4",
    ]);
    let run = run_fault("close-every-2", &mock, 10, &[]);
    let failed: Vec<&Value> = run.records.iter().filter_map(|r| r.get("error")).collect();
    assert_eq!(failed.len(), 5, "every 2nd of 10: {failed:?}");
    for error in failed {
        assert_eq!(
            error,
            &json!({
                "type": "ServerDisconnectedError",
                "message": "ServerDisconnectedError('Server disconnected')",
                "cause_chain": ["ServerDisconnectedError"],
            })
        );
    }
}

#[test]
fn bc21_chunked_body_truncated() {
    let mock = Mock::fault("bc21", &[]);
    let run = run_fault("bc21", &mock, 2, &[]);
    assert_all_failed_with(
        &run,
        &json!({
            "type": "ClientPayloadError",
            "message": format!(
                "ClientPayloadError(\"Response payload is not completed: \
                 {TRANSFER_ENCODING_ERROR}\")"
            ),
            "cause": TRANSFER_ENCODING_ERROR,
            "cause_chain": ["ClientPayloadError", "TransferEncodingError"],
        }),
    );
}

/// aiohttp's parser error for a chunked body that ends early, AIPerf's `cause`.
const TRANSFER_ENCODING_ERROR: &str =
    "<TransferEncodingError: 400, message='Not enough data to satisfy transfer length header.'>";

/// `data` as a chunked body, terminator included.
fn chunked(data: &[&str]) -> String {
    let mut body: String = data
        .iter()
        .map(|d| format!("{:x}\r\n{d}\r\n", d.len()))
        .collect();
    body.push_str("0\r\n\r\n");
    body
}

/// A run of 2 requests against a mock answering each with `response`, written at once
/// and ended by `end` (`close`, `reset`, `keep-alive`).
fn run_script(name: &str, response: &str, end: &str, extra: &[&str]) -> Run {
    let rules = json!([{"script": {"writes": [{"at_ms": 1, "data": response}], "end": end}}]);
    let rules = if response.is_empty() {
        json!([{"script": {"writes": [], "end": end}}])
    } else {
        rules
    };
    let file = run_dir(&format!("{name}-faults.json"));
    std::fs::create_dir_all(file.parent().expect("a parent")).expect("the e2e dir");
    std::fs::write(&file, rules.to_string()).expect("the faults file");
    let mock = Mock::start(&["--faults", file.to_str().expect("utf-8 path")]);
    let run = run_fault(name, &mock, 2, extra);
    let _ = std::fs::remove_file(&file);
    run
}

#[test]
fn content_length_body_truncated() {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 300\r\n\r\n";
    let cause = "<ContentLengthError: 400, message='Not enough data to satisfy content length \
                 header (received 14 of 300 bytes).'>";
    let run = run_script(
        "cl-close",
        &format!("{head}{{\"choices\":[]}}"),
        "close",
        &[],
    );
    assert_all_failed_with(
        &run,
        &json!({
            "type": "ClientPayloadError",
            "message": format!(
                "ClientPayloadError(\"Response payload is not completed: {cause}\")"
            ),
            "cause": cause,
            "cause_chain": ["ClientPayloadError", "ContentLengthError"],
        }),
    );
}

#[test]
fn reset_before_the_response_is_a_client_os_error() {
    let run = run_script("reset0", "", "reset", &[]);
    assert_all_failed_with(
        &run,
        &json!({
            "type": "ClientOSError",
            "message": "ClientOSError(104, 'Connection reset by peer')",
            "cause": "ConnectionResetError(104, 'Connection reset by peer')",
            "cause_chain": ["ClientOSError", "ConnectionResetError"],
        }),
    );
}

#[test]
fn refused_connection_is_a_client_connector_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let dir = run_dir("refused");
    let output = profile(
        &[&url],
        &dir,
        &["--request-count", "2", "--concurrency", "1"],
    );
    let run = Run {
        records: read_records(&dir),
        json: read_json(&dir),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
    };
    let _ = std::fs::remove_dir_all(&dir);
    let inner =
        format!("ConnectionRefusedError(111, \"Connect call failed ('127.0.0.1', {port})\")");
    assert_all_failed_with(
        &run,
        &json!({
            "type": "ClientConnectorError",
            "message": format!(
                "ClientConnectorError(ConnectionKey(host='127.0.0.1', port={port}, is_ssl=False, \
                 ssl=True, proxy=None, proxy_auth=None, proxy_headers_hash=None, \
                 server_hostname=None), {inner})"
            ),
            "cause": inner,
            "cause_chain": ["ClientConnectorError", "ConnectionRefusedError"],
        }),
    );
}

#[test]
fn responses_without_content_are_aiperf_s_invalid_results() {
    let body = "{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"\"},\
                \"finish_reason\":\"stop\"}]}";
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let run = run_script("empty-json", &response, "keep-alive", &[]);
    assert_all_failed_with(
        &run,
        &json!({
            "type": "InvalidInferenceResultError",
            "message": "InvalidInferenceResultError('Invalid inference result: No responses with \
                        actual content were received from the server (only usage/metadata, \
                        null/empty data, or [DONE] markers)')",
            "cause_chain": ["InvalidInferenceResultError"],
        }),
    );
    // An event stream of no bytes: no response unit at all.
    let response =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 0\r\n\r\n";
    let run = run_script("sse-empty", response, "keep-alive", &[]);
    assert_all_failed_with(
        &run,
        &json!({
            "type": "InvalidInferenceResultError",
            "message": "InvalidInferenceResultError('Invalid inference result: No responses were \
                        received')",
            "cause_chain": ["InvalidInferenceResultError"],
        }),
    );
}

#[test]
fn a_status_without_a_reason_phrase_has_an_empty_type() {
    let response = "HTTP/1.1 404 \r\nContent-Length: 4\r\n\r\nnope";
    let run = run_script("http-404", response, "keep-alive", &[]);
    assert_all_failed_with(&run, &json!({"code": 404, "type": "", "message": "nope"}));
}

#[test]
fn bc22_overload_is_shed_with_retry_after() {
    let mock = Mock::fault("bc22", &[]);
    let run = run_fault("bc22", &mock, 2, &[]);
    assert_all_failed_with(
        &run,
        &json!({
            "code": 429,
            "type": "Too Many Requests",
            "message": "{\"error\":\"Model is overloaded\",\"error_type\":\"overloaded\"}",
            "details": {"retry_after": "2"}
        }),
    );
    let mock = Mock::fault("http-503", &[]);
    let run = run_fault("http-503", &mock, 2, &[]);
    assert_all_failed_with(
        &run,
        &json!({
            "code": 503,
            "type": "Service Unavailable",
            "message": "{\"error\":{\"message\":\"queue full\",\"type\":\"ServiceUnavailable\",\
                        \"code\":503}}"
        }),
    );
}

#[test]
fn http_500_is_an_http_error() {
    let mock = Mock::fault("http-500", &[]);
    let run = run_fault("http-500", &mock, 2, &[]);
    assert_all_failed_with(
        &run,
        &json!({
            "code": 500,
            "type": "Internal Server Error",
            "message": "{\"error\":{\"message\":\"internal error\",\"type\":\
                        \"InternalServerError\",\"code\":500}}"
        }),
    );
}

#[test]
fn reset_mid_stream_is_truncated() {
    let mock = Mock::fault("reset-mid-stream", &[]);
    let run = run_fault("reset", &mock, 2, &[]);
    assert_all_failed_with(
        &run,
        &json!({
            "type": "ClientPayloadError",
            "message": format!(
                "ClientPayloadError(\"Response payload is not completed: {}. \
                 ConnectionResetError(104, 'Connection reset by peer')\")",
                TRANSFER_ENCODING_ERROR
            ),
            "cause": TRANSFER_ENCODING_ERROR,
            "cause_chain": ["ClientPayloadError", "TransferEncodingError"],
        }),
    );
}

#[test]
fn stall_times_out_with_the_events_so_far() {
    let mock = Mock::fault("stall", &[]);
    let run = run_fault("stall", &mock, 2, &["--request-timeout-seconds", "0.5"]);
    assert_all_failed_with(
        &run,
        &json!({
            "type": "TimeoutError",
            "message": "TimeoutError()",
            "cause": "CancelledError()",
            "cause_chain": ["TimeoutError", "CancelledError"],
        }),
    );
    for r in &run.records {
        let meta = &r["metadata"];
        let span =
            meta["request_end_ns"].as_u64().unwrap() - meta["request_start_ns"].as_u64().unwrap();
        // The limit runs from before the connect; the recorded start is the write.
        assert!((450_000_000..1_500_000_000).contains(&span), "{span} ns");
    }
}

#[test]
fn slow_headers_are_waited_for() {
    let mock = Mock::fault("slow-headers", &[]);
    let run = run_fault("slow-headers", &mock, 1, &[]);
    assert_all_succeeded(&run);
    let meta = &run.records[0]["metadata"];
    let head =
        meta["request_ack_ns"].as_u64().unwrap() - meta["request_start_ns"].as_u64().unwrap();
    // About 100 head bytes, one every 5 ms.
    assert!(head >= 300_000_000, "head complete after {head} ns");
}

#[test]
fn garbage_and_early_close_are_connection_errors() {
    let mock = Mock::fault("garbage", &[]);
    let run = run_fault("garbage", &mock, 2, &[]);
    // aiohttp's exceptions; the message is this tool's (AIPerf's names every header sent).
    assert_all_failed_with(
        &run,
        &json!({
            "type": "ClientResponseError",
            "message": "invalid response head: malformed response head: invalid HTTP version",
            "cause_chain": ["ClientResponseError", "HttpProcessingError", "BadStatusLine"],
        }),
    );

    let mock = Mock::fault("close-before-response", &[]);
    let run = run_fault("close", &mock, 2, &[]);
    assert_all_failed_with(
        &run,
        &json!({
            "type": "ServerDisconnectedError",
            "message": "ServerDisconnectedError('Server disconnected')",
            "cause_chain": ["ServerDisconnectedError"],
        }),
    );
}

#[test]
fn every_nth_request_fails_and_the_rest_succeed() {
    let mock = Mock::start(&[
        "--fault",
        "http-429",
        "--fault-every",
        "4",
        "--output-tokens",
        "4",
    ]);
    let dir = run_dir("every");
    let output = profile(
        &[&mock.url],
        &dir,
        &["--request-count", "20", "--concurrency", "2"],
    );
    let records = read_records(&dir);
    assert_eq!(records.len(), 20);
    let failed: Vec<&Value> = records
        .iter()
        .filter(|r| r.get("error").is_some())
        .collect();
    assert_eq!(failed.len(), 5, "every 4th of 20");
    for r in &failed {
        assert_eq!(r["error"]["code"], 429);
    }
    let json = read_json(&dir);
    assert_eq!(json["error_summary"][0]["count"], 5);
    assert_eq!(json["error_request_count"]["avg"], 5.0);
    assert_eq!(json["request_count"]["avg"], 15.0);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("Too Many Requests"), "{stdout}");

    // AIPerf's error-adjusted latency: the 15 successes plus 5 failures at +inf, ranked
    // nearest: p25 is the 5th value, p50 the 10th, p75 the 15th; from p90 (the 18th) on,
    // and avg, max, std and sum, the values are the failures' and are left out.
    let mut latencies: Vec<f64> = records
        .iter()
        .filter_map(|r| r["metrics"]["request_latency"]["value"].as_f64())
        .collect();
    latencies.sort_by(f64::total_cmp);
    assert_eq!(latencies.len(), 15);
    let adj = &json["adj_request_latency"];
    assert_eq!(adj["unit"], "ms");
    assert_eq!(adj["count"], 20);
    assert_eq!(adj["min"].as_f64(), Some(latencies[0]));
    assert_eq!(adj["p25"].as_f64(), Some(latencies[4]));
    assert_eq!(adj["p50"].as_f64(), Some(latencies[9]));
    assert_eq!(adj["p75"].as_f64(), Some(latencies[14]));
    for absent in ["avg", "max", "std", "sum", "p90", "p95", "p99"] {
        assert!(adj.get(absent).is_none(), "{absent} in {adj}");
    }
    assert!(
        stdout.contains("Request Latency (error-adjusted)"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn streaming_benchmark_over_tls() {
    let mock = Mock::start(&[
        "--tls-cert",
        &tls_fixture("server.pem"),
        "--tls-key",
        &tls_fixture("server.key"),
        "--ttft-ms",
        "30",
        "--itl-ms",
        "3",
        "--output-tokens",
        "32",
    ]);
    assert!(mock.url.starts_with("https://"), "{}", mock.url);
    let dir = run_dir("tls");
    let ca = tls_fixture("ca.pem");
    profile(
        &[&mock.url],
        &dir,
        &[
            "--request-count",
            "40",
            "--concurrency",
            "4",
            "--ca-cert",
            &ca,
        ],
    );
    let json = read_json(&dir);
    assert_eq!(json["error_summary"], json!([]));
    assert_eq!(json["request_count"]["avg"], 40.0);
    assert_eq!(json["output_sequence_length"]["avg"], 32.0);
    let ttft = json["time_to_first_token"]["p50"].as_f64().unwrap();
    assert_near("TTFT p50", ttft, 30.0, 3.0);
    let itl = json["inter_token_latency"]["p50"].as_f64().unwrap();
    assert_near("ITL p50", itl, 3.0, 0.5);
    let _ = std::fs::remove_dir_all(&dir);

    // Without the test CA the system store does not trust the mock's certificate.
    let dir = run_dir("tls-untrusted");
    profile(
        &[&mock.url],
        &dir,
        &["--request-count", "2", "--concurrency", "1"],
    );
    let records = read_records(&dir);
    assert_eq!(records.len(), 2);
    let addr = mock.url.trim_start_matches("https://");
    for r in &records {
        assert_eq!(
            r["error"],
            json!({
                "type": "ClientConnectorCertificateError",
                "message": format!(
                    "connect to {addr} failed: invalid peer certificate: UnknownIssuer"
                ),
                "cause_chain": ["ClientConnectorCertificateError", "SSLCertVerificationError"],
            }),
            "{r:#}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A self-signed certificate marked as a CA, as `openssl req -x509` makes it, served by
/// the server itself: trusted when it is the `--ca-cert` (as curl and Python do), still
/// refused without it, and refused when another CA is given.
#[test]
fn a_self_signed_ca_certificate_is_trusted_as_the_server_s_own() {
    let mock = Mock::start(&[
        "--tls-cert",
        &tls_fixture("selfsigned.pem"),
        "--tls-key",
        &tls_fixture("selfsigned.key"),
        "--output-tokens",
        "2",
    ]);
    let dir = run_dir("tls-selfsigned");
    let pinned = tls_fixture("selfsigned.pem");
    profile(
        &[&mock.url],
        &dir,
        &["--request-count", "4", "--ca-cert", &pinned],
    );
    let json = read_json(&dir);
    assert_eq!(json["error_summary"], json!([]));
    assert_eq!(json["request_count"]["avg"], 4.0);
    let _ = std::fs::remove_dir_all(&dir);

    let other_ca = tls_fixture("ca.pem");
    for extra in [&[][..], &["--ca-cert", other_ca.as_str()][..]] {
        let dir = run_dir("tls-selfsigned-untrusted");
        let mut args = vec!["--request-count", "1"];
        args.extend_from_slice(extra);
        profile(&[&mock.url], &dir, &args);
        let records = read_records(&dir);
        assert_eq!(records.len(), 1);
        let error = &records[0]["error"];
        assert_eq!(
            (&error["type"], &error["cause_chain"]),
            (
                &json!("ClientConnectorCertificateError"),
                &json!([
                    "ClientConnectorCertificateError",
                    "SSLCertVerificationError"
                ])
            ),
            "{extra:?}: {:#}",
            records[0]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A `--ca-cert` that cannot be read is refused before anything is written, naming the
/// flag and the file (the workers found it once the run had started, and the error was
/// blamed on `--url`); one given with no https URL is reported as unused.
#[test]
fn a_ca_cert_that_cannot_be_used_is_refused_before_the_run() {
    let scratch = run_dir("tls-bad-ca");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let garbage = scratch.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let missing = scratch.join("missing.pem");
    let cases = [
        (
            missing.clone(),
            format!(
                "error: --ca-cert: cannot read CA certificates from {}: I/O error: No such \
                 file or directory (os error 2)\n",
                missing.display()
            ),
        ),
        (
            garbage.clone(),
            format!(
                "error: --ca-cert: {} holds no PEM certificate\n",
                garbage.display()
            ),
        ),
    ];
    let artifacts = scratch.join("artifacts");
    for (ca, expected) in cases {
        // Port 9 (discard) is never reached: the run stops before its first connection.
        let output = common::run_profile(
            &["https://127.0.0.1:9"],
            &artifacts,
            &["--request-count", "1", "--ca-cert", ca.to_str().unwrap()],
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.ends_with(&expected), "{stderr}");
        assert!(!artifacts.exists(), "{stderr}");
    }

    let mock = Mock::start(&["--output-tokens", "2"]);
    let output = profile(
        &[&mock.url],
        &artifacts,
        &[
            "--request-count",
            "1",
            "--ca-cert",
            missing.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "--ca-cert {} is not used: no --url is https",
            missing.display()
        )),
        "{stderr}"
    );
    assert_eq!(read_json(&artifacts)["request_count"]["avg"], 1.0);
    let _ = std::fs::remove_dir_all(&scratch);
}

#[test]
fn round_robin_over_several_urls() {
    let healthy = Mock::start(&["--output-tokens", "2"]);
    let failing = Mock::fault("http-500", &[]);
    let dir = run_dir("round-robin");
    profile(
        &[&healthy.url, &failing.url],
        &dir,
        &[
            "--request-count",
            "10",
            "--concurrency",
            "1",
            "--workers",
            "1",
            "--url-strategy",
            "round_robin",
        ],
    );
    let records = read_records(&dir);
    let errors: Vec<bool> = records.iter().map(|r| r.get("error").is_some()).collect();
    // One worker cycles 0, 1, 0, 1, ...: the second URL gets every other request.
    assert_eq!(errors, [false, true].repeat(5));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_connection_reuse_strategy_completes_a_run() {
    // How many connections each strategy opens is checked against a scripted server in
    // the client's unit tests; here each one runs a whole benchmark.
    let mock = Mock::start(&["--output-tokens", "3"]);
    for strategy in ["pooled", "never", "sticky-user-sessions"] {
        let dir = run_dir(strategy);
        profile(
            &[&mock.url],
            &dir,
            &[
                "--request-count",
                "6",
                "--concurrency",
                "2",
                "--connection-reuse-strategy",
                strategy,
            ],
        );
        let records = read_records(&dir);
        assert_eq!(records.len(), 6, "{strategy}");
        for r in &records {
            assert!(r.get("error").is_none(), "{strategy}: {r:#}");
            assert_eq!(metric(r, "output_sequence_length"), 3.0, "{strategy}");
        }
        let json = read_json(&dir);
        // AIPerf's key, written because the flag was given (even `pooled`, the default).
        assert_eq!(
            json["input_config"]["endpoint"]["connection_reuse"],
            strategy
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
