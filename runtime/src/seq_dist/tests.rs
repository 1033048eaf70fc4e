//! `--seq-dist` and `--random-range-ratio` as AIPerf 0.13 reads them. Expected errors are
//! the texts AIPerf 0.13.0 gave for the same inputs (`DistributionParser.parse`, the
//! ratio parsers and configs), less the pydantic wrapping of the range checks.

use clap::{Args as _, Command, FromArgMatches as _};

use super::*;
use crate::config::ProfileConfig;

fn pair(isl: u32, osl: u32, probability: f64) -> SequenceLengthPair {
    SequenceLengthPair {
        isl,
        osl,
        probability,
        isl_stddev: 0.0,
        osl_stddev: 0.0,
    }
}

fn spread(pair: SequenceLengthPair, isl_stddev: f64, osl_stddev: f64) -> SequenceLengthPair {
    SequenceLengthPair {
        isl_stddev,
        osl_stddev,
        ..pair
    }
}

fn pairs_of(text: &str) -> Vec<SequenceLengthPair> {
    match SequenceDistribution::parse(text) {
        Ok(dist) => dist.pairs().to_vec(),
        Err(e) => panic!("{text:?} refused: {e}"),
    }
}

fn error_of(text: &str) -> String {
    match SequenceDistribution::parse(text) {
        Ok(dist) => panic!("{text:?} accepted as {dist:?}"),
        Err(e) => e,
    }
}

#[test]
fn every_format_parses_to_its_pairs() {
    let plain = vec![pair(256, 128, 40.0), pair(512, 256, 60.0)];
    let spread_out = vec![
        spread(pair(256, 128, 40.0), 10.0, 5.0),
        spread(pair(512, 256, 60.0), 20.0, 10.0),
    ];
    for (text, expected) in [
        ("256,128:40;512,256:60", &plain),
        // Blanks around the separators and empty pieces, as AIPerf allows.
        (" 256 , 128 : 40 ;; 512,256:60; ", &plain),
        ("256|10,128|5:40;512|20,256|10:60", &spread_out),
        ("[(256,128):40,(512,256):60]", &plain),
        ("[( 256 , 128 ) : 40 , (512,256):60]", &plain),
        ("[(256|10,128|5):40,(512|20,256|10):60]", &spread_out),
        // AIPerf's `finditer` takes every well-formed pair and skips what lies between.
        ("[(256,128):40 and then (512,256):60]", &plain),
        (
            r#"{"pairs": [{"isl": 256, "osl": 128, "prob": 40},
                          {"isl": 512, "osl": 256, "prob": 60}]}"#,
            &plain,
        ),
        (
            r#"{"pairs": [
                {"isl": 256, "isl_stddev": 10, "osl": 128, "osl_stddev": 5, "prob": 40},
                {"isl": 512, "isl_stddev": 20, "osl": 256, "osl_stddev": 10, "prob": 60}]}"#,
            &spread_out,
        ),
        // Python's `int()` and `float()`: floats truncate, numeric strings count.
        (
            r#"{"pairs": [{"isl": 256.9, "osl": "128", "prob": "40"},
                          {"isl": 512, "osl": 256, "prob": 60.0}]}"#,
            &plain,
        ),
    ] {
        assert_eq!(&pairs_of(text), expected, "{text}");
    }
    // Fractional deviations and probabilities, including AIPerf's `.5` form.
    assert_eq!(
        pairs_of("512|2.5,256|.5:33.5;100,10:66.5"),
        [spread(pair(512, 256, 33.5), 2.5, 0.5), pair(100, 10, 66.5)]
    );
    // A zero-probability pair is kept (and never drawn).
    assert_eq!(
        pairs_of("1,1:0;2,2:100"),
        [pair(1, 1, 0.0), pair(2, 2, 100.0)]
    );
}

