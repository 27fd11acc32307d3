"""What a question returns: small frozen dataclasses that render in notebooks."""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, overload

import polars as pl

from steme_lake._utils.timeparse import us_to_datetime

__all__ = ["ActiveConstraint", "Answer", "Candidate", "Candidates", "ConstraintCheck"]


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


def decode_value(text: str) -> Any:
    """A stored value (canonical JSON text) decoded. Most values are plain text,
    stored as a string literal with nothing escaped: its characters between the
    quotes, without the parser (a tenth of its cost)."""
    if len(text) >= 2 and text[0] == '"' == text[-1] and "\\" not in text:
        return text[1:-1]
    return json.loads(text)


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
            value=decode_value(row["object"]) if value is NOT_DECODED else value,
            agent=row["agent"],
            source_hash=row["source_hash"],
            lifecycle=row["stage"],
            confidence=row["confidence"],
            effective_confidence=row["eff"],
            recorded_at=recorded_at,
            superseded=row["superseded"],
        )

    def to_dict(self, when: Callable[[datetime], Any]) -> dict[str, Any]:
        """The fields as plain data, ``recorded_at`` as ``when`` gives it (an answer
        sends several per question: spelt out, at half the cost of a loop)."""
        return {
            "assertion": self.assertion,
            "value": self.value,
            "agent": self.agent,
            "source_hash": self.source_hash,
            "lifecycle": self.lifecycle,
            "confidence": self.confidence,
            "effective_confidence": self.effective_confidence,
            "recorded_at": when(self.recorded_at),
            "superseded": self.superseded,
        }


