//! A registry API shaped like AIPerf's `aiperf.plugin.plugins`, over manifests instead of
//! imported Python classes.
//!
//! It loads the runtime's categories and a set of packs exactly as `aiperf-gen build`
//! does, then answers the questions AIPerf's registry answers: which entry owns a name,
//! what its metadata says (raw or typed), which packs are loaded, what `validate_all`
//! finds. Registering an entry re-applies the conflict rules; `reset` returns to what was
//! loaded. Plugin authors use it in their own tests:
//!
//! ```no_run
//! use aiperf_gen::registry::{Registration, Registry};
//!
//! let mut registry = Registry::load(&["core", "./my-pack"]).expect("manifests are valid");
//! // Every class exists and implements its category's protocol.
//! assert!(registry.validate_all(true).is_empty());
//!
//! let chat = registry.get_endpoint_metadata("chat").expect("typed metadata");
//! assert!(chat.supports_streaming);
//!
//! // A higher priority takes the name; the old entry stays reachable by class path.
//! registry
//!     .register("endpoint", "chat", "my_pack::chat:FastChat", Registration::priority(10))
//!     .expect("valid registration");
//! assert_eq!(registry.get_entry("endpoint", "chat").unwrap().pack, "my_pack");
//! registry.reset();
//! ```
//!
//! Differences from AIPerf, by design: nothing is imported (class paths are checked in
//! the sources by [`Registry::validate_all`] with `check_class`), and
//! [`Registry::create_enum`] returns Rust source for a fieldless enum rather than a
//! runtime enum type.

use std::collections::BTreeMap;

use aiperf_runtime::explorer::Catalog;
use aiperf_runtime::metadata::{
    CustomDatasetLoaderMetadata, EndpointMetadata, GpuTelemetryCollectorMetadata, PlotMetadata,
    RecordProcessorMetadata, ServiceMetadata, TokenizerMetadata, TransportMetadata,
};
use proc_macro2::{Ident, Literal, Span};
use quote::quote;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::check_class;
use crate::manifest::{
    self, check_shape, normalize_name, render, resolve, CategorySpec, Decision, LoadOptions,
    OrderedMap, PackInfo, PluginSpec, PluginsManifest, ResolvedEntry,
};
use crate::session::{Inputs, Session};

/// Errors of the registry API. Messages follow AIPerf's where AIPerf has one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The manifests did not load; the text is the rendered diagnostics.
    #[error("the manifests have errors:\n{0}")]
    Invalid(String),
    /// No such category.
    #[error(
        "Unknown plugin category '{category}'. Available categories: {}",
        .available.join(", ")
    )]
    UnknownCategory {
        category: String,
        available: Vec<String>,
    },
    /// No entry owns that name.
    #[error(
        "Type '{}' not found for category '{category}'.\nAvailable types:\n{}",
        normalize_name(.name),
        bullets(.available)
    )]
    TypeNotFound {
        category: String,
        name: String,
        available: Vec<String>,
    },
    /// `get_class` with a class path nobody registered.
    #[error("Class path not registered: {0}")]
    ClassPathNotRegistered(String),
    /// `get_class` with a class path registered in another category.
    #[error("Category mismatch: '{class_path}' is registered in '{actual}', not '{expected}'")]
    CategoryMismatch {
        class_path: String,
        expected: String,
        actual: String,
    },
    /// No such pack.
    #[error("Package not found: '{name}'. Available packages: {}", .available.join(", "))]
    PackageNotFound {
        name: String,
        available: Vec<String>,
    },
    /// The entry's metadata does not fit the requested type.
    #[error("invalid metadata for {category}:{name}: {message}")]
    Metadata {
        category: String,
        name: String,
        message: String,
    },
    /// `create_enum` on a category without entries.
    #[error("No types registered for category '{0}'")]
    NoTypes(String),
    /// `register` with a name or class path a manifest could not contain.
    #[error("invalid registration {category}:{name}: {message}")]
    InvalidRegistration {
        category: String,
        name: String,
        message: String,
    },
}

