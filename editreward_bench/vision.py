"""Image arithmetic shared by the backends: qwen-vl-utils' resize, and lossless or JPEG data URLs.

Pure PIL (no torch): the OpenAI-compatible backend resizes images before sending them to
a local server exactly as the local backend resizes them before its processor.
"""

from __future__ import annotations

import base64
import math
from io import BytesIO
from typing import TYPE_CHECKING, Literal

from .png import png_bytes

if TYPE_CHECKING:
    from PIL import Image as PILImage

#: qwen-vl-utils' image bounds, in vision tokens of (patch * merge)^2 pixels.
MIN_IMAGE_TOKENS = 4
MAX_IMAGE_TOKENS = 16384
#: qwen-vl-utils' default factor (patch 14 x merge 2), the one upstream's vLLM path uses.
QWEN25_FACTOR = 28
DEFAULT_MIN_PIXELS = MIN_IMAGE_TOKENS * QWEN25_FACTOR * QWEN25_FACTOR
DEFAULT_MAX_PIXELS = MAX_IMAGE_TOKENS * QWEN25_FACTOR * QWEN25_FACTOR
MAX_ASPECT_RATIO = 200
ImageFormat = Literal["jpeg", "png"]


def smart_resize(
    height: int,
    width: int,
    factor: int = QWEN25_FACTOR,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[int, int]:
    """(height, width), multiples of ``factor`` with an area in [min_pixels, max_pixels].

    The same arithmetic as ``qwen_vl_utils.vision_process.smart_resize``.
    """
    if min(height, width) <= 0:
        raise ValueError(f"image has no pixels ({width}x{height})")
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise ValueError(
            f"absolute aspect ratio must be smaller than {MAX_ASPECT_RATIO}, "
            f"got {max(height, width) / min(height, width)}"
        )
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def resize_image(
    image: PILImage.Image,
    factor: int = QWEN25_FACTOR,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> PILImage.Image:
    """``qwen_vl_utils.fetch_image`` for a PIL image: RGB, then PIL's default resampling."""
    image = image if image.mode == "RGB" else image.convert("RGB")
    height, width = smart_resize(image.height, image.width, factor, min_pixels, max_pixels)
    return image.resize((width, height))


def encode_data_url(image: PILImage.Image, image_format: ImageFormat = "jpeg") -> str:
    """A base64 data URL of the image: JPEG at PIL's default quality (upstream's API path)
    or lossless PNG (what a local model sees when handed the PIL image; see ``png``)."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    if image_format == "png":
        data = png_bytes(rgb)
    elif image_format == "jpeg":
        buf = BytesIO()
        rgb.save(buf, format="JPEG")
        data = buf.getvalue()
    else:
        raise ValueError(f"unknown image format {image_format!r}")
    return f"data:image/{image_format};base64," + base64.b64encode(data).decode("ascii")
