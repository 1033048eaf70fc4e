//! The request-rate ramp (`--request-rate-ramp-duration`), as AIPerf 0.13's rate loop runs
//! it.
//!
//! AIPerf's ramper (`timing/phase/runner.py`, `_create_rampers`; `timing/ramping.py`,
//! `Ramper._run_continuous`) sets the arrival pattern's rate to `target * u / duration`
//! as the phase starts, before the rate loop draws its first interval, then every `u`
//! seconds (`AIPERF_TIMING_RATE_RAMP_UPDATE_INTERVAL`, 0.1 s) to the ramp's value, and to
//! the target at the first update at or past the duration. Its rate loop
//! (`timing/strategies/request_rate.py`, `execute_phase`) keeps one absolute target:
//! after a send, the next is that target plus an interval drawn at the rate then in force.
//! A rate change (`set_request_rate`, only when the rate differs) wakes the loop, and the
//! target becomes the earlier of itself and the change's instant plus an interval drawn
//! at the new rate (`_reschedule_for_rate_update`): a wait is cut short when the new rate
//! would send sooner, never made longer. So at 20 req/s over 1 s the first send is not
//! 0.5 s in (the start rate's interval) but 0.363 s: at 0.1 s the rate is 3.8 and
//! `0.1 + 1/3.8` is earlier.
//!
//! The updates come at fixed instants, so the loop's sends are computed here ahead of
//! time, with the pattern's own draws, rather than by waking at each update. A worker of
//! several runs the *whole* loop, on a pattern that serves the whole run and draws alike
//! on every worker (one seed), and keeps the sends `k` with `k mod count = id`: the union
//! over workers is the single loop's schedule exactly, whatever the pattern. Computing
//! a send costs the updates crossed since the last one, so a whole ramp costs its number
//! of updates, plus `count` draws per request sent by this worker.

use crate::plugin::WorkerShare;
use crate::protocols::{ArrivalPatternProtocol, RampProtocol};

/// AIPerf's default update interval of the rate ramp, in seconds.
const UPDATE_INTERVAL_S: f64 = 0.1;

/// The update interval: `AIPERF_TIMING_RATE_RAMP_UPDATE_INTERVAL` seconds when it is a
/// positive number, else AIPerf's 0.1 s.
pub(crate) fn update_interval_s() -> f64 {
    std::env::var("AIPERF_TIMING_RATE_RAMP_UPDATE_INTERVAL")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0)
        .unwrap_or(UPDATE_INTERVAL_S)
}

/// A worker's arrivals: its pattern as it is, or the pattern driven by a rate ramp.
pub(crate) struct Arrivals<A, R> {
    pattern: A,
    ramp: Option<RateRamp<R>>,
}

impl<A, R> Arrivals<A, R> {
    pub(crate) fn new(pattern: A, ramp: Option<RateRamp<R>>) -> Self {
        Arrivals { pattern, ramp }
    }
}

/// Intervals between this worker's sends; under a ramp, between its sends of the ramped
/// loop (the first from the phase start, as the strategy counts).
impl<A: ArrivalPatternProtocol, R: RampProtocol> ArrivalPatternProtocol for Arrivals<A, R> {
    fn next_interval_ns(&mut self) -> Option<u64> {
        match &mut self.ramp {
            Some(ramp) => ramp.next_interval_ns(&mut self.pattern),
            None => self.pattern.next_interval_ns(),
        }
    }

    /// Under a ramp the ramp sets the rate at its next update, as AIPerf's ramper does.
    fn set_rate(&mut self, rate: f64) {
        self.pattern.set_rate(rate);
    }

    fn rate(&self) -> f64 {
        self.pattern.rate()
    }
}

/// AIPerf's rate loop under a ramp, for one worker's share of its sends.
pub(crate) struct RateRamp<R> {
    ramp: R,
    target: f64,
    step_ns: u64,
    share: WorkerShare,
    /// The rate the pattern draws at.
    rate: f64,
    /// The next update (update `k` is `k` steps after the phase start); `None` once the
    /// target holds.
    next_update: Option<u64>,
    /// The loop's next send, nanoseconds after the phase start; `None` before the first.
    pending: Option<u64>,
    /// Sends of the loop so far, every worker's.
    sent: u64,
    /// This worker's last send, nanoseconds after the phase start.
    last: u64,
}

