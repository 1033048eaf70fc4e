//! Whole responses (head, framing, SSE) fed in every grouping of reads: the result must
//! not depend on where the reads split, only the timestamps may.

use super::*;
use crate::http::test_util::XorShift;

const MS: Nanos = 1_000_000;

/// What a response parse leaves that must not depend on read boundaries.
#[derive(Debug, PartialEq)]
struct Seen {
    ended_by_close: bool,
    no_response: bool,
    status: Option<u16>,
    outcome: Option<Outcome>,
    error: Option<ErrorDetails>,
    retry_after: Option<String>,
    event_stream: bool,
    events: Vec<(Option<String>, Vec<u8>)>,
    /// Body bytes after de-chunking (AIPerf's `http_req_data_received`).
    body_bytes: u64,
}

/// Feeds `stream` cut at `cuts` (read `i` completes at `i + 1` ms), then closes the
/// connection cleanly if the response has not ended.
fn parse_cut(stream: &[u8], cuts: &[usize], sse: bool) -> (Seen, RequestRecord) {
    let mut bounds: Vec<usize> = cuts.iter().copied().filter(|&c| c < stream.len()).collect();
    bounds.push(stream.len());
    bounds.sort_unstable();
    bounds.dedup();
    let mut parser = ResponseParser::new();
    parser.start(sse, false);
    let mut rec = RequestRecord::default();
    let mut from = 0;
    let mut end = None;
    let mut t = 0;
    for to in bounds {
        if to == from {
            continue;
        }
        t += MS;
        if let Some(e) = parser.feed(&stream[from..to], t, &mut rec) {
            end = Some(e);
            break;
        }
        from = to;
    }
    let ended_by_close = end.is_none();
    let end = end.unwrap_or_else(|| parser.close(None, t + MS, &mut rec));
    let seen = Seen {
        ended_by_close,
        no_response: matches!(end, ResponseEnd::NoResponse { .. }),
        status: rec.status,
        outcome: rec.outcome,
        error: rec.error.clone().map(|mut e| {
            // An SSE error names the time of the read that completed its event (the
            // record's end): the one thing in it that depends on the reads.
            let at = format!("perf_ns={}", rec.end_ns);
            e.message = e.message.replace(&at, "perf_ns=END");
            e
        }),
        retry_after: rec.retry_after.clone(),
        event_stream: rec.event_stream,
        // Read up to the read that ended an error event: as many bytes as the reads
        // brought (AIPerf counts the same way).
        body_bytes: match rec.outcome {
            Some(Outcome::InbandError) => 0,
            _ => rec.body_bytes_received,
        },
        events: rec
            .responses
            .iter()
            .map(|r| (r.event.clone(), r.data.clone()))
            .collect(),
    };
    (seen, rec)
}

fn check_timestamps(rec: &RequestRecord) {
    if let Some(first) = rec.first_byte_ns {
        assert_eq!(first, MS, "the first read completes at 1 ms");
        if let Some(ack) = rec.ack_ns {
            assert!(first <= ack);
        }
    }
    let mut last = 0;
    for r in &rec.responses {
        assert!(r.first_byte_ns <= r.recv_ns, "{r:?}");
        assert!(
            rec.ack_ns.is_some_and(|ack| ack <= r.first_byte_ns),
            "{rec:?}"
        );
        assert!(last <= r.recv_ns, "events in arrival order");
        last = r.recv_ns;
    }
    if rec.outcome.is_none() || rec.responses.last().is_some() {
        assert!(last <= rec.end_ns || rec.end_ns == 0, "{rec:?}");
    }
}

/// Every split into two reads, every byte its own read, and random regroupings give the
/// result of one read. Returns that result.
fn check_every_grouping(stream: &[u8], sse: bool) -> Seen {
    let (whole, rec) = parse_cut(stream, &[], sse);
    check_timestamps(&rec);
    for k in 0..=stream.len() {
        let (seen, rec) = parse_cut(stream, &[k], sse);
        assert_eq!(seen, whole, "split at {k}");
        check_timestamps(&rec);
    }
    let singles: Vec<usize> = (1..stream.len()).collect();
    let (seen, rec) = parse_cut(stream, &singles, sse);
    assert_eq!(seen, whole, "one byte per read");
    check_timestamps(&rec);
    let mut rng = XorShift::new(0xB0D1 + stream.len() as u64);
    for _ in 0..300 {
        let n = rng.below(10) as usize;
        let cuts: Vec<usize> = (0..n)
            .map(|_| rng.below(stream.len() as u64 + 1) as usize)
            .collect();
        let (seen, rec) = parse_cut(stream, &cuts, sse);
        assert_eq!(seen, whole, "cuts {cuts:?}");
        check_timestamps(&rec);
    }
    whole
}

