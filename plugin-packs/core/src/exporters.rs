//! AIPerf's summary files and console tables.

use std::path::PathBuf;

use aiperf_runtime::export::{
    self, console, csv, json, timeslices, write_atomically, write_atomically_with,
};
use aiperf_runtime::metrics;
use aiperf_runtime::plugin::{Plugin, PluginContext, PluginError};
use aiperf_runtime::protocols::{ConsoleExporterProtocol, DataExporterProtocol};
use aiperf_runtime::results::RunResults;

/// Writes `<artifact_dir>/profile_export_aiperf.json` (`<prefix>.json` with
/// `--profile-export-prefix`).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonExporter;

impl Plugin for JsonExporter {
    fn create(_ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(JsonExporter)
    }
}

impl DataExporterProtocol for JsonExporter {
    fn export(&self, results: &RunResults) -> Result<PathBuf, PluginError> {
        let path = results.export_path(export::JSON_FILE);
        write_atomically(&path, &json::render(results))?;
        Ok(path)
    }
}

/// Writes `<artifact_dir>/profile_export_aiperf.csv` (`<prefix>.csv` with
/// `--profile-export-prefix`).
#[derive(Debug, Clone, Copy, Default)]
pub struct CsvExporter;

impl Plugin for CsvExporter {
    fn create(_ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(CsvExporter)
    }
}

impl DataExporterProtocol for CsvExporter {
    fn export(&self, results: &RunResults) -> Result<PathBuf, PluginError> {
        let path = results.export_path(export::CSV_FILE);
        write_atomically(&path, &csv::render(results))?;
        Ok(path)
    }
}

/// `--slice-duration` is set: the time-slice exporters are wanted.
fn slices_wanted(ctx: &PluginContext<'_>, name: &str) -> Result<(), PluginError> {
    match ctx.config.slice_duration {
        Some(_) => Ok(()),
        None => Err(PluginError::Disabled(format!(
            "{name} (no --slice-duration)"
        ))),
    }
}

/// A run without time slices gets no time-slice file: no profiling request finished, or
/// the grid outgrew its cap (which the record thread warned about).
fn slices_present(results: &RunResults, name: &str) -> Result<(), PluginError> {
    if results.timeslices.is_empty() {
        return Err(PluginError::Disabled(format!(
            "{name} (no time slices: no profiling request finished, or too many slices)"
        )));
    }
    Ok(())
}

/// Writes `<artifact_dir>/profile_export_aiperf_timeslices.json` (`<prefix>_timeslices.json`
/// with `--profile-export-prefix`) with `--slice-duration`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TimesliceJsonExporter;

impl Plugin for TimesliceJsonExporter {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        slices_wanted(ctx, "timeslice_json")?;
        Ok(TimesliceJsonExporter)
    }
}

impl DataExporterProtocol for TimesliceJsonExporter {
    fn export(&self, results: &RunResults) -> Result<PathBuf, PluginError> {
        slices_present(results, "timeslice_json")?;
        let path = results.export_path(export::TIMESLICES_JSON_FILE);
        write_atomically_with(&path, |out| timeslices::write_json(results, out))?;
        Ok(path)
    }
}

/// Writes `<artifact_dir>/profile_export_aiperf_timeslices.csv` (`<prefix>_timeslices.csv`
/// with `--profile-export-prefix`) with `--slice-duration`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TimesliceCsvExporter;

impl Plugin for TimesliceCsvExporter {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        slices_wanted(ctx, "timeslice_csv")?;
        Ok(TimesliceCsvExporter)
    }
}

impl DataExporterProtocol for TimesliceCsvExporter {
    fn export(&self, results: &RunResults) -> Result<PathBuf, PluginError> {
        slices_present(results, "timeslice_csv")?;
        let path = results.export_path(export::TIMESLICES_CSV_FILE);
        write_atomically_with(&path, |out| timeslices::write_csv(results, out))?;
        Ok(path)
    }
}

/// AIPerf prints an empty line (`console.print("\n")`, two newlines) before each table.
const TABLE_GAP: &str = "\n\n";

/// Prints the metric tables (`NVIDIA AIPerf | LLM Metrics`, and per group).
#[derive(Debug, Clone, Copy, Default)]
pub struct MetricsConsoleExporter;

impl Plugin for MetricsConsoleExporter {
    fn create(_ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(MetricsConsoleExporter)
    }
}

impl ConsoleExporterProtocol for MetricsConsoleExporter {
    fn export(&self, results: &RunResults, out: &mut String) -> Result<(), PluginError> {
        let tables = console::render_metrics_table(results);
        if !tables.is_empty() {
            out.push_str(TABLE_GAP);
            out.push_str(&tables);
            // Also in the log mid-run; here for whoever reads only the summary.
            if metrics::usage_without_cache_in_results(&results.metrics) {
                out.push_str(&console::render_note(metrics::CACHE_REPORTING_HINT));
            }
        }
        Ok(())
    }
}

