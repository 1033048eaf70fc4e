//! HTTP/1.x response heads: parsing (with `httparse`), body framing and keep-alive rules.

/// Most header lines accepted in one response head.
pub const MAX_HEADERS: usize = 100;
/// Largest response head accepted, interim responses included.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How the body of a response is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body: HEAD request, 1xx, 204 or 304.
    None,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the server closes the connection.
    UntilClose,
}

/// A parsed final response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    pub status: u16,
    pub reason: String,
    pub framing: BodyFraming,
    /// Whether the connection may carry another request after this response.
    pub keep_alive: bool,
    pub content_type: Option<String>,
    pub retry_after: Option<String>,
}

impl ResponseHead {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `Content-Type` is `text/event-stream` (parameters and case ignored).
    pub fn is_event_stream(&self) -> bool {
        self.content_type.as_deref().is_some_and(|ct| {
            ct.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("text/event-stream")
        })
    }
}

/// Outcome of parsing the bytes received so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadStatus {
    /// More bytes are needed.
    Partial,
    /// A complete 1xx interim response of `len` bytes, to be skipped.
    Interim { status: u16, len: usize },
    /// The final head, `len` bytes long; the body starts right after it.
    Complete { head: ResponseHead, len: usize },
}

/// A response head that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("malformed response head: {0}")]
    Malformed(httparse::Error),
    #[error("response head larger than {MAX_HEAD_BYTES} bytes")]
    TooLarge,
    #[error("invalid Content-Length header")]
    InvalidContentLength,
    #[error("unexpected 101 Switching Protocols")]
    UnexpectedUpgrade,
}

/// Parses a response head at the start of `buf`. `head_request`: the request was `HEAD`,
/// so the response has no body whatever its headers say.
pub fn parse_response_head(buf: &[u8], head_request: bool) -> Result<HeadStatus, HeadError> {
    Ok(match parse_head(buf, head_request)? {
        RawStatus::Partial => HeadStatus::Partial,
        RawStatus::Interim { status, len } => HeadStatus::Interim { status, len },
        RawStatus::Complete { head, len } => HeadStatus::Complete {
            head: head.to_owned(),
            len,
        },
    })
}

/// [`ResponseHead`] borrowing its texts from the bytes read, so the measuring path
/// allocates only for what it keeps (an error's reason, `Retry-After`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawHead<'a> {
    pub version: u8,
    pub status: u16,
    pub reason: &'a str,
    pub framing: BodyFraming,
    pub keep_alive: bool,
    pub content_type: Option<&'a [u8]>,
    pub retry_after: Option<&'a [u8]>,
}

impl RawHead<'_> {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `Content-Type` is `text/event-stream` (parameters and case ignored).
    pub fn is_event_stream(&self) -> bool {
        self.content_type.is_some_and(|ct| {
            let media = ct.split(|&b| b == b';').next().unwrap_or_default();
            trim(media).eq_ignore_ascii_case(b"text/event-stream")
        })
    }

    pub fn to_owned(self) -> ResponseHead {
        ResponseHead {
            version: self.version,
            status: self.status,
            reason: self.reason.to_owned(),
            framing: self.framing,
            keep_alive: self.keep_alive,
            content_type: self.content_type.map(header_string),
            retry_after: self.retry_after.map(header_string),
        }
    }
}

/// [`HeadStatus`] with a [`RawHead`].
#[derive(Debug)]
pub(crate) enum RawStatus<'a> {
    Partial,
    Interim { status: u16, len: usize },
    Complete { head: RawHead<'a>, len: usize },
}

