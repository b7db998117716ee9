"""Local Hugging Face ``transformers`` backend: Qwen2.5-VL / Qwen3-VL, with an optional LoRA.

What it reproduces of upstream EditScore's local path:

- the model is loaded with ``from_pretrained`` (bf16, ``device_map="auto"`` on a
  GPU; float32 on CPU), and the LoRA adapter is applied with peft and merged;
- layout ``qwen2.5-vl``: the prompt string is built by hand, images first
  (``<img1>: `` + vision tokens, ...), then the text, under the default system
  prompt; each image is first resized as ``qwen_vl_utils.process_vision_info``
  does (``smart_resize`` to a multiple of 28, between 4 and 16384 vision tokens);
- layout ``chat-template`` (Qwen3-VL): the processor's chat template renders
  ``[images..., text]``, and the processor alone resizes the images;
- sampling with the card's temperature, top_p, top_k and max_new_tokens on top of
  the model's own generation config; each request's seed is set (``random``,
  numpy, torch, CUDA) before its batch is generated; answers are decoded with
  special tokens skipped and stripped.

Unlike upstream it generates in batches (left padding): requests that share a
seed (and ``n``) go into one batch, of at most ``batch_size`` sequences. Under
sampling the random stream is then shared by the rows of a batch, so answers
depend on how requests were batched; greedy answers do not.

When ``AutoProcessor`` cannot be built (PyPI's torchvision does not import
beside every torch, and the Qwen processors need it for their video
processor), an image-only processor is assembled from
``Qwen2VLImageProcessorPil`` and the tokenizer.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import os
import random
import threading
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import transformers

from ..judges import JudgeLoadError
from ..judges.base import Backend, GenRequest, GenResponse
from ..judges.cards import CardError
from ..judges.options import Dtype, JudgeConfig, Sampling, TransformersOptions, parse_section
from ..vision import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS, resize_image

if TYPE_CHECKING:
    from PIL import Image as PILImage

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
DEFAULT_MAX_NEW_TOKENS = 512
#: Layouts: upstream's hand-built Qwen2.5-VL prompt, or the chat template (images or text first).
LAYOUTS = ("qwen2.5-vl", "chat-template", "images-first", "text-first")
IMAGE_TOKEN = "<|image_pad|>"

#: Model classes by config ``model_type``; the first one transformers has is used.
_MODEL_CLASSES: dict[str, tuple[str, ...]] = {
    "qwen2_5_vl": ("Qwen2_5_VLForConditionalGeneration",),
    "qwen2_vl": ("Qwen2VLForConditionalGeneration",),
    "qwen3_vl": ("Qwen3VLForConditionalGeneration",),
    "qwen3_vl_moe": ("Qwen3VLMoeForConditionalGeneration",),
}


# --------------------------------------------------------------------------- prompts


def qwen25_prompt(text: str, n_images: int, system: str = DEFAULT_SYSTEM_PROMPT) -> str:
    """Upstream EditScore's Qwen2.5-VL prompt string (its ``apply_chat_template``)."""
    prompt = f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n"
    prompt += "".join(
        f"<img{i}>: <|vision_start|>{IMAGE_TOKEN}<|vision_end|>" for i in range(1, n_images + 1)
    )
    return prompt + f"{text}<|im_end|>\n<|im_start|>assistant\n"


def chat_messages(text: str, n_images: int, text_first: bool = False) -> list[dict[str, Any]]:
    images: list[dict[str, Any]] = [{"type": "image"} for _ in range(n_images)]
    text_part = {"type": "text", "text": text}
    content = [text_part, *images] if text_first else [*images, text_part]
    return [{"role": "user", "content": content}]


# --------------------------------------------------------------------------- processor


