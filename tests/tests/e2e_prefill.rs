//! End to end: `--prefill-concurrency` against `aiperf-mock`. A request holds a prefill
//! slot from its send to its first content response (the mock's role-only chunk, sent at
//! once, does not count), so in `profile_export.jsonl` no more requests than the limit
//! are ever between `request_start_ns` and their first token, while the decodes after
//! it overlap as the concurrency allows.

mod common;

use common::{core_binary, profile, read_records, run_dir, run_profile, Mock};

use serde_json::Value;

/// A record's `(start, first token, end)` in wall-clock nanoseconds.
fn times(record: &Value) -> (i128, i128, i128) {
    let ns = |field: &str| {
        i128::from(
            record["metadata"][field]
                .as_u64()
                .unwrap_or_else(|| panic!("{field} missing from {record}")),
        )
    };
    let ttft_ms = record["metrics"]["time_to_first_token"]["value"]
        .as_f64()
        .unwrap_or_else(|| panic!("no time_to_first_token in {record}"));
    let start = ns("request_start_ns");
    (
        start,
        start + (ttft_ms * 1e6).round() as i128,
        ns("request_end_ns"),
    )
}

/// The most intervals `[from, to)` open at one instant. The TTFT goes through the JSON
/// in milliseconds, so an interval ending within a microsecond of another's start is
/// taken to end first.
fn max_overlap(intervals: &[(i128, i128)]) -> usize {
    let mut edges: Vec<(i128, i32)> = Vec::new();
    for &(from, to) in intervals {
        edges.push((from, 1));
        edges.push((to - 1_000, -1));
    }
    // Ends before starts at the same instant.
    edges.sort();
    let (mut open, mut most) = (0i32, 0i32);
    for (_, step) in edges {
        open += step;
        most = most.max(open);
    }
    most as usize
}

fn phase<'a>(records: &'a [Value], name: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["metadata"]["benchmark_phase"] == name)
        .collect()
}

