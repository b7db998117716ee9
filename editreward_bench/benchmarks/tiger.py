"""``tiger-editreward``: TIGER-Lab's EditReward-Bench (the EditReward paper, arXiv:2509.26346).

Not EditScore's benchmark of the same name. The hub dataset ``TIGER-Lab/EditReward-Bench``
(parquet under ``2pair/``, ``3pair/``, ``4pair/``, split ``train``) holds one *comparison*
per row, inside a group of 2, 3 or 4 edits of one source image:

- ``id``: a 3- or 4-pair group is the id's prefix before ``_`` (TIGER's own rule: the first
  10 characters when there is no ``_``), within its kind; every 2-pair row is its own group;
- ``candidate_1``, ``candidate_2``: the two edits compared; ``comparison_type`` (``AvsC``)
  gives their letters in the group, ``dataset`` the kind (``2pair``/``3pair``/``4pair``);
- ``ranking``: ``A>C``, ``C>A``, ``A=C`` in the group's letters; 2-pair ties may be written
  ``A=B=Good`` or ``A=B=Bad``. A plain ``A=B`` is a tie too (see the note below);
- other columns (``score_1``, ``model_1``, more scores) are carried along and ignored.

Authors' numbers, two sets:

- pointwise judges (reward models), as ``eval_bench.py``'s ``evaluate_edit_reward_bench``
  computes them from a JSON of full rankings per group: erb rebuilds each group's ranking
  from its rows (refusing a group whose rows contradict each other) and reproduces its
  metrics exactly (:func:`eval_bench_metrics`), quirks included: 2-pair and overall
  pairwise accuracy tune a tie threshold on the test set; strict ranking accuracy compares
  ``argsort`` orders, where equal scores rank the later edit first;
- pairwise judges, as ``inference_{2,3,4}pair_hf.py`` count them (:func:`inference_metrics`):
  a comparison is correct when the judge's answer, written like ``ranking``, equals it
  verbatim; a 3/4-pair group is correct when all its 3 / 6 comparisons are.

About ties: TIGER's own parsers read a plain ``A=B`` inconsistently. ``eval_bench.py``
knows only ``A=B=Good``/``A=B=Bad`` as ties (a plain ``A=B`` would read as "A preferred"
for pairwise accuracy and as malformed for ranking accuracy), so erb hands it every 2-pair
tie as ``A=B=Good`` (Good and Bad are treated alike there). ``inference_2pair_hf.py`` answers
``A=B`` for any tie, so only a plain ``A=B`` ranking can ever match a tie answer; its 3/4-pair
parsers never answer a tie, so a judge's tie there is counted as an unparsed answer. A tie
inside a 3/4-pair group is given to ``eval_bench.py`` as a ranking such as ``A>B=C``, which it
reads as B before C (pairwise) and as malformed (ranking). erb's strict view treats every
tie as a tie.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

from ..benchmark import _report
from .base import (
    AuthorsResult,
    BenchmarkAdapter,
    CandidateBook,
    Comparison,
    ImageRefs,
    PreferenceBenchmark,
    Table,
    check_schema,
    finish,
    flip,
    image_struct,
    is_image_type,
    is_string_type,
)
from .synthetic import edit_png, source_png
from .tiecal import accuracy_with_ties_threshold, accuracy_without_ties

KINDS = ("2pair", "3pair", "4pair")
#: eval_bench.py's names of the three parts, in the order it processes them.
PART_NAMES = {"2pair": "2-Pair", "3pair": "3-Pair", "4pair": "4-Pair"}
GROUP_LETTERS = {"2pair": "AB", "3pair": "ABC", "4pair": "ABCD"}
#: Comparisons in a complete group (inference_{3,4}pair_hf.py require all of them).
GROUP_SIZE = {"2pair": 1, "3pair": 3, "4pair": 6}
TWO_PAIR_TIES = ("A=B", "A=B=Good", "A=B=Bad")
#: A 2-pair tie as eval_bench.py reads one.
EVAL_BENCH_TIE = "A=B=Good"


def group_of(row_id: str) -> str:
    """TIGER's group of a 3/4-pair row: the id before ``_``, else its first 10 characters."""
    return row_id.split("_")[0] if "_" in row_id else row_id[:10]


