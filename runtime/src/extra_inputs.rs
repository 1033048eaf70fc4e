//! `--extra-inputs`: body fields given on the command line, typed as AIPerf types them.
//!
//! The endpoints merge them into every request body and `input_config` lists them under
//! `endpoint.extra`; both read them through this one parser, so the artifact shows each
//! value with the type it is sent with.
//!
//! Two keys are settings rather than body fields, as in AIPerf 0.13: `payload_template`
//! names the `template` endpoint's template, and beside it `response_field` says where the
//! output is. They are taken out of the body (see [`TemplateChoice`]).

use std::path::Path;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::config::ProfileConfig;
use crate::plugin::PluginError;

/// The `--extra-inputs` key that gives the `template` endpoint its template.
pub const PAYLOAD_TEMPLATE: &str = "payload_template";
/// The `--extra-inputs` key, read beside [`PAYLOAD_TEMPLATE`], that says where the output
/// of a templated request's response is.
pub const RESPONSE_FIELD: &str = "response_field";

/// Templates known by name, as AIPerf ships them.
pub const NAMED_TEMPLATES: &[(&str, &str)] = &[("nv-embedqa", r#"{"text": {{ texts|tojson }}}"#)];

/// Largest template file read.
const MAX_TEMPLATE_BYTES: u64 = 1 << 20;

/// Body fields, in order.
type Fields = Vec<(String, Value)>;

/// Body fields from `--extra-inputs`: every field, in order, except the template
/// endpoint's settings ([`PAYLOAD_TEMPLATE`] and, beside it, [`RESPONSE_FIELD`]).
pub fn parse_extra_inputs(args: &[String]) -> Result<Fields, PluginError> {
    Ok(split_extra_inputs(args)?.0)
}

/// `--extra-inputs` split as AIPerf 0.13 splits them: the body fields, and the template
/// settings when a `payload_template` is among them (a `response_field` without one is an
/// ordinary body field, as there).
fn split_extra_inputs(args: &[String]) -> Result<(Fields, Option<TemplateChoice>), PluginError> {
    let mut fields = parse_all(args)?;
    let Some(at) = fields.iter().position(|(k, _)| k == PAYLOAD_TEMPLATE) else {
        return Ok((fields, None));
    };
    let (_, spec) = fields.remove(at);
    let response_field = fields
        .iter()
        .position(|(k, _)| k == RESPONSE_FIELD)
        .map(|at| as_text(fields.remove(at).1));
    let choice = TemplateChoice {
        spec: as_text(spec),
        response_field,
    };
    Ok((fields, Some(choice)))
}

/// A value typed back into the text it was given as (a template that happens to be JSON
/// was typed as JSON).
fn as_text(value: Value) -> String {
    match value {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// The `template` endpoint's template and the place of its responses' output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateChoice {
    /// A named template (`nv-embedqa`), a file path, or the template text itself.
    pub spec: String,
    /// A path such as `choices[0].text`; `None` (or `text`) detects the output by shape.
    pub response_field: Option<String>,
}

impl TemplateChoice {
    /// The run's template: `--endpoint-template` with `--response-field`, or AIPerf 0.13's
    /// `--extra-inputs payload_template:<spec>` with `response_field:<path>`. Both ways at
    /// once is refused, since one of them would be silently ignored.
    pub fn from_config(config: &ProfileConfig) -> Result<Option<Self>, PluginError> {
        let (_, from_extra) = split_extra_inputs(&config.extra_inputs)?;
        match (&config.endpoint_template, from_extra) {
            (Some(_), Some(_)) => Err(PluginError::Config(format!(
                "the template is given twice, by --endpoint-template and by --extra-inputs \
                 {PAYLOAD_TEMPLATE}: give one"
            ))),
            (Some(spec), None) => Ok(Some(TemplateChoice {
                spec: spec.clone(),
                response_field: config.response_field.clone(),
            })),
            (None, Some(mut choice)) => {
                if config.response_field.is_some() {
                    choice.response_field = config.response_field.clone();
                }
                Ok(Some(choice))
            }
            (None, None) => Ok(None),
        }
    }

    /// The template text: a named template's, else a file's, else the spec itself.
    pub fn source(&self) -> Result<String, PluginError> {
        if let Some((_, source)) = NAMED_TEMPLATES.iter().find(|(name, _)| *name == self.spec) {
            return Ok((*source).to_owned());
        }
        self.body()
    }

    /// AIPerf's `template.body`: a file's text, else the spec as given (a named template
    /// keeps its name).
    pub fn body(&self) -> Result<String, PluginError> {
        let spec = self.spec.as_str();
        let path = Path::new(spec);
        // Inline templates hold braces or line breaks; a path holds neither.
        if spec.contains(['{', '\n']) || !path.is_file() {
            return Ok(spec.to_owned());
        }
        let len = std::fs::metadata(path)?.len();
        if len > MAX_TEMPLATE_BYTES {
            return Err(PluginError::Config(format!(
                "template {spec}: {len} bytes is more than a template should be"
            )));
        }
        Ok(std::fs::read_to_string(path)?)
    }
}

/// Parses `--extra-inputs` values into fields, in order; a later key replaces an
/// earlier one's value and keeps its place.
///
/// Each value is a JSON object (`{"temperature":0.5}`) or `key:value` pairs split at
/// every comma, as AIPerf 0.13 splits them, whose values are typed as AIPerf types them:
/// `true`/`false`, `null`/`none`, integers, decimals, else the text itself. A list or an
/// object therefore goes in the JSON form: AIPerf refuses `stop:["a","b"]` (its second
/// item, `"b"]`, has no colon) and sends `stop:["a"]` as the text `["a"]`, and so do we.
fn parse_all(args: &[String]) -> Result<Fields, PluginError> {
    let mut out: Vec<(String, Value)> = Vec::new();
    let mut insert = |key: String, value: Value| match out.iter_mut().find(|(k, _)| *k == key) {
        Some((_, v)) => *v = value,
        None => out.push((key, value)),
    };
    for arg in args {
        let arg = arg.trim();
        if arg.starts_with('{') {
            let pairs = parse_ordered_object(arg).map_err(|e| {
                PluginError::Config(format!("--extra-inputs `{arg}` is not a JSON object: {e}"))
            })?;
            for (key, value) in pairs {
                insert(key, value);
            }
            continue;
        }
        for item in arg.split(',') {
            let Some((key, value)) = item.split_once(':') else {
                return Err(PluginError::Config(not_key_value(arg)));
            };
            let key = key.trim();
            if key.is_empty() {
                return Err(PluginError::Config(format!(
                    "--extra-inputs `{item}` has an empty key"
                )));
            }
            insert(key.to_owned(), coerce_value(value.trim()));
        }
    }
    Ok(out)
}

/// AIPerf 0.13's refusal of an `--extra-inputs` value with an item that is not
/// `key:value`, then how to give what was probably meant.
fn not_key_value(arg: &str) -> String {
    format!(
        "--extra-inputs: User Config: {arg} - each item must be in 'key:value' format (items \
         are split at every comma, as in AIPerf 0.13: give a value holding commas in a JSON \
         object, such as --extra-inputs '{{\"stop\": [\"a\", \"b\"]}}')"
    )
}

/// AIPerf's `coerce_value`: booleans, null, integers and decimals; anything else, JSON
/// included, stays text.
fn coerce_value(text: &str) -> Value {
    let lower = text.to_ascii_lowercase();
    match lower.as_str() {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        "null" | "none" => return Value::Null,
        _ => {}
    }
    let digits = text.strip_prefix('-').unwrap_or(text);
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if all_digits(digits) && (!digits.starts_with('0') || digits == "0") {
        // Digits without a leading zero are valid JSON; past 64 bits they become a float,
        // the closest a JSON number gets to Python's unbounded int.
        if let Ok(value @ Value::Number(_)) = serde_json::from_str::<Value>(text) {
            return value;
        }
    }
    if digits.matches('.').count() == 1 && all_digits(&digits.replace('.', "")) {
        if let Ok(f) = text.parse::<f64>() {
            if let Some(n) = serde_json::Number::from_f64(f) {
                return Value::Number(n);
            }
        }
    }
    Value::String(text.to_owned())
}

/// A JSON object's entries in document order (`serde_json::Map` sorts them).
pub fn parse_ordered_object<'de, V: serde::Deserialize<'de>>(
    text: &'de str,
) -> Result<Vec<(String, V)>, serde_json::Error> {
    struct Ordered<V>(std::marker::PhantomData<V>);

    impl<'de, V: serde::Deserialize<'de>> Visitor<'de> for Ordered<V> {
        type Value = Vec<(String, V)>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
            let mut entries = Vec::new();
            while let Some((key, value)) = map.next_entry::<String, V>()? {
                entries.push((key, value));
            }
            Ok(entries)
        }
    }

    let mut deserializer = serde_json::Deserializer::from_str(text);
    let entries = (&mut deserializer).deserialize_map(Ordered(std::marker::PhantomData))?;
    deserializer.end()?;
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_payload_template_is_a_setting_not_a_body_field() {
        let args = strings(&[
            "temperature:0.5,payload_template:{\"q\": {{ text|tojson }}}",
            "response_field:output.text,n:2",
        ]);
        assert_eq!(
            parse_extra_inputs(&args).unwrap(),
            vec![("temperature".into(), json!(0.5)), ("n".into(), json!(2))]
        );
        let (_, choice) = split_extra_inputs(&args).unwrap();
        assert_eq!(
            choice,
            Some(TemplateChoice {
                spec: r#"{"q": {{ text|tojson }}}"#.into(),
                response_field: Some("output.text".into()),
            })
        );
        // Without a template, `response_field` is an ordinary field, as in AIPerf.
        assert_eq!(
            parse_extra_inputs(&strings(&["response_field:x"])).unwrap(),
            vec![("response_field".into(), json!("x"))]
        );
        // A template that is plain JSON was typed as JSON; it is used as its text.
        let (_, choice) =
            split_extra_inputs(&strings(&[r#"{"payload_template": {"a": 1}}"#])).unwrap();
        assert_eq!(choice.unwrap().spec, r#"{"a":1}"#);
    }

    #[test]
    fn extra_input_values_are_typed() {
        let parsed = parse_extra_inputs(&strings(&[
            "temperature:0.5",
            "top_k:40,ignore_eos:true,seed:-3",
            "stop:null",
            "name:gpt",
            "zip:007",
            "stop_ids:[1]",
            "{\"logit_bias\": {\"a\": 1, \"b\": 2}, \"stop\": [\"x\", \"y\"]}",
            "big:123456789012345678901234567890",
            "half:.5,ratio:-1.",
        ]))
        .unwrap();
        let expected = vec![
            ("temperature", json!(0.5)),
            ("top_k", json!(40)),
            ("ignore_eos", json!(true)),
            ("seed", json!(-3)),
            ("stop", json!(["x", "y"])),
            ("name", json!("gpt")),
            ("zip", json!("007")),
            // JSON after a colon is text, as AIPerf sends it.
            ("stop_ids", json!("[1]")),
            ("logit_bias", json!({"a": 1, "b": 2})),
            ("big", json!(1.2345678901234568e29)),
            ("half", json!(0.5)),
            ("ratio", json!(-1.0)),
        ];
        let expected: Vec<(String, Value)> = expected
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        assert_eq!(parsed, expected);
    }

    #[test]
    fn later_extra_inputs_override_in_place() {
        let parsed = parse_extra_inputs(&strings(&["a:1", "{\"z\": 1, \"b\": 2}", "a:x"])).unwrap();
        let keys: Vec<&str> = parsed.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "z", "b"]);
        assert_eq!(parsed[0].1, json!("x"));
    }

    /// AIPerf 0.13 splits at every comma, so a list after a colon, an item without one
    /// and a trailing comma are all refused, in its words.
    #[test]
    fn items_without_a_colon_are_refused_as_aiperf_refuses_them() {
        for arg in [r#"stop:["a","b"]"#, "a:1,b", "a:1,", "novalue"] {
            let refused = parse_extra_inputs(&strings(&[arg]))
                .unwrap_err()
                .to_string();
            assert_eq!(
                refused,
                format!(
                    "--extra-inputs: User Config: {arg} - each item must be in 'key:value' \
                     format (items are split at every comma, as in AIPerf 0.13: give a value \
                     holding commas in a JSON object, such as --extra-inputs '{{\"stop\": \
                     [\"a\", \"b\"]}}')"
                )
            );
        }
    }

    #[test]
    fn bad_extra_inputs_are_config_errors() {
        for bad in ["novalue", ":1", "{not json", "{\"a\":1} trailing"] {
            assert!(
                matches!(
                    parse_extra_inputs(&strings(&[bad])),
                    Err(PluginError::Config(_))
                ),
                "{bad}"
            );
        }
    }
}
