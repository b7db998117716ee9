"""Throughput of the local transformers backend: batched generation vs one request at a time.

Builds the tiny random Qwen2.5-VL of the tests (no downloads), then answers the
same EditScore SC and PQ requests (images of the bundled mini benchmark) twice:
in batches of ``--batch-size`` and one at a time, under greedy decoding so both
produce the same tokens. Prints requests/s for each and the ratio, and writes
the figures as JSON.

    HF_HUB_OFFLINE=1 python benchmarks/bench_local.py --out benchmarks/results/local.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # tiny_qwen
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def build_requests(backend: Any, n_requests: int) -> list[Any]:
    from editreward_bench.benchmark import load_benchmark
    from editreward_bench.judges.base import GenRequest
    from editreward_bench.judges.editscore import load_prompts

    prompts = load_prompts()
    requests: list[Any] = []
    for candidate in load_benchmark("mini").candidates.values():
        if len(requests) >= n_requests:
            break
        images = backend.prepare_images(list(candidate.load_images()))
        requests.append(GenRequest(images, prompts.sc(candidate.instruction), 1, 42))
        requests.append(GenRequest(images[1:], prompts.pq(), 1, 42))
    return requests[:n_requests]


def timed(backend: Any, requests: list[Any], batch_size: int, repeats: int) -> dict[str, Any]:
    backend.batch_size = batch_size
    seconds, responses = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        responses = asyncio.run(backend.generate(requests))
        seconds.append(time.perf_counter() - start)
    errors = [r.error for r in responses if r.error]
    if errors:
        raise SystemExit(f"generation failed: {errors[0]}")
    best = min(seconds)
    tokens = sum(r.completion_tokens or 0 for r in responses)
    return {
        "batch_size": batch_size,
        "seconds_best": round(best, 4),
        "seconds_all": [round(s, 4) for s in seconds],
        "seconds_median": round(statistics.median(seconds), 4),
        "requests_per_s": round(len(requests) / best, 3),
        "completion_tokens": tokens,
        "completion_tokens_per_s": round(tokens / best, 1),
        "prompt_tokens_mean": round(
            sum(r.prompt_tokens or 0 for r in responses) / len(responses), 1
        ),
        "texts": [r.texts for r in responses],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "local.json")
    parser.add_argument("--requests", type=int, default=16, help="requests (SC and PQ alternate)")
    parser.add_argument("--batch-size", type=int, default=8)
    # The cards' setting (upstream's): a random tiny model never stops early, so every answer is this long.
    parser.add_argument("--max-new-tokens", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per mode (best is kept)")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--device-map", default="cpu", help="'cpu', or 'auto' for a GPU")
    parser.add_argument("--model-dir", type=Path, help="reuse a tiny model built here before")
    args = parser.parse_args(argv)

    import torch
    import transformers
    from tiny_qwen import build_tiny_qwen

    from editreward_bench.backends.transformers_local import TransformersBackend

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model_dir or Path(tmp) / "tiny-qwen"
        if not (model_dir / "config.json").exists():
            build_tiny_qwen(model_dir)
        backend = TransformersBackend(
            str(model_dir),
            sampling={"temperature": 0.0, "max_new_tokens": args.max_new_tokens},
            layout="qwen2.5-vl",
            dtype=args.dtype,
            device_map=args.device_map,
        )
        backend.preflight()
        requests = build_requests(backend, args.requests)
        # Warm-up: a full untimed run of each mode (the first call at each new tensor shape
        # is several times slower on CPU).
        timed(backend, requests, args.batch_size, 1)
        timed(backend, requests, 1, 1)
        batched = timed(backend, requests, args.batch_size, args.repeats)
        single = timed(backend, requests, 1, args.repeats)
        device = str(backend._load().device)
        backend.close()

    same = batched.pop("texts") == single.pop("texts")
    speedup = single["seconds_best"] / batched["seconds_best"]
    result = {
        "benchmark": "transformers backend, batched vs one-at-a-time generation",
        "model": "tiny random Qwen2.5-VL (tests/tiny_qwen.py, ~190k parameters)",
        "device": device,
        "dtype": args.dtype,
        "cpu_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "requests": len(requests),
        "max_new_tokens": args.max_new_tokens,
        "decoding": "greedy",
        "batched": batched,
        "one_at_a_time": single,
        "speedup": round(speedup, 3),
        "same_answers": same,
    }
    print(
        f"tiny Qwen2.5-VL on {device} ({torch.get_num_threads()} threads), {len(requests)} requests, "
        f"greedy, {args.max_new_tokens} new tokens max"
    )
    for name, figures in (("batched", batched), ("one at a time", single)):
        print(
            f"  {name:>13} (batch {figures['batch_size']}): {figures['requests_per_s']:.2f} requests/s, "
            f"{figures['completion_tokens_per_s']:.0f} tokens/s (best of {args.repeats}: "
            f"{figures['seconds_best']:.2f} s; all {figures['seconds_all']})"
        )
    print(f"  speedup: {speedup:.2f}x; identical answers: {same}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"  written: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
