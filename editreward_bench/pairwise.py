"""Pairwise judges: both edits in one prompt, and the judge says which is better.

The second judge kind beside pointwise ones (the EditReward / GenAI-Bench / MMRB2 style).
A pairwise judge is described by a card (TOML, ``kind = "pairwise"``) naming its prompt
template (``judges/prompts/pairwise/NAME.txt``), its backend (the same backends and
settings as pointwise judges: ``erb settings``), model, sampling and options::

    name = "gpt-4.1-pairwise"
    kind = "pairwise"
    prompt = "edit-preference"
    backend = "openai"
    model = "gpt-4.1"
    [options]
    base_url = "https://api.openai.com/v1"

The request shows the source image, then the edit shown first ("A"), then the edit shown
second ("B"), with the template's text (``<instruction>`` replaced). The answer must end
with ``[[A>B]]``, ``[[B>A]]``, ``[[A=B]]``, ``[[A=B=Good]]`` or ``[[A=B=Bad]]`` (``>>``
accepted); the last one in the answer is the verdict: ``first``, ``second``, ``tie``,
``tie-good`` or ``tie-bad``, always about the order *shown*. Which order a row is shown
in (seeded at random per row, or both) is the run's choice (:mod:`.benchmarks.run`), and
every record keeps it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sys
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from .judges.base import GenRequest, in_worker
from .judges.cards import BACKENDS, CardError, JudgeCard
from .resources import judges_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: Changes whenever parsing changes what an answer means (part of the judge's fingerprint).
PARSER_VERSION = 1
VERDICTS = ("first", "second", "tie", "tie-good", "tie-bad")
#: Offset between an unparseable answer's seed and its retry's, per attempt.
RETRY_SEED_STRIDE = 7919
_CARD_FIELDS = {"name", "kind", "prompt", "backend", "description", "model", "sampling", "options"}


def pairwise_cards_dir() -> Path:
    return judges_dir() / "pairwise"


def prompts_dir() -> Path:
    return judges_dir() / "prompts" / "pairwise"


# --------------------------------------------------------------------------- cards


@dataclass(frozen=True)
class PairwiseCard:
    """A pairwise judge as data."""

    name: str
    prompt: str
    backend: str
    model: str | None = None
    description: str = ""
    sampling: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    source: str = "built-in"
    #: Model or endpoint given instead of the card's: shown in the name everywhere.
    replaced: dict[str, str] = field(default_factory=dict)

    @property
    def display_name(self) -> str:
        if not self.replaced:
            return self.name
        return f"{self.name} [" + ", ".join(f"{k}={v}" for k, v in self.replaced.items()) + "]"

    def judge_card(self) -> JudgeCard:
        """The card as the shared settings parser and backends take it."""
        return JudgeCard(
            name=self.name, protocol="pairwise", backend=self.backend,
            description=self.description, model=self.model, sampling=dict(self.sampling),
            options=dict(self.options), source=self.source, replaced=dict(self.replaced),
        )  # fmt: skip

    def template(self) -> str:
        path = prompts_dir() / f"{self.prompt}.txt"
        if not path.is_file():
            known = sorted(p.stem for p in prompts_dir().glob("*.txt"))
            raise CardError(
                f"pairwise judge card {self.name!r} ({self.source}): no prompt template "
                f"{self.prompt!r} in {prompts_dir()}; known: {known}"
            )
        return path.read_text(encoding="utf-8")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "pairwise", **asdict(self)}


def card_from_mapping(data: Mapping[str, Any], source: str) -> PairwiseCard:
    """Validate a parsed pairwise card (unknown fields, types, the settings themselves)."""
    where = f"pairwise judge card {source}"
    extra = sorted(set(data) - _CARD_FIELDS)
    if extra:
        raise CardError(f"{where}: unknown field(s) {extra}; known: {sorted(_CARD_FIELDS)}")
    if data.get("kind") != "pairwise":
        raise CardError(f'{where}: kind must be "pairwise", got {data.get("kind")!r}')
    for name in ("name", "prompt", "backend"):
        if not isinstance(data.get(name), str) or not data[name]:
            raise CardError(f"{where}: {name!r} must be a non-empty string, got {data.get(name)!r}")
    if data["backend"] not in BACKENDS or data["backend"] == "none":
        raise CardError(
            f"{where}: backend must be one of {[b for b in BACKENDS if b != 'none']}, "
            f"got {data['backend']!r}"
        )
    for name, kind in (("model", str), ("description", str), ("sampling", dict),
                       ("options", dict)):  # fmt: skip
        value = data.get(name)
        if value is not None and not isinstance(value, kind):
            raise CardError(f"{where}: {name!r} must be a {kind.__name__}, got {value!r}")
    card = PairwiseCard(
        name=data["name"], prompt=data["prompt"], backend=data["backend"],
        model=data.get("model"), description=data.get("description") or "",
        sampling=dict(data.get("sampling") or {}), options=dict(data.get("options") or {}),
        source=source,
    )  # fmt: skip
    from .judges.options import parse_config

    parse_config(card.judge_card())  # every setting typed before any use
    card.template()
    return card


def read_card(path: str | Path, source: str | None = None) -> PairwiseCard:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CardError(f"cannot read judge card {path}: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CardError(f"judge card {path} is not valid TOML: {exc}") from exc
    return card_from_mapping(data, source or str(path))


def builtin_cards() -> dict[str, PairwiseCard]:
    return {
        card.name: card
        for card in (read_card(p, "built-in") for p in sorted(pairwise_cards_dir().glob("*.toml")))
    }


def _card_kind(path: Path) -> str | None:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None
    kind = data.get("kind")
    return kind if isinstance(kind, str) else None


def find_card(name_or_path: str) -> PairwiseCard | None:
    """The pairwise card by built-in name or card path; None when it names no pairwise judge
    (a pointwise one, or nothing)."""
    path = Path(name_or_path).expanduser()
    if path.suffix == ".toml" or path.is_file():
        if path.is_file() and _card_kind(path) == "pairwise":
            return read_card(path)
        return None
    return builtin_cards().get(name_or_path)


# --------------------------------------------------------------------------- verdicts


_VERDICT = re.compile(
    r"\[\[\s*(A\s*>>?\s*B|B\s*>>?\s*A|A\s*=\s*B(?:\s*=\s*(?:GOOD|BAD))?)\s*\]\]", re.IGNORECASE
)


def parse_verdict(text: str | None) -> str | None:
    """The last ``[[...]]`` verdict of an answer, about the order shown; None when absent."""
    found = _VERDICT.findall(text or "")
    if not found:
        return None
    token = re.sub(r"\s+", "", found[-1]).upper().replace(">>", ">")
    return {
        "A>B": "first",
        "B>A": "second",
        "A=B": "tie",
        "A=B=GOOD": "tie-good",
        "A=B=BAD": "tie-bad",
    }[token]


@dataclass(frozen=True)
class PairwiseTask:
    """Compare ``first`` (shown as A) with ``second`` (shown as B) of one source image."""

    #: The store's name for this ordered pair (``KEY_FIRST>KEY_SECOND``).
    key: str
    instruction: str
    first: Any
    second: Any
    seed: int


@dataclass
class Verdict:
    """A pairwise judge's answer on one task, or its failure."""

    key: str
    seed: int
    status: str
    verdict: str | None = None
    error: str | None = None
    raw: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    attempts: int = 1
    #: A failure that may pass on a rerun (network, timeouts): never stored.
    transient: bool = False

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        record.pop("transient")
        record["pass"] = 0
        return record


