//! Token counting with tiktoken's embedded vocabularies: nothing to download, so a
//! binary counts tokens offline from its first run.

use std::sync::OnceLock;

use aiperf_runtime::plugin::{normalize_name, Plugin, PluginContext, PluginError};
use aiperf_runtime::protocols::TokenizerProtocol;
use tiktoken_rs::CoreBPE;

/// The `--tokenizer` values this plugin answers to, for error messages.
const AVAILABLE: &str = "builtin, tiktoken, o200k_base (the o200k_base vocabulary), \
                         cl100k_base, or an OpenAI model name tiktoken knows (e.g. gpt-4o)";

/// The embedded vocabularies this plugin links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vocabulary {
    O200kBase,
    Cl100kBase,
}

impl Vocabulary {
    /// The vocabulary a `--tokenizer` value names, if it is one this plugin links.
    pub fn from_name(name: &str) -> Option<Vocabulary> {
        match normalize_name(name).as_str() {
            "builtin" | "tiktoken" | "o200k_base" | "o200k" => Some(Vocabulary::O200kBase),
            "cl100k_base" | "cl100k" => Some(Vocabulary::Cl100kBase),
            // Model names as tiktoken maps them; exact spelling, since model ids are.
            _ => match tiktoken_rs::tokenizer::get_tokenizer(name.trim())? {
                tiktoken_rs::tokenizer::Tokenizer::O200kBase => Some(Vocabulary::O200kBase),
                tiktoken_rs::tokenizer::Tokenizer::Cl100kBase => Some(Vocabulary::Cl100kBase),
                _ => None,
            },
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Vocabulary::O200kBase => "o200k_base",
            Vocabulary::Cl100kBase => "cl100k_base",
        }
    }

    /// The shared encoder and its vocabulary size, built on first use.
    ///
    /// Building o200k_base takes ~150 ms in release; every instance on every thread reuses
    /// the one built here (`CoreBPE` is `Sync` and keeps per-thread regex copies).
    fn shared(self) -> &'static Shared {
        static O200K: OnceLock<Shared> = OnceLock::new();
        static CL100K: OnceLock<Shared> = OnceLock::new();
        match self {
            Vocabulary::O200kBase => {
                O200K.get_or_init(|| Shared::new(tiktoken_rs::o200k_base_singleton()))
            }
            Vocabulary::Cl100kBase => {
                CL100K.get_or_init(|| Shared::new(tiktoken_rs::cl100k_base_singleton()))
            }
        }
    }
}

struct Shared {
    bpe: &'static CoreBPE,
    vocab_size: u32,
}

impl Shared {
    fn new(bpe: &'static CoreBPE) -> Self {
        // tiktoken does not expose its vocabulary size; the ids (ordinary and special) are
        // dense up to the last special token, so probe for the highest decodable id. Both
        // linked vocabularies end well below 2^18.
        let vocab_size = (0..1u32 << 18)
            .rev()
            .find(|&id| bpe.decode_bytes(&[id]).is_ok())
            .map_or(0, |id| id + 1);
        Shared { bpe, vocab_size }
    }
}

/// Counts tokens with an embedded tiktoken vocabulary (`o200k_base` by default, what
/// AIPerf's `--tokenizer builtin` uses). Cheap to copy; all copies share one encoder.
///
/// The encoder is built on first use, not at construction: with the shipped word list
/// (`plain_words`) synthetic prompts need none, so the vocabulary loads on the record
/// thread while the first requests are already in flight.
#[derive(Clone, Copy)]
pub struct TiktokenTokenizer {
    vocabulary: Vocabulary,
}

/// Single-token words of o200k_base that never merge (see `plain_words`); regenerate with
/// `AIPERF_UPDATE_SNAPSHOTS=1 cargo test -p aiperf-core word_list`.
const O200K_WORDS: &str = include_str!("../data/o200k_base.words");

impl TiktokenTokenizer {
    pub fn new(vocabulary: Vocabulary) -> Self {
        TiktokenTokenizer { vocabulary }
    }

    fn bpe(&self) -> &'static CoreBPE {
        self.vocabulary.shared().bpe
    }

    pub fn vocabulary(&self) -> Vocabulary {
        self.vocabulary
    }
}

impl std::fmt::Debug for TiktokenTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TiktokenTokenizer")
            .field("vocabulary", &self.vocabulary)
            .finish()
    }
}

impl Plugin for TiktokenTokenizer {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        let name = ctx.config.tokenizer.as_str();
        let vocabulary = Vocabulary::from_name(name).ok_or_else(|| {
            PluginError::Config(format!(
                "tokenizer `{name}` is not available offline; the tiktoken tokenizer accepts \
                 {AVAILABLE}"
            ))
        })?;
        Ok(TiktokenTokenizer::new(vocabulary))
    }
}

impl TokenizerProtocol for TiktokenTokenizer {
    fn count(&self, text: &str) -> usize {
        // Ordinary encoding: text that happens to spell `<|endoftext|>` is user text, and
        // counting it as one special token would undercount.
        self.bpe().encode_ordinary(text).len()
    }

