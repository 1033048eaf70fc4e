//! Per-request metrics: from one [`ParsedRecord`] to the tagged values AIPerf writes in
//! `profile_export.jsonl`, in display units (ms for times).

use super::catalogue::{self, MetricDef, MetricFlags, MetricKind};
use crate::config::ProfileConfig;
use crate::record::{
    ErrorDetails, Nanos, Outcome, ParsedRecord, RequestRecord, ResponseData, Usage,
};
use crate::results::{MetricEntry, MetricRecord, MetricValue};

/// What the run lets the per-request metrics assume.
///
/// Token metrics are also data-driven: a record without an output token count, or of an
/// endpoint that produces no tokens ([`ParsedRecord::produces_tokens`]), gets no token
/// metrics (TTFT and ITL included, as in AIPerf they apply to token-producing endpoints
/// only) but the output length AIPerf still reports for the latter, and one without an
/// input count no input metrics. The pipeline leaves the input count unset for endpoints
/// that do not tokenize their input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMetricsOptions {
    /// Responses are streamed: enables TTFT, ITL and the other stream metrics.
    pub streaming: bool,
    /// The endpoint produces tokens (AIPerf's `produces_tokens`).
    pub produces_tokens: bool,
    /// The endpoint's input is tokenized (AIPerf's `tokenizes_input`).
    pub tokenizes_input: bool,
    /// The endpoint sends images and audio, and produces videos (its `supports_images`,
    /// `supports_audio` and `produces_videos`): the metrics of those apply.
    pub supports_images: bool,
    pub supports_audio: bool,
    pub produces_videos: bool,
}

impl RecordMetricsOptions {
    /// Options that assume every capability of the endpoint (each record's data still
    /// decides which metrics it has).
    pub fn new(streaming: bool) -> Self {
        RecordMetricsOptions {
            streaming,
            produces_tokens: true,
            tokenizes_input: true,
            supports_images: true,
            supports_audio: true,
            produces_videos: true,
        }
    }
}

