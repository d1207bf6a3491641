"""The one Settings object: read from the environment (and ``.env``) once at start, then passed in.

Variable names are fixed by the contract (``shared/contract.md``); the few extras below the contract's
list are documented in the README. Nothing here runs at import time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.billing.pricing import Price, PricingError, price_for
from bot.file_hosts import DEFAULT_FILE_HOST, api_plain_http_entry, entry_host, host_entry
from bot.redaction import url_passwords
from bot.settings_report import describe_error, missing, missing_line, public_view, token_kind_problems
from bot.store.connection import parse_topology

CommaList = Annotated[list[str], NoDecode]
MAX_OUTPUT_CEILING = 32768
# The assistant panel's suggested prompts (ASSISTANT_PROMPTS): Slack shows at most four
# (https://docs.slack.dev/reference/methods/assistant.threads.setSuggestedPrompts).
PromptList = Annotated[list[str], NoDecode]
DEFAULT_ASSISTANT_PROMPTS = ("Summarise a text I paste", "Describe an image I upload", "Explain this code")
MAX_ASSISTANT_PROMPTS = 4


class SettingsError(Exception):
    """Settings are missing or invalid: ``problems`` holds one line per problem, each naming its variable
    (secret values never shown); the message is those lines joined by newlines."""

    def __init__(self, problems: str | Sequence[str]) -> None:
        self.problems = (problems,) if isinstance(problems, str) else tuple(problems)
        super().__init__("\n".join(self.problems))


SECRET_FIELDS = frozenset({"slack_bot_token", "slack_signing_secret", "slack_app_token", "glm_api_key"})


class Settings(BaseSettings):
    """Every knob of the bot. Field names map to upper-case environment variables."""

    # Blank values (`SLACK_APP_TOKEN=` in a .env) count as unset, not as an empty token.
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True, env_ignore_empty=True)

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    slack_file_hosts: CommaList = Field(default_factory=list)
    # File hosts the bot token may reach over plain http too (host, or host:port); see bot/file_hosts.py.
    slack_file_hosts_plain_http: CommaList = Field(default_factory=list)

    glm_api_key: SecretStr | None = None
    glm_base_url: str = "https://api.unorouter.com/v1"
    glm_model: str = "glm-4.5v"
    glm_context_tokens: int = Field(default=65536, ge=1024)
    glm_max_output_tokens: int = Field(default=4096, ge=16, le=MAX_OUTPUT_CEILING)
    glm_thinking: Literal["off", "on"] = "off"
    glm_thinking_style: Literal["auto", "openrouter", "zai", "vllm"] = "auto"
    glm_timeout_seconds: float = Field(default=120.0, gt=0)

    redis_url: str | None = None
    redis_cache_url: str | None = None
    history_ttl_days: int = Field(default=30, ge=1)
    thread_catchup_messages: int = Field(default=50, ge=0, le=1000)

    image_max_download_mb: int = Field(default=20, ge=1, le=200)
    image_max_side: int = Field(default=1280, ge=28, le=4096)
    image_max_per_message: int = Field(default=4, ge=1, le=20)
    image_cache_ttl_hours: int = Field(default=168, ge=1)
    image_cache_max_mb: int = Field(default=256, ge=1)

    quota_default_usd: Decimal = Field(default=Decimal("1.00"), ge=0, le=9000)
    quota_period: Literal["day", "week", "month"] = "month"
    quota_min_reply_tokens: int = Field(default=256, ge=1)
    glm_input_usd_per_mtok: Decimal | None = Field(default=None, ge=0)
    glm_output_usd_per_mtok: Decimal | None = Field(default=None, ge=0)
    admin_user_ids: CommaList = Field(default_factory=list)

    stream_edit_interval: float = Field(default=1.5, ge=0.1)
    slack_edits_per_minute: int = Field(default=50, ge=1)
    slack_streaming: Literal["auto", "native", "edit"] = "auto"

    glm_first_token_seconds: float = Field(default=60.0, gt=0)
    glm_reply_seconds: float = Field(default=600.0, gt=0)
    shutdown_drain_seconds: float = Field(default=25.0, ge=0)
    work_lease_seconds: float = Field(default=20.0, ge=1, le=600)

    system_prompt: str | None = None
    assistant_prompts: PromptList = Field(default_factory=lambda: list(DEFAULT_ASSISTANT_PROMPTS))
    port: int = Field(default=3000, ge=1, le=65535)
    # A separate port for /metrics and /healthz (unset: the main port); it must differ from the main port.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["json", "console"] | None = None

    @field_validator("slack_file_hosts", "slack_file_hosts_plain_http", "admin_user_ids", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("slack_file_hosts_plain_http")
    @classmethod
    def _host_entries(cls, value: list[str]) -> list[str]:
        # "host" or "host:port", lower case; a URL or a path is refused at start (ValueError names it).
        return [host_entry(entry) for entry in value]

    @field_validator("assistant_prompts", mode="before")
    @classmethod
    def _split_prompts(cls, value: object) -> object:
        # A JSON list (["Summarise a text I paste", "Explain this code"]) or text split at "|".
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else text.split("|")
        if isinstance(value, list):
            value = [part.strip() if isinstance(part, str) else part for part in value]
            value = [part for part in value if part != ""]
        return value

    @field_validator("assistant_prompts")
    @classmethod
    def _few_prompts(cls, value: list[str]) -> list[str]:
        if len(value) > MAX_ASSISTANT_PROMPTS:
            raise ValueError(f"at most {MAX_ASSISTANT_PROMPTS} prompts (Slack shows no more)")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("slack_api_url", "glm_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).hostname:
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        # slack_sdk joins method names onto this URL: without the slash, ".../api" + "chat.update"
        # would lose the "/api" part.
        return value if value.endswith("/") else value + "/"

    @field_validator("redis_url", "redis_cache_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        # One server, Sentinel (redis+sentinel://host:26379[,host2:26379]/SERVICE[/DB]) or Cluster
        # (redis+cluster://host:port[,host2:port]); parse_topology raises ValueError saying what is wrong.
        if value:
            parse_topology(value)
        return value or None

    @model_validator(mode="after")
    def _output_fits_context(self) -> Settings:
        if self.glm_max_output_tokens >= self.glm_context_tokens:
            raise ValueError(
                f"GLM_MAX_OUTPUT_TOKENS ({self.glm_max_output_tokens}) must be smaller than "
                f"GLM_CONTEXT_TOKENS ({self.glm_context_tokens})"
            )
        return self

    @model_validator(mode="after")
    def _minimal_reply_fits(self) -> Settings:
        if self.quota_min_reply_tokens > self.glm_max_output_tokens:
            # Otherwise every request would look unaffordable and everyone would be refused.
            raise ValueError("QUOTA_MIN_REPLY_TOKENS must not exceed GLM_MAX_OUTPUT_TOKENS")
        return self

    @model_validator(mode="after")
    def _model_is_priced(self) -> Settings:
        # A model missing from the price table would be a free ride past every quota: refuse to start.
        self.price()
        return self

    def price(self) -> Price:
        """The model's price, from the shipped table with any override applied."""
        try:
            return price_for(self.glm_model, self.glm_input_usd_per_mtok, self.glm_output_usd_per_mtok)
        except PricingError as exc:
            raise ValueError(str(exc)) from None

    @property
    def file_hosts(self) -> frozenset[str]:
        """Hosts (lower case) that may receive the bot token on file downloads: SLACK_FILE_HOSTS, else
        files.slack.com and the host of SLACK_API_URL; plus the hosts of SLACK_FILE_HOSTS_PLAIN_HTTP.
        Over which scheme: ``plain_http_file_hosts`` (the rule: ``bot/file_hosts.py``)."""
        api_host = (urlsplit(self.slack_api_url).hostname or "").lower()
        listed = [host.lower() for host in self.slack_file_hosts] or [DEFAULT_FILE_HOST, api_host]
        return frozenset([*listed, *(entry_host(entry) for entry in self.slack_file_hosts_plain_http)])

    @property
    def image_max_download_bytes(self) -> int:
        """IMAGE_MAX_DOWNLOAD_MB in bytes (MB meaning MiB, as file sizes are shown)."""
        return self.image_max_download_mb * 1024 * 1024

    @property
    def plain_http_file_hosts(self) -> frozenset[str]:
        """Where the bot token may go over plain http, as entries ``host`` (any port) or ``host:port``:
        the host:port of SLACK_API_URL when that URL is http, and SLACK_FILE_HOSTS_PLAIN_HTTP. Every other
        file host gets it over https only, files.slack.com included whatever SLACK_FILE_HOSTS says."""
        api = api_plain_http_entry(self.slack_api_url)
        return frozenset([*self.slack_file_hosts_plain_http, *([api] if api else [])])

    def require(self, *names: str) -> None:
        """Raise SettingsError naming every setting in ``names`` that is unset (all at once)."""
        unset = [name for name in names if getattr(self, name.lower()) is None]
        if unset:
            raise SettingsError([missing_line(name) for name in unset])

    def public_view(self) -> dict[str, object]:
        """Every setting by its variable name, secrets shown only as ``set``/``unset`` (for the start-up
        log line and ``glmbot check``)."""
        return public_view(self.model_dump(), SECRET_FIELDS)

    def secrets(self) -> list[str]:
        """Every secret value, for the log redactor."""
        values = (self.slack_bot_token, self.slack_signing_secret, self.slack_app_token, self.glm_api_key)
        tokens = [value.get_secret_value() for value in values if value is not None]
        return [*tokens, *url_passwords(self.redis_url), *url_passwords(self.redis_cache_url)]


def load_settings(required: Sequence[str] = (), slack: bool = False) -> Settings:
    """Build Settings from the environment and ``.env``; ``required`` names settings the command needs,
    ``slack`` says it uses the Slack tokens (whose kinds are then checked: ``token_kind_problems``).

    Raises SettingsError listing every problem at once: each token of the wrong kind, each invalid value
    (secrets hidden) and each required setting that is unset.
    """
    kinds = token_kind_problems() if slack else []
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = [describe_error(error, SECRET_FIELDS) for error in exc.errors()]
        raise SettingsError([*kinds, *problems, *missing(required)]) from None
    if kinds:
        raise SettingsError([*kinds, *missing(required)])
    settings.require(*required)
    return settings