class PairwiseJudge(ABC):
    """A judge that compares two edits at once. Subclasses implement :meth:`acompare`."""

    kind = "pairwise"
    #: Tasks per call.
    batch_size: int = 1

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """The card and settings, recorded with every run."""

    def describe_for_fingerprint(self) -> dict[str, Any]:
        return self.describe()

    def fingerprint(self) -> str:
        """Hash of everything that changes the answers (the store key's judge part)."""
        blob = json.dumps(self.describe_for_fingerprint(), sort_keys=True, default=str)
        return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()

    @abstractmethod
    async def acompare(self, tasks: Sequence[PairwiseTask]) -> list[Verdict]:
        """One :class:`Verdict` per task; never raises for one task's failure."""

    def preflight(self) -> None:  # noqa: B027 - optional hook
        """Fail fast, before a run, when the judge cannot answer."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release clients."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Close what is bound to the running event loop."""


class PromptPairwiseJudge(PairwiseJudge):
    """A model asked with the card's prompt through a backend (``openai`` or
    ``transformers``), unparseable answers asked again with a new seed."""

    def __init__(self, card: PairwiseCard, config: Any, backend: Any) -> None:
        super().__init__(card.display_name)
        self.card = card
        self.config = config
        self.backend = backend
        self.template = card.template()
        self.max_retries = config.common.max_retries
        self.batch_size = max(1, int(getattr(backend, "batch_size", 1)))

    def describe(self) -> dict[str, Any]:
        from .judges.options import all_settings

        return {
            **self.card.to_dict(),
            "name": self.name,
            "prompt_sha256": hashlib.sha256(self.template.encode()).hexdigest(),
            "parser_version": PARSER_VERSION,
            "settings": all_settings(self.config),
            "backend_description": self.backend.describe(),
        }

    def describe_for_fingerprint(self) -> dict[str, Any]:
        from .judges.options import answer_settings

        return {
            "kind": "pairwise",
            "prompt_sha256": hashlib.sha256(self.template.encode()).hexdigest(),
            "parser_version": PARSER_VERSION,
            "backend": self.card.backend,
            "model": self.card.model,
            "settings": answer_settings(self.config),
        }

    def render(self, instruction: str) -> str:
        return self.template.replace("<instruction>", instruction)

    async def _images(self, task: PairwiseTask) -> tuple[Any, ...]:
        def load() -> tuple[Any, ...]:
            source = task.first.load_source()
            return self.backend.prepare_images(
                [source, task.first.load_edited(), task.second.load_edited()]
            )

        return await in_worker(load)

    async def _one(self, task: PairwiseTask) -> Verdict:
        try:
            images = await self._images(task)
        except Exception as exc:  # one undecodable image fails one comparison
            return Verdict(task.key, task.seed, "failed", error=f"image: {exc}")
        text = self.render(task.instruction)
        reasons: list[str] = []
        prompt_tokens = completion_tokens = 0
        raw: str | None = None
        for attempt in range(self.max_retries + 1):
            seed = task.seed + RETRY_SEED_STRIDE * attempt
            [response] = await self.backend.generate([GenRequest(images, text, 1, seed)])
            if response.error is not None or not response.texts:
                return Verdict(
                    task.key, task.seed, "failed", error=response.error or "empty answer",
                    attempts=attempt + 1, transient=True,
                )  # fmt: skip
            prompt_tokens += response.prompt_tokens or 0
            completion_tokens += response.completion_tokens or 0
            raw = response.texts[0]
            verdict = parse_verdict(raw)
            if verdict is not None:
                return Verdict(
                    task.key, task.seed, "ok", verdict=verdict, raw=raw,
                    prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                    attempts=attempt + 1,
                )  # fmt: skip
            reasons.append("no [[A>B]] / [[B>A]] / [[A=B...]] verdict in the answer")
        return Verdict(
            task.key, task.seed, "failed",
            error=f"unparseable after {self.max_retries + 1} attempt(s): {reasons[-1]}",
            raw=raw, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
            attempts=self.max_retries + 1,
        )  # fmt: skip

    async def acompare(self, tasks: Sequence[PairwiseTask]) -> list[Verdict]:
        return list(await asyncio.gather(*(self._one(t) for t in tasks)))

    def preflight(self) -> None:
        self.backend.preflight()

    def close(self) -> None:
        self.backend.close()

    async def aclose(self) -> None:
        await self.backend.aclose()


