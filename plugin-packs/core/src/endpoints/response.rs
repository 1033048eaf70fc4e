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
    match fast::parse(chunk) {
        Some(parsed) => Ok(Some(parsed)),
        None => parse_generation_by_shape(chunk),
    }
}

/// [`parse_generation`] for every shape: reads a JSON tree field by field.
fn parse_generation_by_shape(
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

/// The common case of [`parse_generation`] without building a JSON tree: a plain OpenAI
/// chat or completions chunk (or body) whose every field is known, read in place by a
/// byte scanner ([`scan`](fast::scan)) with borrowed strings. Anything else (an unknown or
/// error field, tool calls, content parts, TGI tokens, an `error` event, invalid JSON, a
/// list where an object belongs) returns `None` and takes the shape-by-shape path, which
/// then decides exactly as it always did. This is most of the record thread's work per
/// streamed token, so it is what a streamed event costs.
mod fast {
    mod scan;

    use std::borrow::Cow;

    use std::fmt;

    use aiperf_runtime::record::{ParsedResponse, ResponseChunk, ResponseData, Usage};
    use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use serde::{Deserialize, Deserializer};

    /// The fields of a choice the fast path reads.
    struct Choice<'a> {
        delta: Option<Message<'a>>,
        message: Option<Message<'a>>,
        text: Option<Cow<'a, str>>,
    }

    /// The fields of a message (or a delta) the fast path reads.
    struct Message<'a> {
        content: Option<Cow<'a, str>>,
        reasoning_content: Option<Cow<'a, str>>,
        reasoning: Option<Cow<'a, str>>,
        /// Present and not null: the unit goes down the full path.
        tool_calls: Option<IgnoredAny>,
        function_call: Option<IgnoredAny>,
    }

    pub(super) fn parse(chunk: &ResponseChunk) -> Option<ParsedResponse> {
        if chunk.event.is_some() {
            return None;
        }
        // Checked as UTF-8 once: the scanner slices strings out of a `str`.
        let text = std::str::from_utf8(&chunk.data).ok()?;
        let unit = scan::unit(text)?;
        let first = unit.first_choice.as_ref().and_then(Option::as_ref);
        read(chunk, unit.object.as_deref(), first, unit.usage)
    }

    /// The response of a unit with these fields; `None` for what only the full path reads.
    fn read(
        chunk: &ResponseChunk,
        object: Option<&str>,
        first_choice: Option<&Choice<'_>>,
        usage: Option<FastUsage>,
    ) -> Option<ParsedResponse> {
        if object == Some("error") {
            return None;
        }
        if usage.as_ref().is_some_and(FastUsage::needs_full_path) {
            return None;
        }
        let data = match first_choice {
            Some(choice) => choice_data(choice)?,
            None => ResponseData::Empty,
        };
        Some(ParsedResponse {
            recv_ns: chunk.recv_ns,
            data,
            usage: usage.and_then(FastUsage::into_usage),
        })
    }

    /// A `usage` object read as [`super::usage`] reads one: unknown keys are skipped (they
    /// change nothing there either), a count that is not a number counts as absent.
    ///
    /// The `Option<IgnoredAny>` fields are the ones only the full path reads (reasoning
    /// details of the Responses API, every prompt-cache count): any of them that is not
    /// null sends the unit there. A null one reads as no count on both paths, so vLLM's
    /// `"prompt_tokens_details": null` stays here; servers that report cache counts do so
    /// in one usage block per request, which can afford the JSON tree.
    #[derive(Default, Deserialize)]
    struct FastUsage {
        #[serde(default)]
        output_tokens_details: Option<IgnoredAny>,
        #[serde(default)]
        prompt_tokens_details: Option<IgnoredAny>,
        #[serde(default)]
        input_tokens_details: Option<IgnoredAny>,
        #[serde(default)]
        cache_read_input_tokens: Option<IgnoredAny>,
        #[serde(default)]
        cache_creation_input_tokens: Option<IgnoredAny>,
        #[serde(default)]
        prompt_cache_hit_tokens: Option<IgnoredAny>,
        #[serde(default)]
        prompt_cache_miss_tokens: Option<IgnoredAny>,
        #[serde(default, rename = "cachedContentTokenCount")]
        cached_content_token_count: Option<IgnoredAny>,
        #[serde(default, rename = "cacheReadInputTokens")]
        cache_read_input_tokens_camel: Option<IgnoredAny>,
        #[serde(default, rename = "cacheWriteInputTokens")]
        cache_write_input_tokens_camel: Option<IgnoredAny>,
        #[serde(default)]
        cached_tokens: Option<IgnoredAny>,
        #[serde(default, rename = "toolUsePromptTokenCount")]
        tool_use_prompt_token_count: Option<IgnoredAny>,
        #[serde(default)]
        prompt_audio_seconds: Option<IgnoredAny>,
        // Other vendors' names and envelopes (Gemini, Bedrock, Cohere, watsonx).
        #[serde(default, rename = "usageMetadata")]
        usage_metadata: Option<IgnoredAny>,
        #[serde(default)]
        meta: Option<IgnoredAny>,
        #[serde(default)]
        tokens: Option<IgnoredAny>,
        #[serde(default, rename = "promptTokenCount")]
        prompt_token_count: Option<IgnoredAny>,
        #[serde(default, rename = "candidatesTokenCount")]
        candidates_token_count: Option<IgnoredAny>,
        #[serde(default, rename = "totalTokenCount")]
        total_token_count: Option<IgnoredAny>,
        #[serde(default, rename = "thoughtsTokenCount")]
        thoughts_token_count: Option<IgnoredAny>,
        #[serde(default, rename = "inputTokens")]
        input_tokens_camel: Option<IgnoredAny>,
        #[serde(default, rename = "outputTokens")]
        output_tokens_camel: Option<IgnoredAny>,
        #[serde(default, rename = "totalTokens")]
        total_tokens_camel: Option<IgnoredAny>,
        #[serde(default)]
        input_token_count: Option<IgnoredAny>,
        #[serde(default)]
        generated_token_count: Option<IgnoredAny>,
        #[serde(default)]
        prompt_tokens: Count,
        #[serde(default)]
        input_tokens: Count,
        #[serde(default)]
        completion_tokens: Count,
        #[serde(default)]
        output_tokens: Count,
        #[serde(default)]
        total_tokens: Count,
        #[serde(default)]
        completion_tokens_details: Details,
    }

    impl FastUsage {
        /// Whether the full path reads something here that this one does not.
        fn needs_full_path(&self) -> bool {
            [
                &self.output_tokens_details,
                &self.prompt_tokens_details,
                &self.input_tokens_details,
                &self.cache_read_input_tokens,
                &self.cache_creation_input_tokens,
                &self.prompt_cache_hit_tokens,
                &self.prompt_cache_miss_tokens,
                &self.cached_content_token_count,
                &self.cache_read_input_tokens_camel,
                &self.cache_write_input_tokens_camel,
                &self.cached_tokens,
                &self.tool_use_prompt_token_count,
                &self.prompt_audio_seconds,
                &self.usage_metadata,
                &self.meta,
                &self.tokens,
                &self.prompt_token_count,
                &self.candidates_token_count,
                &self.total_token_count,
                &self.thoughts_token_count,
                &self.input_tokens_camel,
                &self.output_tokens_camel,
                &self.total_tokens_camel,
                &self.input_token_count,
                &self.generated_token_count,
            ]
            .iter()
            .any(|field| field.is_some())
        }

        fn into_usage(self) -> Option<Usage> {
            let parsed = Usage {
                prompt_tokens: self.prompt_tokens.0.or(self.input_tokens.0),
                completion_tokens: self.completion_tokens.0.or(self.output_tokens.0),
                total_tokens: self.total_tokens.0,
                reasoning_tokens: self.completion_tokens_details.0.reasoning,
                completion_audio_tokens: self.completion_tokens_details.0.audio,
                accepted_prediction_tokens: self.completion_tokens_details.0.accepted,
                rejected_prediction_tokens: self.completion_tokens_details.0.rejected,
                ..Usage::default()
            };
            (parsed != Usage::default()).then_some(parsed)
        }
    }

    /// A token count: a non-negative integer, or a finite non-negative float rounded; any
    /// other JSON value is read (and skipped) as no count.
    #[derive(Default)]
    struct Count(Option<u64>);

    impl<'de> Deserialize<'de> for Count {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer
                .deserialize_any(Lenient { details: false })
                .map(|(count, _)| Count(count))
        }
    }

    /// `completion_tokens_details`: its counts when it is an object.
    #[derive(Default)]
    struct Details(DetailCounts);

    #[derive(Default, Clone, Copy)]
    struct DetailCounts {
        reasoning: Option<u64>,
        audio: Option<u64>,
        accepted: Option<u64>,
        rejected: Option<u64>,
    }

    impl<'de> Deserialize<'de> for Details {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer
                .deserialize_any(Lenient { details: true })
                .map(|(_, counts)| Details(counts))
        }
    }

    /// Accepts any JSON value, as a tree lookup would, and keeps only what it looks for: a
    /// number ([`Count`]) or an object's counts ([`Details`]).
    struct Lenient {
        details: bool,
    }

    impl Lenient {
        fn number(&self, count: Option<u64>) -> (Option<u64>, DetailCounts) {
            (count.filter(|_| !self.details), DetailCounts::default())
        }
    }

    impl<'de> Visitor<'de> for Lenient {
        type Value = (Option<u64>, DetailCounts);

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(self.number(Some(v)))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(self.number(u64::try_from(v).ok()))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            // Saturating cast of a finite non-negative float, as `super::usage` does.
            Ok(self.number((v.is_finite() && v >= 0.0).then(|| v.round() as u64)))
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(self.number(None))
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(self.number(None))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(self.number(None))
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(self.number(None))
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(self.number(None))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            // A repeated key: the last one counts, as in a JSON tree.
            let mut counts = DetailCounts::default();
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                let slot = match &*key {
                    _ if !self.details => None,
                    "reasoning_tokens" => Some(&mut counts.reasoning),
                    "audio_tokens" => Some(&mut counts.audio),
                    "accepted_prediction_tokens" => Some(&mut counts.accepted),
                    "rejected_prediction_tokens" => Some(&mut counts.rejected),
                    _ => None,
                };
                match slot {
                    Some(slot) => *slot = map.next_value::<Count>()?.0,
                    None => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok((None, counts))
        }
    }

    /// A field's text when it has any.
    fn text<'s>(field: &'s Option<Cow<'_, str>>) -> Option<&'s str> {
        field.as_deref().filter(|t| !t.is_empty())
    }

    /// As `generation_data` reads a first choice; `None` for what only it can read.
    fn choice_data(choice: &Choice<'_>) -> Option<ResponseData> {
        if let Some(message) = choice.delta.as_ref().or(choice.message.as_ref()) {
            if message.tool_calls.is_some() || message.function_call.is_some() {
                return None;
            }
            let reasoning = text(&message.reasoning_content).or(text(&message.reasoning));
            if let Some(reasoning) = reasoning {
                return Some(ResponseData::Reasoning {
                    content: text(&message.content).unwrap_or_default().to_owned(),
                    reasoning: reasoning.to_owned(),
                });
            }
            if let Some(content) = text(&message.content) {
                return Some(ResponseData::Text(content.to_owned()));
            }
        }
        Some(match choice.text.as_deref().filter(|t| !t.is_empty()) {
            Some(text) => ResponseData::Text(text.to_owned()),
            None => ResponseData::Empty,
        })
    }
}

