//! Video generation jobs (OpenAI and SGLang `/v1/videos`): submit, poll until done,
//! optionally download.
//!
//! One request is several HTTP exchanges: `POST /v1/videos` returns a job
//! (`{"id","status":"queued"}`), `GET /v1/videos/{id}` reports its progress until
//! `completed` or `failed`, and with `--download-video-content`
//! `GET /v1/videos/{id}/content` fetches the file. The worker runs the exchanges
//! ([`EndpointProtocol::follow_up`] decides each next one) and keeps them in one record,
//! so the request's latency is submit to completion.
//!
//! The payload is the JSON object AIPerf builds (it is what `inputs.json` shows); the
//! metadata sets `requires_form_data`, so the engine posts it as a multipart form, one
//! part per field, as AIPerf's transport does (`aiperf_runtime::http::multipart`).

use aiperf_runtime::dataset::Turn;
use aiperf_runtime::metadata::EndpointMetadata;
use aiperf_runtime::plugin::{Plugin, PluginContext, PluginError};
use aiperf_runtime::protocols::{EndpointProtocol, FollowUp, FollowUpRequest};
use aiperf_runtime::record::{ErrorDetails, Outcome, ParsedResponse, RequestRecord, ResponseChunk};
use serde_json::{Map, Value};

use super::payload::{Field, InputShape};
use super::{model_value, response, BodyContext, Prepared};

/// AIPerf 0.13's setting of the poll interval, which `--video-poll-interval` replaces.
const POLL_INTERVAL_ENV: &str = "AIPERF_HTTP_VIDEO_POLL_INTERVAL";

/// Shortest pause between polls: a zero interval would poll as fast as the server answers.
const MIN_POLL_INTERVAL_NS: u64 = 1_000_000;

/// `{"prompt": FIRST TEXT,"model"}` plus `--extra-inputs` (`size`, `seconds`, `seed`,
/// `num_inference_steps`, ...), then polls every `--video-poll-interval` seconds for up
/// to `--video-poll-timeout`.
#[derive(Debug, Clone)]
pub struct VideoGenerationEndpoint {
    prepared: Prepared,
    /// The path jobs are submitted to; a job is polled at `{path}/{id}`.
    jobs_path: String,
    poll_headers: Vec<(String, String)>,
    poll_interval_ns: u64,
    timeout_ns: u64,
    download: bool,
}

fn fields(body: &BodyContext<'_>, _with_max_tokens: bool) -> Vec<(&'static str, Field)> {
    vec![
        ("prompt", Field::Input(InputShape::FirstText)),
        ("model", model_value(body)),
    ]
}

impl Plugin for VideoGenerationEndpoint {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        let prepared = Prepared::new(ctx, fields, false)?;
        let config = ctx.config;
        let seconds = |flag: &str, value: f64| {
            if value.is_finite() && value >= 0.0 {
                Ok((value * 1e9).min(u64::MAX as f64) as u64)
            } else {
                Err(PluginError::Config(format!(
                    "{flag} must be a non-negative number of seconds, got {value}"
                )))
            }
        };
        let poll_interval_ns = match std::env::var(POLL_INTERVAL_ENV) {
            Ok(text) if !config.was_given("video_poll_interval") => {
                let seconds = text.trim().parse::<f64>().ok();
                let seconds = seconds
                    .filter(|s| (0.001..=10.0).contains(s))
                    .ok_or_else(|| {
                        PluginError::Config(format!(
                        "{POLL_INTERVAL_ENV}={text} is not a number of seconds from 0.001 to 10"
                    ))
                    })?;
                (seconds * 1e9) as u64
            }
            _ => seconds("--video-poll-interval", config.video_poll_interval)?,
        }
        .max(MIN_POLL_INTERVAL_NS);
        let timeout_ns = seconds("--video-poll-timeout", config.video_poll_timeout)?;
        let jobs_path = config
            .custom_endpoint
            .clone()
            .or_else(|| prepared.metadata.endpoint_path.clone())
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_owned();
        let mut poll_headers = prepared.headers.clone();
        poll_headers.push(("Accept".to_owned(), "application/json".to_owned()));
        poll_headers.push((
            "User-Agent".to_owned(),
            concat!("aiperf-gen/", env!("CARGO_PKG_VERSION")).to_owned(),
        ));
        Ok(VideoGenerationEndpoint {
            prepared,
            jobs_path,
            poll_headers,
            poll_interval_ns,
            timeout_ns,
            download: config.download_video_content,
        })
    }
}

