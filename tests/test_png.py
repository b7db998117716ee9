"""erb's PNG writer: every image decodes, with PIL, to exactly the pixels it was given.

A server only ever sees the decoded pixels, so that is the whole contract; the served-request
tests (``test_served_requests.py``) check the same pixels arrive at a server end to end.
"""

from __future__ import annotations

from io import BytesIO

import numpy as np
import pytest
from PIL import Image

from editreward_bench import png
from editreward_bench.png import png_bytes
from editreward_bench.rewards.client import encode_image
from editreward_bench.vision import encode_data_url


def decoded(data: bytes) -> Image.Image:
    with Image.open(BytesIO(data)) as image:
        assert image.format == "PNG"
        image.load()
        return image.copy()


def same_pixels(a: Image.Image, b: Image.Image) -> bool:
    return a.mode == b.mode and a.size == b.size and np.array_equal(np.asarray(a), np.asarray(b))


def images() -> list[Image.Image]:
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    # Rows that differ by wrapping amounts (255 above 0 and back) exercise the modulo of "Up".
    stripes = np.zeros((9, 4, 3), dtype=np.uint8)
    stripes[1::2] = 255
    ramp = (np.arange(64 * 80 * 3) % 256).astype(np.uint8).reshape(64, 80, 3)
    return [
        Image.fromarray(noise),
        Image.fromarray(stripes),
        Image.fromarray(ramp),
        Image.fromarray(noise[:1]),  # one row: nothing above it
        Image.fromarray(noise[:, :1]),  # one column
        Image.fromarray(noise[:1, :1]),
        Image.fromarray(noise[..., 0]),  # greyscale
        Image.effect_noise((300, 211), 60).convert("RGB"),
    ]


@pytest.mark.parametrize("index", range(8))
def test_pixels_survive_the_round_trip(index: int) -> None:
    image = images()[index]
    assert same_pixels(decoded(png_bytes(image)), image)


@pytest.mark.parametrize("mode", ["RGBA", "P", "1", "LA", "I;16", "CMYK"])
def test_other_modes_are_sent_as_their_rgb(mode: str) -> None:
    rng = np.random.default_rng(3)
    image = Image.fromarray(rng.integers(0, 256, (21, 17, 3), dtype=np.uint8)).convert(mode)
    back = decoded(png_bytes(image))
    assert back.mode == "RGB" and same_pixels(back, image.convert("RGB"))


def test_zlib_fallback_gives_the_same_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ``isal`` installed the stdlib deflates; the file is still a valid PNG."""
    used: list[int] = []

    def deflate(data: memoryview) -> bytes:
        used.append(1)
        return png.zlib_deflate(data)

    monkeypatch.setattr(png, "_deflate", deflate)  # as if isal were missing
    for image in images():
        assert same_pixels(decoded(png_bytes(image)), image)
        assert same_pixels(decoded(png_bytes(image, png.zlib_deflate)), image)
    assert len(used) == len(images())


def test_pillow_agrees_on_the_pixels_of_its_own_png() -> None:
    """The bytes differ from PIL's encoder (another filter and deflater); the pixels do not."""
    image = images()[-1]
    buf = BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    ours = png_bytes(image)
    assert ours != buf.getvalue()
    assert same_pixels(decoded(ours), decoded(buf.getvalue()))


def test_both_senders_use_the_writer() -> None:
    """The backend's data URLs and the reward client's images are this writer's bytes."""
    import base64

    image = images()[0]
    url = encode_data_url(image, "png")
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == png_bytes(image)
    assert base64.b64decode(encode_image(image, "png")) == png_bytes(image)
    assert base64.b64decode(encode_image(np.asarray(image), "png")) == png_bytes(image)


@pytest.mark.parametrize("size", [(0, 0), (5, 0), (0, 5)])
def test_an_empty_image_is_refused_by_name(size: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match=r"image has no pixels \(\d+x\d+\)"):
        png_bytes(Image.new("RGB", size))
