//! Transport failures as AIPerf 0.13 records them. AIPerf turns the exception aiohttp
//! raises into its `ErrorDetails` (`from_exception`): the message is the exception's
//! Python `repr`, `cause` the repr of its `__cause__`, `cause_chain` the class names down
//! the chain. The same failure gets the same text here, so the two tools' records and
//! error summaries (grouped by code, type and message) line up.

use std::io;
use std::net::SocketAddr;

use crate::record::ErrorDetails;

/// AIPerf cuts a repr longer than this many characters and marks the cut with `…`.
const MAX_REPR_CHARS: usize = 4096;

/// aiohttp's name for a connection the server closed before the response was complete.
pub(crate) const SERVER_DISCONNECTED: &str = "ServerDisconnectedError";

/// The error `type` of a connection that could not be opened, as aiohttp names it: it
/// wraps every socket error of the connect (refused, unreachable, timed out) in
/// `ClientConnectorError`.
pub(crate) const CLIENT_CONNECTOR_ERROR: &str = "ClientConnectorError";

/// Python's `repr` of a `str`: single quotes unless the text has a single quote and no
/// double one, backslash escapes for the quote, backslashes and unprintable characters.
pub fn str_repr(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_str_repr(s, &mut out);
    out
}

/// [`str_repr`] appended to `out`.
pub(crate) fn write_str_repr(s: &str, out: &mut String) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if !printable(c) => {
                let n = u32::from(c);
                let escaped = match n {
                    0..=0xff => format!("\\x{n:02x}"),
                    0x100..=0xffff => format!("\\u{n:04x}"),
                    _ => format!("\\U{n:08x}"),
                };
                out.push_str(&escaped);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// Whether Python prints `c` as is in a repr. Python's test is the Unicode category
/// (not `Cc`, `Cf`, `Cs`, `Co`, `Cn`, `Zl`, `Zp`, nor `Zs` other than the space); this
/// covers the control, format, separator and private-use characters, not the
/// unassigned ones, which are too many to list and which servers do not send.
fn printable(c: char) -> bool {
    !matches!(
        u32::from(c),
        0..=0x1f
            | 0x7f..=0xa0
            | 0xad
            | 0x600..=0x605
            | 0x61c
            | 0x6dd
            | 0x70f
            | 0x1680
            | 0x180e
            | 0x2000..=0x200f
            | 0x2028..=0x202f
            | 0x205f..=0x2064
            | 0x2066..=0x206f
            | 0x3000
            | 0xd800..=0xf8ff
            | 0xfeff
            | 0xfff9..=0xfffb
            | 0xf0000..
    )
}

/// `Class('message')`: the repr of an exception raised with one text argument.
pub fn exception_repr(class: &str, message: &str) -> String {
    format!("{class}({})", str_repr(message))
}

/// AIPerf's `_safe_repr`: at most [`MAX_REPR_CHARS`] characters, then `…`.
fn safe(repr: String) -> String {
    match repr.char_indices().nth(MAX_REPR_CHARS) {
        Some((at, _)) => format!("{}…", &repr[..at]),
        None => repr,
    }
}

/// The `OSError` subclass Python raises for `errno` (Linux numbering).
fn os_error_class(errno: i32) -> &'static str {
    match errno {
        1 | 13 => "PermissionError",
        2 => "FileNotFoundError",
        3 => "ProcessLookupError",
        4 => "InterruptedError",
        10 => "ChildProcessError",
        11 | 114 | 115 => "BlockingIOError",
        17 => "FileExistsError",
        20 => "NotADirectoryError",
        21 => "IsADirectoryError",
        32 | 108 => "BrokenPipeError",
        103 => "ConnectionAbortedError",
        104 => "ConnectionResetError",
        110 => "TimeoutError",
        111 => "ConnectionRefusedError",
        _ => "OSError",
    }
}

/// The C library's text for `errno`, as Python's `strerror` gives it.
fn strerror(errno: i32) -> String {
    let text = io::Error::from_raw_os_error(errno).to_string();
    let suffix = format!(" (os error {errno})");
    text.strip_suffix(&suffix)
        .map_or(text.clone(), str::to_owned)
}

/// An OS error as Python raises it: its class and `Class(errno, 'text')`; `None` for an
/// error that did not come from the OS (a TLS failure).
fn os_error(e: &io::Error) -> Option<(&'static str, String)> {
    let errno = e.raw_os_error()?;
    let class = os_error_class(errno);
    Some((
        class,
        format!("{class}({errno}, {})", str_repr(&strerror(errno))),
    ))
}

