"""``scripts/run.sh`` installs only when requirements.lock or pyproject.toml changed.

Run for real on a copy of the script, the two files and a stand-in virtualenv whose ``python`` and
``glmbot`` only record how they were called: offline, and in milliseconds rather than a real install.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STAMP = ".venv/.glmbot-install-stamp"
# A stand-in for .venv/bin/python: logs its arguments; `pip install -e .` creates .venv/bin/glmbot (as the
# real editable install does), which logs its own; a FAIL file makes the pip calls fail.
PYTHON_SHIM = """#!/usr/bin/env bash
bin="$(cd "$(dirname "$0")" && pwd)"
echo "python $*" >>"$bin/../../calls.log"
[ ! -e "$bin/../../FAIL" ] || exit 1
if [ "${*: -2}" = "-e ." ]; then
  printf '#!/usr/bin/env bash\\necho "glmbot $*" >>"%s/../../calls.log"\\n' "$bin" >"$bin/glmbot"
  chmod +x "$bin/glmbot"
fi
"""


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of what run.sh reads, with the stand-in virtualenv already created."""
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "run.sh", root / "scripts" / "run.sh")
    for name in ("requirements.lock", "pyproject.toml"):
        shutil.copy(REPO / name, root / name)
    python = root / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(PYTHON_SHIM)
    python.chmod(0o755)
    return root


def launch(root: Path, *args: str) -> tuple[int, list[str]]:
    """Run ``bash scripts/run.sh ARGS`` in ``root``; its exit status and the calls it made, in order."""
    log = root / "calls.log"
    log.unlink(missing_ok=True)
    done = subprocess.run(
        ["bash", "scripts/run.sh", *args], cwd=root, capture_output=True, text=True, timeout=30, check=False
    )
    return done.returncode, log.read_text().splitlines() if log.exists() else []


def pip_installs(calls: list[str]) -> list[str]:
    return [call for call in calls if call.startswith("python -m pip install")]


def test_first_launch_installs_then_later_launches_do_not(checkout: Path) -> None:
    """The first launch installs the lock and the project and stamps them; the next skips both installs
    and starts glmbot with the arguments given."""
    code, calls = launch(checkout, "--version")
    assert code == 0
    assert [call.split()[-1] for call in pip_installs(calls)] == ["requirements.lock", "."]
    assert "--require-hashes" in pip_installs(calls)[0]
    assert calls[-1] == "glmbot --version"
    assert (checkout / STAMP).is_file()
    code, calls = launch(checkout, "console")
    assert (code, calls) == (0, ["glmbot console"])
    assert launch(checkout) == (0, ["glmbot serve"])  # no arguments: serve


@pytest.mark.parametrize("changed", ["requirements.lock", "pyproject.toml"])
def test_a_changed_input_installs_again(checkout: Path, changed: str) -> None:
    """Editing the lock or pyproject.toml makes the next launch install both again, and only that one."""
    launch(checkout, "--version")
    with (checkout / changed).open("a") as file:
        file.write("\n# changed\n")
    code, calls = launch(checkout, "--version")
    assert (code, len(pip_installs(calls))) == (0, 2)
    assert launch(checkout, "--version") == (0, ["glmbot --version"])


def test_a_missing_glmbot_installs_again(checkout: Path) -> None:
    """A matching stamp without .venv/bin/glmbot (a broken virtualenv) still installs."""
    launch(checkout, "--version")
    (checkout / ".venv" / "bin" / "glmbot").unlink()
    code, calls = launch(checkout, "--version")
    assert (code, len(pip_installs(calls)), calls[-1]) == (0, 2, "glmbot --version")


def test_a_failed_install_stops_and_leaves_no_stamp(checkout: Path) -> None:
    """pip failing stops the script (set -e) before glmbot runs and without a stamp, so the next launch
    installs again."""
    launch(checkout, "--version")
    (checkout / "requirements.lock").write_text("# a new lock\n")
    (checkout / "FAIL").touch()
    code, calls = launch(checkout, "--version")
    assert code != 0
    assert not any(call.startswith("glmbot") for call in calls)
    assert not (checkout / STAMP).exists()
    (checkout / "FAIL").unlink()
    code, calls = launch(checkout, "--version")
    assert (code, len(pip_installs(calls))) == (0, 2)


def test_the_script_keeps_strict_mode() -> None:
    """Errors, unset variables and failed pipes stop the script rather than starting a half-installed bot."""
    assert "set -euo pipefail" in (REPO / "scripts" / "run.sh").read_text()
