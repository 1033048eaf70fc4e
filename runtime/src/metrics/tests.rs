//! Per-request and run-level metrics on hand-computed records.

use super::*;
use crate::record::{
    ErrorDetails, Nanos, Outcome, ParsedRecord, ParsedResponse, Phase, RequestRecord, ResponseData,
    Usage,
};
use crate::results::{MetricRecord, MetricValue};

const MS: Nanos = 1_000_000;

fn text(at: Nanos, t: &str) -> ParsedResponse {
    ParsedResponse {
        recv_ns: at,
        data: ResponseData::Text(t.into()),
        usage: None,
    }
}

fn empty(at: Nanos) -> ParsedResponse {
    ParsedResponse {
        recv_ns: at,
        data: ResponseData::Empty,
        usage: None,
    }
}

fn record(start: Nanos, responses: Vec<ParsedResponse>) -> ParsedRecord {
    let end = responses.last().map_or(start, |r| r.recv_ns);
    ParsedRecord {
        raw: RequestRecord {
            intended_ns: start,
            start_ns: start,
            end_ns: end,
            phase: Some(Phase::Profiling),
            ..Default::default()
        },
        responses,
        outcome: Outcome::Success,
        error: None,
        produces_tokens: true,
        input_tokens: None,
        output_tokens: None,
        reasoning_tokens: None,
        usage: None,
    }
}

fn compute(rec: &ParsedRecord, streaming: bool) -> MetricRecord {
    let mut out = MetricRecord::default();
    compute_record_metrics(rec, &RecordMetricsOptions::new(streaming), &mut out);
    out
}

fn list(m: &MetricRecord, tag: &str) -> Option<Vec<f64>> {
    m.entries
        .iter()
        .find(|e| e.tag == tag)
        .and_then(|e| match &e.value {
            MetricValue::List(v) => Some(v.clone()),
            MetricValue::Scalar(_) => None,
        })
}

fn assert_close(m: &MetricRecord, tag: &str, expected: f64, tol: f64) {
    let got = m
        .scalar(tag)
        .unwrap_or_else(|| panic!("{tag} missing in {m:?}"));
    assert!(
        (got - expected).abs() <= tol,
        "{tag}: got {got}, expected {expected}"
    );
}

fn tags(m: &MetricRecord) -> Vec<&'static str> {
    m.entries.iter().map(|e| e.tag).collect()
}

/// BC-08: the role-only prelude is not the first token.
#[test]
fn bc08_role_prelude_is_not_the_first_token() {
    let mut rec = record(
        0,
        vec![
            empty(4 * MS),
            text(850 * MS, "The"),
            text(870 * MS, " answer"),
            empty(880 * MS),
        ],
    );
    rec.raw.first_byte_ns = Some(4 * MS);
    rec.output_tokens = Some(2);
    let m = compute(&rec, true);
    assert_close(&m, "time_to_first_token", 850.0, 1e-9);
    assert_close(&m, "time_to_second_token", 20.0, 1e-9);
    // The empty finish chunk at 880 ms neither ends the latency nor adds a gap.
    assert_close(&m, "request_latency", 870.0, 1e-9);
    assert_eq!(list(&m, "inter_chunk_latency"), Some(vec![20.0]));
    assert_close(&m, "inter_token_latency", 20.0, 1e-9);
    assert_close(&m, "time_to_first_byte", 4.0, 1e-9);
}

/// BC-10: the usage-only final chunk carries usage but is no token.
#[test]
fn bc10_usage_only_final_chunk() {
    let mut usage_chunk = empty(121 * MS);
    usage_chunk.usage = Some(Usage {
        prompt_tokens: Some(7),
        completion_tokens: Some(1),
        total_tokens: Some(8),
        reasoning_tokens: None,
        ..Usage::default()
    });
    let mut rec = record(0, vec![text(120 * MS, "4"), usage_chunk]);
    rec.usage = rec.responses[1].usage;
    rec.input_tokens = Some(7);
    rec.output_tokens = Some(1);
    let m = compute(&rec, true);
    assert_close(&m, "request_latency", 120.0, 1e-9);
    assert_close(&m, "time_to_first_token", 120.0, 1e-9);
    assert_close(&m, "usage_prompt_tokens", 7.0, 0.0);
    assert_close(&m, "usage_completion_tokens", 1.0, 0.0);
    assert_close(&m, "usage_total_tokens", 8.0, 0.0);
    assert_close(&m, "input_sequence_length", 7.0, 0.0);
    assert_close(&m, "output_sequence_length", 1.0, 0.0);
    // One token: no ITL, no gaps.
    assert!(m.scalar("inter_token_latency").is_none());
    assert!(list(&m, "inter_chunk_latency").is_none());
    assert!(m.scalar("time_to_second_token").is_none());
}

/// BC-15: several tokens per chunk; ITL spreads the decode time over tokens.
#[test]
fn bc15_several_tokens_per_chunk() {
    let rec = {
        let mut r = record(
            0,
            vec![
                text(100 * MS, "a b c d"),
                text(110 * MS, "e f g h"),
                text(120 * MS, "i j k l"),
                text(130 * MS, "m n o p"),
            ],
        );
        r.output_tokens = Some(16);
        r
    };
    let m = compute(&rec, true);
    assert_close(&m, "time_to_first_token", 100.0, 1e-9);
    assert_close(&m, "output_sequence_length", 16.0, 0.0);
    assert_close(&m, "inter_token_latency", 2.0, 1e-9);
    assert_eq!(
        list(&m, "inter_chunk_latency"),
        Some(vec![10.0, 10.0, 10.0])
    );
}

/// BC-19: ITL excludes the TTFT.
#[test]
fn bc19_itl_excludes_ttft() {
    let responses = (0..100).map(|k| text((2000 + 20 * k) * MS, "x")).collect();
    let mut rec = record(0, responses);
    rec.output_tokens = Some(100);
    let m = compute(&rec, true);
    assert_close(&m, "request_latency", 3980.0, 1e-9);
    assert_close(&m, "inter_token_latency", 20.0, 1e-9);
    assert_close(&m, "output_token_throughput_per_user", 50.0, 1e-9);
}

fn run1_record() -> ParsedRecord {
    let start = 5_000_000_000;
    let mut last = text(start + 107_326_442, "end");
    last.usage = Some(Usage {
        prompt_tokens: Some(64),
        completion_tokens: Some(16),
        total_tokens: Some(80),
        reasoning_tokens: None,
        ..Usage::default()
    });
    let mut rec = record(
        start,
        vec![
            text(start + 39_174_941, "a"),
            text(start + 50_000_000, "b"),
            last,
        ],
    );
    rec.usage = rec.responses[2].usage;
    rec.input_tokens = Some(64);
    rec.output_tokens = Some(21);
    rec.raw.requested_output_tokens = Some(16);
    rec
}

