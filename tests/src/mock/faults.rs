//! Misbehaving on purpose: `aiperf-mock --fault MODE` (or `--faults FILE`) answers some or
//! all requests with a scripted byte sequence over the real socket instead of a correct
//! response, so a client's handling of broken servers can be tested end to end.
//!
//! Each known way a real server's response went wrong for benchmark clients has a mode
//! (`bc01`-`bc08`, `bc10`, `bc15`, `bc19`-`bc22`, numbered as the team's case list numbers
//! them; `aiperf-mock --help` and the README describe each) that replays its reads with
//! their timing; others break the connection (`reset-mid-stream`, `stall`,
//! `slow-headers`, `garbage`, `close-before-response`) or answer with an error status
//! (`http-500`, `http-429`, `http-503`). See [`FaultMode::ALL`].
//!
//! A script is a list of writes, each at a time after the request arrived (scaled by
//! `--fault-time-scale`), then an ending: keep the connection, close it, reset it, or hold
//! it silent. The head goes out with the first write, so a case's first read is also the
//! response's first byte. Writes listed as separate reads are at least 1 ms apart, so
//! they reach the client as separate reads.
//!
//! Requests are counted across the server (1-based); a rule with `every: N` faults the
//! requests whose number is a multiple of N, the first matching rule winning. The others
//! are served normally by hyper, one request per hand-over: the request's bytes are given
//! to hyper followed by end-of-input, so hyper answers it (possibly with
//! `Connection: close`) and hands the socket back for the next request.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{bail, Context as _};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::debug;

use super::handlers::{self, AppState};

/// Largest request head the fault layer reads.
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body the fault layer buffers (the mock's own limit).
const MAX_BODY: usize = handlers::MAX_BODY_BYTES;
/// How long `stall` holds a connection silent unless the client gives up first.
const STALL: Duration = Duration::from_secs(600);

/// A socket the fault layer can also reset: plain TCP or TLS over TCP.
pub(crate) trait Socket: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    fn tcp(&self) -> &TcpStream;
}

impl Socket for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Socket for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

/// How a script leaves the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum End {
    /// Ready for the next request.
    KeepAlive,
    /// FIN.
    Close,
    /// RST (zero linger), as a crashed or killed server leaves it.
    Reset,
    /// Send nothing more and keep the connection open until the client closes it.
    Stall,
}

/// One write of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// After the request's arrival (before scaling).
    pub at: Duration,
    pub bytes: Vec<u8>,
    /// Write the bytes one at a time, this far apart (slow headers).
    pub drip: Option<Duration>,
}

/// A scripted response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub writes: Vec<Write>,
    pub end: End,
}

/// What a faulted request gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Script(Script),
    /// BC-20: a connection's first request is answered normally, without
    /// `Connection: close`, and the server then closes the connection at once, reading
    /// nothing more (an idle timeout of zero racing the client's reuse): a request sent
    /// on it meets a closed socket, never read.
    CloseReused,
}

/// A named misbehaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMode {
    Bc01,
    Bc02,
    Bc03,
    Bc04,
    Bc05,
    Bc06,
    /// BC-06's other half: no finish reason and no `[DONE]`, ended cleanly.
    Bc06Truncated,
    Bc07a,
    Bc07b,
    Bc08,
    Bc10,
    Bc15,
    Bc19,
    Bc20,
    Bc21,
    Bc22,
    ResetMidStream,
    Stall,
    SlowHeaders,
    Garbage,
    CloseBeforeResponse,
    Http500,
    Http429,
    Http503,
}

