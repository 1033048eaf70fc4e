//! Custom dataset loaders: JSONL files (`--input-file`) read into conversations.
//!
//! Both loaders read one JSON object per line (blank lines are skipped), report every
//! problem as `file:line: message`, convert `timestamp` and `delay` from
//! `--trace-timestamp-unit` to milliseconds, and group rows that share a `session_id`
//! into one multi-turn conversation, in the order the rows appear; a row without one (or
//! with an empty one) is a conversation of its own, named as AIPerf's loaders name it:
//! `session_000000`, `session_000001`, ... with `--random-seed` (counting only the
//! conversations named so), a UUID without. Conversations come out in the order of their
//! first rows.

use std::collections::HashMap;

use aiperf_runtime::config::ProfileConfig;
use aiperf_runtime::dataset::{Conversation, SessionIdGenerator, SessionIds, Turn};
use aiperf_runtime::metadata::CustomDatasetLoaderMetadata;
use aiperf_runtime::plugin::{Plugin, PluginContext, PluginError};
use aiperf_runtime::protocols::{CustomDatasetLoaderProtocol, TokenizerProtocol};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{Map, Value};

use crate::dataset::{OutputLengths, WordList};
use crate::models::ModelSelector;
use crate::rng::{keyed_seed, root_or_process, stream_rng};

/// Tokens per `hash_ids` block when the manifest gives none (Mooncake's).
const DEFAULT_BLOCK_SIZE: u32 = 512;
/// Longest synthetic prompt a row may ask for: far beyond any model's context, and small
/// enough that a corrupt length cannot exhaust memory.
const MAX_INPUT_LENGTH: u64 = 1 << 22;
/// Warnings logged one by one; later ones are only counted.
const MAX_LOGGED_WARNINGS: usize = 10;

/// Milliseconds per unit of `--trace-timestamp-unit`.
fn unit_ms(config: &ProfileConfig) -> Result<f64, PluginError> {
    match config
        .trace_timestamp_unit
        .trim()
        .to_ascii_lowercase()
        .as_str()
    {
        "ms" => Ok(1.0),
        "s" => Ok(1000.0),
        other => Err(PluginError::Config(format!(
            "--trace-timestamp-unit must be `ms` or `s`, got `{other}`"
        ))),
    }
}

/// The JSON object on a line, if the line is one: what `can_load` looks at.
fn object(line: Option<&str>) -> Option<Map<String, Value>> {
    match serde_json::from_str(line?.trim()) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// Where a row came from, for messages.
#[derive(Debug, Clone, Copy)]
struct Place<'a> {
    file: &'a str,
    line: usize,
    /// The turn within a `multi_turn` line.
    turn: Option<usize>,
}

impl<'a> Place<'a> {
    fn line(file: &'a str, line: usize) -> Self {
        Place {
            file,
            line,
            turn: None,
        }
    }

    fn error(&self, message: impl std::fmt::Display) -> PluginError {
        match self.turn {
            Some(turn) => PluginError::Config(format!(
                "{}:{}: turns[{turn}]: {message}",
                self.file, self.line
            )),
            None => PluginError::Config(format!("{}:{}: {message}", self.file, self.line)),
        }
    }
}

/// A row's fields, read with messages that name the field.
struct Row<'a> {
    map: Map<String, Value>,
    place: Place<'a>,
}

impl<'a> Row<'a> {
    /// Parses a non-blank line.
    fn parse(text: &str, place: Place<'a>) -> Result<Self, PluginError> {
        match serde_json::from_str(text) {
            Ok(Value::Object(map)) => Ok(Row { map, place }),
            Ok(_) => Err(place.error("expected a JSON object")),
            Err(e) => {
                // The row is one line of the file: serde's "line 1" would contradict the
                // file's line number in front of it.
                let full = e.to_string();
                let position = format!(" at line {} column {}", e.line(), e.column());
                let what = full.strip_suffix(&position).unwrap_or(&full);
                Err(place.error(format_args!("invalid JSON: {what} (column {})", e.column())))
            }
        }
    }

    fn has(&self, key: &str) -> bool {
        self.map.get(key).is_some_and(|v| !v.is_null())
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn string(&self, key: &str) -> Result<Option<String>, PluginError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.place.error(format_args!("`{key}` must be a string"))),
        }
    }

    /// A non-negative integer (an integral float such as `100.0` too).
    fn count(&self, key: &str) -> Result<Option<u64>, PluginError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let integral = value.as_u64().or_else(|| {
            value
                .as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < u64::MAX as f64)
                .map(|f| f as u64)
        });
        integral.map(Some).ok_or_else(|| {
            self.place
                .error(format_args!("`{key}` must be a non-negative integer"))
        })
    }

    fn max_tokens(&self) -> Result<Option<u32>, PluginError> {
        match self.count("output_length")? {
            None => Ok(None),
            Some(n) => u32::try_from(n).map(Some).map_err(|_| {
                self.place
                    .error(format_args!("`output_length` {n} is too large"))
            }),
        }
    }

    /// `timestamp` and `delay` in milliseconds; at most one of them.
    fn timing(&self, unit_ms: f64) -> Result<(Option<f64>, Option<f64>), PluginError> {
        let number = |key: &str| -> Result<Option<f64>, PluginError> {
            match self.get(key) {
                None => Ok(None),
                Some(v) => v
                    .as_f64()
                    .map(|x| x * unit_ms)
                    .filter(|x| x.is_finite())
                    .map(Some)
                    .ok_or_else(|| self.place.error(format_args!("`{key}` must be a number"))),
            }
        };
        let (timestamp, delay) = (number("timestamp")?, number("delay")?);
        if timestamp.is_some() && delay.is_some() {
            return Err(self
                .place
                .error("a row has either `timestamp` or `delay`, not both"));
        }
        if delay.is_some_and(|d| d < 0.0) {
            return Err(self.place.error("`delay` must not be negative"));
        }
        Ok((timestamp, delay))
    }

    /// The session a row belongs to (`session_id`, a string or a number). An empty one
    /// is none, as AIPerf's `session_id or next()` reads it.
    fn session(&self) -> Result<Option<String>, PluginError> {
        match self.get("session_id") {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(self
                .place
                .error("`session_id` must be a string or a number")),
        }
    }

    /// `extra`: body fields of this row's request, merged over the body after
    /// `--extra-inputs` (an object; its keys in sorted order).
    fn extra(&self) -> Result<Vec<(String, Value)>, PluginError> {
        match self.get("extra") {
            None => Ok(Vec::new()),
            Some(Value::Object(fields)) => {
                Ok(fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            }
            Some(_) => Err(self.place.error("`extra` must be an object of body fields")),
        }
    }

    /// A string or an array of strings, as a list.
    fn strings(&self, key: &str) -> Result<Vec<String>, PluginError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(self.place.error(format_args!("`{key}` must hold strings"))),
                })
                .collect(),
            Some(_) => Err(self.place.error(format_args!(
                "`{key}` must be a string or a list of strings"
            ))),
        }
    }
}

/// Warnings of one load: logged as they come, the first few in full.
#[derive(Debug, Default)]
struct Warnings {
    all: Vec<String>,
}

impl Warnings {
    fn push(&mut self, message: String) {
        if self.all.len() < MAX_LOGGED_WARNINGS {
            tracing::warn!("{message}");
        }
        self.all.push(message);
    }

    fn finish(&self, file: &str) {
        if self.all.len() > MAX_LOGGED_WARNINGS {
            tracing::warn!(
                "{file}: {} more warnings like the above",
                self.all.len() - MAX_LOGGED_WARNINGS
            );
        }
    }
}

/// Rows grouped into conversations by `session_id`.
#[derive(Debug)]
struct Sessions {
    conversations: Vec<Conversation>,
    by_id: HashMap<String, usize>,
    names: SessionIdGenerator,
}

impl Sessions {
    fn new(ids: SessionIds) -> Self {
        Sessions {
            conversations: Vec::new(),
            by_id: HashMap::new(),
            names: SessionIdGenerator::new(ids),
        }
    }

    /// A name for a session its rows leave unnamed.
    fn next_id(&mut self) -> String {
        self.names.next_id()
    }

    /// A generated name is looked up like a given one, as AIPerf keeps every session in
    /// one dict: a row naming `session_000000` itself joins the session named so.
    fn add(&mut self, session: Option<String>, turn: Turn) {
        let id = match session {
            Some(id) => id,
            None => self.next_id(),
        };
        let index = match self.by_id.get(&id) {
            Some(&index) => index,
            None => {
                self.by_id.insert(id.clone(), self.conversations.len());
                self.conversations.push(Conversation {
                    session_id: id,
                    turns: Vec::new(),
                });
                self.conversations.len() - 1
            }
        };
        self.conversations[index].turns.push(turn);
    }

    /// The conversations, each turn given its model as AIPerf's custom composer does:
    /// conversation by conversation, once the file is read.
    fn finish(
        mut self,
        file: &str,
        models: &mut ModelSelector,
        output: &OutputLengths,
    ) -> Result<Vec<Conversation>, PluginError> {
        if self.conversations.is_empty() {
            return Err(PluginError::Config(format!("{file}: the file has no rows")));
        }
        models.assign_all(&mut self.conversations);
        output.fill(&mut self.conversations);
        Ok(self.conversations)
    }
}

/// A directory given as `--input-file` reaches `can_load` as its path with a `/` at the
/// end.
fn is_dir_name(file_name: &str) -> bool {
    file_name.ends_with('/')
}

/// Non-blank lines with their 1-based line numbers.
fn rows(content: &str) -> impl Iterator<Item = (usize, &str)> {
    content
        .lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty())
}

fn clamp_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

// ----------------------------------------------------------------------- mooncake

/// Mooncake traces (and AIPerf's extension of them): each row is one request with
/// either `input_length` (a synthetic prompt of exactly that many tokens, optionally with
/// `hash_ids`) or `text_input` (sent verbatim), plus optional `output_length` (the
/// request's `max_tokens`), `timestamp` or `delay`, and `session_id`.
///
/// `hash_ids` name the prompt's blocks of `default_block_size` tokens (manifest metadata,
/// 512 for Mooncake): rows that share a block id get identical text for that block, so a
/// server's prefix cache sees the trace's sharing. As in AIPerf 0.13
/// (`sample_tokens_from_corpus`), each block opens with the tokenizer's block separator
/// (`<|endoftext|>` for tiktoken's vocabularies), one of the block's tokens; a row
/// without `hash_ids` gets none, as AIPerf's `generate` adds none there. Ids are full
/// 64-bit values (BC-33: ids equal in their low 32 bits stay distinct). Block text is
/// seeded by the id and `--random-seed` (a fresh seed per process without one, so a second
/// run does not find the first run's prefixes cached). A row whose length does not fit its
/// block count (`n` blocks hold `(n-1)·B+1 ..= n·B` tokens) is used as far as it goes, with
/// a warning naming its line: extra blocks are left out, missing tokens are unique text.
/// A block asked for at two sizes (AIPerf refuses the trace) is warned about too: the
/// shorter is the start of the longer.
///
/// `messages` rows (with optional `tools`) are sent as the chat messages given, after the
/// session's history; `payload` rows as the whole body given. `extra` (body fields of the
/// row's request) is merged over the body.
#[derive(Debug)]
pub struct MooncakeTraceLoader {
    block_size: u32,
    unit_ms: f64,
    root: u64,
    session_ids: SessionIds,
    rng: StdRng,
    models: ModelSelector,
    output: OutputLengths,
    warnings: Warnings,
    /// Each block's tokens and the line that first used it (rows that fit their blocks).
    block_sizes: HashMap<u64, (u64, usize)>,
}

