"""Writing Parquet: flush partitions, compaction and vacuum.

Files are partitioned by the UTC day of ``recorded_at``:
``tables/<table>/date=YYYY-MM-DD/<min_seq>-<max_seq>-v<version>.parquet``.
Names hold only the fixed table name, a date and numbers: never user text.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import blake3
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from steme_lake._utils.arrays import sorted_unique
from steme_lake._utils.timeparse import now_us
from steme_lake.model.schema import RecordKind, spec
from steme_lake.storage.fs import LakeFS
from steme_lake.storage.keyindex import (
    DATA_GROUP,
    INDEX_DIR,
    INDEXED,
    data_path,
    index_files,
    index_good,
)
from steme_lake.storage.manifest import MANIFEST_DIR, FileEntry, Manifest, manifest_name
from steme_lake.storage.manifest import versions as manifest_versions
from steme_lake.storage.tables import FileVerifier

__all__ = [
    "KEEP_MANIFESTS",
    "REMOVED_MEMORY",
    "TABLES_DIR",
    "clean_temporaries",
    "compact",
    "still_on_disk",
    "vacuum",
    "vacuum_manifests",
    "write_partitions",
]

TABLES_DIR = "tables"
UPLOAD_BATCH_BYTES = 64 << 20  # object storage: files encoded before one concurrent upload
LOCAL_BATCH_DAYS = 64  # a local disk: days encoded before one `LakeFS.write_many`
LOCAL_BATCH_BYTES = 256 << 20  # ... or bytes, whichever comes first (memory held)
_DAY_US = 86_400_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _day_name(day: int) -> str:
    return (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%d")


def _parquet_bytes(table: pa.Table, row_group_size: int | None = None) -> bytes:
    sink = io.BytesIO()
    pq.write_table(
        table,
        sink,
        row_group_size=row_group_size,
        compression="zstd",
        write_page_checksum=True,  # lets any Parquet reader detect a damaged page
        write_statistics=True,
    )
    return sink.getvalue()


def _write_file(fs: LakeFS, kind: RecordKind, day: str, table: pa.Table, version: int) -> FileEntry:
    entry, files = _encode_file(kind, day, table, version)
    fs.write_many(files)
    return entry


def _encode_file(
    kind: RecordKind, day: str, table: pa.Table, version: int
) -> tuple[FileEntry, dict[str, bytes]]:
    """One day's rows as a Parquet file's manifest entry, and the bytes of it and
    of its key indexes (`keyindex`) by path, the data file first."""
    seqs = table["seq"]
    times = table["recorded_at"].cast(pa.int64())
    min_seq, max_seq = int(pc.min(seqs).as_py()), int(pc.max(seqs).as_py())
    rel = (
        f"{TABLES_DIR}/{kind.table}/date={day}/{min_seq:020d}-{max_seq:020d}-v{version:08d}.parquet"
    )
    indexed = kind in INDEXED
    data = _parquet_bytes(table, DATA_GROUP if indexed else None)
    entry = FileEntry(
        path=rel,
        table=kind.table,
        date=day,
        rows=table.num_rows,
        bytes=len(data),
        blake3=str(blake3.blake3(data).hexdigest()),
        min_seq=min_seq,
        max_seq=max_seq,
        min_time=int(pc.min(times).as_py()),
        max_time=int(pc.max(times).as_py()),
    )
    files = {rel: data}
    if indexed:
        files.update(index_files(kind, rel, table, entry.blake3))
    return entry, files


def write_partitions(
    fs: LakeFS,
    kind: RecordKind,
    table: pa.Table,
    version: int,
    progress: Callable[[int], None] | None = None,
) -> list[FileEntry]:
    """Write one table's rows as one file per UTC day; return their entries.
    ``progress`` is told the rows of each file once it is written."""
    if table.num_rows == 0:
        return []
    table = table.cast(spec(kind).schema)
    days = table["recorded_at"].cast(pa.int64()).to_numpy() // _DAY_US
    entries: list[FileEntry] = []
    pending: list[tuple[FileEntry, dict[str, bytes]]] = []

    def send() -> None:
        # Object storage takes a batch of files as concurrent PUTs; a local disk as
        # concurrent writes and fsyncs, each folder fsync'd once (`LakeFS.write_many`).
        fs.write_many({path: data for _, files in pending for path, data in files.items()})
        for entry, _ in pending:
            entries.append(entry)
            if progress is not None:
                progress(entry.rows)
        pending.clear()

    for day in sorted_unique(days):
        part = table.filter(pa.array(days == day))
        pending.append(_encode_file(kind, _day_name(int(day)), part, version))
        held = sum(len(d) for _, files in pending for d in files.values())
        if fs.remote:
            if held >= UPLOAD_BATCH_BYTES:
                send()
        elif len(pending) >= LOCAL_BATCH_DAYS or held >= LOCAL_BATCH_BYTES:
            send()
    if pending:
        send()
    return entries


def compact(
    fs: LakeFS, manifest: Manifest, verifier: FileVerifier, *, min_files: int
) -> Manifest | None:
    """Merge each (table, day) with at least ``min_files`` files into one file."""
    groups: dict[tuple[str, str], list[FileEntry]] = defaultdict(list)
    for entry in manifest.files:
        groups[(entry.table, entry.date)].append(entry)
    version = manifest.version + 1
    merged: list[FileEntry] = []
    dropped: list[FileEntry] = []
    for (table_name, day), entries in sorted(groups.items()):
        if len(entries) < min_files:
            continue
        kind = RecordKind.from_table(table_name)
        tables = []
        for entry in entries:
            verifier.check(entry)
            tables.append(pq.read_table(fs.path(entry.path), schema=spec(kind).schema))
        combined = pa.concat_tables(tables)
        combined = combined.take(pc.sort_indices(combined["seq"]))
        merged.append(_write_file(fs, kind, day, combined, version))
        dropped.extend(entries)
    if not merged:
        return None
    gone = {e.path for e in dropped}
    stamp = now_us()
    return manifest.next(
        files=tuple(e for e in manifest.files if e.path not in gone) + tuple(merged),
        removed=still_on_disk(fs, manifest.removed, version)
        + tuple((p, version, stamp) for p in sorted(gone)),
    )


def index_missing(fs: LakeFS, manifest: Manifest, verifier: FileVerifier) -> list[str]:
    """Write the key indexes that live files lack (files written before key
    indexes existed, an index lost, or one made for another file); return the
    paths written. (An index whose pages are damaged is found when read, and
    its file scanned; the doctor does not look at indexes.)

    A data file is not rewritten: its row groups stay as they were, so a lookup
    in an old file may read a bigger row group than in a new one.
    """
    written: list[str] = []
    for entry in manifest.files:
        kind = RecordKind.from_table(entry.table)
        columns = INDEXED.get(kind, ())
        if not columns or all(index_good(fs, entry, c) for c in columns):
            continue
        verifier.check(entry)
        table = pq.read_table(fs.path(entry.path), schema=spec(kind).schema)
        files = index_files(kind, entry.path, table, entry.blake3)
        fs.write_many(files)
        written.extend(files)
    return written


def vacuum(fs: LakeFS, manifest: Manifest, *, retain_us: int) -> list[str]:
    """Delete files no manifest needs any more, once older than ``retain_us``.

    Readers that built a query on an older manifest keep working for the
    retention period; orphans of a crashed flush are removed the same way.
    """
    cutoff = now_us() - retain_us
    live = {e.path for e in manifest.files}
    removed_at = {path: when for path, _v, when in manifest.removed}
    deleted: list[str] = []
    for rel, modified in fs.walk(TABLES_DIR):
        if rel in live:
            continue
        if removed_at.get(rel, modified) <= cutoff:
            fs.remove(rel)
            deleted.append(rel)
    # a key index goes with its data file (and one of no data file, with age)
    for rel, modified in fs.walk(INDEX_DIR):
        data = data_path(rel)
        if data in live:
            continue
        if removed_at.get(data or "", modified) <= cutoff:
            fs.remove(rel)
            deleted.append(rel)
    return deleted


REMOVED_MEMORY = 64  # versions for which a deleted file's entry is kept (lineage)


def still_on_disk(
    fs: LakeFS, removed: tuple[tuple[str, int, int], ...], version: int
) -> tuple[Any, ...]:
    """The ``removed`` entries worth keeping in the next version: files vacuum has
    not deleted yet, and those dropped within the last `REMOVED_MEMORY` versions
    (a process catching up learns from them that a compaction's output holds
    rows it read already). Older ones are forgotten, so a manifest does not grow
    with the lake's age."""
    return tuple(r for r in removed if version - r[1] < REMOVED_MEMORY or fs.exists(r[0]))


