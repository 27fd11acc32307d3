"""Signed who-trusts-whom networks (SNAP Bitcoin OTC and Bitcoin Alpha) into a lake.

Kumar, Spezzano, Subrahmanian, Faloutsos, "Edge Weight Prediction in Weighted
Signed Networks", ICDM 2016; Kumar et al., "REV2", WSDM 2018. Rows are
``rater, ratee, rating, unix_time`` (ratings -10..+10), with or without a header.

**How a rating is stored.** The lake's trust evidence is votes on assertions,
a vote counting for the assertion's author. So each rated agent ``j`` states
one assertion about itself, ``<topic>/<j> trustworthy true`` (by ``j``, from
the data set's source, dated a day before the first rating), and each rating
``i -> j`` is a vote by ``i`` on it with weight ``rating / 10`` in ``[-1, 1]``,
at the rating's time. The Gardener's graph then has the edge ``i -> j`` with
that weight on topic ``<topic>``, and the lake answers "how trusted was j as of
2013?" like any other question. Agents are named ``<prefix><id>``.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from steme_lake._exceptions import ValidationError

__all__ = ["read_signed_edges", "signed_network_frames"]

DAY_US = 86_400_000_000


def read_signed_edges(path: str | Path) -> pl.DataFrame:
    """The file as ``source``, ``target`` (text ids), ``rating`` and ``at`` (UTC)."""
    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"{path}: no such file")
    with path.open() as handle:
        first = handle.readline()
    has_header = not first.split(",")[0].strip().lstrip("-").isdigit()
    frame = pl.read_csv(
        path,
        has_header=has_header,
        new_columns=["source", "target", "rating", "time"],
        schema_overrides={"source": pl.String, "target": pl.String, "rating": pl.Float64,
                          "time": pl.Int64},
    )  # fmt: skip
    if frame.is_empty():
        raise ValidationError(f"{path}: no ratings")
    bad = frame.filter(
        pl.col("rating").is_null()
        | ~pl.col("rating").is_between(-10, 10)
        | pl.col("time").is_null()
    )
    if bad.height:
        raise ValidationError(
            f"{path}: {bad.height} rows have a rating outside -10..10 or no time, e.g. {bad.row(0)}"
        )
    return frame.with_columns(
        pl.from_epoch(pl.col("time"), time_unit="s").dt.replace_time_zone("UTC").alias("at")
    ).drop("time")


def signed_network_frames(
    path: str | Path, *, topic: str, prefix: str = "", source: str | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The assertions (one per rated agent) and the votes (one per rating), as frames
    for `Lake.assert_many` and `Lake.vote_many` (votes name their assertion by
    ``subject``; see `import_signed_network`)."""
    edges = read_signed_edges(path)
    evidence = source or f"snap:{Path(path).name}"
    start = edges["at"].min()
    ratees = edges.group_by("target").agg(pl.len().alias("ratings")).sort("target")
    assertions = ratees.select(
        (pl.lit(f"{topic}/{prefix}") + pl.col("target")).alias("subject"),
        pl.lit("trustworthy").alias("predicate"),
        pl.lit(True).alias("object"),
        (pl.lit(prefix) + pl.col("target")).alias("agent"),
        pl.lit(1.0).alias("confidence"),
        pl.lit(evidence).alias("source"),
        pl.lit(start).dt.offset_by("-1d").alias("at"),
    )
    votes = edges.sort("at", "source", "target").select(
        (pl.lit(f"{topic}/{prefix}") + pl.col("target")).alias("subject"),
        (pl.lit(prefix) + pl.col("source")).alias("agent"),
        (pl.col("rating") / 10.0).alias("weight"),
        "at",
    )
    return assertions, votes
