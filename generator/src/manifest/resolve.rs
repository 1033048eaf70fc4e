//! Conflict resolution across packs, exactly as AIPerf 0.13 registers plugins.
//!
//! Packs are processed in registration order. For each (category, normalised name) a new
//! entry E is compared with the current holder X: higher `priority` wins; at equal priority
//! a non-built-in pack beats a built-in one; otherwise X (first registered) keeps the name
//! and a warning is reported. Every entry stays listed, and reachable by its class path, so
//! the generator can report what was shadowed and by whom.

use std::collections::HashMap;
use std::fmt;

use serde_json::Value;

use super::diagnostic::{codes, quote_user, Diagnostic};
use super::model::{normalize_name, CategoriesManifest, CategorySpec, PluginSpec, PluginsManifest};
use super::pack::PackInfo;

/// Why the winner of a name beat another entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OverrideReason {
    /// The winner has the higher `priority`.
    HigherPriority,
    /// Equal priority; the winner's pack is external, the other built-in.
    ExternalBeatsBuiltin,
    /// Equal priority and built-in status; the winner was registered first.
    FirstRegistered,
}

impl fmt::Display for OverrideReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OverrideReason::HigherPriority => "higher priority",
            OverrideReason::ExternalBeatsBuiltin => {
                "external pack beats built-in at equal priority"
            }
            OverrideReason::FirstRegistered => "first registered wins at equal priority",
        })
    }
}

/// Whether an entry holds its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryStatus {
    /// It owns its name; the generated enum links it.
    Winner,
    /// Another entry owns the name; this one is reachable only by class path.
    Shadowed {
        /// Pack of the entry that owns the name.
        by_pack: String,
        /// Class path of the entry that owns the name.
        by_class_path: String,
        /// Why that entry won.
        reason: OverrideReason,
    },
}

/// One registered plugin after resolution.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedEntry {
    /// Name as spelt in its manifest.
    pub name: String,
    /// `crate::module:Type`, as written (validated by the loader).
    pub class_path: String,
    /// Pack (Cargo package) that registered it.
    pub pack: String,
    /// Its conflict priority.
    pub priority: i64,
    /// Its description.
    pub description: String,
    /// Its metadata; an empty object when the manifest had none or null.
    pub metadata: Value,
    /// Winner or shadowed.
    pub status: EntryStatus,
    /// Position in the category's registration order (packs in order, then file order).
    pub registration_index: usize,
}

impl ResolvedEntry {
    /// Whether this entry owns its name.
    pub fn is_winner(&self) -> bool {
        self.status == EntryStatus::Winner
    }
}

/// A category and every entry registered in it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedCategory {
    /// Name as in `categories.yaml` (or as first spelt in a pack, for unknown categories).
    pub name: String,
    /// The category's definition; `None` for a category `categories.yaml` does not define.
    pub spec: Option<CategorySpec>,
    /// Entries grouped by name, names in order of first registration (AIPerf's listing
    /// order), each group in registration order. Shadowed entries are included.
    pub entries: Vec<ResolvedEntry>,
}

impl ResolvedCategory {
    /// The entries that own their names, in listing order.
    pub fn winners(&self) -> impl Iterator<Item = &ResolvedEntry> {
        self.entries.iter().filter(|e| e.is_winner())
    }

    /// The entry owning `name` (compared after AIPerf's normalisation).
    pub fn get(&self, name: &str) -> Option<&ResolvedEntry> {
        let wanted = normalize_name(name);
        self.winners().find(|e| normalize_name(&e.name) == wanted)
    }

    /// The entry registered under a full class path, shadowed or not. When several names
    /// share a class, the last registration owns the path, as in AIPerf.
    pub fn by_class_path(&self, class_path: &str) -> Option<&ResolvedEntry> {
        self.entries
            .iter()
            .filter(|e| e.class_path == class_path)
            .max_by_key(|e| e.registration_index)
    }
}

/// One settled conflict, for reports and the generated crate's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Category name.
    pub category: String,
    /// Plugin name (as spelt by the winner).
    pub name: String,
    /// Pack and class path of the entry that owns the name.
    pub winner: (String, String),
    /// Pack and class path of the shadowed entry.
    pub shadowed: (String, String),
    /// Why.
    pub reason: OverrideReason,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {} ({}) shadows {} ({}): {}",
            self.category,
            self.name,
            self.winner.0,
            self.winner.1,
            self.shadowed.0,
            self.shadowed.1,
            self.reason
        )
    }
}

/// The outcome of resolving every pack's entries.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    /// Categories of `categories.yaml` in file order (empty ones included), then unknown
    /// categories in order of first registration.
    pub categories: Vec<ResolvedCategory>,
    /// One decision per shadowed entry, in category then registration order.
    pub decisions: Vec<Decision>,
    /// Warnings about unresolved ties.
    pub diagnostics: Vec<Diagnostic>,
}

impl Resolution {
    /// The category named `name` (compared after normalisation).
    pub fn category(&self, name: &str) -> Option<&ResolvedCategory> {
        let wanted = normalize_name(name);
        self.categories
            .iter()
            .find(|c| normalize_name(&c.name) == wanted)
    }
}

/// Per-category bookkeeping while packs are registered.
struct Builder {
    name: String,
    spec: Option<CategorySpec>,
    /// Groups of entries per normalised name, in first-registration order.
    groups: Vec<Vec<Registered>>,
    group_of: HashMap<String, usize>,
    sequence: usize,
}

struct Registered {
    entry: ResolvedEntry,
    is_builtin: bool,
}

