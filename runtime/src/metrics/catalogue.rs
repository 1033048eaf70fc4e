//! The metrics this runtime computes, described as AIPerf describes them: tag, header,
//! display unit, console position and flags. Exporters look tags up here to decide where
//! a metric is shown and how its values are written.

use std::collections::HashMap;
use std::ops::BitOr;
use std::sync::OnceLock;

/// AIPerf's metric flags, as a bitset. Only the flags that change what this runtime
/// computes or shows are modelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MetricFlags(u32);

impl MetricFlags {
    pub const NONE: Self = Self(0);
    /// Only computed when responses are streamed.
    pub const STREAMING_ONLY: Self = Self(1);
    /// Only computed for failed requests; never shown on the console.
    pub const ERROR_ONLY: Self = Self(1 << 1);
    /// Only computed when the endpoint produces tokens.
    pub const PRODUCES_TOKENS_ONLY: Self = Self(1 << 2);
    pub const LARGER_IS_BETTER: Self = Self(1 << 3);
    /// Computed but never exported.
    pub const INTERNAL: Self = Self(1 << 4);
    /// Only meaningful when the model reasons.
    pub const SUPPORTS_REASONING: Self = Self(1 << 5);
    /// A run-level value only; never in `profile_export.jsonl`.
    pub const NO_INDIVIDUAL_RECORDS: Self = Self(1 << 6);
    /// Only computed when the endpoint tokenizes its input.
    pub const TOKENIZES_INPUT_ONLY: Self = Self(1 << 7);
    /// Compares server usage with client token counts.
    pub const USAGE_DIFF_ONLY: Self = Self(1 << 8);
    /// AIPerf also reports an error-adjusted distribution for it.
    pub const PERCENTILE_INCLUDES_FAILED_REQUESTS: Self = Self(1 << 9);
    /// Not an AIPerf metric: a figure about the benchmark client itself. Files only.
    pub const CLIENT_HEALTH: Self = Self(1 << 10);
    /// Only computed when `--goodput` sets SLOs.
    pub const GOODPUT: Self = Self(1 << 11);
    /// Only computed when the endpoint sends images (its `supports_images`).
    pub const SUPPORTS_IMAGE_ONLY: Self = Self(1 << 12);
    /// Only computed when the endpoint sends audio (its `supports_audio`).
    pub const SUPPORTS_AUDIO_ONLY: Self = Self(1 << 13);
    /// Only computed when the endpoint produces videos (its `produces_videos`).
    pub const PRODUCES_VIDEO_ONLY: Self = Self(1 << 14);
    pub const STREAMING_TOKENS_ONLY: Self =
        Self(Self::STREAMING_ONLY.0 | Self::PRODUCES_TOKENS_ONLY.0);

    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any flag of `other` is set.
    pub const fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }
}

impl BitOr for MetricFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        self.union(rhs)
    }
}

/// Which console table shows a metric. Tables are printed in [`ConsoleGroup::TABLE_ORDER`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsoleGroup {
    /// Files only.
    None,
    Effective,
    Active,
    Usage,
    Cache,
    Prediction,
    Audio,
    Reasoning,
    Default,
}

impl ConsoleGroup {
    /// AIPerf prints one table per non-empty group, in this order.
    pub const TABLE_ORDER: [ConsoleGroup; 8] = [
        ConsoleGroup::Effective,
        ConsoleGroup::Active,
        ConsoleGroup::Usage,
        ConsoleGroup::Cache,
        ConsoleGroup::Prediction,
        ConsoleGroup::Audio,
        ConsoleGroup::Reasoning,
        ConsoleGroup::Default,
    ];

    /// The suffix of the table title (`LLM Metrics: Usage`); `None` for the default table.
    pub fn title_suffix(self) -> Option<&'static str> {
        match self {
            ConsoleGroup::None | ConsoleGroup::Default => None,
            ConsoleGroup::Effective => Some("Effective"),
            ConsoleGroup::Active => Some("Active"),
            ConsoleGroup::Usage => Some("Usage"),
            ConsoleGroup::Cache => Some("Cache"),
            ConsoleGroup::Prediction => Some("Prediction"),
            ConsoleGroup::Audio => Some("Audio"),
            ConsoleGroup::Reasoning => Some("Reasoning"),
        }
    }
}

