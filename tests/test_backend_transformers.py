"""The local transformers backend, on a tiny Qwen2.5-VL built from a config (no downloads)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "torch", reason="the transformers backend needs torch (pip install 'erb[local]')"
)
pytest.importorskip(
    "transformers", reason="the transformers backend needs transformers (pip install 'erb[local]')"
)
pytest.importorskip("peft", reason="LoRA adapters need peft (pip install 'erb[local]')")

import pyarrow.parquet as pq
import torch
from PIL import Image
from tiny_qwen import (
    FIXED_ANSWER,
    build_tiny_lora,
    build_tiny_qwen,
    train_fixed_answer,
)
from typer.testing import CliRunner

from editreward_bench.backends.transformers_local import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MIN_PIXELS,
    ImageTextProcessor,
    TransformersBackend,
    load_processor,
    qwen25_prompt,
)
from editreward_bench.benchmark import load_benchmark
from editreward_bench.cli import app
from editreward_bench.judges import JudgeLoadError, JudgeTask, load_judge
from editreward_bench.judges.base import GenRequest, GenResponse, ImageCandidate
from editreward_bench.judges.cards import CardError
from editreward_bench.judges.editscore import EditScoreJudge, load_prompts
from editreward_bench.vision import smart_resize

runner = CliRunner()
INSTRUCTION = "Make it yellow."


def _candidates(mini: Any, n: int) -> list[Any]:
    return list(mini.candidates.values())[:n]


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A random tiny model, a random LoRA, a trained copy, and the images it was trained on."""
    root = tmp_path_factory.mktemp("tiny_qwen")
    model = build_tiny_qwen(root / "model")
    lora = build_tiny_lora(model, root / "lora")
    source = Image.new("RGB", (64, 48), (10, 10, 200))
    edited = Image.new("RGB", (64, 48), (200, 200, 0))
    source.save(root / "source.png")
    edited.save(root / "edited.png")
    prompts = load_prompts()
    examples = [((source, edited), prompts.sc(INSTRUCTION)), ((edited,), prompts.pq())]
    trained = train_fixed_answer(model, root / "trained", examples)
    return {
        "model": model,
        "lora": lora,
        "trained": trained,
        "source": root / "source.png",
        "edited": root / "edited.png",
    }


def greedy_card(tmp_path: Path, model: Path, max_new_tokens: int = 64, **options: Any) -> Path:
    lines = [
        'name = "tiny-greedy"',
        'protocol = "editscore"',
        'backend = "transformers"',
        f"model = {json.dumps(str(model))}",
        "[sampling]",
        "temperature = 0.0",
        f"max_new_tokens = {max_new_tokens}",
        "[options]",
        'layout = "qwen2.5-vl"',
        *(f"{k} = {json.dumps(v)}" for k, v in options.items()),
    ]
    path = tmp_path / "tiny-greedy.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def backend_for(model: Path, adapter: Path | None = None, **kw: Any) -> TransformersBackend:
    kw.setdefault("sampling", {"temperature": 0.0, "max_new_tokens": 24})
    kw.setdefault("layout", "qwen2.5-vl")
    kw.setdefault("device_map", "cpu")  # float32 on the CPU: exact comparisons hold everywhere
    return TransformersBackend(str(model), str(adapter) if adapter else None, **kw)


def requests_for(
    backend: TransformersBackend, candidates: list[Any], seed: int = 42
) -> list[GenRequest]:
    prompts = load_prompts()
    requests = []
    for c in candidates:
        images = backend.prepare_images(list(c.load_images()))
        requests.append(GenRequest(images, prompts.sc(c.instruction), 1, seed))
        requests.append(GenRequest(images[1:], prompts.pq(), 1, seed))
    return requests


# --------------------------------------------------------------------------- the real path


