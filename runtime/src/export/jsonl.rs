//! `profile_export.jsonl`: one line per finished request, written as records arrive.

use std::io::{self, Write};
use std::path::Path;

use super::direct::RecordsFile;
use super::jsonw::Json;
use crate::dataset::SessionIds;
use crate::metrics::{self, record_error};
use crate::record::{ErrorDetails, ParsedRecord, Phase, RunClock};
use crate::results::{MetricRecord, MetricValue};

/// Streams request records to `profile_export.jsonl` in AIPerf's layout:
/// `{"metadata":{..},"metrics":{tag:{"value","unit"}},"error"?:{code,type,message,..}}`.
///
/// Warmup records are written too (AIPerf does), tagged `benchmark_phase: "warmup"`.
/// Output is buffered; call [`finish`](Self::finish) to flush it.
pub struct RecordWriter<W: Write = RecordsFile> {
    out: W,
    line: Vec<u8>,
    /// Set once a warmup record is seen: phase indices then count warmup as phase 0.
    has_warmup: bool,
    conversation_ids: Vec<String>,
    /// How conversations beyond `conversation_ids` (composed on demand, not held) are
    /// named: as their composer named them, from their index.
    session_ids: SessionIds,
    /// Entry `i` of the last record, rendered: records of a run carry the same tags in
    /// the same order, so this spares a catalogue lookup and two string escapes per value
    /// (the record thread's largest single cost once records had 30 metrics).
    entry_hints: Vec<EntryHint>,
    /// `profile_export_raw.jsonl` (`--export-level raw`), and its line buffer.
    raw: Option<W>,
    raw_line: Vec<u8>,
    /// The raw file's name, for errors, and why it stopped being written, if it did:
    /// the records file goes on without it.
    raw_name: String,
    raw_error: Option<String>,
    /// Header names (lowercase) whose values the raw file redacts.
    raw_redact: Vec<String>,
}

/// How one metric entry is written: its key and unit already escaped, and whether its
/// value is a count.
#[derive(Default)]
struct EntryHint {
    tag: &'static str,
    unit: &'static str,
    /// `"tag":{"value":`
    head: Vec<u8>,
    /// `,"unit":"ms"}`
    tail: Vec<u8>,
    integer: bool,
}

impl EntryHint {
    fn new(tag: &'static str, unit: &'static str) -> Self {
        let mut head = Vec::with_capacity(tag.len() + 14);
        write_str(&mut head, tag);
        head.extend_from_slice(b":{\"value\":");
        let mut tail = Vec::with_capacity(unit.len() + 12);
        tail.extend_from_slice(b",\"unit\":");
        write_str(&mut tail, unit);
        tail.push(b'}');
        let integer = metrics::lookup(tag).is_some_and(|d| d.integer);
        EntryHint {
            tag,
            unit,
            head,
            tail,
            integer,
        }
    }

    fn fits(&self, tag: &str, unit: &str) -> bool {
        same_str(self.tag, tag) && same_str(self.unit, unit)
    }
}

impl RecordWriter<RecordsFile> {
    /// Creates (truncates) the file, and its directory if needed.
    pub fn create(path: &Path) -> io::Result<Self> {
        Ok(Self::new(create_file(path)?))
    }

    /// Also writes each request's raw exchange to `path` (`--export-level raw`), the
    /// values of the headers named in `redact` redacted.
    pub fn create_raw(&mut self, path: &Path, redact: Vec<String>) -> io::Result<()> {
        self.raw = Some(create_file(path)?);
        self.raw_name = path.display().to_string();
        self.raw_redact = redact;
        Ok(())
    }
}

fn create_file(path: &Path) -> io::Result<RecordsFile> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    RecordsFile::create(path)
}

impl<W: Write> RecordWriter<W> {
    pub fn new(out: W) -> Self {
        RecordWriter {
            out,
            line: Vec::new(),
            has_warmup: false,
            conversation_ids: Vec::new(),
            session_ids: SessionIds::Numbered,
            entry_hints: Vec::new(),
            raw: None,
            raw_line: Vec::new(),
            raw_name: crate::export::RAW_FILE.to_owned(),
            raw_error: None,
            raw_redact: Vec::new(),
        }
    }

