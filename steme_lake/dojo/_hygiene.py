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

__all__ = [
    "SPLITS", "Hygiene", "assign", "band_keys", "band_leaders", "key_hash", "near_duplicates",
    "near_text", "normal", "own_key", "same_answer",
]  # fmt: skip

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


# A run of whitespace, or one whitespace character that is not a plain space: replaced
# by one space, the same text as ``\s+`` gives, without rewriting every single space
# (2.5 times as fast on prompts, which are mostly single spaces).
_SPACES = r"\s\s+|[^\S ]"


def normal(col: str | pl.Expr) -> pl.Expr:
    """Text as compared for sameness: whitespace collapsed, trimmed, lowercased."""
    e = pl.col(col) if isinstance(col, str) else col
    return e.str.replace_all(_SPACES, " ").str.strip_chars().str.to_lowercase()


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


def _signatures(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """One-permutation MinHash signatures (``len(texts)`` x 64) of word 3-grams
    (words split on spaces, lowercased, times masked), and which texts have fewer
    than three words (no 3-gram: all their bins stay empty)."""
    n = texts.len()
    words = (
        pl.DataFrame({"t": texts})
        .with_row_index("row")
        .select(
            pl.col("row").cast(pl.Int64),
            pl.col("t").str.to_lowercase().str.replace_all(_TIME, "t").str.split(" "),
        )
        .explode("t")
        .drop_nulls("t")
        .select("row", plh.col("t").nchash.xxhash64().alias("h"))
    )
    row = words["row"].to_numpy()
    h = words["h"].to_numpy()
    alone = np.bincount(row, minlength=n) < 3
    dump = n * _BINS  # where the 3-grams that span two texts go
    sig = np.full(dump + 1, _EMPTY, dtype=np.uint64)
    if len(h) >= 3:
        # a 3-gram's hash, multiplied by an odd constant so its top bits pick the bin
        s = h[:-2] * _K1
        s += h[1:-1] * _K2
        s += h[2:]
        s *= _M1
        del h, words
        key = (s >> np.uint64(64 - _BIN_BITS)).view(np.int64)
        key += row[:-2] * _BINS
        key[row[:-2] != row[2:]] = dump
        s &= np.uint64(2 ** (64 - _BIN_BITS) - 1)
        np.minimum.at(sig, key, s)
    grid = sig[:dump].reshape(n, _BINS)
    _densify(grid)
    return grid, alone


def _densify(grid: np.ndarray) -> None:
    """Rotation densification, in place: an empty bin takes the next non-empty one's
    value (going round the row), shifted by how far it had to look, so it never
    equals a real value by chance. A row with no value stays empty."""
    empty = grid == _EMPTY
    if not empty.any():
        return
    # each bin's next non-empty bin: a running minimum from the right, over the row
    # written twice (for the bins that must go round)
    pos = np.where(np.tile(~empty, 2), np.arange(2 * _BINS, dtype=np.uint8), np.uint8(255))
    nxt = np.minimum.accumulate(pos[:, ::-1], axis=1)[:, ::-1][:, :_BINS]
    r, j = np.nonzero(empty & (nxt != 255))
    src = nxt[r, j].astype(np.int64)
    grid[r, j] = _mix(grid[r, src % _BINS] + _STEP[src - j])


def band_keys(texts: pl.Series, near: float) -> tuple[np.ndarray, np.ndarray]:
    """The LSH band keys of each text (``len(texts)`` x bands), and which texts have
    no 3-gram (their keys are the empty signature's: `band_leaders` leaves them alone)."""
    n = texts.len()
    # only for its bands and rows, chosen to miss few near-duplicates: a missed one
    # leaks an incident across splits, a false match only keeps two in one split
    lsh = MinHashLSH(threshold=min(near, 0.99), num_perm=_BINS, weights=(0.1, 0.9))
    sig, alone = _signatures(texts)
    keys = np.empty((n, lsh.b), dtype=np.uint64)
    for b in range(lsh.b):
        band = sig[:, b * lsh.r : (b + 1) * lsh.r]
        hv = np.full(n, np.uint64(b), dtype=np.uint64)
        for c in range(band.shape[1]):
            hv = _mix(hv * _K1 + band[:, c])
        keys[:, b] = hv
    return keys, alone


def band_leaders(
    keys: np.ndarray | list[np.ndarray], alone: np.ndarray | None = None
) -> np.ndarray:
    """For each row of band ``keys`` (rows x bands, or one array per band), the first
    row of its near-duplicate cluster (rows sharing a key in any band are joined;
    clusters are the connected components). Rows flagged ``alone`` (no 3-grams) join
    nothing."""
    bands = [keys[:, b] for b in range(keys.shape[1])] if isinstance(keys, np.ndarray) else keys
    n = len(bands[0]) if bands else 0
    rows = np.arange(n, dtype=np.int64) if alone is None else np.flatnonzero(~alone)
    if len(rows) < 2:
        return np.arange(n, dtype=np.int64)
    sources = []
    targets = []
    for band in bands:
        first = (
            pl.DataFrame({"row": rows, "h": band[rows]})
            .with_columns(pl.col("row").min().over("h").alias("first"))
            .filter(pl.col("first") != pl.col("row"))
        )
        sources.append(first["row"].to_numpy())
        targets.append(first["first"].to_numpy())
    return _leaders(n, sources, targets)


def near_duplicates(texts: pl.Series, near: float) -> np.ndarray:
    """For each text, the row of the first text of its near-duplicate cluster
    (texts whose estimated Jaccard over word 3-grams reaches ``near`` share an
    LSH band; clusters are the connected components)."""
    n = texts.len()
    if n < 2 or near >= 1.0:
        return np.arange(n, dtype=np.int64)
    return band_leaders(*band_keys(texts, near))


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


def near_text(frame: pl.DataFrame) -> pl.Series:
    """What near-duplicates are compared on: the prompt after the system message,
    the chosen and the rejected answer."""
    return frame.select(
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


def same_answer() -> pl.Expr:
    """A pair whose chosen and rejected say the same (whitespace and case aside)."""
    return (pl.col("rejected").list.len() > 0) & (
        normal(_contents("chosen")) == normal(_contents("rejected"))
    )


def own_key() -> pl.Expr:
    """The group key a sample would give its group if it led it: ``subject
    predicate`` (``subject sample_id`` without a predicate)."""
    return (
        pl.when(pl.col("predicate").is_not_null())
        .then(pl.concat_str("subject", pl.lit(" "), "predicate"))
        .otherwise(pl.concat_str("subject", pl.lit(" "), "sample_id"))
    )


def key_hash(frame: pl.DataFrame, salt: str) -> pl.Series:
    """Where each sample's `own_key` falls in [0, 1): a salted BLAKE3, the same on
    every machine and Polars version."""
    return frame.select(pl.concat_str(pl.lit(salt), pl.lit("\x1f"), own_key()).alias("_s")).select(
        plh.col("_s")
        .chash.blake3()
        .str.slice(0, 16)
        .str.to_integer(base=16, dtype=pl.UInt64)
        .cast(pl.Float64)
        .truediv(2.0**64)
        .alias("u")
    )["u"]


def assign(index: pl.DataFrame, leader: np.ndarray, hygiene: Hygiene) -> pl.DataFrame:
    """Groups and splits for the kept samples ``index`` (in order: ``key``, the
    hash of subject and predicate; ``fix``, the supersession's; ``asked``, µs;
    ``u``, `key_hash` of the sample's own key) given each one's near-duplicate
    ``leader`` (a row of ``index``). Adds ``root`` (the row whose key is the
    group's) and ``split``."""
    n = index.height
    idx = (
        index.select("key", "fix")
        .with_columns(
            pl.Series("i", np.arange(n, dtype=np.int64)),
        )
        .with_columns(
            pl.col("i").min().over("key").alias("by_key"),
            pl.when(pl.col("fix").is_not_null())
            .then(pl.col("i").min().over("fix"))
            .alias("by_fix"),
        )
    )
    fixed = idx.filter(pl.col("by_fix").is_not_null())
    root = _leaders(
        n,
        [idx["i"].to_numpy(), idx["i"].to_numpy(), fixed["i"].to_numpy()],
        [leader.astype(np.int64), idx["by_key"].to_numpy(), fixed["by_fix"].to_numpy()],
    )
    del idx, fixed
    r = pl.Series("root", root)
    began = index["asked"].gather(r)
    u = index["u"].gather(r)
    train, validation, _ = hygiene.fractions
    frame = pl.DataFrame({"u": u, "began": began})
    if hygiene.test_after is not None:  # the test split is the holdout; the rest by hash
        by_hash = (
            pl.when(pl.col("u") < train / (train + validation))
            .then(pl.lit("train"))
            .otherwise(pl.lit("validation"))
        )
        holdout = pl.col("began") >= hygiene.test_after
        split = pl.when(holdout).then(pl.lit("test")).otherwise(by_hash)
    else:
        split = (
            pl.when(pl.col("u") < train)
            .then(pl.lit("train"))
            .when(pl.col("u") < train + validation)
            .then(pl.lit("validation"))
            .otherwise(pl.lit("test"))
        )
    return index.with_columns(r, frame.select(split.alias("split"))["split"])
