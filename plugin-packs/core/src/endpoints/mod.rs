//! OpenAI-compatible endpoints: chat completions, completions and embeddings.
//!
//! Each endpoint compiles its request body once (model, stream flag and `--extra-inputs`
//! are fixed for the run) and its headers once (`--header`, `--api-key`), so a request
//! costs a template fill. Responses are read by shape, never by the `object` label; see
//! [`response`].

pub mod chat;
pub mod completions;
pub mod embeddings;
mod payload;
mod response;

pub use chat::ChatEndpoint;
pub use completions::CompletionsEndpoint;
pub use embeddings::EmbeddingsEndpoint;

use aiperf_runtime::dataset::Turn;
use aiperf_runtime::metadata::EndpointMetadata;
use aiperf_runtime::plugin::{PluginContext, PluginError};
use serde_json::Value;

use payload::{parse_extra_inputs, parse_headers, Field, Template};

/// What every endpoint here precomputes from the run's configuration.
#[derive(Debug, Clone)]
struct Prepared {
    metadata: EndpointMetadata,
    headers: Vec<(String, String)>,
    /// The body of turns that carry `max_tokens`.
    with_max_tokens: Template,
    /// The body of turns that do not.
    without_max_tokens: Template,
}

/// The run-wide values an endpoint's body fields are made of.
struct BodyContext<'a> {
    model: &'a str,
    /// `--streaming`, dropped when the endpoint does not support it.
    streaming: bool,
}

impl Prepared {
    /// `fields(body, with_max_tokens)` lists the endpoint's own fields in AIPerf's order.
    fn new(
        ctx: &PluginContext<'_>,
        fields: fn(&BodyContext<'_>, bool) -> Vec<(&'static str, Field)>,
        include_usage: bool,
    ) -> Result<Self, PluginError> {
        let metadata: EndpointMetadata = ctx.entry.metadata()?;
        let config = ctx.config;
        let body = BodyContext {
            model: config.model_name(),
            streaming: config.streaming && metadata.supports_streaming,
        };
        let extra = parse_extra_inputs(&config.extra_inputs)?;
        let with_max_tokens = Template::compile(fields(&body, true), &extra, include_usage);
        let without_max_tokens = Template::compile(fields(&body, false), &extra, include_usage);
        Ok(Prepared {
            metadata,
            headers: endpoint_headers(&config.headers, config.api_key.as_deref())?,
            with_max_tokens,
            without_max_tokens,
        })
    }

    fn format_payload(&self, turn: &Turn, body: &mut Vec<u8>) {
        let template = match turn.max_tokens {
            Some(_) => &self.with_max_tokens,
            None => &self.without_max_tokens,
        };
        template.render(turn, body);
    }

    fn request_headers(&self, headers: &mut Vec<(String, String)>) {
        headers.extend(self.headers.iter().cloned());
    }
}

/// `--header` values, then `Authorization: Bearer <key>`, which replaces any
/// `Authorization` given as a header (as AIPerf's dict update does).
fn endpoint_headers(
    args: &[String],
    api_key: Option<&str>,
) -> Result<Vec<(String, String)>, PluginError> {
    let mut headers = parse_headers(args)?;
    if let Some(key) = api_key {
        if key.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(PluginError::Config(
                "--api-key has a line break or NUL in it".into(),
            ));
        }
        headers.retain(|(name, _)| !name.eq_ignore_ascii_case("authorization"));
        headers.push(("Authorization".to_owned(), format!("Bearer {key}")));
    }
    Ok(headers)
}

fn model_value(body: &BodyContext<'_>) -> Field {
    Field::Value(Value::String(body.model.to_owned()))
}

fn stream_value(body: &BodyContext<'_>) -> Field {
    Field::Value(Value::Bool(body.streaming))
}

#[cfg(test)]
mod test_support {
    use aiperf_runtime::plugin::PluginEntry;
    use aiperf_runtime::record::ResponseChunk;

    use crate::test_config::entry;

    pub(crate) static CHAT: PluginEntry = entry(
        "endpoint",
        "chat",
        r#"{"endpoint_path":"/v1/chat/completions","supports_streaming":true,
            "produces_tokens":true,"tokenizes_input":true,"metrics_title":"LLM Metrics"}"#,
    );
    pub(crate) static COMPLETIONS: PluginEntry = entry(
        "endpoint",
        "completions",
        r#"{"endpoint_path":"/v1/completions","supports_streaming":true,
            "produces_tokens":true,"tokenizes_input":true,"metrics_title":"LLM Metrics"}"#,
    );
    pub(crate) static EMBEDDINGS: PluginEntry = entry(
        "endpoint",
        "embeddings",
        r#"{"endpoint_path":"/v1/embeddings","supports_streaming":false,
            "produces_tokens":false,"tokenizes_input":true,"metrics_title":"Embeddings"}"#,
    );
    pub(crate) static NO_METADATA: PluginEntry = entry("endpoint", "bare", "{}");

    pub(crate) fn chunk(recv_ns: u64, data: &str) -> ResponseChunk {
        ResponseChunk {
            recv_ns,
            first_byte_ns: recv_ns,
            event: None,
            data: data.into(),
        }
    }

    pub(crate) fn event(recv_ns: u64, event: &str, data: &str) -> ResponseChunk {
        ResponseChunk {
            event: Some(event.to_owned()),
            ..chunk(recv_ns, data)
        }
    }
}
