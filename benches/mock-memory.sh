#!/usr/bin/env bash
# The Identity Server mock's memory under a long token run: it keeps nothing per token (a token
# is a JWT it verifies by its signature; only revocations are stored), so its peak RSS after one
# million tokens stays close to its RSS after a thousand — the reference measured in the same run.
# Usage: benches/mock-memory.sh [TOKENS=1000000] [USERS=20]
# Traffic goes to 127.0.0.1 only; every run stops by itself, and the mock is ended on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
TOKENS=${1:-1000000}
USERS=${2:-20}
PORT=${BENCH_PORT:-18282}
cargo build --release --quiet --bin oauth-harness
H=target/release/oauth-harness
work=$(mktemp -d)
"$H" mock identity-server --port "$PORT" >"$work/mock.out" 2>&1 & mock=$!
trap 'kill $mock 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
sed -e "s/127.0.0.1:8080/127.0.0.1:$PORT/g" -e "s#\.\./keys/#$PWD/fixtures/keys/#" fixtures/targets/local-mock.yaml >"$work/t.yaml"
rss() { awk '/VmRSS/ {print $2}' "/proc/$mock/status"; }
hwm() { awk '/VmHWM/ {print $2}' "/proc/$mock/status"; }
run() { # $1 = tokens
  local iterations=$(( ($1 + USERS - 1) / USERS ))
  "$H" load scenarios/load/token-secret.yaml --target "$work/t.yaml" --users "$USERS" --iterations "$iterations" \
    -q --report-json "$work/r.json" >/dev/null 2>&1 || true
  python3 -c "import json; print(json.load(open('$work/r.json'))['total']['requests'])"
}
idle=$(rss)
small=$(run 1000); after_small=$(hwm)
big=$(run "$TOKENS"); after_big=$(hwm)
echo "mock RSS idle:                          $((idle / 1024)) MiB"
echo "mock peak RSS after $small tokens:        $((after_small / 1024)) MiB   (the reference)"
echo "mock peak RSS after $big more tokens:  $((after_big / 1024)) MiB"
python3 -c "print(f'ratio, peak after {$big} tokens to peak after {$small}: {$after_big / $after_small:.2f}')"
