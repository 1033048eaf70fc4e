//! `profile_export_aiperf.csv`: AIPerf's summary, two metric sections and the (empty) GPU
//! telemetry one.
//!
//! Python's `csv.writer` ends rows with `\r\n`, and AIPerf writes its buffer verbatim, so
//! the file has CRLF line endings; we write the same bytes.

use crate::results::{MetricResult, RunResults};

pub(crate) const ROW_END: &str = "\r\n";
const STAT_HEADER: &str = "Metric,avg,min,max,sum,p1,p5,p10,p25,p50,p75,p90,p95,p99,std";
/// The header of AIPerf's GPU telemetry table (`Hostname`, `Namespace` and `Pod Name`
/// columns follow only for GPUs that report them).
const GPU_TELEMETRY_HEADER: &str = "Endpoint,GPU_Index,GPU_Name,GPU_UUID,Platform,Metric,avg,min,\
                                    max,sum,p1,p5,p10,p25,p50,p75,p90,p95,p99,std";

/// The run's `profile_export_aiperf.csv`: the metric sections ([`render_metrics`]), then
/// AIPerf's GPU telemetry section, two blank rows and its table's header. AIPerf writes
/// that section whenever GPU telemetry is on (its default; `--no-gpu-telemetry` leaves it
/// out), even when no DCGM endpoint answered; this client collects no telemetry, so the
/// table has no rows, exactly as AIPerf's when no GPU was reachable.
pub fn render(results: &RunResults) -> String {
    let mut out = render_metrics(results);
    if !results.gpu_telemetry() {
        return out;
    }
    out.push_str(ROW_END);
    out.push_str(ROW_END);
    out.push_str(GPU_TELEMETRY_HEADER);
    out.push_str(ROW_END);
    out
}

/// Section 1: metrics with percentiles; blank row; section 2: single-value metrics.
/// Both sorted by tag; numbers with two decimals; nothing for an empty run. A phase's
/// file under `phases/` is this alone: AIPerf exports phases without telemetry.
pub fn render_metrics(results: &RunResults) -> String {
    let mut with_stats: Vec<&MetricResult> = results
        .metrics
        .iter()
        .filter(|m| m.stats.is_some())
        .collect();
    let mut single: Vec<&MetricResult> = results
        .metrics
        .iter()
        .filter(|m| m.stats.is_none())
        .collect();
    with_stats.sort_by_key(|m| m.tag);
    single.sort_by_key(|m| m.tag);

    let mut out = String::new();
    if !with_stats.is_empty() {
        push_row(&mut out, STAT_HEADER.split(',').map(str::to_owned));
        for m in &with_stats {
            let Some(s) = &m.stats else { continue };
            let values = [
                s.avg, s.min, s.max, s.sum, s.p1, s.p5, s.p10, s.p25, s.p50, s.p75, s.p90, s.p95,
                s.p99, s.std,
            ];
            push_row(
                &mut out,
                std::iter::once(name(m)).chain(values.into_iter().map(number)),
            );
        }
        if !single.is_empty() {
            out.push_str(ROW_END);
        }
    }
    if !single.is_empty() {
        push_row(&mut out, ["Metric".to_owned(), "Value".to_owned()]);
        for m in &single {
            push_row(&mut out, [name(m), number(m.avg)]);
        }
    }
    out
}

/// `Header (unit)`, without the unit for plain counts.
fn name(m: &MetricResult) -> String {
    let unit = m.unit.to_ascii_lowercase();
    if m.unit.is_empty() || unit == "count" || unit == "requests" {
        m.header.to_owned()
    } else if m.header.is_empty() {
        format!("({})", m.unit)
    } else {
        format!("{} ({})", m.header, m.unit)
    }
}

/// `%.2f`; a value that is not a number is left empty, as a missing one is.
fn number(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}")
    } else {
        String::new()
    }
}

/// One row with Python's minimal quoting: fields holding a comma, a quote or a line
/// break are quoted, quotes doubled.
pub(crate) fn push_row(out: &mut String, fields: impl IntoIterator<Item = String>) {
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if field.contains([',', '"', '\r', '\n']) {
            out.push('"');
            out.push_str(&field.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&field);
        }
    }
    out.push_str(ROW_END);
}
