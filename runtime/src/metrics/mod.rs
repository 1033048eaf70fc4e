//! Metrics as AIPerf defines them: the catalogue of tags, per-request computation,
//! run-level aggregation and summary statistics.
//!
//! Values are kept in display units throughout (ms for times, tokens, requests/sec), so
//! what a record processor emits is what `profile_export.jsonl` contains and what the
//! accumulator summarizes.

mod accumulator;
mod cache_hint;
pub mod catalogue;
mod compute;
mod stats;
mod sweep;
mod timeslice;

pub use accumulator::{ErrorTally, MetricsAccumulator};
pub use cache_hint::{
    usage_without_cache_in_record, usage_without_cache_in_results, CACHE_REPORTING_HINT,
};
pub use catalogue::{lookup, ConsoleGroup, MetricDef, MetricFlags, MetricKind, CATALOGUE};
pub use compute::{
    compute_record_metrics, compute_record_metrics_with_goodput, merged_usage, record_error,
    scheduling_lateness_ms, Goodput, RecordMetricsOptions, Slo,
};
pub use stats::stats;
pub use sweep::{sweep_metrics, SweepColumns, SweepStats, SWEEP_TAGS};
pub use timeslice::{Timeslicer, MAX_TIMESLICES};

#[cfg(test)]
mod tests;
