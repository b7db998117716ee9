"""How a card's judge is served for the OpenAI-compatible backend: the recipes.

By default a judge with a LoRA adapter is served as upstream serves it: the adapter
merged into the base weights once (``erb merge-adapter``; peft ``merge_and_unload``,
bf16), and the merged folder served under the judge's name. A server that applies the
LoRA at run time serves another model when it drops part of the adapter: vLLM applies
LoRA to the language model only and drops vision-tower (``visual.*``) weights with a
warning, unless started with ``--enable-tower-connector-lora``. The LoRA recipe is
therefore printed only on request, after the adapter's own files say it leaves the
vision tower alone (:func:`check_lora`), or with that flag.

SGLang selects a LoRA adapter in an OpenAI-style request as ``model = "<base>:<adapter>"``,
not by the adapter's name alone (:func:`request_model`).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any

from ..adapters import AdapterInfo, base_module_names, collapse, read_adapter, vllm_max_lora_rank
from ..judges.options import JudgeConfig, OpenAIOptions

ENGINES = ("vllm", "sglang")
#: Tensor-parallel size by model size, as upstream ran them (72B on 4 GPUs).
_DEFAULT_TP = {"72b": 4, "32b": 2}
#: vLLM must be told the largest LoRA rank it will load (its default is 16).
DEFAULT_MAX_LORA_RANK = 64
#: The dtype a merged judge is written in and served in (upstream's: bf16).
MERGE_DTYPE = "bfloat16"
#: Stands for the merged folder in a printed recipe; the line before it sets it.
MERGED = "$MERGED"


class ServeError(ValueError):
    """A recipe cannot be given as asked; the one-line message says why and what to do."""


def served_name(config: JudgeConfig) -> str:
    """The model name the server knows the judge by: the card's served name, its own name
    when it has an adapter (a LoRA module's name, or the merged model's), or the base model."""
    card, options = config.card, config.backend
    served = options.served_model if isinstance(options, OpenAIOptions) else None
    return str(served or (card.name if card.adapter else card.model))


def request_model(config: JudgeConfig) -> str:
    """The ``model`` field of a request: the served name, or SGLang's ``<base>:<adapter>``
    when SGLang holds the adapter as a LoRA module."""
    options = config.backend
    name = served_name(config)
    if (
        isinstance(options, OpenAIOptions)
        and options.server == "sglang"
        and options.lora
        and config.card.adapter
    ):
        return f"{config.card.model}:{name}"
    return name


def listed_models(config: JudgeConfig) -> tuple[str, ...]:
    """Model ids whose presence in ``GET /v1/models`` means the judge is served."""
    model = request_model(config)
    if model != served_name(config):  # SGLang lists the base model (and, lately, the adapter)
        return (model, served_name(config), str(config.card.model))
    return (model,)


def default_tp(model: str | None) -> int:
    lowered = (model or "").lower()
    return next((n for size, n in _DEFAULT_TP.items() if size in lowered), 1)


def check_lora(config: JudgeConfig, engine: str, tower_lora: bool) -> AdapterInfo:
    """The adapter's files, read to decide whether the LoRA recipe serves the whole adapter.

    Refused (ServeError) when the card has no adapter, when its ``adapter_config.json`` is
    not on disk, and when its weights or ``target_modules`` touch the vision tower, which
    vLLM drops unless ``tower_lora`` (``--enable-tower-connector-lora``) and SGLang has no
    flag for.
    """
    card = config.card
    if not card.adapter:
        raise ServeError(f"judge {card.name!r} has no adapter: there is no LoRA to serve")
    try:
        info = read_adapter(card.adapter)
    except ValueError as exc:
        raise ServeError(str(exc)) from None
    if info is None:
        raise ServeError(
            f"the LoRA recipe needs the adapter's adapter_config.json, which is neither in a "
            f"folder {card.adapter!r} nor in the Hugging Face cache: download it first (`hf "
            f"download {card.adapter}`) or pass --adapter FOLDER, so that erb can check whether "
            "it touches the vision tower; or serve the merged model (drop --lora)"
        )
    modules = info.tower_modules(base_module_names(str(card.model)))
    if modules and not (tower_lora and engine == "vllm"):
        where = "its saved weights" if info.tower_weights() else "its target_modules"
        fix = (
            "pass --tower-lora to start vLLM with --enable-tower-connector-lora (recent vLLM)"
            if engine == "vllm"
            else "SGLang has no flag for vision-tower LoRA"
        )
        raise ServeError(
            f"the adapter {card.adapter} applies LoRA to the vision tower ({where}: "
            f"{collapse(modules)}), which {engine} would drop, serving a judge that is not "
            f"{card.name}: serve the merged model (drop --lora), or {fix}"
        )
    return info


@dataclass(frozen=True)
class Recipe:
    """A command that serves a judge, and the merge that must run before it (if any)."""

    engine: str
    argv: tuple[str, ...]
    #: The ``erb merge-adapter`` command whose printed folder ``argv`` serves as ``$MERGED``.
    merge_argv: tuple[str, ...] | None
    #: The name requests use and ``GET /v1/models`` lists.
    served: str
    listed: tuple[str, ...]

    def text(self) -> str:
        serve = shlex.join(self.argv).replace(shlex.quote(MERGED), f'"{MERGED}"')
        if self.merge_argv is None:
            return serve
        return f"MERGED=$({shlex.join(self.merge_argv)})\n{serve}"


def merge_command(config: JudgeConfig, dtype: str = MERGE_DTYPE) -> tuple[str, ...]:
    """The ``erb merge-adapter`` command for the card's model and adapter."""
    card = config.card
    assert card.adapter is not None
    if {"model", "adapter"} & set(card.replaced) or card.source.startswith("plugin:"):
        args = ["erb", "merge-adapter", card.adapter, "--base", str(card.model)]
    else:
        args = ["erb", "merge-adapter", card.name if card.source == "built-in" else card.source]
    if dtype != MERGE_DTYPE:
        args += ["--dtype", dtype]
    return tuple(args)


