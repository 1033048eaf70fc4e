//! Manifest layer: loading, validation, diagnostics, pack discovery, conflict resolution.
//!
//! Several tests compare whole rendered diagnostics: the text is the user interface, and
//! positions (line:col) are the point of the span index.

use std::path::{Path, PathBuf};

use aiperf_gen::manifest::diagnostic::codes;
use aiperf_gen::manifest::yaml::{decode_source, parse_yaml, YamlLimits};
use aiperf_gen::manifest::{
    categories_schema, check_shape, discover_packs, find_pack, load_categories,
    load_categories_str_with, load_plugins, load_plugins_str, pack_search_paths_with_env,
    plugins_schema, read_pack, render, resolve, CategoriesManifest, ClassPath, ClassPathErrorKind,
    ClassPathStyle, Diagnostic, EntryStatus, LoadOptions, OverrideReason, PackInfo, PluginsLoader,
    PluginsManifest, Severity,
};

fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

fn fixture(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(relative)
}

fn categories() -> CategoriesManifest {
    let (manifest, diagnostics) = load_categories(&repo_file("runtime/categories.yaml"));
    assert!(diagnostics.is_empty(), "{}", render(&diagnostics));
    manifest.expect("runtime/categories.yaml loads")
}

fn pack(name: &str) -> PackInfo {
    PackInfo {
        name: name.to_owned(),
        version: "0.1.0".to_owned(),
        description: String::new(),
        authors: Vec::new(),
        root_dir: PathBuf::from(name),
        manifest_path: PathBuf::from(format!("{name}/plugins.yaml")),
        is_builtin: aiperf_gen::manifest::is_builtin_pack(name),
    }
}

/// Loads `text` as `<pack>/plugins.yaml`.
fn plugins(pack_name: &str, text: &str) -> (Option<PluginsManifest>, Vec<Diagnostic>) {
    let path = PathBuf::from(format!("{pack_name}/plugins.yaml"));
    load_plugins_str(text, &path, pack_name, &categories())
}

fn plugins_ok(pack_name: &str, text: &str) -> PluginsManifest {
    let (manifest, diagnostics) = plugins(pack_name, text);
    assert!(diagnostics.is_empty(), "{}", render(&diagnostics));
    manifest.expect("manifest loads")
}

fn only_codes(diagnostics: &[Diagnostic]) -> Vec<&'static str> {
    diagnostics.iter().map(|d| d.code).collect()
}

const CHAT_METADATA: &str = "{endpoint_path: /v1/chat/completions, supports_streaming: true, \
                             produces_tokens: true, tokenizes_input: true, metrics_title: LLM}";

// ---------------------------------------------------------------------------------------
// categories.yaml

#[test]
fn runtime_categories_load_clean_in_file_order() {
    let manifest = categories();
    assert_eq!(manifest.schema_version, "1.0");
    assert_eq!(manifest.categories.len(), 26);
    let names: Vec<&str> = manifest.categories.keys().collect();
    assert_eq!(names.first(), Some(&"timing_strategy"));
    assert_eq!(names.last(), Some(&"tokenizer"));
    let (_, endpoint) = manifest.get("Endpoint").expect("normalised lookup");
    assert_eq!(endpoint.enum_name, "EndpointType");
    assert_eq!(
        endpoint.metadata_class.as_deref(),
        Some("aiperf_runtime::metadata:EndpointMetadata")
    );
    assert!(manifest.get("zmq_proxy").is_some_and(|(_, s)| s.internal));
}

#[test]
fn categories_report_every_problem_with_positions() {
    let text = "\
schema_version: \"1.0\"
endpoint:
  protocol: aiperf.endpoints.protocols:EndpointProtocol
  enum: Endpoint Type
  descripton: typo
Bad-Name:
  protocol: a::b:P
  enum: BadName
  description: x
  metadata_class: acme::meta:Unknown
";
    let (manifest, diagnostics) =
        aiperf_gen::manifest::load_categories_str(text, Path::new("categories.yaml"));
    assert!(manifest.is_none());
    let summary: Vec<(usize, usize, &str)> = diagnostics
        .iter()
        .map(|d| (d.line, d.col, d.code))
        .collect();
    assert_eq!(
        summary,
        vec![
            (3, 13, codes::NOT_RUST_CLASS_PATH),
            (4, 9, codes::INVALID_ENUM_NAME),
            (5, 3, codes::UNKNOWN_KEY),
            (6, 1, codes::INVALID_NAME),
            (10, 19, codes::UNKNOWN_METADATA_CLASS),
        ],
        "{}",
        render(&diagnostics)
    );
    assert_eq!(
        diagnostics[2].help.as_deref(),
        Some("did you mean `description`?")
    );
}

// ---------------------------------------------------------------------------------------
// plugins.yaml: good input

#[test]
fn good_plugins_manifest_keeps_file_order_and_positions() {
    let text = std::fs::read_to_string(fixture("plugins/good.yaml")).expect("fixture");
    let manifest = plugins_ok("aiperf-core", &text);
    let categories: Vec<&str> = manifest.categories.keys().collect();
    assert_eq!(
        categories,
        [
            "endpoint",
            "transport",
            "arrival_pattern",
            "gpu_telemetry_collector",
            "ramp"
        ]
    );
    let arrival: Vec<&str> = manifest
        .categories
        .get("arrival_pattern")
        .unwrap()
        .keys()
        .collect();
    assert_eq!(arrival, ["poisson", "constant"], "file order, not sorted");

    let chat = manifest
        .categories
        .get("endpoint")
        .unwrap()
        .get("chat")
        .unwrap();
    assert_eq!(
        chat.class,
        "aiperf_core::endpoints::openai_chat:ChatEndpoint"
    );
    assert_eq!(chat.priority, 0);
    let metadata = chat.metadata.as_ref().unwrap();
    assert_eq!(metadata["endpoint_path"], "/v1/chat/completions");
    let source = chat.source.as_ref().unwrap();
    assert_eq!((source.line, source.col), (5, 3));
    assert_eq!(source.snippet.as_deref(), Some("  chat:"));

    let nvml = manifest
        .categories
        .get("gpu_telemetry_collector")
        .unwrap()
        .get("nvml")
        .unwrap();
    assert_eq!(
        nvml.metadata, None,
        "null metadata is allowed when nothing is required"
    );
    assert!(manifest
        .categories
        .get("ramp")
        .unwrap()
        .contains_key("ease-in-out"));
}

