//! The flags that shape synthetic (ISL, OSL) lengths beyond `--isl`/`--osl`, read as
//! AIPerf 0.13 reads them: `--seq-dist` (`aiperf.common.models.sequence_distribution`'s
//! `DistributionParser`) and `--random-range-ratio` with `--random-corpus-style` (its
//! `_parse_vllm_ratio_string`, `_parse_sglang_ratio_string`, `VLLMRatioConfig` and
//! `SGLangRatioConfig`). Error texts are AIPerf's, so a message found in AIPerf's
//! documentation or issues is the one a user of ours sees; the composer draws from what
//! is parsed here (`aiperf_core::dataset`).

use serde::Serialize;
use serde_json::Value;

use crate::limits::{show, MAX_TOKENS};

/// The flag names as AIPerf's messages list them.
pub const SEQ_DIST_FLAG: &str = "--seq-dist/--sequence-distribution";
pub const RANGE_RATIO_FLAG: &str = "--random-range-ratio";

/// AIPerf's `np.isclose(total, 100.0, rtol=1e-6, atol=1e-6)`: within `atol + rtol * 100`.
const SUM_TOLERANCE: f64 = 1e-6 + 1e-6 * 100.0;

/// One (ISL, OSL) pair of `--seq-dist`, with its probability in percent and the
/// deviations of its two lengths (0 draws the mean exactly).
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceLengthPair {
    /// Input tokens, 1 to [`MAX_TOKENS`].
    pub isl: u32,
    pub osl: u32,
    pub probability: f64,
    pub isl_stddev: f64,
    pub osl_stddev: f64,
}

impl SequenceLengthPair {
    /// AIPerf's `SequenceLengthPair.__post_init__` checks, in its order and words, and
    /// then ours: no length or deviation past [`MAX_TOKENS`] (AIPerf has no bound; a
    /// prompt that long would not be composed in any useful time). The lengths are whole
    /// numbers, as floats so that any written value is shown as it was given.
    fn checked(
        isl: f64,
        osl: f64,
        probability: f64,
        isl_stddev: f64,
        osl_stddev: f64,
    ) -> Result<Self, String> {
        if isl <= 0.0 {
            return Err(format!(
                "Input sequence length must be positive, got {}",
                show(isl)
            ));
        }
        if osl <= 0.0 {
            return Err(format!(
                "Output sequence length must be positive, got {}",
                show(osl)
            ));
        }
        if !(0.0..=100.0).contains(&probability) {
            return Err(format!(
                "Probability must be in [0,100], got {}",
                py_float(probability)
            ));
        }
        // AIPerf lets a NaN deviation through (it compares with `< 0`) and then ignores
        // it; refusing it here says so instead of running something else than asked.
        if isl_stddev.is_nan() || isl_stddev < 0.0 {
            return Err(format!(
                "Input sequence length stddev must be non-negative, got {}",
                py_float(isl_stddev)
            ));
        }
        if osl_stddev.is_nan() || osl_stddev < 0.0 {
            return Err(format!(
                "Output sequence length stddev must be non-negative, got {}",
                py_float(osl_stddev)
            ));
        }
        for (what, v) in [
            ("Input sequence length", isl),
            ("Output sequence length", osl),
            ("Input sequence length stddev", isl_stddev),
            ("Output sequence length stddev", osl_stddev),
        ] {
            if v > MAX_TOKENS {
                return Err(format!(
                    "{what} must be at most 1000000 tokens, got {}",
                    show(v)
                ));
            }
        }
        Ok(SequenceLengthPair {
            // Whole numbers from 1 to 1e6: exact in u32.
            isl: isl as u32,
            osl: osl as u32,
            probability,
            isl_stddev,
            osl_stddev,
        })
    }

    /// AIPerf's `str(pair)`, as its probability-sum message lists the pairs.
    pub fn describe(&self) -> String {
        if self.isl_stddev > 0.0 || self.osl_stddev > 0.0 {
            format!(
                "({}|{},{}|{}):{}%",
                self.isl,
                py_float(self.isl_stddev),
                self.osl,
                py_float(self.osl_stddev),
                py_float(self.probability)
            )
        } else {
            format!(
                "({},{}):{}%",
                self.isl,
                self.osl,
                py_float(self.probability)
            )
        }
    }
}

/// A float as Python's `str` writes it for the values these flags take (`40.0`, `0.5`);
/// Rust's shortest round-trip form, which differs from Python's only in exponent
/// notation (`1e-5` for `1e-05`).
fn py_float(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{v:?}")
    }
}

