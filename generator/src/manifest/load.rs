//! Loading and checking `categories.yaml` and `plugins.yaml`.
//!
//! Order of checks: read (size, UTF-8) → YAML (syntax, keys, limits) → JSON Schema → checks
//! the schema cannot express (class paths, names, typed metadata) → typed model. Every stage
//! after YAML runs even when an earlier one found problems, so a single run lists them all;
//! the model is returned only when there are no errors, unless [`LoadOptions::keep_valid`]
//! asks for the part without errors.
//!
//! Class paths are checked at one of two levels ([`ClassPathRule`]): the shape every
//! manifest shares with AIPerf (`module:Name`, Python or Rust), or Rust paths, which code
//! generation needs. `validate` uses the first unless asked to `--check-class`; `build`
//! always uses the second.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::Validator;
use serde_json::Value;

use super::class_path::{check_shape, is_rust_ident, ClassPath, ClassPathErrorKind};
use super::diagnostic::{self, codes, did_you_mean, quote_user, Diagnostic};
use super::model::{
    normalize_name, CategoriesManifest, CategorySpec, OrderedMap, PluginSpec, PluginsManifest,
    SourcePos, SCHEMA_VERSION,
};
use super::schema::{
    categories_schema, metadata_type, plugins_schema, MetadataType, METADATA_TYPES,
};
use super::yaml::{
    escape_pointer_segment, is_at_or_under, parse_yaml, pointer_segments, push_path_key,
    read_source, YamlDocument, YamlLimits,
};

/// How strictly class paths (`class`, `protocol`, `metadata_class`) are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClassPathRule {
    /// Rust paths only (`crate::module:Type`): what code generation needs.
    #[default]
    Rust,
    /// AIPerf's shape in either language (`a.b:C` or `a::b:C`): what the JSON Schemas and
    /// editors accept.
    AnyLanguage,
}

/// Options of the loaders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoadOptions {
    /// Class path strictness.
    pub class_paths: ClassPathRule,
    /// Bounds on the YAML input.
    pub limits: YamlLimits,
    /// Also return the model of a file that has errors, without the parts that have them: a
    /// category of `categories.yaml`, or an entry of `plugins.yaml` (its whole category when
    /// the error is on the category itself). What loads still gets the checks that need a
    /// model (class checks, conflicts), so one run reports everything. A problem at the
    /// root of the document still loads nothing. For reports only: code generation must
    /// not run on a file with errors, and every part left out has its error reported.
    pub keep_valid: bool,
}

impl LoadOptions {
    /// Options that accept class paths in either language.
    pub fn any_language() -> Self {
        Self {
            class_paths: ClassPathRule::AnyLanguage,
            ..Self::default()
        }
    }
}

/// Which file is being checked, for messages that depend on it.
#[derive(Clone, Copy)]
enum Kind<'a> {
    Categories,
    Plugins(&'a CategoriesManifest),
}

/// A document under check, with the diagnostics found so far.
struct Check<'a> {
    doc: &'a YamlDocument,
    rule: ClassPathRule,
    /// Pack name prefixed to YAML paths (`acme:endpoint.chat`).
    pack: Option<&'a str>,
    diagnostics: Vec<Diagnostic>,
    /// Pointers that already have an error, so later stages do not pile on.
    failed: Vec<String>,
}

impl<'a> Check<'a> {
    /// Starts from the reader's diagnostics so later stages see its errors.
    fn new(
        doc: &'a YamlDocument,
        rule: ClassPathRule,
        pack: Option<&'a str>,
        diagnostics: Vec<Diagnostic>,
    ) -> Self {
        Self {
            doc,
            rule,
            pack,
            diagnostics,
            failed: Vec::new(),
        }
    }

    /// Dotted YAML path of a JSON pointer (`/endpoint/chat` → `endpoint.chat`), with the
    /// pack prefix.
    fn yaml_path(&self, pointer: &str) -> String {
        let dotted = dotted_path(&self.doc.value, pointer);
        match (self.pack, dotted.is_empty()) {
            (Some(pack), true) => pack.to_owned(),
            (Some(pack), false) => format!("{pack}:{dotted}"),
            (None, _) => dotted,
        }
    }

    /// The path as shown inside messages (without the pack prefix).
    fn shown(&self, pointer: &str) -> String {
        let dotted = dotted_path(&self.doc.value, pointer);
        if dotted.is_empty() {
            "the document root".to_owned()
        } else {
            format!("`{dotted}`")
        }
    }

    fn emit(&mut self, d: Diagnostic, pointer: &str, pos: Option<super::yaml::Pos>) {
        let pos = pos.map(|p| (p.line, p.col));
        let d = diagnostic::located(d, &self.doc.lines, pos).with_path(self.yaml_path(pointer));
        if d.is_error() {
            self.failed.push(pointer.to_owned());
        }
        self.diagnostics.push(d);
    }

    /// Reports at the node itself (a wrong value).
    fn at_node(&mut self, d: Diagnostic, pointer: &str) {
        let pos = self.doc.spans.locate(pointer);
        self.emit(d, pointer, pos);
    }

    /// Reports at the key holding the node (a missing or unexpected child), falling back to
    /// the node when it has no key (the root).
    fn at_key(&mut self, d: Diagnostic, pointer: &str, path_pointer: &str) {
        let pos = self
            .doc
            .spans
            .key(pointer)
            .or_else(|| self.doc.spans.locate(pointer));
        self.emit(d, path_pointer, pos);
    }

