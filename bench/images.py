"""Peak memory of one image decode: the worst accepted picture of each format, each in a fresh process.

``python -m bench.images [--keep DIR]``

For every format the bot accepts, the largest picture ``prepare_image`` still takes (the 40-megapixel
ceiling, or the smaller one ``DECODE_BUDGET_BYTES`` sets for formats that decode in full), drawn with
smooth content so the file stays under the 20 MB download limit, as the 39.7-megapixel 1.27 MB PNG that
once took the process to 724 MB did. Each is decoded in a new ``python`` process, which prints its
peak RSS (``VmHWM``, reset through ``/proc/self/clear_refs`` after start-up) before and after the
decode. Printed: a markdown table for the README.
Pictures larger still are shown to be refused. Nothing touches the network.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from bot.images.decode import DECODE_BUDGET_BYTES, decode_cost

MAX_PIXELS = 40_000_000
MAX_DOWNLOAD_BYTES = 20 * 2**20

_PROBE = """
import json, sys
from bot.images.decode import prepare_image
from bot.core.errors import ImageRejected

def peak_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

data = open(sys.argv[1], "rb").read()
with open("/proc/self/clear_refs", "w") as refs:
    refs.write("5")  # reset the peak to the present RSS (a fork counts its parent's pages)
before = peak_kb()
try:
    prepared = prepare_image(data)
    outcome = f"{prepared.width}x{prepared.height} {prepared.mime}"
except ImageRejected as rejected:
    outcome = "refused: " + rejected.reason
after = peak_kb()
print(json.dumps({"before_kb": before, "after_kb": after, "outcome": outcome}))
"""


@dataclass(frozen=True)
class Case:
    """One picture: its format and Pillow mode, and its size."""

    label: str
    fmt: str
    mode: str
    size: tuple[int, int]


def worst_cases() -> list[Case]:
    """The largest accepted picture per format and mode, and one just past each ceiling."""
    shapes = [
        ("PNG RGBA", "PNG", "RGBA"),
        ("PNG palette", "PNG", "P"),
        ("PNG 16-bit grey", "PNG", "I;16"),
        ("GIF", "GIF", "P"),
        ("WebP RGB", "WEBP", "RGB"),
        ("HEIC RGB", "HEIF", "RGB"),
        ("JPEG RGB", "JPEG", "RGB"),
    ]
    cases = []
    for label, fmt, mode in shapes:
        pixels = MAX_PIXELS
        while decode_cost(_shape(pixels), mode, fmt) > DECODE_BUDGET_BYTES:
            pixels -= 250_000
        cases.append(Case(label, fmt, mode, _shape(pixels)))
        if pixels < MAX_PIXELS:
            cases.append(Case(f"{label}, over its ceiling", fmt, mode, _shape(pixels + 1_000_000)))
    return cases


def _shape(pixels: int) -> tuple[int, int]:
    """A 3:2 picture of about ``pixels`` pixels, its long side within WebP's 16,383."""
    height = int((pixels / 1.5) ** 0.5)
    width = min(16_383, pixels // height)
    return width, pixels // width


def draw(case: Case) -> bytes:
    """The picture as a file: a smooth gradient (small file, full decode)."""
    width, height = case.size
    base = Image.linear_gradient("L").resize((width, height), Image.Resampling.BILINEAR)
    if case.mode == "RGBA":
        picture = Image.merge("RGBA", (base, base.rotate(90), base, base))
    elif case.mode == "I;16":
        picture = base.convert("I").point(lambda value: value * 256).convert("I;16")
    elif case.mode == "P":
        picture = base.convert("P")
    else:
        picture = Image.merge("RGB", (base, base, base))
    if case.fmt == "HEIF":
        from pillow_heif import register_heif_opener  # only needed to write the HEIC test picture

        register_heif_opener()
    buffer = io.BytesIO()
    options = {"quality": 90} if case.fmt in ("JPEG", "WEBP") else {}
    picture.save(buffer, format=case.fmt, **options)
    return buffer.getvalue()


def measure(path: Path) -> dict[str, object]:
    """Decode ``path`` in a fresh process; its peak RSS before and after, and the outcome."""
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path)], capture_output=True, text=True, timeout=300, check=True
    )
    data: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--keep", type=Path, help="write the pictures here (default: a temporary dir)")
    args = parser.parse_args(argv)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="glmbot-images-"))
    folder.mkdir(parents=True, exist_ok=True)
    print("| picture | pixels | file MB | peak RSS before MB | peak RSS after MB | decode MB | outcome |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for case in worst_cases():
        data = draw(case)
        path = folder / f"{case.label.replace(' ', '_').replace(',', '')}.{case.fmt.lower()}"
        path.write_bytes(data)
        if len(data) > MAX_DOWNLOAD_BYTES:
            pixels, megabytes = case.size[0] * case.size[1], len(data) / 2**20
            print(f"| {case.label} | {pixels:,} | {megabytes:.1f} | | | | over the download limit |")
            continue
        got = measure(path)
        before, after = int(str(got["before_kb"])) / 1024, int(str(got["after_kb"])) / 1024
        pixels = case.size[0] * case.size[1]
        print(
            f"| {case.label} | {pixels:,} | {len(data) / 2**20:.1f} | {before:.0f} | {after:.0f} "
            f"| {after - before:.0f} | {got['outcome']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
