//! Incremental Server-Sent Events framing on the raw (de-chunked) response byte stream.
//!
//! Reads are never trimmed or split on a fixed separator: a read can end anywhere, inside a
//! field name, between the two bytes of a CRLF or between the two line ends of a blank line
//! (BC-02, BC-05), and one read can carry many events (BC-01). The framer keeps only the
//! unfinished line between reads and stamps every event with the read that completed it.

use memchr::{memchr, memchr2};

use crate::record::{Nanos, ResponseChunk};

/// UTF-8 byte order mark, which the SSE spec strips from the start of a stream.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Incremental SSE parser following the WHATWG event-stream rules.
///
/// Fields `data`, `event`, `id` and `retry` are understood; other fields are ignored, lines
/// starting with `:` are comments, one optional space after the colon is removed, several
/// `data` lines are joined with `\n`, and a block with no `data` line dispatches nothing
/// (so `: keep-alive\n\n` is invisible). Line ends are LF, CRLF or a bare CR.
#[derive(Debug)]
pub struct SseFramer {
    /// Bytes of a line whose terminator has not arrived yet.
    partial: Vec<u8>,
    /// Time of the read that brought the first byte of `partial`.
    partial_start_ns: Nanos,
    /// The previous read ended with CR: an LF opening the next read completes that CRLF
    /// rather than ending another (blank) line.
    skip_lf: bool,
    /// No line processed yet, so a leading BOM is still to be stripped.
    at_stream_start: bool,
    /// `data` of the event being built; moved into the dispatched chunk.
    data: Vec<u8>,
    has_data: bool,
    event: Option<String>,
    /// Time of the read that brought the first byte of the event's first field line.
    event_start_ns: Option<Nanos>,
    last_event_id: Vec<u8>,
    retry_ms: Option<u64>,
    events: u64,
    /// The lines of the event being built, as AIPerf's parser splits them, for the message
    /// of an `error` event; names and values of lines other than `data` are in `fields`.
    lines: Vec<Line>,
    fields: Vec<u8>,
    /// The event being built has an `event: error` line (AIPerf's test: any case, any
    /// surrounding spaces).
    error_event: bool,
    /// The first `error` event of the response.
    error: Option<SseErrorEvent>,
}

/// A line of an event, by where its name and value are kept.
#[derive(Debug, Clone, Copy)]
enum Line {
    /// A `data` line: its value's range in the event's `data`.
    Data(usize, usize),
    /// Any other line: the ranges of its name (empty for a comment) and value (`None`
    /// without a colon) in `fields`.
    Other((usize, usize), Option<(usize, usize)>),
}

/// An SSE event with an `event: error` line, which AIPerf's stream reader raises as an
/// `SSEResponseError` whatever the event carries (or lacks: it needs no `data`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseErrorEvent {
    /// The read that completed the event.
    pub recv_ns: Nanos,
    /// The output's length before this event: AIPerf keeps none of it (the event raised)
    /// nor what came after it (it reads no further), which the same read may have framed.
    pub out_len: usize,
    /// Each line's name and value as AIPerf's `SSEField`s hold them: trimmed, a comment
    /// named `comment`, a line without a colon valueless.
    pub fields: Vec<(String, Option<String>)>,
}

impl Default for SseFramer {
    fn default() -> Self {
        Self::new()
    }
}

impl SseFramer {
    pub fn new() -> Self {
        SseFramer {
            partial: Vec::new(),
            partial_start_ns: 0,
            skip_lf: false,
            at_stream_start: true,
            data: Vec::new(),
            has_data: false,
            event: None,
            event_start_ns: None,
            last_event_id: Vec::new(),
            retry_ms: None,
            events: 0,
            lines: Vec::new(),
            fields: Vec::new(),
            error_event: false,
            error: None,
        }
    }

