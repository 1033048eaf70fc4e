//! AIPerf's artifacts: `profile_export.jsonl` (one line per request, streamed),
//! `profile_export_aiperf.json` and `.csv` (the run summary), their per-time-slice
//! counterparts (`--slice-duration`) and the console tables.
//!
//! Layouts follow AIPerf 0.13 byte for byte where the reference pins them down, so
//! dashboards and `aiperf plot` read our files unchanged.

pub mod console;
pub mod csv;
mod direct;
pub mod input_config;
pub mod json;
mod jsonl;
pub(crate) mod jsonw;
mod raw;
mod table;
pub mod timeslices;

pub use jsonl::{write_str as write_json_str, RecordWriter};

/// `profile_export_aiperf.json` schema version written (AIPerf 0.13).
pub const SCHEMA_VERSION: &str = "1.4";
/// File names inside the artifact directory.
pub const RECORDS_FILE: &str = "profile_export.jsonl";
pub const RAW_FILE: &str = "profile_export_raw.jsonl";
pub const JSON_FILE: &str = "profile_export_aiperf.json";
pub const CSV_FILE: &str = "profile_export_aiperf.csv";
/// `--slice-duration`'s per-slice summaries.
pub const TIMESLICES_JSON_FILE: &str = "profile_export_aiperf_timeslices.json";
pub const TIMESLICES_CSV_FILE: &str = "profile_export_aiperf_timeslices.csv";
/// The console's text, as printed (`PREFIX_console.txt` with a prefix).
pub const CONSOLE_FILE: &str = "profile_export_console.txt";

/// AIPerf 0.13's `incomplete_reason` of a cancelled run (Ctrl-C, or
/// `--failed-request-threshold`), in the summary and in its console banner.
pub const INCOMPLETE_REASON_CANCELLED: &str = "Run cancelled before all records were processed.";

/// AIPerf 0.13's console banner over the tables of a run whose results are incomplete.
pub fn incomplete_results_banner(reason: &str) -> String {
    format!(
        "\n\nNVIDIA AIPerf | INCOMPLETE RESULTS\n{reason}\nThese metrics were computed over a \
         subset of the run and must not be compared against complete runs.\n"
    )
}

/// Writes `content` to `path` through a `.partial` sibling and a rename, so a crash
/// or a full disk never leaves a truncated artifact under the final name.
pub fn write_atomically(path: &std::path::Path, content: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    write_atomically_with(path, |out| out.write_all(content.as_bytes()))
}

/// [`write_atomically`] of a file written piece by piece by `write`, through a buffer:
/// for files too large to hold whole in memory first.
pub fn write_atomically_with<F>(path: &std::path::Path, write: F) -> std::io::Result<()>
where
    F: FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
{
    use std::io::Write as _;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    let result = std::fs::File::create(&partial)
        .and_then(|file| {
            let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
            write(&mut out)?;
            out.flush()
        })
        .and_then(|()| std::fs::rename(&partial, path));
    // The path goes into the error: an exporter's failure names the file it lost.
    result.map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        std::io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()))
    })
}

#[cfg(test)]
mod tests;
