"""What model-eval and Best-of-N runs share: the benchmark, per-pass records, the judge's identity.

A run folder of an editing model (``erb model-eval``) or of a Best-of-N selection
(``erb best-of-n``) holds, like ``erb evaluate``'s::

    RUN/
      records.parquet  one row per (output, pass): key, task_type, pass, status, the
                       judge's raw answers and reasoning, semantics / quality / overall
      metrics.json     kind "model-eval" or "best-of-n": the authors' headline, groups,
                       and what they hide (failures, pooled, failures as 0, intervals)
      manifest.json    versions, dataset, outputs, the judge's identity, usage

``erb verify`` recomputes ``metrics.json`` from ``records.parquet`` alone.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .. import __version__
from ..redact import redact_text, redact_url
from .gedit import EditBenchmarkError, GEditBench, gedit_outputs, load_gedit
from .imgedit import ImgEditBench, imgedit_outputs, load_imgedit, rubrics_without_placeholder
from .items import EditItem, MissingOutput
from .scores import pass_values

RECORDS = "records.parquet"
METRICS = "metrics.json"
MANIFEST = "manifest.json"
MODEL_RUN_FILES = (RECORDS, MANIFEST, METRICS)
MODEL_EVAL = "model-eval"
BEST_OF_N = "best-of-n"
RUN_KINDS = (MODEL_EVAL, BEST_OF_N)
SCHEMA_VERSION = 1

#: Columns of a model run's records.parquet, in order.
RECORD_COLUMNS: dict[str, str] = {
    "role": "string", "key": "string", "item_key": "string", "sample": "int32",
    "task_type": "string", "language": "string", "intersection": "bool_", "pass": "int32",
    "seed": "int64", "status": "string", "error": "string", "semantics": "float64",
    "quality": "float64", "overall": "float64", "prompt_following": "float64",
    "consistency": "float64", "perceptual_quality": "float64", "raw_sc": "string",
    "raw_pq": "string", "reasoning_sc": "string", "reasoning_pq": "string",
    "prompt_tokens": "int64", "completion_tokens": "int64", "attempts": "int32",
    "served_model": "string", "source_path": "string", "edited_path": "string", "extra": "string",
}  # fmt: skip


@dataclass
class LoadedBenchmark:
    """GEdit-Bench in one language, or ImgEdit-Bench's basic suite, ready to find outputs."""

    kind: str  # gedit | imgedit
    bench: GEditBench | ImgEditBench
    language: str | None = None

    @property
    def title(self) -> str:
        if self.kind == "gedit":
            return f"GEdit-Bench-{(self.language or 'en').upper()}"
        return "ImgEdit-Bench (basic)"

    @property
    def groups(self) -> list[str]:
        from .gedit import GROUPS

        if isinstance(self.bench, ImgEditBench):
            return self.bench.types
        return list(GROUPS)

    @property
    def synthetic(self) -> bool:
        return self.bench.synthetic

    def rows(self) -> int:
        if isinstance(self.bench, GEditBench):
            return len(self.bench.rows_for(self.language or "en"))
        return len(self.bench.rows)

    def outputs(
        self, outputs: Path, samples: int = 1
    ) -> tuple[list[EditItem | MissingOutput], str]:
        if isinstance(self.bench, GEditBench):
            rows = self.bench.rows_for(self.language or "en")
            found, layout = gedit_outputs(self.bench, rows, outputs, samples)
            return list(found), layout
        found_i, layout = imgedit_outputs(self.bench, outputs, samples)
        return list(found_i), layout

    def describe(self) -> dict[str, Any]:
        info = {"benchmark": self.kind, "title": self.title, **self.bench.describe()}
        if self.language is not None:
            info["language"] = self.language
            info["items"] = self.rows()
        return info

    def warnings(self) -> list[str]:
        if isinstance(self.bench, ImgEditBench):
            lacking = rubrics_without_placeholder(self.bench)
            if lacking:
                return [
                    f"the rubric of {', '.join(lacking)} has no <edit_prompt>: the instruction is not sent"
                ]
        return []


