"""``glmbot check``'s lines against real parts: a real Redis (good, wrong password, allkeys-lru), the fake
model (good, 401, unknown model) and the fake Slack (good token, missing scope, refused app token)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import redis.asyncio as redis
import yaml

from bot.app import model_config
from bot.check.report import CheckLine, Status, passed, summary
from bot.check.runner import file_hosts_line, full_check, port_lines, startup_problems
from bot.check.store import check_store
from bot.settings import Settings, load_settings
from bot.settings_report import token_kind_problems
from handlers.checkup import OPTIONAL_SCOPES, REQUIRED_SCOPES, check_app_token, check_slack
from tests.fakes.bot_env import fake_backed_settings
from tests.fakes.bot_process import free_port
from tests.fakes.constants import BOT_SCOPES
from tests.fakes.model_api import FakeModel, Reply
from tests.fakes.redis_server import RedisServer
from tests.fakes.slack_api import FakeSlack
from tests.fakes.socket_mode import APP_TOKEN


@pytest.fixture(scope="module")
def lru_server() -> Iterator[RedisServer]:
    """A redis-server set up as a cache: allkeys-lru."""
    with RedisServer(extra_args=("--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru")) as server:
        yield server


@pytest.fixture(autouse=True)
def _one_token_answers(fake_model: FakeModel) -> None:
    """The model answers the probe as a real one does when max_tokens is 1."""
    fake_model.default_reply = Reply(text="OK", finish_reason="length", completion_tokens=1)


def settings_for(
    monkeypatch: pytest.MonkeyPatch, slack: FakeSlack, model: FakeModel, redis_url: str, **extra: str
) -> Settings:
    for name, value in {**fake_backed_settings(slack, model, redis_url), **extra}.items():
        monkeypatch.setenv(name, value)
    return load_settings()


async def run(settings: Settings, http_mode: bool = True, port: int | None = None) -> dict[str, CheckLine]:
    lines = await full_check(
        settings,
        http_mode=http_mode,
        port=port or free_port(),
        model=model_config(settings),
        slack=lambda: check_slack(settings, socket_mode=not http_mode),
    )
    return {line.name.split(" ")[0] if line.name.startswith("port ") else line.name: line for line in lines}


async def test_a_good_deployment_passes(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """Everything right: every line ok except persistence (the test Redis keeps nothing), exit 0."""
    settings = settings_for(monkeypatch, fake_slack, fake_model, redis_url)
    lines = await run(settings)
    statuses = {name: line.status for name, line in lines.items()}
    assert statuses == {
        "settings": Status.OK,
        "slack token": Status.OK,
        "slack scopes": Status.OK,
        "signing secret": Status.OK,
        "model": Status.OK,
        "model usage": Status.OK,
        "price": Status.OK,
        "redis": Status.OK,
        "redis policy": Status.OK,
        "redis persistence": Status.WARN,
        "file hosts": Status.OK,
        "port": Status.OK,
    }
    assert lines["slack token"].detail == "glmbot (UBOT0001) in Test (T0TEST)"
    assert lines["price"].detail == "glm-4.5v: $0.78 in, $2.34 out per 1M tokens (the price table)"
    assert lines["redis persistence"].detail == "neither AOF nor RDB snapshots: spend is lost on restart"
    assert passed(lines.values())
    assert summary(lines.values()) == "all checks passed (1 warning): glmbot serve should work"
    # The probe is one streamed request for a few tokens.
    (probe,) = fake_model.requests
    assert probe.body["max_tokens"] == 8
    assert probe.body["stream"] is True


async def test_wrong_redis_password(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_server: RedisServer
) -> None:
    url = f"redis://nobody:wrong-pass@127.0.0.1:{redis_server.port}/0"
    lines = await run(settings_for(monkeypatch, fake_slack, fake_model, url))
    redis_line = lines["redis"]
    assert redis_line.status is Status.FAIL
    assert redis_line.detail.startswith(f"redis://nobody:***@127.0.0.1:{redis_server.port}/0 refused")
    assert "wrong-pass" not in redis_line.render()
    assert (
        redis_line.fix == "put the right user and password in REDIS_URL: redis://USER:PASSWORD@HOST:PORT/DB"
    )
    assert not passed(lines.values())


async def test_unreachable_redis(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    lines = await run(settings_for(monkeypatch, fake_slack, fake_model, f"redis://127.0.0.1:{free_port()}"))
    assert lines["redis"].status is Status.FAIL
    assert lines["redis"].detail.startswith("cannot reach redis://127.0.0.1:")
    assert lines["redis"].fix.startswith("start Redis, or fix the host and port in REDIS_URL")


async def test_evicting_redis(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, fake_model: FakeModel, lru_server: RedisServer
) -> None:
    lines = await run(settings_for(monkeypatch, fake_slack, fake_model, lru_server.url))
    policy = lines["redis policy"]
    assert policy.status is Status.FAIL
    assert policy.detail == "maxmemory-policy is allkeys-lru: quota limits and spend may be evicted"
    assert "CONFIG SET maxmemory-policy noeviction" in policy.fix


async def test_model_key_refused(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    settings = settings_for(monkeypatch, fake_slack, fake_model, redis_url, GLM_API_KEY="sk-wrong")
    model = (await run(settings))["model"]
    assert model.status is Status.FAIL
    assert model.detail.startswith(f"glm-4.5v at {fake_model.base_url}: the key was refused")
    assert model.fix.startswith("put the provider's key in GLM_API_KEY")


async def test_unknown_model_name(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """A model name the endpoint does not serve (here a priced one, so settings accept it)."""
    fake_model.known_models = frozenset({"glm-4.5v"})
    settings = settings_for(
        monkeypatch,
        fake_slack,
        fake_model,
        redis_url,
        GLM_MODEL="glm-4.5-vision",
        GLM_INPUT_USD_PER_MTOK="0.78",
        GLM_OUTPUT_USD_PER_MTOK="2.34",
    )
    lines = await run(settings)
    assert lines["model"].status is Status.FAIL
    assert "the model name is not known there" in lines["model"].detail
    assert "glm-4.5-vision is not a valid model ID" in lines["model"].detail
    assert lines["model"].fix == "set GLM_MODEL to this provider's name for glm-4.5v (README, Providers)"
    assert lines["price"].detail.endswith("(GLM_INPUT/OUTPUT_USD_PER_MTOK)")


async def test_model_without_usage_warns(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    fake_model.default_reply = Reply(text="OK", finish_reason="length", usage=False)
    lines = await run(settings_for(monkeypatch, fake_slack, fake_model, redis_url))
    assert lines["model"].status is Status.OK
    assert lines["model usage"].status is Status.WARN


async def test_missing_scope_fails_and_panel_scope_warns(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    settings = settings_for(monkeypatch, fake_slack, fake_model, redis_url)
    fake_slack.scopes = [scope for scope in BOT_SCOPES if scope != "files:read"]
    scopes = (await run(settings))["slack scopes"]
    assert (scopes.status, scopes.detail) == (Status.FAIL, "missing files:read (images)")
    fake_slack.scopes = [scope for scope in BOT_SCOPES if scope != "assistant:write"]
    scopes = (await run(settings))["slack scopes"]
    assert scopes.status is Status.WARN
    assert scopes.detail.startswith("missing assistant:write")


async def test_refused_bot_token(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    settings = settings_for(monkeypatch, fake_slack, fake_model, redis_url, SLACK_BOT_TOKEN="xoxb-revoked")
    lines = await run(settings)
    assert lines["slack token"].status is Status.FAIL
    assert lines["slack token"].detail == "Slack refused SLACK_BOT_TOKEN (invalid_auth)"
    assert "slack scopes" not in lines


async def test_socket_mode_app_token(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    good = settings_for(monkeypatch, fake_slack, fake_model, redis_url, SLACK_APP_TOKEN=APP_TOKEN)
    assert (await run(good, http_mode=False))["app token"].status is Status.OK
    bad = settings_for(monkeypatch, fake_slack, fake_model, redis_url, SLACK_APP_TOKEN="xapp-revoked")
    line = (await run(bad, http_mode=False))["app token"]
    assert (line.status, line.detail) == (Status.FAIL, "Slack refused SLACK_APP_TOKEN (invalid_auth)")


async def test_port_in_use(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = int(holder.getsockname()[1])
        line = (await run(settings_for(monkeypatch, fake_slack, fake_model, redis_url), port=port))["port"]
    assert (line.status, line.detail) == (Status.FAIL, "already in use by another process")
    assert line.fix == "stop that process or set PORT or --port"


async def test_startup_problems_are_the_fatal_kinds(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, fake_model: FakeModel, lru_server: RedisServer
) -> None:
    """serve's start: an evicting Redis and a refused app token, both at once; the model is not asked."""
    settings = settings_for(monkeypatch, fake_slack, fake_model, lru_server.url, SLACK_APP_TOKEN="xapp-no")
    problems = await startup_problems(
        settings, http_mode=False, port=free_port(), slack=lambda: check_slack(settings, socket_mode=True)
    )
    assert [line.name for line in problems] == ["app token", "redis policy"]
    assert fake_model.requests == []


