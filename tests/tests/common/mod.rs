//! Shared pieces of the end-to-end tests: the core binary they all benchmark with,
//! `aiperf-mock` processes, and readers of the artifacts. Each test file uses a part.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};

use serde_json::Value;

/// The workspace root.
pub fn workspace() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    here.canonicalize().unwrap_or(here)
}

/// Artifacts of one test run; the pid keeps concurrent test processes apart.
pub fn run_dir(name: &str) -> PathBuf {
    workspace()
        .join("target")
        .join("e2e")
        .join(format!("{}-{name}", std::process::id()))
}

/// `profile` of the core binary against `url` into `dir`, without a UI, run by `sh` under
/// `ulimit LIMIT` (e.g. `-n 64`, `-Sn 256`): a test adds the run's own flags.
pub fn profile_under_ulimit(limit: &str, url: &str, dir: &Path) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("ulimit {limit} && exec \"$0\" \"$@\""))
        .arg(core_binary())
        .args(["profile", "--model", "m", "--url", url, "--ui-type", "none"])
        .arg("--artifact-dir")
        .arg(dir);
    command
}

/// `aiperf-gen build --plugins core`, once per test process; every test shares the binary.
/// Builds reuse the shared cargo target directory, so after the first only the generated
/// crate is compiled, and not even that when nothing changed.
pub fn core_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| build_binary("aiperf-core", "core", "crate"))
}

/// `aiperf-gen build --plugins PLUGINS` into `target/e2e/NAME`, the generated crate kept
/// in `target/e2e/CRATE_DIR`. Callers build each binary once per process.
pub fn build_binary(name: &str, plugins: &str, crate_dir: &str) -> PathBuf {
    let root = workspace().join("target").join("e2e");
    let out = root.join(name);
    let (out_arg, crate_arg) = (
        out.display().to_string(),
        root.join(crate_dir).display().to_string(),
    );
    let status = generator_main(&[
        "aiperf-gen",
        "build",
        "--plugins",
        plugins,
        "--out",
        &out_arg,
        "--emit-crate",
        &crate_arg,
    ]);
    assert_eq!(status, 0, "aiperf-gen build --plugins {plugins} failed");
    assert!(out.exists(), "no binary at {}", out.display());
    out
}

/// Runs the generator's command line in process, printing as the binary would.
pub fn generator_main(args: &[&str]) -> u8 {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    aiperf_gen::cli::run(
        args.iter().map(Into::into),
        &mut stdout.lock(),
        &mut stderr.lock(),
    )
}

/// The `aiperf-mock` binary cargo built for these tests.
pub fn mock_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_aiperf-mock"))
}

/// A running `aiperf-mock`, killed on drop.
pub struct Mock {
    child: Child,
    pub url: String,
}

