//! Upper bounds of the `profile` flags, checked at start-up by
//! [`ProfileConfig::validate`](crate::config::ProfileConfig::validate).
//!
//! Seconds and milliseconds become `u64` nanoseconds, which hold about 584 years: a
//! larger value saturated and then wrapped when added to the clock (a 1e12 s
//! duration ended the run after one request). Token counts size every prompt in
//! memory: a deviation of 1e7 tokens took 830 MB and 1e9 ran for minutes composing.

use crate::config::ProfileConfig;

/// Seconds any time flag may ask for: about a century, as `--request-timeout-seconds`.
pub const MAX_SECONDS: f64 = 3.2e9;
/// The same bound in milliseconds, for the flags AIPerf takes in ms.
pub const MAX_MS: f64 = MAX_SECONDS * 1e3;
/// Request rates, per second: from one request in [`MAX_SECONDS`] to 10 million a
/// second (an arrival every 100 ns), as `--user-centric-rate` takes them. A tinier rate
/// sent one request and idled for good; a far larger one flooded the server with every
/// arrival at once.
pub const MIN_RATE: f64 = 1.0 / MAX_SECONDS;
pub const MAX_RATE: f64 = 1e7;
/// Tokens a prompt, an output or their deviation may ask for: past every model's
/// context, and small enough that composing the dataset stays quick.
pub const MAX_TOKENS: f64 = 1_000_000.0;
/// Tokens of the whole prefix prompt pool (`--prompt-prefix-pool-size` prompts of
/// `--prompt-prefix-length` tokens): every prefix is composed before the first request and
/// kept for the run, about 7 bytes a token.
pub const MAX_PREFIX_POOL_TOKENS: f64 = 10_000_000.0;
/// Largest synthetic image side, in pixels: bounds memory whatever the flags say (a
/// 4096 x 4096 image is 48 MiB of pixels before it is encoded).
pub const MAX_IMAGE_SIDE: u32 = 4096;
/// Texts, images or clips one turn may ask for: each is composed before the first
/// request and sent with every request of its turn.
pub const MAX_BATCH: u32 = 10_000;
/// Turns a conversation may ask for on average (or deviate by): every turn of every
/// conversation is composed before the first request, so a mean of 1e9 would never start.
pub const MAX_TURNS: f64 = 100_000.0;

