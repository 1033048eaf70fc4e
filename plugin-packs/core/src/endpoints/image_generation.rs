//! OpenAI image generation (`/v1/images/generations`), streamed as partial images.

use aiperf_runtime::dataset::Turn;
use aiperf_runtime::metadata::EndpointMetadata;
use aiperf_runtime::plugin::{Plugin, PluginContext, PluginError};
use aiperf_runtime::protocols::EndpointProtocol;
use aiperf_runtime::record::{ErrorDetails, ParsedResponse, ResponseChunk};
use serde_json::Value;

use super::payload::{Field, InputShape};
use super::{model_value, response, BodyContext, Prepared};

/// `{"prompt": FIRST TEXT,"model","response_format":"b64_json","n":1,"stream"?}` plus
/// `--extra-inputs` (`size`, `quality`, `partial_images`, ...). Streams carry
/// `b64_json` per (partial) image; bodies a `data[]` of images.
#[derive(Debug, Clone)]
pub struct ImageGenerationEndpoint {
    prepared: Prepared,
}

fn fields(body: &BodyContext<'_>, _with_max_tokens: bool) -> Vec<(&'static str, Field)> {
    // `b64_json` by default: SGLang serves only that; `--extra-inputs` may change it.
    let mut fields = vec![
        ("prompt", Field::Input(InputShape::FirstText)),
        ("model", model_value(body)),
        ("response_format", Field::Value(Value::from("b64_json"))),
        ("n", Field::Value(Value::from(1))),
    ];
    if body.streaming {
        fields.push(("stream", Field::Value(Value::Bool(true))));
    }
    fields
}

impl Plugin for ImageGenerationEndpoint {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(ImageGenerationEndpoint {
            prepared: Prepared::new(ctx, fields, false)?,
        })
    }
}

impl EndpointProtocol for ImageGenerationEndpoint {
    fn metadata(&self) -> &EndpointMetadata {
        &self.prepared.metadata
    }

    fn format_payload(&self, turn: &Turn, body: &mut Vec<u8>) -> Result<(), PluginError> {
        if turn.texts.is_empty() {
            return Err(PluginError::Config(
                "image_generation needs a text prompt in every turn".into(),
            ));
        }
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
        response::parse_images(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::test_support::{chunk, event, shipped};
    use crate::test_config::{config, context};
    use aiperf_runtime::record::{ResponseData, Usage};

    fn endpoint(args: &[&str]) -> ImageGenerationEndpoint {
        let cfg = config(args);
        ImageGenerationEndpoint::create(&context(&cfg, shipped("image_generation"))).unwrap()
    }

    fn body(e: &ImageGenerationEndpoint, turn: &Turn) -> Result<String, PluginError> {
        let mut body = Vec::new();
        e.format_payload(turn, &mut body)?;
        Ok(String::from_utf8(body).unwrap())
    }

    #[test]
    fn metadata_is_aiperfs() {
        let m = endpoint(&["-m", "m"]).prepared.metadata;
        assert_eq!(m.endpoint_path.as_deref(), Some("/v1/images/generations"));
        assert_eq!(m.metrics_title.as_deref(), Some("Image Generation Metrics"));
        assert!(m.supports_streaming && !m.produces_tokens && m.tokenizes_input);
        assert!(m.produces_images);
    }

    #[test]
    fn payloads() {
        let turn = Turn {
            texts: vec!["a red fox".into(), "ignored".into()],
            max_tokens: Some(3),
            ..Turn::default()
        };
        let e = endpoint(&["-m", "flux"]);
        assert_eq!(
            body(&e, &turn).unwrap(),
            r#"{"prompt":"a red fox","model":"flux","response_format":"b64_json","n":1}"#
        );
        let e = endpoint(&[
            "-m",
            "flux",
            "--streaming",
            "--extra-inputs",
            "partial_images:2,size:256x256",
        ]);
        assert_eq!(
            body(&e, &turn).unwrap(),
            r#"{"prompt":"a red fox","model":"flux","response_format":"b64_json","n":1,"stream":true,"partial_images":2,"size":"256x256"}"#
        );
        assert!(body(&e, &Turn::default()).is_err());
    }

    #[test]
    fn parses_partial_and_final_images() {
        let e = endpoint(&["-m", "m"]);
        let partial = e
            .parse_response(&event(
                5,
                "image_generation.partial_image",
                r#"{"type":"image_generation.partial_image","b64_json":"iVBO","partial_image_index":0}"#,
            ))
            .unwrap()
            .unwrap();
        assert_eq!(partial.data, ResponseData::Images { count: 1 });
        let done = e
            .parse_response(&chunk(
                9,
                r#"{"type":"image_generation.completed","b64_json":"iVBO","usage":{"input_tokens":7,"output_tokens":272,"total_tokens":279}}"#,
            ))
            .unwrap()
            .unwrap();
        assert_eq!(done.data, ResponseData::Images { count: 1 });
        assert_eq!(
            done.usage,
            Some(Usage {
                prompt_tokens: Some(7),
                completion_tokens: Some(272),
                total_tokens: Some(279),
                reasoning_tokens: None,
                ..Usage::default()
            })
        );
        let body = r#"{"created":1,"data":[{"b64_json":"AA=="},{"url":"https://x/1.png","revised_prompt":"a fox"},null,{"b64_json":""}]}"#;
        assert_eq!(
            e.parse_response(&chunk(1, body)).unwrap().unwrap().data,
            ResponseData::Images { count: 2 }
        );
        assert_eq!(e.parse_response(&chunk(1, r#"{"data":[]}"#)), Ok(None));
        let err = e
            .parse_response(&chunk(
                1,
                r#"{"error":{"message":"Your request was rejected by the safety system.","type":"image_generation_user_error","code":"content_policy_violation"}}"#,
            ))
            .unwrap_err();
        assert_eq!(err.kind, "image_generation_user_error");
    }
}
