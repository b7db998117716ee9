"""Typed judge settings and the store key derived from their declarations.

- golden fingerprints pin every shipped card's store key, today's and version 1's;
- every declared setting is checked against its declaration: changing one that
  affects answers changes the key, changing one that does not keeps it;
- end to end, changing an answer-affecting setting or any candidate input rejudges,
  changing anything else reuses every stored pass;
- a version-1 store is migrated so that no finished pass is judged again;
- wrong settings are one-line errors that name the card, the key and the type.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, make_row, png
from typer.testing import CliRunner

from editreward_bench.backends.transformers import loading as transformers_loading
from editreward_bench.benchmark import load_benchmark
from editreward_bench.cli import app
from editreward_bench.judges import CardError, load_judge
from editreward_bench.judges.editscore import EditScoreJudge, EditScorePrompts, combine
from editreward_bench.judges.options import (
    CommonOptions,
    OpenAIOptions,
    Sampling,
    TransformersOptions,
    affects_answers,
    parse_config,
    parse_override_value,
    spec_of,
)
from editreward_bench.judges.parsing import parse_scores
from editreward_bench.judges.registry import builtin_cards
from editreward_bench.runner import RunError, RunOptions, run_evaluation
from editreward_bench.store import STORE_VERSION, PassStore, StoreError
from editreward_bench.testing.fake_openai import FakeOpenAIServer

runner = CliRunner()

#: Store keys of every shipped card with its default settings (on the CPU; local cards in
#: exact mode).
GOLDEN = {
    "editscore-32b": "sha256:a0db5d3161a76",
    "editscore-72b": "sha256:f63edcd04bc3c",
    "editscore-7b": "sha256:a5f71f5f6cf03",
    "editscore-qwen3-vl-4b": "sha256:44406f7d8d3fa",
    "editscore-qwen3-vl-8b": "sha256:467ee127ded63",
    "gemini-2.5-pro": "sha256:04646ae719a8f",
    "gpt-4.1": "sha256:512cf03341807",
    "gpt-5": "sha256:f658e93acb89b",
    "image-diff": "sha256:d165d24e50dd4",
    "imgedit-gpt-4.1": "sha256:4004b4994597",
    "qwen2.5-vl-32b": "sha256:63f1abef8b9ba",
    "qwen2.5-vl-72b": "sha256:ec687f92232cd",
    "qwen2.5-vl-7b": "sha256:5e6b65a7a7b67",
    "random": "sha256:ab72cccd1f770",
    "viescore-gpt-4.1": "sha256:7dccc1563086",
    "viescore-qwen2.5-vl-72b": "sha256:21fdd4357e47",
}
#: Cards added after erb 0.1: they have no version-1 key.
NEW_SINCE_V1 = {"imgedit-gpt-4.1", "viescore-gpt-4.1", "viescore-qwen2.5-vl-72b"}
#: The keys erb 0.1 (store-key version 1) gave the same judges, recorded with erb 0.1.
GOLDEN_V1 = {
    "editscore-32b": "sha256:a9ce00d2d7825d8bff4f2b0cf6b894e93273350a8ef0ee377f29b84b49cd6d59",
    "editscore-72b": "sha256:aadcc5f0033851b183880254685763bf52a41c8987abdbfc8584e7de0e278472",
    "editscore-7b": "sha256:e7fe9e98a6f8c4525bbe807da0ad2a4b543372b6bb58f4a995b2d69997c1b6be",
    "editscore-qwen3-vl-4b": "sha256:eee3a107b7acd02a5378e9918e05ae0f5c2d0702a0792d2141c81ca8aae8c72c",
    "editscore-qwen3-vl-8b": "sha256:4323f19953e633ef06d3f38a2f116ab1551e10bed8b42a6fb2d267c7047bc744",
    "gemini-2.5-pro": "sha256:89c0c6e9ef538f431b4bab5b8d256aec620ca9eaae079535d85e03feecdc5cf3",
    "gpt-4.1": "sha256:f23ad11a85560e7d2f7bcd2815f7d64b79e14eb2b6cc6254d053f213819cd8ae",
    "gpt-5": "sha256:cfd3f5ce8cd104231002246c6fb945ea08216008e301263d10313ce5f140a672",
    "image-diff": "sha256:d165d24e50dd4a6b63cb81246a6b3ad9bc445aade9569efb4b0e126df3e15412",
    "qwen2.5-vl-32b": "sha256:9cb1564e3eea5afd3eee58bb58e5a2766402f890326df7f07428ce4bc34e3af6",
    "qwen2.5-vl-72b": "sha256:496bfde6c75291a59e5d0575c2efb1e13bb6b43f858703b45b229ea7eeeb462e",
    "qwen2.5-vl-7b": "sha256:67623600936eddbf10f6be1721f98ed1f29dd7abede1a6a611be2af11bcec021",
    "random": "sha256:ab72cccd1f7709db57201961c66458ba6f6fb3159d62a36cb0969246db631015",
}


@pytest.fixture(autouse=True)
def cpu_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys were recorded on the CPU, where dtype "auto" resolves to float32."""
    monkeypatch.setattr(transformers_loading, "cuda_available", lambda: False)


