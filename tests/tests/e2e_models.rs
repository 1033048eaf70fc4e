//! Several `--model`s: every request names the model its turn was given by
//! `--model-selection-strategy`, as the bodies the server received show.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{assert_succeeded, capture_requests, core_binary, measuring, read_json, run_dir};
use serde_json::Value;

/// The `model` of every body a closed-loop chat run of `count` requests sent, in the
/// order the server received them, and the run's artifact directory.
fn sent_models(name: &str, args: &[&str], count: usize) -> (Vec<String>, PathBuf) {
    let (url, server) = capture_requests(count);
    let dir = run_dir(name);
    let _ = std::fs::remove_dir_all(&dir);
    let count_arg = count.to_string();
    let output = {
        let _serial = measuring();
        Command::new(core_binary())
            .arg("profile")
            .args(args)
            .args(["--url", &url, "--endpoint-type", "chat"])
            .args(["--request-count", &count_arg, "--concurrency", "1"])
            .args(["--workers", "1", "--isl", "8", "--ui-type", "none"])
            .args(["--artifact-dir", dir.to_str().expect("utf-8 path")])
            .output()
            .expect("run the core binary")
    };
    assert_succeeded(&output);
    let models = server
        .join()
        .expect("server")
        .iter()
        .map(|(_, body)| model_of(&serde_json::from_slice(body).expect("a JSON body")))
        .collect();
    (models, dir)
}

fn model_of(body: &Value) -> String {
    body["model"]
        .as_str()
        .unwrap_or_else(|| panic!("no model in {body}"))
        .to_owned()
}

#[test]
fn two_models_alternate_round_robin() {
    let args = ["--model", "a", "--model", "b"];
    let (models, dir) = sent_models("models-round-robin", &args, 6);
    assert_eq!(models, ["a", "b", "a", "b", "a", "b"]);
    // inputs.json holds the same bodies, one conversation each, in dataset order.
    let inputs: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("inputs.json")).expect("inputs.json"),
    )
    .expect("inputs.json is JSON");
    let planned: Vec<String> = inputs["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|c| model_of(&c["payloads"][0]))
        .collect();
    assert_eq!(planned, models);
    // AIPerf's layout: the names as items; the strategy left out at its default.
    let config = &read_json(&dir)["input_config"];
    assert_eq!(
        config["models"],
        serde_json::json!({"items": [{"name": "a"}, {"name": "b"}]})
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn random_selection_repeats_with_a_seed() {
    let args = [
        "--model",
        "a,b",
        "--model-selection-strategy",
        "random",
        "--random-seed",
        "1",
    ];
    let (first, dir) = sent_models("models-random-1", &args, 12);
    let (second, _) = sent_models("models-random-1", &args, 12);
    assert_eq!(first, second);
    for model in ["a", "b"] {
        assert!(
            first.iter().any(|m| m == model),
            "{model} never sent: {first:?}"
        );
    }
    assert_eq!(
        read_json(&dir)["input_config"]["models"]["strategy"],
        "random"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unknown_strategy_is_refused_before_anything_runs() {
    let output = Command::new(core_binary())
        .args([
            "profile",
            "--model",
            "a,b",
            "--model-selection-strategy",
            "fastest",
        ])
        .output()
        .expect("run the core binary");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("invalid value 'fastest' for '--model-selection-strategy")
            && stderr.contains("expected one of: round_robin, random"),
        "{stderr}"
    );
}
