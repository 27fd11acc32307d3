"""Writing an export: one folder of Parquet files that trainers load as they are.

::

    <export>/
      preference/train-00000-of-00001.parquet   prompt, chosen, rejected (+ metadata)
      unpaired/...                               prompt, completion, label (+ metadata)
      sft/...                                    messages (+ metadata)
      manifest/samples.parquet                   one row per sample: provenance, split
      export.json                                parameters, counts, schema version, lake position
      README.md                                  dataset card (Hugging Face YAML + datasheet)
      openai/                                    optional: chat and preference JSONL

Everything is written to a hidden folder beside the target and renamed into
place at the end, so a failed export leaves nothing behind. The same lake,
parameters and as-of time give byte-identical files (no wall-clock times, a
fixed row order, fixed Parquet settings).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import blake3
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from steme_lake._exceptions import ValidationError
from steme_lake._utils.durable import fsync_dir
from steme_lake.dojo._card import card
from steme_lake.dojo._hygiene import SPLITS
from steme_lake.dojo._mine import NEGATIVE
from steme_lake.dojo._pipeline import Prepared, chunks

__all__ = ["CONFIGS", "SCHEMA_VERSION", "check_target", "summary", "write_export"]

SCHEMA_VERSION = 1
ROW_GROUP = 10_000  # rows per Parquet row group
_THREADS = 4  # files written at once
_LEVEL = 1  # zstd's: writing a quarter faster than at 3, files 2.5% larger
CONFIGS = ("preference", "unpaired", "sft")
_MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
_MESSAGES = pa.list_(_MESSAGE)
_MESSAGE_COLUMNS = frozenset({"prompt", "chosen", "rejected", "completion", "messages"})
_META = [
    ("sample_id", pa.string()),
    ("kind", pa.string()),
    ("subject", pa.string()),
    ("predicate", pa.string()),
    ("agent", pa.string()),
    ("asked_at", pa.timestamp("us", tz="UTC")),
]
ARROW = {
    "preference": pa.schema(
        [("prompt", _MESSAGES), ("chosen", _MESSAGES), ("rejected", _MESSAGES), *_META]
    ),
    "unpaired": pa.schema(
        [("prompt", _MESSAGES), ("completion", _MESSAGES), ("label", pa.bool_()), *_META]
    ),
    "sft": pa.schema([("messages", _MESSAGES), *_META]),
}
MANIFEST = pa.schema(
    [
        ("sample_id", pa.string()),
        ("kind", pa.string()),
        ("label", pa.string()),
        ("split", pa.string()),
        ("group_key", pa.string()),
        ("cluster", pa.string()),
        ("content_hash", pa.string()),
        ("duplicates", pa.uint32()),
        ("query_id", pa.string()),
        ("agent", pa.string()),
        ("agents", pa.list_(pa.string())),
        ("subject", pa.string()),
        ("predicate", pa.string()),
        ("asked_at", pa.timestamp("us", tz="UTC")),
        ("rejected_assertion", pa.string()),
        ("chosen_assertion", pa.string()),
        ("supersession", pa.string()),
        ("constraint", pa.string()),
        ("votes", pa.list_(pa.string())),
        ("sources", pa.list_(pa.string())),
        ("configs", pa.list_(pa.string())),
    ]
)
_META_COLS = [name for name, _ in _META]


def check_target(path: Path, *, overwrite: bool, forbidden: Path, root: Path | None) -> Path:
    """The export folder, resolved; refused inside the lake, outside ``root`` (when a
    server sets one), or when it exists, is not empty, and ``overwrite`` is off."""
    target = path.expanduser().resolve()
    if root is not None:
        base = root.expanduser().resolve()
        if not target.is_relative_to(base):
            raise ValidationError(
                f"export path {str(path)!r} is outside the allowed folder {str(base)!r}; "
                "give a path inside it"
            )
    lake = forbidden.resolve()
    if target.is_relative_to(lake) or lake.is_relative_to(target):
        raise ValidationError(
            f"export path {str(path)!r} would write into the lake's own folder {str(lake)!r}; "
            "export somewhere else"
        )
    if target.exists():
        if not target.is_dir():
            raise ValidationError(f"export path {str(path)!r} is a file; give a folder")
        if any(target.iterdir()) and not overwrite:
            raise ValidationError(
                f"export folder {str(path)!r} exists and is not empty; choose another folder "
                "or pass overwrite=True (--overwrite) to replace it"
            )
    if not target.parent.exists():
        raise ValidationError(f"the folder {str(target.parent)!r} does not exist; create it first")
    return target


def summary(manifest: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Samples per (kind, label, split) of an export's manifest."""
    return (
        manifest.lazy()
        .group_by("kind", "label", "split")
        .agg(pl.len().alias("samples"))
        .sort("label", "kind", "split")
        .collect()
    )


