"""The fixed-cost figures: start-up, predictions on the full benchmark, bootstrap, memory scaling.

    python benchmarks/bench_suite.py                      # 3,072 rows at 1024 px
    python benchmarks/bench_suite.py --scale 12288         # also measure memory growth to 12,288 rows

Prints a table and writes JSON (default benchmarks/results/suite.json).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_openai import ENV, REPO, measure, run_erb, synth_dataset  # noqa: E402


def startup(args: list[str], repeats: int = 5) -> float:
    """Median wall time of `erb ARGS` (the console script's import path)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "editreward_bench.cli", *args],
            env=ENV,
            check=True,
            capture_output=True,
        )
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def predictions_run(dataset: Path, work: Path) -> dict[str, Any]:
    """Score a predictions file covering every candidate of the dataset."""
    sys.path.insert(0, str(REPO))
    from editreward_bench.benchmark import load_benchmark

    bench = load_benchmark(dataset)
    path = work / "preds.jsonl"
    with path.open("w") as fh:
        for i, key in enumerate(bench.candidates):
            v = (i * 7919) % 101 / 10
            fh.write(
                json.dumps(
                    {"key": key, "prompt_following": v, "consistency": 10 - v, "overall": v / 2}
                )
                + "\n"
            )
    result = run_erb(
        [
            "evaluate",
            "--predictions",
            str(path),
            "--dataset",
            str(dataset),
            "--out",
            str(work / "preds-run"),
        ]
    )
    return {"candidates": len(bench.candidates), **{k: round(v, 3) for k, v in result.items()}}


def bootstrap_time(dataset: Path, resamples: int = 1000) -> float:
    from editreward_bench.benchmark import load_benchmark
    from editreward_bench.metrics import bootstrap_ci, compare_pairs

    bench = load_benchmark(dataset)
    scores = {
        key: {
            "prompt_following": (i % 11) / 1.0,
            "consistency": (i % 7) / 1.0,
            "overall": (i % 5) / 1.0,
        }
        for i, key in enumerate(bench.candidates)
    }
    outcomes = compare_pairs(bench.pairs, scores)
    start = time.perf_counter()
    bootstrap_ci(outcomes, n_resamples=resamples, seed=0)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3072)
    parser.add_argument("--image-size", type=int, default=1024)
    parser.add_argument(
        "--scale", type=int, default=None, help="A larger row count for the memory-growth check."
    )
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "suite.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="erb-suite-"))
    dataset = synth_dataset(args.rows, args.image_size)
    figures: dict[str, Any] = {
        "startup_help_s": round(startup(["--help"]), 3),
        "startup_leaderboard_help_s": round(startup(["leaderboard", "--help"]), 3),
        "predictions_full": predictions_run(dataset, work),
        "bootstrap_1000_s": round(bootstrap_time(dataset), 3),
    }
    memory = {args.rows: measure(dataset, 4, args.latency, 64, True, work)}
    if args.scale:
        big = synth_dataset(args.scale, args.image_size)
        memory[args.scale] = measure(big, 4, args.latency, 64, True, work)
    figures["memory"] = {
        str(rows): {
            "peak_rss_mb": r["peak_rss_mb"],
            "judging_s": r["judging_s"],
            "warm_rerun_s": r["warm_rerun_s"],
        }
        for rows, r in memory.items()
    }
    if args.scale:
        small, large = memory[args.rows]["peak_rss_mb"], memory[args.scale]["peak_rss_mb"]
        figures["memory_growth"] = round(large / small - 1, 3)

    print(f"\nerb fixed costs: {args.rows} rows at {args.image_size}px")
    print(f"  erb --help                       {figures['startup_help_s']:.3f} s")
    print(f"  erb leaderboard --help           {figures['startup_leaderboard_help_s']:.3f} s")
    pr = figures["predictions_full"]
    print(
        f"  evaluate --predictions (full)    {pr['wall_s']:.2f} s, peak {pr['peak_rss_mb']:.0f} MB"
    )
    print(f"  bootstrap, 1000 resamples        {figures['bootstrap_1000_s']:.3f} s")
    for rows, m in figures["memory"].items():
        print(
            f"  full run, {rows:>6} rows, k=4      peak {m['peak_rss_mb']:.0f} MB, judging {m['judging_s']:.1f} s, warm rerun {m['warm_rerun_s']:.2f} s"
        )
    if "memory_growth" in figures:
        print(f"  memory growth {args.rows} -> {args.scale} rows: {figures['memory_growth']:+.1%}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
