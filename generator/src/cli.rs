//! The `aiperf-gen` command line.
//!
//! Every command writes to the streams it is given, so tests run the real command line
//! in-process ([`run`]) and compare its exact output. Exit codes: 0 success, 1 invalid
//! input (or a failed check), 2 usage or I/O errors.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use aiperf_runtime::explorer::Style;
use clap::{Parser, Subcommand};

use crate::build::{self, BuildOptions};
use crate::manifest::diagnostic;
use crate::manifest::schema::schema_files;
use crate::manifest::LoadOptions;
use crate::session::{Inputs, Session};
use crate::validate::{self, Format, ValidateOptions};

#[derive(Debug, Parser)]
#[command(
    name = "aiperf-gen",
    version,
    about = "Generate tailored aiperf benchmark binaries"
)]
struct Cli {
    /// Log level: error, warn, info, debug, trace (`AIPERF_LOG` overrides).
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate the crate for a set of packs and build the benchmark binary.
    Build(BuildArgs),
    /// Check manifests: YAML, schema, names, metadata, conflicts, and with
    /// `--check-class` the classes in the packs' sources.
    Validate(ValidateArgs),
    /// Write the JSON Schemas (draft 2020-12) of categories.yaml and plugins.yaml.
    Schema(SchemaArgs),
    /// Explore packs, categories and plugins, as `aiperf plugins` does.
    Plugins(PluginsArgs),
}

#[derive(Debug, clap::Args)]
struct BuildArgs {
    /// Packs to link, by name or path, in registration order (e.g. `core,my-pack`).
    ///
    /// A bare name (no `/`, not starting with `.` or `~`, not ending in `.toml`, `.yaml` or
    /// `.yml`) is a pack on the search path; only when none has that name is `./NAME` used,
    /// and only as a pack directory (never a file). Anything else is a path: a manifest
    /// file, a `Cargo.toml` or a pack directory.
    #[arg(long = "plugins", value_delimiter = ',', required = true)]
    plugins: Vec<String>,
    /// Where to write the binary (a file path; missing directories are created). Not
    /// needed with `--no-build`.
    #[arg(long, short, required_unless_present = "no_build")]
    out: Option<PathBuf>,
    /// Keep the generated crate in this directory.
    #[arg(long)]
    emit_crate: Option<PathBuf>,
    /// More directories to search for packs.
    #[arg(long)]
    pack_path: Vec<PathBuf>,
    /// Shared cargo target directory (default `target` in the cache: `$AIPERF_GEN_CACHE`,
    /// else `$XDG_CACHE_HOME/aiperf-gen`, else `~/.cache/aiperf-gen`, which also holds
    /// the generated crates).
    #[arg(long)]
    target_dir: Option<PathBuf>,
    /// Generate the crate only; do not run cargo.
    #[arg(long)]
    no_build: bool,
    /// Link statically (glibc `+crt-static`). A cargo flag: the generated crate is the
    /// same, so it means nothing with `--no-build`.
    #[arg(long = "static", conflicts_with = "no_build")]
    static_binary: bool,
}

#[derive(Debug, clap::Args)]
struct ValidateArgs {
    /// Manifest files; one whose name contains `categories` is a categories.yaml, the
    /// others are plugins.yaml files (validated against it, or the runtime's).
    files: Vec<PathBuf>,
    /// Packs to validate, by name or path (default `core` when no files are given).
    ///
    /// A bare name (no `/`, not starting with `.` or `~`, not ending in `.toml`, `.yaml` or
    /// `.yml`) is a pack on the search path; only when none has that name is `./NAME` used,
    /// and only as a pack directory (never a file). Anything else is a path: a manifest
    /// file, a `Cargo.toml` or a pack directory.
    #[arg(long = "plugins", value_delimiter = ',')]
    plugins: Vec<String>,
    /// The categories.yaml to validate plugins against (default: the runtime's).
    #[arg(long)]
    categories: Option<PathBuf>,
    /// More directories to search for packs.
    #[arg(long)]
    pack_path: Vec<PathBuf>,
    /// Also require Rust class paths and check, in the packs' sources and without
    /// compiling, that each names a public type implementing its category's protocol.
    #[arg(long)]
    check_class: bool,
    /// Treat warnings as errors.
    #[arg(long)]
    deny_warnings: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Debug, clap::Args)]
struct SchemaArgs {
    /// Directory to write `categories.schema.json` and `plugins.schema.json` into.
    #[arg(long, default_value = ".")]
    out: PathBuf,
    /// The categories.yaml the plugins schema describes (default: the runtime's).
    #[arg(long)]
    categories: Option<PathBuf>,
    /// Exit 1 if the files on disk differ instead of writing them (for CI).
    #[arg(long)]
    check: bool,
}

