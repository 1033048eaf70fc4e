//! `--truth-log`: what the mock actually did for each generation response, one JSON line
//! per response, so that a benchmark can tell a client's timing error from the mock's own.
//!
//! The configured TTFT and ITL are targets; under load the mock meets them late (see
//! `MockStats::mean_lateness`). A client that measured exactly what the server did would
//! still show that lateness as error against the configuration, so this log records, per
//! request, the instants the client's figures should equal:
//!
//! * `arrival_ns`: the request's arrival, the origin of its deadlines (the kernel's
//!   receive stamp where the connection has one, see `rxstamp`);
//! * `first_token_ns` / `last_token_ns`: when the first / last token-carrying chunk was
//!   handed to hyper, which writes it in the same poll (the instant lateness is measured
//!   at). The role-only chunk of chat carries no token, and clients (ours, AIPerf) start
//!   TTFT at the first chunk with non-empty text, which is the first token chunk; the last
//!   token chunk is the last one with text, where both end `request_latency`. Server TTFT
//!   is `first_token_ns - arrival_ns` and server ITL `(last_token_ns - first_token_ns) /
//!   (tokens - 1)`, AIPerf's `(request_latency - TTFT) / (OSL - 1)`;
//! * `tokens` / `chunks`: tokens and token-carrying chunks handed over (a non-streaming
//!   response is one chunk, stamped when its body is handed over);
//! * `x_request_id` (the request's `X-Request-ID`, or null), `id` (the response's id),
//!   `stream`, and `complete` (false when the client went away mid-stream).
//!
//! Stamps are CLOCK_REALTIME nanoseconds (the clock of AIPerf's `profile_export.jsonl`),
//! converted from the monotonic clock through one anchor taken at start, so differences
//! within a request are exact monotonic differences.
//!
//! Writing must not move the timing it records: the serving path only pushes a small
//! record onto a vector under an uncontended mutex (no system call, no formatting), and a
//! writer thread, which nothing wakes, formats and writes what has accumulated once a
//! second and at shutdown.

use std::fs::File;
use std::io::{self, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often the writer thread writes what has accumulated.
const WRITE_EVERY: Duration = Duration::from_secs(1);

/// One finished (or abandoned) generation response.
#[derive(Debug, Clone)]
pub(crate) struct Truth {
    pub x_request_id: Option<String>,
    pub id: String,
    pub stream: bool,
    pub arrival: Instant,
    pub first_token: Option<Instant>,
    pub last_token: Option<Instant>,
    pub tokens: u64,
    pub chunks: u64,
    pub complete: bool,
}

impl Truth {
    /// A token-carrying chunk of `tokens` tokens was handed over at `at`.
    pub fn sent(&mut self, tokens: u64, at: Instant) {
        self.first_token.get_or_insert(at);
        self.last_token = Some(at);
        self.tokens = self.tokens.saturating_add(tokens);
        self.chunks = self.chunks.saturating_add(1);
    }
}

/// The monotonic clock's position on the wall clock, read once.
struct Anchor {
    at: Instant,
    wall_ns: i128,
}

impl Anchor {
    fn now() -> Self {
        let at = Instant::now();
        let wall_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(0));
        Self { at, wall_ns }
    }

    fn wall_ns(&self, t: Instant) -> i128 {
        let ns = |d: Duration| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX / 2);
        if t >= self.at {
            self.wall_ns + ns(t - self.at)
        } else {
            self.wall_ns - ns(self.at - t)
        }
    }
}

struct Shared {
    pending: Mutex<Vec<Truth>>,
    stop: Mutex<bool>,
    wake: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while pushing leaves a valid vector behind; keep logging.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The truth log of one server: a buffer the serving path pushes onto, and its writer.
pub struct TruthLog {
    path: PathBuf,
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<io::Result<u64>>>>,
}

impl std::fmt::Debug for TruthLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TruthLog")
            .field("path", &self.path)
            .finish()
    }
}