/// How a metric's run-level value comes about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// One value (or list of values) per request; summarized with full statistics.
    Record,
    /// A counter or extreme over the requests; one value.
    Aggregate,
    /// Computed from other run-level values; one value.
    Derived,
}

/// One metric as AIPerf declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricDef {
    pub tag: &'static str,
    pub header: &'static str,
    /// Display unit (values are stored and exported in this unit).
    pub unit: &'static str,
    /// Position in console tables, when the metric has one.
    pub display_order: Option<u32>,
    pub kind: MetricKind,
    pub flags: MetricFlags,
    pub group: ConsoleGroup,
    /// Integer-valued (token and request counts): per-request values are written as
    /// JSON integers, as AIPerf writes them.
    pub integer: bool,
}

impl MetricDef {
    /// Whether the console shows this metric at all.
    pub fn console_visible(&self) -> bool {
        self.group != ConsoleGroup::None
            && !self.flags.intersects(
                MetricFlags::ERROR_ONLY | MetricFlags::INTERNAL | MetricFlags::CLIENT_HEALTH,
            )
    }

    /// The console position, `None` when the metric is files only.
    pub fn console_order(&self) -> Option<u32> {
        if self.console_visible() {
            Some(self.display_order.unwrap_or(u32::MAX))
        } else {
            None
        }
    }
}

use ConsoleGroup as G;
use MetricFlags as F;
use MetricKind as K;

const S: MetricFlags = F::STREAMING_ONLY;
const T: MetricFlags = F::PRODUCES_TOKENS_ONLY;
const I: MetricFlags = F::TOKENIZES_INPUT_ONLY;
const L: MetricFlags = F::LARGER_IS_BETTER;
const R: MetricFlags = F::SUPPORTS_REASONING;
const N: MetricFlags = F::NO_INDIVIDUAL_RECORDS;
const U: MetricFlags = F::USAGE_DIFF_ONLY;
const E: MetricFlags = F::ERROR_ONLY;
const PF: MetricFlags = F::PERCENTILE_INCLUDES_FAILED_REQUESTS;
const CH: MetricFlags = F::CLIENT_HEALTH;
const GP: MetricFlags = F::GOODPUT;
const IMG: MetricFlags = F::SUPPORTS_IMAGE_ONLY;
const AUD: MetricFlags = F::SUPPORTS_AUDIO_ONLY;
const VID: MetricFlags = F::PRODUCES_VIDEO_ONLY;

#[allow(clippy::too_many_arguments)]
const fn def(
    tag: &'static str,
    header: &'static str,
    unit: &'static str,
    display_order: Option<u32>,
    kind: MetricKind,
    flags: MetricFlags,
    group: ConsoleGroup,
    integer: bool,
) -> MetricDef {
    MetricDef {
        tag,
        header,
        unit,
        display_order,
        kind,
        flags,
        group,
        integer,
    }
}