KEEP_MANIFESTS = 10  # newest versions always kept: the fallback for a damaged newest


def vacuum_manifests(fs: LakeFS, newest: int, *, retain_us: int) -> list[str]:
    """Delete manifest versions older than the retention, keeping the newest
    `KEEP_MANIFESTS` whatever their age (each version is a whole file list, so
    the newest good one is all a reader needs; the others are for falling back)."""
    cutoff = now_us() - retain_us
    deleted = []
    for version in manifest_versions(fs)[:-KEEP_MANIFESTS]:
        if version >= newest:
            break
        rel = f"{MANIFEST_DIR}/{manifest_name(version)}"
        if fs.mtime_us(rel) <= cutoff:
            fs.remove(rel)
            deleted.append(rel)
    return deleted


def clean_temporaries(fs: LakeFS) -> list[str]:
    """Delete the temporary files of flushes, compactions and manifest publications
    that a crash interrupted. Call it holding the flush lock: every writer of such
    files holds it, so none of them can be in use."""
    if fs.remote:  # an object store's writes are whole: it keeps no temporaries
        return []
    deleted = []
    for folder in (fs.path(MANIFEST_DIR), fs.path(TABLES_DIR), fs.path(INDEX_DIR)):
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob(".tmp-*")):
            if path.is_file():
                path.unlink(missing_ok=True)
                deleted.append(path.relative_to(fs.root).as_posix())
    return deleted
