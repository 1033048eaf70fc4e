//! Metric values per request and per run: what record processors produce, results
//! processors aggregate, and exporters write.

use std::path::PathBuf;

use serde::Serialize;

use crate::record::ErrorDetails;

/// One metric value of one request.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum MetricValue {
    Scalar(f64),
    List(Vec<f64>),
}

/// A metric value in display units, tagged as AIPerf tags it.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricEntry {
    pub tag: &'static str,
    pub value: MetricValue,
    pub unit: &'static str,
}

/// The metrics of one request, in computation order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricRecord {
    pub entries: Vec<MetricEntry>,
}

impl MetricRecord {
    pub fn push(&mut self, tag: &'static str, value: MetricValue, unit: &'static str) {
        self.entries.push(MetricEntry { tag, value, unit });
    }

    pub fn scalar(&self, tag: &str) -> Option<f64> {
        self.entries
            .iter()
            .find(|e| e.tag == tag)
            .and_then(|e| match e.value {
                MetricValue::Scalar(v) => Some(v),
                MetricValue::List(_) => None,
            })
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

/// Summary statistics in display units. Percentiles interpolate linearly at
/// `q/100 * (n-1)` of the sorted values; `std` is the population deviation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    pub avg: f64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub std: f64,
    pub count: u64,
    pub p1: f64,
    pub p5: f64,
    pub p10: f64,
    pub p25: f64,
    pub p50: f64,
    pub p75: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
}

impl Stats {
    /// Statistics of a quantity over time rather than over requests (AIPerf's sweep-line
    /// metrics): they have an average, a deviation, extremes and the p50/p90/p95/p99 it
    /// reports for them, and nothing else. What they lack is NaN and `count` is 0, which
    /// the exporters read as absent (AIPerf writes no `count`, `sum` or lower percentiles
    /// for these).
    #[allow(clippy::too_many_arguments)]
    pub fn time_weighted(
        avg: f64,
        min: f64,
        max: f64,
        p50: f64,
        p90: f64,
        p95: f64,
        p99: f64,
        std: f64,
    ) -> Stats {
        let absent = f64::NAN;
        Stats {
            avg,
            min,
            max,
            sum: absent,
            std,
            count: 0,
            p1: absent,
            p5: absent,
            p10: absent,
            p25: absent,
            p50,
            p75: absent,
            p90,
            p95,
            p99,
        }
    }
}

/// A run-level metric.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricResult {
    pub tag: &'static str,
    pub header: &'static str,
    pub unit: &'static str,
    /// Position in console tables (AIPerf's `display_order`); `None` = files only.
    pub display_order: Option<u32>,
    /// Full statistics for per-request metrics; `None` for single-value metrics.
    pub stats: Option<Stats>,
    /// The value of single-value metrics (and the average of per-request ones).
    pub avg: f64,
}

/// Errors grouped as AIPerf's `error_summary`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorCount {
    pub error_details: ErrorDetails,
    pub count: u64,
}

/// One time slice of the profiling phase (`--slice-duration`) and its summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeslice {
    /// The slice's window in wall-clock nanoseconds since the Unix epoch (AIPerf's
    /// `start_ns` / `end_ns`): the last slice ends when the phase's last request did.
    pub start_ns: u64,
    pub end_ns: u64,
    /// `false` for a slice cut short by the end of the run (AIPerf's `is_complete`).
    pub is_complete: bool,
    /// The slice's requests summarized as the whole run's are, in display units.
    pub metrics: Vec<MetricResult>,
}

