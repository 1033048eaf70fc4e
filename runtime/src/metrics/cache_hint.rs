//! AIPerf's hint for a server that reports token usage but not its prompt cache: a
//! server with prefix caching left unreported reads as a cache that never hits.

use crate::results::{MetricRecord, MetricResult};

/// AIPerf 0.13's words (`aiperf.metrics.cache_reporting_hint`), logged once mid-run and
/// printed after the console's metric tables.
pub const CACHE_REPORTING_HINT: &str = "Token usage is reported but no prompt-cache read \
    tokens were seen (usage.prompt_tokens_details.cached_tokens absent). If your server \
    uses prefix/KV caching, enable cache reporting so AIPerf can populate the prompt-cache \
    metrics: vLLM --enable-prompt-tokens-details, SGLang --enable-cache-report (TRT-LLM \
    reports it by default).";

const PROMPT: &str = "usage_prompt_tokens";
const CACHE_READ: &str = "usage_prompt_cache_read_tokens";

/// Whether one request's metrics have the server's prompt count but no cache reads (a
/// read count of 0 is a report: caching on, nothing hit).
pub fn usage_without_cache_in_record(metrics: &MetricRecord) -> bool {
    let (mut prompt, mut read) = (false, false);
    for entry in &metrics.entries {
        prompt |= entry.tag == PROMPT;
        read |= entry.tag == CACHE_READ;
    }
    prompt && !read
}

/// Whether a run's summary has prompt tokens summed but no cache reads.
pub fn usage_without_cache_in_results(metrics: &[MetricResult]) -> bool {
    let has = |tag: &str| metrics.iter().any(|m| m.tag == tag);
    has("total_usage_prompt_tokens") && !has("total_usage_prompt_cache_read_tokens")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::MetricValue;

    #[test]
    fn hints_only_when_prompt_usage_comes_without_cache_reads() {
        let mut record = MetricRecord::default();
        assert!(!usage_without_cache_in_record(&record));
        record.push(PROMPT, MetricValue::Scalar(32.0), "tokens");
        assert!(usage_without_cache_in_record(&record));
        record.push(CACHE_READ, MetricValue::Scalar(0.0), "tokens");
        assert!(!usage_without_cache_in_record(&record));

        let result = |tag| MetricResult {
            tag,
            header: "",
            unit: "tokens",
            display_order: None,
            stats: None,
            avg: 0.0,
        };
        let mut results = vec![result("request_count")];
        assert!(!usage_without_cache_in_results(&results));
        results.push(result("total_usage_prompt_tokens"));
        assert!(usage_without_cache_in_results(&results));
        results.push(result("total_usage_prompt_cache_read_tokens"));
        assert!(!usage_without_cache_in_results(&results));
    }
}
