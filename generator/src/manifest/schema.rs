//! JSON Schemas (draft 2020-12) for `categories.yaml` and `plugins.yaml`, generated from the
//! Rust model types and the runtime's metadata types.
//!
//! The plugins schema depends on `categories.yaml`: each category gets its own entry
//! definition whose `metadata` is the schema of the category's `metadata_class`. Editors use
//! these schemas (`# yaml-language-server: $schema=...`), and `validate` checks manifests
//! against them, so both see the same rules.

use aiperf_runtime::metadata::{
    CustomDatasetLoaderMetadata, EndpointMetadata, GpuTelemetryCollectorMetadata, PlotMetadata,
    RecordProcessorMetadata, ServiceMetadata, TokenizerMetadata, TransportMetadata,
};
use std::collections::HashMap;
use std::sync::OnceLock;

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

use super::class_path::ClassPath;
use super::compat;
use super::model::{CategoriesManifest, PluginSpec, SCHEMA_VERSION};

/// One of the runtime's typed metadata structs (or, for AIPerf's manifests, one of
/// AIPerf's models the runtime has no category for), known by its class path.
#[derive(Clone, Copy)]
pub struct MetadataType {
    class_path: &'static str,
    aiperf_class_path: Option<&'static str>,
    name: &'static str,
    schema: fn() -> Value,
    check: fn(&Value) -> Result<(), String>,
}

impl std::fmt::Debug for MetadataType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataType")
            .field("class_path", &self.class_path)
            .finish()
    }
}

impl MetadataType {
    /// The class path `categories.yaml` names it by
    /// (`aiperf_runtime::metadata:EndpointMetadata`).
    pub fn class_path(&self) -> &'static str {
        self.class_path
    }

    /// The class path AIPerf's `categories.yaml` names the same model by, if any
    /// (`aiperf.plugin.schema.schemas:EndpointMetadata`).
    pub fn aiperf_class_path(&self) -> Option<&'static str> {
        self.aiperf_class_path
    }

    /// The type's name (`EndpointMetadata`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Its JSON Schema, subschemas inlined, without `$schema`.
    pub fn schema(&self) -> Value {
        self.cached().0.clone()
    }

    /// The keys every entry's metadata must have, sorted.
    pub fn required_fields(&self) -> Vec<String> {
        self.cached().1.clone()
    }

    /// The keys its metadata may have, sorted.
    pub fn fields(&self) -> Vec<String> {
        let mut fields: Vec<String> = self
            .cached()
            .0
            .get("properties")
            .and_then(Value::as_object)
            .map(|props| props.keys().cloned().collect())
            .unwrap_or_default();
        fields.sort();
        fields
    }

    /// Generating a schema walks the type with schemars; every manifest needs each one
    /// once, so they are generated on first use and kept.
    fn cached(&self) -> &'static (Value, Vec<String>) {
        static CACHE: OnceLock<HashMap<&'static str, (Value, Vec<String>)>> = OnceLock::new();
        static EMPTY: OnceLock<(Value, Vec<String>)> = OnceLock::new();
        let cache = CACHE.get_or_init(|| {
            METADATA_TYPES
                .iter()
                .chain(AIPERF_ONLY_METADATA_TYPES)
                .map(|t| {
                    let schema = (t.schema)();
                    let mut required: Vec<String> = schema
                        .get("required")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default();
                    required.sort();
                    (t.class_path, (schema, required))
                })
                .collect()
        });
        cache
            .get(self.class_path)
            .unwrap_or_else(|| EMPTY.get_or_init(|| (Value::Null, Vec::new())))
    }

    /// Deserializes `metadata` into the runtime type, as the generated code will.
    ///
    /// # Errors
    /// serde's message when the value does not fit the type.
    pub fn check(&self, metadata: &Value) -> Result<(), String> {
        (self.check)(metadata)
    }
}

fn schema_of<T: JsonSchema>() -> Value {
    let settings = SchemaSettings::draft2020_12().with(|s| {
        s.inline_subschemas = true;
        s.meta_schema = None;
    });
    settings
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value()
}

fn check_of<T: DeserializeOwned>(value: &Value) -> Result<(), String> {
    T::deserialize(value).map(drop).map_err(|e| e.to_string())
}

macro_rules! metadata_type {
    ($ty:ident, $aiperf:expr) => {
        MetadataType {
            class_path: concat!("aiperf_runtime::metadata:", stringify!($ty)),
            aiperf_class_path: $aiperf,
            name: stringify!($ty),
            schema: schema_of::<$ty>,
            check: check_of::<$ty>,
        }
    };
}

/// AIPerf's models live in one module.
macro_rules! aiperf {
    ($name:expr) => {
        Some(concat!("aiperf.plugin.schema.schemas:", $name))
    };
}

/// The runtime's metadata types that categories may name as `metadata_class`.
pub const METADATA_TYPES: &[MetadataType] = &[
    metadata_type!(EndpointMetadata, aiperf!("EndpointMetadata")),
    metadata_type!(TransportMetadata, aiperf!("TransportMetadata")),
    metadata_type!(PlotMetadata, aiperf!("PlotMetadata")),
    metadata_type!(ServiceMetadata, aiperf!("ServiceMetadata")),
    metadata_type!(
        CustomDatasetLoaderMetadata,
        aiperf!("CustomDatasetLoaderMetadata")
    ),
    metadata_type!(
        GpuTelemetryCollectorMetadata,
        aiperf!("GPUTelemetryCollectorMetadata")
    ),
    metadata_type!(RecordProcessorMetadata, aiperf!("RecordProducerMetadata")),
    metadata_type!(TokenizerMetadata, None),
];

