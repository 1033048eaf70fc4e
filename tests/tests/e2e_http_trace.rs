//! End to end: AIPerf's `http_req_*` trace metrics in `profile_export.jsonl`, against the
//! mock (timing, connection reuse) and a loopback server that counts the bytes it reads
//! and writes (data sent and received, exactly).

mod common;

use common::{profile, profile_url, read_json, read_records, run_dir, stat, Mock};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use serde_json::Value;

const TAGS: [(&str, &str); 14] = [
    ("http_req_blocked", "ms"),
    ("http_req_dns_lookup", "ms"),
    ("http_req_connecting", "ms"),
    ("http_req_sending", "ms"),
    ("http_req_waiting", "ms"),
    ("http_req_receiving", "ms"),
    ("http_req_connection_reused", "ratio"),
    ("http_req_data_sent", "KB"),
    ("http_req_chunks_sent", "count"),
    ("http_req_data_received", "KB"),
    ("http_req_chunks_received", "count"),
    ("http_req_connection_overhead", "ms"),
    ("http_req_duration", "ms"),
    ("http_req_total", "ms"),
];

fn value(record: &Value, tag: &str) -> f64 {
    record["metrics"][tag]["value"]
        .as_f64()
        .unwrap_or_else(|| panic!("{tag} missing in {record}"))
}

/// Records in the order they were sent.
fn by_start(mut records: Vec<Value>) -> Vec<Value> {
    records.sort_by_key(|r| r["metadata"]["request_start_ns"].as_u64());
    records
}

#[test]
fn trace_metrics_follow_the_mock() {
    let mock = Mock::start(&["--ttft-ms", "20", "--output-tokens", "4"]);
    let dir = run_dir("http_trace_mock");
    let args = [
        "--endpoint-type",
        "chat",
        "--concurrency",
        "1",
        "--request-count",
        "6",
    ];
    profile(&mock, &dir, &args);
    let records = by_start(read_records(&dir));
    assert_eq!(records.len(), 6);
    for (i, r) in records.iter().enumerate() {
        for (tag, unit) in TAGS {
            assert_eq!(r["metrics"][tag]["unit"], unit, "{tag} in {r}");
        }
        // One connection, opened by the first request and kept alive after it.
        let reused = value(r, "http_req_connection_reused");
        assert_eq!(reused, if i == 0 { 0.0 } else { 1.0 }, "request {i}");
        let connecting = value(r, "http_req_connecting");
        if i == 0 {
            assert!(connecting > 0.0, "the first request opened its connection");
        } else {
            assert_eq!(connecting, 0.0, "request {i}");
        }
        assert_eq!(value(r, "http_req_dns_lookup"), 0.0);
        // Non-streaming: the whole answer comes after the mock's TTFT.
        let waiting = value(r, "http_req_waiting");
        // The mock times its TTFT from the request bytes it reads, a hair before our write
        // returns; the upper bound leaves the mock and the client room on a machine busy
        // with other tests (31.6 ms seen), and still tells waiting from the whole latency.
        assert!(
            (19.0..60.0).contains(&waiting),
            "waiting {waiting} ms, TTFT 20"
        );
        let parts: f64 = [
            "http_req_blocked",
            "http_req_dns_lookup",
            "http_req_connecting",
            "http_req_sending",
            "http_req_waiting",
            "http_req_receiving",
        ]
        .iter()
        .map(|t| value(r, t))
        .sum();
        assert!((value(r, "http_req_total") - parts).abs() < 1e-6);
        let latency = value(r, "request_latency");
        assert!(value(r, "http_req_duration") <= latency + 1e-6);
        assert_eq!(value(r, "http_req_chunks_sent"), 1.0);
        assert!(value(r, "http_req_chunks_received") >= 1.0);
    }
    // Summarized as every per-request metric, files only.
    let json = read_json(&dir);
    assert!((stat(&json, "http_req_connection_reused", "avg") - 5.0 / 6.0).abs() < 1e-9);
    assert!(stat(&json, "http_req_waiting", "p50") >= 19.0);
    let csv = std::fs::read_to_string(dir.join("profile_export_aiperf.csv")).expect("csv");
    assert!(csv.contains("HTTP Waiting (TTFB) (ms)"), "{csv}");
}

const BODY: &str = r#"{"id":"c","object":"chat.completion","created":0,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hello there"},"finish_reason":"stop"}]}"#;

/// Serves `count` requests on one keep-alive connection; returns the head and body bytes
/// read per request.
fn counting_server(count: usize) -> (String, std::thread::JoinHandle<Vec<(usize, usize)>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut writer = stream.try_clone().expect("clone");
        let mut reader = BufReader::new(stream);
        let mut sizes = Vec::new();
        for _ in 0..count {
            let mut read = 0;
            let mut length = 0;
            loop {
                let mut line = String::new();
                read += reader.read_line(&mut line).expect("head line");
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().expect("content-length");
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).expect("body");
            sizes.push((read, length));
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{BODY}",
                BODY.len()
            );
            writer.write_all(response.as_bytes()).expect("respond");
        }
        sizes
    });
    (url, handle)
}

/// As aiohttp's trace counts them for AIPerf: the bodies sent and received, not their
/// heads.
#[test]
fn data_sent_and_received_are_the_body_bytes() {
    let (url, server) = counting_server(3);
    let dir = run_dir("http_trace_bytes");
    let args = [
        "--endpoint-type",
        "chat",
        "--concurrency",
        "1",
        "--request-count",
        "3",
    ];
    profile_url(&url, &dir, &args);
    let sent = server.join().expect("server");
    let received = BODY.len() as f64 / 1024.0;
    let records = by_start(read_records(&dir));
    assert_eq!(records.len(), 3);
    for (r, (head, body)) in records.iter().zip(sent) {
        assert!(head > 100, "a head of {head} bytes");
        assert_eq!(value(r, "http_req_data_sent"), body as f64 / 1024.0, "{r}");
        assert_eq!(value(r, "http_req_data_received"), received, "{r}");
    }
}