impl<R: RampProtocol> RateRamp<R> {
    /// A ramp to `target` requests per second over `duration_s`, updated every `step_s`
    /// seconds, for worker `share` of the run, driving a pattern that serves the whole
    /// run and was made at the target rate.
    pub(crate) fn new(
        mut ramp: R,
        target: f64,
        duration_s: f64,
        step_s: f64,
        share: WorkerShare,
    ) -> Self {
        let step_s = if step_s.is_finite() && step_s > 0.0 {
            step_s
        } else {
            UPDATE_INTERVAL_S
        };
        // AIPerf starts at one update's worth of the target (not 1 req/s, which would
        // raise a target below 1); past the target when the ramp is shorter than one
        // update, as AIPerf's is, until the first update sets the target.
        ramp.configure(target * (step_s / duration_s), target, duration_s);
        RateRamp {
            ramp,
            target,
            step_ns: ((step_s * 1e9).round() as u64).max(1),
            share: WorkerShare {
                id: share.id,
                count: share.count.max(1),
            },
            rate: target,
            next_update: Some(0),
            pending: None,
            sent: 0,
            last: 0,
        }
    }

    /// The interval from this worker's last send to its next; `None` when the pattern
    /// does not pace (AIPerf's burst pattern ignores the rate).
    fn next_interval_ns<A: ArrivalPatternProtocol>(&mut self, pattern: &mut A) -> Option<u64> {
        loop {
            let at = self.next_send(pattern)?;
            let k = self.sent;
            self.sent += 1;
            if k % u64::from(self.share.count) == u64::from(self.share.id) {
                // Sends never go back in time: an update moves the next one no earlier
                // than the update itself, which is past the last send.
                let interval = at.saturating_sub(self.last);
                self.last = self.last.max(at);
                return Some(interval);
            }
        }
    }

    /// The loop's next send, nanoseconds after the phase start.
    fn next_send<A: ArrivalPatternProtocol>(&mut self, pattern: &mut A) -> Option<u64> {
        let mut at = match self.pending {
            Some(at) => at,
            None => {
                // The ramper's first value is set before the loop's first draw, and its
                // change wakes the loop at once (update 0): a second draw at the start.
                let first = self.take_update(0).unwrap_or(self.target);
                let changed = self.apply(pattern, first);
                let at = pattern.next_interval_ns()?;
                if changed {
                    at.min(pattern.next_interval_ns()?)
                } else {
                    at
                }
            }
        };
        while let Some(k) = self.next_update {
            let t = k.saturating_mul(self.step_ns);
            // On a tie the send goes first: AIPerf's ramper wakes a little late.
            if t >= at {
                break;
            }
            let rate = self.take_update(k).unwrap_or(self.target);
            if self.apply(pattern, rate) {
                at = at.min(t.saturating_add(pattern.next_interval_ns()?));
            }
        }
        // The next target is drawn as this one is sent, at the rate then in force.
        self.pending = Some(at.saturating_add(pattern.next_interval_ns()?));
        Some(at)
    }

    /// The ramp's value at update `k` (`None`: the ramp is over, the target holds), and
    /// the update after it, if any.
    fn take_update(&mut self, k: u64) -> Option<f64> {
        // Elapsed time from whole nanoseconds, so that an update falling at the duration
        // reads as the duration exactly (a product `k x 0.1` can land a rounding error
        // below it) and the ramp is over there, as AIPerf's, which always wakes late.
        let elapsed_s = k.saturating_mul(self.step_ns) as f64 / 1e9;
        let value = self.ramp.value_at(elapsed_s);
        self.next_update = value.and(k.checked_add(1));
        value
    }

