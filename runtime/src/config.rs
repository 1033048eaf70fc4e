//! The `profile` command's configuration, with AIPerf's flag names and defaults.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::Args;
use serde::Serialize;

use crate::seq_dist::{
    CorpusStyle, LengthSampling, RangeRatio, SequenceDistribution, RANGE_RATIO_FLAG, SEQ_DIST_FLAG,
};

/// The batch-size flags, as AIPerf 0.13 names them in its refusals.
const PROMPT_BATCH_FLAG: &str = "--prompt-batch-size/--batch-size-text";
const IMAGE_BATCH_FLAG: &str = "--image-batch-size";
const AUDIO_BATCH_FLAG: &str = "--audio-batch-size";

/// Profiling requests of a run given no bound (AIPerf 0.13's default).
pub const DEFAULT_REQUEST_COUNT: u64 = 10;
/// Synthetic conversations composed when no flag says how many (AIPerf's default).
pub const DEFAULT_DATASET_ENTRIES: u64 = 100;

/// How a binary benchmarks one server.
#[derive(Debug, Clone, Args)]
pub struct ProfileConfig {
    /// Model name(s) sent in requests (comma-separated or repeated).
    #[arg(short = 'm', long = "model", visible_aliases = ["model-names"], value_delimiter = ',',
          required = true, value_parser = parse_model_name)]
    pub model: Vec<String>,

    /// How each request's model is picked from several `--model`s: `round_robin` (the
    /// next name in order, cycling, as the dataset's turns are composed) or `random` (a
    /// uniform choice, seeded by `--random-seed`).
    #[arg(long, default_value = "round_robin", value_parser = parse_model_selection_strategy)]
    pub model_selection_strategy: ModelSelectionStrategy,

    /// Base URL of the server; repeat for several servers (see `--url-strategy`).
    #[arg(
        short = 'u',
        long,
        default_value = "http://localhost:8000",
        action = clap::ArgAction::Append,
        num_args = 1..
    )]
    pub url: Vec<String>,

    /// Endpoint plugin (only linked endpoints are accepted).
    #[arg(long, default_value = "chat")]
    pub endpoint_type: String,

    /// Custom endpoint path instead of the endpoint's default.
    #[arg(long = "custom-endpoint", visible_alias = "endpoint")]
    pub custom_endpoint: Option<String>,

    /// Stream responses (server-sent events).
    #[arg(long)]
    pub streaming: bool,

    /// Bearer token sent as `Authorization` (never written to artifacts or logs).
    #[arg(long)]
    pub api_key: Option<String>,

    /// Extra header `Name:Value` (repeatable; one flag may take several).
    #[arg(short = 'H', long = "header", num_args = 1..)]
    pub headers: Vec<String>,

    /// Extra body fields: `key:value` pairs split at every comma (values typed as AIPerf
    /// types them: booleans, null, numbers, else text), or a JSON object (repeatable;
    /// one flag may take several, as AIPerf's).
    #[arg(long, num_args = 1..)]
    pub extra_inputs: Vec<String>,

    /// Maximum requests in flight (default 1 when no rate is given).
    #[arg(long, value_parser = count::<u32>)]
    pub concurrency: Option<u32>,

    /// Maximum requests waiting for their first token (the prefill stage), at most
    /// --concurrency; needs --streaming. A request holds a slot from just before it is sent
    /// until its first content response, or its end if none comes.
    #[arg(long, value_parser = count::<u32>)]
    pub prefill_concurrency: Option<u32>,

    /// Target request rate, requests per second.
    #[arg(long)]
    pub request_rate: Option<f64>,

    /// Arrival pattern plugin for rate-based runs.
    #[arg(long, visible_alias = "request-rate-mode")]
    pub arrival_pattern: Option<String>,

    /// Gamma shape for the `gamma` arrival pattern.
    #[arg(long, visible_alias = "vllm-burstiness")]
    pub arrival_smoothness: Option<f64>,

    /// Requests to send in the profiling phase (default 10, whatever the concurrency, as in
    /// AIPerf 0.13, when no duration, session count or trace schedule bounds the run).
    #[arg(long, visible_alias = "num-requests", value_parser = count::<u64>)]
    pub request_count: Option<u64>,

    /// Stop issuing after this many seconds.
    #[arg(long)]
    pub benchmark_duration: Option<f64>,

    /// Seconds to wait for in-flight requests after the duration ends.
    #[arg(long, default_value_t = 30.0)]
    pub benchmark_grace_period: f64,

    /// Requests sent before profiling; excluded from the results.
    #[arg(long, visible_alias = "num-warmup-requests", default_value_t = 0)]
    pub warmup_request_count: u64,

    /// Seconds of warmup before profiling (with --warmup-request-count, whichever ends
    /// first); its requests finish before profiling starts.
    #[arg(long)]
    pub warmup_duration: Option<f64>,

    /// Ends the run early once more than this share (0 to 1) of its profiling requests
    /// failed, judged as each request ends from max(--concurrency, 10) requests on, as
    /// AIPerf 0.13's does: no new requests, those in flight cancelled, the results so far
    /// written marked incomplete. The exit status is 0 unless no request succeeded, as
    /// AIPerf's.
    #[arg(long)]
    pub failed_request_threshold: Option<f64>,

    /// Sessions the warmup starts at most (with the other warmup bounds, whichever ends
    /// first).
    #[arg(long = "num-warmup-sessions", visible_alias = "warmup-num-sessions")]
    pub warmup_num_sessions: Option<u64>,

    /// Seconds a timed warmup waits for its requests in flight after --warmup-duration;
    /// unset, it waits for all of them (needs --warmup-duration).
    #[arg(long)]
    pub warmup_grace_period: Option<f64>,

    /// Concurrency of the warmup phase (default: --concurrency).
    #[arg(long, value_parser = count::<u32>)]
    pub warmup_concurrency: Option<u32>,

    /// Prefill concurrency of the warmup phase (default: --prefill-concurrency).
    #[arg(long, value_parser = count::<u32>)]
    pub warmup_prefill_concurrency: Option<u32>,

    /// Request rate of the warmup phase (default: --request-rate).
    #[arg(long)]
    pub warmup_request_rate: Option<f64>,

    /// Arrival pattern of a paced warmup (default: --arrival-pattern).
    #[arg(long)]
    pub warmup_arrival_pattern: Option<String>,

    /// Seconds over which the warmup's concurrency ramps up (default:
    /// --concurrency-ramp-duration).
    #[arg(long)]
    pub warmup_concurrency_ramp_duration: Option<f64>,

    /// Seconds over which the warmup's prefill concurrency ramps up (default:
    /// --prefill-concurrency-ramp-duration).
    #[arg(long)]
    pub warmup_prefill_concurrency_ramp_duration: Option<f64>,

    /// Seconds over which a paced warmup's rate ramps up (default:
    /// --request-rate-ramp-duration).
    #[arg(long)]
    pub warmup_request_rate_ramp_duration: Option<f64>,

    /// Mean prompt length in tokens.
    #[arg(long, visible_aliases = ["isl", "prompt-input-tokens-mean"], default_value_t = 550,
          value_parser = count::<u32>)]
    pub synthetic_input_tokens_mean: u32,

    /// Standard deviation of the prompt length.
    #[arg(long, visible_aliases = ["isl-stddev", "prompt-input-tokens-stddev"],
          default_value_t = 0.0)]
    pub synthetic_input_tokens_stddev: f64,

    /// Tokens per `hash_ids` block of a trace that names its prompt's blocks (overrides
    /// the loader's own size: 512 for mooncake_trace).
    #[arg(long, visible_aliases = ["isl-block-size", "synthetic-input-tokens-block-size"],
          value_parser = clap::value_parser!(u32).range(1..))]
    pub prompt_input_tokens_block_size: Option<u32>,

    /// Mean output length asked of the server (`max_tokens`); unset sends none.
    #[arg(long, visible_aliases = ["osl", "prompt-output-tokens-mean"],
          value_parser = count::<u32>)]
    pub output_tokens_mean: Option<u32>,

    /// Standard deviation of the output length.
    #[arg(long, visible_aliases = ["osl-stddev", "prompt-output-tokens-stddev"],
          default_value_t = 0.0)]
    pub output_tokens_stddev: f64,

    /// (ISL, OSL) pairs with probabilities in percent that sum to 100; each synthetic turn
    /// draws one, in place of `--isl`/`--osl` and their deviations: `ISL,OSL:PROB;...`,
    /// with deviations `ISL|SD,OSL|SD:PROB`, or `[(ISL,OSL):PROB,...]`, or
    /// `{"pairs": [{"isl": I, "osl": O, "prob": P, "isl_stddev": S, "osl_stddev": S}]}`.
    #[arg(long = "seq-dist", visible_alias = "sequence-distribution")]
    pub sequence_distribution: Option<String>,

    /// Each synthetic turn draws its ISL and OSL uniformly from a window around `--isl`
    /// and `--osl` (which must be given; not with their deviations, nor `--seq-dist`):
    /// a ratio for both, or under `vllm` style `{"input": R1, "output": R2}`.
    #[arg(long)]
    pub random_range_ratio: Option<String>,

    /// The window of `--random-range-ratio`: `vllm` (`[floor(mean*(1-r)),
    /// ceil(mean*(1+r))]`, r below 1) or `sglang` (`[max(1, int(mean*r)), mean]`, r up to 1).
    #[arg(long, value_enum, ignore_case = true, default_value = "vllm")]
    pub random_corpus_style: CorpusStyle,

    /// Distinct synthetic conversations to compose; without it, `--conversation-num`,
    /// else `--request-count`, else 100, as AIPerf 0.13 (see
    /// [`dataset_entries`](Self::dataset_entries)).
    #[arg(long, visible_alias = "num-prompts", value_parser = count::<usize>)]
    pub num_dataset_entries: Option<usize>,

    /// Distinct prefix prompts (synthetic, for KV cache testing): the first turn of each
    /// conversation starts with one of them, picked at random. Needs
    /// `--prompt-prefix-length`. Mutually exclusive with `--shared-system-prompt-length`
    /// and `--user-context-prompt-length`.
    #[arg(long = "prompt-prefix-pool-size",
          visible_aliases = ["prefix-prompt-pool-size", "num-prefix-prompts"],
          value_parser = count::<u32>)]
    pub prompt_prefix_pool_size: Option<u32>,

    /// Tokens of each prefix prompt. The prefix is added to the prompt, whose own length
    /// stays `--isl`: a first turn has prefix plus `--isl` tokens.
    #[arg(long = "prompt-prefix-length", visible_alias = "prefix-prompt-length",
          value_parser = count::<u32>)]
    pub prompt_prefix_length: Option<u32>,

    /// Tokens of one synthetic system prompt shared by every conversation, sent as a
    /// `system` message before each request's messages (chat endpoints).
    #[arg(long = "shared-system-prompt-length", value_parser = count::<u32>)]
    pub prompt_prefix_shared_system_length: Option<u32>,

    /// Tokens of a synthetic context prompt of each conversation's own, sent as a `user`
    /// message after the system message and before the conversation's turns (chat
    /// endpoints).
    #[arg(long = "user-context-prompt-length", value_parser = count::<u32>)]
    pub prompt_prefix_user_context_length: Option<u32>,

    /// A system prompt, sent verbatim as a `system` message before every request's
    /// messages (endpoints with a system role: chat, chat_embeddings; `instructions` for
    /// responses, `system` for messages). Works with file datasets too. Its tokens add to
    /// `--isl`.
    #[arg(long)]
    pub system_prompt: Option<String>,

    /// `--system-prompt` read from a UTF-8 text file, once at start-up.
    #[arg(long)]
    pub system_prompt_file: Option<PathBuf>,

    /// Tokenizer for token counts (`builtin` = o200k_base, embedded).
    #[arg(long, default_value = "builtin")]
    pub tokenizer: String,

    /// Directory for the artifacts.
    #[arg(long, visible_alias = "output-artifact-dir")]
    pub artifact_dir: Option<PathBuf>,

    /// File name for the profile exports, without extension: `NAME.json`, `NAME.csv` and
    /// `NAME.jsonl` instead of `profile_export_aiperf.json`, `.csv` and
    /// `profile_export.jsonl`.
    #[arg(long, visible_alias = "profile-export-file", value_parser = parse_export_prefix)]
    pub profile_export_prefix: Option<String>,

    /// What is exported: `records` (the summaries and `profile_export.jsonl`, one line per
    /// request), `summary` (the summaries only) or `raw` (as `records`, plus
    /// `profile_export_raw.jsonl`: each request's headers, payload and response events as
    /// they went over the wire).
    #[arg(
        long,
        visible_alias = "profile-export-level",
        default_value = "records",
        value_parser = parse_export_level
    )]
    pub export_level: ExportLevel,

    /// Seconds per time slice: the profiling phase is cut into windows of this length,
    /// counted from its first request, and each window's requests (by their start) are
    /// summarized on their own in `profile_export_aiperf_timeslices.json` and `.csv`
    /// (`PREFIX_timeslices.*` with `--profile-export-prefix`).
    #[arg(long)]
    pub slice_duration: Option<f64>,

    /// Progress display plugin (default: `simple` on a terminal, else `none`).
    #[arg(long, visible_alias = "ui")]
    pub ui_type: Option<String>,

    /// Seed for every random choice (prompts, arrivals).
    #[arg(long)]
    pub random_seed: Option<u64>,

    /// Measuring worker threads (default: one per core; never more than --concurrency).
    #[arg(long, visible_aliases = ["workers-max", "max-workers"], value_parser = count::<u32>)]
    pub workers: Option<u32>,

    /// I/O driver: `auto` (io_uring, epoll when unavailable), `uring` or `epoll`.
    /// `MONOIO_FORCE_LEGACY_DRIVER=1` makes `auto` choose epoll.
    #[arg(long, default_value = "auto")]
    pub io_driver: String,

    /// Timing strategy plugin (default: derived from the load flags).
    #[arg(long, hide = true)]
    pub timing_mode: Option<String>,

    /// Dataset composer plugin.
    #[arg(long, hide = true, default_value = "synthetic")]
    pub dataset_composer: String,

    /// Transport plugin (`http`, for http:// and https:// URLs alike).
    #[arg(long, visible_alias = "transport-type", default_value = "http")]
    pub transport: String,

    /// Request body encoding, `application/json` or `multipart/form-data`: as AIPerf
    /// 0.13, only the endpoint's own (forms for endpoints that post forms, such as
    /// `video_generation`; JSON for the rest) is accepted; unset, it is that one.
    #[arg(long, value_parser = ["application/json", "multipart/form-data"], ignore_case = true)]
    pub request_content_type: Option<String>,

    /// Name of the header that carries each request's session id, in place of
    /// `X-Correlation-ID` (for example `X-Session-ID`, for a router's session affinity).
    #[arg(long)]
    pub session_header: Option<String>,

    // ---- timing: trace replay, user sessions, ramps --------------------------------------
    /// JSONL dataset file (custom dataset loaders, e.g. a Mooncake trace).
    #[arg(long)]
    pub input_file: Option<PathBuf>,

    /// Loader for `--input-file` (default: the one loader that recognises the file).
    #[arg(long)]
    pub custom_dataset_type: Option<String>,

    /// How each new session picks its conversation (a linked dataset_sampler plugin:
    /// `sequential`, the default, `random` or `shuffle`).
    #[arg(long)]
    pub dataset_sampling_strategy: Option<String>,

    /// Replay the dataset's timestamps (`fixed_schedule`); on by default when
    /// `--custom-dataset-type` names a trace format (mooncake_trace) and the first row has
    /// a timestamp.
    #[arg(long, overrides_with = "no_fixed_schedule")]
    pub fixed_schedule: bool,

    /// Do not replay timestamps even when the trace has them.
    #[arg(long)]
    pub no_fixed_schedule: bool,

    /// Drop the dataset's timestamps and inter-turn delays, so turns go as the timing
    /// flags say instead of after the recorded think time (no effect on a fixed_schedule
    /// run, whose mode the timestamps chose).
    #[arg(long)]
    pub ignore_trace_delays: bool,

    /// Offset timestamps so the first one is zero: what a replay does anyway unless
    /// --fixed-schedule-start-offset is given, as in AIPerf 0.13.
    #[arg(long)]
    pub fixed_schedule_auto_offset: bool,

    /// Skip trace entries before this timestamp (ms); also the schedule's zero, in place of
    /// the first timestamp.
    #[arg(long)]
    pub fixed_schedule_start_offset: Option<f64>,

    /// Skip trace entries after this timestamp (ms).
    #[arg(long)]
    pub fixed_schedule_end_offset: Option<f64>,

    /// Unit of trace timestamps: `ms` (AIPerf's) or `s`.
    #[arg(long, default_value = "ms")]
    pub trace_timestamp_unit: String,

    /// Requests per second across all simulated users (`user_centric_rate`).
    #[arg(long)]
    pub user_centric_rate: Option<f64>,

    /// Simulated users for `--user-centric-rate`.
    #[arg(long, value_parser = count::<u32>)]
    pub num_users: Option<u32>,

    /// Conversations (sessions) to run: the synthetic dataset composes this many (in
    /// place of `--num-dataset-entries`), and the profiling phase starts no more sessions
    /// (their later turns still go); without a request count or duration it ends the run.
    #[arg(long, visible_aliases = ["num-conversations", "num-sessions"],
          value_parser = count::<u64>)]
    pub conversation_num: Option<u64>,

    /// Turns per conversation (synthetic), mean and standard deviation.
    #[arg(long, visible_alias = "session-turns-mean", default_value_t = 1.0)]
    pub conversation_turn_mean: f64,
    #[arg(long, visible_alias = "session-turns-stddev", default_value_t = 0.0)]
    pub conversation_turn_stddev: f64,

    /// Milliseconds between a response and the conversation's next turn (synthetic):
    /// mean, standard deviation, and a factor applied to every drawn delay.
    #[arg(long, visible_alias = "session-turn-delay-mean", default_value_t = 0.0)]
    pub conversation_turn_delay_mean: f64,
    #[arg(
        long,
        visible_alias = "session-turn-delay-stddev",
        default_value_t = 0.0
    )]
    pub conversation_turn_delay_stddev: f64,
    #[arg(long, visible_alias = "session-delay-ratio", default_value_t = 1.0)]
    pub conversation_turn_delay_ratio: f64,

    /// Seconds over which concurrency ramps from 1 to `--concurrency`.
    #[arg(long)]
    pub concurrency_ramp_duration: Option<f64>,

    /// Seconds over which the prefill concurrency ramps from 1 to `--prefill-concurrency`.
    #[arg(long)]
    pub prefill_concurrency_ramp_duration: Option<f64>,

    /// Seconds over which the request rate ramps up to `--request-rate`.
    #[arg(long)]
    pub request_rate_ramp_duration: Option<f64>,

    /// Ramp plugin for both ramps.
    #[arg(long, default_value = "linear")]
    pub ramp_type: String,

    // ---- run control -------------------------------------------------------------------
    /// Percentage (0-100) of requests to cancel on purpose.
    #[arg(long, default_value_t = 0.0)]
    pub request_cancellation_rate: f64,

    /// Seconds after sending at which a request picked for cancellation is cancelled.
    #[arg(long, default_value_t = 0.0)]
    pub request_cancellation_delay: f64,

    /// SLOs for goodput: space-separated `tag:value` pairs, each value in the metric's
    /// display unit (ms for latencies), e.g.
    /// `"time_to_first_token:200 inter_token_latency:20"`. A request is good when it
    /// meets every one.
    #[arg(long, value_parser = parse_goodput)]
    pub goodput: Option<GoodputSlos>,

    // ---- endpoints: inputs and options of the endpoint plugins ---------------------------
    /// Token counts from the server's last usage block instead of the tokenizer: input
    /// `prompt_tokens`, reasoning `completion_tokens_details.reasoning_tokens`, output
    /// `completion_tokens` minus reasoning.
    #[arg(long)]
    pub use_server_token_count: bool,

    /// Send the output limit as `max_tokens` instead of `max_completion_tokens` (chat).
    #[arg(long)]
    pub use_legacy_max_tokens: bool,

    /// `template` endpoint: the request body as a Jinja template that renders JSON: a
    /// named template (`nv-embedqa`), a file path, or the template text itself. AIPerf
    /// 0.13's `--extra-inputs payload_template:<t>` does the same.
    #[arg(long = "endpoint-template", visible_alias = "template")]
    pub endpoint_template: Option<String>,

    /// `template` endpoint: where the response's output is, as a path like
    /// `choices[0].text`, `data[*].embedding` or `output.text` (a JMESPath subset:
    /// fields, quoted fields, indexes, `[*]`); unset: detected from the shape. Also
    /// `--extra-inputs response_field:<path>` beside a `payload_template`.
    #[arg(long)]
    pub response_field: Option<String>,

    /// Synthetic texts per turn, each a prompt of its own (embeddings and rankings
    /// endpoints send them as one batch; chat as content parts of one message).
    #[arg(
        short = 'b',
        long,
        visible_aliases = ["batch-size-text", "batch-size"],
        default_value_t = 1,
        value_parser = count::<u32>
    )]
    pub prompt_batch_size: u32,

    /// Synthetic images per turn, when an image size is set.
    #[arg(long, visible_alias = "batch-size-image", default_value_t = 1)]
    pub image_batch_size: u32,

    /// Mean width in pixels of synthetic images; 0 (with the height) sends none.
    #[arg(long, default_value_t = 0)]
    pub image_width_mean: u32,

    /// Standard deviation of the image width.
    #[arg(long, default_value_t = 0.0)]
    pub image_width_stddev: f64,

    /// Mean height in pixels of synthetic images.
    #[arg(long, default_value_t = 0)]
    pub image_height_mean: u32,

    /// Standard deviation of the image height.
    #[arg(long, default_value_t = 0.0)]
    pub image_height_stddev: f64,

    /// File format of synthetic images: `jpeg` (quality 85, no chroma subsampling),
    /// `png`, or `random` (either, per image).
    #[arg(long, value_enum, ignore_case = true, default_value = "jpeg")]
    pub image_format: ImageFormat,

    /// Synthetic audio clips per turn, when an audio length is set.
    #[arg(long, visible_alias = "batch-size-audio", default_value_t = 1)]
    pub audio_batch_size: u32,

    /// Mean length in seconds of synthetic WAV clips (16-bit mono); 0 sends none.
    #[arg(long, default_value_t = 0.0)]
    pub audio_length_mean: f64,

    /// Standard deviation of the audio length, in seconds.
    #[arg(long, default_value_t = 0.0)]
    pub audio_length_stddev: f64,

    /// Sample rates in kHz to pick synthetic clips' rates from.
    #[arg(long, value_delimiter = ',', default_value = "16")]
    pub audio_sample_rates: Vec<f64>,

    /// Mean number of passages per rankings request. The defaults of the rankings
    /// settings are what AIPerf 0.13 composes with when they are not given (10 passages
    /// of 128 tokens, a 32-token query), not the 1 / 550 / 550 its help text shows.
    #[arg(long, default_value_t = 10)]
    pub rankings_passages_mean: u32,

    /// Standard deviation of the passages per rankings request.
    #[arg(long, default_value_t = 0.0)]
    pub rankings_passages_stddev: f64,

    /// Mean tokens per rankings passage.
    #[arg(long, default_value_t = 128)]
    pub rankings_passages_prompt_token_mean: u32,

    /// Standard deviation of the tokens per passage.
    #[arg(long, default_value_t = 0.0)]
    pub rankings_passages_prompt_token_stddev: f64,

    /// Mean tokens per rankings query.
    #[arg(long, default_value_t = 32)]
    pub rankings_query_prompt_token_mean: u32,

    /// Standard deviation of the tokens per query.
    #[arg(long, default_value_t = 0.0)]
    pub rankings_query_prompt_token_stddev: f64,

    /// Seconds between polls of a video generation job. Without this flag, AIPerf's
    /// AIPERF_HTTP_VIDEO_POLL_INTERVAL is read when set (0.001 to 10).
    #[arg(long, default_value_t = 0.1)]
    pub video_poll_interval: f64,

    /// Seconds after which an unfinished video generation job is recorded as timed out.
    #[arg(long, default_value_t = 21600.0)]
    pub video_poll_timeout: f64,

    /// Download each finished video (`GET /v1/videos/{id}/content`) as part of the request.
    #[arg(long)]
    pub download_video_content: bool,

    // ---- transport: connections, TLS, timeouts ------------------------------------------
    /// Seconds one request may take, connect to last byte. Past it the connection is
    /// closed and the request recorded as timed out, with what it had received.
    #[arg(long, default_value_t = 21600.0, value_parser = parse_timeout_seconds)]
    pub request_timeout_seconds: f64,

    /// When a connection carries another request: `pooled` (any idle one), `never` (a new
    /// connection per request) or `sticky-user-sessions` (one per conversation, closed
    /// after its last turn).
    #[arg(long, default_value = "pooled", value_parser = parse_connection_reuse)]
    pub connection_reuse_strategy: String,

    /// How requests are spread over several `--url`s (a linked url_selection_strategy
    /// plugin; `round_robin` cycles through them in order).
    #[arg(
        long = "url-strategy",
        visible_alias = "url-selection-strategy",
        default_value = "round_robin"
    )]
    pub url_selection_strategy: String,

    /// PEM file of CA certificates trusted for `https://` URLs, besides the system store.
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,

    /// Seconds to wait, before the run starts, for every `--url` to serve every model
    /// (0: do not wait). Each URL and model gets the whole time, in turn.
    #[arg(long, default_value_t = 0.0)]
    pub wait_for_model_timeout: f64,

    /// What ready means: `inference` (a one-token request gets any status below 500),
    /// `models` (`/v1/models` lists the model) or `both`.
    #[arg(long, value_enum, ignore_case = true, default_value = "inference")]
    pub wait_for_model_mode: ReadinessMode,

    /// Seconds between readiness checks.
    #[arg(long, default_value_t = 5.0)]
    pub wait_for_model_interval: f64,

    /// AIPerf 0.13's switch for its GPU telemetry; changes nothing here: this build collects
    /// no GPU telemetry. Accepted so that AIPerf's command lines run unchanged.
    #[arg(long)]
    pub no_gpu_telemetry: bool,

    /// AIPerf 0.13's switch for its server metrics (`/metrics`); changes nothing here: this
    /// build collects no server metrics. Accepted so that AIPerf's command lines run
    /// unchanged.
    #[arg(long)]
    pub no_server_metrics: bool,

    /// AIPerf 0.13's switch for plotting after the run; changes nothing here: this build
    /// never plots. Accepted so that AIPerf's command lines run unchanged.
    #[arg(long)]
    pub no_auto_plot: bool,

    /// AIPerf 0.13's switch for the table of a parameter sweep; changes nothing here: this
    /// build runs no sweeps. Accepted so that AIPerf's command lines run unchanged.
    #[arg(long)]
    pub no_sweep_table: bool,

    /// The flags given on the command line, by field name (filled by the CLI with
    /// [`ProfileConfig::note_given`]). AIPerf's `input_config` lists a setting the user
    /// gave even at its default value, and so does ours; a config built otherwise (tests)
    /// has none, and then only values off AIPerf's defaults are listed.
    #[arg(skip)]
    pub given: BTreeSet<String>,
}

