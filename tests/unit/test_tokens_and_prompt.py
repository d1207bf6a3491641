"""Token estimates and prompt trimming."""

from __future__ import annotations

import pytest

from bot.core.domain import ChatMessage
from bot.core.errors import PromptTooLong
from bot.core.prompt import build_prompt
from bot.core.tokens import (
    MESSAGE_OVERHEAD_TOKENS,
    REQUEST_OVERHEAD_TOKENS,
    estimate_message_tokens,
    estimate_text_tokens,
)


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("abc", 1),
        ("abcd", 2),
        ("Hello, world!", 5),
        ("你好世界", 4),
        ("こんにちは", 5),
        ("안녕하세요", 5),
        ("abc你好", 3),
    ],
)
def test_text_estimate(text: str, tokens: int) -> None:
    """Latin text counts 3 characters per token (rounded up), CJK one token per character."""
    assert estimate_text_tokens(text) == tokens


def test_estimate_never_below_real_ratio_for_english() -> None:
    """The estimate over-counts typical English (about 4 characters per real token)."""
    text = "The quick brown fox jumps over the lazy dog. " * 100
    assert estimate_text_tokens(text) >= len(text) / 4


def _msg(role: str, size: int) -> ChatMessage:
    return ChatMessage(role, "x" * (size * 3))  # type: ignore[arg-type]


def test_everything_fits() -> None:
    """With room to spare, the prompt is system + all history + newest, in order."""
    history = [_msg("user", 10), _msg("assistant", 10)]
    prompt = build_prompt("sys", history, ChatMessage("user", "hi"), budget_tokens=10_000)
    assert [m.role for m in prompt.messages] == ["system", "user", "assistant", "user"]
    assert prompt.dropped_messages == 0
    assert prompt.estimated_tokens <= 10_000


def test_oldest_dropped_first() -> None:
    """When history does not fit, the oldest messages go and the newest stay."""
    history = [ChatMessage("user" if i % 2 == 0 else "assistant", f"{i} " + "x" * 300) for i in range(10)]
    newest = ChatMessage("user", "latest")
    prompt = build_prompt("sys", history, newest, budget_tokens=450)
    kept = prompt.messages[1:-1]
    assert prompt.messages[0].role == "system"
    assert prompt.messages[-1] == newest
    assert kept == tuple(history[len(history) - len(kept) :])
    assert prompt.dropped_messages == len(history) - len(kept) > 0
    assert prompt.estimated_tokens <= 450


def test_never_starts_with_assistant() -> None:
    """An orphaned assistant answer at the start of the kept history is dropped too."""
    history = [_msg("user", 100), _msg("assistant", 10), _msg("user", 10), _msg("assistant", 10)]
    fixed = REQUEST_OVERHEAD_TOKENS + estimate_message_tokens(ChatMessage("system", "s")) + 5
    budget = fixed + 3 * (10 + MESSAGE_OVERHEAD_TOKENS)
    prompt = build_prompt("s", history, ChatMessage("user", "hey"), budget_tokens=budget)
    assert prompt.messages[1].role == "user"


def test_newest_alone_too_long() -> None:
    """A newest message that cannot fit with the system prompt is refused, not cut."""
    with pytest.raises(PromptTooLong) as caught:
        build_prompt("sys", [], ChatMessage("user", "x" * 3000), budget_tokens=500)
    assert caught.value.needed_tokens > caught.value.budget_tokens == 500


def test_system_and_newest_always_kept() -> None:
    """Even with no room for history, system prompt and newest message are sent."""
    prompt = build_prompt("sys", [_msg("user", 1000)], ChatMessage("user", "q"), budget_tokens=60)
    assert [m.role for m in prompt.messages] == ["system", "user"]
    assert prompt.dropped_messages == 1


# Script, text, our estimate. No GLM tokenizer can run offline here, so the table keeps the two bounds
# the estimate must sit between: at least the undercounts seen before (a token per emoji code point,
# about a token per 2-3 letters of other scripts) and at most the UTF-8 length, the hard ceiling of a
# byte-level BPE (no token is shorter than a byte).
SCRIPTS: list[tuple[str, str, int]] = [
    ("latin", "The quick brown fox jumps over the lazy dog.", 15),
    ("code", "def f(x):\n    return {k: v for k, v in x.items() if v}\n", 19),
    ("cjk", "你好，世界！今天天气很好。", 13),
    ("japanese", "こんにちは、世界。", 9),
    ("cyrillic", "Привет, как дела? Всё хорошо.", 25),
    ("thai", "สวัสดีครับ ยินดีที่ได้รู้จัก", 28),
    ("arabic", "مرحبا بالعالم", 13),
    ("emoji", "🙂" * 300, 900),
    ("emoji zwj", "👨‍👩‍👧‍👦 👍🏽 🇯🇵", 28),
]


@pytest.mark.parametrize(("script", "text", "estimate"), SCRIPTS, ids=[row[0] for row in SCRIPTS])
def test_estimates_per_script(script: str, text: str, estimate: int) -> None:
    """Every script is estimated at or above its real count, and never above the UTF-8 ceiling."""
    assert estimate_text_tokens(text) == estimate
    assert estimate <= len(text.encode())
    code_points = len(text)
    ascii_chars = sum(char.isascii() for char in text)
    # The floor: a third of the ASCII characters, and at least one token per other code point.
    assert estimate >= ascii_chars / 3 + (code_points - ascii_chars)