impl FaultMode {
    /// Every mode and its name on the command line.
    pub const ALL: [(&'static str, FaultMode); 24] = [
        ("bc01", FaultMode::Bc01),
        ("bc02", FaultMode::Bc02),
        ("bc03", FaultMode::Bc03),
        ("bc04", FaultMode::Bc04),
        ("bc05", FaultMode::Bc05),
        ("bc06", FaultMode::Bc06),
        ("bc06-truncated", FaultMode::Bc06Truncated),
        ("bc07a", FaultMode::Bc07a),
        ("bc07b", FaultMode::Bc07b),
        ("bc08", FaultMode::Bc08),
        ("bc10", FaultMode::Bc10),
        ("bc15", FaultMode::Bc15),
        ("bc19", FaultMode::Bc19),
        ("bc20", FaultMode::Bc20),
        ("bc21", FaultMode::Bc21),
        ("bc22", FaultMode::Bc22),
        ("reset-mid-stream", FaultMode::ResetMidStream),
        ("stall", FaultMode::Stall),
        ("slow-headers", FaultMode::SlowHeaders),
        ("garbage", FaultMode::Garbage),
        ("close-before-response", FaultMode::CloseBeforeResponse),
        ("http-500", FaultMode::Http500),
        ("http-429", FaultMode::Http429),
        ("http-503", FaultMode::Http503),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("?", |(n, _)| n)
    }

    /// What the mode does to a request.
    pub fn action(self) -> Action {
        match self {
            FaultMode::Bc20 => Action::CloseReused,
            mode => Action::Script(mode.script()),
        }
    }

    fn script(self) -> Script {
        match self {
            // BC-01: three events in one read.
            FaultMode::Bc01 => sse(
                &[(120, chat("Hello") + &chat(" world") + DONE)],
                Terminator::Yes,
            ),
            // BC-02: an event split across reads, its blank line in the next read, with
            // `event:`/`id:` fields.
            FaultMode::Bc02 => sse(
                &[
                    (
                        300,
                        r#"data: {"choices":[{"index":0,"delta":{"content":"Hel"#.into(),
                    ),
                    (301, "lo\"}}]}\n".into()),
                    (
                        320,
                        "\nevent: message\nid: 7\ndata: {\"choices\":[{\"index\":0,\"delta\":\
                         {\"content\":\" there\"}}]}\n\n"
                            .into(),
                    ),
                    (330, DONE.into()),
                ],
                Terminator::Yes,
            ),
            // BC-03: `data:` without a space, then TGI's error frame.
            FaultMode::Bc03 => sse(
                &[
                    (
                        80,
                        "data:{\"token\":{\"id\":42,\"text\":\"Hi\",\"logprob\":-0.1,\
                         \"special\":false},\"generated_text\":null,\"details\":null}\n\n"
                            .into(),
                    ),
                    (
                        95,
                        "data:{\"error\":\"generation failed: shape mismatch\",\
                         \"error_type\":\"generation\"}\n\n"
                            .into(),
                    ),
                ],
                Terminator::Yes,
            ),
            // BC-04: comments and keep-alives during a long prefill.
            FaultMode::Bc04 => sse(
                &[
                    (30_000, ":\n\n".into()),
                    (60_000, ": keep-alive\n\n".into()),
                    (61_500, chat("A")),
                    (61_520, chat("B") + DONE),
                ],
                Terminator::Yes,
            ),
            // BC-05: CRLF and bare CR; R3 and R4 (both 230 ms) split a CRLF.
            FaultMode::Bc05 => sse(
                &[
                    (
                        200,
                        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\r\n\r\n"
                            .into(),
                    ),
                    (
                        215,
                        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"y\"}}]}\r\r"
                            .into(),
                    ),
                    (230, "data: [DONE]\r\n".into()),
                    (231, "\r\n".into()),
                ],
                Terminator::Yes,
            ),
            // BC-06: a finish reason and usage, no `[DONE]`; terminator, then FIN.
            FaultMode::Bc06 => sse(
                &[
                    (150, chat("Yes")),
                    (
                        170,
                        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\
                         \"stop\"}],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":1,\
                         \"total_tokens\":10}}\n\n"
                            .into(),
                    ),
                ],
                Terminator::ThenClose(171),
            ),
            FaultMode::Bc06Truncated => sse(
                &[(150, chat("Yes")), (170, chat(" and"))],
                Terminator::ThenClose(171),
            ),
            // BC-07 A: an error object after 200, then `[DONE]`.
            FaultMode::Bc07a => sse(
                &[
                    (
                        5000,
                        "data: {\"error\":{\"message\":\"upstream timed out\",\"type\":\
                         \"GatewayTimeout\",\"code\":504}}\n\n"
                            .into(),
                    ),
                    (5001, DONE.into()),
                ],
                Terminator::Yes,
            ),
            // BC-07 B: partial tokens, then an `event: error`.
            FaultMode::Bc07b => sse(
                &[
                    (400, chat("Par") + &chat("tial")),
                    (
                        900,
                        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\
                         \"overloaded_error\",\"message\":\"busy\"}}\n\n"
                            .into(),
                    ),
                ],
                Terminator::Yes,
            ),
            // BC-08: a role-only prelude long before the first token.
            FaultMode::Bc08 => sse(
                &[
                    (
                        4,
                        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\
                         \"content\":\"\"},\"finish_reason\":null}]}\n\n"
                            .into(),
                    ),
                    (850, chat("The")),
                    (870, chat(" answer")),
                    (
                        880,
                        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\
                         \"stop\"}]}\n\n"
                            .to_owned()
                            + DONE,
                    ),
                ],
                Terminator::Yes,
            ),
            // BC-10: completions text, then a usage-only chunk labelled as chat.
            FaultMode::Bc10 => sse(
                &[
                    (
                        120,
                        "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"choices\":\
                         [{\"index\":0,\"text\":\"4\",\"finish_reason\":\"stop\"}]}\n\n"
                            .into(),
                    ),
                    (
                        121,
                        "data: {\"id\":\"cmpl-1\",\"object\":\"chat.completion.chunk\",\
                         \"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":1,\
                         \"total_tokens\":8}}\n\n"
                            .into(),
                    ),
                    (122, DONE.into()),
                ],
                Terminator::Yes,
            ),
            // BC-15: four tokens per chunk, continuous usage.
            FaultMode::Bc15 => {
                let words = ["a b c d", " e f g h", " i j k l", " m n o p"];
                let mut reads: Vec<(u64, String)> = words
                    .iter()
                    .enumerate()
                    .map(|(i, w)| {
                        let n = 4 * (i + 1);
                        let finish = if i == 3 { "\"stop\"" } else { "null" };
                        (
                            100 + 10 * i as u64,
                            format!(
                                "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\
                                 \"{w}\"}},\"finish_reason\":{finish}}}],\"usage\":\
                                 {{\"prompt_tokens\":5,\"completion_tokens\":{n},\
                                 \"total_tokens\":{}}}}}\n\n",
                                n + 5
                            ),
                        )
                    })
                    .collect();
                if let Some(last) = reads.last_mut() {
                    last.1.push_str(DONE);
                }
                sse(&reads, Terminator::Yes)
            }
            // BC-19: TTFT 2 s, then 99 more tokens 20 ms apart.
            FaultMode::Bc19 => {
                let mut reads: Vec<(u64, String)> = (0..100u64)
                    .map(|i| (2000 + 20 * i, chat(super::tokens::token(i))))
                    .collect();
                if let Some(last) = reads.last_mut() {
                    last.1.push_str(DONE);
                }
                sse(&reads, Terminator::Yes)
            }
            // BC-21: one chunk, then FIN without the terminating chunk.
            FaultMode::Bc21 => sse(
                &[(
                    50,
                    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"A\"}}]}\n\n".into(),
                )],
                Terminator::No(End::Close),
            ),
            FaultMode::Bc22 | FaultMode::Http429 => plain(
                "429 Too Many Requests",
                &[("Retry-After", "2")],
                "{\"error\":\"Model is overloaded\",\"error_type\":\"overloaded\"}",
            ),
            FaultMode::Http503 => plain(
                "503 Service Unavailable",
                &[],
                "{\"error\":{\"message\":\"queue full\",\"type\":\"ServiceUnavailable\",\
                 \"code\":503}}",
            ),
            FaultMode::Http500 => plain(
                "500 Internal Server Error",
                &[],
                "{\"error\":{\"message\":\"internal error\",\"type\":\"InternalServerError\",\
                 \"code\":500}}",
            ),
            FaultMode::ResetMidStream => {
                let mut script = sse(
                    &[(20, chat("one")), (40, chat(" two"))],
                    Terminator::No(End::Reset),
                );
                // A pause before the reset: an RST that overtakes unread data discards it,
                // and the client should see both events first.
                script.writes.push(write_at(80, Vec::new()));
                script
            }
            FaultMode::Stall => {
                let mut script = sse(&[(10, chat("one"))], Terminator::No(End::Stall));
                // The head alone at arrival, so a client sees the response start.
                script.writes.insert(0, write_at(0, sse_head()));
                if let Some(first) = script.writes.get_mut(1) {
                    first.bytes.drain(..sse_head().len());
                }
                script
            }
            FaultMode::SlowHeaders => {
                let mut script = sse(&[(0, chat("slow") + DONE)], Terminator::Yes);
                // The head one byte every 5 ms (~0.4 s), then the body at once.
                let head = sse_head();
                if let Some(first) = script.writes.first_mut() {
                    first.bytes.drain(..head.len());
                    first.at = Duration::from_millis(5 * head.len() as u64);
                }
                script.writes.insert(
                    0,
                    Write {
                        at: Duration::ZERO,
                        bytes: head,
                        drip: Some(Duration::from_millis(5)),
                    },
                );
                script
            }
            FaultMode::Garbage => Script {
                writes: vec![write_at(
                    5,
                    b"\x16\x03\x01\x00\xa5garbage\x00\xff not HTTP at all\r\n\r\n".to_vec(),
                )],
                end: End::Close,
            },
            FaultMode::CloseBeforeResponse => Script {
                writes: Vec::new(),
                end: End::Close,
            },
            FaultMode::Bc20 => Script {
                writes: Vec::new(),
                end: End::KeepAlive,
            },
        }
    }
}

impl std::str::FromStr for FaultMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        Self::ALL
            .iter()
            .find(|(name, _)| *name == wanted)
            .map(|(_, m)| *m)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|(n, _)| *n).collect();
                format!("unknown fault `{s}`; known: {}", names.join(", "))
            })
    }
}

