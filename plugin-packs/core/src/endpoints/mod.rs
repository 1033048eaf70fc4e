//! The built-in endpoints: AIPerf's 15 (OpenAI chat, completions, Responses, embeddings
//! and image generation; Anthropic Messages; NIM embeddings and rankings; Cohere and TEI
//! rankings; vLLM chat embeddings; TGI generate; SOLIDO RAG; video generation jobs; user
//! templates).
//!
//! Each endpoint compiles its request body once (stream flag and `--extra-inputs` are
//! fixed for the run; the model is the primary `--model` unless the turn names another)
//! and its headers once (`--header`, `--api-key`), so a request costs a template fill.
//! Responses are read by shape, never by the `object` label; see [`response`].

/// The [`EndpointProtocol`](aiperf_runtime::protocols::EndpointProtocol) methods of an
/// endpoint whose requests a `prepared: Prepared` field builds: its metadata, a turn's
/// body, a session's body with its history first (`$history` says where it goes, for the
/// docs), and its headers. Expanded inside the endpoint's `impl` block.
macro_rules! prepared_requests {
    ($history:literal) => {
        fn metadata(&self) -> &EndpointMetadata {
            &self.prepared.metadata
        }

        fn format_payload(&self, turn: &Turn, body: &mut Vec<u8>) -> Result<(), PluginError> {
            self.prepared.format_payload(turn, body);
            Ok(())
        }

        #[doc = concat!("The session's earlier turns and replies go first in ", $history, ".")]
        fn format_session_payload(
            &self,
            history: &[Turn],
            turn: &Turn,
            body: &mut Vec<u8>,
        ) -> Result<bool, PluginError> {
            self.prepared.format_session_payload(history, turn, body);
            Ok(true)
        }

        fn request_headers(&self, headers: &mut Vec<(String, String)>) {
            self.prepared.request_headers(headers);
        }
    };
}

pub mod chat;
pub mod chat_embeddings;
pub mod completions;
pub mod embeddings;
pub mod huggingface;
pub mod image_generation;
mod json_path;
pub mod messages;
pub mod nim_embeddings;
pub(crate) mod payload;
pub mod rankings;
mod response;
pub mod responses;
pub mod solido;
pub mod template;
pub mod video_generation;

pub use chat::ChatEndpoint;
pub use chat_embeddings::ChatEmbeddingsEndpoint;
pub use completions::CompletionsEndpoint;
pub use embeddings::EmbeddingsEndpoint;
pub use huggingface::HuggingFaceGenerateEndpoint;
pub use image_generation::ImageGenerationEndpoint;
pub use messages::MessagesEndpoint;
pub use nim_embeddings::NimEmbeddingsEndpoint;
pub use rankings::{CohereRankingsEndpoint, HfTeiRankingsEndpoint, NimRankingsEndpoint};
pub use responses::ResponsesEndpoint;
pub use solido::SolidoRagEndpoint;
pub use template::TemplateEndpoint;
pub use video_generation::VideoGenerationEndpoint;

use aiperf_runtime::config::ProfileConfig;
use aiperf_runtime::dataset::Turn;
use aiperf_runtime::metadata::EndpointMetadata;
use aiperf_runtime::plugin::{PluginContext, PluginError};
use serde_json::Value;

// `--header`s, then `Authorization: Bearer <key>` replacing any given one (as AIPerf's
// dict update does).
use aiperf_runtime::headers::request_headers as endpoint_headers;
use payload::{parse_extra_inputs, Field, StreamUsage, Template};

/// What every endpoint here precomputes from the run's configuration.
#[derive(Debug, Clone)]
struct Prepared {
    metadata: EndpointMetadata,
    headers: Vec<(String, String)>,
    /// The body of turns that carry `max_tokens`.
    with_max_tokens: Template,
    /// The body of turns that do not.
    without_max_tokens: Template,
    /// For an API whose system prompt is a body field of its own (the Responses API's
    /// `instructions`, Anthropic's `system`): the bodies of turns that carry the
    /// conversation's system message, with and without `max_tokens`. The field is absent,
    /// not empty, from the others, so `--extra-inputs` of the same name take its place
    /// only where it is present, as in AIPerf's dict.
    with_system: Option<Box<(Template, Template)>>,
}

