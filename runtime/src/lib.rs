//! The runtime behind every binary `aiperf-gen` builds: category protocols, metadata
//! types, and the thread-per-core engine that the generated `PluginSet` drives.
//!
//! Without the default `engine` feature only the manifest-facing types compile; the
//! generator uses that to derive its schemas.

/// The category declarations every build starts from.
pub const CATEGORIES_YAML: &str = include_str!("../categories.yaml");

pub mod explorer;
pub mod metadata;
pub mod record;

#[cfg(feature = "engine")]
pub mod accuracy;
#[cfg(feature = "engine")]
pub mod cli;
#[cfg(feature = "engine")]
pub mod config;
#[cfg(feature = "engine")]
pub mod dataset;
#[cfg(feature = "engine")]
pub mod engine;
#[cfg(feature = "engine")]
pub mod export;
#[cfg(feature = "engine")]
pub mod extra_inputs;
#[cfg(feature = "engine")]
pub mod headers;
#[cfg(feature = "engine")]
pub mod http;
#[cfg(feature = "engine")]
pub mod limits;
#[cfg(feature = "engine")]
pub mod logging;
#[cfg(feature = "engine")]
pub mod metrics;
#[cfg(feature = "engine")]
pub mod plugin;
#[cfg(feature = "engine")]
pub mod protocols;
#[cfg(feature = "engine")]
pub mod results;
#[cfg(feature = "engine")]
pub mod seq_dist;
#[cfg(feature = "engine")]
pub mod telemetry;

/// Crates the generated code names through the runtime, so a generated crate depends
/// on the runtime and its packs only.
#[cfg(feature = "engine")]
pub use cli::main;

#[cfg(feature = "engine")]
#[doc(hidden)]
pub mod __private {
    pub use clap;
    pub use serde;
}
