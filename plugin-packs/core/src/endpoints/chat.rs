//! OpenAI Chat Completions (`/v1/chat/completions`).

use aiperf_runtime::dataset::Turn;
use aiperf_runtime::metadata::EndpointMetadata;
use aiperf_runtime::plugin::{Plugin, PluginContext, PluginError};
use aiperf_runtime::protocols::EndpointProtocol;
use aiperf_runtime::record::{ErrorDetails, ParsedResponse, ResponseChunk};

use super::payload::{Field, InputShape};
use super::{model_value, response, stream_value, BodyContext, Prepared};

/// Chat completions: `{"messages":[{"role","content"}],"model","stream",
/// "max_completion_tokens"?}` plus `--extra-inputs`, with
/// `stream_options.include_usage` when streaming so the server reports usage. A turn's
/// images and audio clips become `image_url` and `input_audio` content parts;
/// `--use-legacy-max-tokens` sends `max_tokens` instead.
#[derive(Debug, Clone)]
pub struct ChatEndpoint {
    prepared: Prepared,
}

/// The chat body's fields (shared with `chat_embeddings`, which posts the same body).
pub(super) fn fields(body: &BodyContext<'_>, with_max_tokens: bool) -> Vec<(&'static str, Field)> {
    let mut fields = vec![
        ("messages", Field::Input(InputShape::ChatMessages)),
        ("model", model_value(body)),
        ("stream", stream_value(body)),
    ];
    if with_max_tokens {
        let key = if body.legacy_max_tokens {
            "max_tokens"
        } else {
            "max_completion_tokens"
        };
        fields.push((key, Field::MaxTokens));
    }
    fields
}

impl Plugin for ChatEndpoint {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(ChatEndpoint {
            prepared: Prepared::new(ctx, fields, true)?,
        })
    }
}

impl EndpointProtocol for ChatEndpoint {
    prepared_requests!("`messages`, as AIPerf sends a conversation's history");

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
    use crate::endpoints::test_support::{chunk, event, CHAT, NO_METADATA};
    use crate::test_config::{config, context};
    use aiperf_runtime::record::{ResponseData, Usage};

    fn endpoint(args: &[&str]) -> ChatEndpoint {
        let cfg = config(args);
        ChatEndpoint::create(&context(&cfg, &CHAT)).unwrap()
    }

    fn body(endpoint: &ChatEndpoint, turn: &Turn) -> String {
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

    fn parse(endpoint: &ChatEndpoint, data: &str) -> Result<Option<ParsedResponse>, ErrorDetails> {
        endpoint.parse_response(&chunk(7, data))
    }

    fn data(endpoint: &ChatEndpoint, data: &str) -> ResponseData {
        parse(endpoint, data).unwrap().unwrap().data
    }

    fn text(s: &str) -> ResponseData {
        ResponseData::Text(s.to_owned())
    }

    // ---------------------------------------------------------------- payloads

    #[test]
    fn payload_non_streaming() {
        let e = endpoint(&["-m", "m"]);
        assert_eq!(
            body(&e, &turn("Hi \"there\"\n", None)),
            r#"{"messages":[{"role":"user","content":"Hi \"there\"\n"}],"model":"m","stream":false}"#
        );
        assert_eq!(
            body(&e, &turn("x", Some(16))),
            r#"{"messages":[{"role":"user","content":"x"}],"model":"m","stream":false,"max_completion_tokens":16}"#
        );
    }

    #[test]
    fn session_payload_sends_the_history_first() {
        let e = endpoint(&["-m", "m", "--streaming"]);
        let reply = Turn {
            texts: vec!["sure".into()],
            role: Some("assistant".into()),
            ..Turn::default()
        };
        let history = [turn("first", Some(8)), reply];
        let mut body = Vec::new();
        assert!(e
            .format_session_payload(&history, &turn("second", Some(16)), &mut body)
            .unwrap());
        assert_eq!(
            String::from_utf8(body).unwrap(),
            concat!(
                r#"{"messages":[{"role":"user","content":"first"},"#,
                r#"{"role":"assistant","content":"sure"},{"role":"user","content":"second"}],"#,
                r#""model":"m","stream":true,"max_completion_tokens":16,"#,
                r#""stream_options":{"include_usage":true}}"#
            )
        );
        // No history: the turn's own body.
        let mut alone = Vec::new();
        e.format_session_payload(&[], &turn("x", None), &mut alone)
            .unwrap();
        assert_eq!(alone, body_bytes(&e, &turn("x", None)));
    }

    fn with_context(mut turn: Turn, system: Option<&str>, context: Option<&str>) -> Turn {
        turn.system_message = system.map(Into::into);
        turn.user_context_message = context.map(Into::into);
        turn
    }

    #[test]
    fn system_and_user_context_messages_go_before_the_history() {
        let e = endpoint(&["-m", "m"]);
        let first = with_context(turn("first", None), Some("be brief"), Some("my notes"));
        assert_eq!(
            body(&e, &first),
            concat!(
                r#"{"messages":[{"role":"system","content":"be brief"},"#,
                r#"{"role":"user","content":"my notes"},{"role":"user","content":"first"}],"#,
                r#""model":"m","stream":false}"#
            )
        );
        let reply = Turn {
            texts: vec!["sure".into()],
            role: Some("assistant".into()),
            ..Turn::default()
        };
        let next = with_context(turn("second", None), Some("be brief"), Some("my notes"));
        let mut out = Vec::new();
        e.format_session_payload(&[first, reply], &next, &mut out)
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            concat!(
                r#"{"messages":[{"role":"system","content":"be brief"},"#,
                r#"{"role":"user","content":"my notes"},{"role":"user","content":"first"},"#,
                r#"{"role":"assistant","content":"sure"},{"role":"user","content":"second"}],"#,
                r#""model":"m","stream":false}"#
            )
        );
        // Either alone.
        assert_eq!(
            body(&e, &with_context(turn("x", None), None, Some("ctx"))),
            concat!(
                r#"{"messages":[{"role":"user","content":"ctx"},"#,
                r#"{"role":"user","content":"x"}],"model":"m","stream":false}"#
            )
        );
        assert_eq!(
            body(&e, &with_context(turn("x", None), Some("sys"), None)),
            concat!(
                r#"{"messages":[{"role":"system","content":"sys"},"#,
                r#"{"role":"user","content":"x"}],"model":"m","stream":false}"#
            )
        );
    }

