"""Attachments read from the local disk: how ``glmbot console`` attaches images (``/image PATH``)."""

from __future__ import annotations

import asyncio
import mimetypes
from pathlib import Path

from bot.core.domain import Attachment
from bot.core.errors import ImageRejected


def local_attachment(path: str) -> Attachment:
    """Describe a local file as an attachment (nothing is read yet)."""
    resolved = Path(path).expanduser()
    mimetype, _ = mimetypes.guess_type(resolved.name)
    size = resolved.stat().st_size if resolved.is_file() else None
    return Attachment(
        file_id=f"local:{resolved.resolve()}:{size}",
        name=resolved.name,
        mimetype=mimetype or "",
        size=size,
        location=str(resolved),
    )


class LocalFileFetcher:
    """Reads attachments from disk, with the same size limit as Slack downloads."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes

    async def fetch(self, attachment: Attachment) -> bytes:
        return await asyncio.to_thread(self._read, Path(attachment.location))

    def _read(self, path: Path) -> bytes:
        if not path.is_file():
            raise ImageRejected("there is no such file")
        try:
            if path.stat().st_size > self._max_bytes:
                raise ImageRejected(f"it is too large (the limit is {self._max_bytes / 2**20:g} MB)")
            return path.read_bytes()
        except OSError as exc:
            raise ImageRejected(f"it cannot be read ({exc.strerror or type(exc).__name__})") from None
