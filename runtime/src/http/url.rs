//! Base URLs (`--url`) and request targets, following AIPerf's URL rules.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};

/// URL scheme of a base URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A base URL that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    #[error("empty URL")]
    Empty,
    #[error("unsupported URL scheme `{0}` (expected http or https)")]
    UnsupportedScheme(String),
    #[error("URL `{0}` has no host")]
    MissingHost(String),
    #[error("invalid port in URL `{0}`")]
    InvalidPort(String),
    #[error("unclosed `[` around the IPv6 host in URL `{0}`")]
    UnclosedBracket(String),
    #[error("invalid host `{host}` in URL `{url}`")]
    InvalidHost { host: String, url: String },
    #[error("credentials in URL `{0}` are not supported; pass them as headers")]
    Credentials(String),
    #[error("malformed scheme in URL `{0}` (expected `http://` or `https://`)")]
    MalformedScheme(String),
    #[error(
        "URL `{0}` has a space or control character in its path or query; percent-encode it \
         (`%20`)"
    )]
    InvalidPath(String),
    #[error("TLS for `{url}`: {source}")]
    Tls {
        url: String,
        #[source]
        source: super::tls::TlsSetupError,
    },
    #[error("cannot resolve `{host}:{port}`: {source}")]
    Resolve {
        host: String,
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("`{host}:{port}` resolved to no address")]
    NoAddress { host: String, port: u16 },
}

/// A parsed base URL: scheme, host, port, base path and query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    scheme: Scheme,
    /// Host without IPv6 brackets.
    host: String,
    port: u16,
    /// `Host` header value: host (bracketed for IPv6) plus the port when not the default.
    authority: String,
    /// Base path without trailing `/` (empty for the root).
    path: String,
    query: Option<String>,
}

/// `url` with the user and password of its authority (`user:pw@`) replaced by
/// `<redacted>`, for artifacts of a URL that was accepted (an `@` in its path stays).
pub fn redact_userinfo(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}<redacted>{}", &url[..start], &rest[at..]),
        None => url.to_owned(),
    }
}

/// `url` with everything between its scheme and its last `@` replaced by `<redacted>`,
/// for the messages about a `--url`: a refused URL must not echo a password to the
/// console. The last `@` anywhere, not only in the authority: a password holding an
/// unencoded `/`, `?` or `#` (`http://alice:pa/ss@host`) or a mistyped scheme
/// (`http//alice:pw@host`) puts it past the authority.
pub fn redact_for_message(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    match url[start..].rfind('@') {
        Some(at) => format!("{}<redacted>{}", &url[..start], &url[start + at..]),
        None => url.to_owned(),
    }
}

