//! End to end: the timing plugins (trace replay, user-centric rate, gamma arrivals, rate
//! ramps, Poisson split over workers) drive the built core binary against `aiperf-mock`,
//! and the send times in `profile_export.jsonl` must follow the schedule.
//!
//! The helpers are shared (`common/`): the core binary is built once per test
//! process and every measuring run holds one lock, since two benchmarks sharing two
//! cores would measure each other. Assertions on *intended* send times
//! (`credit_issued_ns`) are exact, since the schedule is computed; assertions on *actual*
//! send times (`request_start_ns`) keep to the tolerances the issue sets.

mod common;

use common::{core_binary, profile, read_json, read_records, run_dir, stat, Mock};

use std::path::{Path, PathBuf};

use serde_json::Value;

/// A nanosecond field of a record's metadata.
fn ns(record: &Value, field: &str) -> i128 {
    i128::from(
        record["metadata"][field]
            .as_u64()
            .unwrap_or_else(|| panic!("{field} missing from {record}")),
    )
}

/// The records sorted by intended send time, with intended and actual send times in
/// milliseconds from the first intended one.
fn schedule(records: &[Value]) -> Vec<(f64, f64, &Value)> {
    let mut rows: Vec<&Value> = records.iter().collect();
    rows.sort_by_key(|r| (ns(r, "credit_issued_ns"), ns(r, "request_start_ns")));
    let zero = rows.first().map_or(0, |r| ns(r, "credit_issued_ns"));
    rows.into_iter()
        .map(|r| {
            let intended = (ns(r, "credit_issued_ns") - zero) as f64 / 1e6;
            let actual = (ns(r, "request_start_ns") - zero) as f64 / 1e6;
            (intended, actual, r)
        })
        .collect()
}

fn errors(records: &[Value]) -> Vec<&Value> {
    records
        .iter()
        .filter(|r| r.get("error").is_some())
        .collect()
}

fn mean_and_cv(samples: &[f64]) -> (f64, f64) {
    let n = samples.len() as f64;
    let mean = samples.iter().sum::<f64>() / n;
    let var = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt() / mean)
}

/// Seconds from the profiling phase's start (the summary's `start_time`, local time to
/// the microsecond, read from its seconds-of-the-minute part: time zones differ from UTC
/// by whole minutes) to the wall-clock instant `ns`, for runs shorter than a minute.
fn since_start(json: &Value, ns: i128) -> f64 {
    ((ns % 60_000_000_000) as f64 / 1e9 - seconds_of_minute(json, "start_time")).rem_euclid(60.0)
}

/// The seconds-of-the-minute part of a summary's local time (`start_time`, `end_time`).
fn seconds_of_minute(json: &Value, key: &str) -> f64 {
    let text = json[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing"));
    let tail = text.rsplit(':').next().unwrap_or_default();
    tail.parse().unwrap_or_else(|_| panic!("{key} {text}"))
}

fn write_file(dir: &Path, name: &str, content: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("input dir");
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write input file");
    path
}

/// The user message each request sent (`profile_export_raw.jsonl`'s payloads), in dataset
/// order. Not `inputs.json`: AIPerf 0.13 writes none for a trace.
fn trace_prompts(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("profile_export_raw.jsonl")).expect("raw");
    let mut sent: Vec<(String, String)> = text
        .lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line).expect("a raw record");
            let conversation = record["metadata"]["conversation_id"].as_str();
            let content = record["payload"]["messages"][0]["content"].as_str();
            match (conversation, content) {
                (Some(c), Some(t)) => (c.to_owned(), t.to_owned()),
                _ => panic!("a conversation's text message: {record}"),
            }
        })
        .collect();
    sent.sort();
    sent.into_iter().map(|(_, text)| text).collect()
}

/// A trace replayed under a concurrency cap: requests wait for a slot, and AIPerf's
/// replay lag counts that wait against each row's timestamp (past 500 ms at p99 it calls
/// the replay degraded, and warns), while the client's own scheduling lateness does not.
#[test]
fn replay_lag_counts_the_wait_behind_a_concurrency_cap() {
    core_binary();
    let mock = Mock::start(&["--ttft-ms", "200", "--output-tokens", "2"]);
    let dir = run_dir("replay-lag-capped");
    let inputs = run_dir("replay-lag-capped-input");
    let rows: String = (0..12)
        .map(|i| {
            format!(
                r#"{{"timestamp": {}, "input_length": 8, "output_length": 2}}"#,
                i * 10
            ) + "\n"
        })
        .collect();
    let trace = write_file(&inputs, "trace.jsonl", &rows);
    let output = profile(
        &mock,
        &dir,
        &[
            "--input-file",
            trace.to_str().expect("utf-8 path"),
            "--custom-dataset-type",
            "mooncake_trace",
            "--fixed-schedule",
            "--concurrency",
            "2",
            "--workers",
            "1",
        ],
    );
    let json = read_json(&dir);
    // Two at a time, 200 ms each: the last pair goes out about 1 s in, scheduled at
    // 100 and 110 ms.
    let p99 = json["replay_sched_lag_p99"]["avg"].as_f64().expect("p99");
    assert!((700.0..1500.0).contains(&p99), "replay lag p99 {p99} ms");
    assert_eq!(json["replay_sched_degraded"]["avg"], 1.0);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Replay schedule degraded: anchored send lag"),
        "{stderr}"
    );
    let lateness = json["scheduling_lateness"]["p99"]
        .as_f64()
        .expect("lateness");
    assert!(lateness < 50.0, "the client's own lateness {lateness} ms");
}

