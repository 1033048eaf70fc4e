//! Arrival patterns: the intervals between request starts of one worker.
//!
//! The engine runs one instance per measuring worker. Each serves `1/count` of the run's
//! rate: a Poisson process of rate λ split into N independent ones of rate λ/N is again
//! Poisson when merged, and N constant schedules offset by `1/λ` from each other merge
//! into one evenly spaced schedule. So no worker ever consults another.
//!
//! The gamma pattern is the exception: a merge of gamma processes is not gamma, so its
//! workers thin one shared sequence instead (see [`GammaArrival`]). Under a rate ramp
//! every pattern is thinned so: the engine gives each worker an instance for the whole
//! run (worker 0 of 1, one seed for all) and keeps every `count`-th of the ramped loop's
//! sends (the runtime's `engine::rate_ramp`).
//!
//! `rate()` and `set_rate()` speak in the run's total rate (what `--request-rate`
//! means); each instance divides by its share itself.

use aiperf_runtime::config::ProfileConfig;
use aiperf_runtime::plugin::{Plugin, PluginContext, PluginError, WorkerShare};
use aiperf_runtime::protocols::ArrivalPatternProtocol;
use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::{Distribution, Exp, Gamma};

use crate::rng::{shared_stream_rng, stream_rng};

const NANOS_PER_SEC: f64 = 1e9;

/// The per-worker share, `0 of 1` for an instance that serves the whole run.
fn share(ctx: &PluginContext<'_>) -> WorkerShare {
    match ctx.worker {
        Some(share) if share.count > 0 => share,
        _ => WorkerShare { id: 0, count: 1 },
    }
}

/// The run's `--request-rate`, which the rate patterns cannot do without.
fn required_rate(ctx: &PluginContext<'_>, pattern: &str) -> Result<f64, PluginError> {
    match ctx.config.request_rate {
        Some(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        Some(rate) => Err(PluginError::Config(format!(
            "the `{pattern}` arrival pattern needs a positive --request-rate, got {rate}"
        ))),
        None => Err(PluginError::Config(format!(
            "the `{pattern}` arrival pattern needs --request-rate (requests per second)"
        ))),
    }
}

fn valid_rate(rate: f64) -> bool {
    rate.is_finite() && rate > 0.0
}

/// Seconds to whole nanoseconds, saturating: an absurdly small rate must not wrap.
fn secs_to_ns(secs: f64) -> u64 {
    let ns = (secs * NANOS_PER_SEC).round();
    if ns.is_nan() || ns <= 0.0 {
        0
    } else if ns >= u64::MAX as f64 {
        u64::MAX
    } else {
        ns as u64
    }
}

// ------------------------------------------------------------------------ constant

/// Requests exactly `1/rate` apart, the first one interval after the phase's start, as
/// AIPerf 0.13 schedules it. Worker `i` of `N` starts at `(i+1)/rate` so that the merged
/// schedule of all workers is evenly spaced at the total rate.
#[derive(Debug, Clone)]
pub struct ConstantArrival {
    total_rate: f64,
    share: WorkerShare,
    /// The offset still to be returned as the first interval.
    first_ns: Option<u64>,
    /// Fractional nanoseconds carried between intervals, so that rates whose period is
    /// not a whole number of nanoseconds do not drift (3 req/s over 10^6 requests would
    /// otherwise lose a third of a millisecond).
    carry_ns: f64,
}

impl ConstantArrival {
    pub fn new(total_rate: f64, share: WorkerShare) -> Self {
        let offset_s = (f64::from(share.id) + 1.0) / total_rate;
        ConstantArrival {
            total_rate,
            share,
            first_ns: Some(secs_to_ns(offset_s)),
            carry_ns: 0.0,
        }
    }

    fn period_ns(&self) -> f64 {
        f64::from(self.share.count) / self.total_rate * NANOS_PER_SEC
    }
}

impl Plugin for ConstantArrival {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(ConstantArrival::new(
            required_rate(ctx, "constant")?,
            share(ctx),
        ))
    }
}

