//! Logging: to stderr (coloured only on a terminal) and, once a run knows its artifact
//! directory, also to `logs/aiperf.log` there, as AIPerf keeps its log with the results.
//! What was logged before (the checks of the flags, the dataset, the tokenizer) is held
//! and written to the file first, so the file has the whole run.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

static LOG_FILE: Mutex<Sink> = Mutex::new(Sink::Early(Vec::new()));

/// The most held before the file is known: a process that never sets one (a listing
/// command) keeps no more than this.
const EARLY_BYTES: usize = 1 << 20;

enum Sink {
    /// No file yet: what was logged so far.
    Early(Vec<u8>),
    File(File),
}

/// The level `init` was given, unless `AIPERF_LOG` replaced it with a directive of its own.
static LEVEL: OnceLock<String> = OnceLock::new();

/// The log level of this process (`info`, `debug`, ...), as `--log-level`, `-v` and `-vv`
/// set it; `None` before `init`, or when `AIPERF_LOG` decides the filter instead.
pub fn level() -> Option<&'static str> {
    LEVEL.get().map(String::as_str)
}

/// Writes to the run's log file, or holds what comes before it is set.
struct FileWriter;

impl Write for FileWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut guard) = LOG_FILE.lock() {
            match &mut *guard {
                Sink::Early(held) if held.len() + buf.len() <= EARLY_BYTES => {
                    held.extend_from_slice(buf)
                }
                Sink::Early(_) => {}
                // A full disk must not stop the benchmark; the console still has the log.
                Sink::File(file) => {
                    let _ = file.write_all(buf);
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if let Ok(mut guard) = LOG_FILE.lock() {
            if let Sink::File(file) = &mut *guard {
                let _ = file.flush();
            }
        }
        Ok(())
    }
}

/// The target of events that go to the log file only: the console has them in its own
/// words already.
const FILE_ONLY: &str = "aiperf::file_only";

/// Writes the error that ended the process to the run's log file (the console prints it
/// as `error: ...`), so a log read on its own says why the run stopped.
pub fn file_error(message: &str) {
    tracing::error!(target: FILE_ONLY, "{message}");
}

/// Installs the global subscriber. `AIPERF_LOG` (an env-filter directive) overrides
/// `level`.
pub fn init(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AIPERF_LOG").unwrap_or_else(|_| {
        let _ = LEVEL.set(level.to_owned());
        tracing_subscriber::EnvFilter::new(level)
    });
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let console = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
            meta.target() != FILE_ONLY
        }));
    let file = tracing_subscriber::fmt::layer()
        .with_writer(|| FileWriter)
        .with_ansi(false);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(console)
        .with(file)
        .try_init();
}

/// Starts copying the log into `path` (created with its directory).
pub fn set_file(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = File::create(path)?;
    if let Ok(mut guard) = LOG_FILE.lock() {
        if let Sink::Early(held) = &*guard {
            file.write_all(held)?;
        }
        *guard = Sink::File(file);
    }
    Ok(())
}
