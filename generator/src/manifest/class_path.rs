//! Class paths: `rust_crate::module::path:TypeName`.
//!
//! Every class path has AIPerf's shape, `module:Name`: identifiers joined into a module
//! path, one colon, an identifier. [`check_shape`] checks only that, whatever the
//! language, so AIPerf's Python paths (`aiperf.endpoints.openai_chat:ChatEndpoint`) are
//! well-formed manifests. Generated code needs more: [`ClassPath::parse`] also requires a
//! Rust path (`::` between modules, no keywords). Both reject anything that could smuggle
//! tokens (spaces, `;`, quotes, generics, `/`) into the generated crate.

use std::fmt;

use super::diagnostic::quote_user;

/// Longest class path accepted; real ones are well under 100 characters.
const MAX_LEN: usize = 512;

/// Reserved words `syn` 3 still accepts as identifiers but editions reserve.
const EXTRA_RESERVED: &[&str] = &["gen"];

/// A parsed `rust_crate::module::path:TypeName`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClassPath {
    /// Crate then modules (`["aiperf_core", "endpoints", "chat"]`); never empty.
    pub module: Vec<String>,
    /// The type (`ChatEndpoint`).
    pub type_name: String,
}

/// Why a class path was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClassPathErrorKind {
    /// Not `module:Name` in any language: stray characters, empty parts, several colons.
    Malformed,
    /// Well-formed, but not a Rust path (a Python path, a keyword as a segment).
    NotRust,
}

/// Why a class path was rejected: a message and, when we can tell, how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassPathError {
    /// Malformed, or only not Rust.
    pub kind: ClassPathErrorKind,
    /// What is wrong, naming the offending part.
    pub message: String,
    /// A suggested fix.
    pub help: Option<String>,
}

impl fmt::Display for ClassPathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ClassPathError {}

/// The language a well-formed class path is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClassPathStyle {
    /// Modules joined with `::` (or a single module).
    Rust,
    /// Modules joined with `.`, as AIPerf writes them.
    Python,
}

const SHAPE: &str = "a class path is `rust_crate::module::path:TypeName`";

fn malformed(message: String, help: Option<String>) -> ClassPathError {
    ClassPathError {
        kind: ClassPathErrorKind::Malformed,
        message,
        help,
    }
}

fn not_rust(message: String, help: Option<String>) -> ClassPathError {
    ClassPathError {
        kind: ClassPathErrorKind::NotRust,
        message,
        help,
    }
}

/// Checks that `text` has the shape of a class path in Rust or Python: identifiers joined
/// by `::` or by `.` (not both), one `:`, an identifier. Returns the style.
///
/// # Errors
/// A [`ClassPathErrorKind::Malformed`] error naming the first problem.
pub fn check_shape(text: &str) -> Result<ClassPathStyle, ClassPathError> {
    let shown = quote_user(text);
    if text.is_empty() {
        return Err(malformed("class path is empty".into(), Some(SHAPE.into())));
    }
    if text.len() > MAX_LEN {
        return Err(malformed(
            format!("class path is longer than {MAX_LEN} characters"),
            None,
        ));
    }
    if let Some(bad) = text
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '_' | ':' | '.')))
    {
        return Err(malformed(
            format!(
                "invalid class path `{shown}`: unexpected {}",
                describe_char(bad)
            ),
            hint_for(text),
        ));
    }

    // The type separator is the one `:` not part of a `::`.
    let Some((module, type_name)) = text.rsplit_once(':') else {
        return Err(malformed(
            format!("invalid class path `{shown}`: missing `:` before the type name"),
            Some(SHAPE.into()),
        ));
    };
    if module.ends_with(':') {
        return Err(malformed(
            format!("invalid class path `{shown}`: missing `:` before the type name"),
            Some(format!(
                "{SHAPE}; the type is separated by a single colon, e.g. `{}`",
                suggest_single_colon(text)
            )),
        ));
    }
    if module.is_empty() {
        return Err(malformed(
            format!("invalid class path `{shown}`: missing the module path before `:`"),
            Some(SHAPE.into()),
        ));
    }
    let python = module.contains('.');
    if python && module.contains(':') {
        return Err(malformed(
            format!("invalid class path `{shown}`: mixes `.` and `::` between modules"),
            Some(format!("{SHAPE}; modules are joined with `::`")),
        ));
    }
    let separator = if python { "." } else { "::" };
    for segment in module.split(separator) {
        if segment.contains(':') {
            return Err(malformed(
                format!("invalid class path `{shown}`: more than one `:` separator"),
                Some(format!("{SHAPE}; modules are joined with `::`")),
            ));
        }
        check_word(segment, &shown, "module path segment")?;
    }
    if type_name.contains('.') {
        return Err(malformed(
            format!("invalid class path `{shown}`: unexpected `.` in the type name"),
            Some(SHAPE.into()),
        ));
    }
    check_word(type_name, &shown, "type name")?;
    Ok(if python {
        ClassPathStyle::Python
    } else {
        ClassPathStyle::Rust
    })
}

