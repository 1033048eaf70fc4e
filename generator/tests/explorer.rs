//! `aiperf-gen plugins`: snapshots of every view, AIPerf's manifests in the explorer, and
//! the promise that a built binary's `plugins` shows the same thing.
//!
//! The fixture packs are stable stand-ins (`aiperf-mini` built-in, `acme-endpoints` and
//! `globex` external), registered in that order so that every conflict rule shows:
//! acme's `chat` beats the built-in (external over built-in), globex's `chat` ties with
//! acme's (first registered keeps it, with a warning), globex's `completions` wins by
//! priority. Snapshots are at 80 columns; on a mismatch the new text is written to
//! `tests/snapshots/<name>.new` (or accepted with `AIPERF_UPDATE_SNAPSHOTS=1`).

use std::path::{Path, PathBuf};

use aiperf_gen::explorer::{catalog, validation};
use aiperf_gen::manifest::{render, LoadOptions};
use aiperf_gen::plan::BuildPlan;
use aiperf_gen::session::{Inputs, Session};
use aiperf_runtime::explorer::{Catalog, CategoryRow, EntryRow, PackRow, Style};

fn fixture(relative: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(relative)
        .to_string_lossy()
        .into_owned()
}

fn packs() -> Vec<String> {
    vec![
        fixture("explorer/aiperf-mini"),
        fixture("packs/acme-endpoints"),
        fixture("explorer/globex"),
    ]
}

fn session(packs: Vec<String>, categories: Option<String>) -> Session {
    let session = Session::load(&Inputs {
        categories: categories.map(PathBuf::from),
        packs,
        pack_paths: Vec::new(),
        options: LoadOptions::any_language(),
    });
    assert!(!session.has_errors(), "{}", render(&session.diagnostics));
    session
}

fn style() -> Style {
    Style {
        width: 80,
        command: "aiperf-gen plugins".to_owned(),
    }
}

fn check_snapshot(name: &str, actual: &str) {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    let expected = std::fs::read_to_string(&golden).unwrap_or_default();
    if expected == actual {
        return;
    }
    if std::env::var_os("AIPERF_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&golden, actual).expect("update snapshot");
        return;
    }
    let new = golden.with_extension("txt.new");
    std::fs::write(&new, actual).expect("write snapshot");
    panic!(
        "{name} differs from its snapshot; the new output is in {}",
        new.display()
    );
}

#[test]
fn views_of_the_fixture_packs() {
    let session = session(packs(), None);
    let catalog = catalog(&session);
    let style = style();
    let mut text = String::new();
    let mut show = |title: &str, body: Result<String, String>| {
        let (label, body) = match body {
            Ok(b) => ("stdout", b),
            Err(e) => ("stderr", format!("{e}\n")),
        };
        text.push_str(&format!(
            "$ aiperf-gen plugins {title}  # {label}\n{body}\n"
        ));
    };
    show("", Ok(catalog.render_packs(&style)));
    show("--all", Ok(catalog.render_all(&style)));
    show("endpoint", catalog.render_category("endpoint", &style));
    show(
        "arrival-pattern",
        catalog.render_category("arrival-pattern", &style),
    );
    show(
        "endpoint chat",
        catalog.render_entry("endpoint", "chat", &style),
    );
    show(
        "endpoint aiperf_mini::endpoints:ChatEndpoint",
        catalog.render_entry("endpoint", "aiperf_mini::endpoints:ChatEndpoint", &style),
    );
    show(
        "endpoint COMPLETIONS",
        catalog.render_entry("endpoint", "COMPLETIONS", &style),
    );
    show(
        "arrival_pattern concurrency_burst",
        catalog.render_entry("arrival_pattern", "concurrency_burst", &style),
    );
    show(
        "endpoint chatt",
        catalog.render_entry("endpoint", "chatt", &style),
    );
    show("endpont", catalog.render_category("endpont", &style));
    show("ramp", catalog.render_category("ramp", &style));
    check_snapshot("plugins_fixture_packs.txt", &text);
}

#[test]
fn the_tie_is_a_warning_naming_both_packs() {
    let session = session(packs(), None);
    let warnings: Vec<String> = session
        .diagnostics
        .iter()
        .map(|d| format!("{}: {}", d.code, d.message))
        .collect();
    assert_eq!(
        warnings,
        [
            "W0401: plugin conflict for endpoint:chat: acme-endpoints vs globex (priority 0); \
          keeping acme-endpoints"
        ]
    );
}

#[test]
fn aiperf_manifests_in_the_explorer() {
    let session = session(
        vec![fixture("aiperf-0.13.0")],
        Some(fixture("aiperf-0.13.0/categories.yaml")),
    );
    let catalog = catalog(&session);
    assert_eq!(catalog.registered_categories().len(), 35);
    assert_eq!(catalog.entries.len(), 270);
    assert!(catalog.entries.iter().all(|e| e.shadowed_by.is_none()));
    let style = style();
    let text = format!(
        "$ aiperf-gen plugins\n{}\n$ aiperf-gen plugins --all\n{}\n$ aiperf-gen plugins \
         endpoint\n{}\n$ aiperf-gen plugins endpoint chat\n{}",
        catalog.render_packs(&style),
        catalog.render_all(&style),
        catalog
            .render_category("endpoint", &style)
            .expect("endpoint"),
        catalog
            .render_entry("endpoint", "chat", &style)
            .expect("chat"),
    );
    check_snapshot("plugins_aiperf_0.13.0.txt", &text);
    // AIPerf's own view names the same counts.
    assert!(text.contains("│ aiperf  │ 0.13.0  │     270 │"), "{text}");

    // Its classes are Python: `--validate` lists every one and fails.
    let (report, ok) = validation(&session);
    assert!(!ok);
    let listed = report.lines().filter(|l| l.starts_with("  ")).count();
    assert_eq!(listed, 270 + 35 + 13);
    assert!(report.contains(
        "\n  endpoint:chat - `aiperf.endpoints.openai_chat:ChatEndpoint` is a Python class \
         path, not a Rust one\n"
    ));
    assert!(report.ends_with("\nValidation failed\n"));
}

