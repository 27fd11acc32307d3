"""The `Lake`: one object over the WAL, the Parquet partitions and the tail."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from steme_lake._exceptions import (
    InternalError,
    LakeClosedError,
    ReadOnlyError,
    StemeLakeError,
    StorageError,
    UnknownRecordError,
    ValidationError,
)
from steme_lake._utils.durable import makedirs_durable
from steme_lake._utils.locks import ProcessFileLock
from steme_lake._utils.timeparse import TimeLike, now_us, to_us, us_to_datetime, us_to_iso
from steme_lake.lake import _rows as rows
from steme_lake.lake._bulk import (
    BulkRows,
    UseRowPath,
    bulk_assertions,
    bulk_audit,
    bulk_votes,
    stamp,
)
from steme_lake.lake._home import FORMAT_FILE, FORMAT_TEXT, Home
from steme_lake.lake._idindex import IdIndex
from steme_lake.lake._investigate import InvestigateMixin
from steme_lake.lake._options import LakeOptions
from steme_lake.lake._questions import QuestionsMixin, check_query_args
from steme_lake.lake._quiet import Quiet
from steme_lake.lake._replay import SignatureLedger
from steme_lake.model.records import Record, record_from_row
from steme_lake.model.schema import RecordKind, spec
from steme_lake.query import _checkpoint as checkpoints
from steme_lake.query._candidates import Tables
from steme_lake.query._index import StateIndex
from steme_lake.storage import manifest as manifests
from steme_lake.storage.fs import LakeFS
from steme_lake.storage.keyindex import Keyed, KeyIndexes
from steme_lake.storage.manifest import Manifest
from steme_lake.storage.objectstore import ObjectStoreFS, is_remote
from steme_lake.storage.tables import FileVerifier, TailBuffer, empty_table, scan_table
from steme_lake.storage.writer import (
    clean_temporaries,
    compact,
    index_missing,
    still_on_disk,
    vacuum,
    vacuum_manifests,
    write_partitions,
)
from steme_lake.wal import (
    FrameBuilder,
    PendingFrame,
    PreparedFrame,
    SegmentsRetired,
    WalFrame,
    WriteAheadLog,
    first_segment_seq,
)

__all__ = ["Lake", "LakeStatus", "open_lake"]

if TYPE_CHECKING:
    from steme_lake.doctor import DoctorReport
    from steme_lake.dojo import DojoNamespace
    from steme_lake.trust import TrustNamespace
    from steme_lake.vectors import VectorsNamespace
    from steme_lake.widgets import Explorer

log = logging.getLogger("steme_lake")

WAL_DIR = "wal"
FLUSH_LOCK = "flush.lock"

# The longest a question waits for the state index to load from its checkpoint
# (it takes a fraction of a second: then it scans).
INDEX_WAIT_S = 5.0
# The tables of a consistent view (`Tables`): every kind but the audit log.
_VIEW_KINDS = tuple(kind for kind in RecordKind if kind is not RecordKind.AUDIT)


@dataclass(frozen=True, slots=True)
class LakeStatus:
    """What a lake holds and the state of its log."""

    path: str
    manifest_version: int
    flushed_seq: int
    last_seq: int
    last_time: str | None
    wal_segments: int
    wal_bytes: int
    unflushed_frames: int
    tables: dict[str, dict[str, int]]
    recovered_now: list[dict[str, Any]]
    state_index: str
    last_recovery: dict[str, Any] | None
    last_flush_error: str | None = None  # a background flush that failed (rows stay in the WAL)
    # Damaged manifest versions skipped when this process opened the lake (`steme doctor`).
    manifest_recovery: list[str] = field(default_factory=list)
    # The state index's checkpoint (loaded at open, or written since): folder, rows, seq.
    state_checkpoint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def _repr_html_(self) -> str:
        head = "<tr><th>table</th><th>files</th><th>rows</th><th>bytes</th></tr>"
        body = "".join(
            f"<tr><td>{t}</td><td>{v['files']}</td><td>{v['rows']:,}</td><td>{v['bytes']:,}</td></tr>"
            for t, v in self.tables.items()
        )
        return (
            f"<p><b>{self.path}</b>: manifest v{self.manifest_version}, last seq {self.last_seq}"
            f" ({self.last_time}), WAL {self.wal_segments} segments / {self.wal_bytes:,} bytes</p>"
            f"<table>{head}{body}</table>"
        )


class Lake(QuestionsMixin, InvestigateMixin):
    """A steme_lake: immutable signed assertions, votes and their history.

    Open one with `steme_lake.open`. Several processes may open the same
    lake and write at once; each sees the others' commits before it answers.

    Examples
    --------
    >>> import steme_lake as sl, tempfile
    >>> with sl.open(tempfile.mkdtemp()) as lake:
    ...     aid = lake.assert_("auth/jwt", "signing_algorithm", "RS256",
    ...                        agent="platform-team", confidence=0.92,
    ...                        lifecycle="approved", source="https://wiki/auth-decision")
    ...     lake.assertions.select("object", "lifecycle").collect().row(0)
    ('"RS256"', 'approved')
    """

    def __init__(
        self,
        uri: str | os.PathLike[str],
        *,
        storage_options: dict[str, Any] | None = None,
        options: LakeOptions | None = None,
        wal: str | os.PathLike[str] | None = None,
        read_only: bool = False,
        take_over: bool = False,
        _fsync: Callable[[int], None] = os.fsync,
    ) -> None:
        self.options = options or LakeOptions()
        self.read_only = bool(read_only)
        self._now = now_us  # the clock records are stamped with
        if self.options.clock_start is not None:  # a story's clock, at real speed
            offset = to_us(self.options.clock_start, name="clock_start") - now_us()
            self._now = lambda: now_us() + offset
        self._home: Home | None = None
        self._fs: LakeFS
        if is_remote(uri):
            self._home = Home.open(str(uri), storage_options, wal=wal, read_only=self.read_only)
            self._fs = self._home.fs
            self._fs._fsync = _fsync
        else:
            if wal is not None or read_only or take_over:
                raise ValidationError(
                    "wal=, read_only= and take_over= are for a lake on object storage "
                    "(s3://bucket/lake): a local lake keeps its WAL in its own folder"
                )
            self._fs = LakeFS(uri, storage_options, fsync=_fsync)
        self.path = self._fs.root
        #: Where the lake is: its folder, or its object-storage URL.
        self.uri = self._fs.display if isinstance(self._fs, ObjectStoreFS) else str(self.path)
        if self._home is None:
            self._check_or_create_root()
        self._lock = threading.RLock()
        self._closed = False
        self._tail = TailBuffer()
        self._ids = IdIndex()
        self._constraint_ids = IdIndex()
        # Told (from the committing thread: they must only signal) when assertions
        # were committed; upper layers follow the lake this way (`lake.vectors`).
        self._assertion_listeners: list[Callable[[], None]] = []
        self._ledger = SignatureLedger(
            max_age_us=int(self.options.signature_max_age_seconds * 1e6),
            max_future_us=int(self.options.max_future_seconds * 1e6),
        )
        self._verifier = FileVerifier(self._fs, self.options.verify)
        self._keys = KeyIndexes(self._fs, self._verifier)
        self._flush_lock = ProcessFileLock(self.path / FLUSH_LOCK)
        self.manifest_recovery: list[str] = []  # damaged versions skipped at open
        self._taken: Manifest | None = None  # another WAL's newest manifest, once seen
        self._manifest = self._good_manifest()
        if self._home is not None and not self.read_only:
            try:
                self._claim_writer(take_over=take_over)
            except BaseException:
                self._flush_lock.close()
                raise
        with self._flush_lock.hold(wait=False) as alone:
            if alone:  # no flush is writing: any temporary file is a crash's leftover
                for rel in clean_temporaries(self._fs):
                    log.info("%s: removed %s, left by an interrupted flush", self.path, rel)
        for index, table in ((self._ids, "assertions"), (self._constraint_ids, "constraints")):
            if not self._manifest.files_of(table):  # nothing to read: loaded already
                index.sync_files(self._fs, [])
        self._manifest_mtime = -1
        self._unflushed_since: float | None = None
        self._index: StateIndex | None = None
        self._index_capture: list[WalFrame] | None = None
        self._index_lock = threading.Lock()
        self._index_thread: threading.Thread | None = None
        self._index_error: BaseException | None = None
        self._checkpoint: checkpoints.Checkpoint | None = None  # the index's, if any
        # The checkpoint the index was loaded from, until its files' BLAKE3 are
        # checked: no checkpoint is written from an index that came from it.
        self._unchecked: checkpoints.Checkpoint | None = None
        # Set once questions need not wait for the index: it is ready, or it is
        # built from the files (seconds: questions scan meanwhile). Loading from a
        # checkpoint takes a fraction of a second: questions wait for that.
        self._index_soon = threading.Event()
        self._warm_stop = threading.Event()  # set at close: stop working out answers
        self._quiet = Quiet()  # questions in progress: background work waits
        self._flusher: threading.Thread | None = None  # a flush a commit started
        self._flusher_lock = threading.Lock()
        self._reading = threading.local()  # .fresh: inside `_batch_reads`
        # (subject, predicate) keys whose questions went to the vectorized lenses
        # (more than HOT_ROWS assertions): slow to answer, see `_is_busy`.
        self._busy_keys: set[tuple[str, str]] = set()
        self.last_flush_error: str | None = None  # of the last background flush, if it failed
        self._delivered_seq = self._manifest.flushed_seq  # highest sequence seen by this process
        self._wal = WriteAheadLog(
            self.path / WAL_DIR,
            sink=self._on_frames,
            start_seq=self._manifest.flushed_seq,
            start_time=self._manifest.flushed_time,
            fsync=_fsync,
            segment_bytes=self.options.segment_bytes,
            max_frame_bytes=self.options.max_frame_bytes,
        )
        try:
            self._refresh()
            if self.options.verify == "open":
                self.verify()
            if self.options.state_index == "eager":
                self._build_index()
                self._check_checkpoint()
        except BaseException:
            self._release()
            raise
        if not self.read_only and "pandas" not in sys.modules:
            # pyarrow imports pandas (if installed) the first time it converts
            # Python values, that is in this process's first commit: 0.2 s in
            # the first answer's audit record. Done beside the open (which waits
            # for the state index's checkpoint meanwhile), the first answer at
            # 10M came down from 0.58-0.68 s to 0.52-0.54 s.
            threading.Thread(target=_import_pandas, name="steme_lake-imports", daemon=True).start()
        if self.options.state_index != "background":
            self._index_soon.set()  # built already, or never
        else:
            self._index_thread = threading.Thread(
                target=self._build_index_then_warm, name="steme_lake-state-index", daemon=True
            )
            self._index_thread.start()

    def _good_manifest(self) -> Manifest:
        """The newest good manifest; newer damaged ones are skipped (and the good one
        published again above them) only if the WAL still holds what they flushed."""
        loaded = manifests.load_good(self._fs)
        if not loaded.skipped:
            return loaded.manifest
        with self._flush_lock.hold(wait=True):
            loaded = manifests.load_good(self._fs)  # again, now that no flush can run
            if not loaded.skipped:
                return loaded.manifest
            healed = manifests.fall_back(
                self._fs, loaded, wal_first_seq=first_segment_seq(self.path / WAL_DIR)
            )
        log.warning(
            "%s: skipped damaged manifest version(s) (%s); version %d (a copy of good "
            "version %d) is now the newest; `steme doctor` shows the details",
            self.path,
            "; ".join(str(e) for e in loaded.skipped),
            healed.version,
            loaded.manifest.version,
        )
        self.manifest_recovery = [str(e) for e in loaded.skipped]
        return healed

    def _claim_writer(self, *, take_over: bool) -> None:
        """On object storage one home (WAL) writes: its id goes in the manifest.
        Another home's writer is refused, unless told to take over."""
        assert self._home is not None
        mine = self._home.writer
        with self._flush_lock.hold(wait=True):
            current = self._publishable(self._manifest, claiming=True)
            if current.writer == mine:
                return
            if current.writer and not take_over:
                raise StorageError(
                    f"{self.uri} is written by another WAL (writer {current.writer}); a lake "
                    "has one writer, since two logs would number their rows alike. Open it "
                    "read_only=True to read, or, if that writer is gone for good, open with "
                    "take_over=True (rows it never flushed stay in its own WAL folder)"
                )
            claimed = current.next(writer=mine)
            if not manifests.try_publish(self._fs, claimed):
                newest = manifests.load_good(self._fs).manifest
                raise StorageError(
                    f"{self.uri}: another WAL (writer {newest.writer}) became the writer at "
                    "the same moment; open read_only=True to read"
                )
            manifests.published(self._fs, claimed)
            self._manifest = claimed

    def _foreign(self, manifest: Manifest) -> bool:
        """A manifest published by another writer's WAL (object storage, writers only)."""
        return (
            self._home is not None and not self.read_only and manifest.writer != self._home.writer
        )

    def _check_writable(self) -> None:
        if self._taken is not None:
            raise self._taken_over(self._taken)
        if self.read_only:
            raise ReadOnlyError(
                f"{self.uri} was opened read-only: it has no WAL to write to (a query "
                "records its question too; `blame` gives the same answer unrecorded). "
                "To write, open it with wal='./wal' (a local folder for its log)"
            )

    def _check_or_create_root(self) -> None:
        root = self.path
        if root.exists() and not root.is_dir():
            raise ValidationError(f"{root} is a file, not a lake folder")
        marker = root / FORMAT_FILE
        if root.is_dir() and not marker.exists() and any(root.iterdir()):
            raise ValidationError(
                f"{root} is a non-empty folder that is not a steme_lake; "
                "open an empty or new folder"
            )
        try:
            makedirs_durable(root, self._fs._fsync)
        except OSError as exc:
            raise StorageError(
                f"cannot create the lake folder {root} ({exc.strerror or exc}): choose a "
                "folder you can write"
            ) from None
        if not os.access(root, os.W_OK):
            raise StorageError(
                f"{root} is read-only (a read-only file system or no write permission): "
                "a lake is opened by a process that can write its log and locks, even to "
                "read it. To investigate a copy, copy the folder somewhere writable "
                "(cp -r) and open the copy"
            )
        if not marker.exists():
            self._fs.put_if_absent(FORMAT_FILE, FORMAT_TEXT)

    # ----------------------------------------------------------- catching up

    def _build_index(self, *, checkpoint: bool = True) -> None:
        """Load the current-state index from its checkpoint and the rows recorded
        after it, or else from one view of the lake; then replay what arrived
        meanwhile (`query/_checkpoint.py`)."""
        try:
            with self._index_lock:
                capture: list[WalFrame] = []
                self._index_capture = capture
            loaded = self._load_checkpoint() if checkpoint else None
            if loaded is not None:
                index, self._checkpoint = loaded
                self._unchecked = self._checkpoint if self.options.verify != "off" else None
                tables, covered = self._view(after=index.seq)
                index.extend(tables)
            else:
                self._checkpoint = self._unchecked = None
                self._index_soon.set()
                tables, covered = self._view()
                index = StateIndex.build(tables)
            # (a checkpoint may hold rows the view did not reach yet: not added twice)
            covered = index.seq = max(index.seq, covered)
            with self._index_lock:
                index.add_frames(f for f in capture if f.seq > covered)
                self._index, self._index_capture = index, None
        except BaseException as exc:
            with self._index_lock:
                self._index_capture = None
            self._index_error = exc
            log.exception("the current-state index could not be built; point queries will scan")
        finally:
            self._index_soon.set()

    def _ready_index(self) -> StateIndex | None:
        """The state index, or None while it is being built from the files (then
        questions scan). While it is loaded from its checkpoint (a fraction of a
        second), this waits for it: a scan at 10M takes seconds."""
        index = self._index
        if index is None and not self._index_soon.is_set():
            self._index_soon.wait(INDEX_WAIT_S)
            index = self._index
        return index

    def _checkpoints_here(self) -> bool:
        """Whether this lake keeps state checkpoints: a local folder (on object
        storage the index is built from the files)."""
        return self._home is None and not self._fs.remote

    def _load_checkpoint(self) -> tuple[StateIndex, checkpoints.Checkpoint] | None:
        if not self._checkpoints_here():
            return None
        self._refresh()
        with self._lock:
            held = max(self._manifest.flushed_seq, self._wal.last_seq)
            writer = self._manifest.writer
        return checkpoints.load(self.path, writer=writer, max_seq=held)

    def _check_checkpoint(self) -> None:
        """Check the files of the checkpoint the index came from (see
        `query/_checkpoint.py`): if one differs, the index is built again from
        the lake's files."""
        loaded = self._unchecked
        if loaded is None:
            return
        stopped = False

        def between() -> bool:
            nonlocal stopped
            stopped = not self._quiet.wait(self._warm_stop)
            return not stopped

        problem = loaded.verify(between=between)
        if problem is None:
            if not stopped:
                self._unchecked = None
            return
        log.error(
            "the state index checkpoint is damaged (%s): building the index from the "
            "lake's files; questions scan until it is ready",
            problem,
        )
        with self._index_lock:
            self._index, self._checkpoint, self._unchecked = None, None, None
        shutil.rmtree(loaded.path, ignore_errors=True)
        self._build_index(checkpoint=False)

    def _check_checkpoint_logged(self) -> None:
        try:
            self._check_checkpoint()
        except Exception:
            log.exception("the state index checkpoint could not be checked")

    def _save_checkpoint(self) -> None:
        """Write the index down when it is big and its checkpoint is missing or
        far behind (not by a read-only process)."""
        index = self._index
        if index is None or self.read_only or not self._checkpoints_here():
            return
        if self._unchecked is not None:  # its check did not finish (a close came first)
            return
        if not checkpoints.stale(index.held(), self._checkpoint):
            return
        with self._lock:
            writer = self._manifest.writer
        started = time.perf_counter()
        saved = checkpoints.save(self.path, index, writer=writer, fsync=self._fs._fsync)
        if saved is not None:
            self._checkpoint = saved
            log.info(
                "%s: wrote the state index checkpoint (%d rows, up to sequence %d) in %.1f s",
                self.path,
                saved.rows,
                saved.seq,
                time.perf_counter() - started,
            )

    def _build_index_then_warm(self) -> None:
        """The background index build; then the busiest keys' current answers
        and, beside them, the check of the checkpoint the index came from; then
        a checkpoint if one is due. The check waits while any question is
        answered, the warm-up only while point questions are: one after the
        other, the warm-up never ran under back-to-back questions of every kind
        (the 1M benchmark's point p99 rose from 6.4 to 11 ms)."""
        self._build_index()
        checker = None
        if self._unchecked is not None:
            checker = threading.Thread(
                target=self._check_checkpoint_logged, name="steme_lake-checkpoint-check"
            )
            checker.daemon = True
            checker.start()
        try:
            if self._index is not None:
                self._warm(self._warm_stop)
        except LakeClosedError:
            pass
        except Exception:
            log.exception("the busy keys' answers could not be worked out; asked, they resolve")
        finally:
            if checker is not None:
                checker.join()
        if self._index is None:
            return
        try:
            self._save_checkpoint()
        except Exception:
            log.exception("the state index checkpoint could not be written; the next open builds")

    def _feed_index(self, frames: list[WalFrame]) -> None:
        self._ledger.add_frames(frames)
        with self._index_lock:
            if self._index is not None:
                self._index.add_frames(frames)
            elif self._index_capture is not None:
                self._index_capture.extend(frames)
            if frames:
                self._delivered_seq = max(self._delivered_seq, max(f.seq for f in frames))

    def _on_frames(self, frames: list[WalFrame]) -> None:
        self._feed_index(frames)
        self._tail.add(frames)
        asserted = False
        for frame in frames:
            if frame.kind == RecordKind.ASSERTION:
                self._ids.add_recent(frame.table["id"])
                asserted = True
            elif frame.kind == RecordKind.CONSTRAINT:
                self._constraint_ids.add_recent(frame.table["id"])
        if asserted:
            for listener in list(self._assertion_listeners):
                listener()
        if self._unflushed_since is None:
            self._unflushed_since = time.monotonic()

    def _flushed_frames(self, manifest: Manifest, first_seq: int) -> list[WalFrame]:
        """Rows of sequence numbers first_seq..flushed_seq, read back from the files, as frames."""
        last = manifest.flushed_seq
        frames: list[WalFrame] = []
        for kind in RecordKind:
            entries = [
                e
                for e in manifest.files_of(kind.table)
                if e.max_seq >= first_seq and e.min_seq <= last
            ]
            if not entries:
                continue
            for entry in entries:
                self._verifier.check(entry)
            rows = (
                pl.scan_parquet([str(self._fs.path(e.path)) for e in entries])
                .filter(pl.col("seq").is_between(first_seq, last))
                .collect()
            )
            for part in rows.partition_by("seq", maintain_order=True):
                table = part.to_arrow().cast(spec(kind).schema)
                seq = int(part["seq"][0])
                commit = int(table["recorded_at"].cast(pa.int64()).to_numpy().max())
                frames.append(WalFrame(int(kind), seq, commit, table))
        return sorted(frames, key=lambda f: f.seq)

    def _sync_manifest(self) -> None:
        mtime = self._fs.changed(manifests.MANIFEST_DIR)
        if mtime is None or mtime == self._manifest_mtime:
            return
        if manifests.latest_version(self._fs) > self._manifest.version:
            good = manifests.load_good(self._fs).manifest  # a damaged newest is skipped
            if good.version > self._manifest.version:
                if self._foreign(good):
                    # Another WAL took the lake over: its sequence numbers are not this
                    # log's, so its manifest must not retire this log's rows. This
                    # process stops writing (its unflushed rows stay in its WAL).
                    self._taken_over(good)
                else:
                    self._install(good)
        self._manifest_mtime = mtime

    def _install(self, manifest: Manifest) -> None:
        if manifest.flushed_seq > self._delivered_seq:
            # Another process flushed (and may have retired) frames this process never
            # read from the WAL: the index learns them from the new files instead.
            self._feed_index(self._flushed_frames(manifest, self._delivered_seq + 1))
        self._manifest = manifest
        self._tail.drop_through(manifest.flushed_seq)
        self._wal.skip_to(manifest.flushed_seq, manifest.flushed_time)
        if self._tail.empty:
            self._unflushed_since = None

    def _refresh_to_read(self) -> None:
        """`_refresh`, unless this thread is answering a batch that caught up already."""
        if not getattr(self._reading, "fresh", False):
            self._refresh()

    @contextmanager
    def _batch_reads(self) -> Iterator[None]:
        """Questions that arrived together (a server's batch): the lake catches up
        with other writers once, for all of them. Every write acknowledged before
        any of them arrived is seen, as when each catches up on its own."""
        self._refresh()
        self._reading.fresh = True
        try:
            yield
        finally:
            self._reading.fresh = False

    def _refresh(self) -> None:
        """Catch up with every commit and flush, of this process and others."""
        with self._lock:
            for _ in range(8):
                self._sync_manifest()
                try:
                    self._wal.catch_up()
                    return
                except SegmentsRetired:
                    self._manifest_mtime = -1  # a flush retired segments: reload its manifest
            raise StorageError(
                "the WAL kept moving under this reader (segments retired but no newer "
                "manifest found); check that all writers run the same steme_lake version"
            )

    def _check_open(self) -> None:
        if self._closed:
            raise LakeClosedError("this lake is closed; open it again with steme_lake.open()")

    # ----------------------------------------------------------- writes

    def _commit(self, pending: Sequence[rows.PendingRow]) -> list[str]:
        (result,) = self._commit_each([pending])
        if isinstance(result, BaseException):
            raise result
        return result

    def _commit_each(
        self, transactions: Sequence[Sequence[rows.PendingRow]]
    ) -> list[list[str] | StemeLakeError]:
        """Commit independent transactions in one group (one fsync): for each, in
        order, its ids or the error that refused it (the others still commit).

        A server gathers the requests that arrive together and commits them here
        from one thread: no thread per request trading the GIL at every call."""
        self._check_open()
        out: list[list[str] | StemeLakeError] = [[] for _ in transactions]
        builders: list[tuple[int, FrameBuilder, bool]] = []
        for i, pending in enumerate(transactions):
            if not pending:
                continue
            try:
                builders.append((i, *self._builder(pending)))
            except StemeLakeError as exc:
                out[i] = exc
            except Exception as exc:  # noqa: BLE001 - a bug in one transaction fails it alone
                out[i] = InternalError.wrap(exc)
        results = self._commit_builders([(b, m) for _, b, m in builders])
        for (i, _, _), result in zip(builders, results, strict=True):
            out[i] = result
        return out

    def _commit_builders(
        self, builders: Sequence[tuple[FrameBuilder, bool]]
    ) -> list[list[str] | StemeLakeError]:
        """Commit ``(builder, mergeable)`` transactions in one group; each one's ids
        or its error. A group that found its segments retired is committed again."""
        self._check_writable()
        self._quiet.mark_write()
        out: list[list[str] | StemeLakeError] = [[] for _ in builders]
        todo = list(range(len(builders)))
        for _ in range(8):
            if not todo:
                break
            results = self._wal.commit_many([builders[i] for i in todo])
            retry = []
            for i, result in zip(todo, results, strict=True):
                if isinstance(result, SegmentsRetired):
                    retry.append(i)
                elif isinstance(result, StemeLakeError):
                    out[i] = result
                else:
                    out[i] = [rid for frame in result for rid in frame.table["id"].to_pylist()]
            todo = retry
            if retry:
                # Another process flushed and retired the segments this process was
                # reading (nothing of the group was written): load its manifest, then
                # commit against the real tail.
                self._manifest_mtime = -1
                self._refresh()
        else:
            for i in todo:
                out[i] = StorageError("the WAL kept moving under this writer; retry the write")
        if builders:
            self._maybe_flush()
        return out

    def _builder(self, pending: Sequence[rows.PendingRow]) -> tuple[FrameBuilder, bool]:
        """Check a transaction's rows as far as can be done before the commit lock;
        the builder that stamps them for the log's real tail, and if it is mergeable."""
        self._check_refs(pending)
        if not self._ledger.seeded and any(
            s.signed_at is not None for p in pending for s in p.signatures
        ):
            self._seed_ledger()
        limits = self._limits()
        mergeable = rows.mergeable_rows(pending)
        rows.verify_content_signatures(pending)

        def build(seq: int, last: int) -> list[PreparedFrame] | list[PendingFrame]:
            return rows.build_frames(
                pending,
                seq,
                last,
                ledger=self._ledger,
                mergeable=mergeable,
                content_verified=True,
                **limits,
            )

        return build, mergeable

    def _limits(self) -> dict[str, Any]:
        """What stamping a commit needs: the clock and this lake's limits."""
        opts = self.options
        return {
            "now": self._now,
            "max_future_us": int(opts.max_future_seconds * 1e6),
            "frame_budget": opts.max_frame_bytes // 2,
        }

    def _commit_built(self, build: FrameBuilder, *, mergeable: bool = False) -> list[str]:
        """Commit the frames ``build`` makes for the log's real tail; their ids."""
        (result,) = self._commit_builders([(build, mergeable)])
        if isinstance(result, BaseException):
            raise result
        return result

    def _seed_ledger(self) -> None:
        self._ledger.seed(self._scan, now_us())

    def _check_refs(self, pending: Sequence[rows.PendingRow]) -> None:
        batch: dict[str, RecordKind] = {
            p.id_at(p.at): p.kind
            for p in pending
            if p.at is not None and p.kind in (RecordKind.ASSERTION, RecordKind.CONSTRAINT)
        }
        needed = [(p, r) for p in pending for r in p.refs if batch.get(r) not in p.ref_kinds]
        if not needed:
            return
        indexes = {RecordKind.ASSERTION: self._ids, RecordKind.CONSTRAINT: self._constraint_ids}

        def known(p: rows.PendingRow, rid: str) -> bool:
            return any(rid in indexes[kind] for kind in p.ref_kinds)

        if not all(known(p, r) for p, r in needed):
            self._refresh()
            for kind, index in indexes.items():
                index.sync_files(
                    self._fs, self._manifest.files_of(kind.table), self._manifest.removed
                )
        for p, r in needed:
            if not known(p, r):
                what = " or ".join(k.table[:-1] for k in sorted(p.ref_kinds))
                raise UnknownRecordError(
                    f"{p.kind.table} record points at {what} {r}, which is not in this "
                    "lake; check the id (as returned by the write) or write that record first"
                )

    def assert_(
        self,
        subject: str,
        predicate: str,
        object: Any,
        *,
        agent: str,
        confidence: float = 1.0,
        lifecycle: str = "proposed",
        source: str | bytes | None = None,
        source_hash: str | None = None,
        parent: str | None = None,
        epoch: str | None = None,
        visual_hash: str | None = None,
        meta: dict[str, Any] | None = None,
        at: TimeLike | None = None,
        signatures: Sequence[Any] | None = None,
        sign_with: Sequence[Any] | None = None,
    ) -> str:
        """Write an assertion; return its id once it is durable.

        Parameters
        ----------
        subject, predicate, object
            The claim: ``object`` is any JSON value.
        agent
            Who asserts it.
        confidence
            0..1.
        lifecycle
            ``proposed`` (default), ``under_review``, ``approved`` or ``deprecated``.
        source, source_hash
            The evidence (URL, text or bytes; its BLAKE3 is stored) or a ready hash.
        parent
            The id of the assertion this one refines.
        at
            The record's time (imports of history); default: the commit time.
        signatures, sign_with
            Ready signatures of the id (need ``at=``), or `AgentKey` objects that
            sign at commit.
        """
        return self._commit(
            [
                self._assertion_row(
                    subject,
                    predicate,
                    object,
                    agent=agent,
                    confidence=confidence,
                    lifecycle=lifecycle,
                    source=source,
                    source_hash=source_hash,
                    parent=parent,
                    epoch=epoch,
                    visual_hash=visual_hash,
                    meta=meta,
                    at=at,
                    signatures=signatures,
                    sign_with=sign_with,
                )
            ]
        )[0]

    def _assertion_row(
        self,
        *args: Any,
        at: TimeLike | None = None,
        signatures: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> rows.PendingRow:
        """The checked row `assert_` commits (its arguments), not yet committed."""
        self._check_open()
        return rows.assertion_row(
            *args, at=at, signatures=self._presigned(signatures, at), **kwargs
        )

    @staticmethod
    def _presigned(signatures: Sequence[Any] | None, at: TimeLike | None) -> Sequence[Any] | None:
        def of_content(sig: Any) -> bool:
            found = sig.get("signed_at") if isinstance(sig, dict) else getattr(sig, "signed_at", 0)
            return found is not None

        if signatures and at is None and not all(of_content(s) for s in signatures):
            raise ValidationError(
                "a ready signature of the record id covers the record's time: pass the same "
                "at= you signed with, sign the content id instead "
                "(AgentKey.sign_content), or pass sign_with=[key] to sign at commit"
            )
        return signatures

    def assert_many(self, data: Any) -> list[str]:
        """Write many assertions in one durable commit; return their ids in order.

        ``data`` is a `polars.DataFrame`, a `pyarrow.Table` or a list of dicts
        whose columns are `assert_`'s parameters (``subject``, ``predicate``,
        ``object``, ``agent``, ``confidence``, ``source`` or ``source_hash``, ...).
        """
        bulk = bulk_assertions(data)
        if bulk is not None:
            ids = self._commit_bulk(bulk)
            if ids is not None:
                return ids
        return self._commit([rows.assertion_row(**r) for r in _records(data, "assert_many")])

    def _commit_bulk(self, bulk: BulkRows) -> list[str] | None:
        """Commit checked columns (see `_bulk`); None when a row breaks a commit-time
        rule (order, future, duplicate): the row path then says which and why."""
        self._check_open()
        limits = self._limits()

        def build(seq: int, last: int) -> list[PreparedFrame]:
            frames = stamp(bulk, seq, last, **limits)
            if frames is None:
                raise UseRowPath("a row breaks a commit-time rule")
            return frames

        try:
            return self._commit_built(build)
        except UseRowPath:
            return None

    def vote(
        self,
        target: str,
        *,
        agent: str,
        weight: float = 1.0,
        at: TimeLike | None = None,
        signatures: Sequence[Any] | None = None,
        sign_with: Sequence[Any] | None = None,
    ) -> str:
        """Vote on an assertion (weight may be negative); return the vote's id."""
        return self._commit(
            [
                rows.vote_row(
                    target,
                    agent=agent,
                    weight=weight,
                    at=at,
                    signatures=self._presigned(signatures, at),
                    sign_with=sign_with,
                )
            ]
        )[0]

    def vote_many(self, data: Any) -> list[str]:
        """Write many votes (columns ``target``, ``agent``, ``weight``, ``at``) in one commit."""
        found = bulk_votes(data)
        if found is not None:
            bulk, targets = found
            if self._ids.all_in(targets):  # else the row path finds and names it
                ids = self._commit_bulk(bulk)
                if ids is not None:
                    return ids
        return self._commit([rows.vote_row(**r) for r in _records(data, "vote_many")])

    def set_lifecycle(
        self,
        target: str,
        stage: str,
        *,
        agent: str,
        reason: str | None = None,
        at: TimeLike | None = None,
        signatures: Sequence[Any] | None = None,
        sign_with: Sequence[Any] | None = None,
    ) -> str:
        """Move an assertion to another lifecycle stage; return the change's id."""
        return self._commit(
            [
                rows.lifecycle_row(
                    target,
                    stage,
                    agent=agent,
                    reason=reason,
                    at=at,
                    signatures=self._presigned(signatures, at),
                    sign_with=sign_with,
                )
            ]
        )[0]

    def supersede(
        self,
        target: str | None = None,
        *,
        agent: str,
        kind: str,
        reason: str,
        source: str | bytes | None = None,
        source_hash: str | None = None,
        target_agent: str | None = None,
        window: tuple[TimeLike | None, TimeLike | None] | None = None,
        replacement: str | None = None,
        epoch: str | None = None,
        at: TimeLike | None = None,
        signatures: Sequence[Any] | None = None,
        sign_with: Sequence[Any] | None = None,
    ) -> str:
        """Mark assertions superseded (never deleted): one, a source's, or an agent's window.

        ``kind`` is ``invalidate``, ``refine``, ``replace`` or ``paradigm_shift``.
        """
        return self._commit(
            [
                rows.supersession_row(
                    target,
                    agent=agent,
                    kind=kind,
                    reason=reason,
                    source=source,
                    source_hash=source_hash,
                    target_agent=target_agent,
                    window=window,
                    replacement=replacement,
                    epoch=epoch,
                    at=at,
                    signatures=self._presigned(signatures, at),
                    sign_with=sign_with,
                )
            ]
        )[0]

    def add_constraint(
        self,
        context: str,
        *,
        agent: str,
        reason: str,
        forbidden: Any = None,
        must_use: Any = None,
        predicate: str | None = None,
        cites: str | None = None,
        at: TimeLike | None = None,
        signatures: Sequence[Any] | None = None,
        sign_with: Sequence[Any] | None = None,
    ) -> str:
        """Store a constraint for a context (e.g. ``auth/jwt``): forbidden / must_use / reason."""
        return self._commit(
            [
                rows.constraint_row(
                    context,
                    agent=agent,
                    reason=reason,
                    forbidden=forbidden,
                    must_use=must_use,
                    predicate=predicate,
                    cites=cites,
                    at=at,
                    signatures=self._presigned(signatures, at),
                    sign_with=sign_with,
                )
            ]
        )[0]

    def import_events(
        self,
        source: str | os.PathLike[str] | Sequence[str | dict[str, Any]],
        *,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> dict[str, int]:
        """Import a JSON-lines event file (see docs/format.md), or a list of its
        lines or of the events as dicts; all or nothing.

        Returns the number of events per ``op``. ``progress(stage, done, total)``
        is called as lines are read (``"read"``), questions replayed
        (``"replay"``) and the events committed (``"commit"``); ``steme import``
        draws bars with it.
        """
        from steme_lake.io.events import QueryLine, parse_events

        parsed = parse_events(source, progress=progress)
        pending: list[rows.PendingRow] = [r for r in parsed.rows if not isinstance(r, QueryLine)]
        if len(pending) != len(parsed.rows):
            # Replayed questions are answered as of their time, against the lake plus
            # the file's own earlier events, and committed with them in one transaction.
            tables = overlay(self._tables(), pending)
            questions, replayed = len(parsed.rows) - len(pending), 0
            pending = []
            for item in parsed.rows:
                if isinstance(item, QueryLine):
                    pending.append(self._replay(tables, item))
                    replayed += 1
                    if progress is not None:
                        progress("replay", replayed, questions)
                else:
                    pending.append(item)
        if progress is not None:
            progress("commit", 0, len(pending))
        self._commit(pending)
        if progress is not None:
            progress("commit", len(pending), len(pending))
        return parsed.counts

    def import_audit(self, data: Any) -> list[str]:
        """Import query-audit records kept elsewhere, in one durable commit; return their ids.

        For an agent system's existing query log (and the benchmark generator):
        the rows are stored as given, not answered again (`import_events` with
        ``query`` lines replays questions instead). Rows must be in time order and
        not earlier than what the lake holds.

        ``data`` is a `polars.DataFrame`, a `pyarrow.Table` or a list of dicts with
        ``agent``, ``subject`` and ``at`` (when it was asked), and optionally
        ``op`` (``query``/``check``), ``predicate``, ``lens``, ``lifecycle``,
        ``min_confidence``, ``as_of``, ``include_superseded``, ``status``,
        ``value``, ``confidence``, ``winner``, ``contributing`` (assertion ids)
        and ``latency_us``.
        """
        bulk = bulk_audit(data)
        if bulk is not None:
            ids = self._commit_bulk(bulk)
            if ids is not None:
                return ids
        return self._commit([rows.imported_audit_row(**r) for r in _records(data, "import_audit")])

    def _replay(self, tables: Tables, q: Any) -> rows.PendingRow:
        started = time.perf_counter_ns()
        subject, predicate, lens, stages, min_confidence, include_superseded, agent = (
            check_query_args(
                q.subject,
                q.predicate,
                q.lens,
                q.lifecycle,
                q.min_confidence,
                q.include_superseded,
                q.agent,
            )
        )
        answer = self._answer(
            tables,
            subject,
            predicate,
            lens=lens,
            stages=stages,
            min_confidence=min_confidence,
            include_superseded=include_superseded,
            as_of=q.as_of,
            requested=q.as_of_text,
        )
        return self._audit_row(answer, agent, started, at=us_to_datetime(q.at))

    def _tables(self) -> Tables:
        """All tables as one consistent view (one manifest, one tail)."""
        return self._view()[0]

    def _view(self, *, after: int | None = None) -> tuple[Tables, int]:
        """One consistent view, and the highest sequence number it covers.
        ``after``: only the rows of higher sequence numbers."""
        self._check_open()
        self._refresh()
        with self._lock:
            manifest = self._manifest
            tail_seq, tails = self._tail.snapshot()
        # The kinds a view holds, not the audit log: scanning a table checks
        # its files' checksums, and at 10M the audit log is nine tenths of the
        # lake (20 of the 30 s to the first answer after an open). Checked
        # outside the lake's lock: commits and other questions go on meanwhile.
        scan = {
            kind: scan_table(
                self._fs,
                manifest,
                tails.get(kind, empty_table(kind)),
                kind,
                self._verifier,
                after_seq=after,
            )
            for kind in _VIEW_KINDS
        }
        covered = max(manifest.flushed_seq, tail_seq)
        return Tables(
            assertions=scan[RecordKind.ASSERTION],
            votes=scan[RecordKind.VOTE],
            lifecycle=scan[RecordKind.LIFECYCLE],
            supersessions=scan[RecordKind.SUPERSESSION],
            constraints=scan[RecordKind.CONSTRAINT],
            confirmations=scan[RecordKind.CONFIRMATION],
            trust=scan[RecordKind.TRUST],
        ), covered

    def _resolution_tables(self) -> Tables:
        """What a whole-lake resolution (snapshot, diff) reads: the state index's
        frames when it is ready (in memory and caught up with every commit: no
        file opened, checked or decoded), else one consistent view's scans."""
        self._check_open()
        self._refresh_to_read()
        index = self._ready_index()
        return self._tables() if index is None else index.tables()

    def _keyed(self) -> Keyed:
        """Rows by key (the key indexes) from one consistent view (one manifest, one tail)."""
        self._check_open()
        self._refresh()
        with self._lock:
            manifest = self._manifest
            _, tails = self._tail.snapshot()
        return Keyed(self._keys, manifest, tails)

    # ----------------------------------------------------------- reads

    def _scan(self, kind: RecordKind) -> pl.LazyFrame:
        self._check_open()
        self._refresh()
        with self._lock:
            return scan_table(self._fs, self._manifest, self._tail, kind, self._verifier)

    @property
    def assertions(self) -> pl.LazyFrame:
        """Every assertion ever written (``object``/``meta`` as JSON text)."""
        return self._scan(RecordKind.ASSERTION)

    @property
    def votes(self) -> pl.LazyFrame:
        return self._scan(RecordKind.VOTE)

    @property
    def lifecycle(self) -> pl.LazyFrame:
        """Lifecycle changes (an assertion's initial stage is on the assertion)."""
        return self._scan(RecordKind.LIFECYCLE)

    @property
    def supersessions(self) -> pl.LazyFrame:
        return self._scan(RecordKind.SUPERSESSION)

    @property
    def constraints(self) -> pl.LazyFrame:
        return self._scan(RecordKind.CONSTRAINT)

    @property
    def audit(self) -> pl.LazyFrame:
        """The query audit log: every query and constraint check, with its answer."""
        return self._scan(RecordKind.AUDIT)

    @property
    def confirmations(self) -> pl.LazyFrame:
        """Successful uses of assertions and constraints (they reset decay)."""
        return self._scan(RecordKind.CONFIRMATION)

    def table(self, name: str) -> pl.LazyFrame:
        """A table by name: assertions, votes, lifecycle, supersessions, constraints, audit."""
        try:
            return self._scan(RecordKind.from_table(name))
        except KeyError:
            names = ", ".join(k.table for k in RecordKind)
            raise ValidationError(f"unknown table {name!r}; the tables are: {names}") from None

    def get(self, record_id: str) -> Record:
        """The record with this id, of whatever kind."""
        rows.ref_id("record id", record_id)
        for kind in RecordKind:
            found = self._scan(kind).filter(pl.col("id") == record_id).collect()
            if found.height:
                return record_from_row(kind, found.row(0, named=True))
        raise UnknownRecordError(f"no record with id {record_id} in this lake")

    # ----------------------------------------------------------- upkeep

    def _flush_guard(self, *, wait: bool) -> AbstractContextManager[bool]:
        return self._flush_lock.hold(wait=wait)

    def flush(
        self, *, wait: bool = True, progress: Callable[[int, int], None] | None = None
    ) -> int:
        """Move committed WAL frames into Parquet; return the rows flushed.

        Files are written (temp, fsync, rename), then a new manifest version
        is published exclusively, and only then are WAL segments retired.
        ``progress(rows_written, rows_total)`` is called as each file is
        written (``steme flush`` draws a bar with it).
        """
        self._check_open()
        with self._flush_guard(wait=wait) as got:
            if not got:
                return 0
            with self._lock:
                self._refresh()
                if self._taken is not None:
                    raise self._taken_over(self._taken)
                frames = self._tail.frames()
                if not frames:
                    return 0
                current = self._publishable(self._manifest)
            # Writing the files (encoding, fsync) takes long: queries and commits go on
            # meanwhile. No other flush or compaction, in any process, can publish a
            # manifest before this one does: they wait for the flush lock held here.
            version = current.version + 1
            entries = []
            tick = None
            if progress is not None:
                total, done = sum(f.table.num_rows for f in frames), [0]

                def tick(rows: int) -> None:
                    done[0] += rows
                    progress(done[0], total)

            for kind in RecordKind:
                parts = [f.table for f in frames if f.kind == kind]
                if parts:
                    entries += write_partitions(
                        self._fs, kind, pa.concat_tables(parts), version, tick
                    )
            last_seq = frames[-1].seq
            last_time = max(f.commit_time for f in frames)

            def on(base: Manifest) -> Manifest | None:
                """This flush's files over ``base`` (None: ``base`` holds its rows)."""
                if base.flushed_seq >= last_seq:
                    return None
                if base.flushed_seq != current.flushed_seq:
                    raise StorageError(
                        f"manifest version {base.version} flushed part of this flush's rows "
                        f"(up to sequence {base.flushed_seq}); nothing was published and the "
                        "rows stay in the WAL: flush again"
                    )
                return base.next(
                    flushed_seq=last_seq,
                    flushed_time=max(base.flushed_time, last_time),
                    files=base.files + tuple(entries),
                    removed=still_on_disk(self._fs, base.removed, base.version + 1),
                )

            with self._lock:
                new = self._publish(on(current), on)  # read back before any segment goes
                self._install(new)
                # The flushed ids leave the recent sets for the compact arrays.
                for index, table in (
                    (self._ids, "assertions"),
                    (self._constraint_ids, "constraints"),
                ):
                    index.sync_files(self._fs, new.files_of(table), new.removed, if_loaded=True)
            self._wal.retire(new.flushed_seq)
            if self._needs_compaction():
                self._compact_locked()
        return sum(e.rows for e in entries)

    def _publishable(self, manifest: Manifest, *, claiming: bool = False) -> Manifest:
        """``manifest`` numbered as the newest on disk, so the next version published
        from it goes above any damaged version skipped at load (flush lock held).
        On object storage a newer good version is another writer's: refused."""
        latest = manifests.latest_version(self._fs)
        if latest <= manifest.version:
            return manifest
        if self._home is not None:
            good = manifests.load_good(self._fs).manifest
            if good.version > manifest.version:
                if not claiming and self._foreign(good):
                    raise self._taken_over(good)
                manifest = good
        return replace(manifest, version=latest)

    def _taken_over(self, newest: Manifest) -> StorageError:
        """The error for a lake another WAL took over; from now on this process
        refuses to write (`_check_writable`)."""
        self._taken = newest
        return StorageError(
            f"{self.uri} is now written by another WAL (writer {newest.writer}, manifest "
            f"version {newest.version}): this process's unflushed rows stay in its WAL at "
            f"{self.path / WAL_DIR} and were not published; reopen read_only=True to read"
        )

    def _publish(self, new: Manifest | None, on: Callable[[Manifest], Manifest | None]) -> Manifest:
        """Publish a version and read it back; return the lake's manifest now.

        A version number is won once (put-if-absent). A lost race is retried on
        the newest manifest: ``on(newest)`` redoes the change over it, or says
        (None) that the newest already holds it. On object storage a newest
        version of another writer is refused: that WAL took the lake over."""
        for _ in range(8):
            if new is None:
                return manifests.load_good(self._fs).manifest
            if manifests.try_publish(self._fs, new):
                manifests.published(self._fs, new)
                return new
            newest = manifests.load_good(self._fs).manifest
            if self._foreign(newest):
                raise self._taken_over(newest)
            log.info("%s: manifest version %d was taken; retrying on it", self.uri, new.version)
            new = on(newest)
        raise StorageError(
            f"{self.uri}: lost the race to publish a manifest 8 times in a row; nothing was "
            "published and the rows stay in the WAL: try again"
        )

    def _needs_compaction(self) -> bool:
        counts: dict[tuple[str, str], int] = {}
        for entry in self._manifest.files:
            key = (entry.table, entry.date)
            counts[key] = counts.get(key, 0) + 1
        return any(n >= self.options.compact_min_files for n in counts.values())

    def compact(self) -> int:
        """Merge small files of each (table, day); return how many files were merged.

        It also writes the key indexes that files lack (a lake written before
        key indexes existed: `docs/format.md`), so that impact stops scanning
        them. Compaction never changes what a query returns.
        """
        self._check_open()
        self._check_writable()
        with self._flush_guard(wait=True):
            merged = self._compact_locked()
            with self._lock:
                self._refresh()
                current = self._manifest
            self._keys.forget(index_missing(self._fs, current, self._verifier))
            return merged

    def _compact_locked(self) -> int:
        with self._lock:
            self._refresh()
            current = self._publishable(self._manifest)
        # Reading and writing the files happens outside the lock, as in `flush`.
        before = len(current.files)
        new = compact(self._fs, current, self._verifier, min_files=self.options.compact_min_files)
        if new is None:
            return 0
        gone = {e.path for e in current.files} - {e.path for e in new.files}
        merged = tuple(e for e in new.files if e.path not in {f.path for f in current.files})

        def on(base: Manifest) -> Manifest | None:
            """The same merge over ``base``, while it still lists every merged file."""
            if not gone <= {e.path for e in base.files}:
                return None
            stamp = now_us()
            return base.next(
                files=tuple(e for e in base.files if e.path not in gone) + merged,
                removed=still_on_disk(self._fs, base.removed, base.version + 1)
                + tuple((p, base.version + 1, stamp) for p in sorted(gone)),
            )

        with self._lock:
            published = self._publish(new, on)
            self._install(published)
        if not {e.path for e in merged} <= {e.path for e in published.files}:
            return 0  # the newest manifest no longer lists these files: the merge is moot
        self._vacuum_locked(published, self.options.vacuum_retain_seconds)
        return before - len(new.files) + 1

    def _vacuum_locked(self, manifest: Manifest, retain_seconds: float) -> list[str]:
        """Files and manifest versions no reader needs, older than the retention."""
        retain_us = int(retain_seconds * 1e6)
        deleted = vacuum(self._fs, manifest, retain_us=retain_us)
        return deleted + vacuum_manifests(self._fs, manifest.version, retain_us=retain_us)

    def vacuum(self, *, retain_seconds: float | None = None) -> list[str]:
        """Delete files that no manifest needs, older than the retention; return them."""
        self._check_open()
        self._check_writable()
        retain = self.options.vacuum_retain_seconds if retain_seconds is None else retain_seconds
        with self._flush_guard(wait=True):
            self._refresh()
            return self._vacuum_locked(self._manifest, retain)

    @property
    def trust(self) -> TrustNamespace:
        """The Gardener: per-topic TrustRank (`steme_lake.trust.TrustNamespace`); the
        trust records themselves are ``lake.table("trust")`` (or ``.trust.records``)."""
        from steme_lake.trust import TrustNamespace

        return TrustNamespace(self)

    @property
    def dojo(self) -> DojoNamespace:
        """The Dojo: the lake's history as training samples (`steme_lake.dojo`)."""
        from steme_lake.dojo import DojoNamespace

        return DojoNamespace(self)

    @property
    def vectors(self) -> VectorsNamespace:
        """Semantic search over the assertions, as of any time (`steme_lake.vectors`)."""
        from steme_lake.vectors import VectorsNamespace

        return VectorsNamespace(self)

    def explore(self, **kwargs: Any) -> Explorer:
        """The explorer on this lake (`steme_lake.widgets.Explorer`: the same
        keyword arguments); display it in a notebook."""
        from steme_lake.widgets import Explorer

        return Explorer(self, **kwargs)

    def doctor(self, *, repair: bool = False) -> DoctorReport:
        """`steme_lake.doctor` on this lake's folder: its WAL and Parquet files read
        on their own and compared with the manifest (``repair``: see there)."""
        from steme_lake.doctor import doctor

        self._check_open()
        if self._home is not None:
            raise ValidationError(
                f"{self.uri}: `doctor` examines a local lake folder; on object storage "
                "`lake.verify()` checks every published file against its manifest"
            )
        return doctor(self.path, repair=repair)

    def verify(self) -> int:
        """Check every Parquet file against its manifest checksum; return how many."""
        self._check_open()
        self._refresh()
        files = self._manifest.files
        for entry in files:
            self._verifier.check(entry, force=True)
        return len(files)

    def _maybe_flush(self) -> None:
        since = self._unflushed_since
        aged = since is not None and time.monotonic() - since >= self.options.flush_age_seconds
        if self._tail.bytes >= self.options.flush_bytes or aged:
            # In a thread of its own: the commit that crossed the threshold is answered
            # now, not after the files are written and compacted (seconds, at 10M).
            with self._flusher_lock:
                if self._closed or (self._flusher is not None and self._flusher.is_alive()):
                    return
                self._flusher = threading.Thread(
                    target=self._background_flush, name="steme_lake-flush", daemon=True
                )
                self._flusher.start()

    def _background_flush(self) -> None:
        try:
            self.flush(wait=False)
            self.last_flush_error = None
        except LakeClosedError:
            pass
        except (StemeLakeError, OSError, pa.ArrowException) as exc:
            # The rows stay in the WAL (durable); the next commit past the threshold
            # tries again. Said in the log and in `status()`.
            self.last_flush_error = f"{type(exc).__name__}: {exc}"
            log.warning("background flush failed (the rows stay in the WAL): %s", exc)

    def files(self, table: str) -> list[str]:
        """The Parquet files that hold ``table``'s flushed rows now, oldest first.

        For other engines over the lake's own files, e.g. DuckDB's
        ``read_parquet([...])``. Only these files: the tables folder also holds
        files compaction has replaced, kept for `vacuum_retain_seconds` for
        readers of older versions, so a glob over it would count rows twice.
        Rows still in the WAL are not in any file: call `flush` first.
        """
        self._check_open()
        names = [kind.table for kind in RecordKind]
        if table not in names:
            raise ValidationError(f"unknown table {table!r}; the tables are: {', '.join(names)}")
        self._refresh()
        entries = sorted(self._manifest.files_of(table), key=lambda e: (e.min_seq, e.path))
        return [self._fs.url(e.path) for e in entries]

    def status(self) -> LakeStatus:
        """Partitions, sizes, the WAL and the last recovery report."""
        self._check_open()
        self._refresh()
        tables: dict[str, dict[str, int]] = {}
        for kind in RecordKind:
            entries = self._manifest.files_of(kind.table)
            tail_rows = self._tail.table(kind).num_rows
            tables[kind.table] = {
                "files": len(entries),
                "rows": sum(e.rows for e in entries) + tail_rows,
                "unflushed_rows": tail_rows,
                "bytes": sum(e.bytes for e in entries),
            }
        segments = self._wal.segments()
        return LakeStatus(
            path=self.uri,
            manifest_version=self._manifest.version,
            flushed_seq=self._manifest.flushed_seq,
            last_seq=self._wal.last_seq,
            last_time=us_to_iso(self._wal.last_time) if self._wal.last_time else None,
            wal_segments=len(segments),
            wal_bytes=sum(p.stat().st_size for _, p in segments),
            unflushed_frames=len(self._tail.frames()),
            tables=tables,
            recovered_now=[vars_of(t) for t in self._wal.recovered],
            state_index=self._index_state(),
            state_checkpoint=self._checkpoint_state(),
            last_recovery=self._wal.last_recovery(),
            last_flush_error=self.last_flush_error,
            manifest_recovery=list(self.manifest_recovery),
        )

    def _checkpoint_state(self) -> str | None:
        found = self._checkpoint
        if found is None:
            return None
        return f"{found.path.relative_to(self.path)} ({found.rows:,} rows, up to seq {found.seq})"

    def _index_state(self) -> str:
        if self._index is not None:
            return "ready"
        if self._index_error is not None:
            return f"failed: {self._index_error}"
        if self.options.state_index == "off":
            return "off"
        return "building"

    def close(self) -> None:
        """Flush what is unflushed and release the lake's files. Idempotent."""
        if self._closed:
            return
        self._warm_stop.set()
        try:
            with self._flusher_lock:
                flusher = self._flusher
            if flusher is not None:
                flusher.join()
            if self._wal.failed is None and not self._tail.empty:
                self.flush()
            # A process that wrote much (a server) leaves the index written down,
            # for the next open to load (`query/_checkpoint.py`).
            thread = self._index_thread
            if thread is not None:
                thread.join()
            if self._index is not None:
                self._index.settle()  # (its runs' merges: the checkpoint holds them)
            try:
                self._save_checkpoint()
            except Exception:
                log.exception("the state index checkpoint could not be written at close")
        finally:
            self._release()

    def _release(self) -> None:
        with self._flusher_lock:
            flusher, self._flusher = self._flusher, None
        self._warm_stop.set()
        for thread in (self._index_thread, flusher):
            if thread is not None and thread is not threading.current_thread():
                thread.join()
        self._closed = True
        self._wal.close()
        self._flush_lock.close()
        if self._home is not None:
            self._home.close()

    def __enter__(self) -> Lake:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"seq {self._wal.last_seq}"
        return f"<steme_lake.Lake {self.uri} ({state})>"

    def _repr_html_(self) -> str:
        if self._closed:
            return f"<p>steme_lake at <b>{self.uri}</b> (closed)</p>"
        return self.status()._repr_html_()


def _import_pandas() -> None:
    pa.array([0])  # pyarrow's converter imports pandas, once per process


def vars_of(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}


def _records(data: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(data, pl.DataFrame):
        out = data.to_dicts()
    elif hasattr(data, "to_pylist"):
        out = data.to_pylist()
    elif isinstance(data, list | tuple):
        out = list(data)
    else:
        raise ValidationError(
            f"{where} takes a polars DataFrame, a pyarrow Table or a list of dicts, "
            f"not {type(data).__name__}"
        )
    for index, item in enumerate(out):
        if not isinstance(item, dict):
            raise ValidationError(f"{where}: row {index} is {type(item).__name__}, not a dict")
        for key in [k for k, v in item.items() if v is None and k in ("at", "signatures")]:
            item.pop(key)
    return out


def open_lake(
    uri: str | os.PathLike[str],
    *,
    storage_options: dict[str, Any] | None = None,
    options: LakeOptions | None = None,
    wal: str | os.PathLike[str] | None = None,
    read_only: bool = False,
    take_over: bool = False,
) -> Lake:
    """Open the lake at ``uri`` (a local folder or object storage), creating it if missing.

    Parameters
    ----------
    uri
        A local path or ``file://`` URL, or ``s3://bucket/prefix`` (the lake's
        Parquet files and manifests on object storage; ``docs/object-storage.md``).
    storage_options
        Passed through to fsspec (for S3, s3fs's ``key``, ``secret``,
        ``endpoint_url``, ``client_kwargs``).
    options
        `LakeOptions` (flush thresholds, verification, ...).
    wal
        Object storage only: the local folder for the write-ahead log, the
        locks and the file cache. A writer needs one.
    read_only
        Object storage only: read with nothing but the bucket (no WAL); every
        write, `query` included, is refused with `ReadOnlyError`.
    take_over
        Object storage only: become the lake's writer although another WAL
        folder was (that writer's unflushed rows stay in its folder).

    Examples
    --------
    >>> import steme_lake as sl, tempfile
    >>> lake = sl.open(tempfile.mkdtemp())
    >>> lake.status().last_seq
    0
    >>> lake.close()
    """
    return Lake(
        uri,
        storage_options=storage_options,
        options=options,
        wal=wal,
        read_only=read_only,
        take_over=take_over,
    )


def overlay(tables: Tables, pending: Sequence[rows.PendingRow]) -> Tables:
    """The lake's tables plus not-yet-committed rows that carry their own times."""
    extra: dict[RecordKind, list[Any]] = {}
    for row in pending:
        if row.at is None or row.kind is RecordKind.AUDIT:
            continue
        extra.setdefault(row.kind, []).append((row, row.at, row.id_at(row.at), []))

    def add(kind: RecordKind, frame: pl.LazyFrame) -> pl.LazyFrame:
        if kind not in extra:
            return frame
        table = rows.frame_table(extra[kind], seq=0)
        more = pl.from_arrow(table)
        assert isinstance(more, pl.DataFrame)
        return pl.concat([frame, more.lazy()], how="vertical")

    return Tables(
        assertions=add(RecordKind.ASSERTION, tables.assertions),
        votes=add(RecordKind.VOTE, tables.votes),
        lifecycle=add(RecordKind.LIFECYCLE, tables.lifecycle),
        supersessions=add(RecordKind.SUPERSESSION, tables.supersessions),
        constraints=add(RecordKind.CONSTRAINT, tables.constraints),
        confirmations=add(RecordKind.CONFIRMATION, tables.confirmations),
        trust=add(RecordKind.TRUST, tables.trust),
    )
