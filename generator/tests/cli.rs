//! `aiperf-gen` as CI runs it: exit codes, output formats, and the client cases BC-36 and
//! BC-37 end to end.

use std::path::{Path, PathBuf};

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

fn fixture(relative: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(relative)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn the_core_pack_is_valid_down_to_its_sources() {
    let (code, stdout, stderr) = run(&["aiperf-gen", "validate", "--check-class"]);
    assert_eq!((code, stderr.as_str()), (0, ""), "{stdout}");
    assert!(stdout.ends_with(" in 1 pack; valid\n"), "{stdout}");
    let (code, stdout, _) = run(&["aiperf-gen", "plugins", "--validate"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.ends_with("All checks passed\n"));
}

#[test]
fn exit_codes() {
    let good = fixture("fixtures/check-class/acme-good");
    let warning = fixture("invalid/misspelt-category/plugins.yaml");
    let corpus = fixture("fixtures/corpus/categories.yaml");
    let cases: [(&[&str], u8); 11] = [
        (&["validate", "--plugins", &good], 0),
        (&["validate", "--categories", &corpus, &warning], 0),
        (
            &[
                "validate",
                "--categories",
                &corpus,
                "--deny-warnings",
                &warning,
            ],
            1,
        ),
        (
            &["validate", &fixture("invalid/missing-class/plugins.yaml")],
            1,
        ),
        (&["validate", "--plugins", "no-such-pack"], 2),
        (&["validate", &fixture("no/such/plugins.yaml")], 2),
        (&["validate", "--format", "xml"], 2),
        (&["frobnicate"], 2),
        // `--static` is how cargo links; without a build it was dropped without a word.
        (&["build", "--no-build", "--static", "--plugins", "core"], 2),
        // `build` exits as `validate` does for the same manifests.
        (&["build", "--no-build", "--plugins", "no-such-pack"], 2),
        (
            &[
                "build",
                "--no-build",
                "--plugins",
                &fixture("invalid/missing-class/plugins.yaml"),
            ],
            1,
        ),
    ];
    for (args, expected) in cases {
        let mut full = vec!["aiperf-gen"];
        full.extend_from_slice(args);
        let (code, stdout, stderr) = run(&full);
        assert_eq!(code, expected, "{args:?}\n{stdout}{stderr}");
    }
    let (code, stdout, _) = run(&["aiperf-gen", "validate", "--help"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("--check-class"), "{stdout}");
}

/// A stream that takes `room` bytes and then fails as a full disk or a closed pipe does.
struct Failing {
    room: usize,
    kind: std::io::ErrorKind,
    taken: Vec<u8>,
}

impl std::io::Write for Failing {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.taken.len() + buf.len() > self.room {
            return Err(self.kind.into());
        }
        self.taken.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The verdict does not depend on whether the output could be written: an invalid
/// manifest exited 0 when its diagnostics met a full disk or a closed pipe (`| head -1`),
/// and `schema --check` of stale files did too. A full disk under a verdict of success is
/// a failure of its own (2); a reader that stopped early is not.
#[test]
fn a_failing_stream_keeps_the_exit_code() {
    use std::io::ErrorKind::{BrokenPipe, StorageFull};
    let invalid = fixture("invalid/missing-class/plugins.yaml");
    let good = fixture("fixtures/check-class/acme-good");
    let cases: [(&[&str], u8, u8); 4] = [
        (&["validate", &invalid], 1, 1),
        (&["validate", "--format", "json", &invalid], 1, 1),
        (&["validate", "--plugins", &good], 0, 2),
        (&["plugins", "--all"], 0, 2),
    ];
    for (args, verdict, when_full) in cases {
        for (kind, expected) in [(BrokenPipe, verdict), (StorageFull, when_full)] {
            let full: Vec<std::ffi::OsString> = std::iter::once("aiperf-gen")
                .chain(args.iter().copied())
                .map(Into::into)
                .collect();
            let mut out = Failing {
                room: 10,
                kind,
                taken: Vec::new(),
            };
            let mut err = Failing {
                room: 10,
                kind,
                taken: Vec::new(),
            };
            let code = aiperf_gen::cli::run(full, &mut out, &mut err);
            assert_eq!(code, expected, "{args:?} {kind:?}");
        }
    }
    // The full disk is said on the error stream, when it has room.
    let mut out = Failing {
        room: 0,
        kind: StorageFull,
        taken: Vec::new(),
    };
    let mut err = Vec::new();
    let args = ["aiperf-gen", "validate", "--plugins", &good];
    let code = aiperf_gen::cli::run(args.iter().map(Into::into), &mut out, &mut err);
    assert_eq!(code, 2);
    assert_eq!(
        String::from_utf8_lossy(&err),
        "error: cannot write the output: no storage space\n"
    );
}

/// A pack name found twice on the search path uses the first and names the other (an
/// older copy on `AIPERF_PACK_PATH` went unmentioned); a path picks the copy it names.
#[test]
fn a_pack_found_twice_names_the_one_not_used() {
    let root = std::env::temp_dir().join(format!("aiperf-gen-twice-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/packs/acme-endpoints");
    for copy in ["first", "second"] {
        let dir = root.join(copy).join("acme-endpoints");
        std::fs::create_dir_all(&dir).expect("mkdir");
        for file in ["Cargo.toml", "plugins.yaml"] {
            std::fs::copy(fixture.join(file), dir.join(file)).expect(file);
        }
    }
    let (first, second) = (root.join("first"), root.join("second"));
    let (first, second) = (
        first.to_str().expect("UTF-8"),
        second.to_str().expect("UTF-8"),
    );
    let args = [
        "aiperf-gen",
        "validate",
        "--pack-path",
        first,
        "--pack-path",
        second,
        "--plugins",
        "core,acme-endpoints",
    ];
    let (code, stdout, stderr) = run(&args);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.ends_with("in 2 packs; valid, 1 warning\n"),
        "{stdout}"
    );
    assert_eq!(
        stderr,
        format!(
            "{second}/acme-endpoints/Cargo.toml: warning[W0301]: pack `acme-endpoints` is also \
             at `{second}/acme-endpoints`; the one at `{first}/acme-endpoints`, found first on \
             the search path, is used\n  = help: to use another copy, pass its directory as a \
             path (`./path/to/pack`)\n\n"
        )
    );
    // The same directory twice on the path is one pack, and a path is no name to look up.
    let same = [
        "aiperf-gen",
        "validate",
        "--pack-path",
        first,
        "--pack-path",
        first,
        "--plugins",
        "core,acme-endpoints",
    ];
    assert_eq!(run(&same).2, "");
    let path = format!("{second}/acme-endpoints");
    let by_path = [
        "aiperf-gen",
        "validate",
        "--pack-path",
        first,
        "--plugins",
        "core",
        "--plugins",
        &path,
    ];
    let (code, _, stderr) = run(&by_path);
    assert_eq!((code, stderr.as_str()), (0, ""));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn valid_runs_in_every_format() {
    let good = fixture("fixtures/check-class/acme-good");
    let (code, stdout, stderr) = run(&["aiperf-gen", "validate", "--plugins", &good]);
    assert_eq!(
        (code, stdout.as_str(), stderr.as_str()),
        (
            0,
            "2 files checked: 26 categories, 7 plugins in 1 pack; valid\n",
            ""
        )
    );
    let (code, stdout, _) = run(&[
        "aiperf-gen",
        "validate",
        "--plugins",
        &good,
        "--format",
        "github",
    ]);
    assert_eq!(
        (code, stdout.as_str()),
        (
            0,
            "2 files checked: 26 categories, 7 plugins in 1 pack; valid\n"
        )
    );
    let (code, stdout, _) = run(&[
        "aiperf-gen",
        "validate",
        "--plugins",
        &good,
        "--format",
        "json",
    ]);
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(doc["status"], "valid");
    assert_eq!(doc["plugins"], 7);
    assert_eq!(doc["diagnostics"], serde_json::json!([]));
    assert_eq!(
        doc["packs"],
        serde_json::json!([{
            "name": "acme-good",
            "version": "2.0.0",
            "builtin": false,
            "manifest": format!("{good}/plugins.yaml"),
        }])
    );
}

/// BC-36: a pack declares a manifest it does not ship. Generation fails naming the
/// package, the declaration (our entry point: `[package.metadata.aiperf] plugins`) and the
/// expected path; nothing is generated.
#[test]
fn bc36_manifest_declared_but_not_shipped_fails_generation() {
    let pack = fixture("invalid/bc36-manifest-not-shipped");
    let out = std::env::temp_dir().join(format!("aiperf-gen-bc36-{}", std::process::id()));
    let crate_dir = out.join("crate");
    let (code, stdout, stderr) = run(&[
        "aiperf-gen",
        "build",
        "--plugins",
        &format!("core,{pack}"),
        "--out",
        &out.join("bin").to_string_lossy(),
        "--emit-crate",
        &crate_dir.to_string_lossy(),
        "--no-build",
    ]);
    // The pack cannot be read: 2, as `validate` exits for it.
    assert_eq!((code, stdout.as_str()), (2, ""));
    assert_eq!(
        stderr,
        format!(
            "{pack}/Cargo.toml: error[E0304]: plugin manifest of \
             package `acme-unshipped` not found: {pack}/Cargo.toml declares `plugins = \
             \"plugins.yaml\"`, but {pack}/plugins.yaml does not exist\n  = help: create the \
             file or fix the path; for a published package, make sure `include`/`exclude` in \
             Cargo.toml ship it\n\nerror: the manifests have errors; nothing was generated\n"
        )
    );
    assert!(!crate_dir.exists());
}

/// `--no-build` writes no binary, so it needs no `--out`; a build does, and says so.
#[test]
fn out_is_required_only_to_build() {
    let dir = std::env::temp_dir().join(format!("aiperf-gen-no-out-{}", std::process::id()));
    let crate_dir = dir.join("crate");
    let crate_arg = crate_dir.to_string_lossy().into_owned();
    let (code, stdout, stderr) = run(&[
        "aiperf-gen",
        "build",
        "--plugins",
        "core",
        "--emit-crate",
        &crate_arg,
        "--no-build",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with(&format!("generated crate: {crate_arg}\n")),
        "{stdout}"
    );
    assert!(crate_dir.join("Cargo.toml").exists());
    let (code, _, stderr) = run(&["aiperf-gen", "build", "--plugins", "core"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("the following required arguments were not provided:\n  --out <OUT>"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// BC-37: an external pack's `endpoint.chat` without metadata fails with the pack-prefixed
/// path; with metadata it wins over the built-in `chat` (same priority, external beats
/// built-in), the built-in is listed as shadowed, and `console_exporter` accepts an entry
/// without metadata.
#[test]
fn bc37_missing_metadata_then_external_beats_builtin() {
    let builtin = fixture("fixtures/explorer/aiperf-mini");
    let acme = fixture("fixtures/bc37/acme.yaml");
    let (code, _, stderr) = run(&["aiperf-gen", "validate", "--plugins", &builtin, &acme]);
    assert_eq!(code, 1);
    assert_eq!(
        stderr,
        format!(
            "{acme}:3:3: error[E0103]: `endpoint.chat` has no `metadata`, which category \
             `endpoint` requires\n --> acme:endpoint.chat.metadata\n  |\n3 |   chat:\n  |   \
             ^\n  = help: add `metadata:` with at least `endpoint_path`, `metrics_title`, \
             `produces_tokens`, `supports_streaming`, `tokenizes_input` \
             (`aiperf_runtime::metadata:EndpointMetadata`)\n\n"
        )
    );

    let fixed = fixture("fixtures/bc37/acme_fixed.yaml");
    let (code, stdout, stderr) = run(&["aiperf-gen", "validate", "--plugins", &builtin, &fixed]);
    assert_eq!((code, stderr.as_str()), (0, ""));
    assert_eq!(
        stdout,
        "3 files checked: 26 categories, 8 plugins in 2 packs; valid\n"
    );

    let packs = format!("{builtin},{fixed}");
    let (code, stdout, _) = run(&["aiperf-gen", "plugins", "--plugins", &packs, "endpoint"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("│ chat (shadowed) "), "{stdout}");
    assert!(
        stdout.contains("│ aiperf-mini: aiperf_mini::endpoints:ChatEndpoint"),
        "{stdout}"
    );
    let (code, stdout, _) = run(&["aiperf-gen", "plugins", "--plugins", &packs]);
    assert_eq!(code, 0);
    assert!(stdout.contains(
        "Conflicts:\n  endpoint:chat: acme_fixed (acme_endpoints::chat:AcmeChat) shadows\n    \
         aiperf-mini (aiperf_mini::endpoints:ChatEndpoint): external pack beats\n    built-in \
         at equal priority\n"
    ));
    let (plan, _) = aiperf_gen::build::plan(&[builtin, fixed], &[]).expect("plans");
    assert_eq!(
        plan.decisions,
        [
            "endpoint:chat: acme_fixed (acme_endpoints::chat:AcmeChat) shadows aiperf-mini \
          (aiperf_mini::endpoints:ChatEndpoint): external pack beats built-in at equal \
          priority"
        ]
    );
}

#[test]
fn build_requires_rust_class_paths() {
    let aiperf = fixture("fixtures/aiperf-0.13.0");
    let (code, _, stderr) = run(&[
        "aiperf-gen",
        "build",
        "--plugins",
        &aiperf,
        "--out",
        "unused",
        "--no-build",
    ]);
    assert_eq!(code, 1);
    assert!(stderr.ends_with("\n\nerror: the manifests have errors; nothing was generated\n"));
    // Validated against the runtime's categories, AIPerf's plugins file also names
    // categories the runtime does not define (warnings) and Python classes (errors).
    assert_eq!(stderr.matches("error[E0203]").count(), 270, "{stderr}");
}

/// `build` runs the class checks of `validate --check-class` before generating: a pack
/// whose classes name a missing module, a private type or a type without its protocol's
/// impl stops it with the same diagnostics, and no crate is written, so cargo never gets
/// to report them as rustc errors in generated code.
#[test]
fn build_checks_classes_against_the_sources_first() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/check-class");
    let out = std::env::temp_dir().join(format!("aiperf-gen-broken-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let crate_dir = out.join("crate");
    let diagnostics = "\
./acme-broken/plugins.yaml:3:12: error[E0205]: cannot find module `endpoint` in `acme_broken` \
(class path `acme_broken::endpoint:Fast`)
 --> acme-broken:endpoint.fast.class
  |
3 |     class: acme_broken::endpoint:Fast
  |            ^
  = help: did you mean `endpoints`?

./acme-broken/plugins.yaml:6:12: error[E0207]: no `impl EndpointProtocol for Unimplemented` in \
the sources of `acme_broken` or `aiperf_runtime`
 --> acme-broken:endpoint.unimplemented.class
  |
6 |     class: acme_broken::endpoints:Unimplemented
  |            ^
  = help: the generated crate uses `acme_broken::endpoints::Unimplemented` through \
`aiperf_runtime::protocols::EndpointProtocol`

./acme-broken/plugins.yaml:10:12: error[E0208]: `acme_broken::endpoints:Secret` is not reachable \
from the generated crate: `acme_broken::endpoints::Secret` is not `pub`
  --> acme-broken:arrival_pattern.secret.class
   |
10 |     class: acme_broken::endpoints:Secret
   |            ^
   = help: the generated crate names the type from outside its crate; make the item, each \
module on the way and any re-export `pub`";
    let (code, _, stderr) = run_in(
        &dir,
        &[
            "validate",
            "--check-class",
            "--plugins",
            "core,./acme-broken",
        ],
    );
    assert_eq!((code, stderr), (1, format!("{diagnostics}\n\n")));

    let (code, stdout, stderr) = run_in(
        &dir,
        &[
            "build",
            "--plugins",
            "core,./acme-broken",
            "--out",
            &out.join("bin").to_string_lossy(),
            "--emit-crate",
            &crate_dir.to_string_lossy(),
        ],
    );
    assert_eq!((code, stdout.as_str()), (1, ""), "{stderr}");
    assert_eq!(
        stderr,
        format!("{diagnostics}\n\nerror: the manifests have errors; nothing was generated\n")
    );
    assert!(!out.exists(), "{} was written", out.display());
}

/// `validate` loads the entries of a manifest that have no errors, to check them too;
/// `build` must still refuse the manifest, not generate a binary without the entry that
/// failed.
#[test]
fn build_refuses_a_manifest_with_one_bad_entry() {
    let pack = fixture("invalid/check-class-partial-manifest");
    let out = std::env::temp_dir().join(format!("aiperf-gen-partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let crate_dir = out.join("crate");
    let (code, stdout, stderr) = run(&[
        "aiperf-gen",
        "build",
        "--plugins",
        &format!("core,{pack}"),
        "--out",
        &out.join("bin").to_string_lossy(),
        "--emit-crate",
        &crate_dir.to_string_lossy(),
        "--no-build",
    ]);
    assert_eq!((code, stdout.as_str()), (1, ""), "{stderr}");
    assert!(
        stderr.contains("error[E0201]: invalid class path `not a path`: unexpected space"),
        "{stderr}"
    );
    assert!(
        stderr.ends_with("\n\nerror: the manifests have errors; nothing was generated\n"),
        "{stderr}"
    );
    assert!(!out.exists(), "{} was written", out.display());
    assert!(aiperf_gen::build::plan(&["core".to_owned(), pack], &[]).is_err());
}

/// A warning from the manifests is shown once by `build`, which then goes on.
#[test]
fn build_shows_each_warning_once() {
    let dir = pack_with_a_warning("warn-once");
    let (code, _, stderr) = run_in(
        &dir,
        &[
            "build",
            "--plugins",
            "core,./acme-good",
            "--out",
            "bin",
            "--emit-crate",
            "crate",
            "--no-build",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stderr.matches("warning[W0105]").count(), 1, "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// In GitHub's format a warning is a `::warning` annotation, and an `::error` one when
/// `--deny-warnings` makes it fail the check.
#[test]
fn github_annotations_follow_deny_warnings() {
    let dir = pack_with_a_warning("gh-warn");
    for (deny, code, kind) in [(false, 0, "::warning "), (true, 1, "::error ")] {
        let mut args = vec!["validate", "--plugins", "./acme-good", "--format", "github"];
        if deny {
            args.push("--deny-warnings");
        }
        let (got, stdout, stderr) = run_in(&dir, &args);
        assert_eq!(got, code, "{stdout}{stderr}");
        let annotation = stdout.lines().next().unwrap_or_default();
        assert!(annotation.starts_with(kind), "{stdout}");
        assert!(annotation.contains("title=W0105"), "{stdout}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fresh directory holding `acme-good`, a valid pack, with one metadata key its
/// category does not define: a manifest that validates with one warning (W0105).
fn pack_with_a_warning(name: &str) -> PathBuf {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/check-class");
    let dir = std::env::temp_dir().join(format!("aiperf-gen-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let pack = dir.join("acme-good");
    copy_dir(&fixtures.join("acme-good"), &pack);
    let manifest = pack.join("plugins.yaml");
    let yaml = std::fs::read_to_string(&manifest).expect("manifest");
    let yaml = yaml.replacen(
        "{transport_type: http}",
        "{transport_type: http, bogus: 1}",
        1,
    );
    std::fs::write(&manifest, yaml).expect("manifest");
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// `aiperf-gen ARGS` run in `dir`, for rules that depend on the current directory.
fn run_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_aiperf-gen"))
        .args(args)
        .current_dir(dir)
        .env_remove("AIPERF_PACK_PATH")
        .output()
        .expect("run aiperf-gen");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A bare `--plugins` name is a pack first: a file or directory of that name in the
/// current directory (a core dump is called `core`) does not shadow it. A path-shaped
/// argument reads the path, and a bare name no pack has falls back to a pack directory
/// there, shown by its absolute path.
#[test]
fn a_bare_pack_name_is_a_pack_before_a_path() {
    let dir = std::env::temp_dir().join(format!("aiperf-gen-bare-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("mine")).unwrap();
    std::fs::write(dir.join("core"), "not: [a, manifest\n").unwrap();
    let acme = fixture("fixtures/check-class/acme-good/plugins.yaml");
    std::fs::copy(&acme, dir.join("mine").join("plugins.yaml")).unwrap();

    // The name wins over the file, for every command that takes packs.
    let (code, stdout, stderr) = run_in(&dir, &["validate", "--plugins", "core"]);
    assert_eq!((code, stderr.as_str()), (0, ""), "{stdout}");
    assert!(stdout.ends_with(" in 1 pack; valid\n"), "{stdout}");
    let (code, stdout, stderr) = run_in(&dir, &["plugins", "--plugins", "core", "endpoint"]);
    assert_eq!((code, stderr.as_str()), (0, ""), "{stdout}");
    let out = dir.join("bin");
    let out = out.to_str().unwrap();
    let args = [
        "build",
        "--plugins",
        "core",
        "--no-build",
        "--out",
        out,
        "--emit-crate",
        out,
    ];
    let (code, stdout, stderr) = run_in(&dir, &args);
    assert_eq!(code, 0, "{stdout}{stderr}");

    // A path reads the file, and the error names it.
    let (code, _, stderr) = run_in(&dir, &["validate", "--plugins", "./core"]);
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.starts_with("./core:2:1: error[E0003]"), "{stderr}");

    // No pack is called `mine`: the pack directory of that name is used, by its full path.
    let (code, stdout, stderr) = run_in(&dir, &["validate", "--plugins", "mine"]);
    assert_eq!((code, stderr.as_str()), (0, ""), "{stdout}");
    assert!(stdout.ends_with(" in 1 pack; valid\n"), "{stdout}");
    std::fs::write(dir.join("mine").join("plugins.yaml"), "schema_version: [\n").unwrap();
    let (code, _, stderr) = run_in(&dir, &["validate", "--plugins", "mine"]);
    assert_ne!(code, 0, "{stderr}");
    let full = dir.join("mine").join("plugins.yaml");
    assert!(
        stderr.starts_with(&format!("{}:", full.display())),
        "{stderr}"
    );

    // A bare name that is only a file in the current directory is never read.
    std::fs::write(dir.join("stray"), "x").unwrap();
    let (code, _, stderr) = run_in(&dir, &["validate", "--plugins", "stray"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("no plugin pack named `stray`")
            && stderr.contains(&format!(
                "`{}` is not a pack directory",
                dir.join("stray").display()
            )),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--emit-crate` writes only where nothing of the user's can be lost: an absent or
/// empty directory, or one holding an earlier generated crate. A plugin pack or another
/// crate is refused with its reason, and left exactly as it was.
#[test]
fn emit_crate_never_overwrites_a_directory_it_did_not_generate() {
    let base = std::env::temp_dir().join(format!("aiperf-gen-emit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let build = |dir: &Path| {
        run(&[
            "aiperf-gen",
            "build",
            "--plugins",
            "core",
            "--out",
            &base.join("bin").to_string_lossy(),
            "--emit-crate",
            &dir.to_string_lossy(),
            "--no-build",
        ])
    };
    let fresh = base.join("fresh");
    assert_eq!(build(&fresh).0, 0, "an absent directory is created");
    assert_eq!(
        build(&fresh).0,
        0,
        "an earlier generated crate is regenerated"
    );

    let project = base.join("project");
    std::fs::create_dir_all(project.join("src")).expect("project dir");
    let manifest = "[package]\nname = \"mine\"\nversion = \"0.1.0\"\n";
    std::fs::write(project.join("Cargo.toml"), manifest).expect("Cargo.toml");
    std::fs::write(project.join("src/main.rs"), "fn main() {}\n").expect("main.rs");
    let (code, stdout, stderr) = build(&project);
    assert_eq!((code, stdout.as_str()), (2, ""));
    assert!(
        stderr.contains(&format!(
            "{} holds files that aiperf-gen did not generate (a Cargo.toml of another \
             crate); the crate goes into an empty directory or one that holds an earlier \
             generated crate, so nothing of yours is overwritten: pick another --emit-crate \
             directory",
            project.display()
        )),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(project.join("Cargo.toml")).expect("kept"),
        manifest
    );
    assert_eq!(
        std::fs::read_to_string(project.join("src/main.rs")).expect("kept"),
        "fn main() {}\n"
    );
    assert!(!project.join("README.md").exists());

    let pack = base.join("pack");
    std::fs::create_dir_all(&pack).expect("pack dir");
    std::fs::write(pack.join("plugins.yaml"), "schema_version: \"1.0\"\n").expect("pack");
    let (code, _, stderr) = build(&pack);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("(a plugins.yaml: it is a plugin pack)"),
        "{stderr}"
    );

    let notes = base.join("notes");
    std::fs::create_dir_all(&notes).expect("notes dir");
    std::fs::write(notes.join("todo.txt"), "keep me").expect("notes");
    let (code, _, stderr) = build(&notes);
    assert_eq!(code, 2);
    assert!(stderr.contains("did not generate (todo.txt)"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(notes.join("todo.txt")).expect("kept"),
        "keep me"
    );
    let _ = std::fs::remove_dir_all(&base);
}

/// Two packs that are the same Cargo package in two places would give the generated crate
/// two dependencies of one name: `validate` (and so `build`) says so, naming both.
#[test]
fn two_packs_of_one_package_name_are_refused_naming_both() {
    let base = std::env::temp_dir().join(format!("aiperf-gen-dup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let good = Path::new(&fixture("fixtures/check-class/acme-good")).to_owned();
    let copy = |to: &Path| {
        let mut stack = vec![(good.clone(), to.to_owned())];
        while let Some((from, to)) = stack.pop() {
            std::fs::create_dir_all(&to).expect("dir");
            for entry in std::fs::read_dir(&from).expect("fixture").flatten() {
                let target = to.join(entry.file_name());
                if entry.path().is_dir() {
                    stack.push((entry.path(), target));
                } else {
                    std::fs::copy(entry.path(), target).expect("copy");
                }
            }
        }
    };
    let (x, y) = (base.join("x"), base.join("y"));
    copy(&x);
    copy(&y);
    let packs = format!("core,{},{}", x.display(), y.display());
    let (code, stdout, stderr) = run(&["aiperf-gen", "validate", "--plugins", &packs]);
    assert_eq!(code, 1, "{stdout}");
    let stdout = stdout + &stderr;
    assert!(
        stdout.contains(&format!(
            "{}: error[E0306]: two packs are both the Cargo package `acme-good`: {} and {}",
            y.join("Cargo.toml").display(),
            x.display(),
            y.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("give one of them another `[package] name`"),
        "{stdout}"
    );
    // Naming one pack twice is still one pack.
    let once = format!("core,{},{}", x.display(), x.display());
    let (code, stdout, _) = run(&["aiperf-gen", "validate", "--plugins", &once]);
    assert_eq!(code, 0, "{stdout}");
    let _ = std::fs::remove_dir_all(&base);
}

/// A doubled comma in `--plugins` is named as such, not as a pack called ``.
#[test]
fn an_empty_pack_name_is_named_as_such() {
    let (code, stdout, stderr) = run(&["aiperf-gen", "validate", "--plugins", "core,,core"]);
    assert_eq!(code, 2, "{stdout}");
    assert!(
        stderr.starts_with(
            "--plugins: error[E0301]: an empty pack name in --plugins (a doubled or trailing \
             comma?)"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("no plugin pack named ``"), "{stderr}");
}

/// Spaces after the commas of `--plugins` are not part of the names.
#[test]
fn pack_names_are_trimmed() {
    let good = fixture("fixtures/check-class/acme-good");
    let list = format!("core, {good} ");
    let (code, stdout, stderr) = run(&["aiperf-gen", "validate", "--plugins", &list]);
    assert_eq!((code, stderr.as_str()), (0, ""), "{stdout}");
    assert!(stdout.ends_with(" in 2 packs; valid\n"), "{stdout}");
}

/// Something that exists but is neither a directory nor a regular file is named as such,
/// not as missing, whether given as a pack or as a file to validate.
#[cfg(unix)]
#[test]
fn a_device_is_not_a_pack() {
    for args in [&["--plugins", "/dev/null"][..], &["/dev/null"]] {
        let mut full = vec!["aiperf-gen", "validate"];
        full.extend_from_slice(args);
        let (code, stdout, stderr) = run(&full);
        assert_eq!(code, 2, "{stdout}");
        assert_eq!(
            stderr,
            "/dev/null: error[E0301]: `/dev/null` is not a plugin pack: neither a directory \
             nor a manifest file\n\n",
        );
    }
}

/// What is wrong with a path that is not a readable file is said: a loop of links, a link
/// to nothing, a directory (all read "no such file" or "does not exist" before).
#[cfg(unix)]
#[test]
fn unreadable_manifests_say_why() {
    let dir = std::env::temp_dir().join(format!("aiperf-gen-unreadable-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("dangling")).expect("mkdir");
    let link = |to: &str, at: &str| {
        std::os::unix::fs::symlink(to, dir.join(at)).expect("symlink");
    };
    link("loop2.yaml", "loop1.yaml");
    link("loop1.yaml", "loop2.yaml");
    link("/nonexistent/plugins.yaml", "dangling/plugins.yaml");
    let pack = dir.join("acme");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/check-class/acme-good"),
        &pack,
    );
    let cargo = std::fs::read_to_string(pack.join("Cargo.toml")).expect("Cargo.toml");
    std::fs::write(
        pack.join("Cargo.toml"),
        cargo.replace("plugins = \"plugins.yaml\"", "plugins = \"src\""),
    )
    .expect("Cargo.toml");
    let (_, _, stderr) = run_in(&dir, &["validate", "loop1.yaml"]);
    assert!(
        stderr.starts_with(
            "loop1.yaml: error[E0001]: cannot read `loop1.yaml`: Too many levels of symbolic links"
        ),
        "{stderr}"
    );
    let (code, _, stderr) = run_in(&dir, &["validate", "--plugins", "./dangling"]);
    assert_eq!(code, 2);
    assert!(
        stderr.starts_with(
            "./dangling/plugins.yaml: error[E0001]: cannot read `./dangling/plugins.yaml`: a \
             symbolic link to nothing\n"
        ),
        "{stderr}"
    );
    link("/nonexistent/pack", "gone");
    let (code, _, stderr) = run_in(&dir, &["validate", "--plugins", "./gone"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("plugin pack directory `./gone` is a symbolic link to nothing"),
        "{stderr}"
    );
    let (code, _, stderr) = run_in(&dir, &["validate", "--plugins", "./acme"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("declares `plugins = \"src\"`, but ./acme/src is a directory\n"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A bare manifest (no Cargo package around it) validates, but `build` cannot link it as
/// a crate: it says so before cargo runs (cargo failed on the missing Cargo.toml).
#[test]
fn build_refuses_a_bare_manifest() {
    let dir = std::env::temp_dir().join(format!("aiperf-gen-bare-manifest-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("mini")).expect("mkdir");
    std::fs::write(
        dir.join("mini/plugins.yaml"),
        "schema_version: \"1.0\"\nendpoint:\n  mychat:\n    class: \
         aiperf_core::endpoints:ChatEndpoint\n    metadata: {endpoint_path: /v1/x, \
         supports_streaming: true, produces_tokens: true, tokenizes_input: true, \
         metrics_title: L}\n",
    )
    .expect("manifest");
    let (code, stdout, stderr) = run_in(&dir, &["validate", "--plugins", "core,./mini"]);
    assert_eq!((code, stderr.as_str()), (0, ""), "{stdout}");
    let (code, _, stderr) = run_in(
        &dir,
        &[
            "build",
            "--plugins",
            "core,./mini",
            "--no-build",
            "--emit-crate",
            "out",
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("error: pack `mini` is a manifest with no Cargo package around it"),
        "{stderr}"
    );
    assert!(!dir.join("out").exists(), "nothing is generated");
    let _ = std::fs::remove_dir_all(&dir);
}
