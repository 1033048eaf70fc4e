//! OpenAI Embeddings (`/v1/embeddings`).

use aiperf_runtime::dataset::Turn;
use aiperf_runtime::metadata::EndpointMetadata;
use aiperf_runtime::plugin::{Plugin, PluginContext, PluginError};
use aiperf_runtime::protocols::EndpointProtocol;
use aiperf_runtime::record::{ErrorDetails, ParsedResponse, ResponseChunk};

use super::payload::{Field, InputShape};
use super::{model_value, response, BodyContext, Prepared};

/// Embeddings: `{"model","input":[texts]}` plus `--extra-inputs`. Never streams.
#[derive(Debug, Clone)]
pub struct EmbeddingsEndpoint {
    prepared: Prepared,
}

fn fields(body: &BodyContext<'_>, _with_max_tokens: bool) -> Vec<(&'static str, Field)> {
    // The API has no output length; a turn's `max_tokens` is not sent.
    vec![
        ("model", model_value(body)),
        ("input", Field::Input(InputShape::List)),
    ]
}

impl Plugin for EmbeddingsEndpoint {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(EmbeddingsEndpoint {
            prepared: Prepared::new(ctx, fields, false)?,
        })
    }
}

impl EndpointProtocol for EmbeddingsEndpoint {
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
        response::parse_embeddings(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::test_support::{chunk, EMBEDDINGS};
    use crate::test_config::{config, context};
    use aiperf_runtime::record::ResponseData;

    fn endpoint(args: &[&str]) -> EmbeddingsEndpoint {
        let cfg = config(args);
        EmbeddingsEndpoint::create(&context(&cfg, &EMBEDDINGS)).unwrap()
    }

    #[test]
    fn payload_ignores_streaming_and_max_tokens() {
        let e = endpoint(&[
            "-m",
            "embed",
            "--streaming",
            "--extra-inputs",
            "dimensions:256",
        ]);
        let turn = Turn {
            texts: vec!["a".into(), "b c".into()],
            max_tokens: Some(5),
            ..Turn::default()
        };
        let mut body = Vec::new();
        e.format_payload(&turn, &mut body).unwrap();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"model":"embed","input":["a","b c"],"dimensions":256}"#
        );
    }

    #[test]
    fn parses_embedding_lists() {
        let e = endpoint(&["-m", "m"]);
        let parsed = e
            .parse_response(&chunk(
                11,
                r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]},{"object":"embedding","index":1,"embedding":[0.3,0.4]}],"model":"m","usage":{"prompt_tokens":4,"total_tokens":4}}"#,
            ))
            .unwrap()
            .unwrap();
        assert_eq!(parsed.recv_ns, 11);
        assert_eq!(parsed.data, ResponseData::Embeddings { count: 2 });
        // AIPerf 0.13 reads no usage from an embeddings answer.
        assert_eq!(parsed.usage, None);
        // Nor is a usage block without embeddings a response.
        let usage_only = r#"{"object":"list","data":[],"usage":{"prompt_tokens":4}}"#;
        assert_eq!(e.parse_response(&chunk(1, usage_only)), Ok(None));
    }

    #[test]
    fn rejects_items_that_are_not_embeddings_and_reports_errors() {
        let e = endpoint(&["-m", "m"]);
        let err = e
            .parse_response(&chunk(
                1,
                r#"{"data":[{"object":"embedding","embedding":[1]},{"object":"image"}]}"#,
            ))
            .unwrap_err();
        assert_eq!(err.kind, "InvalidResponse");
        let err = e
            .parse_response(&chunk(
                1,
                r#"{"error":{"message":"too long","type":"BadRequest","code":400}}"#,
            ))
            .unwrap_err();
        assert_eq!(err, ErrorDetails::new(Some(400), "BadRequest", "too long"));
        assert_eq!(e.parse_response(&chunk(1, r#"{"data":[]}"#)), Ok(None));
        assert!(e.parse_response(&chunk(1, "not json")).is_err());
    }
}
