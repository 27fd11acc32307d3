"""Which assertion ids exist: the check behind "a vote for an unknown assertion".

Ids are kept as 128-bit prefixes in NumPy arrays sorted by their first 64 bits
(16 bytes an id): flushed ones loaded from each file's ``id`` column once;
recent, unflushed ones taken from each commit's Arrow column (no Python
strings: a set of them cost 5 ms of a 13,880-row commit's 62) and sorted when
next asked, which a flush drains into the others. At 10 million assertions that
is 160 MB instead of a gigabyte of Python strings; a 128-bit prefix collision
among 10^7 random ids has odds around 10^-25.

A file compaction wrote holds only ids of the files it replaced: when this
index has read all of those, it is marked read without reading it again.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from steme_lake._utils.arrays import text_bytes
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


_HEX32 = re.compile(r"[0-9a-f]{32}")


def _prefixes(values: list[str] | pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """The first 16 bytes of each 64-hex id as (hi, lo) uint64 arrays."""
    if not len(values):
        empty = np.empty(0, dtype=np.uint64)
        return empty, empty
    if isinstance(values, list):
        raw = np.frombuffer("".join(v[:32] for v in values).encode("ascii"), dtype=np.uint8)
    else:  # Arrow: the first 32 digits of each, straight from its buffers
        found = None if values.null_count else text_bytes(values)
        if found is None:
            return _prefixes(values.to_pylist())  # not ids as the lake makes them
        offsets, data = found
        lengths = np.diff(offsets)
        if not (lengths >= 32).all():
            return _prefixes(values.to_pylist())  # (short ones: the plain way)
        if (lengths == 64).all():  # whole ids, end to end
            raw = data.reshape(-1, 64)[:, :32]
        else:
            raw = data[offsets[:-1, None] + np.arange(32)]
        found = _from_hex(raw)
        if found is not None:
            return found
    nib = _LUT[raw].reshape(-1, 32)
    shifts = np.arange(60, -1, -4, dtype=np.uint64)
    hi = (nib[:, :16] << shifts).sum(axis=1, dtype=np.uint64)
    lo = (nib[:, 16:] << shifts).sum(axis=1, dtype=np.uint64)
    return hi, lo


def _from_hex(digits: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(hi, lo) of rows of 32 lower-case hex digits (as the lake writes ids), by
    `bytes.fromhex` at once (13,880 ids: 0.4 against 2.2 ms digit by digit);
    None if any is not (then they go digit by digit, as in `_prefixes`)."""
    if ((digits >= ord("A")) & (digits <= ord("Z"))).any():
        return None
    try:
        decoded = bytes.fromhex(digits.tobytes().decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None
    if len(decoded) != 16 * len(digits):  # (fromhex skips white space)
        return None
    pairs = np.frombuffer(decoded, dtype=">u8").reshape(-1, 2)
    return pairs[:, 0].astype(np.uint64), pairs[:, 1].astype(np.uint64)


def _member(hi: np.ndarray, lo: np.ndarray, qhi: np.ndarray, qlo: np.ndarray) -> np.ndarray:
    """Which of the ids (``qhi``, ``qlo``) are among (``hi``, ``lo``), sorted by
    ``hi``: each found by binary search on ``hi``, then ``lo`` compared (an id
    sharing ``hi`` with others, rarely, is compared with each of them)."""
    left = np.searchsorted(hi, qhi, side="left")
    width = np.searchsorted(hi, qhi, side="right") - left
    found = np.zeros(len(qhi), dtype=bool)
    last = len(hi) - 1
    for k in range(int(width.max()) if len(width) else 0):
        found |= (k < width) & (lo[np.minimum(left + k, last)] == qlo)
    return found


def _has(his: np.ndarray, los: np.ndarray, hi: int, lo: int) -> bool:
    """Whether (``hi``, ``lo``) is among (``his``, ``los``), sorted by ``his``."""
    n = len(his)
    i = int(his.searchsorted(np.uint64(hi))) if n else 0
    while i < n and his.item(i) == hi:
        if los.item(i) == lo:
            return True
        i += 1
    return False


class IdIndex:
    """Membership of assertion ids, flushed and recent."""

    def __init__(self) -> None:
        self._hi = np.empty(0, dtype=np.uint64)
        self._lo = np.empty(0, dtype=np.uint64)
        self._files: set[str] = set()
        # recent ids, sorted by ``hi``; and those not sorted in yet
        self._recent_hi = np.empty(0, dtype=np.uint64)
        self._recent_lo = np.empty(0, dtype=np.uint64)
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._loaded = False  # every live file read once (see `sync_files`)
        self._lock = threading.Lock()

    def add_recent(self, ids: list[str] | pa.Array | pa.ChunkedArray) -> None:
        """Ids just committed (an Arrow column, or a list)."""
        pair = _prefixes(ids)
        with self._lock:
            self._pending.append(pair)

    def _sorted_recent(self) -> tuple[np.ndarray, np.ndarray]:
        """The recent ids (hi, lo), sorted by hi, the pending sorted in. Call with
        the lock held."""
        if self._pending:
            hi = np.concatenate([self._recent_hi, *(h for h, _ in self._pending)])
            lo = np.concatenate([self._recent_lo, *(lo for _, lo in self._pending)])
            order = np.argsort(hi, kind="stable")
            self._recent_hi, self._recent_lo = hi[order], lo[order]
            self._pending = []
        return self._recent_hi, self._recent_lo

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
        his, los = [], []
        for entry in new:
            hi, lo = _prefixes(pq.read_table(fs.path(entry.path), columns=["id"])["id"])
            his.append(hi)
            los.append(lo)
        hi, lo = np.concatenate(his), np.concatenate(los)
        order = np.argsort(hi, kind="stable")
        hi, lo = hi[order], lo[order]
        with self._lock:
            # A merge into the sorted arrays (one copy), not a sort of all of them.
            at = np.searchsorted(self._hi, hi)
            self._hi, self._lo = np.insert(self._hi, at, hi), np.insert(self._lo, at, lo)
            self._files.update(e.path for e in new)
            rhi, rlo = self._sorted_recent()
            if len(rhi):
                kept = ~_member(hi, lo, rhi, rlo)
                self._recent_hi, self._recent_lo = rhi[kept], rlo[kept]
        self._loaded = True

    def __len__(self) -> int:
        """Ids held (flushed and recent; an id is counted once in each)."""
        with self._lock:
            return len(self._hi) + len(self._sorted_recent()[0])

    def all_in(self, ids: list[str] | pa.Array | pa.ChunkedArray) -> bool:
        """Whether every one of ``ids`` is held (one vectorized search for many:
        a bulk vote's targets)."""
        if isinstance(ids, list) and not all(isinstance(i, str) and len(i) >= 32 for i in ids):
            return all(i in self for i in ids)
        hi, lo = _prefixes(ids)
        with self._lock:
            rhi, rlo = self._sorted_recent()
            hi_arr, lo_arr = self._hi, self._lo
        found = _member(rhi, rlo, hi, lo)
        rest = ~found
        found[rest] = _member(hi_arr, lo_arr, hi[rest], lo[rest])
        return bool(found.all())

    def __contains__(self, rid: object) -> bool:
        if not isinstance(rid, str) or len(rid) < 32:
            return False  # (not an id the lake makes: 64 hex digits)
        if _HEX32.match(rid):  # one id: Python's ints (NumPy's calls cost more here)
            hi, lo = int(rid[:16], 16), int(rid[16:32], 16)
        else:
            his, los = _prefixes([rid])
            hi, lo = int(his[0]), int(los[0])
        with self._lock:
            rhi, rlo = self._sorted_recent()
            hi_arr, lo_arr = self._hi, self._lo
        return _has(rhi, rlo, hi, lo) or _has(hi_arr, lo_arr, hi, lo)