/// §5.5 of the reference: one record of AIPerf's run1.
#[test]
fn reference_run1_record() {
    let m = compute(&run1_record(), true);
    assert_close(&m, "time_to_first_token", 39.174941, 1e-9);
    assert_close(&m, "request_latency", 107.326442, 1e-9);
    assert_close(&m, "decode_duration", 68.151501, 1e-9);
    assert_close(&m, "inter_token_latency", 3.4076, 5e-5);
    assert_close(&m, "output_token_throughput_per_user", 293.46, 5e-3);
    assert_close(&m, "e2e_output_token_throughput", 195.66, 5e-3);
    assert_close(&m, "prefill_throughput_per_user", 1633.70, 5e-3);
    assert_close(&m, "usage_completion_tokens_diff_pct", 23.81, 5e-3);
    assert_close(&m, "usage_prompt_tokens_diff_pct", 0.0, 0.0);
    assert_close(&m, "osl_mismatch_diff_pct", 31.25, 1e-9);
    assert_close(&m, "time_to_first_output_token", 39.174941, 1e-9);
    assert!(m.scalar("reasoning_token_count").is_none());
    // AIPerf's JSONL order, then the client's own figures.
    assert_eq!(
        tags(&m),
        [
            "request_latency",
            "time_to_first_token",
            "time_to_second_token",
            "time_to_first_output_token",
            "decode_duration",
            "inter_token_latency",
            "output_token_throughput_per_user",
            "e2e_output_token_throughput",
            "prefill_throughput_per_user",
            "output_sequence_length",
            "output_token_count",
            "input_sequence_length",
            "inter_chunk_latency",
            "usage_prompt_tokens",
            "usage_completion_tokens",
            "usage_total_tokens",
            "usage_prompt_tokens_diff_pct",
            "usage_completion_tokens_diff_pct",
            "osl_mismatch_diff_pct",
            "effective_time_to_first_token",
            "scheduling_lateness",
        ]
    );
}

/// §5.5, reasoning run: OSL = reasoning + output tokens, ITL divides by OSL - 1.
#[test]
fn reasoning_tokens_count_in_osl() {
    let start = 0;
    let think = |at, s: &str| ParsedResponse {
        recv_ns: at,
        data: ResponseData::Reasoning {
            content: String::new(),
            reasoning: s.into(),
        },
        usage: None,
    };
    let mut rec = record(
        start,
        vec![
            think(10 * MS, "hmm"),
            think(12 * MS, "so"),
            text(30 * MS, "answer"),
            text(62 * MS, "done"),
        ],
    );
    rec.output_tokens = Some(21);
    rec.reasoning_tokens = Some(6);
    let m = compute(&rec, true);
    assert_close(&m, "output_sequence_length", 27.0, 0.0);
    assert_close(&m, "output_token_count", 21.0, 0.0);
    assert_close(&m, "reasoning_token_count", 6.0, 0.0);
    assert_close(&m, "time_to_first_token", 10.0, 1e-9);
    assert_close(&m, "time_to_first_output_token", 30.0, 1e-9);
    assert_close(&m, "inter_token_latency", 52.0 / 26.0, 1e-9);
}

#[test]
fn non_streaming_has_latency_and_tokens_only() {
    let mut rec = record(0, vec![text(250 * MS, "whole body")]);
    rec.input_tokens = Some(100);
    rec.output_tokens = Some(50);
    let m = compute(&rec, false);
    assert_eq!(
        tags(&m),
        [
            "request_latency",
            "e2e_output_token_throughput",
            "output_sequence_length",
            "output_token_count",
            "input_sequence_length",
            "scheduling_lateness",
        ]
    );
    assert_close(&m, "e2e_output_token_throughput", 200.0, 1e-9);
}

#[test]
fn error_records_carry_error_isl_only() {
    let mut rec = record(10 * MS, vec![]);
    rec.raw.intended_ns = 8 * MS;
    rec.outcome = Outcome::HttpError;
    rec.error = Some(ErrorDetails::new(
        Some(500),
        "Internal Server Error",
        "boom",
    ));
    rec.input_tokens = Some(64);
    let m = compute(&rec, true);
    assert_eq!(tags(&m), ["error_isl", "scheduling_lateness"]);
    assert_close(&m, "scheduling_lateness", 2.0, 1e-9);
    assert_eq!(record_error(&rec).unwrap().code, Some(500));

    // A "success" without any content is an error too.
    let hollow = record(0, vec![empty(5 * MS)]);
    assert_eq!(
        record_error(&hollow),
        Some(ErrorDetails::exception(
            "InvalidInferenceResultError",
            "InvalidInferenceResultError('Invalid inference result: No responses with actual \
             content were received from the server (only usage/metadata, null/empty data, or \
             [DONE] markers)')"
                .to_owned(),
            None,
            &["InvalidInferenceResultError"],
        ))
    );
    assert_eq!(tags(&compute(&hollow, true)), ["scheduling_lateness"]);
}

#[test]
fn degenerate_timestamps_do_not_panic() {
    // Content stamped before the start (clock trouble): spans clamp to zero.
    let mut rec = record(100 * MS, vec![text(50 * MS, "a"), text(40 * MS, "b")]);
    rec.output_tokens = Some(2);
    rec.input_tokens = Some(0);
    rec.raw.intended_ns = u64::MAX;
    let m = compute(&rec, true);
    assert_close(&m, "request_latency", 0.0, 0.0);
    assert!(m.scalar("output_token_throughput_per_user").is_none());
    assert!(m.scalar("e2e_output_token_throughput").is_none());
    assert!(m.scalar("prefill_throughput_per_user").is_none());
    assert!(m.scalar("scheduling_lateness").unwrap().is_finite());
}

fn feed(acc: &mut MetricsAccumulator, rec: &ParsedRecord) {
    acc.add(rec, &compute(rec, true));
}

fn find<'a>(
    results: &'a [crate::results::MetricResult],
    tag: &str,
) -> &'a crate::results::MetricResult {
    results
        .iter()
        .find(|m| m.tag == tag)
        .unwrap_or_else(|| panic!("{tag} missing"))
}

#[test]
fn accumulator_summarizes_a_run() {
    let mut acc = MetricsAccumulator::new();
    // Two valid requests: [0, 100 ms] and [50 ms, 250 ms] (last content at 250 ms).
    let mut a = record(0, vec![text(40 * MS, "a"), text(100 * MS, "b")]);
    a.input_tokens = Some(10);
    a.output_tokens = Some(5);
    a.raw.requested_output_tokens = Some(5);
    let mut b = record(
        50 * MS,
        vec![text(90 * MS, "a"), text(250 * MS, "b"), empty(260 * MS)],
    );
    b.input_tokens = Some(30);
    b.output_tokens = Some(15);
    b.raw.requested_output_tokens = Some(5);
    let mut err = record(60 * MS, vec![]);
    err.outcome = Outcome::HttpError;
    err.error = Some(ErrorDetails::new(
        Some(500),
        "Internal Server Error",
        "boom",
    ));
    err.input_tokens = Some(20);

    feed(&mut acc, &a);
    let mut other = MetricsAccumulator::new();
    feed(&mut other, &b);
    feed(&mut other, &err);
    feed(&mut other, &err);
    acc.merge(other);

    let r = acc.summarize(None);
    let value = |tag| find(&r, tag).avg;
    assert_eq!(value("request_count"), 2.0);
    assert_eq!(value("error_request_count"), 2.0);
    assert_eq!(value("completed_request_count"), 4.0);
    assert_eq!(value("request_error_rate"), 50.0);
    assert!((value("benchmark_duration") - 0.25).abs() < 1e-12);
    assert!((value("request_throughput") - 8.0).abs() < 1e-9);
    assert_eq!(value("total_osl"), 20.0);
    assert!((value("output_token_throughput") - 80.0).abs() < 1e-9);
    assert_eq!(value("total_isl"), 40.0);
    assert!((value("input_token_throughput") - 160.0).abs() < 1e-9);
    assert!((value("total_token_throughput") - 240.0).abs() < 1e-9);
    assert_eq!(value("total_error_isl"), 40.0);
    // 15 tokens for 5 requested is off by more than min(5 % of 5, 50).
    assert_eq!(value("osl_mismatch_count"), 1.0);

    let latency = find(&r, "request_latency");
    let st = latency.stats.as_ref().unwrap();
    assert_eq!((st.count, st.min, st.max, st.sum), (2, 100.0, 200.0, 300.0));
    assert_eq!(latency.display_order, Some(300));
    assert_eq!(
        find(&r, "inter_chunk_latency")
            .stats
            .as_ref()
            .unwrap()
            .count,
        2
    );
    assert_eq!(find(&r, "error_isl").stats.as_ref().unwrap().count, 2);
    assert_eq!(find(&r, "request_throughput").stats, None);
    assert_eq!(find(&r, "scheduling_lateness").display_order, Some(1200));
    assert_eq!(
        find(&r, "scheduling_lateness")
            .stats
            .as_ref()
            .unwrap()
            .count,
        4
    );

    let errors = acc.error_summary();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].count, 2);
    assert_eq!(errors[0].error_details.kind, "Internal Server Error");

    // Catalogue order: per-request TTFT first, client figures last.
    assert_eq!(r[0].tag, "time_to_first_token");
    assert_eq!(r.last().unwrap().tag, "scheduling_lateness");
}

