"""Busy keys' current recency answers, kept between the writes that change them.

A busy key (more than ``HOT_ROWS`` assertions on one subject and predicate)
takes tens of milliseconds to resolve: its candidates are gathered from the
state index and run through the vectorized lens. A key of a few hundred
(more than ``REMEMBER_ROWS``) takes milliseconds through the Python lenses,
a row at a time. Agents ask about the same
busy keys again and again, and between two questions usually nothing about
the key has changed, only the clock. So the index remembers, for the busy keys
asked about lately, the candidates of the last current recency answer, and
hands them back while they still hold (the lake also works out the busiest
keys' answers in the background once the index is ready: `Lake._warm`):

- no lifecycle change or confirmation of one of the key's assertions, and no
  supersession has been committed since (the index marks the entry stale as
  the frames arrive, before a later question can see them);
- a new assertion on the key is taken in instead (`CurrentAnswers.grow`):
  under recency it is one more candidate, and the winner if it is the
  latest, as a fresh answer would have it; agents that keep writing to a busy
  key (at about 30 writes a second over HTTP, the remembered answer took its
  busy reader from 23-26 to 67-74 questions a second) no longer make it be
  worked out again each time. One that something aims at already (a lifecycle
  change or confirmation of its id, a supersession of its id, source or
  agent) makes the entry stale, as before, and so does a commit that brings
  new assertions to more watched keys than an agent writes to at once (an
  import: `_index.GROW_KEYS`, `_index.GROW_ROWS`), whose cost in the commit
  path, under the index's lock, would grow with it;
- the answer was resolved when no row in the index was dated after it (an
  ``at`` slightly ahead of the clock, which the lake accepts, would become
  visible later with no write to announce it: such an answer is not kept).

Only the clock moves, and under recency it moves nothing but the decay: the
winner is the latest candidate that passes the time-free filters (lifecycle,
supersession), so the cached winner still wins, and every candidate's
effective confidence is computed again for the new time, with the same
expression as a fresh answer (so the numbers are bit-identical). A
``min_confidence`` filter depends on the decay, and the other lenses weigh
decayed confidences against votes and trust: those questions are always
resolved afresh.

Remembered whole, an answer holds every candidate: only a few dozen of the
largest keys fit (`MAX_ROWS`), and agents rarely ask about the same one twice
in a row (the 10M benchmark's 500 questions hit 458 keys; 42% of its
assertions are on keys of more than 1,000). So every busy key also has a
*summary* (`Summary`): its current answer to the default question (every
stage, superseded assertions left out) without the candidates, about 500
bytes. `StateIndex.summarize` works them out for all busy keys in one
vectorized pass once the index is ready (3.7-5.5 s and 1 GB more at its peak
for 3,224 keys and 4.9M assertions at 10M; the lake runs it in the background:
`Lake._warm`), and a fresh answer leaves one behind. They are kept up to date
as above: a new assertion joins the summary (one more candidate, the winner
if it is the latest); a lifecycle change or confirmation of one of the key's
assertions drops it (found through `_IdMap`, the key of every summarized
assertion by hash, 12 bytes an id), a supersession drops all of them; the next
fresh answer summarizes the key again. An answer from a summary has its
winner's confidence decayed to the question's time by the same expression as
a fresh answer, and deferred candidates (`Candidates.deferred`): their count,
and what the answer cites, are known; the rest is worked out as of the
answer's time when read (then remembered whole). At 10M the 500 current
points went from p50 2.5 / p99 62 ms to p50 1.0 / p99 3.8 ms with their audit
records. A server lists the best few candidates of each answer, so it answers
questions about a hot summarized key beside its batches (`Lake._is_busy`).

A busy key's rows, as gathered for such a question (its assertions as a
frame, their lifecycle changes and confirmations), are kept on the same
terms, for any question about the key: an as-of question (never remembered,
its answer depends on the time) then gathers only the votes, which do not
touch the key, and the tables kept whole (supersessions, trust).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import polars as pl

from steme_lake.query._answer import Candidates, decode_value
from steme_lake.query._candidates import ORDER, decayed, effective
from steme_lake.query._options import ResolutionOptions

__all__ = ["SEP", "WINNER", "CurrentAnswers", "Summary", "Watch", "id_hashes"]

# What is remembered is bounded by the candidates held, in frame rows: a busy
# key's candidate is its row of the candidate frame and its id watched (about
# 250 bytes); a smaller key's, resolved by the Python lenses, is a dict of
# Python objects and counts as `ROW_COST` frame rows. The keys asked about
# least recently are forgotten first.
MAX_ROWS = 1_000_000
ROW_COST = 5  # measured: about 1.2 KB a Python candidate row

# (subject, predicate, lifecycle filter, include_superseded)
Slot = tuple[str, str, tuple[str, ...] | None, bool]


@dataclass(frozen=True, slots=True)
class Watch:
    """A key's version when its rows were read: an answer computed from those
    rows may be kept only if the version is unchanged when it is stored."""

    key: str
    version: int
    epoch: int


SEP = "\x1f"  # how a key joins subject and predicate
# The summaries' id map is kept in sorted chunks; chunks are merged while the
# result stays this small (a merge is a sort, under the index's lock).
_MERGE_IDS = 1 << 21


def id_hashes(ids: pl.Series | list[str]) -> np.ndarray:
    """The hashes the summaries' id map is keyed by (`_IdMap`)."""
    series = ids if isinstance(ids, pl.Series) else pl.Series(ids, dtype=pl.String)
    return series.hash().to_numpy()


