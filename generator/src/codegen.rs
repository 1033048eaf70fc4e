//! Emits the generated crate's `main.rs` from a [`BuildPlan`].
//!
//! The code is built as tokens with `quote!`, parsed back with `syn` (so it is always
//! valid Rust) and printed with `prettyplease` (so it is always formatted). Every string
//! that comes from a manifest is emitted as an escaped literal, and every path is parsed
//! as a Rust path first: a manifest can never inject code.

use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{format_ident, quote};

use crate::plan::{class_to_rust_path, BuildPlan, PlanCategory, PlanEntry};

/// Categories the engine drives, with the `PluginSet` associated type each fills.
pub const ENGINE_CATEGORIES: &[(&str, &str)] = &[
    ("endpoint", "Endpoint"),
    ("transport", "Transport"),
    ("timing_strategy", "TimingStrategy"),
    ("arrival_pattern", "ArrivalPattern"),
    ("dataset_composer", "DatasetComposer"),
    ("tokenizer", "Tokenizer"),
    ("record_processor", "RecordProcessor"),
    ("results_processor", "ResultsProcessor"),
    ("data_exporter", "DataExporter"),
    ("console_exporter", "ConsoleExporter"),
    ("ui", "Ui"),
    ("url_selection_strategy", "UrlSelectionStrategy"),
    ("ramp", "Ramp"),
    ("custom_dataset_loader", "CustomDatasetLoader"),
    ("dataset_sampler", "DatasetSampler"),
];

/// Engine categories a binary can do without: when no pack links one, the generated enum
/// has no variants and the engine reports the feature as unavailable if asked for it.
pub const OPTIONAL_CATEGORIES: &[&str] = &["ramp", "custom_dataset_loader", "dataset_sampler"];

/// Errors that make a plan impossible to generate.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CodegenError {
    #[error("`{path}` ({what}) is not a valid Rust path")]
    BadPath { what: String, path: String },
    #[error(
        "the engine needs at least one `{category}` plugin, and none of the selected packs \
         provides one (add the `core` pack: --plugins core,...)"
    )]
    MissingCategory { category: String },
    #[error("internal error: generated code does not parse ({0}); please report this")]
    Internal(String),
    #[error("`{name}` in category `{category}` cannot be turned into a Rust identifier")]
    BadName { category: String, name: String },
}

/// `concurrency_burst` → `ConcurrencyBurst`; `2x-fast` → `V2xFast`; `self` → `SelfPlugin`.
pub fn camel_case(name: &str) -> String {
    let mut out = String::new();
    for part in name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
    {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'V');
    }
    // The one keyword a capitalized name can hit (a plugin named `self`); `Self_` would
    // make `Self_2` for a second one, which rustc warns is not camel case.
    if out == "Self" {
        out.push_str("Plugin");
    }
    out
}

fn parse_path(what: &str, path: &str) -> Result<syn::Path, CodegenError> {
    let bad = || CodegenError::BadPath {
        what: what.to_owned(),
        path: path.to_owned(),
    };
    let parsed: syn::Path = syn::parse_str(path).map_err(|_| bad())?;
    // Only plain `a::b::C` paths: no generics, no leading `::`, at least crate + item.
    if parsed.leading_colon.is_some()
        || parsed.segments.len() < 2
        || parsed.segments.iter().any(|s| !s.arguments.is_none())
    {
        return Err(bad());
    }
    Ok(parsed)
}

fn lit(s: &str) -> Literal {
    Literal::string(s)
}

/// A category with variant identifiers assigned.
struct Prepared<'a> {
    category: &'a PlanCategory,
    kind_name: Ident,
    dispatch_name: Ident,
    protocol: syn::Path,
    /// (entry, variant, implementing type, index into ENTRIES)
    variants: Vec<(&'a PlanEntry, Ident, syn::Path, usize)>,
}