/// `--seq-dist`: the pairs and their cumulative probabilities (as fractions), which a
/// uniform draw in [0, 1) indexes as AIPerf's `np.searchsorted(..., side="right")` does.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceDistribution {
    pairs: Vec<SequenceLengthPair>,
    cumulative: Vec<f64>,
}

impl SequenceDistribution {
    /// Parses the three formats of AIPerf's `DistributionParser.parse`: JSON when the
    /// text starts with `{`, brackets when it is enclosed in `[...]`, otherwise pairs
    /// separated by semicolons. The error is AIPerf's text, without the flag's name.
    ///
    /// AIPerf treats an empty argument as the flag not given; here it is refused as a
    /// blank one is (AIPerf: `Distribution string cannot be empty`), since a user who
    /// typed the flag meant something by it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("Distribution string cannot be empty".into());
        }
        let pairs = if text.starts_with('{') {
            parse_json(text)
        } else if text.len() >= 2 && text.starts_with('[') && text.ends_with(']') {
            parse_bracket(&text[1..text.len() - 1])
        } else {
            parse_semicolon(text)
        };
        pairs
            .and_then(Self::new)
            .map_err(|e| format!("Failed to parse distribution string '{text}': {e}"))
    }

    /// AIPerf's `SequenceLengthDistribution.__init__`: at least one pair, percentages
    /// summing to 100 within its tolerance.
    pub fn new(pairs: Vec<SequenceLengthPair>) -> Result<Self, String> {
        if pairs.is_empty() {
            return Err("Distribution must contain at least one sequence length pair".into());
        }
        let total: f64 = pairs.iter().map(|p| p.probability).sum();
        if total.is_nan() || (total - 100.0).abs() > SUM_TOLERANCE {
            let listed: Vec<String> = pairs
                .iter()
                .map(|p| format!("'{}'", p.describe()))
                .collect();
            return Err(format!(
                "Probabilities must sum to 100.0, got {total:.6}. Pairs: [{}]",
                listed.join(", ")
            ));
        }
        let mut sum = 0.0;
        let cumulative = pairs
            .iter()
            .map(|p| {
                sum += p.probability / 100.0;
                sum
            })
            .collect();
        Ok(SequenceDistribution { pairs, cumulative })
    }

    pub fn pairs(&self) -> &[SequenceLengthPair] {
        &self.pairs
    }

    /// The pair a uniform draw `u` in [0, 1) picks: the first whose cumulative
    /// probability exceeds `u`, the last when rounding leaves `u` past them all.
    pub fn pick(&self, u: f64) -> &SequenceLengthPair {
        let index = self.cumulative.partition_point(|&c| c <= u);
        &self.pairs[index.min(self.pairs.len() - 1)]
    }
}

/// `{"pairs": [{"isl", "osl", "prob", "isl_stddev"?, "osl_stddev"?}, ...]}`. Lengths
/// take integers, floats (truncated, as Python's `int()`) or numeric strings;
/// probabilities and deviations numbers or numeric strings. Where Python would fail on a
/// value of another type with its own exception text, the message here says which key
/// of which pair is wrong.
fn parse_json(text: &str) -> Result<Vec<SequenceLengthPair>, String> {
    let data: Value =
        serde_json::from_str(text).map_err(|e| format!("Invalid JSON format: {e}"))?;
    let Some(pairs) = data.get("pairs") else {
        return Err("JSON format must contain 'pairs' key".into());
    };
    let Some(pairs) = pairs.as_array() else {
        return Err("'pairs' must be a list of objects".into());
    };
    let mut out = Vec::with_capacity(pairs.len());
    for (i, pair) in pairs.iter().enumerate() {
        let Some(pair) = pair.as_object() else {
            return Err(format!("Pair {i} must be an object"));
        };
        let missing: Vec<String> = ["isl", "osl", "prob"]
            .into_iter()
            .filter(|key| !pair.contains_key(*key))
            .map(|key| format!("'{key}'"))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "Pair {i} missing required keys: {{{}}}",
                missing.join(", ")
            ));
        }
        let int = |key: &str| json_int(&pair[key]).ok_or_else(|| not_a(i, key, "an integer"));
        let float = |key: &str| match pair.get(key) {
            None => Ok(0.0),
            Some(v) => json_float(v).ok_or_else(|| not_a(i, key, "a number")),
        };
        out.push(SequenceLengthPair::checked(
            int("isl")?,
            int("osl")?,
            float("prob")?,
            float("isl_stddev")?,
            float("osl_stddev")?,
        )?);
    }
    Ok(out)
}