@dataclass(frozen=True)
class TigerGroup:
    """One group of edits of one source image, with its full ranking rebuilt."""

    kind: str
    group: str
    #: Candidate keys in letter order (A, B, C, D).
    keys: tuple[str, ...]
    #: The ranking as eval_bench.py's JSON holds it (``C>A>B``, ``A=B=Good``, ``A>B=C``).
    ranking: str
    instruction: str
    source: str
    #: Indices of the group's comparisons.
    comparisons: tuple[int, ...]


# --------------------------------------------------------------------------- rankings


_RELATION = re.compile(r"^([A-D])\s*([<>=])\s*([A-D])$")


def parse_relation(text: str) -> tuple[str, str, str] | None:
    """``A>C`` -> (A, '>', C); ``C<A`` -> (A, '>', C); ``A=C`` -> (A, '=', C)."""
    match = _RELATION.match(text.strip())
    if match is None:
        return None
    x, rel, y = match.groups()
    if x == y:
        return None
    if rel == "<":
        return y, ">", x
    return x, rel, y


def rebuild_ranking(letters: str, relations: Sequence[tuple[str, str, str]]) -> str | None:
    """The full (weak) ranking the relations imply, e.g. ``C>A>B`` or ``A>B=C``; None when
    they contradict each other or leave the order open. Equal letters are joined by ``=``
    in alphabetical order."""
    parent = {x: x for x in letters}

    def root(x: str) -> str:
        while parent[x] != x:
            x = parent[x]
        return x

    for x, rel, y in relations:
        if rel == "=":
            parent[root(y)] = root(x)
    classes: dict[str, list[str]] = {}
    for x in letters:
        classes.setdefault(root(x), []).append(x)
    above: dict[str, set[str]] = {c: set() for c in classes}
    for x, rel, y in relations:
        if rel != ">":
            continue
        cx, cy = root(x), root(y)
        if cx == cy:
            return None  # x > y and x = y
        above[cy].add(cx)
    order: list[str] = []
    remaining = set(classes)
    while remaining:
        top = [c for c in remaining if not (above[c] & remaining)]
        if len(top) != 1:
            return None  # a cycle (none on top) or an open order (several)
        order.append(top[0])
        remaining.remove(top[0])
    # Every pair must be ordered by the relations' transitive closure: a unique
    # topological order of the classes guarantees it.
    return ">".join("=".join(sorted(classes[c])) for c in order)


def pairwise_gt(ranking: str, i: int, j: int) -> int:
    """eval_bench.py's ``get_pairwise_gt``: 1 when edit i is ranked above edit j, -1 when
    below, 0 for a tie (2-pair tie labels only, or a letter missing from the ranking)."""
    if ranking == "A>B":
        return 1
    if ranking in ("B>A", "A<B"):
        return -1
    if ranking in ("A=B=Good", "A=B=Bad"):
        return 0
    pos_i, pos_j = ranking.find(chr(65 + i)), ranking.find(chr(65 + j))
    if pos_i == -1 or pos_j == -1:
        return 0
    return 1 if pos_i < pos_j else -1


def gt_ranking(ranking: str, n: int) -> str | tuple[int, ...] | None:
    """eval_bench.py's ``get_gt_ranking``: ``"tie"`` for 2-pair ties, the edits' indices
    best first, or None for a ranking it cannot read (any other ``=``)."""
    if ranking in ("A=B=Good", "A=B=Bad"):
        return "tie"
    if ranking == "A>B":
        return (0, 1)
    if ranking in ("B>A", "A<B"):
        return (1, 0)
    if "=" in ranking:
        return None
    letters = ranking.replace(">", "").replace("<", "")
    if len(letters) != n:
        return None
    return tuple(ord(c) - 65 for c in letters)