class Candidates(Sequence[Candidate]):
    """The candidates a lens weighed, oldest first: a sequence of `Candidate`.

    A busy key has tens of thousands of candidates, so they are kept as a Polars
    frame (`frame`: one row per candidate, the lens' columns) and a `Candidate`
    is made only when one is read; `len` and `best` never make them all.
    """

    __slots__ = ("_count", "_frame", "_items", "_load", "_rows", "_winner")

    def __init__(self, items: Sequence[Candidate] | pl.DataFrame = ()) -> None:
        self._rows: list[dict[str, Any]] | None = None
        # Deferred (`deferred`): how many, the winner's (id, source_hash, agent),
        # and how to work them out when first read.
        self._load: Callable[[], Candidates] | None = None
        self._count = 0
        self._winner: tuple[str, str, str] | None = None
        if isinstance(items, Candidates):  # shares the frame: nothing is made
            items._loaded()
            self._frame: pl.DataFrame | None = items._frame
            self._items: tuple[Candidate, ...] | None = items._items
            self._rows = items._rows
        elif isinstance(items, pl.DataFrame):
            self._frame, self._items = items, None
        else:
            self._frame, self._items = None, tuple(items)

    @classmethod
    def of_rows(cls, rows: list[dict[str, Any]]) -> Candidates:
        """Candidates kept as the Python lenses' rows (``id``, ``object`` JSON text,
        ``stage``, ``eff``, ``recorded_at`` in µs, ...), made `Candidate`s when
        read: a key of a few hundred assertions answers from these, and most
        questions read only the winner."""
        out = cls()
        out._rows, out._items = rows, None
        return out

    @classmethod
    def deferred(
        cls, count: int, winner: tuple[str, str, str] | None, load: Callable[[], Candidates]
    ) -> Candidates:
        """``count`` candidates worked out by ``load`` when first read (a busy
        key's answer from its summary, `query/_current.py`): `len`, and what a
        recency answer cites (``winner``: its id, source_hash and agent), are
        known without them."""
        out = cls()
        out._count, out._winner, out._load = count, winner, load
        return out

    @property
    def is_deferred(self) -> bool:
        """Whether they are still to be worked out (`deferred`)."""
        return self._load is not None

    def load(self) -> Candidates:
        """Work them out now if they are `deferred` (and return them)."""
        self._loaded()
        return self

    def _loaded(self) -> None:
        load = self._load
        if load is not None:
            found = load()
            found._loaded()
            self._frame, self._items, self._rows = found._frame, found._items, found._rows
            self._load = None

    @property
    def lens_frame(self) -> pl.DataFrame | None:
        """The candidates in the lens' own columns, when they are kept as a frame
        (a busy key); `frame` is the readable one."""
        self._loaded()
        return self._frame

    @property
    def lens_rows(self) -> list[dict[str, Any]] | None:
        """The candidates as the Python lenses' rows, when they are kept so."""
        self._loaded()
        return self._rows

    def _all(self) -> tuple[Candidate, ...]:
        self._loaded()
        if self._items is None:
            if self._rows is not None:
                self._items = _from_rows(self._rows)
            else:
                assert self._frame is not None
                self._items = tuple(
                    Candidate.from_row(r, r["recorded_at"])
                    for r in self._frame.iter_rows(named=True)
                )
        return self._items

    def __len__(self) -> int:
        if self._load is not None:
            return self._count
        if self._frame is not None:
            return self._frame.height
        if self._rows is not None:
            return len(self._rows)
        return len(self._all())

    @overload
    def __getitem__(self, i: int) -> Candidate: ...
    @overload
    def __getitem__(self, i: slice) -> tuple[Candidate, ...]: ...
    def __getitem__(self, i: int | slice) -> Candidate | tuple[Candidate, ...]:
        return self._all()[i]

    def __iter__(self) -> Iterator[Candidate]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Candidates | tuple | list):
            return list(self) == list(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._all())

    def __repr__(self) -> str:
        return f"Candidates({len(self)} weighed)"

    def best(self, n: int) -> tuple[Candidate, ...]:
        """The ``n`` with the highest effective confidence (ties: oldest first)."""
        self._loaded()
        if self._frame is None:
            ranked = sorted(self._all(), key=lambda c: c.effective_confidence, reverse=True)
            return tuple(ranked[:n])
        top = (
            self._frame.with_row_index("_i")
            .sort(["eff", "_i"], descending=[True, False])
            .head(n)
            .drop("_i")
        )
        return Candidates(top)._all()

    def latest(self, n: int) -> tuple[Candidate, ...]:
        """The ``n`` most recent, oldest first."""
        self._loaded()
        if self._frame is None:
            return self._all()[-n:] if n else ()
        return Candidates(self._frame.tail(n))._all()

    def cited(
        self, lens: str, winner: str | None
    ) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
        """What an answer by ``lens`` rests on: (assertion ids, their distinct
        (source_hash, agent) pairs); see `Answer`."""
        if lens in WINNER_ONLY:
            if winner is None:
                return (), ()
            if self._load is not None and self._winner is not None and self._winner[0] == winner:
                return (winner,), ((self._winner[1], self._winner[2]),)
            if self._frame is not None:
                row = self._frame.filter(pl.col("id") == winner).row(0, named=True)
                return (winner,), ((row["source_hash"], row["agent"]),)
            if self._rows is not None:
                (r,) = (r for r in self._rows if r["id"] == winner)
                return (winner,), ((r["source_hash"], r["agent"]),)
            (c,) = (c for c in self._all() if c.assertion == winner)
            return (winner,), ((c.source_hash, c.agent),)
        self._loaded()
        if self._frame is not None:
            pairs = self._frame.select("source_hash", "agent").unique(maintain_order=True)
            return tuple(self._frame["id"].to_list()), tuple(pairs.iter_rows())
        if self._rows is not None:
            return (
                tuple(r["id"] for r in self._rows),
                tuple(dict.fromkeys((r["source_hash"], r["agent"]) for r in self._rows)),
            )
        found = self._all()
        return (
            tuple(c.assertion for c in found),
            tuple(dict.fromkeys((c.source_hash, c.agent) for c in found)),
        )

    @property
    def frame(self) -> pl.DataFrame:
        """One row per candidate: assertion, value (JSON text), agent, source_hash,
        lifecycle, confidence, effective_confidence, recorded_at, superseded."""
        self._loaded()
        if self._frame is not None:
            return self._frame.select(
                pl.col("id").alias("assertion"),
                pl.col("object").alias("value"),
                "agent",
                "source_hash",
                pl.col("stage").alias("lifecycle"),
                "confidence",
                pl.col("eff").alias("effective_confidence"),
                "recorded_at",
                "superseded",
            )
        return pl.DataFrame(
            [
                {
                    **{name: getattr(c, name) for name in _CANDIDATE_FIELDS},
                    "value": json.dumps(c.value, ensure_ascii=False),
                }
                for c in self._all()
            ],
            schema={
                "assertion": pl.String,
                "value": pl.String,
                "agent": pl.String,
                "source_hash": pl.String,
                "lifecycle": pl.String,
                "confidence": pl.Float64,
                "effective_confidence": pl.Float64,
                "recorded_at": pl.Datetime("us", "UTC"),
                "superseded": pl.Boolean,
            },
        )


