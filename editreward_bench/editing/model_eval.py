"""``erb model-eval``: an editing model's outputs on GEdit-Bench or ImgEdit-Bench, judged.

The run judges every output (through the pass store), writes one record per output and
pass, and computes the benchmark's numbers as its authors do (:mod:`.scores`), with the
failures they hide counted beside them and the judge's identity in the manifest.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..failures import reason
from ..outputs import OutputError, check_name, check_run_dir
from ..runner import RunError, RunOptions, default_run_name, open_judge
from ..store import PassStore, StoreError, default_store_path
from .gedit import EditBenchmarkError
from .items import EditItem, MissingOutput
from .judging import judge_items
from .runs import (
    CIRCULAR_NOTE,
    MODEL_EVAL,
    SCHEMA_VERSION,
    LoadedBenchmark,
    circular,
    judge_identity,
    load_for_run,
    manifest,
    pass_row,
    write_folder,
)
from .scores import benchmark_numbers, item_results

RUNS_ROOT = Path("reports") / "runs"


@dataclass
class ModelEvalRequest:
    """What to score: a benchmark, a model's outputs, a judge, and where the run goes."""

    benchmark: str
    outputs: Path
    judge: str
    dataset: str | None = None
    revision: str | None = None
    split: str | None = None
    language: str = "en"
    images: Path | None = None
    model_name: str | None = None
    out: Path | None = None
    name: str | None = None
    overwrite: bool = False

    @property
    def editing_model(self) -> str:
        return (
            self.model_name
            or (self.outputs.stem if self.outputs.is_file() else self.outputs.name)
            or "model"
        )


@dataclass
class ModelEvalSummary:
    path: Path
    metrics: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def bench_tag(benchmark: str, language: str) -> str:
    return f"gedit-{language}" if benchmark == "gedit" else "imgedit"


def default_run_dir(request: ModelEvalRequest, judge_name: str, k: int) -> Path:
    name = (
        request.name
        or f"{request.editing_model}--{bench_tag(request.benchmark, request.language)}--{default_run_name(judge_name, k)}"
    )
    return RUNS_ROOT / check_name(name, "run name")


def outputs_fingerprint(found: Sequence[EditItem | MissingOutput]) -> str:
    """What the outputs are: each output's key and bytes (a missing one by its key)."""
    digest = hashlib.sha256()
    for entry in found:
        sha = entry.edited.sha if isinstance(entry, EditItem) else "missing"
        digest.update(f"{entry.key}\x1f{sha}\x1e".encode())
    return "sha256:" + digest.hexdigest()


