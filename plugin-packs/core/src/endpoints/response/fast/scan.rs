//! The plainest OpenAI chunks read without a JSON tree: a scanner over the bytes that
//! knows the fields of a unit, a choice and a message and nothing else.
//!
//! It answers only when it is sure to answer as the shape-by-shape path would: a nesting
//! deeper than [`MAX_DEPTH`], a key it does not know (or written with an escape), a key
//! given twice, a value of an unexpected type (a list where an object belongs), a
//! surrogate escape or anything that is not valid JSON makes it step aside (`None`), and
//! that path then reads the unit. A string value it keeps and that has escapes is
//! unescaped by serde_json itself. A test compares the scanner with that path on
//! generated units. serde's derived reader of the same fields spent about 4,000
//! instructions on a 230-byte body; this scanner reads one byte at a time with no dispatch
//! on field names beyond one `match`.

use std::borrow::Cow;

use serde::de::IgnoredAny;

use super::{Choice, Count, FastUsage, Message};

/// Deepest nesting of ignored values the scanner follows (serde's own limit is 128).
const MAX_DEPTH: usize = 64;

/// The fields of a unit the fast path reads.
pub(super) struct Scanned<'a> {
    pub object: Option<Cow<'a, str>>,
    pub usage: Option<FastUsage>,
    /// `Some(None)`: a `choices` array that is empty; `None`: no (or a null) `choices`.
    pub first_choice: Option<Option<Choice<'a>>>,
}

/// The unit in `text`, or `None` when the JSON-tree path should read it.
pub(super) fn unit(text: &str) -> Option<Scanned<'_>> {
    let mut c = Cursor { text, at: 0 };
    let mut out = Scanned {
        object: None,
        usage: None,
        first_choice: None,
    };
    c.object(|c, key| {
        Some(match key {
            "choices" => {
                if !c.null() {
                    out.first_choice = Some(c.choices()?);
                }
                1
            }
            "usage" => {
                let start = c.at;
                out.usage = match c.plain_usage() {
                    Some(usage) => usage,
                    None => {
                        // Any other usage object keeps serde's lenient count reading: it is
                        // one block a request, not one a token. Only an object: serde would
                        // read a list as the struct's fields in order.
                        c.at = start;
                        if c.peek() != Some(b'{') {
                            return None;
                        }
                        c.skip_value(0)?;
                        serde_json::from_str::<Option<FastUsage>>(&text[start..c.at]).ok()?
                    }
                };
                1 << 1
            }
            "object" => {
                out.object = c.optional_string()?;
                1 << 2
            }
            "id" => c.skip_value(0).map(|()| 1 << 3)?,
            "created" => c.skip_value(0).map(|()| 1 << 4)?,
            "model" => c.skip_value(0).map(|()| 1 << 5)?,
            "system_fingerprint" => c.skip_value(0).map(|()| 1 << 6)?,
            "service_tier" => c.skip_value(0).map(|()| 1 << 7)?,
            "prompt_logprobs" => c.skip_value(0).map(|()| 1 << 8)?,
            "kv_transfer_params" => c.skip_value(0).map(|()| 1 << 9)?,
            _ => return None,
        })
    })?;
    c.whitespace();
    (c.at == text.len()).then_some(out)
}

struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        self.at += usize::from(found);
        found
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        let found = self.text.as_bytes()[self.at..].starts_with(word.as_bytes());
        self.at += word.len() * usize::from(found);
        found.then_some(())
    }

    /// Consumes a `null` if one is next.
    fn null(&mut self) -> bool {
        self.peek() == Some(b'n') && self.literal("null").is_some()
    }

    /// An object of known fields: every key goes to `field`, which reads the value and
    /// returns the key's bit. A key given twice steps aside (the JSON tree keeps the last
    /// one; that is its call to make).
    fn object(&mut self, field: impl FnMut(&mut Self, &'a str) -> Option<u64>) -> Option<()> {
        self.members(true, field)
    }

    /// The members of an object. With `known_keys`, each key is read as a field's name
    /// (no escapes); otherwise it is checked as an ignored string and `field` gets `""`.
    fn members(
        &mut self,
        known_keys: bool,
        mut field: impl FnMut(&mut Self, &'a str) -> Option<u64>,
    ) -> Option<()> {
        self.whitespace();
        if !self.eat(b'{') {
            return None;
        }
        self.whitespace();
        if self.eat(b'}') {
            return Some(());
        }
        let mut seen = 0u64;
        loop {
            self.whitespace();
            let key = match known_keys {
                true => self.key()?,
                false => self.raw_string().map(|_| "")?,
            };
            self.whitespace();
            if !self.eat(b':') {
                return None;
            }
            self.whitespace();
            let bit = field(self, key)?;
            if seen & bit != 0 {
                return None;
            }
            seen |= bit;
            self.whitespace();
            if self.eat(b',') {
                continue;
            }
            return self.eat(b'}').then_some(());
        }
    }

    /// A usage block of plain counts only (`prompt_tokens`, `completion_tokens`,
    /// `total_tokens`, `input_tokens`, `output_tokens`, each an unsigned integer), or
    /// null; `None` for any other block, which serde then reads.
    fn plain_usage(&mut self) -> Option<Option<FastUsage>> {
        if self.null() {
            return Some(None);
        }
        let mut usage = FastUsage::default();
        self.object(|c, key| {
            let count = Count(Some(c.unsigned()?));
            Some(match key {
                "prompt_tokens" => {
                    usage.prompt_tokens = count;
                    1
                }
                "completion_tokens" => {
                    usage.completion_tokens = count;
                    2
                }
                "total_tokens" => {
                    usage.total_tokens = count;
                    4
                }
                "input_tokens" => {
                    usage.input_tokens = count;
                    8
                }
                "output_tokens" => {
                    usage.output_tokens = count;
                    16
                }
                _ => return None,
            })
        })?;
        Some(Some(usage))
    }

    /// An unsigned integer without fraction or exponent that fits a `u64`.
    fn unsigned(&mut self) -> Option<u64> {
        let start = self.at;
        let len = self.digits();
        let digits = &self.text.as_bytes()[start..start + len];
        if len == 0 || len > 19 || (len > 1 && digits[0] == b'0') {
            return None;
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        Some(digits.iter().fold(0, |n, &d| n * 10 + u64::from(d - b'0')))
    }

    /// A string's content, from its opening quote: where the content ends (before the
    /// closing quote, which is consumed) and whether it has escapes. Checked as serde
    /// checks a string it ignores: no control byte, each escape one of `\"`, `\\`, `\/`,
    /// `\b`, `\f`, `\n`, `\r`, `\t` or `\u` with four hex digits, and no surrogate.
    fn raw_string(&mut self) -> Option<(usize, usize, bool)> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.at;
        let bytes = self.text.as_bytes();
        let mut escaped = false;
        loop {
            self.at += string_end(&bytes[self.at..])?;
            match bytes[self.at] {
                b'"' => {
                    self.at += 1;
                    return Some((start, self.at - 1, escaped));
                }
                b'\\' => {
                    escaped = true;
                    let len = match *bytes.get(self.at + 1)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => 2,
                        // A surrogate steps aside: the full path's JSON tree refuses a lone
                        // one anywhere, even in a field nobody reads.
                        b'u' => match hex4(bytes.get(self.at + 2..self.at + 6)?)? {
                            0xd800..=0xdfff => return None,
                            _ => 6,
                        },
                        _ => return None,
                    };
                    self.at += len;
                }
                _ => return None,
            }
        }
    }

    /// A key of one of the structs: without escapes (serde would unescape it before
    /// matching the field, so an escaped key steps aside).
    fn key(&mut self) -> Option<&'a str> {
        match self.raw_string()? {
            // Both ends are at ASCII bytes: the slice is on char boundaries.
            (start, end, false) => self.text.get(start..end),
            _ => None,
        }
    }

    /// A string value as serde gives it: borrowed, or unescaped (by serde, so escapes and
    /// surrogates are read and refused exactly as serde reads and refuses them).
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let from = self.at;
        match self.raw_string()? {
            (start, end, false) => self.text.get(start..end).map(Cow::Borrowed),
            (_, end, true) => {
                let quoted = self.text.get(from..=end)?;
                serde_json::from_str::<String>(quoted).ok().map(Cow::Owned)
            }
        }
    }

    /// A string or null (`Option<Cow<str>>` in serde's struct).
    fn optional_string(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.null() {
            return Some(None);
        }
        self.string().map(Some)
    }

    /// `choices`: every element a [`Choice`]; the first one kept.
    fn choices(&mut self) -> Option<Option<Choice<'a>>> {
        if !self.eat(b'[') {
            return None;
        }
        self.whitespace();
        if self.eat(b']') {
            return Some(None);
        }
        let mut first = None;
        loop {
            let choice = self.choice()?;
            first.get_or_insert(choice);
            self.whitespace();
            if self.eat(b',') {
                self.whitespace();
                continue;
            }
            return self.eat(b']').then_some(first);
        }
    }

    fn choice(&mut self) -> Option<Choice<'a>> {
        let mut choice = Choice {
            delta: None,
            message: None,
            text: None,
        };
        self.object(|c, key| {
            Some(match key {
                "delta" => {
                    choice.delta = c.optional_message()?;
                    1
                }
                "message" => {
                    choice.message = c.optional_message()?;
                    1 << 1
                }
                "text" => {
                    choice.text = c.optional_string()?;
                    1 << 2
                }
                "index" => c.skip_value(0).map(|()| 1 << 3)?,
                "finish_reason" => c.skip_value(0).map(|()| 1 << 4)?,
                "stop_reason" => c.skip_value(0).map(|()| 1 << 5)?,
                "logprobs" => c.skip_value(0).map(|()| 1 << 6)?,
                "matched_stop" => c.skip_value(0).map(|()| 1 << 7)?,
                "token_ids" => c.skip_value(0).map(|()| 1 << 8)?,
                _ => return None,
            })
        })?;
        Some(choice)
    }

    fn optional_message(&mut self) -> Option<Option<Message<'a>>> {
        if self.null() {
            return Some(None);
        }
        let mut message = Message {
            content: None,
            reasoning_content: None,
            reasoning: None,
            tool_calls: None,
            function_call: None,
        };
        self.object(|c, key| {
            let text = |c: &mut Self| c.optional_string();
            Some(match key {
                "content" => {
                    message.content = text(c)?;
                    1
                }
                "reasoning_content" => {
                    message.reasoning_content = text(c)?;
                    1 << 1
                }
                "reasoning" => {
                    message.reasoning = text(c)?;
                    1 << 2
                }
                "role" => c.skip_value(0).map(|()| 1 << 3)?,
                "refusal" => c.skip_value(0).map(|()| 1 << 4)?,
                "annotations" => c.skip_value(0).map(|()| 1 << 5)?,
                // `Option<IgnoredAny>`: null is absent, anything else present.
                "tool_calls" => {
                    message.tool_calls = c.present()?;
                    1 << 6
                }
                "function_call" => {
                    message.function_call = c.present()?;
                    1 << 7
                }
                _ => return None,
            })
        })?;
        Some(Some(message))
    }

    /// An `Option<IgnoredAny>`: `None` for null, `Some` for any other value.
    fn present(&mut self) -> Option<Option<IgnoredAny>> {
        if self.null() {
            return Some(None);
        }
        self.skip_value(0).map(|()| Some(IgnoredAny))
    }

    /// An object skipped whole: its keys may repeat and have escapes, as serde allows
    /// (bit 0 is never seen twice).
    fn ignored_object(&mut self, depth: usize) -> Option<()> {
        self.members(false, |c, _| c.skip_value(depth + 1).map(|()| 0))
    }

    /// Any JSON value, checked as serde checks what it ignores.
    fn skip_value(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.raw_string().map(drop),
            b'{' => self.ignored_object(depth),
            b'[' => {
                self.at += 1;
                self.whitespace();
                if self.eat(b']') {
                    return Some(());
                }
                loop {
                    self.whitespace();
                    self.skip_value(depth + 1)?;
                    self.whitespace();
                    if self.eat(b',') {
                        continue;
                    }
                    return self.eat(b']').then_some(());
                }
            }
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// A number in JSON's grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Option<()> {
        self.eat(b'-');
        if !self.eat(b'0') {
            if !matches!(self.peek(), Some(b'1'..=b'9')) {
                return None;
            }
            self.digits();
        }
        if self.eat(b'.') && self.digits() == 0 {
            return None;
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        self.at - start
    }
}

