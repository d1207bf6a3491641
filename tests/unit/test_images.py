"""prepare_image: format sniffing, bomb and damage checks, orientation, modes, resizing and encoding.

Every test image is built in memory with Pillow; nothing is read from disk.
"""

from __future__ import annotations

import base64
import io
import random
import struct
import zlib
from collections.abc import Callable
from typing import Any

import pillow_heif
import pytest
from PIL import Image, ImageDraw, ImageFilter

from bot.core.errors import ImageRejected
from bot.images import decode
from bot.images.decode import DAMAGED, NOT_AN_IMAGE, TOO_BIG_TO_SEND, PreparedImage, prepare_image
from bot.images.tokens import PATCH, image_tokens, target_size

RED = (220, 30, 30)
BLUE = (30, 30, 220)


# --- building test images ------------------------------------------------------------------------


def encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def encode_heic(image: Image.Image) -> bytes:
    # Through pillow-heif directly, so the test does not register the opener that prepare_image registers.
    buffer = io.BytesIO()
    pillow_heif.from_pillow(image).save(buffer, quality=80)
    return buffer.getvalue()


def photo(width: int, height: int) -> Image.Image:
    """Smooth shapes, gradients and grain: compresses like a photo, unlike pure noise or flat colour."""
    shapes = Image.effect_mandelbrot((width // 4, height // 4), (-2.2, -1.2, 1.0, 1.2), 80)
    red = shapes.resize((width, height), Image.Resampling.BICUBIC)
    green = Image.linear_gradient("L").resize((width, height))
    grain = Image.effect_noise((width, height), 24)
    blue = grain.filter(ImageFilter.GaussianBlur(1))
    return Image.blend(Image.merge("RGB", (red, green, blue)), Image.merge("RGB", (grain,) * 3), 0.15)


def screenshot(width: int, height: int) -> Image.Image:
    """A chat-app-like screen: flat panels and lots of small text, a few hundred colours."""
    image = Image.new("RGB", (width, height), (246, 246, 246))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width, 48), fill=(63, 14, 64))
    draw.rectangle((0, 48, 260, height), fill=(25, 25, 35))
    for row, y in enumerate(range(70, height - 20, 22)):
        draw.text((20, y), f"# channel-{row}", fill=(200, 200, 210))
        draw.text(
            (280, y), f"message {row}: the quick brown fox jumps over the lazy dog " * 2, fill=(29, 28, 29)
        )
    return image


