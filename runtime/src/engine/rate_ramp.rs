//! The request-rate ramp (`--request-rate-ramp-duration`) as a second clock.
//!
//! AIPerf sets the arrival pattern's rate to the ramp's value every update interval
//! (`AIPERF_TIMING_RATE_RAMP_UPDATE_INTERVAL`, 0.1 s) and wakes its rate loop on each
//! change, so an interval is never waited out at a rate that no longer holds. Re-planning
//! what is left of an interval drawn at rate `r` when the rate becomes `r'` scales it by
//! `r / r'`; doing that at every update is the same as drawing every interval at the target
//! rate on a *schedule clock* that runs at `rate(t) / target` of real speed. So the timing
//! strategy and its arrival pattern plan at the target rate, untouched, and the worker maps
//! each planned instant to the real one here. A Poisson pattern becomes a Poisson process
//! of intensity `rate(t)`, a constant one sends once per `1 / target` of the rate's
//! integral, and the workers of a run, all on the same clock, keep their merged sequence.
//!
//! Both mappings move a cursor forward one update step at a time: each call costs the
//! steps crossed since the last one, so a whole ramp costs its number of steps.

use crate::protocols::RampProtocol;
use crate::record::Nanos;

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

/// Where both clocks stand at the start of one update step (nanoseconds since the origin).
#[derive(Debug, Clone, Copy, Default)]
struct Cursor {
    step: u64,
    real: f64,
    schedule: f64,
}

/// Maps instants between the schedule clock (target rate) and the real clock (ramped rate).
pub(crate) struct RateRamp<R> {
    ramp: R,
    target: f64,
    /// The phase start, where both clocks read the same.
    origin: Nanos,
    step_ns: f64,
    step_s: f64,
    /// From this step on the target holds and the clocks only differ by an offset.
    end_step: u64,
    to_real: Cursor,
    to_schedule: Cursor,
}

impl<R: RampProtocol> RateRamp<R> {
    /// `ramp` goes from its start rate to `target` over `duration_s` seconds from `origin`,
    /// and the rate follows it every `step_s` seconds.
    pub(crate) fn new(ramp: R, target: f64, duration_s: f64, step_s: f64, origin: Nanos) -> Self {
        let step_s = if step_s.is_finite() && step_s > 0.0 {
            step_s
        } else {
            UPDATE_INTERVAL_S
        };
        // A ramp beyond 2^40 steps is longer than any run; the bound keeps the loops finite.
        let steps = (duration_s / step_s).ceil();
        let end_step = if steps.is_finite() && steps > 0.0 {
            (steps as u64).min(1 << 40)
        } else {
            0
        };
        RateRamp {
            ramp,
            target,
            origin,
            step_ns: step_s * 1e9,
            step_s,
            end_step,
            to_real: Cursor::default(),
            to_schedule: Cursor::default(),
        }
    }

    /// How fast the schedule clock runs during `step`: the rate set at its start over the
    /// target (1 once the ramp is over).
    fn speed(&self, step: u64) -> f64 {
        if step >= self.end_step || !(self.target.is_finite() && self.target > 0.0) {
            return 1.0;
        }
        match self.ramp.value_at(step as f64 * self.step_s) {
            Some(rate) if rate.is_finite() => (rate / self.target).max(0.0),
            _ => 1.0,
        }
    }

    /// Real minus schedule nanoseconds once the ramp is over, from a cursor at its end.
    fn offset(cursor: &Cursor) -> i128 {
        (cursor.real - cursor.schedule).round() as i128
    }

    fn advance(&self, cursor: Cursor) -> Cursor {
        Cursor {
            step: cursor.step + 1,
            real: cursor.real + self.step_ns,
            schedule: cursor.schedule + self.speed(cursor.step) * self.step_ns,
        }
    }

    /// The real instant of an instant the strategy planned at the target rate. Planned
    /// instants only move forward; one before the cursor maps to the cursor.
    pub(crate) fn real_instant(&mut self, at: Nanos) -> Nanos {
        if at <= self.origin {
            return at;
        }
        let planned = (at - self.origin) as f64;
        loop {
            let c = self.to_real;
            if c.step >= self.end_step {
                return shift(at, Self::offset(&c));
            }
            if planned <= c.schedule {
                return self.origin.saturating_add(c.real as u64);
            }
            let speed = self.speed(c.step);
            let real = c.real + (planned - c.schedule) / speed;
            if speed > 0.0 && real < c.real + self.step_ns {
                return self.origin.saturating_add(real as u64);
            }
            self.to_real = self.advance(c);
        }
    }

