//! How generated crates describe and construct their plugins.
//!
//! A generated crate emits, per category, a fieldless *kind* enum (the type-safe plugin
//! names, e.g. `EndpointType`) and a dispatch enum over the linked implementations (e.g.
//! `Endpoint`), plus one `PluginSet` type tying the categories the engine uses together.

use serde::de::DeserializeOwned;

use crate::config::ProfileConfig;

/// Errors from constructing or running a plugin.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The plugin opts out of this run (e.g. an exporter whose output is not wanted).
    #[error("{0} is disabled for this run")]
    Disabled(String),
    #[error("{0}")]
    Config(String),
    #[error("invalid metadata for {entry}: {message}")]
    Metadata { entry: String, message: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
}

/// A plugin pack linked into the binary.
#[derive(Debug, Clone, Copy)]
pub struct PackInfo {
    pub name: &'static str,
    pub version: &'static str,
    pub description: &'static str,
    pub authors: &'static str,
    pub builtin: bool,
}

/// One manifest entry as linked: its identity, provenance and metadata.
#[derive(Debug, Clone, Copy)]
pub struct PluginEntry {
    pub category: &'static str,
    pub name: &'static str,
    pub class_path: &'static str,
    pub pack: &'static str,
    pub priority: i64,
    pub description: &'static str,
    /// The entry's `metadata` as JSON text (`{}` when absent).
    pub metadata_json: &'static str,
    /// `Some(class_path of the winner)` when another entry took this name.
    pub shadowed_by: Option<&'static str>,
}

impl PluginEntry {
    /// The entry's metadata parsed into its category's metadata type.
    pub fn metadata<T: DeserializeOwned>(&self) -> Result<T, PluginError> {
        serde_json::from_str(self.metadata_json).map_err(|e| PluginError::Metadata {
            entry: format!("{}:{}", self.category, self.name),
            message: e.to_string(),
        })
    }

    /// Raw metadata as a JSON value.
    pub fn metadata_value(&self) -> serde_json::Value {
        serde_json::from_str(self.metadata_json).unwrap_or(serde_json::Value::Null)
    }
}

/// Which worker a per-worker plugin instance serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerShare {
    pub id: u32,
    pub count: u32,
}

/// What a plugin constructor receives.
#[derive(Clone, Copy)]
pub struct PluginContext<'a> {
    pub config: &'a ProfileConfig,
    pub entry: &'static PluginEntry,
    /// Set for instances owned by one measuring worker.
    pub worker: Option<WorkerShare>,
}

/// Construction of a plugin from the run's configuration. Every plugin type implements
/// this next to its category's protocol.
pub trait Plugin: Sized {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError>;
}

/// A generated fieldless enum naming the linked plugins of one category.
pub trait PluginKind: Copy + Eq + std::fmt::Debug + 'static {
    const CATEGORY: &'static str;
    /// Every linked name, in registration order, winners only.
    fn all() -> &'static [Self];
    fn name(self) -> &'static str;
    fn entry(self) -> &'static PluginEntry;
    /// Looks a name up as AIPerf does: lower-case, `-` and `_` equivalent; a full class
    /// path also selects a shadowed implementation.
    fn from_name(name: &str) -> Option<Self>;
}

/// A generated dispatch enum: one variant per linked implementation.
pub trait DispatchEnum: Sized {
    type Kind: PluginKind;
    fn create(kind: Self::Kind, ctx: &PluginContext<'_>) -> Result<Self, PluginError>;
}

/// Normalises a plugin or category name for lookup.
pub fn normalize_name(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace('-', "_")
}

/// The set of plugins linked into one binary, as the engine needs it.
pub trait PluginSet: 'static {
    type Endpoint: crate::protocols::EndpointProtocol + DispatchEnum;
    type Transport: crate::protocols::TransportProtocol + DispatchEnum;
    type TimingStrategy: crate::protocols::TimingStrategyProtocol + DispatchEnum;
    type ArrivalPattern: crate::protocols::ArrivalPatternProtocol + DispatchEnum;
    type DatasetComposer: crate::protocols::DatasetComposerProtocol + DispatchEnum;
    type Tokenizer: crate::protocols::TokenizerProtocol + DispatchEnum;
    type RecordProcessor: crate::protocols::RecordProcessorProtocol + DispatchEnum;
    type ResultsProcessor: crate::protocols::ResultsProcessorProtocol + DispatchEnum;
    type DataExporter: crate::protocols::DataExporterProtocol + DispatchEnum;
    type ConsoleExporter: crate::protocols::ConsoleExporterProtocol + DispatchEnum;
    type Ui: crate::protocols::UiProtocol + DispatchEnum;
    /// Picks the `--url` of each request (`--url-strategy`).
    type UrlSelectionStrategy: crate::protocols::UrlSelectionStrategyProtocol + DispatchEnum;
    /// Optional: without a linked ramp, ramp flags are refused.
    type Ramp: crate::protocols::RampProtocol + DispatchEnum;
    /// Optional: without a linked loader, `--input-file` is refused.
    type CustomDatasetLoader: crate::protocols::CustomDatasetLoaderProtocol + DispatchEnum;
    /// Optional: without a linked sampler, sessions take the dataset in order and
    /// `--dataset-sampling-strategy` is refused.
    type DatasetSampler: crate::protocols::DatasetSamplerProtocol + DispatchEnum;

    /// Packs linked, in registration order.
    fn packs() -> &'static [PackInfo];
    /// Every manifest entry, shadowed ones included, in registration order.
    fn entries() -> &'static [PluginEntry];
    /// `(category, description)` for each category with linked plugins.
    fn categories() -> &'static [(&'static str, &'static str)];
}
