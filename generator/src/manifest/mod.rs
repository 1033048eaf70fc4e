//! The manifest layer: discovering packs, reading and validating `categories.yaml` and
//! `plugins.yaml`, and resolving plugin name conflicts.
//!
//! ```text
//! find_pack ─────► PackInfo ───────────┐
//! load_categories ─► CategoriesManifest ┴─► load_plugins ─► PluginsManifest ─► resolve
//!        (each load returns Option<model> + Vec<Diagnostic>)
//! ```
//!
//! * [`yaml`] turns YAML into a `serde_json::Value` plus a JSON pointer → line:col index,
//!   rejecting what YAML allows but manifests must not contain (duplicate and merge keys,
//!   several documents, non-string keys) and bounding size, depth and alias expansion.
//! * [`schema`] generates the JSON Schemas from the [`model`] types and the runtime's
//!   metadata types; [`load`] validates against them with `jsonschema` and maps every
//!   error back to `file:line:col`, then checks class paths ([`class_path`]) and names.
//! * [`pack`] finds packs (Cargo packages with `[package.metadata.aiperf] plugins`).
//! * [`mod@resolve`] applies AIPerf's conflict rules.
//!
//! Nothing here panics on bad input; problems come back as [`Diagnostic`]s, all of them
//! in one pass.

pub mod class_path;
pub mod compat;
pub mod diagnostic;
pub mod load;
pub mod model;
pub mod pack;
pub mod resolve;
pub mod schema;
pub mod yaml;

pub use class_path::{check_shape, ClassPath, ClassPathError, ClassPathErrorKind, ClassPathStyle};
pub use diagnostic::{has_errors, render, Diagnostic, Severity};
pub use load::{
    load_categories, load_categories_str, load_categories_str_with, load_categories_with,
    load_plugins, load_plugins_str, ClassPathRule, LoadOptions, PluginsLoader,
};
pub use model::{
    normalize_name, CategoriesManifest, CategorySpec, OrderedMap, PluginSpec, PluginsManifest,
    SourcePos, SCHEMA_VERSION,
};
pub use pack::{
    discover_packs, expand_home, find_pack, is_builtin_pack, looks_like_path, pack_search_paths,
    pack_search_paths_with_env, read_pack, PackInfo, PACK_PATH_ENV,
};
pub use resolve::{
    resolve, Decision, EntryStatus, OverrideReason, Resolution, ResolvedCategory, ResolvedEntry,
};
pub use schema::{
    categories_schema, metadata_type, plugins_schema, MetadataType, AIPERF_ONLY_METADATA_TYPES,
    METADATA_TYPES,
};
pub use yaml::{parse_yaml, Pos, SpanIndex, YamlDocument, YamlLimits};