/// Resolves conflicts among packs given in registration order.
///
/// Entries of categories `categories.yaml` does not define are kept in categories with
/// `spec: None` (the loader has already warned about them).
pub fn resolve(
    categories: &CategoriesManifest,
    packs: &[(PackInfo, PluginsManifest)],
) -> Resolution {
    let mut builders: Vec<Builder> = categories
        .categories
        .iter()
        .map(|(name, spec)| Builder::new(name, Some(spec.clone())))
        .collect();
    let mut index: HashMap<String, usize> = builders
        .iter()
        .enumerate()
        .map(|(i, b)| (normalize_name(&b.name), i))
        .collect();
    let mut diagnostics = Vec::new();

    for (pack, manifest) in packs {
        for (category, entries) in &manifest.categories {
            let key = normalize_name(category);
            let i = *index.entry(key).or_insert_with(|| {
                builders.push(Builder::new(category, None));
                builders.len() - 1
            });
            for (name, spec) in entries {
                if let Some(d) = builders[i].register(pack, name, spec) {
                    diagnostics.push(d);
                }
            }
        }
    }

    let mut decisions = Vec::new();
    let categories = builders
        .into_iter()
        .map(|b| b.finish(&mut decisions))
        .collect();
    Resolution {
        categories,
        decisions,
        diagnostics,
    }
}

impl Builder {
    fn new(name: &str, spec: Option<CategorySpec>) -> Self {
        Self {
            name: name.to_owned(),
            spec,
            groups: Vec::new(),
            group_of: HashMap::new(),
            sequence: 0,
        }
    }

    /// Registers one entry; returns the tie warning, if any.
    fn register(&mut self, pack: &PackInfo, name: &str, spec: &PluginSpec) -> Option<Diagnostic> {
        let entry = ResolvedEntry {
            name: name.to_owned(),
            class_path: spec.class.clone(),
            pack: pack.name.clone(),
            priority: spec.priority,
            description: spec.description.clone(),
            metadata: Value::Object(spec.metadata.clone().unwrap_or_default()),
            status: EntryStatus::Winner,
            registration_index: self.sequence,
        };
        let new = Registered {
            entry,
            is_builtin: pack.is_builtin,
        };
        self.sequence += 1;

        let key = normalize_name(name);
        let Some(&g) = self.group_of.get(&key) else {
            self.group_of.insert(key, self.groups.len());
            self.groups.push(vec![new]);
            return None;
        };
        let group = &mut self.groups[g];
        let holder = group.iter().position(|r| r.entry.is_winner()).unwrap_or(0);
        let x = &group[holder];
        let mut warning = None;
        let new_wins = if new.entry.priority != x.entry.priority {
            new.entry.priority > x.entry.priority
        } else if new.is_builtin != x.is_builtin {
            !new.is_builtin
        } else {
            warning = Some(tie_warning(&self.name, x, &new, pack, spec));
            false
        };
        tracing::debug!(
            category = %self.name,
            name,
            winner = if new_wins { new.entry.pack.as_str() } else { x.entry.pack.as_str() },
            "plugin name conflict settled"
        );
        // Statuses are placeholders until `finish` names the final owner.
        let placeholder = EntryStatus::Shadowed {
            by_pack: String::new(),
            by_class_path: String::new(),
            reason: OverrideReason::FirstRegistered,
        };
        let mut new = new;
        if new_wins {
            group[holder].entry.status = placeholder;
        } else {
            new.entry.status = placeholder;
        }
        group.push(new);
        warning
    }

    fn finish(self, decisions: &mut Vec<Decision>) -> ResolvedCategory {
        let mut entries = Vec::new();
        for group in self.groups {
            let holder = group.iter().position(|r| r.entry.is_winner()).unwrap_or(0);
            let (w_pack, w_class, w_prio, w_builtin, w_name) = {
                let w = &group[holder];
                let e = &w.entry;
                (
                    e.pack.clone(),
                    e.class_path.clone(),
                    e.priority,
                    w.is_builtin,
                    e.name.clone(),
                )
            };
            for (i, mut r) in group.into_iter().enumerate() {
                if i != holder {
                    let reason = if w_prio != r.entry.priority {
                        OverrideReason::HigherPriority
                    } else if w_builtin != r.is_builtin {
                        OverrideReason::ExternalBeatsBuiltin
                    } else {
                        OverrideReason::FirstRegistered
                    };
                    decisions.push(Decision {
                        category: self.name.clone(),
                        name: w_name.clone(),
                        winner: (w_pack.clone(), w_class.clone()),
                        shadowed: (r.entry.pack.clone(), r.entry.class_path.clone()),
                        reason,
                    });
                    r.entry.status = EntryStatus::Shadowed {
                        by_pack: w_pack.clone(),
                        by_class_path: w_class.clone(),
                        reason,
                    };
                }
                entries.push(r.entry);
            }
        }
        ResolvedCategory {
            name: self.name,
            spec: self.spec,
            entries,
        }
    }
}

fn tie_warning(
    category: &str,
    kept: &Registered,
    new: &Registered,
    pack: &PackInfo,
    spec: &PluginSpec,
) -> Diagnostic {
    let message = format!(
        "plugin conflict for {category}:{}: {} vs {} (priority {}); keeping {}",
        quote_user(&kept.entry.name),
        kept.entry.pack,
        new.entry.pack,
        new.entry.priority,
        kept.entry.pack
    );
    let mut d = Diagnostic::warning(codes::PLUGIN_CONFLICT, &pack.manifest_path, message)
        .with_path(format!("{}:{category}.{}", pack.name, new.entry.name))
        .with_help(format!(
            "give one of them a higher `priority`, or rename one; the other stays reachable \
             as `{}`",
            quote_user(&new.entry.class_path)
        ));
    if let Some(pos) = &spec.source {
        d = d.at(pos.line, pos.col).with_snippet(pos.snippet.clone());
    }
    d
}
