"""Checkpoints of the current-state index: open a big lake without reading it.

The state index (`_index.py`) answers point questions from memory, but it is
built by reading every table the questions read: 8 s at 10M assertions, during
which questions scan (2 s each at 10M), and a CLI command waits for it at exit.
A checkpoint is that index written down: each table's sorted runs as
uncompressed Arrow IPC files, with their key hashes as a column (and the
assertions' runs with the orders impact's lookups search: `_lookups.py`). Opening maps
them (`pyarrow.memory_map`, zero-copy into Polars: milliseconds, whatever
their size; pages are read as questions touch them), then reads from the lake
only the rows recorded after the checkpoint (the files that hold them, and the
WAL), as the index is always fed.

``state/<seq>-<pid>-<nonce>/`` holds one: ``<table>-<run>.arrow`` files and
``checkpoint.json`` (written last: a folder without it is not a checkpoint),
which names the highest sequence number held, the lake's writer, each file's
rows, bytes and BLAKE3, the frames' columns and the key hash of a few rows.

A checkpoint is derived data: the Parquet files are the truth. One is not used
(the index is built from the files, as without one) when it is for another
layout (the columns differ), another writer, more rows than the lake has, or
when a key hash read back differs from the one Polars computes now (another
Polars version hashes differently: looking up keys would find nothing). Its
files' BLAKE3 are checked right after it is used, in the index's thread,
while no question is being answered (at 10M, 4.4 GB: seconds that would
otherwise delay every first answer); a mismatch drops the index and builds
it again from the files, and is logged.
Only local lakes keep checkpoints; a lake on object storage builds its index.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3
import numpy as np
import polars as pl
import pyarrow as pa

from steme_lake._utils.durable import fsync_dir, makedirs_durable
from steme_lake.model.schema import RecordKind
from steme_lake.query._index import HASH, StateIndex

__all__ = [
    "CHECKPOINT_ROWS",
    "STATE_DIR",
    "Checkpoint",
    "clear",
    "load",
    "save",
    "stale",
]

log = logging.getLogger("steme_lake")

STATE_DIR = "state"
FORMAT = "steme_lake.state/1"
META = "checkpoint.json"
# An index holding fewer rows builds in well under a second: no checkpoint.
CHECKPOINT_ROWS = 100_000
# A checkpoint is written again once the rows recorded after it are this share
# of the index (each open reads those rows back from the lake's files).
STALE_SHARE = 0.1
SAMPLE = 4  # rows of each run at each end whose key hash is checked at load
ABANDONED_S = 3600  # a temporary folder this old was left by a crash
VERIFY_CHUNK = 64 << 20  # bytes hashed between two looks for questions being answered


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One checkpoint read back: where it is, what it holds, what to check."""

    path: Path
    seq: int
    rows: int
    files: tuple[tuple[str, int, str], ...]  # (name, bytes, BLAKE3)

    def verify(self, between: Callable[[], bool] = lambda: True) -> str | None:
        """What is wrong with its files (size or BLAKE3), or None. ``between``
        is called before each `VERIFY_CHUNK` bytes (it may wait while questions
        are answered); False stops the check (None: nothing found)."""
        for name, size, digest in self.files:
            path = self.path / name
            try:
                if path.stat().st_size != size:
                    return f"{path}: {path.stat().st_size} bytes, {size} expected"
                hashed = _blake3(path, between)
                if hashed is None:
                    return None
                if hashed != digest:
                    return f"{path}: BLAKE3 differs from {META}"
            except (OSError, ValueError) as exc:
                return f"{path}: {exc}"
        return None


def _blake3(path: Path, between: Callable[[], bool] = lambda: True) -> str | None:
    """A file's BLAKE3, read `VERIFY_CHUNK` bytes at a time into one buffer (not
    mapped: 4.4 GB of pages mapped into this process counted as its memory),
    on one core (the other answers questions); ``between`` is called before
    each chunk, and False stops (None)."""
    hasher = blake3.blake3()
    chunk = bytearray(VERIFY_CHUNK)
    view = memoryview(chunk)
    with path.open("rb", buffering=0) as f:
        while True:
            if not between():
                return None
            n = f.readinto(chunk)
            if not n:
                return hasher.hexdigest()
            hasher.update(view[:n])


def _schemas() -> dict[str, list[list[str]]]:
    return {
        kind.table: [[name, str(dtype)] for name, dtype in schema.items()]
        for kind, schema in StateIndex.schemas().items()
    }


def _complete(root: Path) -> list[tuple[int, Path]]:
    """The complete checkpoints under ``root/state``, newest first."""
    folder = root / STATE_DIR
    found = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return []
    for entry in entries:
        head = entry.name.split("-", 1)[0]
        if head.isdigit() and (entry / META).is_file():
            found.append((int(head), entry))
    return sorted(found, reverse=True)


def stale(index_rows: int, checkpoint: Checkpoint | None) -> bool:
    """Whether an index of ``index_rows`` rows should be written down, given the
    checkpoint it was loaded from (None: built from the files)."""
    if index_rows < CHECKPOINT_ROWS:
        return False
    if checkpoint is None:
        return True
    return index_rows - checkpoint.rows >= STALE_SHARE * index_rows


