//! Generated token text and prompt-size estimates.

use std::ops::Range;

/// The token vocabulary of generated text. Each entry is a single token of tiktoken's
/// `o200k_base`, and because each starts with a space and is a lowercase ASCII word, the
/// tokenizer's pre-split regex cuts any concatenation of them back at exactly these
/// boundaries; so N generated tokens always re-tokenize to exactly N tokens. The client
/// counts output tokens that way, and tests assert OSL == configured tokens.
///
/// Verified against `o200k_base.tiktoken` (ranks: " the" 290, " of" 328, " and" 326, ...)
/// for every entry and for a 1000-token concatenation. Do not add words without rechecking.
pub const WORDS: [&str; 30] = [
    " the", " of", " and", " to", " in", " is", " that", " for", " it", " with", " as", " was",
    " on", " be", " at", " by", " this", " had", " not", " are", " but", " from", " or", " have",
    " an", " they", " which", " one", " you", " were",
];

/// The text of token `index` (0-based) of a generated completion.
pub fn token(index: u64) -> &'static str {
    // The modulo result is below WORDS.len(), so the cast cannot truncate.
    WORDS[(index % WORDS.len() as u64) as usize]
}

/// The concatenated text of tokens `range` of a generated completion.
pub fn text(range: Range<u64>) -> String {
    let mut out = String::with_capacity(range.end.saturating_sub(range.start) as usize * 6);
    for i in range {
        out.push_str(token(i));
    }
    out
}

/// Approximates a prompt's token count by its whitespace-separated words. The mock has no
/// tokenizer and `prompt_tokens` is informational only: clients measure ISL themselves.
pub fn count_words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_distinct_space_prefixed_lowercase() {
        for (i, w) in WORDS.iter().enumerate() {
            assert!(w.starts_with(' '), "{w:?}");
            assert!(w[1..].chars().all(|c| c.is_ascii_lowercase()), "{w:?}");
            assert!(!WORDS[..i].contains(w), "duplicate {w:?}");
        }
    }

    #[test]
    fn text_cycles_and_counts() {
        assert_eq!(text(0..3), " the of and");
        assert_eq!(token(30), " the");
        assert_eq!(count_words(&text(0..100)), 100);
        assert_eq!(text(5..5), "");
    }
}
