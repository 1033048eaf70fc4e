//! Request bodies as AIPerf builds them, precompiled into templates.
//!
//! AIPerf builds a Python dict per request: the endpoint's fields in order, then
//! `payload.update(extra_inputs)` (an existing key keeps its place and takes the new
//! value; a new key goes last), then `stream_options.include_usage` when streaming.
//! Everything but the turn's text, `max_tokens` and model is known before the run, so
//! the dict's final shape is compiled once into literal byte runs with holes, and a
//! request body is a few `extend_from_slice` calls plus the escaping of the prompt. The
//! primary model is compiled into the literals; a turn that names another model (several
//! `--model`s) takes a second compilation of the same body with a hole for it.

use aiperf_runtime::dataset::{Turn, SYSTEM_PROMPT_JOIN_SEP};
use serde_json::Value;

/// How a turn's inputs are rendered into the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InputShape {
    /// `[{"role":ROLE,"content":CONTENT}]`; one text and no media is a plain string,
    /// anything else a list of parts: `{"type":"text","text"}` per text, then
    /// `{"type":"image_url","image_url":{"url"}}` per image, then
    /// `{"type":"input_audio","input_audio":{"data","format"}}` per audio clip.
    ChatMessages,
    /// One text as a string, several as a list.
    Prompt,
    /// Always a list of strings.
    List,
    /// The first text (`""` when there is none).
    FirstText,
    /// The texts joined by one space.
    JoinedText,
    /// The first text named `query` or `queries`, as a string.
    Query,
    /// That query as `{"text":QUERY}`.
    QueryObject,
    /// The texts named `passages`, as a list of strings.
    Passages,
    /// Those passages as `[{"text":PASSAGE}]`.
    PassageObjects,
    /// NIM embeddings: the texts, or `<img src='URL'/>` per image, or `TEXT <img .../>`
    /// pairs when a turn has both (the endpoint checks the counts match).
    NimInputs,
    /// The Responses API's `input` items: the user context message, then one
    /// `{"role","content","type":"message"}` per turn, with `input_text`, `input_image`
    /// and `input_audio` parts (see [`write_item_list`]).
    ResponsesInput,
    /// Anthropic's `messages`: the user context message, then `{"role","content"}` per
    /// turn, with `text` and `image` blocks (see [`write_item_list`]).
    AnthropicMessages,
}

/// Whether a session's history goes before the turn in this input.
fn sends_history(shape: InputShape) -> bool {
    matches!(
        shape,
        InputShape::ChatMessages | InputShape::ResponsesInput | InputShape::AnthropicMessages
    )
}

/// A field of the body before the extra inputs are merged.
#[derive(Debug, Clone)]
pub(crate) enum Field {
    /// The turn's texts.
    Input(InputShape),
    /// The turn's `max_tokens`.
    MaxTokens,
    /// The turn's model, else this primary model.
    Model(String),
    Value(Value),
    /// An object of further fields (e.g. TGI's `parameters`).
    Nested(Vec<(String, Field)>),
    /// The conversation's system message, for bodies that give it a field of its own
    /// (compiled only into the templates of turns that have one).
    SystemMessage,
}

/// Whether, and how, a streamed body asks the server for its usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamUsage {
    Never,
    /// Chat and completions: when the final `stream` is truthy, `include_usage` goes into
    /// `stream_options` unless the user set it; a `stream_options` that is neither an
    /// object nor null is left alone.
    WhenStreamed,
    /// The Responses API under `--streaming --use-server-token-count`, whatever the final
    /// `stream`: as above, but a `stream_options` that is not an object is replaced.
    Always,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(Vec<u8>),
    Input(InputShape),
    MaxTokens,
    /// The turn's model (only in [`Template::per_turn_model`]).
    Model,
    SystemMessage,
}

/// A compiled request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    /// For turns without a model of their own: the primary model is part of the literals,
    /// so a run with one model renders exactly as many parts as a body without a model.
    parts: Vec<Part>,
    /// For turns that name their model: the same body with a hole where it goes. `None`
    /// when the body has no model field (or `--extra-inputs` fixed it).
    per_turn_model: Option<Vec<Part>>,
}

