//! Ramps: how a load setting moves from a start value to its target over a duration.
//!
//! The engine configures a ramp, then asks for [`value_at`](RampProtocol::value_at) as
//! time passes and applies the value (a request rate at every update interval, by which
//! the engine re-plans the wait for the next request; a concurrency limit after
//! rounding). `None` means the ramp is over and the target holds. A ramp that was never
//! configured, or was configured with a duration that is not a positive number, is over
//! at once: the target applies from the start, which is what a zero-length ramp means.

use aiperf_runtime::plugin::{Plugin, PluginContext, PluginError};
use aiperf_runtime::protocols::RampProtocol;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Exp};

use crate::rng::shared_stream_rng;

/// What every ramp holds after `configure`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Span {
    start: f64,
    target: f64,
    duration_s: f64,
}

impl Span {
    fn new(start: f64, target: f64, duration_s: f64) -> Self {
        Span {
            start,
            target,
            duration_s,
        }
    }

    /// The fraction of the duration elapsed, `None` once the ramp is over (or when it
    /// cannot run: a duration or end point that is not a finite number).
    fn progress(&self, elapsed_s: f64) -> Option<f64> {
        let runs = self.duration_s.is_finite()
            && self.duration_s > 0.0
            && self.start.is_finite()
            && self.target.is_finite();
        if !runs || elapsed_s >= self.duration_s {
            return None;
        }
        // Before the start (or a NaN clock reading): the start value.
        if elapsed_s.is_nan() || elapsed_s <= 0.0 {
            return Some(0.0);
        }
        Some(elapsed_s / self.duration_s)
    }

    fn at(&self, fraction: f64) -> f64 {
        self.start + (self.target - self.start) * fraction
    }
}

// -------------------------------------------------------------------------- linear

/// Moves at a constant speed: `start + (target - start) * t / duration`.
#[derive(Debug, Clone, Default)]
pub struct LinearRamp {
    span: Span,
}

impl Plugin for LinearRamp {
    fn create(_ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(LinearRamp::default())
    }
}

impl RampProtocol for LinearRamp {
    fn configure(&mut self, start: f64, target: f64, duration_s: f64) {
        self.span = Span::new(start, target, duration_s);
    }

    fn value_at(&self, elapsed_s: f64) -> Option<f64> {
        self.span.progress(elapsed_s).map(|p| self.span.at(p))
    }
}

// --------------------------------------------------------------------- exponential

/// Eases in: `start + (target - start) * (t / duration)^e` with AIPerf's default exponent
/// `e = 2`, so the value moves slowly at first and fastest at the end.
#[derive(Debug, Clone)]
pub struct ExponentialRamp {
    span: Span,
    exponent: f64,
}

impl ExponentialRamp {
    /// AIPerf's `RamperConfig.exponent` default.
    pub const DEFAULT_EXPONENT: f64 = 2.0;
}

impl Default for ExponentialRamp {
    fn default() -> Self {
        ExponentialRamp {
            span: Span::default(),
            exponent: Self::DEFAULT_EXPONENT,
        }
    }
}

impl Plugin for ExponentialRamp {
    fn create(_ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(ExponentialRamp::default())
    }
}

impl RampProtocol for ExponentialRamp {
    fn configure(&mut self, start: f64, target: f64, duration_s: f64) {
        self.span = Span::new(start, target, duration_s);
    }

    fn value_at(&self, elapsed_s: f64) -> Option<f64> {
        self.span
            .progress(elapsed_s)
            .map(|p| self.span.at(p.powf(self.exponent)))
    }
}

// ------------------------------------------------------------------------- poisson

