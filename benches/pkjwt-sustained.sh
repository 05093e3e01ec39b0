#!/usr/bin/env bash
# A sustained private_key_jwt load run longer than an assertion's life (5 minutes, handed out for
# at most 4), so the pre-signed pool cannot carry it and every assertion after the first seconds is
# signed while the run goes on — as a ratio to the machine's bare signing rate (as many threads as
# the harness signs with, aws-lc-rs over a pre-parsed key: `load_reference sign`), measured in the
# same run just before and just after it (the mean of the two is the reference).
# Usage: benches/pkjwt-sustained.sh [SECONDS=330] [CONNECTIONS=32] [ALGS="rs384 es384"]
# The endpoint is benches/load_reference.rs serve on 127.0.0.1 (a fixed answer, it verifies
# nothing): what is measured is the client side. It shares the cores with the harness, so the
# ratio says how much of the machine's signing the run turns into requests.
# Every run stops by itself; the endpoint is ended on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-330}
CONNECTIONS=${2:-32}
ALGS=${3:-rs384 es384}
PORT=${BENCH_PORT:-18191}
URL="http://127.0.0.1:$PORT/connect/token"
THREADS=$(nproc)
if [ "$SECONDS_PER_RUN" -le 300 ]; then
  echo "note: ${SECONDS_PER_RUN}s is within an assertion's 5-minute life; the pool may carry the run" >&2
fi

cargo build --release --quiet --bin oauth-harness --example load_reference
H=target/release/oauth-harness
REF=target/release/examples/load_reference

work=$(mktemp -d)
"$REF" serve "$PORT" --for $((SECONDS_PER_RUN * 3 + 120)) & server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 50); do (echo >/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done

{
  printf 'issuer: http://127.0.0.1:%s\ntoken_endpoint: %s\ntimeout: 10s\nclients:\n' "$PORT" "$URL"
  for alg in $ALGS; do
    printf '  backend-%s: { client_id: smart-backend-%s, auth: private_key_jwt, private_key: %s, scope: system/Patient.rs }\n' \
      "$alg" "$alg" "$PWD/fixtures/keys/backend-$alg/private.pem"
  done
} >"$work/target.yaml"

bare_rate() { # key -> signatures/s on $THREADS threads
  "$REF" sign "$1" 5 "$THREADS" | python3 -c "import json,sys; print(f\"{json.load(sys.stdin)['rate']:.0f}\")"
}

echo "endpoint: $URL · $CONNECTIONS connections · ${SECONDS_PER_RUN}s per run · $THREADS cores" >&2
printf '%-10s %12s %12s %12s %8s  %s\n' "alg" "bare sig/s" "req/s" "ratio" "errors" "pool"
for alg in $ALGS; do
  key="fixtures/keys/backend-$alg/private.pem"
  printf 'load:\n  path: token\n  client: backend-%s\n' "$alg" >"$work/$alg.yaml"
  before=$(bare_rate "$key")
  "$H" load "$work/$alg.yaml" --target "$work/target.yaml" --users "$CONNECTIONS" --duration "${SECONDS_PER_RUN}s" -q \
    --report-json "$work/$alg.json" >"$work/$alg.out" 2>&1 || cat "$work/$alg.out" >&2
  after=$(bare_rate "$key")
  python3 - "$work/$alg.json" "$alg" "$before" "$after" <<'PY'
import json, sys
report, alg, before, after = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
d = json.load(open(report))
total, pool = d["total"], d["signing_pools"]["token"]
bare = (before + after) / 2
print(f"{alg.upper():<10} {bare:>12.0f} {total['rps']:>12.0f} {total['rps'] / bare:>11.2f}x {total['errors']:>8}  "
      f"{pool['signed']} signed, {pool['prefilled']} ahead, {pool['starved']} waits, {pool['discarded_stale']} stale "
      f"(bare {before:.0f} before, {after:.0f} after)")
PY
done
echo "(ratio = the run's rate / the bare signing rate on $THREADS threads, mean of before and after)"
