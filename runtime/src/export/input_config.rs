//! `input_config` of `profile_export_aiperf.json`: the run's resolved configuration in
//! AIPerf 0.13's layout, so that tools reading AIPerf's (`input_config.endpoint.urls`,
//! `input_config.phases[0].concurrency`, `input_config.datasets[0].prompts.isl.mean`)
//! read ours.
//!
//! AIPerf writes its `BenchmarkConfig` with only the fields its command-line converter
//! set: the flags the user gave, plus what the converter derives (each phase's type, a
//! default request count, the artifact directory, the UI). A reader takes every absent key
//! at AIPerf's default. So a key is written here when the user gave its flag (whatever its
//! value, as AIPerf does) or when our value is not AIPerf's default; a key left out is one
//! whose AIPerf default is true of our run. Sections AIPerf writes that are not true of
//! ours are left out: `gpu_telemetry` and `server_metrics` (on by default in AIPerf; we
//! collect neither), unless `--no-gpu-telemetry` or `--no-server-metrics` turns them off,
//! which AIPerf writes as `{"enabled": false}`, as we do then. Settings AIPerf has no key
//! for are [`client_settings`], written beside `input_config` under
//! [`CLIENT_SETTINGS_KEY`]: AIPerf reads `input_config` into a model that refuses unknown
//! keys, and its export model takes unknown top-level ones.
//!
//! Secrets: `endpoint.api_key` is `"<redacted>"`, as AIPerf writes it. Every header value
//! is `"<redacted>"`: AIPerf redacts only names that look like credentials, but a
//! server's custom header may carry one under any name, so no value is written (the same
//! rule as the raw export and the command line). URLs lose their user info and the values
//! of credential-like query parameters, as AIPerf's do.
//!
//! The value is a `serde_json::Value`, whose maps sort their keys: key order is
//! alphabetical rather than AIPerf's field order. Readers address keys by name.

use std::path::Path;

use serde_json::{json, Map, Value};

use crate::config::{ModelSelectionStrategy, ProfileConfig};
use crate::plugin::normalize_name;
use crate::seq_dist::SequenceDistribution;

/// The top-level key of `profile_export_aiperf.json` holding the settings only this
/// client has (worker threads, I/O driver, ...): [`client_settings`].
pub const CLIENT_SETTINGS_KEY: &str = "aiperf_gen_config";

const REDACTED: &str = "<redacted>";

/// AIPerf's defaults for the keys written only when they differ (or were given).
const DEFAULT_ENDPOINT_TYPE: &str = "chat";
const DEFAULT_TIMEOUT_S: f64 = 21600.0;
const DEFAULT_GRACE_PERIOD_S: f64 = 30.0;
const DEFAULT_AUDIO_SAMPLE_RATES_KHZ: [f64; 1] = [16.0];

/// What the run settled that its flags alone do not say.
#[derive(Debug, Clone, Copy)]
pub struct RunFacts<'a> {
    /// Where the artifacts are written; AIPerf writes the absolute path.
    pub artifact_dir: &'a Path,
    /// The progress display in use (`none` without a terminal, as AIPerf decides it).
    pub ui: &'a str,
    /// Conversations in the dataset: the synthetic ones composed, or the file's.
    pub conversations: usize,
    /// Turns in the dataset: what a fixed schedule replays.
    pub turns: usize,
    /// Measuring worker threads started.
    pub workers: u32,
    /// The process's log level (`crate::logging::level`), when flags set it.
    pub log_level: Option<&'a str>,
}

