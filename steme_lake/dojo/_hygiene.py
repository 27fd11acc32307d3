"""Keeping an export clean: no pair that teaches nothing, no incident in two splits.

- Pairs whose chosen and rejected say the same thing (once whitespace and case
  are set aside) are dropped and counted.
- Near-duplicate samples (MinHash over word 3-grams of the content without
  the asker and the times; datasketch's LSH at Jaccard ``near``) form
  clusters.
- Groups join the samples of one incident: the same subject and predicate,
  the same supersession, or one near-duplicate cluster. A group's key is its
  earliest sample's ``subject predicate`` (its id as the last resort), so new,
  later incidents never change an old group's key.
- Splits by a salted BLAKE3 hash of the group key: a group lands in one split,
  and an old group keeps its split when new samples are added (unless a new
  sample bridges two old groups, which then share the earlier group's split).
  With ``test_after``, the groups that began at or after it form the test
  split (a temporal holdout) and the rest are split train/validation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import blake3
import polars as pl
from datasketch import MinHash, MinHashLSH

__all__ = ["SPLITS", "Hygiene", "clean"]

SPLITS = ("train", "validation", "test")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
_WORD = re.compile(r"\w+")
_PERMUTATIONS = 64


@dataclass(frozen=True, slots=True)
class Hygiene:
    """How samples are cleaned and split."""

    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    salt: str = "steme-dojo-v1"
    near: float = 0.9
    test_after: int | None = None


def _text(messages: list[dict[str, str]]) -> str:
    return " ".join(m["content"] for m in messages)


def _normal(text: str) -> str:
    return " ".join(text.split()).casefold()


def _shingles(text: str) -> set[bytes]:
    words = _WORD.findall(_TIME.sub(" ", text).casefold())
    if len(words) < 3:
        return {" ".join(words).encode()}
    return {" ".join(words[i : i + 3]).encode() for i in range(len(words) - 2)}


class _Union:
    def __init__(self, n: int) -> None:
        self.up = list(range(n))

    def find(self, i: int) -> int:
        while self.up[i] != i:
            self.up[i] = self.up[self.up[i]]
            i = self.up[i]
        return i

    def join(self, i: int, j: int) -> None:
        a, b = self.find(i), self.find(j)
        if a != b:
            self.up[max(a, b)] = min(a, b)  # the earlier sample (rows are in time order) leads


def _clusters(samples: pl.DataFrame, near: float) -> list[int]:
    """For each sample, the row of the first sample of its near-duplicate cluster."""
    n = samples.height
    u = _Union(n)
    if n > 1 and near < 1.0:
        lsh = MinHashLSH(threshold=near, num_perm=_PERMUTATIONS)
        texts = [
            " ".join(m["content"] for m in p[1:]) + " " + _text(c) + " " + _text(r)
            for p, c, r in samples.select("prompt", "chosen", "rejected").iter_rows()
        ]
        hashes = MinHash.bulk([_shingles(t) for t in texts], num_perm=_PERMUTATIONS, seed=1)
        for i, h in enumerate(hashes):
            for j in lsh.query(h):
                u.join(i, int(j))
            lsh.insert(str(i), h)
    return [u.find(i) for i in range(n)]


def clean(samples: pl.DataFrame, hygiene: Hygiene) -> tuple[pl.DataFrame, dict[str, int]]:
    """The samples to export, with ``cluster``, ``group_key`` and ``split``, and
    what was dropped (counts)."""
    same = [
        bool(r) and _normal(_text(c)) == _normal(_text(r))
        for c, r in samples.select("chosen", "rejected").iter_rows()
    ]
    kept = samples.filter(~pl.Series(same, dtype=pl.Boolean))
    dropped = {"chosen_equals_rejected": samples.height - kept.height}
    kept = kept.sort("asked_at", "sample_id")
    n = kept.height
    cluster_of = _clusters(kept, hygiene.near)
    u = _Union(n)
    first: dict[tuple[str, str | None], int] = {}
    for i, (subject, predicate, fix, leader) in enumerate(
        kept.select("subject", "predicate", "supersession")
        .with_columns(pl.Series("leader", cluster_of))
        .iter_rows()
    ):
        for key in (("key", f"{subject}\x1f{predicate}"), ("fix", fix)):
            if key[1] is None:
                continue
            if key in first:
                u.join(i, first[key])
            else:
                first[key] = i
        u.join(i, leader)
    root = [u.find(i) for i in range(n)]
    subjects = kept["subject"].to_list()
    predicates = kept["predicate"].to_list()
    ids = kept["sample_id"].to_list()
    times = kept["asked_at"].to_list()
    key_of = [
        f"{subjects[r]} {predicates[r]}" if predicates[r] is not None else f"{subjects[r]} {ids[r]}"
        for r in root
    ]
    splits = []
    for i, r in enumerate(root):
        began = times[r]
        if hygiene.test_after is not None:
            began_us = int(began.timestamp() * 1_000_000)
            if began_us >= hygiene.test_after:
                splits.append("test")
                continue
        splits.append(_split(hygiene, key_of[i]))
    out = kept.with_columns(
        pl.Series("cluster", [ids[c] for c in cluster_of], pl.String),
        pl.Series("group_key", key_of, pl.String),
        pl.Series("split", splits, pl.String),
    )
    return out, dropped


def _split(hygiene: Hygiene, key: str) -> str:
    digest = blake3.blake3(f"{hygiene.salt}\x1f{key}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    train, validation, _ = hygiene.fractions
    if hygiene.test_after is not None:  # the test split is the holdout; the rest by hash
        return "train" if u < train / (train + validation) else "validation"
    if u < train:
        return "train"
    return "validation" if u < train + validation else "test"
