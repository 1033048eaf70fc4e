//! Anthropic Messages API (`/v1/messages`).

use aiperf_runtime::config::ProfileConfig;
use aiperf_runtime::dataset::Turn;
use aiperf_runtime::headers::{check_api_key, parse_headers};
use aiperf_runtime::metadata::EndpointMetadata;
use aiperf_runtime::plugin::{Plugin, PluginContext, PluginError};
use aiperf_runtime::protocols::EndpointProtocol;
use aiperf_runtime::record::{ErrorDetails, ParsedResponse, ResponseChunk, ResponseData};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::payload::{Field, InputShape, StreamUsage};
use super::{model_value, response, BodyContext, Prepared};

/// The API version AIPerf 0.13 asks for unless a `--header` names one.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// What AIPerf sends when a turn asks for no output length: the API requires one.
const DEFAULT_MAX_TOKENS: u32 = 1024;

/// The Messages API as AIPerf 0.13's `MessagesEndpoint` speaks it:
/// `{"model","messages":[...],"max_tokens","stream"?,"system"?}` plus `--extra-inputs`.
/// `max_tokens` is the turn's or 1024; `stream` is sent only when streaming (`true`); the
/// conversation's system message is `system`, its user context message the first
/// message; images are `image` blocks. The key goes in `x-api-key`, with
/// `anthropic-version: 2023-06-01` unless a `--header` sets it.
///
/// Streams are read by event type: `content_block_delta` carries `text_delta` (text),
/// `thinking_delta` (reasoning) or `input_json_delta` (tool input the model generated);
/// `message_start` has the input usage and `message_delta` the output usage, which are
/// merged. A whole body (`"type":"message"`) is read from its content blocks.
#[derive(Debug, Clone)]
pub struct MessagesEndpoint {
    prepared: Prepared,
}

fn fields(
    body: &BodyContext<'_>,
    with_max_tokens: bool,
    with_system: bool,
) -> Vec<(&'static str, Field)> {
    let max_tokens = if with_max_tokens {
        Field::MaxTokens
    } else {
        Field::Value(Value::from(DEFAULT_MAX_TOKENS))
    };
    let mut fields = vec![
        ("model", model_value(body)),
        ("messages", Field::Input(InputShape::AnthropicMessages)),
        ("max_tokens", max_tokens),
    ];
    // Claude clients leave `stream` out of a request that does not stream; so does AIPerf.
    if body.streaming {
        fields.push(("stream", Field::Value(Value::Bool(true))));
    }
    if with_system {
        fields.push(("system", Field::SystemMessage));
    }
    fields
}

fn stream_usage(_: &BodyContext<'_>, _: &ProfileConfig) -> StreamUsage {
    StreamUsage::Never
}

/// `--header`s, then `x-api-key` (replacing a given one, as AIPerf's dict assignment
/// does) and `anthropic-version` unless a header of that name was given. Unlike AIPerf,
/// whose dict keys are case-sensitive, a given `Anthropic-Version` in any case is kept
/// alone rather than sent beside the default (where aiohttp would let the default win).
pub fn anthropic_headers(
    args: &[String],
    api_key: Option<&str>,
) -> Result<Vec<(String, String)>, PluginError> {
    let mut headers = parse_headers(args)?;
    if let Some(key) = api_key {
        check_api_key(key)?;
        headers.retain(|(name, _)| !name.eq_ignore_ascii_case("x-api-key"));
        headers.push(("x-api-key".to_owned(), key.to_owned()));
    }
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("anthropic-version"))
    {
        headers.push(("anthropic-version".to_owned(), ANTHROPIC_VERSION.to_owned()));
    }
    Ok(headers)
}

impl Plugin for MessagesEndpoint {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        let mut prepared = Prepared::with_system_field(ctx, fields, stream_usage)?;
        prepared.headers = anthropic_headers(&ctx.config.headers, ctx.config.api_key.as_deref())?;
        Ok(MessagesEndpoint { prepared })
    }
}

impl EndpointProtocol for MessagesEndpoint {
    prepared_requests!("`messages`, as AIPerf sends a conversation");