    /// Forgets all stream state but keeps buffer capacity, so one framer can serve the
    /// successive responses of a kept-alive connection.
    pub fn reset(&mut self) {
        self.partial.clear();
        self.partial_start_ns = 0;
        self.skip_lf = false;
        self.at_stream_start = true;
        self.data.clear();
        self.has_data = false;
        self.event = None;
        self.event_start_ns = None;
        self.last_event_id.clear();
        self.retry_ms = None;
        self.events = 0;
        self.lines.clear();
        self.fields.clear();
        self.error_event = false;
        self.error = None;
    }

    /// Feeds the bytes of one read that completed at `now`. Appends every event these bytes
    /// complete to `out` (all stamped `recv_ns = now`) and returns how many there were.
    pub fn feed(&mut self, bytes: &[u8], now: Nanos, out: &mut Vec<ResponseChunk>) -> usize {
        let before = out.len();
        let mut rest = bytes;
        if self.skip_lf {
            if let Some((first, tail)) = rest.split_first() {
                self.skip_lf = false;
                if *first == b'\n' {
                    rest = tail;
                }
            }
        }
        while !rest.is_empty() {
            let Some(end) = memchr2(b'\n', b'\r', rest) else {
                if self.partial.is_empty() {
                    self.partial_start_ns = now;
                }
                self.partial.extend_from_slice(rest);
                break;
            };
            let (line, terminator) = rest.split_at(end);
            if self.partial.is_empty() {
                self.process_line(line, now, now, out);
            } else {
                self.partial.extend_from_slice(line);
                // Taken out and put back so the line can be read while `self` is mutated;
                // moving a Vec does not allocate.
                let full = std::mem::take(&mut self.partial);
                self.process_line(&full, self.partial_start_ns, now, out);
                self.partial = full;
                self.partial.clear();
            }
            // A CR ends its line at once; only whether an LF follows is left to decide.
            rest = match terminator {
                [b'\r', b'\n', tail @ ..] => tail,
                [b'\r'] => {
                    self.skip_lf = true;
                    &[]
                }
                [_, tail @ ..] => tail,
                [] => &[],
            };
        }
        out.len() - before
    }

    /// End of stream at `now`: a pending line is processed and a pending event dispatched,
    /// as AIPerf treats leftover bytes at EOF as the last message. Returns whether an event
    /// was dispatched.
    pub fn finish(&mut self, now: Nanos, out: &mut Vec<ResponseChunk>) -> bool {
        let before = out.len();
        if !self.partial.is_empty() {
            let full = std::mem::take(&mut self.partial);
            self.process_line(&full, self.partial_start_ns, now, out);
            self.partial = full;
            self.partial.clear();
        }
        self.skip_lf = false;
        self.dispatch(now, out);
        out.len() > before
    }

    /// Events dispatched since creation or the last [`reset`](Self::reset).
    pub fn events_total(&self) -> u64 {
        self.events
    }

    /// The last `id` field seen (the stream's last event ID).
    pub fn last_event_id(&self) -> &[u8] {
        &self.last_event_id
    }

    /// The last valid `retry` field, in milliseconds.
    pub fn retry_ms(&self) -> Option<u64> {
        self.retry_ms
    }

    /// The first event of the response with an `event: error` line, once it is complete
    /// (dispatched or not: one without `data` is still an error to AIPerf).
    pub fn take_error(&mut self) -> Option<SseErrorEvent> {
        self.error.take()
    }

    /// Whether bytes of an unfinished line or event are held.
    pub fn has_pending(&self) -> bool {
        !self.partial.is_empty() || self.has_data || self.event_start_ns.is_some()
    }

