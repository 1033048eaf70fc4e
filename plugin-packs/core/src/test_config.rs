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
