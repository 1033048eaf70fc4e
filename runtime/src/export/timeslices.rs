//! `profile_export_aiperf_timeslices.json` and `.csv`: the profiling phase summarized
//! per time slice (`--slice-duration`), in AIPerf 0.13's layouts.
//!
//! The JSON lists the slices in time order, each with its window (`start_ns`, `end_ns`,
//! wall-clock nanoseconds; `is_complete: false` on a slice cut short by the run's end)
//! and one object per metric, shaped as in `profile_export_aiperf.json`; then the
//! run's `input_config`. The position of a slice in the list is its index. The CSV is
//! "tidy": one row per slice, metric and statistic.

use std::io::Write;

use super::csv::push_row;
use super::json::metric_json;
use super::jsonw::Json;
use crate::results::{MetricResult, RunResults, Timeslice};

const CSV_HEADER: [&str; 7] = [
    "Timeslice",
    "Start_NS",
    "End_NS",
    "Metric",
    "Unit",
    "Stat",
    "Value",
];

/// The JSON document, pretty-printed with two-space indentation and no trailing newline,
/// as the summary is.
pub fn render_json(results: &RunResults) -> String {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail, and the pieces are `String`s: the bytes are UTF-8.
    let _ = write_json(results, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// [`render_json`] written slice by slice: a tree of every slice's statistics took
/// several times the memory of the text it becomes, and the text itself runs to hundreds
/// of megabytes at the slice cap.
pub fn write_json<W: Write>(results: &RunResults, out: &mut W) -> std::io::Result<()> {
    // What `Json::Obj([("timeslices", Json::Arr(slices)), ("input_config", ..)])
    // .write_pretty(out, 0)` writes, without holding all the slices at once.
    out.write_all(b"{\n  \"timeslices\": ")?;
    if results.timeslices.is_empty() {
        out.write_all(b"[]")?;
    } else {
        out.write_all(b"[")?;
        let mut piece = String::new();
        for (i, slice) in results.timeslices.iter().enumerate() {
            piece.clear();
            piece.push_str(if i > 0 { ",\n    " } else { "\n    " });
            slice_json(slice).write_pretty(&mut piece, 2);
            out.write_all(piece.as_bytes())?;
        }
        out.write_all(b"\n  ]")?;
    }
    if !results.input_config.is_null() {
        let mut piece = String::from(",\n  \"input_config\": ");
        Json::from_value(&results.input_config).write_pretty(&mut piece, 1);
        out.write_all(piece.as_bytes())?;
    }
    out.write_all(b"\n}")
}

fn slice_json(slice: &Timeslice) -> Json {
    let mut fields = vec![
        ("start_ns".to_owned(), Json::int(slice.start_ns)),
        ("end_ns".to_owned(), Json::int(slice.end_ns)),
    ];
    // AIPerf writes the flag only on a partial slice.
    if !slice.is_complete {
        fields.push(("is_complete".into(), Json::Bool(false)));
    }
    for m in &slice.metrics {
        // The first of a repeated tag; a pack's metric cannot replace the window.
        if !fields.iter().any(|(k, _)| k == m.tag) {
            fields.push((m.tag.to_owned(), metric_json(m)));
        }
    }
    Json::Obj(fields)
}

/// `Timeslice,Start_NS,End_NS,Metric,Unit,Stat,Value`: for each slice (numbered from 0
/// in time order), its metrics sorted by tag, and for each metric the statistics it has
/// in AIPerf's order (`avg` alone for single-value metrics), values with two decimals.
/// CRLF line endings, as Python's `csv` module writes them.
pub fn render_csv(results: &RunResults) -> String {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail, and the rows are `String`s: the bytes are UTF-8.
    let _ = write_csv(results, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// [`render_csv`] written slice by slice (it reaches 190 MB at the slice cap).
pub fn write_csv<W: Write>(results: &RunResults, out: &mut W) -> std::io::Result<()> {
    let mut rows = String::new();
    push_row(&mut rows, CSV_HEADER.map(str::to_owned));
    out.write_all(rows.as_bytes())?;
    for (index, slice) in results.timeslices.iter().enumerate() {
        rows.clear();
        let mut metrics: Vec<&MetricResult> = Vec::with_capacity(slice.metrics.len());
        for m in &slice.metrics {
            if !metrics.iter().any(|k| k.tag == m.tag) {
                metrics.push(m);
            }
        }
        metrics.sort_by_key(|m| m.tag);
        let (index, start, end) = (
            index.to_string(),
            slice.start_ns.to_string(),
            slice.end_ns.to_string(),
        );
        for m in metrics {
            let name = if m.header.is_empty() { m.tag } else { m.header };
            for (stat, value) in stat_values(m) {
                // A value that is not a number is missing, and a missing one has no row
                // (the error-adjusted metrics' statistics that land on a failure).
                if !value.is_finite() {
                    continue;
                }
                push_row(
                    &mut rows,
                    [
                        index.clone(),
                        start.clone(),
                        end.clone(),
                        name.to_owned(),
                        m.unit.to_owned(),
                        stat.to_owned(),
                        format!("{value:.2}"),
                    ],
                );
            }
        }
        out.write_all(rows.as_bytes())?;
    }
    Ok(())
}

/// A metric's statistics in AIPerf's column order (`avg, min, max, sum, p1 ... p99,
/// std`); a single-value metric has its value as `avg` only.
fn stat_values(m: &MetricResult) -> Vec<(&'static str, f64)> {
    match &m.stats {
        Some(s) => vec![
            ("avg", s.avg),
            ("min", s.min),
            ("max", s.max),
            ("sum", s.sum),
            ("p1", s.p1),
            ("p5", s.p5),
            ("p10", s.p10),
            ("p25", s.p25),
            ("p50", s.p50),
            ("p75", s.p75),
            ("p90", s.p90),
            ("p95", s.p95),
            ("p99", s.p99),
            ("std", s.std),
        ],
        None => vec![("avg", m.avg)],
    }
}
