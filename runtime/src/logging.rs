//! Logging: to stderr (coloured only on a terminal) and, once a run knows its artifact
//! directory, also to `logs/aiperf.log` there, as AIPerf keeps its log with the results.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

static LOG_FILE: Mutex<Option<File>> = Mutex::new(None);

/// The level `init` was given, unless `AIPERF_LOG` replaced it with a directive of its own.
static LEVEL: OnceLock<String> = OnceLock::new();

/// The log level of this process (`info`, `debug`, ...), as `--log-level`, `-v` and `-vv`
/// set it; `None` before `init`, or when `AIPERF_LOG` decides the filter instead.
pub fn level() -> Option<&'static str> {
    LEVEL.get().map(String::as_str)
}

/// Writes to the run's log file, when one is set; otherwise discards.
struct FileWriter;

impl Write for FileWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut guard) = LOG_FILE.lock() {
            if let Some(file) = guard.as_mut() {
                // A full disk must not stop the benchmark; the console still has the log.
                let _ = file.write_all(buf);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if let Ok(mut guard) = LOG_FILE.lock() {
            if let Some(file) = guard.as_mut() {
                let _ = file.flush();
            }
        }
        Ok(())
    }
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
        .with_ansi(ansi);
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
    let file = File::create(path)?;
    if let Ok(mut guard) = LOG_FILE.lock() {
        *guard = Some(file);
    }
    Ok(())
}
