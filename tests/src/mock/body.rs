//! Response bodies: whole JSON documents and timed SSE streams.
//!
//! The SSE stream is a hand-written [`Body`] rather than a spawned producer task feeding a
//! channel: hyper's connection task polls it directly, so a token's deadline firing wakes
//! exactly the task that writes it to the socket (one wake-up, not two), and a client that
//! disconnects drops the body and with it every pending deadline.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use serde_json::{json, Value};

use super::timer::{Sleep, TimerHandle};
use super::tokens;
use super::truth::{Truth, TruthLog};
use super::{InFlightGuard, MockStats};

/// The body of every mock response.
pub struct MockBody {
    inner: Inner,
    /// Held until hyper drops the body, i.e. until the response has been fully written or
    /// the client went away; that is what "in flight" means for the stats.
    _guard: Option<InFlightGuard>,
}

enum Inner {
    Full(Option<Bytes>),
    Sse(Box<SseStream>),
    /// The other endpoints' streams (see [`super::endpoints::TimedStream`]).
    Timed(Box<super::endpoints::TimedStream>),
}

impl MockBody {
    pub(crate) fn full(bytes: impl Into<Bytes>) -> Self {
        Self {
            inner: Inner::Full(Some(bytes.into())),
            _guard: None,
        }
    }

    pub(crate) fn sse(stream: SseStream) -> Self {
        Self {
            inner: Inner::Sse(Box::new(stream)),
            _guard: None,
        }
    }

    pub(crate) fn timed(stream: super::endpoints::TimedStream) -> Self {
        Self {
            inner: Inner::Timed(Box::new(stream)),
            _guard: None,
        }
    }

    pub(crate) fn with_guard(mut self, guard: InFlightGuard) -> Self {
        self._guard = Some(guard);
        self
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match &mut self.inner {
            Inner::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Inner::Sse(stream) => stream.poll_event(cx).map(|e| e.map(|b| Ok(Frame::data(b)))),
            Inner::Timed(stream) => stream.poll_event(cx).map(|e| e.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Full(bytes) => bytes.is_none(),
            Inner::Sse(stream) => stream.next == Step::End && stream.pending.is_none(),
            Inner::Timed(stream) => stream.is_done(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            // Exact size: hyper sends Content-Length.
            Inner::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            // Unknown size: hyper uses chunked transfer encoding, one chunk per frame.
            Inner::Sse(_) | Inner::Timed(_) => SizeHint::default(),
        }
    }
}

/// Which OpenAI API a generation request came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiKind {
    Chat,
    Completion,
}

/// Everything needed to produce one generation response, streamed or whole.
#[derive(Clone, Debug)]
pub struct Generation {
    pub kind: ApiKind,
    pub id: String,
    pub created: u64,
    pub model: String,
    pub arrival: Instant,
    pub ttft: Duration,
    pub itl: Duration,
    pub output_tokens: u64,
    pub tokens_per_chunk: u64,
    pub prompt_tokens: u64,
    pub include_usage: bool,
    /// Chat only: the first this many output tokens are reasoning, sent in
    /// `reasoning_field` instead of `content`.
    pub reasoning_tokens: u64,
    /// `reasoning_content` (vLLM, SGLang, DeepSeek) or `reasoning` (newer vLLM, Ollama).
    pub reasoning_field: &'static str,
    /// Added to the token counts `usage` reports, like a server whose tokenizer differs
    /// from the client's.
    pub usage_offset: u64,
    /// What `usage` says the prompt cache did.
    pub cache: PromptCache,
}

/// What the mock's usage reports of a prompt cache (`--cached-tokens`,
/// `--cache-write-tokens`); nothing is cached, the counts are only reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PromptCache {
    /// Prompt tokens read from the cache. `None`: chat and completions usage has no
    /// `prompt_tokens_details`, as vLLM's without `--enable-prompt-tokens-details`
    /// (Responses and Messages usage then reports 0, as those APIs always have the field).
    pub read: Option<u64>,
    /// Prompt tokens written to the cache: Messages only (Anthropic's
    /// `cache_creation_input_tokens`; OpenAI's APIs report no writes).
    pub write: u64,
}