    fn has_failed_under(&self, pointer: &str) -> bool {
        self.failed.iter().any(|f| is_at_or_under(f, pointer))
    }

    /// Whether a partial load leaves out the part at `scope` (keys from the root). An error
    /// counts against the part `depth` keys deep that holds it (a category of
    /// `categories.yaml`, 1; an entry of `plugins.yaml`, 2), or, when it is higher up (a
    /// category's own value, the root), against everything under its node.
    fn faulted(&self, scope: &[&str], depth: usize) -> bool {
        self.failed.iter().chain(&self.doc.faults).any(|pointer| {
            let segments = pointer_segments(pointer);
            let owner = &segments[..segments.len().min(depth)];
            owner.len() <= scope.len() && owner.iter().zip(scope).all(|(a, b)| a == b)
        })
    }

    fn error(&self, code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::error(code, &self.doc.file, message)
    }

    fn warning(&self, code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::warning(code, &self.doc.file, message)
    }
}

/// Reads and checks `categories.yaml`, requiring Rust class paths.
///
/// Returns the manifest when there are no errors, and every diagnostic found.
pub fn load_categories(path: &Path) -> (Option<CategoriesManifest>, Vec<Diagnostic>) {
    load_categories_with(path, &LoadOptions::default())
}

/// [`load_categories`] with options.
pub fn load_categories_with(
    path: &Path,
    options: &LoadOptions,
) -> (Option<CategoriesManifest>, Vec<Diagnostic>) {
    match read_source(path, &options.limits) {
        Ok(text) => load_categories_str_with(&text, path, options),
        Err(d) => (None, vec![d]),
    }
}

/// [`load_categories`] on text already in memory; `path` is used in diagnostics.
pub fn load_categories_str(
    text: &str,
    path: &Path,
) -> (Option<CategoriesManifest>, Vec<Diagnostic>) {
    load_categories_str_with(text, path, &LoadOptions::default())
}

/// [`load_categories_str`] with options.
pub fn load_categories_str_with(
    text: &str,
    path: &Path,
    options: &LoadOptions,
) -> (Option<CategoriesManifest>, Vec<Diagnostic>) {
    let (doc, mut diagnostics) = parse_yaml(text, path, &options.limits);
    let Some(doc) = doc else {
        diagnostic::sort(&mut diagnostics);
        return (None, diagnostics);
    };
    let mut check = Check::new(&doc, options.class_paths, None, diagnostics);
    // The categories schema does not depend on any input: compile it once per process.
    static VALIDATOR: OnceLock<Result<(Value, Validator), String>> = OnceLock::new();
    let compiled = VALIDATOR.get_or_init(|| {
        let schema = with_integer_bounds(categories_schema());
        jsonschema::validator_for(&schema)
            .map(|v| (schema, v))
            .map_err(|e| e.to_string())
    });
    match compiled {
        Ok((schema, validator)) => {
            validate_schema(&mut check, schema, validator, Kind::Categories);
        }
        Err(e) => internal_error(&mut check, e),
    }
    check_schema_version(&mut check);
    check_categories(&mut check);
    let manifest = build_categories(&mut check, options.keep_valid);
    finish(manifest, check.diagnostics, options.keep_valid)
}

/// Checks `plugins.yaml` files against one `categories.yaml`, compiling the plugins schema
/// once for all of them.
pub struct PluginsLoader<'c> {
    categories: &'c CategoriesManifest,
    schema: Value,
    validator: Result<Validator, String>,
    options: LoadOptions,
}

impl std::fmt::Debug for PluginsLoader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginsLoader")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<'c> PluginsLoader<'c> {
    /// A loader for manifests whose categories are `categories`.
    pub fn new(categories: &'c CategoriesManifest, options: LoadOptions) -> Self {
        let schema = with_integer_bounds(plugins_schema(categories));
        let validator = jsonschema::validator_for(&schema).map_err(|e| e.to_string());
        Self {
            categories,
            schema,
            validator,
            options,
        }
    }

    /// Reads and checks a pack's `plugins.yaml`. See [`load_plugins`].
    pub fn load(
        &self,
        path: &Path,
        pack: &super::pack::PackInfo,
    ) -> (Option<PluginsManifest>, Vec<Diagnostic>) {
        match read_source(path, &self.options.limits) {
            Ok(text) => self.load_str(&text, path, &pack.name),
            Err(d) => (None, vec![d.with_path(pack.name.clone())]),
        }
    }

    /// Checks manifest text already in memory. See [`load_plugins_str`].
    pub fn load_str(
        &self,
        text: &str,
        path: &Path,
        pack_name: &str,
    ) -> (Option<PluginsManifest>, Vec<Diagnostic>) {
        let (doc, mut diagnostics) = parse_yaml(text, path, &self.options.limits);
        prefix_paths(&mut diagnostics, pack_name);
        let Some(doc) = doc else {
            diagnostic::sort(&mut diagnostics);
            return (None, diagnostics);
        };
        let mut check = Check::new(&doc, self.options.class_paths, Some(pack_name), diagnostics);
        if doc.value.is_null() {
            let d = check
                .warning(
                    codes::EMPTY_MANIFEST,
                    "plugin manifest is empty; the pack registers no plugins",
                )
                .with_help(format!(
                    "start it with `schema_version: \"{SCHEMA_VERSION}\"` and a category"
                ));
            // An empty document has no node to point at: point at its start.
            let pos = Some(super::yaml::Pos { line: 1, col: 1 });
            check.emit(d, "", pos);
            return finish(
                Some(PluginsManifest::default()),
                check.diagnostics,
                self.options.keep_valid,
            );
        }
        match &self.validator {
            Ok(validator) => validate_schema(
                &mut check,
                &self.schema,
                validator,
                Kind::Plugins(self.categories),
            ),
            Err(e) => internal_error(&mut check, e),
        }
        check_schema_version(&mut check);
        check_plugins(&mut check, self.categories);
        let manifest = build_plugins(&mut check, self.categories, self.options.keep_valid);
        finish(manifest, check.diagnostics, self.options.keep_valid)
    }
}