    #[test]
    fn a_system_message_merges_into_a_leading_system_message() {
        let e = endpoint(&["-m", "m"]);
        let raw = |messages: serde_json::Value| Turn {
            raw_messages: Some(messages.as_array().unwrap().clone()),
            system_message: Some("SP".into()),
            ..Turn::default()
        };
        let text = raw(serde_json::json!([
            {"role": "system", "content": "house rules"},
            {"role": "user", "content": "hi"},
        ]));
        assert_eq!(
            body(&e, &text),
            concat!(
                r#"{"messages":[{"content":"SP\n\nhouse rules","role":"system"},"#,
                r#"{"content":"hi","role":"user"}],"model":"m","stream":false}"#
            )
        );
        let parts = raw(serde_json::json!([
            {"role": "system", "content": [{"type": "text", "text": "rules"}]},
        ]));
        assert_eq!(
            body(&e, &parts),
            concat!(
                r#"{"messages":[{"content":[{"text":"SP","type":"text"},"#,
                r#"{"text":"rules","type":"text"}],"role":"system"}],"model":"m","stream":false}"#
            )
        );
        let empty = raw(serde_json::json!([{"role": "system", "content": ""}]));
        assert_eq!(
            body(&e, &empty),
            r#"{"messages":[{"content":"SP","role":"system"}],"model":"m","stream":false}"#
        );
        let user_first = raw(serde_json::json!([{"role": "user", "content": "hi"}]));
        assert_eq!(
            body(&e, &user_first),
            concat!(
                r#"{"messages":[{"role":"system","content":"SP"},"#,
                r#"{"content":"hi","role":"user"}],"model":"m","stream":false}"#
            )
        );
        // A turn of role system takes it the same way.
        let system_turn = Turn {
            texts: vec!["house rules".into()],
            role: Some("system".into()),
            system_message: Some("SP".into()),
            user_context_message: Some("ctx".into()),
            ..Turn::default()
        };
        assert_eq!(
            body(&e, &system_turn),
            concat!(
                r#"{"messages":[{"role":"system","content":"SP\n\nhouse rules"},"#,
                r#"{"role":"user","content":"ctx"}],"model":"m","stream":false}"#
            )
        );
        let with_image = Turn {
            images: vec!["u".into()],
            ..system_turn
        };
        assert_eq!(
            body(&e, &with_image),
            concat!(
                r#"{"messages":[{"role":"system","content":[{"type":"text","text":"SP"},"#,
                r#"{"type":"text","text":"house rules"},"#,
                r#"{"type":"image_url","image_url":{"url":"u"}}]},"#,
                r#"{"role":"user","content":"ctx"}],"model":"m","stream":false}"#
            )
        );
    }

