"""Judges: the interface, judge cards, the EditScore protocol, baselines and plugins."""

from __future__ import annotations

from collections.abc import Mapping
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
from .registry import ENTRY_POINT_GROUP, JudgeEntry, UnknownJudgeError, discover, resolve_card

#: Backends by card name, imported only when a judge needs one.
BACKEND_CLASSES = {
    "transformers": "editreward_bench.backends.transformers:TransformersBackend",
    "openai": "editreward_bench.backends.openai_compat:OpenAIBackend",
}


class JudgeLoadError(RuntimeError):
    """The judge cannot be built here (missing extra, model, adapter or GPU); says what to do."""


def _import(path: str) -> Any:
    import importlib

    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def build_judge(
    card: JudgeCard, overrides: Mapping[str, Any] | None = None, **optional: Any
) -> Judge:
    """Assemble a card's protocol and backend.

    ``overrides`` must each name a setting of this judge (see
    :mod:`editreward_bench.judges.options`); ``optional`` ones apply where the
    backend has them (run-wide settings such as ``concurrency``).
    """
    from .baselines import ImageDiffJudge, RandomJudge
    from .options import parse_config

    if card.protocol in ("random", "image-diff"):
        parse_config(card, overrides, optional=optional)  # they take no settings: refuse any
        return RandomJudge(card) if card.protocol == "random" else ImageDiffJudge(card)
    from .editscore import EditScoreJudge

    backend_name = card.backend
    if backend_name not in BACKEND_CLASSES:
        raise JudgeLoadError(
            f"judge {card.name!r}: protocol {card.protocol!r} needs a model backend "
            f"({' or '.join(sorted(BACKEND_CLASSES))}), not {backend_name!r}"
        )
    config = parse_config(card, overrides, optional=optional)
    try:
        backend_cls = _import(BACKEND_CLASSES[backend_name])
    except ImportError as exc:
        extra = "local" if backend_name == "transformers" else "api"
        raise JudgeLoadError(
            f"judge {card.name!r} needs the {backend_name} backend, whose dependencies are missing "
            f"({exc.name or exc}); install them with: pip install 'erb[{extra}]'"
        ) from exc
    backend = backend_cls.from_config(config)
    if card.protocol == "viescore":
        from .viescore import VIEScoreJudge

        return VIEScoreJudge(config, backend)
    if card.protocol == "imgedit":
        from .imgedit import ImgEditJudge

        return ImgEditJudge(config, backend)
    return EditScoreJudge(config, backend)


def replaced_identity(model: str | None, adapter: str | None, base_urls: Any) -> dict[str, str]:
    """What an override puts in place of the card's model, adapter or endpoint (for names)."""
    from ..redact import redact_url

    replaced: dict[str, str] = {}
    if model is not None:
        replaced["model"] = model
    if adapter is not None:
        replaced["adapter"] = "none" if adapter.lower() == "none" else adapter
    if base_urls:
        given = [base_urls] if isinstance(base_urls, str) else list(base_urls)
        replaced["base_url"] = " ".join(redact_url(str(u)) for u in given)
    return replaced


def load_judge(
    name: str | JudgeCard,
    *,
    model: str | None = None,
    adapter: str | None = None,
    backend: str | None = None,
    optional: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> Judge:
    """A ready judge by card name, card path, plugin name or :class:`JudgeCard`.

    ``model`` and ``adapter`` override the card's (``adapter="none"`` drops it);
    ``backend`` switches between ``transformers`` and ``openai``. Other
    overrides name settings of the judge (``base_urls``, ``api_key_env``,
    ``batch_size``, ``max_retries``, ``dtype``, ``temperature``...; `erb settings`
    lists them): an unknown one, or one of the wrong type, is a ``CardError``.
    ``optional`` settings apply where the judge has them (``concurrency``).
    """
    if isinstance(name, JudgeCard):
        entry = JudgeEntry(name.name, name.source, card=name)
    else:
        entry = resolve_card(name)
    if entry.factory is not None:
        try:
            judge = entry.factory(
                model=model, adapter=adapter, backend=backend, **{**(optional or {}), **overrides}
            )
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
    if (model is not None or adapter is not None) and card.backend not in BACKEND_CLASSES:
        raise CardError(f"judge {card.name!r} runs no model: --model and --adapter do not apply")
    if model is not None:  # a new model also replaces the name the card's server knows it by
        card = replace(
            card,
            model=model,
            options={k: v for k, v in card.options.items() if k != "served_model"},
        )
    if adapter is not None:
        card = replace(card, adapter=None if adapter.lower() == "none" else adapter)
    replaced = replaced_identity(
        model, adapter, overrides.get("base_urls") or overrides.get("base_url")
    )
    if replaced:  # not the judge the paper measured: never shown as its row
        card = replace(card, replaced=replaced, paper_judge=None)
    return build_judge(card, overrides, **(optional or {}))


__all__ = [
    "ENTRY_POINT_GROUP", "INTERFACE_VERSION", "Backend", "CardError", "GenRequest", "GenResponse",
    "ImageCandidate", "Judge", "JudgeCard", "JudgeLoadError", "JudgeTask", "PassResult",
    "UnknownJudgeError", "build_judge", "discover", "load_judge", "resolve_card",
]  # fmt: skip
