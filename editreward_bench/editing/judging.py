"""Running a judge over an editing model's outputs, through the pass store.

The same machinery as ``erb evaluate``: each (output, pass) is looked up in the store
first, the missing ones are claimed (two runs on one store never judge the same pass),
judged with bounded concurrency by :func:`editreward_bench.runner.execute`, and stored
the moment they return. A pass is keyed by the judge's fingerprint and the output's
(:meth:`EditItem.fingerprint`: key, instruction, both images' bytes, ImgEdit's rubric),
so a second selector k, a larger N, or the same outputs judged again for another report
judge only what is new. Transient failures (network, timeouts) are not stored.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..failures import FailureWatch, reason
from ..judges import Judge, JudgeTask, PassResult
from ..runner import CLAIM_CHUNK, RunInterrupted, RunOptions, _restrict, execute
from ..store import PassStore
from .items import EditItem


class StopJudging(Exception):
    """The stop rule fired: most passes fail for one persistent reason."""


@dataclass
class Judged:
    """What a judge said about a set of outputs (this run's and earlier runs' passes)."""

    judge_fp: str
    #: ``{(candidate key, pass): record}`` for every pass < k that has one.
    records: dict[tuple[str, int], dict[str, Any]]
    judged_now: int = 0
    passes_total: int = 0
    seconds: float = 0.0
    stopped: str | None = None
    failed: Counter[str] = field(default_factory=Counter)

    @property
    def reused(self) -> int:
        return self.passes_total - self.judged_now


def judge_items(
    judge: Judge, items: Sequence[EditItem], *, k: int, options: RunOptions, store: PassStore,
    label: str = "judging",
) -> Judged:  # fmt: skip
    """Every pass < k of every item, judged now or read from the store."""
    judge_fp = judge.fingerprint()
    store.register_judge(judge_fp, judge.describe_for_fingerprint())
    fps = {item.key: item.fingerprint() for item in items}
    have = (
        set()
        if options.fresh
        else store.have(
            judge_fp, fps.values(), options.seed, include_failed=not options.retry_failed
        )
    )
    tasks = []
    for item in items:
        passes = tuple(p for p in range(k) if (fps[item.key], p) not in have)
        if passes:
            tasks.append(JudgeTask(item, passes, tuple(options.seed + p for p in passes)))
    todo = sum(len(t.passes) for t in tasks)
    watch = FailureWatch(options.stop)
    transient: dict[tuple[str, int], dict[str, Any]] = {}
    judged = Judged(judge_fp, {}, passes_total=len(items) * k)
    started = time.monotonic()
    try:
        _run(judge, judge_fp, tasks, store, fps, options, watch, transient, judged, label, todo)
    except KeyboardInterrupt:
        store.release(judge_fp)
        raise RunInterrupted(judged.judged_now, todo, store.path) from None
    except StopJudging as why:
        store.release(judge_fp)
        judged.stopped = str(why)
    judged.seconds = time.monotonic() - started
    stored = store.get(judge_fp, fps.values(), options.seed)
    by_fp = {fp: key for key, fp in fps.items()}
    for (fp, p), record in stored.items():
        if p < k and fp in by_fp:
            judged.records[(by_fp[fp], p)] = record
    judged.records.update({kp: r for kp, r in transient.items() if kp[1] < k})
    for record in judged.records.values():
        if record.get("status") != "ok":
            judged.failed[reason(record.get("error"))] += 1
    return judged


def _run(judge: Judge, judge_fp: str, tasks: list[JudgeTask], store: PassStore, fps: dict[str, str],
         options: RunOptions, watch: FailureWatch, transient: dict[tuple[str, int], dict[str, Any]],
         judged: Judged, label: str, todo: int) -> None:  # fmt: skip
    if not tasks:
        return
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), disable=not options.progress, transient=False)  # fmt: skip
    with progress:
        bar = progress.add_task(f"{escape(label)}: {escape(judge.name)}", total=todo)

        def on_result(result: PassResult) -> None:
            record = result.to_record()
            if result.transient:
                transient[(result.key, result.pass_index)] = record
            else:
                store.put(judge_fp, fps[result.key], record)
            judged.judged_now += 1
            why = watch.see(result.status, result.error)
            if why is not None:
                raise StopJudging(why)
            progress.update(bar, advance=1)

        chunk = max(CLAIM_CHUNK, 2 * options.concurrency * max(1, judge.batch_size))

        def claimed(
            todo_tasks: list[JudgeTask], theirs: set[tuple[str, int]]
        ) -> Iterator[JudgeTask]:
            for start in range(0, len(todo_tasks), chunk):
                part = todo_tasks[start : start + chunk]
                wanted = [(fps[t.candidate.key], p) for t in part for p in t.passes]
                won = store.claim(judge_fp, wanted, options.seed, skip_stored=not options.fresh)
                theirs.update(set(wanted) - won)
                yield from _restrict(part, won, fps)

        pending = tasks
        while pending:
            theirs: set[tuple[str, int]] = set()
            asyncio.run(execute(judge, claimed(pending, theirs), concurrency=options.concurrency,
                                on_result=on_result))  # fmt: skip
            if not theirs:
                break
            time.sleep(0.5)  # another live run holds these passes: wait for its answers
            done = store.have(judge_fp, {fp for fp, _ in theirs}, options.seed) & theirs
            progress.update(bar, advance=len(done))
            pending = _restrict(pending, theirs - done, fps)
    store.release(judge_fp)
