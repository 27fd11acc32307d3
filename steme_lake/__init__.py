"""steme_lake: a Git for Truth for AI agents.

Agents write immutable, signed assertions and votes; every question is
answered through a lens with lifecycle filters and as-of time travel.

>>> import steme_lake as sl
>>> sl.open  # doctest: +ELLIPSIS
<function open_lake at ...>
"""

import importlib
from typing import TYPE_CHECKING, Any

from steme_lake._exceptions import (
    ApiError,
    AuthError,
    EngineError,
    EventImportError,
    FrameTooLargeError,
    InternalError,
    KeyStoreError,
    LakeClosedError,
    MissingExtraError,
    OutOfOrderError,
    ReadOnlyError,
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

# The rest is imported when first used (PEP 562), so that `steme --help` and the
# exceptions do not pay for pyarrow, polars and the lake (about half a second).
# (doctor is also the name of a subpackage: bound here, so that importing the
# subpackage can never leave `steme_lake.doctor` the module instead of the function)
from steme_lake.doctor import DoctorReport, doctor

if TYPE_CHECKING:
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
    from steme_lake.query import decoded

_LAZY = {
    "decoded": "steme_lake.query",
    **dict.fromkeys(("Lake", "LakeOptions", "LakeStatus", "NoMatchWarning"), "steme_lake.lake"),
    **dict.fromkeys(
        (
            "AgentKey", "Assertion", "AuditRecord", "Constraint", "LifecycleChange",
            "RecordKind", "Signature", "Supersession", "Vote", "hamming_distance",
            "source_hash_of", "verify_signature", "visual_hash",
        ),
        "steme_lake.model",
    ),
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name == "open":
        from steme_lake.lake import open_lake

        globals()["open"] = open_lake
        return open_lake
    if name == "widgets":  # the explorer's subpackage: ipywidgets only when asked for
        module = importlib.import_module("steme_lake.widgets")
        globals()["widgets"] = module
        return module
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'steme_lake' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__version__ = "0.1.0"

__all__ = [
    "AgentKey",
    "ApiError",
    "Assertion",
    "AuditRecord",
    "AuthError",
    "Constraint",
    "DoctorReport",
    "EngineError",
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
    "ReadOnlyError",
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
    "decoded",
    "doctor",
    "hamming_distance",
    "open",
    "source_hash_of",
    "verify_signature",
    "visual_hash",
    "widgets",
    "__version__",
]
