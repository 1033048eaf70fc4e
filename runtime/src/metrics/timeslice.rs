//! Time slices of the profiling phase (`--slice-duration`), cut as AIPerf 0.13 cuts them.
//!
//! The grid starts at the phase's first request and steps by the slice duration; each
//! request belongs to the slice its start falls in, and its whole record (latencies that
//! end in a later slice included) counts there. A slice is summarized exactly as the
//! whole run is, by a [`MetricsAccumulator`] of its own, except that its rates are per
//! second of its window and its sweep-line metrics are those of the whole phase's curves
//! over its window, as AIPerf windows them. Slices no request started in are left out.
//! The last slice ends with the phase's last request, and is marked incomplete when that
//! is before its full length.
//!
//! Memory grows with the slices that hold requests, never with a copy of the records:
//! each record is folded into its slice's accumulator as it arrives, and a grid past
//! [`MAX_TIMESLICES`] slices is given up (with a warning) rather than grown without bound.

use std::collections::BTreeMap;

use super::sweep::{SweepColumns, SweepStats};
use super::MetricsAccumulator;
use crate::record::{Nanos, ParsedRecord};
use crate::results::{MetricRecord, Timeslice};

/// Slices one run may have: 2.7 hours at one second each, a day at ten. Each slice
/// holding a request keeps an accumulator of its own while the run lasts, and its
/// statistics are built into the two files at the end: at 100,000 slices of a 5 s run that
/// took 6 GB and 2 GB of files, out of proportion to what anyone can read from them.
pub const MAX_TIMESLICES: u64 = 10_000;

/// Routes each profiling record to its time slice and summarizes every slice at the end.
#[derive(Debug, Clone)]
pub struct Timeslicer {
    duration_ns: Nanos,
    goodput: bool,
    /// Where slice 0 starts (run clock): the phase's first request.
    origin: Option<Nanos>,
    /// The earliest start added: the origin when no anchor was ever given.
    first_start: Option<Nanos>,
    /// Slices that hold at least one request, by their position on the grid.
    slices: BTreeMap<u64, MetricsAccumulator>,
    /// The latest start or end of any request: where the last slice ends.
    last: Option<Nanos>,
    /// The grid outgrew [`MAX_TIMESLICES`]: no slices are kept for this run.
    abandoned: bool,
}

impl Timeslicer {
    /// Slices of `duration_ns` (at least 1 ns); `goodput`: `--goodput` is set, so
    /// slices report the goodput metrics too.
    pub fn new(duration_ns: Nanos, goodput: bool) -> Self {
        Timeslicer {
            duration_ns: duration_ns.max(1),
            goodput,
            origin: None,
            first_start: None,
            slices: BTreeMap::new(),
            last: None,
            abandoned: false,
        }
    }

    /// Where slice 0 starts, once known.
    pub fn origin(&self) -> Option<Nanos> {
        self.origin
    }

    /// Fixes where slice 0 starts: the instant the phase's first request went out. The
    /// caller learns it from the workers, since records arrive as requests end, not as
    /// they start. Only the first call counts.
    pub fn anchor(&mut self, origin: Nanos) {
        self.origin.get_or_insert(origin);
    }

    /// The grid position of a request that started at `start`. One that started before
    /// the origin counts in the first slice: a request that never went out (cancelled
    /// while it waited, its start left at 0), or one whose worker was descheduled between
    /// reading the clock and publishing the reading. So does every request added before
    /// an anchor.
    pub fn slice_index(&self, start: Nanos) -> u64 {
        self.origin
            .map_or(0, |origin| start.saturating_sub(origin) / self.duration_ns)
    }

    /// Folds one profiling record into its slice.
    pub fn add(&mut self, record: &ParsedRecord, metrics: &MetricRecord) {
        if self.abandoned {
            return;
        }
        let start = record.raw.start_ns;
        self.first_start = Some(self.first_start.map_or(start, |f| f.min(start)));
        let index = self.slice_index(start);
        if index >= MAX_TIMESLICES {
            self.abandon();
            return;
        }
        let end = start.max(record.raw.end_ns);
        self.last = Some(self.last.map_or(end, |l| l.max(end)));
        let goodput = self.goodput;
        self.slices
            .entry(index)
            .or_insert_with(|| {
                MetricsAccumulator::new()
                    .with_goodput(goodput)
                    .for_timeslice()
            })
            .add(record, metrics);
    }

    fn abandon(&mut self) {
        tracing::warn!(
            "--slice-duration {} s cuts the run into more than {MAX_TIMESLICES} time slices: \
             no time-slice exports for this run (a longer slice duration gives them)",
            self.duration_ns as f64 / 1e9
        );
        self.abandoned = true;
        self.slices = BTreeMap::new();
    }

    /// Every slice that holds a request, in time order, summarized; `wall` turns run-clock
    /// instants into the wall-clock nanoseconds the exports carry.
    pub fn finish(mut self, wall: impl Fn(Nanos) -> u64) -> Vec<Timeslice> {
        let (Some(origin), Some(last)) = (self.origin.or(self.first_start), self.last) else {
            return Vec::new();
        };
        let d = self.duration_ns;
        let windows: Vec<(Nanos, Nanos, bool)> = self
            .slices
            .keys()
            .map(|index| {
                let start = origin.saturating_add(index.saturating_mul(d));
                let full_end = start.saturating_add(d);
                // The grid reaches past the last request; the slice holding that instant
                // is cut there, so its rates are not diluted by time nothing ran in.
                let is_complete = full_end <= last;
                let end = if is_complete {
                    full_end
                } else {
                    last.max(start)
                };
                (start, end, is_complete)
            })
            .collect();
        let sweeps = self.sweep_slices(&windows);
        let mut out = Vec::with_capacity(self.slices.len());
        for (i, accumulator) in self.slices.values().enumerate() {
            let (start, end, is_complete) = windows[i];
            let mut metrics = accumulator.summarize_window(Some((end - start) as f64 / 1e9));
            if metrics.is_empty() {
                continue;
            }
            if let Some(stats) = sweeps.get(i) {
                metrics.extend(super::sweep::results(stats));
                metrics.sort_by_key(|m| super::catalogue::catalogue_index(m.tag));
            }
            out.push(Timeslice {
                start_ns: wall(start),
                end_ns: wall(end),
                is_complete,
                metrics,
            });
        }
        out
    }

    /// AIPerf's sweep-line metrics of each slice: the curves of the whole phase (every
    /// slice's requests) over the slice's window. The slices' rows are moved, not copied.
    fn sweep_slices(&mut self, windows: &[(Nanos, Nanos, bool)]) -> Vec<[SweepStats; 14]> {
        let mut rows = SweepColumns::default();
        let mut gaps = Vec::new();
        for accumulator in self.slices.values_mut() {
            accumulator.take_sweep(&mut rows, &mut gaps);
        }
        let windows: Vec<(f64, f64)> = windows
            .iter()
            .map(|&(start, end, _)| (start as f64, end as f64))
            .collect();
        super::sweep::sweep_metrics(&rows, gaps, &windows)
    }
}