impl PromptCache {
    /// The `(read, write)` counts of a prompt of `prompt` tokens, which has no more to
    /// read or write than its own tokens: reads first, writes from the rest.
    pub fn split(&self, prompt: u64) -> (u64, u64) {
        let read = self.read.unwrap_or(0).min(prompt);
        (read, self.write.min(prompt - read))
    }
}

impl Generation {
    /// When token `index` (0-based) is due: `arrival + ttft + index * itl`. Computed from the
    /// arrival each time, never by adding gaps, so lateness of one token cannot push back the
    /// next.
    pub fn token_deadline(&self, index: u64) -> Instant {
        let gaps = u32::try_from(index).unwrap_or(u32::MAX);
        let offset = self.ttft.saturating_add(self.itl.saturating_mul(gaps));
        // Overflow needs offsets of centuries; sending at once is the only sane fallback.
        self.arrival.checked_add(offset).unwrap_or(self.arrival)
    }

    /// When the whole answer is due: with the last token, or at TTFT if there are none.
    pub fn completion_deadline(&self) -> Instant {
        self.token_deadline(self.output_tokens.saturating_sub(1))
    }

    fn tokens_per_chunk(&self) -> u64 {
        self.tokens_per_chunk.max(1)
    }

    /// Number of token-carrying chunks in the stream.
    pub fn chunk_count(&self) -> u64 {
        self.output_tokens.div_ceil(self.tokens_per_chunk())
    }

    /// Tokens carried by chunk `j`, and when it is due: with its last token.
    pub fn chunk(&self, j: u64) -> (std::ops::Range<u64>, Instant) {
        let tpc = self.tokens_per_chunk();
        let start = j.saturating_mul(tpc).min(self.output_tokens);
        let end = start.saturating_add(tpc).min(self.output_tokens);
        (start..end, self.token_deadline(end.saturating_sub(1)))
    }

    fn usage(&self) -> Value {
        let prompt = self.prompt_tokens.saturating_add(self.usage_offset);
        let completion = self.output_tokens.saturating_add(self.usage_offset);
        let mut usage = json!({
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt.saturating_add(completion),
        });
        let reasoning = self.reasoning();
        if reasoning > 0 {
            usage["completion_tokens_details"] = json!({"reasoning_tokens": reasoning});
        }
        if self.cache.read.is_some() {
            let (read, _) = self.cache.split(prompt);
            usage["prompt_tokens_details"] = json!({"cached_tokens": read});
        }
        usage
    }

    /// Reasoning tokens of this completion (chat only, at most all of them).
    pub fn reasoning(&self) -> u64 {
        match self.kind {
            ApiKind::Chat => self.reasoning_tokens.min(self.output_tokens),
            ApiKind::Completion => 0,
        }
    }

    /// A chat delta or message for tokens `range`: reasoning tokens in the reasoning
    /// field, the rest in `content` (both when the range straddles the boundary).
    fn chat_message(&self, range: std::ops::Range<u64>, role: bool) -> Value {
        let split = self.reasoning().clamp(range.start, range.end);
        let mut message = serde_json::Map::new();
        if role {
            message.insert("role".into(), json!("assistant"));
        }
        if split > range.start {
            message.insert(
                self.reasoning_field.into(),
                json!(tokens::text(range.start..split)),
            );
        }
        if split < range.end || split == range.start {
            message.insert("content".into(), json!(tokens::text(split..range.end)));
        }
        Value::Object(message)
    }

