//! End to end, one test per endpoint plugin: the core binary (built once, as in
//! `e2e_core.rs`) benchmarks `aiperf-mock`'s API for that endpoint, and the artifacts must
//! show what the mock was told to do: request counts, latencies no shorter than its
//! delays, output lengths where tokens are produced, and the request bodies in
//! `inputs.json`.
//!
//! These tests are about correctness, not timing precision: bounds are one-sided (no
//! shorter than the mock's delay) or loose, because several builds may share the cores.

mod common;

use common::{core_binary, run_dir, Mock};

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

/// One benchmark run; its console output and artifacts.
struct Run {
    stdout: String,
    dir: PathBuf,
    json: Value,
}

impl Run {
    fn stat(&self, tag: &str, field: &str) -> f64 {
        self.json
            .get(tag)
            .unwrap_or_else(|| panic!("metric {tag} missing from {:#}", self.json))[field]
            .as_f64()
            .unwrap_or_else(|| panic!("{tag}.{field} not a number"))
    }

    fn has(&self, tag: &str) -> bool {
        self.json.get(tag).is_some()
    }

    /// The console tables' titles, in print order (rich centres them over the table).
    fn titles(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("NVIDIA AIPerf | "))
            .collect()
    }

    fn errors(&self) -> f64 {
        self.json
            .get("error_request_count")
            .and_then(|m| m["avg"].as_f64())
            .unwrap_or(0.0)
    }

    fn assert_no_errors(&self) {
        assert_eq!(
            self.errors(),
            0.0,
            "errors: {:#}",
            self.json["error_summary"]
        );
    }

    /// What AIPerf 0.13 reports for an endpoint that produces no tokens (embeddings,
    /// rankings): an output length of 0 for every request (its usage comparison needs
    /// one), no other output-token metric, and none of the server's usage (it does not
    /// read it); so its tables are the Effective, Active and default ones, titled `title`.
    fn assert_tokenless(&self, title: &str) {
        assert_eq!(self.stat("output_sequence_length", "max"), 0.0);
        assert_eq!(self.stat("output_sequence_length", "sum"), 0.0);
        let records = self.records();
        assert!(!records.is_empty());
        for record in &records {
            assert_eq!(
                record["metrics"]["output_sequence_length"],
                serde_json::json!({"value": 0, "unit": "tokens"}),
                "{record}"
            );
        }
        let metrics: Vec<&String> = self.json.as_object().expect("summary").keys().collect();
        let unexpected = [
            "total_osl",
            "output_token_throughput",
            "total_token_throughput",
        ];
        for tag in metrics {
            assert!(
                !tag.contains("usage_") && !unexpected.contains(&tag.as_str()),
                "{tag}"
            );
        }
        let csv = std::fs::read_to_string(self.dir.join("profile_export_aiperf.csv")).unwrap();
        let zeros = ",0.00".repeat(14);
        let row = format!("Output Sequence Length (tokens){zeros}\r\n");
        assert!(csv.contains(&row), "{csv}");
        let titles = [
            format!("NVIDIA AIPerf | {title}: Effective"),
            format!("NVIDIA AIPerf | {title}: Active"),
            format!("NVIDIA AIPerf | {title}"),
        ];
        assert_eq!(self.titles(), titles, "{}", self.stdout);
    }

    /// The request bodies sent, from `inputs.json`.
    fn payloads(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.dir.join("inputs.json")).expect("inputs.json");
        let inputs: Value = serde_json::from_str(&text).expect("inputs.json is JSON");
        inputs["data"]
            .as_array()
            .expect("data")
            .iter()
            .flat_map(|d| d["payloads"].as_array().cloned().unwrap_or_default())
            .collect()
    }

    fn records(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.dir.join("profile_export.jsonl")).expect("jsonl");
        text.lines()
            .map(|l| serde_json::from_str(l).expect("jsonl line"))
            .collect()
    }
}

fn profile(mock: &Mock, name: &str, args: &[&str]) -> Run {
    profile_exiting(mock, name, args, 0)
}

/// [`profile`] of a run where every request fails: it exits 1, as AIPerf 0.13's does,
/// and still writes its summary.
fn profile_all_failing(mock: &Mock, name: &str, args: &[&str]) -> Run {
    profile_exiting(mock, name, args, 1)
}

