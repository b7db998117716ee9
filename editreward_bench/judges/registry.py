"""Finding judges: built-in cards, cards given by path, and plugins.

Plugins register under the entry-point group ``editreward_bench.judges``; the
entry point's name is the judge's name and its object is one of:

- a path (str or Path) to a TOML card, or a dict with the card's fields;
- a :class:`~editreward_bench.judges.cards.JudgeCard`;
- a callable factory ``factory(**overrides) -> Judge`` (interface version 1). It may
  carry an ``erb_card`` dict (backend, model, description) for ``erb judges``.

A plugin that fails to import, returns the wrong type, or clashes with a
built-in name is reported and skipped; built-in judges keep working.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from ..resources import judges_dir
from .cards import CardError, JudgeCard, card_from_mapping, read_card

ENTRY_POINT_GROUP = "editreward_bench.judges"


class UnknownJudgeError(LookupError):
    pass


@dataclass
class JudgeEntry:
    """A judge known by name: its card, or a plugin factory."""

    name: str
    source: str
    card: JudgeCard | None = None
    factory: Callable[..., Any] | None = None
    summary: dict[str, Any] = field(default_factory=dict)

    def listing(self) -> dict[str, Any]:
        if self.card is not None:
            return {
                "name": self.name,
                "backend": self.card.backend,
                "model": self.card.model,
                "adapter": self.card.adapter,
                "protocol": self.card.protocol,
                "default_k": self.card.default_k,
                "source": self.source,
                "description": self.card.description,
            }
        return {"name": self.name, "backend": self.summary.get("backend", "plugin"), "model": self.summary.get("model"),
                "adapter": self.summary.get("adapter"), "protocol": self.summary.get("protocol", "plugin"),
                "default_k": self.summary.get("default_k", 1), "source": self.source,
                "description": self.summary.get("description", "")}  # fmt: skip


@dataclass
class Registry:
    entries: dict[str, JudgeEntry]
    problems: list[str]

    def names(self) -> list[str]:
        return sorted(self.entries)

    def get(self, name: str) -> JudgeEntry:
        if name in self.entries:
            return self.entries[name]
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownJudgeError(f"unknown judge {name!r}{hint} (`erb judges` lists them all)")


def builtin_cards() -> list[JudgeCard]:
    return [read_card(path, "built-in") for path in sorted(judges_dir().glob("*.toml"))]


def _plugin_entry(ep: metadata.EntryPoint) -> JudgeEntry:
    dist = ep.dist.name if ep.dist is not None else "unknown"
    source = f"plugin:{dist}"
    obj = ep.load()
    if isinstance(obj, JudgeCard):
        return JudgeEntry(ep.name, source, card=obj.with_overrides(name=ep.name, source=source))
    if isinstance(obj, (str, Path)):
        card = read_card(obj, source)
        return JudgeEntry(ep.name, source, card=card.with_overrides(name=ep.name))
    if isinstance(obj, dict):
        return JudgeEntry(ep.name, source, card=card_from_mapping({**obj, "name": ep.name}, source))
    if callable(obj):
        summary = getattr(obj, "erb_card", {}) or {}
        if not isinstance(summary, dict):
            raise TypeError("erb_card must be a dict")
        return JudgeEntry(ep.name, source, factory=obj, summary=summary)
    raise TypeError(
        f"entry point object is a {type(obj).__name__}, not a card, a path or a factory"
    )


def discover(entry_points: Iterable[metadata.EntryPoint] | None = None) -> Registry:
    """Built-in cards, then plugins (which never replace a built-in)."""
    entries: dict[str, JudgeEntry] = {}
    problems: list[str] = []
    for card in builtin_cards():
        entries[card.name] = JudgeEntry(card.name, "built-in", card=card)
    eps = (
        list(entry_points)
        if entry_points is not None
        else list(metadata.entry_points(group=ENTRY_POINT_GROUP))
    )
    for ep in eps:
        try:
            entry = _plugin_entry(ep)
        except Exception as exc:  # any failure in third-party code is reported, not fatal
            problems.append(
                f"plugin judge {ep.name!r} ({ep.value}) was skipped: {type(exc).__name__}: {exc}"
            )
            continue
        if entry.name in entries:
            problems.append(
                f"plugin judge {entry.name!r} from {entry.source} was skipped: the name is taken by {entries[entry.name].source}"
            )
            continue
        entries[entry.name] = entry
    return Registry(entries, problems)


def resolve_card(name_or_path: str, registry: Registry | None = None) -> JudgeEntry:
    """A judge by name, or a card file by path."""
    path = Path(name_or_path).expanduser()
    if path.suffix == ".toml" or path.is_file():
        if not path.is_file():
            raise CardError(f"judge card file {path} does not exist")
        card = read_card(path)
        return JudgeEntry(card.name, str(path), card=card)
    return (registry or discover()).get(name_or_path)


__all__ = [
    "ENTRY_POINT_GROUP",
    "CardError",
    "JudgeEntry",
    "Registry",
    "UnknownJudgeError",
    "discover",
    "resolve_card",
]
