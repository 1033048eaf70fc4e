//! Plugin packs: Cargo packages that declare a `plugins.yaml`.
//!
//! A pack's `Cargo.toml` carries `[package.metadata.aiperf] plugins = "plugins.yaml"`, the
//! analogue of AIPerf's `aiperf.plugins` entry point. Its name, version, description and
//! authors come from the same `Cargo.toml` (following `field.workspace = true` to the
//! workspace root). Packs are found by name on a search path or used by path.

use std::ffi::OsStr;
use std::path::{Component, Path, PathBuf};

use toml::{Table, Value};

use super::diagnostic::{codes, did_you_mean, quote_user, Diagnostic, SourceLines};

/// Environment variable with extra pack directories, `:`-separated.
pub const PACK_PATH_ENV: &str = "AIPERF_PACK_PATH";

/// What the generator knows about a pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackInfo {
    /// Cargo package name (`aiperf-core`).
    pub name: String,
    /// Package version; `unknown` when it cannot be determined.
    pub version: String,
    /// Package description; empty when absent.
    pub description: String,
    /// Package authors.
    pub authors: Vec<String>,
    /// Directory holding `Cargo.toml`.
    pub root_dir: PathBuf,
    /// The pack's `plugins.yaml`.
    pub manifest_path: PathBuf,
    /// Built-in pack: beaten by external packs at equal priority.
    pub is_builtin: bool,
}

impl PackInfo {
    /// The crate name Rust code uses for the package (`aiperf_core`).
    pub fn crate_name(&self) -> String {
        self.name.replace('-', "_")
    }

    /// The pack's `Cargo.toml`.
    pub fn cargo_toml(&self) -> PathBuf {
        self.root_dir.join("Cargo.toml")
    }
}

/// Whether a package name marks a built-in pack. As in AIPerf, built-in means the name
/// starts with `aiperf`.
pub fn is_builtin_pack(name: &str) -> bool {
    name.starts_with("aiperf")
}

/// The pack search path, in lookup order: the workspace's `plugin-packs/`, then the
/// `--pack-path` directories, then the directories in `AIPERF_PACK_PATH`.
pub fn pack_search_paths(workspace_root: Option<&Path>, pack_paths: &[PathBuf]) -> Vec<PathBuf> {
    let env = std::env::var_os(PACK_PATH_ENV);
    pack_search_paths_with_env(workspace_root, pack_paths, env.as_deref())
}

/// [`pack_search_paths`] with the environment variable's value passed in (for tests and
/// callers that sanitise the environment).
pub fn pack_search_paths_with_env(
    workspace_root: Option<&Path>,
    pack_paths: &[PathBuf],
    env_value: Option<&OsStr>,
) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(root) = workspace_root {
        paths.push(root.join("plugin-packs"));
    }
    paths.extend(pack_paths.iter().cloned());
    if let Some(value) = env_value {
        paths.extend(std::env::split_paths(value).filter(|p| !p.as_os_str().is_empty()));
    }
    paths
}

/// Whether a `--plugins` argument is a path rather than a pack name: it holds a path
/// separator, starts with `.` or `~`, or ends in `.toml`, `.yaml` or `.yml`. Anything else
/// is a bare name, looked up among the packs first, so a stray file or directory in the
/// current directory (a core dump is called `core`) never shadows a pack. Cargo package
/// names cannot hold `.`, `/` or `~`, so no pack name looks like a path.
pub fn looks_like_path(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    text.contains('/')
        || text.contains(std::path::MAIN_SEPARATOR)
        || text.starts_with('.')
        || text.starts_with('~')
        || [".toml", ".yaml", ".yml"]
            .iter()
            .any(|ext| lower.ends_with(ext))
}

/// A path argument with a leading `~` or `~/` read as the home directory (`--plugins=~/p`
/// reaches the program unexpanded); other paths unchanged.
pub fn expand_home(path: &str) -> PathBuf {
    let home = || {
        std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
    };
    match path.strip_prefix('~') {
        Some("") => home().unwrap_or_else(|| PathBuf::from(path)),
        Some(rest) if rest.starts_with('/') => home().map_or_else(
            || PathBuf::from(path),
            |h| h.join(rest.trim_start_matches('/')),
        ),
        _ => PathBuf::from(path),
    }
}

