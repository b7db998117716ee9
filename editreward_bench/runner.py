"""Running a judge over a benchmark: what is missing, in what order, with what concurrency.

The runner deduplicates candidates, looks up every (candidate, pass) already in
the pass store, claims the rest (so two runs on one store never judge the same
pass), hands the judge batches with bounded concurrency, and stores each pass
the moment it returns. Metrics for every k' <= k come from the same records.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .benchmark import HUB_ID, Benchmark
from .failures import FailureWatch, StopRule, reason, top_reasons
from .judges import (
    CardError,
    Judge,
    JudgeLoadError,
    JudgeTask,
    PassResult,
    UnknownJudgeError,
    load_judge,
)
from .judges.options import answer_settings
from .metrics import PassScores
from .outputs import OutputError, check_name, check_run_dir
from .published import paper_row
from .redact import redact_url
from .results import (
    MANIFEST,
    METRICS,
    RECORDS,
    RunSummary,
    build_manifest,
    compute_metrics,
    now_iso,
    start_run_folder,
    write_json,
    write_records,
    write_run,
)
from .store import PassStore, StoreError, candidate_fingerprint, default_store_path


class RunError(RuntimeError):
    """The run could not start or finish; the message says why and what to do."""


#: Fewest passes' tasks claimed at once (more with a high concurrency).
CLAIM_CHUNK = 16


class _Stop(Exception):
    """Raised from a result callback to end judging early; carries why."""


class RunInterrupted(RuntimeError):
    """Ctrl-C: everything finished is in the store; rerun the same command to continue."""

    def __init__(self, done: int, total: int, store: Path) -> None:
        super().__init__(
            f"interrupted: {done} of {total} pass(es) judged in this run are kept in {store}; rerun the same command to continue"
        )


@dataclass
class RunOptions:
    k: int | None = None
    seed: int = 42
    concurrency: int = 8
    store: Path | None = None
    fresh: bool = False
    retry_failed: bool = False
    model: str | None = None
    adapter: str | None = None
    backend: str | None = None
    base_urls: list[str] = field(default_factory=list)
    api_key_env: str | None = None
    batch_size: int | None = None
    max_retries: int | None = None
    n_bootstrap: int = 1000
    progress: bool = True
    #: Other judge settings by name (dtype, timeout, temperature, layout...; ``erb settings``).
    backend_options: dict[str, Any] = field(default_factory=dict)
    #: When a failing run gives up instead of going on.
    stop: StopRule = field(default_factory=StopRule)
    #: Endpoints of a server erb started for this run (``--serve``): the judge's own
    #: server, so unlike ``base_urls`` they do not mark the judge as another one.
    served_urls: list[str] = field(default_factory=list)
    #: The engine erb started (engine, command, served name), for the manifest.
    engine: dict[str, Any] | None = None

    def judge_overrides(self) -> dict[str, Any]:
        """Settings the user gave: each must be one the judge has."""
        overrides: dict[str, Any] = {
            "base_urls": self.base_urls or None,
            "api_key_env": self.api_key_env,
            "batch_size": self.batch_size,
            "max_retries": self.max_retries,
            **self.backend_options,
        }
        return {k: v for k, v in overrides.items() if v is not None}


def open_judge(name: str, options: RunOptions) -> Judge:
    try:
        return load_judge(
            name,
            model=options.model,
            adapter=options.adapter,
            backend=options.backend,
            # The run's concurrency also bounds a backend's own requests in flight, where it has one.
            optional={
                "concurrency": options.concurrency,
                **({"base_urls": options.served_urls} if options.served_urls else {}),
            },
            **options.judge_overrides(),
        )
    except (UnknownJudgeError, CardError, JudgeLoadError) as exc:
        raise RunError(str(exc.args[0] if exc.args else exc)) from exc


def plan_tasks(
    bench: Benchmark, k: int, seed: int, have: set[tuple[str, int]], cand_fps: dict[str, str]
) -> list[JudgeTask]:
    """One task per candidate with passes still missing, ordered so shared prompts run together."""
    tasks = []
    for key, candidate in bench.candidates.items():
        passes = tuple(p for p in range(k) if (cand_fps[key], p) not in have)
        if passes:
            tasks.append(JudgeTask(candidate, passes, tuple(seed + p for p in passes)))
    # Same instruction -> same SC prompt text: adjacent requests share a prefix (vLLM prefix cache).
    tasks.sort(key=lambda t: (t.candidate.instruction, t.candidate.key))
    return tasks


def _restrict(
    tasks: Sequence[JudgeTask], keep: set[tuple[str, int]], cand_fps: dict[str, str]
) -> list[JudgeTask]:
    """The same tasks with only the (candidate fingerprint, pass) items in ``keep``."""
    out = []
    for task in tasks:
        fp = cand_fps[task.candidate.key]
        pairs = [(p, s) for p, s in zip(task.passes, task.seeds, strict=True) if (fp, p) in keep]
        if pairs:
            out.append(
                JudgeTask(task.candidate, tuple(p for p, _ in pairs), tuple(s for _, s in pairs))
            )
    return out


def _checked(result: PassResult) -> PassResult:
    """A judge's result, validated; a malformed one becomes a failure, not a crash."""
    try:
        return result.check()
    except (TypeError, ValueError) as exc:
        return PassResult.failure(
            result.key, result.pass_index, result.seed, f"invalid judge result: {exc}"
        )