/// The value of four hex digits.
fn hex4(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0, |n, &d| {
        let v = char::from(d).to_digit(16)?;
        Some(n * 16 + v)
    })
}

/// Where a string's plain bytes end: the offset of the first quote, backslash or control
/// byte. Eight bytes at a time: most of a unit's bytes are in its strings.
fn string_end(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        // A chunk of 8 bytes always converts.
        let x = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let quotes = x ^ (ONES * u64::from(b'"'));
        let backslashes = x ^ (ONES * u64::from(b'\\'));
        // The lowest flagged byte of each test is exact (a borrow only runs upwards): a
        // quote, a backslash, a byte under 0x20.
        let found = (quotes.wrapping_sub(ONES) & !quotes
            | backslashes.wrapping_sub(ONES) & !backslashes
            | x.wrapping_sub(ONES * 0x20) & !x)
            & HIGHS;
        if found != 0 {
            return Some(offset + found.trailing_zeros() as usize / 8);
        }
        offset += 8;
    }
    let tail = chunks.remainder();
    tail.iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|i| offset + i)
}

#[cfg(test)]
mod tests {
    use super::string_end;

    /// The eight-at-a-time search finds what a byte-by-byte one finds, wherever the quote,
    /// the backslash or the control byte is, among ASCII and UTF-8 bytes alike.
    #[test]
    fn string_end_finds_the_first_quote_or_control_byte() {
        let fillers = [b'a', b' ', b'!', b'#', b']', 0x7f, 0x80, 0xe9, 0xff];
        let stops = [b'"', b'\\', 0x00, 0x01, 0x1f];
        for len in 0..40 {
            for &filler in &fillers {
                let mut bytes = vec![filler; len];
                let naive = |b: &[u8]| b.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
                assert_eq!(string_end(&bytes), naive(&bytes));
                for at in 0..len {
                    for &stop in &stops {
                        bytes[at] = stop;
                        // A second stop later must not hide the first.
                        if at + 3 < len {
                            bytes[at + 3] = b'"';
                        }
                        assert_eq!(string_end(&bytes), Some(at), "{bytes:?}");
                        bytes.fill(filler);
                    }
                }
            }
        }
    }
}
