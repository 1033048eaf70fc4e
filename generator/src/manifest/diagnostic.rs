//! Problems found in manifests and packs, reported the way rustc reports errors.
//!
//! Every check in [`crate::manifest`] returns diagnostics instead of stopping at the first
//! problem, so one run shows everything that is wrong. The `Display` form starts with
//! `file:line:col: error[CODE]: message`, which GCC-style problem matchers (GitHub Actions,
//! editors) pick up.

use std::fmt;
use std::path::PathBuf;

/// How serious a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The manifest cannot be used.
    Error,
    /// The manifest is used, but something deserves attention.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// Diagnostic codes. Stable: tests, CI filters and docs refer to them.
///
/// `E00xx` reading and YAML, `E01xx` schema and manifest content, `E02xx` class paths,
/// `E03xx` packs, `W0xxx` warnings.
pub mod codes {
    /// The file could not be read.
    pub const IO: &str = "E0001";
    /// The file is not UTF-8.
    pub const NOT_UTF8: &str = "E0002";
    /// YAML syntax error.
    pub const YAML_SYNTAX: &str = "E0003";
    /// A mapping repeats a key.
    pub const DUPLICATE_KEY: &str = "E0004";
    /// A YAML merge key (`<<`).
    pub const MERGE_KEY: &str = "E0005";
    /// More than one YAML document in the file.
    pub const MULTIPLE_DOCUMENTS: &str = "E0006";
    /// A mapping key that is not a string.
    pub const NON_STRING_KEY: &str = "E0007";
    /// A size, depth, node-count or alias-expansion limit was exceeded.
    pub const LIMIT_EXCEEDED: &str = "E0008";
    /// A YAML value with no JSON counterpart (non-finite float, bad or unknown tag, anchor
    /// used before it is complete).
    pub const UNSUPPORTED_VALUE: &str = "E0009";
    /// A value violates the schema (wrong type, not an allowed value, out of range).
    pub const SCHEMA: &str = "E0100";
    /// A required key is missing.
    pub const MISSING_KEY: &str = "E0101";
    /// A key the schema does not allow.
    pub const UNKNOWN_KEY: &str = "E0102";
    /// A plugin entry lacks the metadata its category requires.
    pub const MISSING_METADATA: &str = "E0103";
    /// Metadata passed the schema but not the runtime's typed deserialization.
    pub const INVALID_METADATA: &str = "E0104";
    /// A category or plugin name the generator cannot turn into Rust names.
    pub const INVALID_NAME: &str = "E0105";
    /// Two categories generate the same enum name.
    pub const DUPLICATE_ENUM: &str = "E0106";
    /// Two names in one file are the same after normalisation (`Fast-Burst`, `fast_burst`).
    pub const NAME_COLLISION: &str = "E0107";
    /// A malformed `crate::module:Type` class path.
    pub const INVALID_CLASS_PATH: &str = "E0201";
    /// A category's `enum` is not a Rust identifier.
    pub const INVALID_ENUM_NAME: &str = "E0202";
    /// A well-formed class path that is not a Rust path (AIPerf's Python paths); only
    /// `build` and `validate --check-class` require Rust paths.
    pub const NOT_RUST_CLASS_PATH: &str = "E0203";
    /// `--check-class`: the class path's crate is neither a selected pack nor the runtime.
    pub const UNKNOWN_CRATE: &str = "E0204";
    /// `--check-class`: no module or item at the class path in the crate's sources.
    pub const CLASS_NOT_FOUND: &str = "E0205";
    /// `--check-class`: the path names something other than a type (or, for a protocol,
    /// other than a trait).
    pub const WRONG_ITEM_KIND: &str = "E0206";
    /// `--check-class`: no `impl <Protocol> for <Type>` in the sources.
    pub const MISSING_IMPL: &str = "E0207";
    /// `--check-class`: the item, or a module on the way to it, is not `pub`.
    pub const NOT_PUBLIC: &str = "E0208";
    /// `--check-class`: a source file of a pack could not be read or parsed.
    pub const SOURCE_ERROR: &str = "E0209";
    /// No pack with that name or path.
    pub const PACK_NOT_FOUND: &str = "E0301";
    /// The pack's `Cargo.toml` is unreadable or not a package manifest.
    pub const PACK_CARGO_TOML: &str = "E0302";
    /// The pack's `Cargo.toml` has no `[package.metadata.aiperf] plugins`.
    pub const PACK_NO_MANIFEST_KEY: &str = "E0303";
    /// The manifest the pack declares does not exist.
    pub const PACK_MANIFEST_MISSING: &str = "E0304";
    /// The declared manifest path leaves the package directory.
    pub const PACK_MANIFEST_OUTSIDE: &str = "E0305";
    /// Two selected packs are the same Cargo package name in different places.
    pub const PACK_NAME_TAKEN: &str = "E0306";
    /// Internal error (a generated schema failed to compile); a bug in aiperf-gen.
    pub const INTERNAL: &str = "E0999";
    /// A pack name found in more than one place on the search path: the first is used.
    pub const PACK_SHADOWED: &str = "W0301";
    /// A category in `plugins.yaml` that `categories.yaml` does not define.
    pub const UNKNOWN_CATEGORY: &str = "W0101";
    /// An empty manifest.
    pub const EMPTY_MANIFEST: &str = "W0102";
    /// A `schema_version` other than `1.0`.
    pub const SCHEMA_VERSION: &str = "W0103";
    /// A `metadata_class` that is not one of the runtime's metadata types.
    pub const UNKNOWN_METADATA_CLASS: &str = "W0104";
    /// A metadata key its category's metadata type does not define. AIPerf keeps metadata
    /// as a raw dict and its models ignore such keys, so it is not an error (unless it
    /// stands for a missing required key: then it is [`UNKNOWN_KEY`]).
    pub const UNKNOWN_METADATA_KEY: &str = "W0105";
    /// `--check-class`: no impl found, but the crate invokes item macros, which may
    /// generate it.
    pub const IMPL_NOT_SEEN: &str = "W0201";
    /// `--check-class`: the class path leads into a crate whose sources are not indexed
    /// (a re-export from a registry dependency), so it is not checked.
    pub const NOT_CHECKED: &str = "W0202";
    /// Two plugins with the same name, priority and built-in status: the first one is kept.
    pub const PLUGIN_CONFLICT: &str = "W0401";
}

