//! The measuring-path HTTP/1.1 client: a per-worker pool of kept-alive monoio connections
//! and `send`, which writes one request and times every read of its response.
//!
//! Reads are never wrapped in a timeout or `select!`: dropping an in-flight io_uring read
//! can lose bytes the kernel already consumed. To cancel a request, drop the whole `send`
//! future; its connection is then closed, never returned to the pool.

use std::cell::{Cell, RefCell};
use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

use super::chunked::ChunkedDecoder;
use super::head::{parse_response_head, BodyFraming, HeadStatus, ResponseHead};
use super::sse::SseFramer;
use super::url::{BaseUrl, Scheme, UrlError};
use crate::record::{ErrorDetails, Nanos, Outcome, RequestRecord, ResponseChunk, RunClock};

/// Size of the per-connection read buffer.
pub const READ_BUF_SIZE: usize = 16 * 1024;
/// Most bytes of an error body kept as the error message (the rest is read and dropped).
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Most bytes reserved up front for a `Content-Length` body.
const MAX_BODY_RESERVE: u64 = 16 * 1024 * 1024;

/// Pool behaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// Idle connections kept at most; more are closed when their response ends.
    pub max_idle: usize,
    /// Idle connections older than this are closed instead of reused (BC-20). The default
    /// (4 s) stays under uvicorn's 5 s keep-alive timeout, which vLLM and SGLang inherit,
    /// so a reused connection rarely races the server's close.
    pub idle_timeout: Option<Duration>,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_idle: 4096,
            idle_timeout: Some(Duration::from_secs(4)),
        }
    }
}

/// Connection counters of one pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections opened.
    pub connects: u64,
    /// Connection attempts that failed.
    pub connect_errors: u64,
    /// Requests sent on a kept-alive connection.
    pub reused: u64,
    /// Requests retried on a new connection because a reused one failed before any
    /// response byte (BC-20).
    pub reconnects: u64,
    /// Idle connections closed for exceeding `idle_timeout`.
    pub expired: u64,
    /// Idle connections found closed (or with unsolicited bytes) before use.
    pub stale: u64,
}

/// One connection and the buffers its requests reuse.
struct Conn {
    stream: TcpStream,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    head: Vec<u8>,
    framer: SseFramer,
    chunked: ChunkedDecoder,
    idle_since: Nanos,
}

impl Conn {
    fn new(stream: TcpStream) -> Self {
        Conn {
            stream,
            rbuf: Vec::with_capacity(READ_BUF_SIZE),
            wbuf: Vec::new(),
            head: Vec::new(),
            framer: SseFramer::new(),
            chunked: ChunkedDecoder::new(),
            idle_since: 0,
        }
    }
}

/// Kept-alive connections of one worker to one server address.
///
/// Not `Send`: it lives on its worker's thread and is shared by that worker's tasks through
/// `&self` (interior mutability; no borrow is held across an `.await`).
pub struct ConnectionPool {
    addr: SocketAddr,
    config: PoolConfig,
    idle: RefCell<Vec<Conn>>,
    stats: Cell<PoolStats>,
}

impl ConnectionPool {
    pub fn new(addr: SocketAddr) -> Self {
        Self::with_config(addr, PoolConfig::default())
    }

    pub fn with_config(addr: SocketAddr, config: PoolConfig) -> Self {
        ConnectionPool {
            addr,
            config,
            idle: RefCell::new(Vec::new()),
            stats: Cell::default(),
        }
    }

