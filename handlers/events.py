"""Slack event JSON -> domain values. Pure: no Slack client, no I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bot.core.domain import Attachment, IncomingMessage, ThreadKey
from handlers.rich_text import message_blocks_markup

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
    comment = strip_mention(str(event.get("text") or ""), bot_user_id)
    shared = [
        item for item in event.get("attachments") or () if isinstance(item, dict) and item.get("is_share")
    ]
    files = attachments(event) + tuple(file for item in shared for file in attachments(item))
    return IncomingMessage(
        thread=thread,
        message_ts=ts,
        user_id=str(event.get("user", "")),
        text=with_shared(comment, shared),
        attachments=files,
    )


def _is_share(item: object) -> bool:
    """A forwarded or shared message rides in ``attachments`` with ``is_share`` set."""
    return isinstance(item, dict) and bool(item.get("is_share"))


SHARED_WITHOUT_COMMENT = "(I'm sharing this message with you.)"


def with_shared(comment: str, shared: list[dict[str, Any]]) -> str:
    """The user's words followed by each forwarded or shared message as a quote naming its author.

    A share with no comment of its own is asked about as "the user shared this".
    """
    if not shared:
        return comment
    quotes = [_quote(item) for item in shared]
    return "\n\n".join([comment or SHARED_WITHOUT_COMMENT, *quotes])


def _quote(item: dict[str, Any]) -> str:
    """One shared message as a Markdown quote: who wrote it, then its text (Slack markup kept for later).

    The text is the attachment's ``text``, else the words of its ``message_blocks`` (a forward may carry
    them only there), else its ``fallback``.
    """
    author = item.get("author_name") or item.get("author_subname")
    if not author and item.get("author_id"):
        author = f"<@{item['author_id']}>"
    body = str(item.get("text") or message_blocks_markup(item.get("message_blocks")) or "").strip()
    body = body or str(item.get("fallback") or "").strip()
    lines = [f"Shared message from {author}:" if author else "Shared message:", *body.split("\n")]
    return "\n".join(f"> {line}" if line else ">" for line in lines)


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


# Slack's markup in message text (https://api.slack.com/reference/surfaces/formatting#retrieving-messages):
# <@U…|label>, <#C…|name>, <!here>, <!subteam^S…|@handle>, <!date^…|fallback>, <url|label>; and &, <, >
# escaped as &amp;, &lt;, &gt;.
_MARKUP = re.compile(r"<([^<>]*)>")
_USER_ID = re.compile(r"@([UW][A-Z0-9]+)")
_SPECIAL = {"here": "@here", "channel": "@channel", "everyone": "@everyone"}


def mentioned_users(text: str) -> set[str]:
    """The user ids mentioned in ``text`` (``<@U…>``), to look their names up."""
    return {match[1] for match in re.finditer(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>", text)}


def slack_to_text(text: str, names: Mapping[str, str]) -> str:
    """What the person wrote, from Slack's markup: ``@Name``, ``#channel``, ``label (url)``, ``@here``,
    dates as their fallback text, and ``&lt;`` ``&gt;`` ``&amp;`` unescaped last.

    ``names`` maps user ids to display names (an id without one stays an id: ``@U0123ABCD``).
    """
    return _unescape(_MARKUP.sub(lambda match: _plain(match[1], names), text))


def _plain(inner: str, names: Mapping[str, str]) -> str:
    """One ``<…>`` of Slack markup as the person wrote it (its label, when it has one)."""
    target, _, label = inner.partition("|")
    if user := _USER_ID.fullmatch(target):
        return f"@{names.get(user[1]) or label or user[1]}"
    if target.startswith("#"):
        return f"#{label or target[1:]}"
    if target.startswith("!"):
        command = target[1:].split("^", 1)[0]
        if command in _SPECIAL:
            return _SPECIAL[command]
        return label or (f"@{command}" if command else "")  # subteam handles and dates carry a label
    # Still escaped here: the whole text is unescaped once, at the end.
    return f"{label} ({target})" if label and label != target else target


def _unescape(text: str) -> str:
    """Slack's three escapes, ``&amp;`` last so ``&amp;lt;`` stays ``&lt;``."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
