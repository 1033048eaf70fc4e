//! The APIs of the endpoint plugins beyond OpenAI chat, completions and embeddings, with
//! the response shapes their real servers use:
//!
//! * rerankers: `POST /v1/ranking` (NVIDIA NIM: `{"rankings":[{"index","logit"}]}`),
//!   `POST /v2/rerank` (Cohere: `{"results":[{"index","relevance_score"}]}`) and
//!   `POST /rerank` (Hugging Face TEI: a bare `[{"index","score"}]`), answered at
//!   `arrival + ttft`;
//! * Hugging Face TGI: `POST /generate` (`{"generated_text"}`, at the last token's
//!   deadline) and `POST /generate_stream` (one `data:{"token":{...}}` event per token, no
//!   space after `data:` and no `[DONE]`, as TGI writes them; the last event also carries
//!   `generated_text` and `details`);
//! * `POST /v1/images/generations`: `{"data":[{"b64_json"}],"usage"}` at `arrival + ttft`,
//!   or with `stream` an `image_generation.partial_image` event per `partial_images`
//!   (`ttft + k * itl`), then an `image_generation.completed` event per image;
//! * video jobs: `POST /v1/videos` takes a `multipart/form-data` form (`prompt`, `model`,
//!   `size`, `seconds`, ...; JSON is refused with 415) and returns a queued job whose
//!   `size` and `seconds` echo the form, `GET /v1/videos/{id}` reports
//!   `in_progress` with a percentage until `video_duration` after the submit, then
//!   `completed`; `GET /v1/videos/{id}/content` returns the file (`video/mp4`);
//! * SOLIDO RAG: `POST /rag/api/prompt`, streamed (`data: {"content"}` per chunk, then the
//!   `sources`, then `data: [DONE]`) when the client accepts `text/event-stream`, else one
//!   `{"content","sources"}` body.
//!
//! Token timing follows the chat routes: token `k` is due at `arrival + ttft + k * itl`.

use std::collections::VecDeque;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Map, Value};

use super::body::{ApiKind, Generation, MockBody, PromptCache};
use super::handlers::{
    json_response, model_of, optional_bool, read_body, read_json, unix_now, ApiError, ApiResult,
    AppState, MAX_OUTPUT_TOKENS,
};
use super::timer::{Sleep, TimerHandle};
use super::{form, tokens, MockStats};

/// Jobs kept at most; the oldest are forgotten first, so memory stays bounded.
pub const MAX_VIDEO_JOBS: usize = 10_000;

/// A 1x1 PNG: every generated image (the client only counts them).
const PNG_B64: &str = concat!(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kg",
    "AAAABJRU5ErkJggg=="
);

/// Fixed paths served here (video jobs also serve `/v1/videos/...`).
const PATHS: &[&str] = &[
    "/v1/ranking",
    "/v2/rerank",
    "/rerank",
    "/generate",
    "/generate_stream",
    "/v1/images/generations",
    "/v1/videos",
    "/rag/api/prompt",
];

/// Whether a path belongs to these APIs.
pub(super) fn serves(path: &str) -> bool {
    PATHS.contains(&path) || path.starts_with("/v1/videos/")
}

pub(super) async fn route(state: &AppState, req: Request<Incoming>, arrival: Instant) -> ApiResult {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    match (&method, path.as_str()) {
        (&Method::POST, "/v1/ranking") => rerank(state, req, arrival, Reranker::Nim).await,
        (&Method::POST, "/v2/rerank") => rerank(state, req, arrival, Reranker::Cohere).await,
        (&Method::POST, "/rerank") => rerank(state, req, arrival, Reranker::Tei).await,
        (&Method::POST, "/generate") => tgi(state, req, arrival, false).await,
        (&Method::POST, "/generate_stream") => tgi(state, req, arrival, true).await,
        (&Method::POST, "/v1/images/generations") => images(state, req, arrival).await,
        (&Method::POST, "/rag/api/prompt") => solido(state, req, arrival).await,
        (&Method::POST, "/v1/videos") => video_submit(state, req, arrival).await,
        (&Method::GET, p) if p.starts_with("/v1/videos/") => video_get(state, p),
        _ => Err(ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            kind: "invalid_request_error",
            message: format!("method {method} not allowed on {path}"),
        }),
    }
}

