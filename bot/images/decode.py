"""Turn an uploaded file into an image glm-4.5v can take: checked, upright, resized, re-encoded, no metadata.

``prepare_image`` is CPU-bound (decode, resize, encode: tens to hundreds of milliseconds for a photo), so
async callers should run it in a worker thread (``asyncio.to_thread``). It does no network or store I/O.

Every failure a user could cause raises ``ImageRejected`` whose ``reason`` completes the sentence
"I couldn't use NAME: ...". Accepted inputs are PNG, JPEG, GIF and WebP (first frame of animations) and
HEIC/HEIF; the output is always an RGB JPEG or PNG whose sides are multiples of 28, so the server does
not resize it again and ``tokens`` is the exact count.
"""

from __future__ import annotations

import base64
import functools
import io
import struct
import zlib
from dataclasses import dataclass

from PIL import Image, ImageOps

from bot.core.errors import ImageRejected
from bot.images.tokens import PATCH, image_tokens, target_size

NOT_AN_IMAGE = "it is not an image (PNG, JPEG, GIF, WebP or HEIC)"
DAMAGED = "the file is damaged or not a complete image"
TOO_BIG_TO_SEND = "it is too large to send, even after shrinking it"

JPEG_QUALITIES = (85, 75, 65, 50)
"""Tried in order until the encoding fits; below 50, shrinking the picture loses less than blocking does."""

SHRINK_FACTOR = 0.75
"""When even the lowest quality is too big, the long side shrinks by this factor and we try again."""

GRAPHIC_MAX_COLOURS = 4096
"""Images with at most this many distinct colours are screenshots or drawings: PNG is tried too."""

_COLOUR_SAMPLE_PIXELS = 1_000_000
"""Colours are counted on a nearest-neighbour sample of at most this many pixels (exact colours, cheap)."""

_WHITE = (255, 255, 255)

DECODE_BUDGET_BYTES = 200 * 2**20
"""Memory one decode may take for its full-size pixels (``python -m bench.images`` measures the peaks).

JPEG decodes at a reduced scale (libjpeg's DCT scaling, ``Image.draft``), so only its reduced size
counts; PNG, GIF, WebP and HEIF decode in full, so their largest accepted size depends on how many bytes
a pixel takes in memory (Pillow keeps most modes in 4 bytes a pixel) and on the decoder's own copies.
The full-size picture is then shrunk strip by strip, so no second full-size copy is ever made. 200 MiB
admits a 40-megapixel RGB or RGBA PNG, a 15-megapixel HEIC and a 10-megapixel WebP picture."""

# Bytes per pixel Pillow allocates for a mode (others: 4), and the mode a picture is converted to before
# it can be shrunk with ``Image.reduce`` (which refuses palette, bilevel and 16-bit modes).
_PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
_REDUCIBLE_AS = {"1": "L", "P": "RGBA", "PA": "RGBA", "I;16": "I", "I;16L": "I", "I;16B": "I", "I;16N": "I"}
# Peak memory of a full decode as a multiple of the picture's own pixels, measured with
# ``python -m bench.images``: Pillow's WebP decoder copies libwebp's buffer more than once, and
# pillow-heif keeps libheif's planes and its own buffer beside the picture.
_DECODE_COPIES = {"WEBP": 5.0, "HEIF": 3.5}
_STRIP_BYTES = 8 * 2**20
"""Size of the strips a large picture is shrunk in."""

# ISO-BMFF major brands of HEIC/HEIF stills and sequences (the ones pillow-heif opens; AVIF is not built in).
_HEIF_BRANDS = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"}
)
# JPEG start-of-frame markers (C4, C8 and CC are other segments) and markers that carry no length field.
_JPEG_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xDA)})

# What Pillow and pillow-heif raise on bad data; anything else is a bug and should surface as one.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error)


@dataclass(frozen=True, slots=True)
class PreparedImage:
    """An image ready to put in a chat message as a data URL."""

    mime: str
    data: bytes
    width: int
    height: int
    tokens: int

    def data_url(self) -> str:
        """``data:<mime>;base64,<data>``, the form every OpenAI-compatible backend accepts."""
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


