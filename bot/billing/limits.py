"""How much a user may spend: their own limit, else the workspace default, else the configured setting.

Limits are admin settings and never expire. Writes go through ``lua/set_limit.lua`` with an operation id,
so a command that redis-py resends after a lost reply returns the first run's answer (the limit before
the change) instead of the value it has just written: the admin log then records the true old value.
Amounts are integer picodollars.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import uuid4

import redis.asyncio as redis

from bot.billing.keys import DEFAULT_KEY, default_op_key, limit_key, user_op_key
from bot.billing.money import MAX_LIMIT_USD, PICO_PER_USD
from bot.billing.records import LimitSource
from bot.store.connection import lua_source, store_errors

DEFAULT_CACHE_SECONDS = 30
MAX_LIMIT_PICO = int(MAX_LIMIT_USD) * PICO_PER_USD
SET_LIMIT_SCRIPT = lua_source(__package__, "lua/set_limit.lua")


def check_limit(limit_pico: int | None) -> None:
    """Raise ValueError unless ``limit_pico`` is None or between 0 and ``MAX_LIMIT_PICO``."""
    if limit_pico is not None and not 0 <= limit_pico <= MAX_LIMIT_PICO:
        raise ValueError(f"limit must be between 0 and {MAX_LIMIT_PICO} pico-USD, got {limit_pico}")


class LimitBook:
    """Reads and writes the limits; caches the workspace default for ``DEFAULT_CACHE_SECONDS``."""

    def __init__(self, client: redis.Redis, setting_pico: int, marker_ttl_seconds: int) -> None:
        check_limit(setting_pico)
        self._client = client
        self._setting_pico = setting_pico
        self._marker_ttl_seconds = marker_ttl_seconds
        self._set_limit = client.register_script(SET_LIMIT_SCRIPT)
        self._workspace_cache: tuple[datetime, int | None] | None = None

    def resolve(self, own: int | None, workspace: int | None) -> tuple[int, LimitSource]:
        """The limit that applies (picodollars) and where it comes from."""
        if own is not None:
            return own, "user"
        if workspace is not None:
            return workspace, "workspace"
        return self._setting_pico, "setting"

    async def fallback(self, now: datetime) -> int:
        """The limit (picodollars) for users without their own: the workspace default, else the setting."""
        workspace = await self.workspace_default(now)
        return self._setting_pico if workspace is None else workspace

    async def workspace_default(self, now: datetime) -> int | None:
        """The workspace default limit, cached for ``DEFAULT_CACHE_SECONDS`` of the injected clock.

        Raises StoreUnavailable when Redis fails.
        """
        cached = self._workspace_cache
        if cached is not None and timedelta(0) <= now - cached[0] < timedelta(seconds=DEFAULT_CACHE_SECONDS):
            return cached[1]
        with store_errors("quota default"):
            raw = await self._client.get(DEFAULT_KEY)
        value = None if raw is None else int(raw)
        self._workspace_cache = (now, value)
        return value

    async def set_user_limit(self, user: str, limit_pico: int | None) -> int | None:
        """Give ``user`` their own limit; None removes it. Returns the user's own limit before (or None).

        Raises ValueError for a limit out of range, StoreUnavailable when Redis fails.
        """
        check_limit(limit_pico)
        keys = [limit_key(user), user_op_key(user, uuid4().hex)]
        return await self._swap(keys, limit_pico, "quota set limit")

    async def set_workspace_default(self, limit_pico: int | None) -> int | None:
        """Set the workspace default (None removes it); returns the default before (or None).

        Raises ValueError for a limit out of range, StoreUnavailable when Redis fails.
        """
        check_limit(limit_pico)
        self._workspace_cache = None  # this process sees its own change at once
        return await self._swap([DEFAULT_KEY, default_op_key(uuid4().hex)], limit_pico, "quota set default")

    async def _swap(self, keys: list[str], limit_pico: int | None, action: str) -> int | None:
        """Run the set-limit script once (its operation id is in ``keys``); the old value."""
        new = "" if limit_pico is None else str(limit_pico)
        with store_errors(action):
            old = await self._set_limit(keys=keys, args=[new, self._marker_ttl_seconds])
        return int(old) if old not in (None, "", b"") else None
