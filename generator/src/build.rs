//! `aiperf-gen build`: packs → plan → crate → cargo → binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::check_class;
use crate::crate_gen::{self, CrateInputs};
use crate::manifest::diagnostic::{self, Diagnostic};
use crate::manifest::resolve::{EntryStatus, Resolution};
use crate::manifest::{LoadOptions, PackInfo};
use crate::plan::{BuildPlan, PlanCategory, PlanEntry, PlanPack};
use crate::session::{Inputs, Session};
use crate::validate;

pub use crate::session::{pack_search_path, workspace_root};

/// Where generated crates and the shared target directory live by default.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("AIPERF_GEN_CACHE") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("aiperf-gen");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".cache").join("aiperf-gen"),
        None => workspace_root().join("target").join("aiperf-gen"),
    }
}

/// Options of `aiperf-gen build`.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Pack names or paths, in registration order.
    pub packs: Vec<String>,
    /// Where to copy the binary.
    pub out: PathBuf,
    /// Keep the generated crate here (default: the cache directory).
    pub emit_crate: Option<PathBuf>,
    pub pack_paths: Vec<PathBuf>,
    /// Shared cargo target directory (default: `<cache>/target`).
    pub target_dir: Option<PathBuf>,
    /// Generate the crate but do not run cargo.
    pub no_build: bool,
    /// Static binary (glibc `+crt-static`).
    pub static_binary: bool,
}

