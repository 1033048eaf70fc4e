//! `--header`: extra request headers given on the command line.
//!
//! The transport sends them and `input_config` lists their names; both read them through
//! this one parser, so the artifact names exactly the headers that were sent.

use serde_json::Value;

use crate::extra_inputs::parse_ordered_object;
use crate::plugin::PluginError;

/// `--header` values as `(name, value)` pairs: `Name:Value` or a JSON object of them.
///
/// Unlike AIPerf, a `Name:Value` argument is not split at commas: header values contain
/// commas (`Accept: a, b`), so one argument is one header.
pub fn parse_headers(args: &[String]) -> Result<Vec<(String, String)>, PluginError> {
    let mut headers: Vec<(String, String)> = Vec::new();
    // A name given again replaces the earlier value (AIPerf keeps headers in a dict); HTTP
    // names are case-insensitive, so `x-foo` replaces `X-Foo`.
    let mut push = |(name, value): (String, String)| {
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        headers.push((name, value));
    };
    for arg in args {
        let arg = arg.trim();
        if arg.starts_with('{') {
            // The argument is not echoed: header values are credentials as often as not.
            let pairs = parse_ordered_object(arg).map_err(|e| {
                PluginError::Config(format!(
                    "a --header starting with `{{` is not a JSON object: {e}"
                ))
            })?;
            for (name, value) in pairs {
                let value = match value {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                push(checked_header(&name, &value)?);
            }
        } else {
            let Some((name, value)) = arg.split_once(':') else {
                return Err(PluginError::Config(
                    "a --header without `:` must be a JSON object (`Name:Value` otherwise)"
                        .to_owned(),
                ));
            };
            push(checked_header(name.trim(), value.trim())?);
        }
    }
    Ok(headers)
}

/// The headers every request of the run carries: `--header`s, and with `--api-key` an
/// `Authorization: Bearer` header in place of any given one.
pub fn request_headers(
    args: &[String],
    api_key: Option<&str>,
) -> Result<Vec<(String, String)>, PluginError> {
    let mut headers = parse_headers(args)?;
    if let Some(key) = api_key {
        check_api_key(key)?;
        headers.retain(|(name, _)| !name.eq_ignore_ascii_case("authorization"));
        headers.push(("Authorization".to_owned(), format!("Bearer {key}")));
    }
    Ok(headers)
}

/// Refuses an `--api-key` that would corrupt the request head it is sent in (the error
/// does not echo it).
pub fn check_api_key(key: &str) -> Result<(), PluginError> {
    if key.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(PluginError::Config(
            "--api-key has a line break or NUL in it".into(),
        ));
    }
    Ok(())
}

/// Rejects what would corrupt the request head: a CR or LF would let a value start a
/// header (or a body) of its own.
fn checked_header(name: &str, value: &str) -> Result<(String, String), PluginError> {
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
    if !name_ok {
        return Err(PluginError::Config(format!("invalid header name `{name}`")));
    }
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(PluginError::Config(format!(
            "header `{name}` has a line break or NUL in its value"
        )));
    }
    Ok((name.to_owned(), value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    /// A name given again replaces its earlier value, whatever its case or form.
    #[test]
    fn a_repeated_header_keeps_its_last_value() {
        let headers = parse_headers(&strings(&[
            "X-Request-ID:one",
            "Accept: a",
            "x-request-id:two",
            "{\"ACCEPT\": \"b\"}",
        ]))
        .unwrap();
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        assert_eq!(pairs, [("x-request-id", "two"), ("ACCEPT", "b")]);
    }

    #[test]
    fn headers_parse_and_reject_injection() {
        let headers = parse_headers(&strings(&[
            "X-Foo:bar",
            "Accept: a, b",
            "{\"X-Num\": 1, \"X-A\": \"b\"}",
        ]))
        .unwrap();
        let expected = [
            ("X-Foo", "bar"),
            ("Accept", "a, b"),
            ("X-Num", "1"),
            ("X-A", "b"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect();
        assert_eq!(headers, expected);
        for bad in ["NoColon", ":v", "X-A:b\r\nX-Evil: 1", "Bad Name:v"] {
            assert!(parse_headers(&strings(&[bad])).is_err(), "{bad}");
        }
        // A malformed header's value may still be a credential: errors do not echo it.
        for bad in ["Bearer sk-secret-1", "{\"X-A\": sk-secret-1}"] {
            let Err(PluginError::Config(message)) = parse_headers(&strings(&[bad])) else {
                panic!("{bad} parsed");
            };
            assert!(!message.contains("sk-secret-1"), "{message}");
        }
    }
}
