//! Writes the generated crate: `Cargo.toml`, `README.md` and `Dockerfile` from the
//! minijinja templates in `templates/`, `src/main.rs` from [`crate::codegen`].
//!
//! Files are written only when their content changed: cargo decides freshness by mtime,
//! so rewriting identical bytes would rebuild the crate for nothing.

use std::path::{Path, PathBuf};

use minijinja::{Environment, Value};
use serde::Serialize;

use crate::codegen;
use crate::plan::BuildPlan;

const CARGO_TOML: &str = include_str!("../../templates/Cargo.toml.j2");
const README: &str = include_str!("../../templates/README.md.j2");
const DOCKERFILE: &str = include_str!("../../templates/Dockerfile.j2");

/// Where the generated crate's own dependencies live.
#[derive(Debug, Clone)]
pub struct CrateInputs {
    pub runtime_path: PathBuf,
    pub macros_path: PathBuf,
    /// A `Cargo.lock` to start from, so the build reuses already compiled versions.
    pub lockfile: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum CrateGenError {
    #[error(transparent)]
    Codegen(#[from] codegen::CodegenError),
    #[error("template {name}: {source}")]
    Template {
        name: &'static str,
        source: minijinja::Error,
    },
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{0}` is not a valid Cargo package name (letters, digits, `-` and `_` only)")]
    PackageName(String),
}

#[derive(Serialize)]
struct PackView<'a> {
    name: &'a str,
    version: &'a str,
    builtin: bool,
    root: String,
}

#[derive(Serialize)]
struct CategoryView<'a> {
    name: &'a str,
    names: Vec<&'a str>,
}

fn valid_package_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit() || c == '-')
}

/// Renders every file of the crate; returns `(relative path, content)` pairs.
pub fn render(
    plan: &BuildPlan,
    inputs: &CrateInputs,
) -> Result<Vec<(PathBuf, String)>, CrateGenError> {
    for name in std::iter::once(&plan.package_name).chain(plan.packs.iter().map(|p| &p.name)) {
        if !valid_package_name(name) {
            return Err(CrateGenError::PackageName(name.clone()));
        }
    }
    let main_rs = codegen::generate_main(plan)?;

    let env = Environment::new();
    let packs: Vec<PackView> = plan
        .packs
        .iter()
        .map(|p| PackView {
            name: &p.name,
            version: &p.version,
            builtin: p.builtin,
            root: p.root.display().to_string(),
        })
        .collect();
    let categories: Vec<CategoryView> = plan
        .categories
        .iter()
        .filter(|c| !c.entries.is_empty())
        .map(|c| CategoryView {
            name: &c.name,
            names: c
                .entries
                .iter()
                .filter(|e| e.shadowed_by.is_none())
                .map(|e| e.name.as_str())
                .collect(),
        })
        .collect();
    let ctx = Value::from(minijinja::value::Serde(serde_json::json!({
        "generator_version": env!("CARGO_PKG_VERSION"),
        "package_name": &plan.package_name,
        "packs": packs,
        "categories": categories,
        "decisions": &plan.decisions,
        "runtime_path": inputs.runtime_path.display().to_string(),
        "macros_path": inputs.macros_path.display().to_string(),
    })));
    let render = |name: &'static str, source: &str| {
        // Templates end with a newline, which minijinja drops by default.
        env.render_str(source, &ctx)
            .map(|text| text + "\n")
            .map_err(|source| CrateGenError::Template { name, source })
    };
    Ok(vec![
        (
            PathBuf::from("Cargo.toml"),
            render("Cargo.toml.j2", CARGO_TOML)?,
        ),
        (PathBuf::from("README.md"), render("README.md.j2", README)?),
        (
            PathBuf::from("Dockerfile"),
            render("Dockerfile.j2", DOCKERFILE)?,
        ),
        (PathBuf::from("src/main.rs"), main_rs),
    ])
}

/// Writes the crate into `dir`; returns how many files changed.
pub fn write_crate(
    plan: &BuildPlan,
    inputs: &CrateInputs,
    dir: &Path,
) -> Result<usize, CrateGenError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CrateGenError::Io { path, source }
    };
    let mut changed = 0;
    for (rel, content) in render(plan, inputs)? {
        let path = dir.join(&rel);
        if write_if_changed(&path, content.as_bytes()).map_err(io(&path))? {
            tracing::debug!("wrote {}", path.display());
            changed += 1;
        } else {
            tracing::trace!("unchanged {}", path.display());
        }
    }
    if let Some(lock) = &inputs.lockfile {
        let target = dir.join("Cargo.lock");
        // Seed the lock once; later builds keep the versions cargo settled on.
        if !target.exists() && lock.exists() {
            std::fs::copy(lock, &target).map_err(io(&target))?;
        }
    }
    Ok(changed)
}

/// Writes `bytes` unless the file already holds exactly them.
pub fn write_if_changed(path: &Path, bytes: &[u8]) -> std::io::Result<bool> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(false);
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, bytes)?;
    Ok(true)
}
