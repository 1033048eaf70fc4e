//! `aiperf-mock`: an OpenAI-compatible server with exact, configurable timing.
//!
//! It is the ground truth of the client's timing tests, so its contract is about *when*
//! bytes leave it:
//!
//! * a request's **arrival** is the moment its handler is entered (request head parsed,
//!   before the body is read);
//! * token `k` (0-based) is due at `arrival + ttft + k * itl`; a streamed chunk carrying
//!   tokens `j*tpc ..` (`tpc` = tokens per chunk) is sent when its last token is due, and a
//!   non-streaming response when the last token is due (at `arrival + ttft` for zero tokens);
//! * nothing is sent early, and every deadline is absolute, so lateness never accumulates;
//! * deadlines are kept by [`timer::PreciseTimer`] (a dedicated thread that blocks until
//!   ~200 µs before a deadline and spins the rest), not by tokio's 1 ms timer wheel;
//! * with [`MockConfig::truth_log`] it records, per chat and completions response, when
//!   the request arrived and when its first and last tokens went out (see [`truth`]).
//!
//! Routes: `POST /v1/chat/completions`, `POST /v1/completions`, `POST /v1/embeddings`,
//! `GET /v1/models`, `GET /health`, OpenAI's Responses API (`POST /v1/responses`) and
//! Anthropic's Messages API (`POST /v1/messages`; see [`items`]), and the other endpoint
//! plugins' APIs (rerankers, TGI, image generation, video jobs, SOLIDO RAG; see
//! [`endpoints`]). See [`body::SseStream`] for the streamed event sequence of chat and
//! completions.
//! `usage.prompt_tokens` counts whitespace-separated words of the prompt (informational;
//! the mock has no tokenizer). Generated text is made of single `o200k_base` tokens (see
//! [`tokens::WORDS`]), so clients that count tokens count exactly `completion_tokens`.

pub mod body;
pub mod endpoints;
pub mod faults;
mod form;
pub mod handlers;
pub mod items;
mod rxstamp;
mod server;
pub mod timer;
pub mod tls;
pub mod tokens;
pub mod truth;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Server behaviour. Durations are exact targets, not minimums plus jitter.
#[derive(Clone, Debug)]
pub struct MockConfig {
    /// Time from arrival to the first token.
    pub ttft: Duration,
    /// Time between consecutive tokens.
    pub itl: Duration,
    /// Tokens per completion, unless the request sets `max_completion_tokens`/`max_tokens`.
    pub output_tokens: u64,
    /// Tokens per streamed chunk (0 is treated as 1).
    pub tokens_per_chunk: u64,
    /// Reported by `/v1/models`, and in responses to requests that name no model.
    pub model_name: String,
    /// Always generate `output_tokens`, whatever the request asks for.
    pub ignore_max_tokens: bool,
    /// Worker threads of the runtime that [`spawn_background`] and the CLI build.
    pub threads: usize,
    /// How long before each deadline the timer thread busy-waits (see [`timer`]).
    pub timer_spin: Duration,
    /// On shutdown, how long open connections get to finish their current response.
    pub shutdown_grace: Duration,
    /// Serve HTTPS with this configuration (see [`tls::server_config`]).
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    /// Misbehave on purpose (see [`faults`]).
    pub faults: Option<Arc<faults::FaultPlan>>,
    /// Chat, Responses and Messages: the first this many tokens of each completion are
    /// reasoning.
    pub reasoning_tokens: u64,
    /// Chat: the field reasoning goes in, `reasoning_content` or `reasoning`.
    pub reasoning_field: String,
    /// Added to every token count in `usage` (a server tokenizer that counts differently).
    pub usage_token_offset: u64,
    /// The prompt-cache counts `usage` reports.
    pub prompt_cache: body::PromptCache,
    /// How long a video generation job takes from submit to `completed`.
    pub video_duration: Duration,
    /// Size of a generated video file.
    pub video_bytes: usize,
    /// Record what was done for each chat and completions response (see [`truth`]); the
    /// server closes it when it stops.
    pub truth_log: Option<Arc<truth::TruthLog>>,
}

impl MockConfig {
    /// The reasoning field as a static name (anything but `reasoning` means
    /// `reasoning_content`).
    pub fn reasoning_field(&self) -> &'static str {
        if self.reasoning_field == "reasoning" {
            "reasoning"
        } else {
            "reasoning_content"
        }
    }
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            ttft: Duration::ZERO,
            itl: Duration::ZERO,
            output_tokens: 16,
            tokens_per_chunk: 1,
            model_name: "mock-model".to_owned(),
            ignore_max_tokens: false,
            threads: 2,
            timer_spin: timer::DEFAULT_SPIN,
            shutdown_grace: Duration::from_secs(2),
            tls: None,
            faults: None,
            reasoning_tokens: 0,
            reasoning_field: "reasoning_content".to_owned(),
            usage_token_offset: 0,
            prompt_cache: body::PromptCache::default(),
            video_duration: Duration::from_millis(200),
            video_bytes: 64 * 1024,
            truth_log: None,
        }
    }
}

/// Live counters of one server, readable from any thread.
#[derive(Debug, Default)]
pub struct MockStats {
    requests: AtomicU64,
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
    connections: AtomicU64,
    timed_sends: AtomicU64,
    lateness_sum_ns: AtomicU64,
    lateness_max_ns: AtomicU64,
}