fn bullets(names: &[String]) -> String {
    let mut sorted = names.to_vec();
    sorted.sort();
    sorted
        .iter()
        .map(|n| format!("  • {n}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Options of [`Registry::register`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Registration {
    /// Conflict priority (higher wins).
    pub priority: i64,
    /// Description shown by the explorer.
    pub description: String,
    /// Entry metadata.
    pub metadata: Option<Map<String, Value>>,
    /// Pack the entry belongs to; by default the class path's crate, as AIPerf uses the
    /// class's module. Names starting with `aiperf` are built-in.
    pub pack: Option<String>,
}

impl Registration {
    /// A registration with only a priority.
    pub fn priority(priority: i64) -> Self {
        Self {
            priority,
            ..Self::default()
        }
    }
}

/// Loaded manifests with AIPerf's registry operations on top.
#[derive(Debug, Clone)]
pub struct Registry {
    session: Session,
    initial: Session,
}

impl Registry {
    /// Loads the runtime's categories and `packs` (names or paths, in registration order).
    ///
    /// # Errors
    /// [`RegistryError::Invalid`] with every diagnostic when a manifest has errors.
    pub fn load(packs: &[&str]) -> Result<Self, RegistryError> {
        Self::from_inputs(&Inputs {
            packs: packs.iter().map(|p| (*p).to_owned()).collect(),
            options: LoadOptions::any_language(),
            ..Inputs::default()
        })
    }

    /// Loads what `inputs` name.
    ///
    /// # Errors
    /// [`RegistryError::Invalid`] when a manifest has errors.
    pub fn from_inputs(inputs: &Inputs) -> Result<Self, RegistryError> {
        let session = Session::load(inputs);
        if session.has_errors() {
            return Err(RegistryError::Invalid(render(&session.diagnostics)));
        }
        Ok(Self {
            initial: session.clone(),
            session,
        })
    }

    /// The loaded session (categories, packs, resolution, warnings).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Conflicts settled so far.
    pub fn decisions(&self) -> &[Decision] {
        self.session
            .resolution
            .as_ref()
            .map_or(&[], |r| r.decisions.as_slice())
    }

    /// Back to the state right after loading: registrations are dropped.
    pub fn reset(&mut self) {
        self.session = self.initial.clone();
    }

    fn category(&self, category: &str) -> Result<&manifest::ResolvedCategory, RegistryError> {
        self.session
            .resolution
            .as_ref()
            .and_then(|r| r.category(category))
            .ok_or_else(|| RegistryError::UnknownCategory {
                category: category.to_owned(),
                available: self.list_categories(true),
            })
    }

    /// Registers an entry and settles conflicts as a manifest entry would be. Returns the
    /// entry now owning the name.
    ///
    /// # Errors
    /// [`RegistryError::InvalidRegistration`] when the name is empty or the class path is
    /// malformed.
    pub fn register(
        &mut self,
        category: &str,
        name: &str,
        class_path: &str,
        options: Registration,
    ) -> Result<&ResolvedEntry, RegistryError> {
        let invalid = |message: String| RegistryError::InvalidRegistration {
            category: category.to_owned(),
            name: name.to_owned(),
            message,
        };
        if name.trim().is_empty() {
            return Err(invalid("empty plugin name".to_owned()));
        }
        check_shape(class_path).map_err(|e| invalid(e.message))?;
        let pack_name = options.pack.clone().unwrap_or_else(|| {
            class_path
                .split([':', '.'])
                .next()
                .unwrap_or(class_path)
                .to_owned()
        });
        let pack = self
            .session
            .found_packs
            .iter()
            .find(|p| p.name == pack_name)
            .cloned()
            .unwrap_or_else(|| PackInfo {
                is_builtin: manifest::is_builtin_pack(&pack_name),
                name: pack_name.clone(),
                version: "unknown".to_owned(),
                description: String::new(),
                authors: Vec::new(),
                root_dir: std::path::PathBuf::new(),
                manifest_path: std::path::PathBuf::from(format!("<registered by {pack_name}>")),
            });
        let spec = PluginSpec {
            class: class_path.to_owned(),
            description: options.description,
            priority: options.priority,
            metadata: options.metadata,
            source: None,
            class_source: None,
        };
        let mut entries = OrderedMap::new();
        entries.insert(name, spec);
        let mut categories = OrderedMap::new();
        categories.insert(category, entries);
        self.session.packs.push((
            pack,
            PluginsManifest {
                schema_version: manifest::SCHEMA_VERSION.to_owned(),
                categories,
            },
        ));
        self.re_resolve();
        self.get_entry(category, name)
    }

    /// Removes every registration of `name` in `category` (manifest entries included) and
    /// returns the entry that owned it.
    pub fn unregister(&mut self, category: &str, name: &str) -> Option<ResolvedEntry> {
        let removed = self.get_entry(category, name).ok().cloned()?;
        let (wanted_category, wanted_name) = (normalize_name(category), normalize_name(name));
        for (_, manifest) in &mut self.session.packs {
            let kept: OrderedMap<OrderedMap<PluginSpec>> = std::mem::take(&mut manifest.categories)
                .into_iter()
                .map(|(cat, entries)| {
                    if normalize_name(&cat) != wanted_category {
                        return (cat, entries);
                    }
                    let entries = entries
                        .into_iter()
                        .filter(|(n, _)| normalize_name(n) != wanted_name)
                        .collect();
                    (cat, entries)
                })
                .collect();
            manifest.categories = kept;
        }
        self.re_resolve();
        Some(removed)
    }

    fn re_resolve(&mut self) {
        if let Some(categories) = &self.session.categories {
            self.session.resolution = Some(resolve(categories, &self.session.packs));
        }
    }

    /// Entries owning their names in `category`, in registration order (AIPerf's
    /// `iter_entries`). Empty for an unknown category.
    pub fn iter(&self, category: &str) -> impl Iterator<Item = &ResolvedEntry> {
        self.category(category)
            .ok()
            .into_iter()
            .flat_map(|c| c.winners())
    }

    /// Every entry of `category`, shadowed ones included.
    pub fn iter_all(&self, category: &str) -> impl Iterator<Item = &ResolvedEntry> {
        self.category(category)
            .ok()
            .into_iter()
            .flat_map(|c| c.entries.iter())
    }

    /// The entry owning `name` (normalised) in `category`.
    ///
    /// # Errors
    /// [`RegistryError::UnknownCategory`] or [`RegistryError::TypeNotFound`].
    pub fn get_entry(&self, category: &str, name: &str) -> Result<&ResolvedEntry, RegistryError> {
        let cat = self.category(category)?;
        cat.get(name).ok_or_else(|| RegistryError::TypeNotFound {
            category: cat.name.clone(),
            name: name.to_owned(),
            available: cat.winners().map(|e| e.name.clone()).collect(),
        })
    }

    /// Whether `category` has an entry owning `name`.
    pub fn has_entry(&self, category: &str, name: &str) -> bool {
        self.get_entry(category, name).is_ok()
    }

    /// AIPerf's `get_class`: by name, or by full class path (shadowed entries too; the
    /// class path must belong to `category`).
    ///
    /// # Errors
    /// As [`Registry::get_entry`], plus [`RegistryError::ClassPathNotRegistered`] and
    /// [`RegistryError::CategoryMismatch`] for class paths.
    pub fn get_class(
        &self,
        category: &str,
        name_or_class: &str,
    ) -> Result<&ResolvedEntry, RegistryError> {
        if !name_or_class.contains(':') {
            return self.get_entry(category, name_or_class);
        }
        let resolution = self.session.resolution.as_ref();
        let owner = resolution
            .into_iter()
            .flat_map(|r| r.categories.iter())
            .find_map(|c| c.by_class_path(name_or_class).map(|e| (c, e)));
        let Some((owner_category, _)) = owner else {
            return Err(RegistryError::ClassPathNotRegistered(
                name_or_class.to_owned(),
            ));
        };
        let wanted = self.category(category)?;
        if normalize_name(&owner_category.name) != normalize_name(&wanted.name) {
            return Err(RegistryError::CategoryMismatch {
                class_path: name_or_class.to_owned(),
                expected: wanted.name.clone(),
                actual: owner_category.name.clone(),
            });
        }
        wanted
            .by_class_path(name_or_class)
            .ok_or_else(|| RegistryError::ClassPathNotRegistered(name_or_class.to_owned()))
    }

    /// Categories with at least one entry, sorted (AIPerf's `list_categories`).
    pub fn list_categories(&self, include_internal: bool) -> Vec<String> {
        let mut names: Vec<String> = self
            .session
            .resolution
            .iter()
            .flat_map(|r| r.categories.iter())
            .filter(|c| !c.entries.is_empty())
            .filter(|c| include_internal || !c.spec.as_ref().is_some_and(|s| s.internal))
            .map(|c| normalize_name(&c.name))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Entries owning their names in `category`; empty when unknown.
    pub fn list_entries(&self, category: &str) -> Vec<&ResolvedEntry> {
        self.iter(category).collect()
    }

    /// Loaded packs in registration order, without repeats.
    pub fn list_packages(&self, builtin_only: bool) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for (pack, _) in &self.session.packs {
            if (!builtin_only || pack.is_builtin) && !names.contains(&pack.name.as_str()) {
                names.push(&pack.name);
            }
        }
        names
    }

    /// A pack's name, version, description and authors (from its `Cargo.toml`).
    ///
    /// # Errors
    /// [`RegistryError::PackageNotFound`] with the loaded pack names.
    pub fn get_package_metadata(&self, name: &str) -> Result<&PackInfo, RegistryError> {
        self.session
            .packs
            .iter()
            .map(|(p, _)| p)
            .find(|p| p.name == name)
            .ok_or_else(|| RegistryError::PackageNotFound {
                name: name.to_owned(),
                available: self
                    .list_packages(false)
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect(),
            })
    }

    /// The category's definition from `categories.yaml`.
    pub fn get_category_metadata(&self, category: &str) -> Option<&CategorySpec> {
        self.session
            .categories
            .as_ref()?
            .get(category)
            .map(|(_, spec)| spec)
    }

    /// The raw metadata of the entry owning `name` (an object; empty when none).
    ///
    /// # Errors
    /// As [`Registry::get_entry`].
    pub fn get_metadata(&self, category: &str, name: &str) -> Result<&Value, RegistryError> {
        self.get_entry(category, name).map(|e| &e.metadata)
    }

    /// The metadata of the entry owning `name`, as `T`.
    ///
    /// # Errors
    /// As [`Registry::get_entry`], plus [`RegistryError::Metadata`] when it does not fit.
    pub fn get_typed_metadata<T: DeserializeOwned>(
        &self,
        category: &str,
        name: &str,
    ) -> Result<T, RegistryError> {
        let entry = self.get_entry(category, name)?;
        T::deserialize(&entry.metadata).map_err(|e| RegistryError::Metadata {
            category: category.to_owned(),
            name: entry.name.clone(),
            message: e.to_string(),
        })
    }

    /// `endpoint` metadata.
    ///
    /// # Errors
    /// See [`Registry::get_typed_metadata`].
    pub fn get_endpoint_metadata(&self, name: &str) -> Result<EndpointMetadata, RegistryError> {
        self.get_typed_metadata("endpoint", name)
    }

    /// `transport` metadata.
    ///
    /// # Errors
    /// See [`Registry::get_typed_metadata`].
    pub fn get_transport_metadata(&self, name: &str) -> Result<TransportMetadata, RegistryError> {
        self.get_typed_metadata("transport", name)
    }

    /// `plot` metadata.
    ///
    /// # Errors
    /// See [`Registry::get_typed_metadata`].
    pub fn get_plot_metadata(&self, name: &str) -> Result<PlotMetadata, RegistryError> {
        self.get_typed_metadata("plot", name)
    }

    /// `service` metadata.
    ///
    /// # Errors
    /// See [`Registry::get_typed_metadata`].
    pub fn get_service_metadata(&self, name: &str) -> Result<ServiceMetadata, RegistryError> {
        self.get_typed_metadata("service", name)
    }

    /// `custom_dataset_loader` metadata.
    ///
    /// # Errors
    /// See [`Registry::get_typed_metadata`].
    pub fn get_custom_dataset_loader_metadata(
        &self,
        name: &str,
    ) -> Result<CustomDatasetLoaderMetadata, RegistryError> {
        self.get_typed_metadata("custom_dataset_loader", name)
    }

    /// `gpu_telemetry_collector` metadata.
    ///
    /// # Errors
    /// See [`Registry::get_typed_metadata`].
    pub fn get_gpu_telemetry_collector_metadata(
        &self,
        name: &str,
    ) -> Result<GpuTelemetryCollectorMetadata, RegistryError> {
        self.get_typed_metadata("gpu_telemetry_collector", name)
    }

    /// `record_processor` metadata.
    ///
    /// # Errors
    /// See [`Registry::get_typed_metadata`].
    pub fn get_record_processor_metadata(
        &self,
        name: &str,
    ) -> Result<RecordProcessorMetadata, RegistryError> {
        self.get_typed_metadata("record_processor", name)
    }

    /// `tokenizer` metadata.
    ///
    /// # Errors
    /// See [`Registry::get_typed_metadata`].
    pub fn get_tokenizer_metadata(&self, name: &str) -> Result<TokenizerMetadata, RegistryError> {
        self.get_typed_metadata("tokenizer", name)
    }

    /// The name an entry with `class_path` is registered under in `category` (its own
    /// spelling), or `None`. With several names for one class, the last registration
    /// owns the path, as in AIPerf.
    pub fn find_registered_name(&self, category: &str, class_path: &str) -> Option<&str> {
        self.category(category)
            .ok()?
            .by_class_path(class_path)
            .map(|e| e.name.as_str())
    }

    /// AIPerf's `validate_all`: `{category: [(name, message)]}`, empty when every class
    /// path is a Rust path and, with `check_class`, resolves in the sources to a type
    /// implementing its category's protocol. Categories' own `protocol` problems are
    /// listed under the name `<protocol>`.
    pub fn validate_all(&self, check_class: bool) -> BTreeMap<String, Vec<(String, String)>> {
        let mut problems = check_class::rust_paths(&self.session);
        if check_class {
            problems.extend(check_class::check_sources(&self.session));
        }
        let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for p in problems.iter().filter(|p| p.diagnostic.is_error()) {
            let (category, name) = p.subject.category_and_name();
            out.entry(category.to_owned())
                .or_default()
                .push((name.to_owned(), p.diagnostic.message.clone()));
        }
        out
    }

    /// What the explorer shows for the current state.
    pub fn catalog(&self) -> Catalog {
        crate::explorer::catalog(&self.session)
    }

    /// AIPerf's `create_enum`: an enum named `enum_name` over the names `category`'s
    /// entries own, in registration order.
    ///
    /// # Errors
    /// [`RegistryError::NoTypes`] when the category has no entries (or is unknown), and
    /// [`RegistryError::InvalidRegistration`] when `enum_name` is not a Rust identifier.
    pub fn create_enum(
        &self,
        category: &str,
        enum_name: &str,
    ) -> Result<PluginEnum, RegistryError> {
        let names: Vec<String> = self.iter(category).map(|e| e.name.clone()).collect();
        if names.is_empty() {
            return Err(RegistryError::NoTypes(category.to_owned()));
        }
        if !manifest::class_path::is_rust_ident(enum_name) {
            return Err(RegistryError::InvalidRegistration {
                category: category.to_owned(),
                name: enum_name.to_owned(),
                message: "enum name is not a Rust identifier".to_owned(),
            });
        }
        let mut variants: Vec<(String, String)> = Vec::new();
        for name in names {
            let mut base = crate::codegen::camel_case(&name);
            if base.is_empty() {
                base = "V".to_owned();
            }
            let mut ident = base.clone();
            let mut n = 2;
            while variants.iter().any(|(v, _)| *v == ident) {
                ident = format!("{base}{n}");
                n += 1;
            }
            variants.push((ident, name));
        }
        Ok(PluginEnum {
            name: enum_name.to_owned(),
            category: category.to_owned(),
            variants,
        })
    }
}

/// An enum over a category's names, as [`Registry::create_enum`] makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginEnum {
    /// The enum's name.
    pub name: String,
    /// The category it names plugins of.
    pub category: String,
    /// `(variant, plugin name)` in registration order.
    pub variants: Vec<(String, String)>,
}

impl PluginEnum {
    /// The variant for a plugin name, compared as AIPerf compares (lower case, `-` = `_`).
    pub fn variant(&self, name: &str) -> Option<&str> {
        let wanted = normalize_name(name);
        self.variants
            .iter()
            .find(|(_, n)| normalize_name(n) == wanted)
            .map(|(v, _)| v.as_str())
    }

    /// Rust source of the enum: `ALL`, `as_str`, `Display` and a normalising `FromStr`.
    /// Names reach the code as string literals and variants as identifiers checked by
    /// `syn`, so any plugin name is safe here.
    pub fn to_rust(&self) -> String {
        let ident = |s: &str| Ident::new(s, Span::call_site());
        let name = ident(&self.name);
        let variants: Vec<Ident> = self.variants.iter().map(|(v, _)| ident(v)).collect();
        let values: Vec<Literal> = self
            .variants
            .iter()
            .map(|(_, n)| Literal::string(n))
            .collect();
        let normalised: Vec<Literal> = self
            .variants
            .iter()
            .map(|(_, n)| Literal::string(&normalize_name(n)))
            .collect();
        let doc = Literal::string(&format!(" Plugins of category `{}`.", self.category));
        let error = Literal::string(&format!("unknown {} `{{}}`", self.category));
        let tokens = quote! {
            #[doc = #doc]
            #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
            pub enum #name {
                #(#[doc = #values] #variants,)*
            }

            impl #name {
                /// Every variant, in registration order.
                pub const ALL: &'static [Self] = &[#(Self::#variants),*];

                /// The plugin name as registered.
                pub fn as_str(self) -> &'static str {
                    match self {
                        #(Self::#variants => #values,)*
                    }
                }
            }

            impl std::fmt::Display for #name {
                fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str(self.as_str())
                }
            }

            impl std::str::FromStr for #name {
                type Err = String;

                fn from_str(s: &str) -> Result<Self, Self::Err> {
                    match s.trim().to_lowercase().replace('-', "_").as_str() {
                        #(#normalised => Ok(Self::#variants),)*
                        _ => Err(format!(#error, s)),
                    }
                }
            }
        };
        syn::parse2::<syn::File>(tokens)
            .map(|f| prettyplease::unparse(&f))
            .unwrap_or_default()
    }
}
