"""A small client for ``erb serve-reward`` (erb's base install: trainers need no extra).

Images go as base64 PNG (lossless, written by ``editreward_bench.png``) or JPEG, encoded
in a few threads, a source shared by several items once. Transport errors, 502/503/504 and
429 are retried with exponential backoff; any other error answer raises
:class:`RewardServerError` with the server's message.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from pathlib import Path
from typing import Any

from ..png import png_bytes

log = logging.getLogger("erb.reward.client")

DEFAULT_URL = "http://127.0.0.1:8080"
#: Environment variables the trainer clients read when not given a URL or token.
URL_ENV = "ERB_REWARD_URL"
TOKEN_ENV = "ERB_REWARD_TOKEN"
_RETRY_STATUS = {429, 502, 503, 504}


class RewardServerError(RuntimeError):
    """The reward server could not be reached or refused the request."""


class RewardError(RuntimeError):
    """Items got no reward and the client was told to raise (``on_error="raise"``)."""


def encode_image(image: Any, image_format: str = "png") -> str:
    """A PIL image, an HxWxC uint8 array, a path or PNG/JPEG bytes as base64."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(image)).decode("ascii")
    if isinstance(image, (str, os.PathLike)):
        return base64.b64encode(Path(image).read_bytes()).decode("ascii")
    from PIL import Image

    if not isinstance(image, Image.Image):
        import numpy as np

        array = np.asarray(image)
        if array.dtype != np.uint8:
            raise TypeError(
                f"an image array must be uint8 HxWxC, got {array.dtype} {tuple(array.shape)}"
            )
        image = Image.fromarray(array)
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    if image_format == "png":
        return base64.b64encode(png_bytes(image)).decode("ascii")
    if image_format != "jpeg":
        raise ValueError(f"image_format is 'png' or 'jpeg', not {image_format!r}")
    buf = BytesIO()
    image.save(buf, format="JPEG", quality=95)
    return base64.b64encode(buf.getvalue()).decode("ascii")


class RewardClient:
    """Posts items to ``{url}/v1/score``; the bearer token from ``token`` or ``$token_env``."""

    def __init__(
        self,
        url: str | None = None,
        *,
        token: str | None = None,
        token_env: str = TOKEN_ENV,
        timeout: float = 600.0,
        max_retries: int = 3,
        backoff: float = 1.0,
        image_format: str = "png",
        encode_threads: int = 4,
    ) -> None:
        self.url = (url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
        self.token = token if token is not None else os.environ.get(token_env)
        self.timeout = timeout
        self.max_retries = max(0, max_retries)
        self.backoff = backoff
        self.image_format = image_format
        self.encode_threads = max(1, encode_threads)

    def encode(self, images: Sequence[Any]) -> list[str]:
        """Every image as base64, each distinct object once, in a few threads."""
        distinct: dict[int, Any] = {}
        for image in images:
            distinct.setdefault(id(image), image)
        fmt = self.image_format

        def one(image: Any) -> str:
            return encode_image(image, fmt)

        with ThreadPoolExecutor(self.encode_threads) as pool:
            encoded = dict(zip(distinct, pool.map(one, distinct.values()), strict=True))
        return [encoded[id(image)] for image in images]

    def score(
        self,
        instructions: Sequence[str],
        sources: Sequence[Any],
        edited: Sequence[Any],
        groups: Sequence[str | None] | None = None,
        *,
        k: int | None = None,
        reasoning: bool = False,
    ) -> dict[str, Any]:
        """The server's answer (``results`` aligned with the inputs, ``judge``, ``diagnostics``)."""
        n = len(instructions)
        if not (len(sources) == len(edited) == n) or (groups is not None and len(groups) != n):
            raise ValueError(
                f"instructions, sources, edited images and groups must align: {n}, "
                f"{len(sources)}, {len(edited)}, {len(groups) if groups is not None else n}"
            )
        images = self.encode([*sources, *edited])
        items = []
        for i in range(n):
            item: dict[str, Any] = {
                "instruction": instructions[i], "source": images[i], "edited": images[n + i],
            }  # fmt: skip
            if groups is not None and groups[i] is not None:
                item["group"] = groups[i]
            items.append(item)
        body: dict[str, Any] = {"items": items}
        if k is not None:
            body["k"] = k
        if reasoning:
            body["reasoning"] = True
        answer = self.post("/v1/score", body)
        if len(answer.get("results", [])) != n:
            raise RewardServerError(
                f"the reward server answered {len(answer.get('results', []))} results for {n} items"
            )
        return answer

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        last = "no attempt made"
        for attempt in range(self.max_retries + 1):
            request = urllib.request.Request(
                self.url + path, data=data, headers=headers, method="POST"
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return dict(json.loads(response.read()))
            except urllib.error.HTTPError as exc:
                message = _message(exc)
                if exc.code not in _RETRY_STATUS:
                    raise RewardServerError(
                        f"{self.url}{path}: HTTP {exc.code}: {message}"
                    ) from None
                last = f"HTTP {exc.code}: {message}"
            except (OSError, ValueError) as exc:  # refused, reset, timed out, bad JSON
                last = f"{type(exc).__name__}: {exc}"
            if attempt < self.max_retries:
                delay = self.backoff * 2**attempt
                log.warning("reward server %s: %s; retrying in %.1f s", self.url, last, delay)
                time.sleep(delay)
        raise RewardServerError(
            f"{self.url}{path}: no answer after {self.max_retries + 1} attempt(s): {last}"
        )


def _message(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read()).get("error", ""))
    except (ValueError, AttributeError, OSError):
        return exc.reason if isinstance(exc.reason, str) else ""


def fill_failed(
    values: Sequence[float | None],
    groups: Sequence[str],
    errors: Sequence[str | None],
    on_error: str | float,
    what: Callable[[int], str] = lambda i: f"item {i}",
) -> list[float]:
    """Rewards with a value for each failed item (None), as ``on_error`` says:

    - ``"group_mean"``: the mean reward of the scored items of its group (the same
      prompt), so its GRPO advantage is 0 and it teaches nothing; 0.0 when its whole
      group failed (a group of equal rewards has no advantage either);
    - ``"raise"``: :class:`RewardError` naming the items and their errors;
    - a number: that number.

    Failures are always logged as a warning with their count and first reasons.
    """
    failed = [i for i, v in enumerate(values) if v is None]
    if not failed:
        return [float(v) for v in values if v is not None]
    shown = "; ".join(f"{what(i)}: {errors[i]}" for i in failed[:3])
    more = f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
    if on_error == "raise":
        raise RewardError(f"{len(failed)} of {len(values)} item(s) got no reward: {shown}{more}")
    if isinstance(on_error, str) and on_error != "group_mean":
        raise ValueError(f"on_error is 'group_mean', 'raise' or a number, not {on_error!r}")
    log.warning(
        "%d of %d item(s) got no reward (%s): %s%s",
        len(failed), len(values), f"given {on_error}", shown, more,
    )  # fmt: skip
    out: list[float] = []
    for i, value in enumerate(values):
        if value is not None:
            out.append(float(value))
        elif on_error == "group_mean":
            peers = [
                v for v, g in zip(values, groups, strict=True) if g == groups[i] and v is not None
            ]
            out.append(sum(peers) / len(peers) if peers else 0.0)
        else:
            out.append(float(on_error))
    return out
