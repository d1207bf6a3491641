"""Downscaled images of a thread, cached in Redis so later turns can re-send them without a download.

Key layout: ``glmbot:{<team>:<channel>:<thread_ts>}:image:<file_id>`` holding JSON: the image's
reference (size, token estimate) and its ``data:`` URL. The thread's hash tag puts every image of a thread
in the history's slot, so one MGET reads them all.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict

import redis.asyncio as redis

from bot.core.domain import CachedImage, ImageRef, ThreadKey
from bot.store.connection import store_errors


def image_key(thread: ThreadKey, file_id: str) -> str:
    """The Redis key of one cached image."""
    return f"glmbot:{{{thread.tag()}}}:image:{file_id}"


class ImageCache:
    """Store and load prepared images as data URLs."""

    def __init__(self, client: redis.Redis, ttl_seconds: int) -> None:
        self._client = client
        self._ttl_seconds = ttl_seconds

    async def load(self, thread: ThreadKey, file_ids: Iterable[str]) -> dict[str, CachedImage]:
        """The cached images among ``file_ids`` (missing or expired ones are left out)."""
        ids = list(dict.fromkeys(file_ids))
        if not ids:
            return {}
        with store_errors("image cache read"):
            values = await self._client.mget([image_key(thread, file_id) for file_id in ids])
        return {file_id: _decode(value) for file_id, value in zip(ids, values, strict=True) if value}

    async def save(self, thread: ThreadKey, images: Sequence[CachedImage]) -> None:
        """Cache images by file id, each with the cache TTL."""
        if not images:
            return
        with store_errors("image cache write"):
            async with self._client.pipeline(transaction=False) as pipe:
                for image in images:
                    value = json.dumps({"ref": asdict(image.ref), "url": image.data_url})
                    pipe.set(image_key(thread, image.ref.file_id), value, ex=self._ttl_seconds)
                await pipe.execute()


def _decode(value: str | bytes) -> CachedImage:
    data = json.loads(value)
    return CachedImage(ref=ImageRef(**data["ref"]), data_url=str(data["url"]))