#[test]
fn empty_plugins_manifest_is_a_warning() {
    let (manifest, diagnostics) = plugins("acme", "# nothing yet\n");
    assert_eq!(manifest, Some(PluginsManifest::default()));
    assert_eq!(only_codes(&diagnostics), [codes::EMPTY_MANIFEST]);
    assert_eq!(diagnostics[0].severity, Severity::Warning);
}

#[test]
fn aiperf_shaped_manifest_fails_only_the_rust_class_check() {
    // AIPerf's own entry: schema-valid in any language, but its Python class path is not a
    // Rust path, which the default (code generation) rule requires.
    let text = format!(
        "endpoint:\n  chat:\n    class: aiperf.endpoints.openai_chat:ChatEndpoint\n    \
         metadata: {CHAT_METADATA}\n"
    );
    let path = PathBuf::from("aiperf/plugins.yaml");
    let cats = categories();
    let loader = PluginsLoader::new(&cats, LoadOptions::any_language());
    let (manifest, diagnostics) = loader.load_str(&text, &path, "aiperf");
    assert!(diagnostics.is_empty(), "{}", render(&diagnostics));
    assert!(manifest.is_some());

    let (_, diagnostics) = plugins("aiperf", &text);
    assert_eq!(
        render(&diagnostics),
        "aiperf/plugins.yaml:3:12: error[E0203]: `aiperf.endpoints.openai_chat:ChatEndpoint` is \
         a Python class path, not a Rust one
 --> aiperf:endpoint.chat.class
  |
3 |     class: aiperf.endpoints.openai_chat:ChatEndpoint
  |            ^
  = help: a Rust class path joins modules with `::`, as in \
         `aiperf::endpoints::openai_chat:ChatEndpoint`, and names a type in a pack's crate"
    );
}

// ---------------------------------------------------------------------------------------
// BC-37: missing metadata, then conflict resolution

fn bc37(file: &str, pack_name: &str) -> (Option<PluginsManifest>, Vec<Diagnostic>) {
    let path = fixture(&format!("bc37/{file}"));
    let mut info = pack(pack_name);
    info.manifest_path = path.clone();
    load_plugins(&path, &info, &categories())
}

#[test]
fn bc37_entry_without_required_metadata_fails_with_pack_path() {
    let (manifest, diagnostics) = bc37("acme.yaml", "acme");
    assert!(manifest.is_none());
    assert_eq!(diagnostics.len(), 1, "{}", render(&diagnostics));
    let d = &diagnostics[0];
    assert_eq!(d.yaml_path, "acme:endpoint.chat.metadata");
    let file = fixture("bc37/acme.yaml").display().to_string();
    assert_eq!(
        d.to_string(),
        format!(
            "{file}:3:3: error[E0103]: `endpoint.chat` has no `metadata`, which category \
             `endpoint` requires
 --> acme:endpoint.chat.metadata
  |
3 |   chat:
  |   ^
  = help: add `metadata:` with at least `endpoint_path`, `metrics_title`, \
             `produces_tokens`, `supports_streaming`, `tokenizes_input` \
             (`aiperf_runtime::metadata:EndpointMetadata`)"
        )
    );
}

#[test]
fn bc37_with_metadata_acme_wins_and_builtin_is_shadowed() {
    let cats = categories();
    let (builtin, d1) = bc37("builtin.yaml", "aiperf-core");
    let (acme, d2) = bc37("acme_fixed.yaml", "acme");
    assert!(
        d1.is_empty() && d2.is_empty(),
        "{}{}",
        render(&d1),
        render(&d2)
    );
    let acme_manifest = acme.unwrap();
    // A category without required metadata accepts an entry without it.
    assert!(acme_manifest
        .categories
        .get("console_exporter")
        .unwrap()
        .contains_key("acme_summary"));

    let packs = [
        (pack("aiperf-core"), builtin.unwrap()),
        (pack("acme"), acme_manifest),
    ];
    let resolution = resolve(&cats, &packs);
    assert!(
        resolution.diagnostics.is_empty(),
        "{}",
        render(&resolution.diagnostics)
    );

    let endpoint = resolution.category("endpoint").unwrap();
    assert_eq!(endpoint.entries.len(), 2);
    let winner = endpoint.get("chat").unwrap();
    assert_eq!(winner.pack, "acme");
    assert_eq!(winner.metadata["metrics_title"], "Acme Metrics");
    let shadowed = &endpoint.entries[0];
    assert_eq!(shadowed.pack, "aiperf-core");
    assert_eq!(
        shadowed.status,
        EntryStatus::Shadowed {
            by_pack: "acme".into(),
            by_class_path: "acme_endpoints::chat:AcmeChat".into(),
            reason: OverrideReason::ExternalBeatsBuiltin,
        }
    );
    // Shadowed entries stay reachable by class path.
    let by_path = endpoint.by_class_path("aiperf_core::endpoints::openai_chat:ChatEndpoint");
    assert_eq!(by_path.map(|e| e.pack.as_str()), Some("aiperf-core"));
    assert_eq!(
        resolution
            .decisions
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "endpoint:chat: acme (acme_endpoints::chat:AcmeChat) shadows aiperf-core \
          (aiperf_core::endpoints::openai_chat:ChatEndpoint): external pack beats built-in at \
          equal priority"
        ]
    );

    let console = resolution.category("console_exporter").unwrap();
    assert_eq!(
        console.get("acme_summary").unwrap().metadata,
        serde_json::json!({})
    );
    // Categories nobody registered into are still listed, in categories.yaml order.
    assert_eq!(resolution.categories.len(), 26);
    assert_eq!(resolution.categories[0].name, "timing_strategy");
}

// ---------------------------------------------------------------------------------------
// Conflict rules (AIPerf §1.6)

fn chat_manifest(pack_name: &str, class: &str, priority: i64) -> PluginsManifest {
    plugins_ok(
        pack_name,
        &format!(
            "endpoint:\n  chat:\n    class: {class}\n    priority: {priority}\n    metadata: \
             {CHAT_METADATA}\n"
        ),
    )
}

