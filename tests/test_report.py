"""Leaderboard, single-run report and `erb verify` on run folders of the bundled benchmark."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from conftest import REPO, make_row, png
from typer.testing import CliRunner

from editreward_bench.cli import app as erb_app
from editreward_bench.cli.reports import register
from editreward_bench.published import read_published
from editreward_bench.report.html import render_leaderboard
from editreward_bench.report.runs import (
    MixedDatasetsError,
    check_same_dataset,
    latest_per_judge,
    load_run,
    load_runs,
    read_run_data,
)
from editreward_bench.report.samples import pick_rows
from editreward_bench.report.significance import (
    RowResults,
    mcnemar_exact,
    paired_tests,
    row_results,
)
from editreward_bench.report.tables import (
    escape_latex,
    escape_markdown,
    measured_rows,
    render_table,
)
from editreward_bench.report.verify import COMPARED_FIELDS, recompute
from editreward_bench.results import build_manifest, compute_metrics, now_iso, write_run
from editreward_bench.taxonomy import BLOCKS, DIMENSIONS, OVERALL_BLOCK, SUBTASKS

runner = CliRunner()
PREDICTIONS = REPO / "data" / "mini_predictions.jsonl"
HOSTILE = "<script>alert(1)</script></td>"


def report_app() -> typer.Typer:
    """The report commands on their own app (cli.py registers them on `erb`)."""
    app = typer.Typer()
    register(app)
    return app


def erb(*args: str) -> Any:
    return runner.invoke(report_app(), list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three real runs on mini: the example predictions, image-diff and random with k = 4."""
    root = tmp_path_factory.mktemp("runs")
    store = str(root / "store.sqlite")
    common = ["--dataset", "mini", "--bootstrap", "200"]
    commands = {
        "preds": ["--predictions", str(PREDICTIONS)],
        "image-diff": ["--judge", "image-diff", "--store", store],
        "random-k4": ["--judge", "random", "--k", "4", "--store", store],
    }
    out = {}
    for name, args in commands.items():
        result = runner.invoke(
            erb_app, ["evaluate", *args, *common, "--out", str(root / name)], catch_exceptions=False
        )
        assert result.exit_code == 0, result.output
        out[name] = root / name
    return out


def copy_run(src: Path, dst: Path, edit: Callable[[dict[str, Any]], None] | None = None) -> Path:
    shutil.copytree(src, dst)
    if edit is not None:
        path = dst / "metrics.json"
        metrics = json.loads(path.read_text())
        edit(metrics)
        path.write_text(json.dumps(metrics))
    return dst


def measured_labels(page: str) -> list[str]:
    body = page.split('<tbody id="measured">', 1)[1].split("</tbody>", 1)[0]
    return re.findall(r'<th scope="row" data-col="judge" data-v="([^"]*)"', body)


# --------------------------------------------------------------------------- aggregation


def test_latest_run_per_judge_and_k_is_kept(runs: dict[str, Path], tmp_path: Path) -> None:
    def at(time: str, name: str = "mini_predictions") -> Callable[[dict[str, Any]], None]:
        def edit(m: dict[str, Any]) -> None:
            m["created"], m["judge"]["name"] = time, name

        return edit

    old = copy_run(runs["preds"], tmp_path / "old", at("2025-01-01T00:00:00+00:00"))
    new = copy_run(runs["preds"], tmp_path / "new", at("2025-03-01T00:00:00+02:00"))
    other = copy_run(runs["preds"], tmp_path / "other", at("2024-01-01T00:00:00+00:00", "x"))
    loaded = load_runs([old, new, other, runs["random-k4"]])
    kept, dropped = latest_per_judge(loaded)
    assert [r.path for r in kept] == [new, other, runs["random-k4"]]
    assert [(d.path, k.path) for d, k in dropped] == [(old, new)]

    page_path = tmp_path / "lb.html"
    result = erb("leaderboard", str(old), str(new), str(other), "--out", str(page_path))
    assert result.exit_code == 0, result.output
    assert "kept the latest run" in result.output
    assert sorted(measured_labels(page_path.read_text())) == ["mini_predictions", "x"]

    result = erb("leaderboard", str(old), str(new), "--all-runs", "--out", str(page_path))
    assert result.exit_code == 0, result.output
    assert sorted(measured_labels(page_path.read_text())) == [
        "mini_predictions [new]",
        "mini_predictions [old]",
    ]


