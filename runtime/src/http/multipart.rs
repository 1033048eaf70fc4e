//! `multipart/form-data` request bodies, byte for byte as AIPerf's transport sends them.
//!
//! Endpoints whose metadata sets `requires_form_data` (AIPerf's `video_generation`) build
//! the same JSON object as every other endpoint (it is what `inputs.json` shows); AIPerf's
//! aiohttp transport then posts that object as a form, and so does [`form_data`]: one
//! part per key in the object's order, `null` values left out, each value as Python's
//! `str()` writes it (`true`/`false` for booleans, Python's `repr` for numbers, lists and
//! objects, so `[1, 'a', True, None]`), and objects of the shape
//! `{"b64_data","filename"?,"content_type"?}` as file parts carrying the decoded bytes.
//! Text parts carry `Content-Type: text/plain; charset=utf-8` and names are RFC 5322
//! quoted strings, as aiohttp writes them.

use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON value that keeps its objects' key order (a Python dict's insertion order) and
/// whether a number was written as an integer.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    List(Vec<Value>),
    Dict(Vec<(String, Value)>),
}

impl<'de> serde::Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::List(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out: Vec<(String, Value)> = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Value>()? {
            // A repeated key keeps its first place and takes the last value, as in Python.
            match out.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => *v = value,
                None => out.push((key, value)),
            }
        }
        Ok(Value::Dict(out))
    }
}

/// A form built from a JSON object body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormData {
    /// `multipart/form-data; boundary=...`, for the `Content-Type` header.
    pub content_type: String,
    pub body: Vec<u8>,
}

/// Encodes the JSON object `json` as a multipart form with a fresh random boundary (32
/// hex digits, like aiohttp's), one that occurs in none of the parts.
pub fn form_data(json: &[u8]) -> Result<FormData, String> {
    let parts = parts(json)?;
    loop {
        let boundary = random_boundary();
        if parts
            .iter()
            .all(|p| !contains(&p.content, boundary.as_bytes()))
        {
            return Ok(encode(&parts, &boundary));
        }
    }
}

/// The form's parts: one per non-null field, in the object's order.
fn parts(json: &[u8]) -> Result<Vec<Part>, String> {
    parse_fields(json)?
        .iter()
        .filter(|(_, value)| *value != Value::Null)
        .map(|(name, value)| Part::new(name, value))
        .collect()
}

fn parse_fields(json: &[u8]) -> Result<Vec<(String, Value)>, String> {
    match serde_json::from_slice::<Value>(json) {
        Ok(Value::Dict(fields)) => Ok(fields),
        Ok(_) => Err("a form body must be a JSON object".to_owned()),
        Err(e) => Err(format!("a form body must be a JSON object: {e}")),
    }
}

/// One form field, ready to write.
struct Part {
    /// `Content-Type` of the part.
    content_type: String,
    /// `Content-Disposition` of the part.
    disposition: String,
    content: Vec<u8>,
}

impl Part {
    fn new(name: &str, value: &Value) -> Result<Part, String> {
        let quoted = quoted_string(name)
            .ok_or_else(|| format!("form field name {name:?} is not printable ASCII"))?;
        if let Value::Dict(file) = value {
            let get = |key: &str| file.iter().find(|(k, _)| k == key).map(|(_, v)| v);
            if let Some(Value::Str(b64)) = get("b64_data") {
                let content = base64_decode(b64).ok_or_else(|| {
                    format!("form field {name:?}: 'b64_data' is not valid base64")
                })?;
                // Python's `value.get(...) or default`: a missing or falsy value falls back.
                let text = |key: &str| match get(key) {
                    Some(v) if v.truthy() => Some(v.py_str()),
                    _ => None,
                };
                let filename = text("filename").unwrap_or_else(|| name.to_owned());
                let content_type =
                    text("content_type").unwrap_or_else(|| "application/octet-stream".into());
                return Ok(Part {
                    content_type,
                    disposition: format!(
                        "form-data; name=\"{quoted}\"; filename=\"{}\"",
                        percent_quote(&filename)
                    ),
                    content,
                });
            }
        }
        Ok(Part {
            content_type: "text/plain; charset=utf-8".to_owned(),
            disposition: format!("form-data; name=\"{quoted}\""),
            content: value.py_str().into_bytes(),
        })
    }
}