/// One problem, with enough context to find and fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Stable code from [`codes`], e.g. `E0101`.
    pub code: &'static str,
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line; 0 when the problem has no position (e.g. a missing file).
    pub line: usize,
    /// 1-based column in characters; 0 when unknown.
    pub col: usize,
    /// Where in the manifest, dotted (`endpoint.chat.metadata`), prefixed with the pack name
    /// for `plugins.yaml` files (`acme:endpoint.chat.metadata`); empty when not applicable.
    pub yaml_path: String,
    /// One line saying what is wrong.
    pub message: String,
    /// How to fix it, when we can tell.
    pub help: Option<String>,
    /// The source line at `line`, without its line break.
    pub snippet: Option<String>,
}

impl Diagnostic {
    /// An error in `file` with no position yet.
    pub fn error(code: &'static str, file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, code, file.into(), message.into())
    }

    /// A warning in `file` with no position yet.
    pub fn warning(
        code: &'static str,
        file: impl Into<PathBuf>,
        message: impl Into<String>,
    ) -> Self {
        Self::new(Severity::Warning, code, file.into(), message.into())
    }

    fn new(severity: Severity, code: &'static str, file: PathBuf, message: String) -> Self {
        Self {
            severity,
            code,
            file,
            line: 0,
            col: 0,
            yaml_path: String::new(),
            message,
            help: None,
            snippet: None,
        }
    }

    /// Sets the 1-based position.
    #[must_use]
    pub fn at(mut self, line: usize, col: usize) -> Self {
        self.line = line;
        self.col = col;
        self
    }

    /// Sets the dotted YAML path.
    #[must_use]
    pub fn with_path(mut self, yaml_path: impl Into<String>) -> Self {
        self.yaml_path = yaml_path.into();
        self
    }

    /// Sets the help line.
    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Sets the help line if there is one.
    #[must_use]
    pub fn with_help_opt(mut self, help: Option<String>) -> Self {
        if help.is_some() {
            self.help = help;
        }
        self
    }

    /// Sets the source line shown under the message.
    #[must_use]
    pub fn with_snippet(mut self, snippet: Option<String>) -> Self {
        self.snippet = snippet;
        self
    }

    /// Whether this is an error (as opposed to a warning).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.col.max(1))?;
        }
        write!(f, ": {}[{}]: {}", self.severity, self.code, self.message)?;

        let gutter = if self.line > 0 {
            self.line.to_string().len()
        } else {
            1
        };
        let pad = " ".repeat(gutter);
        if !self.yaml_path.is_empty() {
            write!(f, "\n{pad}--> {}", shorten_path(&self.yaml_path))?;
        }
        if let (Some(snippet), true) = (&self.snippet, self.line > 0) {
            let (shown, caret) = snippet_window(snippet, self.col.saturating_sub(1));
            write!(f, "\n{pad} |\n{} | {shown}\n{pad} | ", self.line)?;
            // Copy tabs from the source so the caret lines up however the terminal
            // expands them.
            for ch in shown.chars().take(caret) {
                f.write_str(if ch == '\t' { "\t" } else { " " })?;
            }
            f.write_str("^")?;
        }
        if let Some(help) = &self.help {
            let mut lines = help.lines();
            if let Some(first) = lines.next() {
                write!(f, "\n{pad} = help: {first}")?;
            }
            for line in lines {
                write!(f, "\n{pad}         {line}")?;
            }
        }
        Ok(())
    }
}