    fn object(&self, streaming: bool) -> &'static str {
        match (self.kind, streaming) {
            (ApiKind::Chat, true) => "chat.completion.chunk",
            (ApiKind::Chat, false) => "chat.completion",
            (ApiKind::Completion, _) => "text_completion",
        }
    }

    /// The non-streaming response document.
    pub fn full_response(&self) -> Value {
        let text = tokens::text(0..self.output_tokens);
        let choice = match self.kind {
            ApiKind::Chat => json!({
                "index": 0,
                "message": self.chat_message(0..self.output_tokens, true),
                "finish_reason": "stop",
            }),
            ApiKind::Completion => json!({
                "index": 0,
                "text": text,
                "logprobs": null,
                "finish_reason": "stop",
            }),
        };
        json!({
            "id": self.id,
            "object": self.object(false),
            "created": self.created,
            "model": self.model,
            "choices": [choice],
            "usage": self.usage(),
        })
    }

    fn chunk_event(&self, choice: Value) -> Bytes {
        sse_data(&json!({
            "id": self.id,
            "object": self.object(true),
            "created": self.created,
            "model": self.model,
            "choices": [choice],
        }))
    }

    fn role_event(&self) -> Bytes {
        self.chunk_event(json!({
            "index": 0,
            "delta": {"role": "assistant", "content": ""},
            "finish_reason": null,
        }))
    }

    fn token_event(&self, range: std::ops::Range<u64>, last: bool) -> Bytes {
        let finish = if last { json!("stop") } else { Value::Null };
        let choice = match self.kind {
            ApiKind::Chat => {
                let delta = self.chat_message(range, false);
                json!({"index": 0, "delta": delta, "finish_reason": finish})
            }
            ApiKind::Completion => {
                let text = tokens::text(range);
                json!({"index": 0, "text": text, "logprobs": null, "finish_reason": finish})
            }
        };
        self.chunk_event(choice)
    }

    /// Only for zero-token completions, which have no token chunk to carry the finish reason.
    fn finish_event(&self) -> Bytes {
        let choice = match self.kind {
            ApiKind::Chat => json!({"index": 0, "delta": {}, "finish_reason": "stop"}),
            ApiKind::Completion => {
                json!({"index": 0, "text": "", "logprobs": null, "finish_reason": "stop"})
            }
        };
        self.chunk_event(choice)
    }

    fn usage_event(&self) -> Bytes {
        sse_data(&json!({
            "id": self.id,
            "object": self.object(true),
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": self.usage(),
        }))
    }
}

