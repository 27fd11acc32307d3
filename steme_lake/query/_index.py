"""The current-state index: every row a point query needs, in memory, found by key.

A point query must not scan the lake. This index holds the columns of each
table that resolution reads, in *runs* sorted by the 64-bit hash of their key
(``subject`` + ``predicate`` for assertions; the target id for votes,
lifecycle changes and confirmations), found with a binary search; rows newer
than the last run sit in a small dict. Supersessions, trust scores and
constraints are kept whole (they are few; supersessions are also filed by
the id, source or agent they aim at). It is built from one consistent
view of the lake and then fed every committed frame, so it always equals
the lake; it holds all history, so as-of queries use it too.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from steme_lake._utils.arrays import sorted_unique
from steme_lake.model.schema import RecordKind
from steme_lake.query._answer import Candidates, decode_value
from steme_lake.query._candidates import (
    ASSERTION_COLUMNS,
    GROUP,
    Tables,
    candidates,
    decayed,
    effective,
)
from steme_lake.query._current import (
    MAX_ROWS,
    ROW_COST,
    SEP,
    WINNER,
    CurrentAnswers,
    Slot,
    Summary,
    Watch,
)
from steme_lake.query._current import at as current_at
from steme_lake.query._lookups import ORDER_COLUMNS, ORDER_SCHEMA, RunLookups
from steme_lake.query._options import ResolutionOptions
from steme_lake.storage.keyindex import _under, spans
from steme_lake.storage.tables import empty_table

__all__ = ["HASH", "PointRows", "StateIndex"]

log = logging.getLogger(__name__)

RUN_ROWS = 20_000  # recent rows sealed into a sorted run
BULK_ROWS = 1_000  # a commit this large becomes a run of its own at once
PENDING_CHUNKS = 256  # recent frames are concatenated into one when this many
MAX_RUNS = 12  # runs are merged when they grow past this many (see `_Runs.add_run`)
MERGE_RUNS = 3  # runs of about one size merged at once
HOT_ROWS = 1_000  # a key with more assertions is resolved by the vectorized lenses
# A key with more assertions has its current recency answer remembered (see
# `_current.py`): resolved a row at a time, 250 take about 5 ms, against 1.4 ms
# for an answer brought forward (both with the audit record; 1M benchmark lake).
# Below that the gain is small for the memory a Python row takes.
REMEMBER_ROWS = 250
# A commit's new assertions join the remembered answers of the watched keys they
# are on (`CurrentAnswers.grow`, under the lock: 0.35 ms for a key of 27,000
# candidates; one durable write on such a key took 1.4 ms in-process, 0.7 ms on
# another key, against 30-50 ms for the next question to resolve it) when they
# touch at most this many such keys, with at most this many rows: what agents
# write as they go. A bulk import that touches more makes them stale instead.
GROW_KEYS = 16
GROW_ROWS = 1_000

_A = ASSERTION_COLUMNS
_WRITTEN = ["id", "agent", "subject", "recorded_at"]  # what `StateIndex.written` returns
_KEYED: dict[RecordKind, tuple[str, list[str]]] = {
    RecordKind.ASSERTION: ("_key", _A),
    RecordKind.VOTE: ("target", ["id", "recorded_at", "target", "agent", "weight"]),
    RecordKind.LIFECYCLE: ("target", ["id", "recorded_at", "target", "stage"]),
    RecordKind.CONFIRMATION: ("target", ["id", "recorded_at", "target"]),
}
_WHOLE: dict[RecordKind, list[str]] = {
    RecordKind.SUPERSESSION: [
        "id",
        "recorded_at",
        "scope",
        "target",
        "source_hash",
        "target_agent",
        "window_start",
        "window_end",
    ],
    RecordKind.TRUST: ["id", "recorded_at", "agent", "topic", "score"],
}


def _ints(frame: pl.DataFrame | pl.LazyFrame) -> Any:
    """Times as integer microseconds: cheap to compare in Python."""
    return frame.with_columns(pl.col(pl.Datetime).dt.epoch("us"))


def _key_hash(keys: pl.Series) -> np.ndarray:
    return keys.hash().to_numpy()


# The hashes of keys asked about lately. Hashing one string through Polars costs
# about 50 µs (a Series built and hashed), more than the search it serves; agents
# ask about the same keys and assertion ids again and again.
_HASHED: dict[str, int] = {}
_HASHED_MAX = 1 << 16
_HASHED_DIRECT = 2048


def _hashes_of(values: list[str]) -> np.ndarray:
    """`_key_hash` of ``values``, remembered for the keys asked about lately."""
    if len(values) > _HASHED_DIRECT:
        # A busy key's assertion ids (tens of thousands): hashed at once through
        # Polars (2 ms for 25k), not looked up one by one (20 ms, and they would
        # push out the keys asked about lately).
        return _key_hash(pl.Series(values, dtype=pl.String))
    cache = _HASHED
    known = [cache.get(v) for v in values]
    missing = [v for v, h in zip(values, known, strict=True) if h is None]
    if missing:
        hashed = _key_hash(pl.Series(missing, dtype=pl.String)).tolist()
        if len(cache) + len(missing) > _HASHED_MAX:
            cache.clear()  # cheaper than an LRU's bookkeeping on every question
        cache.update(zip(missing, hashed, strict=True))
        fresh = iter(hashed)
        known = [next(fresh) if h is None else h for h in known]
    return np.array(known, dtype=np.uint64)


@functools.cache  # frames are immutable: one empty frame per kind serves every caller
def _empty(kind: RecordKind) -> pl.DataFrame:
    frame = pl.from_arrow(empty_table(kind))
    assert isinstance(frame, pl.DataFrame)
    return frame


_TIME = pl.Datetime("us", "UTC")
_TIMES = {
    kind: [f.name for f in empty_table(kind).schema if pa.types.is_timestamp(f.type)]
    for kind in RecordKind
}


def _with_times(frame: pl.DataFrame, kind: RecordKind) -> pl.DataFrame:
    """The index's integer microseconds back as the lake's UTC datetimes."""
    names = [n for n in _TIMES[kind] if n in frame.schema]
    return frame.with_columns(pl.col(n).cast(pl.Datetime("us", "UTC")) for n in names)


_SLICES = 8  # up to this many keys found in a run are sliced out of it, not gathered


def _by_hash(frame: pl.DataFrame, hashes: np.ndarray) -> tuple[np.ndarray, pl.DataFrame]:
    """The rows sorted by key hash (stable: equal hashes keep their order), and
    the sorted hashes. Polars sorts and moves the rows in one parallel pass: a
    gather by a NumPy order took 9 s for the 10M assertions of the benchmark
    lake, the sort takes 2."""
    ordered = frame.with_columns(pl.Series(_HASH, hashes)).sort(_HASH, maintain_order=True)
    return ordered[_HASH].to_numpy(), ordered.drop(_HASH)


def _merged(runs: Sequence[tuple[np.ndarray, pl.DataFrame]]) -> tuple[np.ndarray, pl.DataFrame]:
    """Runs side by side as one (their rows in order among equal hashes)."""
    merged = pl.concat([f for _, f in runs], how="vertical")
    return _by_hash(merged, np.concatenate([h for h, _ in runs]))


_HASH = "__steme_key_hash"
HASH = "_hash"  # a checkpoint's run: its key hashes, beside the rows


class _Runs:
    """Sorted runs of one table, searchable by key hash, plus recent rows by key."""

    def __init__(self, key: str, schema: pl.Schema) -> None:
        self.key = key
        self.schema = schema  # of the runs' frames (and of the recent rows)
        self.runs: list[tuple[np.ndarray, pl.DataFrame]] = []
        self.recent: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.pending: list[pa.Table] = []  # raw frames behind ``recent``
        self.pending_rows = 0

    def add_run(self, frame: pl.DataFrame, *, merge: bool = True) -> None:
        """Add rows as a sorted run. Runs are merged in tiers, as in a
        log-structured merge tree: the last `MERGE_RUNS` become one once they are
        of about one size (the oldest less than twice the newest), and the last
        two whenever there are more than `MAX_RUNS`. Each row is re-sorted
        O(log n) times, not once per new run; three at a time re-sorts about 40%
        fewer rows than two (simulated: 5.6 against 9.3 sorts a row for 720
        batches of 13,880). ``merge=False``: the merges are left to
        `StateIndex`'s merger (see `StateIndex.add_frames`)."""
        if frame.height == 0:
            return
        self.runs.append(self.sorted_run(frame))
        while merge and (k := self.to_merge()):
            self.runs[-k:] = [_merged(self.runs[-k:])]

    def sorted_run(self, frame: pl.DataFrame) -> tuple[np.ndarray, pl.DataFrame]:
        """``frame`` as a run: its key hashes, and its rows sorted by them."""
        return _by_hash(frame, _key_hash(frame[self.key]))

    def to_merge(self) -> int:
        """How many of the last runs to merge now (0: none; see `add_run`)."""
        runs = self.runs
        if len(runs) >= MERGE_RUNS and len(runs[-MERGE_RUNS][0]) < 2 * len(runs[-1][0]):
            return MERGE_RUNS
        return 2 if len(runs) > MAX_RUNS else 0

    def add_recent(
        self,
        rows: list[dict[str, Any]],
        raw: pa.Table,
        kind: RecordKind,
        run: tuple[np.ndarray, pl.DataFrame] | None = None,
    ) -> None:
        """Add committed rows: a bulk commit (``run``: sorted already) as a run of
        its own, left unmerged; else as recent rows, sealed into a run when
        there are `RUN_ROWS` of them."""
        if run is not None:
            if len(run[0]):
                self.runs.append(run)
            return
        for row in rows:
            self.recent[row[self.key]].append(row)
        # Only the index's columns, and few chunks: sealing thousands of one-row
        # frames of every column took 700 ms, in the commit path.
        self.pending.append(raw.select(_KEYED[kind][1]))
        if len(self.pending) >= PENDING_CHUNKS:
            self.pending = [pa.concat_tables(self.pending).combine_chunks()]
        self.pending_rows += len(rows)
        if self.pending_rows >= RUN_ROWS:
            frame = pl.from_arrow(pa.concat_tables(self.pending))
            assert isinstance(frame, pl.DataFrame)
            self.add_run(StateIndex._prepare(kind, frame), merge=False)
            self.pending, self.pending_rows = [], 0
            self.recent = defaultdict(list)

    def split(self, kind: RecordKind) -> tuple[list[pl.DataFrame], pl.DataFrame]:
        """The runs' frames and the recent rows as one frame. Call with the
        index's lock held."""
        runs = [frame for _, frame in self.runs]
        if not self.pending:
            return runs, self.schema.to_frame()
        recent = pl.from_arrow(pa.concat_tables(self.pending))
        assert isinstance(recent, pl.DataFrame)
        return runs, StateIndex._prepare(kind, recent)

    def whole(self, kind: RecordKind) -> pl.DataFrame:
        """Every row, in no particular order, as one frame (the runs' own chunks,
        not copied, and the recent rows). Call with the index's lock held."""
        parts = [frame for _, frame in self.runs]
        if self.pending:
            recent = pl.from_arrow(pa.concat_tables(self.pending))
            assert isinstance(recent, pl.DataFrame)
            parts.append(StateIndex._prepare(kind, recent))
        if not parts:
            return self.schema.to_frame()
        return parts[0] if len(parts) == 1 else pl.concat(parts, how="vertical", rechunk=False)

    def lookup(self, value: str) -> list[dict[str, Any]]:
        return self.lookup_many([value]).get(value, [])

    def _gathered(self, values: list[str] | pl.Series) -> Iterable[pl.DataFrame]:
        """The rows of each run whose key hash is one of ``values``' hashes: one
        vectorized search and one gather per run. ``values`` as a Series (a busy
        key's assertion ids) are hashed as they are, not made a Series again."""
        if not self.runs or not len(values):
            return
        wanted = _hashes_of(values) if isinstance(values, list) else _key_hash(values)
        # Sorted, NumPy's binary search starts each key where the last ended (25k
        # assertion ids in a run of 10M, 29 ms against 180 in the ids' order); and
        # distinct, so that ids sharing a hash do not gather its rows twice.
        wanted = sorted_unique(wanted)
        for hashes, frame in self.runs:
            if not len(hashes):
                continue
            lo = np.searchsorted(hashes, wanted, "left")
            # Found where the hash at ``lo`` is the one wanted; only those are
            # searched for their end (most of a busy key's ids have no lifecycle
            # change or vote in a given run).
            hit = hashes[np.minimum(lo, len(hashes) - 1)] == wanted
            if not hit.any():
                continue
            lo = lo[hit]
            hi = np.searchsorted(hashes, wanted[hit], "right")
            if len(lo) <= _SLICES:
                # A key's rows are contiguous in a run: zero-copy slices beat a gather.
                for a, b in zip(lo.tolist(), hi.tolist(), strict=True):
                    yield frame.slice(a, b - a)
                continue
            # every row from lo[i] to hi[i], without a Python loop over the keys
            yield frame[spans(lo, hi)]

    def lookup_many(self, values: list[str]) -> dict[str, list[dict[str, Any]]]:
        """The rows of each key in ``values``: one hash of all the keys, one
        vectorized search and at most one gather per run (a point query asks for
        the votes of hundreds of assertions at once)."""
        out: dict[str, list[dict[str, Any]]] = {v: [] for v in values}
        if not out:
            return out
        key = self.key
        for frame in self._gathered(list(out)):
            for r in frame.rows(named=True):
                found = out.get(r[key])
                if found is not None:  # a hash collision is not a match
                    found.append(r)
        for v in out:
            recent = self.recent.get(v)
            if recent:
                out[v].extend(recent)
        return out

    def lookup_parts(
        self, values: list[str] | pl.Series
    ) -> tuple[list[pl.DataFrame], list[dict[str, Any]]]:
        """The rows of the keys in ``values`` (distinct) as they are stored: frames
        gathered from the runs (which may hold hash collisions) and recent rows."""
        recent_keys = self.recent
        if not recent_keys:
            recent = []
        elif isinstance(values, pl.Series):  # (thousands of ids: no Python set of them)
            keys = list(recent_keys)
            mine = pl.Series(keys, dtype=pl.String).is_in(values.implode()).to_list()
            recent = [r for k, m in zip(keys, mine, strict=True) if m for r in recent_keys[k]]
        elif len(recent_keys) < len(values):  # few recent keys: look the other way round
            wanted = set(values)
            recent = [r for k, rs in recent_keys.items() if k in wanted for r in rs]
        else:
            recent = [r for v in values for r in recent_keys.get(v, ())]
        return list(self._gathered(values)), recent

    def lookup_frame(self, values: list[str] | pl.Series) -> pl.DataFrame:
        """The rows of the keys in ``values`` (distinct) as one frame (no Python rows)."""
        parts, recent = self.lookup_parts(values)
        return self._frame_of(parts, recent, values)

    def _frame_of(
        self,
        parts: list[pl.DataFrame],
        recent: list[dict[str, Any]],
        values: list[str] | pl.Series,
    ) -> pl.DataFrame:
        if parts:
            found = pl.concat(parts, how="vertical")
            if isinstance(values, pl.Series):  # (thousands: 1.1 ms, is_in 2.1, a list 12)
                wanted = values.rename(self.key).to_frame()
                found = found.join(wanted, on=self.key, how="semi", maintain_order="left")
            else:
                found = found.filter(pl.col(self.key).is_in(values))
            parts = [found]  # (not hash collisions)
        if recent:
            parts.append(pl.DataFrame(recent, schema=self.schema))
        if not parts:
            return pl.DataFrame(schema=self.schema)
        return parts[0] if len(parts) == 1 else pl.concat(parts, how="vertical")


