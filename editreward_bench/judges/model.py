"""What every model judge shares, whatever its protocol: identity, store key, lifecycle.

A model judge is a protocol (EditScore, VIEScore, ImgEdit's rubric) run on a
:class:`~editreward_bench.judges.base.Backend`, built from a validated
:class:`~editreward_bench.judges.options.JudgeConfig`. Its store key is derived
from the settings' declarations here, once, so no protocol can drift from another.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from .base import Backend, Judge
from .options import JudgeConfig, all_settings, answer_settings


class ModelJudge(Judge):
    """A protocol on a backend; subclasses say what their prompts are and implement ``ajudge``."""

    #: Version of the protocol's store-key layout; bump it when its answers change meaning.
    store_key_version: int = 1

    def __init__(self, config: JudgeConfig, backend: Backend) -> None:
        super().__init__(config.card.display_name)
        self.card = config.card
        self.backend = backend
        #: The configuration with the backend's options as it resolved them (dtype, batch size).
        self.config = config.with_backend(getattr(backend, "options", config.backend))
        self.max_retries = config.common.max_retries

    @abstractmethod
    def template_hash(self) -> str:
        """A hash of the prompt texts this protocol sends."""

    def protocol_description(self) -> dict[str, Any]:
        """Protocol facts recorded with every run, beside the card and settings."""
        return {}

    def protocol_key(self) -> dict[str, Any]:
        """Protocol facts that change answers without being a declared setting."""
        return {}

    def describe(self) -> dict[str, Any]:
        return {
            **self.card.to_dict(),
            "name": self.name,
            "card": self.card.name,
            "settings": all_settings(self.config),
            "overridden": list(self.config.overridden),
            "backend_config": self.backend.describe(),
            "prompt_template_hash": self.template_hash(),
            **self.protocol_description(),
            "interface_version": self.interface_version,
        }

    def describe_for_fingerprint(self) -> dict[str, Any]:
        """What changes the answers, from the settings' own declarations (never a list kept by hand)."""
        return {
            "store_key": self.store_key_version,
            "protocol": self.card.protocol,
            "prompt_template_hash": self.template_hash(),
            **self.protocol_key(),
            "backend": self.card.backend,
            "model": self.card.model,
            "adapter": self.card.adapter,
            "settings": answer_settings(self.config),
        }

    def preflight(self) -> None:
        self.backend.preflight()

    def close(self) -> None:
        self.backend.close()

    async def aclose(self) -> None:
        await self.backend.aclose()
