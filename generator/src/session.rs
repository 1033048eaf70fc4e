//! What every command works on: one `categories.yaml`, the selected packs' manifests, and
//! the conflict resolution over them, with every diagnostic found on the way.
//!
//! `validate`, `plugins`, `build` and the [`crate::registry`] API all load through
//! [`Session::load`], so they see the same files in the same order and report the same
//! problems.

use std::path::{Path, PathBuf};

use crate::manifest::diagnostic::{codes, quote_user, Diagnostic};
use crate::manifest::{
    self, find_pack, load_categories_str_with, load_categories_with, read_pack, resolve,
    CategoriesManifest, LoadOptions, PackInfo, PluginsLoader, PluginsManifest, Resolution,
};

/// What to load.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// The `categories.yaml` to use; `None` for the runtime's.
    pub categories: Option<PathBuf>,
    /// Packs in registration order: names, package directories, `Cargo.toml` files, or
    /// `plugins.yaml` files (see [`pack_for_manifest`]).
    pub packs: Vec<String>,
    /// Extra directories to search for packs by name.
    pub pack_paths: Vec<PathBuf>,
    /// How strictly class paths are checked.
    pub options: LoadOptions,
}

/// The loaded manifests and everything found wrong with them.
#[derive(Debug, Clone)]
pub struct Session {
    /// The categories file that was read.
    pub categories_path: PathBuf,
    /// The categories, when they loaded without errors (with
    /// [`LoadOptions::keep_valid`], those without errors, unless the file failed as a whole).
    pub categories: Option<CategoriesManifest>,
    /// Packs whose manifests loaded without errors, in registration order (with
    /// [`LoadOptions::keep_valid`], every pack with the entries that have no errors, unless
    /// its manifest failed as a whole).
    pub packs: Vec<(PackInfo, PluginsManifest)>,
    /// Every pack that was found, loaded or not (for reports).
    pub found_packs: Vec<PackInfo>,
    /// Conflict resolution over `packs`; `None` when the categories failed.
    pub resolution: Option<Resolution>,
    /// Every problem, in file then position order per stage.
    pub diagnostics: Vec<Diagnostic>,
    /// Files read: the categories file, then each pack's manifest.
    pub files: Vec<PathBuf>,
}

/// The workspace this generator was built from (`AIPERF_GEN_HOME` overrides): home of the
/// runtime, its `categories.yaml` and the built-in packs.
pub fn workspace_root() -> PathBuf {
    let compiled = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let root = std::env::var_os("AIPERF_GEN_HOME")
        .map(PathBuf::from)
        .unwrap_or(compiled);
    root.canonicalize().unwrap_or(root)
}

/// The runtime's `categories.yaml`.
pub fn runtime_categories_path() -> PathBuf {
    workspace_root().join("runtime").join("categories.yaml")
}

/// The pack search path: the workspace's packs, extra directories, `AIPERF_PACK_PATH`.
pub fn pack_search_path(extra: &[PathBuf]) -> Vec<PathBuf> {
    manifest::pack_search_paths(Some(&workspace_root()), extra)
}

/// Whether a path argument names a manifest file rather than a pack: a `.yaml`/`.yml`
/// path, or any existing file other than a `Cargo.toml`.
fn is_manifest_file(path: &Path) -> bool {
    let lower = path.to_string_lossy().to_ascii_lowercase();
    lower.ends_with(".yaml")
        || lower.ends_with(".yml")
        || (path.is_file() && path.file_name().is_some_and(|n| n != "Cargo.toml"))
}

/// The pack a `--plugins` argument names. A bare name (see [`manifest::looks_like_path`])
/// is a pack on the search path; only when there is none is `./NAME` tried, and only as a
/// pack directory (a `Cargo.toml` or a `plugins.yaml` in it), never as a file. A path is a
/// manifest file, a `Cargo.toml`, or a pack directory (a `Cargo.toml`, else a
/// `plugins.yaml`).
#[allow(
    clippy::result_large_err,
    reason = "called once per pack; a diagnostic is the natural error here"
)]
fn locate_pack(arg: &str, search: &[PathBuf]) -> Result<PackInfo, Diagnostic> {
    if manifest::looks_like_path(arg) {
        return pack_at(&manifest::expand_home(arg));
    }
    let not_found = match find_pack(arg, search) {
        Ok(pack) => return Ok(pack),
        Err(d) if d.code == codes::PACK_NOT_FOUND => d,
        Err(d) => return Err(d),
    };
    // Absolute, so diagnostics show where a bare name led (the user wrote no path).
    let local = Path::new(".").join(arg);
    let local = std::path::absolute(&local).unwrap_or(local);
    if local.is_dir()
        && (local.join("Cargo.toml").is_file() || local.join("plugins.yaml").is_file())
    {
        return pack_at(&local);
    }
    if std::fs::symlink_metadata(&local).is_ok() {
        return Err(not_found.with_help(format!(
            "`{}` is not a pack directory (no Cargo.toml or plugins.yaml in it) and a bare \
             name is never read as a file; to read it as a manifest, write it as a path \
             (`./{}`)",
            local.display(),
            quote_user(arg)
        )));
    }
    Err(not_found)
}