/// `input_config` for a run of `config`.
pub fn build(config: &ProfileConfig, facts: &RunFacts<'_>) -> Value {
    let mut doc = Map::new();
    doc.insert("models".into(), models(config));
    doc.insert("endpoint".into(), endpoint(config));
    doc.insert(
        "datasets".into(),
        Value::Array(vec![dataset(config, facts)]),
    );
    doc.insert("phases".into(), Value::Array(phases(config, facts)));
    doc.insert("artifacts".into(), artifacts(config, facts));
    if let Some(goodput) = &config.goodput {
        let slos: Map<String, Value> = goodput
            .0
            .iter()
            .map(|(tag, value)| (tag.clone(), float(*value)))
            .collect();
        doc.insert("slos".into(), Value::Object(slos));
    }
    doc.insert("tokenizer".into(), json!({ "name": config.tokenizer }));
    // AIPerf writes `{"enabled": false}` for these flags, which is true of our run; without
    // them it writes `enabled: true`, which is not, so the section is left out then.
    if config.no_gpu_telemetry {
        doc.insert("gpu_telemetry".into(), json!({ "enabled": false }));
    }
    if config.no_server_metrics {
        doc.insert("server_metrics".into(), json!({ "enabled": false }));
    }
    // Integrations AIPerf has and we have not: off, which is AIPerf's default for each.
    doc.insert("network_latency".into(), json!({ "enabled": false }));
    for integration in ["otel", "mlflow", "wandb"] {
        doc.insert(integration.into(), json!({}));
    }
    doc.insert("runtime".into(), json!({ "ui": facts.ui }));
    if let Some(level) = facts.log_level.and_then(aiperf_log_level) {
        doc.insert("logging".into(), json!({ "level": level }));
    }
    Value::Object(doc)
}

/// A float as AIPerf writes it (`64.0`); a non-finite one (refused at start-up) as null.
fn float(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}

/// AIPerf's integer milliseconds for a trace offset, a float when it has a fraction.
fn millis(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        Value::from(v as i64)
    } else {
        float(v)
    }
}

/// `{"mean", "stddev"}` as AIPerf writes a distribution; `stddev` only when given or not 0.
fn distribution(mean: f64, stddev: f64, stddev_given: bool) -> Value {
    let mut d = Map::new();
    d.insert("mean".into(), float(mean));
    if stddev_given || stddev != 0.0 {
        d.insert("stddev".into(), float(stddev));
    }
    Value::Object(d)
}

/// AIPerf's name for one of our log levels; `None` for its default (`INFO`) and for
/// anything that is not a plain level.
fn aiperf_log_level(level: &str) -> Option<&'static str> {
    match level.trim().to_ascii_lowercase().as_str() {
        "trace" => Some("TRACE"),
        "debug" => Some("DEBUG"),
        "warn" | "warning" => Some("WARNING"),
        "error" => Some("ERROR"),
        _ => None,
    }
}

fn models(config: &ProfileConfig) -> Value {
    let mut m = Map::new();
    let strategy = config.model_selection_strategy;
    if config.was_given("model_selection_strategy")
        || strategy != ModelSelectionStrategy::RoundRobin
    {
        let name = match strategy {
            ModelSelectionStrategy::RoundRobin => "round_robin",
            ModelSelectionStrategy::Random => "random",
        };
        m.insert("strategy".into(), Value::from(name));
    }
    let items = config.model.iter().map(|name| json!({ "name": name }));
    m.insert("items".into(), Value::Array(items.collect()));
    Value::Object(m)
}