async fn at(state: &AppState, due: Instant) {
    state.timer.sleep_until(due).await;
    state.stats.record_lateness(due);
}

fn after(arrival: Instant, delay: Duration) -> Instant {
    arrival.checked_add(delay).unwrap_or(arrival)
}

fn string<'a>(body: &'a Map<String, Value>, key: &str) -> Result<&'a str, ApiError> {
    body.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid(format!("'{key}' must be a string")))
}

/// An optional non-negative integer field, at most `max`.
fn count(body: &Map<String, Value>, key: &str, max: u64) -> Result<Option<u64>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if n <= max => Ok(Some(n)),
            _ => Err(ApiError::invalid(format!(
                "'{key}' must be an integer between 0 and {max}"
            ))),
        },
    }
}

pub(super) fn sse_response(stream: TimedStream) -> Response<MockBody> {
    let mut resp = Response::new(MockBody::timed(stream));
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

// ------------------------------------------------------------------------- rerankers

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reranker {
    Nim,
    Cohere,
    Tei,
}

/// A deterministic relevance in `[0, 1)` of a passage to a query.
fn relevance(query: &str, passage: &str) -> f64 {
    let mut hasher = std::hash::DefaultHasher::new();
    (query, passage).hash(&mut hasher);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

async fn rerank(
    state: &AppState,
    req: Request<Incoming>,
    arrival: Instant,
    api: Reranker,
) -> ApiResult {
    let body = read_json(req).await?;
    let (query, passages): (&str, Vec<&str>) = match api {
        Reranker::Nim => {
            let query = body
                .get("query")
                .and_then(|q| q.get("text"))
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::invalid("'query.text' must be a string"))?;
            let passages = body
                .get("passages")
                .and_then(Value::as_array)
                .and_then(|p| {
                    p.iter()
                        .map(|p| p.get("text").and_then(Value::as_str))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| {
                    ApiError::invalid("'passages' must be an array of {\"text\": string}")
                })?;
            (query, passages)
        }
        Reranker::Cohere | Reranker::Tei => {
            let key = if api == Reranker::Cohere {
                "documents"
            } else {
                "texts"
            };
            let passages = body
                .get(key)
                .and_then(Value::as_array)
                .and_then(|p| p.iter().map(Value::as_str).collect::<Option<Vec<_>>>())
                .ok_or_else(|| ApiError::invalid(format!("'{key}' must be an array of strings")))?;
            (string(&body, "query")?, passages)
        }
    };
    let mut scored: Vec<(usize, f64)> = passages
        .iter()
        .enumerate()
        .map(|(i, p)| (i, relevance(query, p)))
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    if let Some(n) = count(&body, "top_n", u64::MAX)? {
        scored.truncate(usize::try_from(n).unwrap_or(usize::MAX));
    }
    let doc = match api {
        Reranker::Nim => json!({"rankings": scored
            .iter()
            .map(|(i, s)| json!({"index": i, "logit": s * 20.0 - 10.0}))
            .collect::<Vec<_>>()}),
        Reranker::Cohere => {
            let id = state.next_id.fetch_add(1, Ordering::Relaxed);
            json!({
                "id": format!("rerank-mock-{id}"),
                "results": scored
                    .iter()
                    .map(|(i, s)| json!({"index": i, "relevance_score": s}))
                    .collect::<Vec<_>>(),
                "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}},
            })
        }
        Reranker::Tei => Value::Array(
            scored
                .iter()
                .map(|(i, s)| json!({"index": i, "score": s}))
                .collect(),
        ),
    };
    let resp = json_response(StatusCode::OK, &doc);
    at(state, after(arrival, state.cfg.ttft)).await;
    Ok(resp)
}

// ------------------------------------------------------------------------------ TGI

fn generation(state: &AppState, arrival: Instant, tokens: u64, prompt: u64) -> Generation {
    let cfg = &state.cfg;
    Generation {
        kind: ApiKind::Completion,
        id: format!("mock-{}", state.next_id.fetch_add(1, Ordering::Relaxed)),
        created: unix_now(),
        model: cfg.model_name.clone(),
        arrival,
        ttft: cfg.ttft,
        itl: cfg.itl,
        output_tokens: tokens,
        tokens_per_chunk: cfg.tokens_per_chunk,
        prompt_tokens: prompt,
        include_usage: false,
        reasoning_tokens: 0,
        reasoning_field: "reasoning_content",
        usage_offset: 0,
        cache: PromptCache::default(),
    }
}

/// Output tokens of a request: what it asks for, unless the mock ignores that.
fn output_tokens(state: &AppState, requested: Option<u64>) -> u64 {
    match requested {
        Some(n) if !state.cfg.ignore_max_tokens => n,
        _ => state.cfg.output_tokens,
    }
}

async fn tgi(
    state: &AppState,
    req: Request<Incoming>,
    arrival: Instant,
    stream: bool,
) -> ApiResult {
    let body = read_json(req).await?;
    let inputs = string(&body, "inputs")?;
    let parameters = match body.get("parameters") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p.clone(),
        Some(_) => return Err(ApiError::invalid("'parameters' must be an object")),
    };
    let requested = count(&parameters, "max_new_tokens", MAX_OUTPUT_TOKENS)?;
    if requested == Some(0) {
        return Err(ApiError::invalid(
            "`max_new_tokens` must be strictly positive",
        ));
    }
    let tokens = output_tokens(state, requested).max(1);
    let spec = generation(state, arrival, tokens, tokens::count_words(inputs));
    if stream {
        return Ok(sse_response(TimedStream::new(
            Source::Tgi(spec),
            &state.timer,
            &state.stats,
        )));
    }
    let doc = json!({
        "generated_text": tokens::text(0..tokens),
        "details": {"finish_reason": "length", "generated_tokens": tokens, "seed": null},
    });
    let resp = json_response(StatusCode::OK, &doc);
    at(state, spec.completion_deadline()).await;
    Ok(resp)
}

// --------------------------------------------------------------------------- images

async fn images(state: &AppState, req: Request<Incoming>, arrival: Instant) -> ApiResult {
    let body = read_json(req).await?;
    let prompt = string(&body, "prompt")?;
    let n = count(&body, "n", 10)?.unwrap_or(1).max(1);
    let partials = count(&body, "partial_images", 3)?.unwrap_or(0);
    let stream = optional_bool(&body, "stream")?;
    let urls = match body.get("response_format").and_then(Value::as_str) {
        None | Some("b64_json") => false,
        Some("url") => true,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "unsupported response_format '{other}'"
            )))
        }
    };
    let words = tokens::count_words(prompt);
    let usage = json!({
        "input_tokens": words,
        "output_tokens": 272 * n,
        "total_tokens": words + 272 * n,
        "input_tokens_details": {"text_tokens": words, "image_tokens": 0},
    });
    let created = unix_now();
    if stream {
        let images = Source::Images {
            arrival,
            ttft: state.cfg.ttft,
            itl: state.cfg.itl,
            partials,
            n,
            created,
            usage,
        };
        return Ok(sse_response(TimedStream::new(
            images,
            &state.timer,
            &state.stats,
        )));
    }
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    let data: Vec<Value> = (0..n)
        .map(|i| {
            if urls {
                json!({"url": format!("https://mock.invalid/images/{id}-{i}.png")})
            } else {
                json!({"b64_json": PNG_B64, "revised_prompt": prompt})
            }
        })
        .collect();
    let doc = json!({"created": created, "data": data, "usage": usage});
    let resp = json_response(StatusCode::OK, &doc);
    at(state, after(arrival, state.cfg.ttft)).await;
    Ok(resp)
}

