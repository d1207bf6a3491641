"""Attached files -> prepared images: pick the images, fetch them once, downscale, cache.

A file that cannot be used never stops the reply: it becomes a short line telling the user which file was
left out and why, and the rest of the message is still answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from bot.core.domain import Attachment, CachedImage, CollectedImages, ImageRef, ThreadKey
from bot.core.errors import ImageRejected
from bot.core.messages import file_problem, too_many_images
from bot.core.ports import AttachmentFetcher
from bot.images.cache import ImageCache
from bot.images.decode import NOT_AN_IMAGE, prepare_image

# A download holds up to IMAGE_MAX_DOWNLOAD_MB and its decode up to ~220 MB (``python -m bench.images``):
# never hold more than this many at once in one process, so its memory stays bounded whatever the load.
MAX_PARALLEL_DECODES = 2
IMAGE_MIMETYPES = frozenset(
    {"image/png", "image/jpeg", "image/jpg", "image/gif", "image/webp", "image/heic", "image/heif"}
)


class ImagePipeline:
    """Turns a message's attachments into images the model can see (implements ``core.ports.Images``)."""

    def __init__(self, cache: ImageCache, max_side: int, max_per_message: int) -> None:
        self._cache = cache
        self._max_side = max_side
        self._max_per_message = max_per_message
        self._decoding = asyncio.Semaphore(MAX_PARALLEL_DECODES)

    async def collect(
        self, thread: ThreadKey, attachments: Sequence[Attachment], fetcher: AttachmentFetcher
    ) -> CollectedImages:
        """Prepare the message's images; files already cached for this thread are not downloaded again."""
        if not attachments:
            return CollectedImages((), ())
        chosen, problems = select_images(attachments, self._max_per_message)
        cached = await self._cache.load(thread, [a.file_id for a in chosen])
        missing = [a for a in chosen if a.file_id not in cached]
        outcomes = await asyncio.gather(*(self._prepare(a, fetcher) for a in missing))
        fresh = {image.ref.file_id: image for image in outcomes if isinstance(image, CachedImage)}
        await self._cache.save(thread, list(fresh.values()))
        problems += [outcome for outcome in outcomes if isinstance(outcome, str)]
        available = {**fresh, **cached}
        images = tuple(available[a.file_id] for a in chosen if a.file_id in available)
        return CollectedImages(images, tuple(problems))

    async def cached(self, thread: ThreadKey, file_ids: Sequence[str]) -> dict[str, CachedImage]:
        """Earlier images of the thread that are still cached."""
        return await self._cache.load(thread, file_ids)

    async def _prepare(self, attachment: Attachment, fetcher: AttachmentFetcher) -> CachedImage | str:
        try:
            # Few at a time, download included (its bytes are held until the decode is done); decoding
            # and resizing are CPU work, kept off the event loop.
            async with self._decoding:
                data = await fetcher.fetch(attachment)
                prepared = await asyncio.to_thread(prepare_image, data, self._max_side)
                del data
        except ImageRejected as rejected:
            return file_problem(attachment.name, rejected.reason)
        ref = ImageRef(
            file_id=attachment.file_id,
            name=attachment.name,
            mime=prepared.mime,
            width=prepared.width,
            height=prepared.height,
            tokens=prepared.tokens,
            size_bytes=len(prepared.data),
        )
        return CachedImage(ref=ref, data_url=prepared.data_url())


def select_images(attachments: Sequence[Attachment], limit: int) -> tuple[list[Attachment], list[str]]:
    """The attachments worth fetching (at most ``limit``), and a line for each one left out."""
    problems: list[str] = []
    candidates: list[Attachment] = []
    for attachment in attachments:
        # An empty mimetype (a partial file object) is fetched and sniffed; a known non-image is not.
        if attachment.mimetype and attachment.mimetype.lower() not in IMAGE_MIMETYPES:
            problems.append(file_problem(attachment.name, NOT_AN_IMAGE))
        else:
            candidates.append(attachment)
    if len(candidates) > limit:
        problems.append(too_many_images(limit, [a.name for a in candidates[limit:]]))
    return candidates[:limit], problems