const DONE: &str = "data: [DONE]\n\n";

/// `C(X)` of the cases: a chat chunk carrying `text`.
fn chat(text: &str) -> String {
    let text = serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into());
    format!(
        "data: {{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\
         \"delta\":{{\"content\":{text}}},\"finish_reason\":null}}]}}\n\n"
    )
}

fn sse_head() -> Vec<u8> {
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
      Transfer-Encoding: chunked\r\n\r\n"
        .to_vec()
}

fn write_at(ms: u64, bytes: Vec<u8>) -> Write {
    Write {
        at: Duration::from_millis(ms),
        bytes,
        drip: None,
    }
}

/// How a chunked stream ends.
enum Terminator {
    /// The last chunk, with the last read; keep-alive.
    Yes,
    /// The last chunk alone at this time, then FIN.
    ThenClose(u64),
    /// No last chunk; the connection ends so.
    No(End),
}

/// An SSE response whose reads are `reads` (ms, de-chunked text), each sent as one chunk;
/// the head goes with the first read.
fn sse(reads: &[(u64, String)], terminator: Terminator) -> Script {
    let mut writes: Vec<Write> = reads
        .iter()
        .map(|(ms, text)| write_at(*ms, format!("{:x}\r\n{text}\r\n", text.len()).into_bytes()))
        .collect();
    if let Some(first) = writes.first_mut() {
        let mut bytes = sse_head();
        bytes.append(&mut first.bytes);
        first.bytes = bytes;
    }
    let end = match terminator {
        Terminator::Yes => {
            if let Some(last) = writes.last_mut() {
                last.bytes.extend_from_slice(b"0\r\n\r\n");
            }
            End::KeepAlive
        }
        Terminator::ThenClose(ms) => {
            writes.push(write_at(ms, b"0\r\n\r\n".to_vec()));
            End::Close
        }
        Terminator::No(end) => end,
    };
    Script { writes, end }
}