/// The fields of a body in AIPerf's order, for a turn with or without `max_tokens` and
/// with or without a system message.
type SystemFields = fn(&BodyContext<'_>, bool, bool) -> Vec<(&'static str, Field)>;

/// The run-wide values an endpoint's body fields are made of.
struct BodyContext<'a> {
    /// The primary `--model`, for turns that do not name one.
    model: &'a str,
    /// `--streaming`, dropped when the endpoint does not support it.
    streaming: bool,
    /// `--use-legacy-max-tokens`.
    legacy_max_tokens: bool,
    /// `--extra-inputs`, for endpoints that put them somewhere else than the top level
    /// (see [`Extras::Placed`]).
    extra: &'a [(String, Value)],
}

/// Where `--extra-inputs` go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extras {
    /// Merged into the top-level object, as AIPerf's `payload.update(extra)`.
    TopLevel,
    /// The endpoint's fields place them (TGI puts them in `parameters`).
    Placed,
}

impl Prepared {
    /// `fields(body, with_max_tokens)` lists the endpoint's own fields in AIPerf's order.
    fn new(
        ctx: &PluginContext<'_>,
        fields: fn(&BodyContext<'_>, bool) -> Vec<(&'static str, Field)>,
        include_usage: bool,
    ) -> Result<Self, PluginError> {
        Self::with_extras(ctx, fields, include_usage, Extras::TopLevel)
    }

    fn with_extras(
        ctx: &PluginContext<'_>,
        fields: fn(&BodyContext<'_>, bool) -> Vec<(&'static str, Field)>,
        include_usage: bool,
        extras: Extras,
    ) -> Result<Self, PluginError> {
        let usage = if include_usage {
            StreamUsage::WhenStreamed
        } else {
            StreamUsage::Never
        };
        let fields = |body: &BodyContext<'_>, max_tokens, _| fields(body, max_tokens);
        Self::build(ctx, extras, |_| usage, fields, false)
    }

    /// For an API with a system prompt field of its own (see [`Prepared::with_system`]);
    /// `usage(body, config)` says how its streamed bodies ask for usage.
    fn with_system_field(
        ctx: &PluginContext<'_>,
        fields: SystemFields,
        usage: fn(&BodyContext<'_>, &ProfileConfig) -> StreamUsage,
    ) -> Result<Self, PluginError> {
        let usage = |body: &BodyContext<'_>| usage(body, ctx.config);
        Self::build(ctx, Extras::TopLevel, usage, fields, true)
    }

    /// `fields(body, max_tokens, system)` lists a body's fields; the system variants are
    /// compiled only with `system_field`.
    fn build(
        ctx: &PluginContext<'_>,
        extras: Extras,
        usage: impl Fn(&BodyContext<'_>) -> StreamUsage,
        fields: impl Fn(&BodyContext<'_>, bool, bool) -> Vec<(&'static str, Field)>,
        system_field: bool,
    ) -> Result<Self, PluginError> {
        let metadata: EndpointMetadata = ctx.entry.metadata()?;
        let config = ctx.config;
        let extra = parse_extra_inputs(&config.extra_inputs)?;
        let body = BodyContext {
            model: config.model_name(),
            streaming: config.streaming && metadata.supports_streaming,
            legacy_max_tokens: config.use_legacy_max_tokens,
            extra: &extra,
        };
        let top: &[(String, Value)] = match extras {
            Extras::TopLevel => &extra,
            Extras::Placed => &[],
        };
        let usage = usage(&body);
        let compile = |max_tokens: bool, system: bool| {
            Template::compile(fields(&body, max_tokens, system), top, usage)
        };
        Ok(Prepared {
            metadata,
            headers: endpoint_headers(&config.headers, config.api_key.as_deref())?,
            with_max_tokens: compile(true, false),
            without_max_tokens: compile(false, false),
            with_system: system_field
                .then(|| Box::new((compile(true, true), compile(false, true)))),
        })
    }

    /// The compiled body `turn` is rendered from.
    fn template(&self, turn: &Turn) -> &Template {
        // AIPerf tests the message's truth: an empty system prompt sends no field.
        let system = turn
            .system_message
            .as_deref()
            .is_some_and(|s| !s.is_empty());
        match (&self.with_system, system, turn.max_tokens) {
            (Some(pair), true, Some(_)) => &pair.0,
            (Some(pair), true, None) => &pair.1,
            (_, _, Some(_)) => &self.with_max_tokens,
            (_, _, None) => &self.without_max_tokens,
        }
    }

    fn format_payload(&self, turn: &Turn, body: &mut Vec<u8>) {
        self.template(turn).render(turn, body);
    }

    /// [`format_payload`](Self::format_payload) for a later turn of a session whose
    /// earlier turns and replies (`history`) go first in the chat messages.
    fn format_session_payload(&self, history: &[Turn], turn: &Turn, body: &mut Vec<u8>) {
        self.template(turn).render_session(history, turn, body);
    }

    fn request_headers(&self, headers: &mut Vec<(String, String)>) {
        headers.extend(self.headers.iter().cloned());
    }
}

/// The turn's model, else the primary one.
fn model_value(body: &BodyContext<'_>) -> Field {
    Field::Model(body.model.to_owned())
}

fn stream_value(body: &BodyContext<'_>) -> Field {
    Field::Value(Value::Bool(body.streaming))
}

#[cfg(test)]
mod test_support {
    use aiperf_runtime::http::sse::SseFramer;
    use aiperf_runtime::plugin::PluginEntry;
    use aiperf_runtime::protocols::EndpointProtocol;
    use aiperf_runtime::record::{ResponseChunk, ResponseData, Usage};

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
            "produces_tokens":false,"tokenizes_input":true,"metrics_title":"Embeddings Metrics"}"#,
    );
    pub(crate) static NO_METADATA: PluginEntry = entry("endpoint", "bare", "{}");