    fn process_line(
        &mut self,
        line: &[u8],
        line_start_ns: Nanos,
        now: Nanos,
        out: &mut Vec<ResponseChunk>,
    ) {
        let line = if self.at_stream_start {
            self.at_stream_start = false;
            line.strip_prefix(BOM).unwrap_or(line)
        } else {
            line
        };
        let Some(&first) = line.first() else {
            self.dispatch(now, out);
            return;
        };
        let colon = memchr(b':', line);
        if first == b':' {
            // Nothing to the spec, but the message of an error event to AIPerf.
            self.keep_line(b"", Some(line.get(1..).unwrap_or_default()));
            return;
        }
        let (name, value) = match colon {
            Some(colon) => {
                let (name, value) = line.split_at(colon);
                let value = value.get(1..).unwrap_or_default();
                (name, value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        if self.event_start_ns.is_none() {
            self.event_start_ns = Some(line_start_ns);
        }
        if name != b"data" || colon.is_none() {
            self.keep_line(name, colon.map(|_| value));
        }
        match name {
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                let start = self.data.len();
                self.data.extend_from_slice(value);
                if colon.is_some() {
                    self.lines.push(Line::Data(start, self.data.len()));
                }
                self.has_data = true;
            }
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            // The spec ignores an id containing NUL.
            b"id" if memchr(0, value).is_none() => {
                self.last_event_id.clear();
                self.last_event_id.extend_from_slice(value);
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                // All digits, so only overflow can fail; the spec ignores such a value.
                if let Some(ms) = std::str::from_utf8(value).ok().and_then(|s| s.parse().ok()) {
                    self.retry_ms = Some(ms);
                }
            }
            _ => {}
        }
    }

    /// Keeps a line other than `data` for an error event's message, and notes whether it
    /// makes the event one.
    fn keep_line(&mut self, name: &[u8], value: Option<&[u8]>) {
        let mut put = |bytes: &[u8]| {
            let start = self.fields.len();
            self.fields.extend_from_slice(bytes);
            (start, self.fields.len())
        };
        let line = Line::Other(put(name), value.map(&mut put));
        self.lines.push(line);
        // ASCII case only: AIPerf's `casefold` differs only for words no server sends here.
        let is = |bytes: &[u8], word: &[u8]| bytes.trim_ascii().eq_ignore_ascii_case(word);
        if is(name, b"event") && value.is_some_and(|v| is(v, b"error")) {
            self.error_event = true;
        }
    }

    /// The kept lines as AIPerf's `SSEField`s.
    fn error_fields(&self) -> Vec<(String, Option<String>)> {
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).trim().to_owned();
        let slice = |buf: &[u8], (a, b): (usize, usize)| text(buf.get(a..b).unwrap_or_default());
        self.lines
            .iter()
            .map(|line| match *line {
                Line::Data(a, b) => ("data".to_owned(), Some(slice(&self.data, (a, b)))),
                Line::Other(name, value) => {
                    let name = match slice(&self.fields, name) {
                        n if n.is_empty() => "comment".to_owned(),
                        n => n,
                    };
                    (name, value.map(|v| slice(&self.fields, v)))
                }
            })
            .collect()
    }

    fn dispatch(&mut self, now: Nanos, out: &mut Vec<ResponseChunk>) {
        let error_fields = (self.error_event && self.error.is_none()).then(|| self.error_fields());
        let out_len = out.len();
        if self.has_data {
            out.push(ResponseChunk {
                recv_ns: now,
                first_byte_ns: self.event_start_ns.unwrap_or(now),
                event: self.event.take(),
                data: std::mem::take(&mut self.data),
            });
            self.events += 1;
        }
        if let Some(fields) = error_fields {
            self.error = Some(SseErrorEvent {
                recv_ns: now,
                out_len,
                fields,
            });
        }
        self.lines.clear();
        self.fields.clear();
        self.error_event = false;
        self.has_data = false;
        self.event = None;
        self.event_start_ns = None;
        self.data.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::test_util::XorShift;

    const MS: Nanos = 1_000_000;

    /// One read of a case: arrival time in ms and bytes.
    type Read = (u64, &'static [u8]);

    /// What an event should look like: data, event type, recv ms, first-byte ms.
    type Want = (&'static str, Option<&'static str>, u64, u64);

    fn chat(text: &str) -> String {
        format!(
            "data: {{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\
             \"delta\":{{\"content\":\"{text}\"}},\"finish_reason\":null}}]}}\n\n"
        )
    }

    fn chat_data(text: &str) -> String {
        let c = chat(text);
        c.trim_start_matches("data: ")
            .trim_end_matches('\n')
            .to_string()
    }

    fn leak(s: String) -> &'static [u8] {
        Box::leak(s.into_bytes().into_boxed_slice())
    }

    fn leak_str(s: String) -> &'static str {
        Box::leak(s.into_boxed_str())
    }

    /// Feeds reads at their times, then finishes at `end_ms`.
    fn run(reads: &[(Nanos, &[u8])], end: Nanos) -> (Vec<ResponseChunk>, Vec<usize>, bool) {
        let mut f = SseFramer::new();
        let mut out = Vec::new();
        let mut counts = Vec::new();
        for (t, bytes) in reads {
            counts.push(f.feed(bytes, *t, &mut out));
        }
        let tail = f.finish(end, &mut out);
        (out, counts, tail)
    }

    fn check_exact(reads: &[Read], want: &[Want], end_ms: u64) {
        let timed: Vec<(Nanos, &[u8])> = reads.iter().map(|(t, b)| (t * MS, *b)).collect();
        let (out, _, _) = run(&timed, end_ms * MS);
        let got: Vec<Want> = out
            .iter()
            .map(|c| {
                (
                    leak_str(String::from_utf8(c.data.clone()).unwrap()),
                    c.event.clone().map(leak_str),
                    c.recv_ns / MS,
                    c.first_byte_ns / MS,
                )
            })
            .collect();
        assert_eq!(got, want);
    }

    /// Reference framer over the whole stream at once (no read boundaries): each event with
    /// the offset of its first field byte and of the byte that completed it (`None`: only
    /// completed by end of stream).
    /// A reference event: data, event type, offset of its first byte, offset of the byte
    /// that completed it.
    type RefEvent = (Vec<u8>, Option<String>, usize, Option<usize>);

    fn reference(stream: &[u8]) -> Vec<RefEvent> {
        let mut events = Vec::new();
        let (mut data, mut has_data, mut event, mut start) = (Vec::new(), false, None, None);
        let mut pos = 0;
        let mut first_line = true;
        loop {
            let rest = &stream[pos..];
            let (line_len, term) = match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(i) => (i, Some(pos + i)),
                None => (rest.len(), None),
            };
            let mut line = &rest[..line_len];
            let line_start = pos;
            if first_line {
                first_line = false;
                if line.starts_with(BOM) {
                    line = &line[3..];
                }
            }
            let at_end = term.is_none();
            if line.is_empty() && !at_end {
                if has_data {
                    events.push((
                        std::mem::take(&mut data),
                        event.take(),
                        start.unwrap(),
                        term,
                    ));
                }
                (has_data, event, start) = (false, None, None);
                data.clear();
            } else if !line.is_empty() && line[0] != b':' {
                let (name, value) = match line.iter().position(|&b| b == b':') {
                    Some(c) => {
                        let v = &line[c + 1..];
                        (&line[..c], v.strip_prefix(b" ").unwrap_or(v))
                    }
                    None => (line, &b""[..]),
                };
                start.get_or_insert(line_start);
                match name {
                    b"data" => {
                        if has_data {
                            data.push(b'\n');
                        }
                        data.extend_from_slice(value);
                        has_data = true;
                    }
                    b"event" => event = Some(String::from_utf8_lossy(value).into_owned()),
                    _ => {}
                }
            }
            let Some(t) = term else { break };
            pos = t + 1;
            if stream[t] == b'\r' && stream.get(pos) == Some(&b'\n') {
                pos += 1;
            }
        }
        if has_data {
            events.push((data, event, start.unwrap(), None));
        }
        events
    }

