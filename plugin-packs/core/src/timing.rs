//! Timing strategies: when a worker issues its next request.

mod fixed_schedule;
mod user_centric;

pub use fixed_schedule::{sanity_warnings, FixedScheduleStrategy};
pub use user_centric::{InitialUser, UserCentricStrategy};

use aiperf_runtime::plugin::{Plugin, PluginContext, PluginError};
use aiperf_runtime::protocols::{ArrivalPatternProtocol, NextCredit, TimingStrategyProtocol};
use aiperf_runtime::record::Nanos;

/// Sends at the instants an arrival pattern dictates (open loop), or as soon as a
/// concurrency slot is free when the pattern does not pace.
///
/// The schedule is absolute: each target is the previous *target* plus the next
/// interval, never "now" plus the interval, so a late send does not push every later
/// one back (the drift behind BC-26). The first target is the phase's start (one instant
/// for every worker, given to [`prepare`](TimingStrategyProtocol::prepare)) plus the
/// pattern's first interval, which is how a pattern offsets one worker against the
/// others: anchored at each worker's own first call instead, the merged schedule moved
/// with the workers' start-up skew (milliseconds on a loaded machine, enough to turn a
/// smooth gamma merge into a lumpy one). Without `prepare` the first call's `now` is the
/// anchor. Stop conditions (request count, duration) belong to the engine, and so does
/// who gets a tick: a later turn waiting for one before a new session (AIPerf 0.13's
/// continuation queue; see the runtime's `engine::paced`).
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestRateStrategy {
    target: Option<Nanos>,
}

impl RequestRateStrategy {
    pub fn new() -> Self {
        RequestRateStrategy { target: None }
    }
}

impl Plugin for RequestRateStrategy {
    fn create(_ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(RequestRateStrategy::new())
    }
}

impl TimingStrategyProtocol for RequestRateStrategy {
    fn prepare(
        &mut self,
        _dataset: aiperf_runtime::dataset::DatasetView<'_>,
        _worker: aiperf_runtime::plugin::WorkerShare,
        start: Nanos,
    ) -> Result<(), PluginError> {
        self.target = Some(start);
        Ok(())
    }

    fn next_credit<A: ArrivalPatternProtocol>(
        &mut self,
        arrivals: &mut A,
        now: Nanos,
    ) -> NextCredit {
        let Some(interval) = arrivals.next_interval_ns() else {
            return NextCredit::WhenSlotFree;
        };
        let target = self.target.unwrap_or(now).saturating_add(interval);
        self.target = Some(target);
        NextCredit::At(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrival::{ConcurrencyBurstArrival, ConstantArrival, PoissonArrival};
    use crate::test_config::{config, worker_context};
    use aiperf_runtime::plugin::WorkerShare;

    /// As AIPerf 0.13: the first request is one interval after the start, not at it.
    #[test]
    fn first_credit_is_one_interval_in_then_follows_the_schedule() {
        let mut strategy = RequestRateStrategy::new();
        let mut arrivals = ConstantArrival::new(10.0, WorkerShare { id: 0, count: 1 });
        assert_eq!(
            strategy.next_credit(&mut arrivals, 5_000),
            NextCredit::At(100_005_000)
        );
        assert_eq!(
            strategy.next_credit(&mut arrivals, 5_000),
            NextCredit::At(200_005_000)
        );
    }

    /// Two workers that start their loops at different instants still share one zero:
    /// the phase start, not their first call.
    #[test]
    fn the_schedule_counts_from_the_phase_start_not_the_first_call() {
        let start = 1_000_000;
        let mut first_calls = Vec::new();
        for (id, late_by) in [(0u32, 0u64), (1, 7_000_000)] {
            let share = WorkerShare { id, count: 2 };
            let mut strategy = RequestRateStrategy::new();
            strategy
                .prepare(
                    aiperf_runtime::dataset::DatasetView::Held(&[]),
                    share,
                    start,
                )
                .expect("prepare");
            let mut arrivals = ConstantArrival::new(100.0, share);
            first_calls.push(strategy.next_credit(&mut arrivals, start + late_by));
        }
        // 100 req/s over two workers: worker 1 is offset by 10 ms, however late it began.
        assert_eq!(
            first_calls,
            [
                NextCredit::At(start + 10_000_000),
                NextCredit::At(start + 20_000_000)
            ]
        );
    }

    #[test]
    fn late_calls_never_shift_the_schedule() {
        let mut strategy = RequestRateStrategy::new();
        let mut arrivals = ConstantArrival::new(1000.0, WorkerShare { id: 0, count: 1 });
        let mut now = 0;
        for k in 0..10_000u64 {
            let NextCredit::At(at) = strategy.next_credit(&mut arrivals, now) else {
                panic!("constant pattern must pace");
            };
            assert_eq!(at, (k + 1) * 1_000_000);
            // The worker is always late, by a varying amount.
            now = at + 1_700_000 + (k % 7) * 100_000;
        }
    }

    #[test]
    fn worker_offsets_come_from_the_first_interval() {
        let cfg = config(&["-m", "m", "--request-rate", "100"]);
        let mut arrivals = ConstantArrival::create(&worker_context(&cfg, 2, 4)).unwrap();
        let mut strategy = RequestRateStrategy::new();
        assert_eq!(
            strategy.next_credit(&mut arrivals, 0),
            NextCredit::At(30_000_000)
        );
        assert_eq!(
            strategy.next_credit(&mut arrivals, 0),
            NextCredit::At(70_000_000)
        );
    }

    #[test]
    fn poisson_schedule_is_cumulative() {
        let mut cfg = config(&["-m", "m", "--request-rate", "1000"]);
        cfg.random_seed = Some(5);
        let mut a = PoissonArrival::create(&worker_context(&cfg, 0, 1)).unwrap();
        let mut b = PoissonArrival::create(&worker_context(&cfg, 0, 1)).unwrap();
        let mut strategy = RequestRateStrategy::new();
        let mut expected = 10_000_000_000u64;
        for _ in 0..1000 {
            expected += b.next_interval_ns().unwrap();
            assert_eq!(
                strategy.next_credit(&mut a, 10_000_000_000),
                NextCredit::At(expected)
            );
        }
    }

    #[test]
    fn unpaced_patterns_fill_slots() {
        let mut strategy = RequestRateStrategy::new();
        let mut arrivals = ConcurrencyBurstArrival;
        for now in [0, 10, 20] {
            assert_eq!(
                strategy.next_credit(&mut arrivals, now),
                NextCredit::WhenSlotFree
            );
        }
    }
}
