"""The state index's assertions by id and by agent, without a scan of them all.

The index's runs are sorted by key (subject and predicate): what an impact asks
of them, assertions by id (the ones it reached) and by agent (what the agents
that received bad data wrote afterwards), was a filter over every row, 34 and
54 ms an impact level at 1M assertions and ten times that at 10M, growing
with the lake. Each run gets two orders of its own, made when first asked and
kept while the run lives (runs are immutable; a merge makes a new one). A
question never waits for a large run's (seconds at 10M): until they are made
it filters that run as before, and the warm-up makes them after an open. The
state index's checkpoint keeps them beside its runs: an open maps them.

- its rows by id: the ids' first 64 bits (`key_prefixes`) sorted, and the rows
  in that order (12 bytes a row); a lookup is a binary search per id;
- its rows by subject, then agent (the distinct subjects sorted, and 12
  bytes a row): a lookup finds the subject trees asked about by binary search,
  then each of their subjects' rows by each agent asked about.

The rows not yet sealed into a run (fewer than ``_index.RUN_ROWS``) are
filtered as they are.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from steme_lake._utils.arrays import sorted_unique
from steme_lake.storage.keyindex import _under, equal_to, key_prefixes, spans

__all__ = ["ORDER_COLUMNS", "ORDER_SCHEMA", "RunLookups"]

log = logging.getLogger(__name__)

# A run's orders as columns beside its rows (`_Orders.columns`).
ORDER_SCHEMA = {
    "_id_key": pl.UInt64,
    "_id_row": pl.UInt32,
    "_group": pl.UInt64,
    "_group_row": pl.UInt32,
    "_subjects": pl.String,
    "_agents": pl.String,
}
ORDER_COLUMNS = tuple(ORDER_SCHEMA)

# A run of up to this many rows has its orders made when first asked (about
# 50 ms); a larger one's are made on a thread of their own meanwhile.
MAKE_NOW = 100_000


@dataclass(frozen=True, slots=True)
class _Orders:
    """One run's rows by id, and by subject and agent (see the module docstring)."""

    id_keys: np.ndarray  # uint64, sorted
    id_rows: np.ndarray  # uint32: the run's row of each of ``id_keys``
    subjects: pl.Series  # the run's distinct subjects, sorted
    agents: dict[str, int]  # the run's distinct agents, by number
    groups: np.ndarray  # sorted: subject number * len(agents) + agent number (rows
    # without a subject or agent left out)
    group_rows: np.ndarray  # uint32: the run's row of each of ``groups``

    @classmethod
    def of(cls, frame: pl.DataFrame) -> _Orders:
        keys = key_prefixes(frame["id"].to_arrow())
        order = pl.Series(keys, dtype=pl.UInt64).arg_sort().to_numpy()
        subjects = frame["subject"].drop_nulls().unique().sort()
        agents = frame["agent"].drop_nulls().unique().sort()
        n = max(1, len(agents))
        wide = len(subjects) * n >= 2**32
        group = (
            pl.col("subject")
            .cast(pl.Enum(subjects))
            .to_physical()
            .cast(pl.UInt64 if wide else pl.UInt32)
            * n
            + pl.col("agent").cast(pl.Enum(agents)).to_physical()
        )
        # (by group alone: `written` keeps its window's rows of what it gathers)
        groups = frame.select(group.alias("_group"))["_group"]
        by_group = groups.arg_sort(nulls_last=True).to_numpy()
        valid = len(groups) - groups.null_count()
        return cls(
            keys[order],
            order.astype(np.uint32),
            subjects,
            {a: i for i, a in enumerate(agents.to_list())},
            groups.to_numpy()[by_group[:valid]],
            by_group[:valid].astype(np.uint32),
        )

    def columns(self, height: int) -> list[pl.Series]:
        """The orders as columns beside the run's ``height`` rows (`ORDER_COLUMNS`:
        what the state index's checkpoint keeps, so that an open maps them; the
        distinct subjects and agents first in theirs, then nulls)."""

        def padded(name: str, values: list[str]) -> pl.Series:
            return pl.Series(name, values + [None] * (height - len(values)), dtype=pl.String)

        return [
            pl.Series("_id_key", self.id_keys, dtype=pl.UInt64),
            pl.Series("_id_row", self.id_rows, dtype=pl.UInt32),
            pl.Series("_group", self.groups.astype(np.uint64), dtype=pl.UInt64),
            pl.Series("_group_row", self.group_rows, dtype=pl.UInt32),
            padded("_subjects", self.subjects.to_list()),
            padded("_agents", sorted(self.agents, key=self.agents.__getitem__)),
        ]

    @classmethod
    def from_columns(cls, frame: pl.DataFrame) -> _Orders:
        """The orders `columns` made (the columns mapped, not copied)."""
        subjects = frame["_subjects"]
        agents = frame["_agents"]
        return cls(
            frame["_id_key"].to_numpy(),
            frame["_id_row"].to_numpy(),
            subjects.head(len(subjects) - subjects.null_count()),
            {a: i for i, a in enumerate(agents.head(len(agents) - agents.null_count()).to_list())},
            frame["_group"].to_numpy(),
            frame["_group_row"].to_numpy(),
        )

    @property
    def nbytes(self) -> int:
        held = (self.id_keys, self.id_rows, self.groups, self.group_rows)
        return sum(a.nbytes for a in held) + int(self.subjects.estimated_size())

    def written(self, roots: Sequence[str], agents: Sequence[str]) -> np.ndarray:
        """The run's rows (in no order) by one of ``agents`` on one of the
        subject trees ``roots`` (a root, or a path under it)."""
        numbers = np.array([self.agents[a] for a in agents if a in self.agents], np.int64)
        if not numbers.size or not len(self.subjects):
            return _NO_ROWS
        # a tree's subjects lie from its root to the root followed by "0" (just
        # after "/"); what else lies there ("a-b" for "a") is left out here
        lows = self.subjects.search_sorted(pl.Series(roots, dtype=pl.String), "left")
        highs = self.subjects.search_sorted(pl.Series([r + "0" for r in roots]), "left")
        codes = sorted_unique(spans(lows.to_numpy(), highs.to_numpy()))
        if not codes.size:
            return _NO_ROWS
        near = pl.DataFrame({"code": codes, "subject": self.subjects.gather(codes)})
        inside = near.filter(_under(pl.col("subject"), roots))["code"].to_numpy()
        if not inside.size:
            return _NO_ROWS
        wanted = (inside.astype(np.int64)[:, None] * len(self.agents) + numbers[None, :]).ravel()
        wanted = wanted.astype(self.groups.dtype)
        rows: np.ndarray = self.group_rows[equal_to(self.groups, wanted)]
        return rows

    def with_ids(self, prefixes: np.ndarray) -> np.ndarray:
        """The run's rows whose id begins with one of ``prefixes`` (sorted)."""
        rows: np.ndarray = self.id_rows[equal_to(self.id_keys, prefixes)]
        return rows


