"""Columnar bulk assertions: the same records as `assertion_row`, column by column.

`Lake.assert_many` given a Polars DataFrame or an Arrow table checks and
encodes whole columns at once instead of one Python call chain per row. The
result is byte-identical to the row path: the same stored values, the same
canonical content JSON, so the same ids (a property test holds the two paths
to that). Anything this path does not cover (signatures, ``meta``,
``visual_hash``, ``parent`` links, text times, columns it does not know) and
any input it finds wrong goes to the row path, which then accepts it or raises
its usual precise error: this module never words an error of its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import blake3
import numpy as np
import polars as pl
import pyarrow as pa

from steme_lake._exceptions import StemeLakeError
from steme_lake.lake._rows import MAX_AGENT, MAX_TEXT
from steme_lake.model.ids import _LAYOUT, _PREFIXES
from steme_lake.model.schema import LIFECYCLE_STAGES, RecordKind, spec
from steme_lake.wal import PreparedFrame

__all__ = ["BulkAssertions", "UseRowPath", "bulk_assertions", "stamp"]


class UseRowPath(StemeLakeError):
    """A bulk commit refused under the commit lock; the row path words the error."""


_KIND = RecordKind.ASSERTION
# Columns this path handles; any other column sends the frame to the row path.
_COVERED = frozenset(
    {
        "subject",
        "predicate",
        "object",
        "agent",
        "confidence",
        "lifecycle",
        "source_hash",
        "source",
        "epoch",
        "parent",
        "visual_hash",
        "meta",
        "at",
        "signatures",
        "sign_with",
    }
)
# Columns the row path must handle when they hold any value.
_ROW_PATH_IF_SET = ("parent", "visual_hash", "meta", "signatures", "sign_with")
# Python's str.isspace() also holds for these, Rust's \s does not.
_NOT_BLANK = r"[^\s\x1c-\x1f]"
# What Python's JSON encoder (ensure_ascii=False) escapes in a string.
_NEEDS_ESCAPE = r'[\x00-\x1f"\\]'


@dataclass(slots=True)
class BulkAssertions:
    """Checked, encoded assertions, waiting for their times and ids."""

    stored: pa.Table  # the content columns, in stored form and types
    content: pl.Series  # canonical content JSON, one per row
    at: np.ndarray | None  # int64 microseconds, or None: the lake assigns times
    n: int


def _frame(data: Any) -> pl.DataFrame | None:
    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, pa.Table):
        frame = pl.from_arrow(data)
        return frame if isinstance(frame, pl.DataFrame) else None
    return None


def _quoted(name: str) -> pl.Expr:
    """JSON text of a text column: ``null`` for null, ``"value"`` where no
    character needs escaping, and null where one does (Python's encoder words
    those afterwards)."""
    col = pl.col(name)
    return (
        pl.when(col.is_null())
        .then(pl.lit("null"))
        .when(col.str.contains(_NEEDS_ESCAPE))
        .then(pl.lit(None, pl.String))
        .otherwise(pl.concat_str([pl.lit('"'), col, pl.lit('"')]))
    )


def _object_json(col: pl.Series) -> pl.Expr | None:
    """An expression for the canonical JSON of the ``object`` column, or None if
    its type needs the row path."""
    if col.dtype == pl.String:
        return _quoted("object")
    if col.dtype.is_integer() or col.dtype == pl.Null:
        return pl.col("object").cast(pl.String).fill_null("null")
    if col.dtype == pl.Boolean:
        return (
            pl.col("object")
            .replace_strict({True: "true", False: "false"}, return_dtype=pl.String)
            .fill_null("null")
        )
    return None  # floats, lists, structs: Python's encoder


def _text_checks(name: str, limit: int, *, optional: bool = False) -> list[pl.Expr]:
    col = pl.col(name)
    checks = [
        col.str.contains(_NOT_BLANK).fill_null(optional).all(),
        (col.str.len_chars() <= limit).fill_null(optional).all(),
    ]
    if not optional:
        checks.append(col.is_not_null().all())
    return checks


def bulk_assertions(data: Any) -> BulkAssertions | None:
    """The columnar form of ``data``, or None when the row path must take it."""
    df = _frame(data)
    if df is None or df.height == 0 or not set(df.columns) <= _COVERED:
        return None
    cols = set(df.columns)
    if not {"subject", "predicate", "object", "agent"} <= cols:
        return None
    if ("source" in cols) == ("source_hash" in cols):
        return None
    for name in _ROW_PATH_IF_SET:
        if name in cols and df[name].null_count() != df.height:
            return None
    n = df.height
    texts = ["subject", "predicate", "agent", "lifecycle", "source_hash", "epoch"]
    df = (
        df.with_columns([pl.lit("proposed").alias("lifecycle")] if "lifecycle" not in cols else [])
        .with_columns(
            [pl.lit(1.0).alias("confidence")] if "confidence" not in cols else [],
        )
        .with_columns([pl.lit(None, pl.String).alias("epoch")] if "epoch" not in cols else [])
    )
    if "source" in cols:
        source = df["source"]
        if source.dtype not in (pl.String, pl.Binary) or source.null_count():
            return None
        values = source.to_list()
        if not all(values):
            return None
        encoded = [v.encode("utf-8") if isinstance(v, str) else v for v in values]
        df = df.with_columns(
            pl.Series("source_hash", [blake3.blake3(v).hexdigest() for v in encoded])
        )
    if any(df[c].dtype != pl.String for c in texts if df[c].null_count() != n):
        return None
    df = df.with_columns(pl.col(c).cast(pl.String) for c in texts)
    conf = df["confidence"]
    if not (conf.dtype.is_float() or conf.dtype.is_integer()) or conf.dtype == pl.Boolean:
        return None
    obj = _object_json(df["object"])
    if obj is None:
        return None

    # Every check at once: one pass over the columns.
    c = pl.col("confidence").cast(pl.Float64)
    checks = (
        _text_checks("subject", MAX_TEXT)
        + _text_checks("predicate", MAX_TEXT)
        + _text_checks("agent", MAX_AGENT)
        + _text_checks("epoch", MAX_AGENT, optional=True)
        + [
            c.is_not_null().all(),
            c.is_finite().all(),
            ((c >= 0.0) & (c <= 1.0)).all(),
            pl.col("lifecycle").is_in(LIFECYCLE_STAGES).fill_null(False).all(),
            pl.col("source_hash").str.contains(r"^[0-9a-f]{64}$").fill_null(False).all(),
        ]
    )
    if not all(df.select(e.alias(f"_{i}") for i, e in enumerate(checks)).row(0)):
        return None

    at = None
    if "at" in cols:
        when = df["at"]
        if when.null_count() == n:
            at = None
        elif not isinstance(when.dtype, pl.Datetime) or when.null_count():
            return None
        else:
            at = when.dt.epoch("us").to_numpy().astype(np.int64)

    stored = df.select(
        "subject",
        "predicate",
        obj.alias("object"),
        c.alias("confidence"),
        "source_hash",
        "agent",
        "lifecycle",
        pl.lit(None, pl.String).alias("parent"),
        "epoch",
        pl.lit(None, pl.String).alias("visual_hash"),
        pl.lit(None, pl.String).alias("meta"),
    )
    if stored["object"].null_count():
        stored = stored.with_columns(_escaped(stored["object"], df["object"]))
    return BulkAssertions(stored=stored.to_arrow(), content=_content(stored), at=at, n=n)


def _escaped(encoded: pl.Series, raw: pl.Series) -> pl.Series:
    """Fill in the values `_quoted` left out with Python's encoder (rare: quotes,
    backslashes, control characters)."""
    need = encoded.is_null().arg_true()
    fixed = [json.dumps(v, ensure_ascii=False) for v in raw.gather(need).to_list()]
    return encoded.scatter(need, fixed)


def _content(stored: pl.DataFrame) -> pl.Series:
    """The canonical content JSON of each row (see `model.ids.content_json`)."""
    json_columns = spec(_KIND).json_columns
    parts: list[pl.Expr] = []
    for i, (name, key, _how) in enumerate(_LAYOUT[_KIND]):
        if name in json_columns:
            value = pl.col(name).fill_null("null")  # already canonical text
        elif name == "confidence":
            value = pl.col("_confidence")
        else:
            value = _quoted(name)
        parts += [pl.lit(("{" if i == 0 else ",") + key), value]
    parts.append(pl.lit("}"))
    reprs = pl.Series("_confidence", [repr(x) for x in stored["confidence"].to_list()])
    content = stored.with_columns(reprs).select(pl.concat_str(parts).alias("content")).to_series()
    if content.null_count():
        # A text value needed escaping: redo those rows with Python's encoder.
        from steme_lake.model.ids import content_json

        need = content.is_null().arg_true()
        rows = stored.gather(need).to_dicts()
        content = content.scatter(need, [content_json(_KIND, r) for r in rows])
    return content


def stamp(
    bulk: BulkAssertions,
    next_seq: int,
    last_time: int,
    *,
    now: Callable[[], int],
    max_future_us: int,
    frame_budget: int,
) -> list[PreparedFrame] | None:
    """Times, ids and frames for the log's real tail, as `rows.build_frames` would
    make them; None when a row breaks a rule (the row path then words the error)."""
    clock = now()
    n = bulk.n
    if bulk.at is None:
        times = np.arange(n, dtype=np.int64) + max(clock, last_time + 1)
    else:
        times = bulk.at
        previous = np.concatenate([[last_time], times[:-1]])
        if (times < previous).any() or (times > clock + max_future_us).any():
            return None
    message = (
        pl.DataFrame({"c": bulk.content, "t": times})
        .select(
            pl.concat_str(
                [
                    pl.lit(_PREFIXES[_KIND].decode()),
                    pl.col("c"),
                    pl.lit("\n"),
                    pl.col("t").cast(pl.String),
                ]
            )
        )
        .to_series()
    )
    ids = [blake3.blake3(m.encode()).hexdigest() for m in message.to_list()]
    if len(set(ids)) != n:
        return None  # the same record twice at the same time
    sizes = (bulk.content.str.len_chars() + 200).to_list()
    frames: list[PreparedFrame] = []
    start, budget = 0, 0
    for i, size in enumerate(sizes):
        if i > start and budget + size > frame_budget:
            frames.append(_frame_of(bulk, ids, times, start, i, next_seq + len(frames)))
            start, budget = i, 0
        budget += size
    frames.append(_frame_of(bulk, ids, times, start, n, next_seq + len(frames)))
    return frames


def _frame_of(
    bulk: BulkAssertions, ids: list[str], times: np.ndarray, lo: int, hi: int, seq: int
) -> PreparedFrame:
    kspec = spec(_KIND)
    n = hi - lo
    part = bulk.stored.slice(lo, n)
    arrays = []
    for f in kspec.schema:
        if f.name == "id":
            arrays.append(pa.array(ids[lo:hi], pa.string()))
        elif f.name == "seq":
            arrays.append(pa.array(np.full(n, seq, dtype=np.int64)))
        elif f.name == "recorded_at":
            arrays.append(pa.array(times[lo:hi]).cast(f.type))
        elif f.name == "signatures":
            arrays.append(
                pa.ListArray.from_arrays(
                    pa.array(np.zeros(n + 1, dtype=np.int32)),
                    pa.array([], f.type.value_type),
                    type=f.type,
                )
            )
        else:
            arrays.append(part.column(f.name).cast(f.type))
    table = pa.Table.from_arrays(arrays, schema=kspec.schema)
    return PreparedFrame(kind=int(_KIND), seq=seq, commit_time=int(times[hi - 1]), table=table)
