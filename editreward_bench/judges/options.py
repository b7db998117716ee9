"""Typed judge settings: one frozen class per concern, parsed and validated once.

A judge card's ``[sampling]`` and ``[options]`` tables, plus any overrides (CLI
flags, ``--option key=value``, Python keyword arguments), become a
:class:`JudgeConfig`: the card's identity, a :class:`Sampling`, the
:class:`CommonOptions` every model judge has, and the options of its backend
(:class:`OpenAIOptions` or :class:`TransformersOptions`). An unknown key or a
value of the wrong type is a :class:`CardError` naming the card, the key and the
expected type, never silently dropped.

Every field declares whether it changes the judge's answers (``affects``: a bool,
or a function of the whole configuration, e.g. the batch size matters only when
the local backend samples). The judge's fingerprint, the judge part of the pass
store's key, is derived from these declarations alone (:func:`answer_settings`):
a new field cannot be forgotten by a hand-kept list.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, TypeVar, Union

from ..vision import ImageFormat
from .cards import CardError, JudgeCard

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: Message layouts: upstream's API path (text, then images), upstream's Qwen2.5-VL prompt
#: (``<img1>: `` image ``<img2>: `` image, then text), or the chat template's order.
Layout = Literal["text-first", "qwen2.5-vl", "images-first", "chat-template"]
Dtype = Literal["auto", "bfloat16", "float16", "float32"]
#: The kind of server behind an OpenAI-compatible endpoint.
Server = Literal["vllm", "sglang", "openai"]
#: How the local backend generates: upstream's call sequence, or batches (faster).
GenerationMode = Literal["exact", "batched"]
_DTYPE_ALIASES = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32"}

Affects = bool | Callable[["JudgeConfig"], bool]
Opts = TypeVar("Opts")


@dataclass(frozen=True)
class Spec:
    """What a field means: its help text, whether it changes answers, its bounds."""

    help: str
    affects: Affects
    minimum: float | None = None
    maximum: float | None = None
    #: Exclusive lower bound (a timeout of 0 makes no sense, a temperature of 0 does).
    above: float | None = None
    #: Another valid value, for the tests that prove the declaration right.
    example: Any = None


def setting(
    default: Any,
    help: str,
    *,
    affects: Affects,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    example: Any = None,
) -> Any:
    spec = Spec(help, affects, minimum, maximum, above, example)
    return field(default=default, metadata={"erb": spec})


def spec_of(f: dataclasses.Field[Any]) -> Spec:
    return typing.cast(Spec, f.metadata["erb"])


# --------------------------------------------------------------------------- the classes


@dataclass(frozen=True)
class Sampling:
    """The sampling parameters a card sends, exactly these and no others (None: not sent)."""

    temperature: float | None = setting(None, "sampling temperature; 0 decodes greedily",
                                        affects=True, minimum=0, example=0.3)  # fmt: skip
    top_p: float | None = setting(None, "nucleus sampling mass", affects=True, above=0,
                                  maximum=1, example=0.5)  # fmt: skip
    top_k: int | None = setting(None, "top-k sampling (-1 or 0: off)", affects=True,
                                minimum=-1, example=5)  # fmt: skip
    max_tokens: int | None = setting(None, "most tokens an answer may have (OpenAI name)",
                                     affects=True, minimum=1, example=256)  # fmt: skip
    max_new_tokens: int | None = setting(None, "most tokens an answer may have (transformers name)",
                                         affects=True, minimum=1, example=256)  # fmt: skip
    repetition_penalty: float | None = setting(None, "repetition penalty (1.0: none)",
                                               affects=True, above=0, example=1.05)  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        """The parameters that are set, by the names the card used."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }

    def max_answer_tokens(self, default: int) -> int:
        return self.max_new_tokens or self.max_tokens or default


@dataclass(frozen=True)
class CommonOptions:
    """Options every model judge has, whatever its backend."""

    layout: Layout = setting("chat-template", "how images and text are laid out in the message",
                             affects=True, example="text-first")  # fmt: skip
    score_range: int = setting(25, "the range R the rules ask for (answers are rescaled to 0..10)",
                               affects=True, minimum=1, example=10)  # fmt: skip
    max_retries: int = setting(2, "times an unparseable answer is asked again, each with a new seed",
                               affects=False, minimum=0, example=4)  # fmt: skip
    price_input_per_mtok: float | None = setting(None, "USD per million prompt tokens (cost report)",
                                                 affects=False, minimum=0, example=1.5)  # fmt: skip
    price_output_per_mtok: float | None = setting(None, "USD per million completion tokens (cost report)",
                                                  affects=False, minimum=0, example=3.0)  # fmt: skip


