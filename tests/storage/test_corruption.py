"""Damaged Parquet files are detected and named."""

from __future__ import annotations

from pathlib import Path

import pytest

import steme_lake as sl
from steme_lake import LakeOptions, StorageCorruptError


def _flushed_lake(path: Path) -> Path:
    with sl.open(path) as lake:
        for i in range(50):
            lake.assert_("s", "p", i, agent="a", source="x")
        lake.flush()
    (file,) = list((path / "tables" / "assertions").rglob("*.parquet"))
    return file


class TestParquetBitFlip:
    """A flipped bit in a flushed file is reported with the file's path."""

    def test_detected_on_first_use(self, lake_path: Path) -> None:
        file = _flushed_lake(lake_path)
        data = bytearray(file.read_bytes())
        data[len(data) // 2] ^= 0x04
        file.write_bytes(bytes(data))
        with sl.open(lake_path) as lake:
            with pytest.raises(StorageCorruptError) as info:
                lake.assertions.collect()
            assert info.value.path == str(file)
            lake.votes.collect()  # other tables stay readable

    def test_detected_at_open_when_asked(self, lake_path: Path) -> None:
        file = _flushed_lake(lake_path)
        data = bytearray(file.read_bytes())
        data[100] ^= 0x01
        file.write_bytes(bytes(data))
        with pytest.raises(StorageCorruptError, match="checksum"):
            sl.open(lake_path, options=LakeOptions(verify="open"))

    def test_missing_file(self, lake_path: Path) -> None:
        _flushed_lake(lake_path).unlink()
        with sl.open(lake_path) as lake, pytest.raises(StorageCorruptError, match="missing"):
            lake.verify()


class TestAuditChecksums:
    """The audit log (nine tenths of a big lake) is checked when it is read, not
    by every question: a damaged audit file leaves point questions answering
    and is reported by the first read of the audit log."""

    def test_questions_do_not_read_the_audit_log(self, lake_path: Path) -> None:
        with sl.open(lake_path, options=LakeOptions(state_index="off")) as lake:
            lake.assert_("auth/jwt", "alg", "RS256", agent="a", source="x")
            lake.query("auth/jwt", "alg", agent="asker")
            lake.flush()
        (audit_file,) = list((lake_path / "tables" / "audit").rglob("*.parquet"))
        data = bytearray(audit_file.read_bytes())
        data[len(data) // 2] ^= 0x04
        audit_file.write_bytes(bytes(data))
        # Without the index every question scans the tables (the slow path at open).
        with sl.open(lake_path, options=LakeOptions(state_index="off")) as lake:
            assert lake.query("auth/jwt", "alg", agent="asker").value == "RS256"
            with pytest.raises(StorageCorruptError) as info:
                lake.trace("asker", "-1h")
            assert info.value.path == str(audit_file)


class TestMislabelledFile:
    """A file whose manifest entry (checksum included) names the wrong table is a
    StorageCorruptError naming the file, not a Polars schema error mid-query."""

    def test_named(self, lake_path: Path) -> None:
        import json

        from steme_lake.storage.manifest import _checksum

        with sl.open(lake_path) as lake:
            lake.assert_("s", "p", 1, agent="a", source="x")
            lake.vote(lake.assertions.collect()["id"][0], agent="b")
            lake.flush()
        (manifest,) = (lake_path / "_manifest").glob("*.json")
        body = json.loads(manifest.read_bytes())
        votes = next(f for f in body["files"] if f["table"] == "votes")
        asserts = next(f for f in body["files"] if f["table"] == "assertions")
        # The votes entry now describes the assertions file (a bug writing the manifest).
        for key in ("blake3", "bytes", "rows"):
            votes[key] = asserts[key]
        wrong = lake_path / votes["path"]
        wrong.write_bytes((lake_path / asserts["path"]).read_bytes())
        body.pop("checksum")
        body["checksum"] = _checksum(body)
        manifest.write_text(json.dumps(body))
        with sl.open(lake_path) as lake, pytest.raises(StorageCorruptError) as info:
            lake.votes.collect()
        assert info.value.path == str(wrong) and "columns" in str(info.value)
