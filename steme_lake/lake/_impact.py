"""Impact that follows bad data downstream, level by level.

Level 1 is what an assertion touched directly: the queries whose audit records
cite it, the agents that asked them, the assertions derived from it (its whole
parent chain below it, and what the agents it won answers for wrote afterwards
on its subject or under it) and the constraints citing it. Level 2 is the same
for each assertion found at level 1, and so on. Every row carries its level
(``depth``) and ``via``: the ids from the bad assertion to the row, the row
excluded, each link real (an assertion to a query citing it, a query to an
assertion its asker wrote afterwards, a parent to its child).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypedDict

import polars as pl
import pyarrow as pa

from steme_lake._exceptions import ValidationError
from steme_lake.model.schema import RecordKind
from steme_lake.storage.keyindex import Keyed

__all__ = ["MAX_DEPTH", "QUERY_LIMIT", "Followed", "check_depth", "follow"]

MAX_DEPTH = 10
# A level that reaches more assertions than this is not followed further: on a
# busy subject the next level would hold most of the lake (measured on the 1M
# benchmark lake: 46,726 assertions at level 1 fed 899,370 queries at level 2,
# and level 3 ran out of 24 GiB). The summary says where it stopped.
FRONTIER_LIMIT = 20_000
# Nor is a level whose assertions more audit records than this cite (counted in
# the key indexes, before any is read): on the 10M benchmark lake, the 7,491
# assertions one root reached at level 1 were cited widely enough that reading
# level 2's audit records ran the process out of 24 GiB. At 1M no level of the
# benchmark's roots comes near it (the widest: 193k queries over 3 levels).
QUERY_LIMIT = 200_000
_VIA = pl.List(pl.String)
_VIA_ARROW = pa.list_(pa.string())
PARENT = "parent chain"
RECEIVED = "written after receiving it"


def check_depth(depth: object) -> int:
    """``depth`` as a level count, or a clear error.

    Examples
    --------
    >>> check_depth(3)
    3
    >>> try:
    ...     check_depth(0)
    ... except ValidationError as exc:
    ...     print(str(exc).split(" (")[0])
    depth must be a whole number from 1 to 10
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= MAX_DEPTH:
        raise ValidationError(
            f"depth must be a whole number from 1 to {MAX_DEPTH} (1: what it touched "
            f"directly), got {depth!r}"
        )
    return depth


class _Span(TypedDict, total=False):
    """A window of `Keyed.rows` and `Keyed.count` (µs)."""

    since: int | None
    until: int | None


@dataclass(frozen=True, slots=True)
class Followed:
    """The rows found, each with ``depth`` and ``via``."""

    queries: pl.DataFrame
    assertions: pl.DataFrame
    constraints: pl.DataFrame
    levels: int  # the levels followed
    not_followed: int  # assertions found whose own impact was not followed (the limit)


_QUERY_COLUMNS = (
    pl.col("id").alias("query_id"),
    "recorded_at",
    pl.col("agent").alias("asked_by"),
    "op",
    "subject",
    "predicate",
    "lens",
    "lifecycle_filter",
    "value",
    "winner",
    "contributing",
)
_AUDIT_COLUMNS = (
    "id", "recorded_at", "agent", "op", "subject", "predicate", "lens", "lifecycle_filter",
    "value", "winner", "contributing",
)  # fmt: skip
_ASSERTION_COLUMNS = (
    "id", "parent", "agent", "subject", "predicate", "object", "lifecycle", "recorded_at",
)  # fmt: skip


# (subject trees, agents, since, until) -> the assertions by those agents on those
# trees in that window: id, agent, subject, recorded_at (see `StateIndex.written`)
Written = Callable[[Sequence[str], Sequence[str], int, int | None], pl.DataFrame]
# ids -> those assertions, from memory (see `StateIndex.assertions`): every column
# of `_ASSERTION_COLUMNS` but ``parent``
Known = Callable[[Sequence[str]], pl.DataFrame]


