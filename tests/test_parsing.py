"""The answer parser: lenient where upstream is, strict where upstream is not."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from editreward_bench.judges.parsing import parse_scores

WELL_FORMED = [
    (
        '{\n"reasoning" : "The sky is purple as asked.",\n"score" : [21, 18]\n}',
        (21, 18),
        "The sky is purple as asked.",
    ),
    (
        'Sure! Here is my evaluation:\n```json\n{"reasoning": "ok", "score": [25, 0]}\n```',
        (25, 0),
        "ok",
    ),
    ('{"score": [3.5, 12], "reasoning": "fine"}', (3.5, 12), "fine"),
    (
        '{"reasoning": "multi\nline\nreasoning", "score": [10, 11]}',
        (10, 11),
        "multi line reasoning",
    ),
    ('{"reasoning": "x", "score": ["7", "8"]}', (7, 8), "x"),
]
REPAIRED = [
    ("{“reasoning”: “smart quotes”, “score”: [20, 19]}", (20, 19)),
    ("{'reasoning': 'single quotes', 'score': [5, 6]}", (5, 6)),
    ('{reasoning: "unquoted keys", score: [1, 2]}', (1, 2)),
    ('{"reasoning": "he said "remove the cat" and it did", "score": [22, 24]}', (22, 24)),
    (
        '{"reasoning": "truncated json", "score": [17, 16]',
        (17, 16),
    ),  # upstream takes the bare list too
    ("[12, 14]", (12, 14)),
    ("The scores are [9, 10].", (9, 10)),
    ('{"reasoning": "broken, "score": [8, 9]}', (8, 9)),
    ("{'reasoning': \"it's fine\", 'score': [4, 4]}", (4, 4)),
    ('{"reasoning": "ok", "score": [13, 14],}', (13, 14)),
]
FAILURES = [
    ("", "empty answer"),
    ("   \n", "empty answer"),
    ("I'm sorry, but I can't assist with that request.", "no JSON object"),
    ('{"reasoning": "one score only", "score": [12]}', "expected 2 scores, got 1"),
    ('{"reasoning": "three", "score": [1, 2, 3]}', "expected 2 scores, got 3"),
    ('{"reasoning": "too high", "score": [26, 3]}', "outside 0..25"),
    ('{"reasoning": "negative", "score": [-1, 3]}', "outside 0..25"),
    ('{"reasoning": "no score here"}', "no 'score'"),
    ('{"reasoning": "text score", "score": ["high", "low"]}', "score list contains 'high'"),
    ('{"reasoning": "bool", "score": [true, 3]}', "boolean"),
    ("7", "no JSON object"),
    ('{"reasoning": "inf", "score": [1e999, 3]}', "not finite"),
]


@pytest.mark.parametrize(("text", "scores", "reasoning"), WELL_FORMED)
def test_well_formed(text: str, scores: tuple[float, float], reasoning: str) -> None:
    parsed = parse_scores(text)
    assert parsed.ok and parsed.scores == scores
    assert parsed.reasoning == reasoning


@pytest.mark.parametrize(("text", "scores"), REPAIRED)
def test_repaired(text: str, scores: tuple[float, float] | None) -> None:
    parsed = parse_scores(text)
    if scores is None:
        assert not parsed.ok
    else:
        assert parsed.ok, parsed.error
        assert parsed.scores == scores


def test_quotes_inside_reasoning_are_kept() -> None:
    parsed = parse_scores('{"reasoning": "he said "remove the cat" and it did", "score": [22, 24]}')
    assert parsed.reasoning == 'he said "remove the cat" and it did'


@pytest.mark.parametrize(("text", "error"), FAILURES)
def test_failures_say_why(text: str, error: str) -> None:
    parsed = parse_scores(text)
    assert not parsed.ok and parsed.scores is None
    assert parsed.error is not None and error in parsed.error


def test_score_range_is_respected() -> None:
    assert parse_scores('{"score": [10, 10]}', score_range=10).ok
    assert not parse_scores('{"score": [11, 10]}', score_range=10).ok


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300))
def test_never_raises_never_out_of_range(text: str) -> None:
    parsed = parse_scores(text)
    if parsed.scores is not None:
        assert len(parsed.scores) == 2
        assert all(math.isfinite(s) and 0 <= s <= 25 for s in parsed.scores)
    else:
        assert parsed.error


json_like = st.recursive(
    st.one_of(
        st.integers(-50, 50),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=20),
        st.booleans(),
        st.none(),
    ),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["score", "reasoning", "x"]), children, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=400, deadline=None)
@given(json_like, st.sampled_from(["", "Answer: ", "```json\n"]))
def test_never_raises_on_structured_garbage(value: object, prefix: str) -> None:
    import json

    parsed = parse_scores(prefix + json.dumps(value))
    if parsed.scores is not None:
        assert all(math.isfinite(s) and 0 <= s <= 25 for s in parsed.scores)
