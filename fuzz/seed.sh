#!/usr/bin/env bash
# Seeds each target's corpus with the shipped files of its kind and the golden bad inputs.
set -euo pipefail
cd "$(dirname "$0")/.."
for kind in scenario target profile clients; do mkdir -p "fuzz/corpus/$kind"; done
cp scenarios/*/*.yaml tests/bad-input/*.yaml tests/inputs/*.yaml fuzz/corpus/scenario/ 2>/dev/null || true
rm -f fuzz/corpus/scenario/{token-secret,token-private-key-jwt,introspection,mixed}.yaml
cp scenarios/load/*.yaml tests/bad-input/profile/*.yaml fuzz/corpus/profile/
cp fixtures/targets/*.yaml tests/bad-input/target/*.yaml fuzz/corpus/target/
cp src/mock/identity_server/builtin-clients.yaml tests/bad-input/clients/*.yaml fuzz/corpus/clients/