class _IdMap:
    """Assertion id (by hash) -> key, for the keys with a summary: a lifecycle
    change or confirmation of one of their assertions must find its key. An id
    never changes key, so the map only grows; sorted NumPy chunks, 12 bytes an
    id (the 8.3M assertions of the 10M benchmark lake's busy keys: 100 MB,
    where a dict of their ids took gigabytes). A hash collision finds a key
    that was not touched: its summary is dropped, never kept wrongly."""

    def __init__(self) -> None:
        self.chunks: list[tuple[np.ndarray, np.ndarray]] = []
        self.names: list[str] = []
        self.number: dict[str, int] = {}

    def key_number(self, key: str) -> int:
        n = self.number.get(key)
        if n is None:
            n = self.number[key] = len(self.names)
            self.names.append(key)
        return n

    def add(self, hashes: np.ndarray, numbers: np.ndarray) -> None:
        if not len(hashes):
            return
        order = np.argsort(hashes, kind="stable")
        self.chunks.append((hashes[order], numbers[order].astype(np.int32, copy=False)))
        chunks = self.chunks
        while len(chunks) > 1 and len(chunks[-2][0]) + len(chunks[-1][0]) <= _MERGE_IDS:
            (h1, k1), (h2, k2) = chunks[-2], chunks[-1]
            h, k = np.concatenate([h1, h2]), np.concatenate([k1, k2])
            order = np.argsort(h, kind="stable")
            chunks[-2:] = [(h[order], k[order])]

    def keys_of(self, hashes: np.ndarray) -> set[str]:
        found: set[str] = set()
        if not len(hashes):
            return found
        for h, k in self.chunks:
            lo = np.searchsorted(h, hashes, "left")
            hi = np.searchsorted(h, hashes, "right")
            for a, b in zip(lo[hi > lo].tolist(), hi[hi > lo].tolist(), strict=True):
                found.update(self.names[i] for i in k[a:b].tolist())
        return found

    @property
    def size(self) -> int:
        return sum(len(h) for h, _ in self.chunks)


@dataclass(frozen=True, slots=True)
class Summary:
    """A busy key's current recency answer to the default question (every
    stage, superseded assertions left out), without its candidates: the
    winner's row, how many candidates there were, and how many assertions the
    key has (a hot key's confidence is worked out as the vectorized lenses do).
    About 500 bytes, where the candidates of a key of 25,000 took 6 MB."""

    subject: str
    predicate: str
    epoch: int
    as_of: int
    rows: int
    count: int
    winner: dict[str, Any] | None  # id, object, stage, confidence, last_use (µs), ...


@dataclass(slots=True)
class _Building:
    """What touched the index while the summaries were worked out in bulk."""

    epoch: int
    keys: set[str]
    ids: list[str]


@dataclass(frozen=True, slots=True)
class _Entry:
    key: str
    version: int
    epoch: int
    as_of: int  # the time it was resolved for
    result: Any  # the PointResult (its candidates: a frame, or the Python lenses' rows)


