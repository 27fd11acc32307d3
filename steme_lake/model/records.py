"""Small frozen record types, one per kind, read back from stored rows.

Writes go through columnar batches (``lake``); these types are what a single
record looks like to a person: ``lake.get(id)`` returns one, and a notebook
renders it as a small table.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, ClassVar

from steme_lake.model.schema import RecordKind, spec
from steme_lake.model.signing import Signature

__all__ = [
    "Assertion",
    "AuditRecord",
    "Confirmation",
    "Constraint",
    "LifecycleChange",
    "Record",
    "Supersession",
    "TrustScore",
    "Vote",
    "record_from_row",
]


@dataclass(frozen=True, slots=True)
class Record:
    """Fields every record has."""

    KIND: ClassVar[RecordKind]

    id: str
    seq: int
    recorded_at: datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Record:
        """Build the record from a stored row (JSON columns as text)."""
        kspec = spec(cls.KIND)
        values: dict[str, Any] = {}
        for f in fields(cls):
            value = row.get(f.name)
            if f.name in kspec.json_columns and value is not None:
                value = json.loads(value)
            elif f.name == "signatures":
                value = tuple(Signature(**s) for s in (value or ()))
            elif f.name in ("lifecycle_filter", "contributing") and value is not None:
                value = tuple(value)
            values[f.name] = value
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "signatures":
                value = [s.as_dict() for s in value]
            elif isinstance(value, datetime):
                value = value.isoformat().replace("+00:00", "Z")
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:left'>{html.escape(_short(v))}</td></tr>"
            for k, v in self.to_dict().items()
        )
        return f"<table><caption>{type(self).__name__}</caption>{rows}</table>"


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 200 else text[:197] + "..."


@dataclass(frozen=True, slots=True)
class Assertion(Record):
    """An immutable, signed claim: ``subject predicate object``."""

    KIND: ClassVar[RecordKind] = RecordKind.ASSERTION
    subject: str
    predicate: str
    object: Any
    confidence: float
    source_hash: str
    agent: str
    lifecycle: str
    parent: str | None
    epoch: str | None
    visual_hash: str | None
    meta: dict[str, Any] | None
    signatures: tuple[Signature, ...]


@dataclass(frozen=True, slots=True)
class Vote(Record):
    """An agent's weighted (possibly negative) vote on an assertion."""

    KIND: ClassVar[RecordKind] = RecordKind.VOTE
    target: str
    agent: str
    weight: float
    signatures: tuple[Signature, ...]


@dataclass(frozen=True, slots=True)
class LifecycleChange(Record):
    """An assertion moved to another lifecycle stage."""

    KIND: ClassVar[RecordKind] = RecordKind.LIFECYCLE
    target: str
    agent: str
    stage: str
    reason: str | None
    signatures: tuple[Signature, ...]


@dataclass(frozen=True, slots=True)
class Supersession(Record):
    """Marks assertions superseded: one, all of a source, or an agent's window."""

    KIND: ClassVar[RecordKind] = RecordKind.SUPERSESSION
    agent: str
    kind: str
    reason: str
    scope: str
    target: str | None
    source_hash: str | None
    target_agent: str | None
    window_start: datetime | None
    window_end: datetime | None
    replacement: str | None
    epoch: str | None
    signatures: tuple[Signature, ...]


@dataclass(frozen=True, slots=True)
class Constraint(Record):
    """A rule for a context: what is forbidden, what must be used, and why."""

    KIND: ClassVar[RecordKind] = RecordKind.CONSTRAINT
    context: str
    predicate: str | None
    forbidden: Any
    must_use: Any
    reason: str
    agent: str
    cites: str | None
    signatures: tuple[Signature, ...]


@dataclass(frozen=True, slots=True)
class AuditRecord(Record):
    """One query or constraint check, as the asking agent received it."""

    KIND: ClassVar[RecordKind] = RecordKind.AUDIT
    agent: str
    op: str
    subject: str
    predicate: str | None
    lens: str | None
    lifecycle_filter: tuple[str, ...] | None
    min_confidence: float | None
    as_of: datetime | None
    include_superseded: bool
    params: dict[str, Any] | None
    status: str
    value: Any
    confidence: float | None
    winner: str | None
    contributing: tuple[str, ...] | None
    latency_us: int | None


@dataclass(frozen=True, slots=True)
class Confirmation(Record):
    """A successful use of an assertion or constraint: its decay clock restarts."""

    KIND: ClassVar[RecordKind] = RecordKind.CONFIRMATION
    target: str
    agent: str
    reason: str | None
    query_id: str | None
    signatures: tuple[Signature, ...]


@dataclass(frozen=True, slots=True)
class TrustScore(Record):
    """An agent's reputation on a topic (a subject prefix; "" for every topic)."""

    KIND: ClassVar[RecordKind] = RecordKind.TRUST
    agent: str
    topic: str
    score: float
    method: str
    signatures: tuple[Signature, ...]


_TYPES: dict[RecordKind, type[Record]] = {
    cls.KIND: cls
    for cls in (
        Assertion,
        Vote,
        LifecycleChange,
        Supersession,
        Constraint,
        AuditRecord,
        Confirmation,
        TrustScore,
    )
}


def record_from_row(kind: RecordKind, row: dict[str, Any]) -> Record:
    """The record type of ``kind`` built from a stored row."""
    return _TYPES[kind].from_row(row)