fn profile_exiting(mock: &Mock, name: &str, args: &[&str], code: i32) -> Run {
    core_binary();
    let dir = run_dir(name);
    let _serial = common::measuring();
    let _ = std::fs::remove_dir_all(&dir);
    let output = Command::new(core_binary())
        .args(["profile", "--model", "m", "--url", &mock.url])
        .args([
            "--artifact-dir",
            dir.to_str().expect("utf-8 path"),
            "--ui-type",
            "none",
            "--random-seed",
            "7",
        ])
        .args(args)
        .output()
        .expect("run the core binary");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(
        output.status.code(),
        Some(code),
        "profile {args:?}: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(dir.join("profile_export_aiperf.json")).expect("json");
    let json = serde_json::from_str(&text).expect("valid json");
    Run { stdout, dir, json }
}

// ------------------------------------------------------------------------------ chat

#[test]
fn chat_reasoning_counted_by_the_client_and_by_the_server() {
    // 6 of 16 tokens are reasoning; the server's usage counts 3 more of everything.
    let mock = Mock::start(&[
        "--ttft-ms",
        "20",
        "--itl-ms",
        "2",
        "--reasoning-tokens",
        "6",
        "--usage-token-offset",
        "3",
    ]);
    let common = [
        "--endpoint-type",
        "chat",
        "--streaming",
        "--isl",
        "32",
        "--osl",
        "16",
        "--concurrency",
        "2",
        "--request-count",
        "8",
    ];
    let client = profile(&mock, "chat-reasoning-client", &common);
    client.assert_no_errors();
    assert_eq!(client.stat("request_count", "avg"), 8.0);
    // OSL = reasoning + output, each tokenized by the client.
    assert_eq!(client.stat("output_sequence_length", "avg"), 16.0);
    assert_eq!(client.stat("reasoning_token_count", "avg"), 6.0);
    assert_eq!(client.stat("output_token_count", "avg"), 10.0);
    assert_eq!(client.stat("input_sequence_length", "avg"), 32.0);
    assert_eq!(client.stat("usage_completion_tokens", "avg"), 19.0);
    assert!(client.has("usage_completion_tokens_diff_pct"));
    // TTFT is the first reasoning token; the first answer token comes 6 tokens later.
    assert!(client.stat("time_to_first_token", "min") >= 20.0);
    assert!(
        client.stat("time_to_first_output_token", "min")
            >= client.stat("time_to_first_token", "min") + 10.0
    );
    assert!(client.stat("request_latency", "min") >= 20.0 + 15.0 * 2.0);
    // Completion 19 against 16 counted here is 18.75% off: the console warns.
    let warned = "8 of 8 requests (100.0%) reported token counts (usage) more than 10%";
    assert!(client.stdout.contains(warned), "{}", client.stdout);
    assert!(client.stdout.contains("Token Count Discrepancy Warning"));
    assert!(!client.stdout.contains("OSL Mismatch Warning"));

    let mut args = common.to_vec();
    args.push("--use-server-token-count");
    let server = profile(&mock, "chat-reasoning-server", &args);
    server.assert_no_errors();
    // Input prompt_tokens; reasoning from the details; output completion - reasoning.
    assert_eq!(server.stat("input_sequence_length", "avg"), 35.0);
    assert_eq!(server.stat("reasoning_token_count", "avg"), 6.0);
    assert_eq!(server.stat("output_token_count", "avg"), 13.0);
    assert_eq!(server.stat("output_sequence_length", "avg"), 19.0);
    assert!(!server.has("usage_completion_tokens_diff_pct"));
    assert!(!server.has("usage_prompt_tokens_diff_pct"));
    assert!(!server.stdout.contains("Token Count Discrepancy Warning"));
}

/// A server that ignores `max_tokens`: 64 tokens each where 20 were asked. The console
/// says how many and by how much.
#[test]
fn output_lengths_off_the_requested_osl_are_warned_about() {
    let mock = Mock::start(&["--output-tokens", "64", "--ignore-max-tokens"]);
    let run = profile(
        &mock,
        "osl-mismatch",
        &[
            "--endpoint-type",
            "chat",
            "--osl",
            "20",
            "--request-count",
            "4",
        ],
    );
    run.assert_no_errors();
    assert_eq!(run.stat("output_sequence_length", "avg"), 64.0);
    assert!(
        run.stdout.contains("OSL Mismatch Warning"),
        "{}",
        run.stdout
    );
    // The panel wraps its text: each piece checked stays on one line.
    for piece in [
        "4 of 4 requests (100.0%) came back with an output length other than",
        "(--osl) (on average +220.0%), by more than 5% or 50 tokens.",
    ] {
        assert!(run.stdout.contains(piece), "{piece}: {}", run.stdout);
    }
}

/// The server's prompt cache, as AIPerf 0.13 reports it: 7 of each request's 32 prompt
/// tokens read from the cache (`prompt_tokens_details.cached_tokens`).
#[test]
fn chat_reports_the_servers_prompt_cache() {
    let mock = Mock::start(&["--ttft-ms", "5", "--itl-ms", "1", "--cached-tokens", "7"]);
    let run = profile(
        &mock,
        "chat-prompt-cache",
        &[
            "--endpoint-type",
            "chat",
            "--streaming",
            "--isl",
            "32",
            "--osl",
            "16",
            "--concurrency",
            "2",
            "--request-count",
            "8",
        ],
    );
    run.assert_no_errors();
    assert_eq!(run.stat("usage_prompt_tokens", "avg"), 32.0);
    for field in ["avg", "min", "max", "p50"] {
        assert_eq!(run.stat("usage_prompt_cache_read_tokens", field), 7.0);
    }
    assert_eq!(run.stat("usage_prompt_cache_read_tokens", "sum"), 56.0);
    assert_eq!(run.json["usage_prompt_cache_read_tokens"]["unit"], "tokens");
    assert_eq!(
        run.stat("total_usage_prompt_cache_read_tokens", "avg"),
        56.0
    );
    assert_eq!(run.stat("total_usage_prompt_tokens", "avg"), 256.0);
    // AIPerf: total reads / total prompt tokens * 100.
    assert_eq!(
        run.stat("overall_usage_prompt_cache_read_pct", "avg"),
        7.0 / 32.0 * 100.0
    );
    assert_eq!(run.json["overall_usage_prompt_cache_read_pct"]["unit"], "%");
    // OpenAI's usage has no cache writes or misses: AIPerf leaves those out.
    for tag in [
        "usage_prompt_cache_write_tokens",
        "usage_prompt_cache_miss_tokens",
        "total_usage_prompt_cache_write_tokens",
        "total_usage_prompt_cache_miss_tokens",
    ] {
        assert!(!run.has(tag), "{tag}");
    }
    for record in run.records() {
        let metrics = &record["metrics"];
        assert_eq!(
            metrics["usage_prompt_cache_read_tokens"],
            serde_json::json!({"value": 7, "unit": "tokens"}),
            "{record}"
        );
        assert!(metrics
            .get("total_usage_prompt_cache_read_tokens")
            .is_none());
        assert!(metrics.get("overall_usage_prompt_cache_read_pct").is_none());
    }
    let csv = std::fs::read_to_string(run.dir.join("profile_export_aiperf.csv")).unwrap();
    for row in [
        "Usage Prompt Cache Read Tokens (tokens),7.00,7.00,7.00,56.00,",
        "Total Usage Prompt Cache Read Tokens (tokens),56.00\r\n",
        "Overall Usage Prompt Cache Read % (%),21.88\r\n",
    ] {
        assert!(csv.contains(row), "{row}: {csv}");
    }
    // The Usage table, in AIPerf's order; headers past 30 characters put the unit on a
    // line of its own.
    let rows: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|l| l.split('│').nth(1))
        .map(str::trim)
        .filter(|h| h.contains("Usage"))
        .collect();
    assert_eq!(
        rows,
        [
            "Usage Prompt Tokens (tokens)",
            "Usage Prompt Cache Read Tokens (tokens)",
            "Usage Completion Tokens (tokens)",
            "Usage Total Tokens (tokens)",
            "Total Usage Prompt Tokens (tokens)",
            "Total Usage Prompt Cache Read Tokens",
            "Overall Usage Prompt Cache Read %",
            "Total Usage Completion Tokens (tokens)",
            "Total Usage Total Tokens (tokens)",
        ],
        "{}",
        run.stdout
    );
    let overall: Vec<&str> = run
        .stdout
        .lines()
        .find(|l| l.contains("Overall Usage Prompt Cache Read %"))
        .expect("overall row")
        .split('│')
        .map(str::trim)
        .collect();
    assert_eq!(overall[2..4], ["21.88", "N/A"]);
    assert!(!run.stdout.contains("Token usage is reported"));
    let log = std::fs::read_to_string(run.dir.join("logs/aiperf.log")).unwrap();
    assert!(!log.contains("Token usage is reported"), "{log}");
}

/// A server that reports usage but not its cache (vLLM without
/// `--enable-prompt-tokens-details`): AIPerf's hint, once in the log and after the tables.
#[test]
fn usage_without_cache_counts_gets_aiperfs_hint() {
    let mock = Mock::start(&["--ttft-ms", "5"]);
    let run = profile(
        &mock,
        "chat-no-prompt-cache",
        &["--endpoint-type", "chat", "--request-count", "4"],
    );
    run.assert_no_errors();
    assert!(run.has("total_usage_prompt_tokens"));
    assert!(!run
        .json
        .as_object()
        .unwrap()
        .keys()
        .any(|k| k.contains("cache")));
    // As rich prints it at AIPerf's 140 columns: each broken line keeps its space.
    let hint = "\n\nToken usage is reported but no prompt-cache read tokens were seen \
        (usage.prompt_tokens_details.cached_tokens absent). If your server uses \n\
        prefix/KV caching, enable cache reporting so AIPerf can populate the prompt-cache \
        metrics: vLLM --enable-prompt-tokens-details, SGLang \n\
        --enable-cache-report (TRT-LLM reports it by default).\n";
    assert_eq!(run.stdout.matches(hint).count(), 1, "{}", run.stdout);
    let log = std::fs::read_to_string(run.dir.join("logs/aiperf.log")).unwrap();
    let logged = "Token usage is reported but no prompt-cache read tokens were seen";
    assert_eq!(log.matches(logged).count(), 1, "{log}");
}