    /// Writes each request's raw exchange to `out` too (`profile_export_raw.jsonl`).
    pub fn set_raw(&mut self, out: W) {
        self.raw = Some(out);
    }

    /// Why the raw file stopped being written, if it did.
    pub fn raw_error(&self) -> Option<&str> {
        self.raw_error.as_deref()
    }

    /// Declares that the run has a warmup phase, so profiling records get
    /// `phase_index` 1 even before any warmup record was written.
    pub fn set_has_warmup(&mut self, has_warmup: bool) {
        self.has_warmup = has_warmup;
    }

    /// Dataset session ids by conversation index, written as `conversation_id`; an
    /// index past them is named by [`set_session_ids`](Self::set_session_ids).
    pub fn set_conversation_ids(&mut self, ids: Vec<String>) {
        self.conversation_ids = ids;
    }

    /// How conversations without an id from [`set_conversation_ids`] are named (the
    /// run's [`SessionIds`], which a composer working on demand names them by).
    ///
    /// [`set_conversation_ids`]: Self::set_conversation_ids
    pub fn set_session_ids(&mut self, ids: SessionIds) {
        self.session_ids = ids;
    }

    /// Appends one request. `metrics` are in display units, as record processors emit.
    ///
    /// The line is written straight into one reused buffer: this runs once per request
    /// on the record thread, and building a document tree first (a `String` per key and
    /// value) was most of that thread's time. The bytes are those of the tree writer
    /// (`jsonw`), which a test checks.
    pub fn write(
        &mut self,
        clock: &RunClock,
        record: &ParsedRecord,
        metrics: &MetricRecord,
    ) -> io::Result<()> {
        if record.raw.phase == Some(Phase::Warmup) {
            self.has_warmup = true;
        }
        let line = &mut self.line;
        line.clear();
        line.extend_from_slice(b"{\"metadata\":");
        let names = (&self.conversation_ids[..], self.session_ids);
        write_metadata(line, names, self.has_warmup, clock, record);
        line.extend_from_slice(b",\"metrics\":");
        write_metrics(line, metrics, &mut self.entry_hints);
        write_error(line, record);
        line.extend_from_slice(b"}\n");
        self.out.write_all(line)?;
        if let Some(raw) = &mut self.raw {
            let line = &mut self.raw_line;
            line.clear();
            line.extend_from_slice(b"{\"metadata\":");
            let names = (&self.conversation_ids[..], self.session_ids);
            write_metadata(line, names, self.has_warmup, clock, record);
            super::raw::write_exchange(line, clock, &record.raw, &self.raw_redact);
            write_error(line, record);
            line.extend_from_slice(b"}\n");
            if let Err(e) = raw.write_all(line) {
                self.raw_failed(&e);
            }
        }
        Ok(())
    }

    fn raw_failed(&mut self, e: &io::Error) {
        let message = format!("cannot write {}: {e}", self.raw_name);
        tracing::error!("{message}; raw exchanges are no longer written, the records still are");
        self.raw_error.get_or_insert(message);
        self.raw = None;
    }

    /// Flushes everything written. A raw file that cannot be flushed is only reported
    /// ([`raw_error`](Self::raw_error)): the records file is the one this answers for.
    pub fn finish(&mut self) -> io::Result<()> {
        if let Some(Err(e)) = self.raw.as_mut().map(Write::flush) {
            self.raw_failed(&e);
        }
        self.out.flush()
    }

    /// Flushes and hands the underlying writer back.
    pub fn into_inner(self) -> io::Result<W> {
        self.into_parts().map(|(out, _)| out)
    }

    /// Flushes and hands both writers back: the records' and the raw one, if set.
    pub fn into_parts(mut self) -> io::Result<(W, Option<W>)> {
        self.out.flush()?;
        if let Some(raw) = &mut self.raw {
            raw.flush()?;
        }
        Ok((self.out, self.raw))
    }
}