/// A step function whose steps come at Poisson-distributed instants, as AIPerf's:
/// exponential gaps with rate `|target - start| / duration` (about one step per unit of
/// value) are drawn until they pass the duration, then rescaled so the last step lands
/// exactly at the end; every step moves the value by the same amount and the last one
/// reaches the target.
///
/// Draws come from a stream every worker seeds alike (`--random-seed`, else one seed per
/// process), so the workers of a run ramp their shares in step.
#[derive(Debug, Clone)]
pub struct PoissonRamp {
    span: Span,
    /// Instants of the steps, seconds from the start, ascending; the last is `duration`.
    steps: Vec<f64>,
    rng: StdRng,
}

impl PoissonRamp {
    /// The stream label of the step draws.
    pub const RNG_LABEL: &'static str = "timing.ramp.poisson";
    /// Steps drawn at most: a ramp over a huge range still costs bounded memory (the
    /// value then moves by `range / MAX_STEPS` per step).
    pub const MAX_STEPS: usize = 100_000;

    pub fn new(rng: StdRng) -> Self {
        PoissonRamp {
            span: Span::default(),
            steps: Vec::new(),
            rng,
        }
    }

    /// The step instants drawn by the last `configure` (seconds from the start).
    pub fn step_instants(&self) -> &[f64] {
        &self.steps
    }

    fn draw_steps(&mut self) {
        self.steps.clear();
        let Span {
            start,
            target,
            duration_s,
        } = self.span;
        if self.span.progress(0.0).is_none() {
            return;
        }
        let lambda = (target - start).abs() / duration_s;
        let mut t = 0.0;
        if let Ok(exp) = Exp::new(lambda) {
            while t <= duration_s && self.steps.len() < Self::MAX_STEPS {
                t += exp.sample(&mut self.rng);
                self.steps.push(t);
            }
        }
        // A range of zero (or too small to draw from) is one step at the end.
        let last = self.steps.last().copied().unwrap_or(0.0);
        if !(last.is_finite() && last > 0.0) {
            self.steps.clear();
            self.steps.push(duration_s);
            return;
        }
        let scale = duration_s / last;
        for step in &mut self.steps {
            *step *= scale;
        }
        // Rescaling can leave the last instant a rounding error away from the end.
        if let Some(end) = self.steps.last_mut() {
            *end = duration_s;
        }
    }
}

impl Plugin for PoissonRamp {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(PoissonRamp::new(shared_stream_rng(
            ctx.config.random_seed,
            Self::RNG_LABEL,
        )))
    }
}

impl RampProtocol for PoissonRamp {
    fn configure(&mut self, start: f64, target: f64, duration_s: f64) {
        self.span = Span::new(start, target, duration_s);
        self.draw_steps();
    }

