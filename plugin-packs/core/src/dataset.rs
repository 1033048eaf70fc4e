//! Synthetic prompts of exact token lengths.
//!
//! AIPerf cuts windows out of a tokenized Shakespeare corpus. Here the text is built from
//! the tokenizer's own vocabulary instead: tokens that are a space followed by 3-10
//! lower-case ASCII letters are each one pre-token (a word), so a concatenation of N of
//! them encodes to exactly N tokens and a prompt's length is known without encoding it.
//! That property is checked once per run and the composer falls back to counting every
//! prompt when a tokenizer does not have it.

use std::sync::Arc;

use aiperf_runtime::config::ImageFormat;
use aiperf_runtime::dataset::{Conversation, SessionIds, Turn};
use aiperf_runtime::plugin::{Plugin, PluginContext, PluginError};
use aiperf_runtime::protocols::{DatasetComposerProtocol, TokenizerProtocol};
use aiperf_runtime::seq_dist::LengthSampling;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

use crate::media;
use crate::models::ModelSelector;
use crate::rng::{keyed_seed, root_or_process, LazyRng, StreamRng};

/// Words used when a tokenizer's vocabulary has none of the expected shape (e.g. a
/// SentencePiece vocabulary, whose word tokens decode differently). Prompts made of them
/// are counted and corrected one by one.
const FALLBACK_WORDS: &[&str] = &[
    " the", " and", " that", " have", " for", " not", " with", " you", " this", " but", " his",
    " from", " they", " say", " her", " she", " will", " one", " all", " would", " there",
    " their", " what", " out", " about", " who", " get", " which", " when", " make", " can",
    " like", " time", " just", " him", " know", " take", " people", " into", " year", " your",
    " good", " some", " could", " them", " see", " other", " than", " then", " now", " look",
    " only", " come", " its", " over", " think",
];

/// Prompts draw from the list's first words only. Lists follow vocabulary order, which for
/// BPE is roughly frequency order, so these are the common words; and their table stays
/// in the core's cache: drawing from all 43,716 words of o200k made composing 10,000
/// prompts wait on a cache miss per word.
const PROMPT_WORDS: usize = 8192;

/// Rounds of adding or removing words before a prompt's measured length is accepted.
const MAX_FIXUP_ROUNDS: usize = 8;

/// Composes `--num-dataset-entries` conversations of synthetic text (`--conversation-num`
/// when given), with synthetic images and audio clips when their sizes are set. For
/// rankings endpoints it composes single-turn queries and passages instead, as AIPerf
/// picks its rankings composer for them (see [`SyntheticRankingsComposer`]).
///
/// Conversations have several turns with `--conversation-turn-mean`, drawn as AIPerf
/// draws them: `max(1, ceil(x))` for `x` from a normal distribution (mean and standard
/// deviation truncated to integers, as AIPerf's config does) redrawn until non-negative,
/// exactly the mean without a deviation. Every turn after the first waits
/// `--conversation-turn-delay-mean` milliseconds after the previous response, drawn the
/// same way and multiplied by `--conversation-turn-delay-ratio` (no delay when the mean
/// is 0). Counts and delays have streams of their own, so a seeded run's prompts do not
/// depend on them. With several `--model`s each turn names one (see [`ModelSelector`]).
/// Prefix, shared system and user context prompts are AIPerf's (see [`ContextPrompts`]).
///
/// With `--seq-dist` or `--random-range-ratio` each turn draws its (ISL, OSL) as AIPerf
/// 0.13's composer does (`_get_turn_sequence_lengths`): per turn, from a stream of its
/// own (AIPerf's `models.sequence.distribution` and `models.range_ratio.distribution`),
/// before its prompt is made, and the OSL becomes the turn's `max_tokens` whether or not
/// `--osl` is given. A `--seq-dist` draw picks a pair with one uniform number, then each
/// length with a deviation is AIPerf's positive normal integer (`max(1, ceil(x))`, `x`
/// redrawn until not negative); a ratio window draws two uniform integers, ISL then OSL.
/// The streams are seeded as ours are, so the same seed gives other numbers than
/// AIPerf's; and AIPerf's `--prompt-corpus random` pre-draws vLLM's (PCG64) or SGLang's
/// (MT19937) sequence, a corpus we do not have. Rankings turns keep their own lengths.
#[derive(Debug, Clone)]
pub struct SyntheticComposer {
    entries: usize,
    /// The root of every stream: `--random-seed`, else one entropy seed per process, so
    /// that any instance of the composer makes the same conversation `i`.
    root: u64,
    /// AIPerf's session names: numbered with `--random-seed`, UUIDs without.
    session_ids: SessionIds,
    context: ContextPrompts,
    turns: TurnOptions,
    lengths: LengthSampling,
    lengths_label: &'static str,
    input_mean: f64,
    input_stddev: f64,
    output_mean: Option<f64>,
    output_stddev: f64,
    media: MediaOptions,
    /// Texts per turn (`--prompt-batch-size`).
    batch: u32,
    /// Set when composing for a rankings endpoint.
    rankings: Option<RankingsOptions>,
    /// Each turn's model.
    models: ModelSelector,
    /// What every conversation draws on, made at the first one.
    shared: Option<Arc<SharedParts>>,
}

/// The word list, the length distributions and the prompts every conversation shares
/// (the shared system prompt and the prefix pool).
struct SharedParts {
    words: WordList,
    input_lengths: LengthDistribution,
    output_lengths: Option<LengthDistribution>,
    system: Option<Arc<str>>,
    pool: Vec<(String, u32)>,
}

impl std::fmt::Debug for SharedParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedParts")
            .field("words", &self.words.spans.len())
            .field("system", &self.system.is_some())
            .field("pool", &self.pool.len())
            .finish()
    }
}

impl SyntheticComposer {
    /// The stream label of every draw the composer makes.
    pub const RNG_LABEL: &'static str = "dataset.synthetic";
    /// The stream of image and audio draws (a separate stream, so enabling media does not
    /// change the prompts of a seeded run).
    pub const MEDIA_RNG_LABEL: &'static str = "dataset.media";
    /// Turns per conversation, and delays between turns (AIPerf's stream names).
    pub const TURN_RNG_LABEL: &'static str = "composer.conversation.turn_count";
    pub const DELAY_RNG_LABEL: &'static str = "composer.conversation.turn_delay";
    /// Each first turn's pick from the prefix pool (AIPerf's stream name).
    pub const PREFIX_RNG_LABEL: &'static str = "dataset.prompt.prefix";
    /// The words of the prefix, shared system and user context prompts: a stream of
    /// their own, so giving these flags leaves a seeded run's other prompts as they were
    /// (AIPerf draws them from its corpus stream, shifting the prompts after them).
    pub const CONTEXT_RNG_LABEL: &'static str = "dataset.prompt.context";
    /// The (ISL, OSL) draws of `--seq-dist` and of `--random-range-ratio` (AIPerf's).
    pub const SEQ_DIST_RNG_LABEL: &'static str = "models.sequence.distribution";
    pub const RANGE_RATIO_RNG_LABEL: &'static str = "models.range_ratio.distribution";
}

/// AIPerf 0.13's prefix prompts (`PrefixPromptConfig`, `PromptGenerator`,
/// `BaseDatasetComposer._inject_context_prompts`), for the synthetic composer:
///
/// - `--prompt-prefix-pool-size N --prompt-prefix-length L`: N prompts of L tokens are
///   composed first; the first turn of each conversation (only the first, as AIPerf's
///   `with_prefix = is_first`) starts with one, picked uniformly. The prefix adds to the
///   turn: its text is the prefix directly followed by `--isl` tokens of prompt (no
///   separator; AIPerf joins token ids), so it counts L plus the drawn length.
/// - `--shared-system-prompt-length L`: one prompt of L tokens, composed before the rest,
///   is every conversation's system message.
/// - `--user-context-prompt-length L`: each conversation gets a prompt of L tokens of its
///   own, composed after all conversations, in their order, as its user context message.
///
/// Rankings tasks get none of them, as AIPerf's rankings composer adds none. The words are
/// ours, not AIPerf's corpus, so the texts differ from AIPerf's for the same seed.
#[derive(Debug, Clone)]
struct ContextPrompts {
    /// `(prompts, tokens each)` of the prefix pool.
    pool: Option<(u32, u32)>,
    shared_system: Option<u32>,
    user_context: Option<u32>,
}

impl ContextPrompts {
    fn new(config: &aiperf_runtime::config::ProfileConfig) -> Self {
        ContextPrompts {
            pool: config
                .prompt_prefix_pool_size
                .zip(config.prompt_prefix_length),
            shared_system: config.prompt_prefix_shared_system_length,
            user_context: config.prompt_prefix_user_context_length,
        }
    }
}

/// How many turns a conversation has and how long each later one waits, in AIPerf's
/// integer terms.
#[derive(Debug, Clone, Copy, PartialEq)]
struct TurnOptions {
    mean: u32,
    stddev: u32,
    /// `(mean ms, stddev ms, ratio)` when the mean is above 0.
    delay: Option<(u32, u32, f64)>,
}

impl TurnOptions {
    fn new(config: &aiperf_runtime::config::ProfileConfig) -> Result<Self, PluginError> {
        let (mean, stddev) = (
            config.conversation_turn_mean,
            config.conversation_turn_stddev,
        );
        let (delay_mean, delay_stddev, ratio) = (
            config.conversation_turn_delay_mean,
            config.conversation_turn_delay_stddev,
            config.conversation_turn_delay_ratio,
        );
        if !(mean.is_finite() && mean >= 1.0) {
            return Err(PluginError::Config(format!(
                "--conversation-turn-mean must be at least 1, got {mean}"
            )));
        }
        for (flag, value) in [
            ("--conversation-turn-stddev", stddev),
            ("--conversation-turn-delay-mean", delay_mean),
            ("--conversation-turn-delay-stddev", delay_stddev),
            ("--conversation-turn-delay-ratio", ratio),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(PluginError::Config(format!(
                    "{flag} must be a non-negative number, got {value}"
                )));
            }
        }
        // AIPerf keeps integers (`int(mean)`); `as` truncates and saturates.
        Ok(TurnOptions {
            mean: (mean as u32).max(1),
            stddev: stddev as u32,
            delay: (delay_mean > 0.0).then_some((delay_mean as u32, delay_stddev as u32, ratio)),
        })
    }
}