fn not_a(pair: usize, key: &str, what: &str) -> String {
    format!("Pair {pair}: '{key}' must be {what}")
}

/// Python's `int(v)` of a JSON value, as a float (see [`SequenceLengthPair::checked`]):
/// an integer, a float truncated toward zero, or a string holding an integer.
fn json_int(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64().map(f64::trunc),
        Value::String(s) => s.trim().parse::<i128>().ok().map(|i| i as f64),
        _ => None,
    }
}

/// Python's `float(v)` of a JSON value: a number, or a string holding one.
fn json_float(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
}

/// `ISL[|SD],OSL[|SD]:PROB` pairs separated by `;`, each matched whole (AIPerf's
/// `SEMICOLON_PATTERN.fullmatch`); empty pieces are skipped.
fn parse_semicolon(text: &str) -> Result<Vec<SequenceLengthPair>, String> {
    let mut pairs = Vec::new();
    for piece in text.split(';') {
        let piece = piece.trim();
        if piece.is_empty() {
            continue;
        }
        let mut scan = Scanner::new(piece);
        let parsed = scan.pair_body().filter(|_| scan.at_end());
        let Some(fields) = parsed else {
            return Err(format!(
                "Invalid pair format: '{piece}'. Expected \
                 'ISL[|ISL_STDDEV],OSL[|OSL_STDDEV]:PROB'"
            ));
        };
        pairs.push(fields.into_pair()?);
    }
    if pairs.is_empty() {
        return Err("No valid pairs found in semicolon format".into());
    }
    Ok(pairs)
}

/// `(ISL[|SD],OSL[|SD]):PROB` pairs inside the brackets. As AIPerf's
/// `BRACKET_PATTERN.finditer`, every well-formed pair anywhere in the text counts and
/// whatever lies between them is skipped.
fn parse_bracket(content: &str) -> Result<Vec<SequenceLengthPair>, String> {
    let mut pairs = Vec::new();
    let mut start = 0;
    while start < content.len() {
        let mut scan = Scanner::new(&content[start..]);
        match scan.bracket_pair() {
            Some(fields) => {
                pairs.push(fields.into_pair()?);
                // A match is never empty: it holds at least `(1,1):1`.
                start += scan.pos;
            }
            None => {
                let step = content[start..].chars().next().map_or(1, char::len_utf8);
                start += step;
            }
        }
    }
    if pairs.is_empty() {
        return Err("No valid pairs found in bracket format".into());
    }
    Ok(pairs)
}

/// The five fields of one pair as written.
struct PairFields<'a> {
    isl: &'a str,
    isl_stddev: Option<&'a str>,
    osl: &'a str,
    osl_stddev: Option<&'a str>,
    probability: &'a str,
}

impl PairFields<'_> {
    fn into_pair(self) -> Result<SequenceLengthPair, String> {
        // The scanner took digits, with at most one inner dot: every such text is a float
        // (a long run of digits the nearest one).
        let int = |s: &str| s.parse::<f64>().unwrap_or(f64::NAN);
        let float = |s: Option<&str>| s.map_or(0.0, int);
        SequenceLengthPair::checked(
            int(self.isl),
            int(self.osl),
            float(Some(self.probability)),
            float(self.isl_stddev),
            float(self.osl_stddev),
        )
    }
}

