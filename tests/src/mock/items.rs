//! The two APIs whose answers are typed events around output items: OpenAI's Responses
//! API (`POST /v1/responses`) and Anthropic's Messages API (`POST /v1/messages`), each
//! streamed (`"stream": true`) or whole, with the shapes their servers use.
//!
//! Token timing follows the chat routes: token `k` is due at `arrival + ttft + k * itl`,
//! a delta event carrying tokens `j*tpc ..` is sent when its last token is due, and a
//! whole answer with its last token. With `--reasoning-tokens R` the first R tokens are
//! reasoning, sent in an item (block) of their own before the text:
//!
//! * Responses: `response.created`, `response.in_progress`; a `reasoning` item whose
//!   tokens stream as `response.reasoning_text.delta` (as vLLM streams them); a `message`
//!   item: `response.output_item.added`, `response.content_part.added`,
//!   `response.output_text.delta` per chunk, `response.output_text.done` (the whole
//!   text again), `response.content_part.done`, `response.output_item.done`; then
//!   `response.completed` with `usage` (`input_tokens`, `output_tokens`,
//!   `output_tokens_details.reasoning_tokens`, `total_tokens`). A whole answer is the
//!   response object, reasoning as a `summary_text`. `max_output_tokens` sets the length.
//! * Messages: `message_start` (usage with `input_tokens`, and `output_tokens: 1` as
//!   Anthropic sends it), `ping`, a `thinking` block (`thinking_delta`s, then a
//!   `signature_delta`), a `text` block (`text_delta`s), `message_delta` (`stop_reason`,
//!   and usage with `output_tokens` only, so a client must keep the input count of
//!   `message_start`), `message_stop`. `max_tokens` is required, as is the
//!   `anthropic-version` header; errors have Anthropic's shape.
//!
//! Usage counts, as on the chat routes, whitespace-separated words of the prompt
//! (`instructions` / `system` included), plus `--usage-token-offset`. `--cached-tokens`
//! is reported as `input_tokens_details.cached_tokens` (Responses) or
//! `cache_read_input_tokens` (Messages, with `--cache-write-tokens` as
//! `cache_creation_input_tokens`, both out of `input_tokens` as Anthropic counts).

use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Map, Value};

use super::body::{ApiKind, Generation, MockBody};
use super::endpoints::{sse_response, TimedStream};
use super::handlers::{
    json_response, model_of, optional_bool, read_json, unix_now, ApiError, ApiResult, AppState,
    MAX_OUTPUT_TOKENS,
};
use super::tokens;

/// Which API a stream speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    Responses,
    Messages,
}