fn chunk(data: &str) -> String {
    format!("{:x}\r\n{data}\r\n", data.len())
}

fn content(text: &str) -> String {
    format!(
        "data: {{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\
         \"delta\":{{\"content\":\"{text}\"}},\"finish_reason\":null}}]}}\n\n"
    )
}

fn data_of(event: &str) -> Vec<u8> {
    event
        .trim_start_matches("data: ")
        .trim_end_matches('\n')
        .as_bytes()
        .to_vec()
}

const SSE_HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
    Transfer-Encoding: chunked\r\n\r\n";

#[test]
fn bc01_chunked_sse_with_done() {
    let body = content("Hello") + &content(" world") + "data: [DONE]\n\n";
    let stream = format!("{SSE_HEAD}{}0\r\n\r\n", chunk(&body));
    let seen = check_every_grouping(stream.as_bytes(), true);
    assert_eq!(
        seen.events,
        [
            (None, data_of(&content("Hello"))),
            (None, data_of(&content(" world"))),
            (None, b"[DONE]".to_vec()),
        ]
    );
    assert_eq!(
        (
            seen.status,
            seen.outcome,
            seen.event_stream,
            seen.ended_by_close
        ),
        (Some(200), None, true, false)
    );
    // The body without its chunk framing, and no head.
    assert_eq!(seen.body_bytes, body.len() as u64);
}

#[test]
fn bc01_events_of_one_read_share_its_time() {
    let body = content("Hello") + &content(" world") + "data: [DONE]\n\n";
    let stream = format!("{SSE_HEAD}{}0\r\n\r\n", chunk(&body));
    let (_, rec) = parse_cut(stream.as_bytes(), &[SSE_HEAD.len()], true);
    let times: Vec<Nanos> = rec.responses.iter().map(|r| r.recv_ns).collect();
    assert_eq!(times, [2 * MS, 2 * MS, 2 * MS]);
    assert_eq!(rec.max_events_per_read, 3);
    assert_eq!((rec.ack_ns, rec.end_ns, rec.reads), (Some(MS), 2 * MS, 2));
}

#[test]
fn bc05_crlf_events_split_in_chunks() {
    let events = [
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\r\n\r\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"y\"}}]}\r\r",
        "data: [DONE]\r\n",
        "\r\n",
    ];
    let mut stream = SSE_HEAD.to_owned();
    for e in events {
        stream.push_str(&chunk(e));
    }
    stream.push_str("0\r\n\r\n");
    let seen = check_every_grouping(stream.as_bytes(), true);
    let data: Vec<&[u8]> = seen.events.iter().map(|(_, d)| &d[..]).collect();
    assert_eq!(
        data,
        [
            &b"{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}"[..],
            b"{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"y\"}}]}",
            b"[DONE]"
        ]
    );
}