impl Template {
    /// Compiles `fields` merged with `extra` as AIPerf's dict update does, then asks a
    /// streamed body for usage as `usage` says.
    pub(crate) fn compile(
        fields: Vec<(&str, Field)>,
        extra: &[(String, Value)],
        usage: StreamUsage,
    ) -> Template {
        let mut merged: Vec<(String, Field)> =
            fields.into_iter().map(|(k, f)| (k.to_owned(), f)).collect();
        for (key, value) in extra {
            match merged.iter_mut().find(|(k, _)| k == key) {
                Some((_, field)) => *field = Field::Value(value.clone()),
                None => merged.push((key.clone(), Field::Value(value.clone()))),
            }
        }
        let streaming = merged
            .iter()
            .find(|(k, _)| k == "stream")
            .is_some_and(|(_, f)| matches!(f, Field::Value(v) if truthy(v)));
        match usage {
            StreamUsage::WhenStreamed if streaming => merge_include_usage(&mut merged, false),
            StreamUsage::Always => merge_include_usage(&mut merged, true),
            StreamUsage::WhenStreamed | StreamUsage::Never => {}
        }

        let parts = compile_parts(&merged, false);
        let per_turn_model = Some(compile_parts(&merged, true))
            .filter(|parts| parts.iter().any(|p| matches!(p, Part::Model)));
        Template {
            parts,
            per_turn_model,
        }
    }

    /// Appends the body for `turn` to `body`.
    pub(crate) fn render(&self, turn: &Turn, body: &mut Vec<u8>) {
        self.render_session(&[], turn, body);
    }

    /// Appends the body for `turn` of a session to `body`: chat messages start with the
    /// session's `history` (earlier turns and replies, each a message of its own role);
    /// every other field comes from `turn`.
    pub(crate) fn render_session(&self, history: &[Turn], turn: &Turn, body: &mut Vec<u8>) {
        let start = body.len();
        match &turn.raw_payload {
            Some(payload) => write_json(body, payload),
            None => self.render_parts(history, turn, body),
        }
        if !turn.extra.is_empty() {
            merge_turn_extra(body, start, &turn.extra);
        }
    }

    fn render_parts(&self, history: &[Turn], turn: &Turn, body: &mut Vec<u8>) {
        let parts = match (&turn.model, &self.per_turn_model) {
            (Some(_), Some(per_turn)) => per_turn,
            _ => &self.parts,
        };
        for part in parts {
            match part {
                Part::Literal(bytes) => body.extend_from_slice(bytes),
                Part::Input(shape) if sends_history(*shape) => {
                    write_conversation(*shape, history, turn, body);
                }
                Part::Input(shape) => write_input(*shape, turn, body),
                Part::MaxTokens => {
                    // Only compiled into the template chosen for turns that have one.
                    let n = turn.max_tokens.unwrap_or_default();
                    body.extend_from_slice(n.to_string().as_bytes());
                }
                // Only compiled into the parts chosen for turns that have one.
                Part::Model => write_json_str(body, turn.model.as_deref().unwrap_or_default()),
                // Only compiled into the templates chosen for turns that have one.
                Part::SystemMessage => {
                    write_json_str(body, turn.system_message.as_deref().unwrap_or_default());
                }
            }
        }
    }
}

/// The parts of the object `fields`; with `model_hole`, the model is a hole rather than
/// the primary model's literal.
fn compile_parts(fields: &[(String, Field)], model_hole: bool) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut literal = Vec::new();
    compile_object(fields, model_hole, &mut literal, &mut parts);
    parts.push(Part::Literal(literal));
    parts.retain(|p| !matches!(p, Part::Literal(l) if l.is_empty()));
    parts
}

