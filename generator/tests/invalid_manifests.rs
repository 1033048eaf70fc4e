//! The invalid-manifest corpus: every directory under `tests/invalid/` is one case, run
//! through the real command line (`aiperf-gen validate`), whose exact output and exit code
//! must match the case's `expected` file.
//!
//! A case holds its manifests (and, for `--check-class` cases, a pack's `Cargo.toml` and
//! sources). Its arguments are `validate` plus the lines of its `args` file (`$CASE` is
//! the case's directory) or, without one, its YAML files (categories files first),
//! checked against `tests/fixtures/corpus/categories.yaml` unless it has its own.
//!
//! The checkout's absolute path reads `$WORKSPACE` in the expected files. On a mismatch
//! the new output is written to `expected.new` and the test fails; review it and rename
//! it, or rerun with `AIPERF_UPDATE_SNAPSHOTS=1` to accept every change.

use std::path::{Path, PathBuf};

const CORPUS: &str = "tests/invalid";
const CATEGORIES: &str = "tests/fixtures/corpus/categories.yaml";

fn case_args(dir: &Path) -> Vec<String> {
    let case = dir.to_string_lossy().into_owned();
    let mut args = vec!["aiperf-gen".to_owned(), "validate".to_owned()];
    if let Ok(listed) = std::fs::read_to_string(dir.join("args")) {
        args.extend(listed.lines().map(|l| l.replace("$CASE", &case)));
        return args;
    }
    let mut yaml: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("case directory")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    let is_categories = |p: &PathBuf| p.to_string_lossy().contains("categories");
    yaml.sort_by_key(|p| (!is_categories(p), p.clone()));
    if !yaml.iter().any(is_categories) {
        args.extend(["--categories".to_owned(), CATEGORIES.to_owned()]);
    }
    args.extend(yaml.iter().map(|p| p.to_string_lossy().into_owned()));
    args
}

fn run(args: &[String]) -> String {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = aiperf_gen::cli::run(args.iter().map(Into::into), &mut out, &mut err);
    let text = format!(
        "$ {}\nexit: {code}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&err)
    );
    // Messages that list search directories name the checkout; keep the files portable.
    let root = aiperf_gen::session::workspace_root();
    text.replace(&root.display().to_string(), "$WORKSPACE")
}

#[test]
fn every_invalid_manifest_gets_its_expected_diagnostics() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(CORPUS)
        .expect("tests/invalid exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 40, "the corpus has {} cases", cases.len());

    let update = std::env::var_os("AIPERF_UPDATE_SNAPSHOTS").is_some();
    let mut failed = Vec::new();
    for dir in &cases {
        let actual = run(&case_args(dir));
        let golden = dir.join("expected");
        let expected = std::fs::read_to_string(&golden).unwrap_or_default();
        let new = dir.join("expected.new");
        if expected == actual {
            let _ = std::fs::remove_file(&new);
            continue;
        }
        if update {
            std::fs::write(&golden, &actual).expect("update expected output");
        } else {
            std::fs::write(&new, &actual).expect("write expected.new");
            failed.push(dir.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "output differs from `expected` in {} case(s) (see expected.new there; rename it \
         after review, or rerun with AIPERF_UPDATE_SNAPSHOTS=1): {failed:#?}",
        failed.len()
    );
}

#[test]
fn every_case_fails_or_warns() {
    // The corpus is of invalid manifests: each case exits non-zero.
    for entry in std::fs::read_dir(CORPUS)
        .expect("tests/invalid exists")
        .flatten()
    {
        let expected = std::fs::read_to_string(entry.path().join("expected")).unwrap_or_default();
        let code = expected.lines().nth(1).unwrap_or_default();
        assert!(
            code == "exit: 1" || code == "exit: 2",
            "{}: {code}",
            entry.path().display()
        );
    }
}
