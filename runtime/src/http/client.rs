//! The measuring-path HTTP/1.1 client: a per-worker pool of kept-alive monoio connections
//! (plain TCP or TLS) and `send`, which writes one request and times every read of its
//! response.
//!
//! Reads are never wrapped in a `select!` that could drop one and keep the connection:
//! dropping an in-flight io_uring read can lose bytes the kernel already consumed. A
//! request that times out (or is cancelled by dropping `send`) loses its whole attempt
//! future, connection included: the read is cancelled and the connection closed, never
//! returned to the pool, so no byte of that response can be taken for another.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use monoio_rustls::{ClientTlsStream, TlsConnector};
use rustls::pki_types::ServerName;

use super::deadline::{until, Deadlines};
use super::pyerr::{self, ConnectionKey, CLIENT_CONNECTOR_ERROR};
use super::response::{fail, io_kind, ResponseEnd, ResponseParser};
use super::tls;
use super::url::{BaseUrl, Scheme, UrlError};
use crate::record::{ErrorDetails, Nanos, Outcome, RequestRecord, RunClock};

/// Size of the per-connection read buffer.
pub const READ_BUF_SIZE: usize = 16 * 1024;

/// Connections that could not be opened because this process (`EMFILE`) or the system
/// (`ENFILE`) was out of file descriptors, over every pool: the client's own limit, which
/// a failed request's error (aiohttp's words, errno 24) would otherwise leave looking like
/// the server's fault.
pub static OUT_OF_DESCRIPTORS: AtomicU64 = AtomicU64::new(0);

/// When the run stopped sending (run-clock nanoseconds; `u64::MAX` while it has not): a
/// first SIGINT or SIGTERM, the failure threshold, or the end of the last phase's grace
/// period, which is known ahead. A request that has not written its first byte by then is
/// not sent: a client behind an open-loop rate holds thousands waiting for their
/// connections, which went on being sent for seconds after the stop; and a worker busy
/// behind its rate notices the grace period's end by the time, where its watchdog could
/// tell it milliseconds late.
static HALT_AT: AtomicU64 = AtomicU64::new(u64::MAX);

/// Stops every pool of the process from sending requests not yet written, from `now` on.
pub fn halt(now: Nanos) {
    halt_at(now);
}

/// [`halt`] from `at` (run-clock nanoseconds), or earlier if already asked for.
pub fn halt_at(at: Nanos) {
    HALT_AT.fetch_min(at, Ordering::Relaxed);
}

/// Since when requests not yet written are not sent, once that time has come.
pub fn halted_since(now: Nanos) -> Option<Nanos> {
    let at = HALT_AT.load(Ordering::Relaxed);
    (at <= now).then_some(at)
}

/// Whether requests not yet written are no longer sent.
fn halted(clock: &RunClock) -> bool {
    let at = HALT_AT.load(Ordering::Relaxed);
    at != u64::MAX && clock.now() >= at
}

/// The error of a request [`halt`] kept from being sent.
pub use crate::record::NOT_SENT;

/// Idle time after which a pooled connection is checked (one `recv` peek) before reuse.
/// Servers close idle connections after seconds (uvicorn 5 s, Go and hyper never, nginx
/// 75 s); one closing sooner races the reuse, and that race is retried (BC-20) whether or
/// not a peek ran. On a saturated client, connections wait in the pool for milliseconds
/// (the worker is busy with others): a 1 ms threshold peeked on a third of all requests.
const PEEK_AFTER_NS: Nanos = 50_000_000;
/// The same, for a server seen closing kept-alive connections (some close after every
/// response without saying so): every reuse is peeked. A peek is cheaper than the failed
/// write and the retry, and a close already received is then never taken for a server
/// that read the request (see [`close_raced_the_request`]): a server that shuts its side
/// and closes later acknowledges a request it never reads.
const PEEK_AFTER_CLOSES_NS: Nanos = 0;
/// Sticky sessions kept open at most (AIPerf's lease bound); more are closed after use.
const MAX_STICKY_SESSIONS: usize = 100_000;

/// When a connection may carry another request (`--connection-reuse-strategy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ConnectionReuse {
    /// Any idle connection of the pool serves the next request.
    #[default]
    Pooled,
    /// A new connection per request, closed after its response.
    Never,
    /// One connection per user session (conversation), kept across its turns and closed
    /// after its last turn, so a sticky load balancer sees a session on one connection.
    StickyUserSessions,
}