#[test]
fn empty_and_error_only_runs() {
    assert!(MetricsAccumulator::new().summarize(None).is_empty());

    let mut acc = MetricsAccumulator::new();
    let mut err = record(0, vec![]);
    err.outcome = Outcome::Timeout;
    feed(&mut acc, &err);
    let r = acc.summarize(None);
    let t: Vec<_> = r.iter().map(|m| m.tag).collect();
    assert_eq!(
        t,
        [
            "completed_request_count",
            "request_error_rate",
            "effective_latency",
            "error_request_count",
            "credit_to_start_latency",
            "context_overflow_count",
            "scheduling_lateness",
        ]
    );
    assert_eq!(find(&r, "request_error_rate").avg, 100.0);
    assert_eq!(acc.error_summary()[0].error_details.kind, "TimeoutError");
}

/// AIPerf's `effective_latency` and `credit_to_start_latency` cover every request,
/// failures included; `credit_to_start_latency` is clamped at 0 (a send stamped a hair
/// before its credit). `context_overflow_count` counts the failures whose message names
/// a context overflow, and is there whenever a request failed.
#[test]
fn derived_latencies_cover_failures_and_overflows_are_counted() {
    let mut acc = MetricsAccumulator::new();
    let mut ok = record(10 * MS, vec![text(40 * MS, "a")]);
    ok.raw.intended_ns = 7 * MS;
    let mut early = record(20 * MS, vec![text(30 * MS, "a")]);
    early.raw.intended_ns = 21 * MS;
    let failed = |start: Nanos, message: &str| {
        let mut r = record(start, vec![]);
        r.raw.intended_ns = start - 2 * MS;
        r.raw.end_ns = start + 5 * MS;
        r.outcome = Outcome::HttpError;
        r.error = Some(ErrorDetails::new(Some(400), "BadRequestError", message));
        r
    };
    for r in [
        ok,
        early,
        failed(
            50 * MS,
            "This model's Maximum Context length is 4096 tokens",
        ),
        failed(60 * MS, "bad request"),
    ] {
        feed(&mut acc, &r);
    }
    let r = acc.summarize(None);
    let stats = |tag| find(&r, tag).stats.clone().expect("stats");
    let effective = stats("effective_latency");
    assert_eq!(
        (effective.count, effective.min, effective.max),
        (4, 7.0, 33.0)
    );
    assert_eq!(effective.sum, 33.0 + 9.0 + 7.0 + 7.0);
    let credit = stats("credit_to_start_latency");
    assert_eq!((credit.count, credit.min, credit.max), (4, 0.0, 3.0));
    assert_eq!(credit.sum, 3.0 + 0.0 + 2.0 + 2.0);
    assert_eq!(find(&r, "context_overflow_count").avg, 1.0);
    assert_eq!(find(&r, "context_overflow_count").unit, "requests");

    // No failure, no overflow count.
    let mut clean = MetricsAccumulator::new();
    feed(&mut clean, &record(0, vec![text(MS, "a")]));
    assert!(clean
        .summarize(None)
        .iter()
        .all(|m| m.tag != "context_overflow_count"));
}

/// A record without an output count (an endpoint that produces no tokens, counted by the
/// server): the stream and token metrics stay out even with `--streaming`.
#[test]
fn records_without_output_tokens_get_no_token_metrics() {
    let mut rec = record(
        0,
        vec![ParsedResponse {
            recv_ns: 30 * MS,
            data: ResponseData::Embeddings { count: 2 },
            usage: Some(Usage {
                prompt_tokens: Some(9),
                completion_tokens: None,
                total_tokens: Some(9),
                reasoning_tokens: None,
                ..Usage::default()
            }),
        }],
    );
    rec.produces_tokens = false;
    rec.input_tokens = Some(9);
    let m = compute(&rec, true);
    assert_eq!(
        tags(&m),
        [
            "request_latency",
            "input_sequence_length",
            "usage_prompt_tokens",
            "usage_prompt_tokens_diff_pct",
            "scheduling_lateness",
        ]
    );
}

fn slos(pairs: &[(&str, f64)]) -> Vec<(String, f64)> {
    pairs.iter().map(|&(t, v)| (t.to_owned(), v)).collect()
}

/// A streaming chat run, as the core binary's record processor sees it.
fn chat_goodput(pairs: &[(&str, f64)]) -> Goodput {
    Goodput::new(&slos(pairs), &RecordMetricsOptions::new(true), false).expect("valid SLOs")
}

/// A streamed record: first token at `ttft` ms, then `tokens - 1` more `itl` ms apart.
fn streamed(start: Nanos, ttft: Nanos, itl: Nanos, tokens: u64) -> ParsedRecord {
    let responses = (0..tokens)
        .map(|k| text(start + (ttft + k * itl) * MS, "t"))
        .collect();
    let mut rec = record(start, responses);
    rec.output_tokens = Some(tokens);
    rec.input_tokens = Some(10);
    rec
}

fn judged(rec: &ParsedRecord, goodput: &Goodput) -> MetricRecord {
    let mut out = MetricRecord::default();
    let opts = RecordMetricsOptions::new(true);
    compute_record_metrics_with_goodput(rec, &opts, Some(goodput), &mut out);
    out
}

#[test]
fn goodput_counts_requests_meeting_every_slo() {
    let goodput = chat_goodput(&[("time_to_first_token", 30.0), ("inter_token_latency", 5.0)]);
    // (start ms, TTFT ms, ITL ms, tokens) and whether the request meets both SLOs.
    let cases = [
        ((0, 10, 4, 5), Some(true)),
        ((10, 30, 5, 5), Some(true)), // both exactly at their thresholds
        ((20, 31, 4, 5), Some(false)), // TTFT 1 ms over
        ((30, 20, 6, 5), Some(false)), // ITL 1 ms over
        ((40, 50, 9, 5), Some(false)), // both over
        ((50, 10, 4, 1), None),       // one token: no ITL, so never good
        ((60, 29, 5, 3), Some(true)),
    ];
    let mut acc = MetricsAccumulator::new().with_goodput(true);
    let mut last_end = 0;
    for ((start, ttft, itl, tokens), expected) in cases {
        let rec = streamed(start * MS, ttft, itl, tokens);
        last_end = last_end.max(start + ttft + (tokens - 1) * itl);
        let m = judged(&rec, &goodput);
        let verdict = m.scalar("good_request_count");
        assert_eq!(verdict, expected.map(|g| f64::from(u8::from(g))), "{m:?}");
        acc.add(&rec, &m);
    }
    let mut err = record(70 * MS, vec![]);
    err.outcome = Outcome::HttpError;
    let err_metrics = judged(&err, &goodput);
    assert_eq!(err_metrics.scalar("good_request_count"), None);
    acc.add(&err, &err_metrics);

    let r = acc.summarize(None);
    assert_eq!(find(&r, "good_request_count").avg, 3.0);
    assert_eq!(find(&r, "good_request_count").stats, None);
    // 3 good of 7 valid + 1 error.
    assert_eq!(find(&r, "good_request_fraction").avg, 3.0 / 8.0);
    let duration = last_end as f64 / 1e3;
    assert_eq!(find(&r, "benchmark_duration").avg, duration);
    assert!((find(&r, "goodput").avg - 3.0 / duration).abs() < 1e-12);
    assert_eq!(find(&r, "goodput").display_order, Some(1000));
    assert_eq!(find(&r, "good_request_fraction").display_order, None);
}