#[test]
fn equal_priority_builtins_keep_the_first_with_a_warning() {
    let packs = [
        (
            pack("aiperf-core"),
            chat_manifest("aiperf-core", "aiperf_core::chat:Chat", 0),
        ),
        (
            pack("aiperf-extra"),
            chat_manifest("aiperf-extra", "aiperf_extra::chat:Chat", 0),
        ),
    ];
    let resolution = resolve(&categories(), &packs);
    let endpoint = resolution.category("endpoint").unwrap();
    assert_eq!(endpoint.get("chat").unwrap().pack, "aiperf-core");
    assert_eq!(
        render(&resolution.diagnostics),
        "aiperf-extra/plugins.yaml:2:3: warning[W0401]: plugin conflict for endpoint:chat: \
         aiperf-core vs aiperf-extra (priority 0); keeping aiperf-core
 --> aiperf-extra:endpoint.chat
  |
2 |   chat:
  |   ^
  = help: give one of them a higher `priority`, or rename one; the other stays reachable as \
         `aiperf_extra::chat:Chat`"
    );
}

#[test]
fn equal_priority_externals_keep_the_first_with_a_warning() {
    let packs = [
        (pack("acme"), chat_manifest("acme", "acme::chat:Chat", 3)),
        (
            pack("globex"),
            chat_manifest("globex", "globex::chat:Chat", 3),
        ),
    ];
    let resolution = resolve(&categories(), &packs);
    assert_eq!(
        resolution
            .category("endpoint")
            .unwrap()
            .get("chat")
            .unwrap()
            .pack,
        "acme"
    );
    assert_eq!(
        only_codes(&resolution.diagnostics),
        [codes::PLUGIN_CONFLICT]
    );
    assert!(resolution.diagnostics[0]
        .message
        .ends_with("acme vs globex (priority 3); keeping acme"));
}

#[test]
fn higher_priority_wins_in_both_directions() {
    // A built-in with higher priority beats an external pack...
    let packs = [
        (
            pack("aiperf-core"),
            chat_manifest("aiperf-core", "aiperf_core::chat:Chat", 10),
        ),
        (pack("acme"), chat_manifest("acme", "acme::chat:Chat", 0)),
    ];
    let resolution = resolve(&categories(), &packs);
    let endpoint = resolution.category("endpoint").unwrap();
    assert_eq!(endpoint.get("chat").unwrap().pack, "aiperf-core");
    assert!(matches!(
        endpoint.entries[1].status,
        EntryStatus::Shadowed {
            reason: OverrideReason::HigherPriority,
            ..
        }
    ));
    assert!(resolution.diagnostics.is_empty());

    // ...and a later pack with higher priority takes the name from an earlier one, keeping
    // the name's listing position.
    let packs = [
        (pack("acme"), chat_manifest("acme", "acme::chat:Chat", 1)),
        (
            pack("globex"),
            chat_manifest("globex", "globex::chat:Chat", 2),
        ),
        (
            pack("aiperf-core"),
            chat_manifest("aiperf-core", "aiperf_core::chat:Chat", 2),
        ),
    ];
    let resolution = resolve(&categories(), &packs);
    let endpoint = resolution.category("endpoint").unwrap();
    let owners: Vec<(&str, bool)> = endpoint
        .entries
        .iter()
        .map(|e| (e.pack.as_str(), e.is_winner()))
        .collect();
    assert_eq!(
        owners,
        [("acme", false), ("globex", true), ("aiperf-core", false)]
    );
    assert!(
        resolution.diagnostics.is_empty(),
        "external beats built-in: no warning"
    );
}

#[test]
fn names_conflict_after_normalisation() {
    let a = plugins_ok(
        "acme",
        "arrival_pattern:\n  Fast-Burst:\n    class: acme::a:A\n",
    );
    let b = plugins_ok(
        "globex",
        "arrival_pattern:\n  fast_burst:\n    class: globex::a:A\n    priority: 1\n",
    );
    let resolution = resolve(&categories(), &[(pack("acme"), a), (pack("globex"), b)]);
    let arrival = resolution.category("arrival-pattern").unwrap();
    assert_eq!(arrival.get("FAST-BURST").unwrap().pack, "globex");
    assert_eq!(
        arrival.entries[0].name, "Fast-Burst",
        "original spelling kept"
    );
}

// ---------------------------------------------------------------------------------------
// Misspellings and schema errors

#[test]
fn misspelt_field_suggests_the_real_one() {
    let text =
        format!("endpoint:\n  chat:\n    clss: acme::chat:Chat\n    metadata: {CHAT_METADATA}\n");
    let (manifest, diagnostics) = plugins("acme", &text);
    assert!(manifest.is_none());
    // The "missing `class`" error would only repeat the misspelling.
    assert_eq!(
        render(&diagnostics),
        "acme/plugins.yaml:3:5: error[E0102]: unknown key `clss` in `endpoint.chat`
 --> acme:endpoint.chat.clss
  |
3 |     clss: acme::chat:Chat
  |     ^
  = help: did you mean `class`?"
    );
}

#[test]
fn misspelt_category_is_a_warning_with_a_suggestion() {
    let (manifest, diagnostics) =
        plugins("acme", "endpont:\n  chat:\n    class: acme::chat:Chat\n");
    assert!(
        manifest.is_some(),
        "unknown categories are accepted, as in AIPerf"
    );
    assert_eq!(
        render(&diagnostics),
        "acme/plugins.yaml:1:1: warning[W0101]: unknown category `endpont`; categories.yaml \
         does not define it
 --> acme:endpont
  |
1 | endpont:
  | ^
  = help: did you mean `endpoint`?"
    );
}

#[test]
fn unknown_metadata_keys_are_warnings_with_a_suggestion() {
    // AIPerf keeps metadata as a raw dict and its models ignore extra keys: a warning,
    // which `--deny-warnings` makes fatal.
    let text = "endpoint:\n  chat:\n    class: acme::chat:Chat\n    metadata:\n      \
                endpoint_path: /v1/chat\n      supports_streaming: true\n      \
                supports_streamin: false\n      produces_tokens: true\n      \
                tokenizes_input: true\n      metrics_title: LLM\n      bogus_meta: 1\n";
    let (manifest, diagnostics) = plugins("acme", text);
    assert!(manifest.is_some(), "{}", render(&diagnostics));
    assert!(diagnostics.iter().all(|d| d.severity == Severity::Warning));
    assert_eq!(
        render(&diagnostics),
        "acme/plugins.yaml:7:7: warning[W0105]: unknown key `supports_streamin` in \
         `endpoint.chat.metadata`; `EndpointMetadata` does not define it, so it is ignored
 --> acme:endpoint.chat.metadata.supports_streamin
  |
7 |       supports_streamin: false
  |       ^
  = help: did you mean `supports_streaming`?

acme/plugins.yaml:11:7: warning[W0105]: unknown key `bogus_meta` in `endpoint.chat.metadata`; \
         `EndpointMetadata` does not define it, so it is ignored
  --> acme:endpoint.chat.metadata.bogus_meta
   |
11 |       bogus_meta: 1
   |       ^
   = help: `EndpointMetadata` has the keys `consumes_system_message`, `endpoint_path`, \
         `metrics_title`, `produces_audio`, `produces_images`, `produces_tokens`, \
         `produces_videos`, `requires_form_data`, `requires_inline_media`, `requires_polling`, \
         `service_kind`, `streaming_path`, `supports_audio`, `supports_cache_bust`, \
         `supports_images`, `supports_streaming`, `supports_videos`, `tokenizes_input`"
    );
}