/// A warning for each other pack that a bare name matches on the search path: the first
/// is used, and a second copy (an older checkout on `AIPERF_PACK_PATH`) went unmentioned.
fn shadowed(name: &str, used: &PackInfo, search: &[PathBuf]) -> Vec<Diagnostic> {
    let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_owned());
    let used_dir = canonical(&used.root_dir);
    let mut seen = vec![used_dir.clone()];
    let mut out = Vec::new();
    for other in manifest::pack::packs_named(name, search) {
        let dir = canonical(&other);
        if seen.contains(&dir) {
            continue;
        }
        seen.push(dir);
        let message = format!(
            "pack `{}` is also at `{}`; the one at `{}`, found first on the search path, is \
             used",
            quote_user(name),
            other.display(),
            used.root_dir.display()
        );
        out.push(
            Diagnostic::warning(codes::PACK_SHADOWED, other.join("Cargo.toml"), message)
                .with_help("to use another copy, pass its directory as a path (`./path/to/pack`)"),
        );
    }
    out
}

/// The pack at a path the user gave (see [`locate_pack`]).
#[allow(
    clippy::result_large_err,
    reason = "called once per pack; a diagnostic is the natural error here"
)]
fn pack_at(path: &Path) -> Result<PackInfo, Diagnostic> {
    if is_manifest_file(path) {
        return pack_for_manifest(path);
    }
    let manifest = path.join("plugins.yaml");
    // A `plugins.yaml` that is there but cannot be read (a broken link) is named as such,
    // not as a missing `Cargo.toml`.
    if path.is_dir() && !path.join("Cargo.toml").is_file() && manifest.symlink_metadata().is_ok() {
        return pack_for_manifest(&manifest);
    }
    read_pack(path)
}

/// The pack a `plugins.yaml` file belongs to: the nearest enclosing Cargo package that
/// declares this file as its manifest, else a pack named after the file (`acme.yaml` →
/// `acme`) or, for a file called `plugins.yaml`, after its directory; built-in when that
/// name starts with `aiperf`, as for any pack; version `unknown`.
///
/// # Errors
/// A diagnostic when the file does not exist.
#[allow(
    clippy::result_large_err,
    reason = "called once per file; a diagnostic is the natural error here"
)]
pub fn pack_for_manifest(path: &Path) -> Result<PackInfo, Diagnostic> {
    if !path.is_file() {
        let why = crate::manifest::pack::NotAFile::of(path).reason();
        return Err(Diagnostic::error(
            codes::IO,
            path,
            format!("cannot read `{}`: {why}", path.display()),
        ));
    }
    let canonical = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    for dir in canonical.ancestors().skip(1) {
        if !dir.join("Cargo.toml").is_file() {
            continue;
        }
        if let Ok(pack) = read_pack(dir) {
            let declared = pack.manifest_path.canonicalize().ok();
            if declared.as_deref() == Some(canonical.as_path()) {
                // Keep paths as the user wrote them (relative stays relative), so
                // diagnostics about the pack's files read like the command line.
                let mut root_dir = path.to_owned();
                let depth = canonical
                    .strip_prefix(dir)
                    .map_or(1, |r| r.components().count());
                for _ in 0..depth {
                    root_dir.pop();
                }
                if root_dir.as_os_str().is_empty() {
                    root_dir = PathBuf::from(".");
                }
                return Ok(PackInfo {
                    manifest_path: path.to_owned(),
                    root_dir,
                    ..pack
                });
            }
        }
        // The nearest package decides: a manifest is not claimed by packages further up.
        break;
    }
    let dir = canonical.parent().unwrap_or(Path::new("."));
    // `acme/plugins.yaml` is pack `acme`; `manifests/acme.yaml` is pack `acme` too, so
    // several manifests in one directory stay distinct packs.
    let stem = canonical.file_stem().and_then(|n| n.to_str()).unwrap_or("");
    let name = if stem.is_empty() || stem.eq_ignore_ascii_case("plugins") {
        dir.file_name()
            .and_then(|n| n.to_str())
            .filter(|n| !n.is_empty())
            .unwrap_or("manifest")
    } else {
        stem
    }
    .to_owned();
    Ok(PackInfo {
        is_builtin: manifest::is_builtin_pack(&name),
        name,
        version: "unknown".to_owned(),
        description: String::new(),
        authors: Vec::new(),
        root_dir: dir.to_owned(),
        manifest_path: path.to_owned(),
    })
}