    /// An entry with the metadata `plugins.yaml` gives endpoint `name`, so unit tests
    /// exercise the shipped metadata.
    pub(crate) fn shipped(name: &str) -> &'static PluginEntry {
        use std::collections::HashMap;
        use std::sync::OnceLock;
        static ENTRIES: OnceLock<HashMap<String, &'static PluginEntry>> = OnceLock::new();
        let entries = ENTRIES.get_or_init(|| {
            let manifest = include_str!("../../plugins.yaml");
            super::super::test_config::endpoint_entries(manifest)
        });
        entries
            .get(name)
            .copied()
            .unwrap_or_else(|| panic!("plugins.yaml has no endpoint `{name}`"))
    }

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

    /// What a unit of a record reads as: its data and usage, or nothing.
    pub(crate) type Unit = Option<(ResponseData, Option<Usage>)>;

    /// Frames the SSE `stream` from two reads cut at every byte (the first read at time
    /// 1, the rest at 2) and reads each framing's events as one record: every cut must
    /// give `expected`, each unit timed by the read that completed its event.
    pub(crate) fn stream_split_everywhere<E: EndpointProtocol>(
        endpoint: &E,
        stream: &str,
        expected: &[Unit],
    ) {
        let bytes = stream.as_bytes();
        let mut first_read_before = 0;
        for cut in 0..=bytes.len() {
            let mut framer = SseFramer::new();
            let mut chunks = Vec::new();
            framer.feed(&bytes[..cut], 1, &mut chunks);
            let first_read = chunks.len();
            framer.feed(&bytes[cut..], 2, &mut chunks);
            framer.finish(3, &mut chunks);
            let mut out = Vec::new();
            endpoint.parse_responses(&chunks, &mut out);
            let mut units = Vec::new();
            for (i, (chunk, result)) in chunks.iter().zip(out).enumerate() {
                assert_eq!(
                    chunk.recv_ns,
                    if i < first_read { 1 } else { 2 },
                    "cut {cut}"
                );
                let parsed = result.unwrap_or_else(|e| panic!("cut {cut}: {e:?}"));
                if let Some(p) = &parsed {
                    assert_eq!(p.recv_ns, chunk.recv_ns, "cut {cut}");
                }
                units.push(parsed.map(|p| (p.data, p.usage)));
            }
            assert_eq!(units, expected, "cut at byte {cut}");
            // A longer first read completes no fewer events.
            assert!(first_read >= first_read_before, "cut {cut}");
            first_read_before = first_read;
        }
        assert_eq!(first_read_before, expected.len());
    }
}