    fn parse_response(
        &self,
        chunk: &ResponseChunk,
    ) -> Result<Option<ParsedResponse>, ErrorDetails> {
        Ok(match response::decode_value(chunk)? {
            Some(Value::Object(object)) => parse_unit(chunk, &object),
            _ => None,
        })
    }

    /// As AIPerf's `extract_response_data`: a stream's input counts come in
    /// `message_start` and its output count in `message_delta`, which may leave the
    /// input out. So every key of an earlier usage block the last one lacks is folded
    /// into it (the earliest first), and the last usage-bearing response carries them
    /// all: the record reads the last usage.
    fn parse_responses(
        &self,
        chunks: &[ResponseChunk],
        out: &mut Vec<Result<Option<ParsedResponse>, ErrorDetails>>,
    ) {
        let mut blocks: Vec<(usize, Map<String, Value>)> = Vec::new();
        for chunk in chunks {
            match response::decode_value(chunk) {
                Err(e) => out.push(Err(e)),
                Ok(Some(Value::Object(object))) => {
                    if let Some(usage) = usage_block(&object) {
                        blocks.push((out.len(), usage.clone()));
                    }
                    out.push(Ok(parse_unit(chunk, &object)));
                }
                Ok(_) => out.push(Ok(None)),
            }
        }
        if blocks.len() < 2 {
            return;
        }
        let Some(((last_index, last), earlier)) = blocks.split_last_mut() else {
            return;
        };
        for (_, block) in earlier.iter() {
            for (key, value) in block {
                last.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
        let usage = response::usage_counts(last);
        let (Some(slot), Some(chunk)) = (out.get_mut(*last_index), chunks.get(*last_index)) else {
            return;
        };
        match slot {
            Ok(Some(parsed)) => parsed.usage = usage,
            Ok(None) if usage.is_some() => {
                *slot = Ok(Some(ParsedResponse {
                    recv_ns: chunk.recv_ns,
                    data: ResponseData::Empty,
                    usage,
                }));
            }
            _ => {}
        }
    }
}

/// AIPerf compares event and block types as its case-insensitive enums do: any case,
/// `-` for `_`.
fn is(kind: &str, name: &str) -> bool {
    kind.len() == name.len()
        && kind
            .bytes()
            .zip(name.bytes())
            .all(|(k, n)| k.to_ascii_lowercase() == n || (k == b'-' && n == b'_'))
}

fn type_of(object: &Map<String, Value>) -> Option<&str> {
    object.get("type").and_then(Value::as_str)
}

/// The non-empty usage block of a unit that carries one: a whole message's, the
/// `message` of `message_start`, or `message_delta`'s.
fn usage_block(object: &Map<String, Value>) -> Option<&Map<String, Value>> {
    let kind = type_of(object)?;
    let holder = if is(kind, "message_start") {
        object.get("message")?.as_object()?
    } else if is(kind, "message") || is(kind, "message_delta") {
        object
    } else {
        return None;
    };
    holder
        .get("usage")
        .and_then(Value::as_object)
        .filter(|u| !u.is_empty())
}

/// One stream event or whole message, by its `type`.
fn parse_unit(chunk: &ResponseChunk, object: &Map<String, Value>) -> Option<ParsedResponse> {
    let kind = type_of(object)?;
    let usage = || usage_block(object).and_then(response::usage_counts);
    let data = if is(kind, "message") {
        let data = message_content(object, &chunk.data);
        let usage = usage();
        if data.is_none() && usage.is_none() {
            return None;
        }
        return Some(ParsedResponse {
            recv_ns: chunk.recv_ns,
            data: data.unwrap_or(ResponseData::Empty),
            usage,
        });
    } else if is(kind, "message_start") || is(kind, "message_delta") {
        return Some(ParsedResponse {
            recv_ns: chunk.recv_ns,
            data: ResponseData::Empty,
            usage: Some(usage()?),
        });
    } else if is(kind, "content_block_delta") {
        block_delta(object.get("delta")?.as_object()?)?
    } else {
        // ping, content_block_start/stop, message_stop; an `error` event is an error
        // before it gets here.
        return None;
    };
    Some(ParsedResponse {
        recv_ns: chunk.recv_ns,
        data,
        usage: None,
    })
}

/// A `content_block_delta`'s output; a signature is not output.
fn block_delta(delta: &Map<String, Value>) -> Option<ResponseData> {
    let kind = type_of(delta)?;
    let text = |key: &str| {
        delta
            .get(key)
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
    };
    if is(kind, "text_delta") {
        Some(ResponseData::Text(text("text")?))
    } else if is(kind, "thinking_delta") {
        Some(ResponseData::Reasoning {
            content: String::new(),
            reasoning: text("thinking")?,
        })
    } else if is(kind, "input_json_delta") {
        // Tool input is generated tokens, which the server's output count includes.
        Some(ResponseData::Text(text("partial_json")?))
    } else {
        None
    }
}

/// A whole message's `content` blocks, as AIPerf reads them: thinking wins (with the
/// text as its content), then text and tool calls together (a tool call's name and its
/// input as compact JSON), then text alone. `data` is the message as received.
fn message_content(object: &Map<String, Value>, data: &[u8]) -> Option<ResponseData> {
    let Some(Value::Array(blocks)) = object.get("content") else {
        return None;
    };
    let (mut text, mut thinking, mut calls) = (String::new(), String::new(), String::new());
    let mut raw_inputs: Option<Vec<Option<String>>> = None;
    for (index, block) in blocks.iter().enumerate() {
        let Some(block) = block.as_object() else {
            continue;
        };
        let Some(kind) = type_of(block) else {
            continue;
        };
        let field = |key: &str| block.get(key).and_then(Value::as_str);
        if is(kind, "text") {
            text.push_str(field("text").unwrap_or_default());
        } else if is(kind, "thinking") {
            thinking.push_str(field("thinking").unwrap_or_default());
        } else if is(kind, "tool_use") {
            calls.push_str(field("name").unwrap_or_default());
            if let Some(input) = block.get("input").filter(|i| super::payload::truthy(i)) {
                let raw = raw_inputs.get_or_insert_with(|| raw_tool_inputs(data));
                match raw.get(index).and_then(Option::as_deref) {
                    Some(written) => calls.push_str(written),
                    None => calls.push_str(&input.to_string()),
                }
            }
        }
    }
    if !thinking.is_empty() {
        return Some(ResponseData::Reasoning {
            content: text,
            reasoning: thinking,
        });
    }
    if !calls.is_empty() {
        text.push_str(&calls);
    }
    (!text.is_empty()).then_some(ResponseData::Text(text))
}

/// Each content block's `input` as the server wrote it, minified, by block index. AIPerf
/// re-serializes the input it parsed, compactly and in the server's key order, which a
/// parsed tree here (its keys sorted) would not keep; the written text does.
fn raw_tool_inputs(data: &[u8]) -> Vec<Option<String>> {
    #[derive(serde::Deserialize)]
    struct Body<'a> {
        #[serde(borrow, default)]
        content: Vec<&'a RawValue>,
    }
    #[derive(serde::Deserialize)]
    struct Block<'a> {
        #[serde(borrow, default)]
        input: Option<&'a RawValue>,
    }
    let Ok(body) = serde_json::from_slice::<Body<'_>>(data) else {
        return Vec::new();
    };
    body.content
        .iter()
        .map(|block| {
            let block: Block<'_> = serde_json::from_str(block.get()).ok()?;
            Some(super::template::minify(block.input?.get()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::test_support::{chunk, event, shipped, stream_split_everywhere};
    use crate::test_config::{config, context};
    use aiperf_runtime::record::Usage;
    use serde_json::json;

    fn endpoint(args: &[&str]) -> MessagesEndpoint {
        let cfg = config(args);
        MessagesEndpoint::create(&context(&cfg, shipped("messages"))).unwrap()
    }

    fn body(endpoint: &MessagesEndpoint, turn: &Turn) -> String {
        let mut body = Vec::new();
        endpoint.format_payload(turn, &mut body).unwrap();
        String::from_utf8(body).unwrap()
    }

    fn turn(text: &str, max_tokens: Option<u32>) -> Turn {
        Turn {
            texts: vec![text.to_owned()],
            max_tokens,
            ..Turn::default()
        }
    }

    fn with_context(mut turn: Turn, system: Option<&str>, context: Option<&str>) -> Turn {
        turn.system_message = system.map(Into::into);
        turn.user_context_message = context.map(Into::into);
        turn
    }

    fn pairs(headers: &[(String, String)]) -> Vec<(&str, &str)> {
        headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }

    // ---------------------------------------------------------------- payloads

    #[test]
    fn bodies_as_aiperf_builds_them() {
        let e = endpoint(&["-m", "m"]);
        // No turn limit: the API's required max_tokens is 1024; no `stream` unless streaming.
        assert_eq!(
            body(&e, &turn("Hi \"there\"", None)),
            concat!(
                r#"{"model":"m","messages":[{"role":"user","content":"Hi \"there\""}],"#,
                r#""max_tokens":1024}"#,
            )
        );
        let s = endpoint(&["-m", "m", "--streaming"]);
        let full = with_context(turn("x", Some(16)), Some("be brief"), Some("my notes"));
        assert_eq!(
            body(&s, &full),
            concat!(
                r#"{"model":"m","messages":[{"role":"user","content":"my notes"},"#,
                r#"{"role":"user","content":"x"}],"max_tokens":16,"stream":true,"#,
                r#""system":"be brief"}"#
            )
        );
        let empty = with_context(turn("x", Some(0)), Some(""), Some(""));
        assert_eq!(
            body(&e, &empty),
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":0}"#
        );
        // Streaming never asks for usage: the events carry it.
        let counted = endpoint(&["-m", "m", "--streaming", "--use-server-token-count"]);
        assert_eq!(
            body(&counted, &turn("x", None)),
            concat!(
                r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":1024,"#,
                r#""stream":true}"#,
            )
        );
    }

    #[test]
    fn extra_inputs_update_the_body() {
        let e = endpoint(&[
            "-m",
            "m",
            "--streaming",
            "--extra-inputs",
            "system:fixed",
            "--extra-inputs",
            r#"{"thinking": {"type": "enabled", "budget_tokens": 512}, "stream": false}"#,
            "--extra-inputs",
            "max_tokens:2048",
        ]);
        assert_eq!(
            body(&e, &with_context(turn("x", Some(4)), Some("sys"), None)),
            concat!(
                r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":2048,"#,
                concat!(
                    r#""stream":false,"system":"fixed","thinking":{"budget_tokens":512,"#,
                    r#""type":"enabled"}}"#,
                )
            )
        );
        assert_eq!(
            body(&e, &turn("x", None)),
            concat!(
                r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":2048,"#,
                concat!(
                    r#""stream":false,"system":"fixed","thinking":{"budget_tokens":512,"#,
                    r#""type":"enabled"}}"#,
                )
            )
        );
    }

    #[test]
    fn images_are_blocks_and_audio_is_left_out() {
        let e = endpoint(&["-m", "m"]);
        let t = Turn {
            texts: vec!["look".into()],
            images: vec![
                "data:image/jpeg;base64,/9j/".into(),
                "data:;base64,AAAA".into(),
                "https://x/y.png".into(),
            ],
            audios: vec!["wav,UklG".into()],
            ..Turn::default()
        };
        assert_eq!(
            body(&e, &t),
            concat!(
                r#"{"model":"m","messages":[{"role":"user","content":["#,
                r#"{"type":"text","text":"look"},"#,
                concat!(
                    r#"{"type":"image","source":{"type":"base64","media_type":"image/jpeg","#,
                    r#""data":"/9j/"}},"#,
                ),
                concat!(
                    r#"{"type":"image","source":{"type":"base64","media_type":"image/png","#,
                    r#""data":"AAAA"}},"#,
                ),
                r#"{"type":"image","source":{"type":"url","url":"https://x/y.png"}}"#,
                r#"]}],"max_tokens":1024}"#
            )
        );
        let audio_only = Turn {
            texts: vec!["hear".into()],
            audios: vec!["wav,UklG".into()],
            ..Turn::default()
        };
        assert_eq!(
            body(&e, &audio_only),
            r#"{"model":"m","messages":[{"role":"user","content":"hear"}],"max_tokens":1024}"#
        );
    }

    #[test]
    fn a_session_sends_its_history() {
        let e = endpoint(&["-m", "a,b"]);
        let reply = Turn {
            texts: vec!["sure".into()],
            role: Some("assistant".into()),
            ..Turn::default()
        };
        let next = Turn {
            model: Some("b".into()),
            ..with_context(turn("second", None), Some("sys"), None)
        };
        let mut out = Vec::new();
        assert!(e
            .format_session_payload(&[turn("first", Some(3)), reply], &next, &mut out)
            .unwrap());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            concat!(
                r#"{"model":"b","messages":[{"role":"user","content":"first"},"#,
                r#"{"role":"assistant","content":"sure"},{"role":"user","content":"second"}],"#,
                r#""max_tokens":1024,"system":"sys"}"#
            )
        );
        let own = Turn {
            raw_messages: Some(vec![
                json!({"role": "user", "content": [{"type": "text", "text": "q"}]}),
            ]),
            ..Turn::default()
        };
        let mut out = Vec::new();
        e.format_session_payload(&[turn("ignored", None)], &own, &mut out)
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            concat!(
                r#"{"model":"a","messages":[{"content":[{"text":"q","type":"text"}],"#,
                r#""role":"user"}],"max_tokens":1024}"#,
            )
        );
    }

    #[test]
    fn the_key_goes_in_x_api_key_with_a_version() {
        let e = endpoint(&[
            "-m",
            "m",
            "-H",
            "X-Foo:bar",
            "-H",
            "X-Api-Key:old",
            "--api-key",
            "sk-ant",
        ]);
        let mut headers = Vec::new();
        e.request_headers(&mut headers);
        assert_eq!(
            pairs(&headers),
            [
                ("X-Foo", "bar"),
                ("x-api-key", "sk-ant"),
                ("anthropic-version", "2023-06-01")
            ]
        );
        // A given version is kept, whatever its case; no key, no key header.
        let given = anthropic_headers(&["Anthropic-Version: 2024-01-01".into()], None).unwrap();
        assert_eq!(pairs(&given), [("Anthropic-Version", "2024-01-01")]);
        // A key that would break the request head is refused without being echoed.
        let Err(PluginError::Config(message)) = anthropic_headers(&[], Some("sk\r\nX: 1")) else {
            panic!("a key with a line break was taken");
        };
        assert!(!message.contains("sk"), "{message}");
    }

    // ----------------------------------------------------------------- parsing

    fn data(e: &MessagesEndpoint, unit: &str) -> Option<ResponseData> {
        e.parse_response(&chunk(7, unit)).unwrap().map(|p| p.data)
    }

    fn text(s: &str) -> Option<ResponseData> {
        Some(ResponseData::Text(s.to_owned()))
    }

    #[test]
    fn each_stream_event_kind() {
        let e = endpoint(&["-m", "m"]);
        let delta =
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Hi"}}"#;
        assert_eq!(data(&e, delta), text("Hi"));
        let thinking = concat!(
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","#,
            r#""thinking":"hmm"}}"#,
        );
        assert_eq!(
            data(&e, thinking),
            Some(ResponseData::Reasoning {
                content: String::new(),
                reasoning: "hmm".into()
            })
        );
        let json_delta = concat!(
            r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","#,
            r#""partial_json":"{\"a\":"}}"#,
        );
        assert_eq!(data(&e, json_delta), text("{\"a\":"));
        // Types compare as AIPerf's case-insensitive enums do.
        let shouted = r#"{"type":"CONTENT-BLOCK-DELTA","delta":{"type":"Text_Delta","text":"x"}}"#;
        assert_eq!(data(&e, shouted), text("x"));
        for unit in [
            r#"{"type":"ping"}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            concat!(
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","#,
                r#""signature":"EqQ"}}"#,
            ),
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":""}}"#,
            r#"{"type":"content_block_stop","index":0}"#,
            r#"{"type":"message_stop"}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{}}"#,
            r#"{"type":"unheard_of"}"#,
            r#"{"delta":{"type":"text_delta","text":"no type"}}"#,
        ] {
            assert_eq!(e.parse_response(&chunk(1, unit)), Ok(None), "{unit}");
        }
    }

    #[test]
    fn usage_comes_from_message_start_and_message_delta() {
        let e = endpoint(&["-m", "m"]);
        let start = concat!(
            r#"{"type":"message_start","message":{"id":"msg_1","type":"message","#,
            r#""role":"assistant","content":[],"stop_reason":null,"usage":{"input_tokens":25,"#,
            r#""cache_creation_input_tokens":3,"cache_read_input_tokens":4,"output_tokens":1}}}"#,
        );
        let parsed = e.parse_response(&chunk(1, start)).unwrap().unwrap();
        assert_eq!(parsed.data, ResponseData::Empty);
        // Anthropic's input count leaves the cache out; AIPerf adds it back.
        assert_eq!(
            parsed.usage,
            Some(Usage {
                prompt_tokens: Some(32),
                completion_tokens: Some(1),
                total_tokens: None,
                reasoning_tokens: None,
                prompt_cache_read_tokens: Some(4),
                prompt_cache_write_tokens: Some(3),
                ..Usage::default()
            })
        );
        let delta = concat!(
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"#,
            r#""usage":{"output_tokens":15}}"#,
        );
        let chunks = [
            chunk(1, start),
            chunk(
                2,
                concat!(
                    r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","#,
                    r#""text":"Hi"}}"#,
                ),
            ),
            chunk(3, delta),
            chunk(4, r#"{"type":"message_stop"}"#),
        ];
        let mut out = Vec::new();
        e.parse_responses(&chunks, &mut out);
        assert_eq!(out.len(), 4);
        // The record reads the last usage: the final count with the start's input and
        // cache counts.
        let last = out[2].clone().unwrap().unwrap();
        assert_eq!(
            last.usage,
            Some(Usage {
                prompt_tokens: Some(32),
                completion_tokens: Some(15),
                total_tokens: None,
                reasoning_tokens: None,
                prompt_cache_read_tokens: Some(4),
                prompt_cache_write_tokens: Some(3),
                ..Usage::default()
            })
        );
        assert_eq!(out[3], Ok(None));
        // A server that repeats the input in its last event keeps its own numbers.
        let cumulative =
            r#"{"type":"message_delta","usage":{"input_tokens":30,"output_tokens":15}}"#;
        let mut out = Vec::new();
        e.parse_responses(&[chunk(1, start), chunk(2, cumulative)], &mut out);
        let usage = out[1].clone().unwrap().unwrap().usage.unwrap();
        // Its input 30 is the server's, plus the cache keys only the earlier event had.
        assert_eq!(usage.prompt_tokens, Some(37));
        assert_eq!(usage.completion_tokens, Some(15));
        assert_eq!(usage.prompt_cache_read_tokens, Some(4));
    }

    #[test]
    fn a_whole_message_is_read_from_its_blocks() {
        let e = endpoint(&["-m", "m"]);
        let body = concat!(
            r#"{"id":"msg_1","type":"message","role":"assistant","model":"m","#,
            r#""content":[{"type":"thinking","thinking":"think","signature":"s"},{"type":"text","#,
            r#""text":"Hello"},{"type":"tool_use","id":"t1","name":"get","input":{"b":1,"#,
            r#""a":[2]}}],"stop_reason":"end_turn","usage":{"input_tokens":9,"output_tokens":6}}"#,
        );
        let parsed = e.parse_response(&chunk(4, body)).unwrap().unwrap();
        assert_eq!(
            parsed.data,
            ResponseData::Reasoning {
                content: "Hello".into(),
                reasoning: "think".into()
            }
        );
        assert_eq!(
            parsed.usage,
            Some(Usage {
                prompt_tokens: Some(9),
                completion_tokens: Some(6),
                total_tokens: None,
                reasoning_tokens: None,
                ..Usage::default()
            })
        );
        let tool = concat!(
            r#"{"type":"message","content":[{"type":"text","text":"Let me look. "},"#,
            r#"{"type":"tool_use","name":"get","input":{"city":"Paris"}},{"type":"tool_use","#,
            r#""name":"noop","input":{}}]}"#,
        );
        assert_eq!(
            data(&e, tool),
            text("Let me look. get{\"city\":\"Paris\"}noop")
        );
        // The input keeps the server's key order, compact, as AIPerf's orjson writes it.
        let ordered = concat!(
            r#"{"type":"message","content":[{"type":"tool_use","name":"f","input":{"z": 1,"#,
            r#" "a": {"y": [1, 2], "b": "x y"}}}]}"#,
        );
        assert_eq!(
            data(&e, ordered),
            text(r#"f{"z":1,"a":{"y":[1,2],"b":"x y"}}"#)
        );
        let plain = concat!(
            r#"{"type":"message","content":[{"type":"text","text":"a"},{"type":"text","#,
            r#""text":"b"}]}"#,
        );
        assert_eq!(data(&e, plain), text("ab"));
        assert_eq!(data(&e, r#"{"type":"message","content":[]}"#), None);
        let only_usage = r#"{"type":"message","content":[],"usage":{"input_tokens":2}}"#;
        let parsed = e.parse_response(&chunk(1, only_usage)).unwrap().unwrap();
        assert_eq!(parsed.data, ResponseData::Empty);
        assert_eq!(parsed.usage.unwrap().prompt_tokens, Some(2));
    }

    #[test]
    fn errors_inside_a_200_are_errors() {
        let e = endpoint(&["-m", "m"]);
        let overloaded =
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        let err = e
            .parse_response(&event(9, "error", overloaded))
            .unwrap_err();
        assert_eq!(
            err,
            ErrorDetails::new(None, "overloaded_error", "Overloaded")
        );
        assert_eq!(e.parse_response(&chunk(9, overloaded)).unwrap_err(), err);
    }

    /// A whole stream as Anthropic and the mock send it, framed from its bytes cut in two
    /// at every byte.
    #[test]
    fn a_stream_split_at_every_byte_reads_the_same() {
        let e = endpoint(&["-m", "m", "--streaming"]);
        let stream = concat!(
            "event: message_start\n",
            concat!(
                r#"data: {"type":"message_start","message":{"id":"msg_1","type":"message","#,
                r#""role":"assistant","content":[],"model":"m","stop_reason":null,"#,
                r#""stop_sequence":null,"usage":{"input_tokens":7,"#,
                r#""cache_creation_input_tokens":0,"cache_read_input_tokens":0,"#,
                r#""output_tokens":1}}}"#,
            ),
            "\n\nevent: content_block_start\n",
            concat!(
                r#"data: {"type":"content_block_start","index":0,"#,
                r#""content_block":{"type":"thinking","thinking":""}}"#,
            ),
            "\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\nevent: content_block_delta\n",
            concat!(
                r#"data: {"type":"content_block_delta","index":0,"#,
                r#""delta":{"type":"thinking_delta","thinking":" the"}}"#,
            ),
            "\r\n\r\nevent: content_block_delta\n",
            concat!(
                r#"data: {"type":"content_block_delta","index":0,"#,
                r#""delta":{"type":"signature_delta","signature":"c2ln"}}"#,
            ),
            "\n\nevent: content_block_stop\n",
            r#"data: {"type":"content_block_stop","index":0}"#,
            "\n\nevent: content_block_delta\n",
            concat!(
                r#"data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","#,
                r#""text":" of é"}}"#,
            ),
            "\n\nevent: message_delta\n",
            concat!(
                r#"data: {"type":"message_delta","delta":{"stop_reason":"end_turn","#,
                r#""stop_sequence":null},"usage":{"output_tokens":2}}"#,
            ),
            "\n\nevent: message_stop\n",
            r#"data: {"type":"message_stop"}"#,
            "\n\n",
        );
        let start_usage = Usage {
            prompt_tokens: Some(7),
            completion_tokens: Some(1),
            total_tokens: None,
            reasoning_tokens: None,
            prompt_cache_read_tokens: Some(0),
            prompt_cache_write_tokens: Some(0),
            ..Usage::default()
        };
        let final_usage = Usage {
            completion_tokens: Some(2),
            ..start_usage
        };
        let expected = vec![
            Some((ResponseData::Empty, Some(start_usage))),
            None,
            None,
            Some((
                ResponseData::Reasoning {
                    content: String::new(),
                    reasoning: " the".into(),
                },
                None,
            )),
            None,
            None,
            Some((ResponseData::Text(" of é".into()), None)),
            Some((ResponseData::Empty, Some(final_usage))),
            None,
        ];
        stream_split_everywhere(&e, stream, &expected);
    }
}
