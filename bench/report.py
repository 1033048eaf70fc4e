#!/usr/bin/env python3
"""Turn the runs of bench/compare.sh into one Markdown table.

    report.py RUNS_DIR

RUNS_DIR holds, per run NAME: NAME.meta.json (client, case, load, CPU busy fraction
before the run, parameters), NAME.measure.json (bench/measure.py), NAME.log (output;
wrk's last line is a JSON summary from bench/wrk-chat.lua) and NAME/ (the artifacts of
aiperf-gen or AIPerf), mock-NAME.err (the log of the aiperf-mock that served it) and, in
case b, mock-NAME.truth.jsonl (its --truth-log), plus env.json (machine, versions, load).
Case a's runs are rounds, NAME-r1, NAME-r2, ...; a single NAME (older runs) is one round.
"""

import json
import math
import os
import re
import statistics
import sys

CLIENTS = ("ours", "aiperf", "wrk")
NA = "n/a"
DASH = "–"


def pct(values, q):
    """AIPerf's percentile: linear interpolation at q/100*(n-1) of the sorted values."""
    if not values:
        return None
    v = sorted(values)
    k = q / 100 * (len(v) - 1)
    lo = math.floor(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


class Run:
    def __init__(self, runs, name):
        self.name = name
        self.runs = runs
        self.dir = os.path.join(runs, name)
        self.meta = load_json(os.path.join(runs, name + ".meta.json")) or {}
        self.cost = load_json(os.path.join(runs, name + ".measure.json"))
        self.log_path = os.path.join(runs, name + ".log")
        self._json = self._records = self._vs_truth = None

    # -- what happened
    def problem(self):
        """Why this run has no usable figures, or None."""
        if self.cost is None:
            return "did not run"
        if self.cost.get("timed_out"):
            return f"timed out after {self.cost['wall_s']:.0f} s"
        if self.meta.get("client") == "wrk":
            return None if self.wrk() else f"no wrk summary (exit {self.cost['rc']})"
        if self.json() is None:
            return f"no profile_export_aiperf.json (exit {self.cost['rc']}): {self.last_error()}"
        return None

    def last_error(self):
        try:
            with open(self.log_path, errors="replace") as f:
                lines = [l.strip() for l in f if l.strip()]
        except OSError:
            return "no log"
        errs = [l for l in lines if "error" in l.lower()]
        return (errs or lines or ["empty log"])[-1][:160]

    # -- artifacts
    def json(self):
        if self._json is None:
            self._json = load_json(os.path.join(self.dir, "profile_export_aiperf.json"))
        return self._json

    def metric(self, tag, stat="avg"):
        d = self.json() or {}
        m = d.get(tag)
        if isinstance(m, dict) and isinstance(m.get(stat), (int, float)):
            return float(m[stat])
        return None

    def records(self):
        """Profiling records of profile_export.jsonl (warmup excluded)."""
        if self._records is None:
            self._records = []
            path = os.path.join(self.dir, "profile_export.jsonl")
            try:
                with open(path) as f:
                    for line in f:
                        if not line.strip():
                            continue
                        r = json.loads(line)
                        if r.get("metadata", {}).get("benchmark_phase", "profiling") == "profiling":
                            self._records.append(r)
            except OSError:
                pass
        return self._records

    def record_values(self, tag):
        out = []
        for r in self.records():
            v = r.get("metrics", {}).get(tag, {}).get("value")
            if isinstance(v, (int, float)):
                out.append(float(v))
        return out

    def vs_truth(self):
        """Per-request client - server errors in ms, from joining the profiling records
        with the truth log of the mock that served this run on X-Request-ID:
        {"ttft": [...], "itl": [...], "joined": n, "records": n}."""
        if self._vs_truth is None:
            truth = {}
            path = os.path.join(self.runs, f"mock-{self.name}.truth.jsonl")
            with open(path) as f:  # a missing log is the figure's problem, reported as such
                for line in f:
                    if line.strip():
                        t = json.loads(line)
                        if t.get("x_request_id") is not None:
                            truth[t["x_request_id"]] = t
            ttft, itl, joined = [], [], 0
            for r in self.records():
                t = truth.get(r.get("metadata", {}).get("x_request_id"))
                if t is None:
                    continue
                joined += 1
                m = r.get("metrics", {})
                arrival, first, last = (t.get(k) for k in ("arrival_ns", "first_token_ns",
                                                           "last_token_ns"))
                if first is None or arrival is None:
                    continue
                v = m.get("time_to_first_token", {}).get("value")
                if isinstance(v, (int, float)):
                    ttft.append(v - (first - arrival) / 1e6)
                # AIPerf's ITL, (request_latency - TTFT) / (OSL - 1), on the server's side.
                v = m.get("inter_token_latency", {}).get("value")
                if isinstance(v, (int, float)) and last is not None and t.get("tokens", 0) >= 2:
                    itl.append(v - (last - first) / (t["tokens"] - 1) / 1e6)
            self._vs_truth = {"ttft": ttft, "itl": itl, "joined": joined,
                              "records": len(self.records())}
        return self._vs_truth

    def starts(self):
        return sorted(r["metadata"]["request_start_ns"] for r in self.records()
                      if isinstance(r.get("metadata", {}).get("request_start_ns"), int))

    def wrk(self):
        try:
            with open(self.log_path) as f:
                lines = [l for l in f if l.startswith("{")]
            return json.loads(lines[-1]) if lines else None
        except (OSError, ValueError):
            return None

    def errors(self):
        """Failed requests, or None when unknown."""
        if self.meta.get("client") == "wrk":
            w = self.wrk()
            return sum(w["errors"].values()) if w else None
        e = self.metric("error_request_count")
        if e is not None:
            return int(e)
        d = self.json()
        if d is None:
            return None
        return sum(int(x.get("count", 0)) for x in d.get("error_summary") or [])

    def requests(self):
        """Requests completed (successes and errors)."""
        if self.meta.get("client") == "wrk":
            w = self.wrk()
            return w["requests"] if w else None
        n = len(self.records())
        if n:
            return n
        c = self.metric("request_count")
        return int(c) if c is not None else None


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def fmt(v, digits=2, sign=False):
    if v is None:
        return NA
    if isinstance(v, str):
        return v
    if abs(v) >= 1000 and not sign:
        return f"{v:,.0f}"
    return f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"


def mock_lateness(runs, name):
    """'mean / max' µs from the exit line of the aiperf-mock that served run `name`."""
    try:
        with open(os.path.join(runs, f"mock-{name}.err"), errors="replace") as f:
            text = f.read()
    except OSError:
        return NA
    found = re.findall(r"mean_lateness_us=([0-9.]+) max_lateness_us=([0-9.]+)", text)
    if not found:
        return NA
    mean, worst = (float(x) for x in found[-1])
    return f"{mean:,.0f} / {worst:,.0f}"


class Table:
    def __init__(self, runs):
        self.runs = runs
        self.rows = []
        self.notes = []
        self.seen = {}
        self.joined = []  # case b: "NAME joined/records" per run

    def run(self, name):
        if name not in self.seen:
            path = os.path.join(self.runs, name + ".meta.json")
            self.seen[name] = Run(self.runs, name) if os.path.exists(path) else None
        return self.seen[name]

    def cell(self, name, figure):
        """figure(run) for a run that exists and worked; otherwise n/a with a note."""
        r = self.run(name)
        if r is None:
            return DASH
        p = r.problem()
        if p is not None:
            self.note(f"{name}: {p}")
            return NA
        try:
            v = figure(r)
        except Exception as e:  # a missing field must not hide the other figures
            self.note(f"{name}: cannot read the figure ({type(e).__name__}: {e})")
            return NA
        errs = r.errors()
        if errs:
            self.note(f"{name}: {errs} failed requests")
        return v

    def note(self, text):
        if text not in self.notes:
            self.notes.append(text)

    def add(self, case, measure, target, cells, verdict, load):
        self.rows.append((case, measure, target, *cells, verdict, load))

    def load_of(self, *names):
        """'load1 / busy': the highest 1-minute load average and CPU busy fraction seen
        before the runs `names` (busy only for runs that recorded it)."""
        metas = [self.run(n).meta for n in names if self.run(n)]
        loads = [m["load1"] for m in metas if m.get("load1") is not None]
        busy = [m["busy_before"] for m in metas if m.get("busy_before") is not None]
        for n in names:
            m = self.run(n).meta if self.run(n) else {}
            if m.get("quiet") is False:
                self.note(f"{n} started on a busy machine: CPU {m['busy_before']:.0%} busy "
                          f"after {m.get('quiet_wait_s', '?')} s of waiting")
        if not loads:
            return DASH
        text = f"{max(loads):.1f}"
        return text + f" / {max(busy):.0%}" if busy else text


def ratio(a, b):
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b:
        return a / b
    return None


def rounds_of(t, prefix):
    """Runs named PREFIX-r1, PREFIX-r2, ... in round order, else [PREFIX] (one run)."""
    found = []
    for f in os.listdir(t.runs):
        m = re.fullmatch(re.escape(prefix) + r"-r(\d+)\.meta\.json", f)
        if m:
            found.append((int(m.group(1)), f[: -len(".meta.json")]))
    return [n for _, n in sorted(found)] or [prefix]


def median_cell(cells):
    """The median of the numeric cells ({name: cell}); the cell itself when there is one
    run; DASH when there is no run, NA when no run gave a figure."""
    if not cells:
        return DASH
    nums = [v for v in cells.values() if isinstance(v, (int, float))]
    if nums:
        return statistics.median(nums)
    return next(iter(cells.values()))


def fidelity_row(t, c, names, measure, fig):
    """A case-b row: 'p50 / p99' per client from fig(run) -> (p50, p99) errors in ms,
    judged against the target at 256 streams."""
    vals = [t.cell(n, fig) for n in names]
    cells = [f"{fmt(v[0], 3, True)} / {fmt(v[1], 3, True)}" if isinstance(v, tuple) else v
             for v in vals] + [DASH]
    if c == 256:
        target = "p50 < 0.2, p99 < 1"
        v = vals[0]
        verdict = (("met" if abs(v[0]) < 0.2 and abs(v[1]) < 1 else "missed")
                   if isinstance(v, tuple) else NA)
    else:
        target, verdict = DASH, DASH
    t.add(f"b. fidelity, c={c}", measure, target, cells, verdict, t.load_of(*names))


def build(runs):
    t = Table(runs)

    # a. client ceiling: each client's median over its rounds
    for c in (64, 256):
        rounds = {x: rounds_of(t, f"a-c{c}-{x}") for x in CLIENTS}
        names = [n for x in CLIENTS for n in rounds[x]]
        if not any(t.run(n) for n in names):
            continue
        per_round = {}
        for x in CLIENTS:
            def fig(r, x=x):
                return r.wrk()["requests_per_s"] if x == "wrk" else r.metric("request_throughput")
            per_round[x] = {n: t.cell(n, fig) for n in rounds[x] if t.run(n)}
        rps = [median_cell(per_round[x]) for x in CLIENTS]
        vs_wrk, vs_aiperf = ratio(rps[0], rps[2]), ratio(rps[0], rps[1])
        parts = []
        if vs_wrk is not None:
            parts.append(f"{vs_wrk:.2f}× wrk")
        if vs_aiperf is not None:
            parts.append(f"{vs_aiperf:.0f}× AIPerf")
        verdict = ("met" if vs_wrk >= 0.9 else "missed") if vs_wrk is not None else NA
        n_rounds = max(len(per_round["ours"]), len(per_round["wrk"]))
        measure = "requests/s" + (f", median of {n_rounds} rounds" if n_rounds > 1 else "")
        t.add(f"a. ceiling, c={c}", measure, "≥ 0.9× wrk",
              [fmt(x, 0) for x in rps], f"{verdict} ({', '.join(parts)})" if parts else verdict,
              t.load_of(*names))
        # Round k of ours against round k of wrk (run back to back).
        pairs = []
        for n_ours, v_ours in per_round["ours"].items():
            k = n_ours[len(f"a-c{c}-ours"):]
            v_wrk = per_round["wrk"].get(f"a-c{c}-wrk{k}")
            q = ratio(v_ours, v_wrk)
            if q is not None and k:
                pairs.append(f"{k.lstrip('-')} {q:.2f} ({fmt(v_ours, 0)} / {fmt(v_wrk, 0)})")
        if len(pairs) > 1:
            t.note(f"a, c={c}, ours / wrk per round: {'; '.join(pairs)}")

    # b. fidelity: measured minus configured truth, in ms
    for c in (1, 32, 256):
        names = [f"b-c{c}-{x}" for x in ("ours", "aiperf")]
        if not any(t.run(n) for n in names):
            continue
        for tag, label, truth in (("time_to_first_token", "TTFT", 50.0),
                                  ("inter_token_latency", "ITL", 5.0)):
            def fig(r, tag=tag, truth=truth):
                p50, p99 = r.metric(tag, "p50"), r.metric(tag, "p99")
                if p50 is None or p99 is None:
                    raise KeyError(f"{tag} p50/p99 missing")
                return (p50 - truth, p99 - truth)
            fidelity_row(t, c, names, f"{label} error p50 / p99 (ms)", fig)
        # Per request, against what the mock did for that request (its truth log): the
        # client's own error, without the mock's lateness. Older runs have no truth log.
        logged = any(os.path.exists(os.path.join(t.runs, f"mock-{n}.truth.jsonl"))
                     for n in names if t.run(n))
        for key, label in (("ttft", "TTFT"), ("itl", "ITL")) if logged else ():
            def fig(r, key=key, label=label):
                d = r.vs_truth()[key]
                if not d:
                    raise KeyError(f"no {label} joined with the truth log")
                return (pct(d, 50), pct(d, 99))
            fidelity_row(t, c, names, f"{label} error vs server, per request, p50 / p99 (ms)",
                         fig)
        for n in names if logged else ():
            r = t.run(n)
            try:
                j = r.vs_truth() if r and r.problem() is None else None
            except (OSError, ValueError):
                j = None
            if j is not None:
                t.joined.append(f"{n} {j['joined']:,}/{j['records']:,}")
                if j["joined"] < j["records"]:
                    t.note(f"{n}: {j['records'] - j['joined']:,} of {j['records']:,} "
                           "profiling records found no line of their X-Request-ID in the "
                           "mock's truth log (left out of the per-request rows)")
        # The mock's own share of those errors: from each deadline to its bytes going out.
        lateness = [mock_lateness(t.runs, n) if t.run(n) else DASH for n in names]
        if any(x not in (DASH, NA) for x in lateness):
            t.add(f"b. fidelity, c={c}", "mock's lateness mean / max (µs)", DASH,
                  lateness + [DASH], DASH, t.load_of(*names))

    # c. rate: requests started in the first D seconds after the first one, over D x rate
    for rate in (200, 5000):
        names = [f"c-r{rate}-{x}" for x in ("ours", "aiperf")]
        if not any(t.run(n) for n in names) or c_only_f(t, rate):
            continue

        def achieved(r, rate=rate):
            d = float(r.meta["duration_s"])
            s = r.starts()
            if not s:
                raise KeyError("no request_start_ns in profile_export.jsonl")
            window = sum(1 for x in s if x - s[0] < d * 1e9)
            return window / (d * rate)

        def plan(r, rate=rate):
            # Intended send times: our binary writes them as credit_issued_ns; AIPerf's
            # credit_issued_ns is when its timing manager issued the credit.
            d = float(r.meta["duration_s"])
            s = sorted(x["metadata"]["credit_issued_ns"] for x in r.records()
                       if isinstance(x.get("metadata", {}).get("credit_issued_ns"), int))
            return sum(1 for x in s if x - s[0] < d * 1e9) / (d * rate) if s else None

        vals = [t.cell(n, achieved) for n in names]
        plans = [t.cell(n, plan) for n in names]
        d = next((float(t.run(n).meta["duration_s"]) for n in names if t.run(n)), 0)
        sigma = 1 / math.sqrt(rate * d) if d else None
        v = vals[0]
        verdict = ("met" if abs(v - 1) <= 0.01 else "missed") if isinstance(v, float) else NA
        extra = []
        if isinstance(v, float) and sigma:
            extra.append(f"{(v - 1) / sigma:+.1f}σ")
        if isinstance(v, float) and isinstance(plans[0], float) and plans[0]:
            extra.append(f"achieved/plan {v / plans[0]:.3f}")
        if extra:
            verdict += f" ({', '.join(extra)})"
        t.add(f"c. rate, Poisson {rate:,}/s, {d:.0f} s", "achieved / target",
              f"1 ± 0.01 (Poisson 1σ: {sigma:.3f})" if sigma else "1 ± 0.01",
              [f"{fmt(x, 3)} (plan {fmt(p, 3)})" if isinstance(p, float) else fmt(x, 3)
               for x, p in zip(vals, plans)] + [DASH], verdict, t.load_of(*names))

    # d. cost per 10,000 requests, per-record export on
    names = ["d-ours", "d-aiperf", "d-wrk"]
    if any(t.run(n) for n in names):
        cpu = [t.cell(n, lambda r: r.cost["cpu_s"] / r.requests() * 1e4) for n in names]
        rss = [t.cell(n, lambda r: (r.cost["peak_rss_mib"], r.cost["peak_rss_max_proc_mib"],
                                    r.cost["processes"], r.requests())) for n in names]
        v = cpu[0]
        t.add("d. cost", "CPU s per 10,000 requests", "< 0.2", [fmt(x, 3) for x in cpu],
              ("met" if v < 0.2 else "missed") if isinstance(v, float) else NA,
              t.load_of(*names))
        cells = []
        for x in rss:
            if isinstance(x, tuple):
                total, largest, procs, n = x
                s = f"{total:.0f} at {n:,}"
                if procs > 1:
                    s += f" ({procs} processes, largest {largest:.0f})"
                cells.append(s)
            else:
                cells.append(x)
        v = rss[0]
        if isinstance(v, tuple):
            verdict = "met" if v[0] < 64 else "missed"
            if v[3] < 100_000:
                verdict += " (run had fewer than 100,000 requests)"
        else:
            verdict = NA
        t.add("d. cost", "peak RSS (MiB) at N requests", "< 64 at 100,000", cells, verdict,
              t.load_of(*names))

    # e. start-up: launch to first request sent
    names = ["e-ours", "e-aiperf"]
    if any(t.run(n) for n in names):
        def startup(r):
            s = r.starts()
            if not s:
                raise KeyError("no request_start_ns in profile_export.jsonl")
            return (s[0] - r.cost["launch_wall_ns"]) / 1e6
        vals = [t.cell(n, startup) for n in names]
        prompts = next((t.run(n).meta.get("prompts") for n in names if t.run(n)), "?")
        v = vals[0]
        t.add(f"e. start-up, {prompts:,} prompts", "launch → first request (ms)", "< 100",
              [fmt(x, 1) for x in vals] + [DASH],
              ("met" if v < 100 else "missed") if isinstance(v, float) else NA,
              t.load_of(*names))

    # f. pacing at 5,000 req/s Poisson (the runs of case c)
    names = ["c-r5000-ours", "c-r5000-aiperf"]
    if any(t.run(n) for n in names):
        def ours(r):
            p50, p99 = r.metric("scheduling_lateness", "p50"), r.metric("scheduling_lateness", "p99")
            if p50 is None:
                vals = r.record_values("scheduling_lateness")
                p50, p99 = pct(vals, 50), pct(vals, 99)
            if p50 is None:
                raise KeyError("no scheduling_lateness in the JSON or the records")
            return (p50 * 1e3, p99 * 1e3)

        def aiperf(r):
            # AIPerf records no intended send time; start - credit issued is the part of
            # its lateness after the timing manager issued the credit (a lower bound).
            d = [m["request_start_ns"] - m["credit_issued_ns"]
                 for m in (x["metadata"] for x in r.records())
                 if isinstance(m.get("credit_issued_ns"), int)]
            if not d:
                raise KeyError("no credit_issued_ns")
            return (pct(d, 50) / 1e3, pct(d, 99) / 1e3)

        vals = [t.cell(names[0], ours), t.cell(names[1], aiperf)]
        if t.run(names[1]):
            t.note("f, AIPerf: request start − credit issued (AIPerf records no intended "
                   "send time; this lower bound omits its timing manager's own lateness)")
        v = vals[0]
        cells = [f"{fmt(x[0], 0)} / {fmt(x[1], 0)}" if isinstance(x, tuple) else x for x in vals]
        t.add("f. pacing, Poisson 5,000/s", "lateness p50 / p99 (µs)", "p99 < 200",
              cells + [DASH], ("met" if v[1] < 200 else "missed") if isinstance(v, tuple) else NA,
              t.load_of(*names))

    # client health figures of our binary, whatever they are, once it writes them
    health = {}
    for name in sorted(t.seen):
        r = t.seen[name]
        if r and r.meta.get("client") == "ours" and r.json() and r.json().get("client_health"):
            text = json.dumps(r.json()["client_health"], separators=(",", ":"))
            health.setdefault(text, []).append(name)
    for text, names in health.items():
        t.note(f"client_health of {', '.join(names)}: `{text}`")
    if t.joined:
        t.note("b, per-request rows: client value − the mock's (TTFT: first token chunk handed "
               "to hyper − request arrival; ITL: (last − first token chunk) / (tokens − 1)), "
               "from joining profiling records with the mock's --truth-log on X-Request-ID; "
               f"records joined: {', '.join(t.joined)}")
    return t


def c_only_f(t, rate):
    """The 5,000/s run exists for case f alone when case c was not asked for."""
    env = load_json(os.path.join(t.runs, "env.json")) or {}
    return "c" not in env.get("cases", "c").split(",")


def main():
    runs = sys.argv[1]
    env = load_json(os.path.join(runs, "env.json")) or {}
    t = build(runs)
    busy = any("busy_before" in (r.meta if r else {}) for r in t.seen.values())
    head = ["case", "measure", "target", "aiperf-gen", f"AIPerf {env.get('aiperf', '')}".strip(),
            env.get("wrk", "wrk") or "wrk", "verdict (aiperf-gen)",
            "load1 / busy" if busy else "load1"]
    out = []
    out.append(f"`{env.get('command', 'bench/compare.sh')}`: "
               f"{env.get('started', '')}, {'quick' if env.get('quick') else 'full'} run, "
               f"aiperf-gen {env.get('ours', '?')}, {env.get('cpus', '?')} CPUs "
               f"({env.get('cpu_model', '?')}), Linux {env.get('kernel', '?')}; "
               f"load average before {env.get('load_before', '?')}, after "
               f"{env.get('load_after', '?')}")
    out.append("")
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "|".join("---" for _ in head) + "|")
    for row in t.rows:
        out.append("| " + " | ".join(str(c) for c in row) + " |")
    out.append("")
    if any(r[0].startswith("c.") for r in t.rows):
        out.append("Rate: requests started within D s of the first one, over D × rate; "
                   "plan: the same count of intended send times (credit_issued_ns), so "
                   "achieved/plan is the client's own shortfall and plan/target the "
                   "Poisson draw's.")
    out.append("Measured: CPU = user + system seconds of the client's whole process tree; "
               "peak RSS = peak of the summed RSS of its processes (shared pages counted "
               "in each process), sampled every 20 ms; the server (aiperf-mock, 2 threads) "
               "shares the machine and is not counted. load1 = the highest 1-minute load "
               "average before the row's runs"
               + ("; busy = the highest CPU busy fraction of the whole machine in the 0.5 s "
                  "before each run started (the script waits up to 30 s for two samples "
                  "under 10 %)." if busy else ".")
               + (" Each client ran in a session of its own (--own-sessions): with the "
                  "kernel's autogroups, a scheduling group apart from the server's."
                  if env.get("own_sessions") else
                  " Each client ran in the script's session, as the server did: one "
                  "scheduling autogroup, as when both are started from one shell."))
    for n in t.notes:
        out.append(f"- {n}")
    print("\n".join(out))


if __name__ == "__main__":
    main()