/// Reads and checks a pack's `plugins.yaml` against the categories, requiring Rust class
/// paths.
///
/// YAML paths in diagnostics are prefixed with the pack's name (`acme:endpoint.chat`).
/// Returns the manifest when there are no errors, and every diagnostic found. An empty
/// file is a warning and yields an empty manifest, as in AIPerf.
pub fn load_plugins(
    path: &Path,
    pack: &super::pack::PackInfo,
    categories: &CategoriesManifest,
) -> (Option<PluginsManifest>, Vec<Diagnostic>) {
    PluginsLoader::new(categories, LoadOptions::default()).load(path, pack)
}

/// [`load_plugins`] on text already in memory; `path` is used in diagnostics and
/// `pack_name` prefixes YAML paths.
pub fn load_plugins_str(
    text: &str,
    path: &Path,
    pack_name: &str,
    categories: &CategoriesManifest,
) -> (Option<PluginsManifest>, Vec<Diagnostic>) {
    PluginsLoader::new(categories, LoadOptions::default()).load_str(text, path, pack_name)
}

fn internal_error(check: &mut Check<'_>, error: &str) {
    let d = check.error(
        codes::INTERNAL,
        format!("generated schema does not compile: {error}"),
    );
    check.diagnostics.push(d);
    // Nothing was checked: no part of the file can be vouched for.
    check.failed.push(String::new());
}

fn finish<T>(
    manifest: Option<T>,
    mut diagnostics: Vec<Diagnostic>,
    keep_valid: bool,
) -> (Option<T>, Vec<Diagnostic>) {
    diagnostic::sort(&mut diagnostics);
    dedup(&mut diagnostics);
    if !keep_valid && diagnostic::has_errors(&diagnostics) {
        (None, diagnostics)
    } else {
        (manifest, diagnostics)
    }
}

/// Drops exact repeats (alias copies can produce the same error twice at one position).
fn dedup(diagnostics: &mut Vec<Diagnostic>) {
    let mut seen = HashSet::new();
    diagnostics.retain(|d| {
        seen.insert((
            d.line,
            d.col,
            d.code,
            d.message.clone(),
            d.yaml_path.clone(),
        ))
    });
}

// ---------------------------------------------------------------------------------------
// Schema validation

