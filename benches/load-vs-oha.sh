#!/usr/bin/env bash
# How close `oauth-harness load` gets to a bare HTTP load tool, all measured in one run against one
# fast local token endpoint (benches/load_reference.rs serve), with the same connection count and
# duration:
#   oha (the ceiling) · a bare reqwest loop · the harness on client_secret_basic (through reqwest,
#   then through hyper, its default on plain HTTP) · the harness on
#   private_key_jwt (RS384 and ES384, a fresh signed assertion per request) · the harness on
#   client_secret_basic with DPoP (RFC 9449: a fresh ES384 proof per request, from its pool) —
#   with the ratios; then the same endpoint over TLS (the harness's own TLS front, test PKI): oha,
#   the bare loop and the harness on client_secret_basic over TLS, and the harness on
#   tls_client_auth (mTLS, a client certificate on every connection) — then the peak RSS of a
#   500-user run.
# Usage: benches/load-vs-oha.sh [SECONDS=5] [CONNECTIONS=32]
# The private_key_jwt runs get an assertion pool sized from the rate the client_secret run reached
# (the pool's design: sized from the target rate); pre-signing it takes a while before traffic.
# Last, the same harness paths against the real server of the tests (oidc-provider, when Node.js
# and its fixture are installed): what a real authorization server holds, for context.
# Traffic goes to 127.0.0.1 only; every run stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-5}
CONNECTIONS=${2:-32}
PORT=${BENCH_PORT:-18181}
URL="http://127.0.0.1:$PORT/connect/token"
TLS_PORT=$((PORT + 1))
TLS_URL="https://127.0.0.1:$TLS_PORT/connect/token"
BASIC="Basic aW1wbGFudC12ZW5kb3I6aW1wbGFudC12ZW5kb3Itc2VjcmV0"

if ! command -v oha >/dev/null 2>&1; then
  echo "installing oha (cargo install oha --locked)…" >&2
  cargo install oha --locked >/dev/null 2>&1
fi
cargo build --release --quiet --bin oauth-harness --example load_reference
H=target/release/oauth-harness
REF=target/release/examples/load_reference

work=$(mktemp -d)
target/release/examples/load_reference serve "$PORT" --for 900 & server=$!
target/release/examples/load_reference serve "$TLS_PORT" --for 900 --tls fixtures/pki & tls_server=$!
trap 'kill $server $tls_server 2>/dev/null || true; rm -rf "$work"' EXIT
for port in $PORT $TLS_PORT; do
  for _ in $(seq 50); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done

cat >"$work/target.yaml" <<EOF
issuer: http://127.0.0.1:$PORT
token_endpoint: $URL
timeout: 10s
clients:
  confidential: { client_id: implant-vendor, client_secret: implant-vendor-secret, auth: client_secret_basic, scope: implant }
  backend-rs384: { client_id: smart-backend-rs384, auth: private_key_jwt, private_key: $PWD/fixtures/keys/backend-rs384/private.pem, scope: system/Patient.rs }
  backend-es384: { client_id: smart-backend-es384, auth: private_key_jwt, private_key: $PWD/fixtures/keys/backend-es384/private.pem, scope: system/Patient.rs }
EOF
for client in confidential backend-rs384 backend-es384; do
  printf 'load:\n  path: token\n  client: %s\n' "$client" >"$work/$client.yaml"
done
printf 'load:\n  path: token\n  client: confidential\n  dpop: true\n' >"$work/dpop.yaml"
cat >"$work/target-tls.yaml" <<EOF
issuer: https://127.0.0.1:$TLS_PORT
token_endpoint: $TLS_URL
timeout: 10s
tls: { ca: $PWD/fixtures/pki/ca.pem }
clients:
  confidential: { client_id: implant-vendor, client_secret: implant-vendor-secret, auth: client_secret_basic, scope: implant }
  mtls: { client_id: harness-psc-client, auth: tls_client_auth, certificate: $PWD/fixtures/pki/client.pem, certificate_key: $PWD/fixtures/pki/client.key, scope: implant }
EOF
printf 'load:\n  path: token\n  client: mtls\n' >"$work/mtls.yaml"
size_pool() { # profile rps: enough assertions for the run at that rate, with a margin
  printf '  assertion_pool: %d\n' "$(( $2 * SECONDS_PER_RUN * 12 / 10 + 1000 ))" >>"$work/$1.yaml"
}

harness_rps() { # profile users [target] -> rps errors
  local target=${3:-target}
  "$H" load "$work/$1.yaml" --target "$work/$target.yaml" --users "$2" --duration "${SECONDS_PER_RUN}s" -q \
    --report-json "$work/$1-$target.json" >"$work/$1.out" 2>&1 || { cat "$work/$1.out" >&2; }
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); t=d['total']; print(f\"{t['rps']:.0f} {t['errors']}\")" "$work/$1-$target.json"
}

