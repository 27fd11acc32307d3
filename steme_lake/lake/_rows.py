"""Validated input rows, and the frames they become under the commit lock.

Each public write turns its arguments into a `PendingRow` (stored form plus
canonical content JSON) before any lock is taken; `build_frames` stamps times,
ids and sequence numbers for the log's real tail.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from steme_lake._exceptions import OutOfOrderError, ValidationError
from steme_lake._utils.canonical import canonical_json, nfc_text
from steme_lake._utils.timeparse import TimeLike, to_us, us_to_iso
from steme_lake.model.ids import (
    content_id,
    content_json,
    is_record_id,
    record_id,
    source_hash_of,
)
from steme_lake.model.schema import (
    LIFECYCLE_STAGES,
    SUPERSESSION_KINDS,
    RecordKind,
    spec,
)
from steme_lake.model.signing import AgentKey, Signature, verify_signatures
from steme_lake.wal import PendingFrame, PreparedFrame

if TYPE_CHECKING:
    from steme_lake.lake._replay import SignatureLedger

__all__ = [
    "MAX_TEXT",
    "PendingRow",
    "assertion_row",
    "audit_row",
    "build_frames",
    "confirmation_row",
    "frame_table",
    "constraint_row",
    "lifecycle_row",
    "supersession_row",
    "trust_row",
    "vote_row",
]

MAX_TEXT = 4096
MAX_AGENT = 256
_HEX = frozenset("0123456789abcdef")
_SIG_KEYS = frozenset({"public_key", "signature", "signed_at"})


@dataclass(slots=True)
class PendingRow:
    """One record before commit: content in stored form, time if the caller set one."""

    kind: RecordKind
    row: dict[str, Any]
    content: str
    at: int | None = None
    signatures: list[Signature] = field(default_factory=list)
    sign_with: list[AgentKey] = field(default_factory=list)
    refs: tuple[str, ...] = ()  # record ids this record points at
    ref_kinds: frozenset[RecordKind] = frozenset({RecordKind.ASSERTION})  # what they may be

    def id_at(self, recorded_at: int) -> str:
        return record_id(self.kind, self.content, recorded_at)

    def content_id(self) -> str:
        """The id without the time: what a client signs before commit."""
        return content_id(self.kind, self.content)


# ---------------------------------------------------------------- validators


def text(name: str, value: Any, *, limit: int = MAX_TEXT, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be text, got {type(value).__name__} {value!r}")
    if not value.strip():
        raise ValidationError(f"{name} must not be empty")
    normal = nfc_text(name, value)
    if len(normal) > limit:
        raise ValidationError(f"{name} is {len(normal)} characters long; the limit is {limit}")
    return normal


NOT_CANONICAL = r"(^|/)\.{0,2}(/|$)"  # an empty, "." or ".." segment


def subject_text(value: Any, name: str = "subject") -> str:
    """A subject: text that is a canonical path (segments joined by single ``/``,
    none of them empty, ``.`` or ``..``), so that ``auth/../x`` can never match
    ``auth``."""
    subject = text(name, value)
    assert subject is not None
    segments = subject.split("/")
    if any(seg in ("", ".", "..") for seg in segments):
        fixed = "/".join(seg for seg in segments if seg not in ("", ".", ".."))
        hint = f"; did you mean {fixed!r}?" if fixed else ""
        raise ValidationError(
            f"{name} {subject!r} is not a canonical path: segments are joined by one '/', "
            f"and none may be empty, '.' or '..'{hint}"
        )
    return subject


def unit_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{name} must be a number between 0 and 1, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise ValidationError(f"{name} must be between 0 and 1, got {value!r}")
    return number


def finite(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValidationError(f"{name} must be a finite number, got {value!r}")
    return number


def ref_id(name: str, value: Any, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not is_record_id(value):
        raise ValidationError(
            f"{name} must be a record id (64 lowercase hex characters, as returned by a write), "
            f"got {value!r}"
        )
    return str(value)


def choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ValidationError(f"unknown {name} {value!r}; use one of: {', '.join(allowed)}")
    return str(value)


def opt_time(name: str, value: TimeLike | None) -> int | None:
    return None if value is None else to_us(value, name=name)


def _hex_text(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or set(value) - _HEX or len(value) > 1024:
        raise ValidationError(f"{name} must be lowercase hex text (see steme_lake.visual_hash)")
    return value


def _signatures(value: Any) -> list[Signature]:
    if value is None:
        return []
    out = []
    for item in value:
        if isinstance(item, Signature):
            out.append(item)
        elif isinstance(item, dict) and {"public_key", "signature"} <= set(item) <= _SIG_KEYS:
            out.append(Signature(**item))
        else:
            raise ValidationError(
                "signatures must be Signature objects or {'public_key', 'signature'} dicts "
                "(with 'signed_at' when the content id was signed)"
            )
    return out


def _keys(value: Any) -> list[AgentKey]:
    keys = list(value or ())
    for key in keys:
        if not isinstance(key, AgentKey):
            raise ValidationError(f"sign_with takes AgentKey objects, got {type(key).__name__}")
    return keys


def _pending(
    kind: RecordKind,
    row: dict[str, Any],
    *,
    at: TimeLike | None,
    signatures: Any = None,
    sign_with: Any = None,
    refs: tuple[str | None, ...] = (),
    ref_kinds: frozenset[RecordKind] = frozenset({RecordKind.ASSERTION}),
) -> PendingRow:
    return PendingRow(
        ref_kinds=ref_kinds,
        kind=kind,
        row=row,
        content=content_json(kind, row),
        at=opt_time("at", at),
        signatures=_signatures(signatures),
        sign_with=_keys(sign_with),
        refs=tuple(r for r in refs if r is not None),
    )


# ---------------------------------------------------------------- row makers


def assertion_row(
    subject: Any,
    predicate: Any,
    object: Any,
    *,
    agent: Any,
    confidence: Any = 1.0,
    lifecycle: Any = "proposed",
    source: str | bytes | None = None,
    source_hash: Any = None,
    parent: Any = None,
    epoch: Any = None,
    visual_hash: Any = None,
    meta: Any = None,
    at: TimeLike | None = None,
    signatures: Any = None,
    sign_with: Any = None,
) -> PendingRow:
    if source is not None and source_hash is not None:
        raise ValidationError(
            "pass either source= (evidence text or bytes) or source_hash=, not both"
        )
    if source is not None:
        if not isinstance(source, str | bytes) or not source:
            raise ValidationError("source must be non-empty text (a URL, a citation) or bytes")
        digest = source_hash_of(source)
    elif source_hash is not None:
        digest = _hex_text("source_hash", source_hash) or ""
        if len(digest) != 64:
            raise ValidationError("source_hash must be a BLAKE3 hash: 64 lowercase hex characters")
    else:
        raise ValidationError(
            "every assertion needs its evidence: pass source='https://...' (or the evidence "
            "bytes) or source_hash='<64 hex BLAKE3>'"
        )
    parent_id = ref_id("parent", parent, optional=True)
    if meta is not None and not isinstance(meta, dict):
        raise ValidationError(f"meta must be a dict of JSON values, got {type(meta).__name__}")
    row = {
        "subject": subject_text(subject),
        "predicate": text("predicate", predicate),
        "object": canonical_json(object, name="object"),
        "confidence": unit_float("confidence", confidence),
        "source_hash": digest,
        "agent": text("agent", agent, limit=MAX_AGENT),
        "lifecycle": choice("lifecycle stage", lifecycle, LIFECYCLE_STAGES),
        "parent": parent_id,
        "epoch": text("epoch", epoch, limit=MAX_AGENT, optional=True),
        "visual_hash": _hex_text("visual_hash", visual_hash),
        "meta": None if meta is None else canonical_json(meta, name="meta"),
    }
    return _pending(
        RecordKind.ASSERTION,
        row,
        at=at,
        signatures=signatures,
        sign_with=sign_with,
        refs=(parent_id,),
    )


def vote_row(
    target: Any,
    *,
    agent: Any,
    weight: Any = 1.0,
    at: TimeLike | None = None,
    signatures: Any = None,
    sign_with: Any = None,
) -> PendingRow:
    target_id = ref_id("vote target", target)
    row = {
        "target": target_id,
        "agent": text("agent", agent, limit=MAX_AGENT),
        "weight": finite("weight", weight),
    }
    return _pending(
        RecordKind.VOTE,
        row,
        at=at,
        signatures=signatures,
        sign_with=sign_with,
        refs=(target_id,),
    )


def lifecycle_row(
    target: Any,
    stage: Any,
    *,
    agent: Any,
    reason: Any = None,
    at: TimeLike | None = None,
    signatures: Any = None,
    sign_with: Any = None,
) -> PendingRow:
    target_id = ref_id("lifecycle target", target)
    row = {
        "target": target_id,
        "agent": text("agent", agent, limit=MAX_AGENT),
        "stage": choice("lifecycle stage", stage, LIFECYCLE_STAGES),
        "reason": text("reason", reason, optional=True),
    }
    return _pending(
        RecordKind.LIFECYCLE,
        row,
        at=at,
        signatures=signatures,
        sign_with=sign_with,
        refs=(target_id,),
    )


def supersession_row(
    target: Any = None,
    *,
    agent: Any,
    kind: Any,
    reason: Any,
    source: Any = None,
    source_hash: Any = None,
    target_agent: Any = None,
    window: Any = None,
    replacement: Any = None,
    epoch: Any = None,
    at: TimeLike | None = None,
    signatures: Any = None,
    sign_with: Any = None,
) -> PendingRow:
    if source is not None:
        if source_hash is not None:
            raise ValidationError("pass either source= or source_hash=, not both")
        source_hash = source_hash_of(source)
    scopes = [
        name
        for name, given in (
            ("assertion", target is not None),
            ("source", source_hash is not None),
            ("agent_window", target_agent is not None),
        )
        if given
    ]
    if len(scopes) != 1:
        raise ValidationError(
            "say what is superseded, exactly one of: target=<assertion id>, "
            "source=/source_hash= (every assertion from that evidence), or "
            "target_agent= with window=(start, end) (an agent's assertions in a time window)"
        )
    start = end = None
    if target_agent is not None:
        if not isinstance(window, tuple | list) or len(window) != 2:
            raise ValidationError("target_agent= needs window=(start, end)")
        start, end = opt_time("window start", window[0]), opt_time("window end", window[1])
        if start is not None and end is not None and end < start:
            raise ValidationError("window end is before its start")
    elif window is not None:
        raise ValidationError("window= goes with target_agent=")
    target_id = ref_id("supersession target", target, optional=True)
    replacement_id = ref_id("replacement", replacement, optional=True)
    row = {
        "agent": text("agent", agent, limit=MAX_AGENT),
        "kind": choice("supersession kind", kind, SUPERSESSION_KINDS),
        "reason": text("reason", reason),
        "scope": scopes[0],
        "target": target_id,
        "source_hash": None if source_hash is None else _source_digest(source_hash),
        "target_agent": text("target_agent", target_agent, limit=MAX_AGENT, optional=True),
        "window_start": start,
        "window_end": end,
        "replacement": replacement_id,
        "epoch": text("epoch", epoch, limit=MAX_AGENT, optional=True),
    }
    return _pending(
        RecordKind.SUPERSESSION,
        row,
        at=at,
        signatures=signatures,
        sign_with=sign_with,
        refs=(target_id, replacement_id),
        ref_kinds=_ASSERTION_OR_CONSTRAINT,
    )


def _source_digest(value: Any) -> str:
    digest = _hex_text("source_hash", value) or ""
    if len(digest) != 64:
        raise ValidationError("source_hash must be a BLAKE3 hash: 64 lowercase hex characters")
    return digest


def constraint_row(
    context: Any,
    *,
    agent: Any,
    reason: Any,
    forbidden: Any = None,
    must_use: Any = None,
    predicate: Any = None,
    cites: Any = None,
    at: TimeLike | None = None,
    signatures: Any = None,
    sign_with: Any = None,
) -> PendingRow:
    if forbidden is None and must_use is None:
        raise ValidationError("a constraint needs forbidden=, must_use=, or both")
    cites_id = ref_id("cites", cites, optional=True)
    row = {
        "context": text("context", context),
        "predicate": text("predicate", predicate, optional=True),
        "forbidden": None if forbidden is None else canonical_json(forbidden, name="forbidden"),
        "must_use": None if must_use is None else canonical_json(must_use, name="must_use"),
        "reason": text("reason", reason),
        "agent": text("agent", agent, limit=MAX_AGENT),
        "cites": cites_id,
    }
    return _pending(
        RecordKind.CONSTRAINT,
        row,
        at=at,
        signatures=signatures,
        sign_with=sign_with,
        refs=(cites_id,),
    )


def audit_row(
    *,
    agent: Any,
    op: str,
    subject: Any,
    predicate: Any = None,
    lens: Any = None,
    lifecycle: Any = None,
    min_confidence: Any = None,
    as_of: TimeLike | None = None,
    include_superseded: Any = False,
    params: Any = None,
    status: str,
    value: Any = None,
    confidence: float | None = None,
    winner: str | None = None,
    contributing: Sequence[str] | None = None,
    latency_us: int | None = None,
    at: TimeLike | None = None,
) -> PendingRow:
    if lifecycle is None:
        stages = None
    else:
        stages = [lifecycle] if isinstance(lifecycle, str) else list(lifecycle)
        for stage in stages:
            choice("lifecycle stage", stage, LIFECYCLE_STAGES)
    if not isinstance(include_superseded, bool):
        raise ValidationError("include_superseded must be true or false")
    row = {
        "agent": text("agent", agent, limit=MAX_AGENT),
        "op": op,
        "subject": subject_text(subject),
        "predicate": text("predicate", predicate, optional=True),
        "lens": text("lens", lens, limit=MAX_AGENT, optional=True),
        "lifecycle_filter": stages,
        "min_confidence": None
        if min_confidence is None
        else unit_float("min_confidence", min_confidence),
        "as_of": opt_time("as_of", as_of),
        "include_superseded": include_superseded,
        "params": None if params is None else canonical_json(params, name="params"),
        "status": status,
        "value": None if value is None else canonical_json(value, name="value"),
        "confidence": confidence,
        "winner": winner,
        "contributing": None if contributing is None else list(contributing),
        "latency_us": latency_us,
    }
    return _pending(RecordKind.AUDIT, row, at=at)


AUDIT_STATUSES = {
    "query": ("answered", "no_answer", "contested"),
    "check": ("ok", "violation", "no_constraints"),
}
_AUDIT_FIELDS = frozenset(
    {
        "agent", "op", "subject", "predicate", "lens", "lifecycle", "min_confidence",
        "as_of", "include_superseded", "status", "value", "confidence", "winner",
        "contributing", "latency_us", "at",
    }
)  # fmt: skip


def imported_audit_row(**fields: Any) -> PendingRow:
    """An audit record given from outside (`Lake.import_audit`): every field checked."""
    unknown = sorted(set(fields) - _AUDIT_FIELDS)
    if unknown:
        raise ValidationError(f"unknown audit field(s) {unknown}; known: {sorted(_AUDIT_FIELDS)}")
    if fields.get("at") is None:
        raise ValidationError("an imported audit record needs at= (when it was asked)")
    op = choice("op", fields.pop("op", "query"), tuple(AUDIT_STATUSES))
    status = choice("status", fields.pop("status", "answered"), AUDIT_STATUSES[op])
    lens = fields.pop("lens", None)
    if lens is not None:
        from steme_lake.query.lenses import lens_names

        choice("lens", lens, lens_names())
    confidence = fields.pop("confidence", None)
    latency = fields.pop("latency_us", None)
    if latency is not None and (
        isinstance(latency, bool) or not isinstance(latency, int) or latency < 0
    ):
        raise ValidationError(f"latency_us must be a whole number >= 0, got {latency!r}")
    contributing = fields.pop("contributing", None)
    if contributing is not None:
        if isinstance(contributing, str) or not isinstance(contributing, Sequence):
            raise ValidationError("contributing must be a list of assertion ids")
        contributing = [ref_id("contributing id", c) for c in contributing]
    return audit_row(
        op=op,
        status=status,
        lens=lens,
        confidence=None if confidence is None else unit_float("confidence", confidence),
        latency_us=latency,
        winner=ref_id("winner", fields.pop("winner", None), optional=True),
        contributing=contributing,
        params=None,
        **fields,
    )


_ASSERTION_OR_CONSTRAINT = frozenset({RecordKind.ASSERTION, RecordKind.CONSTRAINT})


def confirmation_row(
    target: Any,
    *,
    agent: Any,
    reason: Any = None,
    query_id: Any = None,
    at: TimeLike | None = None,
    signatures: Any = None,
    sign_with: Any = None,
) -> PendingRow:
    target_id = ref_id("confirmation target", target)
    row = {
        "target": target_id,
        "agent": text("agent", agent, limit=MAX_AGENT),
        "reason": text("reason", reason, optional=True),
        "query_id": ref_id("query_id", query_id, optional=True),
    }
    return _pending(
        RecordKind.CONFIRMATION,
        row,
        at=at,
        signatures=signatures,
        sign_with=sign_with,
        refs=(target_id,),
        ref_kinds=_ASSERTION_OR_CONSTRAINT,
    )


def trust_row(
    agent: Any,
    topic: Any,
    score: Any,
    *,
    method: Any = "manual",
    at: TimeLike | None = None,
    signatures: Any = None,
    sign_with: Any = None,
) -> PendingRow:
    topic = "" if topic in ("", "*") else text("topic", topic)
    value = finite("score", score)
    if value < 0:
        raise ValidationError(f"score must be 0 or more, got {score!r}")
    row = {
        "agent": text("agent", agent, limit=MAX_AGENT),
        "topic": topic,
        "score": value,
        "method": text("method", method, limit=MAX_AGENT),
    }
    return _pending(RecordKind.TRUST, row, at=at, signatures=signatures, sign_with=sign_with)


# ---------------------------------------------------------------- frames


def build_frames(
    rows: Sequence[PendingRow],
    next_seq: int,
    last_time: int,
    *,
    now: Callable[[], int],
    max_future_us: int,
    frame_budget: int,
    ledger: SignatureLedger | None = None,
    mergeable: bool = False,
    content_verified: bool = False,
) -> list[PreparedFrame] | list[PendingFrame]:
    """Stamp times and ids for the real tail of the log; split into frames.

    Rows without ``at`` get ``max(now, previous record + 1 us)``: lake-assigned
    times strictly increase. Rows with ``at`` keep it, which must not be earlier
    than what is already committed (history is imported in order, never
    rewritten); two identical records at the same explicit time are refused.
    Content signatures (``signed_at``) must be fresh and unused (``ledger``).
    """
    clock = now()
    running = last_time
    stamped: list[tuple[PendingRow, int, str, list[Signature]]] = []
    seen: set[str] = set()
    claimed: dict[str, int] = {}
    for row in rows:
        if row.at is None:
            # Lake-assigned times strictly increase record by record.
            t = max(clock, running + 1)
        else:
            t = row.at
            if t < running:
                raise OutOfOrderError(
                    f"at={us_to_iso(t)} is earlier than the last committed record "
                    f"({us_to_iso(running)}); history is written in time order: import "
                    "older events before newer ones, or leave at= out to use the current time"
                )
            if t > clock + max_future_us:
                raise ValidationError(
                    f"at={us_to_iso(t)} is in the future; the lake records what was "
                    "written, when: use a time at or before now"
                )
        running = t
        rid = row.id_at(t)
        if rid in seen:
            raise ValidationError(
                f"the same {row.kind.table} record appears twice at the same time "
                f"(id {rid}); drop the duplicate or give it a later at="
            )
        seen.add(rid)
        sigs = list(row.signatures)
        if sigs and row.kind is not RecordKind.AUDIT:
            verify_signatures(
                rid,
                sigs,
                content_id=row.content_id(),
                only="record" if content_verified else None,
            )
            if ledger is not None:
                ledger.check(rid, sigs, clock, claimed)
        sigs.extend(key.sign(rid) for key in row.sign_with)
        stamped.append((row, t, rid, sigs))
    if claimed and ledger is not None:
        ledger.claim(claimed, clock)

    if mergeable:
        # A few rows of one kind (`mergeable_rows`): the log tabulates them, with the
        # other small commits of its group when they are of the same kind.
        size = sum(len(item[0].content) + 200 for item in stamped)
        commit_time = max(t for _, t, _, _ in stamped)
        return [PendingFrame(int(stamped[0][0].kind), commit_time, stamped, _tabulate, size)]
    frames: list[PreparedFrame] = []
    chunk: list[tuple[PendingRow, int, str, list[Signature]]] = []
    chunk_bytes = 0
    for item in stamped:
        size = len(item[0].content) + 200
        if chunk and (item[0].kind is not chunk[0][0].kind or chunk_bytes + size > frame_budget):
            frames.append(_frame(chunk, next_seq + len(frames)))
            chunk, chunk_bytes = [], 0
        chunk.append(item)
        chunk_bytes += size
    if chunk:
        frames.append(_frame(chunk, next_seq + len(frames)))
    return frames


def _frame(chunk: list[tuple[PendingRow, int, str, list[Signature]]], seq: int) -> PreparedFrame:
    table = frame_table(chunk, seq=seq)
    commit_time = max(t for _, t, _, _ in chunk)
    return PreparedFrame(kind=int(chunk[0][0].kind), seq=seq, commit_time=commit_time, table=table)


_SMALL_FRAME = 16


def verify_content_signatures(rows: Sequence[PendingRow]) -> None:
    """Check the signatures of content ids (``signed_at``): they need no time or
    record id, so they are checked before the commit lock, not while holding it."""
    for row in rows:
        if row.signatures and row.kind is not RecordKind.AUDIT:
            verify_signatures("", row.signatures, content_id=row.content_id(), only="content")


@functools.cache
def _struct_of(kind: RecordKind) -> pa.StructType:
    return pa.struct(list(spec(kind).schema))


def mergeable_rows(rows: Sequence[PendingRow]) -> bool:
    """A commit the log may merge with its neighbours: a few rows of one kind."""
    return 0 < len(rows) <= _SMALL_FRAME and all(r.kind is rows[0].kind for r in rows)


def _tabulate(chunk: list[tuple[PendingRow, int, str, list[Signature]]], seq: int) -> pa.Table:
    return frame_table(chunk, seq=seq)


def frame_table(chunk: list[tuple[PendingRow, int, str, list[Signature]]], *, seq: int) -> pa.Table:
    """Rows of one kind, stamped (time, id, signatures), as a table of the kind's schema."""
    kind = chunk[0][0].kind
    kspec = spec(kind)
    if len(chunk) <= _SMALL_FRAME:
        # One request's record: one conversion call costs less than one per column.
        listed = []
        for row, t, rid, sigs in chunk:
            record = dict(row.row)
            record["id"], record["seq"], record["recorded_at"] = rid, seq, t
            if kspec.signed:
                record["signatures"] = [s.as_dict() for s in sigs]
            listed.append(record)
        # One struct array from the dicts: half the cost of Table.from_pylist (which
        # converts column by column), the same columns, types and nullability.
        batch = pa.RecordBatch.from_struct_array(pa.array(listed, type=_struct_of(kind)))
        return pa.Table.from_batches([batch])
    columns: dict[str, list[Any]] = {"id": [], "seq": [], "recorded_at": []}
    for name in kspec.content_names:
        columns[name] = []
    if kspec.signed:
        columns["signatures"] = []
    for row, t, rid, sigs in chunk:
        columns["id"].append(rid)
        columns["seq"].append(seq)
        columns["recorded_at"].append(t)
        for name in kspec.content_names:
            columns[name].append(row.row[name])
        if kspec.signed:
            columns["signatures"].append([s.as_dict() for s in sigs])
    arrays = []
    for f in kspec.schema:
        values = columns[f.name]
        if f.type == pa.timestamp("us", tz="UTC"):
            arrays.append(pa.array(values, pa.int64()).cast(f.type))
        else:
            arrays.append(pa.array(values, f.type))
    return pa.Table.from_arrays(arrays, schema=kspec.schema)
