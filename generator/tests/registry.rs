//! The registry API (AIPerf's `plugins` module, over manifests): what plugin authors call
//! from their own tests.

use std::path::Path;

use aiperf_gen::manifest::{LoadOptions, OverrideReason};
use aiperf_gen::registry::{Registration, Registry, RegistryError};
use aiperf_gen::session::Inputs;

fn fixture(relative: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(relative)
        .to_string_lossy()
        .into_owned()
}

fn registry() -> Registry {
    let mini = fixture("explorer/aiperf-mini");
    let acme = fixture("packs/acme-endpoints");
    Registry::load(&[&mini, &acme]).expect("fixture packs load")
}

fn names(registry: &Registry, category: &str) -> Vec<String> {
    registry.iter(category).map(|e| e.name.clone()).collect()
}

#[test]
fn lookups_follow_aiperf_normalisation_and_conflicts() {
    let registry = registry();
    assert_eq!(names(&registry, "endpoint"), ["chat", "completions"]);
    assert_eq!(
        registry.get_entry("Endpoint", "CHAT").unwrap().pack,
        "acme-endpoints"
    );
    assert_eq!(
        registry
            .get_entry("arrival-pattern", "concurrency_burst")
            .unwrap()
            .name,
        "Concurrency-Burst",
        "original spelling kept"
    );
    assert!(registry.has_entry("transport", "http"));
    assert!(!registry.has_entry("transport", "quic"));
    assert_eq!(
        registry.list_categories(true),
        [
            "arrival_pattern",
            "communication",
            "console_exporter",
            "endpoint",
            "transport"
        ]
    );
    assert_eq!(
        registry.list_categories(false),
        [
            "arrival_pattern",
            "console_exporter",
            "endpoint",
            "transport"
        ],
        "communication is internal"
    );
    assert_eq!(
        registry.list_packages(false),
        ["aiperf-mini", "acme-endpoints"]
    );
    assert_eq!(registry.list_packages(true), ["aiperf-mini"]);
    assert_eq!(
        registry
            .iter_all("endpoint")
            .map(|e| e.pack.as_str())
            .collect::<Vec<_>>(),
        ["aiperf-mini", "acme-endpoints", "aiperf-mini"],
        "shadowed entries stay listed"
    );
}

#[test]
fn errors_carry_aiperf_messages() {
    let registry = registry();
    assert_eq!(
        registry
            .get_entry("endpoint", "Nope")
            .unwrap_err()
            .to_string(),
        "Type 'nope' not found for category 'endpoint'.\nAvailable types:\n  • chat\n  • \
         completions"
    );
    assert_eq!(
        registry.get_entry("widgets", "x").unwrap_err().to_string(),
        "Unknown plugin category 'widgets'. Available categories: arrival_pattern, \
         communication, console_exporter, endpoint, transport"
    );
    assert_eq!(
        registry
            .get_package_metadata("globex")
            .unwrap_err()
            .to_string(),
        "Package not found: 'globex'. Available packages: aiperf-mini, acme-endpoints"
    );
}

#[test]
fn shadowed_classes_stay_reachable_by_class_path() {
    let registry = registry();
    let shadowed = registry
        .get_class("endpoint", "aiperf_mini::endpoints:ChatEndpoint")
        .unwrap();
    assert_eq!(shadowed.pack, "aiperf-mini");
    assert!(!shadowed.is_winner());
    assert_eq!(
        registry
            .get_class("transport", "aiperf_mini::endpoints:ChatEndpoint")
            .unwrap_err(),
        RegistryError::CategoryMismatch {
            class_path: "aiperf_mini::endpoints:ChatEndpoint".into(),
            expected: "transport".into(),
            actual: "endpoint".into(),
        }
    );
    assert_eq!(
        registry
            .get_class("endpoint", "x::y:Z")
            .unwrap_err()
            .to_string(),
        "Class path not registered: x::y:Z"
    );
    assert_eq!(
        registry.find_registered_name("endpoint", "aiperf_mini::endpoints:ChatEndpoint"),
        Some("chat")
    );
    assert_eq!(registry.find_registered_name("endpoint", "x::y:Z"), None);
}

