//! Reading OpenAI-compatible responses by their shape.
//!
//! Servers disagree on the `object` label (TensorRT-LLM labels the usage chunk of
//! `/v1/completions` `chat.completion.chunk`, BC-10), mix chat and completion shapes,
//! and report failures inside 200 responses (BC-03, BC-07). So nothing here dispatches on
//! `object`: a unit is read by which fields it has, and any error object wins over data.

use aiperf_runtime::record::{ErrorDetails, ParsedResponse, ResponseChunk, ResponseData, Usage};
use serde_json::{Map, Value};

/// Longest piece of a bad response quoted in an error message.
const SNIPPET_BYTES: usize = 256;

/// Error kind of a unit that is not the JSON it should be.
pub(crate) const INVALID_RESPONSE: &str = "InvalidResponse";

/// A chat or completions unit: text, reasoning, usage, or an in-band error.
pub(crate) fn parse_generation(
    chunk: &ResponseChunk,
) -> Result<Option<ParsedResponse>, ErrorDetails> {
    let Some(object) = decode(chunk)? else {
        return Ok(None);
    };
    Ok(Some(ParsedResponse {
        recv_ns: chunk.recv_ns,
        data: generation_data(&object),
        usage: usage(&object),
    }))
}

/// An embeddings body: `data[]` of `{"object":"embedding", "embedding":[...]}` items.
pub(crate) fn parse_embeddings(
    chunk: &ResponseChunk,
) -> Result<Option<ParsedResponse>, ErrorDetails> {
    let Some(object) = decode(chunk)? else {
        return Ok(None);
    };
    let usage = usage(&object);
    let items = match object.get("data") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        _ if usage.is_some() => {
            return Ok(Some(ParsedResponse {
                recv_ns: chunk.recv_ns,
                data: ResponseData::Empty,
                usage,
            }))
        }
        _ => return Ok(None),
    };
    let is_embedding =
        |item: &Value| item.get("object").and_then(Value::as_str) == Some("embedding");
    if !items.iter().all(is_embedding) {
        return Err(ErrorDetails::new(
            None,
            INVALID_RESPONSE,
            format!(
                "embeddings response has items that are not embeddings: {}",
                snippet(&chunk.data)
            ),
        ));
    }
    let count = items
        .iter()
        .filter(|item| !item.get("embedding").unwrap_or(&Value::Null).is_null())
        .count();
    let data = if count == 0 {
        ResponseData::Empty
    } else {
        ResponseData::Embeddings { count }
    };
    Ok(Some(ParsedResponse {
        recv_ns: chunk.recv_ns,
        data,
        usage,
    }))
}

/// The unit's JSON object; `None` for units that carry nothing (`[DONE]`, empty data,
/// JSON that is not an object); `Err` for in-band errors and invalid JSON.
fn decode(chunk: &ResponseChunk) -> Result<Option<Map<String, Value>>, ErrorDetails> {
    let data = chunk.data.trim_ascii();
    if chunk
        .event
        .as_deref()
        .is_some_and(|e| e.trim().eq_ignore_ascii_case("error"))
    {
        // An SSE `error` event is a failure whatever its data says (BC-07 B).
        let details = match serde_json::from_slice::<Value>(data) {
            Ok(Value::Object(object)) => inband_error(&object),
            _ => None,
        };
        return Err(details.unwrap_or_else(|| {
            let message = if data.is_empty() {
                "error event".to_owned()
            } else {
                snippet(data)
            };
            ErrorDetails::new(None, "SSEError", message)
        }));
    }
    if data.is_empty() || data == b"[DONE]" {
        return Ok(None);
    }
    match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(object)) => match inband_error(&object) {
            Some(error) => Err(error),
            None => Ok(Some(object)),
        },
        Ok(_) => Ok(None),
        Err(e) => Err(ErrorDetails::new(
            None,
            INVALID_RESPONSE,
            format!("response is not valid JSON ({e}): {}", snippet(data)),
        )),
    }
}

