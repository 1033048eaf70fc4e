//! Token counting with tiktoken's vocabularies, embedded: nothing to download, so a
//! binary counts tokens offline from its first run.
//!
//! The vocabularies are shipped as compact rank tables (`data/*.ranks`: each rank's bytes
//! after a length byte) and encoded here with tiktoken's own algorithm (its pre-tokenizer
//! pattern, then byte-pair merges by rank). tiktoken-rs's `CoreBPE` would hold each
//! vocabulary three times over in per-token allocations (an encoder and a decoder map
//! and a sorted token list): about 45 MiB resident for o200k_base, most of a run's memory.
//! The tables here take about 4.5 MiB (the 1.6 MiB file, a rank index and a hash
//! index), and give the same tokens (tests compare both on varied text).
//!
//! Text is encoded as AIPerf 0.13's builtin tokenizer encodes it (`_TiktokenAdapter`:
//! `allowed_special="all"`): text spelling a special token, such as the `<|endoftext|>`
//! that opens each block of a trace prompt, is that one token.

use std::collections::BinaryHeap;
use std::sync::OnceLock;

use aiperf_runtime::plugin::{normalize_name, Plugin, PluginContext, PluginError};
use aiperf_runtime::protocols::TokenizerProtocol;
use fancy_regex::Regex;

/// The `--tokenizer` values this plugin answers to, for error messages.
const AVAILABLE: &str = "builtin, tiktoken, o200k_base (the o200k_base vocabulary), \
                         cl100k_base, or an OpenAI model name tiktoken knows (e.g. gpt-4o)";

/// Rank tables: for every rank from 0, a length byte then that many token bytes (length 0
/// for an unused rank). Regenerate with
/// `AIPERF_UPDATE_SNAPSHOTS=1 cargo test -p aiperf-core rank_tables`.
const O200K_RANKS: &[u8] = include_bytes!("../data/o200k_base.ranks");
const CL100K_RANKS: &[u8] = include_bytes!("../data/cl100k_base.ranks");

/// tiktoken's pre-tokenizer patterns (o200k_base's as tiktoken-rs exports it; cl100k_base's
/// is inline there).
const O200K_PATTERN: &str = tiktoken_rs::O200K_BASE_PAT_STR;
const CL100K_PATTERN: &str = concat!(
    r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+",
    r"| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s",
);

/// Special tokens (id, text). Text spelling one encodes to it, as AIPerf's builtin
/// tokenizer encodes (tiktoken's `allowed_special="all"`); the first is the vocabulary's
/// `eot_token`. Every one starts with [`SPECIAL_START`], which finds them cheaply.
const O200K_SPECIALS: &[(u32, &str)] = &[(199_999, "<|endoftext|>"), (200_018, "<|endofprompt|>")];
const CL100K_SPECIALS: &[(u32, &str)] = &[
    (100_257, "<|endoftext|>"),
    (100_258, "<|fim_prefix|>"),
    (100_259, "<|fim_middle|>"),
    (100_260, "<|fim_suffix|>"),
    (100_276, "<|endofprompt|>"),
];

/// What every special token's text starts with.
const SPECIAL_START: &str = "<|";

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

    fn ranks(self) -> &'static [u8] {
        match self {
            Vocabulary::O200kBase => O200K_RANKS,
            Vocabulary::Cl100kBase => CL100K_RANKS,
        }
    }

    fn pattern(self) -> &'static str {
        match self {
            Vocabulary::O200kBase => O200K_PATTERN,
            Vocabulary::Cl100kBase => CL100K_PATTERN,
        }
    }

    fn specials(self) -> &'static [(u32, &'static str)] {
        match self {
            Vocabulary::O200kBase => O200K_SPECIALS,
            Vocabulary::Cl100kBase => CL100K_SPECIALS,
        }
    }

    /// The shared encoder, built on first use (about 10 ms); every instance on every
    /// thread reuses it. Only the vocabularies a run names are ever built.
    fn bpe(self) -> &'static Bpe {
        static O200K: OnceLock<Bpe> = OnceLock::new();
        static CL100K: OnceLock<Bpe> = OnceLock::new();
        let cell = match self {
            Vocabulary::O200kBase => &O200K,
            Vocabulary::Cl100kBase => &CL100K,
        };
        cell.get_or_init(|| Bpe::new(self))
    }
}

/// A rank: a token id.
type Rank = u32;

/// No rank: the pair is not a token (tiktoken's `Rank::MAX`).
const NO_RANK: Rank = Rank::MAX;

/// Pieces from this length on are merged with a heap, as tiktoken does.
const LARGE_PIECE: usize = 100;

