"""Judge cards: a judge described as data (TOML), not code.

A card names the protocol (how prompts are rendered and answers combined), the
backend (what runs the model), the model and adapter, the sampling parameters
it sends, its default k, and the row of the paper's table it corresponds to.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PROTOCOLS = ("editscore", "random", "image-diff")
BACKENDS = ("transformers", "openai", "none")
#: Sampling parameters a card may send.
SAMPLING_KEYS = ("temperature", "top_p", "top_k", "max_new_tokens", "max_tokens", "seed")


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
    #: Where the card came from: 'built-in', 'plugin:<dist>', or a file path.
    source: str = "built-in"

    def with_overrides(self, **changes: Any) -> JudgeCard:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def card_from_mapping(data: Mapping[str, Any], source: str) -> JudgeCard:
    """Validate a parsed card."""

    def need(name: str, kind: type | tuple[type, ...]) -> Any:
        if name not in data:
            raise CardError(f"judge card {source}: missing field {name!r}")
        value = data[name]
        if not isinstance(value, kind):
            raise CardError(f"judge card {source}: {name!r} must be {kind}, got {value!r}")
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
    sampling = dict(data.get("sampling", {}))
    unknown = sorted(set(sampling) - set(SAMPLING_KEYS))
    if unknown:
        raise CardError(
            f"judge card {source}: unknown sampling parameter(s) {unknown}; known: {list(SAMPLING_KEYS)}"
        )
    default_k = data.get("default_k", 1)
    if not isinstance(default_k, int) or default_k < 1:
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
    paper = data.get("paper", {})
    return JudgeCard(
        name=name,
        protocol=protocol,
        backend=backend,
        description=str(data.get("description", "")),
        model=data.get("model"),
        adapter=data.get("adapter"),
        default_k=default_k,
        sampling=sampling,
        options=dict(data.get("options", {})),
        paper_judge=paper.get("judge") if isinstance(paper, Mapping) else None,
        source=source,
    )


def read_card(path: str | Path, source: str | None = None) -> JudgeCard:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CardError(f"cannot read judge card {path}: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CardError(f"judge card {path} is not valid TOML: {exc}") from exc
    return card_from_mapping(data, source or str(path))
