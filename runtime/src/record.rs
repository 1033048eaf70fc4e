//! What one request leaves behind: raw timestamps and bytes from the worker, then the
//! endpoint's reading of them.
//!
//! All instants are [`Nanos`]: monotonic nanoseconds since the run's epoch (see
//! [`RunClock`]), taken at the moment bytes were written or read. Wall-clock values for
//! the exports are derived from them, never measured separately.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Monotonic nanoseconds since [`RunClock`]'s epoch.
pub type Nanos = u64;

/// The run's time base: one monotonic epoch plus the wall-clock time it corresponds to.
#[derive(Debug, Clone, Copy)]
pub struct RunClock {
    epoch: Instant,
    wall_epoch_ns: u64,
    /// `CLOCK_MONOTONIC` at the epoch, as Python's `perf_counter_ns` reads it.
    mono_epoch_ns: u64,
}

impl RunClock {
    pub fn new() -> Self {
        let epoch = Instant::now();
        let wall_epoch_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        RunClock {
            epoch,
            wall_epoch_ns,
            mono_epoch_ns: monotonic_ns(),
        }
    }

    /// Nanoseconds since the epoch, from the vDSO monotonic clock.
    #[inline]
    pub fn now(&self) -> Nanos {
        self.epoch.elapsed().as_nanos() as Nanos
    }

    /// The instant that is 0 in this clock's [`Nanos`].
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// The monotonic instant of a [`Nanos`] value.
    pub fn instant(&self, at: Nanos) -> Instant {
        self.epoch + std::time::Duration::from_nanos(at)
    }

    /// Wall-clock nanoseconds since the Unix epoch for a run instant.
    pub fn wall_ns(&self, at: Nanos) -> u64 {
        self.wall_epoch_ns + at
    }

    /// `CLOCK_MONOTONIC` nanoseconds for a run instant: AIPerf's `perf_ns` values (its
    /// `time.perf_counter_ns()`), comparable with other stamps of that clock on this host.
    pub fn monotonic_ns(&self, at: Nanos) -> u64 {
        self.mono_epoch_ns + at
    }
}

/// `CLOCK_MONOTONIC` now, in nanoseconds (0 if the clock cannot be read, which Linux
/// never refuses).
#[cfg(feature = "engine")]
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return 0;
    }
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// Without the engine nothing is sent, so no `perf_ns` is ever written.
#[cfg(not(feature = "engine"))]
fn monotonic_ns() -> u64 {
    0
}

impl Default for RunClock {
    fn default() -> Self {
        Self::new()
    }
}

/// Which phase of the run a request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Warmup,
    Profiling,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Warmup => "warmup",
            Phase::Profiling => "profiling",
        }
    }
}

/// One response unit as the transport saw it: an SSE event's `data` (lines joined by
/// `\n`), or a whole non-streaming body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseChunk {
    /// The read that completed this event (its last byte arrived).
    pub recv_ns: Nanos,
    /// The read that delivered this event's first byte.
    pub first_byte_ns: Nanos,
    /// SSE `event:` field, if any (e.g. `error`).
    pub event: Option<String>,
    /// The payload bytes, without framing.
    pub data: Vec<u8>,
}

/// How a request ended. Failures are recorded, never dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    /// The server reported an error inside a 200 response.
    InbandError,
    /// Non-2xx status other than overload.
    HttpError,
    /// 429 or 503.
    Shed,
    Timeout,
    /// The body ended early (connection closed, missing chunked terminator).
    Truncated,
    Cancelled,
    /// A complete, clean response with nothing a user would see.
    EmptyOutput,
    /// Could not connect, or the connection failed before a response head.
    ConnectionError,
}

impl Outcome {
    /// The error recorded for a failed outcome that came without details, named as AIPerf
    /// names it where AIPerf has the case (`TimeoutError`, `RequestCancellationError`
    /// with 499, `InvalidInferenceResultError`). `None` for success.
    pub fn default_error(self, status: Option<u16>) -> Option<ErrorDetails> {
        let (code, kind, message) = match self {
            Outcome::Success => return None,
            Outcome::InbandError => (status, "InbandError", "the server reported an error"),
            Outcome::HttpError => (status, "HttpError", "HTTP error status"),
            Outcome::Shed => (status, "Overloaded", "the server shed the request"),
            Outcome::Timeout => return Some(ErrorDetails::timeout()),
            Outcome::Truncated => (status, "TruncatedResponse", "the response ended early"),
            Outcome::Cancelled => (
                Some(499),
                "RequestCancellationError",
                "Request cancelled by external signal",
            ),
            Outcome::EmptyOutput => return Some(ErrorDetails::no_content(true)),
            Outcome::ConnectionError => (status, "ConnectionError", "the connection failed"),
        };
        Some(ErrorDetails::new(code, kind, message))
    }
}