/// The output length of a file's turn that gives none: `--osl` (with `--osl-stddev`),
/// as AIPerf's composer gives every turn it finalizes (`_set_max_tokens`: the row's own
/// `output_length` wins). Without `--osl` such a turn asks for none.
#[derive(Debug, Clone, Copy, Default)]
pub struct OutputLengths {
    mean: Option<u32>,
    stddev: f64,
    seed: Option<u64>,
}

impl OutputLengths {
    pub fn new(config: &aiperf_runtime::config::ProfileConfig) -> Self {
        OutputLengths {
            mean: config.output_tokens_mean,
            stddev: config.output_tokens_stddev,
            seed: config.random_seed,
        }
    }

    /// Gives each turn of `conversations` without an output length one, in order.
    pub fn fill(&self, conversations: &mut [Conversation]) {
        let Some(mean) = self.mean.filter(|&m| m > 0) else {
            return;
        };
        let mut rng = crate::rng::stream_rng(self.seed, "dataset.file.max_tokens", 0);
        let turns = conversations.iter_mut().flat_map(|c| c.turns.iter_mut());
        for turn in turns.filter(|t| t.max_tokens.is_none()) {
            turn.max_tokens = Some(positive_normal_integer(
                f64::from(mean),
                self.stddev,
                &mut rng,
            ));
        }
    }
}

/// AIPerf's `sample_positive_normal_integer`: `max(1, round(mean))` without a deviation,
/// else `max(1, ceil(x))` with `x` drawn from `Normal(mean, stddev)` until it is not
/// negative (the mean after 10,000 negative draws).
fn positive_normal_integer(mean: f64, stddev: f64, rng: &mut impl StreamRng) -> u32 {
    // `as` saturates: a mean past u32::MAX (refused by the limits) stays u32::MAX.
    let fixed = (mean.round() as u32).max(1);
    if stddev.is_nan() || stddev <= 0.0 {
        return fixed;
    }
    let rng = rng.stream();
    // Only a non-finite deviation (refused by the limits) makes `Normal::new` fail.
    let Ok(normal) = Normal::new(mean, stddev) else {
        return fixed;
    };
    for _ in 0..10_000 {
        let x = normal.sample(rng);
        if x >= 0.0 {
            // `as` saturates a draw past u32::MAX.
            return (x.ceil() as u32).max(1);
        }
    }
    fixed
}

impl Plugin for SyntheticComposer {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        let mut composer = Self::create_plain(ctx)?;
        // AIPerf's rule: rankings endpoints get the rankings composer.
        if ctx
            .config
            .endpoint_type
            .to_ascii_lowercase()
            .contains("rankings")
        {
            composer.rankings = Some(RankingsOptions::new(ctx.config)?);
        }
        Ok(composer)
    }
}

impl SyntheticComposer {
    fn create_plain(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        let config = ctx.config;
        let input_stddev = config.synthetic_input_tokens_stddev;
        let output_stddev = config.output_tokens_stddev;
        for (flag, value) in [
            ("--isl-stddev", input_stddev),
            ("--osl-stddev", output_stddev),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err(PluginError::Config(format!(
                    "{flag} must be a non-negative number, got {value}"
                )));
            }
        }
        let lengths = config.length_sampling().map_err(PluginError::Config)?;
        let lengths_label = match lengths {
            LengthSampling::Window { .. } => Self::RANGE_RATIO_RNG_LABEL,
            LengthSampling::Means | LengthSampling::Pairs(_) => Self::SEQ_DIST_RNG_LABEL,
        };
        Ok(SyntheticComposer {
            entries: config.dataset_entries().map_err(PluginError::Config)?,
            root: root_or_process(config.random_seed),
            session_ids: SessionIds::for_run(config.random_seed),
            context: ContextPrompts::new(config),
            turns: TurnOptions::new(config)?,
            lengths,
            lengths_label,
            input_mean: f64::from(config.synthetic_input_tokens_mean),
            input_stddev,
            output_mean: config.output_tokens_mean.map(f64::from),
            output_stddev,
            media: MediaOptions::new(config)?,
            batch: config.prompt_batch_size,
            rankings: None,
            models: ModelSelector::new(config, 0),
            shared: None,
        })
    }

    /// The seed of the stream `label` of conversation `index`.
    fn entry_seed(&self, label: &str, index: usize) -> u64 {
        keyed_seed(self.root, label, index as u64)
    }

    /// The parts every conversation shares, made once. AIPerf's order: the shared system
    /// prompt, then the pool.
    fn shared<T: TokenizerProtocol>(
        &mut self,
        tokenizer: &T,
    ) -> Result<Arc<SharedParts>, PluginError> {
        if let Some(shared) = &self.shared {
            return Ok(shared.clone());
        }
        let mut rng = StdRng::seed_from_u64(keyed_seed(self.root, Self::RNG_LABEL, u64::MAX));
        let words = WordList::new(tokenizer, &mut rng);
        let input_lengths = LengthDistribution::new(self.input_mean, self.input_stddev)?;
        let output_lengths = match self.output_mean {
            Some(mean) => Some(LengthDistribution::new(mean, self.output_stddev)?),
            None => None,
        };
        // Rankings tasks get no context prompts, as AIPerf's rankings composer adds none.
        let with_context = self.rankings.is_none();
        let mut text_rng =
            StdRng::seed_from_u64(keyed_seed(self.root, Self::CONTEXT_RNG_LABEL, u64::MAX));
        let system: Option<Arc<str>> = self
            .context
            .shared_system
            .filter(|_| with_context)
            .map(|n| Arc::from(words.prompt(n, tokenizer, &mut text_rng).0));
        let pool: Vec<(String, u32)> = match self.context.pool.filter(|_| with_context) {
            Some((size, length)) => (0..size)
                .map(|_| words.prompt(length, tokenizer, &mut text_rng))
                .collect(),
            None => Vec::new(),
        };
        let shared = Arc::new(SharedParts {
            words,
            input_lengths,
            output_lengths,
            system,
            pool,
        });
        self.shared = Some(shared.clone());
        Ok(shared)
    }

    /// How many turns a conversation has, from its own turn-count stream (`rng`): the
    /// count alone can be drawn without composing the conversation.
    fn turn_count(&self, rng: &mut LazyRng) -> u32 {
        // Rankings tasks are single-turn, as AIPerf's rankings composer makes them.
        match self.rankings {
            Some(_) => 1,
            None => positive_normal_integer(
                f64::from(self.turns.mean),
                f64::from(self.turns.stddev),
                rng,
            ),
        }
    }

    /// Conversation `index`, its turns' models picked from `first_turn` on (the number of
    /// turns composed before it, for the round robin).
    fn compose_at<T: TokenizerProtocol>(
        &mut self,
        index: usize,
        first_turn: u64,
        tokenizer: &T,
    ) -> Result<Conversation, PluginError> {
        let shared = self.shared(tokenizer)?;
        let words = &shared.words;
        // Each draw has a stream of its own per conversation: the conversation is the
        // same whichever are made before it, and a flag that adds draws to one stream
        // (turn counts, media) leaves the others' values as they were.
        // Only the prompt stream is made for every conversation; the others when a flag
        // draws from them (seeding a stream costs about what a short prompt does).
        let mut rng = StdRng::seed_from_u64(self.entry_seed(Self::RNG_LABEL, index));
        let lazy = |label| LazyRng::new(self.root, label, index as u64);
        let mut turn_rng = lazy(Self::TURN_RNG_LABEL);
        let mut delay_rng = lazy(Self::DELAY_RNG_LABEL);
        let mut lengths_rng = lazy(self.lengths_label);
        let mut media_rng = lazy(Self::MEDIA_RNG_LABEL);
        let mut prefix_rng = lazy(Self::PREFIX_RNG_LABEL);
        let mut model_rng = lazy(ModelSelector::RNG_LABEL);
        let count = self.turn_count(&mut turn_rng);
        let mut turns = Vec::with_capacity(count as usize);
        for t in 0..count {
            let mut turn = match &self.rankings {
                Some(options) => rankings_turn(options, words, tokenizer, &mut rng),
                None => {
                    let drawn = match self.lengths {
                        LengthSampling::Means => None,
                        _ => draw_lengths(&self.lengths, lengths_rng.get()),
                    };
                    let target = match drawn {
                        Some((isl, _)) => isl,
                        None => shared.input_lengths.sample(&mut rng),
                    };
                    // `--prompt-batch-size` texts, as AIPerf composes them: each its own
                    // prompt (and, on a first turn, its own pick of the prefix pool);
                    // lengths vary around the turn's unless a distribution drew it exactly.
                    let mut texts = Vec::with_capacity(self.batch as usize);
                    let mut input_tokens = 0;
                    for i in 0..self.batch {
                        let target = match (i, drawn) {
                            (0, _) | (_, Some(_)) => target,
                            _ => shared.input_lengths.sample(&mut rng),
                        };
                        let (prefix, prefix_tokens) = match shared.pool.len() {
                            0 => ("", 0),
                            _ if t > 0 => ("", 0),
                            n => {
                                let pick = prefix_rng.get().random_range(0..n);
                                let (text, tokens) = &shared.pool[pick];
                                (text.as_str(), *tokens)
                            }
                        };
                        // A ratio window may draw 0: a prefix carries such a turn, else it
                        // gets one token, as AIPerf floors it.
                        let target = if prefix_tokens > 0 {
                            target
                        } else {
                            target.max(1)
                        };
                        let (text, tokens) =
                            words.prompt_after(prefix, prefix_tokens, target, tokenizer, &mut rng);
                        texts.push(text);
                        input_tokens = tokens;
                    }
                    if texts.len() > 1 {
                        // Counted as sent: the texts joined by a space.
                        input_tokens = tokenizer.count(&texts.join(" ")) as u32;
                    }
                    let max_tokens = match drawn {
                        Some((_, osl)) => Some(osl),
                        None => shared.output_lengths.as_ref().map(|d| d.sample(&mut rng)),
                    };
                    Turn {
                        texts,
                        max_tokens,
                        input_tokens: Some(input_tokens),
                        ..Turn::default()
                    }
                }
            };
            if self.media.images.is_some() || self.media.audio.is_some() {
                self.media.fill(&mut turn, media_rng.get())?;
            }
            if let Some((mean, stddev, ratio)) = self.turns.delay.filter(|_| t > 0) {
                let delay =
                    positive_normal_integer(f64::from(mean), f64::from(stddev), &mut delay_rng);
                turn.delay_ms = Some(f64::from(delay) * ratio);
            }
            turn.model = self
                .models
                .model_at(first_turn + u64::from(t), &mut model_rng)
                .map(str::to_owned);
            turn.system_message = shared.system.clone();
            turns.push(turn);
        }
        if let Some(length) = self
            .context
            .user_context
            .filter(|_| self.rankings.is_none())
        {
            let seed = self.entry_seed(Self::CONTEXT_RNG_LABEL, index);
            let mut text_rng = StdRng::seed_from_u64(seed);
            let (text, _) = words.prompt(length, tokenizer, &mut text_rng);
            let text: Arc<str> = Arc::from(text);
            for turn in &mut turns {
                turn.user_context_message = Some(text.clone());
            }
        }
        Ok(Conversation {
            session_id: self.session_ids.id(index),
            turns,
        })
    }
}

