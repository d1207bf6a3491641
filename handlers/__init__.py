"""Slack Bolt listeners: parse the event, call one service method, done.

``register`` is the one routing table from Slack events to listeners.
"""

from __future__ import annotations

from typing import Any

import structlog
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from handlers.actions import on_feedback, on_stop
from handlers.assistant import PanelSetup, panel_assistant
from handlers.commands import QUOTA_COMMAND, on_quota_command
from handlers.mentions import on_app_mention
from handlers.messages import on_message
from handlers.reply.buttons import FEEDBACK_ACTIONS, STOP_ACTION
from handlers.services import Services

log = structlog.get_logger(__name__)


def register(app: AsyncApp, services: Services, panel: PanelSetup | None = None) -> None:
    """Attach every listener to ``app`` (and, with ``panel``, the assistant panel's)."""

    # Bolt injects listener arguments by parameter name, so each listener is a small closure.
    async def app_mention(event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext) -> None:
        await on_app_mention(services, event, body, context)

    async def message(event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext) -> None:
        await on_message(services, event, body, context)

    async def quota_command(
        ack: AsyncAck, respond: AsyncRespond, command: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await on_quota_command(services, ack, respond, command, client)

    async def stop_pressed(
        ack: AsyncAck,
        respond: AsyncRespond,
        body: dict[str, Any],
        action: dict[str, Any],
        client: AsyncWebClient,
    ) -> None:
        await on_stop(services, ack, respond, body, action, client)

    async def feedback_pressed(
        ack: AsyncAck, respond: AsyncRespond, body: dict[str, Any], action: dict[str, Any]
    ) -> None:
        await on_feedback(services, ack, respond, body, action)

    async def unexpected_error(error: Exception, body: dict[str, Any]) -> None:
        log.error(
            "listener_failed", error=type(error).__name__, exc_info=error, event_id=body.get("event_id")
        )

    app.event("app_mention")(app_mention)
    app.event("message")(message)
    app.command(QUOTA_COMMAND)(quota_command)
    app.action(STOP_ACTION)(stop_pressed)
    for feedback_action in FEEDBACK_ACTIONS:
        app.action(feedback_action)(feedback_pressed)
    app.error(unexpected_error)
    if panel is not None:
        # A middleware, so it runs before every listener: it takes threaded DM messages from people and
        # does not pass them on to ``message`` (see handlers/assistant.py).
        app.assistant(panel_assistant(services, panel))
