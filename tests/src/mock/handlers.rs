//! Routing, request validation and the non-streaming responses.

use std::convert::Infallible;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Map, Value};
use tracing::debug;

use super::body::{ApiKind, Generation, MockBody, SseStream};
use super::timer::TimerHandle;
use super::tokens;
use super::truth::Truth;
use super::{MockConfig, MockStats};

/// Request bodies above this are refused with 413, so a hostile client cannot make the
/// mock buffer without bound.
pub const MAX_BODY_BYTES: usize = 64 << 20;

/// Completions longer than this are refused with 400: the whole text is built in memory for
/// non-streaming responses, and a typo'd `max_tokens` should not exhaust it.
pub const MAX_OUTPUT_TOKENS: u64 = 1 << 20;

/// Number of floats in each mock embedding.
pub const EMBEDDING_DIM: usize = 8;

pub(crate) struct AppState {
    pub cfg: Arc<MockConfig>,
    pub stats: Arc<MockStats>,
    pub timer: TimerHandle,
    pub next_id: AtomicU64,
    /// Video generation jobs (see [`super::endpoints`]).
    pub videos: super::endpoints::VideoJobs,
}

/// An OpenAI-style error, rendered as `{"error":{"message","type","code"}}`.
#[derive(Debug)]
pub(super) struct ApiError {
    pub(super) status: StatusCode,
    pub(super) kind: &'static str,
    pub(super) message: String,
}

impl ApiError {
    pub(super) fn invalid(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid_request_error",
            message: message.into(),
        }
    }

    fn into_response(self) -> Response<MockBody> {
        let doc = json!({"error": {
            "message": self.message,
            "type": self.kind,
            "code": self.status.as_u16(),
        }});
        json_response(self.status, &doc)
    }
}

pub(super) type ApiResult = Result<Response<MockBody>, ApiError>;

pub(super) fn json_response(status: StatusCode, doc: &Value) -> Response<MockBody> {
    // Serializing a Value to memory cannot fail.
    let bytes = serde_json::to_vec(doc).unwrap_or_default();
    let mut resp = Response::new(MockBody::full(bytes));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// The hyper service: never fails, every problem becomes an HTTP error response.
///
/// `arrival` anchors every deadline of this request: the kernel's receive time of the
/// request's head where the connection has one (see `rxstamp`), else the time hyper handed
/// the request over. Either way it comes before the body is read, so a slow upload counts
/// against the server as it would on a real one.
pub(crate) async fn handle(
    state: Arc<AppState>,
    req: Request<Incoming>,
    arrival: Instant,
) -> Result<Response<MockBody>, Infallible> {
    let guard = state.stats.enter();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    debug!(%method, %path, "request");

    let result = match (&method, path.as_str()) {
        (&Method::POST, "/v1/chat/completions") => {
            generate(&state, req, arrival, ApiKind::Chat).await
        }
        (&Method::POST, "/v1/completions") => {
            generate(&state, req, arrival, ApiKind::Completion).await
        }
        (&Method::POST, "/v1/embeddings") => embeddings(&state, req, arrival).await,
        (&Method::POST, "/v1/responses") => super::items::responses(&state, req, arrival).await,
        (&Method::POST, "/v1/messages") => super::items::messages(&state, req, arrival).await,
        (&Method::GET, "/v1/models") => Ok(models(&state.cfg)),
        (&Method::GET, "/health") => Ok(json_response(StatusCode::OK, &json!({"status": "ok"}))),
        // The other endpoint plugins' APIs: rerankers, TGI, images, videos, SOLIDO RAG.
        (_, p) if super::endpoints::serves(p) => {
            super::endpoints::route(&state, req, arrival).await
        }
        (
            _,
            "/v1/chat/completions"
            | "/v1/completions"
            | "/v1/embeddings"
            | "/v1/responses"
            | "/v1/messages"
            | "/v1/models"
            | "/health",
        ) => Err(ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            kind: "invalid_request_error",
            message: format!("method {method} not allowed on {path}"),
        }),
        _ => Err(ApiError {
            status: StatusCode::NOT_FOUND,
            kind: "not_found_error",
            message: format!("no route for {method} {path}"),
        }),
    };
    let resp = result.unwrap_or_else(|e| {
        debug!(%method, %path, status = e.status.as_u16(), error = %e.message, "rejected");
        e.into_response()
    });
    Ok(resp.map(|body| body.with_guard(guard)))
}

