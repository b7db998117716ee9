"""``erb serve-command``, ``erb merge-adapter`` and ``erb serve``: serving a judge.

Also the ``--serve`` part of ``erb evaluate``: the engine planned before any data is
loaded (:func:`plan_serve`), then merged, started and awaited (:func:`running_engine`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from .common import _console, _escape, _fail, _judge_entry

#: Seconds an engine may take to serve the judge (a 72B loads for minutes).
DEFAULT_SERVE_TIMEOUT = 1800.0
#: Seconds between "still waiting" lines.
_WAIT_EVERY = 30.0


def _say(message: str) -> None:
    _console(stderr=True).print(f"[dim]erb:[/] {_escape(message)}", soft_wrap=True)


def _engine_name(value: str, option: str) -> str:
    from ..backends.serving import ENGINES

    if value not in ENGINES:
        _fail(f"{option} takes {' or '.join(ENGINES)}, got {value!r}")
    return value


def _engine_failed(exc: Any) -> None:
    """An engine error: the one-line error, then the end of the engine's log."""
    console = _console(stderr=True)
    console.print(f"[bold red]error:[/] {_escape(str(exc))}", soft_wrap=True)
    if exc.tail:
        console.print("last lines of the engine's log:", style="dim")
        for line in exc.tail:
            console.print(f"  | {line}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(2)


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


# --------------------------------------------------------------------------- engines


@dataclass
class ServePlan:
    """An engine to start for a judge, checked before any data is loaded or merged."""

    engine: str
    command: list[str]
    config: Any
    lora: bool
    tower_lora: bool
    tp: int | None
    dp: int | None
    timeout: float


def plan_serve(
    engine: str,
    judge: str,
    options: Any,
    *,
    tp: int | None,
    dp: int | None,
    tower_lora: bool,
    timeout: float,
) -> ServePlan:
    """Fail fast: an unknown engine or judge, an engine not on PATH, a refused LoRA recipe."""
    from ..backends.serving import ServeError, check_lora
    from ..engines import EngineError, find_engine

    engine = _engine_name(engine, "--serve")
    config = _served_config(judge, options)
    lora = bool(config.backend.lora)
    if tower_lora and not lora:
        _fail("--tower-lora applies to the LoRA recipe: give --lora too")
    try:
        command = find_engine(engine)
        if lora:
            check_lora(config, engine, tower_lora)
    except EngineError as exc:
        _engine_failed(exc)
    except ServeError as exc:
        _fail(str(exc))
    return ServePlan(engine, command, config, lora, tower_lora, tp, dp, timeout)


def _merged_folder(plan: ServePlan) -> str | None:
    """The merged model's folder (merged now, or found in the cache), when one is served."""
    from ..backends.serving import MERGE_DTYPE
    from ..merge import MergeError, merge_adapter

    card = plan.config.card
    if not card.adapter or plan.lora:
        return None
    try:
        result = merge_adapter(card.adapter, str(card.model), dtype=MERGE_DTYPE, progress=_say)
    except MergeError as exc:
        _fail(str(exc))
    return str(result.path)


@contextmanager
def running_engine(
    plan: ServePlan, log: Path | None, *, host: str = "127.0.0.1", port: int | None = None
) -> Iterator[Any]:
    """Merge if needed, start the engine, wait until it serves the judge; stop its whole
    process group on the way out, whatever the way (success, error, Ctrl-C)."""
    import time

    from ..backends.serving import ServeError, serve_recipe
    from ..engines import SERVER_LOG, Engine, EngineError, free_port, parallel_sizes

    merged = _merged_folder(plan)
    tp, dp = parallel_sizes(plan.tp, plan.dp, plan.config.card.model)
    try:
        recipe = serve_recipe(
            plan.config, engine=plan.engine, tp=tp, dp=dp, port=port or free_port(host),
            host=host, lora=plan.lora, tower_lora=plan.tower_lora, merged=merged,
        )  # fmt: skip
    except ServeError as exc:
        _fail(str(exc))
    engine = Engine(recipe, plan.command, log)
    _say("starting: " + recipe.text().replace("\n", "; "))
    last = [time.monotonic()]

    def waiting(elapsed: float) -> None:
        if time.monotonic() - last[0] >= _WAIT_EVERY:
            last[0] = time.monotonic()
            _say(f"still waiting for {plan.engine} to serve {recipe.served!r} ({elapsed:.0f} s)")

    with engine:
        where = f"; its log: {log} ({SERVER_LOG} when the run ends)" if log is not None else ""
        _say(f"waiting for {plan.engine} to serve {recipe.served!r} at {engine.base_url}{where}")
        try:
            took = engine.wait_ready(plan.timeout, waiting)
        except EngineError as exc:
            engine.stop()
            _engine_failed(exc)
        _say(
            f"{plan.engine} serves {recipe.served!r} at {engine.base_url} (ready after {took:.0f} s)"
        )
        yield engine


def serve_cmd(
    judge: Annotated[str, typer.Argument(help="Judge card name or path.")],
    serve: Annotated[str, typer.Option("--serve", help="The engine: vllm or sglang.")] = "vllm",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    host: Annotated[
        str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")
    ] = "127.0.0.1",
    tp: TpOpt = None,
    dp: DpOpt = None,
    lora: LoraOpt = False,
    tower_lora: TowerOpt = False,
    model: ModelOpt = None,
    adapter: AdapterOpt = None,
    timeout: Annotated[
        float, typer.Option(min=1, help="Seconds the engine may take to serve the judge.")
    ] = DEFAULT_SERVE_TIMEOUT,
) -> None:
    """Start an engine serving a judge and keep it in the foreground (Ctrl-C stops it)."""
    engine_name = _engine_name(serve, "--serve")
    options = _serve_options(model, adapter, engine_name, lora, {})
    plan = plan_serve(
        engine_name, judge, options, tp=tp, dp=dp, tower_lora=tower_lora, timeout=timeout
    )
    with running_engine(plan, None, host=host, port=port) as engine:
        # The card's own endpoint is localhost:8000; another one is given with --base-url.
        flags = "" if port == 8000 else f" --base-url {engine.base_url}"
        if _judge_entry(judge).card.backend != "openai":
            flags += " --backend openai"
        if engine_name == "sglang" and plan.lora:
            flags += " --server sglang --lora"  # SGLang names a LoRA module <base>:<adapter>
        _say(f"in another shell: erb evaluate --judge {judge}{flags}; Ctrl-C here stops the server")
        code = engine.wait()
    if code != 0:
        _fail(f"{engine_name} exited with status {code}")