impl ConnectionReuse {
    /// The flag's values, as AIPerf spells them.
    pub const NAMES: [&'static str; 3] = ["pooled", "never", "sticky-user-sessions"];

    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionReuse::Pooled => "pooled",
            ConnectionReuse::Never => "never",
            ConnectionReuse::StickyUserSessions => "sticky-user-sessions",
        }
    }
}

impl FromStr for ConnectionReuse {
    type Err = String;

    /// Case-insensitive; `_` and `-` are the same (AIPerf's enum normalisation).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "pooled" => Ok(ConnectionReuse::Pooled),
            "never" => Ok(ConnectionReuse::Never),
            "sticky-user-sessions" => Ok(ConnectionReuse::StickyUserSessions),
            _ => Err(format!(
                "unknown connection reuse strategy `{s}` (expected one of: {})",
                Self::NAMES.join(", ")
            )),
        }
    }
}

/// Pool behaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// Idle connections kept at most; more are closed when their response ends.
    pub max_idle: usize,
    /// Idle connections older than this are closed instead of reused (BC-20). The default
    /// (4 s) stays under uvicorn's 5 s keep-alive timeout, which vLLM and SGLang inherit,
    /// so a reused connection rarely races the server's close.
    pub idle_timeout: Option<Duration>,
    /// Limit on a whole request, connect to last byte (`--request-timeout-seconds`).
    pub request_timeout: Option<Duration>,
    pub reuse: ConnectionReuse,
    /// PEM file of CA certificates trusted besides the system store (`--ca-cert`).
    pub ca_cert: Option<PathBuf>,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_idle: 4096,
            idle_timeout: Some(Duration::from_secs(4)),
            request_timeout: None,
            reuse: ConnectionReuse::Pooled,
            ca_cert: None,
        }
    }
}

/// Connection counters of one pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections opened.
    pub connects: u64,
    /// Connection attempts that failed (TLS handshakes included).
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
    /// Requests that ran past `request_timeout`.
    pub timeouts: u64,
}

/// A plain or TLS connection. An enum rather than a trait object: the read sits on the
/// measuring path and both arms inline.
enum Stream {
    Tcp(TcpStream),
    Tls(Box<ClientTlsStream<TcpStream>>),
}

impl Stream {
    /// One read. For TLS it returns decrypted bytes as soon as a record is complete, so
    /// the caller's timestamp is taken right after the bytes became readable, as for TCP.
    /// TLS I/O futures are large (~700 bytes) and boxed, so the plain-TCP request's future
    /// stays small; next to decryption, the allocation is noise.
    async fn read(&mut self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        match self {
            Stream::Tcp(s) => s.read(buf).await,
            Stream::Tls(s) => Box::pin(s.read(buf)).await,
        }
    }

    async fn write_all(&mut self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        match self {
            Stream::Tcp(s) => write_all_now(s, buf).await,
            Stream::Tls(s) => Box::pin(s.write_all(buf)).await,
        }
    }
}

