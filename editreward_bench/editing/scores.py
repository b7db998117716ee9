"""Each benchmark's numbers as its authors compute them, and beside them what those hide.

**GEdit-Bench** (Step1X-Edit's ``calculate_statistics.py``): per task group, the mean
semantics (SC), quality (PQ) and overall (O = sqrt(SC x PQ)) over the group's scored
items, each ``np.mean`` of the values in dataset order; the headline is the unweighted
``np.mean`` of the 11 group means, in Step1X-Edit's group order, for the full set and for
the items with ``Intersection_exist``. Worked example: two groups, one with items
(SC, PQ) = (6, 8) and (8, 8), the other with one (4, 9) and one failed item: group SC
means 7 and 4, headline SC (7 + 4) / 2 = 5.5; the pooled mean over the three scored items
is 6.0, and with the failure as 0 the group means are 7 and 2, headline 4.5.

**ImgEdit-Bench** (``step2_typescore.py`` and its leaderboard): per edit type,
``round(sum(scores) / len(scores), 2)`` over the type's scored items (each item's score
is already ``step1``'s 2-decimal mean), in ``basic_edit.json`` order; the leaderboard's
overall is the mean of the rounded type scores, not rounded here.

Upstream drops what failed (an answer that did not parse, a missing output) and computes
over what is left; so does the headline here. Beside it, never instead: the counts of
failed and missing items per group, the pooled (item-weighted) mean, the mean with every
failure as 0, 95% bootstrap intervals over items (resampled within each group, seeded),
and for two runs on the same items a paired comparison.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..metrics import pass_mean
from .gedit import GROUPS

GEDIT_FIELDS = ("semantics", "quality", "overall")
IMGEDIT_FIELDS = ("overall",)
BENCHMARKS = ("gedit", "imgedit")


def fields_of(benchmark: str) -> tuple[str, ...]:
    return GEDIT_FIELDS if benchmark == "gedit" else IMGEDIT_FIELDS


@dataclass(frozen=True)
class ItemResult:
    """One benchmark item's score from its passes (Avg@k of each field), or why it has none."""

    key: str
    group: str
    intersection: bool | None
    status: str  # ok | failed | missing
    values: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    passes_ok: int = 0


