//! Class paths: `rust_crate::module::path:TypeName`.
//!
//! Class paths end up as Rust paths in generated code, so they are checked strictly here:
//! every segment must be an identifier that `syn` accepts, which rules out anything that
//! could smuggle tokens (spaces, `;`, quotes, generics, `../`) into the generated crate.

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

/// Why a class path was rejected: a message and, when we can tell, how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassPathError {
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

const SHAPE: &str = "a class path is `rust_crate::module::path:TypeName`";

impl ClassPath {
    /// Parses and checks a class path.
    ///
    /// # Errors
    /// When `text` is not exactly module segments joined by `::`, one `:`, and a type name,
    /// each a non-keyword Rust identifier.
    pub fn parse(text: &str) -> Result<Self, ClassPathError> {
        let fail = |message: String, help: Option<String>| Err(ClassPathError { message, help });
        let shown = quote_user(text);

        if text.is_empty() {
            return fail("class path is empty".into(), Some(SHAPE.into()));
        }
        if text.len() > MAX_LEN {
            return fail(
                format!("class path is longer than {MAX_LEN} characters"),
                None,
            );
        }
        if let Some(bad) = text
            .chars()
            .find(|c| !(c.is_alphanumeric() || *c == '_' || *c == ':'))
        {
            return fail(
                format!(
                    "invalid class path `{shown}`: unexpected {}",
                    describe_char(bad)
                ),
                hint_for(text),
            );
        }

        // The type separator is the one `:` not part of a `::`.
        let Some((module, type_name)) = text.rsplit_once(':') else {
            return fail(
                format!("invalid class path `{shown}`: missing `:` before the type name"),
                Some(SHAPE.into()),
            );
        };
        if module.ends_with(':') {
            return fail(
                format!("invalid class path `{shown}`: missing `:` before the type name"),
                Some(format!(
                    "{SHAPE}; the type is separated by a single colon, e.g. `{}`",
                    suggest_single_colon(text)
                )),
            );
        }
        if module.is_empty() {
            return fail(
                format!("invalid class path `{shown}`: missing the module path before `:`"),
                Some(SHAPE.into()),
            );
        }

        let segments: Vec<&str> = module.split("::").collect();
        for segment in &segments {
            if segment.contains(':') {
                return fail(
                    format!("invalid class path `{shown}`: more than one `:` separator"),
                    Some(format!("{SHAPE}; modules are joined with `::`")),
                );
            }
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
    if segment.is_empty() {
        return Err(ClassPathError {
            message: format!("invalid class path `{shown}`: empty {what}"),
            help: Some(SHAPE.into()),
        });
    }
    if is_rust_ident(segment) {
        return Ok(());
    }
    let reason = if syn::parse_str::<syn::Ident>(segment).is_err() && is_keyword_like(segment) {
        "is a Rust keyword"
    } else if EXTRA_RESERVED.contains(&segment) {
        "is a reserved Rust keyword"
    } else {
        "is not a Rust identifier"
    };
    Err(ClassPathError {
        message: format!(
            "invalid class path `{shown}`: {what} `{}` {reason}",
            quote_user(segment)
        ),
        help: Some(SHAPE.into()),
    })
}

/// An identifier-shaped word `syn` refused: a keyword.
fn is_keyword_like(word: &str) -> bool {
    let mut chars = word.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

fn describe_char(c: char) -> String {
    match c {
        ' ' => "space".into(),
        c if c.is_whitespace() => "whitespace".into(),
        c if c.is_control() => format!("control character `{}`", c.escape_debug()),
        c => format!("character `{c}`"),
    }
}

/// A targeted hint for common mistakes.
fn hint_for(text: &str) -> Option<String> {
    if text.contains('.') && !text.contains('/') && !text.contains(char::is_whitespace) {
        // AIPerf's Python paths (`pkg.module:Class`) are the most likely source.
        let fixed = text.replace('.', "::");
        return Some(format!(
            "Rust class paths use `::` between modules, not `.`: `{}`",
            quote_user(&fixed)
        ));
    }
    if text.contains('-') && !text.contains(char::is_whitespace) {
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