/// An identifier in the loose sense both languages share: a letter or `_`, then letters,
/// digits or `_`.
fn check_word(segment: &str, shown: &str, what: &str) -> Result<(), ClassPathError> {
    let mut chars = segment.chars();
    let ok = chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_');
    if ok {
        return Ok(());
    }
    let message = if segment.is_empty() {
        format!("invalid class path `{shown}`: empty {what}")
    } else {
        format!(
            "invalid class path `{shown}`: {what} `{}` is not an identifier",
            quote_user(segment)
        )
    };
    Err(malformed(message, Some(SHAPE.into())))
}

impl ClassPath {
    /// Parses and checks a Rust class path.
    ///
    /// # Errors
    /// [`ClassPathErrorKind::Malformed`] when `text` fails [`check_shape`];
    /// [`ClassPathErrorKind::NotRust`] when it is well-formed but not exactly module
    /// segments joined by `::`, one `:`, and a type name, each a non-keyword Rust
    /// identifier.
    pub fn parse(text: &str) -> Result<Self, ClassPathError> {
        let shown = quote_user(text);
        if check_shape(text)? == ClassPathStyle::Python {
            let fixed = quote_user(&python_to_rust(text));
            return Err(not_rust(
                format!("`{shown}` is a Python class path, not a Rust one"),
                Some(format!(
                    "a Rust class path joins modules with `::`, as in `{fixed}`, and names a \
                     type in a pack's crate"
                )),
            ));
        }
        let (module, type_name) = text.rsplit_once(':').unwrap_or(("", text));
        let segments: Vec<&str> = module.split("::").collect();
        for segment in &segments {
            check_ident(segment, &shown, "module path segment")?;
        }
        check_ident(type_name, &shown, "type name")?;

        Ok(Self {
            module: segments.into_iter().map(str::to_owned).collect(),
            type_name: type_name.to_owned(),
        })
    }

    /// The crate the type lives in (first module segment).
    pub fn crate_name(&self) -> &str {
        self.module.first().map_or("", String::as_str)
    }

    /// The module path, `::`-joined (`aiperf_core::endpoints::chat`).
    pub fn module_path(&self) -> String {
        self.module.join("::")
    }

    /// The full Rust path of the type (`aiperf_core::endpoints::chat::ChatEndpoint`).
    pub fn rust_path(&self) -> String {
        format!("{}::{}", self.module_path(), self.type_name)
    }
}

impl fmt::Display for ClassPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.module_path(), self.type_name)
    }
}

impl std::str::FromStr for ClassPath {
    type Err = ClassPathError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Whether `word` is an identifier usable as a Rust name (not a keyword, not raw, not `_`).
pub fn is_rust_ident(word: &str) -> bool {
    !word.is_empty()
        && !word.starts_with("r#")
        && !EXTRA_RESERVED.contains(&word)
        && word.chars().all(|c| c.is_alphanumeric() || c == '_')
        && syn::parse_str::<syn::Ident>(word).is_ok()
}

fn check_ident(segment: &str, shown: &str, what: &str) -> Result<(), ClassPathError> {
    if is_rust_ident(segment) {
        return Ok(());
    }
    let reason = if EXTRA_RESERVED.contains(&segment) {
        "is a reserved Rust keyword"
    } else if segment == "_" {
        "is not a Rust identifier"
    } else {
        // The shape check already admitted it as a word, so syn refused a keyword.
        "is a Rust keyword"
    };
    Err(not_rust(
        format!(
            "invalid class path `{shown}`: {what} `{}` {reason}",
            quote_user(segment)
        ),
        Some(SHAPE.into()),
    ))
}

/// `a.b.c:D` → `a::b::c:D`.
fn python_to_rust(text: &str) -> String {
    match text.rsplit_once(':') {
        Some((module, name)) => format!("{}:{name}", module.replace('.', "::")),
        None => text.to_owned(),
    }
}

fn describe_char(c: char) -> String {
    match c {
        ' ' => "space".into(),
        '\n' | '\r' => "line break".into(),
        c if c.is_control() => format!("control character `{}`", c.escape_debug()),
        c if c.is_whitespace() => "whitespace".into(),
        c => format!("character `{c}`"),
    }
}

/// A targeted hint for common mistakes.
fn hint_for(text: &str) -> Option<String> {
    if text.contains('-') && !text.contains(char::is_whitespace) && !text.contains('/') {
        return Some(format!(
            "crate names are written with `_` in Rust paths: `{}`",
            quote_user(&text.replace('-', "_"))
        ));
    }
    if text.contains('<') || text.contains('>') {
        return Some(format!("{SHAPE}; generic arguments are not allowed"));
    }
    Some(SHAPE.into())
}

/// `a::b::C` → `a::b:C`.
fn suggest_single_colon(text: &str) -> String {
    match text.rfind("::") {
        Some(i) => quote_user(&format!("{}:{}", &text[..i], &text[i + 2..])),
        None => quote_user(text),
    }
}
