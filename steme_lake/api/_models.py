"""Request shapes of the HTTP API and the MCP tools (pydantic), after the ADK-Go tools.

Field names follow ``shared/reference/adk-go-integration.md``: ``subject``,
``predicate``, ``object``, ``source_hash``, ``confidence``, ``lifecycle``,
``parent_hash``, ``meta``, ``lens``, ``min_confidence``, ``as_of``,
``query_id``; where the ADK shapes differ from the rest of the product
(``agent_id``, ``from``/``to``), the product's one vocabulary wins (``agent``,
``since``/``until``: `steme_lake._vocabulary`). Unknown fields are refused with
the close match named (a typo such as ``lifecyle`` must not silently drop a
filter), numbers must be finite, and types are strict (``"0.9"`` is not a
confidence). Response shapes are in `steme_lake.api._out`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from steme_lake._vocabulary import unknown_parameter

__all__ = [
    "AssertIn",
    "ConstraintAddIn",
    "ConstraintCheckIn",
    "LifecycleIn",
    "QueryIn",
    "SearchIn",
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


# Not in the OpenAPI document: no model can compute a signature, so a tool built
# from the document must not ask for one; the signing hook adds it
# (`steme_lake.client.SigningAuth`, docs/api.md "Signing a write").
Signatures = SkipJsonSchema[
    Annotated[
        list[SignatureIn],
        Field(
            max_length=16,
            description="signatures of the record by the writing agent's registered key (and "
            "co-signers); see docs/api.md 'Signing a write'",
        ),
    ]
]
# Who writes: filled by the signing hook, which knows its agent (a model need not).
Writer = Annotated[
    AgentName | None,
    Field(description="the writing agent (must match the signature's key); the signing hook "
          "fills it"),
]  # fmt: skip
SourceText = Annotated[
    str | None,
    Field(min_length=1, max_length=1 << 20, description="the evidence, a URL or its text: "
          "the server stores its BLAKE3 hash (give this or source_hash)"),
]  # fmt: skip


class AssertIn(_Strict):
    """Store a claim: ``subject predicate = object``, with its evidence."""

    subject: Text = Field(description="the entity, path-like: e.g. auth/jwt")
    predicate: Text = Field(description="the relation, e.g. signing_algorithm")
    object: Any = Field(description="the value claimed: any JSON value")
    source: SourceText = None
    source_hash: str | None = Field(
        None, pattern=HEX64, description="BLAKE3 hash of the evidence, hex (or give source)"
    )
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
    agent: Writer = None
    signatures: Signatures = Field(default_factory=list)
    check_contradictions: bool = Field(
        False,
        description="also return the existing assertions this claim would contest: "
        "near-identical text with another value (e.g. an approved decision)",
    )

    @model_validator(mode="after")
    def _one_source(self) -> AssertIn:
        if (self.source is None) == (self.source_hash is None):
            raise ValueError(
                "give the evidence as source (a URL or its text; the server hashes it) or "
                "as source_hash (its BLAKE3, 64 hex), exactly one of them"
            )
        return self


class VoteIn(_Strict):
    """Vote on an assertion; the weight may be negative."""

    hash: Hash = Field(description="the assertion voted on")
    weight: float = Field(1.0, ge=-1000.0, le=1000.0)
    agent: Writer = None
    signatures: Signatures = Field(default_factory=list)


class LifecycleIn(_Strict):
    """Move an assertion to another lifecycle stage."""

    hash: Hash = Field(description="the assertion")
    stage: Stage
    reason: str | None = Field(None, min_length=1, max_length=4096)
    agent: Writer = None
    signatures: Signatures = Field(default_factory=list)


class SupersedeIn(_Strict):
    """Mark assertions superseded (never deleted): one assertion, a source's, or an
    agent's window."""

    hash: str | None = Field(None, pattern=HEX64, description="the assertion superseded")
    reason: Text
    kind: Literal["invalidate", "refine", "replace", "paradigm_shift"] = Field(
        description="invalidate: it was wrong; refine/replace: a better one exists; "
        "paradigm_shift: the ground moved"
    )
    source: SourceText = None
    source_hash: str | None = Field(None, pattern=HEX64, description="all from this source")
    target_agent: AgentName | None = Field(None, description="all of this agent's, in window")
    since: str | None = Field(None, max_length=64, description="the window's start: " + TIME_HELP)
    until: str | None = Field(None, max_length=64, description="the window's end: " + TIME_HELP)
    replacement: str | None = Field(None, pattern=HEX64, description="the assertion to use now")
    epoch: str | None = Field(None, min_length=1, max_length=256)
    agent: Writer = None
    signatures: Signatures = Field(default_factory=list)


class ConstraintAddIn(_Strict):
    """Store a constraint for a context: forbidden / must_use / reason."""

    context: Text = Field(description="the subject it governs (and everything below it)")
    reason: Text
    forbidden: Any = Field(None, description="a value that must not be used")
    must_use: Any = Field(None, description="the value to use")
    predicate: str | None = Field(None, min_length=1, max_length=4096)
    cites: str | None = Field(None, pattern=HEX64, description="the assertion it comes from")
    agent: Writer = None
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


class SearchIn(_Strict):
    """Semantic search: the assertions closest to ``text``, as of a time, filtered as
    a lens filters; audited."""

    text: Text = Field(description="what to search for, in words")
    k: int = Field(10, ge=1, le=1000, description="how many results, best first")
    as_of: str | None = Field(None, max_length=64, description="time travel: " + TIME_HELP)
    lifecycle: Stage | None = Field(None, description=LIFECYCLE_HELP)
    subject: str | None = Field(
        None, min_length=1, max_length=4096, description="a path (it and below) or a glob"
    )
    min_confidence: float | None = Field(None, ge=0.0, le=1.0)
    include_superseded: bool = False
    hybrid: bool = Field(True, description="fuse full-text and vector ranks; false: vectors only")
    agent: AgentName | None = Field(
        None, description="who asks (recorded in the audit); set by the read token if any"
    )


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
