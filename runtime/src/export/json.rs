//! `profile_export_aiperf.json`: the run summary (AIPerf schema 1.4).

use super::jsonl::error_json;
use super::jsonw::Json;
use super::SCHEMA_VERSION;
use crate::results::{ErrorCount, MetricResult, RunResults};

/// The metric fields AIPerf's export model declares, in its order; other metrics follow
/// in the order of `RunResults::metrics`.
const DECLARED_ORDER: &[&str] = &[
    "request_throughput",
    "request_latency",
    "request_count",
    "time_to_first_token",
    "time_to_second_token",
    "inter_token_latency",
    "output_token_throughput",
    "output_token_throughput_per_user",
    "output_sequence_length",
    "input_sequence_length",
    "goodput",
    "good_request_count",
    "output_token_count",
    "reasoning_token_count",
    "min_request_timestamp",
    "max_response_timestamp",
    "inter_chunk_latency",
    "total_output_tokens",
    "total_reasoning_tokens",
    "benchmark_duration",
    "total_isl",
    "total_osl",
    "error_request_count",
    "error_isl",
    "total_error_isl",
];

/// The summary document, pretty-printed with two-space indentation and no trailing
/// newline, as AIPerf writes it.
pub fn render(results: &RunResults) -> String {
    document(results, results.gpu_telemetry())
}

/// A phase's summary under `phases/`: AIPerf writes no `telemetry_data` there.
pub fn render_phase(results: &RunResults) -> String {
    document(results, false)
}

fn document(results: &RunResults, telemetry: bool) -> String {
    let mut doc: Vec<(String, Json)> = vec![
        ("schema_version".into(), Json::str(SCHEMA_VERSION)),
        (
            "aiperf_version".into(),
            Json::str(env!("CARGO_PKG_VERSION")),
        ),
    ];
    if !results.benchmark_id.is_empty() {
        doc.push((
            "benchmark_id".into(),
            Json::str(results.benchmark_id.as_str()),
        ));
    }
    for (tag, metric) in metric_fields(&results.metrics) {
        // A pack's metric cannot replace the header keys.
        if !doc.iter().any(|(k, _)| *k == tag) {
            doc.push((tag, metric));
        }
    }
    // AIPerf's when GPU telemetry is on and no endpoint answered: this client configures
    // none. Its window is the run's.
    if telemetry {
        let time = |t: &str| match t.is_empty() {
            true => Json::Null,
            false => Json::str(t),
        };
        let summary = vec![
            ("endpoints_configured".into(), Json::Arr(Vec::new())),
            ("endpoints_successful".into(), Json::Arr(Vec::new())),
            ("start_time".into(), time(&results.start_time)),
            ("end_time".into(), time(&results.end_time)),
        ];
        doc.push((
            "telemetry_data".into(),
            Json::Obj(vec![
                ("summary".into(), Json::Obj(summary)),
                ("endpoints".into(), Json::Obj(Vec::new())),
                ("error_summary".into(), Json::Arr(Vec::new())),
            ]),
        ));
    }
    if !results.input_config.is_null() {
        doc.push((
            "input_config".into(),
            Json::from_value(&results.input_config),
        ));
    }
    if !results.client_config.is_null() {
        doc.push((
            crate::export::input_config::CLIENT_SETTINGS_KEY.into(),
            Json::from_value(&results.client_config),
        ));
    }
    let mut run_info = vec![(
        "benchmark_id".into(),
        Json::str(results.benchmark_id.as_str()),
    )];
    if let Some(seed) = results.random_seed {
        run_info.push(("random_seed".into(), Json::int(seed)));
    }
    run_info.push(("trial".into(), Json::int(0)));
    run_info.push((
        "cli_command".into(),
        Json::str(results.cli_command.as_str()),
    ));
    doc.push(("run_info".into(), Json::Obj(run_info)));
    doc.push(("was_cancelled".into(), Json::Bool(results.was_cancelled)));
    // Every record of a finished run is aggregated; only a cancelled run is partial.
    doc.push(("is_complete".into(), Json::Bool(!results.was_cancelled)));
    if results.was_cancelled {
        doc.push((
            "incomplete_reason".into(),
            Json::str(super::INCOMPLETE_REASON_CANCELLED),
        ));
    }
    doc.push((
        "error_summary".into(),
        error_summary_json(&results.error_summary),
    ));
    if !results.start_time.is_empty() {
        doc.push(("start_time".into(), Json::str(results.start_time.as_str())));
    }
    if !results.end_time.is_empty() {
        doc.push(("end_time".into(), Json::str(results.end_time.as_str())));
    }
    if let Some(warmup) = &results.warmup_metrics {
        doc.push(("warmup_metrics".into(), Json::Obj(metric_fields(warmup))));
    }
    // Ours, not AIPerf's: readers that ignore unknown keys are unaffected.
    if !results.client_health.is_null() {
        doc.push((
            "client_health".into(),
            Json::from_value(&results.client_health),
        ));
    }
    let mut out = String::new();
    Json::Obj(doc).write_pretty(&mut out, 0);
    out
}

