"""Downscaled images of a thread, cached in Redis so later turns can re-send them without a download.

Key layout: ``glmbot:{<team>:<channel>:<thread_ts>}:image:<file_id>`` holding JSON: the image's
reference (size, token estimate) and its ``data:`` URL. The thread's hash tag puts every image of a thread
in the history's slot, so one MGET reads them all. Each image has the cache TTL.

The cache has a size cap (IMAGE_CACHE_MAX_MB), so images can never crowd money out of a shared Redis. A
global index in its own slot (``glmbot:{images}:order|sizes|bytes``: admission order, bytes per image,
total bytes) is kept by one Lua script: admitting an image evicts the oldest entries while the total is
over the cap, and returns them. The caller deletes those (one DEL each: they live in other slots) before
writing the admitted images in the same pipeline, so the bytes stored never pass the cap. The pipeline is
not a transaction, so on a Redis Cluster redis-py sends each command to its own slot's node; the nodes
run their parts at once, so there the cap may be passed for an instant by the images being replaced.
An image larger than the cap is not cached. Sizes count key plus value bytes, not Redis's per-key
overhead.

The cache is an optimisation: when its Redis fails, a read is a miss and a write is skipped (logged).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict

import redis.asyncio as redis
import structlog

from bot.core.domain import CachedImage, ImageRef, ThreadKey
from bot.core.errors import StoreUnavailable
from bot.store.connection import store_errors

log = structlog.get_logger(__name__)

INDEX_KEYS = ("glmbot:{images}:order", "glmbot:{images}:sizes", "glmbot:{images}:bytes")
# The index outlives the newest image by this much, so it never forgets an image that is still stored.
INDEX_GRACE_SECONDS = 60

# KEYS: the index (order: sorted set image key -> admission number; sizes: hash image key -> bytes;
# bytes: the total). ARGV: index TTL in ms, the cap in bytes, then (image key, bytes) pairs. Returns the
# image keys evicted to make room, oldest first (possibly some just admitted, when one call admits more
# than fits). Every key it touches is in the {images} slot (https://redis.io/docs/latest/commands/eval/).
ADMIT_SCRIPT = """
local order, sizes, total_key = KEYS[1], KEYS[2], KEYS[3]
local cap = tonumber(ARGV[2])
local total = tonumber(redis.call('GET', total_key) or '0')
local function forget(member)
  total = total - tonumber(redis.call('HGET', sizes, member) or '0')
  redis.call('ZREM', order, member)
  redis.call('HDEL', sizes, member)
end
local newest = redis.call('ZRANGE', order, -1, -1, 'WITHSCORES')
local seq = tonumber(newest[2] or '0')
local evicted = {}
for i = 3, #ARGV, 2 do
  local member, size = ARGV[i], tonumber(ARGV[i + 1])
  if size <= cap then
    if redis.call('ZSCORE', order, member) then forget(member) end
    seq = seq + 1
    redis.call('ZADD', order, seq, member)
    redis.call('HSET', sizes, member, size)
    total = total + size
    while total > cap do
      local oldest = redis.call('ZRANGE', order, 0, 0)[1]
      if not oldest then total = 0 break end
      forget(oldest)
      evicted[#evicted + 1] = oldest
    end
  end
end
if total < 0 then total = 0 end
redis.call('SET', total_key, total)
for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, ARGV[1]) end
return evicted
"""


def image_key(thread: ThreadKey, file_id: str) -> str:
    """The Redis key of one cached image."""
    return f"glmbot:{{{thread.tag()}}}:image:{file_id}"


def entry_bytes(key: str, value: str) -> int:
    """What one cached image counts against the cap: its key's and its value's UTF-8 bytes."""
    return len(key.encode()) + len(value.encode())


def encode(image: CachedImage) -> str:
    """The JSON stored for one image."""
    return json.dumps({"ref": asdict(image.ref), "url": image.data_url})


class ImageCache:
    """Store and load prepared images as data URLs, in at most ``max_bytes`` (key plus value bytes)."""

    def __init__(self, client: redis.Redis, ttl_seconds: int, max_bytes: int) -> None:
        self._client = client
        self._ttl_seconds = ttl_seconds
        self._max_bytes = max_bytes
        self._admit = client.register_script(ADMIT_SCRIPT)

    @property
    def scripts(self) -> tuple[str, ...]:
        """The Lua sources this cache runs, for preloading at start."""
        return (ADMIT_SCRIPT,)

    async def load(self, thread: ThreadKey, file_ids: Iterable[str]) -> dict[str, CachedImage]:
        """The cached images among ``file_ids`` (missing or expired ones are left out; all of them when
        the cache's Redis fails)."""
        ids = list(dict.fromkeys(file_ids))
        if not ids:
            return {}
        try:
            with store_errors("image cache read"):
                values = await self._client.mget([image_key(thread, file_id) for file_id in ids])
        except StoreUnavailable as exc:
            log.warning("image_cache_unavailable", detail=str(exc))
            return {}
        return {file_id: _decode(value) for file_id, value in zip(ids, values, strict=True) if value}

    async def save(self, thread: ThreadKey, images: Sequence[CachedImage]) -> None:
        """Cache images by file id, each with the cache TTL, evicting the oldest images past the cap.

        An image larger than the cap is not cached. When the cache's Redis fails, nothing is cached.
        """
        entries = {image_key(thread, image.ref.file_id): encode(image) for image in images}
        sizes = {key: entry_bytes(key, value) for key, value in entries.items()}
        for key in [key for key, size in sizes.items() if size > self._max_bytes]:
            log.info("image_not_cached", reason="larger than IMAGE_CACHE_MAX_MB", bytes=sizes.pop(key))
        if not sizes:
            return
        try:
            with store_errors("image cache write"):
                await self._write({key: entries[key] for key in sizes}, sizes)
        except StoreUnavailable as exc:
            log.warning("image_cache_unavailable", detail=str(exc))

    async def _write(self, entries: dict[str, str], sizes: dict[str, int]) -> None:
        """Admit, delete the evicted, write the admitted; then drop any written image that a concurrent
        admission evicted before it was written (it would otherwise stay uncounted until its TTL)."""
        index_ttl_ms = (self._ttl_seconds + INDEX_GRACE_SECONDS) * 1000
        pairs = [str(item) for key, size in sizes.items() for item in (key, size)]
        evicted = set(await self._admit(keys=INDEX_KEYS, args=[index_ttl_ms, self._max_bytes, *pairs]))
        written = [key for key in entries if key not in evicted]
        async with self._client.pipeline(transaction=False) as pipe:
            for key in evicted:  # one slot per DEL: ready for Redis Cluster
                pipe.delete(key)
            for key in written:
                pipe.set(key, entries[key], ex=self._ttl_seconds)
            await pipe.execute()
        if not written:
            return
        scores = await self._client.zmscore(INDEX_KEYS[0], written)
        orphans = [key for key, score in zip(written, scores, strict=True) if score is None]
        if orphans:
            async with self._client.pipeline(transaction=False) as pipe:
                for key in orphans:
                    pipe.delete(key)
                await pipe.execute()


def _decode(value: str | bytes) -> CachedImage:
    data = json.loads(value)
    return CachedImage(ref=ImageRef(**data["ref"]), data_url=str(data["url"]))
