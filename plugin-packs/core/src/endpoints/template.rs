//! The `template` endpoint: any JSON API, its body rendered from a user's Jinja template
//! and its output found by a user's path (or by shape).

use aiperf_runtime::dataset::Turn;
use aiperf_runtime::extra_inputs::TemplateChoice;
use aiperf_runtime::metadata::EndpointMetadata;
use aiperf_runtime::plugin::{Plugin, PluginContext, PluginError};
use aiperf_runtime::protocols::EndpointProtocol;
use aiperf_runtime::record::{ErrorDetails, ParsedResponse, ResponseChunk, ResponseData};
use minijinja::{AutoEscape, Environment};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::json_path::JsonPath;
use super::payload::{parse_extra_inputs, rankings_query};
use super::{endpoint_headers, response};

/// Renders the template (`--endpoint-template`, or AIPerf 0.13's `--extra-inputs
/// payload_template:...`: a named template, a file, or the text itself) for each turn; the
/// result must be JSON, and the other `--extra-inputs` are merged into it when it is an
/// object. Variables, as AIPerf names them: `text`/`texts`, `image`/`images`,
/// `audio`/`audios`, `video`/`videos` (always empty here), `query`/`queries`,
/// `passage`/`passages`, `texts_by_name` (and the empty `images_by_name`,
/// `audios_by_name`, `videos_by_name`), `model` (the turn's, else the primary `--model`),
/// `max_tokens`, `role`, `stream`, `turn`, `turns`. Nothing is escaped: write
/// `{{ text|tojson }}` to embed a string.
///
/// Responses: with `--response-field PATH` (or `--extra-inputs response_field:PATH`
/// beside a `payload_template`) the value there (a string is text, a list of
/// number lists embeddings, a list of objects rankings); without, AIPerf's detection
/// (embeddings, then rankings, then `text`/`content`/`response`/`output`/`result`, then
/// OpenAI `choices`). A body that is not JSON is text.
#[derive(Debug)]
pub struct TemplateEndpoint {
    metadata: EndpointMetadata,
    headers: Vec<(String, String)>,
    env: Environment<'static>,
    /// The primary `--model`, for turns that do not name one.
    model: String,
    streaming: bool,
    extra: Vec<(String, Value)>,
    field: Option<JsonPath>,
}

impl Plugin for TemplateEndpoint {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        let metadata: EndpointMetadata = ctx.entry.metadata()?;
        let config = ctx.config;
        let Some(choice) = TemplateChoice::from_config(config)? else {
            return Err(PluginError::Config(
                "the template endpoint needs a template: --extra-inputs payload_template:<t> \
                 or --endpoint-template <t>, where <t> is a named template such as \
                 `nv-embedqa`, a file, or the template text"
                    .into(),
            ));
        };
        let source = choice.source()?;
        let mut env = Environment::new();
        // The output is JSON, not HTML: values are written as they are.
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.add_template_owned("body", source)
            .map_err(|e| PluginError::Config(format!("--endpoint-template: {e}")))?;
        // "text" means "detect", as in AIPerf.
        let field = match choice.response_field.as_deref().map(str::trim) {
            None | Some("" | "text") => None,
            Some(path) => Some(
                JsonPath::parse(path)
                    .map_err(|e| PluginError::Config(format!("--response-field {e}")))?,
            ),
        };
        Ok(TemplateEndpoint {
            streaming: config.streaming && metadata.supports_streaming,
            metadata,
            headers: endpoint_headers(&config.headers, config.api_key.as_deref())?,
            env,
            model: config.model_name().to_owned(),
            extra: parse_extra_inputs(&config.extra_inputs)?,
            field,
        })
    }
}