/// `--image-format`. JPEG is the default because it is what AIPerf 0.13 sends when the
/// flag is not given (its command line shows `png`, but its configuration's default, which
/// applies then, is JPEG).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImageFormat {
    Png,
    Jpeg,
    Random,
}

impl ImageFormat {
    /// The name AIPerf writes in `input_config`.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpeg",
            ImageFormat::Random => "random",
        }
    }
}

/// `--wait-for-model-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReadinessMode {
    Models,
    Inference,
    Both,
}

impl ReadinessMode {
    /// The name AIPerf writes in `input_config`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadinessMode::Models => "models",
            ReadinessMode::Inference => "inference",
            ReadinessMode::Both => "both",
        }
    }
}

impl ProfileConfig {
    /// The header that carries the session id: `--session-header`, else AIPerf's
    /// `X-Correlation-ID`.
    pub fn correlation_header(&self) -> &str {
        self.session_header.as_deref().unwrap_or("X-Correlation-ID")
    }

    /// Records which flags `matches` (the `profile` subcommand's) took from the command
    /// line rather than from their defaults.
    pub fn note_given(&mut self, matches: &clap::ArgMatches) {
        self.given = matches
            .ids()
            .filter(|id| matches.value_source(id.as_str()) == Some(ValueSource::CommandLine))
            .map(|id| id.as_str().to_owned())
            .collect();
    }