pub(super) async fn read_json(req: Request<Incoming>) -> Result<Map<String, Value>, ApiError> {
    let body = read_body(req).await?;
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::invalid("request body must be a JSON object")),
        Err(e) => Err(ApiError::invalid(format!("invalid JSON body: {e}"))),
    }
}

/// The whole request body, at most [`MAX_BODY_BYTES`].
pub(super) async fn read_body(req: Request<Incoming>) -> Result<bytes::Bytes, ApiError> {
    match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            kind: "invalid_request_error",
            message: format!("request body exceeds {MAX_BODY_BYTES} bytes"),
        }),
        Err(e) => Err(ApiError::invalid(format!(
            "failed to read request body: {e}"
        ))),
    }
}

pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The model to report: the request's own, as real servers echo it, else the configured one.
pub(super) fn model_of(body: &Map<String, Value>, cfg: &MockConfig) -> String {
    match body.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        _ => cfg.model_name.clone(),
    }
}

pub(super) fn optional_bool(body: &Map<String, Value>, key: &str) -> Result<bool, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ApiError::invalid(format!("'{key}' must be a boolean"))),
    }
}

/// `max_completion_tokens` (the current OpenAI name) wins over the legacy `max_tokens`.
fn requested_max_tokens(body: &Map<String, Value>) -> Result<Option<u64>, ApiError> {
    for key in ["max_completion_tokens", "max_tokens"] {
        match body.get(key) {
            None | Some(Value::Null) => continue,
            Some(v) => {
                return v.as_u64().map(Some).ok_or_else(|| {
                    ApiError::invalid(format!("'{key}' must be a non-negative integer"))
                })
            }
        }
    }
    Ok(None)
}

/// Approximate prompt size of chat messages: whitespace-separated words of every text
/// content (a string, or the `text` of content parts).
fn chat_prompt_words(body: &Map<String, Value>) -> Result<u64, ApiError> {
    let Some(Value::Array(messages)) = body.get("messages") else {
        return Err(ApiError::invalid("'messages' must be an array"));
    };
    let mut words = 0u64;
    for msg in messages {
        match msg.get("content") {
            Some(Value::String(s)) => words += tokens::count_words(s),
            Some(Value::Array(parts)) => {
                for part in parts {
                    if let Some(Value::String(s)) = part.get("text") {
                        words += tokens::count_words(s);
                    }
                    check_media_part(part)?;
                }
            }
            _ => {}
        }
    }
    Ok(words)
}

/// Media parts must carry what a vision or audio model would decode, as real servers
/// insist: an `image_url.url` string, an `input_audio` with `data` and `format`.
fn check_media_part(part: &Value) -> Result<(), ApiError> {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).is_some_and(|s| !s.is_empty());
    match part.get("type").and_then(Value::as_str) {
        Some("image_url") if !text(part.get("image_url").and_then(|i| i.get("url"))) => {
            Err(ApiError::invalid("an image_url part needs image_url.url"))
        }
        Some("input_audio") => {
            let audio = part.get("input_audio");
            if text(audio.and_then(|a| a.get("data"))) && text(audio.and_then(|a| a.get("format")))
            {
                Ok(())
            } else {
                Err(ApiError::invalid(
                    "an input_audio part needs input_audio.data and input_audio.format",
                ))
            }
        }
        _ => Ok(()),
    }
}