impl BaseUrl {
    /// Parses `http://host[:port][/path][?query]`; `http://` is assumed without a scheme,
    /// as AIPerf does. A fragment is dropped.
    pub fn parse(input: &str) -> Result<Self, UrlError> {
        let url = input.trim();
        if url.is_empty() {
            return Err(UrlError::Empty);
        }
        // Every message shows the URL without what may be a password.
        let shown = || redact_for_message(url);
        // `http:/host`, `http//host`, `//host`: a mistyped `scheme://`, which would
        // otherwise read as a path or a host named `http`.
        let lower = url.to_ascii_lowercase();
        let typo = ["http:/", "https:/", "http//", "https//"]
            .iter()
            .any(|p| lower.starts_with(p))
            && !lower.starts_with("http://")
            && !lower.starts_with("https://");
        if typo || url.starts_with("//") {
            return Err(UrlError::MalformedScheme(shown()));
        }
        let (scheme, rest) = match url.find("://") {
            Some(i) => {
                let scheme = &url[..i];
                let scheme = if scheme.eq_ignore_ascii_case("http") {
                    Scheme::Http
                } else if scheme.eq_ignore_ascii_case("https") {
                    Scheme::Https
                } else {
                    return Err(UrlError::UnsupportedScheme(scheme.to_owned()));
                };
                (scheme, &url[i + 3..])
            }
            None => (Scheme::Http, url),
        };
        // A port that is no number, with an `@` further on, is a password holding an
        // unencoded `/`, `?` or `#` (`http://alice:pa/ss@host`), not a typo of the port.
        let bad_port = || match rest.contains('@') {
            true => UrlError::Credentials(shown()),
            false => UrlError::InvalidPort(shown()),
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(auth_end);
        if authority.contains('@') {
            return Err(UrlError::Credentials(shown()));
        }
        // Sent as they are in the request line: a space or a line break there would
        // split it (and let a `--url` inject headers).
        if tail.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UrlError::InvalidPath(shown()));
        }
        if authority.starts_with('[') && !authority.contains(']') {
            return Err(UrlError::UnclosedBracket(shown()));
        }
        let (host, port) = split_host_port(authority).ok_or_else(bad_port)?;
        if host.is_empty() {
            return Err(UrlError::MissingHost(shown()));
        }
        // Spaces, quotes and the like cannot be in a host name; caught here, the run stops
        // before it writes anything, instead of when the resolver is asked for the name.
        if host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>\"{}|\\^`/".contains(c))
        {
            return Err(UrlError::InvalidHost {
                host: host.to_owned(),
                url: shown(),
            });
        }
        let port = match port {
            // Port 0 names no server: a connection to it is refused.
            Some(p) => Some(p)
                .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse::<u16>().ok())
                .filter(|&p| p != 0)
                .ok_or_else(bad_port)?,
            None => scheme.default_port(),
        };
        let (path, query) = match tail.split_once('?') {
            Some((p, q)) => (p, Some(q.to_owned())),
            None => (tail, None),
        };
        let bracketed = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        let authority = if port == scheme.default_port() {
            bracketed
        } else {
            format!("{bracketed}:{port}")
        };
        Ok(BaseUrl {
            scheme,
            host: host.to_owned(),
            port,
            authority,
            path: path.trim_end_matches('/').to_owned(),
            query: query.filter(|q| !q.is_empty()),
        })
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Value for the `Host` header.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// Base path without trailing `/` (empty for the root).
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// The request target for `endpoint_path` under this base: paths joined with one `/`,
    /// nothing added when the base already ends with the endpoint path, and a `/v1` in
    /// both de-duplicated (`http://h/v1` + `/v1/chat/completions` → `/v1/chat/completions`),
    /// as AIPerf's `_append_path_deduped`. The base query is kept; a query in
    /// `endpoint_path` is appended after it.
    pub fn join(&self, endpoint_path: &str) -> String {
        let (endpoint, endpoint_query) = match endpoint_path.split_once('?') {
            Some((p, q)) => (p, Some(q).filter(|q| !q.is_empty())),
            None => (endpoint_path, None),
        };
        let mut tail = endpoint.trim_start_matches('/');
        let base = self.path.as_str();
        let mut target = String::with_capacity(base.len() + tail.len() + 2);
        target.push_str(base);
        let already_there = !tail.is_empty()
            && base
                .strip_suffix(tail)
                .is_some_and(|prefix| prefix.ends_with('/'));
        if !tail.is_empty() && !already_there {
            if base.ends_with("/v1") {
                tail = tail.strip_prefix("v1/").unwrap_or(tail);
            }
            target.push('/');
            target.push_str(tail);
        }
        if target.is_empty() {
            target.push('/');
        }
        let queries = [self.query.as_deref(), endpoint_query];
        for (i, q) in queries.into_iter().flatten().enumerate() {
            target.push(if i == 0 { '?' } else { '&' });
            target.push_str(q);
        }
        target
    }

    /// Resolves the host once, up front (std resolver; blocking).
    pub fn resolve(&self) -> Result<Vec<SocketAddr>, UrlError> {
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|source| UrlError::Resolve {
                host: self.host.clone(),
                port: self.port,
                source,
            })?
            .collect();
        if addrs.is_empty() {
            return Err(UrlError::NoAddress {
                host: self.host.clone(),
                port: self.port,
            });
        }
        Ok(addrs)
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme.as_str(),
            self.authority,
            self.path
        )?;
        if let Some(q) = &self.query {
            write!(f, "?{q}")?;
        }
        Ok(())
    }
}

