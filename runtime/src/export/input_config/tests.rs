//! `input_config` against what AIPerf 0.13.0 wrote for the same flags, and its redaction.

use clap::{Args as _, Command, FromArgMatches as _};
use serde_json::{json, Value};

use super::*;

/// AIPerf's own `input_config` for each case (see `_about` in the file).
const AIPERF: &str = include_str!("aiperf-0.13.json");

/// The flags every AIPerf case ran with besides its own.
const COMMON: [&str; 6] = [
    "--url",
    "http://127.0.0.1:8000",
    "--tokenizer",
    "builtin",
    "--ui",
    "none",
];

/// Flags parsed as the binary parses them, with the given ones noted as the CLI does.
fn parse(args: &[&str]) -> ProfileConfig {
    let command = ProfileConfig::augment_args(Command::new("profile"));
    let matches = command
        .try_get_matches_from(std::iter::once("profile").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("flags {args:?} do not parse: {e}"));
    let mut config = ProfileConfig::from_arg_matches(&matches)
        .unwrap_or_else(|e| panic!("flags {args:?} do not convert: {e}"));
    config.note_given(&matches);
    config
}

fn facts<'a>(dir: &'a Path, conversations: usize) -> RunFacts<'a> {
    RunFacts {
        artifact_dir: dir,
        ui: "none",
        conversations,
        turns: conversations,
        workers: 2,
        log_level: None,
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// Each case as AIPerf wrote it, changed only where our run differs on purpose:
/// - no `gpu_telemetry` or `server_metrics` (AIPerf collects both by default; we neither),
///   unless `--no-gpu-telemetry`/`--no-server-metrics` turned them off, as we write too;
/// - every header value redacted (AIPerf keeps those whose name does not look secret);
#[test]
fn matches_what_aiperf_wrote_for_the_same_flags() {
    let cases: Value = serde_json::from_str(AIPERF).expect("the AIPerf cases are JSON");
    let cases = cases.as_object().expect("an object of cases");
    let mut checked = 0;
    for (name, case) in cases.iter().filter(|(name, _)| !name.starts_with('_')) {
        let flags: Vec<&str> = case["flags"]
            .as_array()
            .expect("flags")
            .iter()
            .map(|f| f.as_str().expect("a flag"))
            .chain(COMMON)
            .collect();
        let mut config = parse(&flags);
        if name == "em" {
            // What the run does for an endpoint that cannot stream.
            config.streaming = false;
        }
        let dir = std::path::PathBuf::from(format!("/tmp/aiperf-runs/{name}"));
        // The conversations our composer makes for the flags (the trace's rows for the
        // one file case, which it writes as the requests of a replay).
        let composed = match name.as_str() {
            "fs2" => 4,
            _ => config.dataset_entries().expect("entries"),
        };
        let ours = build(&config, &facts(&dir, composed));

        let mut expected = case["input_config"].clone();
        let doc = expected.as_object_mut().expect("input_config is an object");
        for section in ["gpu_telemetry", "server_metrics"] {
            if doc.get(section).and_then(|s| s.get("enabled")) == Some(&json!(true)) {
                doc.remove(section);
            }
        }
        if let Some(Value::Object(headers)) = doc["endpoint"].get_mut("headers") {
            headers.values_mut().for_each(|v| *v = json!("<redacted>"));
        }

        assert_eq!(
            ours,
            expected,
            "case {name}: ours\n{}\nexpected\n{}",
            pretty(&ours),
            pretty(&expected)
        );
        checked += 1;
    }
    assert_eq!(checked, 16, "every recorded case is checked");
}

/// A plain run, as written: every section a reader of AIPerf's layout looks up.
#[test]
fn a_plain_run_has_every_section() {
    let config = parse(&["-m", "m"]);
    let dir = Path::new("/runs/plain");
    let v = build(&config, &facts(dir, 10));
    let expected = json!({
        "models": {"items": [{"name": "m"}]},
        "endpoint": {"urls": ["http://localhost:8000"]},
        "datasets": [{
            "name": "main",
            "type": "synthetic",
            "prompts": {"isl": {"mean": 550.0}},
        }],
        "phases": [{
            "name": "profiling",
            "kind": "profiling",
            "type": "concurrency",
            "requests": 10,
        }],
        "artifacts": {"dir": "/runs/plain", "auto_plot": false, "plot_required": false},
        "tokenizer": {"name": "builtin"},
        "network_latency": {"enabled": false},
        "otel": {},
        "mlflow": {},
        "wandb": {},
        "runtime": {"ui": "none"},
    });
    assert_eq!(v, expected, "{}", pretty(&v));
    let ours = client_settings(&config, &facts(dir, 10));
    assert_eq!(ours, json!({"workers": 2, "io_driver": "auto"}));
}

/// `--slice-duration` is an artifacts setting in AIPerf 0.13.
#[test]
fn slice_duration_is_an_artifacts_setting() {
    let config = parse(&["-m", "m", "--slice-duration", "2.5"]);
    let v = build(&config, &facts(Path::new("/runs/s"), 10));
    assert_eq!(v["artifacts"]["slice_duration"], json!(2.5));
}

/// Without the given flags (a config not from the command line), values off AIPerf's
/// defaults are still written and those at them are not.
#[test]
fn values_off_aiperf_defaults_are_written_without_the_given_flags() {
    let command = ProfileConfig::augment_args(Command::new("profile"));
    let args = [
        "profile",
        "-m",
        "m",
        "--endpoint-type",
        "chat",
        "--request-timeout-seconds",
        "60",
        "--concurrency",
        "4",
        "--concurrency-ramp-duration",
        "2",
        "--ramp-type",
        "exponential",
        "--export-level",
        "records",
    ];
    let matches = command.try_get_matches_from(args).expect("flags parse");
    let config = ProfileConfig::from_arg_matches(&matches).expect("config");
    assert!(config.given.is_empty());
    let dir = Path::new("/runs/x");
    let facts = RunFacts {
        log_level: Some("debug"),
        ..facts(dir, 100)
    };
    let v = build(&config, &facts);
    assert_eq!(
        v["endpoint"],
        json!({"urls": ["http://localhost:8000"], "timeout": 60.0})
    );
    assert_eq!(v["phases"][0]["concurrency"], 4);
    assert_eq!(
        v["phases"][0]["concurrency_ramp"],
        json!({"duration": 2.0, "strategy": "exponential"})
    );
    assert!(v["artifacts"].get("records").is_none(), "{}", pretty(&v));
    assert_eq!(v["logging"], json!({"level": "DEBUG"}));
    // Given on the command line, the defaults are written as AIPerf writes them.
    let given = parse(&args[1..]);
    let v = build(&given, &facts);
    assert_eq!(v["endpoint"]["type"], "chat");
    assert_eq!(v["artifacts"]["records"], json!(["jsonl"]));
    assert_eq!(v["artifacts"]["raw"], false);
}

#[test]
fn log_levels_take_aiperf_names() {
    for (ours, theirs) in [
        ("trace", Some("TRACE")),
        ("debug", Some("DEBUG")),
        ("info", None),
        ("warn", Some("WARNING")),
        ("ERROR", Some("ERROR")),
        ("aiperf_runtime=debug", None),
    ] {
        assert_eq!(aiperf_log_level(ours), theirs, "{ours}");
    }
}

/// A replay without a count sends each row once, and says how many; a start offset
/// turns the automatic one off, as AIPerf writes it; offsets are integer milliseconds.
#[test]
fn a_fixed_schedule_counts_its_rows() {
    let config = parse(&[
        "-m",
        "m",
        "--input-file",
        "t.jsonl",
        "--fixed-schedule",
        "--fixed-schedule-end-offset",
        "2.5",
    ]);
    let dir = Path::new("/runs/fs");
    let facts = RunFacts {
        turns: 12,
        ..facts(dir, 4)
    };
    let v = build(&config, &facts);
    assert_eq!(
        v["phases"],
        json!([{
            "name": "profiling",
            "kind": "profiling",
            "type": "fixed_schedule",
            "requests": 12,
            "end_offset": 2.5,
        }])
    );
    assert_eq!(
        v["datasets"],
        json!([{"name": "main", "type": "file", "path": "t.jsonl"}])
    );
    let timed = parse(&["-m", "m", "--fixed-schedule", "--benchmark-duration", "3"]);
    let phase = &build(&timed, &facts)["phases"][0];
    assert!(phase.get("requests").is_none(), "{phase}");
    assert_eq!(phase["grace_period"], 30.0);
}

/// Settings only we have are kept apart, not put into AIPerf's sections (whose model
/// refuses unknown keys).
#[test]
fn our_own_settings_are_kept_apart() {
    let config = parse(&[
        "-m",
        "m",
        "--io-driver",
        "epoll",
        "--benchmark-grace-period",
        "5",
        "--ca-cert",
        "/etc/ca.pem",
        "--video-poll-interval",
        "0.5",
    ]);
    let dir = Path::new("/runs/x");
    let v = build(&config, &facts(dir, 10));
    assert_eq!(
        client_settings(&config, &facts(dir, 10)),
        json!({
            "workers": 2,
            "io_driver": "epoll",
            "benchmark_grace_period": 5.0,
            "ca_cert": "/etc/ca.pem",
            "video_poll_interval": 0.5,
        })
    );
    assert!(v["phases"][0].get("grace_period").is_none());
}

/// No credential reaches `input_config`, in any form the flags take.
#[test]
fn credentials_are_redacted() {
    let secrets = [
        "sk-1",
        "sk-2",
        "sk-3",
        "tok-4",
        "sub-5",
        "json-6",
        "json-7",
        "no-colon-8",
        "pw-9",
        "qk-10",
        "qs-11",
    ];
    let config = parse(&[
        "-m",
        "m",
        "--api-key",
        "sk-1",
        "-H",
        "Authorization: Bearer sk-2",
        "-H",
        "x-api-key:sk-3",
        "-H",
        "X-Auth-Token:tok-4",
        "--header=Ocp-Apim-Subscription-Key:sub-5",
        "-H",
        r#"{"X-B": "json-6", "X-A": "json-7"}"#,
        "-H",
        "no-colon-8",
        "--url",
        "http://user:pw-9@h:1/v1?api%5Fkey=qk-10&model=m&Client-Secret=qs-11#top",
    ]);
    let dir = Path::new("/runs/x");
    let v = build(&config, &facts(dir, 10));
    let text = v.to_string();
    for secret in secrets {
        assert!(!text.contains(secret), "{secret} in {}", pretty(&v));
    }
    let endpoint = &v["endpoint"];
    assert_eq!(endpoint["api_key"], "<redacted>");
    assert_eq!(
        endpoint["headers"],
        json!({
            "Authorization": "<redacted>",
            "x-api-key": "<redacted>",
            "X-Auth-Token": "<redacted>",
            "Ocp-Apim-Subscription-Key": "<redacted>",
            "X-A": "<redacted>",
            "X-B": "<redacted>",
        })
    );
    assert_eq!(
        endpoint["urls"],
        json!([
            "http://<redacted>@h:1/v1?api%5Fkey=<redacted>&model=m&Client-Secret=<redacted>#top"
        ])
    );
    // No key at all when no key was given.
    let plain = build(&parse(&["-m", "m"]), &facts(dir, 10));
    assert!(plain["endpoint"].get("api_key").is_none());
    assert!(plain["endpoint"].get("headers").is_none());
}

#[test]
fn a_repeated_header_is_listed_once_by_its_last_spelling() {
    let names = header_names(&[
        "X-Request-ID:one".into(),
        "Accept: a".into(),
        "x-request-id:two".into(),
        r#"{"ACCEPT": "b"}"#.into(),
        "{broken".into(),
        " : nameless".into(),
    ]);
    assert_eq!(names, ["x-request-id", "ACCEPT"]);
}

#[test]
fn urls_get_a_scheme_and_keep_what_is_not_secret() {
    assert_eq!(with_scheme(" h:8000/v1 "), "http://h:8000/v1");
    assert_eq!(with_scheme("https://h"), "https://h");
    for (url, redacted) in [
        (
            "http://h/v1?token=t&tokens=3",
            "http://h/v1?token=<redacted>&tokens=3",
        ),
        (
            "http://h/?monkey=x&KEY=y",
            "http://h/?monkey=x&KEY=<redacted>",
        ),
        (
            "http://h/?api+key=x&sig",
            "http://h/?api+key=<redacted>&sig",
        ),
        ("http://h/?%", "http://h/?%"),
        ("http://h/a@b?x=1", "http://h/a@b?x=1"),
    ] {
        assert_eq!(redact_url(url), redacted, "{url}");
    }
    assert_eq!(percent_decode("a%5f%4B+%zz%"), "a_K %zz%");
}

#[test]
fn a_template_body_is_the_text_of_its_file_or_the_argument() {
    let body = |spec: &str| {
        let choice = crate::extra_inputs::TemplateChoice {
            spec: spec.to_owned(),
            response_field: None,
        };
        choice.body().expect("readable")
    };
    assert_eq!(body("nv-embedqa"), "nv-embedqa");
    let inline = r#"{"text": {{ text|tojson }}}"#;
    assert_eq!(body(inline), inline);
    let file = std::env::temp_dir().join(format!("ic-template-{}.j2", std::process::id()));
    std::fs::write(&file, "{\"q\": 1}").expect("temp file");
    let spec = file.to_string_lossy().into_owned();
    assert_eq!(body(&spec), "{\"q\": 1}");
    let _ = std::fs::remove_file(&file);

    let config = parse(&[
        "-m",
        "m",
        "--endpoint-type",
        "template",
        "--endpoint-template",
        "nv-embedqa",
    ]);
    let v = build(&config, &facts(Path::new("/runs/x"), 10));
    assert_eq!(
        v["endpoint"]["template"],
        json!({"body": "nv-embedqa", "response_field": "text"})
    );
}

/// AIPerf 0.13 takes `payload_template` (and `response_field` beside it) out of
/// `--extra-inputs` into `endpoint.template`; the other extras stay.
#[test]
fn a_payload_template_in_extra_inputs_is_the_template() {
    let config = parse(&[
        "-m",
        "m",
        "--endpoint-type",
        "template",
        "--extra-inputs",
        "payload_template:nv-embedqa,response_field:data[*].embedding,top_k:3",
    ]);
    let v = build(&config, &facts(Path::new("/runs/x"), 10));
    assert_eq!(
        v["endpoint"]["template"],
        json!({"body": "nv-embedqa", "response_field": "data[*].embedding"})
    );
    assert_eq!(v["endpoint"]["extra"], json!({"top_k": 3}));
}

/// `images.format` only when the flag was given, as AIPerf writes it.
#[test]
fn the_image_format_is_listed_when_given() {
    let sized = [
        "-m",
        "m",
        "--image-width-mean",
        "8",
        "--image-height-mean",
        "8",
    ];
    let v = build(&parse(&sized), &facts(Path::new("/runs/x"), 10));
    assert_eq!(v["datasets"][0]["images"].get("format"), None);
    let given = parse(&[&sized[..], &["--image-format", "PNG"]].concat());
    let v = build(&given, &facts(Path::new("/runs/x"), 10));
    assert_eq!(v["datasets"][0]["images"]["format"], "png");
}

/// The prefix prompt flags under `prefix_prompts`, each only when given, and the system
/// prompt beside the dataset's type, as AIPerf 0.13 wrote them for the same flags (its
/// converter run on them: `{"pool_size": 3, "length": 5}`, `{"shared_system_length": 5,
/// "user_context_length": 7}`, `"system_prompt": "hi there"`, and a file dataset's).
#[test]
fn prefix_and_system_prompts_are_listed_when_given() {
    let dataset = |args: &[&str]| {
        let mut flags = vec!["-m", "m"];
        flags.extend_from_slice(args);
        let v = build(&parse(&flags), &facts(Path::new("/runs/p"), 5));
        v["datasets"][0].clone()
    };
    let pool = dataset(&["--num-prefix-prompts", "3", "--prefix-prompt-length", "5"]);
    assert_eq!(pool["prefix_prompts"], json!({"pool_size": 3, "length": 5}));
    let context = dataset(&[
        "--shared-system-prompt-length",
        "5",
        "--user-context-prompt-length",
        "7",
    ]);
    assert_eq!(
        context,
        json!({
            "name": "main",
            "type": "synthetic",
            "prompts": {"isl": {"mean": 550.0}},
            "prefix_prompts": {"shared_system_length": 5, "user_context_length": 7},
        })
    );
    let plain = dataset(&[]);
    assert!(plain.get("prefix_prompts").is_none(), "{}", pretty(&plain));
    assert!(plain.get("system_prompt").is_none(), "{}", pretty(&plain));
    let system = dataset(&["--system-prompt", "hi there"]);
    assert_eq!(system["system_prompt"], json!("hi there"));
    let file = dataset(&["--system-prompt-file", "/etc/prompt.txt"]);
    assert_eq!(file["system_prompt_file"], json!("/etc/prompt.txt"));
    assert!(file.get("system_prompt").is_none());
    let on_file = dataset(&[
        "--system-prompt",
        "hi",
        "--input-file",
        "/data/rows.jsonl",
        "--custom-dataset-type",
        "single_turn",
    ]);
    assert_eq!(
        on_file,
        json!({
            "name": "main",
            "type": "file",
            "path": "/data/rows.jsonl",
            "format": "single_turn",
            "system_prompt": "hi",
        })
    );
}

/// A file dataset's `entries` is the first count flag given, as given (AIPerf's
/// `_resolve_entries`): `--num-dataset-entries`, else `--conversation-num`, else
/// `--request-count`; none given, no key.
#[test]
fn a_file_dataset_s_entries_come_from_the_count_flags() {
    let file = [
        "--input-file",
        "/data/rows.jsonl",
        "--custom-dataset-type",
        "single_turn",
    ];
    let entries = |args: &[&str]| {
        let flags = [&["-m", "m"][..], &file, args].concat();
        let v = build(&parse(&flags), &facts(Path::new("/runs/e"), 9));
        v["datasets"][0].get("entries").cloned()
    };
    assert_eq!(entries(&[]), None);
    assert_eq!(entries(&["--request-count", "6"]), Some(json!(6)));
    assert_eq!(
        entries(&["--request-count", "6", "--conversation-num", "4"]),
        Some(json!(4))
    );
    assert_eq!(
        entries(&[
            "--request-count",
            "6",
            "--conversation-num",
            "4",
            "--num-dataset-entries",
            "5"
        ]),
        Some(json!(5))
    );
}

/// `prompts` as AIPerf 0.13.0's converter wrote it for the same flags (its
/// `_apply_sequence_distribution` and `_apply_random_corpus_style_and_range_ratio`): every
/// pair with both deviations, the ratio as the text given, the style only when given.
#[test]
fn length_shaping_flags_are_written_as_aiperf_writes_them() {
    let prompts = |args: &[&str]| {
        let config = parse(&[&["-m", "m"], args].concat());
        build(&config, &facts(Path::new("/runs/x"), 10))["datasets"][0]["prompts"].clone()
    };
    assert_eq!(
        prompts(&["--seq-dist", "256|10,128:40;512,256:60"]),
        json!({
            "isl": {"mean": 550.0},
            "sequence_distribution": [
                {
                    "isl": {"mean": 256.0, "stddev": 10.0},
                    "osl": {"mean": 128.0, "stddev": 0.0},
                    "probability": 40.0,
                },
                {
                    "isl": {"mean": 512.0, "stddev": 0.0},
                    "osl": {"mean": 256.0, "stddev": 0.0},
                    "probability": 60.0,
                },
            ],
        })
    );
    assert_eq!(
        prompts(&[
            "--isl",
            "200",
            "--osl",
            "100",
            "--random-range-ratio",
            r#"{"input": 0.3, "output": 0.5}"#,
        ]),
        json!({
            "isl": {"mean": 200.0},
            "osl": {"mean": 100.0},
            "random_range_ratio": r#"{"input": 0.3, "output": 0.5}"#,
        })
    );
    assert_eq!(
        prompts(&[
            "--random-corpus-style",
            "vllm",
            "--random-range-ratio",
            "0.5",
            "--osl",
            "100",
        ]),
        json!({
            "isl": {"mean": 550.0},
            "osl": {"mean": 100.0},
            "random_range_ratio": "0.5",
            "random_corpus_style": "vllm",
        })
    );
    assert_eq!(
        prompts(&["--random-corpus-style", "sglang"]),
        json!({"isl": {"mean": 550.0}, "random_corpus_style": "sglang"})
    );
}
