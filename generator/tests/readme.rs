//! The README's claims that can drift from the code: figures it quotes and the quick
//! start's commands, checked against what the tools and the script actually do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn repo(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// Lines with their `\` continuations joined.
fn logical_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        match line.trim_end().strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => {
                current.push_str(line);
                lines.push(std::mem::take(&mut current));
            }
        }
    }
    lines
}

/// `--flag value` pairs of a command line (`""` for a flag without a value).
fn flags(command: &str) -> BTreeMap<String, String> {
    let tokens: Vec<&str> = command.split_whitespace().collect();
    let mut out = BTreeMap::new();
    for (i, token) in tokens.iter().enumerate() {
        if token.starts_with("--") {
            let value = tokens.get(i + 1).filter(|v| !v.starts_with("--"));
            out.insert((*token).to_owned(), value.map_or("", |v| *v).to_owned());
        }
    }
    out
}

fn command<'a>(lines: &'a [String], what: &str, marker: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("no `{marker}` command in {what}"))
}

/// The step-by-step list shows the script's commands: the same flags, and the same values
/// wherever the script writes a literal one (not a shell variable).
#[test]
fn quick_start_steps_match_the_script() {
    let readme = read("README.md");
    let steps = readme
        .split_once("It performs, step by step")
        .and_then(|(_, rest)| rest.split_once("\n\n    "))
        .and_then(|(_, rest)| rest.split_once("\n\n"))
        .map(|(block, _)| block)
        .expect("the README's step list");
    let steps = logical_lines(steps);
    let script = logical_lines(&read("scripts/quickstart.sh"));
    for marker in [
        "aiperf-gen\" build",
        "aiperf-mock\" --",
        "aiperf-core\" profile",
    ] {
        let ours = flags(command(&script, "scripts/quickstart.sh", marker));
        let shown = flags(command(&steps, "the README", &marker.replace('"', "")));
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            shown.keys().collect::<Vec<_>>(),
            "{marker}"
        );
        for (flag, value) in &ours {
            if !value.is_empty() && !value.starts_with(['"', '$']) {
                assert_eq!(&shown[flag], value, "{marker} {flag}");
            }
        }
    }
}

/// The number of E0203 errors the README quotes for AIPerf's manifests is what
/// `validate --check-class` reports, per file.
#[test]
fn aiperf_check_class_count_is_what_validate_reports() {
    let dir = repo("generator/tests/fixtures/aiperf-0.13.0");
    let categories = dir.join("categories.yaml").display().to_string();
    let plugins = dir.join("plugins.yaml").display().to_string();
    let args = [
        "aiperf-gen",
        "validate",
        "--check-class",
        &categories,
        &plugins,
    ];
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = aiperf_gen::cli::run(args.iter().map(Into::into), &mut out, &mut err);
    assert_eq!(code, 1);
    let err = String::from_utf8_lossy(&err);
    let count = |file: &str| err.matches(&format!("{file}:")).count();
    let in_file = |file: &str| {
        err.lines()
            .filter(|l| l.starts_with(&format!("{file}:")) && l.contains("error[E0203]"))
            .count()
    };
    let (in_categories, in_plugins) = (in_file(&categories), in_file(&plugins));
    assert_eq!(
        count(&categories) + count(&plugins),
        in_categories + in_plugins,
        "errors other than E0203: {err}"
    );
    let claim = format!(
        "fail `--check-class` with {} E0203 errors, one per path: the {in_plugins} plugins' \
         `class` and {in_categories} in `categories.yaml`",
        in_categories + in_plugins
    );
    // Compared with its lines joined, so that rewrapping the paragraph does not matter.
    let readme = read("README.md")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(readme.contains(&claim), "the README should say:\n{claim}");
}