/// o200k_base's pre-tokenizer pattern ([`O200K_PATTERN`]) on ASCII text: each piece the
/// regex would match, in order, handed to `piece`.
///
/// A run tokenizes every request's input and output (AIPerf counts ISL from the payload
/// sent, so each turn of a conversation counts its whole history again), and the
/// backtracking regex was most of that: over half of the record thread at 5,000
/// multi-turn requests/s. On ASCII text the pattern's classes are plain byte classes:
/// letters are `A-Z` (its upper-case class) and `a-z` (its lower-case class), no
/// character is a mark, `\s` is tab to carriage return and space. Its alternatives, tried
/// in order at each position (a test compares every piece with the regex's):
///
/// 1. `[^\r\n\p{L}\p{N}]?[A-Z]*[a-z]+` then an optional contraction (`'s`, `'t`, `'re`,
///    `'ve`, `'m`, `'ll`, `'d`, any case);
/// 2. `[^\r\n\p{L}\p{N}]?[A-Z]+[a-z]*` then an optional contraction;
/// 3. one to three digits;
/// 4. ` ?[^\s\p{L}\p{N}]+[\r\n/]*`;
/// 5. `\s*[\r\n]+`: a whitespace run up to its last line break;
/// 6. `\s+(?!\S)`: a whitespace run, less its last character when one follows;
/// 7. `\s+`.
fn ascii_o200k_pieces(text: &[u8], mut piece: impl FnMut(&[u8])) {
    fn space(b: u8) -> bool {
        matches!(b, b'\t'..=b'\r' | b' ')
    }
    /// `[^\r\n\p{L}\p{N}]`: what may lead a word.
    fn lead(b: u8) -> bool {
        !matches!(b, b'\r' | b'\n') && !b.is_ascii_alphanumeric()
    }
    /// `[^\s\p{L}\p{N}]`: punctuation, symbols and control characters.
    fn symbol(b: u8) -> bool {
        !space(b) && !b.is_ascii_alphanumeric()
    }
    fn line_break(b: u8) -> bool {
        matches!(b, b'\r' | b'\n')
    }
    /// Where the run of `class` bytes from `from` ends.
    fn run(text: &[u8], from: usize, class: impl Fn(u8) -> bool) -> usize {
        from + text[from..].iter().take_while(|&&b| class(b)).count()
    }
    let letter_at = |i: usize| text.get(i).is_some_and(u8::is_ascii_alphabetic);
    let mut at = 0;
    while at < text.len() {
        let b = text[at];
        let end = 'matched: {
            // 1 and 2: a word, with the character before it when that may lead one.
            let word = if lead(b) && letter_at(at + 1) {
                at + 1
            } else {
                at
            };
            if letter_at(word) {
                let caps = run(text, word, |c| c.is_ascii_uppercase());
                let end = run(text, caps, |c| c.is_ascii_lowercase());
                break 'matched end + contraction(&text[end..]);
            }
            // 3
            if b.is_ascii_digit() {
                let digits = text[at..].iter().take(3).take_while(|d| d.is_ascii_digit());
                break 'matched at + digits.count();
            }
            // 4
            let from = if b == b' ' && text.get(at + 1).is_some_and(|&n| symbol(n)) {
                at + 1
            } else {
                at
            };
            if symbol(text[from]) {
                let end = run(text, from, symbol);
                break 'matched run(text, end, |c| line_break(c) || c == b'/');
            }
            // 5, 6 and 7: `b` is whitespace (every other byte matched above).
            let end = run(text, at, space);
            if let Some(last) = text[at..end].iter().rposition(|&c| line_break(c)) {
                break 'matched at + last + 1;
            }
            if end == text.len() || end - at == 1 {
                end
            } else {
                end - 1
            }
        };
        piece(&text[at..end]);
        at = end;
    }
}

/// The length of the contraction `(?i:'s|'t|'re|'ve|'m|'ll|'d)` at the start of `rest`,
/// or 0.
fn contraction(rest: &[u8]) -> usize {
    let [b'\'', first, ..] = rest else {
        return 0;
    };
    let second = rest.get(2).map(u8::to_ascii_lowercase);
    match (first.to_ascii_lowercase(), second) {
        (b's' | b't' | b'm' | b'd', _) => 2,
        (b'r' | b'v', Some(b'e')) | (b'l', Some(b'l')) => 3,
        _ => 0,
    }
}

