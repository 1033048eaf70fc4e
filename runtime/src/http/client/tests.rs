//! Client tests against a scripted std-thread server on 127.0.0.1, on both monoio drivers.

use std::future::Future;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream as StdStream};
use std::path::PathBuf;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::*;
use crate::record::ErrorDetails;

const MS: Nanos = 1_000_000;

/// One step of a scripted server connection.
enum Act {
    /// Read one request (head and Content-Length body).
    Request,
    Write(Vec<u8>),
    Sleep(u64),
    /// Wait until the client closes the connection.
    Eof,
}

use Act::{Request, Sleep};

fn write(bytes: impl AsRef<[u8]>) -> Act {
    Act::Write(bytes.as_ref().to_vec())
}

/// A server that accepts one connection per script, in order, runs it and closes it. The
/// listener closes when the scripts are done, so a client connecting more often than
/// expected fails instead of hanging.
struct Server {
    addr: SocketAddr,
    tls: bool,
    thread: Option<JoinHandle<Vec<String>>>,
}

/// A server-side connection, plain or TLS (the test CA's certificate for 127.0.0.1).
enum ServerConn {
    Plain(StdStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, StdStream>>),
}

impl Read for ServerConn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            ServerConn::Plain(s) => s.read(buf),
            ServerConn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for ServerConn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            ServerConn::Plain(s) => s.write(buf),
            ServerConn::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            ServerConn::Plain(s) => s.flush(),
            ServerConn::Tls(s) => s.flush(),
        }
    }
}

pub(super) fn tls_fixture(name: &str) -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/tls")
        .join(name)
}

fn tls_server_config() -> std::sync::Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(tls_fixture("server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(tls_fixture("server.key")).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    std::sync::Arc::new(config)
}

impl Server {
    fn start(scripts: Vec<Vec<Act>>) -> Server {
        Self::start_with(scripts, false)
    }

    /// The same over TLS: each connection completes a handshake first.
    fn start_tls(scripts: Vec<Vec<Act>>) -> Server {
        Self::start_with(scripts, true)
    }

    fn start_with(scripts: Vec<Vec<Act>>, tls: bool) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let tls_config = tls.then(tls_server_config);
        let thread = thread::spawn(move || {
            let mut requests = Vec::new();
            for script in scripts {
                let deadline = Instant::now() + Duration::from_secs(10);
                let s = loop {
                    match listener.accept() {
                        Ok((s, _)) => break s,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            assert!(Instant::now() < deadline, "client never connected");
                            thread::sleep(Duration::from_millis(1));
                        }
                        Err(e) => panic!("accept: {e}"),
                    }
                };
                s.set_nonblocking(false).unwrap();
                s.set_nodelay(true).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut s = match &tls_config {
                    None => ServerConn::Plain(s),
                    Some(config) => {
                        let conn = rustls::ServerConnection::new(config.clone()).unwrap();
                        ServerConn::Tls(Box::new(rustls::StreamOwned::new(conn, s)))
                    }
                };
                let mut pending = Vec::new();
                for act in script {
                    match act {
                        Request => requests.push(read_request(&mut s, &mut pending)),
                        Act::Write(bytes) => {
                            s.write_all(&bytes).expect("server write");
                            s.flush().expect("server flush");
                        }
                        Sleep(ms) => thread::sleep(Duration::from_millis(ms)),
                        Act::Eof => {
                            let mut byte = [0u8; 1];
                            // Reset or orderly close: either way the client let go.
                            assert!(!matches!(s.read(&mut byte), Ok(n) if n > 0));
                        }
                    }
                }
            }
            requests
        });
        Server {
            addr,
            tls,
            thread: Some(thread),
        }
    }

    fn base(&self) -> BaseUrl {
        let scheme = if self.tls { "https" } else { "http" };
        BaseUrl::parse(&format!("{scheme}://{}", self.addr)).unwrap()
    }

    /// Waits for the script to end; returns the requests it read.
    fn join(mut self) -> Vec<String> {
        self.thread.take().unwrap().join().expect("server thread")
    }
}

fn read_request(s: &mut ServerConn, pending: &mut Vec<u8>) -> String {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if pending.len() >= end + 4 + len {
                let req: Vec<u8> = pending.drain(..end + 4 + len).collect();
                return String::from_utf8(req).unwrap();
            }
        }
        let n = s.read(&mut buf).expect("server read");
        assert!(n > 0, "client closed before a whole request");
        pending.extend_from_slice(&buf[..n]);
    }
}

fn on_both_drivers<F, Fut>(test: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .build()
        .expect("fusion runtime")
        .block_on(test());
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .expect("legacy runtime")
        .block_on(test());
}

fn post(base: &BaseUrl) -> Vec<u8> {
    let headers = [("Content-Type".to_owned(), "application/json".to_owned())];
    serialize_request("POST", base, "/v1/chat/completions", &headers, b"{\"x\":1}")
}

fn chunk(data: &str) -> String {
    format!("{:x}\r\n{data}\r\n", data.len())
}

fn content(text: &str) -> String {
    format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{text}\"}}}}]}}\n\n")
}

const SSE_HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
    Transfer-Encoding: chunked\r\n\r\n";