async def execute(
    judge: Judge,
    tasks: Iterable[JudgeTask],
    *,
    concurrency: int,
    on_result: Callable[[PassResult], None],
) -> None:
    """Run tasks through the judge in batches, at most ``concurrency`` batches at once.

    A fixed set of workers pulls batches in order from ``tasks`` (any iterable: the
    runner's claims it lazily, chunk by chunk), so memory stays bounded by the
    concurrency, not by the number of tasks.
    """
    size = max(1, int(getattr(judge, "batch_size", 1)))
    source = iter(tasks)
    batches = iter(lambda: list(itertools.islice(source, size)), [])

    async def run(batch: list[JudgeTask]) -> None:
        expected = {
            (t.candidate.key, p): (t, s)
            for t in batch
            for p, s in zip(t.passes, t.seeds, strict=True)
        }
        try:
            results = await judge.ajudge(batch)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a judge bug fails its batch, not the run
            results = [
                PassResult.failure(
                    key, p, s, f"judge raised {type(exc).__name__}: {exc}", transient=True
                )
                for (key, p), (_, s) in expected.items()
            ]
        malformed = 0
        for result in results:
            if not isinstance(result, PassResult):
                malformed += 1
                continue
            if expected.pop((result.key, result.pass_index), None) is not None:
                on_result(_checked(result))
        why = f" ({malformed} malformed result(s))" if malformed else ""
        for (key, p), (_, s) in expected.items():
            on_result(
                PassResult.failure(
                    key, p, s, f"judge returned no result for this pass{why}", transient=True
                )
            )

    async def worker() -> None:
        for batch in batches:  # one shared generator: each batch goes to one worker
            await run(batch)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _execute_then_close(
    judge: Judge,
    tasks: Iterable[JudgeTask],
    *,
    concurrency: int,
    on_result: Callable[[PassResult], None],
) -> None:
    """:func:`execute`, then the judge's loop-bound clients closed inside the same loop."""
    try:
        await execute(judge, tasks, concurrency=concurrency, on_result=on_result)
    finally:
        await judge.aclose()


def run_evaluation(
    bench: Benchmark,
    judge_name: str,
    options: RunOptions,
    *,
    out: Path | None = None,
    name: str | None = None,
    overwrite: bool = False,
) -> RunSummary:
    """Judge every missing pass, then write the run folder. Raises RunError / RunInterrupted.

    The run folder is checked before any judging: a folder holding another run is
    replaced only with ``overwrite`` (the same run again is resumed without it).
    """
    started = now_iso()
    judge = open_judge(judge_name, options)
    try:
        return _run(bench, judge, options, out, name, started, overwrite)
    finally:
        judge.close()


