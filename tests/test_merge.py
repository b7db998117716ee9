"""Serving recipes and ``erb merge-adapter`` on a tiny Qwen2.5-VL and LoRA adapters built offline.

- ``erb serve-command`` prints the merge-then-serve recipe for adapter cards; the LoRA
  recipe only with ``--lora``, and never for an adapter that touches the vision tower
  (by its ``target_modules``, as a list or a regex, or by its saved weights) unless
  ``--tower-lora``; SGLang's forms, and SGLang's ``<base>:<adapter>`` request name.
- ``erb merge-adapter``: the merged model answers as the adapter-applied one (logits
  within a stated float32 tolerance), the cache is keyed by content (reused, renewed on
  a changed adapter file, shared by two copies of one adapter), and a missing or
  mismatched base model, too little disk space and an interruption are handled.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import namedtuple
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from editreward_bench import merge
from editreward_bench.cli import app
from editreward_bench.judges import load_judge
from editreward_bench.testing.fake_openai import FakeOpenAIServer

runner = CliRunner()

#: Merged (x·(W + s·B·A)) and unmerged (x·W + s·(x·A)·B) float32 forward passes differ only
#: by rounding: the same products summed in another order. A dot product of K terms carries
#: a relative error of about sqrt(K)·eps at most in practice (K <= 128 here, eps = 1.2e-7 for
#: float32: ~1.4e-6); two layers and a softmax do not amplify it much. Measured: <= 4.2e-7
#: on logits of magnitude ~0.6. 1e-5 (about 80 float32 ulps at 1.0) leaves room for other
#: CPUs' kernels and is still five orders of magnitude below the adapter's own effect
#: (~0.8, asserted too), so a merge that lost any part of the adapter cannot pass.
LOGITS_ATOL = 1e-5
LOGITS_RTOL = 1e-5


def erb(*args: str, **env: str) -> Any:
    return runner.invoke(app, list(args), env=env or None)


def error_line(result: Any, *needles: str) -> str:
    """Exit 2, no traceback, exactly one ``error:`` line (progress lines may precede it)."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.output
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny base model, an LM-only LoRA, a LoRA that touches the vision tower too, and a
    base model the adapters do not fit (another MLP width)."""
    from tiny_qwen import build_tiny_lora, build_tiny_qwen

    root = tmp_path_factory.mktemp("tiny")
    base = build_tiny_qwen(root / "base")
    lora = build_tiny_lora(base, root / "lora")
    return {
        "root": root,
        "base": base,
        "lora": lora,
        "tower": build_tower_lora(base, root / "tower"),
        "other": build_other_base(root / "other"),
    }


def build_tower_lora(base: Path, folder: Path, seed: int = 3) -> Path:
    """A random LoRA on the language model and on the vision tower's attention and MLP."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2_5_VLForConditionalGeneration

    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(base), dtype=torch.float32)
    torch.manual_seed(seed)
    targets = r".*(language_model.*\.(q_proj|v_proj|down_proj)|visual.*\.(qkv|gate_proj))"
    config = LoraConfig(r=4, lora_alpha=8, target_modules=targets, init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(str(folder))
    return folder


def build_other_base(folder: Path) -> Path:
    """A tiny Qwen2.5-VL whose language MLP is narrower: the adapters' shapes do not fit it."""
    import torch
    from tiny_qwen import build_config, build_tokenizer, save_processor_files, token_ids
    from transformers import Qwen2_5_VLForConditionalGeneration

    tokenizer = build_tokenizer()
    config = build_config(token_ids(tokenizer))
    config.text_config.intermediate_size = 96
    torch.manual_seed(0)
    Qwen2_5_VLForConditionalGeneration(config).save_pretrained(str(folder))
    save_processor_files(folder, tokenizer)
    return folder


def adapter_copy(source: Path, folder: Path, **config: Any) -> Path:
    """A copy of an adapter folder with some adapter_config.json fields replaced."""
    shutil.copytree(source, folder)
    path = folder / "adapter_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **config}))
    return folder


@pytest.fixture
def count_merges(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every merge that actually runs (load, apply, merge, save) is appended here."""
    done: list[Path] = []
    real = merge._merge_into

    def counted(folder: Path, *args: Any) -> None:
        done.append(folder)
        real(folder, *args)

    monkeypatch.setattr(merge, "_merge_into", counted)
    return done


# --------------------------------------------------------------------------- recipes


def test_serve_command_prints_the_merge_then_the_merged_model() -> None:
    result = erb("serve-command", "editscore-72b")
    assert result.exit_code == 0, result.output
    merge_line, serve_line = result.output.strip().splitlines()
    assert merge_line == "MERGED=$(erb merge-adapter editscore-72b)"
    assert serve_line.startswith(
        'vllm serve "$MERGED" --served-model-name editscore-72b --dtype bfloat16 '
        "--tensor-parallel-size 4 "
    )
    for flag in ("--generation-config vllm", "--chat-template-content-format openai"):
        assert flag in serve_line
    assert "--enable-lora" not in result.output


def test_serve_command_sglang_forms(tiny: dict[str, Path]) -> None:
    merged = erb("serve-command", "editscore-72b", "--server", "sglang")
    assert merged.exit_code == 0, merged.output
    assert merged.output.splitlines()[1].startswith(
        'python -m sglang.launch_server --model-path "$MERGED" --served-model-name editscore-72b '
        "--dtype bfloat16 --tp-size 4 "
    )
    lora = erb("serve-command", "editscore-72b", "--server", "sglang", "--lora", "--adapter",
               str(tiny["lora"]))  # fmt: skip
    assert lora.exit_code == 0, lora.output
    assert lora.output.startswith(
        "python -m sglang.launch_server --model-path Qwen/Qwen2.5-VL-72B-Instruct --tp-size 4 "
    )
    assert f"--enable-lora --lora-paths editscore-72b={tiny['lora']} --max-lora-rank 4" in (
        lora.output
    )
    # SGLang asks for a LoRA module as <base>:<adapter>; a merged model by its served name.
    judge = load_judge("editscore-72b", server="sglang", lora=True)
    assert judge.backend.model == "Qwen/Qwen2.5-VL-72B-Instruct:editscore-72b"  # type: ignore[attr-defined]
    assert load_judge("editscore-72b", server="sglang").backend.model == "editscore-72b"  # type: ignore[attr-defined]
    assert load_judge("editscore-72b", lora=True).backend.model == "editscore-72b"  # type: ignore[attr-defined]


def test_evaluate_asks_sglang_for_a_lora_module_by_its_sglang_name(tmp_path: Path) -> None:
    sglang_name = "Qwen/Qwen2.5-VL-72B-Instruct:editscore-72b"
    common = ["evaluate", "--judge", "editscore-72b", "--dataset", "mini", "--limit", "2", "--k",
              "1", "--store", str(tmp_path / "s.sqlite"), "--bootstrap", "10"]  # fmt: skip
    with FakeOpenAIServer(models=[sglang_name]) as srv:
        ok = erb(*common, "--base-url", srv.url, "-o", "server=sglang", "-o", "lora=true",
                 "--out", str(tmp_path / "a"))  # fmt: skip
        assert ok.exit_code == 0, ok.output
        assert {e["model"] for e in srv.log.snapshot()} == {sglang_name}
        plain = erb(*common, "--base-url", srv.url, "--out", str(tmp_path / "b"))
    assert plain.exit_code == 2 and "'editscore-72b' is not served" in plain.output


def test_the_lora_recipe_is_printed_for_an_adapter_that_spares_the_vision_tower(
    tiny: dict[str, Path],
) -> None:
    result = erb("serve-command", "editscore-72b", "--lora", "--adapter", str(tiny["lora"]))
    assert result.exit_code == 0, result.output
    assert result.output.startswith(
        "vllm serve Qwen/Qwen2.5-VL-72B-Instruct --enable-lora --lora-modules "
        f"editscore-72b={tiny['lora']} --max-lora-rank 8 "  # rank 4: vLLM's smallest above is 8
    )
    assert "--enable-tower-connector-lora" not in result.output
    assert "MERGED" not in result.output


@pytest.mark.parametrize(
    ("targets", "named"),
    [
        (["q_proj", "v_proj", "gate_proj"], "visual.blocks.*.mlp.gate_proj"),  # suffixes
        (r".*\.(q_proj|qkv)", "visual.blocks.*.attn.qkv"),  # a regex
        ("all-linear", "visual.blocks.*.attn.qkv"),
    ],
    ids=["list", "regex", "all-linear"],
)
def test_lora_is_refused_when_target_modules_touch_the_vision_tower(
    tiny: dict[str, Path], tmp_path: Path, targets: Any, named: str
) -> None:
    adapter = adapter_copy(tiny["lora"], tmp_path / "a", target_modules=targets)
    result = erb("serve-command", "editscore-72b", "--lora", "--adapter", str(adapter))
    line = error_line(result, "vision tower", "target_modules", named, "--tower-lora")
    assert "vllm serve" not in result.output, line


def test_lora_is_refused_when_the_saved_weights_touch_the_vision_tower(
    tiny: dict[str, Path], tmp_path: Path
) -> None:
    # Its config claims the language model only; its weights say otherwise.
    from tiny_qwen import LORA_TARGETS

    adapter = adapter_copy(tiny["tower"], tmp_path / "a", target_modules=LORA_TARGETS)
    result = erb("serve-command", "editscore-72b", "--lora", "--adapter", str(adapter))
    error_line(result, "saved weights", "visual.blocks.*.attn.qkv", "visual.blocks.*.mlp.gate_proj")
    tower = erb("serve-command", "editscore-72b", "--lora", "--tower-lora", "--adapter",
                str(adapter))  # fmt: skip
    assert tower.exit_code == 0, tower.output
    assert "--enable-lora" in tower.output and "--enable-tower-connector-lora" in tower.output
    sglang = erb("serve-command", "editscore-72b", "--server", "sglang", "--lora", "--tower-lora",
                 "--adapter", str(adapter))  # fmt: skip
    error_line(sglang, "SGLang has no flag")


def test_lora_needs_the_adapters_config_on_disk() -> None:
    # The built-in adapter is a hub id, not in the (offline) cache of this machine.
    error_line(erb("serve-command", "editscore-72b", "--lora"), "adapter_config.json",
               "hf download EditScore/EditScore-72B")  # fmt: skip
    error_line(erb("serve-command", "qwen2.5-vl-72b", "--lora"), "has no adapter")
    error_line(erb("serve-command", "editscore-72b", "--tower-lora"), "give --lora")


# --------------------------------------------------------------------------- the merge


def _inputs(base: Path) -> dict[str, Any]:
    """Token ids with one image in them, and the image's pixels, for a forward pass."""
    import torch
    from PIL import Image
    from tiny_qwen import build_tokenizer, token_ids
    from transformers import Qwen2VLImageProcessorPil

    ids = token_ids(build_tokenizer())
    image = Image.new("RGB", (56, 84), (200, 30, 30))
    image.paste((20, 160, 40), (10, 10, 40, 60))
    pixels = Qwen2VLImageProcessorPil.from_pretrained(str(base))(
        images=[image], return_tensors="pt"
    )
    n = int(pixels["image_grid_thw"].prod()) // 4
    text = list(b"Is the car blue? Answer in JSON.")
    input_ids = torch.tensor(
        [[ids["<|vision_start|>"], *[ids["<|image_pad|>"]] * n, ids["<|vision_end|>"], *text]]
    )
    return {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "pixel_values": pixels["pixel_values"],
        "image_grid_thw": pixels["image_grid_thw"],
    }


def _logits(model: Any, inputs: dict[str, Any]) -> Any:
    import torch

    model.eval()
    with torch.no_grad():
        return model(**inputs).logits


@pytest.mark.parametrize("which", ["lora", "tower"])
def test_the_merged_model_answers_as_the_adapter_applied_one(
    tiny: dict[str, Path], tmp_path: Path, which: str
) -> None:
    import torch
    from peft import PeftModel
    from transformers import Qwen2_5_VLForConditionalGeneration as Model

    result = erb("merge-adapter", str(tiny[which]), "--base", str(tiny["base"]), "--dtype",
                 "float32", "--cache-dir", str(tmp_path / "cache"))  # fmt: skip
    assert result.exit_code == 0, result.output
    folder = Path(result.stdout.strip().splitlines()[-1])
    assert folder.parent == tmp_path / "cache" and (folder / merge.MARKER).is_file()
    inputs = _inputs(tiny["base"])
    base = Model.from_pretrained(str(tiny["base"]), dtype=torch.float32)
    plain = _logits(base, inputs)
    applied = _logits(PeftModel.from_pretrained(base, str(tiny[which])), inputs)
    merged_model = Model.from_pretrained(str(folder), dtype=torch.float32)
    assert next(merged_model.parameters()).dtype == torch.float32
    merged = _logits(merged_model, inputs)
    assert (applied - plain).abs().max() > 1e-2  # the adapter changes the answer...
    torch.testing.assert_close(
        merged, applied, atol=LOGITS_ATOL, rtol=LOGITS_RTOL
    )  # ...and is kept
    # The base model's processor files lie beside the merged weights, byte for byte.
    for name in ("tokenizer.json", "tokenizer_config.json", "preprocessor_config.json",
                 "chat_template.jinja"):  # fmt: skip
        assert (folder / name).read_bytes() == (tiny["base"] / name).read_bytes(), name


def test_merges_are_cached_by_content_not_by_path(
    tiny: dict[str, Path], tmp_path: Path, count_merges: list[Path]
) -> None:
    from tiny_qwen import build_tiny_lora

    cache = tmp_path / "cache"
    adapter = shutil.copytree(tiny["lora"], tmp_path / "adapter")

    def run(path: Path) -> merge.MergeResult:
        return merge.merge_adapter(str(path), str(tiny["base"]), cache_dir=cache)

    first = run(adapter)
    again = run(adapter)
    assert (again.path, again.reused, len(count_merges)) == (first.path, True, 1)
    elsewhere = run(shutil.copytree(adapter, tmp_path / "same-bytes-elsewhere"))
    assert (elsewhere.path, elsewhere.reused, len(count_merges)) == (first.path, True, 1)
    # The same path with other bytes in one file is another merge (upstream would reuse it).
    other = build_tiny_lora(tiny["base"], tmp_path / "other", seed=7)
    shutil.copyfile(other / "adapter_model.safetensors", adapter / "adapter_model.safetensors")
    changed = run(adapter)
    assert not changed.reused and changed.path != first.path and len(count_merges) == 2
    assert sorted(p.name for p in cache.iterdir() if p.is_dir()) == sorted(
        [first.path.name, changed.path.name]
    )
    # The dtype is part of the key.
    assert merge.merge_adapter(str(adapter), str(tiny["base"]), cache_dir=cache,
                               dtype="float32").path != changed.path  # fmt: skip


def test_a_second_call_of_the_command_reuses_the_merge(
    tiny: dict[str, Path], tmp_path: Path
) -> None:
    args = [
        "merge-adapter",
        str(tiny["lora"]),
        "--cache-dir",
        str(tmp_path / "c"),
    ]  # base: its config's
    first, second = erb(*args), erb(*args)
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert first.stdout == second.stdout and "reusing the merged model" in second.output
    assert "loading the base model" not in second.output


def test_a_missing_or_mismatched_base_model_is_a_one_line_error(
    tiny: dict[str, Path], tmp_path: Path
) -> None:
    cache = ["--cache-dir", str(tmp_path / "c")]
    error_line(erb("merge-adapter", str(tiny["lora"]), "--base", str(tmp_path / "nope"), *cache),
               "does not exist", "--base")  # fmt: skip
    error_line(erb("merge-adapter", str(tiny["lora"]), "--base", "someone/not-cached", *cache),
               "not in the Hugging Face cache")  # fmt: skip
    error_line(erb("merge-adapter", str(tiny["lora"]), "--base", str(tiny["root"]), *cache),
               "holds no config.json")  # fmt: skip
    error_line(erb("merge-adapter", str(tiny["lora"]), "--base", str(tiny["other"]), *cache),
               "does not fit the base model", str(tiny["other"]))  # fmt: skip
    assert not [p for p in (tmp_path / "c").iterdir() if p.is_dir()]  # nothing half-written


def test_the_disk_space_check_refuses_before_loading_anything(
    tiny: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count_merges: list[Path]
) -> None:
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(merge.shutil, "disk_usage", lambda path: usage(10**12, 10**12, 10_000))
    with pytest.raises(merge.MergeError, match=r"not enough disk space.*, 0.0 MB free"):
        merge.merge_adapter(str(tiny["lora"]), str(tiny["base"]), cache_dir=tmp_path / "c")
    assert count_merges == [] and not [p for p in (tmp_path / "c").iterdir() if p.is_dir()]


def test_the_estimate_is_the_parameter_count_times_the_dtype_size(tiny: dict[str, Path]) -> None:
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration as Model

    params = sum(p.numel() for p in Model.from_pretrained(str(tiny["base"]), dtype=torch.float32)
                 .state_dict().values())  # fmt: skip
    source = merge.Source("x", tiny["base"], "x")
    assert merge.estimate_merged_bytes(source, "bfloat16") == params * 2
    assert merge.estimate_merged_bytes(source, "float32") == params * 4


def test_an_interrupted_merge_leaves_no_half_folder(
    tiny: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "c"
    cache.mkdir()
    # A merge killed outright (SIGKILL) leaves its temporary folder; the next merge sweeps it.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    killed = cache / f"{merge.TEMP_PREFIX}x-{dead}-0badf00d"
    killed.mkdir()
    (killed / "model.safetensors").write_bytes(b"half")

    def interrupted(*args: Any) -> list[str]:  # after the weights are written
        raise KeyboardInterrupt

    monkeypatch.setattr(merge, "_copy_processor_files", interrupted)
    with pytest.raises(KeyboardInterrupt):
        merge.merge_adapter(str(tiny["lora"]), str(tiny["base"]), cache_dir=cache)
    assert [p.name for p in cache.iterdir() if p.is_dir()] == []
    monkeypatch.undo()
    done = merge.merge_adapter(str(tiny["lora"]), str(tiny["base"]), cache_dir=cache)
    assert [p.name for p in cache.iterdir() if p.is_dir()] == [done.path.name]


def test_merge_adapter_takes_a_card(tmp_path: Path) -> None:
    card = tmp_path / "mine.toml"
    card.write_text('name = "mine"\nprotocol = "editscore"\nbackend = "openai"\nmodel = "m/x"\n')
    error_line(erb("merge-adapter", str(card)), "has no adapter")
    error_line(erb("merge-adapter", "editscore-72b", "--cache-dir", str(tmp_path)),
               "EditScore/EditScore-72B", "not in the Hugging Face cache")  # fmt: skip


def test_the_disk_space_check_counts_a_base_model_still_to_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot = tmp_path / "hub" / "models--owner--big" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    index = {"metadata": {"total_size": 4_000_000_000},
             "weight_map": {"a.weight": "model-1.safetensors", "b.weight": "model-2.safetensors"}}  # fmt: skip
    (snapshot / "model.safetensors.index.json").write_text(json.dumps(index))
    (snapshot / "config.json").write_text(json.dumps({"dtype": "bfloat16"}))
    (snapshot / "model-1.safetensors").write_bytes(b"")  # one shard of two is cached
    base = merge.Source("owner/big", snapshot, "hub:owner/big@abc123", "owner/big", "abc123")
    assert merge.estimate_merged_bytes(base, "bfloat16") == 4_000_000_000
    assert merge.download_bytes(base) == 2_000_000_000
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(merge.shutil, "disk_usage", lambda path: usage(0, 0, 5_000_000_000))
    merge.check_disk_space(tmp_path / "out", 4_000_000_000)  # the merge alone fits
    with pytest.raises(merge.MergeError, match="the base model's download and the merged model"):
        merge.check_disk_space(tmp_path / "out", 4_000_000_000, (tmp_path / "hub", 2_000_000_000))
