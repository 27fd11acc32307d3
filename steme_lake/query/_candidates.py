"""The candidates for each (subject, predicate) as of T, with their effective confidence.

One lazy Polars pipeline serves point queries (filtered to one subject and
predicate first, so scans push the filter down) and whole-lake snapshots, so
the two can never disagree. As of T only records with ``recorded_at <= T``
exist; records at the same microsecond are ordered by id.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from steme_lake.query._options import ResolutionOptions
from steme_lake.query._paths import covers_expr

__all__ = ["ASSERTION_COLUMNS", "CANDIDATE_COLUMNS", "GROUP", "Tables", "candidates", "trust_for"]

GROUP = ["subject", "predicate"]
# The assertion columns resolution reads (the index keeps the same ones).
ASSERTION_COLUMNS = [
    "id",
    "recorded_at",
    "subject",
    "predicate",
    "object",
    "confidence",
    "source_hash",
    "agent",
    "lifecycle",
]
CANDIDATE_COLUMNS = [
    "id",
    "recorded_at",
    "subject",
    "predicate",
    "object",
    "confidence",
    "source_hash",
    "agent",
    "stage",
    "superseded",
    "last_use",
    "eff",
]
ORDER = ["recorded_at", "id"]  # "latest" means greatest (recorded_at, id)


@dataclass(frozen=True, slots=True)
class Tables:
    """The lake's tables as lazy frames (a consistent view, or an overlay on one)."""

    assertions: pl.LazyFrame
    votes: pl.LazyFrame
    lifecycle: pl.LazyFrame
    supersessions: pl.LazyFrame
    constraints: pl.LazyFrame
    confirmations: pl.LazyFrame
    trust: pl.LazyFrame


def as_of_lit(as_of: int) -> pl.Expr:
    """T as a UTC datetime literal. Made from the integer (17 µs), not from a
    Python datetime (225 µs): a busy key's point question makes several."""
    return pl.lit(as_of, dtype=pl.Int64).cast(pl.Datetime("us", "UTC"))


def _until(frame: pl.LazyFrame, as_of: int) -> pl.LazyFrame:
    return frame.filter(pl.col("recorded_at") <= as_of_lit(as_of))


def half_life_expr(subject: pl.Expr, opts: ResolutionOptions) -> pl.Expr:
    """Half-life in microseconds for each subject (null: no decay)."""
    default = None if opts.half_life_days is None else opts.half_life_days * 86_400_000_000
    expr: pl.Expr = pl.lit(default, dtype=pl.Float64)
    # Shortest prefix first, so the longest matching prefix is applied last and wins.
    for prefix, days in sorted(opts.half_lives.items(), key=lambda kv: len(kv[0])):
        value = None if days is None else days * 86_400_000_000
        expr = (
            pl.when(covers_expr(pl.lit(prefix), subject))
            .then(pl.lit(value, pl.Float64))
            .otherwise(expr)
        )
    return expr


def decayed(confidence: float, last_use: int, as_of: int, half: float) -> float:
    """A confidence halved every ``half`` µs since ``last_use`` (its assertion or
    latest confirmation), as of ``as_of``, for the Python lenses (`effective` is
    the vectorized form): one expression for a fresh answer and a remembered one
    brought forward (`_current.at`), so both give the same bits."""
    return float(confidence * 0.5 ** ((as_of - last_use) / half))


def effective(
    conf: pl.Expr, last_use: pl.Expr, subject: pl.Expr, as_of: int, opts: ResolutionOptions
) -> pl.Expr:
    """``confidence * 0.5 ** (age / half_life)``, age measured from the last use to T."""
    age = (as_of_lit(as_of) - last_use).dt.total_microseconds().cast(pl.Float64)
    half = half_life_expr(subject, opts)
    return pl.when(half.is_null()).then(conf).otherwise(conf * pl.lit(0.5).pow(age / half))


def seed_expr(agent: pl.Expr, opts: ResolutionOptions) -> pl.Expr:
    exprs = [
        agent.str.starts_with(p[:-1]) if p.endswith("*") else agent == p for p in opts.seed_agents
    ]
    is_seed = pl.any_horizontal(exprs) if exprs else pl.lit(False)
    return pl.when(is_seed).then(pl.lit(opts.seed_trust)).otherwise(pl.lit(opts.default_trust))


