#!/usr/bin/env bash
# Run the bot on a fresh machine: creates a virtualenv, installs the locked dependencies (requirements.lock)
# and the project, starts `glmbot`.
# Arguments go to glmbot (default: `serve`). Settings come from the environment or ./.env.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements.lock
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
if [ "$#" -eq 0 ]; then set -- serve; fi
exec .venv/bin/glmbot "$@"
