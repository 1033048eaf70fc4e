//! The metric processors: per-request metrics, then their run-level summary.

use aiperf_runtime::metrics::{
    compute_record_metrics_with_goodput, Goodput, MetricsAccumulator, RecordMetricsOptions,
};
use aiperf_runtime::plugin::{Plugin, PluginContext, PluginError};
use aiperf_runtime::protocols::{RecordProcessorProtocol, ResultsProcessorProtocol};
use aiperf_runtime::record::{Nanos, ParsedRecord};
use aiperf_runtime::results::{MetricRecord, MetricResult};

/// Computes AIPerf's per-request metrics (TTFT, ITL, latency, token counts, usage, ...)
/// plus the client's own figures (`time_to_first_byte`, `scheduling_lateness`).
///
/// Streaming comes from `--streaming`; whether the endpoint produces or tokenizes
/// tokens is read from each record (its `produces_tokens`, and the counts the pipeline
/// made).
#[derive(Debug, Clone)]
pub struct MetricRecordProcessor {
    options: RecordMetricsOptions,
    /// `--use-server-token-count`: the counts are the server's, so comparing them with
    /// the server's usage says nothing (AIPerf drops its USAGE_DIFF_ONLY metrics).
    drop_usage_diffs: bool,
    /// `--goodput`: each valid record gets its `good_request_count` verdict.
    goodput: Option<Goodput>,
}

/// Metrics that compare the server's usage with the client's counts.
const USAGE_DIFF_TAGS: &[&str] = &[
    "usage_prompt_tokens_diff_pct",
    "usage_completion_tokens_diff_pct",
    "usage_reasoning_tokens_diff_pct",
];

impl MetricRecordProcessor {
    pub fn new(options: RecordMetricsOptions) -> Self {
        MetricRecordProcessor {
            options,
            drop_usage_diffs: false,
            goodput: None,
        }
    }

    pub fn options(&self) -> RecordMetricsOptions {
        self.options
    }
}

impl Plugin for MetricRecordProcessor {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        let mut processor = Self::new(RecordMetricsOptions::new(ctx.config.streaming));
        processor.drop_usage_diffs = ctx.config.use_server_token_count;
        // The run checked the SLOs against the endpoint before it started.
        processor.goodput =
            Goodput::from_config(ctx.config, &processor.options).map_err(PluginError::Config)?;
        Ok(processor)
    }
}

impl RecordProcessorProtocol for MetricRecordProcessor {
    fn process_record(&mut self, record: &ParsedRecord, out: &mut MetricRecord) {
        let first_new = out.entries.len();
        compute_record_metrics_with_goodput(record, &self.options, self.goodput.as_ref(), out);
        if self.drop_usage_diffs {
            let mut i = first_new;
            while i < out.entries.len() {
                if USAGE_DIFF_TAGS.contains(&out.entries[i].tag) {
                    out.entries.remove(i);
                } else {
                    i += 1;
                }
            }
        }
    }
}

/// Summarizes every per-request metric it is fed (statistics in display units) and
/// adds the run-level ones: counts, benchmark duration, throughputs and totals.
#[derive(Debug, Clone, Default)]
pub struct MetricResultsProcessor {
    accumulator: MetricsAccumulator,
}

impl MetricResultsProcessor {
    pub fn new() -> Self {
        Self::default()
    }

    /// The run so far, e.g. for its error summary.
    pub fn accumulator(&self) -> &MetricsAccumulator {
        &self.accumulator
    }
}

impl Plugin for MetricResultsProcessor {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(MetricResultsProcessor {
            accumulator: MetricsAccumulator::new().with_goodput(ctx.config.goodput.is_some()),
        })
    }
}

impl ResultsProcessorProtocol for MetricResultsProcessor {
    fn process_result(&mut self, record: &ParsedRecord, metrics: &MetricRecord) {
        self.accumulator.add(record, metrics);
    }

    fn summarize(&mut self, window: Option<(Nanos, Nanos)>, out: &mut Vec<MetricResult>) {
        out.extend(self.accumulator.summarize(window));
    }
}

#[cfg(test)]
mod tests {
    use aiperf_runtime::record::{
        Outcome, ParsedRecord, ParsedResponse, Phase, RequestRecord, ResponseData,
    };