fn prepare<'a>(
    category: &'a PlanCategory,
    first_index: usize,
) -> Result<Prepared<'a>, CodegenError> {
    let protocol = parse_path(
        &format!("protocol of category `{}`", category.name),
        &class_to_rust_path(&category.protocol),
    )?;
    let kind_name =
        syn::parse_str::<Ident>(&category.enum_name).map_err(|_| CodegenError::BadName {
            category: category.name.clone(),
            name: category.enum_name.clone(),
        })?;
    let dispatch_name = format_ident!("{}Plugin", camel_case(&category.name));
    let mut used: Vec<String> = Vec::new();
    let mut variants = Vec::new();
    for (i, entry) in category.entries.iter().enumerate() {
        let ty = parse_path(
            &format!("class of {}:{}", category.name, entry.name),
            &entry.rust_path(),
        )?;
        let mut base = camel_case(&entry.name);
        if base.is_empty() {
            return Err(CodegenError::BadName {
                category: category.name.clone(),
                name: entry.name.clone(),
            });
        }
        if entry.shadowed_by.is_some() {
            base = format!("{base}From{}", camel_case(&entry.pack));
        }
        let mut candidate = base.clone();
        let mut n = 2;
        while used.contains(&candidate) {
            candidate = format!("{base}{n}");
            n += 1;
        }
        used.push(candidate.clone());
        let ident = syn::parse_str::<Ident>(&candidate).map_err(|_| CodegenError::BadName {
            category: category.name.clone(),
            name: entry.name.clone(),
        })?;
        variants.push((entry, ident, ty, first_index + i));
    }
    Ok(Prepared {
        category,
        kind_name,
        dispatch_name,
        protocol,
        variants,
    })
}