/// A complete `Content-Length` response at arrival, kept alive.
fn plain(status: &str, headers: &[(&str, &str)], body: &str) -> Script {
    let mut head = format!("HTTP/1.1 {status}\r\nContent-Type: application/json\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    Script {
        writes: vec![write_at(0, head.into_bytes())],
        end: End::KeepAlive,
    }
}

/// One fault rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// What the rule is called in logs (`bc21`, `custom`).
    pub name: String,
    /// Faults requests whose number (1-based, server-wide) is a multiple of this.
    pub every: u64,
    pub action: Action,
}

/// Which requests misbehave, and how.
#[derive(Debug)]
pub struct FaultPlan {
    pub rules: Vec<Rule>,
    /// Multiplies every script time (e.g. 0.01 to replay BC-04's minute in 0.6 s).
    pub time_scale: f64,
    requests: AtomicU64,
}

impl FaultPlan {
    pub fn new(rules: Vec<Rule>, time_scale: f64) -> Self {
        FaultPlan {
            rules,
            time_scale,
            requests: AtomicU64::new(0),
        }
    }

    /// One mode for every `every`-th request.
    pub fn single(mode: FaultMode, every: u64, time_scale: f64) -> Self {
        let rule = Rule {
            name: mode.name().to_owned(),
            every: every.max(1),
            action: mode.action(),
        };
        Self::new(vec![rule], time_scale)
    }

