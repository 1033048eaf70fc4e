#!/usr/bin/env bash
# User-space instructions the core binary executes per request, counted by valgrind's
# callgrind: a cost figure that does not move with the machine. On a shared 2-vCPU VM the
# same binary's CPU time per request drifts by tens of percent within an hour, so a
# before/after comparison of a small change reads noise; instruction counts repeat to
# within a fraction of a percent. Not a test: run it by hand (with two builds, to compare
# them). They leave out what the kernel does (two thirds of a worker's time against a
# fast server) and what a cache miss costs, so they complement bench/compare.sh's CPU
# seconds rather than replace them.
#
#   bench/instructions.sh [--bin PATH] [--requests N] [--concurrency C] [--top K]
#                         [-- PROFILE-ARGS...]
#
# It starts aiperf-mock on 127.0.0.1 (fast: no delay, 2-token answers; stopped by PID on
# exit) and runs the client under callgrind twice, with N (default 2,000) and 3N
# requests, non-streaming chat at concurrency C (default 8), with --random-seed 1 (the
# same prompts every time); PROFILE-ARGS are added to
# both runs. It prints the marginal instructions per request, (long - short) / 2N, which
# leaves out start-up, the tokenizer's tables and writing the summary, and the K (default
# 25) functions that grow most with the requests, by their own instructions per request.
# Runs of one binary fall into two modes about 1,000-1,700 instructions per request apart,
# almost all of it in glibc's free (`_int_free`, printed last): how often a freed block
# misses the thread's cache depends on how the threads happened to interleave. Compare
# builds on several runs each, like mode with like (the `_int_free` figure tells them
# apart).
# Without --bin it builds aiperf-gen, aiperf-mock and an unstripped core binary (function
# names need the symbols); a --bin that is stripped still gives the totals. valgrind is
# installed from Debian's packages when missing. A run under callgrind is about 50 times
# slower than without: keep N in the thousands.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=""
REQUESTS=2000
CONCURRENCY=8
TOP=25
EXTRA=()

usage() { awk 'NR > 1 { if (!/^#/) exit; sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) BIN=$2; shift ;;
        --requests) REQUESTS=$2; shift ;;
        --concurrency) CONCURRENCY=$2; shift ;;
        --top) TOP=$2; shift ;;
        --) shift; EXTRA=("$@"); break ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

log() { printf '==> %s\n' "$*" >&2; }
WORK=$(mktemp -d)
MOCK_PID=""
cleanup() {
    if [ -n "$MOCK_PID" ]; then
        kill "$MOCK_PID" 2>/dev/null || true
        wait "$MOCK_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

if ! command -v valgrind >/dev/null 2>&1; then
    log "installing valgrind from Debian's packages"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
fi

TARGET=${CARGO_TARGET_DIR:-$REPO/target}
log "building aiperf-mock (release)"
(cd "$REPO" && cargo build --quiet --release -p aiperf-tests --bin aiperf-mock)
if [ -z "$BIN" ]; then
    log "building aiperf-gen and an unstripped core binary"
    (cd "$REPO" && cargo build --quiet --release -p aiperf-gen --bin aiperf-gen)
    BIN=$WORK/aiperf-core
    CARGO_PROFILE_RELEASE_STRIP=false "$TARGET/release/aiperf-gen" build --plugins core \
        --out "$BIN" >&2
fi

"$TARGET/release/aiperf-mock" --host 127.0.0.1 --port 0 --ttft-ms 0 --itl-ms 0 \
    --output-tokens 2 >"$WORK/mock.out" 2>"$WORK/mock.err" &
MOCK_PID=$!
URL=""
for _ in $(seq 100); do
    URL=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$WORK/mock.out" 2>/dev/null | head -n1 || true)
    [ -n "$URL" ] && break
    sleep 0.05
done
[ -n "$URL" ] || { echo "aiperf-mock did not start" >&2; cat "$WORK/mock.err" >&2; exit 1; }

# count N: runs N requests under callgrind; its profile is $WORK/cg.N.
count() {
    local n=$1
    log "callgrind: $n requests at concurrency $CONCURRENCY against $URL"
    timeout 1800 valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.$n" \
        "$BIN" profile --model m --url "$URL" --endpoint-type chat --ui-type none \
        --concurrency "$CONCURRENCY" --request-count "$n" --isl 32 --random-seed 1 \
        --artifact-dir "$WORK/run-$n" "${EXTRA[@]}" >"$WORK/run-$n.log" 2>&1 ||
        {
            echo "the client failed under callgrind:" >&2
            tail -20 "$WORK/run-$n.log" >&2
            exit 1
        }
    callgrind_annotate --threshold=100 "$WORK/cg.$n" >"$WORK/fn.$n.txt" 2>/dev/null
}
SHORT=$REQUESTS
LONG=$((REQUESTS * 3))
count "$SHORT"
count "$LONG"

python3 - "$WORK/fn.$SHORT.txt" "$WORK/fn.$LONG.txt" "$((LONG - SHORT))" "$TOP" "$BIN" <<'PY'
import re, sys
short, long_, binary = sys.argv[1], sys.argv[2], sys.argv[5]
extra, top = int(sys.argv[3]), int(sys.argv[4])

def table(path):
    total, own = 0, {}
    for line in open(path, errors="replace"):
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(.*)$", line)
        if not m:
            continue
        n, what = int(m.group(1).replace(",", "")), m.group(2).strip()
        if what.startswith("PROGRAM TOTALS"):
            total = n
        elif not what.startswith("=>") and ":" in what:
            # `file:function [object]`: the function's own instructions.
            name = re.sub(r"\s*\[[^]]*\]$", "", what.split(":", 1)[1])
            own[name] = own.get(name, 0) + n
    return total, own

(t0, a), (t1, b) = table(short), table(long_)
print(f"client: {binary}")
print(f"user-space instructions per request (marginal over {extra} requests): "
      f"{(t1 - t0) / extra:,.0f}")
rows = sorted(((b.get(k, 0) - a.get(k, 0)) / extra, k) for k in set(a) | set(b))
print(f"\n{'per request':>12}  function (own instructions)")
for per, name in reversed(rows[-top:]):
    print(f"{per:12,.0f}  {name[:110]}")
slow_free = (b.get("_int_free", 0) - a.get("_int_free", 0)) / extra
print(f"\nglibc _int_free: {slow_free:,.0f} per request (it sets the run's mode; see the header)")
PY