async def test_slack_outage_is_not_fatal_at_start(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """Slack unreachable: check fails the line, serve starts anyway (it waits for Slack)."""
    nowhere = f"http://127.0.0.1:{free_port()}/api/"
    settings = settings_for(monkeypatch, fake_slack, fake_model, redis_url, SLACK_API_URL=nowhere)
    lines = await run(settings)
    assert lines["slack token"].status is Status.FAIL
    assert lines["slack token"].outage
    problems = await startup_problems(
        settings, http_mode=True, port=free_port(), slack=lambda: check_slack(settings, socket_mode=False)
    )
    assert problems == []


def test_manifest_scopes_are_the_checked_scopes() -> None:
    """The scopes the check asks for are exactly the manifests' (and the fake grants the same)."""
    for path in ("deploy/slack-manifest.yaml", "deploy/slack-manifest.socket.yaml"):
        with open(f"{__file__.rsplit('/tests/', 1)[0]}/{path}") as manifest:
            scopes = yaml.safe_load(manifest)["oauth_config"]["scopes"]["bot"]
        assert set(scopes) == set(REQUIRED_SCOPES) | set(OPTIONAL_SCOPES) == set(BOT_SCOPES)


def test_file_hosts_line_names_the_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    """https hosts, the http API host (its own port), and an explicit plain-http host off loopback warns."""
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:8080/api/")
    line = file_hosts_line(load_settings())
    assert (line.status, line.detail) == (
        Status.OK,
        "the bot token goes only to files.slack.com (https), 127.0.0.1:8080 (http too)",
    )
    monkeypatch.setenv("SLACK_FILE_HOSTS_PLAIN_HTTP", "files.internal:8000")
    line = file_hosts_line(load_settings())
    assert line.status is Status.WARN
    assert line.detail.endswith("unencrypted to files.internal:8000")


async def test_a_missing_scope_does_not_stop_serve(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """A missing scope turns one feature off, not the bot: check fails it, serve starts (and logs it)."""
    settings = settings_for(monkeypatch, fake_slack, fake_model, redis_url)
    fake_slack.scopes = [
        scope for scope in BOT_SCOPES if scope not in ("files:read", "users:read", "groups:read")
    ]
    lines = await check_slack(settings, socket_mode=False)
    scopes = [line for line in lines if line.name == "slack scopes"]
    assert [(line.status, line.detail) for line in scopes] == [
        (Status.FAIL, "missing files:read (images), users:read (quota admins)"),
        (Status.WARN, "missing groups:read (naming a private channel next to the assistant panel)"),
    ]
    assert scopes[0].fix.startswith("add them under OAuth & Permissions")
    problems = await startup_problems(
        settings, http_mode=True, port=free_port(), slack=lambda: check_slack(settings, socket_mode=False)
    )
    assert problems == []
    assert summary(lines) == (
        "1 problem (1 warning): glmbot serve would start, but not everything works, until fixed"
    )


async def test_an_acl_user_without_info_still_passes(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_server: RedisServer
) -> None:
    """A hardened ACL user (+@all -@dangerous: no INFO, no CONFIG) can run the bot: the version and the
    policy lines warn that they could not be read, nothing fails, serve starts."""
    admin = redis.Redis.from_url(redis_server.url)
    try:
        await admin.acl_setuser(
            "hardened",
            enabled=True,
            passwords=["+pw-hardened"],
            keys=["*"],
            channels=["*"],
            categories=["+@all", "-@dangerous"],
        )
        url = f"redis://hardened:pw-hardened@127.0.0.1:{redis_server.port}/0"
        settings = settings_for(monkeypatch, fake_slack, fake_model, url)
        lines = await run(settings)
        assert lines["redis"].status is Status.WARN
        assert lines["redis"].detail.endswith("answered, but would not tell its version (INFO denied)")
        assert lines["redis policy"].status is Status.WARN
        assert passed(lines.values())
        problems = await startup_problems(
            settings, http_mode=True, port=free_port(), slack=lambda: check_slack(settings, socket_mode=False)
        )
        assert problems == []
    finally:
        await admin.acl_deluser("hardened")
        await admin.aclose()


async def test_an_app_token_without_connections_write_is_refused_not_an_outage(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    settings = settings_for(monkeypatch, fake_slack, fake_model, redis_url, SLACK_APP_TOKEN=APP_TOKEN)
    fake_slack.error_next("apps.connections.open", error="missing_scope")
    line = await check_app_token(settings)
    assert (line.status, line.outage, line.blocks_start) == (Status.FAIL, False, True)
    assert line.detail == "Slack answered SLACK_APP_TOKEN (missing_scope)"
    assert line.fix == "give SLACK_APP_TOKEN the scope connections:write, or generate a new one with it"


async def test_an_unreachable_image_cache_only_warns(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """The cache Redis down: images are not cached, nothing else changes; it is checked with the
    embedded store too, and its fix names REDIS_CACHE_URL."""
    cache = f"redis://127.0.0.1:{free_port()}/0"
    for main in (redis_url, None):
        lines = await check_store(main, cache)
        (cache_line,) = [line for line in lines if line.name == "image cache redis"]
        assert cache_line.status is Status.WARN
        assert cache_line.detail.endswith(": images will not be cached")
        assert "REDIS_CACHE_URL" in cache_line.fix
    settings = settings_for(monkeypatch, fake_slack, fake_model, redis_url, REDIS_CACHE_URL=cache)
    problems = await startup_problems(
        settings, http_mode=True, port=free_port(), slack=lambda: check_slack(settings, socket_mode=False)
    )
    assert problems == []


def test_socket_mode_may_reuse_the_main_port_for_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    """Socket Mode with METRICS_PORT opens only that port, so it may equal PORT; HTTP mode may not."""
    port = free_port()
    monkeypatch.setenv("METRICS_PORT", str(port))
    settings = load_settings()
    assert [line.status for line in port_lines(settings, port, http_mode=False)] == [Status.OK]
    assert [line.status for line in port_lines(settings, port, http_mode=True)] == [Status.OK, Status.FAIL]


@pytest.mark.parametrize(
    ("token", "shown"),
    [
        ("xoxp-1234-user-token", "got xoxp-… instead"),
        ("xoxb–1234–5678–SECRETPART", "got something that is not a Slack token"),  # en-dashes
        ("hunter2", "got something that is not a Slack token"),
    ],
)
def test_a_wrong_kind_of_token_shows_only_its_kind(
    monkeypatch: pytest.MonkeyPatch, token: str, shown: str
) -> None:
    monkeypatch.setenv("SLACK_APP_TOKEN", token)
    (problem,) = token_kind_problems()
    assert problem == f"invalid setting SLACK_APP_TOKEN: must be an app-level token (xapp-…), {shown}"
