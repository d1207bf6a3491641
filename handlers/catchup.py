"""Thread catch-up: asked inside a thread it has no memory of, the bot first reads what was said there.

Before a message in a thread (not the thread's first message) is answered, and only when the thread has
no stored turns, the thread's earlier messages are read with ``conversations.replies``, converted like
any user text (``events.incoming_message`` and ``events.slack_to_text``: names looked up, forwarded
messages quoted, files through the image pipeline with a user's limits), fitted into the prompt's budget
(``bot.core.catchup``) and stored as the thread's first history, so the prompt holds them.

*Not seen* is decided from the store when the answer starts, not from ``engaged``: a mention engages its
thread when it is taken on, before this runs, so ``engaged`` cannot tell. Answers in one thread run one
at a time, so the first answer there finds the history empty and later ones find what it stored. Writes
are safe to run twice: the history is seeded once (turn id ``catchup:<thread_ts>``), only while empty;
the reply's journal records ``catchup`` so a resumed attempt does not read the thread again.

A failure (a Slack error, a rate limit, a missing ``*:history`` scope, the store) is logged and the
answer goes on without the earlier messages.

Platform facts, https://docs.slack.dev/reference/methods/conversations.replies: the parent first, then
replies oldest first; cursor pagination (``response_metadata.next_cursor``), ``limit`` under 1,000, at
most 200 recommended; ``latest`` bounds the time range. Scopes ``channels:history``, ``groups:history``,
``im:history``, ``mpim:history`` by conversation type. Tier 3 (50+ a minute), except that commercially
distributed non-Marketplace apps get 1 call a minute and at most 15 messages a call since 2025
(https://docs.slack.dev/changelog/2025/05/29/rate-limit-changes-for-non-marketplace-apps): a page refused
after the first ends the read with what was read, and THREAD_CATCHUP_MESSAGES=0 turns catch-up off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

import structlog
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.catchup import EarlierMessage, catchup_budget, catchup_turns, fit_newest
from bot.core.domain import Attachment, IncomingMessage, ThreadKey
from bot.core.errors import DeliveryFailed, GlmbotError
from bot.core.ports import AttachmentFetcher, History, Images, ReplyJournal
from bot.metrics import Metrics
from handlers.errors import SlackRateLimited, SlackRefused, slack_errors
from handlers.events import incoming_message, mentioned_users, slack_to_text
from handlers.identity import SlackIdentity
from handlers.people import PeopleDirectory
from handlers.reply.streamer import PLACEHOLDER, TYPING_CURSOR

log = structlog.get_logger(__name__)

METHOD = "conversations.replies"
# Slack recommends pages of at most 200 messages.
PAGE_LIMIT = 200
# A guard against a cursor that never ends; 50 messages take one page (four at 15 a page).
MAX_PAGES = 20
# The whole catch-up (pages, names, images) happens before the answer starts: bound the wait.
CATCHUP_SECONDS = 15.0
# Earlier messages whose images are prepared at once (each message's files are fetched in parallel).
PARALLEL_IMAGE_MESSAGES = 4
# Messages that carry someone's words: plain, with files, broadcast, other bots', /me. Joins, leaves and
# other channel events do not.
KEPT_SUBTYPES = frozenset({None, "file_share", "thread_broadcast", "bot_message", "me_message"})
# Journal fields that say this message needs no catch-up now: done by an earlier attempt, or the answer
# is already written.
DONE_FIELDS = ("catchup", "answer", "delivered")
SCOPES_HINT = "the app needs channels:history, groups:history, im:history and mpim:history"


@dataclass(frozen=True, slots=True)
class CatchUpConfig:
    """``max_messages``: THREAD_CATCHUP_MESSAGES (0: off); the rest sizes the budget like the prompt's."""

    max_messages: int
    context_tokens: int
    max_output_tokens: int
    system_prompt: str


@dataclass(frozen=True, slots=True)
class ReadMessage:
    """One earlier message as Slack has it: who wrote it, its text in Slack markup, its files."""

    own: bool
    author_id: str
    author_name: str
    text: str
    attachments: tuple[Attachment, ...] = ()