def _fp(name: str, **overrides: Any) -> str:
    return load_judge(name, **overrides).fingerprint()


# --------------------------------------------------------------------------- golden keys


def test_every_shipped_card_has_its_pinned_store_key() -> None:
    shipped = {card.name for card in builtin_cards()}
    assert shipped == set(GOLDEN) == set(GOLDEN_V1) | NEW_SINCE_V1, (
        "a card was added: pin its keys here"
    )
    for name, prefix in GOLDEN.items():
        assert _fp(name).startswith(prefix), name


#: Cards version 1 could not run as they are now: their served requests carry lossless,
#: pre-resized images and an explicit repetition penalty, so no pass version 1 judged (from
#: JPEG, at the image's own size, with the server's default penalty) may be reused for them.
NO_VERSION_1 = {"editscore-32b", "editscore-72b", "qwen2.5-vl-32b", "qwen2.5-vl-72b"}
#: Local cards: version 1 generated in batches (k samples of one seed per prompt), which is
#: now batched mode; the default, exact mode, draws other answers and has no version-1 key.
LOCAL = {"editscore-7b", "editscore-qwen3-vl-4b", "editscore-qwen3-vl-8b", "qwen2.5-vl-7b"}


def test_every_shipped_cards_version_1_key_maps_to_it() -> None:
    """So a store written by erb 0.1 keeps every pass after the upgrade, where the judge
    still asks what version 1 asked (an explicit repetition penalty equal to the model's own
    generation config on the local backend is what version 1 applied implicitly)."""
    for name, old in GOLDEN_V1.items():
        judge = load_judge(name)
        if name in NO_VERSION_1:
            assert isinstance(judge, EditScoreJudge)
            assert judge.legacy_fingerprints() == [], name
        elif name in LOCAL:
            assert isinstance(judge, EditScoreJudge)
            assert judge.config.backend.mode == "exact"
            assert judge.legacy_fingerprints() == [], name  # exact mode is not what v1 ran
            batched = load_judge(name, mode="batched")
            assert batched.legacy_fingerprints() == [old], name
            assert batched.fingerprint() != old
        elif isinstance(judge, EditScoreJudge):
            assert judge.legacy_fingerprints() == [old], name
            assert judge.fingerprint() != old  # the key did change: the migration is needed
        else:
            assert judge.fingerprint() == old, name  # baselines kept their key


