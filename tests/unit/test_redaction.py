"""Secrets out of text: known secrets whole or cut, key shapes at any length, redaction before cutting."""

from __future__ import annotations

import pytest

from bot.core.errors import ModelStreamFailed
from bot.logs import SecretRedactor
from bot.model.sse import DETAIL_LIMIT, StreamErrorEvent, StreamState, chunk_deltas, error_detail, parse_chunk
from bot.redaction import MIN_SECRET_PREFIX, REDACTED, Redactor, redact_url, url_passwords
from bot.settings import load_settings

SECRET = "glm-3f9c2e7b51d4a0c8"  # no known shape: only the known-secret rule can catch it
ZAI_KEY = "0123456789abcdef0123456789abcdef.AbCdEfGhIjKlMnOp"


@pytest.mark.parametrize("kept", range(MIN_SECRET_PREFIX, len(SECRET) + 1))
def test_known_secret_cut_anywhere_from_six_characters_is_redacted(kept: int) -> None:
    """The secret's first 6..all characters at the end of a string (where a cut leaves them) go."""
    assert Redactor([SECRET])(f"Invalid key {SECRET[:kept]}") == f"Invalid key {REDACTED}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A cut piece followed by what a repr or a log format puts after it.
        (f"ModelRejected('bad key {SECRET[:9]}')", f"ModelRejected('bad key {REDACTED}')"),
        (f"key={SECRET[:7]}…", f"key={REDACTED}…"),
        # Whole, twice, inside other text.
        (f"a{SECRET}b {SECRET}", f"a{REDACTED}b {REDACTED}"),
        # A piece that diverges after six characters: the six go, the rest stays.
        (f"{SECRET[:6]}XYZ", f"{REDACTED}XYZ"),
        # Five characters say little about a key and turn up by chance: kept.
        (f"Invalid key {SECRET[:5]}", f"Invalid key {SECRET[:5]}"),
    ],
)
def test_known_secret_pieces(text: str, expected: str) -> None:
    assert Redactor([SECRET])(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("token xoxb-1111-2222-abcdef", f"token {REDACTED}"),
        ("token xoxb-", f"token {REDACTED}"),
        ("token xoxb-12", f"token {REDACTED}"),
        ("user xoxp-9-8-7", f"user {REDACTED}"),
        ("rotating xoxe.xoxp-1-Mi0yLTE", f"rotating {REDACTED}"),
        ("app xapp-1-A111-222-abc", f"app {REDACTED}"),
        ("app xapp-1", f"app {REDACTED}"),
        ("openai sk-proj-AbC123", f"openai {REDACTED}"),
        ("openrouter sk-or-v1-0123456789abcdef", f"openrouter {REDACTED}"),
        ("cut sk-or-v", f"cut {REDACTED}"),
        ("cut sk-a", f"cut {REDACTED}"),
        (f"zai {ZAI_KEY}!", f"zai {REDACTED}!"),
        (f"cut zai {ZAI_KEY[:35]}", f"cut zai {REDACTED}"),
        ("Authorization: Bearer abcdefghijkl", f"Authorization: Bearer {REDACTED}"),
        ("authorization: bearer 3fa9", f"authorization: bearer {REDACTED}"),
        ('{"Authorization": "Bearer x1"}', f'{{"Authorization": "Bearer {REDACTED}"}}'),
    ],
)
def test_key_shapes_at_any_length(text: str, expected: str) -> None:
    """Keys nobody told us about are caught by shape, also when cut short."""
    assert Redactor()(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Invalid bearer token",
        "risk-free task-force desk-top",
        "xoxbox and sk without a dash",
        "sha 0123456789abcdef0123456789abcdef and more",  # 32 hex without the dot: a hash, not a key
        "1800000000.000100",
    ],
)
def test_ordinary_text_stays(text: str) -> None:
    assert Redactor([SECRET])(text) == text


def test_cut_redacts_first() -> None:
    """A secret straddling the limit is replaced before the cut, so no piece of it survives."""
    text = "A" * 190 + SECRET + " and more"
    assert text[:200] == "A" * 190 + SECRET[:10]  # what cutting first would have shown
    assert Redactor([SECRET]).cut(text, 200) == "A" * 190 + REDACTED