#[test]
fn register_applies_the_conflict_rules_and_reset_undoes_it() {
    let mut registry = registry();
    // Equal priority, external (crate `my_pack`) vs external acme: first registered keeps it.
    let owner = registry
        .register(
            "endpoint",
            "chat",
            "my_pack::chat:Fast",
            Registration::default(),
        )
        .unwrap();
    assert_eq!(owner.pack, "acme-endpoints");
    // Higher priority takes the name.
    let owner = registry
        .register(
            "endpoint",
            "chat",
            "my_pack::chat:Faster",
            Registration::priority(10),
        )
        .unwrap();
    assert_eq!((owner.pack.as_str(), owner.priority), ("my_pack", 10));
    // Every other `chat` lost to the final owner by priority (built-in, acme, the tie).
    assert_eq!(
        registry
            .decisions()
            .iter()
            .map(|d| d.reason)
            .collect::<Vec<_>>(),
        [OverrideReason::HigherPriority; 3]
    );
    // A new name with metadata and a chosen pack.
    let metadata = serde_json::json!({"transport_type": "quic"});
    registry
        .register(
            "transport",
            "quic",
            "my_pack::quic:Quic",
            Registration {
                description: "QUIC".into(),
                metadata: metadata.as_object().cloned(),
                pack: Some("aiperf-extra".into()),
                ..Registration::default()
            },
        )
        .unwrap();
    assert_eq!(
        registry
            .get_transport_metadata("quic")
            .unwrap()
            .transport_type,
        "quic"
    );
    assert!(registry.list_packages(true).contains(&"aiperf-extra"));

    let removed = registry.unregister("transport", "quic").unwrap();
    assert_eq!(removed.class_path, "my_pack::quic:Quic");
    assert!(!registry.has_entry("transport", "quic"));

    registry.reset();
    assert_eq!(
        registry.get_entry("endpoint", "chat").unwrap().pack,
        "acme-endpoints"
    );
    assert_eq!(registry.decisions().len(), 1);

    assert_eq!(
        registry
            .register("endpoint", "x", "not a path", Registration::default())
            .unwrap_err()
            .to_string(),
        "invalid registration endpoint:x: invalid class path `not a path`: unexpected space"
    );
}

#[test]
fn typed_metadata_getters() {
    let registry = registry();
    let chat = registry.get_endpoint_metadata("chat").unwrap();
    assert_eq!(chat.endpoint_path.as_deref(), Some("/v1/acme/chat"));
    assert_eq!(chat.metrics_title.as_deref(), Some("Acme Metrics"));
    assert_eq!(chat.service_kind, "openai", "defaults apply");
    let http = registry.get_transport_metadata("http").unwrap();
    assert_eq!(http.url_schemes, ["http", "https"]);
    assert_eq!(
        registry.get_metadata("arrival_pattern", "poisson").unwrap(),
        &serde_json::json!({})
    );
    // `plot` is a category of the runtime with no plugin in these packs.
    let err = registry.get_plot_metadata("x").unwrap_err();
    assert_eq!(
        err.to_string(),
        "Type 'x' not found for category 'plot'.\nAvailable types:\n"
    );
    let err = registry
        .get_typed_metadata::<aiperf_runtime::metadata::PlotMetadata>("transport", "http")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid metadata for transport:http: missing field `display_name`"
    );
    let pack = registry.get_package_metadata("acme-endpoints").unwrap();
    assert_eq!(
        (pack.version.as_str(), pack.authors.as_slice()),
        ("1.2.3", &["Acme Inc.".to_owned()][..])
    );
    assert_eq!(
        registry
            .get_category_metadata("endpoint")
            .unwrap()
            .enum_name,
        "EndpointType"
    );
}

/// AIPerf 0.13's own categories and plugin manifests (the fixture copies), any language.
fn aiperf_manifests() -> Registry {
    Registry::from_inputs(&Inputs {
        categories: Some(fixture("aiperf-0.13.0/categories.yaml").into()),
        packs: vec![fixture("aiperf-0.13.0")],
        options: LoadOptions::any_language(),
        ..Inputs::default()
    })
    .expect("AIPerf 0.13's manifests load")
}