#[test]
fn goodput_slo_boundaries_and_direction() {
    // TTFT exactly 60 ms (60,000,000 ns) meets a 60 ms SLO; 1 ns more does not.
    let at = streamed(0, 60, 4, 3);
    let ttft = chat_goodput(&[("time_to_first_token", 60.0)]);
    assert_eq!(judged(&at, &ttft).scalar("good_request_count"), Some(1.0));
    let mut over = at.clone();
    over.responses[0].recv_ns += 1;
    assert_eq!(judged(&over, &ttft).scalar("good_request_count"), Some(0.0));

    // Larger is better: 250 tokens/s per user (ITL 4 ms) meets 250 and 200, not 251.
    for (threshold, good) in [(200.0, 1.0), (250.0, 1.0), (251.0, 0.0)] {
        let g = chat_goodput(&[("output_token_throughput_per_user", threshold)]);
        assert!(g.slos()[0].larger_is_better);
        assert_eq!(
            judged(&at, &g).scalar("good_request_count"),
            Some(good),
            "{threshold}"
        );
    }
    assert!(!ttft.slos()[0].larger_is_better);
}

#[test]
fn goodput_missing_metric_is_never_good() {
    // A reasoning SLO on a record without reasoning: the metric is absent, so no verdict
    // is written and the request is not counted good, though the TTFT SLO passes.
    let g = chat_goodput(&[
        ("time_to_first_token", 100.0),
        ("reasoning_token_count", 0.0),
    ]);
    let rec = streamed(0, 10, 4, 3);
    let m = judged(&rec, &g);
    assert_eq!(m.scalar("time_to_first_token"), Some(10.0));
    assert_eq!(m.scalar("good_request_count"), None);
    let mut acc = MetricsAccumulator::new().with_goodput(true);
    acc.add(&rec, &m);
    let r = acc.summarize(None);
    assert!(r
        .iter()
        .all(|m| m.tag != "good_request_count" && m.tag != "goodput"));
    assert_eq!(find(&r, "good_request_fraction").avg, 0.0);
}

#[test]
fn goodput_verdict_sits_before_the_client_figures() {
    let g = chat_goodput(&[("request_latency", 100.0)]);
    let mut out = MetricRecord::default();
    // Another processor's entry first: the verdict judges this record's own metrics.
    out.push("request_latency", MetricValue::Scalar(1e9), "ms");
    let opts = RecordMetricsOptions::new(true);
    compute_record_metrics_with_goodput(&streamed(0, 10, 4, 2), &opts, Some(&g), &mut out);
    assert_eq!(
        tags(&out),
        [
            "request_latency",
            "request_latency",
            "time_to_first_token",
            "time_to_second_token",
            "time_to_first_output_token",
            "decode_duration",
            "inter_token_latency",
            "output_token_throughput_per_user",
            "e2e_output_token_throughput",
            "prefill_throughput_per_user",
            "output_sequence_length",
            "output_token_count",
            "input_sequence_length",
            "inter_chunk_latency",
            "good_request_count",
            "effective_time_to_first_token",
            "scheduling_lateness",
        ]
    );
    // Its own latency is 14 ms, within the SLO; the other processor's 1e9 ms is not.
    assert_eq!(out.scalar("good_request_count"), Some(1.0));
}

#[test]
fn goodput_metrics_only_with_goodput() {
    let mut acc = MetricsAccumulator::new();
    let rec = streamed(0, 10, 4, 3);
    acc.add(&rec, &compute(&rec, true));
    let r = acc.summarize(None);
    assert!(r.iter().all(|m| !m.tag.starts_with("good")));
}

#[test]
fn goodput_rejects_tags_this_run_cannot_judge() {
    // An embeddings-like run: no stream, no output tokens, the input tokenized.
    let run = RecordMetricsOptions {
        streaming: false,
        produces_tokens: false,
        tokenizes_input: true,
        supports_images: false,
        supports_audio: false,
        produces_videos: false,
    };
    let valid = "Valid tags for this run: request_latency, input_sequence_length, \
                 usage_prompt_tokens, usage_prompt_cache_read_tokens, \
                 usage_prompt_cache_write_tokens, usage_prompt_cache_miss_tokens, \
                 usage_tool_use_prompt_tokens, usage_prompt_tokens_diff_pct, http_req_blocked, \
                 http_req_dns_lookup, http_req_connecting, http_req_sending, \
                 http_req_waiting, http_req_receiving, http_req_connection_reused, \
                 http_req_data_sent, http_req_chunks_sent, http_req_data_received, \
                 http_req_chunks_received, http_req_connection_overhead, \
                 http_req_duration, http_req_total, time_to_first_byte, scheduling_lateness";
    let err = |pairs: &[(&str, f64)], server: bool| {
        Goodput::new(&slos(pairs), &run, server).expect_err("rejected")
    };
    assert_eq!(
        err(&[("request_latency", 5.0), ("ttft", 1.0)], false),
        format!("Invalid --goodput: unknown metric tag 'ttft'. {valid}")
    );
    assert_eq!(
        err(&[("time_to_first_token", 1.0)], false),
        format!(
            "Invalid --goodput: 'time_to_first_token' is not applicable to this run \
             (it needs --streaming). {valid}"
        )
    );
    assert_eq!(
        err(&[("request_throughput", 1.0)], false),
        format!(
            "Invalid --goodput: 'request_throughput' is a run-level metric; SLOs apply to \
             per-request metrics. {valid}"
        )
    );
    assert_eq!(
        err(&[("usage_prompt_tokens_diff_pct", 1.0)], true),
        "Invalid --goodput: 'usage_prompt_tokens_diff_pct' is not applicable to this run \
         (it is not computed with --use-server-token-count). Valid tags for this run: \
         request_latency, input_sequence_length, usage_prompt_tokens, \
         usage_prompt_cache_read_tokens, usage_prompt_cache_write_tokens, \
         usage_prompt_cache_miss_tokens, usage_tool_use_prompt_tokens, http_req_blocked, \
         http_req_dns_lookup, http_req_connecting, http_req_sending, http_req_waiting, \
         http_req_receiving, http_req_connection_reused, http_req_data_sent, \
         http_req_chunks_sent, http_req_data_received, http_req_chunks_received, \
         http_req_connection_overhead, http_req_duration, http_req_total, \
         time_to_first_byte, scheduling_lateness"
    );
    // A streaming chat run (images and audio, no videos) accepts every scalar
    // per-request metric but the video ones.
    let streaming = RecordMetricsOptions {
        produces_videos: false,
        ..RecordMetricsOptions::new(true)
    };
    let chat = Goodput::valid_tags(&streaming, false);
    assert_eq!(
        chat,
        [
            "time_to_first_token",
            "time_to_second_token",
            "time_to_first_output_token",
            "request_latency",
            "decode_duration",
            "inter_token_latency",
            "output_token_throughput_per_user",
            "e2e_output_token_throughput",
            "output_sequence_length",
            "input_sequence_length",
            "rtfx",
            "image_throughput",
            "image_latency",
            "num_images",
            "audio_duration",
            "usage_prompt_tokens",
            "usage_completion_tokens",
            "usage_reasoning_tokens",
            "usage_total_tokens",
            "usage_prompt_cache_read_tokens",
            "usage_prompt_cache_write_tokens",
            "usage_prompt_cache_miss_tokens",
            "usage_prompt_audio_tokens",
            "usage_tool_use_prompt_tokens",
            "usage_prompt_audio_seconds",
            "usage_completion_audio_tokens",
            "usage_accepted_prediction_tokens",
            "usage_rejected_prediction_tokens",
            "output_token_count",
            "reasoning_token_count",
            "prefill_throughput_per_user",
            "usage_prompt_tokens_diff_pct",
            "usage_completion_tokens_diff_pct",
            "usage_reasoning_tokens_diff_pct",
            "osl_mismatch_diff_pct",
            "effective_time_to_first_token",
            "http_req_blocked",
            "http_req_dns_lookup",
            "http_req_connecting",
            "http_req_sending",
            "http_req_waiting",
            "http_req_receiving",
            "http_req_connection_reused",
            "http_req_data_sent",
            "http_req_chunks_sent",
            "http_req_data_received",
            "http_req_chunks_received",
            "http_req_connection_overhead",
            "http_req_duration",
            "http_req_total",
            "time_to_first_byte",
            "scheduling_lateness",
        ]
    );
    assert_eq!(
        Goodput::new(&slos(&[("inter_chunk_latency", 1.0)]), &streaming, false),
        Err(format!(
            "Invalid --goodput: 'inter_chunk_latency' has no single value per request. \
             Valid tags for this run: {}",
            chat.join(", ")
        ))
    );
    let tokens = RecordMetricsOptions {
        produces_tokens: false,
        ..RecordMetricsOptions::new(true)
    };
    let e = Goodput::new(&slos(&[("output_sequence_length", 1.0)]), &tokens, false);
    assert!(e
        .expect_err("no tokens")
        .contains("(the endpoint produces no tokens)"));
    assert!(Goodput::new(&[], &run, false)
        .expect("no SLOs")
        .slos()
        .is_empty());
}

