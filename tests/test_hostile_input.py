"""Hostile input: every case is a one-line error (exit 2) or one candidate's failure with
its reason; never a traceback, and nothing of the user's, the store's or a run's is lost."""

from __future__ import annotations

import asyncio
import json
import struct
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from conftest import REPO, make_row, png
from typer.main import get_command
from typer.testing import CliRunner

from editreward_bench.benchmark import BenchmarkError, CandidateImageError, load_benchmark
from editreward_bench.cli import app
from editreward_bench.judges import load_judge, resolve_card
from editreward_bench.judges.base import Backend, GenRequest, GenResponse, ImageCandidate, JudgeTask
from editreward_bench.judges.editscore import RAW_TEXT_LIMIT, EditScoreJudge
from editreward_bench.judges.options import parse_config

runner = CliRunner()
EXAMPLE = REPO / "data" / "mini_predictions.jsonl"


def erb(*args: str, **env: str | None) -> Any:
    return runner.invoke(app, list(args), env=env or None)


def one_line_error(result: Any, *needles: str) -> str:
    """Exit 2, no traceback, a single ``error: ...`` line naming every needle."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def write_bench(tmp_path: Path, rows: list[dict[str, Any]], name: str = "bench") -> Path:
    from conftest import write_parquet

    return write_parquet(tmp_path / f"{name}.parquet", rows)


# --------------------------------------------------------------------------- 1. predictions


@pytest.mark.parametrize("digits", [400, 5000])
def test_a_huge_integer_score_names_the_line_and_the_field(tmp_path: Path, digits: int) -> None:
    lines = EXAMPLE.read_text().splitlines()
    row = json.loads(lines[1])
    lines[1] = json.dumps({**row, "overall": 0}).replace(
        '"overall": 0', '"overall": ' + "9" * digits
    )
    path = tmp_path / "preds.jsonl"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    result = erb("evaluate", "--predictions", str(path), "--dataset", "mini", "--out", str(out))
    line = one_line_error(result, f"{path}:2", "overall", "out of range", f"{digits}-digit")
    assert len(line) < 200
    assert not out.exists()


def test_a_huge_integer_among_the_extra_fields_is_named(tmp_path: Path) -> None:
    lines = EXAMPLE.read_text().splitlines()
    lines[2] = lines[2][:-1] + ', "meta": {"votes": [1, ' + "7" * 500 + "]}}"
    path = tmp_path / "preds.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = erb(
        "evaluate", "--predictions", str(path), "--dataset", "mini", "--out", str(tmp_path / "r")
    )
    one_line_error(result, f"{path}:3", "'meta'['votes'][1]", "out of range")


# --------------------------------------------------------------------------- 2. cards

BAD_FIELDS = [
    "model = 42",
    '[options]\ntimeout = "soon"',
    '[sampling]\ntemperature = "hot"',
    "[sampling]\nmax_tokens = -5",
    '[options]\nsupports_n = "yes"',
    '[options]\nlayout = "sideways"',
]
BAD_FIELD_NAMES = ["model", "timeout", "temperature", "max_tokens", "supports_n", "layout"]


def _bad_card(tmp_path: Path, extra: str) -> Path:
    card = tmp_path / "mine.toml"
    model = "" if extra.startswith("model") else 'model = "m"\n'
    card.write_text(f'name = "mine"\nprotocol = "editscore"\nbackend = "openai"\n{model}{extra}\n')
    return card


@pytest.mark.parametrize("command", ["score", "prompts", "serve-command", "settings"])
@pytest.mark.parametrize(("extra", "field"), list(zip(BAD_FIELDS, BAD_FIELD_NAMES, strict=True)))
def test_bad_card_fields_are_one_line_errors_in_every_command(
    tmp_path: Path, command: str, extra: str, field: str
) -> None:
    card = str(_bad_card(tmp_path, extra))
    source, edited = tmp_path / "a.png", tmp_path / "b.png"
    source.write_bytes(png())
    edited.write_bytes(png((0, 0, 200)))
    args = {
        "score": ["score", str(source), str(edited), "--judge", card, "--instruction", "x"],
        "prompts": ["prompts", "--judge", card, "--instruction", "x"],
        "serve-command": ["serve-command", card],
        "settings": ["settings", "--judge", card],
    }[command]
    one_line_error(erb(*args), card, f"'{field}'")


class _EntryPoint:
    """A stand-in for an installed plugin's entry point."""

    def __init__(self, name: str, obj: Any) -> None:
        self.name, self.value, self.dist, self._obj = name, f"fake:{name}", None, obj

    def load(self) -> Any:
        return self._obj


