//! `aiperf-gen plugins`: AIPerf's plugin explorer over manifests, before anything is
//! built.
//!
//! The text comes from [`aiperf_runtime::explorer`], which generated binaries use for
//! their own `plugins` command; this module only fills its [`Catalog`] from a loaded
//! [`Session`], exactly as code generation fills the binary's statics, so both show the
//! same thing.

use aiperf_runtime::explorer::{
    render_validation, Catalog, CategoryRow, EntryRow, PackRow, Problem,
};

use crate::check_class::{self, ClassProblem};
use crate::manifest::EntryStatus;
use crate::session::Session;

/// The catalog of a loaded session: its packs, every category it knows, every entry.
pub fn catalog(session: &Session) -> Catalog {
    let packs = session
        .packs
        .iter()
        .map(|(p, _)| PackRow {
            name: p.name.clone(),
            version: p.version.clone(),
            description: p.description.clone(),
            builtin: p.is_builtin,
        })
        .collect();
    let mut categories: Vec<CategoryRow> = Vec::new();
    let mut entries = Vec::new();
    if let Some(resolution) = &session.resolution {
        for category in &resolution.categories {
            categories.push(CategoryRow {
                name: category.name.clone(),
                description: category
                    .spec
                    .as_ref()
                    .map(|s| s.description.clone())
                    .unwrap_or_default(),
            });
            entries.extend(category.entries.iter().map(|e| EntryRow {
                category: category.name.clone(),
                name: e.name.clone(),
                class_path: e.class_path.clone(),
                pack: e.pack.clone(),
                priority: e.priority,
                description: e.description.clone(),
                metadata: e.metadata.clone(),
                shadowed_by: match &e.status {
                    EntryStatus::Winner => None,
                    EntryStatus::Shadowed { by_class_path, .. } => Some(by_class_path.clone()),
                },
            }));
        }
    }
    Catalog {
        packs,
        categories,
        entries,
    }
}

/// `plugins --validate`: the class checks of `validate --check-class` (Rust class paths,
/// then types and impls in the sources), listed per entry. Metadata was checked when the
/// manifests loaded. Returns the text and whether everything passed.
pub fn validation(session: &Session) -> (String, bool) {
    let mut problems: Vec<ClassProblem> = check_class::rust_paths(session);
    problems.extend(check_class::check_sources(session));
    let class_paths: Vec<Problem> = problems
        .iter()
        .filter(|p| p.diagnostic.is_error())
        .map(|p| {
            let (category, name) = p.subject.category_and_name();
            let name = if name.is_empty() {
                // Source files are not entries: name the file instead.
                p.diagnostic.file.display().to_string()
            } else {
                name.to_owned()
            };
            Problem {
                category: category.to_owned(),
                name,
                message: p.diagnostic.message.clone(),
            }
        })
        .collect();
    render_validation(&[("Class paths", class_paths), ("Metadata", Vec::new())])
}
