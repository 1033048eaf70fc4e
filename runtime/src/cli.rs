//! The command line of a generated binary: `profile` and `plugins`.

use std::process::ExitCode;

use clap::builder::{PossibleValue, PossibleValuesParser};
use clap::{Arg, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::ProfileConfig;
use crate::explorer::{render_validation, Catalog, CategoryRow, EntryRow, PackRow, Problem, Style};
use crate::plugin::{DispatchEnum, PackInfo, PluginEntry, PluginError, PluginKind, PluginSet};

mod aiperf_flags;

#[derive(Debug, Parser)]
#[command(version, about = "LLM inference benchmark client built by aiperf-gen")]
struct Cli {
    /// Log level: error, warn, info, debug, trace.
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    /// Debug logging (`-v`, as `--log-level debug`); `-vv` for trace.
    #[arg(short = 'v', long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Trace logging (as `-vv`).
    #[arg(long, global = true)]
    extra_verbose: bool,
    #[command(subcommand)]
    command: Command,
}

/// The log level asked for: `-v` and `-vv` (or `--extra-verbose`) win over `--log-level`,
/// as in AIPerf.
fn log_level(level: &str, verbose: u8, extra_verbose: bool) -> &str {
    match (verbose, extra_verbose) {
        (_, true) | (2.., _) => "trace",
        (1, _) => "debug",
        (0, false) => level,
    }
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
    /// Check every linked entry's metadata against its category's type.
    #[arg(short, long)]
    validate: bool,
}

/// The first sentence of a plugin's description, its lines joined: the first line alone
/// broke off mid-sentence in `--help`.
fn summary(description: &str) -> String {
    let text = description.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.find(". ") {
        Some(end) => text[..=end].to_owned(),
        None => text,
    }
}

/// Possible values for a plugin-name flag: the linked names (dashed spellings too) and,
/// hidden from help, every linked class path of the category, so a plugin whose name
/// another pack took stays selectable (`--endpoint-type aiperf_core::endpoints:Chat`).
fn plugin_values<P: PluginSet, K: PluginKind>() -> PossibleValuesParser {
    let names = K::all().iter().map(|k| {
        let name = k.name();
        let value = PossibleValue::new(name).help(summary(k.entry().description));
        if name.contains('_') {
            value.alias(name.replace('_', "-"))
        } else {
            value
        }
    });
    let mut class_paths: Vec<&'static str> = P::entries()
        .iter()
        .filter(|e| e.category == K::CATEGORY)
        .map(|e| e.class_path)
        .collect();
    class_paths.sort_unstable();
    class_paths.dedup();
    let hidden = class_paths
        .into_iter()
        .map(|c| PossibleValue::new(c).hide(true));
    PossibleValuesParser::new(names.chain(hidden))
}

fn restrict<P: PluginSet, K: PluginKind>(arg: Arg) -> Arg {
    arg.value_parser(plugin_values::<P, K>()).ignore_case(true)
}

/// Entry point of every generated binary.
pub fn main<P: PluginSet>() -> ExitCode {
    type Kind<E> = <E as DispatchEnum>::Kind;
    // `--version` and the usage name this binary, not the runtime library it is built on.
    let command = Cli::command()
        .name(program_name())
        .mut_subcommand("profile", |profile| {
            // `--request-rate -5` is a value the validation refuses with its own message,
            // not an unknown flag.
            profile
                .allow_negative_numbers(true)
                .mut_arg("endpoint_type", restrict::<P, Kind<P::Endpoint>>)
                .mut_arg("arrival_pattern", restrict::<P, Kind<P::ArrivalPattern>>)
                .mut_arg("ui_type", restrict::<P, Kind<P::Ui>>)
                .mut_arg("timing_mode", restrict::<P, Kind<P::TimingStrategy>>)
                .mut_arg("dataset_composer", restrict::<P, Kind<P::DatasetComposer>>)
                .mut_arg("transport", restrict::<P, Kind<P::Transport>>)
                .mut_arg(
                    "url_selection_strategy",
                    restrict::<P, Kind<P::UrlSelectionStrategy>>,
                )
        });
    let matches = match command.try_get_matches() {
        Ok(matches) => matches,
        Err(e) => match unsupported_aiperf_flag(&e) {
            Some(message) => {
                eprintln!(
                    "error: {message}\n\nFor the flags this build takes, try '{} profile \
                     --help'.",
                    program_name()
                );
                return ExitCode::from(1);
            }
            None => return usage_error(&e),
        },
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    init_logging(log_level(&cli.log_level, cli.verbose, cli.extra_verbose));

    match cli.command {
        Command::Profile(mut config) => {
            if let Some(sub) = matches.subcommand_matches("profile") {
                config.note_given(sub);
            }
            profile::<P>(*config)
        }
        Command::Plugins(args) => {
            let (text, code) = plugins::<P>(&args);
            // Views print to stdout; a view that cannot be shown explains why on stderr.
            if code == 0 || args.validate {
                print!("{text}");
            } else {
                eprint!("{text}");
            }
            ExitCode::from(code)
        }
    }
}

/// clap's report of a command line it refused (or the help or version asked for), with
/// AIPerf's exit status: cyclopts, which parses AIPerf's command line, exits 1 on every
/// error, as do the checks of the values after parsing here.
fn usage_error(error: &clap::Error) -> ExitCode {
    // No command at all is a request for help, as AIPerf (cyclopts) takes it: the help on
    // stdout, exit 0.
    if error.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        print!("{}", error.render());
        return ExitCode::SUCCESS;
    }
    let _ = error.print();
    ExitCode::from(u8::from(error.use_stderr()))
}

/// For a flag clap does not know that is one of AIPerf 0.13's, the plain fact that this
/// build does not take it: clap's did-you-mean then names an unrelated flag of ours
/// (`--public-dataset` suggested `--ui`). Typos keep clap's suggestion.
fn unsupported_aiperf_flag(error: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if error.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(arg)) = error.get(ContextKind::InvalidArg) else {
        return None;
    };
    let flag = arg.split_once('=').map_or(arg.as_str(), |(flag, _)| flag);
    aiperf_flags::AIPERF_PROFILE_FLAGS
        .contains(&flag)
        .then(|| format!("{flag} is an AIPerf 0.13 flag this build does not support"))
}