fn sse_data(doc: &Value) -> Bytes {
    let mut out = b"data: ".to_vec();
    // Serializing a Value to memory cannot fail (all keys are strings).
    if serde_json::to_writer(&mut out, doc).is_err() {
        out.truncate(6);
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

struct Pending {
    sleep: Sleep,
    due: Instant,
    bytes: Bytes,
    /// Tokens the event carries (0: the finish event of a zero-token completion).
    tokens: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Role,
    Chunk(u64),
    Finish,
    Usage,
    Done,
    End,
}

/// A timed SSE stream of one generation:
///
/// 1. chat only: a role-only chunk (`delta: {role, content: ""}`), sent at arrival; it
///    carries no token;
/// 2. token chunks with `delta.content` (chat) or `text` (completions), chunk `j` carrying
///    tokens `j*tpc..` and due with its last token; the last token chunk carries
///    `finish_reason: "stop"` (there is no separate empty finish chunk, except when zero
///    tokens were asked for);
/// 3. with `stream_options.include_usage`: a `choices: []` chunk with `usage`, right after;
/// 4. `data: [DONE]`.
pub struct SseStream {
    spec: Generation,
    timer: TimerHandle,
    next: Step,
    stats: Arc<MockStats>,
    /// The next event, built before its deadline so that only the write happens after it.
    pending: Option<Pending>,
    /// What was sent, for `--truth-log`; taken when pushed, at `[DONE]` or on drop.
    truth: Option<(Arc<TruthLog>, Truth)>,
}

impl SseStream {
    pub fn new(spec: Generation, timer: TimerHandle, stats: Arc<MockStats>) -> Self {
        let next = match spec.kind {
            ApiKind::Chat => Step::Role,
            ApiKind::Completion => Self::first_token_step(&spec),
        };
        Self {
            spec,
            timer,
            stats,
            next,
            pending: None,
            truth: None,
        }
    }

    /// Records what this stream sends into `log` (see [`super::truth`]).
    pub(crate) fn with_truth(mut self, log: Arc<TruthLog>, x_request_id: Option<String>) -> Self {
        let truth = Truth {
            x_request_id,
            id: self.spec.id.clone(),
            stream: true,
            arrival: self.spec.arrival,
            first_token: None,
            last_token: None,
            tokens: 0,
            chunks: 0,
            complete: false,
        };
        self.truth = Some((log, truth));
        self
    }

    fn push_truth(&mut self, complete: bool) {
        if let Some((log, mut truth)) = self.truth.take() {
            truth.complete = complete;
            log.push(truth);
        }
    }

    fn first_token_step(spec: &Generation) -> Step {
        if spec.output_tokens == 0 {
            Step::Finish
        } else {
            Step::Chunk(0)
        }
    }

    /// Produces the next event and its deadline (`None`: send at once), and advances.
    fn advance(&mut self) -> Option<(Option<Instant>, Bytes)> {
        let spec = &self.spec;
        let after_tokens = if spec.include_usage {
            Step::Usage
        } else {
            Step::Done
        };
        let (due, bytes, next) = match self.next {
            Step::Role => (None, spec.role_event(), Self::first_token_step(spec)),
            Step::Chunk(j) => {
                let (range, due) = spec.chunk(j);
                let last = range.end >= spec.output_tokens;
                let event = spec.token_event(range, last);
                let next = if last {
                    after_tokens
                } else {
                    Step::Chunk(j + 1)
                };
                (Some(due), event, next)
            }
            Step::Finish => (
                Some(spec.token_deadline(0)),
                spec.finish_event(),
                after_tokens,
            ),
            Step::Usage => (None, spec.usage_event(), Step::Done),
            Step::Done => (None, Bytes::from_static(b"data: [DONE]\n\n"), Step::End),
            Step::End => return None,
        };
        self.next = next;
        Some((due, bytes))
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        if self.pending.is_none() {
            let tokens = match self.next {
                Step::Chunk(j) => {
                    let range = self.spec.chunk(j).0;
                    range.end - range.start
                }
                _ => 0,
            };
            match self.advance() {
                None => return Poll::Ready(None),
                Some((None, bytes)) => {
                    if self.next == Step::End {
                        self.push_truth(true);
                    }
                    return Poll::Ready(Some(bytes));
                }
                Some((Some(due), bytes)) => {
                    let sleep = self.timer.sleep_until(due);
                    self.pending = Some(Pending {
                        sleep,
                        due,
                        bytes,
                        tokens,
                    });
                }
            }
        }
        let Some(pending) = self.pending.as_mut() else {
            return Poll::Ready(None);
        };
        ready!(Pin::new(&mut pending.sleep).poll(cx));
        let sent = self.stats.record_lateness(pending.due);
        let tokens = pending.tokens;
        if let Some((_, truth)) = self.truth.as_mut().filter(|_| tokens > 0) {
            truth.sent(tokens, sent);
        }
        Poll::Ready(self.pending.take().map(|p| p.bytes))
    }
}

impl Drop for SseStream {
    /// A client that went away mid-stream still gets its line, marked incomplete.
    fn drop(&mut self) {
        self.push_truth(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(tokens: u64, tpc: u64) -> Generation {
        Generation {
            kind: ApiKind::Chat,
            id: "chatcmpl-mock-1".into(),
            created: 0,
            model: "m".into(),
            arrival: Instant::now(),
            ttft: Duration::from_millis(40),
            itl: Duration::from_millis(4),
            output_tokens: tokens,
            tokens_per_chunk: tpc,
            prompt_tokens: 3,
            include_usage: true,
            reasoning_tokens: 0,
            reasoning_field: "reasoning_content",
            usage_offset: 0,
            cache: PromptCache::default(),
        }
    }

    #[test]
    fn chunk_deadlines_follow_their_last_token() {
        let g = spec(16, 3);
        assert_eq!(g.chunk_count(), 6);
        let ms = |i: Instant| (i - g.arrival).as_millis();
        let (r0, d0) = g.chunk(0);
        assert_eq!((r0, ms(d0)), (0..3, 48));
        let (r4, d4) = g.chunk(4);
        assert_eq!((r4, ms(d4)), (12..15, 96));
        // The last chunk is short and clipped to the last token.
        let (r5, d5) = g.chunk(5);
        assert_eq!((r5, ms(d5)), (15..16, 100));
        assert_eq!(ms(g.completion_deadline()), 100);
        // Its own arrival: a busy machine may take a millisecond between the two specs.
        let empty = spec(0, 1);
        assert_eq!(
            (empty.completion_deadline() - empty.arrival).as_millis(),
            40
        );
    }

    #[test]
    fn event_sequence() {
        let timer = super::super::timer::PreciseTimer::start(Duration::ZERO).expect("timer");
        let mut s = SseStream::new(spec(4, 2), timer.handle(), Arc::default());
        let mut events = Vec::new();
        while let Some((_, b)) = s.advance() {
            events.push(String::from_utf8(b.to_vec()).expect("utf8"));
        }
        assert_eq!(events.len(), 5, "{events:?}");
        assert!(events[0].contains(r#""role":"assistant""#));
        assert!(events[1].contains(r#""content":" the of""#) && events[1].contains("null"));
        assert!(events[2].contains(r#""finish_reason":"stop""#));
        assert!(events[3].contains(r#""choices":[]"#) && events[3].contains(r#""total_tokens":7"#));
        assert_eq!(events[4], "data: [DONE]\n\n");
        assert!(events
            .iter()
            .all(|e| e.starts_with("data: ") && e.ends_with("\n\n")));
    }

    #[test]
    fn cached_tokens_are_reported_as_openai_does() {
        let mut g = spec(2, 1);
        g.prompt_tokens = 32;
        assert!(g.full_response()["usage"]
            .get("prompt_tokens_details")
            .is_none());
        g.cache = PromptCache {
            read: Some(7),
            write: 5,
        };
        let usage = &g.full_response()["usage"];
        assert_eq!(usage["prompt_tokens"], 32);
        assert_eq!(usage["prompt_tokens_details"], json!({"cached_tokens": 7}));
        // No writes in OpenAI's usage; never more read than the prompt has.
        assert!(usage.get("cache_creation_input_tokens").is_none());
        g.cache.read = Some(40);
        let usage = &g.full_response()["usage"];
        assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 32);
        assert_eq!(
            PromptCache {
                read: Some(30),
                write: 5
            }
            .split(32),
            (30, 2)
        );
    }

    #[test]
    fn reasoning_then_content() {
        let timer = super::super::timer::PreciseTimer::start(Duration::ZERO).expect("timer");
        let mut g = spec(5, 2);
        g.reasoning_tokens = 3;
        g.usage_offset = 10;
        let full = g.full_response();
        let message = &full["choices"][0]["message"];
        assert_eq!(message["reasoning_content"], " the of and");
        assert_eq!(message["content"], " to in");
        assert_eq!(full["usage"]["completion_tokens"], 15);
        assert_eq!(full["usage"]["prompt_tokens"], 13);
        assert_eq!(
            full["usage"]["completion_tokens_details"]["reasoning_tokens"],
            3
        );
        let mut s = SseStream::new(g, timer.handle(), Arc::default());
        let mut events = Vec::new();
        while let Some((_, b)) = s.advance() {
            events.push(String::from_utf8(b.to_vec()).expect("utf8"));
        }
        // Role, [the of], [and | to] (straddles), [in], usage, DONE.
        assert_eq!(events.len(), 6, "{events:?}");
        assert!(events[1].contains(r#""reasoning_content":" the of""#));
        let has_content = |e: &str| e.contains(r#"{"content""#) || e.contains(r#","content""#);
        assert!(!has_content(&events[1]), "{}", events[1]);
        assert!(events[2].contains(r#""reasoning_content":" and""#));
        assert!(events[2].contains(r#""content":" to""#));
        assert!(events[3].contains(r#""content":" in""#) && !events[3].contains("reasoning"));
    }

    #[test]
    fn zero_tokens_still_finish() {
        let timer = super::super::timer::PreciseTimer::start(Duration::ZERO).expect("timer");
        let mut g = spec(0, 1);
        g.include_usage = false;
        let mut s = SseStream::new(g, timer.handle(), Arc::default());
        let mut events = Vec::new();
        while let Some((_, b)) = s.advance() {
            events.push(String::from_utf8(b.to_vec()).expect("utf8"));
        }
        assert_eq!(events.len(), 3, "{events:?}");
        assert!(events[1].contains(r#""delta":{}"#));
    }
}
