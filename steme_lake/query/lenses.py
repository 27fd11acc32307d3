"""Lenses: how the candidates for one (subject, predicate) become one answer.

Each lens maps the candidate frame to one row per (subject, predicate) with
``status`` (``answered``, ``no_answer`` or ``contested``), ``winner`` (an
assertion id), ``value`` (JSON text) and ``confidence``. Lenses are vectorized,
so the same code answers a point query and a whole-lake snapshot.

- ``recency``: the latest assertion wins; confidence is its effective confidence.
- ``consensus``: each value's support is the sum, over the assertions carrying
  it, of the assertion's effective confidence (its author's vote) plus every
  vote's weight times the voter's trust (an agent's latest vote counts);
  the best-supported value wins; confidence is its share of all positive
  support (1.0: undisputed). No positive support: ``no_answer``.
- ``authority``: the assertion with the highest trust(agent, topic) times
  effective confidence wins; confidence is its effective confidence.
- ``skeptic``: answers only a value carried by at least two independent
  assertions (two distinct agents *and* two distinct sources) that no other
  value contradicts with effective confidence at or above
  ``skeptic_contradiction``; otherwise ``contested``. Confidence combines the
  value's assertions as ``1 - prod(1 - eff)``.

Ties go to the latest assertion, (recorded_at, id) last.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from steme_lake._exceptions import ValidationError
from steme_lake.query._candidates import GROUP, ORDER, Tables, _until, trust_for
from steme_lake.query._options import ResolutionOptions

__all__ = ["EXTRA", "LENSES", "LensContext", "get_lens", "lens_names", "register_lens"]

OUTPUT = [*GROUP, "status", "winner", "value", "confidence"]
# A lens may also give, per key, the number of ``candidates`` and the winner's
# ``lifecycle``; a snapshot works them out itself for a lens that does not.
EXTRA = ["candidates", "lifecycle"]


@dataclass(frozen=True, slots=True)
class LensContext:
    tables: Tables
    as_of: int
    opts: ResolutionOptions


Lens = Callable[[pl.LazyFrame, LensContext], pl.LazyFrame]
LENSES: dict[str, Lens] = {}
# Lenses answered by another path (the constraint check), listed for discovery.
SPECIAL = ("constraints",)


def register_lens(name: str) -> Callable[[Lens], Lens]:
    """Register a lens under ``name`` (a function: candidates, context -> answers)."""

    def add(fn: Lens) -> Lens:
        if name in LENSES or name in SPECIAL:
            raise ValueError(f"a lens named {name!r} is already registered")
        LENSES[name] = fn
        return fn

    return add


def lens_names() -> list[str]:
    return sorted([*LENSES, *SPECIAL])


def get_lens(name: object) -> Lens:
    if not isinstance(name, str) or name not in LENSES:
        raise ValidationError(f"unknown lens {name!r}; the lenses are: {', '.join(lens_names())}")
    return LENSES[name]


def _last(column: str, order: list[str]) -> pl.Expr:
    return pl.col(column).sort_by(order).last()


@register_lens("recency")
def recency(c: pl.LazyFrame, ctx: LensContext) -> pl.LazyFrame:
    # Each key's rows at its latest time (one pass over the candidates), and among
    # those few the greatest id: not a sort of every key's candidates. It also
    # gives what a snapshot shows beside the answer (see `EXTRA`).
    latest = c.with_columns(
        pl.col("recorded_at").max().over(GROUP).alias("_latest"),
        pl.len().over(GROUP).alias("_n"),
    ).filter(pl.col("recorded_at") == pl.col("_latest"))
    return latest.group_by(GROUP).agg(
        pl.lit("answered").alias("status"),
        _last("id", ["id"]).alias("winner"),
        _last("object", ["id"]).alias("value"),
        _last("eff", ["id"]).alias("confidence"),
        pl.col("_n").first().cast(pl.UInt32).alias("candidates"),
        _last("stage", ["id"]).alias("lifecycle"),
    )


@register_lens("authority")
def authority(c: pl.LazyFrame, ctx: LensContext) -> pl.LazyFrame:
    trust = trust_for(c.select("agent", "subject").unique(), ctx.tables.trust, ctx.as_of, ctx.opts)
    order = ["_score", *ORDER]
    return (
        c.join(trust, on=["agent", "subject"], how="left")
        .with_columns((pl.col("trust") * pl.col("eff")).alias("_score"))
        .group_by(GROUP)
        .agg(
            pl.lit("answered").alias("status"),
            _last("id", order).alias("winner"),
            _last("object", order).alias("value"),
            _last("eff", order).alias("confidence"),
        )
    )


@register_lens("consensus")
def consensus(c: pl.LazyFrame, ctx: LensContext) -> pl.LazyFrame:
    votes = (
        _until(ctx.tables.votes, ctx.as_of)
        .join(c.select("id", "subject"), left_on="target", right_on="id", how="inner")
        .group_by("target", "agent")
        .agg(_last("weight", ORDER), pl.col("subject").first())
    )
    trust = trust_for(
        votes.select("agent", "subject").unique(), ctx.tables.trust, ctx.as_of, ctx.opts
    )
    support = (
        votes.join(trust, on=["agent", "subject"], how="left")
        .group_by("target")
        .agg((pl.col("weight") * pl.col("trust")).sum().alias("_votes"))
    )
    per_value = (
        c.join(support, left_on="id", right_on="target", how="left")
        .with_columns((pl.col("eff") + pl.col("_votes").fill_null(0.0)).alias("_support"))
        .group_by([*GROUP, "object"])
        .agg(
            pl.col("_support").sum().alias("_total"),
            pl.col("recorded_at").max().alias("_latest"),
            _last("id", ORDER).alias("_latest_id"),
            _last("id", ["_support", *ORDER]).alias("_best"),
        )
        .with_columns(pl.col("_total").clip(lower_bound=0).sum().over(GROUP).alias("_positive"))
    )
    order = ["_total", "_latest", "_latest_id"]
    return (
        per_value.group_by(GROUP)
        .agg(
            _last("_total", order).alias("_win"),
            _last("_positive", order).alias("_positive"),
            _last("_best", order).alias("winner"),
            _last("object", order).alias("value"),
        )
        .with_columns(
            pl.when(pl.col("_win") > 0)
            .then(pl.lit("answered"))
            .otherwise(pl.lit("no_answer"))
            .alias("status"),
            pl.when(pl.col("_win") > 0)
            .then(pl.col("_win") / pl.col("_positive"))
            .alias("confidence"),
        )
        .with_columns(
            pl.when(pl.col("status") == "answered").then(pl.col("winner")).alias("winner"),
            pl.when(pl.col("status") == "answered").then(pl.col("value")).alias("value"),
        )
        .select(OUTPUT)
    )


@register_lens("skeptic")
def skeptic(c: pl.LazyFrame, ctx: LensContext) -> pl.LazyFrame:
    threshold = ctx.opts.skeptic_contradiction
    per_value = (
        c.group_by([*GROUP, "object"])
        .agg(
            # Two distinct agents and two distinct sources always contain a pair of
            # assertions that differ in both: two independent witnesses.
            ((pl.col("agent").n_unique() >= 2) & (pl.col("source_hash").n_unique() >= 2)).alias(
                "_indep"
            ),
            (pl.col("eff").max() >= threshold).alias("_strong"),
            (1.0 - (1.0 - pl.col("eff")).product()).alias("_combined"),
            _last("id", ORDER).alias("_latest"),
        )
        .with_columns(pl.col("_strong").cast(pl.Int64).sum().over(GROUP).alias("_n_strong"))
        .with_columns(
            (
                pl.col("_indep") & ((pl.col("_n_strong") - pl.col("_strong").cast(pl.Int64)) == 0)
            ).alias("_passes")
        )
    )
    passing = pl.col("_passes")
    return (
        per_value.group_by(GROUP)
        .agg(
            passing.cast(pl.Int64).sum().alias("_n_pass"),
            pl.col("_latest").filter(passing).first().alias("winner"),
            pl.col("object").filter(passing).first().alias("value"),
            pl.col("_combined").filter(passing).first().alias("confidence"),
        )
        .with_columns(
            pl.when(pl.col("_n_pass") == 1)
            .then(pl.lit("answered"))
            .otherwise(pl.lit("contested"))
            .alias("status")
        )
        .with_columns(
            [
                pl.when(pl.col("_n_pass") == 1).then(pl.col(n)).alias(n)
                for n in ("winner", "value", "confidence")
            ]
        )
        .select(OUTPUT)
    )
