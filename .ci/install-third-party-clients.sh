#!/usr/bin/env bash
# Installs the third-party OAuth clients that `oauth-harness certify` runs as fixtures, each pinned
# with every dependency by its requirements.txt, in a venv inside its fixture folder (ignored by
# the folder's .gitignore). Idempotent: a second run only checks.
#   fixtures/clients/authlib: Authlib's requests OAuth2Session (client_credentials), Python 3.11+.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=fixtures/clients/authlib
if [ ! -x "$dir/.venv/bin/python" ]; then
  # Debian splits venv out of python3; install it only when creating a venv fails.
  if ! python3 -m venv "$dir/.venv" 2>/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq python3-venv >/dev/null
    rm -rf "$dir/.venv"
    python3 -m venv "$dir/.venv"
  fi
fi

# pip skips what is already installed at the pinned version, so a warm venv costs a second.
"$dir/.venv/bin/pip" install --quiet --disable-pip-version-check -r "$dir/requirements.txt"
"$dir/.venv/bin/python" -c 'import authlib; print("Authlib", authlib.__version__)'
