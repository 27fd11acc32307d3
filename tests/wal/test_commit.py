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