def test_version_1_keys_need_what_version_1_ran(tmp_path: Path) -> None:
    """A setting version 1 did not have, at a value that changes what is asked, has no
    version-1 key; the local backend's explicit repetition penalty maps only when it is
    the one the model's generation config sets."""
    # editscore-72b as version 1 ran it: JPEG at the image's size, no repetition penalty
    text = (REPO / "judges" / "editscore-72b.toml").read_text()
    dropped = ("repetition_penalty =", "image_format =", "pre_resize =")
    card = tmp_path / "editscore-72b.toml"
    card.write_text("".join(ln for ln in text.splitlines(True) if not ln.startswith(dropped)))
    assert load_judge(str(card)).legacy_fingerprints() == [GOLDEN_V1["editscore-72b"]]
    for changes in ({"image_format": "png"}, {"pre_resize": True}, {"repetition_penalty": 1.0}):
        assert load_judge(str(card), **changes).legacy_fingerprints() == [], changes
    for changes in ({"image_format": "png"}, {"pre_resize": True}):
        assert load_judge("gpt-4.1", **changes).legacy_fingerprints() == [], changes
    local = load_judge("editscore-7b", mode="batched")
    assert local.legacy_fingerprints() == [GOLDEN_V1["editscore-7b"]]
    # Version 1 did not key the batch size: every batch size of batched mode maps to it.
    assert load_judge("editscore-7b", mode="batched", batch_size=3).legacy_fingerprints() == [
        GOLDEN_V1["editscore-7b"]
    ]
    assert load_judge("editscore-7b", mode="exact").legacy_fingerprints() == []
    assert load_judge("editscore-7b", mode="exact", batch_size=3).legacy_fingerprints() == []
    batched = {"mode": "batched"}
    assert load_judge("editscore-7b", repetition_penalty=1.1, **batched).legacy_fingerprints() == []
    # its generation config is unknown
    other = load_judge("editscore-7b", model="me/other-vlm", **batched)
    assert other.legacy_fingerprints() == []
    switched = load_judge("editscore-7b", backend="openai")  # a server's default is its own
    assert switched.legacy_fingerprints() == []


# --------------------------------------------------------------------------- declarations

#: (settings class, the card whose judge exercises it) for every declared setting.
SECTIONS = [
    (Sampling, "editscore-72b"),
    (CommonOptions, "editscore-72b"),
    (OpenAIOptions, "editscore-72b"),
    (TransformersOptions, "editscore-7b"),
]
CASES = [
    (cls, card, f.name)
    for cls, card in SECTIONS
    for f in fields(cls)
    # the 72B card sets max_tokens; its transformers sibling uses max_new_tokens
    if not (cls is Sampling and f.name == "max_new_tokens")
] + [(Sampling, "editscore-7b", "max_new_tokens")]


@pytest.mark.parametrize(
    ("cls", "card", "name"), CASES, ids=[f"{c[0].__name__}.{c[2]}" for c in CASES]
)
def test_each_setting_changes_the_key_exactly_when_it_changes_answers(
    cls: type, card: str, name: str
) -> None:
    spec = spec_of(next(f for f in fields(cls) if f.name == name))
    assert spec.example is not None, f"{cls.__name__}.{name} needs an example value"
    before = load_judge(card)
    assert isinstance(before, EditScoreJudge)
    current = next(getattr(s, name) for s in before.config.sections() if isinstance(s, cls))
    field_ = next(f for f in fields(cls) if f.name == name)
    assert spec.example != field_.default, f"{cls.__name__}.{name}: the example is the default"
    value = (not current) if isinstance(current, bool) else spec.example
    if value == current:  # the card sets the example already: change it back to the default
        value = field_.default
    assert value != current, f"{cls.__name__}.{name}: the example must differ from {card}'s value"
    after = load_judge(card, **{name: value})
    assert isinstance(after, EditScoreJudge)
    changes = affects_answers(field_, after.config)
    assert (after.fingerprint() != before.fingerprint()) == changes, (name, changes)
    assert name in after.config.overridden


def test_declarations_that_depend_on_other_settings() -> None:
    # Batched mode: the batch size changes sampled answers (one random stream per batch), not
    # greedy ones; two batch sizes, two keys, neither of them exact mode's.
    batched = {"mode": "batched"}
    two, three = (
        _fp("editscore-7b", batch_size=2, **batched),
        _fp("editscore-7b", batch_size=3, **batched),
    )
    exact = _fp("editscore-7b", mode="exact")
    assert len({two, three, exact}) == 3
    greedy = {"temperature": 0.0, **batched}
    assert _fp("editscore-7b", batch_size=2, **greedy) == _fp(
        "editscore-7b", batch_size=3, **greedy
    )
    # Exact mode (the default) generates one sequence per call: the batch size changes nothing.
    assert _fp("editscore-7b", batch_size=2) == _fp("editscore-7b", batch_size=3) == exact
    # Merging the adapter matters only when there is one.
    assert _fp("editscore-7b", merge_adapter=False) != _fp("editscore-7b")
    assert _fp("qwen2.5-vl-7b", merge_adapter=False) == _fp("qwen2.5-vl-7b")