#[test]
fn chat_reasoning_in_the_reasoning_field_without_streaming() {
    let mock = Mock::start(&[
        "--ttft-ms",
        "5",
        "--reasoning-tokens",
        "4",
        "--reasoning-field",
        "reasoning",
    ]);
    let run = profile(
        &mock,
        "chat-reasoning-field",
        &[
            "--endpoint-type",
            "chat",
            "--osl",
            "12",
            "--request-count",
            "4",
            "--use-legacy-max-tokens",
        ],
    );
    run.assert_no_errors();
    assert_eq!(run.stat("output_sequence_length", "avg"), 12.0);
    assert_eq!(run.stat("reasoning_token_count", "avg"), 4.0);
    for payload in run.payloads() {
        assert_eq!(payload["max_tokens"], 12, "{payload}");
        assert!(payload.get("max_completion_tokens").is_none());
    }
}

#[test]
fn chat_sends_images_and_audio_as_content_parts() {
    let mock = Mock::start(&["--ttft-ms", "5", "--output-tokens", "8"]);
    let run = profile(
        &mock,
        "chat-multimodal",
        &[
            "--endpoint-type",
            "chat",
            "--streaming",
            "--isl",
            "16",
            "--image-width-mean",
            "8",
            "--image-height-mean",
            "6",
            "--image-batch-size",
            "2",
            "--audio-length-mean",
            "0.05",
            "--request-count",
            "5",
        ],
    );
    // The mock refuses malformed media parts, so no error means they were well formed.
    run.assert_no_errors();
    assert_eq!(run.stat("request_count", "avg"), 5.0);
    assert_eq!(run.stat("output_sequence_length", "avg"), 8.0);
    assert_eq!(run.stat("input_sequence_length", "avg"), 16.0);
    let payloads = run.payloads();
    assert_eq!(payloads.len(), 5);
    for payload in payloads {
        let parts = payload["messages"][0]["content"].as_array().expect("parts");
        let kinds: Vec<&str> = parts.iter().filter_map(|p| p["type"].as_str()).collect();
        assert_eq!(kinds, ["text", "image_url", "image_url", "input_audio"]);
        let url = parts[1]["image_url"]["url"].as_str().expect("url");
        // JPEG, as AIPerf 0.13 sends without --image-format (base64 of FF D8 FF).
        assert!(url.starts_with("data:image/jpeg;base64,/9j/"), "{url:.40}");
        assert_eq!(parts[3]["input_audio"]["format"], "wav");
        let audio = parts[3]["input_audio"]["data"].as_str().expect("data");
        assert!(
            audio.starts_with("UklGR"),
            "not a base64 RIFF file: {audio:.20}"
        );
    }
}

// ----------------------------------------------------------- responses and messages

/// The settings both APIs' streaming runs share: 16 tokens of which 4 are reasoning, the
/// first at 40 ms, then one every 4 ms.
const ITEMS_MOCK: [&str; 8] = [
    "--ttft-ms",
    "40",
    "--itl-ms",
    "4",
    "--output-tokens",
    "16",
    "--reasoning-tokens",
    "4",
];

fn items_args<'a>(endpoint: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--endpoint-type",
        endpoint,
        "--isl",
        "32",
        "--osl",
        "16",
        "--concurrency",
        "2",
        "--request-count",
        "8",
    ];
    args.extend_from_slice(extra);
    args
}

/// What a streamed run against [`ITEMS_MOCK`] must show, counted by the client: every
/// request, 16 tokens of which 4 reasoning, the mock's TTFT and ITL.
fn assert_streamed_items(run: &Run) {
    run.assert_no_errors();
    assert_eq!(run.stat("request_count", "avg"), 8.0);
    assert_eq!(run.records().len(), 8);
    assert_eq!(run.stat("input_sequence_length", "avg"), 32.0);
    for field in ["min", "max"] {
        assert_eq!(
            run.stat("output_sequence_length", field),
            16.0,
            "OSL {field}"
        );
    }
    assert_eq!(run.stat("reasoning_token_count", "avg"), 4.0);
    assert_eq!(run.stat("output_token_count", "avg"), 12.0);
    assert!(run.stat("time_to_first_token", "min") >= 40.0);
    let ttft = run.stat("time_to_first_token", "p50");
    assert!(
        (ttft - 40.0).abs() <= 2.0,
        "TTFT p50 {ttft} ms, expected 40 ± 2"
    );
    let itl = run.stat("inter_token_latency", "p50");
    assert!(
        (itl - 4.0).abs() <= 0.5,
        "ITL p50 {itl} ms, expected 4 ± 0.5"
    );
    // The first answer token comes after the 4 reasoning ones.
    let ttfo = run.stat("time_to_first_output_token", "p50");
    assert!(
        (ttfo - 56.0).abs() <= 2.0,
        "TTFO p50 {ttfo} ms, expected 56 ± 2"
    );
    assert!(run.stat("request_latency", "min") >= 40.0 + 15.0 * 4.0);
    let titles = run.titles();
    assert!(
        titles.contains(&"NVIDIA AIPerf | LLM Metrics"),
        "{}",
        run.stdout
    );
}

#[test]
fn responses_stream_text_and_reasoning() {
    let mock = Mock::start(&ITEMS_MOCK);
    let client = profile(
        &mock,
        "responses-stream",
        &items_args("responses", &["--streaming"]),
    );
    assert_streamed_items(&client);
    // The server's usage, read from `response.completed` (reasoning from
    // `output_tokens_details`): the mock counts the prompt's 32 words.
    assert_eq!(client.stat("usage_prompt_tokens", "avg"), 32.0);
    assert_eq!(client.stat("usage_completion_tokens", "avg"), 16.0);
    assert_eq!(client.stat("usage_reasoning_tokens", "avg"), 4.0);
    assert_eq!(client.stat("usage_total_tokens", "avg"), 48.0);
    for payload in client.payloads() {
        let keys: Vec<&String> = payload.as_object().expect("object").keys().collect();
        assert_eq!(
            keys,
            ["input", "max_output_tokens", "model", "stream"],
            "{payload}"
        );
        assert_eq!(payload["stream"], true);
        assert_eq!(payload["max_output_tokens"], 16);
        let items = payload["input"].as_array().expect("items");
        assert_eq!(items.len(), 1, "{payload}");
        assert_eq!(items[0]["type"], "message");
        assert_eq!(items[0]["role"], "user");
        assert!(items[0]["content"].is_string(), "{payload}");
    }

    // Counted from the server's usage, which the body now asks for.
    let server = profile(
        &mock,
        "responses-stream-server",
        &items_args("responses", &["--streaming", "--use-server-token-count"]),
    );
    server.assert_no_errors();
    assert_eq!(server.stat("input_sequence_length", "avg"), 32.0);
    assert_eq!(server.stat("output_sequence_length", "avg"), 16.0);
    assert_eq!(server.stat("reasoning_token_count", "avg"), 4.0);
    assert_eq!(server.stat("output_token_count", "avg"), 12.0);
    for payload in server.payloads() {
        assert_eq!(
            payload["stream_options"],
            serde_json::json!({"include_usage": true})
        );
    }
}

