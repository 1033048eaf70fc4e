//! `profile_export.jsonl`: one line per finished request, written as records arrive.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use super::jsonw::Json;
use crate::metrics::{self, record_error};
use crate::record::{ErrorDetails, ParsedRecord, Phase, RunClock};
use crate::results::{MetricRecord, MetricValue};

/// Streams request records to `profile_export.jsonl` in AIPerf's layout:
/// `{"metadata":{..},"metrics":{tag:{"value","unit"}},"error"?:{code,type,message}}`.
///
/// Warmup records are written too (AIPerf does), tagged `benchmark_phase: "warmup"`.
/// Output is buffered; call [`finish`](Self::finish) to flush it.
pub struct RecordWriter<W: Write = BufWriter<File>> {
    out: W,
    line: String,
    /// Set once a warmup record is seen: phase indices then count warmup as phase 0.
    has_warmup: bool,
    conversation_ids: Vec<String>,
}

impl RecordWriter<BufWriter<File>> {
    /// Creates (truncates) the file, and its directory if needed.
    pub fn create(path: &Path) -> io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        Ok(Self::new(BufWriter::with_capacity(
            1 << 16,
            File::create(path)?,
        )))
    }
}

impl<W: Write> RecordWriter<W> {
    pub fn new(out: W) -> Self {
        RecordWriter {
            out,
            line: String::new(),
            has_warmup: false,
            conversation_ids: Vec::new(),
        }
    }

    /// Declares that the run has a warmup phase, so profiling records get
    /// `phase_index` 1 even before any warmup record was written.
    pub fn set_has_warmup(&mut self, has_warmup: bool) {
        self.has_warmup = has_warmup;
    }

    /// Dataset session ids by conversation index, written as `conversation_id`.
    /// Without them the id is `session_<index:06>`, the synthetic composer's naming.
    pub fn set_conversation_ids(&mut self, ids: Vec<String>) {
        self.conversation_ids = ids;
    }

    /// Appends one request. `metrics` are in display units, as record processors emit.
    pub fn write(
        &mut self,
        clock: &RunClock,
        record: &ParsedRecord,
        metrics: &MetricRecord,
    ) -> io::Result<()> {
        if record.raw.phase == Some(Phase::Warmup) {
            self.has_warmup = true;
        }
        let mut doc = vec![
            ("metadata".to_owned(), self.metadata(clock, record)),
            ("metrics".to_owned(), metrics_json(metrics)),
        ];
        if let Some(error) = record_error(record) {
            let mut error = error_json(&error);
            // An overloaded server's Retry-After (BC-22) goes in AIPerf's optional
            // `details`, so a reader can tell "come back in 2 s" from a plain refusal.
            if let (Json::Obj(fields), Some(retry_after)) = (&mut error, &record.raw.retry_after) {
                let details = vec![("retry_after".to_owned(), Json::str(retry_after.as_str()))];
                fields.push(("details".to_owned(), Json::Obj(details)));
            }
            doc.push(("error".to_owned(), error));
        }
        self.line.clear();
        Json::Obj(doc).write_compact(&mut self.line);
        self.line.push('\n');
        self.out.write_all(self.line.as_bytes())
    }

    /// Flushes everything written.
    pub fn finish(mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes and hands the underlying writer back.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }

    fn metadata(&self, clock: &RunClock, record: &ParsedRecord) -> Json {
        let raw = &record.raw;
        let phase = raw.phase.unwrap_or(Phase::Profiling);
        let wall = |ns| Json::int(clock.wall_ns(ns));
        let opt_str = |s: &str| (!s.is_empty()).then(|| Json::str(s));
        let conversation_id = self
            .conversation_ids
            .get(raw.conversation_index)
            .cloned()
            .unwrap_or_else(|| format!("session_{:06}", raw.conversation_index));
        let phase_index = match phase {
            Phase::Warmup => 0,
            Phase::Profiling => u32::from(self.has_warmup),
        };
        let fields: [(&str, Option<Json>); 20] = [
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
            // One record thread serves every worker.
            ("record_processor_id", Some(Json::str("record_processor_0"))),
            ("benchmark_phase", Some(Json::str(phase.as_str()))),
            ("phase_index", Some(Json::int(phase_index))),
            (
                "profiling_index",
                (phase == Phase::Profiling).then(|| Json::int(0)),
            ),
            ("phase_name", Some(Json::str(phase.as_str()))),
            ("phase_kind", Some(Json::str(phase.as_str()))),
            (
                "was_cancelled",
                Some(Json::Bool(
                    raw.was_cancelled || record.outcome == crate::record::Outcome::Cancelled,
                )),
            ),
            ("context_overflow_skip", Some(Json::Bool(false))),
            ("agent_depth", Some(Json::int(0))),
            ("root_correlation_id", opt_str(&raw.x_correlation_id)),
        ];
        Json::Obj(
            fields
                .into_iter()
                .filter_map(|(k, v)| Some((k.to_owned(), v?)))
                .collect(),
        )
    }
}

fn metrics_json(metrics: &MetricRecord) -> Json {
    let fields = metrics.entries.iter().map(|e| {
        let integer = metrics::lookup(e.tag).is_some_and(|d| d.integer);
        let value = match &e.value {
            MetricValue::Scalar(v) if integer => Json::count(*v),
            MetricValue::Scalar(v) => Json::float(*v),
            MetricValue::List(vs) => Json::Arr(vs.iter().map(|v| Json::float(*v)).collect()),
        };
        let obj = Json::Obj(vec![
            ("value".into(), value),
            ("unit".into(), Json::str(e.unit)),
        ]);
        (e.tag.to_owned(), obj)
    });
    Json::Obj(fields.collect())
}

/// `{code?, type, message}`: AIPerf drops a missing code rather than writing null.
pub(crate) fn error_json(error: &ErrorDetails) -> Json {
    let mut fields = Vec::with_capacity(3);
    if let Some(code) = error.code {
        fields.push(("code".to_owned(), Json::int(code)));
    }
    fields.push(("type".to_owned(), Json::str(error.kind.as_str())));
    fields.push(("message".to_owned(), Json::str(error.message.as_str())));
    Json::Obj(fields)
}