    /// Reads a faults file: see [`rules_from_json`].
    pub fn from_file(path: &std::path::Path, time_scale: f64) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::from_json(&text, time_scale).with_context(|| format!("in {}", path.display()))
    }

    /// A plan from a faults file's text: see [`rules_from_json`].
    pub fn from_json(text: &str, time_scale: f64) -> anyhow::Result<Self> {
        Ok(Self::new(rules_from_json(text)?, time_scale))
    }

    /// The rule for the next request, counting it.
    pub fn next_request(&self) -> Option<&Rule> {
        let n = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        self.rules.iter().find(|r| n % r.every == 0)
    }

    /// Requests seen so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn scaled(&self, d: Duration) -> Duration {
        Duration::try_from_secs_f64(d.as_secs_f64() * self.time_scale).unwrap_or(Duration::ZERO)
    }
}

/// The rules of a faults file: a JSON array of rules,
/// `{"fault": "bc21", "every": 4}` for a named mode or
/// `{"script": {"writes": [{"at_ms": 10, "data": "HTTP/1.1 200 OK\r\n..."}],
/// "end": "close"}, "every": 2}` for raw bytes of your own (`data` is text; use
/// `data_hex` for arbitrary bytes, `drip_ms` to write a byte at a time). `every` is 1
/// unless given, and at least 1, as `--fault-every`.
///
/// # Errors
/// Malformed JSON, no rule at all, an unknown key or fault, a bad script, or `every: 0`,
/// naming the rule (`rule 1 (bc21)`: its place in the list, from 1, and its name).
pub fn rules_from_json(text: &str) -> anyhow::Result<Vec<Rule>> {
    let items: Vec<serde_json::Value> = serde_json::from_str(text)?;
    if items.is_empty() {
        bail!("no rules: give at least one (`[{{\"fault\": \"bc21\"}}]`)");
    }
    let mut rules = Vec::with_capacity(items.len());
    for (i, item) in (1..).zip(items) {
        let spec: RuleSpec = serde_json::from_value(item).with_context(|| format!("rule {i}"))?;
        let (name, action) = match (spec.fault, spec.script) {
            (Some(name), None) => {
                let mode: FaultMode = name.parse().map_err(|e| anyhow::anyhow!("rule {i}: {e}"))?;
                (mode.name().to_owned(), mode.action())
            }
            (None, Some(script)) => (
                format!("custom-{i}"),
                Action::Script(script.build().with_context(|| format!("rule {i}"))?),
            ),
            _ => bail!("rule {i}: give exactly one of `fault` and `script`"),
        };
        // No request number is a multiple of 0, and `--fault-every 0` is refused: refuse it
        // here too rather than read it as some other period.
        let every = match spec.every {
            None => 1,
            Some(0) => bail!("rule {i} ({name}): `every`: 0 is not in 1..{}", u64::MAX),
            Some(n) => n,
        };
        rules.push(Rule {
            name,
            every,
            action,
        });
    }
    Ok(rules)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    fault: Option<String>,
    script: Option<ScriptSpec>,
    every: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptSpec {
    writes: Vec<WriteSpec>,
    end: End,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteSpec {
    at_ms: u64,
    data: Option<String>,
    data_hex: Option<String>,
    drip_ms: Option<u64>,
}

impl ScriptSpec {
    fn build(self) -> anyhow::Result<Script> {
        let mut writes = Vec::with_capacity(self.writes.len());
        for w in self.writes {
            let bytes = match (w.data, w.data_hex) {
                (Some(text), None) => text.into_bytes(),
                (None, Some(hex)) => decode_hex(&hex)?,
                _ => bail!("a write needs exactly one of `data` and `data_hex`"),
            };
            writes.push(Write {
                at: Duration::from_millis(w.at_ms),
                bytes,
                drip: w.drip_ms.map(Duration::from_millis),
            });
        }
        Ok(Script {
            writes,
            end: self.end,
        })
    }
}

fn decode_hex(hex: &str) -> anyhow::Result<Vec<u8>> {
    let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if digits.len() % 2 != 0 {
        bail!("odd number of hex digits");
    }
    digits
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair)?;
            Ok(u8::from_str_radix(text, 16)?)
        })
        .collect()
}