ROUNDS=${ROUNDS:-3}
echo "endpoint: $URL · $CONNECTIONS connections · ${SECONDS_PER_RUN}s per run · $ROUNDS rounds, medians · $(nproc) cores" >&2
oha_once() { # [url [oha options…]]
  local url=${1:-$URL}; shift || true
  oha -z "${SECONDS_PER_RUN}s" -c "$CONNECTIONS" -m POST -T application/x-www-form-urlencoded "$@" \
    -H "Authorization: $BASIC" -d 'grant_type=client_credentials&scope=implant' --no-tui --output-format json "$url" \
    | python3 -c "import json,sys; print(f\"{json.load(sys.stdin)['summary']['requestsPerSec']:.0f}\")"
}
bare_once() { # [url [bare options…]]
  local url=${1:-$URL}; shift || true
  "$REF" bare "$url" "$CONNECTIONS" "$SECONDS_PER_RUN" "$@" | python3 -c "import json,sys; print(f\"{json.load(sys.stdin)['rps']:.0f}\")"
}
median() { python3 -c "import statistics,sys; print(int(statistics.median(map(float, sys.argv[1:]))))" "$@"; }

# The machine is shared: runs alternate, round after round, and each figure is a median.
oha_all=(); bare_all=(); reqwest_all=(); secret_all=(); rs_all=(); es_all=(); dpop_all=(); errors=0
oha_tls_all=(); bare_tls_all=(); tls_all=(); mtls_all=()
for round in $(seq "$ROUNDS"); do
  oha_all+=("$(oha_once)")
  bare_all+=("$(bare_once)")
  read -r rps e < <(OAUTH_HARNESS_LOAD_TRANSPORT=reqwest harness_rps confidential "$CONNECTIONS"); reqwest_all+=("$rps"); errors=$((errors + e))
  read -r rps e < <(harness_rps confidential "$CONNECTIONS"); secret_all+=("$rps"); errors=$((errors + e))
  if [ "$round" = 1 ]; then size_pool backend-rs384 "$rps"; size_pool backend-es384 "$rps"; fi
  read -r rps e < <(harness_rps backend-rs384 "$CONNECTIONS"); rs_all+=("$rps"); errors=$((errors + e))
  read -r rps e < <(harness_rps backend-es384 "$CONNECTIONS"); es_all+=("$rps"); errors=$((errors + e))
  read -r rps e < <(harness_rps dpop "$CONNECTIONS"); dpop_all+=("$rps"); errors=$((errors + e))
  # oha verifies nothing here (--insecure): its ceiling is, if anything, a little higher.
  oha_tls_all+=("$(oha_once "$TLS_URL" --insecure)")
  bare_tls_all+=("$(bare_once "$TLS_URL" --cacert fixtures/pki/ca.pem)")
  read -r rps e < <(harness_rps confidential "$CONNECTIONS" target-tls); tls_all+=("$rps"); errors=$((errors + e))
  read -r rps e < <(harness_rps mtls "$CONNECTIONS" target-tls); mtls_all+=("$rps"); errors=$((errors + e))
  echo "round $round: oha ${oha_all[-1]} · bare ${bare_all[-1]} · harness/reqwest ${reqwest_all[-1]} · secret ${secret_all[-1]} · RS384 ${rs_all[-1]} · ES384 ${es_all[-1]} · DPoP ${dpop_all[-1]} · TLS: oha ${oha_tls_all[-1]} · bare ${bare_tls_all[-1]} · secret ${tls_all[-1]} · mTLS ${mtls_all[-1]}" >&2
done
oha_rps=$(median "${oha_all[@]}"); bare_rps=$(median "${bare_all[@]}"); secret_rps=$(median "${secret_all[@]}")
reqwest_rps=$(median "${reqwest_all[@]}")
rs_rps=$(median "${rs_all[@]}"); es_rps=$(median "${es_all[@]}"); dpop_rps=$(median "${dpop_all[@]}")
oha_tls_rps=$(median "${oha_tls_all[@]}"); bare_tls_rps=$(median "${bare_tls_all[@]}")
tls_rps=$(median "${tls_all[@]}"); mtls_rps=$(median "${mtls_all[@]}")
starved=$(python3 -c "import json,sys; p=json.load(open(sys.argv[1]))['signing_pools']['token']; print(p['starved'], 'times;', p['signed'], 'signed')" "$work/backend-rs384-target.json")

