"""The local backend's two modes against upstream's transformers path, on a tiny Qwen2.5-VL.

- exact mode gives, sample for sample, what upstream ``editscore`` 0.2's
  ``EditScore.evaluate`` over ``Qwen25VL`` gets: per pass i, SC then PQ, each
  ``set_seed(42 + i)`` then one ``generate`` of one sequence (a reference loop written
  here from upstream's code, on the same model, CPU, float32);
- every stored pass's seed, and every ``extra["drawn"]``, is the seed set just before
  the ``generate`` call that drew its answer (the seeding function and ``generate`` are
  intercepted), in both modes.
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "torch", reason="the transformers backend needs torch (pip install 'erb[local]')"
)
pytest.importorskip("transformers", reason="the transformers backend needs transformers")

import numpy as np
import torch
from tiny_qwen import build_tiny_qwen

from editreward_bench.backends.transformers import generation, load_processor
from editreward_bench.judges import JudgeTask, load_judge
from editreward_bench.judges.editscore import load_prompts, retry_seed
from editreward_bench.vision import resize_image

#: Upstream's transformers sampling (``Qwen25VL.inference``), with short answers: random
#: weights never stop, and ten tokens tell seeds apart.
MAX_NEW_TOKENS = 10
SAMPLING = {"temperature": 0.7, "top_p": 0.9, "top_k": 20, "max_new_tokens": MAX_NEW_TOKENS}
K = 3


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_qwen(tmp_path_factory.mktemp("tiny_exact") / "model")


@pytest.fixture(scope="module")
def candidates() -> list[Any]:
    from editreward_bench.benchmark import load_benchmark

    return list(load_benchmark("mini").candidates.values())[:2]


def card(tmp_path: Path, model: Path) -> Path:
    lines = [
        'name = "tiny-sampled"', 'protocol = "editscore"', 'backend = "transformers"',
        f"model = {json.dumps(str(model))}", "[sampling]",
        *(f"{k} = {json.dumps(v)}" for k, v in SAMPLING.items()),
        "[options]", 'layout = "qwen2.5-vl"', 'device_map = "cpu"', 'dtype = "float32"',
    ]  # fmt: skip
    path = tmp_path / "tiny-sampled.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------- upstream, as written


def upstream_set_seed(seed: int) -> None:
    """``set_seed`` of editscore 0.2's ``mllm_tools/qwen25vl.py`` (not transformers')."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def upstream_chat_template(prompt: str, num_images: int = 2) -> str:
    """``apply_chat_template`` of editscore 0.2's ``mllm_tools/qwen25vl.py``."""
    template = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
    template += "".join(
        [f"<img{i}>: <|vision_start|><|image_pad|><|vision_end|>" for i in range(1, num_images + 1)]
    )
    template += f"{prompt}<|im_end|>\n<|im_start|>assistant\n"
    return template


