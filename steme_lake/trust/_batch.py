"""Batch trust analysis of any signed edge list: a frame, Parquet files, or a lake.

For the analyst's question "who is trusted in this network, and who is fair?",
on data that need not be in a lake: SNAP's Bitcoin networks, an export of
another system's ratings, or the edges of `TrustNamespace.graph`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from steme_lake._exceptions import ValidationError
from steme_lake.trust._options import TrustOptions
from steme_lake.trust._rank import fairness_goodness, rank_with

__all__ = ["METHODS", "analyze", "read_edges"]

METHODS = ("trustrank", "fairness_goodness")
PROGRESS_EDGES = 1_000_000  # a progress bar from this many edges on (when on a terminal)


def read_edges(
    data: Any, *, source: str = "source", target: str = "target", weight: str = "weight"
) -> pl.DataFrame:
    """Edges as ``source``, ``target``, ``weight`` from a Polars or Arrow frame, or
    from Parquet files (a path, a glob, a folder, or a list of them)."""
    if isinstance(data, pl.LazyFrame):
        data = data.collect()
    elif isinstance(data, pa.Table):
        data = pl.from_arrow(data)
    elif isinstance(data, str | Path) or (
        isinstance(data, Sequence) and data and all(isinstance(d, str | Path) for d in data)
    ):
        paths = [data] if isinstance(data, str | Path) else list(data)
        files = []
        for p in map(Path, paths):
            files += sorted(p.rglob("*.parquet")) if p.is_dir() else [p]
        missing = [str(f) for f in files if "*" not in str(f) and not f.exists()]
        if missing or not files:
            raise ValidationError(f"no Parquet files at {missing or paths}")
        data = pl.read_parquet([str(f) for f in files])
    if not isinstance(data, pl.DataFrame):
        raise ValidationError(
            "edges must be a Polars or Arrow frame, Parquet path(s), or a Lake; "
            f"got {type(data).__name__}"
        )
    names = {source: "source", target: "target", weight: "weight"}
    missing = [c for c in names if c not in data.columns]
    if missing:
        close = {c: [x for x in data.columns if x.lower() == c.lower()] for c in missing}
        raise ValidationError(
            f"the edges have no column {missing} (columns: {data.columns}); name them with "
            f"source=, target=, weight= {close if any(close.values()) else ''}".rstrip()
        )
    return data.select(
        pl.col(source).cast(pl.String).alias("source"),
        pl.col(target).cast(pl.String).alias("target"),
        pl.col(weight).cast(pl.Float64).alias("weight"),
    )


def _progress(edges: int, wanted: bool | None, total: int) -> Callable[[int, float], None] | None:
    if wanted is False or (wanted is None and (edges < PROGRESS_EDGES or not sys.stderr.isatty())):
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    bar = tqdm(total=total, desc="TrustRank", unit="it", leave=False)

    def tick(i: int, change: float) -> None:
        bar.update(1)
        bar.set_postfix(change=f"{change:.2e}")
        if change == 0 or i >= total:
            bar.close()

    return tick


def analyze(
    data: Any,
    *,
    method: str = "trustrank",
    seeds: Sequence[str] | None = None,
    source: str = "source",
    target: str = "target",
    weight: str = "weight",
    options: TrustOptions | None = None,
    progress: bool | None = None,
) -> pl.DataFrame:
    """Rank the nodes of a signed network; a Polars frame, best first.

    Parameters
    ----------
    data
        A Polars or Arrow frame of edges, Parquet file(s) of them, or a `Lake`
        (then every topic of its Gardener graph, as of now, nothing stored).
    method
        ``"trustrank"`` (score, pagerank, rank; seeds from ``seeds`` or the
        options' patterns) or ``"fairness_goodness"`` (Kumar et al., 2016).
    progress
        A progress bar (tqdm): None shows one for a million edges or more on a
        terminal.

    Examples
    --------
    >>> import polars as pl
    >>> e = pl.DataFrame({"rater": ["a", "b", "c"], "ratee": ["c", "c", "b"],
    ...                   "rating": [5, 2, -3]})
    >>> analyze(e, source="rater", target="ratee", weight="rating")["agent"][0]
    'c'
    >>> analyze(e, source="rater", target="ratee", weight="rating",
    ...         method="fairness_goodness")["agent"][0]
    'c'
    """
    if method not in METHODS:
        raise ValidationError(f"unknown method {method!r}; use one of: {', '.join(METHODS)}")
    o = options or TrustOptions()
    from steme_lake.lake import Lake

    if isinstance(data, Lake):
        if method != "trustrank":
            edges = data.trust.graph(options=o).select("source", "target", "weight")
            return fairness_goodness(edges).sort("goodness", descending=True)
        return data.trust.run(options=o, store=False, constraints=False)
    edges = read_edges(data, source=source, target=target, weight=weight)
    if method == "fairness_goodness":
        return fairness_goodness(edges).sort("goodness", descending=True)
    result = rank_with(
        edges,
        o,
        seeds=None if seeds is None else list(seeds),
        on_iteration=_progress(edges.height, progress, o.max_iterations),
    )
    return result.scores.sort("rank")
