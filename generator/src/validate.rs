//! `aiperf-gen validate`: every problem in the given manifests, in one run, for people
//! (rustc-style), machines (JSON) or GitHub Actions (workflow annotations).
//!
//! Levels of checking:
//!
//! | | YAML, schema, names, metadata, conflicts | Rust class paths | sources (`syn`) |
//! |---|---|---|---|
//! | `validate` | ✓ | | |
//! | `validate --check-class` | ✓ | ✓ | ✓ |
//! | `build` | ✓ | ✓ | ✓ |
//!
//! Plain `validate` checks what the JSON Schemas describe, in any language, so AIPerf's own
//! manifests (Python class paths) pass it; `--check-class` is the check for Rust packs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::check_class;
use crate::manifest::diagnostic::{codes, render, Diagnostic, Severity};
use crate::manifest::LoadOptions;
use crate::session::{Inputs, Session};

/// How `validate` prints its findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// rustc-style diagnostics on stderr, a summary on stdout.
    #[default]
    Human,
    /// One JSON document on stdout.
    Json,
    /// GitHub Actions workflow commands (`::error file=...`) on stdout.
    Github,
}

/// What to validate.
#[derive(Debug, Clone, Default)]
pub struct ValidateOptions {
    /// Manifest files: a file whose name contains `categories` is a `categories.yaml`,
    /// any other a `plugins.yaml`.
    pub files: Vec<PathBuf>,
    /// Packs by name or path.
    pub packs: Vec<String>,
    /// Extra pack search directories.
    pub pack_paths: Vec<PathBuf>,
    /// A `categories.yaml` to use instead of the runtime's.
    pub categories: Option<PathBuf>,
    /// Also require Rust class paths and check them against the packs' sources.
    pub check_class: bool,
    /// Warnings make the run fail.
    pub deny_warnings: bool,
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct Report {
    /// What was loaded.
    pub session: Session,
    /// Every diagnostic, ordered by file (command-line order) and position.
    pub diagnostics: Vec<Diagnostic>,
    /// Whether warnings count as failures.
    pub deny_warnings: bool,
}

/// A command line that cannot be run as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A categories file by its name, or, named otherwise, by its shape: categories declare
/// a `protocol` (and no plugin's `class`) one level in. Read as a plugins manifest, a
/// categories file gave an error for every key of every category.
fn is_categories_file(path: &Path) -> bool {
    let named = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.to_ascii_lowercase().contains("categories"));
    named || std::fs::read_to_string(path).is_ok_and(|text| looks_like_categories(&text))
}

fn looks_like_categories(text: &str) -> bool {
    let keys_one_level_in = |key: &str| {
        text.lines().any(|line| {
            let indented = line.len() - line.trim_start().len();
            indented > 0 && line.trim_start().starts_with(key)
        })
    };
    keys_one_level_in("protocol:") && !keys_one_level_in("class:")
}

/// Runs the checks.
///
/// # Errors
/// A [`UsageError`] when the arguments contradict each other (two categories files for
/// one set of packs).
/// Whether one of `diagnostics` is an error for a file or pack that could not be read (its
/// `Cargo.toml`, or the manifest it declares), which every command exits 2 for.
pub fn any_unreadable(diagnostics: &[Diagnostic]) -> bool {
    let unreadable = [
        codes::IO,
        codes::PACK_NOT_FOUND,
        codes::PACK_CARGO_TOML,
        codes::PACK_MANIFEST_MISSING,
    ];
    diagnostics
        .iter()
        .any(|d| d.is_error() && unreadable.contains(&d.code))
}