class ImageTextProcessor:
    """An image + text processor for Qwen-VL models that needs no torchvision.

    Does what ``Qwen2_5_VLProcessor`` does for images: each ``<|image_pad|>`` in
    the text becomes ``image_grid_thw.prod() // merge_size**2`` copies, and
    ``mm_token_type_ids`` marks them (1) apart from text (0).
    """

    def __init__(self, image_processor: Any, tokenizer: Any, chat_template: str | None = None):
        self.image_processor = image_processor
        self.tokenizer = tokenizer
        self.chat_template = chat_template or getattr(tokenizer, "chat_template", None)
        self.image_token = getattr(tokenizer, "image_token", None) or IMAGE_TOKEN
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        if self.image_token_id is None or self.image_token_id == tokenizer.unk_token_id:
            raise ValueError(f"the tokenizer has no {self.image_token} token")
        self.merge_size = int(getattr(image_processor, "merge_size", 2))

    @classmethod
    def from_pretrained(cls, source: str, **kwargs: Any) -> ImageTextProcessor:
        # transformers 5 names the torchvision-free one ...Pil; in 4.x the slow one is PIL based.
        image_processor_cls: Any = getattr(
            transformers, "Qwen2VLImageProcessorPil", None
        ) or getattr(transformers, "Qwen2VLImageProcessor", None)
        image_processor = image_processor_cls.from_pretrained(source, **kwargs)
        tokenizer = transformers.AutoTokenizer.from_pretrained(source, **kwargs)
        return cls(image_processor, tokenizer, _read_chat_template(source, **kwargs))

    def apply_chat_template(
        self,
        conversation: list[dict[str, Any]],
        *,
        tokenize: bool = False,
        add_generation_prompt: bool = True,
        **kwargs: Any,
    ) -> Any:
        if not self.chat_template:
            raise ValueError("the tokenizer has no chat template")
        return self.tokenizer.apply_chat_template(
            conversation,
            chat_template=self.chat_template,
            tokenize=tokenize,
            add_generation_prompt=add_generation_prompt,
            **kwargs,
        )

    def __call__(
        self,
        *,
        text: list[str],
        images: list[Any] | None = None,
        padding: bool = True,
        padding_side: str | None = None,
        return_tensors: str = "pt",
        images_kwargs: Mapping[str, Any] | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        image_inputs: dict[str, Any] = {}
        grids: list[int] = []
        if images:
            image_inputs = dict(
                self.image_processor(
                    images=images, return_tensors=return_tensors, **(images_kwargs or {})
                )
            )
            merge = self.merge_size**2
            grids = [
                int(torch.as_tensor(g).prod()) // merge for g in image_inputs["image_grid_thw"]
            ]
        expanded, used = [], 0
        for sample in text:
            pieces = sample.split(self.image_token)
            out = pieces[0]
            for piece in pieces[1:]:
                if used >= len(grids):
                    raise ValueError(
                        f"the text has more {self.image_token} placeholders than the {len(grids)} image(s) given"
                    )
                out += self.image_token * grids[used] + piece
                used += 1
            expanded.append(out)
        if used != len(grids):
            raise ValueError(
                f"{len(grids)} image(s) given for {used} {self.image_token} placeholder(s)"
            )
        side = {"padding_side": padding_side} if padding_side else {}
        encoded = dict(
            self.tokenizer(expanded, padding=padding, return_tensors=return_tensors, **side)
        )
        encoded["mm_token_type_ids"] = (encoded["input_ids"] == self.image_token_id).to(torch.int64)
        return {**encoded, **image_inputs}

    def batch_decode(self, sequences: Any, **kwargs: Any) -> list[str]:
        return list(self.tokenizer.batch_decode(sequences, **kwargs))


def _read_chat_template(source: str, **kwargs: Any) -> str | None:
    """The processor's chat template (chat_template.jinja / .json), if the repo has one."""
    import json

    from transformers.utils import cached_file

    for name in ("chat_template.jinja", "chat_template.json"):
        try:
            path = cached_file(
                source,
                name,
                _raise_exceptions_for_missing_entries=False,
                _raise_exceptions_for_connection_errors=False,
                **kwargs,
            )
        except Exception:
            path = None
        if not path:
            continue
        text = Path(path).read_text(encoding="utf-8")
        if name.endswith(".json"):
            template = json.loads(text).get("chat_template")
            return template if isinstance(template, str) else None
        return text
    return None


def load_processor(source: str, **kwargs: Any) -> tuple[Any, str]:
    """``AutoProcessor``, else the image-only fallback; with the name of what was built."""
    try:
        return transformers.AutoProcessor.from_pretrained(source, **kwargs), "auto"
    except Exception as auto_error:
        try:
            return ImageTextProcessor.from_pretrained(source, **kwargs), "image-only"
        except Exception as exc:
            raise exc from auto_error


# --------------------------------------------------------------------------- backend


def _hub_hint(kind: str, name: str, exc: BaseException, flag: str) -> str:
    """What to do when a model or adapter cannot be loaded."""
    from ..benchmark import looks_like_path

    path = Path(name).expanduser()
    if path.exists():
        return (
            f"cannot load the {kind} from {name!r}: {exc}. Pass {flag} with a folder that holds a "
            f"Hugging Face {kind} (config and weights)."
        )
    if looks_like_path(name):
        return (
            f"the {kind} folder {name!r} does not exist ({path.resolve()}); pass {flag} with a "
            f"folder that holds a Hugging Face {kind}, or a hub id."
        )
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
    where = (
        "offline mode is on (HF_HUB_OFFLINE) and it is not in the Hugging Face cache"
        if offline
        else str(exc)
    )
    return (
        f"cannot load the {kind} {name!r}: {where}. Download it first with "
        f"`hf download {name}`, or pass {flag} with a local folder."
    )


def _cuda_available() -> bool:
    return bool(torch.cuda.is_available())


def _wants_cuda(device_map: Any) -> bool:
    if device_map is None or device_map == "cpu":
        return False
    if isinstance(device_map, Mapping):
        return any(_wants_cuda(v) for v in device_map.values())
    if isinstance(device_map, int) and not isinstance(device_map, bool):
        return True
    text = str(device_map).lower()
    return text.startswith("cuda") or text.isdigit()


@dataclass
class _Loaded:
    model: Any
    processor: Any
    processor_kind: str
    device: Any
    accepts_mm_token_type_ids: bool
    eos_ids: frozenset[int]
    pad_id: int | None


class TransformersBackend(Backend):
    """One local model, shared by every request; ``generate`` runs it in a worker thread."""

    supports_n = True

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
        self.dtype = options.dtype
        cuda = _cuda_available()
        device_map: Any = options.device_map
        if device_map is None:
            device_map = "auto" if cuda else None
        elif device_map == "auto" and not cuda:
            device_map = None  # "auto" without a GPU would only place everything on the CPU
        self.device_map = device_map
        self._cuda = cuda and device_map is not None and device_map != "cpu"
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
        self._gen_kwargs, self.do_sample = self._generation_kwargs(self.sampling)
        self._lock = threading.Lock()
        self._loaded: _Loaded | None = None
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
        if self.dtype != "auto":
            return self.dtype
        if not self._cuda:
            return "float32"
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"

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
            "batch_size": self.batch_size,
        }

    @staticmethod
    def _generation_kwargs(sampling: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """``generate`` arguments from the card's sampling (on top of the model's generation config)."""
        max_new = sampling.get("max_new_tokens", sampling.get("max_tokens", DEFAULT_MAX_NEW_TOKENS))
        kwargs: dict[str, Any] = {"max_new_tokens": int(max_new)}
        temperature = sampling.get("temperature")
        if temperature is not None and float(temperature) <= 0:
            kwargs["do_sample"] = False
            return kwargs, False
        if temperature is not None:
            kwargs["do_sample"] = True
            kwargs["temperature"] = float(temperature)
        if sampling.get("top_p") is not None:
            kwargs["top_p"] = float(sampling["top_p"])
        if sampling.get("top_k") is not None:
            kwargs["top_k"] = int(sampling["top_k"])
        if sampling.get("repetition_penalty") is not None:
            kwargs["repetition_penalty"] = float(sampling["repetition_penalty"])
        return kwargs, bool(kwargs.get("do_sample", True))

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

    def _torch_dtype(self) -> torch.dtype:
        return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[
            self.resolved_dtype()
        ]

    def _check_device(self) -> None:
        if _cuda_available():
            return
        if _wants_cuda(self.device_map):
            raise JudgeLoadError(
                f"judge {self.name!r}: device_map={self.device_map!r} needs a CUDA GPU, and torch "
                f"sees none (torch {torch.__version__}); leave device_map unset to run on the CPU"
            )
        if self.dtype == "float16":
            raise JudgeLoadError(
                f"judge {self.name!r}: dtype float16 needs a CUDA GPU, and torch sees none "
                f"(torch {torch.__version__}); use dtype 'auto' or 'float32' on the CPU"
            )

    def _config(self) -> Any:
        try:
            return transformers.AutoConfig.from_pretrained(self.model_id)
        except (OSError, ValueError) as exc:
            raise JudgeLoadError(
                f"judge {self.name!r}: " + _hub_hint("model", self.model_id, exc, "--model")
            ) from exc

    def _load(self) -> _Loaded:
        if self._loaded is not None:
            return self._loaded
        self._check_device()
        config = self._config()
        model_cls = _model_class(config)
        kwargs: dict[str, Any] = {"dtype": self._torch_dtype()}
        placed = self.device_map is not None and self.device_map != "cpu"
        if placed:  # accelerate places the weights; on the CPU plain loading does
            kwargs["device_map"] = self.device_map
        try:
            model = model_cls.from_pretrained(self.model_id, **kwargs)
        except OSError as exc:
            raise JudgeLoadError(
                f"judge {self.name!r}: " + _hub_hint("model", self.model_id, exc, "--model")
            ) from exc
        if self.adapter:
            model = self._apply_adapter(model)
        if not placed:
            model = model.to("cuda" if self._cuda else "cpu")
        model.eval()
        try:
            processor, kind = load_processor(self.model_id)
        except Exception as exc:
            raise JudgeLoadError(
                f"judge {self.name!r}: cannot build a processor for {self.model_id!r}: {exc}"
            ) from exc
        tokenizer = processor.tokenizer
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        accepts = "mm_token_type_ids" in inspect.signature(base.forward).parameters
        eos = model.generation_config.eos_token_id
        eos_ids = {eos} if isinstance(eos, int) else set(eos or [])
        if tokenizer.eos_token_id is not None:
            eos_ids.add(int(tokenizer.eos_token_id))
        device = next(iter(base.parameters())).device
        vision = getattr(config, "vision_config", None)
        if vision is not None:
            self._factor = int(getattr(vision, "patch_size", 14)) * int(
                getattr(vision, "spatial_merge_size", 2)
            )
        self._loaded = _Loaded(
            model, processor, kind, device, accepts, frozenset(eos_ids), tokenizer.pad_token_id
        )
        return self._loaded

    def _apply_adapter(self, model: Any) -> Any:
        assert self.adapter is not None
        try:
            from peft import PeftModel
        except ImportError as exc:
            raise JudgeLoadError(
                f"judge {self.name!r} has a LoRA adapter, which needs peft: pip install 'erb[local]'"
            ) from exc
        try:
            model = PeftModel.from_pretrained(model, self.adapter)
        except (OSError, ValueError) as exc:
            raise JudgeLoadError(
                f"judge {self.name!r}: " + _hub_hint("adapter", self.adapter, exc, "--adapter")
            ) from exc
        return model.merge_and_unload() if self.merge_adapter else model

    def vision_factor(self) -> int:
        """Pixels per side of one vision token: patch size x spatial merge size."""
        if self._factor is None:
            vision = getattr(self._config(), "vision_config", None)
            patch = int(getattr(vision, "patch_size", 14))
            merge = int(getattr(vision, "spatial_merge_size", 2))
            self._factor = patch * merge
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
        n_images = len(request.images)
        if self.layout == "qwen2.5-vl":
            return qwen25_prompt(request.text, n_images)
        messages = chat_messages(request.text, n_images, text_first=self.layout == "text-first")
        text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return str(text)

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
        groups: dict[tuple[int, int], list[int]] = {}
        for i, request in enumerate(requests):
            # Greedy decoding ignores the seed: any requests may share a batch.
            seed = request.seed if self.do_sample else requests[0].seed
            groups.setdefault((seed, max(1, request.n)), []).append(i)
        return [(seed, n, indices) for (seed, n), indices in groups.items()]

    def _run_safely(self, batch: list[GenRequest], n: int, seed: int) -> list[GenResponse]:
        """Run a batch; out of memory, run its halves; any other failure fails the batch only."""
        try:
            return self._run_batch(batch, n, seed)
        except torch.cuda.OutOfMemoryError as exc:
            if self._cuda:
                torch.cuda.empty_cache()
            if len(batch) > 1:
                half = len(batch) // 2
                return self._run_safely(batch[:half], n, seed) + self._run_safely(
                    batch[half:], n, seed
                )
            return [GenResponse(texts=[], error=f"out of memory: {exc}") for _ in batch]
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            return [GenResponse(texts=[], error=message) for _ in batch]

    def _run_batch(self, batch: list[GenRequest], n: int, seed: int) -> list[GenResponse]:
        loaded = self._load()
        inputs = self.encode(batch)
        samples = n if self.do_sample else 1  # greedy: one answer, repeated n times
        kwargs = dict(self._gen_kwargs)
        if samples > 1:
            kwargs["num_return_sequences"] = samples
        if loaded.pad_id is not None:
            kwargs["pad_token_id"] = loaded.pad_id
        seed_everything(seed)
        with torch.inference_mode():
            output = loaded.model.generate(**inputs, **kwargs)
        sequences = getattr(output, "sequences", output)
        prompt_len = inputs["input_ids"].shape[1]
        generated = sequences[:, prompt_len:].to("cpu")
        texts = loaded.processor.batch_decode(
            generated, skip_special_tokens=True, clean_up_tokenization_spaces=False
        )
        prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist()
        stop = loaded.eos_ids | ({loaded.pad_id} if loaded.pad_id is not None else set())
        responses = []
        for i, _request in enumerate(batch):
            rows = range(i * samples, (i + 1) * samples)
            answers = [str(texts[r]).strip() for r in rows]
            completion = sum(
                _completion_length(generated[r].tolist(), stop, loaded.eos_ids) for r in rows
            )
            if samples < n:
                answers = answers * n
                completion *= n
            responses.append(
                GenResponse(
                    texts=answers, prompt_tokens=int(prompt_tokens[i]), completion_tokens=completion
                )
            )
        return responses


def _completion_length(
    tokens: list[int], stop: set[int] | frozenset[int], eos: frozenset[int]
) -> int:
    """Generated tokens up to and including the first end-of-sequence (padding excluded)."""
    for position, token in enumerate(tokens):
        if token in stop:
            return position + (1 if token in eos else 0)
    return len(tokens)


def seed_everything(seed: int) -> None:
    """Upstream's ``set_seed``: ``random``, numpy, torch and every CUDA device."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def _model_class(config: Any) -> Any:
    model_type = getattr(config, "model_type", None)
    for class_name in _MODEL_CLASSES.get(str(model_type), ()):
        cls = getattr(transformers, class_name, None)
        if cls is not None:
            return cls
    if model_type in _MODEL_CLASSES:
        raise JudgeLoadError(
            f"this transformers ({transformers.__version__}) cannot load {model_type!r} models; "
            "upgrade it: pip install -U transformers"
        )
    return getattr(transformers, "AutoModelForImageTextToText", None) or getattr(
        transformers, "AutoModelForVision2Seq", None
    )