fn endpoint(config: &ProfileConfig) -> Value {
    let given = |name: &str| config.was_given(name);
    let mut e = Map::new();
    let urls = config
        .url
        .iter()
        .map(|url| Value::from(redact_url(&with_scheme(url))));
    e.insert("urls".into(), Value::Array(urls.collect()));
    let strategy = normalize_name(&config.url_selection_strategy);
    if given("url_selection_strategy") || strategy != "round_robin" {
        e.insert("url_strategy".into(), Value::from(strategy));
    }
    let kind = normalize_name(&config.endpoint_type);
    if given("endpoint_type") || kind != DEFAULT_ENDPOINT_TYPE {
        e.insert("type".into(), Value::from(kind));
    }
    if let Some(path) = &config.custom_endpoint {
        e.insert("path".into(), Value::from(path.as_str()));
    }
    if config.api_key.is_some() {
        e.insert("api_key".into(), Value::from(REDACTED));
    }
    if given("request_timeout_seconds") || config.request_timeout_seconds != DEFAULT_TIMEOUT_S {
        e.insert("timeout".into(), float(config.request_timeout_seconds));
    }
    if let Some(kind) = &config.request_content_type {
        let kind = kind.to_ascii_lowercase();
        e.insert("request_content_type".into(), Value::from(kind));
    }
    if let Some(name) = &config.session_header {
        e.insert("session_header".into(), Value::from(name.as_str()));
    }
    if given("wait_for_model_timeout") {
        e.insert(
            "wait_for_model_timeout".into(),
            float(config.wait_for_model_timeout),
        );
    }
    if given("wait_for_model_mode") {
        let mode = config.wait_for_model_mode.as_str();
        e.insert("wait_for_model_mode".into(), Value::from(mode));
    }
    if given("wait_for_model_interval") {
        e.insert(
            "wait_for_model_interval".into(),
            float(config.wait_for_model_interval),
        );
    }
    // As run: an endpoint that cannot stream turns `--streaming` off, and AIPerf then
    // writes `false`.
    if given("streaming") || config.streaming {
        e.insert("streaming".into(), Value::Bool(config.streaming));
    }
    let transport = normalize_name(&config.transport);
    if given("transport") || transport != "http" {
        e.insert("transport".into(), Value::from(transport));
    }
    if given("connection_reuse_strategy") || config.connection_reuse_strategy != "pooled" {
        let reuse = config.connection_reuse_strategy.as_str();
        e.insert("connection_reuse".into(), Value::from(reuse));
    }
    for (key, field, on) in [
        (
            "use_legacy_max_tokens",
            "use_legacy_max_tokens",
            config.use_legacy_max_tokens,
        ),
        (
            "use_server_token_count",
            "use_server_token_count",
            config.use_server_token_count,
        ),
    ] {
        if given(field) || on {
            e.insert(key.into(), Value::Bool(on));
        }
    }
    match crate::extra_inputs::TemplateChoice::from_config(config).and_then(|choice| {
        choice
            .map(|c| c.body().map(|body| (body, c.response_field)))
            .transpose()
    }) {
        Ok(Some((body, field))) => {
            let field = field.as_deref().unwrap_or("text");
            e.insert(
                "template".into(),
                json!({ "body": body, "response_field": field }),
            );
        }
        Ok(None) => {}
        // The template endpoint refused it before the run; never reached in practice.
        Err(err) => tracing::warn!("input_config: the template left out: {err}"),
    }
    let names = header_names(&config.headers);
    if !names.is_empty() {
        let headers = names.into_iter().map(|n| (n, Value::from(REDACTED)));
        e.insert("headers".into(), Value::Object(headers.collect()));
    }
    if !config.extra_inputs.is_empty() {
        match crate::extra_inputs::parse_extra_inputs(&config.extra_inputs) {
            Ok(pairs) => {
                e.insert("extra".into(), Value::Object(pairs.into_iter().collect()));
            }
            // The endpoint refused them before the run; never reached in practice.
            Err(err) => tracing::warn!("input_config: --extra-inputs left out: {err}"),
        }
    }
    if given("download_video_content") || config.download_video_content {
        let download = Value::Bool(config.download_video_content);
        e.insert("download_video_content".into(), download);
    }
    Value::Object(e)
}

/// `http://` before a URL without a scheme, as AIPerf (and our transport) read it.
fn with_scheme(url: &str) -> String {
    let url = url.trim();
    if url.contains("://") {
        url.to_owned()
    } else {
        format!("http://{url}")
    }
}

/// Query parameter names whose values AIPerf treats as credentials, compared with case,
/// `-`, `_` and spaces ignored (so `api_key`, `Api-Key` and `apikey` are one name).
const SECRET_QUERY_PARAMETERS: &[&str] = &[
    "apikey",
    "key",
    "token",
    "accesstoken",
    "authtoken",
    "bearertoken",
    "idtoken",
    "refreshtoken",
    "secret",
    "clientsecret",
    "password",
    "passwd",
    "credential",
    "accesskeyid",
    "awsaccesskeyid",
    "sig",
    "signature",
    "xamzsignature",
    "xamzsecuritytoken",
    "xamzcredential",
    "xgoogsignature",
    "xgoogcredential",
];

/// `url` without its user info and with credential-like query values `<redacted>`.
fn redact_url(url: &str) -> String {
    let url = crate::http::url::redact_userinfo(url);
    let Some((base, rest)) = url.split_once('?') else {
        return url;
    };
    let (query, fragment) = match rest.split_once('#') {
        Some((query, fragment)) => (query, Some(fragment)),
        None => (rest, None),
    };
    let params: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((name, _)) if is_secret_parameter(name) => format!("{name}={REDACTED}"),
            _ => param.to_owned(),
        })
        .collect();
    let mut out = format!("{base}?{}", params.join("&"));
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