impl Session {
    /// Loads the categories, finds and loads every pack, and resolves conflicts. Problems
    /// never stop the next independent step: all packs are read even when one fails.
    pub fn load(inputs: &Inputs) -> Self {
        let mut diagnostics = Vec::new();
        let (categories_path, (categories, diags)) = match &inputs.categories {
            Some(path) => (path.clone(), load_categories_with(path, &inputs.options)),
            None => {
                let path = runtime_categories_path();
                let loaded = if path.is_file() {
                    load_categories_with(&path, &inputs.options)
                } else {
                    // An installed generator may not have its source tree; the runtime
                    // carries the same file.
                    load_categories_str_with(
                        aiperf_runtime::CATEGORIES_YAML,
                        &path,
                        &inputs.options,
                    )
                };
                (path, loaded)
            }
        };
        diagnostics.extend(diags);
        let mut session = Session {
            files: vec![categories_path.clone()],
            categories_path,
            categories: None,
            packs: Vec::new(),
            found_packs: Vec::new(),
            resolution: None,
            diagnostics,
        };
        let Some(categories) = categories else {
            return session;
        };

        let search = pack_search_path(&inputs.pack_paths);
        let loader = PluginsLoader::new(&categories, inputs.options);
        for arg in &inputs.packs {
            if arg.trim().is_empty() {
                session.diagnostics.push(Diagnostic::error(
                    codes::PACK_NOT_FOUND,
                    "--plugins",
                    "an empty pack name in --plugins (a doubled or trailing comma?)",
                ));
                continue;
            }
            // `--plugins "core, acme"` means the pack `acme`, not ` acme`.
            let arg = arg.trim();
            let pack = match locate_pack(arg, &search) {
                Ok(pack) => pack,
                Err(d) => {
                    session.diagnostics.push(d);
                    continue;
                }
            };
            let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_owned());
            if !manifest::looks_like_path(arg) {
                session.diagnostics.extend(shadowed(arg, &pack, &search));
            }
            // Naming a pack twice must not make it conflict with itself.
            let manifest = canonical(&pack.manifest_path);
            let same = |p: &PackInfo| canonical(&p.manifest_path) == manifest;
            if session.found_packs.iter().any(same) {
                continue;
            }
            // The generated crate depends on each pack by its package name, once.
            if let Some(first) = session.found_packs.iter().find(|p| p.name == pack.name) {
                session.diagnostics.push(
                    Diagnostic::error(
                        codes::PACK_NAME_TAKEN,
                        pack.cargo_toml(),
                        format!(
                            "two packs are both the Cargo package `{}`: {} and {}",
                            pack.name,
                            first.root_dir.display(),
                            pack.root_dir.display()
                        ),
                    )
                    .with_help(
                        "a binary links each package once: give one of them another \
                         `[package] name` (or select only one)",
                    ),
                );
                continue;
            }
            session.files.push(pack.manifest_path.clone());
            session.found_packs.push(pack.clone());
            let (plugins, diags) = loader.load(&pack.manifest_path, &pack);
            session.diagnostics.extend(diags);
            if let Some(plugins) = plugins {
                session.packs.push((pack, plugins));
            }
        }
        drop(loader);
        let resolution = resolve(&categories, &session.packs);
        session
            .diagnostics
            .extend(resolution.diagnostics.iter().cloned());
        session.resolution = Some(resolution);
        session.categories = Some(categories);
        session
    }

    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        manifest::has_errors(&self.diagnostics)
    }

    /// Number of entries loaded, shadowed ones included.
    pub fn plugin_count(&self) -> usize {
        self.packs
            .iter()
            .flat_map(|(_, m)| m.categories.iter())
            .map(|(_, entries)| entries.len())
            .sum()
    }

    /// Number of categories defined by the categories file.
    pub fn category_count(&self) -> usize {
        self.categories.as_ref().map_or(0, |c| c.categories.len())
    }
}
