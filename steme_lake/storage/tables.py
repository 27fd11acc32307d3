"""Reading the lake: flushed Parquet files plus the unflushed WAL tail.

Nothing written is ever invisible: a table is the union of the manifest's
files and the tail frames above the manifest's flushed sequence number, taken
as one consistent snapshot.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from pathlib import Path

import blake3
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from steme_lake._exceptions import StorageCorruptError, StorageError
from steme_lake.model.schema import RecordKind, spec
from steme_lake.storage.fs import LakeFS
from steme_lake.storage.manifest import FileEntry, Manifest
from steme_lake.wal import WalFrame

__all__ = ["VERIFY_MODES", "FileVerifier", "TailBuffer", "empty_table", "scan_table"]

VERIFY_MODES = ("first_use", "open", "off")


def empty_table(kind: RecordKind) -> pa.Table:
    # Not `Schema.empty_table()`: it imports pandas (a quarter of a second of
    # every CLI command's start, for nothing).
    return pa.Table.from_batches([], schema=spec(kind).schema)


def _size(table: pa.Table) -> int:
    """Bytes a frame holds. ``nbytes`` walks every buffer to count only the
    referenced part (about 30 µs, on every commit); a small frame owns its
    buffers whole, so their total is exact and 30 times cheaper."""
    return int(table.get_total_buffer_size() if table.num_rows <= 16 else table.nbytes)


class TailBuffer:
    """Committed frames not yet covered by a flushed manifest, per table."""

    def __init__(self) -> None:
        self._frames: dict[RecordKind, list[WalFrame]] = defaultdict(list)
        self._cache: dict[RecordKind, pa.Table] = {}
        self._lock = threading.RLock()
        self.bytes = 0
        self.max_seq = 0
        self.max_time = 0

    def add(self, frames: list[WalFrame]) -> None:
        with self._lock:
            for frame in frames:
                try:
                    kind = RecordKind(frame.kind)
                except ValueError:
                    raise StorageError(
                        f"WAL frame {frame.seq} holds unknown record kind {frame.kind}; "
                        "it was written by a newer steme_lake: upgrade to read this lake"
                    ) from None
                self._frames[kind].append(frame)
                self._cache.pop(kind, None)
                self.bytes += _size(frame.table)
                self.max_seq = max(self.max_seq, frame.seq)
                self.max_time = max(self.max_time, frame.commit_time)

    def drop_through(self, seq: int) -> None:
        """Forget frames now covered by flushed files."""
        with self._lock:
            for kind, frames in self._frames.items():
                kept = [f for f in frames if f.seq > seq]
                if len(kept) != len(frames):
                    self._frames[kind] = kept
                    self._cache.pop(kind, None)
            self.bytes = sum(_size(f.table) for fs in self._frames.values() for f in fs)

    @property
    def empty(self) -> bool:
        return not any(self._frames.values())

    def table(self, kind: RecordKind) -> pa.Table:
        with self._lock:
            cached = self._cache.get(kind)
            if cached is None:
                frames = self._frames.get(kind) or []
                tables = [f.table for f in frames]
                cached = pa.concat_tables(tables) if tables else empty_table(kind)
                self._cache[kind] = cached
            return cached

    def snapshot(self) -> tuple[int, dict[RecordKind, pa.Table]]:
        """Every table of the tail at one moment, and the highest sequence number in it."""
        with self._lock:  # re-entrant: table() takes it again
            return self.max_seq, {kind: self.table(kind) for kind in list(self._frames)}

    def frames(self) -> list[WalFrame]:
        with self._lock:
            out = [f for fs in self._frames.values() for f in fs]
        return sorted(out, key=lambda f: f.seq)


class FileVerifier:
    """Checks each Parquet file's BLAKE3 against the manifest once per process."""

    def __init__(self, fs: LakeFS, mode: str = "first_use") -> None:
        if mode not in VERIFY_MODES:
            raise ValueError(f"verify must be one of {VERIFY_MODES}, got {mode!r}")
        self.fs, self.mode = fs, mode
        self._verified: set[str] = set()
        self._lock = threading.Lock()

    def check(self, entry: FileEntry, *, force: bool = False) -> None:
        if self.mode == "off" and not force:
            return
        with self._lock:
            if entry.path in self._verified and not force:
                return
        where = self.fs.where(entry.path)
        found = self._hash(entry)
        if found != (entry.bytes, entry.blake3) and self.fs.remote:
            # A damaged local copy of a remote file: fetched again, and judged on that.
            self.fs.drop_cached(entry.path)
            found = self._hash(entry)
        if found != (entry.bytes, entry.blake3):
            raise StorageCorruptError(
                f"checksum mismatch: {found[0]} bytes on disk, the manifest recorded "
                f"{entry.bytes} bytes with a different BLAKE3; restore the file from a "
                "backup, or re-create the lake from its event log",
                path=where,
            )
        _check_columns(entry, self.fs.path(entry.path), where)
        with self._lock:
            self._verified.add(entry.path)

    def _hash(self, entry: FileEntry) -> tuple[int, str]:
        """A file's size and BLAKE3, hashed where it lies: mapped, not read into
        one buffer (copying a file into memory took twice as long as hashing
        it), on every core (a question waits for this: the first impact of a
        process checks dozens of audit files). 307 MB of audit files: 320 ms
        read and hashed on one core, 110 ms so (1M benchmark lake)."""
        try:
            try:
                return _hash_file(self.fs.path(entry.path))
            except FileNotFoundError:
                if not self.fs.remote:
                    raise
                self.fs.drop_cached(entry.path)  # a local copy deleted under this process
                return _hash_file(self.fs.path(entry.path))
        except FileNotFoundError:
            raise StorageCorruptError(
                "a file listed in the manifest is missing", path=self.fs.where(entry.path)
            ) from None


