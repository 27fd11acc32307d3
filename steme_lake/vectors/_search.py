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

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

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


@dataclass(frozen=True, slots=True)
class Prefilter:
    """The assertions a lens would weigh at T, as LanceDB filters.

    ``where`` holds everything but the time bound, ``t`` the time bound when one
    is needed (a search as of the newest row or later needs none), and
    ``narrow`` the subject and lifecycle parts alone: cheap for the scalar
    indexes to count, and never fewer rows than the whole filter keeps.
    """

    where: str
    t: int | None
    narrow: str | None
    share: float = 1.0  # of the table's rows recorded by T

    def full(self) -> str:
        """The whole filter, time included (the bound is written so that the time
        index reads the smaller side: the rows after T, or the rows by T)."""
        if self.t is None:
            return self.where
        time = f"NOT (recorded_us > {self.t})" if self.share >= 0.5 else f"recorded_us <= {self.t}"
        return time if self.where == "true" else f"{time} AND {self.where}"


def prefilter(
    lake: Lake,
    *,
    tables: Tables | None = None,
    store: VectorStore | None = None,
    t: int,
    stages: tuple[str, ...] | None,
    subject: str | None,
    min_confidence: float | None,
    include_superseded: bool,
) -> Prefilter:
    """The one filter: the assertions a lens would weigh at T."""
    tables = tables if tables is not None else lake._tables()
    # as of the newest row or later (a search "now"): no time filter to evaluate
    bound = None if store is not None and t >= store.newest() else t
    parts: list[str] = []
    narrow: list[str] = []
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
        narrow.append(f"({written_in} OR {_in('id', into)})" if into else written_in)
    if subject is not None:
        narrow.insert(0, parts[0])
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
        narrow.append(_in("id", kept_ids))
    share = store.share_by(t) if store is not None and bound is not None else 1.0
    return Prefilter(" AND ".join(parts) or "true", bound, " AND ".join(narrow) or None, share)


# A search as of T asks for the best ``k / share * POST_MARGIN + POST_EXTRA`` rows
# without the time bound and keeps those recorded by T, when at least POST_SHARE
# of the rows were (the time bound is the filter's costly part: at 1M rows, 10 to
# 15 ms of index reads before the search can start). When fewer than k of them
# survive and more rows exist, it searches again with the bound in the filter.
POST_SHARE = 0.25
POST_MARGIN = 1.5
POST_EXTRA = 10
POST_MAX = 1000


def _limited(
    store: VectorStore, query: Callable[[], Any], narrow: str | None, limit: int
) -> pa.Table:
    """The first ``limit`` rows of ``query()``, through the index when there is one;
    when the partitions probed held fewer rows that pass the filter, probed again
    as widely as needed (so ``limit`` rows come back whenever as many pass)."""
    plan = store.plan(narrow)
    got = store.tune(query(), plan).limit(limit).to_arrow()
    if plan == "index" and got.num_rows < limit:
        got = store.tune(query(), "wide").limit(limit).to_arrow()
    return got


def _knn(store: VectorStore, vector: Any, flt: Prefilter, k: int, extra: str = "") -> pa.Table:
    """The ``k`` nearest rows by cosine distance that pass ``flt`` (and ``extra``)."""
    table = store.table()

    def run(where: str, limit: int) -> pa.Table:
        where = f"{where} AND {extra}" if extra and where != "true" else (extra or where)

        def query() -> Any:
            q = table.search(vector).metric("cosine")
            # a filter that keeps everything still costs a pass over it
            return q.where(where, prefilter=True) if where != "true" else q

        return _limited(store, query, flt.narrow, limit)

    if flt.t is not None and flt.share >= POST_SHARE and k < POST_MAX:
        limit = min(POST_MAX, math.ceil(k / flt.share * POST_MARGIN) + POST_EXTRA)
        got = run(flt.where, limit)
        kept = got.filter(pc.less_equal(got["recorded_us"], flt.t))
        if kept.num_rows >= k or got.num_rows < limit:  # the k best at T are among them
            return kept.slice(0, k)
    return run(flt.full(), k)


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
    flt = prefilter(
        lake, tables=view[0], store=store, t=t, stages=stages, subject=subject,
        min_confidence=min_confidence, include_superseded=include_superseded,
    )  # fmt: skip
    vector = store.embedder.embed([text])[0]
    if hybrid:
        # Fusion ranks each list among the rows that pass the filter, so the time
        # bound stays in it (no searching past T and dropping rows afterwards).
        store.full_text_ready()
        score = "_relevance_score"
        where = flt.full()

        def query() -> Any:
            q = store.table().search(query_type="hybrid").vector(vector).text(text)
            return q.where(where, prefilter=True) if where != "true" else q

        got = _limited(store, query, flt.narrow, k)
    else:
        score = "_distance"
        got = _knn(store, vector, flt, k)
    found = pl.from_arrow(got)
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
    flt = prefilter(
        lake, tables=view[0], store=store, t=t, stages=stages, subject=subject,
        min_confidence=None, include_superseded=include_superseded,
    )  # fmt: skip
    extra = "" if exclude is None else f"id != {_sql_text(exclude)}"
    found = pl.from_arrow(_knn(store, vector, flt, k, extra))
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