_NO_ROWS = np.empty(0, dtype=np.uint32)


class RunLookups:
    """The orders of each run of the index's assertions, made when first asked
    (or by `prepare`) and dropped with their run."""

    def __init__(self) -> None:
        self._orders: dict[int, tuple[pl.DataFrame, _Orders]] = {}  # by id(run frame)
        self._making: dict[int, threading.Event] = {}  # being made by a thread
        self._wanted: dict[int, pl.DataFrame] = {}  # runs met without them, to make
        self._maker: threading.Thread | None = None  # the thread making those
        self._lock = threading.Lock()

    def _of(self, frame: pl.DataFrame) -> _Orders:
        key = id(frame)
        while True:
            with self._lock:
                known = self._orders.get(key)
                if known is not None and known[0] is frame:
                    return known[1]
                making = self._making.get(key)
                if making is None:  # this thread makes them; another waits
                    making = self._making[key] = threading.Event()
                    break
            making.wait()
        try:
            orders = _Orders.of(frame)
            with self._lock:
                self._orders[key] = (frame, orders)
            return orders
        finally:
            with self._lock:
                del self._making[key]
            making.set()

    def _ready(self, frame: pl.DataFrame) -> _Orders | None:
        """The orders of ``frame`` if made; else None, a large run's being made
        on a thread of its own, one run at a time (a question never waits for
        them: at 10M they take seconds; it filters the run as before), a small
        run's made now."""
        with self._lock:
            known = self._orders.get(id(frame))
            if known is not None and known[0] is frame:
                return known[1]
        if frame.height <= MAKE_NOW:
            return self._of(frame)
        with self._lock:
            self._wanted.setdefault(id(frame), frame)
            if self._maker is None:
                self._maker = threading.Thread(
                    target=self._make_wanted, name="steme-lookups", daemon=True
                )
                self._maker.start()
        return None

    def _make_wanted(self) -> None:
        """Make the orders of the runs questions met without them, one at a time."""
        while True:
            with self._lock:
                if not self._wanted:
                    self._maker = None
                    return
                key, frame = next(iter(self._wanted.items()))
            try:
                self._of(frame)
            except Exception:  # (questions filter the run meanwhile; the next one tries again)
                log.exception("the lookups' orders of a run of %d rows", frame.height)
            finally:
                with self._lock:
                    self._wanted.pop(key, None)

    def keep(self, runs: Sequence[pl.DataFrame]) -> None:
        """Drop the orders of runs gone (merged into others): they would keep
        the runs' frames alive."""
        live = {id(f) for f in runs}
        with self._lock:
            for key in [k for k in self._orders if k not in live]:
                del self._orders[key]
            for key in [k for k in self._wanted if k not in live]:
                del self._wanted[key]

    def columns(self, frame: pl.DataFrame) -> list[pl.Series]:
        """The orders of the run ``frame`` as columns beside its rows (made
        now if they are not yet)."""
        return self._of(frame).columns(frame.height)

    def adopt(self, frame: pl.DataFrame, columns: pl.DataFrame) -> None:
        """Take the orders of the run ``frame`` from ``columns`` (`columns`,
        read back from a checkpoint)."""
        orders = _Orders.from_columns(columns)
        with self._lock:
            self._orders[id(frame)] = (frame, orders)

    def prepare(self, runs: Sequence[pl.DataFrame]) -> int:
        """Make the orders of ``runs`` (the index's runs now) and drop those of
        runs gone; the bytes they take."""
        self.keep(runs)
        return sum(self._of(f).nbytes for f in runs)

    def by_id(
        self, runs: Sequence[pl.DataFrame], recent: pl.DataFrame, ids: Sequence[str]
    ) -> pl.DataFrame:
        """The rows of ``runs`` and ``recent`` whose ``id`` is one of ``ids``."""
        self.keep(runs)
        wanted = sorted(set(ids))
        if not wanted:
            return recent.clear()
        prefixes = sorted_unique(key_prefixes(pa.array(wanted, pa.string())))
        parts = []
        for frame in runs:
            orders = self._ready(frame)
            if orders is None:
                parts.append(frame.filter(pl.col("id").is_in(pl.Series(wanted, dtype=pl.String))))
                continue
            rows = orders.with_ids(prefixes)
            if rows.size:
                parts.append(frame[rows])
        parts.append(recent)
        found = pl.concat(parts, how="vertical")
        # (a prefix shared by two ids: only the wanted whole ids are kept)
        out: pl.DataFrame = found.filter(pl.col("id").is_in(pl.Series(wanted, dtype=pl.String)))
        return out

    def shared(
        self, runs: Sequence[pl.DataFrame], recent: pl.DataFrame, ids: Sequence[str]
    ) -> bool:
        """Whether a row of ``runs`` or ``recent`` has an id other than ``ids``
        that begins with the same 64 bits as one of them (`key_prefixes`)."""
        self.keep(runs)
        wanted = set(ids)
        prefixes = sorted_unique(key_prefixes(pa.array(sorted(wanted), pa.string())))
        near: list[pl.Series] = []
        for frame in runs:
            orders = self._ready(frame)
            if orders is None:
                return True  # (not known yet: the caller takes the exact way)
            rows = orders.with_ids(prefixes)
            if rows.size:
                near.append(frame["id"].gather(rows))
        if recent.height:
            mine = np.isin(key_prefixes(recent["id"].to_arrow()), prefixes)
            near.append(recent["id"].filter(pl.Series(mine)))
        return any(not set(n.to_list()) <= wanted for n in near)

    def written(
        self,
        runs: Sequence[pl.DataFrame],
        recent: pl.DataFrame,
        roots: Sequence[str],
        agents: Sequence[str],
        since: int,
        until: int,
        columns: Sequence[str],
    ) -> pl.DataFrame:
        """``columns`` of the rows of ``runs`` and ``recent`` by one of ``agents``
        on one of the subject trees ``roots``, recorded from ``since`` to
        ``until`` (integer µs, both included). The caller tests the subjects
        exactly (the rows of ``recent`` are not tested)."""
        self.keep(runs)
        stamp = pl.col("recorded_at")
        window = (stamp >= since) & (stamp <= until)
        agent = pl.col("agent").is_in(pl.Series(sorted(set(agents)), dtype=pl.String))
        parts = []
        for frame in runs:
            orders = self._ready(frame)
            if orders is None:
                parts.append(frame.filter(agent, window).select(columns))
                continue
            rows = orders.written(roots, agents)
            if rows.size:
                parts.append(frame.select(columns)[np.sort(rows)].filter(window))
        parts.append(recent.filter(agent, window).select(columns))
        return pl.concat(parts, how="vertical")
