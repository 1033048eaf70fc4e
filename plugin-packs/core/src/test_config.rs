//! Test helpers: a `ProfileConfig` parsed from flags exactly as a binary would, and
//! plugin contexts around it.

use aiperf_runtime::__private::clap::{Args, Command, FromArgMatches};
use aiperf_runtime::config::ProfileConfig;
use aiperf_runtime::plugin::{PluginContext, PluginEntry, WorkerShare};

/// Parses `profile` flags (without the program name).
pub(crate) fn config(args: &[&str]) -> ProfileConfig {
    let command = ProfileConfig::augment_args(Command::new("profile"));
    let matches = command
        .try_get_matches_from(std::iter::once("profile").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("test flags {args:?} do not parse: {e}"));
    ProfileConfig::from_arg_matches(&matches)
        .unwrap_or_else(|e| panic!("test flags {args:?} do not convert: {e}"))
}

/// An entry with the given metadata, for categories whose plugins read it.
pub(crate) const fn entry(
    category: &'static str,
    name: &'static str,
    metadata_json: &'static str,
) -> PluginEntry {
    PluginEntry {
        category,
        name,
        class_path: "aiperf_core::test:Plugin",
        pack: "aiperf-core",
        priority: 0,
        description: "",
        metadata_json,
        shadowed_by: None,
    }
}

pub(crate) static EMPTY_ENTRY: PluginEntry = entry("test", "test", "{}");

/// A context for a plugin shared by the whole run.
pub(crate) fn context<'a>(
    config: &'a ProfileConfig,
    entry: &'static PluginEntry,
) -> PluginContext<'a> {
    PluginContext {
        config,
        entry,
        worker: None,
    }
}

/// A context for a plugin owned by worker `id` of `count`.
pub(crate) fn worker_context<'a>(
    config: &'a ProfileConfig,
    id: u32,
    count: u32,
) -> PluginContext<'a> {
    PluginContext {
        config,
        entry: &EMPTY_ENTRY,
        worker: Some(WorkerShare { id, count }),
    }
}

/// The `endpoint` entries of a `plugins.yaml`, with their metadata as JSON, read by a
/// line parser that knows just this manifest's layout (two-space indents, scalar
/// metadata values): enough for unit tests to use the metadata the pack ships.
pub(crate) fn endpoint_entries(
    manifest: &str,
) -> std::collections::HashMap<String, &'static PluginEntry> {
    let mut entries = std::collections::HashMap::new();
    let mut in_endpoints = false;
    let mut current: Option<(String, serde_json::Map<String, serde_json::Value>)> = None;
    let mut in_metadata = false;
    let mut finish = |current: Option<(String, serde_json::Map<String, serde_json::Value>)>| {
        if let Some((name, metadata)) = current {
            let name: &'static str = Box::leak(name.into_boxed_str());
            let json: &'static str = Box::leak(
                serde_json::Value::Object(metadata)
                    .to_string()
                    .into_boxed_str(),
            );
            let entry: &'static PluginEntry = Box::leak(Box::new(entry("endpoint", name, json)));
            entries.insert(name.to_owned(), entry);
        }
    };
    for line in manifest.lines() {
        let indent = line.len() - line.trim_start().len();
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        if indent == 0 {
            in_endpoints = text == "endpoint:";
            continue;
        }
        if !in_endpoints {
            continue;
        }
        match indent {
            2 => {
                finish(current.take());
                current = Some((text.trim_end_matches(':').to_owned(), Default::default()));
                in_metadata = false;
            }
            4 => in_metadata = text == "metadata:",
            6 if in_metadata => {
                let (key, value) = text.split_once(':').expect("key: value");
                let value = match value.trim() {
                    "true" => serde_json::Value::Bool(true),
                    "false" => serde_json::Value::Bool(false),
                    "null" => serde_json::Value::Null,
                    other => serde_json::Value::String(other.to_owned()),
                };
                if let Some((_, metadata)) = current.as_mut() {
                    metadata.insert(key.trim().to_owned(), value);
                }
            }
            _ => {}
        }
    }
    finish(current.take());
    entries
}