class _Frame:
    __slots__ = ("kind", "table")

    def __init__(self, kind: int, table: Any) -> None:
        self.kind, self.table = kind, table


class PointRows:
    """Everything about one (subject, predicate) that resolution may read.

    A key with at most `HOT_ROWS` assertions is read as Python rows (the plain
    Python lenses of ``_point.py``: microseconds). A hot key (a busy topic can
    have tens of thousands) is ``hot``: `tables` gives its rows as frames for
    the vectorized lenses, and no Python row is made for it."""

    __slots__ = (
        "_assertions",
        "_by_kind",
        "_frames",
        "_ids",
        "frame",
        "hot",
        "index",
        "watch",
    )

    def __init__(self, index: StateIndex, subject: str, predicate: str) -> None:
        self.index = index
        runs = index.keyed[RecordKind.ASSERTION]
        key = [subject + SEP + predicate]
        parts, recent = runs.lookup_parts(key)
        # Found when asked: recency needs no votes, no decay needs no confirmations.
        self._assertions: list[dict[str, Any]] | None = None
        self._by_kind: dict[RecordKind, dict[str, list[dict[str, Any]]]] = {}
        # a hot key's frames by kind, gathered once (votes are not: a vote does
        # not touch the key, see `_current.py`)
        self._frames: dict[RecordKind, pl.LazyFrame] = {}
        self.frame: pl.DataFrame | None = None
        if sum(p.height for p in parts) + len(recent) > HOT_ROWS:
            if recent:
                parts = [*parts, pl.DataFrame(recent, schema=runs.schema)]
            frame = parts[0] if len(parts) == 1 else pl.concat(parts, how="vertical")
            # One filter leaves out both the hash collisions and another key
            # joined the same (the key joins them with SEP: a subject may hold it).
            self.frame = frame.filter(
                (pl.col("subject") == subject) & (pl.col("predicate") == predicate)
            )
            self._ids: list[str] | None = None  # (made when asked: 1 ms for 25k)
        else:  # a few rows: Python rows straight away (no frame operations)
            found = [r for p in parts for r in p.rows(named=True)]
            self._assertions = [
                r
                for r in (*found, *recent)
                if r["subject"] == subject and r["predicate"] == predicate
            ]
            self._ids = [r["id"] for r in self._assertions]
        held = self.frame.height if self.frame is not None else len(self._ids or ())
        self.hot = held > HOT_ROWS
        self.watch: Watch | None = None  # set by `StateIndex.rows(watch=True)`

    @property
    def ids(self) -> list[str]:
        """The key's assertion ids."""
        if self._ids is None:
            assert self.frame is not None
            self._ids = self.frame["id"].to_list()
        return self._ids

    @property
    def assertions(self) -> list[dict[str, Any]]:
        if self._assertions is None:
            assert self.frame is not None
            self._assertions = self.frame.rows(named=True)
        return self._assertions

    def _keyed(self, kind: RecordKind) -> dict[str, list[dict[str, Any]]]:
        """The rows of ``kind`` aimed at this key's assertions, found on first use."""
        found = self._by_kind.get(kind)
        if found is None:
            with self.index.lock:
                found = self.index.keyed[kind].lookup_many(self.ids)
            self._by_kind[kind] = found
        return found

    @property
    def lifecycle(self) -> dict[str, list[dict[str, Any]]]:
        return self._keyed(RecordKind.LIFECYCLE)

    @property
    def votes(self) -> dict[str, list[dict[str, Any]]]:
        return self._keyed(RecordKind.VOTE)

    @property
    def confirmations(self) -> dict[str, list[dict[str, Any]]]:
        return self._keyed(RecordKind.CONFIRMATION)

    def tables(self, *, votes: bool, confirmations: bool) -> Tables:
        """This key's rows as the lake's `Tables` (the vectorized lenses' input):
        its assertions, their lifecycle changes (and votes and confirmations when
        asked for), every supersession and trust score; no constraints."""
        index = self.index

        def keyed(kind: RecordKind, wanted: bool) -> pl.LazyFrame:
            if wanted:
                known = self._frames.get(kind)
                if known is not None:
                    return known
            runs = index.keyed[kind]
            with index.lock:
                if not wanted:
                    found = runs.schema.to_frame()
                else:  # a busy key's ids as the Series they came in, not its list
                    found = runs.lookup_frame(self.ids if self.frame is None else self.frame["id"])
            lazy = _with_times(found, kind).lazy()
            if wanted and kind is not RecordKind.VOTE:
                self._frames[kind] = lazy
            return lazy

        def whole(kind: RecordKind) -> pl.LazyFrame:
            with index.lock:
                found = index.whole_frame(kind)
            return _with_times(found, kind).lazy()

        frame = self.frame
        if frame is None:  # a few rows, kept as Python rows: their frame, made here
            schema = index.keyed[RecordKind.ASSERTION].schema
            frame = pl.DataFrame(
                [{name: r.get(name) for name in schema} for r in self.assertions],
                schema=schema,
                orient="row",
            )
        assertions = self._frames.get(RecordKind.ASSERTION)
        if assertions is None:
            assertions = _with_times(frame, RecordKind.ASSERTION).lazy()
            if self.frame is not None:
                self._frames[RecordKind.ASSERTION] = assertions
        return Tables(
            assertions=assertions,
            votes=keyed(RecordKind.VOTE, votes),
            lifecycle=keyed(RecordKind.LIFECYCLE, True),
            supersessions=whole(RecordKind.SUPERSESSION),
            constraints=_empty(RecordKind.CONSTRAINT).lazy(),
            confirmations=keyed(RecordKind.CONFIRMATION, confirmations),
            trust=whole(RecordKind.TRUST),
        )

    def supersessions(self, a: dict[str, Any]) -> list[dict[str, Any]]:
        """The supersessions that could cover assertion ``a``: those aimed at its
        id, its source or its agent (each still checked by scope and time)."""
        sup = self.index.supersessions
        return [
            *sup.by_target.get(a["id"], ()),
            *sup.by_source.get(a["source_hash"], ()),
            *sup.by_agent.get(a["agent"], ()),
        ]

    def trust(self, agent: str) -> list[dict[str, Any]]:
        return self.index.trust_by_agent.get(agent, [])