/// `,"error":{..}` of a failed record, as AIPerf writes it; nothing for a success.
fn write_error(line: &mut Vec<u8>, record: &ParsedRecord) {
    let Some(error) = record_error(record) else {
        return;
    };
    line.extend_from_slice(b",\"error\":{");
    if let Some(code) = error.code {
        line.extend_from_slice(b"\"code\":");
        write_int(line, code);
        line.push(b',');
    }
    line.extend_from_slice(b"\"type\":");
    write_str(line, &error.kind);
    line.extend_from_slice(b",\"message\":");
    write_str(line, &error.message);
    if let Some(cause) = &error.cause {
        line.extend_from_slice(b",\"cause\":");
        write_str(line, cause);
    }
    if let Some((first, rest)) = error.cause_chain.split_first() {
        line.extend_from_slice(b",\"cause_chain\":[");
        write_str(line, first);
        for name in rest {
            line.push(b',');
            write_str(line, name);
        }
        line.push(b']');
    }
    // An overloaded server's Retry-After (BC-22) goes in AIPerf's optional
    // `details`, so a reader can tell "come back in 2 s" from a plain refusal.
    if let Some(retry_after) = &record.raw.retry_after {
        line.extend_from_slice(b",\"details\":{\"retry_after\":");
        write_str(line, retry_after);
        line.push(b'}');
    }
    line.push(b'}');
}

/// The `metadata` object, in AIPerf's key order; absent values leave their key out.
fn write_metadata(
    line: &mut Vec<u8>,
    (conversation_ids, session_ids): (&[String], SessionIds),
    has_warmup: bool,
    clock: &RunClock,
    record: &ParsedRecord,
) {
    let raw = &record.raw;
    let phase = raw.phase.unwrap_or(Phase::Profiling);
    let phase_index = match phase {
        Phase::Warmup => 0,
        Phase::Profiling => u32::from(has_warmup),
    };
    line.extend_from_slice(b"{\"session_num\":");
    write_int(line, raw.credit_index);
    if !raw.x_request_id.is_empty() {
        line.extend_from_slice(b",\"x_request_id\":");
        write_str(line, &raw.x_request_id);
    }
    if !raw.x_correlation_id.is_empty() {
        line.extend_from_slice(b",\"x_correlation_id\":");
        write_str(line, &raw.x_correlation_id);
    }
    line.extend_from_slice(b",\"conversation_id\":");
    match conversation_ids.get(raw.conversation_index) {
        Some(id) => write_str(line, id),
        None => {
            line.push(b'"');
            session_ids.write(raw.conversation_index, line);
            line.push(b'"');
        }
    }
    line.extend_from_slice(b",\"turn_index\":");
    write_int(line, raw.turn_index);
    line.extend_from_slice(b",\"credit_issued_ns\":");
    write_int(line, clock.wall_ns(raw.intended_ns));
    line.extend_from_slice(b",\"request_start_ns\":");
    write_int(line, clock.wall_ns(raw.start_ns));
    if let Some(ack) = raw.ack_ns {
        line.extend_from_slice(b",\"request_ack_ns\":");
        write_int(line, clock.wall_ns(ack));
    }
    line.extend_from_slice(b",\"request_end_ns\":");
    write_int(line, clock.wall_ns(raw.end_ns));
    line.extend_from_slice(b",\"worker_id\":\"worker_");
    write_int(line, raw.worker_id);
    // One record thread serves every worker.
    line.extend_from_slice(b"\",\"record_processor_id\":\"record_processor_0\"");
    let phase_name = phase.as_str().as_bytes();
    line.extend_from_slice(b",\"benchmark_phase\":\"");
    line.extend_from_slice(phase_name);
    line.extend_from_slice(b"\",\"phase_index\":");
    write_int(line, phase_index);
    if phase == Phase::Profiling {
        line.extend_from_slice(b",\"profiling_index\":0");
    }
    let cancelled = raw.was_cancelled || record.outcome == crate::record::Outcome::Cancelled;
    for key in [&b",\"phase_name\":\""[..], b"\",\"phase_kind\":\""] {
        line.extend_from_slice(key);
        line.extend_from_slice(phase_name);
    }
    line.extend_from_slice(b"\",\"was_cancelled\":");
    line.extend_from_slice(if cancelled { b"true" } else { b"false" });
    if cancelled {
        // AIPerf stamps the cancellation where the request ended.
        line.extend_from_slice(b",\"cancellation_time_ns\":");
        write_int(line, clock.wall_ns(raw.end_ns));
    }
    line.extend_from_slice(b",\"context_overflow_skip\":false,\"agent_depth\":0");
    if !raw.x_correlation_id.is_empty() {
        line.extend_from_slice(b",\"root_correlation_id\":");
        write_str(line, &raw.x_correlation_id);
    }
    line.push(b'}');
}

