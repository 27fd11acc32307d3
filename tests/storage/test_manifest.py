"""Manifests are checked before they are believed: a checksum over the body, and
entries that must agree with themselves. A damaged newest version falls back to
the previous good one only when the WAL still holds what it had flushed; no WAL
segment is ever retired on the word of a manifest that does not check out."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

import steme_lake as sl
from steme_lake import LakeOptions, StorageCorruptError
from steme_lake.storage.manifest import FORMAT_V1, _checksum
from steme_lake.storage.writer import REMOVED_MEMORY

SMALL_SEGMENTS = LakeOptions(segment_bytes=4096, flush_bytes=1 << 30, flush_age_seconds=3600)


def _write(lake: sl.Lake, first: int, count: int) -> None:
    for i in range(first, first + count):
        lake.assert_("s", "p", i, agent="a", source="x")


def _manifests(path: Path) -> list[Path]:
    return sorted((path / "_manifest").glob("*.json"))


def _edit(file: Path, change: Any, *, rechecksum: bool) -> None:
    """Change a manifest's body; with ``rechecksum`` its checksum is made to match
    again (a manifest written wrong, not damaged after: only the cross-checks see it)."""
    body = json.loads(file.read_bytes())
    change(body)
    if rechecksum:
        body.pop("checksum", None)
        body["checksum"] = _checksum(body)
    file.write_text(json.dumps(body, indent=1, sort_keys=True))


def _one_digit(body: dict[str, Any]) -> None:
    body["flushed_seq"] = int(str(body["flushed_seq"])[:-1] + "9")


class TestChecksum:
    """One changed digit is caught; the previous good version is used instead."""

    def test_flushed_seq_digit_falls_back_with_nothing_lost(self, lake_path: Path) -> None:
        with sl.open(lake_path) as lake:
            _write(lake, 0, 30)
            lake.flush()
            _write(lake, 30, 30)
            lake.flush()
        newest = _manifests(lake_path)[-1]
        _edit(newest, _one_digit, rechecksum=False)
        with sl.open(lake_path) as lake:
            assert lake.assertions.collect().height == 60
            status = lake.status()
            assert status.manifest_recovery and "checksum" in status.manifest_recovery[0]
            assert status.manifest_version == 3  # the good version, published above it
            _write(lake, 60, 5)
            lake.flush()
            assert lake.verify() > 0
        with sl.open(lake_path) as lake:
            assert sorted(lake.assertions.collect()["object"].cast(int)) == list(range(65))
            assert lake.status().manifest_recovery == []

    def test_refused_when_the_wal_no_longer_covers(self, lake_path: Path) -> None:
        with sl.open(lake_path, options=SMALL_SEGMENTS) as lake:
            _write(lake, 0, 30)
            lake.flush()
            _write(lake, 30, 60)
            lake.flush()  # retires the segments that held 30..89
        newest = _manifests(lake_path)[-1]
        before = newest.read_bytes()
        _edit(newest, _one_digit, rechecksum=False)
        damaged = newest.read_bytes()
        with pytest.raises(StorageCorruptError, match=r"steme doctor --repair") as info:
            sl.open(lake_path, options=SMALL_SEGMENTS)
        assert "checksum" in str(info.value) and "WAL begins at" in str(info.value)
        assert newest.read_bytes() == damaged  # nothing was changed
        assert len(_manifests(lake_path)) == 2
        newest.write_bytes(before)
        with sl.open(lake_path) as lake:
            assert lake.assertions.collect().height == 90

    def test_no_good_version(self, lake_path: Path) -> None:
        with sl.open(lake_path) as lake:
            _write(lake, 0, 5)
            lake.flush()
        (only,) = _manifests(lake_path)
        only.write_bytes(only.read_bytes()[:-20])
        with pytest.raises(StorageCorruptError, match="none of the 1 manifest versions is good"):
            sl.open(lake_path)


class TestCrossChecks:
    """A manifest whose checksum matches but whose entries disagree with themselves
    (a bug, or a legacy v1 manifest without checksum) is refused, naming the problem."""

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            (lambda b: b["files"][0].update(table="votes"), "the entry says table 'votes'"),
            (lambda b: b["files"][0].update(table="vptes"), "unknown table 'vptes'"),
            (lambda b: b.update(flushed_seq=b["flushed_seq"] - 3), "files hold sequences up to"),
            (lambda b: b.update(flushed_seq=b["flushed_seq"] + 1), "files hold sequences up to"),
            (lambda b: b["files"].append(dict(b["files"][0])), "is listed twice"),
            (lambda b: b["files"][0].update(rows=0), "0 rows"),
            (lambda b: b["files"][0].update(min_seq=b["files"][0]["max_seq"] + 1), "entry says"),
        ],
    )
    @pytest.mark.parametrize("legacy", [False, True])
    def test_refused(self, lake_path: Path, change: Any, message: str, legacy: bool) -> None:
        with sl.open(lake_path) as lake:
            _write(lake, 0, 5)
            lake.flush()
        (only,) = _manifests(lake_path)

        def edit(body: dict[str, Any]) -> None:
            change(body)
            if legacy:
                body["format"] = FORMAT_V1
                body.pop("checksum", None)

        _edit(only, edit, rechecksum=not legacy)
        with pytest.raises(StorageCorruptError, match=re.escape(message)) as info:
            sl.open(lake_path)
        assert info.value.path.endswith("_manifest")

    def test_legacy_v1_manifest_still_reads(self, lake_path: Path) -> None:
        with sl.open(lake_path) as lake:
            _write(lake, 0, 5)
            lake.flush()
        (only,) = _manifests(lake_path)

        def to_v1(body: dict[str, Any]) -> None:
            body["format"] = FORMAT_V1
            body.pop("checksum")

        _edit(only, to_v1, rechecksum=False)
        with sl.open(lake_path) as lake:
            assert lake.assertions.collect().height == 5
            assert lake.status().manifest_recovery == []


class TestBoundedMetadata:
    """Metadata does not grow with the lake's age: old manifest versions go after
    the retention (the newest ten stay), ``removed`` forgets files once deleted,
    and temporary files of interrupted flushes are cleaned at open."""

    def test_long_run(self, lake_path: Path) -> None:
        options = LakeOptions(compact_min_files=3, vacuum_retain_seconds=0)
        with sl.open(lake_path, options=options) as lake:
            for round_ in range(120):
                _write(lake, round_ * 3, 3)
                lake.flush()
            lake.vacuum(retain_seconds=0)
            status = lake.status()
            assert status.manifest_version > REMOVED_MEMORY + 20
            assert lake.assertions.collect().height == 360
        manifests = _manifests(lake_path)
        assert len(manifests) <= 10
        newest = json.loads(manifests[-1].read_bytes())
        # Deleted files are remembered for REMOVED_MEMORY versions only (their lineage).
        assert all(newest["version"] - v < REMOVED_MEMORY for _, v, _ in newest["removed"])
        assert len(newest["removed"]) <= REMOVED_MEMORY
        total = sum(f.stat().st_size for f in manifests)
        assert total < 100_000, total
        with sl.open(lake_path) as lake:
            assert lake.assertions.collect().height == 360

    def test_recent_versions_are_kept(self, lake_path: Path) -> None:
        with sl.open(lake_path, options=LakeOptions(compact_min_files=100)) as lake:
            for round_ in range(15):
                _write(lake, round_, 1)
                lake.flush()
            lake.vacuum()  # an hour's retention: every version is recent
        assert len(_manifests(lake_path)) == 15

    def test_temporary_files_cleaned_at_open(self, lake_path: Path) -> None:
        with sl.open(lake_path) as lake:
            _write(lake, 0, 3)
            lake.flush()
        leftovers = [
            lake_path / "_manifest" / ".tmp-0123abcd-00000000000000000002.json",
            lake_path / "tables" / "assertions" / ".tmp-0123abcd-x.parquet",
        ]
        for leftover in leftovers:
            leftover.write_bytes(b"half a file")
        with sl.open(lake_path) as lake:
            assert lake.assertions.collect().height == 3
        assert not any(leftover.exists() for leftover in leftovers)