/// A hand-written matcher for AIPerf's two pair patterns. Their pieces never need
/// backtracking (a digit run is always followed by something that is not a digit), so
/// taking each piece greedily matches what the regular expressions match.
struct Scanner<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Self {
        Scanner { text, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn at_end(&self) -> bool {
        self.pos == self.text.len()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.rest().starts_with(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    /// `\s*`
    fn spaces(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    /// `\d+`
    fn digits(&mut self) -> Option<&'a str> {
        let rest = self.rest();
        let n = rest.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        self.pos += n;
        Some(&rest[..n])
    }

    /// AIPerf's `_NUM`: `\d+(?:\.\d+)?|\.\d+`.
    fn number(&mut self) -> Option<&'a str> {
        let start = self.pos;
        let whole = self.digits().is_some();
        let after_whole = self.pos;
        if self.eat('.') && self.digits().is_some() {
            return Some(&self.text[start..self.pos]);
        }
        if whole {
            self.pos = after_whole;
            return Some(&self.text[start..self.pos]);
        }
        self.pos = start;
        None
    }

    /// `(\d+)(?:\|(NUM))?`
    fn length(&mut self) -> Option<(&'a str, Option<&'a str>)> {
        let mean = self.digits()?;
        let before = self.pos;
        let stddev = if self.eat('|') {
            match self.number() {
                Some(n) => Some(n),
                None => {
                    self.pos = before;
                    None
                }
            }
        } else {
            None
        };
        Some((mean, stddev))
    }

    /// `ISL[|SD]\s*,\s*OSL[|SD]` up to (not including) what follows the OSL.
    fn lengths(&mut self) -> Option<PairFields<'a>> {
        let (isl, isl_stddev) = self.length()?;
        self.spaces();
        if !self.eat(',') {
            return None;
        }
        self.spaces();
        let (osl, osl_stddev) = self.length()?;
        Some(PairFields {
            isl,
            isl_stddev,
            osl,
            osl_stddev,
            probability: "",
        })
    }

    /// `\s*:\s*(NUM)` into `fields`.
    fn probability(&mut self, mut fields: PairFields<'a>) -> Option<PairFields<'a>> {
        self.spaces();
        if !self.eat(':') {
            return None;
        }
        self.spaces();
        fields.probability = self.number()?;
        Some(fields)
    }

    /// AIPerf's `SEMICOLON_PATTERN`.
    fn pair_body(&mut self) -> Option<PairFields<'a>> {
        let fields = self.lengths()?;
        self.probability(fields)
    }

    /// AIPerf's `BRACKET_PATTERN`.
    fn bracket_pair(&mut self) -> Option<PairFields<'a>> {
        if !self.eat('(') {
            return None;
        }
        self.spaces();
        let fields = self.lengths()?;
        self.spaces();
        if !self.eat(')') {
            return None;
        }
        self.probability(fields)
    }
}

/// `--random-corpus-style`: whose `random` dataset the ratio window imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CorpusStyle {
    /// `vllm bench serve`: `[floor(mean*(1-r)), ceil(mean*(1+r))]`, `r` in [0, 1).
    Vllm,
    /// SGLang's `bench_serving`: `[max(1, int(mean*r)), mean]`, `r` in [0, 1].
    Sglang,
}

impl CorpusStyle {
    /// The name AIPerf writes in `input_config`.
    pub fn as_str(self) -> &'static str {
        match self {
            CorpusStyle::Vllm => "vllm",
            CorpusStyle::Sglang => "sglang",
        }
    }
}

/// `--random-range-ratio`: the ratios of the ISL and the OSL windows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RangeRatio {
    pub input: f64,
    pub output: f64,
    pub style: CorpusStyle,
}

impl RangeRatio {
    /// Reads the flag's text as AIPerf's converter does for `style`: a float for both
    /// lengths, or under `vllm` a JSON object `{"input": r1, "output": r2}`. The ratios
    /// are not range-checked here ([`checked`](Self::checked) does, as AIPerf checks
    /// them later, after its other refusals). The error is AIPerf's text, which names
    /// the flag.
    ///
    /// AIPerf treats an empty argument as the flag not given; here it is refused as a
    /// blank one is.
    pub fn parse(text: &str, style: CorpusStyle) -> Result<Self, String> {
        let (input, output) = match style {
            CorpusStyle::Vllm => parse_vllm_ratio(text),
            CorpusStyle::Sglang => parse_sglang_ratio(text),
        }
        .map_err(|e| format!("Invalid {RANGE_RATIO_FLAG} value: {e}"))?;
        Ok(RangeRatio {
            input,
            output,
            style,
        })
    }

    /// The range checks of AIPerf's `VLLMRatioConfig`/`SGLangRatioConfig`.
    pub fn checked(self) -> Result<Self, String> {
        let bad = |what: String| Err(format!("Invalid {RANGE_RATIO_FLAG} value: {what}"));
        match self.style {
            CorpusStyle::Vllm => {
                for (name, r) in [("ISL", self.input), ("OSL", self.output)] {
                    if !(r.is_finite() && (0.0..1.0).contains(&r)) {
                        return bad(format!(
                            "{name} range_ratio must be in [0.0, 1.0), got {}",
                            py_float(r)
                        ));
                    }
                }
            }
            CorpusStyle::Sglang => {
                if !r_in_unit(self.input) {
                    return bad(format!(
                        "range_ratio must be in [0.0, 1.0], got {}",
                        py_float(self.input)
                    ));
                }
            }
        }
        Ok(self)
    }