def _run(
    bench: Benchmark,
    judge: Judge,
    options: RunOptions,
    out: Path | None,
    name: str | None,
    started: str,
    overwrite: bool = False,
) -> RunSummary:
    card = getattr(judge, "card", None)
    k = options.k or (card.default_k if card is not None else 1)
    try:
        judge.preflight()
    except Exception as exc:
        raise RunError(str(exc)) from exc
    judge_fp = judge.fingerprint()
    settings = {"kind": "judge", "judge": judge_fp, "dataset": bench.fingerprint, "k": k}
    try:  # before any judging: a run that cannot be saved must not start
        run_name = name or default_run_name(judge.name, k)
        run_dir = out or Path("reports") / "runs" / check_name(run_name, "run name")
        check_run_dir(run_dir, {**settings, "seed": options.seed}, overwrite=overwrite)
    except OutputError as exc:
        raise RunError(str(exc)) from exc
    store_path = options.store or default_store_path()
    try:
        store = PassStore(store_path)
    except StoreError as exc:
        raise RunError(str(exc)) from exc
    with store:
        store.register_judge(judge_fp, judge.describe_for_fingerprint())
        legacy = getattr(judge, "legacy_fingerprints", None)
        adopted = store.adopt(
            judge_fp,
            legacy() if callable(legacy) else [],
            getattr(judge, "upgrade_record", None),
        )
        cand_fps = {key: candidate_fingerprint(c) for key, c in bench.candidates.items()}
        have = (
            set()
            if options.fresh
            else store.have(
                judge_fp, cand_fps.values(), options.seed, include_failed=not options.retry_failed
            )
        )
        tasks = plan_tasks(bench, k, options.seed, have, cand_fps)
        t0 = time.monotonic()
        progress = judge_tasks(judge, judge_fp, tasks, store, cand_fps, options)
        stopped = progress.stopped
        judging_seconds = time.monotonic() - t0

        try:
            start_run_folder(run_dir)
        except OutputError as exc:
            raise RunError(f"{exc} (the judged passes are kept in {store_path})") from exc
        # Records stream from the store to records.parquet; only what the metrics
        # need stays in memory, so a run of any size fits.
        tally = _Tally()
        write_records(
            run_dir / RECORDS,
            tally.watch(
                _iter_records(bench, k, store, judge_fp, options.seed, cand_fps, progress.transient)
            ),
        )
    judge_info = {**judge.describe(), "fingerprint": judge_fp}
    usage = _usage(tally, judge, options, store_path, k, progress.judged, judging_seconds)
    if stopped is None and tally.ok == 0:
        stopped = f"no pass succeeded ({len(tally.compact)} failed)"
    if stopped is not None:
        _write_stopped(run_dir, bench, started, judge_info, usage, stopped, tally, progress)
    metrics, outcomes, warnings = compute_metrics(
        bench, tally.compact, judge=judge_info, k=k, n_bootstrap=options.n_bootstrap
    )
    if adopted:
        warnings.append(
            f"{adopted} pass(es) stored by an earlier erb were moved to this judge's new store key"
        )
    if tally.failed:
        warnings.append(
            f"{sum(tally.failed.values())} of {len(tally.compact)} pass(es) failed; top reasons: "
            + "; ".join(top_reasons(tally.failed))
            + " (records.parquet has each one)"
        )
    manifest = build_manifest(bench, started=started, judge=judge_info, extra=usage)
    write_run(run_dir, metrics=metrics, records=None, outcomes=outcomes, manifest=manifest)
    reference = (
        paper_row(card.paper_judge if card is not None else None, k)
        if bench.source.lower() == HUB_ID.lower()
        else None
    )
    notes = [_reuse_note(judge, judge_fp, usage, store_path)]
    return RunSummary(run_dir, metrics, warnings, reference, notes)


def default_run_name(judge_name: str, k: int) -> str:
    """The judge's name as a folder name, with what replaced the card's model, adapter or
    endpoint: ``editscore-72b+model=Qwen--Qwen2.5-VL-7B-Instruct-k4``. The card's own name is
    kept as it is, so a name that would leave the runs folder is refused, not rewritten."""
    base, bracket, rest = judge_name.partition(" [")
    name = base
    if bracket:
        extra = re.sub(r"https?://", "", rest.rstrip("]").replace(", ", "+")).replace("/", "--")
        name += "+" + (re.sub(r"[^A-Za-z0-9._+=-]+", "-", extra).strip("-.") or "override")
    return name if k == 1 else f"{name}-k{k}"