# Peak RSS of a 500-user run (the harness process, embedded mock excluded: this is the endpoint).
rss_kb=$(python3 - "$H" "$work" "$SECONDS_PER_RUN" <<'PY'
import resource, subprocess, sys
h, work, secs = sys.argv[1:]
subprocess.run([h, "load", f"{work}/confidential.yaml", "--target", f"{work}/target.yaml", "--users", "500",
                "--duration", f"{secs}s", "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
PY
)

ratio() { python3 -c "import sys; print(f'{float(sys.argv[1])/float(sys.argv[2]):.2f}')" "$1" "$2"; }
printf '%-48s %10s  %s\n' "run" "req/s" "ratio"
printf '%-48s %10s  %s\n' "oha (ceiling)" "$oha_rps" "1.00 of oha"
printf '%-48s %10s  %s\n' "bare reqwest loop" "$bare_rps" "$(ratio "$bare_rps" "$oha_rps") of oha"
printf '%-48s %10s  %s\n' "harness client_secret_basic, reqwest transport" "$reqwest_rps" "$(ratio "$reqwest_rps" "$bare_rps") of bare reqwest (target ≥ 0.90)"
printf '%-48s %10s  %s\n' "harness client_secret_basic (hyper, default)" "$secret_rps" "$(ratio "$secret_rps" "$bare_rps") of bare reqwest · $(ratio "$secret_rps" "$oha_rps") of oha"
printf '%-48s %10s  %s\n' "harness private_key_jwt RS384" "$rs_rps" "$(ratio "$rs_rps" "$secret_rps") of client_secret (target ≥ 0.70)"
printf '%-48s %10s  %s\n' "harness private_key_jwt ES384" "$es_rps" "$(ratio "$es_rps" "$secret_rps") of client_secret (target ≥ 0.70)"
printf '%-48s %10s  %s\n' "harness client_secret_basic + DPoP (ES384 proofs)" "$dpop_rps" "$(ratio "$dpop_rps" "$secret_rps") of client_secret"
printf '%-48s %10s  %s\n' "TLS: oha (ceiling, --insecure)" "$oha_tls_rps" "1.00 of oha over TLS"
printf '%-48s %10s  %s\n' "TLS: bare reqwest loop" "$bare_tls_rps" "$(ratio "$bare_tls_rps" "$oha_tls_rps") of oha over TLS"
printf '%-48s %10s  %s\n' "TLS: harness client_secret_basic" "$tls_rps" "$(ratio "$tls_rps" "$oha_tls_rps") of oha over TLS (target ≥ 0.80) · $(ratio "$tls_rps" "$bare_tls_rps") of bare"
printf '%-48s %10s  %s\n' "mTLS: harness tls_client_auth" "$mtls_rps" "$(ratio "$mtls_rps" "$tls_rps") of the harness over TLS"
echo "harness runs: $errors errors in all; last RS384 run's pool: waited on empty $starved"
echo "peak RSS, 500 users, ${SECONDS_PER_RUN}s: $((rss_kb / 1024)) MiB"

# The real server of the tests, for context: how the same paths fare against oidc-provider.
op=fixtures/servers/oidc-provider
if command -v node >/dev/null 2>&1 && [ -d "$op/node_modules/oidc-provider" ]; then
  (cd "$op" && exec node server.js --port 0 >"$work/op.out" 2>/dev/null) & op_pid=$!
  trap 'kill $server $op_pid 2>/dev/null || true; rm -rf "$work"' EXIT
  for _ in $(seq 100); do grep -q listening "$work/op.out" 2>/dev/null && break; sleep 0.1; done
  issuer=$(sed -n 's/^listening //p' "$work/op.out")
  sed -e "s#https://127.0.0.1:8444#$issuer#g" -e "s#\.\./pki/#$PWD/fixtures/pki/#g" -e "s#\.\./keys/#$PWD/fixtures/keys/#g" \
    fixtures/targets/oidc-provider.yaml >"$work/op-target.yaml"
  echo "against oidc-provider 9.13.3 (Node $(node --version), one process, TLS), $CONNECTIONS users, ${SECONDS_PER_RUN}s:"
  for profile in token-secret token-private-key-jwt introspection; do
    "$H" load "scenarios/load/$profile.yaml" --target "$work/op-target.yaml" --users "$CONNECTIONS" \
      --duration "${SECONDS_PER_RUN}s" -q --report-json "$work/op-$profile.json" >/dev/null 2>&1 || true
    python3 -c "import json,sys; t=json.load(open(sys.argv[1]))['total']; print(f\"  {sys.argv[2]:<24} {t['rps']:>8.0f} req/s  p95 {t['latency_ms']['p95']} ms  {t['errors']} errors\")" \
      "$work/op-$profile.json" "$profile"
  done
else
  echo "(oidc-provider not installed: npm ci in $op to measure against it too)"
fi
