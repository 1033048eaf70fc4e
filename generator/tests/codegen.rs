//! Generator output: golden snapshots of the generated crate, and the promise that no
//! plugin call goes through a trait object.
//!
//! On a snapshot mismatch the new output is written next to the golden file as
//! `<name>.new` and the test fails; review the diff and rename it over the golden file
//! (or run with `AIPERF_UPDATE_SNAPSHOTS=1` to accept every change).

use std::path::{Path, PathBuf};

use aiperf_gen::build::plan;
use aiperf_gen::codegen::generate_main;
use aiperf_gen::crate_gen::{render, CrateInputs};
use syn::visit::Visit;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn check_snapshot(name: &str, actual: &str) {
    let golden = manifest_dir().join("tests").join("snapshots").join(name);
    let expected = std::fs::read_to_string(&golden).unwrap_or_default();
    if expected == actual {
        return;
    }
    if std::env::var_os("AIPERF_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&golden, actual).expect("update snapshot");
        return;
    }
    let new = golden.with_extension(format!(
        "{}.new",
        golden.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    std::fs::write(&new, actual).expect("write new snapshot");
    panic!(
        "generated {name} differs from {}; the new output is in {} (review, then rename it, \
         or rerun with AIPERF_UPDATE_SNAPSHOTS=1)",
        golden.display(),
        new.display()
    );
}

fn inputs() -> CrateInputs {
    CrateInputs {
        runtime_path: PathBuf::from("/runtime"),
        macros_path: PathBuf::from("/macros"),
        lockfile: None,
    }
}

#[test]
fn core_crate_matches_the_snapshot() {
    let (plan, diagnostics) = plan(&["core".into()], &[]).expect("core pack plans");
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let files = render(&plan, &inputs()).expect("render");
    let file = |name: &str| {
        files
            .iter()
            .find(|(p, _)| p == Path::new(name))
            .map(|(_, c)| c.as_str())
            .expect(name)
    };
    check_snapshot("core_main.rs", file("src/main.rs"));
    check_snapshot("core_README.md", file("README.md"));
    check_snapshot("core_Dockerfile", file("Dockerfile"));
}

/// The Dockerfile's rebuild command finds every pack again: an external pack given by
/// path is named by its directory (its name alone found no pack: E0301).
#[test]
fn the_dockerfile_names_an_external_pack_by_its_directory() {
    let acme = manifest_dir().join("tests/fixtures/packs/acme-endpoints");
    let (plan, _) = plan(&["core".into(), acme.display().to_string()], &[]).expect("plans");
    let files = render(&plan, &inputs()).expect("render");
    let dockerfile = files
        .iter()
        .find(|(p, _)| p == Path::new("Dockerfile"))
        .map(|(_, c)| c.as_str())
        .expect("a Dockerfile");
    let line = format!(
        "# Build a static binary first: aiperf-gen build --static --plugins aiperf-core,{} \
         --out {}\n",
        acme.display(),
        plan.package_name
    );
    assert!(dockerfile.contains(&line), "{dockerfile}");
}

#[test]
fn generation_is_stable() {
    let (plan, _) = plan(&["core".into()], &[]).expect("core pack plans");
    assert_eq!(
        generate_main(&plan).expect("first"),
        generate_main(&plan).expect("second")
    );
}

#[test]
fn external_pack_shadows_builtin_chat_and_keeps_it_selectable() {
    let packs = manifest_dir().join("tests").join("fixtures").join("packs");
    let (plan, diagnostics) =
        plan(&["core".into(), "acme-endpoints".into()], &[packs]).expect("plans");
    assert!(diagnostics.iter().all(|d| !d.is_error()), "{diagnostics:?}");
    let main = generate_main(&plan).expect("generate");
    check_snapshot("core_acme_main.rs", &main);
    assert!(main.contains("ChatFromAiperfCore(aiperf_core::endpoints::ChatEndpoint)"));
    assert!(main.contains("Chat(acme_endpoints::chat::AcmeChat)"));
}

/// A plugin named `self` (or `Self_`) camel-cases to the keyword `Self`: its variant is
/// `SelfPlugin`, as `validate` names it (the build refused it after `validate` passed).
/// Both share one class: its path selects the first, with one match arm. A plugin named
/// `err` is the variant `Err`, beside the kind's `FromStr::Err`.
#[test]
fn a_plugin_named_self_gets_a_variant() {
    let (mut plan, _) = plan(&["core".into()], &[]).expect("core pack plans");
    let category = plan
        .categories
        .iter_mut()
        .find(|c| c.name == "url_selection_strategy")
        .expect("a url_selection_strategy category");
    let entry = category.entries[0].clone();
    for name in ["self", "Self_", "err"] {
        let mut named = entry.clone();
        named.name = name.to_owned();
        category.entries.push(named);
    }
    let main = generate_main(&plan).expect("generates");
    assert!(main.contains("    SelfPlugin("), "{main}");
    assert!(main.contains("    SelfPlugin2("), "{main}");
    // A variant `Err` made `Self::Err` in the kind's `FromStr` ambiguous: rustc refused
    // the crate that `validate` had passed.
    assert!(main.contains("    Err("), "{main}");
    assert!(!main.contains("Result<Self, Self::Err>"), "{main}");
    let class = format!("{:?} =>", entry.class_path);
    assert_eq!(main.matches(&class).count(), 1, "{main}");
}

/// Whole numbers written as floats are the integers AIPerf's pydantic reads them as: a
/// priority of `3.0`, a block size of `512.0` (the Rust types refused them, and `validate`
/// put the error on the entry's first line instead of the field); free-form metadata keeps
/// its floats.
#[test]
fn whole_floats_are_integers() {
    let dir = std::env::temp_dir().join(format!("aiperf-gen-floats-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let manifest = dir.join("floats.yaml");
    std::fs::write(
        &manifest,
        concat!(
            "schema_version: \"1.0\"\n",
            "endpoint:\n",
            "  chat:\n",
            "    class: acme::x:Chat\n",
            "    priority: 3.0\n",
            "    metadata: {endpoint_path: /v1/x, supports_streaming: true, produces_tokens: true,",
            " tokenizes_input: true, metrics_title: L}\n",
            "custom_dataset_loader:\n",
            "  trace:\n",
            "    class: acme::x:Trace\n",
            "    priority: 1e3\n",
            "    metadata: {is_trace: true, default_block_size: 512.0}\n",
            "ramp:\n",
            "  steps:\n",
            "    class: acme::x:Steps\n",
            "    metadata: {weight: 1.0}\n",
        ),
    )
    .expect("write");
    let (plan, diagnostics) = plan(
        &["core".into(), manifest.to_string_lossy().into_owned()],
        &[],
    )
    .expect("plans");
    assert!(diagnostics.iter().all(|d| !d.is_error()), "{diagnostics:?}");
    let entry = |category: &str, class: &str| {
        plan.categories
            .iter()
            .find(|c| c.name == category)
            .and_then(|c| c.entries.iter().find(|e| e.class_path == class))
            .cloned()
            .expect("the entry")
    };
    assert_eq!(entry("endpoint", "acme::x:Chat").priority, 3);
    let trace = entry("custom_dataset_loader", "acme::x:Trace");
    assert_eq!(trace.priority, 1000);
    assert!(
        trace.metadata_json.contains("\"default_block_size\":512"),
        "{}",
        trace.metadata_json
    );
    // Free-form metadata (no metadata type) stays as written, as AIPerf keeps its dict.
    let steps = entry("ramp", "acme::x:Steps");
    assert_eq!(steps.metadata_json, r#"{"weight":1.0}"#);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_engine_category_is_a_clear_error() {
    let packs = manifest_dir().join("tests").join("fixtures").join("packs");
    let (plan, _) = plan(&["acme-endpoints".into()], &[packs]).expect("plans");
    let err = generate_main(&plan).expect_err("no transport linked");
    assert_eq!(
        err.to_string(),
        "the engine needs at least one `transport` plugin, and none of the selected packs \
         provides one (add the `core` pack: --plugins core,...)"
    );
}

/// Every trait object type in a file, as `file:line`.
fn trait_objects(path: &Path, source: &str) -> Vec<String> {
    struct Finder<'a> {
        path: &'a Path,
        found: Vec<String>,
    }
    impl<'ast> Visit<'ast> for Finder<'_> {
        fn visit_type_trait_object(&mut self, node: &'ast syn::TypeTraitObject) {
            let line = node.dyn_token.map(|t| t.span.start().line).unwrap_or(0);
            self.found.push(format!("{}:{line}", self.path.display()));
            syn::visit::visit_type_trait_object(self, node);
        }
    }
    let file = syn::parse_file(source)
        .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
    let mut finder = Finder {
        path,
        found: Vec::new(),
    };
    finder.visit_file(&file);
    finder.found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_dyn_in_generated_code_or_on_the_plugin_call_path() {
    let (plan, _) = plan(&["core".into()], &[]).expect("core pack plans");
    let main = generate_main(&plan).expect("generate");
    let mut found = trait_objects(Path::new("<generated main.rs>"), &main);
    // The runtime (protocols, engine, transport), the macros and the built-in plugins.
    let root = manifest_dir().join("..");
    let mut files = Vec::new();
    for dir in ["runtime/src", "macros/src", "plugin-packs/core/src"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(
        files.len() > 20,
        "source tree not found from {}",
        root.display()
    );
    for file in &files {
        let source = std::fs::read_to_string(file).expect("read source");
        found.extend(trait_objects(file, &source));
    }
    assert!(found.is_empty(), "trait objects found: {found:#?}");
}

#[test]
fn the_dyn_finder_finds_trait_objects() {
    let found = trait_objects(
        Path::new("x.rs"),
        "fn f(_: &dyn Fn()) {}\nstruct S(Box<dyn Send>);",
    );
    assert_eq!(found, ["x.rs:1", "x.rs:2"]);
}
