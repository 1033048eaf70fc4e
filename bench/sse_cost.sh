#!/usr/bin/env bash
# Client CPU per received SSE event: the core binary benchmarks aiperf-mock with the chat
# endpoint streaming at 256 concurrent streams, and this prints the client's CPU time
# divided by the SSE events it received. Not a test: run it by hand. The goal is under
# 2 µs per event.
#
#   bench/sse_cost.sh [--concurrency 256] [--requests 2048] [--tokens 100]
#                     [--ttft-ms 50] [--itl-ms 5] [--workers N] [--io-driver NAME]
#                     [--bin PATH] [--work DIR]
#
# It builds aiperf-gen, the core binary and aiperf-mock in release mode, starts the mock
# on 127.0.0.1 (stopped by PID on exit) and runs two bounded benchmarks: --requests
# requests, then four times as many. Each chat request streams a role chunk, --tokens
# token chunks, a usage chunk and [DONE] (tokens + 3 events; the client's own count,
# client_health.response_events, is the one divided by). For each run it prints user and
# system CPU of the whole process (/usr/bin/time) and per thread group (sampled from
# /proc every 50 ms: measuring workers, record thread, the rest); then the marginal cost,
# (long run - short run) / (their event difference), which leaves out what does not grow
# with the events (start-up, loading the tokenizer, writing the summary). It also prints
# the socket reads and the workers' CPU per read: when the client falls behind, one read
# completes several events, so per-event figures improve with load while per-read ones
# show what each read costs. --bin benchmarks a prebuilt core binary instead of building
# one (to compare two builds); --io-driver is passed to it.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CONCURRENCY=256
REQUESTS=2048
TOKENS=100
TTFT_MS=50
ITL_MS=5
WORKERS=""
IO_DRIVER=""
BIN=""
WORK=""

usage() { sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --concurrency) CONCURRENCY=$2; shift ;;
        --requests) REQUESTS=$2; shift ;;
        --tokens) TOKENS=$2; shift ;;
        --ttft-ms) TTFT_MS=$2; shift ;;
        --itl-ms) ITL_MS=$2; shift ;;
        --workers) WORKERS=$2; shift ;;
        --io-driver) IO_DRIVER=$2; shift ;;
        --bin) BIN=$2; shift ;;
        --work) WORK=$2; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

log() { printf '==> %s\n' "$*" >&2; }
TEMP_WORK=0
if [ -z "$WORK" ]; then
    WORK=$(mktemp -d)
    TEMP_WORK=1
fi
mkdir -p "$WORK"
MOCK_PID=""
stop_mock() {
    if [ -n "$MOCK_PID" ]; then
        kill "$MOCK_PID" 2>/dev/null || true
        wait "$MOCK_PID" 2>/dev/null || true
        MOCK_PID=""
    fi
}
cleanup() { stop_mock; if [ "$TEMP_WORK" = 1 ]; then rm -rf "$WORK"; fi; }
trap cleanup EXIT

if [ -n "$BIN" ]; then
    log "building aiperf-mock (release)"
    (cd "$REPO" && cargo build --quiet --release -p aiperf-tests --bin aiperf-mock)
    CLIENT=$BIN
else
    log "building aiperf-gen and aiperf-mock (release)"
    (cd "$REPO" && cargo build --quiet --release -p aiperf-gen -p aiperf-tests \
        --bin aiperf-gen --bin aiperf-mock)
    log "building the core binary"
    "$REPO/target/release/aiperf-gen" build --plugins core --out "$WORK/aiperf-core" >&2
    CLIENT=$WORK/aiperf-core
fi