def test_load_judge_builds_without_loading_then_preflight_loads(tiny: dict[str, Path]) -> None:
    judge = load_judge(
        "editscore-7b", model=str(tiny["model"]), adapter=str(tiny["lora"]), batch_size=2
    )
    assert isinstance(judge, EditScoreJudge)
    backend = judge.backend
    assert isinstance(backend, TransformersBackend)
    # Exact mode (the default) asks for one pass per request: never n = k from one seed.
    assert not backend.supports_n and backend.batch_size == 2 and judge.batch_size == 2
    described = backend.describe()
    assert described == {
        "backend": "transformers",
        "model": str(tiny["model"]),
        "adapter": str(tiny["lora"]),
        "sampling": {
            "temperature": 0.7,
            "top_p": 0.9,
            "top_k": 20,
            "max_new_tokens": 512,
            "repetition_penalty": 1.05,
        },
        "layout": "qwen2.5-vl",
        "min_pixels": DEFAULT_MIN_PIXELS,
        "max_pixels": DEFAULT_MAX_PIXELS,
        "dtype": "float32" if not torch.cuda.is_available() else described["dtype"],
        "merge_adapter": True,
        "mode": "exact",
        "batch_size": 2,
    }
    fingerprint = judge.fingerprint()
    assert backend._loaded is None  # describe() and fingerprint() do not load the model
    # Exact mode generates one sequence per call: the batch size is not in the key.
    identity = {"model": str(tiny["model"]), "adapter": str(tiny["lora"])}
    assert load_judge("editscore-7b", **identity, batch_size=5).fingerprint() == fingerprint
    # Sampling in batches shares one random stream per batch: the batch size is in the key.
    batched = [
        load_judge("editscore-7b", **identity, batch_size=size, mode="batched").fingerprint()
        for size in (2, 5)
    ]
    assert len({fingerprint, *batched}) == 3
    judge.preflight()
    assert backend._loaded is not None
    if not _torchvision_works():
        assert backend._loaded.processor_kind == "image-only"
    judge.close()
    assert backend._loaded is None


def test_settings_of_another_backend_are_refused_not_ignored(tiny: dict[str, Path]) -> None:
    model = str(tiny["model"])
    backend = load_judge("editscore-7b", model=model, batch_size=3, dtype="float32", min_pixels=784)
    assert isinstance(backend, EditScoreJudge) and isinstance(backend.backend, TransformersBackend)
    local = backend.backend
    assert local.batch_size == 3 and local.dtype == "float32"
    assert local.min_pixels == 784 and local.max_pixels == DEFAULT_MAX_PIXELS
    assert local.adapter == "EditScore/EditScore-7B"
    for wrong in ({"base_urls": ["http://x"]}, {"timeout": 3.0}, {"api_key_env": "KEY"}):
        with pytest.raises(
            CardError, match=r"is a setting of the openai backend.*--backend openai"
        ):
            load_judge("editscore-7b", model=model, **wrong)
    with pytest.raises(CardError, match=r"override for judge 'editscore-7b'.*'something_new'"):
        load_judge("editscore-7b", model=model, something_new=1)
    # A run-wide setting the backend does not have is fine where it is optional.
    load_judge("editscore-7b", model=model, optional={"concurrency": 16})


def test_evaluate_cli_with_random_weights_records_parse_failures(
    tiny: dict[str, Path], tmp_path: Path
) -> None:
    out, store = tmp_path / "run", tmp_path / "store.sqlite"
    result = runner.invoke(
        app,
        [
            "evaluate", "--judge", "editscore-7b", "--model", str(tiny["model"]),
            "--adapter", str(tiny["lora"]), "--dataset", "mini", "--limit", "6",
            "--store", str(store), "--out", str(out),
            # Kept short: one pass, no re-asking, one batch of 8 sequences per prompt kind.
            "--k", "1", "--max-retries", "0", "--batch-size", "8", "-o", "mode=batched",
            "--bootstrap", "50",
        ],
    )  # fmt: skip
    # Random weights answer random bytes: nothing parses, so the run is an error, not a result.
    assert result.exit_code == 2, result.output
    assert "no pass succeeded" in result.output and "x unparseable answer" in result.output
    assert not (out / "metrics.json").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "stopped" and manifest["k"] == 1
    judge = manifest["judge"]
    assert judge["backend_config"]["backend"] == "transformers"
    assert judge["backend_config"]["adapter"] == str(tiny["lora"])
    assert judge["settings"]["mode"] == judge["backend_config"]["mode"] == "batched"
    records = pq.read_table(out / "records.parquet").to_pylist()
    assert len(records) == len(load_benchmark("mini").subset(6).candidates)
    # Random weights answer random bytes: every pass is a recorded parse failure.
    for record in records:
        assert record["status"] == "failed"
        assert record["error"].startswith("unparseable"), record["error"]
        assert record["raw_sc"] is not None and record["raw_pq"] is not None
        assert record["prompt_tokens"] > 0 and record["completion_tokens"] > 0


