//! A crate's module tree read with `syn`, and the name resolution `--check-class` needs.
//!
//! Reading follows `mod` declarations to their files (`foo.rs`, `foo/mod.rs`, `#[path]`),
//! skips `#[cfg(test)]` items, and records per module its type-namespace items, its `use`
//! declarations (named and glob) and its trait impls. Resolution then answers "what does
//! this path name, from this module?" the way rustc does for the cases plugin packs use:
//! `crate`/`self`/`super`, extern crates, nested modules, `use` re-exports (renamed,
//! grouped, glob) and type aliases. Macro-generated items are invisible; the crate
//! remembers where item macros are invoked so callers can soften their verdicts.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use syn::spanned::Spanned;

use crate::manifest::diagnostic::{codes, Diagnostic, SourceLines};

/// Largest source file read; generated sources can be big, but not this big.
const MAX_FILE_BYTES: u64 = 8 << 20;
/// Most files read per crate, so a `#[path]` loop or a huge tree cannot run away.
const MAX_FILES: usize = 5_000;
/// Deepest module nesting followed.
const MAX_DEPTH: usize = 64;
/// Most `use` hops followed when resolving one path (re-export chains, glob cycles).
const MAX_HOPS: usize = 64;

/// What kind of item a name refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    Struct,
    Enum,
    Union,
    TypeAlias,
    Trait,
    Function,
    Constant,
    Static,
    Macro,
}

impl ItemKind {
    /// Whether the item is a type a plugin can be.
    pub fn is_type(self) -> bool {
        matches!(
            self,
            ItemKind::Struct | ItemKind::Enum | ItemKind::Union | ItemKind::TypeAlias
        )
    }

    /// `a struct`, `a function`, ...
    pub fn describe(self) -> &'static str {
        match self {
            ItemKind::Struct => "a struct",
            ItemKind::Enum => "an enum",
            ItemKind::Union => "a union",
            ItemKind::TypeAlias => "a type alias",
            ItemKind::Trait => "a trait",
            ItemKind::Function => "a function",
            ItemKind::Constant => "a constant",
            ItemKind::Static => "a static",
            ItemKind::Macro => "a macro",
        }
    }
}

#[derive(Debug, Clone)]
struct ItemDef {
    name: String,
    kind: ItemKind,
    public: bool,
    /// For a type alias, the aliased path (generic arguments dropped).
    alias_of: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
struct UseDef {
    /// Name it binds; `None` for a glob.
    name: Option<String>,
    /// Path as written; a leading `::` is kept as a `::` segment.
    target: Vec<String>,
    public: bool,
}

/// One `impl Trait for Type` block.
#[derive(Debug, Clone)]
pub struct ImplDef {
    trait_path: Vec<String>,
    self_path: Vec<String>,
}

#[derive(Debug, Clone)]
struct Module {
    name: String,
    parent: Option<usize>,
    /// Declared `pub mod` (visible from other crates if its parents are).
    public: bool,
    children: Vec<(String, usize)>,
    items: Vec<ItemDef>,
    uses: Vec<UseDef>,
    impls: Vec<ImplDef>,
    /// False when the module's file could not be read or parsed: its items are unknown.
    complete: bool,
}

/// One crate's module tree.
#[derive(Debug, Clone)]
pub struct CrateSources {
    /// Crate name as Rust paths spell it (`aiperf_core`).
    pub name: String,
    modules: Vec<Module>,
    /// Item macro invocations (`file:line name!`), which may define items or impls that
    /// this index cannot see.
    pub macro_sites: Vec<String>,
    /// Files that could not be read or parsed.
    pub errors: Vec<Diagnostic>,
}

/// A definition: crate name, module index, item index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DefId {
    pub krate: String,
    module: usize,
    item: usize,
}

/// What a path resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// An item defined in an indexed crate.
    Item(DefId),
    /// A module of an indexed crate.
    Module { krate: String, module: usize },
    /// Something in a crate that is not indexed (`std`, a registry dependency).
    External,
}