def flat_graphic(width: int, height: int) -> Image.Image:
    """A few big flat rectangles: PNG is far smaller than JPEG for this."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width // 2, height // 2), fill=RED)
    draw.rectangle((width // 2, height // 2, width, height), fill=BLUE)
    return image


def halves(width: int, height: int, left: tuple[int, int, int], right: tuple[int, int, int]) -> Image.Image:
    image = Image.new("RGB", (width, height), left)
    image.paste(right, (width // 2, 0, width, height))
    return image


def decoded(prepared: PreparedImage) -> Image.Image:
    image = Image.open(io.BytesIO(prepared.data))
    image.load()
    return image


def near(pixel: Any, colour: tuple[int, int, int], tolerance: int = 40) -> bool:
    return all(abs(int(a) - b) <= tolerance for a, b in zip(pixel, colour, strict=True))


def assert_valid(prepared: PreparedImage) -> None:
    """The invariants every result has: snapped sides, exact tokens, and bytes that match the fields."""
    assert prepared.width % PATCH == 0
    assert prepared.height % PATCH == 0
    assert prepared.tokens == image_tokens(prepared.width, prepared.height)
    image = decoded(prepared)
    assert image.size == (prepared.width, prepared.height)
    assert image.mode == "RGB"
    assert Image.MIME[image.format or ""] == prepared.mime


@pytest.fixture(scope="module")
def big_photo_png() -> bytes:
    return encode(photo(3000, 2000), "PNG", compress_level=1)


# --- formats --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "options"),
    [
        ("PNG", {}),
        ("JPEG", {"quality": 90}),
        ("GIF", {}),
        ("WEBP", {"quality": 90}),
        ("WEBP", {"lossless": True}),
    ],
)
def test_accepted_formats_become_snapped_rgb(fmt: str, options: dict[str, Any]) -> None:
    prepared = prepare_image(encode(halves(300, 200, RED, BLUE), fmt, **options))
    assert_valid(prepared)
    assert (prepared.width, prepared.height) == target_size(300, 200, 1280) == (308, 196)
    image = decoded(prepared).convert("RGB")
    assert near(image.getpixel((40, 100)), RED)
    assert near(image.getpixel((260, 100)), BLUE)


def test_heic_is_accepted() -> None:
    if not pillow_heif.libheif_info().get("HEIF"):
        pytest.skip("this pillow-heif build has no HEVC encoder, so no HEIC test file can be made in memory")
    prepared = prepare_image(encode_heic(halves(300, 200, RED, BLUE)))
    assert_valid(prepared)
    assert (prepared.width, prepared.height) == (308, 196)
    image = decoded(prepared)
    assert near(image.getpixel((40, 100)), RED, tolerance=50)
    assert near(image.getpixel((260, 100)), BLUE, tolerance=50)


def test_animated_gif_uses_the_first_frame() -> None:
    frames = [Image.new("RGB", (120, 90), colour) for colour in (RED, BLUE, BLUE)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    prepared = prepare_image(data)
    assert_valid(prepared)
    assert near(decoded(prepared).getpixel((60, 45)), RED)


def test_animated_webp_uses_the_first_frame() -> None:
    frames = [Image.new("RGB", (120, 90), colour) for colour in (RED, BLUE)]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100, lossless=True)
    assert near(decoded(prepare_image(data)).getpixel((60, 45)), RED)


def test_format_is_sniffed_from_bytes_not_trusted_from_a_name() -> None:
    # A PNG is a PNG whatever it is called; the caller never passes a name at all.
    assert_valid(prepare_image(encode(halves(100, 100, RED, BLUE), "PNG")))


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n", id="pdf"),
        pytest.param(b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 40, id="zip"),
        pytest.param(b"<!DOCTYPE html><html><head><title>Slack</title></head></html>", id="html-doctype"),
        pytest.param(b"<html><body>Sign in to Slack</body></html>", id="html"),
        pytest.param(b"just some text\n", id="text"),
        pytest.param(b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', id="svg"),
        pytest.param(b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1", id="avif"),
    ],
)
def test_other_files_are_not_images(data: bytes) -> None:
    with pytest.raises(ImageRejected) as caught:
        prepare_image(data)
    assert caught.value.reason == NOT_AN_IMAGE


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "ICO"])
def test_formats_pillow_reads_but_we_do_not_accept_are_not_images(fmt: str) -> None:
    with pytest.raises(ImageRejected) as caught:
        prepare_image(encode(Image.new("RGB", (32, 32), RED), fmt))
    assert caught.value.reason == NOT_AN_IMAGE


# --- size limits ----------------------------------------------------------------------------------


def png_declaring(width: int, height: int) -> bytes:
    """A valid 1×1 PNG whose IHDR (with a correct CRC) claims ``width``×``height``: no pixels behind it."""
    data = bytearray(encode(Image.new("RGB", (1, 1)), "PNG"))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small baseline JPEG whose start-of-frame claims ``width``×``height``."""
    data = bytearray(encode(Image.new("RGB", (16, 16), RED), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.mark.parametrize("data", [png_declaring(20_000, 20_000), jpeg_declaring(20_000, 20_000)])
def test_decompression_bombs_are_rejected_from_the_header(data: bytes) -> None:
    with pytest.raises(ImageRejected) as caught:
        prepare_image(data)
    assert caught.value.reason == "it is too large to process (20000×20000 pixels)"


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP", "WEBP-lossless", "HEIC"])
def test_max_pixels_is_checked_for_every_format(fmt: str) -> None:
    image = halves(100, 80, RED, BLUE)
    if fmt == "HEIC":
        if not pillow_heif.libheif_info().get("HEIF"):
            pytest.skip(
                "this pillow-heif build has no HEVC encoder, so no HEIC test file can be made in memory"
            )
        data = encode_heic(image)
    elif fmt == "WEBP-lossless":
        data = encode(image, "WEBP", lossless=True)
    else:
        data = encode(image, fmt)
    with pytest.raises(ImageRejected) as caught:
        prepare_image(data, max_pixels=100 * 80 - 1)
    assert caught.value.reason == "it is too large to process (100×80 pixels)"
    assert_valid(prepare_image(data, max_pixels=100 * 80))


def test_pillows_global_limit_is_left_alone() -> None:
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageRejected):
        prepare_image(png_declaring(20_000, 20_000))
    prepare_image(encode(Image.new("RGB", (50, 50)), "PNG"), max_pixels=10**10)
    assert before == Image.MAX_IMAGE_PIXELS


# --- damaged files --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP"])
def test_truncated_files_are_damaged(fmt: str) -> None:
    data = encode(photo(200, 150), fmt)
    with pytest.raises(ImageRejected) as caught:
        prepare_image(data[: len(data) // 2])
    assert caught.value.reason == DAMAGED


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n",
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 30,
        b"\xff\xd8\xff",
        b"GIF89a",
        b"RIFF\x00\x00\x00\x00WEBP",
    ],
)
def test_a_bare_signature_is_damaged(data: bytes) -> None:
    with pytest.raises(ImageRejected) as caught:
        prepare_image(data)
    assert caught.value.reason == DAMAGED


def test_corrupted_bytes_only_ever_raise_image_rejected() -> None:
    rng = random.Random(7)
    original = encode(photo(120, 90), "PNG")
    for _ in range(40):
        data = bytearray(original)
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        reason = rejection_reason(bytes(data))
        assert reason is None or reason in (DAMAGED, NOT_AN_IMAGE) or "pixels" in reason


def rejection_reason(data: bytes) -> str | None:
    """None if ``data`` gave a valid image, else the rejection reason; any other exception propagates."""
    try:
        assert_valid(prepare_image(data))
    except ImageRejected as error:
        return error.reason
    return None


# --- orientation, modes, transparency -------------------------------------------------------------


def test_exif_orientation_is_applied() -> None:
    stored = halves(400, 200, RED, BLUE)  # landscape as stored; orientation 6 says "rotate 90° clockwise"
    exif = Image.Exif()
    exif[0x0112] = 6
    prepared = prepare_image(encode(stored, "JPEG", exif=exif.tobytes()))
    assert prepared.width < prepared.height
    assert (prepared.width, prepared.height) == target_size(200, 400, 1280)
    image = decoded(prepared)
    assert near(image.getpixel((prepared.width // 2, 20)), RED)  # stored left half is now on top
    assert near(image.getpixel((prepared.width // 2, prepared.height - 20)), BLUE)


def transparent_with_black_square() -> Image.Image:
    # Transparent *black* background: dropping alpha without compositing would make it all black.
    image = Image.new("RGBA", (140, 140), (0, 0, 0, 0))
    image.paste((0, 0, 0, 255), (50, 50, 90, 90))
    return image


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(encode(transparent_with_black_square(), "PNG"), id="png-rgba"),
        pytest.param(encode(transparent_with_black_square(), "WEBP", lossless=True), id="webp-rgba"),
        pytest.param(encode(transparent_with_black_square().convert("LA"), "PNG"), id="png-la"),
        pytest.param(encode(transparent_with_black_square(), "GIF"), id="gif-palette-transparency"),
    ],
)
def test_transparency_is_flattened_onto_white(data: bytes) -> None:
    prepared = prepare_image(data)
    assert_valid(prepared)
    image = decoded(prepared)
    assert near(image.getpixel((5, 5)), (255, 255, 255), tolerance=10)
    assert near(image.getpixel((70, 70)), (0, 0, 0), tolerance=10)


def test_transparency_flattened_for_jpeg_too() -> None:
    # A photo with a transparent hole: too many colours for PNG to be tried... unless the source had alpha.
    image = photo(300, 300).convert("RGBA")
    image.paste((0, 0, 0, 0), (0, 0, 100, 100))
    prepared = prepare_image(encode(image, "PNG"), max_encoded_bytes=10**9)
    assert near(decoded(prepared).getpixel((20, 20)), (255, 255, 255), tolerance=10)


def test_opaque_alpha_channel_is_not_transparency() -> None:
    prepared = prepare_image(encode(photo(300, 200).convert("RGBA"), "PNG"))
    assert prepared.mime == "image/jpeg"  # no real transparency, many colours: a photo


def test_cmyk_jpeg_becomes_rgb() -> None:
    cmyk = Image.new("CMYK", (200, 120), (0, 255, 255, 0))  # full magenta + yellow = red
    prepared = prepare_image(encode(cmyk, "JPEG"))
    assert_valid(prepared)
    assert near(decoded(prepared).getpixel((100, 60)), (255, 0, 0), tolerance=50)


def test_16_bit_grey_png_is_scaled_not_clipped() -> None:
    grey16 = Image.new("I;16", (100, 100), 32768)  # mid grey in 16 bits; clipping would give white
    prepared = prepare_image(encode(grey16, "PNG"))
    assert_valid(prepared)
    assert near(decoded(prepared).getpixel((50, 50)), (128, 128, 128), tolerance=6)


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBA", "LA", "I;16"])
def test_every_png_mode_becomes_rgb(mode: str) -> None:
    assert_valid(prepare_image(encode(halves(90, 60, RED, BLUE).convert(mode), "PNG")))


# --- resizing and encoding ------------------------------------------------------------------------


def test_large_photo_is_resized_and_fits(big_photo_png: bytes) -> None:
    prepared = prepare_image(big_photo_png)
    assert_valid(prepared)
    assert prepared.mime == "image/jpeg"
    assert (prepared.width, prepared.height) == (1260, 840)
    assert prepared.tokens == 45 * 30 + 2
    assert len(prepared.data) <= 3_500_000


def test_max_side_is_respected(big_photo_png: bytes) -> None:
    prepared = prepare_image(big_photo_png, max_side=768)
    assert (prepared.width, prepared.height) == target_size(3000, 2000, 768) == (756, 504)


def test_screenshot_keeps_the_smaller_of_png_and_jpeg() -> None:
    # Downscaled anti-aliased text: JPEG (4:4:4) is well under half the size of the PNG here.
    prepared = prepare_image(encode(screenshot(1920, 1080), "PNG"))
    assert_valid(prepared)
    assert (prepared.width, prepared.height) == (1260, 700)
    png = encode(decoded(prepared), "PNG", optimize=True)
    assert prepared.mime == "image/jpeg"
    assert len(prepared.data) < len(png)


def test_flat_graphic_is_sent_as_png() -> None:
    prepared = prepare_image(encode(flat_graphic(1120, 560), "PNG"))
    assert_valid(prepared)
    assert prepared.mime == "image/png"
    assert len(prepared.data) < len(encode(decoded(prepared), "JPEG", quality=85))


def test_encoded_size_bound_lowers_quality_first(big_photo_png: bytes) -> None:
    unbounded = prepare_image(big_photo_png)
    prepared = prepare_image(big_photo_png, max_encoded_bytes=60_000)
    assert_valid(prepared)
    assert len(prepared.data) <= 60_000 < len(unbounded.data)
    assert (prepared.width, prepared.height) == (unbounded.width, unbounded.height)


def test_encoded_size_bound_then_shrinks_the_image(big_photo_png: bytes) -> None:
    # Even quality 50 of the 1260x840 version is over 20 kB for this picture.
    prepared = prepare_image(big_photo_png, max_encoded_bytes=20_000)
    assert_valid(prepared)
    assert len(prepared.data) <= 20_000
    assert prepared.width < 1260
    assert prepared.width / prepared.height == pytest.approx(1.5, rel=0.1)


def test_size_bound_that_cannot_be_met_is_rejected() -> None:
    with pytest.raises(ImageRejected) as caught:
        prepare_image(encode(photo(300, 200), "PNG"), max_encoded_bytes=100)
    assert caught.value.reason == TOO_BIG_TO_SEND


# --- metadata and output form ---------------------------------------------------------------------


def exif_with_gps() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0)}  # GPS IFD: latitude ref and latitude
    return exif


@pytest.mark.parametrize(
    ("source", "expected_mime"),
    [
        pytest.param(
            lambda: encode(photo(300, 200), "JPEG", exif=exif_with_gps().tobytes(), comment=b"secret"),
            "image/jpeg",
            id="jpeg",
        ),
        pytest.param(
            lambda: encode(flat_graphic(280, 280), "PNG", exif=exif_with_gps().tobytes()),
            "image/png",
            id="png",
        ),
    ],
)
def test_output_has_no_metadata(source: Callable[[], bytes], expected_mime: str) -> None:
    data = source()
    assert b"PhoneMaker" in data
    prepared = prepare_image(data)
    assert prepared.mime == expected_mime
    assert b"PhoneMaker" not in prepared.data
    assert b"Exif" not in prepared.data
    assert b"secret" not in prepared.data
    image = decoded(prepared)
    assert len(image.getexif()) == 0
    assert not {"exif", "comment", "icc_profile"} & set(image.info)


def test_data_url_round_trips() -> None:
    prepared = prepare_image(encode(photo(300, 200), "PNG"))
    prefix = f"data:{prepared.mime};base64,"
    url = prepared.data_url()
    assert url.startswith(prefix)
    assert base64.b64decode(url[len(prefix) :], validate=True) == prepared.data


def test_prepared_image_is_immutable() -> None:
    prepared = prepare_image(encode(photo(100, 100), "PNG"))
    with pytest.raises(AttributeError):
        prepared.width = 1  # type: ignore[misc]


# --- bounded memory -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P", "1", "I;16"])
def test_shrinking_in_strips_equals_shrinking_whole(mode: str) -> None:
    """The strip-by-strip reduction gives exactly the pixels of converting and reducing the whole."""
    base = Image.effect_noise((1000, 900), 64).convert("L")
    image = Image.merge(
        "RGBA", (base, base.rotate(90), base.transpose(Image.Transpose.FLIP_LEFT_RIGHT), base)
    )
    image = (
        image.convert(mode) if mode != "I;16" else base.convert("I").point(lambda v: v * 200).convert(mode)
    )
    strips = decode._reduced(image, max_side=112)
    whole = image.convert(decode._REDUCIBLE_AS.get(mode, mode)).reduce(4)
    assert strips.size == whole.size == (250, 225)
    assert strips.tobytes() == whole.tobytes()


def test_decode_budget_refuses_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """A picture whose full decode would pass the budget is refused from its header; a cheaper mode of
    the same size passes (a palette picture takes a quarter of the memory of an RGBA one)."""
    monkeypatch.setattr(decode, "DECODE_BUDGET_BYTES", 1_000_000)
    rgba = Image.new("RGBA", (600, 600), (10, 20, 30, 128))
    with pytest.raises(ImageRejected, match=r"too large to process \(600×600 pixels\)"):
        prepare_image(_png(rgba))
    assert prepare_image(_png(rgba.convert("P"))).width > 0


def test_decoders_that_copy_get_lower_ceilings() -> None:
    """WebP and HEIF decoders hold several copies of the picture: their ceilings are lower."""
    size = (4000, 2500)
    assert decode.decode_cost(size, "RGB", "PNG") == 40_000_000
    assert decode.decode_cost(size, "RGB", "WEBP") == 200_000_000
    assert decode.decode_cost(size, "RGB", "HEIF") == 140_000_000
    assert decode.decode_cost(size, "P", "GIF") == 10_000_000


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