/// Splits `host[:port]` / `[v6][:port]`; `None` when the shape is invalid.
fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            _ => Some((host, Some(after.strip_prefix(':')?))),
        };
    }
    match authority.split_once(':') {
        // A bare IPv6 address without brackets has several colons; such a URL is invalid.
        Some((_, port)) if port.contains(':') => None,
        Some((host, port)) => Some((host, Some(port))),
        None => Some((authority, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(base: &str, path: &str) -> String {
        BaseUrl::parse(base).unwrap().join(path)
    }

    #[test]
    fn parse_parts() {
        let u = BaseUrl::parse("http://127.0.0.1:8000/prefix?x=1").unwrap();
        assert_eq!(u.scheme(), Scheme::Http);
        assert_eq!(u.host(), "127.0.0.1");
        assert_eq!(u.port(), 8000);
        assert_eq!(u.authority(), "127.0.0.1:8000");
        assert_eq!(u.path(), "/prefix");
        assert_eq!(u.query(), Some("x=1"));
        assert_eq!(u.to_string(), "http://127.0.0.1:8000/prefix?x=1");

        let u = BaseUrl::parse("localhost:8000").unwrap();
        assert_eq!(
            (u.scheme(), u.host(), u.port(), u.path()),
            (Scheme::Http, "localhost", 8000, "")
        );
        let u = BaseUrl::parse("  HTTP://Example.com/  ").unwrap();
        assert_eq!((u.authority(), u.port(), u.path()), ("Example.com", 80, ""));
        let u = BaseUrl::parse("http://[::1]:9000/v1#frag").unwrap();
        assert_eq!(
            (u.host(), u.authority(), u.path()),
            ("::1", "[::1]:9000", "/v1")
        );
        let u = BaseUrl::parse("http://[::1]").unwrap();
        assert_eq!((u.host(), u.port(), u.authority()), ("::1", 80, "[::1]"));
        let u = BaseUrl::parse("https://api.example.com/v1").unwrap();
        assert_eq!(
            (u.scheme(), u.port(), u.authority()),
            (Scheme::Https, 443, "api.example.com")
        );
        let u = BaseUrl::parse("http://h:80?").unwrap();
        assert_eq!((u.authority(), u.query()), ("h", None));
    }

    #[test]
    fn parse_errors() {
        assert!(matches!(BaseUrl::parse(" "), Err(UrlError::Empty)));
        for bad in ["not a url", "http://a\tb:80/v1", "http://h<x>"] {
            let error = BaseUrl::parse(bad).expect_err(bad).to_string();
            assert!(error.starts_with("invalid host `"), "{error}");
        }
        assert_eq!(
            BaseUrl::parse("not a url").expect_err("spaces").to_string(),
            "invalid host `not a url` in URL `not a url`"
        );
        assert_eq!(
            BaseUrl::parse("http://127.0.0.1:0")
                .expect_err("port 0")
                .to_string(),
            "invalid port in URL `http://127.0.0.1:0`"
        );
        // A space or a line break in the path would split the request line.
        for bad in [
            "http://h:1/x HTTP/1.1\r\nX-Injected: yes",
            "http://h:1/a b",
            "http://h:1/a\tb",
            "http://h:1/v1?q=a b",
        ] {
            assert!(
                matches!(BaseUrl::parse(bad), Err(UrlError::InvalidPath(_))),
                "{bad:?}"
            );
        }
        // Mistyped schemes are not read as paths or as a host named `http`, and the
        // messages never hold what may be a password.
        for (bad, shown) in [
            ("http:/alice:pw@h:1", "<redacted>@h:1"),
            ("http//alice:pw@h:1", "<redacted>@h:1"),
            ("HTTPS:/h", "HTTPS:/h"),
            ("//alice:pw@h", "<redacted>@h"),
        ] {
            let error = BaseUrl::parse(bad).expect_err(bad).to_string();
            assert_eq!(
                error,
                format!("malformed scheme in URL `{shown}` (expected `http://` or `https://`)")
            );
        }
        for bad in [
            "http://alice:pa/ss@h:1",
            "http://alice:pa?ss@h:1",
            "http:///alice:pw@h",
        ] {
            let error = BaseUrl::parse(bad).expect_err(bad).to_string();
            assert!(
                !error.contains("alice") && !error.contains("pw@"),
                "{error}"
            );
            assert!(error.contains("<redacted>@h"), "{error}");
        }
        // A password with an unencoded `/`, `?` or `#` is named as credentials, not as a
        // port that is no number.
        for bad in [
            "http://alice:pa/ss@h:1",
            "http://alice:pa?ss@h:1",
            "http://alice:pa#ss@h:1",
        ] {
            assert_eq!(
                BaseUrl::parse(bad).expect_err(bad).to_string(),
                "credentials in URL `http://<redacted>@h:1` are not supported; pass them as \
                 headers",
                "{bad}"
            );
        }
        // An `@` in the path of an accepted URL is not a credential.
        assert!(BaseUrl::parse("http://h/a@b?x=1").is_ok());
        assert_eq!(
            BaseUrl::parse("http://[::1").expect_err("no ]").to_string(),
            "unclosed `[` around the IPv6 host in URL `http://[::1`"
        );
        assert!(matches!(
            BaseUrl::parse("http://127.0.0.1:+1"),
            Err(UrlError::InvalidPort(_))
        ));
        assert!(
            matches!(BaseUrl::parse("ftp://h"), Err(UrlError::UnsupportedScheme(s)) if s == "ftp")
        );
        assert!(matches!(
            BaseUrl::parse("http://:80"),
            Err(UrlError::MissingHost(_))
        ));
        assert!(matches!(
            BaseUrl::parse("http:///v1"),
            Err(UrlError::MissingHost(_))
        ));
        assert!(matches!(
            BaseUrl::parse("http://h:99999"),
            Err(UrlError::InvalidPort(_))
        ));
        assert!(matches!(
            BaseUrl::parse("http://h:x"),
            Err(UrlError::InvalidPort(_))
        ));
        assert!(matches!(
            BaseUrl::parse("http://::1"),
            Err(UrlError::InvalidPort(_))
        ));
        assert!(matches!(
            BaseUrl::parse("http://[::1]x"),
            Err(UrlError::InvalidPort(_))
        ));
        assert!(matches!(
            BaseUrl::parse("http://u:p@h"),
            Err(UrlError::Credentials(_))
        ));
        let refused = BaseUrl::parse("http://user:pw_leak_77@127.0.0.1:8000/v1").unwrap_err();
        assert_eq!(
            refused.to_string(),
            "credentials in URL `http://<redacted>@127.0.0.1:8000/v1` are not supported; \
             pass them as headers"
        );
        assert_eq!(redact_userinfo("h:1/a@b"), "h:1/a@b");
        assert_eq!(redact_userinfo("u@h"), "<redacted>@h");
    }

    #[test]
    fn join_follows_aiperf() {
        assert_eq!(
            join("http://h:8000", "/v1/chat/completions"),
            "/v1/chat/completions"
        );
        assert_eq!(
            join("http://h:8000/", "v1/chat/completions"),
            "/v1/chat/completions"
        );
        assert_eq!(
            join("http://h/v1", "/v1/chat/completions"),
            "/v1/chat/completions"
        );
        assert_eq!(
            join("http://h/v1/", "v1/chat/completions"),
            "/v1/chat/completions"
        );
        assert_eq!(
            join("http://h/prefix", "/v1/chat/completions"),
            "/prefix/v1/chat/completions"
        );
        assert_eq!(
            join("http://h/prefix/v1", "/v1/embeddings"),
            "/prefix/v1/embeddings"
        );
        // The whole endpoint path already in the base (a common mistake).
        assert_eq!(
            join("http://h/v1/chat/completions", "/v1/chat/completions"),
            "/v1/chat/completions"
        );
        assert_eq!(join("http://h/xv1/chat", "v1/chat"), "/xv1/chat/v1/chat");
        assert_eq!(join("http://h/v1", "/v1"), "/v1");
        assert_eq!(join("http://h/v1", "/v2/x"), "/v1/v2/x");
        assert_eq!(join("http://h", ""), "/");
        assert_eq!(join("http://h/base", ""), "/base");
        assert_eq!(
            join("http://h/p?x=1", "/v1/completions"),
            "/p/v1/completions?x=1"
        );
        assert_eq!(
            join("http://h?x=1", "/generate?stream=true"),
            "/generate?x=1&stream=true"
        );
        assert_eq!(
            join("http://h", "/generate?stream=true"),
            "/generate?stream=true"
        );
    }

    #[test]
    fn resolve_loopback() {
        let u = BaseUrl::parse("http://127.0.0.1:8000").unwrap();
        assert_eq!(
            u.resolve().unwrap(),
            vec!["127.0.0.1:8000".parse::<SocketAddr>().unwrap()]
        );
        let u = BaseUrl::parse("http://[::1]:8000").unwrap();
        assert_eq!(
            u.resolve().unwrap(),
            vec!["[::1]:8000".parse::<SocketAddr>().unwrap()]
        );
    }
}