impl MooncakeTraceLoader {
    /// The stream label of block text (keyed by block id).
    pub const BLOCK_LABEL: &'static str = "dataset.mooncake.block";
    /// The stream label of prompt text that belongs to no block.
    pub const RNG_LABEL: &'static str = "dataset.mooncake.prompt";

    pub fn new(block_size: u32, unit_ms: f64, random_seed: Option<u64>) -> Self {
        MooncakeTraceLoader {
            block_size: block_size.max(1),
            unit_ms,
            root: root_or_process(random_seed),
            session_ids: SessionIds::for_run(random_seed),
            rng: stream_rng(random_seed, Self::RNG_LABEL, 0),
            models: ModelSelector::single(),
            output: OutputLengths::default(),
            warnings: Warnings::default(),
            block_sizes: HashMap::new(),
        }
    }

    /// Gives the loaded turns their models with `models` (the primary one otherwise).
    pub fn with_models(self, models: ModelSelector) -> Self {
        MooncakeTraceLoader { models, ..self }
    }

    /// Gives turns without an output length `--osl`'s, as AIPerf's composer does.
    pub fn with_output(self, output: OutputLengths) -> Self {
        MooncakeTraceLoader { output, ..self }
    }

    /// The warnings of the last `load`.
    pub fn warnings(&self) -> &[String] {
        &self.warnings.all
    }

    /// Appends `tokens` tokens of block `id`: `separator` (one token) then words, always
    /// the same words for the same id, a shorter block being a prefix of the full one.
    fn push_block(
        &self,
        words: &WordList,
        separator: Option<&str>,
        id: u64,
        tokens: usize,
        text: &mut String,
    ) {
        let mut words_left = tokens;
        if let Some(separator) = separator.filter(|_| tokens > 0) {
            // The tokenizer counts it as one token and cuts the text there, so the words
            // after it count one each as at the start of a prompt.
            text.push_str(separator);
            words_left -= 1;
        }
        let mut rng = StdRng::seed_from_u64(keyed_seed(self.root, Self::BLOCK_LABEL, id));
        words.push_words(text, &mut Vec::new(), words_left, &mut rng);
    }

    fn synthesize<T: TokenizerProtocol>(
        &mut self,
        length: u64,
        hash_ids: &[u64],
        words: &WordList,
        tokenizer: &T,
        place: Place<'_>,
    ) -> (String, u32) {
        let block = u64::from(self.block_size);
        if hash_ids.is_empty() {
            return words.prompt(clamp_u32(length as usize), tokenizer, &mut self.rng);
        }
        let blocks = hash_ids.len() as u64;
        let (low, high) = ((blocks - 1) * block + 1, blocks * block);
        let fits = (low..=high).contains(&length);
        if !fits {
            self.warnings.push(format!(
                "{}:{}: {blocks} hash_ids blocks of {block} tokens hold {low}-{high} input \
                 tokens, but input_length is {length}; {}",
                place.file,
                place.line,
                if length < low {
                    "the blocks past the length are left out"
                } else {
                    "the tokens past the blocks are unique text"
                }
            ));
        }
        let separator = tokenizer.block_separator();
        let mut text = String::with_capacity(length as usize * 8);
        let mut left = length;
        for &id in hash_ids {
            if left == 0 {
                break;
            }
            let take = left.min(block);
            // A block is one piece of content of one size: AIPerf 0.13 refuses a trace that
            // asks for one at two sizes. Ours sends the shorter as a prefix of the longer,
            // and says so (a row that does not fit its blocks was warned about above).
            match self.block_sizes.get(&id) {
                Some(&(size, line)) if fits && size != take => self.warnings.push(format!(
                    "{}:{}: hash_ids block {id} has {take} tokens here and {size} on line \
                     {line}; the shorter is sent as the start of the longer",
                    place.file, place.line
                )),
                None if fits => {
                    self.block_sizes.insert(id, (take, place.line));
                }
                _ => {}
            }
            self.push_block(words, separator, id, take as usize, &mut text);
            left -= take;
        }
        if left > 0 {
            words.push_words(&mut text, &mut Vec::new(), left as usize, &mut self.rng);
        }
        // A tokenizer whose words merge cannot keep both the blocks and the exact length:
        // the blocks win and the turn records the length the text really has.
        let count = if words.additive {
            clamp_u32(length as usize)
        } else {
            clamp_u32(tokenizer.count(&text))
        };
        (text, count)
    }
}

impl Plugin for MooncakeTraceLoader {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        let metadata: CustomDatasetLoaderMetadata = ctx.entry.metadata()?;
        let block_size = ctx.config.prompt_input_tokens_block_size;
        Ok(MooncakeTraceLoader::new(
            block_size.unwrap_or(metadata.default_block_size.unwrap_or(DEFAULT_BLOCK_SIZE)),
            unit_ms(ctx.config)?,
            ctx.config.random_seed,
        )
        .with_models(ModelSelector::new(ctx.config, 0))
        .with_output(OutputLengths::new(ctx.config)))
    }
}

/// A Mooncake row before its prompt is made.
struct TraceRow {
    line: usize,
    session: Option<String>,
    prompt: Prompt,
    max_tokens: Option<u32>,
    timestamp_ms: Option<f64>,
    delay_ms: Option<f64>,
    extra: Vec<(String, Value)>,
}

enum Prompt {
    Text(String),
    Synthetic {
        length: u64,
        hash_ids: Vec<u64>,
    },
    /// Chat messages sent as given; their text contents count the input tokens.
    Messages(Vec<Value>),
    /// A whole body sent as given.
    Payload(Value),
}

/// The text of chat messages, for counting their tokens: string contents and the
/// `text` of content parts.
fn message_texts(messages: &[Value]) -> Vec<String> {
    let mut texts = Vec::new();
    for message in messages {
        match message.get("content") {
            Some(Value::String(text)) => texts.push(text.clone()),
            Some(Value::Array(parts)) => texts.extend(
                parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .map(str::to_owned),
            ),
            _ => {}
        }
    }
    texts
}