/// One event of an item stream, before its deadline is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// An event that carries no token: sent with the last token before it.
    Frame(Frame),
    /// Delta `j` of the reasoning or the text.
    Delta { reasoning: bool, j: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Frame {
    Created,
    InProgress,
    ItemAdded { reasoning: bool },
    PartAdded,
    ReasoningDone,
    TextDone,
    PartDone,
    ItemDone { reasoning: bool },
    Completed,
    MessageStart,
    Ping,
    BlockStart { reasoning: bool },
    Signature,
    BlockStop { reasoning: bool },
    MessageDelta,
    MessageStop,
}

/// A stream of typed events for one generation (see the module documentation); its
/// events are made one at a time, so a long answer costs no memory up front.
#[derive(Debug)]
pub struct ItemStream {
    api: Api,
    spec: Generation,
    /// The stream's shape: frames and runs of deltas (a run is one entry per delta).
    steps: Vec<(Step, u64)>,
}

impl ItemStream {
    pub fn new(api: Api, spec: Generation) -> Self {
        let reasoning = spec.reasoning();
        let (r_chunks, t_chunks) = chunk_counts(&spec);
        let mut steps: Vec<(Step, u64)> = Vec::new();
        let mut frame = |f| steps.push((Step::Frame(f), 1));
        match api {
            Api::Responses => {
                frame(Frame::Created);
                frame(Frame::InProgress);
                if reasoning > 0 {
                    frame(Frame::ItemAdded { reasoning: true });
                    steps.push((
                        Step::Delta {
                            reasoning: true,
                            j: 0,
                        },
                        r_chunks,
                    ));
                    steps.push((Step::Frame(Frame::ReasoningDone), 1));
                    steps.push((Step::Frame(Frame::ItemDone { reasoning: true }), 1));
                }
                let mut frame = |f| steps.push((Step::Frame(f), 1));
                frame(Frame::ItemAdded { reasoning: false });
                frame(Frame::PartAdded);
                steps.push((
                    Step::Delta {
                        reasoning: false,
                        j: 0,
                    },
                    t_chunks,
                ));
                for f in [
                    Frame::TextDone,
                    Frame::PartDone,
                    Frame::ItemDone { reasoning: false },
                    Frame::Completed,
                ] {
                    steps.push((Step::Frame(f), 1));
                }
            }
            Api::Messages => {
                frame(Frame::MessageStart);
                frame(Frame::Ping);
                if reasoning > 0 {
                    frame(Frame::BlockStart { reasoning: true });
                    steps.push((
                        Step::Delta {
                            reasoning: true,
                            j: 0,
                        },
                        r_chunks,
                    ));
                    steps.push((Step::Frame(Frame::Signature), 1));
                    steps.push((Step::Frame(Frame::BlockStop { reasoning: true }), 1));
                }
                steps.push((Step::Frame(Frame::BlockStart { reasoning: false }), 1));
                steps.push((
                    Step::Delta {
                        reasoning: false,
                        j: 0,
                    },
                    t_chunks,
                ));
                for f in [
                    Frame::BlockStop { reasoning: false },
                    Frame::MessageDelta,
                    Frame::MessageStop,
                ] {
                    steps.push((Step::Frame(f), 1));
                }
            }
        }
        steps.retain(|(_, n)| *n > 0);
        ItemStream { api, spec, steps }
    }

    /// Events in the stream.
    pub fn steps(&self) -> u64 {
        self.steps.iter().map(|(_, n)| n).sum()
    }

    /// Event `index` and its deadline.
    pub fn event(&self, index: u64) -> (Instant, Bytes) {
        let mut rest = index;
        // Tokens sent before the step: a frame goes with the last of them.
        let mut before = 0u64;
        for &(step, n) in &self.steps {
            let tokens = match step {
                Step::Delta { reasoning, .. } => self.run_tokens(reasoning),
                Step::Frame(_) => 0,
            };
            if rest < n {
                let step = match step {
                    Step::Delta { reasoning, .. } => Step::Delta { reasoning, j: rest },
                    frame => frame,
                };
                return self.render(step, before);
            }
            rest -= n;
            before += tokens;
        }
        // Past the end: nothing is asked there, but a frame at the end is harmless.
        self.render(Step::Frame(Frame::MessageStop), before)
    }

    /// Tokens of the reasoning run or of the text run.
    fn run_tokens(&self, reasoning: bool) -> u64 {
        let r = self.spec.reasoning();
        if reasoning {
            r
        } else {
            self.spec.output_tokens - r
        }
    }

    /// Tokens of delta `j` of a run, and when it is due.
    fn delta(&self, reasoning: bool, j: u64) -> (std::ops::Range<u64>, Instant) {
        let tpc = self.spec.tokens_per_chunk.max(1);
        let (start, end) = if reasoning {
            (0, self.spec.reasoning())
        } else {
            (self.spec.reasoning(), self.spec.output_tokens)
        };
        let first = start.saturating_add(j.saturating_mul(tpc)).min(end);
        let last = first.saturating_add(tpc).min(end);
        (
            first..last,
            self.spec.token_deadline(last.saturating_sub(1)),
        )
    }

    fn render(&self, step: Step, tokens_before: u64) -> (Instant, Bytes) {
        let due = if tokens_before == 0 {
            self.spec.arrival
        } else {
            self.spec.token_deadline(tokens_before - 1)
        };
        match (self.api, step) {
            (_, Step::Delta { reasoning, j }) => {
                let (range, due) = self.delta(reasoning, j);
                (due, self.delta_event(reasoning, &tokens::text(range)))
            }
            // The end comes with the last token, or at TTFT when there is none.
            (_, Step::Frame(f @ (Frame::Completed | Frame::MessageDelta))) => {
                (self.spec.completion_deadline(), self.frame(f))
            }
            (_, Step::Frame(f)) => (due, self.frame(f)),
        }
    }

    fn delta_event(&self, reasoning: bool, text: &str) -> Bytes {
        match self.api {
            Api::Responses => {
                let (kind, index) = if reasoning {
                    ("response.reasoning_text.delta", 0)
                } else {
                    ("response.output_text.delta", self.text_index())
                };
                let item = if reasoning {
                    self.reasoning_id()
                } else {
                    self.message_id()
                };
                event(
                    kind,
                    &json!({"type": kind, "item_id": item, "output_index": index,
                            "content_index": 0, "delta": text}),
                )
            }
            Api::Messages => {
                let delta = if reasoning {
                    json!({"type": "thinking_delta", "thinking": text})
                } else {
                    json!({"type": "text_delta", "text": text})
                };
                let index = if reasoning { 0 } else { self.text_index() };
                event(
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": index, "delta": delta}),
                )
            }
        }
    }

    /// Where the text item (block) is: after the reasoning one, when there is one.
    fn text_index(&self) -> u64 {
        u64::from(self.spec.reasoning() > 0)
    }

    fn reasoning_id(&self) -> String {
        format!("rs_{}", self.spec.id)
    }

    fn message_id(&self) -> String {
        format!("msg_{}", self.spec.id)
    }

    fn frame(&self, frame: Frame) -> Bytes {
        let spec = &self.spec;
        let text_index = self.text_index();
        let (kind, doc) = match frame {
            Frame::Created | Frame::InProgress => {
                let kind = if frame == Frame::Created {
                    "response.created"
                } else {
                    "response.in_progress"
                };
                let response = responses_object(spec, "in_progress", Vec::new(), Value::Null);
                (kind, json!({"type": kind, "response": response}))
            }
            Frame::ItemAdded { reasoning } => {
                let item = if reasoning {
                    json!({"id": self.reasoning_id(), "type": "reasoning", "summary": []})
                } else {
                    json!({"id": self.message_id(), "type": "message", "status": "in_progress",
                           "role": "assistant", "content": []})
                };
                let index = if reasoning { 0 } else { text_index };
                let kind = "response.output_item.added";
                (
                    kind,
                    json!({"type": kind, "output_index": index, "item": item}),
                )
            }
            Frame::PartAdded | Frame::PartDone => {
                let (kind, text) = if frame == Frame::PartAdded {
                    ("response.content_part.added", String::new())
                } else {
                    ("response.content_part.done", text_of(spec))
                };
                let part = json!({"type": "output_text", "text": text, "annotations": []});
                (
                    kind,
                    json!({"type": kind, "item_id": self.message_id(), "output_index": text_index,
                           "content_index": 0, "part": part}),
                )
            }
            Frame::ReasoningDone => {
                let kind = "response.reasoning_text.done";
                (
                    kind,
                    json!({"type": kind, "item_id": self.reasoning_id(), "output_index": 0,
                           "content_index": 0, "text": reasoning_of(spec)}),
                )
            }
            Frame::TextDone => {
                let kind = "response.output_text.done";
                (
                    kind,
                    json!({"type": kind, "item_id": self.message_id(), "output_index": text_index,
                           "content_index": 0, "text": text_of(spec)}),
                )
            }
            Frame::ItemDone { reasoning } => {
                let items = output_items(spec);
                let index = if reasoning { 0 } else { text_index };
                let item = items
                    .get(usize::try_from(index).unwrap_or(usize::MAX))
                    .cloned()
                    .unwrap_or(Value::Null);
                let kind = "response.output_item.done";
                (
                    kind,
                    json!({"type": kind, "output_index": index, "item": item}),
                )
            }
            Frame::Completed => {
                let response =
                    responses_object(spec, "completed", output_items(spec), responses_usage(spec));
                let kind = "response.completed";
                (kind, json!({"type": kind, "response": response}))
            }
            Frame::MessageStart => {
                let mut usage = messages_usage(spec);
                // Anthropic reports a first output token here, the total in message_delta.
                usage["output_tokens"] = json!(1);
                let message = json!({
                    "id": self.message_id(), "type": "message", "role": "assistant",
                    "content": [], "model": spec.model, "stop_reason": null,
                    "stop_sequence": null, "usage": usage,
                });
                let kind = "message_start";
                (kind, json!({"type": kind, "message": message}))
            }
            Frame::Ping => ("ping", json!({"type": "ping"})),
            Frame::BlockStart { reasoning } => {
                let (index, block) = if reasoning {
                    (
                        0,
                        json!({"type": "thinking", "thinking": "", "signature": ""}),
                    )
                } else {
                    (text_index, json!({"type": "text", "text": ""}))
                };
                let kind = "content_block_start";
                (
                    kind,
                    json!({"type": kind, "index": index, "content_block": block}),
                )
            }
            Frame::Signature => {
                let delta = json!({"type": "signature_delta", "signature": SIGNATURE});
                let kind = "content_block_delta";
                (kind, json!({"type": kind, "index": 0, "delta": delta}))
            }
            Frame::BlockStop { reasoning } => {
                let index = if reasoning { 0 } else { text_index };
                let kind = "content_block_stop";
                (kind, json!({"type": kind, "index": index}))
            }
            Frame::MessageDelta => {
                let output = spec.output_tokens.saturating_add(spec.usage_offset);
                let kind = "message_delta";
                (
                    kind,
                    json!({"type": kind,
                           "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                           "usage": {"output_tokens": output}}),
                )
            }
            Frame::MessageStop => ("message_stop", json!({"type": "message_stop"})),
        };
        event(kind, &doc)
    }
}

/// The thinking block's signature (opaque to clients).
const SIGNATURE: &str = "bW9jay1zaWduYXR1cmU=";

/// Deltas of the reasoning run and of the text run.
fn chunk_counts(spec: &Generation) -> (u64, u64) {
    let tpc = spec.tokens_per_chunk.max(1);
    let r = spec.reasoning();
    (r.div_ceil(tpc), (spec.output_tokens - r).div_ceil(tpc))
}

fn reasoning_of(spec: &Generation) -> String {
    tokens::text(0..spec.reasoning())
}

fn text_of(spec: &Generation) -> String {
    tokens::text(spec.reasoning()..spec.output_tokens)
}

/// `event: KIND` and the document as its data.
fn event(kind: &str, doc: &Value) -> Bytes {
    let mut out = format!("event: {kind}\ndata: ").into_bytes();
    // Serializing a Value to memory cannot fail.
    let _ = serde_json::to_writer(&mut out, doc);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

fn responses_usage(spec: &Generation) -> Value {
    let input = spec.prompt_tokens.saturating_add(spec.usage_offset);
    let output = spec.output_tokens.saturating_add(spec.usage_offset);
    let (cached, _) = spec.cache.split(input);
    json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": spec.reasoning()},
        "total_tokens": input.saturating_add(output),
    })
}

/// Anthropic counts cache reads and writes apart from `input_tokens`, which is only the
/// rest of the prompt.
fn messages_usage(spec: &Generation) -> Value {
    let prompt = spec.prompt_tokens.saturating_add(spec.usage_offset);
    let (read, write) = spec.cache.split(prompt);
    json!({
        "input_tokens": prompt - read - write,
        "cache_creation_input_tokens": write,
        "cache_read_input_tokens": read,
        "output_tokens": spec.output_tokens.saturating_add(spec.usage_offset),
    })
}

/// A response's finished `output` items: the reasoning (as a summary, which is where a
/// whole response carries it) and the message.
fn output_items(spec: &Generation) -> Vec<Value> {
    let mut items = Vec::new();
    if spec.reasoning() > 0 {
        items.push(json!({
            "id": format!("rs_{}", spec.id), "type": "reasoning",
            "summary": [{"type": "summary_text", "text": reasoning_of(spec)}],
        }));
    }
    items.push(json!({
        "id": format!("msg_{}", spec.id), "type": "message", "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text_of(spec), "annotations": []}],
    }));
    items
}

fn responses_object(spec: &Generation, status: &str, output: Vec<Value>, usage: Value) -> Value {
    json!({
        "id": format!("resp_{}", spec.id), "object": "response", "created_at": spec.created,
        "status": status, "error": null, "model": spec.model, "output": output,
        "usage": usage,
    })
}

/// The whole answer of a request that does not stream.
pub fn whole_response(api: Api, spec: &Generation) -> Value {
    match api {
        Api::Responses => {
            responses_object(spec, "completed", output_items(spec), responses_usage(spec))
        }
        Api::Messages => {
            let mut content = Vec::new();
            if spec.reasoning() > 0 {
                content.push(json!({"type": "thinking", "thinking": reasoning_of(spec),
                                    "signature": SIGNATURE}));
            }
            content.push(json!({"type": "text", "text": text_of(spec)}));
            json!({
                "id": format!("msg_{}", spec.id), "type": "message", "role": "assistant",
                "model": spec.model, "content": content, "stop_reason": "end_turn",
                "stop_sequence": null, "usage": messages_usage(spec),
            })
        }
    }
}

// -------------------------------------------------------------------------- requests

/// Words of a string, or of the `text` of every part of a list.
fn words(content: &Value) -> u64 {
    match content {
        Value::String(s) => tokens::count_words(s),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .map(tokens::count_words)
            .sum(),
        _ => 0,
    }
}

/// An optional non-negative integer field.
fn count(body: &Map<String, Value>, key: &str) -> Result<Option<u64>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| ApiError::invalid(format!("'{key}' must be a non-negative integer"))),
    }
}