#[test]
fn malformed_distributions_get_aiperf_messages() {
    let cases: &[(&str, &str)] = &[
        ("", "Distribution string cannot be empty"),
        ("   ", "Distribution string cannot be empty"),
        (
            "256,128",
            "Failed to parse distribution string '256,128': Invalid pair format: '256,128'. \
             Expected 'ISL[|ISL_STDDEV],OSL[|OSL_STDDEV]:PROB'",
        ),
        (
            "256,128:40;512,256",
            "Failed to parse distribution string '256,128:40;512,256': Invalid pair format: \
             '512,256'. Expected 'ISL[|ISL_STDDEV],OSL[|OSL_STDDEV]:PROB'",
        ),
        (
            "256,128:.4e2;512,256:60",
            "Failed to parse distribution string '256,128:.4e2;512,256:60': Invalid pair \
             format: '256,128:.4e2'. Expected 'ISL[|ISL_STDDEV],OSL[|OSL_STDDEV]:PROB'",
        ),
        (
            "256 |10,128:100",
            "Failed to parse distribution string '256 |10,128:100': Invalid pair format: \
             '256 |10,128:100'. Expected 'ISL[|ISL_STDDEV],OSL[|OSL_STDDEV]:PROB'",
        ),
        (
            "-256,128:100",
            "Failed to parse distribution string '-256,128:100': Invalid pair format: \
             '-256,128:100'. Expected 'ISL[|ISL_STDDEV],OSL[|OSL_STDDEV]:PROB'",
        ),
        (
            ";;",
            "Failed to parse distribution string ';;': No valid pairs found in semicolon \
             format",
        ),
        (
            "256,128:40;512,256:50",
            "Failed to parse distribution string '256,128:40;512,256:50': Probabilities must \
             sum to 100.0, got 90.000000. Pairs: ['(256,128):40.0%', '(512,256):50.0%']",
        ),
        (
            "256|10,128:40;512,256:70",
            "Failed to parse distribution string '256|10,128:40;512,256:70': Probabilities \
             must sum to 100.0, got 110.000000. Pairs: ['(256|10.0,128|0.0):40.0%', \
             '(512,256):70.0%']",
        ),
        (
            "0,128:100",
            "Failed to parse distribution string '0,128:100': Input sequence length must be \
             positive, got 0",
        ),
        (
            "128,0:100",
            "Failed to parse distribution string '128,0:100': Output sequence length must be \
             positive, got 0",
        ),
        (
            "256,128:150",
            "Failed to parse distribution string '256,128:150': Probability must be in \
             [0,100], got 150.0",
        ),
        (
            "[]",
            "Failed to parse distribution string '[]': No valid pairs found in bracket format",
        ),
        (
            "[256,128:100]",
            "Failed to parse distribution string '[256,128:100]': No valid pairs found in \
             bracket format",
        ),
        (
            "[(256,128):60,(512,256):60]",
            "Failed to parse distribution string '[(256,128):60,(512,256):60]': \
             Probabilities must sum to 100.0, got 120.000000. Pairs: ['(256,128):60.0%', \
             '(512,256):60.0%']",
        ),
        (
            "{bad",
            "Failed to parse distribution string '{bad': Invalid JSON format: key must be a \
             string at line 1 column 2",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(&error_of(text), expected, "{text}");
    }
    // JSON, whose detail follows the text: (input, detail).
    let json_cases: &[(&str, &str)] = &[
        (r#"{"x": 1}"#, "JSON format must contain 'pairs' key"),
        (
            r#"{"pairs": [{"isl": 256, "prob": 100}]}"#,
            "Pair 0 missing required keys: {'osl'}",
        ),
        (
            r#"{"pairs": [{"isl": 256}]}"#,
            "Pair 0 missing required keys: {'osl', 'prob'}",
        ),
        (
            r#"{"pairs": []}"#,
            "Distribution must contain at least one sequence length pair",
        ),
        (r#"{"pairs": 3}"#, "'pairs' must be a list of objects"),
        (r#"{"pairs": [7]}"#, "Pair 0 must be an object"),
        (
            r#"{"pairs": [{"isl": "many", "osl": 1, "prob": 100}]}"#,
            "Pair 0: 'isl' must be an integer",
        ),
        (
            r#"{"pairs": [{"isl": 1, "osl": 1, "prob": null}]}"#,
            "Pair 0: 'prob' must be a number",
        ),
        (
            r#"{"pairs": [{"isl": -3, "osl": 1, "prob": 100}]}"#,
            "Input sequence length must be positive, got -3",
        ),
        (
            r#"{"pairs": [{"isl": 1, "osl": 1, "prob": 100, "isl_stddev": -1}]}"#,
            "Input sequence length stddev must be non-negative, got -1.0",
        ),
        (
            r#"{"pairs": [{"isl": 1, "osl": 1, "prob": 100, "osl_stddev": "nan"}]}"#,
            "Output sequence length stddev must be non-negative, got nan",
        ),
        (
            r#"{"pairs": [{"isl": 1, "osl": 1, "prob": "nan"}]}"#,
            "Probability must be in [0,100], got nan",
        ),
    ];
    for (text, detail) in json_cases {
        let expected = format!("Failed to parse distribution string '{text}': {detail}");
        assert_eq!(error_of(text), expected, "{text}");
    }
}

#[test]
fn probabilities_sum_to_100_within_aiperf_tolerance() {
    // np.isclose(total, 100, rtol=1e-6, atol=1e-6): within 1.01e-4.
    assert_eq!(
        pairs_of("1,1:40;2,2:60.0001"),
        [pair(1, 1, 40.0), pair(2, 2, 60.0001)]
    );
    assert_eq!(
        pairs_of("1,1:40;2,2:59.9999"),
        [pair(1, 1, 40.0), pair(2, 2, 59.9999)]
    );
    assert_eq!(
        error_of("1,1:40;2,2:60.0002"),
        "Failed to parse distribution string '1,1:40;2,2:60.0002': Probabilities must sum \
         to 100.0, got 100.000200. Pairs: ['(1,1):40.0%', '(2,2):60.0002%']"
    );
    assert_eq!(
        error_of("1,1:40;2,2:59.9998"),
        "Failed to parse distribution string '1,1:40;2,2:59.9998': Probabilities must sum \
         to 100.0, got 99.999800. Pairs: ['(1,1):40.0%', '(2,2):59.9998%']"
    );
}

#[test]
fn a_uniform_draw_picks_by_cumulative_probability() {
    let dist = SequenceDistribution::parse("1,1:25;2,2:0;3,3:75").expect("parses");
    let picked = |u: f64| dist.pick(u).isl;
    assert_eq!(picked(0.0), 1);
    assert_eq!(picked(0.249_999), 1);
    // A zero-probability pair is never picked: 0.25 is already the third's.
    assert_eq!(picked(0.25), 3);
    assert_eq!(picked(0.999_999), 3);
    // Probabilities a hair short of 100 leave the top of [0, 1) to the last pair.
    let short = SequenceDistribution::parse("1,1:50;2,2:49.99995").expect("parses");
    assert_eq!(short.pick(0.999_999_9).isl, 2);
}

#[test]
fn range_ratios_parse_for_their_style() {
    let vllm = |text: &str| RangeRatio::parse(text, CorpusStyle::Vllm);
    let sglang = |text: &str| RangeRatio::parse(text, CorpusStyle::Sglang);
    let ratio = |input, output, style| RangeRatio {
        input,
        output,
        style,
    };
    assert_eq!(vllm("0.3"), Ok(ratio(0.3, 0.3, CorpusStyle::Vllm)));
    assert_eq!(vllm(" 1e-1 "), Ok(ratio(0.1, 0.1, CorpusStyle::Vllm)));
    assert_eq!(
        vllm(r#"{"input": 0.3, "output": 0.5}"#),
        Ok(ratio(0.3, 0.5, CorpusStyle::Vllm))
    );
    assert_eq!(
        vllm(r#"{"input": "0.25", "output": 0}"#),
        Ok(ratio(0.25, 0.0, CorpusStyle::Vllm))
    );
    assert_eq!(sglang("1.0"), Ok(ratio(1.0, 1.0, CorpusStyle::Sglang)));
    let refusals: &[(Result<RangeRatio, String>, &str)] = &[
        (
            vllm(" "),
            "Invalid --random-range-ratio value: --random-range-ratio value cannot be empty",
        ),
        (
            sglang(""),
            "Invalid --random-range-ratio value: --random-range-ratio value cannot be empty",
        ),
        (
            vllm("abc"),
            "Invalid --random-range-ratio value: --random-range-ratio must be a float or a \
             JSON object with 'input' and 'output' keys, got: 'abc' (expected value at line \
             1 column 1)",
        ),
        (
            vllm("[0.1,0.2]"),
            "Invalid --random-range-ratio value: --random-range-ratio must be a float or a \
             JSON object with 'input' and 'output' keys, got: '[0.1,0.2]'",
        ),
        (
            vllm(r#"{"input": 0.3}"#),
            "Invalid --random-range-ratio value: --random-range-ratio JSON object missing \
             keys: ['output']",
        ),
        (
            vllm(r#"{"z": 1, "input": 0.3, "output": 0.5, "x": 1}"#),
            "Invalid --random-range-ratio value: --random-range-ratio JSON object has \
             unexpected keys: ['x', 'z']",
        ),
        (
            vllm(r#"{"input": 0.3, "output": true}"#),
            "Invalid --random-range-ratio value: --random-range-ratio JSON object's \
             'output' must be a number, got true",
        ),
        (
            sglang(r#"{"input": 0.3, "output": 0.5}"#),
            "Invalid --random-range-ratio value: SGLang corpus style applies a single ratio \
             to both ISL and OSL. Independent input/output values are not supported; \
             provide a plain float instead (e.g. 0.3).",
        ),
        (
            sglang("abc"),
            "Invalid --random-range-ratio value: --random-range-ratio must be a plain float \
             for SGLang corpus style, got: 'abc'",
        ),
    ];
    for (result, expected) in refusals {
        assert_eq!(result.as_ref().map_err(String::as_str), Err(*expected));
    }
}

#[test]
fn ratios_out_of_range_are_refused_per_style() {
    let checked = |text: &str, style| {
        RangeRatio::parse(text, style)
            .and_then(RangeRatio::checked)
            .map(|r| (r.input, r.output))
    };
    assert_eq!(checked("0", CorpusStyle::Vllm), Ok((0.0, 0.0)));
    assert_eq!(checked("0.999", CorpusStyle::Vllm), Ok((0.999, 0.999)));
    assert_eq!(checked("1", CorpusStyle::Sglang), Ok((1.0, 1.0)));
    assert_eq!(checked("0", CorpusStyle::Sglang), Ok((0.0, 0.0)));
    for (text, style, expected) in [
        (
            "1.0",
            CorpusStyle::Vllm,
            "ISL range_ratio must be in [0.0, 1.0), got 1.0",
        ),
        (
            "-0.1",
            CorpusStyle::Vllm,
            "ISL range_ratio must be in [0.0, 1.0), got -0.1",
        ),
        (
            "nan",
            CorpusStyle::Vllm,
            "ISL range_ratio must be in [0.0, 1.0), got nan",
        ),
        (
            "inf",
            CorpusStyle::Vllm,
            "ISL range_ratio must be in [0.0, 1.0), got inf",
        ),
        (
            r#"{"input": 0.3, "output": 1.5}"#,
            CorpusStyle::Vllm,
            "OSL range_ratio must be in [0.0, 1.0), got 1.5",
        ),
        (
            "1.5",
            CorpusStyle::Sglang,
            "range_ratio must be in [0.0, 1.0], got 1.5",
        ),
        (
            "-0.5",
            CorpusStyle::Sglang,
            "range_ratio must be in [0.0, 1.0], got -0.5",
        ),
    ] {
        assert_eq!(
            checked(text, style),
            Err(format!("Invalid --random-range-ratio value: {expected}")),
            "{text}"
        );
    }
}

#[test]
fn windows_are_aiperfs() {
    // Expected bounds: AIPerf 0.13.0's VLLMRatioConfig / SGLangRatioConfig
    // compute_input_bounds / compute_output_bounds for the same means and ratios.
    let window = |isl, osl, text: &str, style| {
        let r = RangeRatio::parse(text, style).expect("parses");
        (r.input_bounds(isl), r.output_bounds(osl))
    };
    use CorpusStyle::{Sglang, Vllm};
    assert_eq!(window(100, 20, "0.3", Vllm), ((70, 130), (14, 26)));
    assert_eq!(
        window(100, 20, r#"{"input": 0.5, "output": 0.1}"#, Vllm),
        ((50, 150), (18, 22))
    );
    assert_eq!(window(3, 1, "0.9", Vllm), ((0, 6), (1, 2)));
    assert_eq!(window(7, 3, "0.15", Vllm), ((5, 9), (2, 4)));
    assert_eq!(window(1000, 333, "0.999", Vllm), ((1, 1999), (1, 666)));
    assert_eq!(window(100, 20, "0.3", Sglang), ((30, 100), (6, 20)));
    assert_eq!(window(3, 1, "0.1", Sglang), ((1, 3), (1, 1)));
    assert_eq!(window(7, 3, "1.0", Sglang), ((7, 7), (3, 3)));
    assert_eq!(window(7, 3, "0", Sglang), ((1, 7), (1, 3)));
    assert_eq!(
        window(1000, 333, "0.999", Sglang),
        ((999, 1000), (332, 333))
    );
}

/// What start-up decides for `args` (after `-m m`): the sampling, or the refusal.
fn sampling(args: &[&str]) -> Result<LengthSampling, String> {
    let command = ProfileConfig::augment_args(Command::new("profile")).allow_negative_numbers(true);
    let matches = command
        .try_get_matches_from(["profile", "-m", "m"].iter().chain(args))
        .map_err(|e| e.to_string())?;
    let config = ProfileConfig::from_arg_matches(&matches).map_err(|e| e.to_string())?;
    config.validate()?;
    config.length_sampling()
}

fn refusal(args: &[&str]) -> String {
    match sampling(args) {
        Ok(s) => panic!("{args:?} accepted: {s:?}"),
        Err(e) => e,
    }
}

#[test]
fn the_flags_become_the_sampling() {
    assert_eq!(sampling(&["--isl", "64"]), Ok(LengthSampling::Means));
    let expected = SequenceDistribution::new(vec![pair(16, 4, 50.0), pair(32, 8, 50.0)]);
    for flag in ["--seq-dist", "--sequence-distribution"] {
        assert_eq!(
            sampling(&[flag, "16,4:50;32,8:50"]),
            Ok(LengthSampling::Pairs(expected.clone().expect("valid")))
        );
    }
    // The deviations of --isl/--osl do not matter beside --seq-dist, as in AIPerf.
    assert!(matches!(
        sampling(&["--seq-dist", "16,4:100", "--isl-stddev", "3"]),
        Ok(LengthSampling::Pairs(_))
    ));
    let vllm = RangeRatio {
        input: 0.3,
        output: 0.3,
        style: CorpusStyle::Vllm,
    };
    assert_eq!(
        sampling(&["--isl", "100", "--osl", "20", "--random-range-ratio", "0.3"]),
        Ok(LengthSampling::Window {
            ratio: vllm,
            input: (70, 130),
            output: (14, 26),
        })
    );
    assert_eq!(
        sampling(&[
            "--isl",
            "100",
            "--osl",
            "20",
            "--random-range-ratio",
            "0.3",
            "--random-corpus-style",
            "SGLang",
            // Explicitly zero deviations are no deviation.
            "--isl-stddev",
            "0",
        ]),
        Ok(LengthSampling::Window {
            ratio: RangeRatio {
                style: CorpusStyle::Sglang,
                ..vllm
            },
            input: (30, 100),
            output: (6, 20),
        })
    );
}

#[test]
fn conflicting_or_incomplete_flags_are_refused_by_name() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--seq-dist", "16,4:90"],
            "--seq-dist/--sequence-distribution: Failed to parse distribution string \
             '16,4:90': Probabilities must sum to 100.0, got 90.000000. Pairs: \
             ['(16,4):90.0%']",
        ),
        (
            &["--sequence-distribution", ""],
            "--seq-dist/--sequence-distribution: Distribution string cannot be empty",
        ),
        (
            &["--random-range-ratio", "0.3"],
            "--random-range-ratio requires --osl to be set explicitly. There is no safe \
             default when a ratio window is requested.",
        ),
        (
            &[
                "--osl",
                "8",
                "--random-range-ratio",
                "0.3",
                "--seq-dist",
                "16,4:100",
            ],
            "--random-range-ratio cannot be combined with --seq-dist/--sequence-distribution; \
             use one or the other.",
        ),
        (
            &[
                "--osl",
                "8",
                "--random-range-ratio",
                "0.3",
                "--isl-stddev",
                "5",
            ],
            "--isl-stddev cannot be combined with --random-range-ratio; the ratio window \
             already controls ISL variance.",
        ),
        (
            &[
                "--osl",
                "8",
                "--random-range-ratio",
                "0.3",
                "--osl-stddev",
                "2",
            ],
            "--osl-stddev cannot be combined with --random-range-ratio; the ratio window \
             already controls OSL variance.",
        ),
        (
            &[
                "--osl",
                "8",
                "--random-range-ratio",
                "1.2",
                "--osl-stddev",
                "2",
            ],
            "Invalid --random-range-ratio value: ISL range_ratio must be in [0.0, 1.0), got \
             1.2",
        ),
        (
            &[
                "--osl",
                "8",
                "--random-range-ratio",
                r#"{"input": 0.1, "output": 0.1}"#,
                "--random-corpus-style",
                "sglang",
            ],
            "Invalid --random-range-ratio value: SGLang corpus style applies a single ratio \
             to both ISL and OSL. Independent input/output values are not supported; \
             provide a plain float instead (e.g. 0.3).",
        ),
        (
            &["--isl", "3", "--osl", "8", "--random-range-ratio", "0.9"],
            "--random-range-ratio 0.9 with --isl 3 produces a minimum input of 0 tokens. \
             Increase --isl, add --prompt-prefix-length, or lower --random-range-ratio so the \
             minimum is at least 1 token.",
        ),
        (
            &["--input-file", "trace.jsonl", "--seq-dist", "16,4:100"],
            "--seq-dist/--sequence-distribution is only supported with synthetic datasets; \
             remove --input-file / --public-dataset (use a synthetic dataset) to apply \
             synthetic-only prompt shaping (ISL, prefix prompts, multimodal generation, \
             multi-turn conversation, etc).",
        ),
        (
            &[
                "--input-file",
                "trace.jsonl",
                "--seq-dist",
                "16,4:100",
                "--random-range-ratio",
                "0.1",
            ],
            "--seq-dist/--sequence-distribution, --random-range-ratio is only supported with \
             synthetic datasets; remove --input-file / --public-dataset (use a synthetic \
             dataset) to apply synthetic-only prompt shaping (ISL, prefix prompts, \
             multimodal generation, multi-turn conversation, etc).",
        ),
        (
            &["--seq-dist", "16,2000000:100"],
            "--seq-dist/--sequence-distribution: Failed to parse distribution string \
             '16,2000000:100': Output sequence length must be at most 1000000 tokens, got \
             2000000",
        ),
        (
            &[
                "--seq-dist",
                "99999999999999999999999999999999999999999,1:100",
            ],
            "--seq-dist/--sequence-distribution: Failed to parse distribution string \
             '99999999999999999999999999999999999999999,1:100': Input sequence length must \
             be at most 1000000 tokens, got 1e41",
        ),
        (
            &["--seq-dist", "16|2000000.5,2:100"],
            "--seq-dist/--sequence-distribution: Failed to parse distribution string \
             '16|2000000.5,2:100': Input sequence length stddev must be at most 1000000 \
             tokens, got 2000000.5",
        ),
        (
            &[
                "--seq-dist",
                r#"{"pairs": [{"isl": 1e300, "osl": 1, "prob": 1e2}]}"#,
            ],
            "--seq-dist/--sequence-distribution: Failed to parse distribution string \
             '{\"pairs\": [{\"isl\": 1e300, \"osl\": 1, \"prob\": 1e2}]}': Input \
             sequence length must be at most 1000000 tokens, got 1e300",
        ),
        (
            &["--seq-dist", "16|1e7,2:100"],
            "--seq-dist/--sequence-distribution: Failed to parse distribution string \
             '16|1e7,2:100': Invalid pair format: '16|1e7,2:100'. Expected \
             'ISL[|ISL_STDDEV],OSL[|OSL_STDDEV]:PROB'",
        ),
    ];
    for (args, expected) in cases {
        assert_eq!(&refusal(args), expected, "{args:?}");
    }
    // An unknown style is clap's refusal, which lists the two.
    let style = refusal(&["--random-corpus-style", "tgi"]);
    assert!(
        style.contains("invalid value 'tgi' for '--random-corpus-style <RANDOM_CORPUS_STYLE>'")
            && style.contains("[possible values: vllm, sglang]"),
        "{style}"
    );
}
