//! OpenAI Responses API (`/v1/responses`).

use aiperf_runtime::config::ProfileConfig;
use aiperf_runtime::dataset::Turn;
use aiperf_runtime::metadata::EndpointMetadata;
use aiperf_runtime::plugin::{Plugin, PluginContext, PluginError};
use aiperf_runtime::protocols::EndpointProtocol;
use aiperf_runtime::record::{ErrorDetails, ParsedResponse, ResponseChunk, ResponseData};
use serde_json::{Map, Value};

use super::payload::{truthy, Field, InputShape, StreamUsage};
use super::{model_value, response, stream_value, BodyContext, Prepared};

/// The Responses API as AIPerf 0.13's `ResponsesEndpoint` speaks it:
/// `{"input":[items],"model","stream","instructions"?,"max_output_tokens"?}` plus
/// `--extra-inputs`. The conversation's system message is `instructions`, its user
/// context message the first input item; each turn is a message item whose content
/// parts are `input_text`, `input_image` and `input_audio`. Under `--streaming
/// --use-server-token-count` the body asks for `stream_options.include_usage`.
///
/// Streams are read by event type: `response.output_text.delta` is text,
/// `response.reasoning_text.delta` reasoning, `response.function_call_arguments.delta`
/// text the model generated, `response.completed` carries the usage, and
/// `response.output_text.done` repeats its part's text, counted only when no delta
/// carried it. A whole body (`"object":"response"`) is read from its `output` items.
#[derive(Debug, Clone)]
pub struct ResponsesEndpoint {
    prepared: Prepared,
}

fn fields(
    body: &BodyContext<'_>,
    with_max_tokens: bool,
    with_system: bool,
) -> Vec<(&'static str, Field)> {
    let mut fields = vec![
        ("input", Field::Input(InputShape::ResponsesInput)),
        ("model", model_value(body)),
        ("stream", stream_value(body)),
    ];
    if with_system {
        fields.push(("instructions", Field::SystemMessage));
    }
    if with_max_tokens {
        fields.push(("max_output_tokens", Field::MaxTokens));
    }
    fields
}

/// AIPerf asks for usage chunks only when it will count with them, and by the run's
/// `--streaming` rather than the body's final `stream`.
fn stream_usage(body: &BodyContext<'_>, config: &ProfileConfig) -> StreamUsage {
    if body.streaming && config.use_server_token_count {
        StreamUsage::Always
    } else {
        StreamUsage::Never
    }
}

impl Plugin for ResponsesEndpoint {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(ResponsesEndpoint {
            prepared: Prepared::with_system_field(ctx, fields, stream_usage)?,
        })
    }
}

impl EndpointProtocol for ResponsesEndpoint {
    prepared_requests!("`input`, as AIPerf sends a conversation without `previous_response_id`");

    fn parse_response(
        &self,
        chunk: &ResponseChunk,
    ) -> Result<Option<ParsedResponse>, ErrorDetails> {
        Ok(match response::decode_value(chunk)? {
            Some(Value::Object(object)) => parse_unit(chunk, &object),
            _ => None,
        })
    }

    /// As AIPerf's `extract_response_data`: a `response.output_text.done` whose part
    /// (`output_index`, `content_index`) already had a delta with text keeps its time as
    /// a content response without text, so the output is counted once and the request
    /// still ends where AIPerf ends it.
    fn parse_responses(
        &self,
        chunks: &[ResponseChunk],
        out: &mut Vec<Result<Option<ParsedResponse>, ErrorDetails>>,
    ) {
        let values: Vec<Result<Option<Value>, ErrorDetails>> =
            chunks.iter().map(response::decode_value).collect();
        // The parts a delta carried text for: a handful per response.
        let mut streamed: Vec<(Option<&Value>, Option<&Value>)> = Vec::new();
        for (chunk, value) in chunks.iter().zip(&values) {
            let object = match value {
                Err(e) => {
                    out.push(Err(e.clone()));
                    continue;
                }
                Ok(Some(Value::Object(object))) => object,
                Ok(_) => {
                    out.push(Ok(None));
                    continue;
                }
            };
            let part = (object.get("output_index"), object.get("content_index"));
            match object.get("type").and_then(Value::as_str) {
                Some("response.output_text.delta")
                    if object.get("delta").is_some_and(truthy) && !streamed.contains(&part) =>
                {
                    streamed.push(part);
                }
                Some("response.output_text.done") if streamed.contains(&part) => {
                    out.push(Ok(Some(ParsedResponse {
                        recv_ns: chunk.recv_ns,
                        data: ResponseData::TextEnd,
                        usage: None,
                    })));
                    continue;
                }
                _ => {}
            }
            out.push(Ok(parse_unit(chunk, object)));
        }
    }
}

