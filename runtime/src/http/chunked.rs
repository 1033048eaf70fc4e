//! Incremental `Transfer-Encoding: chunked` decoding (RFC 9112 §7.1).
//!
//! The decoder hands out body bytes as slices of the input the moment they arrive, so the
//! SSE framer sees a token as soon as its read completes instead of when the body ends
//! (the flaw that makes buffering HTTP clients unusable for TTFT). Size lines, extensions,
//! the CRLF after each chunk and trailers may be split across reads anywhere.

/// Longest chunk-size line (size, extensions, line end) accepted.
pub const MAX_SIZE_LINE: usize = 4096;
/// Largest trailer section accepted.
pub const MAX_TRAILERS: usize = 16 * 1024;

/// A chunked body that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkedError {
    #[error("invalid byte 0x{0:02x} in chunk size line")]
    InvalidSize(u8),
    #[error("chunk size does not fit in 64 bits")]
    SizeOverflow,
    #[error("chunk size line longer than {MAX_SIZE_LINE} bytes")]
    LineTooLong,
    #[error("expected LF after CR, found 0x{0:02x}")]
    MissingLf(u8),
    #[error("chunk data not followed by CRLF (found 0x{0:02x})")]
    MissingChunkEnd(u8),
    #[error("trailer section longer than {MAX_TRAILERS} bytes")]
    TrailersTooLong,
}

/// Result of one [`ChunkedDecoder::decode`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    /// Input bytes that belonged to this body. Less than the input only when `done`: the
    /// rest belongs to the next response on the connection.
    pub consumed: usize,
    /// The last chunk, the trailers and the final empty line have been seen.
    pub done: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a size line.
    Size,
    /// After the digits: optional whitespace before `;` or the line end.
    SizeTail,
    /// Inside chunk extensions, skipped up to the line end.
    Ext,
    /// Size line had its CR; LF expected.
    SizeLf,
    Data,
    /// Chunk data done; CR (or a lenient bare LF) expected.
    DataCr,
    DataLf,
    /// At the start of a trailer line (or of the final empty line).
    TrailerStart,
    TrailerLine,
    /// Final empty line had its CR; LF expected.
    TrailerLf,
    Done,
}