/// Appends `{"key":value,...}` to the literal run, cutting it at each hole.
fn compile_object(
    fields: &[(String, Field)],
    model_hole: bool,
    literal: &mut Vec<u8>,
    parts: &mut Vec<Part>,
) {
    literal.push(b'{');
    for (i, (key, field)) in fields.iter().enumerate() {
        if i > 0 {
            literal.push(b',');
        }
        write_json_str(literal, key.as_str());
        literal.push(b':');
        match field {
            Field::Value(value) => write_json(literal, value),
            Field::Input(shape) => {
                parts.push(Part::Literal(std::mem::take(literal)));
                parts.push(Part::Input(*shape));
            }
            Field::MaxTokens => {
                parts.push(Part::Literal(std::mem::take(literal)));
                parts.push(Part::MaxTokens);
            }
            Field::Model(_) if model_hole => {
                parts.push(Part::Literal(std::mem::take(literal)));
                parts.push(Part::Model);
            }
            Field::Model(primary) => write_json_str(literal, primary.as_str()),
            Field::Nested(inner) => compile_object(inner, model_hole, literal, parts),
            Field::SystemMessage => {
                parts.push(Part::Literal(std::mem::take(literal)));
                parts.push(Part::SystemMessage);
            }
        }
    }
    literal.push(b'}');
}

/// Python's `setdefault("include_usage", True)` on a copy of the user's
/// `stream_options`; a non-object value is left alone (chat) or, with `replace`, replaced
/// (responses), as AIPerf does.
fn merge_include_usage(merged: &mut Vec<(String, Field)>, replace: bool) {
    let Some((_, field)) = merged.iter_mut().find(|(k, _)| k == "stream_options") else {
        merged.push((
            "stream_options".to_owned(),
            Field::Value(serde_json::json!({"include_usage": true})),
        ));
        return;
    };
    match field {
        Field::Value(Value::Object(options)) => {
            options.entry("include_usage").or_insert(Value::Bool(true));
        }
        Field::Value(Value::Null) => {
            *field = Field::Value(serde_json::json!({"include_usage": true}));
        }
        _ if replace => *field = Field::Value(serde_json::json!({"include_usage": true})),
        _ => {}
    }
}

/// Python truthiness of a JSON value.
pub(crate) fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Serializing a str or a Value into a Vec cannot fail: no I/O, no non-string keys.
    let _ = serde_json::to_writer(out, value);
}

/// A string as [`write_json`] writes it, without serde's byte-by-byte scan when nothing
/// needs escaping (a prompt, for each request).
fn write_json_str(out: &mut Vec<u8>, value: &str) {
    aiperf_runtime::export::write_json_str(out, value);
}

fn write_input(shape: InputShape, turn: &Turn, out: &mut Vec<u8>) {
    match shape {
        InputShape::ChatMessages | InputShape::ResponsesInput | InputShape::AnthropicMessages => {
            write_conversation(shape, &[], turn, out);
        }
        InputShape::Prompt if turn.texts.len() == 1 => write_json_str(out, turn.texts[0].as_str()),
        InputShape::Prompt | InputShape::List => write_json(out, &turn.texts),
        InputShape::FirstText => {
            write_json_str(out, turn.texts.first().map_or("", String::as_str));
        }
        InputShape::JoinedText => write_json_str(out, &turn.texts.join(" ")),
        InputShape::Query => write_json_str(out, rankings_query(turn).unwrap_or("")),
        InputShape::QueryObject => {
            out.extend_from_slice(b"{\"text\":");
            write_json_str(out, rankings_query(turn).unwrap_or(""));
            out.push(b'}');
        }
        InputShape::Passages => {
            let passages: Vec<&str> = turn.texts_named("passages").collect();
            write_json(out, &passages);
        }
        InputShape::PassageObjects => {
            out.push(b'[');
            for (i, passage) in turn.texts_named("passages").enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"text\":");
                write_json_str(out, passage);
                out.push(b'}');
            }
            out.push(b']');
        }
        InputShape::NimInputs => {
            let inputs: Vec<String> = match (turn.texts.is_empty(), turn.images.is_empty()) {
                (_, true) => turn.texts.clone(),
                (true, false) => turn
                    .images
                    .iter()
                    .map(|url| format!("<img src='{url}'/>"))
                    .collect(),
                (false, false) => turn
                    .texts
                    .iter()
                    .zip(&turn.images)
                    .map(|(text, url)| format!("{text} <img src='{url}'/>"))
                    .collect(),
            };
            write_json(out, &inputs);
        }
    }
}

