"""Which assertion ids exist: the check behind "a vote for an unknown assertion".

Flushed ids are kept as 128-bit prefixes in two NumPy arrays sorted by their
first 64 bits (16 bytes an id, loaded from each file's ``id`` column once);
recent, unflushed ids in a set, which a flush drains into the arrays. At 10
million assertions that is 160 MB instead of a gigabyte of Python strings; a
128-bit prefix collision among 10^7 random ids has odds around 10^-25.

A file compaction wrote holds only ids of the files it replaced: when this
index has read all of those, it is marked read without reading it again.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable

import numpy as np
import pyarrow.parquet as pq

from steme_lake.storage.fs import LakeFS
from steme_lake.storage.manifest import FileEntry

__all__ = ["IdIndex"]

_LUT = np.zeros(256, dtype=np.uint64)
for _i, _c in enumerate(b"0123456789abcdef"):
    _LUT[_c] = _i


def _version(path: str) -> int:
    """The manifest version in a data file's name (``...-v00000042.parquet``)."""
    try:
        return int(path.rsplit("-v", 1)[1].split(".", 1)[0])
    except (IndexError, ValueError):
        return -1


def _prefixes(values: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The first 16 bytes of each 64-hex id as (hi, lo) uint64 arrays."""
    if not values:
        empty = np.empty(0, dtype=np.uint64)
        return empty, empty
    raw = np.frombuffer("".join(v[:32] for v in values).encode("ascii"), dtype=np.uint8)
    nib = _LUT[raw].reshape(-1, 32)
    shifts = np.arange(60, -1, -4, dtype=np.uint64)
    hi = (nib[:, :16] << shifts).sum(axis=1, dtype=np.uint64)
    lo = (nib[:, 16:] << shifts).sum(axis=1, dtype=np.uint64)
    return hi, lo


class IdIndex:
    """Membership of assertion ids, flushed and recent."""

    def __init__(self) -> None:
        self._hi = np.empty(0, dtype=np.uint64)
        self._lo = np.empty(0, dtype=np.uint64)
        self._files: set[str] = set()
        self._recent: set[str] = set()
        self._loaded = False  # every live file read once (see `sync_files`)
        self._lock = threading.Lock()

    def add_recent(self, ids: Iterable[str]) -> None:
        with self._lock:
            self._recent.update(ids)

    def sync_files(
        self,
        fs: LakeFS,
        entries: Iterable[FileEntry],
        removed: Iterable[tuple[str, int, int]] = (),
        *,
        if_loaded: bool = False,
    ) -> None:
        """Load the ids of files not read yet, and drop them from the recent set.

        ``removed`` is the manifest's list of (path, version, time) of replaced
        files: a compaction output of version v replaced the files removed at v
        in its folder, and is not read again when all of those were. With
        ``if_loaded`` (after a flush) nothing happens until the index has once
        been loaded: a process that never checks an old id never reads them."""
        if if_loaded and not self._loaded:
            return
        sources: dict[tuple[str, int], list[str]] = defaultdict(list)
        for path, version, _ in removed:
            sources[(path.rsplit("/", 1)[0], version)].append(path)
        new = []
        for e in entries:
            if e.path in self._files:
                continue
            merged = sources.get((e.path.rsplit("/", 1)[0], _version(e.path)))
            if merged and all(p in self._files for p in merged):
                with self._lock:
                    self._files.add(e.path)  # the same ids as files already read
                continue
            new.append(e)
        if not new:
            self._loaded = True
            return
        his, los, seen = [], [], []
        for entry in new:
            values = pq.read_table(fs.path(entry.path), columns=["id"])["id"].to_pylist()
            hi, lo = _prefixes(values)
            his.append(hi)
            los.append(lo)
            seen.append(values)
        hi, lo = np.concatenate(his), np.concatenate(los)
        order = np.argsort(hi, kind="stable")
        hi, lo = hi[order], lo[order]
        with self._lock:
            # A merge into the sorted arrays (one copy), not a sort of all of them.
            at = np.searchsorted(self._hi, hi)
            self._hi, self._lo = np.insert(self._hi, at, hi), np.insert(self._lo, at, lo)
            self._files.update(e.path for e in new)
            for values in seen:
                self._recent.difference_update(values)
        self._loaded = True

    def __len__(self) -> int:
        """Ids held (flushed and recent; an id is counted once in each)."""
        with self._lock:
            return len(self._hi) + len(self._recent)

    def __contains__(self, rid: object) -> bool:
        if not isinstance(rid, str):
            return False
        with self._lock:
            if rid in self._recent:
                return True
            hi_arr, lo_arr = self._hi, self._lo
        if not len(hi_arr):
            return False
        hi, lo = _prefixes([rid])
        left = int(np.searchsorted(hi_arr, hi[0], side="left"))
        right = int(np.searchsorted(hi_arr, hi[0], side="right"))
        return bool((lo_arr[left:right] == lo[0]).any())
