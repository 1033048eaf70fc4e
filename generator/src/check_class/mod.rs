//! Class checks without compiling: "validate without importing" made Rust.
//!
//! Two passes over a loaded [`Session`]:
//!
//! * [`rust_paths`]: every class path (plugin `class`, category `protocol` and
//!   `metadata_class`) must be a Rust path. `build` needs this before generating code, and
//!   it is what rejects AIPerf's Python paths, one error each.
//! * [`check_sources`]: each Rust class path must resolve, in the sources of a selected
//!   pack or the runtime, to a public type (following `mod` declarations, `#[path]` and
//!   `pub use` re-exports), each protocol to a trait, and an `impl <Protocol> for <Type>`
//!   plus `impl Plugin for <Type>` must exist. Nothing is compiled: files are parsed with
//!   `syn` ([`sources`]). `build` runs this too, so that a broken class stops it with a
//!   diagnostic at the manifest line instead of rustc errors in generated code.
//!
//! Every problem is one diagnostic at the manifest line that names the class, and each
//! class path gets at most one: a path that is not Rust is not looked up, a protocol that
//! does not resolve does not make its plugins fail too.

pub mod sources;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::manifest::diagnostic::{codes, did_you_mean, quote_user, Diagnostic};
use crate::manifest::yaml::push_path_key;
use crate::manifest::{ClassPath, PackInfo, SourcePos};
use crate::plan::class_to_rust_path;
use crate::session::{workspace_root, Session};
use sources::{CrateSources, Crates, DefId, ItemKind, Resolved, Resolver};

/// The crate of the runtime, home of the protocols and of `Plugin`.
const RUNTIME_CRATE: &str = "aiperf_runtime";
/// The trait every plugin type implements to be constructed by the generated crate.
const PLUGIN_TRAIT: &str = "aiperf_runtime::plugin:Plugin";

/// What a class check is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A category's `protocol`.
    Protocol { category: String },
    /// A category's `metadata_class`.
    MetadataClass { category: String },
    /// A plugin entry's `class`.
    Entry {
        category: String,
        name: String,
        pack: String,
    },
    /// A source file of a pack that could not be read or parsed.
    Source,
}

impl Subject {
    /// `(category, name)` as `plugins --validate` lists them; protocols and metadata
    /// classes are named `<protocol>` and `<metadata_class>`.
    pub fn category_and_name(&self) -> (&str, &str) {
        match self {
            Subject::Protocol { category } => (category, "<protocol>"),
            Subject::MetadataClass { category } => (category, "<metadata_class>"),
            Subject::Entry { category, name, .. } => (category, name),
            Subject::Source => ("<sources>", ""),
        }
    }
}

/// One failed class check.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassProblem {
    /// What was checked.
    pub subject: Subject,
    /// The diagnostic, at the manifest line naming the class.
    pub diagnostic: Diagnostic,
}

/// A class path to check, with where it is written.
struct Site<'a> {
    subject: Subject,
    text: &'a str,
    file: &'a Path,
    yaml_path: String,
    pos: Option<&'a SourcePos>,
}

impl Site<'_> {
    fn error(&self, code: &'static str, message: String) -> Diagnostic {
        self.located(Diagnostic::error(code, self.file, message))
    }

    fn warning(&self, code: &'static str, message: String) -> Diagnostic {
        self.located(Diagnostic::warning(code, self.file, message))
    }

    fn located(&self, d: Diagnostic) -> Diagnostic {
        let d = d.with_path(self.yaml_path.clone());
        match self.pos {
            Some(p) => d.at(p.line, p.col).with_snippet(p.snippet.clone()),
            None => d,
        }
    }

    fn problem(&self, diagnostic: Diagnostic) -> ClassProblem {
        ClassProblem {
            subject: self.subject.clone(),
            diagnostic,
        }
    }
}

/// Every class path of the session, in file order: protocols and metadata classes of the
/// categories, then each pack's entries.
fn sites(session: &Session) -> Vec<Site<'_>> {
    let mut out = Vec::new();
    if let Some(categories) = &session.categories {
        let file = categories
            .path
            .as_deref()
            .unwrap_or(&session.categories_path);
        for (name, spec) in categories.categories.iter() {
            let mut base = String::new();
            push_path_key(&mut base, name);
            out.push(Site {
                subject: Subject::Protocol {
                    category: name.to_owned(),
                },
                text: &spec.protocol,
                file,
                yaml_path: format!("{base}.protocol"),
                pos: spec.protocol_source.as_ref(),
            });
            if let Some(class) = &spec.metadata_class {
                out.push(Site {
                    subject: Subject::MetadataClass {
                        category: name.to_owned(),
                    },
                    text: class,
                    file,
                    yaml_path: format!("{base}.metadata_class"),
                    pos: spec.metadata_class_source.as_ref(),
                });
            }
        }
    }
    for (pack, manifest) in &session.packs {
        for (category, entries) in manifest.categories.iter() {
            for (name, spec) in entries.iter() {
                let mut path = String::new();
                push_path_key(&mut path, category);
                push_path_key(&mut path, name);
                out.push(Site {
                    subject: Subject::Entry {
                        category: category.to_owned(),
                        name: name.to_owned(),
                        pack: pack.name.clone(),
                    },
                    text: &spec.class,
                    file: &pack.manifest_path,
                    yaml_path: format!("{}:{path}.class", pack.name),
                    pos: spec.class_source.as_ref(),
                });
            }
        }
    }
    out
}

