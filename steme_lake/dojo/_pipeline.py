"""The export in two passes over chunks, so memory follows the chunk, not the lake.

Pass one mines every event (ids and times: small), then renders the prompts
``chunk_rows`` samples at a time. Each chunk's rows go to a spill file (when
the export will write them) and leave behind only a small index row per
sample: its content hash, group hashes, time, flags and MinHash band keys.
On the whole index: exclusions, exact de-duplication (the earliest copy
kept), pairs whose chosen equals rejected, near-duplicate clusters, groups and
splits (`steme_lake.dojo._hygiene`). Pass two (`steme_lake.dojo._export`)
reads the spill files back in order and writes the shards.

Rows keep the order of their events (time, then kind and ids), which is the
same in every run, so the files are byte-identical for the same lake and
parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import polars_hash as plh

from steme_lake.dojo._hygiene import (
    Hygiene,
    assign,
    band_keys,
    band_leaders,
    key_hash,
    near_text,
    same_answer,
)
from steme_lake.dojo._mine import (
    KINDS,
    NEGATIVE,
    SCHEMA,
    MineOptions,
    Miner,
    _questions,
    dedupe,
    identify,
    render,
    slices_of,
    window_of,
)
from steme_lake.query._candidates import Tables

__all__ = [
    "CHUNK_ROWS", "SLICE_QUESTIONS", "Gathered", "Prepared", "chunks", "index_of", "prepare",
    "preview", "render_slice", "slice_bounds",
]  # fmt: skip

CHUNK_ROWS = 25_000  # samples rendered at a time
SLICE_QUESTIONS = 500_000  # questions mined at a time (a time slice)


def _chunks_of_events(
    miner: Miner, chunk_rows: int, slice_questions: int
) -> Iterator[pl.DataFrame]:
    """The events, numbered (``sample``) in event order, ``chunk_rows`` at a time;
    mined one time slice of about ``slice_questions`` questions at a time."""
    offset = 0
    for lo, hi in miner.slices(slice_questions):
        events = miner.events(lo, hi).with_row_index("sample", offset=offset)
        offset += events.height
        for start in range(0, events.height, chunk_rows):
            yield events.slice(start, chunk_rows)
        del events


@dataclass(slots=True)
class Prepared:
    """What pass one leaves: the kept samples' index (in order) and the spill files.

    ``index`` columns: ``sample`` (the event's number), ``chunk``, ``kind``,
    ``negative``, ``duplicates``, ``split``, ``root`` and ``leader`` (rows of
    ``index``: the sample whose key names the group, the first of the
    near-duplicate cluster)."""

    index: pl.DataFrame
    spill: list[Path]
    dropped: dict[str, int]
    duplicates_merged: int


_EMPTY_INDEX: dict[str, pl.DataType | type[pl.DataType]] = {
    "sample": pl.UInt32, "chunk": pl.UInt32, "kind": pl.Enum(KINDS), "negative": pl.Boolean,
    "ch1": pl.UInt64, "ch2": pl.UInt64, "asked": pl.Int64, "same": pl.Boolean,
    "key": pl.UInt64, "fix": pl.UInt64, "u": pl.Float64, "excluded": pl.Boolean,
    "alone": pl.Boolean,
}  # fmt: skip


def preview(
    tables: Tables,
    audit: pl.LazyFrame,
    *,
    kinds: tuple[str, ...],
    since: int | None,
    until: int | None,
    subject: pl.Expr | None,
    as_of: int,
    options: MineOptions,
    limit: int | None,
    chunk_rows: int = CHUNK_ROWS,
    slice_questions: int = SLICE_QUESTIONS,
) -> tuple[pl.DataFrame, int]:
    """The samples in event order, exact duplicates kept once, and how many were
    left out for resting on an excluded source. With ``limit``, mining stops
    once that many distinct samples are found (then ``duplicates`` counts only
    the copies among what was read)."""
    miner = Miner(
        tables, audit, kinds=kinds, since=since, until=until, subject=subject,
        as_of=as_of, options=options,
    )  # fmt: skip
    excluded = list(options.exclude_sources)
    rows_per = chunk_rows if limit is None else min(chunk_rows, max(1_000, 4 * limit))
    got: list[pl.DataFrame] = []
    left_out = 0
    for events in _chunks_of_events(miner, rows_per, slice_questions):
        rows = identify(render(events, miner.history, tables, as_of, options))
        if excluded:
            keep = ~rows["sources"].list.eval(pl.element().is_in(excluded)).list.any()
            left_out += rows.height - int(keep.sum())
            rows = rows.filter(keep)
        got.append(rows)
        if limit is not None and pl.concat(got)["content_hash"].n_unique() >= limit:
            break
    out = dedupe(pl.concat(got)) if got else pl.DataFrame(schema=SCHEMA)
    return (out if limit is None else out.head(limit)), left_out


def _hash64(col: str) -> pl.Expr:
    return plh.col(col).nchash.xxhash64()


def prepare(
    tables: Tables,
    audit: pl.LazyFrame,
    *,
    kinds: tuple[str, ...],
    since: int | None,
    until: int | None,
    subject: pl.Expr | None,
    as_of: int,
    options: MineOptions,
    hygiene: Hygiene,
    spill: Path | None,
    chunk_rows: int = CHUNK_ROWS,
    slice_questions: int = SLICE_QUESTIONS,
    progress: Callable[[int], None] | None = None,
) -> Prepared:
    """Pass one. With ``spill`` (a folder), every rendered chunk is written there."""
    miner = Miner(
        tables, audit, kinds=kinds, since=since, until=until, subject=subject,
        as_of=as_of, options=options,
    )  # fmt: skip
    gathered = Gathered(spill, progress)

    def keep(rows: pl.DataFrame) -> None:
        gathered.add(rows, index_of(rows, hygiene, options))

    # A chunk's index (MinHash: numpy) and spill file are made in a second thread
    # while the next chunk renders (Polars): both let go of the interpreter's lock.
    # One such thread: the chunks still arrive in order.
    with ThreadPoolExecutor(max_workers=1) as pool:
        kept: Future[None] | None = None
        for events in _chunks_of_events(miner, chunk_rows, slice_questions):
            rows = identify(render(events, miner.history, tables, as_of, options))
            del events
            if kept is not None:
                kept.result()
            kept = pool.submit(keep, rows)
            del rows
        if kept is not None:
            kept.result()
    return gathered.finish(hygiene)


def render_slice(
    tables: Tables,
    audit: pl.LazyFrame,
    bounds: tuple[int | None, int | None],
    *,
    kinds: tuple[str, ...],
    since: int | None,
    until: int | None,
    subject: pl.Expr | None,
    as_of: int,
    options: MineOptions,
    hygiene: Hygiene,
    chunk_rows: int,
) -> tuple[int, list[tuple[pl.DataFrame, pl.DataFrame]]]:
    """Pass one's work on one time slice ``[lo, hi)``, as a task does it: how many
    events the slice holds, and each chunk's rendered rows and index rows, samples
    numbered from 0 within the slice (the driver numbers them on, `Gathered.add`)."""
    miner = Miner(
        tables, audit, kinds=kinds, since=since, until=until, subject=subject,
        as_of=as_of, options=options,
    )  # fmt: skip
    events = miner.events(*bounds).with_row_index("sample")
    out = []
    for start in range(0, events.height, chunk_rows):
        rows = identify(
            render(events.slice(start, chunk_rows), miner.history, tables, as_of, options)
        )
        out.append((rows, index_of(rows, hygiene, options)))
    return events.height, out


def slice_bounds(
    audit: pl.LazyFrame,
    *,
    since: int | None,
    until: int | None,
    subject: pl.Expr | None,
    as_of: int,
    parts: int,
    most: int = SLICE_QUESTIONS,
) -> list[tuple[int | None, int | None]]:
    """Time slices (`Miner.slices`) for ``parts`` tasks: about an equal share of the
    questions each, and at most ``most``; from the audit log alone."""
    questions = _questions(audit, window_of(since, until, subject), as_of)
    total = questions.select(pl.len()).collect().item()
    return slices_of(questions, max(1, min(most, -(-total // parts))))


def index_of(rows: pl.DataFrame, hygiene: Hygiene, options: MineOptions) -> pl.DataFrame:
    """A chunk's small index rows: content hash, group hashes, time, flags, MinHash
    band keys (``chunk`` is set by `Gathered.add`)."""
    texts = near_text(rows)
    bands, alone = band_keys(texts, hygiene.near)
    del texts
    excluded_sources = list(options.exclude_sources)
    excluded = (
        rows["sources"].list.eval(pl.element().is_in(excluded_sources)).list.any()
        if excluded_sources
        else pl.Series([False] * rows.height, dtype=pl.Boolean)
    )
    return rows.select(
        "sample",
        pl.lit(0, pl.UInt32).alias("chunk"),
        pl.col("kind").cast(pl.Enum(KINDS)),
        pl.col("kind").is_in(list(NEGATIVE)).alias("negative"),
        pl.col("content_hash").str.slice(0, 16).str.to_integer(base=16, dtype=pl.UInt64)
        .alias("ch1"),
        pl.col("content_hash").str.slice(16, 16).str.to_integer(base=16, dtype=pl.UInt64)
        .alias("ch2"),
        pl.concat_str("subject", pl.lit("\x1f"), pl.col("predicate").fill_null("\x00"))
        .alias("_key"),
        pl.col("supersession").alias("_fix"),
        pl.col("asked_at").dt.epoch("us").alias("asked"),
        same_answer().alias("same"),
    ).with_columns(
        _hash64("_key").alias("key"),
        _hash64("_fix").alias("fix"),
        key_hash(rows, hygiene.salt),
        excluded.alias("excluded"),
        pl.Series("alone", alone),
        *[pl.Series(f"b{b}", bands[:, b]) for b in range(bands.shape[1])],
    ).drop("_key", "_fix")  # fmt: skip


class Gathered:
    """Pass one's chunks, in event order, from this process or from tasks: each is
    numbered, spilled (when the export will write it) and leaves its index rows."""

    def __init__(self, spill: Path | None, progress: Callable[[int], None] | None) -> None:
        self.spill, self.progress = spill, progress
        self.parts: list[pl.DataFrame] = []
        self.files: list[Path] = []

    def add(self, rows: pl.DataFrame, index: pl.DataFrame, *, offset: int = 0) -> None:
        """One chunk; ``offset`` is added to its ``sample`` numbers."""
        k = len(self.parts)
        if offset:
            rows = rows.with_columns(pl.col("sample") + offset)
            index = index.with_columns(pl.col("sample") + offset)
        self.parts.append(index.with_columns(pl.lit(k, pl.UInt32).alias("chunk")))
        if self.spill is not None:
            path = self.spill / f"chunk-{k:05d}.parquet"
            # zstd at level 1: no slower than lz4 here, and a spill 2.5 times smaller
            rows.write_parquet(path, compression="zstd", compression_level=1, statistics=False)
            self.files.append(path)
        if self.progress is not None:
            self.progress(rows.height)

    def finish(self, hygiene: Hygiene) -> Prepared:
        """Exclusions, exact duplicates, chosen-equals-rejected, near-duplicate
        clusters, groups and splits, over every chunk's index."""
        index = pl.concat(self.parts) if self.parts else pl.DataFrame(schema=_EMPTY_INDEX)
        self.parts = []
        dropped = {"excluded_sources": int(index["excluded"].sum())}
        index = index.filter(~pl.col("excluded"))
        # exact duplicates: the earliest copy stays, and counts the others
        index = index.with_columns(
            (pl.len().over("ch1", "ch2") - 1).cast(pl.UInt32).alias("duplicates"),
            (pl.col("sample") == pl.col("sample").min().over("ch1", "ch2")).alias("_first"),
        ).filter(pl.col("_first"))
        merged = int(index["duplicates"].sum() or 0)
        dropped["chosen_equals_rejected"] = int(index["same"].sum())
        index = index.filter(~pl.col("same"))
        band_cols = [c for c in index.columns if c.startswith("b") and c[1:].isdigit()]
        if index.height > 1 and hygiene.near < 1.0 and band_cols:
            leader = band_leaders(
                [index[c].to_numpy() for c in band_cols], index["alone"].to_numpy()
            )
        else:
            leader = np.arange(index.height, dtype=np.int64)
        index = assign(
            index.drop(*band_cols, "ch1", "ch2", "same", "excluded", "alone", "_first"),
            leader,
            hygiene,
        ).with_columns(pl.Series("leader", leader))
        return Prepared(index=index, spill=self.files, dropped=dropped, duplicates_merged=merged)


def chunks(prepared: Prepared) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
    """Pass two's input: each spill chunk's kept rows (in order) with ``split``,
    ``duplicates``, ``group_key`` and ``cluster``, and its index rows."""
    index = prepared.index.with_row_index("_row")
    chunk_of = index["chunk"]
    # groups and clusters whose first sample is in an earlier chunk than some member
    later = index.select(
        "_row",
        "chunk",
        chunk_of.gather(index["root"]).alias("_root_chunk"),
        chunk_of.gather(index["leader"]).alias("_leader_chunk"),
        "root",
        "leader",
    )
    carry = set(
        later.filter(pl.col("_root_chunk") < pl.col("chunk"))["root"].unique().to_list()
    ) | set(later.filter(pl.col("_leader_chunk") < pl.col("chunk"))["leader"].unique().to_list())
    del later
    carried = pl.DataFrame(schema={"_row": pl.UInt32, "_own": pl.String, "sample_id": pl.String})
    # the index is in chunk order: each chunk's rows are a slice of it
    starts = np.searchsorted(chunk_of.to_numpy(), np.arange(len(prepared.spill) + 1))
    for k, path in enumerate(prepared.spill):
        mine = index.slice(int(starts[k]), int(starts[k + 1] - starts[k]))
        if mine.is_empty():
            continue
        rows = pl.read_parquet(path).join(
            mine.select("sample", "_row", "split", "duplicates", "root", "leader"),
            on="sample",
            how="inner",
            maintain_order="left",
        )
        names = rows.select(
            pl.col("_row").cast(pl.UInt32),
            pl.when(pl.col("predicate").is_not_null())
            .then(pl.concat_str("subject", pl.lit(" "), "predicate"))
            .otherwise(pl.concat_str("subject", pl.lit(" "), "sample_id"))
            .alias("_own"),
            "sample_id",
        )
        lookup = pl.concat([carried, names])
        rows = (
            rows.with_columns(pl.col("root").cast(pl.UInt32), pl.col("leader").cast(pl.UInt32))
            .join(
                lookup.select(pl.col("_row").alias("root"), pl.col("_own").alias("group_key")),
                on="root",
                how="left",
                maintain_order="left",
            )
            .join(
                lookup.select(pl.col("_row").alias("leader"), pl.col("sample_id").alias("cluster")),
                on="leader",
                how="left",
                maintain_order="left",
            )
            .drop("_row", "root", "leader")
        )
        carried = pl.concat([carried, names.filter(pl.col("_row").is_in(list(carry)))])
        yield rows, mine