/// The chat `messages` of `turn` after the session's `history`, as AIPerf's
/// `ChatEndpoint._format_messages` builds them: the conversation's system message first
/// (merged into the first message when that is a system message already, since many
/// servers mishandle two), then its user context message, then the turns.
fn write_chat_messages(history: &[Turn], turn: &Turn, out: &mut Vec<u8>) {
    out.push(b'[');
    let mut first = true;
    let mut merged = false;
    if let Some(system) = turn.system_message.as_deref() {
        merged = write_merged_system(system, history.first().unwrap_or(turn), out);
        if !merged {
            out.extend_from_slice(b"{\"role\":\"system\",\"content\":");
            write_json_str(out, system);
            out.push(b'}');
        }
        first = false;
    }
    if let Some(context) = turn.user_context_message.as_deref() {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"role\":\"user\",\"content\":");
        write_json_str(out, context);
        out.push(b'}');
    }
    for (i, one) in history.iter().chain([turn]).enumerate() {
        write_turn_messages(one, out, &mut first, usize::from(i == 0 && merged));
    }
    out.push(b']');
}

/// The conversation of `turn` after the session's `history` in the list `shape` names.
fn write_conversation(shape: InputShape, history: &[Turn], turn: &Turn, out: &mut Vec<u8>) {
    // A turn's own `messages` are its whole context (traces carry the conversation so
    // far): the session's history is not put before them.
    let history = match turn.raw_messages {
        Some(_) => &[][..],
        None => history,
    };
    match shape {
        InputShape::ResponsesInput => write_item_list(history, turn, Parts::Responses, out),
        InputShape::AnthropicMessages => write_item_list(history, turn, Parts::Anthropic, out),
        _ => write_chat_messages(history, turn, out),
    }
}

/// Output items AIPerf leaves out when it replays a turn's own items as input: the API
/// takes them back only with the tool or the stored response they came from.
const REPLAY_UNSAFE_ITEMS: [&str; 6] = [
    "web_search_call",
    "file_search_call",
    "image_generation_call",
    "code_interpreter_call",
    "computer_call",
    "reasoning",
];

/// The Responses API's `input` ([`Parts::Responses`]) or Anthropic's `messages`
/// ([`Parts::Anthropic`]), as AIPerf's `ResponsesEndpoint` and `MessagesEndpoint` build
/// them: the user context message as a leading item (the system message goes to
/// `instructions` or `system`, outside this list), then each turn: its own items as given
/// (for Responses, less the replay-unsafe ones), else one message of its texts and media.
fn write_item_list(history: &[Turn], turn: &Turn, parts: Parts, out: &mut Vec<u8>) {
    let responses = parts == Parts::Responses;
    out.push(b'[');
    let mut first = true;
    let mut sep = |out: &mut Vec<u8>| {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
    };
    if let Some(context) = turn
        .user_context_message
        .as_deref()
        .filter(|c| !c.is_empty())
    {
        sep(out);
        if responses {
            out.extend_from_slice(b"{\"type\":\"message\",\"role\":\"user\",\"content\":");
        } else {
            out.extend_from_slice(b"{\"role\":\"user\",\"content\":");
        }
        write_json_str(out, context);
        out.push(b'}');
    }
    let replay_unsafe = |item: &Value| {
        responses
            && item
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| REPLAY_UNSAFE_ITEMS.contains(&t))
    };
    for one in history.iter().chain([turn]) {
        match &one.raw_messages {
            Some(items) => {
                for item in items.iter().filter(|item| !replay_unsafe(item)) {
                    sep(out);
                    write_json(out, item);
                }
            }
            None => {
                sep(out);
                out.extend_from_slice(b"{\"role\":");
                write_json_str(out, one.role.as_deref().unwrap_or("user"));
                out.extend_from_slice(b",\"content\":");
                write_parts_content(one, parts, out);
                if responses {
                    out.extend_from_slice(b",\"type\":\"message\"");
                }
                out.push(b'}');
            }
        }
    }
    out.push(b']');
}