/// What a build produced.
#[derive(Debug)]
pub struct BuildReport {
    pub crate_dir: PathBuf,
    pub binary: Option<PathBuf>,
    pub size: Option<u64>,
    pub files_changed: usize,
    pub diagnostics: Vec<Diagnostic>,
    pub seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The rendered diagnostics, and whether a file or pack could not be read at all.
    #[error("the manifests have errors:\n{0}")]
    Invalid(String, bool),
    #[error(transparent)]
    Generate(#[from] crate_gen::CrateGenError),
    #[error("cannot run cargo: {0}")]
    Cargo(std::io::Error),
    #[error("cargo build failed ({0}); the generated crate is in {1}")]
    CargoFailed(String, PathBuf),
    #[error("cannot copy the binary to {0}: {1}")]
    Copy(PathBuf, std::io::Error),
    #[error("{0}")]
    Usage(String),
}

/// Whether the binary can be written to `out`: not a directory, not this generator, in a
/// directory that exists (created when missing) and takes new files. The binary is copied
/// in through a temporary file beside `out`, so that is what is tried.
fn check_out(out: &Path, package: &str) -> Result<(), BuildError> {
    let usage = |why: String| Err(BuildError::Usage(format!("--out {} {why}", out.display())));
    if out.is_dir() {
        return usage(format!(
            "is a directory: give the path of the binary to write, such as {}",
            out.join(package).display()
        ));
    }
    let same_file = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if std::env::current_exe().is_ok_and(|me| same_file(&me, out)) {
        return usage("is aiperf-gen itself: write the benchmark binary elsewhere".to_owned());
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // The nearest ancestor that exists tells whether the rest can be created.
    if let Some(file) = parent
        .ancestors()
        .find(|a| a.exists())
        .filter(|a| !a.is_dir())
    {
        return usage(format!(
            "cannot be written: {} is a file, not a directory",
            file.display()
        ));
    }
    if let Err(e) = std::fs::create_dir_all(parent) {
        return usage(format!(
            "cannot be written: cannot create {}: {e}",
            parent.display()
        ));
    }
    let probe = out.with_extension(format!("aiperf-gen-probe-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => usage(format!("cannot be written: {}: {e}", parent.display())),
    }
}

/// Loads, validates and resolves the manifests of `packs` into a plan./// Loads, validates and resolves the manifests of `packs` into a plan. Class paths must
/// be Rust paths here: they become paths in generated code. The packs' sources are not
/// read; [`build`] checks them too.
pub fn plan(
    packs: &[String],
    pack_paths: &[PathBuf],
) -> Result<(BuildPlan, Vec<Diagnostic>), (Vec<Diagnostic>, String)> {
    plan_checked(packs, pack_paths, false)
}

/// [`plan`], also checking the class paths against the packs' sources when `sources` is
/// set, as `validate --check-class` does.
fn plan_checked(
    packs: &[String],
    pack_paths: &[PathBuf],
    sources: bool,
) -> Result<(BuildPlan, Vec<Diagnostic>), (Vec<Diagnostic>, String)> {
    let session = Session::load(&Inputs {
        categories: None,
        packs: packs.to_vec(),
        pack_paths: pack_paths.to_vec(),
        options: LoadOptions::any_language(),
    });
    let mut diagnostics = session.diagnostics.clone();
    diagnostics.extend(
        check_class::rust_paths(&session)
            .into_iter()
            .map(|p| p.diagnostic),
    );
    if sources && session.categories.is_some() {
        diagnostics.extend(
            check_class::check_sources(&session)
                .into_iter()
                .map(|p| p.diagnostic),
        );
    }
    validate::order(&mut diagnostics, &session.files);
    let (Some(resolution), false) = (&session.resolution, diagnostic::has_errors(&diagnostics))
    else {
        return Err((diagnostics, "manifest errors".into()));
    };
    let packs: Vec<&PackInfo> = session.packs.iter().map(|(p, _)| p).collect();
    Ok((to_plan(&packs, resolution), diagnostics))
}

fn package_name(packs: &[&PackInfo]) -> String {
    let mut parts: Vec<String> = packs
        .iter()
        .map(|p| {
            p.name
                .strip_prefix("aiperf-")
                .unwrap_or(&p.name)
                .replace('_', "-")
        })
        .collect();
    parts.dedup();
    format!("aiperf-bench-{}", parts.join("-"))
}

fn to_plan(packs: &[&PackInfo], resolution: &Resolution) -> BuildPlan {
    // Categories unknown to categories.yaml have no protocol to generate against; the
    // loader has already warned about them.
    let categories = resolution
        .categories
        .iter()
        .filter_map(|cat| {
            let spec = cat.spec.as_ref()?;
            Some(PlanCategory {
                name: cat.name.clone(),
                description: spec.description.clone(),
                protocol: spec.protocol.clone(),
                enum_name: spec.enum_name.clone(),
                entries: cat
                    .entries
                    .iter()
                    .map(|e| PlanEntry {
                        name: e.name.clone(),
                        class_path: e.class_path.clone(),
                        pack: e.pack.clone(),
                        priority: e.priority,
                        description: e.description.clone(),
                        metadata_json: serde_json::to_string(&e.metadata)
                            .unwrap_or_else(|_| "{}".into()),
                        shadowed_by: match &e.status {
                            EntryStatus::Winner => None,
                            EntryStatus::Shadowed { by_class_path, .. } => {
                                Some(by_class_path.clone())
                            }
                        },
                    })
                    .collect(),
            })
        })
        .collect();
    BuildPlan {
        package_name: package_name(packs),
        packs: packs
            .iter()
            .map(|p| PlanPack {
                name: p.name.clone(),
                crate_name: p.crate_name(),
                version: p.version.clone(),
                description: p.description.clone(),
                authors: p.authors.join(", "),
                builtin: p.is_builtin,
                // The generated crate lives elsewhere: a pack given by a relative path
                // must still be found from there.
                root: p
                    .root_dir
                    .canonicalize()
                    .unwrap_or_else(|_| p.root_dir.clone()),
            })
            .collect(),
        categories,
        decisions: resolution.decisions.iter().map(|d| d.to_string()).collect(),
    }
}

/// Runs the whole build.
pub fn build(opts: &BuildOptions) -> Result<BuildReport, BuildError> {
    let started = Instant::now();
    if opts.packs.is_empty() {
        return Err(BuildError::Usage(
            "no packs given: use --plugins core[,PACK...]".into(),
        ));
    }
    // A class that the sources lack, hide or leave unimplemented would otherwise surface
    // as rustc errors in generated code, after a crate was written and cargo started.
    // Warnings travel in the report; the caller shows them (the CLI once, on stderr).
    let (plan, diagnostics) =
        plan_checked(&opts.packs, &opts.pack_paths, true).map_err(|(diags, _)| {
            let unreadable = crate::validate::any_unreadable(&diags);
            BuildError::Invalid(diagnostic::render(&diags), unreadable)
        })?;

    // The generated crate depends on every pack as a Cargo package; a manifest with no
    // package around it validates, but cargo would fail on it with an error of its own.
    if let Some(pack) = plan
        .packs
        .iter()
        .find(|p| !p.root.join("Cargo.toml").is_file())
    {
        return Err(BuildError::Usage(format!(
            "pack `{}` is a manifest with no Cargo package around it ({} has no \
             Cargo.toml): `build` links each pack as a crate. Put a Cargo.toml beside the \
             manifest with `[package.metadata.aiperf] plugins = \"<manifest file>\"` \
             (`validate` and `plugins` read a bare manifest as it is)",
            pack.name,
            pack.root.display()
        )));
    }
    // Checked before cargo runs (minutes on a fresh machine), not when the binary is
    // copied after it.
    if !opts.no_build {
        check_out(&opts.out, &plan.package_name)?;
    }
    let root = workspace_root();
    let cache = cache_dir();
    let crate_dir = opts
        .emit_crate
        .clone()
        .unwrap_or_else(|| cache.join("crates").join(&plan.package_name));
    let inputs = CrateInputs {
        runtime_path: root.join("runtime"),
        macros_path: root.join("macros"),
        lockfile: Some(root.join("Cargo.lock")),
    };
    let files_changed = crate_gen::write_crate(&plan, &inputs, &crate_dir)?;
    tracing::info!(dir = %crate_dir.display(), files_changed, "generated crate");

    if opts.no_build {
        return Ok(BuildReport {
            crate_dir,
            binary: None,
            size: None,
            files_changed,
            diagnostics,
            seconds: started.elapsed().as_secs_f64(),
        });
    }

    let target_dir = opts
        .target_dir
        .clone()
        .unwrap_or_else(|| cache.join("target"));
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .arg("build")
        .arg("--release")
        .arg("--manifest-path")
        .arg(crate_dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target_dir);
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(inherited_from_cargo) {
            cargo.env_remove(&name);
        }
    }
    if opts.static_binary {
        let flags = std::env::var("RUSTFLAGS").unwrap_or_default();
        cargo.env(
            "RUSTFLAGS",
            format!("{flags} -C target-feature=+crt-static").trim(),
        );
        cargo.arg("--target").arg(host_target());
    }
    tracing::debug!(?cargo, "running cargo");
    let status = cargo.status().map_err(BuildError::Cargo)?;
    if !status.success() {
        return Err(BuildError::CargoFailed(status.to_string(), crate_dir));
    }
    let mut built = target_dir.clone();
    if opts.static_binary {
        built.push(host_target());
    }
    built.push("release");
    built.push(&plan.package_name);
    // Copy through a temporary name so a running old binary is never half-overwritten.
    let tmp = opts
        .out
        .with_extension(format!("aiperf-gen-tmp-{}", std::process::id()));
    let copied = std::fs::copy(&built, &tmp).and_then(|_| std::fs::rename(&tmp, &opts.out));
    if let Err(e) = copied {
        // A partial copy, or one the rename could not put in place, is not left behind.
        let _ = std::fs::remove_file(&tmp);
        return Err(BuildError::Copy(opts.out.clone(), e));
    }
    let size = std::fs::metadata(&opts.out).map(|m| m.len()).ok();
    Ok(BuildReport {
        crate_dir,
        binary: Some(opts.out.clone()),
        size,
        files_changed,
        diagnostics,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Whether an environment variable is one cargo sets for the package it builds or runs
/// (`aiperf-gen` run by `cargo run` or from a test): passed on, it changes what build
/// scripts that watch such variables (ring's) see, and the whole TLS stack is rebuilt
/// every time the binary is built from the other place.
fn inherited_from_cargo(name: &str) -> bool {
    const PREFIXES: [&str; 4] = [
        "CARGO_PKG_",
        "CARGO_MANIFEST_",
        "CARGO_CRATE_",
        "CARGO_BIN_",
    ];
    const NAMES: [&str; 4] = [
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "OUT_DIR",
        "TARGET",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p)) || NAMES.contains(&name)
}

fn host_target() -> &'static str {
    // The generator is built for the machine it runs on; static builds target the same.
    if cfg!(all(target_arch = "x86_64", target_os = "linux")) {
        "x86_64-unknown-linux-gnu"
    } else if cfg!(all(target_arch = "aarch64", target_os = "linux")) {
        "aarch64-unknown-linux-gnu"
    } else {
        "unknown"
    }
}

#[cfg(test)]
mod tests {
    use super::inherited_from_cargo;

    /// What cargo sets for the package it runs goes; the user's own cargo settings stay.
    #[test]
    fn only_the_running_packages_variables_are_dropped() {
        for name in [
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION_MAJOR",
            "CARGO_MANIFEST_DIR",
            "CARGO_CRATE_NAME",
            "CARGO_BIN_EXE_aiperf-gen",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_TMPDIR",
            "OUT_DIR",
        ] {
            assert!(inherited_from_cargo(name), "{name}");
        }
        for name in [
            "CARGO",
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO_PROFILE_RELEASE_DEBUG",
            "CARGO_NET_OFFLINE",
            "RUSTFLAGS",
            "PATH",
        ] {
            assert!(!inherited_from_cargo(name), "{name}");
        }
    }
}