/// A record AIPerf would count as an error: a failed outcome, or a "success" that
/// carried no content (AIPerf turns those into errors too). `None` for valid records.
/// Errors without details get [`Outcome::default_error`]'s, as the pipeline gives them.
pub fn record_error(record: &ParsedRecord) -> Option<ErrorDetails> {
    if record.is_valid() {
        if record.content_times().next().is_some() {
            return None;
        }
        return Outcome::EmptyOutput.default_error(record.raw.status);
    }
    record
        .error
        .clone()
        .or_else(|| record.raw.error.clone())
        .or_else(|| record.outcome.default_error(record.raw.status))
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

/// The server's usage for a request: the last response's that carried any, as AIPerf
/// 0.13's `final_usage` (the last non-empty block wins whole; its fields are not merged
/// with earlier blocks'), else the record's own.
pub fn merged_usage(record: &ParsedRecord) -> Option<Usage> {
    record
        .responses
        .iter()
        .rev()
        .find_map(|r| r.usage)
        .or(record.usage)
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
        | ResponseData::TextEnd
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
    compute_record_metrics_with_goodput(record, opts, None, out);
}

/// [`compute_record_metrics`], and under `--goodput` a valid record's
/// `good_request_count`: 1 when it meets every SLO, 0 when it misses one, and none when
/// it lacks an SLO metric (AIPerf requires the SLO metrics of the count, so such a
/// record is not counted good). It goes where AIPerf writes it, after the per-request
/// metrics and before the client's own figures.
pub fn compute_record_metrics_with_goodput(
    record: &ParsedRecord,
    opts: &RecordMetricsOptions,
    goodput: Option<&Goodput>,
    out: &mut MetricRecord,
) {
    let first = out.entries.len();
    let input_tokens = record
        .input_tokens
        .or(record.raw.input_tokens.map(u64::from));
    let valid = record_error(record).is_none();
    if !valid {
        if opts.tokenizes_input {
            if let Some(isl) = input_tokens {
                put(out, "error_isl", isl as f64, "tokens");
            }
        }
    } else {
        compute_valid(record, opts, input_tokens, out);
    }
    let good_at = out.entries.len();
    if valid {
        // AIPerf's video job transport (a submit and its polls) keeps no HTTP trace.
        let video_job = record
            .responses
            .iter()
            .any(|r| matches!(r.data, ResponseData::Videos { .. }));
        if !video_job {
            compute_http_trace(&record.raw, out);
        }
        compute_effective_ttft(record, opts.streaming, out);
    }
    compute_client_health(record, out);
    if let (true, Some(goodput)) = (valid, goodput) {
        // Judged on this record's entries only: `out` may hold other processors' metrics.
        if let Some(good) = goodput.judge(&out.entries[first..]) {
            let entry = MetricEntry {
                tag: "good_request_count",
                value: MetricValue::Scalar(f64::from(u8::from(good))),
                unit: "requests",
            };
            out.entries.insert(good_at, entry);
        }
    }
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
    // A record without an output count (or of an endpoint that produces no tokens) is
    // one AIPerf's token-only metrics do not apply to.
    let produces_tokens =
        opts.produces_tokens && record.produces_tokens && record.output_tokens.is_some();
    // AIPerf's usage_discrepancy_count needs the completion comparison, which needs the
    // output length and the server's completion count: it computes those two even for an
    // endpoint that produces no tokens, whenever it counts tokens on the client (the
    // pipeline counts them then only). Embeddings and rankings report OSL 0.
    let pulled_osl = record.output_tokens.filter(|_| !record.produces_tokens);
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
    if let Some(osl) = osl.or(pulled_osl) {
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
    push_media(&record.raw, latency_ns, out);
    push_video_job(record, out);
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
    let completion_pulled = pulled_osl.is_some();
    push_usage(
        record,
        &usage_opts,
        completion_pulled,
        (isl, osl),
        reasoning_tokens,
        out,
    );
    if let (Some(osl), Some(req)) = (osl, record.raw.requested_output_tokens) {
        if req > 0 {
            let diff = (osl as f64 - f64::from(req)) / f64::from(req) * 100.0;
            put(out, "osl_mismatch_diff_pct", diff, "%");
        }
    }
}

/// AIPerf's image metrics for a request that sent images, and its audio duration and
/// RTFx (audio seconds per second of latency) for one whose audio length is known; the
/// record has neither when the endpoint sends no media.
fn push_media(raw: &RequestRecord, latency_ns: u64, out: &mut MetricRecord) {
    let latency_s = latency_ns as f64 / 1e9;
    if raw.images > 0 {
        let images = f64::from(raw.images);
        put(out, "num_images", images, "images");
        if latency_ns > 0 {
            put(out, "image_throughput", images / latency_s, "images/sec");
        }
        put(out, "image_latency", ms(latency_ns) / images, "ms/image");
    }
    if let Some(audio_s) = raw.audio_duration_s.filter(|&s| s > 0.0) {
        put(out, "audio_duration", audio_s, "sec");
        if latency_ns > 0 {
            put(out, "rtfx", audio_s / latency_s, "ratio");
        }
    }
}

/// The server's own figures of a video generation, from the first response that gives
/// each (SGLang's `inference_time_s`, shown in ms, and `peak_memory_mb`).
fn push_video_job(record: &ParsedRecord, out: &mut MetricRecord) {
    let jobs = || {
        record.responses.iter().filter_map(|r| match r.data {
            ResponseData::Videos {
                inference_time_s,
                peak_memory_mb,
                ..
            } => Some((inference_time_s, peak_memory_mb)),
            _ => None,
        })
    };
    if let Some(s) = jobs().find_map(|(time, _)| time) {
        put(out, "video_inference_time", s * 1e3, "ms");
    }
    if let Some(mb) = jobs().find_map(|(_, memory)| memory) {
        put(out, "video_peak_memory", mb, "MB");
    }
}

/// The server's usage and its comparison with the client's `(isl, osl)`.
/// `completion_pulled`: the endpoint produces no tokens but AIPerf still reads the
/// completion count, for the comparison it cannot make (the client's OSL is 0).
fn push_usage(
    record: &ParsedRecord,
    opts: &RecordMetricsOptions,
    completion_pulled: bool,
    (isl, osl): (Option<u64>, Option<u64>),
    reasoning_tokens: Option<u64>,
    out: &mut MetricRecord,
) {
    let Some(usage) = merged_usage(record) else {
        return;
    };
    let tokens = |n: u64| MetricValue::Scalar(n as f64);
    let prompt = usage.prompt_tokens.filter(|_| opts.tokenizes_input);
    let completion = usage
        .completion_tokens
        .filter(|_| opts.produces_tokens || completion_pulled);
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
    // AIPerf reads the cache counts for every endpoint whose usage it reads.
    let cache = [
        (
            "usage_prompt_cache_read_tokens",
            usage.prompt_cache_read_tokens,
        ),
        (
            "usage_prompt_cache_write_tokens",
            usage.prompt_cache_write_tokens,
        ),
        (
            "usage_prompt_cache_miss_tokens",
            usage.prompt_cache_miss_tokens,
        ),
    ];
    for (tag, n) in cache {
        if let Some(n) = n {
            out.push(tag, tokens(n), "tokens");
        }
    }
    // The vendors' other counts (the pipeline drops the audio ones for an endpoint that
    // sends no audio); the completion's only for an endpoint that produces tokens.
    let produced = |n: Option<u64>| n.filter(|_| opts.produces_tokens);
    let extras = [
        ("usage_prompt_audio_tokens", usage.prompt_audio_tokens),
        ("usage_tool_use_prompt_tokens", usage.tool_use_prompt_tokens),
        (
            "usage_completion_audio_tokens",
            produced(usage.completion_audio_tokens),
        ),
        (
            "usage_accepted_prediction_tokens",
            produced(usage.accepted_prediction_tokens),
        ),
        (
            "usage_rejected_prediction_tokens",
            produced(usage.rejected_prediction_tokens),
        ),
    ];
    for (tag, n) in extras {
        if let Some(n) = n {
            out.push(tag, tokens(n), "tokens");
        }
    }
    if let Some(seconds) = usage.prompt_audio_seconds.filter(|s| s.is_finite()) {
        put(out, "usage_prompt_audio_seconds", seconds, "sec");
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

/// AIPerf's 14 `http_req_*` metrics (k6's phases), for a request whose write started.
///
/// `blocked` runs from the request's start until it held the connection that answered,
/// less that connection's opening: the pool check, and the lost attempt on a stale
/// kept-alive connection (BC-20). DNS is always 0: the host is resolved once at start-up.
/// `waiting` ends at the first byte after the head and `receiving` at the last read, as
/// AIPerf's body chunks; without a body byte both are absent and count 0 in `total`.
fn compute_http_trace(raw: &RequestRecord, out: &mut MetricRecord) {
    let (Some(write_start), Some(sent)) = (raw.write_start_ns, raw.sent_ns) else {
        return;
    };
    let connecting = raw.connect_ns;
    let blocked = write_start
        .saturating_sub(raw.start_ns)
        .saturating_sub(connecting);
    let dns = 0;
    let sending = sent.saturating_sub(write_start);
    let body = raw.body_first_ns;
    let waiting = body.map(|b| b.saturating_sub(sent));
    let receiving = body.map(|b| raw.end_ns.saturating_sub(b));
    let kb = |bytes: u64| bytes as f64 / 1024.0;
    put(out, "http_req_blocked", ms(blocked), "ms");
    put(out, "http_req_dns_lookup", ms(dns), "ms");
    put(out, "http_req_connecting", ms(connecting), "ms");
    put(out, "http_req_sending", ms(sending), "ms");
    if let (Some(waiting), Some(receiving)) = (waiting, receiving) {
        put(out, "http_req_waiting", ms(waiting), "ms");
        put(out, "http_req_receiving", ms(receiving), "ms");
    }
    let reused = f64::from(u8::from(raw.connection_reused));
    put(out, "http_req_connection_reused", reused, "ratio");
    // Body bytes, as aiohttp's trace counts them for AIPerf.
    put(out, "http_req_data_sent", kb(raw.body_bytes_sent), "KB");
    put(out, "http_req_chunks_sent", f64::from(raw.writes), "count");
    put(
        out,
        "http_req_data_received",
        kb(raw.body_bytes_received),
        "KB",
    );
    put(
        out,
        "http_req_chunks_received",
        f64::from(raw.reads),
        "count",
    );
    let overhead = blocked + dns + connecting;
    put(out, "http_req_connection_overhead", ms(overhead), "ms");
    let duration = raw.end_ns.saturating_sub(write_start);
    put(out, "http_req_duration", ms(duration), "ms");
    let total = overhead + sending + waiting.unwrap_or(0) + receiving.unwrap_or(0);
    put(out, "http_req_total", ms(total), "ms");
}

/// Figures about the client, for every request: how late it was sent against its
/// schedule, and how long the first response byte took.
fn compute_client_health(record: &ParsedRecord, out: &mut MetricRecord) {
    let raw = &record.raw;
    if let Some(fb) = raw.first_byte_ns.filter(|&fb| fb >= raw.start_ns) {
        put(out, "time_to_first_byte", ms(fb - raw.start_ns), "ms");
    }
    put(
        out,
        "scheduling_lateness",
        scheduling_lateness_ms(raw),
        "ms",
    );
}

/// How late (ms; negative when early) a request went out against its schedule: the
/// `scheduling_lateness` metric.
pub fn scheduling_lateness_ms(raw: &RequestRecord) -> f64 {
    signed_ms(raw.intended_ns, raw.start_ns)
}

/// TTFT measured from when the schedule wanted the request sent (BC-25).
fn compute_effective_ttft(record: &ParsedRecord, streaming: bool, out: &mut MetricRecord) {
    let tokens = record.produces_tokens && record.output_tokens.is_some();
    if !streaming || !record.is_valid() || !tokens {
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

/// One `--goodput` objective, checked against the catalogue.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    pub tag: &'static str,
    /// In the metric's display unit. Per-request values are kept in that unit too, so
    /// comparing them directly is AIPerf's comparison in base units scaled by a constant.
    pub threshold: f64,
    /// Met at `>=` the threshold (LARGER_IS_BETTER metrics), else at `<=`.
    pub larger_is_better: bool,
}

/// The SLOs of `--goodput` (AIPerf's `good_request_count`): a valid request is good when
/// it has every SLO metric and each one passes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Goodput {
    slos: Vec<Slo>,
}

/// Per-request metrics that cannot be an SLO: a list per request, or a value the
/// accumulator adds after the record processors ran.
const NOT_SLO_METRICS: &[&str] = &[
    "inter_chunk_latency",
    "effective_latency",
    "credit_to_start_latency",
];

impl Goodput {
    /// The run's `--goodput`, `None` without one. `run` says what the run computes
    /// (streaming, whether the endpoint produces and tokenizes tokens); an SLO on a
    /// metric it cannot produce is an error, as it would judge every request bad.
    pub fn from_config(
        config: &ProfileConfig,
        run: &RecordMetricsOptions,
    ) -> Result<Option<Goodput>, String> {
        config
            .goodput
            .as_ref()
            .map(|slos| Goodput::new(&slos.0, run, config.use_server_token_count))
            .transpose()
    }

    /// SLOs from `(tag, value in display units)` pairs; `server_token_counts` is
    /// `--use-server-token-count`, which turns the usage comparisons off.
    pub fn new(
        slos: &[(String, f64)],
        run: &RecordMetricsOptions,
        server_token_counts: bool,
    ) -> Result<Goodput, String> {
        let mut resolved = Vec::with_capacity(slos.len());
        for (tag, threshold) in slos {
            let problem = match catalogue::lookup(tag) {
                None => format!("unknown metric tag '{tag}'"),
                Some(def) if def.kind != MetricKind::Record => {
                    format!("'{tag}' is a run-level metric; SLOs apply to per-request metrics")
                }
                Some(def) if !is_slo_candidate(def) => {
                    format!("'{tag}' has no single value per request")
                }
                Some(def) => match missing_capability(def, run, server_token_counts) {
                    Some(why) => format!("'{tag}' is not applicable to this run ({why})"),
                    None => {
                        resolved.push(Slo {
                            tag: def.tag,
                            threshold: *threshold,
                            larger_is_better: def.flags.contains(MetricFlags::LARGER_IS_BETTER),
                        });
                        continue;
                    }
                },
            };
            let valid = Goodput::valid_tags(run, server_token_counts).join(", ");
            return Err(format!(
                "Invalid --goodput: {problem}. Valid tags for this run: {valid}"
            ));
        }
        Ok(Goodput { slos: resolved })
    }

    pub fn slos(&self) -> &[Slo] {
        &self.slos
    }

    /// The tags `--goodput` accepts for such a run, in catalogue order.
    pub fn valid_tags(run: &RecordMetricsOptions, server_token_counts: bool) -> Vec<&'static str> {
        catalogue::CATALOGUE
            .iter()
            .filter(|d| d.kind == MetricKind::Record && is_slo_candidate(d))
            .filter(|d| missing_capability(d, run, server_token_counts).is_none())
            .map(|d| d.tag)
            .collect()
    }

    /// Judges one valid request by its metrics: `Some(good)` when every SLO metric is
    /// there, `None` when one is missing (such a request is never good).
    pub fn judge(&self, metrics: &[MetricEntry]) -> Option<bool> {
        let value = |tag: &str| {
            metrics
                .iter()
                .find(|e| e.tag == tag)
                .and_then(|e| match e.value {
                    MetricValue::Scalar(v) => Some(v),
                    MetricValue::List(_) => None,
                })
        };
        // Presence first: AIPerf checks the SLO metrics are all there before comparing.
        let mut good = true;
        for slo in &self.slos {
            let v = value(slo.tag)?;
            // A NaN value passes neither way.
            good &= if slo.larger_is_better {
                v >= slo.threshold
            } else {
                v <= slo.threshold
            };
        }
        Some(good)
    }
}

fn is_slo_candidate(def: &MetricDef) -> bool {
    !def.flags.contains(MetricFlags::ERROR_ONLY) && !NOT_SLO_METRICS.contains(&def.tag)
}

/// Why a run does not compute a metric (AIPerf's run filter), `None` when it does.
fn missing_capability(
    def: &MetricDef,
    run: &RecordMetricsOptions,
    server_token_counts: bool,
) -> Option<&'static str> {
    let flags = def.flags;
    if flags.contains(MetricFlags::STREAMING_ONLY) && !run.streaming {
        Some("it needs --streaming")
    } else if flags.contains(MetricFlags::PRODUCES_TOKENS_ONLY) && !run.produces_tokens {
        Some("the endpoint produces no tokens")
    } else if flags.contains(MetricFlags::TOKENIZES_INPUT_ONLY) && !run.tokenizes_input {
        Some("the endpoint does not tokenize its input")
    } else if flags.contains(MetricFlags::SUPPORTS_IMAGE_ONLY) && !run.supports_images {
        Some("the endpoint sends no images")
    } else if flags.contains(MetricFlags::SUPPORTS_AUDIO_ONLY) && !run.supports_audio {
        Some("the endpoint sends no audio")
    } else if flags.contains(MetricFlags::PRODUCES_VIDEO_ONLY) && !run.produces_videos {
        Some("the endpoint produces no videos")
    } else if flags.contains(MetricFlags::USAGE_DIFF_ONLY) && server_token_counts {
        Some("it is not computed with --use-server-token-count")
    } else {
        None
    }
}
