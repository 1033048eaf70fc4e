//! Reading one HTTP/1.1 response from the reads of a connection, with no I/O of its own:
//! the client feeds it each read's bytes and the read's timestamp. Keeping it synchronous
//! lets the property tests and the fuzz targets drive exactly the code that measures.

use std::io;

use super::chunked::ChunkedDecoder;
use super::head::{header_string, parse_head, BodyFraming, HeadError, RawHead, RawStatus};
use super::pyerr::{self, SERVER_DISCONNECTED};
use super::sse::{SseErrorEvent, SseFramer};
use crate::record::{ErrorDetails, Nanos, Outcome, RequestRecord, ResponseChunk};

/// Most bytes of an error body kept as the error message (the rest is read and dropped).
pub const MAX_ERROR_BODY: usize = 64 * 1024;
/// Most bytes reserved up front for a `Content-Length` body.
const MAX_BODY_RESERVE: u64 = 16 * 1024 * 1024;

/// How a response ended, as far as the connection is concerned.
#[derive(Debug)]
pub enum ResponseEnd {
    /// The record is final (success or failure); `reusable`: the connection may carry
    /// another request.
    Complete { reusable: bool },
    /// The connection failed before any response byte: the request may be retried on a
    /// new connection (BC-20). The record is untouched.
    NoResponse {
        error: io::Error,
        context: &'static str,
    },
}

/// Incremental reader of responses on one connection. Its buffers are kept between
/// responses, so a kept-alive connection reads without allocating.
#[derive(Debug)]
pub struct ResponseParser {
    head: Vec<u8>,
    framer: SseFramer,
    chunked: ChunkedDecoder,
    opts: Opts,
    got_bytes: bool,
    phase: Phase,
    /// `CLOCK_MONOTONIC` at the run clock's epoch (see `set_perf_epoch`).
    perf_epoch_ns: u64,
}

impl Default for ResponseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl ResponseParser {
    pub fn new() -> Self {
        ResponseParser {
            head: Vec::new(),
            framer: SseFramer::new(),
            chunked: ChunkedDecoder::new(),
            opts: Opts::default(),
            got_bytes: false,
            phase: Phase::Head,
            perf_epoch_ns: 0,
        }
    }

    /// `CLOCK_MONOTONIC` nanoseconds at the epoch of the instants fed, for the times an
    /// error names as AIPerf's `perf_ns` (an SSE error event's). Without it they are run
    /// instants.
    pub fn set_perf_epoch(&mut self, ns: u64) {
        self.perf_epoch_ns = ns;
    }

    /// Starts reading the response to a new request. `streaming_sse`: a 2xx body without
    /// `Content-Type` is read as SSE; `head_request`: the request was `HEAD` (no body).
    pub fn start(&mut self, streaming_sse: bool, head_request: bool) {
        self.head.clear();
        self.opts = Opts {
            streaming_sse,
            head_request,
            perf_epoch_ns: self.perf_epoch_ns,
        };
        self.got_bytes = false;
        self.phase = Phase::Head;
    }

    /// The bytes of one read that completed at `now`. Fills `rec` (status, head and
    /// first-byte times, events, outcome on failure); returns how the response ended once
    /// it has. After an end, call [`start`](Self::start) before feeding more. No bytes
    /// mean nothing (a read of 0 bytes is the end of the stream: call
    /// [`close`](Self::close)).
    pub fn feed(
        &mut self,
        bytes: &[u8],
        now: Nanos,
        rec: &mut RequestRecord,
    ) -> Option<ResponseEnd> {
        if bytes.is_empty() {
            return None;
        }
        rec.reads = rec.reads.saturating_add(1);
        rec.bytes_received = rec.bytes_received.saturating_add(bytes.len() as u64);
        if !self.got_bytes {
            self.got_bytes = true;
            rec.first_byte_ns = Some(now);
        }
        let events_before = rec.responses.len();
        let step = match &mut self.phase {
            Phase::Body(body) => {
                rec.body_first_ns.get_or_insert(now);
                body.on_bytes(bytes, now, &mut self.framer, &mut self.chunked, rec)
            }
            Phase::Done => Step::Done(ResponseEnd::Complete { reusable: false }),
            Phase::Head => self.on_head_bytes(bytes, now, rec),
        };
        let events = (rec.responses.len() - events_before) as u32;
        rec.max_events_per_read = rec.max_events_per_read.max(events);
        match step {
            Step::More => None,
            Step::Done(end) => {
                self.phase = Phase::Done;
                Some(end)
            }
        }
    }

