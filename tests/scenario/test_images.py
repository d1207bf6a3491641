"""Images attached to mentions, DMs and follow-ups: fetched safely, downscaled, remembered."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from PIL import Image

from handlers.reply.streamer import PLACEHOLDER, TYPING_CURSOR
from tests.fakes.model_api import FakeModel
from tests.fakes.slack_api import FakeSlack
from tests.rendered import slack_text
from tests.scenario.harness import BotUnderTest, bot_environment, mention, message, running_bot


def png(width: int, height: int, color: tuple[int, int, int] = (30, 120, 200)) -> bytes:
    """A PNG with a gradient, cheap to encode at any size."""
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    tinted = Image.merge(
        "RGB",
        [band.point(lambda v, c=c: (v + c) % 256) for band, c in zip(image.split(), color, strict=True)],
    )
    out = io.BytesIO()
    tinted.save(out, "PNG")
    return out.getvalue()


def image_parts(call_messages: list[dict[str, Any]]) -> list[Image.Image]:
    """Decode every image part of the last message of a model request."""
    content = call_messages[-1]["content"]
    assert isinstance(content, list), content
    images: list[Image.Image] = []
    for part in content:
        if part["type"] == "image_url":
            header, encoded = part["image_url"]["url"].split(",", 1)
            assert header.startswith("data:image/")
            images.append(Image.open(io.BytesIO(base64.b64decode(encoded))))
    return images


def text_part(call_messages: list[dict[str, Any]]) -> str:
    content = call_messages[-1]["content"]
    return content if isinstance(content, str) else next(p["text"] for p in content if p["type"] == "text")


def finished(slack: FakeSlack) -> list[str]:
    return [
        m.text
        for m in slack.messages.values()
        if m.text != PLACEHOLDER and not m.shown.endswith(TYPING_CURSOR)
    ]


async def test_mention_with_large_png_is_downscaled(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """A 3000x2000 PNG reaches the model as one downscaled image part plus the question."""
    file = fake_slack.add_file("F1", png(3000, 2000), name="chart.png")
    await bot.send_event(mention("what is in this chart?", files=[file]))
    await fake_slack.wait_for(lambda: len(finished(fake_slack)) == 1)
    [image] = image_parts(fake_model.requests[0].messages)
    assert max(image.size) <= 1280
    assert image.size[0] % 28 == 0
    assert image.size[1] % 28 == 0
    assert text_part(fake_model.requests[0].messages) == "what is in this chart?"
    assert len(fake_slack.download_auth_headers) == 1


async def test_image_only_dm_gets_default_request(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """A DM with only an image (file_share, empty text) asks the model to describe it."""
    file = fake_slack.add_file("F2", png(800, 600), name="photo.png")
    await bot.send_event(message("", channel="D0DM", channel_type="im", subtype="file_share", files=[file]))
    await fake_slack.wait_for(lambda: len(finished(fake_slack)) == 1)
    assert text_part(fake_model.requests[0].messages) == "Describe this image."
    assert len(image_parts(fake_model.requests[0].messages)) == 1


async def test_two_images(bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel) -> None:
    """Two attached images both reach the model, in order."""
    files = [
        fake_slack.add_file("F3", png(400, 300), name="a.png"),
        fake_slack.add_file("F4", png(300, 400), name="b.png"),
    ]
    await bot.send_event(mention("compare these", files=files))
    await fake_slack.wait_for(lambda: len(finished(fake_slack)) == 1)
    first, second = image_parts(fake_model.requests[0].messages)
    assert first.size[0] > first.size[1]
    assert second.size[0] < second.size[1]


async def test_follow_up_resends_cached_image_without_download(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """A later turn re-sends the earlier image from the cache; Slack is not asked for it again."""
    file = fake_slack.add_file("F5", png(640, 480), name="cat.png")
    first = mention("what animal?", files=[file])
    await bot.send_event(first)
    await fake_slack.wait_for(lambda: len(finished(fake_slack)) == 1)
    await bot.send_event(message("what colour is it?", thread_ts=first["ts"]))
    await fake_slack.wait_for(lambda: len(fake_model.requests) == 2)
    history = fake_model.requests[1].messages
    assert [m["role"] for m in history] == ["system", "user", "assistant", "user"]
    assert isinstance(history[1]["content"], list)
    assert any(part["type"] == "image_url" for part in history[1]["content"])
    assert len(fake_slack.download_auth_headers) == 1


@pytest.mark.parametrize(
    ("name", "mimetype", "data", "reason"),
    [
        ("report.pdf", "application/pdf", b"%PDF-1.7 fake", "it is not an image"),
        ("broken.png", "image/png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "damaged"),
        ("login.png", "image/png", b"<!DOCTYPE html><html>sign in</html>", "files:read"),
    ],
)
async def test_bad_file_is_named_and_text_still_answered(
    bot: BotUnderTest,
    fake_slack: FakeSlack,
    fake_model: FakeModel,
    name: str,
    mimetype: str,
    data: bytes,
    reason: str,
) -> None:
    """A file that cannot be used gets a line naming it and why; the question is still answered."""
    file = fake_slack.add_file("F6", data, name=name, mimetype=mimetype)
    if name == "login.png":
        fake_slack.file_content_types[next(iter(fake_slack.file_bytes))] = "text/html"
    await bot.send_event(mention("please answer anyway", files=[file]))
    await fake_slack.wait_for(lambda: len(finished(fake_slack)) == 1)
    [text] = finished(fake_slack)
    assert text.startswith(slack_text("Hello from the fake model."))
    assert f"I couldn't use {name}: " in text
    assert reason in text
    assert text_part(fake_model.requests[0].messages) == "please answer anyway"


async def test_foreign_host_and_missing_file(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """A URL off the allowed hosts is never fetched; a file Slack cannot find is named too."""
    foreign = {
        "id": "F7",
        "name": "evil.png",
        "mimetype": "image/png",
        "size": 10,
        "url_private": "http://127.0.0.2:9/evil.png",
    }
    missing = {"id": "F404", "name": "gone.png", "mimetype": "", "file_access": "check_file_info"}
    await bot.send_event(mention("look", files=[foreign, missing]))
    await fake_slack.wait_for(lambda: len(finished(fake_slack)) == 1)
    [text] = finished(fake_slack)
    assert "I couldn't use evil.png" in text
    assert "I couldn't use gone.png" in text
    assert fake_slack.calls_to("files.info")


async def test_only_unusable_files_make_no_model_call(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """A message with only a PDF gets the explanation and no model call."""
    file = fake_slack.add_file("F8", b"%PDF-1.4", name="doc.pdf", mimetype="application/pdf")
    await bot.send_event(message("", channel="D0DM", channel_type="im", subtype="file_share", files=[file]))
    await fake_slack.wait_for(lambda: len(finished(fake_slack)) == 1)
    assert "I couldn't use doc.pdf" in finished(fake_slack)[0]
    assert fake_model.requests == []
    assert fake_slack.download_auth_headers == []


async def test_too_large_and_too_many(
    monkeypatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """Files over IMAGE_MAX_DOWNLOAD_MB and images past IMAGE_MAX_PER_MESSAGE are named and skipped."""
    bot_environment(
        monkeypatch, fake_slack, fake_model, redis_url, IMAGE_MAX_DOWNLOAD_MB="1", IMAGE_MAX_PER_MESSAGE="2"
    )
    big = fake_slack.add_file("F9", b"\x89PNG" + b"\x00" * 1_500_000, name="huge.png")
    small = [fake_slack.add_file(f"F1{i}", png(100, 100), name=f"s{i}.png") for i in range(3)]
    async with running_bot() as bot:
        await bot.send_event(mention("many files", files=[big, *small]))
        await fake_slack.wait_for(lambda: len(finished(fake_slack)) == 1)
    [text] = finished(fake_slack)
    assert "I couldn't use huge.png: it is too large" in text
    assert "skipped: s1.png, s2.png" in text
    assert len(image_parts(fake_model.requests[0].messages)) == 1


async def test_partial_file_object_is_looked_up(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """A file sent as a partial object (file_access: check_file_info) is completed with files.info."""
    fake_slack.add_file("F20", png(500, 500), name="partial.png")
    partial = {"id": "F20", "file_access": "check_file_info"}
    await bot.send_event(
        message("what is it?", channel="D0DM", channel_type="im", subtype="file_share", files=[partial])
    )
    await fake_slack.wait_for(lambda: len(finished(fake_slack)) == 1)
    assert [c.body.get("file") for c in fake_slack.calls_to("files.info")] == ["F20"]
    assert len(image_parts(fake_model.requests[0].messages)) == 1
