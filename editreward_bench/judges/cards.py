"""Judge cards: a judge described as data (TOML), not code.

A card names the protocol (how prompts are rendered and answers combined), the
backend (what runs the model), the model and adapter, the sampling parameters
it sends, its default k, and the row of the paper's table it corresponds to.
"""

from __future__ import annotations

import sys
import typing
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PROTOCOLS = ("editscore", "viescore", "imgedit", "random", "image-diff")
BACKENDS = ("transformers", "openai", "none")
#: The upstream code path that produced a card's paper row: offline vLLM (``LLM.generate``
#: with explicit ``SamplingParams``), transformers ``generate`` (on top of the model's
#: generation config), or an API.
UpstreamPath = Literal["vllm", "transformers", "api"]
UPSTREAM_PATHS: tuple[str, ...] = typing.get_args(UpstreamPath)


class CardError(ValueError):
    """A judge card is malformed; the message names the card and the field."""


@dataclass(frozen=True)
class JudgeCard:
    name: str
    protocol: str
    backend: str
    description: str = ""
    model: str | None = None
    adapter: str | None = None
    default_k: int = 1
    #: Sampling parameters sent to the backend, exactly these and no others.
    sampling: dict[str, Any] = field(default_factory=dict)
    #: Backend options: message layout, dtype, base_url, api_key_env, prices, ...
    options: dict[str, Any] = field(default_factory=dict)
    #: Row of the paper's table (published_results.csv 'judge' column).
    paper_judge: str | None = None
    #: The upstream path that row came from (``[paper] path``): documentation, not a setting.
    paper_path: UpstreamPath | None = None
    #: Where the card came from: 'built-in', 'plugin:<dist>', or a file path.
    source: str = "built-in"
    #: Model, adapter or endpoint given instead of the card's (``--model`` ...): shown in the
    #: judge's name everywhere, and such a judge is never the card's paper judge.
    replaced: dict[str, str] = field(default_factory=dict)

    @property
    def display_name(self) -> str:
        if not self.replaced:
            return self.name
        return f"{self.name} [" + ", ".join(f"{k}={v}" for k, v in self.replaced.items()) + "]"

    def with_overrides(self, **changes: Any) -> JudgeCard:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def card_from_mapping(data: Mapping[str, Any], source: str) -> JudgeCard:
    """Validate a parsed card."""

    def need(name: str, kind: type) -> Any:
        if name not in data:
            raise CardError(f"judge card {source}: missing field {name!r}")
        value = data[name]
        if not isinstance(value, kind) or not value:
            raise CardError(
                f"judge card {source}: {name!r} must be a non-empty string, got {value!r}"
            )
        return value

    name = need("name", str)
    protocol = need("protocol", str)
    backend = need("backend", str)
    if protocol not in PROTOCOLS:
        raise CardError(
            f"judge card {source}: unknown protocol {protocol!r}; known: {list(PROTOCOLS)}"
        )
    if backend not in BACKENDS:
        raise CardError(
            f"judge card {source}: unknown backend {backend!r}; known: {list(BACKENDS)}"
        )

    def optional(name: str, kind: type, what: str) -> Any:
        value = data.get(name)
        if value is not None and not isinstance(value, kind):
            raise CardError(f"judge card {source}: {name!r} must be {what}, got {value!r}")
        return value

    model = optional("model", str, "a string (a hub id or a local folder)")
    adapter = optional("adapter", str, "a string (a hub id or a local folder)")
    description = optional("description", str, "a string") or ""
    sampling = optional("sampling", Mapping, "a table of sampling parameters") or {}
    options = optional("options", Mapping, "a table of options") or {}
    paper = optional("paper", Mapping, 'a table such as [paper] judge = "EditScore-7B"') or {}
    paper_judge = paper.get("judge")
    if paper_judge is not None and not isinstance(paper_judge, str):
        raise CardError(f"judge card {source}: paper.judge must be a string, got {paper_judge!r}")
    paper_path = paper.get("path")
    if paper_path is not None and paper_path not in UPSTREAM_PATHS:
        raise CardError(
            f"judge card {source}: paper.path must be one of {', '.join(UPSTREAM_PATHS)}, "
            f"got {paper_path!r}"
        )
    default_k = data.get("default_k", 1)
    if not isinstance(default_k, int) or isinstance(default_k, bool) or default_k < 1:
        raise CardError(
            f"judge card {source}: default_k must be a positive integer, got {default_k!r}"
        )
    known = {
        "name",
        "protocol",
        "backend",
        "description",
        "model",
        "adapter",
        "default_k",
        "sampling",
        "options",
        "paper",
    }
    extra = sorted(set(data) - known)
    if extra:
        raise CardError(f"judge card {source}: unknown field(s) {extra}")
    card = JudgeCard(
        name=name,
        protocol=protocol,
        backend=backend,
        description=description,
        model=model,
        adapter=adapter,
        default_k=default_k,
        sampling=dict(sampling),
        options=dict(options),
        paper_judge=paper_judge,
        paper_path=paper_path,
        source=source,
    )
    from .options import parse_config  # options builds on cards

    parse_config(card)  # every sampling parameter and option, typed, before any use
    return card


def read_card(path: str | Path, source: str | None = None) -> JudgeCard:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CardError(f"cannot read judge card {path}: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CardError(f"judge card {path} is not valid TOML: {exc}") from exc
    return card_from_mapping(data, source or str(path))