def test_short_secrets_are_not_searched() -> None:
    """A 3-character "secret" would blank every occurrence of those letters: ignored."""
    assert Redactor(["abc"])("abcdef abc") == "abcdef abc"


def test_log_processor_redacts_cut_secrets_everywhere() -> None:
    """The structlog processor applies the same rules to every string in the event, nested too."""
    redactor = SecretRedactor([SECRET])
    event = {
        "event": f"model said {SECRET[:8]}",
        "detail": {"body": [f"echo {SECRET}", "xoxb-12"]},
        "error": ValueError(f"bad {SECRET[:12]}"),
        "count": 3,
    }
    assert redactor(None, "info", event) == {
        "event": f"model said {REDACTED}",
        "detail": {"body": [f"echo {REDACTED}", REDACTED]},
        "error": f"ValueError('bad {REDACTED}')",
        "count": 3,
    }


def test_error_detail_redacts_then_cuts() -> None:
    redact = Redactor([SECRET])
    assert error_detail("x" * 195 + SECRET, redact) == "x" * 195 + REDACTED[:5]
    assert len(error_detail("y" * 5000, redact)) == DETAIL_LIMIT


def test_stream_error_event_never_shows_a_piece_of_the_key() -> None:
    """An error event echoing the key across the 200-character cut: the detail ends in [REDACTED]."""
    message = "E" * 190 + SECRET + " was rejected"
    data = '{"error": {"message": "' + message + '", "code": 401}}'
    with pytest.raises(StreamErrorEvent) as caught:
        parse_chunk(data, Redactor([SECRET]))
    assert str(caught.value) == "model stream reported an error: " + "E" * 190 + REDACTED


def test_unknown_finish_reason_is_redacted_too() -> None:
    chunk: dict[str, object] = {"choices": [{"delta": {}, "finish_reason": f"denied {SECRET}"}]}
    with pytest.raises(ModelStreamFailed) as caught:
        chunk_deltas(chunk, StreamState(), Redactor([SECRET]))
    assert str(caught.value) == f"model stream finished with 'denied {REDACTED}'"


@pytest.mark.parametrize(
    ("url", "shown", "passwords"),
    [
        ("redis://nobody:wrong@127.0.0.1:1/0", "redis://nobody:***@127.0.0.1:1/0", ["wrong"]),
        ("redis://:p#a/s?s@h:6379/0", "redis://:***@h:6379/0", ["p#a/s?s"]),
        (
            "unix:///run/redis.sock?db=0&password=hunter2xyz",
            "unix:///run/redis.sock?db=0&password=***",
            ["hunter2xyz"],
        ),
        ("rediss://user@h/0", "rediss://user@h/0", []),
        (
            "redis+sentinel://:pw1@h1:26379,h2:26379/mymaster",
            "redis+sentinel://:***@h1:26379,h2:26379/mymaster",
            ["pw1"],
        ),
    ],
)
def test_url_passwords_are_hidden_in_every_form(url: str, shown: str, passwords: list[str]) -> None:
    assert redact_url(url) == shown
    assert redact_url(f"cannot reach {url} (refused) at x@y") == f"cannot reach {shown} (refused) at x@y"
    assert url_passwords(url) == passwords


def test_settings_hand_redis_passwords_to_the_log_redactor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "unix:///run/redis.sock?password=hunter2xyz")
    monkeypatch.setenv("REDIS_CACHE_URL", "redis://cache:s3cret-cache@127.0.0.1:1/0")
    settings = load_settings()
    assert {"hunter2xyz", "s3cret-cache"} <= set(settings.secrets())
    view = settings.public_view()
    assert view["REDIS_URL"] == "unix:///run/redis.sock?password=***"
    assert view["REDIS_CACHE_URL"] == "redis://cache:***@127.0.0.1:1/0"


def test_the_config_view_shows_prompts_only_by_length(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYSTEM_PROMPT", "You are Acme's internal helper.")
    view = load_settings().public_view()
    assert view["SYSTEM_PROMPT"] == "set (31 characters)"
    assert "Acme" not in str(view)
