//! Typed metadata of plugin entries, as declared under `metadata:` in `plugins.yaml`.
//!
//! Field names, defaults and required keys follow AIPerf 0.13's Pydantic models so that
//! AIPerf's own manifests validate unchanged. Metadata objects accept unknown keys, as
//! AIPerf's do; the generator's schemas inherit that.

use serde::{Deserialize, Serialize};

#[cfg(feature = "schema")]
use schemars::JsonSchema;

/// How an endpoint talks to its API and what it produces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct EndpointMetadata {
    /// Title suffix of the console metrics table (e.g. `LLM Metrics`).
    #[cfg_attr(feature = "schema", schemars(schema_with = "required_nullable_string"))]
    pub metrics_title: Option<String>,
    /// Path appended to the base URL; null means the base URL is used as is.
    #[cfg_attr(feature = "schema", schemars(schema_with = "required_nullable_string"))]
    pub endpoint_path: Option<String>,
    /// Path used instead of `endpoint_path` when streaming.
    #[serde(default)]
    pub streaming_path: Option<String>,
    /// Service kind, used in the default artifact directory name.
    #[serde(default = "default_service_kind")]
    pub service_kind: String,
    /// Whether `--streaming` is honoured; when false it is dropped.
    pub supports_streaming: bool,
    /// Whether the prompt is tokenized to count input tokens.
    pub tokenizes_input: bool,
    /// Whether the response carries tokens (enables token metrics).
    pub produces_tokens: bool,
    #[serde(default)]
    pub supports_cache_bust: bool,
    #[serde(default)]
    pub supports_audio: bool,
    #[serde(default)]
    pub supports_images: bool,
    #[serde(default)]
    pub supports_videos: bool,
    #[serde(default)]
    pub produces_audio: bool,
    #[serde(default)]
    pub produces_images: bool,
    #[serde(default)]
    pub produces_videos: bool,
    /// Job-style APIs that are submitted and then polled.
    #[serde(default)]
    pub requires_polling: bool,
    /// Multipart form bodies instead of JSON.
    #[serde(default)]
    pub requires_form_data: bool,
    /// Media must be sent inline as base64.
    #[serde(default)]
    pub requires_inline_media: bool,
    /// Whether a system prompt is sent.
    #[serde(default)]
    pub consumes_system_message: bool,
}

fn default_service_kind() -> String {
    "openai".to_owned()
}

/// A key that must be present but may be null, as AIPerf's `str | None` fields without a
/// default. (`schemars(required)` would also forbid null; a custom schema is not an
/// `Option`, so schemars lists the key as required.)
#[cfg(feature = "schema")]
fn required_nullable_string(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": ["string", "null"] })
}

/// Network transport capabilities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct TransportMetadata {
    /// Transport kind, e.g. `http`.
    pub transport_type: String,
    /// URL schemes this transport serves (`http`, `https`).
    #[serde(default)]
    pub url_schemes: Vec<String>,
}

/// Plot chart metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct PlotMetadata {
    /// Human-readable chart name.
    pub display_name: String,
    /// `per_request`, `aggregated`, `combined` or `comparison`.
    pub category: String,
}

/// Engine component metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct ServiceMetadata {
    /// The run cannot proceed without this component.
    pub required: bool,
    /// Started automatically with the run.
    pub auto_start: bool,
    #[serde(default)]
    pub disable_gc: bool,
    /// May run as several instances (one per worker).
    #[serde(default)]
    pub replicable: bool,
}

/// Custom dataset loader metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct CustomDatasetLoaderMetadata {
    /// Rows carry timestamps (trace replay).
    #[serde(default)]
    pub is_trace: bool,
    /// Tokens per `hash_ids` block for this format.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub default_block_size: Option<u32>,
    /// Corpus used to synthesise prompt text.
    #[serde(default = "default_prompt_corpus")]
    pub default_prompt_corpus: String,
    /// Row filter category.
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub multi_turn: bool,
}

fn default_prompt_corpus() -> String {
    "sonnet".to_owned()
}

/// GPU telemetry collector metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct GpuTelemetryCollectorMetadata {
    /// Collects from the local machine (NVML) rather than a remote exporter.
    #[serde(default)]
    pub is_local: bool,
}

/// Which kind of record a record processor produces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct RecordProcessorMetadata {
    /// `metric_records`, `accuracy`, `gpu_telemetry`, `server_metrics`,
    /// `network_latency` or `credit_phase_stats`.
    pub record_type: RecordType,
}

/// Record kinds routed between processors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum RecordType {
    MetricRecords,
    Accuracy,
    GpuTelemetry,
    ServerMetrics,
    NetworkLatency,
    CreditPhaseStats,
}

/// Tokenizer metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct TokenizerMetadata {
    /// Tokenizer names (`--tokenizer` values) this plugin answers to, e.g. `builtin`.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Whether counting needs nothing from disk or network.
    #[serde(default)]
    pub embedded: bool,
}

/// Metadata of a category whose entries the runtime does not type.
pub type UntypedMetadata = serde_json::Map<String, serde_json::Value>;