/// No server input makes any endpoint panic: every parser and the video poll decision
/// get the same odd units.
#[cfg(test)]
mod robustness {
    use super::test_support::{chunk, event, shipped};
    use super::*;
    use crate::test_config::{config, context};
    use aiperf_runtime::plugin::Plugin;
    use aiperf_runtime::protocols::EndpointProtocol;
    use aiperf_runtime::record::{RequestRecord, ResponseChunk};

    fn odd_units() -> Vec<Vec<u8>> {
        let mut units: Vec<Vec<u8>> = [
            "",
            "[DONE]",
            "null",
            "42",
            "\"text\"",
            "[]",
            "[null, 5, \"x\", []]",
            "{}",
            r#"{"choices":"x","data":5,"rankings":{},"results":[null],"token":[1]}"#,
            r#"{"data":[{"object":"embedding"},{"object":7}],"embeddings":[[]]}"#,
            r#"{"generated_text":[1],"token":{"text":null,"special":"yes"}}"#,
            r#"{"b64_json":5,"data":[{"url":null},[],{"b64_json":{"a":1}}],"usage":[]}"#,
            r#"{"status":"completed","id":{"x":1},"url":5}"#,
            r#"{"status":"failed","error":[1,2]}"#,
            r#"{"status":7,"id":"","progress":"half"}"#,
            r#"{"content":{"a":1},"sources":"x"}"#,
            r#"{"usage":{"prompt_tokens":1e400,"input_tokens":-5,"completion_tokens_details":3}}"#,
            r#"{"error":{"code":1e30,"message":{"nested":true},"type":[]}}"#,
            // Responses and Messages shapes with fields of the wrong kind.
            r#"{"type":5,"delta":{"type":[]},"output_index":[],"content_index":{}}"#,
            r#"{"type":"response.output_text.delta","delta":7,"output_index":null}"#,
            r#"{"type":"response.output_text.done","text":[1],"output_index":null}"#,
            r#"{"type":"response.completed","response":[{"usage":1}]}"#,
            r#"{"object":"response","output":[null,{"type":"message","content":"x"}]}"#,
            r#"{"object":"response","output":{"type":"reasoning"},"output_text":3}"#,
            r#"{"type":"content_block_delta","delta":{"type":"text_delta","text":{}}}"#,
            r#"{"type":"message_start","message":"x"}"#,
            r#"{"type":"message_delta","usage":{"output_tokens":-3,"input_tokens":"9"}}"#,
            r#"{"type":"MESSAGE","content":[null,{"type":"tool_use","input":{"a":[1]}}]}"#,
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        units.push(b"\xff\xfe\x00{\"a\":".to_vec());
        units.push("[".repeat(100_000).into_bytes());
        units.push("{\"a\":".repeat(50_000).into_bytes());
        units
    }

    fn exercise<E: EndpointProtocol>(e: &E) {
        for data in odd_units() {
            let unit = ResponseChunk {
                data: data.clone(),
                ..chunk(1, "")
            };
            let _ = e.parse_response(&unit);
            let _ = e.parse_response(&ResponseChunk {
                data: data.clone(),
                ..event(1, "error", "")
            });
            let record = RequestRecord {
                responses: vec![unit.clone(), unit],
                ..RequestRecord::default()
            };
            let _ = e.follow_up(&record, 0);
            let mut out = Vec::new();
            e.parse_responses(&record.responses, &mut out);
            assert_eq!(out.len(), record.responses.len());
        }
        // Every unit of a record together, each after every other.
        let all: Vec<ResponseChunk> = odd_units()
            .into_iter()
            .map(|data| ResponseChunk {
                data,
                ..chunk(1, "")
            })
            .collect();
        let mut out = Vec::new();
        e.parse_responses(&all, &mut out);
        assert_eq!(out.len(), all.len());
    }

    #[test]
    fn no_endpoint_panics_on_odd_responses() {
        let cfg = config(&["-m", "m", "--endpoint-template", "{}", "--streaming"]);
        let ctx = |name: &str| context(&cfg, shipped(name));
        exercise(&ChatEndpoint::create(&ctx("chat")).unwrap());
        exercise(&ChatEmbeddingsEndpoint::create(&ctx("chat_embeddings")).unwrap());
        exercise(&CompletionsEndpoint::create(&ctx("completions")).unwrap());
        exercise(&ResponsesEndpoint::create(&ctx("responses")).unwrap());
        exercise(&MessagesEndpoint::create(&ctx("messages")).unwrap());
        exercise(&EmbeddingsEndpoint::create(&ctx("embeddings")).unwrap());
        exercise(&NimEmbeddingsEndpoint::create(&ctx("nim_embeddings")).unwrap());
        exercise(&NimRankingsEndpoint::create(&ctx("nim_rankings")).unwrap());
        exercise(&CohereRankingsEndpoint::create(&ctx("cohere_rankings")).unwrap());
        exercise(&HfTeiRankingsEndpoint::create(&ctx("hf_tei_rankings")).unwrap());
        exercise(&HuggingFaceGenerateEndpoint::create(&ctx("huggingface_generate")).unwrap());
        exercise(&ImageGenerationEndpoint::create(&ctx("image_generation")).unwrap());
        exercise(&VideoGenerationEndpoint::create(&ctx("video_generation")).unwrap());
        exercise(&SolidoRagEndpoint::create(&ctx("solido_rag")).unwrap());
        exercise(&TemplateEndpoint::create(&ctx("template")).unwrap());
        let path = config(&[
            "-m",
            "m",
            "--endpoint-template",
            "{}",
            "--response-field",
            "a[*].b[-1].\"c\"",
        ]);
        exercise(&TemplateEndpoint::create(&context(&path, shipped("template"))).unwrap());
    }
}

/// Every endpoint whose body names a model names the turn's, else the primary `--model`.
#[cfg(test)]
mod per_turn_model {
    use super::test_support::shipped;
    use super::*;
    use crate::test_config::{config, context};
    use aiperf_runtime::plugin::Plugin;
    use aiperf_runtime::protocols::EndpointProtocol;