def _reuse_note(judge: Judge, judge_fp: str, usage: dict[str, Any], store_path: Path) -> str:
    """'612 of 612 passes reused from the store ...', with the settings they were judged with."""
    total, reused = usage["passes_total"], usage["passes_reused"]
    config = getattr(judge, "config", None)
    shown = ""
    if config is not None:
        settings = answer_settings(config)
        shown = ", settings " + ", ".join(f"{k}={v}" for k, v in sorted(settings.items()))
    return (
        f"{reused} of {total} passes reused from the store {store_path} "
        f"(judge key {judge_fp[:19]}...{shown}); {usage['passes_judged_now']} judged now"
    )


def _write_stopped(
    run_dir: Path,
    bench: Benchmark,
    started: str,
    judge_info: dict[str, Any],
    usage: dict[str, Any],
    why: str,
    tally: _Tally,
    progress: _Progress,
) -> None:
    """Keep what was done (records, a manifest saying why it stopped), then fail the run.

    No metrics.json: its presence marks a finished run, and a table of zeros is no result.
    """
    reasons = top_reasons(progress.watch.reasons or tally.failed)
    manifest = build_manifest(
        bench, started=started, judge=judge_info,
        extra={**usage, "status": "stopped", "stopped_because": why, "top_failures": reasons},
    )  # fmt: skip
    (run_dir / METRICS).unlink(missing_ok=True)  # a stale result must not outlive its records
    write_json(run_dir / MANIFEST, manifest)
    raise RunError(
        f"the run stopped: {why}. Top reasons: " + "; ".join(reasons)
        + f". Every finished pass is in the store; records and manifest are in {run_dir}"
    )  # fmt: skip


@dataclass
class _Progress:
    """What this run judged: a count, and the failures that were not stored (network, timeouts)."""

    judged: int = 0
    transient: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    watch: FailureWatch = field(default_factory=lambda: FailureWatch(StopRule()))
    #: Why judging stopped early (:class:`~editreward_bench.failures.StopRule`), or None.
    stopped: str | None = None


def judge_tasks(
    judge: Judge,
    judge_fp: str,
    tasks: list[JudgeTask],
    store: PassStore,
    cand_fps: dict[str, str],
    options: RunOptions,
) -> _Progress:
    """Judge ``tasks`` into ``store``: claims in chunks, bounded concurrency, the stop rules.

    Every run of pointwise judges goes through here, whatever the benchmark. Ctrl-C raises
    :class:`RunInterrupted` with every finished pass kept; a stop leaves ``stopped`` set.
    """
    progress = _Progress(watch=FailureWatch(options.stop))
    todo = sum(len(t.passes) for t in tasks)
    try:
        _judge_all(judge, judge_fp, tasks, store, cand_fps, options, progress, todo)
    except KeyboardInterrupt:
        store.release(judge_fp)
        raise RunInterrupted(progress.judged, todo, store.path) from None
    except _Stop as why:
        store.release(judge_fp)
        progress.stopped = str(why)
    return progress


def stopped_message(why: str, reasons: Counter[str], where: str) -> str:
    """The one line a run that gave up prints: why, the top reasons, where its work is."""
    return (
        f"the run stopped: {why}. Top reasons: " + "; ".join(top_reasons(reasons))
        + f". Every finished pass is in the store {where}"
    )  # fmt: skip