/// Tags and units are `'static` and usually the very same constant: the address settles
/// it at once.
fn same_str(a: &str, b: &str) -> bool {
    (a.as_ptr() == b.as_ptr() && a.len() == b.len()) || a == b
}

/// `{tag:{"value":..,"unit":..}}` in the record processors' order; counts as integers.
fn write_metrics(line: &mut Vec<u8>, metrics: &MetricRecord, hints: &mut Vec<EntryHint>) {
    line.push(b'{');
    for (i, e) in metrics.entries.iter().enumerate() {
        if i > 0 {
            line.push(b',');
        }
        if !hints.get(i).is_some_and(|h| h.fits(e.tag, e.unit)) {
            if hints.len() <= i {
                hints.resize_with(i + 1, EntryHint::default);
            }
            hints[i] = EntryHint::new(e.tag, e.unit);
        }
        let hint = &hints[i];
        line.extend_from_slice(&hint.head);
        match &e.value {
            MetricValue::Scalar(v) if hint.integer => write_count(line, *v),
            MetricValue::Scalar(v) => write_float(line, *v),
            MetricValue::List(vs) => {
                line.push(b'[');
                for (j, v) in vs.iter().enumerate() {
                    if j > 0 {
                        line.push(b',');
                    }
                    write_float(line, *v);
                }
                line.push(b']');
            }
        }
        line.extend_from_slice(&hint.tail);
    }
    line.push(b'}');
}

pub(super) fn write_int(line: &mut Vec<u8>, v: impl itoa::Integer) {
    line.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// As [`Json::float`]: serde_json's shortest round-trip form; non-finite is `null`.
fn write_float(line: &mut Vec<u8>, v: f64) {
    use serde_json::ser::Formatter;
    if !v.is_finite()
        || serde_json::ser::CompactFormatter
            .write_f64(line, v)
            .is_err()
    {
        line.extend_from_slice(b"null");
    }
}

/// As [`Json::count`]: an integral value without a fraction.
fn write_count(line: &mut Vec<u8>, v: f64) {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.007_199_254_740_992e15 {
        write_int(line, v as i64);
    } else {
        write_float(line, v);
    }
}

/// A JSON string, escaped as serde_json escapes it (writing to a `Vec` cannot fail).
/// Ids and names rarely need escaping, so they are checked first and copied whole.
pub fn write_str(line: &mut Vec<u8>, s: &str) {
    if needs_escape(s.as_bytes()) {
        // Serializing a str into a Vec cannot fail.
        let _ = serde_json::to_writer(line, s);
    } else {
        line.reserve(s.len() + 2);
        line.push(b'"');
        line.extend_from_slice(s.as_bytes());
        line.push(b'"');
    }
}

/// Whether a JSON string of these bytes needs an escape: a control byte, a quote or a
/// backslash. Eight ASCII bytes at a time (a request's prompt and a record's ids are
/// checked once each; a byte-by-byte test was most of writing them).
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let escaped = |b: &u8| *b < 0x20 || *b == b'"' || *b == b'\\';
    // Whether a byte of `x` is under `n`: exact when no byte of `x` has its high bit set.
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGHS;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_ne_bytes(word);
        if x & HIGHS != 0 {
            // Not all ASCII (UTF-8 text): byte by byte.
            if chunk.iter().any(escaped) {
                return true;
            }
            continue;
        }
        let quote = x ^ (ONES * u64::from(b'"'));
        let backslash = x ^ (ONES * u64::from(b'\\'));
        if below(x, 0x20) | below(quote, 1) | below(backslash, 1) != 0 {
            return true;
        }
    }
    chunks.remainder().iter().any(escaped)
}