/// AIPerf's k6-style phases on a request that opened a connection: every value exact.
#[test]
fn http_trace_metrics_on_a_new_connection() {
    let mut rec = record(10 * MS, vec![text(40 * MS, "a"), text(47 * MS, "b")]);
    rec.raw.write_start_ns = Some(13 * MS); // 1 ms in the pool check, 2 ms connecting
    rec.raw.connect_ns = 2 * MS;
    rec.raw.sent_ns = Some(14 * MS);
    rec.raw.first_byte_ns = Some(30 * MS); // the head
    rec.raw.body_first_ns = Some(32 * MS);
    rec.raw.end_ns = 48 * MS;
    rec.raw.body_bytes_sent = 2048;
    rec.raw.writes = 1;
    rec.raw.body_bytes_received = 512;
    rec.raw.reads = 5;
    let m = compute(&rec, true);
    let http: Vec<_> = tags(&m)
        .into_iter()
        .filter(|t| t.starts_with("http_req_"))
        .collect();
    // In AIPerf's display order, which the catalogue keeps.
    let catalogued: Vec<_> = catalogue::CATALOGUE
        .iter()
        .map(|d| d.tag)
        .filter(|t| t.starts_with("http_req_"))
        .collect();
    assert_eq!(http, catalogued);
    let exact = [
        ("http_req_blocked", 1.0),
        ("http_req_dns_lookup", 0.0),
        ("http_req_connecting", 2.0),
        ("http_req_sending", 1.0),
        ("http_req_waiting", 18.0),
        ("http_req_receiving", 16.0),
        ("http_req_connection_reused", 0.0),
        ("http_req_data_sent", 2.0),
        ("http_req_chunks_sent", 1.0),
        ("http_req_data_received", 0.5),
        ("http_req_chunks_received", 5.0),
        ("http_req_connection_overhead", 3.0),
        ("http_req_duration", 35.0),
        ("http_req_total", 38.0),
    ];
    for (tag, value) in exact {
        assert_eq!(m.scalar(tag), Some(value), "{tag}");
    }
    for e in m.entries.iter().filter(|e| e.tag.starts_with("http_req_")) {
        let def = catalogue::lookup(e.tag).unwrap();
        assert_eq!(e.unit, def.unit, "{}", e.tag);
        assert_eq!(def.console_order(), None, "{}", e.tag);
    }
}

/// A kept-alive connection: nothing to open; a body in the head's read takes no time
/// to receive; a record the transport never wrote has no trace metrics.
#[test]
fn http_trace_metrics_on_a_reused_connection() {
    let mut rec = record(0, vec![text(9 * MS, "a")]);
    rec.raw.connection_reused = true;
    rec.raw.write_start_ns = Some(0);
    rec.raw.sent_ns = Some(MS);
    rec.raw.body_first_ns = Some(9 * MS);
    let m = compute(&rec, false);
    assert_eq!(m.scalar("http_req_connection_reused"), Some(1.0));
    assert_eq!(m.scalar("http_req_connecting"), Some(0.0));
    assert_eq!(m.scalar("http_req_connection_overhead"), Some(0.0));
    assert_eq!(m.scalar("http_req_waiting"), Some(8.0));
    assert_eq!(m.scalar("http_req_receiving"), Some(0.0));
    assert_eq!(m.scalar("http_req_duration"), Some(9.0));
    assert_eq!(m.scalar("http_req_total"), Some(9.0));

    let never_written = record(0, vec![text(9 * MS, "a")]);
    let m = compute(&never_written, false);
    assert!(!tags(&m).iter().any(|t| t.starts_with("http_req_")));
}

const SEC: Nanos = 1_000_000_000;

/// A streaming request: first token `ttft` after its start, last content at `latency`.
fn timed(start: Nanos, ttft: Nanos, latency: Nanos) -> ParsedRecord {
    let mut rec = record(
        start,
        vec![text(start + ttft, "a"), text(start + latency, "b")],
    );
    rec.input_tokens = Some(10);
    rec.output_tokens = Some(2);
    rec
}

/// The statistics of one metric of a summary.
fn st<'a>(results: &'a [crate::results::MetricResult], tag: &str) -> &'a crate::results::Stats {
    find(results, tag).stats.as_ref().expect("statistics")
}