#[test]
fn mooncake_trace_replays_its_timestamps() {
    core_binary();
    let mock = Mock::start(&["--ttft-ms", "2", "--output-tokens", "4"]);
    let dir = run_dir("mooncake");
    let inputs = run_dir("mooncake-input");
    // Out of order on purpose: a trace replays by timestamp, ties in file order.
    let trace = write_file(
        &inputs,
        "trace.jsonl",
        concat!(
            r#"{"timestamp": 0, "input_length": 20, "output_length": 4, "hash_ids": [0]}"#,
            "\n",
            r#"{"timestamp": 90, "text_input": "Hello<|endoftext|> world", "output_length": 4}"#,
            "\n",
            r#"{"timestamp": 50, "input_length": 600, "output_length": 4, "hash_ids": [0, 1]}"#,
            "\n",
        ),
    );
    let trace = trace.to_str().expect("utf-8 path");
    // No --fixed-schedule: a trace format named by --custom-dataset-type with a timestamped
    // first row turns it on, as in AIPerf 0.13. Two workers split the rows round-robin.
    // Seeded, the rows' sessions are numbered in file order (`trace_prompts` relies on it).
    profile(
        &mock,
        &dir,
        &[
            "--input-file",
            trace,
            "--random-seed",
            "1",
            "--custom-dataset-type",
            "mooncake_trace",
            "--streaming",
            "--workers",
            "2",
            "--export-level",
            "raw",
        ],
    );
    let records = read_records(&dir);
    assert_eq!(records.len(), 3, "exactly the trace's rows");
    // As AIPerf, no `inputs.json` for a trace (its payloads are the trace again).
    assert!(!dir.join("inputs.json").exists());
    // AIPerf's fixed schedule names each session after its conversation.
    for record in &records {
        let meta = &record["metadata"];
        let conversation = meta["conversation_id"].as_str().expect("a conversation id");
        assert!(conversation.starts_with("session_"), "{conversation}");
        let expected = format!("fixed-schedule-{conversation}");
        assert_eq!(meta["x_correlation_id"], expected.as_str());
    }
    assert!(errors(&records).is_empty(), "{:?}", errors(&records));
    let rows = schedule(&records);
    for ((intended, actual, record), expected) in rows.iter().zip([0.0, 50.0, 90.0]) {
        // Each worker counts from its own phase start, and the workers start a few
        // microseconds apart.
        assert!(
            (intended - expected).abs() < 0.5,
            "intended {intended} ms, schedule {expected} ms"
        );
        // The schedule itself is checked exactly above; the send follows it as closely
        // as the OS lets the worker run, which on two cores shared with a build has
        // been 3.5 ms late (the client-health verdict reports that lateness).
        assert!(
            (-0.5..=10.0).contains(&(actual - expected)),
            "sent at {actual} ms, schedule {expected} ms: {record}"
        );
    }
    // AIPerf's replay schedule lag: each send's lateness behind the least-late one.
    let mut lags: Vec<f64> = records
        .iter()
        .map(|r| {
            r["metrics"]["scheduling_lateness"]["value"]
                .as_f64()
                .expect("lateness")
        })
        .collect();
    lags.sort_by(f64::total_cmp);
    let least = lags[0];
    let lags: Vec<f64> = lags.iter().map(|l| l - least).collect();
    // Linear interpolation between the three, as numpy's percentile.
    let at = |q: f64| {
        let i = q / 100.0 * 2.0;
        let lo = i.floor() as usize;
        lags[lo] + (i - lo as f64) * (lags[(lo + 1).min(2)] - lags[lo])
    };
    let json = read_json(&dir);
    for (tag, q) in [
        ("replay_sched_lag_p50", 50.0),
        ("replay_sched_lag_p90", 90.0),
        ("replay_sched_lag_p99", 99.0),
    ] {
        let got = json[tag]["avg"].as_f64().expect(tag);
        assert!((got - at(q)).abs() < 1e-6, "{tag}: {got} against {}", at(q));
        assert_eq!(json[tag]["unit"], "ms");
    }
    assert_eq!(
        json["replay_sched_degraded"],
        serde_json::json!({"unit": "count", "avg": 0.0})
    );
    // The synthetic rows have exactly their input lengths; the text row's special-token
    // text counts as one token, as AIPerf's builtin tokenizer counts it.
    let isl = |r: &Value| r["metrics"]["input_sequence_length"]["value"].as_f64();
    assert_eq!(isl(rows[0].2), Some(20.0));
    assert_eq!(isl(rows[1].2), Some(600.0));
    assert_eq!(isl(rows[2].2), Some(3.0));
    // Each hash block opens with `<|endoftext|>` (AIPerf's block separator), and row 1,
    // the first 20 tokens of block 0, is where row 3 starts.
    let prompts = trace_prompts(&dir);
    assert_eq!(prompts.len(), 3, "{prompts:?}");
    let separators = |text: &str| text.matches("<|endoftext|>").count();
    assert!(prompts[0].starts_with("<|endoftext|> "), "{}", prompts[0]);
    assert_eq!(separators(&prompts[0]), 1);
    assert_eq!(prompts[1], "Hello<|endoftext|> world");
    assert_eq!(separators(&prompts[2]), 2);
    assert!(prompts[2].starts_with(&prompts[0]), "{}", prompts[2]);

    // A count beyond the trace is not reached, and the run says so.
    let output = profile(
        &mock,
        &dir,
        &[
            "--input-file",
            trace,
            "--custom-dataset-type",
            "mooncake_trace",
            "--request-count",
            "5",
        ],
    );
    assert_eq!(read_records(&dir).len(), 3);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "--request-count 5: the trace has 3 requests, each sent once at its timestamp, \
             so the run sends 3"
        ),
        "{stderr}"
    );

    // The loader found by itself: AIPerf promotes only a named trace format, so the rows
    // go as the timing flags say, in file order (a replay goes in timestamp order).
    profile(
        &mock,
        &dir,
        &["--input-file", trace, "--request-count", "3"],
    );
    let records = read_records(&dir);
    let sent: Vec<Option<f64>> = schedule(&records).iter().map(|row| isl(row.2)).collect();
    assert_eq!(sent.len(), 3);
    assert_eq!((sent[0], sent[2]), (Some(20.0), Some(600.0)), "{sent:?}");
    // Unseeded, AIPerf names the rows' sessions with UUIDs.
    let ids: std::collections::HashSet<&str> = records
        .iter()
        .map(|r| r["metadata"]["conversation_id"].as_str().expect("an id"))
        .collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert!(ids.iter().all(|id| common::is_uuid(id)), "{ids:?}");

    // A paced mode's flag and a promoted trace contradict each other: refused, named.
    let refused = common::run_profile(
        &[&mock.url],
        &dir,
        &[
            "--input-file",
            trace,
            "--custom-dataset-type",
            "mooncake_trace",
            "--request-rate",
            "5",
        ],
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(
            "the mooncake_trace dataset has timestamps, so the run would replay them \
             (fixed_schedule), which does not use --request-rate; drop it to replay the \
             trace, or pass --no-fixed-schedule to keep the pacing and not use the timestamps"
        ),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&inputs);
}

/// A phase's rates are per second of its window, from when it began issuing to its last
/// request's end, as AIPerf 0.13 rates a phase (its start to `requests_end_ns`): a trace
/// replayed from a start offset of 0 whose first request is 300 ms in counts those 300 ms,
/// and the summary's `start_time` is the phase's start. The benchmark duration stays the
/// requests' own extent. Without an offset flag the replay starts at the first timestamp.
#[test]
fn rates_are_per_second_of_the_phase_window() {
    core_binary();
    let mock = Mock::start(&["--ttft-ms", "2", "--output-tokens", "4"]);
    let dir = run_dir("phase-window");
    let inputs = run_dir("phase-window-input");
    let trace = write_file(
        &inputs,
        "trace.jsonl",
        concat!(
            r#"{"timestamp": 300, "input_length": 20, "output_length": 4}"#,
            "\n",
            r#"{"timestamp": 400, "input_length": 20, "output_length": 4}"#,
            "\n",
        ),
    );
    let trace = trace.to_str().expect("utf-8 path");
    // Seconds from the phase's start to each request's intended send, in order.
    let leads = |json: &Value, records: &[Value]| -> Vec<f64> {
        let mut credits: Vec<i128> = records.iter().map(|r| ns(r, "credit_issued_ns")).collect();
        credits.sort_unstable();
        credits.into_iter().map(|c| since_start(json, c)).collect()
    };
    let args = [
        "--input-file",
        trace,
        "--custom-dataset-type",
        "mooncake_trace",
    ];
    let with_offset = [
        &args[..],
        &["--fixed-schedule", "--fixed-schedule-start-offset", "0"],
    ];
    profile(&mock, &dir, &with_offset.concat());
    let records = read_records(&dir);
    assert_eq!(records.len(), 2);
    assert!(errors(&records).is_empty(), "{:?}", errors(&records));
    let json = read_json(&dir);
    let lead = leads(&json, &records);
    assert!(
        (0.2995..0.3005).contains(&lead[0]) && (0.3995..0.4005).contains(&lead[1]),
        "sends due {lead:?} s after start_time {}",
        json["start_time"]
    );
    // Intended send times are the phase's start plus the timestamps, exactly.
    let start = records
        .iter()
        .map(|r| ns(r, "credit_issued_ns"))
        .min()
        .unwrap_or(0)
        - 300_000_000;
    let end = records
        .iter()
        .map(|r| ns(r, "request_end_ns"))
        .max()
        .unwrap_or(0);
    let window_s = (end - start) as f64 / 1e9;
    let throughput = stat(&json, "request_throughput", "avg");
    assert!(
        (throughput - 2.0 / window_s).abs() <= 1e-3 * throughput,
        "{throughput} requests/s over a {window_s} s window"
    );
    let duration = stat(&json, "benchmark_duration", "avg");
    assert!(
        (0.1..0.2).contains(&duration) && duration < window_s - 0.29,
        "benchmark duration {duration} s, window {window_s} s"
    );
    // Time-weighted metrics cover the window too: two short requests in 0.4 s.
    let conc = stat(&json, "effective_concurrency", "avg");
    assert!(conc < 0.2, "effective concurrency {conc}");

    // No offset flag: the first timestamp is the zero (AIPerf 0.13's default auto-offset).
    profile(&mock, &dir, &args);
    let records = read_records(&dir);
    let json = read_json(&dir);
    let lead = leads(&json, &records);
    assert!(
        lead[0] < 0.0005 && (lead[1] - lead[0] - 0.1).abs() < 0.0005,
        "sends due {lead:?} s after start_time {}",
        json["start_time"]
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&inputs);
}