fn ok_json(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

async fn send(pool: &ConnectionPool, request: &[u8], sse: bool, clock: &RunClock) -> RequestRecord {
    let mut rec = RequestRecord {
        intended_ns: 42,
        ..Default::default()
    };
    pool.send(request, sse, clock, &mut rec).await;
    rec
}

fn assert_ordered(rec: &RequestRecord) {
    let sent = rec.sent_ns.unwrap();
    let first = rec.first_byte_ns.unwrap();
    let ack = rec.ack_ns.unwrap();
    assert!(
        rec.start_ns <= sent && sent <= first && first <= ack && ack <= rec.end_ns,
        "{rec:?}"
    );
    for r in &rec.responses {
        assert!(r.first_byte_ns <= r.recv_ns && r.recv_ns <= rec.end_ns);
        assert!(first <= r.first_byte_ns);
    }
}

#[test]
fn content_length_body_in_two_writes() {
    on_both_drivers(|| async {
        let body = "{\"choices\":[{\"message\":{\"content\":\"hi\"}}]}";
        let response = ok_json(body);
        let (a, b) = response.split_at(90);
        let server = Server::start(vec![vec![Request, write(a), Sleep(60), write(b)]]);
        let clock = RunClock::new();
        let pool = ConnectionPool::new(server.addr);
        let rec = send(&pool, &post(&server.base()), false, &clock).await;
        assert_eq!(rec.outcome, None, "{:?}", rec.error);
        assert_eq!(rec.status, Some(200));
        assert_eq!(rec.intended_ns, 42);
        assert!(!rec.connection_reused);
        assert_eq!(rec.responses.len(), 1);
        let r = &rec.responses[0];
        assert_eq!(r.data, body.as_bytes());
        assert_eq!(r.event, None);
        // Half the server's pause: a busy test machine can only shrink gaps.
        assert!(r.recv_ns - r.first_byte_ns >= 30 * MS, "{r:?}");
        assert_eq!(r.recv_ns, rec.end_ns);
        assert!(rec.reads >= 2);
        assert_ordered(&rec);
        assert_eq!(pool.idle_connections(), 1);
        let requests = server.join();
        let req = &requests[0];
        assert!(
            req.starts_with("POST /v1/chat/completions HTTP/1.1\r\n"),
            "{req}"
        );
        assert!(req.contains(&format!("Host: {}\r\n", pool.addr())), "{req}");
        assert!(req.contains("Connection: keep-alive\r\n"));
        assert!(req.contains("Content-Type: application/json\r\n"));
        assert!(req.ends_with("Content-Length: 7\r\n\r\n{\"x\":1}"), "{req}");
    });
}

#[test]
fn large_bodies_span_many_reads() {
    on_both_drivers(|| async {
        let big: String = (0..100_000)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let mut chunked = String::from("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        for piece in big.as_bytes().chunks(7000) {
            chunked.push_str(&chunk(std::str::from_utf8(piece).unwrap()));
        }
        chunked.push_str("0\r\n\r\n");
        let server = Server::start(vec![vec![
            Request,
            write(ok_json(&big)),
            Request,
            write(chunked),
        ]]);
        let clock = RunClock::new();
        let pool = ConnectionPool::new(server.addr);
        for _ in 0..2 {
            let rec = send(&pool, &post(&server.base()), false, &clock).await;
            assert_eq!(rec.outcome, None, "{:?}", rec.error);
            assert_eq!(rec.responses.len(), 1);
            assert_eq!(rec.responses[0].data, big.as_bytes());
        }
        assert_eq!(pool.stats().connects, 1);
        server.join();
    });
}

#[test]
fn chunked_sse_timestamps_follow_the_server() {
    on_both_drivers(|| async {
        let c = content("B");
        let (b1, b2) = c.split_at(20);
        let second = format!("{:x}\r\n{b1}", c.len());
        let script = vec![
            Request,
            write(SSE_HEAD),
            Sleep(80),
            write(chunk(": keep-alive\n\n") + &chunk(&content("A"))),
            Sleep(80),
            // An event and a chunk split mid-way (BC-02 over the wire).
            write(second),
            Sleep(80),
            write(format!("{b2}\r\n")),
            Sleep(80),
            write(chunk("data: [DONE]\n\n") + "0\r\n\r\n"),
        ];
        let server = Server::start(vec![script]);
        let clock = RunClock::new();
        let pool = ConnectionPool::new(server.addr);
        let rec = send(&pool, &post(&server.base()), true, &clock).await;
        assert_eq!(rec.outcome, None, "{:?}", rec.error);
        assert_eq!(rec.status, Some(200));
        let data: Vec<&[u8]> = rec.responses.iter().map(|r| &r.data[..]).collect();
        let strip = |s: String| s.trim_start_matches("data: ").trim_end().to_owned();
        assert_eq!(
            data,
            [
                strip(content("A")).as_bytes(),
                strip(content("B")).as_bytes(),
                b"[DONE]"
            ]
        );
        let [a, b, done] = &rec.responses[..] else {
            panic!()
        };
        // Lower bounds at half the server's 80 ms pauses: a busy test machine can delay a
        // read and so shrink a gap, never widen it.
        assert!(a.recv_ns - rec.ack_ns.unwrap() >= 40 * MS, "{rec:?}");
        assert!(b.first_byte_ns - a.recv_ns >= 40 * MS, "{rec:?}");
        assert!(b.recv_ns - b.first_byte_ns >= 40 * MS, "{rec:?}");
        assert!(done.recv_ns - b.recv_ns >= 40 * MS, "{rec:?}");
        assert_eq!(rec.end_ns, done.recv_ns);
        assert!(rec.reads >= 5);
        assert_ordered(&rec);
        assert_eq!(pool.idle_connections(), 1);
        server.join();
    });
}

#[test]
fn keep_alive_reuses_one_connection() {
    on_both_drivers(|| async {
        let script = vec![
            Request,
            write("HTTP/1.1 100 Continue\r\n\r\n"),
            write(ok_json("{\"n\":1}")),
            Request,
            write(SSE_HEAD.to_owned() + &chunk("data: 2\n\n") + "0\r\nX-Trailer: t\r\n\r\n"),
            Request,
            write("HTTP/1.1 204 No Content\r\n\r\n"),
        ];
        let server = Server::start(vec![script]);
        let clock = RunClock::new();
        let pool = ConnectionPool::new(server.addr);
        let req = post(&server.base());
        let mut reused = Vec::new();
        let mut bodies = Vec::new();
        for _ in 0..3 {
            let rec = send(&pool, &req, true, &clock).await;
            assert_eq!(rec.outcome, None, "{:?}", rec.error);
            assert_ordered(&rec);
            reused.push(rec.connection_reused);
            bodies.push(
                rec.responses
                    .iter()
                    .map(|r| r.data.clone())
                    .collect::<Vec<_>>(),
            );
        }
        assert_eq!(reused, [false, true, true]);
        assert_eq!(
            bodies,
            [vec![b"{\"n\":1}".to_vec()], vec![b"2".to_vec()], vec![]]
        );
        let stats = pool.stats();
        assert_eq!((stats.connects, stats.reused, stats.reconnects), (1, 2, 0));
        assert_eq!(server.join().len(), 3);
    });
}

#[test]
fn connection_close_is_honoured() {
    on_both_drivers(|| async {
        let close = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
        let until_close = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close";
        let server = Server::start(vec![
            vec![Request, write(close)],
            vec![Request, write(until_close)],
            vec![Request, write(ok_json("{}"))],
        ]);
        let clock = RunClock::new();
        let pool = ConnectionPool::new(server.addr);
        let req = post(&server.base());
        let rec = send(&pool, &req, false, &clock).await;
        assert_eq!(
            (rec.outcome, rec.responses[0].data.as_slice()),
            (None, &b"ok"[..])
        );
        assert_eq!(pool.idle_connections(), 0);
        let rec = send(&pool, &req, false, &clock).await;
        assert_eq!(rec.outcome, None, "{:?}", rec.error);
        assert_eq!(rec.responses[0].data, b"until close");
        assert!(!rec.connection_reused);
        assert_eq!(pool.idle_connections(), 0);
        let rec = send(&pool, &req, false, &clock).await;
        assert_eq!(rec.outcome, None);
        assert_eq!(pool.stats().connects, 3);
        server.join();
    });
}

#[test]
fn bc22_overload_is_shed_with_retry_after() {
    on_both_drivers(|| async {
        let r429 = "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n\
            Retry-After: 2\r\nContent-Length: 57\r\n\r\n\
            {\"error\":\"Model is overloaded\",\"error_type\":\"overloaded\"}";
        let r503 = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
            Content-Length: 73\r\n\r\n\
            {\"error\":{\"message\":\"queue full\",\"type\":\"ServiceUnavailable\",\"code\":503}}";
        let r500 = "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/event-stream\r\n\
            Transfer-Encoding: chunked\r\n\r\n5\r\nboom!\r\n0\r\n\r\n";
        let server = Server::start(vec![vec![
            Request,
            write(r429),
            Request,
            write(r503),
            Request,
            write(r500),
        ]]);
        let clock = RunClock::new();
        let pool = ConnectionPool::new(server.addr);
        let req = post(&server.base());
        let rec = send(&pool, &req, true, &clock).await;
        assert_eq!(rec.outcome, Some(Outcome::Shed));
        assert_eq!(rec.status, Some(429));
        assert_eq!(rec.retry_after.as_deref(), Some("2"));
        assert_eq!(
            rec.error,
            Some(ErrorDetails::new(
                Some(429),
                "Too Many Requests",
                "{\"error\":\"Model is overloaded\",\"error_type\":\"overloaded\"}"
            ))
        );
        assert!(rec.responses.is_empty());
        assert_ordered(&rec);
        let rec = send(&pool, &req, true, &clock).await;
        assert_eq!(
            (rec.outcome, rec.status, rec.retry_after.as_deref()),
            (Some(Outcome::Shed), Some(503), None)
        );
        assert_eq!(rec.error.as_ref().unwrap().kind, "Service Unavailable");
        let rec = send(&pool, &req, true, &clock).await;
        assert_eq!(
            (rec.outcome, rec.status),
            (Some(Outcome::HttpError), Some(500))
        );
        assert_eq!(rec.error.as_ref().unwrap().message, "boom!");
        assert!(rec.responses.is_empty());
        // Error responses that ended cleanly keep the connection.
        assert_eq!(pool.stats().connects, 1);
        server.join();
    });
}

#[test]
fn bc21_truncated_chunked_body() {
    on_both_drivers(|| async {
        let raw = format!("{SSE_HEAD}39\r\n{}\r\n", content("A"));
        let server = Server::start(vec![
            vec![Request, write(raw)],
            vec![
                Request,
                write(ok_json("0123456789").trim_end_matches("56789")),
            ],
        ]);
        let clock = RunClock::new();
        let pool = ConnectionPool::new(server.addr);
        let req = post(&server.base());
        let rec = send(&pool, &req, true, &clock).await;
        assert_eq!(rec.outcome, Some(Outcome::Truncated));
        let cause = "<TransferEncodingError: 400, message='Not enough data to satisfy \
                     transfer length header.'>";
        assert_eq!(
            rec.error,
            Some(ErrorDetails::exception(
                "ClientPayloadError",
                format!("ClientPayloadError(\"Response payload is not completed: {cause}\")"),
                Some(cause.to_owned()),
                &["ClientPayloadError", "TransferEncodingError"],
            ))
        );
        assert_eq!(rec.status, Some(200));
        assert_eq!(rec.responses.len(), 1, "the event before the cut is kept");
        assert!(rec.end_ns >= rec.responses[0].recv_ns);
        assert_eq!(pool.idle_connections(), 0);
        let rec = send(&pool, &req, false, &clock).await;
        assert_eq!(rec.outcome, Some(Outcome::Truncated));
        let cause = "<ContentLengthError: 400, message='Not enough data to satisfy content \
                     length header (received 5 of 10 bytes).'>";
        assert_eq!(
            rec.error,
            Some(ErrorDetails::exception(
                "ClientPayloadError",
                format!("ClientPayloadError(\"Response payload is not completed: {cause}\")"),
                Some(cause.to_owned()),
                &["ClientPayloadError", "ContentLengthError"],
            ))
        );
        assert!(rec.responses.is_empty());
        server.join();
    });
}

#[test]
fn connection_refused() {
    on_both_drivers(|| async {
        let addr = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let clock = RunClock::new();
        let pool = ConnectionPool::new(addr);
        let base = BaseUrl::parse(&format!("http://{addr}")).unwrap();
        let rec = send(&pool, &post(&base), true, &clock).await;
        assert_eq!(rec.outcome, Some(Outcome::ConnectionError));
        // As aiohttp raises it from asyncio's error, which AIPerf records.
        let port = addr.port();
        let inner =
            format!("ConnectionRefusedError(111, \"Connect call failed ('127.0.0.1', {port})\")");
        assert_eq!(
            rec.error,
            Some(ErrorDetails::exception(
                "ClientConnectorError",
                format!(
                    "ClientConnectorError(ConnectionKey(host='127.0.0.1', port={port}, \
                     is_ssl=False, ssl=True, proxy=None, proxy_auth=None, \
                     proxy_headers_hash=None, server_hostname=None), {inner})"
                ),
                Some(inner),
                &["ClientConnectorError", "ConnectionRefusedError"],
            ))
        );
        assert_eq!((rec.reads, rec.sent_ns, rec.first_byte_ns), (0, None, None));
        assert!(rec.end_ns >= rec.start_ns);
        assert_eq!(pool.stats().connect_errors, 1);
    });
}

#[test]
fn bc20_reused_connection_closed_before_response_is_retried_once() {
    on_both_drivers(|| async {
        let server = Server::start(vec![
            // Closes after the first response, reading nothing more: the server's idle
            // close racing our reuse. The second request meets a closed socket.
            vec![Request, write(ok_json("1"))],
            vec![Request, write(ok_json("2"))],
        ]);
        let clock = RunClock::new();
        let pool = ConnectionPool::new(server.addr);
        let req = post(&server.base());
        let rec = send(&pool, &req, false, &clock).await;
        assert_eq!(rec.outcome, None);
        let rec = send(&pool, &req, false, &clock).await;
        assert_eq!(rec.outcome, None, "{:?}", rec.error);
        assert_eq!(rec.responses[0].data, b"2");
        assert_eq!(rec.intended_ns, 42);
        assert!(!rec.connection_reused);
        assert_ordered(&rec);
        let stats = pool.stats();
        assert_eq!((stats.reconnects, stats.connects), (1, 2));
        assert_eq!(server.join().len(), 2);
    });
}

/// A server that read the request and then closed without a byte may have acted on it:
/// the request fails as AIPerf records it, and is not sent again.
#[test]
fn a_reused_connection_closed_after_the_request_was_read_is_not_retried() {
    on_both_drivers(|| async {
        let server = Server::start(vec![
            vec![Request, write(ok_json("1")), Request],
            vec![Request, write(ok_json("2"))],
        ]);
        let clock = RunClock::new();
        let pool = ConnectionPool::new(server.addr);
        let req = post(&server.base());
        let rec = send(&pool, &req, false, &clock).await;
        assert_eq!(rec.outcome, None);
        let rec = send(&pool, &req, false, &clock).await;
        assert_eq!(rec.outcome, Some(Outcome::ConnectionError));
        assert_eq!(
            rec.error,
            Some(ErrorDetails::exception(
                "ServerDisconnectedError",
                "ServerDisconnectedError('Server disconnected')".to_owned(),
                None,
                &["ServerDisconnectedError"],
            ))
        );
        assert!(!rec.reconnected);
        assert_eq!(pool.stats().reconnects, 0);
        // The third request opens the second connection.
        let rec = send(&pool, &req, false, &clock).await;
        assert_eq!(rec.responses[0].data, b"2");
        assert_eq!(server.join().len(), 3);
    });
}

#[test]
fn bc20_no_retry_after_a_response_byte() {
    on_both_drivers(|| async {
        let server = Server::start(vec![vec![
            Request,
            write(ok_json("1")),
            Request,
            write("HTTP/1.1 200"),
        ]]);
        let clock = RunClock::new();
        let pool = ConnectionPool::new(server.addr);
        let req = post(&server.base());
        send(&pool, &req, false, &clock).await;
        let rec = send(&pool, &req, false, &clock).await;
        assert_eq!(rec.outcome, Some(Outcome::ConnectionError));
        assert!(rec.connection_reused);
        assert_eq!(rec.reads, 1);
        assert_eq!(
            rec.error,
            Some(ErrorDetails::exception(
                "ServerDisconnectedError",
                "connection closed during response head".to_owned(),
                None,
                &["ServerDisconnectedError"],
            ))
        );
        assert_eq!(pool.reconnects(), 0);
        server.join();
    });
}

#[test]
fn bc20_fresh_connection_closed_is_an_error() {
    on_both_drivers(|| async {
        let server = Server::start(vec![vec![Request]]);
        let clock = RunClock::new();
        let pool = ConnectionPool::new(server.addr);
        let rec = send(&pool, &post(&server.base()), false, &clock).await;
        assert_eq!(rec.outcome, Some(Outcome::ConnectionError));
        assert_eq!(
            rec.error,
            Some(ErrorDetails::exception(
                "ServerDisconnectedError",
                "ServerDisconnectedError('Server disconnected')".to_owned(),
                None,
                &["ServerDisconnectedError"],
            ))
        );
        assert_eq!(pool.reconnects(), 0);
        server.join();
    });
}

#[test]
fn idle_connections_closed_or_too_old_are_not_reused() {
    on_both_drivers(|| async {
        let server = Server::start(vec![
            vec![Request, write(ok_json("1"))],
            vec![Request, write(ok_json("2")), Request, write(ok_json("3"))],
            vec![Request, write(ok_json("4"))],
        ]);
        let clock = RunClock::new();
        let config = PoolConfig {
            idle_timeout: Some(Duration::from_millis(400)),
            ..Default::default()
        };
        let pool = ConnectionPool::with_config(server.addr, config);
        let req = post(&server.base());
        assert_eq!(send(&pool, &req, false, &clock).await.outcome, None);
        // The server closes the first connection after its response.
        monoio::time::sleep(Duration::from_millis(150)).await;
        let rec = send(&pool, &req, false, &clock).await;
        assert_eq!((rec.outcome, rec.connection_reused), (None, false));
        let rec = send(&pool, &req, false, &clock).await;
        assert_eq!((rec.outcome, rec.connection_reused), (None, true));
        monoio::time::sleep(Duration::from_millis(600)).await;
        let rec = send(&pool, &req, false, &clock).await;
        assert_eq!(
            (rec.outcome, rec.connection_reused),
            (None, false),
            "{:?}",
            rec.error
        );
        let stats = pool.stats();
        assert_eq!(
            (stats.stale, stats.expired, stats.reconnects, stats.connects),
            (1, 1, 0, 3)
        );
        server.join();
    });
}

#[test]
fn invalid_framing_fails_cleanly() {
    on_both_drivers(|| async {
        let server = Server::start(vec![
            vec![
                Request,
                write("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"),
            ],
            vec![Request, write(format!("{SSE_HEAD}zz\r\n"))],
            vec![Request, write("NOT HTTP\r\n\r\n")],
        ]);
        let clock = RunClock::new();
        let pool = ConnectionPool::new(server.addr);
        let req = post(&server.base());
        let rec = send(&pool, &req, true, &clock).await;
        assert_eq!(rec.outcome, Some(Outcome::ConnectionError));
        assert_eq!(rec.error.unwrap().kind, "ClientResponseError");
        let rec = send(&pool, &req, true, &clock).await;
        assert_eq!(rec.outcome, Some(Outcome::Truncated));
        assert!(rec
            .error
            .unwrap()
            .message
            .starts_with("invalid chunked body"));
        let rec = send(&pool, &req, true, &clock).await;
        assert_eq!(rec.outcome, Some(Outcome::ConnectionError));
        assert_eq!(pool.idle_connections(), 0);
        server.join();
    });
}

#[test]
fn concurrent_sends_share_one_pool() {
    on_both_drivers(|| async {
        let script = || vec![Request, write(ok_json("ok"))];
        let server = Server::start(vec![script(), script(), script()]);
        let clock = RunClock::new();
        let pool = std::rc::Rc::new(ConnectionPool::new(server.addr));
        let req = std::rc::Rc::new(post(&server.base()));
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let (pool, req) = (pool.clone(), req.clone());
                monoio::spawn(async move { send(&pool, &req, false, &clock).await })
            })
            .collect();
        for task in tasks {
            let rec = task.await;
            assert_eq!(rec.outcome, None, "{:?}", rec.error);
            assert_eq!(rec.responses[0].data, b"ok");
        }
        assert_eq!((pool.stats().connects, pool.idle_connections()), (3, 3));
        server.join();
    });
}

