"""The buttons under a reply: Stop while it streams, 👍/👎 feedback once it is finished.

Each button's ``value`` names the reply (``ReplyRef``: team, channel, thread, the user message it
answers and who asked), so the listener that gets the press (``handlers.actions``, on any replica) knows
which reply it is about and who may stop it. Slack signs the press and sends back the value the bot
wrote, so it can be trusted like the rest of the payload.

``stop_block`` is the hook for every streaming path: the edit-mode streamer adds it to the placeholder
and to each interim edit (never to the final one); native streaming can send it as a blocks chunk.
Pure functions: no I/O.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from bot.core.domain import IncomingMessage
from handlers.reply.render import Block

__all__ = [
    "FEEDBACK_ACTIONS",
    "STOP_ACTION",
    "ReplyButtons",
    "ReplyRef",
    "feedback_block",
    "stop_block",
]

STOP_ACTION = "glmbot_stop"
FEEDBACK_ACTIONS = {"glmbot_feedback_good": "good", "glmbot_feedback_bad": "bad"}
"""Feedback action ids and the value each records (``glmbot_feedback_total{value}``)."""


@dataclass(frozen=True, slots=True)
class ReplyRef:
    """Which reply a button belongs to: the user message it answers, and who asked."""

    team: str
    channel: str
    thread_ts: str
    message_ts: str
    user: str

    @property
    def key(self) -> str:
        """``<team>:<channel>:<ts>`` of the user message: the reply's work key (``bot.work.queue``)."""
        return f"{self.team}:{self.channel}:{self.message_ts}"

    def value(self) -> str:
        """The button value: compact JSON (Slack allows 2,000 characters)."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @staticmethod
    def parse(value: object) -> ReplyRef | None:
        """The reply named by a button value; None when it is not one of ours."""
        try:
            data = json.loads(str(value))
            return ReplyRef(**{name: str(data[name]) for name in ReplyRef.__dataclass_fields__})
        except (ValueError, KeyError, TypeError):
            return None

    @staticmethod
    def of(message: IncomingMessage) -> ReplyRef:
        """The reference of the reply to ``message``."""
        thread = message.thread
        return ReplyRef(thread.team, thread.channel, thread.thread_ts, message.message_ts, message.user_id)


def stop_block(reply: ReplyRef) -> Block:
    """An ``actions`` block with the Stop button of a streaming reply."""
    button = _button(STOP_ACTION, "Stop", reply, "Stop this answer")
    return {"type": "actions", "elements": [button]}


def feedback_block(reply: ReplyRef) -> Block:
    """An ``actions`` block with the 👍 and 👎 buttons of a finished answer."""
    good, bad = FEEDBACK_ACTIONS
    buttons = [_button(good, "👍", reply, "Good answer"), _button(bad, "👎", reply, "Bad answer")]
    return {"type": "actions", "elements": buttons}


@dataclass(frozen=True, slots=True)
class ReplyButtons:
    """The two button blocks of one reply, built once."""

    stop: Block
    feedback: Block

    @staticmethod
    def of(message: IncomingMessage) -> ReplyButtons:
        reply = ReplyRef.of(message)
        return ReplyButtons(stop=stop_block(reply), feedback=feedback_block(reply))


def _button(action_id: str, label: str, reply: ReplyRef, description: str) -> Block:
    return {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": label, "emoji": True},
        "value": reply.value(),
        "accessibility_label": description,
    }