@dataclass(frozen=True)
class OpenAIOptions:
    """An OpenAI-compatible chat-completions server: OpenAI, vLLM, SGLang, Gemini's endpoint."""

    base_urls: tuple[str, ...] = setting(("http://localhost:8000/v1",),
                                         "endpoint(s); several spread the requests round robin",
                                         affects=False, example=("http://127.0.0.1:9/v1",))  # fmt: skip
    served_model: str | None = setting(None, "the name the server knows the model by",
                                       affects=True, example="other-name")  # fmt: skip
    api_key_env: str = setting("OPENAI_API_KEY", "environment variable holding the API key",
                               affects=False, example="OTHER_KEY")  # fmt: skip
    supports_n: bool = setting(False, "ask for the k samples in one request (n = k, one seed) instead "
                               "of one request per pass (seed + i)", affects=True, example=True)  # fmt: skip
    send_seed: bool | None = setting(None, "send each pass's seed (default: when the card samples)",
                                     affects=True, example=False)  # fmt: skip
    concurrency: int = setting(8, "requests in flight per endpoint", affects=False, minimum=1,
                               example=3)  # fmt: skip
    timeout: float = setting(600.0, "seconds before a request is abandoned", affects=False,
                             above=0, example=5.0)  # fmt: skip
    max_attempts: int = setting(6, "tries of a request that fails transiently (429, 5xx, network)",
                                affects=False, minimum=1, example=2)  # fmt: skip
    backoff: float = setting(0.5, "first retry delay in seconds, doubled each time", affects=False,
                             minimum=0, example=0.01)  # fmt: skip
    max_model_len: int = setting(4096, "context length in the printed `vllm serve` recipe",
                                 affects=False, minimum=1, example=8192)  # fmt: skip
    image_format: ImageFormat = setting("jpeg", "how images are sent: jpeg (PIL's default quality, "
                                        "upstream's API path) or png (lossless, as a local model "
                                        "is handed the image)", affects=True, example="png")  # fmt: skip
    # The same model answers whichever server holds it; only the request's model name differs.
    server: Server = setting("vllm", "the server behind base_urls: vllm, sglang (a LoRA module is "
                             "asked for as <base>:<adapter>) or openai; also picks the printed "
                             "serving recipe", affects=False, example="sglang")  # fmt: skip
    lora: bool = setting(False, "the server holds the card's adapter as a LoRA module (erb "
                         "serve-command --lora), not merged into the weights (erb merge-adapter, "
                         "the default)", affects=False, example=True)  # fmt: skip
    pre_resize: bool = setting(False, "resize each image as qwen-vl-utils does (factor 28, 4 to 16384 "
                               "vision tokens, PIL's default resampling) before sending it, as "
                               "upstream's vLLM path does", affects=True, example=True)  # fmt: skip


def _samples(config: JudgeConfig) -> bool:
    """Whether the local backend samples (then the batching changes the random stream)."""
    temperature = config.sampling.temperature
    return temperature is None or temperature > 0


def _batches_share_a_stream(config: JudgeConfig) -> bool:
    """Whether the local backend's batch size changes answers: batched mode, sampling."""
    return getattr(config.backend, "mode", None) == "batched" and _samples(config)


@dataclass(frozen=True)
class TransformersOptions:
    """A local Hugging Face ``transformers`` model (Qwen2.5-VL, Qwen3-VL), with an optional LoRA."""

    dtype: Dtype = setting("auto", "weights' dtype; auto: bf16 on a GPU, float32 on the CPU",
                           affects=True, example="bfloat16")  # fmt: skip
    device_map: str | None = setting(None, "accelerate's device map (auto, cpu, cuda:0)",
                                     affects=False, example="cpu")  # fmt: skip
    mode: GenerationMode = setting("exact", "exact: upstream's calls, one generate() of one sequence "
                                   "per prompt and pass, seeded 42 + i just before it; batched: "
                                   "same-seed prompts in batches of batch_size, the k passes as "
                                   "k samples of one seed (faster; answers depend on the batching)",
                                   affects=True, example="batched")  # fmt: skip
    batch_size: int | None = setting(None, "batched mode: sequences per generate() call (default 8 "
                                     "on a GPU, 4 on the CPU); one random stream serves a batch, so "
                                     "it changes sampled answers. Exact mode: candidates per judge "
                                     "call only", affects=_batches_share_a_stream, minimum=1,
                                     example=3)  # fmt: skip
    min_pixels: int | None = setting(None, "image resize floor in pixels", affects=True, minimum=1,
                                     example=784)  # fmt: skip
    max_pixels: int | None = setting(None, "image resize cap in pixels", affects=True, minimum=1,
                                     example=200704)  # fmt: skip
    merge_adapter: bool = setting(True, "merge the LoRA into the weights (as upstream) or apply it "
                                  "unmerged", affects=lambda c: c.card.adapter is not None,
                                  example=False)  # fmt: skip