def test_the_local_backends_mode_is_described_and_decides_n_samples() -> None:
    """The mode is in the manifest (the judge's settings and backend description); only
    batched mode asks for the k passes as n = k samples of one seed."""
    for mode, supports_n in (("exact", False), ("batched", True)):
        judge = load_judge("editscore-7b", **({"mode": mode} if mode == "batched" else {}))
        assert isinstance(judge, EditScoreJudge)
        described = judge.describe()
        assert described["settings"]["mode"] == described["backend_config"]["mode"] == mode
        assert judge.backend.supports_n is supports_n


def test_model_adapter_and_prompt_template_change_the_key() -> None:
    base = _fp("editscore-72b")
    assert _fp("editscore-72b", model="Qwen/Other") != base
    assert _fp("editscore-72b", adapter="none") != base
    assert _fp("editscore-72b", adapter="someone/other-lora") != base
    judge = load_judge("editscore-72b")
    assert isinstance(judge, EditScoreJudge)
    p = judge.prompts
    judge.prompts = EditScorePrompts(p.context + " ", p.edit_rule, p.sc_rule, p.pq_rule)
    assert judge.fingerprint() != base


# --------------------------------------------------------------------------- end to end


@pytest.fixture
def server():
    with FakeOpenAIServer(models=["editscore-72b", "other-name", "gpt-4.1"], mode="hash") as srv:
        yield srv


def _bench(parquet_bench, instruction: str = "Add a cat.", source: bytes | None = None,
           edited: bytes | None = None) -> Any:  # fmt: skip
    rows = [
        make_row(("a1", "b1"), instruction=instruction, source=source,
                 edited=(edited or png((200, 0, 0)), png((0, 200, 0)))),
        make_row(("a2", "b2"), dimension="consistency", instruction="Remove the dog.",
                 edited=(png((1, 2, 3)), png((90, 90, 9)))),
    ]  # fmt: skip
    return load_benchmark(parquet_bench(rows))


def _requests(server, bench, tmp_path: Path, seed: int = 42, judge: str = "editscore-72b",
              **settings: Any) -> int:  # fmt: skip
    before = len(server.log.snapshot())
    options = RunOptions(
        base_urls=[server.url], store=tmp_path / "store.sqlite", progress=False, n_bootstrap=0,
        seed=seed, backend_options=settings,
    )  # fmt: skip
    run_evaluation(bench, judge, options, out=tmp_path / f"run-{time.monotonic_ns()}")
    return len(server.log.snapshot()) - before


REJUDGE = [
    ("layout", {"layout": "text-first"}),
    ("temperature", {"temperature": 0.2}),
    ("supports_n", {"supports_n": False}),
    ("score_range", {"score_range": 10}),
    ("served_model", {"served_model": "other-name"}),
    ("image_format", {"image_format": "jpeg"}),
    ("pre_resize", {"pre_resize": False}),
    ("repetition_penalty", {"repetition_penalty": 1.05}),
]
REUSE = [
    ("timeout", {"timeout": 30.0}),
    ("max_attempts", {"max_attempts": 3}),
    ("backoff", {"backoff": 0.01}),
    ("max_retries", {"max_retries": 5}),
    ("price", {"price_input_per_mtok": 1.0}),
    ("api_key_env", {"api_key_env": "ERB_TEST_UNSET_KEY"}),
]


@pytest.mark.parametrize(("label", "settings"), REJUDGE, ids=[c[0] for c in REJUDGE])
def test_changing_an_answer_setting_rejudges(
    server, parquet_bench, tmp_path, label, settings
) -> None:
    bench = _bench(parquet_bench)
    assert _requests(server, bench, tmp_path) > 0
    assert _requests(server, bench, tmp_path) == 0  # the same settings reuse everything
    assert _requests(server, bench, tmp_path, **settings) > 0, label