#[test]
fn bc07_error_event_fails_the_request_where_it_ends() {
    let error = "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}";
    let body = content("Par") + &format!("event: error\ndata: {error}\n\n") + &content("more");
    let stream = format!("{SSE_HEAD}{}0\r\n\r\n", chunk(&body));
    let seen = check_every_grouping(stream.as_bytes(), true);
    // AIPerf's stream reader raises at the event and reads no further.
    assert_eq!(seen.outcome, Some(Outcome::InbandError));
    assert!(!seen.ended_by_close);
    let expected = ErrorDetails {
        code: Some(502),
        kind: "SSEResponseError".to_owned(),
        message: format!(
            "SSEResponseError('Error occurred in SSE response: Unknown error in SSE response: \
             SSEMessage(perf_ns=END, packets=[SSEField(name=\\'event\\', value=\\'error\\'), \
             SSEField(name=\\'data\\', value=\\'{error}\\')])')"
        ),
        cause: None,
        cause_chain: vec!["SSEResponseError".to_owned()],
    };
    assert_eq!(seen.error, Some(expected.clone()));
    // The events before it; not the error event itself, nor any after it.
    assert_eq!(seen.events, [(None, data_of(&content("Par")))]);
    // The time is the read's, on the monotonic clock AIPerf's `perf_ns` reads.
    let mut parser = ResponseParser::new();
    parser.set_perf_epoch(5_000_000_000);
    parser.start(true, false);
    let mut rec = RequestRecord::default();
    let end = parser.feed(stream.as_bytes(), 7 * MS, &mut rec);
    assert!(matches!(
        end,
        Some(ResponseEnd::Complete { reusable: false })
    ));
    let mut at_5007_ms = expected;
    at_5007_ms.message = at_5007_ms.message.replace("END", "5007000000");
    assert_eq!(rec.error, Some(at_5007_ms));
    assert_eq!(rec.end_ns, 7 * MS);
}

#[test]
fn error_events_without_data_or_with_a_comment() {
    // No `data`: nothing to dispatch, but an error to AIPerf all the same.
    let body = content("A") + "id: 3\nevent: error\n\n";
    let stream = format!("{SSE_HEAD}{}0\r\n\r\n", chunk(&body));
    let seen = check_every_grouping(stream.as_bytes(), true);
    assert_eq!(seen.outcome, Some(Outcome::InbandError));
    assert_eq!(
        seen.error.map(|e| e.message),
        Some(
            "SSEResponseError(\"Error occurred in SSE response: Unknown error in SSE response: \
             SSEMessage(perf_ns=END, packets=[SSEField(name='id', value='3'), \
             SSEField(name='event', value='error')])\")"
                .to_owned()
        )
    );
    assert_eq!(seen.events, [(None, data_of(&content("A")))]);
    // A comment is the message; the event's case and spaces do not matter. Until the end
    // of the stream, as AIPerf reads leftover bytes as the last event.
    let stream = "HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\n\
                  EVENT:  Error \r\n: model crashed\r\ndata: {\"x\":1}";
    let seen = check_every_grouping(stream.as_bytes(), true);
    assert_eq!(seen.outcome, Some(Outcome::InbandError));
    assert_eq!(
        seen.error,
        Some(ErrorDetails {
            code: Some(502),
            kind: "SSEResponseError".to_owned(),
            message: "SSEResponseError('Error occurred in SSE response: model crashed')".to_owned(),
            cause: None,
            cause_chain: vec!["SSEResponseError".to_owned()],
        })
    );
    // Another event type is no error.
    let body = content("A") + "event: message\ndata: {}\n\n";
    let stream = format!("{SSE_HEAD}{}0\r\n\r\n", chunk(&body));
    assert_eq!(check_every_grouping(stream.as_bytes(), true).outcome, None);
}

#[test]
fn bc21_truncated_chunked_body() {
    let event = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"A\"}}]}\n\n";
    let stream = format!("{SSE_HEAD}39\r\n{event}\r\n");
    assert_eq!(event.len(), 0x39);
    let seen = check_every_grouping(stream.as_bytes(), true);
    assert_eq!(seen.outcome, Some(Outcome::Truncated));
    let cause = "<TransferEncodingError: 400, message='Not enough data to satisfy transfer \
                 length header.'>";
    assert_eq!(
        seen.error,
        Some(ErrorDetails::exception(
            "ClientPayloadError",
            format!("ClientPayloadError(\"Response payload is not completed: {cause}\")"),
            Some(cause.to_owned()),
            &["ClientPayloadError", "TransferEncodingError"],
        ))
    );
    assert_eq!(seen.events, [(None, data_of(event))]);
    assert!(seen.ended_by_close);
}

