"""How long does `erb leaderboard` take on 50 run folders? (target: under 2 s)

Makes one real run on the bundled benchmark (the example predictions), then 50
run folders from it with perturbed scores (every fifth with k = 4 passes), each
with its metrics recomputed so that every one verifies; then times the whole
`erb leaderboard RUNS... --out FILE` command, interpreter start included, a few
times (wall clock, and the command's CPU time, which a busy machine
inflates less). Prints the figure and writes JSON (default benchmarks/results/leaderboard.json).

    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 python benchmarks/bench_leaderboard.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# `erb` itself, with the report commands registered even where cli.py does not yet do it.
ERB = (
    "import sys\n"
    "from editreward_bench.cli import app\n"
    "if 'leaderboard' not in {c.name for c in app.registered_commands}:\n"
    "    from editreward_bench.cli.reports import register\n"
    "    register(app)\n"
    "sys.argv[0] = 'erb'\n"
    "app()\n"
)


def erb(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-c", ERB, *args], capture_output=True, text=True, env=env, check=False
    )


def make_runs(root: Path, n_runs: int, seed: int) -> list[Path]:
    """One real run, then ``n_runs`` perturbed copies whose metrics recompute exactly."""
    import pyarrow.parquet as pq

    from editreward_bench.benchmark import load_benchmark
    from editreward_bench.results import build_manifest, compute_metrics, now_iso, write_run
    from editreward_bench.taxonomy import SUBSCORES

    base = root / "base"
    done = erb(
        "evaluate", "--predictions", str(REPO / "data" / "mini_predictions.jsonl"),
        "--dataset", "mini", "--out", str(base), "--bootstrap", "200",
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"erb evaluate failed:\n{done.stdout}\n{done.stderr}")
    bench = load_benchmark("mini")
    records = pq.read_table(base / "records.parquet").to_pylist()
    rng = random.Random(seed)
    runs = []
    for i in range(n_runs):
        k = 4 if i % 5 == 4 else 1
        noise = 0.5 + 3.0 * i / n_runs
        new_records = []
        for rec in records:
            for p in range(k):
                new = dict(rec, **{"pass": p, "seed": 42 + p})
                for name in SUBSCORES:
                    if new.get(name) is not None:
                        new[name] = min(10.0, max(0.0, float(new[name]) + rng.gauss(0.0, noise)))
                new_records.append(new)
        judge = {"name": f"bench-judge-{i:02d}", "kind": "predictions", "description": "perturbed"}
        metrics, outcomes, _ = compute_metrics(
            bench, new_records, judge=judge, k=k, n_bootstrap=200
        )
        out = root / "runs" / f"judge-{i:02d}"
        manifest = build_manifest(bench, started=now_iso(), judge=judge)
        write_run(out, metrics=metrics, records=new_records, outcomes=outcomes, manifest=manifest)
        runs.append(out)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="run folders to build (50)")
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions (3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "leaderboard.json"
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

    with tempfile.TemporaryDirectory(prefix="erb-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        runs = make_runs(root, args.runs, args.seed)
        setup_s = time.perf_counter() - t0
        page = root / "leaderboard.html"
        seconds, cpu = [], []
        for _ in range(args.repeat):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            done = erb("leaderboard", *map(str, runs), "--out", str(page))
            seconds.append(time.perf_counter() - t)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            if done.returncode != 0:
                raise SystemExit(f"erb leaderboard failed:\n{done.stdout}\n{done.stderr}")
        html = page.read_text(encoding="utf-8")
        size = page.stat().st_size
        verified = html.count('data-col="status" data-v="2"')

    result = {
        "benchmark": "erb leaderboard on run folders of the bundled benchmark (mini, 153 rows)",
        "runs": args.runs,
        "repeat": args.repeat,
        "seconds": [round(s, 3) for s in seconds],
        "median_s": round(statistics.median(seconds), 3),
        "min_s": round(min(seconds), 3),
        "cpu_seconds": [round(s, 3) for s in cpu],
        "median_cpu_s": round(statistics.median(cpu), 3),
        "target_s": 2.0,
        "meets_target": statistics.median(seconds) < 2.0,
        "html_bytes": size,
        "rows_verified": verified,
        "setup_s": round(setup_s, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU(s)",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"erb leaderboard, {args.runs} runs: median {result['median_s']} s "
        f"(min {result['min_s']} s; CPU {result['median_cpu_s']} s; target < 2 s), "
        f"page {size / 1024:.0f} KiB, "
        f"{verified} rows verified; wrote {args.out}"
    )


if __name__ == "__main__":
    main()
