//! vLLM multimodal embeddings through a chat-shaped request (`/v1/embeddings` with
//! `messages`): the only way vLLM embeds images.

use aiperf_runtime::dataset::Turn;
use aiperf_runtime::metadata::EndpointMetadata;
use aiperf_runtime::plugin::{Plugin, PluginContext, PluginError};
use aiperf_runtime::protocols::EndpointProtocol;
use aiperf_runtime::record::{ErrorDetails, ParsedResponse, ResponseChunk};

use super::{chat, response, Prepared};

/// Posts the chat body (messages with text and image parts) and reads embeddings from
/// any of their usual shapes.
#[derive(Debug, Clone)]
pub struct ChatEmbeddingsEndpoint {
    prepared: Prepared,
}

impl Plugin for ChatEmbeddingsEndpoint {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(ChatEmbeddingsEndpoint {
            prepared: Prepared::new(ctx, chat::fields, true)?,
        })
    }
}

impl EndpointProtocol for ChatEmbeddingsEndpoint {
    prepared_requests!("`messages`, as AIPerf sends a conversation's history");

    fn parse_response(
        &self,
        chunk: &ResponseChunk,
    ) -> Result<Option<ParsedResponse>, ErrorDetails> {
        response::parse_embeddings_any(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::test_support::{chunk, shipped};
    use crate::test_config::{config, context};
    use aiperf_runtime::record::ResponseData;

    fn endpoint(args: &[&str]) -> ChatEmbeddingsEndpoint {
        let cfg = config(args);
        ChatEmbeddingsEndpoint::create(&context(&cfg, shipped("chat_embeddings"))).unwrap()
    }

    #[test]
    fn metadata_is_aiperfs() {
        let e = endpoint(&["-m", "m"]);
        let m = e.metadata();
        assert_eq!(m.endpoint_path.as_deref(), Some("/v1/embeddings"));
        assert_eq!(m.metrics_title.as_deref(), Some("Embeddings Metrics"));
        assert!(!m.supports_streaming && !m.produces_tokens && m.tokenizes_input);
        assert!(m.supports_images && m.consumes_system_message);
    }

    #[test]
    fn payload_is_the_chat_body_without_streaming() {
        let e = endpoint(&["-m", "clip", "--streaming"]);
        let turn = Turn {
            texts: vec!["a cat".into()],
            images: vec!["data:image/png;base64,AA==".into()],
            ..Turn::default()
        };
        let mut body = Vec::new();
        e.format_payload(&turn, &mut body).unwrap();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            concat!(
                r#"{"messages":[{"role":"user","content":[{"type":"text","text":"a cat"},"#,
                r#"{"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}}]}],"#,
                r#""model":"clip","stream":false}"#
            )
        );
    }

    #[test]
    fn parses_every_embedding_shape() {
        let e = endpoint(&["-m", "m"]);
        let data = |s: &str| e.parse_response(&chunk(1, s)).unwrap().map(|p| p.data);
        assert_eq!(
            data(
                r#"{"data":[{"object":"embedding","embedding":[0.1]},{"object":"embedding","embedding":[0.2]}]}"#
            ),
            Some(ResponseData::Embeddings { count: 2 })
        );
        assert_eq!(
            data(r#"{"embeddings":[[1,2],[3,4],[5,6]]}"#),
            Some(ResponseData::Embeddings { count: 3 })
        );
        assert_eq!(
            data(r#"{"embedding":[1,2]}"#),
            Some(ResponseData::Embeddings { count: 1 })
        );
        assert_eq!(data(r#"{"data":[{"object":"list"}]}"#), None);
        let with_usage = r#"{"embedding":[1],"usage":{"prompt_tokens":3,"total_tokens":3}}"#;
        let parsed = e.parse_response(&chunk(1, with_usage)).unwrap().unwrap();
        assert_eq!(parsed.usage, None, "AIPerf 0.13 reads no usage here");
        assert_eq!(data(r#"{"usage":{"prompt_tokens":3}}"#), None);
        assert_eq!(data("[1,2]"), None);
        assert_eq!(data("5"), None);
        let err = e
            .parse_response(&chunk(1, r#"{"object":"error","message":"no","code":400}"#))
            .unwrap_err();
        assert_eq!(err.code, Some(400));
    }
}
