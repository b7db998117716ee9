"""erb against the upstream EditScore harness, on the same local server and data.

The upstream side is the ``editscore`` 0.2 package with its API backend, driven
the way its benchmark script drives it: every image decoded up front (a process
pool), then a thread pool of 20 over candidates, each candidate's k passes one
after another (SC then PQ request per pass). Install it beside erb with

    pip install --no-deps editscore==0.2 && pip install regex json_repair requests

Both sides talk to ``editreward_bench.testing.fake_openai`` in its own process.
Printed and written as JSON: judging-phase wall time (first request to last
answer) and peak resident memory of each side.

    python benchmarks/bench_upstream.py --rows 768 --image-size 1024 --k 4 --latency 0.5
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_openai import Server, run_child, run_erb, synth_dataset  # noqa: E402

UPSTREAM_DRIVER = r"""
import json, os, sys, time, resource
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
import datasets
from editscore import EditScore

dataset_dir, url, k, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

def load_item(row):
    k1, k2 = row["key"]
    source = row["input_image"].convert("RGB")
    return [(k1, (row["instruction"], source, row["output_images"][0].convert("RGB"))),
            (k2, (row["instruction"], source, row["output_images"][1].convert("RGB")))]

def score(key, item, scorer):
    instruction, source, edited = item
    edited = edited.resize((source.size[0], source.size[1]))
    return key, scorer.evaluate([source, edited], instruction)

if __name__ == "__main__":
    dataset = datasets.load_from_disk(dataset_dir)
    pairs = {}
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for items in pool.map(load_item, dataset):
            pairs.update(items)
    scorer = EditScore(backbone="openai", key="EMPTY", openai_url=url + "/chat/completions",
                       model_name_or_path="editscore-72b", score_range=25, num_pass=k)
    start = time.perf_counter()
    results = {}
    with ThreadPoolExecutor(max_workers=20) as pool:
        futures = [pool.submit(score, key, item, scorer) for key, item in pairs.items()]
        for future in as_completed(futures):
            key, result = future.result()
            results[key] = result
    judging = time.perf_counter() - start
    json.dump({"judging_s": judging, "candidates": len(results)}, open(out, "w"))
"""


def run_upstream(dataset: Path, url: str, k: int, work: Path) -> dict[str, Any]:
    script = work / "upstream_driver.py"
    script.write_text(UPSTREAM_DRIVER)
    out = work / "upstream.json"
    child = run_child(
        [sys.executable, str(script), str(dataset), url, str(k), str(out)], "upstream harness"
    )
    result = json.loads(out.read_text())
    # The process pool's children decode the images; the parent holds them all.
    return {
        "judging_s": result["judging_s"],
        "candidates": result["candidates"],
        "wall_s": child["wall_s"],
        "peak_rss_mb": child["peak_rss_mb"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=768)
    parser.add_argument("--image-size", type=int, default=1024)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "upstream.json")
    args = parser.parse_args()
    dataset = synth_dataset(args.rows, args.image_size)
    work = Path(tempfile.mkdtemp(prefix="erb-upstream-"))
    server = Server(args.latency)
    try:
        upstream = run_upstream(dataset, server.url, args.k, work)
        upstream["requests"] = server.stats()["requests"]
        before = upstream["requests"]
        erb_args = ["evaluate", "--judge", "editscore-72b", "--base-url", server.url, "--dataset", str(dataset),
                    "--k", str(args.k), "--concurrency", str(args.concurrency), "--store", str(work / "store.sqlite"),
                    "--out", str(work / "run")]  # fmt: skip
        ours = run_erb(erb_args)
        ours["requests"] = server.stats()["requests"] - before
        ours["judging_s"] = json.loads((work / "run" / "manifest.json").read_text())[
            "judging_seconds"
        ]
    finally:
        server.stop()
    speedup = upstream["judging_s"] / ours["judging_s"]
    print(f"\n{args.rows} rows at {args.image_size}px, k={args.k}, server latency {args.latency}s")
    print(f"{'':>10} {'judging s':>10} {'requests':>9} {'peak MB':>8} {'wall s':>8}")
    for name, r in (("upstream", upstream), ("erb", ours)):
        print(
            f"{name:>10} {r['judging_s']:>10.2f} {r['requests']:>9} {r['peak_rss_mb']:>8.0f} {r['wall_s']:>8.1f}"
        )
    print(f"erb's judging phase is {speedup:.1f}x faster")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": args.rows, "image_size": args.image_size, "k": args.k, "latency_s": args.latency,
                                    "upstream": upstream, "erb": ours, "speedup": speedup}, indent=2) + "\n")  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