/// `[{error_details{code?,type,message,cause?,cause_chain?}, count}]`, as AIPerf's
/// `error_summary`.
pub(crate) fn error_summary_json(errors: &[ErrorCount]) -> Json {
    let entries = errors.iter().map(|e| {
        Json::Obj(vec![
            ("error_details".into(), error_json(&e.error_details)),
            ("count".into(), Json::int(e.count)),
        ])
    });
    Json::Arr(entries.collect())
}

/// One field per metric tag (the first of a repeated tag), AIPerf's declared ones first.
fn metric_fields(metrics: &[MetricResult]) -> Vec<(String, Json)> {
    let mut sorted: Vec<&MetricResult> = metrics.iter().collect();
    // Stable: undeclared metrics keep their relative order.
    sorted.sort_by_key(|m| {
        DECLARED_ORDER
            .iter()
            .position(|t| *t == m.tag)
            .unwrap_or(DECLARED_ORDER.len())
    });
    let mut fields: Vec<(String, Json)> = Vec::with_capacity(sorted.len());
    for m in sorted {
        if !fields.iter().any(|(k, _)| k == m.tag) {
            fields.push((m.tag.to_owned(), metric_json(m)));
        }
    }
    fields
}

/// `{unit, avg, p1..p99, min, max, std, count, sum}` for per-request metrics,
/// `{unit, avg}` for single values.
pub(crate) fn metric_json(m: &MetricResult) -> Json {
    let mut fields = vec![("unit".to_owned(), Json::str(m.unit))];
    match &m.stats {
        Some(s) => {
            let values = [
                ("avg", s.avg),
                ("p1", s.p1),
                ("p5", s.p5),
                ("p10", s.p10),
                ("p25", s.p25),
                ("p50", s.p50),
                ("p75", s.p75),
                ("p90", s.p90),
                ("p95", s.p95),
                ("p99", s.p99),
                ("min", s.min),
                ("max", s.max),
                ("std", s.std),
            ];
            // Infinite fields (error-adjusted metrics: what lands on a failure) are left
            // out, as AIPerf leaves them out.
            fields.extend(
                values
                    .into_iter()
                    .filter(|(_, v)| v.is_finite())
                    .map(|(k, v)| (k.to_owned(), Json::float(v))),
            );
            // Time-weighted statistics are over no requests: AIPerf writes no count.
            if s.count > 0 {
                fields.push(("count".into(), Json::int(s.count)));
            }
            if s.sum.is_finite() {
                fields.push(("sum".into(), Json::float(s.sum)));
            }
        }
        None => fields.push(("avg".into(), Json::float(m.avg))),
    }
    Json::Obj(fields)
}