#[test]
fn timeslices_count_from_the_first_send_and_take_each_request_by_its_start() {
    // Slices of one second from 5 s (run clock) on. A request that starts in a slice
    // belongs to it even when it ends in a later one.
    let origin = 5 * SEC + 123;
    let mut slicer = Timeslicer::new(SEC, false);
    slicer.anchor(origin);
    slicer.anchor(origin + 7); // only the first anchor counts
    assert_eq!(slicer.origin(), Some(origin));
    assert_eq!(slicer.slice_index(origin), 0);
    assert_eq!(slicer.slice_index(origin + SEC - 1), 0);
    assert_eq!(slicer.slice_index(origin + SEC), 1);
    assert_eq!(slicer.slice_index(origin + 3 * SEC + 1), 3);
    // Never sent (start 0), or published a hair late: the first slice.
    assert_eq!(slicer.slice_index(0), 0);
    assert_eq!(slicer.slice_index(origin - 1), 0);

    let records = [
        timed(origin, 40 * MS, 100 * MS),
        timed(origin + SEC / 2, 60 * MS, 200 * MS),
        // Starts in slice 0, ends in slice 2.
        timed(origin + SEC - 1, 50 * MS, 1_500 * MS),
        timed(origin + SEC, 30 * MS, 300 * MS),
        // Nothing starts in slice 2; the run's last response comes 3.25 s in.
        timed(origin + 3 * SEC + SEC / 10, 20 * MS, 150 * MS),
    ];
    let mut whole = MetricsAccumulator::new();
    for rec in &records {
        let m = compute(rec, true);
        slicer.add(rec, &m);
        whole.add(rec, &m);
    }
    let wall = 1_700_000_000 * SEC;
    let slices = slicer.finish(|t| wall + t);
    let windows: Vec<(u64, u64, bool)> = slices
        .iter()
        .map(|s| (s.start_ns - wall, s.end_ns - wall, s.is_complete))
        .collect();
    let last_end = origin + 3 * SEC + SEC / 10 + 150 * MS;
    assert_eq!(
        windows,
        [
            (origin, origin + SEC, true),
            (origin + SEC, origin + 2 * SEC, true),
            (origin + 3 * SEC, last_end, false),
        ],
        "the empty slice 2 is left out; the last is cut at the run's last response"
    );

    // Each slice is the whole run's summary of its own requests.
    let counts: Vec<f64> = slices
        .iter()
        .map(|s| find(&s.metrics, "request_count").avg)
        .collect();
    assert_eq!(counts, [3.0, 1.0, 1.0]);
    let run = whole.summarize(None);
    assert_eq!(counts.iter().sum::<f64>(), find(&run, "request_count").avg);
    assert_eq!(
        st(&slices[0].metrics, "time_to_first_token"),
        &stats(&[40.0, 60.0, 50.0]).unwrap()
    );
    assert_eq!(
        st(&slices[2].metrics, "request_latency"),
        &stats(&[150.0]).unwrap()
    );
    // From its first start to its last response: the late one, 1.5 s after its start.
    let duration = find(&slices[0].metrics, "benchmark_duration").avg;
    assert!((duration - (SEC - 1 + 1_500 * MS) as f64 / 1e9).abs() < 1e-12);
    // Rates are per second of the slice's window, the cut one included.
    assert_eq!(find(&slices[0].metrics, "request_throughput").avg, 3.0);
    let cut_s = (last_end - (origin + 3 * SEC)) as f64 / 1e9;
    let rate = find(&slices[2].metrics, "request_throughput").avg;
    assert!((rate - 1.0 / cut_s).abs() < 1e-9, "{rate}");
    let tokens = find(&slices[1].metrics, "output_token_throughput").avg;
    assert!((tokens - 2.0).abs() < 1e-12, "{tokens}");
    // AIPerf derives the CO-aware latency over the whole run only.
    assert!(run.iter().any(|m| m.tag == "effective_latency"));
    assert!(slices
        .iter()
        .all(|s| s.metrics.iter().all(|m| m.tag != "effective_latency")));
}

#[test]
fn timeslices_cut_errors_by_start_and_end_the_grid_at_the_last_end() {
    let mut slicer = Timeslicer::new(SEC, false);
    slicer.anchor(SEC);
    let ok = timed(SEC, 40 * MS, 100 * MS);
    // A failure that started in slice 1 and ended last: it sets where that slice ends.
    let mut failed = record(2 * SEC + SEC / 4, vec![]);
    failed.raw.end_ns = 2 * SEC + SEC / 2;
    failed.outcome = Outcome::HttpError;
    failed.error = Some(ErrorDetails::new(
        Some(500),
        "Internal Server Error",
        "boom",
    ));
    for rec in [&ok, &failed] {
        slicer.add(rec, &compute(rec, true));
    }
    let slices = slicer.finish(|t| t);
    assert_eq!(slices.len(), 2);
    assert_eq!(
        (slices[1].start_ns, slices[1].end_ns, slices[1].is_complete),
        (2 * SEC, 2 * SEC + SEC / 2, false)
    );
    let failures = &slices[1].metrics;
    assert_eq!(find(failures, "error_request_count").avg, 1.0);
    assert!(failures.iter().all(|m| m.tag != "request_count"));
    assert_eq!(find(&slices[0].metrics, "request_count").avg, 1.0);
}

#[test]
fn timeslices_before_an_anchor_and_past_the_cap() {
    // A record whose request never went out (start 0) arrives before any anchor: it
    // counts in the first slice, which the anchor then places.
    let mut slicer = Timeslicer::new(SEC, false);
    let mut never_sent = record(0, vec![]);
    never_sent.raw.end_ns = 3 * SEC;
    never_sent.outcome = Outcome::Cancelled;
    slicer.add(&never_sent, &MetricRecord::default());
    slicer.anchor(2 * SEC);
    let sent = timed(2 * SEC + SEC / 2, 10 * MS, 20 * MS);
    slicer.add(&sent, &compute(&sent, true));
    let slices = slicer.finish(|t| t);
    assert_eq!(slices.len(), 1);
    assert_eq!((slices[0].start_ns, slices[0].end_ns), (2 * SEC, 3 * SEC));
    assert!(slices[0].is_complete, "the grid ends at the last end, 3 s");
    assert_eq!(find(&slices[0].metrics, "completed_request_count").avg, 2.0);

    // Nothing at all: no slices.
    assert!(Timeslicer::new(SEC, false).finish(|t| t).is_empty());

    // A grid past the cap is given up whole, not grown.
    let mut tiny = Timeslicer::new(1, false);
    tiny.anchor(0);
    let early = timed(0, 1, 2);
    tiny.add(&early, &compute(&early, true));
    let late = timed(MAX_TIMESLICES, 1, 2);
    tiny.add(&late, &compute(&late, true));
    tiny.add(&early, &compute(&early, true));
    assert!(tiny.finish(|t| t).is_empty());
}

#[test]
fn goodput_and_window_rates_in_a_slice() {
    let mut slicer = Timeslicer::new(2 * SEC, true);
    slicer.anchor(0);
    let slos = [("time_to_first_token".to_owned(), 50.0)];
    let goodput = Goodput::new(&slos, &RecordMetricsOptions::new(true), false).expect("slo");
    for (start, ttft) in [(0, 40 * MS), (SEC, 60 * MS)] {
        let rec = timed(start, ttft, 100 * MS);
        let mut m = MetricRecord::default();
        compute_record_metrics_with_goodput(
            &rec,
            &RecordMetricsOptions::new(true),
            Some(&goodput),
            &mut m,
        );
        slicer.add(&rec, &m);
    }
    let slices = slicer.finish(|t| t);
    let m = &slices[0].metrics;
    assert_eq!(find(m, "good_request_count").avg, 1.0);
    assert_eq!(find(m, "good_request_fraction").avg, 0.5);
    // One good request over the 1.1 s the slice ran (cut at the last response).
    assert!((find(m, "goodput").avg - 1.0 / 1.1).abs() < 1e-9);
}

/// An embeddings answer at `at`.
fn embeddings(at: Nanos) -> ParsedResponse {
    ParsedResponse {
        recv_ns: at,
        data: ResponseData::Embeddings { count: 2 },
        usage: None,
    }
}

/// A record of an endpoint that produces no tokens, counted on the client (0 output
/// tokens: AIPerf counts the answer's empty text).
fn tokenless(start: Nanos) -> ParsedRecord {
    let mut rec = record(start, vec![embeddings(start + 20 * MS)]);
    rec.produces_tokens = false;
    rec.input_tokens = Some(550);
    rec.output_tokens = Some(0);
    rec
}

/// AIPerf 0.13 computes `output_sequence_length` for embeddings and rankings (its usage
/// comparison depends on it), and it is 0; no other output-token metric applies, streaming
/// or not.
#[test]
fn an_endpoint_without_tokens_reports_osl_zero_and_no_other_token_metric() {
    let rec = tokenless(0);
    for streaming in [false, true] {
        let m = compute(&rec, streaming);
        assert_eq!(
            tags(&m),
            [
                "request_latency",
                "output_sequence_length",
                "input_sequence_length",
                "scheduling_lateness"
            ]
        );
        assert_eq!(m.scalar("output_sequence_length"), Some(0.0));
        assert_eq!(m.scalar("input_sequence_length"), Some(550.0));
    }
}