#[test]
fn responses_answer_whole() {
    let mock = Mock::start(&ITEMS_MOCK);
    let run = profile(&mock, "responses-whole", &items_args("responses", &[]));
    run.assert_no_errors();
    assert_eq!(run.stat("request_count", "avg"), 8.0);
    assert_eq!(run.records().len(), 8);
    // Reasoning from the reasoning item's summary, text from the message item.
    assert_eq!(run.stat("output_sequence_length", "avg"), 16.0);
    assert_eq!(run.stat("reasoning_token_count", "avg"), 4.0);
    assert_eq!(run.stat("input_sequence_length", "avg"), 32.0);
    assert_eq!(run.stat("usage_completion_tokens", "avg"), 16.0);
    assert!(run.stat("request_latency", "min") >= 40.0 + 15.0 * 4.0);
    assert!(!run.has("time_to_first_token"));
    for payload in run.payloads() {
        assert_eq!(payload["stream"], false);
    }
}

#[test]
fn messages_stream_thinking_and_text() {
    let mock = Mock::start(&ITEMS_MOCK);
    let client = profile(
        &mock,
        "messages-stream",
        &items_args("messages", &["--streaming"]),
    );
    assert_streamed_items(&client);
    // `message_start` has the input count and `message_delta` only the output one: the
    // record keeps both.
    assert_eq!(client.stat("usage_prompt_tokens", "avg"), 32.0);
    assert_eq!(client.stat("usage_completion_tokens", "avg"), 16.0);
    assert!(!client.has("usage_reasoning_tokens"));
    for payload in client.payloads() {
        let keys: Vec<&String> = payload.as_object().expect("object").keys().collect();
        assert_eq!(
            keys,
            ["max_tokens", "messages", "model", "stream"],
            "{payload}"
        );
        assert_eq!(payload["max_tokens"], 16);
        assert_eq!(payload["stream"], true);
        assert_eq!(payload["messages"][0]["role"], "user");
    }

    let server = profile(
        &mock,
        "messages-stream-server",
        &items_args("messages", &["--streaming", "--use-server-token-count"]),
    );
    server.assert_no_errors();
    assert_eq!(server.stat("input_sequence_length", "avg"), 32.0);
    assert_eq!(server.stat("output_sequence_length", "avg"), 16.0);
}

#[test]
fn messages_answer_whole() {
    let mock = Mock::start(&ITEMS_MOCK);
    let run = profile(&mock, "messages-whole", &items_args("messages", &[]));
    run.assert_no_errors();
    assert_eq!(run.stat("request_count", "avg"), 8.0);
    assert_eq!(run.records().len(), 8);
    assert_eq!(run.stat("output_sequence_length", "avg"), 16.0);
    assert_eq!(run.stat("reasoning_token_count", "avg"), 4.0);
    assert_eq!(run.stat("usage_prompt_tokens", "avg"), 32.0);
    assert!(run.stat("request_latency", "min") >= 40.0 + 15.0 * 4.0);
    for payload in run.payloads() {
        // Not streaming: no `stream` key at all, as Claude clients send it.
        assert!(payload.get("stream").is_none(), "{payload}");
    }
}

/// Anthropic's cache counts are apart from `input_tokens` (20 of 32 here): AIPerf adds
/// them back for the prompt count and reports reads and writes; the Responses API
/// reports reads only.
#[test]
fn messages_and_responses_report_the_prompt_cache() {
    let mock = Mock::start(&["--cached-tokens", "7", "--cache-write-tokens", "5"]);
    let messages = profile(
        &mock,
        "messages-prompt-cache",
        &items_args("messages", &["--streaming"]),
    );
    messages.assert_no_errors();
    assert_eq!(messages.stat("usage_prompt_tokens", "avg"), 32.0);
    assert_eq!(messages.stat("usage_prompt_cache_read_tokens", "avg"), 7.0);
    assert_eq!(messages.stat("usage_prompt_cache_write_tokens", "avg"), 5.0);
    assert_eq!(
        messages.stat("total_usage_prompt_cache_read_tokens", "avg"),
        56.0
    );
    assert_eq!(
        messages.stat("total_usage_prompt_cache_write_tokens", "avg"),
        40.0
    );
    assert_eq!(
        messages.stat("overall_usage_prompt_cache_read_pct", "avg"),
        7.0 / 32.0 * 100.0
    );
    for record in messages.records() {
        let metrics = &record["metrics"];
        assert_eq!(metrics["usage_prompt_cache_write_tokens"]["value"], 5);
        assert_eq!(metrics["usage_prompt_cache_read_tokens"]["value"], 7);
    }
    // Past 30 characters, the unit goes on the next line.
    assert!(messages
        .stdout
        .contains("Usage Prompt Cache Write Tokens │"));

    let responses = profile(
        &mock,
        "responses-prompt-cache",
        &items_args("responses", &["--streaming"]),
    );
    responses.assert_no_errors();
    assert_eq!(responses.stat("usage_prompt_tokens", "avg"), 32.0);
    assert_eq!(responses.stat("usage_prompt_cache_read_tokens", "avg"), 7.0);
    assert_eq!(
        responses.stat("overall_usage_prompt_cache_read_pct", "avg"),
        7.0 / 32.0 * 100.0
    );
    assert!(!responses.has("usage_prompt_cache_write_tokens"));
}

