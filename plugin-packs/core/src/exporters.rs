//! AIPerf's summary files and console tables.

use std::path::PathBuf;

use aiperf_runtime::export::{self, console, csv, json, write_atomically};
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
        assert_eq!(
            std::fs::read_to_string(&csv_path).unwrap(),
            "Metric,Value\r\nRequest Count,3.00\r\n"
        );
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
