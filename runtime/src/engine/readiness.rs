//! `--wait-for-model-timeout`: before anything else starts, wait until every `--url`
//! serves every `--model`, as AIPerf 0.13's pre-flight readiness probe does.
//!
//! `inference` (the default mode) posts a one-token request and takes any status below 500
//! as ready: a 4xx means the server is up and will answer the benchmark's requests the
//! same way, so waiting longer would only hide it. `models` polls `/v1/models` until the
//! model's id is listed (a server without that route is ready once its base URL answers
//! 2xx). `both` does `models` and then `inference`. Each (URL, model) pair gets the whole
//! timeout, in order, so the worst case is that timeout times their number.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::config::{ProfileConfig, ReadinessMode};
use crate::engine::cancel::{race, Either};
use crate::http::client::{serialize_request, ConnectionPool, ConnectionReuse, PoolConfig};
use crate::http::url::{redact_for_message, BaseUrl};
use crate::record::{RequestRecord, RunClock};

/// The prompt of the inference probe: one short word, so a metered backend spends almost
/// nothing and its KV cache keeps almost nothing.
const PROBE_PROMPT: &str = "Lo";

/// The shortest per-request limit of a probe: a retry interval can be tiny (tests use
/// one), a round trip over a real network still needs room.
const MODELS_REQUEST_FLOOR: Duration = Duration::from_secs(5);
/// A first forward pass can take seconds while a model finishes loading.
const INFERENCE_REQUEST_FLOOR: Duration = Duration::from_secs(30);

/// Blocks until every URL and model passes the probe, or fails with why not once one of
/// them has used up `--wait-for-model-timeout`. Does nothing when that is 0.
pub(crate) fn wait_for_endpoint(
    config: &ProfileConfig,
    headers: &[(String, String)],
    interrupted: fn() -> bool,
) -> Result<(), String> {
    let timeout = config.wait_for_model_timeout;
    if timeout <= 0.0 {
        return Ok(());
    }
    let probe = Probe {
        timeout: Duration::from_secs_f64(timeout),
        interval: Duration::from_secs_f64(config.wait_for_model_interval),
        headers,
        ca_cert: config.ca_cert.clone(),
        interrupted,
    };
    let mode = config.wait_for_model_mode;
    tracing::info!(
        "waiting for the endpoint to be ready (mode {}, timeout {timeout} s, interval {} s): \
         {} URL(s) x {} model(s)",
        mode.as_str(),
        config.wait_for_model_interval,
        config.url.len(),
        config.model.len()
    );
    let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .map_err(|e| format!("--wait-for-model-timeout: cannot start the I/O runtime: {e}"))?;
    rt.block_on(async {
        for url in &config.url {
            let base = BaseUrl::parse(url)
                .map_err(|e| format!("--url {}: {e}", redact_for_message(url)))?;
            if matches!(mode, ReadinessMode::Models | ReadinessMode::Both) {
                for model in &config.model {
                    probe.models(url, &base, model).await?;
                }
            }
            if matches!(mode, ReadinessMode::Inference | ReadinessMode::Both) {
                let (path, body) = inference_request(config, &base);
                for model in &config.model {
                    probe.inference(&base, &path, &body, model).await?;
                }
            }
        }
        Ok(())
    })
}

struct Probe<'a> {
    timeout: Duration,
    interval: Duration,
    headers: &'a [(String, String)],
    ca_cert: Option<std::path::PathBuf>,
    /// Whether a Ctrl-C or SIGTERM came: the wait ends at once, within a request too.
    interrupted: fn() -> bool,
}

/// How often a wait looks for a signal.
const SIGNAL_POLL: Duration = Duration::from_millis(20);

/// What ends the wait for an endpoint that was not ready.
const INTERRUPTED: &str = "interrupted while waiting for the endpoint to be ready; nothing was \
                           sent and no results were written";

/// One answer to a probe request: the status (none when the request failed) and the body,
/// or why it failed.
struct Answer {
    status: Option<u16>,
    body: Vec<u8>,
    error: String,
}

impl Answer {
    fn describe(&self) -> String {
        match self.status {
            Some(status) => format!("status {status}"),
            None => format!("no answer ({})", self.error),
        }
    }
}