/// Error details in AIPerf's shape: `{code?, type, message, cause?, cause_chain?}` (the
/// exports add `details`). An error AIPerf builds from a Python exception has the
/// exception's `repr` as its message, the `repr` of its `__cause__` as `cause` and the
/// class names along `__cause__`/`__context__` as `cause_chain`; one it builds from a
/// response (an HTTP status) has neither of the two.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetails {
    pub code: Option<u16>,
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// Empty where AIPerf writes none (`null`, left out).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cause_chain: Vec<String>,
}

/// AIPerf's message when response units came but none carried content.
const NO_CONTENT: &str = "InvalidInferenceResultError('Invalid inference result: No responses \
                          with actual content were received from the server (only \
                          usage/metadata, null/empty data, or [DONE] markers)')";
/// AIPerf's message when no response unit came at all.
const NO_RESPONSES: &str =
    "InvalidInferenceResultError('Invalid inference result: No responses were received')";

impl ErrorDetails {
    pub fn new(code: Option<u16>, kind: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorDetails {
            code,
            kind: kind.into(),
            message: message.into(),
            cause: None,
            cause_chain: Vec::new(),
        }
    }

    /// An error from a Python exception, as AIPerf's `ErrorDetails.from_exception` writes
    /// it: `message` is the exception's repr, `cause` its cause's, `chain` the class
    /// names from the exception down (its own first).
    pub fn exception(kind: &str, message: String, cause: Option<String>, chain: &[&str]) -> Self {
        ErrorDetails {
            code: None,
            kind: kind.to_owned(),
            message,
            cause,
            cause_chain: chain.iter().map(|&c| c.to_owned()).collect(),
        }
    }

    /// A request past `--request-timeout-seconds`: aiohttp's total timeout cancels the
    /// read and raises `TimeoutError` from the `CancelledError`.
    pub fn timeout() -> Self {
        Self::exception(
            "TimeoutError",
            "TimeoutError()".to_owned(),
            Some("CancelledError()".to_owned()),
            &["TimeoutError", "CancelledError"],
        )
    }

    /// A complete response with nothing a user would see, as AIPerf records it:
    /// `some_units`: at least one response unit came (an event, a body), only none
    /// with content.
    pub fn no_content(some_units: bool) -> Self {
        let message = if some_units { NO_CONTENT } else { NO_RESPONSES };
        Self::exception(
            "InvalidInferenceResultError",
            message.to_owned(),
            None,
            &["InvalidInferenceResultError"],
        )
    }

    /// Whether two errors are counted together: AIPerf's `ErrorDetails` compares and
    /// hashes by code, type and message only, so its summary groups by those.
    pub fn same_group(&self, other: &ErrorDetails) -> bool {
        self.code == other.code && self.kind == other.kind && self.message == other.message
    }
}

