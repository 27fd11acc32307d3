"""TrustRank of every topic as tasks on an engine (`steme_lake.engine`).

The topics are split into shares by a hash of their name; each task reads the
lake itself (a `PinnedView`), builds its share's edges (`build_edges`'s
``share``) and ranks each of its topics. The driver ranks the global topic
(``""``: every edge) from the shares' edges, concatenated and sorted as one
build sorts them, so every topic's ranking sees the very same edge list, in
the same order, as the single-process run: the scores are equal bit for bit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from steme_lake.engine import Engine, PinnedView, pin
from steme_lake.engine._engines import progress_bar
from steme_lake.trust._graph import EDGE_SCHEMA, build_edges
from steme_lake.trust._options import TrustOptions
from steme_lake.trust._rank import rank_with

if TYPE_CHECKING:
    from steme_lake.lake import Lake

__all__ = ["rank_on", "rank_share", "ranked"]

_EDGE_ORDER = ("topic", "source", "target", "kind", "assertion", "at", "weight")


def ranked(
    topic: str, part: pl.DataFrame, options: TrustOptions, *, start: pl.DataFrame | None = None
) -> pl.DataFrame:
    """One topic's ranking as `TrustNamespace.run` returns it (topic first)."""
    result = rank_with(part, options, start=start)
    return result.scores.with_columns(
        pl.lit(topic).alias("topic"),
        pl.lit(result.iterations).alias("iterations"),
        pl.lit(result.converged).alias("converged"),
        pl.lit(result.seeded).alias("seeded"),
    ).select("topic", pl.exclude("topic"))


def rank_share(
    shared: tuple[PinnedView, int, TrustOptions, bool], share: tuple[int, int]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A task: the ranking of each of its share's topics, and the share's edges (when
    the driver ranks the global topic; else none)."""
    view, as_of, options, with_edges = shared
    edges = build_edges(view.tables(), view.audit(), as_of, options, share=share)
    parts = edges.partition_by("topic", as_dict=True, maintain_order=True)
    frames = [ranked(str(t[0]), part, options) for t, part in sorted(parts.items())]
    scores = pl.concat(frames, how="vertical") if frames else _empty(options)
    return scores, (edges if with_edges else edges.clear())


def rank_on(
    engine: Engine, lake: Lake, as_of: int, options: TrustOptions, *, with_global: bool = True
) -> tuple[pl.DataFrame, int]:
    """Every topic's ranking (the global one too, ``with_global``), and the sequence
    number of the lake position read."""
    view = pin(lake)
    shares = engine.tasks()
    parts = list(
        engine.imap(
            rank_share,
            (view, as_of, options, with_global),
            [(k, shares) for k in range(shares)],
            label="TrustRank",
            progress=progress_bar("TrustRank"),
        )
    )
    found = [p[1] for p in parts if p[1].height]
    edges = (
        pl.concat(found, how="vertical").sort(*_EDGE_ORDER)
        if found
        else pl.DataFrame(schema=EDGE_SCHEMA)
    )
    frames = [p[0] for p in parts if p[0].height]
    if with_global:
        frames.insert(0, ranked("", edges, options))
    found_any = pl.concat(frames, how="vertical") if frames else _empty(options)
    return found_any, view.covered


def _empty(options: TrustOptions) -> pl.DataFrame:
    return ranked("", pl.DataFrame(schema=EDGE_SCHEMA), options).clear()