/// A rankings turn: one text named `query`, then `passages` texts named so.
fn rankings_turn<T: TokenizerProtocol>(
    options: &RankingsOptions,
    words: &WordList,
    tokenizer: &T,
    rng: &mut StdRng,
) -> Turn {
    let query_len = options.query_tokens.sample(rng);
    let (query, _) = words.prompt(query_len, tokenizer, rng);
    let passages = options.passages.sample(rng);
    let mut texts = vec![query];
    let mut text_names = vec!["query".to_owned()];
    for _ in 0..passages {
        let len = options.passage_tokens.sample(rng);
        texts.push(words.prompt(len, tokenizer, rng).0);
        text_names.push("passages".to_owned());
    }
    // AIPerf's ISL: the input texts joined by one space, tokenized.
    let input_tokens = tokenizer.count(&texts.join(" "));
    Turn {
        texts,
        text_names,
        input_tokens: Some(u32::try_from(input_tokens).unwrap_or(u32::MAX)),
        ..Turn::default()
    }
}

/// Composes rankings tasks: each turn is a query (a text named `query`) and
/// `--rankings-passages-mean` passages (texts named `passages`), with their own token
/// lengths (`--rankings-query-prompt-token-mean`, `--rankings-passages-prompt-token-mean`).
#[derive(Debug, Clone)]
pub struct SyntheticRankingsComposer {
    inner: SyntheticComposer,
}

impl Plugin for SyntheticRankingsComposer {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        let mut inner = SyntheticComposer::create_plain(ctx)?;
        inner.rankings = Some(RankingsOptions::new(ctx.config)?);
        Ok(SyntheticRankingsComposer { inner })
    }
}

impl DatasetComposerProtocol for SyntheticRankingsComposer {
    fn create_dataset<T: TokenizerProtocol>(
        &mut self,
        tokenizer: &T,
    ) -> Result<Vec<Conversation>, PluginError> {
        self.inner.create_dataset(tokenizer)
    }

    fn entries(&self) -> Option<usize> {
        self.inner.entries()
    }

    fn turns(&self, index: usize) -> Option<u32> {
        self.inner.turns(index)
    }

    fn compose<T: TokenizerProtocol>(
        &mut self,
        index: usize,
        tokenizer: &T,
    ) -> Result<Conversation, PluginError> {
        self.inner.compose(index, tokenizer)
    }
}

/// Distributions of a rankings task.
#[derive(Debug, Clone)]
struct RankingsOptions {
    passages: CountDistribution,
    passage_tokens: LengthDistribution,
    query_tokens: LengthDistribution,
}

impl RankingsOptions {
    fn new(config: &aiperf_runtime::config::ProfileConfig) -> Result<Self, PluginError> {
        Ok(RankingsOptions {
            passages: CountDistribution::new(
                "--rankings-passages",
                f64::from(config.rankings_passages_mean),
                config.rankings_passages_stddev,
                1,
            )?,
            passage_tokens: LengthDistribution::checked(
                "--rankings-passages-prompt-token",
                f64::from(config.rankings_passages_prompt_token_mean),
                config.rankings_passages_prompt_token_stddev,
            )?,
            query_tokens: LengthDistribution::checked(
                "--rankings-query-prompt-token",
                f64::from(config.rankings_query_prompt_token_mean),
                config.rankings_query_prompt_token_stddev,
            )?,
        })
    }
}

/// Synthetic images and audio clips per turn.
#[derive(Debug, Clone)]
struct MediaOptions {
    /// `(images per turn, width, height)`, when images are enabled.
    images: Option<(u32, LengthDistribution, LengthDistribution)>,
    image_format: ImageFormat,
    /// `(clips per turn, seconds mean, seconds stddev, sample rates in Hz)`.
    audio: Option<(u32, f64, f64, Vec<u32>)>,
}

impl MediaOptions {
    fn new(config: &aiperf_runtime::config::ProfileConfig) -> Result<Self, PluginError> {
        let images = if config.image_width_mean > 0
            && config.image_height_mean > 0
            && config.image_batch_size > 0
        {
            Some((
                config.image_batch_size,
                LengthDistribution::checked(
                    "--image-width",
                    f64::from(config.image_width_mean),
                    config.image_width_stddev,
                )?,
                LengthDistribution::checked(
                    "--image-height",
                    f64::from(config.image_height_mean),
                    config.image_height_stddev,
                )?,
            ))
        } else {
            None
        };
        let (mean, stddev) = (config.audio_length_mean, config.audio_length_stddev);
        for (flag, value) in [
            ("--audio-length-mean", mean),
            ("--audio-length-stddev", stddev),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err(PluginError::Config(format!(
                    "{flag} must be a non-negative number of seconds, got {value}"
                )));
            }
        }
        let audio = if mean > 0.0 && config.audio_batch_size > 0 {
            // As AIPerf's audio generator: a clip is at least one 10 ms frame.
            if mean < 0.01 {
                return Err(PluginError::Config(format!(
                    "--audio-length-mean {mean}: audio length must be at least 0.01 seconds"
                )));
            }
            let rates: Vec<u32> = config
                .audio_sample_rates
                .iter()
                .map(|khz| {
                    if khz.is_finite() && (1.0..=192.0).contains(khz) {
                        Ok((khz * 1000.0).round() as u32)
                    } else {
                        Err(PluginError::Config(format!(
                            "--audio-sample-rates takes kHz between 1 and 192, got {khz}"
                        )))
                    }
                })
                .collect::<Result<_, _>>()?;
            if rates.is_empty() {
                return Err(PluginError::Config(
                    "--audio-sample-rates needs at least one rate".into(),
                ));
            }
            Some((config.audio_batch_size, mean, stddev, rates))
        } else {
            None
        };
        Ok(MediaOptions {
            images,
            image_format: config.image_format,
            audio,
        })
    }

    /// Adds this turn's images and clips.
    fn fill(&self, turn: &mut Turn, rng: &mut StdRng) -> Result<(), PluginError> {
        if let Some((count, width, height)) = &self.images {
            for _ in 0..*count {
                let (w, h) = (width.sample(rng), height.sample(rng));
                let jpeg = match self.image_format {
                    ImageFormat::Jpeg => true,
                    ImageFormat::Png => false,
                    ImageFormat::Random => rng.random_bool(0.5),
                };
                turn.images.push(if jpeg {
                    let bytes = media::jpeg(w, h, rng).map_err(PluginError::Config)?;
                    media::data_url("image/jpeg", &bytes)
                } else {
                    media::data_url("image/png", &media::png(w, h, rng))
                });
            }
        }
        if let Some((count, mean, stddev, rates)) = &self.audio {
            let normal = Normal::new(*mean, *stddev)
                .map_err(|e| PluginError::Config(format!("--audio-length: {e}")))?;
            for _ in 0..*count {
                // At least one 10 ms frame; never a negative length.
                let seconds = normal.sample(rng).max(0.01);
                // The clip as made: `wav` cuts a longer one to its limit.
                turn.audio_duration_s
                    .get_or_insert(seconds.min(media::MAX_AUDIO_SECONDS));
                let rate = rates[rng.random_range(0..rates.len())];
                turn.audios.push(media::data_url(
                    "audio/wav",
                    &media::wav(seconds, rate, rng),
                ));
            }
        }
        Ok(())
    }
}

/// One turn's (ISL, OSL) from `--seq-dist` or the `--random-range-ratio` window; `None`
/// when `--isl`/`--osl` decide (drawn from the prompt stream, as before these flags).
fn draw_lengths(lengths: &LengthSampling, rng: &mut StdRng) -> Option<(u32, u32)> {
    match lengths {
        LengthSampling::Means => None,
        LengthSampling::Pairs(dist) => {
            let pair = dist.pick(rng.random::<f64>());
            let mut length = |mean: u32, stddev: f64| {
                if stddev > 0.0 {
                    positive_normal_integer(f64::from(mean), stddev, rng)
                } else {
                    mean
                }
            };
            let isl = length(pair.isl, pair.isl_stddev);
            let osl = length(pair.osl, pair.osl_stddev);
            Some((isl, osl))
        }
        LengthSampling::Window { input, output, .. } => {
            let isl = rng.random_range(input.0..=input.1);
            let osl = rng.random_range(output.0..=output.1);
            Some((isl, osl))
        }
    }
}

/// `max(min, round(Normal(mean, stddev)))`: how many of something a turn gets.
#[derive(Debug, Clone)]
struct CountDistribution {
    lengths: LengthDistribution,
    min: u32,
}

impl CountDistribution {
    fn new(flag: &str, mean: f64, stddev: f64, min: u32) -> Result<Self, PluginError> {
        Ok(CountDistribution {
            lengths: LengthDistribution::checked(flag, mean, stddev)?,
            min,
        })
    }

    fn sample(&self, rng: &mut StdRng) -> u32 {
        self.lengths.sample(rng).max(self.min)
    }
}

