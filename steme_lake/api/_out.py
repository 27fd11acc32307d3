"""Response shapes of the HTTP API and the MCP tools (pydantic), one per operation.

The handlers build their replies as plain JSON data (fast: no model is made
per request); these models are what the OpenAPI document and the MCP tools'
``outputSchema`` say those replies are, so generated clients (openapi-python-
client, ADK) parse them into types. ``tests/api/test_contract.py`` checks
every reply of every operation against its model, so the two cannot drift.
Values (``value``, ``object``, ``forbidden``...) are any JSON; times are
ISO-8601 text in UTC (``Z``). Extra keys are allowed (``additionalProperties``)
so a newer server's additions never break an older client.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AnswerOut",
    "CheckOut",
    "DiffOut",
    "ErrorOut",
    "ImpactOut",
    "QueryOut",
    "TraceOut",
    "WriteOut",
]

Id = str
Rows = list[dict[str, Any]]


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorDetail(_Out):
    loc: list[str] = Field(description="where: body/query/path, then the field")
    msg: str = Field(description="what is wrong with it")
    type: str | None = Field(None, description="the kind of problem, e.g. missing")


class ErrorOut(_Out):
    """Every error: one line that says what was wrong and how to fix it."""

    success: Literal[False] = False
    error: str = Field(description="what was wrong and how to fix it", examples=[
        "unknown parameter 'lifecyle'; did you mean 'lifecycle'?"])  # fmt: skip
    type: str = Field(description="the kind of error, e.g. ValidationError, AuthError")
    status: int = Field(description="the HTTP status, repeated")
    detail: list[ErrorDetail] | None = Field(None, description="per field, for schema errors")


class WriteOut(_Out):
    """A write, durable: its record id."""

    hash: Id = Field(description="the new record's id (64 hex)")
    success: bool = True
    contradictions: Rows | None = Field(
        None, description="with check_contradictions: the assertions this claim contests"
    )


class SourceOut(_Out):
    source_hash: Id = Field(description="BLAKE3 of the evidence")
    agent: str = Field(description="who cited it")


class CandidateOut(_Out):
    assertion: Id
    value: Any = Field(description="the value claimed (any JSON)")
    agent: str
    source_hash: Id
    lifecycle: str = Field(description="proposed, under_review, approved or deprecated")
    confidence: float = Field(description="as asserted, 0..1")
    effective_confidence: float | None = Field(description="after the lens' weighting")
    recorded_at: str
    superseded: bool


class FiltersOut(_Out):
    lifecycle: list[str] | None = None
    min_confidence: float | None = None
    include_superseded: bool = False
    as_of_requested: str | None = None


class AnswerOut(_Out):
    """A question's answer through a lens."""

    subject: str
    predicate: str
    lens: str
    status: str = Field(description="answered, no_answer or contested", examples=["answered"])
    value: Any = Field(None, description="the answer (any JSON); null unless answered")
    confidence: float | None = None
    lifecycle: str | None = Field(None, description="the winning assertion's stage")
    assertion: Id | None = Field(None, description="the winning assertion")
    contributing: list[Id] = Field(description="the assertions the answer rests on")
    sources: list[SourceOut]
    candidates: list[CandidateOut] = Field(description="what the lens weighed, best first")
    as_of: str = Field(description="the time the answer is for")
    query_id: Id | None = Field(None, description="the audit record of this question")
    filters: FiltersOut


class QueryOut(AnswerOut):
    """The answer, its audit id, and who it was recorded for."""

    query_id: Id | None = Field(description="keep it: provenance(query_id) explains the answer")
    candidate_count: int = Field(description="candidates weighed (only the best are listed)")
    agent: str = Field(description="who the audit records as asking")


class ConstraintOut(_Out):
    id: Id
    context: str
    subject: str = Field(description="the context again (the ADK tool shape)")
    predicate: str | None
    forbidden: Any = None
    must_use: Any = None
    reason: str
    agent: str
    recorded_at: str
    freshness: float = Field(description="1 when just confirmed, falling with disuse")