/// Prints the error summary; nothing when every request succeeded.
#[derive(Debug, Clone, Copy, Default)]
pub struct ErrorsConsoleExporter;

impl Plugin for ErrorsConsoleExporter {
    fn create(_ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(ErrorsConsoleExporter)
    }
}

impl ConsoleExporterProtocol for ErrorsConsoleExporter {
    fn export(&self, results: &RunResults, out: &mut String) -> Result<(), PluginError> {
        let table = console::render_error_summary(&results.error_summary);
        if !table.is_empty() {
            out.push_str(TABLE_GAP);
            out.push_str(&table);
        }
        Ok(())
    }
}

/// A count metric of the run, when the run has it and it is above zero.
fn count(results: &RunResults, tag: &str) -> Option<u64> {
    let v = results.metric(tag)?.avg;
    (v.is_finite() && v >= 1.0).then_some(v as u64)
}

/// The average of a per-request metric, when the run has it.
fn average(results: &RunResults, tag: &str) -> Option<f64> {
    results
        .metric(tag)
        .and_then(|m| m.stats.as_ref())
        .map(|s| s.avg)
        .filter(|v| v.is_finite())
}

/// `n of total requests (p%)`, total being every valid request.
fn share(n: u64, results: &RunResults) -> String {
    let total = results.metric("request_count").map_or(0.0, |m| m.avg);
    if total >= 1.0 {
        format!(
            "{n} of {total:.0} requests ({:.1}%)",
            100.0 * n as f64 / total
        )
    } else {
        format!("{n} requests")
    }
}

/// Warns when the server's output lengths missed the requested `--osl` (more than 5% or
/// 50 tokens away): throughput per token then describes other lengths than asked.
#[derive(Debug, Clone, Copy, Default)]
pub struct OslMismatchWarning;

impl Plugin for OslMismatchWarning {
    fn create(_ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(OslMismatchWarning)
    }
}

impl ConsoleExporterProtocol for OslMismatchWarning {
    fn export(&self, results: &RunResults, out: &mut String) -> Result<(), PluginError> {
        let Some(n) = count(results, "osl_mismatch_count") else {
            return Ok(());
        };
        let diff = average(results, "osl_mismatch_diff_pct")
            .map_or_else(String::new, |d| format!(" (on average {d:+.1}%)"));
        let text = format!(
            "{} came back with an output length other than the one requested (--osl){diff}, \
             by more than 5% or 50 tokens.\nThe server may stop early at an end-of-sequence \
             token or ignore max_tokens: per-token figures then describe other lengths than \
             the ones asked for. Servers that support it can be held to the length with \
             --extra-inputs ignore_eos:true (or min_tokens).",
            share(n, results)
        );
        out.push_str(TABLE_GAP);
        out.push_str(&console::render_warning_panel(
            "OSL Mismatch Warning",
            &text,
        ));
        Ok(())
    }
}

/// Warns when the server's token counts (`usage`) differ from the client's tokenizer by
/// more than 10%: the token figures then depend on which count is right.
#[derive(Debug, Clone, Copy, Default)]
pub struct UsageDiscrepancyWarning;

impl Plugin for UsageDiscrepancyWarning {
    fn create(_ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(UsageDiscrepancyWarning)
    }
}