// ---------------------------------------------------------------------------- video

/// One generation job.
#[derive(Debug, Clone)]
struct VideoJob {
    id: String,
    submitted: Instant,
    created_at: u64,
    model: String,
    size: String,
    seconds: String,
}

/// The jobs of one server, oldest first.
#[derive(Debug, Default)]
pub struct VideoJobs {
    jobs: Mutex<VecDeque<VideoJob>>,
}

impl VideoJobs {
    fn insert(&self, job: VideoJob) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        if jobs.len() >= MAX_VIDEO_JOBS {
            jobs.pop_front();
        }
        jobs.push_back(job);
    }

    fn get(&self, id: &str) -> Option<VideoJob> {
        let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        jobs.iter().rev().find(|j| j.id == id).cloned()
    }
}

/// Where a job is: `(status, progress percent)`.
fn video_state(state: &AppState, job: &VideoJob) -> (&'static str, u64) {
    let total = state.cfg.video_duration;
    let elapsed = job.submitted.elapsed();
    if elapsed >= total {
        return ("completed", 100);
    }
    let progress = (elapsed.as_secs_f64() / total.as_secs_f64() * 100.0) as u64;
    (
        if progress == 0 {
            "queued"
        } else {
            "in_progress"
        },
        progress.min(99),
    )
}