/// The mock refuses what Anthropic's API refuses: a request without `anthropic-version`.
#[test]
fn the_messages_mock_wants_a_version_header() {
    use std::io::{Read, Write};
    let mock = Mock::start(&[]);
    let addr = mock.url.trim_start_matches("http://");
    let body = r#"{"model":"m","max_tokens":4,"messages":[{"role":"user","content":"hi"}]}"#;
    let mut answers = Vec::new();
    for version in ["", "anthropic-version: 2023-06-01\r\n"] {
        let mut conn = std::net::TcpStream::connect(addr).expect("connect to the mock");
        let request = format!(
            "POST /v1/messages HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             {version}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(request.as_bytes()).expect("send");
        let mut response = String::new();
        conn.read_to_string(&mut response).expect("read");
        answers.push(response);
    }
    assert!(answers[0].starts_with("HTTP/1.1 400"), "{}", answers[0]);
    assert!(
        answers[0].contains(concat!(
            r#"{"error":{"message":"anthropic-version: header is required","#,
            r#""type":"invalid_request_error"},"type":"error"}"#,
        )),
        "{}",
        answers[0]
    );
    assert!(answers[1].starts_with("HTTP/1.1 200"), "{}", answers[1]);
    assert!(
        answers[1].contains(r#""text":" the of and to""#),
        "{}",
        answers[1]
    );
}

/// One conversation of two turns from a file, to a server that records what it got: the
/// exact bodies and headers, the history with the reply, and the key nowhere in the
/// artifacts.
fn capture_conversation(
    name: &str,
    endpoint: &str,
    answer: &'static str,
) -> (Vec<(String, String)>, PathBuf) {
    let (url, server) = common::capture_requests_answering(2, answer);
    let dir = run_dir(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("run dir");
    let file = dir.join("conversation.jsonl");
    let row = r#"{"session_id": "s1", "turns": [{"text": "hello world"}, {"text": "and again"}]}"#;
    std::fs::write(&file, format!("{row}\n")).expect("input file");
    let artifacts = dir.join("artifacts");
    let output = common::run_profile(
        &[&url],
        &artifacts,
        &[
            "--endpoint-type",
            endpoint,
            "--input-file",
            file.to_str().expect("utf-8 path"),
            "--custom-dataset-type",
            "multi_turn",
            "--system-prompt",
            "Be brief.",
            "--api-key",
            SECRET,
            "--request-count",
            "2",
            "--concurrency",
            "1",
            "--workers",
            "1",
            "--export-level",
            "raw",
        ],
    );
    common::assert_succeeded(&output);
    let requests = server.join().expect("server");
    let sent = requests
        .into_iter()
        .map(|(head, body)| (head, String::from_utf8(body).expect("a UTF-8 body")))
        .collect();
    (sent, artifacts)
}

const SECRET: &str = "sk-e2e-secret-7c1f";

/// Every artifact file, read: none may hold the key.
fn assert_key_written_nowhere(dir: &std::path::Path) {
    let mut pending = vec![dir.to_path_buf()];
    let mut files = 0;
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("artifact dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            files += 1;
            let bytes = std::fs::read(&path).expect("artifact");
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains(SECRET), "{} holds the key", path.display());
        }
    }
    assert!(files >= 5, "only {files} artifacts");
}

/// A header's value in a request head, by name in any case.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn messages_send_aiperfs_bodies_and_headers() {
    let answer = concat!(
        r#"{"id":"msg_1","type":"message","role":"assistant","model":"m","#,
        r#""content":[{"type":"text","text":"hi there"}],"stop_reason":"end_turn","#,
        r#""usage":{"input_tokens":5,"output_tokens":2}}"#,
    );
    let (sent, artifacts) = capture_conversation("messages-capture", "messages", answer);
    let bodies: Vec<&str> = sent.iter().map(|(_, b)| b.as_str()).collect();
    assert_eq!(
        bodies,
        [
            concat!(
                r#"{"model":"m","messages":[{"role":"user","content":"hello world"}],"#,
                r#""max_tokens":1024,"system":"Be brief."}"#
            ),
            concat!(
                r#"{"model":"m","messages":[{"role":"user","content":"hello world"},"#,
                r#"{"role":"assistant","content":"hi there"},"#,
                r#"{"role":"user","content":"and again"}],"max_tokens":1024,"#,
                r#""system":"Be brief."}"#
            ),
        ]
    );
    for (head, _) in &sent {
        assert!(head.starts_with("POST /v1/messages HTTP/1.1\r\n"), "{head}");
        assert_eq!(header(head, "x-api-key"), Some(SECRET), "{head}");
        assert_eq!(
            header(head, "anthropic-version"),
            Some("2023-06-01"),
            "{head}"
        );
        assert_eq!(header(head, "authorization"), None, "{head}");
        assert_eq!(
            header(head, "content-type"),
            Some("application/json"),
            "{head}"
        );
    }
    let json = common::read_json(&artifacts);
    assert_eq!(json["input_config"]["endpoint"]["api_key"], "<redacted>");
    assert_eq!(common::stat(&json, "request_count", "avg"), 2.0);
    // The server's usage counts 5 in and 2 out; the client counts the reply's 2 tokens.
    assert_eq!(common::stat(&json, "output_sequence_length", "avg"), 2.0);
    assert_eq!(common::stat(&json, "usage_prompt_tokens", "avg"), 5.0);
    let raw = std::fs::read_to_string(artifacts.join("profile_export_raw.jsonl")).expect("raw");
    let first: Value = serde_json::from_str(raw.lines().next().expect("a line")).expect("json");
    assert_eq!(
        first["request_headers"]["x-api-key"], "<redacted>",
        "{first}"
    );
    assert_eq!(first["request_headers"]["anthropic-version"], "2023-06-01");
    assert_key_written_nowhere(&artifacts);
}

/// `--wait-for-model-timeout` probes the Messages API where it is, with its key header.
#[test]
fn the_readiness_probe_speaks_the_messages_api() {
    let answer = concat!(
        r#"{"id":"msg_1","type":"message","role":"assistant","model":"m","#,
        r#""content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn"}"#,
    );
    let (url, server) = common::capture_requests_answering(2, answer);
    let dir = run_dir("messages-readiness");
    let _ = std::fs::remove_dir_all(&dir);
    let output = common::run_profile(
        &[&url],
        &dir,
        &[
            "--endpoint-type",
            "messages",
            "--api-key",
            SECRET,
            "--wait-for-model-timeout",
            "10",
            "--request-count",
            "1",
        ],
    );
    common::assert_succeeded(&output);
    let sent = server.join().expect("server");
    let (head, body) = &sent[0];
    assert!(head.starts_with("POST /v1/messages HTTP/1.1\r\n"), "{head}");
    assert_eq!(header(head, "x-api-key"), Some(SECRET), "{head}");
    assert_eq!(
        header(head, "anthropic-version"),
        Some("2023-06-01"),
        "{head}"
    );
    assert_eq!(header(head, "authorization"), None, "{head}");
    assert_eq!(
        String::from_utf8_lossy(body),
        r#"{"max_tokens":1,"messages":[{"content":"Lo","role":"user"}],"model":"m"}"#
    );
    // Then the benchmark's own request.
    assert!(sent[1].0.starts_with("POST /v1/messages HTTP/1.1\r\n"));
    assert_key_written_nowhere(&dir);
}