/// The content part names of an API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parts {
    /// `input_text`, `input_image` (the URL as a string), `input_audio`.
    Responses,
    /// `text`, `image` (a `base64` or `url` source); no audio block exists.
    Anthropic,
}

/// A message's `content` as AIPerf's `BaseEndpoint._render_turn_content` renders it: one
/// text and no media is a plain string; otherwise a part per non-empty text, image and
/// audio clip, or `""` when none is left (servers refuse an empty part list). Anthropic
/// has no audio block, so its clips are left out (AIPerf refuses the turn).
fn write_parts_content(turn: &Turn, api: Parts, out: &mut Vec<u8>) {
    let audios: &[String] = match api {
        Parts::Responses => &turn.audios,
        Parts::Anthropic => &[],
    };
    if let ([text], true, true) = (
        turn.texts.as_slice(),
        turn.images.is_empty(),
        audios.is_empty(),
    ) {
        return write_json_str(out, text.as_str());
    }
    let start = out.len();
    out.push(b'[');
    let mut first = true;
    let mut sep = |out: &mut Vec<u8>| {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
    };
    for text in turn.texts.iter().filter(|t| !t.is_empty()) {
        sep(out);
        out.extend_from_slice(match api {
            Parts::Responses => b"{\"type\":\"input_text\",\"text\":".as_slice(),
            Parts::Anthropic => b"{\"type\":\"text\",\"text\":".as_slice(),
        });
        write_json_str(out, text.as_str());
        out.push(b'}');
    }
    for url in turn.images.iter().filter(|u| !u.is_empty()) {
        sep(out);
        match api {
            Parts::Responses => {
                out.extend_from_slice(b"{\"type\":\"input_image\",\"image_url\":");
                write_json_str(out, url.as_str());
                out.push(b'}');
            }
            Parts::Anthropic => write_anthropic_image(url, out),
        }
    }
    for clip in audios.iter().filter(|c| !c.is_empty()) {
        let (format, data) = audio_part(clip);
        sep(out);
        out.extend_from_slice(b"{\"type\":\"input_audio\",\"input_audio\":{\"data\":");
        write_json_str(out, data);
        out.extend_from_slice(b",\"format\":");
        write_json_str(out, format);
        out.extend_from_slice(b"}}");
    }
    if first {
        out.truncate(start);
        out.extend_from_slice(b"\"\"");
    } else {
        out.push(b']');
    }
}