/// Writes `buf` with a plain non-blocking `send(2)` first, and hands only what the socket
/// did not take to the runtime.
///
/// An io_uring write is queued until the worker next enters the kernel, after every other
/// task of its turn has run, and the kernel then sends the queued requests one after
/// another: at 256 streams the request stamped first left ~0.2 ms after its stamp, and
/// that was counted in its TTFT. Sent at once, a request leaves when it is stamped, and
/// its task goes straight on to the read instead of waiting a turn for the write's
/// completion.
async fn write_all_now(s: &mut TcpStream, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
    use monoio::buf::IoBuf;
    let total = buf.len();
    // SAFETY: send reads at most `total` bytes from `buf`, which owns them; the socket
    // belongs to the connection the caller holds, so it is open. MSG_NOSIGNAL: a closed
    // peer is an EPIPE error for the caller, not a signal.
    let n = unsafe {
        libc::send(
            s.as_raw_fd(),
            buf.as_ptr().cast(),
            total,
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    let done = match usize::try_from(n) {
        Ok(n) => n,
        Err(_) => {
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => 0,
                _ => return (Err(err), buf),
            }
        }
    };
    if done >= total {
        return (Ok(total), buf);
    }
    let (res, rest) = s.write_all(buf.slice(done..)).await;
    (res.map(|n| n + done), rest.into_inner())
}

/// One connection and the buffers its requests reuse. Boxed while it lives, so a
/// request's future holds a pointer rather than the connection, its parser and its
/// framer.
struct Conn {
    stream: Stream,
    /// The TCP socket under `stream`, for the idle liveness check.
    fd: RawFd,
    /// The kernel stamps what this plain-TCP socket receives (see `stamp`).
    rx_stamps: bool,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    parser: ResponseParser,
    idle_since: Nanos,
}

impl Conn {
    fn new(stream: Stream, fd: RawFd) -> Self {
        let rx_stamps = matches!(stream, Stream::Tcp(_)) && super::stamp::enable_rx_stamps(fd);
        Conn {
            stream,
            fd,
            rx_stamps,
            rbuf: Vec::with_capacity(READ_BUF_SIZE),
            wbuf: Vec::new(),
            parser: ResponseParser::new(),
            idle_since: 0,
        }
    }
}

/// Where TLS connections go: the shared client configuration and the name to verify.
struct TlsTarget {
    connector: TlsConnector,
    name: ServerName<'static>,
}

/// Kept-alive connections of one worker to one server address.
///
/// Not `Send`: it lives on its worker's thread and is shared by that worker's tasks through
/// `&self` (interior mutability; no borrow is held across an `.await`).
pub struct ConnectionPool {
    addr: SocketAddr,
    /// The host as the URL names it, for the errors of connections to it.
    host: String,
    tls: Option<TlsTarget>,
    config: PoolConfig,
    // Boxed on purpose (see `Conn`): requests move connections in and out.
    #[allow(clippy::vec_box)]
    idle: RefCell<Vec<Box<Conn>>>,
    /// `sticky-user-sessions`: the open connection of each session between its turns.
    sticky: RefCell<HashMap<String, Box<Conn>>>,
    stats: Cell<PoolStats>,
    /// `request_timeout` of the requests in flight.
    deadlines: Deadlines,
}

impl ConnectionPool {
    pub fn new(addr: SocketAddr) -> Self {
        Self::with_config(addr, PoolConfig::default())
    }

    /// A plain-TCP pool.
    pub fn with_config(addr: SocketAddr, config: PoolConfig) -> Self {
        ConnectionPool {
            addr,
            host: addr.ip().to_string(),
            tls: None,
            config,
            idle: RefCell::new(Vec::new()),
            sticky: RefCell::new(HashMap::new()),
            stats: Cell::default(),
            deadlines: Deadlines::default(),
        }
    }

    /// A pool for the first address `base` resolves to, over TLS for `https`. Resolution
    /// and loading the trusted certificates block: call this before the run, once per
    /// worker (the TLS configuration is built once and shared).
    pub fn for_url(base: &BaseUrl, config: PoolConfig) -> Result<Self, UrlError> {
        let tls = match base.scheme() {
            Scheme::Http => None,
            Scheme::Https => {
                let tls_error = |source| UrlError::Tls {
                    url: base.to_string(),
                    source,
                };
                let client = tls::client_config(config.ca_cert.as_deref()).map_err(tls_error)?;
                let name = tls::server_name(base.host()).map_err(tls_error)?;
                Some(TlsTarget {
                    connector: TlsConnector::from(client),
                    name,
                })
            }
        };
        let addr = base
            .resolve()?
            .into_iter()
            .next()
            .ok_or_else(|| UrlError::NoAddress {
                host: base.host().to_owned(),
                port: base.port(),
            })?;
        let mut pool = Self::with_config(addr, config);
        pool.tls = tls;
        pool.host = base.host().to_owned();
        Ok(pool)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether connections are made over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    pub fn config(&self) -> &PoolConfig {
        &self.config
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

    /// Sessions holding a connection between turns (`sticky-user-sessions`).
    pub fn sticky_sessions(&self) -> usize {
        self.sticky.borrow().len()
    }

    /// Closes every idle connection, sticky ones included.
    pub fn clear_idle(&self) {
        self.idle.borrow_mut().clear();
        self.sticky.borrow_mut().clear();
    }

    /// Sends one serialized request (head and body, written with one write) and reads its
    /// response into `rec`.
    ///
    /// Fills `start_ns` (just before the write), `sent_ns`, `ack_ns` (head complete),
    /// `first_byte_ns`, `reads`, `responses`, `end_ns`, `status`, `retry_after`,
    /// `connection_reused` and the diagnostics. A 2xx `text/event-stream` body (or any 2xx
    /// body without a `Content-Type` when `streaming_sse`) becomes one chunk per SSE event;
    /// another 2xx body becomes one chunk. Failures set `outcome` and `error` (a request
    /// past `request_timeout` is `Timeout`, its events so far kept); on success `outcome`
    /// is left `None` for the endpoint to judge. `intended_ns` is never touched.
    pub async fn send(
        &self,
        request: &[u8],
        streaming_sse: bool,
        clock: &RunClock,
        rec: &mut RequestRecord,
    ) {
        self.send_parts(&[request], streaming_sse, clock, rec).await;
    }

    /// [`send`](Self::send) of a request given in pieces, written as one buffer (they are
    /// copied into the connection's write buffer, as a whole request would be).
    pub async fn send_parts(
        &self,
        parts: &[&[u8]],
        streaming_sse: bool,
        clock: &RunClock,
        rec: &mut RequestRecord,
    ) {
        // The request starts before its connection is taken: connecting (and a retry after
        // a stale keep-alive connection, BC-20) is part of its latency, as in AIPerf.
        rec.start_ns = clock.now();
        // Beyond the clock's range, a limit never expires.
        let expiry = self.config.request_timeout.and_then(|limit| {
            let at = clock.instant(rec.start_ns).checked_add(limit)?;
            Some(self.deadlines.expire_at(at))
        });
        if until(self.attempts(parts, streaming_sse, clock, rec), expiry)
            .await
            .is_none()
        {
            // The attempt future is gone, and with it the connection and its in-flight
            // read (cancelled): the connection is closed, never pooled.
            self.bump(|s| s.timeouts += 1);
            fail(rec, clock.now(), Outcome::Timeout, ErrorDetails::timeout());
        }
    }

    async fn attempts(
        &self,
        parts: &[&[u8]],
        streaming_sse: bool,
        clock: &RunClock,
        rec: &mut RequestRecord,
    ) {
        let head_request = parts.first().is_some_and(|p| p.starts_with(b"HEAD "));
        let session = match self.config.reuse {
            ConnectionReuse::StickyUserSessions => Some(session_key(rec)),
            ConnectionReuse::Pooled | ConnectionReuse::Never => None,
        };
        let mut retried = false;
        loop {
            rec.sent_ns = None;
            if halted(clock) {
                return not_sent(rec, clock);
            }
            let kept = match (&session, self.config.reuse) {
                // The retry goes on a new connection: another pooled one may have been
                // closed by the same server just the same.
                _ if retried => None,
                (Some(key), _) => self.take_sticky(key),
                (None, ConnectionReuse::Pooled) => self.take_idle(rec.start_ns),
                (None, _) => None,
            };
            rec.connect_ns = 0;
            let (mut conn, reused) = match kept {
                Some(conn) => (conn, true),
                // Boxed: connecting (a TLS handshake above all) needs a large future,
                // which would otherwise sit in, and be copied with, every request's.
                None => match Box::pin(self.connect_timed(clock, rec)).await {
                    Ok(conn) => (conn, false),
                    Err(e) => {
                        self.bump(|s| s.connect_errors += 1);
                        if matches!(e.error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
                            OUT_OF_DESCRIPTORS.fetch_add(1, Ordering::Relaxed);
                        }
                        let error = self.connect_error(&e);
                        fail(rec, clock.now(), Outcome::ConnectionError, error);
                        return;
                    }
                },
            };
            rec.connection_reused = reused;
            if reused {
                self.bump(|s| s.reused += 1);
            }
            conn.parser.set_perf_epoch(clock.monotonic_ns(0));
            if halted(clock) {
                not_sent(rec, clock);
                // Nothing was written on it: as good as before.
                conn.idle_since = rec.end_ns;
                self.keep(conn, session, rec.final_turn.unwrap_or(true));
                return;
            }
            conn.parser.start(streaming_sse, head_request);
            match exchange(&mut conn, parts, clock, rec).await {
                ResponseEnd::Complete { reusable } => {
                    if reusable {
                        conn.idle_since = rec.end_ns;
                        self.keep(conn, session, rec.final_turn.unwrap_or(true));
                    }
                    return;
                }
                ResponseEnd::NoResponse { error, context } => {
                    // The server may close an idle connection just as we reuse it: sent
                    // again, the request cannot have been processed twice. A server that
                    // closed after reading it may have acted on it, and fails it.
                    if reused && !retried && close_raced_the_request(conn.fd, &error).await {
                        retried = true;
                        rec.reconnected = true;
                        self.bump(|s| s.reconnects += 1);
                        tracing::debug!(
                            addr = %self.addr,
                            error = %error,
                            "kept-alive connection failed before the response; retrying"
                        );
                        continue;
                    }
                    fail(
                        rec,
                        clock.now(),
                        Outcome::ConnectionError,
                        no_response_error(&error, context),
                    );
                    return;
                }
            }
        }
    }

    /// A reusable connection after its response: back to the pool, or to its session.
    fn keep(&self, conn: Box<Conn>, session: Option<String>, final_turn: bool) {
        match (self.config.reuse, session) {
            (ConnectionReuse::Pooled, _) => {
                let mut idle = self.idle.borrow_mut();
                if idle.len() < self.config.max_idle {
                    idle.push(conn);
                }
            }
            (ConnectionReuse::StickyUserSessions, Some(key)) if !final_turn => {
                let mut sticky = self.sticky.borrow_mut();
                if sticky.len() < MAX_STICKY_SESSIONS {
                    sticky.insert(key, conn);
                }
            }
            // `never`, or the session's last turn: the connection closes here.
            _ => {}
        }
    }

    /// [`connect`](Self::connect), its time kept in `rec.connect_ns` (AIPerf's
    /// `http_req_connecting`: TCP connect and TLS handshake). Only a new connection pays
    /// for the two clock reads.
    async fn connect_timed(
        &self,
        clock: &RunClock,
        rec: &mut RequestRecord,
    ) -> Result<Box<Conn>, ConnectError> {
        let from = clock.now();
        let conn = self.connect().await;
        rec.connect_ns = clock.now().saturating_sub(from);
        conn
    }

    async fn connect(&self) -> Result<Box<Conn>, ConnectError> {
        let tcp = TcpStream::connect_addr(self.addr)
            .await
            .map_err(|error| ConnectError {
                stage: ConnectStage::Tcp,
                error,
            })?;
        // Nagle would hold a request back until the previous segment is acknowledged
        // (44 ms per keep-alive request in the crate survey).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(addr = %self.addr, error = %e, "cannot set TCP_NODELAY");
        }
        let fd = tcp.as_raw_fd();
        let stream = match &self.tls {
            None => Stream::Tcp(tcp),
            Some(target) => {
                let tls = target
                    .connector
                    .connect(target.name.clone(), tcp)
                    .await
                    .map_err(|e| tls_connect_error(e.into()))?;
                Stream::Tls(Box::new(tls))
            }
        };
        self.bump(|s| s.connects += 1);
        Ok(Box::new(Conn::new(stream, fd)))
    }

    /// Newest idle connection that is young enough and still open.
    fn take_idle(&self, now: Nanos) -> Option<Box<Conn>> {
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
            if now.saturating_sub(conn.idle_since) >= self.peek_after() && peer_closed(conn.fd) {
                self.bump(|s| s.stale += 1);
                continue;
            }
            return Some(conn);
        }
        None
    }

    /// The session's connection, if it is still open. Sessions keep theirs however long
    /// a turn takes: the user's think time is the point of a session.
    fn take_sticky(&self, key: &str) -> Option<Box<Conn>> {
        let conn = self.sticky.borrow_mut().remove(key)?;
        if peer_closed(conn.fd) {
            self.bump(|s| s.stale += 1);
            return None;
        }
        Some(conn)
    }

    /// How long a connection may sit idle before it is peeked at: [`PEEK_AFTER_NS`], or
    /// [`PEEK_AFTER_CLOSES_NS`] once this server has closed a kept-alive connection.
    fn peek_after(&self) -> Nanos {
        let stats = self.stats.get();
        if stats.stale + stats.reconnects > 0 {
            PEEK_AFTER_CLOSES_NS
        } else {
            PEEK_AFTER_NS
        }
    }

    /// A failed connection attempt as AIPerf records aiohttp's error for it. The TLS
    /// failures keep this tool's words: Python's are OpenSSL's (`certificate verify
    /// failed: unable to get local issuer certificate (_ssl.c:1006)`), which rustls's
    /// errors do not map onto one for one.
    fn connect_error(&self, e: &ConnectError) -> ErrorDetails {
        let key = ConnectionKey {
            host: self.host.clone(),
            port: self.addr.port(),
            is_ssl: self.tls.is_some(),
        };
        let own_words = || format!("connect to {} failed: {}", self.addr, e.error);
        match e.stage {
            ConnectStage::Tcp => pyerr::connect_failed(&key, self.addr, &e.error),
            ConnectStage::Handshake => pyerr::handshake_failed(&key, &e.error),
            ConnectStage::Certificate => {
                return ErrorDetails::exception(
                    "ClientConnectorCertificateError",
                    own_words(),
                    None,
                    &[
                        "ClientConnectorCertificateError",
                        "SSLCertVerificationError",
                    ],
                )
            }
            ConnectStage::Tls => {
                return ErrorDetails::exception(
                    "ClientConnectorSSLError",
                    own_words(),
                    None,
                    &["ClientConnectorSSLError", "SSLError"],
                )
            }
        }
        .unwrap_or_else(|| ErrorDetails::new(None, CLIENT_CONNECTOR_ERROR, own_words()))
    }

    fn bump(&self, f: impl FnOnce(&mut PoolStats)) {
        let mut stats = self.stats.get();
        f(&mut stats);
        self.stats.set(stats);
    }
}

/// Fails a request [`halt`] keeps from being sent.
fn not_sent(rec: &mut RequestRecord, clock: &RunClock) {
    let error = ErrorDetails::new(Some(499), "RequestCancellationError", NOT_SENT);
    fail(rec, clock.now(), Outcome::Cancelled, error);
}

/// A failed connection attempt: the error and where it failed.
struct ConnectError {
    stage: ConnectStage,
    error: io::Error,
}

/// Where a connection attempt failed, as aiohttp tells the cases apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnectStage {
    /// The TCP connect.
    Tcp,
    /// The TLS handshake, on a socket error (a reset).
    Handshake,
    /// The TLS handshake, on the server's certificate: the case a user fixes with
    /// `--ca-cert`.
    Certificate,
    /// The TLS handshake, on anything else TLS refused.
    Tls,
}