#[test]
fn responses_send_aiperfs_bodies_and_headers() {
    let answer = concat!(
        r#"{"id":"resp_1","object":"response","status":"completed","model":"m","#,
        r#""output":[{"type":"message","id":"msg_1","role":"assistant","#,
        r#""content":[{"type":"output_text","text":"hi there","annotations":[]}]}],"#,
        r#""usage":{"input_tokens":5,"output_tokens":2,"total_tokens":7}}"#,
    );
    let (sent, artifacts) = capture_conversation("responses-capture", "responses", answer);
    let bodies: Vec<&str> = sent.iter().map(|(_, b)| b.as_str()).collect();
    assert_eq!(
        bodies,
        [
            concat!(
                r#"{"input":[{"role":"user","content":"hello world","type":"message"}],"#,
                r#""model":"m","stream":false,"instructions":"Be brief."}"#
            ),
            concat!(
                r#"{"input":[{"role":"user","content":"hello world","type":"message"},"#,
                r#"{"role":"assistant","content":"hi there","type":"message"},"#,
                r#"{"role":"user","content":"and again","type":"message"}],"#,
                r#""model":"m","stream":false,"instructions":"Be brief."}"#
            ),
        ]
    );
    for (head, _) in &sent {
        assert!(
            head.starts_with("POST /v1/responses HTTP/1.1\r\n"),
            "{head}"
        );
        let bearer = format!("Bearer {SECRET}");
        assert_eq!(
            header(head, "authorization"),
            Some(bearer.as_str()),
            "{head}"
        );
        assert_eq!(header(head, "x-api-key"), None, "{head}");
    }
    let json = common::read_json(&artifacts);
    assert_eq!(common::stat(&json, "output_sequence_length", "avg"), 2.0);
    assert_eq!(common::stat(&json, "usage_total_tokens", "avg"), 7.0);
    assert_key_written_nowhere(&artifacts);
}

// ------------------------------------------------------------------------ embeddings

/// `--prompt-batch-size` (AIPerf's `-b`): an embeddings request carries that many
/// inputs, and its input length counts them all.
#[test]
fn embeddings_send_a_prompt_batch() {
    let mock = Mock::start(&["--ttft-ms", "2"]);
    let run = profile(
        &mock,
        "embeddings-batch",
        &[
            "--endpoint-type",
            "embeddings",
            "--isl",
            "10",
            "-b",
            "4",
            "--request-count",
            "3",
        ],
    );
    run.assert_no_errors();
    for payload in run.payloads() {
        let inputs = payload["input"].as_array().expect("a list of inputs");
        assert_eq!(inputs.len(), 4, "{payload}");
    }
    let isl = run.stat("input_sequence_length", "avg");
    assert!((40.0..=44.0).contains(&isl), "four 10-token inputs: {isl}");
    assert_eq!(
        run.json["input_config"]["datasets"][0]["prompts"]["batch_size"],
        4
    );
    run.assert_tokenless("Embeddings Metrics");
}

#[test]
fn chat_embeddings_and_nim_embeddings_with_images() {
    let mock = Mock::start(&["--ttft-ms", "8"]);
    let image_args = [
        "--image-width-mean",
        "4",
        "--image-height-mean",
        "4",
        "--image-format",
        "png",
    ];
    for endpoint in ["chat_embeddings", "nim_embeddings"] {
        let mut args = vec![
            "--endpoint-type",
            endpoint,
            "--isl",
            "12",
            "--concurrency",
            "2",
            "--request-count",
            "6",
        ];
        args.extend(image_args);
        let run = profile(&mock, endpoint, &args);
        run.assert_no_errors();
        assert_eq!(run.stat("request_count", "avg"), 6.0, "{endpoint}");
        assert!(run.stat("request_latency", "min") >= 8.0, "{endpoint}");
        assert_eq!(run.stat("input_sequence_length", "avg"), 12.0, "{endpoint}");
        let payload = &run.payloads()[0];
        match endpoint {
            "chat_embeddings" => {
                assert_eq!(payload["messages"][0]["content"][1]["type"], "image_url");
                run.assert_tokenless("Embeddings Metrics");
            }
            _ => {
                let input = payload["input"][0].as_str().expect("input");
                assert!(
                    input.contains(" <img src='data:image/png;base64,"),
                    "{input:.80}"
                );
                run.assert_tokenless("NIM Embeddings Metrics");
            }
        }
    }
}

// -------------------------------------------------------------------------- rankings

#[test]
fn rankings_nim_cohere_and_tei() {
    let mock = Mock::start(&["--ttft-ms", "6"]);
    for (endpoint, title) in [
        ("nim_rankings", "Rankings Metrics"),
        ("cohere_rankings", "Ranking Metrics"),
        ("hf_tei_rankings", "Ranking Metrics"),
    ] {
        let run = profile(
            &mock,
            endpoint,
            &[
                "--endpoint-type",
                endpoint,
                "--rankings-passages-mean",
                "3",
                "--rankings-query-prompt-token-mean",
                "8",
                "--rankings-passages-prompt-token-mean",
                "16",
                "--concurrency",
                "2",
                "--request-count",
                "6",
            ],
        );
        run.assert_no_errors();
        assert_eq!(run.stat("request_count", "avg"), 6.0, "{endpoint}");
        assert!(run.stat("request_latency", "min") >= 6.0, "{endpoint}");
        // ISL: query and passages joined by spaces, tokenized: 8 + 3 * 16 words, plus at
        // most one token per join.
        let isl = run.stat("input_sequence_length", "avg");
        assert!((56.0..=59.0).contains(&isl), "{endpoint}: ISL {isl}");
        run.assert_tokenless(title);
        let payload = &run.payloads()[0];
        let passages = match endpoint {
            "nim_rankings" => {
                assert!(payload["query"]["text"].is_string());
                payload["passages"].as_array().expect("passages").len()
            }
            "cohere_rankings" => payload["documents"].as_array().expect("documents").len(),
            _ => payload["texts"].as_array().expect("texts").len(),
        };
        assert_eq!(passages, 3, "{endpoint}: {payload}");
    }
}

// -------------------------------------------------------------------------------- TGI

#[test]
fn huggingface_generate_streams_tokens_and_answers_whole() {
    let mock = Mock::start(&["--ttft-ms", "15", "--itl-ms", "3"]);
    let stream = profile(
        &mock,
        "tgi-stream",
        &[
            "--endpoint-type",
            "huggingface_generate",
            "--streaming",
            "--isl",
            "20",
            "--osl",
            "12",
            "--request-count",
            "5",
        ],
    );
    stream.assert_no_errors();
    assert_eq!(stream.stat("output_sequence_length", "avg"), 12.0);
    assert!(stream.stat("time_to_first_token", "min") >= 15.0);
    assert!(stream.stat("request_latency", "min") >= 15.0 + 11.0 * 3.0);
    let itl = stream.stat("inter_token_latency", "avg");
    assert!(itl >= 2.5, "ITL {itl} ms below the mock's 3 ms");
    let payload = &stream.payloads()[0];
    assert_eq!(payload["parameters"]["max_new_tokens"], 12);
    assert!(payload["inputs"].is_string());

    let whole = profile(
        &mock,
        "tgi-whole",
        &[
            "--endpoint-type",
            "huggingface_generate",
            "--osl",
            "7",
            "--request-count",
            "3",
        ],
    );
    whole.assert_no_errors();
    assert_eq!(whole.stat("output_sequence_length", "avg"), 7.0);
    assert!(whole.stat("request_latency", "min") >= 15.0 + 6.0 * 3.0);
}

// ----------------------------------------------------------------------------- images