/// Whether a (percent-encoded) query parameter name names a credential: a server decodes
/// the name, so `api%5Fkey` is `api_key`.
fn is_secret_parameter(name: &str) -> bool {
    let decoded = percent_decode(name).to_ascii_lowercase();
    let squashed: String = decoded
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | ' '))
        .collect();
    SECRET_QUERY_PARAMETERS.contains(&squashed.as_str())
}

/// Form decoding of a query component: `%XX` escapes and `+` as a space.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |j: usize| bytes.get(j).and_then(|b| char::from(*b).to_digit(16));
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte == b'%' {
            if let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) {
                // Two hex digits: at most 0xFF.
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(if byte == b'+' { b' ' } else { byte });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The header names of `--header` arguments, as the endpoints send them (a later one
/// replacing an earlier one of the same name in any case). Values are never written. An
/// argument the endpoints would refuse (which stops the run before this) lists nothing.
fn header_names(args: &[String]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for arg in args {
        let headers = crate::headers::parse_headers(std::slice::from_ref(arg));
        for (name, _) in headers.unwrap_or_default() {
            names.retain(|n| !n.eq_ignore_ascii_case(&name));
            names.push(name);
        }
    }
    names
}

fn dataset(config: &ProfileConfig, facts: &RunFacts<'_>) -> Value {
    let mut d = Map::new();
    d.insert("name".into(), Value::from("main"));
    match &config.input_file {
        Some(path) => {
            d.insert("type".into(), Value::from("file"));
            d.insert("path".into(), Value::from(path.to_string_lossy()));
            if let Some(format) = &config.custom_dataset_type {
                d.insert("format".into(), Value::from(normalize_name(format)));
            }
            if config.was_given("ignore_trace_delays") {
                let ignore = Value::Bool(config.ignore_trace_delays);
                d.insert("ignore_trace_delays".into(), ignore);
            }
            // As AIPerf's converter, the first of the flags that name a count, as given
            // (not the file's rows): the run recycles the file's entries to fill it.
            let entries = (config.num_dataset_entries.map(|n| n as u64))
                .or(config.conversation_num)
                .or(config.request_count);
            if let Some(entries) = entries {
                d.insert("entries".into(), Value::from(entries));
            }
            // AIPerf routes `--isl-block-size` onto the file dataset's `block_size`.
            if let Some(size) = config.prompt_input_tokens_block_size {
                d.insert("block_size".into(), Value::from(size));
            }
        }
        None => {
            d.insert("type".into(), Value::from("synthetic"));
            // As AIPerf's converter: written when a flag set it (`--num-dataset-entries`,
            // `--conversation-num` or `--request-count`), left at the default 100 else.
            let given = config.num_dataset_entries.is_some()
                || config.conversation_num.is_some()
                || config.request_count.is_some();
            if given {
                d.insert("entries".into(), Value::from(facts.conversations));
            }
            synthetic_content(config, &mut d);
        }
    }
    // Either dataset type takes a system prompt, as AIPerf's: its text or its file's path.
    if let Some(text) = &config.system_prompt {
        d.insert("system_prompt".into(), Value::from(text.as_str()));
    }
    if let Some(path) = &config.system_prompt_file {
        d.insert(
            "system_prompt_file".into(),
            Value::from(path.to_string_lossy()),
        );
    }
    if let Some(seed) = config.random_seed {
        d.insert("random_seed".into(), Value::from(seed));
    }
    if let Some(sampling) = &config.dataset_sampling_strategy {
        d.insert("sampling".into(), Value::from(normalize_name(sampling)));
    }
    Value::Object(d)
}

/// The synthetic dataset's prompts, turns and media, as AIPerf's `SyntheticDataset`.
fn synthetic_content(config: &ProfileConfig, d: &mut Map<String, Value>) {
    let given = |name: &str| config.was_given(name);
    let mut prompts = Map::new();
    prompts.insert(
        "isl".into(),
        distribution(
            f64::from(config.synthetic_input_tokens_mean),
            config.synthetic_input_tokens_stddev,
            given("synthetic_input_tokens_stddev"),
        ),
    );
    if let Some(mean) = config.output_tokens_mean {
        prompts.insert(
            "osl".into(),
            distribution(
                f64::from(mean),
                config.output_tokens_stddev,
                given("output_tokens_stddev"),
            ),
        );
    }
    if let Some(size) = config.prompt_input_tokens_block_size {
        prompts.insert("block_size".into(), Value::from(size));
    }
    if given("prompt_batch_size") {
        prompts.insert("batch_size".into(), Value::from(config.prompt_batch_size));
    }
    // AIPerf's converter writes each parsed pair with both deviations, and the ratio as
    // the text given; the style only when given.
    if let Some(Ok(dist)) = config
        .sequence_distribution
        .as_deref()
        .map(SequenceDistribution::parse)
    {
        let pairs = dist.pairs().iter().map(|p| {
            json!({
                "isl": { "mean": float(p.isl as f64), "stddev": float(p.isl_stddev) },
                "osl": { "mean": float(p.osl as f64), "stddev": float(p.osl_stddev) },
                "probability": float(p.probability),
            })
        });
        prompts.insert(
            "sequence_distribution".into(),
            Value::Array(pairs.collect()),
        );
    }
    if let Some(ratio) = &config.random_range_ratio {
        prompts.insert("random_range_ratio".into(), Value::from(ratio.as_str()));
    }
    if given("random_corpus_style") {
        let style = config.random_corpus_style.as_str();
        prompts.insert("random_corpus_style".into(), Value::from(style));
    }
    d.insert("prompts".into(), Value::Object(prompts));
    // The flags given, each under its key (AIPerf's `_build_prefix_prompts`).
    let prefix_prompts: Map<String, Value> = [
        ("pool_size", config.prompt_prefix_pool_size),
        ("length", config.prompt_prefix_length),
        (
            "shared_system_length",
            config.prompt_prefix_shared_system_length,
        ),
        (
            "user_context_length",
            config.prompt_prefix_user_context_length,
        ),
    ]
    .into_iter()
    .filter_map(|(key, value)| Some((key.to_owned(), Value::from(value?))))
    .collect();
    if !prefix_prompts.is_empty() {
        d.insert("prefix_prompts".into(), Value::Object(prefix_prompts));
    }

    // AIPerf writes both halves of a pair once either is given.
    let (turn_mean, turn_stddev) = (
        config.conversation_turn_mean,
        config.conversation_turn_stddev,
    );
    if given("conversation_turn_mean")
        || given("conversation_turn_stddev")
        || turn_mean != 1.0
        || turn_stddev != 0.0
    {
        d.insert(
            "turns".into(),
            json!({ "mean": float(turn_mean), "stddev": float(turn_stddev) }),
        );
    }
    let (delay_mean, delay_stddev) = (
        config.conversation_turn_delay_mean,
        config.conversation_turn_delay_stddev,
    );
    if given("conversation_turn_delay_mean")
        || given("conversation_turn_delay_stddev")
        || delay_mean != 0.0
        || delay_stddev != 0.0
    {
        d.insert(
            "turn_delay".into(),
            json!({ "mean": float(delay_mean), "stddev": float(delay_stddev) }),
        );
    }
    let ratio = config.conversation_turn_delay_ratio;
    if given("conversation_turn_delay_ratio") || ratio != 1.0 {
        d.insert("turn_delay_ratio".into(), float(ratio));
    }

    // Media only when the composer makes any (a size and a batch above 0).
    if config.image_width_mean > 0 && config.image_height_mean > 0 && config.image_batch_size > 0 {
        let mut images = json!({
            "batch_size": config.image_batch_size,
            "width": distribution(
                f64::from(config.image_width_mean),
                config.image_width_stddev,
                given("image_width_stddev"),
            ),
            "height": distribution(
                f64::from(config.image_height_mean),
                config.image_height_stddev,
                given("image_height_stddev"),
            ),
        });
        if given("image_format") {
            images["format"] = Value::from(config.image_format.as_str());
        }
        d.insert("images".into(), images);
    }
    if config.audio_length_mean > 0.0 && config.audio_batch_size > 0 {
        let mut audio = Map::new();
        audio.insert("batch_size".into(), Value::from(config.audio_batch_size));
        audio.insert(
            "length".into(),
            distribution(
                config.audio_length_mean,
                config.audio_length_stddev,
                given("audio_length_stddev"),
            ),
        );
        if given("audio_sample_rates")
            || config.audio_sample_rates[..] != DEFAULT_AUDIO_SAMPLE_RATES_KHZ[..]
        {
            let rates = config.audio_sample_rates.iter().map(|r| float(*r));
            audio.insert("sample_rates".into(), Value::Array(rates.collect()));
        }
        // Format (WAV), depth (16 bits) and channels (mono) are AIPerf's defaults.
        d.insert("audio".into(), Value::Object(audio));
    }
    // The composer makes rankings tasks for rankings endpoints. Our defaults are what
    // AIPerf composes with when the flags are not given (10 passages of 128 tokens, a
    // 32-token query), so, as AIPerf, a setting is written when given (or changed).
    if config
        .endpoint_type
        .to_ascii_lowercase()
        .contains("rankings")
    {
        let mut rankings = Map::new();
        for (key, mean, default, mean_flag, stddev, stddev_flag) in [
            (
                "passages",
                config.rankings_passages_mean,
                10,
                "rankings_passages_mean",
                config.rankings_passages_stddev,
                "rankings_passages_stddev",
            ),
            (
                "passage_tokens",
                config.rankings_passages_prompt_token_mean,
                128,
                "rankings_passages_prompt_token_mean",
                config.rankings_passages_prompt_token_stddev,
                "rankings_passages_prompt_token_stddev",
            ),
            (
                "query_tokens",
                config.rankings_query_prompt_token_mean,
                32,
                "rankings_query_prompt_token_mean",
                config.rankings_query_prompt_token_stddev,
                "rankings_query_prompt_token_stddev",
            ),
        ] {
            let mut pair = Map::new();
            if given(mean_flag) || mean != default {
                pair.insert("mean".into(), float(f64::from(mean)));
            }
            if given(stddev_flag) || stddev != 0.0 {
                pair.insert("stddev".into(), float(stddev));
            }
            if !pair.is_empty() {
                rankings.insert(key.into(), Value::Object(pair));
            }
        }
        if !rankings.is_empty() {
            d.insert("rankings".into(), Value::Object(rankings));
        }
    }
}

/// AIPerf's phase type for a load: `concurrency`, `poisson`, `gamma`, `constant`,
/// `user_centric` or `fixed_schedule`; a pack's own timing or arrival plugin by its name.
fn phase_type(load: &ProfileConfig) -> String {
    match normalize_name(&load.effective_timing_mode()).as_str() {
        "fixed_schedule" => "fixed_schedule".into(),
        "user_centric_rate" => "user_centric".into(),
        "request_rate" => match normalize_name(&load.effective_arrival_pattern()).as_str() {
            // Sends whenever a slot is free: a concurrency phase.
            "concurrency_burst" => "concurrency".into(),
            pattern => pattern.to_owned(),
        },
        mode => mode.to_owned(),
    }
}

/// How long a phase lasts: AIPerf's stop conditions.
struct Bounds {
    requests: Option<u64>,
    duration: Option<f64>,
    sessions: Option<u64>,
    grace_period: Option<f64>,
}

fn phases(config: &ProfileConfig, facts: &RunFacts<'_>) -> Vec<Value> {
    let mut out = Vec::new();
    if config.has_warmup() {
        // The warmup's own load, each setting falling back to the run's.
        let load = config.warmup_load();
        let load = load.as_ref().unwrap_or(config);
        let bounds = Bounds {
            requests: (config.warmup_request_count > 0).then_some(config.warmup_request_count),
            duration: config.warmup_duration,
            sessions: config.warmup_num_sessions,
            // Only when given: without one a timed warmup waits for all its requests.
            grace_period: config.grace_period(true),
        };
        out.push(phase("warmup", load, &bounds));
    }
    let kind = phase_type(config);
    let requests = match config.effective_request_count() {
        Some(n) => Some(n),
        // A replay without other bounds sends each row once, and AIPerf writes their count.
        None if kind == "fixed_schedule"
            && config.benchmark_duration.is_none()
            && config.conversation_num.is_none() =>
        {
            Some(facts.turns as u64)
        }
        None => None,
    };
    let bounds = Bounds {
        requests,
        duration: config.benchmark_duration,
        sessions: config.conversation_num,
        // AIPerf writes the grace period (30 s unless given) with every duration.
        grace_period: config
            .benchmark_duration
            .map(|_| config.benchmark_grace_period),
    };
    let mut profiling = phase("profiling", config, &bounds);
    if let (Some(share), Value::Object(p)) = (config.failed_request_threshold, &mut profiling) {
        p.insert("failed_request_threshold".into(), float(share));
    }
    out.push(profiling);
    out
}

fn phase(name: &str, load: &ProfileConfig, bounds: &Bounds) -> Value {
    let kind = phase_type(load);
    let mut p = Map::new();
    p.insert("name".into(), Value::from(name));
    p.insert("kind".into(), Value::from(name));
    p.insert("type".into(), Value::from(kind.as_str()));
    if name == "warmup" {
        p.insert("exclude_from_results".into(), Value::Bool(true));
    }
    if let Some(n) = bounds.requests {
        p.insert("requests".into(), Value::from(n));
    }
    if let Some(s) = bounds.duration {
        p.insert("duration".into(), float(s));
    }
    if let Some(n) = bounds.sessions {
        p.insert("sessions".into(), Value::from(n));
    }
    // AIPerf's concurrency phase defaults to 1, as our plain runs do; a rate or replay
    // is uncapped unless given a cap. The warmup writes its own always, as AIPerf's does.
    let concurrency = match (name, kind.as_str()) {
        ("warmup", "concurrency") => load.effective_concurrency(),
        _ => load.concurrency,
    };
    if let Some(c) = concurrency {
        p.insert("concurrency".into(), Value::from(c));
    }
    if let Some(duration) = load.concurrency_ramp_duration {
        p.insert("concurrency_ramp".into(), ramp(load, duration));
    }
    if let Some(c) = load.prefill_concurrency {
        p.insert("prefill_concurrency".into(), Value::from(c));
    }
    if let Some(duration) = load.prefill_concurrency_ramp_duration {
        p.insert("prefill_ramp".into(), ramp(load, duration));
    }
    if let Some(s) = bounds.grace_period {
        p.insert("grace_period".into(), float(s));
    }
    // AIPerf cancels profiling requests only: a warmup phase has no `cancellation`.
    if load.request_cancellation_rate > 0.0 && name != "warmup" {
        let mut cancel = Map::new();
        cancel.insert("rate".into(), float(load.request_cancellation_rate));
        let delay = load.request_cancellation_delay;
        if load.was_given("request_cancellation_delay") || delay != 0.0 {
            cancel.insert("delay".into(), float(delay));
        }
        p.insert("cancellation".into(), Value::Object(cancel));
    }
    match kind.as_str() {
        "concurrency" => {}
        "fixed_schedule" => {
            let auto = load.fixed_schedule_auto_offset;
            if load.was_given("fixed_schedule_auto_offset") || auto {
                p.insert("auto_offset".into(), Value::Bool(auto));
            } else if load.fixed_schedule_start_offset.is_some() {
                // A start offset replaces the automatic one; AIPerf says so.
                p.insert("auto_offset".into(), Value::Bool(false));
            }
            if let Some(ms) = load.fixed_schedule_start_offset {
                p.insert("start_offset".into(), millis(ms));
            }
            if let Some(ms) = load.fixed_schedule_end_offset {
                p.insert("end_offset".into(), millis(ms));
            }
        }
        "user_centric" => {
            if let Some(rate) = load.user_centric_rate {
                p.insert("rate".into(), float(rate));
            }
            if let Some(users) = load.num_users {
                p.insert("users".into(), Value::from(users));
            }
        }
        _ => {
            if let Some(rate) = load.request_rate {
                p.insert("rate".into(), float(rate));
                if let Some(duration) = load.request_rate_ramp_duration {
                    p.insert("rate_ramp".into(), ramp(load, duration));
                }
            }
            if kind == "gamma" {
                if let Some(shape) = load.arrival_smoothness {
                    p.insert("smoothness".into(), float(shape));
                }
            }
        }
    }
    Value::Object(p)
}

/// `{"duration"}`, plus `strategy` when `--ramp-type` is not AIPerf's `linear`.
fn ramp(load: &ProfileConfig, duration: f64) -> Value {
    let mut r = Map::new();
    r.insert("duration".into(), float(duration));
    let strategy = normalize_name(&load.ramp_type);
    if load.was_given("ramp_type") || strategy != "linear" {
        r.insert("strategy".into(), Value::from(strategy));
    }
    Value::Object(r)
}

fn artifacts(config: &ProfileConfig, facts: &RunFacts<'_>) -> Value {
    use crate::config::ExportLevel;
    let mut a = Map::new();
    let dir = std::path::absolute(facts.artifact_dir)
        .unwrap_or_else(|_| facts.artifact_dir.to_path_buf());
    a.insert("dir".into(), Value::from(dir.to_string_lossy()));
    if let Some(prefix) = &config.profile_export_prefix {
        a.insert("prefix".into(), Value::from(prefix.as_str()));
    }
    if let Some(slice) = config.slice_duration {
        a.insert("slice_duration".into(), float(slice));
    }
    if config.was_given("export_level") || config.export_level != ExportLevel::Records {
        let records = if config.export_level.writes_records() {
            json!(["jsonl"])
        } else {
            Value::Bool(false)
        };
        a.insert("records".into(), records);
        let raw = config.export_level == ExportLevel::Raw;
        a.insert("raw".into(), Value::Bool(raw));
    }
    // No plotting here, which is what AIPerf's resolved flags say unless asked.
    a.insert("auto_plot".into(), Value::Bool(false));
    a.insert("plot_required".into(), Value::Bool(false));
    Value::Object(a)
}

/// Settings AIPerf has no key for, so that the summary still records the whole run.
pub fn client_settings(config: &ProfileConfig, facts: &RunFacts<'_>) -> Value {
    let given = |name: &str| config.was_given(name);
    let mut x = Map::new();
    x.insert("workers".into(), Value::from(facts.workers));
    x.insert(
        "io_driver".into(),
        Value::from(normalize_name(&config.io_driver)),
    );
    if let Some(mode) = &config.timing_mode {
        x.insert("timing_mode".into(), Value::from(normalize_name(mode)));
    }
    let composer = normalize_name(&config.dataset_composer);
    if config.input_file.is_none() && (given("dataset_composer") || composer != "synthetic") {
        x.insert("dataset_composer".into(), Value::from(composer));
    }
    if config.input_file.is_some()
        && (given("trace_timestamp_unit") || config.trace_timestamp_unit != "ms")
    {
        let unit = config.trace_timestamp_unit.as_str();
        x.insert("trace_timestamp_unit".into(), Value::from(unit));
    }
    // Without a duration the grace period still bounds the wait after a first Ctrl-C;
    // AIPerf has no key for that (its `grace_period` belongs to a duration).
    let grace = config.benchmark_grace_period;
    if config.benchmark_duration.is_none()
        && (given("benchmark_grace_period") || grace != DEFAULT_GRACE_PERIOD_S)
    {
        x.insert("benchmark_grace_period".into(), float(grace));
    }
    if let Some(ca) = &config.ca_cert {
        x.insert("ca_cert".into(), Value::from(ca.to_string_lossy()));
    }
    for (key, value, default) in [
        ("video_poll_interval", config.video_poll_interval, 0.1),
        (
            "video_poll_timeout",
            config.video_poll_timeout,
            DEFAULT_TIMEOUT_S,
        ),
    ] {
        if given(key) || value != default {
            x.insert(key.into(), float(value));
        }
    }
    Value::Object(x)
}

/// `input_config` of `config` with placeholder run facts, for other modules' tests.
#[cfg(test)]
pub(crate) fn for_tests(config: &ProfileConfig) -> Value {
    let facts = RunFacts {
        artifact_dir: Path::new("/runs/test"),
        ui: "none",
        conversations: 100,
        turns: 100,
        workers: 1,
        log_level: None,
    };
    build(config, &facts)
}

#[cfg(test)]
mod tests;
