"""``erb serve-reward``: a judge as a reward server for RL trainers.

:func:`register` adds the command to the ``erb`` typer app. The server stack
(starlette, uvicorn, prometheus-client) is the ``erb[serve]`` extra, imported only
when the command runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from .common import (
    AdapterOpt,
    ApiKeyEnvOpt,
    BackendOpt,
    BaseUrlOpt,
    BatchSizeOpt,
    DeviceMapOpt,
    DtypeOpt,
    MaxPixelsOpt,
    MaxRetriesOpt,
    MinPixelsOpt,
    ModelOpt,
    TimeoutOpt,
    _fail,
)
from .common import _parse_options as _options


def serve_reward(
    judge: Annotated[str, typer.Option("--judge", "-j", help="Judge card name or path.")],
    k: Annotated[
        int | None,
        typer.Option("--k", "-k", min=1, help="Passes per item (Avg@k). Default: the card's."),
    ] = None,
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    adapter: AdapterOpt = None,
    backend: BackendOpt = None,
    host: Annotated[
        str, typer.Option(help="Address to listen on; beyond 127.0.0.1 needs --token-env.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8080,
    token_env: Annotated[
        str | None,
        typer.Option(help="Environment variable holding the bearer token clients must send."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Base seed: pass i uses seed + i.")] = 42,
    concurrency: Annotated[
        int,
        typer.Option(min=1, help="Backend requests in flight, shared by all callers and replicas."),
    ] = 64,
    timeout: TimeoutOpt = None,
    item_deadline: Annotated[
        float | None,
        typer.Option(
            min=0.1,
            help="Seconds an item may take once its request is read; then it gets an error.",
        ),
    ] = None,
    keep_size: Annotated[
        bool,
        typer.Option(
            "--keep-size",
            help="Judge the edited image at its own size, as upstream's RL reward server "
            "does (default: resized to the source's, the benchmark protocol).",
        ),
    ] = False,
    api_key_env: ApiKeyEnvOpt = None,
    batch_size: BatchSizeOpt = None,
    max_retries: MaxRetriesOpt = None,
    dtype: DtypeOpt = None,
    device_map: DeviceMapOpt = None,
    min_pixels: MinPixelsOpt = None,
    max_pixels: MaxPixelsOpt = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option", "-o", metavar="KEY=VALUE", help="Any judge setting (`erb settings`)."
        ),
    ] = None,
    store: Annotated[
        Path | None, typer.Option(help="Reuse and fill this pass store (off by default).")
    ] = None,
    max_body_mb: Annotated[
        float, typer.Option(min=0.001, help="Largest request body, in MiB.")
    ] = 256,
    max_items: Annotated[int, typer.Option(min=1, help="Most items per request.")] = 4096,
    max_k: Annotated[int, typer.Option(min=1, help="Largest k a request may ask for.")] = 16,
    max_image_pixels: Annotated[
        int, typer.Option(min=1, help="Largest image, in pixels (width x height).")
    ] = 4096 * 4096,
    log_level: Annotated[str, typer.Option(help="uvicorn's log level.")] = "info",
) -> None:
    """Serve a judge as a reward: JSON over HTTP for RL trainers (POST /v1/score)."""
    token = None
    if token_env is not None:
        token = os.environ.get(token_env)
        if not token:
            _fail(f"--token-env {token_env}: the environment variable is empty or unset")
    from ..rewards.server import check_bind

    try:  # before anything is loaded or bound
        check_bind(host, token)
    except ValueError as exc:
        _fail(str(exc))
    try:
        import uvicorn

        from ..rewards import RewardModel
        from ..rewards.server import Limits, create_app
    except ImportError as exc:
        _fail(f"erb serve-reward needs the serve extra ({exc.name}): pip install 'erb[serve]'")
    settings = {
        "api_key_env": api_key_env, "batch_size": batch_size, "max_retries": max_retries,
        "dtype": dtype, "device_map": device_map, "min_pixels": min_pixels,
        "max_pixels": max_pixels, **_options(option),
    }  # fmt: skip
    from ..judges import CardError, JudgeLoadError, UnknownJudgeError

    try:
        reward = RewardModel(
            judge, k=k, seed=seed, base_urls=base_url, model=model, adapter=adapter,
            backend=backend, concurrency=concurrency, timeout=timeout, item_deadline=item_deadline,
            resize_edited=not keep_size, store=store or False,
            **{name: value for name, value in settings.items() if value is not None},
        )  # fmt: skip
    except (UnknownJudgeError, CardError, JudgeLoadError, ValueError) as exc:
        _fail(str(exc.args[0] if exc.args else exc))
    try:
        for problem in reward.check():
            typer.echo(f"warning: a replica is out until it answers: {problem}", err=True)
    except JudgeLoadError as exc:
        reward.close()
        _fail(str(exc))
    limits = Limits(
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        max_items=max_items,
        max_k=max_k,
        max_image_pixels=max_image_pixels,
    )
    info = reward.describe()
    typer.echo(
        f"serving {info['name']} (k={info['k']}, resize_edited={info['resize_edited']}, "
        f"{info['replicas'] or 'local'} replica(s)) at http://{host}:{port}/v1/score",
        err=True,
    )
    try:
        uvicorn.run(
            create_app(reward, token=token, limits=limits),
            host=host, port=port, log_level=log_level, timeout_keep_alive=75,
        )  # fmt: skip
    finally:
        reward.close()


def register(app: typer.Typer) -> None:
    """Add ``serve-reward`` to the ``erb`` app."""
    app.command("serve-reward")(serve_reward)
