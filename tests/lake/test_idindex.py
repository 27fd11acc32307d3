"""The id index behind "a vote for an unknown assertion": flushed ids move from
the recent set into the compact arrays, and compaction outputs are not read again."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import steme_lake as sl
from steme_lake import LakeOptions


def _batch(lake: sl.Lake, k: int, n: int = 50) -> list[str]:
    return lake.assert_many(
        pl.DataFrame(
            {
                "subject": [f"s/{k}/{i}" for i in range(n)],
                "predicate": ["p"] * n,
                "object": [str(i) for i in range(n)],
                "agent": ["a"] * n,
                "source_hash": [f"{k:032x}{i:032x}" for i in range(n)],
            }
        )
    )


def test_flush_drains_recent_and_compaction_is_not_read_again(lake_path: Path) -> None:
    opts = LakeOptions(compact_min_files=3, vacuum_retain_seconds=0)
    with sl.open(lake_path, options=opts) as lake:
        index = lake._ids  # the test checks the index's own state
        ids: list[str] = []
        for k in range(2):
            ids += _batch(lake, k)
            assert len(index._recent) == 50  # this batch, until its flush
            lake.flush()
            assert not index._recent and len(index._hi) == len(ids)
        ids += _batch(lake, 2)
        lake.flush()  # the third file of the day: compacted into one
        assert lake.status().tables["assertions"]["files"] == 1
        ids += _batch(lake, 3)
        lake.flush()  # reads the new file; the compaction output only by lineage
        # Read once each: the compaction output added no second copy of any id.
        assert len(index._hi) == len(ids) == 200 and not index._recent
        assert all(i in index for i in ids)
        assert "f" * 64 not in index
        lake.vote(ids[0], agent="b")
        with pytest.raises(sl.UnknownRecordError, match="not in this lake"):
            lake.vote("e" * 64, agent="b")


def test_a_reopened_lake_reads_ids_only_when_asked(lake_path: Path) -> None:
    with sl.open(lake_path) as lake:
        first = _batch(lake, 0)
    with sl.open(lake_path) as lake:
        index = lake._ids
        second = _batch(lake, 1)
        lake.flush()
        assert len(index._hi) == 0 and len(index._recent) == 50  # never asked yet
        lake.vote(first[0], agent="b")  # an old id: every file is read once
        assert len(index._hi) == 100 and not index._recent
        ids = _batch(lake, 2)
        lake.flush()
        assert len(index._hi) == 150 and not index._recent
        assert all(i in index for i in (*first, *second, *ids))