/// Why a path did not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    /// Index of the segment that was not found.
    pub segment: usize,
    /// Names that were visible where it was looked up, for suggestions.
    pub candidates: Vec<String>,
    /// Where it was looked up (`aiperf_core::endpoints`).
    pub scope: String,
    /// The module it was looked up in could not be read or parsed (already reported), so
    /// the name may well exist.
    pub incomplete: bool,
}

/// Read access to every indexed crate.
pub trait Crates {
    /// The indexed crate called `name`, if any.
    fn get(&self, name: &str) -> Option<&CrateSources>;
}

impl CrateSources {
    /// Reads the crate whose root file (`src/lib.rs`) is `root`.
    pub fn read(name: &str, root: &Path) -> Self {
        let mut reader = Reader {
            modules: Vec::new(),
            macro_sites: Vec::new(),
            errors: Vec::new(),
            files: 0,
            visited: HashSet::new(),
        };
        reader.modules.push(Module {
            name: name.to_owned(),
            parent: None,
            public: true,
            children: Vec::new(),
            items: Vec::new(),
            uses: Vec::new(),
            impls: Vec::new(),
            complete: true,
        });
        let parsed = reader.parse(root, None);
        reader.modules[0].complete = parsed.is_some();
        if let Some(file) = parsed {
            let dir = root.parent().unwrap_or(Path::new(".")).to_owned();
            let place = Place {
                module: 0,
                file: root.to_owned(),
                dir,
                inline: false,
                depth: 0,
            };
            reader.items(&file.items, &place);
        }
        Self {
            name: name.to_owned(),
            modules: reader.modules,
            macro_sites: reader.macro_sites,
            errors: reader.errors,
        }
    }

    /// `krate::a::b` for module `module`.
    pub fn module_path(&self, module: usize) -> String {
        let mut names = Vec::new();
        let mut current = Some(module);
        while let Some(i) = current {
            let Some(m) = self.modules.get(i) else {
                break;
            };
            names.push(m.name.as_str());
            current = m.parent;
        }
        names.reverse();
        names.join("::")
    }

    fn item(&self, id: &DefId) -> Option<&ItemDef> {
        self.modules.get(id.module)?.items.get(id.item)
    }

    /// The kind of the item `id` names.
    pub fn kind(&self, id: &DefId) -> Option<ItemKind> {
        self.item(id).map(|i| i.kind)
    }

    /// Every module-level name visible in `module` (for suggestions).
    fn names_in(&self, module: usize) -> Vec<String> {
        let Some(m) = self.modules.get(module) else {
            return Vec::new();
        };
        let mut names: Vec<String> = m.items.iter().map(|i| i.name.clone()).collect();
        names.extend(m.children.iter().map(|(n, _)| n.clone()));
        names.extend(m.uses.iter().filter_map(|u| u.name.clone()));
        names
    }

    /// Impl blocks with a trait, each with its module.
    fn impls(&self) -> impl Iterator<Item = (usize, &ImplDef)> {
        self.modules
            .iter()
            .enumerate()
            .flat_map(|(i, m)| m.impls.iter().map(move |imp| (i, imp)))
    }
}

/// Where items being read go, and how nested `mod` declarations find their files.
struct Place {
    module: usize,
    /// The file the items are in.
    file: PathBuf,
    /// Directory of this module's child module files.
    dir: PathBuf,
    /// The items are inside an inline `mod x { ... }` block.
    inline: bool,
    depth: usize,
}

struct Reader {
    modules: Vec<Module>,
    macro_sites: Vec<String>,
    errors: Vec<Diagnostic>,
    files: usize,
    visited: HashSet<PathBuf>,
}