#[test]
fn framing_choice_and_head_requests() {
    on_both_drivers(|| async {
        let untyped = "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\ndata: x\n\n";
        let sse_head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
            Content-Length: 5\r\n\r\n";
        let server = Server::start(vec![vec![
            Request,
            write(untyped),
            Request,
            write(untyped),
            Request,
            write(sse_head),
            Request,
            write(ok_json("{}")),
        ]]);
        let clock = RunClock::new();
        let pool = ConnectionPool::new(server.addr);
        let base = server.base();
        let req = post(&base);
        // No Content-Type: framed as SSE only when the request asked for a stream.
        let rec = send(&pool, &req, true, &clock).await;
        assert_eq!(
            rec.responses
                .iter()
                .map(|r| &r.data[..])
                .collect::<Vec<_>>(),
            [b"x"]
        );
        let rec = send(&pool, &req, false, &clock).await;
        assert_eq!(rec.responses[0].data, b"data: x\n\n");
        // A HEAD response has no body whatever its headers say.
        let head = serialize_request("HEAD", &base, "/", &[], b"");
        let rec = send(&pool, &head, true, &clock).await;
        assert_eq!((rec.outcome, rec.responses.len()), (None, 0));
        let rec = send(&pool, &req, true, &clock).await;
        assert_eq!((rec.outcome, rec.connection_reused), (None, true));
        assert_eq!(pool.stats().connects, 1);
        server.join();
    });
}