    /// Whether the flag behind field `name` was given on the command line.
    pub fn was_given(&self, name: &str) -> bool {
        self.given.contains(name)
    }

    /// The synthetic-only flags given on the command line: AIPerf 0.13's
    /// `_FILE_DATASET_INCOMPATIBLE_TRIGGERS`, in its order and with its names (but for
    /// `--image-source`, `--image-source-sampling` and `--video-batch-size`, which this
    /// build does not have), with whether each is a batch size. A file brings its own
    /// prompts and turns, so with `--input-file` they would change nothing; the batch
    /// sizes but for a `random_pool` file, whose turns they fill.
    fn synthetic_only_given(&self) -> Vec<(&'static str, bool)> {
        [
            (
                self.prompt_prefix_length.is_some(),
                "--prompt-prefix-length/--prefix-prompt-length",
            ),
            (
                self.prompt_prefix_pool_size.is_some(),
                "--prompt-prefix-pool-size/--prefix-prompt-pool-size",
            ),
            (
                self.prompt_prefix_shared_system_length.is_some(),
                "--shared-system-prompt-length",
            ),
            (
                self.prompt_prefix_user_context_length.is_some(),
                "--user-context-prompt-length",
            ),
            (
                self.was_given("synthetic_input_tokens_mean"),
                "--isl/--prompt-input-tokens-mean/--synthetic-input-tokens-mean",
            ),
            (
                self.was_given("synthetic_input_tokens_stddev"),
                "--isl-stddev/--prompt-input-tokens-stddev/--synthetic-input-tokens-stddev",
            ),
            (self.was_given("prompt_batch_size"), PROMPT_BATCH_FLAG),
            (self.sequence_distribution.is_some(), SEQ_DIST_FLAG),
            (self.random_range_ratio.is_some(), RANGE_RATIO_FLAG),
            (self.was_given("image_batch_size"), IMAGE_BATCH_FLAG),
            (self.was_given("audio_batch_size"), AUDIO_BATCH_FLAG),
            (
                self.was_given("conversation_turn_mean"),
                "--conversation-turn-mean/--session-turns-mean",
            ),
            (
                self.was_given("conversation_turn_stddev"),
                "--conversation-turn-stddev/--session-turns-stddev",
            ),
            (
                self.was_given("conversation_turn_delay_mean"),
                "--conversation-turn-delay-mean",
            ),
            (
                self.was_given("conversation_turn_delay_stddev"),
                "--conversation-turn-delay-stddev",
            ),
            (
                self.was_given("conversation_turn_delay_ratio"),
                "--conversation-turn-delay-ratio",
            ),
        ]
        .into_iter()
        .filter_map(|(given, flag)| {
            let batch = [PROMPT_BATCH_FLAG, IMAGE_BATCH_FLAG, AUDIO_BATCH_FLAG].contains(&flag);
            given.then_some((flag, batch))
        })
        .collect()
    }

    /// AIPerf 0.13's refusals of synthetic-only flags beside `--input-file`, in its order
    /// and words: any but a batch size; then batch sizes other than 1 beside a directory
    /// (each of its files is a pool of its own); then batch sizes beside a file that is
    /// not a `random_pool`.
    fn check_synthetic_only(&self) -> Result<(), String> {
        let Some(file) = &self.input_file else {
            return Ok(());
        };
        let given = self.synthetic_only_given();
        let flags = |batch: bool| -> Vec<&str> {
            given
                .iter()
                .filter(|(_, b)| *b == batch)
                .map(|(flag, _)| *flag)
                .collect()
        };
        let others = flags(false);
        if !others.is_empty() {
            return Err(format!(
                "{} is only supported with synthetic datasets; remove --input-file / \
                 --public-dataset (use a synthetic dataset) to apply synthetic-only prompt \
                 shaping (ISL, prefix prompts, multimodal generation, multi-turn \
                 conversation, etc).",
                others.join(", ")
            ));
        }
        let batches = flags(true);
        let not_one: Vec<&str> = [
            (PROMPT_BATCH_FLAG, self.prompt_batch_size),
            (IMAGE_BATCH_FLAG, self.image_batch_size),
            (AUDIO_BATCH_FLAG, self.audio_batch_size),
        ]
        .into_iter()
        .filter(|&(flag, size)| batches.contains(&flag) && size != 1)
        .map(|(flag, _)| flag)
        .collect();
        if !not_one.is_empty() && file.is_dir() {
            return Err(format!(
                "{} is not supported when --input-file is a directory: each file forms a \
                 separately named pool, and batching flattens them into one anonymous pool \
                 per modality. Point --input-file at a single random_pool file, or drop the \
                 batch-size flags.",
                not_one.join(", ")
            ));
        }
        let random_pool = self
            .custom_dataset_type
            .as_deref()
            .is_some_and(|t| crate::plugin::normalize_name(t) == "random_pool");
        if batches.is_empty() || random_pool {
            return Ok(());
        }
        let remedy = match &self.custom_dataset_type {
            None => "Either add --custom-dataset-type random_pool to keep --input-file".to_owned(),
            Some(other) => format!(
                "Either change --custom-dataset-type from {other} to random_pool to keep \
                 --input-file"
            ),
        };
        Err(format!(
            "{} requires --custom-dataset-type random_pool when used with --input-file. \
             {remedy}, or remove --input-file to use a synthetic dataset.",
            batches.join(", ")
        ))
    }