#[derive(Debug, clap::Args)]
struct PluginsArgs {
    /// A category to list, e.g. `endpoint`.
    category: Option<String>,
    /// A plugin of that category to describe (a name, or a full class path).
    name: Option<String>,
    /// Every category with its plugins.
    #[arg(short, long)]
    all: bool,
    /// Check every class path against the packs' sources (`validate --check-class`).
    #[arg(short, long)]
    validate: bool,
    /// Packs to explore, by name or path, in registration order (default `core`).
    ///
    /// A bare name (no `/`, not starting with `.` or `~`, not ending in `.toml`, `.yaml` or
    /// `.yml`) is a pack on the search path; only when none has that name is `./NAME` used,
    /// and only as a pack directory (never a file). Anything else is a path: a manifest
    /// file, a `Cargo.toml` or a pack directory.
    #[arg(long = "plugins", value_delimiter = ',')]
    plugins: Vec<String>,
    /// The categories.yaml to use (default: the runtime's).
    #[arg(long)]
    categories: Option<PathBuf>,
    /// More directories to search for packs.
    #[arg(long)]
    pack_path: Vec<PathBuf>,
}

/// Runs the CLI on the process's streams; returns the exit code.
pub fn main<I: IntoIterator<Item = OsString>>(args: I) -> ExitCode {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let code = run(args, &mut stdout.lock(), &mut stderr.lock());
    ExitCode::from(code)
}

/// Runs the CLI writing to `out` and `err`; returns the exit code (0 ok, 1 invalid input,
/// 2 usage or I/O).
pub fn run<I, O, E>(args: I, out: &mut O, err: &mut E) -> u8
where
    I: IntoIterator<Item = OsString>,
    O: Write,
    E: Write,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let text = e.render().to_string();
            let _ = if e.use_stderr() {
                err.write_all(text.as_bytes())
            } else {
                out.write_all(text.as_bytes())
            };
            return code;
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("AIPERF_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cli.log_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();

    // A stream that fails (a closed pipe, a full disk) must not change the verdict: the
    // command runs to its end and its exit code stands.
    let (mut out, mut err) = (Kept::new(out), Kept::new(err));
    let code = match cli.command {
        Command::Build(args) => run_build(args, &mut out, &mut err),
        Command::Validate(args) => run_validate(args, &mut out, &mut err),
        Command::Schema(args) => run_schema(&args, &mut out, &mut err),
        Command::Plugins(args) => run_plugins(args, &mut out, &mut err),
    };
    // Kept swallows every write error, and the commands fail on nothing else.
    let code = code.unwrap_or(2);
    let _ = out.flush();
    match out.error.take() {
        // A reader that stopped early (`| head`) wanted no more; nothing failed.
        Some(e) if e.kind() != std::io::ErrorKind::BrokenPipe && code == 0 => {
            let _ = writeln!(err.inner, "error: cannot write the output: {e}");
            2
        }
        _ => code,
    }
}

/// A stream whose first write error is kept, not returned, so that what the command
/// decided does not depend on whether its output could be written.
struct Kept<'a, W: Write> {
    inner: &'a mut W,
    error: Option<std::io::Error>,
}

impl<'a, W: Write> Kept<'a, W> {
    fn new(inner: &'a mut W) -> Self {
        Kept { inner, error: None }
    }
}

impl<W: Write> Write for Kept<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.error.is_none() {
            if let Err(e) = self.inner.write_all(buf) {
                self.error = Some(e);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.error.is_none() {
            if let Err(e) = self.inner.flush() {
                self.error = Some(e);
            }
        }
        Ok(())
    }
}

type Outcome = std::io::Result<u8>;

fn run_build(args: BuildArgs, out: &mut impl Write, err: &mut impl Write) -> Outcome {
    let opts = BuildOptions {
        packs: args.plugins,
        // Only read when building, and then clap requires it.
        out: args.out.unwrap_or_default(),
        emit_crate: args.emit_crate,
        pack_paths: args.pack_path,
        target_dir: args.target_dir,
        no_build: args.no_build,
        static_binary: args.static_binary,
    };
    match build::build(&opts) {
        Ok(report) => {
            if !report.diagnostics.is_empty() {
                writeln!(err, "{}\n", diagnostic::render(&report.diagnostics))?;
            }
            writeln!(out, "generated crate: {}", report.crate_dir.display())?;
            if let (Some(bin), Some(size)) = (&report.binary, report.size) {
                writeln!(out, "binary: {} ({})", bin.display(), human_size(size))?;
            }
            writeln!(out, "done in {:.1} s", report.seconds)?;
            Ok(0)
        }
        Err(build::BuildError::Invalid(text, unreadable)) => {
            writeln!(err, "{text}\n")?;
            writeln!(
                err,
                "error: the manifests have errors; nothing was generated"
            )?;
            // As `validate`: 2 when a file or pack could not be read, 1 when it is invalid.
            Ok(if unreadable { 2 } else { 1 })
        }
        Err(e) => {
            writeln!(err, "error: {e}")?;
            Ok(2)
        }
    }
}