impl ArrivalPatternProtocol for ConstantArrival {
    fn next_interval_ns(&mut self) -> Option<u64> {
        if let Some(first) = self.first_ns.take() {
            return Some(first);
        }
        let exact = self.period_ns() + self.carry_ns;
        let whole = exact.floor();
        self.carry_ns = exact - whole;
        Some(secs_to_ns(whole / NANOS_PER_SEC))
    }

    fn set_rate(&mut self, rate: f64) {
        if valid_rate(rate) {
            self.total_rate = rate;
            // A rate set before the first arrival places it too: AIPerf's rate ramp sets
            // its start rate before the loop's first draw.
            if self.first_ns.is_some() {
                let offset_s = (f64::from(self.share.id) + 1.0) / rate;
                self.first_ns = Some(secs_to_ns(offset_s));
            }
        } else {
            tracing::warn!(
                rate,
                "ignoring invalid request rate for the constant pattern"
            );
        }
    }

    fn rate(&self) -> f64 {
        self.total_rate
    }
}

// ------------------------------------------------------------------------- poisson

/// Exponentially distributed intervals: a Poisson process of rate `rate/N` per worker.
///
/// Every worker's first request comes one interval after the phase's start, as AIPerf
/// 0.13 schedules its first (a Poisson process started at the phase's start).
///
/// A bounded phase (a duration, a request count, or both) draws its arrivals from the
/// Poisson process *conditioned on the count its rate implies*: `rate x duration`
/// arrivals (or the request count, over `count / rate` seconds), placed as that many
/// sorted uniform instants, which is exactly what such a process looks like once its count
/// is known. Gaps keep their exponential shape (coefficient of variation 1), and a
/// 30 s run at 200 req/s offers 6,000 requests, not 6,000 ± 77 (left free, one run in
/// three would miss the rate by more than 1 %). Past the bound (arrivals skipped under a
/// concurrency cap are made up there) a fresh Poisson process continues; a rate ramp or
/// a rate change lifts the conditioning, since the count no longer follows from the rate.
#[derive(Debug, Clone)]
pub struct PoissonArrival {
    total_rate: f64,
    share: WorkerShare,
    exp: Exp<f64>,
    rng: StdRng,
    window: Option<Window>,
}

/// This worker's share of a bounded phase's arrivals, still to be placed.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Window {
    /// End of the window, nanoseconds after the phase start.
    end_ns: f64,
    /// Arrivals left to place inside it.
    left: u64,
    /// The last arrival placed (exact), and the same as handed out (whole nanoseconds).
    at_ns: f64,
    at_whole: u64,
    /// This worker's last arrival is the window's end: a count's window is conditioned on
    /// its last arrival coming `count / rate` after the start (worker 0 holds it), so the
    /// phase lasts that long, as an unconditioned process does on average; placed at
    /// random below the end, every short run read faster than its rate.
    pin_last: bool,
}

impl Window {
    /// The window of worker `share` for `arrivals` in all over `seconds`. A worker whose
    /// share is none (more workers than arrivals) still has one: its first arrival is
    /// past the window, where the free process continues.
    fn new(arrivals: u64, seconds: f64, share: WorkerShare, by_count: bool) -> Option<Window> {
        let count = u64::from(share.count.max(1));
        let left = arrivals / count + u64::from(u64::from(share.id) < arrivals % count);
        let end_ns = seconds * NANOS_PER_SEC;
        (arrivals > 0 && end_ns.is_finite() && end_ns > 0.0).then_some(Window {
            end_ns,
            left,
            at_ns: 0.0,
            at_whole: 0,
            pin_last: by_count && share.id == 0 && left > 0,
        })
    }

