//! A run with a warmup has two phases, and AIPerf then writes each phase's own summary:
//! `phases/<name>/profile_export_aiperf.{json,csv}` (`phases/<name>/P.{json,csv}` with
//! `--profile-export-prefix P`), and `phase_manifest.json` listing them. The root files
//! stay the profiling phase's, with the warmup's metrics beside them in `warmup_metrics`.

use std::path::Path;

use super::pipeline::PhaseSummary;
use super::run::local_iso_time;
use crate::export::jsonw::Json;
use crate::record::{Nanos, Phase, RunClock};
use crate::results::RunResults;

pub(crate) const MANIFEST_FILE: &str = "phase_manifest.json";
const MANIFEST_SCHEMA_VERSION: u64 = 1;

/// One phase as the manifest and its files describe it.
pub(crate) struct PhaseRun<'a> {
    pub phase: Phase,
    pub summary: &'a PhaseSummary,
    /// When the phase began issuing (run clock); its first request's start if unknown.
    pub started: Option<Nanos>,
    pub was_cancelled: bool,
}

/// The name of a phase's summary file: the root file's, `--profile-export-prefix` and
/// all, as AIPerf names both from one setting.
fn phase_file(results: &RunResults, default: &str) -> String {
    crate::results::export_file_name(results.export_prefix.as_deref(), default)
}

/// Writes every phase's JSON and CSV summaries and the manifest; returns what could not
/// be written (each named by its path). `results` is the run's (profiling) results: each
/// phase's files are those, with the phase's metrics, errors and times.
pub(crate) fn write(
    results: &RunResults,
    clock: &RunClock,
    phases: &[PhaseRun<'_>],
) -> Vec<String> {
    let mut failures = Vec::new();
    let mut entries = Vec::with_capacity(phases.len());
    for (index, run) in phases.iter().enumerate() {
        let name = run.phase.as_str();
        let dir = Path::new("phases").join(name);
        let json_rel = dir.join(phase_file(results, crate::export::JSON_FILE));
        let csv_rel = dir.join(phase_file(results, crate::export::CSV_FILE));
        let start = run
            .summary
            .window
            .map_or(run.started.unwrap_or(0), |(s, _)| s);
        let end = run.summary.window.map_or(start, |(_, e)| e.max(start));
        let phase_results = RunResults {
            metrics: run.summary.metrics.clone(),
            error_summary: run.summary.error_summary.clone(),
            start_time: local_iso_time(clock.wall_ns(start)),
            end_time: local_iso_time(clock.wall_ns(end)),
            was_cancelled: run.was_cancelled,
            client_health: serde_json::Value::Null,
            warmup_metrics: None,
            // AIPerf slices the run's profiling phase only, in the root files.
            timeslices: Vec::new(),
            ..results.clone()
        };
        for (rel, text) in [
            (&json_rel, crate::export::json::render_phase(&phase_results)),
            (&csv_rel, crate::export::csv::render_metrics(&phase_results)),
        ] {
            if let Err(e) = crate::export::write_atomically(&results.artifact_dir.join(rel), &text)
            {
                failures.push(e.to_string());
            }
        }
        let s = run.summary;
        entries.push(Json::Obj(vec![
            ("phase_index".into(), Json::int(index as u64)),
            ("phase_name".into(), Json::str(name)),
            ("phase_kind".into(), Json::str(name)),
            (
                "profiling_index".into(),
                match run.phase {
                    Phase::Profiling => Json::int(0),
                    Phase::Warmup => Json::Null,
                },
            ),
            ("start_ns".into(), Json::int(clock.wall_ns(start))),
            ("end_ns".into(), Json::int(clock.wall_ns(end))),
            ("total_request_count".into(), Json::int(s.total)),
            (
                "successful_request_count".into(),
                Json::int(s.total - s.errors),
            ),
            ("error_request_count".into(), Json::int(s.errors)),
            ("error_summary".into(), manifest_errors(&s.error_summary)),
            ("was_cancelled".into(), Json::Bool(run.was_cancelled)),
            (
                "metrics_json".into(),
                Json::str(json_rel.display().to_string()),
            ),
            (
                "metrics_csv".into(),
                Json::str(csv_rel.display().to_string()),
            ),
        ]));
    }
    let manifest = Json::Obj(vec![
        ("phases".into(), Json::Arr(entries)),
        ("schema_version".into(), Json::int(MANIFEST_SCHEMA_VERSION)),
    ]);
    let mut text = String::new();
    sorted(manifest).write_pretty(&mut text, 0);
    if let Err(e) =
        crate::export::write_atomically(&results.artifact_dir.join(MANIFEST_FILE), &text)
    {
        failures.push(e.to_string());
    }
    failures
}

/// A phase's error summary as AIPerf's manifest has it: every field of each error's
/// details, absent ones as `null` (the JSON summary leaves those out).
fn manifest_errors(errors: &[crate::results::ErrorCount]) -> Json {
    let entries = errors.iter().map(|e| {
        let d = &e.error_details;
        let chain = match d.cause_chain.is_empty() {
            true => Json::Null,
            false => Json::Arr(
                d.cause_chain
                    .iter()
                    .map(|c| Json::str(c.as_str()))
                    .collect(),
            ),
        };
        let details = Json::Obj(vec![
            (
                "cause".into(),
                d.cause.as_deref().map_or(Json::Null, Json::str),
            ),
            ("cause_chain".into(), chain),
            ("code".into(), d.code.map_or(Json::Null, Json::int)),
            ("details".into(), Json::Null),
            ("message".into(), Json::str(d.message.as_str())),
            ("type".into(), Json::str(d.kind.as_str())),
        ]);
        Json::Obj(vec![
            ("error_details".into(), details),
            ("count".into(), Json::int(e.count)),
        ])
    });
    Json::Arr(entries.collect())
}

/// `json` with every object's keys in order: AIPerf writes the manifest with `sort_keys`.
fn sorted(json: Json) -> Json {
    match json {
        Json::Obj(mut fields) => {
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Json::Obj(fields.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Json::Arr(items) => Json::Arr(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ErrorDetails;
    use crate::results::ErrorCount;

    /// The manifest's errors carry every field of their details, absent ones as `null`,
    /// and every object's keys come sorted, as AIPerf's `sort_keys` writes them.
    #[test]
    fn manifest_errors_are_aiperf_s_sorted_and_whole() {
        let mut timeout = ErrorDetails::new(None, "TimeoutError", "timed out");
        timeout.cause_chain = vec!["TimeoutError".into(), "CancelledError".into()];
        let errors = [
            ErrorCount {
                error_details: ErrorDetails::new(Some(500), "Internal Server Error", "boom"),
                count: 3,
            },
            ErrorCount {
                error_details: timeout,
                count: 1,
            },
        ];
        let mut text = String::new();
        sorted(manifest_errors(&errors)).write_pretty(&mut text, 0);
        let compact: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(
            compact.to_string(),
            concat!(
                r#"[{"count":3,"error_details":{"cause":null,"cause_chain":null,"code":500,"#,
                r#""details":null,"message":"boom","type":"Internal Server Error"}},"#,
                r#"{"count":1,"error_details":{"cause":null,"cause_chain":["TimeoutError","#,
                r#""CancelledError"],"code":null,"details":null,"message":"timed out","#,
                r#""type":"TimeoutError"}}]"#
            )
        );
        // serde_json sorts its maps anyway: the text itself has them in order.
        let at = |key: &str| text.find(key).expect(key);
        assert!(at("\"count\"") < at("\"error_details\""));
        assert!(at("\"cause\"") < at("\"code\"") && at("\"details\"") < at("\"type\""));
    }
}