fn tls_connect_error(error: io::Error) -> ConnectError {
    let tls = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    let stage = match tls {
        Some(rustls::Error::InvalidCertificate(_)) => ConnectStage::Certificate,
        Some(_) => ConnectStage::Tls,
        None => ConnectStage::Handshake,
    };
    ConnectError { stage, error }
}

/// A connection that failed before any byte of the response, as AIPerf records aiohttp's
/// error: closed by the server, or a socket error. An error that did not come from the
/// OS (TLS) keeps this tool's words.
fn no_response_error(error: &io::Error, context: &str) -> ErrorDetails {
    if error.kind() == io::ErrorKind::UnexpectedEof && error.raw_os_error().is_none() {
        return pyerr::server_disconnected();
    }
    pyerr::client_os_error(error).unwrap_or_else(|| {
        let message = format!("connection failed {context}: {error}");
        ErrorDetails::new(None, io_kind(error), message)
    })
}

/// The session a request belongs to: its correlation id, else its conversation.
fn session_key(rec: &RequestRecord) -> String {
    if rec.x_correlation_id.is_empty() {
        format!("conversation-{}", rec.conversation_index)
    } else {
        rec.x_correlation_id.clone()
    }
}

/// Whether an idle connection has been closed by the server (or carries bytes nobody asked
/// for, which would be taken for the next response; over TLS that includes a
/// `close_notify`). A non-blocking peek costs one syscall and saves a write into a dead
/// socket plus the retry.
fn peer_closed(fd: RawFd) -> bool {
    let mut byte = 0u8;
    // SAFETY: recv writes at most one byte into `byte`, a live local; `fd` belongs to a
    // connection the caller owns, so it is open.
    let n = unsafe {
        libc::recv(
            fd,
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

/// Whether a connection that ended with no response byte was closed by the server before
/// the server could read the request: the case of a kept-alive connection the server
/// closed for idleness as the request went out (BC-20).
///
/// - A reset, or a write refused: the server's kernel answered bytes sent to a socket
///   already closed (or closed with the request unread).
/// - An end of stream with a reset pending, or with sent segments unacknowledged: the
///   server's FIN left before the request arrived.
///
/// A server that read the whole request and then closed acknowledged it with its FIN, and
/// may have acted on it: that request is not sent again, but fails with
/// `ServerDisconnectedError`, as AIPerf (aiohttp, which never sends a POST twice) records
/// every such close. Else a server that drops some requests after reading them would look
/// healthy, each of those requests reaching it twice.
///
/// A server's kernel acknowledges bytes its application never reads, though: one that
/// shut its side, then closed with the request unread, resets the connection a moment
/// later. So an end of stream with everything acknowledged waits up to
/// [`RESET_WAIT_NS`] for that reset before it counts as a request read.
async fn close_raced_the_request(fd: RawFd, error: &io::Error) -> bool {
    match error.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => true,
        io::ErrorKind::UnexpectedEof => {
            if reset_pending(fd) || unacked_segments(fd) > 0 {
                return true;
            }
            let waited_from = std::time::Instant::now();
            while waited_from.elapsed() < Duration::from_nanos(RESET_WAIT_NS) {
                // Boxed: monoio's timer entry is 640 bytes aligned to 128, and inline it
                // made every request's future (this one awaits in it) that aligned, each
                // level of the transport's futures padded to it: 1,664 bytes where the
                // request needs about half, for a wait only a failed request takes.
                Box::pin(monoio::time::sleep(Duration::from_micros(500))).await;
                if reset_pending(fd) || tcp_state(fd) == Some(TCP_CLOSE) {
                    return true;
                }
            }
            false
        }
        _ => false,
    }
}

/// How long an end of stream on a reused connection waits for the reset of a server that
/// closed with the request unread (see [`close_raced_the_request`]). Only a request that
/// failed so waits.
const RESET_WAIT_NS: u64 = 3_000_000;

/// Linux's `TCP_CLOSE` state: the connection was reset (an end of stream alone leaves it
/// in `CLOSE_WAIT`).
const TCP_CLOSE: u8 = 7;

/// The socket's TCP state, `None` when the kernel cannot say.
fn tcp_state(fd: RawFd) -> Option<u8> {
    tcp_info(fd).map(|info| info.tcpi_state)
}

/// Whether the socket holds a reset not yet reported (its pending error, which reading
/// it clears).
fn reset_pending(fd: RawFd) -> bool {
    let mut error: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `error`, a live local; `fd` is the
    // open socket of a connection the caller owns.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            std::ptr::addr_of_mut!(error).cast(),
            &mut len,
        )
    };
    rc == 0 && matches!(error, libc::ECONNRESET | libc::EPIPE)
}