# --------------------------------------------------------------------------- the authors' metrics


def eval_bench_items(bench: PreferenceBenchmark) -> dict[str, list[dict[str, Any]]]:
    """The benchmark as eval_bench.py's input: per part (``2-Pair``...), one item per group
    with ``prompt``, ``path_src``, ``paths_generated`` (here: candidate keys, in letter
    order) and ``human_vote.ranking``."""
    out: dict[str, list[dict[str, Any]]] = {}
    for g in bench.details["groups"]:
        out.setdefault(PART_NAMES[g.kind], []).append(
            {
                "prompt": g.instruction,
                "path_src": f"source:{g.source}",
                "paths_generated": list(g.keys),
                "human_vote": {"ranking": g.ranking},
            }
        )
    return {name: out[name] for name in PART_NAMES.values() if name in out}


def eval_bench_metrics(
    items: Mapping[str, Sequence[Mapping[str, Any]]], scores: Mapping[str, float | None]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``evaluate_edit_reward_bench``'s summary JSON for these items and per-edit scores.

    Parts are processed in the order 2-Pair, 3-Pair, 4-Pair; a part with no items is left
    out, as upstream leaves out a missing file. A group with an unscored edit (a failed
    candidate) is left out: upstream's reward model never fails. Returns (the summary,
    {"optimal_epsilon_2pair", "groups_left_out"}).
    """
    results: dict[str, Any] = {}
    all_h: list[int] = []
    all_m: list[float] = []
    all_correct = all_total = 0
    left_out = 0
    epsilon_2pair: float | None = None
    for name in PART_NAMES.values():
        if name not in items:
            continue
        h: list[int] = []
        m: list[float] = []
        samples: list[tuple[Any, list[float]]] = []
        for item in items[name]:
            values = [scores.get(p) for p in item["paths_generated"]]
            if any(v is None or math.isnan(v) for v in values):
                left_out += 1
                continue
            got = [float(v) for v in values if v is not None]
            ranking = item["human_vote"]["ranking"]
            samples.append((gt_ranking(ranking, len(got)), got))
            for i, j in combinations(range(len(got)), 2):
                m.append(got[i] - got[j])
                h.append(pairwise_gt(ranking, i, j))
        epsilon = 0.0
        if name == "2-Pair":
            pairwise, epsilon = accuracy_with_ties_threshold(h, m)
            epsilon_2pair = epsilon
        else:
            pairwise = accuracy_without_ties(h, m)  # type: ignore[assignment]
        correct = 0
        for gt, got in samples:
            if gt == "tie":
                correct += abs(got[0] - got[1]) <= epsilon
            elif gt is not None:
                correct += gt == tuple(int(x) for x in np.argsort(got)[::-1])
        results[name] = {
            "pairwise_accuracy": pairwise,
            "strict_ranking_accuracy": correct / len(samples) if samples else 0.0,
            "strict_correct_count": correct,
            "strict_total_samples": len(samples),
            "pair_count": len(h),
        }
        all_h += h
        all_m += m
        all_correct += correct
        all_total += len(samples)
    overall, _ = accuracy_with_ties_threshold(all_h, all_m)
    results["overall"] = {
        "pairwise_accuracy": overall,
        "strict_ranking_accuracy": all_correct / all_total if all_total else 0.0,
        "strict_correct_count": all_correct,
        "strict_total_samples": all_total,
        "total_pair_count": len(all_h),
    }
    return results, {"optimal_epsilon_2pair": epsilon_2pair, "groups_left_out": left_out}


def tiger_answer(comparison: Comparison, verdict: str | None) -> str:
    """A verdict (dataset order) as inference_{2,3,4}pair_hf.py's parser returns an answer:
    ``A>B``/``B>A``/``A=B`` for 2-pair, ``A>C``/``C>A`` for 3/4-pair; ``Unknown`` for a
    failure, and for a tie in a 3/4-pair group (those parsers never return one)."""
    x, y = comparison.names
    if verdict == "first":
        return f"{x}>{y}"
    if verdict == "second":
        return f"{y}>{x}"
    if verdict in ("tie", "tie-good", "tie-bad") and comparison.stratum == "2pair":
        return f"{x}={y}"
    return "Unknown"


def inference_metrics(
    comparisons: Sequence[Comparison], answers: Mapping[int, str]
) -> dict[str, dict[str, Any]]:
    """What inference_{2,3,4}pair_hf.py report, per kind, for ``answers[index]``
    (a :func:`tiger_answer`; comparisons without one are left out, as upstream leaves
    out an example whose model call returned nothing)."""
    out: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        rows = [c for c in comparisons if c.stratum == kind and c.index in answers]
        if not rows:
            continue
        right = {c.index: answers[c.index] == c.raw_label for c in rows}
        correct = sum(right.values())
        if kind == "2pair":
            out[kind] = {
                "total_examples": len(rows),
                "correct_examples": correct,
                "accuracy": correct / len(rows),
            }
            continue
        groups: dict[str, list[bool]] = {}
        for c in rows:
            groups.setdefault(group_of(c.row_id), []).append(right[c.index])
        correct_groups = sum(
            1 for marks in groups.values() if len(marks) == GROUP_SIZE[kind] and all(marks)
        )
        out[kind] = {
            "total_examples": len(rows),
            "correct_examples": correct,
            "individual_accuracy": correct / len(rows),
            "total_groups": len(groups),
            "correct_groups": correct_groups,
            "group_accuracy": correct_groups / len(groups),
        }
    return out


# --------------------------------------------------------------------------- the adapter


class TigerEditReward(BenchmarkAdapter):
    name = "tiger-editreward"
    title = "TIGER EditReward-Bench"
    hub_id = "TIGER-Lab/EditReward-Bench"
    splits = ("train",)
    default_split = "train"
    licence = "see the dataset card (TIGER-Lab/EditReward-Bench)"
    size = "1,524 comparisons: 186 2-pair, 450 3-pair (150 groups), 888 4-pair (148 groups)"
    label_form = "ranking per comparison (A>B, B>A, A=B; A>C...) in groups of 2, 3 or 4 edits"
    authors_metric = (
        "reward models: eval_bench.py (pairwise accuracy, tie threshold tuned on the test "
        "set for 2-pair and overall; strict ranking accuracy per group); pairwise judges: "
        "inference_{2,3,4}pair_hf.py (accuracy; group accuracy for 3/4-pair)"
    )
    candidate_keys = (
        "KIND/GROUP/LETTER: 2pair/ROW/A (ROW: the row's position in the loaded table), "
        "3pair/GROUP/C (GROUP: the id before '_')"
    )
    paper = "Wu et al., EditReward, arXiv:2509.26346"

    def hub_configs(self) -> Sequence[str]:
        return KINDS

    def local_parts(self) -> Sequence[str]:
        return KINDS

    def build(self, data: Table, split: str | None) -> PreferenceBenchmark:
        def refuse(columns: set[str]) -> str | None:
            if "output_images" in columns or "key" in columns:
                return (
                    "this looks like EditScore's EditReward-Bench (columns key, output_images), "
                    "not TIGER-Lab's: evaluate it with --benchmark editreward-bench"
                )
            return None

        def is_id(t: Any) -> bool:
            import pyarrow as pa

            return is_string_type(t) or bool(pa.types.is_integer(t))

        check_schema(
            data,
            self.title,
            {
                "id": (is_id, "a string"),
                "instruction": (is_string_type, "a string"),
                "source_image": (is_image_type, "an Image"),
                "candidate_1": (is_image_type, "an Image"),
                "candidate_2": (is_image_type, "an Image"),
                "ranking": (is_string_type, "a string such as 'A>B'"),
                "dataset": (is_string_type, "a string: 2pair, 3pair or 4pair"),
                "comparison_type": (is_string_type, "a string such as 'AvsC'"),
            },
            optional=("comparison_type",),
            refuse=refuse,
        )
        ids = [str(v) if v is not None else "" for v in data.column("id")]
        instructions = data.column("instruction")
        rankings = data.column("ranking")
        kinds = data.column("dataset")
        n_rows = len(ids)
        types = (
            data.column("comparison_type")
            if "comparison_type" in data.table.column_names
            else [None] * n_rows
        )
        label = data.label
        bad_kind = [f"row {r}: dataset={k!r}" for r, k in enumerate(kinds) if k not in KINDS]
        if bad_kind:
            raise _report(label, f"dataset must be one of {list(KINDS)}", bad_kind)
        bad_instr = [f"row {r}" for r, s in enumerate(instructions) if not isinstance(s, str)]
        if bad_instr:
            raise _report(label, "missing instruction", bad_instr)

        # The two letters and the relation of every row.
        letters: list[tuple[str, str]] = []
        relations: list[tuple[str, str, str]] = []
        bad_type: list[str] = []
        bad_rank: list[str] = []
        for r in range(n_rows):
            kind, ctype, ranking = kinds[r], types[r], rankings[r]
            allowed = GROUP_LETTERS[kind]
            if ctype is None and kind == "2pair":
                ctype = "AvsB"
            match = re.fullmatch(r"([A-D])vs([A-D])", ctype or "")
            if match is None or match[1] == match[2] or not {match[1], match[2]} <= set(allowed):
                bad_type.append(f"row {r} ({kind}): comparison_type={ctype!r}")
                letters.append(("A", "B"))
                relations.append(("A", "=", "B"))
                continue
            x, y = match[1], match[2]
            if kind == "2pair" and (x, y) != ("A", "B"):
                bad_type.append(f"row {r} (2pair): comparison_type={ctype!r}")
            letters.append((x, y))
            text = ranking if isinstance(ranking, str) else ""
            if kind == "2pair" and text.replace(" ", "") in TWO_PAIR_TIES:
                relations.append(("A", "=", "B"))
                continue
            rel = parse_relation(text)
            if rel is None or {rel[0], rel[2]} != {x, y}:
                bad_rank.append(f"row {r} ({kind}, {ctype}): ranking={ranking!r}")
                relations.append((x, "=", y))
                continue
            relations.append(rel)
        if bad_type:
            raise _report(
                label,
                "comparison_type must name two different letters of the group "
                "(2pair: AvsB; 3pair: A-C; 4pair: A-D)",
                bad_type,
            )
        if bad_rank:
            raise _report(
                label,
                "ranking must compare the row's two letters, e.g. 'A>C', 'C>A' or 'A=C' "
                "(2-pair ties may be 'A=B=Good' or 'A=B=Bad')",
                bad_rank,
            )

        refs = ImageRefs(data)
        sources = [refs.ref(r, "source_image") for r in range(n_rows)]
        firsts = [refs.ref(r, "candidate_1") for r in range(n_rows)]
        seconds = [refs.ref(r, "candidate_2") for r in range(n_rows)]
        refs.check()

        # Groups: rows by (kind, group), in first-seen order.
        members: dict[tuple[str, str], list[int]] = {}
        for r in range(n_rows):
            gid = str(r) if kinds[r] == "2pair" else group_of(ids[r])
            members.setdefault((kinds[r], gid), []).append(r)

        book = CandidateBook(data)
        problems: list[str] = []
        group_of_row: dict[int, tuple[str, str]] = {}
        letter_keys: dict[tuple[str, str], dict[str, str]] = {}
        rankings_of: dict[tuple[str, str], str] = {}
        for (kind, gid), rows in members.items():
            where = f"{kind} group {gid!r} (rows {', '.join(map(str, rows[:8]))})"
            if len({instructions[r] for r in rows}) > 1:
                problems.append(f"{where}: different instructions")
                continue
            if len({s.sha for r in rows if (s := sources[r]) is not None}) > 1:
                problems.append(f"{where}: different source images")
                continue
            seen_types: dict[tuple[str, str], int] = {}
            images: dict[str, Any] = {}
            clash = False
            for r in rows:
                pair = (min(letters[r]), max(letters[r]))
                if pair in seen_types:
                    problems.append(
                        f"{where}: {pair[0]}vs{pair[1]} twice (rows {seen_types[pair]} and {r})"
                    )
                    clash = True
                seen_types[pair] = r
                for letter, ref in zip(letters[r], (firsts[r], seconds[r]), strict=True):
                    known = images.get(letter)
                    if known is not None and ref is not None and known.sha != ref.sha:
                        problems.append(f"{where}: letter {letter} is two different images")
                        clash = True
                    images.setdefault(letter, ref)
            if clash:
                continue
            expected = GROUP_LETTERS[kind]
            if set(images) != set(expected):
                problems.append(
                    f"{where}: letters {''.join(sorted(images))}, expected {', '.join(expected)}"
                )
                continue
            if kind == "2pair":
                raw = rankings[rows[0]].replace(" ", "")
                ranking = {"A>B": "A>B", "B<A": "A>B", "B>A": "B>A", "A<B": "B>A"}.get(raw)
                ranking = ranking or (raw if raw in ("A=B=Good", "A=B=Bad") else EVAL_BENCH_TIE)
            else:
                rebuilt = rebuild_ranking(expected, [relations[r] for r in rows])
                if rebuilt is None:
                    shown = "; ".join(f"row {r}: {rankings[r]}" for r in rows)
                    problems.append(
                        f"{where}: the rankings contradict each other or leave the order "
                        f"open ({shown})"
                    )
                    continue
                ranking = rebuilt
            rankings_of[(kind, gid)] = ranking
            source = sources[rows[0]]
            assert source is not None
            keys = {}
            for letter in expected:
                alias = f"{kind}/{gid}/{letter}"
                keys[letter] = book.add(instructions[rows[0]], source, images[letter], alias)
            letter_keys[(kind, gid)] = keys
            for r in rows:
                group_of_row[r] = (kind, gid)
        if problems:
            raise _report(label, "groups that cannot be ranked", problems)

        comparisons: list[Comparison] = []
        for r in range(n_rows):
            kind, gid = group_of_row[r]
            x, y = letters[r]
            winner, relation, _ = relations[r]
            verdict = "tie" if relation == "=" else "first" if winner == x else "second"
            comparisons.append(
                Comparison(
                    index=len(comparisons),
                    row=r,
                    row_id=ids[r],
                    group=f"{kind}/{gid}",
                    stratum=kind,
                    keys=(letter_keys[(kind, gid)][x], letter_keys[(kind, gid)][y]),
                    label=verdict,  # type: ignore[arg-type]
                    raw_label=rankings[r],
                    names=(x, y),
                )
            )
        index_of_row = {c.row: c.index for c in comparisons}
        groups = [
            TigerGroup(
                kind=kind,
                group=gid,
                keys=tuple(letter_keys[(kind, gid)][letter] for letter in GROUP_LETTERS[kind]),
                ranking=rankings_of[(kind, gid)],
                instruction=instructions[rows[0]],
                source=sources[rows[0]].sha,  # type: ignore[union-attr]
                comparisons=tuple(index_of_row[r] for r in rows),
            )
            for (kind, gid), rows in members.items()
        ]
        counts = {k: sum(1 for c in comparisons if c.stratum == k) for k in KINDS}
        return finish(
            self, data, split, comparisons, book, {"groups": groups, "rows_per_kind": counts}
        )

    # -- the authors' numbers --------------------------------------------------------

    def authors_pointwise(
        self, bench: PreferenceBenchmark, scores: Mapping[str, float | None]
    ) -> AuthorsResult:
        metrics, extra = eval_bench_metrics(eval_bench_items(bench), scores)
        notes = [
            "eval_bench.py (evaluate_edit_reward_bench): 2-Pair and overall pairwise_accuracy "
            "choose a tie threshold on the test set itself (optimal_epsilon_2pair); "
            "strict_ranking_accuracy is per group",
            "2-pair ties are given to eval_bench.py as 'A=B=Good' (its only tie form)",
        ]
        if extra["groups_left_out"]:
            notes.append(
                f"{extra['groups_left_out']} group(s) with a failed candidate were left out "
                "(upstream's reward model never fails); erb's strict view counts them wrong"
            )
        return AuthorsResult(
            metrics=metrics,
            headline=(
                "overall strict_ranking_accuracy",
                metrics["overall"]["strict_ranking_accuracy"],
            ),
            derived=extra,
            notes=notes,
        )

    def authors_pairwise(
        self, bench: PreferenceBenchmark, verdicts: Mapping[tuple[int, str], str | None]
    ) -> AuthorsResult:
        answers: dict[int, str] = {}
        swapped = 0
        for c in bench.comparisons:
            if (c.index, "forward") in verdicts:
                answers[c.index] = tiger_answer(c, verdicts[(c.index, "forward")])
            elif (c.index, "reverse") in verdicts:
                swapped += 1
                answers[c.index] = tiger_answer(c, flip(verdicts[(c.index, "reverse")]))
        metrics = inference_metrics(bench.comparisons, answers)
        right = total = 0
        for kind, part in metrics.items():
            right += part["correct_examples"] if kind == "2pair" else part["correct_groups"]
            total += part["total_examples"] if kind == "2pair" else part["total_groups"]
        overall = right / total if total else None
        notes = [
            "inference_{2,3,4}pair_hf.py: an answer is correct when it equals `ranking` "
            "verbatim; a failed verdict counts as an unparsed answer ('Unknown')",
            "overall_group_accuracy pools 2-pair rows and 3/4-pair groups, as the EditReward "
            "README's Overall column does (checked on its Random row: 67/484 = 13.84)",
        ]
        if swapped:
            notes.append(
                f"{swapped} comparison(s) were judged only with the order swapped; their "
                "verdicts were mapped back (upstream always shows candidate_1 first)"
            )
        return AuthorsResult(
            metrics=metrics,
            headline=("overall_group_accuracy", overall),
            derived={"overall_group_accuracy": overall},
            notes=notes,
        )

    # -- the synthetic version --------------------------------------------------------

    def synthetic_dataset(self, split: str | None = None) -> Any:
        import datasets

        rows = synthetic_rows()
        features = datasets.Features(
            {
                "id": datasets.Value("string"),
                "instruction": datasets.Value("string"),
                "source_image": datasets.Image(),
                "candidate_1": datasets.Image(),
                "candidate_2": datasets.Image(),
                "ranking": datasets.Value("string"),
                "comparison_type": datasets.Value("string"),
                "dataset": datasets.Value("string"),
                "score_1": datasets.Value("float64"),
                "score_2": datasets.Value("float64"),
                "model_1": datasets.Value("string"),
                "model_2": datasets.Value("string"),
                "score_1_detail": datasets.Value("string"),
                "score_2_detail": datasets.Value("string"),
            }
        )
        return datasets.Dataset.from_list(
            rows, features=features, info=_synthetic_info(self, features)
        )


def _synthetic_info(adapter: BenchmarkAdapter, features: Any) -> Any:
    import datasets

    from ..benchmark import SYNTHETIC_TAG

    return datasets.DatasetInfo(
        description=f"{SYNTHETIC_TAG} erb's synthetic {adapter.title} in its hub schema.",
        features=features,
    )


#: The synthetic groups: (kind, qualities per letter), and the 2-pair rows' rankings.
_SYNTHETIC_2PAIR = (
    ("A>B", 0.9, 0.3),
    ("B>A", 0.2, 0.8),
    ("A=B", 0.5, 0.5),
    ("A=B=Good", 0.8, 0.7),
    ("A=B=Bad", 0.2, 0.1),
    ("A>B", 0.6, 0.4),
    ("B>A", 0.45, 0.55),
    ("A>B", 0.7, 0.1),
)
#: Group qualities; equal qualities are a human tie.
_SYNTHETIC_GROUPS = (
    ("3pair", (0.9, 0.5, 0.1)),
    ("3pair", (0.2, 0.8, 0.5)),
    ("3pair", (0.7, 0.4, 0.4)),
    ("3pair", (0.3, 0.6, 0.9)),
    ("4pair", (0.9, 0.6, 0.3, 0.1)),
    ("4pair", (0.2, 0.9, 0.4, 0.6)),
    ("4pair", (0.5, 0.3, 0.8, 0.1)),
)


def synthetic_rows() -> list[dict[str, Any]]:
    """The rows of erb's synthetic TIGER EditReward-Bench (hub schema, deterministic).

    2-pair ids repeat once (rows 3 and 4 share ``2p-003``), and one 3-pair group holds
    a human tie, as the real data may.
    """
    rows: list[dict[str, Any]] = []
    for i, (ranking, qa, qb) in enumerate(_SYNTHETIC_2PAIR):
        scene = f"tiger-2pair-{i}"
        rid = f"2p-{min(i, 3) if i == 4 else i:03d}"
        rows.append(
            _row(rid, scene, "2pair", "AvsB", ranking, ("A", qa), ("B", qb), f"Brighten {i}.")
        )
    for g, (kind, qualities) in enumerate(_SYNTHETIC_GROUPS):
        scene = f"tiger-{kind}-{g}"
        letters = GROUP_LETTERS[kind]
        for j, (x, y) in enumerate(combinations(range(len(letters)), 2)):
            qx, qy = qualities[x], qualities[y]
            lx, ly = letters[x], letters[y]
            ranking = f"{lx}={ly}" if qx == qy else (f"{lx}>{ly}" if qx > qy else f"{ly}>{lx}")
            rows.append(
                _row(
                    f"{kind[0]}p{g:03d}_{j}",
                    scene,
                    kind,
                    f"{lx}vs{ly}",
                    ranking,
                    (lx, qx),
                    (ly, qy),
                    f"Paint the square ({kind} {g}).",
                )
            )
    return rows


def _row(
    rid: str,
    scene: str,
    kind: str,
    ctype: str,
    ranking: str,
    first: tuple[str, float],
    second: tuple[str, float],
    instruction: str,
) -> dict[str, Any]:
    return {
        "id": rid,
        "instruction": instruction,
        "source_image": image_struct(source_png(scene)),
        "candidate_1": image_struct(edit_png(scene, first[1], f"{scene}/{first[0]}")),
        "candidate_2": image_struct(edit_png(scene, second[1], f"{scene}/{second[0]}")),
        "ranking": ranking,
        "comparison_type": ctype,
        "dataset": kind,
        "score_1": round(first[1] * 10, 2),
        "score_2": round(second[1] * 10, 2),
        "model_1": f"model-{first[0]}",
        "model_2": f"model-{second[0]}",
        "score_1_detail": "{}",
        "score_2_detail": "{}",
    }


__all__ = [
    "KINDS",
    "TigerEditReward",
    "TigerGroup",
    "eval_bench_items",
    "eval_bench_metrics",
    "gt_ranking",
    "inference_metrics",
    "pairwise_gt",
    "rebuild_ranking",
    "synthetic_rows",
    "tiger_answer",
]