def test_runs_on_different_datasets_are_refused_unless_allowed(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    def other_dataset(m: dict[str, Any]) -> None:
        m["dataset"]["fingerprint"] = "sha256:" + "0" * 64
        m["judge"]["name"] = "elsewhere"

    other = copy_run(runs["preds"], tmp_path / "other", other_dataset)
    with pytest.raises(MixedDatasetsError, match="2 different datasets"):
        check_same_dataset(load_runs([runs["preds"], other]))
    assert len(check_same_dataset(load_runs([runs["preds"], other]), allow_mixed=True)) == 2

    page_path = tmp_path / "lb.html"
    result = erb("leaderboard", str(runs["preds"]), str(other), "--out", str(page_path))
    assert result.exit_code == 2
    assert "different datasets" in result.output and "--allow-mixed" in result.output
    assert not page_path.exists()

    result = erb(
        "leaderboard", str(runs["preds"]), str(other), "--allow-mixed", "--out", str(page_path)
    )
    assert result.exit_code == 0, result.output
    page = page_path.read_text()
    assert "2 different datasets" in page
    assert sorted(measured_labels(page)) == ["elsewhere", "mini_predictions"]


def test_default_runs_folder_and_missing_folders(
    runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = erb("leaderboard")
    assert result.exit_code == 2 and "reports/runs does not exist" in result.output
    copy_run(runs["preds"], tmp_path / "reports" / "runs" / "preds")
    result = erb("leaderboard", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("judge,k,overall_PF")
    result = erb("leaderboard")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "reports" / "leaderboard.html").is_file()
    assert erb("leaderboard", str(tmp_path / "nope")).exit_code == 2


def test_published_reference_rows() -> None:
    rows = read_published()
    assert len(rows) == 16
    gpt41 = next(r for r in rows if r.judge == "GPT-4.1")
    assert gpt41.k == 1 and gpt41.accuracy[OVERALL_BLOCK]["prompt_following"] == 0.673
    assert all(set(r.accuracy) == set(BLOCKS) for r in rows)


# --------------------------------------------------------------------------- verify


def test_verify_accepts_a_good_run(runs: dict[str, Path]) -> None:
    for name in ("preds", "random-k4"):
        result = erb("verify", str(runs[name]))
        assert result.exit_code == 0, result.output
        assert "verified" in result.output
        assert "ci95 (200 resamples, seed 0)" in result.output


def test_verify_names_a_tampered_accuracy_cell(runs: dict[str, Path], tmp_path: Path) -> None:
    def tamper(m: dict[str, Any]) -> None:
        m["accuracy"]["groups"]["scene"]["overall"] += 0.25

    run = copy_run(runs["preds"], tmp_path / "tampered", tamper)
    result = erb("verify", str(run))
    assert result.exit_code == 1, result.output
    assert "MISMATCH  accuracy.groups.scene.overall" in result.output
    # One cell, not the others.
    assert result.output.count("MISMATCH") == 1


def test_verify_checks_outcomes_fingerprint_and_availability(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    run = copy_run(runs["preds"], tmp_path / "outcomes")
    table = pq.read_table(run / "outcomes.parquet")
    flipped = [
        "wrong" if o == "correct" else "correct" for o in table.column("outcome").to_pylist()[:1]
    ]
    outcomes = table.column("outcome").to_pylist()
    table = table.set_column(
        table.column_names.index("outcome"), "outcome", pa.array(flipped + outcomes[1:])
    )
    pq.write_table(table, run / "outcomes.parquet")
    result = erb("verify", str(run))
    assert result.exit_code == 1
    assert "outcomes.parquet outcome: 1 row(s) differ, e.g. row 0" in result.output

    def other_fp(m: dict[str, Any]) -> None:
        m["dataset"]["fingerprint"] = "sha256:" + "1" * 64

    result = erb("verify", str(copy_run(runs["preds"], tmp_path / "fp", other_fp)))
    assert result.exit_code == 1 and "dataset.fingerprint" in result.output

    def failures(m: dict[str, Any]) -> None:
        m["failures"] = 3

    result = erb("verify", str(copy_run(runs["preds"], tmp_path / "fail", failures)))
    assert result.exit_code == 1 and "failures: recorded 3, recomputed 0" in result.output

    def gone(m: dict[str, Any]) -> None:
        m["dataset"]["source"] = str(tmp_path / "no-such-dataset")

    moved = copy_run(runs["preds"], tmp_path / "moved", gone)
    result = erb("verify", str(moved))
    assert result.exit_code == 2 and "cannot verify" in result.output
    assert erb("verify", str(moved), "--dataset", "mini").exit_code == 0
    assert erb("verify", str(tmp_path / "not-a-run")).exit_code == 2


def test_fast_recomputation_equals_compute_metrics(runs: dict[str, Path], mini: Any) -> None:
    for name in ("preds", "random-k4"):
        run = load_run(runs[name])
        records = read_run_data(run).records
        assert records is not None
        slow, slow_outcomes, _ = compute_metrics(
            mini, records, judge=run.judge, k=run.k, n_bootstrap=0
        )
        fast, fast_outcomes = recompute(mini, records, run.k)
        assert {f: fast[f] for f in COMPARED_FIELDS} == {f: slow[f] for f in COMPARED_FIELDS}
        assert fast_outcomes == slow_outcomes
    # Failed candidates and a missing pass count the same way in both.
    some = [r for r in records if not (r["key"].endswith("/A") and r["pass"] == 3)]
    some[0] = {**some[0], "status": "failed"}
    slow, _, _ = compute_metrics(mini, some, judge={}, k=4, n_bootstrap=0)
    fast, _ = recompute(mini, some, 4)
    assert fast["partial"] > 0
    assert {f: fast[f] for f in COMPARED_FIELDS} == {f: slow[f] for f in COMPARED_FIELDS}


# --------------------------------------------------------------------------- significance


def test_mcnemar_exact_matches_scipy() -> None:
    from scipy.stats import binomtest

    for a, b in [(0, 0), (3, 0), (2, 7), (10, 10), (40, 61), (700, 820)]:
        expected = 1.0 if a + b == 0 else binomtest(a, a + b, 0.5).pvalue
        assert mcnemar_exact(a, b) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_paired_tests_on_real_runs(runs: dict[str, Path]) -> None:
    loaded = load_runs([runs["image-diff"], runs["random-k4"], runs["image-diff"]])
    results = []
    for i, run in enumerate(loaded):
        data = read_run_data(run)
        assert data.outcomes is not None
        res = row_results(f"r{i}", run.fingerprint, data.outcomes)
        assert res is not None
        results.append(res)
    tests, notes = paired_tests(results, n_resamples=500)
    assert notes == [] and len(tests) == 3
    by_pair = {(t.a, t.b): t for t in tests}
    diff_acc = {
        d: loaded[0].metrics["accuracy"][OVERALL_BLOCK][d]
        - loaded[1].metrics["accuracy"][OVERALL_BLOCK][d]
        for d in DIMENSIONS
    }
    for d in DIMENSIONS:
        t = by_pair[("r0", "r1")].tests[d]
        assert t.diff == pytest.approx(diff_acc[d], abs=1e-12)
        assert t.ci is not None and t.ci[0] <= t.diff <= t.ci[1]
        assert t.p_bootstrap is not None and 0 < t.p_bootstrap <= 1
        same = by_pair[("r0", "r2")].tests[d]  # a run against itself
        assert (same.diff, same.p_bootstrap, same.p_mcnemar) == (0.0, 1.0, 1.0)
        assert same.only_a == same.only_b == 0
    # image-diff is far better than chance on mini's overall PF.
    assert by_pair[("r0", "r1")].tests["prompt_following"].p_bootstrap < 0.05


def naive_paired_bootstrap(
    a: RowResults, b: RowResults, dimension: str, n_resamples: int, seed: int
) -> tuple[float, tuple[float, float], float]:
    """The paired bootstrap written out row by row: (difference, 95% interval, p)."""
    import numpy as np

    clusters = {c: i for i, c in enumerate(sorted(set(a.source_id)))}
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(len(clusters), np.full(len(clusters), 1 / len(clusters)), n_resamples)

    def macro(res: RowResults, weights: Any) -> float:
        cells: dict[str, list[float]] = {}
        for sub, dim, src, ok in zip(
            res.subtask, res.dimension, res.source_id, res.correct, strict=True
        ):
            if dim == dimension:
                c = cells.setdefault(sub, [0.0, 0.0])
                c[0] += weights[clusters[src]] * ok
                c[1] += weights[clusters[src]]
        accs = [right / total for right, total in cells.values() if total > 0]
        return sum(accs) / len(accs)

    ones = np.ones(len(clusters))
    observed = macro(a, ones) - macro(b, ones)
    diffs = np.array([macro(a, w) - macro(b, w) for w in draws])
    low, high = np.percentile(diffs, [2.5, 97.5])
    extreme = np.sum(np.abs(diffs - observed) >= abs(observed) - 1e-12)
    return observed, (float(low), float(high)), float((1 + extreme) / (1 + n_resamples))


def test_paired_bootstrap_matches_the_row_by_row_definition(runs: dict[str, Path]) -> None:
    loaded = load_runs([runs["preds"], runs["random-k4"]])
    results = []
    for i, run in enumerate(loaded):
        outcomes = read_run_data(run).outcomes
        assert outcomes is not None
        res = row_results(f"r{i}", run.fingerprint, outcomes)
        assert res is not None
        results.append(res)
    (test,), _ = paired_tests(results, n_resamples=300, seed=7)
    for d in DIMENSIONS:
        diff, ci, p = naive_paired_bootstrap(results[0], results[1], d, 300, 7)
        got = test.tests[d]
        assert got.diff == pytest.approx(diff, abs=1e-12)
        assert got.ci == pytest.approx(ci, abs=1e-12)
        assert got.p_bootstrap == pytest.approx(p, abs=1e-12)
        only_a = sum(
            x and not y and dim == d
            for x, y, dim in zip(
                results[0].correct, results[1].correct, results[0].dimension, strict=True
            )
        )
        assert got.only_a == only_a


def test_pick_rows_spreads_over_cells() -> None:
    rows = [{"index": i, "subtask": SUBTASKS[i % 2], "dimension": "overall"} for i in range(100)]
    picked = pick_rows(rows, 10)
    assert len(picked) == 10
    assert sorted(r["subtask"] for r in picked) == [SUBTASKS[0]] * 5 + [SUBTASKS[1]] * 5
    assert pick_rows(rows[:3], 50) == rows[:3]


# --------------------------------------------------------------------------- escaping


@pytest.fixture
def hostile_run(tmp_path: Path) -> Path:
    """A run whose instruction, judge name, description and reasoning are hostile HTML."""
    from conftest import write_parquet

    from editreward_bench.benchmark import load_benchmark

    rows = [
        make_row(
            (f"k{i}/A", f"k{i}/B"),
            subtask=SUBTASKS[i % len(SUBTASKS)],
            dimension=DIMENSIONS[i % 3],
            instruction=f"Add {HOSTILE} number {i}",
            source=png((i * 9 % 255, 40, 90)),
            edited=(png((200, i * 7 % 255, 0)), png((0, 90, i * 5 % 255))),
        )
        for i in range(12)
    ]
    bench = load_benchmark(write_parquet(tmp_path / "hostile.parquet", rows))
    records = []
    for i, pair in enumerate(bench.pairs):
        for slot, key in enumerate(pair.keys):
            score = 5.0 + (1 if (slot == 0) == (i % 3 == 0) else -1)  # mostly wrong
            records.append(
                {
                    "key": key, "pass": 0, "seed": 42, "status": "ok",
                    "prompt_following": score, "consistency": score, "overall": score,
                    "reasoning_sc": f"I think {HOSTILE}", "reasoning_pq": HOSTILE,
                }
            )  # fmt: skip
    judge = {
        "name": f"evil_|*{HOSTILE}",
        "kind": "predictions",
        "description": f"card {HOSTILE} & co",
    }
    metrics, outcomes, _ = compute_metrics(bench, records, judge=judge, k=1, n_bootstrap=50)
    out = tmp_path / "hostile-run"
    manifest = build_manifest(bench, started=now_iso(), judge=judge)
    write_run(out, metrics=metrics, records=records, outcomes=outcomes, manifest=manifest)
    return out


def test_hostile_strings_are_escaped_in_the_page(hostile_run: Path, tmp_path: Path) -> None:
    page_path = tmp_path / "lb.html"
    result = erb("leaderboard", str(hostile_run), "--out", str(page_path))
    assert result.exit_code == 0, result.output
    page = page_path.read_text()
    assert "<script>alert" not in page.lower()
    assert page.count("<script") == 1  # the page's own inline script only
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;/td&gt;" in page
    assert "Add &lt;script&gt;alert(1)" in page  # the instruction
    assert "card &lt;script&gt;" in page and "&amp; co" in page  # the description
    assert "I think &lt;script&gt;" in page  # the reasoning
    assert 'class="thumb th-' in page  # thumbnails of the hostile dataset's images
    assert "✓ verified" in page

    report = erb("report", str(hostile_run))
    assert report.exit_code == 0, report.output
    single = (hostile_run / "report.html").read_text()
    assert "<script>alert" not in single.lower() and single.count("<script") == 1


def test_hostile_names_are_escaped_in_markdown_latex_and_csv(hostile_run: Path) -> None:
    rows = measured_rows(load_runs([hostile_run]))
    md = render_table(rows, "md")
    assert "<script" not in md and "&lt;script&gt;" in md
    data_line = md.splitlines()[2]
    assert data_line.startswith("| evil\\_\\|\\*&lt;script&gt;alert(1)&lt;/script&gt;&lt;/td&gt; |")
    assert (
        len(re.findall(r"(?<!\\)\|", data_line)) == 2 + 15 + 2
    )  # judge, k, 15 values, verified: no stray column
    latex = render_table(rows, "latex")
    assert "<" not in latex and re.search(r"(?<!\\)_", latex.split("\\midrule")[1]) is None
    assert "evil\\_\\textbar{}*\\textless{}script\\textgreater{}alert(1)" in latex
    parsed = list(csv.reader(io.StringIO(render_table(rows, "csv"))))
    assert parsed[1][0] == f"evil_|*{HOSTILE}" and len(parsed[1]) == 18
    assert escape_markdown("a\nb [x](y) `c`") == "a b \\[x\\](y) \\`c\\`"
    assert escape_latex("50% of $5 & #1 ~^\\") == (
        "50\\% of \\$5 \\& \\#1 \\textasciitilde{}\\textasciicircum{}\\textbackslash{}"
    )


# --------------------------------------------------------------------------- pages


def test_page_contents_and_self_containment(runs: dict[str, Path], tmp_path: Path) -> None:
    page = render_leaderboard(load_runs(list(runs.values())), reference=read_published())
    assert sorted(measured_labels(page)) == ["image-diff", "mini_predictions", "random"]
    assert page.count('class="ref" data-reference="1"') == 16
    assert "reported in the paper" in page
    assert page.count("✓ verified</span>") == 3 * 2  # main table and provenance
    assert page.count('<table class="heatmap"') == 3
    assert "Overall PF vs k" in page  # the Avg@k curves of random (k=4)
    assert page.count('<tr data-a="') == 3  # every pair of the 3 runs
    assert page.count('<article class="sample"') > 10
    assert "data:image/jpeg;base64," in page
    # Nothing is fetched: no external scripts, styles, images or fonts.
    assert re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page) is None
    assert "<link" not in page and "@import" not in page and "url(http" not in page
    assert re.search(r"<script[^>]*\ssrc=", page) is None


def test_a_page_without_the_dataset_still_builds(runs: dict[str, Path], tmp_path: Path) -> None:
    def gone(m: dict[str, Any]) -> None:
        m["dataset"]["source"] = str(tmp_path / "no-such-dataset")

    moved = copy_run(runs["preds"], tmp_path / "moved", gone)
    page_path = tmp_path / "lb.html"
    result = erb("leaderboard", str(moved), "--out", str(page_path))
    assert result.exit_code == 0, result.output
    page = page_path.read_text()
    assert "the dataset is not available" in page and "no thumbnails" in page
    assert "not verified" in page and "data:image/jpeg" not in page
    assert page.count('<article class="sample"') > 0


# --------------------------------------------------------------------------- browser

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
    "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
)  # fmt: skip


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


class MainTable(HTMLParser):
    """The measured rows (judge label, Overall O) and the table's sort state, from a DOM dump."""

    def __init__(self) -> None:
        super().__init__()
        self.sorted_by: str | None = None
        self.rows: list[dict[str, str]] = []
        self.reference_rows = 0
        self._tbody: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and a.get("id") == "main-table":
            self.sorted_by = a.get("data-sorted-by")
        elif tag == "tbody":
            self._tbody = a.get("id")
        elif tag == "tr" and self._tbody == "measured":
            self.rows.append({})
        elif tag == "tr" and self._tbody == "reference" and a.get("data-reference"):
            self.reference_rows += 1
        elif tag in ("th", "td") and self._tbody == "measured" and a.get("data-col"):
            self.rows[-1][str(a["data-col"])] = a.get("data-v") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._tbody = None


def test_leaderboard_in_headless_chromium(runs: dict[str, Path], tmp_path: Path) -> None:
    exe = find_chromium()
    if exe is None:
        pytest.skip("no Chromium found (install the Debian package `chromium`)")
    page_path = tmp_path / "leaderboard.html"
    result = erb("leaderboard", *map(str, runs.values()), "--out", str(page_path))
    assert result.exit_code == 0, result.output
    url = page_path.resolve().as_uri()

    def chromium(*args: str) -> subprocess.CompletedProcess[str]:
        profile = tempfile.mkdtemp(dir=tmp_path, prefix="profile-")
        return subprocess.run(
            [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    def table(fragment: str) -> MainTable:
        done = chromium("--dump-dom", url + fragment)
        assert done.returncode == 0, done.stderr[-2000:]
        parsed = MainTable()
        parsed.feed(done.stdout)
        return parsed

    initial = table("")
    judges = [row["judge"] for row in initial.rows]
    assert sorted(judges) == ["image-diff", "mini_predictions", "random"]
    assert initial.reference_rows == 16
    assert initial.sorted_by == ""  # no fragment, no sorting

    by_name = table("#sort=judge:desc")
    assert by_name.sorted_by == "judge:desc"  # the inline script ran
    assert [row["judge"] for row in by_name.rows] == ["random", "mini_predictions", "image-diff"]
    assert [row["judge"] for row in by_name.rows] != judges  # sorting reordered the rows
    assert by_name.reference_rows == 16  # the paper's rows stay apart

    by_o = table("#sort=overall-O:asc")
    values = [float(row["overall-O"]) for row in by_o.rows]
    assert values == sorted(values) and by_o.rows[0]["judge"] == "random"

    shot = tmp_path / "shot.png"
    done = chromium("--window-size=1280,1600", f"--screenshot={shot}", url)
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    from PIL import Image

    with Image.open(shot) as img:
        rgb = img.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 20) or []
        white = sum(n for n, c in colours if c == (255, 255, 255))
        assert len(colours) > 200, f"only {len(colours)} colours: a blank page?"
        assert white < 0.9 * rgb.width * rgb.height


def test_a_run_whose_metrics_do_not_follow_is_never_ranked_or_best(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    def inflate(m: dict[str, Any]) -> None:  # claims to beat every other run
        for block in [m["accuracy"]["overall"], *m["accuracy"]["groups"].values()]:
            for dim in block:
                block[dim] = 0.99

    forged = copy_run(runs["image-diff"], tmp_path / "forged", inflate)
    chosen = [str(runs["preds"]), str(runs["random-k4"]), str(forged)]
    md = erb("leaderboard", *chosen, "--format", "md").output
    rows = [line for line in md.splitlines() if line.startswith("| ") and "Judge" not in line]
    assert rows[-1].startswith("| image-diff") and rows[-1].rstrip(" |").endswith("mismatch")
    assert "**0.990**" not in md and "0.990" in md  # shown, never bold
    assert all(row.rstrip(" |").endswith("verified") for row in rows[:-1])
    csv_text = erb("leaderboard", *chosen, "--format", "csv").output
    assert csv_text.splitlines()[0].endswith(",verification")
    assert csv_text.splitlines()[-1].endswith(",mismatch")
    latex = erb("leaderboard", *chosen, "--format", "latex").output
    assert "image-diff$^\\dagger$" in latex and "\\textbf{0.990}" not in latex
    page_path = tmp_path / "board.html"
    assert erb("leaderboard", *chosen, "--out", str(page_path)).exit_code == 0
    page = page_path.read_text()
    assert measured_labels(page)[-1] == "image-diff"
    body = page.split('<tbody id="measured">', 1)[1].split("</tbody>", 1)[0]
    forged_row = body.split('data-v="image-diff"', 1)[1].split("</tr>", 1)[0]
    assert "best" not in forged_row.split('data-col="status"')[0]


BANNER_LAYOUT = """(() => {
  const banner = document.getElementById('reference-banner');
  const box = banner.getBoundingClientRect();
  const style = getComputedStyle(banner);
  return {left: box.left, right: box.right, height: box.height, viewport: window.innerWidth,
          font: parseFloat(style.fontSize), text: banner.innerText,
          badges: document.querySelectorAll('#measured .badge.synthetic').length};
})()"""


def test_synthetic_runs_are_labelled_and_the_paper_banner_stays_readable_at_1280px(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    exe = find_chromium()
    if exe is None:
        pytest.skip("no Chromium found (install the Debian package `chromium`)")
    from cdp import evaluate_page

    page_path = tmp_path / "leaderboard.html"
    assert erb("leaderboard", *map(str, runs.values()), "--out", str(page_path)).exit_code == 0
    page = page_path.read_text()
    assert page.count('class="badge synthetic"') >= 1 + len(runs)  # the dataset line, each row
    layout = evaluate_page(
        exe, CHROMIUM_FLAGS, tempfile.mkdtemp(dir=tmp_path), page_path.resolve().as_uri(),
        BANNER_LAYOUT, width=1280,
    )  # fmt: skip
    assert "Not comparable" in layout["text"] and "synthetic data made by erb" in layout["text"]
    assert layout["badges"] == len(runs)
    # The whole banner is inside the 1280 px window (it wraps instead of running off the side).
    assert layout["left"] >= 0 and layout["right"] <= layout["viewport"] == 1280, layout
    assert layout["font"] >= 12 and layout["height"] < 200, layout
