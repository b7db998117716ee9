"""Measure erb's OpenAI-compatible path against a local server with a set latency.

Prints, and writes as JSON:

- client CPU time per judge request (decode, resize, encode once per candidate,
  request, parse, store), with the requests per second achieved;
- the judging phase's wall time against the ideal ``requests x latency / concurrency``;
- peak resident memory of the ``erb evaluate`` process.

The server runs in its own process (``editreward_bench.testing.fake_openai``,
hash answers, no image decoding), so its CPU is not charged to the client.

    python benchmarks/bench_openai.py --rows 3072 --image-size 1024 --k 4 --latency 0.5 --concurrency 64
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(REPO)}


def synth_dataset(rows: int, size: int) -> Path:
    """A cached synthetic benchmark (erb data synth) of this shape."""
    path = HERE / ".cache" / f"synth-{rows}-{size}"
    if not (path / "state.json").exists():
        print(f"writing {rows} rows at {size}px to {path} ...", flush=True)
        subprocess.run(
            [sys.executable, "-m", "editreward_bench.cli", "data", "synth", "--rows", str(rows), "--image-size", str(size), "--out", str(path)],
            check=True, env=ENV,
        )  # fmt: skip
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, latency: float, allow_n: bool = True) -> None:
        self.port = free_port()
        args = [sys.executable, "-m", "editreward_bench.testing.fake_openai", "--port", str(self.port),
                "--latency", str(latency), "--mode", "hash", "--model", "editscore-72b"]  # fmt: skip
        if not allow_n:
            args.append("--no-n")
        self.proc = subprocess.Popen(args, env=ENV, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "/stats", timeout=10) as resp:
            return dict(json.loads(resp.read()))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def run_child(argv: list[str], label: str) -> dict[str, Any]:
    """Run a command; its wall time, CPU time and peak RSS (stderr kept in a file, never a full pipe)."""
    with tempfile.TemporaryFile(mode="w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=ENV, stdout=subprocess.DEVNULL, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise SystemExit(f"{label} failed:\n{err.read()[-3000:]}")
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
    }


def run_erb(args: list[str]) -> dict[str, Any]:
    """Run erb in a child process; wall time, CPU time and peak RSS of that child."""
    return run_child([sys.executable, "-m", "editreward_bench.cli", *args], f"erb {' '.join(args)}")


def measure(
    dataset: Path,
    k: int,
    latency: float,
    concurrency: int,
    use_n: bool,
    work: Path,
    options: list[str] | None = None,
) -> dict[str, Any]:
    server = Server(latency, allow_n=use_n)
    try:
        store = work / f"store-{time.monotonic_ns()}.sqlite"
        out = work / f"run-{time.monotonic_ns()}"
        args = ["evaluate", "--judge", "editscore-72b", "--base-url", server.url, "--dataset", str(dataset),
                "--k", str(k), "--concurrency", str(concurrency), "--store", str(store), "--out", str(out)]  # fmt: skip
        for option in options or []:
            args += ["--option", option]
        cold = run_erb(args)
        requests = server.stats()["requests"]
        manifest = json.loads((out / "manifest.json").read_text())
        warm = run_erb(args)
        assert server.stats()["requests"] == requests, "a warm rerun must make no request"
    finally:
        server.stop()
    judging = manifest["judging_seconds"]
    ideal = requests * latency / concurrency
    return {
        "k": k,
        "latency_s": latency,
        "concurrency": concurrency,
        "n_per_request": use_n,
        "options": list(options or []),
        "candidates": manifest["dataset"]["candidates"],
        "requests": requests,
        "judging_s": round(judging, 3),
        "ideal_s": round(ideal, 3),
        "judging_over_ideal": round(judging / ideal, 3) if ideal else None,
        "client_cpu_s": round(cold["cpu_s"], 3),
        "client_cpu_ms_per_request": round(1000 * cold["cpu_s"] / requests, 3),
        "requests_per_s": round(requests / judging, 1) if judging else None,
        "wall_s": round(cold["wall_s"], 3),
        "peak_rss_mb": round(cold["peak_rss_mb"], 1),
        "warm_rerun_s": round(warm["wall_s"], 3),
        "warm_rerun_peak_rss_mb": round(warm["peak_rss_mb"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3072)
    parser.add_argument("--image-size", type=int, default=1024)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 0.5])
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--no-n", action="store_true", help="Also measure one request per pass.")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "openai.json")
    parser.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                        help="A judge setting for erb evaluate (e.g. image_format=jpeg).")  # fmt: skip
    args = parser.parse_args()

    dataset = synth_dataset(args.rows, args.image_size)
    work = Path(tempfile.mkdtemp(prefix="erb-bench-"))
    results = []
    try:
        for latency in args.latency:
            for use_n in [True, False] if args.no_n else [True]:
                result = measure(
                    dataset, args.k, latency, args.concurrency, use_n, work, args.option
                )
                results.append(result)
                print(json.dumps(result), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    header = f"{'latency':>8} {'n=k':>4} {'requests':>9} {'judging s':>10} {'ideal s':>8} {'ratio':>6} {'cpu ms/req':>11} {'req/s':>7} {'peak MB':>8} {'warm s':>7}"
    print(
        f"\nerb OpenAI path: {args.rows} rows at {args.image_size}px, k={args.k}, concurrency {args.concurrency}"
    )
    print(header)
    for r in results:
        print(f"{r['latency_s']:>8} {'yes' if r['n_per_request'] else 'no':>4} {r['requests']:>9} {r['judging_s']:>10} {r['ideal_s']:>8} "
              f"{r['judging_over_ideal'] or '-':>6} {r['client_cpu_ms_per_request']:>11} {r['requests_per_s']:>7} {r['peak_rss_mb']:>8} {r['warm_rerun_s']:>7}")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"rows": args.rows, "image_size": args.image_size, "results": results}, indent=2)
        + "\n"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