/// The peak GPU memory a completed mock video job reports, as SGLang's `peak_memory_mb`.
pub const VIDEO_PEAK_MEMORY_MB: f64 = 8192.0;

/// A job as the API shows it; `took` is how long a completed one ran.
fn video_doc(job: &VideoJob, status: &str, progress: u64, took: Duration) -> Value {
    let mut doc = json!({
        "id": job.id,
        "object": "video",
        "model": job.model,
        "status": status,
        "progress": progress,
        "created_at": job.created_at,
        "size": job.size,
        "seconds": job.seconds,
        "quality": "standard",
    });
    if status == "completed" {
        doc["completed_at"] = json!(unix_now());
        doc["expires_at"] = json!(unix_now() + 3600);
        // SGLang's own figures of the generation: its time, and a fixed peak memory.
        doc["inference_time_s"] = json!(took.as_secs_f64());
        doc["peak_memory_mb"] = json!(VIDEO_PEAK_MEMORY_MB);
    }
    doc
}

/// Reads the submit's form (AIPerf posts `multipart/form-data`; JSON is refused with 415)
/// into text fields.
async fn video_form(req: Request<Incoming>) -> Result<Map<String, Value>, ApiError> {
    let boundary = form::boundary(req.headers())?;
    let body = read_body(req).await?;
    let mut fields = Map::new();
    for field in form::parse(&body, &boundary)? {
        let text = String::from_utf8(field.content).map_err(|_| {
            ApiError::invalid(format!("form field '{}' is not UTF-8 text", field.name))
        })?;
        fields.insert(field.name, Value::String(text));
    }
    Ok(fields)
}

