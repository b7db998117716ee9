"""Print what Step1X-Edit's own GEdit-Bench code computes on the parity case (the snapshot).

Run from the repository root, with a copy of Step1X-Edit (commit 570eba6, Apache-2.0)::

    python tests/snapshots/make_gedit_parity.py /path/to/Step1X-Edit > tests/snapshots/gedit_parity.json

It builds the case of ``tests/gedit_parity_case.py`` (a GEdit-schema dataset and a model's
outputs in Step1X-Edit's layout), starts the scripted judge server, and runs upstream's
code on it unchanged: ``GEdit-Bench/test_gedit_score.py``'s ``process_single_item`` (which
opens the images, calls ``viescore.VIEScore("gpt4o", "tie").evaluate`` and retries the item
on any exception) for every item whose two files exist, as its main loop does, writes the
per-group CSVs with the same ``csv.DictWriter`` fields, and calls
``GEdit-Bench/calculate_statistics.py``'s ``analyze_scores``. Only the machinery around
the judge is replaced: the API key file, the request URL (the local server instead of
api.openai.com), ``megfile`` (plain files), ``time.sleep`` (no waiting between retries),
and ``random.randint`` in viescore's parser, which is watched: an item whose returned
scores include a guess is marked ``invented`` and kept out of the CSVs, as erb records it
as failed. Items run one at a time in dataset order (upstream: five threads, results in
completion order), which is the order erb averages in. Upstream's main loop reads the
dataset with ``load_dataset``, which returns a ``DatasetDict``; the items here are its rows.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import sys
import tempfile
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent.parent)]

import gedit_parity_case as case  # noqa: E402
from scripted_vlm import ScriptedVLM  # noqa: E402

FIELDS = ["source_image", "edited_image", "instruction", "sementics_score", "quality_score",
          "intersection_exist", "instruction_language"]  # fmt: skip


def main(step1x: Path) -> dict[str, object]:
    bench_dir = step1x / "GEdit-Bench"
    megfile = types.ModuleType("megfile")
    megfile.smart_open = open  # type: ignore[attr-defined]
    megfile.smart_exists = os.path.exists  # type: ignore[attr-defined]
    sys.modules["megfile"] = megfile
    sys.path[:0] = [str(bench_dir / "viescore"), str(bench_dir)]
    os.chdir(bench_dir)  # viescore's __init__ puts the relative folder 'viescore' on sys.path
    import calculate_statistics
    import test_gedit_score
    import utils as viescore_utils  # viescore/utils.py, as viescore imports it
    from viescore import VIEScore

    guessed: list[int] = []
    real_randint = viescore_utils.random.randint

    def watched_randint(a: int, b: int) -> int:
        guessed.append(1)
        return real_randint(a, b)

    viescore_utils.random.randint = watched_randint
    test_gedit_score.time.sleep = lambda seconds: None

    work = Path(tempfile.mkdtemp(prefix="gedit-parity-"))
    results = case.write_outputs(work / "results")
    data = case.dataset()
    key_file = work / "secret.env"
    key_file.write_text("sk-local-test\n")
    items: dict[str, dict[str, object]] = {}
    with ScriptedVLM(case.identify, case.script) as server:
        vie_score = VIEScore(backbone="gpt4o", task="tie", key_path=str(key_file))
        vie_score.model.url = f"{server.url}/chat/completions"
        scores: list[list[float]] = []
        evaluate = vie_score.evaluate

        def recorded(*args: object, **kwargs: object) -> object:
            result = evaluate(*args, **kwargs)
            scores.append(result)
            return result

        vie_score.evaluate = recorded  # type: ignore[method-assign]
        test_gedit_score.save_path = str(results)
        save_path_new = work / "eval_results_new"
        save_path_new.mkdir()
        for group_name in test_gedit_score.GROUPS:
            test_gedit_score.group_name = group_name
            rows = []
            for item in data:
                if item["task_type"] != group_name:
                    continue
                folder = results / "fullset" / group_name / item["instruction_language"]
                if (
                    not (folder / f"{item['key']}.png").exists()
                    or not (folder / f"{item['key']}_SRCIMG.png").exists()
                ):
                    items[item["key"]] = {"status": "missing"}
                    continue
                guessed.clear()
                scores.clear()
                result = test_gedit_score.process_single_item(item, vie_score)
                sc, pq, o = scores[-1]
                if guessed:
                    items[item["key"]] = {"status": "invented"}
                    continue
                items[item["key"]] = {"status": "ok", "semantics": sc, "quality": pq, "overall": o}
                rows.append(result)
            with open(
                save_path_new / f"{case.MODEL}_{group_name}_gpt_score.csv", "w", newline=""
            ) as f:
                writer = csv.DictWriter(f, fieldnames=FIELDS)
                writer.writeheader()
                for row in rows:
                    writer.writerow(row)
        requests = {f"{item}/{kind}": n for (item, kind), n in sorted(server.counts.items())}
    sem, qual, over, sem_i, qual_i, over_i = calculate_statistics.analyze_scores(
        str(save_path_new), [case.MODEL], language="en"
    )
    model = case.MODEL

    def number(value: object) -> float | None:
        value = float(value)  # type: ignore[arg-type]
        return None if math.isnan(value) else value

    def block(s: dict, q: dict, o: dict, avg: tuple[str, str, str]) -> dict[str, object]:
        return {
            "groups": {g: {"semantics": number(s[model][g]), "quality": number(q[model][g]),
                           "overall": number(o[model][g])} for g in test_gedit_score.GROUPS},
            "headline": {"semantics": number(s[model][avg[0]]), "quality": number(q[model][avg[1]]),
                         "overall": number(o[model][avg[2]])},
        }  # fmt: skip

    averages = ("avg_semantics", "avg_quality", "avg_overall")
    snapshot = {
        "about": "Step1X-Edit 570eba6 GEdit-Bench (viescore, test_gedit_score.process_single_item, "
        "calculate_statistics.analyze_scores) on tests/gedit_parity_case.py; "
        "made by tests/snapshots/make_gedit_parity.py",
        "items": items,
        "requests": requests,
        "full": block(sem, qual, over, averages),
        "intersection": block(sem_i, qual_i, over_i, averages),
    }
    return snapshot


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/snapshots/make_gedit_parity.py /path/to/Step1X-Edit")
    out = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):  # upstream prints as it goes
        snapshot = main(Path(sys.argv[1]).resolve())
    json.dump(snapshot, out, indent=1, sort_keys=True)
    out.write("\n")