/// The name this binary was started by, for messages that show a command to run.
fn program_name() -> String {
    std::env::args()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "aiperf".to_owned())
}

fn init_logging(level: &str) {
    crate::logging::init(level);
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
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let slices =
                    name.ends_with("_timeslices.csv") || name.ends_with("_timeslices.json");
                let kind = match (path.extension().and_then(|e| e.to_str()), slices) {
                    _ if name.ends_with("_raw.jsonl") => "Raw Records",
                    (Some("csv"), true) => "Timeslice CSV Export",
                    (Some("json"), true) => "Timeslice JSON Export",
                    (Some("csv"), false) => "CSV Export",
                    (Some("json"), false) => "JSON Export",
                    _ => "Export",
                };
                println!("{kind}: {}", path.display());
            }
            let log = r.artifact_dir.join("logs").join("aiperf.log");
            println!("Log File: {}", log.display());
            if !outcome.failures.is_empty() {
                eprintln!(
                    "error: {} artifact(s) could not be written: {}",
                    outcome.failures.len(),
                    outcome.failures.join("; ")
                );
            }
            ExitCode::from(outcome.exit_code)
        }
        Err(e) => {
            crate::logging::file_error(&e);
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// The linked set as the shared explorer sees it: the same catalog `aiperf-gen plugins`
/// builds from the manifests this binary was generated from.
fn catalog<P: PluginSet>() -> Catalog {
    let linked = P::categories();
    Catalog {
        packs: P::packs()
            .iter()
            .map(|p: &PackInfo| PackRow {
                name: p.name.to_owned(),
                version: p.version.to_owned(),
                description: p.description.to_owned(),
                builtin: p.builtin,
            })
            .collect(),
        categories: linked
            .iter()
            .map(|(name, description)| CategoryRow {
                name: (*name).to_owned(),
                description: (*description).to_owned(),
            })
            .collect(),
        entries: P::entries()
            .iter()
            .map(|e: &PluginEntry| EntryRow {
                category: e.category.to_owned(),
                name: e.name.to_owned(),
                class_path: e.class_path.to_owned(),
                pack: e.pack.to_owned(),
                priority: e.priority,
                description: e.description.to_owned(),
                metadata: e.metadata_value(),
                shadowed_by: e.shadowed_by.map(str::to_owned),
            })
            .collect(),
    }
}

/// Whether an entry's metadata fits its category's runtime type.
fn check_metadata(e: &PluginEntry) -> Result<(), PluginError> {
    use crate::metadata::*;
    match e.category {
        "endpoint" => e.metadata::<EndpointMetadata>().map(drop),
        "transport" => e.metadata::<TransportMetadata>().map(drop),
        "plot" => e.metadata::<PlotMetadata>().map(drop),
        "service" => e.metadata::<ServiceMetadata>().map(drop),
        "custom_dataset_loader" => e.metadata::<CustomDatasetLoaderMetadata>().map(drop),
        "gpu_telemetry_collector" => e.metadata::<GpuTelemetryCollectorMetadata>().map(drop),
        "record_processor" => e.metadata::<RecordProcessorMetadata>().map(drop),
        "tokenizer" => e.metadata::<TokenizerMetadata>().map(drop),
        _ => Ok(()),
    }
}

/// Text and exit code of the `plugins` command for the linked set, in the layout of
/// `aiperf-gen plugins`: 0, or 1 when the view cannot be shown or validation fails.
fn plugins<P: PluginSet>(args: &PluginsArgs) -> (String, u8) {
    if args.validate {
        // Class paths were resolved by the compiler when this binary was built; what can
        // still be wrong is metadata the generator could not type.
        let problems: Vec<Problem> = P::entries()
            .iter()
            .filter_map(|e| {
                check_metadata(e).err().map(|err| Problem {
                    category: e.category.to_owned(),
                    name: e.name.to_owned(),
                    message: err.to_string(),
                })
            })
            .collect();
        let (text, ok) = render_validation(&[("Class paths", Vec::new()), ("Metadata", problems)]);
        return (text, u8::from(!ok));
    }
    let style = Style::for_terminal(format!("{} plugins", program_name()));
    let catalog = catalog::<P>();
    let shown = match (&args.category, &args.name, args.all) {
        (_, _, true) => Ok(catalog.render_all(&style)),
        (None, _, false) => Ok(catalog.render_packs(&style)),
        (Some(category), None, false) => catalog.render_category(category, &style),
        (Some(category), Some(name), false) => catalog.render_entry(category, name, &style),
    };
    match shown {
        Ok(text) => (text, 0),
        Err(message) => (format!("{message}\n"), 1),
    }
}

#[cfg(test)]
mod tests {
    use super::{log_level, summary, unsupported_aiperf_flag, Cli};
    use clap::CommandFactory;

    /// What `profile` says of `args`: clap's error, and the plain refusal if any.
    fn refusal(args: &[&str]) -> Option<(String, Option<String>)> {
        let argv = ["aiperf", "profile", "-m", "m"].iter().chain(args);
        let error = Cli::command().try_get_matches_from(argv).err()?;
        Some((error.to_string(), unsupported_aiperf_flag(&error)))
    }

    #[test]
    fn aiperf_flags_this_build_lacks_are_refused_plainly() {
        for (args, flag) in [
            (&["--public-dataset", "sharegpt"][..], "--public-dataset"),
            (&["--public-dataset=sharegpt"], "--public-dataset"),
            (&["--export-http-trace"], "--export-http-trace"),
            (&["--gpu-telemetry", "pynvml"], "--gpu-telemetry"),
            (&["--no-open-loop-replay"], "--no-open-loop-replay"),
            (&["-f", "run.yaml"], "-f"),
        ] {
            let (_, plain) = refusal(args).unwrap_or_else(|| panic!("{args:?} parsed"));
            assert_eq!(
                plain,
                Some(format!(
                    "{flag} is an AIPerf 0.13 flag this build does not support"
                )),
                "{args:?}"
            );
        }
    }

    #[test]
    fn typos_keep_the_did_you_mean() {
        let (message, plain) = refusal(&["--concurency", "4"]).expect("a refusal");
        assert_eq!(plain, None);
        assert!(
            message.contains("tip: a similar argument exists: '--concurrency'"),
            "{message}"
        );
    }

    /// AIPerf's switches for what this build never does are taken, and change nothing.
    #[test]
    fn switches_for_what_this_build_never_does_are_accepted() {
        for flag in [
            "--no-gpu-telemetry",
            "--no-server-metrics",
            "--no-auto-plot",
            "--no-sweep-table",
        ] {
            assert!(refusal(&[flag]).is_none(), "{flag} refused");
        }
    }

    /// Every AIPerf flag is either taken or refused plainly, never given a guess.
    #[test]
    fn no_aiperf_flag_gets_a_guess() {
        for flag in super::aiperf_flags::AIPERF_PROFILE_FLAGS {
            if let Some((message, None)) = refusal(&[flag]) {
                assert!(
                    !message.contains("unexpected argument"),
                    "{flag}: {message}"
                );
            }
        }
    }

    #[test]
    fn verbose_flags_win_over_the_log_level() {
        assert_eq!(log_level("warn", 0, false), "warn");
        assert_eq!(log_level("warn", 1, false), "debug");
        assert_eq!(log_level("warn", 2, false), "trace");
        assert_eq!(log_level("info", 0, true), "trace");
    }

    #[test]
    fn summary_is_the_first_sentence_over_its_lines() {
        assert_eq!(
            summary("OpenAI Chat Completions endpoint. Streams server-sent events; reads\ncontent, reasoning and usage.\n"),
            "OpenAI Chat Completions endpoint."
        );
        assert_eq!(
            summary("Text-to-video jobs (`/v1/videos`): submit a multipart form, poll\nuntil done"),
            "Text-to-video jobs (`/v1/videos`): submit a multipart form, poll until done"
        );
        assert_eq!(summary("v1.2 parser, fast."), "v1.2 parser, fast.");
        assert_eq!(summary(""), "");
    }
}
