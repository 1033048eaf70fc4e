//! Per-request metrics: from one [`ParsedRecord`] to the tagged values AIPerf writes in
//! `profile_export.jsonl`, in display units (ms for times).

use crate::record::{ErrorDetails, Nanos, Outcome, ParsedRecord, ResponseData, Usage};
use crate::results::{MetricRecord, MetricValue};

/// What the run lets the per-request metrics assume.
///
/// Token metrics are also data-driven: a record without an output token count gets no
/// token metrics (TTFT and ITL included, as in AIPerf they apply to token-producing
/// endpoints only), and one without an input count no input metrics. The pipeline
/// leaves those counts unset for endpoints that do not produce or tokenize tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMetricsOptions {
    /// Responses are streamed: enables TTFT, ITL and the other stream metrics.
    pub streaming: bool,
    /// The endpoint produces tokens (AIPerf's `produces_tokens`).
    pub produces_tokens: bool,
    /// The endpoint's input is tokenized (AIPerf's `tokenizes_input`).
    pub tokenizes_input: bool,
}

impl RecordMetricsOptions {
    pub fn new(streaming: bool) -> Self {
        RecordMetricsOptions {
            streaming,
            produces_tokens: true,
            tokenizes_input: true,
        }
    }
}

/// A record AIPerf would count as an error: a failed outcome, or a "success" that
/// carried no content (AIPerf turns those into errors too). `None` for valid records.
pub fn record_error(record: &ParsedRecord) -> Option<ErrorDetails> {
    if record.is_valid() {
        if record.content_times().next().is_some() {
            return None;
        }
        return Some(ErrorDetails::new(
            record.raw.status,
            "EmptyOutput",
            "the response carried no content",
        ));
    }
    if let Some(e) = record.error.clone().or_else(|| record.raw.error.clone()) {
        return Some(e);
    }
    let code = record.raw.status;
    Some(match record.outcome {
        // `is_valid` is false, so success cannot reach here; keep the match total.
        Outcome::Success | Outcome::InbandError => {
            ErrorDetails::new(code, "InbandError", "the server reported an error")
        }
        Outcome::HttpError => ErrorDetails::new(code, "HttpError", "HTTP error status"),
        Outcome::Shed => ErrorDetails::new(code, "Overloaded", "the server shed the request"),
        Outcome::Timeout => ErrorDetails::new(code, "Timeout", "the request timed out"),
        Outcome::Truncated => {
            ErrorDetails::new(code, "TruncatedResponse", "the response body ended early")
        }
        Outcome::Cancelled => ErrorDetails::new(code, "Cancelled", "the request was cancelled"),
        Outcome::EmptyOutput => {
            ErrorDetails::new(code, "EmptyOutput", "the response carried no content")
        }
        Outcome::ConnectionError => {
            ErrorDetails::new(code, "ConnectionError", "the connection failed")
        }
    })
}

fn put(out: &mut MetricRecord, tag: &'static str, value: f64, unit: &'static str) {
    out.push(tag, MetricValue::Scalar(value), unit);
}

/// Milliseconds of a nanosecond span.
fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Signed milliseconds from `from` to `to`.
fn signed_ms(from: Nanos, to: Nanos) -> f64 {
    (i128::from(to) - i128::from(from)) as f64 / 1e6
}

/// Usage fields, each from the last response that reported it (AIPerf reads "last
/// non-null" per field), falling back to the record's final usage block.
pub fn merged_usage(record: &ParsedRecord) -> Option<Usage> {
    let mut merged = Usage::default();
    let mut seen = false;
    for u in record.responses.iter().filter_map(|r| r.usage.as_ref()) {
        seen = true;
        merged.prompt_tokens = u.prompt_tokens.or(merged.prompt_tokens);
        merged.completion_tokens = u.completion_tokens.or(merged.completion_tokens);
        merged.total_tokens = u.total_tokens.or(merged.total_tokens);
        merged.reasoning_tokens = u.reasoning_tokens.or(merged.reasoning_tokens);
    }
    if let Some(last) = record.usage {
        seen = true;
        merged.prompt_tokens = merged.prompt_tokens.or(last.prompt_tokens);
        merged.completion_tokens = merged.completion_tokens.or(last.completion_tokens);
        merged.total_tokens = merged.total_tokens.or(last.total_tokens);
        merged.reasoning_tokens = merged.reasoning_tokens.or(last.reasoning_tokens);
    }
    seen.then_some(merged)
}

