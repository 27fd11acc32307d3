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
from collections.abc import Callable
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

__all__ = ["CONFIGS", "SCHEMA_VERSION", "check_target", "summary", "write_export"]

SCHEMA_VERSION = 1
CONFIGS = ("preference", "unpaired", "sft")
_MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
_MESSAGES = pa.list_(_MESSAGE)
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


def summary(manifest: pl.DataFrame) -> pl.DataFrame:
    """Samples per (kind, label, split) of an export's manifest."""
    return (
        manifest.group_by("kind", "label", "split")
        .agg(pl.len().alias("samples"))
        .sort("label", "kind", "split")
    )


def _messages(col: str) -> pl.Expr:
    return pl.col(col)


def _tables(samples: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """The rows of each config (before splitting into files)."""
    negative = samples.filter(pl.col("kind").is_in(list(NEGATIVE)))
    preference = negative.select("prompt", "chosen", "rejected", *_META_COLS, "split")
    unpaired = pl.concat(
        [
            samples.select(
                "prompt",
                pl.col("chosen").alias("completion"),
                pl.lit(True).alias("label"),
                *_META_COLS,
                "split",
            ),
            negative.select(
                "prompt",
                pl.col("rejected").alias("completion"),
                pl.lit(False).alias("label"),
                *_META_COLS,
                "split",
            ),
        ]
    ).sort("asked_at", "sample_id", "label", descending=[False, False, True])
    sft = samples.select(pl.concat_list("prompt", "chosen").alias("messages"), *_META_COLS, "split")
    return {"preference": preference, "unpaired": unpaired, "sft": sft}


def _write_parquet(frame: pl.DataFrame, schema: pa.Schema, path: Path) -> None:
    table = frame.select(schema.names).to_arrow().cast(schema)
    pq.write_table(
        table,
        path,
        compression="zstd",
        compression_level=3,
        write_statistics=True,
        row_group_size=10_000,
    )
    _fsync(path)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_export(
    target: Path,
    samples: pl.DataFrame,
    *,
    info: dict[str, Any],
    shard_rows: int,
    openai: bool,
    progress: Callable[[int], None] | None = None,
) -> pl.DataFrame:
    """Write ``samples`` (cleaned and split) as an export folder at ``target``;
    return the manifest."""
    work = target.parent / f".{target.name}.partial-{os.getpid()}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    try:
        files: list[dict[str, Any]] = []
        counts: dict[str, dict[str, int]] = {}
        for config, frame in _tables(samples).items():
            (work / config).mkdir()
            counts[config] = {}
            for split in SPLITS:
                part = frame.filter(pl.col("split") == split)
                if part.is_empty():
                    continue
                counts[config][split] = part.height
                shards = max(1, -(-part.height // shard_rows))
                for k in range(shards):
                    name = f"{config}/{split}-{k:05d}-of-{shards:05d}.parquet"
                    _write_parquet(
                        part.slice(k * shard_rows, shard_rows), ARROW[config], work / name
                    )
                    files.append(
                        {"path": name, "rows": min(shard_rows, part.height - k * shard_rows)}
                    )
                    if progress is not None:
                        progress(files[-1]["rows"])
            fsync_dir(work / config)
        # a negative is a preference pair, two unpaired rows and an SFT conversation;
        # a positive is an unpaired row and an SFT conversation
        manifest = samples.with_columns(
            pl.when(pl.col("kind").is_in(list(NEGATIVE)))
            .then(pl.lit(["preference", "sft", "unpaired"], dtype=pl.List(pl.String)))
            .otherwise(pl.lit(["sft", "unpaired"], dtype=pl.List(pl.String)))
            .alias("configs")
        ).sort("asked_at", "sample_id")
        manifest = manifest.select(MANIFEST.names)
        (work / "manifest").mkdir()
        _write_parquet(manifest, MANIFEST, work / "manifest" / "samples.parquet")
        fsync_dir(work / "manifest")
        files.append({"path": "manifest/samples.parquet", "rows": manifest.height})
        if openai:
            files.extend(_openai(work, _tables(samples)))
        for f in files:
            f["blake3"] = blake3.blake3((work / f["path"]).read_bytes()).hexdigest()
        info = {
            **info,
            "schema_version": SCHEMA_VERSION,
            "counts": {
                **info.get("counts", {}),
                "samples": manifest.height,
                "by_kind": dict(sorted(manifest["kind"].value_counts().iter_rows())),
                "by_split": dict(sorted(manifest["split"].value_counts().iter_rows())),
                "rows": counts,
            },
            "files": files,
        }
        (work / "export.json").write_text(
            json.dumps(info, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        )
        (work / "README.md").write_text(card(info, manifest))
        for name in ("export.json", "README.md"):
            _fsync(work / name)
        fsync_dir(work)
        _publish(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return manifest


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


def _openai(work: Path, tables: dict[str, pl.DataFrame]) -> list[dict[str, Any]]:
    """OpenAI fine-tuning JSONL: chat (``messages``) and preference (DPO) files."""
    (work / "openai").mkdir()
    out: list[dict[str, Any]] = []
    for split in SPLITS:
        sft = tables["sft"].filter(pl.col("split") == split)
        if not sft.is_empty():
            name = f"openai/chat-{split}.jsonl"
            lines = [
                json.dumps({"messages": m}, ensure_ascii=False) for m in sft["messages"].to_list()
            ]
            (work / name).write_text("".join(line + "\n" for line in lines))
            out.append({"path": name, "rows": len(lines)})
        pref = tables["preference"].filter(pl.col("split") == split)
        if not pref.is_empty():
            name = f"openai/preference-{split}.jsonl"
            lines = [
                json.dumps(
                    {
                        "input": {"messages": p},
                        "preferred_output": c,
                        "non_preferred_output": r,
                    },
                    ensure_ascii=False,
                )
                for p, c, r in pref.select("prompt", "chosen", "rejected").iter_rows()
            ]
            (work / name).write_text("".join(line + "\n" for line in lines))
            out.append({"path": name, "rows": len(lines)})
    for f in out:
        _fsync(work / f["path"])
    fsync_dir(work / "openai")
    return out
