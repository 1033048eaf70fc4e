//! End to end: runs that go wrong around the measurement (every request refused, a full
//! disk, absurd flags) still end with a clear message, every artifact they can write,
//! and an exit status that says what happened.

mod common;

use common::{read_json, run_dir, Mock};

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

/// AIPerf exits 0 when every request failed (its results list the error metrics); so
/// do we, but the console and the log say so, with the most common error, and every
/// failure is still a record.
#[test]
fn a_run_where_every_request_fails_warns_naming_the_top_error() {
    let dir = run_dir("all-refused");
    let _ = std::fs::remove_dir_all(&dir);
    let url = format!("http://127.0.0.1:{}", closed_port());
    let output = run(&url, &dir, &["--concurrency", "2", "--request-count", "30"]);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let warning = "WARNING: all 30 requests failed; most common error: ClientConnectorError";
    assert!(
        stdout.contains(warning),
        "no warning on the console:\n{stdout}"
    );
    assert!(stdout.contains("Connection refused"), "{stdout}");
    assert!(
        stderr.contains("all 30 requests failed"),
        "not logged:\n{stderr}"
    );
    let log = std::fs::read_to_string(dir.join("logs/aiperf.log")).expect("log");
    assert!(log.contains("all 30 requests failed"), "{log}");
    let console =
        std::fs::read_to_string(dir.join("profile_export_console.txt")).expect("console export");
    assert!(console.contains(warning), "{console}");
    let records = std::fs::read_to_string(dir.join("profile_export.jsonl")).expect("jsonl");
    assert_eq!(records.lines().count(), 30, "every failure is a record");
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
            "(at most 1000000), got 1000000000",
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
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--export-level summary` writes the summaries and no per-request file; `raw`, which
/// this client does not write, is refused at start-up with the reason; `-v` is AIPerf's
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
    let _ = std::fs::remove_dir_all(&dir);

    // AIPerf's renaming of the profile exports; the console text keeps its name.
    let output = run(
        &mock.url,
        &dir,
        &["--request-count", "5", "--profile-export-prefix", "run1"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    for name in [
        "run1.json",
        "run1.csv",
        "run1.jsonl",
        "profile_export_console.txt",
    ] {
        assert!(dir.join(name).exists(), "{name} missing");
    }
    for name in ["profile_export_aiperf.json", "profile_export.jsonl"] {
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
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("`sub/run1` is not a file name"), "{stderr}");

    let output = run(
        &mock.url,
        &dir,
        &["--request-count", "5", "--export-level", "raw"],
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "`raw` (profile_export_raw.jsonl) is not written by this client; `records` writes \
             profile_export.jsonl"
        ),
        "{stderr}"
    );
    assert!(!dir.exists(), "nothing is written for a refused flag");
}
