"""Durable commits: group commit, frame limits, failed fsyncs."""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest

from steme_lake import FrameTooLargeError, WalFailedError
from steme_lake.wal import PreparedFrame, WalFrame, WriteAheadLog


def _one(seq: int, last: int) -> list[PreparedFrame]:
    return [PreparedFrame(1, seq, last + 1, pa.table({"x": [seq]}))]


class TestGroupCommit:
    """Concurrent writers in one process share fsyncs and lose nothing."""

    def test_threads_share_fsyncs(self, tmp_path: Path) -> None:
        calls = []

        def slow_fsync(fd: int) -> None:
            calls.append(fd)
            time.sleep(0.005)  # a slow disk makes the sharing visible
            os.fsync(fd)

        got: list[WalFrame] = []
        wal = WriteAheadLog(tmp_path, sink=got.extend, fsync=slow_fsync)
        per_thread, threads = 25, 8
        results: list[int] = []

        def work() -> None:
            for _ in range(per_thread):
                results.append(wal.commit(_one)[0].seq)

        workers = [threading.Thread(target=work) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        total = per_thread * threads
        assert sorted(results) == list(range(1, total + 1))
        assert [f.seq for f in got] == list(range(1, total + 1))
        assert len(calls) < total  # fsyncs were shared
        reread: list[WalFrame] = []
        WriteAheadLog(tmp_path, sink=reread.extend).catch_up()
        assert [f.seq for f in reread] == list(range(1, total + 1))


class TestLimits:
    """A frame over the limit is refused before anything is written."""

    def test_frame_too_large(self, tmp_path: Path) -> None:
        wal = WriteAheadLog(tmp_path, sink=lambda f: None, max_frame_bytes=4096)

        def big(seq: int, last: int) -> list[PreparedFrame]:
            return [PreparedFrame(1, seq, last + 1, pa.table({"x": ["y" * 10_000]}))]

        with pytest.raises(FrameTooLargeError, match="frame limit"):
            wal.commit(big)
        wal.commit(_one)  # the log is still usable
        got: list[WalFrame] = []
        WriteAheadLog(tmp_path, sink=got.extend).catch_up()
        assert [f.seq for f in got] == [1]


class TestFailedFsync:
    """A failed fsync is never retried: the writer stops; reopening recovers."""

    def test_stop_and_recover(self, tmp_path: Path) -> None:
        state = {"fail": False, "calls": 0}

        def flaky(fd: int) -> None:
            state["calls"] += 1
            if state["fail"]:
                raise OSError(errno.EIO, "injected I/O error")
            os.fsync(fd)

        wal = WriteAheadLog(tmp_path, sink=lambda f: None, fsync=flaky)
        wal.commit(_one)
        wal.commit(_one)
        state["fail"] = True
        calls = state["calls"]
        with pytest.raises(WalFailedError, match="reopen"):
            wal.commit(_one)
        assert state["calls"] == calls + 1  # exactly one attempt, no retry
        state["fail"] = False
        with pytest.raises(WalFailedError):
            wal.commit(_one)  # stopped for good
        assert state["calls"] == calls + 1
        got: list[WalFrame] = []
        reopened = WriteAheadLog(tmp_path, sink=got.extend)
        reopened.catch_up()
        assert [f.seq for f in got] == [1, 2]  # the failed commit is not visible
        reopened.commit(_one)
        assert reopened.last_seq == 3


class TestUnchangedTail:
    """A reader that finds the folder and the tail as it left them reads nothing;
    every append, new segment and retirement is still seen."""

    @staticmethod
    def _age(path: Path) -> None:
        # As if the folder was last changed a minute ago (its time is then trusted).
        old = time.time() - 60
        os.utime(path, (old, old))

    @staticmethod
    def _counted(wal: WriteAheadLog) -> list[int]:
        listings: list[int] = []
        real = wal.segments
        wal.segments = lambda: listings.append(1) or real()  # type: ignore[method-assign]
        return listings

    def test_reader_skips_an_unchanged_log_and_sees_appends(self, tmp_path: Path) -> None:
        writer = WriteAheadLog(tmp_path, sink=lambda f: None)
        got: list[WalFrame] = []
        reader = WriteAheadLog(tmp_path, sink=got.extend)
        listings = self._counted(reader)
        writer.commit(_one)
        self._age(tmp_path)
        reader.catch_up()
        assert [f.seq for f in got] == [1]
        before = len(listings)
        reader.catch_up()
        reader.catch_up()
        assert len(listings) == before  # nothing new: two stats, no listing, no read
        writer.commit(_one)  # an append changes the tail's size, not the folder
        reader.catch_up()
        assert [f.seq for f in got] == [1, 2]
        writer.commit(_one)
        reader.catch_up()
        assert [f.seq for f in got] == [1, 2, 3]

    def test_reader_sees_new_and_retired_segments(self, tmp_path: Path) -> None:
        writer = WriteAheadLog(tmp_path, sink=lambda f: None, segment_bytes=600)
        got: list[WalFrame] = []
        reader = WriteAheadLog(tmp_path, sink=got.extend, segment_bytes=600)
        writer.commit(_one)
        self._age(tmp_path)
        reader.catch_up()
        seqs = [writer.commit(_one)[0].seq for _ in range(12)]  # rolls to new segments
        assert len(writer.segments()) > 1
        self._age(tmp_path)
        reader.catch_up()
        assert [f.seq for f in got] == [1, *seqs]
        writer.retire(seqs[-2])  # a flush elsewhere retired the old segments
        writer.commit(_one)
        self._age(tmp_path)
        reader.catch_up()
        assert [f.seq for f in got] == [1, *seqs, seqs[-1] + 1]

    def test_a_recently_changed_folder_is_listed_again(self, tmp_path: Path) -> None:
        writer = WriteAheadLog(tmp_path, sink=lambda f: None)
        reader = WriteAheadLog(tmp_path, sink=lambda f: None)
        writer.commit(_one)
        reader.catch_up()
        listings = self._counted(reader)
        reader.catch_up()  # the folder changed under a second ago: its time is not trusted
        assert listings


class TestReadersDuringCommit:
    """A reader never waits for another thread's fsync, and never sees its frames
    before they are durable."""

    def test_reader_neither_waits_nor_sees_the_undurable_group(self, tmp_path: Path) -> None:
        entered, release = threading.Event(), threading.Event()

        def held_fsync(fd: int) -> None:
            if threading.current_thread().name == "writer":
                entered.set()
                assert release.wait(10)
            os.fsync(fd)

        got: list[WalFrame] = []
        wal = WriteAheadLog(tmp_path, sink=got.extend, fsync=held_fsync)
        wal.commit(_one)  # the segment exists (created outside the writer thread)
        writer = threading.Thread(target=lambda: wal.commit(_one), name="writer")
        writer.start()
        assert entered.wait(10)  # the writer's frame is appended, its fsync pending
        reader = threading.Thread(target=wal.catch_up)
        reader.start()
        reader.join(10)
        try:
            assert not reader.is_alive()  # it did not wait for the fsync
            assert [f.seq for f in got] == [1]  # nor deliver the undurable frame
        finally:
            release.set()
            writer.join(10)
        assert [f.seq for f in got] == [1, 2]
        wal.catch_up()
        assert [f.seq for f in got] == [1, 2]  # delivered once