    /// The phase's arrival count and window length, when its bounds and rate fix them, and
    /// whether the count fixed them (rather than the duration).
    fn bounds(config: &ProfileConfig, rate: f64) -> Option<(u64, f64, bool)> {
        if config.request_rate_ramp_duration.is_some_and(|d| d > 0.0) {
            return None;
        }
        let by_count = config.request_count.map(|n| (n, n as f64 / rate, true));
        let by_duration = config
            .benchmark_duration
            .filter(|d| d.is_finite() && *d > 0.0)
            .map(|d| ((rate * d).round() as u64, d, false));
        match (by_count, by_duration) {
            (Some(c), Some(d)) => Some(if c.1 <= d.1 { c } else { d }),
            (c, d) => c.or(d),
        }
    }

    /// Moves to `at_ns` (exact) and returns the whole nanoseconds since the last arrival.
    fn step_to(&mut self, at_ns: f64) -> u64 {
        self.at_ns = at_ns;
        let whole = secs_to_ns(at_ns / NANOS_PER_SEC).max(self.at_whole);
        let interval = whole - self.at_whole;
        self.at_whole = whole;
        interval
    }

    /// The next of the window's sorted uniform arrivals: given `left` uniforms above the
    /// last one, the smallest is `end - (end - last) * U^(1/left)`.
    fn next(&mut self, rng: &mut StdRng) -> u64 {
        let uniforms = self.left - u64::from(self.pin_last);
        let at = if uniforms == 0 {
            self.end_ns
        } else {
            // 1 - [0, 1) is (0, 1]: the logarithm stays finite.
            let u = 1.0 - rng.random::<f64>();
            let fraction = -(u.ln() / uniforms as f64).exp_m1();
            self.at_ns + (self.end_ns - self.at_ns) * fraction
        };
        self.left -= 1;
        self.step_to(at)
    }
}

impl PoissonArrival {
    /// The stream label of the interval draws (per worker).
    pub const RNG_LABEL: &'static str = "timing.request.poisson_interval";

    pub fn new(total_rate: f64, share: WorkerShare, rng: StdRng) -> Result<Self, PluginError> {
        let exp = worker_exp(total_rate, share).ok_or_else(|| {
            PluginError::Config(format!("invalid request rate {total_rate} for `poisson`"))
        })?;
        Ok(PoissonArrival {
            total_rate,
            share,
            exp,
            rng,
            window: None,
        })
    }

    /// Conditions the first `arrivals` of the run (this worker's share of them) on all
    /// falling within `seconds` of its start; see the type's documentation.
    /// `by_count`: the count bounds the phase (its last arrival ends the window).
    pub fn bounded(mut self, arrivals: u64, seconds: f64, by_count: bool) -> Self {
        self.window = Window::new(arrivals, seconds, self.share, by_count);
        self
    }
}

fn worker_exp(total_rate: f64, share: WorkerShare) -> Option<Exp<f64>> {
    let worker_rate = total_rate / f64::from(share.count.max(1));
    if valid_rate(worker_rate) {
        Exp::new(worker_rate).ok()
    } else {
        None
    }
}

impl Plugin for PoissonArrival {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        let rate = required_rate(ctx, "poisson")?;
        let share = share(ctx);
        let rng = stream_rng(ctx.config.random_seed, Self::RNG_LABEL, share.id);
        let arrival = PoissonArrival::new(rate, share, rng)?;
        Ok(match Window::bounds(ctx.config, rate) {
            Some((arrivals, seconds, by_count)) => arrival.bounded(arrivals, seconds, by_count),
            None => arrival,
        })
    }
}

impl ArrivalPatternProtocol for PoissonArrival {
    fn next_interval_ns(&mut self) -> Option<u64> {
        let Some(w) = &mut self.window else {
            return Some(secs_to_ns(self.exp.sample(&mut self.rng)));
        };
        if w.left > 0 {
            return Some(w.next(&mut self.rng));
        }
        // Every conditioned arrival is out: a fresh process starts at the window's end.
        let at = w.end_ns.max(w.at_ns) + self.exp.sample(&mut self.rng) * NANOS_PER_SEC;
        let interval = w.step_to(at);
        self.window = None;
        Some(interval)
    }