    /// The connection ended at `now` before the response did: `err` is `None` for an
    /// orderly close (a read of 0 bytes).
    pub fn close(
        &mut self,
        err: Option<io::Error>,
        now: Nanos,
        rec: &mut RequestRecord,
    ) -> ResponseEnd {
        let end = self.on_close(err, now, rec);
        self.phase = Phase::Done;
        end
    }

    fn on_head_bytes(&mut self, bytes: &[u8], now: Nanos, rec: &mut RequestRecord) -> Step {
        // Parse straight from the read when no partial head is held: the common case copies
        // nothing.
        let buffered = !self.head.is_empty();
        if buffered {
            self.head.extend_from_slice(bytes);
        }
        let input: &[u8] = if buffered { &self.head } else { bytes };
        let mut offset = 0;
        let parsed = loop {
            let rest = input.get(offset..).unwrap_or_default();
            match parse_head(rest, self.opts.head_request) {
                Ok(RawStatus::Interim { len, .. }) => offset += len,
                other => break other,
            }
        };
        match parsed {
            Ok(RawStatus::Complete { head, len }) => {
                rec.ack_ns = Some(now);
                let rest = input.get(offset + len..).unwrap_or_default();
                if !rest.is_empty() {
                    rec.body_first_ns = Some(now);
                }
                let mut body =
                    Body::start(head, self.opts, &mut self.framer, &mut self.chunked, rec);
                let step = body.on_bytes(rest, now, &mut self.framer, &mut self.chunked, rec);
                self.phase = Phase::Body(body);
                self.head.clear();
                step
            }
            Ok(RawStatus::Partial | RawStatus::Interim { .. }) => {
                if buffered {
                    self.head.drain(..offset.min(self.head.len()));
                } else {
                    self.head
                        .extend_from_slice(bytes.get(offset..).unwrap_or_default());
                }
                Step::More
            }
            Err(e) => {
                // aiohttp's exceptions for a response it cannot parse, as AIPerf records
                // them. Its message is kept: AIPerf's repr of the exception carries the
                // request's URL and every header sent (X-Request-ID included), so no two
                // of its records share one, and its parser's (llhttp's) words.
                let error = ErrorDetails::exception(
                    "ClientResponseError",
                    format!("invalid response head: {e}"),
                    None,
                    &[
                        "ClientResponseError",
                        "HttpProcessingError",
                        head_error_class(&e),
                    ],
                );
                fail(rec, now, Outcome::ConnectionError, error);
                Step::Done(ResponseEnd::Complete { reusable: false })
            }
        }
    }

