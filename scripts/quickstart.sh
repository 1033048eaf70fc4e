#!/usr/bin/env bash
# The quick start, end to end, on a fresh machine with only the Rust toolchain:
# build aiperf-gen, generate and build the core benchmark binary, start the bundled
# mock server on a free loopback port, run a short streaming benchmark, print results.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir=${CARGO_TARGET_DIR:-target}
out_dir=${QUICKSTART_DIR:-target/quickstart}
mkdir -p "$out_dir"

echo "==> building aiperf-gen and aiperf-mock"
cargo build --release -p aiperf-gen -p aiperf-tests --bin aiperf-gen --bin aiperf-mock

echo "==> aiperf-gen build --plugins core"
"$target_dir/release/aiperf-gen" build --plugins core --out "$out_dir/aiperf-core" \
    --emit-crate "$out_dir/crate"

echo "==> starting aiperf-mock (TTFT 40 ms, ITL 4 ms, 64 tokens)"
"$target_dir/release/aiperf-mock" --port 0 --ttft-ms 40 --itl-ms 4 --output-tokens 64 \
    >"$out_dir/mock.log" 2>&1 &
mock_pid=$!
trap 'kill "$mock_pid" 2>/dev/null || true' EXIT
url=""
for _ in $(seq 1 100); do
    url=$(grep -o 'http://127.0.0.1:[0-9]*' "$out_dir/mock.log" | head -n1 || true)
    [ -n "$url" ] && break
    sleep 0.05
done
[ -n "$url" ] || { echo "aiperf-mock did not start"; cat "$out_dir/mock.log"; exit 1; }

echo "==> profiling $url (artifacts in $out_dir/artifacts)"
"$out_dir/aiperf-core" profile --model m --url "$url" --endpoint-type chat --streaming \
    --concurrency 8 --request-count 200 --artifact-dir "$out_dir/artifacts" --ui-type none
