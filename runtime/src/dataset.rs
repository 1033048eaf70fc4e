//! Conversations to send: what composers produce and workers read.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// One request's worth of input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// Prompt texts; most endpoints send one.
    pub texts: Vec<String>,
    /// Model the request names; `None` is the primary (first) `--model`. Composers set
    /// it by `--model-selection-strategy` when there are several models, and keep one a
    /// dataset gave the turn. `--extra-inputs model:...` still replaces it, as in AIPerf.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Role of the message (chat), default `user`.
    #[serde(default)]
    pub role: Option<String>,
    /// Output tokens to ask for (`max_tokens`), if any.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Prompt tokens as counted when the turn was composed.
    #[serde(default)]
    pub input_tokens: Option<u32>,
    /// Milliseconds to wait after the previous turn's response (multi-turn).
    #[serde(default)]
    pub delay_ms: Option<f64>,
    /// Milliseconds from the schedule's zero at which to send (trace replay).
    #[serde(default)]
    pub timestamp_ms: Option<f64>,
    /// Name of each entry of `texts`, by index (`""` for unnamed; shorter than `texts`
    /// when the last ones are unnamed). Rankings read the texts named `query` (or
    /// `queries`) and `passages`; the `template` endpoint exposes them by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub text_names: Vec<String>,
    /// Images, as `data:image/...;base64,...` URLs (or plain URLs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    /// Audio clips, as `data:audio/<format>;base64,...` URLs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audios: Vec<String>,
    /// Seconds of the first audio clip, where the composer knows it (synthetic audio):
    /// what AIPerf reports as `audio_duration` and divides by the latency for RTFx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_duration_s: Option<f64>,
    /// Body fields of this turn alone (a dataset row's `extra`), merged over the body
    /// after `--extra-inputs`, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<(String, serde_json::Value)>,
    /// Chat messages sent as given (a trace row's `messages`), after the session's
    /// history, in place of the message built from `texts` (which then only count the
    /// input tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_messages: Option<Vec<serde_json::Value>>,
    /// A whole request body sent as given (a trace row's `payload`): none of the
    /// endpoint's fields is added; `extra` still merges over it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_payload: Option<serde_json::Value>,
    /// The conversation's system message (AIPerf's `Conversation.system_message`: a
    /// `--shared-system-prompt-length` prompt or `--system-prompt`). Every turn of the
    /// conversation holds it, shared, since an endpoint formats a request from its turn
    /// alone; endpoints with a system role send it before each request's messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_message: Option<Arc<str>>,
    /// The conversation's user context message (AIPerf's
    /// `Conversation.user_context_message`, from `--user-context-prompt-length`), held by
    /// every turn as [`system_message`](Self::system_message) is; sent as a `user` message
    /// after the system message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_context_message: Option<Arc<str>>,
}

impl Turn {
    /// The name of text `index`, if it has one.
    pub fn text_name(&self, index: usize) -> Option<&str> {
        self.text_names
            .get(index)
            .map(String::as_str)
            .filter(|n| !n.is_empty())
    }

    /// The conversation-level messages an endpoint with a system role sends before the
    /// turn's own: the system message, then the user context message.
    pub fn context_messages(&self) -> impl Iterator<Item = &str> + '_ {
        [&self.system_message, &self.user_context_message]
            .into_iter()
            .filter_map(|m| m.as_deref())
    }

    /// The texts named `name`, in order.
    pub fn texts_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.texts
            .iter()
            .enumerate()
            .filter(move |(i, _)| self.text_name(*i) == Some(name))
            .map(|(_, t)| t.as_str())
    }
}

/// A session of one or more turns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub session_id: String,
    pub turns: Vec<Turn>,
}

/// The dataset as a timing strategy sees it before a phase (`TimingStrategyProtocol::
/// prepare`): the conversations themselves when the run holds them, or only how many turns
/// each has when they are composed as sessions take them (a synthetic dataset too large to
/// hold), which is all a strategy that hands out whole conversations needs to plan.
#[derive(Debug, Clone, Copy)]
pub enum DatasetView<'a> {
    Held(&'a [Conversation]),
    /// The turns of each conversation, by index: one table for every worker, which a
    /// strategy keeps by cloning the `Arc` (millions of conversations, many workers).
    Composed {
        turns: &'a Arc<[u32]>,
    },
}