#[test]
fn misspelt_required_metadata_key_is_the_error() {
    let text = "transport:\n  http:\n    class: acme::t:T\n    metadata:\n      \
                transport_typ: http\n";
    let (manifest, diagnostics) = plugins("acme", text);
    assert!(manifest.is_none());
    // The "missing `transport_type`" error would only repeat the misspelling.
    assert_eq!(
        render(&diagnostics),
        "acme/plugins.yaml:5:7: error[E0102]: unknown key `transport_typ` in \
         `transport.http.metadata`
 --> acme:transport.http.metadata.transport_typ
  |
5 |       transport_typ: http
  |       ^
  = help: did you mean `transport_type`?"
    );
}

#[test]
fn untyped_metadata_keys_are_not_checked() {
    // `ui` has no `metadata_class`: its metadata is free-form, as in AIPerf.
    plugins_ok(
        "acme",
        "ui:\n  fancy:\n    class: acme::ui:Fancy\n    metadata: {anything: 1}\n",
    );
}

#[test]
fn all_problems_are_reported_in_one_pass() {
    let text = "\
schema_version: 1.0
endpoint:
  chat:
    class: acme::chat:Chat
    priority: high
    metadata: {endpoint_path: /x, supports_streaming: yes,
               produces_tokens: true, tokenizes_input: true}
  bad name:
    class: acme::chat:Other
    metadata: []
record_processor:
  r:
    class: acme::records:R
    metadata: {record_type: metric_record}
";
    let (manifest, diagnostics) = plugins("acme", text);
    assert!(manifest.is_none());
    let summary: Vec<(usize, usize, &str, &str)> = diagnostics
        .iter()
        .map(|d| (d.line, d.col, d.code, d.yaml_path.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (1, 17, codes::SCHEMA, "acme:schema_version"),
            (5, 15, codes::SCHEMA, "acme:endpoint.chat.priority"),
            (
                6,
                5,
                codes::MISSING_KEY,
                "acme:endpoint.chat.metadata.metrics_title"
            ),
            (
                6,
                55,
                codes::SCHEMA,
                "acme:endpoint.chat.metadata.supports_streaming"
            ),
            (8, 3, codes::INVALID_NAME, "acme:endpoint.\"bad name\""),
            (10, 15, codes::SCHEMA, "acme:endpoint.\"bad name\".metadata"),
            (
                14,
                29,
                codes::SCHEMA,
                "acme:record_processor.r.metadata.record_type"
            ),
        ],
        "{}",
        render(&diagnostics)
    );
    assert_eq!(
        diagnostics[0].help.as_deref(),
        Some("quote the value to make it a string")
    );
    assert_eq!(
        diagnostics[1].message,
        "`endpoint.chat.priority` must be an integer, found a string (`high`)"
    );
    assert_eq!(
        diagnostics[6].help.as_deref(),
        Some("did you mean `metric_records`?")
    );
}

/// A number where a string belongs is quoted as written (`1e3` read "`1000.0`").
#[test]
fn a_number_in_a_string_field_is_quoted_as_written() {
    for value in ["1e3", "0x1F", "-2.50"] {
        let text = format!(
            "endpoint:\n  chat:\n    class: acme::e:Chat\n    metadata: {{endpoint_path: {value}, \
             supports_streaming: true, produces_tokens: true, tokenizes_input: true, \
             metrics_title: Acme}}\n"
        );
        let (_, diagnostics) = plugins("acme", &text);
        let messages: Vec<&str> = diagnostics.iter().map(|d| d.message.as_str()).collect();
        let expected = format!(
            "`endpoint.chat.metadata.endpoint_path` must be a string or null, found a number \
             (`{value}`)"
        );
        assert_eq!(messages, [expected.as_str()], "{value}");
    }
}

#[test]
fn missing_required_metadata_key_points_at_the_metadata_key() {
    let text =
        "transport:\n  http:\n    class: acme::t:T\n    metadata:\n      url_schemes: [http]\n";
    let (_, diagnostics) = plugins("acme", text);
    assert_eq!(
        render(&diagnostics),
        "acme/plugins.yaml:4:5: error[E0101]: missing required key `transport_type` in \
         `transport.http.metadata`
 --> acme:transport.http.metadata.transport_type
  |
4 |     metadata:
  |     ^"
    );
}

// ---------------------------------------------------------------------------------------
// Partial loads (`LoadOptions::keep_valid`), for reports

fn keep_valid() -> LoadOptions {
    LoadOptions {
        keep_valid: true,
        ..LoadOptions::any_language()
    }
}

/// Entry and category names of a plugins manifest, in file order.
fn entry_names(manifest: &PluginsManifest) -> Vec<String> {
    manifest
        .categories
        .iter()
        .flat_map(|(category, entries)| entries.keys().map(move |n| format!("{category}.{n}")))
        .collect()
}

/// Each kind of error leaves out only what it is in: a YAML problem (a tag, a repeated
/// key) or a schema or class path error its entry, an error on a category's own value the
/// category. The diagnostics are those of a strict load, which loads nothing.
#[test]
fn a_partial_load_leaves_out_only_the_parts_with_errors() {
    let text = format!(
        "schema_version: \"1.0\"
ui:
  loud:
    class: acme::ui:Loud
  quiet:
    class: not a path
  tagged:
    class: !!python/name acme.ui.Tagged
  twice:
    class: acme::ui:Twice
  twice:
    class: acme::ui:Again
endpoint:
  chat:
    class: acme::chat:Chat
    metadata: {CHAT_METADATA}
  bare:
    class: acme::chat:Bare
arrival_pattern: 3
url_selection_strategy:
  first:
    class: acme::sel:First
"
    );
    let path = Path::new("acme/plugins.yaml");
    let categories = categories();
    let strict = PluginsLoader::new(&categories, LoadOptions::any_language());
    let (none, strict_diagnostics) = strict.load_str(&text, path, "acme");
    assert!(none.is_none());
    let partial = PluginsLoader::new(&categories, keep_valid());
    let (manifest, diagnostics) = partial.load_str(&text, path, "acme");
    assert_eq!(diagnostics, strict_diagnostics);
    assert_eq!(
        only_codes(&diagnostics),
        ["E0201", "E0009", "E0004", "E0103", "E0100"]
    );
    let manifest = manifest.expect("the entries without errors load");
    assert_eq!(
        entry_names(&manifest),
        ["ui.loud", "endpoint.chat", "url_selection_strategy.first"]
    );
    assert!(manifest.categories.get("arrival_pattern").is_none());
    let loud = manifest
        .categories
        .get("ui")
        .and_then(|entries| entries.get("loud"))
        .expect("ui.loud");
    assert_eq!(loud.class_source.as_ref().map(|p| p.line), Some(4));
}