/// An embeddings body: `data[]` of `{"object":"embedding", "embedding":[...]}` items.
///
/// Its `usage` block is not read: AIPerf 0.13's embeddings parser ignores it, so a run
/// reports no server usage (`usage_*` metrics, the Usage table) for these endpoints.
pub(crate) fn parse_embeddings(
    chunk: &ResponseChunk,
) -> Result<Option<ParsedResponse>, ErrorDetails> {
    let Some(object) = decode(chunk)? else {
        return Ok(None);
    };
    let items = match object.get("data") {
        Some(Value::Array(items)) if !items.is_empty() => items,
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
        usage: None,
    }))
}

/// The unit's JSON object; `None` for units that carry nothing (`[DONE]`, empty data,
/// JSON that is not an object); `Err` for in-band errors and invalid JSON.
fn decode(chunk: &ResponseChunk) -> Result<Option<Map<String, Value>>, ErrorDetails> {
    Ok(match decode_value(chunk)? {
        Some(Value::Object(object)) => Some(object),
        _ => None,
    })
}

/// The unit's JSON value of any shape (rerankers answer with a bare list); `None` for
/// `[DONE]` and empty data; `Err` for in-band errors and invalid JSON.
pub(crate) fn decode_value(chunk: &ResponseChunk) -> Result<Option<Value>, ErrorDetails> {
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
            None => Ok(Some(Value::Object(object))),
        },
        Ok(value) => Ok(Some(value)),
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
pub(crate) fn usage(object: &Map<String, Value>) -> Option<Usage> {
    usage_counts(object.get("usage")?.as_object()?)
}

