"""What a reward is asked about: an edit given as PIL images, paths or bytes.

An :class:`RewardItem` becomes an :class:`ItemCandidate`, which a judge reads
exactly as it reads a benchmark candidate: the source decoded once and shared by
the edits of it, the edited image resized to the source's size with PIL's default
resampling (the benchmark protocol) unless ``resize_edited`` is off (upstream's
RL reward server does not resize).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from ..store import candidate_fingerprint

if TYPE_CHECKING:
    from PIL import Image as PILImage

#: A PIL image, the path of an image file, or its encoded bytes (PNG, JPEG, ...).
ImageInput = Union["PILImage.Image", str, os.PathLike, bytes, bytearray, memoryview]


class ItemImageError(ValueError):
    """An image of an item cannot be read; that item fails, the others are scored."""


@dataclass(frozen=True)
class RewardItem:
    """One edit to reward: the instruction, the source image and the edited image.

    ``group`` names the prompt the edit was sampled for (GRPO groups, Best-of-N
    candidates of one prompt); it is used for diagnostics only. ``key`` names the
    edit in a pass store: give a benchmark candidate's key, with its images as the
    dataset's bytes, to reuse the passes ``erb evaluate`` stored for it.
    """

    instruction: str
    source: Any
    edited: Any
    group: str | None = None
    key: str | None = None

    @classmethod
    def of(cls, value: Any) -> RewardItem:
        """An item from a ``RewardItem``, a mapping or an ``(instruction, source, edited)`` tuple."""
        if isinstance(value, RewardItem):
            item = value
        elif isinstance(value, Mapping):
            unknown = sorted(set(value) - {"instruction", "source", "edited", "group", "key"})
            if unknown:
                raise TypeError(f"unknown field(s) of a reward item: {unknown}")
            missing = [n for n in ("instruction", "source", "edited") if n not in value]
            if missing:
                raise TypeError(f"a reward item needs {missing}")
            item = cls(**dict(value))
        elif isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
            if len(value) != 3:
                raise TypeError(
                    f"a reward item tuple is (instruction, source, edited), got {len(value)} values"
                )
            item = cls(*value)
        else:
            raise TypeError(
                "a reward item is a RewardItem, a dict or an (instruction, source, edited) "
                f"tuple, not {type(value).__name__}"
            )
        if not isinstance(item.instruction, str):
            raise TypeError(f"instruction must be a string, got {type(item.instruction).__name__}")
        for name in ("group", "key"):
            if getattr(item, name) is not None and not isinstance(getattr(item, name), str):
                raise TypeError(f"{name} must be a string or None")
        return item


@dataclass(eq=False)
class ItemImage:
    """One image of an item: encoded bytes (decoded on demand) or a PIL image as given."""

    data: bytes | None = None
    image: PILImage.Image | None = None
    max_pixels: int = 8192 * 8192
    _sha: str | None = field(default=None, repr=False)
    _size: tuple[int, int] | None = field(default=None, repr=False)

    @classmethod
    def read(cls, value: Any, what: str, max_pixels: int) -> ItemImage:
        """From a PIL image, a path or bytes; raises :class:`ItemImageError` naming ``what``."""
        from PIL import Image

        if isinstance(value, Image.Image):
            return cls(image=value, max_pixels=max_pixels)
        if isinstance(value, (bytes, bytearray, memoryview)):
            data = bytes(value)
        elif isinstance(value, (str, os.PathLike)):
            try:
                data = Path(value).read_bytes()
            except OSError as exc:
                raise ItemImageError(f"{what}: cannot read {value}: {exc.strerror or exc}") from exc
        else:
            raise ItemImageError(
                f"{what}: an image is a PIL image, a path or bytes, not {type(value).__name__}"
            )
        if not data:
            raise ItemImageError(f"{what}: empty image")
        return cls(data=data, max_pixels=max_pixels)

    @property
    def sha(self) -> str:
        """A hash of the encoded bytes, as the benchmark hashes its images (or of a PIL image's pixels)."""
        if self._sha is None:
            if self.data is not None:
                self._sha = hashlib.blake2b(self.data, digest_size=16).hexdigest()
            else:
                assert self.image is not None
                h = hashlib.blake2b(digest_size=16)
                h.update(f"pil:{self.image.mode}:{self.image.size}".encode())
                h.update(self.image.tobytes())
                self._sha = "pil:" + h.hexdigest()
        return self._sha

    def size(self) -> tuple[int, int]:
        """(width, height) as decoded, read from the header (EXIF rotation included)."""
        if self._size is None:
            if self.image is not None:
                self._size = self.image.size
            else:
                from ..benchmark import _image_header

                assert self.data is not None
                try:
                    self._size = _image_header(self.data)
                except Exception as exc:
                    raise ItemImageError(f"cannot be decoded ({exc})") from exc
        return self._size

    def decode(self) -> PILImage.Image:
        """RGB pixels, decoded as the benchmark decodes its images."""
        from PIL import Image, ImageOps

        if self.image is not None:
            return self.image if self.image.mode == "RGB" else self.image.convert("RGB")
        width, height = self.size()
        if width * height > self.max_pixels:
            raise ItemImageError(f"{width}x{height} pixels, over the limit of {self.max_pixels}")
        assert self.data is not None
        try:
            img = Image.open(BytesIO(self.data))
            img.load()
            ImageOps.exif_transpose(img, in_place=True)
            return img if img.mode == "RGB" else img.convert("RGB")
        except (OSError, ValueError, SyntaxError) as exc:
            raise ItemImageError(f"cannot be decoded ({exc})") from exc


@dataclass(frozen=True, eq=False)
class ItemCandidate:
    """An item as a judge reads it (a shared-source candidate, like a benchmark's).

    ``key`` is unique per distinct edit within a call (the candidate fingerprint);
    ``record_key`` is the key its pass records are stored under.
    """

    key: str
    record_key: str
    instruction: str
    source: ItemImage
    edited: ItemImage
    resize_edited: bool = True

    @property
    def source_key(self) -> str:
        return self.source.sha

    def load_source(self) -> PILImage.Image:
        try:
            return self.source.decode()
        except ItemImageError as exc:
            raise ItemImageError(f"source image {exc}") from None

    def load_edited(self) -> PILImage.Image:
        try:
            edited = self.edited.decode()
        except ItemImageError as exc:
            raise ItemImageError(f"edited image {exc}") from None
        if not self.resize_edited:
            return edited
        try:
            size = self.source.size()
        except ItemImageError as exc:
            raise ItemImageError(f"source image {exc}") from None
        return edited if edited.size == size else edited.resize(size)

    def load_images(self) -> tuple[PILImage.Image, PILImage.Image]:
        return self.load_source(), self.load_edited()


@dataclass(frozen=True)
class _Ref:
    sha: str


@dataclass(frozen=True)
class _Fingerprinted:
    key: str
    instruction: str
    source: _Ref
    edited: _Ref


def item_fingerprint(
    instruction: str, source: ItemImage, edited: ItemImage, key: str | None, resize_edited: bool
) -> tuple[str, str]:
    """(store key, candidate fingerprint) of an item.

    With images given as bytes, a ``key`` and resizing on, this is exactly the
    benchmark candidate's fingerprint, so passes stored by ``erb evaluate`` are
    found. Without a key the content names the edit. Judging the edited image as
    given (``resize_edited=False``) is another question and gets another key.
    """
    if key is None:
        blob = "\x1f".join((instruction, source.sha, edited.sha))
        key = "edit-" + hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()[:20]
    fp = candidate_fingerprint(
        _Fingerprinted(key, instruction, _Ref(source.sha), _Ref(edited.sha))  # type: ignore[arg-type]
    )
    if not resize_edited:
        fp = hashlib.sha256(f"{fp}\x1fresize_edited=false".encode()).hexdigest()
    return key, fp
