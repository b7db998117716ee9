"""Tiny synthetic images for the adapters' bundled benchmarks.

A source image is a flat background with a grey square; an edit paints the square in a
colour whose brightness is the edit's hidden *quality* (0..1), so a judge that prefers
the brighter square agrees with the synthetic labels, and every edit's pixels differ.
Everything is deterministic (PNG bytes included), so a synthetic benchmark's fingerprint
never changes.
"""

from __future__ import annotations

import hashlib
from io import BytesIO

from PIL import Image, ImageDraw

SIZE = 32


def _rgb(name: str) -> tuple[int, int, int]:
    d = hashlib.sha256(name.encode()).digest()
    return (60 + d[0] % 120, 60 + d[1] % 120, 60 + d[2] % 120)


def _png(img: Image.Image) -> bytes:
    buf = BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def source_png(scene: str) -> bytes:
    img = Image.new("RGB", (SIZE, SIZE), _rgb(scene))
    ImageDraw.Draw(img).rectangle((8, 8, 23, 23), fill=(128, 128, 128))
    return _png(img)


def edit_png(scene: str, quality: float, variant: str) -> bytes:
    """An edit of ``scene``: the square painted with brightness ``quality``; ``variant``
    moves one marker pixel so that two edits of equal quality still differ."""
    img = Image.new("RGB", (SIZE, SIZE), _rgb(scene))
    level = int(30 + 200 * max(0.0, min(1.0, quality)))
    draw = ImageDraw.Draw(img)
    draw.rectangle((8, 8, 23, 23), fill=(level, level, level))
    d = hashlib.sha256(variant.encode()).digest()
    img.putpixel((d[0] % SIZE, 30 + d[1] % 2), (d[2], d[3], d[4]))
    return _png(img)


def brightness(img: Image.Image) -> float:
    """The mean brightness of the centre square: the synthetic edits' quality, recovered."""
    return float(sum(img.convert("L").crop((8, 8, 24, 24)).getdata())) / 256.0
