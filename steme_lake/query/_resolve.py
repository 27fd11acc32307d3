"""Resolving questions: one (subject, predicate), the whole lake, or a context's constraints."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from typing import Any, Final

import polars as pl

from steme_lake._utils.timeparse import us_to_datetime
from steme_lake.query._answer import ActiveConstraint, Candidates
from steme_lake.query._candidates import GROUP, ORDER, Tables, _until, candidates, effective
from steme_lake.query._options import ResolutionOptions
from steme_lake.query._paths import covers_expr
from steme_lake.query.lenses import EXTRA, LensContext, get_lens

__all__ = [
    "ENGINE",
    "KEY_ORDER",
    "PointResult",
    "active_constraints",
    "resolve_point",
    "snapshot",
    "violations",
]


# The engine resolution runs on (a busy key's point question, a snapshot).
# Polars' default (streaming) took 1.1-1.4 s for a 1M-assertion snapshot that
# the in-memory engine answers in 0.3-0.5 s on this 2-core VM: window
# expressions (`over`) and sorted aggregations are slow in the streaming engine.
ENGINE: Final = "in-memory"


@dataclass(frozen=True, slots=True)
class PointResult:
    status: str
    value: Any
    confidence: float | None
    lifecycle: str | None
    winner: str | None
    candidates: Candidates


def resolve_point(
    tables: Tables,
    subject: str,
    predicate: str,
    *,
    lens: str,
    as_of: int,
    lifecycle: tuple[str, ...] | None,
    min_confidence: float | None,
    include_superseded: bool,
    opts: ResolutionOptions,
) -> PointResult:
    fn = get_lens(lens)
    c = (
        candidates(
            tables,
            as_of=as_of,
            subject=subject,
            predicate=predicate,
            lifecycle=lifecycle,
            min_confidence=min_confidence,
            include_superseded=include_superseded,
            opts=opts,
        )
        .sort(ORDER)
        .collect(engine=ENGINE)
    )
    found = Candidates(c)
    if c.height == 0:
        return PointResult("no_answer", None, None, None, None, found)
    out = fn(c.lazy(), LensContext(tables, as_of, opts)).collect(engine=ENGINE)
    row = out.row(0, named=True)
    winner = row["winner"]
    stage = c.filter(pl.col("id") == winner)["stage"].item() if winner is not None else None
    value = None if row["value"] is None else json.loads(row["value"])
    return PointResult(row["status"], value, row["confidence"], stage, winner, found)


# Rows in (subject, predicate) order: sorted as one struct, which Polars
# row-encodes once, in half the time of a sort by the two columns (1M-assertion
# lake's snapshot of 264k keys: 81 against 167 ms; the same order).
KEY_ORDER = pl.struct(GROUP)


def snapshot(
    tables: Tables,
    *,
    lens: str,
    as_of: int,
    lifecycle: tuple[str, ...] | None,
    min_confidence: float | None,
    include_superseded: bool,
    opts: ResolutionOptions,
    subject_filter: pl.Expr | None = None,
    ordered: bool = True,
) -> pl.LazyFrame:
    """The resolved belief for every (subject, predicate) as of T, in key order
    (``ordered=False``: in no order, for a caller that joins them first)."""
    fn = get_lens(lens)
    c = candidates(
        tables,
        subject_filter=subject_filter,
        as_of=as_of,
        lifecycle=lifecycle,
        min_confidence=min_confidence,
        include_superseded=include_superseded,
        opts=opts,
    )
    answers = fn(c, LensContext(tables, as_of, opts))
    if not set(EXTRA) <= set(answers.collect_schema().names()):
        counts = c.group_by(GROUP).agg(pl.len().alias("candidates"))
        stages = c.select(pl.col("id").alias("winner"), pl.col("stage").alias("lifecycle"))
        answers = answers.join(counts, on=GROUP, how="left").join(stages, on="winner", how="left")
    out = answers.select(
        *GROUP,
        "value",
        "confidence",
        "lifecycle",
        pl.col("winner").alias("assertion"),
        "status",
        "candidates",
    )
    return out.sort(KEY_ORDER) if ordered else out


def active_constraints(
    tables: Tables, context: str, predicate: str | None, *, as_of: int, opts: ResolutionOptions
) -> list[ActiveConstraint]:
    """Constraints in force as of T for ``context`` and its parent paths, newest first."""
    cons = _until(tables.constraints, as_of).filter(covers_expr(pl.col("context"), pl.lit(context)))
    if predicate is not None:
        cons = cons.filter(pl.col("predicate").is_null() | (pl.col("predicate") == predicate))
    retired = (
        _until(tables.supersessions, as_of)
        .filter(pl.col("scope") == "assertion")
        .select(pl.col("target").alias("id"))
    )
    used = (
        _until(tables.confirmations, as_of)
        .group_by("target")
        .agg(pl.col("recorded_at").max().alias("_confirmed"))
    )
    frame = (
        cons.join(retired, on="id", how="anti")
        .join(used, left_on="id", right_on="target", how="left")
        .with_columns(pl.max_horizontal("recorded_at", "_confirmed").alias("_last_use"))
        .with_columns(
            effective(pl.lit(1.0), pl.col("_last_use"), pl.col("context"), as_of, opts).alias(
                "freshness"
            )
        )
        .sort(ORDER, descending=True)
        .collect()
    )
    return [
        ActiveConstraint(
            id=r["id"],
            context=r["context"],
            predicate=r["predicate"],
            forbidden=None if r["forbidden"] is None else json.loads(r["forbidden"]),
            must_use=None if r["must_use"] is None else json.loads(r["must_use"]),
            reason=r["reason"],
            agent=r["agent"],
            recorded_at=r["recorded_at"],
            freshness=r["freshness"],
        )
        for r in frame.iter_rows(named=True)
    ]


def _nfc(value: Any) -> Any:
    """Text inside a JSON value in Unicode normal form C: a proposal typed in NFD
    ("cafe" + U+0301) still meets a constraint written in NFC ("caf\u00e9")."""
    if isinstance(value, str):
        return value if value.isascii() else unicodedata.normalize("NFC", value)
    if isinstance(value, list):
        return [_nfc(v) for v in value]
    if isinstance(value, dict):
        return {_nfc(k): _nfc(v) for k, v in value.items()}
    return value


def violations(found: list[ActiveConstraint], proposed: Any) -> list[ActiveConstraint]:
    """The constraints ``proposed`` breaks: forbidden (or in a forbidden list), or not
    must_use; text compared in Unicode normal form C."""
    out = []
    proposed = _nfc(proposed)
    for c in found:
        forbidden = _nfc(c.forbidden)
        hit = forbidden is not None and (
            proposed == forbidden or (isinstance(forbidden, list) and proposed in forbidden)
        )
        if hit or (c.must_use is not None and proposed != _nfc(c.must_use)):
            out.append(c)
    return out


def as_datetime(as_of: int) -> Any:
    return us_to_datetime(as_of)