impl Mock {
    pub fn start(args: &[&str]) -> Mock {
        let mut child = Command::new(mock_binary())
            .args(["--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiperf-mock");
        let stdout = child.stdout.take().expect("mock stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("mock banner");
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:") || w.starts_with("https://127.0.0.1:"))
            .unwrap_or_else(|| panic!("unexpected mock banner: {line:?}"))
            .to_owned();
        Mock { child, url }
    }

    /// A mock answering every request with `fault`.
    pub fn fault(fault: &str, extra: &[&str]) -> Mock {
        let mut args = vec!["--fault", fault];
        args.extend_from_slice(extra);
        Mock::start(&args)
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Measurements run one at a time: two benchmarks sharing two cores would measure
/// each other.
pub fn measuring() -> MutexGuard<'static, ()> {
    static MEASURING: Mutex<()> = Mutex::new(());
    MEASURING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `profile` against `mock` with artifacts in `dir` (emptied first); the run must
/// succeed. Runs are serialised (see [`measuring`]).
pub fn profile(mock: &Mock, dir: &Path, extra: &[&str]) -> std::process::Output {
    profile_url(&mock.url, dir, extra)
}

/// [`profile`] against any server on loopback, by its base URL.
pub fn profile_url(url: &str, dir: &Path, extra: &[&str]) -> std::process::Output {
    let _ = std::fs::remove_dir_all(dir);
    let output = run_profile(&[url], dir, extra);
    assert_succeeded(&output);
    output
}

/// Runs `profile --model m` against `urls` with artifacts in `dir` (left as it is: a
/// test may prepare it) and no UI, whatever its exit status. Runs are serialised (see
/// [`measuring`]).
pub fn run_profile(urls: &[&str], dir: &Path, extra: &[&str]) -> std::process::Output {
    let _serial = measuring();
    profile_command(urls, dir, extra)
        .output()
        .expect("run the core binary")
}

/// The command [`run_profile`] runs, for a test that starts and watches it itself.
pub fn profile_command(urls: &[&str], dir: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(core_binary());
    command.args(["profile", "--model", "m"]);
    for url in urls {
        command.args(["--url", url]);
    }
    command
        .args([
            "--artifact-dir",
            dir.to_str().expect("utf-8 path"),
            "--ui-type",
            "none",
        ])
        .args(extra);
    command
}

/// Fails the test, with the run's output, unless it exited 0.
pub fn assert_succeeded(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "profile failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `profile_export_aiperf.json` of a run.
pub fn read_json(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("profile_export_aiperf.json")).expect("json");
    serde_json::from_str(&text).expect("valid json")
}

/// `profile_export.jsonl` of a run, one value per request.
pub fn read_records(dir: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join("profile_export.jsonl")).expect("jsonl");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("jsonl line"))
        .collect()
}

/// Whether `id` is a version 4 UUID as Python's `uuid4()` prints it (AIPerf's unseeded
/// session ids, request and correlation ids).
pub fn is_uuid(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    lengths == [8, 4, 4, 4, 12]
        && groups[2].starts_with('4')
        && matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b')
        && id
            .bytes()
            .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A run-level metric object by tag.
pub fn metric<'a>(json: &'a Value, tag: &str) -> &'a Value {
    json.get(tag)
        .unwrap_or_else(|| panic!("metric {tag} missing from {json:#}"))
}

/// One statistic of a run-level metric.
pub fn stat(json: &Value, tag: &str, field: &str) -> f64 {
    metric(json, tag)[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{tag}.{field} not a number"))
}

/// A request's head and body, as the client wrote them.
pub type CapturedRequest = (String, Vec<u8>);

/// A non-streaming chat completion: what [`capture_requests`] answers.
pub const CHAT_ANSWER: &str = concat!(
    r#"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","#,
    r#""content":"hi there"},"finish_reason":"stop"}]}"#,
);

/// Serves `count` non-streaming chat requests on one keep-alive connection at a time and
/// hands back each request's head and body, as the client wrote them.
pub fn capture_requests(count: usize) -> (String, std::thread::JoinHandle<Vec<CapturedRequest>>) {
    capture_requests_answering(count, CHAT_ANSWER)
}

/// [`capture_requests`] answering every request with the JSON body `answer` (another
/// API's whole response).
pub fn capture_requests_answering(
    count: usize,
    answer: &'static str,
) -> (String, std::thread::JoinHandle<Vec<CapturedRequest>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let server = std::thread::spawn(move || {
        let mut requests = Vec::new();
        while requests.len() < count {
            let (stream, _) = listener.accept().expect("accept");
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut writer = stream;
            while requests.len() < count {
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    head.push_str(&line);
                    if line == "\r\n" {
                        break;
                    }
                }
                if head.is_empty() {
                    break;
                }
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                let mut body = vec![0; length];
                reader.read_exact(&mut body).expect("body");
                requests.push((head, body));
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
                    answer.len()
                );
                writer.write_all(response.as_bytes()).expect("answer");
            }
        }
        requests
    });
    (url, server)
}
