"""``erb best-of-n``: pick the best of N samples per item with one judge, score the picks with another.

As EditScore's Best-of-N scripts do (``select_best.py``, then GEdit-Bench's judge on the
picks): sample t of item KEY is ``KEY.png`` (t = 0) or ``KEY_sample<t>.png``; the
selector scores each candidate once; the pick among the first N is the highest overall,
ties to the earliest sample (upstream keeps the first of equal scores); the evaluator's
benchmark numbers over the picks make the curve at N, for N = 1, 2, 4, ... up to the
samples available. Beside it, with the same intervals:

- the oracle: the evaluator's own pick among the first N (its best possible curve);
- random: the expected evaluator score of a sample drawn uniformly from the first N.

Every candidate is judged through the pass store, by both judges (the oracle and random
curves need the evaluator's score of each), so another selector, another k or a larger N
judges only what is new. A candidate its judge failed on ranks below every scored one
(at N = 1 the pick is always the first sample); an item whose pick the evaluator failed
on is left out of that curve point, as the authors' numbers leave out failures, and
counted. The picks are written as image folders, one per N, in the benchmark's layout
(``picks/best<N>/``), for other tools.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..outputs import OutputError, check_name, check_run_dir, read_marker
from ..runner import RunError, RunOptions, default_run_name, open_judge
from ..store import PassStore, StoreError, default_store_path
from .gedit import EditBenchmarkError, sample_name
from .items import EditItem, MissingOutput
from .judging import Judged, judge_items
from .model_eval import RUNS_ROOT, bench_tag, check_protocol, outputs_fingerprint
from .runs import (
    BEST_OF_N,
    CIRCULAR_NOTE,
    METRICS,
    SCHEMA_VERSION,
    LoadedBenchmark,
    circular,
    judge_identity,
    load_for_run,
    manifest,
    pass_row,
    write_folder,
)
from .scores import ItemResult, benchmark_numbers, item_results

PICKS = "picks"
#: Samples looked for per item when --n is not given.
MAX_SAMPLES = 64
CURVES = ("selector", "oracle", "random")


@dataclass
class BestOfNRequest:
    benchmark: str
    outputs: Path
    selector: str
    evaluator: str
    dataset: str | None = None
    revision: str | None = None
    split: str | None = None
    language: str = "en"
    images: Path | None = None
    model_name: str | None = None
    n: int | None = None
    selector_k: int | None = None
    evaluator_k: int | None = None
    out: Path | None = None
    name: str | None = None
    overwrite: bool = False

    @property
    def editing_model(self) -> str:
        return self.model_name or self.outputs.name or "model"


@dataclass
class BestOfNSummary:
    path: Path
    metrics: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def curve_points(available: int) -> list[int]:
    """N = 1, 2, 4, ... up to ``available`` (and ``available`` itself when not a power of 2)."""
    points = [1 << i for i in range(max(1, available).bit_length()) if (1 << i) <= available]
    if points[-1] != available:
        points.append(available)
    return points


def best_index(scores: Sequence[float | None]) -> int:
    """The pick among candidates in sample order: the highest score, ties to the earliest; a
    candidate without a score (its judge failed) ranks below every scored one."""
    best, best_score = 0, -math.inf
    for i, score in enumerate(scores):
        value = -math.inf if score is None else score
        if value > best_score:
            best, best_score = i, value
    return best


def _by_item(
    results: Sequence[ItemResult], samples: Mapping[str, tuple[str, int]]
) -> dict[str, dict[int, ItemResult]]:
    out: dict[str, dict[int, ItemResult]] = {}
    for r in results:
        item_key, t = samples[r.key]
        out.setdefault(item_key, {})[t] = r
    return out


def _as_item(
    item_key: str,
    template: ItemResult,
    chosen: ItemResult | None,
    values: dict[str, float] | None = None,
) -> ItemResult:
    """The evaluator's result on the pick, filed under the benchmark item."""
    if values is not None:
        return ItemResult(item_key, template.group, template.intersection, "ok", values)
    if template.status == "missing":
        return ItemResult(
            item_key, template.group, template.intersection, "missing", error=template.error
        )
    if chosen is None or chosen.status != "ok":
        why = chosen.error if chosen is not None else "no candidate"
        return ItemResult(item_key, template.group, template.intersection, "failed", error=why)
    return ItemResult(item_key, template.group, template.intersection, "ok", dict(chosen.values))


