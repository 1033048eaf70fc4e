//! Accept loop, per-connection HTTP/1.1 serving and graceful shutdown.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::faults::{self, Socket};
use super::handlers::{self, AppState};
use super::rxstamp::{self, Stamped};
use super::timer::PreciseTimer;
use super::{MockConfig, MockStats};

pub(crate) async fn run(
    cfg: MockConfig,
    listener: TcpListener,
    stats: Arc<MockStats>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let timer = PreciseTimer::start(cfg.timer_spin).context("starting the timer thread")?;
    if let Err(e) = rxstamp::enable(&listener) {
        debug!(error = %e, "no receive timestamps; request arrival is read from the clock");
    }
    let grace = cfg.shutdown_grace;
    let local = listener
        .local_addr()
        .map_or_else(|e| e.to_string(), |a| a.to_string());
    info!(
        addr = %local,
        ttft_ms = cfg.ttft.as_secs_f64() * 1e3,
        itl_ms = cfg.itl.as_secs_f64() * 1e3,
        output_tokens = cfg.output_tokens,
        tokens_per_chunk = cfg.tokens_per_chunk,
        truth_log = cfg.truth_log.as_ref().map(|l| l.path().display().to_string()),
        "aiperf-mock serving"
    );
    let state = Arc::new(AppState {
        cfg: Arc::new(cfg),
        stats: Arc::clone(&stats),
        timer: timer.handle(),
        next_id: AtomicU64::new(1),
        videos: Default::default(),
    });
    let (closing_tx, closing_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);

    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    stats.connections.fetch_add(1, Ordering::Relaxed);
                    debug!(%peer, "connection");
                    conns.spawn(accept(stream, Arc::clone(&state), closing_rx.clone()));
                }
                Err(e) => {
                    // Typically EMFILE; retrying at once would spin on the same error.
                    warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            // Reap finished connections so the set does not grow with every client.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }

    info!(open_connections = conns.len(), "aiperf-mock shutting down");
    drop(listener);
    let _ = closing_tx.send(true);
    let drained =
        tokio::time::timeout(grace, async { while conns.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        warn!(
            remaining = conns.len(),
            "connections still busy after {grace:?}; closing them"
        );
        conns.shutdown().await;
    }
    // Dropped last: responses still streaming above need the timer to finish.
    drop(timer);
    // The mock's own error, so that a client's figures can be read net of it.
    info!(
        timed_sends = stats.timed_sends(),
        mean_lateness_us = stats.mean_lateness().as_secs_f64() * 1e6,
        max_lateness_us = stats.max_lateness().as_secs_f64() * 1e6,
        "aiperf-mock stopped"
    );
    // Every response has ended (or been dropped) above, so every line is in the buffer.
    if let Some(log) = &state.cfg.truth_log {
        let lines = log
            .close()
            .with_context(|| format!("writing the truth log {}", log.path().display()))?;
        info!(lines, path = %log.path().display(), "truth log written");
    }
    Ok(())
}

/// Sets up an accepted connection (TLS handshake when configured) and serves it, through
/// the fault layer when faults are configured.
async fn accept(stream: TcpStream, state: Arc<AppState>, closing: watch::Receiver<bool>) {
    // Small SSE events must leave at their deadline, not wait for Nagle to coalesce them.
    if let Err(e) = stream.set_nodelay(true) {
        warn!("TCP_NODELAY failed: {e}");
    }
    match state.cfg.tls.clone() {
        None if state.cfg.faults.is_none() => match Stamped::new(stream) {
            Ok(stamped) => {
                let clock = stamped.clock();
                let arrival = move || clock.latest().unwrap_or_else(Instant::now);
                serve_connection(stamped, state, closing, arrival).await;
            }
            Err(stream) => serve_connection(stream, state, closing, Instant::now).await,
        },
        None => dispatch(stream, state, closing).await,
        Some(tls) => {
            let handshake = tokio_rustls::TlsAcceptor::from(tls).accept(stream);
            match tokio::time::timeout(Duration::from_secs(10), handshake).await {
                Ok(Ok(stream)) => dispatch(stream, state, closing).await,
                Ok(Err(e)) => debug!("TLS handshake failed: {e}"),
                Err(_) => debug!("TLS handshake timed out"),
            }
        }
    }
}

async fn dispatch<S: Socket>(stream: S, state: Arc<AppState>, closing: watch::Receiver<bool>) {
    match state.cfg.faults.clone() {
        Some(plan) => faults::serve(stream, state, plan, closing).await,
        None => serve_connection(stream, state, closing, Instant::now).await,
    }
}

/// `arrival` tells when the request hyper just parsed arrived; it is called as hyper hands
/// the request over.
async fn serve_connection<S>(
    stream: S,
    state: Arc<AppState>,
    mut closing: watch::Receiver<bool>,
    arrival: impl Fn() -> Instant + Send + 'static,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| handlers::handle(Arc::clone(&state), req, arrival()));
    let conn = http1::Builder::new()
        .keep_alive(true)
        // Enables hyper's header-read timeout, which drops clients that connect and stall.
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                debug!("connection ended: {e}");
            }
            return;
        }
        // Changed or sender gone: either way the server is stopping.
        _ = closing.changed() => {}
    }
    // Finish the response in progress, then close instead of waiting for the next request.
    conn.as_mut().graceful_shutdown();
    if let Err(e) = conn.await {
        debug!("connection ended during shutdown: {e}");
    }
}