class _Supersessions:
    """Supersessions by what they aim at: an assertion id, a source, an agent.
    A candidate is checked against its own few, never against all of them."""

    def __init__(self) -> None:
        self.by_target: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.by_source: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.by_agent: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def add(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            scope = row["scope"]
            if scope == "assertion":
                self.by_target[row["target"]].append(row)
            elif scope == "source":
                self.by_source[row["source_hash"]].append(row)
            elif scope == "agent_window":
                self.by_agent[row["target_agent"]].append(row)


class StateIndex:
    """The in-memory current-state index of one lake (see the module docstring)."""

    def __init__(self) -> None:
        self.keyed = {
            kind: _Runs(key, self._prepare(kind, _empty(kind)).schema)
            for kind, (key, _) in _KEYED.items()
        }
        self.whole: dict[RecordKind, list[dict[str, Any]]] = {kind: [] for kind in _WHOLE}
        # `whole` as frames (for hot keys), caught up with it when asked.
        self._whole_frames: dict[RecordKind, pl.DataFrame] = {
            kind: self._prepare(kind, _empty(kind)) for kind in _WHOLE
        }
        self.trust_by_agent: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.supersessions = _Supersessions()
        self.current = CurrentAnswers()  # busy keys' answers (see `_current.py`)
        self.lookups = RunLookups()  # assertions by id and by agent (see `_lookups.py`)
        self.latest = -(2**63)  # the greatest recorded_at held (µs)
        self.seq = 0  # the highest sequence number held (every row up to it is here)
        self.lock = threading.Lock()
        # The merges of runs commits made, on a thread of their own (see `add_frames`).
        self._merging = threading.Condition(self.lock)
        self._merger: threading.Thread | None = None
        self.merge_error: BaseException | None = None

    @staticmethod
    def _prepare(kind: RecordKind, frame: pl.DataFrame | pl.LazyFrame) -> Any:
        if kind in _KEYED:
            columns = _KEYED[kind][1]
            selected = frame.select(columns)
            if kind is RecordKind.ASSERTION:
                selected = selected.with_columns(
                    (pl.col("subject") + SEP + pl.col("predicate")).alias("_key")
                )
            return _ints(selected)
        return _ints(frame.select(_WHOLE[kind]))

    @classmethod
    def build(cls, tables: Tables) -> StateIndex:
        """Load the index from a consistent view of the lake."""
        index = cls()
        index.extend(tables)
        return index

    def extend(self, tables: Tables) -> None:
        """Add every row of ``tables`` (one view of the lake, or of the part of it
        a checkpoint does not hold), each table as one sorted run."""
        index = self
        cls = type(self)
        sources = {
            RecordKind.ASSERTION: tables.assertions,
            RecordKind.VOTE: tables.votes,
            RecordKind.LIFECYCLE: tables.lifecycle,
            RecordKind.CONFIRMATION: tables.confirmations,
            RecordKind.SUPERSESSION: tables.supersessions,
            RecordKind.TRUST: tables.trust,
        }
        frames = pl.collect_all([cls._prepare(kind, lf) for kind, lf in sources.items()])
        for (kind, _), frame in zip(sources.items(), frames, strict=True):
            if frame.height:
                index.latest = max(index.latest, int(frame["recorded_at"].max()))  # type: ignore[arg-type]
            if kind in _KEYED:
                index.keyed[kind].add_run(frame)
            else:
                index._add_whole(kind, frame)
        # (runs merged by `add_run`: their orders go with them)
        index.lookups.keep([f for _, f in index.keyed[RecordKind.ASSERTION].runs])

    def held(self) -> int:
        """How many rows the index holds."""
        with self.lock:
            keyed = sum(
                sum(len(h) for h, _ in runs.runs) + runs.pending_rows
                for runs in self.keyed.values()
            )
            return keyed + sum(len(rows) for rows in self.whole.values())

    def parts(self) -> tuple[int, int, dict[RecordKind, list[pl.DataFrame]]]:
        """What a checkpoint holds (`_checkpoint.py`): the highest sequence number
        and time held, and each table's frames: a keyed table's sorted runs, each
        with its key hashes as a column (`HASH`), the recent rows as one more; a
        table kept whole as one frame; the assertions' runs with their lookups'
        orders as columns (`_lookups.ORDER_COLUMNS`: made now where they are
        not yet). The frames are the index's own (immutable)."""
        with self.lock:
            seq, latest = self.seq, self.latest
            runs = {kind: (list(r.runs), list(r.pending)) for kind, r in self.keyed.items()}
            whole = {kind: self.whole_frame(kind) for kind in _WHOLE}
        out: dict[RecordKind, list[pl.DataFrame]] = {}
        for kind, (sealed, pending) in runs.items():
            if pending:
                recent = pl.from_arrow(pa.concat_tables(pending))
                assert isinstance(recent, pl.DataFrame)
                prepared = self._prepare(kind, recent)
                sealed.append(_by_hash(prepared, _key_hash(prepared[_KEYED[kind][0]])))
            if kind is RecordKind.ASSERTION:  # (with the lookups' orders: `_lookups`)
                out[kind] = [
                    f.with_columns(pl.Series(HASH, h), *self.lookups.columns(f))
                    for h, f in sealed
                    if len(h)
                ]
                continue
            out[kind] = [f.with_columns(pl.Series(HASH, h)) for h, f in sealed if len(h)]
        for kind, frame in whole.items():
            out[kind] = [frame]
        return seq, latest, out

    @classmethod
    def from_parts(
        cls, seq: int, latest: int, parts: dict[RecordKind, list[pl.DataFrame]]
    ) -> StateIndex:
        """An index holding what `parts` gave (a checkpoint, read back)."""
        index = cls()
        index.seq, index.latest = seq, latest
        for kind, frames in parts.items():
            if kind in _KEYED:
                runs = index.keyed[kind]
                for frame in frames:
                    hashes = frame[HASH].to_numpy()
                    run = frame.drop(HASH, *(c for c in ORDER_COLUMNS if c in frame.columns))
                    runs.runs.append((hashes, run))
                    if kind is RecordKind.ASSERTION and ORDER_COLUMNS[0] in frame.columns:
                        index.lookups.adopt(run, frame.select(ORDER_COLUMNS))
            else:
                for frame in frames:
                    index._add_whole(kind, frame)
                    index._whole_frames[kind] = frame
        return index

    @staticmethod
    def schemas() -> dict[RecordKind, pl.Schema]:
        """The columns of each table's frames, as `parts` gives them."""
        out = {}
        for kind in (*_KEYED, *_WHOLE):
            frame = StateIndex._prepare(kind, _empty(kind))
            if kind in _KEYED:
                frame = frame.with_columns(pl.Series(HASH, [], dtype=pl.UInt64))
            if kind is RecordKind.ASSERTION:
                frame = frame.with_columns(
                    pl.Series(name, [], dtype=dtype) for name, dtype in ORDER_SCHEMA.items()
                )
            out[kind] = frame.schema
        return out

    @staticmethod
    def key_hashes(kind: RecordKind, frame: pl.DataFrame) -> np.ndarray:
        """The key hashes of a keyed table's rows, as the index computes them."""
        return _key_hash(frame[_KEYED[kind][0]])

    def whole_frame(self, kind: RecordKind) -> pl.DataFrame:
        """The rows of a table kept whole, as one frame (call with the lock held)."""
        frame = self._whole_frames[kind]
        rows = self.whole[kind]
        if frame.height < len(rows):
            more = pl.DataFrame(rows[frame.height :], schema=frame.schema)
            frame = pl.concat([frame, more], how="vertical").rechunk()
            self._whole_frames[kind] = frame
        return frame

    def tables(self) -> Tables:
        """Every row the index holds, as the lake's `Tables`, in memory: what a
        whole-lake snapshot or diff resolves from, with no file to open or decode.
        The columns resolution reads only, and no constraints (resolution reads
        none). The frames are taken now: later commits do not change them."""
        with self.lock:
            keyed = {kind: runs.whole(kind) for kind, runs in self.keyed.items()}
            whole = {kind: self.whole_frame(kind) for kind in _WHOLE}

        def lazy(kind: RecordKind, frame: pl.DataFrame) -> pl.LazyFrame:
            return _with_times(frame, kind).lazy()

        return Tables(
            assertions=lazy(RecordKind.ASSERTION, keyed[RecordKind.ASSERTION].drop("_key")),
            votes=lazy(RecordKind.VOTE, keyed[RecordKind.VOTE]),
            lifecycle=lazy(RecordKind.LIFECYCLE, keyed[RecordKind.LIFECYCLE]),
            supersessions=lazy(RecordKind.SUPERSESSION, whole[RecordKind.SUPERSESSION]),
            constraints=_empty(RecordKind.CONSTRAINT).lazy(),
            confirmations=lazy(RecordKind.CONFIRMATION, keyed[RecordKind.CONFIRMATION]),
            trust=lazy(RecordKind.TRUST, whole[RecordKind.TRUST]),
        )

    def _add_whole(self, kind: RecordKind, frame: pl.DataFrame) -> None:
        rows = frame.rows(named=True)
        self._extend_whole(kind, rows)

    def _extend_whole(self, kind: RecordKind, rows: list[dict[str, Any]]) -> None:
        self.whole[kind].extend(rows)
        if kind is RecordKind.TRUST:
            for row in rows:
                self.trust_by_agent[row["agent"]].append(row)
        elif kind is RecordKind.SUPERSESSION:
            self.supersessions.add(rows)

    @staticmethod
    def _rows(kind: RecordKind, table: pa.Table) -> list[dict[str, Any]]:
        """The rows `_prepare` would make, straight from Arrow (no Polars: this is
        on every commit's path, and frames are small)."""
        columns = _KEYED[kind][1] if kind in _KEYED else _WHOLE[kind]
        picked = table.select(columns)
        for i, field in enumerate(picked.schema):
            if pa.types.is_timestamp(field.type):
                picked = picked.set_column(i, field.name, picked.column(i).cast(pa.int64()))
        rows: list[dict[str, Any]] = picked.to_pylist()
        if kind is RecordKind.ASSERTION:
            for row in rows:
                row["_key"] = row["subject"] + SEP + row["predicate"]
        return rows

    def add(self, kind: int, table: Any) -> None:
        """Feed one committed frame (an Arrow table of its kind)."""
        self.add_frames([_Frame(kind, table)])

    def add_frames(self, frames: Iterable[Any]) -> None:
        """Feed committed frames; frames of one kind are handled together."""
        by_kind: dict[RecordKind, list[pa.Table]] = defaultdict(list)
        seq = 0
        for frame in frames:
            seq = max(seq, getattr(frame, "seq", 0))
            try:
                kind = RecordKind(frame.kind)
            except ValueError:
                continue
            if kind in _KEYED or kind in _WHOLE:
                by_kind[kind].append(frame.table)
        for kind, tables in by_kind.items():
            raw = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
            bulk = kind in _KEYED and raw.num_rows >= BULK_ROWS
            rows = [] if bulk else self._rows(kind, raw)
            run = None
            if bulk:  # sorted before the lock is taken: readers wait for none of it
                frame = pl.from_arrow(raw.select(_KEYED[kind][1]))  # (only what it keeps)
                assert isinstance(frame, pl.DataFrame)
                run = self.keyed[kind].sorted_run(self._prepare(kind, frame))
            newest = pc.max(raw["recorded_at"]).cast(pa.int64()).as_py() if raw.num_rows else None
            with self.lock:
                if kind in _KEYED:
                    self.keyed[kind].add_recent(rows, raw, kind, run)
                    self._merge_later()
                else:
                    self._extend_whole(kind, rows)
                if newest is not None and newest > self.latest:
                    self.latest = newest
                if self.current.watching:  # in the same hold: no reader sees one alone
                    self._touch(kind, raw, rows)
        if seq > self.seq:
            with self.lock:
                self.seq = max(self.seq, seq)

    def _merge_later(self) -> None:
        """Start the merger if runs are due a merge and it is not running (call
        with the lock held). Commits only add runs; the merger merges them, a
        few at a time, outside the lock: a merge of millions of rows in the
        commit path held back that commit and, under the lock, every reader."""
        if self._merger is not None or self.merge_error is not None:
            return  # (after a failure, logged: the runs stay unmerged, slower, not wrong)
        if not any(r.to_merge() for r in self.keyed.values()):
            return
        self._merger = threading.Thread(target=self._merge, name="steme-index-merge", daemon=True)
        self._merger.start()

    def _merge(self) -> None:
        """Merge runs until none is due (`_Runs.to_merge`). The runs merged are
        replaced by the result only if they are still there side by side (only
        this thread removes runs; commits add them after): a reader sees either
        the runs or their merge, the same rows in the same order."""
        try:
            while True:
                with self.lock:
                    due = [(r, k) for r in self.keyed.values() if (k := r.to_merge())]
                    if not due:
                        break
                    runs, k = due[0]
                    parts = runs.runs[-k:]
                merged = _merged(parts)
                with self.lock:
                    at = next(i for i, r in enumerate(runs.runs) if r is parts[0])
                    assert all(a is b for a, b in zip(runs.runs[at : at + k], parts, strict=True))
                    runs.runs[at : at + k] = [merged]
                    left = [f for _, f in runs.runs]
                if runs is self.keyed[RecordKind.ASSERTION]:
                    self.lookups.keep(left)  # (the merged runs' orders hold their frames)
        except BaseException as exc:  # the runs stay as they were: slower, not wrong
            log.exception("the state index's runs could not be merged")
            with self.lock:
                self.merge_error = exc
        finally:
            with self.lock:
                self._merger = None
                self._merging.notify_all()

    def settle(self) -> None:
        """Wait until no merge is running (tests, and a checkpoint's writer)."""
        with self.lock:
            while self._merger is not None:
                self._merging.wait()

    def _touch(self, kind: RecordKind, raw: pa.Table, rows: list[dict[str, Any]]) -> None:
        """Mark the remembered answers these rows may change as stale (what a
        recency answer reads: assertions, lifecycle, confirmations, supersessions).
        New assertions on a watched key are taken into its answers instead
        (`CurrentAnswers.grow`), unless something already aims at one of them.
        ``rows``: ``raw`` as the index's rows, or none (a bulk commit's)."""
        current = self.current
        if kind is RecordKind.ASSERTION:
            keys = pc.binary_join_element_wise(raw["subject"], raw["predicate"], SEP)
            listed = keys.to_pylist()
            distinct = set(listed)
            current.written(distinct)
            mapped = current.mapped(distinct)
            if mapped:  # their summaries' id map takes the new ids in, whatever else happens
                mine = pc.is_in(keys, pa.array(sorted(mapped), pa.string()))
                ids = pl.Series(raw["id"].filter(mine)).cast(pl.String)
                current.map_ids(ids, keys.filter(mine).to_pylist())
            watched = current.watched(distinct)
            if not watched:
                return
            if len(watched) > GROW_KEYS or sum(k in watched for k in listed) > GROW_ROWS:
                current.touch_keys(watched)  # a bulk import: worked out again when asked
                return
            if not rows or len(rows) != raw.num_rows:
                mine = pc.is_in(keys, pa.array(sorted(watched), pa.string()))
                rows = self._rows(kind, raw.filter(mine))
            new: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for row in rows:
                if row["_key"] in watched:
                    new[row["_key"]].append(row)
            aimed = self._aimed([r["id"] for found in new.values() for r in found])
            sup = self.supersessions
            stale = {
                key
                for key, found in new.items()
                if any(
                    r["id"] in aimed
                    or r["id"] in sup.by_target
                    or r["source_hash"] in sup.by_source
                    or r["agent"] in sup.by_agent
                    for r in found
                )
            }
            current.touch_keys(stale)
            current.grow({k: v for k, v in new.items() if k not in stale}, hot_rows=HOT_ROWS)
        elif kind in (RecordKind.LIFECYCLE, RecordKind.CONFIRMATION):
            current.touch_ids(raw["target"].to_pylist())
        elif kind is RecordKind.SUPERSESSION:
            current.touch_all()

    def _aimed(self, ids: list[str]) -> set[str]:
        """Those of ``ids`` that a lifecycle change or a confirmation the index
        holds is aimed at (call with the lock held)."""
        out: set[str] = set()
        for kind in (RecordKind.LIFECYCLE, RecordKind.CONFIRMATION):
            out.update(k for k, v in self.keyed[kind].lookup_many(ids).items() if v)
        return out

    def written(
        self, subjects: Sequence[str], agents: Sequence[str], since: int, until: int | None
    ) -> pl.DataFrame:
        """The assertions by one of ``agents`` on one of ``subjects`` or under one,
        recorded from ``since`` to ``until`` (µs, both included): ``id``,
        ``agent``, ``subject``, ``recorded_at``. What an impact's receivers wrote
        afterwards (`lake._impact`), from memory: through the subject key index
        it read whole subject trees (tens of thousands of rows at 1M), then kept
        the receivers' few; a filter of every row held took 54 ms at 1M: now
        only the agents' rows on the trees are read (`_lookups`)."""
        with self.lock:
            runs, recent = self.keyed[RecordKind.ASSERTION].split(RecordKind.ASSERTION)
        if not subjects:
            return _with_times(recent.select(_WRITTEN).clear(), RecordKind.ASSERTION)
        subject = pl.col("subject")
        # a few trees: each a comparison and a prefix test (splitting every path
        # into its parts, as `_under` does for thousands of trees, cost 40 ms at 1M)
        under = (
            pl.any_horizontal(
                [(subject == root) | subject.str.starts_with(root + "/") for root in subjects]
            )
            if len(subjects) <= 32
            else _under(subject, subjects)
        )
        found = self.lookups.written(
            runs, recent, subjects, agents, since, 2**62 if until is None else until, _WRITTEN
        )
        return _with_times(found.filter(under), RecordKind.ASSERTION)

    def assertions(self, ids: Sequence[str]) -> pl.DataFrame:
        """The assertions ``ids`` (those the index holds), with the columns it
        keeps (`ASSERTION_COLUMNS`), from memory: what an impact lists of the
        assertions it reached. Through the id key index, a thousand ids spread
        over the lake read most of its assertion files whole (250 ms at 1M); a
        filter of every row held took 34 ms at 1M (`_lookups`)."""
        with self.lock:
            runs, recent = self.keyed[RecordKind.ASSERTION].split(RecordKind.ASSERTION)
        found = self.lookups.by_id(runs, recent, ids)
        return _with_times(found.select(_A), RecordKind.ASSERTION)

    def prefixes_shared(self, ids: Sequence[str]) -> bool:
        """Whether an assertion the index holds, other than ``ids``, has the
        same first 64 bits as one of them: the key indexes could not tell the
        two apart (`storage.keyindex.KeyIndexes.rows`, ``matched``)."""
        with self.lock:
            runs, recent = self.keyed[RecordKind.ASSERTION].split(RecordKind.ASSERTION)
        return self.lookups.shared(runs, recent, ids)

    def prepare_lookups(self) -> int:
        """Make the orders impact's lookups use (`_lookups`) for every run now
        (else the first impact makes them: about 2 s at 10M); their bytes."""
        with self.lock:
            runs, _ = self.keyed[RecordKind.ASSERTION].split(RecordKind.ASSERTION)
        return self.lookups.prepare(runs)

    def busiest(self) -> list[tuple[str, str]]:
        """The keys whose answers are remembered (more than `REMEMBER_ROWS`
        assertions), the largest first, as many as half the memory for
        remembered answers holds (`_current.MAX_ROWS`): the other half is for
        the keys questions ask about (filled by the warm-up, the first of those
        would push out the largest keys, before anyone asked about them)."""
        with self.lock:
            frame = self.keyed[RecordKind.ASSERTION].whole(RecordKind.ASSERTION)
        size = pl.col("len")
        counts = (
            frame.group_by("subject", "predicate")
            .len()
            .filter(size > REMEMBER_ROWS)
            .sort("len", "subject", "predicate", descending=[True, False, False])
            .filter(
                (size * pl.when(size > HOT_ROWS).then(1).otherwise(ROW_COST)).cum_sum()
                <= MAX_ROWS // 2
            )
        )
        return [(s, p) for s, p, _ in counts.iter_rows()]

    def current_answer(self, slot: Slot, as_of: int, opts: ResolutionOptions) -> Any | None:
        """The remembered current recency answer for ``slot``, as of ``as_of``,
        if nothing it rests on has changed (see `_current.py`); else None. The
        default question about a busy key is answered from its summary when its
        candidates are not remembered (they are then worked out when read)."""
        summary = None
        with self.lock:
            found = self.current.get(slot, as_of)
            if found is None and slot[2] is None and not slot[3]:
                summary = self.current.summary(slot[0], slot[1], as_of)
        if summary is not None:
            # (even beside its remembered candidates: bringing all of them
            # forward to ``as_of`` took 2 ms at 10M, the summary's winner alone
            # 1 ms with the audit record; they are brought forward when read)
            return self._from_summary(slot, summary, as_of, opts, found)
        if found is not None:
            return current_at(found, as_of, opts)
        return None

    def hot_summary(self, subject: str, predicate: str) -> bool:
        """Whether the key has a summary and more than `HOT_ROWS` assertions."""
        with self.lock:
            found = self.current.summary(subject, predicate, 2**62)
        return found is not None and found.rows > HOT_ROWS

    def _from_summary(
        self,
        slot: Slot,
        summary: Summary,
        as_of: int,
        opts: ResolutionOptions,
        remembered: Any | None = None,
    ) -> Any:
        """A busy key's current answer from its summary, as a fresh one would be:
        the winner's confidence decayed to ``as_of`` by the same expression
        (the vectorized lenses' for a hot key), its candidates worked out as of
        ``as_of`` when first read (from the ``remembered`` answer if there is
        one, else resolved, and then remembered)."""
        from steme_lake.query._resolve import PointResult

        def load() -> Candidates:
            if remembered is not None:
                kept: Candidates = current_at(remembered, as_of, opts).candidates
                return kept
            found: Candidates = self._resolved(slot, as_of, opts).candidates
            return found

        win = summary.winner
        if win is None:
            return PointResult(
                "no_answer", None, None, None, None, Candidates.deferred(0, None, load)
            )
        confidence = win["confidence"]
        half = opts.half_life_us(summary.subject)
        if half is not None:
            if summary.rows > HOT_ROWS:
                last_use = pl.lit(win["last_use"], pl.Int64).cast(_TIME)
                confidence = pl.select(
                    effective(
                        pl.lit(confidence, pl.Float64),
                        last_use,
                        pl.lit(summary.subject),
                        as_of,
                        opts,
                    )
                ).item()
            else:
                confidence = decayed(confidence, win["last_use"], as_of, half)
        cited = (win["id"], win["source_hash"], win["agent"])
        return PointResult(
            "answered",
            decode_value(win["object"]),
            confidence,
            win["stage"],
            win["id"],
            Candidates.deferred(summary.count, cited, load),
        )

    def _resolved(self, slot: Slot, as_of: int, opts: ResolutionOptions) -> Any:
        """The current recency answer for ``slot`` as of ``as_of``, resolved from
        the key's rows (and remembered if nothing has touched it since)."""
        from steme_lake.query._point import resolve_rows

        point = self.rows(slot[0], slot[1], watch=True)
        result = resolve_rows(
            point,
            lens="recency",
            as_of=as_of,
            lifecycle=slot[2],
            min_confidence=None,
            include_superseded=slot[3],
            opts=opts,
        )
        if point.watch is not None:
            self.remember(slot, point, as_of, result)
        return result

    def summarize(self, as_of: int, opts: ResolutionOptions) -> int:
        """Work out, in one vectorized pass over the index, the summary
        (`_current.Summary`) of every key of more than `REMEMBER_ROWS`
        assertions: the current recency answer to the default question, as of
        ``as_of``. Most questions land on busy keys (at 10M, 42% of assertions
        are on keys of more than 1,000), and an agent rarely asks about the
        same one twice in a row: each would otherwise resolve tens of thousands
        of candidates, 30-60 ms. How many were kept (none if a row is dated
        after ``as_of``: it would become visible with no write to announce it)."""
        with self.lock:
            if self.latest > as_of:
                return 0
            building = self.current.begin_summaries()
        if building is None:
            return 0
        tables = self.tables()
        a = tables.assertions
        # (collected first: its row numbers name the keys in the id map below)
        sized = (
            a.group_by(GROUP)
            .len()
            .filter(pl.col("len") > REMEMBER_ROWS)
            .with_row_index("_n")
            .collect()
        )
        # their rows, met in the one pass below (not gathered: a copy of millions)
        busy = a.join(sized.lazy().select(*GROUP, "_n"), on=GROUP, how="inner")
        c = candidates(
            replace(
                tables,
                assertions=busy.drop("_n"),
                votes=tables.votes.clear(),
                trust=tables.trust.clear(),
            ),
            as_of=as_of,
            opts=opts,
        )
        latest = (
            c.with_columns(
                pl.col("recorded_at").max().over(GROUP).alias("_latest"),
                pl.len().over(GROUP).alias("_count"),
            )
            .filter(pl.col("recorded_at") == pl.col("_latest"))
            .group_by(GROUP)
            .agg(
                *(pl.col(name).sort_by("id").last() for name in WINNER if name not in GROUP),
                pl.col("_count").first(),
            )
            .with_columns(pl.col("last_use", "recorded_at").dt.epoch("us"))
        )
        hashes = busy.select(pl.col("id").hash().alias("h"), "_n")
        won, ids = pl.collect_all([latest, hashes])
        by_key = {(r["subject"], r["predicate"]): r for r in won.iter_rows(named=True)}
        found: dict[str, Summary] = {}
        keys: list[str] = []
        for subject, predicate, n in sized.select(*GROUP, "len").iter_rows():
            key = subject + SEP + predicate
            keys.append(key)
            row = by_key.get((subject, predicate))
            winner = None if row is None else {k: row[k] for k in WINNER}
            count = 0 if row is None else row["_count"]
            found[key] = Summary(subject, predicate, building.epoch, as_of, n, count, winner)
        with self.lock:
            return self.current.end_summaries(
                building, found, ids["h"].to_numpy(), keys, ids["_n"].to_numpy().astype(np.int32)
            )

    def remember(self, slot: Slot, point: PointRows, as_of: int, result: Any) -> None:
        """Keep ``result`` (resolved as of ``as_of`` from ``point``, read with
        ``watch=True``) for the next current question about the same key."""
        with self.lock:
            # A row dated after the answer would become visible with no write to
            # announce it: such an answer is not kept.
            if point.watch is not None and self.latest <= as_of:
                self.current.store(slot, point.watch, as_of, result)

    def rows(self, subject: str, predicate: str, *, watch: bool = False) -> PointRows:
        """One key's rows. ``watch``: for a key of more than `REMEMBER_ROWS`
        assertions, also start watching it, so that an answer computed from these
        rows can be remembered (`current`). A hot key's rows read so are kept
        while nothing touches the key: its questions as of a past time (never
        remembered) and its next current one gather them once, not each time
        (at 1M, about a third of a busy key's as-of answer)."""
        key = subject + SEP + predicate
        with self.lock:
            kept: PointRows | None = self.current.rows_of(key)
            if kept is not None:
                if watch:  # (still the key's version: the same watch, most recent again)
                    self.current.watch(key, kept.ids, frame=True)
                return kept
            point = PointRows(self, subject, predicate)
            if watch and len(point.ids) > REMEMBER_ROWS:
                point.watch = self.current.watch(key, point.ids, frame=point.hot)
                if point.hot:
                    self.current.keep_rows(point.watch, point)
            return point
