//! End-to-end tests of aiperf-mock through a raw HTTP/1.1 client on a std `TcpStream`, so
//! that what is measured is bytes on the socket, not some client library's buffering.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use aiperf_tests::mock::{spawn_background, MockConfig, MockHandle};
use serde_json::{json, Value};

/// Tests in this binary run one at a time: they measure milliseconds on a machine that may
/// have two cores, and a neighbour's server spinning its timer would skew them.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Polls `cond` for up to two seconds: counters settle just after the client has its bytes.
fn eventually(cond: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    while !cond() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

fn server(cfg: MockConfig) -> MockHandle {
    spawn_background(cfg).expect("mock server starts")
}

#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// SSE `data:` payloads with the time the read that completed each one returned.
    events: Vec<(Instant, String)>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    fn event_json(&self) -> Vec<(Instant, Value)> {
        self.events
            .iter()
            .filter(|(_, d)| d != "[DONE]")
            .map(|(t, d)| (*t, serde_json::from_str(d).expect("JSON event")))
            .collect()
    }
}

/// A minimal keep-alive HTTP/1.1 client.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn open(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    /// Sends a request and returns the instant just before it was written.
    fn send(&mut self, method: &str, path: &str, body: &[u8]) -> Instant {
        self.send_with(method, path, &[], body)
    }

    /// [`send`](Self::send) with extra header lines.
    fn send_with(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Instant {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n").into_bytes();
        for (name, value) in headers {
            req.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        if method == "POST" {
            req.extend_from_slice(
                format!(
                    "Content-Type: application/json\r\nContent-Length: {}\r\n",
                    body.len()
                )
                .as_bytes(),
            );
        }
        req.extend_from_slice(b"\r\n");
        req.extend_from_slice(body);
        // Taken before the write: on loopback the server's kernel stamps the request's
        // arrival inside this write, so an instant taken after it can trail the server's
        // clock by as long as the writer is preempted (0.66 ms seen on a busy machine).
        let sent = Instant::now();
        self.stream.write_all(&req).expect("write request");
        sent
    }

    /// Reads more bytes; returns the time the read returned.
    fn fill(&mut self) -> Instant {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).expect("read");
        let at = Instant::now();
        assert!(n > 0, "server closed the connection mid-response");
        self.buf.extend_from_slice(&chunk[..n]);
        at
    }

    fn find(&self, pat: &[u8]) -> Option<usize> {
        self.buf.windows(pat.len()).position(|w| w == pat)
    }

    fn read_response(&mut self) -> Response {
        let mut last_read = Instant::now();
        let head_end = loop {
            if let Some(i) = self.find(b"\r\n\r\n") {
                break i;
            }
            last_read = self.fill();
        };
        let head = String::from_utf8(self.buf[..head_end].to_vec()).expect("ASCII head");
        self.buf.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .expect("status line");
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let mut resp = Response {
            status,
            headers,
            body: Vec::new(),
            events: Vec::new(),
        };
        if let Some(len) = resp.header("content-length") {
            let len: usize = len.parse().expect("content-length");
            while self.buf.len() < len {
                self.fill();
            }
            resp.body = self.buf.drain(..len).collect();
        } else {
            assert_eq!(resp.header("transfer-encoding"), Some("chunked"));
            self.read_chunked(&mut resp, last_read);
        }
        resp
    }

    fn read_chunked(&mut self, resp: &mut Response, mut last_read: Instant) {
        let mut sse_pending = 0usize; // start of the SSE event being assembled in body
        loop {
            let line_end = loop {
                if let Some(i) = self.find(b"\r\n") {
                    break i;
                }
                last_read = self.fill();
            };
            let size_hex = String::from_utf8_lossy(&self.buf[..line_end]).to_string();
            let size = usize::from_str_radix(size_hex.trim(), 16).expect("chunk size");
            while self.buf.len() < line_end + 2 + size + 2 {
                last_read = self.fill();
            }
            let data: Vec<u8> = self.buf[line_end + 2..line_end + 2 + size].to_vec();
            self.buf.drain(..line_end + 2 + size + 2);
            if size == 0 {
                return;
            }
            resp.body.extend_from_slice(&data);
            // An event is complete at its blank line; split on that, not on chunks, so the
            // test does not depend on how the server frames events.
            while let Some(i) = resp.body[sse_pending..]
                .windows(2)
                .position(|w| w == b"\n\n")
            {
                let event = String::from_utf8(resp.body[sse_pending..sse_pending + i].to_vec())
                    .expect("UTF-8 event");
                sse_pending += i + 2;
                let data = event
                    .strip_prefix("data: ")
                    .unwrap_or_else(|| panic!("not a data event: {event:?}"));
                resp.events.push((last_read, data.to_owned()));
            }
        }
    }

    fn request(&mut self, method: &str, path: &str, body: &[u8]) -> Response {
        self.send(method, path, body);
        self.read_response()
    }
}