/// With the server's usage (image generation reports it), AIPerf reads the completion
/// count for the comparison it then cannot make (the client's OSL is 0); the prompt is
/// compared. With the server's counts (no client count) neither OSL nor the completion
/// count is read.
#[test]
fn an_endpoint_without_tokens_reads_the_completion_usage_only_for_the_comparison() {
    let mut rec = tokenless(0);
    rec.usage = Some(Usage {
        prompt_tokens: Some(467),
        completion_tokens: Some(272),
        total_tokens: Some(739),
        reasoning_tokens: None,
        ..Usage::default()
    });
    let m = compute(&rec, false);
    assert_eq!(
        tags(&m),
        [
            "request_latency",
            "output_sequence_length",
            "input_sequence_length",
            "usage_prompt_tokens",
            "usage_completion_tokens",
            "usage_prompt_tokens_diff_pct",
            "scheduling_lateness"
        ]
    );
    assert_eq!(m.scalar("usage_completion_tokens"), Some(272.0));
    // |467 - 550| / 550, as AIPerf's 15.090909090909092.
    assert_eq!(
        m.scalar("usage_prompt_tokens_diff_pct"),
        Some(83.0 / 550.0 * 100.0)
    );

    rec.output_tokens = None;
    let m = compute(&rec, false);
    assert_eq!(
        tags(&m),
        [
            "request_latency",
            "input_sequence_length",
            "usage_prompt_tokens",
            "usage_prompt_tokens_diff_pct",
            "scheduling_lateness"
        ]
    );
}

/// AIPerf's PRODUCES_TOKENS_ONLY run-level metrics are not computed for an endpoint that
/// produces no tokens, though its requests have an OSL (0) to sum; the input ones are.
#[test]
fn a_run_without_tokens_has_no_output_totals_or_rates() {
    let mut acc = MetricsAccumulator::new();
    for start in [0, 50 * MS] {
        let mut rec = tokenless(start);
        rec.usage = Some(Usage {
            prompt_tokens: Some(550),
            completion_tokens: Some(272),
            ..Usage::default()
        });
        acc.add(&rec, &compute(&rec, false));
    }
    let results = acc.summarize(None);
    let get = |tag: &str| results.iter().find(|m| m.tag == tag);
    let osl = get("output_sequence_length").expect("OSL");
    let stats = osl.stats.as_ref().expect("per-request statistics");
    assert_eq!((stats.avg, stats.max, stats.sum), (0.0, 0.0, 0.0));
    assert_eq!(get("usage_completion_tokens").map(|m| m.avg), Some(272.0));
    for tag in [
        "total_osl",
        "output_token_throughput",
        "total_token_throughput",
        "total_usage_completion_tokens",
    ] {
        assert!(get(tag).is_none(), "{tag}");
    }
    assert_eq!(get("total_isl").map(|m| m.avg), Some(1100.0));
    assert_eq!(
        get("total_usage_prompt_tokens").map(|m| m.avg),
        Some(1100.0)
    );
    // From the first start to the last answer: 70 ms.
    assert_eq!(
        get("input_token_throughput").map(|m| m.avg),
        Some(1100.0 / (70.0 * MS as f64 / 1e9))
    );
}

/// AIPerf's `ErrorDetails` equal when code, type and message do, so its summary counts two
/// errors that differ only in their cause as one, under the first's details.
#[test]
fn errors_group_by_code_type_and_message() {
    let first = ErrorDetails::exception(
        "ClientOSError",
        "ClientOSError(104, 'Connection reset by peer')".to_owned(),
        Some("ConnectionResetError(104, 'Connection reset by peer')".to_owned()),
        &["ClientOSError", "ConnectionResetError"],
    );
    let mut other_cause = first.clone();
    other_cause.cause = None;
    other_cause.cause_chain.truncate(1);
    let other_code = ErrorDetails {
        code: Some(104),
        ..first.clone()
    };
    let mut tally = ErrorTally::default();
    tally.add(&first);
    tally.add(&other_cause);
    tally.add(&other_code);
    let mut merged = ErrorTally::default();
    merged.add(&other_cause);
    merged.merge(&tally);
    let counts = |t: &ErrorTally| -> Vec<(ErrorDetails, u64)> {
        t.summary()
            .into_iter()
            .map(|c| (c.error_details, c.count))
            .collect()
    };
    assert_eq!(
        counts(&tally),
        [(first.clone(), 2), (other_code.clone(), 1)]
    );
    assert_eq!(counts(&merged), [(other_cause, 3), (other_code, 1)]);
}

/// The server's prompt-cache counts, per request and summed, and AIPerf's overall read
/// share: summed reads over summed prompt tokens, not an average of per-request shares.
#[test]
fn prompt_cache_counts_are_reported_summed_and_weighted_by_tokens() {
    let request = |start: Nanos, prompt: u64, read: u64, write: Option<u64>| {
        let mut rec = record(start, vec![text(start + 10 * MS, "a")]);
        rec.output_tokens = Some(1);
        rec.input_tokens = Some(prompt);
        rec.usage = Some(Usage {
            prompt_tokens: Some(prompt),
            completion_tokens: Some(1),
            prompt_cache_read_tokens: Some(read),
            prompt_cache_write_tokens: write,
            ..Usage::default()
        });
        rec
    };
    let mut acc = MetricsAccumulator::new();
    let small = compute(&request(0, 10, 10, Some(0)), true);
    let large = compute(&request(20 * MS, 90, 0, Some(90)), true);
    let cache_tags: Vec<&str> = tags(&small)
        .into_iter()
        .filter(|t| t.contains("cache"))
        .collect();
    assert_eq!(
        cache_tags,
        [
            "usage_prompt_cache_read_tokens",
            "usage_prompt_cache_write_tokens"
        ]
    );
    assert_eq!(small.scalar("usage_prompt_cache_read_tokens"), Some(10.0));
    assert_eq!(large.scalar("usage_prompt_cache_write_tokens"), Some(90.0));
    assert_eq!(large.scalar("usage_prompt_cache_miss_tokens"), None);
    acc.add(&request(0, 10, 10, Some(0)), &small);
    acc.add(&request(20 * MS, 90, 0, Some(90)), &large);
    let results = acc.summarize(None);
    let get = |tag: &str| results.iter().find(|m| m.tag == tag);
    let read = get("usage_prompt_cache_read_tokens").expect("reads");
    assert_eq!(read.stats.as_ref().map(|s| s.sum), Some(10.0));
    assert_eq!(read.display_order, Some(1010));
    assert_eq!(
        get("total_usage_prompt_cache_read_tokens").map(|m| m.avg),
        Some(10.0)
    );
    assert_eq!(
        get("total_usage_prompt_cache_write_tokens").map(|m| m.avg),
        Some(90.0)
    );
    assert!(get("total_usage_prompt_cache_miss_tokens").is_none());
    // 10 of 100 prompt tokens (the per-request shares, 100% and 0%, would average 50%).
    let pct = get("overall_usage_prompt_cache_read_pct").expect("overall share");
    assert_eq!(
        (pct.avg, pct.unit, pct.display_order),
        (10.0, "%", Some(2012))
    );
    assert!(pct.stats.is_none());
}