BackendOptions = OpenAIOptions | TransformersOptions
BACKEND_OPTIONS: dict[str, type[Any]] = {
    "openai": OpenAIOptions,
    "transformers": TransformersOptions,
}
#: Card [options] keys spelled another way; the value is converted to the field's type.
ALIASES = {"base_url": "base_urls"}


@dataclass(frozen=True)
class JudgeConfig:
    """Everything a model judge is built from, validated."""

    card: JudgeCard
    sampling: Sampling
    common: CommonOptions
    backend: Any  # OpenAIOptions | TransformersOptions | None (no model backend)
    #: Settings that came from overrides rather than the card, by name.
    overridden: tuple[str, ...] = ()

    def sections(self) -> list[Any]:
        return [s for s in (self.sampling, self.common, self.backend) if s is not None]

    def with_backend(self, backend: Any) -> JudgeConfig:
        """The same configuration with the backend's options as it resolved them."""
        return replace(self, backend=backend)


# --------------------------------------------------------------------------- parsing


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(v) for v in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(_type_name(a) for a in inner)
    if origin is tuple:
        return "a list of strings"
    return {
        bool: "a boolean (true or false)",
        int: "an integer",
        float: "a number",
        str: "a string",
    }.get(tp, str(tp))


def _coerce(value: Any, tp: Any) -> Any:
    """``value`` as type ``tp``, or raise ValueError. Only lossless conversions."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        for option in typing.get_args(tp):
            if option is type(None):
                continue
            try:
                return _coerce(value, option)
            except ValueError:
                continue
        raise ValueError
    if origin is Literal:
        if isinstance(value, str) and value in typing.get_args(tp):
            return value
        raise ValueError
    if origin is tuple:
        items = [value] if isinstance(value, str) else value
        if isinstance(items, (list, tuple)) and items and all(isinstance(v, str) for v in items):
            return tuple(items)
        raise ValueError
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ValueError
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ValueError
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ValueError
    if tp is str:
        if isinstance(value, str) and value:
            return value
        raise ValueError
    raise ValueError


def _check_bounds(name: str, value: Any, spec: Spec, where: str) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    if spec.minimum is not None and value < spec.minimum:
        raise CardError(f"{where}: {name!r} must be at least {spec.minimum:g}, got {value!r}")
    if spec.maximum is not None and value > spec.maximum:
        raise CardError(f"{where}: {name!r} must be at most {spec.maximum:g}, got {value!r}")
    if spec.above is not None and value <= spec.above:
        raise CardError(f"{where}: {name!r} must be above {spec.above:g}, got {value!r}")


def parse_section(cls: type[Opts], values: Mapping[str, tuple[Any, str]]) -> Opts:
    """An options object from ``{name: (value, where)}``; ``where`` names the value's origin."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name not in values:
            continue
        value, where = values[f.name]
        tp = hints[f.name]
        if isinstance(value, str) and tp == Dtype:
            value = value.lower().removeprefix("torch.")
            value = _DTYPE_ALIASES.get(value, value)
        try:
            kwargs[f.name] = _coerce(value, tp)
        except ValueError:
            raise CardError(
                f"{where}: {f.name!r} must be {_type_name(tp)}, got {value!r}"
            ) from None
        _check_bounds(f.name, kwargs[f.name], spec_of(f), where)
    return cls(**kwargs)


def field_names(cls: type[Any]) -> list[str]:
    return [f.name for f in fields(cls)]


def _unknown(key: str, known: list[str], where: str, what: str) -> CardError:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return CardError(f"{where}: unknown {what} {key!r}{hint} (known: {', '.join(sorted(known))})")