#[test]
fn validate_all_reports_per_category() {
    let good = fixture("check-class/acme-good");
    let registry = Registry::load(&[&good]).unwrap();
    assert!(registry.validate_all(true).is_empty());

    let aiperf = aiperf_manifests();
    let problems = aiperf.validate_all(false);
    assert_eq!(problems.len(), 35);
    assert_eq!(
        problems.values().map(Vec::len).sum::<usize>(),
        270 + 35 + 13
    );
    let python = |name: &str, class: &str| {
        (
            name.to_owned(),
            format!("`{class}` is a Python class path, not a Rust one"),
        )
    };
    assert_eq!(
        problems["ui"],
        [
            python("<protocol>", "aiperf.ui.protocols:AIPerfUIProtocol"),
            python(
                "dashboard",
                "aiperf.ui.dashboard.aiperf_dashboard_ui:AIPerfDashboardUI"
            ),
            python("none", "aiperf.ui.no_ui:NoUI"),
            python("simple", "aiperf.ui.tqdm_ui:TQDMProgressUI"),
        ]
    );
    assert_eq!(
        aiperf.get_package_metadata("aiperf").unwrap().version,
        "0.13.0"
    );
    assert_eq!(aiperf.list_entries("endpoint").len(), 19);
}

#[test]
fn create_enum_over_a_category() {
    let registry = registry();
    let arrival = registry
        .create_enum("arrival_pattern", "ArrivalPattern")
        .unwrap();
    assert_eq!(
        arrival.variants,
        [
            ("Poisson".to_owned(), "poisson".to_owned()),
            (
                "ConcurrencyBurst".to_owned(),
                "Concurrency-Burst".to_owned()
            )
        ]
    );
    assert_eq!(
        arrival.variant("concurrency_burst"),
        Some("ConcurrencyBurst")
    );
    let code = arrival.to_rust();
    syn::parse_file(&code).expect("valid Rust");
    assert!(code.contains("pub enum ArrivalPattern {"), "{code}");
    assert!(
        code.contains("\"concurrency_burst\" => Ok(Self::ConcurrencyBurst),"),
        "{code}"
    );
    assert_eq!(
        registry
            .create_enum("ramp", "RampType")
            .unwrap_err()
            .to_string(),
        "No types registered for category 'ramp'"
    );
}

#[test]
fn invalid_manifests_do_not_load() {
    let case = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/invalid/missing-class/plugins.yaml")
        .to_string_lossy()
        .into_owned();
    let err = Registry::load(&[&case]).unwrap_err();
    let RegistryError::Invalid(text) = err else {
        panic!("expected Invalid");
    };
    assert!(
        text.contains("error[E0101]: missing required key `class`"),
        "{text}"
    );
}

/// Every endpoint of the core pack that AIPerf 0.13 also ships carries AIPerf's metadata
/// unchanged: the console titles its tables with `metrics_title`, and the flags decide
/// which metrics a run computes, so a drift shows in every run's output.
#[test]
fn core_endpoints_carry_aiperfs_metadata() {
    let core_pack = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-packs/core");
    let core = Registry::load(&[&core_pack.to_string_lossy()]).expect("core pack loads");
    let aiperf = aiperf_manifests();
    let names = names(&core, "endpoint");
    assert_eq!(names.len(), 15, "{names:?}");
    for name in &names {
        assert_eq!(
            core.get_metadata("endpoint", name).unwrap(),
            aiperf.get_metadata("endpoint", name).unwrap(),
            "{name}"
        );
    }
    let title = |name: &str| {
        let metadata = core.get_endpoint_metadata(name).unwrap();
        metadata.metrics_title.unwrap_or_default()
    };
    assert_eq!(title("embeddings"), "Embeddings Metrics");
    assert_eq!(title("nim_embeddings"), "NIM Embeddings Metrics");
    assert_eq!(title("cohere_rankings"), "Ranking Metrics");
    assert_eq!(title("hf_tei_rankings"), "Ranking Metrics");
    // AIPerf's own spelling for NIM's reranker.
    assert_eq!(title("nim_rankings"), "Rankings Metrics");
}
