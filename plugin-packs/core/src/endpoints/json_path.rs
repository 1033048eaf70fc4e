//! The `--response-field` path: the subset of JMESPath that picks a field out of a
//! response, without a query engine in every binary.
//!
//! Supported: fields (`output.text`), quoted fields (`"a.b"`), indexes (`choices[0]`,
//! negative from the end: `data[-1]`) and list projections (`data[*].embedding`, which
//! collect the rest of the path from every element, dropping misses, as JMESPath does).
//! Anything else (filters, functions, pipes, slices) is refused when the run starts.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Field(String),
    Index(i64),
    /// `[*]`: apply the rest to every element of a list.
    Each,
}

/// A compiled path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JsonPath {
    steps: Vec<Step>,
}

impl JsonPath {
    pub(crate) fn parse(text: &str) -> Result<JsonPath, String> {
        let bytes = text.trim().as_bytes();
        let mut steps = Vec::new();
        let mut i = 0;
        // A field is expected at the start and after every `.`.
        let mut want_field = true;
        while i < bytes.len() {
            match bytes[i] {
                b'[' => {
                    let end = bytes[i..]
                        .iter()
                        .position(|&b| b == b']')
                        .map(|p| i + p)
                        .ok_or_else(|| format!("`{text}`: `[` without `]`"))?;
                    let inner = std::str::from_utf8(&bytes[i + 1..end])
                        .map_err(|_| format!("`{text}`: bad index"))?
                        .trim();
                    steps.push(if inner == "*" {
                        Step::Each
                    } else {
                        Step::Index(inner.parse().map_err(|_| {
                            format!(
                                "`{text}`: `[{inner}]` is not an index or `[*]` (filters and \
                                 slices are not supported)"
                            )
                        })?)
                    });
                    i = end + 1;
                    want_field = false;
                }
                b'.' if !want_field => {
                    i += 1;
                    want_field = true;
                }
                b'"' if want_field => {
                    let mut name = Vec::new();
                    let mut j = i + 1;
                    loop {
                        match bytes.get(j) {
                            None => return Err(format!("`{text}`: unterminated quoted field")),
                            Some(b'"') => break,
                            Some(b'\\') => {
                                name.extend(bytes.get(j + 1));
                                j += 2;
                            }
                            Some(&b) => {
                                name.push(b);
                                j += 1;
                            }
                        }
                    }
                    let name =
                        String::from_utf8(name).map_err(|_| format!("`{text}`: bad field"))?;
                    steps.push(Step::Field(name));
                    i = j + 1;
                    want_field = false;
                }
                b if want_field && (b.is_ascii_alphanumeric() || b == b'_' || b == b'-') => {
                    let len = bytes[i..]
                        .iter()
                        .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-'))
                        .unwrap_or(bytes.len() - i);
                    let name = String::from_utf8_lossy(&bytes[i..i + len]).into_owned();
                    // `a.0` reads as an index, the way users write it for lists.
                    steps.push(match name.parse::<i64>() {
                        Ok(n) if !steps.is_empty() => Step::Index(n),
                        _ => Step::Field(name),
                    });
                    i += len;
                    want_field = false;
                }
                _ => {
                    return Err(format!(
                        "`{text}`: unexpected `{}` at byte {i} (supported: fields, \
                         \"quoted\" fields, [N], [*])",
                        char::from(bytes[i])
                    ))
                }
            }
        }
        if steps.is_empty() || want_field {
            return Err(format!("`{text}`: empty path or trailing `.`"));
        }
        Ok(JsonPath { steps })
    }

    /// The value at this path; `None` when it is missing or null.
    pub(crate) fn find(&self, value: &Value) -> Option<Value> {
        find(&self.steps, value).filter(|v| !v.is_null())
    }
}

fn find(steps: &[Step], value: &Value) -> Option<Value> {
    let Some((step, rest)) = steps.split_first() else {
        return Some(value.clone());
    };
    match step {
        Step::Field(name) => find(rest, value.as_object()?.get(name)?),
        Step::Index(i) => {
            let items = value.as_array()?;
            let index = if *i < 0 {
                items.len().checked_sub(i.unsigned_abs() as usize)?
            } else {
                usize::try_from(*i).ok()?
            };
            find(rest, items.get(index)?)
        }
        Step::Each => {
            let items = value.as_array()?;
            let found: Vec<Value> = items
                .iter()
                .filter_map(|item| find(rest, item))
                .filter(|v| !v.is_null())
                .collect();
            Some(Value::Array(found))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn get(path: &str, value: &Value) -> Option<Value> {
        JsonPath::parse(path).unwrap().find(value)
    }

    #[test]
    fn fields_indexes_and_projections() {
        let doc = json!({
            "choices": [{"text": "a"}, {"text": "b"}],
            "output": {"text": "hi", "a.b": 7},
            "data": [{"embedding": [1, 2]}, {"x": 0}, {"embedding": [3, 4]}],
        });
        assert_eq!(get("choices[0].text", &doc), Some(json!("a")));
        assert_eq!(get("choices[-1].text", &doc), Some(json!("b")));
        assert_eq!(get("choices.1.text", &doc), Some(json!("b")));
        assert_eq!(get("output.text", &doc), Some(json!("hi")));
        assert_eq!(get("output.\"a.b\"", &doc), Some(json!(7)));
        assert_eq!(
            get("data[*].embedding", &doc),
            Some(json!([[1, 2], [3, 4]]))
        );
        assert_eq!(get("choices[5].text", &doc), None);
        assert_eq!(get("choices[-3]", &doc), None);
        assert_eq!(get("output.missing", &doc), None);
        assert_eq!(get("output[0]", &doc), None);
        assert_eq!(get("[0]", &json!(["x"])), Some(json!("x")));
    }

    #[test]
    fn unsupported_syntax_is_refused() {
        for bad in [
            "",
            "a.",
            ".a",
            "a..b",
            "a[?x]",
            "a[1:2]",
            "a | b",
            "a[",
            "\"open",
            "length(a)",
        ] {
            assert!(JsonPath::parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}
