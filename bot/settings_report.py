"""Settings problems as lines a person can act on: every problem at once, secrets never shown.

pydantic reports each invalid field with its input; this turns each into
``invalid setting NAME: what is wrong (got 'value')``, where the value is shown only when it is not a
secret (tokens and keys are replaced by their kind; a URL's password by ``***``). Settings a command
needs but that are unset are found from the raw environment and ``.env``, so they can be named
together with invalid ones even when no Settings object could be built.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dotenv import dotenv_values

SHOWN_VALUE_CHARS = 60
ENV_FILE = ".env"


def describe_error(error: Any, secret_fields: Collection[str]) -> str:
    """One pydantic ``ErrorDetails`` as one line naming the variable and, unless secret, its value."""
    detail = str(error["msg"]).removeprefix("Value error, ")
    if not error["loc"]:
        # A check across settings: its message names the variables involved.
        return f"invalid settings: {detail}"
    field = str(error["loc"][0])
    shown = _shown_value(field, error.get("input"), secret_fields)
    return f"invalid setting {field.upper()}: {detail}{shown}"


def _shown_value(field: str, value: object, secret_fields: Collection[str]) -> str:
    if value is None or isinstance(value, dict):
        return ""
    if field in secret_fields:
        return ""  # a token or key is never repeated, not even in part
    text = redact_url(str(value))
    if len(text) > SHOWN_VALUE_CHARS:
        text = text[:SHOWN_VALUE_CHARS] + "…"
    return f" (got {text!r})"


def redact_url(text: str) -> str:
    """``text`` with the password of a URL (``redis://:pw@host``) replaced by ``***``; other text as is."""
    if "://" not in text or "@" not in text:
        return text
    try:
        parts = urlsplit(text)
    except ValueError:
        return text
    if parts.password is None:
        return text
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def missing(names: Iterable[str], env_file: Path = Path(ENV_FILE)) -> list[str]:
    """One line per name in ``names`` set neither in the environment nor in ``.env`` (blank = unset)."""
    return [
        f"missing setting {name}: set it in the environment or in .env"
        for name in names
        if not is_set(name, env_file)
    ]


def is_set(name: str, env_file: Path = Path(ENV_FILE)) -> bool:
    """Whether ``name`` has a non-blank value in the environment or ``.env`` (names ignore case, as
    pydantic-settings reads them)."""
    upper = name.upper()
    if any(key.upper() == upper and value.strip() for key, value in os.environ.items()):
        return True
    if not env_file.is_file():
        return False
    values = dotenv_values(env_file)
    return any(key.upper() == upper and (value or "").strip() for key, value in values.items())


def public_view(values: Mapping[str, object], secret_fields: Collection[str]) -> dict[str, object]:
    """Settings as a start-up log line may show them: secrets as ``set``/``unset``, URL passwords as
    ``***``, decimals as strings; keys upper-case as the variables are named."""
    shown: dict[str, object] = {}
    for field, value in values.items():
        if field in secret_fields:
            shown[field.upper()] = "set" if value is not None else "unset"
        elif isinstance(value, str):
            shown[field.upper()] = redact_url(value)
        elif isinstance(value, Decimal):
            shown[field.upper()] = str(value)
        else:
            shown[field.upper()] = value
    return shown