class CurrentAnswers:
    """The remembered answers and what invalidates them. Every method is called
    with the state index's lock held."""

    def __init__(self) -> None:
        self._versions: OrderedDict[str, int] = OrderedDict()  # watched keys
        self._key_of: dict[str, str] = {}  # assertion id -> watched key
        self._ids: dict[str, list[str]] = {}  # watched key -> its assertion ids
        self._cost: dict[str, int] = {}  # watched key -> what it counts (see MAX_ROWS)
        self._entries: dict[Slot, _Entry] = {}
        # A busy key's rows as read for a watched question (`StateIndex.rows`):
        # the next question about it, current or as of any time, reads them
        # again only after something touched the key.
        self._kept: dict[str, tuple[Watch, Any]] = {}
        self._rows = 0  # what the watched keys count, in frame rows (see MAX_ROWS)
        self.epoch = 0  # bumped by anything that may touch any key (supersessions)
        # Summaries (`Summary`) of busy keys, whose every id is in `_idmap`
        # (the keys in `_mapped`: their new ids are added as they arrive).
        self._sums: dict[str, Summary] = {}
        self._idmap = _IdMap()
        self._mapped: set[str] = set()
        self._building: _Building | None = None

    # ------------------------------------------------------------ invalidation

    @property
    def watching(self) -> bool:
        """Whether a commit may touch anything here (`StateIndex._touch`)."""
        return bool(self._versions or self._sums or self._mapped) or self._building is not None

    def written(self, keys: Iterable[str]) -> None:
        """New assertions on ``keys``: summaries being worked out leave them out."""
        if self._building is not None:
            self._building.keys.update(keys)

    def touch_keys(self, keys: Iterable[str]) -> None:
        sums, building = self._sums, self._building
        for key in keys:
            if key in self._versions:
                self._versions[key] += 1
            sums.pop(key, None)
            if building is not None:
                building.keys.add(key)

    def touch_ids(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        key_of = self._key_of
        keys = {key_of[i] for i in ids if i in key_of}
        if self._idmap.chunks and ids:
            keys |= self._idmap.keys_of(id_hashes(ids))
        if self._building is not None:
            self._building.ids.extend(ids)
        self.touch_keys(keys)

    def touch_all(self) -> None:
        self.epoch += 1
        self._sums.clear()

    def watched(self, keys: Iterable[str]) -> set[str]:
        """Those of ``keys`` being watched, or summarized."""
        versions, sums = self._versions, self._sums
        return {key for key in keys if key in versions or key in sums}

    def mapped(self, keys: Iterable[str]) -> set[str]:
        """Those of ``keys`` whose ids are kept in the id map: `map_ids` their new ones."""
        found = self._mapped
        return {key for key in keys if key in found}

    def map_ids(self, ids: pl.Series, keys: list[str]) -> None:
        """New assertions (``ids``, on ``keys``: one each) of keys in the id map."""
        number = self._idmap.key_number
        self._idmap.add(id_hashes(ids), np.array([number(k) for k in keys], dtype=np.int32))

    # ------------------------------------------------------------ summaries

    def summary(self, subject: str, predicate: str, as_of: int) -> Summary | None:
        """The key's summary, if nothing it rests on has changed and it was made
        no later than ``as_of``."""
        found = self._sums.get(subject + SEP + predicate)
        if (
            found is None
            or found.epoch != self.epoch
            or as_of < found.as_of
            or found.subject != subject
            or found.predicate != predicate
        ):
            return None
        return found

    @property
    def summaries(self) -> int:
        return len(self._sums)

    def begin_summaries(self) -> _Building | None:
        """Start recording what touches the index while summaries are worked out
        from a view of it taken after this (`end_summaries`); None: one is
        being worked out already."""
        if self._building is not None:
            return None
        self._building = _Building(self.epoch, set(), [])
        return self._building

    def end_summaries(
        self,
        building: _Building,
        found: dict[str, Summary],
        hashes: np.ndarray,
        keys: list[str],
        numbers: np.ndarray,
    ) -> int:
        """Keep the summaries ``found`` (worked out from a view taken after
        `begin_summaries`; their keys' ids ``hashes``, each of the key
        ``keys[numbers[i]]``) but those of the keys something touched since;
        how many were kept."""
        if self._building is not building:
            return 0
        self._building = None
        if building.epoch != self.epoch:
            return 0  # a supersession since: every key may have changed
        idmap = self._idmap
        renumber = np.array([idmap.key_number(k) for k in keys], dtype=np.int32)
        idmap.add(hashes, renumber[numbers] if len(keys) else numbers)
        touched = set(building.keys)
        if building.ids:
            touched |= idmap.keys_of(id_hashes(building.ids))
        kept = 0
        for key, summary in found.items():
            # A key with new rows since: its new ids are not in the map yet.
            if key in touched:
                continue
            self._mapped.add(key)
            if key not in self._sums:  # (one made from a fresh answer meanwhile is newer)
                self._sums[key] = summary
                kept += 1
        return kept

    def _summarize(self, slot: Slot, watch: Watch, as_of: int, result: Any) -> None:
        """Keep a summary of a fresh answer to the default question (see `store`)."""
        key = watch.key
        candidates = result.candidates
        winner = None
        if result.winner is not None:
            frame = candidates.lens_frame
            if frame is not None:
                row = frame.filter(pl.col("id") == result.winner).row(0, named=True)
                row = {k: _us(v) for k, v in row.items()}
            else:
                (row,) = (r for r in candidates.lens_rows or () if r["id"] == result.winner)
            winner = {k: row[k] for k in WINNER}
        if key not in self._mapped:
            ids = self._ids[key]
            self._idmap.add(
                id_hashes(ids), np.full(len(ids), self._idmap.key_number(key), dtype=np.int32)
            )
            self._mapped.add(key)
        subject, predicate = slot[0], slot[1]
        self._sums[key] = Summary(
            subject, predicate, watch.epoch, as_of, len(self._ids[key]), len(candidates), winner
        )

    def grow(self, rows: dict[str, list[dict[str, Any]]], *, hot_rows: int) -> None:
        """New assertions on watched keys (``rows``: each key's, as the index's
        rows: times in µs), each none of whose lifecycle changes, confirmations
        or supersessions exists (the index checked): the key's remembered
        answers take them in instead of being forgotten, so a busy key that
        agents keep writing to is still answered from memory.

        Under recency a new assertion is one more candidate (its own stage, not
        superseded, last used when written) and the winner if it is the latest;
        an answer filtered by stage that leaves it out is unchanged. The key's
        version moves on (a question that read its rows before these holds a
        stale `Watch`: its answer is not stored) and the answers kept take the
        new version, dated no earlier than the newest row they took in. A key
        answered as Python rows that would pass ``hot_rows`` candidates is
        forgotten instead (a fresh answer would be a frame)."""
        slots: dict[str, list[Slot]] = {}
        for slot, entry in self._entries.items():
            if entry.key in rows:
                slots.setdefault(entry.key, []).append(slot)
        for key, new in rows.items():
            summary = self._sums.get(key)
            if summary is not None and new:
                self._sums[key] = _grown_summary(summary, new)
            versions = self._versions
            if key not in versions or not new:
                continue
            versions[key] += 1
            version = versions[key]
            framed = self._cost[key] == len(self._ids[key])
            ids = [r["id"] for r in new]
            # (a new list: a reader may hold the old one, as its rows' ids)
            self._ids[key] = [*self._ids[key], *ids]
            cost = len(ids) * (1 if framed else ROW_COST)
            self._cost[key] += cost
            self._rows += cost
            self._key_of.update(dict.fromkeys(ids, key))
            self._kept.pop(key, None)
            newest = max(r["recorded_at"] for r in new)
            for slot in slots.get(key, ()):
                entry = self._entries[slot]
                result = _grown(entry.result, new, slot, hot_rows)
                if result is None:
                    del self._entries[slot]
                else:
                    as_of = max(entry.as_of, newest)
                    self._entries[slot] = _Entry(key, version, entry.epoch, as_of, result)
        versions = self._versions
        while self._rows > MAX_ROWS and len(versions) > 1:
            self._forget(next(iter(versions)))

    # ------------------------------------------------------------ remembering

    def watch(self, key: str, ids: list[str], *, frame: bool) -> Watch:
        """Start (or keep) watching ``key``, whose assertions are ``ids`` now;
        ``frame``: its answers keep their candidates as a frame (a busy key), not
        as Python rows."""
        versions = self._versions
        if key in versions:
            versions.move_to_end(key)
            old = self._ids.pop(key)
            self._rows -= self._cost.pop(key)
            for i in old:
                self._key_of.pop(i, None)
        else:
            versions[key] = 0
        self._ids[key] = ids
        cost = len(ids) * (1 if frame else ROW_COST)
        self._cost[key] = cost
        self._rows += cost
        self._key_of.update(dict.fromkeys(ids, key))
        while self._rows > MAX_ROWS and len(versions) > 1:
            self._forget(next(iter(versions)))
        return Watch(key, versions[key], self.epoch)

    def _forget(self, key: str) -> None:
        self._versions.pop(key)
        old = self._ids.pop(key, [])
        self._rows -= self._cost.pop(key, 0)
        for i in old:
            self._key_of.pop(i, None)
        for slot in [s for s, e in self._entries.items() if e.key == key]:
            del self._entries[slot]
        self._kept.pop(key, None)

    def holds(self, watch: Watch) -> bool:
        """Whether nothing has touched ``watch``'s key since it was taken."""
        return self._versions.get(watch.key) == watch.version and self.epoch == watch.epoch

    def keep_rows(self, watch: Watch, rows: Any) -> None:
        """Keep a busy key's rows, read at ``watch``, while they hold."""
        if self.holds(watch):
            self._kept[watch.key] = (watch, rows)

    def rows_of(self, key: str) -> Any | None:
        """The kept rows of ``key``, if nothing has touched it since."""
        found = self._kept.get(key)
        if found is None:
            return None
        if not self.holds(found[0]):
            del self._kept[key]
            return None
        return found[1]

    def store(self, slot: Slot, watch: Watch, as_of: int, result: Any) -> None:
        """Remember ``result``, resolved as of ``as_of`` from rows read at
        ``watch``, unless something has touched the key since."""
        if self._versions.get(watch.key) == watch.version and self.epoch == watch.epoch:
            self._entries[slot] = _Entry(watch.key, watch.version, watch.epoch, as_of, result)
            if slot[2] is None and not slot[3]:
                self._summarize(slot, watch, as_of, result)

    def get(self, slot: Slot, as_of: int) -> Any | None:
        """The remembered result for ``slot`` if it still holds at ``as_of``
        (its candidates' confidences still as of the time it was resolved)."""
        entry = self._entries.get(slot)
        if entry is None:
            return None
        if (
            self._versions.get(entry.key) != entry.version
            or entry.epoch != self.epoch
            or as_of < entry.as_of
        ):
            del self._entries[slot]
            return None
        self._versions.move_to_end(entry.key)
        return entry.result


_TIME = pl.Datetime("us", "UTC")
# A summary's winner: what an answer shows of it, and what its confidence and
# the order of candidates rest on.
WINNER = (
    "id",
    "subject",
    "object",
    "stage",
    "confidence",
    "last_use",
    "recorded_at",
    "source_hash",
    "agent",
)


def _us(value: Any) -> Any:
    """A frame's UTC datetime as the index's integer µs (other values as they are)."""
    if hasattr(value, "tzinfo") and hasattr(value, "timestamp"):
        from steme_lake._utils.timeparse import to_us

        return to_us(value)
    return value


def _grown_summary(summary: Summary, rows: list[dict[str, Any]]) -> Summary:
    """``summary`` with new assertions on its key (none of them aimed at by
    anything: see `grow`): more candidates, and the latest of them the winner
    if it is later than the summary's."""
    subject, predicate = summary.subject, summary.predicate
    # (a key joins them with a separator a subject may hold)
    new = [r for r in rows if r["subject"] == subject and r["predicate"] == predicate]
    if not new:
        return summary
    last = max(new, key=lambda r: (r["recorded_at"], r["id"]))
    winner = summary.winner
    if winner is None or (last["recorded_at"], last["id"]) > (winner["recorded_at"], winner["id"]):
        winner = {
            **{k: last[k] for k in WINNER if k in last},
            "stage": last["lifecycle"],
            "last_use": last["recorded_at"],
        }
    newest = max(r["recorded_at"] for r in new)
    return replace(
        summary,
        as_of=max(summary.as_of, newest),
        rows=summary.rows + len(new),
        count=summary.count + len(new),
        winner=winner,
    )


def _grown(result: Any, rows: list[dict[str, Any]], slot: Slot, hot_rows: int) -> Any | None:
    """A remembered recency result for ``slot`` with the new assertions ``rows``
    (none of them touched by a lifecycle change, confirmation or supersession)
    among its candidates, as a fresh answer would have them; None: not kept
    (see `grow`).

    Each new candidate's ``eff`` is its confidence: `at` works the decayed ones
    out for the time asked about, as for every other candidate."""
    subject, predicate, stages, _ = slot
    new = [
        {**r, "stage": r["lifecycle"], "superseded": False, "eff": r["confidence"]}
        | {"last_use": r["recorded_at"]}
        for r in rows
        # (the key joins subject and predicate with a separator a subject may hold)
        if r["subject"] == subject and r["predicate"] == predicate
        if stages is None or r["lifecycle"] in stages
    ]
    if not new:
        return result
    new.sort(key=lambda r: (r["recorded_at"], r["id"]))
    kept = result.candidates.lens_rows
    frame = result.candidates.lens_frame
    if kept is not None or (frame is None and len(result.candidates) == 0):
        kept = kept or []
        if len(kept) + len(new) > hot_rows:
            return None
        if kept and (kept[-1]["recorded_at"], kept[-1]["id"]) > (
            new[0]["recorded_at"],
            new[0]["id"],
        ):
            both = sorted([*kept, *new], key=lambda r: (r["recorded_at"], r["id"]))
        else:
            both = [*kept, *new]
        win = both[-1]
        return replace(
            result,
            status="answered",
            value=decode_value(win["object"]),
            confidence=win["eff"],
            lifecycle=win["stage"],
            winner=win["id"],
            candidates=Candidates.of_rows(both),
        )
    if frame is None:
        return None  # (candidates kept some other way: not grown)
    add = pl.DataFrame(
        [{name: r[name] for name in frame.columns} for r in new],
        schema={
            name: (pl.Int64 if dtype == _TIME else dtype) for name, dtype in frame.schema.items()
        },
        orient="row",
    ).with_columns(pl.col(n).cast(_TIME) for n, d in frame.schema.items() if d == _TIME)
    last = frame.row(frame.height - 1, named=True) if frame.height else None
    grown = pl.concat([frame, add], how="vertical")
    if last is not None and (last["recorded_at"], last["id"]) > (
        add["recorded_at"][0],
        add["id"][0],
    ):
        grown = grown.sort(ORDER)
    elif grown.n_chunks() > 64:
        grown = grown.rechunk()
    win = grown.row(grown.height - 1, named=True)
    return replace(
        result,
        status="answered",
        value=None if win["object"] is None else json.loads(win["object"]),
        confidence=win["eff"],
        lifecycle=win["stage"],
        winner=win["id"],
        candidates=Candidates(grown),
    )


def at(result: Any, as_of: int, opts: ResolutionOptions) -> Any:
    """A remembered recency result as of a later time: the same winner, every
    candidate's effective confidence as of ``as_of``."""
    rows = result.candidates.lens_rows
    if rows is not None:  # resolved by the Python lenses: brought forward the same way
        if not rows or result.winner is None:
            return result
        half = opts.half_life_us(rows[0]["subject"])
        if half is None:
            return result
        rows = [{**r, "eff": decayed(r["confidence"], r["last_use"], as_of, half)} for r in rows]
        (confidence,) = (r["eff"] for r in rows if r["id"] == result.winner)
        return replace(result, confidence=confidence, candidates=Candidates.of_rows(rows))
    frame = result.candidates.lens_frame
    if frame is None or frame.height == 0 or result.winner is None:
        return result
    if opts.half_life_us(frame["subject"][0]) is None:
        return result  # no decay: nothing moves with the clock
    frame = frame.with_columns(
        effective(pl.col("confidence"), pl.col("last_use"), pl.col("subject"), as_of, opts).alias(
            "eff"
        )
    )
    confidence = frame.filter(pl.col("id") == result.winner)["eff"].item()
    return replace(result, confidence=confidence, candidates=Candidates(frame))