# One benchmark of $1 requests, its files under $WORK/$2.
run_once() {
    local requests=$1 dir="$WORK/$2"
    rm -rf "$dir"
    mkdir -p "$dir"
    # The mock's timer thread would spin for precision, taking CPU from the client's
    # core; the events' exact timing does not matter here.
    "$REPO/target/release/aiperf-mock" --port 0 --ttft-ms "$TTFT_MS" --itl-ms "$ITL_MS" \
        --output-tokens "$TOKENS" --timer-spin-us 0 >"$dir/mock.out" 2>"$dir/mock.err" &
    MOCK_PID=$!
    for _ in $(seq 50); do
        grep -q listening "$dir/mock.out" 2>/dev/null && break
        sleep 0.1
    done
    local url
    url=$(awk '/listening/ {print $4}' "$dir/mock.out")
    [ -n "$url" ] || { echo "aiperf-mock did not start" >&2; cat "$dir/mock.err" >&2; exit 1; }
    log "benchmarking $url: $requests streaming chat requests at concurrency $CONCURRENCY"
    local extra=()
    [ -z "$WORKERS" ] || extra+=(--workers "$WORKERS")
    [ -z "$IO_DRIVER" ] || extra+=(--io-driver "$IO_DRIVER")
    /usr/bin/time -f '%U %S %e' -o "$dir/time.txt" \
        timeout 600 "$CLIENT" profile --model m --url "$url" --endpoint-type chat \
        --streaming --concurrency "$CONCURRENCY" --request-count "$requests" --isl 64 \
        --osl "$TOKENS" --artifact-dir "$dir/out" --ui-type none "${extra[@]}" \
        >"$dir/client.out" 2>"$dir/client.err" &
    local time_pid=$!
    # Per-thread user and system time from /proc until the client exits; the last sample
    # of each thread is within 50 ms of its end (the run's tail is idle).
    python3 - "$time_pid" >"$dir/threads.json" <<'PY'
import json, os, sys, time
parent = int(sys.argv[1])
def client_pid():
    for _ in range(500):
        try:
            for child in open(f"/proc/{parent}/task/{parent}/children").read().split():
                for grandchild in open(f"/proc/{child}/task/{child}/children").read().split():
                    return int(grandchild)
        except OSError:
            pass
        time.sleep(0.01)
    return None
pid = client_pid()
ticks = os.sysconf("SC_CLK_TCK")
seen = {}
while pid is not None and os.path.exists(f"/proc/{pid}"):
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            stat = open(f"/proc/{pid}/task/{tid}/stat").read()
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2 :].split()
            seen[tid] = (comm, int(fields[11]) / ticks, int(fields[12]) / ticks)
    except OSError:
        pass
    time.sleep(0.05)
json.dump(list(seen.values()), sys.stdout)
PY
    wait "$time_pid"
    stop_mock
}

run_once "$REQUESTS" short
run_once $((REQUESTS * 4)) long

python3 - "$WORK" "$REQUESTS" "$TOKENS" <<'PY'
import json, sys
work, requests, tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def load(name, n):
    user, sys_, wall = map(float, open(f"{work}/{name}/time.txt").read().split()[-3:])
    doc = json.load(open(f"{work}/{name}/out/profile_export_aiperf.json"))
    health = doc.get("client_health") or {}
    events = health.get("response_events")
    reads = health.get("reads") or 0
    errors = doc.get("error_request_count", {}).get("avg", 0)
    groups = {"workers": [0.0, 0.0], "record thread": [0.0, 0.0], "rest": [0.0, 0.0]}
    for comm, u, s in json.load(open(f"{work}/{name}/threads.json")):
        key = ("workers" if comm.startswith("aiperf-worker")
               else "record thread" if comm == "aiperf-records" else "rest")
        groups[key][0] += u
        groups[key][1] += s
    return dict(n=n, user=user, sys=sys_, wall=wall, events=events, reads=reads,
                errors=errors, expected=n * (tokens + 3), groups=groups)

runs = [load("short", requests), load("long", 4 * requests)]
ok = all(r["errors"] == 0 and r["events"] == r["expected"] for r in runs)

def show(label, events, user, sys_, groups):
    us = lambda s: s / events * 1e6
    print(f"{label}: {events} events, CPU {user + sys_:.2f} s "
          f"(user {user:.2f} + sys {sys_:.2f}) = {us(user + sys_):.2f} us per event")
    for name, (u, s) in groups.items():
        print(f"    {name:14} user {us(u):5.2f} + sys {us(s):5.2f} = {us(u + s):5.2f} us per event")

for r in runs:
    print(f"{r['n']} requests, {r['errors']:g} failed, {r['wall']:.1f} s wall")
    show("  whole process", r["events"], r["user"], r["sys"], r["groups"])
    if r["reads"]:
        wu, ws = r["groups"]["workers"]
        print(f"    {r['reads']} reads, {r['events'] / r['reads']:.2f} events per read; "
              f"workers {(wu + ws) / r['reads'] * 1e6:.2f} us per read")
a, b = runs
d_events = b["events"] - a["events"]
d_groups = {k: (b["groups"][k][0] - a["groups"][k][0], b["groups"][k][1] - a["groups"][k][1])
            for k in a["groups"]}
show("marginal (long - short)", d_events, b["user"] - a["user"], b["sys"] - a["sys"], d_groups)
marginal = (b["user"] + b["sys"] - a["user"] - a["sys"]) / d_events * 1e6
print(f"goal < 2 us of client CPU per event: {'met' if marginal < 2.0 else 'NOT met'} "
      f"({marginal:.2f} us marginal, whole process)")
sys.exit(0 if ok else 1)
PY