    fn set_rate(&mut self, rate: f64) {
        match worker_exp(rate, self.share) {
            Some(exp) => {
                self.total_rate = rate;
                self.exp = exp;
                self.window = None;
            }
            None => tracing::warn!(
                rate,
                "ignoring invalid request rate for the poisson pattern"
            ),
        }
    }

    fn rate(&self) -> f64 {
        self.total_rate
    }
}

// --------------------------------------------------------------------------- gamma

/// Gamma-distributed intervals (AIPerf's and vLLM's `--burstiness`): shape `s` =
/// `--arrival-smoothness` (default 1, which is Poisson), scale `1/(rate*s)`, so the mean
/// interval is `1/rate` and the coefficient of variation `1/sqrt(s)`: `s < 1` is bursty,
/// `s > 1` smoother than Poisson.
///
/// How a run is split over workers: a merge of N independent gamma renewal processes is
/// not a gamma process (as N grows it tends to Poisson and the smoothness asked for is
/// lost). So every worker draws the *same* sequence of intervals at the run's total rate
/// (seeded alike, see [`shared_stream_rng`]) and keeps every `count`-th arrival, starting
/// with arrival `id + 1`; arrival 1 comes one interval after the phase's start, as
/// AIPerf 0.13 schedules it. The union over workers is then exactly the
/// one gamma process of the total rate. The price is `count` draws per request sent, a
/// few tens of nanoseconds each. A rate change applies to the draws made after it; a
/// worker draws ahead to its own next arrival, so during a ramp the workers' views of the
/// shared sequence differ by at most one interval of each.
#[derive(Debug, Clone)]
pub struct GammaArrival {
    total_rate: f64,
    shape: f64,
    share: WorkerShare,
    /// Gamma(shape, 1/shape): mean 1, scaled by `1/total_rate` per draw.
    unit: Gamma<f64>,
    rng: StdRng,
    started: bool,
    /// Fractional nanoseconds carried between intervals (see [`ConstantArrival`]), so
    /// that each worker's rounding never moves its arrivals off the shared sequence.
    carry_ns: f64,
}

impl GammaArrival {
    /// The stream label of the shared interval draws.
    pub const RNG_LABEL: &'static str = "timing.request.gamma_interval";

    pub fn new(
        total_rate: f64,
        shape: f64,
        share: WorkerShare,
        rng: StdRng,
    ) -> Result<Self, PluginError> {
        if !valid_rate(total_rate) {
            return Err(PluginError::Config(format!(
                "invalid request rate {total_rate} for `gamma`"
            )));
        }
        let unit = unit_gamma(shape)?;
        Ok(GammaArrival {
            total_rate,
            shape,
            share: WorkerShare {
                id: share.id,
                count: share.count.max(1),
            },
            unit,
            rng,
            started: false,
            carry_ns: 0.0,
        })
    }

    /// The gamma shape in use.
    pub fn shape(&self) -> f64 {
        self.shape
    }

    /// The sum of the next `draws` shared intervals, in whole nanoseconds.
    fn advance(&mut self, draws: u32) -> u64 {
        let mut units = 0.0;
        for _ in 0..draws {
            units += self.unit.sample(&mut self.rng);
        }
        let exact = units / self.total_rate * NANOS_PER_SEC + self.carry_ns;
        let whole = exact.floor();
        self.carry_ns = exact - whole;
        secs_to_ns(whole / NANOS_PER_SEC)
    }
}

fn unit_gamma(shape: f64) -> Result<Gamma<f64>, PluginError> {
    let invalid = || {
        PluginError::Config(format!(
            "--arrival-smoothness must be a positive number, got {shape}"
        ))
    };
    if !(shape.is_finite() && shape > 0.0) {
        return Err(invalid());
    }
    Gamma::new(shape, 1.0 / shape).map_err(|_| invalid())
}

impl Plugin for GammaArrival {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        let rate = required_rate(ctx, "gamma")?;
        let shape = ctx.config.arrival_smoothness.unwrap_or(1.0);
        let rng = shared_stream_rng(ctx.config.random_seed, Self::RNG_LABEL);
        GammaArrival::new(rate, shape, share(ctx), rng)
    }
}

