"""The assistant side panel ("Agents & AI Apps"), through Bolt's ``AsyncAssistant`` middleware.

* ``assistant_thread_started``: the thread is recorded (``PanelThreads``, with the channel the user
  views), then a short greeting and the suggested prompts (ASSISTANT_PROMPTS) go out, once per thread
  even when Slack retries the event.
* ``assistant_thread_context_changed``: the channel the user now views is recorded.
* a person's message in the panel: answered exactly like a DM (``handlers.messages.on_message``: taken on
  as work before the ack, once only, same memory, quotas and images); the thread is marked as a panel
  thread first when the event says so (``assistant_thread``), so the answer gets its status, title and
  the viewed channel (``handlers.assistant_replies``).

**One listener per message.** Bolt's middleware takes every threaded DM message from a person (its
``user_message`` matcher: an ``im`` message with ``thread_ts`` and no ``bot_id``) and does not pass it
on: the app's ``message`` listener never sees it, so such a message is taken on here and only here
(slack_bolt ``middleware/assistant/async_assistant.py``: a matching listener runs and the chain stops).
Plain DM threads come here too, and are answered as before: without a panel record nothing changes.

Platform facts: https://docs.slack.dev/reference/events/assistant_thread_started (payload
``assistant_thread: {user_id, context: {channel_id, team_id, enterprise_id}, channel_id, thread_ts}``),
https://docs.slack.dev/reference/events/assistant_thread_context_changed,
https://docs.slack.dev/reference/methods/assistant.threads.setSuggestedPrompts (up to four prompts;
``thread_ts`` only for the split-view ``assistant_view`` experience, which this app uses).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.middleware.assistant.async_assistant import AsyncAssistant
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.domain import ThreadKey
from bot.core.errors import DeliveryFailed, StoreUnavailable
from handlers.assistant_context import PanelThreads, context_of
from handlers.errors import slack_errors
from handlers.events import is_person_message, thread_of
from handlers.messages import on_message
from handlers.services import Services

log = structlog.get_logger(__name__)

GREETING = (
    "Hi, I'm glmbot. Ask me anything: I can read images you attach, explain code and help you write. "
    "Pick a suggestion below or type a question."
)
PROMPTS_TITLE = "Try asking:"


@dataclass(frozen=True, slots=True)
class PanelSetup:
    """What the panel's listeners need: its threads' store and the suggested prompts."""

    threads: PanelThreads
    prompts: tuple[str, ...]


def panel_assistant(services: Services, setup: PanelSetup) -> AsyncAssistant:
    """Bolt's assistant middleware with glmbot's three panel listeners (``app.assistant(...)``)."""
    # Bolt's own context store would be ``conversations.replies`` + ``chat.update``: ours is Redis.
    assistant = AsyncAssistant(thread_context_store=setup.threads)

    async def thread_started(
        event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
    ) -> None:
        await on_thread_started(setup, event, context, client)

    async def context_changed(event: dict[str, Any], context: AsyncBoltContext) -> None:
        await on_context_changed(setup.threads, event, context)

    async def user_message(event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext) -> None:
        await on_panel_message(services, setup.threads, event, body, context)

    assistant.thread_started(thread_started)
    assistant.thread_context_changed(context_changed)
    assistant.user_message(user_message)
    return assistant


def _panel_thread(event: dict[str, Any], team_id: str) -> tuple[ThreadKey, dict[str, str]] | None:
    """The panel thread an ``assistant_thread_*`` event is about, and the context it reports."""
    info = event.get("assistant_thread") or {}
    channel, thread_ts = info.get("channel_id"), info.get("thread_ts")
    if not channel or not thread_ts:
        return None
    thread = ThreadKey(team=team_id, channel=str(channel), thread_ts=str(thread_ts))
    return thread, context_of(info.get("context"))


async def on_thread_started(
    setup: PanelSetup, event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
) -> None:
    """Record the new panel thread; greet and suggest prompts the first time it is announced."""
    found = _panel_thread(event, context.team_id or "")
    if found is None:
        return
    thread, viewing = found
    try:
        first = await setup.threads.started(thread, viewing)
    except StoreUnavailable as exc:
        log.warning("assistant_thread_not_recorded", detail=str(exc))
        first = True  # greeting twice on a retry beats never greeting
    if not first:
        log.info("assistant_thread_already_greeted")
        return
    await _greet(client, thread, setup.prompts)


async def _greet(client: AsyncWebClient, thread: ThreadKey, prompts: tuple[str, ...]) -> None:
    """The greeting in the thread, then the suggested prompts (each prompt's title is its message)."""
    try:
        with slack_errors("chat.postMessage"):
            await client.chat_postMessage(channel=thread.channel, thread_ts=thread.thread_ts, text=GREETING)
        if prompts:
            with slack_errors("assistant.threads.setSuggestedPrompts"):
                await client.assistant_threads_setSuggestedPrompts(
                    channel_id=thread.channel,
                    thread_ts=thread.thread_ts,
                    title=PROMPTS_TITLE,
                    prompts=[{"title": prompt, "message": prompt} for prompt in prompts],
                )
    except DeliveryFailed as failed:
        log.warning("assistant_greeting_failed", detail=str(failed))


async def on_context_changed(threads: PanelThreads, event: dict[str, Any], context: AsyncBoltContext) -> None:
    """Record the channel the user now views next to the panel."""
    found = _panel_thread(event, context.team_id or "")
    if found is None:
        return
    try:
        await threads.remember(*found)
    except StoreUnavailable as exc:
        log.warning("assistant_context_not_recorded", detail=str(exc))


async def on_panel_message(
    services: Services,
    threads: PanelThreads,
    event: dict[str, Any],
    body: dict[str, Any],
    context: AsyncBoltContext,
) -> None:
    """A person's message in a DM thread (the panel's, or a plain one): taken on like any DM."""
    thread = thread_of(event, context.team_id or "")
    if thread is not None and event.get("assistant_thread") is not None and is_person_message(event):
        try:
            await threads.remember(thread)  # before the take-on: its answer looks the thread up
        except StoreUnavailable as exc:
            log.warning("assistant_thread_not_recorded", detail=str(exc))
    await on_message(services, event, body, context)
