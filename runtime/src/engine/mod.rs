//! The thread-per-core engine: workers, the record pipeline and the run's lifecycle.
//!
//! ```text
//!  main thread ──compose dataset, prepare requests──┐
//!                                                   ▼
//!  worker 0 (monoio) ─┐   RequestRecord   ┌─ record thread: parse, count tokens,
//!  worker 1 (monoio) ─┼──── channel ─────▶│  record + results processors, JSONL
//!  worker N (monoio) ─┘                   └─ summaries ─▶ main: exporters, console
//! ```
//!
//! Workers own their connections, schedule share and plugin instances; they share only
//! atomics (credits, progress). Parsing and token counting happen off the measuring
//! threads so that they never delay a timestamp.

mod cancel;
mod health;
pub mod ids;
mod on_demand;
mod outcome;
mod paced;
mod pacer;
mod phases;
mod pipeline;
mod rate_ramp;
mod readiness;
mod run;
mod session;
mod slots;
mod spool;
mod urls;
mod worker;

pub use run::{run_profile, RunOutcome};

/// A snapshot of the run's progress, read by the UI from shared atomics.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Progress {
    /// Requests sent (warmup included).
    pub sent: u64,
    /// Requests finished, successful or not.
    pub completed: u64,
    pub errors: u64,
    /// Requests the run will send, when bounded by count.
    pub total: Option<u64>,
    /// Seconds since the run started.
    pub elapsed_s: f64,
    /// The run's duration bound, when bounded by time.
    pub duration_s: Option<f64>,
}