fn trace_row(row: &Row<'_>, unit_ms: f64) -> Result<TraceRow, PluginError> {
    let mut extra = row.extra()?;
    let raw = match (row.get("messages"), row.get("payload")) {
        (Some(_), Some(_)) => {
            return Err(row
                .place
                .error("a row has either `messages` or `payload`, not both"))
        }
        (Some(Value::Array(messages)), None) if messages.iter().all(Value::is_object) => {
            // AIPerf sends a messages row's `tools` with it.
            if let Some(tools) = row.get("tools") {
                extra.insert(0, ("tools".to_owned(), tools.clone()));
            }
            Some(Prompt::Messages(messages.clone()))
        }
        (Some(_), None) => {
            return Err(row
                .place
                .error("`messages` must be a list of message objects"))
        }
        (None, Some(payload @ Value::Object(_))) => Some(Prompt::Payload(payload.clone())),
        (None, Some(_)) => return Err(row.place.error("`payload` must be a JSON object")),
        (None, None) => None,
    };
    if let Some(prompt) = raw {
        for key in ["input_length", "text_input", "hash_ids"] {
            if row.has(key) {
                return Err(row.place.error(format_args!(
                    "`{key}` cannot go with `messages` or `payload`, which are sent as given"
                )));
            }
        }
        let (timestamp_ms, delay_ms) = row.timing(unit_ms)?;
        return Ok(TraceRow {
            line: row.place.line,
            session: row.session()?,
            prompt,
            max_tokens: row.max_tokens()?,
            timestamp_ms,
            delay_ms,
            extra,
        });
    }
    let text = row.string("text_input")?;
    let length = row.count("input_length")?;
    let hash_ids = match row.get("hash_ids") {
        None => Vec::new(),
        Some(Value::Array(ids)) => ids
            .iter()
            .map(|id| {
                id.as_u64().ok_or_else(|| {
                    row.place
                        .error("`hash_ids` must be non-negative 64-bit integers")
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(row.place.error("`hash_ids` must be a list")),
    };
    let prompt = match (text, length) {
        (Some(_), Some(_)) => {
            return Err(row
                .place
                .error("a row has either `input_length` or `text_input`, not both"))
        }
        (Some(text), None) if hash_ids.is_empty() => Prompt::Text(text),
        (Some(_), None) => {
            return Err(row
                .place
                .error("`hash_ids` go with `input_length`, not `text_input`"))
        }
        (None, Some(0)) => return Err(row.place.error("`input_length` must be at least 1")),
        (None, Some(n)) if n > MAX_INPUT_LENGTH => {
            return Err(row.place.error(format_args!(
                "`input_length` {n} is more than {MAX_INPUT_LENGTH} tokens"
            )))
        }
        (None, Some(length)) => Prompt::Synthetic { length, hash_ids },
        (None, None) => {
            return Err(row
                .place
                .error("a row needs `input_length` or `text_input`"))
        }
    };
    let (timestamp_ms, delay_ms) = row.timing(unit_ms)?;
    Ok(TraceRow {
        line: row.place.line,
        session: row.session()?,
        prompt,
        max_tokens: row.max_tokens()?,
        timestamp_ms,
        delay_ms,
        extra,
    })
}

impl CustomDatasetLoaderProtocol for MooncakeTraceLoader {
    fn can_load(&self, first_line: Option<&str>, file_name: &str) -> bool {
        !is_dir_name(file_name)
            && object(first_line).is_some_and(|row| {
                [
                    "input_length",
                    "text_input",
                    "hash_ids",
                    "messages",
                    "payload",
                ]
                .iter()
                .any(|key| row.contains_key(*key))
            })
    }

    fn load<T: TokenizerProtocol>(
        &mut self,
        content: &str,
        file_name: &str,
        tokenizer: &T,
    ) -> Result<Vec<Conversation>, PluginError> {
        self.warnings = Warnings::default();
        self.block_sizes.clear();
        // Every row is checked before any prompt is made: a typo on the last line fails
        // fast, and the word list is built only when some row needs it.
        let mut parsed = Vec::new();
        for (line, text) in rows(content) {
            let row = Row::parse(text, Place::line(file_name, line))?;
            parsed.push(trace_row(&row, self.unit_ms)?);
        }
        let needs_words = parsed
            .iter()
            .any(|r| matches!(r.prompt, Prompt::Synthetic { .. }));
        let words = needs_words.then(|| WordList::new(tokenizer, &mut self.rng));
        let mut sessions = Sessions::new(self.session_ids);
        for row in parsed {
            let place = Place::line(file_name, row.line);
            if row.max_tokens == Some(0) {
                // AIPerf's composer clamps it (`_set_max_tokens`): servers refuse 0.
                self.warnings.push(format!(
                    "{}:{}: output_length 0 asks for no output; 1 is asked for instead",
                    place.file, place.line
                ));
            }
            let mut turn = Turn {
                max_tokens: row.max_tokens.map(|n| n.max(1)),
                timestamp_ms: row.timestamp_ms,
                delay_ms: row.delay_ms,
                extra: row.extra,
                ..Turn::default()
            };
            match (row.prompt, &words) {
                (Prompt::Text(text), _) => {
                    turn.input_tokens = Some(clamp_u32(tokenizer.count(&text)));
                    turn.texts = vec![text];
                }
                (Prompt::Synthetic { length, hash_ids }, Some(words)) => {
                    let (text, count) = self.synthesize(length, &hash_ids, words, tokenizer, place);
                    turn.input_tokens = Some(count);
                    turn.texts = vec![text];
                }
                (Prompt::Synthetic { .. }, None) => {
                    return Err(place.error("internal: no word list for a synthetic prompt"))
                }
                (Prompt::Messages(messages), _) => {
                    turn.texts = message_texts(&messages);
                    turn.input_tokens = Some(clamp_u32(tokenizer.count(&turn.texts.join(" "))));
                    turn.raw_messages = Some(messages);
                }
                // Its tokens are the server's to count (--use-server-token-count).
                (Prompt::Payload(payload), _) => turn.raw_payload = Some(payload),
            }
            sessions.add(row.session, turn);
        }
        self.warnings.finish(file_name);
        sessions.finish(file_name, &mut self.models, &self.output)
    }
}

// --------------------------------------------------------------------- single turn

/// AIPerf's `single_turn` JSONL: each row is one request with `text` or `texts`
/// (strings, or `{"name", "contents"}` objects whose contents are named so), `image(s)`
/// and `audio(s)` (URLs or `data:` URLs; audio also as `format,base64`), optional
/// `role`, `output_length` (`max_tokens`), `timestamp` or `delay`, and `session_id`. A
/// row needs at least one of them. Videos are reported as not supported; `extra` (body
/// fields of the row's request) is merged over the body after `--extra-inputs`.
#[derive(Debug)]
pub struct SingleTurnLoader {
    unit_ms: f64,
    models: ModelSelector,
    output: OutputLengths,
    session_ids: SessionIds,
}

impl SingleTurnLoader {
    /// Fields that make a row a `single_turn` row.
    const MODALITIES: [&'static str; 8] = [
        "text", "texts", "image", "images", "audio", "audios", "video", "videos",
    ];

    pub fn new(unit_ms: f64) -> Self {
        SingleTurnLoader {
            unit_ms,
            models: ModelSelector::single(),
            output: OutputLengths::default(),
            session_ids: SessionIds::for_run(None),
        }
    }

    /// Gives the loaded turns their models with `models` (the primary one otherwise).
    pub fn with_models(self, models: ModelSelector) -> Self {
        SingleTurnLoader { models, ..self }
    }

    /// Gives turns without an output length `--osl`'s, as AIPerf's composer does.
    pub fn with_output(self, output: OutputLengths) -> Self {
        SingleTurnLoader { output, ..self }
    }

    /// Names the sessions that rows leave unnamed so (UUIDs, AIPerf's unseeded naming,
    /// otherwise).
    pub fn with_session_ids(self, session_ids: SessionIds) -> Self {
        SingleTurnLoader {
            session_ids,
            ..self
        }
    }
}

/// A turn from `single_turn` fields (a `single_turn` row, or a turn of a `multi_turn`
/// line): texts, images, audio, role, `output_length`, `timestamp` or `delay`.
fn read_turn<T: TokenizerProtocol>(
    row: &Row<'_>,
    unit_ms: f64,
    tokenizer: &T,
) -> Result<Turn, PluginError> {
    for key in ["video", "videos"] {
        if row.has(key) {
            return Err(row.place.error(format_args!("`{key}` is not supported")));
        }
    }
    if row.has("text") && row.has("texts") {
        return Err(row
            .place
            .error("a row has either `text` or `texts`, not both"));
    }
    let mut turn = Turn::default();
    match row.get("texts") {
        Some(Value::Array(items)) if items.iter().any(Value::is_object) => {
            named_texts(row, items, &mut turn)?;
        }
        _ => {
            let key = if row.has("text") { "text" } else { "texts" };
            turn.texts = row.strings(key)?;
        }
    }
    let mut images = row.strings("image")?;
    images.extend(row.strings("images")?);
    turn.images = images
        .into_iter()
        .map(|image| image_url(row, image))
        .collect::<Result<_, _>>()?;
    let mut audios = row.strings("audio")?;
    audios.extend(row.strings("audios")?);
    turn.audios = audios
        .into_iter()
        .map(|audio| audio_url(row, audio))
        .collect::<Result<_, _>>()?;
    if turn.texts.is_empty() && turn.images.is_empty() && turn.audios.is_empty() {
        return Err(row
            .place
            .error("a row needs at least one of `text`, `texts`, `image(s)` or `audio(s)`"));
    }
    turn.role = row.string("role")?;
    turn.max_tokens = row.max_tokens()?;
    // AIPerf's row model refuses it (`output_length: int, gt=0`).
    if turn.max_tokens == Some(0) {
        return Err(row
            .place
            .error("`output_length` must be a positive integer"));
    }
    turn.extra = row.extra()?;
    (turn.timestamp_ms, turn.delay_ms) = row.timing(unit_ms)?;
    if !turn.texts.is_empty() {
        turn.input_tokens = Some(clamp_u32(tokenizer.count(&turn.texts.join(" "))));
    }
    Ok(turn)
}

/// `texts: [{"name": "query", "contents": ["..."]}, ...]`.
fn named_texts(row: &Row<'_>, items: &[Value], turn: &mut Turn) -> Result<(), PluginError> {
    let bad = || {
        row.place
            .error("`texts` objects need `contents`, a list of strings, and an optional `name`")
    };
    for item in items {
        let Value::Object(map) = item else {
            return Err(bad());
        };
        let name = match map.get("name") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(bad()),
        };
        let Some(Value::Array(contents)) = map.get("contents") else {
            return Err(bad());
        };
        for content in contents {
            let Value::String(text) = content else {
                return Err(bad());
            };
            turn.texts.push(text.clone());
            turn.text_names.push(name.clone());
        }
    }
    Ok(())
}

/// An image as sent: URLs and data URLs unchanged, anything else a local file (relative
/// to the working directory, as AIPerf opens it) sent as a data URL of its own format.
/// AIPerf re-encodes the file with PIL; its bytes go here as they are.
fn image_url(row: &Row<'_>, image: String) -> Result<String, PluginError> {
    if image.starts_with("data:") || image.contains("://") {
        return Ok(image);
    }
    let bytes = read_media(row, &image)?;
    let mime = match bytes.as_slice() {
        [0x89, b'P', b'N', b'G', ..] => "image/png",
        [0xFF, 0xD8, 0xFF, ..] => "image/jpeg",
        [b'G', b'I', b'F', b'8', ..] => "image/gif",
        [b'B', b'M', ..] => "image/bmp",
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => "image/webp",
        _ => {
            return Err(row.place.error(format_args!(
                "image file `{image}` is not a PNG, JPEG, GIF, BMP or WebP image"
            )))
        }
    };
    Ok(crate::media::data_url(mime, &bytes))
}

/// Audio as sent: URLs and data URLs unchanged, AIPerf's `format,base64` as a data URL,
/// and a local `.wav` or `.mp3` file (as AIPerf reads one) as a data URL of its bytes.
fn audio_url(row: &Row<'_>, audio: String) -> Result<String, PluginError> {
    if audio.starts_with("data:") || audio.contains("://") {
        return Ok(audio);
    }
    if let Some((format, data)) = audio.split_once(',') {
        if !format.is_empty() && format.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Ok(format!("data:audio/{format};base64,{data}"));
        }
    }
    let lower = audio.to_ascii_lowercase();
    let mime = if lower.ends_with(".wav") {
        "audio/wav"
    } else if lower.ends_with(".mp3") {
        "audio/mp3"
    } else {
        return Err(row.place.error(format_args!(
            "audio `{audio}` is neither a URL, `wav,<base64>`/`mp3,<base64>`, nor a `.wav` \
             or `.mp3` file"
        )));
    };
    Ok(crate::media::data_url(mime, &read_media(row, &audio)?))
}

fn read_media(row: &Row<'_>, path: &str) -> Result<Vec<u8>, PluginError> {
    std::fs::read(path).map_err(|e| row.place.error(format_args!("cannot read `{path}`: {e}")))
}

impl Plugin for SingleTurnLoader {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(SingleTurnLoader::new(unit_ms(ctx.config)?)
            .with_models(ModelSelector::new(ctx.config, 0))
            .with_output(OutputLengths::new(ctx.config))
            .with_session_ids(SessionIds::for_run(ctx.config.random_seed)))
    }
}

impl CustomDatasetLoaderProtocol for SingleTurnLoader {
    fn can_load(&self, first_line: Option<&str>, file_name: &str) -> bool {
        !is_dir_name(file_name)
            && object(first_line).is_some_and(|row| {
                let has = |key: &str| row.contains_key(key);
                Self::MODALITIES.iter().any(|key| has(key))
                    && !["input_length", "text_input", "turns"]
                        .iter()
                        .any(|key| has(key))
            })
    }

    fn load<T: TokenizerProtocol>(
        &mut self,
        content: &str,
        file_name: &str,
        tokenizer: &T,
    ) -> Result<Vec<Conversation>, PluginError> {
        let mut sessions = Sessions::new(self.session_ids);
        for (line, text) in rows(content) {
            let row = Row::parse(text, Place::line(file_name, line))?;
            let turn = read_turn(&row, self.unit_ms, tokenizer)?;
            sessions.add(row.session()?, turn);
        }
        sessions.finish(file_name, &mut self.models, &self.output)
    }
}

// ---------------------------------------------------------------------- multi_turn

/// AIPerf's `multi_turn` JSONL: one conversation per line, `{"session_id"?, "turns":
/// [...]}`, each turn with the fields of a `single_turn` row. A later turn's `delay` is
/// the pause after the previous answer; lines that share a `session_id` continue one
/// conversation.
#[derive(Debug)]
pub struct MultiTurnLoader {
    unit_ms: f64,
    models: ModelSelector,
    output: OutputLengths,
    session_ids: SessionIds,
}

impl MultiTurnLoader {
    pub fn new(unit_ms: f64) -> Self {
        MultiTurnLoader {
            unit_ms,
            models: ModelSelector::single(),
            output: OutputLengths::default(),
            session_ids: SessionIds::for_run(None),
        }
    }

    /// Gives the loaded turns their models with `models` (the primary one otherwise).
    pub fn with_models(self, models: ModelSelector) -> Self {
        MultiTurnLoader { models, ..self }
    }

    /// Gives turns without an output length `--osl`'s, as AIPerf's composer does.
    pub fn with_output(self, output: OutputLengths) -> Self {
        MultiTurnLoader { output, ..self }
    }

    /// Names the sessions that lines leave unnamed so (UUIDs, AIPerf's unseeded naming,
    /// otherwise).
    pub fn with_session_ids(self, session_ids: SessionIds) -> Self {
        MultiTurnLoader {
            session_ids,
            ..self
        }
    }
}

impl Plugin for MultiTurnLoader {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(MultiTurnLoader::new(unit_ms(ctx.config)?)
            .with_models(ModelSelector::new(ctx.config, 0))
            .with_output(OutputLengths::new(ctx.config))
            .with_session_ids(SessionIds::for_run(ctx.config.random_seed)))
    }
}