impl<'a> DatasetView<'a> {
    /// Conversations in the dataset.
    pub fn len(&self) -> usize {
        match self {
            DatasetView::Held(conversations) => conversations.len(),
            DatasetView::Composed { turns } => turns.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The turns of conversation `index`, if there is one.
    pub fn turns(&self, index: usize) -> Option<u32> {
        match self {
            DatasetView::Held(conversations) => conversations
                .get(index)
                .map(|c| u32::try_from(c.turns.len()).unwrap_or(u32::MAX)),
            DatasetView::Composed { turns } => turns.get(index).copied(),
        }
    }

    /// The turns of every conversation, by index.
    pub fn turn_counts(&self) -> Arc<[u32]> {
        match self {
            DatasetView::Held(conversations) => conversations
                .iter()
                .map(|c| u32::try_from(c.turns.len()).unwrap_or(u32::MAX))
                .collect(),
            DatasetView::Composed { turns } => Arc::clone(turns),
        }
    }

    /// The conversations, when the run holds them; empty when they are composed later.
    pub fn held(&self) -> &'a [Conversation] {
        match self {
            DatasetView::Held(conversations) => conversations,
            DatasetView::Composed { .. } => &[],
        }
    }
}

/// How conversations are named where their source gives no name (AIPerf's
/// `SessionIDGenerator`): with `--random-seed` `session_000000`, `session_000001`, ...;
/// without, version 4 UUIDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionIds {
    Numbered,
    /// UUIDs that are a function of this key and the conversation's index: a dataset
    /// composed on demand is never held whole, so the records file names each conversation
    /// from its index, and must give the id `inputs.json` gave it.
    Uuid {
        key: u64,
    },
}

impl SessionIds {
    /// The run's naming. Without a seed the key is drawn once per process, so every
    /// composer and writer of the run names conversation `i` alike.
    pub fn for_run(random_seed: Option<u64>) -> Self {
        match random_seed {
            Some(_) => SessionIds::Numbered,
            None => SessionIds::Uuid {
                key: crate::engine::ids::process_key(),
            },
        }
    }

    /// The id of conversation `index`.
    pub fn id(self, index: usize) -> String {
        let mut out = Vec::with_capacity(36);
        self.write(index, &mut out);
        // Both forms are ASCII.
        String::from_utf8(out).unwrap_or_default()
    }

    /// Appends the id of conversation `index` to `out`, as is (it needs no JSON escape).
    pub fn write(self, index: usize, out: &mut Vec<u8>) {
        match self {
            SessionIds::Numbered => {
                out.extend_from_slice(b"session_");
                let mut digits = itoa::Buffer::new();
                let digits = digits.format(index);
                out.resize(out.len() + 6usize.saturating_sub(digits.len()), b'0');
                out.extend_from_slice(digits.as_bytes());
            }
            SessionIds::Uuid { key } => {
                crate::engine::ids::write_keyed_uuid(key, index as u64, out);
            }
        }
    }
}

/// Names handed out in turn, as AIPerf's file loaders name the sessions whose rows give
/// no `session_id`: a row's own id takes no number, so the numbers count only the
/// conversations named here.
#[derive(Debug, Clone)]
pub struct SessionIdGenerator {
    ids: SessionIds,
    next: usize,
}

impl SessionIdGenerator {
    pub fn new(ids: SessionIds) -> Self {
        SessionIdGenerator { ids, next: 0 }
    }

    pub fn next_id(&mut self) -> String {
        let id = self.ids.id(self.next);
        self.next += 1;
        id
    }
}

/// Gives every turn of `dataset` the verbatim system prompt `text`, as AIPerf's
/// `_inject_custom_system_prompt`: a conversation that has a system message keeps it after
/// `text` and a blank line (one system message, since many servers mishandle two).
///
/// `text` is shared: conversations without a system message of their own all hold it.
pub fn inject_system_prompt(dataset: &mut [Conversation], text: &Arc<str>) {
    for conversation in dataset {
        let own = conversation
            .turns
            .iter()
            .find_map(|t| t.system_message.clone());
        let message = match own {
            Some(own) => Arc::from(format!("{text}{SYSTEM_PROMPT_JOIN_SEP}{own}")),
            None => text.clone(),
        };
        for turn in &mut conversation.turns {
            turn.system_message = Some(message.clone());
        }
    }
}

