"""Bad settings on object storage: each a clear error naming what to fix; nothing published."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import s3fs

import steme_lake as sl
from tests._seaweed import SeaweedFS

from .conftest import BUCKET


def _objects(s3: SeaweedFS, url: str) -> list[str]:
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **s3.options())
    prefix = url.removeprefix("s3://")
    fs.invalidate_cache()
    return fs.find(prefix) if fs.exists(prefix) else []


def test_wrong_credentials_name_the_setting(s3: SeaweedFS, url: str, tmp_path: Path) -> None:
    options = s3.options() | {"secret": "not-the-secret"}
    with pytest.raises(sl.StorageError, match=r"access denied.*storage_options"):
        sl.open(url, storage_options=options, wal=tmp_path / "wal")
    assert _objects(s3, url) == []


def test_a_missing_bucket_is_named(s3: SeaweedFS, tmp_path: Path) -> None:
    with pytest.raises(sl.StorageError, match="bucket 'no-such-bucket' does not exist"):
        sl.open("s3://no-such-bucket/lake", storage_options=s3.options(), wal=tmp_path / "w")


def test_a_prefix_that_holds_something_else_is_refused(
    s3: SeaweedFS, url: str, tmp_path: Path
) -> None:
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **s3.options())
    fs.pipe_file(url.removeprefix("s3://") + "/report.csv", b"a,b\n")
    with pytest.raises(sl.ValidationError, match=r"holds something else \(report.csv\)"):
        sl.open(url, storage_options=s3.options(), wal=tmp_path / "wal")
    with pytest.raises(sl.ValidationError, match="holds something else"):
        sl.open(url, storage_options=s3.options(), read_only=True)
    assert _objects(s3, url) == [url.removeprefix("s3://") + "/report.csv"]


def test_a_read_only_open_needs_a_lake_and_refuses_every_write(
    s3: SeaweedFS, url: str, tmp_path: Path
) -> None:
    with pytest.raises(sl.StorageError, match="there is no lake at"):
        sl.open(url, storage_options=s3.options(), read_only=True)
    assert _objects(s3, url) == []
    with sl.open(url, storage_options=s3.options(), wal=tmp_path / "wal") as lake:
        aid = lake.assert_("a/b", "c", 1, agent="w", source="s")
    before = _objects(s3, url)
    reader = sl.open(url, storage_options=s3.options(), read_only=True)
    try:
        for write in (
            lambda: reader.assert_("a/b", "c", 2, agent="w", source="s"),
            lambda: reader.vote(aid, agent="w", weight=1.0),
            lambda: reader.set_lifecycle(aid, "approved", agent="w", reason="r"),
            lambda: reader.query("a/b", "c", agent="w"),
            lambda: reader.import_events(
                [
                    {
                        "op": "assert",
                        "at": "2026-01-01T00:00:00Z",
                        "agent": "w",
                        "subject": "a/b",
                        "predicate": "c",
                        "object": 3,
                        "source": "s",
                    }
                ]
            ),
            lambda: reader.compact(),
            lambda: reader.vacuum(),
        ):
            with pytest.raises(sl.ReadOnlyError, match="wal="):
                write()
        assert reader.flush() == 0
    finally:
        reader.close()
    assert _objects(s3, url) == before


def test_read_only_credentials_cannot_create_a_lake(
    s3: SeaweedFS, url: str, tmp_path: Path
) -> None:
    with pytest.raises(sl.StorageError, match=r"access denied.*credentials"):
        sl.open(url, storage_options=s3.options(reader=True), wal=tmp_path / "wal")
    assert _objects(s3, url) == []


def test_settings_that_make_no_sense_are_refused(s3: SeaweedFS, url: str, tmp_path: Path) -> None:
    with pytest.raises(sl.ValidationError, match=r"wal='\./wal'"):
        sl.open(url, storage_options=s3.options())
    with pytest.raises(sl.ValidationError, match="its own prefix"):
        sl.open(f"s3://{BUCKET}", storage_options=s3.options(), wal=tmp_path / "w")
    with pytest.raises(sl.ValidationError, match="for a lake on object storage"):
        sl.open(tmp_path / "local", wal=tmp_path / "w")
    with pytest.raises(sl.ValidationError, match="for a lake on object storage"):
        sl.open(tmp_path / "local", read_only=True)
    not_empty = tmp_path / "full"
    not_empty.mkdir()
    (not_empty / "notes.txt").write_text("mine")
    with pytest.raises(sl.ValidationError, match="not a steme_lake WAL folder"):
        sl.open(url, storage_options=s3.options(), wal=not_empty)
    assert (not_empty / "notes.txt").read_text() == "mine"


def test_one_wal_folder_serves_one_lake(s3: SeaweedFS, url: str, tmp_path: Path) -> None:
    wal = tmp_path / "wal"
    sl.open(url, storage_options=s3.options(), wal=wal).close()
    with pytest.raises(sl.ValidationError, match="belongs to the lake"):
        sl.open(url + "-other", storage_options=s3.options(), wal=wal)


def test_a_second_writer_is_refused_until_it_takes_over(
    s3: SeaweedFS, url: str, tmp_path: Path
) -> None:
    first = sl.open(url, storage_options=s3.options(), wal=tmp_path / "one")
    try:
        first.assert_("a/b", "c", 1, agent="w", source="s")
        first.flush()
        with pytest.raises(sl.StorageError, match=r"written by another WAL.*take_over=True"):
            sl.open(url, storage_options=s3.options(), wal=tmp_path / "two")
        second = sl.open(url, storage_options=s3.options(), wal=tmp_path / "two", take_over=True)
        with second:
            assert second.assertions.collect().height == 1  # what the first had flushed
            second.assert_("a/b", "c", 2, agent="v", source="s")
        taken = r"now written by another WAL.*stay in its WAL"
        try:  # refused at once if the first has seen the new writer's manifest already
            first.assert_("a/b", "c", 3, agent="w", source="s")
        except sl.StorageError as exc:
            assert re.search(taken, str(exc))
        with pytest.raises(sl.StorageError, match=taken):  # never published, never dropped
            first.flush()
        first._manifest_mtime = -1  # seen now, whatever the poll's timing
        with pytest.raises(sl.StorageError, match=taken):
            first.assert_("a/b", "c", 4, agent="w", source="s")
    finally:
        first._release()  # its rows stay in its WAL folder: closing would flush again
    reader = sl.open(url, storage_options=s3.options(), read_only=True)
    try:
        assert sorted(reader.assertions.collect()["object"].to_list()) == ["1", "2"]
    finally:
        reader.close()
    segments = list((tmp_path / "one" / "wal").glob("*.wal"))
    assert segments and sum(p.stat().st_size for p in segments) > 0


def test_a_writer_that_sees_a_take_over_stops_writing_and_drops_nothing(
    s3: SeaweedFS, url: str, tmp_path: Path
) -> None:
    """The old writer reads the new writer's manifest: it must not take it as its own
    (the sequence numbers are another log's) and must refuse to write from then on."""
    first = sl.open(url, storage_options=s3.options(), wal=tmp_path / "one")
    try:
        first.assert_("a/b", "c", 1, agent="w", source="s")
        first.flush()
        with sl.open(url, storage_options=s3.options(), wal=tmp_path / "two", take_over=True) as b:
            b.assert_("a/b", "c", 2, agent="v", source="s")
        first._manifest_mtime = -1  # the next read looks for new versions now
        assert first.assertions.collect().height == 1  # its own view, not the other log's
        with pytest.raises(sl.StorageError, match="now written by another WAL"):
            first.assert_("a/b", "c", 3, agent="w", source="s")
        with pytest.raises(sl.StorageError, match="now written by another WAL"):
            first.flush()
    finally:
        first._release()
    reader = sl.open(url, storage_options=s3.options(), read_only=True)
    try:
        assert sorted(reader.assertions.collect()["object"].to_list()) == ["1", "2"]
    finally:
        reader.close()
