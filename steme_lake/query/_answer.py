"""What a question returns: small frozen dataclasses that render in notebooks."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

__all__ = ["ActiveConstraint", "Answer", "Candidate", "ConstraintCheck"]


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        text = value.isoformat().replace("+00:00", "Z")
    elif isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    return html.escape(text if len(text) <= 80 else text[:77] + "...")


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(k)}</th>" for k in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in r.values()) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


NOT_DECODED: Any = object()


@dataclass(frozen=True, slots=True)
class Candidate:
    """One assertion a lens weighed."""

    assertion: str
    value: Any
    agent: str
    source_hash: str
    lifecycle: str
    confidence: float
    effective_confidence: float
    recorded_at: datetime
    superseded: bool

    @classmethod
    def from_row(
        cls, row: dict[str, Any], recorded_at: datetime, value: Any = NOT_DECODED
    ) -> Candidate:
        """From a candidate row (``id``, ``object`` JSON text, ``stage``, ``eff``, ...);
        ``value`` is the decoded ``object`` when the caller has it already."""
        return cls(
            assertion=row["id"],
            value=json.loads(row["object"]) if value is NOT_DECODED else value,
            agent=row["agent"],
            source_hash=row["source_hash"],
            lifecycle=row["stage"],
            confidence=row["confidence"],
            effective_confidence=row["eff"],
            recorded_at=recorded_at,
            superseded=row["superseded"],
        )


@dataclass(frozen=True, slots=True)
class Answer:
    """The answer to one question, and the record of why.

    ``status`` is ``answered``, ``no_answer`` or ``contested`` (skeptic);
    ``assertion`` is the winning assertion's id (None without an answer);
    ``query_id`` is this question's audit record.
    """

    subject: str
    predicate: str
    lens: str
    status: str
    value: Any
    confidence: float | None
    lifecycle: str | None
    assertion: str | None
    contributing: tuple[str, ...]
    sources: tuple[tuple[str, str], ...]
    candidates: tuple[Candidate, ...]
    as_of: datetime
    query_id: str | None = None
    filters: dict[str, Any] = field(default_factory=dict)

    @property
    def answered(self) -> bool:
        return self.status == "answered"

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["as_of"] = self.as_of.isoformat().replace("+00:00", "Z")
        out["candidates"] = [
            {
                **{f.name: getattr(c, f.name) for f in fields(c)},
                "recorded_at": c.recorded_at.isoformat().replace("+00:00", "Z"),
            }
            for c in self.candidates
        ]
        out["sources"] = [{"source_hash": s, "agent": a} for s, a in self.sources]
        out["contributing"] = list(self.contributing)
        return out

    def __repr__(self) -> str:
        conf = "-" if self.confidence is None else f"{self.confidence:.3f}"
        return (
            f"Answer({self.subject} {self.predicate} = {self.value!r} [{self.status}, {self.lens}, "
            f"confidence {conf}, lifecycle {self.lifecycle}], {len(self.contributing)} candidates)"
        )

    def _repr_html_(self) -> str:
        conf = "" if self.confidence is None else f", confidence {self.confidence:.3f}"
        head = (
            f"<p><b>{html.escape(self.subject)} {html.escape(self.predicate)}</b> = "
            f"<b>{_cell(self.value)}</b> <i>({self.status}, lens {self.lens}{conf}, "
            f"lifecycle {self.lifecycle}, as of {_cell(self.as_of)})</i><br>"
            f"query id <code>{self.query_id}</code></p>"
        )
        rows = [
            {
                "": "★" if c.assertion == self.assertion else "",
                "value": c.value,
                "agent": c.agent,
                "lifecycle": c.lifecycle,
                "confidence": c.confidence,
                "effective": c.effective_confidence,
                "recorded_at": c.recorded_at,
                "assertion": c.assertion[:12],
            }
            for c in self.candidates
        ]
        return head + _table(rows)


@dataclass(frozen=True, slots=True)
class ActiveConstraint:
    """A constraint in force for a context, as of the check."""

    id: str
    context: str
    predicate: str | None
    forbidden: Any
    must_use: Any
    reason: str
    agent: str
    recorded_at: datetime
    freshness: float


@dataclass(frozen=True, slots=True)
class ConstraintCheck:
    """The result of a pre-flight constraint check."""

    context: str
    proposed: Any
    constraints: tuple[ActiveConstraint, ...]
    violations: tuple[ActiveConstraint, ...]
    as_of: datetime
    query_id: str | None = None

    @property
    def ok(self) -> bool:
        """True when the proposal (if any) violates none of the constraints."""
        return not self.violations

    def to_dict(self) -> dict[str, Any]:
        def one(c: ActiveConstraint) -> dict[str, Any]:
            d = {f.name: getattr(c, f.name) for f in fields(c)}
            d["recorded_at"] = c.recorded_at.isoformat().replace("+00:00", "Z")
            return d

        return {
            "context": self.context,
            "proposed": self.proposed,
            "ok": self.ok,
            "constraints": [one(c) for c in self.constraints],
            "violations": [one(c) for c in self.violations],
            "as_of": self.as_of.isoformat().replace("+00:00", "Z"),
            "query_id": self.query_id,
        }

    def _repr_html_(self) -> str:
        verdict = "no violations" if self.ok else f"{len(self.violations)} violation(s)"
        head = f"<p><b>constraints for {html.escape(self.context)}</b>: {verdict}</p>"
        bad = {c.id for c in self.violations}
        rows = [
            {
                "": "✗" if c.id in bad else "",
                "context": c.context,
                "forbidden": c.forbidden,
                "must_use": c.must_use,
                "reason": c.reason,
                "freshness": c.freshness,
            }
            for c in self.constraints
        ]
        return head + _table(rows)
