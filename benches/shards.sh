#!/usr/bin/env bash
# Distributed load on one machine: `load merge` time for 1, 10 and 100 shard reports (against the
# time to read one report, measured in the same run), and the total rate of 3 local shards with a
# shared --start-at against one process with the same users, against the same mock.
# Usage: benches/shards.sh [SECONDS=5] [USERS=24]
# Traffic goes to 127.0.0.1 only; every run stops by itself, and the mock is ended on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_RUN=${1:-5}
USERS=${2:-24}
PORT=${BENCH_PORT:-18383}
cargo build --release --quiet --bin oauth-harness
H=target/release/oauth-harness
work=$(mktemp -d)
"$H" mock identity-server --port "$PORT" >"$work/mock.out" 2>&1 & mock=$!
trap 'kill $mock 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
sed -e "s/127.0.0.1:8080/127.0.0.1:$PORT/g" -e "s#\.\./keys/#$PWD/fixtures/keys/#" fixtures/targets/local-mock.yaml >"$work/t.yaml"
profile=scenarios/load/token-secret.yaml
rps() { python3 -c "import json; print(round(json.load(open('$1'))['total']['rps'], 1))"; }

# One process, then 3 shards of the same users started together.
"$H" load "$profile" --target "$work/t.yaml" --users "$USERS" --duration "${SECONDS_RUN}s" -q --report-json "$work/one.json" >/dev/null
start=$(date -u -d '+3 sec' +%FT%TZ)
shards=()
for k in 1 2 3; do
  "$H" load "$profile" --target "$work/t.yaml" --users "$USERS" --duration "${SECONDS_RUN}s" --shard "$k/3" \
    --start-at "$start" -q --report-json "$work/shard-$k.json" >/dev/null &
  shards+=($!)
done
# The shards only: a bare `wait` would wait for the mock too, which runs until it is killed.
wait "${shards[@]}" || true
"$H" load merge "$work"/shard-{1,2,3}.json --report-json "$work/merged.json" >/dev/null 2>&1 || true
one=$(rps "$work/one.json"); three=$(rps "$work/merged.json")
echo "one process, $USERS users:            $one req/s   (the reference)"
echo "3 shards of $USERS users, merged:     $three req/s"
python3 -c "print(f'ratio, 3 local shards to one process: {$three / $one:.2f} (one 2-core machine: the shards share its cores and the mock)')"

# Merge time: N copies of a real shard report, renumbered as shards 1..N of N.
python3 - "$work" <<'PY'
import json, sys, os
work = sys.argv[1]
r = json.load(open(os.path.join(work, "shard-1.json")))
for n in (1, 10, 100):
    d = os.path.join(work, f"m{n}")
    os.makedirs(d)
    for k in range(1, n + 1):
        r["shard"] = {"index": k, "count": n}
        json.dump(r, open(os.path.join(d, f"s{k}.json"), "w"))
PY
size=$(stat -c %s "$work/shard-1.json")
t() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
ref=$(t "$H" load merge "$work/m1/s1.json")
echo "merge of 1 report ($((size / 1024)) KiB):  ${ref} ms   (the reference: one report read, merged, judged, printed)"
for n in 10 100; do
  ms=$(t "$H" load merge "$work/m$n"/s*.json)
  python3 -c "print(f'merge of $n reports:          $ms ms  = {$ms / max($ref, 1):.1f}× one report')"
done