@pytest.mark.parametrize(("label", "settings"), REUSE, ids=[c[0] for c in REUSE])
def test_changing_another_setting_reuses(server, parquet_bench, tmp_path, label, settings) -> None:
    bench = _bench(parquet_bench)
    assert _requests(server, bench, tmp_path) > 0
    assert _requests(server, bench, tmp_path, **settings) == 0, label


def test_changing_any_candidate_input_rejudges_that_candidate(
    server, parquet_bench, tmp_path
) -> None:
    bench = _bench(parquet_bench)
    total = _requests(server, bench, tmp_path)
    per_candidate = total // len(bench.candidates)  # SC + PQ
    changed = {
        "instruction": _bench(parquet_bench, instruction="Add two cats."),
        "source bytes": _bench(parquet_bench, source=png((11, 10, 10))),
        "edited bytes": _bench(parquet_bench, edited=png((201, 0, 0))),
    }
    for label, other in changed.items():
        # a1 and b1 share the instruction and the source; the edit changes a1 alone
        expected = per_candidate * (1 if label == "edited bytes" else 2)
        assert _requests(server, other, tmp_path) == expected, label
    assert _requests(server, bench, tmp_path, seed=7) == total  # other pass seeds


# --------------------------------------------------------------------------- store versions


def _as_version_1(store_path: Path, new_fp: str, old_fp: str, meta_row: bool = True) -> None:
    """Rewrite a store as erb 0.1 left it: its key, no judges/migrations tables, version 1."""
    conn = sqlite3.connect(store_path)
    conn.execute("UPDATE passes SET judge_fp = ? WHERE judge_fp = ?", (old_fp, new_fp))
    # erb 0.1 rescaled with s * 0.4: make every stored score wrong, to see it recomputed
    for rowid, record in conn.execute("SELECT rowid, record FROM passes").fetchall():
        rec = json.loads(record)
        if rec["status"] == "ok":
            rec["prompt_following"] = -1.0
        conn.execute("UPDATE passes SET record = ? WHERE rowid = ?", (json.dumps(rec), rowid))
    conn.execute("DROP TABLE judges")
    conn.execute("DROP TABLE migrations")
    if meta_row:
        conn.execute("UPDATE meta SET value = '1' WHERE name = 'version'")
    else:
        conn.execute("DELETE FROM meta")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("meta_row", [True, False], ids=["version-1", "no-version"])
def test_a_version_1_store_is_migrated_and_no_pass_is_judged_again(
    server, parquet_bench, tmp_path, meta_row: bool
) -> None:
    bench = _bench(parquet_bench)
    assert _requests(server, bench, tmp_path, judge="gpt-4.1") > 0
    store_path = tmp_path / "store.sqlite"
    _as_version_1(store_path, _fp("gpt-4.1"), GOLDEN_V1["gpt-4.1"], meta_row)
    assert _requests(server, bench, tmp_path, judge="gpt-4.1") == 0
    with PassStore(store_path) as store:
        assert store.version == STORE_VERSION
        assert store.count(GOLDEN_V1["gpt-4.1"]) == 0
        records = store.get(_fp("gpt-4.1"), [], 42)  # nothing by the empty key list
        assert records == {}
    conn = sqlite3.connect(store_path)
    rows = [json.loads(r) for (r,) in conn.execute("SELECT record FROM passes")]
    migrated = conn.execute("SELECT SUM(passes) FROM migrations").fetchone()[0]
    conn.close()
    assert migrated == len(rows) > 0
    for rec in rows:  # sub-scores recomputed from the stored answers, upstream's arithmetic
        sc, pq = parse_scores(rec["raw_sc"], 25).scores, parse_scores(rec["raw_pq"], 25).scores
        assert sc is not None and pq is not None
        expected = combine(sc, pq)
        assert rec["prompt_following"] == expected["prompt_following"] == sc[0] / 2.5


def test_a_version_1_store_of_a_served_card_is_judged_again(
    server, parquet_bench, tmp_path
) -> None:
    """Version 1 sent JPEG at the image's own size: none of its passes stand for today's."""
    bench = _bench(parquet_bench)
    total = _requests(server, bench, tmp_path)
    _as_version_1(tmp_path / "store.sqlite", _fp("editscore-72b"), GOLDEN_V1["editscore-72b"])
    assert _requests(server, bench, tmp_path) == total
    with PassStore(tmp_path / "store.sqlite") as store:
        assert store.count(GOLDEN_V1["editscore-72b"]) > 0  # left where it was, unused


