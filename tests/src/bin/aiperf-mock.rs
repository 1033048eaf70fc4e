//! `aiperf-mock`: command-line front end of [`aiperf_tests::mock`].

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aiperf_tests::mock::faults::{self, FaultMode, FaultPlan, Rule};
use aiperf_tests::mock::{self, MockConfig};
use anyhow::Context as _;
use clap::Parser;
use tracing::info;
use tracing_subscriber::EnvFilter;

/// OpenAI-compatible mock server with exact TTFT, ITL and token counts.
///
/// Prints `aiperf-mock listening on http://HOST:PORT` (`https://` with --tls-cert) as the
/// first line of stdout once it accepts connections (use --port 0 for an ephemeral port).
/// Logs go to stderr (RUST_LOG).
#[derive(Debug, Parser)]
#[command(name = "aiperf-mock", version)]
struct Args {
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to bind; 0 picks a free one.
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// Time to first token, in milliseconds.
    #[arg(long, default_value = "0", value_parser = parse_ms)]
    ttft_ms: Duration,
    /// Inter-token latency, in milliseconds.
    #[arg(long, default_value = "0", value_parser = parse_ms)]
    itl_ms: Duration,
    /// Tokens per completion when the request sets no max_tokens/max_completion_tokens.
    #[arg(long, default_value_t = 16,
          value_parser = clap::value_parser!(u64).range(0..=mock::handlers::MAX_OUTPUT_TOKENS))]
    output_tokens: u64,
    /// Tokens carried by each streamed chunk.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    tokens_per_chunk: u64,
    /// Worker threads of the server runtime.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: u16,
    /// Model id reported by /v1/models and used when a request names none.
    #[arg(long, default_value = "mock-model")]
    model_name: String,
    /// Always generate --output-tokens, ignoring the request's max tokens.
    #[arg(long)]
    ignore_max_tokens: bool,
    /// Microseconds before a deadline that the timer thread busy-waits, when deadlines are
    /// sparse enough for that to cost under a fifth of a core; 0 never spins
    /// (saves CPU, costs ~50-100 µs of lateness).
    #[arg(long, default_value_t = mock::timer::DEFAULT_SPIN.as_micros() as u64)]
    timer_spin_us: u64,
    /// Chat, Responses and Messages: the first N tokens of each completion are reasoning.
    #[arg(long, default_value_t = 0)]
    reasoning_tokens: u64,
    /// Chat: the delta field reasoning is sent in.
    #[arg(long, default_value = "reasoning_content",
          value_parser = ["reasoning_content", "reasoning"])]
    reasoning_field: String,
    /// Added to every token count `usage` reports (a server whose tokenizer differs).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    usage_token_offset: u64,
    /// Reports N prompt tokens read from a prompt cache (at most the prompt's): chat and
    /// completions as `usage.prompt_tokens_details.cached_tokens` (left out without the
    /// flag), Responses as `input_tokens_details.cached_tokens`, Messages as
    /// `cache_read_input_tokens` (taken out of `input_tokens`, as Anthropic counts).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    cached_tokens: Option<u64>,
    /// Messages: reports N prompt tokens written to the cache
    /// (`cache_creation_input_tokens`, also taken out of `input_tokens`).
    #[arg(long, value_name = "N", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    cache_write_tokens: u64,
    /// Milliseconds a video generation job takes from submit to `completed`.
    #[arg(long, default_value = "200", value_parser = parse_ms)]
    video_ms: Duration,
    /// Bytes of each generated video file.
    #[arg(long, default_value_t = 64 * 1024,
          value_parser = clap::value_parser!(u64).range(0..=(256 << 20)))]
    video_bytes: u64,
    /// Write what the mock did for each chat/completions response to PATH, one JSON line
    /// each: x_request_id (the request's X-Request-ID or null), id, stream, arrival_ns (the
    /// origin of its deadlines), first_token_ns and last_token_ns (first/last token chunk
    /// handed to hyper), tokens, chunks, complete; CLOCK_REALTIME ns. Server TTFT =
    /// first - arrival, ITL = (last - first) / (tokens - 1). Written by a separate thread
    /// once a second and at exit (SIGINT/SIGTERM included).
    #[arg(long, value_name = "PATH")]
    truth_log: Option<PathBuf>,

    // ---- TLS and faults ------------------------------------------------------------------
    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Misbehave on purpose: a client case (bc01-bc06, bc06-truncated, bc07a, bc07b, bc08,
    /// bc10, bc15, bc19-bc22), reset-mid-stream, stall, slow-headers, garbage,
    /// close-before-response, http-500, http-429 or http-503.
    #[arg(long, conflicts_with = "faults", value_parser = parse_fault)]
    fault: Option<FaultMode>,
    /// With --fault: misbehave on every Nth request only (counted server-wide from 1).
    #[arg(long, default_value_t = 1, conflicts_with = "faults", requires = "fault",
          value_parser = clap::value_parser!(u64).range(1..))]
    fault_every: u64,
    /// Fault rules from a JSON file: `[{"fault": "bc21", "every": 4}, {"script": {...}}]`
    /// (`every` 1 or more, default 1; see the `faults` module for custom byte scripts).
    #[arg(long, value_name = "FILE", value_parser = parse_faults)]
    faults: Option<FaultRules>,
    /// Multiplies every fault script time (0.01 replays BC-04's minute in 0.6 s).
    #[arg(long, default_value_t = 1.0, value_parser = parse_scale)]
    fault_time_scale: f64,
}

