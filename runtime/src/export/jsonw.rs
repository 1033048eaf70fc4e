//! A small ordered JSON tree and its writers. serde_json's map sorts keys unless a
//! feature is enabled somewhere in the build; AIPerf's key order is part of the layout,
//! so the exporters build documents with explicit order instead.

use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    /// A number already formatted as JSON.
    Num(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// A float as AIPerf writes it (shortest round-trip form, `20.0` for integral
    /// values); non-finite values become `null`, as AIPerf scrubs them.
    pub fn float(v: f64) -> Json {
        if v.is_finite() {
            Json::Num(serde_json::to_string(&v).unwrap_or_else(|_| "null".into()))
        } else {
            Json::Null
        }
    }

    pub fn int(v: impl Into<i128>) -> Json {
        Json::Num(v.into().to_string())
    }

    pub fn str(s: impl Into<String>) -> Json {
        Json::Str(s.into())
    }

    /// A float that stands for an integer count, written without a fraction when it
    /// is one (AIPerf keeps token counts as Python ints).
    #[cfg(test)]
    pub fn count(v: f64) -> Json {
        if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.007_199_254_740_992e15 {
            Json::int(v as i64)
        } else {
            Json::float(v)
        }
    }

    pub fn from_value(v: &serde_json::Value) -> Json {
        match v {
            serde_json::Value::Null => Json::Null,
            serde_json::Value::Bool(b) => Json::Bool(*b),
            serde_json::Value::Number(n) => match n.as_f64() {
                Some(f) if !f.is_finite() => Json::Null,
                _ => Json::Num(n.to_string()),
            },
            serde_json::Value::String(s) => Json::Str(s.clone()),
            serde_json::Value::Array(a) => Json::Arr(a.iter().map(Json::from_value).collect()),
            serde_json::Value::Object(o) => Json::Obj(
                o.iter()
                    .map(|(k, v)| (k.clone(), Json::from_value(v)))
                    .collect(),
            ),
        }
    }

    /// One line, no spaces (orjson's default, used for JSONL).
    pub fn write_compact(&self, out: &mut String) {
        match self {
            Json::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_compact(out);
                }
                out.push(']');
            }
            Json::Obj(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_str(out, k);
                    out.push(':');
                    v.write_compact(out);
                }
                out.push('}');
            }
            scalar => scalar.write_scalar(out),
        }
    }

    /// Two-space indentation, `"key": value` (orjson's `OPT_INDENT_2`).
    pub fn write_pretty(&self, out: &mut String, depth: usize) {
        match self {
            Json::Arr(items) if !items.is_empty() => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    out.push_str(if i > 0 { ",\n" } else { "\n" });
                    indent(out, depth + 1);
                    item.write_pretty(out, depth + 1);
                }
                out.push('\n');
                indent(out, depth);
                out.push(']');
            }
            Json::Obj(fields) if !fields.is_empty() => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    out.push_str(if i > 0 { ",\n" } else { "\n" });
                    indent(out, depth + 1);
                    write_str(out, k);
                    out.push_str(": ");
                    v.write_pretty(out, depth + 1);
                }
                out.push('\n');
                indent(out, depth);
                out.push('}');
            }
            Json::Arr(_) => out.push_str("[]"),
            Json::Obj(_) => out.push_str("{}"),
            scalar => scalar.write_scalar(out),
        }
    }

    fn write_scalar(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => {
                let _ = write!(out, "{b}");
            }
            Json::Num(n) => out.push_str(n),
            Json::Str(s) => write_str(out, s),
            Json::Arr(_) | Json::Obj(_) => self.write_compact(out),
        }
    }
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

fn write_str(out: &mut String, s: &str) {
    // Serializing a &str cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_and_compact_layouts() {
        let doc = Json::Obj(vec![
            ("a".into(), Json::float(20.0)),
            (
                "b".into(),
                Json::Arr(vec![Json::int(1), Json::float(f64::NAN)]),
            ),
            ("c".into(), Json::Obj(vec![])),
            ("d".into(), Json::Arr(vec![])),
            ("e".into(), Json::str("q\"\n")),
            ("f".into(), Json::count(64.0)),
        ]);
        let mut pretty = String::new();
        doc.write_pretty(&mut pretty, 0);
        assert_eq!(
            pretty,
            "{\n  \"a\": 20.0,\n  \"b\": [\n    1,\n    null\n  ],\n  \"c\": {},\n  \"d\": [],\n  \
             \"e\": \"q\\\"\\n\",\n  \"f\": 64\n}"
        );
        let mut compact = String::new();
        doc.write_compact(&mut compact);
        assert_eq!(
            compact,
            r#"{"a":20.0,"b":[1,null],"c":{},"d":[],"e":"q\"\n","f":64}"#
        );
    }
}
