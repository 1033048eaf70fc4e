//! Hostile input: whatever a manifest or a pack's sources contain, the generator answers
//! with diagnostics, never a panic, a hang, or code it did not mean to generate.
//!
//! The corpus (`tests/invalid/`) has one case per kind of bad manifest with its exact
//! output; these tests cover what a corpus file cannot hold (50 MB inputs, generated
//! crates, randomly damaged manifests, pack sources that point anywhere).

use std::path::{Path, PathBuf};

use aiperf_gen::build::{build, BuildError, BuildOptions};
use aiperf_gen::manifest::diagnostic::codes;
use aiperf_gen::manifest::yaml::{decode_source, YamlLimits};
use aiperf_gen::manifest::{load_categories, render, LoadOptions, PluginsLoader};
use syn::visit::Visit;

/// A scratch directory unique to this test process and `name`.
fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("aiperf-gen-hostile-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Writes a pack (`Cargo.toml`, `plugins.yaml`, sources) under `dir`.
fn write_pack(dir: &Path, name: &str, manifest: &str, sources: &[(&str, &str)]) {
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [package.metadata.aiperf]\nplugins = \"plugins.yaml\"\n"
        ),
    )
    .expect("Cargo.toml");
    std::fs::write(dir.join("plugins.yaml"), manifest).expect("plugins.yaml");
    for (path, text) in sources {
        let file = dir.join(path);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("source dir");
        std::fs::write(file, text).expect("source");
    }
}

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

fn build_options(packs: Vec<String>, dir: &Path) -> BuildOptions {
    BuildOptions {
        packs,
        out: dir.join("bin"),
        emit_crate: Some(dir.join("crate")),
        pack_paths: Vec::new(),
        target_dir: None,
        no_build: true,
        static_binary: false,
    }
}

