//! The exchange part of a `profile_export_raw.jsonl` line (`--export-level raw`): what a
//! request sent and what came back, in AIPerf's layout:
//! `"start_perf_ns", "request_headers", "status", "responses", "payload"`.
//!
//! Times are `CLOCK_MONOTONIC` nanoseconds, AIPerf's `perf_counter_ns`. An event stream's
//! responses are its events, `[DONE]` included, each as `packets` of SSE fields; any other
//! body is one response with its `text`. Credentials never reach the file: headers that
//! carry them are written as `"<redacted>"`.

use serde::de::IgnoredAny;

use super::jsonl::{write_int, write_str};
use crate::record::{RequestRecord, RunClock};

/// Headers written as `"<redacted>"`: AIPerf's two (`--api-key` goes out as
/// `Authorization`), and the other common places a credential travels in.
const REDACTED: [&str; 5] = [
    "authorization",
    "x-session-affinity",
    "proxy-authorization",
    "api-key",
    "x-api-key",
];

/// Appends `,"start_perf_ns":..,"request_headers":{..},"status":..,"responses":[..],
/// "payload":..` for `record` (a request that was never written has no headers and a
/// `null` payload). Headers named in `redact` (lowercase; the `--header`s, which may
/// carry credentials under any name) are redacted too.
pub(super) fn write_exchange(
    line: &mut Vec<u8>,
    clock: &RunClock,
    record: &RequestRecord,
    redact: &[String],
) {
    let sent = record.sent_request.as_deref().unwrap_or_default();
    let (head, body) = split_request(sent);
    line.extend_from_slice(b",\"start_perf_ns\":");
    write_int(line, clock.monotonic_ns(record.start_ns));
    line.extend_from_slice(b",\"request_headers\":{");
    for (i, (name, value)) in header_fields(head).enumerate() {
        if i > 0 {
            line.push(b',');
        }
        write_str(line, &name);
        line.push(b':');
        let secret = REDACTED.iter().any(|r| name.eq_ignore_ascii_case(r))
            || redact.iter().any(|r| name.eq_ignore_ascii_case(r));
        if secret {
            line.extend_from_slice(b"\"<redacted>\"");
        } else {
            write_str(line, &value);
        }
    }
    line.extend_from_slice(b"},\"status\":");
    match record.status {
        Some(status) => write_int(line, status),
        None => line.extend_from_slice(b"null"),
    }
    line.extend_from_slice(b",\"responses\":[");
    for (i, chunk) in record.responses.iter().enumerate() {
        if i > 0 {
            line.push(b',');
        }
        line.extend_from_slice(b"{\"perf_ns\":");
        write_int(line, clock.monotonic_ns(chunk.recv_ns));
        let data = String::from_utf8_lossy(&chunk.data);
        if record.event_stream {
            line.extend_from_slice(b",\"packets\":[");
            if let Some(event) = &chunk.event {
                line.extend_from_slice(b"{\"name\":\"event\",\"value\":");
                write_str(line, event);
                line.extend_from_slice(b"},");
            }
            line.extend_from_slice(b"{\"name\":\"data\",\"value\":");
            write_str(line, &data);
            line.extend_from_slice(b"}]}");
        } else {
            line.extend_from_slice(b",\"text\":");
            write_str(line, &data);
            line.push(b'}');
        }
    }
    line.extend_from_slice(b"],\"payload\":");
    write_payload(line, body);
}

/// The request's head (request line and headers) and body; all head when there is no
/// blank line.
fn split_request(sent: &[u8]) -> (&[u8], &[u8]) {
    match crate::http::head_end(sent) {
        Some(end) => (&sent[..end - 4], &sent[end..]),
        None => (sent, &[]),
    }
}

/// `(name, value)` of each header line after the request line, value trimmed.
fn header_fields(head: &[u8]) -> impl Iterator<Item = (String, String)> + '_ {
    head.split(|&b| b == b'\n').skip(1).filter_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = memchr::memchr(b':', line)?;
        let name = String::from_utf8_lossy(&line[..colon]).trim().to_owned();
        let value = String::from_utf8_lossy(&line[colon + 1..])
            .trim()
            .to_owned();
        (!name.is_empty()).then_some((name, value))
    })
}

