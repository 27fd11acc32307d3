"""The write-ahead log: durable, multi-process, group-committed.

Commit protocol (one process or many, as with SQLite): take the exclusive
``LOCK`` file lock; read the log's real tail (never a cached counter),
delivering any frames other processes wrote and truncating crash residue;
let the caller stamp times, ids and sequence numbers for the real tail;
append the frames; fsync; release; then deliver them in this process.
Threads of one process queue behind a leader that commits all of them with
one fsync (group commit), and their small commits share frames. Readers never
take the lock: they read complete transactions up to the tail, and while
their own process is writing a group they have nothing to read (every other
commit was delivered when the lock was taken), so they never wait for an
fsync and never see a frame before it is durable.

A frame is acknowledged only after fsync (and a directory fsync for a new
segment). A failed write or fsync is never retried: the log truncates what it
wrote, stops, and every later write raises `WalFailedError` until the lake is
reopened.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from steme_lake._exceptions import (
    FrameTooLargeError,
    InternalError,
    StemeLakeError,
    WalCorruptError,
    WalError,
    WalFailedError,
)
from steme_lake._utils.durable import makedirs_durable
from steme_lake._utils.locks import ProcessFileLock
from steme_lake._utils.timeparse import now_us
from steme_lake.wal import format as fmt
from steme_lake.wal.format import WalFrame
from steme_lake.wal.scan import SegmentScan, TornTail, scan_segment

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "DEFAULT_SEGMENT_BYTES",
    "FrameBuilder",
    "PendingFrame",
    "PreparedFrame",
    "SegmentsRetired",
    "TornTail",
    "WalFrame",
    "WriteAheadLog",
]

log = logging.getLogger("steme_lake.wal")

DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024
LOCK_NAME = "LOCK"
# A folder modified this recently is listed again even if its time did not change.
FRESH_NS = 2_000_000_000
RECOVERY_NAME = "last_recovery.json"


@dataclass(frozen=True, slots=True)
class PreparedFrame:
    """A frame a builder made for the sequence number it was given."""

    kind: int
    seq: int
    commit_time: int
    table: pa.Table


@dataclass(frozen=True, slots=True)
class PendingFrame:
    """A transaction's rows, not yet a table: the log tabulates them for the
    sequence number it assigns.

    When several transactions of one group each return a single pending frame
    of the same kind and ``tabulate``, they become one frame, as they share
    one fsync: one table built, one encoding, one frame header, one delivery
    (eight concurrent one-row writes cost about what one eight-row write
    costs). Each transaction still gets back its own rows, in order.
    """

    kind: int
    commit_time: int
    rows: list[Any]
    tabulate: Callable[[list[Any], int], pa.Table]
    size: int  # an estimate of the encoded bytes, to keep merged frames small


# Called under the commit lock with (next sequence number, last commit time);
# returns the frames of one transaction, or raises a StemeLakeError to refuse it.
FrameBuilder = Callable[[int, int], "list[PreparedFrame] | list[PendingFrame]"]

# What a written group leaves to publish: the end offset of its bytes, the next
# sequence number, the last commit time, the frames to deliver, each transaction's.
_Written = tuple[int, int, int, list[WalFrame], list[tuple["_Txn", list[WalFrame]]]]

# Pending frames merge while the merged frame's estimated size stays under this.
MERGE_BYTES = 1 << 20


class _Merge:
    """Pending frames of consecutive transactions, becoming one frame."""

    __slots__ = ("commit_time", "kind", "members", "rows", "seq", "size", "tabulate")

    def __init__(self, seq: int, first: PendingFrame, txn: _Txn) -> None:
        self.seq, self.kind, self.tabulate = seq, first.kind, first.tabulate
        self.rows: list[Any] = []
        self.members: list[tuple[_Txn, int, int]] = []  # txn, first row, row count
        self.commit_time = first.commit_time
        self.size = 0
        self.add(first, txn)

    def takes(self, frame: PendingFrame, max_frame_bytes: int) -> bool:
        return (
            frame.kind == self.kind
            and frame.tabulate is self.tabulate
            and self.size + frame.size <= min(MERGE_BYTES, max_frame_bytes // 4)
        )

    def add(self, frame: PendingFrame, txn: _Txn) -> None:
        self.members.append((txn, len(self.rows), len(frame.rows)))
        self.rows.extend(frame.rows)
        self.commit_time = max(self.commit_time, frame.commit_time)
        self.size += frame.size

    def isolate(self) -> bool:
        """Refuse the members whose rows cannot be tabulated on their own and keep
        the others; True when some remain and some were refused (try again)."""
        kept: list[tuple[_Txn, list[Any]]] = []
        for txn, start, count in self.members:
            own = self.rows[start : start + count]
            try:
                self.tabulate(own, self.seq)
            except Exception as exc:  # noqa: BLE001 - handed to that transaction alone
                txn.error = exc if isinstance(exc, StemeLakeError) else InternalError.wrap(exc)
                txn.finished = True
                continue
            kept.append((txn, own))
        if not kept or len(kept) == len(self.members):
            return False
        self.rows, self.members = [], []
        for txn, own in kept:
            self.members.append((txn, len(self.rows), len(own)))
            self.rows.extend(own)
        return True


class SegmentsRetired(StemeLakeError):
    """Frames the reader needs were flushed and their segments retired.

    Internal signal: the lake reloads its manifest and calls `skip_to`.
    """


@dataclass
class _Txn:
    builder: FrameBuilder
    mergeable: bool = False
    finished: bool = False
    wake: threading.Lock = field(default_factory=threading.Lock)
    waits: bool = False  # the first of a `commit_many`: its thread waits on ``wake``
    result: list[WalFrame] = field(default_factory=list)
    error: StemeLakeError | None = None


class WriteAheadLog:
    """An append-only log of Arrow record batches in fsync'd segment files.

    Parameters
    ----------
    directory
        The folder of the segment files (created if missing).
    sink
        Receives every committed frame exactly once, in sequence order.
    start_seq, start_time
        The sequence number and commit time already covered by flushed files:
        frames at or below ``start_seq`` are validated but not delivered.
    fsync
        The fsync function (a test seam for fault injection).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        sink: Callable[[list[WalFrame]], None],
        start_seq: int = 0,
        start_time: int = 0,
        fsync: Callable[[int], None] = os.fsync,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    ) -> None:
        self.directory = Path(directory)
        makedirs_durable(self.directory, fsync)
        self._sink = sink
        self._fsync = fsync
        self.segment_bytes = segment_bytes
        self.max_frame_bytes = max_frame_bytes
        self._mutex = threading.RLock()
        self._cv = threading.Lock()  # guards the queue and the leader flag
        self._queue: list[_Txn] = []
        self._leader = False
        self._failed: WalFailedError | None = None
        self._lock = ProcessFileLock(self.directory / LOCK_NAME)
        self._closed = False
        self.recovered: list[TornTail] = []
        # The read cursor: segment, offset after the last delivered transaction,
        # the next expected sequence number and the last commit time.
        self._seg: int | None = None
        self._off = 0
        self._next_seq = start_seq + 1
        self._last_time = start_time
        self._skip_below = start_seq + 1
        self._must_roll = False
        self._listed: list[tuple[int, Path]] = []
        self._dir_mtime: int | None = None  # of the folder when it was last listed
        self._inflight = False  # a group of this process is being written

    # ------------------------------------------------------------------ reading

    def catch_up(self) -> None:
        """Deliver every transaction committed since the last call (no lock taken).

        If the scan stops at a damaged tail, the lock is taken and the tail
        checked again: under the lock, an incomplete tail is crash residue and
        is truncated and reported.
        """
        with self._mutex:
            if self._inflight:
                # A group of this process holds the commit lock: everything durable
                # is delivered already (see `_commit_group`).
                return
            damaged = self._advance(locked=False)
        if damaged:
            # Lock order everywhere: the commit lock first, then the mutex.
            with self._flock(), self._mutex:
                self._advance(locked=True)

    def skip_to(self, flushed_seq: int, flushed_time: int) -> None:
        """Frames up to ``flushed_seq`` are in columnar files: never deliver them."""
        with self._mutex:
            self._skip_below = max(self._skip_below, flushed_seq + 1)
            if self._next_seq <= flushed_seq:
                self._seg = None  # re-position at the segment holding flushed_seq + 1
                self._next_seq = flushed_seq + 1
                self._last_time = max(self._last_time, flushed_time)

    @property
    def last_seq(self) -> int:
        return self._next_seq - 1

    @property
    def last_time(self) -> int:
        return self._last_time

    def segments(self) -> list[tuple[int, Path]]:
        """The segment files, oldest first, as (first sequence number, path)."""
        out = []
        for entry in os.scandir(self.directory):
            first = fmt.segment_first_seq(entry.name)
            if first is not None:
                out.append((first, Path(entry.path)))
        out.sort()
        return out

    def _unchanged(self) -> bool:
        """True when nothing was committed since the last read: the folder still
        holds the segments listed then, and the last one ends where reading did.

        Two ``stat`` calls instead of a listing and a read of the tail (about a
        sixth of a query's time). Folder times can be coarse (a clock tick), so a
        folder changed in the last `FRESH_NS` is always listed again."""
        if self._dir_mtime is None or self._seg is None or not self._listed:
            return False
        first, path = self._listed[-1]
        if first != self._seg:
            return False
        try:
            folder = self.directory.stat().st_mtime_ns
            size = path.stat().st_size
        except FileNotFoundError:
            return False
        return (
            folder == self._dir_mtime
            and time.time_ns() - folder > FRESH_NS
            and size == self._off
            and size < self.segment_bytes  # a full segment may have a successor
        )

    def _advance(self, *, locked: bool) -> bool:
        """Read and deliver complete transactions; True if a damaged tail stopped it."""
        if self._unchanged():
            return False
        try:
            self._dir_mtime = self.directory.stat().st_mtime_ns  # before listing
        except FileNotFoundError:
            self._dir_mtime = None
        segments = self.segments()
        self._listed = segments
        if not segments:
            return False
        firsts = [first for first, _ in segments]
        if self._seg is None or self._seg not in firsts:
            self._position(segments)
        index = firsts.index(self._seg)  # type: ignore[arg-type]
        while True:
            first, path = segments[index]
            final = index == len(segments) - 1
            scan = self._scan(path, first, final=final, locked=locked)
            if scan.frames:
                self._sink(scan.frames)
            self._off = scan.end_offset
            self._next_seq = scan.next_seq
            self._last_time = scan.last_time
            if scan.torn is not None:
                if not locked:
                    return True
                self._truncate(path, scan.torn)
            if final:
                if self._next_seq < self._skip_below:
                    # The flushed files reach further than the log (its tail segments were
                    # lost): continue numbering after them, in a new segment.
                    self._next_seq, self._must_roll = self._skip_below, True
                return False
            next_first = segments[index + 1][0]
            if next_first != self._next_seq:
                raise WalCorruptError(
                    f"segment {segments[index + 1][1].name} starts at sequence {next_first} "
                    f"but the previous segment ends before {self._next_seq}",
                    path=str(path),
                    offset=scan.end_offset,
                )
            index += 1
            self._seg, self._off = next_first, 0

    def _position(self, segments: list[tuple[int, Path]]) -> None:
        candidates = [first for first, _ in segments if first <= self._next_seq]
        if not candidates:
            raise SegmentsRetired(
                f"the WAL starts at sequence {segments[0][0]} but frames from "
                f"{self._next_seq} are needed"
            )
        self._seg, self._off = candidates[-1], 0

    def _scan(self, path: Path, first: int, *, final: bool, locked: bool) -> SegmentScan:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise SegmentsRetired(f"segment {path.name} was retired by a flush") from None
        try:
            return scan_segment(
                fd,
                path=str(path),
                first_seq=first,
                start_offset=self._off,
                next_seq=self._next_seq if self._off else first,
                last_time=self._last_time,
                final=final,
                locked=locked,
                skip_below=self._skip_below,
            )
        finally:
            os.close(fd)

    def _truncate(self, path: Path, torn: TornTail) -> None:
        fd = os.open(path, os.O_RDWR)
        try:
            if torn.offset < fmt.SEGMENT_HEADER_SIZE:
                # The crash hit while the segment was being created: write its header again.
                os.ftruncate(fd, 0)
                os.pwrite(
                    fd,
                    fmt.encode_segment_header(fmt.SegmentHeader(torn.first_seq, self._last_time)),
                    0,
                )
                self._off = fmt.SEGMENT_HEADER_SIZE
            else:
                os.ftruncate(fd, torn.offset)
            self._fsync(fd)
        finally:
            os.close(fd)
        self.recovered.append(torn)
        log.warning(
            "WAL recovery: dropped %d bytes at the end of %s (offset %d): %s. A write cut "
            "short was never acknowledged (its fsync cannot have completed): crash residue",
            torn.dropped_bytes,
            path.name,
            torn.offset,
            torn.reason,
        )
        self._write_recovery_report(torn)

    def _write_recovery_report(self, torn: TornTail) -> None:
        report = {
            "detected_at_us": now_us(),
            "segment": torn.path,
            "offset": torn.offset,
            "dropped_bytes": torn.dropped_bytes,
            "reason": torn.reason,
        }
        tmp = self.directory / f".{RECOVERY_NAME}.{os.getpid()}.tmp"
        try:
            tmp.write_text(json.dumps(report, indent=2))
            tmp.replace(self.directory / RECOVERY_NAME)
        except OSError as exc:  # the report informs; the recovery itself is done
            log.warning("could not write %s (%s): %s", RECOVERY_NAME, exc, report)

    def last_recovery(self) -> dict[str, object] | None:
        """The last torn-tail report written by any process, if any."""
        try:
            return dict(json.loads((self.directory / RECOVERY_NAME).read_text()))
        except FileNotFoundError:
            return None

    # ------------------------------------------------------------------ writing

    def commit(self, builder: FrameBuilder, *, mergeable: bool = False) -> list[WalFrame]:
        """Commit one transaction durably; return its frames once fsync'd.

        A ``mergeable`` transaction's builder returns one `PendingFrame`, which
        may share its frame with the other mergeable transactions of its group
        (its returned frame then holds just its own rows)."""
        (result,) = self.commit_many([(builder, mergeable)])
        if isinstance(result, BaseException):
            raise result
        return result

    def commit_many(
        self, transactions: Sequence[tuple[FrameBuilder, bool]]
    ) -> list[list[WalFrame] | StemeLakeError]:
        """Commit independent transactions in one group (one fsync): for each, in
        order, its frames or the error that refused it (the others still commit).

        Each item is ``(builder, mergeable)`` as for `commit`. A server that
        gathers its concurrent requests commits them this way from one thread."""
        txns = [_Txn(builder, mergeable) for builder, mergeable in transactions]
        if not txns:
            return []
        first = txns[0]
        first.wake.acquire()  # released once: when finished, or when made the leader
        first.waits = True
        with self._cv:
            if self._failed is not None:
                raise self._failed
            # Queued together, so one group takes them all.
            self._queue.extend(txns)
            lead = not self._leader
            self._leader = True
        if not lead:
            first.wake.acquire()  # wakes this thread alone, not every waiter
            lead = not first.finished
        if lead:
            with self._cv:
                group, self._queue = self._queue, []
            try:
                self._commit_group(group)
            finally:
                for pending in group:
                    if not pending.finished:
                        pending.error = pending.error or WalFailedError("commit did not finish")
                        pending.finished = True
                for pending in group:
                    if pending.waits and pending is not first:
                        pending.wake.release()
                with self._cv:
                    # Hand the lead to the first transaction that queued meanwhile.
                    if self._queue:
                        self._queue[0].wake.release()
                    else:
                        self._leader = False
        return [txn.error if txn.error is not None else txn.result for txn in txns]

    def _commit_group(self, group: list[_Txn]) -> None:
        with self._flock():
            with self._mutex:
                if self._failed is not None:
                    for txn in group:
                        txn.error, txn.finished = self._failed, True
                    return
                try:
                    self._advance(locked=True)
                except StemeLakeError as exc:
                    # Corruption, or segments retired under us (the caller reloads and
                    # retries): nothing of this group was written.
                    for txn in group:
                        txn.error, txn.finished = exc, True
                    return
                # Every other process's commit is delivered now, and none can commit
                # until this one releases the lock: readers have nothing to read until
                # this group is durable, so they need not wait for its fsync.
                self._inflight = True
            try:
                written = self._write_group(group)
            except BaseException:
                with self._mutex:
                    self._inflight = False
                raise
        # Durable, and the lock released: other processes may append after these
        # frames while they are delivered here (in order: no reader of this process
        # reads while ``_inflight``, and the next group waits for this leader).
        with self._mutex:
            try:
                if written is not None:
                    end, self._next_seq, self._last_time, delivered, accepted = written
                    self._off = end
                    self._sink(delivered)
                    for txn, done in accepted:
                        txn.result, txn.finished = done, True
            finally:
                self._inflight = False

    def _write_group(self, group: list[_Txn]) -> _Written | None:
        """Build, append and fsync the group's frames (under the commit lock); the
        end of what was written, the next sequence number and time, the frames to
        deliver and each transaction's frames (None if nothing was written)."""
        seq, last_time = self._next_seq, self._last_time
        chunks: list[bytes] = []
        accepted: list[tuple[_Txn, list[WalFrame]]] = []
        delivered: list[WalFrame] = []
        merge: _Merge | None = None

        def close() -> None:
            # The open merge becomes one frame; its transactions get their rows back.
            # Nothing after it has a sequence number yet, so a merge that fails
            # gives its number back and the log keeps no gap.
            nonlocal merge, seq
            if merge is None:
                return
            m, merge = merge, None
            try:
                table = m.tabulate(m.rows, m.seq)
                frame = PreparedFrame(m.kind, m.seq, m.commit_time, table)
                encoded = self._encode([frame])
            except Exception as exc:  # noqa: BLE001 - isolated below, or handed on
                # The rows were each checked on the way in, so this is one bad
                # transaction (or a bug): find it, refuse it alone, merge the rest.
                if len(m.members) > 1 and m.isolate():
                    merge = m
                    close()
                    return
                error = exc if isinstance(exc, StemeLakeError) else InternalError.wrap(exc)
                for txn, _, _ in m.members:
                    txn.error, txn.finished = error, True
                seq -= 1
                return
            chunks.extend(encoded)
            delivered.append(WalFrame(m.kind, m.seq, m.commit_time, table))
            for txn, start, count in m.members:
                part = WalFrame(m.kind, m.seq, m.commit_time, table.slice(start, count))
                accepted.append((txn, [part]))

        for txn in group:
            if not txn.mergeable:
                close()
            try:
                prepared = txn.builder(seq, last_time)
                if txn.mergeable:
                    if len(prepared) != 1 or not isinstance(prepared[0], PendingFrame):
                        raise StemeLakeError("a mergeable transaction is one PendingFrame")
                    pending = prepared[0]
                    last_time = max(last_time, pending.commit_time)
                    if merge is not None and merge.takes(pending, self.max_frame_bytes):
                        merge.add(pending, txn)
                    else:
                        close()
                        merge = _Merge(seq, pending, txn)
                        seq += 1  # the merged frame's number
                    continue
                frames = self._check_seq(prepared, seq)
                encoded = self._encode(frames)
            except StemeLakeError as exc:
                txn.error, txn.finished = exc, True
                continue
            except Exception as exc:  # noqa: BLE001 - a bug in one transaction fails it alone
                txn.error, txn.finished = InternalError.wrap(exc), True
                continue
            chunks.extend(encoded)
            walframes = [WalFrame(f.kind, f.seq, f.commit_time, f.table) for f in frames]
            accepted.append((txn, walframes))
            delivered.extend(walframes)
            seq += len(frames)
            last_time = max(last_time, frames[-1].commit_time)
        close()
        if not accepted:
            return None
        data = b"".join(chunks)
        try:
            path, start = self._segment_for_append()
            self._append(path, start, data)
        except OSError as exc:
            self._failed = WalFailedError(
                f"the WAL write failed ({exc}); the writer stopped and nothing of this "
                "commit was acknowledged: reopen the lake to recover from the log"
            )
            for txn, _ in accepted:
                txn.error, txn.finished = self._failed, True
            return None
        return start + len(data), seq, last_time, delivered, accepted

    @staticmethod
    def _check_seq(prepared: list[Any], seq: int) -> list[PreparedFrame]:
        frames: list[PreparedFrame] = []
        for i, frame in enumerate(prepared):
            if not isinstance(frame, PreparedFrame):
                raise StemeLakeError(f"frame {i} is not a PreparedFrame (commit it mergeable)")
            if frame.seq != seq + i:
                raise StemeLakeError(f"frame {i} has sequence {frame.seq}, expected {seq + i}")
            frames.append(frame)
        return frames

    def _encode(self, frames: list[PreparedFrame]) -> list[bytes]:
        """The frames' bytes (a transaction's frames but its last say it continues)."""
        encoded = []
        for i, frame in enumerate(frames):
            payload = fmt.encode_payload(frame.table)
            if len(payload) > self.max_frame_bytes:
                raise FrameTooLargeError(
                    f"one commit of {frame.table.num_rows} rows encodes to {len(payload):,} bytes, "
                    f"over the {self.max_frame_bytes:,}-byte frame limit; write it in smaller "
                    "batches (the bulk API splits batches for you)"
                )
            flags = fmt.FLAG_TXN_CONTINUES if i < len(frames) - 1 else 0
            encoded.append(
                fmt.encode_frame(
                    kind=frame.kind,
                    flags=flags,
                    seq=frame.seq,
                    commit_time=frame.commit_time,
                    rows=frame.table.num_rows,
                    payload=payload,
                )
            )
        return encoded

    def _segment_for_append(self) -> tuple[Path, int]:
        """The segment to append to and the offset of its tail (rolls when full)."""
        # Listed by _advance under the same commit lock: no other writer can have
        # created or retired a segment since.
        segments = self._listed
        # After _advance(locked=True) the cursor sits at the tail of the last segment.
        if (
            segments
            and not self._must_roll
            and self._seg == segments[-1][0]
            and self._off < self.segment_bytes
        ):
            return segments[-1][1], self._off
        return self._create_segment(self._next_seq), fmt.SEGMENT_HEADER_SIZE

    def _create_segment(self, first_seq: int) -> Path:
        path = self.directory / fmt.segment_name(first_seq)
        header = fmt.encode_segment_header(fmt.SegmentHeader(first_seq, self._last_time))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            _write_all(fd, header, 0)
            self._fsync(fd)
        finally:
            os.close(fd)
        self._fsync_dir()
        self._seg, self._off = first_seq, fmt.SEGMENT_HEADER_SIZE
        self._must_roll = False
        return path

    def _append(self, path: Path, offset: int, data: bytes) -> None:
        fd = os.open(path, os.O_RDWR)
        try:
            try:
                _write_all(fd, data, offset)
                self._fsync(fd)
            except OSError:
                # Make the unacknowledged frames invisible; never retry the fsync.
                try:
                    os.ftruncate(fd, offset)
                except OSError:
                    log.exception("could not truncate %s after a failed write", path)
                raise
        finally:
            os.close(fd)

    def _fsync_dir(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            self._fsync(fd)
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ upkeep

    def retire(self, flushed_seq: int) -> list[Path]:
        """Delete segments whose frames are all flushed; never the last one."""
        removed: list[Path] = []
        with self._flock():
            segments = self.segments()
            try:
                for (_first, path), (next_first, _) in itertools.pairwise(segments):
                    if next_first - 1 > flushed_seq:
                        break
                    path.unlink()
                    removed.append(path)
                if removed:
                    self._fsync_dir()
            except OSError as exc:
                # The rows are in published Parquet files already: a segment left
                # behind (or brought back by a crash) is skipped when read.
                raise WalError(
                    f"retiring flushed WAL segments in {self.directory} failed ({exc}); "
                    "no data is at risk (their rows are in Parquet); check the disk"
                ) from exc
        return removed

    @contextmanager
    def _flock(self) -> Iterator[None]:
        if self._closed:
            raise WalFailedError("the WAL is closed")
        with self._lock.hold():
            yield

    @property
    def failed(self) -> WalFailedError | None:
        return self._failed

    def close(self) -> None:
        self._closed = True
        self._lock.close()


def first_segment_seq(directory: str | os.PathLike[str]) -> int | None:
    """The first sequence number the log still holds (its oldest segment's), or
    None if it has no segment (a new lake)."""
    try:
        names = [entry.name for entry in Path(directory).iterdir()]
    except FileNotFoundError:
        return None
    firsts = [f for f in map(fmt.segment_first_seq, names) if f is not None]
    return min(firsts, default=None)


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        if written <= 0:
            raise OSError("short write to the WAL")
        view, offset = view[written:], offset + written
