"""Ranking a signed trust graph: personalised PageRank with a one-step distrust
discount (TrustRank / EigenTrust family), and fairness/goodness for signed
networks (Kumar, Spezzano, Subrahmanian, Faloutsos, ICDM 2016).

Sparse linear algebra (``scipy.sparse``), no Python loops over edges.

**TrustRank as computed here.** Positive edge weights, summed per pair, are
normalised per source into a transition matrix ``P``. The walk follows an edge
with probability ``damping`` and otherwise teleports to the seeds (uniformly
over the seeds in the graph; over every node if none is); a node with no
positive out-edge teleports too. ``pagerank`` is the stationary vector: it
sums to 1. Distrust is then applied once, never propagated: each node ``i``
spends the share of its opinion that is negative, ``|w-_ij| / sum_j |w_ij|``,
times its own PageRank, as a discount on ``j``:
``discounted_j = max(0, pagerank_j - sum_i pagerank_i * |w-_ij| / W_i)``.
So a correction by a trusted agent costs more than one by an untrusted one,
and the enemy of my enemy gains nothing. Finally ``score = r / (1 + r)`` with
``r = N * discounted``: an agent as trusted as an average one (``r = 1``)
scores 0.5, which is what an agent with no score at all is given by the lenses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp

from steme_lake._exceptions import ValidationError
from steme_lake.trust._options import TrustOptions

__all__ = ["RankResult", "fairness_goodness", "rank_with", "trustrank"]


@dataclass(frozen=True, slots=True)
class RankResult:
    """One ranked graph: a frame per node, and how the iteration went."""

    scores: pl.DataFrame  # agent, score, pagerank, discounted, rank, seed
    iterations: int
    converged: bool
    seeded: bool  # False: no seed was in the graph, the teleport was uniform


def _index(edges: pl.DataFrame) -> tuple[pl.Series, np.ndarray, np.ndarray, np.ndarray]:
    """The node names (in order of first appearance) and each edge's source and
    target as positions in them.

    Names are factorised by their 64-bit hashes (integer grouping and joining: a
    third of the time of doing it on the text), then checked: every edge end must
    equal the name its hash found. Should two names ever share a hash, the exact
    (slower) text join is used instead."""
    ends = pl.concat([edges["source"], edges["target"]])
    hashes = ends.hash(seed=0).to_frame("h")
    first = (
        hashes.with_row_index("row").group_by("h", maintain_order=True).agg(pl.col("row").first())
    )
    names = ends.gather(first["row"])
    lookup = first.select("h", pl.int_range(pl.len(), dtype=pl.Int64).alias("i"))
    codes = hashes.join(lookup, on="h", how="left", maintain_order="left")["i"]
    if not (names.gather(codes) == ends).all():  # a hash collision: match the text itself
        names = ends.unique(maintain_order=True)
        exact = pl.DataFrame({"name": names, "i": np.arange(len(names), dtype=np.int64)})
        codes = ends.to_frame("name").join(exact, on="name", how="left", maintain_order="left")["i"]
    positions = codes.to_numpy()
    weights = edges["weight"].cast(pl.Float64).to_numpy()
    return names.alias("name"), positions[: edges.height], positions[edges.height :], weights


def check_edges(edges: pl.DataFrame) -> None:
    """Refuse what no ranking can use: missing columns, NaN or infinite weights."""
    missing = {"source", "target", "weight"} - set(edges.columns)
    if missing:
        raise ValidationError(
            f"edges need columns source, target and weight; missing {sorted(missing)}"
        )
    weights = edges["weight"].cast(pl.Float64)
    if weights.is_nan().any() or weights.is_infinite().any():
        raise ValidationError("edge weights must be finite numbers (found NaN or infinity)")
    if edges["source"].null_count() or edges["target"].null_count():
        raise ValidationError("edges must name both their source and their target")


def trustrank(
    edges: pl.DataFrame,
    seeds: Sequence[str] | Mapping[str, float] | None = None,
    *,
    damping: float = 0.85,
    tolerance: float = 1e-10,
    max_iterations: int = 200,
    start: Mapping[str, float] | pl.DataFrame | None = None,
    on_iteration: Callable[[int, float], None] | None = None,
) -> RankResult:
    """Rank the nodes of a signed graph (columns ``source``, ``target``, ``weight``).

    ``seeds`` are the pre-trusted nodes, equally (a list) or in proportion to
    weights (a mapping: EigenTrust's pre-trust vector); seeds not in the graph
    are ignored;
    ``start`` is a previous run's ``pagerank`` by node (a mapping, or a frame
    with ``agent`` and ``pagerank``), to start the iteration from (a warm
    start: the same fixed point, fewer steps when the graph changed little);
    ``on_iteration(i, change)`` is told of each iteration (a progress bar). Self-edges are ignored.

    Examples
    --------
    >>> import polars as pl
    >>> e = pl.DataFrame({"source": ["h", "h", "a"], "target": ["a", "b", "b"],
    ...                   "weight": [1.0, 1.0, -1.0]})
    >>> r = trustrank(e, seeds=["h"])
    >>> r.scores.sort("agent")["rank"].to_list()  # b is distrusted by a
    [2, 3, 1]
    """
    check_edges(edges)
    edges = edges.filter(pl.col("source") != pl.col("target"))
    if edges.is_empty():
        empty = pl.DataFrame(
            schema={
                "agent": pl.String,
                "score": pl.Float64,
                "pagerank": pl.Float64,
                "discounted": pl.Float64,
                "rank": pl.UInt32,
                "seed": pl.Boolean,
            }
        )
        return RankResult(empty, 0, True, False)
    names, src, dst, w = _index(edges)
    n = len(names)
    positive = w > 0
    matrix = sp.csr_matrix((w[positive], (src[positive], dst[positive])), shape=(n, n))
    out = np.asarray(matrix.sum(axis=1)).ravel()
    inverse = np.divide(1.0, out, out=np.zeros(n), where=out > 0)
    transition = sp.diags(inverse) @ matrix  # row-stochastic where out > 0
    dangling = out == 0
    weights = _pretrust(names, seeds)
    is_seed = weights > 0
    seeded = bool(is_seed.any())
    teleport = weights / weights.sum() if seeded else np.full(n, 1.0 / n)
    x = _start(names, start) if start is not None else None
    if x is None:
        x = teleport.copy()
    transposed = transition.T.tocsr()
    dangling_at = np.flatnonzero(dangling)
    restart = (1 - damping) * teleport
    converged, iterations = False, 0
    for iterations in range(1, max_iterations + 1):
        nxt = transposed @ x
        nxt += x[dangling_at].sum() * teleport
        nxt *= damping
        nxt += restart
        change = float(np.abs(nxt - x).sum())
        x = nxt
        if on_iteration is not None:
            on_iteration(iterations, change)
        if change < tolerance:
            converged = True
            break
    discount = np.zeros(n)
    negative = w < 0
    if negative.any():
        absolute = sp.csr_matrix((np.abs(w), (src, dst)), shape=(n, n))
        spent = np.asarray(absolute.sum(axis=1)).ravel()
        share = np.divide(x, spent, out=np.zeros(n), where=spent > 0)
        against = sp.csr_matrix((-w[negative], (src[negative], dst[negative])), shape=(n, n))
        discount = against.T @ share
    discounted = np.maximum(x - discount, 0.0)
    relative = n * discounted
    frame = pl.DataFrame(
        {
            "agent": names,
            "score": relative / (1.0 + relative),
            "pagerank": x,
            "discounted": discounted,
            "seed": is_seed,
        }
    ).with_columns(pl.col("score").rank("ordinal", descending=True).alias("rank"))
    frame = frame.select("agent", "score", "pagerank", "discounted", "rank", "seed")
    return RankResult(frame, iterations, converged, seeded)


def _start(names: pl.Series, start: Mapping[str, float] | pl.DataFrame) -> np.ndarray | None:
    """A previous run's PageRank laid out on this graph's nodes (new nodes 0,
    negative or non-finite values 0), normalised; None when nothing is left."""
    if isinstance(start, pl.DataFrame):
        frame = start.select(
            pl.col("agent").cast(pl.String).alias("name"),
            pl.col("pagerank").cast(pl.Float64).alias("w"),
        )
    else:
        frame = pl.DataFrame(
            {"name": list(start), "w": list(start.values())},
            schema={"name": pl.String, "w": pl.Float64},
            strict=False,
        )
    frame = frame.unique("name", keep="last", maintain_order=True)
    warm = (
        names.to_frame("name")
        .join(frame, on="name", how="left", maintain_order="left")["w"]
        .fill_nan(0.0)
        .fill_null(0.0)
        .to_numpy()
    )
    warm = np.where(np.isfinite(warm) & (warm > 0), warm, 0.0)
    total = warm.sum()
    return warm / total if total > 0 else None


def _pretrust(names: pl.Series, seeds: Sequence[str] | Mapping[str, float] | None) -> np.ndarray:
    """Each node's pre-trust weight (0 for non-seeds)."""
    if seeds is None:
        return np.zeros(len(names))
    if isinstance(seeds, str):
        raise ValidationError("seeds must be a list of agents (or a mapping agent -> weight)")
    given = dict(seeds) if isinstance(seeds, Mapping) else dict.fromkeys(seeds, 1.0)
    for agent, weight in given.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise ValidationError(f"pre-trust of {agent!r} must be a number, got {weight!r}")
        if not np.isfinite(weight) or weight < 0:
            raise ValidationError(f"pre-trust of {agent!r} must be finite and >= 0, got {weight}")
    lookup = pl.DataFrame(
        {"name": list(given), "w": [float(v) for v in given.values()]},
        schema={"name": pl.String, "w": pl.Float64},
    )
    return (
        names.to_frame("name")
        .join(lookup, on="name", how="left", maintain_order="left")["w"]
        .fill_null(0.0)
        .to_numpy()
    )


