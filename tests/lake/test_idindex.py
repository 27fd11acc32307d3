"""The id index behind "a vote for an unknown assertion": flushed ids move from
the recent set into the compact arrays, and compaction outputs are not read again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

import steme_lake as sl
from steme_lake import LakeOptions
from steme_lake.lake._idindex import IdIndex, _prefixes


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


def _recent(index: IdIndex) -> np.ndarray:
    with index._lock:
        return index._sorted_recent()[0]


def test_flush_drains_recent_and_compaction_is_not_read_again(lake_path: Path) -> None:
    opts = LakeOptions(compact_min_files=3, vacuum_retain_seconds=0)
    with sl.open(lake_path, options=opts) as lake:
        index = lake._ids  # the test checks the index's own state
        ids: list[str] = []
        for k in range(2):
            ids += _batch(lake, k)
            assert len(_recent(index)) == 50  # this batch, until its flush
            lake.flush()
            assert not len(_recent(index)) and len(index._hi) == len(ids)
        ids += _batch(lake, 2)
        lake.flush()  # the third file of the day: compacted into one
        assert lake.status().tables["assertions"]["files"] == 1
        ids += _batch(lake, 3)
        lake.flush()  # reads the new file; the compaction output only by lineage
        # Read once each: the compaction output added no second copy of any id.
        assert len(index._hi) == len(ids) == 200 and not len(_recent(index))
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
        assert len(index._hi) == 0 and len(_recent(index)) == 50  # never asked yet
        lake.vote(first[0], agent="b")  # an old id: every file is read once
        assert len(index._hi) == 100 and not len(_recent(index))
        ids = _batch(lake, 2)
        lake.flush()
        assert len(index._hi) == 150 and not len(_recent(index))
        assert all(i in index for i in (*first, *second, *ids))


def test_ids_sharing_their_first_64_bits_are_told_apart() -> None:
    index = IdIndex()
    head = "ab" * 8  # the same first 16 hex digits: the same sort key
    held = [head + f"{i:048x}" for i in range(3)]
    index.add_recent(pa.array(held[:2]))
    index.add_recent(held[2:])  # a list, as well as an Arrow column
    other = head + "f" * 48
    assert all(i in index for i in held) and other not in index
    assert index.all_in(pa.array(held)) and index.all_in(held[::-1])
    assert not index.all_in([*held, other]) and not index.all_in([held[0], "short"])
    assert "short" not in index and None not in index and len(index) == 3


def test_an_arrow_column_and_a_list_give_the_same_prefixes() -> None:
    """Commits hand their ids over as Arrow (read from its buffers, decoded by
    bytes.fromhex); a list goes digit by digit: both must agree, whatever the
    column's slicing, chunks and odd values."""
    ids = [f"{i:064x}"[::-1] for i in range(1, 300)]
    odd = [ids[0] + "tail", ids[1][:40], "G" * 64, "AB" * 32]
    for column in (
        pa.array(ids),
        pa.array(ids).slice(7, 100),
        pa.chunked_array([pa.array(ids[:10]), pa.array(ids[10:])]),
        pa.array(ids[:5] + odd),
    ):
        from_arrow = _prefixes(column)
        from_list = _prefixes(column.to_pylist())
        assert all((a == b).all() for a, b in zip(from_arrow, from_list, strict=True))
