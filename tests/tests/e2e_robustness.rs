//! End to end: runs that go wrong around the measurement (every request refused, a full
//! disk, absurd flags) still end with a clear message, every artifact they can write,
//! and an exit status that says what happened.

mod common;

use common::{read_json, run_dir, Mock};
use serde_json::Value;

use std::path::Path;
use std::process::Output;

/// Runs `profile` with artifacts in `dir` (not emptied: a test may prepare it), whatever
/// its exit status.
fn run(url: &str, dir: &Path, extra: &[&str]) -> Output {
    common::run_profile(&[url], dir, extra)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A port on loopback that nothing listens on: bound, then released.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// AIPerf 0.13 exits 1 when every request failed, and so do we; the console and the log
/// say so, with the most common error, every failure is still a record, and the summary
/// (which AIPerf leaves out) is written with its error summary.
#[test]
fn a_run_where_every_request_fails_warns_naming_the_top_error() {
    let dir = run_dir("all-refused");
    let _ = std::fs::remove_dir_all(&dir);
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}");
    let output = run(&url, &dir, &["--concurrency", "2", "--request-count", "30"]);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    // The refusal as AIPerf records aiohttp's error for it.
    let inner =
        format!("ConnectionRefusedError(111, \"Connect call failed ('127.0.0.1', {port})\")");
    let message = format!(
        "ClientConnectorError(ConnectionKey(host='127.0.0.1', port={port}, is_ssl=False, \
         ssl=True, proxy=None, proxy_auth=None, proxy_headers_hash=None, \
         server_hostname=None), {inner})"
    );
    let warning = format!(
        "WARNING: all 30 requests failed; most common error: ClientConnectorError: {message} \
         (30 requests). The metrics describe the failures, not the server."
    );
    assert!(
        stdout.contains(&warning),
        "no warning on the console:\n{stdout}"
    );
    assert!(
        stderr.contains("all 30 requests failed"),
        "not logged:\n{stderr}"
    );
    let log = std::fs::read_to_string(dir.join("logs/aiperf.log")).expect("log");
    assert!(log.contains("all 30 requests failed"), "{log}");
    let console =
        std::fs::read_to_string(dir.join("profile_export_console.txt")).expect("console export");
    assert!(console.contains(&warning), "{console}");
    let records = std::fs::read_to_string(dir.join("profile_export.jsonl")).expect("jsonl");
    assert_eq!(records.lines().count(), 30, "every failure is a record");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("profile_export_aiperf.json")).expect("summary"),
    )
    .expect("summary json");
    assert_eq!(json["error_request_count"]["avg"], 30.0);
    assert_eq!(
        json["error_summary"],
        serde_json::json!([{
            "error_details": {
                "type": "ClientConnectorError",
                "message": message,
                "cause": inner,
                "cause_chain": ["ClientConnectorError", "ConnectionRefusedError"],
            },
            "count": 30,
        }])
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The log file has the whole run: what was logged before the artifact directory was
/// known (here the flag check's warning) comes first, as on the console.
#[test]
fn the_log_file_has_what_was_logged_before_the_run() {
    let mock = Mock::start(&["--ttft-ms", "1", "--output-tokens", "2"]);
    let dir = run_dir("early-log");
    let _ = std::fs::remove_dir_all(&dir);
    let args = [
        "--endpoint-type",
        "embeddings",
        "--streaming",
        "--request-count",
        "3",
    ];
    let output = run(&mock.url, &dir, &args);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let log = std::fs::read_to_string(dir.join("logs/aiperf.log")).expect("log");
    let warned = log.find("endpoint `embeddings` does not stream; --streaming is ignored");
    let started = log.find("starting the measuring workers");
    assert!(warned.is_some() && warned < started, "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--failed-request-threshold`, as AIPerf 0.13's: once more than that share of the
/// profiling requests failed (judged as each ends, from max(concurrency, 10) on), no new
/// request goes out and those in flight are cancelled; the results so far are written,
/// marked incomplete, and the exit status is AIPerf's: 1 here, since none succeeded.
#[test]
fn too_many_failures_end_the_run_early() {
    common::core_binary();
    let dir = run_dir("failure-threshold");
    let _ = std::fs::remove_dir_all(&dir);
    let url = format!("http://127.0.0.1:{}", closed_port());
    let started = std::time::Instant::now();
    let output = run(
        &url,
        &dir,
        &[
            "--concurrency",
            "2",
            "--request-count",
            "1000000",
            "--failed-request-threshold",
            "0.5",
        ],
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "--failed-request-threshold exceeded: 10/10 = 1.000 > 0.500 (grace floor 10, \
             phase_index 0). Requesting PROFILE_CANCEL to terminate the run."
        ),
        "{stderr}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("WARNING: the run was ended early by --failed-request-threshold 0.5:"),
        "{stdout}"
    );
    let json = read_json(&dir);
    assert_eq!(json["was_cancelled"], true);
    assert_eq!(json["is_complete"], false);
    let count = json["error_request_count"]["avg"].as_f64().unwrap_or(0.0);
    // AIPerf sent 10 here. The worker that ends the tenth stops the run before it sends
    // again; the other may have sent one more by then, or be sending it.
    assert!((10.0..=12.0).contains(&count), "{count} failed");
    assert_eq!(
        json["input_config"]["phases"][0]["failed_request_threshold"],
        0.5
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Against a server failing every second request, a threshold of 0.3 is crossed by the
/// tenth profiling record (5 of 10): AIPerf 0.13 then stops issuing and cancels what is
/// in flight, says so in its words, writes the results marked incomplete under its
/// banner, and exits 0 (some requests succeeded). The warmup's failures do not count,
/// and the profiling phase is AIPerf's `phase_index` 1 after it.
#[test]
fn a_crossed_failure_threshold_stops_at_once_and_exits_0() {
    let mock = Mock::start(&[
        "--fault",
        "http-500",
        "--fault-every",
        "2",
        "--ttft-ms",
        "200",
        "--output-tokens",
        "2",
    ]);
    let dir = run_dir("failure-threshold-half");
    let _ = std::fs::remove_dir_all(&dir);
    let output = run(
        &mock.url,
        &dir,
        &[
            "--concurrency",
            "1",
            "--request-count",
            "1000",
            "--warmup-request-count",
            "2",
            "--failed-request-threshold",
            "0.3",
        ],
    );
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(
            "--failed-request-threshold exceeded: 5/10 = 0.500 > 0.300 (grace floor 10, \
             phase_index 1). Requesting PROFILE_CANCEL to terminate the run."
        ),
        "{stderr}"
    );
    // The eleventh request, sent as the tenth ended, is cancelled at once rather than
    // after the grace period: a success takes 200 ms, so it cannot have finished.
    let json = read_json(&dir);
    assert_eq!(json["request_count"]["avg"], 5.0, "{stdout}");
    assert_eq!(json["error_request_count"]["avg"], 5.0);
    assert_eq!(json["was_cancelled"], true);
    assert_eq!(json["is_complete"], false);
    assert_eq!(
        json["incomplete_reason"],
        "Run cancelled before all records were processed."
    );
    let records = common::read_records(&dir);
    let profiling = records
        .iter()
        .filter(|r| r["metadata"]["benchmark_phase"] == "profiling")
        .count();
    assert!(
        (10..=11).contains(&profiling),
        "{profiling} profiling records"
    );
    let banner = "NVIDIA AIPerf | INCOMPLETE RESULTS\nRun cancelled before all records were \
                  processed.\nThese metrics were computed over a subset of the run and must \
                  not be compared against complete runs.\n";
    assert!(stdout.contains(banner), "{stdout}");
    let console = std::fs::read_to_string(dir.join("profile_export_console.txt")).expect("console");
    assert!(console.contains(banner), "{console}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A run where most requests succeed says nothing of the kind.
#[test]
fn a_healthy_run_has_no_failure_warning() {
    let mock = Mock::start(&["--ttft-ms", "5", "--output-tokens", "2"]);
    let dir = run_dir("no-warning");
    let _ = std::fs::remove_dir_all(&dir);
    let output = run(&mock.url, &dir, &["--request-count", "10"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(!text(&output.stdout).contains("WARNING"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A full disk: `profile_export.jsonl` and the CSV's temporary file are `/dev/full`,
/// whose every write fails with ENOSPC. The JSONL failure is reported at once, the run
/// completes, the console table and the JSON are still written, the CSV failure is
/// reported with its path, and the exit status is 1.
#[test]
fn a_full_disk_loses_only_the_files_it_cannot_write() {
    let mock = Mock::start(&["--ttft-ms", "5", "--output-tokens", "2"]);
    let dir = run_dir("disk-full");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("artifact dir");
    for name in ["profile_export.jsonl", "profile_export_aiperf.csv.partial"] {
        std::os::unix::fs::symlink("/dev/full", dir.join(name)).expect("symlink");
    }
    // Records are written in 64 KiB blocks: enough of them that the first write fails
    // while the run is going on.
    let output = run(
        &mock.url,
        &dir,
        &["--concurrency", "4", "--request-count", "400"],
    );
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    let jsonl = format!(
        "cannot write {}: No space left on device",
        dir.join("profile_export.jsonl").display()
    );
    let csv = format!(
        "cannot write {}: No space left on device",
        dir.join("profile_export_aiperf.csv").display()
    );
    assert!(stderr.contains(&jsonl), "{stderr}");
    assert!(stderr.contains(&csv), "{stderr}");
    // Reported once, at the first failure, and not for every record after it.
    assert_eq!(stderr.matches("ERROR").count(), 2, "{stderr}");
    assert!(stdout.contains("NVIDIA AIPerf | LLM Metrics"), "{stdout}");
    assert!(stdout.contains("JSON Export"), "{stdout}");
    assert!(!stdout.contains("CSV Export"), "{stdout}");
    assert_eq!(
        read_json(&dir)["request_count"]["avg"].as_f64(),
        Some(400.0),
        "the summary counts every request"
    );
    assert!(dir.join("profile_export_console.txt").exists());
    assert!(!dir.join("profile_export_aiperf.csv").exists());
    // The marker tools wait for still comes last, and says the results are partial.
    assert_eq!(
        std::fs::read_to_string(dir.join(".aiperf_results_ready.json")).expect("ready"),
        "{\"ready\":true,\"was_cancelled\":false,\"partial\":true}\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Absurd flags stop the binary at start-up with the validation's message (negative
/// numbers included: clap takes them as values), before any request is sent.
#[test]
fn absurd_flags_are_refused_at_start_up_with_their_message() {
    // Built first: the time bound below is the refusal's, not the build's.
    common::core_binary();
    let dir = run_dir("absurd");
    let url = format!("http://127.0.0.1:{}", closed_port());
    for (args, message) in [
        (
            &["--benchmark-duration", "1e12", "--request-count", "5"][..],
            "--benchmark-duration must be a number of seconds above 0 (at most 3.2e9), \
             got 1000000000000",
        ),
        (
            &["--synthetic-input-tokens-stddev", "1e9"],
            "must be at most 1000000 tokens, got 1000000000",
        ),
        (
            &["--conversation-turn-delay-mean", "1e300"],
            "(at most 3.2e12), got 1e300",
        ),
        (
            &["--goodput", "request_latency:-5"],
            "the threshold for 'request_latency' cannot be negative, got -5",
        ),
        (
            &["--request-rate", "-5"],
            "--request-rate must be a positive number, got -5",
        ),
        (&["--model", ""], "--model names cannot be empty"),
        (
            &["--arrival-pattern", "constant"],
            "arrival_pattern:constant: the `constant` arrival pattern needs --request-rate \
             (requests per second)",
        ),
        (
            &["--session-header", "content-length"],
            "--session-header content-length: the client sets Content-Length itself; name \
             another header",
        ),
        (
            &["--session-header", "X Session"],
            "transport:http: --session-header: invalid header name `X Session`",
        ),
        (
            &["--wait-for-model-interval", "1"],
            "--wait-for-model-interval has no effect unless --wait-for-model-timeout is \
             above 0, which turns the readiness probe on",
        ),
        (
            &["--request-content-type", "multipart/form-data"],
            "--request-content-type multipart/form-data is for endpoints that post forms \
             (such as video_generation); endpoint `chat` posts JSON",
        ),
        (
            &["--failed-request-threshold", "1.5"],
            "--failed-request-threshold is a share of requests from 0 to 1, got 1.5",
        ),
        (
            &["--warmup-grace-period", "2"],
            "--warmup-grace-period was given without a warmup: a warmup runs only with \
             --warmup-request-count, --num-warmup-sessions or --warmup-duration",
        ),
        (
            &["--warmup-request-count", "5", "--warmup-grace-period", "2"],
            "--warmup-grace-period requires --warmup-duration: a grace period follows a \
             timed warmup only",
        ),
        (
            &[
                "--warmup-request-count",
                "5",
                "--warmup-request-rate-ramp-duration",
                "2",
            ],
            "--warmup-request-rate-ramp-duration needs a paced warmup: give \
             --warmup-request-rate (or --request-rate)",
        ),
        (
            &["--num-users", "4"],
            "--num-users is the user count of --user-centric-rate, which is not given",
        ),
        (
            &["--arrival-smoothness", "2"],
            "--arrival-smoothness shapes the arrivals of --request-rate, which is not given",
        ),
        (
            &[
                "--request-rate",
                "5",
                "--arrival-smoothness",
                "2",
                "--arrival-pattern",
                "poisson",
            ],
            "--arrival-smoothness shapes the gamma arrival pattern, and --arrival-pattern \
             poisson does not use it",
        ),
        (
            &[
                "--request-rate",
                "10",
                "--arrival-pattern",
                "concurrency-burst",
            ],
            "--arrival-pattern concurrency_burst sends a request whenever a --concurrency \
             slot is free and does not use --request-rate: give --concurrency N",
        ),
        (
            &["--input-file", "absent.jsonl", "--isl", "100"],
            "--isl/--prompt-input-tokens-mean/--synthetic-input-tokens-mean is only \
             supported with synthetic datasets; remove --input-file",
        ),
        (
            &["--extra-inputs", r#"stop:["a","b"]"#],
            concat!(
                r#"--extra-inputs: User Config: stop:["a","b"] - each item must be in "#,
                r#"'key:value' format (items are split at every comma, as in AIPerf 0.13: "#,
                r#"give a value holding commas in a JSON object, such as --extra-inputs "#,
                r#"'{"stop": ["a", "b"]}')"#
            ),
        ),
        (
            &[
                "--input-file",
                "absent.jsonl",
                "--random-corpus-style",
                "sglang",
            ],
            "--random-corpus-style is not permitted with --input-file: it shapes synthetic \
             prompts only (AIPerf 0.13: benchmark.datasets.0.file.prompts.random_corpus_style: \
             Extra inputs are not permitted); remove it, or remove --input-file to use a \
             synthetic dataset",
        ),
        (
            &["--user-centric-rate", "5", "--num-users", "2"],
            "User-centric rate mode requires --session-turns-mean >= 2. For single-turn \
             workloads, use --request-rate instead.",
        ),
    ] {
        let _ = std::fs::remove_dir_all(&dir);
        let started = std::time::Instant::now();
        let output = run(&url, &dir, args);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(!dir.join("profile_export.jsonl").exists(), "{args:?} ran");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{args:?}"
        );
    }
    // A file that stops being text names the line where it does.
    let bad = dir.with_extension("latin1.jsonl");
    std::fs::write(&bad, b"{\"text\": \"a\"}\n{\"text\": \"caf\xe9\"}\n").expect("write");
    let path = bad.to_str().expect("a UTF-8 path");
    let output = run(&url, &dir, &["--input-file", path]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{path}:2: the file is not UTF-8 text")),
        "{stderr}"
    );
    let _ = std::fs::remove_file(&bad);
    // A byte order mark before the first row is not part of it.
    let marked = dir.with_extension("bom.jsonl");
    std::fs::write(&marked, "\u{feff}{\"text\": \"marked\"}\n").expect("write");
    let path = marked.to_str().expect("a UTF-8 path");
    let _ = std::fs::remove_dir_all(&dir);
    let output = run(&url, &dir, &["--input-file", path, "--request-count", "1"]);
    let stderr = text(&output.stderr);
    let inputs = std::fs::read_to_string(dir.join("inputs.json")).unwrap_or_default();
    assert!(
        inputs.contains(r#""content":"marked""#),
        "{stderr}\n{inputs}"
    );
    assert!(!stderr.contains("invalid JSON"), "{stderr}");
    // A trace offset without a replay is refused, as AIPerf refuses it (it was dropped).
    let _ = std::fs::remove_dir_all(&dir);
    let output = run(
        &url,
        &dir,
        &["--input-file", path, "--fixed-schedule-start-offset", "100"],
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "--fixed-schedule-{auto,start,end}-offset requires --fixed-schedule. Pass \
             --fixed-schedule with a trace file to enable offsets, or drop these flags."
        ),
        "{stderr}"
    );
    assert!(!dir.join("profile_export.jsonl").exists());
    let _ = std::fs::remove_file(&marked);
    // A file without rows says so, rather than that no loader recognises it.
    let empty = dir.with_extension("empty.jsonl");
    std::fs::write(&empty, "\n  \n").expect("write");
    let path = empty.to_str().expect("a UTF-8 path");
    let output = run(&url, &dir, &["--input-file", path]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{path} has no rows: it is empty or holds only blank lines"
        )),
        "{stderr}"
    );
    let _ = std::fs::remove_file(&empty);
    let _ = std::fs::remove_dir_all(&dir);
}

/// With no command the binary shows its help and exits 0, as `aiperf` does; `--version`
/// names the binary (it named the runtime library, `aiperf-runtime`).
#[test]
fn no_command_shows_help_and_the_version_names_the_binary() {
    let output = std::process::Command::new(common::core_binary())
        .output()
        .expect("run the core binary");
    assert_eq!(output.status.code(), Some(0));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("Usage: aiperf-core [OPTIONS] <COMMAND>"),
        "{stdout}"
    );
    assert!(stdout.contains("profile"), "{stdout}");
    let output = std::process::Command::new(common::core_binary())
        .arg("--version")
        .output()
        .expect("run the core binary");
    assert_eq!(output.status.code(), Some(0));
    let version = text(&output.stdout);
    assert_eq!(
        version,
        format!("aiperf-core {}\n", env!("CARGO_PKG_VERSION"))
    );
}

/// A `--url` that cannot be one is refused at start-up, naming the flag, before anything
/// is written or any name is looked up (it failed after `inputs.json`, at the resolver).
#[test]
fn a_url_that_cannot_be_one_is_refused_at_start_up() {
    let dir = run_dir("bad-url");
    let _ = std::fs::remove_dir_all(&dir);
    for (url, error) in [
        ("not a url", "invalid host `not a url` in URL `not a url`"),
        (
            "ftp://127.0.0.1:1",
            "unsupported URL scheme `ftp` (expected http or https)",
        ),
        (
            "http://127.0.0.1:99999",
            "invalid port in URL `http://127.0.0.1:99999`",
        ),
        (
            "http://127.0.0.1:0",
            "invalid port in URL `http://127.0.0.1:0`",
        ),
        (
            "http://[::1",
            "unclosed `[` around the IPv6 host in URL `http://[::1`",
        ),
    ] {
        let output = run(url, &dir, &["--request-count", "1"]);
        assert_eq!(output.status.code(), Some(1), "{url}");
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(&format!("--url {url}: {error}")),
            "{stderr}"
        );
        assert!(!dir.exists(), "{url}: nothing is written");
    }
    // The password never reaches the console, not even in the flag's echo.
    let output = run(
        "http://user:hunter2@127.0.0.1:1/v1",
        &dir,
        &["--request-count", "1"],
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(
            "--url http://<redacted>@127.0.0.1:1/v1: credentials in URL \
             `http://<redacted>@127.0.0.1:1/v1` are not supported; pass them as headers"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(!dir.exists(), "nothing is written");
    // A line break in the path would let the URL write headers of its own.
    let output = run(
        "http://127.0.0.1:1/v1 HTTP/1.1\r\nX-Injected: yes",
        &dir,
        &["--request-count", "1"],
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("has a space or control character in its path or query"),
        "{stderr}"
    );
    assert!(!dir.exists(), "nothing is written");
    // The password stays out of the messages when a typo or an unencoded `/` in it
    // hides the credentials too.
    for url in [
        "http//user:hunter2@127.0.0.1:1",
        "http://user:hun/ter2@127.0.0.1:1",
    ] {
        let output = run(url, &dir, &["--request-count", "1"]);
        assert_eq!(output.status.code(), Some(1), "{url}");
        let stderr = text(&output.stderr);
        assert!(
            !stderr.contains("hunter2") && !stderr.contains("ter2"),
            "{stderr}"
        );
        assert!(stderr.contains("<redacted>@127.0.0.1:1"), "{stderr}");
        assert!(!dir.exists(), "nothing is written");
    }
}

/// An AIPerf 0.13 flag this build lacks is named as such (clap's did-you-mean guessed an
/// unrelated flag of ours for them); a typo keeps the did-you-mean; AIPerf's switches
/// for what this build never collects are taken, and only `input_config` shows them, as
/// AIPerf's does.
#[test]
fn aiperf_flags_are_taken_or_refused_by_name() {
    let dir = run_dir("aiperf-flags");
    let url = format!("http://127.0.0.1:{}", closed_port());
    for (flag, value) in [
        ("--public-dataset", Some("sharegpt")),
        ("--export-http-trace", None),
    ] {
        let mut args = vec![flag];
        args.extend(value);
        let output = run(&url, &dir, &args);
        assert_eq!(output.status.code(), Some(1), "{flag}");
        assert_eq!(
            text(&output.stderr),
            format!(
                "error: {flag} is an AIPerf 0.13 flag this build does not support\n\nFor the \
                 flags this build takes, try 'aiperf-core profile --help'.\n"
            )
        );
    }
    let output = run(&url, &dir, &["--concurency", "2"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("error: unexpected argument '--concurency' found")
            && stderr.contains("tip: a similar argument exists: '--concurrency'"),
        "{stderr}"
    );
    assert!(!dir.exists(), "nothing is written for a refused flag");

    let mock = Mock::start(&["--ttft-ms", "1", "--output-tokens", "2"]);
    let output = run(
        &mock.url,
        &dir,
        &[
            "--request-count",
            "2",
            "--no-gpu-telemetry",
            "--no-server-metrics",
            "--no-auto-plot",
            "--no-sweep-table",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let config = &read_json(&dir)["input_config"];
    assert_eq!(
        config["gpu_telemetry"],
        serde_json::json!({"enabled": false})
    );
    assert_eq!(
        config["server_metrics"],
        serde_json::json!({"enabled": false})
    );
    assert_eq!(config["artifacts"]["auto_plot"], false);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--export-level summary` writes the summaries and no per-request file; an unknown level
/// is refused at start-up with the levels there are; `-v` is AIPerf's
/// debug logging; `--profile-export-prefix` renames the profile exports, and refuses a
/// path.
#[test]
fn export_level_and_verbosity_flags_behave_as_aiperf_s() {
    let mock = Mock::start(&["--ttft-ms", "2", "--output-tokens", "2"]);
    let dir = run_dir("export-level");
    let _ = std::fs::remove_dir_all(&dir);
    let output = run(
        &mock.url,
        &dir,
        &["--request-count", "5", "--export-level", "summary", "-v"],
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("DEBUG"), "-v logs at debug:\n{stderr}");
    assert_eq!(read_json(&dir)["request_count"]["avg"].as_f64(), Some(5.0));
    assert!(dir.join("profile_export_aiperf.csv").exists());
    assert!(!dir.join("profile_export.jsonl").exists());
    // Into a directory an earlier run filled: its records do not stay beside the new
    // summary, which does not describe them.
    let output = run(&mock.url, &dir, &["--request-count", "3"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(dir.join("profile_export.jsonl").exists());
    let output = run(
        &mock.url,
        &dir,
        &["--request-count", "4", "--export-level", "summary"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(
        !dir.join("profile_export.jsonl").exists(),
        "a stale record file"
    );
    assert_eq!(read_json(&dir)["request_count"]["avg"].as_f64(), Some(4.0));
    let _ = std::fs::remove_dir_all(&dir);

    // AIPerf's renaming of the profile exports; the console text keeps its name.
    let output = run(
        &mock.url,
        &dir,
        // An export's own ending comes off the prefix first, as in AIPerf.
        &[
            "--request-count",
            "5",
            "--profile-export-prefix",
            "run1.json",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    for name in ["run1.json", "run1.csv", "run1.jsonl", "run1_console.txt"] {
        assert!(dir.join(name).exists(), "{name} missing");
    }
    for name in [
        "profile_export_aiperf.json",
        "profile_export.jsonl",
        "profile_export_console.txt",
        "run1.json.json",
    ] {
        assert!(!dir.join(name).exists(), "{name} written");
    }
    let stdout = text(&output.stdout);
    let json_line = format!("JSON Export: {}", dir.join("run1.json").display());
    assert!(stdout.contains(&json_line), "{stdout}");
    let records = std::fs::read_to_string(dir.join("run1.jsonl")).expect("records");
    assert_eq!(records.lines().count(), 5);
    let _ = std::fs::remove_dir_all(&dir);
    let output = run(
        &mock.url,
        &dir,
        &[
            "--request-count",
            "5",
            "--profile-export-prefix",
            "sub/run1",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("`sub/run1` is not a file name"), "{stderr}");

    let output = run(
        &mock.url,
        &dir,
        &["--request-count", "5", "--export-level", "bogus"],
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("unknown export level `bogus` (expected one of: summary, records, raw)"),
        "{stderr}"
    );
    assert!(!dir.exists(), "nothing is written for a refused flag");
}

/// `--export-level raw` writes `profile_export_raw.jsonl` beside the records: one line per
/// request with the same metadata, the headers that went out (the API key and every
/// `--header` value redacted), the payload, the status and every event as it came,
/// `[DONE]` included, on AIPerf's clock.
#[test]
fn raw_export_holds_each_exchange_as_it_went_over_the_wire() {
    let mock = Mock::start(&["--ttft-ms", "2", "--itl-ms", "1", "--output-tokens", "3"]);
    let dir = run_dir("export-raw");
    let _ = std::fs::remove_dir_all(&dir);
    let before = monotonic_ns();
    let output = run(
        &mock.url,
        &dir,
        &[
            "--request-count",
            "4",
            "--streaming",
            "--export-level",
            "raw",
            "--api-key",
            "sk-very-secret",
            "--header",
            "X-Team:bench",
            "--profile-export-prefix",
            "run",
        ],
    );
    let after = monotonic_ns();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let raw = std::fs::read_to_string(dir.join("run_raw.jsonl")).expect("raw export");
    assert!(!raw.contains("sk-very-secret"), "the key leaked:\n{raw}");
    let records = std::fs::read_to_string(dir.join("run.jsonl")).expect("records");
    let records: Vec<Value> = records
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let lines: Vec<Value> = raw
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(lines.len(), 4);
    for (line, record) in lines.iter().zip(&records) {
        assert_eq!(line["metadata"], record["metadata"]);
        let headers = &line["request_headers"];
        assert_eq!(headers["Authorization"], "<redacted>");
        assert_eq!(headers["X-Session-Affinity"], "<redacted>");
        // Any `--header` may carry a credential: none of their values are written.
        assert_eq!(headers["X-Team"], "<redacted>");
        assert_eq!(headers["Content-Type"], "application/json");
        assert_eq!(headers["X-Request-ID"], record["metadata"]["x_request_id"]);
        assert_eq!(line["status"], 200);
        assert_eq!(line["payload"]["model"], "m");
        assert_eq!(line["payload"]["stream"], true);
        let responses = line["responses"].as_array().expect("responses");
        let data: Vec<&str> = responses
            .iter()
            .map(|r| r["packets"][0]["value"].as_str().expect("data packet"))
            .collect();
        assert_eq!(data.last(), Some(&"[DONE]"), "{data:?}");
        // A role prelude, three tokens, a finish chunk, a usage chunk and `[DONE]`, each
        // on the same clock as the request's start, after it and within the run.
        let content = data.iter().filter(|d| d.contains("\"content\":\"")).count();
        assert!(content >= 3, "{data:?}");
        let start = line["start_perf_ns"].as_u64().expect("start");
        assert!(
            before < start && start < after,
            "{start} outside {before}..{after}"
        );
        let mut last = start;
        for r in responses {
            let at = r["perf_ns"].as_u64().expect("perf_ns");
            assert!(last <= at && at < after, "{at} after {last}");
            last = at;
        }
        // TTFT in the records is the first content event's time after the start.
        let first_content = responses
            .iter()
            .find(|r| {
                r["packets"][0]["value"].as_str().is_some_and(|d| {
                    d.contains("\"content\":\"") && !d.contains("\"content\":\"\"")
                })
            })
            .and_then(|r| r["perf_ns"].as_u64())
            .expect("a content event");
        let ttft_ms = record["metrics"]["time_to_first_token"]["value"]
            .as_f64()
            .expect("ttft");
        assert!(
            ((first_content - start) as f64 / 1e6 - ttft_ms).abs() < 1e-3,
            "{first_content} - {start} vs {ttft_ms} ms"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `CLOCK_MONOTONIC` now, as `perf_ns` values read it.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    assert_eq!(
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) },
        0
    );
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The open-file limit: a low soft limit is lifted to the hard one (so 400 connections
/// work under `ulimit -Sn 256`), and a hard limit below what `--concurrency` needs is
/// warned about at start-up.
#[test]
fn the_open_file_limit_is_lifted_or_warned_about() {
    let mock = Mock::start(&["--ttft-ms", "50", "--output-tokens", "1"]);
    let dir = run_dir("nofile");
    let limited = |ulimit: &str, concurrency: &str| {
        let _ = std::fs::remove_dir_all(&dir);
        let _serial = common::measuring();
        common::profile_under_ulimit(ulimit, &mock.url, &dir)
            .args(["--concurrency", concurrency, "--request-count", concurrency])
            .output()
            .expect("run under ulimit")
    };
    // Lifting needs a hard limit above what 400 connections take.
    let hard = std::process::Command::new("sh")
        .args(["-c", "ulimit -Hn"])
        .output()
        .map(|o| text(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    if hard == "unlimited" || hard.parse::<u64>().is_ok_and(|h| h >= 1024) {
        let output = limited("-Sn 256", "400");
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{stderr}");
        assert!(!stderr.contains("open-file limit"), "{stderr}");
        let json = read_json(&dir);
        let count = json["request_count"]["avg"].as_f64();
        assert_eq!(count, Some(400.0), "{stderr}");
        assert!(json["error_summary"].as_array().is_some_and(Vec::is_empty));
    } else {
        eprintln!("hard open-file limit {hard}: the lifting half is not run");
    }

    let output = limited("-n 200", "300");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(
            "the open-file limit is 200, and --concurrency 300 over 1 URL(s) may need 300 \
             connections: requests past it fail with \"Too many open files\" (raise it with \
             `ulimit -n`)"
        ),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--wait-for-model-timeout`, AIPerf 0.13's readiness probe: a run whose server never
/// comes up fails with the probe's message once the timeout is spent, having written
/// nothing; a run whose server comes up late waits for it and then runs in full.
#[test]
fn the_run_waits_for_the_model_to_be_ready() {
    // Built before the clock starts.
    common::core_binary();
    let wait = [
        "--wait-for-model-timeout",
        "1",
        "--wait-for-model-interval",
        "0.2",
        "--request-count",
        "3",
    ];
    let url = format!("http://127.0.0.1:{}", closed_port());
    let dir = run_dir("readiness-never");
    let _ = std::fs::remove_dir_all(&dir);
    let started = std::time::Instant::now();
    let never = run(&url, &dir, &wait);
    let waited = started.elapsed().as_secs_f64();
    assert!(!never.status.success());
    let stderr = text(&never.stderr);
    assert!(
        stderr.contains(&format!(
            "--wait-for-model-timeout: {url}/v1/chat/completions did not answer model 'm' \
             within 1 s ("
        )),
        "{stderr}"
    );
    // The timeout itself, plus the process's start-up on a busy machine.
    assert!((1.0..10.0).contains(&waited), "failed after {waited} s");
    assert!(!dir.join("profile_export.jsonl").exists());

    // `models` mode: the mock lists the model only under the name it is given.
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}");
    let dir = run_dir("readiness-late");
    let _ = std::fs::remove_dir_all(&dir);
    let client = {
        let (url, dir) = (url.clone(), dir.clone());
        let mut args = wait.to_vec();
        args[1] = "20";
        args.extend(["--wait-for-model-mode", "both"]);
        std::thread::spawn(move || run(&url, &dir, &args))
    };
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let mut mock = std::process::Command::new(common::mock_binary())
        .args(["--port", &port.to_string(), "--model-name", "m"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start aiperf-mock");
    let late = client.join().expect("the client thread");
    let _ = mock.kill();
    let _ = mock.wait();
    common::assert_succeeded(&late);
    let json = read_json(&dir);
    assert_eq!(
        json["request_count"]["avg"], 3.0,
        "the probe is not a record"
    );
    let endpoint = &json["input_config"]["endpoint"];
    assert_eq!(endpoint["wait_for_model_timeout"], 20.0);
    assert_eq!(endpoint["wait_for_model_mode"], "both");
    assert_eq!(endpoint["wait_for_model_interval"], 0.2);

    // A Ctrl-C ends the wait at once, with the interrupted status, having sent nothing.
    let dir = run_dir("readiness-interrupted");
    let _ = std::fs::remove_dir_all(&dir);
    let url = format!("http://127.0.0.1:{}", closed_port());
    let child = std::process::Command::new(common::core_binary())
        .args([
            "profile",
            "--model",
            "m",
            "--url",
            &url,
            "--ui-type",
            "none",
        ])
        .args(["--artifact-dir", dir.to_str().expect("utf-8 path")])
        .args(["--wait-for-model-timeout", "60", "--request-count", "2"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the core binary");
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let signalled = std::time::Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let output = child.wait_with_output().expect("the run ends");
    let waited = signalled.elapsed().as_secs_f64();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(waited < 5.0, "ended {waited} s after the signal");
    assert!(
        stderr.contains("interrupted while waiting for the endpoint to be ready"),
        "{stderr}"
    );
    assert!(!dir.join("profile_export.jsonl").exists());
}

/// While requests are in flight the record thread only spools them; the records, metrics
/// and exports are made from the spool once the run is over, and it leaves no file. With
/// `--failed-request-threshold` each record is judged as it comes, so nothing is spooled.
#[test]
fn records_are_spooled_during_the_run_and_exported_after_it() {
    let mock = Mock::start(&["--output-tokens", "3"]);
    for (name, extra) in [
        ("spooled", &[][..]),
        ("spooled-live", &["--failed-request-threshold", "0.5"][..]),
    ] {
        let dir = run_dir(name);
        let mut args = vec!["--concurrency", "4", "--request-count", "300"];
        args.extend_from_slice(extra);
        let output = run(&mock.url, &dir, &args);
        common::assert_succeeded(&output);
        let records = common::read_records(&dir);
        let ids: std::collections::HashSet<&str> = records
            .iter()
            .map(|r| {
                r["metadata"]["x_request_id"]
                    .as_str()
                    .expect("x_request_id")
            })
            .collect();
        assert_eq!((records.len(), ids.len()), (300, 300), "{name}");
        let json = read_json(&dir);
        assert_eq!(json["request_count"]["avg"], 300.0, "{name}");
        let after = json["client_health"]["records_processed_after_run_s"]
            .as_f64()
            .expect("records_processed_after_run_s");
        match extra.is_empty() {
            true => assert!(after > 0.0, "{name}: {after}"),
            false => assert_eq!(after, 0.0, "{name}"),
        }
        let left: Vec<_> = std::fs::read_dir(&dir)
            .expect("artifacts")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("spool"))
            .collect();
        assert!(left.is_empty(), "{name}: {left:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// An artifact directory that is a file in the way is named as such, not as "File exists".
#[test]
fn an_artifact_directory_that_is_a_file_is_named_as_one() {
    let mock = Mock::start(&["--output-tokens", "2"]);
    let dir = run_dir("artifacts-are-a-file");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.parent().expect("parent")).expect("parent dir");
    std::fs::write(&dir, b"not a directory").expect("file");
    let output = run(&mock.url, &dir, &["--request-count", "1"]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    let expected = format!(
        "cannot create the artifact directory {}: it is a file, not a directory",
        dir.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    let _ = std::fs::remove_file(&dir);
}

/// Requests that fail because the client is out of file descriptors are the client's
/// failures: the health says so, counts them, and says what to do. A rate with no
/// concurrency cap opens a connection per request in flight; under `ulimit -n 64`
/// requests of 500 ms at 1,000/s need hundreds.
#[test]
fn running_out_of_file_descriptors_is_called_client_bound() {
    let _serial = common::measuring();
    let mock = Mock::start(&["--ttft-ms", "500", "--output-tokens", "1"]);
    let dir = run_dir("out-of-fds");
    let _ = std::fs::remove_dir_all(&dir);
    let output = common::profile_under_ulimit("-n 64", &mock.url, &dir)
        .args(["--request-rate", "1000", "--benchmark-duration", "0.3"])
        .args(["--workers", "1", "--isl", "8"])
        .output()
        .expect("run the core binary under a low open-file limit");
    let stdout = text(&output.stdout);
    let json = read_json(&dir);
    let health = &json["client_health"];
    let out = health["out_of_file_descriptors"].as_u64().expect("a count");
    let failed = common::read_records(&dir)
        .iter()
        .filter(|r| !r["error"].is_null())
        .count() as u64;
    assert!(out > 0, "{health}");
    assert_eq!(out, failed, "{health}");
    assert_eq!(health["client_bottleneck"], true);
    assert!(
        stdout.contains(&format!(
            "{out} connections could not be opened because the client ran out of file \
             descriptors (its open-file limit is 64)"
        )),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
