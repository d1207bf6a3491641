"""Images in prompts: counted exactly, re-sent newest-first while they fit, otherwise a note."""

from __future__ import annotations

import pytest

from bot.core.domain import Attachment, ChatMessage, ImageRef
from bot.core.errors import PromptTooLong
from bot.core.prompt import build_prompt, image_note, without_images
from bot.core.tokens import estimate_message_tokens
from bot.images.pipeline import select_images


def ref(file_id: str, tokens: int = 1000) -> ImageRef:
    return ImageRef(file_id, f"{file_id}.png", "image/png", 1260, 840, tokens, 90_000)


def turn(question: str, *images: ImageRef) -> list[ChatMessage]:
    return [ChatMessage("user", question, images), ChatMessage("assistant", "answer " + question)]


def test_image_tokens_count_toward_the_message() -> None:
    """A message's estimate includes each image's exact token count."""
    plain = estimate_message_tokens(ChatMessage("user", "hi"))
    assert estimate_message_tokens(ChatMessage("user", "hi", (ref("a", 1352),))) == plain + 1352


def test_without_images_leaves_notes() -> None:
    """Dropped images become text notes naming them; kept ones stay."""
    message = ChatMessage("user", "look", (ref("a"), ref("b")))
    noted = without_images(message, [ref("a")])
    assert noted.images == (ref("b"),)
    assert noted.text == f"look\n{image_note(ref('a'))}"
    assert without_images(ChatMessage("user", "", (ref("a"),))).text == image_note(ref("a"))


def test_earlier_images_resent_when_they_fit() -> None:
    """With room, earlier images go to the model again."""
    history = turn("first", ref("a")) + turn("second", ref("b"))
    prompt = build_prompt("sys", history, ChatMessage("user", "and now?"), budget_tokens=10_000)
    assert [m.images for m in prompt.messages if m.role == "user"][:2] == [(ref("a"),), (ref("b"),)]
    assert prompt.estimated_tokens <= 10_000


def test_newest_images_win_when_budget_is_tight() -> None:
    """When only one earlier image fits, the newest is re-sent and the older becomes a note."""
    history = turn("first", ref("a")) + turn("second", ref("b"))
    prompt = build_prompt("sys", history, ChatMessage("user", "which?"), budget_tokens=1500)
    first, _, second, _ = prompt.messages[1:5]
    assert first.images == ()
    assert image_note(ref("a")) in first.text
    assert second.images == (ref("b"),)
    assert prompt.estimated_tokens <= 1500


def test_newest_message_images_always_kept_or_refused() -> None:
    """The newest message's images are never dropped: too big means PromptTooLong."""
    newest = ChatMessage("user", "what is this?", (ref("n", 5000),))
    assert build_prompt("sys", [], newest, budget_tokens=6000).messages[-1] == newest
    with pytest.raises(PromptTooLong) as refused:
        build_prompt("sys", [], newest, budget_tokens=4000)
    assert refused.value.needed_tokens > 5000


def attachment(name: str, mimetype: str) -> Attachment:
    return Attachment(
        file_id=name, name=name, mimetype=mimetype, size=10, location="https://files.slack.com/x"
    )


def test_select_images_filters_and_limits() -> None:
    """Known non-images are left out with a reason; images past the limit are named as skipped."""
    files = [
        attachment("doc.pdf", "application/pdf"),
        attachment("a.png", "image/png"),
        attachment("b.jpg", "image/jpeg"),
        attachment("partial", ""),
        attachment("c.webp", "image/webp"),
    ]
    chosen, problems = select_images(files, limit=3)
    assert [a.name for a in chosen] == ["a.png", "b.jpg", "partial"]
    assert problems[0].startswith("I couldn't use doc.pdf: it is not an image")
    assert problems[1] == "I look at up to 3 images per message, so I skipped: c.webp."