/// Whether the model reasoned in this response.
fn has_reasoning(record: &ParsedRecord) -> bool {
    record.reasoning_tokens.is_some_and(|n| n > 0)
        || record.responses.iter().any(|r| {
            matches!(&r.data, ResponseData::Reasoning { reasoning, .. } if !reasoning.is_empty())
        })
}

/// Whether a response carries visible output that is not reasoning.
fn is_output(data: &ResponseData) -> bool {
    match data {
        ResponseData::Text(t) => !t.is_empty(),
        ResponseData::Reasoning { content, .. } => !content.is_empty(),
        ResponseData::Empty
        | ResponseData::Embeddings { .. }
        | ResponseData::Rankings { .. }
        | ResponseData::Images { .. }
        | ResponseData::Videos { .. } => false,
    }
}

/// Appends the metrics of one request to `out` (without clearing it), in the order
/// AIPerf writes them.
pub fn compute_record_metrics(
    record: &ParsedRecord,
    opts: &RecordMetricsOptions,
    out: &mut MetricRecord,
) {
    let input_tokens = record
        .input_tokens
        .or(record.raw.input_tokens.map(u64::from));
    if record_error(record).is_some() {
        if opts.tokenizes_input {
            if let Some(isl) = input_tokens {
                put(out, "error_isl", isl as f64, "tokens");
            }
        }
    } else {
        compute_valid(record, opts, input_tokens, out);
        compute_effective_ttft(record, opts.streaming, out);
    }
    compute_client_health(record, out);
}

fn compute_valid(
    record: &ParsedRecord,
    opts: &RecordMetricsOptions,
    input_tokens: Option<u64>,
    out: &mut MetricRecord,
) {
    let start = record.raw.start_ns;
    let content: Vec<Nanos> = record.content_times().collect();
    let (Some(&first), Some(&last)) = (content.first(), content.last()) else {
        return;
    };
    // A clock that ran backwards must not produce huge unsigned spans.
    let latency_ns = last.saturating_sub(start);
    let ttft_ns = first.saturating_sub(start);
    // The pipeline counts output tokens exactly when the endpoint produces tokens, so a
    // record without a count is one AIPerf's token-only metrics do not apply to.
    let produces_tokens = opts.produces_tokens && record.output_tokens.is_some();
    let stream_tokens = opts.streaming && produces_tokens;
    let reasoning = produces_tokens && has_reasoning(record);
    let reasoning_tokens = if reasoning {
        record.reasoning_tokens
    } else {
        None
    };
    let osl = record
        .output_tokens
        .filter(|_| produces_tokens)
        .map(|o| o + reasoning_tokens.unwrap_or(0));
    let isl = if opts.tokenizes_input {
        input_tokens
    } else {
        None
    };

    put(out, "request_latency", ms(latency_ns), "ms");
    if stream_tokens {
        put(out, "time_to_first_token", ms(ttft_ns), "ms");
        if let [a, b, ..] = content[..] {
            put(out, "time_to_second_token", ms(b.saturating_sub(a)), "ms");
        }
        let first_output = record.responses.iter().find(|r| is_output(&r.data));
        if let Some(r) = first_output {
            let ttfo = r.recv_ns.saturating_sub(start);
            put(out, "time_to_first_output_token", ms(ttfo), "ms");
        }
        let decode_ns = latency_ns.saturating_sub(ttft_ns);
        put(out, "decode_duration", ms(decode_ns), "ms");
        // (latency - TTFT) / (OSL - 1): the first token is paid for by TTFT (BC-19).
        if let Some(osl) = osl.filter(|&n| n >= 2) {
            let itl_ns = decode_ns as f64 / (osl - 1) as f64;
            put(out, "inter_token_latency", itl_ns / 1e6, "ms");
            if itl_ns > 0.0 {
                let per_user = 1e9 / itl_ns;
                put(
                    out,
                    "output_token_throughput_per_user",
                    per_user,
                    "tokens/sec/user",
                );
            }
        }
    }
    if let Some(osl) = osl {
        if latency_ns > 0 {
            let e2e = osl as f64 / (latency_ns as f64 / 1e9);
            put(out, "e2e_output_token_throughput", e2e, "tokens/sec/user");
        }
    }
    if stream_tokens && ttft_ns > 0 {
        if let Some(isl) = isl {
            let prefill = isl as f64 / (ttft_ns as f64 / 1e9);
            put(
                out,
                "prefill_throughput_per_user",
                prefill,
                "tokens/sec/user",
            );
        }
    }
    if let Some(osl) = osl {
        put(out, "output_sequence_length", osl as f64, "tokens");
    }
    if let Some(n) = record.output_tokens.filter(|_| produces_tokens) {
        put(out, "output_token_count", n as f64, "tokens");
    }
    if let Some(n) = reasoning_tokens {
        put(out, "reasoning_token_count", n as f64, "tokens");
    }
    if let Some(isl) = isl {
        put(out, "input_sequence_length", isl as f64, "tokens");
    }
    if stream_tokens && content.len() >= 2 {
        let gaps = content
            .windows(2)
            .map(|w| ms(w[1].saturating_sub(w[0])))
            .collect();
        out.push("inter_chunk_latency", MetricValue::List(gaps), "ms");
    }
    let usage_opts = RecordMetricsOptions {
        produces_tokens,
        ..*opts
    };
    push_usage(record, &usage_opts, isl, osl, reasoning_tokens, out);
    if let (Some(osl), Some(req)) = (osl, record.raw.requested_output_tokens) {
        if req > 0 {
            let diff = (osl as f64 - f64::from(req)) / f64::from(req) * 100.0;
            put(out, "osl_mismatch_diff_pct", diff, "%");
        }
    }
}

