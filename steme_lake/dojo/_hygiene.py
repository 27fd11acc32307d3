"""Keeping an export clean: no pair that teaches nothing, no incident in two splits.

- Pairs whose chosen and rejected say the same thing (once whitespace and case
  are set aside) are dropped and counted.
- Near-duplicate samples form clusters: MinHash over word 3-grams of the
  content without the asker and the times, as one-permutation hashing with
  rotation densification (Shrivastava and Li, ICML 2014: 64 bins from one
  hash per shingle, so the whole export is hashed in a few vectorised passes),
  and LSH banding with the bands and rows datasketch's ``MinHashLSH`` chooses
  for Jaccard ``near``, weighted towards recall (at 0.9: 5 bands of 12 rows; a
  pair at Jaccard 0.95 is found 98% of the time, at 0.8 30%, at 0.5 never).
  Shingles are hashed with polars-hash's xxHash64, which is stable across
  Polars versions (the built-in ``hash`` is not), so a re-export is
  byte-identical anywhere.
- Groups join the samples of one incident: the same subject and predicate,
  the same supersession, or one near-duplicate cluster (connected components,
  scipy). A group's key is its earliest sample's ``subject predicate`` (its id
  as the last resort), so new, later incidents never change an old group's key.
- Splits by a salted BLAKE3 hash of the group key: a group lands in one split,
  and an old group keeps its split when new samples are added (unless a new
  sample bridges two old groups, which then share the earlier group's split).
  With ``test_after``, the groups that began at or after it form the test
  split (a temporal holdout) and the rest are split train/validation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import polars_hash as plh
from datasketch import MinHashLSH
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = ["SPLITS", "Hygiene", "clean", "near_duplicates"]

SPLITS = ("train", "validation", "test")
_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
_BINS = 64
_BIN_BITS = 6
_EMPTY = np.uint64(2**64 - 1)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_K1 = np.uint64(0x9E3779B97F4A7C15)
_K2 = np.uint64(0xC2B2AE3D27D4EB4F)
_STEP = np.arange(_BINS, dtype=np.uint64) * _K1  # (array arithmetic wraps silently)


@dataclass(frozen=True, slots=True)
class Hygiene:
    """How samples are cleaned and split."""

    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    salt: str = "steme-dojo-v1"
    near: float = 0.9
    test_after: int | None = None


def _normal(col: str | pl.Expr) -> pl.Expr:
    e = pl.col(col) if isinstance(col, str) else col
    return e.str.replace_all(r"\s+", " ").str.strip_chars().str.to_lowercase()


def _contents(col: str) -> pl.Expr:
    return pl.col(col).list.eval(pl.element().struct.field("content")).list.join(" ")


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit moves every output bit."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    out: np.ndarray = x ^ (x >> np.uint64(31))
    return out


def _signatures(texts: pl.Series) -> np.ndarray:
    """One-permutation MinHash signatures (``len(texts)`` x 64) of word 3-grams
    (words split on spaces, lowercased, times masked); a text with fewer than
    three words has none (all bins empty)."""
    n = texts.len()
    words = (
        pl.DataFrame({"t": texts})
        .with_row_index("row")
        .select(
            "row",
            pl.col("t").str.to_lowercase().str.replace_all(_TIME, "t").str.split(" "),
        )
        .explode("t")
        .drop_nulls("t")
        .select("row", plh.col("t").nchash.xxhash64().alias("h"))
    )
    row = words["row"].to_numpy().astype(np.int64)
    h = words["h"].to_numpy()
    del words
    dump = n * _BINS  # where the 3-grams that span two texts go
    sig = np.full(dump + 1, _EMPTY, dtype=np.uint64)
    if len(h) >= 3:
        # a 3-gram's hash, multiplied by an odd constant so its top bits pick the bin
        s = h[:-2] * _K1
        s += h[1:-1] * _K2
        s += h[2:]
        s *= _M1
        del h
        key = (s >> np.uint64(64 - _BIN_BITS)).view(np.int64)
        key += row[:-2] * _BINS
        key[row[:-2] != row[2:]] = dump
        s &= np.uint64(2 ** (64 - _BIN_BITS) - 1)
        np.minimum.at(sig, key, s)
    grid = sig[:dump].reshape(n, _BINS)
    # rotation densification: an empty bin takes the next non-empty one's value,
    # shifted by how far it had to look (so it never equals a real value by chance)
    filled = grid.copy()
    empty = filled == _EMPTY
    for d in range(1, _BINS):
        if not empty.any():
            break
        nxt = np.roll(grid, -d, axis=1)
        take = empty & (nxt != _EMPTY)
        filled[take] = _mix(nxt[take] + _STEP[d])
        empty &= ~take
    return filled


def near_duplicates(texts: pl.Series, near: float) -> np.ndarray:
    """For each text, the row of the first text of its near-duplicate cluster
    (texts whose estimated Jaccard over word 3-grams reaches ``near`` share an
    LSH band; clusters are the connected components)."""
    n = texts.len()
    if n < 2 or near >= 1.0:
        return np.arange(n, dtype=np.int64)
    sig = _signatures(texts)
    # only for its bands and rows, chosen to miss few near-duplicates: a missed one
    # leaks an incident across splits, a false match only keeps two in one split
    lsh = MinHashLSH(threshold=near, num_perm=_BINS, weights=(0.1, 0.9))
    has = ~(sig == _EMPTY).all(axis=1)
    rows = np.flatnonzero(has)
    sources = []
    targets = []
    for b in range(lsh.b):
        band = sig[rows, b * lsh.r : (b + 1) * lsh.r]
        hv = np.full(len(rows), np.uint64(b), dtype=np.uint64)
        for c in range(band.shape[1]):
            hv = _mix(hv * _K1 + band[:, c])
        first = (
            pl.DataFrame({"row": rows, "h": hv})
            .with_columns(pl.col("row").min().over("h").alias("first"))
            .filter(pl.col("first") != pl.col("row"))
        )
        sources.append(first["row"].to_numpy())
        targets.append(first["first"].to_numpy())
    return _leaders(n, sources, targets)


def _leaders(n: int, sources: list[np.ndarray], targets: list[np.ndarray]) -> np.ndarray:
    """For each of ``n`` rows, the smallest row connected to it by the edges."""
    if not sources or not sum(len(s) for s in sources):
        return np.arange(n, dtype=np.int64)
    src = np.concatenate(sources).astype(np.int64)
    dst = np.concatenate(targets).astype(np.int64)
    graph = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    lead = pl.DataFrame({"label": label, "row": np.arange(n, dtype=np.int64)}).select(
        pl.col("row").min().over("label")
    )
    return lead["row"].to_numpy()


def clean(samples: pl.DataFrame, hygiene: Hygiene) -> tuple[pl.DataFrame, dict[str, int]]:
    """The samples to export, with ``cluster``, ``group_key`` and ``split``, and
    what was dropped (counts)."""
    same = (pl.col("rejected").list.len() > 0) & (
        _normal(_contents("chosen")) == _normal(_contents("rejected"))
    )
    kept = samples.filter(~same)
    dropped = {"chosen_equals_rejected": samples.height - kept.height}
    kept = kept.sort("asked_at", "sample_id")
    n = kept.height
    texts = kept.select(
        pl.concat_str(
            pl.col("prompt")
            .list.slice(1)
            .list.eval(pl.element().struct.field("content"))
            .list.join(" "),
            _contents("chosen"),
            _contents("rejected"),
            separator=" ",
        ).alias("t")
    )["t"]
    cluster_of = near_duplicates(texts, hygiene.near)
    del texts
    idx = pl.DataFrame(
        {
            "i": np.arange(n, dtype=np.int64),
            "leader": cluster_of,
            "subject": kept["subject"],
            "predicate": kept["predicate"],
            "fix": kept["supersession"],
        }
    ).with_columns(
        pl.col("i").min().over("subject", "predicate").alias("by_key"),
        pl.when(pl.col("fix").is_not_null()).then(pl.col("i").min().over("fix")).alias("by_fix"),
    )
    edges = [(idx["i"].to_numpy(), idx[c].to_numpy()) for c in ("leader", "by_key")]
    fixed = idx.filter(pl.col("by_fix").is_not_null())
    edges.append((fixed["i"].to_numpy(), fixed["by_fix"].to_numpy()))
    root = _leaders(n, [e[0] for e in edges], [e[1] for e in edges])
    del idx, fixed, edges
    r = pl.Series("r", root)
    ids = kept["sample_id"]
    key = kept.select(
        pl.when(pl.col("predicate").is_not_null())
        .then(pl.concat_str("subject", pl.lit(" "), "predicate"))
        .otherwise(pl.concat_str("subject", pl.lit(" "), "sample_id"))
        .alias("k"),
        pl.col("asked_at").dt.epoch("us").alias("began"),
    ).select(pl.all().gather(r))
    u = (
        plh.col("_salted")
        .chash.blake3()
        .str.slice(0, 16)
        .str.to_integer(base=16, dtype=pl.UInt64)
        .cast(pl.Float64)
        / 2.0**64
    )
    train, validation, _ = hygiene.fractions
    if hygiene.test_after is not None:  # the test split is the holdout; the rest by hash
        by_hash = (
            pl.when(u < train / (train + validation))
            .then(pl.lit("train"))
            .otherwise(pl.lit("validation"))
        )
        split = (
            pl.when(pl.col("began") >= hygiene.test_after).then(pl.lit("test")).otherwise(by_hash)
        )
    else:
        split = (
            pl.when(u < train)
            .then(pl.lit("train"))
            .when(u < train + validation)
            .then(pl.lit("validation"))
            .otherwise(pl.lit("test"))
        )
    groups = key.with_columns(
        pl.concat_str(pl.lit(hygiene.salt), pl.lit("\x1f"), "k").alias("_salted")
    ).select(pl.col("k").alias("group_key"), split.alias("split"))
    out = kept.with_columns(
        ids.gather(pl.Series(cluster_of)).alias("cluster"),
        groups["group_key"],
        groups["split"],
    )
    return out, dropped
