"""OpenAI-compatible chat completions: OpenAI, vLLM, SGLang, Gemini's endpoint.

- Images go as base64 data URLs, encoded once per candidate: JPEG at PIL's
  default quality (``image_format = "jpeg"``, upstream's API path) or lossless
  PNG (``"png"``); with ``pre_resize`` each is first resized as qwen-vl-utils
  resizes it (upstream's vLLM path), so the server's processor has nothing left
  to resize.
- The card's sampling parameters are sent, and nothing else (``top_k`` and
  ``repetition_penalty`` go in the request body, as vLLM and SGLang expect);
  API cards send none.
- Avg@k asks for ``n`` samples in one request (one prefill) where the server
  supports it, and falls back to one request per sample when it refuses.
- 429, 5xx, timeouts and connection errors are retried with exponential backoff
  and jitter, honouring ``Retry-After``; other errors fail the request at once.
- Several base URLs spread requests over replicas, round robin.
- The API key comes from an environment variable named by the card (or
  ``--api-key-env``) and is never logged or written.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..judges import JudgeLoadError
from ..judges.base import Backend, GenRequest, GenResponse
from ..judges.options import JudgeConfig, OpenAIOptions, Sampling
from ..redact import redact_text, redact_url
from ..vision import encode_data_url, resize_image

if TYPE_CHECKING:
    from PIL import Image as PILImage

CONNECTIONS_PER_CLIENT = 16
RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
#: Card sampling keys and the request fields they become (the rest go in the body as named:
#: top_k and repetition_penalty are vLLM's and SGLang's extensions).
_SAMPLING_FIELDS = {"max_new_tokens": "max_tokens"}


def build_content(images: Sequence[str], text: str, layout: str) -> list[dict[str, Any]]:
    """Message content in the card's layout.

    - ``text-first``: the upstream API path (text, then images);
    - ``qwen2.5-vl``: ``<img1>: `` image ``<img2>: `` image, then the text, which a
      Qwen2.5-VL chat template renders exactly as upstream's local prompt;
    - ``images-first``: images, then text (Qwen3-VL's chat template order).
    """
    parts = [{"type": "image_url", "image_url": {"url": url}} for url in images]
    text_part = {"type": "text", "text": text}
    if layout == "text-first":
        return [text_part, *parts]
    if layout == "images-first" or layout == "chat-template":
        return [*parts, text_part]
    if layout == "qwen2.5-vl":
        content: list[dict[str, Any]] = []
        for i, part in enumerate(parts, start=1):
            content += [{"type": "text", "text": f"<img{i}>: "}, part]
        return [*content, text_part]
    raise ValueError(f"unknown message layout {layout!r}")


class OpenAIBackend(Backend):
    def __init__(
        self,
        *,
        model: str,
        options: OpenAIOptions,
        sampling: Sampling,
        layout: str,
        adapter: str | None = None,
        serve_hint: str | None = None,
        listed: Sequence[str] = (),
    ) -> None:
        if not options.base_urls:
            raise JudgeLoadError("the openai backend needs a --base-url")
        if options.send_seed is None:  # local servers get the pass seed; API cards send no extra
            options = replace(options, send_seed=bool(sampling.as_dict()))
        self.options = options
        self.model = model
        self.base_urls = [u.rstrip("/") for u in options.base_urls]
        self.api_key_env = options.api_key_env
        self.sampling = sampling.as_dict()
        self.layout = layout
        self.supports_n = options.supports_n
        self.send_seed = bool(options.send_seed)
        self.adapter = adapter
        self.concurrency = options.concurrency
        self.timeout = options.timeout
        self.max_attempts = options.max_attempts
        self.backoff = options.backoff
        self.image_format = options.image_format
        self.pre_resize = options.pre_resize
        self.max_backoff = 30.0
        self.serve_hint = serve_hint
        #: Ids in GET /models that mean the model is served (SGLang lists a LoRA's base).
        self.listed = tuple(listed) or (model,)
        self.batch_size = 1
        self._clients: dict[int, list[Any]] = {}
        self._next = 0
        self._limit: dict[int, asyncio.Semaphore] = {}

    @classmethod
    def from_config(cls, config: JudgeConfig) -> OpenAIBackend:
        from .serving import listed_models, request_model, serve_hint

        card, options = config.card, config.backend
        assert isinstance(options, OpenAIOptions)
        if not card.model:
            raise JudgeLoadError(f"judge {card.name!r}: no model to ask for; pass --model")
        local = any(host in options.base_urls[0] for host in ("localhost", "127.0.0.1", "[::1]"))
        # Only hub models are vLLM's to serve: an API card pointed at a local URL gets no recipe.
        hint = serve_hint(config) if local and "/" in card.model else None
        return cls(
            model=request_model(config),
            options=options,
            sampling=config.sampling,
            layout=config.common.layout,
            adapter=card.adapter,
            serve_hint=hint,
            listed=listed_models(config),
        )

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "openai",
            "model": self.model,
            "adapter": self.adapter,
            "sampling": self.sampling,
            "layout": self.layout,
            "send_seed": self.send_seed,
            "image_format": self.image_format,
            "pre_resize": self.pre_resize,
            "base_urls": [redact_url(u) for u in self.base_urls],
            "concurrency": self.concurrency,
            "timeout": self.timeout,
        }

    # -- clients ----------------------------------------------------------------------

    def _api_key(self) -> str:
        # Local servers (vLLM, SGLang) accept any key; the SDK insists on one.
        return os.environ.get(self.api_key_env) or "EMPTY"

    def _client_pool(self) -> list[Any]:
        """AsyncOpenAI clients for the running event loop (clients are loop-bound).

        Each base URL gets one client per ``CONNECTIONS_PER_CLIENT`` requests in
        flight: the HTTP pool scans every connection for each request, so many
        small pools cost less than one large one.
        """
        loop_id = id(asyncio.get_running_loop())
        pool = self._clients.get(loop_id)
        if pool is None:
            from openai import AsyncOpenAI

            self._clients = {}  # clients of finished loops cannot be reused
            per_url = max(1, math.ceil(self.concurrency / CONNECTIONS_PER_CLIENT))
            pool = [
                AsyncOpenAI(
                    api_key=self._api_key(), base_url=url, max_retries=0, timeout=self.timeout
                )
                for _ in range(per_url)
                for url in self.base_urls
            ]
            self._clients[loop_id] = pool
            self._limit = {loop_id: asyncio.Semaphore(self.concurrency * len(self.base_urls))}
        return pool

    def _pick(self) -> Any:
        pool = self._client_pool()
        client = pool[self._next % len(pool)]
        self._next += 1
        return client

    # -- requests ---------------------------------------------------------------------

    def prepare_images(self, images: Sequence[PILImage.Image]) -> tuple[str, ...]:
        """Data URLs of the images, each resized (``pre_resize``) and encoded once."""
        if self.pre_resize:
            images = [resize_image(img) for img in images]
        return tuple(encode_data_url(img, self.image_format) for img in images)

    def _body(self, request: GenRequest, n: int, seed: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [
                {
                    "role": "user",
                    "content": build_content(request.images, request.text, self.layout),
                }
            ],
        }
        if n > 1:
            body["n"] = n
        for key, value in self.sampling.items():
            body[_SAMPLING_FIELDS.get(key, key)] = value
        if self.send_seed:
            body["seed"] = seed
        return body

    async def generate(self, requests: Sequence[GenRequest]) -> list[GenResponse]:
        return list(await asyncio.gather(*(self._one(r) for r in requests)))

    async def _one(self, request: GenRequest) -> GenResponse:
        if request.n > 1 and not self.supports_n:
            return await self._split(request)
        response = await self._call(self._body(request, request.n, request.seed))
        if response.error and request.n > 1 and response.error.startswith("HTTP 400"):
            # The server refuses n > 1: ask for the samples one by one from now on.
            self.supports_n = False
            return await self._split(request)
        return response

    async def _split(self, request: GenRequest) -> GenResponse:
        parts = await asyncio.gather(
            *(self._call(self._body(request, 1, request.seed + j)) for j in range(request.n))
        )
        errors = [p.error for p in parts if p.error]
        if errors:
            return GenResponse([], error=errors[0])
        return GenResponse(
            [p.texts[0] for p in parts],
            prompt_tokens=_sum(p.prompt_tokens for p in parts),
            completion_tokens=_sum(p.completion_tokens for p in parts),
        )

    async def _call(self, body: dict[str, Any]) -> GenResponse:
        import openai
        from openai.types.chat import ChatCompletion

        client = self._pick()
        semaphore = next(iter(self._limit.values()))
        last_error = "no attempt made"
        for attempt in range(self.max_attempts):
            retry_after: float | None = None
            try:
                async with semaphore:
                    # The client's low-level post sends the body as built: the typed
                    # create() re-walks every message part, ~2.5 ms per request here.
                    completion = await client.post(
                        "/chat/completions", body=body, cast_to=ChatCompletion
                    )
                return _completion(completion, str(client.base_url))
            except openai.APIStatusError as exc:
                status = exc.status_code
                last_error = f"HTTP {status}: {self._status_message(exc, str(client.base_url))}"
                code = getattr(exc, "code", None)
                if isinstance(code, str) and code:  # e.g. content_policy_violation
                    last_error += f" (code {code})"
                if status not in RETRYABLE_STATUS:
                    return GenResponse([], error=last_error)
                retry_after = _retry_after(exc)
            except (openai.APITimeoutError, openai.APIConnectionError) as exc:
                last_error = f"{type(exc).__name__}: {_safe_message(exc)}"
            except openai.OpenAIError as exc:  # malformed responses and the like
                last_error = f"{type(exc).__name__}: {_safe_message(exc)}"
            except ValueError as exc:  # a body announced as JSON that is not JSON
                return GenResponse(
                    [], error=_not_an_api(str(client.base_url), f"its answer is not JSON ({exc})")
                )
            if attempt + 1 < self.max_attempts:
                delay = (
                    retry_after
                    if retry_after is not None
                    else min(self.max_backoff, self.backoff * 2**attempt)
                )
                await asyncio.sleep(
                    delay * (1 + random.random() * 0.25)
                )  # jitter spreads retries apart
        return GenResponse([], error=f"gave up after {self.max_attempts} attempt(s): {last_error}")

    def _status_message(self, exc: Any, url: str) -> str:
        """What an HTTP error means: an HTML page is no API; a 401 names the key's variable."""
        status = exc.status_code
        if _is_html(exc.response):
            return _not_an_api(url, f"it answered HTTP {status} with an HTML page")
        if status == 401:
            return f"{redact_url(url.rstrip('/'))} refused the request: {self._key_problem()}"
        return _safe_message(exc)

    def _key_problem(self) -> str:
        """Why a 401: the key's variable is unset, or the key in it was refused (never shown)."""
        if not os.environ.get(self.api_key_env):
            return f"${self.api_key_env} is not set; export it or pass --api-key-env"
        return f"the API key in ${self.api_key_env} was refused; check it or pass --api-key-env"

    # -- pre-flight -------------------------------------------------------------------

    def preflight(self) -> None:
        asyncio.run(self._preflight())

    async def _preflight(self) -> None:
        import openai

        for client, url in zip(self._client_pool(), self.base_urls, strict=False):
            shown = redact_url(url)
            try:
                response = await asyncio.wait_for(
                    client.get("/models", cast_to=object), timeout=min(30.0, self.timeout)
                )
            except (openai.APIConnectionError, openai.APITimeoutError, asyncio.TimeoutError) as exc:
                shown_hint = (self.serve_hint or "").replace("\n", "\n  ")
                hint = f"\nStart the server, for example:\n  {shown_hint}" if shown_hint else ""
                raise JudgeLoadError(
                    f"nothing answers at {shown} ({type(exc).__name__}){hint}"
                ) from exc
            except openai.APIStatusError as exc:
                if _is_html(exc.response):
                    raise JudgeLoadError(
                        _not_an_api(url, f"it answered HTTP {exc.status_code} with an HTML page")
                    ) from exc
                if exc.status_code == 401:
                    raise JudgeLoadError(
                        f"{shown} refused the request (HTTP 401): {self._key_problem()}"
                    ) from exc
                # Some compatible servers do not list models; the first request will tell.
                if exc.status_code in (404, 405):
                    continue
                raise JudgeLoadError(
                    f"{shown} answered HTTP {exc.status_code}: {_safe_message(exc)}"
                ) from exc
            except ValueError as exc:  # announced as JSON, but is not
                raise JudgeLoadError(
                    _not_an_api(url, "GET /models answered a body that is not JSON")
                ) from exc
            ids = _model_ids(response)
            if ids is None:
                html = isinstance(response, str) and _looks_like_html(response)
                what = "an HTML page" if html else "something that is not a model list"
                raise JudgeLoadError(_not_an_api(url, f"GET /models answered {what}"))
            if ids and not ({*self.listed, f"models/{self.model}"} & set(ids)):
                raise JudgeLoadError(
                    f"model {self.model!r} is not served at {shown}; it serves {ids[:10]}. Pass --model or fix the server."
                )
        await self.aclose()

    async def aclose(self) -> None:
        """Close this loop's clients (they cannot outlive it)."""
        for pool in self._clients.values():
            for client in pool:
                await client.close()
        self._clients = {}

    def close(self) -> None:
        self._clients = {}


def _sum(values: Any) -> int | None:
    items = [v for v in values if v is not None]
    return sum(items) if items else None


def _retry_after(exc: Any) -> float | None:
    try:
        value = exc.response.headers.get("retry-after")
        return min(120.0, max(0.0, float(value))) if value is not None else None
    except (AttributeError, TypeError, ValueError):
        return None


def _completion(completion: Any, url: str) -> GenResponse:
    """The answer texts and token counts of a chat completion, or why it is none."""
    from openai.types.chat import ChatCompletion

    if not isinstance(completion, ChatCompletion):  # the SDK hands back a body that is not JSON
        text = completion if isinstance(completion, str) else ""
        what = "an HTML page" if _looks_like_html(text) else "a body that is not JSON"
        return GenResponse([], error=_not_an_api(url, f"it answered {what}"))
    try:
        texts = [(choice.message.content or "").strip() for choice in completion.choices]
        finish = [str(choice.finish_reason or "") for choice in completion.choices]
        usage = completion.usage
        prompt_tokens = usage.prompt_tokens if usage else None
        completion_tokens = usage.completion_tokens if usage else None
    except (AttributeError, TypeError) as exc:  # JSON, but not a chat completion
        return GenResponse(
            [], error=_not_an_api(url, f"its answer is not a chat completion ({exc})")
        )
    served = completion.model if isinstance(completion.model, str) else None
    return GenResponse(
        texts,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        model=served,
        finish_reasons=finish,
    )


def _model_ids(response: Any) -> list[str] | None:
    """The model ids of a ``GET /models`` answer (its JSON, or its text when it is not JSON),
    or None when it is not a model list."""
    try:
        data = response.get("data")
        ids = [m["id"] for m in data]
    except (ValueError, AttributeError, TypeError, KeyError):
        return None
    return ids if all(isinstance(i, str) for i in ids) else None


def _looks_like_html(text: str) -> bool:
    head = text[:512].lstrip().lower()
    return head.startswith(("<!doctype html", "<html", "<head", "<body"))


def _is_html(response: Any) -> bool:
    """Whether an HTTP response is a web page (a proxy's or a web server's), not an API's JSON."""
    try:
        if "html" in response.headers.get("content-type", "").lower():
            return True
        return _looks_like_html(response.text)
    except Exception:  # a body that was not read or does not decode
        return False


def _not_an_api(url: str, what: str) -> str:
    url = url.rstrip("/")
    hint = "check --base-url" + ("" if "/v1" in url else "; such URLs usually end in /v1")
    return f"{redact_url(url)} is not an OpenAI-compatible API: {what} ({hint})"


def _safe_message(exc: BaseException) -> str:
    """An error message with secrets removed: servers sometimes echo the request."""
    text = str(exc)
    if len(text) > 500:
        text = text[:500] + "..."
    return redact_text(text)