def load_pairwise_judge(
    card: PairwiseCard | str,
    *,
    model: str | None = None,
    backend: str | None = None,
    optional: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> PromptPairwiseJudge:
    """A ready pairwise judge from its card (or card name/path), settings applied as for
    pointwise judges (``base_urls``, ``temperature``..., `erb settings`)."""
    from .judges import BACKEND_CLASSES, JudgeLoadError, _import, replaced_identity
    from .judges.options import parse_config

    if isinstance(card, str):
        found = find_card(card)
        if found is None:
            raise CardError(f"{card!r} names no pairwise judge")
        card = found
    if backend is not None:
        card = replace(card, backend=backend)
    replaced = replaced_identity(
        model, None, overrides.get("base_urls") or overrides.get("base_url")
    )
    if model is not None:
        options = {k: v for k, v in card.options.items() if k != "served_model"}
        card = replace(card, model=model, options=options)
    if replaced:
        card = replace(card, replaced=replaced)
    config = parse_config(card.judge_card(), overrides, optional=optional)
    if card.backend not in BACKEND_CLASSES:
        raise JudgeLoadError(f"pairwise judge {card.name!r}: unknown backend {card.backend!r}")
    try:
        backend_cls = _import(BACKEND_CLASSES[card.backend])
    except ImportError as exc:
        extra = "local" if card.backend == "transformers" else "api"
        raise JudgeLoadError(
            f"pairwise judge {card.name!r} needs the {card.backend} backend, whose dependencies "
            f"are missing ({exc.name or exc}); install them with: pip install 'erb[{extra}]'"
        ) from exc
    return PromptPairwiseJudge(card, config, backend_cls.from_config(config))
