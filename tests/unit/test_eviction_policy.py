"""The eviction-policy rule and its refusal line (no Redis needed)."""

from __future__ import annotations

import pytest

from bot.core.errors import StoreMayEvict
from bot.images.cache import entry_bytes
from bot.store.policy import check_policy


@pytest.mark.parametrize("policy", ["noeviction", None])
def test_noeviction_and_an_unknown_policy_pass(policy: str | None) -> None:
    check_policy(policy)


@pytest.mark.parametrize("policy", ["allkeys-lru", "volatile-lru", "volatile-ttl", "some-future-policy"])
def test_anything_else_is_refused(policy: str) -> None:
    with pytest.raises(StoreMayEvict) as refused:
        check_policy(policy)
    assert refused.value.policy == policy


def test_the_refusal_is_one_line_naming_the_policy_and_the_fix() -> None:
    assert str(StoreMayEvict("allkeys-lru")) == (
        "unsafe Redis at REDIS_URL: maxmemory-policy is allkeys-lru, which may evict quota limits and "
        "spend under memory pressure; it must be noeviction: run `redis-cli CONFIG SET maxmemory-policy "
        "noeviction` and put `maxmemory-policy noeviction` in redis.conf"
    )


def test_cache_entries_count_utf8_bytes_of_key_and_value() -> None:
    assert entry_bytes("k", "é") == 1 + 2