def load_for_run(kind: str, dataset: str | None, *, revision: str | None = None, split: str | None = None,
                 language: str = "en", images: Path | None = None) -> LoadedBenchmark:  # fmt: skip
    if kind == "gedit":
        from .gedit import HUB_ID

        bench = load_gedit(dataset or HUB_ID, revision, split=split)
        bench.rows_for(language)  # a language the data does not spell is an error now
        return LoadedBenchmark("gedit", bench, language)
    if kind == "imgedit":
        if revision is not None or split is not None:
            raise EditBenchmarkError(
                "--revision and --split apply to GEdit-Bench, not ImgEdit-Bench"
            )
        return LoadedBenchmark("imgedit", load_imgedit(dataset, images))
    raise EditBenchmarkError(f"unknown benchmark {kind!r}; use gedit or imgedit")


# --------------------------------------------------------------------------- records


def pass_row(entry: EditItem | MissingOutput, p: int, seed: int, record: Mapping[str, Any] | None,
             role: str | None = None) -> dict[str, Any]:  # fmt: skip
    """One row of records.parquet: the output's identity and its pass (or why there is none)."""
    row: dict[str, Any] = {
        "role": role, "key": entry.key, "item_key": entry.item_key, "sample": entry.sample,
        "task_type": entry.group, "language": entry.language, "intersection": entry.intersection,
        "pass": p, "seed": seed + p,
    }  # fmt: skip
    if isinstance(entry, MissingOutput):
        return {**row, "status": "missing", "error": entry.why}
    row["source_path"] = entry.source.label
    row["edited_path"] = entry.edited.label
    if record is None:
        return {**row, "status": "failed", "error": "not judged: the run stopped before this pass"}
    for name in ("status", "error", "overall", "prompt_following", "consistency",
                 "perceptual_quality", "raw_sc", "raw_pq", "reasoning_sc", "reasoning_pq",
                 "prompt_tokens", "completion_tokens", "attempts"):  # fmt: skip
        row[name] = record.get(name)
    values = pass_values(record) if record.get("status") == "ok" else {}
    row["semantics"] = values.get("semantics")
    row["quality"] = values.get("quality")
    extra = dict(record.get("extra") or {})
    row["served_model"] = extra.get("served_model")
    row["extra"] = extra
    return row