fn run_validate(args: ValidateArgs, out: &mut impl Write, err: &mut impl Write) -> Outcome {
    let options = ValidateOptions {
        files: args.files,
        packs: args.plugins,
        pack_paths: args.pack_path,
        categories: args.categories,
        check_class: args.check_class,
        deny_warnings: args.deny_warnings,
    };
    let report = match validate::validate(&options) {
        Ok(report) => report,
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok(2);
        }
    };
    let (stdout, stderr) = report.render(args.format);
    err.write_all(stderr.as_bytes())?;
    out.write_all(stdout.as_bytes())?;
    Ok(report.exit_code())
}

fn run_schema(args: &SchemaArgs, out: &mut impl Write, err: &mut impl Write) -> Outcome {
    let session = Session::load(&Inputs {
        categories: args.categories.clone(),
        options: LoadOptions::any_language(),
        ..Inputs::default()
    });
    let Some(categories) = &session.categories else {
        writeln!(err, "{}\n", diagnostic::render(&session.diagnostics))?;
        return Ok(1);
    };
    // A check only reads.
    let created = if args.check {
        Ok(())
    } else {
        std::fs::create_dir_all(&args.out)
    };
    if let Err(e) = created {
        // create_dir_all says only "File exists" of a file in the way.
        let why = match args.out.exists() && !args.out.is_dir() {
            true => "it is a file; --out names the directory the two schemas go into".to_owned(),
            false => e.to_string(),
        };
        writeln!(err, "error: cannot create {}: {why}", args.out.display())?;
        return Ok(2);
    }
    let mut stale = Vec::new();
    for (name, text) in schema_files(categories) {
        let path = args.out.join(name);
        let current = std::fs::read_to_string(&path).ok();
        if current.as_deref() == Some(text.as_str()) {
            writeln!(out, "unchanged {}", path.display())?;
            continue;
        }
        if args.check {
            stale.push((path, current.is_some()));
            continue;
        }
        if let Err(e) = std::fs::write(&path, text) {
            writeln!(err, "error: cannot write {}: {e}", path.display())?;
            return Ok(2);
        }
        writeln!(out, "wrote {}", path.display())?;
    }
    if stale.is_empty() {
        return Ok(0);
    }
    for (path, exists) in &stale {
        let state = if *exists {
            "is out of date"
        } else {
            "is missing"
        };
        writeln!(
            err,
            "error: {} {state}; regenerate it with `aiperf-gen schema --out {}`",
            path.display(),
            args.out.display()
        )?;
    }
    Ok(1)
}

fn run_plugins(args: PluginsArgs, out: &mut impl Write, err: &mut impl Write) -> Outcome {
    let packs = if args.plugins.is_empty() {
        vec!["core".to_owned()]
    } else {
        args.plugins
    };
    let session = Session::load(&Inputs {
        categories: args.categories,
        packs,
        pack_paths: args.pack_path,
        options: LoadOptions::any_language(),
    });
    if session.has_errors() {
        writeln!(err, "{}\n", diagnostic::render(&session.diagnostics))?;
        writeln!(
            err,
            "error: the manifests have errors; run `aiperf-gen validate` for details"
        )?;
        let io = crate::validate::any_unreadable(&session.diagnostics);
        return Ok(if io { 2 } else { 1 });
    }
    if args.validate {
        let (text, ok) = crate::explorer::validation(&session);
        out.write_all(text.as_bytes())?;
        return Ok(if ok { 0 } else { 1 });
    }
    let catalog = crate::explorer::catalog(&session);
    let style = Style::for_terminal("aiperf-gen plugins");
    let rendered = match (&args.category, &args.name, args.all) {
        (_, _, true) => Ok(catalog.render_all(&style)),
        (None, _, false) => Ok(catalog.render_packs(&style)),
        (Some(category), None, false) => catalog.render_category(category, &style),
        (Some(category), Some(name), false) => catalog.render_entry(category, name, &style),
    };
    match rendered {
        Ok(text) => {
            out.write_all(text.as_bytes())?;
            Ok(0)
        }
        Err(message) => {
            writeln!(err, "{message}")?;
            Ok(1)
        }
    }
}

fn human_size(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}