    /// Regroups `reads` at `cuts` (byte offsets into the concatenated stream); each new read
    /// is stamped with the original arrival time of its last byte. Checks the framer against
    /// the reference on that grouping.
    fn check_grouping(reads: &[Read], cuts: &[usize], end: Nanos) {
        let stream: Vec<u8> = reads.iter().flat_map(|(_, b)| b.iter().copied()).collect();
        let mut byte_time = Vec::with_capacity(stream.len());
        for (t, b) in reads {
            byte_time.extend(std::iter::repeat_n(t * MS, b.len()));
        }
        let mut bounds: Vec<usize> = cuts.iter().copied().filter(|&c| c < stream.len()).collect();
        bounds.push(stream.len());
        bounds.sort_unstable();
        bounds.dedup();
        let mut grouped: Vec<(Nanos, &[u8])> = Vec::new();
        let mut read_of_byte = vec![0; stream.len()];
        let mut from = 0;
        for &to in &bounds {
            if to == from {
                continue;
            }
            let t = byte_time[to - 1];
            for r in &mut read_of_byte[from..to] {
                *r = grouped.len();
            }
            grouped.push((t, &stream[from..to]));
            from = to;
        }
        let (out, counts, _) = run(&grouped, end);
        let want = reference(&stream);
        assert_eq!(out.len(), want.len(), "event count, cuts {cuts:?}");
        for (i, (got, (data, event, start, done))) in out.iter().zip(&want).enumerate() {
            let ctx = || format!("event {i}, cuts {cuts:?}");
            assert_eq!(&got.data, data, "{}", ctx());
            assert_eq!(&got.event, event, "{}", ctx());
            assert_eq!(
                got.first_byte_ns,
                grouped[read_of_byte[*start]].0,
                "{}",
                ctx()
            );
            let recv = done.map_or(end, |d| grouped[read_of_byte[d]].0);
            assert_eq!(got.recv_ns, recv, "{}", ctx());
        }
        let completed_in_reads = want.iter().filter(|w| w.3.is_some()).count();
        assert_eq!(
            counts.iter().sum::<usize>(),
            completed_in_reads,
            "cuts {cuts:?}"
        );
    }