/// Finds a pack by name or path.
///
/// A path (see [`looks_like_path`]) is read directly. A name is looked up under each
/// search path in order: a directory whose `Cargo.toml` package name equals it, or whose
/// directory name equals it; a search path that is itself a package also counts.
///
/// # Errors
/// A diagnostic when no pack matches, or the matching package is not a valid pack (see
/// [`read_pack`]).
#[allow(
    clippy::result_large_err,
    reason = "called once per pack; a diagnostic is the natural error here"
)]
pub fn find_pack(name_or_path: &str, search_paths: &[PathBuf]) -> Result<PackInfo, Diagnostic> {
    if looks_like_path(name_or_path) {
        return read_pack(&expand_home(name_or_path));
    }
    let mut seen_names = Vec::new();
    for dir in search_paths {
        for candidate in candidates(dir) {
            let dir_name = candidate
                .file_name()
                .and_then(OsStr::to_str)
                .unwrap_or_default();
            let package = package_name(&candidate.join("Cargo.toml"));
            if package.as_deref() == Some(name_or_path) || dir_name == name_or_path {
                return read_pack(&candidate);
            }
            seen_names.extend(package);
        }
    }

    let searched: Vec<String> = search_paths
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let message = format!(
        "no plugin pack named `{}` (searched: {})",
        quote_user(name_or_path),
        if searched.is_empty() {
            "no directories".to_owned()
        } else {
            searched.join(", ")
        }
    );
    let help = match did_you_mean(name_or_path, seen_names.iter().map(String::as_str)) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!(
            "pass the pack's directory as a path (`./path/to/pack`), or add its parent \
             directory with `--pack-path` or {PACK_PATH_ENV}"
        ),
    };
    Err(Diagnostic::error(codes::PACK_NOT_FOUND, name_or_path, message).with_help(help))
}

/// The package directories on the search path that a bare pack name matches, in lookup
/// order: [`find_pack`] takes the first; the others are the packs it hides.
pub fn packs_named(name: &str, search_paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for dir in search_paths {
        for candidate in candidates(dir) {
            let dir_name = candidate.file_name().and_then(OsStr::to_str);
            let package = package_name(&candidate.join("Cargo.toml"));
            if package.as_deref() == Some(name) || dir_name == Some(name) {
                found.push(candidate);
            }
        }
    }
    found
}

/// All packs on the search path, in lookup order, with diagnostics for package directories
/// that are not valid packs. A name found twice is listed once (the first wins, as in
/// [`find_pack`]).
pub fn discover_packs(search_paths: &[PathBuf]) -> (Vec<PackInfo>, Vec<Diagnostic>) {
    let mut packs: Vec<PackInfo> = Vec::new();
    let mut diagnostics = Vec::new();
    for dir in search_paths {
        for candidate in candidates(dir) {
            match read_pack(&candidate) {
                Ok(pack) if packs.iter().all(|p| p.name != pack.name) => packs.push(pack),
                Ok(_) => {}
                // Ordinary crates may share a directory with packs; only report packages
                // that tried to be packs.
                Err(d) if d.code == codes::PACK_NO_MANIFEST_KEY => {}
                Err(d) => diagnostics.push(d),
            }
        }
    }
    (packs, diagnostics)
}

