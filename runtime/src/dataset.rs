//! Conversations to send: what composers produce and workers read.

use serde::{Deserialize, Serialize};

/// One request's worth of input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// Prompt texts; most endpoints send one.
    pub texts: Vec<String>,
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
}

/// A session of one or more turns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub session_id: String,
    pub turns: Vec<Turn>,
}
