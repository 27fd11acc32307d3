"""Near-duplicates, contradictions and visual provenance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from PIL import Image, ImageDraw

import steme_lake as sl
from steme_lake import ValidationError
from steme_lake._exceptions import UnknownRecordError
from tests.conftest import JWT_EVENTS


def test_similar_finds_the_same_claim_worded_differently(tmp_lake: sl.Lake) -> None:
    first = tmp_lake.assert_("payments/retry", "policy", "retry failed card payments 3 times",
                             agent="a", source="s")  # fmt: skip
    again = tmp_lake.assert_("billing/retries", "policy", "failed card payments are retried "
                             "three times", agent="b", source="t")  # fmt: skip
    tmp_lake.assert_("cache/redis", "ttl_seconds", 300, agent="c", source="u")
    near = tmp_lake.vectors.similar(first, k=2)
    assert near["id"].to_list()[0] == again and first not in near["id"].to_list()
    assert near["score"][0] > near["score"][1]
    with pytest.raises(UnknownRecordError):
        tmp_lake.vectors.similar("ab" * 32)


def test_contradictions_show_the_contest_the_research_agent_missed(tmp_lake: sl.Lake) -> None:
    """Before asserting ES256, the research agent would have seen the approved RS256."""
    tmp_lake.import_events(JWT_EVENTS)
    before = "2026-01-15T14:00:00Z"  # the proposal came at 14:30
    seen = tmp_lake.vectors.contradictions("auth/jwt", "signing_algorithm", "ES256", as_of=before)
    top = seen.row(0, named=True)
    assert (top["subject"], top["value"], top["lifecycle"]) == (
        "auth/jwt", '"RS256"', "approved"
    )  # fmt: skip
    assert '"ES256"' not in set(seen["value"])  # the same value is no contest
    agree = tmp_lake.vectors.contradictions("auth/jwt", "signing_algorithm", "RS256",
                                            as_of=before)  # fmt: skip
    assert "auth/jwt" not in set(
        agree.filter(pl.col("predicate") == "signing_algorithm")["subject"]
    )
    with pytest.raises(ValidationError, match="threshold"):
        tmp_lake.vectors.contradictions("a", "b", 1, threshold=2)


def _picture(path: Path, shift: int, dark: bool = False) -> Path:
    img = Image.new("L", (64, 64), 20 if dark else 235)
    draw = ImageDraw.Draw(img)
    draw.rectangle((8 + shift, 8, 40 + shift, 50), fill=235 if dark else 20)
    draw.ellipse((30, 30 + shift, 60, 60), fill=128)
    img.save(path)
    return path


def test_search_by_image_with_the_lake_semantics(tmp_lake: sl.Lake, tmp_path: Path) -> None:
    day = datetime(2026, 1, 1, tzinfo=UTC)
    original = _picture(tmp_path / "a.png", 0)
    other = _picture(tmp_path / "c.png", 0, dark=True)
    ids = {}
    for name, picture, at in (("a", original, day), ("c", other, day + timedelta(hours=1))):
        ids[name] = tmp_lake.assert_(
            "dashboards/latency", "screenshot", name, agent="obs", source=str(picture),
            visual_hash=sl.visual_hash(picture), at=at,
        )  # fmt: skip
    tmp_lake.assert_("dashboards/latency", "note", "no image", agent="obs", source="x",
                     at=day + timedelta(hours=2))  # fmt: skip
    copy = _picture(tmp_path / "b.png", 1)  # nearly the same picture
    found = tmp_lake.vectors.search_image(copy, max_distance=10)
    assert found["id"].to_list()[0] == ids["a"] and found["distance"][0] <= 10
    assert ids["c"] not in found["id"].to_list()
    by_hash = tmp_lake.vectors.search_image(sl.visual_hash(original), max_distance=0)
    assert by_hash["id"].to_list() == [ids["a"]] and by_hash["distance"].to_list() == [0]
    assert tmp_lake.vectors.search_image(original, as_of=day - timedelta(seconds=1)).is_empty()
    tmp_lake.supersede(ids["a"], agent="h", kind="invalidate", reason="wrong dashboard")
    assert tmp_lake.vectors.search_image(original, max_distance=0).is_empty()
    (tmp_path / "broken.png").write_bytes(b"not an image")
    with pytest.raises(ValidationError, match="cannot read"):
        tmp_lake.vectors.search_image(tmp_path / "broken.png")
    with pytest.raises(ValidationError, match="max_distance"):
        tmp_lake.vectors.search_image(original, max_distance=-1)
