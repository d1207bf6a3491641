"""Settings problems as lines a person can act on: every problem at once, secrets never shown.

pydantic reports each invalid field with its input; this turns each into
``invalid setting NAME: what is wrong (got 'value')``, where the value is shown only when it is not a
secret (tokens and keys are replaced by their kind; a URL's password by ``***``). Settings a command
needs but that are unset are found from the raw environment and ``.env``, so they can be named
together with invalid ones even when no Settings object could be built.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from bot.redaction import redact_url

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


# Where a missing setting has a likelier cause than "forgot to set it".
MISSING_HINTS = {
    "SLACK_SIGNING_SECRET": " (HTTP mode needs it; for Socket Mode, with no public URL, set SLACK_APP_TOKEN "
    "instead)",
}


def missing_line(name: str) -> str:
    """The line for a setting the command needs but nobody set."""
    return f"missing setting {name}: set it in the environment or in .env{MISSING_HINTS.get(name, '')}"


def missing(names: Iterable[str], env_file: Path = Path(ENV_FILE)) -> list[str]:
    """One line per name in ``names`` set neither in the environment nor in ``.env`` (blank = unset)."""
    return [missing_line(name) for name in names if not is_set(name, env_file)]


def is_set(name: str, env_file: Path = Path(ENV_FILE)) -> bool:
    """Whether ``name`` has a non-blank value in the environment or ``.env``."""
    return raw_value(name, env_file) is not None


def raw_value(name: str, env_file: Path = Path(ENV_FILE)) -> str | None:
    """``name``'s value as pydantic-settings reads it: the environment first, then ``.env``; names ignore
    case, blank values count as unset. None when unset."""
    upper = name.upper()
    for source in (os.environ, dotenv_values(env_file) if env_file.is_file() else {}):
        for key, value in source.items():
            if key.upper() == upper and (value or "").strip():
                return (value or "").strip()
    return None


# Token kinds by prefix (https://docs.slack.dev/authentication/tokens): a bot token is xoxb-, an
# app-level token xapp-. A user token (xoxp-) pasted as the bot token would act as that person.
_TOKEN_KIND = re.compile(r"xox[a-z](\.xox[a-z])?-|xapp-")  # the kind part only: never more of a token
TOKEN_KINDS = {
    "SLACK_BOT_TOKEN": ("xoxb-", "a bot token"),
    "SLACK_APP_TOKEN": ("xapp-", "an app-level token"),
}


def token_kind_problems(env_file: Path = Path(ENV_FILE)) -> list[str]:
    """One line per Slack token set to the wrong kind of token. Only a token's kind prefix (``xoxp-``,
    ``xapp-``) is shown, never any more of it; a value that is no Slack token is not shown at all."""
    problems = []
    for name, (prefix, kind) in TOKEN_KINDS.items():
        value = raw_value(name, env_file)
        if value is None or value.startswith(prefix):
            continue
        other = _TOKEN_KIND.match(value)
        got = f"got {other[0]}… instead" if other else "got something that is not a Slack token"
        problems.append(f"invalid setting {name}: must be {kind} ({prefix}…), {got}")
    return problems


PROMPT_FIELDS = frozenset({"system_prompt", "assistant_prompts"})


def public_view(values: Mapping[str, object], secret_fields: Collection[str]) -> dict[str, object]:
    """Settings as a start-up log line may show them: secrets as ``set``/``unset``, prompts only by their
    length, URL passwords as ``***``, decimals as strings; keys upper-case as the variables are named."""
    shown: dict[str, object] = {}
    for field, value in values.items():
        if field in secret_fields:
            shown[field.upper()] = "set" if value is not None else "unset"
        elif field in PROMPT_FIELDS:  # words for the model are not logged: only whether they are set
            shown[field.upper()] = f"set ({len(str(value))} characters)" if value else "unset"
        elif isinstance(value, str):
            shown[field.upper()] = redact_url(value)
        elif isinstance(value, Decimal):
            shown[field.upper()] = str(value)
        else:
            shown[field.upper()] = value
    return shown