/// Incremental chunked-body decoder; allocation-free.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    size: u64,
    digits: usize,
    line_len: usize,
    remaining: u64,
    trailer_len: usize,
    body_len: u64,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        ChunkedDecoder {
            state: State::Size,
            size: 0,
            digits: 0,
            line_len: 0,
            remaining: 0,
            trailer_len: 0,
            body_len: 0,
        }
    }

    /// Starts a new body.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// Whether the terminating chunk and trailers have been seen.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decoded body bytes so far.
    pub fn body_len(&self) -> u64 {
        self.body_len
    }

    /// Decodes `input`, passing each run of body bytes to `sink` as it is found. Stops at the
    /// end of the body; see [`Decoded::consumed`]. After an error the decoder is unusable.
    pub fn decode<F: FnMut(&[u8])>(
        &mut self,
        input: &[u8],
        mut sink: F,
    ) -> Result<Decoded, ChunkedError> {
        let mut rest = input;
        while let Some((&byte, after)) = rest.split_first() {
            match self.state {
                State::Done => break,
                State::Data => {
                    let take = usize::try_from(self.remaining)
                        .unwrap_or(usize::MAX)
                        .min(rest.len());
                    let (data, tail) = rest.split_at(take);
                    sink(data);
                    self.body_len += take as u64;
                    self.remaining -= take as u64;
                    if self.remaining == 0 {
                        self.state = State::DataCr;
                    }
                    rest = tail;
                }
                _ => {
                    self.step(byte)?;
                    rest = after;
                }
            }
        }
        Ok(Decoded {
            consumed: input.len() - rest.len(),
            done: self.state == State::Done,
        })
    }

    fn step(&mut self, b: u8) -> Result<(), ChunkedError> {
        match self.state {
            State::Size | State::SizeTail | State::Ext => {
                self.line_len += 1;
                if self.line_len > MAX_SIZE_LINE {
                    return Err(ChunkedError::LineTooLong);
                }
                self.step_size_line(b)
            }
            State::SizeLf => match b {
                b'\n' => {
                    self.end_size_line();
                    Ok(())
                }
                _ => Err(ChunkedError::MissingLf(b)),
            },
            State::DataCr => match b {
                b'\r' => {
                    self.state = State::DataLf;
                    Ok(())
                }
                // Tolerated like most clients do: some servers end chunks with LF alone.
                b'\n' => {
                    self.state = State::Size;
                    Ok(())
                }
                _ => Err(ChunkedError::MissingChunkEnd(b)),
            },
            State::DataLf => match b {
                b'\n' => {
                    self.state = State::Size;
                    Ok(())
                }
                _ => Err(ChunkedError::MissingChunkEnd(b)),
            },
            State::TrailerStart => {
                self.state = match b {
                    b'\r' => State::TrailerLf,
                    b'\n' => State::Done,
                    _ => State::TrailerLine,
                };
                self.count_trailer()
            }
            State::TrailerLine => {
                if b == b'\n' {
                    self.state = State::TrailerStart;
                }
                self.count_trailer()
            }
            State::TrailerLf => match b {
                b'\n' => {
                    self.state = State::Done;
                    Ok(())
                }
                _ => Err(ChunkedError::MissingLf(b)),
            },
            // `decode` never steps in these states.
            State::Data | State::Done => Ok(()),
        }
    }

    fn step_size_line(&mut self, b: u8) -> Result<(), ChunkedError> {
        match (self.state, b) {
            (State::Size, _) if b.is_ascii_hexdigit() => {
                let digit = u64::from(hex_value(b));
                self.size = self
                    .size
                    .checked_mul(16)
                    .and_then(|s| s.checked_add(digit))
                    .ok_or(ChunkedError::SizeOverflow)?;
                self.digits += 1;
            }
            (State::Size, _) if self.digits == 0 => return Err(ChunkedError::InvalidSize(b)),
            (State::Size | State::SizeTail, b' ' | b'\t') => self.state = State::SizeTail,
            (State::Size | State::SizeTail, b';') => self.state = State::Ext,
            (_, b'\r') => self.state = State::SizeLf,
            (_, b'\n') => self.end_size_line(),
            (State::Ext, _) => {}
            _ => return Err(ChunkedError::InvalidSize(b)),
        }
        Ok(())
    }

    fn end_size_line(&mut self) {
        self.state = if self.size == 0 {
            State::TrailerStart
        } else {
            State::Data
        };
        self.remaining = self.size;
        self.size = 0;
        self.digits = 0;
        self.line_len = 0;
    }

    fn count_trailer(&mut self) -> Result<(), ChunkedError> {
        self.trailer_len += 1;
        if self.trailer_len > MAX_TRAILERS {
            return Err(ChunkedError::TrailersTooLong);
        }
        Ok(())
    }
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::test_util::XorShift;

    /// Decodes `input` fed in pieces cut at `cuts`; returns body, done, consumed, error.
    fn decode_cuts(input: &[u8], cuts: &[usize]) -> (Vec<u8>, bool, usize, Option<ChunkedError>) {
        let mut d = ChunkedDecoder::new();
        let mut body = Vec::new();
        let mut consumed = 0;
        let mut bounds: Vec<usize> = cuts.iter().copied().filter(|&c| c <= input.len()).collect();
        bounds.push(input.len());
        bounds.sort_unstable();
        let mut from = 0;
        for to in bounds {
            if d.is_done() {
                break;
            }
            match d.decode(&input[from..to], |b| body.extend_from_slice(b)) {
                Ok(r) => {
                    consumed += r.consumed;
                    assert!(r.done || r.consumed == to - from);
                }
                Err(e) => return (body, false, consumed, Some(e)),
            }
            from = to;
        }
        (body, d.is_done(), consumed, None)
    }

    fn check_every_split(input: &[u8], body: &[u8], message_len: usize) {
        for k in 0..=input.len() {
            let got = decode_cuts(input, &[k]);
            assert_eq!(
                got,
                (body.to_vec(), true, message_len, None),
                "split at {k}"
            );
        }
        let singles: Vec<usize> = (1..input.len()).collect();
        assert_eq!(
            decode_cuts(input, &singles),
            (body.to_vec(), true, message_len, None)
        );
        let mut rng = XorShift::new(input.len() as u64);
        for _ in 0..200 {
            let cuts: Vec<usize> = (0..6)
                .map(|_| rng.below(input.len() as u64 + 1) as usize)
                .collect();
            assert_eq!(
                decode_cuts(input, &cuts),
                (body.to_vec(), true, message_len, None)
            );
        }
    }

    #[test]
    fn plain_chunks_with_following_response() {
        let msg = b"5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n";
        let mut input = msg.to_vec();
        input.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        check_every_split(&input, b"hello, world", msg.len());
    }

    #[test]
    fn extensions_trailers_and_hex_case() {
        let msg: &[u8] = b"1A;name=value;flag\r\nabcdefghijklmnopqrstuvwxyz\r\n\
            0a ; quoted=\"x y\"\r\n0123456789\r\n\
            0;last\r\nX-Trailer: 1\r\nX-Other: two\r\n\r\n";
        let mut input = msg.to_vec();
        input.extend_from_slice(b"next");
        check_every_split(&input, b"abcdefghijklmnopqrstuvwxyz0123456789", msg.len());
        let lower = b"1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n";
        check_every_split(lower, b"abcdefghijklmnopqrstuvwxyz", lower.len());
    }

    #[test]
    fn bc21_sse_chunk_then_terminator() {
        let event = b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"A\"}}]}\n\n";
        assert_eq!(event.len(), 0x39);
        let mut input = b"39\r\n".to_vec();
        input.extend_from_slice(event);
        input.extend_from_slice(b"\r\n0\r\n\r\n");
        check_every_split(&input, event, input.len());
    }

    #[test]
    fn lenient_bare_lf_line_ends() {
        let input = b"3\nabc\n0\n\n";
        check_every_split(input, b"abc", input.len());
    }

    #[test]
    fn truncated_body_never_completes() {
        let full =
            b"39\r\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"A\"}}]}\n\n\r\n";
        for cut in 0..=full.len() {
            let (body, done, consumed, err) = decode_cuts(&full[..cut], &[]);
            assert!(!done, "cut {cut}");
            assert_eq!(err, None);
            assert_eq!(consumed, cut);
            assert_eq!(body.len(), cut.saturating_sub(4).min(0x39));
        }
        // Terminator without the final empty line is not the end either.
        assert!(!decode_cuts(b"0\r\n", &[]).1);
        assert!(!decode_cuts(b"0\r\nX-T: 1\r\n", &[]).1);
    }

    #[test]
    fn invalid_input_is_rejected() {
        let err = |input: &[u8]| decode_cuts(input, &[]).3;
        assert_eq!(err(b"\r\n"), Some(ChunkedError::InvalidSize(b'\r')));
        assert_eq!(err(b"g\r\n"), Some(ChunkedError::InvalidSize(b'g')));
        assert_eq!(err(b"-1\r\n"), Some(ChunkedError::InvalidSize(b'-')));
        assert_eq!(err(b"1 2\r\n"), Some(ChunkedError::InvalidSize(b'2')));
        assert_eq!(err(b"5\rx"), Some(ChunkedError::MissingLf(b'x')));
        assert_eq!(err(b"3\r\nabcX"), Some(ChunkedError::MissingChunkEnd(b'X')));
        assert_eq!(
            err(b"3\r\nabc\rX"),
            Some(ChunkedError::MissingChunkEnd(b'X'))
        );
        assert_eq!(err(b"0\r\n\rX"), Some(ChunkedError::MissingLf(b'X')));
        assert_eq!(
            err(b"10000000000000000\r\n"),
            Some(ChunkedError::SizeOverflow)
        );
        assert_eq!(err(b"ffffffffffffffff\r\n"), None);
        let mut long = b"1;".to_vec();
        long.resize(MAX_SIZE_LINE + 10, b'x');
        assert_eq!(err(&long), Some(ChunkedError::LineTooLong));
        let mut trailers = b"0\r\n".to_vec();
        while trailers.len() < MAX_TRAILERS + 100 {
            trailers.extend_from_slice(b"X-Pad: yyyyyyyyyyyyyyyyyyyyyyyy\r\n");
        }
        assert_eq!(err(&trailers), Some(ChunkedError::TrailersTooLong));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut rng = XorShift::new(11);
        let alphabet = b"0123456789abcdefABCDEF;= \t\r\nxyz";
        for _ in 0..5000 {
            let len = rng.below(48) as usize;
            let input: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
                .collect();
            let cut = rng.below(len as u64 + 1) as usize;
            let (body, done, consumed, err) = decode_cuts(&input, &[cut]);
            assert!(consumed <= input.len());
            assert!(body.len() <= input.len());
            if err.is_none() && !done {
                assert_eq!(consumed, input.len());
            }
        }
    }
}
