//! SOLIDO RAG (`/rag/api/prompt`): a retrieval-augmented generation pipeline.

use aiperf_runtime::dataset::Turn;
use aiperf_runtime::metadata::EndpointMetadata;
use aiperf_runtime::plugin::{Plugin, PluginContext, PluginError};
use aiperf_runtime::protocols::EndpointProtocol;
use aiperf_runtime::record::{ErrorDetails, ParsedResponse, ResponseChunk};
use serde_json::json;

use super::payload::{Field, InputShape};
use super::{model_value, response, BodyContext, Prepared};

/// `{"query":[texts],"filters":{"family":"Solido","tool":"SDE"},"inference_model"}` plus
/// `--extra-inputs`. The body has no stream flag: the server streams on
/// `Accept: text/event-stream`. Output is each unit's `content` (`sources` are the
/// retrieved documents, not output).
#[derive(Debug, Clone)]
pub struct SolidoRagEndpoint {
    prepared: Prepared,
}

fn fields(body: &BodyContext<'_>, _with_max_tokens: bool) -> Vec<(&'static str, Field)> {
    vec![
        ("query", Field::Input(InputShape::List)),
        (
            "filters",
            Field::Value(json!({"family": "Solido", "tool": "SDE"})),
        ),
        ("inference_model", model_value(body)),
    ]
}

impl Plugin for SolidoRagEndpoint {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(SolidoRagEndpoint {
            prepared: Prepared::new(ctx, fields, false)?,
        })
    }
}

impl EndpointProtocol for SolidoRagEndpoint {
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
        response::parse_solido(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::test_support::{chunk, shipped};
    use crate::test_config::{config, context};
    use aiperf_runtime::record::ResponseData;

    fn endpoint(args: &[&str]) -> SolidoRagEndpoint {
        let cfg = config(args);
        SolidoRagEndpoint::create(&context(&cfg, shipped("solido_rag"))).unwrap()
    }

    #[test]
    fn metadata_and_payload() {
        let e = endpoint(&["-m", "llama", "--streaming", "--extra-inputs", "top_k:3"]);
        let m = e.metadata();
        assert_eq!(m.endpoint_path.as_deref(), Some("/rag/api/prompt"));
        assert_eq!(m.metrics_title.as_deref(), Some("SOLIDO RAG Metrics"));
        assert!(m.supports_streaming && m.produces_tokens && m.tokenizes_input);
        let turn = Turn {
            texts: vec!["how do I sweep?".into()],
            max_tokens: Some(4),
            ..Turn::default()
        };
        let mut body = Vec::new();
        e.format_payload(&turn, &mut body).unwrap();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"query":["how do I sweep?"],"filters":{"family":"Solido","tool":"SDE"},"inference_model":"llama","top_k":3}"#
        );
    }

    #[test]
    fn parses_content() {
        let e = endpoint(&["-m", "m"]);
        let data = |s: &str| e.parse_response(&chunk(1, s)).unwrap().map(|p| p.data);
        assert_eq!(
            data(r#"{"content":" sweep","sources":[{"title":"SDE guide"}]}"#),
            Some(ResponseData::Text(" sweep".into()))
        );
        assert_eq!(data(r#"{"content":""}"#), None);
        assert_eq!(data(r#"{"sources":[]}"#), None);
        assert_eq!(data("[DONE]"), None);
        assert!(e
            .parse_response(&chunk(1, r#"{"error":{"message":"index offline"}}"#))
            .is_err());
    }
}