    /// Sets the pattern's rate; whether it changed (AIPerf wakes its loop only then). A
    /// rate that is not a positive number is not applied, as AIPerf refuses it.
    fn apply<A: ArrivalPatternProtocol>(&mut self, pattern: &mut A, rate: f64) -> bool {
        if rate == self.rate {
            return false;
        }
        if !(rate.is_finite() && rate > 0.0) {
            tracing::debug!(rate, "rate ramp: ignoring a rate that is not positive");
            return false;
        }
        pattern.set_rate(rate);
        self.rate = rate;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A linear ramp, as the core pack's.
    #[derive(Default)]
    struct Linear {
        start: f64,
        target: f64,
        duration_s: f64,
    }

    impl RampProtocol for Linear {
        fn configure(&mut self, start: f64, target: f64, duration_s: f64) {
            *self = Linear {
                start,
                target,
                duration_s,
            };
        }

        fn value_at(&self, elapsed_s: f64) -> Option<f64> {
            (elapsed_s < self.duration_s)
                .then(|| self.start + (self.target - self.start) * elapsed_s / self.duration_s)
        }
    }

    /// A constant pattern for the whole run: `1/rate` apart, in whole nanoseconds.
    struct Constant(f64);

    impl ArrivalPatternProtocol for Constant {
        fn next_interval_ns(&mut self) -> Option<u64> {
            Some((1e9 / self.0).round() as u64)
        }
        fn set_rate(&mut self, rate: f64) {
            self.0 = rate;
        }
        fn rate(&self) -> f64 {
            self.0
        }
    }

    /// Draws from a fixed list, whatever the rate (a stand-in for a random pattern).
    struct Listed(Vec<u64>, f64);

    impl ArrivalPatternProtocol for Listed {
        fn next_interval_ns(&mut self) -> Option<u64> {
            (!self.0.is_empty()).then(|| self.0.remove(0))
        }
        fn set_rate(&mut self, rate: f64) {
            self.1 = rate;
        }
        fn rate(&self) -> f64 {
            self.1
        }
    }

    fn ramped(target: f64, duration_s: f64, share: WorkerShare) -> Arrivals<Constant, Linear> {
        let ramp = RateRamp::new(Linear::default(), target, duration_s, 0.1, share);
        Arrivals::new(Constant(target), Some(ramp))
    }

    /// This worker's first `n` sends, in seconds from the phase start.
    fn sends<A: ArrivalPatternProtocol>(arrivals: &mut A, n: usize) -> Vec<f64> {
        let mut at = 0u64;
        (0..n)
            .map(|_| {
                at += arrivals.next_interval_ns().expect("paced");
                at as f64 / 1e9
            })
            .collect()
    }

    /// AIPerf 0.13's rate loop under its linear ramp, for a constant pattern, in plain
    /// floating point: the rule as `request_rate.py` and `ramping.py` state it.
    fn aiperf_loop(target: f64, duration: f64, n: usize) -> Vec<f64> {
        let u = 0.1;
        let start = target * u / duration;
        let rate_at = |k: u32| {
            let t = f64::from(k) * u;
            if t >= duration - 1e-12 {
                target
            } else {
                start + (target - start) * t / duration
            }
        };
        let (mut rate, mut k, mut pending) = (start, 1u32, 1.0 / start);
        let mut out = Vec::new();
        while out.len() < n {
            while f64::from(k) * u < pending && rate != target {
                let t = f64::from(k) * u;
                rate = rate_at(k);
                pending = pending.min(t + 1.0 / rate);
                k += 1;
            }
            out.push(pending);
            pending += 1.0 / rate;
        }
        out
    }

    #[test]
    fn the_first_send_waits_for_the_update_that_cuts_the_start_interval_short() {
        let one = WorkerShare { id: 0, count: 1 };
        let got = sends(&mut ramped(20.0, 1.0, one), 12);
        // 2 req/s at first (0.5 s away); at 0.1 s the rate is 3.8: 0.1 + 1/3.8 s.
        assert!((got[0] - 0.363_157_895).abs() < 1e-9, "{got:?}");
        let want = aiperf_loop(20.0, 1.0, 12);
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g - w).abs() < 1e-8,
                "sent at {got:?}, AIPerf's loop {want:?}"
            );
        }
        // Eight sends within the ramp's second, then 50 ms apart.
        assert_eq!(got.iter().filter(|&&t| t < 1.0).count(), 8);
        assert!((got[9] - got[8] - 0.05).abs() < 1e-9, "{got:?}");
    }

    #[test]
    fn a_longer_ramp_follows_the_same_rule() {
        let one = WorkerShare { id: 0, count: 1 };
        let got = sends(&mut ramped(100.0, 2.0, one), 200);
        let want = aiperf_loop(100.0, 2.0, 200);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-7, "{g} against AIPerf's {w}");
        }
        // 5 req/s at first: 0.2 s, which stands: at 0.1 s the rate is 9.75, and
        // 0.1 + 1/9.75 s is later; the send at 0.2 s goes before the update there.
        assert_eq!(got[0], 0.2, "{got:?}");
        // Then 0.2 + 1/14.5 s (the rate set at 0.2 s cuts the 1/5 s short), and one more
        // 1/14.5 s: the rate of 19.25 set at 0.3 s would send later.
        assert!((got[1] - (0.2 + 1.0 / 14.5)).abs() < 1e-9, "{got:?}");
        assert!((got[2] - (0.2 + 2.0 / 14.5)).abs() < 1e-9, "{got:?}");
    }

    #[test]
    fn workers_keep_every_count_th_send_of_the_one_loop() {
        let whole = sends(
            &mut ramped(100.0, 2.0, WorkerShare { id: 0, count: 1 }),
            300,
        );
        let mut merged: Vec<f64> = (0..3)
            .flat_map(|id| sends(&mut ramped(100.0, 2.0, WorkerShare { id, count: 3 }), 100))
            .collect();
        merged.sort_by(f64::total_cmp);
        assert_eq!(merged, whole);
        let second = sends(&mut ramped(100.0, 2.0, WorkerShare { id: 1, count: 3 }), 3);
        assert_eq!(second, [whole[1], whole[4], whole[7]]);
    }

    #[test]
    fn a_rate_change_redraws_and_keeps_the_earlier_instant() {
        // Draws: the first at the start rate, the redraw the start's change asks for,
        // then one per change and one per send, whatever they are.
        let ramp = RateRamp::new(
            Linear::default(),
            10.0,
            0.3,
            0.1,
            WorkerShare { id: 0, count: 1 },
        );
        let draws = [400, 250, 90, 500, 10, 7, 1, 1];
        let draws = draws.iter().map(|d| d * 1_000_000).collect();
        let mut arrivals = Arrivals::new(Listed(draws, 10.0), Some(ramp));
        let got: Vec<u64> = (0..3)
            .map(|_| arrivals.next_interval_ns().expect("drawn") / 1_000_000)
            .collect();
        // min(400, 250) = 250; at 100: min(250, 100 + 90) = 190 is sent; next 190 + 500;
        // at 200: 200 + 10 = 210 is sent (after 20); next 210 + 7 = 217, before the
        // update at 300; then 217 + 1.
        assert_eq!(got, [190, 20, 7]);
        // The rate of the update at 0.2 s: 10/3 + (10 - 10/3) x 2/3.
        assert!(
            (arrivals.rate() - 70.0 / 9.0).abs() < 1e-9,
            "{}",
            arrivals.rate()
        );
    }

    #[test]
    fn after_the_ramp_the_target_holds_and_a_short_ramp_starts_above_it() {
        // A ramp shorter than one update starts at twice the target, as AIPerf's does,
        // and the update at 0.1 s sets the target.
        let one = WorkerShare { id: 0, count: 1 };
        let got = sends(&mut ramped(10.0, 0.05, one), 4);
        // The send at 0.1 s goes before the update there, still at 20 req/s.
        assert_eq!(got, [0.05, 0.1, 0.15, 0.25]);
        let ramp = RateRamp::new(Linear::default(), 10.0, 0.05, f64::NAN, one);
        assert_eq!(ramp.step_ns, 100_000_000);
    }

    #[test]
    fn unpaced_patterns_stay_unpaced_and_no_ramp_passes_through() {
        let one = WorkerShare { id: 0, count: 1 };
        let ramp = RateRamp::new(Linear::default(), 10.0, 1.0, 0.1, one);
        let mut burst = Arrivals::new(Listed(Vec::new(), 0.0), Some(ramp));
        assert_eq!(burst.next_interval_ns(), None);
        let mut plain: Arrivals<Constant, Linear> = Arrivals::new(Constant(4.0), None);
        assert_eq!(sends(&mut plain, 2), [0.25, 0.5]);
    }
}