def _messages(col: str) -> pl.Expr:
    return pl.col(col)


def _tables(samples: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """The rows of each config (before splitting into files), in sample order."""
    negative = samples.filter(pl.col("kind").is_in(list(NEGATIVE)))
    preference = negative.select("prompt", "chosen", "rejected", *_META_COLS, "split")
    # each sample's chosen completion (label true), then a negative's rejected one:
    # one row per label, in sample order
    unpaired = (
        samples.select(
            "sample",
            "prompt",
            "chosen",
            "rejected",
            *_META_COLS,
            "split",
            pl.when(pl.col("kind").is_in(list(NEGATIVE)))
            .then(pl.lit([True, False]))
            .otherwise(pl.lit([True]))
            .alias("label"),
        )
        .explode("label")
        .select(
            "sample",
            "prompt",
            pl.when(pl.col("label")).then("chosen").otherwise("rejected").alias("completion"),
            "label",
            *_META_COLS,
            "split",
        )
    )
    sft = samples.select(pl.concat_list("prompt", "chosen").alias("messages"), *_META_COLS, "split")
    return {"preference": preference, "unpaired": unpaired, "sft": sft}


def _one_at_a_time(
    progress: Callable[[int], None] | None,
) -> Callable[[int], None] | None:
    """``progress``, called by one writer thread at a time."""
    if progress is None:
        return None
    lock = threading.Lock()

    def done(rows: int) -> None:
        with lock:
            progress(rows)

    return done


def _wait(jobs: list[Future[None]]) -> None:
    """Every job finished (the first failure raised, once all have stopped)."""
    wait(jobs)
    for job in jobs:
        job.result()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Shards:
    """One config and split's files, filled in order, ``shard_rows`` rows each."""

    def __init__(
        self,
        work: Path,
        names: list[str],
        schema: pa.Schema,
        shard_rows: int,
        files: list[dict[str, Any]],
        progress: Callable[[int], None] | None,
    ) -> None:
        self.work, self.names, self.schema, self.shard_rows = work, names, schema, shard_rows
        self.files, self.progress = files, progress
        self.k = 0
        self.rows = 0
        self.writer: pq.ParquetWriter | None = None
        # Rows not yet in a row group: every group but a shard's last holds ROW_GROUP
        # rows, however the rows arrived, so the bytes do not depend on the chunks.
        self.pending: list[pa.Table] = []
        self.pending_rows = 0

    def write_split(self, frame: pl.DataFrame, split: str) -> None:
        """The rows of ``frame`` in ``split``."""
        part = frame.filter(pl.col("split") == split)
        if not part.is_empty():
            self.write(part)

    def write(self, frame: pl.DataFrame) -> None:
        table = frame.select(self.schema.names).to_arrow().cast(self.schema)
        offset = 0
        while offset < table.num_rows:
            take = min(self.shard_rows - self.rows, table.num_rows - offset)
            self.pending.append(table.slice(offset, take))
            self.pending_rows += take
            offset += take
            self.rows += take
            if self.rows == self.shard_rows:
                self._finish()
            elif self.pending_rows >= ROW_GROUP:
                self._groups(whole=True)

    def _groups(self, *, whole: bool) -> None:
        """Write the pending rows as row groups (``whole``: full ones only)."""
        if self.writer is None:
            self.writer = pq.ParquetWriter(
                self.work / self.names[self.k],
                self.schema,
                compression="zstd",
                compression_level=_LEVEL,
                # statistics on what a reader filters by, not on the messages
                write_statistics=[n for n in self.schema.names if n not in _MESSAGE_COLUMNS],
            )
        # one contiguous chunk: Parquet's pages follow the Arrow chunks they are given
        rows = (
            pa.concat_tables(self.pending).combine_chunks()
            if self.pending
            else pa.Table.from_batches([], schema=self.schema)
        )
        cut = (rows.num_rows // ROW_GROUP) * ROW_GROUP if whole else rows.num_rows
        if cut:
            self.writer.write_table(rows.slice(0, cut), row_group_size=ROW_GROUP)
        rest = rows.slice(cut)
        self.pending = [rest] if rest.num_rows else []
        self.pending_rows = rest.num_rows

    def close(self) -> None:
        if self.rows or self.k == 0:  # a shard begun, or nothing at all (an empty file)
            self._finish()

    def _finish(self) -> None:
        self._groups(whole=False)
        assert self.writer is not None
        self.writer.close()
        self.writer = None
        name = self.names[self.k]
        _fsync(self.work / name)
        self.files.append({"path": name, "rows": self.rows})
        if self.progress is not None and self.rows:
            self.progress(self.rows)
        self.k += 1
        self.rows = 0


def write_export(
    target: Path,
    prepare: Callable[[Path], Prepared],
    *,
    info: dict[str, Any],
    shard_rows: int,
    openai: bool,
    progress: Callable[[int], None] | None = None,
) -> pl.LazyFrame:
    """Pass two: run ``prepare`` (pass one, spilling into the work folder), write the
    export folder at ``target`` from its chunks, and return the manifest (a scan of
    its file)."""
    work = target.parent / f".{target.name}.partial-{os.getpid()}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    try:
        spill = work / ".spill"
        spill.mkdir()
        prepared = prepare(spill)
        index = prepared.index
        counts: dict[str, dict[str, int]] = {c: {} for c in CONFIGS}
        for split in SPLITS:
            part = index.filter(pl.col("split") == split)
            negatives = int(part["negative"].sum())
            for config, n in (
                ("preference", negatives),
                ("unpaired", part.height + negatives),
                ("sft", part.height),
            ):
                if n:
                    counts[config][split] = n
        files: list[dict[str, Any]] = []
        writers: dict[tuple[str, str], _Shards] = {}
        written = _one_at_a_time(progress)
        for config in CONFIGS:
            (work / config).mkdir()
            for split, n in counts[config].items():
                shards = max(1, -(-n // shard_rows))
                names = [f"{config}/{split}-{k:05d}-of-{shards:05d}.parquet" for k in range(shards)]
                writers[config, split] = _Shards(
                    work, names, ARROW[config], shard_rows, files, written
                )
        (work / "manifest").mkdir()
        manifest_files: list[dict[str, Any]] = []
        manifest_out = _Shards(
            work, ["manifest/samples.parquet"], MANIFEST, 2**62, manifest_files, None
        )
        chat = _Lines(work, "chat") if openai else None
        pref = _Lines(work, "preference") if openai else None
        # Each file is written by one job at a time, in chunk order (so its bytes do not
        # depend on the threads); the files of one chunk are written side by side
        # (pyarrow compresses without the interpreter's lock) while the next chunk is
        # read and split into tables.
        with ThreadPoolExecutor(max_workers=_THREADS) as pool:
            running: list[Future[None]] = []
            for rows, _ in chunks(prepared):
                tables = _tables(rows)
                manifest_rows = rows.with_columns(
                    # a negative is a preference pair, two unpaired rows and an SFT
                    # conversation; a positive an unpaired row and an SFT conversation
                    pl.when(pl.col("kind").is_in(list(NEGATIVE)))
                    .then(pl.lit(["preference", "sft", "unpaired"], dtype=pl.List(pl.String)))
                    .otherwise(pl.lit(["sft", "unpaired"], dtype=pl.List(pl.String)))
                    .alias("configs")
                )
                _wait(running)
                running = [
                    pool.submit(writer.write_split, tables[config], split)
                    for (config, split), writer in writers.items()
                ]
                running.append(pool.submit(manifest_out.write, manifest_rows))
                if chat is not None and pref is not None:
                    for split in SPLITS:
                        chat.add(split, tables["sft"].filter(pl.col("split") == split))
                        pref.add(split, tables["preference"].filter(pl.col("split") == split))
                del rows, tables, manifest_rows
            _wait(running)
        for writer in writers.values():
            writer.close()
        for config in CONFIGS:
            fsync_dir(work / config)
        manifest_out.close()
        fsync_dir(work / "manifest")
        files.sort(key=_file_order)
        files.extend(manifest_files)
        if chat is not None and pref is not None:
            (work / "openai").mkdir(exist_ok=True)
            files.extend(chat.close() + pref.close())
            fsync_dir(work / "openai")
        shutil.rmtree(spill)
        for f in files:
            f["blake3"] = _file_hash(work / f["path"])
        kept = index.height
        info = {
            **info,
            "schema_version": SCHEMA_VERSION,
            "counts": {
                **info.get("counts", {}),
                "duplicates_merged": prepared.duplicates_merged,
                "dropped": prepared.dropped,
                "samples": kept,
                "by_kind": dict(
                    sorted((str(k), n) for k, n in index["kind"].value_counts().iter_rows())
                ),
                "by_split": dict(sorted(index["split"].value_counts().iter_rows())),
                "rows": counts,
            },
            "files": files,
        }
        (work / "export.json").write_text(
            json.dumps(info, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        )
        (work / "README.md").write_text(card(info, kept))
        for name in ("export.json", "README.md"):
            _fsync(work / name)
        fsync_dir(work)
        _publish(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    # lazy: at a million samples the manifest alone is gigabytes; collect what you need
    return pl.scan_parquet(target / "manifest" / "samples.parquet")


def _file_order(f: dict[str, Any]) -> tuple[int, int, str]:
    config, name = f["path"].split("/", 1)
    return CONFIGS.index(config), SPLITS.index(name.split("-", 1)[0]), f["path"]


def _file_hash(path: Path) -> str:
    h = blake3.blake3()
    with path.open("rb") as handle:
        while block := handle.read(1 << 22):
            h.update(block)
    return h.hexdigest()


class _Lines:
    """OpenAI fine-tuning JSONL for one kind (chat or preference), per split."""

    def __init__(self, work: Path, kind: str) -> None:
        self.work, self.kind = work, kind
        self.rows: dict[str, int] = {}

    def add(self, split: str, frame: pl.DataFrame) -> None:
        if frame.is_empty():
            return
        if self.kind == "chat":
            lines = [
                json.dumps({"messages": m}, ensure_ascii=False) for m in frame["messages"].to_list()
            ]
        else:
            lines = [
                json.dumps(
                    {"input": {"messages": p}, "preferred_output": c, "non_preferred_output": r},
                    ensure_ascii=False,
                )
                for p, c, r in frame.select("prompt", "chosen", "rejected").iter_rows()
            ]
        (self.work / "openai").mkdir(exist_ok=True)
        with (self.work / self._name(split)).open("a", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in lines))
        self.rows[split] = self.rows.get(split, 0) + len(lines)

    def _name(self, split: str) -> str:
        return f"openai/{self.kind}-{split}.jsonl"

    def close(self) -> list[dict[str, Any]]:
        out = []
        for split in SPLITS:
            if split in self.rows:
                _fsync(self.work / self._name(split))
                out.append({"path": self._name(split), "rows": self.rows[split]})
        return out


def _publish(work: Path, target: Path) -> None:
    """Rename the finished folder into place (replacing an old export when allowed)."""
    old = None
    if target.exists():
        if any(target.iterdir()):
            old = target.parent / f".{target.name}.old-{os.getpid()}"
            target.rename(old)
        else:
            target.rmdir()
    work.rename(target)
    fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