impl ArrivalPatternProtocol for GammaArrival {
    fn next_interval_ns(&mut self) -> Option<u64> {
        if !self.started {
            self.started = true;
            // Arrival k of the shared sequence is k intervals in; worker `id` owns
            // arrival `id + 1` first.
            return Some(self.advance(self.share.id + 1));
        }
        Some(self.advance(self.share.count))
    }

    fn set_rate(&mut self, rate: f64) {
        if valid_rate(rate) {
            self.total_rate = rate;
        } else {
            tracing::warn!(rate, "ignoring invalid request rate for the gamma pattern");
        }
    }

    fn rate(&self) -> f64 {
        self.total_rate
    }
}

// ---------------------------------------------------------------- concurrency burst

/// No pacing: every free concurrency slot is filled at once.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConcurrencyBurstArrival;

impl Plugin for ConcurrencyBurstArrival {
    fn create(_ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(ConcurrencyBurstArrival)
    }
}

impl ArrivalPatternProtocol for ConcurrencyBurstArrival {
    fn next_interval_ns(&mut self) -> Option<u64> {
        None
    }

    fn set_rate(&mut self, _rate: f64) {}

    fn rate(&self) -> f64 {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_config::{config, worker_context};

    fn poisson(rate: f64, id: u32, count: u32, seed: u64) -> PoissonArrival {
        let cfg = config(&["-m", "m", "--request-rate", &rate.to_string()]);
        let mut cfg = cfg;
        cfg.random_seed = Some(seed);
        PoissonArrival::create(&worker_context(&cfg, id, count)).unwrap()
    }

    fn mean_and_cv(samples: &[f64]) -> (f64, f64) {
        let n = samples.len() as f64;
        let mean = samples.iter().sum::<f64>() / n;
        let var = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt() / mean)
    }

    #[test]
    fn poisson_intervals_have_mean_one_over_rate_and_cv_one() {
        let mut p = poisson(200.0, 0, 1, 42);
        // The first interval is one of them: the process starts at the phase's start.
        let samples: Vec<f64> = (0..100_000)
            .map(|_| p.next_interval_ns().unwrap() as f64 / 1e9)
            .collect();
        let (mean, cv) = mean_and_cv(&samples);
        // Standard error of the mean is 1/(rate*sqrt(n)) = 0.3 %; allow 1.5 %.
        assert!((mean - 0.005).abs() < 0.005 * 0.015, "mean {mean}");
        assert!((cv - 1.0).abs() < 0.02, "cv {cv}");
    }

    #[test]
    fn poisson_split_over_workers_keeps_the_total_rate() {
        let mut p = poisson(100.0, 3, 4, 1);
        assert_ne!(
            p.next_interval_ns(),
            Some(0),
            "only worker 0 starts at once"
        );
        let samples: Vec<f64> = (0..100_000)
            .map(|_| p.next_interval_ns().unwrap() as f64 / 1e9)
            .collect();
        let (mean, _) = mean_and_cv(&samples);
        assert!((mean - 0.04).abs() < 0.04 * 0.015, "mean {mean}");
        assert_eq!(p.rate(), 100.0);
    }

    #[test]
    fn poisson_is_reproducible_per_seed_and_distinct_per_worker() {
        let draw = |id, seed| -> Vec<Option<u64>> {
            let mut p = poisson(10.0, id, 2, seed);
            (0..5).map(|_| p.next_interval_ns()).collect()
        };
        assert_eq!(draw(1, 9), draw(1, 9));
        assert_ne!(draw(1, 9)[1..], draw(0, 9)[1..]);
        assert_ne!(draw(1, 9), draw(1, 10));
    }

    #[test]
    fn poisson_set_rate_changes_later_intervals() {
        let mut p = poisson(10.0, 0, 1, 3);
        p.set_rate(1000.0);
        p.set_rate(-1.0);
        p.set_rate(f64::NAN);
        assert_eq!(p.rate(), 1000.0);
        p.next_interval_ns();
        let mean = (0..10_000)
            .map(|_| p.next_interval_ns().unwrap() as f64)
            .sum::<f64>()
            / 1e4;
        assert!((mean - 1e6).abs() < 1e6 * 0.05, "mean {mean}");
    }