#[test]
fn image_generation_streams_partial_images() {
    let mock = Mock::start(&["--ttft-ms", "10", "--itl-ms", "5"]);
    let run = profile(
        &mock,
        "images-stream",
        &[
            "--endpoint-type",
            "image_generation",
            "--streaming",
            "--extra-inputs",
            "partial_images:2",
            "--request-count",
            "4",
        ],
    );
    run.assert_no_errors();
    assert_eq!(run.stat("request_count", "avg"), 4.0);
    // The last image (after two partials) is the end of the request.
    assert!(run.stat("request_latency", "min") >= 10.0 + 2.0 * 5.0);
    // No tokens, but an output length of 0 (AIPerf counts the images' empty text).
    assert_eq!(run.stat("output_sequence_length", "max"), 0.0);
    assert!(!run.has("total_osl") && !run.has("output_token_throughput"));
    assert!(
        run.stdout.contains("Image Generation Metrics"),
        "{}",
        run.stdout
    );
    let payload = &run.payloads()[0];
    assert_eq!(payload["stream"], true);
    assert_eq!(payload["response_format"], "b64_json");
    assert_eq!(payload["partial_images"], 2);

    let whole = profile(
        &mock,
        "images-whole",
        &[
            "--endpoint-type",
            "image_generation",
            "--extra-inputs",
            "n:2",
            "--request-count",
            "3",
        ],
    );
    whole.assert_no_errors();
    assert!(whole.stat("request_latency", "min") >= 10.0);
    // The server's completion count is read (AIPerf's usage comparison wants it) but not
    // compared with the client's 0, nor totalled.
    assert!(whole.stat("usage_completion_tokens", "min") > 0.0);
    assert!(!whole.has("usage_completion_tokens_diff_pct"));
    assert!(!whole.has("total_usage_completion_tokens"));
    assert!(whole.payloads()[0].get("stream").is_none());
}

// ------------------------------------------------------------------------------ video

