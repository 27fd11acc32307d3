"""Checkpoints of the state index: an open loads one and the rows recorded after
it, and answers as a lake without one does; a damaged, foreign or stale one
is not trusted (`query/_checkpoint.py`).

`CHECKPOINT_ROWS` is 1 here, so that a small lake writes one at close.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import steme_lake as sl
from steme_lake import LakeOptions
from steme_lake.model.schema import RecordKind
from steme_lake.query import _checkpoint, _index, _lookups
from steme_lake.query._index import StateIndex
from tests.query.test_state_index import OPTS, _answers, _history, _whole

TIMES = (None, "2026-01-01T00:50:00Z")


@pytest.fixture(autouse=True)
def small(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_checkpoint, "CHECKPOINT_ROWS", 1)
    monkeypatch.setattr(_index, "RUN_ROWS", 7)  # several runs, and recent rows
    monkeypatch.setattr(_index, "BULK_ROWS", 10)


def _open(path: Path, index: str = "background") -> sl.Lake:
    lake = sl.open(path, options=LakeOptions(state_index=index, resolution=OPTS))
    if lake._index_thread is not None:  # the test waits for the build and the warm-up
        lake._index_thread.join()
    return lake


def _written(tmp_path: Path, n: int) -> Path:
    """A lake with ``n`` steps of history, closed (so its checkpoint is written)."""
    path = tmp_path / "lake"
    with _open(path) as lake:
        _history(lake, 0, n)
    return path


def _checkpoints(path: Path) -> list[Path]:
    return sorted(p for p in (path / "state").iterdir() if not p.name.startswith("."))


def _expected(path: Path, times: tuple[str | None, ...] = TIMES) -> tuple[dict, dict]:
    with _open(path, "off") as lake:
        return (
            {t: _answers(lake, t) for t in times},
            {t: _whole(lake, t) for t in times},
        )


def _same(lake: sl.Lake, expected: tuple[dict, dict]) -> None:
    answers, whole = expected
    assert {t: _answers(lake, t) for t in answers} == answers
    for t, frames in whole.items():
        for ours, theirs in zip(_whole(lake, t), frames, strict=True):
            assert_frame_equal(ours, theirs)


def test_an_open_loads_the_checkpoint_and_what_came_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _written(tmp_path, 40)
    (first,) = _checkpoints(path)  # written at close: the index was not written down
    meta = json.loads((first / "checkpoint.json").read_text())
    assert meta["seq"] > 0 and meta["rows"] > 40
    # More rows: flushed by one process, and in the WAL only of another still open.
    monkeypatch.setattr(_checkpoint, "STALE_SHARE", 2.0)  # the first is kept, for now
    with _open(path, "off") as lake:
        _history(lake, 40, 20)
    writer = _open(path, "off")
    try:
        _history(writer, 60, 10)
        assert not writer._tail.empty
        expected = _expected(path)
        with _open(path) as lake:
            assert lake._checkpoint is not None and lake._checkpoint.path == first
            status = lake.status()
            assert status.state_index == "ready"
            assert status.state_checkpoint == (
                f"state/{first.name} ({meta['rows']:,} rows, up to seq {meta['seq']})"
            )
            index = lake._index
            assert index is not None and index.seq == lake._wal.last_seq
            _same(lake, expected)
            # and commits after the open, as always
            late = lake.assert_("svc/0/auth", "p0", "late", agent="ag1", source="https://s/late")
            assert lake.query("svc/0/auth", "p0", agent="t").assertion == late
        monkeypatch.setattr(_checkpoint, "STALE_SHARE", 0.1)
        # (as of now, the late assertion's decayed confidence changes by the second)
        expected = _expected(path, TIMES[1:])
        with _open(path) as lake:
            _same(lake, expected)
            assert lake.query("svc/0/auth", "p0", agent="t").assertion == late
    finally:
        writer.close()
    # A third of the rows came after the first checkpoint: a newer one replaced it.
    (newest,) = _checkpoints(path)
    assert newest != first
    assert json.loads((newest / "checkpoint.json").read_text())["seq"] > meta["seq"]


def test_a_damaged_checkpoint_is_found_and_the_index_built_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _written(tmp_path, 40)
    expected = _expected(path)
    (checkpoint,) = _checkpoints(path)
    # The same size and a valid layout, another agent's name: only BLAKE3 tells.
    victim = checkpoint / "assertions-0.arrow"
    data = victim.read_bytes()
    assert b"ag3" in data
    victim.write_bytes(data.replace(b"ag3", b"ag9"))
    with caplog.at_level(logging.ERROR, logger="steme_lake"), _open(path) as lake:
        assert "checkpoint is damaged" in caplog.text
        assert lake._index is not None and lake._checkpoint is not checkpoint
        _same(lake, expected)
    assert checkpoint not in _checkpoints(path)


@pytest.mark.parametrize(
    "change, why",
    [
        (lambda m: m.update(format="steme_lake.state/0"), "format"),
        (lambda m: m.update(writer="another-wal"), "written for writer"),
        (lambda m: m.update(seq=m["seq"] + 1000), "the lake only to"),
        (lambda m: m["schemas"]["assertions"].pop(), "other columns"),
        (lambda m: m["files"][0].update(bytes=1), "expected"),
    ],
    ids=["format", "writer", "seq", "columns", "size"],
)
def test_a_checkpoint_for_something_else_is_not_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, change, why: str
) -> None:
    path = _written(tmp_path, 30)
    expected = _expected(path)
    (checkpoint,) = _checkpoints(path)
    meta_file = checkpoint / "checkpoint.json"
    meta = json.loads(meta_file.read_text())
    change(meta)
    meta_file.write_text(json.dumps(meta))
    with caplog.at_level(logging.INFO, logger="steme_lake"), _open(path) as lake:
        assert why in caplog.text
        assert lake._checkpoint is None or lake._checkpoint.path != checkpoint
        _same(lake, expected)


def test_key_hashes_of_another_polars_version_are_not_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _written(tmp_path, 30)
    expected = _expected(path)
    real = StateIndex.key_hashes
    monkeypatch.setattr(
        StateIndex, "key_hashes", staticmethod(lambda kind, frame: real(kind, frame) + 1)
    )
    with caplog.at_level(logging.INFO, logger="steme_lake"):
        assert _checkpoint.load(path, writer="", max_seq=10**9) is None
    assert "not this Polars version's" in caplog.text
    monkeypatch.setattr(StateIndex, "key_hashes", staticmethod(real))
    loaded = _checkpoint.load(path, writer="", max_seq=10**9)
    assert loaded is not None
    with _open(path) as lake:
        _same(lake, expected)


def test_questions_wait_for_the_checkpoint_not_for_a_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _written(tmp_path, 30)
    loaded: list[bool] = []
    real = _checkpoint.load

    def slow(*args, **kwargs):
        time.sleep(0.5)
        found = real(*args, **kwargs)
        loaded.append(found is not None)
        return found

    monkeypatch.setattr(_checkpoint, "load", slow)
    lake = sl.open(path, options=LakeOptions(resolution=OPTS))
    try:
        lake.query("svc/0/auth", "p0", agent="t")
        assert loaded == [True]  # answered after the index was loaded, not by a scan
    finally:
        lake.close()
    # Without a checkpoint, the question does not wait for the build.
    for old in _checkpoints(path):
        _checkpoint.clear(path)
        assert not old.exists()
    built = []
    real_build = StateIndex.build

    def slow_build(tables):
        time.sleep(0.5)
        built.append(time.perf_counter())
        return real_build(tables)

    monkeypatch.setattr(StateIndex, "build", staticmethod(slow_build))
    lake = sl.open(path, options=LakeOptions(resolution=OPTS))
    try:
        lake.query("svc/0/auth", "p0", agent="t")
        asked = time.perf_counter()
        assert not built or built[0] > asked  # it scanned, the build went on
    finally:
        lake.close()


def test_a_crashed_save_leaves_nothing_used_and_is_swept(tmp_path: Path) -> None:
    path = _written(tmp_path, 30)
    state = path / "state"
    old, young = state / ".tmp-old", state / ".tmp-young"
    for folder in (old, young):
        folder.mkdir()
        (folder / "assertions-0.arrow").write_bytes(b"half a file")
    hour_ago = time.time() - 2 * _checkpoint.ABANDONED_S
    os.utime(old, (hour_ago, hour_ago))
    expected = _expected(path)
    with _open(path) as lake:
        _same(lake, expected)
        for i in range(20):  # enough to write the next checkpoint at close
            lake.assert_("svc/1/auth", "p1", f"late{i}", agent="ag1", source="https://s/1")
    assert not old.exists()
    assert young.exists()  # perhaps another process's, being written
    assert len(_checkpoints(path)) == 1


def test_a_small_lake_writes_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_checkpoint, "CHECKPOINT_ROWS", 10_000)
    path = _written(tmp_path, 30)
    assert not (path / "state").exists()


def test_the_check_waits_while_questions_are_answered(tmp_path: Path) -> None:
    """Hashing a checkpoint (seconds at 10M) gives way to questions, between chunks."""
    path = _written(tmp_path, 30)
    loaded = _checkpoint.load(path, writer="", max_seq=10**9)
    assert loaded is not None
    checkpoint = loaded[1]
    calls: list[int] = []

    def between() -> bool:
        calls.append(1)
        return True

    assert checkpoint.verify(between) is None
    assert len(calls) == 2 * len(checkpoint.files)  # before its one chunk, and its end
    assert checkpoint.verify(lambda: False) is None  # stopped (the lake closes): nothing found
    with _open(path) as lake:
        stop = threading.Event()
        with lake._quiet.asking():
            waited = threading.Thread(target=lake._quiet.wait, args=(stop,))
            waited.start()
            waited.join(0.2)
            assert waited.is_alive()
        waited.join(5)
        assert not waited.is_alive()


def _checked_slowly(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """The checkpoint's check held (as at 10M under back-to-back questions) until
    the second event is set; the first is set when it starts."""
    started, release = threading.Event(), threading.Event()
    real = _checkpoint.Checkpoint.verify

    def held(self, between=lambda: True):
        started.set()
        while not release.is_set():
            if not between():
                return None  # the lake closes
            time.sleep(0.01)
        return real(self, between)

    monkeypatch.setattr(_checkpoint.Checkpoint, "verify", held)
    return started, release


def test_the_warm_up_does_not_wait_for_the_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Busy keys' answers are worked out beside the checkpoint's check: after it,
    they never were under a benchmark's back-to-back questions."""
    monkeypatch.setattr(_index, "REMEMBER_ROWS", 5)
    path = _written(tmp_path, 40)
    started, release = _checked_slowly(monkeypatch)
    lake = sl.open(path, options=LakeOptions(resolution=OPTS))
    try:
        assert started.wait(5)
        deadline = time.monotonic() + 5
        while not lake._busy_keys and time.monotonic() < deadline:
            time.sleep(0.01)
        assert lake._busy_keys, "the warm-up waited for the check"
        assert lake._unchecked is not None
        release.set()
        assert lake._index_thread is not None
        lake._index_thread.join(5)
        assert lake._unchecked is None
    finally:
        release.set()
        lake.close()