/// The Responses API's parts must carry what a model would decode.
fn check_responses_part(part: &Value) -> Result<(), ApiError> {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).is_some_and(|s| !s.is_empty());
    match part.get("type").and_then(Value::as_str) {
        Some("input_text" | "output_text") if part.get("text").is_some_and(Value::is_string) => {
            Ok(())
        }
        Some("input_image") if text(part.get("image_url")) || text(part.get("file_id")) => Ok(()),
        Some("input_audio")
            if text(part.get("input_audio").and_then(|a| a.get("data")))
                && text(part.get("input_audio").and_then(|a| a.get("format"))) =>
        {
            Ok(())
        }
        other => Err(ApiError::invalid(format!(
            "invalid input content part of type {other:?}"
        ))),
    }
}

/// Prompt words of a Responses request, checking its input.
fn responses_prompt(body: &Map<String, Value>) -> Result<u64, ApiError> {
    let mut total = match body.get("instructions") {
        None | Some(Value::Null) => 0,
        Some(Value::String(s)) => tokens::count_words(s),
        Some(_) => return Err(ApiError::invalid("'instructions' must be a string")),
    };
    match body.get("input") {
        Some(Value::String(s)) => total += tokens::count_words(s),
        Some(Value::Array(items)) => {
            for item in items {
                if !item.is_object() {
                    return Err(ApiError::invalid("every input item must be an object"));
                }
                let message = matches!(
                    item.get("type").and_then(Value::as_str),
                    None | Some("message")
                );
                if !message {
                    continue;
                }
                let content = item.get("content").unwrap_or(&Value::Null);
                match content {
                    Value::String(_) => {}
                    Value::Array(parts) => {
                        for part in parts {
                            check_responses_part(part)?;
                        }
                    }
                    _ => {
                        return Err(ApiError::invalid(
                            "a message item's content must be a string or a list of parts",
                        ))
                    }
                }
                total += words(content);
            }
        }
        _ => {
            return Err(ApiError::invalid(
                "'input' must be a string or a list of items",
            ))
        }
    }
    Ok(total)
}