/// Serves one connection with the fault plan: faulted requests get their script, the
/// rest go to hyper one at a time.
pub(crate) async fn serve<S: Socket>(
    mut io: S,
    state: Arc<AppState>,
    plan: Arc<FaultPlan>,
    mut closing: watch::Receiver<bool>,
) {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let request = tokio::select! {
            r = read_request(&mut io, &mut buf) => r,
            _ = closing.changed() => return,
        };
        let len = match request {
            Ok(Some(len)) => len,
            Ok(None) => return,
            Err(e) => {
                debug!("fault layer: {e:#}");
                return;
            }
        };
        let arrival = Instant::now();
        let request: Vec<u8> = buf.drain(..len).collect();
        let Some(rule) = plan.next_request() else {
            if let Err(e) = serve_one(&mut io, request, &state).await {
                debug!("fault layer: {e:#}");
                return;
            }
            continue;
        };
        let _guard = state.stats.enter();
        debug!(fault = %rule.name, "faulted request");
        let script = match &rule.action {
            Action::Script(script) => script,
            Action::CloseReused => {
                if let Err(e) = serve_one(&mut io, request, &state).await {
                    debug!("fault layer: {e:#}");
                }
                // Closed without reading what came after: the kernel answers a request
                // that arrives (or arrived) on it with a reset.
                return;
            }
        };
        let played = tokio::select! {
            r = play(&mut io, script, &plan, arrival) => r,
            _ = closing.changed() => return,
        };
        if let Err(e) = played {
            debug!("fault layer: {e:#}");
            return;
        }
        match script.end {
            End::KeepAlive => continue,
            End::Close => {
                let _ = io.shutdown().await;
                return;
            }
            End::Reset => {
                // Zero linger makes the close send RST instead of FIN.
                let _ = io.tcp().set_zero_linger();
                return;
            }
            End::Stall => {
                // Silent until the client gives up (its read returns) or the server stops.
                let mut byte = [0u8; 1];
                tokio::select! {
                    _ = io.read(&mut byte) => {}
                    _ = tokio::time::sleep(STALL) => {}
                    _ = closing.changed() => {}
                }
                return;
            }
        }
    }
}

async fn play<S: Socket>(
    io: &mut S,
    script: &Script,
    plan: &FaultPlan,
    arrival: Instant,
) -> anyhow::Result<()> {
    for w in &script.writes {
        tokio::time::sleep_until(arrival + plan.scaled(w.at)).await;
        match w.drip {
            None => io.write_all(&w.bytes).await?,
            Some(gap) => {
                for byte in &w.bytes {
                    io.write_all(std::slice::from_ref(byte)).await?;
                    io.flush().await?;
                    tokio::time::sleep(plan.scaled(gap)).await;
                }
            }
        }
        io.flush().await?;
    }
    Ok(())
}

