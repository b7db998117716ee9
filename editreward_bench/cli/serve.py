"""``erb serve-command`` and ``erb merge-adapter``: serving a judge."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .common import _console, _escape, _fail, _judge_entry


def _say(message: str) -> None:
    _console(stderr=True).print(f"[dim]erb:[/] {_escape(message)}", soft_wrap=True)


def _engine_name(value: str, option: str) -> str:
    from ..backends.serving import ENGINES

    if value not in ENGINES:
        _fail(f"{option} takes {' or '.join(ENGINES)}, got {value!r}")
    return value


def _served_config(judge: str, options: Any) -> Any:
    """The judge's configuration as the OpenAI-compatible backend runs it."""
    from ..runner import RunError, open_judge

    entry = _judge_entry(judge)
    card = entry.card
    if card is None or card.protocol != "editscore" or not card.model:
        _fail(f"judge {judge!r} is not a model judge that vLLM or SGLang can serve")
    model = options.model or card.model
    if "/" not in model and not Path(model).expanduser().exists():
        _fail(f"judge {judge!r} asks an API's model ({model!r}): there is nothing to serve")
    try:
        loaded = open_judge(judge, options)
    except RunError as exc:
        _fail(str(exc))
    config = loaded.config  # type: ignore[attr-defined]
    loaded.close()
    return config


def _serve_options(
    model: str | None, adapter: str | None, server: str | None, lora: bool, extra: dict[str, Any]
) -> Any:
    from ..runner import RunOptions

    settings = dict(extra)
    if server is not None:
        settings["server"] = server
    if lora:
        settings["lora"] = True
    return RunOptions(model=model, adapter=adapter, backend="openai", backend_options=settings)


ModelOpt = Annotated[
    str | None, typer.Option(help="Override the card's base model (hub id or local folder).")
]
AdapterOpt = Annotated[
    str | None,
    typer.Option(help="Override the card's LoRA adapter (hub id or folder; 'none' for none)."),
]
TpOpt = Annotated[
    int | None, typer.Option("--tp", min=1, help="Tensor-parallel size (GPUs per replica).")
]
DpOpt = Annotated[int | None, typer.Option("--dp", min=1, help="Data-parallel size (replicas).")]
LoraOpt = Annotated[
    bool,
    typer.Option(
        "--lora",
        help="Serve the adapter as a LoRA module on the base model instead of merged weights "
        "(refused when it touches the vision tower).",
    ),
]
TowerOpt = Annotated[
    bool,
    typer.Option(
        "--tower-lora",
        help="With --lora: vLLM applies the LoRA to the vision tower too "
        "(--enable-tower-connector-lora, recent vLLM).",
    ),
]


# --------------------------------------------------------------------------- serve-command


def serve_command(
    judge: Annotated[str, typer.Argument(help="Judge card name or path.")],
    tp: TpOpt = None,
    dp: DpOpt = None,
    port: Annotated[int, typer.Option(help="Port the server listens on.")] = 8000,
    server: Annotated[str, typer.Option(help="The engine: vllm or sglang.")] = "vllm",
    lora: LoraOpt = False,
    tower_lora: TowerOpt = False,
    model: ModelOpt = None,
    adapter: AdapterOpt = None,
) -> None:
    """Print the command that serves a judge for `--base-url` (merged weights by default)."""
    from ..backends.serving import ServeError, serve_recipe

    engine = _engine_name(server, "--server")
    if tower_lora and not lora:
        _fail("--tower-lora applies to the LoRA recipe: give --lora too")
    config = _served_config(judge, _serve_options(model, adapter, engine, lora, {}))
    try:
        recipe = serve_recipe(
            config, engine=engine, tp=tp, dp=dp, port=port, lora=lora, tower_lora=tower_lora
        )
    except ServeError as exc:
        _fail(str(exc))
    print(recipe.text())


# --------------------------------------------------------------------------- merge-adapter


def _merge_inputs(source: str, base: str | None) -> tuple[str, str]:
    """(adapter, base model) from a card, an adapter folder or an adapter's hub id."""
    from ..benchmark import looks_like_path
    from ..judges import CardError, UnknownJudgeError, resolve_card
    from ..merge import adapter_base

    if not Path(source).expanduser().is_dir():
        try:
            card = resolve_card(source).card
        except UnknownJudgeError:
            card = None
            if looks_like_path(source) or "/" not in source:
                _judge_entry(source)  # the unknown-judge error, with its suggestions
        except CardError as exc:
            _fail(str(exc.args[0]))
        if card is not None:
            if not card.adapter:
                _fail(f"judge {card.name!r} has no adapter to merge")
            assert card.adapter is not None
            return card.adapter, base or str(card.model)
    named = adapter_base(source)
    if base is None and named is None:
        _fail(
            f"the adapter {source!r} names no base model (base_model_name_or_path in its "
            "adapter_config.json); pass --base"
        )
    return source, str(base or named)


def merge_adapter_cmd(
    source: Annotated[
        str, typer.Argument(metavar="CARD_OR_ADAPTER", help="Judge card, adapter folder or hub id.")
    ],
    base: Annotated[
        str | None,
        typer.Option(help="The base model (default: the card's, or the adapter's config's)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the merged model here (default: erb's cache).")
    ] = None,
    dtype: Annotated[
        str, typer.Option(help="bfloat16 (upstream's), float16 or float32.")
    ] = "bfloat16",
    cache_dir: Annotated[
        Path | None,
        typer.Option(help="Merge cache (default $ERB_MERGE_CACHE or ~/.cache/erb/merged)."),
    ] = None,
) -> None:
    """Merge a LoRA adapter into its base model once (cached); print the merged folder."""
    from ..merge import MergeError, merge_adapter

    adapter, model = _merge_inputs(source, base)
    try:
        result = merge_adapter(
            adapter, model, dtype=dtype, out=out, cache_dir=cache_dir, progress=_say
        )
    except MergeError as exc:
        _fail(str(exc))
    print(result.path)
