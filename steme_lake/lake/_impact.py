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

from dataclasses import dataclass

import polars as pl

from steme_lake._exceptions import ValidationError

__all__ = ["MAX_DEPTH", "Followed", "check_depth", "follow"]

MAX_DEPTH = 10
_VIA = pl.List(pl.String)
PARENT = "parent chain"
RECEIVED = "written after receiving it"


def check_depth(depth: object) -> int:
    """``depth`` as a level count, or a clear error.

    Examples
    --------
    >>> check_depth(3)
    3
    >>> check_depth(0)
    Traceback (most recent call last):
    ...
    steme_lake._exceptions.ValidationError: depth must be a whole number from 1 to 10 (1: what it touched directly), got 0
    """  # noqa: E501
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= MAX_DEPTH:
        raise ValidationError(
            f"depth must be a whole number from 1 to {MAX_DEPTH} (1: what it touched "
            f"directly), got {depth!r}"
        )
    return depth


@dataclass(frozen=True, slots=True)
class Followed:
    """The rows found, each with ``depth`` and ``via``."""

    queries: pl.DataFrame
    assertions: pl.DataFrame
    constraints: pl.DataFrame


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
_ASSERTION_COLUMNS = (
    "id", "parent", "agent", "subject", "predicate", "object", "lifecycle", "recorded_at",
)  # fmt: skip


def follow(
    audit: pl.LazyFrame,
    assertions: pl.LazyFrame,
    constraints: pl.LazyFrame,
    root: str,
    depth: int,
) -> Followed:
    """Everything downstream of ``root`` up to ``depth`` levels. The frames are
    those of the window already (what happened up to ``until``)."""
    via: dict[str, list[str]] = {root: []}
    level_of: dict[str, int] = {root: 0}
    subject_of: dict[str, str] = {}
    why: dict[str, str] = {}
    frontier = [root]
    seen_queries: set[str] = set()
    query_frames: list[pl.DataFrame] = []
    table = assertions.select(*_ASSERTION_COLUMNS)
    for level in range(1, depth + 1):
        if not frontier:
            break
        # this level's assertions, earliest first: a query citing several of them
        # is reached through the one it won with, or else the earliest
        order = (
            table.filter(pl.col("id").is_in(frontier))
            .select(pl.col("id").alias("cites"), "subject", "recorded_at")
            .collect()
            .sort("recorded_at", "cites")
            .with_row_index("_order")
            .select("cites", pl.col("_order").cast(pl.Int64), "subject")
        )
        subject_of.update(order.select("cites", "subject").iter_rows())
        order = order.drop("subject")
        # The queries citing an assertion of this level, not met at an earlier level.
        cited = (
            audit.filter(pl.col("contributing").list.eval(pl.element().is_in(frontier)).list.any())
            .select(*_QUERY_COLUMNS)
            .collect()
            .filter(~pl.col("query_id").is_in(list(seen_queries)))
            .explode("contributing")
            .rename({"contributing": "cites"})
            .join(order, on="cites", how="inner")
            .with_columns((pl.col("winner") == pl.col("cites")).fill_null(False).alias("won"))
            # through the answer it got when that was one of them, else the earliest
            .sort(
                ["won", "_order", "recorded_at", "query_id"], descending=[True, False, False, False]
            )
            .unique("query_id", keep="first", maintain_order=True)
            .sort("recorded_at", "query_id")
        )
        seen_queries.update(cited["query_id"])
        query_frames.append(
            cited.with_columns(
                pl.lit(level, dtype=pl.Int64).alias("depth"),
                pl.Series("via", [[*via[c], c] for c in cited["cites"]], dtype=_VIA),
            )
        )
        found: dict[str, list[str]] = {}
        # the parent chains below this level's assertions
        current = frontier
        while current:
            children = table.filter(pl.col("parent").is_in(current)).select("id", "parent")
            step = []
            for child, parent in children.collect().sort("id").iter_rows():
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
            later = (
                table.join(receipts.lazy(), left_on="agent", right_on="asked_by", how="inner")
                .filter(
                    pl.col("recorded_at") > pl.col("_first"),
                    pl.col("id") != pl.col("cites"),
                    (pl.col("subject") == pl.col("_subject"))
                    | pl.col("subject").str.starts_with(pl.col("_subject") + "/"),
                )
                .select("id", "cites", "query_id", "_first")
                .collect()
                .sort("_first", "query_id", "id")
            )
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
    queries = pl.concat(query_frames, how="vertical").drop("winner", "_order")
    derived = [i for i in via if i != root]
    found_rows = (
        table.filter(pl.col("id").is_in(derived))
        .collect()
        .with_columns(
            pl.col("id").replace_strict(why, default=None, return_dtype=pl.String).alias("why"),
            pl.col("id")
            .replace_strict(level_of, default=None, return_dtype=pl.Int64)
            .alias("depth"),
        )
    )
    found_rows = found_rows.with_columns(
        pl.Series("via", [via[i] for i in found_rows["id"]], dtype=_VIA)
    ).sort("depth", "recorded_at", "id")
    # constraints citing an assertion found at level L are at level L + 1
    reached = [i for i, lv in level_of.items() if lv < depth]
    cites = constraints.filter(pl.col("cites").is_in(reached)).collect()
    cites = cites.with_columns(
        pl.Series("depth", [level_of[c] + 1 for c in cites["cites"]], dtype=pl.Int64),
        pl.Series("via", [[*via[c], c] for c in cites["cites"]], dtype=_VIA),
    ).sort("depth", "recorded_at")
    return Followed(queries, found_rows, cites)