macro_rules! aiperf_only {
    ($ty:ident) => {
        MetadataType {
            class_path: concat!("aiperf.plugin.schema.schemas:", stringify!($ty)),
            aiperf_class_path: Some(concat!("aiperf.plugin.schema.schemas:", stringify!($ty))),
            name: stringify!($ty),
            schema: schema_of::<compat::$ty>,
            check: check_of::<compat::$ty>,
        }
    };
}

/// AIPerf's models for categories the runtime does not define; recognised only under
/// AIPerf's class paths, so that AIPerf's manifests validate as AIPerf validates them.
pub const AIPERF_ONLY_METADATA_TYPES: &[MetadataType] = &[
    aiperf_only!(PublicDatasetLoaderMetadata),
    aiperf_only!(RecordRoutingMetadata),
    aiperf_only!(AnalyzerMetadata),
    aiperf_only!(ConvergenceCriterionMetadata),
    aiperf_only!(SearchPlannerMetadata),
];

/// The metadata type behind a `metadata_class`: a runtime type by its Rust path, or a
/// model by AIPerf's path.
pub fn metadata_type(class_path: &str) -> Option<&'static MetadataType> {
    let rust = ClassPath::parse(class_path).ok().map(|p| p.to_string());
    METADATA_TYPES
        .iter()
        .chain(AIPERF_ONLY_METADATA_TYPES)
        .find(|t| rust.as_deref() == Some(t.class_path) || t.aiperf_class_path == Some(class_path))
}

/// The schema of `categories.yaml`.
pub fn categories_schema() -> Value {
    SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<CategoriesManifest>()
        .to_value()
}

/// `$defs` name of a category's entry schema: `endpoint` → `EndpointPlugin`, as in AIPerf.
pub fn entry_def_name(category: &str) -> String {
    let mut name = String::new();
    for part in category.split(['_', '-']).filter(|p| !p.is_empty()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            name.extend(first.to_uppercase());
            name.push_str(chars.as_str());
        }
    }
    name.push_str("Plugin");
    name
}

/// The schema of a pack's `plugins.yaml`, given the categories it may use.
///
/// Known categories map names to their own entry definition; a category whose
/// `metadata_class` is a runtime metadata type with required fields requires `metadata`.
/// Unknown categories are allowed (AIPerf accepts them) with the generic `Plugin` entry; the
/// loader warns about them.
pub fn plugins_schema(categories: &CategoriesManifest) -> Value {
    let base = entry_base_schema();
    let mut defs = Map::new();
    let mut properties = Map::new();
    properties.insert(
        "schema_version".into(),
        json!({
            "description": "Manifest format version.",
            "type": "string",
            "default": SCHEMA_VERSION,
        }),
    );

    for (category, spec) in categories.categories.iter() {
        let mut def_name = entry_def_name(category);
        // Names that camel-case alike (`a_b`, `a__b`) must not share a definition.
        while defs.contains_key(&def_name) || def_name == "Plugin" {
            def_name.insert(def_name.len() - "Plugin".len(), '_');
        }
        let mut entry = base.clone();
        let metadata_type = spec.metadata_class.as_deref().and_then(metadata_type);
        if let Some(ty) = metadata_type {
            let mut metadata = ty.schema();
            let required = !ty.required_fields().is_empty();
            if let Some(obj) = metadata.as_object_mut() {
                obj.insert(
                    "description".into(),
                    Value::String(format!(
                        "Metadata of `{category}` entries (`{}`).",
                        ty.class_path()
                    )),
                );
                if !required {
                    obj.insert("type".into(), json!(["object", "null"]));
                }
            }
            entry["properties"]["metadata"] = metadata;
            if required {
                if let Some(list) = entry["required"].as_array_mut() {
                    list.push("metadata".into());
                }
            }
        }
        entry["title"] = Value::String(def_name.clone());
        entry["description"] = Value::String(format!("A `{category}` plugin entry."));
        defs.insert(def_name.clone(), entry);
        properties.insert(
            category.to_owned(),
            json!({
                "description": spec.description.trim_end(),
                "type": "object",
                "additionalProperties": { "$ref": format!("#/$defs/{def_name}") },
            }),
        );
    }
    defs.insert("Plugin".into(), base);

    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "plugins.yaml",
        "description": "Plugin registrations of one aiperf-gen plugin pack, by category.",
        "type": "object",
        "properties": properties,
        "additionalProperties": {
            "description": "A category not defined in categories.yaml.",
            "type": "object",
            "additionalProperties": { "$ref": "#/$defs/Plugin" },
        },
        "$defs": defs,
    })
}

/// The generic entry schema, from [`PluginSpec`]: `class` required, no unknown keys,
/// metadata any object or null.
fn entry_base_schema() -> Value {
    let mut schema = schema_of::<PluginSpec>();
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("title");
        obj.insert("additionalProperties".into(), Value::Bool(false));
    }
    // schemars derives `metadata` from `Option<Map>`; spell out "object or null" so editors
    // show it plainly.
    schema["properties"]["metadata"] = json!({
        "description":
            "Category-specific metadata; the category's `metadata_class` gives its schema.",
        "type": ["object", "null"],
    });
    schema
}

/// The two schema files `aiperf-gen schema` writes, as `(file name, contents)`: the
/// categories schema from the model, the plugins schema for `categories`. Pretty-printed
/// with a final newline, keys sorted, so regenerating is byte-stable.
pub fn schema_files(categories: &CategoriesManifest) -> Vec<(&'static str, String)> {
    let pretty = |value: &Value| {
        let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
        text.push('\n');
        text
    };
    vec![
        ("categories.schema.json", pretty(&categories_schema())),
        ("plugins.schema.json", pretty(&plugins_schema(categories))),
    ]
}
