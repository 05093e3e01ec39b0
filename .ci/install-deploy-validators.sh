#!/usr/bin/env bash
# Installs the validators tests/deploy_manifests.rs runs on deploy/ (both from PyPI, pinned so a
# new schema release cannot turn CI red on its own) into a venv under target/, where `cargo clean`
# can take it and nothing outside the checkout is touched. Idempotent: a second run only checks.
#   kubernetes-validate: bundles the Kubernetes OpenAPI schemas, so it validates offline.
#   check-jsonschema:    bundles the GitHub Actions and GitLab CI schemas (--builtin-schema).
set -euo pipefail
cd "$(dirname "$0")/.."

KUBERNETES_VALIDATE=1.37.0
CHECK_JSONSCHEMA=0.39.0
venv=target/tools/k8s-venv

if [ ! -x "$venv/bin/python" ]; then
  # Debian splits venv out of python3; install it only when creating a venv fails.
  if ! python3 -m venv "$venv" 2>/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq python3-venv >/dev/null
    rm -rf "$venv"
    python3 -m venv "$venv"
  fi
fi

# pip skips what is already installed at the pinned version, so a warm venv costs a second.
"$venv/bin/pip" install --quiet --disable-pip-version-check \
  "kubernetes-validate==$KUBERNETES_VALIDATE" "check-jsonschema==$CHECK_JSONSCHEMA"

"$venv/bin/kubernetes-validate" --version
"$venv/bin/check-jsonschema" --version