fn encode(parts: &[Part], boundary: &str) -> FormData {
    let size: usize = parts
        .iter()
        .map(|p| p.content.len() + p.content_type.len() + p.disposition.len() + 96)
        .sum();
    let mut body = Vec::with_capacity(size + boundary.len() * (parts.len() + 1));
    for part in parts {
        for piece in [
            b"--".as_slice(),
            boundary.as_bytes(),
            b"\r\nContent-Type: ",
            part.content_type.as_bytes(),
            b"\r\nContent-Disposition: ",
            part.disposition.as_bytes(),
            b"\r\n\r\n",
            &part.content,
            b"\r\n",
        ] {
            body.extend_from_slice(piece);
        }
    }
    body.extend_from_slice(b"--");
    body.extend_from_slice(boundary.as_bytes());
    body.extend_from_slice(b"--\r\n");
    FormData {
        content_type: format!("multipart/form-data; boundary={boundary}"),
        body,
    }
}

fn random_boundary() -> String {
    // `RandomState` is seeded from the OS once per process and advanced per instance.
    let mut out = String::with_capacity(32);
    for _ in 0..2 {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(0x6d75_6c74_6970_6172);
        let _ = write!(out, "{:016x}", hasher.finish());
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// aiohttp's `quoted_string`: printable ASCII (and tab), with a backslash before every
/// character outside RFC 5322's qtext (space, tab, `"` and `\`); `None` otherwise.
fn quoted_string(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '!' | '#'..='[' | ']'..='~' => out.push(c),
            ' ' | '\t' | '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Python's `urllib.parse.quote(value, safe="")`.
fn percent_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"_.-~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// Strict base64 (Python's `b64decode(..., validate=True)`): the standard alphabet, a
/// length that is a multiple of four, padding only at the end.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if bytes.len() % 4 != 0 {
        return None;
    }
    let value = |c: u8| -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    };
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let chunks = bytes.len() / 4;
    for (i, chunk) in bytes.chunks(4).enumerate() {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && i + 1 != chunks) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | value(c)?;
        }
        n <<= 6 * pad as u32;
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&decoded[..3 - pad]);
    }
    Some(out)
}

