"""The two repairs, both explicit and logged, neither deleting data.

- `rebuild_manifest`: a new manifest version from the Parquet files on disk
  and the WAL, published above every existing version (the old ones stay).
- `truncate_wal`: cut the last segment at a damaged frame; the cut bytes are
  first saved beside the log, and what they held is reported.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from steme_lake._exceptions import StemeLakeError, ValidationError
from steme_lake._utils.locks import ProcessFileLock
from steme_lake._utils.timeparse import now_us
from steme_lake.doctor._examine import WAL_DIR, DiskFile, Findings
from steme_lake.doctor._report import ranges
from steme_lake.storage import manifest as manifests
from steme_lake.storage.manifest import Manifest
from steme_lake.wal import format as fmt

__all__ = ["rebuild_manifest", "truncate_wal"]

log = logging.getLogger("steme_lake.doctor")


def _prefix(seqs: set[int]) -> int:
    """The largest F with 1..F all in ``seqs``."""
    top = 0
    while top + 1 in seqs:
        top += 1
    return top


def _choose(files: list[DiskFile], listed: set[str]) -> list[DiskFile]:
    """Healthy files, at most one holder of each sequence per (table, day): those
    the last good manifest listed first, then newer versions (a compaction's output
    before the files it merged), so no row is shown twice."""
    healthy = [d for d in files if d.entry is not None and d.error is None]
    healthy.sort(key=lambda d: (d.rel not in listed, -d.version, d.rel))
    taken: dict[tuple[str, str], set[int]] = {}
    chosen = []
    for disk in healthy:
        assert disk.entry is not None
        seqs = taken.setdefault((disk.entry.table, disk.entry.date), set())
        if seqs & disk.seqs:
            continue
        seqs |= disk.seqs
        chosen.append(disk)
    return chosen


def rebuild_manifest(f: Findings) -> tuple[Manifest, list[int]]:
    """Publish a manifest built from the files and the WAL; it and the sequences
    found nowhere (lost before the repair, written down in the manifest)."""
    listed = {e.path for e in (f.good or Manifest()).files}
    chosen = _choose(f.files, listed)
    wal_first = f.wal.first
    everything = {s for d in chosen for s in d.seqs}
    top = max(everything, default=0)
    # With a WAL, flushed_seq must reach its first frame - 1 (it replays the rest);
    # without one, the files are all there is.
    floor = -1 if wal_first is None else wal_first - 1
    flushed = top if wal_first is None else max(_prefix(everything), floor)
    while True:
        # Only files wholly at or below flushed_seq can be listed; leaving one out
        # may open a gap below it, which a lower flushed_seq leaves to the WAL.
        kept = [d for d in chosen if d.entry is not None and d.entry.max_seq <= flushed]
        seqs = {s for d in kept for s in d.seqs}
        lower = max(_prefix(seqs), floor)
        if wal_first is None or lower >= flushed:
            break
        flushed = lower
    lost = sorted(set(range(1, flushed + 1)) - seqs)
    last = max(top, f.wal.last)
    lost_after = sorted(set(range(flushed + 1, last + 1)) - set(f.wal.frames))
    entries = tuple(d.entry for d in kept if d.entry is not None)
    times = [e.max_time for e in entries] + [
        t for s, (_, _, t) in f.wal.frames.items() if s <= flushed
    ]
    with ProcessFileLock(f.fs.root / "flush.lock").hold(wait=True):
        latest = manifests.latest_version(f.fs)
        manifest = Manifest(
            version=latest + 1,
            flushed_seq=flushed,
            flushed_time=max(times, default=0),
            created_at=now_us(),
            files=entries,
            lost=tuple(ranges(lost)),
        )
        manifests.publish(f.fs, manifest)
        manifests.published(f.fs, manifest)
    log.warning(
        "steme doctor: published manifest version %d (%d files, flushed_seq %d) built from "
        "the files on disk; lost sequences: %s",
        manifest.version,
        len(entries),
        flushed,
        ranges(lost + lost_after) or "none",
    )
    return manifest, lost + lost_after


@dataclass(frozen=True, slots=True)
class Truncation:
    segment: str
    offset: int
    dropped_bytes: int
    saved_to: str
    frame: dict[str, object] | None  # what the first dropped frame's header says


def truncate_wal(fs_root: Path, offset: int, segment: str | None = None) -> Truncation:
    """Cut a segment (the last one unless named) at ``offset``: the bytes from there
    on are saved to ``wal/dropped-<segment>-<offset>-<time>.bin`` (fsync'd) first."""
    folder = fs_root / WAL_DIR
    names = sorted(e.name for e in folder.iterdir() if fmt.segment_first_seq(e.name) is not None)
    if not names:
        raise ValidationError(f"{folder} holds no WAL segment")
    name = segment or names[-1]
    if name not in names:
        raise ValidationError(f"no WAL segment {name!r} in {folder}; they are: {names[-3:]}")
    if name != names[-1]:
        raise ValidationError(
            f"{name} is not the last segment: cutting it would lose every later segment; "
            "restore it from a backup instead"
        )
    path = folder / name
    with ProcessFileLock(folder / "LOCK").hold(wait=True):
        data = path.read_bytes()
        if not fmt.SEGMENT_HEADER_SIZE <= offset < len(data):
            raise ValidationError(
                f"--truncate-at {offset} is outside {name}'s frames "
                f"({fmt.SEGMENT_HEADER_SIZE}..{len(data) - 1})"
            )
        header = fmt.parse_frame_header(data[offset : offset + fmt.FRAME_HEADER_SIZE])
        frame: dict[str, object] | None = None
        if header is not None:
            frame = {
                "seq": header.seq,
                "kind": header.kind,
                "rows": header.rows,
                "commit_time": header.commit_time,
            }
        saved = folder / f"dropped-{path.stem}-{offset}-{now_us()}.bin"
        fd = os.open(saved, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, data[offset:])
            os.fsync(fd)
        finally:
            os.close(fd)
        fd = os.open(path, os.O_RDWR)
        try:
            os.ftruncate(fd, offset)
            os.fsync(fd)
        finally:
            os.close(fd)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        report = {
            "detected_at_us": now_us(),
            "segment": str(path),
            "offset": offset,
            "dropped_bytes": len(data) - offset,
            "reason": f"cut by steme doctor --truncate-at (saved to {saved.name})",
            "frame": frame,
        }
        (folder / "last_recovery.json").write_text(json.dumps(report, indent=2))
    log.warning(
        "steme doctor: cut %s at byte %d (%d bytes, first frame %s), saved to %s",
        name,
        offset,
        len(data) - offset,
        frame,
        saved.name,
    )
    return Truncation(str(path), offset, len(data) - offset, str(saved), frame)


def check_repairable(f: Findings) -> None:
    """A repair needs a readable WAL: a damaged frame is cut first (--truncate-at)."""
    if any(p.severity == "error" and WAL_DIR in p.path and "@" in p.path for p in f.problems):
        raise StemeLakeError(
            "the WAL is damaged: cut it first with `steme doctor --truncate-at OFFSET` "
            "(see the error for the offset), then repair the manifest"
        )