impl MockStats {
    /// HTTP requests received, on every route, errors included.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Requests whose response has not been completely written yet.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The highest `in_flight` seen so far.
    pub fn peak_in_flight(&self) -> u64 {
        self.peak_in_flight.load(Ordering::Relaxed)
    }

    /// TCP connections accepted (a keep-alive client reuses one).
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Responses and stream events that waited for a deadline, since start or the last
    /// [`reset_lateness`](Self::reset_lateness).
    pub fn timed_sends(&self) -> u64 {
        self.timed_sends.load(Ordering::Relaxed)
    }

    /// Mean time from a deadline to handing its bytes to hyper (which writes them in the
    /// same poll). Lets a client test tell its own error from the mock's.
    pub fn mean_lateness(&self) -> Duration {
        let n = self.timed_sends().max(1);
        Duration::from_nanos(self.lateness_sum_ns.load(Ordering::Relaxed) / n)
    }

    /// Worst time from a deadline to handing its bytes to hyper.
    pub fn max_lateness(&self) -> Duration {
        Duration::from_nanos(self.lateness_max_ns.load(Ordering::Relaxed))
    }

    /// Starts lateness accounting afresh, e.g. after a warm-up.
    pub fn reset_lateness(&self) {
        self.timed_sends.store(0, Ordering::Relaxed);
        self.lateness_sum_ns.store(0, Ordering::Relaxed);
        self.lateness_max_ns.store(0, Ordering::Relaxed);
    }

    /// Counts the time from `due` to now, and returns now: the instant the bytes due are
    /// handed to hyper.
    pub(crate) fn record_lateness(&self, due: std::time::Instant) -> std::time::Instant {
        let now = std::time::Instant::now();
        let late = now.saturating_duration_since(due);
        let ns = u64::try_from(late.as_nanos()).unwrap_or(u64::MAX);
        self.timed_sends.fetch_add(1, Ordering::Relaxed);
        self.lateness_sum_ns.fetch_add(ns, Ordering::Relaxed);
        self.lateness_max_ns.fetch_max(ns, Ordering::Relaxed);
        now
    }

    pub(crate) fn enter(self: &Arc<Self>) -> InFlightGuard {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_in_flight.fetch_max(now, Ordering::Relaxed);
        InFlightGuard {
            stats: Arc::clone(self),
        }
    }
}

/// Decrements `in_flight` when the response is done with, however that happens.
pub struct InFlightGuard {
    stats: Arc<MockStats>,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves on `listener` until `shutdown` completes, then lets open connections finish their
/// current response for up to `cfg.shutdown_grace`.
pub async fn serve(
    cfg: MockConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    serve_with_stats(cfg, listener, Arc::new(MockStats::default()), shutdown).await
}

/// [`serve`], counting into `stats`.
pub async fn serve_with_stats(
    cfg: MockConfig,
    listener: TcpListener,
    stats: Arc<MockStats>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    server::run(cfg, listener, stats, shutdown).await
}

/// A server running on its own thread and runtime; stops when dropped.
pub struct MockHandle {
    addr: SocketAddr,
    stats: Arc<MockStats>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
}

impl MockHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn stats(&self) -> &Arc<MockStats> {
        &self.stats
    }

    pub fn requests(&self) -> u64 {
        self.stats.requests()
    }

    pub fn in_flight(&self) -> u64 {
        self.stats.in_flight()
    }

    /// Stops the server, waits for it, and reports how it ended.
    pub fn shutdown(mut self) -> anyhow::Result<()> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| anyhow::anyhow!("aiperf-mock server thread panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for MockHandle {
    fn drop(&mut self) {
        if let Err(e) = self.stop_and_join() {
            tracing::warn!("aiperf-mock: {e:#}");
        }
    }
}

/// Starts a server on `127.0.0.1:0` (an ephemeral port) on its own thread, with a
/// multi-thread runtime of `cfg.threads` workers, and returns once it is accepting.
/// Pending connections the listener queues. The default 128 made clients opening more
/// connections at once wait a full SYN retry (about 1 s) for some of them.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds a listener with a backlog deep enough for high-concurrency benchmarks.
pub async fn bind(host: &str, port: u16) -> std::io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        let socket = match addr {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        socket.set_reuseaddr(true)?;
        match socket
            .bind(addr)
            .and_then(|()| socket.listen(LISTEN_BACKLOG))
        {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other(format!("{host}: no address"))))
}

pub fn spawn_background(cfg: MockConfig) -> anyhow::Result<MockHandle> {
    // Bound here rather than on the server thread so that the port is known, and bind
    // errors reported, before this returns; connections queue in the backlog until the
    // accept loop starts.
    let listener = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("building the bind runtime")?
        .block_on(async { bind(&Ipv4Addr::LOCALHOST.to_string(), 0).await?.into_std() })
        .context("binding 127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.threads.max(1))
        .thread_name("aiperf-mock-worker")
        .enable_all()
        .build()
        .context("building the aiperf-mock runtime")?;
    let stats = Arc::new(MockStats::default());
    let (stop, stopped) = oneshot::channel::<()>();
    let thread_stats = Arc::clone(&stats);
    let thread = std::thread::Builder::new()
        .name("aiperf-mock".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener)?;
                let shutdown = async {
                    // A dropped sender also means stop.
                    let _ = stopped.await;
                };
                serve_with_stats(cfg, listener, thread_stats, shutdown).await
            })
        })
        .context("spawning the aiperf-mock thread")?;
    Ok(MockHandle {
        addr,
        stats,
        stop: Some(stop),
        thread: Some(thread),
    })
}