/// The error a unit reports, in the shapes servers use:
/// OpenAI/vLLM/SGLang `{"error":{"message","type","code"}}`, Anthropic
/// `{"type":"error","error":{...}}`, TGI `{"error":"...","error_type":"..."}` and vLLM's
/// older `{"object":"error","message","type","code"}`.
fn inband_error(object: &Map<String, Value>) -> Option<ErrorDetails> {
    let (source, message) = match object.get("error") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => {
            if object.get("object").and_then(Value::as_str) != Some("error") {
                return None;
            }
            (object, object.get("message").map(text_of_value))
        }
        Some(Value::String(s)) if s.is_empty() => return None,
        Some(Value::Object(inner)) if inner.is_empty() => return None,
        Some(Value::Object(inner)) => (inner, inner.get("message").map(text_of_value)),
        Some(other) => (object, Some(text_of_value(other))),
    };
    let kind = [
        source.get("type"),
        object.get("error_type"),
        object.get("type"),
    ]
    .into_iter()
    .flatten()
    .filter_map(Value::as_str)
    .find(|kind| !kind.is_empty() && *kind != "error")
    .unwrap_or("ServerError");
    let code = [source.get("code"), object.get("code")]
        .into_iter()
        .flatten()
        .find_map(status_code);
    let message = match message {
        Some(message) if !message.is_empty() => message,
        _ => Value::Object(object.clone()).to_string(),
    };
    Some(ErrorDetails::new(code, kind, message))
}

/// An HTTP-like status code; OpenAI's string codes (`rate_limit_exceeded`) are kept in
/// the message only.
fn status_code(value: &Value) -> Option<u16> {
    match value {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn text_of_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What a generation unit carries, by shape: `choices[0].delta` (chat stream),
/// `choices[0].message` (chat body), `choices[0].text` (completions, in either stream),
/// or TGI's `token.text`.
fn generation_data(object: &Map<String, Value>) -> ResponseData {
    let first_choice = object
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first());
    if let Some(Value::Object(choice)) = first_choice {
        let message = [choice.get("delta"), choice.get("message")]
            .into_iter()
            .flatten()
            .find_map(Value::as_object);
        let data = message.map_or(ResponseData::Empty, message_data);
        if data != ResponseData::Empty {
            return data;
        }
        return match choice.get("text").and_then(content_text) {
            Some(text) => ResponseData::Text(text),
            None => ResponseData::Empty,
        };
    }
    if let Some(Value::Object(token)) = object.get("token") {
        let special = token
            .get("special")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if let (false, Some(text)) = (special, token.get("text").and_then(content_text)) {
            return ResponseData::Text(text);
        }
    }
    ResponseData::Empty
}

/// A chat delta or message. Precedence as AIPerf: reasoning, then tool calls (with any
/// content), then content. Tool-call text (names and arguments) is output the model
/// generated, so it counts as text.
fn message_data(message: &Map<String, Value>) -> ResponseData {
    let content = message.get("content").and_then(content_text);
    let reasoning = ["reasoning_content", "reasoning"]
        .into_iter()
        .filter_map(|key| message.get(key).and_then(content_text))
        .next();
    if let Some(reasoning) = reasoning {
        return ResponseData::Reasoning {
            content: content.unwrap_or_default(),
            reasoning,
        };
    }
    let mut text = content.unwrap_or_default();
    let calls = message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    let functions = calls
        .filter_map(|call| call.get("function"))
        .chain(message.get("function_call"))
        .filter_map(Value::as_object);
    for function in functions {
        for key in ["name", "arguments"] {
            if let Some(Value::String(part)) = function.get(key) {
                text.push_str(part);
            }
        }
    }
    if text.is_empty() {
        ResponseData::Empty
    } else {
        ResponseData::Text(text)
    }
}

/// A non-empty string, or the texts of a list of content parts joined.
fn content_text(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| match part {
                Value::String(s) => Some(s.as_str()),
                Value::Object(part) => part.get("text").and_then(Value::as_str),
                _ => None,
            })
            .collect(),
        _ => return None,
    };
    (!text.is_empty()).then_some(text)
}

/// The top-level `usage` block, when it has anything in it.
fn usage(object: &Map<String, Value>) -> Option<Usage> {
    let usage = object.get("usage")?.as_object()?;
    let count = |value: Option<&Value>| -> Option<u64> {
        match value? {
            Value::Number(n) => n.as_u64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite() && *f >= 0.0)
                    .map(|f| f.round() as u64)
            }),
            _ => None,
        }
    };
    let reasoning = usage
        .get("completion_tokens_details")
        .and_then(|d| d.get("reasoning_tokens"));
    let parsed = Usage {
        prompt_tokens: count(usage.get("prompt_tokens")),
        completion_tokens: count(usage.get("completion_tokens")),
        total_tokens: count(usage.get("total_tokens")),
        reasoning_tokens: count(reasoning),
    };
    (parsed != Usage::default()).then_some(parsed)
}

/// The start of a bad unit, for error messages.
fn snippet(data: &[u8]) -> String {
    let end = data.len().min(SNIPPET_BYTES);
    let mut text = String::from_utf8_lossy(&data[..end]).into_owned();
    if end < data.len() {
        text.push_str("...");
    }
    text
}
