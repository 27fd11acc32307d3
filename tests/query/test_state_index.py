"""The current-state index against the Polars path, with sealed and merged runs.

Runs are sealed every few rows here (instead of every 20,000) so that a small
lake exercises every place a row can be: runs built at open, runs sealed from
recent commits, merged runs, and the recent rows themselves.
"""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import steme_lake as sl
from steme_lake import LakeOptions
from steme_lake.model.schema import RecordKind
from steme_lake.query import _index
from steme_lake.query._lookups import RunLookups
from steme_lake.query._options import ResolutionOptions

LENSES = ["recency", "consensus", "authority", "skeptic"]
OPTS = ResolutionOptions(half_life_days=2.0)


def _history(lake: sl.Lake, start: int, n: int) -> list[str]:
    """Writes on a few keys, each kind of follow-up record, every scope of supersession."""
    ids = []
    for i in range(start, start + n):
        at = f"2026-01-01T{i // 60:02d}:{i % 60:02d}:00Z"
        aid = lake.assert_(
            f"svc/{i % 3}/auth",
            f"p{i % 2}",
            f"v{i % 4}",
            agent=f"ag{i % 5}",
            confidence=0.3 + (i % 7) / 10,
            source=f"https://s/{i % 6}",
            at=at,
        )
        ids.append(aid)
        if i % 3 == 0:
            lake.vote(aid, agent=f"ag{(i + 1) % 5}", weight=1.0 if i % 2 else -0.5, at=at)
        if i % 5 == 1:
            lake.set_lifecycle(aid, "deprecated" if i % 2 else "approved", agent="ag0", at=at)
        if i % 4 == 2:
            lake.confirm(aid, agent="ag1", at=at)
        if i % 11 == 5:
            lake.supersede(aid, agent="ag2", kind="invalidate", reason="wrong", at=at)
        if i % 17 == 8:
            lake.supersede(
                agent="ag2", kind="replace", reason="bad source", source=f"https://s/{i % 6}", at=at
            )
        if i % 19 == 9:
            lake.supersede(
                agent="ag3",
                kind="invalidate",
                target_agent=f"ag{i % 5}",
                reason="agent misbehaved",
                window=("2026-01-01T00:00:00Z", at),
                at=at,
            )
    return ids


def _answers(lake: sl.Lake, as_of: str | None) -> list[tuple]:
    out = []
    for s, p, lens, lifecycle, sup in itertools.product(
        [f"svc/{k}/auth" for k in range(3)],
        ["p0", "p1"],
        LENSES,
        [None, ["approved", "proposed"]],
        [False, True],
    ):
        a = lake.query(
            s, p, agent="t", lens=lens, lifecycle=lifecycle, as_of=as_of, include_superseded=sup
        )
        out.append(
            (
                s,
                p,
                lens,
                a.status,
                a.assertion,
                a.value,
                round(a.confidence or 0, 9),
                tuple(c.assertion for c in a.candidates),
                tuple(round(c.effective_confidence, 9) for c in a.candidates),
                a.contributing,
                a.sources,
            )
        )
    return out


def _whole(lake: sl.Lake, as_of: str | None) -> list[pl.DataFrame]:
    """Whole-lake snapshots and a diff: from the index's frames when it is ready."""
    out = [
        lake.snapshot(as_of, lens=lens, lifecycle=lifecycle, include_superseded=sup).collect()
        for lens, lifecycle, sup in itertools.product(
            LENSES, [None, ["approved", "proposed"]], [False, True]
        )
    ]
    diff = lake.diff("2026-01-01T00:20:00Z", as_of or "2026-01-01T02:00:00Z", "svc/*")
    return [*out, diff.beliefs, diff.records]