impl DatasetComposerProtocol for SyntheticComposer {
    fn create_dataset<T: TokenizerProtocol>(
        &mut self,
        tokenizer: &T,
    ) -> Result<Vec<Conversation>, PluginError> {
        let mut conversations = Vec::with_capacity(self.entries);
        let mut turns = 0;
        for index in 0..self.entries {
            let conversation = self.compose_at(index, turns, tokenizer)?;
            turns += conversation.turns.len() as u64;
            conversations.push(conversation);
        }
        Ok(conversations)
    }

    /// Every conversation can be made alone, except when a round robin over several
    /// models meets turn counts that vary: its next model depends on how many turns all
    /// the conversations before had.
    fn entries(&self) -> Option<usize> {
        let turns_vary = self.rankings.is_none() && self.turns.stddev > 0;
        (!(turns_vary && self.models.cycles())).then_some(self.entries)
    }

    fn turns(&self, index: usize) -> Option<u32> {
        let mut rng = LazyRng::new(self.root, Self::TURN_RNG_LABEL, index as u64);
        Some(self.turn_count(&mut rng))
    }

    fn compose<T: TokenizerProtocol>(
        &mut self,
        index: usize,
        tokenizer: &T,
    ) -> Result<Conversation, PluginError> {
        // Without a deviation, every conversation has `mean` turns (rankings one).
        let per = match self.rankings {
            Some(_) => 1,
            None => u64::from(self.turns.mean),
        };
        self.compose_at(index, (index as u64).saturating_mul(per), tokenizer)
    }
}

/// `max(1, round(Normal(mean, stddev)))`; exactly `max(1, round(mean))` when stddev is 0.
#[derive(Debug, Clone)]
struct LengthDistribution {
    mean: f64,
    normal: Option<Normal<f64>>,
}

impl LengthDistribution {
    fn new(mean: f64, stddev: f64) -> Result<Self, PluginError> {
        let normal = if stddev > 0.0 {
            Some(Normal::new(mean, stddev).map_err(|e| {
                PluginError::Config(format!(
                    "invalid length distribution ({mean}, {stddev}): {e}"
                ))
            })?)
        } else {
            None
        };
        Ok(LengthDistribution { mean, normal })
    }

    /// [`new`](Self::new) for a `FLAG-mean`/`FLAG-stddev` pair, rejecting a stddev that
    /// is negative or not a number.
    fn checked(flag: &str, mean: f64, stddev: f64) -> Result<Self, PluginError> {
        if !stddev.is_finite() || stddev < 0.0 {
            return Err(PluginError::Config(format!(
                "{flag}-stddev must be a non-negative number, got {stddev}"
            )));
        }
        Self::new(mean, stddev)
    }

    fn sample(&self, rng: &mut StdRng) -> u32 {
        let value = match &self.normal {
            Some(normal) => normal.sample(rng),
            None => self.mean,
        };
        // `as` saturates; NaN becomes 0 and then 1.
        (value.round() as u32).max(1)
    }
}

/// The words prompts are made of, and whether their token counts add up. Trace loaders
/// use it too, for prompts whose blocks must repeat exactly (`loaders`).
pub(crate) struct WordList {
    /// Every word is one token and words never merge across boundaries, so a prompt of N
    /// words is N tokens without counting.
    pub(crate) additive: bool,
    /// The words back to back, and each one's `(start, end)` in it: prompts copy from one
    /// small buffer instead of chasing a heap pointer per word.
    flat: String,
    spans: Vec<(u32, u32)>,
    /// The words prompts draw from (the first [`PROMPT_WORDS`]), each in a slot of
    /// [`SLOT`] bytes: the word, spaces, and its length as the last byte (0 for a word too
    /// long for the slot). A prompt copies whole slots, a fixed-size copy the compiler
    /// inlines, and cuts the text back to the word: a copy of each word's own length was
    /// a library call per word. Every byte is a whole character, so each slot is a `str`.
    slots: String,
}

/// Bytes of one word slot in [`WordList::slots`].
const SLOT: usize = 16;

impl WordList {
    fn from_words(words: &[String], additive: bool) -> Self {
        let mut flat = String::with_capacity(words.iter().map(String::len).sum());
        let mut spans = Vec::with_capacity(words.len());
        for word in words {
            let start = flat.len();
            flat.push_str(word);
            // Word lists are vocabulary-sized (under a megabyte), far below u32::MAX.
            spans.push((start as u32, flat.len() as u32));
        }
        let mut slots = String::with_capacity(words.len().min(PROMPT_WORDS) * SLOT);
        for word in words.iter().take(PROMPT_WORDS) {
            // The length byte is an ASCII control character: the slot stays UTF-8.
            let (text, len) = match word.len() {
                len @ 1..SLOT => (word.as_str(), len),
                _ => ("", 0),
            };
            slots.push_str(text);
            slots.extend(std::iter::repeat_n(' ', SLOT - 1 - text.len()));
            slots.push(char::from(len as u8));
        }
        WordList {
            additive,
            flat,
            spans,
            slots,
        }
    }

    /// The words, in list order (the tokenizer's tests regenerate the shipped list from it).
    #[cfg(test)]
    pub(crate) fn words(&self) -> impl Iterator<Item = &str> {
        self.spans
            .iter()
            .map(|&(start, end)| &self.flat[start as usize..end as usize])
    }

    pub(crate) fn new<T: TokenizerProtocol>(tokenizer: &T, rng: &mut StdRng) -> Self {
        match tokenizer.plain_words() {
            Some(list) => {
                let words: Vec<String> = list
                    .lines()
                    .filter(|w| !w.is_empty())
                    .map(str::to_owned)
                    .collect();
                Self::from_words(&words, true)
            }
            None => Self::derive(tokenizer, rng),
        }
    }

    /// Builds the list from the vocabulary: every word-shaped token that re-encodes as
    /// itself, and whether concatenations count additively.
    pub(crate) fn derive<T: TokenizerProtocol>(tokenizer: &T, rng: &mut StdRng) -> Self {
        let mut words: Vec<String> = (0..tokenizer.vocab_size())
            .map(|id| tokenizer.decode(&[id]))
            .filter(|text| is_plain_word(text))
            .collect();
        // Some vocabularies hold word-shaped tokens that re-encode differently.
        words.retain(|word| tokenizer.count(word) == 1);
        if words.is_empty() {
            tracing::debug!("tokenizer has no plain word tokens; using the fallback word list");
            let words: Vec<String> = FALLBACK_WORDS.iter().map(|w| (*w).to_owned()).collect();
            return Self::from_words(&words, false);
        }
        let additive = Self::check_additive(&words, tokenizer, rng);
        if !additive {
            tracing::debug!("word tokens merge when concatenated; counting every prompt");
        }
        Self::from_words(&words, additive)
    }

    /// One long random sequence of every word (with repeats) stands in for all prompts: a
    /// tokenizer whose pre-tokenizer splits words apart passes it, and one that merges
    /// neighbours almost surely fails it.
    fn check_additive<T: TokenizerProtocol>(
        words: &[String],
        tokenizer: &T,
        rng: &mut StdRng,
    ) -> bool {
        let mut sample = String::new();
        let n = words.len() + 4096;
        for i in 0..n {
            let word = if i < words.len() {
                &words[i]
            } else {
                &words[rng.random_range(0..words.len())]
            };
            sample.push_str(word);
        }
        tokenizer.count(&sample) == n
    }

    /// A prompt of `target` tokens and its measured length.
    pub(crate) fn prompt<T: TokenizerProtocol>(
        &self,
        target: u32,
        tokenizer: &T,
        rng: &mut StdRng,
    ) -> (String, u32) {
        self.prompt_after("", 0, target, tokenizer, rng)
    }

    /// `prefix` (of `prefix_tokens` tokens) followed directly by `target` tokens of words,
    /// and the whole text's measured length. When words merge, the words after the prefix
    /// are corrected until the whole counts `prefix_tokens + target`, as AIPerf corrects
    /// the joined token sequence of a prefix and a prompt.
    pub(crate) fn prompt_after<T: TokenizerProtocol>(
        &self,
        prefix: &str,
        prefix_tokens: u32,
        target: u32,
        tokenizer: &T,
        rng: &mut StdRng,
    ) -> (String, u32) {
        let words = target as usize;
        let goal = prefix_tokens as usize + words;
        // Room for the last word's whole slot (see `WordList::slots`) before it is cut.
        let mut text = String::with_capacity(prefix.len() + words * 8 + SLOT);
        text.push_str(prefix);
        let mut ends = Vec::with_capacity(if self.additive { 0 } else { words });
        self.push_words(&mut text, &mut ends, words, rng);
        if self.additive {
            return (text, u32::try_from(goal).unwrap_or(u32::MAX));
        }
        let mut count = tokenizer.count(&text);
        for _ in 0..MAX_FIXUP_ROUNDS {
            if count == goal {
                break;
            }
            if count < goal {
                self.push_words(&mut text, &mut ends, goal - count, rng);
            } else if !ends.is_empty() {
                // Each word is at least one token; dropping `excess` words cannot
                // undershoot by more than the merges they took part in. The prefix stays.
                let keep = ends.len().saturating_sub(count - goal).max(1);
                ends.truncate(keep);
                text.truncate(ends[keep - 1]);
            }
            count = tokenizer.count(&text);
        }
        (text, u32::try_from(count).unwrap_or(u32::MAX))
    }

    pub(crate) fn push_words(
        &self,
        text: &mut String,
        ends: &mut Vec<usize>,
        n: usize,
        rng: &mut StdRng,
    ) {
        let track = !self.additive;
        // Composing 10,000 prompts of 550 words is millions of draws before the first
        // request can go: one draw from the seeded stream keys a cheap generator for the
        // rest of this call, which keeps prompts reproducible at a fraction of the cost.
        let mut picks = WordPicks::new(rng.random(), self.slots.len() / SLOT);
        for _ in 0..n {
            let index = picks.next_index();
            let slot = &self.slots[index * SLOT..(index + 1) * SLOT];
            match slot.as_bytes()[SLOT - 1] {
                0 => {
                    let (start, end) = self.spans[index];
                    text.push_str(&self.flat[start as usize..end as usize]);
                }
                len => {
                    let end = text.len() + usize::from(len);
                    text.push_str(slot);
                    text.truncate(end);
                }
            }
            if track {
                ends.push(text.len());
            }
        }
    }
}