/// Package directories under a search path: the path itself if it is a package, then its
/// subdirectories that hold a `Cargo.toml`, sorted by name so lookup is deterministic.
fn candidates(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if dir.join("Cargo.toml").is_file() {
        out.push(dir.to_owned());
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut subdirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    subdirs.sort();
    out.extend(subdirs);
    out
}

/// The package name in a `Cargo.toml`, if it parses.
fn package_name(cargo_toml: &Path) -> Option<String> {
    let text = std::fs::read_to_string(cargo_toml).ok()?;
    let table: Table = text.parse().ok()?;
    table
        .get("package")?
        .get("name")?
        .as_str()
        .map(str::to_owned)
}

/// Reads a pack from its directory (or its `Cargo.toml`).
///
/// # Errors
/// A diagnostic when the directory or `Cargo.toml` is missing or invalid, when the package
/// declares no `[package.metadata.aiperf] plugins`, when the declared path leaves the
/// package, or when the manifest file does not exist. Messages name the package, its
/// `Cargo.toml` and the expected manifest path.
#[allow(
    clippy::result_large_err,
    reason = "called once per pack; a diagnostic is the natural error here"
)]
pub fn read_pack(path: &Path) -> Result<PackInfo, Diagnostic> {
    let (root_dir, cargo_toml) = if path.file_name() == Some(OsStr::new("Cargo.toml")) {
        (
            path.parent()
                .map_or_else(|| PathBuf::from("."), Path::to_owned),
            path.to_owned(),
        )
    } else {
        (path.to_owned(), path.join("Cargo.toml"))
    };
    if !root_dir.is_dir() {
        // A device or a socket given as a pack (`/dev/null`) exists: saying it does not
        // would send the user looking for a typo.
        let message = if root_dir.exists() {
            format!(
                "`{}` is not a plugin pack: neither a directory nor a manifest file",
                root_dir.display()
            )
        } else {
            // "does not exist", or "is a symbolic link to nothing".
            format!(
                "plugin pack directory `{}` {}",
                root_dir.display(),
                NotAFile::of(&root_dir).predicate()
            )
        };
        return Err(Diagnostic::error(codes::PACK_NOT_FOUND, path, message));
    }
    let text = std::fs::read_to_string(&cargo_toml).map_err(|e| {
        Diagnostic::error(
            codes::PACK_CARGO_TOML,
            &cargo_toml,
            format!(
                "`{}` is not a Cargo package: cannot read Cargo.toml: {e}",
                root_dir.display()
            ),
        )
    })?;
    let table: Table = text.parse().map_err(|e: toml::de::Error| {
        let lines = SourceLines::new(&text);
        let pos = e.span().map(|span| offset_to_pos(&text, span.start));
        let message = format!("invalid Cargo.toml: {}", e.message().trim());
        let d = Diagnostic::error(codes::PACK_CARGO_TOML, &cargo_toml, message);
        super::diagnostic::located(d, &lines, pos)
    })?;

    let package = table
        .get("package")
        .and_then(Value::as_table)
        .ok_or_else(|| {
            Diagnostic::error(
                codes::PACK_CARGO_TOML,
                &cargo_toml,
                "Cargo.toml has no [package] section (a workspace root is not a plugin pack)",
            )
        })?;
    let name = package.get("name").and_then(Value::as_str).ok_or_else(|| {
        Diagnostic::error(
            codes::PACK_CARGO_TOML,
            &cargo_toml,
            "Cargo.toml has no package name",
        )
    })?;

    let workspace = WorkspaceFields::new(&root_dir);
    let version = string_field(package, "version", &workspace).unwrap_or_else(|| "unknown".into());
    let description = string_field(package, "description", &workspace).unwrap_or_default();
    let authors = list_field(package, "authors", &workspace);

    let default_manifest = root_dir.join("plugins.yaml");
    let declared = package
        .get("metadata")
        .and_then(|m| m.get("aiperf"))
        .and_then(|a| a.get("plugins"));
    let relative = match declared {
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(Diagnostic::error(
                codes::PACK_NO_MANIFEST_KEY,
                &cargo_toml,
                format!(
                    "package `{name}`: `[package.metadata.aiperf] plugins` must be a string path"
                ),
            )
            .with_help("write `plugins = \"plugins.yaml\"`"));
        }
        None => {
            return Err(Diagnostic::error(
                codes::PACK_NO_MANIFEST_KEY,
                &cargo_toml,
                format!(
                    "package `{name}` is not a plugin pack: {} has no \
                     `[package.metadata.aiperf] plugins` key (expected manifest: {})",
                    cargo_toml.display(),
                    default_manifest.display()
                ),
            )
            .with_help(format!(
                "add to {}:\n[package.metadata.aiperf]\nplugins = \"plugins.yaml\"",
                cargo_toml.display()
            )));
        }
    };

    let relative_path = Path::new(&relative);
    let escapes = relative_path.is_absolute()
        || relative_path.components().any(|c| {
            matches!(
                c,
                Component::ParentDir | Component::Prefix(_) | Component::RootDir
            )
        });
    if escapes || relative.is_empty() {
        return Err(Diagnostic::error(
            codes::PACK_MANIFEST_OUTSIDE,
            &cargo_toml,
            format!(
                "package `{name}`: plugin manifest path `{}` must be a relative path inside \
                 the package",
                quote_user(&relative)
            ),
        )
        .with_help("the manifest ships with the package; use a path like `plugins.yaml`"));
    }

    let manifest_path = root_dir.join(relative_path);
    if !manifest_path.is_file() {
        return Err(Diagnostic::error(
            codes::PACK_MANIFEST_MISSING,
            &cargo_toml,
            format!(
                "plugin manifest of package `{name}` not found: {} declares \
                 `plugins = \"{}\"`, but {} {}",
                cargo_toml.display(),
                quote_user(&relative),
                manifest_path.display(),
                NotAFile::of(&manifest_path).predicate()
            ),
        )
        .with_help(
            "create the file or fix the path; for a published package, make sure \
             `include`/`exclude` in Cargo.toml ship it",
        ));
    }

    Ok(PackInfo {
        name: name.to_owned(),
        version,
        description,
        authors,
        root_dir,
        manifest_path,
        is_builtin: is_builtin_pack(name),
    })
}

