//! The `http` transport: HTTP/1.1 over TCP or TLS with keep-alive, timed at every read,
//! over one or several base URLs.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use aiperf_runtime::config::ProfileConfig;
use aiperf_runtime::engine::ids::given_header;
use aiperf_runtime::http::client::{
    finish_request, has_header, serialize_request_line, ConnectionPool, ConnectionReuse,
    PoolConfig, RequestHead,
};
use aiperf_runtime::http::url::{redact_for_message, BaseUrl};
use aiperf_runtime::plugin::{Plugin, PluginContext, PluginError};
use aiperf_runtime::protocols::TransportProtocol;
use aiperf_runtime::record::{ErrorDetails, Outcome, RequestRecord, RunClock};

/// HTTP/1.1 transport. Instances owned by a worker hold that worker's connection pools,
/// one per URL; others only serialize requests. Which URL a request goes to is the
/// engine's choice (the run's url_selection_strategy), passed to `send`.
///
/// With one URL a prepared request is the exact bytes to write. With several, the request
/// line and `Host` differ per URL, so a prepared request is a small header (method, path,
/// whether to add `Host`) followed by the shared rest; each worker keeps the line per URL
/// and writes line and rest as one buffer. Prepared requests are opaque to the engine.
pub struct HttpTransport {
    urls: Vec<BaseUrl>,
    pools: Vec<ConnectionPool>,
    ids: IdHeaders,
    /// Per URL: the request lines built so far, by the prepared header they serve.
    lines: RefCell<Vec<LineCache>>,
    /// What the requests this instance prepares share before their `Content-Length`.
    head: RefCell<RequestHead>,
}

/// Request lines of one URL, by the prepared header (method, path, `Host` flag) they
/// serve; shared with the send in progress.
type LineCache = Vec<(Vec<u8>, Rc<[u8]>)>;

