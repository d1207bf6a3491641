"""Button presses on replies (``block_actions``): Stop while an answer streams, 👍/👎 once it is finished.

Each listener acks at once, then acts. The button's value names the reply (``ReplyRef``).

* **Stop** (``glmbot_stop``): only the person who asked, or a glmbot admin (``handlers.admins``), may stop
  a reply; anyone else is told so, ephemerally. The press may reach any replica: it is recorded in Redis
  (``bot.work.stops``), and the replica running the reply sees it within a third of a second and ends the
  answer with what streamed so far. A second press changes nothing; a press after the reply finished
  records nothing and says so, ephemerally.
* **Feedback** (``glmbot_feedback_good`` / ``glmbot_feedback_bad``): counted in
  ``glmbot_feedback_total{value}`` and logged with the reply's ids (never its text), and thanked
  ephemerally (the answer itself is not edited: no edit budget spent).
"""

from __future__ import annotations

from typing import Any

import structlog
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.errors import DeliveryFailed, StoreUnavailable
from bot.core.messages import user_message
from bot.work.stops import Stopper
from handlers.errors import slack_errors
from handlers.reply.buttons import FEEDBACK_ACTIONS, ReplyRef
from handlers.services import Services

log = structlog.get_logger(__name__)

REFUSED = "Only the person who asked, or a glmbot admin, can stop this answer."
FINISHED = "That answer has already finished."
THANKS = "Thanks for the feedback!"


async def on_stop(
    services: Services,
    ack: AsyncAck,
    respond: AsyncRespond,
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
) -> None:
    """Stop a streaming reply, if the presser may: record the stop for the replica that runs it."""
    await ack()
    reply = ReplyRef.parse(action.get("value"))
    presser = _presser(body)
    if reply is None or not presser:
        log.warning("stop_press_unreadable")
        return
    ids = {"team": reply.team, "channel": reply.channel, "message_ts": reply.message_ts, "user": presser}
    if presser != reply.user and not await services.admins.is_admin(client, presser):
        log.info("reply_stop_refused", **ids)
        await _tell(respond, REFUSED)
        return
    names = await services.delivery.people.names(client, [presser])
    stopper = Stopper(presser, names.get(presser) or str((body.get("user") or {}).get("name") or ""))
    try:
        outcome = await services.delivery.stops.request(reply.team, reply.key, stopper)
    except StoreUnavailable as exc:
        log.error("reply_stop_not_recorded", detail=str(exc), **ids)
        await _tell(respond, user_message(StoreUnavailable()))
        return
    log.info("reply_stop_requested", outcome=outcome, asker=reply.user, **ids)
    if outcome == "finished":
        await _tell(respond, FINISHED)


async def on_feedback(
    services: Services, ack: AsyncAck, respond: AsyncRespond, body: dict[str, Any], action: dict[str, Any]
) -> None:
    """Count and log a 👍/👎 on a finished answer (its ids only), and thank the presser."""
    await ack()
    value = FEEDBACK_ACTIONS.get(str(action.get("action_id") or ""))
    reply = ReplyRef.parse(action.get("value"))
    if value is None or reply is None:
        log.warning("feedback_press_unreadable")
        return
    services.delivery.metrics.feedback.labels(value).inc()
    log.info(
        "reply_feedback",
        value=value,
        team=reply.team,
        channel=reply.channel,
        thread_ts=reply.thread_ts,
        message_ts=str((body.get("container") or {}).get("message_ts") or ""),
        reply_to=reply.message_ts,
        user=_presser(body),
    )
    await _tell(respond, THANKS)


def _presser(body: dict[str, Any]) -> str:
    return str((body.get("user") or {}).get("id") or "")


async def _tell(respond: AsyncRespond, text: str) -> None:
    """Answer the presser only (an ephemeral message through the press's ``response_url``)."""
    try:
        with slack_errors("response_url"):
            await respond(text=text, response_type="ephemeral", replace_original=False)
    except (DeliveryFailed, ValueError) as failed:  # ValueError: Slack sent no response_url
        log.warning("action_answer_failed", detail=str(failed))