/// A duration-bounded phase lasts its duration, as AIPerf 0.13's does, even when its last
/// request ended before: 4/s constant for 2 s sends 7 requests (250 ms to 1.75 s, the
/// first one interval in) and rates them over 2 s (3.5/s, AIPerf 3.50).
#[test]
fn a_timed_phase_lasts_its_duration() {
    core_binary();
    let mock = Mock::start(&["--ttft-ms", "1", "--output-tokens", "2"]);
    let dir = run_dir("timed-window");
    let args = [
        "--request-rate",
        "4",
        "--arrival-pattern",
        "constant",
        "--benchmark-duration",
        "2",
    ];
    profile(&mock, &dir, &args);
    let records = read_records(&dir);
    assert_eq!(records.len(), 7);
    let json = read_json(&dir);
    let window = (seconds_of_minute(&json, "end_time") - seconds_of_minute(&json, "start_time"))
        .rem_euclid(60.0);
    assert!((window - 2.0).abs() < 0.001, "window {window} s");
    let throughput = stat(&json, "request_throughput", "avg");
    assert!((throughput - 3.5).abs() < 0.01, "{throughput} requests/s");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every arrival due before the deadline goes, however late the client reaches it: one
/// worker cannot send 100,000 requests a second, so it ends the 0.1 s behind its
/// schedule, and the arrivals it reached after the deadline were dropped without a word
/// (9,999 of 10,000 per worker were seen at 5,000/s on a busy machine).
#[test]
fn a_late_client_still_sends_every_arrival_due_before_the_deadline() {
    core_binary();
    let mock = Mock::start(&["--ttft-ms", "0", "--output-tokens", "1"]);
    let dir = run_dir("late-arrivals");
    let args = [
        "--request-rate",
        "100000",
        "--benchmark-duration",
        "0.1",
        "--workers",
        "1",
        "--isl",
        "8",
        "--random-seed",
        "5",
    ];
    profile(&mock, &dir, &args);
    let records = read_records(&dir);
    let first_due = records.iter().map(|r| ns(r, "credit_issued_ns")).min();
    let last_due = records.iter().map(|r| ns(r, "credit_issued_ns")).max();
    let last_sent = records.iter().map(|r| ns(r, "request_start_ns")).max();
    let json = read_json(&dir);
    let skipped = &json["client_health"]["skipped_arrivals"];
    assert_eq!(
        records.len(),
        10_000,
        "due from {first_due:?} to {last_due:?} ns, last sent {last_sent:?} ns, skipped \
         {skipped}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A client far behind its rate, with no signal: once the duration's grace period is
/// over, the arrivals it had not reached yet are recorded as kept from being sent (they
/// were sent, and cancelled at once), and the client health says how far behind it was.
/// One worker cannot send 100,000 requests a second; `ulimit -n 1024` bounds its
/// connections per request in flight, which would take the ports of tests running beside
/// it (a lower limit makes most arrivals fail at once for want of a descriptor, and the
/// client then catches up).
#[test]
fn a_client_behind_its_rate_sends_nothing_after_the_grace_period() {
    core_binary();
    let mock = Mock::start(&["--ttft-ms", "0", "--output-tokens", "1"]);
    let dir = run_dir("behind-past-grace");
    let _ = std::fs::remove_dir_all(&dir);
    let output = common::profile_under_ulimit("-n 1024", &mock.url, &dir)
        .args(["--request-rate", "100000", "--benchmark-duration", "0.1"])
        .args([
            "--benchmark-grace-period",
            "0",
            "--workers",
            "1",
            "--isl",
            "8",
        ])
        .output()
        .expect("run the core binary");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let records = read_records(&dir);
    // Every arrival of the schedule is in the records, sent or not.
    assert_eq!(records.len(), 10_000, "{stderr}");
    let unsent: Vec<&Value> = records
        .iter()
        .filter(|r| r["error"]["message"] == "cancelled before it was sent: the run stopped")
        .collect();
    assert!(!unsent.is_empty(), "every arrival was sent");
    assert!(unsent.iter().all(
        |r| r["metadata"]["was_cancelled"] == true && r["metadata"]["request_ack_ns"].is_null()
    ));
    let health = &read_json(&dir)["client_health"];
    assert_eq!(health["unsent_at_stop"].as_u64(), Some(unsent.len() as u64));
    assert_eq!(health["client_bottleneck"], true);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A rate capped by `--concurrency` for a duration accounts for every arrival of its
/// schedule: sent plus skipped is R x D. Arrivals due while every slot was busy when the
/// duration ended were dropped uncounted (16 sent + 69 skipped of 100).
#[test]
fn a_capped_rate_sends_or_skips_every_arrival_of_its_duration() {
    core_binary();
    let mock = Mock::start(&["--ttft-ms", "400", "--output-tokens", "1"]);
    let dir = run_dir("capped-rate-accounts");
    let args = [
        "--request-rate",
        "100",
        "--concurrency",
        "2",
        "--benchmark-duration",
        "1",
        "--workers",
        "1",
        "--random-seed",
        "3",
    ];
    profile(&mock, &dir, &args);
    let sent = read_records(&dir).len() as u64;
    let json = read_json(&dir);
    let skipped = json["client_health"]["skipped_arrivals"]
        .as_u64()
        .expect("a count");
    assert_eq!(sent + skipped, 100, "{sent} sent, {skipped} skipped");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A closed-loop request is due when its slot frees, not when the loop began waiting for
/// one: against a server answering in 150 ms, lateness stays far below a request's time
/// (a stale clock read once made every slot's next request 150 ms "late", and every
/// `--concurrency` run CLIENT-BOUND).
#[test]
fn a_closed_loop_request_is_due_when_its_slot_frees() {
    core_binary();
    let mock = Mock::start(&["--ttft-ms", "150", "--output-tokens", "1"]);
    let dir = run_dir("closed-loop-lateness");
    profile(
        &mock,
        &dir,
        &[
            "--concurrency",
            "4",
            "--request-count",
            "16",
            "--workers",
            "2",
        ],
    );
    let records = read_records(&dir);
    assert_eq!(records.len(), 16);
    let late_ms: Vec<f64> = records
        .iter()
        .map(|r| (ns(r, "request_start_ns") - ns(r, "credit_issued_ns")) as f64 / 1e6)
        .collect();
    assert!(
        late_ms.iter().all(|&ms| ms < 50.0),
        "lateness {late_ms:?} ms"
    );
    // The health judges the lateness after the first wave (the 4 requests due at the
    // start, which wait for one another's connections), and says so.
    let json = read_json(&dir);
    let health = &json["client_health"];
    assert_eq!(health["scheduling_lateness_after_first_requests"], 4);
    let console = std::fs::read_to_string(dir.join("profile_export_console.txt")).expect("console");
    assert!(
        console.contains("scheduling lateness after the first 4 requests p50"),
        "{console}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A rate capped by `--concurrency` shares the run's slots, as AIPerf's global ones: an
/// arrival is skipped only when every slot is busy, however many workers were asked for
/// (split over two workers, one was skipped while the other had a slot free).
#[test]
fn a_capped_rate_sends_the_same_with_any_worker_count() {
    core_binary();
    // 60 ms requests, an arrival every 25 ms, two slots: every third arrival is skipped,
    // with at least 10 ms between a slot's freeing and the arrival it decides.
    let mock = Mock::start(&["--ttft-ms", "60", "--output-tokens", "1"]);
    let dir = run_dir("capped-rate-workers");
    let mut sent = Vec::new();
    for workers in ["1", "2"] {
        let args = [
            "--request-rate",
            "40",
            "--arrival-pattern",
            "constant",
            "--concurrency",
            "2",
            "--request-count",
            "10",
            "--workers",
            workers,
        ];
        profile(&mock, &dir, &args);
        let json = read_json(&dir);
        let mut due: Vec<i64> = read_records(&dir)
            .iter()
            .map(|r| (since_start(&json, ns(r, "credit_issued_ns")) * 1e3).round() as i64)
            .collect();
        due.sort_unstable();
        sent.push(due);
    }
    assert_eq!(sent[0], [25, 50, 100, 125, 175, 200, 250, 275, 325, 350]);
    assert_eq!(sent[1], sent[0], "two workers asked for");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn user_centric_users_share_the_rate() {
    core_binary();
    let mock = Mock::start(&["--ttft-ms", "2", "--output-tokens", "4"]);
    let dir = run_dir("user-centric");
    let inputs = run_dir("user-centric-input");
    // Three sessions of three turns: 3 users at 10 req/s start 100 ms apart and send
    // their turns 300 ms apart; new users replace finished ones.
    let mut rows = String::new();
    for turn in 0..3 {
        for session in ["a", "b", "c"] {
            rows.push_str(&format!(
                "{{\"session_id\": \"{session}\", \"text\": \"turn {turn} of {session}\", \
                 \"output_length\": 4}}\n"
            ));
        }
    }
    let file = write_file(&inputs, "sessions.jsonl", &rows);
    profile(
        &mock,
        &dir,
        &[
            "--input-file",
            file.to_str().expect("utf-8 path"),
            "--user-centric-rate",
            "10",
            "--num-users",
            "3",
            "--request-count",
            "12",
            "--workers",
            "2",
        ],
    );
    let records = read_records(&dir);
    assert_eq!(records.len(), 12);
    assert!(errors(&records).is_empty(), "{:?}", errors(&records));
    // Instants to the millisecond: each worker counts from its own phase start, and
    // the workers start a fraction of a millisecond apart.
    let got: Vec<(f64, String, u64)> = schedule(&records)
        .into_iter()
        .map(|(intended, _, r)| {
            (
                intended.round(),
                r["metadata"]["conversation_id"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                r["metadata"]["turn_index"].as_u64().unwrap_or(99),
            )
        })
        .collect();
    // Steady-state start (L = 2): the fresh user (c) first, then b with 2 turns left,
    // a with 1; a's replacement gets conversation a again (sequential, wrapping).
    let expected: Vec<(f64, String, u64)> = [
        (0.0, "c", 0),
        (100.0, "b", 0),
        (200.0, "a", 0),
        (300.0, "c", 1),
        (400.0, "b", 1),
        (500.0, "a", 0),
        (600.0, "c", 2),
        (700.0, "b", 0),
        (800.0, "a", 1),
        (900.0, "c", 0),
        (1000.0, "b", 1),
        (1100.0, "a", 2),
    ]
    .into_iter()
    .map(|(t, c, k)| (t, c.to_owned(), k))
    .collect();
    assert_eq!(got, expected);
    // Each user's session is correlated by the user's number, as AIPerf's: user 1 is
    // virtually done, 2 (a) and 3 (b) open with the fresh user 4 (c), and new users
    // take 5, 6, 7 as they start, whichever worker sends them.
    let users: Vec<&str> = schedule(&records)
        .into_iter()
        .map(|(_, _, r)| r["metadata"]["x_correlation_id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        users,
        ["4", "3", "2", "4", "3", "5", "4", "6", "5", "7", "6", "5"]
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&inputs);
}

/// After a warmup, the profiling phase's sessions start where AIPerf 0.13's do: one
/// conversation past the warmup's when the warmup ended on a later turn (its issuing loop
/// drew the next session and dropped it), right after them when it ended on a first
/// turn. The first profiling conversations are those of AIPerf's own runs of these flags.
#[test]
fn profiling_sessions_start_where_aiperfs_do_after_a_warmup() {
    let mock = Mock::start(&["--ttft-ms", "1", "--output-tokens", "2"]);
    let cases: [(&str, &[&str], &str); 3] = [
        (
            "two-turn-concurrency",
            &[
                "--concurrency",
                "1",
                "--session-turns-mean",
                "2",
                "--request-count",
                "8",
            ],
            "session_000003",
        ),
        (
            "two-turn-rate",
            &[
                "--request-rate",
                "40",
                "--session-turns-mean",
                "2",
                "--request-count",
                "8",
            ],
            "session_000003",
        ),
        (
            "single-turn-rate",
            &["--request-rate", "40", "--request-count", "6"],
            "session_000002",
        ),
    ];
    for (name, flags, expected) in cases {
        let dir = run_dir(&format!("warmup-boundary-{name}"));
        let warmup = if flags.contains(&"--session-turns-mean") {
            "4"
        } else {
            "2"
        };
        let mut args = flags.to_vec();
        args.extend(["--warmup-request-count", warmup, "--random-seed", "2"]);
        profile(&mock, &dir, &args);
        let records = read_records(&dir);
        let first_sent = |phase: &str| {
            records
                .iter()
                .map(|r| &r["metadata"])
                .filter(|m| m["benchmark_phase"] == phase)
                .min_by_key(|m| m["credit_issued_ns"].as_u64())
                .and_then(|m| m["conversation_id"].as_str())
                .map(str::to_owned)
        };
        assert_eq!(
            first_sent("warmup").as_deref(),
            Some("session_000000"),
            "{name}"
        );
        assert_eq!(first_sent("profiling").as_deref(), Some(expected), "{name}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A user-centric run's warmup is a concurrency phase (one slot), as AIPerf's, and the
/// users then take the conversations after the warmup's, where AIPerf's do: none of the
/// warmup's prompts opens the profiling phase.
#[test]
fn user_centric_profiling_follows_its_warmup() {
    let mock = Mock::start(&["--ttft-ms", "1", "--output-tokens", "2"]);
    let dir = run_dir("user-centric-warmup");
    profile(
        &mock,
        &dir,
        &[
            "--user-centric-rate",
            "40",
            "--num-users",
            "3",
            "--session-turns-mean",
            "2",
            "--request-count",
            "12",
            "--warmup-request-count",
            "4",
            "--random-seed",
            "2",
        ],
    );
    let records = read_records(&dir);
    let phase_of = |phase: &str| -> Vec<(String, String)> {
        records
            .iter()
            .map(|r| &r["metadata"])
            .filter(|m| m["benchmark_phase"] == phase)
            .map(|m| {
                let id = |k: &str| m[k].as_str().unwrap_or_default().to_owned();
                (id("conversation_id"), id("x_correlation_id"))
            })
            .collect()
    };
    let warmup = phase_of("warmup");
    let warmup_ids: Vec<&str> = warmup.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(
        warmup_ids,
        [
            "session_000000",
            "session_000000",
            "session_000001",
            "session_000001"
        ]
    );
    // One slot, sessions one after the other, each with its own UUID.
    assert!(warmup.iter().all(|(_, x)| common::is_uuid(x)), "{warmup:?}");
    let profiling = phase_of("profiling");
    assert_eq!(profiling.len(), 12);
    let mut first: Vec<&str> = profiling.iter().map(|(c, _)| c.as_str()).collect();
    first.sort_unstable();
    // AIPerf's users start one further still (its warmup drew one session it dropped):
    // 3, 4, 5, as its own run of these flags.
    assert_eq!(first[0], "session_000003", "{profiling:?}");
    // Users are numbered as AIPerf numbers them.
    assert!(
        profiling.iter().all(|(_, x)| x.parse::<u64>().is_ok()),
        "{profiling:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A user-centric run whose synthetic dataset is too large to hold composes it while the
/// run goes, each user's session taking the draw the strategy gave it: the users, their
/// conversations and prompts are those of a run that holds its dataset. Conversation `i`
/// is the same whatever the dataset's size, so a small held dataset and a large composed
/// one give the same run while the users draw within the small one.
#[test]
fn user_centric_on_demand_sends_what_a_held_dataset_sends() {
    let mock = Mock::start(&["--ttft-ms", "1", "--output-tokens", "2"]);
    let run = |entries: &str| {
        let dir = run_dir(&format!("user-centric-entries-{entries}"));
        profile(
            &mock,
            &dir,
            &[
                "--user-centric-rate",
                "40",
                "--num-users",
                "3",
                "--session-turns-mean",
                "2",
                "--request-count",
                "12",
                "--warmup-request-count",
                "4",
                "--random-seed",
                "2",
                "--isl",
                "550",
                "--num-dataset-entries",
                entries,
            ],
        );
        let log = std::fs::read_to_string(dir.join("logs").join("aiperf.log")).expect("log");
        let on_demand = log.contains("composing the dataset's conversations as sessions take");
        let text = std::fs::read_to_string(dir.join("inputs.json")).expect("inputs.json");
        let inputs: Value = serde_json::from_str(&text).expect("valid inputs.json");
        // (phase, conversation, user (profiling), turn, input tokens), in schedule order.
        let mut sent: Vec<(String, String, String, u64, u64)> = schedule(&read_records(&dir))
            .into_iter()
            .map(|(_, _, r)| {
                let m = &r["metadata"];
                let text = |k: &str| m[k].as_str().unwrap_or_default().to_owned();
                let phase = text("benchmark_phase");
                // A warmup session's correlation id is a random UUID, seeded or not.
                let user = if phase == "profiling" {
                    text("x_correlation_id")
                } else {
                    "-".into()
                };
                let isl = r["metrics"]["input_sequence_length"]["value"].as_u64();
                let turn = m["turn_index"].as_u64().unwrap_or(99);
                (phase, text("conversation_id"), user, turn, isl.unwrap_or(0))
            })
            .collect();
        // Later turns wait for responses: only the set is the schedule's.
        sent.sort_unstable();
        let _ = std::fs::remove_dir_all(&dir);
        (on_demand, inputs, sent)
    };
    let (held_on_demand, held_inputs, held) = run("24");
    let (on_demand, inputs, composed) = run("2000");
    assert_eq!((held_on_demand, on_demand), (false, true));
    assert_eq!(composed, held);
    assert_eq!(composed.len(), 16);
    // Warmup sessions 0 and 1; the users after the draw AIPerf's warmup drops, from 3.
    let profiling: Vec<&str> = composed
        .iter()
        .filter(|s| s.0 == "profiling")
        .map(|s| s.1.as_str())
        .collect();
    assert_eq!(profiling.first(), Some(&"session_000003"));
    // A second turn sends the history: the first prompt, its reply and its own prompt.
    let isl = |turn| if turn == 0 { 550 } else { 1104 };
    assert!(composed.iter().all(|s| s.4 == isl(s.3)), "{composed:?}");
    // Every conversation listed, in order, each as the held run lists it.
    let listed = inputs["data"].as_array().expect("data");
    let held_listed = held_inputs["data"].as_array().expect("data");
    assert_eq!((listed.len(), held_listed.len()), (2000, 24));
    assert_eq!(&listed[..24], &held_listed[..]);
    assert_eq!(listed[1999]["session_id"], "session_001999");
}

#[test]
fn gamma_smoothness_shapes_the_merged_schedule() {
    core_binary();
    let mock = Mock::start(&["--ttft-ms", "1", "--output-tokens", "2"]);
    let dir = run_dir("gamma");
    // --arrival-smoothness alone selects the gamma pattern, as in AIPerf.
    profile(
        &mock,
        &dir,
        &[
            "--request-rate",
            "200",
            "--arrival-smoothness",
            "4",
            "--request-count",
            "600",
            "--workers",
            "2",
            "--random-seed",
            "3",
            "--isl",
            "16",
        ],
    );
    let records = read_records(&dir);
    assert_eq!(records.len(), 600);
    let intended: Vec<f64> = schedule(&records).iter().map(|r| r.0).collect();
    let gaps: Vec<f64> = intended.windows(2).map(|w| w[1] - w[0]).collect();
    let (mean, cv) = mean_and_cv(&gaps);
    // Two workers thin one gamma sequence: the merge keeps CV = 1/sqrt(4) = 0.5 (a merge
    // of two independent gamma processes would be near 0.7).
    assert!((mean - 5.0).abs() < 0.5, "mean gap {mean} ms");
    assert!((cv - 0.5).abs() < 0.08, "cv {cv}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A rate capped by `--concurrency`, as AIPerf runs it: an arrival that finds every slot
/// busy is skipped, not queued, so each request leaves at its own arrival instant (no
/// lateness builds up), the run says how many were skipped, and the client is not blamed.
#[test]
fn a_rate_capped_by_concurrency_skips_arrivals_without_a_slot() {
    core_binary();
    let mock = Mock::start(&["--ttft-ms", "100", "--output-tokens", "2"]);
    let dir = run_dir("rate-capped");
    let output = profile(
        &mock,
        &dir,
        &[
            "--request-rate",
            "50",
            "--arrival-pattern",
            "constant",
            "--concurrency",
            "1",
            "--benchmark-duration",
            "1.5",
        ],
    );
    let records = read_records(&dir);
    // One slot, ~100 ms requests, an arrival every 20 ms: a request at most every 120 ms.
    let sent = records.len();
    assert!((11..=16).contains(&sent), "{sent} requests");
    let json = read_json(&dir);
    let health = &json["client_health"];
    let skipped = health["skipped_arrivals"]
        .as_u64()
        .expect("skipped_arrivals");
    // 75 arrivals in 1.5 s, less those sent.
    assert!(
        (70..=76).contains(&(skipped + sent as u64)),
        "{skipped} skipped + {sent} sent"
    );
    // Skipped arrivals are not lateness: a queue behind the slot would make every request
    // ~100 ms late. (The bound is far from both: on a machine busy with other tests,
    // lateness p99 has reached 2.4 ms for reasons of the machine's own.)
    let lateness = stat(&json, "scheduling_lateness", "p99");
    assert!(lateness < 20.0, "lateness p99 {lateness} ms; {health}");
    // Each request left on an arrival of the 20 ms grid.
    let intended: Vec<i128> = records.iter().map(|r| ns(r, "credit_issued_ns")).collect();
    for pair in intended.windows(2) {
        let gap_ms = (pair[1] - pair[0]) as f64 / 1e6;
        let ticks = gap_ms / 20.0;
        assert!(
            (ticks - ticks.round()).abs() < 0.01,
            "gap {gap_ms} ms off the grid"
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let console =
        std::fs::read_to_string(dir.join("profile_export_console.txt")).expect("console text");
    let note = format!(
        "Note: {skipped} scheduled arrivals were skipped because the one --concurrency slot \
         was busy (as AIPerf does): the rate sent was below the rate asked."
    );
    assert!(console.contains(&note), "{console}");
    // Skipping is the server's doing, never a reason to call the client the bottleneck
    // (a busy machine may still add a lateness reason of its own).
    let reasons = health["reasons"].to_string();
    assert!(!reasons.contains("skip"), "{reasons}\n{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// AIPerf 0.13's rate loop under its rate ramp (`timing/phase/runner.py`
/// `_create_rampers`, `timing/ramping.py`, `timing/strategies/request_rate.py`), for a
/// constant pattern, in seconds from the phase start: the rate starts at
/// `target * 0.1 / duration` and is set to the ramp's value every 0.1 s (the target from
/// the first update at or past the duration); each send is the previous one plus
/// `1/rate`, and a rate change moves the next send to `change + 1/new rate` when that is
/// earlier.
fn aiperf_ramp_sends(target: f64, duration: f64, n: usize) -> Vec<f64> {
    let u = 0.1;
    let start = target * u / duration;
    let rate_at = |k: u32| {
        let t = f64::from(k) * u;
        if t >= duration - 1e-12 {
            target
        } else {
            start + (target - start) * t / duration
        }
    };
    let (mut rate, mut k, mut next) = (start, 1u32, 1.0 / start);
    let mut sends = Vec::new();
    while sends.len() < n {
        while f64::from(k) * u < next && rate != target {
            rate = rate_at(k);
            next = next.min(f64::from(k) * u + 1.0 / rate);
            k += 1;
        }
        sends.push(next);
        next += 1.0 / rate;
    }
    sends
}

#[test]
fn a_rate_ramp_sends_as_aiperf_loop_does() {
    core_binary();
    let mock = Mock::start(&["--ttft-ms", "1", "--output-tokens", "2"]);
    let dir = run_dir("ramp");
    // 100 req/s after a 2 s ramp from 5 req/s, over two workers: each keeps every other
    // send of the one loop.
    profile(
        &mock,
        &dir,
        &[
            "--request-rate",
            "100",
            "--arrival-pattern",
            "constant",
            "--request-rate-ramp-duration",
            "2",
            "--request-count",
            "150",
            "--workers",
            "2",
            "--isl",
            "16",
        ],
    );
    let records = read_records(&dir);
    assert_eq!(records.len(), 150);
    let json = read_json(&dir);
    let rows = schedule(&records);
    let intended: Vec<f64> = rows
        .iter()
        .map(|r| since_start(&json, ns(r.2, "credit_issued_ns")))
        .collect();
    let aiperf = aiperf_ramp_sends(100.0, 2.0, 150);
    // To the microsecond (the summary's start time has no more): the schedule is computed.
    for (k, (got, want)) in intended.iter().zip(&aiperf).enumerate() {
        assert!(
            (got - want).abs() < 2e-6,
            "send {k} at {got} s, AIPerf's loop sends at {want} s"
        );
    }
    // The start rate's 200 ms stands (at 0.1 s, 0.1 + 1/9.75 s is later); then the rate
    // set at 0.2 s cuts the next 200 ms short to 1/14.5 s. 98 sends within the ramp.
    assert!(
        (intended[0] - 0.2).abs() < 2e-6,
        "first send {} s",
        intended[0]
    );
    assert!(
        (intended[1] - (0.2 + 1.0 / 14.5)).abs() < 2e-6,
        "{}",
        intended[1]
    );
    assert_eq!(intended.iter().filter(|&&t| t < 2.0).count(), 98);
    // After the ramp: exactly 10 ms apart.
    let after: Vec<f64> = intended.iter().copied().filter(|&t| t >= 2.01).collect();
    assert!(after.len() > 20, "{} requests after the ramp", after.len());
    for w in after.windows(2) {
        assert!((w[1] - w[0] - 0.01).abs() < 1e-6, "gap {} s", w[1] - w[0]);
    }
    for (intended, actual, record) in &rows {
        assert!(
            (-0.5..=10.0).contains(&(actual - intended)),
            "sent at {actual} ms, schedule {intended} ms: {record}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn concurrency_ramp_ends_when_the_count_is_reached() {
    core_binary();
    let mock = Mock::start(&["--ttft-ms", "20", "--output-tokens", "2"]);
    let dir = run_dir("conc-ramp-count");
    // The second worker's first slot comes after 33.3 s of the ramp; eight requests take
    // a quarter of a second on the first one, and the run must end with them.
    let started = std::time::Instant::now();
    profile(
        &mock,
        &dir,
        &[
            "--concurrency",
            "4",
            "--concurrency-ramp-duration",
            "100",
            "--request-count",
            "8",
            "--workers",
            "2",
            "--isl",
            "16",
        ],
    );
    let took = started.elapsed().as_secs_f64();
    assert_eq!(read_records(&dir).len(), 8);
    assert!(took < 5.0, "the run took {took:.1} s for 8 requests");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A concurrency ramp steps as AIPerf's does: the k-th slot opens once the ramp reaches
/// k, so from 1 to 4 over 1 s the second request in flight starts at 333 ms, not when the
/// value rounds to 2 (167 ms).
#[test]
fn concurrency_ramp_opens_each_slot_when_the_ramp_reaches_it() {
    core_binary();
    let mock = Mock::start(&["--ttft-ms", "100", "--output-tokens", "1"]);
    let dir = run_dir("conc-ramp-steps");
    profile(
        &mock,
        &dir,
        &[
            "--concurrency",
            "4",
            "--concurrency-ramp-duration",
            "1",
            "--request-count",
            "20",
            "--workers",
            "1",
        ],
    );
    let records = read_records(&dir);
    assert_eq!(records.len(), 20);
    let spans: Vec<(i128, i128)> = records
        .iter()
        .map(|r| (ns(r, "request_start_ns"), ns(r, "request_end_ns")))
        .collect();
    let zero = spans.iter().map(|s| s.0).min().unwrap_or(0);
    // The first request to start while another is in flight.
    let overlapping = spans
        .iter()
        .filter(|(start, _)| spans.iter().any(|(s, e)| s < start && start < e))
        .map(|(start, _)| (start - zero) as f64 / 1e6)
        .fold(f64::MAX, f64::min);
    assert!(
        (332.0..345.0).contains(&overlapping),
        "a second request in flight from {overlapping} ms"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The records of each session (by correlation id), in turn order.
fn sessions(records: &[Value]) -> std::collections::BTreeMap<String, Vec<&Value>> {
    let mut by_session: std::collections::BTreeMap<String, Vec<&Value>> = Default::default();
    for r in records {
        let id = r["metadata"]["x_correlation_id"].as_str().unwrap_or("");
        by_session.entry(id.to_owned()).or_default().push(r);
    }
    for turns in by_session.values_mut() {
        turns.sort_by_key(|r| r["metadata"]["turn_index"].as_u64());
    }
    by_session
}

#[test]
fn trace_delay_counts_from_the_previous_response() {
    core_binary();
    // Each response ends 100 ms after its request arrives (no streaming, one token).
    let mock = Mock::start(&["--ttft-ms", "100", "--output-tokens", "1"]);
    let dir = run_dir("trace-delay");
    let inputs = run_dir("trace-delay-input");
    let trace = write_file(
        &inputs,
        "sessions.jsonl",
        concat!(
            r#"{"session_id": "s", "text": "first", "timestamp": 0, "output_length": 1}"#,
            "\n",
            r#"{"session_id": "s", "text": "second", "delay": 50, "output_length": 1}"#,
            "\n",
        ),
    );
    let trace = trace.to_str().expect("utf-8 path");
    // single_turn is not a trace format: its timestamps replay when asked to. A rate
    // changes nothing, and the run says so.
    let output = profile(
        &mock,
        &dir,
        &[
            "--input-file",
            trace,
            "--fixed-schedule",
            "--request-rate",
            "5",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "--request-rate not used: a fixed_schedule run sends each request at its timestamp"
        ),
        "{stderr}"
    );
    let records = read_records(&dir);
    assert_eq!(records.len(), 2);
    assert!(errors(&records).is_empty(), "{:?}", errors(&records));
    let by_session = sessions(&records);
    // Correlation ids are per sent session (UUIDs); the trace's id is the conversation's.
    let turns = by_session
        .values()
        .find(|turns| turns[0]["metadata"]["conversation_id"] == "s")
        .expect("the trace's session");
    assert_eq!(turns.len(), 2, "both turns in one session");
    let ms = |a: i128, b: i128| (b - a) as f64 / 1e6;
    let (start0, end0) = (
        ns(turns[0], "request_start_ns"),
        ns(turns[0], "request_end_ns"),
    );
    let start1 = ns(turns[1], "request_start_ns");
    let response = ms(start0, end0);
    // Lower bounds are exact (the mock is never early, the client never sends before
    // the schedule); upper bounds leave 5 ms each to the mock and the client for a
    // machine shared with builds.
    assert!(
        (100.0..105.0).contains(&response),
        "the mock answers in 100 ms, took {response}"
    );
    // Scheduled 50 ms after the client learned the response had ended (AIPerf: after the
    // credit's return), so about 150 ms after the first send (not 50, as when the delay
    // counted from the send); learning it takes the worker well under a millisecond (5 ms for a busy machine).
    let scheduled = ms(end0, ns(turns[1], "credit_issued_ns"));
    assert!(
        (50.0..55.0).contains(&scheduled),
        "second turn scheduled {scheduled} ms after the first response"
    );
    let after_response = ms(end0, start1);
    assert!(
        (50.0..55.0).contains(&after_response),
        "second turn sent {after_response} ms after the first response"
    );
    let after_send = ms(start0, start1);
    assert!(
        (150.0..160.0).contains(&after_send),
        "second turn {after_send} ms after the first send"
    );

    // --ignore-trace-delays drops the think time: the second turn follows the response.
    profile(
        &mock,
        &dir,
        &[
            "--input-file",
            trace,
            "--ignore-trace-delays",
            "--request-count",
            "2",
        ],
    );
    let records = read_records(&dir);
    let by_session = sessions(&records);
    let turns = by_session
        .values()
        .find(|turns| turns.len() == 2)
        .expect("both turns in one session");
    let after_response = ms(
        ns(turns[0], "request_end_ns"),
        ns(turns[1], "request_start_ns"),
    );
    assert!(
        (0.0..40.0).contains(&after_response),
        "second turn sent {after_response} ms after the first response"
    );
    assert_eq!(
        read_json(&dir)["input_config"]["datasets"][0]["ignore_trace_delays"],
        true
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&inputs);
}

#[test]
fn synthetic_conversations_send_their_history_after_each_delay() {
    core_binary();
    let mock = Mock::start(&["--ttft-ms", "10", "--itl-ms", "1", "--output-tokens", "5"]);
    let dir = run_dir("multi-turn");
    // Three sessions of three turns, 30 ms of think time each; the session count ends
    // the run.
    profile(
        &mock,
        &dir,
        &[
            "--streaming",
            "--isl",
            "12",
            "--osl",
            "5",
            "--conversation-num",
            "3",
            "--conversation-turn-mean",
            "3",
            "--conversation-turn-delay-mean",
            "20",
            "--conversation-turn-delay-ratio",
            "1.5",
            "--concurrency",
            "3",
            "--random-seed",
            "5",
        ],
    );
    let records = read_records(&dir);
    assert_eq!(records.len(), 9, "three sessions of three turns");
    assert!(errors(&records).is_empty(), "{:?}", errors(&records));
    let by_session = sessions(&records);
    assert_eq!(by_session.len(), 3);
    let metric = |r: &Value, tag: &str| {
        r["metrics"][tag]["value"]
            .as_f64()
            .unwrap_or_else(|| panic!("{tag} missing from {r}"))
    };
    for (id, turns) in &by_session {
        assert_eq!(turns.len(), 3, "{id}");
        for (k, turn) in turns.iter().enumerate() {
            assert_eq!(turn["metadata"]["turn_index"], k as u64, "{id}");
            // The mock counts the words of every message: this turn's 12, and each
            // earlier turn's 12 plus the 5-word reply it got.
            let words = (12 * (k + 1) + 5 * k) as f64;
            assert_eq!(metric(turn, "usage_prompt_tokens"), words, "{id} turn {k}");
            // The client counts the same texts joined by spaces.
            let isl = metric(turn, "input_sequence_length");
            assert!(
                (words..=words + 2.0 * k as f64).contains(&isl),
                "{id} turn {k}: ISL {isl}, {words} words"
            );
        }
        for pair in turns.windows(2) {
            // 20 ms drawn exactly (no deviation), times 1.5, from the response's end (as
            // the worker learned it, well under a millisecond after its last bytes).
            let end = ns(pair[0], "request_end_ns");
            let scheduled = (ns(pair[1], "credit_issued_ns") - end) as f64 / 1e6;
            assert!(
                (30.0..35.0).contains(&scheduled),
                "{id}: scheduled {scheduled} ms"
            );
            let gap = (ns(pair[1], "request_start_ns") - end) as f64 / 1e6;
            // The send itself may be late on a machine shared with builds.
            assert!((30.0..40.0).contains(&gap), "{id}: {gap} ms of think time");
        }
    }
    // Both limits at once, over two workers: the session limit stops new sessions
    // without using up a request the started ones still have to send.
    profile(
        &mock,
        &dir,
        &[
            "--conversation-num",
            "3",
            "--conversation-turn-mean",
            "3",
            "--request-count",
            "9",
            "--concurrency",
            "2",
        ],
    );
    let records = read_records(&dir);
    assert_eq!(records.len(), 9, "three sessions of three turns");
    assert!(sessions(&records).values().all(|turns| turns.len() == 3));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A rate run's later turns go on the rate's ticks, as AIPerf 0.13's: its loop gives
/// each tick to a later turn waiting for one (its response back, its delay over) and
/// only otherwise to a new session, so the run, later turns included, goes at the rate.
/// Sent right after the response instead, 4-turn sessions at 50/s went out at 195/s.
#[test]
fn a_rate_sends_later_turns_on_its_ticks() {
    core_binary();
    let mock = Mock::start(&["--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "5"]);
    let dir = run_dir("paced-turns");
    // No session limit: every tick has a later turn or a new session to send, on any
    // number of workers (each sends its own sessions' turns on its own ticks).
    profile(
        &mock,
        &dir,
        &[
            "--streaming",
            "--isl",
            "20",
            "--osl",
            "5",
            "--conversation-turn-mean",
            "4",
            "--request-count",
            "40",
            "--request-rate",
            "50",
            "--arrival-pattern",
            "constant",
        ],
    );
    let json = read_json(&dir);
    let records = read_records(&dir);
    assert_eq!(records.len(), 40);
    assert!(errors(&records).is_empty(), "{:?}", errors(&records));
    let due_ms = |r: &Value| (since_start(&json, ns(r, "credit_issued_ns")) * 1e3).round() as i64;
    // Each request is due at the tick it went on: every tick of the 20 ms grid, once.
    let mut due: Vec<i64> = records.iter().map(due_ms).collect();
    due.sort_unstable();
    assert_eq!(due, (1..=40).map(|k| 20 * k).collect::<Vec<i64>>());
    // AIPerf 0.13 read 49.2 of a run like this one; 40 requests over 810 ms is 49.4.
    let throughput = json["request_throughput"]["avg"]
        .as_f64()
        .expect("throughput");
    assert!(
        (45.0..51.0).contains(&throughput),
        "{throughput} requests/s"
    );
    let mut starts: Vec<i128> = records.iter().map(|r| ns(r, "request_start_ns")).collect();
    starts.sort_unstable();
    let sent_at = 39.0 / ((starts[39] - starts[0]) as f64 / 1e9);
    assert!(
        (48.0..52.0).contains(&sent_at),
        "sent at {sent_at} requests/s"
    );
    let by_session = sessions(&records);
    assert_eq!(by_session.len(), 10, "ten sessions of four turns");
    for (id, turns) in &by_session {
        assert_eq!(turns.len(), 4, "{id}");
        for pair in turns.windows(2) {
            // A later turn takes a tick after the previous response: never the same tick.
            let apart = due_ms(pair[1]) - due_ms(pair[0]);
            assert!(apart >= 20, "{id}: turns due {apart} ms apart");
            let after = ns(pair[1], "request_start_ns") - ns(pair[0], "request_end_ns");
            assert!(
                after > 0,
                "{id}: a turn sent before the previous response ended"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A later turn waits for its delay, then for the next tick; a tick that finds no turn
/// waiting starts a session, and once every session has started, passes unused. This is
/// the schedule AIPerf 0.13 sent for this run (one worker, as its single loop).
#[test]
fn a_later_turn_takes_the_first_tick_after_its_delay() {
    core_binary();
    let mock = Mock::start(&["--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "5"]);
    let dir = run_dir("paced-turn-delay");
    // Ticks every 50 ms; a turn is ready about 70 ms after its previous one went (10 ms
    // of response, 60 of delay): 20 ms after one tick, 30 before the next.
    profile(
        &mock,
        &dir,
        &[
            "--streaming",
            "--isl",
            "20",
            "--osl",
            "5",
            "--conversation-num",
            "3",
            "--conversation-turn-mean",
            "3",
            "--conversation-turn-delay-mean",
            "60",
            "--request-count",
            "9",
            "--request-rate",
            "20",
            "--arrival-pattern",
            "constant",
            "--workers",
            "1",
        ],
    );
    let json = read_json(&dir);
    let records = read_records(&dir);
    assert_eq!(records.len(), 9);
    assert!(errors(&records).is_empty(), "{:?}", errors(&records));
    let by_session = sessions(&records);
    let mut session_of = std::collections::BTreeMap::new();
    for (id, turns) in &by_session {
        session_of.insert(ns(turns[0], "credit_issued_ns"), id.clone());
        for pair in turns.windows(2) {
            let after = ns(pair[1], "request_start_ns") - ns(pair[0], "request_end_ns");
            assert!(
                after >= 60_000_000,
                "{id}: {after} ns after the previous response"
            );
        }
    }
    // Sessions numbered in the order they started.
    let number: std::collections::BTreeMap<String, usize> = session_of
        .into_values()
        .enumerate()
        .map(|(k, id)| (id, k + 1))
        .collect();
    let mut sent: Vec<(i64, String)> = records
        .iter()
        .map(|r| {
            let id = r["metadata"]["x_correlation_id"]
                .as_str()
                .expect("a session id");
            let due = (since_start(&json, ns(r, "credit_issued_ns")) * 1e3).round() as i64;
            let turn = &r["metadata"]["turn_index"];
            (due, format!("s{}t{turn}", number[id]))
        })
        .collect();
    sent.sort();
    let expected = [
        (50, "s1t0"),
        (100, "s2t0"),
        (150, "s1t1"),
        (200, "s2t1"),
        (250, "s1t2"),
        (300, "s2t2"),
        (350, "s3t0"),
        // 400: s3's turn is not ready and every session has started.
        (450, "s3t1"),
        (550, "s3t2"),
    ];
    let expected: Vec<(i64, String)> = expected.iter().map(|&(t, s)| (t, s.to_owned())).collect();
    assert_eq!(sent, expected);
    // AIPerf 0.13 read 16.02 requests/s.
    let throughput = json["request_throughput"]["avg"]
        .as_f64()
        .expect("throughput");
    assert!(
        (15.0..16.5).contains(&throughput),
        "{throughput} requests/s"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// BC-27: a concurrency limit is exact, whatever the requests' lengths. At
/// `--concurrency 8` with output lengths from 0 to about 40 tokens (requests of 20 to
/// 220 ms, ending out of order), the server never holds more than 8 at once, and each
/// request after the first 8 starts after a completion freed its slot: the (8 + j)-th
/// send follows the j-th completion, on the client's own clock, and closely.
#[test]
fn a_concurrency_limit_is_exact_whatever_the_request_lengths() {
    use aiperf_tests::mock::{spawn_background, MockConfig};
    core_binary();
    let mock = spawn_background(MockConfig {
        ttft: std::time::Duration::from_millis(20),
        itl: std::time::Duration::from_millis(5),
        ..MockConfig::default()
    })
    .expect("start the in-process mock");
    let dir = run_dir("bc27");
    common::profile_url(
        &mock.url(),
        &dir,
        &[
            "--concurrency",
            "8",
            "--request-count",
            "120",
            "--output-tokens-mean",
            "20",
            "--output-tokens-stddev",
            "10",
        ],
    );
    assert_eq!(mock.stats().peak_in_flight(), 8, "the server's own count");
    let records = read_records(&dir);
    assert_eq!(records.len(), 120);
    assert!(errors(&records).is_empty(), "{:?}", errors(&records));
    let mut starts: Vec<i128> = records.iter().map(|r| ns(r, "request_start_ns")).collect();
    let mut ends: Vec<i128> = records.iter().map(|r| ns(r, "request_end_ns")).collect();
    starts.sort_unstable();
    ends.sort_unstable();
    let mut gaps: Vec<f64> = starts[8..]
        .iter()
        .zip(&ends)
        .map(|(start, end)| (start - end) as f64 / 1e6)
        .collect();
    assert!(
        gaps.iter().all(|&gap| gap >= 0.0),
        "a send before a slot was free: {gaps:?}"
    );
    gaps.sort_by(f64::total_cmp);
    // The target (1 ms) is for a quiet machine; a test shares its two cores.
    let median = gaps[gaps.len() / 2];
    assert!(median < 2.0, "median slot refill {median} ms: {gaps:?}");
    mock.shutdown().expect("clean shutdown");
    let _ = std::fs::remove_dir_all(&dir);
}