fn push_usage(
    record: &ParsedRecord,
    opts: &RecordMetricsOptions,
    isl: Option<u64>,
    osl: Option<u64>,
    reasoning_tokens: Option<u64>,
    out: &mut MetricRecord,
) {
    let Some(usage) = merged_usage(record) else {
        return;
    };
    let tokens = |n: u64| MetricValue::Scalar(n as f64);
    let prompt = usage.prompt_tokens.filter(|_| opts.tokenizes_input);
    let completion = usage.completion_tokens.filter(|_| opts.produces_tokens);
    let reasoning = usage.reasoning_tokens.filter(|_| opts.produces_tokens);
    let total = usage.total_tokens.filter(|_| opts.produces_tokens);
    if let Some(n) = prompt {
        out.push("usage_prompt_tokens", tokens(n), "tokens");
    }
    if let Some(n) = completion {
        out.push("usage_completion_tokens", tokens(n), "tokens");
    }
    if let Some(n) = total {
        out.push("usage_total_tokens", tokens(n), "tokens");
    }
    if let Some(n) = reasoning {
        out.push("usage_reasoning_tokens", tokens(n), "tokens");
    }
    // |server - client| / client, only where the client count is non-zero.
    let diff =
        |server: u64, client: u64| (server as f64 - client as f64).abs() / client as f64 * 100.0;
    if let (Some(s), Some(c)) = (prompt, isl.filter(|&c| c > 0)) {
        put(out, "usage_prompt_tokens_diff_pct", diff(s, c), "%");
    }
    if let (Some(s), Some(c)) = (completion, osl.filter(|&c| c > 0)) {
        put(out, "usage_completion_tokens_diff_pct", diff(s, c), "%");
    }
    if let (Some(s), Some(c)) = (reasoning, reasoning_tokens.filter(|&c| c > 0)) {
        put(out, "usage_reasoning_tokens_diff_pct", diff(s, c), "%");
    }
}

/// Figures about the client, for every request: how late it was sent against its
/// schedule, and how long the first response byte took.
fn compute_client_health(record: &ParsedRecord, out: &mut MetricRecord) {
    let raw = &record.raw;
    if let Some(fb) = raw.first_byte_ns.filter(|&fb| fb >= raw.start_ns) {
        put(out, "time_to_first_byte", ms(fb - raw.start_ns), "ms");
    }
    let lateness = signed_ms(raw.intended_ns, raw.start_ns);
    put(out, "scheduling_lateness", lateness, "ms");
}

/// TTFT measured from when the schedule wanted the request sent (BC-25).
fn compute_effective_ttft(record: &ParsedRecord, streaming: bool, out: &mut MetricRecord) {
    if !streaming || !record.is_valid() || record.output_tokens.is_none() {
        return;
    }
    if let Some(first) = record.content_times().next() {
        put(
            out,
            "effective_time_to_first_token",
            signed_ms(record.raw.intended_ns, first),
            "ms",
        );
    }
}