/// Envelopes some vendors put their counts in, lifted to the top as AIPerf's `Usage`
/// does (a key already at the top wins): Gemini's `usageMetadata`, Cohere v1's
/// `meta.tokens` (and `meta.cached_tokens`), Cohere v2's `tokens`.
fn unwrapped(usage: &Map<String, Value>) -> std::borrow::Cow<'_, Map<String, Value>> {
    let meta = usage.get("meta").and_then(Value::as_object);
    let lifted: Vec<&Map<String, Value>> = [
        usage.get("usageMetadata").and_then(Value::as_object),
        meta.and_then(|m| m.get("tokens"))
            .and_then(Value::as_object),
        usage.get("tokens").and_then(Value::as_object),
    ]
    .into_iter()
    .flatten()
    .collect();
    let meta_cached = meta.and_then(|m| m.get("cached_tokens"));
    if lifted.is_empty() && meta_cached.is_none() {
        return std::borrow::Cow::Borrowed(usage);
    }
    let mut view = usage.clone();
    for envelope in lifted {
        for (key, value) in envelope {
            view.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    if let Some(cached) = meta_cached {
        view.entry("cached_tokens")
            .or_insert_with(|| cached.clone());
    }
    std::borrow::Cow::Owned(view)
}

/// The counts of a `usage` block, when it has any.
pub(crate) fn usage_counts(usage: &Map<String, Value>) -> Option<Usage> {
    let usage = &*unwrapped(usage);
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
    // The Responses API names the details `output_tokens_details` (and
    // `input_tokens_details`).
    let completion_detail = |field: &str| {
        ["completion_tokens_details", "output_tokens_details"]
            .into_iter()
            .find_map(|key| count(usage.get(key)?.get(field)))
    };
    let prompt_detail = |field: &str| {
        ["prompt_tokens_details", "input_tokens_details"]
            .into_iter()
            .find_map(|key| count(usage.get(key)?.get(field)))
    };
    // Gemini's reasoning count is at the top.
    let reasoning =
        completion_detail("reasoning_tokens").or(count(usage.get("thoughtsTokenCount")));
    // Image, Responses and Anthropic APIs name them `input_tokens`/`output_tokens`, Bedrock
    // `inputTokens`. Anthropic's and Bedrock's leave out what was read from or written to
    // the prompt cache: AIPerf adds those back, so the count is the whole prompt.
    let input = |key: &str| {
        let input = count(usage.get(key))?;
        let cached = [
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
            "cacheReadInputTokens",
            "cacheWriteInputTokens",
        ]
        .into_iter()
        .filter_map(|key| usage.get(key)?.as_u64())
        .fold(0u64, u64::saturating_add);
        Some(input.saturating_add(cached))
    };
    // As AIPerf's `Usage`: the first of a list of synonyms that is there decides, even
    // when its value is no count.
    let first = |keys: &[&str]| count(keys.iter().find_map(|key| usage.get(*key)));
    // OpenAI's nested count first (Responses: `input_tokens_details`), then the vendors'
    // top-level ones: Anthropic, DeepSeek, Gemini, Bedrock, Cohere.
    let cache_read = ["prompt_tokens_details", "input_tokens_details"]
        .into_iter()
        .find_map(|key| usage.get(key)?.as_object()?.get("cached_tokens"))
        .and_then(|value| count(Some(value)))
        .or_else(|| {
            first(&[
                "cache_read_input_tokens",
                "prompt_cache_hit_tokens",
                "cachedContentTokenCount",
                "cacheReadInputTokens",
                "cached_tokens",
            ])
        });
    // The vendors' names, in AIPerf's order: OpenAI's, Anthropic's and Cohere's, Gemini's,
    // Bedrock's, watsonx's.
    let prompt = count(usage.get("prompt_tokens"))
        .or_else(|| input("input_tokens"))
        .or(count(usage.get("promptTokenCount")))
        .or_else(|| input("inputTokens"))
        .or(count(usage.get("input_token_count")));
    let completion = [
        "completion_tokens",
        "output_tokens",
        "candidatesTokenCount",
        "outputTokens",
        "generated_token_count",
    ]
    .into_iter()
    .find_map(|key| count(usage.get(key)));
    let total = ["total_tokens", "totalTokenCount", "totalTokens"]
        .into_iter()
        .find_map(|key| count(usage.get(key)));
    let parsed = Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: total,
        reasoning_tokens: reasoning,
        prompt_cache_read_tokens: cache_read,
        prompt_cache_write_tokens: first(&["cache_creation_input_tokens", "cacheWriteInputTokens"]),
        prompt_cache_miss_tokens: first(&["prompt_cache_miss_tokens"]),
        prompt_audio_tokens: prompt_detail("audio_tokens"),
        completion_audio_tokens: completion_detail("audio_tokens"),
        accepted_prediction_tokens: completion_detail("accepted_prediction_tokens"),
        rejected_prediction_tokens: completion_detail("rejected_prediction_tokens"),
        tool_use_prompt_tokens: first(&["toolUsePromptTokenCount"]),
        // A duration, read as any finite number (Mistral sends `{}` when there is none).
        prompt_audio_seconds: usage
            .get("prompt_audio_seconds")
            .and_then(Value::as_f64)
            .filter(|s| s.is_finite()),
    };
    (parsed != Usage::default()).then_some(parsed)
}

/// The start of a bad unit, for error messages.
pub(crate) fn snippet(data: &[u8]) -> String {
    let end = data.len().min(SNIPPET_BYTES);
    let mut text = String::from_utf8_lossy(&data[..end]).into_owned();
    if end < data.len() {
        text.push_str("...");
    }
    text
}

// ------------------------------------------------------------------ other endpoints

fn parsed(chunk: &ResponseChunk, data: ResponseData, usage: Option<Usage>) -> ParsedResponse {
    ParsedResponse {
        recv_ns: chunk.recv_ns,
        data,
        usage,
    }
}

/// A unit that carried no data: kept only for its usage block.
fn usage_only(chunk: &ResponseChunk, usage: Option<Usage>) -> Option<ParsedResponse> {
    usage.map(|u| parsed(chunk, ResponseData::Empty, Some(u)))
}

/// Embeddings in any of the shapes servers use (chat-style embeddings answer like
/// `/v1/embeddings`): `data[]` items of `object: "embedding"`, or `embeddings: [[...]]`,
/// or `embedding: [...]`. Usage is not read, as AIPerf 0.13 does not read it here.
pub(crate) fn parse_embeddings_any(
    chunk: &ResponseChunk,
) -> Result<Option<ParsedResponse>, ErrorDetails> {
    let Some(object) = decode(chunk)? else {
        return Ok(None);
    };
    Ok(embeddings_in(&object).map(|count| parsed(chunk, ResponseData::Embeddings { count }, None)))
}

/// How many embeddings an object carries, if it carries any.
fn embeddings_in(object: &Map<String, Value>) -> Option<usize> {
    if let Some(Value::Array(items)) = object.get("data") {
        let first_is_embedding = items
            .first()
            .and_then(|i| i.get("object"))
            .and_then(Value::as_str)
            == Some("embedding");
        if first_is_embedding {
            let count = items
                .iter()
                .filter(|i| i.get("embedding").is_some())
                .count();
            return (count > 0).then_some(count);
        }
    }
    ["embeddings", "embedding"]
        .into_iter()
        .find_map(|key| match object.get(key) {
            Some(Value::Array(values)) => match values.first() {
                Some(Value::Number(_)) => Some(1),
                Some(Value::Array(_)) => Some(values.len()),
                _ => None,
            },
            _ => None,
        })
}

