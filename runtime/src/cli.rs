//! The command line of a generated binary: `profile` and `plugins`.

use std::process::ExitCode;

use clap::builder::{PossibleValue, PossibleValuesParser};
use clap::{Arg, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::ProfileConfig;
use crate::plugin::{DispatchEnum, PackInfo, PluginEntry, PluginKind, PluginSet};

#[derive(Debug, Parser)]
#[command(version, about = "LLM inference benchmark client built by aiperf-gen")]
struct Cli {
    /// Log level: error, warn, info, debug, trace.
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Benchmark a server (flags as `aiperf profile`).
    Profile(Box<ProfileConfig>),
    /// List the plugins linked into this binary.
    Plugins(PluginsArgs),
}

#[derive(Debug, clap::Args)]
struct PluginsArgs {
    /// A category to list, e.g. `endpoint`.
    category: Option<String>,
    /// A plugin of that category to describe.
    name: Option<String>,
    /// Every category with its plugins.
    #[arg(short, long)]
    all: bool,
}

/// Possible values for a plugin-name flag: the linked names (dashed spellings too).
fn plugin_values<K: PluginKind>() -> PossibleValuesParser {
    PossibleValuesParser::new(K::all().iter().map(|k| {
        let name = k.name();
        let value =
            PossibleValue::new(name).help(k.entry().description.lines().next().unwrap_or(""));
        if name.contains('_') {
            value.alias(name.replace('_', "-"))
        } else {
            value
        }
    }))
}

fn restrict<K: PluginKind>(arg: Arg) -> Arg {
    arg.value_parser(plugin_values::<K>()).ignore_case(true)
}

/// Entry point of every generated binary.
pub fn main<P: PluginSet>() -> ExitCode {
    type Kind<E> = <E as DispatchEnum>::Kind;
    let command = Cli::command().mut_subcommand("profile", |profile| {
        profile
            .mut_arg("endpoint_type", restrict::<Kind<P::Endpoint>>)
            .mut_arg("arrival_pattern", restrict::<Kind<P::ArrivalPattern>>)
            .mut_arg("ui_type", restrict::<Kind<P::Ui>>)
            .mut_arg("timing_mode", restrict::<Kind<P::TimingStrategy>>)
            .mut_arg("dataset_composer", restrict::<Kind<P::DatasetComposer>>)
            .mut_arg("transport", restrict::<Kind<P::Transport>>)
    });
    let matches = command.get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    init_logging(&cli.log_level);

    match cli.command {
        Command::Profile(config) => profile::<P>(*config),
        Command::Plugins(args) => match plugins::<P>(&args) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        },
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AIPERF_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn profile<P: PluginSet>(config: ProfileConfig) -> ExitCode {
    match crate::engine::run_profile::<P>(config) {
        Ok(outcome) => {
            print!("{}", outcome.console);
            let r = &outcome.results;
            println!("CLI Command: {}", r.cli_command);
            if let Some(d) = r.metric("benchmark_duration") {
                println!("Benchmark Duration: {:.2} sec", d.avg);
            }
            for path in &outcome.exported {
                let kind = match path.extension().and_then(|e| e.to_str()) {
                    Some("csv") => "CSV Export",
                    Some("json") => "JSON Export",
                    _ => "Export",
                };
                println!("{kind}: {}", path.display());
            }
            println!(
                "Records: {}",
                r.artifact_dir.join("profile_export.jsonl").display()
            );
            if r.was_cancelled {
                ExitCode::from(130)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Text of the `plugins` command for the linked set.
fn plugins<P: PluginSet>(args: &PluginsArgs) -> Result<String, String> {
    let entries = P::entries();
    let mut out = String::new();
    match (&args.category, &args.name, args.all) {
        (None, _, false) => {
            out.push_str("Installed Packages\n");
            let rows: Vec<Vec<String>> = P::packs()
                .iter()
                .map(|p: &PackInfo| {
                    let n = entries.iter().filter(|e| e.pack == p.name).count();
                    vec![
                        p.name.into(),
                        p.version.into(),
                        n.to_string(),
                        p.description.into(),
                    ]
                })
                .collect();
            out.push_str(&table(
                &["Package", "Version", "Plugins", "Description"],
                &rows,
            ));
            out.push_str("Usage: plugins --all to see all categories and plugins\n");
        }
        (None, _, true) | (Some(_), _, true) => {
            out.push_str("Plugin Categories\n");
            let rows: Vec<Vec<String>> = P::categories()
                .iter()
                .map(|(cat, _)| {
                    let names: Vec<&str> = entries
                        .iter()
                        .filter(|e| e.category == *cat && e.shadowed_by.is_none())
                        .map(|e| e.name)
                        .collect();
                    vec![(*cat).to_owned(), names.join(", ")]
                })
                .collect();
            out.push_str(&table(&["Category", "Plugins"], &rows));
            out.push_str("Usage: plugins <category> to see available types\n");
        }
        (Some(cat), None, false) => {
            let cat = find_category::<P>(cat)?;
            let description = P::categories()
                .iter()
                .find(|(c, _)| *c == cat)
                .map(|(_, d)| d.trim())
                .unwrap_or("");
            out.push_str(description);
            out.push_str("\n\n");
            let rows: Vec<Vec<String>> = entries
                .iter()
                .filter(|e| e.category == cat)
                .map(|e| {
                    let mut desc = e.description.trim().replace('\n', " ");
                    if let Some(by) = e.shadowed_by {
                        desc = format!("(shadowed by {by}) {desc}");
                    }
                    vec![e.name.to_owned(), desc]
                })
                .collect();
            out.push_str(&table(&["Type", "Description"], &rows));
            out.push_str("Usage: plugins <category> <type> for details\n");
        }
        (Some(cat), Some(name), false) => {
            let cat = find_category::<P>(cat)?;
            let wanted = crate::plugin::normalize_name(name);
            let found: Vec<&PluginEntry> = entries
                .iter()
                .filter(|e| {
                    e.category == cat
                        && (crate::plugin::normalize_name(e.name) == wanted || e.class_path == name)
                })
                .collect();
            if found.is_empty() {
                let names: Vec<&str> = entries
                    .iter()
                    .filter(|e| e.category == cat)
                    .map(|e| e.name)
                    .collect();
                return Err(format!(
                    "Not found: {cat}:{name}\nAvailable: {}",
                    names.join(", ")
                ));
            }
            for e in found {
                out.push_str(&format!("{cat}:{name}\n"));
                out.push_str(&format!("  Type: {}\n  Category: {}\n", e.name, e.category));
                out.push_str(&format!(
                    "  Package: {}\n  Class: {}\n",
                    e.pack, e.class_path
                ));
                out.push_str(&format!("  Priority: {}\n", e.priority));
                match e.shadowed_by {
                    Some(by) => out.push_str(&format!("  Status: shadowed by {by}\n")),
                    None => out.push_str("  Status: selected\n"),
                }
                out.push_str(&format!("  Metadata: {}\n\n", e.metadata_json));
                for line in e.description.trim().lines() {
                    out.push_str(&format!("  {line}\n"));
                }
                out.push('\n');
            }
        }
    }
    Ok(out)
}

fn find_category<P: PluginSet>(name: &str) -> Result<&'static str, String> {
    let wanted = crate::plugin::normalize_name(name);
    P::categories()
        .iter()
        .map(|(c, _)| *c)
        .find(|c| *c == wanted)
        .ok_or_else(|| {
            let all: Vec<&str> = P::categories().iter().map(|(c, _)| *c).collect();
            format!(
                "unknown or empty category `{name}`; categories linked: {}",
                all.join(", ")
            )
        })
}

/// A plain box-drawn table sized to its content.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |l: char, m: char, r: char| {
        let parts: Vec<String> = widths.iter().map(|w| "─".repeat(w + 2)).collect();
        format!("{l}{}{r}\n", parts.join(&m.to_string()))
    };
    let row_text = |cells: Vec<&str>| {
        let parts: Vec<String> = widths
            .iter()
            .zip(cells)
            .map(|(w, c)| format!(" {c}{} ", " ".repeat(w - c.chars().count())))
            .collect();
        format!("│{}│\n", parts.join("│"))
    };
    let mut out = line('┌', '┬', '┐');
    out.push_str(&row_text(headers.to_vec()));
    out.push_str(&line('├', '┼', '┤'));
    for row in rows {
        out.push_str(&row_text(row.iter().map(String::as_str).collect()));
    }
    out.push_str(&line('└', '┴', '┘'));
    out
}
