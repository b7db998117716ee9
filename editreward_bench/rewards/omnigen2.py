"""A drop-in for OmniGen2-RL's reward client, speaking JSON to ``erb serve-reward``.

OmniGen2-RL calls ``evaluate_images(input_images, output_image, meta_datas,
proxy_host, proxy_port, server_type)`` from ``omnigen2/grpo/reward_client_edit.py``;
import this one instead::

    from editreward_bench.rewards.omnigen2 import evaluate_images

and point ``proxy_host`` / ``proxy_port`` at ``erb serve-reward`` (its token, if any,
in ``$ERB_REWARD_TOKEN``). Upstream's meanings are kept: ``rewards[i]`` is the mean
over passes of the overall score / 10, ``scores[i]`` is 1.0 when that reward is at
least 0.5, else 0.0; ``reasoning[i]`` lists each pass's sub-scores and answers, and
``meta_data[i]`` is the item's metadata with its ``original_index``.

Unlike upstream, the request is JSON (no pickle). The server resizes the edited
image to the source's size by default (the benchmark protocol); upstream's RL
server judges it as given, which ``erb serve-reward --no-resize-edited`` reproduces.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from .client import RewardClient, RewardServerError, fill_failed

log = logging.getLogger("erb.reward.omnigen2")


def _meta(value: Any, index: int) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = {"prompt": value}
    if not isinstance(value, dict):
        raise TypeError(
            f"meta_datas[{index}] must be a dict or a JSON string, got {type(value).__name__}"
        )
    instruction = value.get("instruction")
    if not isinstance(instruction, str):
        raise ValueError(f"meta_datas[{index}] has no 'instruction'")
    return {**value, "original_index": index}


def _source(value: Any) -> Any:
    # Upstream passes a list of input images per sample; the first is the image edited.
    if isinstance(value, (list, tuple)):
        return value[0]
    return value


def _reasoning(result: dict[str, Any]) -> str:
    if result["error"] is not None:
        return f"error: {result['error']}"
    lines = [
        f"O_score: {result['overall']}",
        f"prompt_following: {result['prompt_following']}",
        f"consistency: {result['consistency']}",
        f"PQ_score: {result['perceptual_quality']}",
        f"passes: {result['passes']}",
    ]
    for p in result.get("reasoning") or []:
        lines.append(f"pass {p['pass']} SC_raw_output: {p['raw_sc']}")
        lines.append(f"pass {p['pass']} PQ_raw_output: {p['raw_pq']}")
    return "\n".join(lines)


def evaluate_images(
    input_images: Sequence[Any],
    output_image: Sequence[Any],
    meta_datas: Sequence[Any],
    proxy_host: str = "127.0.0.1",
    proxy_port: int = 8080,
    server_type: str = "vlm",
    *,
    on_error: str | float = "group_mean",
    k: int | None = None,
    timeout: float = 600.0,
    max_retries: int = 1,
) -> tuple[list[float], list[float], list[str], list[dict[str, Any]]] | None:
    """``(scores, rewards, reasoning, meta_data)`` aligned with the inputs, or None when the
    server cannot be reached (as upstream's client returns None; logged as an error).

    ``input_images[i]`` is the source (a PIL image, or a list whose first image is the
    source), ``output_image[i]`` the edit, ``meta_datas[i]`` a dict or JSON string with
    its ``instruction``. ``server_type`` is accepted for compatibility and ignored.

    A failed item (every pass failed on the server) becomes what ``on_error`` says,
    and a warning is logged: ``"group_mean"`` (default) gives it the mean reward of
    the scored items with the same instruction (its GRPO advantage is then 0; 0.0
    when all of them failed), ``"raise"`` raises
    :class:`~editreward_bench.rewards.client.RewardError`, a number gives it that
    number. Its ``meta_data`` carries ``"error"`` and its reasoning says why.
    """
    del server_type
    if not output_image:
        return [], [], [], []
    metas = [_meta(m, i) for i, m in enumerate(meta_datas)]
    instructions = [m["instruction"] for m in metas]
    client = RewardClient(
        f"http://{proxy_host}:{proxy_port}", timeout=timeout, max_retries=max_retries
    )
    try:
        answer = client.score(
            instructions, [_source(s) for s in input_images], list(output_image),
            groups=instructions, k=k, reasoning=True,
        )  # fmt: skip
    except RewardServerError as exc:
        log.error("reward server failed: %s", exc)
        return None
    results = answer["results"]
    values = [None if r["error"] else r["overall"] / 10 for r in results]
    rewards = fill_failed(values, instructions, [r["error"] for r in results], on_error)
    scores = [1.0 if reward >= 0.5 else 0.0 for reward in rewards]
    meta_data = []
    for meta, result in zip(metas, results, strict=True):
        meta_data.append({**meta, "error": result["error"]} if result["error"] else meta)
    return scores, rewards, [_reasoning(r) for r in results], meta_data