fn post(addr: SocketAddr, path: &str, body: &Value) -> Response {
    Conn::open(addr).request("POST", path, body.to_string().as_bytes())
}

fn chat(stream: bool, extra: Value) -> Value {
    let mut body = json!({
        "model": "m",
        "messages": [{"role": "user", "content": "say a few words please"}],
        "stream": stream,
    });
    if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
        b.extend(e);
    }
    body
}

fn content_of(event: &Value) -> Option<&str> {
    let choice = event.get("choices")?.get(0)?;
    choice
        .pointer("/delta/content")
        .or_else(|| choice.get("text"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// One streamed request on `conn`: (time from request written to each content event,
/// their texts, the whole response).
fn timed_stream_on(conn: &mut Conn, body: &Value) -> (Vec<f64>, Vec<String>, Response) {
    let sent = conn.send("POST", "/v1/chat/completions", body.to_string().as_bytes());
    let resp = conn.read_response();
    let mut times = Vec::new();
    let mut texts = Vec::new();
    for (t, ev) in resp.event_json() {
        if let Some(text) = content_of(&ev) {
            times.push(ms(t - sent));
            texts.push(text.to_owned());
        }
    }
    (times, texts, resp)
}

fn timed_stream(addr: SocketAddr, body: &Value) -> (Vec<f64>, Vec<String>, Response) {
    timed_stream_on(&mut Conn::open(addr), body)
}

#[test]
fn streaming_timing_matches_configuration() {
    let _serial = serial();
    let mock = server(MockConfig {
        ttft: Duration::from_millis(40),
        itl: Duration::from_millis(4),
        output_tokens: 16,
        ..MockConfig::default()
    });
    let body = chat(true, json!({}));
    // Keep-alive, as a benchmark client would: a fresh connection would add the accept and
    // a task spawn between our write and the server's arrival time.
    let mut conn = Conn::open(mock.addr());
    timed_stream_on(&mut conn, &chat(true, json!({"max_tokens": 2})));

    // Up to five tries (~0.1 s each): a shared machine can preempt either side for
    // milliseconds, but a wrong mechanism (e.g. tokio's 1 ms timer) fails every try.
    let mut report = Vec::new();
    for _ in 0..5 {
        mock.stats().reset_lateness();
        let sent = conn.send("POST", "/v1/chat/completions", body.to_string().as_bytes());
        let resp = conn.read_response();
        let events = resp.event_json();
        // The role chunk leaves at arrival, so it shows how far arrival trails our write.
        let role = events.first().map_or(f64::NAN, |(t, _)| ms(*t - sent));
        let times: Vec<f64> = events
            .iter()
            .filter(|(_, e)| content_of(e).is_some())
            .map(|(t, _)| ms(*t - sent))
            .collect();
        assert_eq!(times.len(), 16, "{:?}", resp.events);
        let first = times[0];
        let mean_gap = (times[15] - times[0]) / 15.0;
        // Never early: token k is due 40 + 4k ms after arrival, and arrival follows our
        // write (0.2 ms slack: the server may read before our write call returns).
        let early = times
            .iter()
            .enumerate()
            .any(|(k, t)| *t < 40.0 + 4.0 * k as f64 - 0.2);
        let late: Vec<f64> = times
            .iter()
            .enumerate()
            .map(|(k, t)| t - role - (40.0 + 4.0 * k as f64))
            .collect();
        let stats = mock.stats();
        let (server_mean, server_max) = (ms(stats.mean_lateness()), ms(stats.max_lateness()));
        assert_eq!(stats.timed_sends(), 16);
        report.push(format!(
            "server lateness mean {server_mean:.3} ms max {server_max:.3} ms; \
             role {role:.3} ms, first {first:.3} ms, mean gap {mean_gap:.4} ms, early {early}, \
             lateness after role {late:.3?}"
        ));
        // With whole-millisecond settings tokio's own timer would pass the client-side
        // checks (it rounds every deadline up by the same fraction); the mock's own record
        // of lateness is what tells a precise timer (~0.1 ms here) from it (~1 ms).
        let precise = server_mean < 0.4;
        if (first - 40.0).abs() <= 1.5 && (mean_gap - 4.0).abs() <= 0.3 && !early && precise {
            eprintln!("timing ok: {}", report.join("\n"));
            return;
        }
    }
    panic!(
        "timing out of tolerance in every try:\n{}",
        report.join("\n")
    );
}

#[test]
fn stream_event_sequence_and_usage() {
    let _serial = serial();
    let mock = server(MockConfig::default());
    let body = chat(true, json!({"stream_options": {"include_usage": true}}));
    let (_, texts, resp) = timed_stream(mock.addr(), &body);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("text/event-stream"));
    assert_eq!(texts.len(), 16);
    assert_eq!(texts.concat().split_whitespace().count(), 16);

    let events = resp.event_json();
    assert_eq!(resp.events.last().map(|(_, d)| d.as_str()), Some("[DONE]"));
    // role chunk + 16 tokens + usage
    assert_eq!(events.len(), 18);
    let role = &events[0].1;
    assert_eq!(role["object"], "chat.completion.chunk");
    assert_eq!(role["model"], "m");
    assert_eq!(
        role["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert!(role["choices"][0]["finish_reason"].is_null());
    assert!(events[1].1["choices"][0]["finish_reason"].is_null());
    assert_eq!(events[16].1["choices"][0]["finish_reason"], "stop");
    let usage = &events[17].1;
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(
        usage["usage"],
        json!({"prompt_tokens": 5, "completion_tokens": 16, "total_tokens": 21})
    );

    // Without include_usage there is no usage chunk.
    let (_, _, resp) = timed_stream(mock.addr(), &chat(true, json!({})));
    assert!(resp
        .event_json()
        .iter()
        .all(|(_, e)| e.get("usage").is_none()));
    assert_eq!(resp.event_json().len(), 17);
}

#[test]
fn tokens_per_chunk_groups_tokens_and_times_the_last() {
    let _serial = serial();
    let mock = server(MockConfig {
        ttft: Duration::from_millis(10),
        itl: Duration::from_millis(2),
        output_tokens: 7,
        tokens_per_chunk: 3,
        ..MockConfig::default()
    });
    let (times, texts, _) = timed_stream(mock.addr(), &chat(true, json!({})));
    assert_eq!(texts, [" the of and", " to in is", " that"]);
    // Chunks are due with tokens 2, 5 and 6: 14, 20 and 22 ms.
    for (t, due) in times.iter().zip([14.0, 20.0, 22.0]) {
        assert!(*t >= due - 0.2, "chunk at {t} ms, due {due} ms");
    }
}

#[test]
fn max_tokens_is_honoured() {
    let _serial = serial();
    let mock = server(MockConfig::default());
    let (_, texts, _) = timed_stream(mock.addr(), &chat(true, json!({"max_tokens": 5})));
    assert_eq!(texts.len(), 5);
    let body = chat(true, json!({"max_tokens": 9, "max_completion_tokens": 3}));
    let (_, texts, _) = timed_stream(mock.addr(), &body);
    assert_eq!(texts.len(), 3);

    let resp = post(
        mock.addr(),
        "/v1/chat/completions",
        &chat(false, json!({"max_completion_tokens": 7})),
    );
    let doc = resp.json();
    assert_eq!(doc["usage"]["completion_tokens"], 7);
    let text = doc["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or("");
    assert_eq!(text.split_whitespace().count(), 7);

    let ignoring = server(MockConfig {
        ignore_max_tokens: true,
        output_tokens: 4,
        ..MockConfig::default()
    });
    let (_, texts, _) = timed_stream(ignoring.addr(), &chat(true, json!({"max_tokens": 9})));
    assert_eq!(texts.len(), 4);
}

#[test]
fn non_streaming_shapes_and_timing() {
    let _serial = serial();
    let mock = server(MockConfig {
        ttft: Duration::from_millis(20),
        itl: Duration::from_millis(2),
        output_tokens: 6,
        ..MockConfig::default()
    });
    let mut conn = Conn::open(mock.addr());
    let sent = conn.send(
        "POST",
        "/v1/chat/completions",
        chat(false, json!({})).to_string().as_bytes(),
    );
    let resp = conn.read_response();
    let elapsed = ms(sent.elapsed());
    // Whole response with the last token: 20 + 5 * 2 ms.
    assert!((30.0 - 0.2..40.0).contains(&elapsed), "{elapsed} ms");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let doc = resp.json();
    assert_eq!(doc["object"], "chat.completion");
    assert_eq!(doc["model"], "m");
    assert!(doc["id"]
        .as_str()
        .is_some_and(|s| s.starts_with("chatcmpl-")));
    assert!(doc["created"].as_u64().is_some());
    assert_eq!(
        doc["choices"],
        json!([{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": " the of and to in is"}}])
    );
    assert_eq!(
        doc["usage"],
        json!({"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11})
    );

    let body = json!({"prompt": "one two three", "max_tokens": 2});
    let doc = post(mock.addr(), "/v1/completions", &body).json();
    assert_eq!(doc["object"], "text_completion");
    assert_eq!(doc["model"], "mock-model");
    assert_eq!(doc["choices"][0]["text"], " the of");
    assert_eq!(doc["usage"]["prompt_tokens"], 3);

    let body = json!({"prompt": "x", "max_tokens": 3, "stream": true,
                      "stream_options": {"include_usage": true}});
    let resp = post(mock.addr(), "/v1/completions", &body);
    let events = resp.event_json();
    // No role chunk on completions: 3 tokens + usage.
    assert_eq!(events.len(), 4);
    assert!(events.iter().all(|(_, e)| e["object"] == "text_completion"));
    assert_eq!(events[0].1["choices"][0]["text"], " the");
    assert_eq!(events[2].1["choices"][0]["finish_reason"], "stop");
    assert_eq!(events[3].1["usage"]["completion_tokens"], 3);
}

#[test]
fn embeddings_models_health() {
    let _serial = serial();
    let mock = server(MockConfig {
        ttft: Duration::from_millis(5),
        model_name: "served".into(),
        ..MockConfig::default()
    });
    let doc = post(
        mock.addr(),
        "/v1/embeddings",
        &json!({"model": "e", "input": ["a b", "c"]}),
    )
    .json();
    assert_eq!(doc["object"], "list");
    assert_eq!(doc["model"], "e");
    assert_eq!(doc["usage"], json!({"prompt_tokens": 3, "total_tokens": 3}));
    let data = doc["data"].as_array().expect("data");
    assert_eq!(data.len(), 2);
    for (i, d) in data.iter().enumerate() {
        assert_eq!(d["object"], "embedding");
        assert_eq!(d["index"], i);
        assert_eq!(d["embedding"].as_array().map(Vec::len), Some(8));
    }
    let doc = post(mock.addr(), "/v1/embeddings", &json!({"input": "solo"})).json();
    assert_eq!(doc["data"].as_array().map(Vec::len), Some(1));

    let mut conn = Conn::open(mock.addr());
    let models = conn.request("GET", "/v1/models", b"").json();
    assert_eq!(
        models,
        json!({"object": "list", "data": [
            {"id": "served", "object": "model", "created": 0, "owned_by": "aiperf-mock"}]})
    );
    let health = conn.request("GET", "/health", b"");
    assert_eq!(health.status, 200);
}

#[test]
fn keep_alive_reuses_one_connection() {
    let _serial = serial();
    let mock = server(MockConfig::default());
    let mut conn = Conn::open(mock.addr());
    let a = conn.request(
        "POST",
        "/v1/chat/completions",
        chat(true, json!({})).to_string().as_bytes(),
    );
    let b = conn.request(
        "POST",
        "/v1/chat/completions",
        chat(false, json!({})).to_string().as_bytes(),
    );
    assert_eq!((a.status, b.status), (200, 200));
    assert_eq!(a.events.len(), 18);
    assert_eq!(b.json()["usage"]["completion_tokens"], 16);
    assert_eq!(mock.stats().connections(), 1);
    assert_eq!(mock.requests(), 2);
    assert!(eventually(|| mock.in_flight() == 0));
}

#[test]
fn errors_are_json() {
    let _serial = serial();
    let mock = server(MockConfig::default());
    let mut conn = Conn::open(mock.addr());

    let resp = conn.request("GET", "/nope", b"");
    assert_eq!(resp.status, 404);
    assert_eq!(resp.json()["error"]["code"], 404);

    let resp = conn.request("POST", "/v1/chat/completions", b"{not json");
    assert_eq!(resp.status, 400);
    let err = &resp.json()["error"];
    assert_eq!(err["type"], "invalid_request_error");
    assert_eq!(err["code"], 400);
    assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()));

    for bad in [
        json!({"messages": "x"}),
        json!({"messages": [], "max_tokens": -3}),
        json!({"messages": [], "stream": "yes"}),
        json!({"messages": [], "max_tokens": 1u64 << 40}),
    ] {
        let resp = conn.request("POST", "/v1/chat/completions", bad.to_string().as_bytes());
        assert_eq!(resp.status, 400, "{bad}");
    }
    let resp = conn.request("POST", "/v1/embeddings", br#"{"input": [1, 2]}"#);
    assert_eq!(resp.status, 400);
    let resp = conn.request("GET", "/v1/chat/completions", b"");
    assert_eq!(resp.status, 405);
    // Errors keep the connection usable.
    assert_eq!(conn.request("GET", "/health", b"").status, 200);
}

#[test]
fn in_flight_counts_pending_responses() {
    let _serial = serial();
    let mock = server(MockConfig {
        ttft: Duration::from_millis(200),
        ..MockConfig::default()
    });
    let mut conns: Vec<Conn> = (0..3).map(|_| Conn::open(mock.addr())).collect();
    for c in &mut conns {
        c.send(
            "POST",
            "/v1/chat/completions",
            chat(false, json!({})).to_string().as_bytes(),
        );
    }
    assert!(eventually(|| mock.in_flight() == 3), "{}", mock.in_flight());
    for c in &mut conns {
        assert_eq!(c.read_response().status, 200);
    }
    assert_eq!(mock.stats().peak_in_flight(), 3);
    assert!(eventually(|| mock.in_flight() == 0));
    mock.shutdown().expect("clean shutdown");
}

#[test]
fn shutdown_lets_the_current_stream_finish() {
    let _serial = serial();
    let mock = server(MockConfig {
        ttft: Duration::from_millis(100),
        itl: Duration::from_millis(1),
        output_tokens: 8,
        ..MockConfig::default()
    });
    let addr = mock.addr();
    let mut conn = Conn::open(addr);
    conn.send(
        "POST",
        "/v1/chat/completions",
        chat(true, json!({})).to_string().as_bytes(),
    );
    assert!(eventually(|| mock.in_flight() == 1));
    let stopper = std::thread::spawn(move || mock.shutdown());
    let resp = conn.read_response();
    assert_eq!(resp.events.len(), 10, "role + 8 tokens + [DONE]");
    assert!(stopper.join().expect("join").is_ok());
    // Stopped means not listening any more.
    assert!(TcpStream::connect(addr).is_err());
}

/// Starts the aiperf-mock binary on an ephemeral port with `args`; returns it and the
/// address from its first line.
fn spawn_cli(args: &[&str]) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aiperf-mock"))
        .args(["--port", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn aiperf-mock");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("first line");
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("aiperf-mock listening on http://")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    (child, addr)
}

/// Sends SIGTERM and asserts a clean exit within 5 s.
fn stop_cli(mut child: Child) {
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("aiperf-mock did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{status}");
}

#[test]
fn cli_prints_address_and_stops_on_sigterm() {
    let _serial = serial();
    let (child, addr) = spawn_cli(&["--ttft-ms", "1.5", "--model-name", "cli-model"]);
    let models = Conn::open(addr).request("GET", "/v1/models", b"").json();
    assert_eq!(models["data"][0]["id"], "cli-model");
    stop_cli(child);
}

/// `--truth-log`: one line per response with the request's id, what the mock sent and
/// when; written on SIGTERM (the run is shorter than the writer's one-second period).
#[test]
fn truth_log_records_each_response() {
    let _serial = serial();
    let path = std::env::temp_dir().join(format!("aiperf-mock-truth-{}.jsonl", std::process::id()));
    let (child, addr) = spawn_cli(&[
        "--ttft-ms",
        "40",
        "--itl-ms",
        "4",
        "--output-tokens",
        "8",
        "--truth-log",
        path.to_str().expect("UTF-8 temp path"),
    ]);
    let mut conn = Conn::open(addr);
    let body = chat(true, json!({})).to_string();
    let mut client_ttft = Vec::new();
    let ids = ["req-a", "req-b", "req-c"];
    for id in ids {
        let sent = conn.send_with(
            "POST",
            "/v1/chat/completions",
            &[("X-Request-ID", id)],
            body.as_bytes(),
        );
        let resp = conn.read_response();
        let first = resp
            .event_json()
            .into_iter()
            .find(|(_, ev)| content_of(ev).is_some())
            .map(|(t, _)| ms(t - sent))
            .expect("a content event");
        client_ttft.push(first);
    }
    // No id, and a non-streaming answer: still one line each.
    conn.request("POST", "/v1/chat/completions", body.as_bytes());
    conn.request(
        "POST",
        "/v1/chat/completions",
        chat(false, json!({})).to_string().as_bytes(),
    );
    stop_cli(child);

    let text = std::fs::read_to_string(&path).expect("truth log written at exit");
    let _ = std::fs::remove_file(&path);
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 5, "{text}");
    let ns = |l: &Value, k: &str| l[k].as_i64().unwrap_or_else(|| panic!("{k} in {l}"));
    for (k, l) in lines.iter().enumerate() {
        let streamed = k < 4;
        let id = ids.get(k).map_or(Value::Null, |id| json!(id));
        assert_eq!(l["x_request_id"], id, "{l}");
        assert_eq!(l["stream"], streamed, "{l}");
        assert_eq!(
            (l["tokens"].as_u64(), l["complete"].as_bool()),
            (Some(8), Some(true))
        );
        assert_eq!(
            l["chunks"].as_u64(),
            Some(if streamed { 8 } else { 1 }),
            "{l}"
        );
        let (arrival, first, last) = (
            ns(l, "arrival_ns"),
            ns(l, "first_token_ns"),
            ns(l, "last_token_ns"),
        );
        // Never early; late by at most a few milliseconds on a loaded machine. A whole
        // answer goes out with its last token.
        let ttft = (first - arrival) as f64 / 1e6;
        let due = if streamed { 40.0 } else { 68.0 };
        assert!(
            (due..due + 6.0).contains(&ttft),
            "server TTFT {ttft} ms: {l}"
        );
        let span = (last - first) as f64 / 1e6;
        if streamed {
            // The last token is never early either; a late first one shortens the span.
            let latency = (last - arrival) as f64 / 1e6;
            assert!(
                (68.0..74.0).contains(&latency),
                "last token {latency} ms: {l}"
            );
            let itl = span / 7.0;
            assert!((3.0..5.0).contains(&itl), "server ITL {itl} ms: {l}");
        } else {
            assert_eq!(span, 0.0, "{l}");
        }
    }
    // The client cannot see its first token before the server sent it.
    for (k, c) in client_ttft.iter().enumerate() {
        let server = (ns(&lines[k], "first_token_ns") - ns(&lines[k], "arrival_ns")) as f64 / 1e6;
        assert!(
            *c > server - 0.5,
            "client TTFT {c} ms < server TTFT {server} ms"
        );
    }
}

/// Runs the aiperf-mock binary with `args` that it must refuse; returns its exit code and
/// stderr. A mock that starts serving instead is stopped and the test fails.
fn refused_cli(args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aiperf-mock"))
        .args(["--host", "127.0.0.1", "--port", "0"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn aiperf-mock");
    let deadline = Instant::now() + Duration::from_secs(5);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("aiperf-mock accepted {args:?} and started serving");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let output = child.wait_with_output().expect("output");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `every: 0` in a `--faults` file is refused as `--fault-every 0` is (a usage error,
/// exit 2), naming the file and the rule, instead of faulting every request.
#[test]
fn faults_file_refuses_every_zero_like_fault_every() {
    let (code, stderr) = refused_cli(&["--fault", "bc21", "--fault-every", "0"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.starts_with(
            "error: invalid value '0' for '--fault-every <FAULT_EVERY>': 0 is not in \
             1..18446744073709551615\n"
        ),
        "{stderr}"
    );

    let path = std::env::temp_dir().join(format!("aiperf-mock-every0-{}.json", std::process::id()));
    std::fs::write(
        &path,
        r#"[{"fault": "http-429", "every": 3}, {"fault": "bc21", "every": 0}]"#,
    )
    .expect("write faults file");
    let file = path.to_string_lossy().into_owned();
    let (code, stderr) = refused_cli(&["--faults", &file]);
    // `--fault-every` belongs to `--fault`; beside a rules file it would be ignored.
    std::fs::write(&path, r#"[{"fault": "bc21", "every": 2}]"#).expect("write faults file");
    let (every_code, every_stderr) = refused_cli(&["--fault-every", "3", "--faults", &file]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(every_code, Some(2), "{every_stderr}");
    assert!(
        every_stderr.contains("'--fault-every <FAULT_EVERY>' cannot be used with"),
        "{every_stderr}"
    );
    // Alone it would change nothing: refused, not ignored.
    let (alone_code, alone_stderr) = refused_cli(&["--fault-every", "3"]);
    assert_eq!(alone_code, Some(2), "{alone_stderr}");
    assert!(
        alone_stderr.starts_with(
            "error: the following required arguments were not provided:\n  --fault <FAULT>"
        ),
        "{alone_stderr}"
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "error: invalid value '{file}' for '--faults <FILE>': rule 2 (bc21): `every`: 0 is \
             not in 1..18446744073709551615\n\nFor more information, try '--help'.\n"
        )
    );
}
