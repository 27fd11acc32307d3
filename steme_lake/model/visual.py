"""Perceptual hashes of evidence images (imagehash) and their distance."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import imagehash
from PIL import Image, UnidentifiedImageError

from steme_lake._exceptions import ValidationError

__all__ = ["hamming_distance", "visual_hash"]

_METHODS = {
    "phash": imagehash.phash,
    "dhash": imagehash.dhash,
    "ahash": imagehash.average_hash,
    "whash": imagehash.whash,
}


def visual_hash(image: Any, *, method: str = "phash", hash_size: int = 8) -> str:
    """The perceptual hash of an image, as hex text.

    Parameters
    ----------
    image
        A PIL image, a path to an image file, or the file's bytes.
    method
        ``"phash"`` (default), ``"dhash"``, ``"ahash"`` or ``"whash"``.
    hash_size
        Side of the hash grid; 8 gives a 64-bit hash.

    Examples
    --------
    >>> from PIL import Image
    >>> len(visual_hash(Image.new("L", (32, 32), 128)))
    16
    """
    if method not in _METHODS:
        raise ValidationError(
            f"unknown visual hash method {method!r}; use one of {sorted(_METHODS)}"
        )
    if isinstance(image, bytes | bytearray):
        image = _open(io.BytesIO(image), "the image bytes")
    elif isinstance(image, str | Path):
        image = _open(image, str(image))
    if not isinstance(image, Image.Image):
        raise ValidationError(
            f"visual_hash takes a PIL image, a path or bytes, not {type(image).__name__}"
        )
    return str(_METHODS[method](image, hash_size=hash_size))


def _open(source: Any, label: str) -> Image.Image:
    try:
        with Image.open(source) as img:
            img.load()
            return img
    except (UnidentifiedImageError, OSError) as exc:
        raise ValidationError(f"cannot read {label} as an image: {exc}") from exc


def hamming_distance(a: str, b: str) -> int:
    """The number of differing bits between two visual hashes of equal size.

    Examples
    --------
    >>> hamming_distance("ff00", "ff01")
    1
    """
    try:
        ha, hb = imagehash.hex_to_hash(a), imagehash.hex_to_hash(b)
    except ValueError as exc:
        raise ValidationError(f"visual hashes must be hex text: {exc}") from exc
    if ha.hash.shape != hb.hash.shape:
        raise ValidationError(
            f"visual hashes differ in size ({len(a)} vs {len(b)} hex characters); "
            "compare hashes made with the same hash_size"
        )
    return int(ha - hb)