def test_score_cli_with_the_trained_model(tiny: dict[str, Path]) -> None:
    result = runner.invoke(
        app,
        [
            "score", str(tiny["source"]), str(tiny["edited"]), "--judge", "editscore-7b",
            "--instruction", INSTRUCTION, "--model", str(tiny["trained"]), "--adapter", "none",
            "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    assert summary["passes_ok"] == 1
    # SC [20, 15] and PQ [20, 15] on 0..25.
    assert summary["prompt_following"] == pytest.approx(8.0)
    assert summary["consistency"] == pytest.approx(6.0)
    assert summary["perceptual_quality"] == pytest.approx(6.0)
    assert summary["overall"] == pytest.approx(6.0)
    (record,) = summary["passes"]
    assert record["raw_sc"] == FIXED_ANSWER and record["raw_pq"] == FIXED_ANSWER


@pytest.mark.parametrize("mode", ["exact", "batched"])
def test_avg_k_through_the_judge(tiny: dict[str, Path], mode: str) -> None:
    judge = load_judge("editscore-7b", model=str(tiny["trained"]), adapter="none", mode=mode)
    try:
        result = judge.score(INSTRUCTION, tiny["source"], tiny["edited"], k=3)
    finally:
        judge.close()
    assert result["passes_ok"] == 3
    assert [p["seed"] for p in result["passes"]] == [42, 43, 44]
    assert result["overall"] == pytest.approx(6.0)
    # Batched mode draws the 3 passes as 3 samples of seed 42, and each record says so.
    drawn = [p["extra"].get("drawn") for p in result["passes"]]
    if mode == "exact":
        assert drawn == [None, None, None]
    else:
        assert drawn == [None] + [
            {"pq": {"seed": 42, "sample": j}, "sc": {"seed": 42, "sample": j}} for j in (1, 2)
        ]


# --------------------------------------------------------------------------- batching


def test_batched_and_one_at_a_time_give_the_same_greedy_results(
    tiny: dict[str, Path], tmp_path: Path, mini: Any
) -> None:
    card = greedy_card(tmp_path, tiny["trained"], device_map="cpu", dtype="float32")
    trained = [
        ImageCandidate(f"edit{i}", INSTRUCTION, tiny["source"], tiny["edited"]) for i in range(3)
    ]
    candidates = [*trained, *_candidates(mini, 1)]  # a mini candidate: other images, other text
    tasks = [JudgeTask(c, (0,), (42,)) for c in candidates]
    results: dict[Any, Any] = {}
    for batch_size in (8, 1):
        judge = load_judge(str(card), batch_size=batch_size, mode="batched")
        assert judge.batch_size == batch_size
        try:
            results[batch_size] = asyncio.run(judge.ajudge(tasks))
        finally:
            judge.close()
    judge = load_judge(str(card), batch_size=8)  # exact mode: one sequence per call
    try:
        results["exact"] = asyncio.run(judge.ajudge(tasks))
    finally:
        judge.close()
    batched, single = results[8], results[1]
    assert [r.status for r in batched] == [r.status for r in single]
    for a, b in [*zip(batched, single, strict=True), *zip(batched, results["exact"], strict=True)]:
        assert (a.key, a.raw_sc, a.raw_pq) == (b.key, b.raw_sc, b.raw_pq)
        assert (a.prompt_following, a.consistency, a.perceptual_quality, a.overall) == (
            b.prompt_following, b.consistency, b.perceptual_quality, b.overall,
        )  # fmt: skip
        assert (a.prompt_tokens, a.completion_tokens) == (b.prompt_tokens, b.completion_tokens)
    for result in batched[: len(trained)]:
        assert result.status == "ok" and result.raw_sc == FIXED_ANSWER
        assert result.overall == pytest.approx(6.0)


def test_batched_greedy_matches_single_on_random_weights(tiny: dict[str, Path], mini: Any) -> None:
    """Left padding, mixed one- and two-image prompts: the raw answers match token for token."""
    backend = backend_for(tiny["model"], tiny["lora"], batch_size=8, mode="batched")
    requests = requests_for(backend, _candidates(mini, 3))
    batched = asyncio.run(backend.generate(requests))
    backend.batch_size = 1
    single = asyncio.run(backend.generate(requests))
    assert all(r.error is None for r in batched + single)
    assert [r.texts for r in batched] == [r.texts for r in single]
    assert [r.prompt_tokens for r in batched] == [r.prompt_tokens for r in single]
    # Two-image prompts are longer than one-image ones: the batch really was padded.
    assert len({r.prompt_tokens for r in batched}) > 1
    # n samples under greedy decoding: the one answer, n times.
    (triple,) = asyncio.run(
        backend.generate([GenRequest(requests[0].images, requests[0].text, 3, 7)])
    )
    assert triple.texts == batched[0].texts * 3
    backend.close()


def test_n_samples_in_a_batch_keep_their_own_images(tiny: dict[str, Path], mini: Any) -> None:
    """num_return_sequences on a batch: each copy of a prompt sees that prompt's images.

    The random model's answers hardly depend on the images, so this compares the
    first step's logits of every returned sequence with the prompt's own, alone.
    """
    backend = backend_for(tiny["model"])
    loaded = backend._load()
    model = loaded.model
    (candidate,) = _candidates(mini, 1)
    images = backend.prepare_images(list(candidate.load_images()))
    text = load_prompts().sc(candidate.instruction)
    # Same text, images swapped, plus a one-image prompt: only the images tell them apart.
    requests = [
        GenRequest(images, text, 3, 0),
        GenRequest(images[::-1], text, 3, 0),
        GenRequest(images[1:], load_prompts().pq(), 3, 0),
    ]
    alone = []
    with torch.inference_mode():
        for request in requests:
            model.model.rope_deltas = None
            alone.append(model(**backend.encode([request])).logits[0, -1])
        output = model.generate(
            **backend.encode(requests), do_sample=True, top_k=1, max_new_tokens=1,
            num_return_sequences=3, output_logits=True, return_dict_in_generate=True,
            pad_token_id=loaded.pad_id,
        )  # fmt: skip
    first = output.logits[0]
    assert first.shape[0] == 9
    assert (alone[0] - alone[1]).abs().max() > 1e-4  # the images do change the logits
    for i, reference in enumerate(alone):
        for row in range(3 * i, 3 * i + 3):
            assert torch.allclose(first[row], reference, atol=2e-5), (i, row)
    # Through the backend: sampling with top_k=1 is greedy, so all n samples agree.
    sampled = backend_for(
        tiny["model"], batch_size=9, mode="batched",
        sampling={"temperature": 1.0, "top_k": 1, "max_new_tokens": 16},
    )  # fmt: skip
    greedy = backend_for(
        tiny["model"], batch_size=9, mode="batched",
        sampling={"temperature": 0.0, "max_new_tokens": 16},
    )  # fmt: skip
    many = asyncio.run(sampled.generate(requests))
    once = asyncio.run(greedy.generate([GenRequest(r.images, r.text, 1, 0) for r in requests]))
    for response, single in zip(many, once, strict=True):
        assert response.error is None and response.texts == single.texts * 3
        assert response.prompt_tokens == single.prompt_tokens
        assert response.completion_tokens == 3 * (single.completion_tokens or 0)
    for item in (backend, sampled, greedy):
        item.close()


def test_sampling_is_seeded(tiny: dict[str, Path], mini: Any) -> None:
    backend = backend_for(
        tiny["model"], sampling={"temperature": 1.0, "top_k": 50, "max_new_tokens": 12}
    )
    request = requests_for(backend, _candidates(mini, 1))[1]
    first = asyncio.run(
        backend.generate([request, GenRequest(request.images, request.text, 2, 99)])
    )
    again = asyncio.run(backend.generate([request]))
    assert first[0].texts == again[0].texts  # same seed, same batch: same answer
    assert len(first[1].texts) == 2 and first[1].completion_tokens is not None
    assert first[1].texts[0] != first[0].texts[0]
    backend.close()


def test_a_failing_batch_fails_only_its_requests(tiny: dict[str, Path], mini: Any) -> None:
    sampling = {"temperature": 1.0, "max_new_tokens": 8}
    backend = backend_for(tiny["model"], batch_size=4, sampling=sampling)
    good = requests_for(backend, _candidates(mini, 1), seed=1)
    bad = GenRequest(("not an image",), "text", 1, 2)  # sampled, another seed: its own batch
    responses = asyncio.run(backend.generate([*good, bad]))
    assert [r.error is None for r in responses] == [True, True, False]
    assert responses[2].texts == [] and responses[2].error
    backend.close()


def test_out_of_memory_splits_the_batch(
    tiny: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = backend_for(tiny["model"], batch_size=4, mode="batched")
    sizes: list[int] = []

    def fake_run(batch: list[GenRequest], n: int, seed: int) -> list[GenResponse]:
        sizes.append(len(batch))
        if len(batch) > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return [GenResponse(texts=[batch[0].text] * n)]

    monkeypatch.setattr(backend, "_run_batch", fake_run)
    monkeypatch.setattr(backend, "_load", lambda: None)
    requests = [GenRequest((), f"r{i}", 1, 0) for i in range(4)]
    responses = asyncio.run(backend.generate(requests))
    assert [r.texts for r in responses] == [["r0"], ["r1"], ["r2"], ["r3"]]
    assert sizes == [4, 2, 1, 1, 2, 1, 1]


def test_unmerged_adapter_answers_like_the_merged_one(tiny: dict[str, Path], mini: Any) -> None:
    answers = []
    for merge in (True, False):
        backend = backend_for(tiny["model"], tiny["lora"], merge_adapter=merge)
        answers.append(asyncio.run(backend.generate(requests_for(backend, _candidates(mini, 1)))))
        assert backend.describe()["merge_adapter"] is merge
        backend.close()
    assert [r.texts for r in answers[0]] == [r.texts for r in answers[1]]
    # And the adapter matters: without it the answers differ.
    plain = backend_for(tiny["model"])
    without = asyncio.run(plain.generate(requests_for(plain, _candidates(mini, 1))))
    assert [r.texts for r in without] != [r.texts for r in answers[0]]
    plain.close()


# --------------------------------------------------------------------------- prompts, images


def test_qwen25_layout_is_upstreams_prompt_string() -> None:
    assert qwen25_prompt("TEXT", 2) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        "<img1>: <|vision_start|><|image_pad|><|vision_end|>"
        "<img2>: <|vision_start|><|image_pad|><|vision_end|>"
        "TEXT<|im_end|>\n<|im_start|>assistant\n"
    )


def test_chat_template_layout(tiny: dict[str, Path], mini: Any) -> None:
    backend = backend_for(tiny["model"], layout="chat-template")
    assert backend.min_pixels is None  # the processor alone resizes, as upstream's Qwen3-VL path
    (candidate,) = _candidates(mini, 1)
    images = backend.prepare_images(list(candidate.load_images()))
    assert [i.size for i in images] == [i.size for i in candidate.load_images()]
    request = GenRequest(images, "TEXT", 1, 0)
    backend.preflight()
    rendered = backend.render(request, backend._load().processor)
    assert rendered == qwen25_prompt("TEXT", 2).replace("<img1>: ", "").replace("<img2>: ", "")
    (response,) = asyncio.run(backend.generate([request]))
    assert response.error is None and len(response.texts) == 1
    backend.close()


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((96, 96), (84, 84)),
        ((10, 10), (56, 56)),  # below 4 tokens: scaled up
        ((1024, 768), (1036, 756)),
        ((8000, 6000), (4116, 3080)),  # above 16384 tokens: scaled down
    ],
)
def test_smart_resize_matches_qwen_vl_utils(
    size: tuple[int, int], expected: tuple[int, int]
) -> None:
    width, height = size
    h, w = smart_resize(height, width)
    assert (w, h) == expected
    assert h % 28 == 0 and w % 28 == 0
    assert DEFAULT_MIN_PIXELS <= h * w <= DEFAULT_MAX_PIXELS