impl Reader {
    /// Reads and parses one file; problems become diagnostics at the `mod` declaration
    /// (`from`) or in the file.
    fn parse(&mut self, path: &Path, from: Option<(&Path, usize)>) -> Option<syn::File> {
        self.files += 1;
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_owned());
        if self.files > MAX_FILES || !self.visited.insert(canonical) {
            let d = Diagnostic::error(
                codes::SOURCE_ERROR,
                path,
                format!(
                    "`{}` is read more than once or the crate has over {MAX_FILES} files; \
                     stopped following modules",
                    path.display()
                ),
            );
            self.errors.push(at_line(d, from));
            return None;
        }
        let text = match read_limited(path) {
            Ok(text) => text,
            Err(message) => {
                let d = Diagnostic::error(codes::SOURCE_ERROR, path, message);
                self.errors.push(at_line(d, from));
                return None;
            }
        };
        match syn::parse_file(&text) {
            Ok(file) => Some(file),
            Err(e) => {
                let start = e.span().start();
                let lines = SourceLines::new(&text);
                // The lexer's own message says nothing useful about what is wrong.
                let reason = match e.to_string().as_str() {
                    "cannot parse string into token stream" => {
                        "unbalanced delimiters or an invalid token".to_owned()
                    }
                    other => other.to_owned(),
                };
                let d = Diagnostic::error(
                    codes::SOURCE_ERROR,
                    path,
                    format!("cannot parse `{}`: {reason}", path.display()),
                )
                .at(start.line.max(1), start.column + 1)
                .with_snippet(lines.line(start.line.max(1)));
                self.errors.push(d);
                None
            }
        }
    }

    fn items(&mut self, items: &[syn::Item], place: &Place) {
        for item in items {
            if is_cfg_test(attrs_of(item)) {
                continue;
            }
            match item {
                syn::Item::Mod(m) => self.module(m, place),
                syn::Item::Use(u) => {
                    let public = is_pub(&u.vis);
                    let mut prefix = Vec::new();
                    if u.leading_colon.is_some() {
                        prefix.push("::".to_owned());
                    }
                    let uses = &mut self.modules[place.module].uses;
                    flatten_use(&u.tree, &mut prefix, public, uses);
                }
                syn::Item::Impl(imp) => {
                    let Some((trait_path, _)) = &imp.trait_ else {
                        continue;
                    };
                    let Some(self_path) = type_path(&imp.self_ty) else {
                        continue;
                    };
                    self.modules[place.module].impls.push(ImplDef {
                        trait_path: path_segments(trait_path),
                        self_path,
                    });
                }
                syn::Item::Macro(mac) => {
                    let name = mac
                        .mac
                        .path
                        .segments
                        .last()
                        .map(|s| s.ident.to_string())
                        .unwrap_or_default();
                    if let Some(ident) = &mac.ident {
                        // `macro_rules! name { ... }` defines a macro; it generates nothing
                        // by being defined.
                        self.define(place, ident.to_string(), ItemKind::Macro, true, None);
                    } else {
                        let line = mac.mac.path.span().start().line;
                        self.macro_sites
                            .push(format!("{}:{line} `{name}!`", place.file.display()));
                    }
                }
                other => {
                    if let Some((name, kind, public, alias_of)) = definition(other) {
                        self.define(place, name, kind, public, alias_of);
                    }
                }
            }
        }
    }

    fn define(
        &mut self,
        place: &Place,
        name: String,
        kind: ItemKind,
        public: bool,
        alias_of: Option<Vec<String>>,
    ) {
        self.modules[place.module].items.push(ItemDef {
            name,
            kind,
            public,
            alias_of,
        });
    }

    fn module(&mut self, m: &syn::ItemMod, place: &Place) {
        let name = m.ident.to_string();
        let line = m.ident.span().start().line;
        if place.depth >= MAX_DEPTH {
            let d = Diagnostic::error(
                codes::SOURCE_ERROR,
                &place.file,
                format!("modules nest deeper than {MAX_DEPTH} levels at `{name}`"),
            );
            self.errors.push(at_line(d, Some((&place.file, line))));
            return;
        }
        let index = self.modules.len();
        self.modules.push(Module {
            name: name.clone(),
            parent: Some(place.module),
            public: matches!(m.vis, syn::Visibility::Public(_)),
            children: Vec::new(),
            items: Vec::new(),
            uses: Vec::new(),
            impls: Vec::new(),
            complete: true,
        });
        self.modules[place.module]
            .children
            .push((name.clone(), index));
        let path_attr = path_attribute(&m.attrs);

        if let Some((_, items)) = &m.content {
            let dir = match &path_attr {
                // `#[path]` on an inline module names the directory of its children.
                Some(p) => place.dir.join(p),
                None => place.dir.join(&name),
            };
            let inner = Place {
                module: index,
                file: place.file.clone(),
                dir,
                inline: true,
                depth: place.depth + 1,
            };
            self.items(items, &inner);
            return;
        }

        let (file, dir) = match path_attr {
            Some(p) => {
                // Outside inline blocks `#[path]` is relative to the declaring file's
                // directory; inside them, to the inline modules' directory.
                let base = if place.inline {
                    place.dir.clone()
                } else {
                    place.file.parent().unwrap_or(Path::new(".")).to_owned()
                };
                let file = base.join(p);
                let dir = file.parent().unwrap_or(Path::new(".")).to_owned();
                (file, dir)
            }
            None => {
                let flat = place.dir.join(format!("{name}.rs"));
                let nested = place.dir.join(&name).join("mod.rs");
                if flat.is_file() || !nested.is_file() {
                    (flat, place.dir.join(&name))
                } else {
                    (nested, place.dir.join(&name))
                }
            }
        };
        if !file.is_file() {
            let d = Diagnostic::error(
                codes::SOURCE_ERROR,
                &place.file,
                format!(
                    "file not found for module `{name}`: expected {}",
                    file.display()
                ),
            );
            self.errors.push(at_line(d, Some((&place.file, line))));
            self.modules[index].complete = false;
            return;
        }
        let parsed = self.parse(&file, Some((&place.file, line)));
        self.modules[index].complete = parsed.is_some();
        if let Some(parsed) = parsed {
            let inner = Place {
                module: index,
                file,
                dir,
                inline: false,
                depth: place.depth + 1,
            };
            self.items(&parsed.items, &inner);
        }
    }
}

