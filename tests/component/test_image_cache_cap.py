"""The image cache's size cap against a real redis-server: it never holds more than the cap."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
import redis.asyncio as redis

from bot.core.domain import CachedImage, ImageRef, ThreadKey
from bot.images.cache import INDEX_KEYS, ImageCache, encode, entry_bytes, image_key
from bot.store.connection import open_store

THREAD = ThreadKey("T1", "C1", "1700000000.000100")
OTHER_THREAD = ThreadKey("T1", "C2", "1700000000.000200")
TTL = 3600
PAYLOAD = 2_000  # characters of data URL per image


def image(file_id: str, payload: int = PAYLOAD) -> CachedImage:
    ref = ImageRef(file_id, f"{file_id}.png", "image/png", 28, 28, 3, payload)
    return CachedImage(ref=ref, data_url="data:image/png;base64," + "A" * payload)


def size(thread: ThreadKey, file_id: str, payload: int = PAYLOAD) -> int:
    return entry_bytes(image_key(thread, file_id), encode(image(file_id, payload)))


async def stored(client: redis.Redis) -> dict[str, int]:
    """Every cached image in the Redis, with the bytes it counts against the cap."""
    keys = [key async for key in client.scan_iter("glmbot:*:image:*")]
    values = await client.mget(keys) if keys else []
    return {key: entry_bytes(key, str(value)) for key, value in zip(keys, values, strict=True) if value}


async def assert_index_matches(client: redis.Redis, cap: int) -> dict[str, int]:
    """The index lists exactly the stored images with their sizes and total, within the cap."""
    present = await stored(client)
    order, sizes, total = INDEX_KEYS
    assert set(await client.zrange(order, 0, -1)) == set(present)
    assert {key: int(value) for key, value in (await client.hgetall(sizes)).items()} == present
    assert int(await client.get(total) or 0) == sum(present.values()) <= cap
    return present


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.Redis]:
    connection = open_store(redis_url)
    yield connection
    await connection.aclose()


async def test_saving_past_the_cap_evicts_the_oldest(client: redis.Redis) -> None:
    """With room for three images, each further save evicts the oldest; the bytes never pass the cap."""
    cap = 3 * size(THREAD, "F1") + 10
    cache = ImageCache(client, ttl_seconds=TTL, max_bytes=cap)
    for number in range(1, 7):
        thread = THREAD if number % 2 else OTHER_THREAD
        await cache.save(thread, [image(f"F{number}")])
        present = await assert_index_matches(client, cap)
        assert len(present) == min(number, 3)
    assert set(await cache.load(OTHER_THREAD, ["F2", "F4", "F6"])) == {"F4", "F6"}
    assert set(await cache.load(THREAD, ["F1", "F3", "F5"])) == {"F5"}


async def test_one_batch_larger_than_the_cap_keeps_the_newest(client: redis.Redis) -> None:
    """Four images saved at once where two fit: the last two are kept, the first two are not written."""
    cap = 2 * size(THREAD, "F1") + 10
    cache = ImageCache(client, ttl_seconds=TTL, max_bytes=cap)
    await cache.save(THREAD, [image(f"F{n}") for n in range(1, 5)])
    assert set(await cache.load(THREAD, ["F1", "F2", "F3", "F4"])) == {"F3", "F4"}
    await assert_index_matches(client, cap)


async def test_an_image_larger_than_the_cap_is_not_cached(client: redis.Redis) -> None:
    """Too large for the cap: not cached, and nothing else is evicted for it."""
    cap = 2 * size(THREAD, "F1") + 10
    cache = ImageCache(client, ttl_seconds=TTL, max_bytes=cap)
    await cache.save(THREAD, [image("F1")])
    await cache.save(THREAD, [image("BIG", payload=3 * PAYLOAD)])
    assert set(await cache.load(THREAD, ["F1", "BIG"])) == {"F1"}
    await assert_index_matches(client, cap)


async def test_saving_the_same_image_again_counts_it_once(client: redis.Redis) -> None:
    """A resumed reply caching its image again replaces the entry; it is not counted twice."""
    cap = 2 * size(THREAD, "F1") + 10
    cache = ImageCache(client, ttl_seconds=TTL, max_bytes=cap)
    await cache.save(THREAD, [image("F1")])
    await cache.save(THREAD, [image("F2")])
    await cache.save(THREAD, [image("F2")])
    assert set(await assert_index_matches(client, cap)) == {image_key(THREAD, "F1"), image_key(THREAD, "F2")}


async def test_every_key_has_a_ttl(client: redis.Redis) -> None:
    """Images keep the cache TTL; the index outlives the newest image a little, and no longer."""
    cache = ImageCache(client, ttl_seconds=TTL, max_bytes=10 * size(THREAD, "F1"))
    await cache.save(THREAD, [image("F1")])
    assert TTL - 10 < await client.ttl(image_key(THREAD, "F1")) <= TTL
    for key in INDEX_KEYS:
        assert TTL < await client.ttl(key) <= TTL + 60


async def test_concurrent_saves_stay_within_the_cap(redis_url: str) -> None:
    """Many processes' saves at once (one client each): afterwards the cache holds at most the cap, and
    exactly what its index lists."""
    cap = 5 * size(THREAD, "F1") + 10
    clients = [open_store(redis_url) for _ in range(8)]
    caches = [ImageCache(c, ttl_seconds=TTL, max_bytes=cap) for c in clients]
    threads = [ThreadKey("T1", f"C{n}", "1.0") for n in range(8)]
    await asyncio.gather(
        *(
            cache.save(thread, [image(f"F{n}a"), image(f"F{n}b")])
            for n, (cache, thread) in enumerate(zip(caches, threads, strict=True))
        )
    )
    present = await assert_index_matches(clients[0], cap)
    assert len(present) == 5
    for connection in clients:
        await connection.aclose()


async def test_an_image_evicted_before_it_is_written_is_removed(client: redis.Redis, redis_url: str) -> None:
    """Process A admits F1; before A writes it, process B's save evicts it. A's write then finds F1 gone
    from the index and deletes it again, so it cannot linger uncounted."""
    cap = size(THREAD, "F1") + 10
    other_client = open_store(redis_url)
    first = ImageCache(client, ttl_seconds=TTL, max_bytes=cap)
    second = ImageCache(other_client, ttl_seconds=TTL, max_bytes=cap)
    admit = first._admit

    async def admit_then_other_process_saves(keys: Sequence[str], args: Sequence[Any]) -> Any:
        evicted = await admit(keys=keys, args=args)
        await second.save(THREAD, [image("F2")])
        return evicted

    first._admit = admit_then_other_process_saves  # type: ignore[assignment]
    await first.save(THREAD, [image("F1")])
    assert set(await first.load(THREAD, ["F1", "F2"])) == {"F2"}
    await assert_index_matches(client, cap)
    await other_client.aclose()


async def test_a_failing_cache_is_a_miss_not_an_error() -> None:
    """When the cache's Redis is down, loads find nothing and saves are skipped, without raising."""
    dead = open_store("redis://127.0.0.1:9/0")
    cache = ImageCache(dead, ttl_seconds=TTL, max_bytes=10 * size(THREAD, "F1"))
    await cache.save(THREAD, [image("F1")])
    assert await cache.load(THREAD, ["F1"]) == {}
    await dead.aclose()
