"""Slack event JSON -> domain values. Pure: no Slack client, no I/O."""

from __future__ import annotations

import re
from typing import Any

from bot.core.domain import Attachment, IncomingMessage, ThreadKey

# Message subtypes that carry a person's new words; edits, deletions, joins and bot posts do not.
USER_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})


def is_person_message(event: dict[str, Any]) -> bool:
    """True for a new message written by a person (not a bot, not an edit or deletion)."""
    return event.get("subtype") in USER_SUBTYPES and not event.get("bot_id") and bool(event.get("user"))


def mentions(text: str, bot_user_id: str) -> bool:
    """True when ``text`` @mentions the bot."""
    return f"<@{bot_user_id}" in text


def strip_mention(text: str, bot_user_id: str) -> str:
    """The text without the bot's own ``<@U...>`` mention(s)."""
    return re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", "", text).strip()


def incoming_message(event: dict[str, Any], team_id: str, bot_user_id: str) -> IncomingMessage:
    """The message to answer; the answer goes in the message's thread (or starts one)."""
    ts = str(event["ts"])
    thread = ThreadKey(
        team=team_id, channel=str(event["channel"]), thread_ts=str(event.get("thread_ts") or ts)
    )
    return IncomingMessage(
        thread=thread,
        message_ts=ts,
        user_id=str(event.get("user", "")),
        text=strip_mention(str(event.get("text") or ""), bot_user_id),
        attachments=attachments(event),
    )


def attachments(event: dict[str, Any]) -> tuple[Attachment, ...]:
    """The files of a message; deleted ("tombstone") and external files are left out."""
    found = []
    for file in event.get("files") or ():
        if not isinstance(file, dict) or not file.get("id") or file.get("mode") in ("tombstone", "external"):
            continue
        found.append(
            Attachment(
                file_id=str(file["id"]),
                name=str(file.get("name") or file.get("title") or file["id"]),
                mimetype=str(file.get("mimetype") or ""),
                size=file["size"] if isinstance(file.get("size"), int) else None,
                location=str(file.get("url_private_download") or file.get("url_private") or ""),
                needs_lookup=file.get("file_access") == "check_file_info",
            )
        )
    return tuple(found)


def thread_of(event: dict[str, Any], team_id: str) -> ThreadKey | None:
    """The thread a channel reply belongs to, or None for a top-level message."""
    thread_ts = event.get("thread_ts")
    if not thread_ts or thread_ts == event.get("ts"):
        return None
    return ThreadKey(team=team_id, channel=str(event["channel"]), thread_ts=str(thread_ts))