/// Every metric this runtime produces, in the order run-level results are listed.
#[rustfmt::skip]
pub static CATALOGUE: &[MetricDef] = &[
    // Per-request metrics of the default table (AIPerf 0.13, §5.2 of the reference).
    def("time_to_first_token", "Time to First Token", "ms", Some(100), K::Record,
        S.union(T).union(PF), G::Default, false),
    def("time_to_second_token", "Time to Second Token", "ms", Some(200), K::Record,
        S.union(T), G::Default, false),
    def("time_to_first_output_token", "Time to First Output Token", "ms", Some(210),
        K::Record, S.union(T).union(R), G::Default, false),
    def("request_latency", "Request Latency", "ms", Some(300), K::Record, PF, G::Default,
        false),
    def("video_inference_time", "Video Inference Time", "ms", Some(310), K::Record, VID,
        G::Default, false),
    def("video_peak_memory", "Video Peak Memory", "MB", Some(311), K::Record, VID,
        G::Default, false),
    def("decode_duration", "Decode Duration", "ms", Some(350), K::Record,
        S.union(T).union(PF), G::Default, false),
    def("inter_token_latency", "Inter Token Latency", "ms", Some(400), K::Record,
        S.union(T).union(PF), G::Default, false),
    def("output_token_throughput_per_user", "Output Token Throughput Per User",
        "tokens/sec/user", Some(500), K::Record, S.union(T).union(L), G::Default, false),
    def("e2e_output_token_throughput", "E2E Output Token Throughput", "tokens/sec/user",
        Some(510), K::Record, T.union(L), G::Default, false),
    def("output_sequence_length", "Output Sequence Length", "tokens", Some(600), K::Record,
        T.union(L), G::Default, true),
    def("input_sequence_length", "Input Sequence Length", "tokens", Some(700), K::Record,
        I.union(L), G::Default, true),
    // AIPerf's error-adjusted latencies (successes plus one +inf per failure), summaries
    // only, last in the default table when requests failed.
    def("adj_time_to_first_token", "Time to First Token (error-adjusted)", "ms",
        Some(10_100), K::Aggregate, N, G::Default, false),
    def("adj_request_latency", "Request Latency (error-adjusted)", "ms", Some(10_300),
        K::Aggregate, N, G::Default, false),
    def("adj_decode_duration", "Decode Duration (error-adjusted)", "ms", Some(10_350),
        K::Aggregate, N, G::Default, false),
    def("adj_inter_token_latency", "Inter Token Latency (error-adjusted)", "ms",
        Some(10_400), K::Aggregate, N, G::Default, false),
    // Run-level metrics of the default table.
    def("rtfx", "Inverse Real-Time Factor (RTFx)", "ratio", Some(850), K::Record,
        L.union(AUD), G::Default, false),
    def("image_throughput", "Image Throughput", "images/sec", Some(860), K::Record, IMG,
        G::Default, false),
    def("image_latency", "Image Latency", "ms/image", Some(861), K::Record, IMG, G::Default,
        false),
    def("num_images", "Number of Images", "images", None, K::Record, IMG, G::None, true),
    def("audio_duration", "Audio Duration", "sec", Some(870), K::Record, AUD, G::None,
        false),
    def("output_token_throughput", "Output Token Throughput", "tokens/sec", Some(800),
        K::Derived, T.union(L), G::Default, false),
    def("input_token_throughput", "Input Token Throughput", "tokens/sec", Some(805),
        K::Derived, L, G::Default, false),
    def("request_throughput", "Request Throughput", "requests/sec", Some(900), K::Derived, L,
        G::Default, false),
    // `--goodput` only: requests meeting every SLO (AIPerf's headers and flags).
    def("goodput", "Goodput", "requests/sec", Some(1000), K::Derived, GP, G::Default, false),
    def("good_request_count", "Good Request Count", "requests", None, K::Aggregate, GP,
        G::None, true),
    def("good_request_fraction", "GoodRequestFraction", "ratio", None, K::Derived,
        GP.union(L), G::None, false),
    def("completed_request_count", "Completed Requests (Success + Error)", "requests",
        Some(1075), K::Derived, N, G::Default, true),
    def("request_error_rate", "Request Error Rate", "%", Some(1080), K::Derived, N,
        G::Default, false),
    def("request_count", "Request Count", "requests", Some(1100), K::Aggregate, L.union(N),
        G::Default, true),
    // Server-reported usage (the Usage table).
    def("usage_prompt_tokens", "Usage Prompt Tokens", "tokens", Some(1000), K::Record,
        I.union(L), G::Usage, true),
    def("usage_completion_tokens", "Usage Completion Tokens", "tokens", Some(1100),
        K::Record, T.union(L), G::Usage, true),
    def("usage_reasoning_tokens", "Usage Reasoning Tokens", "tokens", Some(1110), K::Record,
        T.union(L).union(R), G::Usage, true),
    def("usage_total_tokens", "Usage Total Tokens", "tokens", Some(1200), K::Record,
        T.union(L), G::Usage, true),
    // The server's prompt cache, when its usage reports one (AIPerf's usage_cache_metrics).
    def("usage_prompt_cache_read_tokens", "Usage Prompt Cache Read Tokens", "tokens",
        Some(1010), K::Record, L, G::Usage, true),
    def("usage_prompt_cache_write_tokens", "Usage Prompt Cache Write Tokens", "tokens",
        Some(1015), K::Record, F::NONE, G::Usage, true),
    def("usage_prompt_cache_miss_tokens", "Usage Prompt Cache Miss Tokens", "tokens",
        Some(1017), K::Record, F::NONE, G::Usage, true),
    def("usage_prompt_audio_tokens", "Usage Prompt Audio Tokens", "tokens", Some(1020),
        K::Record, L.union(AUD), G::Usage, true),
    def("usage_tool_use_prompt_tokens", "Usage Tool Use Prompt Tokens", "tokens",
        Some(1030), K::Record, F::NONE, G::Usage, true),
    def("usage_prompt_audio_seconds", "Usage Prompt Audio Seconds", "sec", Some(1040),
        K::Record, L.union(AUD), G::Usage, false),
    def("usage_completion_audio_tokens", "Usage Completion Audio Tokens", "tokens",
        Some(1120), K::Record, T.union(L).union(AUD), G::Usage, true),
    def("usage_accepted_prediction_tokens", "Usage Accepted Prediction Tokens", "tokens",
        Some(1130), K::Record, T.union(L), G::Usage, true),
    def("usage_rejected_prediction_tokens", "Usage Rejected Prediction Tokens", "tokens",
        Some(1140), K::Record, T, G::Usage, true),
    def("total_usage_prompt_tokens", "Total Usage Prompt Tokens", "tokens", Some(2000),
        K::Derived, I.union(L), G::Usage, true),
    def("total_usage_completion_tokens", "Total Usage Completion Tokens", "tokens",
        Some(2100), K::Derived, T.union(L), G::Usage, true),
    def("total_usage_reasoning_tokens", "Total Usage Reasoning Tokens", "tokens", Some(2110),
        K::Derived, T.union(L).union(R), G::Usage, true),
    def("total_usage_total_tokens", "Total Usage Total Tokens", "tokens", Some(2200),
        K::Derived, T.union(L), G::Usage, true),
    def("total_usage_prompt_cache_read_tokens", "Total Usage Prompt Cache Read Tokens",
        "tokens", Some(2010), K::Derived, L, G::Usage, true),
    def("total_usage_prompt_cache_write_tokens", "Total Usage Prompt Cache Write Tokens",
        "tokens", Some(2015), K::Derived, F::NONE, G::Usage, true),
    def("total_usage_prompt_cache_miss_tokens", "Total Usage Prompt Cache Miss Tokens",
        "tokens", Some(2017), K::Derived, F::NONE, G::Usage, true),
    // Cache reads over prompt tokens, summed over the run (token-weighted, not an average
    // of per-request shares).
    def("total_usage_prompt_audio_tokens", "Total Usage Prompt Audio Tokens", "tokens",
        Some(2020), K::Derived, L.union(AUD), G::Usage, true),
    def("total_usage_tool_use_prompt_tokens", "Total Usage Tool Use Prompt Tokens", "tokens",
        Some(2030), K::Derived, F::NONE, G::Usage, true),
    def("total_usage_prompt_audio_seconds", "Total Usage Prompt Audio Seconds", "sec",
        Some(2040), K::Derived, L.union(AUD), G::Usage, false),
    def("total_usage_completion_audio_tokens", "Total Usage Completion Audio Tokens",
        "tokens", Some(2120), K::Derived, T.union(L).union(AUD), G::Usage, true),
    def("total_usage_accepted_prediction_tokens", "Total Usage Accepted Prediction Tokens",
        "tokens", Some(2130), K::Derived, T.union(L), G::Usage, true),
    def("total_usage_rejected_prediction_tokens", "Total Usage Rejected Prediction Tokens",
        "tokens", Some(2140), K::Derived, T, G::Usage, true),
    def("overall_usage_prompt_cache_read_pct", "Overall Usage Prompt Cache Read %", "%",
        Some(2012), K::Derived, L, G::Usage, false),
    // Files only.
    def("output_token_count", "Output Token Count", "tokens", None, K::Record, T.union(L),
        G::None, true),
    def("reasoning_token_count", "Reasoning Token Count", "tokens", None, K::Record,
        T.union(L).union(R), G::None, true),
    def("inter_chunk_latency", "Inter Chunk Latency", "ms", None, K::Record, S.union(T),
        G::None, false),
    def("prefill_throughput_per_user", "Prefill Throughput Per User", "tokens/sec/user",
        None, K::Record, S.union(T).union(I).union(L), G::None, false),
    def("usage_prompt_tokens_diff_pct", "Usage Prompt Diff %", "%", None, K::Record,
        I.union(U), G::None, false),
    def("usage_completion_tokens_diff_pct", "Usage Completion Diff %", "%", None, K::Record,
        T.union(U), G::None, false),
    def("usage_reasoning_tokens_diff_pct", "Usage Reasoning Diff %", "%", None, K::Record,
        T.union(R).union(U), G::None, false),
    def("osl_mismatch_diff_pct", "OSL Mismatch Diff %", "%", None, K::Record, T, G::None,
        false),
    def("error_isl", "Error Input Sequence Length", "tokens", None, K::Record,
        I.union(L).union(E), G::None, true),
    // AIPerf's sweep-line metrics (time-weighted over the phase, not per request), in the
    // order AIPerf adds them: its console lists them so, in tables of their own.
    def("effective_concurrency", "Effective Concurrency", "requests", Some(1), K::Derived,
        N, G::Effective, false),
    def("effective_decode_throughput", "Effective Decode Throughput", "tokens/sec",
        Some(2), K::Derived, N, G::Effective, false),
    def("effective_prefill_throughput", "Effective Prefill Throughput", "tokens/sec",
        Some(3), K::Derived, N, G::Effective, false),
    def("effective_decode_concurrency", "Effective Decode Concurrency", "requests",
        Some(4), K::Derived, N, G::Effective, false),
    def("effective_prefill_concurrency", "Effective Prefill Concurrency", "requests",
        Some(5), K::Derived, N, G::Effective, false),
    def("effective_total_throughput", "Effective Total Throughput", "tokens/sec", Some(6),
        K::Derived, N, G::Effective, false),
    def("effective_decode_throughput_per_user", "Effective Decode Throughput Per User",
        "tokens/sec/user", Some(7), K::Derived, N, G::Effective, false),
    def("effective_prefill_throughput_per_user", "Effective Prefill Throughput Per User",
        "tokens/sec/user", Some(8), K::Derived, N, G::Effective, false),
    def("tokens_in_flight", "Tokens In Flight", "tokens", Some(9), K::Derived, N,
        G::Effective, false),
    def("active_decode_throughput", "Active Decode Throughput", "tokens/sec", Some(1),
        K::Derived, N, G::Active, false),
    def("active_prefill_throughput", "Active Prefill Throughput", "tokens/sec", Some(2),
        K::Derived, N, G::Active, false),
    def("active_decode_throughput_per_user", "Active Decode Throughput Per User",
        "tokens/sec/user", Some(3), K::Derived, N, G::Active, false),
    def("active_prefill_throughput_per_user", "Active Prefill Throughput Per User",
        "tokens/sec/user", Some(4), K::Derived, N, G::Active, false),
    def("active_total_throughput", "Active Total Throughput", "tokens/sec", Some(5),
        K::Derived, N, G::Active, false),
    // Measured from the intended send time, so queueing behind the schedule counts
    // (coordinated omission, BC-25); shown beside the service-time latencies.
    def("effective_time_to_first_token", "Time to First Token from Intended Start", "ms",
        Some(1210), K::Record, S.union(T), G::Default, false),
    // AIPerf's CO-aware latency: its console group is EFFECTIVE and it has no display
    // order (AIPerf sorts it last), so it closes the Effective table, after the sweeps.
    def("effective_latency", "Effective Latency (CO-aware)", "ms", Some(10), K::Record,
        F::NONE, G::Effective, false),
    def("benchmark_duration", "Benchmark Duration", "sec", None, K::Derived, F::NONE,
        G::None, false),
    def("total_isl", "Total Input Sequence Length", "tokens", None, K::Derived, I.union(L),
        G::None, true),
    def("total_osl", "Total Output Sequence Length", "tokens", None, K::Derived, T.union(L),
        G::None, true),
    def("total_output_tokens", "Total Output Tokens", "tokens", None, K::Derived, T.union(L),
        G::None, true),
    def("total_reasoning_tokens", "Total Reasoning Tokens", "tokens", None, K::Derived,
        T.union(L).union(R), G::None, true),
    def("total_token_throughput", "Total Token Throughput", "tokens/sec", None, K::Derived,
        T.union(L), G::None, false),
    def("osl_mismatch_count", "OSL Mismatch Count", "requests", None, K::Aggregate,
        T.union(N), G::None, true),
    def("usage_discrepancy_count", "Usage Discrepancy Count", "requests", None, K::Aggregate,
        U.union(N), G::None, true),
    def("error_request_count", "Error Request Count", "requests", None, K::Aggregate, E,
        G::None, true),
    def("total_error_isl", "Total Error Input Sequence Length", "tokens", None, K::Derived,
        I.union(L).union(E), G::None, true),
    // AIPerf's HTTP trace metrics (HTTP_TRACE_ONLY | NO_CONSOLE: files only; AIPerf shows
    // them only under `--show-trace-timing`). KB are 1024 bytes, as AIPerf's
    // `MetricSizeUnit.KILOBYTES`.
    def("http_req_blocked", "HTTP Blocked", "ms", Some(2000), K::Record, F::NONE, G::None,
        false),
    def("http_req_dns_lookup", "HTTP DNS Lookup", "ms", Some(2010), K::Record, F::NONE,
        G::None, false),
    def("http_req_connecting", "HTTP Connecting", "ms", Some(2020), K::Record, F::NONE,
        G::None, false),
    def("http_req_sending", "HTTP Sending", "ms", Some(2030), K::Record, F::NONE, G::None,
        false),
    def("http_req_waiting", "HTTP Waiting (TTFB)", "ms", Some(2040), K::Record, F::NONE,
        G::None, false),
    def("http_req_receiving", "HTTP Receiving", "ms", Some(2050), K::Record, F::NONE,
        G::None, false),
    def("http_req_connection_reused", "HTTP Connection Reused", "ratio", Some(2060),
        K::Record, F::NONE, G::None, true),
    def("http_req_data_sent", "HTTP Data Sent", "KB", Some(2070), K::Record, F::NONE,
        G::None, false),
    def("http_req_chunks_sent", "HTTP Chunks Sent", "count", Some(2080), K::Record, F::NONE,
        G::None, true),
    def("http_req_data_received", "HTTP Data Received", "KB", Some(2090), K::Record,
        F::NONE, G::None, false),
    def("http_req_chunks_received", "HTTP Chunks Received", "count", Some(2100), K::Record,
        F::NONE, G::None, true),
    def("http_req_connection_overhead", "HTTP Connection Overhead", "ms", Some(2110),
        K::Record, F::NONE, G::None, false),
    def("http_req_duration", "HTTP Duration (excl. conn)", "ms", Some(2120), K::Record,
        F::NONE, G::None, false),
    def("http_req_total", "HTTP Total Time", "ms", Some(2130), K::Record, F::NONE, G::None,
        false),
    // AIPerf injects these two beside the effective latency: the wait from a request's
    // credit to its send (JSON and CSV only), and failures that read as a context overflow.
    def("credit_to_start_latency", "Credit-to-Start Latency", "ms", None, K::Record,
        F::NONE, G::None, false),
    def("replay_sched_lag_p50", "Replay Schedule Lag p50", "ms", None, K::Derived, F::NONE,
        G::None, false),
    def("replay_sched_lag_p90", "Replay Schedule Lag p90", "ms", None, K::Derived, F::NONE,
        G::None, false),
    def("replay_sched_lag_p99", "Replay Schedule Lag p99", "ms", None, K::Derived, F::NONE,
        G::None, false),
    def("replay_sched_degraded", "Replay Schedule Degraded", "count", None, K::Derived,
        F::NONE, G::None, false),
    def("context_overflow_count", "Context Overflow Count", "requests", None, K::Aggregate,
        E.union(N), G::None, true),
    // Not AIPerf's: how well the client itself kept up.
    def("time_to_first_byte", "Time to First Byte", "ms", None, K::Record, CH, G::None,
        false),
    def("scheduling_lateness", "Scheduling Lateness", "ms", Some(1200), K::Record, F::NONE,
        G::Default, false),
];