def test_a_plugin_card_with_bad_fields_is_reported_and_skipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from editreward_bench.judges import registry

    bad = {
        "protocol": "editscore",
        "backend": "openai",
        "model": "m",
        "sampling": {"temperature": "hot"},
    }
    monkeypatch.setattr(
        registry.metadata, "entry_points", lambda group: [_EntryPoint("hot-judge", bad)]
    )
    result = erb("judges", "--json")
    assert result.exit_code == 0, result.output
    assert "plugin judge 'hot-judge'" in result.output and "'temperature'" in result.output
    assert "Traceback" not in result.output
    listed = json.loads(result.stdout)
    assert "hot-judge" not in {row["name"] for row in listed} and "random" in {
        row["name"] for row in listed
    }


# --------------------------------------------------------------------------- 3 and 8. servers

Route = Callable[[str, str], tuple[int, str, bytes]]
HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>Welcome to nginx!</title></head><body>hi</body></html>"
)


@contextmanager
def serve(route: Route) -> Iterator[str]:
    """A threaded HTTP server on 127.0.0.1 answering ``route(method, path)``; yields its /v1 URL."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            status, content_type, body = route(self.command, self.path)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://user:hunter2pass@127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def html(status: int) -> Route:
    return lambda method, path: (status, "text/html; charset=utf-8", HTML_PAGE)


def _images(tmp_path: Path) -> tuple[str, str]:
    source, edited = tmp_path / "a.png", tmp_path / "b.png"
    source.write_bytes(png())
    edited.write_bytes(png((0, 0, 200)))
    return str(source), str(edited)


@pytest.mark.parametrize("status", [200, 404, 502])
def test_a_server_answering_html_is_not_an_openai_api(tmp_path: Path, status: int) -> None:
    source, edited = _images(tmp_path)
    out, store = tmp_path / "run", tmp_path / "store.sqlite"
    with serve(html(status)) as url:
        scored = erb("score", source, edited, "--judge", "editscore-32b", "--instruction", "x",
                     "--base-url", url)  # fmt: skip
        evaluated = erb("evaluate", "--judge", "editscore-32b", "--dataset", "mini", "--limit", "2",
                        "--base-url", url, "--out", str(out), "--store", str(store))  # fmt: skip
    for result in (scored, evaluated):
        line = one_line_error(result, "is not an OpenAI-compatible API", "HTML page", "127.0.0.1")
        assert "hunter2pass" not in line
    assert not out.exists() and not store.exists()


@pytest.mark.parametrize(
    "route",
    [
        html(200),
        html(404),
        html(502),
        lambda m, p: (200, "application/json", b"{not json"),
        lambda m, p: (200, "application/json", b'{"hello": "world"}'),
        lambda m, p: (200, "text/plain", b"hello"),
    ],
    ids=["html-200", "html-404", "html-502", "bad-json", "other-json", "text"],
)
def test_requests_to_a_server_that_is_no_api_fail_with_the_reason(route: Route) -> None:
    with serve(route) as url:
        judge = load_judge(
            "editscore-32b", base_url=url, max_retries=0, max_attempts=2, backoff=0.01
        )
        result = judge.score("Add a cat.", png(), png((0, 0, 200)))
    error = result["passes"][0]["error"]
    assert result["passes_ok"] == 0 and "is not an OpenAI-compatible API" in error, error
    assert "hunter2pass" not in error and "\n" not in error


def _unauthorised(method: str, path: str) -> tuple[int, str, bytes]:
    body = {"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}}
    return 401, "application/json", json.dumps(body).encode()


def test_a_401_with_the_key_variable_unset_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    source, edited = _images(tmp_path)
    with serve(_unauthorised) as url:
        for args in (
            ["score", source, edited, "--judge", "gpt-4.1", "--instruction", "x"],
            ["evaluate", "--judge", "gpt-4.1", "--dataset", "mini", "--out", str(tmp_path / "r"),
             "--store", str(tmp_path / "s.sqlite")],
        ):  # fmt: skip
            one_line_error(
                erb(*args, "--base-url", url),
                "refused the request (HTTP 401)",
                "$OPENAI_API_KEY is not set; export it or pass --api-key-env",
            )


def test_a_401_with_the_key_set_says_it_was_refused_and_never_shows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-hostile-0123456789abcdef"
    monkeypatch.setenv("MY_KEY", secret)
    source, edited = _images(tmp_path)
    with serve(_unauthorised) as url:
        result = erb("score", source, edited, "--judge", "gpt-4.1", "--instruction", "x",
                     "--base-url", url, "--api-key-env", "MY_KEY")  # fmt: skip
    line = one_line_error(result, "(HTTP 401)", "the API key in $MY_KEY was refused")
    assert secret not in line


def test_a_401_on_the_requests_alone_names_the_unset_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)

    def route(method: str, path: str) -> tuple[int, str, bytes]:
        if method == "GET":
            return 200, "application/json", b'{"object": "list", "data": [{"id": "gpt-4.1"}]}'
        return _unauthorised(method, path)

    with serve(route) as url:
        judge = load_judge("gpt-4.1", base_url=url, max_retries=0)
        judge.preflight()
        result = judge.score("Add a cat.", png(), png((0, 0, 200)))
    assert "HTTP 401" in result["passes"][0]["error"]
    assert "$OPENAI_API_KEY is not set" in result["passes"][0]["error"]


# --------------------------------------------------------------------------- 4. stores


def test_a_store_under_a_file_is_one_line_and_the_file_is_kept(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    out = tmp_path / "run"
    result = erb("evaluate", "--judge", "random", "--dataset", "mini", "--out", str(out),
                 "--store", str(notes / "store.sqlite"))  # fmt: skip
    one_line_error(result, "pass store", "--store")
    assert notes.read_text() == "mine" and not out.exists()


# --------------------------------------------------------------------------- 5. bombs


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels, with almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def test_an_image_over_max_image_pixels_names_the_option(tmp_path: Path) -> None:
    path = write_bench(tmp_path, [make_row(("a", "b"))])
    with pytest.raises(CandidateImageError, match=r"input_image of row 0 .*--max-image-pixels"):
        load_benchmark(path, max_image_pixels=100).candidates["a"].load_images()
    out = tmp_path / "run"
    result = erb("evaluate", "--judge", "image-diff", "--dataset", str(path), "--out", str(out),
                 "--store", str(tmp_path / "s.sqlite"), "--max-image-pixels", "100")  # fmt: skip
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--max-image-pixels" in result.output


def test_a_png_header_claiming_huge_dimensions_fails_its_candidate_only(tmp_path: Path) -> None:
    path = write_bench(
        tmp_path, [make_row(("a", "b"), edited=(png(), png_claiming(100_000, 100_000)))]
    )
    bench = load_benchmark(path)
    bench.candidates["a"].load_images()
    with pytest.raises(CandidateImageError, match=r"100000x100000 .*--max-image-pixels"):
        bench.candidates["b"].load_images()
    out = tmp_path / "run"
    result = erb("evaluate", "--judge", "image-diff", "--dataset", str(path), "--out", str(out),
                 "--store", str(tmp_path / "s.sqlite"), "--bootstrap", "10")  # fmt: skip
    assert result.exit_code == 0, result.output
    records = {r["key"]: r for r in pq.read_table(out / "records.parquet").to_pylist()}
    assert records["a"]["status"] == "ok" and records["b"]["status"] == "failed"
    assert "--max-image-pixels" in records["b"]["error"]


# --------------------------------------------------------------------------- 6. truncated


def _noise_png() -> bytes:
    from io import BytesIO

    from PIL import Image

    buf = BytesIO()
    Image.effect_noise((64, 64), 50).convert("RGB").save(buf, format="PNG")
    return buf.getvalue()


def test_a_truncated_copy_is_named_as_corrupt_not_as_a_key_conflict(tmp_path: Path) -> None:
    intact = _noise_png()
    cut = intact[: len(intact) // 2]
    rows = [
        make_row(("a", "b"), edited=(intact, png())),
        make_row(("a", "c"), edited=(cut, png((0, 0, 200))), dimension="consistency"),
    ]
    path = write_bench(tmp_path, rows)
    with pytest.raises(BenchmarkError) as info:
        load_benchmark(path)
    message = str(info.value)
    assert "row 1 output_images[0] (key 'a'): corrupt or truncated" in message
    assert "different" not in message
    one_line_error(
        erb(
            "evaluate",
            "--judge",
            "image-diff",
            "--dataset",
            str(path),
            "--store",
            str(tmp_path / "s"),
        ),
        "row 1 output_images[0]",
        "truncated",
    )


def test_a_lone_truncated_image_fails_its_candidate_naming_row_and_column(tmp_path: Path) -> None:
    intact = _noise_png()
    path = write_bench(tmp_path, [make_row(("a", "b"), edited=(png(), intact[: len(intact) // 2]))])
    bench = load_benchmark(path)
    with pytest.raises(
        CandidateImageError, match=r"'b': output_images\[1\] of row 0 .*corrupt or truncated"
    ):
        bench.candidates["b"].load_images()


# --------------------------------------------------------------------------- 7. huge answers


class _HugeAnswers(Backend):
    def __init__(self, sc: str, pq: str) -> None:
        self.sc, self.pq = sc, pq

    def describe(self) -> dict[str, Any]:
        return {"backend": "huge"}

    async def generate(self, requests: Sequence[GenRequest]) -> list[GenResponse]:
        return [GenResponse([self.sc if len(r.images) == 2 else self.pq] * r.n) for r in requests]


def _store_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def test_a_20_mb_answer_is_parsed_whole_and_stored_capped(tmp_path: Path) -> None:
    from PIL import Image

    from editreward_bench.store import PassStore

    reasoning = "long " * 4_000_000  # 20 MB
    sc = json.dumps({"reasoning": reasoning, "score": [20, 15]})
    pq = json.dumps({"reasoning": "fine", "score": [20, 20]})
    card = resolve_card("editscore-7b").card
    assert card is not None
    judge = EditScoreJudge(parse_config(card, {"max_retries": 0}), _HugeAnswers(sc, pq))
    candidate = ImageCandidate(
        "c", "Add a cat.", Image.new("RGB", (8, 8)), Image.new("RGB", (8, 8))
    )
    [result] = asyncio.run(judge.ajudge([JudgeTask(candidate, (0,), (42,))]))
    assert result.status == "ok" and result.prompt_following == 8.0 and result.consistency == 6.0
    assert result.extra["raw_sc_chars"] == len(sc)
    assert result.extra["reasoning_sc_chars"] == len(reasoning)
    assert result.raw_sc is not None and len(result.raw_sc.encode()) <= RAW_TEXT_LIMIT
    assert result.raw_sc.endswith('"score": [20, 15]}')  # the tail, where the score is, is kept
    assert result.raw_pq == pq and "raw_pq_chars" not in result.extra

    path = tmp_path / "store.sqlite"
    with PassStore(path) as store:
        before = _store_bytes(path)
        store.put("judge", "candidate", result.to_record())
    assert _store_bytes(path) - before < 1_000_000
    with PassStore(path) as store:
        stored = store.get("judge", ["candidate"], 42)[("candidate", 0)]
    assert stored["prompt_following"] == 8.0 and stored["extra"]["raw_sc_chars"] == len(sc)


# --------------------------------------------------------------------------- 9. missing paths


def test_a_missing_dataset_folder_is_a_missing_path(tmp_path: Path) -> None:
    one_line_error(
        erb("data", "info", "./no-such-folder"), "./no-such-folder", "no such file or folder"
    )
    missing = str(tmp_path / "gone" / "bench")
    line = one_line_error(
        erb("evaluate", "--judge", "random", "--dataset", missing, "--out", str(tmp_path / "r")),
        "no such file or folder",
    )
    assert "hub" not in line.split(";")[0] and "offline" not in line


def test_an_uncached_hub_dataset_names_the_hf_download_command() -> None:
    with pytest.raises(
        BenchmarkError, match=r"`hf download erb-tests/not-cached --repo-type dataset"
    ):
        load_benchmark("erb-tests/not-cached")


@pytest.mark.parametrize("kind", ["model", "adapter"])
def test_a_missing_local_model_or_adapter_is_a_missing_path(tmp_path: Path, kind: str) -> None:
    from editreward_bench.backends.transformers_local import _hub_hint

    for name in ("./no/such/dir", str(tmp_path / "missing")):
        hint = _hub_hint(
            kind, name, OSError("Repo id must be in the form 'namespace/name'"), f"--{kind}"
        )
        assert f"the {kind} folder {name!r} does not exist" in hint and f"--{kind}" in hint
        assert "download" not in hint and "Repo id" not in hint
    hint = _hub_hint(kind, "erb-tests/not-cached", OSError("offline"), f"--{kind}")
    assert "`hf download erb-tests/not-cached`" in hint and "huggingface-cli" not in hint


def test_evaluate_with_a_missing_model_folder_says_it_is_missing(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    result = erb("evaluate", "--judge", "editscore-7b", "--model", "./no/such/dir", "--adapter", "none",
                 "--dataset", "mini", "--limit", "1", "--out", str(tmp_path / "r"),
                 "--store", str(tmp_path / "s.sqlite"))  # fmt: skip
    one_line_error(result, "the model folder './no/such/dir' does not exist", "--model")


# --------------------------------------------------------------------------- 10. help


def _command_paths() -> list[list[str]]:
    paths: list[list[str]] = []

    def walk(command: Any, prefix: list[str]) -> None:
        paths.append(prefix)
        if hasattr(command, "list_commands"):
            for name in command.list_commands(None):
                walk(command.get_command(None, name), [*prefix, name])

    walk(get_command(app), [])
    return paths


COMMANDS = _command_paths()


def test_every_command_is_checked() -> None:
    names = {" ".join(p) for p in COMMANDS}
    expected = {"", "evaluate", "score", "judges", "prompts", "settings", "serve-command",
                "leaderboard", "report", "verify", "data", "data info", "data synth", "data make-mini"}  # fmt: skip
    assert expected <= names


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) or "erb" for p in COMMANDS])
def test_help_fits_80_columns_and_cuts_nothing(path: list[str]) -> None:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines, "no help printed"
    too_long = [line for line in lines if len(line) > 80]
    assert not too_long, "\n".join(too_long)
    cut = [line for line in lines if "…" in line]
    assert not cut, "\n".join(cut)