def upstream_answers(model_dir: Path, candidates: list[Any], k: int) -> dict[str, list[Any]]:
    """Upstream's ``EditScore.evaluate`` call sequence: SC and PQ inputs prepared once per
    candidate (images resized as qwen-vl-utils does), then for pass i, SC then PQ, each
    ``set_seed(42 + i)`` and one ``generate`` with upstream's arguments."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(model_dir), dtype=torch.float32)
    processor, _ = load_processor(str(model_dir))  # AutoProcessor where torchvision imports
    prompts = load_prompts()

    def prepare_input(images: list[Any], text_prompt: str) -> Any:
        text = upstream_chat_template(text_prompt, num_images=len(images))
        return processor(text=[text], images=images, padding=True, return_tensors="pt")

    def inference(inputs: Any, seed: int) -> str:
        upstream_set_seed(seed)
        generated_ids = model.generate(
            **inputs, max_new_tokens=MAX_NEW_TOKENS, do_sample=True, temperature=0.7,
            top_p=0.9, top_k=20,
        )  # fmt: skip
        trimmed = [
            out[len(inp) :] for inp, out in zip(inputs["input_ids"], generated_ids, strict=True)
        ]
        outputs = processor.batch_decode(
            trimmed, skip_special_tokens=True, clean_up_tokenization_spaces=False
        )
        return str(outputs[0]).strip()

    answers: dict[str, list[Any]] = {}
    for candidate in candidates:
        source, edited = (resize_image(image) for image in candidate.load_images())
        sc_input = prepare_input([source, edited], prompts.sc(candidate.instruction))
        pq_input = prepare_input([edited], prompts.pq())
        answers[candidate.key] = [
            (inference(sc_input, 42 + i), inference(pq_input, 42 + i)) for i in range(k)
        ]
    return answers


def judged(card_path: Path, candidates: list[Any], **overrides: Any) -> list[Any]:
    tasks = [JudgeTask(c, tuple(range(K)), tuple(42 + i for i in range(K))) for c in candidates]
    judge = load_judge(str(card_path), **overrides)
    try:
        return asyncio.run(judge.ajudge(tasks))
    finally:
        judge.close()


# --------------------------------------------------------------------------- the tests


def test_exact_mode_is_upstreams_transformers_path_sample_for_sample(
    model_dir: Path, candidates: list[Any], tmp_path: Path
) -> None:
    expected = upstream_answers(model_dir, candidates, K)
    for key, passes in expected.items():  # the seed changes the answer: this test can fail
        assert len({sc for sc, _ in passes}) == K and len({pq for _, pq in passes}) == K, key
    path = card(tmp_path, model_dir)
    got = {}
    for mode in ("exact", "batched"):
        results = judged(path, candidates, mode=mode, max_retries=0)
        assert [r.seed for r in results] == [42 + r.pass_index for r in results]
        got[mode] = {
            c.key: [
                (r.raw_sc, r.raw_pq)
                for r in sorted(results, key=lambda r: r.pass_index)
                if r.key == c.key
            ]
            for c in candidates
        }
    assert got["exact"] == expected
    # Batched mode draws the k passes as k samples of seed 42 in shared batches: not upstream's.
    for key, passes in expected.items():
        assert got["batched"][key][1:] != passes[1:], key


@pytest.mark.parametrize("mode", ["exact", "batched"])
def test_every_stored_seed_is_the_seed_its_answers_were_drawn_with(
    model_dir: Path, candidates: list[Any], tmp_path: Path, mode: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    events: list[tuple[str, Any]] = []
    real_seed = generation.seed_everything

    def seed_spy(seed: int) -> None:
        events.append(("seed", seed))
        real_seed(seed)

    monkeypatch.setattr(generation, "seed_everything", seed_spy)
    # Exact mode re-asks the unparseable answers of the random weights once (each with its
    # own seed); batched mode keeps its first answers, k samples of seed 42.
    retries = 1 if mode == "exact" else 0
    judge = load_judge(str(card(tmp_path, model_dir)), mode=mode, max_retries=retries)
    loaded = judge.backend._load()  # type: ignore[attr-defined]
    real_generate = loaded.model.generate

    def generate_spy(**kwargs: Any) -> Any:
        images = len(kwargs["image_grid_thw"])
        rows = int(kwargs["input_ids"].shape[0])
        kind = {(1, 2): "sc", (1, 1): "pq"}.get((rows, images), "mixed")
        events.append(("generate", (rows, kwargs.get("num_return_sequences", 1), kind)))
        return real_generate(**kwargs)

    loaded.model.generate = generate_spy
    (candidate,) = candidates[:1]
    task = JudgeTask(candidate, tuple(range(K)), tuple(42 + i for i in range(K)))
    try:
        results = asyncio.run(judge.ajudge([task]))
    finally:
        judge.close()

    # Every generate call comes right after seeding; note which seed drew which prompt.
    drawn_by: set[tuple[int, str]] = set()
    for i, (what, value) in enumerate(events):
        if what == "generate":
            assert i > 0 and events[i - 1][0] == "seed", events
            drawn_by.add((events[i - 1][1], value[2]))
    calls = [value for what, value in events if what == "generate"]
    if mode == "exact":
        # Upstream's sequence: per pass i, SC then PQ, one sequence each, seeded 42 + i just
        # before; then the re-asks of the unparseable answers (random weights), each its seed.
        first = [e for i in range(K) for e in (("seed", 42 + i), ("generate", (1, 1, "sc")),
                                               ("seed", 42 + i), ("generate", (1, 1, "pq")))]  # fmt: skip
        assert events[: len(first)] == first
        assert all(rows == 1 and n == 1 for rows, n, _ in calls)
    else:  # the k passes as k samples of seed 42, one request per prompt
        assert events[:4] == [("seed", 42), ("generate", (1, K, "sc")),
                              ("seed", 42), ("generate", (1, K, "pq"))]  # fmt: skip
    assert [r.pass_index for r in results] == list(range(K))
    for r in results:
        assert r.seed == 42 + r.pass_index  # the pass's own seed, as the store keys it
        drawn = r.extra.get("drawn", {})
        for which in ("sc", "pq"):
            used = drawn.get(which, {"seed": r.seed, "sample": 0})
            assert (used["seed"], which) in drawn_by, (r.pass_index, which, used)
            if r.attempts > 1:  # random weights: the kept answer is the re-ask's
                assert used == {"seed": retry_seed(r.seed, 1), "sample": 0}
            elif mode == "batched":
                assert used == {"seed": 42, "sample": r.pass_index}
    assert all(r.attempts == 1 + retries for r in results)