    /// The inclusive ISL window around `mean`.
    ///
    /// AIPerf's vLLM window first takes the tokenizer's special tokens (a BOS, ...) off
    /// the mean, and its SGLang style takes them off each drawn length; it counts 0 for
    /// its builtin tokenizer (tiktoken), which is what ours counts for every tokenizer:
    /// our prompts are their own tokens, and nothing is added to them.
    pub fn input_bounds(&self, mean: u32) -> (u32, u32) {
        let mean = f64::from(mean);
        match self.style {
            // `as` truncates toward zero (never negative here) and saturates.
            CorpusStyle::Vllm => (
                (mean * (1.0 - self.input)).floor().max(0.0) as u32,
                (mean * (1.0 + self.input)).ceil() as u32,
            ),
            CorpusStyle::Sglang => ((mean * self.input).trunc().max(1.0) as u32, mean as u32),
        }
    }

    /// The inclusive OSL window around `mean`.
    pub fn output_bounds(&self, mean: u32) -> (u32, u32) {
        let mean = f64::from(mean);
        match self.style {
            CorpusStyle::Vllm => (
                (mean * (1.0 - self.output)).floor().max(1.0) as u32,
                (mean * (1.0 + self.output)).ceil().max(1.0) as u32,
            ),
            CorpusStyle::Sglang => ((mean * self.output).trunc().max(1.0) as u32, mean as u32),
        }
    }
}

fn r_in_unit(r: f64) -> bool {
    r.is_finite() && (0.0..=1.0).contains(&r)
}

/// AIPerf's `_parse_vllm_ratio_string`.
fn parse_vllm_ratio(value: &str) -> Result<(f64, f64), String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(format!("{RANGE_RATIO_FLAG} value cannot be empty"));
    }
    if let Ok(r) = value.parse::<f64>() {
        return Ok((r, r));
    }
    let expected = format!(
        "{RANGE_RATIO_FLAG} must be a float or a JSON object with 'input' and 'output' keys, \
         got: '{value}'"
    );
    let data: Value = serde_json::from_str(value).map_err(|e| format!("{expected} ({e})"))?;
    let Some(data) = data.as_object() else {
        return Err(expected);
    };
    let missing: Vec<&str> = ["input", "output"]
        .into_iter()
        .filter(|k| !data.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "{RANGE_RATIO_FLAG} JSON object missing keys: {}",
            py_list(&missing)
        ));
    }
    let mut extra: Vec<&str> = data
        .keys()
        .map(String::as_str)
        .filter(|k| !matches!(*k, "input" | "output"))
        .collect();
    extra.sort_unstable();
    if !extra.is_empty() {
        return Err(format!(
            "{RANGE_RATIO_FLAG} JSON object has unexpected keys: {}",
            py_list(&extra)
        ));
    }
    let ratio = |key: &str| {
        json_float(&data[key]).ok_or_else(|| {
            format!(
                "{RANGE_RATIO_FLAG} JSON object's '{key}' must be a number, got {}",
                data[key]
            )
        })
    };
    Ok((ratio("input")?, ratio("output")?))
}

/// AIPerf's `_parse_sglang_ratio_string`: one plain float for both lengths.
fn parse_sglang_ratio(value: &str) -> Result<(f64, f64), String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(format!("{RANGE_RATIO_FLAG} value cannot be empty"));
    }
    if let Ok(r) = value.parse::<f64>() {
        return Ok((r, r));
    }
    if matches!(serde_json::from_str::<Value>(value), Ok(Value::Object(_))) {
        return Err(
            "SGLang corpus style applies a single ratio to both ISL and OSL. \
                    Independent input/output values are not supported; provide a plain \
                    float instead (e.g. 0.3)."
                .into(),
        );
    }
    Err(format!(
        "{RANGE_RATIO_FLAG} must be a plain float for SGLang corpus style, got: '{value}'"
    ))
}

/// How each synthetic turn's (ISL, OSL) is drawn, from the flags that decide it.
#[derive(Debug, Clone, PartialEq)]
pub enum LengthSampling {
    /// `--isl`/`--osl` and their deviations.
    Means,
    /// `--seq-dist`: a pair per turn, which replaces `--isl`/`--osl` and their
    /// deviations (AIPerf ignores them then, without a word, and so do we).
    Pairs(SequenceDistribution),
    /// `--random-range-ratio`: uniform integers in these inclusive windows.
    Window {
        ratio: RangeRatio,
        input: (u32, u32),
        output: (u32, u32),
    },
}

/// Python's `repr` of a list of strings: `['a', 'b']`.
fn py_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("'{s}'")).collect();
    format!("[{}]", quoted.join(", "))
}

#[cfg(test)]
mod tests;