impl VideoGenerationEndpoint {
    fn get(&self, path: String, delay_ns: u64, keep_responses: bool) -> FollowUp {
        FollowUp::Send(FollowUpRequest {
            method: "GET",
            path,
            headers: self.poll_headers.clone(),
            body: Vec::new(),
            delay_ns,
            keep_responses,
        })
    }
}

impl EndpointProtocol for VideoGenerationEndpoint {
    fn metadata(&self) -> &EndpointMetadata {
        &self.prepared.metadata
    }

    fn format_payload(&self, turn: &Turn, body: &mut Vec<u8>) -> Result<(), PluginError> {
        if turn.texts.is_empty() {
            return Err(PluginError::Config(
                "video_generation needs a text prompt in every turn".into(),
            ));
        }
        self.prepared.format_payload(turn, body);
        Ok(())
    }

    fn request_headers(&self, headers: &mut Vec<(String, String)>) {
        self.prepared.request_headers(headers);
    }

    fn parse_response(
        &self,
        chunk: &ResponseChunk,
    ) -> Result<Option<ParsedResponse>, ErrorDetails> {
        response::parse_video_job(chunk)
    }

    /// Reads the job's status from the last response: poll while it is queued or in
    /// progress, download once it completed (when asked), stop otherwise. Whatever the
    /// last response holds is judged again by `parse_response` on the record thread.
    fn follow_up(&self, record: &RequestRecord, sent: u32) -> FollowUp {
        let Some(last) = record.responses.last() else {
            return FollowUp::Done;
        };
        // A downloaded file is kept without its bytes: the job is done.
        if last.data.is_empty() {
            return FollowUp::Done;
        }
        let Ok(Value::Object(job)) = serde_json::from_slice::<Value>(&last.data) else {
            return FollowUp::Done;
        };
        let has_error = !matches!(job.get("error"), None | Some(Value::Null));
        let status = job.get("status").and_then(Value::as_str).unwrap_or("");
        if has_error || status == "failed" {
            return FollowUp::Done;
        }
        let Some(id) = job_id(&job).or_else(|| submitted_id(record)) else {
            return FollowUp::Fail {
                outcome: Outcome::InbandError,
                error: ErrorDetails::new(
                    None,
                    "VideoGenerationError",
                    format!(
                        "no job id in the video response: {}",
                        response::snippet(&last.data)
                    ),
                ),
            };
        };
        let job_path = format!("{}/{}", self.jobs_path, percent_encode(&id));
        if status == "completed" {
            if !self.download {
                return FollowUp::Done;
            }
            // A same-origin `url` is followed; anything else is fetched where SGLang and
            // OpenAI serve it.
            let path = match job.get("url").and_then(Value::as_str) {
                Some(url) if url.starts_with('/') && !url.starts_with("//") => {
                    percent_encode_path(url)
                }
                _ => format!("{job_path}/content"),
            };
            return self.get(path, 0, false);
        }
        let elapsed = last.recv_ns.saturating_sub(record.start_ns);
        if elapsed >= self.timeout_ns {
            return FollowUp::Fail {
                outcome: Outcome::Timeout,
                error: ErrorDetails::new(
                    Some(504),
                    "TimeoutError",
                    format!(
                        "video generation timed out after {:.1} s (status `{status}`)",
                        elapsed as f64 / 1e9
                    ),
                ),
            };
        }
        // As AIPerf's transport: the first poll right after the submit, the next ones an
        // interval after a status that was not final.
        let wait = if sent == 0 { 0 } else { self.poll_interval_ns };
        self.get(job_path, wait, true)
    }
}