    /// Every split point, every single byte, and random regroupings.
    fn check_all_groupings(reads: &[Read]) {
        let len: usize = reads.iter().map(|(_, b)| b.len()).sum();
        let end = 999_999 * MS;
        let natural: Vec<usize> = reads
            .iter()
            .scan(0, |acc, (_, b)| {
                *acc += b.len();
                Some(*acc)
            })
            .collect();
        check_grouping(reads, &natural, end);
        for k in 0..=len {
            check_grouping(reads, &[k], end);
        }
        let singles: Vec<usize> = (1..len).collect();
        check_grouping(reads, &singles, end);
        let mut rng = XorShift::new(0x5EED_0000 + len as u64);
        for _ in 0..200 {
            let n = rng.below(8) as usize;
            let cuts: Vec<usize> = (0..n).map(|_| rng.below(len as u64 + 1) as usize).collect();
            check_grouping(reads, &cuts, end);
        }
    }

    fn bc01() -> Vec<Read> {
        vec![(
            120,
            leak(format!(
                "{}{}data: [DONE]\n\n",
                chat("Hello"),
                chat(" world")
            )),
        )]
    }

    fn bc02() -> Vec<Read> {
        vec![
            (
                300,
                br#"data: {"choices":[{"index":0,"delta":{"content":"Hel"#,
            ),
            (301, b"lo\"}}]}\n"),
            (
                320,
                b"\nevent: message\nid: 7\ndata: {\"choices\":[{\"index\":0,\"delta\":\
                  {\"content\":\" there\"}}]}\n\n",
            ),
            (330, b"data: [DONE]\n\n"),
        ]
    }