/// One vocabulary's encoder and decoder over its rank table.
struct Bpe {
    /// The rank table (static: the binary's own bytes).
    table: &'static [u8],
    /// Offset in `table` of each rank's bytes (its length is the byte before);
    /// `u32::MAX` for an unused rank.
    starts: Box<[u32]>,
    /// Open-addressing hash index from token bytes to their rank (0: an empty slot). A
    /// slot holds the token's offset in `table`, its length and its rank
    /// ([`Bpe::entry`]), so a probe rejects a token of another length without reading
    /// the table, and a match reads the table once: a lookup per word of every counted
    /// text is most of what counting costs once the text is split.
    index: Box<[u64]>,
    /// `64 - log2(index.len())`: the hash's top bits pick the slot.
    shift: u32,
    regex: Regex,
    /// Whether ASCII text is split by [`ascii_o200k_pieces`] instead of the regex.
    ascii_pieces: bool,
    specials: &'static [(u32, &'static str)],
    vocab_size: u32,
}

impl Bpe {
    fn new(vocabulary: Vocabulary) -> Bpe {
        let table = vocabulary.ranks();
        let mut starts = Vec::new();
        let mut at = 0usize;
        while let Some(&len) = table.get(at) {
            let start = at + 1;
            at = start + usize::from(len);
            let usable = len > 0 && at <= table.len();
            starts.push(if usable { start as u32 } else { u32::MAX });
        }
        // Load factor below 0.4: linear probes stay short.
        let slots = (starts.len() * 5 / 2).next_power_of_two().max(2);
        let mut bpe = Bpe {
            table,
            starts: starts.into_boxed_slice(),
            index: vec![0u64; slots].into_boxed_slice(),
            shift: 64 - slots.trailing_zeros(),
            // The pattern is a constant of this file; tests compile both.
            regex: Regex::new(vocabulary.pattern()).expect("tiktoken's pattern compiles"),
            ascii_pieces: vocabulary == Vocabulary::O200kBase,
            specials: vocabulary.specials(),
            vocab_size: 0,
        };
        let ordinary = bpe.starts.len() as u32;
        let mask = bpe.index.len() - 1;
        for rank in 0..ordinary {
            let Some(bytes) = bpe.token(rank) else {
                continue;
            };
            let mut slot = bpe.slot(bytes);
            while bpe.index[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            let start = u64::from(bpe.starts[rank as usize]);
            bpe.index[slot] = Bpe::entry(start, bytes.len(), rank);
        }
        let last_special = bpe.specials.iter().map(|&(id, _)| id + 1).max();
        bpe.vocab_size = last_special.unwrap_or(0).max(ordinary);
        bpe
    }

    /// The bytes of an ordinary rank.
    fn token(&self, rank: Rank) -> Option<&'static [u8]> {
        let start = *self.starts.get(rank as usize)? as usize;
        let table = self.table;
        let len = usize::from(*table.get(start.checked_sub(1)?)?);
        table.get(start..start + len)
    }

    fn slot(&self, bytes: &[u8]) -> usize {
        (hash(bytes) >> self.shift) as usize
    }

    /// An index slot: the token's offset in the table (`start`, 32 bits; never 0, after
    /// the first length byte), its length (8 bits) and its rank (24 bits).
    fn entry(start: u64, len: usize, rank: Rank) -> u64 {
        (start << 32) | ((len as u64 & 0xff) << 24) | u64::from(rank & 0xff_ffff)
    }

    /// The rank of a byte string, if it is a token.
    #[inline]
    fn rank(&self, bytes: &[u8]) -> Rank {
        let mask = self.index.len() - 1;
        let mut slot = self.slot(bytes);
        loop {
            let entry = self.index[slot];
            if entry == 0 {
                return NO_RANK;
            }
            let len = ((entry >> 24) & 0xff) as usize;
            if len == bytes.len() {
                let start = (entry >> 32) as usize;
                if self.table.get(start..start + len) == Some(bytes) {
                    return (entry & 0xff_ffff) as Rank;
                }
            }
            slot = (slot + 1) & mask;
        }
    }

    /// tiktoken's `encode(text, allowed_special="all")`, each token handed to `out`: the
    /// text is cut at every special token's text, which is that one token, and the pieces
    /// between are encoded ordinarily (so a space before a special token stays a token of
    /// its own, as in tiktoken).
    fn encode_with(&self, text: &str, mut out: impl FnMut(Rank)) {
        let mut start = 0;
        while let Some((at, id, len)) = self.next_special(text, start) {
            self.encode_ordinary(text.get(start..at).unwrap_or_default(), &mut out);
            out(id);
            start = at + len;
        }
        self.encode_ordinary(text.get(start..).unwrap_or_default(), &mut out);
    }