/// Moves a diagnostic to the `mod` declaration that led to the file, with its source line.
fn at_line(d: Diagnostic, from: Option<(&Path, usize)>) -> Diagnostic {
    let Some((file, line)) = from else {
        return d;
    };
    let snippet = read_limited(file)
        .ok()
        .and_then(|text| SourceLines::new(&text).line(line));
    let col = snippet
        .as_deref()
        .and_then(|s| s.find("mod ").map(|i| s[..i].chars().count() + 1))
        .unwrap_or(1);
    Diagnostic {
        file: file.to_owned(),
        ..d
    }
    .at(line, col)
    .with_snippet(snippet)
}

fn read_limited(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "`{}` is larger than {MAX_FILE_BYTES} bytes",
            path.display()
        ));
    }
    String::from_utf8(bytes).map_err(|_| format!("`{}` is not valid UTF-8", path.display()))
}

fn attrs_of(item: &syn::Item) -> &[syn::Attribute] {
    match item {
        syn::Item::Const(i) => &i.attrs,
        syn::Item::Enum(i) => &i.attrs,
        syn::Item::ExternCrate(i) => &i.attrs,
        syn::Item::Fn(i) => &i.attrs,
        syn::Item::ForeignMod(i) => &i.attrs,
        syn::Item::Impl(i) => &i.attrs,
        syn::Item::Macro(i) => &i.attrs,
        syn::Item::Mod(i) => &i.attrs,
        syn::Item::Static(i) => &i.attrs,
        syn::Item::Struct(i) => &i.attrs,
        syn::Item::Trait(i) => &i.attrs,
        syn::Item::TraitAlias(i) => &i.attrs,
        syn::Item::Type(i) => &i.attrs,
        syn::Item::Union(i) => &i.attrs,
        syn::Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

/// `#[cfg(test)]`: compiled only into the crate's own tests, never into a generated crate.
fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.parse_args::<syn::Path>()
                .is_ok_and(|p| p.is_ident("test"))
    })
}