/// Approximate prompt size of a completions prompt: words of a string or list of strings;
/// token-id arrays count one per id.
fn completion_prompt_words(body: &Map<String, Value>) -> Result<u64, ApiError> {
    fn words(v: &Value) -> Option<u64> {
        match v {
            Value::String(s) => Some(tokens::count_words(s)),
            Value::Number(_) => Some(1),
            Value::Array(items) => items.iter().map(words).sum(),
            _ => None,
        }
    }
    body.get("prompt")
        .and_then(words)
        .ok_or_else(|| ApiError::invalid("'prompt' must be a string or an array of strings"))
}

async fn generate(
    state: &AppState,
    req: Request<Incoming>,
    arrival: Instant,
    kind: ApiKind,
) -> ApiResult {
    let cfg = &state.cfg;
    // Read only when logged: it costs an allocation per request.
    let x_request_id = cfg.truth_log.as_ref().and_then(|_| {
        req.headers()
            .get("x-request-id")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    });
    let body = read_json(req).await?;
    let prompt_tokens = match kind {
        ApiKind::Chat => chat_prompt_words(&body)?,
        ApiKind::Completion => completion_prompt_words(&body)?,
    };
    let stream = optional_bool(&body, "stream")?;
    let include_usage = match body.get("stream_options") {
        Some(Value::Object(opts)) => optional_bool(opts, "include_usage")?,
        None | Some(Value::Null) => false,
        Some(_) => return Err(ApiError::invalid("'stream_options' must be an object")),
    };
    let requested = requested_max_tokens(&body)?;
    let output_tokens = match requested {
        Some(n) if !cfg.ignore_max_tokens => n,
        _ => cfg.output_tokens,
    };
    if output_tokens > MAX_OUTPUT_TOKENS {
        return Err(ApiError::invalid(format!(
            "max tokens {output_tokens} exceeds the mock's limit of {MAX_OUTPUT_TOKENS}"
        )));
    }

    let n = state.next_id.fetch_add(1, Ordering::Relaxed);
    let id = match kind {
        ApiKind::Chat => format!("chatcmpl-mock-{n}"),
        ApiKind::Completion => format!("cmpl-mock-{n}"),
    };
    let spec = Generation {
        kind,
        id,
        created: unix_now(),
        model: model_of(&body, cfg),
        arrival,
        ttft: cfg.ttft,
        itl: cfg.itl,
        output_tokens,
        tokens_per_chunk: cfg.tokens_per_chunk,
        prompt_tokens,
        include_usage,
        reasoning_tokens: cfg.reasoning_tokens,
        reasoning_field: cfg.reasoning_field(),
        usage_offset: cfg.usage_token_offset,
        cache: cfg.prompt_cache,
    };
    debug!(id = %spec.id, stream, output_tokens, prompt_tokens, "generate");

    if stream {
        let mut sse = SseStream::new(spec, state.timer.clone(), Arc::clone(&state.stats));
        if let Some(log) = &cfg.truth_log {
            sse = sse.with_truth(Arc::clone(log), x_request_id);
        }
        let mut resp = Response::new(MockBody::sse(sse));
        let headers = resp.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        Ok(resp)
    } else {
        // Built before the wait so that only the write happens after the deadline.
        let resp = json_response(StatusCode::OK, &spec.full_response());
        let due = spec.completion_deadline();
        state.timer.sleep_until(due).await;
        let sent = state.stats.record_lateness(due);
        if let Some(log) = &cfg.truth_log {
            log.push(Truth {
                x_request_id,
                id: spec.id,
                stream: false,
                arrival,
                first_token: (output_tokens > 0).then_some(sent),
                last_token: (output_tokens > 0).then_some(sent),
                tokens: output_tokens,
                chunks: 1,
                complete: true,
            });
        }
        Ok(resp)
    }
}

