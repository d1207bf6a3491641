"""The Slack side of ``glmbot check`` and of ``serve``'s start: the bot token, its scopes, the app token.

* The bot token: ``auth.test`` (https://docs.slack.dev/reference/methods/auth.test); its answer carries
  the token's scopes in the ``x-oauth-scopes`` header, compared with what each feature needs.
* The app-level token (Socket Mode): ``apps.connections.open``
  (https://docs.slack.dev/reference/methods/apps.connections.open) hands out a websocket URL, which is not
  used; a refused token is what makes slack_sdk retry forever, so it is caught here first.
"""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from bot.check.report import CheckLine, fail, ok, skip, warn
from bot.core.errors import DeliveryFailed
from bot.settings import Settings
from handlers.errors import SlackRefused, slack_errors
from handlers.identity import REFUSED_TOKEN_ERRORS

PROBE_SECONDS = 10
# Scopes every feature needs (deploy/slack-manifest.yaml explains each); a missing one fails the check.
REQUIRED_SCOPES = {
    "app_mentions:read": "mentions",
    "chat:write": "posting answers",
    "im:history": "DMs",
    "channels:history": "thread follow-ups in public channels",
    "groups:history": "thread follow-ups in private channels",
    "mpim:history": "thread follow-ups in group DMs",
    "files:read": "images",
    "users:read": "quota admins",
    "commands": "/glm-quota",
}
# The assistant panel's extras: without them the panel works less well, the rest not at all differently.
OPTIONAL_SCOPES = {
    "assistant:write": "the assistant panel's status, title and prompts",
    "channels:read": "naming the channel next to the assistant panel",
    "groups:read": "naming a private channel next to the assistant panel",
}


async def check_slack(settings: Settings, socket_mode: bool) -> list[CheckLine]:
    """Lines for the bot token and its scopes, then the app token (Socket Mode) or signing secret."""
    lines = await _bot_token(settings)
    if socket_mode:
        lines.append(await check_app_token(settings))
    elif settings.slack_signing_secret is not None:
        lines.append(
            ok("signing secret", "set (Slack proves it right or wrong with the first request it signs)")
        )
    return lines


async def _bot_token(settings: Settings) -> list[CheckLine]:
    if settings.slack_bot_token is None:
        return [skip("slack token", "SLACK_BOT_TOKEN is unset")]
    client = _client(settings, settings.slack_bot_token.get_secret_value())
    try:
        with slack_errors("auth.test"):
            answer = await client.auth_test()
    except SlackRefused as refused:
        return [_refused("slack token", "SLACK_BOT_TOKEN", refused, _BOT_TOKEN_FIX)]
    except DeliveryFailed as failed:
        return [_unreachable("slack token", settings, failed)]
    who = f"{answer.get('user')} ({answer.get('user_id')}) in {answer.get('team')} ({answer.get('team_id')})"
    return [ok("slack token", who), *_scope_lines(answer.headers.get("x-oauth-scopes"))]


_BOT_TOKEN_FIX = "copy the Bot User OAuth Token (xoxb-…) from OAuth & Permissions into SLACK_BOT_TOKEN"


def _scope_lines(header: str | None) -> list[CheckLine]:
    if header is None:
        return [warn("slack scopes", "Slack did not list the token's scopes", "compare with the manifest")]
    granted = {scope.strip() for scope in header.split(",")}
    missing = [scope for scope in REQUIRED_SCOPES if scope not in granted]
    optional = [scope for scope in OPTIONAL_SCOPES if scope not in granted]
    lines = []
    if missing:
        needs = ", ".join(f"{scope} ({REQUIRED_SCOPES[scope]})" for scope in missing)
        # The rest of the bot works without it: serve starts and logs this line.
        lines.append(fail("slack scopes", f"missing {needs}", _manifest_fix(missing), blocks_start=False))
    if optional:
        needs = ", ".join(f"{scope} ({OPTIONAL_SCOPES[scope]})" for scope in optional)
        lines.append(warn("slack scopes", f"missing {needs}", _manifest_fix(optional)))
    return lines or [
        ok("slack scopes", f"all {len(REQUIRED_SCOPES) + len(OPTIONAL_SCOPES)} the features use")
    ]


def _manifest_fix(scopes: list[str]) -> str:
    them = "it" if len(scopes) == 1 else "them"
    return (
        f"add {them} under OAuth & Permissions (or paste deploy/slack-manifest*.yaml) and reinstall the app"
    )


async def check_app_token(settings: Settings) -> CheckLine:
    """The app-level token, asked for a Socket Mode connection URL (the URL itself is not used)."""
    if settings.slack_app_token is None:
        return skip("app token", "SLACK_APP_TOKEN is unset (HTTP mode)")
    client = _client(settings, settings.slack_app_token.get_secret_value())
    try:
        with slack_errors("apps.connections.open"):
            await client.apps_connections_open(app_token=settings.slack_app_token.get_secret_value())
    except SlackRefused as refused:
        return _refused("app token", "SLACK_APP_TOKEN", refused, _APP_TOKEN_FIX)
    except DeliveryFailed as failed:
        return _unreachable("app token", settings, failed)
    return ok("app token", "Slack opens Socket Mode connections for it")


_APP_TOKEN_FIX = (
    "Basic Information -> App-Level Tokens: generate one with connections:write, put it (xapp-…) in "
    "SLACK_APP_TOKEN, and turn Socket Mode on"
)


def _refused(name: str, setting: str, refused: SlackRefused, fix: str) -> CheckLine:
    if refused.transient or refused.error == "ratelimited":
        # Slack having trouble (a 5xx, fatal_error, ratelimited), not the token being wrong: serve waits.
        detail = f"Slack answered {refused.error} when checking {setting}"
        return fail(name, detail, "try again in a minute", outage=True, blocks_start=False)
    if refused.error == "missing_scope":
        fix = f"give {setting} the scope {SCOPE_OF.get(setting, 'it needs')}, or generate a new one with it"
    verb = "refused" if refused.error in REFUSED_TOKEN_ERRORS else "answered"
    return fail(name, f"Slack {verb} {setting} ({refused.error})", fix)


# The scope each token must hold for the call that checks it.
SCOPE_OF = {"SLACK_APP_TOKEN": "connections:write"}


def _unreachable(name: str, settings: Settings, failed: DeliveryFailed) -> CheckLine:
    detail = f"cannot reach Slack at {settings.slack_api_url} ({failed})"
    fix = "check the network, a proxy, or SLACK_API_URL"
    return fail(name, detail, fix, outage=True, blocks_start=False)  # serve waits for Slack


def _client(settings: Settings, token: str) -> AsyncWebClient:
    return AsyncWebClient(token=token, base_url=settings.slack_api_url, timeout=PROBE_SECONDS)