impl Probe<'_> {
    /// Until `model` is listed by `/v1/models`, or the base URL answers 2xx where that
    /// route is missing.
    async fn models(&self, url: &str, base: &BaseUrl, model: &str) -> Result<(), String> {
        let deadline = Instant::now() + self.timeout;
        let models_path = full_url(base, "/v1/models");
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let limit = self.limit(deadline, MODELS_REQUEST_FLOOR).ok_or_else(|| {
                format!(
                    "--wait-for-model-timeout: model '{model}' was not ready at {url} after \
                     {} s ({} check(s) of {models_path})",
                    self.timeout.as_secs_f64(),
                    attempt - 1
                )
            })?;
            let answer = self.send(base, "GET", "/v1/models", b"", limit).await;
            if (self.interrupted)() {
                return Err(INTERRUPTED.to_owned());
            }
            match answer.status {
                Some(200) if lists_model(&answer.body, model) => {
                    tracing::info!("model '{model}' is ready at {url} (check {attempt})");
                    return Ok(());
                }
                Some(404) => {
                    let limit = self
                        .limit(deadline, MODELS_REQUEST_FLOOR)
                        .unwrap_or_default();
                    let root = self.send(base, "GET", "", b"", limit).await;
                    if (self.interrupted)() {
                        return Err(INTERRUPTED.to_owned());
                    }
                    if root.status.is_some_and(|s| (200..300).contains(&s)) {
                        tracing::info!(
                            "{url} has no {models_path}, and its base URL answers {}: ready",
                            root.describe()
                        );
                        return Ok(());
                    }
                    tracing::info!(
                        "{models_path} answered 404 and the base URL {} (check {attempt})",
                        root.describe()
                    );
                }
                Some(200) => {
                    tracing::info!("model '{model}' is not yet listed (check {attempt})");
                }
                _ => tracing::info!("{models_path}: {} (check {attempt})", answer.describe()),
            }
            self.pause(deadline).await?;
        }
    }

    /// Until a one-token request gets any status below 500.
    async fn inference(
        &self,
        base: &BaseUrl,
        path: &str,
        body: &Value,
        model: &str,
    ) -> Result<(), String> {
        let deadline = Instant::now() + self.timeout;
        let target = full_url(base, path);
        let mut body = body.clone();
        body["model"] = Value::from(model);
        let body = body.to_string();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let limit = self
                .limit(deadline, INFERENCE_REQUEST_FLOOR)
                .ok_or_else(|| {
                    format!(
                        "--wait-for-model-timeout: {target} did not answer model '{model}' within \
                     {} s ({} attempt(s))",
                        self.timeout.as_secs_f64(),
                        attempt - 1
                    )
                })?;
            let answer = self.send(base, "POST", path, body.as_bytes(), limit).await;
            if (self.interrupted)() {
                return Err(INTERRUPTED.to_owned());
            }
            if let Some(status) = answer.status.filter(|s| *s < 500) {
                tracing::info!(
                    "{target} answered model '{model}' with status {status}: ready \
                     (attempt {attempt})"
                );
                return Ok(());
            }
            tracing::info!(
                "{target}: {} (attempt {attempt}); trying again",
                answer.describe()
            );
            self.pause(deadline).await?;
        }
    }

    /// The limit of the next request: the floor or the interval, whichever is longer, cut
    /// to what is left of the deadline; `None` once nothing is left.
    fn limit(&self, deadline: Instant, floor: Duration) -> Option<Duration> {
        let left = deadline.checked_duration_since(Instant::now())?;
        (!left.is_zero()).then(|| self.interval.max(floor).min(left))
    }

    /// Waits out the interval (or what is left of the deadline), or until a signal.
    async fn pause(&self, deadline: Instant) -> Result<(), String> {
        let until = Instant::now()
            + self
                .interval
                .min(deadline.saturating_duration_since(Instant::now()));
        loop {
            if (self.interrupted)() {
                return Err(INTERRUPTED.to_owned());
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            monoio::time::sleep(left.min(SIGNAL_POLL)).await;
        }
    }

    /// Completes when a signal comes.
    async fn signalled(&self) {
        while !(self.interrupted)() {
            monoio::time::sleep(SIGNAL_POLL).await;
        }
    }

    /// One request on a fresh connection (a probe must not lean on a kept-alive one).
    async fn send(
        &self,
        base: &BaseUrl,
        method: &str,
        path: &str,
        body: &[u8],
        limit: Duration,
    ) -> Answer {
        let config = PoolConfig {
            request_timeout: Some(limit),
            reuse: ConnectionReuse::Never,
            ca_cert: self.ca_cert.clone(),
            ..PoolConfig::default()
        };
        let pool = match ConnectionPool::for_url(base, config) {
            Ok(pool) => pool,
            Err(e) => {
                return Answer {
                    status: None,
                    body: Vec::new(),
                    error: e.to_string(),
                }
            }
        };
        let mut headers = self.headers.to_vec();
        if method == "POST" && !crate::http::client::has_header(&headers, "content-type") {
            headers.push(("Content-Type".into(), "application/json".into()));
        }
        let request = serialize_request(method, base, path, &headers, body);
        let clock = RunClock::new();
        let mut record = RequestRecord::default();
        let sent = race(
            pool.send(&request, false, &clock, &mut record),
            self.signalled(),
        );
        if let Either::Right(()) = sent.await {
            return Answer {
                status: None,
                body: Vec::new(),
                error: INTERRUPTED.to_owned(),
            };
        }
        Answer {
            status: record.status,
            body: record
                .responses
                .into_iter()
                .flat_map(|chunk| chunk.data)
                .collect(),
            error: record
                .error
                .map_or_else(|| "no answer".to_owned(), |e| e.message),
        }
    }
}