/// Tag -> position in [`CATALOGUE`]; exporters look tags up once per value written.
/// FNV-1a: tags are short and trusted, and every record looks up each of its ~30 tags
/// (exporters, the accumulator), where SipHash's per-call set-up was a visible share of
/// the record thread.
#[derive(Clone, Copy)]
pub(crate) struct TagHasher(u64);

impl Default for TagHasher {
    fn default() -> Self {
        TagHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for TagHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// A map keyed by metric tag.
pub(crate) type TagMap<V> = HashMap<&'static str, V, std::hash::BuildHasherDefault<TagHasher>>;

fn index() -> &'static TagMap<usize> {
    static INDEX: OnceLock<TagMap<usize>> = OnceLock::new();
    INDEX.get_or_init(|| {
        CATALOGUE
            .iter()
            .enumerate()
            .map(|(i, d)| (d.tag, i))
            .collect()
    })
}

/// The definition of a tag, if this runtime knows it.
pub fn lookup(tag: &str) -> Option<&'static MetricDef> {
    index().get(tag).map(|&i| &CATALOGUE[i])
}

/// Position of a tag in [`CATALOGUE`] (unknown tags sort last).
pub fn catalogue_index(tag: &str) -> usize {
    index().get(tag).copied().unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_unique() {
        for (i, d) in CATALOGUE.iter().enumerate() {
            assert_eq!(
                CATALOGUE.iter().position(|o| o.tag == d.tag),
                Some(i),
                "{}",
                d.tag
            );
            assert_eq!(catalogue_index(d.tag), i);
        }
    }

    #[test]
    fn console_visibility_follows_group_and_flags() {
        assert_eq!(
            lookup("time_to_first_token").unwrap().console_order(),
            Some(100)
        );
        assert_eq!(
            lookup("usage_prompt_tokens").unwrap().console_order(),
            Some(1000)
        );
        assert_eq!(lookup("inter_chunk_latency").unwrap().console_order(), None);
        assert_eq!(lookup("error_request_count").unwrap().console_order(), None);
        assert_eq!(
            lookup("scheduling_lateness").unwrap().console_order(),
            Some(1200)
        );
        assert_eq!(lookup("time_to_first_byte").unwrap().console_order(), None);
        let effective = lookup("effective_latency").unwrap();
        assert_eq!(effective.group, ConsoleGroup::Effective);
        let sweeps = CATALOGUE
            .iter()
            .filter(|d| d.group == ConsoleGroup::Effective);
        let last = sweeps.max_by_key(|d| d.console_order()).unwrap();
        assert_eq!(last.tag, "effective_latency");
        assert_eq!(lookup("http_req_waiting").unwrap().console_order(), None);
        assert!(lookup("nope").is_none());
    }
}