    fn encode(&self, text: &str) -> Vec<u32> {
        self.bpe().encode_ordinary(text)
    }

    fn decode(&self, tokens: &[u32]) -> String {
        let bpe = self.bpe();
        let bytes = match bpe.decode_bytes(tokens) {
            Ok(bytes) => bytes,
            // Unknown ids decode to nothing rather than failing the whole sequence.
            Err(_) => {
                let mut bytes = Vec::with_capacity(tokens.len() * 4);
                for &token in tokens {
                    if let Ok(piece) = bpe.decode_bytes(&[token]) {
                        bytes.extend_from_slice(&piece);
                    }
                }
                bytes
            }
        };
        // A token can end inside a multi-byte character; such splits become U+FFFD.
        match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }

    fn vocab_size(&self) -> u32 {
        self.vocabulary.shared().vocab_size
    }

    fn plain_words(&self) -> Option<&'static str> {
        match self.vocabulary {
            Vocabulary::O200kBase => Some(O200K_WORDS),
            Vocabulary::Cl100kBase => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_config::{config, context, EMPTY_ENTRY};

    fn o200k() -> TiktokenTokenizer {
        TiktokenTokenizer::new(Vocabulary::O200kBase)
    }

    /// The shipped word list is exactly what the vocabulary yields, and every word and a
    /// long concatenation count as expected.
    #[test]
    fn word_list_is_current() {
        use rand::SeedableRng;
        let t = o200k();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let derived = crate::dataset::WordList::derive(&t, &mut rng);
        assert!(derived.additive);
        let text: String = derived.words.iter().map(|w| format!("{w}\n")).collect();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/o200k_base.words");
        if std::env::var_os("AIPERF_UPDATE_SNAPSHOTS").is_some() {
            std::fs::write(path, &text).expect("write the word list");
            return;
        }
        assert!(
            text == O200K_WORDS,
            "{path} is stale; rerun with AIPERF_UPDATE_SNAPSHOTS=1"
        );
    }

    #[test]
    fn counts_common_words_as_one_token_each() {
        assert_eq!(o200k().count(" the of and"), 3);
        assert_eq!(o200k().count(""), 0);
    }

    #[test]
    fn special_token_text_is_ordinary_text() {
        assert!(o200k().count("<|endoftext|>") > 1);
    }

    #[test]
    fn encode_decode_round_trip() {
        let t = o200k();
        let text = "Hello, wörld! 你好 🚀";
        assert_eq!(t.decode(&t.encode(text)), text);
    }

    #[test]
    fn decode_never_panics() {
        let t = o200k();
        // Unknown ids and ids whose bytes split a character.
        assert_eq!(t.decode(&[u32::MAX, 1u32 << 30]), "");
        let rocket = t.encode("🚀");
        if rocket.len() > 1 {
            assert!(t.decode(&rocket[..1]).contains('\u{fffd}'));
        }
        for id in [0, 1, 255, 199_998, 199_999, 200_018, 200_019] {
            let _ = t.decode(&[id]);
        }
    }

    #[test]
    fn vocab_sizes_cover_special_tokens() {
        // o200k_base: `<|endofprompt|>` = 200018; cl100k_base: `<|endofprompt|>` = 100276.
        assert_eq!(o200k().vocab_size(), 200_019);
        assert_eq!(
            TiktokenTokenizer::new(Vocabulary::Cl100kBase).vocab_size(),
            100_277
        );
    }

    #[test]
    fn names_select_vocabularies() {
        for name in ["builtin", "tiktoken", "o200k_base", "O200K-BASE", "gpt-4o"] {
            assert_eq!(
                Vocabulary::from_name(name),
                Some(Vocabulary::O200kBase),
                "{name}"
            );
        }
        assert_eq!(
            Vocabulary::from_name("cl100k_base"),
            Some(Vocabulary::Cl100kBase)
        );
        assert_eq!(Vocabulary::from_name("gpt-4"), Some(Vocabulary::Cl100kBase));
        assert_eq!(Vocabulary::from_name("meta-llama/Llama-3.1-8B"), None);
    }

    #[test]
    fn unknown_tokenizer_is_a_config_error() {
        let cfg = config(&["-m", "m", "--tokenizer", "meta-llama/Llama-3.1-8B"]);
        let err = TiktokenTokenizer::create(&context(&cfg, &EMPTY_ENTRY)).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, PluginError::Config(_)));
        assert!(message.contains("meta-llama/Llama-3.1-8B") && message.contains("builtin"));

        let cfg = config(&["-m", "m"]);
        let t = TiktokenTokenizer::create(&context(&cfg, &EMPTY_ENTRY)).unwrap();
        assert_eq!(t.vocabulary(), Vocabulary::O200kBase);
    }

    #[test]
    fn shared_across_threads() {
        let t = o200k();
        let counts: Vec<usize> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(move || t.count(" the of and")))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(counts, vec![3; 4]);
    }
}