#[test]
fn truncated_bodies_name_the_socket_error() {
    let body = "{\"choices\":[]}";
    let stream = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 300\r\n\r\n{body}"
    );
    let mut parser = ResponseParser::new();
    parser.start(false, false);
    let mut rec = RequestRecord::default();
    assert!(parser.feed(stream.as_bytes(), MS, &mut rec).is_none());
    let reset = io::Error::from_raw_os_error(104);
    parser.close(Some(reset), 2 * MS, &mut rec);
    let cause = "<ContentLengthError: 400, message='Not enough data to satisfy content length \
                 header (received 14 of 300 bytes).'>";
    assert_eq!(
        rec.error,
        Some(ErrorDetails::exception(
            "ClientPayloadError",
            format!(
                "ClientPayloadError(\"Response payload is not completed: {cause}. \
                 ConnectionResetError(104, 'Connection reset by peer')\")"
            ),
            Some(cause.to_owned()),
            &["ClientPayloadError", "ContentLengthError"],
        ))
    );
    assert_eq!(
        (rec.outcome, rec.end_ns),
        (Some(Outcome::Truncated), 2 * MS)
    );
}

#[test]
fn a_head_cut_short_is_a_disconnect_or_a_socket_error() {
    let mut parser = ResponseParser::new();
    parser.start(true, false);
    let mut rec = RequestRecord::default();
    assert!(parser
        .feed(b"HTTP/1.1 200 OK\r\nContent-Ty", MS, &mut rec)
        .is_none());
    parser.close(None, 2 * MS, &mut rec);
    assert_eq!(
        rec.error,
        Some(ErrorDetails::exception(
            "ServerDisconnectedError",
            "connection closed during response head".to_owned(),
            None,
            &["ServerDisconnectedError"],
        ))
    );
    parser.start(true, false);
    let mut rec = RequestRecord::default();
    assert!(parser.feed(b"HTTP/1.1 200 OK\r\n", MS, &mut rec).is_none());
    parser.close(Some(io::Error::from_raw_os_error(104)), 2 * MS, &mut rec);
    assert_eq!(
        rec.error,
        Some(ErrorDetails::exception(
            "ClientOSError",
            "ClientOSError(104, 'Connection reset by peer')".to_owned(),
            Some("ConnectionResetError(104, 'Connection reset by peer')".to_owned()),
            &["ClientOSError", "ConnectionResetError"],
        ))
    );
    assert_eq!(rec.outcome, Some(Outcome::ConnectionError));
}

#[test]
fn a_status_without_a_reason_has_an_empty_type() {
    let seen = check_every_grouping(b"HTTP/1.1 404 \r\nContent-Length: 4\r\n\r\nnope", true);
    assert_eq!(seen.outcome, Some(Outcome::HttpError));
    assert_eq!(seen.error, Some(ErrorDetails::new(Some(404), "", "nope")));
}