def _hash_file(path: Path) -> tuple[int, str]:
    size = path.stat().st_size
    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
    hasher.update_mmap(path)
    return size, str(hasher.hexdigest())


def _check_columns(entry: FileEntry, file: Path, path: str) -> None:
    """The file holds its table's columns (read from its footer): a file listed
    under the wrong table is named, not left to fail deep inside a query."""
    try:
        names = pq.read_schema(file).names
    except (OSError, pa.ArrowException) as exc:
        raise StorageCorruptError(f"not a readable Parquet file ({exc})", path=path) from exc
    expected = spec(RecordKind.from_table(entry.table)).schema.names
    if names != expected:
        raise StorageCorruptError(
            f"the manifest lists it under table {entry.table!r}, but its columns are "
            f"{names[:6]}...; `steme doctor` shows what the lake holds",
            path=path,
        )


def scan_table(
    fs: LakeFS,
    manifest: Manifest,
    tail: TailBuffer | pa.Table,
    kind: RecordKind,
    verifier: FileVerifier,
    *,
    after_seq: int | None = None,
) -> pl.LazyFrame:
    """One table of the lake as a lazy frame: flushed files, then the tail.
    ``after_seq``: only the rows of higher sequence numbers (and only the files
    that can hold them are opened)."""
    entries = manifest.files_of(kind.table)
    if after_seq is not None:
        entries = [e for e in entries if e.max_seq > after_seq]
        if isinstance(tail, TailBuffer):
            tail = tail.table(kind)
        tail = tail.filter(pc.greater(tail["seq"], after_seq)) if tail.num_rows else tail
    if fs.remote:  # downloads what this process has not read yet, concurrently
        fs.fetch([e.path for e in entries])
    for entry in entries:
        verifier.check(entry)
    parts: list[pl.LazyFrame] = []
    if entries:
        parts.append(
            pl.scan_parquet(
                [str(fs.path(e.path)) for e in entries],
                hive_partitioning=False,
                schema=_polars_schema(kind),
            )
        )
    tail_table = tail.table(kind) if isinstance(tail, TailBuffer) else tail
    if tail_table.num_rows:
        parts.append(pl.from_arrow(tail_table).lazy())  # type: ignore[union-attr]
    if not parts:
        return pl.from_arrow(empty_table(kind)).lazy()  # type: ignore[union-attr]
    out = parts[0] if len(parts) == 1 else pl.concat(parts, how="vertical")
    return out if after_seq is None else out.filter(pl.col("seq") > after_seq)


_SCHEMAS: dict[RecordKind, pl.Schema] = {}


def _polars_schema(kind: RecordKind) -> pl.Schema:
    if kind not in _SCHEMAS:
        frame = pl.from_arrow(empty_table(kind))
        assert isinstance(frame, pl.DataFrame)
        _SCHEMAS[kind] = frame.schema
    return _SCHEMAS[kind]
