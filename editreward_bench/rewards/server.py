"""The reward server: a :class:`RewardModel` behind JSON over HTTP (an ASGI app for uvicorn).

Routes:

- ``POST /v1/score``: ``{"items": [{"instruction", "source", "edited", "group"?}], "k"?,
  "reasoning"?}``, images as base64 or data URLs (PNG or JPEG). Answers
  ``{"results": [...], "judge": {...}, "diagnostics": {...}}``, results aligned with
  items. A malformed item gets its own error and the others are scored; a malformed
  body is a 4xx with a message.
- ``GET /health``: 200 while a replica takes requests, else 503 (for load balancers).
- ``GET /v1/judge``: what is served. ``GET /metrics``: Prometheus text format.

Safe by default: no pickle; body size, item count, k and image pixels are bounded;
a bearer token, when set, is compared in constant time (``hmac.compare_digest``)
on every route but ``/health``; errors never carry the backend's API key.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import json
import logging
import socket
import threading
import time
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..redact import redact_text
from .diagnostics import reward_diagnostics
from .items import RewardItem
from .model import RewardModel, RewardResult
from .telemetry import Telemetry

log = logging.getLogger("erb.reward")

DEFAULT_MAX_BODY_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_ITEMS = 4096
DEFAULT_MAX_K = 16
DEFAULT_MAX_IMAGE_PIXELS = 4096 * 4096
_FORMATS = {"PNG": "png", "JPEG": "jpeg"}
_ITEM_FIELDS = {"instruction", "source", "edited", "group"}
_BODY_FIELDS = {"items", "k", "reasoning"}


class BadRequest(Exception):
    """The body cannot be served; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    """What one request may carry."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_items: int = DEFAULT_MAX_ITEMS
    max_k: int = DEFAULT_MAX_K
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (``localhost``, 127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a bearer token (a ValueError saying so)."""
    if not is_loopback(host) and not token:
        raise ValueError(
            f"--host {host} would accept requests from other machines; give a bearer token with "
            "--token-env NAME (the name of an environment variable holding it), or bind 127.0.0.1"
        )


def decode_image(value: Any, name: str, max_pixels: int) -> bytes:
    """The bytes of a base64 or data-URL PNG or JPEG; a ValueError saying what is wrong."""
    from PIL import Image, UnidentifiedImageError

    if not isinstance(value, str) or not value:
        raise ValueError(f"{name!r} must be a base64 string or a data URL of a PNG or JPEG image")
    text = value
    if text.startswith("data:"):
        header, sep, text = text.partition(",")
        if not sep or not header.endswith(";base64"):
            raise ValueError(f"{name!r} is a data URL without ';base64,'")
        media = header[5:].split(";")[0].lower()
        if media not in ("image/png", "image/jpeg", "image/jpg"):
            raise ValueError(f"{name!r} is a data URL of {media or 'no type'}; send PNG or JPEG")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{name!r} is not valid base64") from None
    try:
        with Image.open(BytesIO(data)) as img:
            kind, (width, height) = img.format, img.size
    except (UnidentifiedImageError, OSError, ValueError):
        raise ValueError(f"{name!r} is not a PNG or JPEG image") from None
    if kind not in _FORMATS:
        raise ValueError(f"{name!r} is a {kind} image; send PNG or JPEG")
    if width * height > max_pixels:
        raise ValueError(
            f"{name!r} is {width}x{height} pixels, over this server's limit of {max_pixels}"
        )
    return data