    fn value_at(&self, elapsed_s: f64) -> Option<f64> {
        let progress = self.span.progress(elapsed_s)?;
        // The clock reading itself (not progress times duration, which can round across
        // a step instant), except before the start or for NaN.
        let elapsed = if progress > 0.0 { elapsed_s } else { 0.0 };
        let taken = self.steps.partition_point(|&t| t <= elapsed);
        let fraction = taken as f64 / self.steps.len().max(1) as f64;
        Some(self.span.at(fraction))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_config::{config, context, EMPTY_ENTRY};
    use rand::SeedableRng;

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    #[test]
    fn linear_values() {
        let cfg = config(&["-m", "m"]);
        let mut ramp = LinearRamp::create(&context(&cfg, &EMPTY_ENTRY)).unwrap();
        // The engine's rate ramp: 10 % of the target over 10 s, up to 100 req/s.
        ramp.configure(1.0, 100.0, 10.0);
        assert!(close(ramp.value_at(0.0), 1.0));
        assert!(close(ramp.value_at(-3.0), 1.0));
        assert!(close(ramp.value_at(2.5), 25.75));
        assert!(close(ramp.value_at(5.0), 50.5));
        assert!(close(ramp.value_at(9.9), 99.01));
        assert_eq!(ramp.value_at(10.0), None);
        assert_eq!(ramp.value_at(1e9), None);
        // Downwards too.
        ramp.configure(8.0, 4.0, 2.0);
        assert!(close(ramp.value_at(1.0), 6.0));
    }

    #[test]
    fn exponential_eases_in() {
        let mut ramp = ExponentialRamp::default();
        ramp.configure(1.0, 101.0, 10.0);
        assert!(close(ramp.value_at(0.0), 1.0));
        assert!(close(ramp.value_at(1.0), 2.0));
        assert!(close(ramp.value_at(5.0), 26.0));
        assert!(close(ramp.value_at(9.0), 82.0));
        assert_eq!(ramp.value_at(10.0), None);
    }

    #[test]
    fn unusable_ramps_are_over_at_once() {
        let mut ramp = LinearRamp::default();
        assert_eq!(ramp.value_at(0.0), None, "never configured");
        for duration in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            ramp.configure(1.0, 10.0, duration);
            assert_eq!(ramp.value_at(0.5), None, "duration {duration}");
        }
        ramp.configure(f64::NAN, 10.0, 1.0);
        assert_eq!(ramp.value_at(0.5), None);
        ramp.configure(1.0, 10.0, 1.0);
        assert!(close(ramp.value_at(f64::NAN), 1.0));
        let mut poisson = PoissonRamp::new(StdRng::seed_from_u64(1));
        poisson.configure(1.0, 1e300, f64::MIN_POSITIVE);
        assert!(poisson.step_instants().len() <= PoissonRamp::MAX_STEPS);
        poisson.configure(1.0, 10.0, f64::NAN);
        assert_eq!(poisson.value_at(0.0), None);
    }

    #[test]
    fn poisson_steps_are_equal_and_end_exactly_at_the_target() {
        let mut ramp = PoissonRamp::new(StdRng::seed_from_u64(3));
        ramp.configure(1.0, 101.0, 10.0);
        let steps = ramp.step_instants().to_vec();
        let n = steps.len();
        // About one step per unit of value: 100 expected, Poisson spread ±10.
        assert!((60..=140).contains(&n), "{n} steps");
        assert!(steps.windows(2).all(|w| w[0] <= w[1]), "ascending");
        assert_eq!(steps[n - 1], 10.0);
        let step = 100.0 / n as f64;
        assert!(close(ramp.value_at(0.0), 1.0));
        // Each step instant moves the value by one step, and nothing moves it in between.
        for &t in &steps[..n - 1] {
            for probe in [t - 1e-9, t, t + 1e-9] {
                let taken = steps.partition_point(|&s| s <= probe);
                assert!(close(ramp.value_at(probe), 1.0 + step * taken as f64));
            }
        }
        assert!(close(ramp.value_at(steps[n - 1] - 1e-9), 101.0 - step));
        assert_eq!(ramp.value_at(10.0), None);
    }

    #[test]
    fn poisson_ramp_is_seeded_and_shared_by_workers() {
        let mut cfg = config(&["-m", "m"]);
        cfg.random_seed = Some(9);
        let draw = |cfg: &aiperf_runtime::config::ProfileConfig, worker| {
            let ctx = crate::test_config::worker_context(cfg, worker, 4);
            let mut ramp = PoissonRamp::create(&ctx).unwrap();
            ramp.configure(2.0, 40.0, 3.0);
            ramp.step_instants().to_vec()
        };
        let first = draw(&cfg, 0);
        assert_eq!(first, draw(&cfg, 3));
        cfg.random_seed = Some(10);
        assert_ne!(first, draw(&cfg, 0));
    }

    #[test]
    fn poisson_zero_range_is_one_step_at_the_end() {
        let mut ramp = PoissonRamp::new(StdRng::seed_from_u64(1));
        ramp.configure(5.0, 5.0, 2.0);
        assert_eq!(ramp.step_instants(), &[2.0]);
        assert!(close(ramp.value_at(1.0), 5.0));
        assert_eq!(ramp.value_at(2.0), None);
    }
}