def test_no_checkpoint_is_written_from_an_unchecked_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A close before the check of the checkpoint the index came from finished
    writes none from it (a damaged one would be copied into the next)."""
    path = _written(tmp_path, 30)
    (first,) = _checkpoints(path)
    monkeypatch.setattr(_checkpoint, "STALE_SHARE", 0.0)  # any new row makes one due
    started, _release = _checked_slowly(monkeypatch)
    lake = sl.open(path, options=LakeOptions(resolution=OPTS))
    try:
        assert started.wait(5)
        lake.assert_("svc/1/auth", "p1", "late", agent="ag1", source="https://s/1")
    finally:
        lake.close()
    assert _checkpoints(path) == [first]
    # Checked, the same close writes the next one.
    monkeypatch.undo()
    monkeypatch.setattr(_checkpoint, "CHECKPOINT_ROWS", 1)
    monkeypatch.setattr(_checkpoint, "STALE_SHARE", 0.0)
    with _open(path) as lake:
        assert lake._unchecked is None
        lake.assert_("svc/1/auth", "p1", "later", agent="ag1", source="https://s/1")
    (second,) = _checkpoints(path)
    assert second != first


def test_the_lookups_orders_come_back_with_the_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (impact's orders of the assertions' runs: written beside them, mapped at
    # open, never made again; `query/_lookups.py`)
    path = _written(tmp_path, 40)
    made: list[int] = []
    real = _lookups._Orders.of

    def counted(frame: pl.DataFrame) -> _lookups._Orders:
        made.append(frame.height)
        return real(frame)

    monkeypatch.setattr(_lookups._Orders, "of", staticmethod(counted))
    with _open(path) as lake:
        assert lake._checkpoint is not None
        index = lake._index
        assert index is not None
        runs, recent = index.keyed[RecordKind.ASSERTION].split(RecordKind.ASSERTION)
        assert len(runs) > 1 and recent.height == 0
        assert index.prepare_lookups() > 0
        assert made == []  # every run's orders came from the checkpoint
        for run in runs:
            adopted = index.lookups._orders[id(run)][1]
            fresh = real(run)
            for name in ("id_keys", "id_rows", "subjects", "groups", "group_rows"):
                assert (getattr(adopted, name) == getattr(fresh, name)).all(), name
            assert adopted.agents == fresh.agents
        ids = lake.assertions.select("id").collect()["id"].to_list()
        assert sorted(index.assertions(ids[:5])["id"]) == sorted(ids[:5])
        assert not index.prefixes_shared(ids)