    use super::*;
    use crate::test_config::{config, context, EMPTY_ENTRY};

    fn chat_record(start: u64) -> ParsedRecord {
        let ms = 1_000_000;
        let text = |at: u64| ParsedResponse {
            recv_ns: start + at * ms,
            data: ResponseData::Text("tok".into()),
            usage: None,
        };
        ParsedRecord {
            raw: RequestRecord {
                start_ns: start,
                intended_ns: start,
                end_ns: start + 40 * ms,
                phase: Some(Phase::Profiling),
                ..Default::default()
            },
            responses: vec![text(10), text(20), text(30)],
            outcome: Outcome::Success,
            error: None,
            produces_tokens: true,
            input_tokens: Some(8),
            output_tokens: Some(3),
            reasoning_tokens: None,
            usage: None,
        }
    }

    #[test]
    fn streaming_flag_enables_stream_metrics() {
        let streaming = config(&["-m", "m", "--streaming"]);
        let plain = config(&["-m", "m"]);
        let record = chat_record(0);

        let mut out = MetricRecord::default();
        MetricRecordProcessor::create(&context(&streaming, &EMPTY_ENTRY))
            .unwrap()
            .process_record(&record, &mut out);
        assert_eq!(out.scalar("time_to_first_token"), Some(10.0));
        assert_eq!(out.scalar("inter_token_latency"), Some(10.0));

        out.clear();
        MetricRecordProcessor::create(&context(&plain, &EMPTY_ENTRY))
            .unwrap()
            .process_record(&record, &mut out);
        assert_eq!(out.scalar("time_to_first_token"), None);
        assert_eq!(out.scalar("request_latency"), Some(30.0));
    }

    #[test]
    fn server_token_counts_drop_the_usage_comparisons() {
        let mut record = chat_record(0);
        record.usage = Some(aiperf_runtime::record::Usage {
            prompt_tokens: Some(8),
            completion_tokens: Some(3),
            ..Default::default()
        });
        let mut out = MetricRecord::default();
        let plain = config(&["-m", "m"]);
        MetricRecordProcessor::create(&context(&plain, &EMPTY_ENTRY))
            .unwrap()
            .process_record(&record, &mut out);
        assert_eq!(out.scalar("usage_completion_tokens_diff_pct"), Some(0.0));
        out.clear();
        let server = config(&["-m", "m", "--use-server-token-count"]);
        MetricRecordProcessor::create(&context(&server, &EMPTY_ENTRY))
            .unwrap()
            .process_record(&record, &mut out);
        assert_eq!(out.scalar("usage_completion_tokens"), Some(3.0));
        assert_eq!(out.scalar("usage_completion_tokens_diff_pct"), None);
        assert_eq!(out.scalar("usage_prompt_tokens_diff_pct"), None);
    }

    #[test]
    fn results_processor_summarizes_what_it_is_fed() {
        let cfg = config(&["-m", "m", "--streaming"]);
        let mut records = MetricRecordProcessor::create(&context(&cfg, &EMPTY_ENTRY)).unwrap();
        let mut results = MetricResultsProcessor::create(&context(&cfg, &EMPTY_ENTRY)).unwrap();
        for start in [0, 5_000_000] {
            let record = chat_record(start);
            let mut metrics = MetricRecord::default();
            records.process_record(&record, &mut metrics);
            results.process_result(&record, &metrics);
        }
        let mut summary = Vec::new();
        // The phase's window is wider than its requests' extent (0 to 45 ms): rates are per
        // second of the window, the benchmark duration is still the requests' own.
        results.summarize(Some((0, 50_000_000)), &mut summary);
        let get = |tag: &str| summary.iter().find(|m| m.tag == tag).map(|m| m.avg);
        assert_eq!(get("request_count"), Some(2.0));
        // First start 0, last content at 5 + 30 ms.
        assert_eq!(get("benchmark_duration"), Some(0.035));
        assert_eq!(get("request_throughput"), Some(40.0));
        assert_eq!(get("time_to_first_token"), Some(10.0));
        assert_eq!(get("total_osl"), Some(6.0));
        assert_eq!(results.accumulator().error_count(), 0);
    }
}