@dataclass
class _Tally:
    """Watches records on their way to disk: the fields the metrics need, tokens, failures."""

    compact: list[PassScores] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ok: int = 0
    failed: Counter[str] = field(default_factory=Counter)

    def watch(self, records: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for rec in records:
            self.compact.append(PassScores.of(rec))
            self.prompt_tokens += int(rec.get("prompt_tokens") or 0)
            self.completion_tokens += int(rec.get("completion_tokens") or 0)
            if rec["status"] == "failed":
                self.failed[reason(rec.get("error"))] += 1
            else:
                self.ok += 1
            yield rec


def _iter_records(
    bench: Benchmark,
    k: int,
    store: PassStore,
    judge_fp: str,
    seed: int,
    cand_fps: dict[str, str],
    transient: dict[tuple[str, int], dict[str, Any]],
    chunk: int = 512,
) -> Iterator[dict[str, Any]]:
    """Every pass < k of every candidate, in benchmark order: this run's unstored failures
    first, else what the store holds (this run's answers and earlier runs')."""
    keys = list(bench.candidates)
    for start in range(0, len(keys), chunk):
        part = keys[start : start + chunk]
        stored = store.get(judge_fp, [cand_fps[key] for key in part], seed)
        for key in part:
            for p in range(k):
                record = transient.get((key, p)) or stored.get((cand_fps[key], p))
                if record is not None:
                    yield record


def _judge_all(
    judge: Judge,
    judge_fp: str,
    tasks: list[JudgeTask],
    store: PassStore,
    cand_fps: dict[str, str],
    options: RunOptions,
    progress_state: _Progress,
    todo: int,
) -> None:
    if not tasks:
        return
    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
        disable=not options.progress, transient=False,
    )  # fmt: skip
    start = time.monotonic()
    with progress:
        bar = progress.add_task(f"judging with {escape(judge.name)}", total=todo, rate="")

        def on_result(result: PassResult) -> None:
            record = result.to_record()
            if result.transient:  # may succeed next time: kept for this run's results only
                progress_state.transient[(result.key, result.pass_index)] = record
            else:
                store.put(judge_fp, cand_fps[result.key], record)
            progress_state.judged += 1
            why = progress_state.watch.see(result.status, result.error)
            if why is not None:
                raise _Stop(why)
            elapsed = max(time.monotonic() - start, 1e-9)
            progress.update(bar, advance=1, rate=f"{progress_state.judged / elapsed:.1f} passes/s")

        # Passes are claimed a chunk at a time, as the workers need them: two runs on one
        # store then share the work instead of the first claiming all of it.
        chunk = max(CLAIM_CHUNK, 2 * options.concurrency * max(1, judge.batch_size))

        def claimed(todo: list[JudgeTask], theirs: set[tuple[str, int]]) -> Iterator[JudgeTask]:
            for start in range(0, len(todo), chunk):
                part = todo[start : start + chunk]
                items = [(cand_fps[t.candidate.key], p) for t in part for p in t.passes]
                won = store.claim(judge_fp, items, options.seed, skip_stored=not options.fresh)
                theirs.update(set(items) - won)
                yield from _restrict(part, won, cand_fps)

        pending = tasks
        while pending:
            theirs: set[tuple[str, int]] = set()
            asyncio.run(
                _execute_then_close(
                    judge,
                    claimed(pending, theirs),
                    concurrency=options.concurrency,
                    on_result=on_result,
                )
            )
            if not theirs:
                break
            # Another live run holds these passes: take its answers, or take over when it dies.
            time.sleep(0.5)
            done = store.have(judge_fp, {fp for fp, _ in theirs}, options.seed) & theirs
            progress.update(bar, advance=len(done))
            pending = _restrict(pending, theirs - done, cand_fps)
    store.release(judge_fp)


def _usage(
    tally: _Tally,
    judge: Judge,
    options: RunOptions,
    store_path: Path,
    k: int,
    judged_now: int,
    seconds: float,
) -> dict[str, Any]:
    prompt, completion = tally.prompt_tokens, tally.completion_tokens
    usage: dict[str, Any] = {
        "k": k,
        "seed": options.seed,
        "store": str(store_path),
        "passes_total": len(tally.compact),
        "passes_judged_now": judged_now,
        "passes_reused": len(tally.compact) - judged_now,
        "judging_seconds": round(seconds, 3),
        "tokens": {"prompt": prompt, "completion": completion},
        "base_urls": [redact_url(u) for u in options.base_urls or options.served_urls],
    }
    if options.engine is not None:
        usage["engine"] = options.engine
    config = getattr(judge, "config", None)
    common = getattr(config, "common", None)
    overridden = set(getattr(config, "overridden", ()))
    if "model" in getattr(getattr(config, "card", None), "replaced", {}) and not (
        {"price_input_per_mtok", "price_output_per_mtok"} & overridden
    ):
        common = None  # the card's prices are another model's
    price_in, price_out = (
        getattr(common, "price_input_per_mtok", None),
        getattr(common, "price_output_per_mtok", None),
    )
    if price_in is not None and price_out is not None:
        usage["cost_usd"] = round(
            prompt / 1e6 * float(price_in) + completion / 1e6 * float(price_out), 6
        )
    return usage