/// aiohttp's `ConnectionKey` of a connection to `host`:`port` (`host` as the URL names
/// it, without brackets), as AIPerf's pool makes it: no proxy, default verification.
#[derive(Debug, Clone)]
pub struct ConnectionKey {
    pub host: String,
    pub port: u16,
    pub is_ssl: bool,
}

impl ConnectionKey {
    fn repr(&self) -> String {
        let is_ssl = if self.is_ssl { "True" } else { "False" };
        format!(
            "ConnectionKey(host={}, port={}, is_ssl={is_ssl}, ssl=True, proxy=None, \
             proxy_auth=None, proxy_headers_hash=None, server_hostname=None)",
            str_repr(&self.host),
            self.port
        )
    }
}

/// A connection that could not be opened: aiohttp's `ClientConnectorError` around the
/// socket's error, whose text asyncio writes as `Connect call failed ('ip', port)`.
/// `None` for an error that did not come from the OS.
pub fn connect_failed(
    key: &ConnectionKey,
    addr: SocketAddr,
    e: &io::Error,
) -> Option<ErrorDetails> {
    let errno = e.raw_os_error()?;
    let class = os_error_class(errno);
    let text = format!("Connect call failed {}", sockaddr_repr(addr));
    let inner = format!("{class}({errno}, {})", str_repr(&text));
    Some(connector_error(key, inner, class))
}

/// A connection that failed after its TCP connect, in the TLS handshake, with an OS
/// error: `ClientConnectorError` around it. `None` for an error that did not come from
/// the OS.
pub fn handshake_failed(key: &ConnectionKey, e: &io::Error) -> Option<ErrorDetails> {
    let (class, inner) = os_error(e)?;
    Some(connector_error(key, inner, class))
}

fn connector_error(key: &ConnectionKey, inner: String, class: &str) -> ErrorDetails {
    ErrorDetails::exception(
        CLIENT_CONNECTOR_ERROR,
        format!("{CLIENT_CONNECTOR_ERROR}({}, {inner})", key.repr()),
        Some(inner),
        &[CLIENT_CONNECTOR_ERROR, class],
    )
}

/// Python's address tuple: `('127.0.0.1', 8000)`, `('::1', 8000, 0, 0)`.
fn sockaddr_repr(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("({}, {})", str_repr(&a.ip().to_string()), a.port()),
        SocketAddr::V6(a) => format!(
            "({}, {}, {}, {})",
            str_repr(&a.ip().to_string()),
            a.port(),
            a.flowinfo(),
            a.scope_id()
        ),
    }
}

/// The server closed the connection before a response: aiohttp's
/// `ServerDisconnectedError`, with nothing parsed to carry.
pub fn server_disconnected() -> ErrorDetails {
    ErrorDetails::exception(
        SERVER_DISCONNECTED,
        format!("{SERVER_DISCONNECTED}('Server disconnected')"),
        None,
        &[SERVER_DISCONNECTED],
    )
}

/// A socket error before the response was complete: aiohttp's `ClientOSError` with the
/// OS error's arguments, raised from it. `None` for an error that did not come from the
/// OS.
pub fn client_os_error(e: &io::Error) -> Option<ErrorDetails> {
    let (class, inner) = os_error(e)?;
    let errno = e.raw_os_error()?;
    Some(ErrorDetails::exception(
        "ClientOSError",
        format!("ClientOSError({errno}, {})", str_repr(&strerror(errno))),
        Some(inner),
        &["ClientOSError", class],
    ))
}

/// A body cut short: aiohttp's `ClientPayloadError`, raised from its parser's
/// `class` (`TransferEncodingError`, `ContentLengthError`) with `text`, and naming the
/// socket's error after it when the connection failed rather than closed.
pub fn payload_error(class: &str, text: &str, conn_error: Option<&io::Error>) -> ErrorDetails {
    let cause = format!("<{class}: 400, message={}>", str_repr(text));
    let mut message = format!("Response payload is not completed: {cause}");
    if let Some(e) = conn_error {
        message.push_str(". ");
        match os_error(e) {
            Some((_, repr)) => message.push_str(&repr),
            None => message.push_str(&e.to_string()),
        }
    }
    ErrorDetails::exception(
        "ClientPayloadError",
        exception_repr("ClientPayloadError", &message),
        Some(cause),
        &["ClientPayloadError", class],
    )
}