/// The body as JSON when it is JSON (re-serialized if it spans lines, so the record
/// stays one line), else as a string; `null` when nothing was sent.
fn write_payload(line: &mut Vec<u8>, body: &[u8]) {
    if body.is_empty() {
        line.extend_from_slice(b"null");
        return;
    }
    let one_line = !body.iter().any(|&b| b == b'\n' || b == b'\r');
    if one_line && serde_json::from_slice::<IgnoredAny>(body).is_ok() {
        line.extend_from_slice(body);
        return;
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        // Writing to a Vec cannot fail.
        Ok(value) => {
            let _ = serde_json::to_writer(&mut *line, &value);
        }
        Err(_) => write_str(line, &String::from_utf8_lossy(body)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ResponseChunk;

    fn chunk(at: u64, event: Option<&str>, data: &str) -> ResponseChunk {
        ResponseChunk {
            recv_ns: at,
            first_byte_ns: at,
            event: event.map(str::to_owned),
            data: data.into(),
        }
    }

    fn exchange(record: &RequestRecord) -> (String, u64) {
        let clock = RunClock::new();
        let mut line = Vec::new();
        write_exchange(&mut line, &clock, record, &["x-foo".to_owned()]);
        let base = clock.monotonic_ns(0);
        (String::from_utf8(line).expect("utf-8"), base)
    }

    #[test]
    fn a_streamed_exchange_is_written_as_sent_and_received() {
        let request = "POST /v1/chat/completions HTTP/1.1\r\nHost: h:1\r\n\
                       Authorization: Bearer sk-secret\r\nX-Request-ID: r1\r\n\
                       X-Session-Affinity: c1\r\nX-Foo:  bar \r\nX-Bar:  baz \r\n\r\n\
                       {\"model\":\"m\",\"stream\":true}";
        let record = RequestRecord {
            start_ns: 5,
            status: Some(200),
            event_stream: true,
            sent_request: Some(request.as_bytes().to_vec()),
            responses: vec![
                chunk(10, None, "{\"x\":\"a\\\"b\"}"),
                chunk(12, Some("error"), "oops"),
                chunk(15, None, "[DONE]"),
            ],
            ..RequestRecord::default()
        };
        let (line, base) = exchange(&record);
        assert_eq!(
            line,
            format!(
                ",\"start_perf_ns\":{}\
                 ,\"request_headers\":{{\"Host\":\"h:1\",\"Authorization\":\"<redacted>\",\
                 \"X-Request-ID\":\"r1\",\"X-Session-Affinity\":\"<redacted>\",\
                 \"X-Foo\":\"<redacted>\",\"X-Bar\":\"baz\"}}\
                 ,\"status\":200\
                 ,\"responses\":[\
                 {{\"perf_ns\":{},\"packets\":[{{\"name\":\"data\",\"value\":\"{{\\\"x\\\":\\\"a\\\\\\\"b\\\"}}\"}}]}},\
                 {{\"perf_ns\":{},\"packets\":[{{\"name\":\"event\",\"value\":\"error\"}},\
                 {{\"name\":\"data\",\"value\":\"oops\"}}]}},\
                 {{\"perf_ns\":{},\"packets\":[{{\"name\":\"data\",\"value\":\"[DONE]\"}}]}}]\
                 ,\"payload\":{{\"model\":\"m\",\"stream\":true}}",
                base + 5,
                base + 10,
                base + 12,
                base + 15
            )
        );
        assert!(!line.contains("sk-secret"));
    }

    #[test]
    fn a_plain_body_is_text_and_odd_payloads_stay_on_one_line() {
        let request = "POST /x HTTP/1.1\r\nHost: h\r\n\r\n{\n  \"a\": [1,\n 2]\n}";
        let record = RequestRecord {
            status: Some(500),
            sent_request: Some(request.as_bytes().to_vec()),
            responses: vec![chunk(3, None, "{\"error\":\"bad\"}\n")],
            ..RequestRecord::default()
        };
        let (line, base) = exchange(&record);
        assert_eq!(
            line,
            format!(
                ",\"start_perf_ns\":{base},\"request_headers\":{{\"Host\":\"h\"}},\"status\":500\
                 ,\"responses\":[{{\"perf_ns\":{},\"text\":\"{{\\\"error\\\":\\\"bad\\\"}}\\n\"}}]\
                 ,\"payload\":{{\"a\":[1,2]}}",
                base + 3
            )
        );

        let mut line = Vec::new();
        write_payload(&mut line, b"not json\r\n");
        assert_eq!(line, b"\"not json\\r\\n\"");
        line.clear();
        write_payload(&mut line, b"");
        assert_eq!(line, b"null");
    }

    #[test]
    fn a_request_never_sent_has_no_headers_and_no_payload() {
        let (line, base) = exchange(&RequestRecord::default());
        assert_eq!(
            line,
            format!(
                ",\"start_perf_ns\":{base},\"request_headers\":{{}},\"status\":null,\
                 \"responses\":[],\"payload\":null"
            )
        );
    }
}
