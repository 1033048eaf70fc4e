#!/usr/bin/env python3
"""Write sweep_fixture.json: AIPerf 0.13's own sweep-line metrics for hand-made request sets.

    /tmp/bench-dev/venv/bin/python runtime/tests/sweep_oracle.py > runtime/tests/sweep_fixture.json

Each case lists requests (start, first-token and end instants in ns, input and output token
counts, and optionally the gaps between content chunks in ns) and the windows to summarize.
The script loads them into AIPerf's ColumnStore, builds its curves with
`aiperf.metrics.accumulator_sweeps.compute_sweep_curves` and summarizes each window with
`SweepLineCurves.compute_metrics`, exactly as AIPerf's accumulator does for a phase and its
time slices. A window of `null` is AIPerf's default: the curve's first to last event. The
unit tests in runtime/src/metrics/sweep.rs read the file back and must agree within 1e-9.
"""

import json
import math

import numpy as np
from aiperf.metrics.accumulator_sweeps import compute_sweep_curves
from aiperf.metrics.column_store import ColumnStore

N = None  # a missing value (no first token, no token count)

# (start, first token, end, isl, osl[, chunk gaps])
CASES = {
    "overlapping": {
        "requests": [
            (1_000, 1_400, 3_000, 100, 9),
            (1_200, 1_500, 2_600, 50, 12),
            (1_500, 2_000, 4_000, 80, 21),
            (2_500, 2_700, 3_100, 10, 5),
        ],
        "windows": [None, [1_000, 4_000], [1_300, 2_800], [0, 5_000]],
    },
    "idle_gaps": {
        "requests": [
            (10_000, 10_300, 11_000, 64, 8),
            (10_500, 10_900, 12_000, 64, 16),
            (20_000, 20_100, 20_900, 32, 4),
            (30_000, 30_500, 31_000, 128, 32),
        ],
        "windows": [None, [9_000, 32_000], [11_500, 29_000], [12_000, 20_000]],
    },
    "zero_length_phases": {
        # Decode of zero length, one output token, prefill of zero length, tokens missing.
        "requests": [
            (0, 500, 500, 40, 7),
            (100, 300, 900, 20, 1),
            (200, 200, 800, 30, 6),
            (250, 600, 1_200, N, N),
            (300, 700, 1_000, 25, 0),
        ],
        "windows": [None, [0, 1_200], [250, 650]],
    },
    "single_request": {
        "requests": [(5_000_000, 5_040_000, 5_100_000, 550, 64)],
        "windows": [None, [5_000_000, 5_100_000], [4_000_000, 6_000_000]],
    },
    "non_streaming": {
        "requests": [
            (1_000, N, 5_000, 100, 20),
            (2_000, N, 4_000, 100, 20),
            (3_000, N, 9_000, 100, 20),
        ],
        "windows": [None, [500, 10_000]],
    },
    "with_errors": {
        # Failed requests: a start and an end, no first token, no token counts.
        "requests": [
            (1_000, 1_200, 3_000, 10, 10),
            (1_100, N, 1_600, N, N),
            (2_000, 2_100, 2_900, 20, 5),
            (3_500, N, 3_600, N, N),
        ],
        "windows": [None],
    },
    "chunked": {
        # With per-chunk gaps: AIPerf then uses its chunk-aware decode throughput and
        # tokens in flight. A zero gap, a record whose chunks end past its end (clamped),
        # a record without gaps (one chunk), and a record with osl 1.
        "requests": [
            (1_000, 1_300, 2_000, 50, 8, [100, 200, 0, 150, 50]),
            (1_100, 1_250, 1_900, 30, 5, [300, 200, 200]),
            (1_400, 1_600, 2_400, 40, 3, []),
            (1_500, 1_700, 2_100, 20, 1, [100]),
            (1_800, 1_900, 2_500, 60, 10, [100, 100, 100, 100, 100, 100, 100]),
        ],
        "windows": [None, [1_000, 2_500], [1_200, 1_800], [900, 3_000]],
    },
    "chunked_with_errors": {
        "requests": [
            (0, 100, 1_000, 10, 6, [200, 200, 200, 200, 100]),
            (50, N, 400, N, N),
            (500, 800, 1_500, 12, 4, [300, 300, 100]),
        ],
        "windows": [None, [0, 1_500]],
    },
}


def finite(v):
    return None if v is None or not math.isfinite(v) else v


def run_case(case):
    store = ColumnStore()
    for idx, req in enumerate(case["requests"]):
        start, gen, end, isl, osl = req[:5]
        metrics = {}
        if isl is not None:
            metrics["input_sequence_length"] = float(isl)
        if osl is not None:
            metrics["output_sequence_length"] = float(osl)
        if len(req) > 5 and req[5]:
            metrics["inter_chunk_latency"] = [float(g) for g in req[5]]
        store.ingest(
            idx=idx,
            record_metrics=metrics,
            start_ns=float(start),
            end_ns=float(end),
            generation_start_ns=None if gen is None else float(gen),
        )
    curves = compute_sweep_curves(store)
    out = []
    for window in case["windows"]:
        if window is None:
            ws, we = float(curves.concurrency_ts[0]), float(curves.concurrency_ts[-1])
        else:
            ws, we = float(window[0]), float(window[1])
        results = curves.compute_metrics(ws, we)
        out.append(
            {
                "window": window,
                "metrics": [
                    {
                        "tag": tag,
                        "header": r.header,
                        "unit": r.unit,
                        "group": str(r.console_group),
                        **{
                            k: finite(getattr(r, k))
                            for k in ("avg", "min", "max", "p50", "p90", "p95", "p99", "std")
                        },
                    }
                    for tag, r in results.items()
                ],
            }
        )
    return out


def main():
    fixture = {
        "source": "AIPerf 0.13.0 compute_sweep_curves + SweepLineCurves.compute_metrics",
        "numpy": np.__version__,
        "cases": [
            {
                "name": name,
                "requests": [
                    {
                        "start": r[0],
                        "gen": r[1],
                        "end": r[2],
                        "isl": r[3],
                        "osl": r[4],
                        "icl": list(r[5]) if len(r) > 5 else None,
                    }
                    for r in case["requests"]
                ],
                "results": run_case(case),
            }
            for name, case in CASES.items()
        ],
    }
    print(json.dumps(fixture, indent=1))


if __name__ == "__main__":
    main()