fn validate_schema(check: &mut Check<'_>, schema: &Value, validator: &Validator, kind: Kind<'_>) {
    let doc = check.doc;
    let errors: Vec<_> = validator
        .iter_errors(&doc.value)
        .filter(|e| !doc.is_rejected(e.instance_path().as_str()))
        .collect();

    // A misspelt key also makes the real one "missing"; report only the misspelling, whose
    // did-you-mean names the fix.
    let mut misspelt: Vec<(String, String)> = Vec::new();
    for error in &errors {
        if let ValidationErrorKind::AdditionalProperties { unexpected } = error.kind() {
            let allowed = allowed_keys(schema, error.schema_path().as_str());
            for key in unexpected {
                if let Some(s) = did_you_mean(key, allowed.iter().map(String::as_str)) {
                    misspelt.push((error.instance_path().as_str().to_owned(), s.to_owned()));
                }
            }
        }
    }

    for error in &errors {
        let pointer = error.instance_path().as_str();
        if let ValidationErrorKind::Required { property } = error.kind() {
            let property = property.as_str().unwrap_or_default();
            let explained = misspelt.iter().any(|(p, k)| p == pointer && k == property)
                || (matches!(kind, Kind::Plugins(_))
                    && is_entry_metadata(pointer)
                    && misspelt_in(
                        error.instance(),
                        &allowed_keys(schema, error.schema_path().as_str()),
                        property,
                    ));
            if explained || doc.is_incomplete(pointer) {
                continue;
            }
        }
        let schema_path = error.schema_path().as_str();
        schema_error(
            check,
            schema,
            kind,
            pointer,
            schema_path,
            error.kind(),
            error.instance(),
            &error.to_string(),
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn schema_error(
    check: &mut Check<'_>,
    schema: &Value,
    kind: Kind<'_>,
    pointer: &str,
    schema_path: &str,
    error_kind: &ValidationErrorKind,
    instance: &Value,
    fallback: &str,
) {
    let here = check.shown(pointer);
    match error_kind {
        ValidationErrorKind::Required { property } => {
            let property = property.as_str().unwrap_or_default();
            let child = format!("{pointer}/{}", escape_pointer_segment(property));
            if let (Kind::Plugins(categories), true) = (
                kind,
                property == "metadata" && pointer_segments(pointer).len() == 2,
            ) {
                let d = missing_metadata(check, categories, pointer);
                check.at_key(d, pointer, &child);
                return;
            }
            let help = match (kind, property, pointer_segments(pointer).len()) {
                (Kind::Plugins(_), "class", 2) => {
                    Some("every entry names its type: `class: rust_crate::module::path:TypeName`")
                }
                (Kind::Categories, "protocol", 1) => Some(
                    "name the trait its plugins implement: `protocol: rust_crate::module:Trait`",
                ),
                (Kind::Categories, "enum", 1) => {
                    Some("name the enum generated over its plugins, e.g. `enum: EndpointType`")
                }
                _ => None,
            };
            let d = check
                .error(
                    codes::MISSING_KEY,
                    format!("missing required key `{property}` in {here}"),
                )
                .with_help_opt(help.map(str::to_owned));
            check.at_key(d, pointer, &child);
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let allowed = allowed_keys(schema, schema_path);
            for key in unexpected {
                let child = format!("{pointer}/{}", escape_pointer_segment(key));
                let help = match did_you_mean(key, allowed.iter().map(String::as_str)) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("expected one of {}", list(&allowed)),
                };
                let d = check
                    .error(
                        codes::UNKNOWN_KEY,
                        format!("unknown key `{}` in {here}", quote_user(key)),
                    )
                    .with_help(help);
                check.at_key(d, &child, &child);
            }
        }
        ValidationErrorKind::Type { kind: type_kind } => {
            let expected = schema_keyword(schema, schema_path)
                .map(describe_types)
                .unwrap_or_else(|| describe_type_kind(type_kind));
            let found = describe_value(check.doc, pointer, instance);
            let mut d = check.error(
                codes::SCHEMA,
                format!("{here} must be {expected}, found {found}"),
            );
            if expected.contains("string") && (instance.is_number() || instance.is_boolean()) {
                d = d.with_help("quote the value to make it a string");
            } else if pointer.is_empty() {
                d = d.with_help("a manifest is a mapping of category names to their contents");
            }
            check.at_node(d, pointer);
        }
        ValidationErrorKind::Enum { options } => {
            let options: Vec<String> = options
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let found = describe_value(check.doc, pointer, instance);
            let d = check
                .error(
                    codes::SCHEMA,
                    format!("{here} must be one of {}, found {found}", list(&options)),
                )
                .with_help_opt(
                    instance
                        .as_str()
                        .and_then(|s| did_you_mean(s, options.iter().map(String::as_str)))
                        .map(|s| format!("did you mean `{s}`?")),
                );
            check.at_node(d, pointer);
        }
        // A fraction at an integer field: its type error says what is wrong, and a range
        // error beside it (`0.4` "out of range (uint32: 0 to ...)") only contradicts it.
        ValidationErrorKind::Minimum { .. } | ValidationErrorKind::Maximum { .. }
            if integer_format(schema, schema_path).is_some()
                && instance.as_f64().is_some_and(|f| f.fract() != 0.0) => {}
        ValidationErrorKind::Minimum { .. } | ValidationErrorKind::Maximum { .. }
            if integer_format(schema, schema_path)
                .is_some_and(|(_, range)| instance.is_number() && !holds(instance, range)) =>
        {
            let (format, (min, max)) = integer_format(schema, schema_path).unwrap_or_default();
            let text = literal_text(check.doc, pointer).unwrap_or_else(|| instance.to_string());
            let d = check.error(
                codes::SCHEMA,
                format!(
                    "{here}: integer {} is out of range ({format}: {min} to {max})",
                    quote_user(&text)
                ),
            );
            check.at_node(d, pointer);
        }
        ValidationErrorKind::Minimum { limit } | ValidationErrorKind::Maximum { limit } => {
            let bound = if matches!(error_kind, ValidationErrorKind::Minimum { .. }) {
                "at least"
            } else {
                "at most"
            };
            let found = describe_value(check.doc, pointer, instance);
            let d = check.error(
                codes::SCHEMA,
                format!("{here} must be {bound} {limit}, found {found}"),
            );
            check.at_node(d, pointer);
        }
        _ => {
            let mut message = fallback.to_owned();
            if message.chars().count() > 200 {
                message = message.chars().take(200).collect::<String>() + "…";
            }
            let d = check.error(codes::SCHEMA, format!("{here}: {message}"));
            check.at_node(d, pointer);
        }
    }
}

/// Whether `pointer` is an entry's `metadata` in a `plugins.yaml`
/// (`/category/name/metadata`).
fn is_entry_metadata(pointer: &str) -> bool {
    let segments = pointer_segments(pointer);
    segments.len() == 3 && segments[2] == "metadata"
}

/// Whether the mapping has a key outside `fields` that reads as a misspelling of `field`.
fn misspelt_in(mapping: &Value, fields: &[String], field: &str) -> bool {
    mapping.as_object().is_some_and(|map| {
        map.keys().any(|key| {
            !fields.contains(key)
                && did_you_mean(key, fields.iter().map(String::as_str)) == Some(field)
        })
    })
}

fn missing_metadata(check: &Check<'_>, categories: &CategoriesManifest, entry: &str) -> Diagnostic {
    let segments = pointer_segments(entry);
    let category = segments.first().map_or("", String::as_str);
    let here = check.shown(entry);
    let ty = categories
        .get(category)
        .and_then(|(_, spec)| spec.metadata_class.as_deref())
        .and_then(metadata_type);
    let mut d = check.error(
        codes::MISSING_METADATA,
        format!("{here} has no `metadata`, which category `{category}` requires"),
    );
    if let Some(ty) = ty {
        let required: Vec<String> = ty.required_fields();
        d = d.with_help(format!(
            "add `metadata:` with at least {} (`{}`)",
            list(&required),
            ty.class_path()
        ));
    }
    d
}

/// Property names allowed next to an `additionalProperties: false` keyword.
fn allowed_keys(schema: &Value, schema_path: &str) -> Vec<String> {
    let parent = schema_path.rsplit_once('/').map_or("", |(p, _)| p);
    schema
        .pointer(parent)
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|props| props.keys().cloned().collect())
        .unwrap_or_default()
}

fn schema_keyword<'s>(schema: &'s Value, schema_path: &str) -> Option<&'s Value> {
    schema.pointer(schema_path)
}