impl Plugin for HttpTransport {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        let config = ctx.config;
        let urls = config
            .url
            .iter()
            .map(|url| {
                BaseUrl::parse(url).map_err(|e| {
                    let shown = redact_for_message(url);
                    PluginError::Config(format!("--url {shown}: {e}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if urls.is_empty() {
            return Err(PluginError::Config("no --url given".into()));
        }
        let pools = match ctx.worker {
            Some(_) => {
                let pool_config = pool_config(config)?;
                urls.iter()
                    .map(|base| {
                        ConnectionPool::for_url(base, pool_config.clone())
                            .map_err(|e| PluginError::Config(format!("--url {base}: {e}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
            None => Vec::new(),
        };
        Ok(HttpTransport {
            lines: RefCell::new(vec![Vec::new(); urls.len()]),
            head: RefCell::default(),
            urls,
            pools,
            ids: IdHeaders::from_config(config)?,
        })
    }
}

/// The id headers AIPerf adds to every request, each from the record's ids: the request's
/// own (`X-Request-ID`), its session's (`X-Correlation-ID`, or the `--session-header`
/// name), and the session's again as `X-Session-Affinity`, which routers use to keep a
/// session on one replica (on unless `AIPERF_HTTP_X_SESSION_AFFINITY_FROM_CORRELATION_ID`
/// is false, as in AIPerf). A header of the same name given with `--header` replaces ours.
#[derive(Debug, Clone)]
struct IdHeaders {
    request: bool,
    correlation: bool,
    /// `Name: ` of the session id's header.
    correlation_prefix: Vec<u8>,
    affinity: bool,
}

const AFFINITY_ENV: &str = "AIPERF_HTTP_X_SESSION_AFFINITY_FROM_CORRELATION_ID";

/// Headers `--session-header` may not name: the request's framing and the other ids.
const RESERVED_HEADERS: [&str; 6] = [
    "Host",
    "Content-Length",
    "Transfer-Encoding",
    "Connection",
    "X-Request-ID",
    "X-Session-Affinity",
];

impl IdHeaders {
    fn from_config(config: &ProfileConfig) -> Result<Self, PluginError> {
        let given = |name: &str| given_header(&config.headers, name).is_some();
        let affinity_env = std::env::var(AFFINITY_ENV).ok();
        let affinity_off = affinity_env.as_deref().is_some_and(|v| {
            matches!(v.trim().to_ascii_lowercase().as_str(), "false" | "0" | "no")
        });
        let correlation = config.correlation_header();
        // The name goes into every request head: checked as a --header name is, and kept
        // off the headers that frame the request or carry the other ids, which a session
        // id in their place would corrupt.
        let probe = serde_json::json!({ correlation: "x" }).to_string();
        aiperf_runtime::headers::parse_headers(&[probe])
            .map_err(|e| PluginError::Config(format!("--session-header: {e}")))?;
        if let Some(taken) = RESERVED_HEADERS
            .iter()
            .find(|name| name.eq_ignore_ascii_case(correlation))
        {
            return Err(PluginError::Config(format!(
                "--session-header {correlation}: the client sets {taken} itself; name \
                 another header"
            )));
        }
        // As in AIPerf, the endpoint's headers come after the session id's: `--api-key`'s
        // Authorization wins over a session header of that name.
        let by_key = config.api_key.is_some() && correlation.eq_ignore_ascii_case("authorization");
        Ok(IdHeaders {
            request: !given("x-request-id"),
            correlation: !given(correlation) && !by_key,
            correlation_prefix: format!("{correlation}: ").into_bytes(),
            affinity: !affinity_off && !given("x-session-affinity"),
        })
    }

    /// The header lines for `record`, empty when it has no ids (or all are replaced).
    fn lines(&self, record: &RequestRecord) -> Vec<u8> {
        // Ids are ours (UUIDs); the check keeps any other value from forging headers.
        let sendable = |on: bool, value: &str| {
            on && !value.is_empty() && !value.bytes().any(|b| b == b'\r' || b == b'\n')
        };
        let lines = [
            (self.request, &b"X-Request-ID: "[..], &record.x_request_id),
            (
                self.correlation,
                &self.correlation_prefix[..],
                &record.x_correlation_id,
            ),
            (
                self.affinity,
                b"X-Session-Affinity: ",
                &record.x_correlation_id,
            ),
        ]
        .map(|(on, name, value)| (sendable(on, value), name, value));
        // Sized first: one allocation per request, not one per growth step.
        let len = lines
            .iter()
            .filter(|(send, _, _)| *send)
            .map(|(_, name, value)| name.len() + value.len() + 2)
            .sum();
        let mut out = Vec::with_capacity(len);
        for (_, name, value) in lines.iter().filter(|(send, _, _)| *send) {
            out.extend_from_slice(name);
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out
    }
}

/// Where the request line of a serialized request ends (after its CRLF).
fn request_line_end(request: &[u8]) -> Option<usize> {
    request.windows(2).position(|w| w == b"\r\n").map(|i| i + 2)
}

/// The pools' settings from the run's flags.
fn pool_config(config: &ProfileConfig) -> Result<PoolConfig, PluginError> {
    let reuse: ConnectionReuse = config
        .connection_reuse_strategy
        .parse()
        .map_err(PluginError::Config)?;
    let secs = config.request_timeout_seconds;
    let request_timeout = Duration::try_from_secs_f64(secs)
        .map_err(|e| PluginError::Config(format!("--request-timeout-seconds {secs}: {e}")))?;
    Ok(PoolConfig {
        request_timeout: Some(request_timeout),
        reuse,
        ca_cert: config.ca_cert.clone(),
        ..PoolConfig::default()
    })
}

impl HttpTransport {
    /// A request for every URL: the whole request with one URL, else header and rest.
    fn serialize(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Vec<u8> {
        // One URL: the request line is in the shared head; several: each send joins its
        // URL's line to the prepared header.
        let (base, header) = match &self.urls[..] {
            [base] => (Some(base), Vec::new()),
            _ => (
                None,
                encode_header(method, path, !has_header(headers, "host")),
            ),
        };
        let mut head = self.head.borrow_mut();
        let head = head.of(method, base, path, headers);
        // Room for `Content-Length: N` and the blank line.
        let mut out = Vec::with_capacity(header.len() + head.len() + 40 + body.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(head);
        finish_request(&mut out, method, body);
        out
    }

    /// The request line (and `Host`) of URL `index` for a prepared header; built once.
    fn line(&self, index: usize, header: &[u8]) -> Option<Rc<[u8]>> {
        let mut lines = self.lines.borrow_mut();
        let cache = lines.get_mut(index)?;
        if let Some((_, line)) = cache.iter().find(|(h, _)| h == header) {
            return Some(line.clone());
        }
        let (method, path, host) = decode_header(header)?;
        let mut line = Vec::new();
        serialize_request_line(&mut line, method, self.urls.get(index)?, path, host);
        let line: Rc<[u8]> = line.into();
        cache.push((header.to_vec(), line.clone()));
        Some(line)
    }
}

/// `len:u32le`, then `method \0 path \0 host-flag`: what [`decode_header`] reads back.
fn encode_header(method: &str, path: &str, host: bool) -> Vec<u8> {
    let mut fields = Vec::with_capacity(method.len() + path.len() + 3);
    fields.extend_from_slice(method.as_bytes());
    fields.push(0);
    fields.extend_from_slice(path.as_bytes());
    fields.push(0);
    fields.push(u8::from(host));
    let mut out = (fields.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&fields);
    out
}

fn decode_header(fields: &[u8]) -> Option<(&str, &str, bool)> {
    let mut parts = fields.splitn(3, |&b| b == 0);
    let method = std::str::from_utf8(parts.next()?).ok()?;
    let path = std::str::from_utf8(parts.next()?).ok()?;
    let host = parts.next()? == [1];
    Some((method, path, host))
}

/// Splits a prepared multi-URL request into its header fields and the rest.
fn split_prepared(request: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = request.split_first_chunk::<4>()?;
    let len = u32::from_le_bytes(*len) as usize;
    (rest.len() >= len).then(|| rest.split_at(len))
}

impl TransportProtocol for HttpTransport {
    fn prepare(&self, path: &str, headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
        self.serialize("POST", path, headers, body)
    }

    fn prepare_method(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Vec<u8> {
        self.serialize(method, path, headers, body)
    }

    async fn send(
        &self,
        request: &[u8],
        url_index: usize,
        streaming: bool,
        clock: &RunClock,
        record: &mut RequestRecord,
    ) {
        if self.pools.is_empty() {
            return no_pool(
                clock,
                record,
                "this transport instance has no connection pool",
            );
        }
        let Some(pool) = self.pools.get(url_index) else {
            return no_pool(clock, record, "the URL index is past the last --url");
        };
        let ids = self.ids.lines(record);
        if self.urls.len() == 1 {
            return match request_line_end(request).filter(|_| !ids.is_empty()) {
                Some(end) => {
                    let (line, rest) = request.split_at(end);
                    keep_sent(record, &[line, &ids, rest]);
                    pool.send_parts(&[line, &ids, rest], streaming, clock, record)
                        .await
                }
                None => {
                    keep_sent(record, &[request]);
                    pool.send(request, streaming, clock, record).await
                }
            };
        }
        let prepared = split_prepared(request)
            .and_then(|(header, rest)| Some((self.line(url_index, header)?, rest)));
        match prepared {
            Some((line, rest)) => {
                keep_sent(record, &[&line, &ids, rest]);
                pool.send_parts(&[&line, &ids, rest], streaming, clock, record)
                    .await
            }
            None => no_pool(
                clock,
                record,
                "the request was not prepared by this transport",
            ),
        }
    }
}

/// The request's bytes, into a record that asks for them (`--export-level raw`).
fn keep_sent(record: &mut RequestRecord, parts: &[&[u8]]) {
    if let Some(sent) = &mut record.sent_request {
        sent.clear();
        for part in parts {
            sent.extend_from_slice(part);
        }
    }
}

/// Records a request that could not be sent. Only worker-owned instances send, with
/// requests they prepared; reaching this is an engine bug, and the request is still
/// recorded rather than lost.
fn no_pool(clock: &RunClock, record: &mut RequestRecord, why: &str) {
    record.start_ns = clock.now();
    record.end_ns = record.start_ns;
    record.outcome = Some(Outcome::ConnectionError);
    record.error = Some(ErrorDetails::new(None, "TransportError", why));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepared_headers_round_trip() {
        let header = encode_header("POST", "/v1/chat/completions", true);
        let mut request = header.clone();
        request.extend_from_slice(b"Connection: keep-alive\r\n\r\n");
        let (fields, rest) = split_prepared(&request).unwrap();
        assert_eq!(
            decode_header(fields),
            Some(("POST", "/v1/chat/completions", true))
        );
        assert_eq!(rest, b"Connection: keep-alive\r\n\r\n");
        assert_eq!(
            decode_header(&encode_header("GET", "/x", false)[4..]),
            Some(("GET", "/x", false))
        );
        assert_eq!(split_prepared(&[9, 0, 0, 0, b'x']), None);
        assert_eq!(split_prepared(b"PO"), None);
    }

    /// `--session-header` renames the session id's header; `--api-key`'s Authorization
    /// wins over a session header of that name, as AIPerf's header order has it.
    #[test]
    fn the_session_header_gives_way_to_the_api_key() {
        let ids = |args: &[&str]| {
            let cfg = crate::test_config::config(&[&["-m", "m"][..], args].concat());
            IdHeaders::from_config(&cfg).expect("valid")
        };
        let record = RequestRecord {
            x_request_id: "r".into(),
            x_correlation_id: "s".into(),
            ..RequestRecord::default()
        };
        let lines = |h: IdHeaders| String::from_utf8(h.lines(&record)).expect("ASCII");
        let renamed = lines(ids(&["--session-header", "X-Session-ID"]));
        assert!(renamed.contains("X-Session-ID: s\r\n"), "{renamed}");
        assert!(!renamed.contains("X-Correlation-ID"), "{renamed}");
        let keyed = lines(ids(&[
            "--session-header",
            "authorization",
            "--api-key",
            "k",
        ]));
        assert!(
            !keyed.to_ascii_lowercase().contains("authorization"),
            "{keyed}"
        );
    }
}
