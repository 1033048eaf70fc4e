//! AIPerf 0.13's prefix, shared system, user context and verbatim system prompts, end to
//! end: the messages the server received, `inputs.json`, the records' input lengths and
//! `input_config`.
//!
//! Every synthetic word of the built-in tokenizer is one token, a space and letters, so a
//! prompt's token count is its word count.

mod common;

use std::path::{Path, PathBuf};

use common::{capture_requests, read_json, read_records, run_dir, run_profile, Mock};
use serde_json::{json, Value};

fn words(text: &Value) -> usize {
    text.as_str()
        .unwrap_or_else(|| panic!("not a text: {text}"))
        .split_whitespace()
        .count()
}

/// Each request's `messages` in `inputs.json`, conversation by conversation.
fn planned_messages(dir: &Path) -> Vec<Vec<Value>> {
    let text = std::fs::read_to_string(dir.join("inputs.json")).expect("inputs.json");
    let inputs: Value = serde_json::from_str(&text).expect("inputs.json is JSON");
    inputs["data"]
        .as_array()
        .expect("data")
        .iter()
        .flat_map(|c| c["payloads"].as_array().cloned().unwrap_or_default())
        .map(|p| p["messages"].as_array().cloned().expect("messages"))
        .collect()
}

fn roles(messages: &[Value]) -> Vec<&str> {
    messages
        .iter()
        .map(|m| m["role"].as_str().expect("a role"))
        .collect()
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = run_dir(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Two conversations of two turns: each request starts with the shared system prompt and
/// its conversation's user context, then the history, as AIPerf's chat endpoint sends
/// them; the input length counts them all.
#[test]
fn system_and_user_context_prompts_lead_every_request() {
    let (url, server) = capture_requests(4);
    let dir = fresh_dir("prompts-context");
    let output = run_profile(
        &[&url],
        &dir,
        &[
            "--endpoint-type",
            "chat",
            "--random-seed",
            "7",
            "--isl",
            "8",
            "--num-dataset-entries",
            "2",
            "--conversation-turn-mean",
            "2",
            "--request-count",
            "4",
            "--concurrency",
            "1",
            "--workers",
            "1",
            "--shared-system-prompt-length",
            "12",
            "--user-context-prompt-length",
            "5",
        ],
    );
    common::assert_succeeded(&output);
    let sent: Vec<Vec<Value>> = server
        .join()
        .expect("server")
        .iter()
        .map(|(_, body)| {
            let body: Value = serde_json::from_slice(body).expect("a JSON body");
            body["messages"].as_array().cloned().expect("messages")
        })
        .collect();
    let first_turn = ["system", "user", "user"];
    let second_turn = ["system", "user", "user", "assistant", "user"];
    assert_eq!(
        sent.iter().map(|m| roles(m)).collect::<Vec<_>>(),
        [&first_turn[..], &second_turn, &first_turn, &second_turn]
    );
    let system = &sent[0][0]["content"];
    assert_eq!(words(system), 12);
    for (i, messages) in sent.iter().enumerate() {
        assert_eq!(&messages[0]["content"], system, "request {i}");
        assert_eq!(words(&messages[1]["content"]), 5, "request {i}");
        assert_eq!(words(&messages[2]["content"]), 8, "request {i}");
    }
    // A conversation keeps its context; the next has its own.
    assert_eq!(sent[1][..3], sent[0][..]);
    assert_eq!(
        sent[1][3],
        json!({"role": "assistant", "content": "hi there"})
    );
    assert_eq!(sent[3][..3], sent[2][..]);
    assert_ne!(sent[0][1], sent[2][1]);

    // inputs.json: every turn alone, behind the same two messages (AIPerf's payloads).
    let planned = planned_messages(&dir);
    assert_eq!(planned.len(), 4);
    assert_eq!(planned[0], sent[0]);
    assert_eq!(planned[1][..2], sent[1][..2]);
    assert_eq!(planned[1][2], sent[1][4]);
    assert_eq!(planned[2], sent[2]);

    // Input lengths as AIPerf counts a body: its texts joined by one space. The prompts
    // start with a space, so each join costs the space token: 12 + 1 + 5 + 1 + 8 for a
    // first turn, and a second adds " hi there" (2) and 1 + 8.
    let lengths: Vec<u64> = read_records(&dir)
        .iter()
        .map(|r| {
            r["metrics"]["input_sequence_length"]["value"]
                .as_u64()
                .expect("isl")
        })
        .collect();
    assert_eq!(lengths, [27, 38, 27, 38]);
    assert_eq!(
        read_json(&dir)["input_config"]["datasets"][0]["prefix_prompts"],
        json!({"shared_system_length": 12, "user_context_length": 5})
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A pool of two 6-token prefixes: each conversation's first turn starts with one of
/// them and has 6 + 10 tokens; its second turn has none.
#[test]
fn prefix_prompts_start_each_first_turn() {
    let mock = Mock::start(&["--ttft-ms", "1", "--itl-ms", "0"]);
    let dir = fresh_dir("prompts-prefix");
    let output = run_profile(
        &[&mock.url],
        &dir,
        &[
            "--random-seed",
            "7",
            "--isl",
            "10",
            "--num-dataset-entries",
            "8",
            "--conversation-turn-mean",
            "2",
            "--request-count",
            "16",
            "--num-prefix-prompts",
            "2",
            "--prefix-prompt-length",
            "6",
        ],
    );
    common::assert_succeeded(&output);
    let planned = planned_messages(&dir);
    assert_eq!(planned.len(), 16);
    let mut prefixes = std::collections::BTreeSet::new();
    for (i, messages) in planned.iter().enumerate() {
        assert_eq!(roles(messages), ["user"], "request {i}");
        let text = messages[0]["content"].as_str().expect("a text");
        let count = text.split_whitespace().count();
        if i % 2 == 0 {
            assert_eq!(count, 16, "first turn {i}");
            let prefix: Vec<&str> = text.split_whitespace().take(6).collect();
            prefixes.insert(prefix.join(" "));
        } else {
            assert_eq!(count, 10, "second turn {i}");
        }
    }
    assert_eq!(prefixes.len(), 2, "{prefixes:?}");
    // A first turn's input is its prefix and prompt; a second's carries the history too
    // (counted exactly in `system_and_user_context_prompts_lead_every_request`).
    let records = read_records(&dir);
    let first_lengths: Vec<u64> = records
        .iter()
        .filter(|r| r["metadata"]["turn_index"] == 0)
        .map(|r| {
            r["metrics"]["input_sequence_length"]["value"]
                .as_u64()
                .expect("isl")
        })
        .collect();
    assert_eq!(first_lengths, [16; 8]);
    assert_eq!(records.len(), 16);
    assert_eq!(
        read_json(&dir)["input_config"]["datasets"][0]["prefix_prompts"],
        json!({"pool_size": 2, "length": 6})
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--system-prompt-file` is sent verbatim as the system message; an endpoint without a
/// system role, an unreadable file and a pool size without a length are refused by name.
#[test]
fn a_system_prompt_file_is_sent_verbatim_or_refused() {
    let mock = Mock::start(&["--ttft-ms", "1", "--itl-ms", "0"]);
    let dir = fresh_dir("prompts-system");
    std::fs::create_dir_all(&dir).expect("the run directory");
    let file = dir.join("system.txt");
    std::fs::write(&file, "Answer in French.\n").expect("write the prompt");
    let file = file.to_str().expect("utf-8 path");
    let args = [
        "--isl",
        "4",
        "--request-count",
        "2",
        "--system-prompt-file",
        file,
    ];
    let output = run_profile(&[&mock.url], &dir, &args);
    common::assert_succeeded(&output);
    for messages in planned_messages(&dir) {
        assert_eq!(
            messages[0],
            json!({"role": "system", "content": "Answer in French.\n"})
        );
        assert_eq!(roles(&messages), ["system", "user"]);
    }
    assert_eq!(
        read_json(&dir)["input_config"]["datasets"][0]["system_prompt_file"],
        json!(file)
    );

    let refused = |args: &[&str]| {
        let output = run_profile(&[&mock.url], &dir, args);
        assert!(!output.status.success(), "{args:?} ran");
        String::from_utf8_lossy(&output.stderr)
            .trim_end()
            .to_owned()
    };
    let completions = [&args[..], &["--endpoint-type", "completions"]].concat();
    assert_eq!(
        refused(&completions),
        "error: --system-prompt/--system-prompt-file is not supported by endpoint type \
         'completions' (no system role), so the text would never reach the wire. Supported \
         endpoint types: chat, chat_embeddings, messages, responses."
    );
    let missing = dir.join("absent.txt");
    let missing = missing.to_str().expect("utf-8 path");
    assert_eq!(
        refused(&["--system-prompt-file", missing]),
        format!(
            "error: system_prompt_file (--system-prompt-file) could not be read: {missing} \
             (No such file or directory (os error 2)). Expected a readable regular UTF-8 \
             text file with no symlinked path component."
        )
    );
    assert_eq!(
        refused(&["--num-prefix-prompts", "4"]),
        "error: --prompt-prefix-pool-size needs --prompt-prefix-length, the tokens of each \
         prefix prompt"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The `payloads` of every conversation in `inputs.json`, with their session ids.
fn planned_payloads(dir: &Path) -> Vec<(String, Vec<Value>)> {
    let text = std::fs::read_to_string(dir.join("inputs.json")).expect("inputs.json");
    let inputs: Value = serde_json::from_str(&text).expect("inputs.json is JSON");
    inputs["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|c| {
            let id = c["session_id"].as_str().expect("session_id").to_owned();
            (id, c["payloads"].as_array().cloned().expect("payloads"))
        })
        .collect()
}

/// The bodies a [`capture_requests`] server received, in order.
fn received_bodies(server: std::thread::JoinHandle<Vec<common::CapturedRequest>>) -> Vec<Value> {
    let requests = server.join().expect("server");
    let bodies = requests
        .iter()
        .map(|(_, body)| serde_json::from_slice(body));
    bodies.collect::<Result<_, _>>().expect("JSON bodies")
}

/// The dataset's ids, `session_000000` on, as AIPerf numbers synthetic sessions.
fn session_ids(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("session_{i:06}")).collect()
}

/// `--request-count 600` composes 600 conversations, as AIPerf 0.13 does, one unique
/// prompt per request. At 2,000 tokens each they are too many to hold (see the engine's
/// `on_demand`): they are composed while the run goes, and session n still sends the
/// dataset's conversation n, which `inputs.json` lists whole, in order.
#[test]
fn a_large_dataset_is_composed_as_sessions_take_it() {
    let (url, server) = capture_requests(600);
    let dir = fresh_dir("prompts-on-demand");
    let output = run_profile(
        &[&url],
        &dir,
        &[
            "--endpoint-type",
            "chat",
            "--random-seed",
            "9",
            "--isl",
            "2000",
            "--request-count",
            "600",
            "--concurrency",
            "1",
            "--system-prompt",
            "Answer briefly.",
        ],
    );
    common::assert_succeeded(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("composing the dataset's conversations as sessions take them"),
        "{stderr}"
    );
    let sent = received_bodies(server);
    let planned = planned_payloads(&dir);
    let ids: Vec<String> = planned.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(ids, session_ids(600));
    let bodies: Vec<&Value> = planned.iter().map(|(_, p)| &p[0]).collect();
    assert!(planned.iter().all(|(_, p)| p.len() == 1));
    // One worker, one slot: the n-th request is the n-th conversation.
    for (i, body) in sent.iter().enumerate() {
        assert_eq!(body, bodies[i], "request {i}");
        assert_eq!(body["messages"][0]["content"], "Answer briefly.");
        assert_eq!(words(&body["messages"][1]["content"]), 2000, "request {i}");
    }
    let prompts: std::collections::HashSet<String> = sent
        .iter()
        .map(|b| b["messages"][1]["content"].to_string())
        .collect();
    assert_eq!(prompts.len(), 600, "every prompt is unique");
    let records = read_records(&dir);
    let conversations: Vec<&str> = records
        .iter()
        .map(|r| r["metadata"]["conversation_id"].as_str().expect("an id"))
        .collect();
    assert_eq!(conversations, session_ids(600));
    let json = read_json(&dir);
    assert_eq!(json["input_config"]["datasets"][0]["entries"], 600);
}

/// Drawn by a sampler, the conversations composed on demand are still the dataset's, and
/// a run that sends fewer requests than the dataset has still lists every conversation
/// in `inputs.json` (written after the run for those no session took).
#[test]
fn an_on_demand_dataset_is_listed_whole_however_it_is_drawn() {
    let taken = shuffled_700(
        "prompts-on-demand-shuffle",
        &["--random-seed", "4", "--isl", "2000"],
    );
    // A shuffle takes each conversation once per pass, not in order.
    assert_eq!(taken.len(), 40);
    assert_ne!(taken, (0..40).collect());
}

/// Sends 40 requests of a 700-conversation dataset drawn by `shuffle` (with `extra`
/// flags), and checks that `inputs.json` lists all 700 in order and that each request
/// sent its conversation's payload as listed; the conversations taken.
fn shuffled_700(name: &str, extra: &[&str]) -> std::collections::HashSet<usize> {
    let (url, server) = capture_requests(40);
    let dir = fresh_dir(name);
    let mut args = vec![
        "--endpoint-type",
        "chat",
        "--num-dataset-entries",
        "700",
        "--request-count",
        "40",
        "--dataset-sampling-strategy",
        "shuffle",
        "--concurrency",
        "1",
    ];
    args.extend_from_slice(extra);
    let output = run_profile(&[&url], &dir, &args);
    common::assert_succeeded(&output);
    let sent = received_bodies(server);
    let planned = planned_payloads(&dir);
    let ids: Vec<String> = planned.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(ids, session_ids(700));
    let records = read_records(&dir);
    assert_eq!(records.len(), 40);
    let mut taken = std::collections::HashSet::new();
    for (record, body) in records.iter().zip(&sent) {
        let id = record["metadata"]["conversation_id"]
            .as_str()
            .expect("an id");
        let index: usize = id["session_".len()..].parse().expect("a number");
        assert_eq!(body, &planned[index].1[0], "{id}");
        taken.insert(index);
    }
    let _ = std::fs::remove_dir_all(&dir);
    taken
}

/// Prompts of 40,000 tokens (about 560 KB of prompt and body each): the queue of
/// conversations composed ahead holds what 8 MiB allows, fewer than the 64 the workers
/// start with, and the run neither waits for more nor sends a prompt short.
#[test]
fn long_prompts_composed_on_demand_fill_the_queue_by_bytes() {
    let mock = Mock::start(&["--output-tokens", "2"]);
    let dir = fresh_dir("prompts-on-demand-long");
    let output = common::profile_command(
        &[&mock.url],
        &dir,
        &[
            "--endpoint-type",
            "completions",
            "--isl",
            "40000",
            "--request-count",
            "40",
            "--concurrency",
            "4",
        ],
    )
    .stdin(std::process::Stdio::null())
    .output()
    .expect("run the core binary");
    common::assert_succeeded(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("as sessions take them"), "{stderr}");
    let records = read_records(&dir);
    assert_eq!(records.len(), 40);
    for record in &records {
        assert_eq!(record["metrics"]["input_sequence_length"]["value"], 40000);
    }
    let planned = planned_payloads(&dir);
    assert_eq!(planned.len(), 40);
}

/// Every credit of a count gets its request, however slowly its prompt is composed: the
/// loop closed when the count's last credit was taken, and a session still waiting for
/// its conversation then went missing without a record (5 requests gave 3).
#[test]
fn every_credit_of_a_count_is_sent_when_composing_is_slow() {
    let mock = Mock::start(&["--output-tokens", "2"]);
    let dir = fresh_dir("prompts-slow-count");
    let output = common::profile_command(
        &[&mock.url],
        &dir,
        &[
            "--isl",
            "300000",
            "--request-count",
            "5",
            "--concurrency",
            "5",
        ],
    )
    .stdin(std::process::Stdio::null())
    .output()
    .expect("run the core binary");
    common::assert_succeeded(&output);
    let records = read_records(&dir);
    assert_eq!(records.len(), 5);
    assert!(records.iter().all(|r| r["error"].is_null()));
}

/// A rate whose prompts (with images) are composed slower than it runs: arrivals due
/// before the deadline go late (all R x D of them); with no grace period those not sent
/// by the deadline are counted as unsent, with or without a record, never dropped
/// unnoticed (1,000 arrivals gave 754 records and no count).
#[test]
fn a_rate_faster_than_composing_accounts_for_every_arrival() {
    let mock = Mock::start(&["--output-tokens", "2"]);
    let dir = fresh_dir("prompts-slow-rate");
    let run = |grace: &str| {
        let output = common::profile_command(
            &[&mock.url],
            &dir,
            &[
                "--image-width-mean",
                "512",
                "--image-height-mean",
                "512",
                "--request-rate",
                "2000",
                "--benchmark-duration",
                "0.5",
                "--benchmark-grace-period",
                grace,
            ],
        )
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run the core binary");
        common::assert_succeeded(&output);
        let json = read_json(&dir);
        let unsent = json["client_health"]["unsent_at_stop"].as_u64();
        (read_records(&dir).len() as u64, unsent)
    };
    let (records, unsent) = run("30");
    assert_eq!((records, unsent), (1000, Some(0)));
    let (records, unsent) = run("0");
    let unsent = unsent.expect("a count");
    assert!(unsent > 0, "{records} records, all sent by the deadline");
    // A record of an arrival kept from being sent is counted in both.
    let kept = read_records(&dir)
        .iter()
        .filter(|r| r["error"]["message"] == "cancelled before it was sent: the run stopped")
        .count() as u64;
    assert_eq!(records + unsent - kept, 1000);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A composing thread per core (up to 4) when each conversation carries an image: the
/// threads finish out of order, and yet session n sends the dataset's conversation n,
/// byte for byte as `inputs.json` lists it.
#[test]
fn conversations_with_images_composed_on_several_threads_keep_their_order() {
    let (url, server) = capture_requests(600);
    let dir = fresh_dir("prompts-on-demand-images");
    let output = run_profile(
        &[&url],
        &dir,
        &[
            "--endpoint-type",
            "chat",
            "--random-seed",
            "3",
            "--isl",
            "16",
            "--image-width-mean",
            "64",
            "--image-height-mean",
            "64",
            "--request-count",
            "600",
            "--concurrency",
            "1",
        ],
    );
    common::assert_succeeded(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = format!("as sessions take them entries=600 threads={}", cores.min(4));
    assert!(stderr.contains(&threads), "{stderr}");
    let sent = received_bodies(server);
    let planned = planned_payloads(&dir);
    let ids: Vec<String> = planned.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(ids, session_ids(600));
    for (i, body) in sent.iter().enumerate() {
        assert_eq!(body, &planned[i].1[0], "request {i}");
    }
    let images: std::collections::HashSet<String> = sent
        .iter()
        .map(|b| b["messages"][0]["content"][1]["image_url"]["url"].to_string())
        .collect();
    assert_eq!(images.len(), 600, "every image is its own");
}

/// Drawn by a sampler, conversations with images are listed whole after the run, by
/// several threads, in order.
#[test]
fn a_sampled_dataset_with_images_is_listed_whole_after_the_run() {
    let image = ["--image-width-mean", "64", "--image-height-mean", "64"];
    let args = [&["--random-seed", "5", "--isl", "16"][..], &image].concat();
    let taken = shuffled_700("prompts-on-demand-images-shuffle", &args);
    assert_eq!(taken.len(), 40);
}

/// AIPerf's image metrics and RTFx: each record counts the image parts of the body it
/// sent (a later turn resends its history's), its audio duration is the clip's, and the
/// console shows the rates as AIPerf's does.
#[test]
fn image_and_audio_metrics_count_what_each_request_sent() {
    let (url, server) = capture_requests(6);
    let dir = fresh_dir("prompts-media-metrics");
    let output = run_profile(
        &[&url],
        &dir,
        &[
            "--endpoint-type",
            "chat",
            "--isl",
            "8",
            "--image-width-mean",
            "8",
            "--image-height-mean",
            "8",
            "--audio-length-mean",
            "0.5",
            "--session-turns-mean",
            "3",
            "--request-count",
            "6",
            "--concurrency",
            "1",
            "--workers",
            "1",
        ],
    );
    common::assert_succeeded(&output);
    let sent = received_bodies(server);
    let parts = |body: &Value, kind: &str| {
        body["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .filter_map(|m| m["content"].as_array())
            .flatten()
            .filter(|p| p["type"] == kind)
            .count() as f64
    };
    let records = read_records(&dir);
    assert_eq!(records.len(), 6);
    for (body, record) in sent.iter().zip(&records) {
        let metric = |tag: &str| record["metrics"][tag]["value"].as_f64();
        let turn = record["metadata"]["turn_index"].as_u64().expect("turn");
        let images = parts(body, "image_url");
        assert_eq!(images, turn as f64 + 1.0, "{body}");
        assert_eq!(metric("num_images"), Some(images), "{record}");
        let latency = metric("request_latency").expect("latency");
        assert_eq!(metric("image_latency"), Some(latency / images));
        let throughput = metric("image_throughput").expect("image throughput");
        assert!((throughput - images / (latency / 1e3)).abs() < 1e-6 * throughput);
        assert_eq!(metric("audio_duration"), Some(0.5));
        let rtfx = metric("rtfx").expect("rtfx");
        assert!(
            (rtfx - 0.5 / (latency / 1e3)).abs() < 1e-6 * rtfx,
            "{record}"
        );
        assert!(parts(body, "input_audio") >= 1.0, "{body}");
    }
    let json = read_json(&dir);
    assert_eq!(json["num_images"]["avg"], 2.0);
    assert_eq!(json["num_images"]["unit"], "images");
    assert_eq!(json["audio_duration"]["avg"], 0.5);
    assert_eq!(json["image_latency"]["unit"], "ms/image");
    assert_eq!(json["rtfx"]["unit"], "ratio");
    let stdout = String::from_utf8_lossy(&output.stdout);
    for row in [
        "Inverse Real-Time Factor (RTFx)",
        "Image Throughput (images/sec)",
        "Image Latency (ms/image)",
    ] {
        assert!(stdout.contains(row), "{stdout}");
    }
    assert!(!stdout.contains("Number of Images"), "{stdout}");
}

/// A server's other usage counts (OpenAI's audio and predicted-output details, Gemini's
/// tool-use count) reach AIPerf's usage metrics, their totals and the Usage table.
#[test]
fn a_server_s_usage_details_become_usage_metrics() {
    const ANSWER: &str = concat!(
        r#"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":"#,
        r#"{"role":"assistant","content":"hi there"},"finish_reason":"stop"}],"#,
        r#""usage":{"prompt_tokens":8,"completion_tokens":2,"total_tokens":10,"#,
        r#""prompt_tokens_details":{"cached_tokens":0,"audio_tokens":3},"#,
        r#""completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":1,"#,
        r#""accepted_prediction_tokens":2,"rejected_prediction_tokens":5},"#,
        r#""toolUsePromptTokenCount":4}}"#,
    );
    let (url, server) = common::capture_requests_answering(3, ANSWER);
    let dir = fresh_dir("prompts-usage-details");
    let output = run_profile(
        &[&url],
        &dir,
        &[
            "--endpoint-type",
            "chat",
            "--isl",
            "8",
            "--request-count",
            "3",
            "--concurrency",
            "1",
        ],
    );
    common::assert_succeeded(&output);
    drop(received_bodies(server));
    let record = &read_records(&dir)[0]["metrics"];
    for (tag, value) in [
        ("usage_prompt_audio_tokens", 3),
        ("usage_completion_audio_tokens", 1),
        ("usage_accepted_prediction_tokens", 2),
        ("usage_rejected_prediction_tokens", 5),
        ("usage_tool_use_prompt_tokens", 4),
    ] {
        assert_eq!(
            record[tag],
            json!({"value": value, "unit": "tokens"}),
            "{tag}"
        );
    }
    let summary = read_json(&dir);
    assert_eq!(
        summary["total_usage_rejected_prediction_tokens"]["avg"],
        15.0
    );
    assert_eq!(summary["total_usage_prompt_audio_tokens"]["avg"], 9.0);
    let stdout = String::from_utf8_lossy(&output.stdout);
    for row in [
        "Usage Prompt Audio Tokens (tokens)",
        "Usage Accepted Prediction Tokens",
        "Total Usage Tool Use Prompt Tokens",
    ] {
        assert!(stdout.contains(row), "{row}: {stdout}");
    }
}
