"""An editing model's output for one benchmark item, as a judge sees it.

An :class:`EditItem` is an (instruction, source image, edited image) triple whose images
are files (or dataset cells) read when a judge asks for them. Its images are opened the
way GEdit-Bench's harness opens them (``test_gedit_score.py``): the source as it is, the
edit converted to RGB and resized to the source's size with PIL's default resampling,
then each EXIF-transposed and converted to RGB, as the judge's image loader does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image as PILImage


@dataclass(frozen=True)
class ImageRef:
    """Where an image's encoded bytes are: a file, or a loader (a dataset cell)."""

    label: str
    path: Path | None = None
    loader: Callable[[], bytes] | None = field(default=None, compare=False, repr=False)
    #: The bytes' SHA-256 when the loader already computed it (a dataset checked at load).
    known_sha: str | None = None

    def read(self) -> bytes:
        if self.path is not None:
            return self.path.read_bytes()
        assert self.loader is not None
        return self.loader()

    @cached_property
    def sha(self) -> str:
        return self.known_sha or hashlib.sha256(self.read()).hexdigest()


@dataclass(frozen=True)
class EditItem:
    """One output of an editing model for one benchmark item (one sample, for Best-of-N)."""

    #: The candidate's key: the item's key, or ``<key>_sample<t>`` for a later sample.
    key: str
    item_key: str
    sample: int
    instruction: str
    #: GEdit-Bench's task group, or ImgEdit's edit type.
    group: str
    source: ImageRef
    edited: ImageRef
    language: str | None = None
    intersection: bool | None = None

    def source_bytes(self) -> bytes:
        return self.source.read()

    def edited_bytes(self) -> bytes:
        return self.edited.read()

    @property
    def source_key(self) -> str:
        """Identifies the source image: the samples of one item share its encoding."""
        return self.source.sha

    def load_images(self) -> tuple[PILImage.Image, PILImage.Image]:
        """(source, edited), both RGB, the edit at the source's size: GEdit-Bench's sequence."""
        return self.load_source(), self.load_edited()

    def load_source(self) -> PILImage.Image:
        """The source as it is, then EXIF-transposed and converted to RGB."""
        from PIL import Image, ImageOps

        return ImageOps.exif_transpose(Image.open(BytesIO(self.source_bytes()))).convert("RGB")

    def load_edited(self) -> PILImage.Image:
        """The edit converted to RGB and resized to the source's (stored) size, then
        EXIF-transposed and converted to RGB."""
        from PIL import Image, ImageOps

        size = Image.open(BytesIO(self.source_bytes())).size  # the header only
        edited = Image.open(BytesIO(self.edited_bytes())).convert("RGB").resize(size)
        return ImageOps.exif_transpose(edited).convert("RGB")

    def prompt_material(self) -> str:
        """What else the judge reads of the item (ImgEdit's rubric), for the store key."""
        return ""

    def fingerprint(self) -> str:
        """The pass store's key for this edit: key, instruction, both images, the rubric."""
        blob = "\x1f".join(
            (self.key, self.instruction, self.source.sha, self.edited.sha, self.prompt_material())
        )
        return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class RubricItem(EditItem):
    """An ImgEdit-Bench item: its edit type's rubric with the instruction filled in."""

    rubric_prompt: str = ""

    def prompt_material(self) -> str:
        return self.rubric_prompt


@dataclass(frozen=True)
class MissingOutput:
    """An item whose output (or source) file is not there; upstream skips it silently."""

    key: str
    item_key: str
    sample: int
    group: str
    why: str
    language: str | None = None
    intersection: bool | None = None