    fn on_close(
        &mut self,
        err: Option<io::Error>,
        now: Nanos,
        rec: &mut RequestRecord,
    ) -> ResponseEnd {
        let body = match &mut self.phase {
            Phase::Body(body) => body,
            Phase::Done => return ResponseEnd::Complete { reusable: false },
            Phase::Head if !self.got_bytes => {
                let error = err.unwrap_or_else(|| {
                    io::Error::new(io::ErrorKind::UnexpectedEof, "closed by the server")
                });
                return ResponseEnd::NoResponse {
                    error,
                    context: "before the response",
                };
            }
            Phase::Head => {
                let error = match err {
                    Some(e) => pyerr::client_os_error(&e).unwrap_or_else(|| {
                        let message = format!("connection failed during response head: {e}");
                        ErrorDetails::new(None, io_kind(&e), message)
                    }),
                    // AIPerf's message is the repr of the head its parser (llhttp) had
                    // made of the bytes so far, which this parser does not make.
                    None => ErrorDetails::exception(
                        SERVER_DISCONNECTED,
                        "connection closed during response head".to_owned(),
                        None,
                        &[SERVER_DISCONNECTED],
                    ),
                };
                fail(rec, now, Outcome::ConnectionError, error);
                return ResponseEnd::Complete { reusable: false };
            }
        };
        // TLS reports a TCP close without `close_notify` as UnexpectedEof. Servers commonly
        // skip the alert, so for a body delimited by the close it is the close.
        let err = err.filter(|e| {
            !(body.framing == BodyFraming::UntilClose && e.kind() == io::ErrorKind::UnexpectedEof)
        });
        match body.framing {
            BodyFraming::UntilClose => match err {
                None => {
                    body.complete(true, now, &mut self.framer, rec);
                    ResponseEnd::Complete { reusable: false }
                }
                // AIPerf (aiohttp) takes such a body as complete, the socket's error and
                // all; it is recorded as cut short here, in this tool's words.
                Some(e) => {
                    let message = format!("connection failed before the end of the body. {e}");
                    let error = ErrorDetails::new(None, "ClientPayloadError", message);
                    body.truncated(now, rec, error)
                }
            },
            // As aiohttp raises them (what AIPerf records and groups by): its parser's
            // error at the end of the stream, inside the payload error.
            BodyFraming::Length(total) => {
                let got = total - body.remaining;
                let text = format!(
                    "Not enough data to satisfy content length header (received {got} of \
                     {total} bytes)."
                );
                let error = pyerr::payload_error("ContentLengthError", &text, err.as_ref());
                body.truncated(now, rec, error)
            }
            BodyFraming::Chunked => {
                let text = "Not enough data to satisfy transfer length header.";
                let error = pyerr::payload_error("TransferEncodingError", text, err.as_ref());
                body.truncated(now, rec, error)
            }
            // Complete as soon as the head is, so the reader never waits for it.
            BodyFraming::None => ResponseEnd::Complete { reusable: false },
        }
    }
}

/// The error `type` of a connection that failed after it was established with an error
/// that did not come from the OS, named as aiohttp's exception (what AIPerf records): a
/// peer that closed is `ServerDisconnectedError`, anything else `ClientOSError`.
pub(crate) fn io_kind(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => SERVER_DISCONNECTED.to_owned(),
        _ => "ClientOSError".to_owned(),
    }
}

/// The exception aiohttp's parser (llhttp) raises inside `HttpProcessingError` for a head
/// it cannot parse: a bad status line, or any other malformed message.
fn head_error_class(e: &HeadError) -> &'static str {
    match e {
        HeadError::Malformed(httparse::Error::Status | httparse::Error::Version) => "BadStatusLine",
        _ => "BadHttpMessage",
    }
}

pub(crate) fn fail(rec: &mut RequestRecord, now: Nanos, outcome: Outcome, error: ErrorDetails) {
    rec.end_ns = now;
    rec.outcome = Some(outcome);
    rec.error = Some(error);
}

/// An `error` event in the stream: the request fails there, as AIPerf's reader raises at
/// it and reads no further.
fn fail_sse(rec: &mut RequestRecord, now: Nanos, event: &SseErrorEvent, perf_epoch_ns: u64) {
    rec.responses.truncate(event.out_len);
    let perf_ns = perf_epoch_ns.saturating_add(event.recv_ns);
    let error = pyerr::sse_error(perf_ns, &event.fields);
    fail(rec, now, Outcome::InbandError, error);
}

fn http_error(rec: &mut RequestRecord, status: u16, reason: String, body: Vec<u8>) {
    rec.outcome = Some(if status == 429 || status == 503 {
        Outcome::Shed
    } else {
        Outcome::HttpError
    });
    // The reason phrase as sent, even empty (AIPerf's `type` is aiohttp's `reason`).
    let kind = reason;
    let message = String::from_utf8(body)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    rec.error = Some(ErrorDetails::new(Some(status), kind, message));
}

