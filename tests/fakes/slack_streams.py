"""Native streaming for the fake Slack: ``chat.startStream``, ``chat.appendStream``, ``chat.stopStream``.

A stream is a message (in ``fake.messages``) whose ``text`` is the Markdown streamed so far: each append
adds to it (and to its ``history``), ``chat.stopStream`` adds its last Markdown and finalises it. As Slack
documents (https://docs.slack.dev/reference/methods/chat.startStream, chat.appendStream, chat.stopStream):
``channel`` and ``thread_ts`` are required, and in channels (ids not starting with ``D``) also
``recipient_user_id`` and ``recipient_team_id``; ``markdown_text`` holds at most 12,000 characters a
call. Appending to or stopping a stream that was stopped (or expired, ``expire``) answers
``message_not_in_streaming_state``; a ts that is no stream answers ``message_not_found``.

``refusal``: when set, every ``chat.startStream`` answers ``{"ok": false, "error": refusal}`` (a
workspace where streaming is not available); ``fake.error_next("chat.startStream", ...)`` refuses once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.fakes.slack_api import FakeSlack

__all__ = ["MARKDOWN_TEXT_LIMIT", "SlackStreams", "StreamState"]

MARKDOWN_TEXT_LIMIT = 12_000


@dataclass
class StreamState:
    """One stream: who it is for, what each call added, and whether it was stopped."""

    ts: str
    channel: str
    recipient_user_id: str | None
    recipient_team_id: str | None
    appends: list[str] = field(default_factory=list)  # markdown_text of start, appends and stop, in order
    stopped: bool = False
    blocks: list[dict[str, Any]] = field(default_factory=list)  # chat.stopStream's blocks, under the text
    start_blocks: list[dict[str, Any]] = field(default_factory=list)  # blocks chunks given at the start


@dataclass
class SlackStreams:
    """The streams the bot started, by ts."""

    streams: dict[str, StreamState] = field(default_factory=dict)
    refusal: str | None = None

    def expire(self, ts: str) -> None:
        """Slack ended the stream on its side: later appends and stops are refused."""
        self.streams[ts].stopped = True

    def start(self, fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
        if self.refusal is not None:
            return {"ok": False, "error": self.refusal}
        channel, thread_ts = str(params.get("channel") or ""), str(params.get("thread_ts") or "")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        user, team = params.get("recipient_user_id"), params.get("recipient_team_id")
        if not thread_ts or (not channel.startswith("D") and not (user and team)):
            return {"ok": False, "error": "invalid_arguments"}
        text = str(params.get("markdown_text") or "")
        if len(text) > MARKDOWN_TEXT_LIMIT:
            return {"ok": False, "error": "msg_too_long"}
        chunks = list(params.get("chunks") or ())
        if any(not isinstance(c, dict) or c.get("type") not in ("markdown_text", "blocks") for c in chunks):
            return {"ok": False, "error": "invalid_chunks"}
        from tests.fakes.slack_api import FakeMessage  # slack_api imports this module

        ts, now = fake._next_ts(), time.monotonic()
        fake.messages[ts] = FakeMessage(
            ts=ts,
            channel=channel,
            thread_ts=thread_ts,
            text=text,
            history=[text],
            posted_at=now,
            updated_at=now,
        )
        state = StreamState(ts, channel, str(user) if user else None, str(team) if team else None)
        state.appends.append(text)
        for chunk in chunks:
            state.start_blocks.extend(chunk.get("blocks") or [])
        self.streams[ts] = state
        return {"ok": True, "channel": channel, "ts": ts}

    def append(self, fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
        text = str(params.get("markdown_text") or "")
        if not text:
            return {"ok": False, "error": "invalid_arguments"}
        return self._add(fake, params, text, stop=False)

    def stop(self, fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
        answer = self._add(fake, params, str(params.get("markdown_text") or ""), stop=True)
        if answer["ok"]:
            self.streams[answer["ts"]].blocks = list(params.get("blocks") or [])
        return answer

    def _add(self, fake: FakeSlack, params: dict[str, Any], text: str, stop: bool) -> dict[str, Any]:
        ts = str(params.get("ts") or "")
        state = self.streams.get(ts)
        message = fake.messages.get(ts)
        if state is None or message is None or message.deleted or state.channel != params.get("channel"):
            return {"ok": False, "error": "message_not_found"}
        if state.stopped:
            return {"ok": False, "error": "message_not_in_streaming_state"}
        if len(text) > MARKDOWN_TEXT_LIMIT:
            return {"ok": False, "error": "msg_too_long"}
        state.appends.append(text)
        state.stopped = stop
        message.text += text
        message.history.append(message.text)
        message.updated_at = time.monotonic()
        return {"ok": True, "channel": state.channel, "ts": ts}