async fn video_submit(state: &AppState, req: Request<Incoming>, arrival: Instant) -> ApiResult {
    let body = video_form(req).await?;
    string(&body, "prompt")?;
    let text = |key: &str, default: &str| match body.get(key) {
        Some(Value::String(s)) => s.clone(),
        _ => default.to_owned(),
    };
    // OpenAI's checks: clip lengths it offers, and a `WIDTHxHEIGHT` size.
    let seconds = text("seconds", "4");
    if !["4", "8", "12"].contains(&seconds.as_str()) {
        return Err(ApiError::invalid(format!(
            "'seconds' must be one of '4', '8', '12', got '{seconds}'"
        )));
    }
    let size = text("size", "1280x720");
    let dimension = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    if !size
        .split_once('x')
        .is_some_and(|(w, h)| dimension(w) && dimension(h))
    {
        return Err(ApiError::invalid(format!(
            "'size' must be WIDTHxHEIGHT, got '{size}'"
        )));
    }
    let job = VideoJob {
        id: format!(
            "video_mock_{}",
            state.next_id.fetch_add(1, Ordering::Relaxed)
        ),
        submitted: arrival,
        created_at: unix_now(),
        model: model_of(&body, &state.cfg),
        size,
        seconds,
    };
    let doc = video_doc(&job, "queued", 0, state.cfg.video_duration);
    state.videos.insert(job);
    Ok(json_response(StatusCode::OK, &doc))
}

fn video_get(state: &AppState, path: &str) -> ApiResult {
    let rest = path.trim_start_matches("/v1/videos/");
    let (id, content) = match rest.strip_suffix("/content") {
        Some(id) => (id, true),
        None => (rest, false),
    };
    let Some(job) = state.videos.get(id) else {
        return Err(ApiError {
            status: StatusCode::NOT_FOUND,
            kind: "invalid_request_error",
            message: format!("no video with id '{id}'"),
        });
    };
    let (status, progress) = video_state(state, &job);
    if !content {
        return Ok(json_response(
            StatusCode::OK,
            &video_doc(&job, status, progress, state.cfg.video_duration),
        ));
    }
    if status != "completed" {
        return Err(ApiError {
            status: StatusCode::CONFLICT,
            kind: "invalid_request_error",
            message: format!("video '{id}' is {status} ({progress}%)"),
        });
    }
    // An MP4 `ftyp` box, then filler up to the configured size.
    let mut file = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom".to_vec();
    file.resize(state.cfg.video_bytes.max(file.len()), 0);
    let mut resp = Response::new(MockBody::full(file));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    Ok(resp)
}

// ----------------------------------------------------------------------- SOLIDO RAG

fn solido_sources() -> Value {
    json!([{"title": "SDE User Guide", "url": "https://mock.invalid/sde/guide", "score": 0.87}])
}

async fn solido(state: &AppState, req: Request<Incoming>, arrival: Instant) -> ApiResult {
    // The body has no stream flag: the client asks for events with its Accept header.
    let stream = req
        .headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    let body = read_json(req).await?;
    let query = body
        .get("query")
        .and_then(Value::as_array)
        .filter(|q| !q.is_empty())
        .and_then(|q| q.iter().map(Value::as_str).collect::<Option<Vec<_>>>())
        .ok_or_else(|| ApiError::invalid("'query' must be a non-empty array of strings"))?;
    if !matches!(body.get("filters"), None | Some(Value::Object(_))) {
        return Err(ApiError::invalid("'filters' must be an object"));
    }
    string(&body, "inference_model")?;
    let prompt = query.iter().map(|q| tokens::count_words(q)).sum();
    let spec = generation(state, arrival, state.cfg.output_tokens, prompt);
    if stream {
        return Ok(sse_response(TimedStream::new(
            Source::Solido(spec),
            &state.timer,
            &state.stats,
        )));
    }
    let doc = json!({
        "content": tokens::text(0..spec.output_tokens),
        "sources": solido_sources(),
    });
    let resp = json_response(StatusCode::OK, &doc);
    at(state, spec.completion_deadline()).await;
    Ok(resp)
}

// -------------------------------------------------------------------- timed streams