impl ConsoleExporterProtocol for UsageDiscrepancyWarning {
    fn export(&self, results: &RunResults, out: &mut String) -> Result<(), PluginError> {
        let Some(n) = count(results, "usage_discrepancy_count") else {
            return Ok(());
        };
        let diffs: Vec<String> = [
            ("prompt", "usage_prompt_tokens_diff_pct"),
            ("completion", "usage_completion_tokens_diff_pct"),
            ("reasoning", "usage_reasoning_tokens_diff_pct"),
        ]
        .into_iter()
        .filter_map(|(what, tag)| Some(format!("{what} {:.1}%", average(results, tag)?)))
        .collect();
        let text = format!(
            "{} reported token counts (usage) more than 10% away from this client's \
             tokenizer (average differences: {}).\nThe tokenizer may not be the model's \
             (--tokenizer), or the server counts special tokens or a chat template. \
             --use-server-token-count takes the server's counts instead.",
            share(n, results),
            if diffs.is_empty() {
                "n/a".to_owned()
            } else {
                diffs.join(", ")
            }
        );
        out.push_str(TABLE_GAP);
        out.push_str(&console::render_warning_panel(
            "Token Count Discrepancy Warning",
            &text,
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use aiperf_runtime::record::ErrorDetails;
    use aiperf_runtime::results::{ErrorCount, MetricResult};

    use super::*;

    fn results(dir: PathBuf) -> RunResults {
        RunResults {
            metrics: vec![MetricResult {
                tag: "request_count",
                header: "Request Count",
                unit: "requests",
                display_order: Some(1100),
                stats: None,
                avg: 3.0,
            }],
            metrics_title: "LLM Metrics".into(),
            artifact_dir: dir,
            benchmark_id: "0123456789ab".into(),
            ..RunResults::default()
        }
    }

    #[test]
    fn data_exporters_write_their_files() {
        let dir = std::env::temp_dir().join(format!("aiperf-core-export-{}", std::process::id()));
        let r = results(dir.join("run"));
        let json_path = JsonExporter.export(&r).unwrap();
        let csv_path = CsvExporter.export(&r).unwrap();
        assert_eq!(json_path, dir.join("run/profile_export_aiperf.json"));
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
        assert_eq!(doc["request_count"]["avg"], 3.0);
        // The metrics, then AIPerf's GPU telemetry section without rows.
        assert_eq!(
            std::fs::read_to_string(&csv_path).unwrap(),
            "Metric,Value\r\nRequest Count,3.00\r\n\r\n\r\nEndpoint,GPU_Index,GPU_Name,\
             GPU_UUID,Platform,Metric,avg,min,max,sum,p1,p5,p10,p25,p50,p75,p90,p95,p99,std\r\n"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn timeslice_exporters_want_the_flag_and_a_slice() {
        use crate::test_config::{config, context, EMPTY_ENTRY};
        use aiperf_runtime::results::Timeslice;

        let without = config(&["-m", "m"]);
        for created in [
            TimesliceJsonExporter::create(&context(&without, &EMPTY_ENTRY)).map(|_| ()),
            TimesliceCsvExporter::create(&context(&without, &EMPTY_ENTRY)).map(|_| ()),
        ] {
            assert!(
                matches!(created, Err(PluginError::Disabled(_))),
                "{created:?}"
            );
        }
        let with = config(&["-m", "m", "--slice-duration", "1"]);
        let json = TimesliceJsonExporter::create(&context(&with, &EMPTY_ENTRY)).unwrap();
        let csv = TimesliceCsvExporter::create(&context(&with, &EMPTY_ENTRY)).unwrap();

        let dir = std::env::temp_dir().join(format!("aiperf-core-slices-{}", std::process::id()));
        let mut r = results(dir.clone());
        // No profiling request to slice: no files, and not a failure.
        assert!(matches!(json.export(&r), Err(PluginError::Disabled(_))));
        assert!(matches!(csv.export(&r), Err(PluginError::Disabled(_))));
        assert!(!dir.exists());

        r.timeslices.push(Timeslice {
            start_ns: 10,
            end_ns: 20,
            is_complete: true,
            metrics: r.metrics.clone(),
        });
        r.export_prefix = Some("foo".into());
        assert_eq!(json.export(&r).unwrap(), dir.join("foo_timeslices.json"));
        assert_eq!(csv.export(&r).unwrap(), dir.join("foo_timeslices.csv"));
        assert_eq!(
            std::fs::read_to_string(dir.join("foo_timeslices.csv")).unwrap(),
            "Timeslice,Start_NS,End_NS,Metric,Unit,Stat,Value\r\n\
             0,10,20,Request Count,requests,avg,3.00\r\n"
        );
        r.export_prefix = None;
        let path = json.export(&r).unwrap();
        assert_eq!(path, dir.join("profile_export_aiperf_timeslices.json"));
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(doc["timeslices"][0]["request_count"]["avg"], 3.0);
        assert_eq!(doc["timeslices"][0]["start_ns"], 10);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn console_exporters() {
        let mut r = results(PathBuf::new());
        let mut out = String::new();
        ErrorsConsoleExporter.export(&r, &mut out).unwrap();
        assert_eq!(out, "", "no errors, no table");

        MetricsConsoleExporter.export(&r, &mut out).unwrap();
        assert!(out.starts_with("\n\n"));
        assert!(out.contains("NVIDIA AIPerf | LLM Metrics"));
        assert!(out.contains("│ Request Count (requests) │ 3.00 │"), "{out}");

        r.error_summary.push(ErrorCount {
            error_details: ErrorDetails::new(Some(503), "Service Unavailable", "busy"),
            count: 2,
        });
        out.clear();
        ErrorsConsoleExporter.export(&r, &mut out).unwrap();
        assert!(
            out.contains("│  503 │ Service Unavailable │ busy    │     2 │"),
            "{out}"
        );
    }
}
