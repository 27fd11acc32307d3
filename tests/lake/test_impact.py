"""Transitive impact against a plain reference implementation, on random
histories: the same rows at the same depth through the same path, depth 1 is the
direct impact, and every ``via`` is a chain of real links in the lake."""

from __future__ import annotations

import datetime as dt
import itertools
import random
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import steme_lake as sl
from steme_lake.storage.keyindex import INDEX_DIR

AGENTS = [f"agent-{i}" for i in range(5)]
SUBJECTS = ["s/0", "s/0/x", "s/0/x/y", "s/1", "s/1/z", "s/10", "t/0"]


def _history(lake: sl.Lake, seed: int, *, flush: bool = False) -> list[str]:
    """Assertions (some derived from others by parent links), questions that cite
    them, and constraints citing some, in a random order; the assertion ids.
    ``flush``: written to files every 50 steps (the last 10 stay in the tail)."""
    rng = random.Random(seed)
    ids: list[str] = []
    for step in range(160):
        if flush and step and step % 50 == 0:
            lake.flush()
        roll = rng.random()
        if roll < 0.45 or not ids:
            parent = rng.choice(ids) if ids and rng.random() < 0.3 else None
            ids.append(
                lake.assert_(
                    rng.choice(SUBJECTS), rng.choice(["p", "q"]), rng.randrange(6),
                    agent=rng.choice(AGENTS), source=f"src-{step}", parent=parent,
                    confidence=rng.choice([0.5, 0.9]),
                )
            )  # fmt: skip
        elif roll < 0.93:
            lake.query(
                rng.choice(SUBJECTS), rng.choice(["p", "q"]), agent=rng.choice(AGENTS),
                lens=rng.choice(["recency", "consensus", "authority"]),
            )  # fmt: skip
        else:
            lake.add_constraint(
                rng.choice(SUBJECTS), agent="human-sre", reason="checked", forbidden=7,
                cites=rng.choice(ids),
            )  # fmt: skip
    return ids


def _tree(subject: str, root: str) -> bool:
    return subject == root or subject.startswith(root + "/")


def reference(lake: sl.Lake, root: str, depth: int, until: Any = None) -> dict[str, Any]:
    """Transitive impact as the docs say it, with plain Python over all the rows."""
    cut = None if until is None else pl.lit(until).cast(pl.Datetime("us", "UTC"))
    a_frame = lake.assertions.collect()
    q_frame = lake.audit.sort("recorded_at", "id").collect()
    c_frame = lake.constraints.collect()
    if cut is not None:
        a_frame = a_frame.filter(pl.col("recorded_at") <= cut)
        q_frame = q_frame.filter(pl.col("recorded_at") <= cut)
        c_frame = c_frame.filter(pl.col("recorded_at") <= cut)
    a = {r["id"]: r for r in a_frame.iter_rows(named=True)}
    qs = list(q_frame.iter_rows(named=True))
    via: dict[str, list[str]] = {root: []}
    level_of = {root: 0}
    why: dict[str, str] = {}
    queries: dict[str, tuple[int, list[str], str, bool]] = {}
    frontier = [root]
    for level in range(1, depth + 1):
        if not frontier:
            break
        rank = {
            x: r for r, x in enumerate(sorted(frontier, key=lambda x: (a[x]["recorded_at"], x)))
        }
        got: list[tuple[dict[str, Any], str]] = []
        for q in qs:
            hits = [x for x in q["contributing"] or [] if x in rank]
            if q["id"] in queries or not hits:
                continue
            cites = q["winner"] if q["winner"] in hits else min(hits, key=rank.__getitem__)
            queries[q["id"]] = (level, [*via[cites], cites], cites, q["winner"] == cites)
            got.append((q, cites))
        found: dict[str, list[str]] = {}
        current = list(frontier)
        while current:
            step = []
            for x in sorted(a):
                p = a[x]["parent"]
                if p in current and x not in via and x not in found:
                    found[x] = [*(via[p] if p in via else found[p]), p]
                    why[x] = "parent chain"
                    step.append(x)
            current = step
        receipts: dict[tuple[str, str], tuple[Any, str]] = {}
        for q, cites in got:
            if q["winner"] == cites:
                key = (q["agent"], cites)
                receipts[key] = min(receipts.get(key, (q["recorded_at"], q["id"])),
                                    (q["recorded_at"], q["id"]))  # fmt: skip
        later = sorted(
            (first, query_id, x, cites)
            for (agent, cites), (first, query_id) in receipts.items()
            for x in a
            if a[x]["agent"] == agent and a[x]["recorded_at"] > first and x != cites
            and _tree(a[x]["subject"], a[cites]["subject"])
        )  # fmt: skip
        for _, query_id, x, cites in later:
            if x not in via and x not in found:
                found[x] = [*via[cites], cites, query_id]
                why[x] = "written after receiving it"
        for x in found:
            level_of[x] = level
        via.update(found)
        frontier = list(found)
    constraints = {
        c["id"]: (level_of[c["cites"]] + 1, [*via[c["cites"]], c["cites"]])
        for c in c_frame.iter_rows(named=True)
        if c["cites"] in level_of and level_of[c["cites"]] < depth
    }
    return {
        "queries": queries,
        "assertions": {x: (level_of[x], via[x], why[x]) for x in via if x != root},
        "constraints": constraints,
    }


