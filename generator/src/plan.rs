//! The build plan: what the generated crate will link, after discovery, validation and
//! conflict resolution. Code generation reads only this.

use std::path::PathBuf;

/// A pack linked into the binary.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanPack {
    /// Cargo package name, e.g. `aiperf-core`.
    pub name: String,
    /// Rust crate name, e.g. `aiperf_core`.
    pub crate_name: String,
    pub version: String,
    pub description: String,
    pub authors: String,
    pub builtin: bool,
    /// Directory holding the pack's Cargo.toml.
    pub root: PathBuf,
}

/// One manifest entry as it will be linked.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanEntry {
    pub name: String,
    /// `crate::module:Type`, as written in the manifest.
    pub class_path: String,
    pub pack: String,
    pub priority: i64,
    pub description: String,
    /// The entry's metadata, serialised as compact JSON.
    pub metadata_json: String,
    /// Class path of the entry that took this name, when shadowed.
    pub shadowed_by: Option<String>,
}

impl PlanEntry {
    /// The Rust path of the implementing type (`crate::module::Type`).
    pub fn rust_path(&self) -> String {
        class_to_rust_path(&self.class_path)
    }
}

/// A category with its linked entries, in registration order.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanCategory {
    pub name: String,
    pub description: String,
    /// `crate::module:Trait`, as written in categories.yaml.
    pub protocol: String,
    /// The kind enum's name, e.g. `EndpointType`.
    pub enum_name: String,
    pub entries: Vec<PlanEntry>,
}

/// Everything code generation needs.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildPlan {
    /// Cargo package (and binary) name of the generated crate.
    pub package_name: String,
    pub packs: Vec<PlanPack>,
    pub categories: Vec<PlanCategory>,
    /// Human-readable notes on conflicts and how they were settled.
    pub decisions: Vec<String>,
}

/// Converts `crate::module:Name` into the Rust path `crate::module::Name`.
pub fn class_to_rust_path(class_path: &str) -> String {
    match class_path.rsplit_once(':') {
        Some((module, name)) if !module.ends_with(':') => format!("{module}::{name}"),
        _ => class_path.to_owned(),
    }
}