def write_records(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    import pyarrow as pa

    from ..results import _write_parquet

    rows = list(rows)
    columns = {}
    for name, kind in RECORD_COLUMNS.items():
        values = [row.get(name) for row in rows]
        if name == "extra":
            values = [json.dumps(v, sort_keys=True, default=str) if v else None for v in values]
        columns[name] = pa.array(values, type=getattr(pa, kind)())
    _write_parquet(path, pa.table(columns))


def read_records(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    rows = pq.read_table(path, use_threads=False).to_pylist()
    for row in rows:
        if isinstance(row.get("extra"), str):
            row["extra"] = json.loads(row["extra"])
    return rows


# --------------------------------------------------------------------------- the judge


def provider(urls: Sequence[str] | None) -> str | None:
    """The host the judge's requests went to (``api.openai.com``), credentials dropped."""
    if not urls:
        return None
    hosts = []
    for url in urls:
        try:
            host = urlsplit(redact_url(str(url))).hostname
        except ValueError:
            host = None
        hosts.append(f"{host}" if host else redact_url(str(url)))
    return ", ".join(dict.fromkeys(hosts))


def judge_identity(
    judge_info: Mapping[str, Any], records: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """Which judge and settings produced the numbers: card, provider, the model ids the API
    said answered, images, prompt hash, and the share of requests a content filter refused."""
    from ..judges.itempass import CONTENT_FILTER_PREFIX

    backend = dict(judge_info.get("backend_config") or {})
    served: Counter[str] = Counter()
    requests = refused = refused_items = 0
    for record in records:
        if record.get("status") == "missing":
            continue
        extra = record.get("extra") or {}
        models = extra.get("served_models") or (
            {extra["served_model"]: 1} if extra.get("served_model") else {}
        )
        served.update(models)
        requests += int(extra.get("requests") or 0)
        refused += int(extra.get("refused") or 0)
        if str(record.get("error") or "").startswith(CONTENT_FILTER_PREFIX):
            refused_items += 1
    protocol = judge_info.get("protocol")
    images: dict[str, Any] = {"edited_resized_to_source": protocol != "imgedit"}
    if backend.get("backend") == "openai":
        images["encoding"] = (
            "raw file bytes, labelled image/png"
            if protocol == "imgedit"
            else f"{backend.get('image_format', 'jpeg')}"
            + (
                " (PIL's default quality)"
                if backend.get("image_format", "jpeg") == "jpeg"
                else " (lossless)"
            )
        )
        images["pre_resize"] = bool(backend.get("pre_resize"))
    return {
        "card": judge_info.get("card") or judge_info.get("name"),
        "name": judge_info.get("name"),
        "protocol": protocol,
        "backend": judge_info.get("backend"),
        "provider": provider(backend.get("base_urls")),
        "model_requested": backend.get("model") or judge_info.get("model"),
        "adapter": judge_info.get("adapter"),
        "models_answered": dict(served.most_common()) or None,
        "layout": backend.get("layout"),
        "sampling": backend.get("sampling"),
        "seed_sent": backend.get("send_seed"),
        "images": images,
        "prompt_template_hash": judge_info.get("prompt_template_hash"),
        "requests": requests or None,
        "content_filter": {
            "refused_requests": refused,
            "share_of_requests": (refused / requests) if requests else None,
            "items_failed": refused_items,
        },
    }


def circular(judge_info: Mapping[str, Any]) -> bool:
    """Whether the judge is an EditScore model (then judging EditScore-trained models is circular)."""
    text = " ".join(str(judge_info.get(k) or "") for k in ("card", "name", "model", "adapter"))
    return "editscore" in text.lower()


CIRCULAR_NOTE = (
    "the judge is an EditScore model: an editing model trained with EditScore as its reward, "
    "judged by the same reward, is graded by what it was optimised for (circular); report a "
    "different judge's numbers (e.g. viescore-gpt-4.1) as the headline"
)


def manifest(*, kind: str, started: str, benchmark: LoadedBenchmark, judges: Mapping[str, Any],
             settings: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:  # fmt: skip
    from ..results import git_revision, now_iso, package_versions

    return {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "erb_version": __version__,
        "git_revision": git_revision(),
        "versions": package_versions(),
        "dataset": benchmark.describe(),
        **dict(judges),
        "run_settings": dict(settings),
        "command": [redact_text(arg) for arg in sys.argv],
        "started": started,
        "finished": now_iso(),
        **dict(extra),
    }


def write_folder(out: Path, *, records: Iterable[Mapping[str, Any]], manifest_data: Mapping[str, Any],
                 metrics: Mapping[str, Any] | None, extra_files: Sequence[str] = ()) -> None:  # fmt: skip
    """Write (replace) erb's files of a model run folder; metrics.json last, only when whole."""
    from ..outputs import RUN, claim_output_dir
    from ..results import write_json

    claim_output_dir(out, RUN, (*MODEL_RUN_FILES, *extra_files))
    (out / METRICS).unlink(missing_ok=True)
    write_records(out / RECORDS, records)
    write_json(out / MANIFEST, manifest_data)
    if metrics is not None:
        write_json(out / METRICS, metrics)


def read_kind(run: Path) -> str | None:
    """The kind a run folder's metrics.json names (None: a judge run, or no metrics)."""
    try:
        data = json.loads((Path(run) / METRICS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    kind = data.get("kind") if isinstance(data, dict) else None
    return kind if kind in RUN_KINDS else None