/// The range of a schemars integer `format` (`int64`, `uint32`, ...): the values its Rust
/// type holds.
fn integer_range(format: &str) -> Option<(i128, i128)> {
    let bits: u32 = format
        .strip_prefix("uint")
        .or_else(|| format.strip_prefix("int"))?
        .parse()
        .ok()
        .filter(|b| [8, 16, 32, 64].contains(b))?;
    Some(if format.starts_with('u') {
        (0, (1i128 << bits) - 1)
    } else {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    })
}

/// A JSON number for a bound of [`integer_range`] (always within `i64` or `u64`).
fn bound_value(bound: i128) -> Value {
    match (i64::try_from(bound), u64::try_from(bound)) {
        (Ok(i), _) => Value::from(i),
        (_, Ok(u)) => Value::from(u),
        _ => Value::Null,
    }
}

/// The schema with `minimum`/`maximum` added to every integer of a sized `format`. JSON
/// Schema's `integer` is any whole number, so without them a value the typed model cannot
/// hold (`priority: 99999999999999999999`, read as a float) would pass the schema and fail
/// deserialisation of its whole entry, reported at the entry instead of at the value.
fn with_integer_bounds(mut schema: Value) -> Value {
    fn walk(node: &mut Value) {
        match node {
            Value::Object(map) => {
                let range = map
                    .get("format")
                    .and_then(Value::as_str)
                    .and_then(integer_range);
                if let Some((min, max)) = range {
                    let own_min = map.get("minimum").and_then(Value::as_f64);
                    let own_max = map.get("maximum").and_then(Value::as_f64);
                    if own_min.is_none_or(|m| m < min as f64) {
                        map.insert("minimum".to_owned(), bound_value(min));
                    }
                    if own_max.is_none_or(|m| m > max as f64) {
                        map.insert("maximum".to_owned(), bound_value(max));
                    }
                }
                map.values_mut().for_each(walk);
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut schema);
    schema
}

/// Whether a number is a whole number within `(min, max)`.
fn holds(value: &Value, (min, max): (i128, i128)) -> bool {
    // A whole float (`0.0`) is that integer, as the manifest loader reads it.
    let whole = |f: f64| (f.fract() == 0.0 && f.abs() < 1e38).then_some(f as i128);
    let exact = value
        .as_i64()
        .map(i128::from)
        .or_else(|| value.as_u64().map(i128::from))
        .or_else(|| value.as_f64().and_then(whole));
    exact.is_some_and(|n| (min..=max).contains(&n))
}

/// The integer `format` and its range at the schema node whose keyword failed.
fn integer_format(schema: &Value, schema_path: &str) -> Option<(String, (i128, i128))> {
    let parent = schema_path.rsplit_once('/').map_or("", |(p, _)| p);
    let format = schema.pointer(parent)?.get("format")?.as_str()?;
    Some((format.to_owned(), integer_range(format)?))
}

/// A scalar as written in the file: a number too large for `i64` is read as a float, and
/// its float form (`1e20`) is not what the user wrote.
fn literal_text(doc: &YamlDocument, pointer: &str) -> Option<String> {
    let pos = doc.spans.node(pointer)?;
    let line = doc.source_line(pos.line)?;
    let text: String = line
        .chars()
        .skip(pos.col.saturating_sub(1))
        .take_while(|c| !c.is_whitespace() && !",]}#".contains(*c))
        .collect();
    (!text.is_empty()).then_some(text)
}

fn describe_type(name: &str) -> &'static str {
    match name {
        "object" => "a mapping",
        "array" => "a sequence",
        "string" => "a string",
        "integer" => "an integer",
        "number" => "a number",
        "boolean" => "a boolean",
        "null" => "null",
        _ => "a value of another type",
    }
}

fn describe_types(types: &Value) -> String {
    match types {
        Value::String(s) => describe_type(s).to_owned(),
        Value::Array(a) => {
            let names: Vec<&str> = a
                .iter()
                .filter_map(Value::as_str)
                .map(describe_type)
                .collect();
            names.join(" or ")
        }
        _ => "a value of another type".to_owned(),
    }
}

fn describe_type_kind(kind: &TypeKind) -> String {
    match kind {
        TypeKind::Single(t) => describe_type(t.as_str()).to_owned(),
        TypeKind::Multiple(set) => {
            let names: Vec<&str> = set.iter().map(|t| describe_type(t.as_str())).collect();
            names.join(" or ")
        }
    }
}

/// A short description of a value, quoting scalars.
/// The value found at `pointer`; a number as the file writes it (`1e3`, not `1000.0`)
/// where the text there reads as one (an alias's node is elsewhere).
fn describe_value(doc: &YamlDocument, pointer: &str, value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("a boolean (`{b}`)"),
        Value::Number(n) => {
            let number =
                |t: &String| t.starts_with(|c: char| c.is_ascii_digit() || "+-.".contains(c));
            let written = literal_text(doc, pointer).filter(number);
            format!("a number (`{}`)", written.unwrap_or_else(|| n.to_string()))
        }
        Value::String(s) => format!("a string (`{}`)", quote_user(s)),
        Value::Array(_) => "a sequence".to_owned(),
        Value::Object(_) => "a mapping".to_owned(),
    }
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|i| format!("`{}`", quote_user(i)))
        .collect();
    quoted.join(", ")
}