/// Everything a worker measured for one request.
#[derive(Debug, Clone, Default)]
pub struct RequestRecord {
    pub worker_id: u32,
    /// Global index of the credit that allowed this request.
    pub credit_index: u64,
    /// Index of the dataset entry (conversation) sent.
    pub conversation_index: usize,
    pub turn_index: u32,
    pub phase: Option<Phase>,
    pub x_request_id: String,
    pub x_correlation_id: String,
    /// When the schedule wanted this request sent (open loop), or when its credit was
    /// issued (closed loop).
    pub intended_ns: Nanos,
    /// The trace timestamp (ms) a fixed schedule sent this turn at: AIPerf's replay
    /// schedule lag is the send time against it, whatever held the request back (a
    /// concurrency slot, the previous turn), where `intended_ns` moves with those waits.
    pub trace_ms: Option<f64>,
    /// Just before the request bytes were handed to the kernel.
    pub start_ns: Nanos,
    /// Just before the request was written on the connection that answered: the end of
    /// taking (or opening) a connection, the start of AIPerf's `http_req_sending`.
    pub write_start_ns: Option<Nanos>,
    /// When the last request byte was written.
    pub sent_ns: Option<Nanos>,
    /// When the response head was complete.
    pub ack_ns: Option<Nanos>,
    /// When the first response byte arrived.
    pub first_byte_ns: Option<Nanos>,
    /// When the first byte after the response head arrived (AIPerf's `http_req_waiting`
    /// ends at the first body chunk, not at the head).
    pub body_first_ns: Option<Nanos>,
    /// Response events in arrival order.
    pub responses: Vec<ResponseChunk>,
    /// When the response ended (last byte, error or cancellation).
    pub end_ns: Nanos,
    pub status: Option<u16>,
    /// Value of `Retry-After` on overload responses.
    pub retry_after: Option<String>,
    pub outcome: Option<Outcome>,
    pub error: Option<ErrorDetails>,
    pub was_cancelled: bool,
    /// Cancelled in flight because its phase or the run stopped (the grace period ran
    /// out, Ctrl-C), not by its own timeout or `--request-cancellation-rate`. AIPerf keeps
    /// no record of such a request; here it stays in `profile_export.jsonl` and is left
    /// out of the summary, so the metrics and error counts agree with AIPerf's.
    pub cut_off: bool,
    /// Socket reads that carried response bytes.
    pub reads: u32,
    /// Response bytes read, head included (decrypted bytes under TLS).
    pub bytes_received: u64,
    /// Request bytes written (head and body; before TLS encryption).
    pub bytes_sent: u64,
    /// The request's body bytes, and the response's after de-chunking: what aiohttp's
    /// trace counts, so AIPerf's `http_req_data_sent` and `http_req_data_received`.
    pub body_bytes_sent: u64,
    pub body_bytes_received: u64,
    /// Buffers handed to the transport for the request: one per attempt's write, as
    /// aiohttp counts the chunks it hands to its transport, not the syscalls under them.
    pub writes: u32,
    /// Nanoseconds spent opening the connection that answered (TCP connect plus TLS
    /// handshake); 0 on a kept-alive one.
    pub connect_ns: u64,
    /// Whether the request went out on a kept-alive connection.
    pub connection_reused: bool,
    /// Input tokens of the prompt, known from the dataset.
    pub input_tokens: Option<u32>,
    /// The prompt's texts joined by a space, when its tokens are unknown before the run
    /// (a later turn of a chat session carries the replies it got): the record thread
    /// counts them, as AIPerf counts the texts of the body it sent.
    pub input_text: Option<String>,
    /// `max_tokens` asked of the server, if any.
    pub requested_output_tokens: Option<u32>,
    /// Images the request body carries (those of the history it resends included), as
    /// AIPerf counts the image parts of the payload it sent: `num_images` and the image
    /// metrics.
    pub images: u32,
    /// Seconds of the conversation's first audio clip, when the dataset knows it
    /// (synthetic audio): AIPerf's `audio_duration`, from which RTFx is computed.
    pub audio_duration_s: Option<f64>,
    /// The request's bytes as the transport wrote them (head and body), for
    /// `--export-level raw`. The engine sets `Some` (empty) to ask for them and the
    /// transport fills them in; `None` keeps the copy off every other run.
    pub sent_request: Option<Vec<u8>>,

    // ---- transport diagnostics ---------------------------------------------------------
    /// The body was framed as server-sent events (so a stream that ends without `[DONE]`
    /// or a finish reason is truncated, BC-06).
    pub event_stream: bool,
    /// Sent again on a new connection after a kept-alive one closed before any response
    /// byte (BC-20); the timestamps are those of the attempt that answered.
    pub reconnected: bool,
    /// Most SSE events completed by one read (BC-01: a fast server coalesces tokens).
    pub max_events_per_read: u32,
    /// Whether this is the last turn of its conversation, for
    /// `--connection-reuse-strategy sticky-user-sessions`; `None` (unknown) counts as the
    /// last turn, which is right while every conversation has one turn.
    pub final_turn: Option<bool>,
    /// Set by the engine when it must see the response events while the request runs
    /// (`--prefill-concurrency` frees a slot at the first content response): a transport
    /// offers the record's events to it after each read. `None` on every other run, so
    /// the read path pays one branch.
    pub event_tap: Option<std::sync::Arc<EventTap>>,
}