def serve_recipe(
    config: JudgeConfig,
    *,
    engine: str = "vllm",
    tp: int | None = None,
    dp: int | None = None,
    port: int = 8000,
    host: str | None = None,
    lora: bool | None = None,
    tower_lora: bool = False,
    merged: str | None = None,
    dtype: str = MERGE_DTYPE,
) -> Recipe:
    """The command that serves ``config``'s judge with ``engine`` (vllm or sglang).

    A judge with an adapter is served merged (``merged``: the folder, else ``$MERGED`` set
    by the ``erb merge-adapter`` line before it), or as a LoRA module when ``lora`` (default:
    the judge's ``lora`` setting) after :func:`check_lora`.
    """
    if engine not in ENGINES:
        raise ServeError(f"unknown engine {engine!r}; erb starts {' or '.join(ENGINES)}")
    card, options = config.card, config.backend
    if not card.model:
        raise ServeError(f"judge {card.name!r} names no model to serve")
    if lora is None:
        lora = bool(isinstance(options, OpenAIOptions) and options.lora)
    tp = tp or default_tp(card.model)
    name = served_name(config)
    info = check_lora(config, engine, tower_lora) if lora else None
    merge_argv = None
    if card.adapter and info is None:
        model = merged or MERGED
        merge_argv = None if merged else merge_command(config, dtype)
    else:
        model = str(card.model)
    max_len = options.max_model_len if isinstance(options, OpenAIOptions) else 4096
    if engine == "vllm":
        args = ["vllm", "serve", model]
        if info is not None:
            rank = vllm_max_lora_rank(info.rank or DEFAULT_MAX_LORA_RANK)
            args += ["--enable-lora", "--lora-modules", f"{name}={card.adapter}"]
            args += ["--max-lora-rank", str(rank)]
            if tower_lora:
                args += ["--enable-tower-connector-lora"]
        else:
            args += ["--served-model-name", name]
        if card.adapter and info is None:
            args += ["--dtype", dtype]  # the merged folder's own dtype, whatever its config says
        args += ["--tensor-parallel-size", str(tp)]
        if dp and dp > 1:
            args += ["--data-parallel-size", str(dp)]
        args += [
            "--limit-mm-per-prompt", json.dumps({"image": 2}, separators=(",", ":")),
            "--max-model-len", str(max_len),
            "--enable-prefix-caching",
            # Sampling defaults are vLLM's own, not the model's generation_config.json: a field a
            # request leaves out then never takes a value the upstream path did not use.
            "--generation-config", "vllm",
            # The chat template is handed each message's content as the list of parts erb
            # sent. The qwen2.5-vl layout interleaves text and images ("<img1>: ", image,
            # "<img2>: ", image, text); rendered as one string ("string" format) the parts
            # are joined and vLLM places the image tokens itself, so the server's prompt
            # would not be upstream's (tests/test_chat_template.py). vLLM guesses the format
            # from the template when not told ("auto"); the recipe does not leave it to a guess.
            "--chat-template-content-format", "openai",
        ]  # fmt: skip
    else:
        args = ["python", "-m", "sglang.launch_server", "--model-path", model]
        if info is None:
            args += ["--served-model-name", name]
        if card.adapter and info is None:
            args += ["--dtype", dtype]
        args += ["--tp-size", str(tp)]
        if dp and dp > 1:
            args += ["--dp-size", str(dp)]
        args += ["--context-length", str(max_len)]
        if info is not None:
            # SGLang then serves the base under its path and the adapter as <base>:<name>.
            args += ["--enable-lora", "--lora-paths", f"{name}={card.adapter}"]
            args += ["--max-lora-rank", str(info.rank or DEFAULT_MAX_LORA_RANK)]
    if host:
        args += ["--host", host]
    args += ["--port", str(port)]
    sglang_lora = engine == "sglang" and info is not None
    model_id = f"{card.model}:{name}" if sglang_lora else name
    listed = (model_id, name, str(card.model)) if sglang_lora else (model_id,)
    return Recipe(engine, tuple(args), merge_argv, model_id, listed)


def vllm_serve_command(config: JudgeConfig, tp: int | None = None, port: int = 8000) -> str:
    """The default vLLM recipe as text (kept for callers of earlier versions)."""
    return serve_recipe(config, engine="vllm", tp=tp, port=port, lora=False).text()


def serve_hint(config: JudgeConfig) -> str:
    """What to run when nothing answers at the judge's local endpoint."""
    options = config.backend
    engine = (
        "sglang" if isinstance(options, OpenAIOptions) and options.server == "sglang" else "vllm"
    )
    try:
        return serve_recipe(config, engine=engine).text()
    except ServeError:
        return serve_recipe(config, engine=engine, lora=False).text()


def describe(recipe: Recipe) -> dict[str, Any]:
    """The recipe for a run's manifest."""
    return {"engine": recipe.engine, "command": list(recipe.argv), "served": recipe.served}
