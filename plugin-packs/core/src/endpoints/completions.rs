//! OpenAI Completions (`/v1/completions`).

use aiperf_runtime::dataset::Turn;
use aiperf_runtime::metadata::EndpointMetadata;
use aiperf_runtime::plugin::{Plugin, PluginContext, PluginError};
use aiperf_runtime::protocols::EndpointProtocol;
use aiperf_runtime::record::{ErrorDetails, ParsedResponse, ResponseChunk};

use super::payload::{Field, InputShape};
use super::{model_value, response, stream_value, BodyContext, Prepared};

/// Text completions: `{"prompt","model","stream","max_tokens"?}` plus `--extra-inputs`,
/// with `stream_options.include_usage` when streaming. Several texts are sent as a
/// prompt list.
#[derive(Debug, Clone)]
pub struct CompletionsEndpoint {
    prepared: Prepared,
}

fn fields(body: &BodyContext<'_>, with_max_tokens: bool) -> Vec<(&'static str, Field)> {
    let mut fields = vec![
        ("prompt", Field::Input(InputShape::Prompt)),
        ("model", model_value(body)),
        ("stream", stream_value(body)),
    ];
    if with_max_tokens {
        fields.push(("max_tokens", Field::MaxTokens));
    }
    fields
}

impl Plugin for CompletionsEndpoint {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(CompletionsEndpoint {
            prepared: Prepared::new(ctx, fields, true)?,
        })
    }
}

impl EndpointProtocol for CompletionsEndpoint {
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

    /// The same shape-based reading as chat: servers put completions text in chat-labelled
    /// chunks and the reverse (BC-10).
    fn parse_response(
        &self,
        chunk: &ResponseChunk,
    ) -> Result<Option<ParsedResponse>, ErrorDetails> {
        response::parse_generation(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::test_support::{chunk, COMPLETIONS};
    use crate::test_config::{config, context};
    use aiperf_runtime::record::{ResponseData, Usage};

    fn endpoint(args: &[&str]) -> CompletionsEndpoint {
        let cfg = config(args);
        CompletionsEndpoint::create(&context(&cfg, &COMPLETIONS)).unwrap()
    }

    fn body(endpoint: &CompletionsEndpoint, turn: &Turn) -> String {
        let mut body = Vec::new();
        endpoint.format_payload(turn, &mut body).unwrap();
        String::from_utf8(body).unwrap()
    }

    #[test]
    fn payloads() {
        let e = endpoint(&["-m", "m"]);
        let one = Turn {
            texts: vec!["Once".into()],
            max_tokens: Some(8),
            ..Turn::default()
        };
        assert_eq!(
            body(&e, &one),
            r#"{"prompt":"Once","model":"m","stream":false,"max_tokens":8}"#
        );
        let two = Turn {
            texts: vec!["a".into(), "b".into()],
            ..Turn::default()
        };
        assert_eq!(
            body(&e, &two),
            r#"{"prompt":["a","b"],"model":"m","stream":false}"#
        );
        // No system role: the conversation's system and user context messages are not
        // sent, as AIPerf's completions endpoint leaves them out.
        let with_context = Turn {
            system_message: Some("be brief".into()),
            user_context_message: Some("notes".into()),
            ..one.clone()
        };
        assert_eq!(body(&e, &with_context), body(&e, &one));

        let e = endpoint(&["-m", "m", "--streaming", "--extra-inputs", "echo:false"]);
        assert_eq!(
            body(&e, &one),
            r#"{"prompt":"Once","model":"m","stream":true,"max_tokens":8,"echo":false,"stream_options":{"include_usage":true}}"#
        );
    }

    #[test]
    fn parses_completion_chunks_and_chat_shaped_ones() {
        let e = endpoint(&["-m", "m"]);
        let parse = |data: &str| e.parse_response(&chunk(3, data)).unwrap().unwrap();
        assert_eq!(
            parse(r#"{"object":"text_completion","choices":[{"index":0,"text":" four"}]}"#).data,
            ResponseData::Text(" four".into())
        );
        assert_eq!(
            parse(r#"{"object":"chat.completion.chunk","choices":[{"delta":{"content":"x"}}]}"#)
                .data,
            ResponseData::Text("x".into())
        );
        let usage = parse(r#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":1}}"#);
        assert_eq!(usage.data, ResponseData::Empty);
        assert_eq!(
            usage.usage,
            Some(Usage {
                prompt_tokens: Some(7),
                completion_tokens: Some(1),
                ..Usage::default()
            })
        );
        assert_eq!(e.parse_response(&chunk(3, "[DONE]")), Ok(None));
    }
}