#[derive(Debug, Clone, Copy, Default)]
struct Opts {
    streaming_sse: bool,
    head_request: bool,
    perf_epoch_ns: u64,
}

enum Step {
    More,
    Done(ResponseEnd),
}

#[derive(Debug)]
enum Phase {
    Head,
    Body(Body),
    /// The response ended; further bytes belong to nobody.
    Done,
}

/// Where body bytes go.
#[derive(Debug)]
enum Sink {
    Sse,
    /// A whole 2xx body and the time of its first byte.
    Whole {
        data: Vec<u8>,
        first_ns: Option<Nanos>,
    },
    /// A non-2xx body, kept as the error message.
    Error {
        data: Vec<u8>,
        status: u16,
        reason: String,
    },
}

impl Sink {
    fn deliver(
        &mut self,
        bytes: &[u8],
        now: Nanos,
        framer: &mut SseFramer,
        out: &mut Vec<ResponseChunk>,
    ) {
        match self {
            Sink::Sse => {
                framer.feed(bytes, now, out);
            }
            Sink::Whole { data, first_ns } => {
                if first_ns.is_none() && !bytes.is_empty() {
                    *first_ns = Some(now);
                }
                data.extend_from_slice(bytes);
            }
            Sink::Error { data, .. } => {
                let room = MAX_ERROR_BODY.saturating_sub(data.len()).min(bytes.len());
                data.extend_from_slice(bytes.get(..room).unwrap_or_default());
            }
        }
    }
}

#[derive(Debug)]
struct Body {
    framing: BodyFraming,
    /// Bytes still expected for `Length` framing.
    remaining: u64,
    keep_alive: bool,
    sink: Sink,
    perf_epoch_ns: u64,
}

impl Body {
    fn start(
        head: RawHead<'_>,
        opts: Opts,
        framer: &mut SseFramer,
        chunked: &mut ChunkedDecoder,
        rec: &mut RequestRecord,
    ) -> Body {
        rec.status = Some(head.status);
        let is_sse = head.is_event_stream() || (opts.streaming_sse && head.content_type.is_none());
        let sink = if !head.is_success() {
            Sink::Error {
                data: Vec::new(),
                status: head.status,
                reason: head.reason.to_owned(),
            }
        } else if is_sse {
            framer.reset();
            rec.event_stream = true;
            Sink::Sse
        } else {
            let reserve = match head.framing {
                BodyFraming::Length(n) => n.min(MAX_BODY_RESERVE) as usize,
                _ => 0,
            };
            Sink::Whole {
                data: Vec::with_capacity(reserve),
                first_ns: None,
            }
        };
        if let Some(value) = head.retry_after {
            rec.retry_after = Some(header_string(value));
        }
        if head.framing == BodyFraming::Chunked {
            chunked.reset();
        }
        let remaining = match head.framing {
            BodyFraming::Length(n) => n,
            _ => 0,
        };
        Body {
            framing: head.framing,
            remaining,
            keep_alive: head.keep_alive,
            sink,
            perf_epoch_ns: opts.perf_epoch_ns,
        }
    }

    fn on_bytes(
        &mut self,
        bytes: &[u8],
        now: Nanos,
        framer: &mut SseFramer,
        chunked: &mut ChunkedDecoder,
        rec: &mut RequestRecord,
    ) -> Step {
        let step = self.take_bytes(bytes, now, framer, chunked, rec);
        // Before whatever else these bytes did: AIPerf reads no further than the event.
        match framer.take_error() {
            Some(event) => {
                fail_sse(rec, now, &event, self.perf_epoch_ns);
                Step::Done(ResponseEnd::Complete { reusable: false })
            }
            None => step,
        }
    }

