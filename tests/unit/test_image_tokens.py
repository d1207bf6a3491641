"""glm-4.5v image token counts and the snapped size images are resized to before sending."""

from __future__ import annotations

import pytest

from bot.images.tokens import PATCH, image_tokens, target_size


@pytest.mark.parametrize(
    ("width", "height", "tokens"),
    [
        (28, 28, 1 + 2),
        (1260, 1260, 45 * 45 + 2),
        (1260, 840, 45 * 30 + 2),
        (1260, 700, 45 * 25 + 2),
        (644, 476, 23 * 17 + 2),
        (1932, 1092, 69 * 39 + 2),
        (2044, 1372, 73 * 49 + 2),
        (1260, 28, 45 * 1 + 2),
    ],
)
def test_image_tokens_counts_28px_blocks_plus_two_markers(width: int, height: int, tokens: int) -> None:
    assert image_tokens(width, height) == tokens


def test_image_tokens_counts_only_whole_blocks() -> None:
    assert image_tokens(55, 83) == 1 * 2 + 2


@pytest.mark.parametrize(
    ("width", "height", "max_side", "expected"),
    [
        # landscape photo: 1280 is not a multiple of 28, so the long side becomes 1260 (45 blocks)
        (3000, 2000, 1280, (1260, 840)),
        (2000, 3000, 1280, (840, 1260)),  # portrait
        (1920, 1080, 1280, (1260, 700)),  # 16:9 screenshot: 708.75 rounds to 700
        (1080, 1920, 1280, (700, 1260)),
        (1170, 2532, 1280, (588, 1260)),  # phone screenshot: 582.2 rounds to 588
        (4000, 4000, 1280, (1260, 1260)),  # square
        (100_000, 100_000, 1280, (1260, 1260)),  # huge
        (1260, 840, 1280, (1260, 840)),  # already snapped: unchanged
        (1270, 700, 1280, (1260, 700)),  # between the cap and max_side: scaled to the cap
        (640, 480, 1280, (644, 476)),  # small: not scaled, only snapped (to nearest)
        (42, 42, 1280, (56, 56)),  # exactly 1.5 blocks rounds half up
        (10, 10, 1280, (28, 28)),  # tiny: grows to the minimum block, the only upscaling allowed
        (1, 1, 1280, (28, 28)),
        (10_000, 50, 1280, (1260, 28)),  # extreme aspect ratios stay valid
        (50, 10_000, 1280, (28, 1260)),
        (100_000, 1, 1280, (1260, 28)),
        (3000, 2000, 2048, (2044, 1372)),  # max_side 2048: cap 2044 = 73 blocks; 1362.7 rounds to 1372
        (4032, 3024, 2048, (2044, 1540)),
        (3000, 2000, 28, (28, 28)),  # the smallest max_side
    ],
)
def test_target_size(width: int, height: int, max_side: int, expected: tuple[int, int]) -> None:
    assert target_size(width, height, max_side) == expected


@pytest.mark.parametrize("max_side", [28, 100, 768, 1280, 2048])
@pytest.mark.parametrize(
    ("width", "height"),
    [(1, 1), (27, 29), (300, 7), (999, 1001), (1281, 719), (4032, 3024), (6000, 13), (31_337, 12_345)],
)
def test_target_size_is_always_valid(width: int, height: int, max_side: int) -> None:
    out_w, out_h = target_size(width, height, max_side)
    cap = max_side // PATCH * PATCH
    for original, side in ((width, out_w), (height, out_h)):
        assert side % PATCH == 0
        assert PATCH <= side <= cap
        # never upscaled beyond rounding to the nearest block (or to the 28 px minimum)
        assert side <= max(PATCH, original + PATCH // 2)


def test_target_size_keeps_the_aspect_ratio_within_rounding() -> None:
    out_w, out_h = target_size(4032, 3024, 1280)
    # each side is off by at most half a block from the exactly scaled size
    scale = out_w / 4032
    assert abs(3024 * scale - out_h) <= PATCH / 2


@pytest.mark.parametrize(("width", "height", "max_side"), [(0, 10, 1280), (10, -1, 1280), (10, 10, 27)])
def test_target_size_rejects_impossible_arguments(width: int, height: int, max_side: int) -> None:
    with pytest.raises(ValueError, match="must"):
        target_size(width, height, max_side)