impl CustomDatasetLoaderProtocol for MultiTurnLoader {
    fn can_load(&self, first_line: Option<&str>, file_name: &str) -> bool {
        !is_dir_name(file_name)
            && object(first_line)
                .is_some_and(|row| matches!(row.get("turns"), Some(Value::Array(_))))
    }

    fn load<T: TokenizerProtocol>(
        &mut self,
        content: &str,
        file_name: &str,
        tokenizer: &T,
    ) -> Result<Vec<Conversation>, PluginError> {
        let mut sessions = Sessions::new(self.session_ids);
        for (line, text) in rows(content) {
            let row = Row::parse(text, Place::line(file_name, line))?;
            let turns = match row.get("turns") {
                Some(Value::Array(turns)) if !turns.is_empty() => turns,
                _ => {
                    return Err(row
                        .place
                        .error("a line needs `turns`, a non-empty list of turn objects"))
                }
            };
            let session = match row.session()? {
                Some(id) => Some(id),
                // Every turn of the line is one conversation, named as a session would be.
                None => Some(sessions.next_id()),
            };
            for (index, turn) in turns.iter().enumerate() {
                let place = Place {
                    turn: Some(index),
                    ..row.place
                };
                let Value::Object(map) = turn else {
                    return Err(place.error("a turn must be a JSON object"));
                };
                let turn_row = Row {
                    map: map.clone(),
                    place,
                };
                sessions.add(
                    session.clone(),
                    read_turn(&turn_row, self.unit_ms, tokenizer)?,
                );
            }
        }
        sessions.finish(file_name, &mut self.models, &self.output)
    }
}

// --------------------------------------------------------------------- random_pool

/// AIPerf's `random_pool`: rows of content only (texts, images, audio, and optionally
/// `role`, `output_length`, `extra`), each file a pool; `--input-file` names one file or a
/// directory of them. The run's `--num-dataset-entries` conversations are one turn each,
/// made of one row drawn from every pool (texts, images and audio in pool order), from
/// the run's seeded stream; with a batch size other than 1, each draws that many items of
/// a modality from all rows at once (`RandomPoolLoader::batching`). Rows have no session
/// or time: they are drawn, not replayed.
#[derive(Debug)]
pub struct RandomPoolLoader {
    entries: usize,
    session_ids: SessionIds,
    rng: StdRng,
    models: ModelSelector,
    output: OutputLengths,
    /// `--prompt-batch-size`, `--image-batch-size`, `--audio-batch-size`: items of each
    /// modality a turn draws from one flat pool, when one differs from 1.
    batch: Batch,
}

/// Items per turn of each modality, in AIPerf's drawing order.
#[derive(Debug, Clone, Copy)]
struct Batch {
    images: u32,
    texts: u32,
    audios: u32,
}

impl RandomPoolLoader {
    /// AIPerf's name for the stream of draws.
    pub const RNG_LABEL: &'static str = "dataset.random_pool";

    /// One pool's rows, each a turn.
    fn pool<T: TokenizerProtocol>(
        content: &str,
        file: &str,
        tokenizer: &T,
    ) -> Result<Vec<Turn>, PluginError> {
        let mut turns = Vec::new();
        for (line, text) in rows(content) {
            let row = Row::parse(text, Place::line(file, line))?;
            for key in ["session_id", "timestamp", "delay"] {
                if row.has(key) {
                    return Err(row.place.error(format_args!(
                        "random_pool rows are drawn at random, so `{key}` has no meaning \
                         there (single_turn or multi_turn files keep sessions and times)"
                    )));
                }
            }
            turns.push(read_turn(&row, 1.0, tokenizer)?);
        }
        if turns.is_empty() {
            return Err(PluginError::Config(format!("{file}: the file has no rows")));
        }
        Ok(turns)
    }

    /// Whether a modality present in the pools has a batch size other than 1: each turn
    /// then draws its items from one flat pool per modality, as AIPerf's
    /// `_convert_to_conversations_batched` does (a paired text and image are not kept
    /// together).
    fn batching(&self, pools: &[Vec<Turn>]) -> bool {
        let rows = || pools.iter().flatten();
        (self.batch.texts != 1 && rows().any(|t| !t.texts.is_empty()))
            || (self.batch.images != 1 && rows().any(|t| !t.images.is_empty()))
            || (self.batch.audios != 1 && rows().any(|t| !t.audios.is_empty()))
    }

    fn compose_batched<T: TokenizerProtocol>(
        &mut self,
        pools: &[Vec<Turn>],
        tokenizer: &T,
    ) -> Result<Vec<Conversation>, PluginError> {
        use rand::Rng;
        if pools.iter().flatten().any(|t| !t.text_names.is_empty()) {
            return Err(PluginError::Config(
                "random_pool batch sizes other than 1 are not supported when pool entries \
                 carry named Text/Image/Audio/Video objects or image cache uuids. Drop the \
                 batch-size flags, or strip name/uuids from the entries if only their \
                 contents matter."
                    .into(),
            ));
        }
        let flat = |items: fn(&Turn) -> &Vec<String>| -> Vec<String> {
            pools
                .iter()
                .flatten()
                .flat_map(|t| items(t).iter().cloned())
                .collect()
        };
        let (images, texts, audios) =
            (flat(|t| &t.images), flat(|t| &t.texts), flat(|t| &t.audios));
        let Batch {
            images: n_images,
            texts: n_texts,
            audios: n_audios,
        } = self.batch;
        if (images.is_empty() || n_images == 0)
            && (texts.is_empty() || n_texts == 0)
            && (audios.is_empty() || n_audios == 0)
        {
            return Err(PluginError::Config(format!(
                "random_pool batch sizes produce turns with no content: every modality is \
                 absent from the pool or has batch size 0 (text={n_texts}, image={n_images}, \
                 audio={n_audios}). Set a batch size above 0 for a modality that is present \
                 in the pool."
            )));
        }
        let mut draw = |pool: &[String], n: u32| -> Vec<String> {
            if pool.is_empty() {
                return Vec::new();
            }
            (0..n)
                .map(|_| pool[self.rng.random_range(0..pool.len())].clone())
                .collect()
        };
        let mut conversations = Vec::with_capacity(self.entries.max(1));
        for i in 0..self.entries.max(1) {
            let mut turn = Turn {
                images: draw(&images, n_images),
                texts: draw(&texts, n_texts),
                audios: draw(&audios, n_audios),
                ..Turn::default()
            };
            if !turn.texts.is_empty() {
                turn.input_tokens = Some(clamp_u32(tokenizer.count(&turn.texts.join(" "))));
            }
            conversations.push(Conversation {
                session_id: self.session_ids.id(i),
                turns: vec![turn],
            });
        }
        self.models.assign_all(&mut conversations);
        self.output.fill(&mut conversations);
        Ok(conversations)
    }

    fn compose<T: TokenizerProtocol>(
        &mut self,
        pools: &[Vec<Turn>],
        tokenizer: &T,
    ) -> Result<Vec<Conversation>, PluginError> {
        use rand::Rng;
        if self.batching(pools) {
            return self.compose_batched(pools, tokenizer);
        }
        let mut conversations: Vec<Conversation> = (0..self.entries.max(1))
            .map(|i| {
                let mut turn = Turn::default();
                for pool in pools {
                    let drawn = &pool[self.rng.random_range(0..pool.len())];
                    let named = turn.texts.len();
                    turn.texts.extend(drawn.texts.iter().cloned());
                    if !drawn.text_names.is_empty() {
                        turn.text_names.resize(named, String::new());
                        turn.text_names.extend(drawn.text_names.iter().cloned());
                    }
                    turn.images.extend(drawn.images.iter().cloned());
                    turn.audios.extend(drawn.audios.iter().cloned());
                    turn.role = turn.role.take().or_else(|| drawn.role.clone());
                    turn.max_tokens = turn.max_tokens.or(drawn.max_tokens);
                    turn.extra.extend(drawn.extra.iter().cloned());
                }
                if !turn.texts.is_empty() {
                    turn.input_tokens = Some(clamp_u32(tokenizer.count(&turn.texts.join(" "))));
                }
                Conversation {
                    session_id: self.session_ids.id(i),
                    turns: vec![turn],
                }
            })
            .collect();
        self.models.assign_all(&mut conversations);
        self.output.fill(&mut conversations);
        Ok(conversations)
    }
}

impl Plugin for RandomPoolLoader {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(RandomPoolLoader {
            entries: ctx.config.dataset_entries().map_err(PluginError::Config)?,
            session_ids: SessionIds::for_run(ctx.config.random_seed),
            rng: stream_rng(ctx.config.random_seed, Self::RNG_LABEL, 0),
            models: ModelSelector::new(ctx.config, 0),
            output: OutputLengths::new(ctx.config),
            batch: Batch {
                images: ctx.config.image_batch_size,
                texts: ctx.config.prompt_batch_size,
                audios: ctx.config.audio_batch_size,
            },
        })
    }
}

impl CustomDatasetLoaderProtocol for RandomPoolLoader {
    /// Directories of content rows; a single file is read as one pool when chosen with
    /// `--custom-dataset-type random_pool` (its rows look like `single_turn` ones).
    fn can_load(&self, first_line: Option<&str>, file_name: &str) -> bool {
        is_dir_name(file_name)
            && object(first_line).is_some_and(|row| {
                SingleTurnLoader::MODALITIES
                    .iter()
                    .any(|key| row.contains_key(*key))
            })
    }

    fn load<T: TokenizerProtocol>(
        &mut self,
        content: &str,
        file_name: &str,
        tokenizer: &T,
    ) -> Result<Vec<Conversation>, PluginError> {
        let pool = Self::pool(content, file_name, tokenizer)?;
        self.compose(&[pool], tokenizer)
    }