/// The value of `#[path = "..."]`.
fn path_attribute(attrs: &[syn::Attribute]) -> Option<String> {
    attrs.iter().find_map(|a| match &a.meta {
        syn::Meta::NameValue(nv) if nv.path.is_ident("path") => match &nv.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => Some(s.value()),
            _ => None,
        },
        _ => None,
    })
}

fn is_pub(vis: &syn::Visibility) -> bool {
    matches!(vis, syn::Visibility::Public(_))
}

/// Name, kind, visibility and (for aliases) target of a defining item.
fn definition(item: &syn::Item) -> Option<(String, ItemKind, bool, Option<Vec<String>>)> {
    Some(match item {
        syn::Item::Struct(i) => (i.ident.to_string(), ItemKind::Struct, is_pub(&i.vis), None),
        syn::Item::Enum(i) => (i.ident.to_string(), ItemKind::Enum, is_pub(&i.vis), None),
        syn::Item::Union(i) => (i.ident.to_string(), ItemKind::Union, is_pub(&i.vis), None),
        syn::Item::Trait(i) => (i.ident.to_string(), ItemKind::Trait, is_pub(&i.vis), None),
        syn::Item::Type(i) => (
            i.ident.to_string(),
            ItemKind::TypeAlias,
            is_pub(&i.vis),
            type_path(&i.ty),
        ),
        syn::Item::Fn(i) => (
            i.sig.ident.to_string(),
            ItemKind::Function,
            is_pub(&i.vis),
            None,
        ),
        syn::Item::Const(i) => (
            i.ident.to_string(),
            ItemKind::Constant,
            is_pub(&i.vis),
            None,
        ),
        syn::Item::Static(i) => (i.ident.to_string(), ItemKind::Static, is_pub(&i.vis), None),
        _ => return None,
    })
}

fn path_segments(path: &syn::Path) -> Vec<String> {
    let mut out = Vec::new();
    if path.leading_colon.is_some() {
        out.push("::".to_owned());
    }
    out.extend(path.segments.iter().map(|s| s.ident.to_string()));
    out
}

/// The path of a plain path type (`a::B<T>` → `[a, B]`); `None` for references, tuples,
/// qualified paths and the like.
fn type_path(ty: &syn::Type) -> Option<Vec<String>> {
    match ty {
        syn::Type::Path(p) if p.qself.is_none() => Some(path_segments(&p.path)),
        syn::Type::Paren(p) => type_path(&p.elem),
        syn::Type::Group(g) => type_path(&g.elem),
        _ => None,
    }
}

/// One `use` tree as flat bindings.
fn flatten_use(tree: &syn::UseTree, prefix: &mut Vec<String>, public: bool, out: &mut Vec<UseDef>) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            flatten_use(&p.tree, prefix, public, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let name = n.ident.to_string();
            // `use a::b::{self}` binds `b`.
            let (binding, target) = if name == "self" {
                (prefix.last().cloned(), prefix.clone())
            } else {
                let mut target = prefix.clone();
                target.push(name.clone());
                (Some(name), target)
            };
            if let Some(binding) = binding {
                out.push(UseDef {
                    name: Some(binding),
                    target,
                    public,
                });
            }
        }
        syn::UseTree::Rename(r) => {
            let rename = r.rename.to_string();
            if rename == "_" {
                return;
            }
            let mut target = prefix.clone();
            let name = r.ident.to_string();
            if name != "self" {
                target.push(name);
            }
            out.push(UseDef {
                name: Some(rename),
                target,
                public,
            });
        }
        syn::UseTree::Glob(_) => out.push(UseDef {
            name: None,
            target: prefix.clone(),
            public,
        }),
        syn::UseTree::Group(g) => {
            for item in &g.items {
                flatten_use(item, prefix, public, out);
            }
        }
    }
}

/// A path resolved step by step, with whether every step was visible to other crates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// What the path names.
    pub target: Resolved,
    /// The first step that is not `pub` (a module, item or re-export), if any.
    pub private_step: Option<String>,
}