#[test]
fn serialize_request_shapes() {
    let base = BaseUrl::parse("http://localhost:8000/v1?key=k").unwrap();
    let headers = vec![
        ("Authorization".to_owned(), "Bearer t".to_owned()),
        ("Content-Length".to_owned(), "999".to_owned()),
        ("X-Bad".to_owned(), "a\r\nInjected: 1".to_owned()),
        ("Bad Name".to_owned(), "v".to_owned()),
    ];
    let req = serialize_request("POST", &base, "/v1/chat/completions", &headers, b"{}");
    assert_eq!(
        String::from_utf8(req).unwrap(),
        "POST /v1/chat/completions?key=k HTTP/1.1\r\nHost: localhost:8000\r\n\
         Connection: keep-alive\r\nAuthorization: Bearer t\r\nContent-Length: 2\r\n\r\n{}"
    );
    let base = BaseUrl::parse("example.com").unwrap();
    let headers = vec![("connection".to_owned(), "close".to_owned())];
    let req = serialize_request("GET", &base, "/health", &headers, b"");
    assert_eq!(
        String::from_utf8(req).unwrap(),
        "GET /health HTTP/1.1\r\nHost: example.com\r\nconnection: close\r\n\r\n"
    );
    let req = serialize_request("POST", &base, "/x", &[], b"");
    assert!(String::from_utf8(req)
        .unwrap()
        .ends_with("Content-Length: 0\r\n\r\n"));
}

