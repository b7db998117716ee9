"""A local OpenAI-compatible chat-completions server for tests and benchmarks.

It speaks enough of the protocol for ``erb``'s OpenAI backend (``GET /v1/models``,
``POST /v1/chat/completions`` with ``n`` and ``seed``), answers like an EditScore
judge, and injects faults on request: HTTP 500, 429 with ``Retry-After``,
unparseable answers, hung and dropped connections, and errors that echo the
request headers. It listens on 127.0.0.1 only.

Answers (``mode``):

- ``vision``: decodes the images and scores them by its own rule (:func:`vision_scores`,
  independent of erb's judges, so a clean run is an independent reference), plus seeded
  noise of +-1 on the 0..25 scale, so judges score above chance on the synthetic
  benchmarks and Avg@k changes results;
- ``hash``: scores from a hash of the request and seed (no decoding; cheapest);
- ``sequence``: scores from a hash of the request's content and how many times that same
  content was asked before, in varied answer formats (plain JSON, a fenced block, text around
  it, the score before the reasoning). Clients that send the same requests in the same order
  (upstream's API path sends pass i's prompts unseeded, one after another) get the same
  answers, and pass i's differ from pass j's.

With ``record_images=True`` each logged request also lists its images as received:
the data URL's media type, the format PIL reads, the size, the mode and a SHA-256 of
the RGB pixels (:func:`pixel_digest`), so a test can check what a server was sent.

Run standalone (``pip install "erb[testing]"``)::

    python -m editreward_bench.testing.fake_openai --port 8000 --latency 0.5 \
        --faults http_500=0.1,http_429=0.05,garbage=0.05 --model editscore-72b
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import hashlib
import json
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from typing import Any

#: Request fields the log lists under ``sampling`` (OpenAI's, and vLLM's and SGLang's extensions).
SAMPLING_FIELDS = (
    "temperature", "top_p", "top_k", "max_tokens", "repetition_penalty", "min_p",
    "presence_penalty", "frequency_penalty",
)  # fmt: skip


@dataclass
class Faults:
    """Probabilities of each fault per request (drawn from a seeded generator)."""

    http_500: float = 0.0
    http_429: float = 0.0
    retry_after: float = 0.0
    garbage: float = 0.0
    hang: float = 0.0
    hang_seconds: float = 30.0
    drop: float = 0.0
    echo_400: float = 0.0
    seed: int = 0


@dataclass
class RequestLog:
    """What the server received: one entry per chat-completions request."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.entries.append(entry)

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.entries)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default 5 resets connections under 32+ concurrent clients
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeOpenAIServer) -> None:
        self.fake = fake
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Without this, Nagle's algorithm stalls each keep-alive response 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(
        self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/stats"):
            entries = self.server.fake.log.snapshot()
            self._send(200, {"requests": len(entries), "samples": sum(e["n"] for e in entries)})
        elif self.path.rstrip("/").endswith("/models"):
            fake = self.server.fake
            self._send(
                200,
                {
                    "object": "list",
                    "data": [{"id": m, "object": "model", "owned_by": "erb"} for m in fake.models],
                },
            )
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        fake = self.server.fake
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            self._send(400, {"error": {"message": "invalid JSON"}})
            return
        fault = fake.draw_fault()
        entry = fake.describe_request(body, fault)
        entry["received"] = time.monotonic()  # lets a test order events, not time a whole run
        fake.log.add(entry)
        if fault == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault == "hang":
            time.sleep(fake.faults.hang_seconds)
            self.close_connection = True
            return
        if fake.latency:
            time.sleep(fake.latency)
        if fault == "500":
            self._send(500, {"error": {"message": "injected server error", "type": "server_error"}})
            return
        if fault == "429":
            self._send(
                429,
                {"error": {"message": "rate limited", "type": "rate_limit"}},
                {"Retry-After": str(fake.faults.retry_after)},
            )
            return
        if fault == "echo400":
            echoed = {k: v for k, v in self.headers.items()}
            self._send(
                400,
                {
                    "error": {
                        "message": f"bad request; headers were {echoed}",
                        "type": "invalid_request_error",
                    }
                },
            )
            return
        model = body.get("model")
        if fake.models and model not in fake.models:
            self._send(404, {"error": {"message": f"model {model!r} not found"}})
            return
        n = int(body.get("n") or 1)
        if n > 1 and not fake.allow_n:
            self._send(400, {"error": {"message": "n > 1 is not supported"}})
            return
        choices = []
        completion_tokens = 0
        for j in range(n):
            text = (
                "I'm sorry, I can't help with that."
                if fault == "garbage"
                else fake.answer(body, j, entry["id"])
            )
            completion_tokens += max(1, len(text) // 4)
            choices.append(
                {
                    "index": j,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            )
        prompt_tokens = entry["text_chars"] // 4 + 256 * entry["images"]
        self._send(
            200,
            {
                "id": f"chatcmpl-{entry['id']}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": choices,
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
        )


def _parts(body: dict[str, Any]) -> tuple[str, list[str]]:
    text, images = "", []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            text += content
            continue
        for part in content or []:
            if part.get("type") == "text":
                text += part.get("text", "")
            elif part.get("type") == "image_url":
                images.append(part["image_url"]["url"])
    return text, images


def _gray(image: Any, side: int = 48) -> list[int]:
    """The image as a small grey thumbnail's pixel values."""
    return list(image.convert("L").resize((side, side)).getdata())


def vision_scores(source: Any, edited: Any) -> tuple[float, float]:
    """(editing success, overediting) on 0..25 from how much and how widely the edit changed.

    The server's own rule: a visible change earns prompt following; change spread over
    much of the image costs consistency. Deliberately not erb's image-diff baseline.
    """
    before, after = _gray(source), _gray(edited)
    diffs = [abs(x - y) for x, y in zip(before, after, strict=True)]
    changed = sum(d > 24 for d in diffs) / len(diffs)  # share of visibly changed pixels
    strength = sum(diffs) / len(diffs) / 255
    success = 25 * min(1.0, changed * 6 + strength * 2)
    overediting = 25 * max(0.0, 1.0 - max(0.0, changed - 0.08) * 3)
    return success, overediting


def quality_score(edited: Any) -> float:
    """Naturalness on 0..25: smooth images score high, noisy ones low (mean neighbour jump)."""
    pixels, side = _gray(edited, 32), 32
    jumps = [
        abs(pixels[r * side + c] - pixels[r * side + c + 1])
        for r in range(side)
        for c in range(side - 1)
    ]
    return 25 * max(0.0, 1.0 - sum(jumps) / len(jumps) / 64)


def parse_faults(text: str) -> Faults:
    """``http_500=0.1,garbage=0.05,seed=3`` -> :class:`Faults` (the field names)."""
    faults = Faults()
    names = {f.name for f in dataclasses.fields(Faults)}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or name not in names:
            raise argparse.ArgumentTypeError(
                f"--faults takes NAME=VALUE pairs with NAME in {sorted(names)}, got {part!r}"
            )
        try:
            setattr(faults, name, int(value) if name == "seed" else float(value))
        except ValueError:
            raise argparse.ArgumentTypeError(f"--faults {name}: not a number: {value!r}") from None
    return faults


def _decode(url: str) -> Any:
    from PIL import Image

    data = base64.b64decode(url.split(",", 1)[1])
    return Image.open(BytesIO(data)).convert("RGB")


def pixel_digest(image: Any) -> str:
    """SHA-256 of an image's RGB pixels, row by row (equal digests: equal pixels)."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return hashlib.sha256(rgb.tobytes()).hexdigest()


def describe_image(url: str) -> dict[str, Any]:
    """What a data URL holds: media type, format, size, mode and pixel digest."""
    from PIL import Image

    header, _, payload = url.partition(",")
    with Image.open(BytesIO(base64.b64decode(payload))) as img:
        img.load()
        return {
            "media_type": header.removeprefix("data:").split(";")[0],
            "format": img.format,
            "size": list(img.size),
            "mode": img.mode,
            "pixels": pixel_digest(img),
        }


class FakeOpenAIServer:
    """Start with :meth:`start` (or as a context manager); ``url`` is the base URL."""

    def __init__(
        self,
        *,
        models: list[str] | None = None,
        latency: float = 0.0,
        faults: Faults | None = None,
        mode: str = "vision",
        allow_n: bool = True,
        port: int = 0,
        record_images: bool = False,
    ) -> None:
        self.models = models if models is not None else ["fake-judge"]
        self.latency = latency
        self.faults = faults or Faults()
        self.mode = mode
        self._seen: dict[str, int] = {}
        self.allow_n = allow_n
        self.record_images = record_images
        self.log = RequestLog()
        self._rng = random.Random(self.faults.seed)
        self._rng_lock = threading.Lock()
        self._counter = 0
        self._httpd = _Server(("127.0.0.1", port), self)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        port = self._httpd.server_address[1]
        return f"http://127.0.0.1:{port}/v1"

    def start(self) -> FakeOpenAIServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- behaviour ---------------------------------------------------------------------

    def draw_fault(self) -> str | None:
        f = self.faults
        with self._rng_lock:
            self._counter += 1
            x = self._rng.random()
        for name, p in (
            ("500", f.http_500),
            ("429", f.http_429),
            ("garbage", f.garbage),
            ("hang", f.hang),
            ("drop", f.drop),
            ("echo400", f.echo_400),
        ):
            if x < p:
                return name
            x -= p
        return None

    def describe_request(self, body: dict[str, Any], fault: str | None) -> dict[str, Any]:
        text, images = _parts(body)
        digest = hashlib.sha256(
            text.encode() + b"".join(hashlib.sha256(u.encode()).digest() for u in images)
        ).hexdigest()
        with self._rng_lock:
            number = self._counter
        extra = {"image_info": [describe_image(u) for u in images]} if self.record_images else {}
        return {
            "id": number,
            "kind": "sc" if len(images) == 2 else "pq",
            "prompt": digest[:16],
            "seed": body.get("seed"),
            "n": int(body.get("n") or 1),
            "model": body.get("model"),
            "images": len(images),
            "text_chars": len(text),
            "sampling": {k: body[k] for k in SAMPLING_FIELDS if k in body},
            "keys": sorted(body),
            "fault": fault,
            **extra,
        }

    def answer(self, body: dict[str, Any], choice: int, request_id: int = 0) -> str:
        text, images = _parts(body)
        seed = body.get("seed")
        noise_rng = random.Random(
            f"{seed}/{choice}/{hashlib.sha256(text.encode()).hexdigest()[:8]}/{len(images)}"
        )
        if self.mode == "sequence":
            return self._sequence_answer(text, images, request_id)
        if self.mode == "hash" or not images:
            h = hashlib.sha256(
                f"{text}{images[-1][-64:] if images else ''}{seed}{choice}".encode()
            ).digest()
            a, b = float(h[0] % 26), float(h[1] % 26)
        else:
            if len(images) == 2:
                a, b = vision_scores(_decode(images[0]), _decode(images[1]))
            else:
                a = b = quality_score(_decode(images[0]))
            a = min(25, max(0, round(a + noise_rng.choice((-1, 0, 0, 1)))))
            b = min(25, max(0, round(b + noise_rng.choice((-1, 0, 0, 1)))))
        # The request id in the reasoning traces a stored pass back to the request that made it.
        reasoning = f"Request {request_id}: the edit was compared with the instruction."
        return json.dumps({"reasoning": reasoning, "score": [int(a), int(b)]})

    def _sequence_answer(self, text: str, images: list[str], request_id: int) -> str:
        content = hashlib.sha256("\x1f".join([text, *images]).encode()).hexdigest()
        with self._rng_lock:
            seen = self._seen.get(content, 0)
            self._seen[content] = seen + 1
        h = hashlib.sha256(f"{content}/{seen}".encode()).digest()
        a, b = h[0] % 26, h[1] % 26
        reasoning = f"Request {request_id}: the edit was compared with the instruction."
        return SEQUENCE_FORMATS[h[2] % len(SEQUENCE_FORMATS)].format(a=a, b=b, r=reasoning)


#: Answer formats a judge model produces and both erb's and upstream's parsers accept.
SEQUENCE_FORMATS = (
    '{{"reasoning": "{r}", "score": [{a}, {b}]}}',
    '```json\n{{"reasoning": "{r}", "score": [{a}, {b}]}}\n```',
    'Here is my evaluation.\n{{"reasoning": "{r}", "score": [{a}, {b}]}}\nThat is all.',
    '{{"score": [{a}, {b}], "reasoning": "{r}"}}',
    '{{\n  "reasoning": "{r}",\n  "score": [\n    {a},\n    {b}\n  ]\n}}',
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--mode", choices=("vision", "hash", "sequence"), default="vision")
    parser.add_argument("--model", action="append", dest="models")
    parser.add_argument("--no-n", action="store_true", help="Refuse n > 1 (HTTP 400).")
    parser.add_argument(
        "--faults",
        type=parse_faults,
        default=Faults(),
        help="Fault mix, e.g. http_500=0.1,http_429=0.05,garbage=0.05,hang=0.02,drop=0.01,seed=0",
    )
    args = parser.parse_args()
    server = FakeOpenAIServer(
        models=args.models or ["fake-judge"],
        latency=args.latency,
        faults=args.faults,
        mode=args.mode,
        port=args.port,
        allow_n=not args.no_n,
    )
    print(server.url, flush=True)
    server._httpd.serve_forever()


if __name__ == "__main__":
    main()