/// One stream event (it has a `type`) or whole response (`"object":"response"`).
fn parse_unit(chunk: &ResponseChunk, object: &Map<String, Value>) -> Option<ParsedResponse> {
    if object.contains_key("type") {
        return stream_event(chunk, object);
    }
    if object.get("object").and_then(Value::as_str) == Some("response") {
        return whole_response(chunk, object);
    }
    None
}

fn parsed(chunk: &ResponseChunk, data: ResponseData) -> ParsedResponse {
    ParsedResponse {
        recv_ns: chunk.recv_ns,
        data,
        usage: None,
    }
}

/// The events that carry output, and the completed event's usage; the others
/// (`response.created`, `...output_item.added`, `...content_part.done`, ...) are
/// structure only.
fn stream_event(chunk: &ResponseChunk, object: &Map<String, Value>) -> Option<ParsedResponse> {
    let text = |key: &str| {
        object
            .get(key)
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
    };
    let data = match object.get("type").and_then(Value::as_str)? {
        // Tool-call arguments are tokens the model generated: AIPerf counts them.
        "response.output_text.delta" | "response.function_call_arguments.delta" => {
            ResponseData::Text(text("delta")?)
        }
        "response.reasoning_text.delta" => ResponseData::Reasoning {
            content: String::new(),
            reasoning: text("delta")?,
        },
        // The part's whole text: output only where no delta carried it (see
        // `parse_responses`).
        "response.output_text.done" => ResponseData::Text(text("text")?),
        "response.completed" => {
            let usage = object
                .get("response")
                .and_then(Value::as_object)
                .and_then(response::usage)?;
            return Some(ParsedResponse {
                usage: Some(usage),
                ..parsed(chunk, ResponseData::Empty)
            });
        }
        _ => return None,
    };
    Some(parsed(chunk, data))
}

/// A whole response: its content and usage, when it has either.
fn whole_response(chunk: &ResponseChunk, object: &Map<String, Value>) -> Option<ParsedResponse> {
    let data = response_content(object);
    let usage = response::usage(object);
    if data.is_none() && usage.is_none() {
        return None;
    }
    Some(ParsedResponse {
        usage,
        ..parsed(chunk, data.unwrap_or(ResponseData::Empty))
    })
}

/// What a response's `output` items generated, as AIPerf reads them: reasoning items'
/// `summary_text`, message items' `output_text` and function calls' name and
/// arguments. Reasoning wins (with the text as its content), then text, then the calls;
/// without `output`, the `output_text` convenience field.
fn response_content(object: &Map<String, Value>) -> Option<ResponseData> {
    if let Some(Value::Array(items)) = object.get("output") {
        let (mut text, mut reasoning, mut calls) = (String::new(), String::new(), String::new());
        for item in items.iter().filter_map(Value::as_object) {
            match item.get("type").and_then(Value::as_str) {
                Some("reasoning") => {
                    push_parts(item.get("summary"), "summary_text", &mut reasoning)
                }
                Some("message") => push_parts(item.get("content"), "output_text", &mut text),
                Some("function_call") => {
                    for key in ["name", "arguments"] {
                        if let Some(part) = item.get(key).and_then(Value::as_str) {
                            calls.push_str(part);
                        }
                    }
                }
                _ => {}
            }
        }
        if !reasoning.is_empty() {
            return Some(ResponseData::Reasoning {
                content: text,
                reasoning,
            });
        }
        if !text.is_empty() {
            return Some(ResponseData::Text(text));
        }
        if !calls.is_empty() {
            return Some(ResponseData::Text(calls));
        }
    }
    object
        .get("output_text")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(|t| ResponseData::Text(t.to_owned()))
}

