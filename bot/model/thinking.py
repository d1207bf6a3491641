"""The thinking switch: which request field turns glm-4.5v's reasoning on or off, per backend."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

ThinkingStyle = Literal["openrouter", "zai", "vllm"]

_ZAI_DOMAINS = ("z.ai", "bigmodel.cn")
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def thinking_style_for(base_url: str) -> ThinkingStyle:
    """Guess which request field switches thinking for the backend at ``base_url``."""
    host = (urlsplit(base_url).hostname or "").lower()
    if any(host == domain or host.endswith("." + domain) for domain in _ZAI_DOMAINS):
        return "zai"
    lowered = base_url.lower()
    if host in _LOCAL_HOSTS or "vllm" in lowered or "sglang" in lowered:
        return "vllm"
    # UnoRouter, OpenRouter and unknown routers speak the OpenRouter dialect.
    return "openrouter"


def thinking_fields(style: ThinkingStyle, enabled: bool) -> dict[str, object]:
    """The request-body fields that turn thinking on or off for ``style``."""
    if style == "zai":
        return {"thinking": {"type": "enabled" if enabled else "disabled"}}
    if style == "vllm":
        return {"chat_template_kwargs": {"enable_thinking": enabled}}
    return {"reasoning": {"enabled": enabled}}