/// Reads one request (head and `Content-Length` body) into `buf`; returns its length,
/// `None` when the client closed between requests.
async fn read_request<S: Socket>(io: &mut S, buf: &mut Vec<u8>) -> anyhow::Result<Option<usize>> {
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(head_end) = find(buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
            if head.lines().any(|l| {
                l.strip_prefix("transfer-encoding:")
                    .is_some_and(|v| v.contains("chunked"))
            }) {
                bail!("chunked request bodies are not supported in fault mode");
            }
            let body = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse::<usize>())
                .transpose()
                .context("invalid Content-Length")?
                .unwrap_or(0);
            if body > MAX_BODY {
                bail!("request body of {body} bytes is too large");
            }
            let total = head_end + 4 + body;
            if buf.len() >= total {
                return Ok(Some(total));
            }
        } else if buf.len() > MAX_HEAD {
            bail!("request head larger than {MAX_HEAD} bytes");
        }
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            if buf.is_empty() {
                return Ok(None);
            }
            bail!("client closed in the middle of a request");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Lets hyper answer one request already read: it reads `request`, then end of input,
/// and writes to the socket directly. Shutdown is not passed on, so the socket outlives
/// hyper's connection and can carry the next request.
struct OneRequest<'a, S> {
    io: &'a mut S,
    request: Vec<u8>,
    read: usize,
}

impl<S: Socket> AsyncRead for OneRequest<'_, S> {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let rest = &this.request[this.read..];
        let n = rest.len().min(out.remaining());
        out.put_slice(&rest[..n]);
        this.read += n;
        Poll::Ready(Ok(()))
    }
}

impl<S: Socket> AsyncWrite for OneRequest<'_, S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        // Flushed, not closed: the fault layer owns the socket.
        Pin::new(&mut *self.get_mut().io).poll_flush(cx)
    }
}