/// The URL a probe request goes to, for messages.
fn full_url(base: &BaseUrl, path: &str) -> String {
    format!(
        "{}://{}{}",
        base.scheme().as_str(),
        base.authority(),
        base.join(path)
    )
}

/// Whether a `/v1/models` body lists `model` as one of its `data[].id`.
fn lists_model(body: &[u8], model: &str) -> bool {
    let Ok(doc) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    doc.get("data")
        .and_then(Value::as_array)
        .is_some_and(|models| models.iter().any(|m| m.get("id") == Some(&json!(model))))
}

/// The inference probe's path and body (without the model). AIPerf has canned requests
/// for chat, completions and embeddings; any other endpoint type gets the chat request,
/// which shows the server is alive but not that this endpoint can serve.
fn inference_request(config: &ProfileConfig, base: &BaseUrl) -> (String, Value) {
    let (default_path, body) = match config.endpoint_type.as_str() {
        "completions" => (
            "/v1/completions",
            json!({ "prompt": PROBE_PROMPT, "max_tokens": 1 }),
        ),
        "embeddings" => ("/v1/embeddings", json!({ "input": PROBE_PROMPT })),
        // Anthropic's API refuses a request without `max_tokens`; the body is chat's.
        "messages" => (
            "/v1/messages",
            json!({
                "messages": [{ "role": "user", "content": PROBE_PROMPT }],
                "max_tokens": 1,
            }),
        ),
        other => {
            if other != "chat" {
                tracing::warn!(
                    "the readiness probe has no request of its own for endpoint type \
                     `{other}`: it sends a chat request, which shows the server is alive \
                     but not that this endpoint can answer"
                );
            }
            (
                "/v1/chat/completions",
                json!({
                    "messages": [{ "role": "user", "content": PROBE_PROMPT }],
                    "max_tokens": 1,
                }),
            )
        }
    };
    // As AIPerf: the custom path, else the URL's own path when it has one, else the
    // endpoint type's.
    let path = match &config.custom_endpoint {
        Some(custom) => custom.clone(),
        None if !base.path().is_empty() => String::new(),
        None => default_path.to_owned(),
    };
    (path, body)
}

#[cfg(test)]
mod tests {
    use clap::{Args as _, Command, FromArgMatches as _};

    use super::*;

    fn config(args: &[&str]) -> ProfileConfig {
        let matches = ProfileConfig::augment_args(Command::new("profile"))
            .try_get_matches_from(["profile", "-m", "m"].iter().chain(args))
            .expect("valid flags");
        ProfileConfig::from_arg_matches(&matches).expect("a config")
    }

    /// As AIPerf picks the probe's target: the custom path, else the URL's own path, else
    /// the endpoint type's; types without a canned request get chat's.
    #[test]
    fn the_inference_probe_goes_where_aiperf_s_does() {
        let target = |args: &[&str], url: &str| {
            let base = BaseUrl::parse(url).expect("a URL");
            let (path, body) = inference_request(&config(args), &base);
            (full_url(&base, &path), body)
        };
        let (url, body) = target(&[], "http://127.0.0.1:8000");
        assert_eq!(url, "http://127.0.0.1:8000/v1/chat/completions");
        assert_eq!(
            body,
            json!({"messages": [{"role": "user", "content": "Lo"}], "max_tokens": 1})
        );
        let (url, body) = target(&["--endpoint-type", "completions"], "http://h:1");
        assert_eq!(url, "http://h:1/v1/completions");
        assert_eq!(body, json!({"prompt": "Lo", "max_tokens": 1}));
        let (url, body) = target(&["--endpoint-type", "messages"], "http://h:1");
        assert_eq!(url, "http://h:1/v1/messages");
        assert_eq!(
            body,
            json!({"messages": [{"role": "user", "content": "Lo"}], "max_tokens": 1})
        );
        let (url, _) = target(&["--endpoint-type", "embeddings"], "http://h:1/serve");
        assert_eq!(url, "http://h:1/serve");
        let (url, body) = target(
            &["--custom-endpoint", "/gen", "--endpoint-type", "x"],
            "h:2",
        );
        assert_eq!(url, "http://h:2/gen");
        assert_eq!(body["max_tokens"], 1);
    }

    #[test]
    fn a_model_is_listed_by_its_id() {
        let body = br#"{"object":"list","data":[{"id":"a"},{"id":"m","object":"model"}]}"#;
        assert!(lists_model(body, "m"));
        assert!(!lists_model(body, "x"));
        assert!(!lists_model(br#"{"data":{"id":"m"}}"#, "m"));
        assert!(!lists_model(b"not json", "m"));
    }
}
