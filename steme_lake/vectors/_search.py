"""Search with the lake's semantics: as of T, through the lifecycle and
supersession filters exactly as a lens applies them, in one prefilter.

The vector table holds what never changes about an assertion (when it was
recorded, its subject, its lifecycle when written, its confidence). What
changes with time comes from the lake as of T, with the lenses' own code
(`steme_lake.query._candidates`): the assertions whose lifecycle was moved by
T (into the filter's stages, or out of them), the ones superseded by T (by id,
by source, or in an agent's window), and, with ``min_confidence``, the ones
whose effective (decayed) confidence reaches it. These are small sets next to
the table (lifecycle moves and corrections are rare), so they go into the
prefilter as id lists, and LanceDB returns the k best among exactly the
assertions a lens would have weighed at T.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import polars as pl

from steme_lake._exceptions import ValidationError
from steme_lake._utils.timeparse import TimeLike, us_to_datetime
from steme_lake.lake import _rows as rows
from steme_lake.model.schema import LIFECYCLE_STAGES
from steme_lake.query._candidates import Tables, candidates

if TYPE_CHECKING:
    from steme_lake.lake import Lake
    from steme_lake.vectors._store import VectorStore

__all__ = ["RESULT_COLUMNS", "search"]

MAX_K = 1000
RESULT_COLUMNS = (
    "score", "id", "subject", "predicate", "value", "lifecycle", "superseded", "agent",
    "confidence", "recorded_at", "text",
)  # fmt: skip


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _in(column: str, ids: list[str]) -> str:
    return f"{column} IN ({', '.join(_sql_text(i) for i in ids)})" if ids else "false"


def _subject_sql(subject: str) -> str:
    """The subject filter: a path and everything under it, or a glob (``*`` crosses /)."""
    if "*" in subject:
        like = subject.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return f"subject LIKE {_sql_text(like.replace('*', '%'))} ESCAPE '\\'"
    # "under p" as a range ('/' + 1 is '0'), which the subject's BTree index answers
    return (
        f"(subject = {_sql_text(subject)} OR (subject >= {_sql_text(subject + '/')} "
        f"AND subject < {_sql_text(subject + '0')}))"
    )


def _subject_expr(subject: str) -> pl.Expr:
    if "*" in subject:
        import re

        pattern = "^" + ".*".join(re.escape(p) for p in subject.split("*")) + "$"
        return pl.col("subject").str.contains(pattern)
    return (pl.col("subject") == subject) | pl.col("subject").str.starts_with(subject + "/")


def _stage_ids(tables: Tables, t: int) -> pl.DataFrame:
    """Each assertion whose lifecycle was moved by T, with its stage at T."""
    return (
        tables.lifecycle.filter(pl.col("recorded_at") <= us_to_datetime(t))
        .group_by("target")
        .agg(pl.col("stage").sort_by(["recorded_at", "seq"]).last())
        .collect()
    )


def _superseded_ids(tables: Tables, t: int, scope: pl.Expr) -> list[str]:
    """The assertions (in ``scope``, recorded by T) superseded at T."""
    cut = us_to_datetime(t)
    sup = tables.supersessions.filter(pl.col("recorded_at") <= cut).collect()
    if sup.is_empty():
        return []
    found: set[str] = set(sup.filter(pl.col("scope") == "assertion")["target"].drop_nulls())
    assertions = tables.assertions.filter(pl.col("recorded_at") <= cut, scope)
    by_source = (
        sup.filter(pl.col("scope") == "source")
        .group_by("source_hash")
        .agg(pl.col("recorded_at").max().alias("_cut"))
    )
    if by_source.height:
        hit = (
            assertions.join(by_source.lazy(), on="source_hash", how="inner")
            .filter(pl.col("recorded_at") <= pl.col("_cut"))
            .select("id")
            .collect()
        )
        found.update(hit["id"])
    windows = sup.filter(pl.col("scope") == "agent_window").select(
        pl.col("target_agent").alias("agent"), "window_start", "window_end"
    )
    if windows.height:
        hit = (
            assertions.join(windows.lazy(), on="agent", how="inner")
            .filter(
                (
                    pl.col("window_start").is_null()
                    | (pl.col("recorded_at") >= pl.col("window_start"))
                )
                & (pl.col("window_end").is_null() | (pl.col("recorded_at") <= pl.col("window_end")))
            )
            .select("id")
            .collect()
        )
        found.update(hit["id"])
    return sorted(found)


def prefilter(
    lake: Lake,
    *,
    tables: Tables | None = None,
    newest: int | None = None,
    t: int,
    stages: tuple[str, ...] | None,
    subject: str | None,
    min_confidence: float | None,
    include_superseded: bool,
) -> str:
    """The one filter expression: the assertions a lens would weigh at T."""
    tables = tables if tables is not None else lake._tables()
    # as of the newest row or later (a search "now"): no time filter to evaluate
    parts = [] if newest is not None and t >= newest else [f"recorded_us <= {t}"]
    scope = pl.lit(True)
    if subject is not None:
        parts.append(_subject_sql(subject))
        scope = _subject_expr(subject)
    if stages is not None:
        moved = _stage_ids(tables, t)
        into = moved.filter(pl.col("stage").is_in(list(stages)))["target"].to_list()
        out = moved.filter(~pl.col("stage").is_in(list(stages)))["target"].to_list()
        written_in = f"lifecycle IN ({', '.join(_sql_text(s) for s in stages)})"
        kept = f"({written_in} AND NOT {_in('id', out)})" if out else written_in
        parts.append(f"({kept} OR {_in('id', into)})" if into else kept)
    if not include_superseded:
        gone = _superseded_ids(tables, t, scope)
        if gone:
            parts.append(f"NOT {_in('id', gone)}")
    if min_confidence is not None:
        # effective confidence decays with age: the lenses' own computation decides
        parts.append(f"confidence >= {float(min_confidence)!r}")
        kept_ids = (
            candidates(
                tables, as_of=t, lifecycle=stages, min_confidence=min_confidence,
                include_superseded=True, opts=lake.options.resolution, subject_filter=scope,
            )
            .select("id")
            .collect()["id"]
            .to_list()
        )  # fmt: skip
        parts.append(_in("id", kept_ids))
    return " AND ".join(parts) or "true"


def _check(text: Any, k: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValidationError("search text must be non-empty text, e.g. 'token signing'")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ValidationError(f"k must be a whole number from 1 to {MAX_K}, got {k!r}")
    return text.strip()


def search(
    store: VectorStore,
    text: str,
    *,
    k: int = 10,
    as_of: TimeLike | None = None,
    lifecycle: str | list[str] | tuple[str, ...] | None = None,
    subject: str | None = None,
    min_confidence: float | None = None,
    include_superseded: bool = False,
    hybrid: bool = True,
    agent: str = "anonymous",
    audit_params: dict[str, Any] | None = None,
) -> tuple[pl.DataFrame, str]:
    """The ``k`` assertions nearest ``text`` among those a lens would weigh at
    ``as_of``, and the id of the search's audit record (op ``search``, its
    results as contributing ids)."""
    started = time.perf_counter_ns()
    lake = store.lake
    text = _check(text, k)
    stages: tuple[str, ...] | None = None
    if lifecycle is not None:
        stages = (lifecycle,) if isinstance(lifecycle, str) else tuple(lifecycle)
        for stage in stages:
            rows.choice("lifecycle", stage, LIFECYCLE_STAGES)
    if subject is not None:
        subject = rows.subject_text(subject.rstrip("/") or subject)
    if min_confidence is not None:
        min_confidence = rows.unit_float("min_confidence", min_confidence)
    if not isinstance(include_superseded, bool):
        raise ValidationError("include_superseded must be true or false")
    asker = rows.text("agent", agent, limit=rows.MAX_AGENT) or "anonymous"
    view = lake._view()  # one consistent view for the whole search
    store.sync(view=view)
    t = lake._as_of(as_of)
    where = prefilter(
        lake, tables=view[0], newest=store.newest(), t=t, stages=stages, subject=subject,
        min_confidence=min_confidence, include_superseded=include_superseded,
    )  # fmt: skip
    table = store.table()
    vector = store.embedder.embed([text])[0]
    if hybrid:
        store.full_text_ready()
        query = table.search(query_type="hybrid").vector(vector).text(text)
        score = "_relevance_score"
    else:
        query = table.search(vector).metric("cosine")
        score = "_distance"
    if where != "true":  # a filter that keeps everything still costs a pass over it
        query = query.where(where, prefilter=True)
    query = store.tune(query, where)
    found = pl.from_arrow(query.limit(k).to_arrow())
    assert isinstance(found, pl.DataFrame)
    if found.height and not hybrid:
        found = found.with_columns((1.0 - pl.col(score)).alias(score))  # cosine similarity
    result = _annotate(view[0], found, score, t, include_superseded)
    audit = rows.audit_row(
        agent=asker, op="search", subject=subject or "*", lens="hybrid" if hybrid else "vector",
        lifecycle=list(stages) if stages else None, min_confidence=min_confidence,
        as_of=None if as_of is None else us_to_datetime(t), include_superseded=include_superseded,
        params={"text": text, "k": k, **(audit_params or {})},
        status="answered" if result.height else "no_answer",
        winner=result["id"][0] if result.height else None,
        contributing=result["id"].to_list(),
        confidence=float(result["score"][0]) if result.height else None,
        latency_us=(time.perf_counter_ns() - started) // 1000,
    )  # fmt: skip
    (query_id,) = lake._commit([audit])
    return result, query_id


def _annotate(
    tables: Tables, found: pl.DataFrame, score: str, t: int, include_superseded: bool
) -> pl.DataFrame:
    """The results with their lifecycle and superseded flag as of T."""
    schema: dict[str, Any] = {
        "score": pl.Float64, "id": pl.String, "subject": pl.String, "predicate": pl.String,
        "value": pl.String, "lifecycle": pl.String, "superseded": pl.Boolean,
        "agent": pl.String, "confidence": pl.Float64,
        "recorded_at": pl.Datetime("us", "UTC"), "text": pl.String,
    }  # fmt: skip
    if found.is_empty():
        return pl.DataFrame(schema=schema)
    ids = found["id"].to_list()
    moved = _stage_ids(tables, t).filter(pl.col("target").is_in(ids))
    gone = set(_superseded_ids(tables, t, pl.col("id").is_in(ids))) if include_superseded else set()
    return (
        found.join(moved, left_on="id", right_on="target", how="left")
        .select(
            pl.col(score).cast(pl.Float64).alias("score"),
            "id", "subject", "predicate", "value",
            pl.coalesce("stage", "lifecycle").alias("lifecycle"),
            pl.col("id").is_in(sorted(gone)).alias("superseded"),
            "agent", "confidence",
            pl.from_epoch("recorded_us", time_unit="us")
            .dt.replace_time_zone("UTC")
            .alias("recorded_at"),
            "text",
        )
    )  # fmt: skip


def nearest(
    store: VectorStore,
    vector: Any,
    *,
    k: int,
    t: int,
    stages: tuple[str, ...] | None,
    subject: str | None,
    include_superseded: bool,
    exclude: str | None = None,
) -> pl.DataFrame:
    """Pure vector search (cosine similarity as ``score``) with the as-of prefilter."""
    lake = store.lake
    view = lake._view()
    store.sync(view=view)
    where = prefilter(
        lake, tables=view[0], newest=store.newest(), t=t, stages=stages, subject=subject,
        min_confidence=None, include_superseded=include_superseded,
    )  # fmt: skip
    if exclude is not None:
        where += f" AND id != {_sql_text(exclude)}"
    query = store.table().search(vector).metric("cosine")
    if where != "true":
        query = query.where(where, prefilter=True)
    found = pl.from_arrow(store.tune(query, where).limit(k).to_arrow())
    assert isinstance(found, pl.DataFrame)
    if found.height:
        found = found.with_columns((1.0 - pl.col("_distance")).alias("_distance"))
    return _annotate(view[0], found, "_distance", t, include_superseded)


def vector_of(store: VectorStore, assertion_id: str) -> Any:
    """The stored vector of one assertion (the table is brought up to date first)."""
    from steme_lake._exceptions import UnknownRecordError

    rows.ref_id("assertion id", assertion_id)
    store.sync()
    got = (
        store.table().search().where(f"id = {_sql_text(assertion_id)}")
        .select(["vector"]).limit(1).to_arrow()
    )  # fmt: skip
    if got.num_rows == 0:
        raise UnknownRecordError(f"no assertion {assertion_id} in this lake")
    return got["vector"][0].values.to_numpy()
