//! NVIDIA NIM embeddings (`/v1/embeddings`): OpenAI's body, with images as inputs.

use aiperf_runtime::dataset::Turn;
use aiperf_runtime::metadata::EndpointMetadata;
use aiperf_runtime::plugin::{Plugin, PluginContext, PluginError};
use aiperf_runtime::protocols::EndpointProtocol;
use aiperf_runtime::record::{ErrorDetails, ParsedResponse, ResponseChunk};

use super::payload::{Field, InputShape};
use super::{model_value, response, BodyContext, Prepared};

/// `{"model","input":[...]}` where each input is a text, an image as
/// `<img src='DATA_URL'/>`, or (turns with both) `TEXT <img src='DATA_URL'/>`.
#[derive(Debug, Clone)]
pub struct NimEmbeddingsEndpoint {
    prepared: Prepared,
}

fn fields(body: &BodyContext<'_>, _with_max_tokens: bool) -> Vec<(&'static str, Field)> {
    vec![
        ("model", model_value(body)),
        ("input", Field::Input(InputShape::NimInputs)),
    ]
}

impl Plugin for NimEmbeddingsEndpoint {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(NimEmbeddingsEndpoint {
            prepared: Prepared::new(ctx, fields, false)?,
        })
    }
}

impl EndpointProtocol for NimEmbeddingsEndpoint {
    fn metadata(&self) -> &EndpointMetadata {
        &self.prepared.metadata
    }

    fn format_payload(&self, turn: &Turn, body: &mut Vec<u8>) -> Result<(), PluginError> {
        let (texts, images) = (turn.texts.len(), turn.images.len());
        if texts > 0 && images > 0 && texts != images {
            return Err(PluginError::Config(format!(
                "nim_embeddings pairs texts with images: a turn has {texts} texts and \
                 {images} images"
            )));
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
        response::parse_embeddings(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::test_support::{chunk, shipped};
    use crate::test_config::{config, context};
    use aiperf_runtime::record::ResponseData;

    fn endpoint() -> NimEmbeddingsEndpoint {
        let cfg = config(&["-m", "nv-embed", "--extra-inputs", "input_type:query"]);
        NimEmbeddingsEndpoint::create(&context(&cfg, shipped("nim_embeddings"))).unwrap()
    }

    fn body(e: &NimEmbeddingsEndpoint, turn: &Turn) -> Result<String, PluginError> {
        let mut body = Vec::new();
        e.format_payload(turn, &mut body)?;
        Ok(String::from_utf8(body).unwrap())
    }

    #[test]
    fn metadata_is_aiperfs() {
        let m = endpoint().prepared.metadata;
        assert_eq!(m.endpoint_path.as_deref(), Some("/v1/embeddings"));
        assert_eq!(m.metrics_title.as_deref(), Some("NIM Embeddings Metrics"));
        assert!(m.supports_images && !m.produces_tokens && !m.supports_streaming);
    }

    #[test]
    fn texts_images_and_pairs() {
        let e = endpoint();
        let texts = Turn {
            texts: vec!["a".into(), "b".into()],
            max_tokens: Some(9),
            ..Turn::default()
        };
        assert_eq!(
            body(&e, &texts).unwrap(),
            r#"{"model":"nv-embed","input":["a","b"],"input_type":"query"}"#
        );
        let images = Turn {
            images: vec!["data:image/png;base64,AA==".into()],
            ..Turn::default()
        };
        assert_eq!(
            body(&e, &images).unwrap(),
            r#"{"model":"nv-embed","input":["<img src='data:image/png;base64,AA=='/>"],"input_type":"query"}"#
        );
        let pairs = Turn {
            texts: vec!["cat".into()],
            images: vec!["U".into()],
            ..Turn::default()
        };
        assert_eq!(
            body(&e, &pairs).unwrap(),
            r#"{"model":"nv-embed","input":["cat <img src='U'/>"],"input_type":"query"}"#
        );
        let mismatched = Turn {
            texts: vec!["a".into(), "b".into()],
            images: vec!["U".into()],
            ..Turn::default()
        };
        assert!(matches!(body(&e, &mismatched), Err(PluginError::Config(_))));
    }

    #[test]
    fn parses_openai_shaped_embeddings() {
        let e = endpoint();
        let parsed = e
            .parse_response(&chunk(
                4,
                r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5]}],"usage":{"prompt_tokens":3,"total_tokens":3}}"#,
            ))
            .unwrap()
            .unwrap();
        assert_eq!(parsed.data, ResponseData::Embeddings { count: 1 });
        assert_eq!(parsed.usage, None, "AIPerf 0.13 reads no usage here");
    }
}