/// Without prompt tokens to divide by (none reported, or 0) there is no overall share;
/// without cache counts there are no cache metrics at all.
#[test]
fn no_overall_cache_share_without_prompt_tokens() {
    let mut acc = MetricsAccumulator::new();
    let mut rec = record(0, vec![text(10 * MS, "a")]);
    rec.output_tokens = Some(1);
    rec.input_tokens = Some(4);
    rec.usage = Some(Usage {
        prompt_tokens: Some(0),
        prompt_cache_read_tokens: Some(0),
        prompt_cache_miss_tokens: Some(0),
        ..Usage::default()
    });
    acc.add(&rec, &compute(&rec, true));
    let results = acc.summarize(None);
    let get = |tag: &str| results.iter().find(|m| m.tag == tag).map(|m| m.avg);
    assert_eq!(get("total_usage_prompt_cache_read_tokens"), Some(0.0));
    assert_eq!(get("total_usage_prompt_cache_miss_tokens"), Some(0.0));
    assert_eq!(get("overall_usage_prompt_cache_read_pct"), None);

    rec.usage = Some(Usage {
        prompt_tokens: Some(4),
        ..Usage::default()
    });
    let m = compute(&rec, true);
    assert!(!tags(&m).iter().any(|t| t.contains("cache")), "{m:?}");
    let mut acc = MetricsAccumulator::new();
    acc.add(&rec, &m);
    let results = acc.summarize(None);
    assert!(!results.iter().any(|r| r.tag.contains("cache")));
    assert!(usage_without_cache_in_record(&m));
    assert!(usage_without_cache_in_results(&results));
}

/// The last usage block of a stream is the request's usage, whole: a count only an
/// earlier block had is not carried over (AIPerf 0.13's `find_last_non_empty_usage`).
#[test]
fn the_last_usage_block_wins_whole() {
    let mut first = text(10 * MS, "a");
    first.usage = Some(Usage {
        prompt_tokens: Some(32),
        prompt_cache_read_tokens: Some(7),
        ..Usage::default()
    });
    let mut last = empty(20 * MS);
    last.usage = Some(Usage {
        completion_tokens: Some(1),
        ..Usage::default()
    });
    let mut rec = record(0, vec![first, last]);
    rec.usage = rec.responses[1].usage;
    rec.output_tokens = Some(1);
    let merged = merged_usage(&rec).expect("usage");
    assert_eq!(merged.prompt_cache_read_tokens, None);
    assert_eq!(merged.prompt_tokens, None);
    assert_eq!(merged.completion_tokens, Some(1));
    // A later response without usage does not hide it.
    let mut after = rec.clone();
    after.responses.push(empty(30 * MS));
    assert_eq!(merged_usage(&after), Some(merged));
}

/// AIPerf's image metrics divide by the images the request carried, RTFx divides the
/// audio's seconds by the latency's; a request without them has none of these.
#[test]
fn image_and_audio_metrics_follow_the_request_s_media() {
    let mut rec = record(0, vec![text(250 * MS, "a")]);
    rec.output_tokens = Some(1);
    rec.raw.images = 2;
    rec.raw.audio_duration_s = Some(0.5);
    let m = compute(&rec, false);
    assert_close(&m, "num_images", 2.0, 0.0);
    assert_close(&m, "image_throughput", 8.0, 1e-12);
    assert_close(&m, "image_latency", 125.0, 1e-12);
    assert_close(&m, "audio_duration", 0.5, 0.0);
    assert_close(&m, "rtfx", 2.0, 1e-12);

    rec.raw.images = 0;
    rec.raw.audio_duration_s = None;
    let m = compute(&rec, false);
    let media = [
        "num_images",
        "image_throughput",
        "image_latency",
        "audio_duration",
        "rtfx",
    ];
    assert!(
        media.iter().all(|t| m.scalar(t).is_none()),
        "{:?}",
        tags(&m)
    );

    // A failed request reports none either, as AIPerf's record metrics skip errors.
    rec.raw.images = 1;
    rec.outcome = Outcome::HttpError;
    let m = compute(&rec, false);
    assert!(
        media.iter().all(|t| m.scalar(t).is_none()),
        "{:?}",
        tags(&m)
    );
}

/// AIPerf's replay schedule lag: each valid request sent at a trace timestamp, its send
/// lag behind the least-late one, p50/p90/p99 in ms, and degraded once p99 passes 500 ms;
/// failures and requests not on the schedule do not count.
#[test]
fn replay_schedule_lag_is_anchored_at_the_least_late_request() {
    // Sent `late_ms` after the trace's timestamp `at_ms`; the intended time is the
    // release (after a wait for a slot or a previous turn) and plays no part.
    let scheduled = |at_ms: Nanos, late_ms: Nanos| {
        let start = (at_ms + late_ms) * MS;
        let mut r = record(start, vec![text(start + 10 * MS, "a")]);
        r.raw.intended_ns = start;
        r.raw.trace_ms = Some(at_ms as f64);
        r
    };
    let mut acc = MetricsAccumulator::new();
    for (at, late) in [(0, 5), (100, 7), (200, 105)] {
        feed(&mut acc, &scheduled(at, late));
    }
    let mut failed = scheduled(300, 900);
    failed.outcome = Outcome::HttpError;
    feed(&mut acc, &failed);
    let mut unscheduled = scheduled(400, 800);
    unscheduled.raw.trace_ms = None;
    feed(&mut acc, &unscheduled);
    let r = acc.summarize(None);
    let value = |tag| find(&r, tag).avg;
    // Lags 0, 2 and 100 ms: numpy's linear percentiles.
    assert!((value("replay_sched_lag_p50") - 2.0).abs() < 1e-9);
    assert!((value("replay_sched_lag_p90") - 80.4).abs() < 1e-9);
    assert!((value("replay_sched_lag_p99") - 98.04).abs() < 1e-9);
    assert_eq!(value("replay_sched_degraded"), 0.0);

    feed(&mut acc, &scheduled(500, 5 + 600));
    feed(&mut acc, &scheduled(600, 5 + 700));
    let r = acc.summarize(None);
    assert_eq!(find(&r, "replay_sched_degraded").avg, 1.0);

    // Nothing sent on a schedule: none of them.
    let mut plain = MetricsAccumulator::new();
    feed(&mut plain, &unscheduled);
    let r = plain.summarize(None);
    assert!(r.iter().all(|m| !m.tag.starts_with("replay_sched")));
}

/// The vendors' other usage counts become AIPerf's usage metrics and their run totals;
/// the completion's need an endpoint that produces tokens.
#[test]
fn usage_extras_and_their_totals() {
    let mut rec = record(0, vec![text(10 * MS, "a")]);
    rec.output_tokens = Some(1);
    rec.usage = Some(Usage {
        prompt_audio_tokens: Some(6),
        completion_audio_tokens: Some(2),
        accepted_prediction_tokens: Some(3),
        rejected_prediction_tokens: Some(4),
        tool_use_prompt_tokens: Some(7),
        prompt_audio_seconds: Some(1.5),
        ..Usage::default()
    });
    let m = compute(&rec, false);
    for (tag, value) in [
        ("usage_prompt_audio_tokens", 6.0),
        ("usage_completion_audio_tokens", 2.0),
        ("usage_accepted_prediction_tokens", 3.0),
        ("usage_rejected_prediction_tokens", 4.0),
        ("usage_tool_use_prompt_tokens", 7.0),
        ("usage_prompt_audio_seconds", 1.5),
    ] {
        assert_close(&m, tag, value, 0.0);
    }
    let mut acc = MetricsAccumulator::new();
    feed(&mut acc, &rec);
    feed(&mut acc, &rec);
    let r = acc.summarize(None);
    assert_eq!(find(&r, "total_usage_accepted_prediction_tokens").avg, 6.0);
    assert_eq!(find(&r, "total_usage_prompt_audio_seconds").avg, 3.0);
    assert_eq!(find(&r, "total_usage_tool_use_prompt_tokens").avg, 14.0);

    rec.produces_tokens = false;
    let m = compute(&rec, false);
    assert!(m.scalar("usage_accepted_prediction_tokens").is_none());
    assert!(m.scalar("usage_completion_audio_tokens").is_none());
    assert_close(&m, "usage_prompt_audio_tokens", 6.0, 0.0);
}