/// A value as the message shows it: `1e300`, not three hundred digits.
pub fn show(v: f64) -> String {
    if v.is_finite() && v != 0.0 && !(1e-6..1e15).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// Seconds flags: (flag, value, whether 0 is allowed).
fn seconds(c: &ProfileConfig) -> Vec<(&'static str, Option<f64>, bool)> {
    vec![
        ("--benchmark-duration", c.benchmark_duration, false),
        ("--slice-duration", c.slice_duration, false),
        ("--warmup-duration", c.warmup_duration, false),
        (
            "--benchmark-grace-period",
            Some(c.benchmark_grace_period),
            true,
        ),
        (
            "--concurrency-ramp-duration",
            c.concurrency_ramp_duration,
            false,
        ),
        (
            "--request-rate-ramp-duration",
            c.request_rate_ramp_duration,
            false,
        ),
        (
            "--prefill-concurrency-ramp-duration",
            c.prefill_concurrency_ramp_duration,
            false,
        ),
        (
            "--warmup-prefill-concurrency-ramp-duration",
            c.warmup_prefill_concurrency_ramp_duration,
            false,
        ),
        (
            "--request-cancellation-delay",
            Some(c.request_cancellation_delay),
            true,
        ),
        ("--video-poll-interval", Some(c.video_poll_interval), true),
        ("--video-poll-timeout", Some(c.video_poll_timeout), true),
        ("--warmup-grace-period", c.warmup_grace_period, true),
        (
            "--warmup-concurrency-ramp-duration",
            c.warmup_concurrency_ramp_duration,
            false,
        ),
        (
            "--warmup-request-rate-ramp-duration",
            c.warmup_request_rate_ramp_duration,
            false,
        ),
        (
            "--wait-for-model-timeout",
            Some(c.wait_for_model_timeout),
            true,
        ),
        (
            "--wait-for-model-interval",
            Some(c.wait_for_model_interval),
            false,
        ),
    ]
}

/// Milliseconds flags, all of which may be 0.
fn milliseconds(c: &ProfileConfig) -> Vec<(&'static str, Option<f64>)> {
    vec![
        (
            "--conversation-turn-delay-mean",
            Some(c.conversation_turn_delay_mean),
        ),
        (
            "--conversation-turn-delay-stddev",
            Some(c.conversation_turn_delay_stddev),
        ),
        (
            "--fixed-schedule-start-offset",
            c.fixed_schedule_start_offset,
        ),
        ("--fixed-schedule-end-offset", c.fixed_schedule_end_offset),
    ]
}

fn tokens(c: &ProfileConfig) -> Vec<(&'static str, f64)> {
    vec![
        (
            "--synthetic-input-tokens-mean (--isl)",
            f64::from(c.synthetic_input_tokens_mean),
        ),
        (
            "--synthetic-input-tokens-stddev (--isl-stddev)",
            c.synthetic_input_tokens_stddev,
        ),
        (
            "--output-tokens-mean (--osl)",
            c.output_tokens_mean.map_or(0.0, f64::from),
        ),
        (
            "--output-tokens-stddev (--osl-stddev)",
            c.output_tokens_stddev,
        ),
        (
            "--rankings-passages-prompt-token-mean",
            f64::from(c.rankings_passages_prompt_token_mean),
        ),
        (
            "--rankings-passages-prompt-token-stddev",
            c.rankings_passages_prompt_token_stddev,
        ),
        (
            "--rankings-query-prompt-token-mean",
            f64::from(c.rankings_query_prompt_token_mean),
        ),
        (
            "--rankings-query-prompt-token-stddev",
            c.rankings_query_prompt_token_stddev,
        ),
        (
            "--prompt-prefix-length",
            c.prompt_prefix_length.map_or(0.0, f64::from),
        ),
        (
            "--shared-system-prompt-length",
            c.prompt_prefix_shared_system_length.map_or(0.0, f64::from),
        ),
        (
            "--user-context-prompt-length",
            c.prompt_prefix_user_context_length.map_or(0.0, f64::from),
        ),
    ]
}

/// Every bound above, and the values no run can use (an empty model name, a negative
/// SLO); the first violation, as the message start-up prints.
pub fn check(c: &ProfileConfig) -> Result<(), String> {
    if c.model.is_empty() || c.model.iter().any(|m| m.trim().is_empty()) {
        return Err("--model names cannot be empty".to_owned());
    }
    for (flag, value, zero) in seconds(c) {
        let Some(v) = value else { continue };
        let low_ok = if zero { v >= 0.0 } else { v > 0.0 };
        if !(low_ok && v <= MAX_SECONDS) {
            let low = if zero { "at least 0" } else { "above 0" };
            return Err(format!(
                "{flag} must be a number of seconds {low} (at most 3.2e9), got {}",
                show(v)
            ));
        }
    }
    for (flag, value) in [
        ("--request-rate", c.request_rate),
        ("--warmup-request-rate", c.warmup_request_rate),
    ] {
        let Some(v) = value else { continue };
        if !(MIN_RATE..=MAX_RATE).contains(&v) {
            return Err(format!(
                "{flag} must be a number of requests per second from {MIN_RATE:e} (one per \
                 3.2e9 s) to {MAX_RATE:e}, got {}",
                show(v)
            ));
        }
    }
    for (flag, value) in milliseconds(c) {
        let Some(v) = value else { continue };
        if !(0.0..=MAX_MS).contains(&v) {
            return Err(format!(
                "{flag} must be a number of milliseconds at least 0 (at most 3.2e12), got {}",
                show(v)
            ));
        }
    }
    let ratio = c.conversation_turn_delay_ratio;
    let longest = c
        .conversation_turn_delay_mean
        .max(c.conversation_turn_delay_stddev);
    if !(ratio >= 0.0 && ratio.is_finite() && longest * ratio <= MAX_MS) {
        return Err(format!(
            "--conversation-turn-delay-ratio times the turn delay must stay within 3.2e12 \
             ms, got a ratio of {}",
            show(ratio)
        ));
    }
    for (flag, n) in [
        ("--prompt-batch-size", c.prompt_batch_size),
        ("--image-batch-size", c.image_batch_size),
        ("--audio-batch-size", c.audio_batch_size),
    ] {
        if n > MAX_BATCH {
            return Err(format!(
                "{flag} must be at most {MAX_BATCH} per turn, got {n}"
            ));
        }
    }
    for (flag, v) in tokens(c) {
        if v > MAX_TOKENS {
            return Err(format!(
                "{flag} must be at most 1000000 tokens, got {}",
                show(v)
            ));
        }
        if v < 0.0 || v.is_nan() {
            return Err(format!(
                "{flag} must be a number of tokens at least 0, got {}",
                show(v)
            ));
        }
    }
    if let (Some(size), Some(length)) = (c.prompt_prefix_pool_size, c.prompt_prefix_length) {
        let pool = f64::from(size) * f64::from(length);
        if pool > MAX_PREFIX_POOL_TOKENS {
            return Err(format!(
                "--prompt-prefix-pool-size times --prompt-prefix-length must stay within \
                 10000000 tokens, got {size} x {length} = {}",
                show(pool)
            ));
        }
    }
    for (flag, v) in [
        ("--conversation-turn-mean", c.conversation_turn_mean),
        ("--conversation-turn-stddev", c.conversation_turn_stddev),
    ] {
        if !(0.0..=MAX_TURNS).contains(&v) {
            return Err(format!(
                "{flag} must be a number of turns at least 0 (at most 100000), got {}",
                show(v)
            ));
        }
    }
    if let Some(slos) = &c.goodput {
        if let Some((tag, v)) = slos.0.iter().find(|(_, v)| *v < 0.0) {
            return Err(format!(
                "--goodput: the threshold for '{tag}' cannot be negative, got {v}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::{Args as _, Command, FromArgMatches as _};

    use super::*;

    /// What start-up says of `args`: the parse error or the validation error.
    fn start(args: &[&str]) -> Result<ProfileConfig, String> {
        // As the binary parses: negative numbers are values (as `cli::main` builds the command).
        let command =
            ProfileConfig::augment_args(Command::new("profile")).allow_negative_numbers(true);
        let matches = command
            .try_get_matches_from(["profile", "-m", "m"].iter().chain(args))
            .map_err(|e| e.to_string())?;
        let mut config = ProfileConfig::from_arg_matches(&matches).map_err(|e| e.to_string())?;
        config.note_given(&matches);
        config.validate()?;
        Ok(config)
    }

    fn refused(args: &[&str], message: &str) {
        match start(args) {
            Ok(_) => panic!("{args:?} accepted"),
            Err(e) => assert!(e.contains(message), "{args:?}: {e}"),
        }
    }

    #[test]
    fn time_flags_past_a_century_are_refused() {
        refused(
            &["--benchmark-duration", "1e12", "--request-count", "5"],
            "--benchmark-duration must be a number of seconds above 0 (at most 3.2e9), \
             got 1000000000000",
        );
        for flag in [
            "--benchmark-grace-period",
            "--concurrency-ramp-duration",
            "--request-rate-ramp-duration",
            "--prefill-concurrency-ramp-duration",
            "--request-cancellation-delay",
            "--video-poll-interval",
            "--video-poll-timeout",
        ] {
            refused(
                &[flag, "1e12"],
                &format!("{flag} must be a number of seconds"),
            );
            refused(&[flag, "inf"], &format!("{flag} must be"));
        }
        for flag in [
            "--conversation-turn-delay-mean",
            "--conversation-turn-delay-stddev",
            "--fixed-schedule-start-offset",
            "--fixed-schedule-end-offset",
        ] {
            refused(
                &[flag, "1e300"],
                &format!(
                    "{flag} must be a number of milliseconds at least 0 (at most 3.2e12), \
                     got 1e300"
                ),
            );
            refused(&[flag, "-1"], &format!("{flag} must be"));
        }
        // Flags whose meaning needs another beside them: the bound, not the pairing,
        // refuses them (a Duration past this panicked in the readiness probe).
        for args in [
            &["--warmup-duration", "1", "--warmup-grace-period", "1e300"][..],
            &[
                "--warmup-request-count",
                "2",
                "--warmup-concurrency-ramp-duration",
                "1e300",
            ],
            &[
                "--warmup-request-count",
                "2",
                "--warmup-request-rate",
                "3",
                "--warmup-request-rate-ramp-duration",
                "1e300",
            ],
            &["--wait-for-model-timeout", "1e300"],
            &["--wait-for-model-timeout", "inf"],
            &[
                "--wait-for-model-timeout",
                "1",
                "--wait-for-model-interval",
                "1e300",
            ],
        ] {
            let flag = args[args.len() - 2];
            refused(args, &format!("{flag} must be a number of seconds"));
        }
        for flag in ["--request-rate", "--warmup-request-rate"] {
            let mut args = vec!["--warmup-request-count", "2", flag];
            for (bad, shown) in [
                ("1e-300", "1e-300"),
                ("1e8", "100000000"),
                ("1e300", "1e300"),
            ] {
                args.push(bad);
                refused(
                    &args,
                    &format!(
                        "{flag} must be a number of requests per second from 3.125e-10 (one \
                         per 3.2e9 s) to 1e7, got {shown}"
                    ),
                );
                args.pop();
            }
        }
        start(&["--request-rate", "1e7", "--concurrency", "2"]).expect("the top rate");
        start(&["--request-rate", "3.125e-10"]).expect("the bottom rate");
        refused(
            &["--failed-request-threshold", "1e300"],
            "--failed-request-threshold is a share of requests from 0 to 1, got 1e300",
        );
        refused(
            &[
                "--conversation-turn-delay-mean",
                "1e12",
                "--conversation-turn-delay-ratio",
                "1e6",
            ],
            "--conversation-turn-delay-ratio times the turn delay must stay within 3.2e12",
        );
        // The bounds themselves are fine.
        start(&[
            "--benchmark-duration",
            "3.2e9",
            "--benchmark-grace-period",
            "0",
        ])
        .expect("a century");
        start(&["--conversation-turn-delay-mean", "3.2e12"]).expect("ms bound");
    }

    #[test]
    fn slice_durations_must_be_positive_and_leave_a_bounded_grid() {
        for (bad, shown) in [("0", "0"), ("-1", "-1"), ("nan", "NaN")] {
            refused(
                &["--slice-duration", bad],
                &format!("--slice-duration must be a positive number, got {shown}"),
            );
        }
        refused(
            &["--slice-duration", "inf"],
            "--slice-duration must be a finite positive number, got inf",
        );
        refused(
            &["--slice-duration", "1e12"],
            "--slice-duration must be a number of seconds above 0 (at most 3.2e9)",
        );
        refused(
            &["--slice-duration", "0.001", "--benchmark-duration", "3600"],
            "--slice-duration 0.001 cuts --benchmark-duration 3600 into 3600000 time \
             slices, more than 10000: give a longer slice duration",
        );
        assert_eq!(
            start(&["--slice-duration", "0.5"])
                .expect("a slice")
                .slice_duration,
            Some(0.5)
        );
        // Not shorter than the run is allowed (AIPerf allows it): one slice, cut short.
        start(&["--slice-duration", "10", "--benchmark-duration", "3"]).expect("one slice");
        start(&["--slice-duration", "0.4", "--benchmark-duration", "3600"]).expect("9000 slices");
    }

    #[test]
    fn token_counts_past_a_million_are_refused() {
        refused(
            &["--synthetic-input-tokens-stddev", "1e9"],
            "--synthetic-input-tokens-stddev (--isl-stddev) must be at most 1000000 \
             tokens, got 1000000000",
        );
        refused(
            &["--isl-stddev", "1e7"],
            "at most 1000000 tokens, got 10000000",
        );
        refused(
            &["--isl-stddev", "-1"],
            "--synthetic-input-tokens-stddev (--isl-stddev) must be a number of tokens at \
             least 0, got -1",
        );
        refused(
            &["--isl", "1000001"],
            "--synthetic-input-tokens-mean (--isl) must be",
        );
        refused(
            &["--osl", "2000000"],
            "--output-tokens-mean (--osl) must be",
        );
        refused(
            &["--osl-stddev", "nan"],
            "--output-tokens-stddev (--osl-stddev) must be",
        );
        refused(
            &["--isl-stddev", "-1"],
            "must be a number of tokens at least 0",
        );
        refused(
            &["--rankings-query-prompt-token-stddev", "1e9"],
            "--rankings-query-prompt-token-stddev must be",
        );
        start(&["--isl", "1000000", "--isl-stddev", "1000000"]).expect("the cap itself");
    }

    #[test]
    fn turn_counts_past_a_hundred_thousand_are_refused() {
        refused(
            &["--conversation-turn-mean", "1e9"],
            "--conversation-turn-mean must be a number of turns at least 0 (at most 100000), \
             got 1000000000",
        );
        refused(
            &["--conversation-turn-stddev", "100001"],
            "--conversation-turn-stddev must be a number of turns",
        );
        start(&["--conversation-turn-mean", "100000"]).expect("the cap itself");
    }

    #[test]
    fn empty_models_and_negative_slos_are_refused() {
        let command = ProfileConfig::augment_args(Command::new("profile"));
        let matches = command
            .try_get_matches_from(["profile", "-m", ""])
            .expect("clap takes it");
        let config = ProfileConfig::from_arg_matches(&matches).expect("config");
        assert_eq!(
            config.validate().expect_err("empty"),
            "--model names cannot be empty"
        );
        refused(&["-m", "a,,b"], "--model names cannot be empty");
        refused(&["-m", "a, ,b"], "--model names cannot be empty");
        // Spaces around a name are not part of it, as AIPerf strips them.
        let models = start(&["-m", " a , b"]).expect("models").model;
        assert_eq!(models, ["m", "a", "b"]);
        refused(
            &["--goodput", "request_latency:-5"],
            "--goodput: the threshold for 'request_latency' cannot be negative, got -5",
        );
        start(&["--goodput", "request_latency:0"]).expect("0 is a threshold");
    }

    /// The error start-up gives for `args`.
    fn error(args: &[&str]) -> String {
        match start(args) {
            Ok(_) => panic!("{args:?} accepted"),
            Err(e) => e,
        }
    }

    #[test]
    fn batches_are_bounded() {
        start(&["-b", "10000"]).expect("the bound itself");
        refused(
            &["--batch-size-text", "10001"],
            "--prompt-batch-size must be at most 10000 per turn, got 10001",
        );
        refused(
            &["--image-batch-size", "1000000"],
            "--image-batch-size must be at most 10000 per turn, got 1000000",
        );
        refused(
            &["--prompt-batch-size", "0"],
            "--prompt-batch-size must be at least 1",
        );
    }

    /// Flags AIPerf 0.13 refuses rather than drop, with its words: each depends on
    /// another that is not given (they ran, the flag silently unused).
    #[test]
    fn flags_without_their_partner_are_refused_as_aiperf_refuses_them() {
        refused(
            &["--request-cancellation-delay", "0.5"],
            "--request-cancellation-delay requires --request-cancellation-rate to be set \
             (cancellation is disabled when rate is unset). Pass --request-cancellation-rate > \
             0 to enable cancellation, or drop --request-cancellation-delay.",
        );
        assert!(start(&[
            "--request-cancellation-rate",
            "5",
            "--request-cancellation-delay",
            "0.5"
        ])
        .is_ok());
        refused(
            &["--concurrency", "2", "--request-rate-ramp-duration", "1"],
            "--request-rate-ramp-duration can only be used with rate-controlled scheduling \
             (--request-rate or --user-centric-rate). Pass one of those to enable rate \
             ramping, or drop --request-rate-ramp-duration.",
        );
        assert!(start(&["--request-rate", "5", "--request-rate-ramp-duration", "1"]).is_ok());
        let users = [
            "--user-centric-rate",
            "10",
            "--num-users",
            "5",
            "--session-turns-mean",
            "2",
        ];
        refused(
            &[&users[..], &["--request-count", "3"]].concat(),
            "--request-count (3) must be >= --num-users (5). Each user needs at least one \
             request.",
        );
        refused(
            &[&users[..], &["--num-sessions", "2"]].concat(),
            "--num-sessions (2) must be >= --num-users (5). Each user needs at least one \
             session.",
        );
        assert!(
            start(&[&users[..], &["--request-count", "5", "--num-sessions", "5"]].concat()).is_ok()
        );
    }

    /// A negative count says what the flag wants, not the type's range ("-3 is not in
    /// 0..=4294967295"); zero keeps its own check's words.
    #[test]
    fn negative_counts_read_as_below_one() {
        for flag in [
            "--osl",
            "--isl",
            "--concurrency",
            "--request-count",
            "--num-dataset-entries",
            "--num-users",
            "--num-conversations",
            "--workers",
            "--prompt-batch-size",
            "--shared-system-prompt-length",
        ] {
            let e = start(&[flag, "-3"]).expect_err(flag);
            assert!(e.contains("invalid value '-3' for '--"), "{flag}: {e}");
            assert!(e.contains(">': must be at least 1"), "{flag}: {e}");
        }
        refused(
            &["--osl", "0"],
            "--output-tokens-mean (--osl) must be at least 1",
        );
        refused(&["--osl", "2.5"], "`2.5` is not a whole number");
        refused(&["--osl", "4294967296"], "4294967296 is too large");
        assert_eq!(
            start(&["--osl", "7"]).map(|c| c.output_tokens_mean),
            Ok(Some(7))
        );
        refused(&["--request-count", "18446744073709551616"], "is too large");
    }

    /// A prefix prompt makes up for a ratio window that can draw 0 tokens, as in AIPerf.
    #[test]
    fn a_prefix_carries_a_window_that_reaches_zero() {
        let window = ["--isl", "3", "--osl", "8", "--random-range-ratio", "0.9"];
        assert!(start(&window).is_err());
        let prefixed = [
            &window[..],
            &[
                "--prompt-prefix-pool-size",
                "2",
                "--prompt-prefix-length",
                "4",
            ],
        ]
        .concat();
        start(&prefixed).expect("the prefix carries the shortest draw");
    }

    #[test]
    fn prefix_prompt_flags_follow_aiperfs_rules() {
        assert_eq!(
            error(&[
                "--prompt-prefix-pool-size",
                "0",
                "--prompt-prefix-length",
                "4"
            ]),
            "--prompt-prefix-pool-size must be at least 1"
        );
        assert_eq!(
            error(&["--num-prefix-prompts", "2", "--prefix-prompt-length", "0"]),
            "--prompt-prefix-length must be at least 1"
        );
        assert_eq!(
            error(&["--shared-system-prompt-length", "0"]),
            "--shared-system-prompt-length must be at least 1"
        );
        assert_eq!(
            error(&["--prefix-prompt-pool-size", "3"]),
            "--prompt-prefix-pool-size needs --prompt-prefix-length, the tokens of each \
             prefix prompt"
        );
        assert_eq!(
            error(&["--prompt-prefix-length", "5"]),
            "--prompt-prefix-length needs --prompt-prefix-pool-size, the number of prefix \
             prompts to pick from"
        );
        assert_eq!(
            error(&[
                "--num-prefix-prompts",
                "3",
                "--prompt-prefix-length",
                "4",
                "--user-context-prompt-length",
                "5"
            ]),
            "--prompt-prefix-pool-size/--prompt-prefix-length and \
             --shared-system-prompt-length/--user-context-prompt-length are mutually exclusive"
        );
        assert_eq!(
            error(&[
                "--input-file",
                "rows.jsonl",
                "--num-prefix-prompts",
                "2",
                "--prompt-prefix-length",
                "4"
            ]),
            "--prompt-prefix-length/--prefix-prompt-length, \
             --prompt-prefix-pool-size/--prefix-prompt-pool-size is only supported with \
             synthetic datasets; remove --input-file / --public-dataset (use a synthetic \
             dataset) to apply synthetic-only prompt shaping (ISL, prefix prompts, \
             multimodal generation, multi-turn conversation, etc)."
        );
        assert_eq!(
            error(&[
                "--num-prefix-prompts",
                "100000",
                "--prompt-prefix-length",
                "101"
            ]),
            "--prompt-prefix-pool-size times --prompt-prefix-length must stay within \
             10000000 tokens, got 100000 x 101 = 10100000"
        );
        assert_eq!(
            error(&["--user-context-prompt-length", "1000001"]),
            "--user-context-prompt-length must be at most 1000000 tokens, got 1000001"
        );
        let pool = start(&[
            "--num-prefix-prompts",
            "100000",
            "--prompt-prefix-length",
            "100",
        ])
        .expect("the pool cap itself");
        assert_eq!(
            (pool.prompt_prefix_pool_size, pool.prompt_prefix_length),
            (Some(100_000), Some(100))
        );
        let both = start(&[
            "--shared-system-prompt-length",
            "12",
            "--user-context-prompt-length",
            "7",
        ])
        .expect("system and user context prompts go together");
        assert_eq!(both.prompt_prefix_shared_system_length, Some(12));
        assert_eq!(both.prompt_prefix_user_context_length, Some(7));
    }

    #[test]
    fn system_prompts_are_checked_and_read_at_start_up() {
        let dir = std::env::temp_dir().join(format!("aiperf-system-prompt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let file = dir.join("prompt.txt");
        std::fs::write(&file, "You are terse.\n").expect("write the prompt");
        let file = file.to_str().expect("utf-8 path");
        let config = start(&["--system-prompt-file", file]).expect("a readable file");
        assert_eq!(
            config.system_prompt(),
            Ok(Some("You are terse.\n".to_owned()))
        );
        let inline = start(&["--system-prompt", " Be kind. "]).expect("a prompt");
        assert_eq!(inline.system_prompt(), Ok(Some(" Be kind. ".to_owned())));
        assert_eq!(start(&[]).expect("none").system_prompt(), Ok(None));

        assert_eq!(
            error(&["--system-prompt", "a", "--system-prompt-file", file]),
            "system_prompt (--system-prompt) and system_prompt_file (--system-prompt-file) \
             are mutually exclusive; set exactly one."
        );
        assert_eq!(
            error(&["--system-prompt", " \n"]),
            "system_prompt (--system-prompt) is empty or whitespace-only. Omit the option \
             entirely to run without a system prompt."
        );
        let missing = dir.join("missing.txt");
        let missing = missing.to_str().expect("utf-8 path");
        assert_eq!(
            error(&["--system-prompt-file", missing]),
            format!(
                "system_prompt_file (--system-prompt-file) could not be read: {missing} (No \
                 such file or directory (os error 2)). Expected a readable regular UTF-8 text \
                 file with no symlinked path component."
            )
        );
        let dir_str = dir.to_str().expect("utf-8 path");
        assert_eq!(
            error(&["--system-prompt-file", dir_str]),
            format!(
                "system_prompt_file (--system-prompt-file) could not be read: {dir_str} (not a \
                 regular file). Expected a readable regular UTF-8 text file with no symlinked \
                 path component."
            )
        );
        let link = dir.join("link.txt");
        std::os::unix::fs::symlink(file, &link).expect("a symbolic link");
        let link = link.to_str().expect("utf-8 path");
        assert_eq!(
            error(&["--system-prompt-file", link]),
            format!(
                "system_prompt_file (--system-prompt-file) could not be read: {link} ({link} \
                 is a symbolic link). Expected a readable regular UTF-8 text file with no \
                 symlinked path component."
            )
        );
        let binary = dir.join("binary.bin");
        std::fs::write(&binary, [0xff, 0xfe, 0x00]).expect("write");
        let binary = binary.to_str().expect("utf-8 path");
        assert_eq!(
            error(&["--system-prompt-file", binary]),
            format!(
                "system_prompt_file (--system-prompt-file) could not be read: {binary} (not \
                 UTF-8 text). Expected a readable regular UTF-8 text file with no symlinked \
                 path component."
            )
        );
        let blank = dir.join("blank.txt");
        std::fs::write(&blank, "  \n\t\n").expect("write");
        let blank = blank.to_str().expect("utf-8 path");
        assert_eq!(
            error(&["--system-prompt-file", blank]),
            format!(
                "system_prompt_file (--system-prompt-file) is empty or whitespace-only: \
                 {blank}. Omit the option entirely to run without a system prompt."
            )
        );
        assert_eq!(
            error(&[
                "--system-prompt",
                "hi",
                "--shared-system-prompt-length",
                "5"
            ]),
            "--system-prompt/--system-prompt-file and --shared-system-prompt-length are \
             mutually exclusive: both fill the system message. Use the first for verbatim \
             text, the second for synthetic filler of a target token length."
        );
        assert_eq!(
            error(&[
                "--system-prompt-file",
                file,
                "--num-prefix-prompts",
                "2",
                "--prefix-prompt-length",
                "3"
            ]),
            "--system-prompt/--system-prompt-file and --num-prefix-prompts/--prefix-prompt-length \
             are mutually exclusive, matching --shared-system-prompt-length, which fills the \
             same system-message slot."
        );
        // A user context prompt goes with a verbatim system prompt, as in AIPerf.
        start(&["--system-prompt", "hi", "--user-context-prompt-length", "5"])
            .expect("system prompt and user context");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn negative_numbers_reach_validation() {
        refused(
            &["--request-rate", "-5"],
            "--request-rate must be a positive number, got -5",
        );
        refused(
            &["--benchmark-duration", "-1"],
            "--benchmark-duration must be a positive number, got -1",
        );
        refused(
            &["--conversation-turn-delay-mean", "-3"],
            "--conversation-turn-delay-mean must be a non-negative number, got -3",
        );
    }
}