/// Where a reranker puts its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RankingsShape {
    /// NIM: `{"rankings":[{"index","logit"}]}`.
    Nim,
    /// Cohere: `{"results":[{"index","relevance_score"}]}`.
    Cohere,
    /// Hugging Face TEI: a bare `[{"index","score"}]`, or under `results`.
    Tei,
}

/// A rankings body; no results is no content. Usage is not read, as AIPerf 0.13's
/// rankings parser does not read it.
pub(crate) fn parse_rankings(
    chunk: &ResponseChunk,
    shape: RankingsShape,
) -> Result<Option<ParsedResponse>, ErrorDetails> {
    let Some(value) = decode_value(chunk)? else {
        return Ok(None);
    };
    let list = match (&value, shape) {
        (Value::Array(items), RankingsShape::Tei) => Some(items),
        (Value::Object(object), _) => {
            let key = match shape {
                RankingsShape::Nim => "rankings",
                RankingsShape::Cohere | RankingsShape::Tei => "results",
            };
            object.get(key).and_then(Value::as_array)
        }
        _ => None,
    };
    // Cohere results that are not objects cannot be results (AIPerf skips them).
    let count = list.map_or(0, |items| match shape {
        RankingsShape::Cohere => items.iter().filter(|i| i.is_object()).count(),
        RankingsShape::Nim | RankingsShape::Tei => items.len(),
    });
    Ok((count > 0).then(|| parsed(chunk, ResponseData::Rankings { count }, None)))
}

/// Hugging Face TGI: a stream event's `token.text` (special tokens are not text), or a
/// body's `generated_text` (an object, or a list of them).
pub(crate) fn parse_tgi(chunk: &ResponseChunk) -> Result<Option<ParsedResponse>, ErrorDetails> {
    let Some(value) = decode_value(chunk)? else {
        return Ok(None);
    };
    let object = match &value {
        Value::Object(object) => object,
        Value::Array(items) => match items.first() {
            Some(Value::Object(object)) => object,
            _ => return Ok(None),
        },
        _ => return Ok(None),
    };
    let data = match object.get("token") {
        // A stream event: its last one also repeats the whole `generated_text`.
        Some(Value::Object(token)) => {
            let special = token.get("special").and_then(Value::as_bool) == Some(true);
            match token.get("text").and_then(content_text) {
                Some(text) if !special => ResponseData::Text(text),
                _ => ResponseData::Empty,
            }
        }
        _ => match object.get("generated_text").and_then(content_text) {
            Some(text) => ResponseData::Text(text),
            None => ResponseData::Empty,
        },
    };
    let usage = usage(object);
    Ok(match data {
        ResponseData::Empty => usage_only(chunk, usage),
        data => Some(parsed(chunk, data, usage)),
    })
}

/// Image generation: a stream event's top-level `b64_json` (partial or final image), or
/// a body's `data[]` of `{url | b64_json, revised_prompt}`.
pub(crate) fn parse_images(chunk: &ResponseChunk) -> Result<Option<ParsedResponse>, ErrorDetails> {
    let Some(object) = decode(chunk)? else {
        return Ok(None);
    };
    let present = |item: &Map<String, Value>, key: &str| {
        item.get(key)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    let count = if present(&object, "b64_json") || present(&object, "url") {
        1
    } else {
        match object.get("data") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_object)
                .filter(|item| present(item, "b64_json") || present(item, "url"))
                .count(),
            _ => 0,
        }
    };
    let usage = usage(&object);
    Ok(if count > 0 {
        Some(parsed(chunk, ResponseData::Images { count }, usage))
    } else {
        usage_only(chunk, usage)
    })
}

/// A video job as `POST /v1/videos` and `GET /v1/videos/{id}` return it: `completed` is
/// the content, `failed` an error, anything else (`queued`, `in_progress`) progress.
pub(crate) fn parse_video_job(
    chunk: &ResponseChunk,
) -> Result<Option<ParsedResponse>, ErrorDetails> {
    // A failed job is AIPerf's video error whatever its `error` field holds, which the
    // generic in-band check below would otherwise report as the server's own.
    if chunk.event.is_none() {
        if let Ok(Value::Object(job)) = serde_json::from_slice::<Value>(chunk.data.trim_ascii()) {
            if job.get("status").and_then(Value::as_str) == Some("failed") {
                return Err(video_failure(&job));
            }
        }
    }
    let Some(object) = decode(chunk)? else {
        return Ok(None);
    };
    let data = match object.get("status").and_then(Value::as_str) {
        Some("completed") => ResponseData::Videos {
            count: 1,
            inference_time_s: object.get("inference_time_s").and_then(Value::as_f64),
            peak_memory_mb: object.get("peak_memory_mb").and_then(Value::as_f64),
        },
        Some("failed") => return Err(video_failure(&object)),
        _ => ResponseData::Empty,
    };
    Ok(Some(parsed(chunk, data, usage(&object))))
}

/// The error of a failed video job, as AIPerf's transport reports one: code 500 and its
/// `error`'s message (the error itself when it is not an object, as Python's `str`
/// writes it).
pub(crate) fn video_failure(object: &Map<String, Value>) -> ErrorDetails {
    let message = match object.get("error") {
        None => "Unknown error".to_owned(),
        Some(Value::Object(e)) => e
            .get("message")
            .map_or_else(|| "Unknown error".to_owned(), python_str),
        Some(other) => python_str(other),
    };
    ErrorDetails::new(
        Some(500),
        "VideoGenerationError",
        format!("Video generation failed: {message}"),
    )
}