/// A problem with the document as a whole leaves nothing to load.
#[test]
fn a_partial_load_of_a_broken_document_loads_nothing() {
    let categories = categories();
    let partial = PluginsLoader::new(&categories, keep_valid());
    let path = Path::new("acme/plugins.yaml");
    for text in ["- ui\n- loud\n", "ui:\n  loud:\n    class: [unclosed\n"] {
        let (manifest, diagnostics) = partial.load_str(text, path, "acme");
        assert!(manifest.is_none(), "{text}");
        assert!(aiperf_gen::manifest::has_errors(&diagnostics), "{text}");
    }
}

/// A category left out for its errors is still one that `categories.yaml` defines: its
/// plugins are not reported as in an unknown category (a category nowhere defined still
/// is), and the plugins of the other categories are checked against them.
#[test]
fn a_partial_categories_file_keeps_its_sound_categories() {
    let text = "schema_version: \"1.0\"
broken:
  protocol: not a path
  enum: BrokenType
  description: Malformed protocol.
Bad-Name:
  protocol: aiperf_runtime::protocols:UiProtocol
  enum: BadType
  description: Not snake_case.
ui:
  protocol: aiperf_runtime::protocols:UiProtocol
  enum: UiType
  description: User interfaces.
";
    let path = Path::new("categories.yaml");
    let (none, strict) = load_categories_str_with(text, path, &LoadOptions::any_language());
    assert!(none.is_none());
    let (categories, diagnostics) = load_categories_str_with(text, path, &keep_valid());
    assert_eq!(diagnostics, strict);
    assert_eq!(only_codes(&diagnostics), ["E0201", "E0105"]);
    let categories = categories.expect("the sound category loads");
    let names: Vec<&str> = categories.categories.keys().collect();
    assert_eq!(names, ["ui"]);
    assert_eq!(categories.left_out, ["broken", "Bad-Name"]);
    assert!(categories.is_left_out("bad_name"));

    let plugins = "ui:\n  loud:\n    class: acme::ui:Loud\n    metadata: 3\n\
                   broken:\n  odd:\n    class: acme::ui:Odd\n\
                   nowhere:\n  lost:\n    class: acme::ui:Lost\n";
    let loader = PluginsLoader::new(&categories, keep_valid());
    let (manifest, diagnostics) = loader.load_str(plugins, Path::new("p.yaml"), "acme");
    assert_eq!(
        render(&diagnostics),
        "p.yaml:4:15: error[E0100]: `ui.loud.metadata` must be a mapping or null, found a \
         number (`3`)
 --> acme:ui.loud.metadata
  |
4 |     metadata: 3
  |               ^

p.yaml:8:1: warning[W0101]: unknown category `nowhere`; categories.yaml does not define it
 --> acme:nowhere
  |
8 | nowhere:
  | ^"
    );
    let manifest = manifest.expect("the sound entries load");
    assert_eq!(entry_names(&manifest), ["broken.odd", "nowhere.lost"]);
}

// ---------------------------------------------------------------------------------------
// Class paths

#[test]
fn code_injection_in_class_is_rejected() {
    let text = "arrival_pattern:\n  evil:\n    class: \"a::b:C; fn evil() {}\"\n";
    let (manifest, diagnostics) = plugins("acme", text);
    assert!(manifest.is_none());
    assert_eq!(
        render(&diagnostics),
        "acme/plugins.yaml:3:12: error[E0201]: invalid class path `a::b:C; fn evil() {}`: \
         unexpected character `;`
 --> acme:arrival_pattern.evil.class
  |
3 |     class: \"a::b:C; fn evil() {}\"
  |            ^
  = help: a class path is `rust_crate::module::path:TypeName`"
    );
}

#[test]
fn class_path_rules() {
    let ok = ClassPath::parse("aiperf_core::endpoints::chat:ChatEndpoint").unwrap();
    assert_eq!(ok.crate_name(), "aiperf_core");
    assert_eq!(ok.rust_path(), "aiperf_core::endpoints::chat::ChatEndpoint");
    assert_eq!(ok.to_string(), "aiperf_core::endpoints::chat:ChatEndpoint");
    assert!(ClassPath::parse("single:Type").is_ok());

    let rejected = [
        ("", "class path is empty"),
        ("a::b::C", "missing `:` before the type name"),
        ("a::b:C:D", "more than one `:` separator"),
        (":C", "missing the module path"),
        ("a::b:C<T>", "unexpected character `<`"),
        ("../evil:C", "unexpected character `/`"),
        ("a.b::c:D", "mixes `.` and `::` between modules"),
        ("a::b:C.D", "unexpected `.` in the type name"),
        ("a::b :C", "unexpected space"),
        ("a::'b':C", "unexpected character `'`"),
        ("a::fn:C", "module path segment `fn` is a Rust keyword"),
        (
            "crate::a:C",
            "module path segment `crate` is a Rust keyword",
        ),
        ("a::b:Self", "type name `Self` is a Rust keyword"),
        ("a::gen:C", "is a reserved Rust keyword"),
        ("a::1b:C", "module path segment `1b` is not an identifier"),
        ("a::_:C", "module path segment `_` is not a Rust identifier"),
        ("a::::b:C", "empty module path segment"),
        ("aiperf-core::x:C", "unexpected character `-`"),
    ];
    for (input, expected) in rejected {
        let err = ClassPath::parse(input).expect_err(input);
        assert!(err.message.contains(expected), "{input}: {}", err.message);
    }
    let dashed = ClassPath::parse("aiperf-core::x:C").unwrap_err();
    assert_eq!(
        dashed.help.as_deref(),
        Some("crate names are written with `_` in Rust paths: `aiperf_core::x:C`")
    );

    // The shape check is the same in both languages; only the Rust rule refuses Python.
    assert_eq!(check_shape("a.b.c:D"), Ok(ClassPathStyle::Python));
    assert_eq!(check_shape("a::b:D"), Ok(ClassPathStyle::Rust));
    assert_eq!(check_shape("a::fn:D"), Ok(ClassPathStyle::Rust));
    let kinds: Vec<ClassPathErrorKind> = ["a.b:C", "a::fn:C", "a b:C"]
        .iter()
        .map(|t| ClassPath::parse(t).unwrap_err().kind)
        .collect();
    assert_eq!(
        kinds,
        [
            ClassPathErrorKind::NotRust,
            ClassPathErrorKind::NotRust,
            ClassPathErrorKind::Malformed
        ]
    );
}