/// Anthropic's checks on `messages` and `system`; the prompt's words.
fn messages_prompt(body: &Map<String, Value>) -> Result<u64, ApiError> {
    let mut total = match body.get("system") {
        None | Some(Value::Null) => 0,
        Some(system @ (Value::String(_) | Value::Array(_))) => words(system),
        Some(_) => {
            return Err(ApiError::invalid(
                "system: must be a string or a list of blocks",
            ))
        }
    };
    let Some(Value::Array(messages)) = body.get("messages").filter(|m| m.is_array()) else {
        return Err(ApiError::invalid("messages: Field required"));
    };
    if messages.is_empty() {
        return Err(ApiError::invalid(
            "messages: at least one message is required",
        ));
    }
    for message in messages {
        match message.get("role").and_then(Value::as_str) {
            Some("user" | "assistant") => {}
            role => {
                return Err(ApiError::invalid(format!(
                    "messages: Unexpected role {role:?}; the system prompt goes in `system`"
                )))
            }
        }
        let content = message.get("content").unwrap_or(&Value::Null);
        match content {
            Value::String(_) => {}
            Value::Array(blocks) => {
                for block in blocks {
                    check_anthropic_block(block)?;
                }
            }
            _ => {
                return Err(ApiError::invalid(
                    "messages: content must be a string or blocks",
                ))
            }
        }
        total += words(content);
    }
    Ok(total)
}