def _got(impact: sl.Impact) -> dict[str, Any]:
    return {
        "queries": {
            r["query_id"]: (r["depth"], r["via"], r["cites"], r["won"])
            for r in impact.queries.iter_rows(named=True)
        },
        "assertions": {
            r["id"]: (r["depth"], r["via"], r["why"])
            for r in impact.assertions.iter_rows(named=True)
        },
        "constraints": {
            r["id"]: (r["depth"], r["via"]) for r in impact.constraints.iter_rows(named=True)
        },
    }


@pytest.mark.parametrize(
    ("seed", "kept"),
    [(1, "unflushed"), (2, "unflushed"), (3, "unflushed"), (4, "in files"), (5, "in files"),
     (6, "in files without key indexes")],
)  # fmt: skip
# What the receivers wrote afterwards is read from the state index once it is
# ready ("eager": at open), else through the subject key index ("off").
@pytest.mark.parametrize("index", ["eager", "off"])
def test_same_as_the_reference_at_every_depth(
    lake_path: Path, seed: int, kept: str, index: str
) -> None:
    if kept != "unflushed":
        with sl.open(lake_path) as lake:
            _history(lake, seed, flush=True)
        if kept == "in files without key indexes":  # a lake from before them: scanned
            shutil.rmtree(lake_path / INDEX_DIR)
    with sl.open(lake_path, options=sl.LakeOptions(state_index=index)) as lake:
        ids = _history(lake, seed) if kept == "unflushed" else lake.assertions.collect()["id"]
        ids = sorted(ids)
        rng = random.Random(seed)
        # the most used assertions, and a few at random
        cited = (
            lake.audit.select(pl.col("contributing").explode()).collect()["contributing"]
            .drop_nulls().value_counts(sort=True)["contributing"].head(4).to_list()
        )  # fmt: skip
        deep = 0
        for root in [*cited, *rng.sample(ids, 3)]:
            for depth in (1, 2, 3):
                got = _got(lake.impact(root, depth=depth))
                assert got == reference(lake, root, depth), (root, depth)
                deep = max([deep, *(d for d, *_ in got["queries"].values())])
            # depth 1 is the direct impact: the deeper result's level-1 rows
            one = lake.impact(root, depth=1)
            three = lake.impact(root, depth=3)
            # the assertions found are listed as the lake holds them (from memory
            # and their parent links, with the index; else from the files)
            columns = [c for c in three.assertions.columns if c not in ("why", "depth", "via")]
            held = lake.assertions.filter(pl.col("id").is_in(three.assertions["id"].to_list()))
            assert (
                three.assertions.select(columns)
                .sort("id")
                .equals(held.select(columns).collect().sort("id"))
            )
            assert one.queries.equals(three.queries.filter(pl.col("depth") == 1))
            assert one.votes.equals(three.votes)
        middle = lake.audit.select(pl.col("recorded_at").median()).collect().item()
        for root in cited[:2]:
            assert _got(lake.impact(root, depth=3, until=middle)) == reference(
                lake, root, 3, until=middle
            )
        assert deep >= 2  # the histories reach past the first level


@pytest.mark.parametrize("kept", ["unflushed", "in files"])
def test_queries_at_the_same_time_are_ordered_by_id(lake_path: Path, kept: str) -> None:
    """Imported queries can share a microsecond: the earliest receipt is then the
    one whose id sorts first, as the reference has it."""
    with sl.open(lake_path) as lake:
        # (fixed times, so the ids are the same every run)
        root = lake.assert_("s/0", "p", 1, agent="a", source="root", at="2026-01-01T00:00:00Z")
        at = dt.datetime(2026, 1, 1, 0, 0, 1, tzinfo=dt.UTC)
        same = [
            {"agent": "b", "subject": "s/0", "predicate": p, "at": at, "winner": root,
             "contributing": [root], "value": 1}
            for p in ("p", "q", "w")
        ]  # fmt: skip
        queries = lake.import_audit(same)
        assert min(queries) not in (queries[0], queries[-1])  # not the first or last written
        derived = lake.assert_("s/0/x", "p", 2, agent="b", source="after")
        if kept == "in files":
            lake.flush()
        got = lake.impact(root, depth=2)
        row = got.assertions.filter(pl.col("id") == derived).row(0, named=True)
        assert row["via"] == [root, min(queries)]
        assert _got(got) == reference(lake, root, 2)