def test_a_store_of_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    PassStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = '99' WHERE name = 'version'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=r"version 99, written by a newer erb.*--store"):
        PassStore(path)
    bench = load_benchmark("mini").subset(1)
    with pytest.raises(RunError, match="newer erb"):
        run_evaluation(bench, "random", RunOptions(store=path, progress=False), out=tmp_path / "r")


# --------------------------------------------------------------------------- bad settings

BAD_CARD_FIELDS = [
    ("model = 42", "'model' must be a string"),
    ('[options]\ntimeout = "soon"', "'timeout' must be a number, got 'soon'"),
    ('[sampling]\ntemperature = "hot"', "'temperature' must be a number, got 'hot'"),
    ("[sampling]\nmax_tokens = -5", "'max_tokens' must be at least 1, got -5"),
    ('[options]\nsupports_n = "yes"', "'supports_n' must be a boolean (true or false), got 'yes'"),
    ('[options]\nlayout = "sideways"', "'layout' must be one of 'text-first'"),
    (
        "[options]\nlayoutt = 'text-first'",
        "unknown option for the openai backend 'layoutt'; did you mean 'layout'?",
    ),
    ("[sampling]\nseed = 3", "unknown sampling parameter 'seed'"),
    ("[options]\ndtype = 'bfloat16'", "unknown option for the openai backend 'dtype'"),
]


@pytest.mark.parametrize(("extra", "message"), BAD_CARD_FIELDS, ids=[b[0] for b in BAD_CARD_FIELDS])
def test_bad_card_settings_are_one_line_errors_naming_card_key_and_type(
    tmp_path: Path, extra: str, message: str
) -> None:
    card = tmp_path / "mine.toml"
    card.write_text(
        'name = "mine"\nprotocol = "editscore"\nbackend = "openai"\n'
        + ('model = "m"\n' if not extra.startswith("model") else "")
        + extra + "\n"
    )  # fmt: skip
    with pytest.raises(CardError) as info:
        load_judge(str(card))
    assert message in str(info.value) and str(card) in str(info.value)
    result = runner.invoke(app, ["evaluate", "--judge", str(card), "--dataset", "mini"])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output


def test_option_overrides_are_typed_and_checked() -> None:
    assert parse_override_value("true") is True
    assert parse_override_value("0.5") == 0.5
    assert parse_override_value("text-first") == "text-first"
    assert parse_override_value('["a", "b"]') == ["a", "b"]
    with pytest.raises(CardError, match=r"'batch_size' is a setting of the transformers backend"):
        load_judge("editscore-72b", batch_size=2)  # a local-backend setting on a served judge
    with pytest.raises(
        CardError, match=r"unknown setting 'temprature'; did you mean 'temperature'"
    ):
        load_judge("editscore-72b", temprature=0.5)
    with pytest.raises(CardError, match=r"'timeout' must be above 0"):
        load_judge("editscore-72b", timeout=0)
    assert parse_config(
        load_judge("gpt-4.1").card, {"base_url": "http://h/v1"}
    ).backend.base_urls == ("http://h/v1",)


def test_cli_option_flag(tmp_path: Path) -> None:
    out = runner.invoke(app, ["evaluate", "--judge", "editscore-72b", "--dataset", "mini",
                              "-o", "temprature=0.5"])  # fmt: skip
    assert out.exit_code == 2 and "did you mean 'temperature'" in out.output
    out = runner.invoke(app, ["evaluate", "--judge", "editscore-72b", "--dataset", "mini",
                              "-o", "temperature"])  # fmt: skip
    assert out.exit_code == 2 and "--option takes key=value" in out.output
    out = runner.invoke(app, ["evaluate", "--judge", "random", "--dataset", "mini",
                              "--max-retries", "3"])  # fmt: skip
    assert out.exit_code == 2 and "max_retries" in out.output
    card = REPO / "judges" / "editscore-7b.toml"
    assert "layout" in card.read_text()