/// A kept head plus `finish_request` makes exactly `serialize_request`'s bytes, and is
/// rebuilt when the method, path, headers or line mode change.
#[test]
fn a_kept_request_head_makes_the_same_bytes() {
    let base = BaseUrl::parse("http://localhost:8000/v1?key=k").unwrap();
    let auth = vec![("Authorization".to_owned(), "Bearer t".to_owned())];
    let host = vec![("Host".to_owned(), "other".to_owned())];
    let mut head = RequestHead::default();
    let body = vec![b'x'; 12_345];
    for (method, path, headers, body) in [
        ("POST", "/v1/chat/completions", &auth, &b"{}"[..]),
        ("POST", "/v1/chat/completions", &auth, &body[..]),
        ("POST", "/v1/completions", &auth, &b"0123456789"[..]),
        ("POST", "/v1/completions", &host, &b"{}"[..]),
        ("GET", "/health", &host, &b""[..]),
        ("POST", "/x", &auth, &b""[..]),
    ] {
        let mut joined = head.of(method, Some(&base), path, headers).to_vec();
        finish_request(&mut joined, method, body);
        let whole = serialize_request(method, &base, path, headers, body);
        assert_eq!(
            String::from_utf8_lossy(&joined),
            String::from_utf8_lossy(&whole)
        );
        // Without a base: the headers alone, as after a line.
        let mut rest = Vec::new();
        serialize_request_rest(&mut rest, method, headers, body);
        let mut joined = head.of(method, None, path, headers).to_vec();
        finish_request(&mut joined, method, body);
        assert_eq!(joined, rest);
    }
}

