"""Columnar bulk writes: the same records as the row makers, column by column.

`Lake.assert_many`, `Lake.vote_many` and `Lake.import_audit`, given a Polars
DataFrame or an Arrow table, check and encode whole columns at once instead
of one Python call chain per row. The result is byte-identical to the row
path: the same stored values, the same canonical content JSON, so the same
ids (property tests hold the two paths to that). Anything this path does not
cover (signatures, ``meta``, ``visual_hash``, ``parent`` links, list or
float values, text times, columns it does not know) and any input it finds
wrong goes to the row path, which then accepts it or raises its usual
precise error: this module never words an error of its own.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import blake3
import numpy as np
import polars as pl
import polars_hash as plh
import pyarrow as pa

from steme_lake._exceptions import StemeLakeError
from steme_lake._utils.arrays import text_bytes
from steme_lake.lake._rows import MAX_AGENT, MAX_TEXT, NOT_CANONICAL
from steme_lake.model.ids import _LAYOUT, _PREFIXES, content_json
from steme_lake.model.schema import LIFECYCLE_STAGES, RecordKind, spec
from steme_lake.wal import PreparedFrame

__all__ = ["BulkRows", "UseRowPath", "bulk_assertions", "bulk_audit", "bulk_votes", "stamp"]


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
_ID = r"^[0-9a-f]{64}$"  # a record id
# What Python's JSON encoder (ensure_ascii=False) escapes in a string.
_NEEDS_ESCAPE = r'[\x00-\x1f"\\]'


@dataclass(slots=True)
class BulkRows:
    """Checked, encoded records of one kind, waiting for their times and ids."""

    kind: RecordKind
    stored: pa.Table  # the content columns, in stored form and types
    content: pl.Series  # canonical content JSON, one per row
    at: np.ndarray | None  # int64 microseconds, or None: the lake assigns times
    n: int


def _select(df: pl.DataFrame, exprs: list[pl.Expr | str]) -> pl.DataFrame:
    """``df.select(exprs)``; for a large frame through the lazy engine, whose
    optimizations an eager select skips (5.8 against 8.5 ms for the content
    JSON of 13,888 rows), while for a small one they cost more than they save
    (1,388 rows: checks, content and stamp 9.3 against 8.3 ms)."""
    if df.height >= _LAZY_ROWS:
        return df.lazy().select(exprs).collect()
    return df.select(exprs)


_LAZY_ROWS = 8_192


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
    """An expression for the canonical JSON of a JSON value column (``object``,
    an audit ``value``), or None if its type needs the row path."""
    if col.dtype == pl.String:
        if _plain_text(col.to_arrow()):
            return pl.concat_str([pl.lit('"'), pl.col(col.name), pl.lit('"')]).fill_null("null")
        return _quoted(col.name)
    if col.dtype.is_integer() or col.dtype == pl.Null:
        return pl.col(col.name).cast(pl.String).fill_null("null")
    if col.dtype == pl.Boolean:
        return (
            pl.col(col.name)
            .replace_strict({True: "true", False: "false"}, return_dtype=pl.String)
            .fill_null("null")
        )
    return None  # floats, lists, structs: Python's encoder


def _times(df: pl.DataFrame, *, required: bool) -> tuple[bool, np.ndarray | None]:
    """(usable, ``at`` as int64 microseconds or None for lake-assigned times)."""
    if "at" not in df.columns or df["at"].null_count() == df.height:
        return not required, None
    when = df["at"]
    if not isinstance(when.dtype, pl.Datetime) or when.null_count():
        return False, None  # text times, or some rows without: the row path
    return True, when.dt.epoch("us").to_numpy().astype(np.int64)


def _subject_checks() -> list[pl.Expr]:
    # a subject that is not a canonical path goes to the row path, which says why
    return [~pl.col("subject").str.contains(NOT_CANONICAL).fill_null(False).any()]


def _text_checks(name: str, limit: int, *, optional: bool = False) -> list[pl.Expr]:
    col = pl.col(name)
    checks = [
        col.str.contains(_NOT_BLANK).fill_null(optional).all(),
        (col.str.len_chars() <= limit).fill_null(optional).all(),
    ]
    if not optional:
        checks.append(col.is_not_null().all())
    return checks


def bulk_assertions(data: Any) -> BulkRows | None:
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
        + _subject_checks()
        + _text_checks("predicate", MAX_TEXT)
        + _text_checks("agent", MAX_AGENT)
        + _text_checks("epoch", MAX_AGENT, optional=True)
        + [
            c.is_not_null().all(),
            c.is_finite().all(),
            ((c >= 0.0) & (c <= 1.0)).all(),
            pl.col("lifecycle").is_in(LIFECYCLE_STAGES).fill_null(False).all(),
        ]
    )
    if not all(_select(df, [e.alias(f"_{i}") for i, e in enumerate(checks)]).row(0)):
        return None
    if not _hex_ids(df["source_hash"]):
        return None

    usable, at = _times(df, required=False)
    if not usable:
        return None

    stored = _select(
        df,
        [
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
        ],
    )
    if stored["object"].null_count():
        stored = stored.with_columns(_escaped(stored["object"], df["object"]))
    table = stored.to_arrow()
    return BulkRows(_KIND, table, _content(_KIND, stored, table), at, n)


def _hex_ids(col: pl.Series) -> bool:
    """Whether every value is 64 lower-case hex digits (a BLAKE3 hash as the lake
    writes one), looking at the bytes at once: the regex took 3 ms of a
    13,888-row commit."""
    if col.null_count():
        return False
    found = text_bytes(col.to_arrow())
    if found is None:
        return bool(col.str.contains(r"^[0-9a-f]{64}$").all())
    offsets, data = found
    if not (np.diff(offsets) == 64).all():
        return False
    digit = (data >= ord("0")) & (data <= ord("9"))
    return bool((digit | ((data >= ord("a")) & (data <= ord("f")))).all())


def _plain_text(values: pa.Array | pa.ChunkedArray) -> bool:
    """Whether no value of a text column needs JSON escaping, by one look-up over
    its bytes (0.3 ms for 13,888 subjects, against 1.2 for the regex per row)."""
    found = text_bytes(values)
    if found is None:
        return False
    # Control characters, quote and backslash: what Python's JSON encoder escapes
    # (UTF-8 continuation bytes are all >= 0x80, so a byte test is exact).
    data = found[1]
    return not bool(((data < 0x20) | (data == ord('"')) | (data == ord("\\"))).any())


def _escaped(encoded: pl.Series, raw: pl.Series) -> pl.Series:
    """Fill in the values `_quoted` left out with Python's encoder (rare: quotes,
    backslashes, control characters)."""
    need = (encoded.is_null() & raw.is_not_null()).arg_true()
    fixed = [json.dumps(v, ensure_ascii=False) for v in raw.gather(need).to_list()]
    return encoded.scatter(need, fixed)


def bulk_votes(data: Any) -> tuple[BulkRows, list[str]] | None:
    """Votes (`Lake.vote_many`) in columnar form with their distinct targets (the
    lake checks those exist), or None when the row path (`rows.vote_row`) must
    take them."""
    df = _frame(data)
    if df is None or df.height == 0 or not set(df.columns) <= {"target", "agent", "weight", "at"}:
        return None
    if not {"target", "agent"} <= set(df.columns):
        return None
    if "weight" not in df.columns:
        df = df.with_columns(pl.lit(1.0).alias("weight"))
    weight = df["weight"].dtype
    if df["target"].dtype != pl.String or df["agent"].dtype != pl.String:
        return None
    if weight == pl.Boolean or not weight.is_numeric():
        return None
    usable, at = _times(df, required=False)
    if not usable:
        return None
    w = pl.col("weight").cast(pl.Float64)
    checks = [
        *_text_checks("agent", MAX_AGENT),
        pl.col("target").str.contains(_ID).fill_null(False).all(),
        w.is_not_null().all(),
        w.is_finite().all(),
    ]
    if not all(_select(df, [e.alias(f"_{i}") for i, e in enumerate(checks)]).row(0)):
        return None
    stored = df.select("target", "agent", w.alias("weight"))
    kind = RecordKind.VOTE
    table = stored.to_arrow()
    bulk = BulkRows(kind, table, _content(kind, stored, table), at, df.height)
    return bulk, stored["target"].unique().to_list()


_AUDIT_COVERED = frozenset(
    {
        "agent", "op", "subject", "predicate", "lens", "lifecycle", "min_confidence",
        "as_of", "include_superseded", "status", "value", "confidence", "winner",
        "contributing", "latency_us", "at",
    }
)  # fmt: skip


def bulk_audit(data: Any) -> BulkRows | None:
    """Imported audit records (`Lake.import_audit`) in columnar form, or None when
    the row path (`rows.imported_audit_row`) must take them."""
    from steme_lake.lake._rows import AUDIT_STATUSES
    from steme_lake.query.lenses import lens_names

    df = _frame(data)
    if df is None or df.height == 0 or not set(df.columns) <= _AUDIT_COVERED:
        return None
    cols = set(df.columns)
    if not {"agent", "subject"} <= cols:
        return None
    for name in ("lifecycle", "min_confidence", "as_of"):  # filters: the row path
        if name in cols and df[name].null_count() != df.height:
            return None
    usable, at = _times(df, required=True)
    if not usable or at is None:
        return None
    n = df.height
    defaults = {
        "op": pl.lit("query"),
        "status": pl.lit("answered"),
        "include_superseded": pl.lit(False),
        "predicate": pl.lit(None, pl.String),
        "lens": pl.lit(None, pl.String),
        "value": pl.lit(None, pl.String),
        "confidence": pl.lit(None, pl.Float64),
        "winner": pl.lit(None, pl.String),
        "contributing": pl.lit(None, pl.List(pl.String)),
        "latency_us": pl.lit(None, pl.Int64),
    }
    df = df.with_columns(v.alias(k) for k, v in defaults.items() if k not in cols)
    for name in ("agent", "op", "subject", "predicate", "lens", "status", "winner"):
        if df[name].dtype != pl.String:
            if df[name].null_count() != n:
                return None
            df = df.with_columns(pl.col(name).cast(pl.String))
    contributing = df["contributing"].dtype
    if contributing == pl.Null or contributing == pl.List(pl.Null):
        df = df.with_columns(pl.col("contributing").cast(pl.List(pl.String)))
    elif contributing != pl.List(pl.String):
        return None
    conf, latency = df["confidence"].dtype, df["latency_us"].dtype
    if conf == pl.Boolean or not (conf.is_numeric() or conf == pl.Null):
        return None
    if latency == pl.Boolean or not (latency.is_integer() or latency == pl.Null):
        return None
    if df["include_superseded"].dtype != pl.Boolean or df["include_superseded"].null_count():
        return None
    value = _object_json(df["value"])
    if value is None:
        return None

    c = pl.col("confidence").cast(pl.Float64)
    op, status = pl.col("op"), pl.col("status")
    checks = (
        _text_checks("agent", MAX_AGENT)
        + _text_checks("subject", MAX_TEXT)
        + _subject_checks()
        + _text_checks("predicate", MAX_TEXT, optional=True)
        + [
            op.is_in(list(AUDIT_STATUSES)).fill_null(False).all(),
            (
                (op == "query") & status.is_in(AUDIT_STATUSES["query"])
                | (op == "check") & status.is_in(AUDIT_STATUSES["check"])
            )
            .fill_null(False)
            .all(),
            (pl.col("lens").is_null() | pl.col("lens").is_in(lens_names())).all(),
            (c.is_null() | (c.is_finite() & (c >= 0.0) & (c <= 1.0))).all(),
            (pl.col("latency_us").is_null() | (pl.col("latency_us").cast(pl.Int64) >= 0)).all(),
            (pl.col("winner").is_null() | pl.col("winner").str.contains(_ID)).all(),
            pl.col("contributing")
            .list.eval(pl.element().str.contains(_ID).fill_null(False))
            .list.all()
            .fill_null(True)
            .all(),
        ]
    )
    if not all(_select(df, [e.alias(f"_{i}") for i, e in enumerate(checks)]).row(0)):
        return None

    stored = df.select(
        "agent",
        "op",
        "subject",
        "predicate",
        "lens",
        pl.lit(None, pl.List(pl.String)).alias("lifecycle_filter"),
        pl.lit(None, pl.Float64).alias("min_confidence"),
        pl.lit(None, pl.Datetime("us", "UTC")).alias("as_of"),
        "include_superseded",
        pl.lit(None, pl.String).alias("params"),
        "status",
        # JSON text of the value; a missing value stays null (not the text "null").
        pl.when(pl.col("value").is_null())
        .then(pl.lit(None, pl.String))
        .otherwise(value)
        .alias("value"),
        c.alias("confidence"),
        "winner",
        "contributing",
        pl.col("latency_us").cast(pl.Int64),
    )
    if stored["value"].null_count() != df["value"].null_count():
        stored = stored.with_columns(_escaped(stored["value"], df["value"]))
    kind = RecordKind.AUDIT
    table = stored.to_arrow()
    return BulkRows(kind, table, _content(kind, stored, table), at, n)


def _json_of(name: str, dtype: pl.DataType, is_time: bool, form: str = "") -> pl.Expr:
    """The canonical JSON of a stored column as `model.ids.content_json` writes it;
    null where Python's encoder must word the value. ``form`` (see `_forms`):
    ``"null"`` for a column of nulls only, ``"plain"`` for text none of which
    needs escaping (quoted without a test per row)."""
    col = pl.col(name)
    if form == "null":
        return pl.lit("null")
    if form == "plain":
        return pl.concat_str([pl.lit('"'), col, pl.lit('"')]).fill_null("null")
    if is_time:
        return col.dt.epoch("us").cast(pl.String).fill_null("null")
    if dtype == pl.Float64:
        # Polars writes a float as Python's repr does (the shortest text that
        # reads back the same) from 1e-4 up to 1e15, where both use plain
        # digits: checked on 4.3M values, random and rounded. Outside that
        # range the notations differ (3.5e-6 against 3.5e-06): null, so
        # Python's encoder words the row.
        size = col.abs()
        plain = (col == 0.0) | ((size >= 1e-4) & (size < 1e15))
        return (
            pl.when(col.is_null())
            .then(pl.lit("null"))
            .when(plain)
            .then(col.cast(pl.String))
            .otherwise(pl.lit(None, pl.String))
        )
    if dtype.is_integer():
        return col.cast(pl.String).fill_null("null")
    if dtype == pl.Boolean:
        return (
            pl.when(col.is_null())
            .then(pl.lit("null"))
            .when(col)
            .then(pl.lit("true"))
            .otherwise(pl.lit("false"))
        )
    if dtype == pl.String:
        return _quoted(name)
    if isinstance(dtype, pl.List) and dtype.inner == pl.String:
        unsafe = col.list.eval(pl.element().str.contains(_NEEDS_ESCAPE).fill_null(True)).list.any()
        items = col.list.eval(pl.concat_str([pl.lit('"'), pl.element(), pl.lit('"')])).list.join(
            ","
        )
        return (
            pl.when(col.is_null())
            .then(pl.lit("null"))
            .when(unsafe)
            .then(pl.lit(None, pl.String))
            .otherwise(pl.concat_str([pl.lit("["), items, pl.lit("]")]))
        )
    raise TypeError(f"no columnar JSON for {name} ({dtype})")  # a schema this module missed


@functools.lru_cache(maxsize=256)
def _content_expr(
    kind: RecordKind, dtypes: tuple[pl.DataType, ...], forms: tuple[str, ...]
) -> pl.Expr:
    """The expression `_content` selects, for columns of these types and forms
    (made once: building it took 1.1 ms of a 1,388-row commit's 15.8)."""
    kspec = spec(kind)
    parts: list[pl.Expr] = []
    layout = zip(_LAYOUT[kind], dtypes, forms, strict=True)
    for i, ((name, key, _how), dtype, form) in enumerate(layout):
        if name in kspec.json_columns:
            value = pl.col(name).fill_null("null")  # already canonical text
        else:
            value = _json_of(name, dtype, name in kspec.time_columns, form)
        parts += [pl.lit(("{" if i == 0 else ",") + key), value]
    parts.append(pl.lit("}"))
    return pl.concat_str(parts).alias("content")


def _forms(kind: RecordKind, stored: pl.DataFrame, table: pa.Table | None) -> tuple[str, ...]:
    """Per column of the content layout: ``"null"`` (nulls only), ``"plain"``
    (text needing no escapes, found from its bytes in ``table``) or ``""``."""
    forms = []
    for name, _key, _how in _LAYOUT[kind]:
        col = stored[name]
        if col.null_count() == len(col):
            forms.append("null")
        elif col.dtype == pl.String and table is not None and _plain_text(table[name]):
            forms.append("plain")
        else:
            forms.append("")
    return tuple(forms)


def _content(kind: RecordKind, stored: pl.DataFrame, table: pa.Table | None = None) -> pl.Series:
    """The canonical content JSON of each row (see `model.ids.content_json`).
    ``table``: ``stored`` as Arrow, whose text bytes tell which columns need no
    escaping."""
    schema = stored.schema
    dtypes = tuple(schema[name] for name, _key, _how in _LAYOUT[kind])
    forms = _forms(kind, stored, table)
    content = _select(stored, [_content_expr(kind, dtypes, forms)]).to_series()
    if content.null_count():
        # A text value needed escaping, or a float another notation: redo those
        # rows with Python's encoder.
        need = content.is_null().arg_true()
        rows = stored.gather(need).to_dicts()
        content = content.scatter(need, [content_json(kind, r) for r in rows])
    return content


def record_ids(messages: pl.Series) -> pl.Series:
    """The hex BLAKE3 of each message (a record's prefix, content, newline and
    time, as `model.ids.record_id` hashes them), computed in Rust by polars-hash
    across the column: a Python call per row took a quarter of a bulk write
    (2 µs a row against 0.2). The first row is checked against the blake3
    package, and the rows go through it instead if a plugin built for another
    Polars ever hashed differently: ids must never change.

    >>> from steme_lake.model.ids import record_id
    >>> content = '{"a":1}'
    >>> m = pl.Series([_PREFIXES[RecordKind.VOTE].decode() + content + "\\n7"])
    >>> record_ids(m)[0] == record_id(RecordKind.VOTE, content, 7)
    True
    """
    if len(messages):
        try:
            hashed = _select(messages.to_frame("m"), [plh.col("m").chash.blake3()]).to_series()
        except pl.exceptions.PolarsError:  # a plugin this Polars cannot load
            hashed = None
        if hashed is not None and hashed[0] == _python_id(messages[0]):
            return hashed.alias("id")
    return pl.Series("id", [_python_id(m) for m in messages.to_list()], pl.String)


def _python_id(message: str) -> str:
    return str(blake3.blake3(message.encode()).hexdigest())


def stamp(
    bulk: BulkRows,
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
    message = _select(
        pl.DataFrame({"c": bulk.content, "t": times}),
        [
            pl.concat_str(
                [
                    pl.lit(_PREFIXES[bulk.kind].decode()),
                    pl.col("c"),
                    pl.lit("\n"),
                    pl.col("t").cast(pl.String),
                ]
            ).alias("m")
        ],
    ).to_series()
    ids = record_ids(message)
    if ids.n_unique() != n:
        return None  # the same record twice at the same time
    # Frames of whole rows up to ``frame_budget`` bytes each (a row larger than
    # that alone): where each frame ends, from the running total of the sizes.
    sizes = (bulk.content.str.len_chars() + 200).to_numpy()
    before = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])  # bytes before row i
    frames: list[PreparedFrame] = []
    start = 0
    while start < n:
        end = int(np.searchsorted(before, before[start] + frame_budget, side="right")) - 1
        end = min(max(end, start + 1), n)
        frames.append(_frame_of(bulk, ids, times, start, end, next_seq + len(frames)))
        start = end
    return frames


def _frame_of(
    bulk: BulkRows, ids: pl.Series, times: np.ndarray, lo: int, hi: int, seq: int
) -> PreparedFrame:
    kspec = spec(bulk.kind)
    n = hi - lo
    part = bulk.stored.slice(lo, n)
    arrays = []
    for f in kspec.schema:
        if f.name == "id":
            arrays.append(ids.slice(lo, n).to_arrow().cast(pa.string()))
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
    return PreparedFrame(kind=int(bulk.kind), seq=seq, commit_time=int(times[hi - 1]), table=table)
