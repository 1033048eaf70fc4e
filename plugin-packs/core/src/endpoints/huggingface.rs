//! Hugging Face Text Generation Inference: `/generate`, and `/generate_stream` when
//! streaming.

use aiperf_runtime::dataset::Turn;
use aiperf_runtime::metadata::EndpointMetadata;
use aiperf_runtime::plugin::{Plugin, PluginContext, PluginError};
use aiperf_runtime::protocols::EndpointProtocol;
use aiperf_runtime::record::{ErrorDetails, ParsedResponse, ResponseChunk};

use super::payload::{Field, InputShape};
use super::{response, BodyContext, Extras, Prepared};

/// `{"inputs": TEXTS JOINED BY SPACES, "parameters": {"max_new_tokens"?, ...extra}}`:
/// TGI takes generation options inside `parameters`, so `--extra-inputs` go there. The
/// stream (`data:{"token":{"text"}}` events, no `[DONE]`) and the body
/// (`{"generated_text"}`) are both read.
#[derive(Debug, Clone)]
pub struct HuggingFaceGenerateEndpoint {
    prepared: Prepared,
}

fn fields(body: &BodyContext<'_>, with_max_tokens: bool) -> Vec<(&'static str, Field)> {
    let mut parameters = Vec::new();
    if with_max_tokens {
        parameters.push(("max_new_tokens".to_owned(), Field::MaxTokens));
    }
    for (key, value) in body.extra {
        match parameters.iter_mut().find(|(k, _)| k == key) {
            Some((_, field)) => *field = Field::Value(value.clone()),
            None => parameters.push((key.clone(), Field::Value(value.clone()))),
        }
    }
    vec![
        ("inputs", Field::Input(InputShape::JoinedText)),
        ("parameters", Field::Nested(parameters)),
    ]
}

impl Plugin for HuggingFaceGenerateEndpoint {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(HuggingFaceGenerateEndpoint {
            prepared: Prepared::with_extras(ctx, fields, false, Extras::Placed)?,
        })
    }
}

impl EndpointProtocol for HuggingFaceGenerateEndpoint {
    fn metadata(&self) -> &EndpointMetadata {
        &self.prepared.metadata
    }

    fn format_payload(&self, turn: &Turn, body: &mut Vec<u8>) -> Result<(), PluginError> {
        self.prepared.format_payload(turn, body);
        Ok(())
    }

    fn request_headers(&self, headers: &mut Vec<(String, String)>) {
        self.prepared.request_headers(headers);
    }

    fn parse_response(
        &self,
        chunk: &ResponseChunk,
    ) -> Result<Option<ParsedResponse>, ErrorDetails> {
        response::parse_tgi(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::test_support::{chunk, shipped};
    use crate::test_config::{config, context};
    use aiperf_runtime::record::ResponseData;

    fn endpoint(args: &[&str]) -> HuggingFaceGenerateEndpoint {
        let cfg = config(args);
        HuggingFaceGenerateEndpoint::create(&context(&cfg, shipped("huggingface_generate")))
            .unwrap()
    }

    fn body(e: &HuggingFaceGenerateEndpoint, turn: &Turn) -> String {
        let mut body = Vec::new();
        e.format_payload(turn, &mut body).unwrap();
        String::from_utf8(body).unwrap()
    }

    fn data(e: &HuggingFaceGenerateEndpoint, s: &str) -> Option<ResponseData> {
        e.parse_response(&chunk(1, s)).unwrap().map(|p| p.data)
    }

    #[test]
    fn metadata_is_aiperfs() {
        let e = endpoint(&["-m", "m"]);
        let m = e.metadata();
        assert_eq!(m.endpoint_path.as_deref(), Some("/generate"));
        assert_eq!(m.streaming_path.as_deref(), Some("/generate_stream"));
        assert_eq!(m.metrics_title.as_deref(), Some("LLM Metrics"));
        assert!(m.supports_streaming && m.produces_tokens && m.tokenizes_input);
    }

    #[test]
    fn payload_puts_options_in_parameters() {
        let e = endpoint(&[
            "-m",
            "m",
            "--streaming",
            "--extra-inputs",
            "temperature:0.7,max_new_tokens:5",
        ]);
        let turn = Turn {
            texts: vec!["a".into(), "b c".into()],
            max_tokens: Some(12),
            ..Turn::default()
        };
        assert_eq!(
            body(&e, &turn),
            r#"{"inputs":"a b c","parameters":{"max_new_tokens":5,"temperature":0.7}}"#
        );
        let e = endpoint(&["-m", "m"]);
        let bare = Turn {
            texts: vec!["x".into()],
            ..Turn::default()
        };
        assert_eq!(body(&e, &bare), r#"{"inputs":"x","parameters":{}}"#);
        let limited = Turn {
            max_tokens: Some(3),
            ..bare
        };
        assert_eq!(
            body(&e, &limited),
            r#"{"inputs":"x","parameters":{"max_new_tokens":3}}"#
        );
    }

    #[test]
    fn parses_stream_events_and_bodies() {
        let e = endpoint(&["-m", "m"]);
        let text = |s: &str| Some(ResponseData::Text(s.into()));
        // BC-03: TGI's event, then its error frame.
        assert_eq!(
            data(
                &e,
                r#"{"token":{"id":42,"text":"Hi","logprob":-0.1,"special":false},"generated_text":null,"details":null}"#
            ),
            text("Hi")
        );
        let err = e
            .parse_response(&chunk(
                2,
                r#"{"error":"generation failed: shape mismatch","error_type":"generation"}"#,
            ))
            .unwrap_err();
        assert_eq!(err.kind, "generation");
        // The last event repeats the whole text; only its token counts.
        assert_eq!(
            data(
                &e,
                r#"{"token":{"id":2,"text":" end","special":false},"generated_text":"Hi end","details":{"finish_reason":"length","generated_tokens":2}}"#
            ),
            text(" end")
        );
        // Special tokens (end of sequence) are not text.
        assert_eq!(
            data(&e, r#"{"token":{"id":2,"text":"</s>","special":true}}"#),
            None
        );
        assert_eq!(data(&e, r#"{"generated_text":"whole"}"#), text("whole"));
        assert_eq!(data(&e, r#"[{"generated_text":"listed"}]"#), text("listed"));
        assert_eq!(data(&e, "[null]"), None);
        assert_eq!(data(&e, "[]"), None);
        assert_eq!(data(&e, r#"{"generated_text":""}"#), None);
    }
}