async fn serve_one<S: Socket>(
    io: &mut S,
    request: Vec<u8>,
    state: &Arc<AppState>,
) -> anyhow::Result<()> {
    let state = Arc::clone(state);
    let service =
        service_fn(move |req| handlers::handle(Arc::clone(&state), req, std::time::Instant::now()));
    let one = OneRequest {
        io,
        request,
        read: 0,
    };
    http1::Builder::new()
        // The end of input after the request must not cut the response short.
        .half_close(true)
        .keep_alive(true)
        .serve_connection(TokioIo::new(one), service)
        .await
        .context("serving a request")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mode_parses_by_name_and_has_a_script() {
        for (name, mode) in FaultMode::ALL {
            assert_eq!(name.parse::<FaultMode>(), Ok(mode));
            assert_eq!(mode.name(), name);
            if let Action::Script(script) = mode.action() {
                // Write times never go backwards.
                let times: Vec<Duration> = script.writes.iter().map(|w| w.at).collect();
                let mut sorted = times.clone();
                sorted.sort();
                assert_eq!(times, sorted, "{name}");
            }
        }
        assert_eq!("HTTP_500".parse::<FaultMode>(), Ok(FaultMode::Http500));
        assert!("bc99"
            .parse::<FaultMode>()
            .unwrap_err()
            .contains("bc01, bc02"));
    }

    #[test]
    fn the_readme_describes_every_mode() {
        // The client-case document lives outside the repository: the README has to say
        // what each mode does itself.
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
            .expect("README.md");
        let missing: Vec<&str> = FaultMode::ALL
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| !readme.contains(&format!("`{name}`")))
            .collect();
        assert!(missing.is_empty(), "not in README.md: {missing:?}");
        assert!(!readme.contains("client-cases.md"));
    }

    #[test]
    fn bc21_is_one_chunk_without_terminator() {
        let Action::Script(script) = FaultMode::Bc21.action() else {
            panic!()
        };
        assert_eq!(script.end, End::Close);
        assert_eq!(script.writes.len(), 1);
        let text = String::from_utf8(script.writes[0].bytes.clone()).unwrap();
        assert!(
            text.ends_with(
                "39\r\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"A\"}}]}\n\n\r\n"
            ),
            "{text:?}"
        );
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
    }

    #[test]
    fn rules_pick_every_nth_request() {
        let plan = FaultPlan::from_json(
            r#"[{"fault": "http-429", "every": 3}, {"fault": "bc21", "every": 2}]"#,
            1.0,
        )
        .unwrap();
        let picked: Vec<Option<&str>> = (0..7)
            .map(|_| plan.next_request().map(|r| r.name.as_str()))
            .collect();
        assert_eq!(
            picked,
            [
                None,
                Some("bc21"),
                Some("http-429"),
                Some("bc21"),
                None,
                Some("http-429"),
                None
            ]
        );
        assert_eq!(plan.requests(), 7);
    }

    #[test]
    fn every_zero_is_refused_naming_the_rule() {
        let err = FaultPlan::from_json(r#"[{"fault": "bc21", "every": 0}]"#, 1.0).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "rule 1 (bc21): `every`: 0 is not in 1..18446744073709551615"
        );
        let script =
            r#"[{"fault": "bc21"}, {"script": {"writes": [], "end": "close"}, "every": 0}]"#;
        let err = FaultPlan::from_json(script, 1.0).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "rule 2 (custom-2): `every`: 0 is not in 1..18446744073709551615"
        );
        // A file's error names the file too.
        let path = std::env::temp_dir().join(format!("aiperf-faults-{}.json", std::process::id()));
        std::fs::write(&path, r#"[{"fault": "http-503", "every": 0}]"#).unwrap();
        let err = FaultPlan::from_file(&path, 1.0).unwrap_err();
        let _ = std::fs::remove_file(&path);
        assert_eq!(
            format!("{err:#}"),
            format!(
                "in {}: rule 1 (http-503): `every`: 0 is not in 1..18446744073709551615",
                path.display()
            )
        );
        // Left out, it is 1.
        let plan = FaultPlan::from_json(r#"[{"fault": "bc21"}]"#, 1.0).unwrap();
        assert_eq!(plan.rules[0].every, 1);
    }

    /// A rule of the wrong shape is named; an empty list is no plan at all.
    #[test]
    fn bad_rules_are_named_and_an_empty_list_refused() {
        for (json, message) in [
            (
                r#"[{"fault": "bc21"}, {"fault": "bc21", "every": -1}]"#,
                "rule 2: invalid value: integer `-1`, expected u64",
            ),
            (
                r#"[{"fault": "bc21", "evry": 2}]"#,
                "rule 1: unknown field `evry`, expected one of `fault`, `script`, `every`",
            ),
            (
                r#"[]"#,
                r#"no rules: give at least one (`[{"fault": "bc21"}]`)"#,
            ),
        ] {
            let err = FaultPlan::from_json(json, 1.0).unwrap_err();
            assert_eq!(format!("{err:#}"), message, "{json}");
        }
    }

    #[test]
    fn custom_scripts_from_json() {
        let plan = FaultPlan::from_json(
            r#"[{"script": {"writes": [
                    {"at_ms": 5, "data": "HTTP/1.1 200 OK\r\n", "drip_ms": 1},
                    {"at_ms": 9, "data_hex": "00ff 41"}],
                 "end": "reset"}, "every": 2}]"#,
            0.5,
        )
        .unwrap();
        let rule = &plan.rules[0];
        assert_eq!((rule.name.as_str(), rule.every), ("custom-1", 2));
        let Action::Script(script) = &rule.action else {
            panic!()
        };
        assert_eq!(script.end, End::Reset);
        assert_eq!(script.writes[1].bytes, [0x00, 0xff, 0x41]);
        assert_eq!(script.writes[0].drip, Some(Duration::from_millis(1)));
        assert_eq!(
            plan.scaled(Duration::from_millis(10)),
            Duration::from_millis(5)
        );
        for bad in [
            r#"[{"fault": "nope"}]"#,
            r#"[{"every": 2}]"#,
            r#"[{"script": {"writes": [{"at_ms": 1, "data_hex": "abc"}], "end": "close"}}]"#,
            r#"[{"fault": "bc01", "extra": 1}]"#,
        ] {
            assert!(FaultPlan::from_json(bad, 1.0).is_err(), "{bad}");
        }
    }
}