/// Segments sent on the socket and not yet acknowledged (0 when the kernel cannot say).
fn unacked_segments(fd: RawFd) -> u32 {
    tcp_info(fd).map_or(0, |info| info.tcpi_unacked)
}

/// The socket's `TCP_INFO`, `None` when the kernel cannot say.
fn tcp_info(fd: RawFd) -> Option<libc::tcp_info> {
    // SAFETY: tcp_info is plain old data; all zeroes is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `info`, a live local; `fd` is the
    // open socket of a connection the caller owns.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            std::ptr::addr_of_mut!(info).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(info)
}

/// Writes the request and reads its response with the connection's parser, stamping each
/// read as it completes.
async fn exchange(
    conn: &mut Conn,
    parts: &[&[u8]],
    clock: &RunClock,
    rec: &mut RequestRecord,
) -> ResponseEnd {
    let Conn {
        stream,
        rx_stamps,
        rbuf,
        wbuf,
        parser,
        ..
    } = conn;
    // io_uring needs an owned buffer; copying into the connection's own is cheaper than
    // an allocation per request.
    wbuf.clear();
    for part in parts {
        wbuf.extend_from_slice(part);
    }
    let out = std::mem::take(wbuf);
    // Only the attempt that answers counts: a retry after a stale keep-alive connection
    // starts its sending, bytes and writes afresh (the lost attempt's time is `blocked`).
    let write_start = clock.now();
    rec.write_start_ns = Some(write_start);
    rec.bytes_sent = out.len() as u64;
    let head = super::head_end(&out).unwrap_or(out.len());
    rec.body_bytes_sent = (out.len() - head) as u64;
    rec.writes = 1;
    let (res, out) = stream.write_all(out).await;
    let sent = clock.now();
    *wbuf = out;
    if let Err(error) = res {
        return ResponseEnd::NoResponse {
            error,
            context: "while writing the request",
        };
    }
    rec.sent_ns = Some(sent);

    loop {
        let buf = std::mem::take(rbuf);
        let ((res, buf), now) = match stream {
            Stream::Tcp(s) if *rx_stamps => {
                super::stamp::read_kernel_stamped(s, buf, clock, write_start).await
            }
            _ => super::stamp::stamped(clock, stream.read(buf)).await,
        };
        // The clock read after `send` returned can be later than the answer's arrival
        // (the system call also ran the kernel's work for other sockets): the request was
        // out by the time its answer came, so sending ends there at the latest.
        if rec.sent_ns.is_some_and(|sent| now < sent) {
            rec.sent_ns = Some(now);
        }
        *rbuf = buf;
        let n = match res {
            Ok(0) => return parser.close(None, now, rec),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return parser.close(Some(e), now, rec),
        };
        let bytes = rbuf.get(..n).unwrap_or_default();
        if let Some(end) = parser.feed(bytes, now, rec) {
            return end;
        }
        if let Some(tap) = &rec.event_tap {
            tap.offer(&rec.responses);
        }
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
    let header_len: usize = headers.iter().map(|(k, v)| k.len() + v.len() + 4).sum();
    out.clear();
    out.reserve(method.len() + path.len() + base.authority().len() + header_len + body.len() + 128);
    serialize_request_line(out, method, base, path, !has_header(headers, "host"));
    serialize_request_rest(out, method, headers, body);
}

/// Appends the part of a request that depends on the base URL: the request line and, with
/// `host` (true unless the headers carry their own `Host`), the `Host` header. With
/// [`serialize_request_rest`] it makes exactly [`serialize_request`]'s bytes, so a
/// transport spreading requests over several base URLs keeps one copy of the rest and
/// joins the two when it sends.
pub fn serialize_request_line(
    out: &mut Vec<u8>,
    method: &str,
    base: &BaseUrl,
    path: &str,
    host: bool,
) {
    let target = base.join(path);
    push_all(
        out,
        &[method.as_bytes(), b" ", target.as_bytes(), b" HTTP/1.1\r\n"],
    );
    if host {
        push_all(out, &[b"Host: ", base.authority().as_bytes(), b"\r\n"]);
    }
}

/// Appends the rest of a request after [`serialize_request_line`]: `Connection`, the
/// headers, `Content-Length`, the blank line and the body.
pub fn serialize_request_rest(
    out: &mut Vec<u8>,
    method: &str,
    headers: &[(String, String)],
    body: &[u8],
) {
    serialize_headers(out, headers);
    finish_request(out, method, body);
}

/// What a run's requests share before their `Content-Length`: the request line and `Host`
/// (when made with a base URL) and the header block, kept for the inputs they were made
/// from. A run sends the same method, path and headers with every request; building the
/// line and checking every header byte again for each was a fifth of preparing one.
#[derive(Debug, Default)]
pub struct RequestHead {
    key: Option<HeadKey>,
    bytes: Vec<u8>,
}

/// What a [`RequestHead`] was made from: method, path, headers, and whether it has the
/// request line.
type HeadKey = (String, String, Vec<(String, String)>, bool);

impl RequestHead {
    /// The head for these inputs (`base`: with the request line of that URL, else the
    /// headers only), rebuilt only when they differ from the last call's. A transport
    /// keeps one per base URL it builds lines for.
    pub fn of(
        &mut self,
        method: &str,
        base: Option<&BaseUrl>,
        path: &str,
        headers: &[(String, String)],
    ) -> &[u8] {
        let same = self.key.as_ref().is_some_and(|(m, p, h, line)| {
            *line == base.is_some() && m == method && p == path && h.as_slice() == headers
        });
        if !same {
            self.bytes.clear();
            if let Some(base) = base {
                let host = !has_header(headers, "host");
                serialize_request_line(&mut self.bytes, method, base, path, host);
            }
            serialize_headers(&mut self.bytes, headers);
            let key = (
                method.to_owned(),
                path.to_owned(),
                headers.to_vec(),
                base.is_some(),
            );
            self.key = Some(key);
        }
        &self.bytes
    }
}

/// Appends `Connection` (unless given) and the headers that are valid to send; framing
/// headers are left to [`finish_request`].
pub fn serialize_headers(out: &mut Vec<u8>, headers: &[(String, String)]) {
    if !has_header(headers, "connection") {
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
}

/// Appends `Content-Length` (for a body, or a method that has one), the blank line and the
/// body: what follows [`serialize_headers`].
pub fn finish_request(out: &mut Vec<u8>, method: &str, body: &[u8]) {
    let method_has_body = ["POST", "PUT", "PATCH"]
        .iter()
        .any(|m| method.eq_ignore_ascii_case(m));
    if !body.is_empty() || method_has_body {
        out.extend_from_slice(b"Content-Length: ");
        push_decimal(out, body.len());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

/// `n` in decimal, without the formatting machinery (once per request).
fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Whether `headers` has one named `name` (case-insensitive).
pub fn has_header(headers: &[(String, String)], name: &str) -> bool {
    headers
        .iter()
        .any(|(k, _)| k.trim().eq_ignore_ascii_case(name))
}

fn push_all(out: &mut Vec<u8>, parts: &[&[u8]]) {
    for part in parts {
        out.extend_from_slice(part);
    }
}

/// The bytes a header name may have (RFC 9110 `tchar`): visible ASCII but separators.
/// A table, because every request of a run composed on demand checks every header.
const TCHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_graphic()
            && !matches!(c, b'"' | b'(' | b')' | b',' | b'/')
            && !matches!(c, b':' | b';' | b'<' | b'=' | b'>' | b'?' | b'@')
            && !matches!(c, b'[' | b'\\' | b']' | b'{' | b'}');
        b += 1;
    }
    table
};

fn valid_header(name: &str, value: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| TCHAR[usize::from(b)])
        && memchr::memchr3(b'\r', b'\n', 0, value.as_bytes()).is_none()
}

#[cfg(test)]
mod tests;
