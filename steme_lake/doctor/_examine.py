"""Rebuild what the lake holds from the WAL and the Parquet files, without the
manifest, and compare it with what the manifest says.

Sequence numbers are the thread: the log is gapless, every frame holds rows,
and every row carries its frame's number. So the lake is whole when every
number up to ``flushed_seq`` is in a file the manifest lists (or written down
as lost by an earlier repair) and every number after it is in the WAL.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import blake3
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from steme_lake._exceptions import StemeLakeError, StorageCorruptError, WalCorruptError
from steme_lake.doctor._report import DoctorReport, Problem, show_ranges
from steme_lake.model.schema import RecordKind
from steme_lake.storage import manifest as manifests
from steme_lake.storage.fs import LakeFS
from steme_lake.storage.keyindex import INDEX_DIR, INDEXED, index_good
from steme_lake.storage.manifest import FileEntry, Manifest
from steme_lake.storage.writer import TABLES_DIR
from steme_lake.wal import format as fmt
from steme_lake.wal.scan import scan_segment

__all__ = ["DiskFile", "Findings", "examine"]

WAL_DIR = "wal"
_NAMES = {int(kind): kind.table for kind in RecordKind}


@dataclass(frozen=True, slots=True)
class DiskFile:
    """A Parquet file found under ``tables/``, read on its own."""

    entry: FileEntry | None  # as a manifest would list it; None if unreadable
    rel: str
    version: int
    seqs: frozenset[int]
    error: str | None = None


@dataclass(slots=True)
class WalContents:
    frames: dict[int, tuple[int, int, int]] = field(default_factory=dict)  # seq: kind, rows, t
    problems: list[Problem] = field(default_factory=list)

    @property
    def first(self) -> int | None:
        return min(self.frames, default=None)

    @property
    def last(self) -> int:
        return max(self.frames, default=0)


@dataclass(slots=True)
class Findings:
    """Everything read from disk, for the report and for a repair."""

    fs: LakeFS
    good: Manifest | None
    latest: int
    versions: int
    files: list[DiskFile]
    wal: WalContents
    problems: list[Problem]


def _disk_files(fs: LakeFS) -> list[DiskFile]:
    root = fs.path(TABLES_DIR)
    found: list[DiskFile] = []
    if not root.is_dir():
        return found
    for path in sorted(root.rglob("*.parquet")):
        if path.name.startswith(".tmp-"):
            continue
        rel = path.relative_to(fs.root).as_posix()
        found.append(_read_file(path, rel))
    return found


def _read_file(path: Path, rel: str) -> DiskFile:
    named = manifests.FILE_NAME.match(rel)
    if named is None:
        return DiskFile(None, rel, -1, frozenset(), "not a lake file name")
    try:
        data = path.read_bytes()
        # One thread: a pyarrow pool still running at exit can abort the process.
        table = pq.read_table(pa.py_buffer(data), columns=["seq", "recorded_at"], use_threads=False)
    except (OSError, pa.ArrowException) as exc:
        return DiskFile(None, rel, int(named["version"]), frozenset(), f"unreadable: {exc}")
    if table.num_rows == 0:
        return DiskFile(None, rel, int(named["version"]), frozenset(), "holds no rows")
    times = table["recorded_at"].cast(pa.int64())
    seqs = pc.unique(table["seq"]).to_pylist()
    entry = FileEntry(
        path=rel,
        table=named["table"],
        date=named["date"],
        rows=table.num_rows,
        bytes=len(data),
        blake3=str(blake3.blake3(data).hexdigest()),
        min_seq=int(min(seqs)),
        max_seq=int(max(seqs)),
        min_time=int(pc.min(times).as_py()),
        max_time=int(pc.max(times).as_py()),
    )
    problems = entry.problems()
    error = "; ".join(problems) if problems else None
    return DiskFile(entry, rel, int(named["version"]), frozenset(seqs), error)


def _wal(fs: LakeFS) -> WalContents:
    out = WalContents()
    folder = fs.path(WAL_DIR)
    if not folder.is_dir():
        return out
    segments = sorted(
        (first, folder / name)
        for name in (entry.name for entry in folder.iterdir())
        if (first := fmt.segment_first_seq(name)) is not None
    )
    next_seq, last_time = 0, 0
    for index, (first, path) in enumerate(segments):
        final = index == len(segments) - 1
        if next_seq and first != next_seq:
            out.problems.append(
                Problem(
                    "error",
                    str(path),
                    f"starts at sequence {first} but the segment before ends before {next_seq}",
                    "restore the missing segment from a backup; the frames in between are lost",
                )
            )
        fd = os.open(path, os.O_RDONLY)
        try:
            scan = scan_segment(
                fd,
                path=str(path),
                first_seq=first,
                start_offset=0,
                next_seq=first,
                last_time=last_time,
                final=final,
                locked=False,
            )
        except WalCorruptError as exc:
            fix = (
                f"copy {path.name} aside, then `steme doctor --truncate-at {exc.offset}` "
                "drops the damaged frame and what follows it (saved beside the log)"
                if final
                else "restore the segment from a backup: frames after the damage are unreadable"
            )
            out.problems.append(Problem("error", f"{path}@{exc.offset}", str(exc), fix))
            break
        finally:
            os.close(fd)
        for frame in scan.frames:
            out.frames[frame.seq] = (frame.kind, frame.table.num_rows, frame.commit_time)
        if scan.torn is not None:
            out.problems.append(
                Problem(
                    "warning",
                    f"{path}@{scan.torn.offset}",
                    f"{scan.torn.dropped_bytes} bytes of crash residue ({scan.torn.reason}); "
                    "never acknowledged",
                    "nothing to do: the next process to write drops it",
                )
            )
        next_seq, last_time = scan.next_seq, scan.last_time
    return out


def _manifest_problems(fs: LakeFS) -> tuple[Manifest | None, int, int, list[Problem]]:
    versions = manifests.versions(fs)
    problems: list[Problem] = []
    good: Manifest | None = None
    for version in reversed(versions):
        try:
            manifest = manifests.load_version(fs, version)
        except StorageCorruptError as exc:
            newer = good is None
            problems.append(
                Problem(
                    "error" if newer else "warning",
                    exc.path,
                    str(exc).removesuffix(f" (file {exc.path})"),
                    "skipped for the previous good version when the WAL still covers it; "
                    "otherwise `steme doctor --repair` writes a good one"
                    if newer
                    else "nothing to do: an older version, deleted by vacuum in time",
                )
            )
            continue
        good = good or manifest
    return good, max(versions, default=0), len(versions), problems


def examine(fs: LakeFS) -> Findings:
    """Read the manifests, the WAL and every Parquet file; find what disagrees."""
    good, latest, count, problems = _manifest_problems(fs)
    files = _disk_files(fs)
    wal = _wal(fs)
    findings = Findings(fs, good, latest, count, files, wal, problems + wal.problems)
    _compare(findings)
    return findings


def _compare(f: Findings) -> None:
    manifest = f.good or Manifest()
    on_disk = {d.rel: d for d in f.files}
    listed_seqs: set[int] = set()
    for entry in manifest.files:
        disk = on_disk.get(entry.path)
        where = str(f.fs.path(entry.path))
        if disk is None:
            f.problems.append(
                Problem(
                    "error",
                    where,
                    "listed in the manifest but missing",
                    "restore it from a backup; `steme doctor --repair` lists the files that remain",
                )
            )
            continue
        if disk.entry is None or disk.entry.blake3 != entry.blake3:
            f.problems.append(
                Problem(
                    "error",
                    where,
                    f"its bytes differ from the manifest's checksum"
                    f"{f' ({disk.error})' if disk.error else ''}",
                    "restore it from a backup (the manifest is right about it)",
                )
            )
            continue
        listed_seqs |= disk.seqs
    flushed = manifest.flushed_seq
    lost = {s for a, b in manifest.lost for s in range(a, b + 1)}
    wal_seqs = set(f.wal.frames)
    removed = {path for path, _, _ in manifest.removed}
    unlisted = [d for d in f.files if d.rel not in {e.path for e in manifest.files}]
    in_unlisted = set().union(*(d.seqs for d in unlisted if d.entry is not None))
    last = max(flushed, f.wal.last)

    hidden = sorted(set(range(1, flushed + 1)) - listed_seqs - lost)
    if hidden:
        found = "in unlisted files" if set(hidden) <= in_unlisted | wal_seqs else "nowhere"
        f.problems.append(
            Problem(
                "error",
                str(f.fs.path(manifests.MANIFEST_DIR)),
                f"sequences {show_ranges(hidden)} are at or below flushed_seq {flushed} but in no "
                f"file the manifest lists (found {found}): the lake does not show those rows",
                "`steme doctor --repair` writes a manifest that lists the files holding them",
            )
        )
    doubled = sorted(s for s in listed_seqs if s > flushed)
    if doubled:
        f.problems.append(
            Problem(
                "error",
                str(f.fs.path(manifests.MANIFEST_DIR)),
                f"sequences {show_ranges(doubled)} are above flushed_seq {flushed} but in listed "
                "files: their rows show twice (from the files and again from the WAL)",
                "`steme doctor --repair` writes a manifest whose flushed_seq matches its files",
            )
        )
    missing = sorted(set(range(flushed + 1, last + 1)) - wal_seqs)
    if missing:
        where = "in unlisted files" if set(missing) <= in_unlisted else "nowhere"
        f.problems.append(
            Problem(
                "error",
                str(f.fs.path(WAL_DIR)),
                f"sequences {show_ranges(missing)} are above flushed_seq {flushed} but not in the "
                f"WAL (found {where})",
                "`steme doctor --repair` lists the files that hold them"
                if where != "nowhere"
                else "restore the WAL segments from a backup",
            )
        )
    covered = listed_seqs | {s for s in wal_seqs if s > flushed} | lost
    for disk in unlisted:
        where = str(f.fs.path(disk.rel))
        if disk.entry is None:
            f.problems.append(
                Problem(
                    "warning",
                    where,
                    f"unreadable ({disk.error})",
                    "nothing reads it; move it aside",
                )
            )
        elif not disk.seqs <= covered:
            extra = sorted(disk.seqs - covered)
            f.problems.append(
                Problem(
                    "error",
                    where,
                    f"not in the manifest, and holds sequences {show_ranges(extra)} that the "
                    "lake does not show from anywhere else",
                    "`steme doctor --repair` writes a manifest that lists it",
                )
            )
        elif disk.rel not in removed:
            f.problems.append(
                Problem(
                    "info",
                    where,
                    "not in the manifest; its rows are shown from elsewhere",
                    "nothing to do: vacuum deletes it after the retention",
                )
            )
    # key indexes: derived data, so a missing one costs speed, not rows
    unindexed = [
        e.path
        for e in manifest.files
        if e.path in on_disk
        and not all(index_good(f.fs, e, c) for c in INDEXED.get(RecordKind.from_table(e.table), ()))
    ]
    if unindexed:
        f.problems.append(
            Problem(
                "info",
                str(f.fs.path(INDEX_DIR)),
                f"{len(unindexed)} file(s) lack a key index of theirs (written before key "
                f"indexes, or the index lost), such as {unindexed[0]}: impact scans them",
                "`steme flush --compact` (or `Lake.compact()`) writes them",
            )
        )


def report(f: Findings, repaired: tuple[str, ...] = ()) -> DoctorReport:
    manifest = f.good or Manifest()
    listed = {e.path for e in manifest.files}
    tables = {
        kind.table: {"listed_rows": 0, "unlisted_rows": 0, "wal_rows": 0} for kind in RecordKind
    }
    for disk in f.files:
        if disk.entry is not None and disk.entry.table in tables:
            key = "listed_rows" if disk.rel in listed else "unlisted_rows"
            tables[disk.entry.table][key] += disk.entry.rows
    for seq, (kind, rows, _) in f.wal.frames.items():
        if seq > manifest.flushed_seq and kind in _NAMES:
            tables[_NAMES[kind]]["wal_rows"] += rows
    order = {"error": 0, "warning": 1, "info": 2}
    return DoctorReport(
        path=str(f.fs.root),
        manifest_version=f.good.version if f.good is not None else None,
        manifest_versions=f.versions,
        flushed_seq=manifest.flushed_seq,
        wal_first_seq=f.wal.first,
        wal_last_seq=f.wal.last,
        tables=tables,
        problems=tuple(sorted(f.problems, key=lambda p: order[p.severity])),
        repaired=repaired,
    )


def open_fs(path: str | os.PathLike[str]) -> LakeFS:
    fs = LakeFS(path)
    if not (fs.root / "steme_lake.json").exists():
        raise StemeLakeError(f"{path} is not a steme_lake (no steme_lake.json)")
    return fs