_SHAREABLE = (str, int, float, bool, type(None))


def _from_rows(rows: list[dict[str, Any]]) -> tuple[Candidate, ...]:
    """The Python lenses' candidate rows as `Candidate`s. Values are decoded once
    per distinct JSON text (a busy key has thousands of candidates and a handful
    of values); only immutable values are shared between candidates."""
    decoded: dict[str, Any] = {}
    out = []
    for r in rows:
        text = r["object"]
        value = decoded.get(text, decoded)
        if value is decoded:
            value = decode_value(text)
            if isinstance(value, _SHAREABLE):
                decoded[text] = value
        out.append(Candidate.from_row(r, us_to_datetime(r["recorded_at"]), value))
    return tuple(out)


# Lenses whose answer rests on the winner alone: removing any other candidate
# would leave the answer unchanged. The others (consensus, skeptic, custom
# lenses) weigh every candidate into the answer or its confidence.
WINNER_ONLY = frozenset({"recency", "authority"})

HTML_ROWS = 50


@dataclass(frozen=True, slots=True)
class Answer:
    """The answer to one question, and the record of why.

    ``status`` is ``answered``, ``no_answer`` or ``contested`` (skeptic);
    ``assertion`` is the winning assertion's id (None without an answer);
    ``contributing`` are the assertions the answer rests on, the ones its audit
    record cites (and so what `Lake.impact` finds): the winner alone for
    ``recency`` and ``authority`` (no other candidate could change their answer),
    every candidate weighed for ``consensus`` and ``skeptic``; ``sources`` are
    their (source_hash, agent) pairs; ``candidates`` are all the candidates the
    lens weighed (a `Candidates` sequence; ``.frame`` as Polars);
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
    candidates: Sequence[Candidate]
    as_of: datetime
    query_id: str | None = None
    filters: dict[str, Any] = field(default_factory=dict)

    @property
    def answered(self) -> bool:
        return self.status == "answered"

    def to_dict(
        self, *, iso: bool = True, candidates: Sequence[Candidate] | None = None
    ) -> dict[str, Any]:
        """The answer as plain data; times as ISO-8601 text (``iso=False``: as
        datetimes, for an encoder that writes them itself). ``candidates``
        replaces the answer's own (e.g. only the best few)."""

        def when(t: datetime) -> Any:
            return t.isoformat().replace("+00:00", "Z") if iso else t

        out = {name: getattr(self, name) for name in _ANSWER_FIELDS}
        out["as_of"] = when(self.as_of)
        out["candidates"] = [
            c.to_dict(when) for c in (self.candidates if candidates is None else candidates)
        ]
        out["sources"] = [{"source_hash": s, "agent": a} for s, a in self.sources]
        out["contributing"] = list(self.contributing)
        return out

    def __repr__(self) -> str:
        conf = "-" if self.confidence is None else f"{self.confidence:.3f}"
        return (
            f"Answer({self.subject} {self.predicate} = {self.value!r} [{self.status}, {self.lens}, "
            f"confidence {conf}, lifecycle {self.lifecycle}], {len(self.candidates)} candidates)"
        )

    def _repr_html_(self) -> str:
        conf = "" if self.confidence is None else f", confidence {self.confidence:.3f}"
        head = (
            f"<p><b>{html.escape(self.subject)} {html.escape(self.predicate)}</b> = "
            f"<b>{_cell(self.value)}</b> <i>({self.status}, lens {self.lens}{conf}, "
            f"lifecycle {self.lifecycle}, as of {_cell(self.as_of)})</i><br>"
            f"query id <code>{self.query_id}</code></p>"
        )
        shown: Sequence[Candidate] = self.candidates
        more = ""
        if len(shown) > HTML_ROWS:  # a busy key: the latest few, and where the rest are
            shown = (
                shown.latest(HTML_ROWS)
                if isinstance(shown, Candidates)
                else tuple(shown)[-HTML_ROWS:]
            )
            more = (
                f"<p><i>the latest {HTML_ROWS} of {len(self.candidates):,} candidates; "
                "all of them: <code>answer.candidates.frame</code></i></p>"
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
            for c in shown
        ]
        return head + _table(rows) + more


# Field names, read once: `dataclasses.fields` per candidate was a tenth of an answer.
_ANSWER_FIELDS = tuple(f.name for f in fields(Answer))
_CANDIDATE_FIELDS = tuple(f.name for f in fields(Candidate))


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
