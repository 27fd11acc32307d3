"""Request shapes of the HTTP API and the MCP tools (pydantic), after the ADK-Go tools.

Field names follow ``shared/reference/adk-go-integration.md``: ``subject``,
``predicate``, ``object``, ``source_hash``, ``confidence``, ``lifecycle``,
``parent_hash``, ``meta``, ``lens``, ``min_confidence``, ``as_of``,
``query_id``, ``agent_id``, ``from``/``to``. Unknown fields are refused with
the close match named (a typo such as ``lifecyle`` must not silently drop a
filter), numbers must be finite, and types are strict (``"0.9"`` is not a
confidence).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

__all__ = [
    "AssertIn",
    "ConstraintAddIn",
    "ConstraintCheckIn",
    "LifecycleIn",
    "QueryIn",
    "SignatureIn",
    "SupersedeIn",
    "VoteIn",
    "query_string_errors",
    "unknown_parameter",
]

HEX64 = r"^[0-9a-f]{64}$"
Stage = Literal["proposed", "under_review", "approved", "deprecated"]
Lens = Literal["recency", "consensus", "authority", "skeptic", "constraints"]
Text = Annotated[str, Field(min_length=1, max_length=4096)]
AgentName = Annotated[str, Field(min_length=1, max_length=256)]
Hash = Annotated[str, Field(pattern=HEX64, description="a record id: 64 lowercase hex")]

LENS_HELP = (
    "How candidates become one answer. recency: the latest assertion wins (fast, but a "
    "fresh proposal beats an old decision); consensus: votes weighted by the voters' "
    "trust; authority: the most trusted agent on the topic, times confidence (use for "
    "decisions); skeptic: answers only when the evidence is strong and uncontested, "
    "otherwise reports the contest; constraints: the rules in force for the subject."
)
LIFECYCLE_HELP = (
    "Only assertions in this lifecycle stage. Use 'approved' before acting on an answer: "
    "without a filter a proposal can be returned as if it were a decision (the JWT "
    "incident: a proposed ES256 was deployed instead of the approved RS256)."
)
TIME_HELP = "ISO-8601 (a naive time means UTC) or relative, e.g. '-6h', '-30m', '-2d'"


_RENAMED = {"from": "since", "to": "until", "start": "since", "end": "until"}


def unknown_parameter(name: str, known: Iterable[str]) -> str:
    """The refusal of an unknown parameter, naming the close match if there is one.

    Examples
    --------
    >>> unknown_parameter("lifecyle", ["lifecycle", "lens"])
    "unknown parameter 'lifecyle'; did you mean 'lifecycle'? (known: lens, lifecycle)"
    """
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if _RENAMED.get(name) in known:  # words other tools use for ours
        close = [_RENAMED[name]]
    hint = f"; did you mean {close[0]!r}?" if close else ";"
    return f"unknown parameter {name!r}{hint} (known: {', '.join(known)})"


def query_string_errors(
    items: Iterable[tuple[str, str]], known: Iterable[str]
) -> list[dict[str, Any]]:
    """Unknown or repeated query parameters, as FastAPI-shaped errors (``loc`` from
    ``query``): one wording for the framework's routes and the hot path."""
    known = frozenset(known)
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    for name, _ in items:
        if name not in known:
            msg, kind = unknown_parameter(name, known), "extra_forbidden"
        elif name in seen:
            msg, kind = f"parameter {name!r} is given more than once; give it once", "repeated"
        else:
            seen.add(name)
            continue
        errors.append({"loc": ("query", name), "msg": msg, "type": kind})
    return errors


class KnownOnly(BaseModel):
    """Refuses a parameter it does not know, naming the close match: a typo such as
    ``lifecyle`` must never silently drop a filter (the JWT incident, again)."""

    model_config = ConfigDict(extra="forbid")  # and ``additionalProperties: false``

    @model_validator(mode="before")
    @classmethod
    def _known_only(cls, data: Any) -> Any:
        if isinstance(data, dict):
            names = {f.alias or n for n, f in cls.model_fields.items()}
            for key in data:
                if key not in names:
                    raise PydanticCustomError("extra_forbidden", unknown_parameter(str(key), names))
        return data


class _Strict(KnownOnly):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


class SignatureIn(_Strict):
    """An ed25519 signature of the record's content id at ``signed_at``."""

    public_key: str = Field(pattern=HEX64, description="the signer's ed25519 public key, hex")
    signature: str = Field(pattern=r"^[0-9a-f]{128}$", description="the signature, hex")
    signed_at: int = Field(
        ge=0,
        lt=2**62,
        description="when it was signed: microseconds since 1970-01-01 UTC; part of the "
        "signed message, and must be recent (replays and stale signatures are refused)",
    )


Signatures = Annotated[
    list[SignatureIn],
    Field(
        max_length=16,
        description="signatures of the record by the writing agent's registered key (and "
        "co-signers); see docs/api.md 'Signing a write'",
    ),
]


class AssertIn(_Strict):
    """Store a claim: ``subject predicate = object``, with its evidence."""

    subject: Text = Field(description="the entity, path-like: e.g. auth/jwt")
    predicate: Text = Field(description="the relation, e.g. signing_algorithm")
    object: Any = Field(description="the value claimed: any JSON value")
    source_hash: str = Field(pattern=HEX64, description="BLAKE3 hash of the evidence, hex")
    confidence: float = Field(ge=0.0, le=1.0, description="certainty, 0..1")
    lifecycle: Stage = Field("proposed", description="the stage it enters at")
    parent_hash: str | None = Field(None, pattern=HEX64, description="the assertion it refines")
    epoch: str | None = Field(None, min_length=1, max_length=256)
    visual_hash: str | None = Field(
        None, pattern=r"^[0-9a-f]{1,1024}$", description="perceptual hash of image evidence"
    )
    meta: dict[str, Any] | None = Field(
        None, description="extra JSON, e.g. {forbidden_alternative, reason, context}"
    )
    agent: AgentName = Field(description="the asserting agent (must match the signature's key)")
    signatures: Signatures = Field(default_factory=list)