/// Uniform indices below `len` from wyrand (a 64-bit multiply-xorshift generator), mapped
/// by a widening multiply; with at most a few hundred thousand words the bias is below
/// 2^-45.
struct WordPicks {
    state: u64,
    len: u64,
}

impl WordPicks {
    fn new(seed: u64, len: usize) -> Self {
        WordPicks {
            state: seed,
            len: len as u64,
        }
    }

    fn next_index(&mut self) -> usize {
        self.state = self.state.wrapping_add(0xa076_1d64_78bd_642f);
        let mixed = u128::from(self.state) * u128::from(self.state ^ 0xe703_7ed1_a0b4_28db);
        let random = (mixed as u64) ^ ((mixed >> 64) as u64);
        ((u128::from(random) * u128::from(self.len)) >> 64) as usize
    }
}

/// A space followed by 3-10 lower-case ASCII letters, and not a word nobody wants to find
/// in a prompt they share (see [`UNWANTED_WORDS`]).
fn is_plain_word(text: &str) -> bool {
    let Some(letters) = text.strip_prefix(' ') else {
        return false;
    };
    (3..=10).contains(&letters.len())
        && letters.bytes().all(|b| b.is_ascii_lowercase())
        && !UNWANTED_WORDS.contains(&letters)
}

/// Sexual, profane and slur tokens of the vocabularies (several languages): synthetic
/// prompts end up in `inputs.json`, in server logs and in bug reports, and a benchmark
/// has no use for these words. Vocabulary tokens are whole words here, so an exact match
/// suffices; the list is what the shipped o200k and cl100k word lists held.
const UNWANTED_WORDS: &[&str] = &[
    "anal", "ass", "asshole", "bastard", "bdsm", "bitch", "bitches", "blowjob", "boob", "boobs",
    "cazzo", "chinga", "cialis", "cock", "cocks", "cum", "cunt", "dick", "dicks", "dildo",
    "erotic", "erotica", "erotik", "escort", "escorts", "fag", "faggot", "fetish", "fick",
    "ficken", "fuck", "fucked", "fucker", "fucking", "fucks", "hentai", "horny", "jizz", "masturb",
    "merda", "mierda", "milf", "naked", "nigga", "nigger", "nude", "nudes", "orgasm", "pendejo",
    "penis", "porn", "porno", "pornhub", "porra", "puta", "putain", "pute", "pussy", "rape",
    "raped", "scheisse", "seks", "sex", "sexe", "sexo", "sexual", "sexy", "shit", "shitty", "slut",
    "sluts", "tits", "vagina", "verga", "viagra", "whore", "xnxx", "xvideos", "xxx",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_config::{config, context, EMPTY_ENTRY};
    use crate::tokenizer::{TiktokenTokenizer, Vocabulary};

    /// A dataset for these flags, with seed 42 unless they give one.
    fn compose(args: &[&str]) -> Vec<Conversation> {
        let mut all = vec!["-m", "m"];
        if !args.contains(&"--random-seed") {
            all.extend_from_slice(&["--random-seed", "42"]);
        }
        all.extend_from_slice(args);
        let cfg = config(&all);
        let mut composer = SyntheticComposer::create(&context(&cfg, &EMPTY_ENTRY)).unwrap();
        composer
            .create_dataset(&TiktokenTokenizer::new(Vocabulary::O200kBase))
            .unwrap()
    }

    /// Turn counts, and each later turn's delay, of every conversation.
    fn shape(dataset: &[Conversation]) -> Vec<Vec<Option<f64>>> {
        dataset
            .iter()
            .map(|c| c.turns.iter().map(|t| t.delay_ms).collect())
            .collect()
    }

    #[test]
    fn multi_turn_counts_and_delays_are_seeded() {
        let args = [
            "--isl",
            "8",
            "--num-dataset-entries",
            "12",
            "--conversation-turn-mean",
            "3",
            "--conversation-turn-stddev",
            "2",
            "--conversation-turn-delay-mean",
            "50",
            "--conversation-turn-delay-stddev",
            "10",
            "--conversation-turn-delay-ratio",
            "0.5",
        ];
        let dataset = compose(&args);
        let counts: Vec<usize> = dataset.iter().map(|c| c.turns.len()).collect();
        // Seed 42's draws: a regression guard for the composer's streams.
        assert_eq!(counts, [5, 3, 3, 2, 6, 6, 5, 2, 3, 6, 2, 6]);
        for conversation in &dataset {
            assert_eq!(
                conversation.turns[0].delay_ms, None,
                "first turns never wait"
            );
            for turn in &conversation.turns[1..] {
                let delay = turn.delay_ms.expect("later turns wait");
                // Whole milliseconds drawn, then halved.
                assert_eq!((delay * 2.0).fract(), 0.0, "{delay}");
                assert!((5.0..=60.0).contains(&delay), "{delay}");
                assert_eq!(turn.input_tokens, Some(8));
            }
        }
        // Deterministic for a seed, different for another.
        assert_eq!(compose(&args), dataset);
        let mut other = args.to_vec();
        other.extend_from_slice(&["--random-seed", "43"]);
        assert_ne!(shape(&compose(&other)), shape(&dataset));
    }

    /// Each turn's model, conversation by conversation.
    fn models(dataset: &[Conversation]) -> Vec<Vec<Option<&str>>> {
        dataset
            .iter()
            .map(|c| c.turns.iter().map(|t| t.model.as_deref()).collect())
            .collect()
    }

    #[test]
    fn turns_get_models_round_robin_in_the_order_they_are_composed() {
        let args = [
            "--isl",
            "4",
            "--num-dataset-entries",
            "3",
            "--conversation-turn-mean",
            "2",
        ];
        let compose_for = |models: &str, strategy: &[&str]| {
            let mut all = vec!["-m", models, "--random-seed", "42"];
            all.extend_from_slice(&args);
            all.extend_from_slice(strategy);
            let cfg = config(&all);
            SyntheticComposer::create(&context(&cfg, &EMPTY_ENTRY))
                .unwrap()
                .create_dataset(&TiktokenTokenizer::new(Vocabulary::O200kBase))
                .unwrap()
        };
        let several = compose_for("a,b,c,d", &[]);
        let (a, b, c, d) = (Some("a"), Some("b"), Some("c"), Some("d"));
        assert_eq!(models(&several), [[a, b], [c, d], [a, b]]);
        // One model stays implied; the models draw from no stream the prompts use.
        let one = compose_for("a", &[]);
        assert_eq!(models(&one), [[None, None], [None, None], [None, None]]);
        let random = compose_for("a,b,c,d", &["--model-selection-strategy", "random"]);
        for dataset in [&several, &random] {
            let texts = |d: &[Conversation]| -> Vec<String> {
                d.iter()
                    .flat_map(|c| &c.turns)
                    .map(|t| t.texts.join(" "))
                    .collect()
            };
            assert_eq!(texts(dataset), texts(&one));
        }
        assert_eq!(
            models(&random),
            models(&compose_for(
                "a,b,c,d",
                &["--model-selection-strategy", "random"]
            ))
        );
    }

    #[test]
    fn exact_turns_and_delays_without_deviation() {
        let dataset = compose(&[
            "--isl",
            "8",
            "--num-dataset-entries",
            "5",
            "--session-turns-mean",
            "3",
            "--session-turn-delay-mean",
            "40",
            "--session-delay-ratio",
            "1.5",
        ]);
        for conversation in &dataset {
            assert_eq!(
                conversation
                    .turns
                    .iter()
                    .map(|t| t.delay_ms)
                    .collect::<Vec<_>>(),
                [None, Some(60.0), Some(60.0)]
            );
        }
        // A mean below 1 ms still waits 1 ms, AIPerf's minimum draw; no mean, no delay.
        let short = compose(&[
            "--num-dataset-entries",
            "1",
            "--conversation-turn-mean",
            "2",
            "--conversation-turn-delay-mean",
            "0.4",
        ]);
        assert_eq!(short[0].turns[1].delay_ms, Some(1.0));
        let none = compose(&[
            "--num-dataset-entries",
            "1",
            "--conversation-turn-mean",
            "2",
        ]);
        assert_eq!(none[0].turns[1].delay_ms, None);
    }

    #[test]
    fn delays_and_turn_counts_do_not_change_the_prompts() {
        let texts = |extra: &[&str]| -> Vec<String> {
            let mut args = vec!["--isl", "16"];
            args.extend_from_slice(extra);
            compose(&args)
                .into_iter()
                .flat_map(|c| c.turns.into_iter().map(|t| t.texts[0].clone()))
                .collect()
        };
        let plain = texts(&[
            "--num-dataset-entries",
            "4",
            "--conversation-turn-mean",
            "2",
        ]);
        let delayed = texts(&[
            "--num-dataset-entries",
            "4",
            "--conversation-turn-mean",
            "2",
            "--conversation-turn-delay-mean",
            "100",
            "--conversation-turn-delay-stddev",
            "30",
        ]);
        assert_eq!(plain.len(), 8);
        assert_eq!(plain, delayed);
        // Each conversation's prompts are its own stream's: its first turn is what a
        // single-turn dataset's same conversation says.
        let firsts: Vec<String> = plain.iter().step_by(2).cloned().collect();
        assert_eq!(texts(&["--num-dataset-entries", "4"]), firsts);
    }

    /// Conversation `i` made alone, by a fresh composer, is the dataset's `i`-th: what
    /// lets the engine compose a large dataset while the run goes.
    #[test]
    fn each_conversation_can_be_made_alone() {
        let cases: &[&[&str]] = &[
            &["--isl", "12", "--osl", "5", "--num-dataset-entries", "9"],
            &[
                "--isl",
                "10",
                "--isl-stddev",
                "3",
                "--num-dataset-entries",
                "9",
                "--conversation-turn-mean",
                "3",
                "--conversation-turn-stddev",
                "1",
                "--conversation-turn-delay-mean",
                "20",
                "--conversation-turn-delay-stddev",
                "5",
            ],
            &[
                "-m",
                "a,b,c",
                "--isl",
                "6",
                "--num-dataset-entries",
                "7",
                "--conversation-turn-mean",
                "2",
            ],
            &[
                "-m",
                "a,b,c",
                "--model-selection-strategy",
                "random",
                "--isl",
                "6",
                "--num-dataset-entries",
                "7",
                "--conversation-turn-mean",
                "2",
                "--conversation-turn-stddev",
                "1",
            ],
            &[
                "--isl",
                "6",
                "--num-dataset-entries",
                "6",
                "--prompt-prefix-pool-size",
                "3",
                "--prompt-prefix-length",
                "4",
                "--prompt-batch-size",
                "2",
            ],
            &[
                "--isl",
                "6",
                "--num-dataset-entries",
                "6",
                "--shared-system-prompt-length",
                "5",
                "--user-context-prompt-length",
                "7",
                "--image-width-mean",
                "4",
                "--image-height-mean",
                "4",
                "--seq-dist",
                "6,3:50;9,4:50",
            ],
            &[
                "--endpoint-type",
                "cohere_rankings",
                "--num-dataset-entries",
                "5",
                "--rankings-passages-mean",
                "3",
                "--rankings-passages-stddev",
                "1",
            ],
        ];
        let tokenizer = TiktokenTokenizer::new(Vocabulary::O200kBase);
        for args in cases {
            let whole = compose(args);
            let mut all = vec!["-m", "m", "--random-seed", "42"];
            all.extend_from_slice(args);
            let cfg = config(&all);
            let mut alone = SyntheticComposer::create(&context(&cfg, &EMPTY_ENTRY)).unwrap();
            assert_eq!(alone.entries(), Some(whole.len()), "{args:?}");
            // Backwards, so no conversation is made after the ones before it.
            for index in (0..whole.len()).rev() {
                // Counted alone, before it is made, as a user-centric run plans its users.
                let turns = u32::try_from(whole[index].turns.len()).ok();
                assert_eq!(alone.turns(index), turns, "{args:?}: conversation {index}");
                let conversation = alone.compose(index, &tokenizer).unwrap();
                assert_eq!(conversation, whole[index], "{args:?}: conversation {index}");
            }
        }
        // The counts that vary above (three turns give or take one) do vary.
        let varied: std::collections::BTreeSet<usize> =
            compose(cases[1]).iter().map(|c| c.turns.len()).collect();
        assert!(varied.len() > 1, "{varied:?}");
    }

    /// A round robin over models meets turn counts that vary: a conversation's models
    /// depend on every conversation before it, so the dataset is made whole.
    #[test]
    fn a_round_robin_over_varying_turns_is_made_whole() {
        let args = [
            "-m",
            "a,b",
            "--random-seed",
            "1",
            "--num-dataset-entries",
            "4",
            "--conversation-turn-mean",
            "2",
            "--conversation-turn-stddev",
            "1",
        ];
        let cfg = config(&args);
        let composer = SyntheticComposer::create(&context(&cfg, &EMPTY_ENTRY)).unwrap();
        assert_eq!(composer.entries(), None);
        let dataset = compose(&args[..]);
        let models: Vec<&str> = dataset
            .iter()
            .flat_map(|c| &c.turns)
            .filter_map(|t| t.model.as_deref())
            .collect();
        // `compose` names `m` first.
        let expected: Vec<&str> = (0..models.len()).map(|i| ["m", "a", "b"][i % 3]).collect();
        assert_eq!(models, expected);
    }

    #[test]
    fn conversation_num_sets_the_entries_and_rankings_stay_single_turn() {
        let dataset = compose(&[
            "--conversation-num",
            "7",
            "--request-count",
            "3",
            "--conversation-turn-mean",
            "2",
        ]);
        assert_eq!(dataset.len(), 7);
        assert!(dataset.iter().all(|c| c.turns.len() == 2));
        let cfg = config(&[
            "-m",
            "m",
            "--endpoint-type",
            "nim_rankings",
            "--conversation-turn-mean",
            "4",
            "--num-dataset-entries",
            "3",
        ]);
        let mut composer = SyntheticComposer::create(&context(&cfg, &EMPTY_ENTRY)).unwrap();
        let rankings = composer
            .create_dataset(&TiktokenTokenizer::new(Vocabulary::O200kBase))
            .unwrap();
        assert!(rankings.iter().all(|c| c.turns.len() == 1));
        for bad in [
            ["--conversation-turn-mean", "0.5"],
            ["--conversation-turn-delay-ratio=-1", "--isl=8"],
            ["--conversation-turn-delay-stddev", "NaN"],
        ] {
            let mut args = vec!["-m", "m"];
            args.extend_from_slice(&bad);
            let cfg = config(&args);
            assert!(SyntheticComposer::create(&context(&cfg, &EMPTY_ENTRY)).is_err());
        }
    }

    #[test]
    fn word_picks_stay_in_range_and_spread_evenly() {
        let mut picks = WordPicks::new(7, 10);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            counts[picks.next_index()] += 1;
        }
        // 10,000 expected per bucket; one sigma is about 95.
        for c in counts {
            assert!((9_500..=10_500).contains(&c), "{counts:?}");
        }
        let mut one = WordPicks::new(u64::MAX, 1);
        assert!((0..100).all(|_| one.next_index() == 0));
    }

    /// Words copied by their slot and words too long for one come out whole and alone,
    /// whichever order they are drawn in.
    #[test]
    fn prompts_are_made_of_whole_words_of_any_length() {
        let words: Vec<String> = [
            "ab",
            "fifteen-bytes..",
            "sixteen-bytes...",
            "üüüüüüüüüü",
            "z",
        ]
        .map(str::to_owned)
        .to_vec();
        let list = WordList::from_words(&words, false);
        let mut rng = crate::rng::stream_rng(Some(3), "test", 0);
        let (mut text, mut ends) = ("pre".to_owned(), vec![]);
        list.push_words(&mut text, &mut ends, 400, &mut rng);
        let mut seen = std::collections::BTreeSet::new();
        let mut start = "pre".len();
        for end in ends {
            let word = &text[start..end];
            assert!(words.iter().any(|w| w == word), "{word:?} in {text:?}");
            seen.insert(word.to_owned());
            start = end;
        }
        assert_eq!((start, seen.len()), (text.len(), words.len()));
    }

    #[test]
    fn positive_normal_integers() {
        let mut rng = crate::rng::stream_rng(Some(1), "test", 0);
        assert_eq!(positive_normal_integer(4.0, 0.0, &mut rng), 4);
        assert_eq!(positive_normal_integer(0.0, 0.0, &mut rng), 1);
        let draws: Vec<u32> = (0..10_000)
            .map(|_| positive_normal_integer(10.0, 3.0, &mut rng))
            .collect();
        assert!(draws.iter().all(|&d| d >= 1));
        let mean = draws.iter().map(|&d| f64::from(d)).sum::<f64>() / draws.len() as f64;
        // ceil() adds half a unit on average; negatives are redrawn (rare at 3.3 sigma).
        assert!((mean - 10.5).abs() < 0.1, "{mean}");
        // Far below zero: redrawn until non-negative, so still small and positive.
        assert!((0..100).all(|_| positive_normal_integer(0.0, 5.0, &mut rng) >= 1));
    }

    #[test]
    fn prompts_have_exact_token_counts() {
        let tokenizer = TiktokenTokenizer::new(Vocabulary::O200kBase);
        let dataset = compose(&["--isl", "64", "--num-dataset-entries", "20"]);
        assert_eq!(dataset.len(), 20);
        for (i, conversation) in dataset.iter().enumerate() {
            assert_eq!(conversation.session_id, format!("session_{i:06}"));
            let turn = &conversation.turns[0];
            assert_eq!(turn.input_tokens, Some(64));
            assert_eq!(tokenizer.count(&turn.texts[0]), 64);
            assert_eq!(turn.max_tokens, None);
        }
    }

    /// AIPerf names unseeded synthetic sessions with UUIDs. Conversation `i` gets the
    /// run's id `i` whichever way it is made, since the records of a dataset composed on
    /// demand name it from its index alone.
    #[test]
    fn unseeded_conversations_are_named_by_uuids_of_their_index() {
        let tokenizer = TiktokenTokenizer::new(Vocabulary::O200kBase);
        let cfg = config(&["-m", "m", "--isl", "4", "--num-dataset-entries", "3"]);
        let make = || SyntheticComposer::create(&context(&cfg, &EMPTY_ENTRY)).unwrap();
        let whole = make().create_dataset(&tokenizer).unwrap();
        let ids = SessionIds::for_run(None);
        for (i, conversation) in whole.iter().enumerate() {
            assert_eq!(conversation.session_id, ids.id(i));
            assert_eq!(conversation.session_id.len(), 36);
            let alone = make().compose(i, &tokenizer).unwrap();
            assert_eq!(alone.session_id, conversation.session_id);
        }
        assert_ne!(whole[0].session_id, whole[1].session_id);
    }

    #[test]
    fn lengths_follow_the_distribution_and_stay_exact() {
        let tokenizer = TiktokenTokenizer::new(Vocabulary::O200kBase);
        let dataset = compose(&[
            "--isl",
            "100",
            "--isl-stddev",
            "30",
            "--osl",
            "50",
            "--osl-stddev",
            "10",
            "--num-dataset-entries",
            "300",
        ]);
        let lengths: Vec<u32> = dataset
            .iter()
            .map(|c| c.turns[0].input_tokens.unwrap())
            .collect();
        assert!(lengths.iter().all(|&n| n >= 1));
        let mean = lengths.iter().map(|&n| f64::from(n)).sum::<f64>() / 300.0;
        assert!((mean - 100.0).abs() < 6.0, "mean {mean}");
        assert!(
            lengths.iter().any(|&n| n != lengths[0]),
            "stddev must vary lengths"
        );
        for c in &dataset {
            let turn = &c.turns[0];
            assert_eq!(
                tokenizer.count(&turn.texts[0]) as u32,
                turn.input_tokens.unwrap()
            );
            assert!(turn.max_tokens.unwrap() >= 1);
        }
    }

    #[test]
    fn exact_output_tokens_without_stddev() {
        let dataset = compose(&["--isl", "8", "--osl", "16", "--num-dataset-entries", "3"]);
        assert!(dataset.iter().all(|c| c.turns[0].max_tokens == Some(16)));
    }

    #[test]
    fn entries_follow_aiperfs_rule() {
        let entries = |args: &[&str]| compose(args).len();
        assert_eq!(entries(&["--isl", "4", "--request-count", "5"]), 5);
        // One unique prompt per request, as AIPerf 0.13 composes them.
        assert_eq!(entries(&["--isl", "4", "--request-count", "500"]), 500);
        assert_eq!(entries(&["--isl", "4"]), 100);
        let sessions = [
            "--isl",
            "4",
            "--conversation-num",
            "5",
            "--request-count",
            "9",
        ];
        assert_eq!(entries(&sessions), 5);
        let given = [
            "--isl",
            "4",
            "--num-dataset-entries",
            "7",
            "--conversation-num",
            "5",
        ];
        assert_eq!(entries(&given), 7);
    }

    #[test]
    fn seeded_datasets_repeat() {
        let args = ["--isl", "32", "--num-dataset-entries", "4"];
        assert_eq!(compose(&args), compose(&args));
    }

    #[test]
    fn zero_mean_gives_one_token_prompts() {
        let dataset = compose(&["--isl", "0", "--num-dataset-entries", "2"]);
        assert!(dataset.iter().all(|c| c.turns[0].input_tokens == Some(1)));
    }

    /// Every turn's (ISL, OSL): its prompt's tokens and its `max_tokens`.
    fn lengths(dataset: &[Conversation]) -> Vec<(u32, u32)> {
        let tokenizer = TiktokenTokenizer::new(Vocabulary::O200kBase);
        dataset
            .iter()
            .flat_map(|c| &c.turns)
            .map(|t| {
                let isl = t.input_tokens.expect("synthetic turns count their tokens");
                assert_eq!(tokenizer.count(&t.texts[0]) as u32, isl, "prompt is exact");
                (isl, t.max_tokens.expect("the OSL is the turn's max_tokens"))
            })
            .collect()
    }

    fn mean(values: impl Iterator<Item = u32>) -> f64 {
        let values: Vec<f64> = values.map(f64::from).collect();
        values.iter().sum::<f64>() / values.len() as f64
    }

    #[test]
    fn seq_dist_pairs_are_drawn_per_turn_in_their_shares() {
        let dataset = compose(&[
            "--seq-dist",
            "16,4:20;48,12:30;80,20:50",
            // Replaced by the pairs, as in AIPerf.
            "--osl",
            "999",
            "--num-dataset-entries",
            "2000",
            "--conversation-turn-mean",
            "2",
        ]);
        let drawn = lengths(&dataset);
        assert_eq!(drawn.len(), 4000);
        // 4000 draws: a share's standard error is at most 0.8 points, so 3 points is
        // about four of them; the seed makes the outcome fixed.
        for (pair, share) in [((16, 4), 0.2), ((48, 12), 0.3), ((80, 20), 0.5)] {
            let seen = drawn.iter().filter(|&&d| d == pair).count() as f64 / 4000.0;
            assert!((seen - share).abs() < 0.03, "{pair:?}: {seen} of the turns");
        }
        assert!(drawn
            .iter()
            .all(|d| [(16, 4), (48, 12), (80, 20)].contains(d)));
        // Drawn per turn, not per conversation: the two turns of a conversation differ
        // with probability 1 - (0.2² + 0.3² + 0.5²) = 0.62.
        let mixed = dataset
            .iter()
            .filter(|c| c.turns[0].input_tokens != c.turns[1].input_tokens)
            .count() as f64
            / 2000.0;
        assert!(
            (mixed - 0.62).abs() < 0.05,
            "{mixed} of conversations mixed"
        );
        assert_eq!(
            dataset,
            compose(&[
                "--seq-dist",
                "16,4:20;48,12:30;80,20:50",
                "--osl",
                "999",
                "--num-dataset-entries",
                "2000",
                "--conversation-turn-mean",
                "2",
            ]),
            "seeded draws repeat"
        );
    }

    #[test]
    fn seq_dist_deviations_draw_positive_normal_integers() {
        let drawn = lengths(&compose(&[
            "--seq-dist",
            "[(100|10,50|5):100]",
            "--num-dataset-entries",
            "2000",
        ]));
        // ceil() of a Normal(100, 10) draw averages 100.5; the mean of 2000 draws has a
        // standard error of 0.22 (ISL) and 0.11 (OSL).
        let (isl, osl) = (
            mean(drawn.iter().map(|d| d.0)),
            mean(drawn.iter().map(|d| d.1)),
        );
        assert!((isl - 100.5).abs() < 1.0, "ISL mean {isl}");
        assert!((osl - 50.5).abs() < 0.5, "OSL mean {osl}");
        let spread = (drawn
            .iter()
            .map(|d| (f64::from(d.0) - isl).powi(2))
            .sum::<f64>()
            / 2000.0)
            .sqrt();
        assert!((spread - 10.0).abs() < 1.0, "ISL deviation {spread}");
        // A deviation far above the mean still yields lengths of at least 1.
        let low = lengths(&compose(&[
            "--seq-dist",
            "2|50,1|50:100",
            "--num-dataset-entries",
            "300",
        ]));
        assert!(low.iter().all(|&(i, o)| i >= 1 && o >= 1));
        assert!(
            low.iter().any(|&(i, _)| i > 2),
            "the deviation must vary lengths"
        );
    }

    /// The lowest, highest and mean ISL and OSL of `args`' 3000 turns.
    fn window_of(args: &[&str]) -> ((u32, u32, f64), (u32, u32, f64)) {
        let drawn = lengths(&compose(
            &[args, &["--num-dataset-entries", "3000"]].concat(),
        ));
        let summary = |values: Vec<u32>| {
            let (low, high) = (values.iter().min().copied(), values.iter().max().copied());
            (
                low.unwrap_or(0),
                high.unwrap_or(0),
                mean(values.into_iter()),
            )
        };
        (
            summary(drawn.iter().map(|d| d.0).collect()),
            summary(drawn.iter().map(|d| d.1).collect()),
        )
    }

    #[test]
    fn range_ratio_windows_are_drawn_uniformly() {
        // 3000 uniform draws reach both ends of a window of 61 values but for a chance
        // of 2 * (60/61)^3000 (about 1e-21); the mean's standard error is 0.32 there.
        let ((isl_low, isl_high, isl_mean), (osl_low, osl_high, osl_mean)) =
            window_of(&["--isl", "100", "--osl", "20", "--random-range-ratio", "0.3"]);
        assert_eq!((isl_low, isl_high, osl_low, osl_high), (70, 130, 14, 26));
        assert!((isl_mean - 100.0).abs() < 1.5, "ISL mean {isl_mean}");
        assert!((osl_mean - 20.0).abs() < 0.5, "OSL mean {osl_mean}");
        let ((isl_low, isl_high, _), (osl_low, osl_high, _)) = window_of(&[
            "--isl",
            "100",
            "--osl",
            "20",
            "--random-range-ratio",
            r#"{"input": 0.5, "output": 0.1}"#,
        ]);
        assert_eq!((isl_low, isl_high, osl_low, osl_high), (50, 150, 18, 22));
        let ((isl_low, isl_high, isl_mean), (osl_low, osl_high, _)) = window_of(&[
            "--isl",
            "100",
            "--osl",
            "20",
            "--random-range-ratio",
            "0.3",
            "--random-corpus-style",
            "sglang",
        ]);
        assert_eq!((isl_low, isl_high, osl_low, osl_high), (30, 100, 6, 20));
        assert!((isl_mean - 65.0).abs() < 1.5, "ISL mean {isl_mean}");
    }

    #[test]
    fn refused_length_flags_are_config_errors() {
        let cfg = config(&["-m", "m", "--random-range-ratio", "0.3"]);
        match SyntheticComposer::create(&context(&cfg, &EMPTY_ENTRY)) {
            Err(PluginError::Config(message)) => assert_eq!(
                message,
                "--random-range-ratio requires --osl to be set explicitly. There is no safe \
                 default when a ratio window is requested."
            ),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn zero_entries_is_a_config_error() {
        let cfg = config(&["-m", "m", "--num-dataset-entries", "0"]);
        assert!(matches!(
            SyntheticComposer::create(&context(&cfg, &EMPTY_ENTRY)),
            Err(PluginError::Config(_))
        ));
    }

    /// A tokenizer whose words merge: every pair of adjacent words is one token.
    struct PairTokenizer;

    impl TokenizerProtocol for PairTokenizer {
        fn count(&self, text: &str) -> usize {
            text.split(' ')
                .filter(|w| !w.is_empty())
                .count()
                .div_ceil(2)
        }
        fn encode(&self, _text: &str) -> Vec<u32> {
            Vec::new()
        }
        fn decode(&self, tokens: &[u32]) -> String {
            match tokens {
                [0] => " alpha".into(),
                [1] => " beta".into(),
                _ => String::new(),
            }
        }
        fn vocab_size(&self) -> u32 {
            3
        }
    }

    #[test]
    fn merging_tokenizers_are_counted_and_corrected() {
        let cfg = config(&["-m", "m", "--isl", "10", "--num-dataset-entries", "3"]);
        let mut composer = SyntheticComposer::create(&context(&cfg, &EMPTY_ENTRY)).unwrap();
        for c in composer.create_dataset(&PairTokenizer).unwrap() {
            let turn = &c.turns[0];
            assert_eq!(PairTokenizer.count(&turn.texts[0]), 10);
            assert_eq!(turn.input_tokens, Some(10));
        }
    }

    #[test]
    fn rankings_endpoints_get_queries_and_passages() {
        let tokenizer = TiktokenTokenizer::new(Vocabulary::O200kBase);
        let dataset = compose(&[
            "--endpoint-type",
            "nim_rankings",
            "--rankings-passages-mean",
            "3",
            "--rankings-query-prompt-token-mean",
            "5",
            "--rankings-passages-prompt-token-mean",
            "9",
            "--num-dataset-entries",
            "4",
        ]);
        assert_eq!(dataset.len(), 4);
        for c in &dataset {
            let turn = &c.turns[0];
            assert_eq!(turn.texts.len(), 4);
            assert_eq!(
                turn.text_names,
                ["query", "passages", "passages", "passages"]
            );
            assert_eq!(tokenizer.count(&turn.texts[0]), 5);
            assert!(turn
                .texts_named("passages")
                .all(|p| tokenizer.count(p) == 9));
            assert_eq!(
                turn.input_tokens,
                Some(tokenizer.count(&turn.texts.join(" ")) as u32)
            );
            assert_eq!(turn.max_tokens, None);
        }
        // The explicit composer does the same for any endpoint.
        let cfg = config(&[
            "-m",
            "m",
            "--random-seed",
            "1",
            "--num-dataset-entries",
            "2",
        ]);
        let mut composer = SyntheticRankingsComposer::create(&context(&cfg, &EMPTY_ENTRY)).unwrap();
        let dataset = composer.create_dataset(&tokenizer).unwrap();
        // AIPerf 0.13's defaults when the flags are not given: a 32-token query and ten
        // passages of 128 tokens.
        for c in &dataset {
            let turn = &c.turns[0];
            assert_eq!(turn.text_names.len(), 11);
            assert_eq!(turn.text_names[0], "query");
            assert_eq!(tokenizer.count(&turn.texts[0]), 32);
            assert!(turn
                .texts_named("passages")
                .all(|p| tokenizer.count(p) == 128));
        }
    }

    /// `--prompt-batch-size`: each turn has that many prompts of its own, each of the
    /// asked length, and its input length counts them as sent (joined by a space).
    #[test]
    fn a_prompt_batch_is_several_prompts_per_turn() {
        let tokenizer = TiktokenTokenizer::new(Vocabulary::O200kBase);
        let batched = compose(&["--isl", "12", "-b", "3", "--num-dataset-entries", "4"]);
        for c in &batched {
            let turn = &c.turns[0];
            assert_eq!(turn.texts.len(), 3);
            assert!(
                turn.texts.iter().all(|t| tokenizer.count(t) == 12),
                "{turn:?}"
            );
            assert_ne!(turn.texts[0], turn.texts[1]);
            let joined = tokenizer.count(&turn.texts.join(" ")) as u32;
            assert_eq!(turn.input_tokens, Some(joined));
        }
    }

    #[test]
    fn images_and_audio_are_data_urls() {
        let plain = compose(&["--isl", "8", "--num-dataset-entries", "3"]);
        let with_media = compose(&[
            "--isl",
            "8",
            "--num-dataset-entries",
            "3",
            "--image-width-mean",
            "4",
            "--image-height-mean",
            "2",
            "--image-batch-size",
            "2",
            "--audio-length-mean",
            "0.1",
            "--audio-sample-rates",
            "8,16",
        ]);
        for (p, m) in plain.iter().zip(&with_media) {
            // Media draw from their own stream: the prompts do not change.
            assert_eq!(p.turns[0].texts, m.turns[0].texts);
            assert!(p.turns[0].images.is_empty() && p.turns[0].audios.is_empty());
            let turn = &m.turns[0];
            assert_eq!(turn.images.len(), 2);
            // JPEG unless told otherwise, as AIPerf 0.13 (base64 of FF D8 FF).
            assert!(turn.images[0].starts_with("data:image/jpeg;base64,/9j/"));
            assert_eq!(turn.audios.len(), 1);
            assert!(turn.audios[0].starts_with("data:audio/wav;base64,UklGR"));
            // The clip's length, for AIPerf's audio_duration and RTFx.
            assert_eq!(turn.audio_duration_s, Some(0.1));
            assert_eq!(p.turns[0].audio_duration_s, None);
        }
        let sized = ["--image-width-mean", "4", "--image-height-mean", "2"];
        let png = compose(&[&sized[..], &["--image-format", "PNG"]].concat());
        assert!(png[0].turns[0].images[0].starts_with("data:image/png;base64,iVBORw0KGgo"));
        let random = compose(
            &[
                &sized[..],
                &["--image-format", "random", "--num-dataset-entries", "40"],
            ]
            .concat(),
        );
        let jpegs = random
            .iter()
            .filter(|c| c.turns[0].images[0].starts_with("data:image/jpeg;"))
            .count();
        assert!((8..=32).contains(&jpegs), "{jpegs} of 40 images are JPEG");
        let cfg = config(&[
            "-m",
            "m",
            "--audio-length-mean",
            "1",
            "--audio-sample-rates",
            "0",
        ]);
        assert!(SyntheticComposer::create(&context(&cfg, &EMPTY_ENTRY)).is_err());
        let cfg = config(&["-m", "m", "--audio-length-mean", "0.0001"]);
        match SyntheticComposer::create(&context(&cfg, &EMPTY_ENTRY)) {
            Err(PluginError::Config(e)) => assert_eq!(
                e,
                "--audio-length-mean 0.0001: audio length must be at least 0.01 seconds"
            ),
            other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
        }
        let cfg = config(&[
            "-m",
            "m",
            "--image-width-stddev=-1",
            "--image-width-mean",
            "2",
            "--image-height-mean",
            "2",
        ]);
        assert!(SyntheticComposer::create(&context(&cfg, &EMPTY_ENTRY)).is_err());
    }

    /// The first `n` words of a prompt (each word of the shipped list is one token).
    fn first_words(text: &str, n: usize) -> String {
        text.split_inclusive(' ')
            .skip(1)
            .take(n)
            .fold(String::from(" "), |mut acc, w| {
                acc.push_str(w);
                acc
            })
            .trim_end()
            .to_owned()
    }

    #[test]
    fn first_turns_start_with_a_prefix_from_the_pool() {
        let tokenizer = TiktokenTokenizer::new(Vocabulary::O200kBase);
        let common = [
            "--isl",
            "16",
            "--num-dataset-entries",
            "20",
            "--conversation-turn-mean",
            "2",
        ];
        let plain = compose(&common);
        let args = [
            &common[..],
            &["--num-prefix-prompts", "3", "--prefix-prompt-length", "10"],
        ]
        .concat();
        let prefixed = compose(&args);
        let mut pool = std::collections::BTreeSet::new();
        for (p, c) in plain.iter().zip(&prefixed) {
            let (first, second) = (&c.turns[0], &c.turns[1]);
            // The prompts are the unprefixed run's, the prefix directly before them.
            let body = &p.turns[0].texts[0];
            let prefix = first.texts[0]
                .strip_suffix(body.as_str())
                .expect("the prompt follows the prefix");
            assert_eq!(tokenizer.count(prefix), 10);
            assert_eq!(prefix, first_words(&first.texts[0], 10));
            assert_eq!(tokenizer.count(&first.texts[0]), 26);
            assert_eq!(first.input_tokens, Some(26));
            pool.insert(prefix.to_owned());
            // Later turns have none, as AIPerf prefixes the first turn only.
            assert_eq!(second.texts, p.turns[1].texts);
            assert_eq!(second.input_tokens, Some(16));
            assert_eq!(first.system_message, None);
            assert_eq!(first.user_context_message, None);
        }
        assert_eq!(pool.len(), 3, "{pool:?}");
        // Seeded: the same pool and picks again.
        assert_eq!(compose(&args), prefixed);
    }

    #[test]
    fn prefixes_are_corrected_when_words_merge() {
        let cfg = config(&[
            "-m",
            "m",
            "--random-seed",
            "3",
            "--isl",
            "10",
            "--num-dataset-entries",
            "4",
            "--prompt-prefix-pool-size",
            "2",
            "--prompt-prefix-length",
            "5",
        ]);
        let mut composer = SyntheticComposer::create(&context(&cfg, &EMPTY_ENTRY)).unwrap();
        for c in composer.create_dataset(&PairTokenizer).unwrap() {
            let turn = &c.turns[0];
            assert_eq!(PairTokenizer.count(&turn.texts[0]), 15);
            assert_eq!(turn.input_tokens, Some(15));
        }
    }

    #[test]
    fn system_and_user_context_prompts_are_the_conversations() {
        let tokenizer = TiktokenTokenizer::new(Vocabulary::O200kBase);
        let common = [
            "--isl",
            "8",
            "--num-dataset-entries",
            "5",
            "--conversation-turn-mean",
            "3",
        ];
        let plain = compose(&common);
        let args = [
            &common[..],
            &[
                "--shared-system-prompt-length",
                "12",
                "--user-context-prompt-length",
                "7",
            ],
        ]
        .concat();
        let dataset = compose(&args);
        let system = dataset[0].turns[0]
            .system_message
            .clone()
            .expect("a system prompt");
        assert_eq!(tokenizer.count(&system), 12);
        let mut contexts = std::collections::BTreeSet::new();
        for (p, c) in plain.iter().zip(&dataset) {
            let context = c.turns[0].user_context_message.clone().expect("a context");
            assert_eq!(tokenizer.count(&context), 7);
            contexts.insert(context.to_string());
            for (pt, t) in p.turns.iter().zip(&c.turns) {
                assert_eq!(t.system_message.as_deref(), Some(&*system));
                assert_eq!(t.user_context_message.as_deref(), Some(&*context));
                // The prompts and their counts stay the plain run's.
                assert_eq!(t.texts, pt.texts);
                assert_eq!(t.input_tokens, Some(8));
            }
        }
        // One context prompt per conversation, the system prompt different from them all.
        assert_eq!(contexts.len(), 5);
        assert!(!contexts.contains(&*system));
        // Rankings tasks get neither, as AIPerf's rankings composer.
        let rankings = compose(&[
            "--endpoint-type",
            "nim_rankings",
            "--num-dataset-entries",
            "2",
            "--shared-system-prompt-length",
            "12",
            "--user-context-prompt-length",
            "7",
        ]);
        assert!(rankings
            .iter()
            .flat_map(|c| &c.turns)
            .all(|t| t.context_messages().next().is_none()));
    }

    #[test]
    fn plain_words() {
        assert!(is_plain_word(" the"));
        assert!(is_plain_word(" abcdefghij"));
        assert!(!is_plain_word(" an"));
        assert!(!is_plain_word(" abcdefghijk"));
        assert!(!is_plain_word("the"));
        assert!(!is_plain_word(" The"));
        assert!(!is_plain_word(" café"));
    }
}
