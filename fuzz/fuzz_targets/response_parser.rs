//! A whole HTTP/1.1 response (head, framing, SSE) read by the client's parser: it never
//! panics, and the outcome, error, status and events do not depend on where reads split
//! the bytes.
#![no_main]

use aiperf_runtime::http::{ResponseEnd, ResponseParser};
use aiperf_runtime::record::RequestRecord;
use libfuzzer_sys::fuzz_target;

mod split;

/// Everything but timestamps and connection reuse (trailing bytes in the same read as the
/// end of a body make the connection unusable; in a later read they are not this
/// response's).
type Seen = (
    bool,
    Option<u16>,
    Option<String>,
    Option<String>,
    bool,
    Vec<(Option<String>, Vec<u8>)>,
);

fn parse(reads: &[(u64, &[u8])], sse: bool) -> Seen {
    let mut parser = ResponseParser::new();
    parser.start(sse, false);
    let mut rec = RequestRecord::default();
    let mut end = None;
    let mut last = 0;
    for &(t, bytes) in reads {
        last = t;
        if let Some(e) = parser.feed(bytes, t, &mut rec) {
            end = Some(e);
            break;
        }
    }
    let end = end.unwrap_or_else(|| parser.close(None, last + 1, &mut rec));
    let no_response = matches!(end, ResponseEnd::NoResponse { .. });
    for r in &rec.responses {
        assert!(r.first_byte_ns <= r.recv_ns);
        assert!(rec.ack_ns.is_some_and(|ack| ack <= r.first_byte_ns));
    }
    assert!(rec.responses.windows(2).all(|w| w[0].recv_ns <= w[1].recv_ns));
    (
        no_response,
        rec.status,
        rec.outcome.map(|o| format!("{o:?}")),
        rec.error.map(|e| format!("{:?} {} {}", e.code, e.kind, e.message)),
        rec.event_stream,
        rec.responses
            .into_iter()
            .map(|r| (r.event, r.data))
            .collect(),
    )
}

fuzz_target!(|data: &[u8]| {
    let (cuts, stream) = split::split(data);
    // The first byte's top bit chooses whether a body without Content-Type is SSE.
    let sse = data.first().is_some_and(|b| b & 0x80 == 0);
    let whole = parse(&[(1, stream)], sse);
    let pieces = parse(&split::reads(stream, &cuts), sse);
    assert_eq!(whole, pieces, "cuts {cuts:?}");
});