/// [`parse_response_head`] without copying the head's texts.
pub(crate) fn parse_head(buf: &[u8], head_request: bool) -> Result<RawStatus<'_>, HeadError> {
    // Uninitialised slots: httparse writes the headers it finds, so a parse does not
    // first clear 100 slots (3 KiB) it will mostly not use.
    let mut headers =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let mut config = httparse::ParserConfig::default();
    // Servers in the wild get these wrong; the measurement matters more than strictness.
    config
        .allow_spaces_after_header_name_in_responses(true)
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .allow_obsolete_multiline_headers_in_responses(true);
    let len = match config.parse_response_with_uninit_headers(&mut response, buf, &mut headers) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => {
            return Err(HeadError::TooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(RawStatus::Partial),
        Err(e) => return Err(HeadError::Malformed(e)),
    };
    if len > MAX_HEAD_BYTES {
        return Err(HeadError::TooLarge);
    }
    let status = response.code.unwrap_or(0);
    let version = response.version.unwrap_or(1);
    if status == 101 {
        return Err(HeadError::UnexpectedUpgrade);
    }
    if (100..200).contains(&status) {
        return Ok(RawStatus::Interim { status, len });
    }

    let mut content_length: Option<u64> = None;
    let mut transfer_chunked: Option<bool> = None;
    let mut close = false;
    let mut keep_alive_token = false;
    let mut content_type = None;
    let mut retry_after = None;
    for h in response.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            for part in h.value.split(|&b| b == b',') {
                let n = parse_decimal(trim(part)).ok_or(HeadError::InvalidContentLength)?;
                if content_length.is_some_and(|c| c != n) {
                    return Err(HeadError::InvalidContentLength);
                }
                content_length = Some(n);
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Only the final coding decides the framing; several headers form one list.
            if let Some(last) = h
                .value
                .split(|&b| b == b',')
                .map(trim)
                .rfind(|c| !c.is_empty())
            {
                transfer_chunked = Some(last.eq_ignore_ascii_case(b"chunked"));
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',').map(trim) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case("content-type") {
            content_type = Some(h.value);
        } else if name.eq_ignore_ascii_case("retry-after") {
            retry_after = Some(h.value);
        }
    }

    let framing = if head_request || status == 204 || status == 304 {
        BodyFraming::None
    } else {
        match (transfer_chunked, content_length) {
            (Some(true), _) => BodyFraming::Chunked,
            (Some(false), _) => BodyFraming::UntilClose,
            (None, Some(n)) => BodyFraming::Length(n),
            (None, None) => BodyFraming::UntilClose,
        }
    };
    let keep_alive =
        !close && (version >= 1 || keep_alive_token) && framing != BodyFraming::UntilClose;
    Ok(RawStatus::Complete {
        head: RawHead {
            version,
            status,
            reason: response.reason.unwrap_or_default(),
            framing,
            keep_alive,
            content_type,
            retry_after,
        },
        len,
    })
}

