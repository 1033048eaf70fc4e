//! `--url-strategy` chooses among the url_selection_strategy plugins linked into the
//! binary, and every request goes where the chosen one says. The binary links the core
//! pack and `tests/fixtures/packs/last-url` (`last`: every request to the last `--url`);
//! two in-process `aiperf-mock` servers on 127.0.0.1 count the requests they receive.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use aiperf_tests::mock::{spawn_background, MockConfig, MockHandle};
use common::{build_binary, measuring, run_dir, workspace};

/// The core pack plus `last-url`, built once per test process.
fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let pack = workspace().join("tests/fixtures/packs/last-url");
        let plugins = format!("core,{}", pack.display());
        build_binary("aiperf-core-last-url", &plugins, "crate-last-url")
    })
}

fn mocks() -> (MockHandle, MockHandle) {
    let start = || spawn_background(MockConfig::default()).expect("start aiperf-mock");
    (start(), start())
}

/// A bounded chat run against both servers, `first` listed first; serialised with the
/// other measuring tests of this process.
fn profile(first: &MockHandle, second: &MockHandle, name: &str, extra: &[&str]) -> Output {
    let _serial = measuring();
    let dir = run_dir(name);
    let _ = std::fs::remove_dir_all(&dir);
    let output = Command::new(binary())
        .args(["profile", "--model", "m", "--endpoint-type", "chat"])
        .args(["--url", &first.url(), "--url", &second.url()])
        .args([
            "--request-timeout-seconds",
            "30",
            "--benchmark-grace-period",
            "5",
        ])
        .args(["--ui-type", "none", "--artifact-dir"])
        .arg(&dir)
        .args(extra)
        .output()
        .expect("run the binary");
    let _ = std::fs::remove_dir_all(&dir);
    output
}

fn succeeded(output: &Output) -> bool {
    if !output.status.success() {
        eprintln!(
            "profile failed: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    output.status.success()
}

#[test]
fn the_chosen_strategy_decides_which_server_gets_each_request() {
    let (first, second) = mocks();
    let args = [
        "--url-strategy",
        "last",
        "--request-count",
        "24",
        "--concurrency",
        "4",
        "--workers",
        "2",
    ];
    assert!(succeeded(&profile(&first, &second, "url-last", &args)));
    assert_eq!(
        (first.requests(), second.requests()),
        (0, 24),
        "`last` sends every request to the last --url"
    );
}

#[test]
fn round_robin_stays_the_default() {
    // One worker: the sequence starts at the first URL and alternates exactly.
    let (first, second) = mocks();
    let args = [
        "--request-count",
        "5",
        "--concurrency",
        "1",
        "--workers",
        "1",
    ];
    assert!(succeeded(&profile(&first, &second, "url-rr-1", &args)));
    assert_eq!((first.requests(), second.requests()), (3, 2));

    // Several workers each alternate from their own offset: shares within one per worker.
    let (first, second) = mocks();
    let args = [
        "--url-strategy",
        "round-robin",
        "--request-count",
        "40",
        "--concurrency",
        "4",
        "--workers",
        "2",
    ];
    assert!(succeeded(&profile(&first, &second, "url-rr-2", &args)));
    let (a, b) = (first.requests(), second.requests());
    assert_eq!(a + b, 40);
    assert!(a.abs_diff(b) <= 2, "round robin split 40 requests {a}/{b}");
}

#[test]
fn an_unlinked_strategy_is_refused_with_the_linked_ones() {
    let (first, second) = mocks();
    let output = profile(
        &first,
        &second,
        "url-unknown",
        &["--url-strategy", "random"],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("random") && stderr.contains("round_robin") && stderr.contains("last"),
        "{stderr}"
    );
    assert_eq!((first.requests(), second.requests()), (0, 0));
}