impl Value {
    /// Python truthiness.
    fn truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Int(n) => *n != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Dict(d) => !d.is_empty(),
        }
    }

    /// What the transport writes for a field: `str(value)`, booleans lower-cased.
    fn py_str(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::Bool(b) => if *b { "true" } else { "false" }.to_owned(),
            other => {
                let mut out = String::new();
                other.py_repr(&mut out);
                out
            }
        }
    }

    /// Python's `repr`.
    fn py_repr(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("None"),
            Value::Bool(true) => out.push_str("True"),
            Value::Bool(false) => out.push_str("False"),
            Value::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Value::Float(f) => out.push_str(&py_float(*f)),
            Value::Str(s) => super::pyerr::write_str_repr(s, out),
            Value::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.py_repr(out);
                }
                out.push(']');
            }
            Value::Dict(entries) => {
                out.push('{');
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    super::pyerr::write_str_repr(key, out);
                    out.push_str(": ");
                    value.py_repr(out);
                }
                out.push('}');
            }
        }
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip, positional for decimal
/// exponents from -4 to 15, else `d.ddde+XX`.
fn py_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    // `{:e}` prints the shortest round-trip digits: `-1.2345e-7`, `5e-1`, `0e0`.
    let sci = format!("{f:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if (-4..16).contains(&exponent) {
        let point = exponent + 1;
        let mut out = String::from(sign);
        if point <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-point) as usize));
            out.push_str(&digits);
        } else {
            let point = point as usize;
            if digits.len() <= point {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', point - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..point]);
                out.push('.');
                out.push_str(&digits[point..]);
            }
        }
        out
    } else {
        let mut out = String::from(sign);
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(
            out,
            "e{}{:02}",
            if exponent < 0 { '-' } else { '+' },
            exponent.abs()
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: &str = "3de8e86616fb46db8fefb21e3300363c";

    fn text_part(name: &str, value: &str) -> String {
        format!(
            "--{B}\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        )
    }

    /// Bytes aiohttp 3.14.5 wrote for the same dict through AIPerf 0.13.0's
    /// `AioHttpTransport._build_form_data` (boundary replaced).
    #[test]
    fn matches_aiohttp_for_every_value_type() {
        let json = r#"{"prompt":"a cat \"surfing\"\nline2 é","model":"wan","size":"1280x720",
            "seconds":4,"guidance":7.5,"flag":true,"nothing":null,"tiny":1e-05,"big":1e16,
            "lst":[1,"a",true,null],"obj":{"k":"v'q"}}"#;
        let form = encode(&parts(json.as_bytes()).unwrap(), B);
        assert_eq!(
            form.content_type,
            format!("multipart/form-data; boundary={B}")
        );
        let expected = [
            text_part("prompt", "a cat \"surfing\"\nline2 é"),
            text_part("model", "wan"),
            text_part("size", "1280x720"),
            text_part("seconds", "4"),
            text_part("guidance", "7.5"),
            text_part("flag", "true"),
            text_part("tiny", "1e-05"),
            text_part("big", "1e+16"),
            text_part("lst", "[1, 'a', True, None]"),
            text_part("obj", "{'k': \"v'q\"}"),
            format!("--{B}--\r\n"),
        ]
        .concat();
        assert_eq!(String::from_utf8(form.body).unwrap(), expected);
    }

    #[test]
    fn file_parts_and_python_reprs_match_aiohttp() {
        let json = r#"{"image":{"b64_data":"aGVsbG8=","filename":"a b\"é.png","content_type":"image/png"},
            "f2":{"b64_data":"aGk="},"s":"x\\y","e":"","u":"é中😀",
            "bs":["a\\b","it's","\"q\"","both'\"","nl\n\t\u0001\u007f\u00a0"],
            "nested":{"z":[1.0,2.5e-7,-0.0,123456789012345678],"a":0.0001}}"#;
        let form = encode(&parts(json.as_bytes()).unwrap(), B);
        let expected = [
            format!(
                "--{B}\r\nContent-Type: image/png\r\nContent-Disposition: form-data; \
                 name=\"image\"; filename=\"a%20b%22%C3%A9.png\"\r\n\r\nhello\r\n"
            ),
            format!(
                "--{B}\r\nContent-Type: application/octet-stream\r\nContent-Disposition: \
                 form-data; name=\"f2\"; filename=\"f2\"\r\n\r\nhi\r\n"
            ),
            text_part("s", "x\\y"),
            text_part("e", ""),
            text_part("u", "é中😀"),
            text_part(
                "bs",
                r#"['a\\b', "it's", '"q"', 'both\'"', 'nl\n\t\x01\x7f\xa0']"#,
            ),
            text_part(
                "nested",
                "{'z': [1.0, 2.5e-07, -0.0, 123456789012345678], 'a': 0.0001}",
            ),
            format!("--{B}--\r\n"),
        ]
        .concat();
        assert_eq!(String::from_utf8(form.body).unwrap(), expected);
    }

    #[test]
    fn floats_print_as_python_repr() {
        for (value, repr) in [
            (0.5, "0.5"),
            (1.0, "1.0"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (123456789.0, "123456789.0"),
            (1e15, "1000000000000000.0"),
            (9999999999999998.0, "9999999999999998.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (0.0001, "0.0001"),
            (0.00012, "0.00012"),
            (1e-5, "1e-05"),
            (-2.5e-7, "-2.5e-07"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (0.1 + 0.2, "0.30000000000000004"),
            (f64::INFINITY, "inf"),
            (f64::NAN, "nan"),
        ] {
            assert_eq!(py_float(value), repr, "{value:e}");
        }
    }

    #[test]
    fn names_are_quoted_and_unprintable_names_refused() {
        let form = encode(&parts(br#"{"a b\"c\\d":"v"}"#).unwrap(), B);
        let body = String::from_utf8(form.body).unwrap();
        assert!(
            body.contains("Content-Disposition: form-data; name=\"a\\ b\\\"c\\\\d\"\r\n"),
            "{body}"
        );
        assert!(form_data("{\"é\":\"v\"}".as_bytes()).is_err());
        assert!(form_data(br#"{"a\r\nX: y":"v"}"#).is_err());
        assert!(form_data(br#"["not","an","object"]"#).is_err());
        assert!(form_data(b"not json").is_err());
        let bad = form_data(br#"{"f":{"b64_data":"aGVsbG8"}}"#).unwrap_err();
        assert!(bad.contains("base64"), "{bad}");
    }

    #[test]
    fn random_boundaries_never_occur_in_the_content() {
        let a = form_data(br#"{"prompt":"x"}"#).unwrap();
        let b = form_data(br#"{"prompt":"x"}"#).unwrap();
        let boundary = a
            .content_type
            .strip_prefix("multipart/form-data; boundary=")
            .unwrap();
        assert_eq!(boundary.len(), 32);
        assert!(boundary.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.content_type, b.content_type, "a fresh boundary per body");
        assert!(a.body.starts_with(format!("--{boundary}\r\n").as_bytes()));
        assert!(a.body.ends_with(format!("--{boundary}--\r\n").as_bytes()));
        assert_eq!(base64_decode("").unwrap(), b"");
        assert_eq!(base64_decode("aGk=").unwrap(), b"hi");
        assert_eq!(base64_decode("aGVsbG8h").unwrap(), b"hello!");
        assert!(base64_decode("aG=k").is_none());
        assert!(base64_decode("a===").is_none());
        assert!(base64_decode("aGk=aGk=").is_none());
    }
}