    fn load_dir<T: TokenizerProtocol>(
        &mut self,
        files: &[(String, String)],
        _dir: &str,
        tokenizer: &T,
    ) -> Result<Vec<Conversation>, PluginError> {
        let pools = files
            .iter()
            .map(|(name, content)| Self::pool(content, name, tokenizer))
            .collect::<Result<Vec<_>, _>>()?;
        if pools.len() > 1 && self.batching(&pools) {
            let mut names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
            names.sort_unstable();
            return Err(PluginError::Config(format!(
                "random_pool batch sizes other than 1 are not supported for named pools \
                 (found {}: {}). Drop the batch-size flags, or use a single unnamed pool -- \
                 one file, or a flat inline records: list.",
                names.len(),
                names.join(", ")
            )));
        }
        self.compose(&pools, tokenizer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_config::{config, context, entry};
    use crate::timing::FixedScheduleStrategy;
    use crate::tokenizer::{TiktokenTokenizer, Vocabulary};
    use aiperf_runtime::plugin::{PluginEntry, WorkerShare};
    use aiperf_runtime::protocols::{NextCredit, TimingStrategyProtocol};

    static MOONCAKE: PluginEntry = entry(
        "custom_dataset_loader",
        "mooncake_trace",
        r#"{"is_trace":true,"default_block_size":512}"#,
    );
    static SINGLE_TURN: PluginEntry = entry("custom_dataset_loader", "single_turn", "{}");
    static MULTI_TURN: PluginEntry = entry("custom_dataset_loader", "multi_turn", "{}");
    static RANDOM_POOL: PluginEntry = entry("custom_dataset_loader", "random_pool", "{}");

    fn tokenizer() -> TiktokenTokenizer {
        TiktokenTokenizer::new(Vocabulary::O200kBase)
    }

    fn mooncake(args: &[&str]) -> MooncakeTraceLoader {
        let mut all = vec!["-m", "m", "--random-seed", "1"];
        all.extend_from_slice(args);
        MooncakeTraceLoader::create(&context(&config(&all), &MOONCAKE)).unwrap()
    }

    fn single_turn(args: &[&str]) -> SingleTurnLoader {
        let mut all = vec!["-m", "m"];
        all.extend_from_slice(args);
        SingleTurnLoader::create(&context(&config(&all), &SINGLE_TURN)).unwrap()
    }

    /// o200k_base's block separator (`<|endoftext|>`) and its id.
    const SEP: &str = "<|endoftext|>";
    const EOT: u32 = 199_999;

    /// The one-token pieces of `text` (separators and words), for comparing blocks.
    fn words(text: &str) -> Vec<String> {
        text.replace(SEP, &format!(" {SEP} "))
            .split(' ')
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Token offsets of the block separators in `text`.
    fn separators(tok: &TiktokenTokenizer, text: &str) -> Vec<usize> {
        let tokens = tok.encode(text);
        (0..tokens.len()).filter(|&i| tokens[i] == EOT).collect()
    }

    /// BC-33's trace, as the case gives it.
    const BC33: &str = concat!(
        r#"{"timestamp": 0, "input_length": 20, "output_length": 8, "hash_ids": [0, 1]}"#,
        "\n",
        r#"{"timestamp": 50, "input_length": 700, "output_length": 8, "#,
        r#""hash_ids": [4294967296, 1]}"#,
        "\n",
        r#"{"timestamp": 90, "input_length": 700, "output_length": 8, "hash_ids": [0, 1]}"#,
        "\n",
    );

    #[test]
    fn bc33_hash_ids_are_64_bit_blocks_of_512_tokens() {
        let tok = tokenizer();
        let mut loader = mooncake(&[]);
        let conversations = loader.load(BC33, "bc33.jsonl", &tok).unwrap();
        assert_eq!(conversations.len(), 3);
        let texts: Vec<&str> = conversations
            .iter()
            .map(|c| c.turns[0].texts[0].as_str())
            .collect();
        for (c, (length, ts)) in conversations
            .iter()
            .zip([(20, 0.0), (700, 50.0), (700, 90.0)])
        {
            let turn = &c.turns[0];
            assert_eq!(turn.input_tokens, Some(length));
            assert_eq!(tok.count(&turn.texts[0]), length as usize);
            assert_eq!(turn.max_tokens, Some(8));
            assert_eq!(turn.timestamp_ms, Some(ts));
        }
        let (w1, w2, w3) = (words(texts[0]), words(texts[1]), words(texts[2]));
        // Rows 2 and 3: block 0 differs (4294967296 is not 0), block 1 is shared.
        assert_ne!(w2[..512], w3[..512]);
        assert_eq!(w2[512..], w3[512..]);
        // Row 1 is the first 20 tokens of block 0, which row 3 has in full.
        assert_eq!(w1[..], w3[..20]);
        // Row 1 has 2 blocks for 20 tokens: a warning names its line.
        assert_eq!(loader.warnings().len(), 1, "{:?}", loader.warnings());
        assert!(loader.warnings()[0].starts_with("bc33.jsonl:1: 2 hash_ids blocks"));
        // The same seed gives the same text.
        let again = mooncake(&[]).load(BC33, "bc33.jsonl", &tok).unwrap();
        assert_eq!(again, conversations);
        // A trace recorded at another block size says so with `--isl-block-size`, as
        // AIPerf's: rows 2 and 3 then share their second block of 350 tokens.
        let mut loader = mooncake(&["--isl-block-size", "350"]);
        let resized = loader.load(BC33, "bc33.jsonl", &tok).unwrap();
        let (w2, w3) = (
            words(&resized[1].turns[0].texts[0]),
            words(&resized[2].turns[0].texts[0]),
        );
        assert_eq!((w2.len(), w3.len()), (700, 700));
        assert_ne!(w2[..350], w3[..350]);
        assert_eq!(w2[350..], w3[350..]);
        // A block of no tokens is refused by the flag itself.
        use aiperf_runtime::__private::clap::{Args, Command};
        let command = aiperf_runtime::config::ProfileConfig::augment_args(Command::new("p"));
        let err = command
            .try_get_matches_from(["p", "-m", "m", "--isl-block-size", "0"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--prompt-input-tokens-block-size"), "{err}");
    }

    /// A block asked for at two sizes (AIPerf 0.13 refuses the trace): the shorter is the
    /// start of the longer, and a warning names the line, the block and both sizes.
    #[test]
    fn a_block_at_two_sizes_is_warned_about() {
        let tok = tokenizer();
        let trace = concat!(
            r#"{"timestamp": 0, "input_length": 40, "hash_ids": [1, 2, 3]}"#,
            "\n",
            r#"{"timestamp": 1, "input_length": 33, "hash_ids": [1, 2, 3]}"#,
            "\n",
            r#"{"timestamp": 2, "input_length": 48, "hash_ids": [1, 2, 4]}"#,
            "\n",
        );
        let mut loader = mooncake(&["--isl-block-size", "16"]);
        let conversations = loader.load(trace, "t.jsonl", &tok).unwrap();
        assert_eq!(
            loader.warnings(),
            [
                "t.jsonl:2: hash_ids block 3 has 1 tokens here and 8 on line 1; the shorter is \
              sent as the start of the longer"
            ]
        );
        let texts: Vec<&str> = conversations
            .iter()
            .map(|c| c.turns[0].texts[0].as_str())
            .collect();
        assert!(texts[0].starts_with(texts[1]));
        assert_eq!(tok.count(texts[1]), 33);
    }

    /// Each block opens with `<|endoftext|>`, one of its tokens, as AIPerf 0.13's
    /// `sample_tokens_from_corpus` puts the tokenizer's block separator first: lengths
    /// stay exact, shared blocks stay identical, a partial last block is a prefix of the
    /// full one, and a row without `hash_ids` (AIPerf's `generate` without them) has none.
    #[test]
    fn blocks_open_with_the_block_separator() {
        let tok = tokenizer();
        let trace = concat!(
            r#"{"timestamp": 0, "input_length": 10, "hash_ids": [1, 2, 3]}"#,
            "\n",
            r#"{"timestamp": 1, "input_length": 8, "hash_ids": [1, 2]}"#,
            "\n",
            r#"{"timestamp": 2, "input_length": 6, "hash_ids": [1, 3]}"#,
            "\n",
            r#"{"timestamp": 3, "input_length": 3}"#,
            "\n",
            r#"{"timestamp": 4, "input_length": 7, "hash_ids": [9]}"#,
            "\n",
        );
        let mut loader = mooncake(&["--isl-block-size", "4"]);
        let c = loader.load(trace, "t.jsonl", &tok).unwrap();
        let texts: Vec<&str> = c.iter().map(|c| c.turns[0].texts[0].as_str()).collect();
        for (i, (length, seps)) in [
            (10, vec![0, 4, 8]),
            (8, vec![0, 4]),
            (6, vec![0, 4]),
            (3, vec![]),
            (7, vec![0]),
        ]
        .into_iter()
        .enumerate()
        {
            assert_eq!(c[i].turns[0].input_tokens, Some(length), "row {i}");
            assert_eq!(tok.count(texts[i]), length as usize, "row {i}");
            assert_eq!(separators(&tok, texts[i]), seps, "row {i}: {:?}", texts[i]);
        }
        assert!(texts[0].starts_with("<|endoftext|> "), "{:?}", texts[0]);
        let w: Vec<Vec<String>> = texts.iter().map(|t| words(t)).collect();
        // Blocks 1 and 2 are the same text in rows 1 and 2, block 1 in row 3.
        assert_eq!(w[0][..8], w[1][..]);
        assert_eq!(w[0][..4], w[2][..4]);
        // Row 1's partial block 3 (2 tokens) is the start of row 3's (2 tokens too).
        assert_eq!(w[0][8..], w[2][4..]);
        assert_eq!(w[0][8], SEP);
        // Different blocks differ after their separators.
        assert_ne!(w[0][1..4], w[0][5..8]);
        // Row 5's 3 tokens past its block are unique words, with no separator.
        assert_eq!(loader.warnings().len(), 1, "{:?}", loader.warnings());
        assert!(loader.warnings()[0].starts_with("t.jsonl:5: "));
        assert!(!w[4][4..].contains(&SEP.to_owned()));
    }

    /// A trace's literal text is counted as AIPerf counts it: special-token text is one
    /// token.
    #[test]
    fn text_input_counts_special_tokens_once() {
        let tok = tokenizer();
        let trace = "{\"text_input\": \"<|endoftext|> the of and\"}\n";
        let c = mooncake(&[]).load(trace, "t.jsonl", &tok).unwrap();
        assert_eq!(c[0].turns[0].input_tokens, Some(4));
    }

    #[test]
    fn a_short_block_list_is_padded_with_unique_text() {
        let tok = tokenizer();
        let mut loader = mooncake(&[]);
        let trace = "{\"input_length\": 600, \"hash_ids\": [7]}\n\
                     {\"input_length\": 600, \"hash_ids\": [7]}\n";
        let c = loader.load(trace, "t.jsonl", &tok).unwrap();
        let (a, b) = (
            words(&c[0].turns[0].texts[0]),
            words(&c[1].turns[0].texts[0]),
        );
        assert_eq!(a.len(), 600);
        assert_eq!(a[..512], b[..512]);
        assert_ne!(a[512..], b[512..]);
        assert_eq!(loader.warnings().len(), 2);
        assert!(loader.warnings()[1].starts_with("t.jsonl:2: "));
    }

    #[test]
    fn bc34_units_and_fixed_schedule() {
        let tok = tokenizer();
        // BC-34's two files.
        let epoch = concat!(
            r#"{"timestamp": 1714000000123, "input_length": 100, "output_length": 10}"#,
            "\n",
            r#"{"timestamp": 1714000000623, "input_length": 100, "output_length": 10}"#,
            "\n",
        );
        let relative = concat!(
            r#"{"timestamp": 0.0, "input_length": 100, "output_length": 10}"#,
            "\n",
            r#"{"timestamp": 0.5, "input_length": 100, "output_length": 10}"#,
            "\n",
        );
        let schedule = |loader_args: &[&str], file: &str, strategy_args: &[&str]| {
            let conversations = mooncake(loader_args).load(file, "t.jsonl", &tok).unwrap();
            // A trace replays exactly its rows, in order.
            assert_eq!(conversations.len(), 2);
            let mut all = vec!["-m", "m"];
            all.extend_from_slice(strategy_args);
            let cfg = config(&all);
            let ctx = context(&cfg, &MOONCAKE);
            let mut strategy = FixedScheduleStrategy::create(&ctx).unwrap();
            strategy
                .prepare(
                    aiperf_runtime::dataset::DatasetView::Held(&conversations),
                    WorkerShare { id: 0, count: 1 },
                    0,
                )
                .unwrap();
            let mut at = Vec::new();
            let mut none = crate::arrival::ConcurrencyBurstArrival;
            while let NextCredit::Turn { at: t, turn: 0, .. } = strategy.next_credit(&mut none, 0) {
                at.push(t);
            }
            at
        };
        let ms = 1_000_000u64;
        assert_eq!(
            schedule(&[], epoch, &["--fixed-schedule-auto-offset"]),
            vec![0, 500 * ms]
        );
        // Auto-offset is the default (AIPerf 0.13); a start offset is the zero instead.
        assert_eq!(schedule(&[], epoch, &[]), vec![0, 500 * ms]);
        assert_eq!(
            schedule(&[], epoch, &["--fixed-schedule-start-offset", "0"]),
            vec![1_714_000_000_123 * ms, 1_714_000_000_623 * ms]
        );
        assert_eq!(schedule(&[], relative, &[]), vec![0, ms / 2]);
        assert_eq!(
            schedule(&["--trace-timestamp-unit", "s"], relative, &[]),
            vec![0, 500 * ms]
        );
        let err = MooncakeTraceLoader::create(&context(
            &config(&["-m", "m", "--trace-timestamp-unit", "us"]),
            &MOONCAKE,
        ))
        .unwrap_err();
        assert!(err.to_string().contains("`ms` or `s`"), "{err}");
    }

    #[test]
    fn sessions_text_input_and_delays() {
        let tok = tokenizer();
        let trace = r#"{"session_id": "a", "timestamp": 1.5, "text_input": "Hello there"}

{"session_id": "b", "timestamp": 2, "input_length": 5}
{"session_id": "a", "delay": 0.25, "text_input": "Again", "output_length": 3}
{"timestamp": 3, "input_length": 2}
{"session_id": 7, "timestamp": 4, "input_length": 1}
"#;
        let c = mooncake(&["--trace-timestamp-unit", "s"])
            .load(trace, "t.jsonl", &tok)
            .unwrap();
        let ids: Vec<&str> = c.iter().map(|c| c.session_id.as_str()).collect();
        // AIPerf numbers only the sessions it names.
        assert_eq!(ids, ["a", "b", "session_000000", "7"]);
        assert_eq!(c[0].turns.len(), 2);
        assert_eq!(c[0].turns[0].texts, ["Hello there"]);
        assert_eq!(c[0].turns[0].input_tokens, Some(2));
        assert_eq!(c[0].turns[0].timestamp_ms, Some(1500.0));
        assert_eq!(c[0].turns[1].timestamp_ms, None);
        assert_eq!(c[0].turns[1].delay_ms, Some(250.0));
        assert_eq!(c[0].turns[1].max_tokens, Some(3));
        assert_eq!(c[1].turns[0].input_tokens, Some(5));
        assert_eq!(c[2].turns[0].timestamp_ms, Some(3000.0));
    }

    #[test]
    fn malformed_rows_name_file_and_line() {
        let tok = tokenizer();
        let cases: &[(&str, &str)] = &[
            (
                "{\"input_length\": 4}\nnot json\n",
                "t.jsonl:2: invalid JSON",
            ),
            ("\n\n[1, 2]\n", "t.jsonl:3: expected a JSON object"),
            (
                "{\"timestamp\": 1}\n",
                "t.jsonl:1: a row needs `input_length`",
            ),
            (
                "{\"input_length\": -4}\n",
                "t.jsonl:1: `input_length` must be a non-negative",
            ),
            (
                "{\"input_length\": 2.5}\n",
                "t.jsonl:1: `input_length` must be a non-negative",
            ),
            (
                "{\"input_length\": 0}\n",
                "t.jsonl:1: `input_length` must be at least 1",
            ),
            (
                "{\"input_length\": 99999999999}\n",
                "t.jsonl:1: `input_length` 99999999999 is",
            ),
            (
                "{\"input_length\": 4, \"text_input\": \"x\"}\n",
                "t.jsonl:1: a row has either",
            ),
            (
                "{\"input_length\": 4, \"hash_ids\": [-1]}\n",
                "t.jsonl:1: `hash_ids` must be",
            ),
            (
                "{\"input_length\": 4, \"hash_ids\": 3}\n",
                "t.jsonl:1: `hash_ids` must be a list",
            ),
            (
                "{\"input_length\": 4, \"hash_ids\": [18446744073709551616]}\n",
                "`hash_ids` must be",
            ),
            (
                "{\"text_input\": \"x\", \"hash_ids\": [1]}\n",
                "t.jsonl:1: `hash_ids` go with",
            ),
            (
                "{\"input_length\": 4, \"timestamp\": \"0\"}\n",
                "t.jsonl:1: `timestamp` must be",
            ),
            (
                "{\"input_length\": 4, \"timestamp\": 0, \"delay\": 1}\n",
                "either `timestamp`",
            ),
            (
                "{\"input_length\": 4, \"delay\": -1}\n",
                "t.jsonl:1: `delay` must not be",
            ),
            (
                "{\"input_length\": 4, \"output_length\": 1e12}\n",
                "`output_length`",
            ),
            (
                "{\"input_length\": 4, \"session_id\": [1]}\n",
                "t.jsonl:1: `session_id` must",
            ),
            (
                "{\"messages\": [1]}\n",
                "t.jsonl:1: `messages` must be a list of message objects",
            ),
            (
                "{\"payload\": []}\n",
                "t.jsonl:1: `payload` must be a JSON object",
            ),
            (
                "{\"payload\": {}, \"messages\": []}\n",
                "t.jsonl:1: a row has either `messages` or `payload`, not both",
            ),
            (
                "{\"messages\": [], \"input_length\": 3}\n",
                "t.jsonl:1: `input_length` cannot go with `messages` or `payload`",
            ),
            ("\n  \n", "t.jsonl: the file has no rows"),
        ];
        for (content, expected) in cases {
            let err = mooncake(&[]).load(content, "t.jsonl", &tok).unwrap_err();
            assert!(
                err.to_string().contains(expected),
                "{content:?}: {err} (expected {expected:?})"
            );
        }
    }

    #[test]
    fn detection_is_disjoint() {
        let m = mooncake(&[]);
        let s = single_turn(&[]);
        let cases = [
            (Some(r#"{"input_length": 3, "timestamp": 0}"#), true, false),
            (Some(r#"{"text_input": "hi"}"#), true, false),
            (Some(r#"{"text": "hi", "timestamp": 0}"#), false, true),
            (Some(r#"{"texts": ["a"], "session_id": "x"}"#), false, true),
            (Some(r#"{"image": "http://x/y.png"}"#), false, true),
            (Some(r#"{"turns": [{"text": "hi"}]}"#), false, false),
            (Some(r#"{"text": "x", "input_length": 2}"#), true, false),
            (Some("not json"), false, false),
            (Some("[1]"), false, false),
            (Some(""), false, false),
            (None, false, false),
        ];
        for (line, mooncake, single) in cases {
            assert_eq!(m.can_load(line, "f.jsonl"), mooncake, "{line:?}");
            assert_eq!(s.can_load(line, "f.jsonl"), single, "{line:?}");
        }
    }

    /// Sessions rows leave unnamed, as AIPerf 0.13 names them (checked against its runs):
    /// with a seed `session_` and a counter of the names it made, which a row naming one
    /// itself joins, and an empty `session_id` is none; without a seed, UUIDs.
    #[test]
    fn unnamed_sessions_are_named_as_aiperf_names_them() {
        let tok = tokenizer();
        let file = r#"{"text": "one"}
{"text": "two", "session_id": "a"}
{"text": "three"}
{"text": "four", "session_id": "session_000000"}
{"text": "five", "session_id": ""}
"#;
        let load = |args: &[&str]| {
            let mut all = vec!["-m", "m"];
            all.extend_from_slice(args);
            let loader = SingleTurnLoader::create(&context(&config(&all), &SINGLE_TURN));
            loader.unwrap().load(file, "st.jsonl", &tok).unwrap()
        };
        let summary = |c: &[Conversation]| -> Vec<(String, usize)> {
            c.iter()
                .map(|c| (c.session_id.clone(), c.turns.len()))
                .collect()
        };
        let seeded = load(&["--random-seed", "42"]);
        let expected = [
            ("session_000000", 2),
            ("a", 1),
            ("session_000001", 1),
            ("session_000002", 1),
        ];
        let expected: Vec<(String, usize)> = expected
            .iter()
            .map(|(id, n)| ((*id).to_owned(), *n))
            .collect();
        assert_eq!(summary(&seeded), expected);

        let unseeded = summary(&load(&[]));
        let lengths: Vec<usize> = unseeded.iter().map(|(id, _)| id.len()).collect();
        assert_eq!(lengths, [36, 1, 36, 14, 36], "{unseeded:?}");
        assert_eq!(unseeded[3].0, "session_000000");
        let unique: std::collections::HashSet<&String> = unseeded.iter().map(|c| &c.0).collect();
        assert_eq!(unique.len(), 5);

        // A multi_turn line without an id is one session of all its turns.
        let lines = "{\"turns\": [{\"text\": \"x\"}, {\"text\": \"y\"}]}\n\
                     {\"session_id\": \"\", \"turns\": [{\"text\": \"z\"}]}\n";
        let c = MultiTurnLoader::create(&context(&config(&["-m", "m"]), &MULTI_TURN))
            .unwrap()
            .load(lines, "mt.jsonl", &tok)
            .unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].turns.len(), 2);
        assert!(c.iter().all(|c| c.session_id.len() == 36), "{c:?}");
        assert_ne!(c[0].session_id, c[1].session_id);
    }

    /// A loaded file's turns get their models as AIPerf's custom composer gives them:
    /// conversation by conversation, after reading (not in row order).
    #[test]
    fn loaded_turns_get_models_by_conversation() {
        let tok = tokenizer();
        let file = r#"{"text": "1", "session_id": "s"}
{"text": "2"}
{"text": "3", "session_id": "s"}
{"text": "4"}
"#;
        let models = |loader: &mut SingleTurnLoader| -> Vec<(String, Option<String>)> {
            let c = loader.load(file, "st.jsonl", &tok).unwrap();
            c.iter()
                .flat_map(|c| &c.turns)
                .map(|t| (t.texts.join(""), t.model.clone()))
                .collect()
        };
        let cfg = config(&["-m", "a", "-m", "b"]);
        let mut loader = SingleTurnLoader::create(&context(&cfg, &SINGLE_TURN)).unwrap();
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, Option<String>)> {
            list.iter()
                .map(|(t, m)| ((*t).to_owned(), Some((*m).to_owned())))
                .collect()
        };
        assert_eq!(
            models(&mut loader),
            pairs(&[("1", "a"), ("3", "b"), ("2", "a"), ("4", "b")])
        );
        let mut one = single_turn(&[]);
        assert!(models(&mut one).iter().all(|(_, m)| m.is_none()));

        let trace = "{\"input_length\": 3}\n{\"input_length\": 4}\n{\"input_length\": 5}\n";
        let cfg = config(&["-m", "x,y", "--random-seed", "1"]);
        let c = MooncakeTraceLoader::create(&context(&cfg, &MOONCAKE))
            .unwrap()
            .load(trace, "t.jsonl", &tok)
            .unwrap();
        let got: Vec<Option<&str>> = c.iter().map(|c| c.turns[0].model.as_deref()).collect();
        assert_eq!(got, [Some("x"), Some("y"), Some("x")]);
    }

    /// A row asking for no output: AIPerf's row model refuses it in a `single_turn` or
    /// `multi_turn` file, and its composer asks a trace's for 1 token instead, warning.
    #[test]
    fn an_output_length_of_zero() {
        let tok = tokenizer();
        let err = single_turn(&[])
            .load(
                "{\"text\": \"a\"}\n{\"text\": \"b\", \"output_length\": 0}\n",
                "st.jsonl",
                &tok,
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "st.jsonl:2: `output_length` must be a positive integer"
        );
        let mut loader = mooncake(&[]);
        let trace = "{\"timestamp\": 0, \"input_length\": 4, \"output_length\": 0}\n";
        let c = loader.load(trace, "t.jsonl", &tok).unwrap();
        assert_eq!(c[0].turns[0].max_tokens, Some(1));
        assert_eq!(
            loader.warnings(),
            ["t.jsonl:1: output_length 0 asks for no output; 1 is asked for instead"]
        );
    }

    /// AIPerf's composer gives a row without `output_length` the `--osl` (drawn around it
    /// with `--osl-stddev`); a row's own length wins; without `--osl` none is asked for.
    #[test]
    fn rows_without_an_output_length_get_the_osl() {
        let tok = tokenizer();
        let file =
            "{\"text\": \"a\", \"output_length\": 7}\n{\"text\": \"b\"}\n{\"text\": \"c\"}\n";
        let lengths = |args: &[&str]| -> Vec<Option<u32>> {
            let c = single_turn(args).load(file, "st.jsonl", &tok).unwrap();
            c.iter()
                .flat_map(|c| &c.turns)
                .map(|t| t.max_tokens)
                .collect()
        };
        assert_eq!(lengths(&[]), [Some(7), None, None]);
        assert_eq!(lengths(&["--osl", "5"]), [Some(7), Some(5), Some(5)]);
        let drawn = lengths(&["--osl", "50", "--osl-stddev", "10", "--random-seed", "4"]);
        assert_eq!(drawn[0], Some(7));
        assert!(
            drawn[1..].iter().all(|n| n.is_some_and(|n| n >= 1)),
            "{drawn:?}"
        );
        assert_ne!(drawn[1], drawn[2], "drawn, not fixed: {drawn:?}");
        let lines = "{\"turns\": [{\"text\": \"a\"}, {\"text\": \"b\", \"output_length\": 2}]}\n";
        let c = multi_turn_with(&["--osl", "3"])
            .load(lines, "mt.jsonl", &tok)
            .unwrap();
        let turns: Vec<Option<u32>> = c[0].turns.iter().map(|t| t.max_tokens).collect();
        assert_eq!(turns, [Some(3), Some(2)]);
    }

    #[test]
    fn single_turn_rows() {
        let tok = tokenizer();
        let file = r#"{"text": "What is the capital of France?", "output_length": 4, "timestamp": 1}
{"texts": ["a b", "c"], "role": "user", "delay": 5, "session_id": "s"}
{"texts": [{"name": "query", "contents": ["q"]}, {"name": "passages", "contents": ["p1", "p2"]}]}
{"image": "data:image/png;base64,AAAA", "audios": ["wav,UklGR", "https://x/a.wav"]}
{"text": "again", "session_id": "s", "extra": {"temperature": 0}}
"#;
        let mut loader = single_turn(&[]);
        let c = loader.load(file, "st.jsonl", &tok).unwrap();
        assert_eq!(c.len(), 4);
        let first = &c[0].turns[0];
        assert_eq!(first.texts, ["What is the capital of France?"]);
        assert_eq!(first.max_tokens, Some(4));
        assert_eq!(first.timestamp_ms, Some(1.0));
        assert_eq!(
            first.input_tokens,
            Some(tok.count("What is the capital of France?") as u32)
        );
        assert_eq!(c[1].session_id, "s");
        assert_eq!(c[1].turns.len(), 2);
        assert_eq!(c[1].turns[0].texts, ["a b", "c"]);
        assert_eq!(c[1].turns[0].role.as_deref(), Some("user"));
        assert_eq!(c[1].turns[0].delay_ms, Some(5.0));
        assert_eq!(c[1].turns[1].texts, ["again"]);
        assert_eq!(c[2].turns[0].texts, ["q", "p1", "p2"]);
        assert_eq!(c[2].turns[0].text_names, ["query", "passages", "passages"]);
        let media = &c[3].turns[0];
        assert_eq!(media.images, ["data:image/png;base64,AAAA"]);
        assert_eq!(
            media.audios,
            ["data:audio/wav;base64,UklGR", "https://x/a.wav"]
        );
        assert_eq!(media.input_tokens, None);
        assert_eq!(
            c[1].turns[1].extra,
            [("temperature".to_owned(), serde_json::json!(0))]
        );
        let err = single_turn(&[])
            .load(r#"{"text": "x", "extra": [1]}"#, "st.jsonl", &tok)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("st.jsonl:1: `extra` must be an object of body fields"),
            "{err}"
        );
    }

    /// Local media files are sent as data URLs of their bytes, as AIPerf encodes them;
    /// a file that cannot be read or is no image is an error naming the row.
    #[test]
    fn local_media_files_become_data_urls() {
        let tok = tokenizer();
        let dir = std::env::temp_dir().join(format!("aiperf-media-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut rng = crate::rng::stream_rng(Some(1), "test.media", 0);
        let png = crate::media::png(4, 3, &mut rng);
        let wav = crate::media::wav(0.01, 8000, &mut rng);
        let (png_path, wav_path) = (dir.join("a.png"), dir.join("b.WAV"));
        std::fs::write(&png_path, &png).unwrap();
        std::fs::write(&wav_path, &wav).unwrap();
        std::fs::write(dir.join("c.txt"), "not an image").unwrap();
        let row = format!(
            r#"{{"image": "{}", "audio": "{}"}}"#,
            png_path.display(),
            wav_path.display()
        );
        let c = single_turn(&[]).load(&row, "st.jsonl", &tok).unwrap();
        let turn = &c[0].turns[0];
        assert_eq!(turn.images, [crate::media::data_url("image/png", &png)]);
        assert_eq!(turn.audios, [crate::media::data_url("audio/wav", &wav)]);
        for (row, expected) in [
            (
                format!(r#"{{"image": "{}/missing.png"}}"#, dir.display()),
                format!("st.jsonl:1: cannot read `{}/missing.png`: ", dir.display()),
            ),
            (
                format!(r#"{{"images": ["{}/c.txt"]}}"#, dir.display()),
                format!(
                    "st.jsonl:1: image file `{}/c.txt` is not a PNG, JPEG, GIF, BMP or WebP \
                     image",
                    dir.display()
                ),
            ),
            (
                r#"{"audio": "clip.ogg"}"#.to_owned(),
                "st.jsonl:1: audio `clip.ogg` is neither a URL, `wav,<base64>`/`mp3,<base64>`, \
                 nor a `.wav` or `.mp3` file"
                    .to_owned(),
            ),
        ] {
            let err = single_turn(&[]).load(&row, "st.jsonl", &tok).unwrap_err();
            assert!(err.to_string().starts_with(&expected), "{err}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn single_turn_errors_name_the_line() {
        let tok = tokenizer();
        let cases: &[(&str, &str)] = &[
            (
                "{\"text\": \"a\"}\n{\"role\": \"user\"}\n",
                "st.jsonl:2: a row needs at least",
            ),
            (
                "{\"text\": \"a\", \"texts\": [\"b\"]}\n",
                "st.jsonl:1: a row has either `text`",
            ),
            (
                "{\"texts\": [1]}\n",
                "st.jsonl:1: `texts` must hold strings",
            ),
            (
                "{\"texts\": [{\"name\": \"q\"}]}\n",
                "st.jsonl:1: `texts` objects need",
            ),
            ("{\"text\": 5}\n", "st.jsonl:1: `text` must be a string"),
            (
                "{\"video\": \"v.mp4\"}\n",
                "st.jsonl:1: `video` is not supported",
            ),
            (
                "{\"text\": \"a\", \"timestamp\": 1, \"delay\": 1}\n",
                "st.jsonl:1: a row has",
            ),
            ("{\"text\": \"a\"\n", "st.jsonl:1: invalid JSON"),
            // The column, not serde's "line 1" of the row.
            (
                "{\"text\": \"a\"}\n{\"text\" \"b\"}\n",
                "st.jsonl:2: invalid JSON: expected `:` (column 9)",
            ),
        ];
        for (content, expected) in cases {
            let err = single_turn(&[])
                .load(content, "st.jsonl", &tok)
                .unwrap_err();
            assert!(
                err.to_string().contains(expected),
                "{content:?}: {err} (expected {expected:?})"
            );
        }
        assert!(SingleTurnLoader::create(&context(
            &config(&["-m", "m", "--trace-timestamp-unit", "minutes"]),
            &SINGLE_TURN
        ))
        .is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let tok = tokenizer();
        let inputs = [
            "\u{feff}{\"input_length\": 1}",
            "{\"input_length\": 1}\r\n{\"input_length\": 2}\r\n",
            "{\"input_length\": 1, \"timestamp\": 1e308}",
            "{\"text\": \"\\ud800\"}",
            "{}",
            "null",
            "{\"input_length\": 1, \"hash_ids\": []}",
        ];
        for input in inputs {
            let _ = mooncake(&[]).load(input, "f", &tok);
            let _ = single_turn(&[]).load(input, "f", &tok);
            let _ = multi_turn().load(input, "f", &tok);
        }
        // Timestamps in seconds that overflow f64 milliseconds are errors, not infinities.
        let err = mooncake(&["--trace-timestamp-unit", "s"])
            .load("{\"input_length\": 1, \"timestamp\": 1e307}", "f", &tok)
            .unwrap_err();
        assert!(
            err.to_string().contains("`timestamp` must be a number"),
            "{err}"
        );
    }

    fn multi_turn() -> MultiTurnLoader {
        multi_turn_with(&[])
    }

    fn multi_turn_with(args: &[&str]) -> MultiTurnLoader {
        let mut all = vec!["-m", "m", "--random-seed", "1"];
        all.extend_from_slice(args);
        MultiTurnLoader::create(&context(&config(&all), &MULTI_TURN)).unwrap()
    }

    #[test]
    fn multi_turn_lines_are_conversations_of_single_turn_turns() {
        let tok = tokenizer();
        let content = concat!(
            r#"{"session_id": "chat-a", "turns": [{"text": "hi", "output_length": 5},"#,
            r#" {"text": "and then?", "delay": 250, "role": "user"}]}"#,
            "\n\n",
            r#"{"turns": [{"texts": ["one", "two"]}]}"#,
            "\n",
            r#"{"session_id": "chat-a", "turns": [{"text": "more", "delay": 10}]}"#,
            "\n",
        );
        let mut loader = multi_turn();
        assert!(loader.can_load(Some(content.lines().next().unwrap()), "mt.jsonl"));
        assert!(!loader.can_load(Some(r#"{"text": "x"}"#), "st.jsonl"));
        assert!(!single_turn(&[]).can_load(Some(content.lines().next().unwrap()), "mt.jsonl"));
        let conversations = loader.load(content, "mt.jsonl", &tok).unwrap();
        type TurnSummary<'a> = (Vec<&'a str>, Option<f64>, Option<u32>);
        let summary: Vec<(&str, Vec<TurnSummary>)> = conversations
            .iter()
            .map(|c| {
                let turns = c
                    .turns
                    .iter()
                    .map(|t| {
                        let texts = t.texts.iter().map(String::as_str).collect();
                        (texts, t.delay_ms, t.max_tokens)
                    })
                    .collect();
                (c.session_id.as_str(), turns)
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "chat-a",
                    vec![
                        (vec!["hi"], None, Some(5)),
                        (vec!["and then?"], Some(250.0), None),
                        (vec!["more"], Some(10.0), None),
                    ]
                ),
                ("session_000000", vec![(vec!["one", "two"], None, None)]),
            ]
        );
        assert_eq!(conversations[0].turns[1].role.as_deref(), Some("user"));
        assert_eq!(conversations[0].turns[0].input_tokens, Some(1));

        for (content, expected) in [
            (
                r#"{"turns": []}"#,
                "mt.jsonl:1: a line needs `turns`, a non-empty list",
            ),
            (r#"{"turns": "x"}"#, "mt.jsonl:1: a line needs `turns`"),
            (
                "{\"turns\": [{\"text\": \"a\"}]}\n{\"turns\": [{\"text\": \"a\"}, 3]}",
                "mt.jsonl:2: turns[1]: a turn must be a JSON object",
            ),
            (
                r#"{"turns": [{"text": "a"}, {"role": "user"}]}"#,
                "mt.jsonl:1: turns[1]: a row needs at least one of `text`",
            ),
            (
                r#"{"turns": [{"text": "a", "delay": -1}]}"#,
                "mt.jsonl:1: turns[0]: `delay` must not be negative",
            ),
        ] {
            let err = multi_turn().load(content, "mt.jsonl", &tok).unwrap_err();
            assert!(
                err.to_string().contains(expected),
                "{content:?}: {err} (expected {expected:?})"
            );
        }
    }

    /// `messages` rows send their messages (and `tools`) as given, their text counted as
    /// the input; `payload` rows send the whole body as given, `extra` merged over it.
    #[test]
    fn mooncake_messages_and_payload_rows_are_sent_as_given() {
        use crate::endpoints::payload::{Field, InputShape, StreamUsage, Template};
        let tok = tokenizer();
        let trace = concat!(
            r#"{"session_id": "a", "timestamp": 0, "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": [{"type": "text", "text": "hi"}]}], "tools": [{"type": "function"}], "output_length": 3}"#,
            "\n",
            r#"{"timestamp": 5, "payload": {"model": "other", "prompt": "x", "n": 2}, "extra": {"n": 1}}"#,
            "\n",
        );
        let c = mooncake(&[]).load(trace, "t.jsonl", &tok).unwrap();
        let chat = Template::compile(
            vec![
                ("messages", Field::Input(InputShape::ChatMessages)),
                ("model", Field::Model("m".into())),
                ("max_tokens", Field::MaxTokens),
            ],
            &[],
            StreamUsage::Never,
        );
        let render = |turn: &Turn| {
            let mut body = Vec::new();
            chat.render(turn, &mut body);
            String::from_utf8(body).unwrap()
        };
        let messages = &c[0].turns[0];
        assert_eq!(messages.texts, ["be brief", "hi"]);
        assert_eq!(messages.input_tokens, Some(tok.count("be brief hi") as u32));
        assert_eq!(
            render(messages),
            r#"{"messages":[{"content":"be brief","role":"system"},{"content":[{"text":"hi","type":"text"}],"role":"user"}],"model":"m","max_tokens":3,"tools":[{"type":"function"}]}"#
        );
        let payload = &c[1].turns[0];
        assert_eq!(payload.input_tokens, None);
        assert_eq!(render(payload), r#"{"model":"other","n":1,"prompt":"x"}"#);
    }

    fn random_pool(seed: &str) -> RandomPoolLoader {
        let cfg = config(&[
            "-m",
            "m",
            "--num-dataset-entries",
            "6",
            "--random-seed",
            seed,
        ]);
        RandomPoolLoader::create(&context(&cfg, &RANDOM_POOL)).unwrap()
    }

    /// Each entry draws one row from every pool: a text from the first file and an
    /// image from the second, reproducibly with the seed.
    #[test]
    fn random_pool_entries_draw_one_row_from_every_pool() {
        let tok = tokenizer();
        let files = [
            (
                "d/a.jsonl".to_owned(),
                "{\"text\": \"alpha\"}\n{\"text\": \"beta\", \"output_length\": 7}\n\
                 {\"text\": \"gamma\"}\n"
                    .to_owned(),
            ),
            (
                "d/b.jsonl".to_owned(),
                "{\"image\": \"data:image/png;base64,AA\"}\n\
                 {\"image\": \"data:image/png;base64,BB\"}\n"
                    .to_owned(),
            ),
        ];
        let mut loader = random_pool("3");
        let first_line = files[0].1.lines().next();
        assert!(loader.can_load(first_line, "d/"));
        assert!(!loader.can_load(first_line, "a.jsonl"));
        assert!(!single_turn(&[]).can_load(first_line, "d/"));
        let c = loader.load_dir(&files, "d/", &tok).unwrap();
        assert_eq!(c.len(), 6);
        for (i, conversation) in c.iter().enumerate() {
            assert_eq!(conversation.session_id, format!("session_{i:06}"));
            let turn = &conversation.turns[0];
            assert_eq!(turn.texts.len(), 1);
            assert!(["alpha", "beta", "gamma"].contains(&turn.texts[0].as_str()));
            assert_eq!(turn.images.len(), 1);
            assert_eq!(turn.max_tokens.is_some(), turn.texts[0] == "beta");
            assert_eq!(turn.input_tokens, Some(1));
        }
        let texts: Vec<&str> = c.iter().map(|c| c.turns[0].texts[0].as_str()).collect();
        let again = random_pool("3").load_dir(&files, "d/", &tok).unwrap();
        let again: Vec<&str> = again.iter().map(|c| c.turns[0].texts[0].as_str()).collect();
        assert_eq!(texts, again);

        let one = random_pool("3").load(&files[0].1, "a.jsonl", &tok).unwrap();
        assert_eq!(one.len(), 6);
        assert!(one.iter().all(|c| c.turns[0].images.is_empty()));
        let err = random_pool("3")
            .load("{\"text\": \"x\", \"timestamp\": 1}", "p.jsonl", &tok)
            .unwrap_err();
        assert!(
            err.to_string().starts_with(
                "p.jsonl:1: random_pool rows are drawn at random, so `timestamp` has no \
                 meaning there"
            ),
            "{err}"
        );
        let err = SingleTurnLoader::new(1.0)
            .load_dir(&files, "d/", &tok)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "d/ is a directory, and this dataset format reads one file"
        );
    }

    fn batched_pool(flags: &[&str]) -> RandomPoolLoader {
        let mut args = vec![
            "-m",
            "m",
            "--num-dataset-entries",
            "5",
            "--random-seed",
            "4",
        ];
        args.extend_from_slice(flags);
        RandomPoolLoader::create(&context(&config(&args), &RANDOM_POOL)).unwrap()
    }

    /// A batch size other than 1 makes each turn draw that many items of its modality
    /// from one flat pool (a row's text and image no longer go together), as AIPerf's
    /// batched random_pool; it refuses named entries, several pools and empty turns with
    /// AIPerf's words.
    #[test]
    fn random_pool_batches_draw_from_flat_pools() {
        let tok = tokenizer();
        let pool = "{\"texts\": [\"one\", \"two\"]}\n{\"text\": \"three\"}\n\
                    {\"image\": \"data:image/png;base64,AA\"}\n";
        let c = batched_pool(&["--prompt-batch-size", "3"])
            .load(pool, "p.jsonl", &tok)
            .unwrap();
        assert_eq!(c.len(), 5);
        for conversation in &c {
            let turn = &conversation.turns[0];
            assert_eq!(turn.texts.len(), 3, "{turn:?}");
            assert!(turn
                .texts
                .iter()
                .all(|t| ["one", "two", "three"].contains(&t.as_str())));
            // Present at batch size 1: still drawn, one per turn.
            assert_eq!(turn.images, ["data:image/png;base64,AA"]);
            assert_eq!(turn.input_tokens, Some(3));
        }
        let again = batched_pool(&["--prompt-batch-size", "3"])
            .load(pool, "p.jsonl", &tok)
            .unwrap();
        assert_eq!(c, again, "reproducible with the seed");
        // A batch size on a modality the pool lacks is no batching.
        let plain = batched_pool(&["--audio-batch-size", "2"])
            .load(pool, "p.jsonl", &tok)
            .unwrap();
        assert!(plain.iter().all(|c| c.turns[0].audios.is_empty()));

        let named = "{\"texts\": [{\"name\": \"q\", \"contents\": [\"a\"]}]}\n";
        let err = batched_pool(&["--prompt-batch-size", "2"])
            .load(named, "n.jsonl", &tok)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "random_pool batch sizes other than 1 are not supported when pool entries carry \
             named Text/Image/Audio/Video objects or image cache uuids. Drop the batch-size \
             flags, or strip name/uuids from the entries if only their contents matter."
        );
        let files = [
            ("d/b.jsonl".to_owned(), "{\"text\": \"b\"}\n".to_owned()),
            ("d/a.jsonl".to_owned(), "{\"text\": \"a\"}\n".to_owned()),
        ];
        let err = batched_pool(&["--prompt-batch-size", "2"])
            .load_dir(&files, "d/", &tok)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "random_pool batch sizes other than 1 are not supported for named pools (found 2: \
             d/a.jsonl, d/b.jsonl). Drop the batch-size flags, or use a single unnamed pool -- \
             one file, or a flat inline records: list."
        );
        let images = "{\"image\": \"data:image/png;base64,AA\"}\n";
        let err = batched_pool(&["--prompt-batch-size", "2", "--image-batch-size", "0"])
            .load(images, "i.jsonl", &tok)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "random_pool batch sizes produce turns with no content: every modality is absent \
             from the pool or has batch size 0 (text=2, image=0, audio=1). Set a batch size \
             above 0 for a modality that is present in the pool."
        );
    }
}