    /// A configuration of `-m m` and these flags.
    fn flags(line: &str) -> ProfileConfig {
        let args: Vec<&str> = ["-m", "m"]
            .into_iter()
            .chain(line.split_whitespace())
            .collect();
        config(&args)
    }

    /// Arrival instants (ns after the phase start) of `workers` bounded Poisson workers,
    /// `per_worker` each, merged and sorted.
    fn merged_bounded(args: &str, workers: u32, per_worker: usize) -> Vec<u64> {
        let mut cfg = flags(args);
        cfg.random_seed = Some(7);
        let mut all = Vec::new();
        for id in 0..workers {
            let mut p = PoissonArrival::create(&worker_context(&cfg, id, workers)).unwrap();
            let mut t = 0u64;
            for _ in 0..per_worker {
                t += p.next_interval_ns().unwrap();
                all.push(t);
            }
        }
        all.sort_unstable();
        all
    }

    #[test]
    fn bounded_duration_places_exactly_rate_times_duration_arrivals() {
        let args = "--request-rate 200 --benchmark-duration 30";
        let all = merged_bounded(args, 2, 3_100);
        let inside = all.iter().filter(|&&t| t < 30_000_000_000).count();
        assert_eq!(inside, 6_000);
        // The first arrival is an interval in (5 ms on average), not at the start.
        assert!((1..50_000_000).contains(&all[0]), "first at {} ns", all[0]);
        // The gaps inside the window are those of a Poisson process: CV 1.
        let gaps: Vec<f64> = all[..6_000]
            .windows(2)
            .map(|w| (w[1] - w[0]) as f64)
            .collect();
        let (mean, cv) = mean_and_cv(&gaps);
        assert!((mean - 5e6).abs() < 5e6 * 0.01, "mean {mean}");
        assert!((cv - 1.0).abs() < 0.05, "cv {cv}");
        // Past the window a fresh process continues at the same rate.
        let after = all.len() - inside;
        assert!(
            (150..250).contains(&after),
            "{after} arrivals in the 0.5 s after"
        );
        assert_eq!(all, merged_bounded(args, 2, 3_100), "reproducible per seed");
    }

    #[test]
    fn bounded_count_spans_count_over_rate() {
        let all = merged_bounded("--request-rate 100 --request-count 1001", 3, 334);
        // 1001 requests at 100/s: all of them within 10.01 s, split 334/334/333, and the
        // last one exactly then.
        let inside = all.iter().filter(|&&t| t <= 10_010_000_000).count();
        assert_eq!(inside, 1_001, "worker 2's 334th arrival is past the window");
        assert_eq!(all[1_000], 10_010_000_000);
        assert!(*all.last().unwrap() > 10_010_000_000);
        // Both bounds: the first one reached fixes the count.
        let both = "--request-rate 100 --request-count 5000 --benchmark-duration 2";
        let all = merged_bounded(both, 1, 250);
        assert_eq!(all.iter().filter(|&&t| t < 2_000_000_000).count(), 200);
    }

    #[test]
    fn more_workers_than_arrivals_still_place_exactly_the_count() {
        // 2 arrivals in 1 s over 8 workers: six workers have none inside the window.
        let all = merged_bounded("--request-rate 2 --benchmark-duration 1", 8, 2);
        assert_eq!(all.iter().filter(|&&t| t < 1_000_000_000).count(), 2);
        let all = merged_bounded("--request-rate 1 --request-count 3", 16, 1);
        assert_eq!(all.iter().filter(|&&t| t <= 3_000_000_000).count(), 3);
    }