/// The file name of an export: AIPerf's `default`, or with `--profile-export-prefix P`
/// the profile exports renamed as AIPerf renames them (`P.json`, `P.csv`, `P.jsonl`,
/// `P_raw.jsonl`, `P_timeslices.json`, `P_timeslices.csv`, `P_console.txt`). A prefix
/// that already ends like one of those names loses that ending first (`run.json` names
/// `run.json`, `run.csv`, ...), as in AIPerf.
pub fn export_file_name(prefix: Option<&str>, default: &str) -> String {
    let renamed = match default {
        "profile_export_aiperf.json" => ".json",
        "profile_export_aiperf.csv" => ".csv",
        "profile_export.jsonl" => ".jsonl",
        "profile_export_raw.jsonl" => "_raw.jsonl",
        "profile_export_aiperf_timeslices.json" => "_timeslices.json",
        "profile_export_aiperf_timeslices.csv" => "_timeslices.csv",
        crate::export::CONSOLE_FILE => "_console.txt",
        _ => return default.to_owned(),
    };
    match prefix {
        Some(prefix) => format!("{}{renamed}", prefix_base(prefix)),
        None => default.to_owned(),
    }
}

/// Endings AIPerf strips from `--profile-export-prefix`, in the order it tries them (the
/// first that matches goes; server-metrics, network-latency and telemetry files are
/// AIPerf's, which a prefix naming one of them would also lose).
const PREFIX_ENDINGS: [&str; 14] = [
    "_server_metrics.parquet",
    "_server_metrics.jsonl",
    "_server_metrics.json",
    "_server_metrics.csv",
    "_network_latency.jsonl",
    "_gpu_telemetry.jsonl",
    "_timeslices.csv",
    "_timeslices.json",
    "_console.txt",
    "_raw.jsonl",
    ".parquet",
    ".csv",
    ".json",
    ".jsonl",
];

fn prefix_base(prefix: &str) -> &str {
    PREFIX_ENDINGS
        .iter()
        .find_map(|ending| prefix.strip_suffix(ending))
        .unwrap_or(prefix)
}

/// Everything exporters need about a finished run. `Default` is an empty run, for tests
/// and for packs' own exporters' tests to fill in.
#[derive(Debug, Clone, Default)]
pub struct RunResults {
    pub metrics: Vec<MetricResult>,
    pub error_summary: Vec<ErrorCount>,
    /// Title suffix of the console table, from the endpoint's metadata.
    pub metrics_title: String,
    pub artifact_dir: PathBuf,
    pub benchmark_id: String,
    /// Resolved configuration as AIPerf's `input_config`.
    pub input_config: serde_json::Value,
    /// The settings AIPerf has no key for (`aiperf_gen_config`, beside `input_config`).
    pub client_config: serde_json::Value,
    pub cli_command: String,
    pub random_seed: Option<u64>,
    /// Wall-clock start and end, ISO-8601 local time without zone, microseconds.
    pub start_time: String,
    pub end_time: String,
    pub was_cancelled: bool,
    /// Extra figures about the client itself (scheduling lateness, driver, ...).
    pub client_health: serde_json::Value,
    /// `--profile-export-prefix`: the profile exports' file name without its extension.
    pub export_prefix: Option<String>,
    /// The warmup phase's summary, when the run had one (AIPerf's `warmup_metrics`).
    pub warmup_metrics: Option<Vec<MetricResult>>,
    /// The profiling phase's time slices in order, the empty ones left out; none
    /// without `--slice-duration`.
    pub timeslices: Vec<Timeslice>,
}

impl RunResults {
    /// Where the export AIPerf names `default` goes (see [`export_file_name`]).
    pub fn export_path(&self, default: &str) -> PathBuf {
        self.artifact_dir
            .join(export_file_name(self.export_prefix.as_deref(), default))
    }

    pub fn metric(&self, tag: &str) -> Option<&MetricResult> {
        self.metrics.iter().find(|m| m.tag == tag)
    }

    /// GPU telemetry is on, as AIPerf's default: only `--no-gpu-telemetry` (written
    /// `{"enabled": false}` in `input_config`) turns it off. This client configures no
    /// telemetry endpoint, so its telemetry exports are AIPerf's when none answered.
    pub fn gpu_telemetry(&self) -> bool {
        self.input_config
            .pointer("/gpu_telemetry/enabled")
            .and_then(serde_json::Value::as_bool)
            != Some(false)
    }
}