    /// A pool for the first address `base` resolves to. Resolution blocks: call this before
    /// the run, once per worker (or resolve once and use [`ConnectionPool::with_config`]).
    pub fn for_url(base: &BaseUrl, config: PoolConfig) -> Result<Self, UrlError> {
        if base.scheme() == Scheme::Https {
            return Err(UrlError::TlsNotSupported(base.to_string()));
        }
        let addr = base
            .resolve()?
            .into_iter()
            .next()
            .ok_or_else(|| UrlError::NoAddress {
                host: base.host().to_owned(),
                port: base.port(),
            })?;
        Ok(Self::with_config(addr, config))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stats(&self) -> PoolStats {
        self.stats.get()
    }

    /// Requests retried on a fresh connection (BC-20).
    pub fn reconnects(&self) -> u64 {
        self.stats.get().reconnects
    }

    pub fn idle_connections(&self) -> usize {
        self.idle.borrow().len()
    }

    /// Closes every idle connection.
    pub fn clear_idle(&self) {
        self.idle.borrow_mut().clear();
    }

    /// Sends one serialized request (head and body, written with one write) and reads its
    /// response into `rec`.
    ///
    /// Fills `start_ns` (just before the write), `sent_ns`, `ack_ns` (head complete),
    /// `first_byte_ns`, `reads`, `responses`, `end_ns`, `status`, `retry_after` and
    /// `connection_reused`. A 2xx `text/event-stream` body (or any 2xx body without a
    /// `Content-Type` when `streaming_sse`) becomes one chunk per SSE event; another 2xx
    /// body becomes one chunk. Failures set `outcome` and `error`; on success `outcome` is
    /// left `None` for the endpoint to judge. `intended_ns` is never touched.
    pub async fn send(
        &self,
        request: &[u8],
        streaming_sse: bool,
        clock: &RunClock,
        rec: &mut RequestRecord,
    ) {
        let head_request = request.starts_with(b"HEAD ");
        let mut retried = false;
        loop {
            rec.start_ns = clock.now();
            rec.sent_ns = None;
            let (mut conn, reused) = match self.take_idle(rec.start_ns) {
                Some(conn) => (conn, true),
                None => match self.connect().await {
                    Ok(conn) => (conn, false),
                    Err(e) => {
                        self.bump(|s| s.connect_errors += 1);
                        let message = format!("connect to {} failed: {e}", self.addr);
                        fail(
                            rec,
                            clock.now(),
                            Outcome::ConnectionError,
                            io_kind(&e),
                            message,
                        );
                        return;
                    }
                },
            };
            rec.connection_reused = reused;
            if reused {
                self.bump(|s| s.reused += 1);
            }
            let opts = Opts {
                streaming_sse,
                head_request,
            };
            match exchange(&mut conn, request, opts, clock, rec).await {
                Exchange::Complete { reusable } => {
                    if reusable {
                        conn.idle_since = rec.end_ns;
                        let mut idle = self.idle.borrow_mut();
                        if idle.len() < self.config.max_idle {
                            idle.push(conn);
                        }
                    }
                    return;
                }
                Exchange::NoResponse(e, context) => {
                    // The server may close an idle connection just as we reuse it; with no
                    // response byte seen, the request cannot have been processed twice.
                    if reused && !retried && is_peer_close(&e) {
                        retried = true;
                        self.bump(|s| s.reconnects += 1);
                        tracing::debug!(
                            addr = %self.addr,
                            error = %e,
                            "kept-alive connection failed before the response; retrying"
                        );
                        continue;
                    }
                    let message = format!("connection failed {context}: {e}");
                    fail(
                        rec,
                        clock.now(),
                        Outcome::ConnectionError,
                        io_kind(&e),
                        message,
                    );
                    return;
                }
            }
        }
    }

    async fn connect(&self) -> io::Result<Conn> {
        let stream = TcpStream::connect_addr(self.addr).await?;
        // Nagle would hold a request back until the previous segment is acknowledged
        // (44 ms per keep-alive request in the crate survey).
        if let Err(e) = stream.set_nodelay(true) {
            tracing::warn!(addr = %self.addr, error = %e, "cannot set TCP_NODELAY");
        }
        self.bump(|s| s.connects += 1);
        Ok(Conn::new(stream))
    }

    /// Newest idle connection that is young enough and still open.
    fn take_idle(&self, now: Nanos) -> Option<Conn> {
        let limit = self
            .config
            .idle_timeout
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let mut idle = self.idle.borrow_mut();
        while let Some(conn) = idle.pop() {
            if limit.is_some_and(|limit| now.saturating_sub(conn.idle_since) > limit) {
                // The stack is in return order, so every connection below is older still.
                let n = idle.len() as u64 + 1;
                idle.clear();
                self.bump(|s| s.expired += n);
                return None;
            }
            if peer_closed(&conn.stream) {
                self.bump(|s| s.stale += 1);
                continue;
            }
            return Some(conn);
        }
        None
    }

    fn bump(&self, f: impl FnOnce(&mut PoolStats)) {
        let mut stats = self.stats.get();
        f(&mut stats);
        self.stats.set(stats);
    }
}

/// Whether an idle connection has been closed by the server (or carries bytes nobody asked
/// for, which would be taken for the next response). A non-blocking peek costs one syscall
/// and saves a write into a dead socket plus the retry.
fn peer_closed(stream: &TcpStream) -> bool {
    let mut byte = 0u8;
    // SAFETY: recv writes at most one byte into `byte`, a live local; the fd is open for as
    // long as `stream` is borrowed.
    let n = unsafe {
        libc::recv(
            stream.as_raw_fd(),
            std::ptr::addr_of_mut!(byte).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    if n >= 0 {
        return true;
    }
    let err = io::Error::last_os_error();
    !matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

fn is_peer_close(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// Error `type` for an I/O failure, close to the names AIPerf (aiohttp) reports.
fn io_kind(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => "ServerDisconnected".to_owned(),
        kind => format!("{kind:?}"),
    }
}

fn fail(rec: &mut RequestRecord, now: Nanos, outcome: Outcome, kind: String, message: String) {
    rec.end_ns = now;
    rec.outcome = Some(outcome);
    rec.error = Some(ErrorDetails::new(None, kind, message));
}

fn http_error(rec: &mut RequestRecord, status: u16, reason: String, body: Vec<u8>) {
    rec.outcome = Some(if status == 429 || status == 503 {
        Outcome::Shed
    } else {
        Outcome::HttpError
    });
    let kind = if reason.is_empty() {
        format!("HTTP {status}")
    } else {
        reason
    };
    let message = String::from_utf8(body)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    rec.error = Some(ErrorDetails::new(Some(status), kind, message));
}

#[derive(Debug, Clone, Copy)]
struct Opts {
    streaming_sse: bool,
    head_request: bool,
}

/// How one attempt on one connection ended.
enum Exchange {
    /// The record is final; `reusable`: the connection may serve another request.
    Complete { reusable: bool },
    /// Failed before any response byte (retry candidate); the record is untouched apart
    /// from `start_ns`/`sent_ns`.
    NoResponse(io::Error, &'static str),
}

enum Step {
    More,
    Done(Exchange),
}

async fn exchange(
    conn: &mut Conn,
    request: &[u8],
    opts: Opts,
    clock: &RunClock,
    rec: &mut RequestRecord,
) -> Exchange {
    let Conn {
        stream,
        rbuf,
        wbuf,
        head,
        framer,
        chunked,
        ..
    } = conn;
    // io_uring needs an owned buffer; copying into the connection's own is cheaper than
    // an allocation per request.
    wbuf.clear();
    wbuf.extend_from_slice(request);
    let out = std::mem::take(wbuf);
    rec.start_ns = clock.now();
    let (res, out) = stream.write_all(out).await;
    let sent = clock.now();
    *wbuf = out;
    if let Err(e) = res {
        return Exchange::NoResponse(e, "while writing the request");
    }
    rec.sent_ns = Some(sent);

    head.clear();
    let mut reader = Reader {
        opts,
        got_bytes: false,
        phase: Phase::Head,
    };
    loop {
        let (res, buf) = stream.read(std::mem::take(rbuf)).await;
        let now = clock.now();
        *rbuf = buf;
        let n = match res {
            Ok(0) => return reader.on_close(None, now, framer, rec),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return reader.on_close(Some(e), now, framer, rec),
        };
        rec.reads = rec.reads.saturating_add(1);
        if !reader.got_bytes {
            reader.got_bytes = true;
            rec.first_byte_ns = Some(now);
        }
        let bytes = rbuf.get(..n).unwrap_or_default();
        if let Step::Done(done) = reader.on_bytes(bytes, now, head, framer, chunked, rec) {
            return done;
        }
    }
}

/// Response state of one request: head, then body.
struct Reader {
    opts: Opts,
    got_bytes: bool,
    phase: Phase,
}

enum Phase {
    Head,
    Body(Body),
}

impl Reader {
    fn on_bytes(
        &mut self,
        bytes: &[u8],
        now: Nanos,
        head_buf: &mut Vec<u8>,
        framer: &mut SseFramer,
        chunked: &mut ChunkedDecoder,
        rec: &mut RequestRecord,
    ) -> Step {
        match &mut self.phase {
            Phase::Body(body) => body.on_bytes(bytes, now, framer, chunked, rec),
            Phase::Head => self.on_head_bytes(bytes, now, head_buf, framer, chunked, rec),
        }
    }

    fn on_head_bytes(
        &mut self,
        bytes: &[u8],
        now: Nanos,
        head_buf: &mut Vec<u8>,
        framer: &mut SseFramer,
        chunked: &mut ChunkedDecoder,
        rec: &mut RequestRecord,
    ) -> Step {
        // Parse straight from the read when no partial head is held: the common case copies
        // nothing.
        let buffered = !head_buf.is_empty();
        if buffered {
            head_buf.extend_from_slice(bytes);
        }
        let input: &[u8] = if buffered { head_buf } else { bytes };
        let mut offset = 0;
        let parsed = loop {
            let rest = input.get(offset..).unwrap_or_default();
            match parse_response_head(rest, self.opts.head_request) {
                Ok(HeadStatus::Interim { len, .. }) => offset += len,
                other => break other,
            }
        };
        match parsed {
            Ok(HeadStatus::Complete { head, len }) => {
                rec.ack_ns = Some(now);
                let rest = input.get(offset + len..).unwrap_or_default();
                let mut body = Body::start(head, self.opts, framer, chunked, rec);
                let step = body.on_bytes(rest, now, framer, chunked, rec);
                self.phase = Phase::Body(body);
                head_buf.clear();
                step
            }
            Ok(HeadStatus::Partial | HeadStatus::Interim { .. }) => {
                if buffered {
                    head_buf.drain(..offset.min(head_buf.len()));
                } else {
                    head_buf.extend_from_slice(bytes.get(offset..).unwrap_or_default());
                }
                Step::More
            }
            Err(e) => {
                let message = format!("invalid response head: {e}");
                fail(
                    rec,
                    now,
                    Outcome::ConnectionError,
                    "InvalidResponseHead".to_owned(),
                    message,
                );
                Step::Done(Exchange::Complete { reusable: false })
            }
        }
    }

    /// The connection ended (`err` None: orderly EOF) at `now`.
    fn on_close(
        &mut self,
        err: Option<io::Error>,
        now: Nanos,
        framer: &mut SseFramer,
        rec: &mut RequestRecord,
    ) -> Exchange {
        let body = match &mut self.phase {
            Phase::Body(body) => body,
            Phase::Head if !self.got_bytes => {
                let err = err.unwrap_or_else(|| {
                    io::Error::new(io::ErrorKind::UnexpectedEof, "closed by the server")
                });
                return Exchange::NoResponse(err, "before the response");
            }
            Phase::Head => {
                let (kind, message) = match err {
                    Some(e) => (
                        io_kind(&e),
                        format!("connection failed during response head: {e}"),
                    ),
                    None => (
                        "ServerDisconnected".to_owned(),
                        "connection closed during response head".to_owned(),
                    ),
                };
                fail(rec, now, Outcome::ConnectionError, kind, message);
                return Exchange::Complete { reusable: false };
            }
        };
        let suffix = err.map(|e| format!(": {e}")).unwrap_or_default();
        match body.framing {
            BodyFraming::UntilClose if suffix.is_empty() => {
                body.complete(true, now, framer, rec);
                Exchange::Complete { reusable: false }
            }
            BodyFraming::UntilClose => {
                let message = format!("connection failed before the end of the body{suffix}");
                body.truncated(now, rec, "ClientPayloadError", message)
            }
            BodyFraming::Length(total) => {
                let got = total - body.remaining;
                let message =
                    format!("body ended after {got} of {total} bytes (Content-Length){suffix}");
                body.truncated(now, rec, "ContentLengthError", message)
            }
            BodyFraming::Chunked => {
                let message = format!("chunked body ended without terminator{suffix}");
                body.truncated(now, rec, "TransferEncodingError", message)
            }
            // Complete as soon as the head is, so the reader never waits for it.
            BodyFraming::None => Exchange::Complete { reusable: false },
        }
    }
}

/// Where body bytes go.
enum Sink {
    Sse,
    /// A whole 2xx body and the time of its first byte.
    Whole {
        data: Vec<u8>,
        first_ns: Option<Nanos>,
    },
    /// A non-2xx body, kept as the error message.
    Error {
        data: Vec<u8>,
        status: u16,
        reason: String,
    },
}

impl Sink {
    fn deliver(
        &mut self,
        bytes: &[u8],
        now: Nanos,
        framer: &mut SseFramer,
        out: &mut Vec<ResponseChunk>,
    ) {
        match self {
            Sink::Sse => {
                let events = framer.feed(bytes, now, out);
                tracing::trace!(bytes = bytes.len(), events, "sse read");
            }
            Sink::Whole { data, first_ns } => {
                if first_ns.is_none() && !bytes.is_empty() {
                    *first_ns = Some(now);
                }
                data.extend_from_slice(bytes);
            }
            Sink::Error { data, .. } => {
                let room = MAX_ERROR_BODY.saturating_sub(data.len()).min(bytes.len());
                data.extend_from_slice(bytes.get(..room).unwrap_or_default());
            }
        }
    }
}

struct Body {
    framing: BodyFraming,
    /// Bytes still expected for `Length` framing.
    remaining: u64,
    keep_alive: bool,
    sink: Sink,
}

impl Body {
    fn start(
        head: ResponseHead,
        opts: Opts,
        framer: &mut SseFramer,
        chunked: &mut ChunkedDecoder,
        rec: &mut RequestRecord,
    ) -> Body {
        rec.status = Some(head.status);
        let is_sse = head.is_event_stream() || (opts.streaming_sse && head.content_type.is_none());
        let sink = if !head.is_success() {
            Sink::Error {
                data: Vec::new(),
                status: head.status,
                reason: head.reason,
            }
        } else if is_sse {
            framer.reset();
            Sink::Sse
        } else {
            let reserve = match head.framing {
                BodyFraming::Length(n) => n.min(MAX_BODY_RESERVE) as usize,
                _ => 0,
            };
            Sink::Whole {
                data: Vec::with_capacity(reserve),
                first_ns: None,
            }
        };
        if head.retry_after.is_some() {
            rec.retry_after = head.retry_after;
        }
        if head.framing == BodyFraming::Chunked {
            chunked.reset();
        }
        let remaining = match head.framing {
            BodyFraming::Length(n) => n,
            _ => 0,
        };
        Body {
            framing: head.framing,
            remaining,
            keep_alive: head.keep_alive,
            sink,
        }
    }

    fn on_bytes(
        &mut self,
        bytes: &[u8],
        now: Nanos,
        framer: &mut SseFramer,
        chunked: &mut ChunkedDecoder,
        rec: &mut RequestRecord,
    ) -> Step {
        match self.framing {
            BodyFraming::None => Step::Done(self.complete(bytes.is_empty(), now, framer, rec)),
            BodyFraming::Length(_) => {
                let take = usize::try_from(self.remaining)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let (data, extra) = bytes.split_at(take);
                self.sink.deliver(data, now, framer, &mut rec.responses);
                self.remaining -= take as u64;
                if self.remaining == 0 {
                    Step::Done(self.complete(extra.is_empty(), now, framer, rec))
                } else {
                    Step::More
                }
            }
            BodyFraming::Chunked => {
                let sink = &mut self.sink;
                let responses = &mut rec.responses;
                let decoded =
                    chunked.decode(bytes, |data| sink.deliver(data, now, framer, responses));
                match decoded {
                    Ok(d) if d.done => {
                        Step::Done(self.complete(d.consumed == bytes.len(), now, framer, rec))
                    }
                    Ok(_) => Step::More,
                    Err(e) => Step::Done(self.truncated(
                        now,
                        rec,
                        "TransferEncodingError",
                        format!("invalid chunked body: {e}"),
                    )),
                }
            }
            BodyFraming::UntilClose => {
                self.sink.deliver(bytes, now, framer, &mut rec.responses);
                Step::More
            }
        }
    }

    /// The body ended cleanly at `now`; `clean_tail`: no bytes followed it.
    fn complete(
        &mut self,
        clean_tail: bool,
        now: Nanos,
        framer: &mut SseFramer,
        rec: &mut RequestRecord,
    ) -> Exchange {
        rec.end_ns = now;
        match std::mem::replace(&mut self.sink, Sink::Sse) {
            Sink::Sse => {
                framer.finish(now, &mut rec.responses);
            }
            Sink::Whole { data, first_ns } => {
                if !data.is_empty() {
                    rec.responses.push(ResponseChunk {
                        recv_ns: now,
                        first_byte_ns: first_ns.unwrap_or(now),
                        event: None,
                        data,
                    });
                }
            }
            Sink::Error {
                data,
                status,
                reason,
            } => http_error(rec, status, reason, data),
        }
        if !clean_tail {
            // Nothing was asked for: these bytes would be taken for the next response.
            tracing::debug!("bytes after the end of a response; closing the connection");
        }
        Exchange::Complete {
            reusable: self.keep_alive && clean_tail,
        }
    }

    /// The body ended early. Events already framed stay in `responses`; a partial event or
    /// body is dropped. For a non-2xx response the HTTP error is the more useful outcome.
    fn truncated(
        &mut self,
        now: Nanos,
        rec: &mut RequestRecord,
        kind: &str,
        message: String,
    ) -> Exchange {
        match std::mem::replace(&mut self.sink, Sink::Sse) {
            Sink::Error {
                data,
                status,
                reason,
            } => {
                rec.end_ns = now;
                http_error(rec, status, reason, data);
            }
            Sink::Sse | Sink::Whole { .. } => {
                fail(rec, now, Outcome::Truncated, kind.to_owned(), message);
            }
        }
        Exchange::Complete { reusable: false }
    }
}

/// Serializes a request into one buffer, ready for [`ConnectionPool::send`].
///
/// Adds `Host` and `Connection: keep-alive` unless `headers` has them, and always sets
/// `Content-Length` itself (for a non-empty body, or POST/PUT/PATCH); user `Content-Length`
/// and `Transfer-Encoding` headers are dropped, as are headers with CR or LF in them.
pub fn serialize_request(
    method: &str,
    base: &BaseUrl,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    serialize_request_into(&mut out, method, base, path, headers, body);
    out
}

/// [`serialize_request`] into a reused buffer (cleared first).
pub fn serialize_request_into(
    out: &mut Vec<u8>,
    method: &str,
    base: &BaseUrl,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) {
    let target = base.join(path);
    let header_len: usize = headers.iter().map(|(k, v)| k.len() + v.len() + 4).sum();
    out.clear();
    out.reserve(
        method.len() + target.len() + base.authority().len() + header_len + body.len() + 96,
    );
    let has = |name: &str| {
        headers
            .iter()
            .any(|(k, _)| k.trim().eq_ignore_ascii_case(name))
    };
    push_all(
        out,
        &[method.as_bytes(), b" ", target.as_bytes(), b" HTTP/1.1\r\n"],
    );
    if !has("host") {
        push_all(out, &[b"Host: ", base.authority().as_bytes(), b"\r\n"]);
    }
    if !has("connection") {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    for (name, value) in headers {
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding")
        {
            continue;
        }
        if !valid_header(name, value) {
            static WARNED: AtomicBool = AtomicBool::new(false);
            if !WARNED.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    header = name,
                    "dropping a header with an invalid name or value"
                );
            }
            continue;
        }
        push_all(out, &[name.as_bytes(), b": ", value.as_bytes(), b"\r\n"]);
    }
    let method_has_body = ["POST", "PUT", "PATCH"]
        .iter()
        .any(|m| method.eq_ignore_ascii_case(m));
    if !body.is_empty() || method_has_body {
        // Writing into a Vec cannot fail.
        let _ = write!(out, "Content-Length: {}\r\n", body.len());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

fn push_all(out: &mut Vec<u8>, parts: &[&[u8]]) {
    for part in parts {
        out.extend_from_slice(part);
    }
}

fn valid_header(name: &str, value: &str) -> bool {
    let token = |b: u8| b.is_ascii_graphic() && !b"\"(),/:;<=>?@[\\]{}".contains(&b);
    !name.is_empty()
        && name.bytes().all(token)
        && !value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

#[cfg(test)]
mod tests;