/// Posts `body` to the mock's video jobs with this `Content-Type`; returns the status line.
fn post_video(mock: &Mock, content_type: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let addr = mock.url.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(addr).expect("connect to the mock");
    let request = format!(
        "POST /v1/videos HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    conn.read_to_string(&mut response).expect("read");
    response.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn video_generation_polls_until_the_job_completes() {
    let mock = Mock::start(&["--video-ms", "150", "--video-bytes", "4096"]);
    // The mock takes the submit only as a form, as OpenAI's API does: JSON is refused,
    // so the successful runs below prove the client sends multipart.
    assert_eq!(
        post_video(&mock, "application/json", r#"{"prompt":"x","model":"m"}"#),
        "HTTP/1.1 415 Unsupported Media Type"
    );
    let form = "--b\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nx\r\n--b--\r\n";
    assert_eq!(
        post_video(&mock, "multipart/form-data; boundary=b", form),
        "HTTP/1.1 200 OK"
    );
    let run = profile(
        &mock,
        "video",
        &[
            "--endpoint-type",
            "video_generation",
            "--video-poll-interval",
            "0.02",
            "--download-video-content",
            "--extra-inputs",
            "seconds:4",
            "--extra-inputs",
            "size:640x360",
            "--concurrency",
            "2",
            "--request-count",
            "4",
        ],
    );
    run.assert_no_errors();
    assert_eq!(run.stat("request_count", "avg"), 4.0);
    // Submit to completion: no shorter than the job.
    let latency = run.stat("request_latency", "min");
    assert!(latency >= 150.0, "latency {latency} ms, the job takes 150");
    assert!(run.stat("request_latency", "max") < 5_000.0);
    assert!(
        run.stdout.contains("Video Generation Metrics"),
        "{}",
        run.stdout
    );
    // `inputs.json` keeps the JSON object AIPerf builds; the wire carried it as a form.
    assert_eq!(
        run.payloads()[0],
        serde_json::json!({"prompt": run.payloads()[0]["prompt"], "model": "m",
            "seconds": 4, "size": "640x360"})
    );
    let records = run.records();
    assert_eq!(records.len(), 4);
    for record in records {
        assert!(record.get("error").is_none(), "{record}");
        let latency = record["metrics"]["request_latency"]["value"]
            .as_f64()
            .expect("request_latency per record");
        assert!(latency >= 150.0, "{record}");
        let start = record["metadata"]["request_start_ns"]
            .as_u64()
            .expect("start");
        let end = record["metadata"]["request_end_ns"].as_u64().expect("end");
        assert!(
            end - start >= 150_000_000,
            "record spans the whole job: {record}"
        );
        // The server's own figures of the job, as SGLang reports them.
        let metric = |tag: &str| record["metrics"][tag].clone();
        let inference = metric("video_inference_time");
        assert_eq!(inference["unit"], "ms", "{record}");
        assert!((inference["value"].as_f64().expect("ms") - 150.0).abs() < 1e-9);
        assert_eq!(
            metric("video_peak_memory"),
            serde_json::json!({"value": 8192.0, "unit": "MB"})
        );
        // As AIPerf's video transport, no HTTP trace of the submit and polls.
        assert!(
            record["metrics"].get("http_req_total").is_none(),
            "{record}"
        );
    }
    for row in ["Video Inference Time (ms)", "Video Peak Memory (MB)"] {
        assert!(run.stdout.contains(row), "{}", run.stdout);
    }
}

/// Jobs are polled every 0.1 s, as AIPerf 0.13 polls them; its
/// AIPERF_HTTP_VIDEO_POLL_INTERVAL is read when `--video-poll-interval` is not given, and
/// refused past its bounds.
#[test]
fn video_jobs_are_polled_at_aiperf_s_interval() {
    let mock = Mock::start(&["--video-ms", "150"]);
    let run = |env: Option<&str>| {
        let dir = run_dir("video-poll-interval");
        let _ = std::fs::remove_dir_all(&dir);
        let _serial = common::measuring();
        let mut command = common::profile_command(
            &[&mock.url],
            &dir,
            &[
                "--endpoint-type",
                "video_generation",
                "--request-count",
                "2",
            ],
        );
        command.env_remove("AIPERF_HTTP_VIDEO_POLL_INTERVAL");
        if let Some(value) = env {
            command.env("AIPERF_HTTP_VIDEO_POLL_INTERVAL", value);
        }
        let output = command.output().expect("run the core binary");
        let json = std::fs::read_to_string(dir.join("profile_export_aiperf.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok());
        (output, json)
    };
    let latency = |json: &Option<Value>, stat: &str| {
        json.as_ref().expect("a summary")["request_latency"][stat]
            .as_f64()
            .expect("latency")
    };
    // A 150 ms job is seen done at the second poll, 200 ms in (it took 1 s at the old
    // 1 s interval).
    let (_, json) = run(None);
    let max = latency(&json, "max");
    assert!((150.0..450.0).contains(&max), "latency {max} ms");
    let (_, json) = run(Some("0.6"));
    let min = latency(&json, "min");
    assert!(min >= 600.0, "latency {min} ms");
    let (output, _) = run(Some("20"));
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "AIPERF_HTTP_VIDEO_POLL_INTERVAL=20 is not a number of seconds from 0.001 to 10"
        ),
        "{stderr}"
    );
}

#[test]
fn video_generation_form_fields_reach_the_server() {
    let mock = Mock::start(&["--video-ms", "20"]);
    // The mock accepts only OpenAI's clip lengths: `seconds` arrives as the form part
    // `5` and is refused, so every request records the server's 400.
    let run = profile_all_failing(
        &mock,
        "video-seconds",
        &[
            "--endpoint-type",
            "video_generation",
            "--extra-inputs",
            "seconds:5",
            "--request-count",
            "2",
        ],
    );
    assert_eq!(run.errors(), 2.0);
    let summary = run.json["error_summary"].to_string();
    assert!(
        summary.contains("400") && summary.contains("'seconds' must be one of"),
        "{summary}"
    );
    assert!(summary.contains("got '5'"), "{summary}");
}

#[test]
fn video_generation_times_out() {
    let mock = Mock::start(&["--video-ms", "60000"]);
    let run = profile_all_failing(
        &mock,
        "video-timeout",
        &[
            "--endpoint-type",
            "video_generation",
            "--video-poll-interval",
            "0.05",
            "--video-poll-timeout",
            "0.3",
            "--request-count",
            "2",
        ],
    );
    assert_eq!(run.errors(), 2.0);
    let summary = run.json["error_summary"].to_string();
    assert!(
        summary.contains("TimeoutError") && summary.contains("504"),
        "{summary}"
    );
}

// ------------------------------------------------------------------------- SOLIDO RAG

#[test]
fn solido_rag_streams_on_request() {
    let mock = Mock::start(&["--ttft-ms", "12", "--itl-ms", "2", "--output-tokens", "10"]);
    let stream = profile(
        &mock,
        "solido-stream",
        &[
            "--endpoint-type",
            "solido_rag",
            "--streaming",
            "--request-count",
            "4",
        ],
    );
    stream.assert_no_errors();
    assert_eq!(stream.stat("output_sequence_length", "avg"), 10.0);
    assert!(stream.stat("time_to_first_token", "min") >= 12.0);
    assert!(
        stream.stdout.contains("SOLIDO RAG Metrics"),
        "{}",
        stream.stdout
    );
    let payload = &stream.payloads()[0];
    assert_eq!(payload["filters"]["family"], "Solido");
    assert_eq!(payload["inference_model"], "m");

    let whole = profile(
        &mock,
        "solido-whole",
        &["--endpoint-type", "solido_rag", "--request-count", "3"],
    );
    whole.assert_no_errors();
    assert_eq!(whole.stat("output_sequence_length", "avg"), 10.0);
    assert!(whole.stat("request_latency", "min") >= 12.0 + 9.0 * 2.0);
}

// --------------------------------------------------------------------------- template

#[test]
fn template_renders_bodies_and_reads_the_response_field() {
    let mock = Mock::start(&["--ttft-ms", "10", "--itl-ms", "2"]);
    let template = concat!(
        r#"{"prompt": {{ text|tojson }}, "model": {{ model|tojson }}, "#,
        r#""max_tokens": {{ max_tokens }}, "stream": {{ stream|tojson }}}"#
    );
    // In a file: `--extra-inputs` splits at every comma, as AIPerf 0.13's does, so a
    // template with commas given inline would be cut into pieces there as here.
    let template_file = run_dir("template-completions.jinja");
    std::fs::create_dir_all(template_file.parent().expect("a parent")).expect("mkdir");
    std::fs::write(&template_file, template).expect("write the template");
    let run = profile(
        &mock,
        "template-completions",
        &[
            "--endpoint-type",
            "template",
            "--custom-endpoint",
            "/v1/completions",
            // AIPerf 0.13's way to give the template and the output path.
            "--extra-inputs",
            &format!("payload_template:{}", template_file.display()),
            "--extra-inputs",
            "response_field:choices[0].text",
            "--streaming",
            "--isl",
            "24",
            "--osl",
            "10",
            "--request-count",
            "4",
        ],
    );
    run.assert_no_errors();
    assert_eq!(run.stat("output_sequence_length", "avg"), 10.0);
    assert_eq!(run.stat("input_sequence_length", "avg"), 24.0);
    assert!(run.stat("time_to_first_token", "min") >= 10.0);
    let payload = &run.payloads()[0];
    assert_eq!(payload["max_tokens"], 10);
    assert_eq!(payload["stream"], true);
    assert!(payload.get("payload_template").is_none() && payload.get("response_field").is_none());
    let _ = std::fs::remove_file(&template_file);

    // No response field: the embeddings are found by their shape.
    let embeddings = profile(
        &mock,
        "template-embeddings",
        &[
            "--endpoint-type",
            "template",
            "--custom-endpoint",
            "/v1/embeddings",
            "--endpoint-template",
            r#"{"model": {{ model|tojson }}, "input": {{ texts|tojson }}}"#,
            "--extra-inputs",
            "encoding_format:float",
            "--request-count",
            "3",
        ],
    );
    embeddings.assert_no_errors();
    assert_eq!(embeddings.stat("request_count", "avg"), 3.0);
    assert!(embeddings.stat("request_latency", "min") >= 10.0);
    assert_eq!(embeddings.payloads()[0]["encoding_format"], "float");

    // The mock's whole chat answer carries `usage`: as AIPerf's template endpoint, ours
    // reads only the response field, so no usage metric appears.
    let chat = profile(
        &mock,
        "template-chat-usage",
        &[
            "--endpoint-type",
            "template",
            "--custom-endpoint",
            "/v1/chat/completions",
            "--endpoint-template",
            concat!(
                r#"{"model": {{ model|tojson }}, "max_tokens": {{ max_tokens }}, "#,
                r#""messages": [{"role": "user", "content": {{ text|tojson }}}]}"#
            ),
            "--response-field",
            "choices[0].message.content",
            "--osl",
            "6",
            "--request-count",
            "2",
        ],
    );
    chat.assert_no_errors();
    assert_eq!(chat.stat("output_sequence_length", "avg"), 6.0);
    for tag in [
        "usage_prompt_tokens",
        "usage_completion_tokens",
        "usage_discrepancy_count",
    ] {
        assert!(!chat.has(tag), "{tag}");
    }
}

#[test]
fn every_endpoint_is_linked() {
    let output = Command::new(core_binary())
        .args(["plugins", "endpoint"])
        .output()
        .expect("run");
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    for name in [
        "chat",
        "chat_embeddings",
        "completions",
        "cohere_rankings",
        "embeddings",
        "hf_tei_rankings",
        "huggingface_generate",
        "image_generation",
        "messages",
        "nim_embeddings",
        "nim_rankings",
        "responses",
        "solido_rag",
        "template",
        "video_generation",
    ] {
        assert!(
            stdout.contains(&format!("│ {name} ")),
            "{name} missing:\n{stdout}"
        );
    }
}
