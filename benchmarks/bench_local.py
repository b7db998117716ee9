"""Throughput of the local transformers backend: batched generation vs one request at a time,
and exact mode vs batched mode through the EditScore judge.

Builds the tiny random Qwen2.5-VL of the tests (no downloads), then

1. answers the same EditScore SC and PQ requests (images of the bundled mini
   benchmark) twice in batched mode: in batches of ``--batch-size`` and one at a
   time, under greedy decoding so both produce the same tokens;
2. judges ``--candidates`` candidates at Avg@``--k`` with the cards' sampling
   (temperature 0.7, top_p 0.9, top_k 20) in exact mode (upstream's calls: one
   sequence per prompt and pass) and in batched mode (``--batch-size`` sequences,
   the k passes as n = k samples of one seed). Sampled random weights do emit an end
   of sequence now and then, so the model's generation config here sets
   ``min_new_tokens``: every answer is ``--max-new-tokens`` long in both modes.

Prints the rates and ratios, and writes the figures as JSON.

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


def fixed_length(model_dir: Path, tokens: int) -> None:
    """Answers of exactly ``tokens`` tokens: no end of sequence before (generation config)."""
    from transformers import GenerationConfig

    config = GenerationConfig.from_pretrained(model_dir)
    config.min_new_tokens = tokens
    config.save_pretrained(model_dir)


def judge_card(folder: Path, model_dir: Path, args: argparse.Namespace) -> Path:
    sampling = {
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": 20,
        "max_new_tokens": args.max_new_tokens,
    }
    lines = [
        'name = "bench-local"', 'protocol = "editscore"', 'backend = "transformers"',
        f"model = {json.dumps(str(model_dir))}", "[sampling]",
        *(f"{k} = {json.dumps(v)}" for k, v in sampling.items()),
        "[options]", 'layout = "qwen2.5-vl"', "max_retries = 0",
        f"dtype = {json.dumps(args.dtype)}", f"device_map = {json.dumps(args.device_map)}",
        f"batch_size = {args.batch_size}",
    ]  # fmt: skip
    path = folder / "bench-local.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def timed_judges(card: Path, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Judge the candidates at Avg@k in each mode; best of ``--repeats`` after a warm-up.

    The modes take turns, run by run, so that a busy machine slows both alike.
    """
    from editreward_bench.benchmark import load_benchmark
    from editreward_bench.judges import JudgeTask, load_judge

    candidates = list(load_benchmark("mini").candidates.values())[: args.candidates]
    seeds = tuple(42 + i for i in range(args.k))
    tasks = [JudgeTask(c, tuple(range(args.k)), seeds) for c in candidates]
    modes = ("exact", "batched")
    judges = {mode: load_judge(str(card), mode=mode) for mode in modes}
    seconds: dict[str, list[float]] = {mode: [] for mode in modes}
    results: dict[str, list[Any]] = {}
    try:
        for judge in judges.values():
            judge.preflight()
        for run in range(args.repeats + 1):  # the first run warms up
            for mode, judge in judges.items():
                start = time.perf_counter()
                results[mode] = asyncio.run(judge.ajudge(tasks))
                if run:
                    seconds[mode].append(time.perf_counter() - start)
    finally:
        for judge in judges.values():
            judge.close()
    figures = {}
    for mode in modes:
        done = results[mode]
        errors = [r.error for r in done if r.error and not r.error.startswith("unparseable")]
        if errors:
            raise SystemExit(f"judging failed: {errors[0]}")
        best = min(seconds[mode])
        tokens = sum(r.completion_tokens or 0 for r in done)
        figures[mode] = {
            "mode": mode,
            "passes": len(done),
            "seconds_best": round(best, 4),
            "seconds_all": [round(s, 4) for s in seconds[mode]],
            "seconds_median": round(statistics.median(seconds[mode]), 4),
            "passes_per_s": round(len(done) / best, 3),
            "completion_tokens": tokens,
            "completion_tokens_per_s": round(tokens / best, 1),
        }
    return figures


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
    parser.add_argument("--candidates", type=int, default=4, help="candidates judged per mode")
    parser.add_argument("--k", type=int, default=4, help="passes per candidate (Avg@k)")
    parser.add_argument(
        "--skip-modes", action="store_true", help="only batch size vs one at a time"
    )
    args = parser.parse_args(argv)

    import torch
    import transformers
    from tiny_qwen import build_tiny_qwen

    from editreward_bench.backends.transformers_local import TransformersBackend

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model_dir or Path(tmp) / "tiny-qwen"
        if not (model_dir / "config.json").exists():
            build_tiny_qwen(model_dir)
        fixed_length(model_dir, args.max_new_tokens)
        backend = TransformersBackend(
            str(model_dir),
            sampling={"temperature": 0.0, "max_new_tokens": args.max_new_tokens},
            layout="qwen2.5-vl",
            dtype=args.dtype,
            device_map=args.device_map,
            mode="batched",
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
        modes: dict[str, Any] = {}
        if not args.skip_modes:
            card = judge_card(Path(tmp), model_dir, args)
            modes = timed_judges(card, args)

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
    if modes:
        result["modes"] = {
            "workload": f"{args.candidates} candidates, k = {args.k}, sampled (temperature 0.7, "
            f"top_p 0.9, top_k 20), {args.max_new_tokens} new tokens per answer, batch size "
            f"{args.batch_size} in batched mode",
            **modes,
            "batched_speedup": round(
                modes["exact"]["seconds_best"] / modes["batched"]["seconds_best"], 3
            ),
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
    if modes:
        print(f"  judge, {result['modes']['workload']}:")
        for mode in ("exact", "batched"):
            figures = modes[mode]
            print(
                f"  {mode:>13}: {figures['passes_per_s']:.2f} passes/s, "
                f"{figures['completion_tokens_per_s']:.0f} tokens/s (best of {args.repeats}: "
                f"{figures['seconds_best']:.2f} s; all {figures['seconds_all']})"
            )
        print(f"  batched mode is {result['modes']['batched_speedup']:.2f}x faster than exact mode")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"  written: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