/// Response events passed on while a request is in flight, until the engine closes the
/// tap. The transport's future fills the record, which the engine cannot read before it
/// ends, so the events are copied here; only those before the engine's decision are
/// (for `--prefill-concurrency`, those up to the first content response: one or two).
/// Both sides run in one task on one worker thread; the lock is never contended and is
/// there because a record crosses to the record thread, which needs it `Send`.
#[derive(Debug, Default)]
pub struct EventTap {
    /// Events of the record offered so far; `usize::MAX` once closed.
    offered: std::sync::atomic::AtomicUsize,
    pending: std::sync::Mutex<Vec<ResponseChunk>>,
}

impl EventTap {
    /// Copies the events of `responses` (all the record's, in order) not offered yet.
    pub fn offer(&self, responses: &[ResponseChunk]) {
        use std::sync::atomic::Ordering;
        let offered = self.offered.load(Ordering::Relaxed);
        let Some(new) = responses.get(offered..).filter(|new| !new.is_empty()) else {
            return;
        };
        self.lock().extend_from_slice(new);
        self.offered.store(responses.len(), Ordering::Relaxed);
    }

    /// The events offered since the last call, oldest first.
    pub fn take(&self) -> Vec<ResponseChunk> {
        std::mem::take(&mut *self.lock())
    }

    /// Stops the copies: the engine has seen what it needed.
    pub fn close(&self) {
        self.offered
            .store(usize::MAX, std::sync::atomic::Ordering::Relaxed);
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<ResponseChunk>> {
        // A panic while holding it cannot leave a half-written list of whole events.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The error of a request the stop kept from being sent (`http::client::halt`).
pub const NOT_SENT: &str = "cancelled before it was sent: the run stopped";

impl RequestRecord {
    /// Whether the stop kept this request from being sent (`http::client::halt`): no byte
    /// of it went out, and its error says why.
    pub fn was_kept_from_sending(&self) -> bool {
        self.sent_ns.is_none() && self.error.as_ref().is_some_and(|e| e.message == NOT_SENT)
    }

    /// Folds a follow-up exchange of the same request (a job API's poll) into this
    /// record: its responses are appended (without their bytes when `keep_responses` is
    /// false, e.g. a downloaded file nobody parses: its times still show), its end,
    /// status and failure become the record's. The start, first byte and head times stay
    /// those of the first exchange, so the record spans the whole job.
    pub fn absorb_follow_up(&mut self, part: RequestRecord, keep_responses: bool) {
        self.responses
            .extend(part.responses.into_iter().map(|mut chunk| {
                if !keep_responses {
                    chunk.data = Vec::new();
                }
                chunk
            }));
        self.end_ns = self.end_ns.max(part.end_ns);
        if part.status.is_some() {
            self.status = part.status;
        }
        if part.retry_after.is_some() {
            self.retry_after = part.retry_after;
        }
        if part.outcome.is_some() {
            self.outcome = part.outcome;
            self.error = part.error;
        }
        self.was_cancelled |= part.was_cancelled;
        self.reads = self.reads.saturating_add(part.reads);
        self.bytes_received = self.bytes_received.saturating_add(part.bytes_received);
        self.bytes_sent = self.bytes_sent.saturating_add(part.bytes_sent);
        self.body_bytes_received = self
            .body_bytes_received
            .saturating_add(part.body_bytes_received);
        self.body_bytes_sent = self.body_bytes_sent.saturating_add(part.body_bytes_sent);
        self.writes = self.writes.saturating_add(part.writes);
    }
}

/// Token usage as reported by the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub total_tokens: Option<u64>,
    pub reasoning_tokens: Option<u64>,
    /// Prompt tokens served from the server's prompt cache (OpenAI's
    /// `prompt_tokens_details.cached_tokens`, Anthropic's `cache_read_input_tokens`, ...).
    pub prompt_cache_read_tokens: Option<u64>,
    /// Prompt tokens written to the cache (Anthropic's `cache_creation_input_tokens`).
    pub prompt_cache_write_tokens: Option<u64>,
    /// Prompt tokens that missed the cache (DeepSeek's `prompt_cache_miss_tokens`).
    pub prompt_cache_miss_tokens: Option<u64>,
    /// Audio among the prompt and the completion tokens (OpenAI's `audio_tokens` of
    /// `prompt_tokens_details` and `completion_tokens_details`).
    #[serde(default)]
    pub prompt_audio_tokens: Option<u64>,
    #[serde(default)]
    pub completion_audio_tokens: Option<u64>,
    /// Predicted output tokens the model kept and dropped (OpenAI's predicted outputs).
    #[serde(default)]
    pub accepted_prediction_tokens: Option<u64>,
    #[serde(default)]
    pub rejected_prediction_tokens: Option<u64>,
    /// Prompt tokens of the tool declarations (Gemini's `toolUsePromptTokenCount`).
    #[serde(default)]
    pub tool_use_prompt_tokens: Option<u64>,
    /// Seconds of prompt audio (Mistral's `prompt_audio_seconds`): a duration, not tokens.
    #[serde(default)]
    pub prompt_audio_seconds: Option<f64>,
}

impl Usage {
    /// This usage without its audio counts: AIPerf reports them only for endpoints that
    /// send audio.
    pub fn without_audio(self) -> Usage {
        Usage {
            prompt_audio_tokens: None,
            completion_audio_tokens: None,
            prompt_audio_seconds: None,
            ..self
        }
    }
}

/// What a response unit carried, as the endpoint read it.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseData {
    /// Nothing a user would see (role prelude, finish marker, usage-only chunk, `[DONE]`).
    Empty,
    Text(String),
    /// The closing event of a text the stream already carried in pieces (the Responses
    /// API's `response.output_text.done` after its deltas): content, since AIPerf times
    /// the end of the output by it, but no text of its own, so nothing is counted twice.
    TextEnd,
    /// Reasoning text, with any visible content of the same chunk.
    Reasoning {
        content: String,
        reasoning: String,
    },
    /// Embedding vectors (their count).
    Embeddings {
        count: usize,
    },
    /// Ranking results (their count).
    Rankings {
        count: usize,
    },
    /// Generated images, final or partial (their count).
    Images {
        count: usize,
    },
    /// A finished video generation job (its count: one per completed job).
    Videos {
        count: usize,
        /// What SGLang reports of the generation: its time on the server
        /// (`inference_time_s`) and its peak GPU memory (`peak_memory_mb`).
        inference_time_s: Option<f64>,
        peak_memory_mb: Option<f64>,
    },
}

impl ResponseData {
    /// A content response carries something the user would see; only these count for
    /// TTFT and inter-token latency.
    pub fn is_content(&self) -> bool {
        match self {
            ResponseData::Empty => false,
            ResponseData::Text(t) => !t.is_empty(),
            ResponseData::Reasoning { content, reasoning } => {
                !content.is_empty() || !reasoning.is_empty()
            }
            ResponseData::TextEnd
            | ResponseData::Embeddings { .. }
            | ResponseData::Rankings { .. }
            | ResponseData::Images { .. }
            | ResponseData::Videos { .. } => true,
        }
    }
}

/// One response unit after the endpoint parsed it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedResponse {
    pub recv_ns: Nanos,
    pub data: ResponseData,
    pub usage: Option<Usage>,
}