    /// Rejects values that would make a meaningless run, before anything starts.
    pub fn validate(&self) -> Result<(), String> {
        let positive = |name: &str, v: Option<f64>| match v {
            Some(v) if v == f64::INFINITY => {
                Err(format!("{name} must be a finite positive number, got inf"))
            }
            Some(v) if !(v.is_finite() && v > 0.0) => {
                Err(format!("{name} must be a positive number, got {v}"))
            }
            _ => Ok(()),
        };
        let at_least_one = |name: &str, v: Option<u64>| match v {
            Some(0) => Err(format!("{name} must be at least 1")),
            _ => Ok(()),
        };
        // Refused here, before the endpoint reads them, so the message is the flag's own.
        crate::extra_inputs::parse_extra_inputs(&self.extra_inputs).map_err(|e| e.to_string())?;
        at_least_one("--concurrency", self.concurrency.map(u64::from))?;
        at_least_one(
            "--prefill-concurrency",
            self.prefill_concurrency.map(u64::from),
        )?;
        at_least_one(
            "--warmup-prefill-concurrency",
            self.warmup_prefill_concurrency.map(u64::from),
        )?;
        at_least_one("--request-count", self.request_count)?;
        at_least_one("--workers", self.workers.map(u64::from))?;
        at_least_one(
            "--output-tokens-mean (--osl)",
            self.output_tokens_mean.map(u64::from),
        )?;
        at_least_one("--num-users", self.num_users.map(u64::from))?;
        at_least_one("--conversation-num", self.conversation_num)?;
        if !(self.conversation_turn_mean.is_finite() && self.conversation_turn_mean >= 1.0) {
            return Err(format!(
                "--conversation-turn-mean must be at least 1, got {}",
                self.conversation_turn_mean
            ));
        }
        for (name, v) in [
            ("--conversation-turn-stddev", self.conversation_turn_stddev),
            (
                "--conversation-turn-delay-mean",
                self.conversation_turn_delay_mean,
            ),
            (
                "--conversation-turn-delay-stddev",
                self.conversation_turn_delay_stddev,
            ),
            (
                "--conversation-turn-delay-ratio",
                self.conversation_turn_delay_ratio,
            ),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("{name} must be a non-negative number, got {v}"));
            }
        }
        at_least_one(
            "--synthetic-input-tokens-mean (--isl)",
            Some(u64::from(self.synthetic_input_tokens_mean)),
        )?;
        at_least_one(
            "--num-dataset-entries",
            self.num_dataset_entries.map(|n| n as u64),
        )?;
        positive("--request-rate", self.request_rate)?;
        if self.fixed_schedule_auto_offset && self.fixed_schedule_start_offset.is_some() {
            return Err(
                "--fixed-schedule-auto-offset and --fixed-schedule-start-offset \
                        each set the schedule's zero: give one (auto-offset is the default \
                        without a start offset)"
                    .into(),
            );
        }
        positive("--benchmark-duration", self.benchmark_duration)?;
        positive("--slice-duration", self.slice_duration)?;
        let wait = self.wait_for_model_timeout;
        // As AIPerf 0.13: a probe setting off its default without the probe is a mistake.
        let idle_probe_flags: Vec<&str> = [
            (
                "--wait-for-model-interval",
                self.wait_for_model_interval != 5.0,
            ),
            (
                "--wait-for-model-mode",
                self.wait_for_model_mode != ReadinessMode::Inference,
            ),
        ]
        .into_iter()
        .filter_map(|(flag, off_default)| (off_default && wait == 0.0).then_some(flag))
        .collect();
        if !idle_probe_flags.is_empty() {
            return Err(format!(
                "{} has no effect unless --wait-for-model-timeout is above 0, which turns \
                 the readiness probe on",
                idle_probe_flags.join(", ")
            ));
        }
        if let (Some(slice), Some(duration)) = (self.slice_duration, self.benchmark_duration) {
            let slices = duration / slice;
            if slices > crate::metrics::MAX_TIMESLICES as f64 {
                return Err(format!(
                    "--slice-duration {slice} cuts --benchmark-duration {duration} into \
                     {slices:.0} time slices, more than {}: give a longer slice duration",
                    crate::metrics::MAX_TIMESLICES
                ));
            }
        }
        positive("--warmup-duration", self.warmup_duration)?;
        positive("--warmup-request-rate", self.warmup_request_rate)?;
        at_least_one(
            "--warmup-concurrency",
            self.warmup_concurrency.map(u64::from),
        )?;
        if let Some(share) = self.failed_request_threshold {
            if !(0.0..=1.0).contains(&share) {
                return Err(format!(
                    "--failed-request-threshold is a share of requests from 0 to 1, got {}",
                    crate::limits::show(share)
                ));
            }
        }
        at_least_one("--num-warmup-sessions", self.warmup_num_sessions)?;
        if self.prompt_batch_size == 0 {
            // AIPerf takes 0 for media-only turns; every endpoint here needs a text.
            return Err(
                "--prompt-batch-size must be at least 1 (turns without text are not \
                        composed here)"
                    .into(),
            );
        }
        // AIPerf 0.13's rules and messages: a grace period tails a timed warmup only.
        if self.warmup_grace_period.is_some() && !self.has_warmup() {
            return Err(
                "--warmup-grace-period was given without a warmup: a warmup runs only with \
                 --warmup-request-count, --num-warmup-sessions or --warmup-duration"
                    .into(),
            );
        }
        if self.warmup_grace_period.is_some() && self.warmup_duration.is_none() {
            return Err(
                "--warmup-grace-period requires --warmup-duration: a grace period \
                        follows a timed warmup only"
                    .into(),
            );
        }
        if self.warmup_request_rate_ramp_duration.is_some()
            && self.warmup_request_rate.or(self.request_rate).is_none()
        {
            return Err(
                "--warmup-request-rate-ramp-duration needs a paced warmup: give \
                 --warmup-request-rate (or --request-rate)"
                    .into(),
            );
        }
        positive("--user-centric-rate", self.user_centric_rate)?;
        positive("--arrival-smoothness", self.arrival_smoothness)?;
        positive(
            "--concurrency-ramp-duration",
            self.concurrency_ramp_duration,
        )?;
        positive(
            "--request-rate-ramp-duration",
            self.request_rate_ramp_duration,
        )?;
        positive(
            "--prefill-concurrency-ramp-duration",
            self.prefill_concurrency_ramp_duration,
        )?;
        positive(
            "--warmup-prefill-concurrency-ramp-duration",
            self.warmup_prefill_concurrency_ramp_duration,
        )?;
        self.validate_prefill_concurrency()?;
        if !(0.0..=100.0).contains(&self.request_cancellation_rate) {
            return Err(format!(
                "--request-cancellation-rate is a percentage (0-100), got {}",
                self.request_cancellation_rate
            ));
        }
        if self.benchmark_grace_period < 0.0 || self.request_cancellation_delay < 0.0 {
            return Err(
                "--benchmark-grace-period and --request-cancellation-delay cannot be \
                        negative"
                    .into(),
            );
        }
        if self.user_centric_rate.is_some() && self.num_users.is_none() {
            return Err("--user-centric-rate needs --num-users".into());
        }
        // AIPerf 0.13 refuses it too (`_validate_profiling`): a user with one turn is a
        // request at a rate. A file's conversations bring their own turns.
        if self.user_centric_rate.is_some()
            && self.input_file.is_none()
            && self.conversation_turn_mean < 2.0
        {
            return Err(
                "User-centric rate mode requires --session-turns-mean >= 2. For \
                        single-turn workloads, use --request-rate instead."
                    .into(),
            );
        }
        if self.input_file.is_none()
            && crate::plugin::normalize_name(&self.effective_timing_mode()) == "fixed_schedule"
        {
            return Err(
                "--fixed-schedule replays the timestamps of a trace: give it with \
                        --input-file (a synthetic dataset has none)"
                    .into(),
            );
        }
        if self.user_centric_rate.is_some() && self.request_rate.is_some() {
            return Err("--user-centric-rate and --request-rate cannot be combined".into());
        }
        if self.num_users.is_some() && self.user_centric_rate.is_none() {
            return Err(
                "--num-users is the user count of --user-centric-rate, which is \
                        not given"
                    .into(),
            );
        }
        if self.arrival_smoothness.is_some() && self.request_rate.is_none() {
            return Err(
                "--arrival-smoothness shapes the arrivals of --request-rate, which \
                        is not given"
                    .into(),
            );
        }
        let pattern = crate::plugin::normalize_name(&self.effective_arrival_pattern());
        if self.arrival_smoothness.is_some() && pattern != "gamma" {
            return Err(format!(
                "--arrival-smoothness shapes the gamma arrival pattern, and --arrival-pattern \
                 {pattern} does not use it"
            ));
        }
        if self.is_concurrency_burst() && self.request_rate.is_some() && self.concurrency.is_none()
        {
            return Err(
                "--arrival-pattern concurrency_burst sends a request whenever a \
                        --concurrency slot is free and does not use --request-rate: give \
                        --concurrency N (without it nothing bounds the requests in flight)"
                    .into(),
            );
        }
        self.validate_prompt_context()?;
        self.length_sampling()?;
        crate::limits::check(self)?;
        self.validate_partners()
    }

    /// Flags that depend on another that is not given: AIPerf 0.13 refuses each rather
    /// than drop it without a word (after checking their values, as here).
    fn validate_partners(&self) -> Result<(), String> {
        if self.was_given("request_cancellation_delay") && self.request_cancellation_rate == 0.0 {
            return Err(
                "--request-cancellation-delay requires --request-cancellation-rate to \
                        be set (cancellation is disabled when rate is unset). Pass \
                        --request-cancellation-rate > 0 to enable cancellation, or drop \
                        --request-cancellation-delay."
                    .into(),
            );
        }
        if self.request_rate_ramp_duration.is_some()
            && self.request_rate.is_none()
            && self.user_centric_rate.is_none()
        {
            return Err(
                "--request-rate-ramp-duration can only be used with rate-controlled \
                        scheduling (--request-rate or --user-centric-rate). Pass one of those \
                        to enable rate ramping, or drop --request-rate-ramp-duration."
                    .into(),
            );
        }
        if let (Some(users), Some(_)) = (self.num_users, self.user_centric_rate) {
            let users = u64::from(users);
            for (flag, given, what) in [
                ("--num-sessions", self.conversation_num, "session"),
                ("--request-count", self.request_count, "request"),
            ] {
                if let Some(n) = given.filter(|&n| n < users) {
                    return Err(format!(
                        "{flag} ({n}) must be >= --num-users ({users}). Each user needs at \
                         least one {what}."
                    ));
                }
            }
        }
        Ok(())
    }

    /// `--prefill-concurrency` and the warmup's, with AIPerf 0.13's rules: the slots are
    /// freed at the first token, which only a stream shows, and bound requests within the
    /// phase's concurrency (a rate without `--concurrency` has none to exceed).
    fn validate_prefill_concurrency(&self) -> Result<(), String> {
        let warmup = self.warmup_load();
        let mut phases = vec![("--prefill-concurrency", self, "--concurrency")];
        if self.has_warmup() {
            let flag = if self.warmup_prefill_concurrency.is_some() {
                "--warmup-prefill-concurrency"
            } else {
                "--prefill-concurrency (the warmup's too, without --warmup-prefill-concurrency)"
            };
            let cap = if self.warmup_concurrency.is_some() {
                "--warmup-concurrency"
            } else {
                "--concurrency"
            };
            phases.push((flag, warmup.as_ref().unwrap_or(self), cap));
        }
        for (flag, load, cap_flag) in phases {
            let Some(prefill) = load.prefill_concurrency else {
                continue;
            };
            if !self.streaming {
                return Err(format!(
                    "{flag} needs --streaming: a request's prefill slot is freed at its \
                     first token, which only a streamed response shows"
                ));
            }
            match (load.effective_concurrency(), load.concurrency) {
                (Some(cap), Some(_)) if prefill > cap => {
                    return Err(format!(
                        "{flag} {prefill} is above {cap_flag} {cap}: it must be at most \
                         the concurrency, as no more requests than that are in flight"
                    ));
                }
                (Some(cap), None) if prefill > cap => {
                    return Err(format!(
                        "{flag} {prefill} is above the concurrency, {cap} when \
                         {cap_flag} is not given: it must be at most the concurrency \
                         (give {cap_flag} N)"
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The prefix, system and user context prompt flags, with AIPerf 0.13's rules
    /// (`PrefixPromptConfig`, `SystemPromptMixin`, `validate_system_prompt_compatibility`
    /// and the converter's file-dataset check), the file read as AIPerf reads it, at
    /// start-up. Two differences: a pool size without a length (AIPerf composes no prefix)
    /// and a length without a pool size (AIPerf fails while composing) are refused here.
    /// Whether the endpoint sends a system message is checked once it is created
    /// ([`Self::SYSTEM_PROMPT_UNSUPPORTED`]).
    fn validate_prompt_context(&self) -> Result<(), String> {
        for (flag, value) in [
            ("--prompt-prefix-pool-size", self.prompt_prefix_pool_size),
            ("--prompt-prefix-length", self.prompt_prefix_length),
            (
                "--shared-system-prompt-length",
                self.prompt_prefix_shared_system_length,
            ),
            (
                "--user-context-prompt-length",
                self.prompt_prefix_user_context_length,
            ),
        ] {
            if value == Some(0) {
                return Err(format!("{flag} must be at least 1"));
            }
        }
        let pool = self.prompt_prefix_pool_size.is_some() || self.prompt_prefix_length.is_some();
        let context = self.prompt_prefix_shared_system_length.is_some()
            || self.prompt_prefix_user_context_length.is_some();
        if pool && context {
            return Err("--prompt-prefix-pool-size/--prompt-prefix-length and \
                        --shared-system-prompt-length/--user-context-prompt-length are \
                        mutually exclusive"
                .into());
        }
        match (self.prompt_prefix_pool_size, self.prompt_prefix_length) {
            (Some(_), None) => {
                return Err(
                    "--prompt-prefix-pool-size needs --prompt-prefix-length, the \
                            tokens of each prefix prompt"
                        .into(),
                )
            }
            (None, Some(_)) => {
                return Err(
                    "--prompt-prefix-length needs --prompt-prefix-pool-size, the \
                            number of prefix prompts to pick from"
                        .into(),
                )
            }
            _ => {}
        }
        self.check_synthetic_only()?;
        // AIPerf writes the style onto the dataset's prompts whatever the dataset, and its
        // file dataset refuses the key; it shapes synthetic prompts only.
        if self.input_file.is_some() && self.was_given("random_corpus_style") {
            return Err(
                "--random-corpus-style is not permitted with --input-file: it shapes \
                 synthetic prompts only (AIPerf 0.13: \
                 benchmark.datasets.0.file.prompts.random_corpus_style: Extra inputs are \
                 not permitted); remove it, or remove --input-file to use a synthetic dataset"
                    .into(),
            );
        }
        if self.system_prompt()?.is_some() {
            if self.prompt_prefix_shared_system_length.is_some() {
                return Err("--system-prompt/--system-prompt-file and \
                            --shared-system-prompt-length are mutually exclusive: both fill \
                            the system message. Use the first for verbatim text, the second \
                            for synthetic filler of a target token length."
                    .into());
            }
            if pool {
                return Err("--system-prompt/--system-prompt-file and \
                            --num-prefix-prompts/--prefix-prompt-length are mutually \
                            exclusive, matching --shared-system-prompt-length, which fills \
                            the same system-message slot."
                    .into());
            }
        }
        Ok(())
    }

    /// The text of `--system-prompt`, or of the `--system-prompt-file` it names (read on
    /// every call), checked as AIPerf's `SystemPromptMixin` checks it: not both, not empty
    /// or blank, and a file is a regular UTF-8 file reached through no symbolic link
    /// (AIPerf's `safe_read_template_path`; a leading `~` is the home directory).
    pub fn system_prompt(&self) -> Result<Option<String>, String> {
        match (&self.system_prompt, &self.system_prompt_file) {
            (Some(_), Some(_)) => Err("system_prompt (--system-prompt) and system_prompt_file \
                                       (--system-prompt-file) are mutually exclusive; set \
                                       exactly one."
                .into()),
            (Some(text), None) if text.trim().is_empty() => Err(
                "system_prompt (--system-prompt) is empty or whitespace-only. Omit the \
                     option entirely to run without a system prompt."
                    .into(),
            ),
            (Some(text), None) => Ok(Some(text.clone())),
            (None, Some(path)) => {
                let text = read_regular_file(path).map_err(|why| {
                    format!(
                        "system_prompt_file (--system-prompt-file) could not be read: {} \
                         ({why}). Expected a readable regular UTF-8 text file with no \
                         symlinked path component.",
                        path.display()
                    )
                })?;
                if text.trim().is_empty() {
                    return Err(format!(
                        "system_prompt_file (--system-prompt-file) is empty or \
                         whitespace-only: {}. Omit the option entirely to run without a \
                         system prompt.",
                        path.display()
                    ));
                }
                Ok(Some(text))
            }
            (None, None) => Ok(None),
        }
    }

    /// The start of the error for `--system-prompt` with an endpoint that has no system
    /// role (AIPerf's wording); the engine adds the endpoints that have one.
    pub const SYSTEM_PROMPT_UNSUPPORTED: &'static str =
        "--system-prompt/--system-prompt-file is not supported by endpoint type";

    /// The prefix prompt flags given, by their first names (AIPerf refuses them with a
    /// file dataset, and with endpoints that neither tokenize their input nor produce
    /// tokens).
    pub fn prefix_prompt_flags(&self) -> Vec<&'static str> {
        [
            (
                self.prompt_prefix_length.is_some(),
                "--prompt-prefix-length",
            ),
            (
                self.prompt_prefix_pool_size.is_some(),
                "--prompt-prefix-pool-size",
            ),
            (
                self.prompt_prefix_shared_system_length.is_some(),
                "--shared-system-prompt-length",
            ),
            (
                self.prompt_prefix_user_context_length.is_some(),
                "--user-context-prompt-length",
            ),
        ]
        .into_iter()
        .filter_map(|(given, flag)| given.then_some(flag))
        .collect()
    }

    /// How synthetic turns draw their lengths, with AIPerf 0.13's refusals of
    /// `--seq-dist` and `--random-range-ratio`, in its order and (but for the flag
    /// names its messages leave out) its words. That both are for synthetic datasets is
    /// checked by [`Self::synthetic_only_given`]. The distribution must parse; the ratio
    /// must parse for its style; the two do not combine; the ratio needs `--osl` (`--isl` has a default here, as in AIPerf's
    /// command line), ratios in range, no `--isl-stddev`/`--osl-stddev` beside it; and a
    /// `vllm` window whose ISL could be 0 is refused, as AIPerf refuses it when it
    /// composes (AIPerf lets a prefix prompt make up for it; ours has none).
    pub fn length_sampling(&self) -> Result<LengthSampling, String> {
        let pairs = match &self.sequence_distribution {
            Some(text) => Some(
                SequenceDistribution::parse(text).map_err(|e| format!("{SEQ_DIST_FLAG}: {e}"))?,
            ),
            None => None,
        };
        let ratio = match &self.random_range_ratio {
            Some(text) => Some(RangeRatio::parse(text, self.random_corpus_style)?),
            None => None,
        };
        let Some(ratio) = ratio else {
            return Ok(pairs.map_or(LengthSampling::Means, LengthSampling::Pairs));
        };
        if pairs.is_some() {
            return Err(format!(
                "{RANGE_RATIO_FLAG} cannot be combined with {SEQ_DIST_FLAG}; use one or the \
                 other."
            ));
        }
        let Some(osl) = self.output_tokens_mean else {
            return Err(format!(
                "{RANGE_RATIO_FLAG} requires --osl to be set explicitly. There is no safe \
                 default when a ratio window is requested."
            ));
        };
        let ratio = ratio.checked()?;
        for (flag, stddev, what) in [
            ("--isl-stddev", self.synthetic_input_tokens_stddev, "ISL"),
            ("--osl-stddev", self.output_tokens_stddev, "OSL"),
        ] {
            if stddev != 0.0 {
                return Err(format!(
                    "{flag} cannot be combined with {RANGE_RATIO_FLAG}; the ratio window \
                     already controls {what} variance."
                ));
            }
        }
        let isl = self.synthetic_input_tokens_mean;
        let input = ratio.input_bounds(isl);
        // A prefix prompt carries a first turn whose drawn length is 0, as in AIPerf.
        let prefix = match self.prompt_prefix_pool_size {
            Some(_) => u64::from(self.prompt_prefix_length.unwrap_or(0)),
            None => 0,
        };
        if prefix + u64::from(input.0) < 1 {
            return Err(format!(
                "{RANGE_RATIO_FLAG} {} with --isl {isl} produces a minimum input of {} \
                 tokens. Increase --isl, add --prompt-prefix-length, or lower \
                 {RANGE_RATIO_FLAG} so the minimum is at least 1 token.",
                self.random_range_ratio.as_deref().unwrap_or_default(),
                input.0
            ));
        }
        Ok(LengthSampling::Window {
            ratio,
            input,
            output: ratio.output_bounds(osl),
        })
    }

    /// The primary model name.
    pub fn model_name(&self) -> &str {
        self.model.first().map(String::as_str).unwrap_or("")
    }

    /// Requests in flight at most, as AIPerf resolves it.
    pub fn effective_concurrency(&self) -> Option<u32> {
        // Schedules that set their own pace (rates, traces, users) are not capped unless
        // asked; a plain run is closed-loop at concurrency 1, as AIPerf does.
        let paced = self.request_rate.is_some()
            || self.user_centric_rate.is_some()
            || (self.fixed_schedule && !self.no_fixed_schedule);
        match self.concurrency {
            Some(c) => Some(c.max(1)),
            None if paced => None,
            None => Some(1),
        }
    }

    /// Whether a warmup phase runs before profiling.
    pub fn has_warmup(&self) -> bool {
        self.warmup_request_count > 0
            || self.warmup_duration.is_some()
            || self.warmup_num_sessions.is_some()
    }

    /// Whether a warmup flag sets part of the warmup's load.
    pub fn has_own_warmup_load(&self) -> bool {
        self.warmup_concurrency.is_some()
            || self.warmup_request_rate.is_some()
            || self.warmup_arrival_pattern.is_some()
            || self.warmup_concurrency_ramp_duration.is_some()
            || self.warmup_request_rate_ramp_duration.is_some()
            || self.warmup_prefill_concurrency.is_some()
            || self.warmup_prefill_concurrency_ramp_duration.is_some()
    }

    /// The warmup's own load, when a warmup flag sets part of it; `None` runs the warmup
    /// at the run's load. As AIPerf 0.13 builds its warmup phase, each warmup setting
    /// falls back to the run's: rate, concurrency (the cap of a paced warmup), arrival
    /// pattern, prefill concurrency and the ramps (a rate ramp only with a rate).
    /// A user-centric run's warmup has its own load whatever is given: see below.
    pub fn warmup_load(&self) -> Option<ProfileConfig> {
        if !self.has_own_warmup_load() && self.user_centric_rate.is_none() {
            return None;
        }
        let rate = self.warmup_request_rate.or(self.request_rate);
        let pattern = self
            .warmup_arrival_pattern
            .clone()
            .or_else(|| self.arrival_pattern.clone());
        Some(ProfileConfig {
            concurrency: self.warmup_concurrency.or(self.concurrency),
            request_rate: rate,
            // A pattern or smoothness shapes a rate; without one they mean nothing.
            arrival_pattern: pattern.filter(|_| rate.is_some()),
            arrival_smoothness: self.arrival_smoothness.filter(|_| rate.is_some()),
            concurrency_ramp_duration: self
                .warmup_concurrency_ramp_duration
                .or(self.concurrency_ramp_duration),
            request_rate_ramp_duration: self
                .warmup_request_rate_ramp_duration
                .or(self.request_rate_ramp_duration)
                .filter(|_| rate.is_some()),
            prefill_concurrency: self.warmup_prefill_concurrency.or(self.prefill_concurrency),
            prefill_concurrency_ramp_duration: self
                .warmup_prefill_concurrency_ramp_duration
                .or(self.prefill_concurrency_ramp_duration),
            // AIPerf warms a user-centric run up at a concurrency (1 unless given): its
            // warmup is a rate or a concurrency phase, never one of users.
            user_centric_rate: None,
            num_users: None,
            ..self.clone()
        })
    }

    /// How long a phase waits for its requests in flight once its duration is over:
    /// profiling for `--benchmark-grace-period`, a timed warmup for
    /// `--warmup-grace-period`, and without one for all of them (AIPerf 0.13's default).
    pub fn grace_period(&self, warmup: bool) -> Option<f64> {
        if warmup {
            self.warmup_grace_period
        } else {
            Some(self.benchmark_grace_period)
        }
    }

    /// Profiling request count, as AIPerf resolves it.
    pub fn effective_request_count(&self) -> Option<u64> {
        match (self.request_count, self.benchmark_duration) {
            (Some(n), _) => Some(n),
            (None, Some(_)) => None,
            // A trace replays exactly its rows; a session count bounds the run itself.
            (None, None) if self.fixed_schedule && !self.no_fixed_schedule => None,
            (None, None) if self.conversation_num.is_some() => None,
            // AIPerf 0.13 bounds an otherwise unbounded run at 10 requests, however many
            // slots `--concurrency` opens.
            (None, None) => Some(DEFAULT_REQUEST_COUNT),
        }
    }

    /// Whether the arrivals are `concurrency_burst`: a request whenever a slot is free.
    pub fn is_concurrency_burst(&self) -> bool {
        crate::plugin::normalize_name(&self.effective_arrival_pattern()) == "concurrency_burst"
    }

    /// The arrival pattern: explicit, or `poisson` with a rate (`gamma` when only a
    /// smoothness is given), else `concurrency_burst`.
    pub fn effective_arrival_pattern(&self) -> String {
        if let Some(p) = &self.arrival_pattern {
            return p.clone();
        }
        match (self.request_rate, self.arrival_smoothness) {
            (Some(_), Some(_)) => "gamma".into(),
            (Some(_), None) => "poisson".into(),
            (None, _) => "concurrency_burst".into(),
        }
    }

    /// The timing strategy: explicit, else `request_rate` (AIPerf maps concurrency-only
    /// runs to `request_rate` + `concurrency_burst`).
    /// The synthetic conversations to compose, as AIPerf 0.13 resolves them
    /// (`_resolve_entries`): `--num-dataset-entries`, else `--conversation-num`, else
    /// `--request-count`, else 100. So `--request-count 150` sends 150 unique prompts,
    /// and a server's prefix cache sees what it would see from AIPerf.
    pub fn dataset_entries(&self) -> Result<usize, String> {
        let entries = match (
            self.num_dataset_entries,
            self.conversation_num,
            self.request_count,
        ) {
            (Some(n), _, _) => n as u64,
            (None, Some(sessions), _) => sessions,
            (None, None, Some(count)) => count,
            (None, None, None) => DEFAULT_DATASET_ENTRIES,
        };
        match usize::try_from(entries) {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!(
                "the dataset needs between 1 and {} conversations, got {entries}",
                usize::MAX
            )),
        }
    }

    pub fn effective_timing_mode(&self) -> String {
        if let Some(mode) = &self.timing_mode {
            return mode.clone();
        }
        if self.fixed_schedule && !self.no_fixed_schedule {
            "fixed_schedule".into()
        } else if self.user_centric_rate.is_some() {
            "user_centric_rate".into()
        } else {
            "request_rate".into()
        }
    }

    /// AIPerf's stimulus label for the default artifact directory.
    pub fn stimulus(&self) -> String {
        match crate::plugin::normalize_name(&self.effective_timing_mode()).as_str() {
            "fixed_schedule" => return "fixed_schedule".into(),
            "user_centric_rate" => {
                return format!(
                    "user_centric-users{}-qps{}",
                    self.num_users.unwrap_or(0),
                    fmt_rate(self.user_centric_rate.unwrap_or(0.0))
                )
            }
            _ => {}
        }
        match (self.request_rate, self.concurrency) {
            (Some(r), Some(c)) => format!("concurrency{c}-request_rate{}", fmt_rate(r)),
            (Some(r), None) => format!("request_rate{}", fmt_rate(r)),
            (None, c) => format!("concurrency{}", c.unwrap_or(1)),
        }
    }
}

/// `--export-level`: how much of the run is written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportLevel {
    /// The summary files only (JSON, CSV, console).
    Summary,
    /// The summaries and one `profile_export.jsonl` line per request.
    Records,
    /// As `Records`, plus `profile_export_raw.jsonl`: what each request sent and got.
    Raw,
}

impl ExportLevel {
    /// Whether `profile_export.jsonl` is written.
    pub fn writes_records(self) -> bool {
        self != ExportLevel::Summary
    }
}

/// A name for files inside the artifact directory, not a path.
/// A file's text as AIPerf's `safe_read_template_path` reads it: a leading `~` is the home
/// directory, no symbolic link on the way (the file or any directory above it), a regular
/// file, UTF-8. The error says why not.
fn read_regular_file(path: &Path) -> Result<String, String> {
    let path = match (path.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => path.to_path_buf(),
    };
    let mut step = Some(path.as_path());
    while let Some(p) = step.filter(|p| !p.as_os_str().is_empty()) {
        if std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(format!("{} is a symbolic link", p.display()));
        }
        step = p.parent();
    }
    let meta = std::fs::metadata(&path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    let bytes = std::fs::read(&path).map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".into())
}

/// A count that the checks in [`ProfileConfig::validate`] want at least 1 (zero is left to
/// them, which say why where it matters); a negative number reads as that, where clap's
/// own parser said "-3 is not in 0..=4294967295".
fn count<T: TryFrom<u64>>(text: &str) -> Result<T, String> {
    let Ok(n) = text.parse::<i128>() else {
        return Err(format!("`{text}` is not a whole number"));
    };
    if n < 0 {
        return Err("must be at least 1".to_owned());
    }
    u64::try_from(n)
        .ok()
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| format!("{text} is too large"))
}

fn parse_export_prefix(s: &str) -> Result<String, String> {
    let name = s.trim();
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        return Err(format!(
            "`{s}` is not a file name (the exports go into --artifact-dir; give a name \
             without a directory)"
        ));
    }
    Ok(name.to_owned())
}

