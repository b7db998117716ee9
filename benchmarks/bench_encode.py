"""Cost of encoding one image for an OpenAI-compatible request: JPEG, erb's PNG, PIL's PNG.

The served cards send PNG (lossless, as upstream hands vLLM the image) after the
qwen-vl-utils resize, written by ``editreward_bench.png`` (the "Up" filter, deflated by
ISA-L, or by zlib where ``isal`` is not installed); PIL's own PNG encoder at levels 1 and 6
is measured beside it. The API cards send JPEG at PIL's default quality. Each image is
encoded once per run. Two kinds of 1024 px image: a synthetic scene (flat shapes, as
``erb data synth`` draws them) and a photo-like texture (blurred noise over a gradient,
which compresses about as badly as a photograph). Prints milliseconds per image
(median of ``--repeat``) and the encoded size, and the resize alone, and writes them as JSON.

    python benchmarks/bench_encode.py --out benchmarks/results/encode.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from io import BytesIO
from pathlib import Path
from random import Random
from typing import Any

from PIL import Image, ImageFilter


def synthetic(size: int) -> Image.Image:
    from editreward_bench.synth import make_task, render

    return render(make_task("subject-add", Random(0)).source, size).convert("RGB")


def photo_like(size: int) -> Image.Image:
    noise = Image.effect_noise((size, size), 60).filter(ImageFilter.GaussianBlur(1.2))
    gradient = Image.linear_gradient("L").resize((size, size))
    return Image.merge("RGB", (noise, gradient, Image.blend(noise, gradient, 0.5)))


def encoders() -> dict[str, Any]:
    def save(image: Image.Image, **kw: Any) -> bytes:
        buf = BytesIO()
        image.save(buf, **kw)
        return buf.getvalue()

    from editreward_bench import png

    return {
        "jpeg (PIL default quality)": lambda im: save(im, format="JPEG"),
        f"png, erb ({png.DEFLATE})": png.png_bytes,
        "png, erb (zlib level 1)": lambda im: png.png_bytes(im, png.zlib_deflate),
        "png, PIL compress_level 1": lambda im: save(im, format="PNG", compress_level=1),
        "png, PIL default (6)": lambda im: save(im, format="PNG"),
    }


def measure(image: Image.Image, encode: Any, repeat: int) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        size = len(encode(image))
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from editreward_bench.vision import resize_image

    rows = []
    for kind, make in (("synthetic scene", synthetic), ("photo-like", photo_like)):
        original = make(args.size)
        ms, _ = measure(original, lambda im: resize_image(im).tobytes()[:0], args.repeat)
        rows.append({"image": kind, "resize": "qwen-vl-utils resize", "size": list(original.size),
                     "encoding": "-", "ms": round(ms, 1), "kib": 0})  # fmt: skip
        for label, image in (("as is", original), ("pre-resized", resize_image(original))):
            for name, encode in encoders().items():
                ms, nbytes = measure(image, encode, args.repeat)
                rows.append({"image": kind, "resize": label, "size": list(image.size),
                             "encoding": name, "ms": round(ms, 1), "kib": nbytes // 1024})  # fmt: skip
    print(f"{'image':<16} {'resize':<21} {'encoding':<28} {'ms':>7} {'KiB':>7}")
    for r in rows:
        print(f"{r['image']:<16} {r['resize']:<21} {r['encoding']:<28} {r['ms']:>7} {r['kib']:>7}")
    if args.out:
        args.out.write_text(json.dumps({"python": platform.python_version(), "rows": rows},
                                       indent=2) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