/// An Anthropic image block: a data URL's bytes as a `base64` source with its media type
/// (`image/png` when the URL names none), any other URL as a `url` source.
fn write_anthropic_image(url: &str, out: &mut Vec<u8>) {
    match url.strip_prefix("data:") {
        Some(rest) => {
            let (header, data) = rest.split_once(',').unwrap_or((rest, ""));
            let media_type = header.split(';').next().filter(|m| !m.is_empty());
            out.extend_from_slice(
                b"{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":",
            );
            write_json_str(out, media_type.unwrap_or("image/png"));
            out.extend_from_slice(b",\"data\":");
            write_json_str(out, data);
            out.extend_from_slice(b"}}");
        }
        None => {
            out.extend_from_slice(b"{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":");
            write_json_str(out, url);
            out.extend_from_slice(b"}}");
        }
    }
}

/// Writes the first message of `leading` with `system` prepended to its content when it
/// is a system message, and says whether it was.
fn write_merged_system(system: &str, leading: &Turn, out: &mut Vec<u8>) -> bool {
    match &leading.raw_messages {
        Some(messages) => {
            let Some(Value::Object(message)) = messages.first() else {
                return false;
            };
            if message.get("role").and_then(Value::as_str) != Some("system") {
                return false;
            }
            let mut message = message.clone();
            let content = prepend_system_text(system, message.get("content"));
            message.insert("content".to_owned(), content);
            write_json(out, &message);
            true
        }
        None if leading.role.as_deref() == Some("system") => {
            out.extend_from_slice(b"{\"role\":\"system\",\"content\":");
            let media = leading.images.len() + leading.audios.len();
            match leading.texts.as_slice() {
                [] if media == 0 => write_json_str(out, system),
                [text] if media == 0 => {
                    let text = Value::from(text.as_str());
                    write_json(out, &prepend_system_text(system, Some(&text)));
                }
                _ => {
                    out.extend_from_slice(b"[{\"type\":\"text\",\"text\":");
                    write_json_str(out, system);
                    out.push(b'}');
                    write_content_parts(leading, out, &mut false);
                    out.push(b']');
                }
            }
            out.push(b'}');
            true
        }
        None => false,
    }
}

/// AIPerf's `_prepend_system_text`: parts get a text part first, a non-empty string gets
/// `prefix` and a blank line before it, anything else becomes `prefix`.
fn prepend_system_text(prefix: &str, content: Option<&Value>) -> Value {
    match content {
        Some(Value::Array(parts)) => {
            let mut merged = vec![serde_json::json!({"type": "text", "text": prefix})];
            merged.extend(parts.iter().cloned());
            Value::Array(merged)
        }
        Some(Value::String(text)) if !text.is_empty() => {
            Value::String(format!("{prefix}{SYSTEM_PROMPT_JOIN_SEP}{text}"))
        }
        _ => Value::String(prefix.to_owned()),
    }
}

/// A turn's messages in a chat list, less its first `skip`: its raw `messages` as given,
/// else the one message made of its texts and media; `first` says whether a comma goes
/// before.
fn write_turn_messages(turn: &Turn, out: &mut Vec<u8>, first: &mut bool, skip: usize) {
    let mut sep = |out: &mut Vec<u8>| {
        if !std::mem::take(first) {
            out.push(b',');
        }
    };
    match &turn.raw_messages {
        Some(messages) => {
            for message in messages.iter().skip(skip) {
                sep(out);
                write_json(out, message);
            }
        }
        None if skip > 0 => {}
        None => {
            sep(out);
            write_chat_message(turn, out);
        }
    }
}

/// `{"role":ROLE,"content":CONTENT}` for one turn (role `user` unless it says).
fn write_chat_message(turn: &Turn, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"role\":");
    write_json_str(out, turn.role.as_deref().unwrap_or("user"));
    out.extend_from_slice(b",\"content\":");
    write_chat_content(turn, out);
    out.push(b'}');
}

/// The first text named `query` or `queries` (AIPerf accepts both).
pub(crate) fn rankings_query(turn: &Turn) -> Option<&str> {
    (0..turn.texts.len())
        .find(|&i| matches!(turn.text_name(i), Some("query" | "queries")))
        .map(|i| turn.texts[i].as_str())
}

/// A chat message's `content`: a plain string for one text and no media, else parts.
fn write_chat_content(turn: &Turn, out: &mut Vec<u8>) {
    let media = turn.images.len() + turn.audios.len();
    match turn.texts.as_slice() {
        [] if media == 0 => return out.extend_from_slice(b"\"\""),
        [text] if media == 0 => return write_json_str(out, text.as_str()),
        _ => {}
    }
    out.push(b'[');
    write_content_parts(turn, out, &mut true);
    out.push(b']');
}

/// A turn's content parts: `{"type":"text"}` per text, then `{"type":"image_url"}` per
/// image, then `{"type":"input_audio"}` per clip; `first` says whether a comma goes before
/// the first.
fn write_content_parts(turn: &Turn, out: &mut Vec<u8>, first: &mut bool) {
    let mut sep = |out: &mut Vec<u8>| {
        if !std::mem::take(first) {
            out.push(b',');
        }
    };
    for text in &turn.texts {
        sep(out);
        out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
        write_json_str(out, text.as_str());
        out.push(b'}');
    }
    for url in &turn.images {
        sep(out);
        out.extend_from_slice(b"{\"type\":\"image_url\",\"image_url\":{\"url\":");
        write_json_str(out, url.as_str());
        out.extend_from_slice(b"}}");
    }
    for clip in &turn.audios {
        let (format, data) = audio_part(clip);
        sep(out);
        out.extend_from_slice(b"{\"type\":\"input_audio\",\"input_audio\":{\"data\":");
        write_json_str(out, data);
        out.extend_from_slice(b",\"format\":");
        write_json_str(out, format);
        out.extend_from_slice(b"}}");
    }
}