/// What a [`TimedStream`] sends.
enum Source {
    /// The Responses and Messages APIs' typed events (see [`super::items`]).
    Items(super::items::ItemStream),
    /// TGI `/generate_stream`: one event per token.
    Tgi(Generation),
    /// SOLIDO: one event per chunk of `tokens_per_chunk`, then the sources, then
    /// `[DONE]`.
    Solido(Generation),
    /// Image generation: partial images, then one completed event per image.
    Images {
        arrival: Instant,
        ttft: Duration,
        itl: Duration,
        partials: u64,
        n: u64,
        created: u64,
        usage: Value,
    },
}

impl Source {
    fn steps(&self) -> u64 {
        match self {
            Source::Items(items) => items.steps(),
            Source::Tgi(spec) => spec.output_tokens,
            Source::Solido(spec) => spec.chunk_count() + 2,
            Source::Images { partials, n, .. } => partials + n,
        }
    }

    /// Event `step` and its deadline.
    fn event(&self, step: u64) -> (Instant, Bytes) {
        match self {
            Source::Items(items) => items.event(step),
            Source::Tgi(spec) => {
                let last = step + 1 == spec.output_tokens;
                let (generated, details) = if last {
                    (
                        json!(tokens::text(0..spec.output_tokens)),
                        json!({"finish_reason": "length", "generated_tokens": spec.output_tokens}),
                    )
                } else {
                    (Value::Null, Value::Null)
                };
                let doc = json!({
                    "index": step,
                    "token": {"id": step, "text": tokens::token(step), "logprob": -0.1,
                              "special": false},
                    "generated_text": generated,
                    "details": details,
                });
                // TGI writes `data:` without the space.
                (spec.token_deadline(step), sse(None, "data:", &doc))
            }
            Source::Solido(spec) => {
                if step < spec.chunk_count() {
                    let (range, due) = spec.chunk(step);
                    (
                        due,
                        sse(None, "data: ", &json!({"content": tokens::text(range)})),
                    )
                } else if step == spec.chunk_count() {
                    let doc = json!({"content": "", "sources": solido_sources()});
                    (spec.completion_deadline(), sse(None, "data: ", &doc))
                } else {
                    let done = Bytes::from_static(b"data: [DONE]\n\n");
                    (spec.completion_deadline(), done)
                }
            }
            Source::Images {
                arrival,
                ttft,
                itl,
                partials,
                created,
                usage,
                ..
            } => {
                let gaps = u32::try_from(step.min(*partials)).unwrap_or(u32::MAX);
                let due = after(*arrival, ttft.saturating_add(itl.saturating_mul(gaps)));
                let common = json!({
                    "b64_json": PNG_B64, "created_at": created, "size": "1024x1024",
                    "quality": "medium", "background": "opaque", "output_format": "png",
                });
                let (kind, mut doc) = if step < *partials {
                    ("image_generation.partial_image", common)
                } else {
                    ("image_generation.completed", common)
                };
                doc["type"] = json!(kind);
                if step < *partials {
                    doc["partial_image_index"] = json!(step);
                } else {
                    doc["usage"] = usage.clone();
                }
                (due, sse(Some(kind), "data: ", &doc))
            }
        }
    }
}