#[test]
fn bc22_overload_with_retry_after() {
    let body = "{\"error\":\"Model is overloaded\",\"error_type\":\"overloaded\"}";
    let stream = format!(
        "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n\
         Retry-After: 2\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let seen = check_every_grouping(stream.as_bytes(), true);
    assert_eq!(seen.outcome, Some(Outcome::Shed));
    assert_eq!(seen.retry_after.as_deref(), Some("2"));
    assert_eq!(
        seen.error,
        Some(ErrorDetails::new(Some(429), "Too Many Requests", body))
    );
    assert!(seen.events.is_empty());
}

#[test]
fn interim_head_then_json_body() {
    let body = "{\"choices\":[{\"message\":{\"content\":\"hi\"}}]}";
    let stream = format!(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let seen = check_every_grouping(stream.as_bytes(), false);
    assert_eq!(seen.events, [(None, body.as_bytes().to_vec())]);
    assert_eq!((seen.outcome, seen.event_stream), (None, false));
    assert_eq!(seen.body_bytes, body.len() as u64);
}

#[test]
fn sse_until_close_ends_with_the_connection() {
    let stream = format!(
        "HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\n{}data: tail",
        content("A")
    );
    let seen = check_every_grouping(stream.as_bytes(), true);
    // Leftover bytes at EOF are the last event, as AIPerf reads them.
    assert_eq!(
        seen.events,
        [(None, data_of(&content("A"))), (None, b"tail".to_vec())]
    );
    assert_eq!((seen.outcome, seen.ended_by_close), (None, true));
}

#[test]
fn extensions_and_trailers() {
    let stream = format!(
        "{SSE_HEAD}{:x};ext=1\r\n{}\r\n0\r\nX-Trailer: t\r\n\r\n",
        content("A").len(),
        content("A")
    );
    let seen = check_every_grouping(stream.as_bytes(), true);
    assert_eq!(seen.events, [(None, data_of(&content("A")))]);
    assert_eq!(seen.outcome, None);
}

#[test]
fn garbage_is_an_invalid_head() {
    let seen = check_every_grouping(b"\x00\x01garbage\r\n\r\n", true);
    assert_eq!(seen.outcome, Some(Outcome::ConnectionError));
    assert_eq!(
        seen.error,
        Some(ErrorDetails::exception(
            "ClientResponseError",
            "invalid response head: malformed response head: invalid HTTP version".to_owned(),
            None,
            &[
                "ClientResponseError",
                "HttpProcessingError",
                "BadStatusLine"
            ],
        ))
    );
    let seen = check_every_grouping(b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n", true);
    assert_eq!(
        seen.error.map(|e| (e.message, e.cause_chain)),
        Some((
            "invalid response head: malformed response head: invalid header name".to_owned(),
            vec![
                "ClientResponseError".to_owned(),
                "HttpProcessingError".to_owned(),
                "BadHttpMessage".to_owned()
            ]
        ))
    );
}

#[test]
fn invalid_chunk_size_truncates() {
    let stream = format!("{SSE_HEAD}{}zz\r\n", chunk(&content("A")));
    let seen = check_every_grouping(stream.as_bytes(), true);
    assert_eq!(seen.outcome, Some(Outcome::Truncated));
    assert_eq!(
        seen.error,
        Some(ErrorDetails::exception(
            "ClientResponseError",
            "invalid chunked body: invalid byte 0x7a in chunk size line".to_owned(),
            None,
            &[
                "ClientResponseError",
                "HttpProcessingError",
                "BadHttpMessage"
            ],
        ))
    );
    assert_eq!(seen.events, [(None, data_of(&content("A")))]);
}

#[test]
fn close_before_any_byte_is_no_response() {
    let mut parser = ResponseParser::new();
    parser.start(true, false);
    let mut rec = RequestRecord::default();
    // Found by fuzzing: an empty read is no response byte.
    assert!(parser.feed(b"", MS, &mut rec).is_none());
    let end = parser.close(None, MS, &mut rec);
    assert!(
        matches!(end, ResponseEnd::NoResponse { ref error, context: "before the response" }
            if error.kind() == io::ErrorKind::UnexpectedEof),
        "{end:?}"
    );
    assert_eq!((rec.outcome, rec.reads), (None, 0));
}

#[test]
fn tls_unclean_close_ends_an_until_close_body() {
    let mut parser = ResponseParser::new();
    parser.start(true, false);
    let mut rec = RequestRecord::default();
    let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";
    assert!(parser.feed(head, MS, &mut rec).is_none());
    assert!(parser.feed(b"data: a\n\n", 2 * MS, &mut rec).is_none());
    let eof = io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "peer closed without close_notify",
    );
    let end = parser.close(Some(eof), 3 * MS, &mut rec);
    assert!(matches!(end, ResponseEnd::Complete { reusable: false }));
    assert_eq!(
        (rec.outcome, rec.responses.len(), rec.end_ns),
        (None, 1, 3 * MS)
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut rng = XorShift::new(77);
    let alphabet: &[u8] =
        b"HTTP/1.1 200 OK\r\n:;0123456789abcdefxyz\n\rdata: event Content-Length \
        Transfer-Encoding: chunked text/event-stream\x00\xff";
    for _ in 0..3000 {
        let len = rng.below(300) as usize;
        let mut stream: Vec<u8> = if rng.below(2) == 0 {
            SSE_HEAD.as_bytes().to_vec()
        } else {
            Vec::new()
        };
        stream.extend((0..len).map(|_| alphabet[rng.below(alphabet.len() as u64) as usize]));
        let cuts: Vec<usize> = (0..rng.below(6))
            .map(|_| rng.below(stream.len() as u64 + 1) as usize)
            .collect();
        let (whole, _) = parse_cut(&stream, &[], true);
        let (seen, rec) = parse_cut(&stream, &cuts, true);
        assert_eq!(seen, whole, "{stream:?} cut at {cuts:?}");
        check_timestamps(&rec);
    }
}