/// `(format, base64)` of an audio clip given as `data:audio/FMT;base64,B64` or, as
/// AIPerf's datasets write it, `FMT,B64`.
pub(crate) fn audio_part(clip: &str) -> (&str, &str) {
    if let Some(rest) = clip.strip_prefix("data:audio/") {
        let (header, data) = rest.split_once(',').unwrap_or((rest, ""));
        let format = header.split(';').next().filter(|f| !f.is_empty());
        return (format.unwrap_or("wav"), data);
    }
    match clip.split_once(',') {
        Some((format, data)) => (format, data),
        None => ("wav", clip),
    }
}

// --------------------------------------------------------------------- extra inputs

/// Parsed in the runtime, which also writes them into `input_config`: one parser, so the
/// artifact shows the values exactly as they are sent.
pub(crate) use aiperf_runtime::extra_inputs::{parse_extra_inputs, parse_ordered_object};

/// Merges a turn's own body fields (`extra` of a dataset row) into the body rendered from
/// `start` on, as AIPerf's later `payload.update(extra_body)`: an existing key keeps its
/// place and takes the new value, a new key goes last. The other values keep their bytes.
fn merge_turn_extra(body: &mut Vec<u8>, start: usize, extra: &[(String, Value)]) {
    let rendered = String::from_utf8_lossy(&body[start..]).into_owned();
    // Rendered from compiled JSON, so always an object; were it not, the body stays as is.
    let Ok(fields) = parse_ordered_object::<&serde_json::value::RawValue>(&rendered) else {
        return;
    };
    let mut merged: Vec<(String, Option<&Value>, Option<&str>)> = fields
        .iter()
        .map(|(k, raw)| (k.clone(), None, Some(raw.get())))
        .collect();
    for (key, value) in extra {
        match merged.iter_mut().find(|(k, _, _)| k == key) {
            Some(entry) => *entry = (key.clone(), Some(value), None),
            None => merged.push((key.clone(), Some(value), None)),
        }
    }
    body.truncate(start);
    body.push(b'{');
    for (i, (key, value, raw)) in merged.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        write_json_str(body, key.as_str());
        body.push(b':');
        match (value, raw) {
            (Some(value), _) => write_json(body, *value),
            (None, Some(raw)) => body.extend_from_slice(raw.as_bytes()),
            (None, None) => body.extend_from_slice(b"null"),
        }
    }
    body.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_primary_model_is_a_literal_and_a_turns_model_fills_a_hole() {
        let fields = || {
            vec![
                ("model", Field::Model("m\"1".into())),
                ("stream", Field::Value(json!(false))),
            ]
        };
        let template = Template::compile(fields(), &[], StreamUsage::Never);
        // One model: the body is one literal run, as if the model were any fixed value.
        let whole = br#"{"model":"m\"1","stream":false}"#.to_vec();
        assert_eq!(template.parts, [Part::Literal(whole)]);
        let render = |template: &Template, model: Option<&str>| {
            let turn = Turn {
                model: model.map(str::to_owned),
                ..Turn::default()
            };
            let mut body = Vec::new();
            template.render(&turn, &mut body);
            String::from_utf8(body).unwrap()
        };
        assert_eq!(
            render(&template, None),
            r#"{"model":"m\"1","stream":false}"#
        );
        assert_eq!(
            render(&template, Some("x/y")),
            r#"{"model":"x/y","stream":false}"#
        );
        // An extra input fixes the model: no hole, every turn sends it.
        let fixed = Template::compile(
            fields(),
            &[("model".into(), json!("z"))],
            StreamUsage::Never,
        );
        assert_eq!(fixed.per_turn_model, None);
        assert_eq!(render(&fixed, Some("x")), r#"{"model":"z","stream":false}"#);
        let none = Template::compile(
            vec![("stream", Field::Value(json!(true)))],
            &[],
            StreamUsage::Never,
        );
        assert_eq!(none.per_turn_model, None);
    }

    /// A turn's own fields (a dataset row's `extra`) go over the rendered body as a dict
    /// update: `stream` keeps its place with the new value, a new key goes last, and the
    /// rest keeps its bytes (key order inside the messages included).
    #[test]
    fn a_turns_extra_fields_update_its_body() {
        let fields = vec![
            ("messages", Field::Input(InputShape::ChatMessages)),
            ("model", Field::Model("m".into())),
            ("stream", Field::Value(json!(true))),
        ];
        let template =
            Template::compile(fields, &[("top_p".into(), json!(0.9))], StreamUsage::Never);
        let turn = Turn {
            texts: vec!["hi \"there\"".into()],
            extra: vec![
                ("stream".into(), json!(false)),
                ("temperature".into(), json!(0.5)),
                ("stop".into(), json!(["\n"])),
            ],
            ..Turn::default()
        };
        let mut body = b"HEAD".to_vec();
        template.render(&turn, &mut body);
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"HEAD{"messages":[{"role":"user","content":"hi \"there\""}],"model":"m","stream":false,"top_p":0.9,"temperature":0.5,"stop":["\n"]}"#
        );
    }

    /// A turn with its own `messages` (a trace row's whole context) is sent without the
    /// session's history before it; a plain turn after it gets the history as usual.
    #[test]
    fn a_turns_own_messages_replace_the_history() {
        let template = Template::compile(
            vec![("messages", Field::Input(InputShape::ChatMessages))],
            &[],
            StreamUsage::Never,
        );
        let earlier = Turn {
            texts: vec!["q1".into()],
            ..Turn::default()
        };
        let reply = Turn {
            texts: vec!["a1".into()],
            role: Some("assistant".into()),
            ..Turn::default()
        };
        let own = Turn {
            raw_messages: Some(vec![
                json!({"role": "user", "content": "q1"}),
                json!({"role": "user", "content": "q2"}),
            ]),
            ..Turn::default()
        };
        let mut body = Vec::new();
        template.render_session(&[earlier.clone(), reply.clone()], &own, &mut body);
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"messages":[{"content":"q1","role":"user"},{"content":"q2","role":"user"}]}"#
        );
        let mut body = Vec::new();
        template.render_session(&[own, reply], &earlier, &mut body);
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"messages":[{"content":"q1","role":"user"},{"content":"q2","role":"user"},{"role":"assistant","content":"a1"},{"role":"user","content":"q1"}]}"#
        );
    }

    #[test]
    fn include_usage_merges_into_user_stream_options() {
        let fields = || vec![("stream", Field::Value(json!(true)))];
        let render = |extra: &[(String, Value)]| {
            let mut body = Vec::new();
            Template::compile(fields(), extra, StreamUsage::WhenStreamed)
                .render(&Turn::default(), &mut body);
            String::from_utf8(body).unwrap()
        };
        assert_eq!(
            render(&[]),
            r#"{"stream":true,"stream_options":{"include_usage":true}}"#
        );
        let user = [(
            "stream_options".to_owned(),
            json!({"continuous_usage_stats": true, "include_usage": false}),
        )];
        assert_eq!(
            render(&user),
            r#"{"stream":true,"stream_options":{"continuous_usage_stats":true,"include_usage":false}}"#
        );
        let off = [("stream".to_owned(), json!(false))];
        assert_eq!(render(&off), r#"{"stream":false}"#);
        let odd = [("stream_options".to_owned(), json!("x"))];
        assert_eq!(render(&odd), r#"{"stream":true,"stream_options":"x"}"#);
    }
}