    fn body_bytes(endpoint: &ChatEndpoint, turn: &Turn) -> Vec<u8> {
        body(endpoint, turn).into_bytes()
    }

    #[test]
    fn payload_streaming_with_extra_inputs() {
        let e = endpoint(&[
            "-m",
            "llama,other",
            "--streaming",
            "--extra-inputs",
            "temperature:0.5",
            "--extra-inputs",
            "ignore_eos:true",
            "--extra-inputs",
            "max_completion_tokens:99",
        ]);
        assert_eq!(
            body(&e, &turn("x", Some(16))),
            r#"{"messages":[{"role":"user","content":"x"}],"model":"llama","stream":true,"max_completion_tokens":99,"temperature":0.5,"ignore_eos":true,"stream_options":{"include_usage":true}}"#
        );
        // Without a turn limit the user's value keeps its own place among the extras.
        assert_eq!(
            body(&e, &turn("x", None)),
            r#"{"messages":[{"role":"user","content":"x"}],"model":"llama","stream":true,"temperature":0.5,"ignore_eos":true,"max_completion_tokens":99,"stream_options":{"include_usage":true}}"#
        );
    }

    #[test]
    fn extra_inputs_can_turn_streaming_off() {
        let e = endpoint(&[
            "-m",
            "m",
            "--streaming",
            "--extra-inputs",
            "{\"stream\": false}",
        ]);
        assert_eq!(
            body(&e, &turn("x", None)),
            r#"{"messages":[{"role":"user","content":"x"}],"model":"m","stream":false}"#
        );
    }

    #[test]
    fn payload_role_and_several_texts() {
        let e = endpoint(&["-m", "m"]);
        let t = Turn {
            texts: vec!["a".into(), "b".into()],
            role: Some("system".into()),
            ..Turn::default()
        };
        assert_eq!(
            body(&e, &t),
            r#"{"messages":[{"role":"system","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}],"model":"m","stream":false}"#
        );
        let empty = Turn::default();
        assert!(body(&e, &empty).starts_with(r#"{"messages":[{"role":"user","content":""}]"#));
    }

    #[test]
    fn legacy_max_tokens() {
        let e = endpoint(&["-m", "m", "--use-legacy-max-tokens"]);
        assert_eq!(
            body(&e, &turn("x", Some(16))),
            r#"{"messages":[{"role":"user","content":"x"}],"model":"m","stream":false,"max_tokens":16}"#
        );
    }

    #[test]
    fn images_and_audio_are_content_parts() {
        let e = endpoint(&["-m", "m"]);
        let t = Turn {
            texts: vec!["look".into()],
            images: vec![
                "data:image/png;base64,iVBO".into(),
                "https://x/y.png".into(),
            ],
            audios: vec!["data:audio/wav;base64,UklG".into(), "mp3,SUQz".into()],
            ..Turn::default()
        };
        assert_eq!(
            body(&e, &t),
            concat!(
                r#"{"messages":[{"role":"user","content":["#,
                r#"{"type":"text","text":"look"},"#,
                r#"{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBO"}},"#,
                r#"{"type":"image_url","image_url":{"url":"https://x/y.png"}},"#,
                r#"{"type":"input_audio","input_audio":{"data":"UklG","format":"wav"}},"#,
                r#"{"type":"input_audio","input_audio":{"data":"SUQz","format":"mp3"}}"#,
                r#"]}],"model":"m","stream":false}"#
            )
        );
        // Media without text: parts only.
        let t = Turn {
            images: vec!["u".into()],
            ..Turn::default()
        };
        assert_eq!(
            body(&e, &t),
            r#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"u"}}]}],"model":"m","stream":false}"#
        );
    }

    #[test]
    fn headers_add_bearer_auth_last() {
        let e = endpoint(&[
            "-m",
            "m",
            "-H",
            "X-Foo:bar",
            "-H",
            "authorization:old",
            "--api-key",
            "sk-test",
        ]);
        let mut headers = vec![("User-Agent".to_owned(), "x".to_owned())];
        e.request_headers(&mut headers);
        let expected = [
            ("User-Agent", "x"),
            ("X-Foo", "bar"),
            ("Authorization", "Bearer sk-test"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect();
        assert_eq!(headers, expected);
    }

    #[test]
    fn metadata_comes_from_the_entry() {
        let e = endpoint(&["-m", "m"]);
        assert_eq!(
            e.metadata().endpoint_path.as_deref(),
            Some("/v1/chat/completions")
        );
        assert!(e.metadata().supports_streaming);
        let cfg = config(&["-m", "m"]);
        assert!(matches!(
            ChatEndpoint::create(&context(&cfg, &NO_METADATA)),
            Err(PluginError::Metadata { .. })
        ));
    }

    // ----------------------------------------------------------------- parsing

    #[test]
    fn done_and_empty_units_carry_nothing() {
        let e = endpoint(&["-m", "m"]);
        for unit in ["[DONE]", " [DONE]\n", "", "  \n"] {
            assert_eq!(parse(&e, unit), Ok(None), "{unit:?}");
        }
    }

    #[test]
    fn content_deltas_are_text() {
        let e = endpoint(&["-m", "m"]);
        let parsed = parse(
            &e,
            r#"{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            parsed,
            ParsedResponse {
                recv_ns: 7,
                data: text("Hello"),
                usage: None
            }
        );
    }

    #[test]
    fn bc08_role_prelude_and_finish_chunk_are_empty() {
        let e = endpoint(&["-m", "m"]);
        let prelude = r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;
        let finish = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
        for unit in [prelude, finish] {
            let d = data(&e, unit);
            assert_eq!(d, ResponseData::Empty);
            assert!(!d.is_content());
        }
        assert_eq!(
            data(&e, r#"{"choices":[{"index":0,"delta":{"content":"The"}}]}"#),
            text("The")
        );
        assert_eq!(
            data(&e, r#"{"choices":[{"delta":{"content":null}}]}"#),
            ResponseData::Empty
        );
    }

    #[test]
    fn non_streaming_message_is_text_with_usage() {
        let e = endpoint(&["-m", "m"]);
        let parsed = parse(
            &e,
            r#"{"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hi there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12,"completion_tokens_details":{"reasoning_tokens":0}}}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(parsed.data, text("Hi there"));
        assert_eq!(
            parsed.usage,
            Some(Usage {
                prompt_tokens: Some(9),
                completion_tokens: Some(3),
                total_tokens: Some(12),
                reasoning_tokens: Some(0),
                ..Usage::default()
            })
        );
    }

    #[test]
    fn reasoning_fields_are_reasoning() {
        let e = endpoint(&["-m", "m"]);
        assert_eq!(
            data(
                &e,
                r#"{"choices":[{"delta":{"reasoning_content":"hmm","content":null}}]}"#
            ),
            ResponseData::Reasoning {
                content: String::new(),
                reasoning: "hmm".into()
            }
        );
        assert_eq!(
            data(
                &e,
                r#"{"choices":[{"delta":{"reasoning":"so","content":"A"}}]}"#
            ),
            ResponseData::Reasoning {
                content: "A".into(),
                reasoning: "so".into()
            }
        );
        // An empty reasoning field falls through to content.
        assert_eq!(
            data(
                &e,
                r#"{"choices":[{"delta":{"reasoning_content":"","content":"A"}}]}"#
            ),
            text("A")
        );
    }

    #[test]
    fn tool_calls_count_as_text() {
        let e = endpoint(&["-m", "m"]);
        assert_eq!(
            data(
                &e,
                r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"name":"get","arguments":"{\"a\":1}"}}]}}]}"#
            ),
            text("get{\"a\":1}")
        );
    }