    #[test]
    fn a_ramp_or_a_rate_change_lifts_the_bound() {
        let ramped =
            flags("--request-rate 200 --benchmark-duration 30 --request-rate-ramp-duration 5");
        let p = PoissonArrival::create(&worker_context(&ramped, 0, 1)).unwrap();
        assert_eq!(p.window, None);
        let cfg = flags("--request-rate 10 --benchmark-duration 9");
        let mut p = PoissonArrival::create(&worker_context(&cfg, 0, 1)).unwrap();
        assert!(p.window.is_some());
        p.set_rate(20.0);
        assert_eq!(p.window, None);
    }

    #[test]
    fn constant_spacing_is_exact_and_offsets_workers() {
        let cfg = config(&["-m", "m", "--request-rate", "4"]);
        let mut single = ConstantArrival::create(&worker_context(&cfg, 0, 1)).unwrap();
        let first: Vec<_> = (0..4).map(|_| single.next_interval_ns().unwrap()).collect();
        assert_eq!(first, vec![250_000_000; 4], "the first one interval in");

        // Four workers at 4 req/s in total: each sends every second, offset by 250 ms, and
        // the merged schedule is 250, 500, 750, 1000, ... ms.
        let mut merged = Vec::new();
        for id in 0..4 {
            let mut w = ConstantArrival::create(&worker_context(&cfg, id, 4)).unwrap();
            let mut t = 0u64;
            for _ in 0..3 {
                t += w.next_interval_ns().unwrap();
                merged.push(t);
            }
        }
        merged.sort_unstable();
        let expected: Vec<u64> = (1..=12).map(|k| k * 250_000_000).collect();
        assert_eq!(merged, expected);
    }

    #[test]
    fn a_rate_set_before_the_first_arrival_places_it() {
        // AIPerf's rate ramp sets its start rate before the loop's first draw.
        let mut c = ConstantArrival::new(20.0, WorkerShare { id: 1, count: 2 });
        c.set_rate(2.0);
        assert_eq!(
            c.next_interval_ns(),
            Some(1_000_000_000),
            "worker 1: 2/rate"
        );
        c.set_rate(4.0);
        assert_eq!(
            c.next_interval_ns(),
            Some(500_000_000),
            "then 2 workers / 4 req/s"
        );
    }

    #[test]
    fn constant_non_integral_period_does_not_drift() {
        let mut c = ConstantArrival::new(3.0, WorkerShare { id: 0, count: 1 });
        let total: u64 = (0..3_000_000).map(|_| c.next_interval_ns().unwrap()).sum();
        // 3,000,000 periods of 1/3 s = exactly 1,000,000 s, within a nanosecond.
        assert!(total.abs_diff(1_000_000_000_000_000) <= 1, "total {total}");
    }

    #[test]
    fn rate_patterns_need_a_positive_rate() {
        for args in [&["-m", "m"][..], &["-m", "m", "--request-rate", "0"][..]] {
            let cfg = config(args);
            let ctx = worker_context(&cfg, 0, 1);
            let err = ConstantArrival::create(&ctx).unwrap_err();
            assert!(matches!(&err, PluginError::Config(m) if m.contains("--request-rate")));
            let err = PoissonArrival::create(&ctx).unwrap_err();
            assert!(matches!(&err, PluginError::Config(m) if m.contains("--request-rate")));
        }
    }