fn check_anthropic_block(block: &Value) -> Result<(), ApiError> {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).is_some_and(|s| !s.is_empty());
    match block.get("type").and_then(Value::as_str) {
        Some("text") if block.get("text").is_some_and(Value::is_string) => Ok(()),
        Some("image") => {
            let source = block.get("source");
            let ok = match source.and_then(|s| s.get("type")).and_then(Value::as_str) {
                Some("base64") => {
                    text(source.and_then(|s| s.get("media_type")))
                        && text(source.and_then(|s| s.get("data")))
                }
                Some("url") => text(source.and_then(|s| s.get("url"))),
                _ => false,
            };
            if ok {
                Ok(())
            } else {
                Err(ApiError::invalid(
                    "an image block needs a base64 source (media_type, data) or a url source",
                ))
            }
        }
        Some("tool_use" | "tool_result" | "thinking" | "redacted_thinking" | "document") => Ok(()),
        other => Err(ApiError::invalid(format!(
            "invalid content block type {other:?}"
        ))),
    }
}

fn generation(
    state: &AppState,
    arrival: Instant,
    model: String,
    tokens: u64,
    prompt: u64,
) -> Generation {
    let cfg = &state.cfg;
    Generation {
        // Chat's: the first `reasoning_tokens` are reasoning.
        kind: ApiKind::Chat,
        id: format!("mock{}", state.next_id.fetch_add(1, Ordering::Relaxed)),
        created: unix_now(),
        model,
        arrival,
        ttft: cfg.ttft,
        itl: cfg.itl,
        output_tokens: tokens,
        tokens_per_chunk: cfg.tokens_per_chunk,
        prompt_tokens: prompt,
        include_usage: false,
        reasoning_tokens: cfg.reasoning_tokens,
        reasoning_field: "reasoning_content",
        usage_offset: cfg.usage_token_offset,
        cache: cfg.prompt_cache,
    }
}