def save(root: Path, index: StateIndex, *, writer: str, fsync: Any = os.fsync) -> Checkpoint | None:
    """Write ``index`` down under ``root/state`` (durably: files and folders
    fsync'd, ``checkpoint.json`` last, the folder renamed into place), then
    remove the older checkpoints. None when there was nothing to write."""
    seq, latest, parts = index.parts()
    if seq <= 0:
        return None
    folder = root / STATE_DIR
    makedirs_durable(folder, fsync)
    _sweep(folder)
    tmp = folder / f".tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        files: list[dict[str, Any]] = []
        rows = 0
        for kind, frames in parts.items():
            for n, frame in enumerate(frames):
                name = f"{kind.table}-{n}.arrow"
                path = tmp / name
                frame.write_ipc(path, compression="uncompressed")
                with path.open("rb") as written:
                    fsync(written.fileno())
                files.append(
                    {
                        "name": name,
                        "table": kind.table,
                        "rows": frame.height,
                        "bytes": path.stat().st_size,
                        "blake3": _blake3(path),
                    }
                )
                rows += frame.height
        meta = {
            "format": FORMAT,
            "seq": seq,
            "latest": latest,
            "writer": writer,
            "rows": rows,
            "files": files,
            "schemas": _schemas(),
            "polars": pl.__version__,
            "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        with (tmp / META).open("w") as f:
            json.dump(meta, f, indent=1)
            f.flush()
            fsync(f.fileno())
        fsync_dir(tmp, fsync)
        final = folder / f"{seq:020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.rename(final)
        fsync_dir(folder, fsync)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # Older checkpoints go (a process that maps one keeps its pages: unlinked
    # files live on until unmapped).
    for _, older in _complete(root):
        if older != final:
            shutil.rmtree(older, ignore_errors=True)
    files_t = tuple((f["name"], f["bytes"], f["blake3"]) for f in files)
    return Checkpoint(final, seq, rows, files_t)


def _sweep(folder: Path) -> None:
    """Remove temporary folders left by a crashed `save` (older than an hour:
    a younger one may be another process's, being written)."""
    now = time.time()
    for entry in folder.iterdir():
        if entry.name.startswith(".tmp-"):
            try:
                if now - entry.stat().st_mtime > ABANDONED_S:
                    shutil.rmtree(entry, ignore_errors=True)
            except OSError:
                pass


def load(root: Path, *, writer: str, max_seq: int) -> tuple[StateIndex, Checkpoint] | None:
    """The newest usable checkpoint under ``root/state`` as an index (its files
    mapped, not read), or None (then the index is built from the lake's files).
    ``max_seq``: the highest sequence number the lake holds; a checkpoint that
    holds more is of another history (a lake restored from an older copy)."""
    for _, path in _complete(root):
        try:
            loaded = _load(path, writer=writer, max_seq=max_seq)
        except Exception as exc:  # noqa: BLE001 - derived data: the files are read instead
            log.warning("%s: the state checkpoint is not usable (%r); not used", path, exc)
            continue
        if loaded is not None:
            return loaded
    return None


def _load(path: Path, *, writer: str, max_seq: int) -> tuple[StateIndex, Checkpoint] | None:
    meta = json.loads((path / META).read_text())
    why = None
    if meta.get("format") != FORMAT:
        why = f"format {meta.get('format')!r}, not {FORMAT!r}"
    elif meta["writer"] != writer:
        why = f"written for writer {meta['writer']!r}, the lake's is {writer!r}"
    elif meta["seq"] > max_seq:
        why = f"holds rows up to sequence {meta['seq']}, the lake only to {max_seq}"
    elif meta["schemas"] != _schemas():
        why = "made for other columns (another steme_lake version)"
    if why is not None:
        log.info("%s: not used: %s", path, why)
        return None
    kinds = {kind.table: kind for kind in StateIndex.schemas()}
    parts: dict[RecordKind, list[pl.DataFrame]] = {kind: [] for kind in kinds.values()}
    for entry in meta["files"]:
        file = path / entry["name"]
        if file.stat().st_size != entry["bytes"]:
            raise ValueError(f"{file}: {file.stat().st_size} bytes, {entry['bytes']} expected")
        table = pa.ipc.open_file(pa.memory_map(str(file))).read_all()
        frame = pl.from_arrow(table, rechunk=False)
        assert isinstance(frame, pl.DataFrame)
        if frame.height != entry["rows"]:
            raise ValueError(f"{file}: {frame.height} rows, {entry['rows']} expected")
        kind = kinds[entry["table"]]
        if HASH in frame.columns and not _hashes_agree(kind, frame):
            log.info("%s: not used: its key hashes are not this Polars version's", path)
            return None
        parts[kind].append(frame)
    index = StateIndex.from_parts(int(meta["seq"]), int(meta["latest"]), parts)
    files = tuple((f["name"], f["bytes"], f["blake3"]) for f in meta["files"])
    return index, Checkpoint(path, int(meta["seq"]), int(meta["rows"]), files)


def _hashes_agree(kind: RecordKind, frame: pl.DataFrame) -> bool:
    """The stored key hashes of a few rows at each end equal this process's."""
    n = frame.height
    if n == 0:
        return True
    picked = np.unique(np.r_[np.arange(min(SAMPLE, n)), np.arange(max(0, n - SAMPLE), n)])
    sample = frame[pl.Series(picked)]
    return bool(np.array_equal(sample[HASH].to_numpy(), StateIndex.key_hashes(kind, sample)))


def clear(root: Path) -> int:
    """Remove every checkpoint (when rows left the lake: `steme doctor --repair`);
    how many there were."""
    found = _complete(root)
    shutil.rmtree(root / STATE_DIR, ignore_errors=True)
    return len(found)
