"""Merged frames: the small commits of one group share a frame, and nothing else."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from steme_lake import FrameTooLargeError, StemeLakeError
from steme_lake.wal import PendingFrame, PreparedFrame, WalFrame, WriteAheadLog
from steme_lake.wal.log import _Txn


def _tabulate(rows: list[Any], seq: int) -> pa.Table:
    return pa.table({"x": rows, "seq": [seq] * len(rows)})


def _other_tabulate(rows: list[Any], seq: int) -> pa.Table:
    return pa.table({"x": rows, "seq": [seq] * len(rows)})


def _pending(value: Any, kind: int = 1, tabulate: Any = _tabulate, size: int = 10) -> Any:
    def build(seq: int, last: int) -> list[PendingFrame]:
        return [PendingFrame(kind, last + 1, [value], tabulate, size)]

    return build


def _concrete(value: Any) -> Any:
    def build(seq: int, last: int) -> list[PreparedFrame]:
        return [PreparedFrame(1, seq, last + 1, _tabulate([value], seq))]

    return build


def _group(wal: WriteAheadLog, *txns: _Txn) -> list[_Txn]:
    """Commit ``txns`` as one group, as the leader would."""
    wal._commit_group(list(txns))
    return list(txns)


def _reread(path: Path) -> list[WalFrame]:
    got: list[WalFrame] = []
    WriteAheadLog(path, sink=got.extend).catch_up()
    return got


class TestMerge:
    def test_small_commits_share_a_frame_each_gets_its_rows(self, tmp_path: Path) -> None:
        delivered: list[WalFrame] = []
        wal = WriteAheadLog(tmp_path, sink=delivered.extend)
        a, b, c, d = (
            _Txn(_pending("a"), True),
            _Txn(_pending("b"), True),
            _Txn(_concrete("c")),
            _Txn(_pending("d"), True),
        )
        _group(wal, a, b, c, d)
        assert [t.error for t in (a, b, c, d)] == [None] * 4
        assert [t.result[0].table["x"].to_pylist() for t in (a, b, c, d)] == [
            ["a"],
            ["b"],
            ["c"],
            ["d"],
        ]
        # a and b merged; the concrete commit between closes the merge.
        assert [t.result[0].seq for t in (a, b, c, d)] == [1, 1, 2, 3]
        assert [(f.seq, f.table["x"].to_pylist()) for f in delivered] == [
            (1, ["a", "b"]),
            (2, ["c"]),
            (3, ["d"]),
        ]
        assert [(f.seq, f.table["x"].to_pylist()) for f in _reread(tmp_path)] == [
            (1, ["a", "b"]),
            (2, ["c"]),
            (3, ["d"]),
        ]
        # The merged table carries the merged frame's number in every row.
        assert delivered[0].table["seq"].to_pylist() == [1, 1]

    def test_different_kinds_or_tabulators_do_not_merge(self, tmp_path: Path) -> None:
        wal = WriteAheadLog(tmp_path, sink=lambda f: None)
        txns = _group(
            wal,
            _Txn(_pending("a", kind=1), True),
            _Txn(_pending("b", kind=2), True),
            _Txn(_pending("c", kind=2, tabulate=_other_tabulate), True),
            _Txn(_pending("d", kind=2, tabulate=_other_tabulate), True),
        )
        assert [t.result[0].seq for t in txns] == [1, 2, 3, 3]
        assert [f.table.num_rows for f in _reread(tmp_path)] == [1, 1, 2]

    def test_merged_frames_stay_small(self, tmp_path: Path) -> None:
        # A quarter of the frame limit per merged frame: 4096 // 4 = 1024 bytes.
        wal = WriteAheadLog(tmp_path, sink=lambda f: None, max_frame_bytes=4096)
        txns = _group(wal, *(_Txn(_pending(i, size=300), True) for i in range(7)))
        assert [t.result[0].seq for t in txns] == [1, 1, 1, 2, 2, 2, 3]
        assert [f.table["x"].to_pylist() for f in _reread(tmp_path)] == [
            [0, 1, 2],
            [3, 4, 5],
            [6],
        ]

    def test_a_refused_commit_leaves_the_others(self, tmp_path: Path) -> None:
        def refuse(seq: int, last: int) -> list[PendingFrame]:
            raise StemeLakeError("not this one")

        wal = WriteAheadLog(tmp_path, sink=lambda f: None)
        a, bad, b = _group(
            wal, _Txn(_pending("a"), True), _Txn(refuse, True), _Txn(_pending("b"), True)
        )
        assert isinstance(bad.error, StemeLakeError)
        assert (a.error, b.error) == (None, None)
        assert [f.table["x"].to_pylist() for f in _reread(tmp_path)] == [["a", "b"]]

    def test_a_failed_merge_gives_its_number_back(self, tmp_path: Path) -> None:
        # A frame over the limit fails as a whole; the next commit takes its
        # sequence number, so the log has no gap and opens again.
        wal = WriteAheadLog(tmp_path, sink=lambda f: None, max_frame_bytes=4096)
        big, after, last = _group(
            wal,
            _Txn(_pending("y" * 10_000, size=10), True),
            _Txn(_concrete("c")),
            _Txn(_pending("z"), True),
        )
        assert isinstance(big.error, FrameTooLargeError)
        assert [after.result[0].seq, last.result[0].seq] == [1, 2]
        assert [(f.seq, f.table["x"].to_pylist()) for f in _reread(tmp_path)] == [
            (1, ["c"]),
            (2, ["z"]),
        ]

    def test_a_failed_merge_before_another_merge(self, tmp_path: Path) -> None:
        wal = WriteAheadLog(tmp_path, sink=lambda f: None, max_frame_bytes=4096)
        big, nxt = _group(
            wal,
            _Txn(_pending("y" * 10_000, size=2000), True),
            _Txn(_pending("z", size=2000), True),  # too big to join: a merge of its own
        )
        assert isinstance(big.error, FrameTooLargeError)
        assert nxt.result[0].seq == 1
        assert [f.seq for f in _reread(tmp_path)] == [1]

    def test_a_mergeable_commit_must_be_one_pending_frame(self, tmp_path: Path) -> None:
        wal = WriteAheadLog(tmp_path, sink=lambda f: None)
        with pytest.raises(StemeLakeError, match="one PendingFrame"):
            wal.commit(_concrete("c"), mergeable=True)
        with pytest.raises(StemeLakeError, match="commit it mergeable"):
            wal.commit(_pending("p"))
        assert _reread(tmp_path) == []

    def test_threads_share_frames(self, tmp_path: Path) -> None:
        def slow_fsync(fd: int) -> None:
            time.sleep(0.005)  # a slow disk makes the groups large
            os.fsync(fd)

        wal = WriteAheadLog(tmp_path, sink=lambda f: None, fsync=slow_fsync)
        results: list[tuple[str, WalFrame]] = []

        def work(name: str) -> None:
            for i in range(25):
                value = f"{name}-{i}"
                results.append((value, wal.commit(_pending(value), mergeable=True)[0]))

        workers = [threading.Thread(target=work, args=(f"t{n}",)) for n in range(8)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert all(frame.table["x"].to_pylist() == [value] for value, frame in results)
        frames = _reread(tmp_path)
        assert sorted(x for f in frames for x in f.table["x"].to_pylist()) == sorted(
            v for v, _ in results
        )
        assert [f.seq for f in frames] == list(range(1, len(frames) + 1))
        assert len(frames) < len(results)  # frames were shared


class TestCommitMany:
    """One thread commits many independent transactions in one group."""

    def test_each_gets_its_frames_or_its_error(self, tmp_path: Path) -> None:
        def refuse(seq: int, last: int) -> list[PendingFrame]:
            raise StemeLakeError("not this one")

        fsyncs = []

        def counted(fd: int) -> None:
            fsyncs.append(fd)
            os.fsync(fd)

        wal = WriteAheadLog(tmp_path, sink=lambda f: None, fsync=counted)
        wal.commit(_concrete("first"))
        before = len(fsyncs)
        results = wal.commit_many(
            [(_pending("a"), True), (refuse, True), (_concrete("c"), False), (_pending("d"), True)]
        )
        assert len(fsyncs) == before + 1  # one group, one fsync
        assert isinstance(results[1], StemeLakeError)
        ok = [r for i, r in enumerate(results) if i != 1]
        assert [r[0].table["x"].to_pylist() for r in ok] == [["a"], ["c"], ["d"]]  # type: ignore[index]
        assert [f.table["x"].to_pylist() for f in _reread(tmp_path)] == [
            ["first"],
            ["a"],
            ["c"],
            ["d"],
        ]
        assert wal.commit_many([]) == []

    def test_threads_mixing_commit_and_commit_many(self, tmp_path: Path) -> None:
        def slow_fsync(fd: int) -> None:
            time.sleep(0.002)
            os.fsync(fd)

        wal = WriteAheadLog(tmp_path, sink=lambda f: None, fsync=slow_fsync)
        seen: list[str] = []
        lock = threading.Lock()

        def single(name: str) -> None:
            for i in range(30):
                frame = wal.commit(_pending(f"{name}-{i}"), mergeable=True)[0]
                with lock:
                    seen.extend(frame.table["x"].to_pylist())

        def batched(name: str) -> None:
            for i in range(10):
                values = [f"{name}-{i}-{j}" for j in range(5)]
                results = wal.commit_many([(_pending(v), True) for v in values])
                got = [r[0].table["x"].to_pylist()[0] for r in results]  # type: ignore[index]
                assert got == values
                with lock:
                    seen.extend(got)

        workers = [threading.Thread(target=single, args=(f"s{n}",)) for n in range(4)]
        workers += [threading.Thread(target=batched, args=(f"b{n}",)) for n in range(4)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert len(seen) == 4 * 30 + 4 * 50
        frames = _reread(tmp_path)
        assert sorted(x for f in frames for x in f.table["x"].to_pylist()) == sorted(seen)
        assert [f.seq for f in frames] == list(range(1, len(frames) + 1))
