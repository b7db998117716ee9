"""The local test server scores by its own rule, so a clean run through it is an independent reference."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request

from PIL import Image

from editreward_bench.testing.fake_openai import parse_faults, quality_score, vision_scores


def test_its_rule_is_its_own_and_sensible() -> None:
    source = Image.new("RGB", (64, 64), (40, 40, 40))
    local = source.copy()
    local.paste((230, 30, 30), (20, 20, 34, 34))  # a small, visible edit
    everywhere = Image.new("RGB", (64, 64), (220, 220, 220))  # the whole picture changed
    unchanged_success, unchanged_keep = vision_scores(source, source)
    local_success, local_keep = vision_scores(source, local)
    wide_success, wide_keep = vision_scores(source, everywhere)
    assert wide_success == 25  # a change everywhere is certainly visible ...
    assert unchanged_success == 0 and unchanged_keep == 25
    assert local_success > 5 and local_keep > wide_keep  # ... but a local one keeps the rest
    noisy = Image.effect_noise((64, 64), 120).convert("RGB")
    assert quality_score(source) > quality_score(noisy)
    # It never imports erb's judges (checked in a fresh interpreter).
    code = (
        "import sys; from PIL import Image;"
        "from editreward_bench.testing import fake_openai as f;"
        "f.vision_scores(Image.new('RGB', (8, 8)), Image.new('RGB', (8, 8)));"
        "print(sorted(m for m in sys.modules if m.startswith('editreward_bench.judges')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_its_command_line_sets_faults_and_latency() -> None:
    faults = parse_faults("http_500=1,garbage=0.25,seed=3")
    assert faults.http_500 == 1.0 and faults.garbage == 0.25 and faults.seed == 3
    proc = subprocess.Popen(
        [sys.executable, "-m", "editreward_bench.testing.fake_openai", "--port", "0",
         "--faults", "http_500=1", "--latency", "0.01", "--model", "m"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        models = json.loads(urllib.request.urlopen(url + "/models", timeout=10).read())
        assert [m["id"] for m in models["data"]] == ["m"]
        body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
        request = urllib.request.Request(
            url + "/chat/completions", body.encode(), {"Content-Type": "application/json"}
        )
        try:
            urllib.request.urlopen(request, timeout=10)
            raise AssertionError("the injected HTTP 500 did not come")
        except urllib.error.HTTPError as exc:
            assert exc.code == 500
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    bad = subprocess.run(
        [sys.executable, "-m", "editreward_bench.testing.fake_openai", "--faults", "oops=1"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "--faults takes NAME=VALUE" in bad.stderr