/// `{code?, type, message, cause?, cause_chain?}`, in the order of AIPerf's model: AIPerf
/// leaves out a missing field rather than writing null.
pub(crate) fn error_json(error: &ErrorDetails) -> Json {
    let mut fields = Vec::with_capacity(5);
    if let Some(code) = error.code {
        fields.push(("code".to_owned(), Json::int(code)));
    }
    fields.push(("type".to_owned(), Json::str(error.kind.as_str())));
    fields.push(("message".to_owned(), Json::str(error.message.as_str())));
    if let Some(cause) = &error.cause {
        fields.push(("cause".to_owned(), Json::str(cause.as_str())));
    }
    if !error.cause_chain.is_empty() {
        let chain = error.cause_chain.iter().map(|c| Json::str(c.as_str()));
        fields.push(("cause_chain".to_owned(), Json::Arr(chain.collect())));
    }
    Json::Obj(fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Outcome, RequestRecord};

    /// The eight-at-a-time check agrees with a byte-by-byte one for every byte in every
    /// position of words of ASCII, of UTF-8 and of both, and strings are written as
    /// serde_json writes them.
    #[test]
    fn escapes_are_found_wherever_they_are() {
        let naive = |b: &[u8]| b.iter().any(|&c| c < 0x20 || c == b'"' || c == b'\\');
        for len in 0..20 {
            for at in 0..len {
                for byte in 0..=255u8 {
                    for fill in [b'a', 0xc3, 0x9f] {
                        let mut bytes = vec![fill; len];
                        bytes[at] = byte;
                        assert_eq!(needs_escape(&bytes), naive(&bytes), "{bytes:?}");
                    }
                }
            }
        }
        for s in [
            "plain words",
            "a \"quote\"",
            "back\\slash",
            "tab\there",
            "ü€ and \u{1}",
        ] {
            let mut line = Vec::new();
            write_str(&mut line, s);
            assert_eq!(line, serde_json::to_vec(s).unwrap(), "{s}");
        }
    }

    /// The line as the document tree writes it: what `write` wrote before it wrote
    /// directly, kept as the reference for its bytes.
    fn tree_line(
        clock: &RunClock,
        record: &ParsedRecord,
        metrics: &MetricRecord,
        (ids, session_ids): (&[String], SessionIds),
        has_warmup: bool,
    ) -> String {
        let raw = &record.raw;
        let phase = raw.phase.unwrap_or(Phase::Profiling);
        let wall = |ns| Json::int(clock.wall_ns(ns));
        let opt_str = |s: &str| (!s.is_empty()).then(|| Json::str(s));
        let cancelled = raw.was_cancelled || record.outcome == Outcome::Cancelled;
        let conversation_id = ids
            .get(raw.conversation_index)
            .cloned()
            .unwrap_or_else(|| session_ids.id(raw.conversation_index));
        let phase_index = match phase {
            Phase::Warmup => 0,
            Phase::Profiling => u32::from(has_warmup),
        };
        let fields: [(&str, Option<Json>); 21] = [
            ("session_num", Some(Json::int(raw.credit_index))),
            ("x_request_id", opt_str(&raw.x_request_id)),
            ("x_correlation_id", opt_str(&raw.x_correlation_id)),
            ("conversation_id", Some(Json::Str(conversation_id))),
            ("turn_index", Some(Json::int(raw.turn_index))),
            ("credit_issued_ns", Some(wall(raw.intended_ns))),
            ("request_start_ns", Some(wall(raw.start_ns))),
            ("request_ack_ns", raw.ack_ns.map(wall)),
            ("request_end_ns", Some(wall(raw.end_ns))),
            (
                "worker_id",
                Some(Json::Str(format!("worker_{}", raw.worker_id))),
            ),
            ("record_processor_id", Some(Json::str("record_processor_0"))),
            ("benchmark_phase", Some(Json::str(phase.as_str()))),
            ("phase_index", Some(Json::int(phase_index))),
            (
                "profiling_index",
                (phase == Phase::Profiling).then(|| Json::int(0)),
            ),
            ("phase_name", Some(Json::str(phase.as_str()))),
            ("phase_kind", Some(Json::str(phase.as_str()))),
            ("was_cancelled", Some(Json::Bool(cancelled))),
            ("cancellation_time_ns", cancelled.then(|| wall(raw.end_ns))),
            ("context_overflow_skip", Some(Json::Bool(false))),
            ("agent_depth", Some(Json::int(0))),
            ("root_correlation_id", opt_str(&raw.x_correlation_id)),
        ];
        let metadata = Json::Obj(
            fields
                .into_iter()
                .filter_map(|(k, v)| Some((k.to_owned(), v?)))
                .collect(),
        );
        let metrics = Json::Obj(
            metrics
                .entries
                .iter()
                .map(|e| {
                    let integer = metrics::lookup(e.tag).is_some_and(|d| d.integer);
                    let value = match &e.value {
                        MetricValue::Scalar(v) if integer => Json::count(*v),
                        MetricValue::Scalar(v) => Json::float(*v),
                        MetricValue::List(vs) => {
                            Json::Arr(vs.iter().map(|v| Json::float(*v)).collect())
                        }
                    };
                    let obj = Json::Obj(vec![
                        ("value".into(), value),
                        ("unit".into(), Json::str(e.unit)),
                    ]);
                    (e.tag.to_owned(), obj)
                })
                .collect(),
        );
        let mut doc = vec![
            ("metadata".to_owned(), metadata),
            ("metrics".to_owned(), metrics),
        ];
        if let Some(error) = record_error(record) {
            let mut error = error_json(&error);
            if let (Json::Obj(fields), Some(retry_after)) = (&mut error, &raw.retry_after) {
                let details = vec![("retry_after".to_owned(), Json::str(retry_after.as_str()))];
                fields.push(("details".to_owned(), Json::Obj(details)));
            }
            doc.push(("error".to_owned(), error));
        }
        let mut line = String::new();
        Json::Obj(doc).write_compact(&mut line);
        line.push('\n');
        line
    }

    /// Records that take every branch of the layout: phases, missing and present optional
    /// fields, strings that need escaping, errors with and without a code and a
    /// Retry-After, cancellation, counts that are and are not whole, lists, non-finite
    /// values.
    #[test]
    fn direct_lines_equal_the_document_tree() {
        let clock = RunClock::new();
        let mut metrics = MetricRecord::default();
        metrics.push("request_latency", MetricValue::Scalar(12.345_678_9), "ms");
        metrics.push(
            "output_sequence_length",
            MetricValue::Scalar(17.0),
            "tokens",
        );
        metrics.push("input_sequence_length", MetricValue::Scalar(2.5), "tokens");
        metrics.push(
            "output_token_count",
            MetricValue::Scalar(f64::NAN),
            "tokens",
        );
        metrics.push("time_to_first_token", MetricValue::Scalar(1e21), "ms");
        metrics.push("scheduling_lateness", MetricValue::Scalar(-0.0), "ms");
        metrics.push(
            "inter_chunk_latency",
            MetricValue::List(vec![0.1, 20.0, f64::INFINITY, 3e-7]),
            "ms",
        );
        metrics.push("custom \"tag\"", MetricValue::Scalar(1.0), "u\u{1}nit");
        let base = || ParsedRecord {
            raw: RequestRecord {
                worker_id: 11,
                credit_index: 123_456,
                conversation_index: 4,
                turn_index: 2,
                phase: Some(Phase::Profiling),
                intended_ns: 5,
                start_ns: 1_000,
                end_ns: 9_999_999,
                ..Default::default()
            },
            responses: Vec::new(),
            outcome: Outcome::Success,
            error: None,
            produces_tokens: true,
            input_tokens: None,
            output_tokens: None,
            reasoning_tokens: None,
            usage: None,
        };
        let mut records = vec![base()];
        let mut r = base();
        r.raw.phase = Some(Phase::Warmup);
        r.raw.x_request_id = "id \"quoted\" \\ \n\t é 🚀".into();
        r.raw.x_correlation_id = "corr".into();
        r.raw.ack_ns = Some(2_000);
        records.push(r);
        let mut r = base();
        r.raw.phase = None;
        r.outcome = Outcome::Shed;
        r.error = Some(ErrorDetails::new(
            Some(429),
            "Overloaded",
            "slow down \"now\"",
        ));
        r.raw.retry_after = Some("2".into());
        records.push(r);
        let mut r = base();
        r.outcome = Outcome::ConnectionError;
        r.error = Some(ErrorDetails::new(None, "ConnectionError", "refused\r\n"));
        r.raw.was_cancelled = true;
        records.push(r);
        let mut r = base();
        r.outcome = Outcome::Truncated;
        r.error = Some(ErrorDetails::exception(
            "ClientPayloadError",
            "ClientPayloadError(\"cut\")".to_owned(),
            Some("<E: 400, message='a\\b'>".to_owned()),
            &["ClientPayloadError", "E"],
        ));
        r.raw.retry_after = Some("1".into());
        records.push(r);
        let mut r = base();
        r.outcome = Outcome::EmptyOutput;
        r.error = Some(ErrorDetails::exception("X", "X()".to_owned(), None, &["X"]));
        records.push(r);
        let mut r = base();
        r.outcome = Outcome::Cancelled;
        r.raw.conversation_index = 0;
        records.push(r);
        let mut r = base();
        r.raw.conversation_index = 12_345_678;
        r.raw.worker_id = 0;
        records.push(r);
        // Two tags of one unit swapped, and a tag in its place with another unit: the
        // writer's per-entry cache must notice either change.
        let mut shuffled = metrics.clone();
        shuffled.entries.swap(0, 4);
        shuffled.entries[5].unit = "s";

        let named = [
            (Vec::new(), SessionIds::Numbered),
            (Vec::new(), SessionIds::Uuid { key: 3 }),
            (
                vec!["a".to_owned(), "b\u{7f}\"".to_owned()],
                SessionIds::Numbered,
            ),
        ];
        for (ids, session_ids) in named {
            for has_warmup in [false, true] {
                for shapes in [
                    [MetricRecord::default(), MetricRecord::default()],
                    [metrics.clone(), metrics.clone()],
                    [metrics.clone(), shuffled.clone()],
                ] {
                    let mut writer = RecordWriter::new(Vec::new());
                    writer.set_conversation_ids(ids.clone());
                    writer.set_session_ids(session_ids);
                    writer.set_has_warmup(has_warmup);
                    let mut expected = String::new();
                    // A warmup record marks the run as having one, for the records after.
                    let mut warm = has_warmup;
                    for (i, record) in records.iter().enumerate() {
                        let metrics = &shapes[i % 2];
                        writer.write(&clock, record, metrics).unwrap();
                        warm |= record.raw.phase == Some(Phase::Warmup);
                        let names = (&ids[..], session_ids);
                        expected.push_str(&tree_line(&clock, record, metrics, names, warm));
                    }
                    let got = String::from_utf8(writer.into_inner().unwrap()).unwrap();
                    assert_eq!(got, expected);
                }
            }
        }
    }

    /// The error object's keys in the order of AIPerf's model, `cause` and `cause_chain`
    /// left out when AIPerf has none, `details` last.
    #[test]
    fn error_objects_in_aiperf_s_key_order() {
        let clock = RunClock::new();
        let mut record = ParsedRecord {
            raw: RequestRecord::default(),
            responses: Vec::new(),
            outcome: Outcome::Shed,
            error: Some(ErrorDetails::exception(
                "TimeoutError",
                "TimeoutError()".to_owned(),
                Some("CancelledError()".to_owned()),
                &["TimeoutError", "CancelledError"],
            )),
            produces_tokens: true,
            input_tokens: None,
            output_tokens: None,
            reasoning_tokens: None,
            usage: None,
        };
        record.raw.retry_after = Some("2".into());
        let line = |record: &ParsedRecord| {
            let mut writer = RecordWriter::new(Vec::new());
            writer
                .write(&clock, record, &MetricRecord::default())
                .unwrap();
            let line = String::from_utf8(writer.into_inner().unwrap()).unwrap();
            let at = line.find(",\"error\":").expect("an error");
            line[at..].to_owned()
        };
        assert_eq!(
            line(&record),
            ",\"error\":{\"type\":\"TimeoutError\",\"message\":\"TimeoutError()\",\
             \"cause\":\"CancelledError()\",\"cause_chain\":[\"TimeoutError\",\
             \"CancelledError\"],\"details\":{\"retry_after\":\"2\"}}}\n"
        );
        record.error = Some(ErrorDetails::new(Some(429), "Too Many Requests", "slow"));
        assert_eq!(
            line(&record),
            ",\"error\":{\"code\":429,\"type\":\"Too Many Requests\",\"message\":\"slow\",\
             \"details\":{\"retry_after\":\"2\"}}}\n"
        );
    }
}
