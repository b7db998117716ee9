"""A scripted OpenAI-compatible chat server for parity tests (127.0.0.1 only).

Each request is mapped to (item, kind) by ``identify`` (from the request body), and the
n-th request of that (item, kind) gets ``script(item, kind, n)``: an answer text, or a
fault: ``DROP`` (the connection closes without an answer), ``HTML_503`` (HTTP 503 with
an HTML page), ``FILTER`` (HTTP 400, ``content_policy_violation``). Answers do not depend
on arrival order, so a client that asks the same questions gets the same answers however
it interleaves them: the same script drives upstream's code in the snapshot scripts and
erb in the tests.
"""

from __future__ import annotations

import base64
import io
import json
import socket
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DROP = "<drop>"
HTML_503 = "<html-503>"
FILTER = "<content-filter>"
SERVED_MODEL = "gpt-4.1-2025-04-14"

Identify = Callable[[dict[str, Any]], tuple[int, str]]
Script = Callable[[int, str, int], str]


def message_parts(body: dict[str, Any]) -> tuple[str, list[str]]:
    """(the text, the image data URLs) of a request's single user message."""
    content = body["messages"][-1]["content"]
    if isinstance(content, str):
        return content, []
    text = "".join(p.get("text", "") for p in content if p.get("type") == "text")
    urls = [p["image_url"]["url"] for p in content if p.get("type") == "image_url"]
    return text, urls


def decode(url: str) -> Any:
    from PIL import Image

    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def marker_of(url: str) -> int:
    """The item number an image carries in its top-left 32 x 32 block (see :func:`marker`)."""
    img = decode(url).convert("RGB")
    r, g, _ = img.getpixel((6, 6))
    return round((r - 8) / 16) + 15 * round((g - 8) / 16)


def marker(index: int) -> tuple[int, int, int]:
    """A flat colour that survives JPEG and a 2x resize: item ``index`` (0..224)."""
    return (8 + 16 * (index % 15), 8 + 16 * (index // 15), 200)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True


class ScriptedVLM:
    """Start with ``with ScriptedVLM(identify, script) as server: server.url``."""

    def __init__(self, identify: Identify, script: Script, model: str = SERVED_MODEL,
                 listed: tuple[str, ...] = ("gpt-4.1",)) -> None:  # fmt: skip
        self.identify = identify
        #: The model ids GET /models lists (besides ``model``, the id every answer carries).
        self.listed = (*listed, model)
        self.script = script
        self.model = model
        self.counts: Counter[tuple[int, str]] = Counter()
        self.log: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self._server: _Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> ScriptedVLM:
        handler = _handler(self)
        self._server = _Server(("127.0.0.1", 0), handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    def action(self, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        item, kind = self.identify(body)
        with self.lock:
            n = self.counts[(item, kind)]
            self.counts[(item, kind)] += 1
            entry = {
                "item": item,
                "kind": kind,
                "n": n,
                "body": {k: v for k, v in body.items() if k != "messages"},
            }
            self.log.append(entry)
        return self.script(item, kind, n), entry


def _handler(vlm: ScriptedVLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            models = [{"id": name} for name in vlm.listed]
            self._send(200, json.dumps({"object": "list", "data": models}).encode())

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length))
            answer, _ = vlm.action(body)
            if answer == DROP:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if answer == HTML_503:
                self._send(503, b"<html><body>Service Unavailable</body></html>", "text/html")
                return
            if answer == FILTER:
                error = {"error": {"code": "content_policy_violation", "type": "invalid_request_error",
                                   "message": "Your request was rejected by the safety system."}}  # fmt: skip
                self._send(400, json.dumps(error).encode())
                return
            payload = {
                "id": "chatcmpl-scripted", "object": "chat.completion", "created": 0,
                "model": vlm.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
            }  # fmt: skip
            self._send(200, json.dumps(payload).encode())

    return Handler