def prepare_image(
    data: bytes,
    max_side: int = 1280,
    max_pixels: int = 40_000_000,
    max_encoded_bytes: int = 3_500_000,
) -> PreparedImage:
    """Check, decode, straighten, resize and re-encode ``data``; raise ``ImageRejected`` if it can't be used.

    ``max_pixels`` bounds the decoded size (checked from the header, before any pixel is decoded);
    ``max_encoded_bytes`` bounds the returned ``data`` (quality, then size, is lowered until it fits).
    """
    fmt = sniff_format(data)
    declared = declared_size(data, fmt)
    if declared is not None:
        _check_pixels(declared, max_pixels)
    image, transparent = _decode(data, fmt, max_pixels, max_side)
    # A lossless source with real transparency is almost always a drawing or a cut-out: worth a PNG try.
    graphic_hint = transparent and fmt in ("PNG", "GIF", "WEBP")
    return _encode_within(image, max_side, max_encoded_bytes, graphic_hint)


def sniff_format(data: bytes) -> str:
    """The Pillow format name for ``data``, judged from its first bytes, never from a file name."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return "HEIF"
    raise ImageRejected(NOT_AN_IMAGE)


def declared_size(data: bytes, fmt: str) -> tuple[int, int] | None:
    """Width and height as the header declares them, without decoding; None if not found here.

    Pillow's own bomb check uses a process-wide limit and, for WebP, runs only after the canvas is
    allocated, so the limit the caller asked for is checked on the raw header first.
    """
    try:
        if fmt == "PNG" and data[12:16] == b"IHDR":
            width, height = struct.unpack(">II", data[16:24])
            return width, height
        if fmt == "GIF":
            width, height = struct.unpack("<HH", data[6:10])
            return width, height
        if fmt == "WEBP":
            return _webp_size(data)
        if fmt == "JPEG":
            return _jpeg_size(data)
    except struct.error:
        return None  # too short to hold a header: decoding will report it as damaged
    return None  # HEIF keeps its size deep in nested boxes; it is checked once pillow-heif has parsed it


def _webp_size(data: bytes) -> tuple[int, int] | None:
    """Canvas size from the first WebP chunk (extended, lossy or lossless layout)."""
    chunk = data[12:16]
    if chunk == b"VP8X":  # 24-bit little-endian width-1 and height-1
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":  # 14-bit sides after the key-frame start code
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and data[20:21] == b"\x2f":  # two 14-bit fields packed after the signature byte
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Size from the first start-of-frame segment, walking the marker segments that precede it."""
    pos = 2
    while pos + 9 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
        elif marker in _JPEG_SOF_MARKERS:
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        elif marker in _JPEG_STANDALONE_MARKERS:
            pos += 2
        else:
            pos += 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]
    return None


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise ImageRejected(f"it is too large to process ({width}×{height} pixels)")


@functools.cache
def _register_heif() -> None:
    """Teach Pillow to open HEIC/HEIF, once, on first use: loading libheif costs ~25 ms at import."""
    from pillow_heif import register_heif_opener  # imported here, not at the top: see above

    register_heif_opener()


def _decode(data: bytes, fmt: str, max_pixels: int, max_side: int) -> tuple[Image.Image, bool]:
    """The first frame, upright and flattened to RGB, and whether it had real transparency."""
    if fmt == "HEIF":
        _register_heif()
    try:
        # formats=[fmt]: only the plugin the bytes claim to be gets to parse them.
        with Image.open(io.BytesIO(data), formats=[fmt]) as source:
            _check_pixels(source.size, max_pixels)  # HEIF's first size check; GIF frames may extend it
            if fmt == "JPEG":
                # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when that is still at least the target size.
                source.draft(None, target_size(*source.size, max_side))
            _check_memory(source, fmt)
            source.load()
            # Shrink first, while the picture is the only full-size copy; turning and flattening then
            # work on the small one.
            upright = ImageOps.exif_transpose(_reduced(source, max_side))
        return _flatten(upright)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        # Pillow's process-wide backstop fired (only if someone lowered Image.MAX_IMAGE_PIXELS).
        raise ImageRejected("it is too large to process") from error
    except _DECODE_ERRORS as error:  # UnidentifiedImageError is an OSError
        raise ImageRejected(DAMAGED) from error


def decode_cost(size: tuple[int, int], mode: str, fmt: str) -> int:
    """Bytes a full-size decode of a ``fmt`` picture in ``mode`` of ``size`` takes at its peak."""
    width, height = size
    return int(width * height * _PIXEL_BYTES.get(mode, 4) * _DECODE_COPIES.get(fmt, 1.0))


def _check_memory(source: Image.Image, fmt: str) -> None:
    """Refuse a picture whose full-size decode would pass ``DECODE_BUDGET_BYTES`` (header only, no pixels)."""
    if decode_cost(source.size, source.mode, fmt) > DECODE_BUDGET_BYTES:
        width, height = source.size
        raise ImageRejected(f"it is too large to process ({width}×{height} pixels)")