// ---------------------------------------------------------------------------------------
// Checks beyond the schema

fn check_schema_version(check: &mut Check<'_>) {
    if let Some(Value::String(v)) = check.doc.value.get("schema_version") {
        if v != SCHEMA_VERSION {
            let d = check
                .warning(
                    codes::SCHEMA_VERSION,
                    format!(
                        "unsupported schema_version `{}`; reading it as `{SCHEMA_VERSION}`",
                        quote_user(v)
                    ),
                )
                .with_help(format!("supported versions: `{SCHEMA_VERSION}`"));
            check.at_node(d, "/schema_version");
        }
    }
}

/// Keys of the mapping at `pointer` in file order (falling back to sorted order for
/// mappings copied in by an alias, which have no recorded order).
fn ordered_keys(doc: &YamlDocument, pointer: &str) -> Vec<String> {
    if let Some(keys) = doc.spans.keys(pointer) {
        return keys.to_vec();
    }
    doc.value
        .pointer(pointer)
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn is_snake_case(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.ends_with('_')
        && !name.contains("__")
}

fn check_categories(check: &mut Check<'_>) {
    let doc = check.doc;
    let mut enums: Vec<(String, String)> = Vec::new();
    for category in ordered_keys(doc, "") {
        if category == "schema_version" {
            continue;
        }
        let pointer = format!("/{}", escape_pointer_segment(&category));
        if !is_snake_case(&category) {
            let message = format!(
                "category name `{}` is not snake_case",
                quote_user(&category)
            );
            let d = check.error(codes::INVALID_NAME, message).with_help(
                "category names are lower-case letters, digits and single underscores, \
                 starting with a letter",
            );
            check.at_key(d, &pointer, &pointer);
        }
        let Some(spec) = doc.value.get(&category) else {
            continue;
        };
        if let Some(Value::String(protocol)) = spec.get("protocol") {
            check_class_path(check, protocol, &format!("{pointer}/protocol"));
        }
        if let Some(Value::String(class)) = spec.get("metadata_class") {
            let class_pointer = format!("{pointer}/metadata_class");
            if check_class_path(check, class, &class_pointer) && metadata_type(class).is_none() {
                let known: Vec<&str> = METADATA_TYPES.iter().map(|t| t.class_path()).collect();
                let help = match did_you_mean(class, known.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!(
                        "known types: {}",
                        list(&known.iter().map(|k| (*k).to_owned()).collect::<Vec<_>>())
                    ),
                };
                let d = check
                    .warning(
                        codes::UNKNOWN_METADATA_CLASS,
                        format!(
                            "`{}` is not a runtime metadata type; metadata of `{category}` \
                             entries is not type-checked",
                            quote_user(class)
                        ),
                    )
                    .with_help(help);
                check.at_node(d, &class_pointer);
            }
        }
        if let Some(Value::String(name)) = spec.get("enum") {
            let enum_pointer = format!("{pointer}/enum");
            if !is_rust_ident(name) {
                let d = check
                    .error(
                        codes::INVALID_ENUM_NAME,
                        format!("enum name `{}` is not a Rust identifier", quote_user(name)),
                    )
                    .with_help("use a CamelCase type name such as `EndpointType`");
                check.at_node(d, &enum_pointer);
            } else if let Some((other, _)) = enums.iter().find(|(_, e)| e == name) {
                let d = check.error(
                    codes::DUPLICATE_ENUM,
                    format!("enum name `{name}` is already used by category `{other}`"),
                );
                check.at_node(d, &enum_pointer);
            } else {
                enums.push((category.clone(), name.clone()));
            }
        }
    }
}

/// Reports a bad class path under the check's [`ClassPathRule`]; returns whether it is
/// valid.
fn check_class_path(check: &mut Check<'_>, text: &str, pointer: &str) -> bool {
    let result = match check.rule {
        ClassPathRule::Rust => ClassPath::parse(text).map(drop),
        ClassPathRule::AnyLanguage => check_shape(text).map(drop),
    };
    match result {
        Ok(()) => true,
        Err(e) => {
            let code = match e.kind {
                ClassPathErrorKind::NotRust => codes::NOT_RUST_CLASS_PATH,
                _ => codes::INVALID_CLASS_PATH,
            };
            let d = check.error(code, e.message).with_help_opt(e.help);
            check.at_node(d, pointer);
            false
        }
    }
}

fn is_plugin_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn check_plugins(check: &mut Check<'_>, categories: &CategoriesManifest) {
    let doc = check.doc;
    let known: Vec<&str> = categories.categories.keys().collect();
    // Names are looked up after normalisation (`Fast-Burst` is `fast_burst`), so one file
    // must not spell the same name twice.
    let mut seen_categories: HashMap<String, String> = HashMap::new();
    for category in ordered_keys(doc, "") {
        if category == "schema_version" {
            continue;
        }
        let pointer = format!("/{}", escape_pointer_segment(&category));
        if let Some(first) = seen_categories.get(&normalize_name(&category)) {
            let d = name_collision(check, "category", &category, first, "");
            check.at_key(d, &pointer, &pointer);
        } else {
            seen_categories.insert(normalize_name(&category), category.clone());
        }
        let spec = categories.get(&category).map(|(_, spec)| spec);
        // A category left out for its errors is defined; calling it unknown would send
        // the reader looking for a typo.
        if spec.is_none() && !categories.is_left_out(&category) {
            let d = check
                .warning(
                    codes::UNKNOWN_CATEGORY,
                    format!(
                        "unknown category `{}`; categories.yaml does not define it",
                        quote_user(&category)
                    ),
                )
                .with_help_opt(
                    did_you_mean(&category, known.iter().copied())
                        .map(|s| format!("did you mean `{s}`?")),
                );
            check.at_key(d, &pointer, &pointer);
        }
        let metadata_ty = spec
            .and_then(|s| s.metadata_class.as_deref())
            .and_then(metadata_type);
        if !doc.value.get(&category).is_some_and(Value::is_object) {
            continue;
        }
        let mut seen_names: HashMap<String, String> = HashMap::new();
        for name in ordered_keys(doc, &pointer) {
            let entry_pointer = format!("{pointer}/{}", escape_pointer_segment(&name));
            if let Some(first) = seen_names.get(&normalize_name(&name)) {
                let d = name_collision(check, "plugin", &name, first, &pointer);
                check.at_key(d, &entry_pointer, &entry_pointer);
            } else {
                seen_names.insert(normalize_name(&name), name.clone());
            }
            if !is_plugin_name(&name) {
                let message = format!("plugin name `{}` is not a valid name", quote_user(&name));
                let d = check.error(codes::INVALID_NAME, message).with_help(
                    "plugin names are ASCII letters, digits, `_` and `-`, start with a letter \
                     and are at most 64 characters",
                );
                check.at_key(d, &entry_pointer, &entry_pointer);
            }
            let Some(entry) = doc.value.pointer(&entry_pointer) else {
                continue;
            };
            if let Some(Value::String(class)) = entry.get("class") {
                check_class_path(check, class, &format!("{entry_pointer}/class"));
            }
            let metadata_pointer = format!("{entry_pointer}/metadata");
            if let (Some(ty), Some(metadata @ Value::Object(_))) =
                (metadata_ty, entry.get("metadata"))
            {
                check_metadata_keys(check, ty, metadata, &metadata_pointer);
                if check.has_failed_under(&metadata_pointer) {
                    continue;
                }
                let mut metadata = metadata.clone();
                whole_floats_as_integers(&mut metadata);
                if let Err(e) = ty.check(&metadata) {
                    let d = check.error(
                        codes::INVALID_METADATA,
                        format!("metadata does not fit `{}`: {}", ty.name(), quote_user(&e)),
                    );
                    check.at_node(d, &metadata_pointer);
                }
            }
        }
    }
}

/// Reports metadata keys that the category's metadata type does not define. AIPerf keeps
/// metadata as a raw dict and its models ignore extra keys, so such a key is a warning; but
/// one that misspells a required key the mapping lacks is why the entry is invalid, so it
/// is the error (the schema's "missing required key" is left out for it).
fn check_metadata_keys(check: &mut Check<'_>, ty: &MetadataType, metadata: &Value, pointer: &str) {
    let fields = ty.fields();
    let required = ty.required_fields();
    let here = check.shown(pointer);
    for key in ordered_keys(check.doc, pointer) {
        if fields.contains(&key) {
            continue;
        }
        let child = format!("{pointer}/{}", escape_pointer_segment(&key));
        let suggestion = did_you_mean(&key, fields.iter().map(String::as_str));
        let help = match suggestion {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("`{}` has the keys {}", ty.name(), list(&fields)),
        };
        let stands_for_missing = suggestion
            .is_some_and(|s| required.iter().any(|r| r == s) && metadata.get(s).is_none());
        let d = if stands_for_missing {
            check.error(
                codes::UNKNOWN_KEY,
                format!("unknown key `{}` in {here}", quote_user(&key)),
            )
        } else {
            check.warning(
                codes::UNKNOWN_METADATA_KEY,
                format!(
                    "unknown key `{}` in {here}; `{}` does not define it, so it is ignored",
                    quote_user(&key),
                    ty.name()
                ),
            )
        };
        check.at_key(d.with_help(help), &child, &child);
    }
}

/// Two keys of one mapping that are the same name after normalisation.
fn name_collision(
    check: &Check<'_>,
    what: &str,
    name: &str,
    first: &str,
    parent: &str,
) -> Diagnostic {
    let first_pointer = format!("{parent}/{}", escape_pointer_segment(first));
    let at = check
        .doc
        .spans
        .key(&first_pointer)
        .map(|p| format!(" (line {})", p.line))
        .unwrap_or_default();
    check
        .error(
            codes::NAME_COLLISION,
            format!(
                "{what} name `{}` is the same as `{}`{at} after normalisation",
                quote_user(name),
                quote_user(first)
            ),
        )
        .with_help("names are compared in lower case with `-` read as `_`; remove or rename one")
}

// ---------------------------------------------------------------------------------------
// Typed model

/// How deep the parts are that a partial load of `categories.yaml` leaves out: categories.
const CATEGORY_DEPTH: usize = 1;
/// How deep the parts are that a partial load of `plugins.yaml` leaves out: entries.
const ENTRY_DEPTH: usize = 2;

fn build_categories(check: &mut Check<'_>, keep_valid: bool) -> Option<CategoriesManifest> {
    let errors = diagnostic::has_errors(&check.diagnostics);
    if (errors && !keep_valid) || check.faulted(&[], CATEGORY_DEPTH) {
        return None;
    }
    let doc = check.doc;
    let mut categories = OrderedMap::new();
    let mut left_out = Vec::new();
    for name in ordered_keys(doc, "") {
        if name == "schema_version" {
            continue;
        }
        if check.faulted(&[&name], CATEGORY_DEPTH) {
            left_out.push(name);
            continue;
        }
        let pointer = format!("/{}", escape_pointer_segment(&name));
        let mut value = doc.value.get(&name).cloned().unwrap_or(Value::Null);
        whole_floats_as_integers(&mut value);
        match serde_json::from_value::<CategorySpec>(value) {
            Ok(mut spec) => {
                spec.protocol_source = source_pos(doc, &format!("{pointer}/protocol"));
                spec.metadata_class_source = source_pos(doc, &format!("{pointer}/metadata_class"));
                categories.insert(name, spec);
            }
            Err(e) => {
                let d = check.error(codes::SCHEMA, format!("{}: {e}", check.shown(&pointer)));
                check.at_node(d, &pointer);
                left_out.push(name);
            }
        }
    }
    Some(CategoriesManifest {
        schema_version: schema_version(doc),
        categories,
        path: Some(doc.file.clone()),
        left_out,
    })
}

fn build_plugins(
    check: &mut Check<'_>,
    categories_manifest: &CategoriesManifest,
    keep_valid: bool,
) -> Option<PluginsManifest> {
    let errors = diagnostic::has_errors(&check.diagnostics);
    if (errors && !keep_valid) || check.faulted(&[], ENTRY_DEPTH) {
        return None;
    }
    let doc = check.doc;
    let mut categories = OrderedMap::new();
    for category in ordered_keys(doc, "") {
        if category == "schema_version" || check.faulted(&[&category], ENTRY_DEPTH) {
            continue;
        }
        let category_pointer = format!("/{}", escape_pointer_segment(&category));
        let mut entries = OrderedMap::new();
        for name in ordered_keys(doc, &category_pointer) {
            if check.faulted(&[&category, &name], ENTRY_DEPTH) {
                continue;
            }
            let pointer = format!("{category_pointer}/{}", escape_pointer_segment(&name));
            let mut value = doc.value.pointer(&pointer).cloned().unwrap_or(Value::Null);
            // Free-form metadata (a category without a metadata type) is kept as written,
            // as AIPerf keeps its dict: only typed fields take whole floats as integers.
            let typed_metadata = categories_manifest
                .categories
                .get(&category)
                .and_then(|spec| spec.metadata_class.as_deref())
                .and_then(metadata_type)
                .is_some();
            if let Value::Object(fields) = &mut value {
                for (key, field) in fields.iter_mut() {
                    if key != "metadata" || typed_metadata {
                        whole_floats_as_integers(field);
                    }
                }
            }
            match serde_json::from_value::<PluginSpec>(value) {
                Ok(mut spec) => {
                    let pos = doc
                        .spans
                        .key(&pointer)
                        .or_else(|| doc.spans.locate(&pointer));
                    spec.source = pos.map(|p| SourcePos {
                        line: p.line,
                        col: p.col,
                        snippet: doc.source_line(p.line),
                    });
                    spec.class_source = source_pos(doc, &format!("{pointer}/class"));
                    entries.insert(name, spec);
                }
                Err(e) => {
                    let d = check.error(codes::SCHEMA, format!("{}: {e}", check.shown(&pointer)));
                    check.at_node(d, &pointer);
                }
            }
        }
        categories.insert(category, entries);
    }
    Some(PluginsManifest {
        schema_version: schema_version(doc),
        categories,
    })
}

/// Whole numbers written as floats (`3.0`, `1e3`) become those integers, as AIPerf's
/// pydantic reads them for an integer field (the JSON Schema already counts them as
/// integers; the Rust types would refuse them). A float field takes an integer either way,
/// and the diagnostics, made from the document itself, still quote what was written.
fn whole_floats_as_integers(value: &mut Value) {
    match value {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
                // i64's range: -2^63 to 2^63, exclusive above.
                if f.fract() == 0.0 && (i64::MIN as f64..-(i64::MIN as f64)).contains(&f) {
                    *value = Value::from(f as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_floats_as_integers),
        Value::Object(map) => map.values_mut().for_each(whole_floats_as_integers),
        _ => {}
    }
}

/// Where the node at `pointer` is (its alias, for copied nodes).
fn source_pos(doc: &YamlDocument, pointer: &str) -> Option<SourcePos> {
    doc.spans.locate(pointer).map(|p| SourcePos {
        line: p.line,
        col: p.col,
        snippet: doc.source_line(p.line),
    })
}

fn schema_version(doc: &YamlDocument) -> String {
    doc.value
        .get("schema_version")
        .and_then(Value::as_str)
        .unwrap_or(SCHEMA_VERSION)
        .to_owned()
}

/// Dotted path of a JSON pointer through `root`: keys joined by `.`, sequence indices as
/// `[i]`, keys that would be ambiguous quoted.
pub fn dotted_path(root: &Value, pointer: &str) -> String {
    let mut out = String::new();
    let mut node = Some(root);
    for segment in pointer_segments(pointer) {
        match node {
            Some(Value::Array(items)) => {
                out.push_str(&format!("[{segment}]"));
                node = segment.parse::<usize>().ok().and_then(|i| items.get(i));
            }
            other => {
                push_path_key(&mut out, &segment);
                node = other.and_then(|n| n.get(&segment));
            }
        }
    }
    out
}

/// Prefixes the YAML paths of reader diagnostics with the pack name, like the others.
fn prefix_paths(diagnostics: &mut [Diagnostic], pack: &str) {
    for d in diagnostics {
        d.yaml_path = if d.yaml_path.is_empty() {
            pack.to_owned()
        } else {
            format!("{pack}:{}", d.yaml_path)
        };
    }
}
