"""Every data file the code loads at run time ships in the wheel (``[tool.setuptools.package-data]``).

A non-editable install (the Dockerfile's) carries only the files package-data names: a Lua script left
out would fail on first use in production while every test, run from the source tree, passes.
"""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_lua_and_json_file_is_package_data() -> None:
    patterns: dict[str, list[str]] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"][
        "setuptools"
    ]["package-data"]
    missing = []
    for path in sorted(
        [*ROOT.glob("bot/**/*.lua"), *ROOT.glob("bot/**/*.json"), *ROOT.glob("handlers/**/*.lua")]
    ):
        relative = path.relative_to(ROOT)
        shipped = False
        for package, globs in patterns.items():
            base = Path(*package.split("."))
            if base in relative.parents:
                inside = relative.relative_to(base).as_posix()
                shipped = shipped or any(fnmatch.fnmatch(inside, glob) for glob in globs)
        if not shipped:
            missing.append(str(relative))
    assert missing == [], f"add these to [tool.setuptools.package-data] in pyproject.toml: {missing}"