    fn take_bytes(
        &mut self,
        bytes: &[u8],
        now: Nanos,
        framer: &mut SseFramer,
        chunked: &mut ChunkedDecoder,
        rec: &mut RequestRecord,
    ) -> Step {
        match self.framing {
            BodyFraming::None => Step::Done(self.complete(bytes.is_empty(), now, framer, rec)),
            BodyFraming::Length(_) => {
                let take = usize::try_from(self.remaining)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let (data, extra) = bytes.split_at(take);
                rec.body_bytes_received += data.len() as u64;
                self.sink.deliver(data, now, framer, &mut rec.responses);
                self.remaining -= take as u64;
                if self.remaining == 0 {
                    Step::Done(self.complete(extra.is_empty(), now, framer, rec))
                } else {
                    Step::More
                }
            }
            BodyFraming::Chunked => {
                let sink = &mut self.sink;
                let responses = &mut rec.responses;
                let body_bytes = &mut rec.body_bytes_received;
                let decoded = chunked.decode(bytes, |data| {
                    *body_bytes += data.len() as u64;
                    sink.deliver(data, now, framer, responses)
                });
                match decoded {
                    Ok(d) if d.done => {
                        Step::Done(self.complete(d.consumed == bytes.len(), now, framer, rec))
                    }
                    Ok(_) => Step::More,
                    // aiohttp's parser fails the same way on a bad chunk as on a bad
                    // head (see `head_error_class`); the message is this tool's.
                    Err(e) => {
                        let error = ErrorDetails::exception(
                            "ClientResponseError",
                            format!("invalid chunked body: {e}"),
                            None,
                            &[
                                "ClientResponseError",
                                "HttpProcessingError",
                                "BadHttpMessage",
                            ],
                        );
                        Step::Done(self.truncated(now, rec, error))
                    }
                }
            }
            BodyFraming::UntilClose => {
                rec.body_bytes_received += bytes.len() as u64;
                self.sink.deliver(bytes, now, framer, &mut rec.responses);
                Step::More
            }
        }
    }

    /// The body ended cleanly at `now`; `clean_tail`: no bytes followed it.
    fn complete(
        &mut self,
        clean_tail: bool,
        now: Nanos,
        framer: &mut SseFramer,
        rec: &mut RequestRecord,
    ) -> ResponseEnd {
        rec.end_ns = now;
        match std::mem::replace(&mut self.sink, Sink::Sse) {
            Sink::Sse => {
                framer.finish(now, &mut rec.responses);
                if let Some(event) = framer.take_error() {
                    fail_sse(rec, now, &event, self.perf_epoch_ns);
                    return ResponseEnd::Complete { reusable: false };
                }
            }
            Sink::Whole { data, first_ns } => {
                if !data.is_empty() {
                    // The only chunk: no room for four (a `Vec`'s first growth).
                    rec.responses.reserve_exact(1);
                    rec.responses.push(ResponseChunk {
                        recv_ns: now,
                        first_byte_ns: first_ns.unwrap_or(now),
                        event: None,
                        data,
                    });
                }
            }
            Sink::Error {
                data,
                status,
                reason,
            } => http_error(rec, status, reason, data),
        }
        if !clean_tail {
            // Nothing was asked for: these bytes would be taken for the next response.
            tracing::debug!("bytes after the end of a response; closing the connection");
        }
        ResponseEnd::Complete {
            reusable: self.keep_alive && clean_tail,
        }
    }

    /// The body ended early. Events already framed stay in `responses`; a partial event or
    /// body is dropped. For a non-2xx response the HTTP error is the more useful outcome.
    fn truncated(
        &mut self,
        now: Nanos,
        rec: &mut RequestRecord,
        error: ErrorDetails,
    ) -> ResponseEnd {
        match std::mem::replace(&mut self.sink, Sink::Sse) {
            Sink::Error {
                data,
                status,
                reason,
            } => {
                rec.end_ns = now;
                http_error(rec, status, reason, data);
            }
            Sink::Sse | Sink::Whole { .. } => fail(rec, now, Outcome::Truncated, error),
        }
        ResponseEnd::Complete { reusable: false }
    }
}

#[cfg(test)]
mod tests;