impl TemplateEndpoint {
    fn variables(&self, turn: &Turn) -> Value {
        let mut by_name: serde_json::Map<String, Value> = serde_json::Map::new();
        for (i, text) in turn.texts.iter().enumerate() {
            if let Some(name) = turn.text_name(i) {
                let list = by_name.entry(name).or_insert_with(|| json!([]));
                if let Value::Array(items) = list {
                    items.push(Value::from(text.as_str()));
                }
            }
        }
        let named = |name: &str| by_name.get(name).cloned().unwrap_or_else(|| json!([]));
        let queries = named("query");
        let passages = match named("passages") {
            Value::Array(p) if p.is_empty() => named("passage"),
            p => p,
        };
        let turn_value = serde_json::to_value(turn).unwrap_or(Value::Null);
        json!({
            "texts": turn.texts,
            "images": turn.images,
            "audios": turn.audios,
            "videos": [],
            "text": turn.texts.first(),
            "image": turn.images.first(),
            "audio": turn.audios.first(),
            "video": null,
            "query": rankings_query(turn),
            "queries": queries,
            "passage": passages.get(0),
            "passages": passages,
            "texts_by_name": by_name,
            "images_by_name": {},
            "audios_by_name": {},
            "videos_by_name": {},
            "model": turn.model.as_deref().unwrap_or(&self.model),
            "max_tokens": turn.max_tokens,
            "role": turn.role,
            "stream": self.streaming,
            "turns": [turn_value.clone()],
            "turn": turn_value,
        })
    }
}

impl EndpointProtocol for TemplateEndpoint {
    fn metadata(&self) -> &EndpointMetadata {
        &self.metadata
    }

    /// Renders the template, checks the result is JSON and merges `--extra-inputs` into
    /// it (an existing key keeps its place, as a dict update does). The body is the
    /// rendered JSON without its whitespace, keys in the user's order, as AIPerf's
    /// `orjson.dumps(json.loads(rendered))` writes it (re-serializing through
    /// `serde_json::Value` would sort nested keys).
    fn format_payload(&self, turn: &Turn, body: &mut Vec<u8>) -> Result<(), PluginError> {
        let template = self
            .env
            .get_template("body")
            .map_err(|e| PluginError::Other(e.to_string()))?;
        let rendered = template
            .render(minijinja::value::Serde(self.variables(turn)))
            .map_err(|e| PluginError::Config(format!("--endpoint-template: {e}")))?;
        let rendered = rendered.trim();
        // Checked before the whitespace goes: `[1 2]` must not become `[12]`.
        if let Err(e) = serde_json::from_str::<&RawValue>(rendered) {
            let end = (0..=rendered.len().min(200))
                .rev()
                .find(|&i| rendered.is_char_boundary(i))
                .unwrap_or(0);
            return Err(PluginError::Config(format!(
                "--endpoint-template did not render JSON ({e}): {}",
                &rendered[..end]
            )));
        }
        let rendered = minify(rendered);
        if !rendered.starts_with('{') {
            if !self.extra.is_empty() {
                return Err(PluginError::Config(
                    "--extra-inputs need the template to render a JSON object".into(),
                ));
            }
            body.extend_from_slice(rendered.as_bytes());
            return Ok(());
        }
        let invalid = |e: serde_json::Error| PluginError::Other(format!("template body: {e}"));
        let mut entries = raw_entries(&rendered).map_err(invalid)?;
        for (key, value) in &self.extra {
            let raw = RawValue::from_string(value.to_string()).map_err(invalid)?;
            match entries.iter_mut().find(|(k, _)| k == key) {
                Some((_, v)) => *v = raw,
                None => entries.push((key.clone(), raw)),
            }
        }
        body.push(b'{');
        for (i, (key, value)) in entries.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            // Writing a string into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *body, key);
            body.push(b':');
            body.extend_from_slice(value.get().as_bytes());
        }
        body.push(b'}');
        Ok(())
    }

    fn request_headers(&self, headers: &mut Vec<(String, String)>) {
        headers.extend(self.headers.iter().cloned());
    }

    fn parse_response(
        &self,
        chunk: &ResponseChunk,
    ) -> Result<Option<ParsedResponse>, ErrorDetails> {
        let value = match response::decode_value(chunk) {
            Ok(Some(value)) => value,
            Ok(None) => return Ok(None),
            // A body that is not JSON is the output itself (a plain-text API).
            Err(e) if e.kind == response::INVALID_RESPONSE && chunk.event.is_none() => {
                let text = String::from_utf8_lossy(chunk.data.trim_ascii()).into_owned();
                return Ok(Some(ParsedResponse {
                    recv_ns: chunk.recv_ns,
                    data: ResponseData::Text(text),
                    usage: None,
                }));
            }
            Err(e) => return Err(e),
        };
        let data = match &self.field {
            Some(path) => path
                .find(&value)
                .map_or(ResponseData::Empty, |v| response::convert(&v)),
            None => response::detect(&value),
        };
        if data == ResponseData::Empty {
            return Ok(None);
        }
        // A template's API is unknown: as AIPerf's template endpoint, its `usage` is not
        // read (a usage field of another shape would be misread).
        Ok(Some(ParsedResponse {
            recv_ns: chunk.recv_ns,
            data,
            usage: None,
        }))
    }
}

