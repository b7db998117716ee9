"""The sample browser's content: rows a judge got wrong, with small thumbnails.

For each run, :func:`wrong_samples` picks up to ``limit`` rows whose outcome is
not ``correct`` (wrong, tie or failed), spread over the subtask x dimension
cells, with the judge's scores on the row's dimension and its pass-0 reasoning
for both candidates. Thumbnails are small JPEGs made once per distinct image
(:class:`Thumbnails`), so a page showing many judges carries each image once.
Without the dataset there are no thumbnails and no instructions; the page says so.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..taxonomy import DIMENSIONS, SUBTASKS

if TYPE_CHECKING:
    from ..benchmark import Benchmark, ImageRef
    from .runs import RunData

#: Samples per judge in the browser (keeps the page small).
MAX_SAMPLES = 50
#: Longest side of a thumbnail, in pixels.
THUMB_SIZE = 112
#: Reasoning longer than this is cut (the full text is in records.parquet).
MAX_REASONING = 1200


@dataclass(frozen=True)
class CandidateView:
    key: str
    score: float | None
    #: CSS class of the thumbnail, None without one.
    thumb: str | None
    reasoning_sc: str | None = None
    reasoning_pq: str | None = None
    error: str | None = None

    @property
    def score_text(self) -> str:
        return "–" if self.score is None else f"{self.score:.3f}"


@dataclass(frozen=True)
class Sample:
    """One row a judge got wrong; ``candidates[0]`` is always the one people preferred."""

    run_key: str
    index: int
    subtask: str
    dimension: str
    outcome: str
    instruction: str | None
    source_thumb: str | None
    candidates: tuple[CandidateView, CandidateView]

    @property
    def has_text(self) -> bool:
        """Whether there is reasoning or an error to show."""
        return any(c.reasoning_sc or c.reasoning_pq or c.error for c in self.candidates)


@dataclass
class SampleSet:
    """A run's samples and what the page should say about them."""

    samples: list[Sample] = field(default_factory=list)
    wrong_total: int = 0
    note: str | None = None


class Thumbnails:
    """JPEG thumbnails as data: URIs, one per distinct image (keyed by its hash)."""

    def __init__(self, size: int = THUMB_SIZE, quality: int = 72) -> None:
        self.size = size
        self.quality = quality
        self._class_of: dict[str, str | None] = {}
        #: CSS class -> data: URI, for the page's style sheet.
        self.uris: dict[str, str] = {}

    def get(self, ref: ImageRef, read: Any, max_pixels: int) -> str | None:
        """The CSS class showing the image ``ref`` (``read()`` gives its bytes), or None."""
        if ref.sha in self._class_of:
            return self._class_of[ref.sha]
        css_class = None
        if ref.width * ref.height <= max_pixels:
            try:
                uri = self._make(read())
            except Exception:  # an unreadable image gets no thumbnail; the row still shows
                uri = None
            if uri is not None:
                css_class = f"th-{ref.sha[:16]}"
                self.uris[css_class] = uri
        self._class_of[ref.sha] = css_class
        return css_class

    def _make(self, data: bytes) -> str:
        from PIL import Image, ImageOps

        with Image.open(io.BytesIO(data)) as opened:
            opened.draft("RGB", (self.size, self.size))
            img = ImageOps.exif_transpose(opened).convert("RGB")
        img.thumbnail((self.size, self.size))
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=self.quality, optimize=True)
        return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def pick_rows(rows: Iterable[Mapping[str, Any]], limit: int) -> list[Mapping[str, Any]]:
    """Up to ``limit`` rows, taken in turn from each subtask x dimension cell (row order within)."""
    cells: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        cells.setdefault((str(row["subtask"]), str(row["dimension"])), []).append(row)
    order = [(s, d) for s in SUBTASKS for d in DIMENSIONS if (s, d) in cells]
    order += [c for c in cells if c not in order]
    picked: list[Mapping[str, Any]] = []
    depth = 0
    while len(picked) < limit and any(depth < len(cells[c]) for c in order):
        for cell in order:
            if depth < len(cells[cell]) and len(picked) < limit:
                picked.append(cells[cell][depth])
        depth += 1
    return sorted(picked, key=lambda r: int(r["index"]))


