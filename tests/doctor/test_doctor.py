"""`steme doctor`: the lake rebuilt from its WAL and Parquet files, compared with
its manifest, on each corruption the hardening probe found; and the repairs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

import steme_lake as sl
from steme_lake import LakeOptions, StorageCorruptError, WalCorruptError
from steme_lake.storage.manifest import _checksum
from tests.conftest import PYTHON, child_env

SMALL = LakeOptions(segment_bytes=4096, flush_bytes=1 << 30, flush_age_seconds=3600)


def _lake(path: Path) -> Path:
    """Two flushes whose WAL segments are retired, then 10 rows in the WAL only."""
    with sl.open(path, options=SMALL) as lake:
        for i in range(30):
            lake.assert_("s", "p", i, agent="a", source="x")
        lake.flush()
        for i in range(30, 90):
            lake.assert_("s", "p", i, agent="a", source="x")
        lake.flush()
        for i in range(90, 100):
            lake.assert_("s", "p", i, agent="a", source="x")
        # leave without flushing: 10 rows stay in the WAL only
        lake._flusher = None
        lake._closed = True
        lake._release()
    return path


def _values(path: Path) -> list[int]:
    with sl.open(path) as lake:
        return sorted(lake.assertions.collect()["object"].cast(int).to_list())


def _newest(path: Path) -> Path:
    return sorted((path / "_manifest").glob("*.json"))[-1]


def _edit(path: Path, change: Any, *, rechecksum: bool = True) -> None:
    file = _newest(path)
    body = json.loads(file.read_bytes())
    change(body)
    if rechecksum:
        body.pop("checksum")
        body["checksum"] = _checksum(body)
    file.write_text(json.dumps(body, indent=1, sort_keys=True))


def _steme(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "steme_lake", *args], capture_output=True, text=True, env=child_env()
    )


class TestCheck:
    """A healthy lake is ok; the report counts rows in files and in the WAL."""

    def test_healthy(self, lake_path: Path) -> None:
        _lake(lake_path)
        report = sl.doctor(lake_path)
        assert report.ok, report
        assert report.tables["assertions"] == {
            "listed_rows": 90,
            "unlisted_rows": 0,
            "wal_rows": 10,
        }
        assert report.wal_last_seq == 100 and report.flushed_seq == 90
        with sl.open(lake_path) as lake:
            assert lake.doctor().ok

    def test_a_missing_key_index_is_told_and_compact_writes_it(self, lake_path: Path) -> None:
        _lake(lake_path)
        assert not [p for p in sl.doctor(lake_path).problems if "key index" in p.detail]
        gone = sorted((lake_path / "index" / "assertions" / "parent").rglob("*.parquet"))[0]
        gone.unlink()
        report = sl.doctor(lake_path)
        (told,) = [p for p in report.problems if "key index" in p.detail]
        assert report.ok and told.severity == "info"  # speed, not rows
        assert "1 file(s)" in told.detail and "steme flush --compact" in told.fix
        with sl.open(lake_path, options=SMALL) as lake:
            lake.compact()
        assert gone.is_file()
        assert not [p for p in sl.doctor(lake_path).problems if "key index" in p.detail]

    def test_cli(self, lake_path: Path) -> None:
        _lake(lake_path)
        done = _steme("doctor", "--lake", str(lake_path), "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["ok"] is True
        typo = _steme("doctor", "--lake", str(lake_path), "--repiar")
        assert typo.returncode == 2 and "--repair" in typo.stderr


CORRUPTIONS = {
    # one digit of flushed_seq, the checksum left as it was (damage after writing)
    "flushed_seq digit": (lambda b: b.update(flushed_seq=99), False, "checksum"),
    # written wrong (checksum made to match): only the cross-checks see these
    "table field": (lambda b: b["files"][-1].update(table="votes"), True, "table 'votes'"),
    "lowered flushed_seq": (lambda b: b.update(flushed_seq=60), True, "flushed_seq"),
    "duplicated entry": (lambda b: b["files"].append(dict(b["files"][0])), True, "twice"),
}


class TestRepair:
    """Each corruption: the lake refuses to open, doctor names it, --repair writes a
    good manifest, and every acknowledged row is back (nothing deleted)."""

    @pytest.mark.parametrize("name", sorted(CORRUPTIONS))
    def test_manifest_corruptions(self, lake_path: Path, name: str) -> None:
        change, rechecksum, words = CORRUPTIONS[name]
        _lake(lake_path)
        _edit(lake_path, change, rechecksum=rechecksum)
        with pytest.raises(StorageCorruptError, match="steme doctor"):
            sl.open(lake_path)
        report = sl.doctor(lake_path)
        assert not report.ok
        assert any(words in p.detail for p in report.problems if p.severity == "error"), report
        broken = _steme("doctor", "--lake", str(lake_path))
        assert broken.returncode == 1 and "NOT OK" in broken.stdout
        files_before = sorted(p.name for p in (lake_path / "tables").rglob("*.parquet"))
        repaired = sl.doctor(lake_path, repair=True)
        assert repaired.ok, repaired
        assert repaired.repaired and "published manifest version" in repaired.repaired[0]
        assert sorted(p.name for p in (lake_path / "tables").rglob("*.parquet")) == files_before
        assert _values(lake_path) == list(range(100))
        assert _steme("doctor", "--lake", str(lake_path)).returncode == 0

    def test_missing_file_is_reported_as_lost(self, lake_path: Path) -> None:
        _lake(lake_path)
        newest = json.loads(_newest(lake_path).read_bytes())
        victim = lake_path / newest["files"][0]["path"]
        victim.unlink()
        report = sl.doctor(lake_path)
        assert any("missing" in p.detail for p in report.problems)
        # A state index checkpoint (`query/_checkpoint.py`) may hold the lost rows.
        checkpoint = lake_path / "state" / "00000000000000000090-1-abcdef01"
        checkpoint.mkdir(parents=True)
        (checkpoint / "checkpoint.json").write_text("{}")
        repaired = sl.doctor(lake_path, repair=True)
        assert "in no file and no WAL segment" in repaired.repaired[0]
        assert "removed 1 state index checkpoint(s)" in repaired.repaired[1]
        assert not checkpoint.exists()
        with sl.open(lake_path) as lake:
            values = sorted(lake.assertions.collect()["object"].cast(int).to_list())
        assert values and set(values) < set(range(100))  # the rest, said to be lost

    def test_flipped_byte_in_the_last_frame(self, lake_path: Path) -> None:
        _lake(lake_path)
        segment = sorted((lake_path / "wal").glob("*.wal"))[-1]
        data = bytearray(segment.read_bytes())
        data[-10] ^= 0x01
        segment.write_bytes(bytes(data))
        with pytest.raises(WalCorruptError) as info:
            sl.open(lake_path)
        offset = info.value.offset
        report = sl.doctor(lake_path)
        (wal_error,) = [p for p in report.problems if p.severity == "error"]
        assert f"--truncate-at {offset}" in wal_error.fix
        with pytest.raises(sl.StemeLakeError, match="cut it first"):
            sl.doctor(lake_path, repair=True)
        done = _steme("doctor", "--lake", str(lake_path), "--truncate-at", str(offset), "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        out = json.loads(done.stdout)
        assert "saved to" in out["repaired"][0]
        (saved,) = (lake_path / "wal").glob("dropped-*.bin")
        assert saved.read_bytes() == bytes(data[offset:])
        assert _values(lake_path) == list(range(99))  # the damaged write, and only it, cut
        with sl.open(lake_path) as lake:
            assert "steme doctor" in str(lake.status().last_recovery)

    def test_truncate_at_checks_its_offset(self, lake_path: Path) -> None:
        _lake(lake_path)
        with pytest.raises(sl.ValidationError, match="outside"):
            sl.doctor(lake_path, truncate_at=10**9)