/// AIPerf's spellings.
fn parse_export_level(s: &str) -> Result<ExportLevel, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "summary" => Ok(ExportLevel::Summary),
        "records" => Ok(ExportLevel::Records),
        "raw" => Ok(ExportLevel::Raw),
        _ => Err(format!(
            "unknown export level `{s}` (expected one of: summary, records, raw)"
        )),
    }
}

/// `--model-selection-strategy`: which of several `--model`s each turn names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelSelectionStrategy {
    /// The names in order, one turn after another, starting over after the last.
    RoundRobin,
    /// A uniform draw per turn from the run's seeded stream.
    Random,
}

impl ModelSelectionStrategy {
    /// The values the flag accepts, in AIPerf's spelling.
    pub const NAMES: [&'static str; 2] = ["round_robin", "random"];
}

impl std::str::FromStr for ModelSelectionStrategy {
    type Err = String;

    /// Case-insensitive; `_` and `-` are the same (AIPerf's enum normalisation).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "round_robin" => Ok(ModelSelectionStrategy::RoundRobin),
            "random" => Ok(ModelSelectionStrategy::Random),
            _ => Err(format!(
                "unknown model selection strategy `{s}` (expected one of: {})",
                Self::NAMES.join(", ")
            )),
        }
    }
}

/// One `--model` name, without the spaces around it (`-m "a, b"` names `a` and `b`, as
/// AIPerf strips each name of a list).
fn parse_model_name(s: &str) -> Result<String, String> {
    Ok(s.trim().to_owned())
}

