"""EditScore as a Flow-GRPO reward, served by ``erb serve-reward``.

Flow-GRPO's rewards are factories returning ``fn(images, prompts, metadata)``;
its image-editing trainer hands ``multi_score``'s function the generated
``images`` (a float tensor N x C x H x W in [0, 1]) and the source images
``ref_images`` (PIL). Register the factory and pass the sources on::

    # flow_grpo/rewards.py, in multi_score
    from editreward_bench.rewards.flow_grpo import editscore_score
    score_functions["editscore"] = editscore_score
    ...
    elif score_name == "editscore":
        scores, rewards = score_fns[score_name](images, prompts, metadata, ref_images)

and train with ``config.reward_fn = {"editscore": 1.0}``, the server's address in
``$ERB_REWARD_URL`` (default ``http://127.0.0.1:8080``) and its token, if any, in
``$ERB_REWARD_TOKEN``. torch is never imported here unless ``images`` is a tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .client import RewardClient, fill_failed

SUBSCORES = ("overall", "prompt_following", "consistency", "perceptual_quality")


def to_uint8_images(images: Any) -> list[Any]:
    """Images as HxWxC uint8 arrays (or as given, for PIL images, paths and bytes).

    A float tensor or array N x C x H x W in [0, 1] becomes uint8 exactly as Flow-GRPO's
    own rewards convert it (``(x * 255).round().clamp(0, 255)``, then N x H x W x C); a
    uint8 array N x H x W x C is taken as it is.
    """
    if hasattr(images, "detach") and hasattr(images, "dtype"):  # a torch tensor
        import torch

        array = (images * 255).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
        return list(array.transpose(0, 2, 3, 1))
    import numpy as np

    if isinstance(images, np.ndarray):
        if images.ndim != 4:
            raise ValueError(f"images must be N x C x H x W or N x H x W x C, got {images.shape}")
        if images.dtype == np.uint8:
            channels_first = images.shape[1] in (1, 3, 4) and images.shape[-1] not in (1, 3, 4)
            return list(images.transpose(0, 2, 3, 1) if channels_first else images)
        array = np.clip(np.round(images.astype(np.float32) * 255), 0, 255).astype(np.uint8)
        return list(array.transpose(0, 2, 3, 1))
    return list(images)


def _source(value: Any) -> Any:
    # The edit-plus trainer may pass several reference images per sample: the first is the source.
    if isinstance(value, (list, tuple)):
        return value[0]
    return value


def editscore_score(
    device: Any = None,
    *,
    url: str | None = None,
    token: str | None = None,
    k: int | None = None,
    subscore: str = "overall",
    divide_by: float = 10.0,
    on_error: str | float = "group_mean",
    image_format: str = "png",
    timeout: float = 600.0,
    max_retries: int = 3,
) -> Callable[..., tuple[list[float], dict[str, Any]]]:
    """A Flow-GRPO reward: ``fn(images, prompts, metadata, ref_images) -> (scores, rewards)``.

    ``scores[i]`` is item i's ``subscore`` (Avg@k over the server's k passes, or ``k``)
    divided by ``divide_by`` (10: rewards in 0..1, as OmniGen2-RL's); ``rewards`` is a
    dict of the details (each sub-score, the passes that succeeded, errors, the server's
    diagnostics), in the place Flow-GRPO's own rewards return their metadata. ``device``
    is accepted, and ignored, because ``multi_score`` passes it.

    A failed item (the server could not judge it: every pass failed) becomes what
    ``on_error`` says, and a warning is logged: ``"group_mean"`` (default) gives it
    the mean reward of the other samples of its prompt, so its advantage is 0 and it
    teaches nothing (0.0 when the whole group failed); ``"raise"`` raises
    :class:`~editreward_bench.rewards.client.RewardError`; a number gives it that
    number. A server that cannot be reached raises
    :class:`~editreward_bench.rewards.client.RewardServerError` after ``max_retries``.
    """
    if subscore not in SUBSCORES:
        raise ValueError(f"subscore is one of {SUBSCORES}, not {subscore!r}")
    client = RewardClient(
        url, token=token, timeout=timeout, max_retries=max_retries, image_format=image_format
    )

    def _fn(
        images: Any,
        prompts: Sequence[str],
        metadata: Any = None,
        ref_images: Sequence[Any] | None = None,
    ) -> tuple[list[float], dict[str, Any]]:
        if ref_images is None:
            raise ValueError(
                "the EditScore reward needs the source images: call it as "
                "fn(images, prompts, metadata, ref_images) (see editreward_bench.rewards.flow_grpo)"
            )
        edited = to_uint8_images(images)
        sources = [_source(r) for r in ref_images]
        prompts = list(prompts)
        answer = client.score(prompts, sources, edited, groups=prompts, k=k)
        results = answer["results"]
        values = [
            None if r[subscore] is None or r["error"] else r[subscore] / divide_by for r in results
        ]
        scores = fill_failed(values, prompts, [r["error"] for r in results], on_error)
        details: dict[str, Any] = {name: [r[name] for r in results] for name in SUBSCORES}
        details["passes"] = [r["passes"] for r in results]
        details["errors"] = [r["error"] for r in results]
        details["diagnostics"] = answer.get("diagnostics", {})
        return scores, details

    return _fn