/// Resolves paths across indexed crates.
pub struct Resolver<'a, C: Crates> {
    crates: &'a C,
    /// Lookups left for the current resolution: glob imports can form cycles and fan out,
    /// so every resolution gets a fixed amount of work.
    budget: std::cell::Cell<usize>,
}

/// Lookups one resolution may make; real re-export chains need a handful.
const BUDGET: usize = 20_000;

/// A lookup result inside one crate: the binding found and whether it is `pub`.
struct Found {
    target: Resolved,
    public: bool,
}

impl<'a, C: Crates> Resolver<'a, C> {
    /// A resolver over `crates`.
    pub fn new(crates: &'a C) -> Self {
        Self {
            crates,
            budget: std::cell::Cell::new(BUDGET),
        }
    }

    /// Resolves an absolute path as another crate would write it
    /// (`aiperf_core::endpoints::ChatEndpoint`).
    ///
    /// # Errors
    /// Which segment was not found, and what was there instead.
    pub fn resolve_absolute(&self, segments: &[String]) -> Result<Resolution, Unresolved> {
        self.budget.set(BUDGET);
        let Some((first, rest)) = segments.split_first() else {
            return Err(Unresolved {
                segment: 0,
                candidates: Vec::new(),
                scope: String::new(),
                incomplete: false,
            });
        };
        let Some(krate) = self.crates.get(first) else {
            return Ok(Resolution {
                target: Resolved::External,
                private_step: None,
            });
        };
        let mut current = Resolved::Module {
            krate: krate.name.clone(),
            module: 0,
        };
        let mut private_step = None;
        for (i, segment) in rest.iter().enumerate() {
            let Resolved::Module { krate, module } = &current else {
                // Only modules have members we can look into.
                return Err(Unresolved {
                    segment: i + 1,
                    candidates: Vec::new(),
                    scope: segments[..=i].join("::"),
                    incomplete: false,
                });
            };
            let scope = self
                .crates
                .get(krate)
                .map(|c| c.module_path(*module))
                .unwrap_or_default();
            match self.member(krate, *module, segment, 0) {
                Some(found) => {
                    if !found.public && private_step.is_none() {
                        private_step = Some(format!("{scope}::{segment}"));
                    }
                    current = found.target;
                }
                None => {
                    let c = self.crates.get(krate);
                    return Err(Unresolved {
                        segment: i + 1,
                        candidates: c.map(|c| c.names_in(*module)).unwrap_or_default(),
                        scope,
                        incomplete: c
                            .and_then(|c| c.modules.get(*module))
                            .is_some_and(|m| !m.complete),
                    });
                }
            }
        }
        Ok(Resolution {
            target: current,
            private_step,
        })
    }

    /// Resolves a path written inside `module` of `krate` (an impl's trait or type).
    pub fn resolve_in(&self, krate: &str, module: usize, segments: &[String]) -> Option<Resolved> {
        self.budget.set(BUDGET);
        self.resolve_scoped(krate, module, segments, 0)
    }

    fn resolve_scoped(
        &self,
        krate: &str,
        module: usize,
        segments: &[String],
        hops: usize,
    ) -> Option<Resolved> {
        if hops > MAX_HOPS {
            return None;
        }
        let (first, rest) = segments.split_first()?;
        let c = self.crates.get(krate)?;
        let mut current = match first.as_str() {
            "crate" => Resolved::Module {
                krate: krate.to_owned(),
                module: 0,
            },
            "self" => Resolved::Module {
                krate: krate.to_owned(),
                module,
            },
            "super" => Resolved::Module {
                krate: krate.to_owned(),
                module: c.modules.get(module)?.parent?,
            },
            "::" => {
                let (name, rest) = rest.split_first()?;
                return self.in_extern_crate(name, rest, hops);
            }
            name => match self.member(krate, module, name, hops) {
                Some(found) => found.target,
                None => return self.in_extern_crate(name, rest, hops),
            },
        };
        for segment in rest {
            current = match (&current, segment.as_str()) {
                (Resolved::Module { krate, module }, "super") => Resolved::Module {
                    krate: krate.clone(),
                    module: self.crates.get(krate)?.modules.get(*module)?.parent?,
                },
                (Resolved::Module { krate, module }, name) => {
                    self.member(krate, *module, name, hops)?.target
                }
                (Resolved::External, _) => Resolved::External,
                (Resolved::Item(_), _) => return None,
            };
        }
        Some(current)
    }