/// Appends the `text` of every part of type `kind` in a list of parts.
fn push_parts(parts: Option<&Value>, kind: &str, out: &mut String) {
    let Some(Value::Array(parts)) = parts else {
        return;
    };
    for part in parts.iter().filter_map(Value::as_object) {
        if part.get("type").and_then(Value::as_str) == Some(kind) {
            if let Some(text) = part.get("text").and_then(Value::as_str) {
                out.push_str(text);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::test_support::{chunk, event, shipped, stream_split_everywhere};
    use crate::test_config::{config, context};
    use aiperf_runtime::record::Usage;
    use serde_json::json;

    fn endpoint(args: &[&str]) -> ResponsesEndpoint {
        let cfg = config(args);
        ResponsesEndpoint::create(&context(&cfg, shipped("responses"))).unwrap()
    }

    fn body(endpoint: &ResponsesEndpoint, turn: &Turn) -> String {
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

    // ---------------------------------------------------------------- payloads

    #[test]
    fn bodies_as_aiperf_builds_them() {
        let e = endpoint(&["-m", "m"]);
        assert_eq!(
            body(&e, &turn("Hi \"there\"", None)),
            concat!(
                r#"{"input":[{"role":"user","content":"Hi \"there\"","type":"message"}],"#,
                r#""model":"m","stream":false}"#,
            )
        );
        let s = endpoint(&["-m", "m", "--streaming"]);
        let full = with_context(turn("x", Some(16)), Some("be brief"), Some("my notes"));
        assert_eq!(
            body(&s, &full),
            concat!(
                r#"{"input":[{"type":"message","role":"user","content":"my notes"},"#,
                r#"{"role":"user","content":"x","type":"message"}],"model":"m","stream":true,"#,
                r#""instructions":"be brief","max_output_tokens":16}"#
            )
        );
        // An empty system prompt or user context sends neither, as AIPerf tests truth.
        let empty = with_context(turn("x", None), Some(""), Some(""));
        assert_eq!(
            body(&e, &empty),
            concat!(
                r#"{"input":[{"role":"user","content":"x","type":"message"}],"model":"m","#,
                r#""stream":false}"#,
            )
        );
        // No usage request without --use-server-token-count.
        assert!(!body(&s, &turn("x", None)).contains("stream_options"));
    }

    #[test]
    fn usage_is_asked_for_by_the_runs_streaming_and_server_counts() {
        let args = ["-m", "m", "--streaming", "--use-server-token-count"];
        let e = endpoint(&args);
        assert_eq!(
            body(&e, &turn("x", None)),
            concat!(
                r#"{"input":[{"role":"user","content":"x","type":"message"}],"model":"m","#,
                r#""stream":true,"stream_options":{"include_usage":true}}"#
            )
        );
        // By the run's --streaming, not the body's final `stream`; a `stream_options` that
        // is not an object is replaced, an object keeps the user's keys.
        let mut off = args.to_vec();
        off.extend([
            "--extra-inputs",
            "stream:false",
            "--extra-inputs",
            "stream_options:x",
        ]);
        assert_eq!(
            body(&endpoint(&off), &turn("x", None)),
            concat!(
                r#"{"input":[{"role":"user","content":"x","type":"message"}],"model":"m","#,
                r#""stream":false,"stream_options":{"include_usage":true}}"#
            )
        );
        let mut own = args.to_vec();
        own.extend([
            "--extra-inputs",
            r#"{"stream_options": {"include_usage": false, "x": 1}}"#,
        ]);
        assert!(body(&endpoint(&own), &turn("x", None))
            .ends_with(r#""stream_options":{"include_usage":false,"x":1}}"#));
        // Without --streaming, nothing.
        let plain = endpoint(&["-m", "m", "--use-server-token-count"]);
        assert!(!body(&plain, &turn("x", None)).contains("stream_options"));
    }

    /// `--extra-inputs instructions:...` replaces the system prompt where a turn has
    /// one, and is a new last key where it has none, as AIPerf's dict update does.
    #[test]
    fn an_extra_input_takes_the_place_of_a_present_field_only() {
        let e = endpoint(&[
            "-m",
            "m",
            "--extra-inputs",
            "instructions:fixed",
            "--extra-inputs",
            "temperature:0.5",
        ]);
        assert_eq!(
            body(&e, &with_context(turn("x", Some(4)), Some("sys"), None)),
            concat!(
                r#"{"input":[{"role":"user","content":"x","type":"message"}],"model":"m","#,
                r#""stream":false,"instructions":"fixed","max_output_tokens":4,"temperature":0.5}"#
            )
        );
        assert_eq!(
            body(&e, &turn("x", Some(4))),
            concat!(
                r#"{"input":[{"role":"user","content":"x","type":"message"}],"model":"m","#,
                r#""stream":false,"max_output_tokens":4,"instructions":"fixed","temperature":0.5}"#
            )
        );
    }

    #[test]
    fn media_are_input_parts() {
        let e = endpoint(&["-m", "m"]);
        let t = Turn {
            texts: vec!["look".into(), String::new()],
            images: vec!["data:image/png;base64,iVBO".into(), String::new()],
            audios: vec!["data:audio/wav;base64,UklG".into(), "mp3,SUQz".into()],
            ..Turn::default()
        };
        assert_eq!(
            body(&e, &t),
            concat!(
                r#"{"input":[{"role":"user","content":["#,
                r#"{"type":"input_text","text":"look"},"#,
                r#"{"type":"input_image","image_url":"data:image/png;base64,iVBO"},"#,
                r#"{"type":"input_audio","input_audio":{"data":"UklG","format":"wav"}},"#,
                r#"{"type":"input_audio","input_audio":{"data":"SUQz","format":"mp3"}}"#,
                r#"],"type":"message"}],"model":"m","stream":false}"#
            )
        );
        // One text alone is a string, even empty; empty parts only are an empty string.
        let blank = Turn {
            texts: vec![String::new()],
            ..Turn::default()
        };
        let none = Turn {
            texts: vec![String::new(), String::new()],
            ..Turn::default()
        };
        for t in [blank, none, Turn::default()] {
            assert_eq!(
                body(&e, &t),
                concat!(
                    r#"{"input":[{"role":"user","content":"","type":"message"}],"model":"m","#,
                    r#""stream":false}"#,
                )
            );
        }
    }

    #[test]
    fn a_session_sends_its_history_and_a_turns_own_items_less_the_unsafe_ones() {
        let e = endpoint(&["-m", "m"]);
        let reply = Turn {
            texts: vec!["sure".into()],
            role: Some("assistant".into()),
            ..Turn::default()
        };
        let first = with_context(turn("first", None), Some("sys"), Some("ctx"));
        let next = with_context(turn("second", Some(8)), Some("sys"), Some("ctx"));
        let mut out = Vec::new();
        assert!(e
            .format_session_payload(&[first, reply], &next, &mut out)
            .unwrap());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            concat!(
                r#"{"input":[{"type":"message","role":"user","content":"ctx"},"#,
                r#"{"role":"user","content":"first","type":"message"},"#,
                r#"{"role":"assistant","content":"sure","type":"message"},"#,
                r#"{"role":"user","content":"second","type":"message"}],"#,
                r#""model":"m","stream":false,"instructions":"sys","max_output_tokens":8}"#
            )
        );
        let own = Turn {
            raw_messages: Some(vec![
                json!({"role": "user", "content": "q"}),
                json!({"type": "reasoning", "id": "rs_1", "summary": []}),
                json!({"type": "web_search_call", "id": "ws_1"}),
                json!({"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}),
            ]),
            ..Turn::default()
        };
        assert_eq!(
            body(&e, &own),
            concat!(
                r#"{"input":[{"content":"q","role":"user"},"#,
                r#"{"arguments":"{}","call_id":"c1","name":"f","type":"function_call"}],"#,
                r#""model":"m","stream":false}"#
            )
        );
    }

    #[test]
    fn the_key_is_a_bearer_token() {
        let e = endpoint(&["-m", "m", "-H", "X-Foo:bar", "--api-key", "sk-test"]);
        let mut headers = Vec::new();
        e.request_headers(&mut headers);
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [("X-Foo", "bar"), ("Authorization", "Bearer sk-test")]
        );
    }

    // ----------------------------------------------------------------- parsing

    fn data(e: &ResponsesEndpoint, unit: &str) -> Option<ResponseData> {
        e.parse_response(&chunk(7, unit)).unwrap().map(|p| p.data)
    }

    fn text(s: &str) -> Option<ResponseData> {
        Some(ResponseData::Text(s.to_owned()))
    }

    #[test]
    fn each_stream_event_kind() {
        let e = endpoint(&["-m", "m"]);
        let delta = concat!(
            r#"{"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"#,
            r#""content_index":0,"delta":"Hi","sequence_number":4}"#,
        );
        assert_eq!(data(&e, delta), text("Hi"));
        let reasoning = concat!(
            r#"{"type":"response.reasoning_text.delta","item_id":"rs_1","output_index":0,"#,
            r#""content_index":0,"delta":"hmm"}"#,
        );
        assert_eq!(
            data(&e, reasoning),
            Some(ResponseData::Reasoning {
                content: String::new(),
                reasoning: "hmm".into()
            })
        );
        let args = concat!(
            r#"{"type":"response.function_call_arguments.delta","output_index":1,"#,
            r#""delta":"{\"a\":"}"#,
        );
        assert_eq!(data(&e, args), text("{\"a\":"));
        // Alone, a done event is its text (what a first-token watcher sees).
        let done = concat!(
            r#"{"type":"response.output_text.done","output_index":0,"content_index":0,"#,
            r#""text":"Hi there"}"#,
        );
        assert_eq!(data(&e, done), text("Hi there"));
        // Structure, empty deltas and other events carry nothing.
        for unit in [
            concat!(
                r#"{"type":"response.created","response":{"id":"resp_1","object":"response","#,
                r#""status":"in_progress","output":[],"usage":null}}"#,
            ),
            r#"{"type":"response.in_progress","response":{"id":"resp_1"}}"#,
            concat!(
                r#"{"type":"response.output_item.added","output_index":0,"#,
                r#""item":{"type":"message","content":[]}}"#,
            ),
            concat!(
                r#"{"type":"response.content_part.added","output_index":0,"content_index":0,"#,
                r#""part":{"type":"output_text","text":""}}"#,
            ),
            concat!(
                r#"{"type":"response.output_text.delta","output_index":0,"content_index":0,"#,
                r#""delta":""}"#,
            ),
            r#"{"type":"response.reasoning_text.done","text":"hmm"}"#,
            r#"{"type":"response.function_call_arguments.done","arguments":"{}"}"#,
            concat!(
                r#"{"type":"response.incomplete","response":{"usage":{"input_tokens":3,"#,
                r#""output_tokens":2}}}"#,
            ),
            r#"{"type":"response.completed","response":{"usage":null}}"#,
            r#"{"type":"error","code":"server_error","message":"busy"}"#,
            "[DONE]",
        ] {
            assert_eq!(e.parse_response(&chunk(1, unit)), Ok(None), "{unit}");
        }
    }

    #[test]
    fn the_completed_event_carries_the_usage() {
        let e = endpoint(&["-m", "m"]);
        let completed = concat!(
            r#"{"type":"response.completed","response":{"id":"resp_1","object":"response","#,
            r#""status":"completed","output":[],"usage":{"input_tokens":9,"#,
            r#""input_tokens_details":{"cached_tokens":0},"output_tokens":5,"#,
            r#""output_tokens_details":{"reasoning_tokens":2},"total_tokens":14}}}"#
        );
        let parsed = e.parse_response(&chunk(3, completed)).unwrap().unwrap();
        assert_eq!(parsed.data, ResponseData::Empty);
        assert_eq!(
            parsed.usage,
            Some(Usage {
                prompt_tokens: Some(9),
                completion_tokens: Some(5),
                total_tokens: Some(14),
                reasoning_tokens: Some(2),
                prompt_cache_read_tokens: Some(0),
                ..Usage::default()
            })
        );
    }

    #[test]
    fn a_whole_response_is_read_from_its_items() {
        let e = endpoint(&["-m", "m"]);
        let usage = r#""usage":{"input_tokens":4,"output_tokens":6,"total_tokens":10}"#;
        let reasoning = format!(
            concat!(
                r#"{{"id":"resp_1","object":"response","status":"completed","#,
                r#""output":[{{"type":"reasoning","id":"rs_1","summary":[{{"type":"summary_text","#,
                r#""text":"think"}},{{"type":"other","text":"no"}}]}},{{"type":"message","#,
                r#""role":"assistant","content":[{{"type":"output_text","text":"Hello","#,
                r#""annotations":[]}},{{"type":"refusal","refusal":"x"}}]}},"#,
                r#"{{"type":"function_call","name":"f","arguments":"{{}}"}}],{usage}}}"#,
            ),
            usage = usage
        );
        let parsed = e.parse_response(&chunk(5, &reasoning)).unwrap().unwrap();
        assert_eq!(
            parsed.data,
            ResponseData::Reasoning {
                content: "Hello".into(),
                reasoning: "think".into()
            }
        );
        assert_eq!(parsed.usage.unwrap().completion_tokens, Some(6));
        let message = concat!(
            r#"{"object":"response","output":[{"type":"message","content":[{"type":"output_text","#,
            r#""text":"a"},{"type":"output_text","text":"b"}]},{"type":"function_call","#,
            r#""name":"f","arguments":"{}"}]}"#,
        );
        assert_eq!(data(&e, message), text("ab"));
        let call = concat!(
            r#"{"object":"response","output":[{"type":"function_call","name":"get","#,
            r#""arguments":"{\"a\":1}"}]}"#,
        );
        assert_eq!(data(&e, call), text("get{\"a\":1}"));
        let convenience = r#"{"object":"response","output_text":"plain"}"#;
        assert_eq!(data(&e, convenience), text("plain"));
        // Usage alone still counts; nothing at all is nothing; another object is not read.
        let only_usage = r#"{"object":"response","output":[],"usage":{"input_tokens":4}}"#;
        let parsed = e.parse_response(&chunk(5, only_usage)).unwrap().unwrap();
        assert_eq!(parsed.data, ResponseData::Empty);
        assert_eq!(parsed.usage.unwrap().prompt_tokens, Some(4));
        assert_eq!(data(&e, r#"{"object":"response","output":[]}"#), None);
        assert_eq!(
            data(&e, r#"{"object":"chat.completion","output_text":"x"}"#),
            None
        );
    }

    #[test]
    fn errors_inside_a_200_are_errors() {
        let e = endpoint(&["-m", "m"]);
        let failed = concat!(
            r#"{"id":"resp_1","object":"response","status":"failed","#,
            r#""error":{"code":"server_error","message":"boom"}}"#,
        );
        let err = e.parse_response(&chunk(1, failed)).unwrap_err();
        assert_eq!(err, ErrorDetails::new(None, "ServerError", "boom"));
        let err = e
            .parse_response(&event(1, "error", r#"{"type":"error","message":"x"}"#))
            .unwrap_err();
        assert_eq!(err.kind, "SSEError");
        let err = e.parse_response(&chunk(1, r#"{"type":"#)).unwrap_err();
        assert_eq!(err.kind, response::INVALID_RESPONSE);
    }

    fn records(e: &ResponsesEndpoint, units: &[&str]) -> Vec<Option<ResponseData>> {
        let chunks: Vec<ResponseChunk> = units
            .iter()
            .enumerate()
            .map(|(i, u)| chunk(i as u64, u))
            .collect();
        let mut out = Vec::new();
        e.parse_responses(&chunks, &mut out);
        out.into_iter()
            .enumerate()
            .map(|(i, r)| {
                let parsed = r.unwrap();
                if let Some(p) = &parsed {
                    assert_eq!(p.recv_ns, i as u64);
                }
                parsed.map(|p| p.data)
            })
            .collect()
    }

    /// A done event repeats its part's deltas: it keeps its time without its text. A
    /// part whose deltas did not come (a server that sends only the done event) keeps
    /// its text, whatever a sibling part streamed.
    #[test]
    fn a_streamed_parts_done_event_is_not_counted_twice() {
        let e = endpoint(&["-m", "m"]);
        let delta = |o: u32, c: u32, d: &str| {
            format!(
                concat!(
                    r#"{{"type":"response.output_text.delta","output_index":{o},"#,
                    r#""content_index":{c},"delta":"{d}"}}"#,
                ),
                o = o,
                c = c,
                d = d
            )
        };
        let done = |o: u32, c: u32, t: &str| {
            format!(
                concat!(
                    r#"{{"type":"response.output_text.done","output_index":{o},"#,
                    r#""content_index":{c},"text":"{t}"}}"#,
                ),
                o = o,
                c = c,
                t = t
            )
        };
        let units = [
            delta(0, 0, "He"),
            delta(0, 0, "llo"),
            delta(1, 0, ""),
            done(0, 0, "Hello"),
            done(1, 0, "Solo"),
            done(0, 1, "Other"),
        ];
        let units: Vec<&str> = units.iter().map(String::as_str).collect();
        assert_eq!(
            records(&e, &units),
            [
                text("He"),
                text("llo"),
                None,
                Some(ResponseData::TextEnd),
                text("Solo"),
                text("Other"),
            ]
        );
        // The text end is content (it times the request's end) without output.
        assert!(ResponseData::TextEnd.is_content());
        // Errors keep their place.
        let chunks = [chunk(1, r#"{"error":{"message":"m"}}"#), chunk(2, "[DONE]")];
        let mut out = Vec::new();
        e.parse_responses(&chunks, &mut out);
        assert!(out[0].is_err());
        assert_eq!(out[1], Ok(None));
    }

    /// A whole stream as the mock and OpenAI send it, framed from its bytes cut in two at
    /// every byte: the same units, each timed by the read that completed it.
    #[test]
    fn a_stream_split_at_every_byte_reads_the_same() {
        let e = endpoint(&["-m", "m", "--streaming"]);
        let stream = concat!(
            "event: response.created\n",
            concat!(
                r#"data: {"type":"response.created","sequence_number":0,"#,
                r#""response":{"id":"resp_1","object":"response","status":"in_progress","#,
                r#""output":[],"usage":null}}"#,
            ),
            "\n\nevent: response.reasoning_text.delta\n",
            concat!(
                r#"data: {"type":"response.reasoning_text.delta","output_index":0,"#,
                r#""content_index":0,"delta":" the"}"#,
            ),
            "\n\nevent: response.output_text.delta\r\n",
            concat!(
                r#"data: {"type":"response.output_text.delta","output_index":1,"content_index":0,"#,
                r#""delta":" of"}"#,
            ),
            "\r\n\r\nevent: response.output_text.delta\n",
            concat!(
                r#"data: {"type":"response.output_text.delta","output_index":1,"content_index":0,"#,
                r#""delta":" and é"}"#,
            ),
            "\n\nevent: response.output_text.done\n",
            concat!(
                r#"data: {"type":"response.output_text.done","output_index":1,"content_index":0,"#,
                r#""text":" of and é"}"#,
            ),
            "\n\nevent: response.completed\n",
            concat!(
                r#"data: {"type":"response.completed","response":{"object":"response","#,
                r#""status":"completed","usage":{"input_tokens":3,"output_tokens":3,"#,
                r#""output_tokens_details":{"reasoning_tokens":1},"total_tokens":6}}}"#,
            ),
            "\n\n",
        );
        let usage = Usage {
            prompt_tokens: Some(3),
            completion_tokens: Some(3),
            total_tokens: Some(6),
            reasoning_tokens: Some(1),
            ..Usage::default()
        };
        let expected = vec![
            None,
            Some((
                ResponseData::Reasoning {
                    content: String::new(),
                    reasoning: " the".into(),
                },
                None,
            )),
            Some((ResponseData::Text(" of".into()), None)),
            Some((ResponseData::Text(" and é".into()), None)),
            Some((ResponseData::TextEnd, None)),
            Some((ResponseData::Empty, Some(usage))),
        ];
        stream_split_everywhere(&e, stream, &expected);
    }
}