    fn gamma(rate: f64, shape: Option<f64>, id: u32, count: u32, seed: u64) -> GammaArrival {
        let mut args = vec!["-m".to_owned(), "m".into(), "--request-rate".into()];
        args.push(rate.to_string());
        if let Some(shape) = shape {
            args.push("--arrival-smoothness".into());
            args.push(shape.to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cfg = config(&args);
        cfg.random_seed = Some(seed);
        GammaArrival::create(&worker_context(&cfg, id, count)).unwrap()
    }

    /// Arrival instants of one worker, `n` of them, in nanoseconds from the start.
    fn instants(arrivals: &mut GammaArrival, n: usize) -> Vec<u64> {
        let mut t = 0u64;
        (0..n)
            .map(|_| {
                t += arrivals.next_interval_ns().unwrap();
                t
            })
            .collect()
    }

    #[test]
    fn gamma_intervals_have_mean_one_over_rate_and_cv_one_over_sqrt_shape() {
        for (shape, expected_cv) in [(0.5, 2f64.sqrt()), (1.0, 1.0), (4.0, 0.5)] {
            let mut g = gamma(500.0, Some(shape), 0, 1, 11);
            assert_eq!(g.shape(), shape);
            let samples: Vec<f64> = (0..200_000)
                .map(|_| g.next_interval_ns().unwrap() as f64 / 1e9)
                .collect();
            let (mean, cv) = mean_and_cv(&samples);
            // Standard error of the mean: cv/sqrt(n) = 0.32 % at shape 0.5; allow 1.5 %.
            assert!(
                (mean - 0.002).abs() < 0.002 * 0.015,
                "shape {shape}: mean {mean}"
            );
            assert!(
                (cv - expected_cv).abs() < expected_cv * 0.02,
                "shape {shape}: cv {cv}, expected {expected_cv}"
            );
        }
    }

    #[test]
    fn gamma_default_shape_is_poisson() {
        let g = gamma(10.0, None, 0, 1, 1);
        assert_eq!(g.shape(), 1.0);
    }

    #[test]
    fn gamma_workers_thin_one_shared_sequence() {
        // The union of 4 workers' arrivals is the single-worker sequence, arrival for
        // arrival (within the nanosecond rounding of each worker's own sums).
        let single = instants(&mut gamma(1000.0, Some(0.5), 0, 1, 7), 4000);
        let mut merged: Vec<u64> = (0..4)
            .flat_map(|id| instants(&mut gamma(1000.0, Some(0.5), id, 4, 7), 1000))
            .collect();
        merged.sort_unstable();
        // The single worker's k-th instant is merged arrival k.
        assert!(merged[0] > 0, "the first arrival is an interval in");
        for (k, (a, b)) in merged.iter().zip(&single).enumerate() {
            assert!(a.abs_diff(*b) <= 2, "arrival {k}: {a} vs {b}");
        }
        // So the merged process keeps the requested burstiness.
        let gaps: Vec<f64> = merged.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
        let (mean, cv) = mean_and_cv(&gaps);
        assert!((mean - 1e6).abs() < 1e6 * 0.05, "mean {mean}");
        assert!((cv - 2f64.sqrt()).abs() < 0.1, "cv {cv}");
    }

    #[test]
    fn gamma_rejects_bad_shapes_and_rates() {
        for shape in ["0", "-1", "nan", "inf"] {
            let mut cfg = config(&["-m", "m", "--request-rate", "10"]);
            cfg.arrival_smoothness = Some(shape.parse().unwrap());
            let err = GammaArrival::create(&worker_context(&cfg, 0, 1)).unwrap_err();
            assert!(
                matches!(&err, PluginError::Config(m) if m.contains("--arrival-smoothness")),
                "{shape}: {err}"
            );
        }
        let cfg = config(&["-m", "m"]);
        assert!(GammaArrival::create(&worker_context(&cfg, 0, 1)).is_err());
        let mut g = gamma(10.0, Some(2.0), 0, 1, 1);
        g.set_rate(0.0);
        g.set_rate(f64::INFINITY);
        assert_eq!(g.rate(), 10.0);
        g.set_rate(1e4);
        assert_eq!(g.rate(), 1e4);
        g.next_interval_ns();
        let mean = (0..10_000)
            .map(|_| g.next_interval_ns().unwrap() as f64)
            .sum::<f64>()
            / 1e4;
        assert!((mean - 1e5).abs() < 1e5 * 0.03, "mean {mean}");
    }

    #[test]
    fn burst_never_paces() {
        let cfg = config(&["-m", "m"]);
        let mut b = ConcurrencyBurstArrival::create(&worker_context(&cfg, 0, 1)).unwrap();
        b.set_rate(10.0);
        assert_eq!(b.next_interval_ns(), None);
        assert_eq!(b.rate(), 0.0);
    }
}