/// The answer: a stream, or the whole document at its deadline.
async fn answer(state: &AppState, api: Api, spec: Generation, stream: bool) -> ApiResult {
    if stream {
        let items = ItemStream::new(api, spec);
        return Ok(sse_response(TimedStream::items(
            items,
            &state.timer,
            &state.stats,
        )));
    }
    // Built before the wait so that only the write happens after the deadline.
    let resp = json_response(StatusCode::OK, &whole_response(api, &spec));
    let due = spec.completion_deadline();
    state.timer.sleep_until(due).await;
    state.stats.record_lateness(due);
    Ok(resp)
}

fn output_tokens(state: &AppState, requested: Option<u64>) -> Result<u64, ApiError> {
    let tokens = match requested {
        Some(n) if !state.cfg.ignore_max_tokens => n,
        _ => state.cfg.output_tokens,
    };
    if tokens > MAX_OUTPUT_TOKENS {
        return Err(ApiError::invalid(format!(
            "max tokens {tokens} exceeds the mock's limit of {MAX_OUTPUT_TOKENS}"
        )));
    }
    Ok(tokens)
}

/// `POST /v1/responses`.
pub(super) async fn responses(
    state: &AppState,
    req: Request<Incoming>,
    arrival: Instant,
) -> ApiResult {
    let body = read_json(req).await?;
    let prompt = responses_prompt(&body)?;
    let stream = optional_bool(&body, "stream")?;
    if !matches!(
        body.get("stream_options"),
        None | Some(Value::Null | Value::Object(_))
    ) {
        return Err(ApiError::invalid("'stream_options' must be an object"));
    }
    let tokens = output_tokens(state, count(&body, "max_output_tokens")?)?;
    let spec = generation(state, arrival, model_of(&body, &state.cfg), tokens, prompt);
    answer(state, Api::Responses, spec, stream).await
}

/// `POST /v1/messages`: every refusal in Anthropic's error shape.
pub(super) async fn messages(
    state: &AppState,
    req: Request<Incoming>,
    arrival: Instant,
) -> ApiResult {
    match messages_checked(state, req, arrival).await {
        Ok(resp) => Ok(resp),
        Err(e) => Ok(anthropic_error(e)),
    }
}