    /// The leftmost special token's text at or after byte `from`: (its offset, its id,
    /// its length).
    fn next_special(&self, text: &str, from: usize) -> Option<(usize, Rank, usize)> {
        let mut at = from;
        while let Some(found) = text.get(at..)?.find(SPECIAL_START) {
            let start = at + found;
            let rest = text.get(start..)?;
            if let Some(&(id, special)) = self.specials.iter().find(|(_, s)| rest.starts_with(s)) {
                return Some((start, id, special.len()));
            }
            // `<` is one byte: the next offset is a character boundary.
            at = start + 1;
        }
        None
    }

    /// tiktoken's `encode_ordinary`, each token handed to `out`.
    fn encode_ordinary(&self, text: &str, out: &mut impl FnMut(Rank)) {
        if self.ascii_pieces && text.is_ascii() {
            ascii_o200k_pieces(text.as_bytes(), |piece| self.encode_piece(piece, out));
            return;
        }
        let mut at = 0;
        for found in self.regex.find_iter(text) {
            let piece = match found {
                Ok(m) => {
                    at = m.end();
                    m.as_str().as_bytes()
                }
                // Backtracking gave up on hostile input: the rest is one piece, counted
                // rather than dropped.
                Err(e) => {
                    tracing::debug!("tokenizer pattern failed ({e}); the rest is one piece");
                    let rest = text.as_bytes().get(at..).unwrap_or_default();
                    at = text.len();
                    rest
                }
            };
            self.encode_piece(piece, out);
            if at == text.len() {
                break;
            }
        }
    }

    fn encode_piece(&self, piece: &[u8], out: &mut impl FnMut(Rank)) {
        match self.rank(piece) {
            NO_RANK if piece.is_empty() => {}
            NO_RANK if piece.len() < LARGE_PIECE => self.merge_small(piece, out),
            NO_RANK => self.merge_large(piece, out),
            rank => out(rank),
        }
    }

    /// tiktoken's `_byte_pair_merge`: repeatedly merge the adjacent pair of lowest rank.
    fn merge_small(&self, piece: &[u8], out: &mut impl FnMut(Rank)) {
        // (start, rank of the pair starting there)
        let mut parts: Vec<(usize, Rank)> = Vec::with_capacity(piece.len() + 1);
        let mut min = (NO_RANK, usize::MAX);
        for i in 0..piece.len() - 1 {
            let rank = self.rank(&piece[i..i + 2]);
            if rank < min.0 {
                min = (rank, i);
            }
            parts.push((i, rank));
        }
        parts.push((piece.len() - 1, NO_RANK));
        parts.push((piece.len(), NO_RANK));
        // The rank of the pair at `i` once `i + 1` is merged away (hence `i + 3`).
        let pair_rank = |parts: &[(usize, Rank)], i: usize| match parts.get(i + 3) {
            Some(&(end, _)) => self.rank(&piece[parts[i].0..end]),
            None => NO_RANK,
        };
        while min.0 != NO_RANK {
            let i = min.1;
            if i > 0 {
                parts[i - 1].1 = pair_rank(&parts, i - 1);
            }
            parts[i].1 = pair_rank(&parts, i);
            parts.remove(i + 1);
            min = (NO_RANK, usize::MAX);
            for (i, &(_, rank)) in parts[..parts.len() - 1].iter().enumerate() {
                if rank < min.0 {
                    min = (rank, i);
                }
            }
        }
        for pair in parts.windows(2) {
            out(self.rank(&piece[pair[0].0..pair[1].0]));
        }
    }