#[test]
fn pool_for_url_picks_tls_by_scheme() {
    let base = BaseUrl::parse("http://127.0.0.1:8000").unwrap();
    let pool = ConnectionPool::for_url(&base, PoolConfig::default()).unwrap();
    assert_eq!(pool.addr(), "127.0.0.1:8000".parse().unwrap());
    assert!(!pool.is_tls());
    let config = PoolConfig {
        ca_cert: Some(tls_fixture("ca.pem")),
        ..PoolConfig::default()
    };
    let base = BaseUrl::parse("https://127.0.0.1:8443").unwrap();
    let pool = ConnectionPool::for_url(&base, config).unwrap();
    assert!(pool.is_tls());
    let config = PoolConfig {
        ca_cert: Some(tls_fixture("server.key")),
        ..PoolConfig::default()
    };
    let err = ConnectionPool::for_url(&base, config).err().unwrap();
    assert!(matches!(err, UrlError::Tls { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("TLS for `https://127.0.0.1:8443`: "),
        "{err}"
    );
}

#[test]
fn fusion_driver_uses_io_uring_when_the_kernel_allows() {
    let legacy = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .build()
        .expect("fusion runtime")
        .block_on(async { monoio::utils::is_legacy() });
    assert_eq!(legacy, !monoio::utils::detect_uring());
}

fn tls_pool(server: &Server, config: PoolConfig) -> ConnectionPool {
    let config = PoolConfig {
        ca_cert: Some(tls_fixture("ca.pem")),
        ..config
    };
    ConnectionPool::for_url(&server.base(), config).unwrap()
}

#[test]
fn tls_stream_is_timed_like_tcp() {
    on_both_drivers(|| async {
        let script = vec![
            Request,
            write(SSE_HEAD),
            Sleep(60),
            write(chunk(&content("A"))),
            Sleep(60),
            write(chunk(&(content("B") + "data: [DONE]\n\n")) + "0\r\n\r\n"),
            Request,
            write(ok_json("{}")),
        ];
        let server = Server::start_tls(vec![script]);
        let clock = RunClock::new();
        let pool = tls_pool(&server, PoolConfig::default());
        let rec = send(&pool, &post(&server.base()), true, &clock).await;
        assert_eq!(rec.outcome, None, "{:?}", rec.error);
        assert!(rec.event_stream);
        let [a, b, done] = &rec.responses[..] else {
            panic!("{rec:?}")
        };
        assert_eq!(done.data, b"[DONE]");
        // B and [DONE] came in one write: one read, one timestamp (BC-01 over TLS).
        assert_eq!(b.recv_ns, done.recv_ns);
        assert_eq!(rec.max_events_per_read, 2);
        assert!(a.recv_ns - rec.ack_ns.unwrap() >= 30 * MS, "{rec:?}");
        assert!(b.recv_ns - a.recv_ns >= 30 * MS, "{rec:?}");
        assert_ordered(&rec);
        // The TLS connection is kept alive like a plain one.
        let rec = send(&pool, &post(&server.base()), false, &clock).await;
        assert_eq!(rec.outcome, None, "{:?}", rec.error);
        assert!(rec.connection_reused);
        assert_eq!(rec.responses[0].data, b"{}");
        assert_eq!(pool.stats().connects, 1);
        let requests = server.join();
        assert!(requests[0].ends_with("{\"x\":1}"), "{requests:?}");
    });
}

#[test]
fn tls_rejects_an_untrusted_certificate() {
    on_both_drivers(|| async {
        // The server's read drives its side of the handshake, which the client aborts.
        let server = Server::start_tls(vec![vec![Act::Eof]]);
        let clock = RunClock::new();
        // A CA that did not sign the server's certificate: the server's own leaf.
        let config = PoolConfig {
            ca_cert: Some(tls_fixture("server.pem")),
            ..PoolConfig::default()
        };
        let pool = ConnectionPool::for_url(&server.base(), config).unwrap();
        let rec = send(&pool, &post(&server.base()), true, &clock).await;
        assert_eq!(rec.outcome, Some(Outcome::ConnectionError));
        // aiohttp's type and chain; the words are rustls's (see `connect_error`).
        assert_eq!(
            rec.error,
            Some(ErrorDetails::exception(
                "ClientConnectorCertificateError",
                format!(
                    "connect to {} failed: invalid peer certificate: UnknownIssuer",
                    server.addr
                ),
                None,
                &[
                    "ClientConnectorCertificateError",
                    "SSLCertVerificationError"
                ],
            ))
        );
        assert_eq!(pool.stats().connect_errors, 1);
        assert_eq!((rec.sent_ns, rec.reads), (None, 0));
        assert!(server.join().is_empty());
    });
}

#[test]
fn timeout_closes_the_connection_and_keeps_the_events_so_far() {
    on_both_drivers(|| async {
        let server = Server::start(vec![vec![
            Request,
            write(SSE_HEAD.to_owned() + &chunk(&content("A"))),
            // The stream stalls; the client gives up after 150 ms and must close.
            Act::Eof,
        ]]);
        let clock = RunClock::new();
        let config = PoolConfig {
            request_timeout: Some(Duration::from_millis(150)),
            ..PoolConfig::default()
        };
        let pool = ConnectionPool::with_config(server.addr, config);
        let rec = send(&pool, &post(&server.base()), true, &clock).await;
        assert_eq!(rec.outcome, Some(Outcome::Timeout));
        assert_eq!(
            rec.error,
            Some(ErrorDetails::exception(
                "TimeoutError",
                "TimeoutError()".to_owned(),
                Some("CancelledError()".to_owned()),
                &["TimeoutError", "CancelledError"],
            ))
        );
        assert_eq!(rec.responses.len(), 1, "{rec:?}");
        assert_eq!(rec.status, Some(200));
        let elapsed = rec.end_ns - rec.start_ns;
        assert!((150 * MS..2000 * MS).contains(&elapsed), "{elapsed}");
        assert_eq!(pool.idle_connections(), 0);
        assert_eq!(pool.stats().timeouts, 1);
        // The server saw the connection close (Eof), so the script ends.
        server.join();
    });
}

#[test]
fn timeout_covers_a_connect_that_never_completes_the_head() {
    on_both_drivers(|| async {
        // Slow headers: the status line arrives, the rest never does in time.
        let server = Server::start(vec![vec![Request, write("HTTP/1.1 200 OK\r\n"), Act::Eof]]);
        let clock = RunClock::new();
        let config = PoolConfig {
            request_timeout: Some(Duration::from_millis(100)),
            ..PoolConfig::default()
        };
        let pool = ConnectionPool::with_config(server.addr, config);
        let rec = send(&pool, &post(&server.base()), true, &clock).await;
        assert_eq!(rec.outcome, Some(Outcome::Timeout));
        assert_eq!((rec.status, rec.ack_ns, rec.reads), (None, None, 1));
        assert!(rec.first_byte_ns.is_some());
        server.join();
    });
}

#[test]
fn never_reuse_opens_a_connection_per_request() {
    on_both_drivers(|| async {
        let server = Server::start(vec![
            vec![Request, write(ok_json("1")), Act::Eof],
            vec![Request, write(ok_json("2")), Act::Eof],
        ]);
        let clock = RunClock::new();
        let config = PoolConfig {
            reuse: ConnectionReuse::Never,
            ..PoolConfig::default()
        };
        let pool = ConnectionPool::with_config(server.addr, config);
        for body in ["1", "2"] {
            let rec = send(&pool, &post(&server.base()), false, &clock).await;
            assert_eq!(rec.outcome, None, "{:?}", rec.error);
            assert_eq!(rec.responses[0].data, body.as_bytes());
            assert!(!rec.connection_reused);
            assert_eq!(pool.idle_connections(), 0);
        }
        assert_eq!(pool.stats().connects, 2);
        server.join();
    });
}

#[test]
fn sticky_sessions_keep_a_connection_until_the_last_turn() {
    on_both_drivers(|| async {
        let server = Server::start(vec![
            // Session a: two turns on one connection, closed after the last.
            vec![
                Request,
                write(ok_json("a1")),
                Request,
                write(ok_json("a2")),
                Act::Eof,
            ],
            // Session b: its own connection.
            vec![Request, write(ok_json("b1")), Act::Eof],
        ]);
        let clock = RunClock::new();
        let config = PoolConfig {
            reuse: ConnectionReuse::StickyUserSessions,
            ..PoolConfig::default()
        };
        let pool = ConnectionPool::with_config(server.addr, config);
        let req = post(&server.base());
        let turn = |id: &str, final_turn| RequestRecord {
            x_correlation_id: id.to_owned(),
            final_turn: Some(final_turn),
            ..RequestRecord::default()
        };
        let mut rec = turn("a", false);
        pool.send(&req, false, &clock, &mut rec).await;
        assert_eq!(
            (rec.responses[0].data.as_slice(), pool.sticky_sessions()),
            (&b"a1"[..], 1)
        );
        let mut rec = turn("a", true);
        pool.send(&req, false, &clock, &mut rec).await;
        assert_eq!(rec.responses[0].data, b"a2");
        assert!(rec.connection_reused);
        assert_eq!(pool.sticky_sessions(), 0);
        // Unknown finality (single-turn conversations) counts as the last turn.
        let mut rec = RequestRecord {
            x_correlation_id: "b".into(),
            ..RequestRecord::default()
        };
        pool.send(&req, false, &clock, &mut rec).await;
        assert_eq!(rec.responses[0].data, b"b1");
        assert!(!rec.connection_reused);
        assert_eq!((pool.sticky_sessions(), pool.idle_connections()), (0, 0));
        assert_eq!(pool.stats().connects, 2);
        server.join();
    });
}

#[test]
fn send_parts_writes_one_request() {
    on_both_drivers(|| async {
        let server = Server::start(vec![vec![Request, write(ok_json("{}"))]]);
        let clock = RunClock::new();
        let pool = ConnectionPool::new(server.addr);
        let base = server.base();
        let headers = [("Content-Type".to_owned(), "application/json".to_owned())];
        let mut line = Vec::new();
        serialize_request_line(&mut line, "POST", &base, "/v1/x", true);
        let mut rest = Vec::new();
        serialize_request_rest(&mut rest, "POST", &headers, b"{}");
        let mut rec = RequestRecord::default();
        pool.send_parts(&[&line, &rest], false, &clock, &mut rec)
            .await;
        assert_eq!(rec.outcome, None, "{:?}", rec.error);
        let whole = serialize_request("POST", &base, "/v1/x", &headers, b"{}");
        assert_eq!([line, rest].concat(), whole);
        assert_eq!(server.join(), [String::from_utf8(whole).unwrap()]);
    });
}

#[test]
fn reconnected_requests_are_marked() {
    on_both_drivers(|| async {
        let server = Server::start(vec![
            vec![Request, write(ok_json("1"))],
            vec![Request, write(ok_json("2"))],
        ]);
        let clock = RunClock::new();
        let pool = ConnectionPool::new(server.addr);
        let req = post(&server.base());
        let first = send(&pool, &req, false, &clock).await;
        assert!(!first.reconnected);
        let second = send(&pool, &req, false, &clock).await;
        assert!(second.reconnected);
        assert_eq!(second.responses[0].data, b"2");
        server.join();
    });
}