fn parse_model_selection_strategy(s: &str) -> Result<ModelSelectionStrategy, String> {
    s.parse()
}

/// Python's `str(float)`: `20.0`, `2.5`.
fn fmt_rate(r: f64) -> String {
    if r.fract() == 0.0 && r.abs() < 1e15 {
        format!("{r:.1}")
    } else {
        format!("{r}")
    }
}

/// `--request-timeout-seconds`: a positive, finite number of seconds.
fn parse_timeout_seconds(s: &str) -> Result<f64, String> {
    let secs: f64 = s.trim().parse().map_err(|e| format!("{e}"))?;
    // Duration::from_secs_f64 panics beyond ~5.8e11 s; a century is more than enough.
    if !(secs > 0.0 && secs <= 3.2e9) {
        return Err("must be a number of seconds above 0 (at most 3.2e9)".to_owned());
    }
    Ok(secs)
}

/// `--connection-reuse-strategy`, normalised to AIPerf's spelling.
fn parse_connection_reuse(s: &str) -> Result<String, String> {
    s.parse::<crate::http::ConnectionReuse>()
        .map(|r| r.as_str().to_owned())
}

/// `--goodput` SLOs as given: `(tag, value in display units)` in first-mention order.
/// Tags are checked against the run's metrics when it starts
/// (`metrics::Goodput::from_config`). In `input_config` it is a `{tag: value}` object.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GoodputSlos(pub Vec<(String, f64)>);

impl Serialize for GoodputSlos {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(tag, value)| (tag, value)))
    }
}

/// `--goodput`, as AIPerf reads it: whitespace-separated `key:value` items, split at the
/// first `:`, both sides trimmed; a repeated key keeps its first place and last value.
fn parse_goodput(s: &str) -> Result<GoodputSlos, String> {
    if s.trim().is_empty() {
        return Err("expected space-separated 'tag:value' pairs (e.g. \
             'time_to_first_token:200 inter_token_latency:20'), got an empty string"
            .to_owned());
    }
    let mut slos: Vec<(String, f64)> = Vec::new();
    for item in s.split_whitespace() {
        let Some((tag, value)) = item.split_once(':') else {
            return Err(format!("'{item}' is not in 'tag:value' format"));
        };
        let (tag, value) = (tag.trim(), value.trim());
        if tag.is_empty() {
            return Err(format!("'{item}' has an empty tag"));
        }
        let value: f64 = match value.parse() {
            Ok(v) if f64::is_finite(v) => v,
            Ok(_) => return Err(format!("value for '{tag}' must be finite, got '{value}'")),
            Err(_) => return Err(format!("value for '{tag}' must be a number, got '{value}'")),
        };
        match slos.iter_mut().find(|(t, _)| t == tag) {
            Some(slot) => slot.1 = value,
            None => slos.push((tag.to_owned(), value)),
        }
    }
    Ok(GoodputSlos(slos))
}

/// A `--header` value as written into artifacts and logs: every value becomes
/// `<redacted>`, names stay. Any header may carry a credential (`X-Auth-Token`,
/// `Ocp-Apim-Subscription-Key`, ...), so no list of names can tell which are safe.
pub(crate) fn redact_header(header: &str) -> String {
    const REDACTED: &str = "<redacted>";
    let trimmed = header.trim();
    if trimmed.starts_with('{') {
        // The JSON-object form, `{"Name": "Value", ...}`.
        return match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(trimmed) {
            Ok(object) => {
                let names: Vec<String> = object
                    .keys()
                    .map(|name| {
                        format!("{}:\"{REDACTED}\"", serde_json::Value::from(name.as_str()))
                    })
                    .collect();
                format!("{{{}}}", names.join(","))
            }
            Err(_) => REDACTED.to_owned(),
        };
    }
    match header.split_once(':') {
        Some((name, _)) => format!("{name}:{REDACTED}"),
        // No name to keep: the whole argument may be the secret.
        None => REDACTED.to_owned(),
    }
}

/// The command line as written into artifacts, the console and logs: `--api-key` and
/// every `--header` value replaced by `<redacted>`, in each spelling clap accepts
/// (`--header X`, `--header=X`, `-H X`, `-H=X`, `-HX`), and every further value one
/// `--header X Y ...` takes (clap gives the flag every word up to the next flag).
pub(crate) fn redact_args(args: impl Iterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut secret_next = false;
    let mut header_next = false;
    // Inside the values of a `--header` / `-H` written apart from its values.
    let mut header_values = false;
    for arg in args {
        header_values &= !arg.starts_with('-');
        let redacted = if secret_next {
            "<redacted>".to_owned()
        } else if header_next || header_values {
            redact_header(&arg)
        } else if arg.starts_with("--api-key=") {
            "--api-key=<redacted>".to_owned()
        } else if let Some(value) = arg.strip_prefix("--header=") {
            format!("--header={}", redact_header(value))
        } else if let Some(value) = arg.strip_prefix("-H=") {
            format!("-H={}", redact_header(value))
        } else if let Some(value) = arg.strip_prefix("-H").filter(|v| !v.is_empty()) {
            format!("-H{}", redact_header(value))
        } else {
            arg.clone()
        };
        let is_value = secret_next || header_next || header_values;
        header_values = header_next || header_values;
        secret_next = !is_value && arg == "--api-key";
        header_next = !is_value && (arg == "--header" || arg == "-H");
        out.push(shell_word(redacted));
    }
    out
}