def model_metrics(records: Sequence[Mapping[str, Any]], benchmark: str, k: int, *,
                  resamples: int = 1000, seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """The numbers of metrics.json that follow from the records alone (``erb verify`` reruns it)."""
    items = item_results(records, k)
    groups = (
        list(dict.fromkeys(str(r["task_type"]) for r in records))
        if benchmark == "imgedit"
        else None
    )
    numbers = benchmark_numbers(benchmark, items, groups, resamples=resamples, seed=seed)
    failed = Counter(reason(m.error) for m in items if m.status == "failed")
    numbers["counts"].update(
        failed_reasons=dict(failed.most_common()),
        partial=sum(1 for m in items if m.status == "ok" and m.passes_ok < k),
        out_of_range=sum(1 for r in records if r["status"] == "ok" and int(r["pass"]) < k
                         and (r.get("extra") or {}).get("out_of_range")),
    )  # fmt: skip
    return numbers


def headline_warnings(metrics: Mapping[str, Any]) -> list[str]:
    """Where the authors' headline is undefined (a group with no scored item: upstream's NaN)."""
    out = []
    for block in ("groups", "groups_intersection"):
        empty = [g for g, v in (metrics.get(block) or {}).items() if v.get("scored") == 0]
        if empty:
            where = "the intersection subset" if block.endswith("intersection") else "the full set"
            out.append(
                f"{len(empty)} group(s) of {where} have no scored item ({', '.join(empty[:4])}): "
                "the authors' script would print NaN, so the headline is null"
            )
    return out


def _notes(bench: LoadedBenchmark, judge_info: Mapping[str, Any]) -> list[str]:
    notes = []
    protocol = judge_info.get("protocol")
    if circular(judge_info):
        notes.append(CIRCULAR_NOTE)
    if bench.kind == "gedit" and protocol != "viescore":
        notes.append(
            "GEdit-Bench's published numbers are VIEScore's (viescore-gpt-4.1); this judge's are not comparable with them"
        )
    if bench.kind == "imgedit" and protocol != "imgedit":
        notes.append(
            "ImgEdit's published numbers are its rubric's (1..5, imgedit-gpt-4.1); this judge's overall is on its own scale"
        )
    if bench.synthetic:
        notes.append(
            "synthetic data: not GEdit-Bench or ImgEdit-Bench, not comparable with published numbers"
        )
    return notes


def usage(
    records: Iterable[Mapping[str, Any]], judged: Any, store_path: Path, judge: Any
) -> dict[str, Any]:
    prompt = completion = 0
    for r in records:
        prompt += int(r.get("prompt_tokens") or 0)
        completion += int(r.get("completion_tokens") or 0)
    out: dict[str, Any] = {
        "store": str(store_path), "passes_total": judged.passes_total,
        "passes_judged_now": judged.judged_now, "passes_reused": judged.reused,
        "judging_seconds": round(judged.seconds, 3),
        "tokens": {"prompt": prompt, "completion": completion},
    }  # fmt: skip
    common = getattr(getattr(judge, "config", None), "common", None)
    price_in, price_out = (
        getattr(common, "price_input_per_mtok", None),
        getattr(common, "price_output_per_mtok", None),
    )
    if (
        price_in is not None
        and price_out is not None
        and "model" not in getattr(judge.card, "replaced", {})
    ):
        out["cost_usd"] = round(prompt / 1e6 * price_in + completion / 1e6 * price_out, 6)
    return out


def check_protocol(
    bench: LoadedBenchmark, judge_info: Mapping[str, Any], role: str = "judge"
) -> None:
    if bench.kind == "gedit" and judge_info.get("protocol") == "imgedit":
        raise RunError(
            f"the {role} {judge_info.get('name')!r} uses ImgEdit's rubric protocol, which needs "
            "ImgEdit-Bench items; use it with --benchmark imgedit"
        )


def run_model_eval(request: ModelEvalRequest, options: RunOptions) -> ModelEvalSummary:
    """Judge a model's outputs and write the run folder. Raises RunError / RunInterrupted."""
    from ..results import now_iso

    started = now_iso()
    try:
        bench = load_for_run(request.benchmark, request.dataset, revision=request.revision,
                             split=request.split, language=request.language, images=request.images)  # fmt: skip
        found, layout = bench.outputs(request.outputs)
    except EditBenchmarkError as exc:
        raise RunError(str(exc)) from exc
    judge = open_judge(request.judge, options)
    try:
        judge_info = {**judge.describe(), "fingerprint": judge.fingerprint()}
        check_protocol(bench, judge_info)
        card = getattr(judge, "card", None)
        k = options.k or (card.default_k if card is not None else 1)
        try:
            judge.preflight()
        except Exception as exc:
            raise RunError(str(exc)) from exc
        items = [f for f in found if isinstance(f, EditItem)]
        try:
            outputs_fp = outputs_fingerprint(found)
        except OSError as exc:
            raise RunError(f"cannot read an output: {exc}") from exc
        settings = {"kind": MODEL_EVAL, "judge": judge_info["fingerprint"],
                    "dataset": bench.bench.fingerprint, "outputs": outputs_fp, "k": k,
                    "seed": options.seed}  # fmt: skip
        try:
            out = request.out or default_run_dir(request, judge.name, k)
            check_run_dir(out, settings, overwrite=request.overwrite)
        except OutputError as exc:
            raise RunError(str(exc)) from exc
        store_path = options.store or default_store_path()
        try:
            store = PassStore(store_path)
        except StoreError as exc:
            raise RunError(str(exc)) from exc
        with store:
            judged = judge_items(judge, items, k=k, options=options, store=store,
                                 label=f"{bench.title} {request.editing_model}")  # fmt: skip
    finally:
        judge.close()
    rows = [pass_row(entry, p, options.seed, judged.records.get((entry.key, p)))
            for entry in found for p in range(k)]  # fmt: skip
    identity = judge_identity(judge_info, rows)
    run_usage = usage(rows, judged, store_path, judge)
    outputs_info = {"path": str(request.outputs), "layout": layout, "fingerprint": outputs_fp,
                    "model": request.editing_model}  # fmt: skip
    notes = _notes(bench, judge_info)
    warnings = bench.warnings()
    scored = sum(1 for r in rows if r["status"] == "ok")
    stopped = judged.stopped or (
        None if scored else f"no pass succeeded ({len(rows)} failed or missing)"
    )
    base = manifest(kind=MODEL_EVAL, started=started, benchmark=bench,
                    judges={"judge": judge_info, "judge_identity": identity}, settings=settings,
                    extra={"outputs": outputs_info, "k": k, "seed": options.seed, **run_usage})  # fmt: skip
    if stopped is not None:
        top = "; ".join(f"{n} x {why}" for why, n in judged.failed.most_common(3))
        write_folder(out, records=rows, manifest_data={**base, "status": "stopped", "stopped_because": stopped},
                     metrics=None)  # fmt: skip
        raise RunError(
            f"the run stopped: {stopped}. Top reasons: {top or 'none'}. Every finished pass is in "
            f"the store; records and manifest are in {out}"
        )
    numbers = model_metrics(rows, bench.kind, k, resamples=options.n_bootstrap)
    warnings += headline_warnings(numbers)
    counts = numbers["counts"]
    if counts["failed"] or counts["missing"]:
        warnings.append(
            f"{counts['failed']} failed and {counts['missing']} missing of {counts['items']} items: "
            "the authors' numbers leave them out, as their scripts do; failures_as_zero counts them as 0"
        )
    from ..results import package_versions

    metrics = {
        "schema_version": SCHEMA_VERSION,
        "kind": MODEL_EVAL,
        "benchmark": bench.kind,
        "title": bench.title,
        "model": request.editing_model,
        "judge": judge_info,
        "judge_identity": identity,
        "k": k,
        "seed": options.seed,
        "dataset": bench.describe(),
        "outputs": outputs_info,
        **numbers,
        "notes": notes,
        "created": now_iso(),
        "versions": package_versions(),
    }
    write_folder(out, records=rows, manifest_data=base, metrics=metrics)
    summary_notes = [
        f"{judged.reused} of {judged.passes_total} passes reused from the store {store_path}; "
        f"{judged.judged_now} judged now"
    ]
    return ModelEvalSummary(out, metrics, warnings, summary_notes + [f"note: {n}" for n in notes])