/// Every class path that is not a Rust path, one problem each (E0203, or E0201 for a
/// malformed one the loader did not see).
pub fn rust_paths(session: &Session) -> Vec<ClassProblem> {
    sites(session)
        .iter()
        .filter_map(|site| {
            let e = ClassPath::parse(site.text).err()?;
            let code = match e.kind {
                crate::manifest::ClassPathErrorKind::NotRust => codes::NOT_RUST_CLASS_PATH,
                _ => codes::INVALID_CLASS_PATH,
            };
            let d = site.error(code, e.message).with_help_opt(e.help);
            Some(site.problem(d))
        })
        .collect()
}

/// Crates whose sources can be read: the selected packs and the runtime.
struct Index {
    crates: HashMap<String, CrateSources>,
}

impl Crates for Index {
    fn get(&self, name: &str) -> Option<&CrateSources> {
        self.crates.get(name)
    }
}

/// The crate name and root file of the package in `dir`, honouring `[lib] name` and
/// `[lib] path`.
fn crate_root(package_name: &str, dir: &Path) -> (String, PathBuf) {
    let lib = std::fs::read_to_string(dir.join("Cargo.toml"))
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .and_then(|t| t.get("lib").and_then(toml::Value::as_table).cloned());
    let field = |key: &str| {
        lib.as_ref()
            .and_then(|l| l.get(key))
            .and_then(toml::Value::as_str)
            .map(str::to_owned)
    };
    let name = field("name").unwrap_or_else(|| package_name.replace('-', "_"));
    let root = field("path").map_or_else(|| dir.join("src").join("lib.rs"), |p| dir.join(p));
    (name, root)
}

/// Checks every Rust class path of the session against the sources. Paths that are not
/// Rust paths are skipped ([`rust_paths`] reports them).
pub fn check_sources(session: &Session) -> Vec<ClassProblem> {
    let mut roots: Vec<(String, PathBuf, Option<&PackInfo>)> = Vec::new();
    for pack in &session.found_packs {
        let (name, root) = crate_root(&pack.name, &pack.root_dir);
        if roots.iter().all(|(n, _, _)| *n != name) {
            roots.push((name, root, Some(pack)));
        }
    }
    if roots.iter().all(|(n, _, _)| n != RUNTIME_CRATE) {
        let runtime = workspace_root().join("runtime");
        roots.push((
            RUNTIME_CRATE.to_owned(),
            runtime.join("src").join("lib.rs"),
            None,
        ));
    }

    let all_sites = sites(session);
    let wanted: BTreeSet<String> = all_sites
        .iter()
        .filter_map(|s| ClassPath::parse(s.text).ok())
        .map(|p| p.crate_name().to_owned())
        .chain([RUNTIME_CRATE.to_owned()])
        .collect();

    let mut problems = Vec::new();
    // syn parses recursively; a pathological source file must not overflow the main
    // thread's stack, so indexing runs on a thread with room to spare.
    let index = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("check-class".into())
            .stack_size(256 << 20)
            .spawn_scoped(scope, || {
                let mut crates = HashMap::new();
                for (name, root, _) in roots.iter().filter(|(n, _, _)| wanted.contains(n)) {
                    if root.is_file() {
                        crates.insert(name.clone(), CrateSources::read(name, root));
                    }
                }
                Index { crates }
            })
            .ok()
            .and_then(|handle| handle.join().ok())
    });
    let Some(index) = index else {
        let d = Diagnostic::error(
            codes::INTERNAL,
            &session.categories_path,
            "reading the pack sources failed unexpectedly",
        );
        problems.push(ClassProblem {
            subject: Subject::Source,
            diagnostic: d,
        });
        return problems;
    };

    // Source files that did not parse are reported once, where they are.
    let mut crate_names: Vec<&String> = index.crates.keys().collect();
    crate_names.sort();
    for name in crate_names {
        for d in &index.crates[name].errors {
            problems.push(ClassProblem {
                subject: Subject::Source,
                diagnostic: d.clone(),
            });
        }
    }
    let source_problems = problems.len();

    let checker = Checker {
        resolver: Resolver::new(&index),
        index: &index,
        roots: &roots,
    };
    let plugin_trait = checker.trait_id(PLUGIN_TRAIT);
    let mut protocols: HashMap<String, Option<DefId>> = HashMap::new();
    for site in &all_sites {
        let Ok(path) = ClassPath::parse(site.text) else {
            continue;
        };
        match &site.subject {
            Subject::Protocol { category } => {
                let id = match checker.resolve(site, &path, Want::Trait) {
                    Ok(id) => id,
                    Err(d) => {
                        problems.push(site.problem(d));
                        None
                    }
                };
                protocols.insert(category.clone(), id);
            }
            Subject::MetadataClass { .. } => {
                if let Err(d) = checker.resolve(site, &path, Want::Type) {
                    problems.push(site.problem(d));
                }
            }
            Subject::Source => {}
            Subject::Entry { category, .. } => {
                let type_id = match checker.resolve(site, &path, Want::Type) {
                    Ok(Some(id)) => id,
                    Ok(None) => continue,
                    Err(d) => {
                        problems.push(site.problem(d));
                        continue;
                    }
                };
                let protocol = session
                    .categories
                    .as_ref()
                    .and_then(|c| c.get(category))
                    .map(|(name, spec)| (name.to_owned(), spec.protocol.clone()));
                let protocol_id = protocol
                    .as_ref()
                    .and_then(|(name, _)| protocols.get(name).cloned().flatten());
                if let Some(d) = checker.impls(
                    site,
                    &path,
                    &type_id,
                    protocol_id
                        .as_ref()
                        .zip(protocol.as_ref().map(|(_, p)| p.as_str())),
                    plugin_trait.as_ref(),
                ) {
                    problems.push(site.problem(d));
                }
            }
        }
    }
    problems[source_problems..].sort_by(|a, b| {
        let key = |p: &ClassProblem| (p.diagnostic.file.clone(), p.diagnostic.line);
        key(a).cmp(&key(b))
    });
    problems
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    Type,
    Trait,
}