def catchup_turn_id(thread: ThreadKey) -> str:
    """The turn id the earlier messages are stored under (once per thread)."""
    return f"catchup:{thread.thread_ts}"


class ThreadCatchUp:
    """Reads a thread's earlier messages into its history before the first answer there."""

    def __init__(
        self,
        client: AsyncWebClient,
        identity: SlackIdentity,
        people: PeopleDirectory,
        history: History,
        images: Images,
        files: AttachmentFetcher,
        config: CatchUpConfig,
        metrics: Metrics,
    ) -> None:
        self._client = client
        self._identity = identity
        self._people = people
        self._history = history
        self._images = images
        self._files = files
        self._config = config
        self._metrics = metrics

    async def before_answer(self, message: IncomingMessage, journal: ReplyJournal) -> None:
        """Catch ``message``'s thread up when it has no memory yet (see the module docstring).

        Never raises (CancelledError aside): a failure is logged and the answer goes on without it.
        """
        if not self._due(message, journal):
            return
        try:
            async with asyncio.timeout(CATCHUP_SECONDS):
                tried = await self._catch_up(message)
        except SlackRefused as refused:
            hint = SCOPES_HINT if refused.error == "missing_scope" else None
            log.warning("thread_catchup_failed", error=refused.error, hint=hint)
            tried = True
        except (GlmbotError, TimeoutError) as exc:
            log.warning("thread_catchup_failed", error=type(exc).__name__, detail=str(exc))
            tried = True
        except Exception:
            # A bug here must not cost the user the answer.
            log.exception("thread_catchup_crashed")
            tried = True
        if tried:
            await journal.record(catchup="1")

    def _due(self, message: IncomingMessage, journal: ReplyJournal) -> bool:
        """On, inside a thread (not its first message), and not done by an earlier attempt."""
        return (
            self._config.max_messages > 0
            and message.message_ts != message.thread.thread_ts
            and not any(journal.recorded(field) for field in DONE_FIELDS)
        )

    async def _catch_up(self, message: IncomingMessage) -> bool:
        """Read and store the earlier messages; False when the thread had memory (nothing was read)."""
        thread = message.thread
        if await self._history.has_turns(thread):
            return False
        raw, unread_after = await self._fetch(thread, message.message_ts)
        read = await self._converted(thread, raw)
        config = self._config
        budget = catchup_budget(
            config.context_tokens, config.max_output_tokens, config.system_prompt, message.text
        )
        # A first fit on the words alone, so images of messages that cannot fit are never fetched.
        fitting = len(fit_newest([earlier for earlier, _ in read], budget))
        kept = read[len(read) - fitting :]
        earlier = await self._with_images(thread, kept)
        turns = catchup_turns(earlier, budget, left_out=len(kept) < len(read), unread_after=unread_after)
        written = await self._history.seed(thread, catchup_turn_id(thread), turns)
        log.info("thread_caught_up", read=len(raw), turns=len(turns), written=written)
        return True

    async def _fetch(self, thread: ThreadKey, before: str) -> tuple[list[dict[str, Any]], bool]:
        """Up to ``max_messages`` messages of ``thread`` written before ``before`` (a ts), oldest first,
        and whether later ones were left unread.

        Raises DeliveryFailed (SlackRefused, SlackRateLimited) when the first page fails; a later page
        that fails ends the read with what came before it.
        """
        wanted = self._config.max_messages
        found: list[dict[str, Any]] = []
        cursor = ""
        for _ in range(MAX_PAGES):
            try:
                page = await self._page(thread, before, cursor, min(PAGE_LIMIT, wanted - len(found)))
            except DeliveryFailed as failed:
                if not found:
                    raise
                log.warning("thread_catchup_read_stopped", read=len(found), detail=str(failed))
                return found, True
            messages = page.get("messages")
            found += [m for m in messages or () if isinstance(m, dict) and _written_before(m, before)]
            metadata = page.get("response_metadata")
            cursor = str(metadata.get("next_cursor") or "") if isinstance(metadata, dict) else ""
            if not cursor or len(found) >= wanted:
                return found[:wanted], bool(cursor) or len(found) > wanted
        return found, True

    async def _page(self, thread: ThreadKey, before: str, cursor: str, limit: int) -> dict[str, Any]:
        """One page of the thread's messages before ``before``; raises DeliveryFailed (counted)."""
        result = "ok"
        try:
            with slack_errors(METHOD):
                response = await self._client.conversations_replies(
                    channel=thread.channel,
                    ts=thread.thread_ts,
                    latest=before,
                    inclusive=False,
                    limit=limit,
                    cursor=cursor or None,
                )
        except SlackRateLimited:
            result = "rate_limited"
            raise
        except DeliveryFailed:
            result = "error"
            raise
        finally:
            self._metrics.slack_calls.labels(METHOD, result).inc()
        return response.data if isinstance(response.data, dict) else {}

    async def _converted(
        self, thread: ThreadKey, raw: Sequence[dict[str, Any]]
    ) -> list[tuple[EarlierMessage, tuple[Attachment, ...]]]:
        """The messages that carry words or files, as their authors wrote them (names looked up), each
        with its files. Raises DeliveryFailed when the bot's own identity cannot be had."""
        me = await self._identity.authorize(None)
        read = [
            found
            for message in raw
            if (found := read_message(message, thread, me.bot_user_id or "", me.bot_id or "")) is not None
        ]
        users = {r.author_id for r in read if r.author_id and not r.own}
        users |= {user for r in read for user in mentioned_users(r.text)}
        names = await self._people.names(self._client, users) if users else {}
        return [
            (
                EarlierMessage(
                    author=names.get(r.author_id) or r.author_name or r.author_id or "someone",
                    text=slack_to_text(r.text, names),
                    own=r.own,
                ),
                r.attachments,
            )
            for r in read
        ]

    async def _with_images(
        self, thread: ThreadKey, kept: Sequence[tuple[EarlierMessage, tuple[Attachment, ...]]]
    ) -> list[EarlierMessage]:
        """Each message with its images, prepared and cached for this thread like a user's own images
        (files that cannot be used are left out silently: they are not this message's question)."""
        parallel = asyncio.Semaphore(PARALLEL_IMAGE_MESSAGES)

        async def prepared(earlier: EarlierMessage, files: tuple[Attachment, ...]) -> EarlierMessage:
            if not files:
                return earlier
            async with parallel:
                collected = await self._images.collect(thread, files, self._files)
            return replace(earlier, images=collected.refs)

        return list(await asyncio.gather(*(prepared(earlier, files) for earlier, files in kept)))