    /// The body of `turn` as `model` (or the primary `a` for `None`) from endpoint `name`
    /// created with `--model a,b` and `args`.
    fn body<E: Plugin + EndpointProtocol>(
        name: &str,
        args: &[&str],
        turn: &Turn,
        model: Option<&str>,
    ) -> String {
        let mut all = vec!["-m", "a,b", "--endpoint-template", TEMPLATE];
        all.extend_from_slice(args);
        let cfg = config(&all);
        let endpoint = E::create(&context(&cfg, shipped(name))).unwrap();
        let turn = Turn {
            model: model.map(str::to_owned),
            ..turn.clone()
        };
        let mut out = Vec::new();
        endpoint.format_payload(&turn, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    const TEMPLATE: &str = r#"{"model": {{ model|tojson }}, "prompt": {{ text|tojson }}}"#;

    fn text(text: &str) -> Turn {
        Turn {
            texts: vec![text.to_owned()],
            ..Turn::default()
        }
    }

    fn rankings() -> Turn {
        Turn {
            texts: vec!["q".into(), "p".into()],
            text_names: vec!["query".into(), "passages".into()],
            ..Turn::default()
        }
    }

    /// `expected` with the model `b`, and with `"b"` replaced by `"a"` for a turn
    /// without a model of its own.
    fn check<E: Plugin + EndpointProtocol>(name: &str, args: &[&str], turn: &Turn, expected: &str) {
        assert_eq!(body::<E>(name, args, turn, Some("b")), expected, "{name}");
        let primary = expected.replace(r#""b""#, r#""a""#);
        assert_eq!(body::<E>(name, args, turn, None), primary, "{name}");
    }

    #[test]
    fn chat_bodies() {
        let x = text("x");
        check::<ChatEndpoint>(
            "chat",
            &[],
            &x,
            r#"{"messages":[{"role":"user","content":"x"}],"model":"b","stream":false}"#,
        );
        let limited = Turn {
            max_tokens: Some(8),
            ..text("x")
        };
        check::<ChatEndpoint>(
            "chat",
            &["--streaming"],
            &limited,
            concat!(
                r#"{"messages":[{"role":"user","content":"x"}],"model":"b","stream":true,"#,
                r#""max_completion_tokens":8,"stream_options":{"include_usage":true}}"#
            ),
        );
        check::<ChatEmbeddingsEndpoint>(
            "chat_embeddings",
            &[],
            &x,
            r#"{"messages":[{"role":"user","content":"x"}],"model":"b","stream":false}"#,
        );
    }

    #[test]
    fn responses_and_messages_bodies() {
        let x = text("x");
        check::<ResponsesEndpoint>(
            "responses",
            &[],
            &x,
            concat!(
                r#"{"input":[{"role":"user","content":"x","type":"message"}],"model":"b","#,
                r#""stream":false}"#
            ),
        );
        check::<MessagesEndpoint>(
            "messages",
            &[],
            &x,
            r#"{"model":"b","messages":[{"role":"user","content":"x"}],"max_tokens":1024}"#,
        );
    }

    #[test]
    fn completions_embeddings_and_images() {
        let x = text("x");
        check::<CompletionsEndpoint>(
            "completions",
            &[],
            &x,
            r#"{"prompt":"x","model":"b","stream":false}"#,
        );
        check::<EmbeddingsEndpoint>("embeddings", &[], &x, r#"{"model":"b","input":["x"]}"#);
        check::<NimEmbeddingsEndpoint>("nim_embeddings", &[], &x, r#"{"model":"b","input":["x"]}"#);
        check::<ImageGenerationEndpoint>(
            "image_generation",
            &[],
            &x,
            r#"{"prompt":"x","model":"b","response_format":"b64_json","n":1}"#,
        );
        check::<VideoGenerationEndpoint>(
            "video_generation",
            &[],
            &x,
            r#"{"prompt":"x","model":"b"}"#,
        );
    }

    #[test]
    fn rankings_solido_and_template() {
        let r = rankings();
        check::<NimRankingsEndpoint>(
            "nim_rankings",
            &[],
            &r,
            r#"{"model":"b","query":{"text":"q"},"passages":[{"text":"p"}]}"#,
        );
        check::<CohereRankingsEndpoint>(
            "cohere_rankings",
            &[],
            &r,
            r#"{"model":"b","query":"q","documents":["p"]}"#,
        );
        check::<SolidoRagEndpoint>(
            "solido_rag",
            &[],
            &text("x"),
            r#"{"query":["x"],"filters":{"family":"Solido","tool":"SDE"},"inference_model":"b"}"#,
        );
        check::<TemplateEndpoint>("template", &[], &text("x"), r#"{"model":"b","prompt":"x"}"#);
    }

    /// TEI and TGI bodies name no model: the turn's changes nothing.
    #[test]
    fn bodies_without_a_model_ignore_the_turns() {
        let r = rankings();
        let tei = body::<HfTeiRankingsEndpoint>("hf_tei_rankings", &[], &r, Some("b"));
        assert_eq!(tei, r#"{"query":"q","texts":["p"]}"#);
        assert_eq!(
            body::<HfTeiRankingsEndpoint>("hf_tei_rankings", &[], &r, None),
            tei
        );
        let x = text("x");
        let tgi = body::<HuggingFaceGenerateEndpoint>("huggingface_generate", &[], &x, Some("b"));
        assert!(!tgi.contains("\"b\""), "{tgi}");
        assert_eq!(
            body::<HuggingFaceGenerateEndpoint>("huggingface_generate", &[], &x, None),
            tgi
        );
    }

    /// `--extra-inputs model:...` replaces every turn's model, as AIPerf's dict update
    /// after the endpoint's fields does.
    #[test]
    fn an_extra_input_model_wins() {
        let args = ["--extra-inputs", "model:fixed"];
        let x = text("x");
        for model in [Some("b"), None] {
            assert_eq!(
                body::<CompletionsEndpoint>("completions", &args, &x, model),
                r#"{"prompt":"x","model":"fixed","stream":false}"#
            );
            assert_eq!(
                body::<TemplateEndpoint>("template", &args, &x, model),
                r#"{"model":"fixed","prompt":"x"}"#
            );
        }
    }

    /// A session's later turn is sent as its own model, whatever its history's were.
    #[test]
    fn session_bodies_name_the_turns_model() {
        let cfg = config(&["-m", "a,b"]);
        let chat = ChatEndpoint::create(&context(&cfg, shipped("chat"))).unwrap();
        let first = Turn {
            model: Some("a".into()),
            ..text("x")
        };
        let next = Turn {
            model: Some("b\"".into()),
            ..text("y")
        };
        let mut out = Vec::new();
        assert!(chat
            .format_session_payload(&[first], &next, &mut out)
            .unwrap());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            concat!(
                r#"{"messages":[{"role":"user","content":"x"},{"role":"user","content":"y"}],"#,
                r#""model":"b\"","stream":false}"#
            )
        );
    }
}