fn job_id(job: &Map<String, Value>) -> Option<String> {
    match job.get("id")? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The id the submit returned, for servers whose polls do not repeat it.
fn submitted_id(record: &RequestRecord) -> Option<String> {
    let first = record.responses.first()?;
    match serde_json::from_slice::<Value>(&first.data).ok()? {
        Value::Object(job) => job_id(&job),
        _ => None,
    }
}

/// A job id as one path segment: everything but RFC 3986's unreserved characters is
/// escaped, so an id cannot add segments, a query or a line break to the request.
fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A server-given path: its segments escaped, its slashes kept.
fn percent_encode_path(path: &str) -> String {
    path.split('/')
        .map(percent_encode)
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::test_support::{chunk, shipped};
    use crate::test_config::{config, context};
    use aiperf_runtime::record::ResponseData;

    fn endpoint(args: &[&str]) -> VideoGenerationEndpoint {
        let cfg = config(args);
        VideoGenerationEndpoint::create(&context(&cfg, shipped("video_generation"))).unwrap()
    }

    fn record(bodies: &[(u64, &str)]) -> RequestRecord {
        RequestRecord {
            start_ns: 100,
            responses: bodies.iter().map(|(at, body)| chunk(*at, body)).collect(),
            ..RequestRecord::default()
        }
    }

    fn sent(follow_up: FollowUp) -> FollowUpRequest {
        match follow_up {
            FollowUp::Send(request) => request,
            other => panic!("expected a request, got {other:?}"),
        }
    }

    #[test]
    fn metadata_and_payload() {
        let e = endpoint(&["-m", "wan", "--extra-inputs", "size:1280x720,seconds:4"]);
        let m = e.metadata();
        assert_eq!(m.endpoint_path.as_deref(), Some("/v1/videos"));
        assert_eq!(m.metrics_title.as_deref(), Some("Video Generation Metrics"));
        assert!(m.requires_polling && m.produces_videos && m.requires_form_data);
        assert!(!m.supports_streaming && !m.produces_tokens && m.tokenizes_input);
        let turn = Turn {
            texts: vec!["a cat surfing".into()],
            ..Turn::default()
        };
        let mut body = Vec::new();
        e.format_payload(&turn, &mut body).unwrap();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"prompt":"a cat surfing","model":"wan","size":"1280x720","seconds":4}"#
        );
    }

    #[test]
    fn polls_until_completed() {
        let e = endpoint(&["-m", "m", "--video-poll-interval", "0.25", "-H", "X-A:b"]);
        let submit = (
            200,
            r#"{"id":"video_1","object":"video","status":"queued","progress":0}"#,
        );
        let poll = sent(e.follow_up(&record(&[submit]), 0));
        assert_eq!(poll.method, "GET");
        assert_eq!(poll.path, "/v1/videos/video_1");
        // The first poll right after the submit, as AIPerf's transport polls.
        assert_eq!(poll.delay_ns, 0);
        assert!(poll.keep_responses && poll.body.is_empty());
        assert_eq!(poll.headers[0], ("X-A".to_owned(), "b".to_owned()));
        assert!(poll
            .headers
            .contains(&("Accept".to_owned(), "application/json".to_owned())));

        let progress = (
            300,
            r#"{"id":"video_1","status":"in_progress","progress":40}"#,
        );
        let second = sent(e.follow_up(&record(&[submit, progress]), 1));
        assert_eq!(second.path, poll.path);
        // Then an interval after each status that was not final.
        assert_eq!(second.delay_ns, 250_000_000);
        let done = (
            400,
            r#"{"id":"video_1","status":"completed","progress":100}"#,
        );
        assert_eq!(
            e.follow_up(&record(&[submit, progress, done]), 2),
            FollowUp::Done
        );
        // Polls that omit the id use the submitted one.
        let anonymous = (300, r#"{"status":"in_progress"}"#);
        assert_eq!(
            sent(e.follow_up(&record(&[submit, anonymous]), 1)).path,
            poll.path
        );
    }

    #[test]
    fn downloads_when_asked() {
        let e = endpoint(&["-m", "m", "--download-video-content"]);
        let done = (400, r#"{"id":"v/1 x","status":"completed"}"#);
        let download = sent(e.follow_up(&record(&[done]), 1));
        assert_eq!(download.path, "/v1/videos/v%2F1%20x/content");
        assert_eq!(download.delay_ns, 0);
        assert!(!download.keep_responses);
        let own_url = (
            400,
            r#"{"id":"v1","status":"completed","url":"/files/v 1.mp4"}"#,
        );
        assert_eq!(
            sent(e.follow_up(&record(&[own_url]), 1)).path,
            "/files/v%201.mp4"
        );
        let elsewhere = (
            400,
            r#"{"id":"v1","status":"completed","url":"https://cdn/x.mp4"}"#,
        );
        assert_eq!(
            sent(e.follow_up(&record(&[elsewhere]), 1)).path,
            "/v1/videos/v1/content"
        );
        // After the download (kept without its bytes) the request is complete.
        assert_eq!(e.follow_up(&record(&[done, (450, "")]), 2), FollowUp::Done);
    }

    #[test]
    fn stops_on_failure_garbage_and_timeout() {
        let e = endpoint(&["-m", "m", "--video-poll-timeout", "1"]);
        let failed = (
            300,
            r#"{"id":"v","status":"failed","error":{"message":"OOM"}}"#,
        );
        assert_eq!(e.follow_up(&record(&[failed]), 1), FollowUp::Done);
        assert_eq!(
            e.follow_up(&record(&[(300, "not json")]), 1),
            FollowUp::Done
        );
        assert_eq!(e.follow_up(&record(&[]), 0), FollowUp::Done);
        let no_id = e.follow_up(&record(&[(300, r#"{"status":"queued"}"#)]), 0);
        assert!(matches!(
            no_id,
            FollowUp::Fail {
                outcome: Outcome::InbandError,
                ..
            }
        ));
        let late = (100 + 1_000_000_000, r#"{"id":"v","status":"in_progress"}"#);
        match e.follow_up(&record(&[late]), 9) {
            FollowUp::Fail { outcome, error } => {
                assert_eq!(outcome, Outcome::Timeout);
                assert_eq!(error.code, Some(504));
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        // An id with a line break cannot break the request line.
        let evil = (300, "{\"id\":\"a\\r\\nX: y\",\"status\":\"queued\"}");
        assert_eq!(
            sent(e.follow_up(&record(&[evil]), 0)).path,
            "/v1/videos/a%0D%0AX%3A%20y"
        );
    }

    #[test]
    fn parses_job_states() {
        let e = endpoint(&["-m", "m"]);
        let data = |s: &str| e.parse_response(&chunk(1, s)).map(|p| p.map(|p| p.data));
        assert_eq!(
            data(r#"{"id":"v","status":"queued"}"#),
            Ok(Some(ResponseData::Empty))
        );
        assert_eq!(
            data(r#"{"id":"v","status":"completed","error":null}"#),
            Ok(Some(ResponseData::Videos {
                count: 1,
                inference_time_s: None,
                peak_memory_mb: None
            }))
        );
        // SGLang's figures of the generation.
        assert_eq!(
            data(r#"{"id":"v","status":"completed","inference_time_s":2.5,"peak_memory_mb":9}"#),
            Ok(Some(ResponseData::Videos {
                count: 1,
                inference_time_s: Some(2.5),
                peak_memory_mb: Some(9.0)
            }))
        );
        // A failed job is AIPerf's video error, whatever its `error` holds.
        let failed = |job: &str| {
            let err = data(job).unwrap_err();
            assert_eq!(
                (err.code, err.kind.as_str()),
                (Some(500), "VideoGenerationError")
            );
            err.message
        };
        assert_eq!(
            failed(r#"{"id":"v","status":"failed","error":{"message":"OOM"}}"#),
            "Video generation failed: OOM"
        );
        assert_eq!(
            failed(r#"{"id":"v","status":"failed","error":"plain"}"#),
            "Video generation failed: plain"
        );
        assert_eq!(
            failed(r#"{"id":"v","status":"failed"}"#),
            "Video generation failed: Unknown error"
        );
        assert_eq!(
            failed(r#"{"id":"v","status":"failed","error":{"code":9}}"#),
            "Video generation failed: Unknown error"
        );
        assert_eq!(
            failed(r#"{"id":"v","status":"failed","error":null}"#),
            "Video generation failed: None"
        );
        assert_eq!(data(""), Ok(None));
    }
}