fn sse(event: Option<&str>, prefix: &str, doc: &Value) -> Bytes {
    let mut out = Vec::new();
    if let Some(event) = event {
        out.extend_from_slice(format!("event: {event}\n").as_bytes());
    }
    out.extend_from_slice(prefix.as_bytes());
    // Serializing a Value to memory cannot fail.
    let _ = serde_json::to_writer(&mut out, doc);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// A timed SSE body built one event at a time (so a long stream costs no memory up
/// front), each sent at its absolute deadline like [`super::body::SseStream`].
pub struct TimedStream {
    source: Source,
    step: u64,
    timer: TimerHandle,
    stats: Arc<MockStats>,
    pending: Option<(Sleep, Instant, Bytes)>,
}

impl TimedStream {
    fn new(source: Source, timer: &TimerHandle, stats: &Arc<MockStats>) -> Self {
        TimedStream {
            source,
            step: 0,
            timer: timer.clone(),
            stats: Arc::clone(stats),
            pending: None,
        }
    }

    pub(super) fn items(
        items: super::items::ItemStream,
        timer: &TimerHandle,
        stats: &Arc<MockStats>,
    ) -> Self {
        Self::new(Source::Items(items), timer, stats)
    }

    pub(crate) fn is_done(&self) -> bool {
        self.step >= self.source.steps() && self.pending.is_none()
    }

    pub(crate) fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        if self.pending.is_none() {
            if self.step >= self.source.steps() {
                return Poll::Ready(None);
            }
            let (due, bytes) = self.source.event(self.step);
            self.step += 1;
            let sleep = self.timer.sleep_until(due);
            self.pending = Some((sleep, due, bytes));
        }
        let Some((sleep, due, _)) = self.pending.as_mut() else {
            return Poll::Ready(None);
        };
        ready!(Pin::new(sleep).poll(cx));
        self.stats.record_lateness(*due);
        Poll::Ready(self.pending.take().map(|(_, _, bytes)| bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(tokens: u64) -> Generation {
        Generation {
            kind: ApiKind::Completion,
            id: "x".into(),
            created: 0,
            model: "m".into(),
            arrival: Instant::now(),
            ttft: Duration::from_millis(10),
            itl: Duration::from_millis(2),
            output_tokens: tokens,
            tokens_per_chunk: 2,
            prompt_tokens: 1,
            include_usage: false,
            reasoning_tokens: 0,
            reasoning_field: "reasoning_content",
            usage_offset: 0,
            cache: PromptCache::default(),
        }
    }

    fn events(source: &Source) -> Vec<String> {
        (0..source.steps())
            .map(|i| String::from_utf8(source.event(i).1.to_vec()).expect("utf8"))
            .collect()
    }

    #[test]
    fn tgi_events_are_tokens_without_a_space_after_data() {
        let source = Source::Tgi(spec(3));
        let events = events(&source);
        assert_eq!(events.len(), 3);
        assert!(events[0].starts_with(r#"data:{"#), "{}", events[0]);
        assert!(
            events[0].contains(r#""text":" the""#)
                && events[0].contains(r#""generated_text":null"#)
        );
        assert!(events[2].contains(r#""generated_text":" the of and""#));
        assert!(events.iter().all(|e| e.ends_with("\n\n")));
        let ms = |i| (source.event(i).0 - spec(3).arrival).as_millis();
        assert!(ms(2) >= 13, "third token at ttft + 2 itl");
    }

    #[test]
    fn solido_chunks_then_sources() {
        let events = events(&Source::Solido(spec(3)));
        assert_eq!(events.len(), 4);
        assert_eq!(events[0], "data: {\"content\":\" the of\"}\n\n");
        assert_eq!(events[1], "data: {\"content\":\" and\"}\n\n");
        assert!(events[2].contains("sources"));
        assert_eq!(events[3], "data: [DONE]\n\n");
    }

    #[test]
    fn image_partials_then_completed() {
        let source = Source::Images {
            arrival: Instant::now(),
            ttft: Duration::from_millis(10),
            itl: Duration::from_millis(5),
            partials: 2,
            n: 1,
            created: 0,
            usage: json!({"output_tokens": 1}),
        };
        let events = events(&source);
        assert_eq!(events.len(), 3);
        assert!(events[0].starts_with("event: image_generation.partial_image\ndata: {"));
        assert!(events[1].contains(r#""partial_image_index":1"#));
        assert!(events[2].starts_with("event: image_generation.completed\n"));
        assert!(events[2].contains(r#""usage":{"output_tokens":1}"#));
    }

    #[test]
    fn relevance_is_deterministic() {
        assert_eq!(relevance("q", "p"), relevance("q", "p"));
        assert_ne!(relevance("q", "p"), relevance("q", "p2"));
        assert!((0.0..1.0).contains(&relevance("q", "p")));
    }
}