/// What a generated binary knows about itself is what code generation put in its
/// statics: the plan. Build the catalog from the plan as `runtime::cli` builds it from
/// the statics, and compare every view with the generator's.
fn catalog_as_linked(plan: &BuildPlan) -> Catalog {
    Catalog {
        packs: plan
            .packs
            .iter()
            .map(|p| PackRow {
                name: p.name.clone(),
                version: p.version.clone(),
                description: p.description.clone(),
                builtin: p.builtin,
            })
            .collect(),
        categories: plan
            .categories
            .iter()
            .filter(|c| !c.entries.is_empty())
            .map(|c| CategoryRow {
                name: c.name.clone(),
                description: c.description.clone(),
            })
            .collect(),
        entries: plan
            .categories
            .iter()
            .flat_map(|c| c.entries.iter().map(move |e| (c, e)))
            .map(|(c, e)| EntryRow {
                category: c.name.clone(),
                name: e.name.clone(),
                class_path: e.class_path.clone(),
                pack: e.pack.clone(),
                priority: e.priority,
                description: e.description.clone(),
                metadata: serde_json::from_str(&e.metadata_json).expect("metadata JSON"),
                shadowed_by: e.shadowed_by.clone(),
            })
            .collect(),
    }
}

#[test]
fn the_binary_shows_what_the_generator_shows() {
    let (plan, _) = aiperf_gen::build::plan(&packs(), &[]).expect("the fixture packs plan");
    let linked = catalog_as_linked(&plan);
    let generator = catalog(&session(packs(), None));
    let style = style();
    assert_eq!(linked.render_packs(&style), generator.render_packs(&style));
    assert_eq!(linked.render_all(&style), generator.render_all(&style));
    for category in generator.registered_categories() {
        assert_eq!(
            linked.render_category(category, &style),
            generator.render_category(category, &style),
            "{category}"
        );
        for entry in generator.entries.iter().filter(|e| e.category == category) {
            for key in [&entry.name, &entry.class_path] {
                assert_eq!(
                    linked.render_entry(category, key, &style),
                    generator.render_entry(category, key, &style),
                    "{category} {key}"
                );
            }
        }
    }
}

#[test]
fn cli_prints_the_views_and_fails_on_unknown_names() {
    let run = |args: &[&str]| {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let code = aiperf_gen::cli::run(args.iter().map(Into::into), &mut out, &mut err);
        (
            code,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    };
    let packs = packs().join(",");
    let terminal = Style::for_terminal("aiperf-gen plugins");
    let catalog = catalog(&session(self::packs(), None));

    let (code, out, err) = run(&["aiperf-gen", "plugins", "--plugins", &packs, "--all"]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(out, catalog.render_all(&terminal));

    let (code, out, err) = run(&[
        "aiperf-gen",
        "plugins",
        "--plugins",
        &packs,
        "endpoint",
        "x",
    ]);
    // As `aiperf plugins`: shown on the output, exit 0 (1 is for an unknown category).
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(out, "Not found: endpoint:x\nAvailable: chat, completions\n");
    let (code, out, err) = run(&["aiperf-gen", "plugins", "--plugins", &packs, "nope", "x"]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.contains("nope"), "{err}");

    let (code, _, err) = run(&["aiperf-gen", "plugins", "--plugins", "no-such-pack"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("error[E0301]: no plugin pack named `no-such-pack`"),
        "{err}"
    );
}

#[test]
fn validate_view_passes_for_a_pack_whose_classes_exist() {
    let session = session(vec![fixture("check-class/acme-good")], None);
    let (text, ok) = validation(&session);
    assert!(ok, "{text}");
    assert_eq!(
        text,
        "Validating plugins...\n\n(OK) Class paths\n\n(OK) Metadata\n\nAll checks passed\n"
    );
}

#[test]
fn validate_view_lists_each_failing_class() {
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/invalid/check-class-missing-impl");
    let session = session(
        vec![case.join("plugins.yaml").to_string_lossy().into_owned()],
        Some(fixture("corpus/categories.yaml")),
    );
    let (text, ok) = validation(&session);
    assert!(!ok);
    assert_eq!(
        text,
        "Validating plugins...\n\n(FAIL) Class paths\n  endpoint:no_protocol - no `impl \
         EndpointProtocol for NoProtocol` in the sources of `acme_unimplemented` or \
         `aiperf_runtime`\n  endpoint:nothing - no `impl EndpointProtocol for Nothing` and no \
         `impl Plugin for Nothing` in the sources of `acme_unimplemented` or \
         `aiperf_runtime`\n  endpoint:wrong_protocol - no `impl EndpointProtocol for \
         WrongProtocol` in the sources of `acme_unimplemented` or `aiperf_runtime`\n\n(OK) \
         Metadata\n\nValidation failed\n"
    );
}
