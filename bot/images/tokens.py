"""How many prompt tokens glm-4.5v spends on an image, and the size to send so that count is exact.

glm-4.5v's processor resizes every image so both sides are multiples of 28 and turns each 28×28 block
into one token, plus two marker tokens (``<|begin_of_image|>``, ``<|end_of_image|>``). If we send an
image whose sides are already multiples of 28 (and inside the server's pixel bounds), the server's
resize is a no-op and ``image_tokens`` is the exact count. Pure: no I/O, stdlib only.
"""

from __future__ import annotations

PATCH = 28
"""Side of the block that becomes one token (14-px ViT patches merged 2×2)."""

MARKER_TOKENS = 2
"""``<|begin_of_image|>`` and ``<|end_of_image|>`` around every image."""


def image_tokens(width: int, height: int) -> int:
    """Prompt tokens for an image of ``width``×``height`` pixels (sides should be multiples of 28)."""
    return (width // PATCH) * (height // PATCH) + MARKER_TOKENS


def target_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The size to resize a ``width``×``height`` image to before sending it.

    The image is scaled down (never up) so its long side is at most ``max_side`` rounded down to a
    multiple of 28, keeping the aspect ratio; then each side is rounded to the nearest multiple of 28,
    at least 28 and never above that cap. The only upscaling is a side shorter than 28 pixels
    growing to 28, because no smaller image can be sent.
    """
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if max_side < PATCH:
        raise ValueError(f"max_side must be at least {PATCH}, got {max_side}")
    # Scaling to the largest multiple of 28 within max_side (1280 -> 1260), rather than to max_side and
    # clamping after snapping, keeps the aspect ratio: 1920x1080 becomes 1260x700, not 1260x728.
    cap = max_side // PATCH * PATCH
    scale = min(1.0, cap / max(width, height))
    return _snap(width * scale, cap), _snap(height * scale, cap)


def _snap(side: float, cap: int) -> int:
    """``side`` rounded to the nearest multiple of 28, clamped to [28, cap]."""
    # round() is banker's rounding, so x.5 blocks could go either way; half-up is predictable.
    blocks = int(side / PATCH + 0.5)
    return min(cap, max(PATCH, blocks * PATCH))