impl TruthLog {
    /// Creates (truncates) `path` and starts the writer thread.
    pub fn create(path: &Path) -> io::Result<Arc<Self>> {
        let file = File::create(path)?;
        let shared = Arc::new(Shared {
            pending: Mutex::new(Vec::new()),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        });
        let for_thread = Arc::clone(&shared);
        let anchor = Anchor::now();
        let writer = std::thread::Builder::new()
            .name("aiperf-mock-truth".into())
            .spawn(move || write_loop(&for_thread, BufWriter::new(file), &anchor))?;
        Ok(Arc::new(Self {
            path: path.to_owned(),
            shared,
            writer: Mutex::new(Some(writer)),
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn push(&self, truth: Truth) {
        lock(&self.shared.pending).push(truth);
    }

    /// Writes what is left, stops the writer and returns the lines written in all; later
    /// calls return 0. Records pushed after this are dropped.
    pub fn close(&self) -> io::Result<u64> {
        let Some(writer) = lock(&self.writer).take() else {
            return Ok(0);
        };
        *lock(&self.shared.stop) = true;
        self.shared.wake.notify_one();
        writer
            .join()
            .map_err(|_| io::Error::other("truth log writer panicked"))?
    }
}

impl Drop for TruthLog {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::warn!(path = %self.path.display(), "truth log: {e}");
        }
    }
}

fn write_loop(shared: &Shared, mut out: BufWriter<File>, anchor: &Anchor) -> io::Result<u64> {
    let mut written = 0u64;
    let mut failed: Option<io::Error> = None;
    loop {
        let stopping = {
            let stop = lock(&shared.stop);
            let (stop, _) = shared
                .wake
                .wait_timeout_while(stop, WRITE_EVERY, |stop| !*stop)
                .unwrap_or_else(PoisonError::into_inner);
            *stop
        };
        let batch = std::mem::take(&mut *lock(&shared.pending));
        // After a write error the records are dropped, so that memory does not grow for
        // the rest of a long run; the error is reported at close.
        if failed.is_none() {
            let result = batch
                .iter()
                .try_for_each(|t| writeln!(out, "{}", line(t, anchor)))
                .and_then(|()| out.flush());
            match result {
                Ok(()) => written += batch.len() as u64,
                Err(e) => failed = Some(e),
            }
        }
        if stopping {
            return failed.map_or(Ok(written), Err);
        }
    }
}

/// One line of the log, fields in the documented order.
#[derive(serde::Serialize)]
struct Line<'a> {
    x_request_id: Option<&'a str>,
    id: &'a str,
    stream: bool,
    arrival_ns: Option<i64>,
    first_token_ns: Option<i64>,
    last_token_ns: Option<i64>,
    tokens: u64,
    chunks: u64,
    complete: bool,
}

fn line(t: &Truth, anchor: &Anchor) -> String {
    // serde_json has no i128 (without a feature); wall-clock nanoseconds fit i64 until 2262.
    let ns = |i: Option<Instant>| i.and_then(|i| i64::try_from(anchor.wall_ns(i)).ok());
    let line = Line {
        x_request_id: t.x_request_id.as_deref(),
        id: &t.id,
        stream: t.stream,
        arrival_ns: ns(Some(t.arrival)),
        first_token_ns: ns(t.first_token),
        last_token_ns: ns(t.last_token),
        tokens: t.tokens,
        chunks: t.chunks,
        complete: t.complete,
    };
    // Only strings and numbers: serializing to memory cannot fail.
    serde_json::to_string(&line).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_every_record_by_close_with_exact_differences() {
        let dir = std::env::temp_dir().join(format!("aiperf-truth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("truth.jsonl");
        let log = TruthLog::create(&path).expect("create");
        let arrival = Instant::now();
        for k in 0..3u64 {
            let mut t = Truth {
                x_request_id: (k > 0).then(|| format!("req-{k}")),
                id: format!("chatcmpl-mock-{k}"),
                stream: true,
                arrival,
                first_token: None,
                last_token: None,
                tokens: 0,
                chunks: 0,
                complete: true,
            };
            t.sent(1, arrival + Duration::from_micros(50_000));
            t.sent(2, arrival + Duration::from_micros(60_123));
            log.push(t);
        }
        assert_eq!(log.close().expect("close"), 3);
        assert_eq!(log.close().expect("second close"), 0);
        let text = std::fs::read_to_string(&path).expect("read");
        let _ = std::fs::remove_dir_all(&dir);
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0]["x_request_id"].is_null());
        assert_eq!(lines[2]["x_request_id"], "req-2");
        for l in &lines {
            let at = |k: &str| l[k].as_i64().expect(k);
            assert_eq!(at("first_token_ns") - at("arrival_ns"), 50_000_000);
            assert_eq!(at("last_token_ns") - at("first_token_ns"), 10_123_000);
            assert_eq!(
                (l["tokens"].as_u64(), l["chunks"].as_u64()),
                (Some(3), Some(2))
            );
        }
    }
}