    fn bc03() -> Vec<Read> {
        vec![
            (
                80,
                b"data:{\"token\":{\"id\":42,\"text\":\"Hi\",\"logprob\":-0.1,\"special\":false},\
                  \"generated_text\":null,\"details\":null}\n\n",
            ),
            (
                95,
                b"data:{\"error\":\"generation failed: shape mismatch\",\
                  \"error_type\":\"generation\"}\n\n",
            ),
        ]
    }

    fn bc04() -> Vec<Read> {
        vec![
            (30000, b":\n\n"),
            (60000, b": keep-alive\n\n"),
            (61500, leak(chat("A"))),
            (61520, leak(format!("{}data: [DONE]\n\n", chat("B")))),
        ]
    }

    fn bc05() -> Vec<Read> {
        vec![
            (
                200,
                b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\r\n\r\n",
            ),
            (
                215,
                b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"y\"}}]}\r\r",
            ),
            (230, b"data: [DONE]\r\n"),
            (230, b"\r\n"),
        ]
    }

    const BC06_FINAL: &str =
        "{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\
        \"usage\":{\"prompt_tokens\":9,\"completion_tokens\":1,\"total_tokens\":10}}";

    fn bc06() -> Vec<Read> {
        vec![
            (150, leak(chat("Yes"))),
            (170, leak(format!("data: {BC06_FINAL}\n\n"))),
        ]
    }

    #[test]
    fn bc01_several_events_in_one_read() {
        let reads = bc01();
        let hello = leak_str(chat_data("Hello"));
        let world = leak_str(chat_data(" world"));
        check_exact(
            &reads,
            &[
                (hello, None, 120, 120),
                (world, None, 120, 120),
                ("[DONE]", None, 120, 120),
            ],
            500,
        );
        let mut f = SseFramer::new();
        let mut out = Vec::new();
        assert_eq!(f.feed(reads[0].1, 120 * MS, &mut out), 3);
        assert_eq!(f.events_total(), 3);
        check_all_groupings(&reads);
    }

    #[test]
    fn bc02_event_split_across_reads() {
        let reads = bc02();
        let e1 = r#"{"choices":[{"index":0,"delta":{"content":"Hello"}}]}"#;
        let e2 = r#"{"choices":[{"index":0,"delta":{"content":" there"}}]}"#;
        check_exact(
            &reads,
            &[
                (e1, None, 320, 300),
                (e2, Some("message"), 320, 320),
                ("[DONE]", None, 330, 330),
            ],
            500,
        );
        let (_, counts, _) = run(
            &reads.iter().map(|(t, b)| (t * MS, *b)).collect::<Vec<_>>(),
            500 * MS,
        );
        assert_eq!(counts, [0, 0, 2, 1]);
        check_all_groupings(&reads);
        let mut f = SseFramer::new();
        f.feed(reads[2].1, 0, &mut Vec::new());
        assert_eq!(f.last_event_id(), b"7");
    }

    #[test]
    fn bc03_data_without_space() {
        let reads = bc03();
        check_exact(
            &reads,
            &[
                (
                    "{\"token\":{\"id\":42,\"text\":\"Hi\",\"logprob\":-0.1,\"special\":false},\
                     \"generated_text\":null,\"details\":null}",
                    None,
                    80,
                    80,
                ),
                (
                    "{\"error\":\"generation failed: shape mismatch\",\
                     \"error_type\":\"generation\"}",
                    None,
                    95,
                    95,
                ),
            ],
            500,
        );
        check_all_groupings(&reads);
    }

    #[test]
    fn bc04_comments_produce_nothing() {
        let reads = bc04();
        let a = leak_str(chat_data("A"));
        let b = leak_str(chat_data("B"));
        check_exact(
            &reads,
            &[
                (a, None, 61500, 61500),
                (b, None, 61520, 61520),
                ("[DONE]", None, 61520, 61520),
            ],
            70000,
        );
        let mut f = SseFramer::new();
        let mut out = Vec::new();
        assert_eq!(f.feed(b":\n\n: keep-alive\n\n", 0, &mut out), 0);
        assert!(!f.finish(1, &mut out));
        assert!(out.is_empty());
        check_all_groupings(&reads);
    }