def trust_for(
    pairs: pl.LazyFrame, trust: pl.LazyFrame, as_of: int, opts: ResolutionOptions
) -> pl.LazyFrame:
    """Trust of each (agent, subject) as of T: the latest score of the longest topic covering it."""
    scores = (
        _until(trust, as_of)
        .select("agent", "topic", "score", "recorded_at", "id")
        .join(pairs, on="agent", how="inner")
        .filter(covers_expr(pl.col("topic"), pl.col("subject")))
        .with_columns(pl.col("topic").str.strip_chars_end("/").str.len_chars().alias("_len"))
        .group_by("agent", "subject")
        .agg(pl.col("score").sort_by(["_len", "recorded_at", "id"]).last().alias("_score"))
    )
    return pairs.join(scores, on=["agent", "subject"], how="left").select(
        "agent",
        "subject",
        pl.coalesce(pl.col("_score"), seed_expr(pl.col("agent"), opts)).alias("trust"),
    )


def candidates(
    tables: Tables,
    *,
    as_of: int,
    subject: str | None = None,
    predicate: str | None = None,
    lifecycle: tuple[str, ...] | None = None,
    min_confidence: float | None = None,
    include_superseded: bool = False,
    opts: ResolutionOptions,
    subject_filter: pl.Expr | None = None,
) -> pl.LazyFrame:
    """The filtered candidates with ``stage``, ``superseded``, ``last_use`` and ``eff``."""
    a = _until(tables.assertions, as_of)
    if subject is not None:
        a = a.filter(pl.col("subject") == subject)
    if predicate is not None:
        a = a.filter(pl.col("predicate") == predicate)
    if subject_filter is not None:
        a = a.filter(subject_filter)
    a = a.select(ASSERTION_COLUMNS).cache()

    # What is aimed at an assertion id (its latest lifecycle stage, a supersession
    # of it, of its agent's window, its latest confirmation), gathered into one
    # row per id first: the candidates then meet it in one join on their 64-hex
    # ids, where a join each cost as much (hashing every candidate's id) even
    # when the other side was empty.
    # No semi-join to the candidates' ids first: it hashes every candidate's id
    # once more, and the join below drops what it would.
    stages = (
        _until(tables.lifecycle, as_of)
        .group_by("target")
        .agg(pl.col("stage").sort_by(ORDER).last().alias("_stage"))
    )
    sup = _until(tables.supersessions, as_of)
    by_id = sup.filter(pl.col("scope") == "assertion").select("target")
    if subject is not None:
        # One key's question: of the lake's supersessions by id (thousands), only
        # those of its candidates go on to be grouped and joined (a busy key at
        # 10M: its candidates 8-15 -> 6-11 ms).
        by_id = by_id.join(a.select(pl.col("id").alias("target")), on="target", how="semi")
    by_id = by_id.unique().with_columns(pl.lit(True).alias("_by_id"))
    by_source = (
        sup.filter(pl.col("scope") == "source")
        .group_by("source_hash")
        .agg(pl.col("recorded_at").max().alias("_source_cut"))
    )
    windows = sup.filter(pl.col("scope") == "agent_window").select(
        pl.col("target_agent").alias("agent"), "window_start", "window_end"
    )
    by_window = (
        a.select("id", "agent", "recorded_at")
        .join(windows, on="agent", how="inner")
        .filter(
            (pl.col("window_start").is_null() | (pl.col("recorded_at") >= pl.col("window_start")))
            & (pl.col("window_end").is_null() | (pl.col("recorded_at") <= pl.col("window_end")))
        )
        .select(pl.col("id").alias("target"))
        .unique()
        .with_columns(pl.lit(True).alias("_by_window"))
    )
    used = (
        _until(tables.confirmations, as_of)
        .group_by("target")
        .agg(pl.col("recorded_at").max().alias("_confirmed"))
    )
    aimed = (
        pl.concat([stages, by_id, by_window, used], how="diagonal")
        .group_by("target")
        .agg(
            pl.col("_stage").drop_nulls().first(),
            pl.col("_by_id").any(),
            pl.col("_by_window").any(),
            pl.col("_confirmed").max(),
        )
    )
    c = (
        a.join(aimed, left_on="id", right_on="target", how="left")
        .join(by_source, on="source_hash", how="left")
        .with_columns(
            pl.coalesce("_stage", "lifecycle").alias("stage"),
            (
                pl.col("_by_id").fill_null(False)
                | (
                    pl.col("_source_cut").is_not_null()
                    & (pl.col("recorded_at") <= pl.col("_source_cut"))
                )
                | pl.col("_by_window").fill_null(False)
            ).alias("superseded"),
            pl.max_horizontal("recorded_at", "_confirmed").alias("last_use"),
        )
    )
    c = c.with_columns(
        effective(pl.col("confidence"), pl.col("last_use"), pl.col("subject"), as_of, opts).alias(
            "eff"
        )
    )
    if lifecycle is not None:
        c = c.filter(pl.col("stage").is_in(list(lifecycle)))
    if not include_superseded:
        c = c.filter(~pl.col("superseded"))
    if min_confidence is not None:
        c = c.filter(pl.col("eff") >= min_confidence)
    return c.select(CANDIDATE_COLUMNS)