/// JSON text without the whitespace between tokens (strings untouched). Invalid JSON
/// stays invalid, and is reported by the parse that follows.
pub(super) fn minify(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

/// A JSON object's entries in document order, values kept as written.
fn raw_entries(text: &str) -> Result<Vec<(String, Box<RawValue>)>, serde_json::Error> {
    struct Entries;

    impl<'de> Visitor<'de> for Entries {
        type Value = Vec<(String, Box<RawValue>)>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
            let mut entries: Vec<(String, Box<RawValue>)> = Vec::new();
            while let Some((key, value)) = map.next_entry::<String, Box<RawValue>>()? {
                // A repeated key: the last value wins, in the first one's place.
                match entries.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, v)) => *v = value,
                    None => entries.push((key, value)),
                }
            }
            Ok(entries)
        }
    }

    let mut deserializer = serde_json::Deserializer::from_str(text);
    let entries = (&mut deserializer).deserialize_map(Entries)?;
    deserializer.end()?;
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::test_support::{chunk, shipped};
    use crate::test_config::{config, context};

    fn endpoint(args: &[&str]) -> Result<TemplateEndpoint, PluginError> {
        let cfg = config(args);
        TemplateEndpoint::create(&context(&cfg, shipped("template")))
    }

    fn body(e: &TemplateEndpoint, turn: &Turn) -> Result<String, PluginError> {
        let mut body = Vec::new();
        e.format_payload(turn, &mut body)?;
        Ok(String::from_utf8(body).unwrap())
    }

    fn turn() -> Turn {
        Turn {
            texts: vec!["say \"hi\"".into()],
            max_tokens: Some(8),
            ..Turn::default()
        }
    }

    #[test]
    fn metadata_is_aiperfs() {
        let e = endpoint(&["-m", "m", "--endpoint-template", "nv-embedqa"]).unwrap();
        let m = e.metadata();
        assert_eq!(m.endpoint_path, None);
        assert_eq!(m.metrics_title.as_deref(), Some("LLM Metrics"));
        assert!(m.supports_streaming && m.produces_tokens && m.tokenizes_input);
        assert!(m.supports_images && m.supports_audio && m.supports_videos);
    }

    #[test]
    fn named_inline_and_file_templates() {
        let e = endpoint(&["-m", "m", "--endpoint-template", "nv-embedqa"]).unwrap();
        assert_eq!(body(&e, &turn()).unwrap(), r#"{"text":["say \"hi\""]}"#);

        let inline = concat!(
            r#"{"model": {{ model|tojson }}, "prompt": {{ text|tojson }}, "#,
            r#""opts": {"z": 1, "a": {{ max_tokens }}, "stream": {{ stream|tojson }}}}"#
        );
        let e = endpoint(&[
            "-m",
            "llm",
            "--streaming",
            "--template",
            inline,
            "--extra-inputs",
            "temperature:0.1,model:other",
        ])
        .unwrap();
        // Nested keys keep their order; extras replace in place or go last.
        assert_eq!(
            body(&e, &turn()).unwrap(),
            r#"{"model":"other","prompt":"say \"hi\"","opts":{"z":1,"a":8,"stream":true},"temperature":0.1}"#
        );

        let dir = std::env::temp_dir().join(format!("aiperf-template-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("body.j2");
        std::fs::write(
            &file,
            "[{% for t in texts %}{{ t|tojson }}{% if not loop.last %},{% endif %}{% endfor %}]\n",
        )
        .unwrap();
        let e = endpoint(&["-m", "m", "--endpoint-template", file.to_str().unwrap()]).unwrap();
        let two = Turn {
            texts: vec!["a".into(), "b".into()],
            ..Turn::default()
        };
        assert_eq!(body(&e, &two).unwrap(), r#"["a","b"]"#);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// AIPerf 0.13's way to give the template and the output path; both ways at once is
    /// refused rather than one of them ignored.
    #[test]
    fn the_template_can_come_from_extra_inputs() {
        let e = endpoint(&[
            "-m",
            "m",
            "--extra-inputs",
            "payload_template:nv-embedqa,response_field:out.text,temperature:0.1",
        ])
        .unwrap();
        assert_eq!(
            body(&e, &turn()).unwrap(),
            r#"{"text":["say \"hi\""],"temperature":0.1}"#
        );
        assert_eq!(
            e.parse_response(&chunk(1, r#"{"out":{"text":"yes"},"text":"decoy"}"#))
                .unwrap()
                .unwrap()
                .data,
            ResponseData::Text("yes".into())
        );
        let twice = endpoint(&[
            "-m",
            "m",
            "--endpoint-template",
            "nv-embedqa",
            "--extra-inputs",
            "payload_template:nv-embedqa",
        ]);
        match twice {
            Err(PluginError::Config(msg)) => assert_eq!(
                msg,
                "the template is given twice, by --endpoint-template and by --extra-inputs \
                 payload_template: give one"
            ),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn rankings_media_and_names_are_variables() {
        let inline = concat!(
            r#"{"q": {{ query|tojson }}, "docs": {{ passages|tojson }}, "#,
            r#""byname": {{ texts_by_name.passages|length }}, "img": {{ image|tojson }}, "#,
            r#""n_audio": {{ audios|length }}, "role": {{ role|tojson }}}"#
        );
        let e = endpoint(&["-m", "m", "--endpoint-template", inline]).unwrap();
        let t = Turn {
            texts: vec!["q?".into(), "p1".into(), "p2".into()],
            text_names: vec!["query".into(), "passages".into(), "passages".into()],
            images: vec!["data:image/png;base64,AA==".into()],
            audios: vec!["x".into(), "y".into()],
            ..Turn::default()
        };
        assert_eq!(
            body(&e, &t).unwrap(),
            r#"{"q":"q?","docs":["p1","p2"],"byname":2,"img":"data:image/png;base64,AA==","n_audio":2,"role":null}"#
        );
    }

    #[test]
    fn minify_keeps_strings() {
        assert_eq!(
            minify("{ \"a b\" : [1, 2],\n\t\"c\": \"x \\\" y\" }"),
            "{\"a b\":[1,2],\"c\":\"x \\\" y\"}"
        );
    }

    #[test]
    fn bad_templates_are_config_errors() {
        assert!(matches!(
            endpoint(&["-m", "m"]),
            Err(PluginError::Config(_))
        ));
        assert!(matches!(
            endpoint(&["-m", "m", "--endpoint-template", "{{ unclosed"]),
            Err(PluginError::Config(_))
        ));
        assert!(matches!(
            endpoint(&[
                "-m",
                "m",
                "--endpoint-template",
                "{}",
                "--response-field",
                "a[?x]"
            ]),
            Err(PluginError::Config(_))
        ));
        let e = endpoint(&["-m", "m", "--endpoint-template", "{\"p\": {{ text }}}"]).unwrap();
        // `say "hi"` unquoted is not JSON.
        assert!(matches!(body(&e, &turn()), Err(PluginError::Config(_))));
        let e = endpoint(&[
            "-m",
            "m",
            "--endpoint-template",
            "[1]",
            "--extra-inputs",
            "a:1",
        ])
        .unwrap();
        assert!(matches!(body(&e, &turn()), Err(PluginError::Config(_))));
    }

    #[test]
    fn responses_by_path() {
        let e = endpoint(&[
            "-m",
            "m",
            "--endpoint-template",
            "{}",
            "--response-field",
            "output.choices[0].text",
        ])
        .unwrap();
        let data = |s: &str| e.parse_response(&chunk(1, s)).unwrap().map(|p| p.data);
        assert_eq!(
            data(r#"{"output":{"choices":[{"text":"yes"}]},"text":"decoy"}"#),
            Some(ResponseData::Text("yes".into()))
        );
        // A miss is no content, whatever else the body has.
        assert_eq!(data(r#"{"text":"decoy"}"#), None);
        // An empty output is none, and the usage beside it is not read (as AIPerf's
        // template endpoint, which reads no usage).
        assert_eq!(
            data(r#"{"output":{"choices":[{"text":""}]},"usage":{"prompt_tokens":3}}"#),
            None
        );
        let parsed = |s: &str| e.parse_response(&chunk(1, s)).unwrap().unwrap();
        let with_usage = r#"{"output":{"choices":[{"text":"a"}]},"usage":{"prompt_tokens":3}}"#;
        assert_eq!(parsed(with_usage).usage, None);

        let e = endpoint(&[
            "-m",
            "m",
            "--endpoint-template",
            "{}",
            "--response-field",
            "data[*].embedding",
        ])
        .unwrap();
        assert_eq!(
            e.parse_response(&chunk(
                1,
                r#"{"data":[{"embedding":[1,2]},{"embedding":[3,4]}]}"#
            ))
            .unwrap()
            .unwrap()
            .data,
            ResponseData::Embeddings { count: 2 }
        );
    }

    #[test]
    fn responses_by_shape() {
        let e = endpoint(&["-m", "m", "--endpoint-template", "{}"]).unwrap();
        let data = |s: &str| e.parse_response(&chunk(1, s)).unwrap().map(|p| p.data);
        let text = |s: &str| Some(ResponseData::Text(s.into()));
        assert_eq!(
            data(r#"{"data":[{"object":"embedding","embedding":[0.1]}]}"#),
            Some(ResponseData::Embeddings { count: 1 })
        );
        assert_eq!(
            data(r#"{"rankings":[{"index":0},{"index":1}]}"#),
            Some(ResponseData::Rankings { count: 2 })
        );
        assert_eq!(
            data(r#"[{"index":0,"score":1}]"#),
            Some(ResponseData::Rankings { count: 1 })
        );
        assert_eq!(data(r#"{"response":"r"}"#), text("r"));
        assert_eq!(data(r#"{"output":["a","b"]}"#), text("ab"));
        assert_eq!(data(r#"{"choices":[{"text":"c"}]}"#), text("c"));
        assert_eq!(
            data(r#"{"choices":[{"delta":{"content":"d"}}]}"#),
            text("d")
        );
        assert_eq!(data("plain words"), text("plain words"));
        assert_eq!(data("[DONE]"), None);
        assert_eq!(data(r#"{"nothing":1}"#), None);
        assert!(e
            .parse_response(&chunk(1, r#"{"error":{"message":"bad","code":400}}"#))
            .is_err());
    }
}