    /// A path starting with an extern crate's name.
    fn in_extern_crate(&self, name: &str, rest: &[String], hops: usize) -> Option<Resolved> {
        match self.crates.get(name) {
            Some(c) => {
                let mut segments = vec!["crate".to_owned()];
                segments.extend(rest.iter().cloned());
                self.resolve_scoped(&c.name, 0, &segments, hops + 1)
            }
            None => Some(Resolved::External),
        }
    }

    /// The binding `name` inside `module`: an item, a child module, a `use`, or a glob
    /// import's member.
    fn member(&self, krate: &str, module: usize, name: &str, hops: usize) -> Option<Found> {
        let left = self.budget.get();
        if hops > MAX_HOPS || left == 0 {
            return None;
        }
        self.budget.set(left - 1);
        let c = self.crates.get(krate)?;
        let m = c.modules.get(module)?;
        // Types and traits live in the type namespace with modules; prefer them over
        // functions and constants of the same name.
        let mut items: Vec<(usize, &ItemDef)> = m
            .items
            .iter()
            .enumerate()
            .filter(|(_, i)| i.name == name)
            .collect();
        items.sort_by_key(|(_, i)| !(i.kind.is_type() || i.kind == ItemKind::Trait));
        if let Some((index, item)) = items.first() {
            return Some(Found {
                target: Resolved::Item(DefId {
                    krate: krate.to_owned(),
                    module,
                    item: *index,
                }),
                public: item.public,
            });
        }
        if let Some((_, child)) = m.children.iter().find(|(n, _)| n == name) {
            return Some(Found {
                target: Resolved::Module {
                    krate: krate.to_owned(),
                    module: *child,
                },
                public: c.modules.get(*child).is_some_and(|m| m.public),
            });
        }
        for u in m.uses.iter().filter(|u| u.name.as_deref() == Some(name)) {
            if let Some(target) = self.resolve_scoped(krate, module, &u.target, hops + 1) {
                return Some(Found {
                    target,
                    public: u.public,
                });
            }
        }
        for u in m.uses.iter().filter(|u| u.name.is_none()) {
            let Some(Resolved::Module {
                krate: gk,
                module: gm,
            }) = self.resolve_scoped(krate, module, &u.target, hops + 1)
            else {
                continue;
            };
            if (gk.as_str(), gm) == (krate, module) {
                continue;
            }
            if let Some(found) = self.member(&gk, gm, name, hops + 1) {
                return Some(Found {
                    target: found.target,
                    public: u.public && found.public,
                });
            }
        }
        None
    }

    /// Whether some `impl <trait_id> for <type>` exists, where `type` is `type_id` or what
    /// it aliases, in the crates named.
    pub fn has_impl(&self, trait_id: &DefId, type_id: &DefId, search: &[&str]) -> bool {
        let mut types = vec![Resolved::Item(type_id.clone())];
        if let Some(alias) = self
            .crates
            .get(&type_id.krate)
            .and_then(|c| c.item(type_id))
            .and_then(|i| i.alias_of.as_ref())
        {
            if let Some(target) = self.resolve_in(&type_id.krate, type_id.module, alias) {
                types.push(target);
            }
        }
        let wanted_trait = Resolved::Item(trait_id.clone());
        search.iter().filter_map(|k| self.crates.get(k)).any(|c| {
            c.impls().any(|(module, imp)| {
                self.resolve_in(&c.name, module, &imp.trait_path).as_ref() == Some(&wanted_trait)
                    && self
                        .resolve_in(&c.name, module, &imp.self_path)
                        .is_some_and(|t| types.contains(&t))
            })
        })
    }
}
