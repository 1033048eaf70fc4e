//! The `aiperf-gen` command line.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::build::{self, BuildOptions};
use crate::manifest::diagnostic;

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
    /// Validate categories.yaml and the packs' plugins.yaml files.
    Validate(ValidateArgs),
}

#[derive(Debug, clap::Args)]
struct BuildArgs {
    /// Packs to link, by name or path, in registration order (e.g. `core,my-pack`).
    #[arg(long = "plugins", value_delimiter = ',', required = true)]
    plugins: Vec<String>,
    /// Where to write the binary.
    #[arg(long, short)]
    out: PathBuf,
    /// Keep the generated crate in this directory.
    #[arg(long)]
    emit_crate: Option<PathBuf>,
    /// More directories to search for packs.
    #[arg(long)]
    pack_path: Vec<PathBuf>,
    /// Shared cargo target directory (default `~/.cache/aiperf-gen/target`).
    #[arg(long)]
    target_dir: Option<PathBuf>,
    /// Generate the crate only; do not run cargo.
    #[arg(long)]
    no_build: bool,
    /// Link statically (glibc `+crt-static`).
    #[arg(long = "static")]
    static_binary: bool,
}

#[derive(Debug, clap::Args)]
struct ValidateArgs {
    /// Packs to validate, by name or path.
    #[arg(long = "plugins", value_delimiter = ',')]
    plugins: Vec<String>,
    /// More directories to search for packs.
    #[arg(long)]
    pack_path: Vec<PathBuf>,
    /// Treat warnings as errors.
    #[arg(long)]
    deny_warnings: bool,
}

/// Runs the CLI; returns the process exit code (0 ok, 1 invalid input, 2 usage or I/O).
pub fn main<I: IntoIterator<Item = OsString>>(args: I) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("AIPERF_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cli.log_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();

    match cli.command {
        Command::Build(args) => run_build(args),
        Command::Validate(args) => run_validate(args),
    }
}

fn run_build(args: BuildArgs) -> ExitCode {
    let opts = BuildOptions {
        packs: args.plugins,
        out: args.out,
        emit_crate: args.emit_crate,
        pack_paths: args.pack_path,
        target_dir: args.target_dir,
        no_build: args.no_build,
        static_binary: args.static_binary,
    };
    match build::build(&opts) {
        Ok(report) => {
            println!("generated crate: {}", report.crate_dir.display());
            if let (Some(bin), Some(size)) = (&report.binary, report.size) {
                println!("binary: {} ({})", bin.display(), human_size(size));
            }
            println!("done in {:.1} s", report.seconds);
            ExitCode::SUCCESS
        }
        Err(build::BuildError::Invalid(text)) => {
            eprint!("{text}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn run_validate(args: ValidateArgs) -> ExitCode {
    let packs = if args.plugins.is_empty() {
        vec!["core".to_owned()]
    } else {
        args.plugins
    };
    match build::plan(&packs, &args.pack_path) {
        Ok((plan, diagnostics)) => {
            eprint!("{}", diagnostic::render(&diagnostics));
            let warnings = !diagnostics.is_empty();
            let entries: usize = plan.categories.iter().map(|c| c.entries.len()).sum();
            println!(
                "{} pack(s), {} categories, {entries} plugins: {}",
                plan.packs.len(),
                plan.categories.len(),
                if warnings {
                    "valid with warnings"
                } else {
                    "valid"
                }
            );
            if warnings && args.deny_warnings {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err((diagnostics, _)) => {
            eprint!("{}", diagnostic::render(&diagnostics));
            ExitCode::from(1)
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