def parse_body(body: bytes, limits: Limits) -> tuple[list[RewardItem | str], int | None, bool]:
    """(items or their errors, k, reasoning) from a request body; raises :class:`BadRequest`."""
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest("the body is not UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"the body is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    if not isinstance(data, dict):
        raise BadRequest('the body must be a JSON object: {"items": [...], "k": optional int}')
    unknown = sorted(set(data) - _BODY_FIELDS)
    if unknown:
        raise BadRequest(f"unknown field(s) {unknown}; a body has {sorted(_BODY_FIELDS)}")
    items = data.get("items")
    if not isinstance(items, list):
        raise BadRequest('"items" must be a list of {"instruction", "source", "edited", "group"}')
    if len(items) > limits.max_items:
        raise BadRequest(
            f"{len(items)} items, over this server's limit of {limits.max_items} per request", 413
        )
    k = data.get("k")
    if k is not None and (
        not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= limits.max_k
    ):
        raise BadRequest(f'"k" must be an integer from 1 to {limits.max_k}, got {k!r}')
    reasoning = data.get("reasoning", False)
    if not isinstance(reasoning, bool):
        raise BadRequest(f'"reasoning" must be true or false, got {reasoning!r}')
    return [_parse_item(i, item, limits) for i, item in enumerate(items)], k, reasoning


def _parse_item(index: int, item: Any, limits: Limits) -> RewardItem | str:
    where = f"invalid item {index}"
    if not isinstance(item, dict):
        return f'{where}: an item is an object {{"instruction", "source", "edited", "group"?}}'
    unknown = sorted(set(item) - _ITEM_FIELDS)
    if unknown:
        return f"{where}: unknown field(s) {unknown}"
    instruction = item.get("instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        return f"{where}: 'instruction' must be a non-empty string"
    group = item.get("group")
    if group is not None and not isinstance(group, str):
        return f"{where}: 'group' must be a string"
    try:
        source = decode_image(item.get("source"), "source", limits.max_image_pixels)
        edited = decode_image(item.get("edited"), "edited", limits.max_image_pixels)
    except ValueError as exc:
        return f"{where}: {exc}"
    return RewardItem(instruction, source, edited, group=group)


def _reasoning(result: Any) -> list[dict[str, Any]]:
    return [
        {
            "pass": r.get("pass"),
            "status": r.get("status"),
            "sc": r.get("reasoning_sc"),
            "pq": r.get("reasoning_pq"),
            "raw_sc": r.get("raw_sc"),
            "raw_pq": r.get("raw_pq"),
            "error": redact_text(r["error"]) if r.get("error") else None,
        }
        for r in result.records
    ]


def create_app(
    model: RewardModel, *, token: str | None = None, limits: Limits | None = None
) -> Starlette:
    """The ASGI app serving ``model``; ``token`` (if any) is required as ``Bearer`` on every
    route but ``/health``."""
    limits = limits or Limits()
    telemetry = Telemetry(model)
    expected = token.encode() if token else None
    judge_info = {k: model.describe()[k] for k in ("name", "model", "adapter", "fingerprint")}

    def authorized(request: Request) -> bool:
        if expected is None:
            return True
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        # compare_digest takes the same time whatever the first wrong byte is.
        return hmac.compare_digest(given.strip().encode(), expected) and scheme.lower() == "bearer"

    def denied() -> Response:
        return JSONResponse(
            {"error": "missing or wrong bearer token (Authorization: Bearer TOKEN)"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    async def read_body(request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limits.max_body_bytes:
            raise BadRequest(
                f"the body is {int(length)} bytes, over this server's limit of {limits.max_body_bytes}",
                413,
            )
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_body_bytes:
                raise BadRequest(
                    f"the body is over this server's limit of {limits.max_body_bytes} bytes", 413
                )
            chunks.append(chunk)
        return b"".join(chunks)

    async def score(request: Request) -> Response:
        start = time.perf_counter()
        if not authorized(request):
            telemetry.requests.labels("401").inc()
            return denied()
        try:
            body = await read_body(request)
            parsed, k, want_reasoning = await run_in_threadpool(parse_body, body, limits)
        except BadRequest as exc:
            telemetry.requests.labels(str(exc.status)).inc()
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        valid = [item for item in parsed if isinstance(item, RewardItem)]
        try:
            scored = iter(await model.ascore_many(valid, k=k))
        except Exception as exc:  # a bug must not leave a trainer without an answer
            log.exception("scoring failed")
            telemetry.requests.labels("500").inc()
            message = redact_text(f"{type(exc).__name__}: {exc}")
            return JSONResponse({"error": f"scoring failed: {message}"}, status_code=500)
        results: list[dict[str, Any]] = []
        aligned: list[RewardResult] = []
        groups: list[str | None] = []
        ok_passes = failed_passes = 0
        for entry in parsed:
            if isinstance(entry, str):
                results.append({**RewardResult.failed(entry).to_dict()})
                aligned.append(RewardResult.failed(entry))
                groups.append(None)
                continue
            result = next(scored)
            out = result.to_dict()
            if want_reasoning:
                out["reasoning"] = _reasoning(result)
            results.append(out)
            aligned.append(result)
            groups.append(entry.group)
            ok_passes += result.passes
            failed_passes += sum(1 for r in result.records if r.get("status") != "ok")
        invalid = len(parsed) - len(valid)
        diag = reward_diagnostics(aligned, groups)
        diag["invalid"] = invalid
        diag["k"] = k or model.k
        diag["seconds"] = round(time.perf_counter() - start, 4)
        telemetry.record(results, invalid, diag)
        telemetry.count_passes(ok_passes, failed_passes)
        telemetry.requests.labels("200").inc()
        telemetry.request_seconds.observe(time.perf_counter() - start)
        log.info(
            "scored %d item(s) in %.2f s: %d failed, %d invalid",
            len(parsed), diag["seconds"], diag["failed"] - invalid, invalid,
        )  # fmt: skip
        return JSONResponse({"results": results, "judge": judge_info, "diagnostics": diag})

    async def health(request: Request) -> Response:
        pool = model.pool
        total = len(pool.replicas) if pool is not None else 1
        up = sum(1 for r in pool.replicas if r.up) if pool is not None else 1
        status = "ok" if up == total else ("degraded" if up else "down")
        return JSONResponse(
            {"status": status, "replicas_up": up, "replicas": total},
            status_code=200 if up else 503,
        )

    async def judge(request: Request) -> Response:
        if not authorized(request):
            return denied()
        from ..judges.options import all_settings

        config = getattr(model.judge, "config", None)
        info = {
            **model.describe(),
            "settings": all_settings(config) if config is not None else None,
            "replica_status": model.pool.status() if model.pool is not None else None,
            "limits": {
                "max_body_bytes": limits.max_body_bytes, "max_items": limits.max_items,
                "max_k": limits.max_k, "max_image_pixels": limits.max_image_pixels,
            },
        }  # fmt: skip
        return JSONResponse(json.loads(redact_text(json.dumps(info, default=str))))

    async def metrics(request: Request) -> Response:
        if not authorized(request):
            return denied()
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(telemetry.render(), media_type=CONTENT_TYPE_LATEST)

    app = Starlette(
        routes=[
            Route("/v1/score", score, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            Route("/v1/judge", judge, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ]
    )
    app.state.telemetry = telemetry
    return app


class RewardServer:
    """The app served by uvicorn in a background thread on 127.0.0.1 (tests, benchmarks,
    notebooks). ``url`` is its address once started; use it as a context manager."""

    def __init__(
        self,
        model: RewardModel,
        *,
        token: str | None = None,
        limits: Limits | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
    ) -> None:
        check_bind(host, token)
        self.app = create_app(model, token=token, limits=limits)
        self.host, self.port, self.log_level = host, port, log_level
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> RewardServer:
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level=self.log_level, lifespan="off", access_log=False,
            timeout_keep_alive=75,
        )  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="erb-reward-server",
            daemon=True,
        )  # fmt: skip
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the reward server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)

    def __enter__(self) -> RewardServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