// ---------------------------------------------------------------------------------------
// YAML reader

#[test]
fn duplicate_keys_point_at_the_second_occurrence() {
    let text = "arrival_pattern:\n  poisson:\n    class: a::b:C\n  poisson:\n    class: a::b:D\n";
    let (manifest, diagnostics) = plugins("acme", text);
    assert!(manifest.is_none());
    assert_eq!(
        render(&diagnostics),
        "acme/plugins.yaml:4:3: error[E0004]: duplicate key `poisson` (first defined at line 2, \
         column 3)
 --> acme:arrival_pattern.poisson
  |
4 |   poisson:
  |   ^
  = help: remove one of the two entries; YAML mappings cannot repeat a key"
    );
}

#[test]
fn merge_keys_are_rejected_without_follow_on_errors() {
    let text = "arrival_pattern:\n  poisson:\n    <<: {class: a::b:C}\n";
    let (_, diagnostics) = plugins("acme", text);
    assert_eq!(
        only_codes(&diagnostics),
        [codes::MERGE_KEY],
        "{}",
        render(&diagnostics)
    );
    assert_eq!((diagnostics[0].line, diagnostics[0].col), (3, 5));
    assert_eq!(
        diagnostics[0].message,
        "YAML merge keys (`<<`) are not supported"
    );
}

#[test]
fn multiple_documents_are_rejected() {
    let (_, diagnostics) = plugins("acme", "schema_version: \"1.0\"\n---\nendpoint: {}\n");
    assert_eq!(only_codes(&diagnostics), [codes::MULTIPLE_DOCUMENTS]);
    assert_eq!((diagnostics[0].line, diagnostics[0].col), (2, 1));
}

#[test]
fn non_string_keys_are_rejected() {
    let (_, diagnostics) = plugins(
        "acme",
        "arrival_pattern:\n  1: {class: a::b:C}\n  true: {class: a::b:D}\n",
    );
    assert_eq!(
        only_codes(&diagnostics),
        [codes::NON_STRING_KEY, codes::NON_STRING_KEY]
    );
    assert_eq!(
        diagnostics[0].message,
        "mapping key `1` is an integer, not a string"
    );
    assert_eq!(
        diagnostics[0].help.as_deref(),
        Some("quote the key: `\"1\":`")
    );
    let (_, diagnostics) = plugins("acme", "? [a, b]\n: x\n");
    assert_eq!(only_codes(&diagnostics), [codes::NON_STRING_KEY]);
}

#[test]
fn unsupported_tags_and_values_are_rejected_without_follow_on_errors() {
    let text = "arrival_pattern:\n  p:\n    class: a::b:C\n    priority: .inf\n    \
                metadata: !!python/object {a: 1}\n";
    let (_, diagnostics) = plugins("acme", text);
    let messages: Vec<&str> = diagnostics.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "`.inf` (infinity or NaN) has no JSON equivalent",
            "unsupported tag `!!python/object`"
        ],
        "{}",
        render(&diagnostics)
    );
}

#[test]
fn alias_bomb_is_stopped() {
    let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h"]
        .iter()
        .zip(["b", "c", "d", "e", "f", "g", "h", "i"])
    {
        let refs = vec![format!("*{prev}"); 10].join(", ");
        text.push_str(&format!("{name}: &{name} [{refs}]\n"));
    }
    let started = std::time::Instant::now();
    let (manifest, diagnostics) = plugins("acme", &text);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(manifest.is_none());
    assert_eq!(only_codes(&diagnostics), [codes::LIMIT_EXCEEDED]);
    assert_eq!(
        diagnostics[0].message,
        "alias expansion exceeds 100000 nodes (possible billion-laughs attack)"
    );
}

#[test]
fn small_aliases_still_work() {
    let text = "arrival_pattern:\n  a: &spec {class: a::b:C, description: shared}\n  b: *spec\n";
    let manifest = plugins_ok("acme", text);
    let entries = manifest.categories.get("arrival_pattern").unwrap();
    assert_eq!(entries.get("b").unwrap().description, "shared");
}

#[test]
fn deep_nesting_is_a_diagnostic_not_a_stack_overflow() {
    for text in [
        "- ".repeat(200_000),
        "[".repeat(200_000),
        "a:\n".to_owned() + &"  - ".repeat(50_000),
    ] {
        let (manifest, diagnostics) = plugins("acme", &text);
        assert!(manifest.is_none());
        assert_eq!(
            only_codes(&diagnostics),
            [codes::LIMIT_EXCEEDED],
            "{}",
            render(&diagnostics)
        );
    }
    let (_, diagnostics) = plugins("acme", &"- ".repeat(200_000));
    assert_eq!(diagnostics[0].message, "nesting is deeper than 64 levels");
    // The snippet of a huge line is cut around the caret.
    assert!(diagnostics[0]
        .to_string()
        .lines()
        .all(|l| l.chars().count() < 200));
}

#[test]
fn oversized_input_is_rejected() {
    let limits = YamlLimits {
        max_bytes: 16,
        ..YamlLimits::default()
    };
    let (doc, diagnostics) = parse_yaml(
        "key: a value that is too long\n",
        Path::new("x.yaml"),
        &limits,
    );
    assert!(doc.is_none());
    assert_eq!(only_codes(&diagnostics), [codes::LIMIT_EXCEEDED]);
    let too_many = YamlLimits {
        max_nodes: 10,
        ..YamlLimits::default()
    };
    let (doc, diagnostics) = parse_yaml(&"- x\n".repeat(20), Path::new("x.yaml"), &too_many);
    assert!(doc.is_none());
    assert_eq!(diagnostics[0].message, "document has more than 10 nodes");
}