/// `arg` as a POSIX shell reads it back: single-quoted when it holds anything a shell
/// would act on (`{"top_p":0.9}`, `a b`, `?x=1&y=2`), so the printed command can be pasted.
/// The `<redacted>` placeholder stays bare: it is to be replaced, not run.
fn shell_word(arg: String) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./:=,@%+".contains(c);
    if !arg.is_empty() && arg.replace(REDACTED_ARG, "").chars().all(plain) {
        return arg;
    }
    format!("'{}'", arg.replace('\'', "'\\''"))
}

const REDACTED_ARG: &str = "<redacted>";

#[cfg(test)]
mod transport_flag_tests {
    use clap::{Args as _, Command, FromArgMatches as _};

    use super::*;

    fn parse(args: &[&str]) -> Result<ProfileConfig, clap::Error> {
        let command = ProfileConfig::augment_args(Command::new("profile"));
        let matches = command.try_get_matches_from(["profile", "-m", "m"].iter().chain(args))?;
        ProfileConfig::from_arg_matches(&matches)
    }

    /// AIPerf 0.13's `--url`, `--header` and `--extra-inputs` take several values after
    /// one flag (`consume_multiple`), as well as repeated flags.
    #[test]
    fn list_flags_take_several_values_after_one_flag() {
        let c = parse(&[
            "--url",
            "http://a:1",
            "http://b:2",
            "-H",
            "X-A:1",
            "X-B:2",
            "--extra-inputs",
            "a:1",
            "b:2",
            "--extra-inputs",
            "c:3",
            "--concurrency",
            "2",
        ])
        .unwrap();
        assert_eq!(c.url, ["http://a:1", "http://b:2"]);
        assert_eq!(c.headers, ["X-A:1", "X-B:2"]);
        assert_eq!(c.extra_inputs, ["a:1", "b:2", "c:3"]);
        assert_eq!(c.concurrency, Some(2));
        assert_eq!(parse(&[]).unwrap().url, ["http://localhost:8000"]);
    }

    /// AIPerf 0.13 sends 10 requests when nothing bounds the run, however many slots.
    #[test]
    fn an_unbounded_run_sends_ten_requests_at_any_concurrency() {
        let count = |args: &[&str]| parse(args).unwrap().effective_request_count();
        assert_eq!(count(&[]), Some(10));
        assert_eq!(count(&["--concurrency", "64"]), Some(10));
        assert_eq!(
            count(&["--concurrency", "64", "--request-count", "7"]),
            Some(7)
        );
        assert_eq!(count(&["--benchmark-duration", "5"]), None);
        assert_eq!(count(&["--conversation-num", "3"]), None);
    }

    /// AIPerf's stimulus part of the default artifact directory, by timing mode.
    #[test]
    fn stimulus_names_the_timing_as_aiperf() {
        let stimulus = |args: &[&str]| parse(args).unwrap().stimulus();
        assert_eq!(stimulus(&[]), "concurrency1");
        assert_eq!(stimulus(&["--concurrency", "8"]), "concurrency8");
        assert_eq!(stimulus(&["--request-rate", "20"]), "request_rate20.0");
        assert_eq!(
            stimulus(&["--request-rate", "2.5", "--concurrency", "4"]),
            "concurrency4-request_rate2.5"
        );
        assert_eq!(
            stimulus(&["--user-centric-rate", "5", "--num-users", "2"]),
            "user_centric-users2-qps5.0"
        );
        assert_eq!(stimulus(&["--fixed-schedule"]), "fixed_schedule");
        assert_eq!(
            stimulus(&["--fixed-schedule", "--no-fixed-schedule"]),
            "concurrency1"
        );
    }