def compute_curves(
    benchmark: str, records: Sequence[Mapping[str, Any]], ns: Sequence[int], *,
    selector_k: int, evaluator_k: int, resamples: int = 1000, seed: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """Picks and curves from the run's records alone (``erb verify`` reruns it)."""
    samples = {str(r["key"]): (str(r["item_key"]), int(r["sample"])) for r in records}
    by_role: dict[str, list[Mapping[str, Any]]] = {"selector": [], "evaluator": []}
    for r in records:
        by_role[str(r["role"])].append(r)
    selector = _by_item(item_results(by_role["selector"], selector_k), samples)
    evaluator = _by_item(item_results(by_role["evaluator"], evaluator_k), samples)
    groups = (
        list(dict.fromkeys(str(r["task_type"]) for r in records))
        if benchmark == "imgedit"
        else None
    )
    items = list(evaluator)
    picks: dict[str, dict[str, int | None]] = {}
    curves: dict[str, dict[str, Any]] = {name: {} for name in CURVES}
    short = {}
    for n in ns:
        chosen: dict[str, list[ItemResult]] = {name: [] for name in CURVES}
        picks[str(n)] = {}
        short[str(n)] = 0
        for item_key in items:
            ev = evaluator[item_key]
            template = next(iter(ev.values()))
            ts = sorted(t for t in ev if t < n)
            if len(ts) < n:
                short[str(n)] += 1
            sel_scores = [_overall(selector.get(item_key, {}).get(t)) for t in ts]
            pick = ts[best_index(sel_scores)]
            picks[str(n)][item_key] = pick
            chosen["selector"].append(_as_item(item_key, template, ev.get(pick)))
            oracle = ts[best_index([_overall(ev[t]) for t in ts])]
            chosen["oracle"].append(_as_item(item_key, template, ev[oracle]))
            scored = [ev[t] for t in ts if ev[t].status == "ok"]
            if scored:
                names = [f for f in scored[0].values if all(f in s.values for s in scored)]
                means = {f: sum(s.values[f] for s in scored) / len(scored) for f in names}
                chosen["random"].append(_as_item(item_key, template, None, means))
            else:
                chosen["random"].append(_as_item(item_key, template, None if not ts else ev[ts[0]]))
        for name in CURVES:
            numbers = benchmark_numbers(
                benchmark, chosen[name], groups, resamples=resamples, seed=seed
            )
            keep = ("headline", "headline_intersection", "counts", "pooled", "failures_as_zero")
            point = {key: numbers[key] for key in keep if key in numbers}
            point["ci95"] = {
                key: value for key, value in numbers["ci95"].items() if key.startswith("headline")
            }
            curves[name][str(n)] = point
    return {"curves": curves, "picks": picks, "items_with_fewer_samples": short}


def _overall(result: ItemResult | None) -> float | None:
    if result is None or result.status != "ok":
        return None
    return result.values.get("overall")


def available_samples(found: Sequence[EditItem | MissingOutput]) -> dict[str, int]:
    """Per item, how many samples it has from the first on (``KEY.png``, ``KEY_sample1.png``...)."""
    count: dict[str, int] = {}
    broken: set[str] = set()
    for entry in found:
        count.setdefault(entry.item_key, 0)
        if isinstance(entry, MissingOutput):
            broken.add(entry.item_key)
        elif entry.item_key not in broken:
            count[entry.item_key] += 1
    return count


def write_picks(out: Path, bench: LoadedBenchmark, picks: Mapping[str, Mapping[str, int | None]],
                by_key: Mapping[tuple[str, int], EditItem]) -> list[str]:  # fmt: skip
    """One folder per N under ``out/picks``, in the benchmark's layout; returns their names."""
    root = out / PICKS
    marker = read_marker(out)
    if root.exists():
        if marker is None or PICKS not in marker.files:
            raise OutputError(
                f"{root} was not written by erb; move it away or choose another --out"
            )
        shutil.rmtree(root)
    names = []
    for n, chosen in picks.items():
        folder = root / f"best{n}"
        for item_key, t in chosen.items():
            if t is None or (item_key, t) not in by_key:
                continue
            item = by_key[(item_key, t)]
            if bench.kind == "gedit":
                target = folder / "fullset" / item.group / str(item.language)
                target.mkdir(parents=True, exist_ok=True)
                (target / f"{item_key}_SRCIMG.png").write_bytes(item.source_bytes())
                (target / sample_name(item_key, 0)).write_bytes(item.edited_bytes())
            else:
                folder.mkdir(parents=True, exist_ok=True)
                (folder / sample_name(item_key, 0)).write_bytes(item.edited_bytes())
        names.append(f"{PICKS}/best{n}")
    return names


def run_best_of_n(request: BestOfNRequest, options: RunOptions) -> BestOfNSummary:
    from ..results import now_iso, package_versions

    started = now_iso()
    try:
        bench = load_for_run(request.benchmark, request.dataset, revision=request.revision,
                             split=request.split, language=request.language, images=request.images)  # fmt: skip
        found, layout = bench.outputs(request.outputs, request.n or MAX_SAMPLES)
    except EditBenchmarkError as exc:
        raise RunError(str(exc)) from exc
    counts = available_samples(found)
    order = {key: i for i, key in enumerate(counts)}
    most = max(counts.values(), default=0)
    n_max = min(request.n, most) if request.n else most
    if n_max < 1:
        raise RunError(f"no samples found in {request.outputs}")
    candidates = [f for f in found if isinstance(f, EditItem) and f.sample < n_max
                  and f.sample < counts[f.item_key]]  # fmt: skip
    # Items without any output are kept as missing, so that they are counted.
    absent = [f for f in found if isinstance(f, MissingOutput) and f.sample == 0]
    ns = curve_points(n_max)
    warnings = bench.warnings()
    if request.n and request.n > most:
        warnings.append(
            f"--n {request.n}: the outputs have at most {most} samples per item; the curve stops at {n_max}"
        )
    fewer = sum(1 for c in counts.values() if c < n_max)
    if fewer:
        warnings.append(
            f"{fewer} of {len(counts)} items have fewer than {n_max} samples: they pick among those they have"
        )
    selector = open_judge(request.selector, options)
    evaluator = open_judge(request.evaluator, options)
    try:
        sel_info = {**selector.describe(), "fingerprint": selector.fingerprint()}
        ev_info = {**evaluator.describe(), "fingerprint": evaluator.fingerprint()}
        check_protocol(bench, sel_info, "selector")
        check_protocol(bench, ev_info, "evaluator")
        sel_k = _k(request.selector_k, selector)
        ev_k = _k(request.evaluator_k, evaluator)
        for judge in (selector, evaluator):
            try:
                judge.preflight()
            except Exception as exc:
                raise RunError(str(exc)) from exc
        try:
            outputs_fp = outputs_fingerprint(candidates)
        except OSError as exc:
            raise RunError(f"cannot read an output: {exc}") from exc
        settings = {"kind": BEST_OF_N, "selector": sel_info["fingerprint"], "evaluator": ev_info["fingerprint"],
                    "dataset": bench.bench.fingerprint, "outputs": outputs_fp, "n": n_max,
                    "selector_k": sel_k, "evaluator_k": ev_k, "seed": options.seed}  # fmt: skip
        try:
            default = (
                f"{request.editing_model}--{bench_tag(request.benchmark, request.language)}--best-of-{n_max}"
                f"--{default_run_name(selector.name, sel_k)}--{default_run_name(evaluator.name, ev_k)}"
            )
            out = request.out or RUNS_ROOT / check_name(request.name or default, "run name")
            check_run_dir(out, settings, overwrite=request.overwrite)
        except OutputError as exc:
            raise RunError(str(exc)) from exc
        store_path = options.store or default_store_path()
        try:
            store = PassStore(store_path)
        except StoreError as exc:
            raise RunError(str(exc)) from exc
        with store:
            sel = judge_items(
                selector, candidates, k=sel_k, options=options, store=store, label="selector"
            )
            ev = judge_items(
                evaluator, candidates, k=ev_k, options=options, store=store, label="evaluator"
            )
    finally:
        selector.close()
        evaluator.close()
    entries: list[EditItem | MissingOutput] = [*candidates, *absent]
    entries.sort(key=lambda e: (order[e.item_key], e.sample))
    rows = [pass_row(c, p, options.seed, judged.records.get((c.key, p)), role)
            for role, judged, k in (("selector", sel, sel_k), ("evaluator", ev, ev_k))
            for c in entries for p in range(k)]  # fmt: skip
    same = sel_info["fingerprint"] == ev_info["fingerprint"]
    notes = []
    if same:
        warnings.append(
            "the selector and the evaluator are the same judge: the curve measures how well the "
            "judge agrees with itself, not how much better the picks are"
        )
    for role, info in (("selector", sel_info), ("evaluator", ev_info)):
        if circular(info) and role == "evaluator":
            notes.append(CIRCULAR_NOTE)
    if bench.synthetic:
        notes.append("synthetic data: not comparable with published numbers")
    stopped = sel.stopped or ev.stopped
    base = manifest(kind=BEST_OF_N, started=started, benchmark=bench,
                    judges={"selector": sel_info, "evaluator": ev_info,
                            "selector_identity": judge_identity(sel_info, [r for r in rows if r["role"] == "selector"]),
                            "evaluator_identity": judge_identity(ev_info, [r for r in rows if r["role"] == "evaluator"])},
                    settings=settings,
                    extra={"outputs": {"path": str(request.outputs), "layout": layout, "fingerprint": outputs_fp,
                                       "model": request.editing_model},
                           "usage": {name: _usage(j) for name, j in (("selector", sel), ("evaluator", ev))},
                           "store": str(store_path)})  # fmt: skip
    if stopped or not any(r["status"] == "ok" for r in rows if r["role"] == "evaluator"):
        why = stopped or "the evaluator scored no candidate"
        write_folder(
            out,
            records=rows,
            manifest_data={**base, "status": "stopped", "stopped_because": why},
            metrics=None,
        )
        raise RunError(
            f"the run stopped: {why}. Every finished pass is in the store; records are in {out}"
        )
    computed = compute_curves(
        bench.kind, rows, ns, selector_k=sel_k, evaluator_k=ev_k, resamples=options.n_bootstrap
    )
    by_key = {(c.item_key, c.sample): c for c in candidates}
    metrics = {
        "schema_version": SCHEMA_VERSION, "kind": BEST_OF_N, "benchmark": bench.kind, "title": bench.title,
        "model": request.editing_model, "selector": sel_info, "evaluator": ev_info,
        "selector_identity": base["selector_identity"], "evaluator_identity": base["evaluator_identity"],
        "selector_k": sel_k, "evaluator_k": ev_k, "k": ev_k, "seed": options.seed, "n": ns,
        "samples_available": most, "same_judge": same, "dataset": bench.describe(),
        "outputs": base["outputs"], **computed, "notes": notes,
        "bootstrap": {"resamples": options.n_bootstrap, "seed": 0, "level": 0.95,
                      "unit": "item, resampled within its group"},
        "created": now_iso(), "versions": package_versions(),
    }  # fmt: skip
    write_folder(out, records=rows, manifest_data=base, metrics=None, extra_files=(PICKS,))
    folders = write_picks(out, bench, computed["picks"], by_key)
    metrics["pick_folders"] = folders
    from ..results import write_json

    write_json(out / METRICS, metrics)
    lines = [f"{name}: {j.reused} of {j.passes_total} passes reused from the store, {j.judged_now} judged now"
             for name, j in (("selector", sel), ("evaluator", ev))]  # fmt: skip
    return BestOfNSummary(out, metrics, warnings, lines + [f"note: {n}" for n in notes])


def _k(given: int | None, judge: Any) -> int:
    """The passes asked for, else the judge card's default k."""
    card = getattr(judge, "card", None)
    return given if given is not None else int(getattr(card, "default_k", 1))


def _usage(judged: Judged) -> dict[str, Any]:
    return {"passes_total": judged.passes_total, "passes_judged_now": judged.judged_now,
            "passes_reused": judged.reused, "judging_seconds": round(judged.seconds, 3)}  # fmt: skip