/// A raw control character is named where it is, quoted or not (in quotes the parser
/// read it as "unexpected end of stream").
#[test]
fn a_raw_control_character_is_named_at_its_place() {
    for (text, col) in [
        ("a: 1\nb: \"x\u{0}y\"\n", 6),
        ("a: 1\nb: x\u{0}y\n", 5),
        ("a: 1\nb: \"é\u{0}\"\n", 6),
    ] {
        let (doc, diagnostics) = parse_yaml(text, Path::new("x.yaml"), &YamlLimits::default());
        assert!(doc.is_none(), "{text:?}");
        let shown: Vec<_> = diagnostics
            .iter()
            .map(|d| (d.line, d.col, d.message.as_str()))
            .collect();
        let c = text
            .chars()
            .find(|c| c.is_control() && *c != '\n' || *c == '\u{ffff}');
        let code = u32::from(c.expect("a control character"));
        let escape = match code {
            0..=0xff => format!("\\x{code:02X}"),
            _ => format!("\\u{code:04X}"),
        };
        let message = format!(
            "YAML syntax error: control character U+{code:04X} in the text; YAML allows it \
             only written as an escape inside double quotes (\"{escape}\")"
        );
        assert_eq!(shown, [(2, col, message.as_str())], "{text:?}");
    }
}

#[test]
fn non_utf8_input_points_at_the_bad_byte() {
    let path = fixture("plugins/not_utf8.yaml");
    let (manifest, diagnostics) = load_plugins(&path, &pack("acme"), &categories());
    assert!(manifest.is_none());
    assert_eq!(
        render(&diagnostics),
        format!(
            "{}:3:17: error[E0002]: file is not valid UTF-8: invalid byte 0xFF at byte offset 34
 --> acme
  |
3 |     class: a::b:\u{fffd}
  |                 ^
  = help: save the file as UTF-8",
            path.display()
        )
    );
    let err = decode_source(
        b"ok: \xc3\x28\n".to_vec(),
        Path::new("x"),
        &YamlLimits::default(),
    );
    assert_eq!(err.map_err(|d| (d.line, d.col)), Err((1, 5)));
}

#[test]
fn span_index_maps_pointers_and_keys() {
    let text = "a:\n  b: [1, {c: x}]\n  \"d/e\": 2\n";
    let (doc, diagnostics) = parse_yaml(text, Path::new("x.yaml"), &YamlLimits::default());
    assert!(diagnostics.is_empty());
    let doc = doc.unwrap();
    let at = |key: &str| doc.spans.get(key).map(|p| (p.line, p.col));
    assert_eq!(at("/a#key"), Some((1, 1)));
    assert_eq!(at("/a/b#key"), Some((2, 3)));
    assert_eq!(at("/a/b"), Some((2, 6)));
    assert_eq!(at("/a/b/1/c"), Some((2, 14)));
    assert_eq!(at("/a/d~1e#key"), Some((3, 3)));
    assert_eq!(doc.spans.keys("/a").unwrap(), ["b", "d/e"]);
    assert_eq!(doc.value["a"]["b"][1]["c"], "x");
}

// ---------------------------------------------------------------------------------------
// Schemas

#[test]
fn plugins_schema_has_a_typed_definition_per_category() {
    let schema = plugins_schema(&categories());
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let defs = schema["$defs"].as_object().unwrap();
    assert_eq!(defs.len(), 27, "26 categories + the generic `Plugin`");
    let endpoint = &defs["EndpointPlugin"];
    assert_eq!(
        endpoint["required"],
        serde_json::json!(["class", "metadata"])
    );
    assert_eq!(endpoint["additionalProperties"], false);
    assert!(endpoint["properties"]["metadata"]["required"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("supports_streaming")));
    // Metadata objects allow extra keys.
    assert!(endpoint["properties"]["metadata"]
        .get("additionalProperties")
        .is_none());
    let gpu = &defs["GpuTelemetryCollectorPlugin"];
    assert_eq!(gpu["required"], serde_json::json!(["class"]));
    assert_eq!(
        gpu["properties"]["metadata"]["type"],
        serde_json::json!(["object", "null"])
    );
    assert_eq!(
        schema["properties"]["endpoint"]["additionalProperties"]["$ref"],
        "#/$defs/EndpointPlugin"
    );
    assert!(jsonschema::meta::is_valid(&schema));
}

#[test]
fn categories_schema_is_generated_from_the_model() {
    let schema = categories_schema();
    assert!(jsonschema::meta::is_valid(&schema));
    let spec = &schema["$defs"]["CategorySpec"];
    assert_eq!(
        spec["required"],
        serde_json::json!(["protocol", "enum", "description"])
    );
    assert_eq!(spec["additionalProperties"], false);
}

// ---------------------------------------------------------------------------------------
// Packs

#[test]
fn packs_are_found_by_package_name_dir_name_or_path() {
    let search = [fixture("packs")];
    let by_name = find_pack("acme-endpoints", &search).unwrap();
    assert_eq!(by_name.version, "1.2.3");
    assert_eq!(by_name.description, "Acme vendor endpoints");
    assert_eq!(by_name.authors, ["Acme Inc."]);
    assert!(!by_name.is_builtin);
    assert_eq!(by_name.crate_name(), "acme_endpoints");
    assert_eq!(
        by_name.manifest_path,
        fixture("packs/acme-endpoints/plugins.yaml")
    );

    let path = fixture("packs/acme-endpoints");
    let by_path = find_pack(path.to_str().unwrap(), &[]).unwrap();
    assert_eq!(by_path, by_name);
    let by_toml = read_pack(&path.join("Cargo.toml")).unwrap();
    assert_eq!(by_toml, by_name);

    let (manifest, diagnostics) = load_plugins(&by_name.manifest_path, &by_name, &categories());
    assert!(manifest.is_some(), "{}", render(&diagnostics));
}

#[test]
fn discovery_lists_packs_and_reports_broken_ones() {
    let (packs, diagnostics) = discover_packs(&[fixture("packs")]);
    let names: Vec<&str> = packs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["acme-endpoints", "acme-ui"]);
    // Plain crates are skipped silently; packages that declare a manifest but are broken
    // are reported.
    assert_eq!(
        only_codes(&diagnostics),
        [codes::PACK_MANIFEST_OUTSIDE, codes::PACK_MANIFEST_MISSING]
    );
}

