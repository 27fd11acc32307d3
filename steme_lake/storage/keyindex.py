"""Key indexes: which rows of a Parquet file hold a key, without reading the file.

Next to each file of an indexed table, the flush (and a compaction) writes one
small Parquet file per indexed column: ``(key, row)`` sorted by key, in row
groups of `KEY_GROUP` rows whose min/max statistics say where a key can be.
``index/<table>/<column>/date=.../<name>`` mirrors ``tables/<table>/date=.../<name>``.

- ``audit.contributing``: which queries an assertion's answer fed (impact);
- ``assertions.id`` and ``assertions.parent``: an assertion, its children, and
  which of many assertions have a parent (an impact's, listed from memory);
- ``votes.target``: the votes an assertion received.

A lookup reads, per file, an index's footer (cached: files are immutable)
and the row groups that can hold a wanted id or subject tree, or, for many
ids at once, an id index whole (held in memory, 12 bytes a key, up to
`KeyIndexes.MEMORY`); then
only the row groups of the data file (`DATA_GROUP` rows each) that hold the
rows found, or the whole file through polars when most of them do.
What costs a scan of every file's column (a million audit rows' contributing
lists at 100k assertions: 80 ms a level) becomes a few row groups, whatever the
lake's size.

An index is derived data: the data file is the truth. An index that is
missing (a lake written before indexes existed, a remote copy not uploaded),
unreadable, or made for another file (its footer names the data file's BLAKE3)
is not used; that file is scanned instead, and the answer is the same.
Vacuum deletes an index with its data file.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from steme_lake._utils.arrays import sorted_unique
from steme_lake.model.schema import RecordKind, spec
from steme_lake.storage.fs import LakeFS
from steme_lake.storage.manifest import FileEntry, Manifest
from steme_lake.storage.tables import FileVerifier, _polars_schema, empty_table, scan_table

__all__ = [
    "DATA_GROUP",
    "INDEXED",
    "INDEX_BLAKE3_KEY",
    "INDEX_DIR",
    "TEXT_KEYS",
    "KeyIndexes",
    "Keyed",
    "Want",
    "data_path",
    "equal_to",
    "index_files",
    "index_good",
    "index_path",
    "key_prefixes",
    "spans",
]

INDEX_DIR = "index"
INDEXED: dict[RecordKind, tuple[str, ...]] = {
    RecordKind.AUDIT: ("contributing",),
    RecordKind.ASSERTION: ("id", "parent", "subject"),
    RecordKind.VOTE: ("target",),
}
# Indexed by their whole text (looked up by subject tree), not by an id's prefix.
TEXT_KEYS = frozenset({(RecordKind.ASSERTION, "subject")})
# Rows per row group of an indexed table's data files: a lookup decodes whole
# row groups, so a smaller one costs less per row found (pyarrow's default, a
# million rows, made one audit row cost its whole day file).
DATA_GROUP = 16_384
KEY_GROUP = 4_096  # rows per row group of an index file
# An id index is read whole (and held) for a lookup of more than one id per
# this many of its row groups; for fewer, only the row groups that can hold
# them are read (at 10M, reading whole the citation indexes a direct impact
# touches took 2.8 s of its 4.9: 1.9 GB of them, more than the memory held).
FEW_GROUPS = 8
# Rows of data files read whole at a time (the rest waits): what a lookup holds
# decoded at once, whatever the lake's size (a day's audit at 100M is 3M rows).
WHOLE_ROWS = 500_000
INDEX_BLAKE3_KEY = b"steme_lake.data_blake3"  # an index's footer: its data file's BLAKE3
_TABLES = "tables/"


_LUT = np.zeros(256, dtype=np.uint64)
for _i, _c in enumerate(b"0123456789abcdef"):
    _LUT[_c] = _i
_SHIFTS = np.arange(60, -1, -4, dtype=np.uint64)


def key_prefixes(keys: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The first 64 bits of each key (a 64-hex id: its first 16 digits) as uint64.

    An index holds these, not the 64-character ids: eight bytes a key, and a row
    group of 4,096 decodes in microseconds. Two keys can share a prefix (odds
    about 10^-6 among ten million random ids): a lookup checks the rows it reads
    against the whole keys. Any other text is folded the same way, consistently.

    >>> hex(int(key_prefixes(pa.array(["00000000000000ff" + "0" * 48]))[0]))
    '0xff'
    """
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks()
    if not len(keys):
        return np.empty(0, dtype=np.uint64)
    if pa.types.is_string(keys.type) or pa.types.is_large_string(keys.type):
        # Ids as the lake makes them (lowercase hex): parsed by Polars, on every
        # core, five times as fast as the table below (2M ids: 0.13 against 0.7 s)
        heads16 = pl.Series(keys).str.slice(0, 16)
        if not heads16.null_count() and heads16.str.contains("^[0-9a-f]{16}$").all():
            parsed: np.ndarray = heads16.str.to_integer(base=16, dtype=pl.UInt64).to_numpy()
            return parsed
    heads = pc.binary_slice(keys.cast(pa.binary()), 0, 16)
    if pc.all(pc.equal(pc.binary_length(heads), 16)).as_py() and not heads.null_count:
        raw = np.frombuffer(heads.buffers()[2], dtype=np.uint8)
        start = int(np.frombuffer(heads.buffers()[1], dtype=np.int32)[heads.offset])
        digits = raw[start : start + 16 * len(heads)].reshape(-1, 16)
    else:  # short keys: padded, one by one
        digits = np.frombuffer(
            b"".join((v or b"").ljust(16, b"0") for v in heads.to_pylist()), dtype=np.uint8
        ).reshape(-1, 16)
    out: np.ndarray = (_LUT[digits] << _SHIFTS).sum(axis=1, dtype=np.uint64)
    return out


