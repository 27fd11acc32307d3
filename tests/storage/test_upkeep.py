"""Automatic flush by age, compaction and vacuum with a retention period."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

import steme_lake as sl
from steme_lake import LakeOptions


def _until(done: Callable[[], bool], seconds: float = 30) -> None:
    """Wait for the background flush to do (or fail) its work; the asserts follow."""
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        time.sleep(0.01)


class TestAutomaticFlush:
    """Unflushed data older than flush_age_seconds is flushed after the next commit,
    in a thread of its own (the commit does not wait for it)."""

    def test_by_age(self, lake_path: Path) -> None:
        with sl.open(lake_path, options=LakeOptions(flush_age_seconds=0.0)) as lake:
            lake.assert_("s", "p", 1, agent="a", source="x")
            _until(lambda: lake.status().manifest_version > 0)
            status = lake.status()
            assert status.manifest_version == 1
            assert status.tables["assertions"]["unflushed_rows"] == 0
            assert status.last_flush_error is None

    def test_a_failed_background_flush_loses_nothing(
        self, lake_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import steme_lake.lake._lake as lake_module

        def full_disk(*args: object, **kwargs: object) -> None:
            raise OSError(28, "No space left on device")

        opts = LakeOptions(flush_age_seconds=0.0)
        with sl.open(lake_path, options=opts) as lake, monkeypatch.context() as m:
            m.setattr(lake_module, "write_partitions", full_disk)
            lake.assert_("s", "p", 1, agent="a", source="x")  # acknowledged
            _until(lambda: lake.status().last_flush_error is not None)
            status = lake.status()
            assert "No space left" in (status.last_flush_error or "")
            assert status.manifest_version == 0
            assert lake.query("s", "p", agent="q").value == 1  # still answered
            m.undo()  # the disk has room again: closing flushes
        with sl.open(lake_path) as lake:  # the close flushed it once the disk had room
            assert lake.status().tables["assertions"]["unflushed_rows"] == 0
            assert lake.query("s", "p", agent="q").value == 1

    def test_on_close(self, lake_path: Path) -> None:
        with sl.open(lake_path) as lake:
            lake.assert_("s", "p", 1, agent="a", source="x")
        with sl.open(lake_path) as lake:
            assert lake.status().tables["assertions"] == {
                "files": 1,
                "rows": 1,
                "unflushed_rows": 0,
                "bytes": lake.status().tables["assertions"]["bytes"],
            }


class TestVacuum:
    """Compacted-away files stay for readers during the retention, then go."""

    def test_retention(self, lake_path: Path) -> None:
        opts = LakeOptions(compact_min_files=100, vacuum_retain_seconds=3600)
        with sl.open(lake_path, options=opts) as lake:
            for i in range(4):
                lake.assert_("s", "p", i, agent="a", source="x")
                lake.flush()
            old_query = lake.assertions  # planned over the four small files
            before = sorted(
                p.relative_to(lake_path).as_posix() for p in lake_path.rglob("*.parquet")
            )
            # four data files, each with its id, parent and subject indexes
            assert len([p for p in before if p.startswith("tables/")]) == 4
            assert len([p for p in before if p.startswith("index/assertions/")]) == 12
            with sl.open(lake_path, options=LakeOptions(compact_min_files=2)) as other:
                assert other.compact() > 0
                assert other.vacuum() == []  # still within the retention
            assert old_query.collect().height == 4  # an old plan still reads
            assert lake.assertions.collect().height == 4
            removed = lake.vacuum(retain_seconds=0)
            assert sorted(removed) == before  # the indexes go with their files
            assert len(list(lake_path.rglob("*.parquet"))) == 4
            assert sorted(lake.assertions.collect()["object"].to_list()) == ["0", "1", "2", "3"]


class TestFiles:
    """`Lake.files` lists what other engines should read: the live files only."""

    def test_live_files_not_the_replaced_ones(self, lake_path: Path) -> None:
        opts = LakeOptions(compact_min_files=100, vacuum_retain_seconds=3600)
        with sl.open(lake_path, options=opts) as lake:
            for i in range(3):
                lake.assert_("s", "p", i, agent="a", source="x")
                lake.flush()
            assert len(lake.files("assertions")) == 3
            with sl.open(lake_path, options=LakeOptions(compact_min_files=2)) as other:
                assert other.compact() > 0
            on_disk = list((lake_path / "tables" / "assertions").rglob("*.parquet"))
            assert len(on_disk) == 4  # the three replaced files wait for vacuum
            live = lake.files("assertions")
            assert len(live) == 1 and Path(live[0]).is_file()
            assert pl.scan_parquet(live).collect().height == 3
            assert lake.files("votes") == []
            with pytest.raises(sl.ValidationError, match=r"unknown table 'vote'.*votes"):
                lake.files("vote")