    /// tiktoken's `_byte_pair_merge_large`: the same merges in the same order (lowest
    /// rank, then leftmost), found with a heap.
    fn merge_large(&self, piece: &[u8], out: &mut impl FnMut(Rank)) {
        struct State {
            prev: usize,
            end: usize,
            next_end: usize,
            next_rank: Rank,
            cur_rank: Rank,
        }
        #[derive(PartialEq, Eq)]
        struct Merge {
            start: usize,
            rank: Rank,
        }
        impl Ord for Merge {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                other
                    .rank
                    .cmp(&self.rank)
                    .then_with(|| other.start.cmp(&self.start))
            }
        }
        impl PartialOrd for Merge {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        let mut state = Vec::with_capacity(piece.len());
        state.push(State {
            prev: usize::MAX,
            end: 1,
            next_end: 2,
            next_rank: NO_RANK,
            cur_rank: NO_RANK,
        });
        let mut heap = BinaryHeap::with_capacity(piece.len());
        for i in 0..piece.len() - 1 {
            let rank = self.rank(&piece[i..i + 2]);
            if rank != NO_RANK {
                heap.push(Merge { start: i, rank });
                state[i].next_rank = rank;
            }
            state.push(State {
                prev: i,
                end: i + 2,
                next_end: i + 3,
                next_rank: NO_RANK,
                cur_rank: NO_RANK,
            });
        }
        let potential_merge = |state: &mut Vec<State>,
                               heap: &mut BinaryHeap<Merge>,
                               start: usize,
                               next_end: usize| {
            state[start].next_end = next_end;
            state[start].next_rank = NO_RANK;
            if next_end <= piece.len() {
                let rank = self.rank(&piece[start..next_end]);
                if rank != NO_RANK {
                    heap.push(Merge { start, rank });
                    state[start].next_rank = rank;
                }
            }
        };
        while let Some(left) = heap.pop() {
            if left.rank == NO_RANK {
                break;
            }
            if left.rank != state[left.start].next_rank {
                continue;
            }
            let left_start = left.start;
            let right_start = state[left_start].end;
            let right_end = state[left_start].next_end;
            let right_next_end = state[right_start].next_end;
            state[left_start].cur_rank = state[left_start].next_rank;
            state[left_start].end = right_end;
            potential_merge(&mut state, &mut heap, left_start, right_next_end);
            if right_end < state.len() {
                state[right_end].prev = left_start;
            }
            if left_start > 0 {
                let prev_start = state[left_start].prev;
                potential_merge(&mut state, &mut heap, prev_start, right_end);
            }
            state[right_start].next_rank = NO_RANK;
        }
        let mut i = 0;
        while i < state.len() {
            if state[i].cur_rank != NO_RANK {
                out(state[i].cur_rank);
            } else {
                out(self.rank(&piece[i..state[i].end]));
            }
            i = state[i].end;
        }
    }

    /// The bytes of any id, special tokens included.
    fn decode_token(&self, id: Rank) -> Option<&'static [u8]> {
        self.token(id).or_else(|| {
            self.specials
                .iter()
                .find(|&&(special, _)| special == id)
                .map(|&(_, text)| text.as_bytes())
        })
    }
}

/// A fast hash of token bytes (FxHash's multiply-rotate over 8-byte words, then a final
/// mix so that the top bits, which pick the slot, depend on every byte).
#[inline]
fn hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = bytes.len() as u64;
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    h ^= h >> 32;
    h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^ (h >> 29)
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

    fn bpe(&self) -> &'static Bpe {
        self.vocabulary.bpe()
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
                "tokenizer `{name}` is not one this build has: it takes the tiktoken \
                 vocabularies it carries ({AVAILABLE}); Hugging Face tokenizers (a model \
                 name or a tokenizer directory) are not supported"
            ))
        })?;
        Ok(TiktokenTokenizer::new(vocabulary))
    }
}

impl TokenizerProtocol for TiktokenTokenizer {
    fn count(&self, text: &str) -> usize {
        // Special-token text counts as that one token, as AIPerf counts every ISL and OSL
        // (its tiktoken adapter encodes with `allowed_special="all"`).
        let mut n = 0;
        self.bpe().encode_with(text, |_| n += 1);
        n
    }

    fn encode(&self, text: &str) -> Vec<u32> {
        let mut tokens = Vec::new();
        self.bpe().encode_with(text, |t| tokens.push(t));
        tokens
    }

    fn decode(&self, tokens: &[u32]) -> String {
        let bpe = self.bpe();
        let mut bytes = Vec::with_capacity(tokens.len() * 4);
        // Unknown ids decode to nothing rather than failing the whole sequence.
        for &token in tokens {
            if let Some(piece) = bpe.decode_token(token) {
                bytes.extend_from_slice(piece);
            }
        }
        // A token can end inside a multi-byte character; such splits become U+FFFD.
        match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }

    fn vocab_size(&self) -> u32 {
        self.bpe().vocab_size
    }