/// The part of a long source line around 0-based character column `col`, and the caret's
/// column within it. Minified or generated lines can be megabytes long.
fn snippet_window(line: &str, col: usize) -> (String, usize) {
    const WIDTH: usize = 100;
    const BEFORE: usize = 60;
    let len = line.chars().count();
    if len <= WIDTH + 20 {
        return (line.to_owned(), col);
    }
    let start = col.saturating_sub(BEFORE).min(len.saturating_sub(WIDTH));
    let mut shown: String = line.chars().skip(start).take(WIDTH).collect();
    let mut caret = col - start.min(col);
    if start > 0 {
        shown.insert(0, '…');
        caret += 1;
    }
    if start + WIDTH < len {
        shown.push('…');
    }
    (shown, caret)
}

/// Long YAML paths (deeply nested input) keep their end, where the problem is.
fn shorten_path(path: &str) -> String {
    const MAX: usize = 120;
    let len = path.chars().count();
    if len <= MAX {
        return path.to_owned();
    }
    let tail: String = path.chars().skip(len - MAX).collect();
    format!("…{tail}")
}

/// Whether any diagnostic is an error.
pub fn has_errors(diagnostics: &[Diagnostic]) -> bool {
    diagnostics.iter().any(Diagnostic::is_error)
}

/// Renders diagnostics one after another, separated by blank lines.
pub fn render(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for (i, d) in diagnostics.iter().enumerate() {
        if i > 0 {
            out.push_str("\n\n");
        }
        out.push_str(&d.to_string());
    }
    out
}

/// Orders diagnostics by file and position so output follows the source.
pub(crate) fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| (&a.file, a.line, a.col).cmp(&(&b.file, b.line, b.col)));
}

/// The closest candidate to a misspelt `word`, if one is close enough to be a plausible typo.
pub fn did_you_mean<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let word_lower = word.to_lowercase();
    // A third of the length catches transpositions and one or two dropped letters without
    // suggesting unrelated short words.
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::damerau_levenshtein(&word_lower, &c.to_lowercase()),
                c,
            )
        })
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// User text made safe to embed in a one-line message: control characters escaped, long
/// values shortened.
pub(crate) fn quote_user(text: &str) -> String {
    const MAX: usize = 80;
    let mut out = String::new();
    for (i, ch) in text.chars().enumerate() {
        if i == MAX {
            out.push('…');
            break;
        }
        if ch.is_control() {
            out.extend(ch.escape_debug());
        } else {
            out.push(ch);
        }
    }
    out
}

/// A source text with fast access to its lines, for snippets.
#[derive(Debug, Clone, Default)]
pub(crate) struct SourceLines {
    text: String,
    starts: Vec<usize>,
}

impl SourceLines {
    pub(crate) fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self {
            text: text.to_owned(),
            starts,
        }
    }

    /// Line `line` (1-based) without its line break.
    pub(crate) fn line(&self, line: usize) -> Option<String> {
        let start = *self.starts.get(line.checked_sub(1)?)?;
        let end = self
            .starts
            .get(line)
            .map_or(self.text.len(), |&next| next - 1);
        let raw = self.text.get(start..end)?;
        Some(raw.strip_suffix('\r').unwrap_or(raw).to_owned())
    }
}

impl SourceLines {
    /// The first character YAML allows nowhere in a stream, raw (a C0 or C1 control other
    /// than tab, line breaks and NEL, DEL, U+FFFE, U+FFFF): its line, column (1-based, in
    /// characters) and the character.
    pub(crate) fn first_unprintable(&self) -> Option<(usize, usize, char)> {
        let printable = |c: char| {
            matches!(c, '\t' | '\n' | '\r' | '\u{85}' | '\u{feff}')
                || !(c.is_control() || c == '\u{fffe}' || c == '\u{ffff}')
        };
        let at = self.text.find(|c: char| !printable(c))?;
        let line = self.starts.partition_point(|&start| start <= at);
        let start = self.starts[line - 1];
        let col = self.text[start..at].chars().count() + 1;
        Some((line, col, self.text[at..].chars().next()?))
    }
}

/// Builds a positioned diagnostic with its snippet in one go.
pub(crate) fn located(
    mut diagnostic: Diagnostic,
    source: &SourceLines,
    pos: Option<(usize, usize)>,
) -> Diagnostic {
    if let Some((line, col)) = pos {
        diagnostic = diagnostic.at(line, col).with_snippet(source.line(line));
    }
    diagnostic
}
