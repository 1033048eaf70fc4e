//! The manifest model: `categories.yaml` and `plugins.yaml` as Rust types.
//!
//! These types are the source of truth for the JSON Schemas ([`super::schema`]), so the
//! schemas, the editor support they give and the generator's reading of the files cannot
//! drift apart. Maps keep file order ([`OrderedMap`]): entry order decides listing order,
//! loader auto-detection order and exporter execution order, as in AIPerf.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// The only manifest format version there is.
pub const SCHEMA_VERSION: &str = "1.0";

fn default_schema_version() -> String {
    SCHEMA_VERSION.to_owned()
}

/// A string-keyed map that keeps insertion (file) order and refuses duplicate keys.
///
/// A `Vec` of pairs: manifests have tens of keys per map, where a linear scan is as fast
/// as hashing and needs no extra dependency.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderedMap<V> {
    entries: Vec<(String, V)>,
}

impl<V> Default for OrderedMap<V> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
        }
    }
}

impl<V> OrderedMap<V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Mutable access to the value under `key`.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        self.entries
            .iter_mut()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Appends `key`, or replaces its value in place (keeping its position). Returns the
    /// old value.
    pub fn insert(&mut self, key: impl Into<String>, value: V) -> Option<V> {
        let key = key.into();
        match self.get_mut(&key) {
            Some(slot) => Some(std::mem::replace(slot, value)),
            None => {
                self.entries.push((key, value));
                None
            }
        }
    }

    /// Entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<V> FromIterator<(String, V)> for OrderedMap<V> {
    /// Later duplicates replace earlier values in place.
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> Self {
        let mut map = Self::new();
        for (k, v) in iter {
            map.insert(k, v);
        }
        map
    }
}

impl<V> IntoIterator for OrderedMap<V> {
    type Item = (String, V);
    type IntoIter = std::vec::IntoIter<(String, V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a, V> IntoIterator for &'a OrderedMap<V> {
    type Item = (&'a str, &'a V);
    type IntoIter =
        std::iter::Map<std::slice::Iter<'a, (String, V)>, fn(&'a (String, V)) -> (&'a str, &'a V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }
}

impl<V: Serialize> Serialize for OrderedMap<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.entries.len()))?;
        for (k, v) in &self.entries {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
            type Value = OrderedMap<V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut map = OrderedMap::new();
                while let Some((key, value)) = access.next_entry::<String, V>()? {
                    if map.contains_key(&key) {
                        return Err(de::Error::custom(format_args!("duplicate key `{key}`")));
                    }
                    map.entries.push((key, value));
                }
                Ok(map)
            }
        }

        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}

impl<V: JsonSchema> JsonSchema for OrderedMap<V> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        format!("Map_of_{}", V::schema_name()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "additionalProperties": generator.subschema_for::<V>(),
        })
    }
}

/// 1-based source position of a manifest item, for diagnostics raised after loading
/// (conflicts). Not part of the file format.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourcePos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// The source line.
    pub snippet: Option<String>,
}

/// `categories.yaml`: the plugin categories the runtime defines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    title = "categories.yaml",
    description = "The plugin categories of aiperf-gen: per category, the Rust protocol \
                   trait its plugins implement, the typed metadata its entries carry and the \
                   enum the generator emits."
)]
pub struct CategoriesManifest {
    /// Manifest format version.
    #[serde(default = "default_schema_version")]
    pub schema_version: String,
    /// Categories by snake_case name, in file order.
    #[serde(flatten)]
    pub categories: OrderedMap<CategorySpec>,
    /// The file it was loaded from, for diagnostics raised after loading.
    #[serde(skip)]
    #[schemars(skip)]
    pub path: Option<std::path::PathBuf>,
    /// Categories the file defines that a partial load left out for their errors
    /// ([`LoadOptions::keep_valid`](super::LoadOptions::keep_valid)); empty otherwise.
    #[serde(skip)]
    #[schemars(skip)]
    pub left_out: Vec<String>,
}

impl CategoriesManifest {
    /// The category named `name` (exact, or after AIPerf's normalisation: lower case, `-` →
    /// `_`).
    pub fn get(&self, name: &str) -> Option<(&str, &CategorySpec)> {
        let wanted = normalize_name(name);
        self.categories
            .iter()
            .find(|(k, _)| normalize_name(k) == wanted)
    }

    /// Whether the file defines `name` (compared as in [`Self::get`]) but it was left out
    /// for its errors.
    pub fn is_left_out(&self, name: &str) -> bool {
        let wanted = normalize_name(name);
        self.left_out.iter().any(|k| normalize_name(k) == wanted)
    }
}

/// One category of `categories.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CategorySpec {
    /// The protocol trait plugins of this category implement: `rust_crate::module:Trait`.
    pub protocol: String,
    /// The typed metadata of this category's entries (`rust_crate::module:Type`), or null
    /// when entries carry free-form metadata.
    #[serde(default)]
    pub metadata_class: Option<String>,
    /// Name of the enum generated over this category's plugins (e.g. `EndpointType`).
    #[serde(rename = "enum")]
    pub enum_name: String,
    /// What the category is for; shown by the plugin explorer.
    pub description: String,
    /// Infrastructure category (listed, but not something users usually pick).
    #[serde(default)]
    pub internal: bool,
    /// Where the `protocol` value is in its file (set when loaded from a file).
    #[serde(skip)]
    #[schemars(skip)]
    pub protocol_source: Option<SourcePos>,
    /// Where the `metadata_class` value is in its file (set when loaded from a file).
    #[serde(skip)]
    #[schemars(skip)]
    pub metadata_class_source: Option<SourcePos>,
}

/// A pack's `plugins.yaml`: plugin entries by category.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[schemars(
    title = "plugins.yaml",
    description = "Plugin registrations of one aiperf-gen plugin pack, by category."
)]
pub struct PluginsManifest {
    /// Manifest format version.
    #[serde(default = "default_schema_version")]
    pub schema_version: String,
    /// Entries by category, then by plugin name, in file order.
    #[serde(flatten)]
    pub categories: OrderedMap<OrderedMap<PluginSpec>>,
}

/// One plugin entry of `plugins.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginSpec {
    /// The implementing type: `rust_crate::module::path:TypeName`.
    pub class: String,
    /// One-paragraph description shown by the plugin explorer.
    #[serde(default)]
    pub description: String,
    /// Conflict priority: among plugins with the same name, the highest wins.
    #[serde(default)]
    pub priority: i64,
    /// Category-specific metadata; the category's `metadata_class` gives its schema.
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
    /// Where the entry's name is in its file (set when loaded from a file).
    #[serde(skip)]
    #[schemars(skip)]
    pub source: Option<SourcePos>,
    /// Where the `class` value is in its file (set when loaded from a file).
    #[serde(skip)]
    #[schemars(skip)]
    pub class_source: Option<SourcePos>,
}

/// AIPerf's name normalisation: lower case, `-` → `_`. Names compare equal after it.
pub fn normalize_name(name: &str) -> String {
    name.to_lowercase().replace('-', "_")
}
