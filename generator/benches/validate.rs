//! Wall time of `aiperf-gen validate` on AIPerf 0.13.0's own manifests (its
//! `categories.yaml` and its 2,816-line `plugins.yaml`: 35 categories, 270 plugins),
//! process start-up included, as CI runs it. The budget is 50 ms.
//!
//! Run it with `cargo bench -p aiperf-gen --bench validate` (`AIPERF_BENCH_RUNS` sets the
//! number of runs, 50 by default). It prints the wall-time distribution and the CPU time
//! the runs used: on a loaded machine wall time includes waiting for a core, CPU time
//! does not.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BUDGET: Duration = Duration::from_millis(50);

/// CPU time (user + system) used by finished child processes so far.
fn children_cpu() -> Duration {
    // SAFETY: `getrusage` writes one `rusage` into the zeroed struct we own.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let micros = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    micros(usage.ru_utime) + micros(usage.ru_stime)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let bin = env!("CARGO_BIN_EXE_aiperf-gen");
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/aiperf-0.13.0");
    let categories = format!("{dir}/categories.yaml");
    let plugins = format!("{dir}/plugins.yaml");
    let lines = std::fs::read_to_string(&plugins).map_or(0, |t| t.lines().count());
    let runs: usize = std::env::var("AIPERF_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|r| *r > 0)
        .unwrap_or(50);

    let run = || {
        let started = Instant::now();
        let status = Command::new(bin)
            .args(["validate", &categories, &plugins])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        (started.elapsed(), status)
    };
    // Warm the page cache and check the verdict before timing anything.
    for _ in 0..3 {
        let (_, status) = run();
        match status {
            Ok(s) if s.success() => {}
            other => {
                eprintln!("`aiperf-gen validate` did not succeed on AIPerf's manifests: {other:?}");
                std::process::exit(1);
            }
        }
    }

    let cpu_before = children_cpu();
    let mut walls: Vec<Duration> = (0..runs).map(|_| run().0).collect();
    let cpu = (children_cpu() - cpu_before) / u32::try_from(runs).unwrap_or(u32::MAX);
    walls.sort();
    let at = |q: f64| walls[((walls.len() - 1) as f64 * q).round() as usize];
    let median = at(0.5);
    println!(
        "validate AIPerf 0.13.0 categories.yaml + plugins.yaml ({lines} lines), {runs} runs, \
         start-up included"
    );
    println!(
        "  wall: min {}  median {}  p90 {}  max {}",
        ms(walls[0]),
        ms(median),
        ms(at(0.9)),
        ms(walls[walls.len() - 1])
    );
    println!("  cpu (user+sys) per run: {}", ms(cpu));
    println!(
        "  budget {}: median {}",
        ms(BUDGET),
        if median < BUDGET {
            "within budget"
        } else {
            "OVER BUDGET"
        }
    );
}