fn trim(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

pub(crate) fn header_string(value: &[u8]) -> String {
    String::from_utf8_lossy(trim(value)).into_owned()
}

fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        if d.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::test_util::XorShift;

    fn complete(buf: &[u8]) -> (ResponseHead, usize) {
        match parse_response_head(buf, false) {
            Ok(HeadStatus::Complete { head, len }) => (head, len),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sse_head_with_chunked_body() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n\
            Transfer-Encoding: chunked\r\n\r\n39\r\n";
        let (head, len) = complete(raw);
        assert_eq!(len, raw.len() - 4);
        assert_eq!(head.status, 200);
        assert_eq!(head.reason, "OK");
        assert_eq!(head.version, 1);
        assert_eq!(head.framing, BodyFraming::Chunked);
        assert!(head.keep_alive);
        assert!(head.is_success());
        assert!(head.is_event_stream());
    }

    #[test]
    fn partial_heads_at_every_split() {
        let raw = b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n\
            Retry-After: 2\r\nContent-Length: 57\r\n\r\n";
        for k in 0..raw.len() {
            assert_eq!(
                parse_response_head(&raw[..k], false),
                Ok(HeadStatus::Partial),
                "{k}"
            );
        }
        let (head, len) = complete(raw);
        assert_eq!(len, raw.len());
        assert_eq!(head.status, 429);
        assert_eq!(head.reason, "Too Many Requests");
        assert_eq!(head.retry_after.as_deref(), Some("2"));
        assert_eq!(head.content_type.as_deref(), Some("application/json"));
        assert_eq!(head.framing, BodyFraming::Length(57));
        assert!(!head.is_event_stream());
    }

    #[test]
    fn interim_responses_are_reported_for_skipping() {
        let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
            HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        let Ok(HeadStatus::Interim { status: 100, len }) = parse_response_head(raw, false) else {
            panic!()
        };
        let rest = &raw[len..];
        let Ok(HeadStatus::Interim { status: 103, len }) = parse_response_head(rest, false) else {
            panic!()
        };
        let (head, _) = complete(&rest[len..]);
        assert_eq!(head.framing, BodyFraming::Length(0));
        assert_eq!(
            parse_response_head(b"HTTP/1.1 101 Switching Protocols\r\n\r\n", false),
            Err(HeadError::UnexpectedUpgrade)
        );
    }

    #[test]
    fn framing_rules() {
        let framing = |raw: &[u8], head_req: bool| match parse_response_head(raw, head_req) {
            Ok(HeadStatus::Complete { head, .. }) => Ok(head.framing),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e),
        };
        use BodyFraming::*;
        assert_eq!(
            framing(
                b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
                false
            ),
            Ok(None)
        );
        assert_eq!(
            framing(b"HTTP/1.1 304 Not Modified\r\n\r\n", false),
            Ok(None)
        );
        assert_eq!(
            framing(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true),
            Ok(None)
        );
        assert_eq!(
            framing(
                b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n",
                false
            ),
            Ok(Chunked)
        );
        assert_eq!(
            framing(
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, CHUNKED\r\n\r\n",
                false
            ),
            Ok(Chunked)
        );
        assert_eq!(
            framing(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false),
            Ok(UntilClose)
        );
        assert_eq!(framing(b"HTTP/1.1 200 OK\r\n\r\n", false), Ok(UntilClose));
        assert_eq!(
            framing(
                b"HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\nContent-Length: 7\r\n\r\n",
                false
            ),
            Ok(Length(7))
        );
        for bad in [&b"5, 6"[..], b"-1", b"", b"1e3", b"99999999999999999999999"] {
            let mut raw = b"HTTP/1.1 200 OK\r\nContent-Length: ".to_vec();
            raw.extend_from_slice(bad);
            raw.extend_from_slice(b"\r\n\r\n");
            assert_eq!(
                framing(&raw, false),
                Err(HeadError::InvalidContentLength),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn keep_alive_rules() {
        let ka = |raw: &[u8]| complete(raw).0.keep_alive;
        assert!(ka(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert!(!ka(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!ka(
            b"HTTP/1.1 200 OK\r\nConnection: Upgrade, Close\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!ka(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert!(ka(
            b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n"
        ));
        // Without a length the end of the body is the close.
        assert!(!ka(b"HTTP/1.1 200 OK\r\n\r\n"));
    }

    #[test]
    fn malformed_and_oversized_heads() {
        assert!(matches!(
            parse_response_head(b"HTTX/1.1 200 OK\r\n\r\n", false),
            Err(HeadError::Malformed(_))
        ));
        assert!(matches!(
            parse_response_head(b"HTTP/1.1 2x0 OK\r\n\r\n", false),
            Err(HeadError::Malformed(_))
        ));
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(
            parse_response_head(&many, false),
            Err(HeadError::Malformed(httparse::Error::TooManyHeaders))
        );
        let mut big = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
        big.resize(MAX_HEAD_BYTES + 1, b'a');
        assert_eq!(parse_response_head(&big, false), Err(HeadError::TooLarge));
        // Header values that are not UTF-8 are kept lossily, not rejected.
        let (head, _) =
            complete(b"HTTP/1.1 503 \r\nRetry-After: \xff1\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(head.reason, "");
        assert_eq!(head.retry_after.as_deref(), Some("\u{fffd}1"));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut rng = XorShift::new(3);
        let seed = b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\n";
        for _ in 0..5000 {
            let mut raw = seed.to_vec();
            for _ in 0..rng.below(6) {
                let i = rng.below(raw.len() as u64) as usize;
                raw[i] = rng.next_u64() as u8;
            }
            let cut = rng.below(raw.len() as u64 + 1) as usize;
            let _ = parse_response_head(&raw[..cut], rng.below(2) == 0);
        }
    }
}
