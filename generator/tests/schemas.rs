//! The JSON Schemas: committed files match the Rust types, and AIPerf 0.13.0's own
//! manifests pass them.
//!
//! `schemas/*.schema.json` are generated (`aiperf-gen schema --out schemas`) and committed
//! so editors can use them. When the model types, the runtime's metadata types or
//! `runtime/categories.yaml` change, [`committed_schemas_match_the_types`] fails and writes
//! the new files next to the old ones as `*.new`; `AIPERF_UPDATE_SNAPSHOTS=1` rewrites them.

use std::path::{Path, PathBuf};

use aiperf_gen::manifest::schema::schema_files;
use aiperf_gen::manifest::yaml::{parse_yaml, YamlLimits};
use aiperf_gen::manifest::{
    categories_schema, load_categories_with, plugins_schema, render, LoadOptions,
};

fn repo(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

const AIPERF: &str = "generator/tests/fixtures/aiperf-0.13.0";

fn run(args: &[&str]) -> (u8, String, String) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = aiperf_gen::cli::run(args.iter().map(Into::into), &mut out, &mut err);
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

#[test]
fn committed_schemas_match_the_types() {
    let (categories, diagnostics) =
        load_categories_with(&repo("runtime/categories.yaml"), &LoadOptions::default());
    assert!(diagnostics.is_empty(), "{}", render(&diagnostics));
    let categories = categories.expect("runtime categories load");
    let update = std::env::var_os("AIPERF_UPDATE_SNAPSHOTS").is_some();
    let mut stale = Vec::new();
    for (name, generated) in schema_files(&categories) {
        let path = repo("schemas").join(name);
        if std::fs::read_to_string(&path).ok().as_deref() == Some(generated.as_str()) {
            continue;
        }
        if update {
            std::fs::write(&path, &generated).expect("update schema");
        } else {
            std::fs::write(path.with_extension("json.new"), &generated).expect("write .new");
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "{stale:?} differ from the Rust types; regenerate with `cargo run -p aiperf-gen -- \
         schema --out schemas` (the new contents are in *.json.new)"
    );
}

#[test]
fn schema_command_writes_both_files_and_checks_them() {
    let dir = std::env::temp_dir().join(format!("aiperf-gen-schema-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = dir.to_string_lossy().into_owned();
    let (code, stdout, stderr) = run(&["aiperf-gen", "schema", "--out", &out]);
    assert_eq!((code, stderr.as_str()), (0, ""));
    assert_eq!(
        stdout,
        format!("wrote {out}/categories.schema.json\nwrote {out}/plugins.schema.json\n")
    );
    for name in ["categories.schema.json", "plugins.schema.json"] {
        let written = std::fs::read_to_string(dir.join(name)).expect("written");
        let committed = std::fs::read_to_string(repo("schemas").join(name)).expect("committed");
        assert_eq!(written, committed, "{name}");
        let value: serde_json::Value = serde_json::from_str(&written).expect("JSON");
        assert_eq!(
            value["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        assert!(
            jsonschema::meta::is_valid(&value),
            "{name} is a valid 2020-12 schema"
        );
    }

    let (code, stdout, _) = run(&["aiperf-gen", "schema", "--out", &out, "--check"]);
    assert_eq!(code, 0);
    assert!(stdout.starts_with("unchanged "), "{stdout}");
    std::fs::write(dir.join("plugins.schema.json"), "{}\n").expect("tamper");
    let (code, _, stderr) = run(&["aiperf-gen", "schema", "--out", &out, "--check"]);
    assert_eq!(code, 1);
    assert_eq!(
        stderr,
        format!(
            "error: {out}/plugins.schema.json is out of date; regenerate it with `aiperf-gen \
             schema --out {out}`\n"
        )
    );
    // A check of a directory without the files says they are missing, and creates none.
    std::fs::remove_dir_all(&dir).expect("removed");
    let (code, _, stderr) = run(&["aiperf-gen", "schema", "--out", &out, "--check"]);
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with(&format!(
            "error: {out}/categories.schema.json is missing; regenerate it"
        )),
        "{stderr}"
    );
    assert!(!dir.exists());
    // A file where the directory belongs is named as one ("File exists", said create_dir_all).
    std::fs::write(&dir, "").expect("a file");
    let (code, stdout, stderr) = run(&["aiperf-gen", "schema", "--out", &out]);
    assert_eq!((code, stdout.as_str()), (2, ""));
    assert_eq!(
        stderr,
        format!(
            "error: cannot create {out}: it is a file; --out names the directory the two \
             schemas go into\n"
        )
    );
    std::fs::remove_file(&dir).expect("removed");
}

#[test]
fn plugins_schema_types_metadata_per_category() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo("schemas/plugins.schema.json")).expect("committed"),
    )
    .expect("JSON");
    let metadata_title = |def: &str| {
        schema["$defs"][def]["properties"]["metadata"]["title"]
            .as_str()
            .map(str::to_owned)
    };
    let typed: Vec<(&str, Option<String>)> = [
        "EndpointPlugin",
        "TransportPlugin",
        "PlotPlugin",
        "ServicePlugin",
        "CustomDatasetLoaderPlugin",
        "GpuTelemetryCollectorPlugin",
        "RecordProcessorPlugin",
        "TokenizerPlugin",
        "RampPlugin",
    ]
    .into_iter()
    .map(|d| (d, metadata_title(d)))
    .collect();
    assert_eq!(
        typed,
        [
            ("EndpointPlugin", Some("EndpointMetadata".into())),
            ("TransportPlugin", Some("TransportMetadata".into())),
            ("PlotPlugin", Some("PlotMetadata".into())),
            ("ServicePlugin", Some("ServiceMetadata".into())),
            (
                "CustomDatasetLoaderPlugin",
                Some("CustomDatasetLoaderMetadata".into())
            ),
            (
                "GpuTelemetryCollectorPlugin",
                Some("GpuTelemetryCollectorMetadata".into())
            ),
            (
                "RecordProcessorPlugin",
                Some("RecordProcessorMetadata".into())
            ),
            ("TokenizerPlugin", Some("TokenizerMetadata".into())),
            ("RampPlugin", None),
        ]
    );
    // Required-but-nullable, as AIPerf's `str | None` without a default.
    let endpoint = &schema["$defs"]["EndpointPlugin"]["properties"]["metadata"];
    assert_eq!(
        endpoint["properties"]["endpoint_path"]["type"],
        serde_json::json!(["string", "null"])
    );
    assert!(endpoint["required"]
        .as_array()
        .expect("required")
        .contains(&serde_json::json!("endpoint_path")));
}

/// AIPerf's manifests against the schemas alone, with no aiperf-gen rule on top: what an
/// editor with `# yaml-language-server: $schema=...` checks.
#[test]
fn aiperf_manifests_pass_the_json_schemas() {
    let read = |name: &str| {
        let path = repo(&format!("{AIPERF}/{name}"));
        let text = std::fs::read_to_string(&path).expect("fixture");
        let (doc, diagnostics) = parse_yaml(&text, &path, &YamlLimits::default());
        assert!(diagnostics.is_empty(), "{}", render(&diagnostics));
        doc.expect("parses").value
    };
    let categories_value = read("categories.yaml");
    let errors: Vec<String> = jsonschema::validator_for(&categories_schema())
        .expect("compiles")
        .iter_errors(&categories_value)
        .map(|e| e.to_string())
        .collect();
    assert_eq!(errors, Vec::<String>::new());

    let (categories, diagnostics) = load_categories_with(
        &repo(&format!("{AIPERF}/categories.yaml")),
        &LoadOptions::any_language(),
    );
    assert!(diagnostics.is_empty(), "{}", render(&diagnostics));
    let schema = plugins_schema(&categories.expect("AIPerf categories load"));
    // AIPerf's 13 metadata models all map to typed schemas.
    let typed = schema["$defs"]
        .as_object()
        .expect("defs")
        .values()
        .filter(|d| d["properties"]["metadata"].get("title").is_some())
        .count();
    assert_eq!(typed, 13);
    let plugins_value = read("plugins.yaml");
    let errors: Vec<String> = jsonschema::validator_for(&schema)
        .expect("compiles")
        .iter_errors(&plugins_value)
        .map(|e| e.to_string())
        .collect();
    assert_eq!(errors, Vec::<String>::new());
}

#[test]
fn aiperf_manifests_validate_and_fail_only_the_class_check() {
    let categories = format!("{AIPERF}/categories.yaml");
    let plugins = format!("{AIPERF}/plugins.yaml");
    let root = repo("");
    let cwd_args = |extra: &[&str]| {
        let mut args = vec!["aiperf-gen", "validate"];
        args.extend_from_slice(extra);
        args.push(&categories);
        args.push(&plugins);
        args.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()
    };
    // Paths are relative to the repository root; run from there through absolute paths.
    let abs = |args: Vec<String>| -> Vec<String> {
        args.into_iter()
            .map(|a| {
                if a.starts_with(AIPERF) {
                    root.join(&a).to_string_lossy().into_owned()
                } else {
                    a
                }
            })
            .collect()
    };
    let (code, stdout, stderr) = run(&abs(cwd_args(&[]))
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    assert_eq!(stderr, "");
    assert_eq!(
        (code, stdout.as_str()),
        (
            0,
            "2 files checked: 35 categories, 270 plugins in 1 pack; valid\n"
        )
    );

    let (code, stdout, stderr) = run(&abs(cwd_args(&["--check-class"]))
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    assert_eq!(code, 1);
    // One error per class path: 35 protocols, 13 metadata classes, 270 plugins.
    assert_eq!(
        stdout,
        "2 files checked: 35 categories, 270 plugins in 1 pack; invalid: 318 errors\n"
    );
    let codes: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.split_once(": error[").map(|(_, rest)| &rest[..5]))
        .collect();
    assert_eq!(codes.len(), 318);
    assert!(codes.iter().all(|c| *c == "E0203"), "{codes:?}");
    let first_entry = stderr
        .split("\n\n")
        .find(|d| d.contains("aiperf:service.api.class"))
        .expect("the first plugin's error");
    assert_eq!(
        first_entry.split_once(": ").map(|(_, rest)| rest),
        Some(
            "error[E0203]: `aiperf.api.api_service:FastAPIService` is a Python class path, not \
             a Rust one
  --> aiperf:service.api.class
   |
29 |     class: aiperf.api.api_service:FastAPIService
   |            ^
   = help: a Rust class path joins modules with `::`, as in \
             `aiperf::api::api_service:FastAPIService`, and names a type in a pack's crate"
        )
    );
}
