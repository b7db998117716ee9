"""A local OpenAI-compatible server that answers like a pairwise judge with a position bias
you control (tests, and trying pairwise runs without a GPU).

A request carries three images: the source, the edit shown first (A) and the edit shown
second (B). The server's own opinion prefers the edit whose centre square is brighter (the
synthetic benchmarks' hidden quality; :func:`editreward_bench.benchmarks.synthetic.brightness`),
a tie when they are within ``tie_margin``. Position bias: for a share ``bias`` of the
*unordered* pairs of edits (chosen by a hash of the two images, so both orders of one pair
agree), it answers "the one shown first" (``bias_to="first"``) or "the one shown second"
whatever the images. A biased pair then flips when its order is swapped, an unbiased one
never does, so a run in both orders must report a flip rate of exactly
``len(server.biased_pairs) / pairs``. It listens on 127.0.0.1 only::

    python -m editreward_bench.testing.fake_pairwise --port 8000 --bias 0.3
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import threading
from io import BytesIO
from typing import Any

from .fake_openai import FakeOpenAIServer


def _images(body: dict[str, Any]) -> list[str]:
    urls = []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, list):
            urls += [p["image_url"]["url"] for p in content if p.get("type") == "image_url"]
    return urls


def _brightness(url: str) -> float:
    from PIL import Image

    from ..benchmarks.synthetic import brightness

    data = base64.b64decode(url.split(",", 1)[1])
    with Image.open(BytesIO(data)) as img:
        return brightness(img)


class PairwiseFakeServer(FakeOpenAIServer):
    """:class:`FakeOpenAIServer` answering pairwise verdicts; ``biased_pairs`` holds the
    pairs it answered by position (each a frozenset of the two images' digests)."""

    def __init__(
        self,
        *,
        bias: float = 0.0,
        bias_to: str = "first",
        tie_margin: float = 2.0,
        salt: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if bias_to not in ("first", "second"):
            raise ValueError(f"bias_to must be first or second, got {bias_to!r}")
        self.bias = bias
        self.bias_to = bias_to
        self.tie_margin = tie_margin
        self.salt = salt
        self.biased_pairs: set[frozenset[str]] = set()
        self.pairs: set[frozenset[str]] = set()
        self._pairs_lock = threading.Lock()

    def is_biased(self, pair: frozenset[str]) -> bool:
        """Whether the server answers this pair by position (the same in both orders)."""
        digest = hashlib.sha256((self.salt + "".join(sorted(pair))).encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.bias

    def answer(self, body: dict[str, Any], choice: int, request_id: int = 0) -> str:
        urls = _images(body)
        if len(urls) != 3:
            return "A pairwise judge needs three images (source, A, B)."
        first, second = urls[1], urls[2]
        pair = frozenset(hashlib.sha256(u.encode()).hexdigest() for u in (first, second))
        biased = self.is_biased(pair)
        with self._pairs_lock:
            self.pairs.add(pair)
            if biased:
                self.biased_pairs.add(pair)
        if biased:
            verdict = "[[A>B]]" if self.bias_to == "first" else "[[B>A]]"
            return f"Request {request_id}: the edit shown {self.bias_to} looks better. {verdict}"
        a, b = _brightness(first), _brightness(second)
        if abs(a - b) <= self.tie_margin:
            verdict = "[[A=B=Good]]"
        else:
            verdict = "[[A>B]]" if a > b else "[[B>A]]"
        return f"Request {request_id}: comparing the squares, A={a:.0f} and B={b:.0f}. {verdict}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--bias", type=float, default=0.0)
    parser.add_argument("--bias-to", choices=("first", "second"), default="first")
    parser.add_argument("--model", action="append", dest="models")
    args = parser.parse_args()
    server = PairwiseFakeServer(
        bias=args.bias, bias_to=args.bias_to, port=args.port, models=args.models or ["fake-judge"]
    )
    print(server.url, flush=True)
    server._httpd.serve_forever()


if __name__ == "__main__":
    main()