def follow(
    keyed: Keyed,
    constraints: pl.LazyFrame,
    root: str,
    depth: int,
    root_row: pl.DataFrame | None = None,
    until: int | None = None,
    written: Written | None = None,
    known: Known | None = None,
    shared: Callable[[Sequence[str]], bool] | None = None,
) -> Followed:
    """Everything downstream of ``root`` up to ``depth`` levels, up to ``until``
    (µs). Citations, parents, subject trees and assertions by id are read through
    ``keyed`` (the key indexes: a few row groups, whatever the lake's size);
    ``constraints`` is that of the window already. ``root_row``: the root's ``id``, ``subject``
    and ``recorded_at``, if the caller read them (saves reading them again).
    ``written``: what agents wrote on subject trees, from memory (the state
    index) when it is ready; else through the subject key index. ``known``: the
    assertions by id, from memory (the state index), when it is ready; else
    through the id key index. ``shared``: whether another assertion has the
    first 64 bits of one of some ids (the state index's `prefixes_shared`):
    when not, which assertions a query cites is taken from the citation
    index's pairs instead of read (see `KeyIndexes.rows`, ``matched``)."""
    via: dict[str, list[str]] = {root: []}
    level_of: dict[str, int] = {root: 0}
    subject_of: dict[str, str] = {}
    why: dict[str, str] = {}
    frontier = [root]
    seen_queries: set[str] = set()
    query_frames: list[pl.DataFrame] = []
    window: _Span = {"until": until}
    first: int | None = None  # when the earliest assertion followed was recorded (µs)
    levels = not_followed = 0
    for level in range(1, depth + 1):
        if not frontier:
            break
        if len(frontier) > FRONTIER_LIMIT:
            not_followed = len(frontier)
            break
        # this level's assertions, earliest first: a query citing several of them
        # is reached through the one it won with, or else the earliest
        if level == 1 and root_row is not None:
            level_rows = root_row
        elif known is not None:
            level_rows = _until(known(frontier), until).select("id", "subject", "recorded_at")
        else:
            level_rows = keyed.rows(
                RecordKind.ASSERTION, "id", frontier, ("id", "subject", "recorded_at"), **window
            )
        order = (
            level_rows.lazy()
            .select(pl.col("id").alias("cites"), "subject", "recorded_at")
            .collect()
            .sort("recorded_at", "cites")
            .with_row_index("_order")
        )
        # Nothing cites or derives from an assertion before it exists: the files
        # (partitioned by time) from before this level's earliest are never read.
        since = order["recorded_at"].dt.epoch("us").min()
        assert since is None or isinstance(since, int)
        first = since if first is None else first
        span: _Span = {"since": since, "until": until}
        if (
            level > 1
            and keyed.count(RecordKind.AUDIT, "contributing", frontier, **span) > QUERY_LIMIT
        ):
            not_followed = len(frontier)  # cited too widely to list: not followed
            break
        levels = level
        order = order.select("cites", pl.col("_order").cast(pl.Int64), "subject")
        subject_of.update(order.select("cites", "subject").iter_rows())
        order = order.drop("subject")
        # The queries citing an assertion of this level, not met at an earlier level.
        asked = (
            # (each query's citations of this level only: the data files' lists
            # of ids are the costliest column to read; see `KeyIndexes.rows`)
            keyed.rows(
                RecordKind.AUDIT,
                "contributing",
                frontier,
                _AUDIT_COLUMNS,
                **span,
                matched=shared is not None and not shared(frontier),
            )
            .select(*_QUERY_COLUMNS)
            .filter(~pl.col("query_id").is_in(list(seen_queries)))
        )
        # each through the answer it got when that was one of them, else the earliest
        # (only the ids are spread over the citations: a consensus answer cites many)
        hits = (
            asked.select("query_id", "winner", pl.col("contributing").alias("cites"))
            .explode("cites")
            .join(order, on="cites", how="inner")
            .with_columns((pl.col("winner") == pl.col("cites")).fill_null(False).alias("won"))
            .sort(["won", "_order", "query_id"], descending=[True, False, False])
            .unique("query_id", keep="first", maintain_order=True)
            .select("query_id", "cites", "won")
        )
        cited = (
            asked.drop("contributing")
            .join(hits, on="query_id", how="inner")
            .sort("recorded_at", "query_id")
        )
        seen_queries.update(cited["query_id"])
        query_frames.append(
            cited.with_columns(
                pl.lit(level, dtype=pl.Int64).alias("depth"),
                _paths(cited["cites"], via, through=True),
            )
        )
        found: dict[str, list[str]] = {}
        # the parent chains below this level's assertions
        current = frontier
        while current:
            children = keyed.rows(RecordKind.ASSERTION, "parent", current, ("id", "parent"), **span)
            step = []
            for child, parent in children.sort("id").iter_rows():
                if child in via or child in found:
                    continue
                found[child] = [*(via[parent] if parent in via else found[parent]), parent]
                why[child] = PARENT
                step.append(child)
            current = step
        # what the agents that received an answer it won wrote afterwards, on its
        # subject or under it
        receipts = (
            cited.filter(pl.col("won"))
            .sort("recorded_at", "query_id")
            .group_by("asked_by", "cites", maintain_order=True)
            .agg(pl.col("recorded_at").first().alias("_first"), pl.col("query_id").first())
            .with_columns(
                pl.col("cites")
                .replace_strict(subject_of, default=None, return_dtype=pl.String)
                .alias("_subject")
            )
        )
        if receipts.height:
            later = _written_after(keyed, receipts, until, written)
            # each through the first answer its writer received (on that subject tree)
            for rid, cites, query_id in later.select("id", "cites", "query_id").iter_rows():
                if rid in via or rid in found:
                    continue
                found[rid] = [*via[cites], cites, query_id]
                why[rid] = RECEIVED
        for rid in found:
            level_of[rid] = level
        via.update(found)
        frontier = list(found)
    queries = pl.concat(query_frames, how="vertical").drop("winner")
    derived = [i for i in via if i != root]
    if known is not None and derived:
        # from memory, and from the files only the parent links of those that have one
        found_rows = (
            _until(known(derived), until)
            .join(keyed.parents(derived, since=first, until=until), on="id", how="left")
            .select(_ASSERTION_COLUMNS)
        )
    else:
        found_rows = keyed.rows(RecordKind.ASSERTION, "id", derived, _ASSERTION_COLUMNS, **window)
    found_rows = found_rows.with_columns(
        pl.col("id").replace_strict(why, default=None, return_dtype=pl.String).alias("why"),
        pl.col("id").replace_strict(level_of, default=None, return_dtype=pl.Int64).alias("depth"),
    )
    found_rows = found_rows.with_columns(_paths(found_rows["id"], via, through=False)).sort(
        "depth", "recorded_at", "id"
    )
    # constraints citing an assertion found at level L are at level L + 1
    reached = [i for i, lv in level_of.items() if lv < levels]
    cites = constraints.filter(pl.col("cites").is_in(reached)).collect()
    cites = cites.with_columns(
        pl.Series("depth", [level_of[c] + 1 for c in cites["cites"]], dtype=pl.Int64),
        _paths(cites["cites"], via, through=True),
    ).sort("depth", "recorded_at")
    return Followed(queries, found_rows, cites, levels, not_followed)