/// The generated `main.rs`, formatted.
pub fn generate_main(plan: &BuildPlan) -> Result<String, CodegenError> {
    for (category, _) in ENGINE_CATEGORIES
        .iter()
        .filter(|(c, _)| !OPTIONAL_CATEGORIES.contains(c))
    {
        let linked = plan
            .categories
            .iter()
            .any(|c| c.name == *category && c.entries.iter().any(|e| e.shadowed_by.is_none()));
        if !linked {
            return Err(CodegenError::MissingCategory {
                category: (*category).to_owned(),
            });
        }
    }

    let mut prepared = Vec::new();
    let mut index = 0;
    let generated =
        |c: &PlanCategory| !c.entries.is_empty() || OPTIONAL_CATEGORIES.contains(&c.name.as_str());
    for category in plan.categories.iter().filter(|c| generated(c)) {
        prepared.push(prepare(category, index)?);
        index += category.entries.len();
    }

    let packs = plan.packs.iter().map(|p| {
        let (name, version, description, authors, builtin) = (
            lit(&p.name),
            lit(&p.version),
            lit(&p.description),
            lit(&p.authors),
            p.builtin,
        );
        quote! {
            PackInfo {
                name: #name,
                version: #version,
                description: #description,
                authors: #authors,
                builtin: #builtin,
            }
        }
    });
    let entries = prepared.iter().flat_map(|p| {
        p.variants.iter().map(move |(e, _, _, _)| {
            let category = lit(&p.category.name);
            let (name, class, pack) = (lit(&e.name), lit(&e.class_path), lit(&e.pack));
            let (description, metadata) = (lit(&e.description), lit(&e.metadata_json));
            let priority = Literal::i64_unsuffixed(e.priority);
            let shadowed = match &e.shadowed_by {
                Some(by) => {
                    let by = lit(by);
                    quote!(Some(#by))
                }
                None => quote!(None),
            };
            quote! {
                PluginEntry {
                    category: #category,
                    name: #name,
                    class_path: #class,
                    pack: #pack,
                    priority: #priority,
                    description: #description,
                    metadata_json: #metadata,
                    shadowed_by: #shadowed,
                }
            }
        })
    });
    let listed: Vec<&Prepared> = prepared.iter().filter(|p| !p.variants.is_empty()).collect();
    let categories = listed.iter().map(|p| {
        let (name, description) = (lit(&p.category.name), lit(&p.category.description));
        quote!((#name, #description))
    });
    let entry_count = Literal::usize_unsuffixed(index);
    let category_count = Literal::usize_unsuffixed(listed.len());
    let pack_count = Literal::usize_unsuffixed(plan.packs.len());
    let category_items = prepared.iter().map(category_items);

    let plugin_set_types = ENGINE_CATEGORIES.iter().filter_map(|(category, assoc)| {
        let p = prepared.iter().find(|p| p.category.name == *category)?;
        let assoc = Ident::new(assoc, Span::call_site());
        let dispatch = &p.dispatch_name;
        Some(quote!(type #assoc = #dispatch;))
    });

    let mut header = vec![format!(
        "Benchmark binary generated by aiperf-gen {}. Do not edit: regenerate with \
         `aiperf-gen build`.",
        env!("CARGO_PKG_VERSION")
    )];
    header.push(String::new());
    header.push("Packs, in registration order:".to_owned());
    for p in &plan.packs {
        let kind = if p.builtin { "built-in" } else { "external" };
        header.push(format!("- {} {} ({kind})", p.name, p.version));
    }
    header.push(String::new());
    if plan.decisions.is_empty() {
        header.push("Conflicts: none.".to_owned());
    } else {
        header.push("Conflicts:".to_owned());
        header.extend(plan.decisions.iter().map(|d| format!("- {d}")));
    }
    let header = header.iter().map(|line| {
        let line = lit(&if line.is_empty() {
            String::new()
        } else {
            format!(" {line}")
        });
        quote!(#![doc = #line])
    });

    let file = quote! {
        #(#header)*
        #![allow(clippy::all, dead_code, unused_imports)]

        use aiperf_runtime::__private::clap;
        use aiperf_runtime::__private::serde;
        use aiperf_runtime::plugin::{
            normalize_name, DispatchEnum, PackInfo, Plugin, PluginContext, PluginEntry,
            PluginError, PluginKind, PluginSet,
        };

        /// Packs linked into this binary.
        pub static PACKS: [PackInfo; #pack_count] = [#(#packs),*];

        /// Every manifest entry, shadowed ones included, in registration order.
        pub static ENTRIES: [PluginEntry; #entry_count] = [#(#entries),*];

        /// Categories with linked plugins, and their descriptions.
        pub static CATEGORIES: [(&str, &str); #category_count] = [#(#categories),*];

        #(#category_items)*

        /// The plugin set the engine runs with.
        pub struct Plugins;

        impl PluginSet for Plugins {
            #(#plugin_set_types)*

            fn packs() -> &'static [PackInfo] {
                &PACKS
            }

            fn entries() -> &'static [PluginEntry] {
                &ENTRIES
            }

            fn categories() -> &'static [(&'static str, &'static str)] {
                &CATEGORIES
            }
        }

        fn main() -> std::process::ExitCode {
            aiperf_runtime::main::<Plugins>()
        }
    };
    format_file(file)
}

/// The kind enum, the dispatch enum and their trait impls for one category.
fn category_items(p: &Prepared<'_>) -> TokenStream {
    let kind = &p.kind_name;
    let dispatch = &p.dispatch_name;
    let protocol = &p.protocol;
    let category = lit(&p.category.name);
    let doc_kind = lit(&format!(
        " Names of the linked `{}` plugins.",
        p.category.name
    ));
    let doc_dispatch = lit(&format!(
        " The linked `{}` plugins; calls delegate to the selected variant.",
        p.category.name
    ));

    let variant_idents: Vec<&Ident> = p.variants.iter().map(|(_, v, _, _)| v).collect();
    let winners: Vec<&Ident> = p
        .variants
        .iter()
        .filter(|(e, _, _, _)| e.shadowed_by.is_none())
        .map(|(_, v, _, _)| v)
        .collect();
    let kind_docs = p.variants.iter().map(|(e, _, _, _)| {
        let doc = match &e.shadowed_by {
            Some(by) => format!(" `{}` from {} (shadowed by `{by}`).", e.name, e.pack),
            None => format!(" `{}` from {}.", e.name, e.pack),
        };
        lit(&doc)
    });
    let name_arms = p.variants.iter().map(|(e, v, _, _)| {
        let name = lit(&e.name);
        quote!(Self::#v => #name)
    });
    let entry_arms = p.variants.iter().map(|(_, v, _, i)| {
        let i = Literal::usize_unsuffixed(*i);
        quote!(Self::#v => &ENTRIES[#i])
    });
    let normalized_arms = p
        .variants
        .iter()
        .filter(|(e, _, _, _)| e.shadowed_by.is_none())
        .map(|(e, v, _, _)| {
            let n = lit(&e.name.to_ascii_lowercase().replace('-', "_"));
            quote!(#n => Some(Self::#v))
        });
    // Two names may register one class: its path selects the first (a second arm for the
    // same path would be unreachable, and rustc warns).
    let mut classes_seen = std::collections::HashSet::new();
    let class_arms: Vec<_> = p
        .variants
        .iter()
        .filter(|(e, ..)| classes_seen.insert(e.class_path.as_str()))
        .map(|(e, v, _, _)| {
            let c = lit(&e.class_path);
            quote!(#c => Some(Self::#v))
        })
        .collect();
    let dispatch_variants = p.variants.iter().map(|(e, v, ty, _)| {
        let doc = lit(&format!(" `{}`: `{}`.", e.name, e.class_path));
        quote!(#[doc = #doc] #v(#ty))
    });
    let create_arms = p
        .variants
        .iter()
        .map(|(_, v, ty, _)| quote!(#kind::#v => <#ty as Plugin>::create(ctx).map(Self::#v)));

    quote! {
        #[doc = #doc_kind]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum #kind {
            #(#[doc = #kind_docs] #variant_idents,)*
        }

        impl PluginKind for #kind {
            const CATEGORY: &'static str = #category;

            fn all() -> &'static [Self] {
                &[#(Self::#winners),*]
            }

            fn name(self) -> &'static str {
                match self {
                    #(#name_arms,)*
                }
            }

            fn entry(self) -> &'static PluginEntry {
                match self {
                    #(#entry_arms,)*
                }
            }

            fn from_name(name: &str) -> Option<Self> {
                match normalize_name(name).as_str() {
                    #(#normalized_arms,)*
                    _ => match name {
                        #(#class_arms,)*
                        _ => None,
                    },
                }
            }
        }

        impl std::fmt::Display for #kind {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::str::FromStr for #kind {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, String> {
                Self::from_name(s).ok_or_else(|| {
                    let names: Vec<&str> = Self::all().iter().map(|k| k.name()).collect();
                    format!("unknown {} `{}`; linked: {}", #category, s, names.join(", "))
                })
            }
        }

        impl clap::ValueEnum for #kind {
            fn value_variants<'a>() -> &'a [Self] {
                Self::all()
            }

            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                Some(clap::builder::PossibleValue::new(self.name()))
            }
        }

        impl serde::Serialize for #kind {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> serde::Deserialize<'de> for #kind {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        #[doc = #doc_dispatch]
        #[aiperf_macros::dispatch(#protocol)]
        pub enum #dispatch {
            #(#dispatch_variants,)*
        }

        impl DispatchEnum for #dispatch {
            type Kind = #kind;

            fn create(kind: #kind, ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
                match kind {
                    #(#create_arms,)*
                }
            }
        }
    }
}

fn format_file(tokens: TokenStream) -> Result<String, CodegenError> {
    // The tokens come from quote! over validated parts, so they parse unless this module
    // has a bug; report that with the error rather than writing broken code.
    syn::parse2::<syn::File>(tokens)
        .map(|file| separate_items(&prettyplease::unparse(&file)))
        .map_err(|e| CodegenError::Internal(e.to_string()))
}

/// Puts a blank line between top-level items, which prettyplease packs together.
fn separate_items(code: &str) -> String {
    let mut out = String::with_capacity(code.len() + code.len() / 20);
    let mut previous = "";
    for line in code.lines() {
        let starts_item = !line.starts_with([' ', '}', ')', ']']) && !line.is_empty();
        let previous_open = previous.is_empty()
            || previous.starts_with("#[")
            || previous.starts_with("///")
            || previous.starts_with("//!")
            || previous.starts_with("#!");
        let header_done = previous.starts_with("//!") && !line.starts_with("//!");
        let use_group = line.starts_with("use ") && previous.starts_with(['u', '}']);
        if starts_item && !use_group && (!previous_open || header_done) {
            out.push('\n');
        }
        out.push_str(line);
        out.push('\n');
        previous = line;
    }
    out
}