def parse_override_value(text: str) -> Any:
    """A ``--option key=value`` value: a TOML literal (``true``, ``4``, ``0.5``, ``"x"``,
    ``["a", "b"]``) or, failing that, the text itself."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def card_where(card: JudgeCard) -> str:
    return f"judge card {card.name!r} ({card.source})"


def parse_config(
    card: JudgeCard,
    overrides: Mapping[str, Any] | None = None,
    *,
    optional: Mapping[str, Any] | None = None,
) -> JudgeConfig:
    """Validate a card's sampling and options with ``overrides`` applied on top.

    ``overrides`` must each name a setting of this judge (an error otherwise);
    ``optional`` ones (run-wide settings such as the concurrency) apply where the
    backend has them and are ignored elsewhere. None values mean "not given".
    """
    where = card_where(card)
    backend_cls = BACKEND_OPTIONS.get(card.backend)
    sections: list[tuple[str, type[Any] | None]] = [
        ("sampling", Sampling),
        ("common", CommonOptions if backend_cls is not None else None),
        ("backend", backend_cls),
    ]
    owner: dict[str, str] = {}
    for section, cls in sections:
        if cls is not None:
            owner.update({name: section for name in field_names(cls)})
    gathered: dict[str, dict[str, tuple[Any, str]]] = {"sampling": {}, "common": {}, "backend": {}}

    option_names = [n for n, s in owner.items() if s != "sampling"]
    for key, value in card.sampling.items():
        if owner.get(key) != "sampling":
            raise _unknown(key, field_names(Sampling), where, "sampling parameter")
        gathered["sampling"][key] = (value, f"{where} [sampling]")
    for key, value in card.options.items():
        name = ALIASES.get(key, key)
        if name not in owner or owner[name] == "sampling":
            kind = (
                f"option for the {card.backend} backend"
                if backend_cls
                else "option (this judge has none)"
            )
            raise _unknown(key, option_names + list(ALIASES), where, kind)
        gathered[owner[name]][name] = (value, f"{where} [options]")

    overridden: list[str] = []
    for given, strict in ((optional or {}, False), (overrides or {}, True)):
        for key, value in given.items():
            if value is None:
                continue
            name = ALIASES.get(key, key)
            if name not in owner:
                if not strict:
                    continue
                elsewhere = [b for b, c in BACKEND_OPTIONS.items() if name in field_names(c)]
                if elsewhere:
                    raise CardError(
                        f"{key!r} is a setting of the {elsewhere[0]} backend; judge {card.name!r} "
                        f"runs on the {card.backend} backend (--backend {elsewhere[0]} switches it)"
                    )
                raise _unknown(
                    key,
                    list(owner),
                    f"override for judge {card.name!r} ({card.backend} backend)",
                    "setting",
                )
            gathered[owner[name]][name] = (value, f"override of judge {card.name!r}")
            if strict:
                overridden.append(name)

    sampling = parse_section(Sampling, gathered["sampling"])
    if sampling.max_tokens is not None and sampling.max_new_tokens is not None:
        raise CardError(f"{where}: give max_tokens or max_new_tokens, not both")
    common = parse_section(CommonOptions, gathered["common"]) if backend_cls else CommonOptions()
    backend = parse_section(backend_cls, gathered["backend"]) if backend_cls else None
    return JudgeConfig(card, sampling, common, backend, tuple(overridden))


# --------------------------------------------------------------------------- declarations


def affects_answers(f: dataclasses.Field[Any], config: JudgeConfig) -> bool:
    affects = spec_of(f).affects
    return affects(config) if callable(affects) else bool(affects)


def answer_settings(config: JudgeConfig) -> dict[str, Any]:
    """Every setting that changes answers, by name, with its (resolved) value."""
    out: dict[str, Any] = {}
    for section in config.sections():
        for f in fields(section):
            if affects_answers(f, config):
                value = getattr(section, f.name)
                out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def all_settings(config: JudgeConfig) -> dict[str, Any]:
    """Every setting with its value, credentials in URLs masked (for manifests and listings)."""
    from ..redact import redact_url

    out: dict[str, Any] = {}
    for section in config.sections():
        for f in fields(section):
            value = getattr(section, f.name)
            if f.name == "base_urls":
                value = [redact_url(u) for u in value]
            out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def describe_settings() -> list[dict[str, Any]]:
    """Every setting of every section: name, section, type, default, help, answer-changing."""
    rows = []
    for section, cls in (("sampling", Sampling), ("common", CommonOptions),
                         *BACKEND_OPTIONS.items()):  # fmt: skip
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            spec = spec_of(f)
            rows.append({
                "name": f.name, "section": section, "type": _type_name(hints[f.name]),
                "default": f.default, "help": spec.help,
                "affects_answers": spec.affects if isinstance(spec.affects, bool) else "depends",
            })  # fmt: skip
    return rows