    #[test]
    fn bc05_crlf_and_bare_cr() {
        let reads = bc05();
        let x = r#"{"choices":[{"index":0,"delta":{"content":"x"}}]}"#;
        let y = r#"{"choices":[{"index":0,"delta":{"content":"y"}}]}"#;
        check_exact(
            &reads,
            &[
                (x, None, 200, 200),
                (y, None, 215, 215),
                ("[DONE]", None, 230, 230),
            ],
            500,
        );
        // Same events as the LF version of the stream.
        let lf: Vec<Read> = vec![(
            1,
            leak(
                reads
                    .iter()
                    .map(|(_, b)| {
                        String::from_utf8_lossy(b)
                            .replace("\r\n", "\n")
                            .replace('\r', "\n")
                    })
                    .collect(),
            ),
        )];
        let data = |r: &[Read]| {
            let timed: Vec<(Nanos, &[u8])> = r.iter().map(|(t, b)| (*t, *b)).collect();
            run(&timed, 0)
                .0
                .into_iter()
                .map(|c| c.data)
                .collect::<Vec<_>>()
        };
        assert_eq!(data(&reads), data(&lf));
        check_all_groupings(&reads);
    }

    #[test]
    fn crlf_split_between_cr_and_lf_is_not_a_blank_line() {
        let mut f = SseFramer::new();
        let mut out = Vec::new();
        assert_eq!(f.feed(b"data: a\r", 1, &mut out), 0);
        // Had the LF been taken for a second line end, this would dispatch "a".
        assert_eq!(f.feed(b"\n", 2, &mut out), 0);
        assert_eq!(f.feed(b"data: b\r", 3, &mut out), 0);
        assert_eq!(f.feed(b"\r", 4, &mut out), 1);
        assert_eq!(f.feed(b"\n", 5, &mut out), 0);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].data, b"a\nb");
        assert_eq!((out[0].first_byte_ns, out[0].recv_ns), (1, 4));
        // An empty read between CR and LF must not lose the pending CR.
        let mut f = SseFramer::new();
        let mut out = Vec::new();
        f.feed(b"data: c\r", 1, &mut out);
        f.feed(b"", 2, &mut out);
        f.feed(b"\n\r\n", 3, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].data, b"c");
    }

    #[test]
    fn bc06_stream_without_done() {
        let reads = bc06();
        let yes = leak_str(chat_data("Yes"));
        check_exact(
            &reads,
            &[(yes, None, 150, 150), (BC06_FINAL, None, 170, 170)],
            171,
        );
        check_all_groupings(&reads);
    }

    #[test]
    fn leftover_bytes_at_eof_are_the_last_event() {
        let mut f = SseFramer::new();
        let mut out = Vec::new();
        f.feed(b"data: a\n\ndata: [DONE]", 10, &mut out);
        assert!(f.has_pending());
        assert!(f.finish(20, &mut out));
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].data, b"[DONE]");
        assert_eq!((out[1].first_byte_ns, out[1].recv_ns), (10, 20));
        // A complete line without its blank line is pending too.
        let mut f = SseFramer::new();
        let mut out = Vec::new();
        f.feed(b"event: error\ndata: x\n", 10, &mut out);
        assert!(f.finish(20, &mut out));
        assert_eq!(out[0].event.as_deref(), Some("error"));
        assert!(!f.finish(30, &mut out));
    }

    #[test]
    fn fields_and_edge_cases() {
        let reads: Vec<Read> = vec![
            (1, b"\xEF\xBB\xBFdata: first\n\n"),
            (2, b"data\n\n"),
            (3, b"data:\n\n"),
            (4, b"data:  two spaces\n\n"),
            (5, b"event: only-event\n\n"),
            (
                6,
                b"id: 1\nretry: 250\nretry: x1\nunknown: y\n: comment\ndata: a\ndata: b\n\n",
            ),
            (7, b"event: error\r\ndata: {\"e\":1}\r\n\r\n"),
            (8, b"DATA: ignored\n\nid: a\0b\n\n"),
            (9, b"data: x\r\n"),
        ];
        check_exact(
            &reads,
            &[
                ("first", None, 1, 1),
                ("", None, 2, 2),
                ("", None, 3, 3),
                (" two spaces", None, 4, 4),
                ("a\nb", None, 6, 6),
                ("{\"e\":1}", Some("error"), 7, 7),
                ("x", None, 50, 9),
            ],
            50,
        );
        let mut f = SseFramer::new();
        let mut out = Vec::new();
        for (_, b) in &reads {
            f.feed(b, 0, &mut out);
        }
        assert_eq!(f.retry_ms(), Some(250));
        assert_eq!(f.last_event_id(), b"1");
        f.reset();
        assert!(!f.has_pending());
        assert_eq!(f.events_total(), 0);
        check_all_groupings(&reads);
    }

    #[test]
    fn error_events_are_kept_as_aiperf_parses_them() {
        let mut f = SseFramer::new();
        let mut out = Vec::new();
        f.feed(b"data: a\n\nid: 1\nevent: other\ndata: b\n\n", 1, &mut out);
        assert_eq!((out.len(), f.take_error()), (2, None));
        // The lines in order, trimmed; a comment named so, a line without a colon
        // valueless; a `data` line without a colon too.
        f.feed(
            b"data: c\n:  oops \nevent:  ERROR\nnovalue\ndata\n",
            2,
            &mut out,
        );
        assert_eq!(f.take_error(), None, "not complete yet");
        f.feed(b"\ndata: d\n\n", 3, &mut out);
        let fields = [
            ("data", Some("c")),
            ("comment", Some("oops")),
            ("event", Some("ERROR")),
            ("novalue", None),
            ("data", None),
        ]
        .map(|(n, v)| (n.to_owned(), v.map(str::to_owned)));
        assert_eq!(
            f.take_error(),
            Some(SseErrorEvent {
                recv_ns: 3,
                out_len: 2,
                fields: fields.to_vec(),
            })
        );
        // Dispatched as the spec dispatches it; later events too.
        assert_eq!(out[2].data, b"c\n");
        assert_eq!(out[3].data, b"d");
        // Only the first error event is kept; one without data is one too.
        f.feed(b"event: error\n\nevent: error\n\n", 4, &mut out);
        let event = f.take_error().map(|e| (e.recv_ns, e.out_len, e.fields));
        let fields = vec![("event".to_owned(), Some("error".to_owned()))];
        assert_eq!(event, Some((4, 4, fields)));
        assert_eq!((out.len(), f.take_error()), (4, None));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut rng = XorShift::new(7);
        let alphabet = b"data:event id\r\n\n: x\xEF\xBB\xBF";
        for _ in 0..2000 {
            let len = rng.below(64) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    if rng.below(4) == 0 {
                        rng.next_u64() as u8
                    } else {
                        alphabet[rng.below(alphabet.len() as u64) as usize]
                    }
                })
                .collect();
            let cut = rng.below(len as u64 + 1) as usize;
            let reads: Vec<(Nanos, &[u8])> = vec![(1, &bytes[..cut]), (2, &bytes[cut..])];
            let (out, _, _) = run(&reads, 3);
            let whole = run(&[(1, &bytes[..])], 3).0;
            let data = |v: &[ResponseChunk]| v.iter().map(|c| c.data.clone()).collect::<Vec<_>>();
            assert_eq!(data(&out), data(&whole), "{bytes:?} cut {cut}");
        }
    }
}