def test_prepare_images_resizes_once_with_pil_defaults(tiny: dict[str, Path]) -> None:
    backend = backend_for(tiny["model"], max_pixels=28 * 28 * 16)
    image = Image.new("L", (300, 200), 128)
    (prepared,) = backend.prepare_images([image])
    assert prepared.mode == "RGB" and prepared.size == (112, 84)
    assert list(prepared.getdata()) == list(image.convert("RGB").resize((112, 84)).getdata())
    assert backend._loaded is None  # only the config was read


def _torchvision_works() -> bool:
    try:
        import torchvision  # noqa: F401
    except Exception:
        return False
    return True


def test_processor_fallback_without_torchvision(
    tiny: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import transformers

    real = None
    if _torchvision_works():
        real, kind = load_processor(str(tiny["model"]))
        assert kind == "auto"
    monkeypatch.setitem(sys.modules, "torchvision", None)  # `import torchvision` now fails

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise ImportError("Qwen2VLVideoProcessor requires the Torchvision library")

    monkeypatch.setattr(transformers.AutoProcessor, "from_pretrained", refuse)
    processor, kind = load_processor(str(tiny["model"]))
    assert kind == "image-only" and isinstance(processor, ImageTextProcessor)
    processor.tokenizer.padding_side = "left"
    images = [Image.new("RGB", (84, 84), (255, 0, 0)), Image.new("RGB", (56, 112), (0, 255, 0))]
    texts = [qwen25_prompt("two", 2), qwen25_prompt("one", 1)]
    out = processor(text=texts, images=[*images, images[1]], padding=True, return_tensors="pt")
    grid = out["image_grid_thw"].tolist()
    assert grid == [[1, 6, 6], [1, 8, 4], [1, 8, 4]]
    image_id = processor.image_token_id
    counts = (out["input_ids"] == image_id).sum(dim=1).tolist()
    assert counts == [36 // 4 + 32 // 4, 32 // 4]
    assert out["pixel_values"].shape[0] == 36 + 32 + 32
    assert torch.equal(out["mm_token_type_ids"], (out["input_ids"] == image_id).long())
    # Left padding: the shorter prompt is padded at the start.
    assert out["attention_mask"][1, 0] == 0 and out["attention_mask"][:, -1].tolist() == [1, 1]
    decoded = processor.batch_decode(out["input_ids"][1:], skip_special_tokens=False)[0]
    assert decoded.endswith("one<|im_end|>\n<|im_start|>assistant\n")
    if real is not None:  # with torchvision: the fallback matches the real processor
        real.tokenizer.padding_side = "left"
        expected = real(text=texts, images=[*images, images[1]], padding=True, return_tensors="pt")
        for key in ("input_ids", "attention_mask", "pixel_values", "image_grid_thw"):
            assert torch.equal(torch.as_tensor(out[key]), torch.as_tensor(expected[key])), key


def _image_only_reference(image_processor: Any, tokenizer: Any) -> Any:
    """transformers' own Qwen2.5-VL processor, minus the video processor (which needs torchvision)."""
    from transformers import Qwen2_5_VLProcessor
    from transformers.processing_utils import ProcessorMixin

    class ImageOnlyQwen25Processor(Qwen2_5_VLProcessor):
        def __init__(
            self, image_processor: Any = None, tokenizer: Any = None, chat_template: Any = None
        ):
            self.image_token, self.video_token = "<|image_pad|>", "<|video_pad|>"
            self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
            self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
            ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

    return ImageOnlyQwen25Processor(image_processor, tokenizer)


def test_fallback_processor_matches_transformers_processing(tiny: dict[str, Path]) -> None:
    fallback = ImageTextProcessor.from_pretrained(str(tiny["model"]))
    try:
        reference = _image_only_reference(fallback.image_processor, fallback.tokenizer)
    except Exception as exc:  # transformers internals moved: nothing to compare with
        pytest.skip(f"cannot build transformers' processor without a video processor: {exc}")
    images = [Image.new("RGB", (84, 140), (9, 99, 199)), Image.new("RGB", (112, 56), (200, 1, 2))]
    texts = [qwen25_prompt("first", 2), qwen25_prompt("second, longer text", 0)]
    ours = fallback(
        text=texts, images=images, padding=True, padding_side="left", return_tensors="pt"
    )
    theirs = reference(
        text=texts, images=images, padding=True, padding_side="left", return_tensors="pt"
    )
    for key in ("input_ids", "attention_mask", "pixel_values", "image_grid_thw"):
        assert torch.equal(torch.as_tensor(ours[key]), torch.as_tensor(theirs[key])), key
    if "mm_token_type_ids" in theirs:
        assert torch.equal(ours["mm_token_type_ids"], torch.as_tensor(theirs["mm_token_type_ids"]))


# --------------------------------------------------------------------------- errors


def test_missing_model_folder_says_what_to_do(tmp_path: Path) -> None:
    judge = load_judge("editscore-7b", model=str(tmp_path / "no-such-model"), adapter="none")
    with pytest.raises(JudgeLoadError) as info:
        judge.preflight()
    message = str(info.value)
    assert "no-such-model' does not exist" in message and "--model" in message
    assert "download" not in message  # a missing folder, not a hub id to fetch


def test_uncached_hub_model_says_what_to_download() -> None:
    judge = load_judge("editscore-7b", model="erb-tests/not-a-cached-model")
    with pytest.raises(JudgeLoadError) as info:
        judge.preflight()
    message = str(info.value)
    assert "`hf download erb-tests/not-a-cached-model`" in message
    assert "huggingface-cli" not in message  # deprecated
    assert "--model" in message


def test_missing_adapter_says_what_to_do(tiny: dict[str, Path], tmp_path: Path) -> None:
    judge = load_judge("editscore-7b", model=str(tiny["model"]), adapter="erb-tests/no-adapter")
    with pytest.raises(JudgeLoadError) as info:
        judge.preflight()
    message = str(info.value)
    assert "hf download erb-tests/no-adapter" in message and "--adapter" in message


def test_missing_model_fails_the_cli_before_the_run(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "evaluate", "--judge", "editscore-7b", "--model", "erb-tests/not-a-cached-model",
            "--dataset", "mini", "--limit", "2", "--store", str(tmp_path / "s.sqlite"),
            "--out", str(tmp_path / "run"),
        ],
    )  # fmt: skip
    assert result.exit_code != 0
    assert "hf download erb-tests/not-a-cached-model" in result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without a GPU")
@pytest.mark.parametrize("option", [{"dtype": "float16"}, {"device_map": "cuda"}])
def test_gpu_only_settings_without_a_gpu(tiny: dict[str, Path], option: dict[str, Any]) -> None:
    backend = backend_for(tiny["model"], **option)
    with pytest.raises(JudgeLoadError, match="needs a CUDA GPU"):
        backend.preflight()


def test_unknown_layout_and_dtype_are_refused(tiny: dict[str, Path]) -> None:
    with pytest.raises(JudgeLoadError, match="layout"):
        backend_for(tiny["model"], layout="sideways")
    with pytest.raises(JudgeLoadError, match="dtype"):
        backend_for(tiny["model"], dtype="int3")


# --------------------------------------------------------------------------- GPU


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch sees none)")
def test_gpu_bf16_batch_of_eight(tiny: dict[str, Path], mini: Any) -> None:
    backend = backend_for(
        tiny["model"], tiny["lora"], dtype="bfloat16", device_map="auto", batch_size=8,
        mode="batched", sampling={"temperature": 0.7, "top_p": 0.9, "top_k": 20, "max_new_tokens": 32},
    )  # fmt: skip
    assert backend.describe()["dtype"] == "bfloat16"
    requests = requests_for(backend, _candidates(mini, 4))
    assert len(requests) == 8
    responses = asyncio.run(backend.generate(requests))
    loaded = backend._loaded
    assert loaded is not None and loaded.device.type == "cuda"
    assert next(loaded.model.parameters()).dtype == torch.bfloat16
    assert all(r.error is None and len(r.texts) == 1 for r in responses)
    assert all(r.completion_tokens and r.completion_tokens <= 32 for r in responses)
    backend.close()
