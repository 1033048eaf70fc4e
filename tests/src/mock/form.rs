//! A strict `multipart/form-data` reader for the routes that take forms (video jobs), so
//! a client that sends anything else (JSON, a broken boundary, a missing final
//! delimiter) is refused rather than guessed at.

use hyper::header::CONTENT_TYPE;
use hyper::http::HeaderMap;
use hyper::StatusCode;

use super::handlers::ApiError;

/// One form field: its name and raw content (a file part's bytes as they came).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FormField {
    pub name: String,
    pub filename: Option<String>,
    pub content: Vec<u8>,
}

/// The boundary of a `multipart/form-data` request, or 415 for any other content type.
pub(super) fn boundary(headers: &HeaderMap) -> Result<String, ApiError> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut params = content_type.split(';').map(str::trim);
    let media = params.next().unwrap_or("");
    if !media.eq_ignore_ascii_case("multipart/form-data") {
        return Err(ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            kind: "invalid_request_error",
            message: format!("expected multipart/form-data, got Content-Type '{content_type}'"),
        });
    }
    let boundary = params
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
        .filter(|b| !b.is_empty() && b.len() <= 70)
        .ok_or_else(|| ApiError::invalid("multipart/form-data without a valid boundary"))?;
    Ok(boundary)
}

/// Parses a form body (RFC 7578): `--B CRLF headers CRLF CRLF content CRLF` per part,
/// then `--B--`. Every part needs `Content-Disposition: form-data; name="..."`.
pub(super) fn parse(body: &[u8], boundary: &str) -> Result<Vec<FormField>, ApiError> {
    let invalid = |what: &str| ApiError::invalid(format!("malformed multipart body: {what}"));
    let open = format!("--{boundary}");
    let delimiter = format!("\r\n--{boundary}");
    let mut rest = body
        .strip_prefix(open.as_bytes())
        .ok_or_else(|| invalid("it does not start with the boundary"))?;
    let mut fields = Vec::new();
    loop {
        if let Some(after) = rest.strip_prefix(b"--") {
            if !after.is_empty() && after != b"\r\n" {
                return Err(invalid("bytes after the closing delimiter"));
            }
            return Ok(fields);
        }
        rest = rest
            .strip_prefix(b"\r\n")
            .ok_or_else(|| invalid("no line break after a delimiter"))?;
        let head_end =
            find(rest, b"\r\n\r\n").ok_or_else(|| invalid("a part without a blank line"))?;
        let head = std::str::from_utf8(&rest[..head_end])
            .map_err(|_| invalid("part headers are not UTF-8"))?;
        let (name, filename) = disposition(head).ok_or_else(|| {
            invalid("a part without `Content-Disposition: form-data; name=\"...\"`")
        })?;
        let content_start = head_end + 4;
        let content_len = find(&rest[content_start..], delimiter.as_bytes())
            .ok_or_else(|| invalid("a part without a closing delimiter"))?;
        if fields.iter().any(|f: &FormField| f.name == name) {
            return Err(ApiError::invalid(format!(
                "form field '{name}' given twice"
            )));
        }
        fields.push(FormField {
            name,
            filename,
            content: rest[content_start..content_start + content_len].to_vec(),
        });
        rest = &rest[content_start + content_len + delimiter.len()..];
    }
}

/// `(name, filename)` from a part's `Content-Disposition: form-data; ...` header.
fn disposition(head: &str) -> Option<(String, Option<String>)> {
    let value = head.split("\r\n").find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case("content-disposition")
            .then_some(value.trim())
    })?;
    let (kind, params) = value.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("form-data") {
        return None;
    }
    let mut name = None;
    let mut filename = None;
    let mut rest = params.trim_start();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => unquote(quoted)?,
            None => {
                let end = after.find(';').unwrap_or(after.len());
                (after[..end].trim().to_owned(), &after[end..])
            }
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "name" => name = Some(value),
            "filename" => filename = Some(value),
            _ => {}
        }
        rest = after
            .trim_start()
            .strip_prefix(';')
            .unwrap_or(after)
            .trim_start();
    }
    Some((name?, filename))
}

/// A quoted string's value (backslash escapes undone) and what follows its closing quote.
fn unquote(text: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &text[i + 1..])),
            '\\' => out.push(chars.next()?.1),
            c => out.push(c),
        }
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(content_type: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
        h
    }

    #[test]
    fn reads_what_aiohttp_writes() {
        let body = concat!(
            "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n",
            "Content-Disposition: form-data; name=\"prompt\"\r\n\r\na \"cat\"\r\nsurfing\r\n",
            "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n",
            "Content-Disposition: form-data; name=\"a\\ b\"\r\n\r\n\r\n",
            "--b1\r\nContent-Type: image/png\r\n",
            "Content-Disposition: form-data; name=\"image\"; filename=\"x%20y.png\"\r\n\r\n",
            "PNG\r\n--b1--\r\n"
        );
        let b = boundary(&headers("multipart/form-data; boundary=b1")).unwrap();
        let fields = parse(body.as_bytes(), &b).unwrap();
        assert_eq!(fields.len(), 3);
        assert_eq!(fields[0].name, "prompt");
        assert_eq!(fields[0].content, b"a \"cat\"\r\nsurfing");
        assert_eq!(fields[1].name, "a b");
        assert_eq!(fields[1].content, b"");
        assert_eq!(fields[2].filename.as_deref(), Some("x%20y.png"));
        assert_eq!(fields[2].content, b"PNG");
    }

    #[test]
    fn refuses_other_formats_and_broken_forms() {
        let json = boundary(&headers("application/json")).unwrap_err();
        assert_eq!(json.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(
            boundary(&HeaderMap::new()).unwrap_err().status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert_eq!(
            boundary(&headers("multipart/form-data"))
                .unwrap_err()
                .status,
            StatusCode::BAD_REQUEST
        );
        let part = "--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nv";
        for broken in [
            String::from("{\"prompt\":\"x\"}"),
            format!("{part}\r\n--b"),
            format!("{part}--b--\r\n"),
            format!("{part}\r\n--b--junk"),
            "--b\r\nContent-Type: text/plain\r\n\r\nv\r\n--b--".to_owned(),
            format!(
                "{part}\r\n--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nw\r\n--b--"
            ),
        ] {
            assert!(parse(broken.as_bytes(), "b").is_err(), "{broken:?}");
        }
        assert!(parse(format!("{part}\r\n--b--").as_bytes(), "b").is_ok());
    }
}