/// A finished request with its responses parsed and tokens counted: the input of
/// record processors.
#[derive(Debug, Clone)]
pub struct ParsedRecord {
    pub raw: RequestRecord,
    pub responses: Vec<ParsedResponse>,
    pub outcome: Outcome,
    pub error: Option<ErrorDetails>,
    /// The endpoint produces tokens (its `produces_tokens` metadata): the output-token
    /// metrics apply to this record.
    pub produces_tokens: bool,
    /// Prompt tokens (client-side count).
    pub input_tokens: Option<u64>,
    /// Non-reasoning output tokens (client-side count). For an endpoint that produces no
    /// tokens, AIPerf still counts its responses' text (none: 0) when it counts on the
    /// client, and reports that as `output_sequence_length` only.
    pub output_tokens: Option<u64>,
    /// Reasoning tokens (client-side count).
    pub reasoning_tokens: Option<u64>,
    /// Last usage block the server sent.
    pub usage: Option<Usage>,
}

impl ParsedRecord {
    pub fn is_valid(&self) -> bool {
        self.outcome == Outcome::Success
    }

    /// Receive times of content responses, in order.
    pub fn content_times(&self) -> impl Iterator<Item = Nanos> + '_ {
        self.responses
            .iter()
            .filter(|r| r.data.is_content())
            .map(|r| r.recv_ns)
    }
}

