"""Perceptual hashes of evidence images."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw

from steme_lake import ValidationError, hamming_distance, visual_hash


def _picture(shift: int = 0) -> Image.Image:
    img = Image.new("L", (64, 64), 255)
    draw = ImageDraw.Draw(img)
    draw.rectangle((10 + shift, 10, 40 + shift, 50), fill=0)
    return img


class TestVisualHash:
    """Similar images hash close, different images far."""

    def test_same_image_from_bytes_and_object(self) -> None:
        buf = io.BytesIO()
        _picture().save(buf, format="PNG")
        assert visual_hash(buf.getvalue()) == visual_hash(_picture())

    def test_distance(self) -> None:
        a, b = visual_hash(_picture()), visual_hash(_picture(2))
        far = visual_hash(_picture().rotate(90))
        assert hamming_distance(a, a) == 0
        assert hamming_distance(a, b) < hamming_distance(a, far)

    def test_errors(self) -> None:
        with pytest.raises(ValidationError, match="image"):
            visual_hash(b"not an image")
        with pytest.raises(ValidationError, match="size"):
            hamming_distance("ff", "ffff")
        with pytest.raises(ValidationError, match="method"):
            visual_hash(_picture(), method="nope")