#[test]
fn code_in_a_class_path_never_reaches_a_generated_crate() {
    for (case, class) in [
        (
            "injection",
            "\"a::b:C; fn main() { std::process::exit(1) }\"",
        ),
        ("python", "evil.module:Evil"),
        ("traversal", "../../src:Evil"),
        ("keyword", "evil::fn:Evil"),
    ] {
        let dir = scratch(case);
        let pack = dir.join("pack");
        std::fs::create_dir_all(&pack).expect("pack dir");
        write_pack(
            &pack,
            "evil-pack",
            &format!("arrival_pattern:\n  evil:\n    class: {class}\n"),
            &[],
        );
        let options = build_options(vec!["core".into(), pack.display().to_string()], &dir);
        let Err(BuildError::Invalid(text, unreadable)) = build(&options) else {
            panic!("{case}: the build went ahead");
        };
        assert!(!unreadable, "{case}: every file was read");
        let expected = if case == "python" || case == "keyword" {
            codes::NOT_RUST_CLASS_PATH
        } else {
            codes::INVALID_CLASS_PATH
        };
        assert!(
            text.contains(&format!("error[{expected}]")),
            "{case}: {text}"
        );
        assert!(!dir.join("crate").exists(), "{case}: a crate was written");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Every string literal in a Rust file.
fn string_literals(code: &str) -> (Vec<String>, usize) {
    struct Strings(Vec<String>, usize);
    impl<'ast> Visit<'ast> for Strings {
        fn visit_lit_str(&mut self, lit: &'ast syn::LitStr) {
            self.0.push(lit.value());
        }
        fn visit_item_fn(&mut self, item: &'ast syn::ItemFn) {
            self.1 += 1;
            syn::visit::visit_item_fn(self, item);
        }
    }
    let file = syn::parse_file(code).expect("generated code parses");
    let mut strings = Strings(Vec::new(), 0);
    strings.visit_file(&file);
    (strings.0, strings.1)
}

#[test]
fn descriptions_and_metadata_reach_generated_code_as_escaped_literals() {
    let dir = scratch("escaping");
    let pack = dir.join("pack");
    std::fs::create_dir_all(&pack).expect("pack dir");
    let description = "Quotes \" and \\ backslashes, */ comment ends, a newline\n\"); \
                       fn injected() {} //, #![no_std], \u{202e}bidi, {{braces}}";
    let metadata_value = "\"#; r#\"raw\"#";
    let manifest = format!(
        "arrival_pattern:\n  evil-name:\n    class: evil_pack::arrival:Evil\n    description: \
         {}\n    metadata:\n      note: {}\n",
        serde_json::to_string(description).expect("json"),
        serde_json::to_string(metadata_value).expect("json"),
    );
    write_pack(&pack, "evil-pack", &manifest, &[]);
    let (plan, diagnostics) =
        aiperf_gen::build::plan(&["core".into(), pack.display().to_string()], &[])
            .expect("the manifest is valid");
    assert!(!aiperf_gen::manifest::has_errors(&diagnostics));
    let main = aiperf_gen::codegen::generate_main(&plan).expect("generated");
    let (strings, functions) = string_literals(&main);
    assert!(
        strings.iter().any(|s| s == description),
        "description kept verbatim"
    );
    let metadata = strings
        .iter()
        .find(|s| s.contains("raw"))
        .expect("metadata literal");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(metadata).expect("metadata is JSON")["note"],
        metadata_value
    );
    // Only the generated `main` and the trait methods inside impls are functions; a
    // free `fn injected` would be a second top-level fn.
    let top_level_fns = syn::parse_file(&main)
        .expect("parses")
        .items
        .iter()
        .filter(|i| matches!(i, syn::Item::Fn(_)))
        .count();
    assert_eq!(top_level_fns, 1);
    assert!(functions >= 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_50_megabyte_manifest_is_refused_without_reading_it_all() {
    let dir = scratch("huge");
    let path = dir.join("plugins.yaml");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&path).expect("create");
        let line = format!("# {}\n", "x".repeat(1021));
        for _ in 0..(50 << 10) {
            file.write_all(line.as_bytes()).expect("write");
        }
    }
    assert!(std::fs::metadata(&path).expect("size").len() >= 50 << 20);
    let path_text = path.display().to_string();
    let pack = dir
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let (code, stdout, stderr) = run(&["aiperf-gen", "validate", &path_text]);
    assert_eq!(code, 1, "{stdout}");
    assert_eq!(
        stderr,
        format!(
            "{path_text}: error[E0008]: file is larger than 8388608 bytes\n --> {pack}\n  = \
             help: manifests are small; check that this is the intended file\n\n"
        )
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn deep_nesting_and_alias_bombs_through_the_command_line() {
    let dir = scratch("nesting");
    let deep = dir.join("deep.yaml");
    std::fs::write(&deep, "a: ".to_owned() + &"[".repeat(1_000_000)).expect("write");
    let bomb = dir.join("bomb.yaml");
    let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for (prev, name) in "abcdefghijklmno".chars().zip("bcdefghijklmnop".chars()) {
        let refs = vec![format!("*{prev}"); 10].join(", ");
        text.push_str(&format!("{name}: &{name} [{refs}]\n"));
    }
    std::fs::write(&bomb, text).expect("write");
    for file in [&deep, &bomb] {
        let file = file.display().to_string();
        let (code, _, stderr) = run(&["aiperf-gen", "validate", &file]);
        assert_eq!(code, 1);
        assert!(stderr.contains("error[E0008]"), "{stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A small deterministic generator for the mutation test (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A partial load keeps no entry that an error is at or under, nor one in a category that
/// has an error of its own (told by the YAML paths of the diagnostics, independently of
/// how the loader tracks them). Names that a YAML path would quote are not checked.
fn assert_only_sound_entries_kept(
    kept: Option<&aiperf_gen::manifest::PluginsManifest>,
    diagnostics: &[aiperf_gen::manifest::Diagnostic],
) {
    let plain = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    };
    let errors: Vec<&str> = diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.yaml_path.as_str())
        .collect();
    for (category, entries) in kept.map(|m| m.categories.iter()).into_iter().flatten() {
        let at_category = format!("damaged:{category}");
        assert!(
            !plain(category) || !errors.contains(&at_category.as_str()),
            "{at_category} kept: {}",
            render(diagnostics)
        );
        for (name, _) in entries.iter().filter(|(n, _)| plain(n) && plain(category)) {
            let entry = format!("{at_category}.{name}");
            let hit = errors.iter().find(|p| {
                p.strip_prefix(entry.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
            });
            assert!(hit.is_none(), "{entry} kept: {}", render(diagnostics));
        }
    }
}

#[test]
fn randomly_damaged_manifests_only_ever_produce_diagnostics() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (categories, d) = load_categories(&root.join("tests/fixtures/corpus/categories.yaml"));
    assert!(d.is_empty(), "{}", render(&d));
    let categories = categories.expect("categories");
    let loader = PluginsLoader::new(&categories, LoadOptions::any_language());
    let partial = PluginsLoader::new(
        &categories,
        LoadOptions {
            keep_valid: true,
            ..LoadOptions::any_language()
        },
    );
    let original =
        std::fs::read(root.join("tests/fixtures/aiperf-0.13.0/plugins.yaml")).expect("fixture");
    // The first 300 lines hold every shape the file has (services, endpoints, metadata).
    let cut = original
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(300)
        .map_or(original.len(), |(i, _)| i + 1);
    let base = &original[..cut];
    let junk: [&[u8]; 12] = [
        b"&", b"*", b"!", b":", b"{", b"[", b"\t", b"\xff", b"<<: ", b"- ", b"\"", b"\n  ",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut outcomes = [0usize; 2];
    for _ in 0..250 {
        let mut bytes = base.to_vec();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(bytes.len());
            match rng.below(4) {
                0 => bytes[at] ^= 1 << rng.below(8),
                1 => {
                    let end = (at + rng.below(80)).min(bytes.len());
                    bytes.drain(at..end);
                }
                2 => {
                    let piece = junk[rng.below(junk.len())];
                    bytes.splice(at..at, piece.iter().copied());
                }
                _ => {
                    let end = (at + rng.below(200)).min(bytes.len());
                    let copy = bytes[at..end].to_vec();
                    bytes.splice(at..at, copy);
                }
            }
        }
        let path = Path::new("damaged.yaml");
        let result = decode_source(bytes, path, &YamlLimits::default()).map(|text| {
            (
                loader.load_str(&text, path, "damaged"),
                partial.load_str(&text, path, "damaged"),
            )
        });
        match result {
            Err(d) => {
                assert!(d.is_error());
                outcomes[1] += 1;
            }
            Ok(((manifest, diagnostics), (kept, kept_diagnostics))) => {
                let failed = aiperf_gen::manifest::has_errors(&diagnostics);
                assert_eq!(manifest.is_none(), failed, "{}", render(&diagnostics));
                assert_eq!(kept_diagnostics, diagnostics);
                if !failed {
                    assert_eq!(kept, manifest);
                }
                assert_only_sound_entries_kept(kept.as_ref(), &diagnostics);
                // Every diagnostic renders, positions included.
                let _ = render(&diagnostics);
                outcomes[usize::from(failed)] += 1;
            }
        }
    }
    assert!(outcomes[1] > 100, "most damage is detected: {outcomes:?}");
}

#[test]
fn pack_sources_that_point_anywhere_are_diagnostics() {
    let dir = scratch("sources");
    write_pack(
        &dir,
        "acme-loops",
        "arrival_pattern:\n  steady:\n    class: acme_loops::again:Steady\n",
        &[(
            "src/lib.rs",
            "#[path = \"lib.rs\"]\npub mod again;\n#[path = \"/dev/zero\"]\npub mod zero;\n\
             #[path = \"../../../../../../../../etc/hostname\"]\npub mod outside;\n",
        )],
    );
    let manifest = dir.join("plugins.yaml").display().to_string();
    let (code, _, stderr) = run(&["aiperf-gen", "validate", "--check-class", &manifest]);
    assert_eq!(code, 1, "{stderr}");
    let source_errors = stderr.matches("error[E0209]").count();
    assert!(source_errors >= 2, "{stderr}");
    assert!(
        stderr.contains("is read more than once"),
        "a module that includes itself is cut off: {stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn terminal_escapes_in_descriptions_are_not_printed_raw() {
    let dir = scratch("escapes");
    write_pack(
        &dir,
        "acme-ansi",
        "arrival_pattern:\n  loud:\n    class: acme_ansi::a:Loud\n    description: \
         \"\\e[2J\\e[31mcleared\\e]0;title\\a\"\n",
        &[],
    );
    let pack = dir.display().to_string();
    let (code, stdout, stderr) = run(&[
        "aiperf-gen",
        "plugins",
        "--plugins",
        &pack,
        "arrival_pattern",
        "loud",
    ]);
    assert_eq!((code, stderr.as_str()), (0, ""));
    assert!(!stdout.contains('\u{1b}'), "{stdout}");
    assert!(stdout.contains("\\u{1b}[2J\\u{1b}[31mcleared"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// An `--out` the binary cannot be written to is refused before cargo runs (minutes on a
/// fresh machine), naming why: a directory (it used to fail only when the built binary was
/// copied, leaving a temporary copy beside it), a path under a file (was "File exists (os
/// error 17)"), and the generator's own executable (it would have been overwritten).
#[test]
fn an_out_path_that_cannot_take_the_binary_is_refused_before_building() {
    let dir = scratch("out-refused");
    let out_dir = dir.join("bin");
    std::fs::create_dir_all(&out_dir).expect("out dir");
    let file = dir.join("a-file");
    std::fs::write(&file, "x").expect("a file");
    let me = std::env::current_exe().expect("the test binary");
    let cases = [
        (
            out_dir.clone(),
            format!(
                "is a directory: give the path of the binary to write, such as {}",
                out_dir.join("aiperf-bench-core").display()
            ),
        ),
        (
            file.join("sub").join("bin"),
            format!(
                "cannot be written: {} is a file, not a directory",
                file.display()
            ),
        ),
        (
            me.clone(),
            "is aiperf-gen itself: write the benchmark binary elsewhere".to_owned(),
        ),
    ];
    let crate_arg = dir.join("crate").display().to_string();
    for (out, why) in cases {
        let out_arg = out.display().to_string();
        let started = std::time::Instant::now();
        let (code, _, err) = run(&[
            "aiperf-gen",
            "build",
            "--plugins",
            "core",
            "--out",
            &out_arg,
            "--emit-crate",
            &crate_arg,
        ]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(&format!("--out {out_arg} {why}")), "{err}");
        // Nothing was generated or built (cargo takes minutes, this a fraction of a second).
        assert!(!dir.join("crate").exists());
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
    }
    let left: Vec<_> = std::fs::read_dir(&dir)
        .expect("scratch")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().contains("aiperf-gen-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(me.exists());
    let _ = std::fs::remove_dir_all(&dir);
}
