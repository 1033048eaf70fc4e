#!/usr/bin/env bash
# Client CPU per received SSE event: the core binary benchmarks aiperf-mock with the chat
# endpoint streaming at 256 concurrent streams, and this prints the client's CPU time
# (user + sys of the whole process, from /usr/bin/time; and of its measuring workers
# alone, from the run's client_health) divided by the SSE events it received. Not a test:
# run it by hand. The goal is under 2 µs per event.
#
#   bench/sse_cost.sh [--concurrency 256] [--requests 2048] [--tokens 100]
#                     [--ttft-ms 50] [--itl-ms 5] [--workers N] [--work DIR]
#
# It builds aiperf-gen, the core binary and aiperf-mock in release mode, starts the mock
# on 127.0.0.1 (stopped by PID on exit) and runs one bounded benchmark (--requests).
# Every chat request streams a role chunk, --tokens token chunks, a usage chunk and
# [DONE]: tokens + 3 events; the client's own count (client_health.response_events) is
# the one divided by.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CONCURRENCY=256
REQUESTS=2048
TOKENS=100
TTFT_MS=50
ITL_MS=5
WORKERS=""
WORK=""

usage() { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --concurrency) CONCURRENCY=$2; shift ;;
        --requests) REQUESTS=$2; shift ;;
        --tokens) TOKENS=$2; shift ;;
        --ttft-ms) TTFT_MS=$2; shift ;;
        --itl-ms) ITL_MS=$2; shift ;;
        --workers) WORKERS=$2; shift ;;
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
stop_mock() { if [ -n "$MOCK_PID" ]; then kill "$MOCK_PID" 2>/dev/null || true; MOCK_PID=""; fi; }
cleanup() { stop_mock; if [ "$TEMP_WORK" = 1 ]; then rm -rf "$WORK"; fi; }
trap cleanup EXIT

log "building aiperf-gen and aiperf-mock (release)"
(cd "$REPO" && cargo build --quiet --release -p aiperf-gen -p aiperf-tests \
    --bin aiperf-gen --bin aiperf-mock)
log "building the core binary"
"$REPO/target/release/aiperf-gen" build --plugins core --out "$WORK/aiperf-core" >&2

# The mock's timer thread would spin for precision; here it would take CPU the client
# is measured on, and the events' exact timing does not matter.
"$REPO/target/release/aiperf-mock" --port 0 --ttft-ms "$TTFT_MS" --itl-ms "$ITL_MS" \
    --output-tokens "$TOKENS" --timer-spin-us 0 >"$WORK/mock.out" 2>"$WORK/mock.err" &
MOCK_PID=$!
for _ in $(seq 50); do
    grep -q listening "$WORK/mock.out" 2>/dev/null && break
    sleep 0.1
done
URL=$(awk '/listening/ {print $4}' "$WORK/mock.out")
[ -n "$URL" ] || { echo "aiperf-mock did not start" >&2; cat "$WORK/mock.err" >&2; exit 1; }

log "benchmarking $URL: $REQUESTS streaming chat requests at concurrency $CONCURRENCY"
EXTRA=()
[ -z "$WORKERS" ] || EXTRA+=(--workers "$WORKERS")
/usr/bin/time -f '%U %S %e' -o "$WORK/time.txt" \
    timeout 600 "$WORK/aiperf-core" profile --model m --url "$URL" --endpoint-type chat \
    --streaming --concurrency "$CONCURRENCY" --request-count "$REQUESTS" --isl 64 \
    --osl "$TOKENS" --artifact-dir "$WORK/out" --ui-type none "${EXTRA[@]}" \
    >"$WORK/client.out" 2>"$WORK/client.err"
stop_mock

python3 - "$WORK/time.txt" "$WORK/out/profile_export_aiperf.json" "$REQUESTS" "$TOKENS" <<'PY'
import json, sys
user, sys_, wall = map(float, open(sys.argv[1]).read().split()[-3:])
doc = json.load(open(sys.argv[2]))
requests, tokens = int(sys.argv[3]), int(sys.argv[4])
health = doc.get("client_health") or {}
events = health.get("response_events")
expected = requests * (tokens + 3)
errors = doc.get("error_request_count", {}).get("avg", 0)
if events is None:
    events = expected
workers_cpu = sum(health.get("worker_cpu_seconds") or [])
cpu = user + sys_
print(f"requests            {requests} ({errors:g} failed)")
print(f"SSE events received {events} (expected {expected})")
print(f"wall time           {wall:.2f} s")
print(f"client CPU          {cpu:.3f} s (user {user:.3f} + sys {sys_:.3f}), whole process")
print(f"client CPU / event  {cpu / events * 1e6:.3f} us   <- whole process, start-up included")
if workers_cpu:
    print(f"worker CPU / event  {workers_cpu / events * 1e6:.3f} us   <- measuring threads only")
verdict = "under" if cpu / events * 1e6 < 2.0 else "OVER"
print(f"goal                < 2 us per event: {verdict}")
sys.exit(0 if errors == 0 and events == expected else 1)
PY