/// A JSON value as Python's `str()` writes the object `json.loads` made of it (for the
/// scalars a server puts in an error; containers as JSON).
fn python_str(value: &Value) -> String {
    match value {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// SOLIDO RAG: `content` (with `sources`, which are not output).
pub(crate) fn parse_solido(chunk: &ResponseChunk) -> Result<Option<ParsedResponse>, ErrorDetails> {
    let Some(object) = decode(chunk)? else {
        return Ok(None);
    };
    let usage = usage(&object);
    Ok(match object.get("content").and_then(content_text) {
        Some(text) => Some(parsed(chunk, ResponseData::Text(text), usage)),
        None => usage_only(chunk, usage),
    })
}

/// AIPerf's auto-detection for custom APIs: embeddings, then rankings, then text.
pub(crate) fn detect(value: &Value) -> ResponseData {
    let Value::Object(object) = value else {
        return convert(value);
    };
    if let Some(count) = embeddings_in(object) {
        return ResponseData::Embeddings { count };
    }
    for key in ["rankings", "results"] {
        if let Some(Value::Array(items)) = object.get(key) {
            return ResponseData::Rankings { count: items.len() };
        }
    }
    for key in ["text", "content", "response", "output", "result"] {
        match object.get(key) {
            Some(Value::String(s)) => return text_data(s),
            Some(Value::Array(items)) if !items.is_empty() => {
                let parts: Option<String> = items.iter().map(Value::as_str).collect();
                if let Some(text) = parts {
                    return text_data(&text);
                }
            }
            _ => {}
        }
    }
    // OpenAI shapes: choices[0].text, .message.content, .delta.content.
    generation_data(object)
}

/// AIPerf's conversion of an extracted value: a list of number lists (or one list of
/// numbers) is embeddings, a list of objects rankings, a string text.
pub(crate) fn convert(value: &Value) -> ResponseData {
    match value {
        Value::String(s) => text_data(s),
        Value::Array(items) => match items.first() {
            Some(Value::Array(inner)) if inner.first().is_some_and(Value::is_number) => {
                ResponseData::Embeddings { count: items.len() }
            }
            Some(Value::Number(_)) => ResponseData::Embeddings { count: 1 },
            Some(Value::Object(_)) => ResponseData::Rankings { count: items.len() },
            _ => ResponseData::Empty,
        },
        _ => ResponseData::Empty,
    }
}

fn text_data(text: &str) -> ResponseData {
    if text.is_empty() {
        ResponseData::Empty
    } else {
        ResponseData::Text(text.to_owned())
    }
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;

    fn chunk(event: Option<&str>, data: &str) -> ResponseChunk {
        ResponseChunk {
            recv_ns: 7,
            first_byte_ns: 7,
            event: event.map(str::to_owned),
            data: data.into(),
        }
    }

    /// Where the fast path answers, it answers as the shape-by-shape path does.
    #[test]
    fn fast_path_agrees_with_the_shape_path() {
        let units = [
            (
                true,
                r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
            ),
            (
                true,
                r#"{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" the"},"finish_reason":null,"logprobs":null}]}"#,
            ),
            (
                true,
                r#"{"choices":[{"index":0,"delta":{"content":"a\"b\u00e9\n"}}]}"#,
            ),
            (
                true,
                r#"{"choices":[{"delta":{"content":"x","reasoning_content":"think"}}]}"#,
            ),
            (
                true,
                r#"{"choices":[{"delta":{"content":null,"reasoning":"why"}}]}"#,
            ),
            (
                true,
                r#"{"choices":[{"delta":{"reasoning_content":"","reasoning":"r"}}]}"#,
            ),
            (
                true,
                r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}}"#,
            ),
            (
                true,
                r#"{"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2.0,"total_tokens":9,"completion_tokens_details":{"reasoning_tokens":1}}}"#,
            ),
            (
                true,
                r#"{"object":"text_completion","choices":[{"index":0,"text":"4","finish_reason":"stop"}]}"#,
            ),
            (
                true,
                r#"{"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hi there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3}}"#,
            ),
            (
                true,
                r#"{"choices":[{"delta":null,"message":{"content":"m"}}]}"#,
            ),
            (true, r#"{"choices":[{"delta":{"content":""},"text":"t"}]}"#),
            (true, r#"{}"#),
            // Usage blocks of every kind: each count is read as the JSON-tree path reads it.
            (
                true,
                r#"{"choices":[],"usage":{"input_tokens":5,"output_tokens":3.6,"total_tokens":-1}}"#,
            ),
            (
                true,
                r#"{"usage":{"prompt_tokens":"7","completion_tokens":null,"total_tokens":[1],"x":{"y":[2]}}}"#,
            ),
            (
                true,
                concat!(
                    r#"{"usage":{"prompt_tokens":2,"prompt_tokens_details":null,"#,
                    r#""completion_tokens_details":null}}"#,
                ),
            ),
            (
                true,
                r#"{"usage":{"completion_tokens":4,"completion_tokens_details":[{"reasoning_tokens":1}]}}"#,
            ),
            (
                true,
                r#"{"usage":{"completion_tokens_details":{"reasoning_tokens":2,"reasoning_tokens":3}}}"#,
            ),
            (
                true,
                r#"{"usage":{"completion_tokens":1e300,"completion_tokens_details":{"reasoning_tokens":1.2}}}"#,
            ),
            (true, r#"{"usage":{}}"#),
            (true, r#"{"usage":null}"#),
            // OpenAI's completion details: audio and predicted-output counts, on both paths.
            (
                true,
                concat!(
                    r#"{"usage":{"completion_tokens":9,"completion_tokens_details":"#,
                    r#"{"reasoning_tokens":1,"audio_tokens":2,"accepted_prediction_tokens":3,"#,
                    r#""rejected_prediction_tokens":4.4,"other":{"x":1}}}}"#,
                ),
            ),
            (
                true,
                concat!(
                    r#"{"usage":{"completion_tokens_details":"#,
                    r#"{"audio_tokens":null,"accepted_prediction_tokens":"3"}}}"#,
                ),
            ),
            // Other vendors' names and envelopes are the full path's.
            (
                false,
                r#"{"usage":{"usageMetadata":{"promptTokenCount":3}}}"#,
            ),
            (
                false,
                r#"{"usage":{"tokens":{"input_tokens":3},"cached_tokens":2}}"#,
            ),
            (
                false,
                r#"{"usage":{"inputTokens":3,"outputTokens":1,"totalTokens":4}}"#,
            ),
            // Gemini's tool-use count and Mistral's audio seconds are the full path's.
            (
                false,
                r#"{"usage":{"prompt_tokens":3,"toolUsePromptTokenCount":2}}"#,
            ),
            (
                false,
                r#"{"usage":{"prompt_tokens":3,"prompt_audio_seconds":{}}}"#,
            ),
            // Shapes only the full path reads (or rejects).
            (
                false,
                r#"{"choices":[],"usage":{"input_tokens":5,"cache_read_input_tokens":2}}"#,
            ),
            // A null cache count is no count: both paths read it alike.
            (true, r#"{"usage":{"cache_creation_input_tokens":null}}"#),
            (
                true,
                concat!(
                    r#"{"usage":{"prompt_tokens":2,"prompt_tokens_details":null,"#,
                    r#""cached_tokens":null}}"#,
                ),
            ),
            // Cache counts, in any vendor's shape, are the full path's.
            (
                false,
                concat!(
                    r#"{"choices":[],"usage":{"prompt_tokens":32,"#,
                    r#""prompt_tokens_details":{"cached_tokens":7}}}"#,
                ),
            ),
            (
                false,
                concat!(
                    r#"{"usage":{"prompt_tokens":9,"prompt_cache_hit_tokens":4,"#,
                    r#""prompt_cache_miss_tokens":5}}"#,
                ),
            ),
            (false, r#"{"usage":{"prompt_tokens_details":{}}}"#),
            (false, r#"{"usage":{"cachedContentTokenCount":3}}"#),
            (
                false,
                r#"{"usage":{"output_tokens":3,"output_tokens_details":{"reasoning_tokens":1}}}"#,
            ),
            (false, r#"{"usage":{"prompt_tokens":1,"prompt_tokens":2}}"#),
            (false, r#"{"usage":3}"#),
            (
                false,
                r#"{"error":{"message":"upstream timed out","type":"GatewayTimeout","code":504}}"#,
            ),
            (
                false,
                r#"{"object":"error","message":"bad","type":"BadRequest","code":400}"#,
            ),
            (
                false,
                r#"{"choices":[{"delta":{"tool_calls":[{"function":{"name":"f","arguments":"{}"}}]}}]}"#,
            ),
            (
                false,
                r#"{"choices":[{"delta":{"content":[{"type":"text","text":"parts"}]}}]}"#,
            ),
            (
                false,
                r#"{"token":{"id":1,"text":"Hi","special":false},"generated_text":null}"#,
            ),
            (
                false,
                r#"{"choices":[{"delta":{"content":"x"},"extra":1}]}"#,
            ),
            (
                false,
                r#"{"choices":[{"delta":{"content":"x"}}],"choices":[]}"#,
            ),
            (false, r#"{"choices":[{"delta":{"content":"x"}"#),
            (false, r#"[1,2]"#),
        ];
        for (fast, data) in units {
            let c = chunk(None, data);
            assert_eq!(fast::parse(&c).is_some(), fast, "{data}");
            assert_eq!(
                parse_generation(&c),
                parse_generation_by_shape(&c),
                "{data}"
            );
        }
        // Anthropic's cache counts join its input count; the Responses API's reasoning
        // count is in `output_tokens_details`.
        let usage = |data: &str| parse_generation(&chunk(None, data)).unwrap().unwrap().usage;
        let cached = r#"{"usage":{"input_tokens":5,"cache_read_input_tokens":2,
            "cache_creation_input_tokens":3,"output_tokens":1}}"#;
        assert_eq!(usage(cached).unwrap().prompt_tokens, Some(10));
        let both = r#"{"usage":{"prompt_tokens":4,"input_tokens":5,"cache_read_input_tokens":2}}"#;
        assert_eq!(usage(both).unwrap().prompt_tokens, Some(4));
        let details =
            r#"{"usage":{"output_tokens":3,"output_tokens_details":{"reasoning_tokens":1}}}"#;
        assert_eq!(usage(details).unwrap().reasoning_tokens, Some(1));
        // Every count AIPerf's usage reads, each where its vendor puts it.
        let extras = concat!(
            r#"{"usage":{"prompt_tokens":20,"completion_tokens":9,"#,
            r#""prompt_tokens_details":{"cached_tokens":5,"audio_tokens":6},"#,
            r#""completion_tokens_details":{"reasoning_tokens":1,"audio_tokens":2,"#,
            r#""accepted_prediction_tokens":3,"rejected_prediction_tokens":4},"#,
            r#""toolUsePromptTokenCount":7,"prompt_audio_seconds":1.5}}"#,
        );
        assert_eq!(
            usage(extras),
            Some(Usage {
                prompt_tokens: Some(20),
                completion_tokens: Some(9),
                reasoning_tokens: Some(1),
                prompt_cache_read_tokens: Some(5),
                prompt_audio_tokens: Some(6),
                completion_audio_tokens: Some(2),
                accepted_prediction_tokens: Some(3),
                rejected_prediction_tokens: Some(4),
                tool_use_prompt_tokens: Some(7),
                prompt_audio_seconds: Some(1.5),
                ..Usage::default()
            })
        );
        // Gemini's envelope and names, Cohere's v1 and v2 envelopes, Bedrock's names (its
        // input leaves the cache out, as Anthropic's), watsonx's.
        let gemini = r#"{"usage":{"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":4,
            "totalTokenCount":9,"thoughtsTokenCount":2,"toolUsePromptTokenCount":5}}}"#;
        assert_eq!(
            usage(gemini),
            Some(Usage {
                prompt_tokens: Some(3),
                completion_tokens: Some(4),
                total_tokens: Some(9),
                reasoning_tokens: Some(2),
                tool_use_prompt_tokens: Some(5),
                ..Usage::default()
            })
        );
        let cohere_v2 =
            r#"{"usage":{"tokens":{"input_tokens":3,"output_tokens":4},"cached_tokens":2}}"#;
        let v2 = usage(cohere_v2).unwrap();
        assert_eq!(
            (
                v2.prompt_tokens,
                v2.completion_tokens,
                v2.prompt_cache_read_tokens
            ),
            (Some(3), Some(4), Some(2))
        );
        let cohere_v1 = concat!(
            r#"{"usage":{"meta":{"tokens":{"input_tokens":6,"output_tokens":1},"#,
            r#""cached_tokens":1}}}"#,
        );
        let v1 = usage(cohere_v1).unwrap();
        assert_eq!(
            (
                v1.prompt_tokens,
                v1.completion_tokens,
                v1.prompt_cache_read_tokens
            ),
            (Some(6), Some(1), Some(1))
        );
        let bedrock = concat!(
            r#"{"usage":{"inputTokens":3,"outputTokens":1,"totalTokens":9,"#,
            r#""cacheReadInputTokens":5}}"#,
        );
        let b = usage(bedrock).unwrap();
        assert_eq!(
            (b.prompt_tokens, b.completion_tokens, b.total_tokens),
            (Some(8), Some(1), Some(9))
        );
        let watsonx = r#"{"usage":{"input_token_count":7,"generated_token_count":2}}"#;
        let w = usage(watsonx).unwrap();
        assert_eq!((w.prompt_tokens, w.completion_tokens), (Some(7), Some(2)));
        // A key at the top wins over the same key in an envelope.
        let both = r#"{"usage":{"prompt_tokens":1,"usageMetadata":{"prompt_tokens":9}}}"#;
        assert_eq!(usage(both).unwrap().prompt_tokens, Some(1));
        // Mistral's `{}` for no audio is no duration.
        let no_audio = r#"{"usage":{"prompt_tokens":3,"prompt_audio_seconds":{}}}"#;
        assert_eq!(usage(no_audio).unwrap().prompt_audio_seconds, None);
        // An `error` event is never the fast path's, whatever its data.
        let c = chunk(Some("error"), units[1].1);
        assert!(fast::parse(&c).is_none());
        assert!(parse_generation(&c).is_err());
    }

    /// A small deterministic generator of JSON-ish text for the scanner's test.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: u64) -> usize {
            (self.next() % n) as usize
        }
        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len() as u64)]
        }
        fn ws(&mut self) -> &'static str {
            self.pick(&["", "", "", " ", "\n", "\t ", "\r\n  "])
        }
        fn string(&mut self) -> String {
            // One string in five has escapes (valid or not, surrogates paired or not) or
            // a raw control byte.
            let body = if self.below(5) == 0 {
                self.pick(&[
                    "a\\\"b",
                    "\\n\\n",
                    "\\u00e9t\\u00E9",
                    "\\ud83d\\ude00",
                    "\\ud800",
                    "\\udc00x",
                    "\\/\\\\\\b\\f\\r\\t",
                    "\\x",
                    "\\u12",
                    "\\u12g4",
                    "end\\",
                    "\u{1}",
                    "tab\there",
                    "\\\"error\\\"",
                ])
            } else {
                self.pick(&[
                    "",
                    " the",
                    "x",
                    "Hi there",
                    "é日本",
                    "stop",
                    "error",
                    "assistant",
                    "{}",
                    "[1,2]",
                    "a:b,c",
                ])
            };
            format!("\"{body}\"")
        }
        fn value(&mut self, depth: usize) -> String {
            // One value in twenty is something JSON does not allow.
            if self.below(20) == 0 {
                return self
                    .pick(&[
                        "01", "1.", "1e", ".5", "+1", "-", "00", "nul", "tru", "nulll", "'x'",
                    ])
                    .to_owned();
            }
            match self.below(if depth > 2 { 4 } else { 7 }) {
                0 => self.string(),
                1 => self
                    .pick(&[
                        "0", "-1", "17", "1.5", "-0.5E-3", "1e5", "1e+2", "2E-0", "-0",
                    ])
                    .to_owned(),
                2 => self.pick(&["true", "false", "null"]).to_owned(),
                3 => "null".to_owned(),
                4 | 5 => {
                    let n = self.below(3);
                    let items: Vec<String> = (0..n).map(|_| self.value(depth + 1)).collect();
                    format!("[{}{}]", self.ws(), items.join(","))
                }
                _ => {
                    let n = self.below(3);
                    let keys = ["a", "b", "a", "reasoning_tokens", "\\u0061b", "b\\q"];
                    let fields: Vec<String> = (0..n)
                        .map(|_| {
                            let key = self.pick(&keys);
                            format!("\"{key}\"{}:{}", self.ws(), self.value(depth + 1))
                        })
                        .collect();
                    format!("{{{}}}", fields.join(","))
                }
            }
        }
        /// An object of some of `keys`, each once, in any order; now and then a key twice
        /// or one the struct does not have.
        fn object(
            &mut self,
            keys: &[&str],
            value: &mut impl FnMut(&mut Self, &str) -> String,
        ) -> String {
            let mut chosen: Vec<&str> = keys.to_vec();
            for i in (1..chosen.len()).rev() {
                let j = self.below(i as u64 + 1);
                chosen.swap(i, j);
            }
            chosen.truncate(self.below(keys.len().min(5) as u64 + 1));
            if self.below(20) == 0 && !chosen.is_empty() {
                chosen.push(chosen[0]);
            }
            if self.below(20) == 0 {
                chosen.push("unknown");
            }
            let fields: Vec<String> = chosen
                .into_iter()
                .map(|key| {
                    let (a, b) = (self.ws(), self.ws());
                    let val = value(self, key);
                    // Now and then the key is written with an escape (serde unescapes it
                    // before it matches the field).
                    let written = match key.chars().next() {
                        Some(c) if self.below(30) == 0 => {
                            format!("\\u{:04x}{}", c as u32, &key[c.len_utf8()..])
                        }
                        _ => key.to_owned(),
                    };
                    format!("{a}\"{written}\"{b}:{}{val}", self.ws())
                })
                .collect();
            format!("{{{}{}}}", fields.join(","), self.ws())
        }
        fn message(&mut self) -> String {
            let keys = [
                "content",
                "reasoning_content",
                "reasoning",
                "role",
                "refusal",
                "annotations",
                "tool_calls",
                "function_call",
            ];
            self.object(&keys, &mut |g, key| match key {
                "content" | "reasoning_content" | "reasoning" if g.below(4) > 0 => g.string(),
                "tool_calls" | "function_call" if g.below(2) == 0 => "null".to_owned(),
                _ => g.value(1),
            })
        }
        fn choice(&mut self) -> String {
            let keys = [
                "delta",
                "message",
                "text",
                "index",
                "finish_reason",
                "stop_reason",
                "logprobs",
                "matched_stop",
                "token_ids",
            ];
            self.object(&keys, &mut |g, key| match key {
                "delta" | "message" if g.below(5) > 0 => g.message(),
                "text" if g.below(3) > 0 => g.string(),
                _ => g.value(1),
            })
        }
        /// A unit as servers send them: a first choice with text, in any key order.
        fn plausible(&mut self) -> String {
            let content = self.string();
            let field = self.pick(&["content", "reasoning_content", "reasoning"]);
            let inner = self.pick(&["delta", "message"]);
            let finish = self.pick(&["null", "\"stop\"", "\"length\""]);
            let mut choice = vec![
                format!("\"{inner}\":{{\"role\":\"assistant\",\"{field}\":{content}}}"),
                "\"index\":0".to_owned(),
                format!("\"finish_reason\":{finish}"),
            ];
            let mut unit = vec![
                "\"id\":\"chatcmpl-1\"".to_owned(),
                format!("\"created\":{}", self.below(2_000_000_000)),
                "\"model\":\"m\"".to_owned(),
                format!("\"object\":{}", self.string()),
            ];
            if self.below(3) == 0 {
                let n = self.below(50);
                unit.push(format!(
                    "\"usage\":{{\"prompt_tokens\":{n},\"total_tokens\":{n}}}"
                ));
            }
            for fields in [&mut choice, &mut unit] {
                for i in (1..fields.len()).rev() {
                    let j = self.below(i as u64 + 1);
                    fields.swap(i, j);
                }
            }
            let choices = format!("\"choices\":[{{{}}}]", choice.join(","));
            unit.insert(self.below(unit.len() as u64 + 1), choices);
            format!("{{{}}}", unit.join(&format!(",{}", self.ws())))
        }
        fn unit(&mut self) -> String {
            if self.below(2) == 0 {
                return self.plausible();
            }
            let keys = [
                "choices",
                "usage",
                "object",
                "id",
                "created",
                "model",
                "system_fingerprint",
                "service_tier",
                "prompt_logprobs",
                "kv_transfer_params",
            ];
            let mut text = self.object(&keys, &mut |g, key| match key {
                "choices" if g.below(6) > 0 => {
                    let n = g.below(3);
                    let items: Vec<String> = (0..n).map(|_| g.choice()).collect();
                    format!("[{}]", items.join(","))
                }
                "usage" if g.below(3) > 0 => {
                    let keys = [
                        "prompt_tokens",
                        "completion_tokens",
                        "total_tokens",
                        "input_tokens",
                        "output_tokens",
                        "cached_tokens",
                        "completion_tokens_details",
                    ];
                    g.object(&keys, &mut |g, _| match g.below(4) {
                        0 => g.value(2),
                        _ => g
                            .pick(&[
                                "0",
                                "7",
                                "120",
                                "9999999999999999999",
                                "18446744073709551616",
                                "3.0",
                                "2e1",
                                "-4",
                                "05",
                            ])
                            .to_owned(),
                    })
                }
                "object" if g.below(3) > 0 => g.string(),
                _ => g.value(1),
            });
            // Now and then a byte goes missing or an odd one comes in.
            match self.below(8) {
                0 if !text.is_empty() => {
                    let mut at = self.below(text.len() as u64);
                    while !text.is_char_boundary(at) {
                        at -= 1;
                    }
                    text.remove(at);
                }
                1 => {
                    let mut at = self.below(text.len() as u64 + 1);
                    while !text.is_char_boundary(at) {
                        at -= 1;
                    }
                    let odd = self.pick(&["{", "}", "[", "]", ",", ":", "\"", " ", "0", "n"]);
                    text.insert_str(at, odd);
                }
                _ => {}
            }
            text
        }
    }

    /// Where the byte scanner answers, it answers exactly as the shape-by-shape path does:
    /// checked on generated units of every field in every order, with wrong types,
    /// invalid numbers and literals, lists where objects belong, nesting, escapes (valid
    /// or not), control bytes and damaged text.
    #[test]
    fn the_scanner_reads_units_as_the_full_path_does() {
        let mut g = Gen(11);
        let mut answered = 0;
        let mut texts = 0;
        for _ in 0..200_000 {
            let text = g.unit();
            let c = chunk(None, &text);
            if let Some(fast) = fast::parse(&c) {
                answered += 1;
                if fast.data != ResponseData::Empty {
                    texts += 1;
                }
                assert_eq!(Ok(Some(fast)), parse_generation_by_shape(&c), "{text}");
            }
        }
        // The generator makes the plain shapes often enough for the check to mean something.
        assert!(
            answered > 80_000 && texts > 50_000,
            "{answered} of 200,000 answered, {texts} with text"
        );
        // The mock's own body and a streamed token are the scanner's.
        let mock = r#"{"choices":[{"finish_reason":"stop","index":0,"message":{"content":" the of","role":"assistant"}}],"created":1796541843,"id":"chatcmpl-mock-5936101","model":"m","object":"chat.completion","usage":{"completion_tokens":2,"prompt_tokens":2,"total_tokens":4}}"#;
        let token = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":" the"},"finish_reason":null}]}"#;
        for text in [mock, token] {
            let c = chunk(None, text);
            let fast = fast::parse(&c).expect("scanned");
            assert_eq!(Ok(Some(fast)), parse_generation_by_shape(&c));
        }
        // Lists where objects belong are the full path's, which reads nothing from them
        // (serde read them as the structs' fields in order: text and usage counted).
        for text in [
            r#"{"choices":[[null,{"content":"Hello world"}]]}"#,
            r#"{"choices":[{"message":["Hello world"]}]}"#,
            r#"[[{"message":{"content":"Hello world"}}]]"#,
            r#"{"usage":[null,null,null,null,null,null,null,null,null,null,null,555,null,777]}"#,
            r#"{"choices":[{"delta":["Hello"]}]}"#,
        ] {
            let c = chunk(None, text);
            assert_eq!(fast::parse(&c), None, "{text}");
            let full = parse_generation(&c);
            assert!(
                !matches!(&full, Ok(Some(p)) if p.data != ResponseData::Empty || p.usage.is_some()),
                "{text}: {full:?}"
            );
        }
    }

    /// Prompt-cache counts as AIPerf's `Usage` reads them: OpenAI's nested count first,
    /// else the first top-level synonym present (even with no count in it).
    #[test]
    fn prompt_cache_counts_in_every_vendors_shape() {
        let usage = |data: &str| {
            let u = parse_generation(&chunk(None, data)).unwrap().unwrap().usage;
            let u = u.expect("usage");
            (
                u.prompt_tokens,
                u.prompt_cache_read_tokens,
                u.prompt_cache_write_tokens,
                u.prompt_cache_miss_tokens,
            )
        };
        let cases = [
            // OpenAI, vLLM, SGLang, TRT-LLM.
            (
                r#"{"usage":{"prompt_tokens":32,"prompt_tokens_details":{"cached_tokens":7}}}"#,
                (Some(32), Some(7), None, None),
            ),
            // The Responses API.
            (
                r#"{"usage":{"input_tokens":32,"input_tokens_details":{"cached_tokens":0}}}"#,
                (Some(32), Some(0), None, None),
            ),
            // Anthropic: input_tokens is what was neither read nor written.
            (
                concat!(
                    r#"{"usage":{"input_tokens":20,"cache_read_input_tokens":7,"#,
                    r#""cache_creation_input_tokens":5}}"#,
                ),
                (Some(32), Some(7), Some(5), None),
            ),
            // DeepSeek.
            (
                concat!(
                    r#"{"usage":{"prompt_tokens":32,"prompt_cache_hit_tokens":7,"#,
                    r#""prompt_cache_miss_tokens":25}}"#,
                ),
                (Some(32), Some(7), None, Some(25)),
            ),
            // Gemini, Bedrock and Cohere names.
            (
                r#"{"usage":{"prompt_tokens":32,"cachedContentTokenCount":6}}"#,
                (Some(32), Some(6), None, None),
            ),
            (
                concat!(
                    r#"{"usage":{"input_tokens":20,"cacheReadInputTokens":7,"#,
                    r#""cacheWriteInputTokens":5}}"#,
                ),
                (Some(32), Some(7), Some(5), None),
            ),
            (
                r#"{"usage":{"prompt_tokens":32,"cached_tokens":3}}"#,
                (Some(32), Some(3), None, None),
            ),
            // The nested count wins over a top-level one; one without the count is passed
            // over, and a null one leaves the top-level ones to decide.
            (
                concat!(
                    r#"{"usage":{"prompt_tokens":32,"prompt_tokens_details":{"cached_tokens":7},"#,
                    r#""prompt_cache_hit_tokens":1}}"#,
                ),
                (Some(32), Some(7), None, None),
            ),
            (
                concat!(
                    r#"{"usage":{"prompt_tokens_details":{"audio_tokens":0},"#,
                    r#""input_tokens_details":{"cached_tokens":2}}}"#,
                ),
                (None, Some(2), None, None),
            ),
            (
                r#"{"usage":{"prompt_tokens_details":{"cached_tokens":null},"cached_tokens":4}}"#,
                (None, Some(4), None, None),
            ),
            // The first synonym present decides, as in AIPerf, even without a count.
            (
                concat!(
                    r#"{"usage":{"prompt_tokens":32,"cache_read_input_tokens":null,"#,
                    r#""prompt_cache_hit_tokens":5}}"#,
                ),
                (Some(32), None, None, None),
            ),
            (
                r#"{"usage":{"prompt_tokens":32,"prompt_cache_hit_tokens":"5"}}"#,
                (Some(32), None, None, None),
            ),
            (
                r#"{"usage":{"prompt_tokens":32,"prompt_tokens_details":{"cached_tokens":6.0}}}"#,
                (Some(32), Some(6), None, None),
            ),
        ];
        for (data, expected) in cases {
            assert_eq!(usage(data), expected, "{data}");
        }
        // A usage block of cache counts only is still a usage block.
        let only = r#"{"usage":{"prompt_tokens_details":{"cached_tokens":0}}}"#;
        assert_eq!(usage(only), (None, Some(0), None, None));
        let none = r#"{"usage":{"prompt_tokens_details":{"cached_tokens":null}}}"#;
        let parsed = parse_generation(&chunk(None, none)).unwrap().unwrap();
        assert_eq!(parsed.usage, None);
    }
}