class CheckOut(_Out):
    """A pre-flight check: ``ok`` false means do not proceed."""

    context: str
    proposed: Any = None
    ok: bool
    constraints: list[ConstraintOut]
    violations: list[ConstraintOut]
    as_of: str
    query_id: Id | None
    agent: str


class TraceQueryOut(_Out):
    query_id: Id
    timestamp: str
    op: str = Field(description="query or check")
    subject: str
    predicate: str | None
    lens: str | None
    lifecycle_filter: Any = None
    result: str | None = Field(description="the answer given, as JSON text")
    status: str | None
    confidence: float | None
    contributing_assertions: list[Id]
    winner: Id | None


class TraceOut(_Out):
    """An agent's questions in a window, oldest first."""

    agent: str
    queries: list[TraceQueryOut]
    warnings: list[str] = Field(description="e.g. nothing matched, with close subjects")


class DiffOut(_Out):
    """What changed in a window."""

    beliefs: Rows = Field(description="one row per belief whose answer changed: subject, "
                          "predicate, before, after, cause, cause_agent, changed_at")  # fmt: skip
    records: Rows = Field(description="the records written in the window")


class BlameOut(_Out):
    """Who and what put an answer there."""

    answer: AnswerOut
    assertion: Rows = Field(description="the winning assertion")
    lifecycle: Rows = Field(description="its lifecycle changes")
    votes: Rows = Field(description="the votes on it")


class ImpactOut(_Out):
    """Everything one assertion touched, and what that touched, ``depth`` levels down."""

    hash: Id
    depth: int = Field(description="the levels followed (1: what it touched directly)")
    summary: Rows = Field(description="per kind (queries, agents...): how many, first, last")
    queries: Rows = Field(
        description="queries citing it or what came of it, with depth, cites and via"
    )
    agents: Rows = Field(description="who asked them: queries, won, the first depth, first, last")
    assertions: Rows = Field(
        description="assertions derived from it (parent chain, or written after receiving "
        "it), with why, depth and via"
    )
    constraints: Rows = Field(description="constraints citing it or what came of it")
    votes: Rows = Field(description="votes on it")


class TrustOut(_Out):
    """Trust scores per topic, or one agent's evidence."""

    topic: str | None
    scores: Rows | None = None
    agent: str | None = None
    explain: Rows | None = None


class DojoStatsOut(_Out):
    stats: Rows = Field(description="kind, label, split, samples, duplicates")


class DojoSamplesOut(_Out):
    more: bool = Field(description="there are more samples than the limit")
    samples: Rows


class DojoExportOut(_Out):
    path: str
    samples: int
    summary: Rows


class ProvenanceOut(_Out):
    query_id: Id
    chain: Rows = Field(description="source -> agent -> assertion -> answer, one row each")


class RecordOut(_Out):
    kind: str = Field(description="assertion, vote, lifecycle, supersession, constraint, audit")
    record: dict[str, Any]


class HealthOut(_Out):
    status: str
    version: str
    read_tokens: bool
    lake: str | None = None
    require_signatures: bool | None = None
    agents_registered: int | None = None
    lake_status: dict[str, Any] | None = None


class SearchHitOut(_Out):
    score: float = Field(description="hybrid: reciprocal-rank fusion; vector: cosine similarity")
    id: Id
    subject: str
    predicate: str
    value: str = Field(description="the value claimed, as JSON text")
    lifecycle: str = Field(description="its stage as of the time asked")
    superseded: bool = Field(description="superseded as of the time asked")
    agent: str
    confidence: float
    recorded_at: str
    text: str = Field(description="what was embedded")


class SearchOut(_Out):
    """The closest assertions, best first, and the search's audit id."""

    query_id: Id
    agent: str = Field(description="who the audit records as asking")
    results: list[SearchHitOut]
