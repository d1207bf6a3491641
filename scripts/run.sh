#!/usr/bin/env bash
# Run the bot on a fresh machine: creates a virtualenv, installs the locked dependencies (requirements.lock)
# and the project, starts `glmbot`.
# Arguments go to glmbot (default: `serve`). Settings come from the environment or ./.env.
#
# Installing is skipped when nothing it depends on changed: .venv/.glmbot-install-stamp holds the
# sha256 of requirements.lock and pyproject.toml as of the last install that finished, so a launch
# costs a second, not a reinstall (~7 s). The project is installed editable, so edits to its code need no
# reinstall; a new dependency or entry point changes one of the two files. To force a reinstall, delete
# the stamp (or .venv).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
stamp="$venv/.glmbot-install-stamp"

# sha256 of the files that decide what is installed: sha256sum on Linux, shasum on macOS.
install_inputs_hash() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum requirements.lock pyproject.toml
  else
    shasum -a 256 requirements.lock pyproject.toml
  fi
}

# True when the virtualenv was installed from exactly these files ($1: their hashes) and has glmbot.
up_to_date() {
  [ -x "$venv/bin/glmbot" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$1" ]
}

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
wanted="$(install_inputs_hash)"
if ! up_to_date "$wanted"; then
  # An install that fails half-way leaves no stamp: an old one would match again if the files were
  # changed back, over a half-changed virtualenv.
  rm -f "$stamp"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements.lock
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
  # Written last, and by rename, so only a finished install is ever stamped.
  printf '%s\n' "$wanted" >"$stamp.tmp"
  mv "$stamp.tmp" "$stamp"
fi
if [ "$#" -eq 0 ]; then set -- serve; fi
exec "$venv/bin/glmbot" "$@"