async fn messages_checked(state: &AppState, req: Request<Incoming>, arrival: Instant) -> ApiResult {
    if req.headers().get("anthropic-version").is_none() {
        return Err(ApiError::invalid("anthropic-version: header is required"));
    }
    let body = read_json(req).await?;
    let Some(Value::String(model)) = body.get("model") else {
        return Err(ApiError::invalid("model: Field required"));
    };
    let model = model.clone();
    let requested = match count(&body, "max_tokens")? {
        Some(n) if n >= 1 => n,
        Some(_) => return Err(ApiError::invalid("max_tokens: must be at least 1")),
        None => return Err(ApiError::invalid("max_tokens: Field required")),
    };
    let prompt = messages_prompt(&body)?;
    let stream = optional_bool(&body, "stream")?;
    let tokens = output_tokens(state, Some(requested))?;
    let spec = generation(state, arrival, model, tokens, prompt);
    answer(state, Api::Messages, spec, stream).await
}

/// `{"type":"error","error":{"type","message"}}`, as Anthropic answers a refusal.
fn anthropic_error(e: ApiError) -> Response<MockBody> {
    let doc = json!({"type": "error", "error": {"type": e.kind, "message": e.message}});
    let mut resp = json_response(e.status, &doc);
    resp.headers_mut()
        .insert("request-id", HeaderValue::from_static("req_mock"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::body::PromptCache;
    use std::time::Duration;

    fn spec(tokens: u64, reasoning: u64, tpc: u64) -> Generation {
        Generation {
            kind: ApiKind::Chat,
            id: "mock1".into(),
            created: 0,
            model: "m".into(),
            arrival: Instant::now(),
            ttft: Duration::from_millis(10),
            itl: Duration::from_millis(2),
            output_tokens: tokens,
            tokens_per_chunk: tpc,
            prompt_tokens: 4,
            include_usage: false,
            reasoning_tokens: reasoning,
            reasoning_field: "reasoning_content",
            usage_offset: 0,
            cache: PromptCache::default(),
        }
    }

    fn events(stream: &ItemStream) -> Vec<(u128, Value)> {
        let arrival = stream.spec.arrival;
        (0..stream.steps())
            .map(|i| {
                let (due, bytes) = stream.event(i);
                let text = String::from_utf8(bytes.to_vec()).expect("utf8");
                let (head, data) = text.split_once("\ndata: ").expect("an event and its data");
                let kind = head.strip_prefix("event: ").expect("event line");
                let doc: Value = serde_json::from_str(data.trim_end()).expect("json");
                assert_eq!(doc["type"], kind, "{text}");
                assert!(text.ends_with("\n\n"));
                ((due - arrival).as_millis(), doc)
            })
            .collect()
    }

    fn kinds(events: &[(u128, Value)]) -> Vec<String> {
        events
            .iter()
            .map(|(_, d)| d["type"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    #[test]
    fn responses_stream_reasoning_then_text() {
        let stream = ItemStream::new(Api::Responses, spec(5, 2, 2));
        let events = events(&stream);
        assert_eq!(
            kinds(&events),
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.reasoning_text.delta",
                "response.reasoning_text.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        // Deltas at their last token's deadline; frames with the token before them.
        let at: Vec<u128> = events.iter().map(|(t, _)| *t).collect();
        assert_eq!(at, [0, 0, 0, 12, 12, 12, 12, 12, 16, 18, 18, 18, 18, 18]);
        assert_eq!(events[3].1["delta"], " the of");
        assert_eq!(events[8].1["delta"], " and to");
        assert_eq!(events[8].1["output_index"], 1);
        assert_eq!(events[9].1["delta"], " in");
        assert_eq!(events[10].1["text"], " and to in");
        let usage = &events[13].1["response"]["usage"];
        assert_eq!(usage["input_tokens"], 4);
        assert_eq!(usage["output_tokens"], 5);
        assert_eq!(usage["output_tokens_details"]["reasoning_tokens"], 2);
        assert_eq!(usage["total_tokens"], 9);
        assert_eq!(
            events[13].1["response"]["output"][0]["summary"][0]["text"],
            " the of"
        );
    }

    #[test]
    fn messages_stream_thinking_then_text() {
        let stream = ItemStream::new(Api::Messages, spec(3, 1, 1));
        let events = events(&stream);
        assert_eq!(
            kinds(&events),
            [
                "message_start",
                "ping",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
            ]
        );
        let at: Vec<u128> = events.iter().map(|(t, _)| *t).collect();
        assert_eq!(at, [0, 0, 0, 10, 10, 10, 10, 12, 14, 14, 14, 14]);
        assert_eq!(events[0].1["message"]["usage"]["input_tokens"], 4);
        assert_eq!(events[0].1["message"]["usage"]["output_tokens"], 1);
        assert_eq!(events[3].1["delta"]["thinking"], " the");
        assert_eq!(events[4].1["delta"]["type"], "signature_delta");
        assert_eq!(events[7].1["index"], 1);
        assert_eq!(events[7].1["delta"]["text"], " of");
        assert_eq!(events[10].1["usage"], json!({"output_tokens": 3}));
    }

    #[test]
    fn prompt_cache_counts_in_each_apis_shape() {
        let mut g = spec(2, 0, 1);
        g.prompt_tokens = 32;
        g.cache = PromptCache {
            read: Some(7),
            write: 5,
        };
        let r = whole_response(Api::Responses, &g);
        assert_eq!(r["usage"]["input_tokens"], 32);
        assert_eq!(r["usage"]["input_tokens_details"]["cached_tokens"], 7);
        // Anthropic's input count leaves out the cache's reads and writes.
        let m = whole_response(Api::Messages, &g);
        assert_eq!(m["usage"]["input_tokens"], 20);
        assert_eq!(m["usage"]["cache_read_input_tokens"], 7);
        assert_eq!(m["usage"]["cache_creation_input_tokens"], 5);
        let stream = events(&ItemStream::new(Api::Messages, g.clone()));
        assert_eq!(
            stream[0].1["message"]["usage"]["cache_read_input_tokens"],
            7
        );
        g.cache = PromptCache::default();
        let r = whole_response(Api::Responses, &g);
        assert_eq!(r["usage"]["input_tokens_details"]["cached_tokens"], 0);
        let m = whole_response(Api::Messages, &g);
        assert_eq!(m["usage"]["input_tokens"], 32);
        assert_eq!(m["usage"]["cache_read_input_tokens"], 0);
    }

    #[test]
    fn no_reasoning_and_no_tokens() {
        let plain = events(&ItemStream::new(Api::Messages, spec(2, 0, 1)));
        assert_eq!(plain.len(), 8);
        assert_eq!(plain[3].1["index"], 0);
        let empty = events(&ItemStream::new(Api::Responses, spec(0, 0, 1)));
        assert!(!kinds(&empty).contains(&"response.output_text.delta".to_owned()));
        // The end comes at TTFT.
        assert_eq!(empty.last().map(|(t, _)| *t), Some(10));
    }

    #[test]
    fn whole_answers() {
        let r = whole_response(Api::Responses, &spec(3, 1, 1));
        assert_eq!(r["object"], "response");
        assert_eq!(r["output"][0]["summary"][0]["text"], " the");
        assert_eq!(r["output"][1]["content"][0]["text"], " of and");
        let m = whole_response(Api::Messages, &spec(3, 1, 1));
        assert_eq!(m["content"][0]["thinking"], " the");
        assert_eq!(m["content"][1]["text"], " of and");
        assert_eq!(m["usage"]["output_tokens"], 3);
    }

    #[test]
    fn requests_are_checked_as_the_apis_do() {
        let obj = |v: Value| v.as_object().cloned().unwrap_or_default();
        let ok = obj(json!({"instructions": "be brief", "input": [
            {"type": "message", "role": "user", "content": "one two"},
            {"role": "user", "content": [{"type": "input_text", "text": "three"},
                                         {"type": "input_image", "image_url": "data:x"}]},
            {"type": "function_call", "name": "f", "arguments": "{}"},
        ]}));
        assert_eq!(responses_prompt(&ok).ok(), Some(5));
        let bad_image = obj(json!({"input": [{"role": "user", "content": [
            {"type": "input_image", "image_url": {"url": "x"}}]}]}));
        assert!(responses_prompt(&bad_image).is_err());
        assert!(responses_prompt(&obj(json!({"input": 5}))).is_err());
        let ok = obj(json!({"system": "be brief", "messages": [
            {"role": "user", "content": [{"type": "text", "text": "a b"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                              "data": "AA"}}]},
            {"role": "assistant", "content": "c"},
        ]}));
        assert_eq!(messages_prompt(&ok).ok(), Some(5));
        let system_role = obj(json!({"messages": [{"role": "system", "content": "x"}]}));
        assert!(messages_prompt(&system_role).is_err());
        let chat_image = obj(json!({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "x"}}]}]}));
        assert!(messages_prompt(&chat_image).is_err());
    }
}
