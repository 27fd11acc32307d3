"""steme_lake: a Git for Truth for AI agents.

Agents write immutable, signed assertions and votes; every question is
answered through a lens with lifecycle filters and as-of time travel.

>>> import steme_lake as sl
>>> sl.open  # doctest: +ELLIPSIS
<function open_lake at ...>
"""

from steme_lake._exceptions import (
    ApiError,
    AuthError,
    EventImportError,
    FrameTooLargeError,
    InternalError,
    KeyStoreError,
    LakeClosedError,
    MissingExtraError,
    OutOfOrderError,
    ServerConnectionError,
    SignatureError,
    StemeLakeError,
    StorageCorruptError,
    StorageError,
    UnknownRecordError,
    ValidationError,
    WalCorruptError,
    WalError,
    WalFailedError,
)
from steme_lake.doctor import DoctorReport, doctor
from steme_lake.lake import Lake, LakeOptions, LakeStatus, NoMatchWarning
from steme_lake.lake import open_lake as open
from steme_lake.model import (
    AgentKey,
    Assertion,
    AuditRecord,
    Constraint,
    LifecycleChange,
    RecordKind,
    Signature,
    Supersession,
    Vote,
    hamming_distance,
    source_hash_of,
    verify_signature,
    visual_hash,
)

__version__ = "0.1.0"

__all__ = [
    "AgentKey",
    "ApiError",
    "Assertion",
    "AuditRecord",
    "AuthError",
    "Constraint",
    "DoctorReport",
    "EventImportError",
    "FrameTooLargeError",
    "InternalError",
    "KeyStoreError",
    "Lake",
    "LakeClosedError",
    "LakeOptions",
    "LakeStatus",
    "LifecycleChange",
    "MissingExtraError",
    "NoMatchWarning",
    "OutOfOrderError",
    "RecordKind",
    "ServerConnectionError",
    "Signature",
    "SignatureError",
    "StemeLakeError",
    "StorageCorruptError",
    "StorageError",
    "Supersession",
    "UnknownRecordError",
    "ValidationError",
    "Vote",
    "WalCorruptError",
    "WalError",
    "WalFailedError",
    "doctor",
    "hamming_distance",
    "open",
    "source_hash_of",
    "verify_signature",
    "visual_hash",
    "__version__",
]
