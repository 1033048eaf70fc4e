//! Metadata models AIPerf 0.13 defines for categories the runtime does not have.
//!
//! They exist only so that AIPerf's own `plugins.yaml` is checked against typed metadata,
//! as AIPerf's `plugins.schema.json` does: with them, every one of AIPerf's 13
//! `metadata_class` values maps to a schema. Field names, defaults and required keys follow
//! AIPerf's Pydantic models; unknown keys are allowed, as there.

use aiperf_runtime::metadata::RecordType;
use schemars::JsonSchema;
use serde::Deserialize;

/// AIPerf's `PublicDatasetLoaderMetadata`: where a remote dataset is and how to read it.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
pub struct PublicDatasetLoaderMetadata {
    /// Hugging Face dataset id.
    #[serde(default)]
    pub hf_dataset_name: Option<String>,
    /// Split to read.
    #[serde(default = "default_split")]
    pub hf_split: String,
    /// Subset (configuration) to read.
    #[serde(default)]
    pub hf_subset: Option<String>,
    /// Rows carry timestamps (trace replay).
    #[serde(default)]
    pub is_trace: bool,
    /// Tokens per `hash_ids` block.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub default_block_size: Option<u32>,
    /// Corpus used to synthesise prompt text.
    #[serde(default = "default_corpus")]
    pub default_prompt_corpus: String,
    #[serde(default)]
    pub prompt_column: Option<String>,
    #[serde(default)]
    pub image_column: Option<String>,
    #[serde(default)]
    pub video_column: Option<String>,
    #[serde(default)]
    pub audio_column: Option<String>,
    #[serde(default)]
    pub conversation_column: Option<String>,
    /// Key of the text inside a message object.
    #[serde(default = "default_content_key")]
    pub message_content_key: String,
    #[serde(default)]
    pub multi_turn: bool,
    /// Read the dataset as a stream instead of downloading it first.
    #[serde(default)]
    pub streaming: bool,
    #[serde(default)]
    pub has_timing_data: bool,
    /// `str.format` template over the row's columns.
    #[serde(default)]
    pub prompt_template: Option<String>,
}

fn default_split() -> String {
    "train".to_owned()
}

fn default_corpus() -> String {
    "sonnet".to_owned()
}

fn default_content_key() -> String {
    "content".to_owned()
}

/// AIPerf's `RecordRoutingMetadata`: which record kinds an accumulator or stream exporter
/// receives.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
pub struct RecordRoutingMetadata {
    /// Record kinds routed to this plugin.
    pub record_types: Vec<RecordType>,
}

/// AIPerf's `AnalyzerMetadata`: what an analyzer needs before it runs.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
pub struct AnalyzerMetadata {
    /// Accumulators that must be present.
    #[serde(default)]
    pub required_accumulators: Vec<String>,
    /// Summaries that must be present.
    #[serde(default)]
    pub required_summaries: Vec<String>,
}

/// AIPerf's `ConvergenceCriterionMetadata`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
pub struct ConvergenceCriterionMetadata {
    /// Runs needed before the criterion can stop the loop.
    #[schemars(range(min = 1))]
    pub min_samples: u32,
    #[serde(default)]
    pub requires_confidence_level: bool,
    #[serde(default)]
    pub requires_jsonl_export: bool,
    /// Metric kinds the criterion understands.
    #[serde(default = "default_metric_kinds")]
    pub metric_kinds: Vec<String>,
}

fn default_metric_kinds() -> Vec<String> {
    vec!["continuous".to_owned()]
}

/// AIPerf's `SearchPlannerMetadata`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
pub struct SearchPlannerMetadata {
    pub supports_continuous: bool,
    pub supports_discrete: bool,
    #[serde(default)]
    pub supports_categorical: bool,
    /// Samples taken before the planner starts modelling.
    #[serde(default)]
    pub requires_initial_samples: Option<u32>,
    #[serde(default = "default_directions")]
    pub compatible_objective_directions: Vec<String>,
    /// Optional Python extras the planner needs.
    #[serde(default)]
    pub requires_extras: Vec<String>,
}

fn default_directions() -> Vec<String> {
    vec!["maximize".to_owned(), "minimize".to_owned()]
}