/// Between a `--system-prompt` and a system message the dataset has (AIPerf's
/// `SYSTEM_PROMPT_JOIN_SEP`).
pub const SYSTEM_PROMPT_JOIN_SEP: &str = "\n\n";

/// Milliseconds (a turn's `delay_ms` or `timestamp_ms`) to whole nanoseconds, saturating;
/// negative and NaN give 0.
///
/// Whole milliseconds and the fraction convert apart: epoch milliseconds are exact in an
/// `f64`, their nanoseconds (about 1.7e18) are not.
pub fn ms_to_ns(ms: f64) -> u64 {
    if ms.is_nan() || ms <= 0.0 {
        return 0;
    }
    let whole = ms.trunc();
    if whole >= (u64::MAX / 1_000_000) as f64 {
        return u64::MAX;
    }
    // `ms - whole` is exact; `as` is exact for the integral `whole` below 2^64.
    let fraction_ns = ((ms - whole) * 1e6).round() as u64;
    (whole as u64)
        .saturating_mul(1_000_000)
        .saturating_add(fraction_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conversation(turns: usize, system: Option<&str>) -> Conversation {
        Conversation {
            session_id: "s".into(),
            turns: (0..turns)
                .map(|_| Turn {
                    system_message: system.map(Arc::from),
                    ..Turn::default()
                })
                .collect(),
        }
    }

    /// AIPerf's `SessionIDGenerator`: seeded runs number their sessions with six digits
    /// (more past a million), unseeded ones name them with UUIDs, each index its own and
    /// the same each time it is asked for.
    #[test]
    fn session_ids_are_numbered_with_a_seed_and_uuids_without() {
        let numbered = SessionIds::for_run(Some(0));
        assert_eq!(numbered.id(0), "session_000000");
        assert_eq!(numbered.id(42), "session_000042");
        assert_eq!(numbered.id(1_234_567), "session_1234567");
        let uuids = SessionIds::for_run(None);
        assert_eq!(uuids, SessionIds::for_run(None), "one key per process");
        let id = uuids.id(5);
        assert_eq!(id.len(), 36, "{id}");
        assert_eq!(&id[14..15], "4", "{id}");
        assert_eq!(id, uuids.id(5));
        assert_ne!(id, uuids.id(6));
        let mut written = b"x".to_vec();
        uuids.write(5, &mut written);
        assert_eq!(written, format!("x{id}").as_bytes());

        // A loader's names count only the sessions it names.
        let mut generated = SessionIdGenerator::new(numbered);
        assert_eq!(generated.next_id(), "session_000000");
        assert_eq!(generated.next_id(), "session_000001");
        let mut generated = SessionIdGenerator::new(uuids);
        assert_eq!(generated.next_id(), uuids.id(0));
    }

    /// AIPerf's `_inject_custom_system_prompt`: every conversation gets the text, before
    /// its own system message with a blank line between, on every turn.
    #[test]
    fn a_system_prompt_goes_before_a_conversations_own() {
        let mut dataset = vec![conversation(2, None), conversation(2, Some("own rules"))];
        inject_system_prompt(&mut dataset, &Arc::from("SP"));
        let messages: Vec<Vec<Option<&str>>> = dataset
            .iter()
            .map(|c| {
                c.turns
                    .iter()
                    .map(|t| t.system_message.as_deref())
                    .collect()
            })
            .collect();
        assert_eq!(
            messages,
            [
                [Some("SP"), Some("SP")],
                [Some("SP\n\nown rules"), Some("SP\n\nown rules")]
            ]
        );
        // One allocation shared by the turns, not a copy each.
        let turns = &dataset[1].turns;
        let (a, b) = (&turns[0].system_message, &turns[1].system_message);
        assert!(Arc::ptr_eq(a.as_ref().unwrap(), b.as_ref().unwrap()));
    }
}