def read_message(raw: dict[str, Any], thread: ThreadKey, bot_user_id: str, bot_id: str) -> ReadMessage | None:
    """One message of ``conversations.replies`` as read, or None when it carries nobody's words (a join,
    a hidden message, the bot's placeholder). The bot's own messages keep only their ``text``, the plain
    words of what it posted. Others are read like an incoming message: the bot's mention dropped,
    forwarded messages quoted, files (shared ones too) kept."""
    if raw.get("subtype") not in KEPT_SUBTYPES or raw.get("hidden") or not raw.get("ts"):
        return None
    user, bot = str(raw.get("user") or ""), str(raw.get("bot_id") or "")
    if (bot_user_id and user == bot_user_id) or (bot_id and bot == bot_id):
        # A placeholder, or a cursor, is left by a reply that never finished: not something it said.
        text = str(raw.get("text") or "").strip().removesuffix(TYPING_CURSOR.strip()).rstrip()
        if text == PLACEHOLDER:
            return None
        return ReadMessage(own=True, author_id="", author_name="", text=text)
    parsed = incoming_message({**raw, "channel": thread.channel}, thread.team, bot_user_id)
    profile = raw.get("bot_profile")
    bot_name = profile.get("name") if isinstance(profile, dict) else None
    return ReadMessage(
        own=False,
        author_id=user,
        author_name=str(bot_name or raw.get("username") or ""),
        text=parsed.text,
        attachments=parsed.attachments,
    )


def _written_before(message: dict[str, Any], before: str) -> bool:
    """True when ``message``'s ts is earlier than ``before`` (Slack's ts are decimal seconds)."""
    try:
        return Decimal(str(message.get("ts"))) < Decimal(before)
    except InvalidOperation:
        return False
