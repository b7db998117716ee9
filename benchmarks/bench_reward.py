"""Measure the reward path: the Python API, and one RL step through ``erb serve-reward``.

Prints JSON lines and a summary, and writes ``benchmarks/results/reward.json``:

- ``api``: ``RewardModel.score_many`` on 128 items (PIL images at 1024 px, as a
  trainer holds them), k = 1, concurrency 64, against a judge server with 0.2 s
  latency: wall time against the ideal ``requests x latency / concurrency``, with
  128 distinct sources and (``api_shared_sources``) with 8 edits per source, and
  against this machine's floor: the images prepared alone on erb's worker threads,
  plus one latency (``--cpus N`` pins everything to N cores; ``--api-size 64``
  leaves the orchestration alone);
- ``step``: one RL step of 576 items at 512 px (72 prompts x 8 samples, each
  prompt's samples editing one source), k = 4 (``n = k``: 1,152 requests), 256
  backend requests in flight over two judge replicas with 1 s latency, posted by
  8 trainer ranks at once (72 items each, PNG, through the client the trainer
  clients use): step time against the ideal (4.5 s), the reward server's own CPU
  per item, the judge servers' CPU, the reward server's peak memory, and where the
  server's CPU goes (the request parsing and the image work measured alone, the
  rest by difference);
- ``step_faults``: the same step with 10% injected faults on both replicas (5%
  HTTP 500, 2% 429, 2% unparseable answers, 1% dropped connections) and one
  replica killed (SIGKILL) 1.5 s into the step: every item scored or given an
  error, every rank answered.

Every server is a separate process on 127.0.0.1 (the judge replicas are
``editreward_bench.testing.fake_openai`` answering from a hash, no image decoding),
so each one's CPU is measured on its own; all share the machine's cores.

    python benchmarks/bench_reward.py
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
ENV = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
CLK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def image(seed: int, size: int) -> Any:
    """A synthetic picture: gradients and a few shapes (no noise: generated images are smooth)."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, size, dtype=np.float32)
    base = rng.random(3) * 255
    arr = np.empty((size, size, 3), np.float32)
    for c in range(3):
        arr[..., c] = base[c] * (0.5 + 0.5 * np.add.outer(x * rng.random(), x * rng.random()))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x0, y0 = rng.integers(0, size - 8, 2)
        w, h = rng.integers(8, size // 3, 2)
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        draw.rectangle([int(x0), int(y0), int(x0 + w), int(y0 + h)], fill=colour)
    return img


# --------------------------------------------------------------------------- judge replicas


def serve_fake(port: int, latency: float, faults: float) -> None:
    """Child process: a judge replica with ``faults`` (0..1) of its requests failing."""
    from editreward_bench.testing.fake_openai import FakeOpenAIServer, Faults

    share = {"http_500": 0.5, "http_429": 0.2, "garbage": 0.2, "drop": 0.1}
    injected = Faults(**{k: v * faults for k, v in share.items()}, retry_after=0.0, seed=port)
    server = FakeOpenAIServer(
        models=["editscore-72b"], latency=latency, faults=injected, mode="hash", port=port
    )
    print(server.url, flush=True)
    server._httpd.serve_forever()


class Child:
    def __init__(self, argv: list[str], ready: str | None = None) -> None:
        self.proc = subprocess.Popen(
            argv, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        self.line = self.proc.stdout.readline().strip() if ready is None else ready

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def replica(latency: float, faults: float) -> Child:
    port = free_port()
    return Child([sys.executable, __file__, "--serve-fake", str(port), str(latency), str(faults)])


def requests_made(url: str) -> int:
    with urllib.request.urlopen(url + "/stats", timeout=10) as response:
        return int(json.loads(response.read())["requests"])


# --------------------------------------------------------------------------- the Python API


def bench_api(
    items: int,
    size: int,
    k: int,
    concurrency: int,
    latency: float,
    group: int = 1,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from editreward_bench.rewards import RewardModel

    judge = replica(latency, 0.0)
    try:
        distinct = [image(i, size) for i in range(items // group)]
        sources = [distinct[i // group] for i in range(items)]  # a group's edits share a source
        edits = [image(10_000 + i, size) for i in range(items)]
        batch = [(f"Edit number {i}.", sources[i], edits[i]) for i in range(items)]
        with RewardModel(
            "editscore-72b",
            base_urls=judge.line,
            k=k,
            concurrency=concurrency,
            **(settings or {}),
        ) as reward:
            reward.score_many(batch[:2])  # clients made, connections opened
            pairs = []
            for i in range(5):  # one edit at a time, as `Judge.score` was used
                t0 = time.perf_counter()
                reward.score(*batch[i])
                pairs.append(time.perf_counter() - t0)
            before = requests_made(judge.line)
            judge_cpu0 = cpu_seconds(judge.pid)
            cpu0, t0 = time.process_time(), time.perf_counter()
            results = reward.score_many(batch)
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            judge_cpu = cpu_seconds(judge.pid) - judge_cpu0
            images_s, images_cpu = image_work_alone(reward, distinct + edits)
        requests = requests_made(judge.line) - before
    finally:
        judge.stop()
    ideal = requests * latency / concurrency
    return {
        "items": items, "edits_per_source": group, "image_size": size, "k": k,
        "concurrency": concurrency, "latency_s": latency, "requests": requests, "wall_s": round(wall, 3),
        "ideal_s": round(ideal, 3), "over_ideal": round(wall / ideal, 3),
        "client_cpu_s": round(cpu, 3), "judge_server_cpu_s": round(judge_cpu, 3),
        "scored": sum(r.ok for r in results),
        "image_work_alone_s": round(images_s, 3), "image_work_alone_cpu_s": round(images_cpu, 3),
        "floor_s": round(max(ideal, images_s + latency), 3),
        "over_floor": round(wall / max(ideal, images_s + latency), 3),
        "cpus": len(os.sched_getaffinity(0)), "settings": settings or {},
        "one_edit_s": round(sorted(pairs)[len(pairs) // 2], 3),
    }  # fmt: skip


def image_work_alone(reward: Any, images: list[Any]) -> tuple[float, float]:
    """Wall and CPU seconds of preparing the images as the judge does, on erb's worker threads.

    With nothing else to do, this is the least time in which the client can have every
    image ready, and the last requests still wait one latency after it: with the server's
    own bound (the ideal), the run's floor on this machine, whatever the orchestration.
    """
    from editreward_bench.judges.base import _worker_pool

    backend = reward.judge.backend
    cpu0, t0 = time.process_time(), time.perf_counter()
    list(_worker_pool().map(lambda image: backend.prepare_images([image]), images))
    return time.perf_counter() - t0, time.process_time() - cpu0


# --------------------------------------------------------------------------- one RL step


def step_bodies(
    items: int, group: int, ranks: int, size: int
) -> tuple[list[bytes], list[list[int]]]:
    """Each rank's request body (PNG images, as the trainer clients send them) and its item ids."""
    from editreward_bench.rewards.client import encode_image

    prompts = items // group
    sources = [encode_image(image(p, size)) for p in range(prompts)]
    order = list(range(items))
    random.Random(0).shuffle(
        order
    )  # samples of a prompt spread over ranks, as Flow-GRPO's sampler does
    per_rank = [order[r::ranks] for r in range(ranks)]
    bodies = []
    for ids in per_rank:
        body = {
            "items": [
                {"instruction": f"Edit prompt {i // group}.", "source": sources[i // group],
                 "edited": encode_image(image(100_000 + i, size)), "group": f"p{i // group}"}
                for i in ids
            ]
        }  # fmt: skip
        bodies.append(json.dumps(body).encode())
    return bodies, per_rank


def post(url: str, body: bytes, out: list[Any], index: int) -> None:
    request = urllib.request.Request(
        url + "/v1/score", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            out[index] = (response.status, json.loads(response.read()))
    except Exception as exc:  # a failed rank is what this measures
        out[index] = (getattr(exc, "code", None), str(exc))


def bench_step(
    bodies: list[bytes],
    k: int,
    concurrency: int,
    latency: float,
    faults: float,
    kill_after: float | None,
) -> dict[str, Any]:
    replicas = [replica(latency, faults), replica(latency, faults)]
    port = free_port()
    server = Child(
        [sys.executable, "-m", "editreward_bench.cli", "serve-reward", "--judge", "editscore-72b",
         "--k", str(k), "--concurrency", str(concurrency), "--port", str(port),
         "--log-level", "warning", *[a for r in replicas for a in ("--base-url", r.line)]],
        ready="",
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/health", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or server.proc.poll() is not None:
                    raise SystemExit(
                        "the reward server did not start:\n"
                        + (server.proc.stderr.read() if server.proc.stderr else "")
                    ) from None
                time.sleep(0.2)
        # warm up: connections to both replicas, the first request's imports
        warm = [None]
        post(url, json.dumps({"items": json.loads(bodies[0])["items"][:4]}).encode(), warm, 0)
        before_requests = sum(requests_made(r.line) for r in replicas)
        cpu_server0 = cpu_seconds(server.pid)
        cpu_fakes0 = [cpu_seconds(r.pid) for r in replicas]
        answers: list[Any] = [None] * len(bodies)
        threads = [
            threading.Thread(target=post, args=(url, b, answers, i)) for i, b in enumerate(bodies)
        ]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        killed = None
        if kill_after is not None:
            time.sleep(kill_after)
            cpu_fakes0[1] = cpu_fakes0[1] - cpu_seconds(replicas[1].pid)  # its CPU until killed
            replicas[1].proc.kill()
            killed = round(time.perf_counter() - t0, 2)
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        cpu_server = cpu_seconds(server.pid) - cpu_server0
        live = [r for r in replicas if r.proc.poll() is None]
        cpu_fakes = sum(
            cpu_seconds(r.pid) - c
            for r, c in zip(replicas, cpu_fakes0, strict=True)
            if r.proc.poll() is None
        )
        if kill_after is not None:
            cpu_fakes += -cpu_fakes0[1]
        requests = sum(requests_made(r.line) for r in live) - (
            before_requests if not kill_after else 0
        )
        rss = peak_rss_mb(server.pid)
    finally:
        server.stop()
        for r in replicas:
            r.stop()
    items = sum(len(json.loads(b)["items"]) for b in bodies)
    statuses = [a[0] for a in answers]
    results = [r for a in answers if a[0] == 200 for r in a[1]["results"]]
    scored = sum(r["error"] is None for r in results)
    errors = sorted({r["error"][:80] for r in results if r["error"]})
    ideal = 2 * items * latency / concurrency
    out = {
        "items": items, "k": k, "concurrency": concurrency, "latency_s": latency,
        "faults": faults, "replica_killed_at_s": killed, "ranks": len(bodies),
        "rank_statuses": statuses, "step_s": round(wall, 3), "ideal_s": round(ideal, 3),
        "over_ideal": round(wall / ideal, 3), "scored": scored, "errors": len(results) - scored,
        "error_reasons": errors[:5], "server_cpu_s": round(cpu_server, 3),
        "server_cpu_ms_per_item": round(1000 * cpu_server / items, 2),
        "judge_servers_cpu_s": round(cpu_fakes, 3), "server_peak_rss_mb": round(rss, 1),
    }  # fmt: skip
    if not kill_after:
        out["backend_requests"] = requests
    return out


def cost_breakdown(bodies: list[bytes]) -> dict[str, Any]:
    """Server-side CPU of the parts that can be timed alone, per item (this process, one thread)."""
    from editreward_bench.judges import load_judge
    from editreward_bench.rewards.items import ItemCandidate, ItemImage

    # The images as the served card prepares them (qwen-vl-utils' resize, erb's PNG).
    backend = load_judge("editscore-72b").backend  # type: ignore[attr-defined]

    def encode(image: Any) -> None:
        backend.prepare_images([image])

    from editreward_bench.rewards.server import Limits, parse_body

    items = 0
    t0 = time.process_time()
    parsed_all = []
    for body in bodies:
        parsed, _, _ = parse_body(body, Limits())
        parsed_all += parsed
        items += len(parsed)
    parse = time.process_time() - t0
    t0 = time.process_time()
    seen: set[str] = set()
    for item in parsed_all:
        assert not isinstance(item, str)
        source, edited = ItemImage(data=item.source), ItemImage(data=item.edited)
        candidate = ItemCandidate("k", "k", item.instruction, source, edited)
        if source.sha not in seen:  # a prompt's source is encoded once
            seen.add(source.sha)
            encode(candidate.load_source())
        encode(candidate.load_edited())
    images = time.process_time() - t0
    return {"parse_json_base64_ms_per_item": round(1000 * parse / items, 2),
            "decode_and_prepare_images_ms_per_item": round(1000 * images / items, 2)}  # fmt: skip


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-fake":
        serve_fake(int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("api", "step", "faults"), action="append")
    parser.add_argument(
        "--api-size",
        type=int,
        default=1024,
        help="Image size of the API runs (64: the orchestration alone, image work about nil)",
    )
    parser.add_argument(
        "--cpus",
        type=int,
        help="Run the benchmark and its servers on the first N cores only (how the API "
        "figure scales with cores); the report's entries get a _cpusN suffix",
    )
    parser.add_argument("--out", type=Path, default=HERE / "results" / "reward.json")
    parser.add_argument(
        "-o",
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="A judge setting for the API runs, e.g. -o image_format=jpeg -o pre_resize=false",
    )
    args = parser.parse_args()
    from editreward_bench.judges.options import parse_override_value

    settings = {
        k.strip(): parse_override_value(v.strip())
        for k, _, v in (item.partition("=") for item in args.option)
    }
    suffix = "".join(f"_{k}={v}" for k, v in sorted(settings.items()))
    if args.cpus:
        # Children (the judge replicas, the reward server) inherit the affinity.
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.cpus])
        suffix += f"_cpus{args.cpus}"
    if args.api_size != 1024:
        suffix += f"_size{args.api_size}"
    todo = args.only or ["api", "step", "faults"]
    report: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    if "api" in todo:
        name = "api" + suffix
        report[name] = bench_api(
            items=128, size=args.api_size, k=1, concurrency=64, latency=0.2, settings=settings
        )
        print(json.dumps({name: report[name]}), flush=True)
        name = "api_shared_sources" + suffix
        report[name] = bench_api(
            items=128,
            size=args.api_size,
            k=1,
            concurrency=64,
            latency=0.2,
            group=8,
            settings=settings,
        )
        print(json.dumps({name: report[name]}), flush=True)
    if "step" in todo or "faults" in todo:
        cpus = f"_cpus{args.cpus}" if args.cpus else ""  # the judge settings apply to the API only
        bodies, _ = step_bodies(items=576, group=8, ranks=8, size=512)
        if "step" in todo:
            name = "step" + cpus
            report[name] = bench_step(
                bodies, k=4, concurrency=256, latency=1.0, faults=0.0, kill_after=None
            )
            report[name]["cpu_breakdown"] = cost_breakdown(bodies)
            print(json.dumps({name: report[name]}), flush=True)
        if "faults" in todo:
            name = "step_faults" + cpus
            report[name] = bench_step(
                bodies, k=4, concurrency=256, latency=1.0, faults=0.1, kill_after=1.5
            )
            print(json.dumps({name: report[name]}), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