    /// The schedule-clock reading at real instant `now`. Readings only move forward.
    pub(crate) fn planned_instant(&mut self, now: Nanos) -> Nanos {
        if now <= self.origin {
            return now;
        }
        let real = (now - self.origin) as f64;
        loop {
            let c = self.to_schedule;
            if c.step >= self.end_step {
                return shift(now, -Self::offset(&c));
            }
            if real < c.real + self.step_ns {
                let planned = c.schedule + (real - c.real).max(0.0) * self.speed(c.step);
                return self.origin.saturating_add(planned as u64);
            }
            self.to_schedule = self.advance(c);
        }
    }
}

fn shift(at: Nanos, by: i128) -> Nanos {
    u64::try_from((i128::from(at) + by).max(0)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A linear ramp, as the core pack's.
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

    const ORIGIN: Nanos = 5_000_000_000;

    /// 20 req/s after a 10 s ramp from 0.2 req/s, as the CLI sets it.
    fn ramp() -> RateRamp<Linear> {
        let mut linear = Linear {
            start: 0.0,
            target: 0.0,
            duration_s: 0.0,
        };
        linear.configure(20.0 * 0.1 / 10.0, 20.0, 10.0);
        RateRamp::new(linear, 20.0, 10.0, 0.1, ORIGIN)
    }

    /// Seconds from the origin.
    fn secs(at: Nanos) -> f64 {
        (at - ORIGIN) as f64 / 1e9
    }

    #[test]
    fn a_constant_schedule_follows_the_integral_of_the_ramped_rate() {
        let mut warp = ramp();
        // A constant pattern at 20 req/s plans every 50 ms; the k-th request is due when
        // the stepped rate's integral reaches k.
        let sent: Vec<f64> = (0..200u64)
            .map(|k| secs(warp.real_instant(ORIGIN + k * 50_000_000)))
            .collect();
        assert_eq!(sent[0], 0.0);
        let integral = |t: f64| -> f64 {
            let mut sum = 0.0;
            let mut s = 0.0;
            while s + 0.1 <= t + 1e-12 {
                sum += (0.2 + 19.8 * s / 10.0) * 0.1;
                s += 0.1;
            }
            sum + (0.2 + 19.8 * s / 10.0) * (t - s).max(0.0)
        };
        for (k, &t) in sent.iter().enumerate().take(100).skip(1) {
            assert!(
                (integral(t) - k as f64).abs() < 1e-6,
                "request {k} at {t} s, integral {}",
                integral(t)
            );
        }
        // Far below the 5 s an interval drawn at the start rate would take.
        assert!(sent[1] > 0.5 && sent[1] < 1.2, "first gap {} s", sent[1]);
        // After the ramp, the planned gaps exactly.
        let after: Vec<u64> = (150..160u64)
            .map(|k| warp.real_instant(ORIGIN + k * 50_000_000))
            .collect();
        assert!(secs(after[0]) > 10.0);
        for w in after.windows(2) {
            assert_eq!(w[1] - w[0], 50_000_000);
        }
    }

    #[test]
    fn the_two_mappings_invert_each_other() {
        let mut there = ramp();
        let mut back = ramp();
        for k in 0..400u64 {
            let planned = ORIGIN + k * 37_000_000;
            let real = there.real_instant(planned);
            let again = back.planned_instant(real);
            assert!(
                (again as i128 - planned as i128).abs() <= 2,
                "{planned} -> {real} -> {again}"
            );
        }
        // Before the phase the clocks agree.
        assert_eq!(ramp().real_instant(ORIGIN - 7), ORIGIN - 7);
        assert_eq!(ramp().planned_instant(ORIGIN - 7), ORIGIN - 7);
    }

    #[test]
    fn a_zero_rate_step_and_a_bad_ramp_do_not_hang() {
        let mut flat = Linear {
            start: 0.0,
            target: 0.0,
            duration_s: 1.0,
        };
        flat.configure(0.0, 0.0, 1.0);
        // The ramp asks for no requests during its second: they wait for its end.
        let mut warp = RateRamp::new(flat, 10.0, 1.0, 0.1, ORIGIN);
        assert_eq!(warp.real_instant(ORIGIN + 1), ORIGIN + 1_000_000_001);
        let mut nan = RateRamp::new(ramp().ramp, 10.0, f64::NAN, f64::NAN, ORIGIN);
        assert_eq!(nan.real_instant(ORIGIN + 9), ORIGIN + 9);
    }
}