def rank_with(
    edges: pl.DataFrame,
    options: TrustOptions,
    *,
    seeds: Sequence[str] | Mapping[str, float] | None = None,
    start: Mapping[str, float] | pl.DataFrame | None = None,
    on_iteration: Callable[[int, float], None] | None = None,
) -> RankResult:
    """`trustrank` with the options' damping, tolerance and iteration cap; the seeds
    are the graph's agents that match the options' patterns, unless given."""
    if seeds is None:
        nodes = pl.concat([edges["source"], edges["target"]]).unique()
        seeds = [n for n in nodes if options.is_seed(n)]
    return trustrank(
        edges,
        seeds=seeds,
        damping=options.damping,
        tolerance=options.tolerance,
        max_iterations=options.max_iterations,
        start=start,
        on_iteration=on_iteration,
    )


def fairness_goodness(
    edges: pl.DataFrame, *, tolerance: float = 1e-9, max_iterations: int = 200
) -> pl.DataFrame:
    """Fairness (of a rater) and goodness (of a ratee) in a signed, weighted network.

    Weights are scaled into ``[-1, 1]`` by the largest absolute weight. Then,
    from fairness 1 and goodness 1, until neither moves more than ``tolerance``:
    ``goodness(v) = mean over ratings u->v of fairness(u) * w(u, v)`` and
    ``fairness(u) = 1 - mean over ratings u->v of |w(u, v) - goodness(v)| / 2``
    (Kumar et al., "Edge Weight Prediction in Weighted Signed Networks", ICDM 2016).
    Nodes that rate nobody keep fairness 1; nodes rated by nobody, goodness 0.

    Examples
    --------
    >>> import polars as pl
    >>> e = pl.DataFrame({"source": ["a", "b"], "target": ["c", "c"], "weight": [1.0, 1.0]})
    >>> fairness_goodness(e).filter(pl.col("agent") == "c")["goodness"].item()
    1.0
    """
    check_edges(edges)
    edges = edges.filter(pl.col("source") != pl.col("target"))
    names, src, dst, w = _index(edges)
    n = len(names)
    scale = float(np.abs(w).max()) if len(w) else 1.0
    w = w / (scale or 1.0)
    in_count = np.bincount(dst, minlength=n).astype(float)
    out_count = np.bincount(src, minlength=n).astype(float)
    fairness, goodness = np.ones(n), np.ones(n)
    for _ in range(max_iterations):
        new_good = np.divide(
            np.bincount(dst, weights=fairness[src] * w, minlength=n),
            in_count,
            out=np.zeros(n),
            where=in_count > 0,
        )
        error = np.bincount(src, weights=np.abs(w - new_good[dst]), minlength=n)
        new_fair = 1.0 - np.divide(error, 2 * out_count, out=np.zeros(n), where=out_count > 0)
        moved = max(
            np.abs(new_good - goodness).max(initial=0), np.abs(new_fair - fairness).max(initial=0)
        )
        fairness, goodness = new_fair, new_good
        if moved < tolerance:
            break
    return pl.DataFrame(
        {
            "agent": names,
            "fairness": fairness,
            "goodness": goodness,
            "ratings_given": out_count.astype(np.int64),
            "ratings_received": in_count.astype(np.int64),
        }
    )
