//! The sweep-line metrics against AIPerf 0.13's own, computed by AIPerf on the request
//! sets of `runtime/tests/sweep_fixture.json`. The fixture was produced by
//!
//! ```text
//! /tmp/bench-dev/venv/bin/python runtime/tests/sweep_oracle.py > runtime/tests/sweep_fixture.json
//! ```
//!
//! with AIPerf 0.13.0 installed in that virtual environment (the script loads each set
//! into AIPerf's `ColumnStore` and runs `compute_sweep_curves` and
//! `SweepLineCurves.compute_metrics`, as AIPerf's accumulator does).

use serde_json::Value;

use super::*;

const FIXTURE: &str = include_str!("../../tests/sweep_fixture.json");

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn columns(requests: &[Value]) -> (SweepColumns, Vec<f64>) {
    let mut cols = SweepColumns::default();
    let mut gaps = Vec::new();
    for r in requests {
        let icl: Vec<f64> = r["icl"]
            .as_array()
            .map(|a| a.iter().filter_map(num).collect())
            .unwrap_or_default();
        cols.push(
            r["start"].as_u64().expect("fixture start"),
            r["gen"].as_u64(),
            r["end"].as_u64().expect("fixture end"),
            num(&r["isl"]),
            num(&r["osl"]),
            icl.len(),
        );
        gaps.extend(icl);
    }
    (cols, gaps)
}

/// AIPerf's default window: the concurrency curve's first to last event.
fn default_window(requests: &[Value]) -> (f64, f64) {
    let instants = requests
        .iter()
        .flat_map(|r| [r["start"].as_f64(), r["end"].as_f64()])
        .flatten();
    instants.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), t| {
        (lo.min(t), hi.max(t))
    })
}

fn close(ours: f64, theirs: f64) -> bool {
    let scale = ours.abs().max(theirs.abs());
    (ours - theirs).abs() <= 1e-9 * scale.max(1e-9)
}

#[test]
fn matches_aiperf_on_the_fixture() {
    let fixture: Value = serde_json::from_str(FIXTURE).expect("fixture parses");
    let mut checked = 0;
    for case in fixture["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().unwrap_or("?");
        let requests = case["requests"].as_array().expect("requests");
        let (cols, gaps) = columns(requests);
        for result in case["results"].as_array().expect("results") {
            let window = match result["window"].as_array() {
                Some(w) => (w[0].as_f64().expect("ws"), w[1].as_f64().expect("we")),
                None => default_window(requests),
            };
            let ours = sweep_metrics(&cols, gaps.iter().copied(), &[window]);
            let ours = &ours[0];
            let expected = result["metrics"].as_array().expect("metrics");
            assert_eq!(expected.len(), SWEEP_TAGS.len(), "{name}");
            for (i, m) in expected.iter().enumerate() {
                let tag = SWEEP_TAGS[i];
                assert_eq!(m["tag"], tag, "{name}: order");
                let def = catalogue::lookup(tag).expect("catalogued");
                assert_eq!(m["header"], def.header, "{tag}");
                assert_eq!(m["unit"], def.unit, "{tag}");
                let group = if i < 9 { "effective" } else { "active" };
                assert_eq!(m["group"], group, "{tag}");
                let s = ours[i];
                let got = [
                    ("avg", s.avg),
                    ("min", s.min),
                    ("max", s.max),
                    ("p50", s.p50),
                    ("p90", s.p90),
                    ("p95", s.p95),
                    ("p99", s.p99),
                    ("std", s.std),
                ];
                for (stat, v) in got {
                    let want = num(&m[stat]).expect("finite in the fixture");
                    assert!(
                        close(v, want),
                        "{name} {window:?} {tag}.{stat}: ours {v}, AIPerf {want}"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 1000, "{checked}");
}

#[test]
fn slices_in_one_pass_equal_one_window_each() {
    let fixture: Value = serde_json::from_str(FIXTURE).expect("fixture parses");
    let case = &fixture["cases"][1];
    let (cols, gaps) = columns(case["requests"].as_array().expect("requests"));
    let windows = [
        (9_000.0, 11_500.0),
        (11_500.0, 20_000.0),
        (20_000.0, 20_000.0),
        (20_000.0, 32_000.0),
    ];
    let together = sweep_metrics(&cols, gaps.iter().copied(), &windows);
    for (w, window) in windows.iter().enumerate() {
        let alone = sweep_metrics(&cols, gaps.iter().copied(), &[*window]);
        assert_eq!(together[w], alone[0], "{window:?}");
    }
}

#[test]
fn degenerate_inputs_give_no_metrics_or_zeros() {
    let empty = SweepColumns::default();
    assert!(sweep_metrics(&empty, [], &[(0.0, 1.0)]).is_empty());
    let mut one = SweepColumns::default();
    one.push(10, Some(10), 10, Some(5.0), Some(1.0), 0);
    // A zero-length request in a zero-length window, and in an inverted one.
    for window in [(10.0, 10.0), (20.0, 10.0), (f64::NAN, 10.0)] {
        let out = sweep_metrics(&one, [], &[window]);
        assert_eq!(out[0], [SweepStats::default(); 14]);
    }
    // More gaps announced than given: the missing ones are unknown, not a panic.
    let mut short = SweepColumns::default();
    short.push(0, Some(5), 20, Some(5.0), Some(4.0), 3);
    let out = sweep_metrics(&short, [5.0], &[(0.0, 20.0)]);
    assert_eq!(out[0][0].avg, 1.0);
    assert!(out[0].iter().all(|s| !s.avg.is_nan()));
}

#[test]
fn columns_append_and_span() {
    let mut a = SweepColumns::default();
    a.push(5, None, 9, None, None, 0);
    let mut b = SweepColumns::default();
    for i in 0..(CHUNK as u64 + 3) {
        b.push(10 + i, Some(11 + i), 20 + i, Some(1.0), Some(2.0), 1);
    }
    a.append(&mut b);
    assert_eq!((a.len(), b.len()), (CHUNK + 4, 0));
    assert_eq!(a.span(), Some((5, 20 + CHUNK as u64 + 2)));
    assert_eq!(a.row(1).gaps, 1);
    assert_eq!(SweepColumns::default().span(), None);
}

#[test]
fn next_down_is_the_float_below() {
    assert!(next_down(1000.0) < 1000.0);
    assert_eq!(next_down(1000.0), f64::from_bits(1000.0f64.to_bits() - 1));
    assert!(next_down(0.0) < 0.0);
}

#[test]
fn ordered_bits_sort_as_total_cmp() {
    let mut vs = [
        3.5,
        -0.0,
        0.0,
        f64::NAN,
        -f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -2.25,
        1e-300,
        -1e-300,
        f64::MIN_POSITIVE,
        1.7e9,
        1.7e9 + 1.0,
    ];
    let mut by_bits = vs;
    vs.sort_by(f64::total_cmp);
    by_bits.sort_by_key(|&v| ordered_bits(v));
    assert_eq!(vs.map(f64::to_bits), by_bits.map(f64::to_bits));
}