class VoteIn(_Strict):
    """Vote on an assertion; the weight may be negative."""

    hash: Hash = Field(description="the assertion voted on")
    weight: float = Field(1.0, ge=-1000.0, le=1000.0)
    agent: AgentName
    signatures: Signatures = Field(default_factory=list)


class LifecycleIn(_Strict):
    """Move an assertion to another lifecycle stage."""

    hash: Hash = Field(description="the assertion")
    stage: Stage
    reason: str | None = Field(None, min_length=1, max_length=4096)
    agent: AgentName
    signatures: Signatures = Field(default_factory=list)


class SupersedeIn(_Strict):
    """Mark assertions superseded (never deleted): one assertion, a source's, or an
    agent's window."""

    hash: str | None = Field(None, pattern=HEX64, description="the assertion superseded")
    reason: Text
    type: Literal["invalidate", "refine", "replace", "paradigm_shift"] = Field(
        description="invalidate: it was wrong; refine/replace: a better one exists; "
        "paradigm_shift: the ground moved"
    )
    source_hash: str | None = Field(None, pattern=HEX64, description="all from this source")
    target_agent: AgentName | None = Field(None, description="all of this agent's, in window")
    window_from: str | None = Field(None, max_length=64, description=TIME_HELP)
    window_to: str | None = Field(None, max_length=64, description=TIME_HELP)
    replacement: str | None = Field(None, pattern=HEX64, description="the assertion to use now")
    epoch: str | None = Field(None, min_length=1, max_length=256)
    agent: AgentName
    signatures: Signatures = Field(default_factory=list)


class ConstraintAddIn(_Strict):
    """Store a constraint for a context: forbidden / must_use / reason."""

    context: Text = Field(description="the subject it governs (and everything below it)")
    reason: Text
    forbidden: Any = Field(None, description="a value that must not be used")
    must_use: Any = Field(None, description="the value to use")
    predicate: str | None = Field(None, min_length=1, max_length=4096)
    cites: str | None = Field(None, pattern=HEX64, description="the assertion it comes from")
    agent: AgentName
    signatures: Signatures = Field(default_factory=list)


class QueryIn(_Strict):
    """Ask ``subject predicate ?`` through a lens; the question is audited."""

    subject: Text = Field(description="the entity, e.g. auth/jwt")
    predicate: Text = Field(description="the relation, e.g. signing_algorithm")
    lens: Lens = Field("recency", description=LENS_HELP)
    lifecycle: Stage | None = Field(None, description=LIFECYCLE_HELP)
    min_confidence: float | None = Field(None, ge=0.0, le=1.0)
    as_of: str | None = Field(None, max_length=64, description="time travel: " + TIME_HELP)
    include_superseded: bool = False
    max_candidates: int = Field(
        10, ge=0, le=1000, description="how many weighed candidates to return (best first)"
    )
    agent: AgentName | None = Field(
        None, description="who asks (recorded in the audit); set by the read token if any"
    )


class QueryParams(KnownOnly):
    """``GET /query``'s query parameters, parsed from text as FastAPI parses the
    route's parameters (the hot path validates with this; `QueryIn` follows)."""

    subject: Annotated[str, Field(min_length=1, max_length=4096)]
    predicate: Annotated[str, Field(min_length=1, max_length=4096)]
    lens: Lens = "recency"
    lifecycle: Stage | None = None
    min_confidence: Annotated[float | None, Field(ge=0.0, le=1.0)] = None
    as_of: Annotated[str | None, Field(min_length=1, max_length=64)] = None
    include_superseded: bool = False
    max_candidates: Annotated[int, Field(ge=0, le=1000)] = 10
    agent: Annotated[str | None, Field(min_length=1, max_length=256)] = None


class ConstraintCheckIn(_Strict):
    """Pre-flight: the constraints in force for a context, and what a proposal violates."""

    context: Text = Field(description="the subject about to be acted on, e.g. auth/jwt")
    predicate: str | None = Field(None, min_length=1, max_length=4096)
    proposed: Any = Field(None, description="the value about to be used (checked if given)")
    as_of: str | None = Field(None, max_length=64, description=TIME_HELP)
    agent: AgentName | None = None


class DojoExportIn(KnownOnly):
    """Export the Dojo's samples under the server's export folder (``--export-root``)."""

    path: str = Field(min_length=1, max_length=1024, description="a folder, relative to the "
                      "server's export folder; new or empty unless overwrite")  # fmt: skip
    kinds: str | None = Field(None, max_length=1024, description="sample kinds, comma-separated")
    since: str | None = Field(None, max_length=64, description=TIME_HELP)
    until: str | None = Field(None, max_length=64, description=TIME_HELP)
    subject: str | None = Field(None, min_length=1, max_length=4096, description="path or glob")
    as_of: str | None = Field(None, max_length=64, description=TIME_HELP)
    test_after: str | None = Field(None, max_length=64, description="incidents from then on: test")
    overwrite: bool = Field(False, description="replace a non-empty folder")
    openai: bool = Field(False, description="also write OpenAI fine-tuning JSONL")