def _until(frame: pl.DataFrame, until: int | None) -> pl.DataFrame:
    """The rows recorded up to ``until`` (µs; None: all)."""
    if until is None:
        return frame
    return frame.filter(pl.col("recorded_at").dt.epoch("us") <= until)


def _paths(keys: pl.Series, via: dict[str, list[str]], *, through: bool) -> pl.Series:
    """``via[k]`` for each key (with ``k`` itself at the end when ``through``), made
    once per distinct key and joined: a query level holds tens of thousands of
    rows over a few cited ids, and a list column built from Python lists row by
    row took most of a deep impact's time (3.6 of 7.4 s over eight on the 100k lake)."""
    distinct = keys.unique(maintain_order=True)
    paths = pl.DataFrame(
        {
            "_k": distinct,
            # (through Arrow: twice as fast as Polars at building lists from Python)
            "via": pl.Series(
                pa.array([[*via[k], k] if through else via[k] for k in distinct], _VIA_ARROW)
            ),
        }
    )
    return (
        keys.alias("_k")
        .to_frame()
        .join(paths, on="_k", how="left", maintain_order="left")
        .get_column("via")
    )


def _written_after(
    keyed: Keyed, receipts: pl.DataFrame, until: int | None, written: Written | None
) -> pl.DataFrame:
    """What each receiver wrote after its first receipt, on the received
    assertion's subject or under it: ``id``, ``cites``, ``query_id``, earliest
    receipt first.

    A join on the agent alone would pair every receipt with every assertion of
    its agent (millions of rows at 1M assertions): the rows are joined on the
    agent and the subject tree instead, each written subject standing for itself
    and its ancestors that were received."""
    received = set(receipts["_subject"].drop_nulls())
    since = receipts["_first"].dt.epoch("us").min()
    assert isinstance(since, int)
    agents = receipts["asked_by"].unique().to_list()
    if written is not None:  # from memory, the receivers' alone
        found = written(sorted(received), agents, since, until)
    else:  # what was written on those subject trees (the subject index), then by whom
        found = keyed.rows(
            RecordKind.ASSERTION,
            "subject",
            sorted(received),
            ("id", "agent", "subject", "recorded_at"),
            since=since,
            until=until,
        )
    found = found.filter(
        pl.col("agent").is_in(agents), pl.col("recorded_at") > receipts["_first"].min()
    )
    roots: list[tuple[str, str]] = []
    for subject in found["subject"].unique().to_list():
        parts = subject.split("/")
        roots += [
            (subject, root)
            for root in ("/".join(parts[: i + 1]) for i in range(len(parts)))
            if root in received
        ]
    trees = pl.DataFrame(roots, schema={"subject": pl.String, "_subject": pl.String}, orient="row")
    # Per receiver and subject tree only its first receipt counts (a later one
    # reaches nothing the first did not, and is not the path): without this, a
    # receiver's writes times its receipts on one subject made billions of rows.
    first = (
        receipts.sort("_first", "query_id")
        .group_by("asked_by", "_subject", maintain_order=True)
        .first()
    )
    return (
        found.join(trees, on="subject", how="inner")
        .join(first, left_on=["agent", "_subject"], right_on=["asked_by", "_subject"])
        # (a cited assertion is older than the query citing it: never its own receipt)
        .filter(pl.col("recorded_at") > pl.col("_first"))
        .sort("_first", "query_id", "id")
        .select("id", "cites", "query_id")
    )