pub fn validate(options: &ValidateOptions) -> Result<Report, UsageError> {
    let (category_files, plugin_files): (Vec<&PathBuf>, Vec<&PathBuf>) =
        options.files.iter().partition(|f| is_categories_file(f));
    let mut categories: Vec<PathBuf> = options.categories.iter().cloned().collect();
    categories.extend(category_files.iter().map(|p| (*p).clone()));
    if categories.len() > 1 {
        return Err(UsageError(format!(
            "more than one categories file ({}); plugins are checked against one",
            categories
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let mut packs = options.packs.clone();
    packs.extend(plugin_files.iter().map(|p| p.display().to_string()));
    if packs.is_empty() && options.files.is_empty() {
        packs.push("core".to_owned());
    }

    let inputs = Inputs {
        categories: categories.pop(),
        packs,
        pack_paths: options.pack_paths.clone(),
        // One bad entry must not hide the problems of the others: they still get the class
        // checks and conflict resolution. Nothing is generated from this session.
        options: LoadOptions {
            keep_valid: true,
            ..LoadOptions::any_language()
        },
    };
    let session = Session::load(&inputs);
    let mut diagnostics = session.diagnostics.clone();
    if options.check_class && session.categories.is_some() {
        diagnostics.extend(
            check_class::rust_paths(&session)
                .into_iter()
                .map(|p| p.diagnostic),
        );
        diagnostics.extend(
            check_class::check_sources(&session)
                .into_iter()
                .map(|p| p.diagnostic),
        );
    }
    order(&mut diagnostics, &session.files);
    Ok(Report {
        session,
        diagnostics,
        deny_warnings: options.deny_warnings,
    })
}

/// Sorts by file in the order files were given (others, such as Rust sources, after them
/// by name), then by position; stable, so equal positions keep discovery order.
pub(crate) fn order(diagnostics: &mut [Diagnostic], files: &[PathBuf]) {
    diagnostics.sort_by(|a, b| {
        let rank = |d: &Diagnostic| {
            files
                .iter()
                .position(|f| *f == d.file)
                .unwrap_or(files.len())
        };
        (rank(a), &a.file, a.line, a.col).cmp(&(rank(b), &b.file, b.line, b.col))
    });
}

impl Report {
    /// Number of errors.
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    /// Number of warnings.
    pub fn warnings(&self) -> usize {
        self.diagnostics.len() - self.errors()
    }

    /// 0 valid, 1 invalid (or warnings with `--deny-warnings`), 2 when a file could not be
    /// read or a pack was not found or could not be read (its `Cargo.toml`, or the
    /// manifest it declares).
    pub fn exit_code(&self) -> u8 {
        if any_unreadable(&self.diagnostics) {
            2
        } else if self.errors() > 0 || (self.deny_warnings && self.warnings() > 0) {
            1
        } else {
            0
        }
    }

    fn verdict(&self) -> String {
        let (e, w) = (self.errors(), self.warnings());
        match (self.exit_code(), e, w) {
            (2, e, _) => format!(
                "not checked: {} (a file or pack could not be read)",
                plural(e, "error")
            ),
            (0, _, 0) => "valid".to_owned(),
            (0, _, w) => format!("valid, {}", plural(w, "warning")),
            (_, 0, w) => format!("invalid: {} (--deny-warnings)", plural(w, "warning")),
            (_, e, 0) => format!("invalid: {}", plural(e, "error")),
            (_, e, w) => format!("invalid: {}, {}", plural(e, "error"), plural(w, "warning")),
        }
    }

    /// One line: what was checked and the verdict.
    pub fn summary(&self) -> String {
        let s = &self.session;
        format!(
            "{} checked: {}, {} in {}; {}",
            plural(s.files.len(), "file"),
            plural(s.category_count(), "category"),
            plural(s.plugin_count(), "plugin"),
            plural(s.found_packs.len(), "pack"),
            self.verdict()
        )
    }

    /// `(stdout, stderr)` in the chosen format.
    pub fn render(&self, format: Format) -> (String, String) {
        match format {
            Format::Human => {
                let mut err = render(&self.diagnostics);
                if !err.is_empty() {
                    err.push_str("\n\n");
                }
                (format!("{}\n", self.summary()), err)
            }
            Format::Json => (self.json(), String::new()),
            Format::Github => (self.github(), String::new()),
        }
    }

    fn json(&self) -> String {
        let status = match self.exit_code() {
            0 => "valid",
            1 => "invalid",
            _ => "error",
        };
        let packs: Vec<Value> = self
            .session
            .packs
            .iter()
            .map(|(p, _)| {
                json!({
                    "name": p.name,
                    "version": p.version,
                    "builtin": p.is_builtin,
                    "manifest": p.manifest_path.display().to_string(),
                })
            })
            .collect();
        let doc = json!({
            "status": status,
            "exit_code": self.exit_code(),
            "errors": self.errors(),
            "warnings": self.warnings(),
            "files": self
                .session
                .files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>(),
            "categories": self.session.category_count(),
            "plugins": self.session.plugin_count(),
            "packs": packs,
            "diagnostics": self.diagnostics.iter().map(diagnostic_json).collect::<Vec<_>>(),
        });
        let mut text = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".to_owned());
        text.push('\n');
        text
    }

    fn github(&self) -> String {
        let mut out = String::new();
        for d in &self.diagnostics {
            // A warning that fails the run (`--deny-warnings`) is shown as what it is there:
            // an error annotation, so the check that failed points at its cause.
            let kind = match d.severity {
                Severity::Warning if !self.deny_warnings => "warning",
                _ => "error",
            };
            let mut props = format!("file={}", gh_property(&d.file.display().to_string()));
            if d.line > 0 {
                let _ = write!(props, ",line={},col={}", d.line, d.col.max(1));
            }
            let title = if d.yaml_path.is_empty() {
                d.code.to_owned()
            } else {
                format!("{} {}", d.code, d.yaml_path)
            };
            let _ = write!(props, ",title={}", gh_property(&title));
            let mut message = d.message.clone();
            if let Some(help) = &d.help {
                let _ = write!(message, "\nhelp: {help}");
            }
            let _ = writeln!(out, "::{kind} {props}::{}", gh_data(&message));
        }
        let _ = writeln!(out, "{}", self.summary());
        out
    }
}

fn diagnostic_json(d: &Diagnostic) -> Value {
    json!({
        "severity": d.severity.to_string(),
        "code": d.code,
        "file": d.file.display().to_string(),
        "line": d.line,
        "column": d.col,
        "yaml_path": d.yaml_path,
        "message": d.message,
        "help": d.help,
        "snippet": d.snippet,
    })
}

/// Escapes a workflow command's message (GitHub's `escapeData`).
fn gh_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value (GitHub's `escapeProperty`).
fn gh_property(text: &str) -> String {
    gh_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// `1 file`, `2 files`, `1 category`, `3 categories`.
pub(crate) fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else if let Some(stem) = noun.strip_suffix('y') {
        format!("{n} {stem}ies")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::looks_like_categories;

    /// A categories file is told from a plugins manifest by its shape when its name does
    /// not say.
    #[test]
    fn categories_are_known_by_their_shape() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let read = |path: &str| std::fs::read_to_string(root.join(path)).expect("a manifest");
        assert!(looks_like_categories(&read("runtime/categories.yaml")));
        assert!(!looks_like_categories(&read(
            "plugin-packs/core/plugins.yaml"
        )));
        assert!(!looks_like_categories(
            "endpoint:\n  chat:\n    class: a::b:C\n"
        ));
    }
}