/// An SSE event with an `event: error` line, as AIPerf's stream reader raises it
/// (`SSEResponseError`, code 502): its first comment's text, else the whole event as
/// the `SSEMessage` it parsed (`perf_ns`: the monotonic time of the read that completed
/// the event).
pub fn sse_error(perf_ns: u64, fields: &[(String, Option<String>)]) -> ErrorDetails {
    let comment = fields.iter().find(|(name, _)| name == "comment");
    let text = match comment {
        Some((_, Some(text))) => text.clone(),
        _ => {
            let packets: Vec<String> = fields
                .iter()
                .map(|(name, value)| {
                    let value = value.as_deref().map_or_else(|| "None".to_owned(), str_repr);
                    format!("SSEField(name={}, value={value})", str_repr(name))
                })
                .collect();
            format!(
                "Unknown error in SSE response: SSEMessage(perf_ns={perf_ns}, packets=[{}])",
                packets.join(", ")
            )
        }
    };
    let message = format!("Error occurred in SSE response: {text}");
    let mut error = ErrorDetails::exception(
        "SSEResponseError",
        safe(exception_repr("SSEResponseError", &message)),
        None,
        &["SSEResponseError"],
    );
    error.code = Some(502);
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn str_repr_quotes_and_escapes_as_python() {
        assert_eq!(str_repr("plain"), "'plain'");
        assert_eq!(str_repr(""), "''");
        assert_eq!(str_repr("it's"), "\"it's\"");
        assert_eq!(str_repr("say \"hi\""), "'say \"hi\"'");
        // Both quotes: single quotes, the single one escaped.
        assert_eq!(str_repr("it's \"bad\"\\ \tx"), "'it\\'s \"bad\"\\\\ \\tx'");
        assert_eq!(str_repr("a\nb\rc\u{0}\u{7f}"), "'a\\nb\\rc\\x00\\x7f'");
        assert_eq!(
            str_repr("é🚀\u{a0}\u{200b}\u{2028}"),
            "'é🚀\\xa0\\u200b\\u2028'"
        );
        assert_eq!(str_repr("\u{f0000}"), "'\\U000f0000'");
    }

    #[test]
    fn long_reprs_are_cut_as_aiperf_cuts_them() {
        let fields = [("data".to_owned(), Some("x".repeat(5000)))];
        let error = sse_error(1, &fields);
        assert_eq!(error.message.chars().count(), MAX_REPR_CHARS + 1);
        assert!(error.message.ends_with("xxx…"), "{}", error.message);
        assert_eq!(safe("short".to_owned()), "short");
    }

    #[test]
    fn os_errors_are_named_as_python_names_them() {
        let reset = io::Error::from_raw_os_error(104);
        assert_eq!(
            client_os_error(&reset),
            Some(ErrorDetails::exception(
                "ClientOSError",
                "ClientOSError(104, 'Connection reset by peer')".to_owned(),
                Some("ConnectionResetError(104, 'Connection reset by peer')".to_owned()),
                &["ClientOSError", "ConnectionResetError"],
            ))
        );
        let pipe = io::Error::from_raw_os_error(32);
        assert_eq!(
            client_os_error(&pipe).map(|e| (e.message, e.cause_chain)),
            Some((
                "ClientOSError(32, 'Broken pipe')".to_owned(),
                vec!["ClientOSError".to_owned(), "BrokenPipeError".to_owned()]
            ))
        );
        let other = io::Error::from_raw_os_error(113);
        assert_eq!(
            client_os_error(&other).and_then(|e| e.cause),
            Some("OSError(113, 'No route to host')".to_owned())
        );
        // Not from the OS: the caller keeps its own words.
        let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "closed");
        assert_eq!(client_os_error(&eof), None);
    }

    #[test]
    fn refused_connections_read_as_aiohttp_writes_them() {
        let key = ConnectionKey {
            host: "127.0.0.1".to_owned(),
            port: 56461,
            is_ssl: false,
        };
        let addr: SocketAddr = "127.0.0.1:56461".parse().unwrap();
        let refused = io::Error::from_raw_os_error(111);
        let inner = "ConnectionRefusedError(111, \"Connect call failed ('127.0.0.1', 56461)\")";
        assert_eq!(
            connect_failed(&key, addr, &refused),
            Some(ErrorDetails::exception(
                "ClientConnectorError",
                format!(
                    "ClientConnectorError(ConnectionKey(host='127.0.0.1', port=56461, \
                     is_ssl=False, ssl=True, proxy=None, proxy_auth=None, \
                     proxy_headers_hash=None, server_hostname=None), {inner})"
                ),
                Some(inner.to_owned()),
                &["ClientConnectorError", "ConnectionRefusedError"],
            ))
        );
        let key = ConnectionKey {
            host: "::1".to_owned(),
            port: 8443,
            is_ssl: true,
        };
        let addr: SocketAddr = "[::1]:8443".parse().unwrap();
        let error = connect_failed(&key, addr, &refused).unwrap();
        assert_eq!(
            error.cause.as_deref(),
            Some("ConnectionRefusedError(111, \"Connect call failed ('::1', 8443, 0, 0)\")")
        );
        assert!(
            error.message.starts_with(
                "ClientConnectorError(ConnectionKey(host='::1', port=8443, is_ssl=True,"
            ),
            "{}",
            error.message
        );
        let reset = io::Error::from_raw_os_error(104);
        assert_eq!(
            handshake_failed(&key, &reset).and_then(|e| e.cause),
            Some("ConnectionResetError(104, 'Connection reset by peer')".to_owned())
        );
    }

    #[test]
    fn truncated_bodies_read_as_aiohttp_writes_them() {
        let text = "Not enough data to satisfy transfer length header.";
        let cause = "<TransferEncodingError: 400, message='Not enough data to satisfy \
                     transfer length header.'>";
        assert_eq!(
            payload_error("TransferEncodingError", text, None),
            ErrorDetails::exception(
                "ClientPayloadError",
                format!("ClientPayloadError(\"Response payload is not completed: {cause}\")"),
                Some(cause.to_owned()),
                &["ClientPayloadError", "TransferEncodingError"],
            )
        );
        let reset = io::Error::from_raw_os_error(104);
        assert_eq!(
            payload_error("TransferEncodingError", text, Some(&reset)).message,
            format!(
                "ClientPayloadError(\"Response payload is not completed: {cause}. \
                 ConnectionResetError(104, 'Connection reset by peer')\")"
            )
        );
    }

    #[test]
    fn sse_error_events_read_as_aiperf_writes_them() {
        // AIPerf 0.13's record for `event: Error \ndata: it's "bad"\ \tx\ndata: two\n
        // novalue\n\n` (its perf_ns aside).
        let fields = [
            ("event".to_owned(), Some("Error".to_owned())),
            ("data".to_owned(), Some("it's \"bad\"\\ \tx".to_owned())),
            ("data".to_owned(), Some("two".to_owned())),
            ("novalue".to_owned(), None),
        ];
        let expected = ErrorDetails {
            code: Some(502),
            kind: "SSEResponseError".to_owned(),
            message: "SSEResponseError('Error occurred in SSE response: Unknown error in SSE \
                      response: SSEMessage(perf_ns=19874455098532, packets=[SSEField(name=\\'\
                      event\\', value=\\'Error\\'), SSEField(name=\\'data\\', value=\\'it\\\\\\'s \
                      \"bad\"\\\\\\\\ \\\\tx\\'), SSEField(name=\\'data\\', value=\\'two\\'), \
                      SSEField(name=\\'novalue\\', value=None)])')"
                .to_owned(),
            cause: None,
            cause_chain: vec!["SSEResponseError".to_owned()],
        };
        assert_eq!(sse_error(19_874_455_098_532, &fields), expected);
        // A comment is the message.
        let fields = [
            ("event".to_owned(), Some("error".to_owned())),
            ("comment".to_owned(), Some("model crashed".to_owned())),
            ("data".to_owned(), Some("{\"x\":1}".to_owned())),
        ];
        assert_eq!(
            sse_error(1, &fields).message,
            "SSEResponseError('Error occurred in SSE response: model crashed')"
        );
        // Without a colon the comment has no text: the whole event is the message.
        let fields = [
            ("event".to_owned(), Some("error".to_owned())),
            ("comment".to_owned(), None),
        ];
        assert_eq!(
            sse_error(7, &fields).message,
            "SSEResponseError(\"Error occurred in SSE response: Unknown error in SSE response: \
             SSEMessage(perf_ns=7, packets=[SSEField(name='event', value='error'), \
             SSEField(name='comment', value=None)])\")"
        );
    }
}
