"""Judges: the interface, judge cards, the EditScore protocol, baselines and plugins."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .base import (
    INTERFACE_VERSION,
    Backend,
    GenRequest,
    GenResponse,
    ImageCandidate,
    Judge,
    JudgeTask,
    PassResult,
)
from .cards import CardError, JudgeCard
from .registry import ENTRY_POINT_GROUP, UnknownJudgeError, discover, resolve_card

#: Backends by card name, imported only when a judge needs one.
BACKEND_CLASSES = {
    "transformers": "editreward_bench.backends.transformers_local:TransformersBackend",
    "openai": "editreward_bench.backends.openai_compat:OpenAIBackend",
}


class JudgeLoadError(RuntimeError):
    """The judge cannot be built here (missing extra, model, adapter or GPU); says what to do."""


def _import(path: str) -> Any:
    import importlib

    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def build_judge(card: JudgeCard, **overrides: Any) -> Judge:
    """Assemble a card's protocol and backend."""
    from .baselines import ImageDiffJudge, RandomJudge

    if card.protocol == "random":
        return RandomJudge(card)
    if card.protocol == "image-diff":
        return ImageDiffJudge(card)
    from .editscore import EditScoreJudge

    backend_name = card.backend
    if backend_name not in BACKEND_CLASSES:
        raise JudgeLoadError(
            f"judge {card.name!r}: protocol {card.protocol!r} needs a model backend, not {backend_name!r}"
        )
    try:
        backend_cls = _import(BACKEND_CLASSES[backend_name])
    except ImportError as exc:
        extra = "local" if backend_name == "transformers" else "api"
        raise JudgeLoadError(
            f"judge {card.name!r} needs the {backend_name} backend, whose dependencies are missing "
            f"({exc.name or exc}); install them with: pip install 'erb[{extra}]'"
        ) from exc
    backend = backend_cls.from_card(card, **overrides)
    return EditScoreJudge(card, backend, max_retries=overrides.get("max_retries", 2))


def load_judge(
    name: str,
    *,
    model: str | None = None,
    adapter: str | None = None,
    backend: str | None = None,
    **overrides: Any,
) -> Judge:
    """A ready judge by card name, card path or plugin name.

    ``model`` and ``adapter`` override the card's (``adapter="none"`` drops it);
    ``backend`` switches between ``transformers`` and ``openai``. Other
    overrides (``base_urls``, ``api_key_env``, ``batch_size``, ``concurrency``,
    ``max_retries``, ``dtype``, ``device_map``...) go to the backend.
    """
    entry = resolve_card(name)
    if entry.factory is not None:
        try:
            judge = entry.factory(model=model, adapter=adapter, backend=backend, **overrides)
        except Exception as exc:  # third-party code: report, do not crash
            raise JudgeLoadError(
                f"plugin judge {name!r} ({entry.source}) failed to build: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(judge, Judge):
            raise JudgeLoadError(
                f"plugin judge {name!r} ({entry.source}) returned {type(judge).__name__}, not a Judge"
            )
        if getattr(judge, "interface_version", None) != INTERFACE_VERSION:
            raise JudgeLoadError(
                f"plugin judge {name!r} ({entry.source}) speaks interface version "
                f"{getattr(judge, 'interface_version', None)!r}; erb speaks {INTERFACE_VERSION}"
            )
        return judge
    assert entry.card is not None
    card = entry.card.with_overrides(backend=backend)
    if model is not None:  # a new model also replaces the name the card's server knows it by
        card = replace(
            card,
            model=model,
            options={k: v for k, v in card.options.items() if k != "served_model"},
        )
    if adapter is not None:
        card = replace(card, adapter=None if adapter.lower() == "none" else adapter)
    return build_judge(card, **overrides)


__all__ = [
    "ENTRY_POINT_GROUP", "INTERFACE_VERSION", "Backend", "CardError", "GenRequest", "GenResponse",
    "ImageCandidate", "Judge", "JudgeCard", "JudgeLoadError", "JudgeTask", "PassResult",
    "UnknownJudgeError", "build_judge", "discover", "load_judge", "resolve_card",
]  # fmt: skip
