"""erb and upstream editscore 0.2, driven on the same OpenAI-compatible server, give the same floats.

Upstream's harness (``evaluation.py``: the edited image resized to the source's size, then
``EditScore.evaluate`` on its API path, ``backbone="openai"``) and ``erb evaluate`` with the
``gpt-4.1`` card each talk to their own copy of the local server in ``sequence`` mode, which
answers from the request's content and how often that content was asked before, in varied
formats. Upstream asks pass after pass, unseeded; erb is run with one request per pass
(``supports_n = false``) and one request in flight, so both send the same requests in the same
order and get the same answers. Then every candidate's Avg@k sub-scores, and every row's
outcome, must be equal (``==``).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from editreward_bench.metrics import avg_at_k
from editreward_bench.runner import RunOptions, run_evaluation
from editreward_bench.testing.fake_openai import FakeOpenAIServer

SUBSCORES = ("prompt_following", "consistency", "perceptual_quality", "overall")


def _upstream(url: str, k: int):  # type: ignore[no-untyped-def]
    from editscore import EditScore

    return EditScore(
        backbone="openai", key="sk-test", openai_url=f"{url}/chat/completions",
        model_name_or_path="gpt-4.1", num_pass=k, seed=42,
    )  # fmt: skip


@pytest.mark.parametrize("k", [1, 4])
def test_same_server_same_answers_same_floats(mini, tmp_path: Path, k: int) -> None:
    bench = mini.subset(24)
    with FakeOpenAIServer(models=["gpt-4.1"], mode="sequence") as theirs:
        scorer = _upstream(theirs.url, k)
        upstream = {}
        for key, candidate in bench.candidates.items():
            source, edited = candidate.load_source(), candidate.load_edited()
            edited = edited.resize((source.size[0], source.size[1]))  # evaluation.py, as is
            upstream[key] = scorer.evaluate([source, edited], candidate.instruction)
        their_requests = len(theirs.log.snapshot())
    with FakeOpenAIServer(models=["gpt-4.1"], mode="sequence") as ours:
        options = RunOptions(
            base_urls=[ours.url], store=tmp_path / "s.sqlite", progress=False, n_bootstrap=0,
            k=k, concurrency=1, backend_options={"supports_n": False},
        )  # fmt: skip
        summary = run_evaluation(bench, "gpt-4.1", options, out=tmp_path / "run")
        our_requests = len(ours.log.snapshot())
    # No answer was asked again on either side (a retry would have shifted the series).
    assert our_requests == their_requests == 2 * k * len(bench.candidates)
    records = pq.read_table(tmp_path / "run" / "records.parquet").to_pylist()
    assert {r["status"] for r in records} == {"ok"}
    ours_avg, _ = avg_at_k([_scores(r) for r in records], k)
    for key, theirs_avg in upstream.items():
        mine = ours_avg[key]
        assert mine is not None
        for name in SUBSCORES:
            assert mine[name] == float(theirs_avg[name]), (key, name)
            assert repr(mine[name]) == repr(float(theirs_avg[name]))
    # Every row: the same comparison of the same floats (ties count as wrong).
    outcomes = pq.read_table(tmp_path / "run" / "outcomes.parquet").to_pylist()
    assert len(outcomes) == len(bench)
    for row, pair in zip(outcomes, bench.pairs, strict=True):
        dim = pair.dimension
        s0, s1 = (float(upstream[k_][dim]) for k_ in pair.keys)
        expected = "correct" if s0 > s1 else "tie" if s0 == s1 else "wrong"
        assert (row["score0"], row["score1"], row["outcome"]) == (s0, s1, expected)
    assert summary.metrics["failures"] == 0


def _scores(record):  # type: ignore[no-untyped-def]
    from editreward_bench.metrics import PassScores

    return PassScores.of(record)
