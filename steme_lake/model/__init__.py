"""The data model: record kinds, Arrow schemas, ids, signatures, visual hashes."""

from steme_lake.model.ids import content_json, is_record_id, record_id, source_hash_of
from steme_lake.model.records import (
    Assertion,
    AuditRecord,
    Confirmation,
    Constraint,
    LifecycleChange,
    Record,
    Supersession,
    TrustScore,
    Vote,
    record_from_row,
)
from steme_lake.model.schema import (
    LIFECYCLE_STAGES,
    SUPERSESSION_KINDS,
    SUPERSESSION_SCOPES,
    KindSpec,
    RecordKind,
    spec,
)
from steme_lake.model.signing import AgentKey, Signature, verify_signature, verify_signatures
from steme_lake.model.visual import hamming_distance, visual_hash

__all__ = [
    "LIFECYCLE_STAGES",
    "SUPERSESSION_KINDS",
    "SUPERSESSION_SCOPES",
    "AgentKey",
    "Assertion",
    "AuditRecord",
    "Confirmation",
    "Constraint",
    "KindSpec",
    "LifecycleChange",
    "Record",
    "RecordKind",
    "Signature",
    "Supersession",
    "TrustScore",
    "Vote",
    "content_json",
    "hamming_distance",
    "is_record_id",
    "record_from_row",
    "record_id",
    "source_hash_of",
    "spec",
    "verify_signature",
    "verify_signatures",
    "visual_hash",
]
