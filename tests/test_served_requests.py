"""What each card sends a server: the images (format, size, pixels) and the sampling fields.

The paper's 32B and 72B rows came from upstream's offline vLLM path: each image resized by
qwen-vl-utils (``smart_resize``, factor 28, then PIL's default resampling) and handed to vLLM
as a PIL image, with explicit ``SamplingParams`` (so repetition penalty 1.0). The served
cards must send exactly that, and every sampling field explicitly, so that no server
default applies. API cards send JPEG at PIL's default quality and no sampling field.

The expected images are computed here independently, from qwen-vl-utils' formula.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from conftest import make_row
from PIL import Image
from typer.testing import CliRunner

from editreward_bench.benchmark import load_benchmark
from editreward_bench.cli import app
from editreward_bench.judges import load_judge
from editreward_bench.judges.editscore import EditScoreJudge
from editreward_bench.judges.registry import builtin_cards
from editreward_bench.runner import RunOptions, run_evaluation
from editreward_bench.testing.fake_openai import FakeOpenAIServer

runner = CliRunner()

SERVED = ["editscore-32b", "editscore-72b", "qwen2.5-vl-32b", "qwen2.5-vl-72b"]
#: Upstream's vLLM SamplingParams: max_tokens 512, temperature 0.7, top_p 0.9, top_k 20,
#: everything else vLLM's default (repetition penalty 1.0); the seed is sent on its own.
VLLM_SAMPLING = {
    "temperature": 0.7, "top_p": 0.9, "top_k": 20, "max_tokens": 512, "repetition_penalty": 1.0,
}  # fmt: skip
#: Upstream's transformers path: its generate() arguments on top of the model's generation
#: config, whose repetition penalty is 1.05 for Qwen2.5-VL-Instruct and 1.0 for Qwen3-VL.
TRANSFORMERS_SAMPLING = {
    "editscore-7b": {**VLLM_SAMPLING, "repetition_penalty": 1.05},
    "qwen2.5-vl-7b": {**VLLM_SAMPLING, "repetition_penalty": 1.05},
    "editscore-qwen3-vl-4b": VLLM_SAMPLING,
    "editscore-qwen3-vl-8b": VLLM_SAMPLING,
}
MODELS = [
    "editscore-32b", "editscore-72b", "Qwen/Qwen2.5-VL-32B-Instruct",
    "Qwen/Qwen2.5-VL-72B-Instruct", "gpt-4.1", "editscore-7b", "Qwen/Qwen2.5-VL-7B-Instruct",
    "editscore-qwen3-vl-4b", "editscore-qwen3-vl-8b",
]  # fmt: skip


# --------------------------------------------------------------------------- expected images


def qwen_vl_utils_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) by qwen-vl-utils' smart_resize with its defaults for Qwen2.5-VL."""
    factor, min_pixels, max_pixels = 28, 4 * 28 * 28, 16384 * 28 * 28
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = math.floor(height / beta / factor) * factor
        w_bar = math.floor(width / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return w_bar, h_bar


def fetch_image(image: Image.Image) -> Image.Image:
    """qwen_vl_utils.fetch_image on a PIL image: RGB, then ``image.resize((w, h))``."""
    image = image.convert("RGB")
    return image.resize(qwen_vl_utils_size(*image.size))


def via_jpeg(image: Image.Image) -> Image.Image:
    """The image as a server decodes PIL's default-quality JPEG of it."""
    buf = BytesIO()
    image.convert("RGB").save(buf, format="JPEG")
    return Image.open(BytesIO(buf.getvalue())).convert("RGB")


def noise(width: int, height: int, seed: int) -> bytes:
    """A PNG of random pixels: any resampling difference shows in them."""
    rng = random.Random(seed)
    image = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    buf = BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def fingerprint(image: Image.Image) -> tuple[list[int], str]:
    return list(image.size), hashlib.sha256(image.convert("RGB").tobytes()).hexdigest()


#: (source, edited A, edited B) sizes: not multiples of 28 (1010 / 28 rounds down, 690 / 28
#: up); an edit of another size than its source (the harness resizes it to the source's size
#: first); a source below 4 vision tokens.
ROWS = [
    ((1010, 690), (1010, 690), (640, 480)),
    ((30, 20), (30, 20), (50, 40)),
]


@pytest.fixture
def bench(parquet_bench) -> Any:
    rows = []
    for i, sizes in enumerate(ROWS):
        source, a, b = (noise(w, h, seed=10 * i + j) for j, (w, h) in enumerate(sizes))
        rows.append(make_row((f"a{i}", f"b{i}"), instruction=f"Edit {i}.", source=source,
                             edited=(a, b)))  # fmt: skip
    return load_benchmark(parquet_bench(rows))


def expected_images(bench: Any, transform: Any) -> tuple[set[Any], set[Any]]:
    """(SC image pairs, PQ images) each candidate must be sent, as (size, pixel digest)."""
    sc, pq = set(), set()
    for candidate in bench.candidates.values():
        with Image.open(BytesIO(candidate.source_bytes())) as s:
            source = s.convert("RGB")
        with Image.open(BytesIO(candidate.edited_bytes())) as e:
            edited = e.convert("RGB")
        if edited.size != source.size:  # the harness: edited resized to the source's size
            edited = edited.resize(source.size)
        src, edit = fingerprint(transform(source)), fingerprint(transform(edited))
        sc.add((tuple(src[0]), src[1], tuple(edit[0]), edit[1]))
        pq.add((tuple(edit[0]), edit[1]))
    return sc, pq


def run(bench: Any, judge: str, server: FakeOpenAIServer, tmp_path: Path, **kw: Any) -> Any:
    options = RunOptions(
        base_urls=[server.url], store=tmp_path / "store.sqlite", progress=False, n_bootstrap=0,
        **kw,
    )  # fmt: skip
    run_evaluation(bench, judge, options, out=tmp_path / "run")
    return server.log.snapshot()


def seen_images(entries: list[dict[str, Any]]) -> tuple[set[Any], set[Any]]:
    sc, pq = set(), set()
    for e in entries:
        info = [(tuple(i["size"]), i["pixels"]) for i in e["image_info"]]
        if e["kind"] == "sc":
            sc.add((*info[0], *info[1]))
        else:
            pq.add(info[0])
    return sc, pq


@pytest.fixture
def server():
    with FakeOpenAIServer(models=MODELS, mode="hash", record_images=True) as srv:
        yield srv


# --------------------------------------------------------------------------- the tests


def test_the_expected_sizes_are_resized_ones() -> None:
    """The test images do get resized, through both of smart_resize's branches."""
    assert qwen_vl_utils_size(1010, 690) == (1008, 700)
    assert qwen_vl_utils_size(30, 20) == (84, 56)


@pytest.mark.parametrize("judge", ["editscore-72b", "qwen2.5-vl-72b"])
def test_served_cards_send_upstreams_vllm_images_and_sampling(
    judge: str, bench, server, tmp_path: Path
) -> None:
    entries = run(bench, judge, server, tmp_path, k=2)
    assert entries and all(e["fault"] is None for e in entries)
    for e in entries:
        for info in e["image_info"]:
            assert info["media_type"] == "image/png" and info["format"] == "PNG", info
            assert info["mode"] == "RGB"
        assert e["sampling"] == VLLM_SAMPLING
        assert e["seed"] == 42 and e["n"] == 2
        assert set(e["keys"]) == {"model", "messages", "n", "seed", *VLLM_SAMPLING}
    assert seen_images(entries) == expected_images(bench, fetch_image)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    settings = manifest["judge"]["settings"]
    assert settings["image_format"] == "png" and settings["pre_resize"] is True
    assert settings["repetition_penalty"] == 1.0
    assert manifest["judge"]["paper_path"] == "vllm"


def test_api_cards_send_jpeg_at_the_images_size_and_no_sampling(
    bench, server, tmp_path: Path
) -> None:
    entries = run(bench, "gpt-4.1", server, tmp_path, k=1)
    assert entries
    for e in entries:
        for info in e["image_info"]:
            assert info["media_type"] == "image/jpeg" and info["format"] == "JPEG", info
        assert e["sampling"] == {} and e["seed"] is None
        assert set(e["keys"]) == {"model", "messages"}
    assert seen_images(entries) == expected_images(bench, via_jpeg)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    settings = manifest["judge"]["settings"]
    assert settings["image_format"] == "jpeg" and settings["pre_resize"] is False


@pytest.mark.parametrize("judge", sorted(TRANSFORMERS_SAMPLING))
def test_transformers_cards_served_send_their_upstream_paths_sampling(
    judge: str, bench, server, tmp_path: Path
) -> None:
    """``--backend openai`` on a local card: the transformers path's sampling, explicitly;
    the images as the card's defaults say (JPEG at their own size) unless overridden."""
    entries = run(bench.subset(1), judge, server, tmp_path, k=1, backend="openai")
    assert entries
    for e in entries:
        assert e["sampling"] == TRANSFORMERS_SAMPLING[judge]
        assert all(i["format"] == "JPEG" for i in e["image_info"])


def test_a_local_card_served_can_send_upstreams_images(bench, server, tmp_path: Path) -> None:
    entries = run(bench, "editscore-7b", server, tmp_path, k=1, backend="openai",
                  backend_options={"image_format": "png", "pre_resize": True})  # fmt: skip
    assert all(i["format"] == "PNG" for e in entries for i in e["image_info"])
    assert seen_images(entries) == expected_images(bench, fetch_image)


def test_every_card_names_its_upstream_path_and_matches_it() -> None:
    for card in builtin_cards():
        if card.paper_judge is None:
            assert card.paper_path is None, card.name
            continue
        judge = load_judge(card.name)
        assert isinstance(judge, EditScoreJudge)
        options, sampling = judge.config.backend, judge.config.sampling.as_dict()
        if card.paper_path == "vllm":
            assert card.name in SERVED
            assert sampling == VLLM_SAMPLING, card.name
            assert (options.image_format, options.pre_resize) == ("png", True), card.name
        elif card.paper_path == "transformers":
            expected = dict(TRANSFORMERS_SAMPLING[card.name])
            expected["max_new_tokens"] = expected.pop("max_tokens")
            assert sampling == expected, card.name
        else:
            assert card.paper_path == "api", card.name
            assert sampling == {}, card.name
            assert (options.image_format, options.pre_resize) == ("jpeg", False), card.name


@pytest.mark.parametrize("judge", SERVED)
def test_serve_command_leaves_no_sampling_default_to_the_model(judge: str) -> None:
    result = runner.invoke(app, ["serve-command", judge])
    assert result.exit_code == 0, result.output
    assert "--generation-config vllm" in result.output
    # and renders erb's content parts as parts (tests/test_chat_template.py)
    assert "--chat-template-content-format openai" in result.output