fn parse_fault(s: &str) -> Result<FaultMode, String> {
    s.parse()
}

/// The rules of a `--faults` file.
#[derive(Debug, Clone)]
struct FaultRules(Vec<Rule>);

/// Reads the file while parsing the command line, so that a bad file is refused as a bad
/// `--fault-every` is: a usage error naming the flag, the file and the rule.
fn parse_faults(s: &str) -> Result<FaultRules, String> {
    let text = std::fs::read_to_string(s).map_err(|e| format!("cannot read it: {e}"))?;
    faults::rules_from_json(&text)
        .map(FaultRules)
        .map_err(|e| format!("{e:#}"))
}

fn parse_scale(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if !(v.is_finite() && v > 0.0 && v <= 1000.0) {
        return Err("must be above 0 and at most 1000".to_owned());
    }
    Ok(v)
}

fn parse_ms(s: &str) -> Result<Duration, String> {
    let ms: f64 = s.parse().map_err(|e| format!("{e}"))?;
    // Duration::from_secs_f64 panics on negative or non-finite input; the upper bound keeps
    // deadline arithmetic far from overflow.
    if !ms.is_finite() || !(0.0..=3_600_000.0).contains(&ms) {
        return Err("must be between 0 and 3600000 ms".to_owned());
    }
    Ok(Duration::from_secs_f64(ms / 1e3))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let cfg = MockConfig {
        ttft: args.ttft_ms,
        itl: args.itl_ms,
        output_tokens: args.output_tokens,
        tokens_per_chunk: args.tokens_per_chunk,
        model_name: args.model_name,
        ignore_max_tokens: args.ignore_max_tokens,
        threads: usize::from(args.threads),
        timer_spin: Duration::from_micros(args.timer_spin_us),
        reasoning_tokens: args.reasoning_tokens,
        reasoning_field: args.reasoning_field,
        usage_token_offset: args.usage_token_offset,
        prompt_cache: mock::body::PromptCache {
            read: args.cached_tokens,
            write: args.cache_write_tokens,
        },
        video_duration: args.video_ms,
        video_bytes: usize::try_from(args.video_bytes).unwrap_or(usize::MAX),
        truth_log: match &args.truth_log {
            Some(path) => Some(
                mock::truth::TruthLog::create(path)
                    .with_context(|| format!("creating the truth log {}", path.display()))?,
            ),
            None => None,
        },
        tls: match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(mock::tls::server_config(cert, key)?),
            _ => None,
        },
        faults: match (args.fault, args.faults) {
            (Some(mode), _) => Some(Arc::new(FaultPlan::single(
                mode,
                args.fault_every,
                args.fault_time_scale,
            ))),
            (None, Some(FaultRules(rules))) => {
                Some(Arc::new(FaultPlan::new(rules, args.fault_time_scale)))
            }
            (None, None) => None,
        },
        ..MockConfig::default()
    };
    let scheme = if cfg.tls.is_some() { "https" } else { "http" };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.threads)
        .thread_name("aiperf-mock-worker")
        .enable_all()
        .build()
        .context("building the runtime")?;
    runtime.block_on(async move {
        let listener = aiperf_tests::mock::bind(&args.host, args.port)
            .await
            .with_context(|| format!("binding {}:{}", args.host, args.port))?;
        let addr = listener.local_addr()?;
        // Tests and scripts read the port from this line, so it must be first and flushed.
        let mut out = std::io::stdout().lock();
        writeln!(out, "aiperf-mock listening on {scheme}://{addr}")?;
        out.flush()?;
        drop(out);
        mock::serve(cfg, listener, shutdown_signal()).await
    })
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!("cannot listen for SIGINT: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => info!("SIGINT received"),
        () = terminate => info!("SIGTERM received"),
    }
}