/// A deterministic unit vector derived from the text, so equal inputs embed equally.
pub(super) fn embed(text: &str) -> Vec<f64> {
    let mut hasher = std::hash::DefaultHasher::new();
    text.hash(&mut hasher);
    let mut x = hasher.finish();
    let mut v: Vec<f64> = (0..EMBEDDING_DIM)
        .map(|_| {
            // splitmix64: spreads the hash over all dimensions.
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect();
    let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|a| *a /= norm);
    }
    v
}

async fn embeddings(state: &AppState, req: Request<Incoming>, arrival: Instant) -> ApiResult {
    let body = read_json(req).await?;
    // vLLM's chat-shaped embeddings: one embedding of the whole conversation.
    let conversation;
    let (inputs, prompt_tokens): (Vec<&str>, u64) = match body.get("input") {
        None if body.contains_key("messages") => {
            let words = chat_prompt_words(&body)?;
            conversation = body["messages"].to_string();
            (vec![conversation.as_str()], words)
        }
        input => {
            let inputs: Vec<&str> = match input {
                Some(Value::String(s)) => vec![s.as_str()],
                Some(Value::Array(items)) if !items.is_empty() => items
                    .iter()
                    .map(Value::as_str)
                    .collect::<Option<_>>()
                    .ok_or_else(|| {
                        ApiError::invalid("'input' must be a string or array of strings")
                    })?,
                _ => {
                    return Err(ApiError::invalid(
                        "'input' must be a string or a non-empty array of strings",
                    ))
                }
            };
            let words = inputs.iter().map(|s| tokens::count_words(s)).sum();
            (inputs, words)
        }
    };
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| json!({"object": "embedding", "index": i, "embedding": embed(text)}))
        .collect();
    let doc = json!({
        "object": "list",
        "data": data,
        "model": model_of(&body, &state.cfg),
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    });
    let resp = json_response(StatusCode::OK, &doc);
    let due = arrival.checked_add(state.cfg.ttft).unwrap_or(arrival);
    state.timer.sleep_until(due).await;
    state.stats.record_lateness(due);
    Ok(resp)
}

fn models(cfg: &MockConfig) -> Response<MockBody> {
    json_response(
        StatusCode::OK,
        &json!({"object": "list", "data": [{
            "id": cfg.model_name,
            "object": "model",
            "created": 0,
            "owned_by": "aiperf-mock",
        }]}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn max_completion_tokens_wins() {
        let b = obj(json!({"max_tokens": 5, "max_completion_tokens": 7}));
        assert_eq!(requested_max_tokens(&b).ok().flatten(), Some(7));
        let b = obj(json!({"max_tokens": 5, "max_completion_tokens": null}));
        assert_eq!(requested_max_tokens(&b).ok().flatten(), Some(5));
        assert!(requested_max_tokens(&obj(json!({"max_tokens": -1}))).is_err());
        assert!(requested_max_tokens(&obj(json!({"max_tokens": "5"}))).is_err());
        assert_eq!(requested_max_tokens(&obj(json!({}))).ok().flatten(), None);
    }

    #[test]
    fn prompt_words() {
        let b = obj(json!({"messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hello  there world"},
                                         {"type": "image_url", "image_url": {"url": "x"}}]},
        ]}));
        assert_eq!(chat_prompt_words(&b).ok(), Some(5));
        assert!(chat_prompt_words(&obj(json!({"messages": "hi"}))).is_err());
        assert_eq!(
            completion_prompt_words(&obj(json!({"prompt": ["a b", "c"]}))).ok(),
            Some(3)
        );
        assert_eq!(
            completion_prompt_words(&obj(json!({"prompt": [1, 2, 3]}))).ok(),
            Some(3)
        );
        assert!(completion_prompt_words(&obj(json!({"prompt": {}}))).is_err());
    }

    #[test]
    fn embeddings_are_unit_and_deterministic() {
        let a = embed("hello");
        assert_eq!(a.len(), EMBEDDING_DIM);
        assert_eq!(a, embed("hello"));
        assert_ne!(a, embed("world"));
        let norm: f64 = a.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-9);
    }
}
