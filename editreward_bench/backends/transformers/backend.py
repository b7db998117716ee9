"""The local transformers backend: one model, shared by every request of a run."""

from __future__ import annotations

import asyncio
import gc
import threading
import typing
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import torch

from ...judges import JudgeLoadError
from ...judges.base import Backend, GenRequest, GenResponse
from ...judges.cards import CardError
from ...judges.options import Dtype, JudgeConfig, Sampling, TransformersOptions, parse_section
from ...vision import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS, resize_image
from . import generation, loading
from .prompts import LAYOUTS, render_prompt

if TYPE_CHECKING:
    from PIL import Image as PILImage


class TransformersBackend(Backend):
    """One local model, shared by every request; ``generate`` runs it in a worker thread.

    ``mode`` (:mod:`.generation`): ``exact`` makes upstream's calls, one ``generate`` of
    one sequence per prompt and pass, seeded with that pass's seed just before it;
    ``batched`` batches same-seed prompts and draws a request's n samples from one seed.
    Only batched mode takes the k passes as one request of n = k (``supports_n``).
    """

    supports_n = False

    def __init__(
        self,
        model: str,
        adapter: str | None = None,
        *,
        sampling: Sampling | Mapping[str, Any] | None = None,
        layout: str = "chat-template",
        options: TransformersOptions | None = None,
        name: str | None = None,
        **settings: Any,
    ) -> None:
        """``options`` as parsed from a card, or the same settings as keywords (``dtype=...``)."""
        self.name = name or model
        where = f"judge {self.name!r}"
        if layout not in LAYOUTS:
            raise JudgeLoadError(
                f"{where}: the transformers backend has no message layout {layout!r}; "
                f"known: {list(LAYOUTS)}"
            )
        try:
            if options is None:
                options = parse_section(
                    TransformersOptions,
                    {k: (v, where) for k, v in settings.items() if v is not None},
                )
            elif settings:
                raise CardError(f"{where}: give options or keyword settings, not both")
            if not isinstance(sampling, Sampling):
                sampling = parse_section(
                    Sampling, {k: (v, where) for k, v in (sampling or {}).items()}
                )
        except (CardError, TypeError) as exc:
            raise JudgeLoadError(str(exc)) from exc
        self.model_id = model
        self.adapter = adapter
        self.sampling = sampling.as_dict()
        self.layout = layout
        self.merge_adapter = options.merge_adapter
        self.mode = options.mode
        #: Exact mode never draws several passes from one seed: one request per pass.
        self.supports_n = self.mode == "batched"
        self.dtype = options.dtype
        cuda = loading.cuda_available()
        self.device_map = loading.resolve_device_map(options.device_map, cuda)
        self._cuda = cuda and self.device_map is not None and self.device_map != "cpu"
        self.batch_size = options.batch_size or (8 if self._cuda else 4)
        # Upstream resizes Qwen2.5-VL images itself (qwen-vl-utils); the chat-template path
        # leaves it to the processor unless bounds are given.
        min_pixels, max_pixels = options.min_pixels, options.max_pixels
        self._explicit_pixels = min_pixels is not None or max_pixels is not None
        resize = layout == "qwen2.5-vl" or self._explicit_pixels
        self.min_pixels = (min_pixels or DEFAULT_MIN_PIXELS) if resize else None
        self.max_pixels = (max_pixels or DEFAULT_MAX_PIXELS) if resize else None
        if (
            self.min_pixels is not None
            and self.max_pixels is not None
            and self.min_pixels > self.max_pixels
        ):
            raise JudgeLoadError(
                f"{where}: min_pixels {self.min_pixels} is above max_pixels {self.max_pixels}"
            )
        #: The options as resolved here: what the judge's fingerprint is made of.
        self.options = replace(
            options,
            dtype=typing.cast(Dtype, self.resolved_dtype()),
            batch_size=self.batch_size,
            min_pixels=self.min_pixels,
            max_pixels=self.max_pixels,
        )
        self._gen_kwargs, self.do_sample = generation.generation_kwargs(self.sampling)
        self._lock = threading.Lock()
        self._loaded: loading.Loaded | None = None
        self._factor: int | None = None

    @classmethod
    def from_config(cls, config: JudgeConfig) -> TransformersBackend:
        card = config.card
        if not card.model:
            raise JudgeLoadError(
                f"judge {card.name!r} names no model; pass --model with a hub id or a local folder"
            )
        assert isinstance(config.backend, TransformersOptions)
        return cls(
            card.model,
            card.adapter,
            sampling=config.sampling,
            layout=config.common.layout,
            options=config.backend,
            name=card.name,
        )

    # -- description ---------------------------------------------------------------------

    def resolved_dtype(self) -> str:
        return loading.resolve_dtype(self.dtype, self._cuda)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "transformers",
            "model": self.model_id,
            "adapter": self.adapter,
            "sampling": dict(self.sampling),
            "layout": self.layout,
            "min_pixels": self.min_pixels,
            "max_pixels": self.max_pixels,
            "dtype": self.resolved_dtype(),
            "merge_adapter": self.merge_adapter if self.adapter else None,
            "mode": self.mode,
            "batch_size": self.batch_size,
        }

    # -- loading -------------------------------------------------------------------------

    def preflight(self) -> None:
        with self._lock:
            self._load()

    def close(self) -> None:
        with self._lock:
            loaded, self._loaded = self._loaded, None
            del loaded
            gc.collect()
            if self._cuda:
                torch.cuda.empty_cache()

    def _config(self) -> Any:
        return loading.read_config(self.name, self.model_id)

    def _load(self) -> loading.Loaded:
        if self._loaded is not None:
            return self._loaded
        loading.check_device(self.name, self.device_map, self.dtype)
        config = self._config()
        self._loaded = loading.load_model(
            self.name,
            self.model_id,
            self.adapter,
            config=config,
            dtype=self.resolved_dtype(),
            device_map=self.device_map,
            cuda=self._cuda,
            merge_adapter=self.merge_adapter,
        )
        self._factor = loading.vision_factor(config)
        return self._loaded

    def vision_factor(self) -> int:
        """Pixels per side of one vision token: patch size x spatial merge size."""
        if self._factor is None:
            self._factor = loading.vision_factor(self._config())
        return self._factor

    # -- requests ------------------------------------------------------------------------

    def prepare_images(self, images: Sequence[PILImage.Image]) -> tuple[Any, ...]:
        """The candidate's images as the model sees them (resized once, reused by every pass)."""
        if self.min_pixels is None or self.max_pixels is None:
            return tuple(img if img.mode == "RGB" else img.convert("RGB") for img in images)
        factor = self.vision_factor()
        return tuple(resize_image(img, factor, self.min_pixels, self.max_pixels) for img in images)

    def render(self, request: GenRequest, processor: Any) -> str:
        """The prompt string of one request, image placeholders unexpanded."""
        return render_prompt(self.layout, request.text, len(request.images), processor)

    def encode(self, requests: Sequence[GenRequest]) -> dict[str, Any]:
        """Model inputs (tensors on the model's device) for a batch, left padded."""
        loaded = self._load()
        processor = loaded.processor
        texts = [self.render(r, processor) for r in requests]
        images = [img for r in requests for img in r.images]
        kwargs: dict[str, Any] = {}
        if self._explicit_pixels and self.min_pixels is not None and self.max_pixels is not None:
            kwargs["images_kwargs"] = {
                "size": {"shortest_edge": self.min_pixels, "longest_edge": self.max_pixels}
            }
        inputs = processor(
            text=texts,
            images=images or None,
            padding=True,
            padding_side="left",
            return_tensors="pt",
            **kwargs,
        )
        out: dict[str, Any] = {}
        for key, value in dict(inputs).items():
            if key == "mm_token_type_ids" and not loaded.accepts_mm_token_type_ids:
                continue
            if isinstance(value, torch.Tensor):
                out[key] = value.to(loaded.device)
        return out

    async def generate(self, requests: Sequence[GenRequest]) -> list[GenResponse]:
        if not requests:
            return []
        return await asyncio.to_thread(self._generate_blocking, list(requests))

    def _generate_blocking(self, requests: list[GenRequest]) -> list[GenResponse]:
        with self._lock:
            self._load()
            if self.mode == "exact":
                return [self._run_exact(request) for request in requests]
            responses: list[GenResponse | None] = [None] * len(requests)
            for seed, n, indices in self._plan(requests):
                per_batch = max(1, self.batch_size // n)
                for start in range(0, len(indices), per_batch):
                    chunk = indices[start : start + per_batch]
                    answers = self._run_safely([requests[i] for i in chunk], n, seed)
                    for i, answer in zip(chunk, answers, strict=True):
                        responses[i] = answer
        assert all(r is not None for r in responses)
        return [r for r in responses if r is not None]

    def _plan(self, requests: list[GenRequest]) -> list[tuple[int, int, list[int]]]:
        """(seed, n, request indices): same-seed requests together, in first-seen order."""
        return generation.plan_batches(requests, self.do_sample)

    def _run_safely(self, batch: list[GenRequest], n: int, seed: int) -> list[GenResponse]:
        """Run a batch; out of memory, run its halves; any other failure fails the batch only."""
        return generation.run_safely(self._run_batch, batch, n, seed, cuda=self._cuda)

    def _run_batch(self, batch: list[GenRequest], n: int, seed: int) -> list[GenResponse]:
        loaded = self._load()
        inputs = self.encode(batch)
        return generation.generate_batch(
            loaded, inputs, self._gen_kwargs, requests=len(batch), n=n, seed=seed,
            do_sample=self.do_sample,
        )  # fmt: skip

    def _run_exact(self, request: GenRequest) -> GenResponse:
        """Upstream's calls for one request: sample j alone, seeded ``seed + j`` just before."""
        samples = [
            generation.run_safely(self._run_one, [request], 1, request.seed + j, cuda=self._cuda)[0]
            for j in range(max(1, request.n))
        ]
        return generation.merge_samples(samples)

    def _run_one(self, batch: list[GenRequest], n: int, seed: int) -> list[GenResponse]:
        loaded = self._load()
        inputs = self.encode(batch)
        return generation.generate_batch(
            loaded, inputs, self._gen_kwargs, requests=len(batch), n=n, seed=seed,
            do_sample=self.do_sample, exact=True,
        )  # fmt: skip