def _cut(text: Any) -> str | None:
    if text is None or text != text:  # None or NaN
        return None
    text = str(text)
    return text if len(text) <= MAX_REASONING else text[:MAX_REASONING] + " …"


def _pass0(
    records: Sequence[Mapping[str, Any]] | None, keys: set[str]
) -> dict[str, Mapping[str, Any]]:
    """Pass-0 records of ``keys`` (for their reasoning and error)."""
    if not keys or not records:
        return {}
    return {str(r["key"]): r for r in records if r.get("pass") == 0 and str(r.get("key")) in keys}


def wrong_samples(
    run_key: str,
    fingerprint: str | None,
    data: RunData,
    bench: Benchmark | None,
    thumbs: Thumbnails,
    *,
    dataset_note: str | None = None,
    limit: int = MAX_SAMPLES,
) -> SampleSet:
    """Up to ``limit`` rows a run (its ``data``) did not get right, ready for the sample browser."""
    if data.outcomes is None:
        return SampleSet(note=f"no samples: {data.outcomes_error}")
    columns = data.outcomes
    if any(c not in columns for c in ("index", "subtask", "dimension", "key0", "key1", "outcome")):
        return SampleSet(note="no samples: outcomes.parquet lacks columns")
    names = list(columns)
    rows = [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]
    wrong = [r for r in rows if r.get("outcome") != "correct"]
    picked = pick_rows(wrong, limit)
    result = SampleSet(wrong_total=len(wrong))
    if bench is not None and bench.fingerprint != fingerprint:
        result.note = (
            f"the dataset loaded ({bench.source}) is not the one this run used (different "
            f"fingerprint): no thumbnails or instructions"
        )
        bench = None
    elif bench is None:
        result.note = (
            f"the dataset is not available ({dataset_note or 'not loaded'}): no thumbnails "
            f"or instructions"
        )
    from ..benchmark import DEFAULT_MAX_IMAGE_PIXELS

    pairs = {p.index: p for p in bench.pairs} if bench is not None else {}
    extra = _pass0(data.records, {str(r[k]) for r in picked for k in ("key0", "key1")})

    def candidate(key: str, score: Any) -> CandidateView:
        thumb = None
        if bench is not None and key in bench.candidates:
            cand = bench.candidates[key]
            thumb = thumbs.get(cand.edited, cand.edited_bytes, DEFAULT_MAX_IMAGE_PIXELS)
        rec = extra.get(key, {})
        return CandidateView(
            key=key,
            score=None if score is None or score != score else float(score),
            thumb=thumb,
            reasoning_sc=_cut(rec.get("reasoning_sc")),
            reasoning_pq=_cut(rec.get("reasoning_pq")),
            error=_cut(rec.get("error")),
        )

    for row in picked:
        index = int(row["index"])
        pair = pairs.get(index)
        source_thumb = None
        if bench is not None and str(row["key0"]) in bench.candidates:
            cand = bench.candidates[str(row["key0"])]
            source_thumb = thumbs.get(cand.source, cand.source_bytes, DEFAULT_MAX_IMAGE_PIXELS)
        result.samples.append(
            Sample(
                run_key=run_key,
                index=index,
                subtask=str(row["subtask"]),
                dimension=str(row["dimension"]),
                outcome=str(row["outcome"]),
                instruction=pair.instruction if pair is not None else None,
                source_thumb=source_thumb,
                candidates=(
                    candidate(str(row["key0"]), row.get("score0")),
                    candidate(str(row["key1"]), row.get("score1")),
                ),
            )
        )
    return result