    fn plain_words(&self) -> Option<&'static str> {
        match self.vocabulary {
            Vocabulary::O200kBase => Some(O200K_WORDS),
            Vocabulary::Cl100kBase => None,
        }
    }

    /// AIPerf's tiktoken adapter has no BOS and the encoding's `eot_token` as EOS, so
    /// its block separator is `<|endoftext|>` (the first special of both vocabularies).
    fn block_separator(&self) -> Option<&'static str> {
        self.vocabulary.specials().first().map(|&(_, text)| text)
    }

    /// Both patterns end every piece that could reach a space at the character before it
    /// (a word, a number, a run of symbols; a whitespace piece needs whitespace before
    /// the space), look ahead at most one character, never behind, and no special token
    /// has a space in it: the pieces before such a space are those of the text before it.
    fn counts_add_at_spaces(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_config::{config, context, EMPTY_ENTRY};

    fn o200k() -> TiktokenTokenizer {
        TiktokenTokenizer::new(Vocabulary::O200kBase)
    }

    /// tiktoken-rs's vocabulary (the reference), rank by rank.
    fn reference(vocabulary: Vocabulary) -> tiktoken_rs::CoreBPE {
        match vocabulary {
            Vocabulary::O200kBase => tiktoken_rs::o200k_base(),
            Vocabulary::Cl100kBase => tiktoken_rs::cl100k_base(),
        }
        .expect("tiktoken-rs builds its own vocabulary")
    }

    /// A xorshift generator of numbers below what each call asks: random texts, the same
    /// every run.
    fn below(mut state: u64) -> impl FnMut(usize) -> usize {
        move |below: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % below as u64) as usize
        }
    }

    /// The pieces the o200k pattern's regex cuts `text` into.
    fn regex_pieces(regex: &Regex, text: &str) -> Vec<String> {
        regex
            .find_iter(text)
            .map(|m| {
                m.expect("short input never backtracks out")
                    .as_str()
                    .to_owned()
            })
            .collect()
    }

    fn fast_pieces(text: &str) -> Vec<String> {
        let mut pieces = Vec::new();
        ascii_o200k_pieces(text.as_bytes(), |p| {
            pieces.push(String::from_utf8(p.to_vec()).expect("pieces of ASCII are ASCII"))
        });
        pieces
    }

    /// The ASCII splitter cuts exactly where o200k's regex does: every string of up to
    /// four characters over an alphabet of each class the pattern tells apart (with the
    /// contraction letters), then random strings over all of ASCII with contractions,
    /// line breaks and runs of spaces mixed in, then prose and code.
    #[test]
    fn ascii_pieces_are_the_regexs() {
        let regex = Regex::new(O200K_PATTERN).expect("compiles");
        let check = |text: &str| {
            assert_eq!(fast_pieces(text), regex_pieces(&regex, text), "{text:?}");
        };
        let alphabet = b"aA0 '\n\r\t!/sLe\x0b";
        let mut text = Vec::new();
        for len in 0..=4u32 {
            for mut n in 0..alphabet.len().pow(len) {
                text.clear();
                for _ in 0..len {
                    text.push(alphabet[n % alphabet.len()]);
                    n /= alphabet.len();
                }
                check(std::str::from_utf8(&text).expect("ASCII"));
            }
        }
        let fragments: &[&str] = &[
            "'s",
            "'T",
            "'re",
            "'VE",
            "'m",
            "'ll",
            "'D",
            "'x",
            "'",
            " ",
            "  ",
            "\n",
            "\r\n",
            "\t",
            " \n ",
            "//",
            "/",
            "123",
            "4567",
            "Hello",
            "WORLD",
            "camelCase",
            "x",
            "!?",
            " .",
            "\x00",
            "\x7f",
            "\x0c",
            "ABCdef",
            "a1b2",
            "  \n\n  ",
        ];
        let mut next = below(0x9e37_79b9_7f4a_7c15u64);
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..next(12) {
                if next(3) == 0 {
                    text.push(char::from(next(128) as u8));
                } else {
                    text.push_str(fragments[next(fragments.len())]);
                }
            }
            check(&text);
        }
        check(
            "It's 9:30 -- we'll ship v2.0.1 (finally!) to https://example.com/a/b?x=1&y=22.\n\
             \n    fn main() {\n        println!(\"{}\", x[0]);\n    }\r\n\tTHE END'S NEAR  ",
        );
    }

    /// What the record thread relies on to count a turn from the one before: cut at a
    /// space after a character that is not whitespace, a text counts as its two parts.
    #[test]
    fn counts_add_at_a_space_after_a_non_space() {
        let fragments: &[&str] = &[
            "word",
            "Word",
            "WORDS",
            "'s",
            "'",
            "123",
            "4",
            "!",
            "?!",
            "/",
            "\n",
            "\r\n",
            " ",
            "  ",
            "\t",
            "café",
            "日本",
            "\u{a0}",
            "<|endoftext|>",
            "<|",
            "naïve",
            "x\n\ny",
        ];
        let mut next = below(0x2545_f491_4f6c_dd1du64);
        for vocabulary in [Vocabulary::O200kBase, Vocabulary::Cl100kBase] {
            let tokenizer = TiktokenTokenizer::new(vocabulary);
            assert!(tokenizer.counts_add_at_spaces());
            let mut cuts = 0;
            for _ in 0..3_000 {
                let mut text = String::new();
                for _ in 0..next(14) {
                    text.push_str(fragments[next(fragments.len())]);
                    if next(3) == 0 {
                        text.push(' ');
                    }
                }
                let whole = tokenizer.count(&text);
                for (at, _) in text.match_indices(' ') {
                    let head = &text[..at];
                    if head.chars().next_back().is_some_and(|c| !c.is_whitespace()) {
                        let parts = tokenizer.count(head) + tokenizer.count(&text[at..]);
                        assert_eq!(parts, whole, "{vocabulary:?} {text:?} at {at}");
                        cuts += 1;
                    }
                }
            }
            assert!(cuts > 3_000, "{cuts} cuts tried");
        }
    }

    /// Text with any non-ASCII character takes the regex, and still counts as tiktoken's.
    #[test]
    fn non_ascii_text_takes_the_regex() {
        let ours = o200k();
        let reference = reference(Vocabulary::O200kBase);
        for text in ["naïve café", "über 9000 Straße", "日本語 text", "a\u{a0}b"] {
            assert_eq!(ours.encode(text), reference.encode_ordinary(text), "{text}");
        }
    }

    /// The shipped rank tables are exactly tiktoken-rs's ordinary tokens, in rank order.
    #[test]
    fn rank_tables_are_current() {
        for (vocabulary, file, ordinary) in [
            (Vocabulary::O200kBase, "o200k_base.ranks", 199_998u32),
            (Vocabulary::Cl100kBase, "cl100k_base.ranks", 100_256),
        ] {
            let bpe = reference(vocabulary);
            let mut table = Vec::new();
            for rank in 0..ordinary {
                let bytes = bpe.decode_bytes(&[rank]).expect("ordinary ranks are dense");
                table.push(u8::try_from(bytes.len()).expect("tokens are under 256 bytes"));
                table.extend_from_slice(&bytes);
            }
            // The next id is a special token or unused: the table ends here.
            let path = format!("{}/data/{file}", env!("CARGO_MANIFEST_DIR"));
            if std::env::var_os("AIPERF_UPDATE_SNAPSHOTS").is_some() {
                std::fs::write(&path, &table).expect("write the rank table");
                continue;
            }
            assert!(
                table == vocabulary.ranks(),
                "{path} is stale; rerun with AIPERF_UPDATE_SNAPSHOTS=1"
            );
        }
    }

    /// Text of every kind the pre-tokenizer tells apart: letters of several scripts and
    /// cases, contractions, digit runs, punctuation, whitespace runs (long ones take the
    /// heap merge), newlines, emoji and words no vocabulary holds whole.
    fn corpus() -> Vec<String> {
        use rand::{Rng, SeedableRng};
        let mut texts: Vec<String> = [
            "",
            " ",
            "Hello, world! It's 2024 and we've got 1234567 reasons.",
            "  leading and trailing spaces   ",
            "tabs\tand\nnewlines\r\n\n\n  indented\n",
            "Ünïcödé façade naïve café — “quotes” and ‘apostrophes’",
            "日本語のテキストと中文文本，한국어 텍스트",
            "emoji 🚀🔥👍🏽 and ZWJ 👨‍👩‍👧‍👦 sequences",
            "CamelCaseIdentifiers and snake_case_names and SCREAMING_CASE",
            "fn main() { println!(\"{}\", x.iter().map(|y| y * 2).sum::<u32>()); }",
            "<|endoftext|> is one special token",
            "text before<|endoftext|> after, <|endofprompt|><|endoftext|>\n",
            "a space before <|endoftext|>  and two after",
            "<|fim_prefix|>x<|fim_middle|>y<|fim_suffix|>z<|endofprompt|>",
            "almost special: <|endoftext <|<|endoftext|> <|endoftext|| <|>",
            "supercalifragilisticexpialidocious antidisestablishmentarianism",
            "I'LL SAY IT'S THEY'RE WE'VE I'M HE'D",
            "https://example.com/path?query=1&b=2#frag",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        texts.push(" ".repeat(150));
        texts.push(format!("x{}y", "\n".repeat(120)));
        texts.push("a".repeat(300));
        texts.push("🚀".repeat(60));
        texts.push("0123456789".repeat(20));
        let alphabet: Vec<char> = "aAbBzZ éÉßñ日本🚀 \t\n\r'’.,;:!?-_/\\()[]{}0123456789"
            .chars()
            .collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for _ in 0..300 {
            let len = rng.random_range(1..200);
            texts.push(
                (0..len)
                    .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                    .collect(),
            );
        }
        texts
    }

    /// Same tokens as tiktoken-rs on every corpus text, in both vocabularies, with every
    /// special token allowed (AIPerf's `allowed_special="all"`).
    #[test]
    fn encodes_as_tiktoken_does() {
        for vocabulary in [Vocabulary::O200kBase, Vocabulary::Cl100kBase] {
            let reference = reference(vocabulary);
            let ours = TiktokenTokenizer::new(vocabulary);
            for text in corpus() {
                let expected = reference.encode_with_special_tokens(&text);
                assert_eq!(ours.encode(&text), expected, "{vocabulary:?}: {text:?}");
                assert_eq!(
                    ours.count(&text),
                    expected.len(),
                    "{vocabulary:?}: {text:?}"
                );
                assert_eq!(ours.decode(&expected), text, "{vocabulary:?}: {text:?}");
            }
        }
    }

    /// Special ids decode to their text; ids past the vocabulary to nothing.
    #[test]
    fn special_tokens_decode() {
        let o200k = o200k();
        assert_eq!(o200k.decode(&[199_999]), "<|endoftext|>");
        assert_eq!(o200k.decode(&[200_018]), "<|endofprompt|>");
        assert_eq!(o200k.decode(&[199_998, 200_019]), "");
        let cl100k = TiktokenTokenizer::new(Vocabulary::Cl100kBase);
        assert_eq!(
            cl100k.decode(&[100_258, 100_276]),
            "<|fim_prefix|><|endofprompt|>"
        );
        for (vocabulary, ids) in [
            (
                Vocabulary::O200kBase,
                vec![0u32, 1, 255, 199_997, 199_999, 200_018],
            ),
            (
                Vocabulary::Cl100kBase,
                vec![0, 100_255, 100_257, 100_260, 100_276],
            ),
        ] {
            let reference = reference(vocabulary);
            let ours = TiktokenTokenizer::new(vocabulary);
            for id in ids {
                let expected = reference.decode_bytes(&[id]).expect("a known id");
                let mut got = Vec::new();
                ours.bpe()
                    .decode_token(id)
                    .inspect(|b| got.extend_from_slice(b));
                assert_eq!(got, expected, "{vocabulary:?} id {id}");
            }
        }
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
        let text: String = derived.words().map(|w| format!("{w}\n")).collect();
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

    /// AIPerf's builtin tokenizer counts special-token text as that one token, wherever it
    /// stands; text that only starts like one stays ordinary.
    #[test]
    fn special_token_text_is_one_token() {
        let t = o200k();
        assert_eq!(t.encode("<|endoftext|>"), vec![199_999]);
        assert_eq!(t.encode("<|endofprompt|>"), vec![200_018]);
        assert_eq!(t.count("<|endoftext|>"), 1);
        // " the" and " of" are one token each, on either side of the special one.
        assert_eq!(t.count(" the<|endoftext|> of"), 3);
        assert_eq!(t.count("<|endoftext|><|endoftext|>"), 2);
        assert_eq!(t.count("<|endoftext|> the of and"), 4);
        // Ordinary encoding would make each of these several tokens.
        // Ordinary encoding (ours before, and tiktoken's `encode_ordinary`) made it 7.
        assert_eq!(
            reference(Vocabulary::O200kBase)
                .encode_ordinary("<|endoftext|>")
                .len(),
            7
        );
        assert_eq!(t.encode("<|endoftext"), vec![27, 91, 419, 1440, 919]);
        let cl100k = TiktokenTokenizer::new(Vocabulary::Cl100kBase);
        assert_eq!(
            cl100k.encode("<|endoftext|><|fim_prefix|>"),
            vec![100_257, 100_258]
        );
    }

    /// Every special token is found by its common start.
    #[test]
    fn specials_start_alike() {
        for vocabulary in [Vocabulary::O200kBase, Vocabulary::Cl100kBase] {
            assert!(vocabulary
                .specials()
                .iter()
                .all(|(_, text)| text.starts_with(SPECIAL_START)));
        }
    }

    /// The block separator is the vocabulary's `eot_token` (AIPerf's tiktoken adapter has
    /// no BOS), one token.
    #[test]
    fn block_separator_is_end_of_text() {
        for (vocabulary, eot) in [
            (Vocabulary::O200kBase, 199_999u32),
            (Vocabulary::Cl100kBase, 100_257),
        ] {
            let t = TiktokenTokenizer::new(vocabulary);
            let separator = t.block_separator().expect("tiktoken has an end of text");
            assert_eq!(separator, "<|endoftext|>");
            assert_eq!(t.encode(separator), vec![eot], "{vocabulary:?}");
            let decoded = reference(vocabulary)
                .decode_bytes(&[eot])
                .expect("a known id");
            assert_eq!(decoded, separator.as_bytes());
        }
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
        assert_eq!(
            t.count("\u{0}\u{10ffff}"),
            t.encode("\u{0}\u{10ffff}").len()
        );
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
        assert_eq!(
            message,
            format!(
                "tokenizer `meta-llama/Llama-3.1-8B` is not one this build has: it takes the \
                 tiktoken vocabularies it carries ({AVAILABLE}); Hugging Face tokenizers (a \
                 model name or a tokenizer directory) are not supported"
            )
        );

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
