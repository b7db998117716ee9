"""Generation: ``generate`` arguments from the card's sampling, seeding, the two modes, answers.

Exact mode is upstream's transformers path (``EditScore.evaluate`` over
``Qwen25VL.inference`` / ``Qwen3VL.inference`` in ``editscore`` 0.2): every
request is its own ``generate`` call of one sequence, right after
:func:`seed_everything` with that request's seed, with only the card's sampling
arguments (upstream's ``max_new_tokens``, ``do_sample``, ``temperature``,
``top_p``, ``top_k``) on top of the model's generation config. The judge sends
pass i's SC, then its PQ, each with seed 42 + i, so every stored seed is the one
its answers were drawn with, and the answers are upstream's sample for sample on
the same hardware, dtype and library versions. A request for ``n`` samples is
``n`` such calls, sample j seeded with ``seed + j``.

Batched mode: requests that share a seed (and ``n``) go into one batch of at most
``batch_size`` sequences, left padded, ``n`` samples each
(``num_return_sequences``); the seed is set before each batch. Under sampling the
random stream is then shared by the rows of a batch, so answers depend on how
requests were batched, and sample j of a request is not what seed ``seed + j``
alone would draw; greedy answers do not depend on either.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch

from ...judges.base import GenRequest, GenResponse
from .loading import Loaded

DEFAULT_MAX_NEW_TOKENS = 512

#: Runs one batch: (requests, n, seed) -> one response per request.
BatchRunner = Callable[[list[GenRequest], int, int], list[GenResponse]]


def seed_everything(seed: int) -> None:
    """Upstream's ``set_seed``: ``random``, numpy, torch and every CUDA device."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def generation_kwargs(sampling: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """``generate`` arguments from the card's sampling (on top of the model's generation
    config), and whether they sample."""
    max_new = sampling.get("max_new_tokens", sampling.get("max_tokens", DEFAULT_MAX_NEW_TOKENS))
    kwargs: dict[str, Any] = {"max_new_tokens": int(max_new)}
    temperature = sampling.get("temperature")
    if temperature is not None and float(temperature) <= 0:
        kwargs["do_sample"] = False
        return kwargs, False
    if temperature is not None:
        kwargs["do_sample"] = True
        kwargs["temperature"] = float(temperature)
    if sampling.get("top_p") is not None:
        kwargs["top_p"] = float(sampling["top_p"])
    if sampling.get("top_k") is not None:
        kwargs["top_k"] = int(sampling["top_k"])
    if sampling.get("repetition_penalty") is not None:
        kwargs["repetition_penalty"] = float(sampling["repetition_penalty"])
    return kwargs, bool(kwargs.get("do_sample", True))


def completion_length(
    tokens: list[int], stop: set[int] | frozenset[int], eos: frozenset[int]
) -> int:
    """Generated tokens up to and including the first end-of-sequence (padding excluded)."""
    for position, token in enumerate(tokens):
        if token in stop:
            return position + (1 if token in eos else 0)
    return len(tokens)


def plan_batches(
    requests: Sequence[GenRequest], do_sample: bool
) -> list[tuple[int, int, list[int]]]:
    """(seed, n, request indices): same-seed requests together, in first-seen order."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, request in enumerate(requests):
        # Greedy decoding ignores the seed: any requests may share a batch.
        seed = request.seed if do_sample else requests[0].seed
        groups.setdefault((seed, max(1, request.n)), []).append(i)
    return [(seed, n, indices) for (seed, n), indices in groups.items()]


def run_safely(
    run: BatchRunner, batch: list[GenRequest], n: int, seed: int, *, cuda: bool
) -> list[GenResponse]:
    """Run a batch; out of memory, run its halves; any other failure fails the batch only."""
    try:
        return run(batch, n, seed)
    except torch.cuda.OutOfMemoryError as exc:
        if cuda:
            torch.cuda.empty_cache()
        if len(batch) > 1:
            half = len(batch) // 2
            return run_safely(run, batch[:half], n, seed, cuda=cuda) + run_safely(
                run, batch[half:], n, seed, cuda=cuda
            )
        return [GenResponse(texts=[], error=f"out of memory: {exc}") for _ in batch]
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"
        return [GenResponse(texts=[], error=message) for _ in batch]


def generate_batch(
    loaded: Loaded,
    inputs: dict[str, Any],
    gen_kwargs: Mapping[str, Any],
    *,
    requests: int,
    n: int,
    seed: int,
    do_sample: bool,
    exact: bool = False,
) -> list[GenResponse]:
    """One ``generate`` call for ``requests`` encoded prompts, ``n`` samples each.

    ``exact``: upstream's call, one prompt and one sequence, and no argument beyond the
    card's sampling (no padding token: a single sequence is never padded).
    """
    if exact and (requests != 1 or n != 1):
        raise ValueError(f"exact mode generates one sequence per call, not {requests} x {n}")
    samples = n if do_sample else 1  # greedy: one answer, repeated n times
    kwargs = dict(gen_kwargs)
    if samples > 1:
        kwargs["num_return_sequences"] = samples
    if loaded.pad_id is not None and not exact:
        kwargs["pad_token_id"] = loaded.pad_id
    seed_everything(seed)
    with torch.inference_mode():
        output = loaded.model.generate(**inputs, **kwargs)
    sequences = getattr(output, "sequences", output)
    prompt_len = inputs["input_ids"].shape[1]
    generated = sequences[:, prompt_len:].to("cpu")
    texts = loaded.processor.batch_decode(
        generated, skip_special_tokens=True, clean_up_tokenization_spaces=False
    )
    prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist()
    stop = loaded.eos_ids | ({loaded.pad_id} if loaded.pad_id is not None else set())
    responses = []
    for i in range(requests):
        rows = range(i * samples, (i + 1) * samples)
        answers = [str(texts[r]).strip() for r in rows]
        completion = sum(
            completion_length(generated[r].tolist(), stop, loaded.eos_ids) for r in rows
        )
        if samples < n:
            answers = answers * n
            completion *= n
        responses.append(
            GenResponse(
                texts=answers, prompt_tokens=int(prompt_tokens[i]), completion_tokens=completion
            )
        )
    return responses


def merge_samples(responses: Sequence[GenResponse]) -> GenResponse:
    """The responses of one request's sample-by-sample calls as one response."""
    failed = next((r for r in responses if r.error is not None), None)
    if failed is not None:
        return GenResponse(texts=[], error=failed.error)
    if len(responses) == 1:
        return responses[0]
    texts = [text for r in responses for text in r.texts]
    return GenResponse(
        texts=texts,
        prompt_tokens=_total(r.prompt_tokens for r in responses),
        completion_tokens=_total(r.completion_tokens for r in responses),
    )


def _total(values: Iterable[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None
