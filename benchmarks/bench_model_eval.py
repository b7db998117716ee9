"""Throughput of ``erb model-eval`` on a GEdit-Bench-EN-sized run against a local server.

606 items (GEdit-Bench-EN's count) in GEdit-Bench's schema with outputs in Step1X-Edit's
layout, judged once (k = 1) by ``viescore-gpt-4.1`` (two requests per item: SC and PQ)
against ``editreward_bench.testing.fake_openai`` in its own process (hash answers, a set
latency). Prints the judging phase's wall time against the ideal ``requests x latency /
concurrency`` and writes JSON to ``benchmarks/results/model_eval.json``.

    python benchmarks/bench_model_eval.py --items 606 --image-size 512 --latency 1.0 --concurrency 64
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import zlib
from pathlib import Path
from random import Random
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from bench_openai import ENV, free_port, run_erb  # noqa: E402


def build(items: int, size: int) -> tuple[Path, Path]:
    """A cached GEdit-schema dataset of ``items`` English rows and one output per row."""
    from editreward_bench.editing.gedit import GROUPS
    from editreward_bench.editing.synth import gedit_features
    from editreward_bench.synth import make_task, render

    root = HERE / ".cache" / f"gedit-{items}-{size}"
    data, outputs = root / "dataset", root / "outputs"
    if (data / "state.json").exists():
        return data, outputs
    import datasets

    print(f"writing {items} GEdit-schema rows at {size}px to {root} ...", flush=True)
    columns: dict[str, list[Any]] = {name: [] for name in gedit_features()}
    for i in range(items):
        group = GROUPS[i % len(GROUPS)]
        task = make_task(group, Random(zlib.crc32(f"bench/{i}".encode())))
        key = f"{i:032x}"
        source, edited = render(task.source, size), render(task.follow(task.source), size)
        folder = outputs / "fullset" / group / "en"
        folder.mkdir(parents=True, exist_ok=True)
        source.save(folder / f"{key}_SRCIMG.png")
        edited.save(folder / f"{key}.png")
        png = (folder / f"{key}_SRCIMG.png").read_bytes()
        for name, value in (("key", key), ("task_type", group), ("instruction", task.instruction),
                            ("instruction_language", "en"), ("Intersection_exist", i % 3 != 2)):  # fmt: skip
            columns[name].append(value)
        columns["input_image"].append({"bytes": png, "path": None})
        columns["input_image_raw"].append({"bytes": png, "path": None})
    datasets.Dataset.from_dict(columns, features=gedit_features()).save_to_disk(str(data))
    return data, outputs


def measure(
    data: Path, outputs: Path, latency: float, concurrency: int, work: Path
) -> dict[str, Any]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "editreward_bench.testing.fake_openai", "--port", str(port),
         "--latency", str(latency), "--mode", "hash", "--model", "gpt-4.1"],
        env=ENV, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert server.stdout is not None
    url = server.stdout.readline().strip()
    try:
        out = work / f"run-{time.monotonic_ns()}"
        args = ["model-eval", "--benchmark", "gedit", "--dataset", str(data), "--outputs", str(outputs),
                "--judge", "viescore-gpt-4.1", "--base-url", url, "--concurrency", str(concurrency),
                "--store", str(work / f"store-{time.monotonic_ns()}.sqlite"), "--out", str(out)]  # fmt: skip
        cold = run_erb(args)
        manifest = json.loads((out / "manifest.json").read_text())
        warm = run_erb(args)
    finally:
        server.terminate()
        server.wait(timeout=10)
    requests = int(manifest["judge_identity"]["requests"])
    judging = float(manifest["judging_seconds"])
    ideal = requests * latency / concurrency
    return {
        "items": manifest["dataset"]["items"], "k": 1, "latency_s": latency, "concurrency": concurrency,
        "requests": requests, "judging_s": round(judging, 3), "ideal_s": round(ideal, 3),
        "judging_over_ideal": round(judging / ideal, 3), "items_per_s": round(manifest["dataset"]["items"] / judging, 1),
        "wall_s": round(cold["wall_s"], 3), "client_cpu_s": round(cold["cpu_s"], 3),
        "peak_rss_mb": round(cold["peak_rss_mb"], 1), "warm_rerun_s": round(warm["wall_s"], 3),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=606)
    parser.add_argument("--image-size", type=int, default=512)
    parser.add_argument("--latency", type=float, nargs="+", default=[1.0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[64])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", type=Path, default=HERE / "results" / "model_eval.json")
    args = parser.parse_args()
    data, outputs = build(args.items, args.image_size)
    import tempfile

    results = []
    with tempfile.TemporaryDirectory(prefix="erb-bench-") as tmp:
        for latency in args.latency:
            for concurrency in args.concurrency:
                for _ in range(args.repeat):
                    r = measure(data, outputs, latency, concurrency, Path(tmp))
                    results.append({**r, "image_size": args.image_size})
                    print(json.dumps(r), flush=True)
    print(f"\n{'latency':>8} {'conc':>5} {'requests':>9} {'judging s':>10} {'ideal s':>8} {'x ideal':>8} "
          f"{'items/s':>8} {'cpu s':>7} {'rss MB':>7} {'warm s':>7}")  # fmt: skip
    for r in results:
        print(f"{r['latency_s']:>8} {r['concurrency']:>5} {r['requests']:>9} {r['judging_s']:>10} "
              f"{r['ideal_s']:>8} {r['judging_over_ideal']:>8} {r['items_per_s']:>8} {r['client_cpu_s']:>7} "
              f"{r['peak_rss_mb']:>7} {r['warm_rerun_s']:>7}")  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