    #[test]
    fn transport_defaults_follow_aiperf() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.url, ["http://localhost:8000"]);
        assert_eq!(c.request_timeout_seconds, 21600.0);
        assert_eq!(c.connection_reuse_strategy, "pooled");
        assert_eq!(c.url_selection_strategy, "round_robin");
        assert_eq!(c.ca_cert, None);
    }

    #[test]
    fn transport_flags() {
        let c = parse(&[
            "-u",
            "http://a:1",
            "--url",
            "https://b",
            "--request-timeout-seconds",
            "2.5",
            "--connection-reuse-strategy",
            "STICKY_USER_SESSIONS",
            "--url-selection-strategy",
            "round_robin",
            "--ca-cert",
            "/x/ca.pem",
        ])
        .unwrap();
        assert_eq!(c.url, ["http://a:1", "https://b"]);
        assert_eq!(c.request_timeout_seconds, 2.5);
        assert_eq!(c.connection_reuse_strategy, "sticky-user-sessions");
        assert_eq!(c.ca_cert, Some(PathBuf::from("/x/ca.pem")));
        for bad in [
            &["--request-timeout-seconds", "0"][..],
            &["--request-timeout-seconds", "nan"],
            &["--connection-reuse-strategy", "sometimes"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    fn redact(args: &[&str]) -> String {
        redact_args(args.iter().map(|s| (*s).to_owned())).join(" ")
    }

    #[test]
    fn credentials_are_redacted_from_the_command_line() {
        assert_eq!(
            redact(&[
                "bin",
                "profile",
                "--api-key",
                "sk-1",
                "--api-key=sk-2",
                "-m",
                "m"
            ]),
            "bin profile --api-key <redacted> --api-key=<redacted> -m m"
        );
        assert_eq!(
            redact(&[
                "--header",
                "Authorization:Bearer x",
                "-H",
                "X-Foo:bar",
                "--header=X-Auth-Token:t",
                "-H=Ocp-Apim-Subscription-Key:k",
                "-HX-Key:v",
                "-H",
                "-H",
            ]),
            "--header Authorization:<redacted> -H X-Foo:<redacted> \
             --header=X-Auth-Token:<redacted> -H=Ocp-Apim-Subscription-Key:<redacted> \
             -HX-Key:<redacted> -H <redacted>"
        );
        // One flag, several values: each is a header.
        assert_eq!(
            redact(&["-H", "X-A: one", "X-B: two", "Bare", "-m", "m", "x"]),
            "-H X-A:<redacted> X-B:<redacted> <redacted> -m m x"
        );
        assert_eq!(redact(&["--extra-inputs", "a b"]), "--extra-inputs 'a b'");
        assert_eq!(
            redact(&[
                "--extra-inputs",
                r#"{"top_p":0.9}"#,
                "--url",
                "http://h/?a=1&b",
                "x'y"
            ]),
            r#"--extra-inputs '{"top_p":0.9}' --url 'http://h/?a=1&b' 'x'\''y'"#
        );
        assert_eq!(redact(&["--prefix", ""]), "--prefix ''");
    }

    /// Every spelling clap accepts for `--header` is one the redaction recognises.
    #[test]
    fn every_header_spelling_clap_accepts_is_redacted() {
        for args in [
            &["--header", "X-S:sec"][..],
            &["--header=X-S:sec"],
            &["-H", "X-S:sec"],
            &["-H=X-S:sec"],
            &["-HX-S:sec"],
        ] {
            assert_eq!(parse(args).unwrap().headers, ["X-S:sec"], "{args:?}");
            let line = redact(args);
            assert!(!line.contains("sec"), "{args:?}: {line}");
            assert!(line.contains("X-S:<redacted>"), "{args:?}: {line}");
        }
    }
}

#[cfg(test)]
mod goodput_flag_tests {
    use clap::{Args as _, Command, FromArgMatches as _};

    use super::*;

    fn goodput(value: &str) -> Result<Option<GoodputSlos>, String> {
        let command = ProfileConfig::augment_args(Command::new("profile"));
        let args = ["profile", "-m", "m", "--goodput", value];
        let matches = command
            .try_get_matches_from(args)
            .map_err(|e| e.kind().to_string() + ": " + &e.to_string())?;
        Ok(ProfileConfig::from_arg_matches(&matches)
            .map_err(|e| e.to_string())?
            .goodput)
    }

    #[test]
    fn pairs_split_on_whitespace_and_the_first_colon() {
        let slos = goodput("  time_to_first_token:200\t inter_token_latency:2.5e1 ")
            .unwrap()
            .unwrap();
        assert_eq!(
            slos.0,
            [
                ("time_to_first_token".to_owned(), 200.0),
                ("inter_token_latency".to_owned(), 25.0)
            ]
        );
        // A repeated tag keeps its place and takes the last value, as a Python dict does.
        let slos = goodput("a:1 b:2 a:3").unwrap().unwrap();
        assert_eq!(slos.0, [("a".to_owned(), 3.0), ("b".to_owned(), 2.0)]);
    }

    #[test]
    fn malformed_pairs_are_refused_with_the_item() {
        for (value, message) in [
            ("", "got an empty string"),
            (
                "time_to_first_token",
                "'time_to_first_token' is not in 'tag:value' format",
            ),
            (":5", "':5' has an empty tag"),
            ("ttft:fast", "value for 'ttft' must be a number, got 'fast'"),
            ("ttft:", "value for 'ttft' must be a number, got ''"),
            ("ttft:a:b", "value for 'ttft' must be a number, got 'a:b'"),
            ("ttft:NaN", "value for 'ttft' must be finite, got 'NaN'"),
        ] {
            let err = goodput(value).expect_err(value);
            assert!(err.contains(message), "{value:?}: {err}");
        }
    }

    /// AIPerf's `input_config.slos`: `{tag: value}`, absent without `--goodput`.
    #[test]
    fn input_config_carries_the_slos_as_an_object() {
        let command = ProfileConfig::augment_args(Command::new("profile"));
        let args = [
            "profile",
            "-m",
            "m",
            "--goodput",
            "time_to_first_token:60 request_latency:5",
        ];
        let c = ProfileConfig::from_arg_matches(&command.get_matches_from(args)).unwrap();
        assert_eq!(
            crate::export::input_config::for_tests(&c)["slos"],
            serde_json::json!({"time_to_first_token": 60.0, "request_latency": 5.0})
        );
        let none = ProfileConfig::from_arg_matches(
            &ProfileConfig::augment_args(Command::new("profile"))
                .get_matches_from(["profile", "-m", "m"]),
        )
        .unwrap();
        assert!(crate::export::input_config::for_tests(&none)
            .get("slos")
            .is_none());
    }
}

#[cfg(test)]
mod model_flag_tests {
    use clap::{Args as _, Command, FromArgMatches as _};

    use super::*;

    fn parse(args: &[&str]) -> Result<ProfileConfig, String> {
        let command = ProfileConfig::augment_args(Command::new("profile"));
        let matches = command
            .try_get_matches_from(std::iter::once(&"profile").chain(args))
            .map_err(|e| e.to_string())?;
        ProfileConfig::from_arg_matches(&matches).map_err(|e| e.to_string())
    }

    #[test]
    fn models_repeat_or_split_at_commas_and_default_to_round_robin() {
        let c = parse(&["-m", "a", "--model", "b,c"]).unwrap();
        assert_eq!(c.model, ["a", "b", "c"]);
        assert_eq!(c.model_name(), "a");
        assert_eq!(
            c.model_selection_strategy,
            ModelSelectionStrategy::RoundRobin
        );
        // AIPerf's `input_config.models`: the strategy is left out at its default.
        let v = crate::export::input_config::for_tests(&c);
        assert_eq!(
            v["models"],
            serde_json::json!({"items": [{"name": "a"}, {"name": "b"}, {"name": "c"}]})
        );
    }

    #[test]
    fn strategy_names_are_case_and_separator_insensitive() {
        for (value, expected) in [
            ("random", ModelSelectionStrategy::Random),
            ("RANDOM", ModelSelectionStrategy::Random),
            ("round_robin", ModelSelectionStrategy::RoundRobin),
            ("Round-Robin", ModelSelectionStrategy::RoundRobin),
        ] {
            let c = parse(&["-m", "a", "--model-selection-strategy", value]).unwrap();
            assert_eq!(c.model_selection_strategy, expected, "{value}");
        }
        let v = crate::export::input_config::for_tests(
            &parse(&["-m", "a", "--model-selection-strategy", "random"]).unwrap(),
        );
        assert_eq!(v["models"]["strategy"], "random");
    }

    #[test]
    fn an_unknown_strategy_is_refused_with_the_accepted_ones() {
        for bad in ["least_loaded", "", "roundrobin"] {
            let err = parse(&["-m", "a", "--model-selection-strategy", bad]).unwrap_err();
            assert!(
                err.contains("--model-selection-strategy")
                    && err.contains("expected one of: round_robin, random"),
                "{bad:?}: {err}"
            );
        }
    }
}

#[cfg(test)]
mod prefill_flag_tests {
    use clap::{Args as _, Command, FromArgMatches as _};

    use super::*;

    fn parse(args: &[&str]) -> ProfileConfig {
        let command = ProfileConfig::augment_args(Command::new("profile"));
        let matches = command
            .try_get_matches_from(["profile", "-m", "m"].iter().chain(args))
            .expect("flags parse");
        ProfileConfig::from_arg_matches(&matches).expect("config")
    }

    fn refused(args: &[&str], message: &str) {
        match parse(args).validate() {
            Err(e) => assert!(e.contains(message), "{args:?}: {e}"),
            Ok(()) => panic!("{args:?} was accepted"),
        }
    }

    /// AIPerf 0.13 frees the slots at the first token, so a run without a stream is
    /// refused, whichever phase asks for them.
    #[test]
    fn prefill_concurrency_needs_streaming() {
        refused(
            &["--concurrency", "4", "--prefill-concurrency", "2"],
            "--prefill-concurrency needs --streaming",
        );
        refused(
            &[
                "--concurrency",
                "4",
                "--warmup-request-count",
                "5",
                "--warmup-prefill-concurrency",
                "2",
            ],
            "--warmup-prefill-concurrency needs --streaming",
        );
        let ok = [
            "--streaming",
            "--concurrency",
            "4",
            "--prefill-concurrency",
            "2",
        ];
        assert_eq!(parse(&ok).validate(), Ok(()));
    }

    /// At most the phase's concurrency: 1 in a plain run without `--concurrency`, none
    /// to exceed under a rate without one.
    #[test]
    fn prefill_concurrency_is_at_most_the_concurrency() {
        refused(
            &[
                "--streaming",
                "--concurrency",
                "2",
                "--prefill-concurrency",
                "3",
            ],
            "--prefill-concurrency 3 is above --concurrency 2",
        );
        refused(
            &["--streaming", "--prefill-concurrency", "2"],
            "--prefill-concurrency 2 is above the concurrency, 1 when --concurrency is not \
             given",
        );
        let rate = [
            "--streaming",
            "--request-rate",
            "5",
            "--prefill-concurrency",
            "8",
        ];
        assert_eq!(parse(&rate).validate(), Ok(()));
        let equal = [
            "--streaming",
            "--concurrency",
            "3",
            "--prefill-concurrency",
            "3",
        ];
        assert_eq!(parse(&equal).validate(), Ok(()));
        refused(
            &[
                "--streaming",
                "--concurrency",
                "8",
                "--warmup-request-count",
                "5",
                "--warmup-concurrency",
                "2",
                "--prefill-concurrency",
                "4",
            ],
            "--prefill-concurrency (the warmup's too, without --warmup-prefill-concurrency) \
             4 is above --warmup-concurrency 2",
        );
        refused(
            &[
                "--streaming",
                "--concurrency",
                "8",
                "--warmup-request-count",
                "5",
                "--warmup-prefill-concurrency",
                "9",
            ],
            "--warmup-prefill-concurrency 9 is above --concurrency 8",
        );
        // Without a warmup its flags are not used (a warning says so), as in AIPerf.
        let no_warmup = [
            "--streaming",
            "--concurrency",
            "2",
            "--warmup-prefill-concurrency",
            "9",
        ];
        assert_eq!(parse(&no_warmup).validate(), Ok(()));
        refused(
            &["--streaming", "--prefill-concurrency", "0"],
            "--prefill-concurrency must be at least 1",
        );
        refused(
            &[
                "--streaming",
                "--prefill-concurrency",
                "1",
                "--prefill-concurrency-ramp-duration",
                "0",
            ],
            "--prefill-concurrency-ramp-duration must be a positive number",
        );
    }

    /// Each warmup setting falls back to the run's, as AIPerf 0.13's warmup converter.
    #[test]
    fn the_warmup_falls_back_to_the_run_prefill_settings() {
        let run = [
            "--streaming",
            "--concurrency",
            "8",
            "--prefill-concurrency",
            "4",
            "--prefill-concurrency-ramp-duration",
            "3",
            "--warmup-request-count",
            "5",
        ];
        let c = parse(&run);
        // No warmup flag of its own: the warmup runs at the run's load, prefill included.
        assert!(c.warmup_load().is_none());
        let own = |extra: &[&str]| {
            let c = parse(&[&run[..], extra].concat());
            c.validate().expect("valid");
            c.warmup_load().expect("the warmup has its own load")
        };
        let w = own(&["--warmup-prefill-concurrency", "2"]);
        assert_eq!(w.prefill_concurrency, Some(2));
        assert_eq!(w.prefill_concurrency_ramp_duration, Some(3.0));
        let w = own(&["--warmup-prefill-concurrency-ramp-duration", "1"]);
        assert_eq!(w.prefill_concurrency, Some(4));
        assert_eq!(w.prefill_concurrency_ramp_duration, Some(1.0));
        let w = own(&["--warmup-concurrency", "6"]);
        assert_eq!((w.concurrency, w.prefill_concurrency), (Some(6), Some(4)));
        // The phases in `input_config`, as AIPerf writes them.
        let c = parse(&[&run[..], &["--warmup-prefill-concurrency", "2"]].concat());
        let v = crate::export::input_config::for_tests(&c);
        let phases = &v["phases"];
        assert_eq!(phases[0]["prefill_concurrency"], 2, "{v}");
        assert_eq!(phases[1]["prefill_concurrency"], 4, "{v}");
        assert_eq!(phases[1]["prefill_ramp"]["duration"], 3.0, "{v}");
    }

    /// Synthetic-only flags beside `--input-file` are refused in one message, naming each
    /// flag given as AIPerf 0.13 names it; defaults left alone are not.
    #[test]
    fn synthetic_shaping_with_a_file_is_refused() {
        let given = |args: &[&str]| {
            let command = ProfileConfig::augment_args(Command::new("profile"));
            let all = ["profile", "-m", "m", "--input-file", "in.jsonl"];
            let matches = command
                .try_get_matches_from(all.iter().chain(args))
                .expect("flags parse");
            let mut c = ProfileConfig::from_arg_matches(&matches).expect("flags convert");
            c.note_given(&matches);
            c.validate()
        };
        assert_eq!(given(&[]), Ok(()));
        assert_eq!(given(&["--osl", "5"]), Ok(()));
        assert_eq!(
            given(&["--isl", "100", "--session-turns-mean", "3"]),
            Err(
                "--isl/--prompt-input-tokens-mean/--synthetic-input-tokens-mean, \
                 --conversation-turn-mean/--session-turns-mean is only supported with \
                 synthetic datasets; remove --input-file / --public-dataset (use a synthetic \
                 dataset) to apply synthetic-only prompt shaping (ISL, prefix prompts, \
                 multimodal generation, multi-turn conversation, etc)."
                    .to_owned()
            )
        );
        // Batch sizes fill a random_pool file's turns; beside any other file they are
        // refused with AIPerf's remedy.
        assert_eq!(
            given(&["--prompt-batch-size", "2"]),
            Err(
                "--prompt-batch-size/--batch-size-text requires --custom-dataset-type \
                 random_pool when used with --input-file. Either add --custom-dataset-type \
                 random_pool to keep --input-file, or remove --input-file to use a synthetic \
                 dataset."
                    .to_owned()
            )
        );
        assert_eq!(
            given(&[
                "--custom-dataset-type",
                "single_turn",
                "--image-batch-size",
                "2"
            ]),
            Err(
                "--image-batch-size requires --custom-dataset-type random_pool when used with \
                 --input-file. Either change --custom-dataset-type from single_turn to \
                 random_pool to keep --input-file, or remove --input-file to use a synthetic \
                 dataset."
                    .to_owned()
            )
        );
        assert_eq!(
            given(&[
                "--custom-dataset-type",
                "random_pool",
                "--prompt-batch-size",
                "2"
            ]),
            Ok(())
        );
        // Prefix prompts, lengths and turns in one message, in AIPerf's order (checked
        // against AIPerf 0.13 with these flags).
        let all = [
            "--session-turns-mean",
            "3",
            "--random-range-ratio",
            "0.1",
            "--num-prefix-prompts",
            "2",
            "--prompt-prefix-length",
            "4",
            "--isl",
            "100",
        ];
        assert_eq!(
            given(&all),
            Err("--prompt-prefix-length/--prefix-prompt-length, \
                 --prompt-prefix-pool-size/--prefix-prompt-pool-size, \
                 --isl/--prompt-input-tokens-mean/--synthetic-input-tokens-mean, \
                 --random-range-ratio, --conversation-turn-mean/--session-turns-mean is only \
                 supported with synthetic datasets; remove --input-file / --public-dataset \
                 (use a synthetic dataset) to apply synthetic-only prompt shaping (ISL, prefix \
                 prompts, multimodal generation, multi-turn conversation, etc)."
                .to_owned())
        );
    }

    /// A fixed schedule replays a file's timestamps: without a file it says so, not that
    /// a synthetic conversation (named by a UUID) lacks one.
    #[test]
    fn a_fixed_schedule_needs_an_input_file() {
        for run in [
            &["-m", "m", "--fixed-schedule"][..],
            &["-m", "m", "--timing-mode", "fixed-schedule"],
        ] {
            assert_eq!(
                parse(run).validate().expect_err("no file"),
                "--fixed-schedule replays the timestamps of a trace: give it with \
                 --input-file (a synthetic dataset has none)"
            );
        }
        parse(&["-m", "m", "--fixed-schedule", "--input-file", "t.jsonl"])
            .validate()
            .expect("valid");
    }

    /// AIPerf refuses user-centric runs of one turn, and warms a user-centric run up at a
    /// concurrency (1 unless given), not with users.
    #[test]
    fn user_centric_runs_have_turns_and_a_concurrency_warmup() {
        let run = ["-m", "m", "--user-centric-rate", "40", "--num-users", "3"];
        let err = parse(&run).validate().expect_err("one turn");
        assert_eq!(
            err,
            "User-centric rate mode requires --session-turns-mean >= 2. For single-turn \
             workloads, use --request-rate instead."
        );
        let run = [&run[..], &["--session-turns-mean", "2"]].concat();
        let c = parse(&[&run[..], &["--warmup-request-count", "4"]].concat());
        c.validate().expect("valid");
        let w = c.warmup_load().expect("a load of its own");
        assert_eq!((w.user_centric_rate, w.num_users), (None, None));
        assert_eq!(w.effective_timing_mode(), "request_rate");
        assert_eq!(w.concurrency.unwrap_or(1), 1);
        let v = crate::export::input_config::for_tests(&c);
        assert_eq!(v["phases"][0]["type"], "concurrency", "{v}");
        assert_eq!(v["phases"][1]["type"], "user_centric", "{v}");
        let with = parse(&[&run[..], &["--warmup-concurrency", "5"]].concat());
        assert_eq!(with.warmup_load().and_then(|w| w.concurrency), Some(5));
    }
}