def pass_values(record: Mapping[str, Any]) -> dict[str, float]:
    """A pass's semantics, quality and overall, whatever protocol judged it.

    VIEScore records carry SC and PQ as ``semantics`` and ``quality``; an EditScore-style
    record's semantics is min(prompt following, consistency), which is exactly its
    min(SC) / (R / 10), and its quality is its perceptual quality.
    """
    out: dict[str, float] = {}

    def number(name: str) -> float | None:
        value = record.get(name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        return value

    semantics = number("semantics")
    if semantics is None:
        pf, c = number("prompt_following"), number("consistency")
        semantics = min(pf, c) if pf is not None and c is not None else None
    quality = number("quality")
    if quality is None:
        quality = number("perceptual_quality")
    for name, value in (
        ("semantics", semantics),
        ("quality", quality),
        ("overall", number("overall")),
    ):
        if value is not None:
            out[name] = value
    return out


def item_results(records: Iterable[Mapping[str, Any]], k: int) -> list[ItemResult]:
    """Per item (first-seen order), its Avg@k over the successful passes < k, in pass order."""
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        grouped.setdefault(str(record["key"]), []).append(record)
    results = []
    for key, recs in grouped.items():
        first = recs[0]
        group, inter = str(first["task_type"]), first.get("intersection")
        inter = None if inter is None else bool(inter)
        if any(r["status"] == "missing" for r in recs):
            results.append(ItemResult(key, group, inter, "missing", error=first.get("error")))
            continue
        ok = sorted((r for r in recs if r["status"] == "ok" and int(r["pass"]) < k),
                    key=lambda r: int(r["pass"]))  # fmt: skip
        if not ok:
            failed = [r for r in recs if int(r["pass"]) < k]
            error = next((r.get("error") for r in failed if r.get("error")), "no pass")
            results.append(ItemResult(key, group, inter, "failed", error=error))
            continue
        per_pass = [pass_values(r) for r in ok]
        values: dict[str, float] = {}
        for name in GEDIT_FIELDS:
            got = [v[name] for v in per_pass if name in v]
            if got:
                values[name] = got[0] if len(got) == 1 else pass_mean(got)
        results.append(ItemResult(key, group, inter, "ok", values, passes_ok=len(ok)))
    return results


def _mean(values: Sequence[float]) -> float | None:
    """``np.mean`` as upstream takes it, as a Python float; None (upstream: NaN) for no values."""
    return float(np.mean(values)) if values else None


def _counts(members: Sequence[ItemResult]) -> dict[str, int]:
    return {
        "items": len(members),
        "scored": sum(m.status == "ok" for m in members),
        "failed": sum(m.status == "failed" for m in members),
        "missing": sum(m.status == "missing" for m in members),
    }


def _by_group(items: Sequence[ItemResult], groups: Sequence[str]) -> dict[str, list[ItemResult]]:
    out: dict[str, list[ItemResult]] = {g: [] for g in groups}
    for item in items:
        out.setdefault(item.group, []).append(item)
    return out


# --------------------------------------------------------------------------- the authors' numbers


def gedit_block(items: Sequence[ItemResult]) -> tuple[dict[str, Any], dict[str, float | None]]:
    """(groups, headline) as Step1X-Edit's calculate_statistics.py computes them."""
    groups: dict[str, Any] = {}
    for g, members in _by_group(items, GROUPS).items():
        ok = [m for m in members if m.status == "ok"]
        groups[g] = {f: _mean([m.values[f] for m in ok]) for f in GEDIT_FIELDS}
        groups[g].update(_counts(members))
    headline: dict[str, float | None] = {}
    for f in GEDIT_FIELDS:
        means = [groups[g][f] for g in GROUPS]
        headline[f] = None if any(v is None for v in means) else float(np.mean(means))
    return groups, headline


def imgedit_block(
    items: Sequence[ItemResult], types: Sequence[str]
) -> tuple[dict[str, Any], dict[str, float | None]]:
    """(types, headline) as ImgEdit's step 2 and its leaderboard compute them."""
    groups: dict[str, Any] = {}
    for t, members in _by_group(items, types).items():
        scores = [m.values["overall"] for m in members if m.status == "ok"]
        groups[t] = {
            "overall": round(sum(scores) / len(scores), 2) if scores else None,
            "overall_unrounded": sum(scores) / len(scores) if scores else None,
            **_counts(members),
        }
    rounded = [groups[t]["overall"] for t in groups]
    overall = None if not rounded or None in rounded else sum(rounded) / len(rounded)
    return groups, {"overall": overall}


# --------------------------------------------------------------------------- beside them


def pooled(items: Sequence[ItemResult], fields: Sequence[str]) -> dict[str, float | None]:
    """Item-weighted means over every scored item (lmms-eval's way, without its zeros)."""
    ok = [m for m in items if m.status == "ok"]
    return {f: _mean([m.values[f] for m in ok]) for f in fields}


def failures_as_zero(
    items: Sequence[ItemResult], fields: Sequence[str], groups: Sequence[str]
) -> dict[str, Any]:
    """Every failed or missing item scored 0: macro over groups, and pooled over items."""

    def value(m: ItemResult, f: str) -> float:
        return m.values[f] if m.status == "ok" else 0.0

    by_group = _by_group(items, groups)
    macro: dict[str, float | None] = {}
    for f in fields:
        means = [_mean([value(m, f) for m in by_group[g]]) for g in groups]
        present = [v for v in means if v is not None]
        macro[f] = float(np.mean(present)) if present and len(present) == len(means) else None
    return {"macro": macro, "pooled": {f: _mean([value(m, f) for m in items]) for f in fields}}


def _percentiles(samples: np.ndarray, level: float) -> list[float] | None:
    samples = samples[~np.isnan(samples)]
    if samples.size == 0:
        return None
    alpha = (1 - level) / 2 * 100
    low, high = np.percentile(samples, [alpha, 100 - alpha])
    return [float(low), float(high)]


def bootstrap(
    items: Sequence[ItemResult], fields: Sequence[str], groups: Sequence[str], *,
    rounded: bool = False, resamples: int = 1000, seed: int = 0, level: float = 0.95,
) -> dict[str, Any]:  # fmt: skip
    """Percentile intervals of the headline (macro over groups), each group's mean and the
    pooled mean, resampling the scored items with replacement within each group.

    ``rounded``: each group mean is rounded to 2 decimals first (ImgEdit's type scores).
    """
    rng = np.random.default_rng(seed)
    by_group = _by_group([m for m in items if m.status == "ok"], groups)
    group_means: dict[str, dict[str, np.ndarray]] = {}
    for g in groups:
        members = by_group[g]
        if not members or resamples < 1:
            continue
        idx = rng.integers(0, len(members), size=(resamples, len(members)))
        group_means[g] = {}
        for f in fields:
            values = np.array([m.values[f] for m in members], dtype=np.float64)
            means = values[idx].mean(axis=1)
            group_means[g][f] = np.round(means, 2) if rounded else means
    out: dict[str, Any] = {"headline": {}, "groups": {}, "pooled": {}}
    complete = len(group_means) == len(groups)
    for f in fields:
        out["headline"][f] = (
            _percentiles(np.mean([group_means[g][f] for g in groups], axis=0), level)
            if complete and groups
            else None
        )
    for g in groups:
        out["groups"][g] = {f: _percentiles(group_means[g][f], level) if g in group_means else None
                            for f in fields}  # fmt: skip
    ok = [m for m in items if m.status == "ok"]
    if ok and resamples >= 1:
        idx = rng.integers(0, len(ok), size=(resamples, len(ok)))
        for f in fields:
            values = np.array([m.values[f] for m in ok], dtype=np.float64)
            out["pooled"][f] = _percentiles(values[idx].mean(axis=1), level)
    else:
        out["pooled"] = dict.fromkeys(fields)
    return out


def benchmark_numbers(
    benchmark: str, items: Sequence[ItemResult], types: Sequence[str] | None = None, *,
    resamples: int = 1000, seed: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """Everything of ``metrics.json`` that follows from the items: the authors' numbers and
    the numbers beside them."""
    fields = fields_of(benchmark)
    out: dict[str, Any] = {}
    if benchmark == "gedit":
        groups_list: Sequence[str] = GROUPS
        out["groups"], out["headline"] = gedit_block(items)
        inter = [m for m in items if m.intersection]
        out["groups_intersection"], out["headline_intersection"] = gedit_block(inter)
    else:
        groups_list = list(types or [])
        out["groups"], out["headline"] = imgedit_block(items, groups_list)
    out["counts"] = _counts(items)
    out["pooled"] = pooled(items, fields)
    out["failures_as_zero"] = failures_as_zero(items, fields, groups_list)
    rounded = benchmark == "imgedit"
    out["ci95"] = bootstrap(
        items, fields, groups_list, rounded=rounded, resamples=resamples, seed=seed
    )
    if benchmark == "gedit":
        inter_ci = bootstrap([m for m in items if m.intersection], fields, groups_list,
                             resamples=resamples, seed=seed)  # fmt: skip
        out["ci95"]["headline_intersection"] = inter_ci["headline"]
    out["bootstrap"] = {"resamples": resamples, "seed": seed, "level": 0.95,
                        "unit": "item, resampled within its group"}  # fmt: skip
    return out


def headline_of(
    benchmark: str, items: Sequence[ItemResult], types: Sequence[str] | None = None
) -> dict[str, float | None]:
    """The authors' headline alone (Best-of-N curves need only it)."""
    if benchmark == "gedit":
        return gedit_block(items)[1]
    return imgedit_block(items, list(types or []))[1]


# --------------------------------------------------------------------------- two runs


def paired_comparison(
    benchmark: str, a: Sequence[ItemResult], b: Sequence[ItemResult], types: Sequence[str] | None = None,
    *, resamples: int = 1000, seed: int = 0, field_name: str = "overall",
) -> dict[str, Any]:  # fmt: skip
    """Run B against run A on the items both scored: the headline difference (macro over
    groups, as the authors average) with a paired bootstrap interval (the same items drawn
    for both, within each group), and per-item wins, ties and losses with a sign test."""
    from scipy.stats import binomtest

    by_key = {m.key: m for m in a if m.status == "ok"}
    pairs = [(by_key[m.key], m) for m in b if m.status == "ok" and m.key in by_key]
    groups = list(GROUPS) if benchmark == "gedit" else list(types or [])
    by_group: dict[str, list[tuple[ItemResult, ItemResult]]] = {g: [] for g in groups}
    for pa, pb in pairs:
        by_group.setdefault(pa.group, []).append((pa, pb))
    present = [g for g in groups if by_group[g]]
    diffs = [pb.values[field_name] - pa.values[field_name] for pa, pb in pairs]
    wins = sum(d > 0 for d in diffs)
    losses = sum(d < 0 for d in diffs)
    result: dict[str, Any] = {
        "field": field_name,
        "items_compared": len(pairs),
        "groups_compared": len(present),
        "wins": wins, "ties": len(diffs) - wins - losses, "losses": losses,
        "sign_test_p": float(binomtest(wins, wins + losses).pvalue) if wins + losses else None,
        "difference": None, "ci95": None,
    }  # fmt: skip
    if not present:
        return result

    def macro(values: list[np.ndarray]) -> np.ndarray:
        return np.mean(np.stack(values), axis=0)

    rng = np.random.default_rng(seed)
    point, draws = [], []
    for g in present:
        va = np.array([pa.values[field_name] for pa, _ in by_group[g]], dtype=np.float64)
        vb = np.array([pb.values[field_name] for _, pb in by_group[g]], dtype=np.float64)
        point.append(np.array(vb.mean() - va.mean()))
        idx = rng.integers(0, len(va), size=(resamples, len(va)))
        draws.append(vb[idx].mean(axis=1) - va[idx].mean(axis=1))
    result["difference"] = float(macro(point))
    result["ci95"] = _percentiles(macro(draws), 0.95) if resamples >= 1 else None
    return result