struct Checker<'a> {
    resolver: Resolver<'a, Index>,
    index: &'a Index,
    roots: &'a [(String, PathBuf, Option<&'a PackInfo>)],
}

impl Checker<'_> {
    fn trait_id(&self, class_path: &str) -> Option<DefId> {
        let path = ClassPath::parse(class_path).ok()?;
        let mut segments = path.module.clone();
        segments.push(path.type_name.clone());
        match self.resolver.resolve_absolute(&segments).ok()?.target {
            Resolved::Item(id) => {
                let kind = self.index.get(&id.krate)?.kind(&id)?;
                (kind == ItemKind::Trait).then_some(id)
            }
            _ => None,
        }
    }

    /// Resolves a class path to a definition of the wanted kind. `Ok(None)` when it leads
    /// into a crate whose sources are not indexed.
    #[allow(
        clippy::result_large_err,
        reason = "one call per class path; the error is the diagnostic to report"
    )]
    fn resolve(
        &self,
        site: &Site<'_>,
        path: &ClassPath,
        want: Want,
    ) -> Result<Option<DefId>, Diagnostic> {
        let shown = quote_user(site.text);
        let krate = path.crate_name();
        if self.index.get(krate).is_none() {
            return Err(self.unknown_crate(site, krate));
        }
        let mut segments = path.module.clone();
        segments.push(path.type_name.clone());
        let resolution = match self.resolver.resolve_absolute(&segments) {
            Ok(r) => r,
            // The module's file failed to read or parse; that is reported once, there.
            Err(missing) if missing.incomplete => return Ok(None),
            Err(missing) => {
                let name = segments.get(missing.segment).cloned().unwrap_or_default();
                let what = if missing.segment + 1 == segments.len() {
                    match want {
                        Want::Type => "type",
                        Want::Trait => "trait",
                    }
                } else {
                    "module"
                };
                let d = site
                    .error(
                        codes::CLASS_NOT_FOUND,
                        format!(
                            "cannot find {what} `{}` in `{}` (class path `{shown}`)",
                            quote_user(&name),
                            missing.scope
                        ),
                    )
                    .with_help_opt(
                        did_you_mean(&name, missing.candidates.iter().map(String::as_str))
                            .map(|s| format!("did you mean `{s}`?")),
                    );
                return Err(d);
            }
        };
        let id = match resolution.target {
            Resolved::External => {
                let d = site.warning(
                    codes::NOT_CHECKED,
                    format!(
                        "`{shown}` leads into a crate whose sources are not indexed; its \
                         type and impls are not checked"
                    ),
                );
                return Err(d);
            }
            Resolved::Module { krate, module } => {
                let module = self
                    .index
                    .get(&krate)
                    .map(|c| c.module_path(module))
                    .unwrap_or_default();
                return Err(site.error(
                    codes::WRONG_ITEM_KIND,
                    format!(
                        "`{shown}` names the module `{module}`, not a {}",
                        want.noun()
                    ),
                ));
            }
            Resolved::Item(id) => id,
        };
        let kind = self.index.get(&id.krate).and_then(|c| c.kind(&id));
        let fits = kind.is_some_and(|k| match want {
            Want::Type => k.is_type(),
            Want::Trait => k == ItemKind::Trait,
        });
        if !fits {
            let found = kind.map_or("something else", ItemKind::describe);
            return Err(site.error(
                codes::WRONG_ITEM_KIND,
                format!("`{shown}` is {found}, not a {}", want.noun()),
            ));
        }
        if let Some(step) = resolution.private_step {
            return Err(site
                .error(
                    codes::NOT_PUBLIC,
                    format!(
                        "`{shown}` is not reachable from the generated crate: `{step}` is not \
                         `pub`"
                    ),
                )
                .with_help(
                    "the generated crate names the type from outside its crate; make the \
                     item, each module on the way and any re-export `pub`",
                ));
        }
        Ok(Some(id))
    }

    fn unknown_crate(&self, site: &Site<'_>, krate: &str) -> Diagnostic {
        let shown = quote_user(site.text);
        if let Some((_, root, pack)) = self.roots.iter().find(|(n, _, _)| n == krate) {
            let whose = pack.map_or_else(
                || "the runtime".to_owned(),
                |p| format!("pack `{}`", p.name),
            );
            return site.error(
                codes::SOURCE_ERROR,
                format!(
                    "cannot check `{shown}`: the sources of {whose} are missing (expected {})",
                    root.display()
                ),
            );
        }
        let available: Vec<&str> = self.roots.iter().map(|(n, _, _)| n.as_str()).collect();
        let help = match did_you_mean(krate, available.iter().copied()) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!(
                "the generated crate depends only on the selected packs and the runtime: {}",
                available
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        site.error(
            codes::UNKNOWN_CRATE,
            format!(
                "crate `{}` of `{shown}` is neither a selected pack nor the runtime",
                quote_user(krate)
            ),
        )
        .with_help(help)
    }

    /// Checks `impl <protocol> for <type>` and `impl Plugin for <type>`.
    fn impls(
        &self,
        site: &Site<'_>,
        path: &ClassPath,
        type_id: &DefId,
        protocol: Option<(&DefId, &str)>,
        plugin: Option<&DefId>,
    ) -> Option<Diagnostic> {
        let mut search = vec![type_id.krate.as_str()];
        let mut missing = Vec::new();
        for (trait_id, trait_path) in protocol
            .into_iter()
            .chain(plugin.map(|p| (p, PLUGIN_TRAIT)))
        {
            if !search.contains(&trait_id.krate.as_str()) {
                search.push(&trait_id.krate);
            }
            if !self.resolver.has_impl(trait_id, type_id, &search) {
                missing.push(trait_path);
            }
        }
        if missing.is_empty() {
            return None;
        }
        let trait_name = |p: &str| p.rsplit(':').next().unwrap_or(p).to_owned();
        let wanted: Vec<String> = missing
            .iter()
            .map(|t| format!("`impl {} for {}`", trait_name(t), path.type_name))
            .collect();
        let crates: Vec<String> = search.iter().map(|c| format!("`{c}`")).collect();
        let message = format!(
            "no {} in the sources of {}",
            wanted.join(" and no "),
            crates.join(" or ")
        );
        let help = format!(
            "the generated crate uses `{}` through {}",
            path.rust_path(),
            missing
                .iter()
                .map(|t| format!("`{}`", class_to_rust_path(t)))
                .collect::<Vec<_>>()
                .join(" and "),
        );
        let macro_site = self
            .index
            .get(&type_id.krate)
            .and_then(|c| c.macro_sites.first());
        Some(match macro_site {
            // Items a macro expands to are invisible here; say so rather than fail.
            Some(at) => site
                .warning(codes::IMPL_NOT_SEEN, message)
                .with_help(format!(
                    "{help}; the crate invokes item macros (first: {at}), which may \
                     generate it"
                )),
            None => site.error(codes::MISSING_IMPL, message).with_help(help),
        })
    }
}

impl Want {
    fn noun(self) -> &'static str {
        match self {
            Want::Type => "type",
            Want::Trait => "trait",
        }
    }
}