#[test]
fn unknown_pack_names_suggest_close_ones() {
    let err = find_pack("acme-endpoint", &[fixture("packs")]).unwrap_err();
    assert_eq!(err.code, codes::PACK_NOT_FOUND);
    assert_eq!(err.help.as_deref(), Some("did you mean `acme-endpoints`?"));
}

#[test]
fn workspace_fields_are_inherited() {
    let pack = find_pack("aiperf-inherit", &[fixture("ws")]).unwrap();
    assert_eq!(pack.version, "9.9.9");
    assert_eq!(pack.authors, ["Workspace Author"]);
    assert_eq!(pack.description, "inherited description");
    assert!(pack.is_builtin);
    assert_eq!(
        pack.manifest_path,
        fixture("ws/inherit-pack/manifests/plugins.yaml")
    );
}

#[test]
fn bc36_declared_manifest_missing_names_package_and_paths() {
    let err = find_pack("acme-unshipped", &[fixture("packs")]).unwrap_err();
    let cargo_toml = fixture("packs/missing-manifest/Cargo.toml");
    let expected = fixture("packs/missing-manifest/plugins.yaml");
    assert_eq!(err.code, codes::PACK_MANIFEST_MISSING);
    assert_eq!(err.file, cargo_toml);
    assert_eq!(
        err.to_string(),
        format!(
            "{}: error[E0304]: plugin manifest of package `acme-unshipped` not found: {} \
             declares `plugins = \"plugins.yaml\"`, but {} does not exist
  = help: create the file or fix the path; for a published package, make sure \
             `include`/`exclude` in Cargo.toml ship it",
            cargo_toml.display(),
            cargo_toml.display(),
            expected.display()
        )
    );
}

#[test]
fn bc36_package_without_manifest_key_is_not_a_pack() {
    let err = read_pack(&fixture("packs/no-manifest-key")).unwrap_err();
    let cargo_toml = fixture("packs/no-manifest-key/Cargo.toml");
    assert_eq!(err.code, codes::PACK_NO_MANIFEST_KEY);
    assert_eq!(
        err.message,
        format!(
            "package `not-a-pack` is not a plugin pack: {} has no `[package.metadata.aiperf] \
             plugins` key (expected manifest: {})",
            cargo_toml.display(),
            fixture("packs/no-manifest-key/plugins.yaml").display()
        )
    );
}

#[test]
fn manifest_paths_may_not_leave_the_package() {
    let err = read_pack(&fixture("packs/escaping-manifest")).unwrap_err();
    assert_eq!(err.code, codes::PACK_MANIFEST_OUTSIDE);
}

#[test]
fn search_path_order_is_workspace_then_flags_then_env() {
    let env = std::ffi::OsString::from("/env/one:/env/two::");
    let paths = pack_search_paths_with_env(
        Some(Path::new("/ws")),
        &[PathBuf::from("/flag")],
        Some(&env),
    );
    let expected: Vec<PathBuf> = ["/ws/plugin-packs", "/flag", "/env/one", "/env/two"]
        .iter()
        .map(PathBuf::from)
        .collect();
    assert_eq!(paths, expected);
}

/// An integer the typed model cannot hold is reported at the value, with the number as
/// written and the field's range, whichever integer field it is.
#[test]
fn out_of_range_integers_point_at_the_value() {
    let entry = "endpoint:\n  chat:\n    class: acme::e:Chat\n    priority: ";
    let metadata = "    metadata: {endpoint_path: /v1/chat, supports_streaming: true, \
                    produces_tokens: true, tokenizes_input: true, metrics_title: Acme}\n";
    for value in [
        "99999999999999999999",
        "-99999999999999999999",
        "9223372036854775808",
        "-9223372036854775809",
    ] {
        let (manifest, diagnostics) = plugins("acme", &format!("{entry}{value}\n{metadata}"));
        assert!(manifest.is_none());
        let shown: Vec<_> = diagnostics
            .iter()
            .map(|d| (d.line, d.col, d.message.as_str()))
            .collect();
        let message = format!(
            "`endpoint.chat.priority`: integer {value} is out of range \
             (int64: -9223372036854775808 to 9223372036854775807)"
        );
        assert_eq!(shown, [(4, 15, message.as_str())], "{value}");
    }
    let bounds = "9223372036854775807\n";
    plugins_ok("acme", &format!("{entry}{bounds}{metadata}"));
    plugins_ok("acme", &format!("{entry}-9223372036854775808\n{metadata}"));
    // The largest double below 2^63, written as a float, is that integer.
    plugins_ok("acme", &format!("{entry}9223372036854774784.0\n{metadata}"));

    // A u32 metadata field, in range for i64 but not for its type.
    let loader = "custom_dataset_loader:\n  l:\n    class: acme::l:L\n    \
                  metadata: {default_block_size: 4294967296}\n";
    let (_, diagnostics) = plugins("acme", loader);
    let shown: Vec<_> = diagnostics
        .iter()
        .map(|d| (d.line, d.col, d.message.as_str()))
        .collect();
    assert_eq!(
        shown,
        [(
            4,
            36,
            "`custom_dataset_loader.l.metadata.default_block_size`: integer 4294967296 is out \
             of range (uint32: 0 to 4294967295)"
        )]
    );
    // A whole float in range is that integer: one below the field's minimum says so, as
    // the integer does (it read "integer 0.0 is out of range (uint32: 0 to ...)").
    for (value, found) in [("0", "`0`"), ("0.0", "`0.0`"), ("-0.0", "`-0.0`")] {
        let loader = format!(
            "custom_dataset_loader:\n  l:\n    class: acme::l:L\n    \
             metadata: {{default_block_size: {value}}}\n"
        );
        let (_, diagnostics) = plugins("acme", &loader);
        let shown: Vec<_> = diagnostics.iter().map(|d| d.message.as_str()).collect();
        let message = format!(
            "`custom_dataset_loader.l.metadata.default_block_size` must be at least 1, found \
             a number ({found})"
        );
        assert_eq!(shown, [message.as_str()], "{value}");
    }
    // A fraction is not an integer, and only that is said (a range error came with it).
    let loader = "custom_dataset_loader:\n  l:\n    class: acme::l:L\n    \
                  metadata: {default_block_size: 0.4}\n";
    let (_, diagnostics) = plugins("acme", loader);
    let shown: Vec<_> = diagnostics.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        shown,
        [
            "`custom_dataset_loader.l.metadata.default_block_size` must be an integer or null, \
          found a number (`0.4`)"
        ]
    );
}