/// `[workspace.package]` of the nearest enclosing workspace, read only when a field says
/// `workspace = true`.
struct WorkspaceFields {
    start: PathBuf,
    table: std::cell::OnceCell<Option<Table>>,
}

impl WorkspaceFields {
    fn new(package_dir: &Path) -> Self {
        Self {
            start: package_dir.to_owned(),
            table: std::cell::OnceCell::new(),
        }
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.table
            .get_or_init(|| find_workspace_package(&self.start))
            .as_ref()?
            .get(key)
    }
}

fn find_workspace_package(package_dir: &Path) -> Option<Table> {
    // Cargo looks for the workspace root in the parent directories; the package's own
    // directory can be the root too.
    for dir in package_dir.ancestors() {
        let Ok(text) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
            continue;
        };
        let Ok(table) = text.parse::<Table>() else {
            continue;
        };
        if let Some(workspace) = table.get("workspace").and_then(Value::as_table) {
            return workspace.get("package").and_then(Value::as_table).cloned();
        }
    }
    None
}

fn inherits(value: &Value) -> bool {
    value.get("workspace").and_then(Value::as_bool) == Some(true)
}

fn string_field(package: &Table, key: &str, workspace: &WorkspaceFields) -> Option<String> {
    match package.get(key)? {
        Value::String(s) => Some(s.clone()),
        v if inherits(v) => workspace
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    }
}

fn list_field(package: &Table, key: &str, workspace: &WorkspaceFields) -> Vec<String> {
    let value = match package.get(key) {
        Some(v) if inherits(v) => workspace.get(key),
        other => other,
    };
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// 1-based line and column (in characters) of a byte offset.
fn offset_to_pos(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Why a path is not a file to read.
pub(crate) enum NotAFile {
    Missing,
    DanglingLink,
    Directory,
    Special,
    /// It is a regular file after all (read it to learn more).
    File,
    Unreadable(std::io::Error),
}

impl NotAFile {
    pub(crate) fn of(path: &Path) -> Self {
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => NotAFile::Directory,
            Ok(m) if !m.is_file() => NotAFile::Special,
            Ok(_) => NotAFile::File,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                match std::fs::symlink_metadata(path) {
                    Ok(_) => NotAFile::DanglingLink,
                    Err(_) => NotAFile::Missing,
                }
            }
            // A loop of links, a denied permission.
            Err(e) => NotAFile::Unreadable(e),
        }
    }

    /// To follow the path's name: "`x` does not exist".
    pub(crate) fn predicate(&self) -> String {
        match self {
            NotAFile::Unreadable(e) => format!("cannot be read: {e}"),
            NotAFile::Missing => "does not exist".to_owned(),
            other => format!("is {}", other.reason()),
        }
    }

    /// To follow "cannot read `x`: ".
    pub(crate) fn reason(&self) -> String {
        match self {
            NotAFile::Missing => "no such file".to_owned(),
            NotAFile::DanglingLink => "a symbolic link to nothing".to_owned(),
            NotAFile::Directory => "a directory".to_owned(),
            NotAFile::Special => "not a regular file".to_owned(),
            NotAFile::File => "a file".to_owned(),
            NotAFile::Unreadable(e) => e.to_string(),
        }
    }
}