# Runs merged two at a time as soon as there are more than 2, or three of about
# one size at a time (the default limit on runs is not reached here).
@pytest.fixture(params=[2, 12], ids=["pairs", "threes"])
def small_runs(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    monkeypatch.setattr(_index, "RUN_ROWS", 7)
    monkeypatch.setattr(_index, "MAX_RUNS", request.param)
    monkeypatch.setattr(_index, "BULK_ROWS", 10)


# Keys with more than HOT_ROWS assertions are resolved by the vectorized lenses
# over the index's frames: 0 sends every key there.
@pytest.mark.parametrize("hot_rows", [1_000, 0])
def test_index_answers_equal_the_polars_path(
    tmp_path: Path, small_runs: None, hot_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_index, "HOT_ROWS", hot_rows)
    path = tmp_path / "lake"
    with sl.open(path, options=LakeOptions(state_index="off", resolution=OPTS)) as lake:
        _history(lake, 0, 40)
        lake.flush()
    # Opened again: the first 40 are in runs built at open; the next 40 arrive
    # as commits, are sealed into runs every 7 rows, and runs are merged.
    with sl.open(path, options=LakeOptions(state_index="eager", resolution=OPTS)) as lake:
        _history(lake, 40, 40)
        # A bulk commit becomes a run of its own at once.
        lake.assert_many(
            pl.DataFrame(
                {
                    "subject": [f"svc/{i % 3}/auth" for i in range(15)],
                    "predicate": [f"p{i % 2}" for i in range(15)],
                    "object": [f"bulk{i % 4}" for i in range(15)],
                    "agent": [f"ag{i % 5}" for i in range(15)],
                    "source": [f"https://s/{i % 6}" for i in range(15)],
                    "at": [datetime(2026, 1, 1, 1, 19, i + 1, tzinfo=UTC) for i in range(15)],
                }
            )
        )
        _history(lake, 80, 3)
        index = lake._index  # the test checks the index's own shape
        assert index is not None
        assert len(index.keyed[RecordKind.ASSERTION].runs) >= 1
        assert index.keyed[RecordKind.ASSERTION].recent  # some rows not sealed yet
        eager = {t: _answers(lake, t) for t in (None, "2026-01-01T00:50:00Z")}
        eager_whole = {t: _whole(lake, t) for t in (None, "2026-01-01T00:50:00Z")}
    with sl.open(path, options=LakeOptions(state_index="off", resolution=OPTS)) as lake:
        off = {t: _answers(lake, t) for t in (None, "2026-01-01T00:50:00Z")}
        off_whole = {t: _whole(lake, t) for t in (None, "2026-01-01T00:50:00Z")}
    assert eager == off
    for t, frames in eager_whole.items():
        for ours, theirs in zip(frames, off_whole[t], strict=True):
            assert ours.height > 0
            assert_frame_equal(ours, theirs)
    statuses = {row[3] for rows in eager.values() for row in rows}
    assert {"answered", "contested"} <= statuses


def test_lookup_many_finds_each_key_once(tmp_path: Path, small_runs: None) -> None:
    with sl.open(tmp_path / "lake", options=LakeOptions(state_index="eager")) as lake:
        ids = _history(lake, 0, 30)
        index = lake._index
        assert index is not None
        votes = index.keyed[RecordKind.VOTE]
        table = lake.votes.collect()
        wanted = [ids[0], ids[3], ids[3], "0" * 64, ids[27]]
        found = votes.lookup_many(wanted)
        assert set(found) == set(wanted)
        for key, rows in found.items():
            expected = sorted(table.filter(table["target"] == key)["id"].to_list())
            assert sorted(r["id"] for r in rows) == expected
        assert found["0" * 64] == []
        assert votes.lookup(ids[3]) == found[ids[3]]
        # The same rows as one frame, for the vectorized lenses.
        distinct = list(dict.fromkeys(wanted))
        frame = votes.lookup_frame(distinct)
        assert sorted(frame["id"].to_list()) == sorted(
            r["id"] for rows in found.values() for r in rows
        )
        assert frame.schema == votes.schema
        assert votes.lookup_frame(["0" * 64]).height == 0
        # A busy key's ids come as a Series: the same rows, in runs and recent
        # ones, with more keys than are sliced out one by one.
        assert votes.runs and votes.recent
        assert_frame_equal(votes.lookup_frame(pl.Series(distinct)), frame)
        every = [*ids, "f" * 64]
        assert len(every) > 8
        by_list = votes.lookup_frame(every).sort("id")
        assert_frame_equal(votes.lookup_frame(pl.Series(every)).sort("id"), by_list)
        assert sorted(by_list["id"].to_list()) == sorted(
            table.filter(table["target"].is_in(every))["id"].to_list()
        )


def test_lookups_leave_out_hash_collisions(
    tmp_path: Path, small_runs: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a hash under which every id collides (their length), a lookup gathers
    every row of each run it searches, and finds only the rows of the ids asked
    for: by list or by Series, one key or many."""
    monkeypatch.setattr(
        _index, "_key_hash", lambda keys: keys.str.len_bytes().cast(pl.UInt64).to_numpy()
    )
    monkeypatch.setattr(_index, "_HASHED", {})
    options = LakeOptions(state_index="eager", resolution=OPTS)
    with sl.open(tmp_path / "lake", options=options) as lake:
        ids = _history(lake, 0, 30)
        index = lake._index
        assert index is not None
        votes = index.keyed[RecordKind.VOTE]
        assert votes.runs
        table = lake.votes.collect()
        for wanted in ([ids[3]], [ids[0], ids[5], ids[29]], ids[::2]):
            expected = sorted(table.filter(table["target"].is_in(wanted))["id"].to_list())
            assert sorted(votes.lookup_frame(wanted)["id"].to_list()) == expected
            assert sorted(votes.lookup_frame(pl.Series(wanted))["id"].to_list()) == expected
            found = votes.lookup_many(wanted)
            assert sorted(r["id"] for rows in found.values() for r in rows) == expected
        # Every key's answers through the frames (HOT_ROWS 0), all keys colliding.
        monkeypatch.setattr(_index, "HOT_ROWS", 0)
        colliding = {t: _answers(lake, t) for t in (None, "2026-01-01T00:20:00Z")}
    with sl.open(
        tmp_path / "lake", options=LakeOptions(state_index="off", resolution=OPTS)
    ) as lake:
        assert colliding == {t: _answers(lake, t) for t in (None, "2026-01-01T00:20:00Z")}


def _bulk(lake: sl.Lake, i: int) -> None:
    """A bulk commit (a run of its own): 12 rows on 3 keys, value ``b{i}`` last."""
    lake.assert_many(
        pl.DataFrame(
            {
                "subject": [f"bulk/{k % 3}" for k in range(12)],
                "predicate": ["p"] * 12,
                "object": [f"old{i}"] * 9 + [f"b{i}"] * 3,
                "agent": ["ag"] * 12,
                "source": [f"https://b/{i}/{k}" for k in range(12)],
            }
        )
    )


@pytest.mark.parametrize("merges", ["merged", "failing"])
def test_runs_are_merged_off_the_commit_path(
    lake_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    merges: str,
) -> None:
    """Commits only add runs; a thread merges them while questions are answered
    from the runs or their merge. A merge that fails leaves the runs as they were:
    slower, never wrong (and logged)."""
    monkeypatch.setattr(_index, "BULK_ROWS", 10)
    monkeypatch.setattr(_index, "MAX_RUNS", 2)
    if merges == "failing":

        def no_memory(runs: object) -> object:
            raise MemoryError("a merge ran out of memory")

        monkeypatch.setattr(_index, "_merged", no_memory)
    with sl.open(lake_path, options=LakeOptions(state_index="eager")) as lake:
        index = lake._index  # the test checks the index's own shape
        assert index is not None
        runs = index.keyed[RecordKind.ASSERTION]
        for i in range(40):
            _bulk(lake, i)
            # every commit's rows answer at once, merged or not
            for k in range(3):
                assert lake.query(f"bulk/{k}", "p", agent="q").value == f"b{i}"
        index.settle()
        assert all(lake.query(f"bulk/{k}", "p", agent="q").value == "b39" for k in range(3))
        if merges == "merged":
            assert index.merge_error is None and len(runs.runs) <= 2
            assert sum(len(h) for h, _ in runs.runs) == 40 * 12
        else:
            assert isinstance(index.merge_error, MemoryError) and len(runs.runs) == 40
            assert "could not be merged" in caplog.text


def _plain_written(
    frame: pl.DataFrame, roots: list[str], agents: list[str], since: int, until: int
) -> list[str]:
    """What `StateIndex.written` answers, by a filter of every assertion."""
    stamp = pl.col("recorded_at").dt.epoch("us")
    under = pl.any_horizontal(
        [(pl.col("subject") == r) | pl.col("subject").str.starts_with(r + "/") for r in roots]
    )
    found = frame.filter(pl.col("agent").is_in(agents), stamp >= since, stamp <= until, under)
    return sorted(found["id"].to_list())


@pytest.mark.parametrize("prepared", ["prepared", "on-demand", "background"])
def test_assertions_by_id_and_what_agents_wrote_equal_a_filter_of_them_all(
    tmp_path: Path, small_runs: None, prepared: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if prepared == "background":  # orders made on a thread (here: never): runs filtered
        monkeypatch.setattr("steme_lake.query._lookups.MAKE_NOW", 0)
        monkeypatch.setattr(RunLookups, "_make_wanted", lambda self: None)
    # Runs sealed every 7 rows and merged: rows in many runs, merged ones and
    # recent ones; subjects that share a beginning but not a tree ("svc/1" and
    # "svc/1-x", "svc/10"), trees at several depths.
    subjects = ["svc/1", "svc/1/a", "svc/1/a/b", "svc/1-x", "svc/10", "svc/2/a", "other"]
    with sl.open(tmp_path / "lake", options=LakeOptions(state_index="eager")) as lake:
        ids = []
        for i in range(90):
            ids.append(
                lake.assert_(
                    subjects[(i * 5) % len(subjects)],
                    f"p{i % 3}",
                    f"v{i}",
                    agent=f"ag{(i * 3) % 4}",
                    source=f"https://s/{i}",
                    at=f"2026-01-01T{i // 60:02d}:{i % 60:02d}:00Z",
                )
            )
            if prepared == "prepared" and i == 60:
                assert lake._index is not None
                assert lake._index.prepare_lookups() > 0
        index = lake._index
        assert index is not None
        index.settle()
        every = lake.assertions.collect()
        runs, recent = index.keyed[RecordKind.ASSERTION].split(RecordKind.ASSERTION)
        assert len(runs) > 1 and recent.height  # every place a row can be

        wanted = [ids[0], ids[41], ids[41], ids[89], "0" * 64]
        found = index.assertions(wanted)
        assert sorted(found["id"].to_list()) == sorted({ids[0], ids[41], ids[89]})
        theirs = every.filter(pl.col("id").is_in(wanted)).select(found.columns)
        assert_frame_equal(found.sort("id"), theirs.sort("id"), check_dtypes=False)
        assert index.assertions([]).height == 0
        # whether another id shares a wanted one's first 64 bits: not known until
        # the orders are made, so the lake reads the citations' own lists
        assert index.prefixes_shared([ids[0]]) == (prepared == "background")

        start = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1e6)
        minute = 60_000_000
        for roots, agents, since, until in [
            (["svc/1"], ["ag0", "ag3"], start, start + 89 * minute),
            (["svc/1/a"], ["ag0", "ag1", "ag2", "ag3"], start + 10 * minute, start + 50 * minute),
            (["svc/1", "svc/2"], ["ag1"], start, start + 200 * minute),
            (["svc/10", "other"], ["ag2", "nobody"], start + 30 * minute, start + 30 * minute),
            (["svc"], ["ag0"], start, start + 89 * minute),
            (["nothing/here"], ["ag0"], start, start + 89 * minute),
            (["svc/1-x"], ["nobody"], start, start + 89 * minute),
        ]:
            got = index.written(roots, agents, since, until)
            assert got.columns == ["id", "agent", "subject", "recorded_at"]
            assert sorted(got["id"].to_list()) == _plain_written(
                every, roots, agents, since, until
            ), (roots, agents)
        assert index.written([], ["ag0"], start, None).height == 0


def test_ids_sharing_their_first_64_bits_with_another_are_found(
    tmp_path: Path, small_runs: None
) -> None:
    # (the key indexes hold ids' first 64 bits: impact reads which ids a query
    # cites from them only when no other assertion shares a wanted one's)
    with sl.open(tmp_path / "lake", options=LakeOptions(state_index="eager")) as lake:
        ids = [lake.assert_("s", "p", i, agent="a", source=f"https://s/{i}") for i in range(40)]
        index = lake._index
        assert index is not None
        index.settle()
        assert not index.prefixes_shared(ids[:3])
        assert not index.prefixes_shared([*ids, "f" * 64])
        # an id the index holds, under another id's first 16 hex digits
        twin = ids[5][:16] + ("0" if ids[5][16] != "0" else "1") + ids[5][17:]
        assert index.prefixes_shared([twin])
        assert not index.prefixes_shared([ids[5]])
        recent = ids[-1][:16] + ("0" if ids[-1][16] != "0" else "1") + ids[-1][17:]
        assert index.prefixes_shared([ids[0], recent])  # among the unsealed rows too


def test_the_orders_of_runs_met_without_them_are_made_on_a_thread(
    tmp_path: Path, small_runs: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("steme_lake.query._lookups.MAKE_NOW", 0)
    with sl.open(tmp_path / "lake", options=LakeOptions(state_index="eager")) as lake:
        ids = [lake.assert_("s", "p", i, agent="a", source=f"https://s/{i}") for i in range(30)]
        index = lake._index
        assert index is not None
        index.settle()
        runs, _ = index.keyed[RecordKind.ASSERTION].split(RecordKind.ASSERTION)
        assert len(runs) > 1
        assert index.assertions([ids[3]])["id"].to_list() == [ids[3]]  # (a filter meanwhile)
        deadline = time.monotonic() + 30
        while len(index.lookups._orders) < len(runs) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert {id(f) for f in runs} <= set(index.lookups._orders)
        assert index.assertions([ids[3]])["id"].to_list() == [ids[3]]  # (by the orders)


def test_the_orders_of_merged_runs_go_with_them(tmp_path: Path, small_runs: None) -> None:
    # (orders hold their run's frame: kept after a merge, they would keep every
    # run ever sealed in memory)
    with sl.open(tmp_path / "lake", options=LakeOptions(state_index="eager")) as lake:
        for i in range(20):
            lake.assert_("s", "p", i, agent="a", source=f"https://s/{i}")
        index = lake._index
        assert index is not None
        index.settle()
        assert index.prepare_lookups() > 0
        before = set(index.lookups._orders)
        for i in range(20, 80):
            lake.assert_("s", "p", i, agent="a", source=f"https://s/{i}")
        index.settle()
        runs, _ = index.keyed[RecordKind.ASSERTION].split(RecordKind.ASSERTION)
        live = {id(f) for f in runs}
        assert before - live  # some runs of then were merged away ...
        assert set(index.lookups._orders) <= live  # ... and their orders with them
