"""Flushing, compaction and vacuum never change what a query returns."""

from __future__ import annotations

import os
import tempfile
import time
import unicodedata
from pathlib import Path

import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import steme_lake as sl
from steme_lake import LakeOptions

SUBJECTS = st.text(min_size=1, max_size=30).filter(
    # any text, as long as it is a canonical path (no empty, "." or ".." segment)
    lambda s: s.strip() != "" and all(seg not in ("", ".", "..") for seg in s.split("/"))
)
OBJECTS = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
ROWS = st.lists(
    st.fixed_dictionaries(
        {
            "subject": SUBJECTS,
            "predicate": SUBJECTS,
            "object": OBJECTS,
            "confidence": st.floats(0, 1),
            "agent": st.sampled_from(["a", "b", "../../etc", "é/\x00"]),
            "source": st.text(min_size=1, max_size=10),
        }
    ),
    min_size=1,
    max_size=12,
)


def _snapshot(lake: sl.Lake) -> dict[str, pl.DataFrame]:
    return {
        name: lake.table(name).collect().sort("seq", "id")
        for name in ("assertions", "votes", "lifecycle", "supersessions", "constraints", "audit")
    }


def _equal(a: dict[str, pl.DataFrame], b: dict[str, pl.DataFrame]) -> None:
    for name in a:
        assert_frame_equal(a[name], b[name])


class TestRoundTrip:
    """What is written is what is read: before and after flush, compaction and reopen."""

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(batches=st.lists(ROWS, min_size=1, max_size=4))
    def test_property(self, batches: list[list[dict]]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            opts = LakeOptions(compact_min_files=2, vacuum_retain_seconds=0)
            lake = sl.open(Path(tmp) / "lake", options=opts)
            written = []
            for rows in batches:
                ids = lake.assert_many(rows)
                lake.vote(ids[0], agent="voter", weight=-0.5)
                written.extend(zip(ids, rows, strict=True))
                lake.flush()
            before = _snapshot(lake)
            got = before["assertions"]
            assert got.height == len(written)
            by_id = {r["id"]: r for r in got.iter_rows(named=True)}
            for rid, row in written:
                stored = by_id[rid]
                # Text fields are stored in NFC; JSON values exactly as given.
                assert stored["subject"] == unicodedata.normalize("NFC", row["subject"])
                assert sl.Assertion.from_row(stored).object == row["object"]
                assert stored["confidence"] == row["confidence"]
            lake.compact()
            _equal(before, _snapshot(lake))
            lake.close()
            with sl.open(Path(tmp) / "lake") as again:
                _equal(before, _snapshot(again))

    def test_tail_and_files_together(self, tmp_lake: sl.Lake) -> None:
        first = tmp_lake.assert_("s", "p", 1, agent="a", source="x")
        tmp_lake.flush()
        second = tmp_lake.assert_("s", "p", 2, agent="a", source="x")
        got = tmp_lake.assertions.select("id").collect()["id"].to_list()
        assert got == [first, second]
        assert tmp_lake.status().tables["assertions"]["unflushed_rows"] == 1

    def test_flush_retires_wal_segments(self, lake_path: Path) -> None:
        opts = LakeOptions(segment_bytes=2048)
        with sl.open(lake_path, options=opts) as lake:
            for i in range(20):
                lake.assert_("s", "p", i, agent="a", source="x")
            assert lake.status().wal_segments > 2
            lake.flush()
            assert lake.status().wal_segments == 1
            assert lake.assertions.collect().height == 20

    def test_automatic_flush_by_size(self, lake_path: Path) -> None:
        with sl.open(lake_path, options=LakeOptions(flush_bytes=4096)) as lake:
            for i in range(40):
                lake.assert_("s", "p", i, agent="a", source="x")
            # the flush runs in a thread of its own: waited for, not raced
            deadline = time.monotonic() + 60
            while lake.status().manifest_version == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            status = lake.status()
            assert status.manifest_version > 0
            assert status.tables["assertions"]["rows"] == 40


class TestPlainParquet:
    """Other engines read the flushed lake directly."""

    def test_duckdb_agrees_on_counts_and_types(self, lake_path: Path) -> None:
        with sl.open(lake_path) as lake:
            lake.import_events(Path(__file__).parents[2] / "datasets" / "jwt_incident.jsonl")
            lake.flush()
            ours = {k: v["rows"] for k, v in lake.status().tables.items()}
        con = duckdb.connect()
        for table, rows in ours.items():
            pattern = lake_path / "tables" / table / "*" / "*.parquet"
            if rows == 0:
                continue
            count = con.execute(f"select count(*) from read_parquet('{pattern}')").fetchall()
            assert count == [(rows,)]
        described = con.execute(
            f"describe select * from read_parquet('{lake_path}/tables/assertions/*/*.parquet')"
        ).fetchall()
        kinds = {row[0]: row[1] for row in described}
        assert kinds["recorded_at"] == "TIMESTAMP WITH TIME ZONE"
        assert kinds["id"] == "VARCHAR"


class TestOddSubjects:
    """User text is data, never a path."""

    def test_traversal_and_nul(self, lake_path: Path) -> None:
        odd = ["etc/passwd", "a\x00b", "C:\\win", "x/" * 200 + "x", "..a/b.."]
        refused = ["../../etc/passwd", "/abs/path", "..", "x/" * 200]
        with sl.open(lake_path) as lake:
            for subject in odd:
                lake.assert_(subject, "../p", subject, agent="../../agent", source="x")
            for subject in refused:  # not canonical paths: refused, never stored
                with pytest.raises(sl.ValidationError, match="not a canonical path"):
                    lake.assert_(subject, "p", subject, agent="a", source="x")
            lake.flush()
            got = set(lake.assertions.collect()["subject"])
        assert got == set(odd)
        root = lake_path.resolve()
        for path in root.rglob("*"):
            assert root in path.resolve().parents
            assert "passwd" not in str(path) and "agent" not in str(path)
        assert not (lake_path.parent / "etc").exists()


class TestFlushIoErrors:
    """An I/O error while flushing (here an fsync that fails with EIO, injected
    through the lake's fsync seam) is a StorageError naming the file; the rows stay
    in the WAL and a later flush succeeds."""

    def test_fsync_eio_names_the_file(self, lake_path: Path) -> None:
        import errno

        from steme_lake import StorageError

        failing = {"on": False}

        def fsync(fd: int) -> None:
            if failing["on"]:
                raise OSError(errno.EIO, "Input/output error")
            os.fsync(fd)

        lake = sl.Lake(lake_path, _fsync=fsync)
        try:
            lake.assert_("s", "p", 1, agent="a", source="x")
            failing["on"] = True
            with pytest.raises(StorageError, match=r"tables/assertions/date=.*Input/output error"):
                lake.flush()
            failing["on"] = False
            assert lake.assertions.collect().height == 1
            assert lake.flush() == 1
        finally:
            lake.close()
        with sl.open(lake_path) as reopened:
            assert reopened.assertions.collect().height == 1