/// Event names and JSON fragments by which the APIs we read mark the end of a stream.
const END_EVENTS: &[&str] = &[
    "message_stop",
    "response.completed",
    "response.failed",
    "response.incomplete",
    "image_generation.completed",
];
/// Keys whose value is `null` until the last event of a stream carries a string:
/// OpenAI-style `finish_reason`, Anthropic's `stop_reason`, TGI's `generated_text`.
const END_KEYS: &[&[u8]] = &[
    b"\"finish_reason\"",
    b"\"stop_reason\"",
    b"\"generated_text\"",
];

impl RequestRecord {
    /// Whether the event stream said it was complete: a `[DONE]`, an end event, or a
    /// finish reason. A stream that ends cleanly with none of these was cut short
    /// (BC-06); one that has a finish reason but no `[DONE]` is complete.
    pub fn stream_finished(&self) -> bool {
        self.responses.iter().rev().any(ends_stream)
    }
}

/// Whether one SSE event marks the end of its stream (see [`RequestRecord::stream_finished`]).
pub fn ends_stream(chunk: &ResponseChunk) -> bool {
    let data = chunk.data.trim_ascii();
    if data == b"[DONE]" {
        return true;
    }
    if chunk
        .event
        .as_deref()
        .is_some_and(|e| END_EVENTS.contains(&e.trim()))
    {
        return true;
    }
    let quoted = |name: &str| {
        let needle = format!("\"{name}\"");
        contains(data, needle.as_bytes())
    };
    if END_EVENTS.iter().any(|e| quoted(e)) || contains(data, b"\"done\":true") {
        return true;
    }
    END_KEYS.iter().any(|key| string_value_follows(data, key))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Whether some occurrence of `key` is followed by `:` and a string (not `null`).
fn string_value_follows(data: &[u8], key: &[u8]) -> bool {
    let mut rest = data;
    while let Some(at) = rest.windows(key.len()).position(|w| w == key) {
        rest = &rest[at + key.len()..];
        let value = rest.trim_ascii_start();
        if let Some(value) = value.strip_prefix(b":") {
            if value.trim_ascii_start().first() == Some(&b'"') {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod stream_end_tests {
    use super::*;

    fn chunk(event: Option<&str>, data: &str) -> ResponseChunk {
        ResponseChunk {
            recv_ns: 0,
            first_byte_ns: 0,
            event: event.map(str::to_owned),
            data: data.into(),
        }
    }

    #[test]
    fn end_markers_of_each_api() {
        let ends = [
            chunk(None, "[DONE]"),
            chunk(None, " [DONE] "),
            // BC-06: the finish chunk of a stream that never sends [DONE].
            chunk(
                None,
                r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{}}"#,
            ),
            chunk(
                None,
                r#"{"choices":[{"text":"4","finish_reason" : "length"}]}"#,
            ),
            chunk(Some("message_stop"), r#"{"type":"message_stop"}"#),
            chunk(
                None,
                r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"}}"#,
            ),
            chunk(Some("response.completed"), r#"{"response":{}}"#),
            chunk(None, r#"{"type": "response.completed","response":{}}"#),
            chunk(
                None,
                r#"{"token":{"text":"."},"generated_text":"Hi.","details":null}"#,
            ),
            chunk(None, r#"{"model":"m","done":true}"#),
        ];
        for c in &ends {
            assert!(ends_stream(c), "{c:?}");
        }
        let not_ends = [
            chunk(
                None,
                r#"{"choices":[{"delta":{"content":"x"},"finish_reason":null}]}"#,
            ),
            chunk(None, r#"{"token":{"text":"a"},"generated_text":null}"#),
            chunk(None, r#"{"choices":[],"usage":{"completion_tokens":1}}"#),
            chunk(Some("message"), r#"{"type":"content_block_delta"}"#),
            chunk(None, "DONE"),
            chunk(None, ""),
        ];
        for c in &not_ends {
            assert!(!ends_stream(c), "{c:?}");
        }
        let record = |chunks: Vec<ResponseChunk>| RequestRecord {
            responses: chunks,
            ..RequestRecord::default()
        };
        assert!(record(vec![ends[2].clone(), not_ends[2].clone()]).stream_finished());
        assert!(!record(vec![not_ends[0].clone(), not_ends[2].clone()]).stream_finished());
        assert!(!record(Vec::new()).stream_finished());
    }
}