    #[test]
    fn bc10_usage_only_chunk_with_unexpected_object() {
        let e = endpoint(&["-m", "m"]);
        let first = parse(
            &e,
            r#"{"id":"cmpl-1","object":"text_completion","choices":[{"index":0,"text":"4","finish_reason":"stop"}]}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(first.data, text("4"));
        let usage = parse(
            &e,
            r#"{"id":"cmpl-1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":1,"total_tokens":8}}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(usage.data, ResponseData::Empty);
        assert!(!usage.data.is_content());
        assert_eq!(
            usage.usage,
            Some(Usage {
                prompt_tokens: Some(7),
                completion_tokens: Some(1),
                total_tokens: Some(8),
                reasoning_tokens: None,
                ..Usage::default()
            })
        );
        assert_eq!(parse(&e, "[DONE]"), Ok(None));
    }

    #[test]
    fn bc15_several_tokens_per_chunk_with_continuous_usage() {
        let e = endpoint(&["-m", "m"]);
        for (i, piece) in ["a b c d", "e f g h", "i j k l", "m n o p"]
            .iter()
            .enumerate()
        {
            let unit = format!(
                r#"{{"choices":[{{"index":0,"delta":{{"content":"{piece}"}}}}],"usage":{{"prompt_tokens":5,"completion_tokens":{},"total_tokens":{}}}}}"#,
                4 * (i + 1),
                5 + 4 * (i + 1)
            );
            let parsed = parse(&e, &unit).unwrap().unwrap();
            assert_eq!(parsed.data, text(piece));
            assert_eq!(
                parsed.usage.unwrap().completion_tokens,
                Some(4 * (i as u64 + 1))
            );
        }
    }

    #[test]
    fn bc03_tgi_token_then_error_frame() {
        let e = endpoint(&["-m", "m"]);
        assert_eq!(
            data(
                &e,
                r#"{"token":{"id":42,"text":"Hi","logprob":-0.1,"special":false},"generated_text":null,"details":null}"#
            ),
            text("Hi")
        );
        let err = parse(
            &e,
            r#"{"error":"generation failed: shape mismatch","error_type":"generation"}"#,
        )
        .unwrap_err();
        assert_eq!(
            err,
            ErrorDetails::new(None, "generation", "generation failed: shape mismatch")
        );
    }

    #[test]
    fn bc07a_error_object_after_200() {
        let e = endpoint(&["-m", "m"]);
        let err = parse(
            &e,
            r#"{"error":{"message":"upstream timed out","type":"GatewayTimeout","code":504}}"#,
        )
        .unwrap_err();
        assert_eq!(
            err,
            ErrorDetails::new(Some(504), "GatewayTimeout", "upstream timed out")
        );
    }

    #[test]
    fn bc07b_error_event_mid_stream() {
        let e = endpoint(&["-m", "m"]);
        let err = e
            .parse_response(&event(
                900,
                "error",
                r#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#,
            ))
            .unwrap_err();
        assert_eq!(err, ErrorDetails::new(None, "overloaded_error", "busy"));
        let err = e
            .parse_response(&event(900, "error", "backend exploded"))
            .unwrap_err();
        assert_eq!(err, ErrorDetails::new(None, "SSEError", "backend exploded"));
        // Other event names are data as usual.
        let ok = e.parse_response(&event(
            1,
            "message",
            r#"{"choices":[{"delta":{"content":"x"}}]}"#,
        ));
        assert_eq!(ok.unwrap().unwrap().data, text("x"));
    }

    #[test]
    fn other_error_shapes() {
        let e = endpoint(&["-m", "m"]);
        let err = parse(
            &e,
            r#"{"object":"error","message":"bad request","type":"BadRequestError","param":null,"code":400}"#,
        )
        .unwrap_err();
        assert_eq!(
            err,
            ErrorDetails::new(Some(400), "BadRequestError", "bad request")
        );
        let err = parse(
            &e,
            r#"{"error":{"message":"slow down","code":"rate_limit_exceeded"}}"#,
        )
        .unwrap_err();
        assert_eq!(err, ErrorDetails::new(None, "ServerError", "slow down"));
        // A null error field is no error.
        assert_eq!(
            data(
                &e,
                r#"{"error":null,"choices":[{"delta":{"content":"ok"}}]}"#
            ),
            text("ok")
        );
    }

    #[test]
    fn invalid_json_is_an_invalid_response() {
        let e = endpoint(&["-m", "m"]);
        let err = parse(&e, r#"{"choices":[{"delta":{"content":"Hel"#).unwrap_err();
        assert_eq!(err.code, None);
        assert_eq!(err.kind, "InvalidResponse");
        assert!(err.message.contains("Hel"));
    }

    #[test]
    fn never_panics_on_odd_bytes() {
        let e = endpoint(&["-m", "m"]);
        let units: Vec<Vec<u8>> = vec![
            b"\xff\xfe\x00garbage".to_vec(),
            "[".repeat(10_000).into_bytes(),
            b"[1,2,3]".to_vec(),
            b"\"just a string\"".to_vec(),
            b"42".to_vec(),
            br#"{"choices":"oops"}"#.to_vec(),
            br#"{"choices":[null]}"#.to_vec(),
            br#"{"choices":[5]}"#.to_vec(),
            br#"{"choices":[{"delta":"x","message":7,"text":[1]}]}"#.to_vec(),
            br#"{"choices":[{"delta":{"content":{"a":1},"tool_calls":"x"}}]}"#.to_vec(),
            br#"{"usage":{"prompt_tokens":-1,"completion_tokens":1e300,"total_tokens":"9"}}"#
                .to_vec(),
            br#"{"error":true}"#.to_vec(),
            br#"{"error":{"code":70000}}"#.to_vec(),
            br#"{"token":{"text":5}}"#.to_vec(),
        ];
        for data in units {
            let unit = ResponseChunk {
                recv_ns: 0,
                first_byte_ns: 0,
                event: None,
                data,
            };
            let _ = e.parse_response(&unit);
            let _ = e.parse_response(&ResponseChunk {
                event: Some("error".into()),
                ..unit
            });
        }
    }
}