def spans(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Every position from ``lo[i]`` up to ``hi[i]`` (excluded), span after span,
    without a Python loop over the spans: the rows of keys found by binary
    search in a sorted array.

    >>> spans(np.array([2, 7]), np.array([4, 8])).tolist()
    [2, 3, 7]
    """
    lo, hi = lo.astype(np.int64), hi.astype(np.int64)  # (unsigned would wrap below)
    sizes = hi - lo
    out: np.ndarray = np.repeat(lo - (np.cumsum(sizes) - sizes), sizes) + np.arange(sizes.sum())
    return out


def equal_to(keys: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """The positions in the sorted ``keys`` of those equal to one of ``wanted``."""
    return spans(np.searchsorted(keys, wanted, "left"), np.searchsorted(keys, wanted, "right"))


def index_path(data: str, column: str) -> str:
    """The index of ``column`` for the data file ``data`` (a lake-relative path).

    >>> index_path("tables/audit/date=2026-10-01/1-9-v00000002.parquet", "contributing")
    'index/audit/contributing/date=2026-10-01/1-9-v00000002.parquet'
    """
    table, rest = data[len(_TABLES) :].split("/", 1)
    return f"{INDEX_DIR}/{table}/{column}/{rest}"


def data_path(index: str) -> str | None:
    """The data file an index file belongs to (None: not an index file's path).

    >>> data_path("index/audit/contributing/date=2026-10-01/1-9-v00000002.parquet")
    'tables/audit/date=2026-10-01/1-9-v00000002.parquet'
    """
    parts = index.split("/", 3)
    if len(parts) != 4 or parts[0] != INDEX_DIR:
        return None
    return f"{_TABLES}{parts[1]}/{parts[3]}"


def index_good(fs: LakeFS, entry: FileEntry, column: str) -> bool:
    """Whether the data file ``entry`` has a readable index of ``column`` made
    for it (its footer only: damaged pages are found when a lookup reads them)."""
    return _footer(fs, index_path(entry.path, column), entry) is not None


def _footer(fs: LakeFS, rel: str, entry: FileEntry) -> pq.FileMetaData | None:
    """The footer of the index file ``rel`` if it is there, readable and made for
    ``entry`` (its metadata names the data file's BLAKE3); else None."""
    try:
        if not fs.exists(rel):
            return None
        meta = pq.read_metadata(fs.path(rel))
    except (OSError, pa.ArrowException):
        return None
    made_for: bytes = (meta.metadata or {}).get(INDEX_BLAKE3_KEY, b"")
    return meta if made_for.decode() == entry.blake3 else None


def index_files(kind: RecordKind, data: str, table: pa.Table, blake: str) -> dict[str, bytes]:
    """The index files of one data file (its lake-relative path ``data``, its rows
    ``table`` in file order and its BLAKE3), by lake-relative path."""
    out = {}
    for column in INDEXED.get(kind, ()):
        values = table[column].combine_chunks()
        if pa.types.is_list(values.type):
            keys = pc.list_flatten(values)
            rows = pc.list_parent_indices(values)
        else:
            valid = pc.is_valid(values)
            keys = values.filter(valid)
            rows = pc.indices_nonzero(valid)
        valid = pc.is_valid(keys)
        keys, rows = keys.filter(valid), rows.filter(valid)
        text = (kind, column) in TEXT_KEYS
        pairs = pa.table(
            {"key": keys if text else key_prefixes(keys), "row": rows.cast(pa.uint32())}
        )
        pairs = pairs.take(pc.sort_indices(pairs, [("key", "ascending"), ("row", "ascending")]))
        pairs = pairs.replace_schema_metadata({INDEX_BLAKE3_KEY: blake.encode()})
        sink = io.BytesIO()
        pq.write_table(
            pairs,
            sink,
            compression="zstd",
            row_group_size=KEY_GROUP,
            write_page_checksum=True,
            write_statistics=True,
        )
        out[index_path(data, column)] = sink.getvalue()
    return out


@dataclass(frozen=True, slots=True)
class _Index:
    """An index file's row groups (the smallest and largest key of each), or for
    an id index the whole of it, in memory (``keys`` sorted, ``rows``)."""

    mins: np.ndarray
    maxs: np.ndarray
    metadata: pq.FileMetaData | None
    keys: np.ndarray | None = None
    rows: np.ndarray | None = None

    @property
    def nbytes(self) -> int:
        return 0 if self.keys is None or self.rows is None else self.keys.nbytes + self.rows.nbytes


@dataclass(frozen=True, slots=True)
class _Data:
    """A data file's row groups: the first row of each, and the footer."""

    starts: np.ndarray
    metadata: pq.FileMetaData


_NONE = _Index(np.empty(0, np.uint64), np.empty(0, np.uint64), None)  # no usable index
_NO_ROWS = np.empty(0, dtype=np.uint32)
_NO_KEYS = np.empty(0, dtype=np.uint64)


def _held(rows: np.ndarray, keys: np.ndarray, by_prefix: pl.DataFrame, column: str) -> pl.Series:
    """``column`` for the distinct ``rows`` (sorted), from an index's pairs:
    each row's wanted ids (``keys``: their prefixes; see `Want.by_prefix`)."""
    pairs = pl.DataFrame(
        {"_row": rows, "_key": keys}, schema={"_row": pl.UInt32, "_key": pl.UInt64}
    )
    return (
        pairs.join(by_prefix, on="_key", how="inner")
        .group_by("_row")
        .agg(pl.col("_id").unique().sort())
        .sort("_row")
        .get_column("_id")
        .alias(column)
    )


@dataclass(frozen=True, slots=True)
class Want:
    """What a lookup wants, in an index's terms: the key ranges ``lows[i]`` to
    ``highs[i]`` to read, which index keys read to keep, and the exact test of a
    data row (``member``)."""

    lows: np.ndarray
    highs: np.ndarray
    member: pl.Expr
    roots: tuple[str, ...] = ()  # subject trees: their roots
    text: bool = False
    # ids: each wanted id by its prefix, when no two share one (else None)
    by_prefix: pl.DataFrame | None = None
    keys: tuple[str, ...] = ()  # ids: the wanted ids

    @classmethod
    def ids(cls, kind: RecordKind, column: str, keys: Sequence[str]) -> Want:
        """Rows whose ``column`` is (or, a list, holds) one of the ids ``keys``."""
        wanted = sorted(set(keys))
        every = key_prefixes(pa.array(wanted, pa.string()))
        prefixes = sorted_unique(every)
        by_prefix = (
            pl.DataFrame(
                {"_key": every, "_id": wanted}, schema={"_key": pl.UInt64, "_id": pl.String}
            )
            if len(prefixes) == len(wanted)
            else None
        )
        member = _member(column, kind, wanted)
        return cls(prefixes, prefixes, member, by_prefix=by_prefix, keys=tuple(wanted))

    @classmethod
    def trees(cls, column: str, roots: Sequence[str]) -> Want:
        """Rows whose ``column`` is one of ``roots`` or a path under one
        (``a/b`` is under ``a``, ``ab`` is not)."""
        wanted = sorted(set(roots))
        # (a root's tree lies between it and the root followed by "0", which
        # sorts just after "/"; what else lies there is dropped by `keep`)
        lows = np.array(wanted, np.str_)
        highs = np.array([r + "0" for r in wanted], np.str_)
        member = _under(pl.col(column), wanted)
        return cls(lows, highs, member, roots=tuple(wanted), text=True)

    def keep(self, keys: pa.ChunkedArray) -> np.ndarray:
        """Which of the subject index's keys read are in a wanted tree."""
        # The keys read are sorted (an index is, and its groups are read in
        # order): each tree's keys lie between its low and high, found by binary
        # search; only those are tested, each distinct subject once.
        values = keys.to_numpy(zero_copy_only=False)
        marks = np.zeros(len(values) + 1, dtype=np.int64)
        np.add.at(marks, np.searchsorted(values, self.lows, side="left"), 1)
        np.add.at(marks, np.searchsorted(values, self.highs, side="left"), -1)
        mask: np.ndarray = np.cumsum(marks[:-1]) > 0
        if mask.any():
            near = pl.Series(values[mask], dtype=pl.String)
            unique = near.unique().to_frame("key")
            inside = unique.filter(_under(pl.col("key"), self.roots))["key"]
            mask[mask] = near.is_in(inside).to_numpy()
        return mask


def _under(column: pl.Expr, roots: Sequence[str]) -> pl.Expr:
    """Whether a path is one of ``roots`` or under one: its first ``n`` parts
    are a root of ``n`` parts, for some ``n`` (no regular expression: thousands
    of roots make one too large)."""
    by_depth: dict[int, list[str]] = {}
    for root in roots:
        by_depth.setdefault(root.count("/") + 1, []).append(root)
    if not by_depth:
        return pl.lit(False).alias(column.meta.output_name())
    parts = column.str.split("/")
    tests = [
        parts.list.head(n).list.join("/").is_in(pl.Series(same, dtype=pl.String))
        for n, same in sorted(by_depth.items())
    ]
    return pl.any_horizontal(tests).fill_null(False).alias(column.meta.output_name())


class KeyIndexes:
    """Reads the key indexes of one lake, caching the footers it has read (the
    files never change)."""

    CACHE = 50_000  # files whose footers are kept (then the cache starts over)
    # Id indexes are held in memory, up to this many bytes (about 512 MiB: the
    # id indexes of a lake of 10M assertions and 100M audit records hold about
    # 1.6 GB, so those of the files used most recently stay).
    MEMORY = 512 * 2**20

    def __init__(self, fs: LakeFS, verifier: FileVerifier) -> None:
        self.fs, self.verifier = fs, verifier
        self._indexes: dict[str, _Index] = {}
        self._data: dict[str, _Data] = {}
        self._lock = threading.Lock()
        self._held = 0  # bytes of the id indexes held in memory

    def rows(
        self,
        entries: Sequence[FileEntry],
        tail: pa.Table,
        kind: RecordKind,
        column: str,
        want: Want,
        columns: Sequence[str],
        *,
        matched: bool = False,
    ) -> pl.DataFrame:
        """The rows (``columns`` of them) of ``entries`` and of the unflushed
        ``tail`` whose ``column`` holds a wanted key (for a list column: any
        element does), each row once.

        ``matched`` (a list column of ids, among ``columns``): the column holds,
        of each row's ids, only the wanted ones, and the data files' column is
        not read: which ids a row holds comes from the index's pairs (a list of
        64-hex ids is the costliest column to decode: 40% of an audit file's
        time). An index key is an id's first 64 bits, so a row holding another
        id with a wanted one's prefix would be taken for it: the caller asks
        for ``matched`` only when it knows no other id has one (the lake: none
        of the assertions it holds; for ten million random ids and 20,000
        wanted, odds about 10^-8). Wanted ids that share a prefix with each
        other are read and checked here."""
        out = list(dict.fromkeys(columns))
        by_prefix = want.by_prefix if matched else None
        if by_prefix is not None:
            columns = [c for c in out if c != column]  # made from the index's pairs
        else:
            columns = list(dict.fromkeys([*out, column]))  # the key, to check the rows by
        parts: list[pl.DataFrame] = []
        if len(want.lows):
            found: list[pl.DataFrame] = []
            unindexed: list[FileEntry] = []
            # (files read whole below: their rows, and with ``matched`` the ids held)
            wholes: list[tuple[FileEntry, np.ndarray, pl.Series | None]] = []
            for entry in entries:
                paired = self._found(entry, column, want)
                if paired is None:
                    unindexed.append(entry)
                    continue
                pairs, keys = paired
                rows = sorted_unique(pairs)
                if rows.size:
                    self.verifier.check(entry)
                    data = self._data_file(entry)
                    ids = None if by_prefix is None else _held(pairs, keys, by_prefix, column)
                    at = np.searchsorted(data.starts, rows, side="right") - 1
                    groups = sorted_unique(at)
                    if 2 * len(groups) >= len(data.starts) and entry.rows <= WHOLE_ROWS:
                        wholes.append((entry, rows, ids))
                        continue
                    got = self._read_groups(entry, data, rows, at, groups, columns)
                    found.append(got if ids is None else got.with_columns(ids))
            if wholes:
                # Files mostly read anyway: read whole by polars, a few in parallel
                # (its decoder of these tables, 64-hex ids and lists of them, is
                # about 2.5 times as fast as pyarrow's), the rows taken at once, so
                # that no more than about `WHOLE_ROWS` rows are decoded at a time.
                batch: list[tuple[FileEntry, np.ndarray, pl.Series | None]] = []
                for n, item in enumerate(wholes):
                    batch.append(item)
                    held = sum(e.rows for e, _, _ in batch)
                    if n + 1 < len(wholes) and held + wholes[n + 1][0].rows <= WHOLE_ROWS:
                        continue
                    read = pl.collect_all(
                        [
                            pl.scan_parquet(self.fs.path(e.path), hive_partitioning=False).select(
                                columns
                            )
                            for e, _, _ in batch
                        ]
                    )
                    for whole, (_, r, ids) in zip(read, batch, strict=True):
                        taken = whole[pl.Series(r, dtype=pl.UInt32)]
                        found.append(taken if ids is None else taken.with_columns(ids))
                    batch = []
            full = list(dict.fromkeys([*out, column]))
            read = []  # rows read with the column itself
            if found and by_prefix is None:
                # an index key is not the key (a prefix, a range): the rows read are checked
                read.append(pl.concat(found, how="vertical").filter(want.member))
            elif found:  # (the column made from the index's pairs, prefixes unique)
                parts.append(pl.concat(found, how="vertical"))
            if unindexed:
                read.append(self._scanned(unindexed, kind, want, full))
            if tail.num_rows:
                read.append(_frame(tail).filter(want.member).select(full))
            if matched:  # only the wanted ids kept, as from the pairs
                ids = pl.Series(want.keys, dtype=pl.String)
                keep = pl.col(column).list.eval(pl.element().filter(pl.element().is_in(ids)))
                read = [r.with_columns(keep) for r in read]
            parts.extend(read)
        if not parts:
            return _frame(empty_table(kind)).select(out)
        return pl.concat([p.select(out) for p in parts], how="vertical")

    def parents(self, entries: Sequence[FileEntry], tail: pa.Table, want: Want) -> pl.DataFrame:
        """``id`` and ``parent`` of the wanted assertions (``want``: ids) that have
        a parent, in ``entries`` and the unflushed ``tail``. Each file's id index
        says where the wanted rows are and its parent index (held whole: one row
        per child, a few percent of the assertions) which of them have a parent:
        only those are read, where reading the ids' rows read most of the
        assertion files (`rows`)."""
        kind, columns = RecordKind.ASSERTION, ["id", "parent"]
        found: list[pl.DataFrame] = []
        unindexed: list[FileEntry] = []
        for entry in entries:
            rows = self._rows_of(entry, "id", want)
            if rows is not None and rows.size:
                children = self._index(
                    index_path(entry.path, "parent"), entry, text=False, whole=True
                )
                # (no usable parent index: the file is scanned)
                rows = None if children.rows is None else rows[np.isin(rows, children.rows)]
            if rows is None:
                unindexed.append(entry)
            elif rows.size:
                self.verifier.check(entry)
                data = self._data_file(entry)
                at = np.searchsorted(data.starts, rows, side="right") - 1
                found.append(self._read_groups(entry, data, rows, at, sorted_unique(at), columns))
        if unindexed:
            found.append(self._scanned(unindexed, kind, want, columns))
        if tail.num_rows:
            found.append(_frame(tail).select(columns))
        if not found:
            return _frame(empty_table(kind)).select(columns)
        return (
            pl.concat(found, how="vertical")
            .filter(want.member, pl.col("parent").is_not_null())
            .unique("id", keep="first")
        )

    def _scanned(
        self, entries: Sequence[FileEntry], kind: RecordKind, want: Want, columns: Sequence[str]
    ) -> pl.DataFrame:
        """The wanted rows of files without a usable index: scanned (checked first)."""
        for entry in entries:
            self.verifier.check(entry)
        return (
            pl.scan_parquet(
                [str(self.fs.path(e.path)) for e in entries],
                hive_partitioning=False,
                schema=_polars_schema(kind),
            )
            .filter(want.member)
            .select(list(columns))
            .collect()
        )

    def count(self, entries: Sequence[FileEntry], column: str, want: Want) -> int:
        """How many rows of the indexed ``entries`` hold a wanted key, from their
        indexes alone (no data file read; files without a usable index count
        nothing): a bound to check before reading them."""
        total = 0
        if len(want.lows):
            for entry in entries:
                rows = self._rows_of(entry, column, want)
                total += 0 if rows is None else int(rows.size)
        return total

    def forget(self, paths: Sequence[str]) -> None:
        """Read these index files again when next asked (they were just written)."""
        with self._lock:
            for rel in paths:
                known = self._indexes.pop(rel, None)
                if known is not None:
                    self._held -= known.nbytes

    # ------------------------------------------------------------ per file

    def _rows_of(self, entry: FileEntry, column: str, want: Want) -> np.ndarray | None:
        """The rows of a data file whose index key is wanted, from its index
        (None: it has no usable index)."""
        found = self._found(entry, column, want)
        return None if found is None else sorted_unique(found[0])

    def _found(
        self, entry: FileEntry, column: str, want: Want
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The index's pairs of a data file whose key is wanted: rows (a row once
        for each wanted key it holds) and keys (None: it has no usable index)."""
        rel = index_path(entry.path, column)
        index = self._index(rel, entry, text=want.text)
        if index is _NONE:
            return None
        if not want.text and index.keys is None and len(want.lows) * FEW_GROUPS > len(index.mins):
            # many ids: the whole index, read once and held (see `_index`)
            index = self._index(rel, entry, text=False, whole=True)
            if index is _NONE:
                return None
        if index.keys is not None and index.rows is not None:
            # in memory: each wanted prefix's run of keys, by binary search
            low = np.searchsorted(index.keys, want.lows, side="left")
            high = np.searchsorted(index.keys, want.highs, side="right")
            at = spans(low, high)
            return index.rows[at], index.keys[at]
        # The row groups whose key range meets a wanted range. An index is sorted,
        # so its groups' smallest and largest keys both rise.
        first = np.searchsorted(index.maxs, want.lows, side="left")
        last = np.searchsorted(index.mins, want.highs, side="right") - 1
        meets = first <= last
        if not meets.any():
            return _NO_ROWS, _NO_KEYS
        # (each range marks its groups: +1 at its first, -1 after its last)
        marks = np.zeros(len(index.mins) + 1, dtype=np.int64)
        np.add.at(marks, first[meets], 1)
        np.add.at(marks, last[meets] + 1, -1)
        groups = np.flatnonzero(np.cumsum(marks[:-1])).tolist()
        try:
            pairs = pq.ParquetFile(
                self.fs.path(rel), metadata=index.metadata, page_checksum_verification=True
            )
            read = pairs.read_row_groups(groups, columns=["key", "row"])
        except (OSError, pa.ArrowException):
            with self._lock:
                self._indexes[rel] = _NONE  # damaged: that file is scanned instead
            return None
        keys = read["key"].to_numpy(zero_copy_only=False)
        keep = want.keep(read["key"]) if want.text else np.isin(keys, want.lows)
        return read["row"].to_numpy()[keep], keys[keep]

    def _read_groups(
        self,
        entry: FileEntry,
        data: _Data,
        rows: np.ndarray,
        at: np.ndarray,
        groups: np.ndarray,
        columns: Sequence[str],
    ) -> pl.DataFrame:
        """``rows`` of a data file, from the row groups ``groups`` (row ``i`` is in
        group ``at[i]``), read a few groups at a time (up to `WHOLE_ROWS` rows)
        and only the rows kept: an audit file of the 10M lake holds millions of
        rows, and their citation lists decoded at once ran out of 24 GiB."""
        file = pq.ParquetFile(self.fs.path(entry.path), metadata=data.metadata)
        sizes = np.array([data.metadata.row_group(int(g)).num_rows for g in groups])
        parts = []
        start = 0
        while start < len(groups):
            end = start + 1
            while end < len(groups) and sizes[start : end + 1].sum() <= WHOLE_ROWS:
                end += 1
            chunk = groups[start:end]
            read = file.read_row_groups(chunk.tolist(), columns=list(columns))
            # each row's place in what was read: the groups read lie end to end
            offsets = np.concatenate(([0], np.cumsum(sizes[start:end])[:-1]))
            mine = (at >= chunk[0]) & (at <= chunk[-1])
            local = rows[mine] - data.starts[at[mine]] + offsets[np.searchsorted(chunk, at[mine])]
            parts.append(_frame(read.take(pa.array(local, pa.int64()))))
            start = end
        return parts[0] if len(parts) == 1 else pl.concat(parts, how="vertical")

    def _index(self, rel: str, entry: FileEntry, *, text: bool, whole: bool = False) -> _Index:
        """An index file's row groups' key ranges (from its footer); with
        ``whole``, an id index's keys and rows too, held in memory."""
        with self._lock:
            known = self._indexes.pop(rel, None)
            if known is not None:
                self._indexes[rel] = known  # the most recently used go last
        if known is not None and (known.keys is not None or not whole or known is _NONE):
            return known
        index = _NONE  # missing, unreadable or not this file's: scanned instead
        meta = known.metadata if known is not None else _footer(self.fs, rel, entry)
        try:
            if meta is not None:
                # the row groups' key ranges; a lookup reads the groups it needs
                mins, maxs = [], []
                # (an index of no keys, a file with no parent link: no ranges)
                for g in range(meta.num_row_groups if meta.num_rows else 0):
                    stats = meta.row_group(g).column(0).statistics
                    if stats is None or not stats.has_min_max:
                        raise ValueError("an index row group without statistics")
                    mins.append(stats.min)
                    maxs.append(stats.max)
                kind = np.str_ if text else np.uint64
                index = _Index(np.array(mins, kind), np.array(maxs, kind), meta)
            if meta is not None and whole:  # ids, 12 bytes a key: searched in memory
                pairs = pq.ParquetFile(
                    self.fs.path(rel), metadata=meta, page_checksum_verification=True
                ).read(columns=["key", "row"])
                keys, rows = pairs["key"].to_numpy(), pairs["row"].to_numpy()
                index = _Index(index.mins, index.maxs, meta, keys, rows)
        except (OSError, ValueError, pa.ArrowException):
            index = _NONE
        with self._lock:
            if len(self._indexes) >= self.CACHE:
                self._indexes.clear()
                self._held = 0
            before = self._indexes.pop(rel, None)  # (another thread read it too)
            self._held += index.nbytes - (0 if before is None else before.nbytes)
            self._indexes[rel] = index
            # over the budget: the longest held go first (read again when asked)
            for old in list(self._indexes):
                if self._held <= self.MEMORY:
                    break
                if old != rel:
                    self._held -= self._indexes.pop(old).nbytes
        return index

    def _data_file(self, entry: FileEntry) -> _Data:
        with self._lock:
            known = self._data.get(entry.path)
        if known is not None:
            return known
        meta = pq.read_metadata(self.fs.path(entry.path))
        sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
        data = _Data(np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64), meta)
        with self._lock:
            if len(self._data) >= self.CACHE:
                self._data.clear()
            self._data[entry.path] = data
        return data


def _frame(table: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _member(column: str, kind: RecordKind, keys: list[str]) -> pl.Expr:
    """Rows whose ``column`` holds one of ``keys`` (any element, for a list)."""
    if pa.types.is_list(spec(kind).schema.field(column).type):
        return pl.col(column).list.eval(pl.element().is_in(keys)).list.any().fill_null(False)
    return pl.col(column).is_in(keys)


@dataclass(frozen=True, slots=True)
class Keyed:
    """Rows by key from one consistent view of the lake: its manifest's files
    (through their key indexes) and the unflushed tail of the same moment."""

    indexes: KeyIndexes
    manifest: Manifest
    tails: dict[RecordKind, pa.Table]

    def scan(self, kind: RecordKind) -> pl.LazyFrame:
        """A whole table of the same view, as a lazy frame (for a small table)."""
        tail = self.tails.get(kind)
        return scan_table(
            self.indexes.fs,
            self.manifest,
            empty_table(kind) if tail is None else tail,
            kind,
            self.indexes.verifier,
        )

    def count(
        self,
        kind: RecordKind,
        column: str,
        keys: Sequence[str],
        *,
        since: int | None = None,
        until: int | None = None,
    ) -> int:
        """About how many rows `rows` would read, from the key indexes alone: the
        indexed files of the window are counted whole (rows outside the window
        too), the unflushed tail and files without an index not at all."""
        entries, want = self._lookup(kind, column, keys, since, until)
        return self.indexes.count(entries, column, want)

    def parents(
        self, ids: Sequence[str], *, since: int | None = None, until: int | None = None
    ) -> pl.DataFrame:
        """``id`` and ``parent`` of those of the assertions ``ids`` (recorded from
        ``since`` to ``until``, µs) that have a parent: only their rows are read
        (see `KeyIndexes.parents`)."""
        entries, want = self._lookup(RecordKind.ASSERTION, "id", ids, since, until)
        tail = self.tails.get(RecordKind.ASSERTION)
        return self.indexes.parents(
            entries, empty_table(RecordKind.ASSERTION) if tail is None else tail, want
        )

    def _lookup(
        self,
        kind: RecordKind,
        column: str,
        keys: Sequence[str],
        since: int | None,
        until: int | None,
    ) -> tuple[list[FileEntry], Want]:
        """The files of ``kind`` that can hold rows of the window, and the keys."""
        if column not in INDEXED.get(kind, ()):
            raise ValueError(f"{kind.table}.{column} has no key index")
        entries = [
            e
            for e in self.manifest.files_of(kind.table)
            if (since is None or e.max_time >= since) and (until is None or e.min_time <= until)
        ]
        want = (
            Want.trees(column, keys)
            if (kind, column) in TEXT_KEYS
            else Want.ids(kind, column, keys)
        )
        return entries, want

    def rows(
        self,
        kind: RecordKind,
        column: str,
        keys: Sequence[str],
        columns: Sequence[str],
        *,
        since: int | None = None,
        until: int | None = None,
        matched: bool = False,
    ) -> pl.DataFrame:
        """The rows of ``kind`` whose ``column`` (an indexed one) holds one of
        ``keys``, recorded from ``since`` to ``until`` (µs, both included). For a
        column indexed by text (``assertions.subject``), ``keys`` are subject
        trees: a row whose subject is one of them or under one. ``matched``: a
        list column of ids holds only the wanted ones (see `KeyIndexes.rows`)."""
        entries, want = self._lookup(kind, column, keys, since, until)
        tail = self.tails.get(kind)
        columns = list(dict.fromkeys(columns))
        wanted = list(columns)
        windowed = since is not None or until is not None
        if windowed and "recorded_at" not in wanted:
            wanted.append("recorded_at")
        frame = self.indexes.rows(
            entries,
            empty_table(kind) if tail is None else tail,
            kind,
            column,
            want,
            wanted,
            matched=matched,
        )
        if windowed:
            stamp = pl.col("recorded_at").dt.epoch("us")
            frame = frame.filter(
                stamp >= (since if since is not None else -(2**62)),
                stamp <= (until if until is not None else 2**62),
            ).select(columns)
        return frame