/// Concurrency 8, prefill concurrency 2, 100 ms to the first token and 40 tokens 5 ms
/// apart: at most two requests wait for their first token at any time (and two do, the
/// limit binds), while four or so decode together.
#[test]
fn at_most_prefill_concurrency_requests_wait_for_their_first_token() {
    core_binary();
    let mock = Mock::start(&["--ttft-ms", "100", "--itl-ms", "5", "--output-tokens", "40"]);
    let dir = run_dir("prefill-limit");
    profile(
        &mock,
        &dir,
        &[
            "--endpoint-type",
            "chat",
            "--streaming",
            "--concurrency",
            "8",
            "--prefill-concurrency",
            "2",
            "--request-count",
            "24",
            "--workers",
            "2",
            "--isl",
            "16",
            "--osl",
            "40",
        ],
    );
    let records = read_records(&dir);
    assert_eq!(records.len(), 24);
    let spans: Vec<(i128, i128, i128)> = records.iter().map(times).collect();
    let prefill: Vec<(i128, i128)> = spans.iter().map(|&(s, f, _)| (s, f)).collect();
    let decode: Vec<(i128, i128)> = spans.iter().map(|&(_, f, e)| (f, e)).collect();
    let waiting = max_overlap(&prefill);
    let decoding = max_overlap(&decode);
    assert_eq!(waiting, 2, "requests waiting for their first token at once");
    assert!(decoding > 2, "only {decoding} requests decoded at once");
    // Nobody waited on the client side beyond the prefill limit: TTFT stays the mock's.
    for &(start, first, _) in &spans {
        let ttft_ms = (first - start) as f64 / 1e6;
        assert!((99.0..150.0).contains(&ttft_ms), "TTFT {ttft_ms} ms");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A warmup with its own prefill concurrency (1) keeps to it, and profiling to the run's.
#[test]
fn the_warmup_keeps_its_own_prefill_concurrency() {
    core_binary();
    let mock = Mock::start(&["--ttft-ms", "50", "--itl-ms", "5", "--output-tokens", "20"]);
    let dir = run_dir("prefill-warmup");
    profile(
        &mock,
        &dir,
        &[
            "--endpoint-type",
            "chat",
            "--streaming",
            "--concurrency",
            "4",
            "--prefill-concurrency",
            "2",
            "--warmup-request-count",
            "6",
            "--warmup-prefill-concurrency",
            "1",
            "--request-count",
            "12",
            "--isl",
            "16",
            "--osl",
            "20",
        ],
    );
    let records = read_records(&dir);
    let overlap = |name: &str| {
        let spans: Vec<(i128, i128)> = phase(&records, name)
            .into_iter()
            .map(|r| {
                let (s, f, _) = times(r);
                (s, f)
            })
            .collect();
        (spans.len(), max_overlap(&spans))
    };
    assert_eq!(overlap("warmup"), (6, 1));
    assert_eq!(overlap("profiling"), (12, 2));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Refused before anything is sent: without `--streaming`, and above `--concurrency`.
#[test]
fn prefill_concurrency_is_refused_without_a_stream_or_above_the_concurrency() {
    core_binary();
    let mock = Mock::start(&[]);
    let dir = run_dir("prefill-refused");
    let cases: [(&[&str], &str); 3] = [
        (
            &["--concurrency", "4", "--prefill-concurrency", "2"],
            "--prefill-concurrency needs --streaming",
        ),
        (
            &[
                "--endpoint-type",
                "embeddings",
                "--streaming",
                "--concurrency",
                "2",
                "--prefill-concurrency",
                "1",
            ],
            "endpoint `embeddings` does not stream, and --prefill-concurrency needs a stream",
        ),
        (
            &[
                "--streaming",
                "--concurrency",
                "2",
                "--prefill-concurrency",
                "3",
            ],
            "--prefill-concurrency 3 is above --concurrency 2",
        ),
    ];
    for (args, message) in cases {
        let output = run_profile(&[&mock.url], &dir, args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} ran");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(
            !dir.join("profile_export.jsonl").exists(),
            "{args:?} sent requests"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `profile` with `extra` like [`run_profile`], but fails (killing it) past `limit`:
/// these runs used to never end.
fn run_within(mock: &Mock, dir: &std::path::Path, extra: &[&str], limit: std::time::Duration) {
    let _ = std::fs::remove_dir_all(dir);
    let _serial = common::measuring();
    let mut child = common::profile_command(&[&mock.url], dir, extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the core binary");
    let until = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait for the run") {
            assert!(status.success(), "{extra:?} exited {status}");
            return;
        }
        if std::time::Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{extra:?} still ran after {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Every turn of a multi-turn session takes a prefill slot: with 16 sessions on 3 slots
/// many turns queue for one, and the run ends with every turn sent (a slot returned to
/// a stale waiter used to leave the last turns waiting for good).
#[test]
fn multi_turn_sessions_queue_for_prefill_slots_and_all_finish() {
    core_binary();
    let mock = Mock::start(&["--ttft-ms", "20", "--itl-ms", "2", "--output-tokens", "20"]);
    let dir = run_dir("prefill-multi-turn");
    let extra = [
        "--endpoint-type",
        "chat",
        "--streaming",
        "--concurrency",
        "16",
        "--prefill-concurrency",
        "3",
        "--conversation-num",
        "60",
        "--conversation-turn-mean",
        "2",
        "--random-seed",
        "2",
        "--workers",
        "2",
    ];
    run_within(&mock, &dir, &extra, std::time::Duration::from_secs(60));
    let records = read_records(&dir);
    assert_eq!(records.len(), 120, "every turn of 60 two-turn sessions");
    assert!(max_overlap(&prefill_spans(&records)) <= 3);
    // A turn held back for a slot is not late: its credit is issued once it has one.
    assert_sent_within(&records, 20.0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A rate far past what the slots let through: arrivals are skipped while both slots are
/// busy and the run ends after its five requests (at 10 million a second the worker used
/// to look at arrival after arrival and never run the requests that free a slot).
#[test]
fn a_rate_beyond_the_concurrency_skips_arrivals_and_ends() {
    core_binary();
    let mock = Mock::start(&["--ttft-ms", "20", "--itl-ms", "2", "--output-tokens", "5"]);
    for pattern in ["constant", "poisson"] {
        let dir = run_dir(&format!("rate-beyond-slots-{pattern}"));
        let extra = [
            "--endpoint-type",
            "chat",
            "--concurrency",
            "2",
            "--request-rate",
            "1e7",
            "--arrival-pattern",
            pattern,
            "--request-count",
            "5",
        ];
        run_within(&mock, &dir, &extra, std::time::Duration::from_secs(30));
        assert_eq!(read_records(&dir).len(), 5);
        let skipped = common::read_json(&dir)["client_health"]["skipped_arrivals"].as_u64();
        assert!(
            skipped.is_some_and(|n| n > 1000),
            "skipped arrivals {skipped:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A scheduled request (here a user's turn) waits for its slot rather than being
/// skipped, and that wait is the limit's, not the client's lateness: the credit is
/// issued once the slot is held (it was scored up to 170 ms late with one prefill slot).
#[test]
fn a_scheduled_request_that_waits_for_a_slot_is_not_late() {
    core_binary();
    let mock = Mock::start(&["--ttft-ms", "20", "--itl-ms", "2", "--output-tokens", "20"]);
    let dir = run_dir("prefill-user-centric");
    let extra = [
        "--endpoint-type",
        "chat",
        "--streaming",
        "--user-centric-rate",
        "100",
        "--num-users",
        "4",
        "--session-turns-mean",
        "2",
        "--prefill-concurrency",
        "1",
        "--request-count",
        "20",
    ];
    run_within(&mock, &dir, &extra, std::time::Duration::from_secs(60));
    let records = read_records(&dir);
    assert_eq!(records.len(), 20);
    assert_eq!(max_overlap(&prefill_spans(&records)), 1);
    assert_sent_within(&records, 10.0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Each record's time from send to first token.
fn prefill_spans(records: &[Value]) -> Vec<(i128, i128)> {
    records.iter().map(times).map(|(s, f, _)| (s, f)).collect()
}

/// Every request left within `limit_ms` of its credit: a wait for a slot is not lateness.
fn assert_sent_within(records: &[Value], limit_ms: f64) {
    for r in records {
        let m = &r["metadata"];
        let ns = |field: &str| m[field].as_u64().unwrap_or(0) as f64;
        let late_ms = (ns("request_start_ns") - ns("credit_issued_ns")) / 1e6;
        assert!(
            late_ms < limit_ms,
            "sent {late_ms} ms after its credit: {m}"
        );
    }
}
