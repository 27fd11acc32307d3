"""Arrow schemas of the six record kinds: the documented on-disk format.

Every table starts with ``id`` (64 hex chars, BLAKE3), ``seq`` (the WAL
sequence number of the commit that wrote it) and ``recorded_at`` (UTC
microseconds, the transaction time). Then come the record's content fields
(what its id is computed from), then ``signatures`` where the kind is signed.
JSON-valued columns hold canonical JSON text; times are ``timestamp[us, UTC]``;
text is plain ``string`` (never dictionary-encoded Arrow types), so DuckDB,
Spark, Daft and Ray read the Parquet files as they are.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import pyarrow as pa

__all__ = [
    "COMMON_FIELDS",
    "LIFECYCLE_STAGES",
    "SIGNATURE_TYPE",
    "SUPERSESSION_KINDS",
    "SUPERSESSION_SCOPES",
    "TIMESTAMP",
    "KindSpec",
    "RecordKind",
    "spec",
]

TIMESTAMP = pa.timestamp("us", tz="UTC")
SIGNATURE_TYPE = pa.struct(
    [("public_key", pa.string()), ("signature", pa.string()), ("signed_at", pa.int64())]
)
SIGNATURES_TYPE = pa.list_(SIGNATURE_TYPE)

LIFECYCLE_STAGES = ("proposed", "under_review", "approved", "deprecated")
SUPERSESSION_KINDS = ("invalidate", "refine", "replace", "paradigm_shift")
SUPERSESSION_SCOPES = ("assertion", "source", "agent_window")

COMMON_FIELDS = (
    pa.field("id", pa.string(), nullable=False),
    pa.field("seq", pa.int64(), nullable=False),
    pa.field("recorded_at", TIMESTAMP, nullable=False),
)


class RecordKind(enum.IntEnum):
    """The record kinds; the value is the kind byte of a WAL frame."""

    ASSERTION = 1
    VOTE = 2
    LIFECYCLE = 3
    SUPERSESSION = 4
    CONSTRAINT = 5
    AUDIT = 6
    CONFIRMATION = 7
    TRUST = 8

    @property
    def table(self) -> str:
        """The table (and folder) name of this kind."""
        return _TABLE_NAMES[self]

    @classmethod
    def from_table(cls, name: str) -> RecordKind:
        for kind, table in _TABLE_NAMES.items():
            if table == name:
                return kind
        raise KeyError(name)


_TABLE_NAMES = {
    RecordKind.ASSERTION: "assertions",
    RecordKind.VOTE: "votes",
    RecordKind.LIFECYCLE: "lifecycle",
    RecordKind.SUPERSESSION: "supersessions",
    RecordKind.CONSTRAINT: "constraints",
    RecordKind.AUDIT: "audit",
    RecordKind.CONFIRMATION: "confirmations",
    RecordKind.TRUST: "trust",
}


def _s(name: str, nullable: bool = True) -> pa.Field:
    return pa.field(name, pa.string(), nullable=nullable)


def _f(name: str, nullable: bool = True) -> pa.Field:
    return pa.field(name, pa.float64(), nullable=nullable)


def _t(name: str) -> pa.Field:
    return pa.field(name, TIMESTAMP, nullable=True)


_CONTENT: dict[RecordKind, tuple[pa.Field, ...]] = {
    RecordKind.ASSERTION: (
        _s("subject", False),
        _s("predicate", False),
        _s("object", False),
        _f("confidence", False),
        _s("source_hash", False),
        _s("agent", False),
        _s("lifecycle", False),
        _s("parent"),
        _s("epoch"),
        _s("visual_hash"),
        _s("meta"),
    ),
    RecordKind.VOTE: (_s("target", False), _s("agent", False), _f("weight", False)),
    RecordKind.LIFECYCLE: (
        _s("target", False),
        _s("agent", False),
        _s("stage", False),
        _s("reason"),
    ),
    RecordKind.SUPERSESSION: (
        _s("agent", False),
        _s("kind", False),
        _s("reason", False),
        _s("scope", False),
        _s("target"),
        _s("source_hash"),
        _s("target_agent"),
        _t("window_start"),
        _t("window_end"),
        _s("replacement"),
        _s("epoch"),
    ),
    RecordKind.CONSTRAINT: (
        _s("context", False),
        _s("predicate"),
        _s("forbidden"),
        _s("must_use"),
        _s("reason", False),
        _s("agent", False),
        _s("cites"),
    ),
    RecordKind.AUDIT: (
        _s("agent", False),
        _s("op", False),
        _s("subject", False),
        _s("predicate"),
        _s("lens"),
        pa.field("lifecycle_filter", pa.list_(pa.string()), nullable=True),
        _f("min_confidence"),
        _t("as_of"),
        pa.field("include_superseded", pa.bool_(), nullable=False),
        _s("params"),
        _s("status", False),
        _s("value"),
        _f("confidence"),
        _s("winner"),
        pa.field("contributing", pa.list_(pa.string()), nullable=True),
        pa.field("latency_us", pa.int64(), nullable=True),
    ),
    # A successful use of an assertion or constraint: resets its decay clock.
    RecordKind.CONFIRMATION: (
        _s("target", False),
        _s("agent", False),
        _s("reason"),
        _s("query_id"),
    ),
    # An agent's reputation on a topic (a subject prefix; "" for every topic).
    RecordKind.TRUST: (
        _s("agent", False),
        _s("topic", False),
        _f("score", False),
        _s("method", False),
    ),
}

# Columns holding canonical JSON text: their *values* enter the id, not the text.
_JSON_COLUMNS: dict[RecordKind, frozenset[str]] = {
    RecordKind.ASSERTION: frozenset({"object", "meta"}),
    RecordKind.CONSTRAINT: frozenset({"forbidden", "must_use"}),
    RecordKind.AUDIT: frozenset({"params", "value"}),
}

# Audit records are written by the lake itself, not signed by agents.
_SIGNED = frozenset(set(RecordKind) - {RecordKind.AUDIT})


@dataclass(frozen=True, slots=True)
class KindSpec:
    """Everything the lower layers need to know about one record kind."""

    kind: RecordKind
    content: tuple[pa.Field, ...]
    json_columns: frozenset[str]
    time_columns: frozenset[str]
    signed: bool
    schema: pa.Schema
    content_names: tuple[str, ...]


def _build(kind: RecordKind) -> KindSpec:
    content = _CONTENT[kind]
    signed = kind in _SIGNED
    fields = [*COMMON_FIELDS, *content]
    if signed:
        fields.append(pa.field("signatures", SIGNATURES_TYPE, nullable=False))
    return KindSpec(
        kind=kind,
        content=content,
        json_columns=_JSON_COLUMNS.get(kind, frozenset()),
        time_columns=frozenset(f.name for f in content if f.type == TIMESTAMP),
        signed=signed,
        schema=pa.schema(fields),
        content_names=tuple(f.name for f in content),
    )


_SPECS = {kind: _build(kind) for kind in RecordKind}


def spec(kind: RecordKind) -> KindSpec:
    """The `KindSpec` of ``kind``."""
    return _SPECS[kind]