def test_every_via_is_a_chain_of_real_links(lake_path: Path) -> None:
    with sl.open(lake_path) as lake:
        _history(lake, 5)
        a = {r["id"]: r for r in lake.assertions.collect().iter_rows(named=True)}
        q = {r["id"]: r for r in lake.audit.collect().iter_rows(named=True)}
        cited = (
            lake.audit.select(pl.col("contributing").explode()).collect()["contributing"]
            .drop_nulls().value_counts(sort=True)["contributing"].head(3).to_list()
        )  # fmt: skip

        def linked(x: str, y: str) -> bool:
            """x -> y is a real link: a parent to its child, an assertion to a query
            citing it, or a query to an assertion its asker wrote afterwards."""
            if x in a and y in a:
                return a[y]["parent"] == x
            if x in a and y in q:
                return x in (q[y]["contributing"] or [])
            if x in q and y in a:
                return q[x]["agent"] == a[y]["agent"] and q[x]["recorded_at"] < a[y]["recorded_at"]
            return False

        checked = 0
        for root in cited:
            impact = lake.impact(root, depth=4)
            for frame, key in ((impact.queries, "query_id"), (impact.assertions, "id")):
                for row in frame.iter_rows(named=True):
                    path = [*row["via"], row[key]]
                    assert path[0] == root and all(p in a or p in q for p in path)
                    assert all(linked(x, y) for x, y in itertools.pairwise(path))
                    checked += 1
        assert checked > 20


def test_a_query_citing_several_is_reached_through_the_answer_it_got(tmp_lake: sl.Lake) -> None:
    root = tmp_lake.assert_("a/root", "p", 1, agent="x", source="s")
    first = tmp_lake.assert_("b/derived", "p", 2, agent="y", source="s", parent=root)
    second = tmp_lake.assert_("b/derived", "p", 2, agent="z", source="s2", parent=root)
    answer = tmp_lake.query("b/derived", "p", agent="reader", lens="consensus")
    assert {first, second} <= set(answer.contributing)
    impact = tmp_lake.impact(root, depth=2)
    (row,) = impact.queries.iter_rows(named=True)
    won = answer.assertion
    assert won in {first, second}
    assert (row["depth"], row["cites"], row["via"], row["won"]) == (2, won, [root, won], True)


def test_a_level_too_wide_to_follow_is_said_not_followed(
    tmp_lake: sl.Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a busy subject the next level would hold most of the lake: past
    FRONTIER_LIMIT assertions a level is not followed, and the summary says so."""
    from steme_lake.lake import _impact

    root = tmp_lake.assert_("a/root", "p", 1, agent="x", source="s")
    kids = [
        tmp_lake.assert_(f"b/{i}", "p", i, agent="y", source=f"s{i}", parent=root) for i in range(3)
    ]
    tmp_lake.query("b/0", "p", agent="reader")
    full = tmp_lake.impact(root, depth=2)
    counts = dict(zip(full.summary["kind"], full.summary["count"], strict=True))
    assert counts["levels followed"] == 2 and counts["assertions not followed further"] == 0
    assert full.queries["depth"].to_list() == [2]
    monkeypatch.setattr(_impact, "FRONTIER_LIMIT", 2)
    cut = tmp_lake.impact(root, depth=2)
    counts = dict(zip(cut.summary["kind"], cut.summary["count"], strict=True))
    assert counts["levels followed"] == 1 and counts["assertions not followed further"] == 3
    assert cut.queries.is_empty() and set(cut.assertions["id"]) == set(kids)


def test_a_level_cited_too_widely_is_said_not_followed(
    lake_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past QUERY_LIMIT audit records citing a level's assertions (counted in the
    key indexes before any is read), the level is not followed."""
    from steme_lake.lake import _impact

    with sl.open(lake_path) as lake:
        root = lake.assert_("a/root", "p", 1, agent="x", source="s")
        for i in range(3):
            lake.assert_(f"b/{i}", "p", i, agent="y", source=f"s{i}", parent=root)
        for i in range(3):
            lake.query(f"b/{i}", "p", agent="reader")
        lake.flush()  # (the bound is counted in the files' key indexes)
        full = lake.impact(root, depth=2)
        assert full.queries["depth"].to_list() == [2, 2, 2]
        monkeypatch.setattr(_impact, "QUERY_LIMIT", 2)
        cut = lake.impact(root, depth=2)
        counts = dict(zip(cut.summary["kind"], cut.summary["count"], strict=True))
        assert counts["levels followed"] == 1 and counts["assertions not followed further"] == 3
        assert cut.queries.is_empty() and cut.assertions.height == 3
        monkeypatch.setattr(_impact, "QUERY_LIMIT", 3)  # at the limit: followed
        assert lake.impact(root, depth=2).queries.height == 3