def _reduced(image: Image.Image, max_side: int) -> Image.Image:
    """``image`` shrunk by a whole factor to no less than twice the target size (box filter), in a mode
    ``Image.reduce`` accepts; the caller's final resize then has room to filter well.

    A large picture is converted and shrunk one strip at a time: converting it whole, or reducing an RGBA
    picture (Pillow premultiplies its alpha into a full copy first), would double the memory it takes.
    """
    mode = _REDUCIBLE_AS.get(image.mode, image.mode)
    width, height = target_size(image.width, image.height, max_side)
    factor = min(image.width // (2 * width), image.height // (2 * height))
    if factor < 2:
        return image.convert(mode) if mode != image.mode else image
    out = Image.new(mode, (-(-image.width // factor), -(-image.height // factor)))
    rows = max(1, _STRIP_BYTES // (image.width * 4 * factor)) * factor  # whole boxes per strip
    for top in range(0, image.height, rows):
        strip = image.crop((0, top, image.width, min(image.height, top + rows)))
        out.paste(strip.convert(mode).reduce(factor), (0, top // factor))
    out.info = image.info  # EXIF orientation is applied next
    return out


def _flatten(image: Image.Image) -> tuple[Image.Image, bool]:
    """``image`` as RGB, transparent areas painted white, and whether there were any."""
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        # Pillow clips 16-bit values to 255 when converting, which would turn most of the picture white.
        image = image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    has_alpha = "A" in image.getbands() or "a" in image.getbands() or "transparency" in image.info
    if not has_alpha:
        return image.convert("RGB"), False
    rgba = image.convert("RGBA")
    alpha = rgba.getchannel("A")
    lowest_alpha, _ = alpha.getextrema()
    if lowest_alpha == 255:  # an alpha channel that is opaque everywhere is not transparency
        return rgba.convert("RGB"), False
    # The server drops alpha without compositing, which shows whatever colour hides under transparent
    # pixels (often black, so black text vanishes); white is what the user saw in Slack.
    flat = Image.new("RGB", rgba.size, _WHITE)
    flat.paste(rgba, mask=alpha)
    return flat, True


def _encode_within(image: Image.Image, max_side: int, max_bytes: int, graphic_hint: bool) -> PreparedImage:
    """Resize and encode ``image``, shrinking it until the encoding fits in ``max_bytes``."""
    graphic = graphic_hint or _few_colours(image)
    side = max_side
    while True:
        size = target_size(image.width, image.height, side)
        resized = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
        resized.info = {}  # resize copies info (EXIF, ICC, comments); the output must carry no metadata
        prepared = _smallest_encoding(resized, graphic, max_bytes)
        if prepared is not None:
            return prepared
        if max(size) <= PATCH:
            raise ImageRejected(TOO_BIG_TO_SEND)
        side = max(PATCH, int(max(size) * SHRINK_FACTOR))


def _few_colours(image: Image.Image) -> bool:
    """Whether ``image`` looks like a screenshot or drawing (few distinct colours)."""
    step = max(1, int((image.width * image.height / _COLOUR_SAMPLE_PIXELS) ** 0.5))
    # Nearest-neighbour keeps colours exact; any smoothing filter would invent blended ones.
    sample_size = (max(1, image.width // step), max(1, image.height // step))
    sample = image.resize(sample_size, Image.Resampling.NEAREST)
    return sample.getcolors(maxcolors=GRAPHIC_MAX_COLOURS) is not None


def _smallest_encoding(image: Image.Image, graphic: bool, max_bytes: int) -> PreparedImage | None:
    """The smallest of PNG (for graphics) and JPEG at falling quality that fits ``max_bytes``, if any."""
    candidates = [_encode(image, "PNG")] if graphic else []
    for quality in JPEG_QUALITIES:
        # 4:4:4 chroma keeps coloured text in screenshots legible; photos lose nothing visible at 4:2:0.
        candidates.append(_encode(image, "JPEG", quality=quality, subsampling=0 if graphic else 2))
        fitting = [candidate for candidate in candidates if len(candidate.data) <= max_bytes]
        if fitting:
            return min(fitting, key=lambda candidate: len(candidate.data))
    return None


def _encode(image: Image.Image, fmt: str, **options: int) -> PreparedImage:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, optimize=True, **options)
    return PreparedImage(
        mime=f"image/{fmt.lower()}",
        data=buffer.getvalue(),
        width=image.width,
        height=image.height,
        tokens=image_tokens(image.width, image.height),
    )
