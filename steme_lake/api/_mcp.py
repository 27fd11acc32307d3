"""The MCP server: the agents' operations as MCP tools (official MCP Python SDK, v2).

One MCP server speaks for one agent (the one it is started as): its questions
are audited as that agent, and its writes are signed with that agent's key
from the wallet. It serves over stdio (``steme mcp``) or streamable HTTP
(``steme mcp --http``). SDK v2 renamed ``FastMCP`` to
``mcp.server.mcpserver.MCPServer``; that is what this module uses.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from mcp.types import ToolAnnotations
from pydantic import ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from steme_lake._exceptions import AuthError, StemeLakeError
from steme_lake._vocabulary import WORDS
from steme_lake.api._models import (
    HEX64,
    LENS_HELP,
    LIFECYCLE_HELP,
    TIME_HELP,
    AssertIn,
    ConstraintCheckIn,
    KnownOnly,
    Lens,
    QueryIn,
    SearchIn,
    Stage,
    SupersedeIn,
    VoteIn,
)
from steme_lake.api._ops import ANONYMOUS, Asker, Operations, ServerOptions
from steme_lake.api._out import (
    BlameOut,
    CheckOut,
    DiffOut,
    DojoExportOut,
    DojoStatsOut,
    ImpactOut,
    ProvenanceOut,
    QueryOut,
    SearchOut,
    TraceOut,
    TrustOut,
    WriteOut,
)
from steme_lake.lake import Lake
from steme_lake.lake._impact import MAX_DEPTH
from steme_lake.model.signing import AgentKey

__all__ = ["INSTRUCTIONS", "create_mcp_server", "mcp_http_app"]

INSTRUCTIONS = """\
steme_lake is the team's shared memory of what is believed, by whom, and why.
Before acting on a fact (deploying, configuring, choosing an algorithm):
1. call check_constraints for the subject you are about to touch, with the value you
   propose; never act against a violation;
2. call query with lifecycle="approved" and lens="authority" (decisions), not the
   default recency lens, which returns the newest claim even if it is only a proposal.
Store what you learn with assert (lifecycle "proposed", an honest confidence, the
evidence's hash); store contradicting evidence too instead of flattening it.
Incident work: trace (what an agent asked), blame (who put an answer there), diff (what
changed), impact (what a bad assertion touched), then supersede it (type "invalidate").
"""

# An audited read is still a read for the host: the audit log is this server's own
# bookkeeping, not a change the person asked for (hosts ask a person before a write).
_READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
_WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
# writes files outside the lake, and with overwrite=true replaces a folder
_WRITE_FILES = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)

Subject = Annotated[str, Field(description="the entity, path-like, e.g. auth/jwt")]
Predicate = Annotated[str, Field(description="the relation, e.g. signing_algorithm")]
Hash = Annotated[
    str, Field(pattern=HEX64, description="a record id (64 hex) as returned by assert")
]
OptHash = Annotated[str | None, Field(pattern=HEX64)]
Kind = Literal["invalidate", "refine", "replace", "paradigm_shift"]
OptTime = Annotated[str | None, Field(description=TIME_HELP)]


_F = TypeVar("_F", bound=Callable[..., Any])


def _answers_errors(fn: _F) -> _F:
    """Report refused input as a tool error the model can read and act on: one line,
    the kind of error, what was wrong and how to fix it."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except StemeLakeError as exc:
            raise ToolError(_one_line(f"{type(exc).__name__}: {exc}")) from exc
        except PydanticValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
            )
            raise ToolError(_one_line(f"invalid arguments: {problems}")) from exc

    return wrapper  # type: ignore[return-value]


def create_mcp_server(
    lake: Lake,
    agent: str,
    *,
    key: AgentKey | None = None,
    options: ServerOptions | None = None,
) -> MCPServer[Any]:
    """An `MCPServer` whose tools act on ``lake`` as ``agent``.

    With ``options.require_signatures`` (the default) writes need ``key``, and
    the key must be registered to ``agent`` in the lake's registry.
    """
    options = options or ServerOptions()
    ops = Operations(lake, options)
    if key is not None and options.require_signatures:
        owner = ops.registry.agent_of(key.public_key)
        if owner != agent:
            raise AuthError(
                f"the key {key.public_key[:16]}... is registered to "
                f"{owner or 'no agent'}, not {agent!r}: register it with "
                f"`steme keys register {agent} {key.public_key}`",
                status=403,
            )

    # The agent this server speaks for is authenticated by its wallet key (unlocked
    # with the passphrase); without one, its reads are audited as anonymous.
    asker = Asker(agent) if key is not None else Asker(ANONYMOUS, agent)

    def signer() -> AgentKey | None:
        if key is None and options.require_signatures:
            raise AuthError(
                f"this MCP server has no key for {agent!r}, so it cannot sign writes: "
                f"create one (`steme keys create {agent}`), register it, and start "
                "`steme mcp` with the wallet passphrase in $STEME_WALLET_PASSPHRASE",
                status=401,
            )
        return key

    server: MCPServer[Any] = MCPServer(
        name="steme_lake", instructions=INSTRUCTIONS, version=_version()
    )

    @server.tool(
        name="query",
        description=(
            "Ask what is believed: subject + predicate -> value, confidence, lifecycle, "
            "sources and a query_id (keep it: it is the audit trail). "
            + LENS_HELP
            + " "
            + LIFECYCLE_HELP
        ),
        annotations=_READ,
    )
    @_answers_errors
    def query(
        subject: Subject,
        predicate: Predicate,
        lens: Annotated[Lens, Field(description=LENS_HELP)] = "recency",
        lifecycle: Annotated[Stage | None, Field(description=LIFECYCLE_HELP)] = None,
        min_confidence: Annotated[float | None, Field(ge=0, le=1)] = None,
        as_of: OptTime = None,
        include_superseded: Annotated[
            bool, Field(description="also weigh superseded assertions")
        ] = False,
        max_candidates: Annotated[int, Field(ge=0, le=1000)] = 10,
    ) -> QueryOut:
        req = QueryIn(
            subject=subject,
            predicate=predicate,
            lens=lens,
            lifecycle=lifecycle,
            min_confidence=min_confidence,
            as_of=as_of,
            include_superseded=include_superseded,
            max_candidates=max_candidates,
        )
        return ops.query(req, asker)  # type: ignore[return-value]  # checked by the SDK

    @server.tool(
        name="search",
        description=(
            "Find what is believed about things like this: the assertions closest in "
            "meaning to 'text' (e.g. 'how are tokens signed?'), best first, as of a time, "
            "with the same lifecycle filter as query (use lifecycle='approved' for "
            "decisions). Use it when you do not know the exact subject and predicate, and "
            "before asserting, to see what was already claimed. Audited like a query."
        ),
        annotations=_READ,
    )
    @_answers_errors
    def search(
        text: Annotated[str, Field(min_length=1, max_length=4096)],
        k: Annotated[int, Field(ge=1, le=1000)] = 10,
        as_of: OptTime = None,
        lifecycle: Annotated[Stage | None, Field(description=LIFECYCLE_HELP)] = None,
        subject: Annotated[str | None, Field(description="a path (it and below) or a glob")] = None,
        min_confidence: Annotated[float | None, Field(ge=0, le=1)] = None,
        include_superseded: bool = False,
        hybrid: bool = True,
    ) -> SearchOut:
        req = SearchIn(
            text=text, k=k, as_of=as_of, lifecycle=lifecycle, subject=subject,
            min_confidence=min_confidence, include_superseded=include_superseded, hybrid=hybrid,
        )  # fmt: skip
        return ops.search(req, asker)  # type: ignore[return-value]

    @server.tool(
        name="assert",
        description=(
            "Store a claim (subject predicate = object) with its evidence (source: a URL or "
            "the text, hashed by the server; or source_hash: its BLAKE3) and an honest "
            "confidence. New knowledge enters as lifecycle 'proposed'; humans or reviewers "
            "approve it. Returns the assertion's hash."
        ),
        annotations=_WRITE,
    )
    @_answers_errors
    def assert_(
        subject: Subject,
        predicate: Predicate,
        object: Annotated[Any, Field(description="the value claimed (any JSON)")],
        confidence: Annotated[float, Field(ge=0, le=1, description="certainty 0..1")],
        source: Annotated[str | None, Field(min_length=1)] = None,
        source_hash: OptHash = None,
        lifecycle: Stage = "proposed",
        parent_hash: OptHash = None,
        meta: Annotated[dict[str, Any] | None, Field(description="extra JSON")] = None,
        check_contradictions: Annotated[
            bool,
            Field(
                description="also return what this claim contests (an approved decision "
                "with another value, say): read them before acting on your claim"
            ),
        ] = False,
    ) -> WriteOut:
        req = AssertIn(
            subject=subject,
            predicate=predicate,
            object=object,
            source=source,
            source_hash=source_hash,
            confidence=confidence,
            lifecycle=lifecycle,
            parent_hash=parent_hash,
            meta=meta,
            agent=agent,
            check_contradictions=check_contradictions,
        )
        return ops.assert_(req, sign_with=signer())  # type: ignore[return-value]

    @server.tool(
        name="vote",
        description="Vote for (weight > 0) or against (weight < 0) an assertion.",
        annotations=_WRITE,
    )
    @_answers_errors
    def vote(hash: Hash, weight: Annotated[float, Field(ge=-1000, le=1000)] = 1.0) -> WriteOut:
        req = VoteIn(hash=hash, weight=weight, agent=agent)
        return ops.vote(req, sign_with=signer())  # type: ignore[return-value]

    @server.tool(
        name="check_constraints",
        description=(
            "Pre-flight check before acting: the constraints in force for a context (and its "
            "parent paths) and, with 'proposed', whether that value violates one. Call it "
            "before deploying or configuring anything; ok=false means do not proceed."
        ),
        annotations=_READ,
    )
    @_answers_errors
    def check_constraints(
        context: Annotated[str, Field(description="the subject about to be acted on")],
        proposed: Annotated[Any, Field(description="the value about to be used")] = None,
        predicate: str | None = None,
        as_of: OptTime = None,
    ) -> CheckOut:
        req = ConstraintCheckIn(
            context=context, proposed=proposed, predicate=predicate, as_of=as_of
        )
        return ops.check_constraints(req, asker)  # type: ignore[return-value]

    @server.tool(
        name="trace",
        description=(
            "An agent's queries and checks in a time window, oldest first, with the "
            "assertions each answer rested on (recency/authority: the winner; "
            "consensus/skeptic: every candidate weighed). For incident investigation."
        ),
        annotations=_READ,
    )
    @_answers_errors
    def trace(
        agent: Annotated[str, Field(min_length=1, description="the agent to trace")],
        since: Annotated[str, Field(description=TIME_HELP)] = "-6h",
        until: OptTime = None,
        subject: Annotated[str | None, Field(description="a path or glob, e.g. auth/*")] = None,
    ) -> TraceOut:
        return ops.trace(agent, since, until, subject)  # type: ignore[return-value]

    @server.tool(
        name="diff",
        description="What changed in a window: beliefs whose answer differs, and records.",
        annotations=_READ,
    )
    @_answers_errors
    def diff(
        since: Annotated[str, Field(description=TIME_HELP)] = "-24h",
        until: OptTime = None,
        subject: Annotated[str | None, Field(description="a path or glob, e.g. auth/*")] = None,
        lens: Lens = "recency",
        lifecycle: Stage | None = None,
    ) -> DiffOut:
        return ops.diff(since, until, subject, lens, lifecycle)  # type: ignore[return-value]

    @server.tool(
        name="blame",
        description="Who and what put the current (or as-of) answer there, with its history.",
        annotations=_READ,
    )
    @_answers_errors
    def blame(
        subject: Subject,
        predicate: Predicate,
        as_of: OptTime = None,
        lens: Lens = "recency",
        lifecycle: Stage | None = None,
    ) -> BlameOut:
        return ops.blame(subject, predicate, as_of, lens, lifecycle)  # type: ignore[return-value]

    @server.tool(
        name="impact",
        description=(
            "Everything one assertion touched, and what that touched, depth levels down: the "
            "queries it fed, the agents that received it, the assertions derived from it, "
            "constraints citing it, votes; each row with its depth and via (the path)."
        ),
        annotations=_READ,
    )
    @_answers_errors
    def impact(
        hash: Hash,
        until: Annotated[
            str | None,
            Field(
                description="only what happened up to then (e.g. the incident's end): " + TIME_HELP
            ),
        ] = None,
        depth: Annotated[int, Field(ge=1, le=MAX_DEPTH)] = 3,
    ) -> ImpactOut:
        return ops.impact(hash, until, depth)  # type: ignore[return-value]

    @server.tool(
        name="supersede",
        description=(
            "Correct the record without deleting it: mark an assertion superseded. Use "
            "kind 'invalidate' when it was wrong (e.g. after an incident), 'refine' or "
            "'replace' when a better one exists (give 'replacement')."
        ),
        annotations=_WRITE,
    )
    @_answers_errors
    def supersede(
        hash: Hash,
        reason: Annotated[str, Field(description="why, for the humans reading later")],
        kind: Kind,
        replacement: OptHash = None,
    ) -> WriteOut:
        req = SupersedeIn(hash=hash, reason=reason, kind=kind, replacement=replacement, agent=agent)
        return ops.supersede(req, sign_with=signer())  # type: ignore[return-value]

    @server.tool(
        name="provenance",
        description="Source -> agent -> assertion -> answer for one query_id.",
        annotations=_READ,
    )
    @_answers_errors
    def provenance(
        query_id: Annotated[str, Field(pattern=HEX64, description="a query_id from query")],
    ) -> ProvenanceOut:
        return ops.provenance(query_id)  # type: ignore[return-value]

    @server.tool(
        name="trust",
        description=(
            "The Gardener's trust scores per topic (how much each agent's word counts on, "
            "e.g., auth), as of a time; with 'agent' and 'topic', why that agent has its "
            "score: the votes, approvals and corrections behind it, largest first."
        ),
        annotations=_READ,
    )
    @_answers_errors
    def trust(
        topic: Annotated[str | None, Field(description="a topic, e.g. auth ('' = all)")] = None,
        agent: Annotated[str | None, Field(description="explain this agent's score")] = None,
        as_of: OptTime = None,
        top: Annotated[int | None, Field(ge=1, description="the first N of each topic")] = None,
    ) -> TrustOut:
        return ops.trust(topic, agent, as_of, top)  # type: ignore[return-value]

    @server.tool(
        name="dojo_stats",
        description=(
            "The Dojo: how many training samples (proposals taken for decisions, "
            "answers later invalidated, contested answers acted on, constraint "
            "violations; approved answers, honoured constraints, corrected paths) each "
            "split would get, for events in a window."
        ),
        annotations=_READ,
    )
    @_answers_errors
    def dojo_stats(
        kinds: Annotated[str | None, Field(description="sample kinds, comma-separated")] = None,
        since: OptTime = None,
        until: OptTime = None,
        subject: Annotated[str | None, Field(description="a subject path or glob")] = None,
        as_of: OptTime = None,
    ) -> DojoStatsOut:
        return ops.dojo_stats(  # type: ignore[return-value]
            {"kinds": kinds, "since": since, "until": until, "subject": subject, "as_of": as_of}
        )

    @server.tool(
        name="dojo_export",
        description=(
            "Write the Dojo's training samples as Parquet (preference, unpaired, sft, a "
            "manifest and a dataset card) to a folder under the server's export folder."
        ),
        annotations=_WRITE_FILES,
    )
    @_answers_errors
    def dojo_export(
        path: Annotated[str, Field(description="a new folder, relative to the export folder")],
        kinds: Annotated[str | None, Field(description="sample kinds, comma-separated")] = None,
        since: OptTime = None,
        until: OptTime = None,
        subject: Annotated[str | None, Field(description="a subject path or glob")] = None,
        as_of: OptTime = None,
        test_after: OptTime = None,
        overwrite: Annotated[bool, Field(description="replace a non-empty folder")] = False,
    ) -> DojoExportOut:
        params = {"kinds": kinds, "since": since, "until": until, "subject": subject,
                  "as_of": as_of, "test_after": test_after}  # fmt: skip
        return ops.dojo_export(path, params, overwrite=overwrite, openai=False)  # type: ignore[return-value]

    _strict_tools(server)
    return server


def mcp_http_app(server: MCPServer[Any], lake: Lake, agent: str) -> Any:
    """The streamable-HTTP app of ``server``, open only to a caller that sends
    ``Authorization: Bearer <token>`` with a read token bound to ``agent`` (the
    one the server speaks and signs for): over a network, no token, no tools."""
    from starlette.responses import JSONResponse

    from steme_lake.keys import AgentRegistry

    registry = AgentRegistry(lake.path)
    inner = server.streamable_http_app()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or ())
            scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
            owner = registry.agent_for_token(token.strip()) if scheme.lower() == "bearer" else None
            if owner != agent:
                why = (
                    "send 'Authorization: Bearer <token>' with a read token of agent "
                    f"{agent!r} (`steme keys token {agent}` makes one)"
                    if owner is None
                    else f"this token belongs to agent {owner!r}; this server speaks for {agent!r}"
                )
                status = 401 if owner is None else 403
                response = JSONResponse(
                    {"success": False, "error": why, "type": "AuthError", "status": status},
                    status_code=status,
                    headers={"WWW-Authenticate": "Bearer"},
                )
                await response(scope, receive, send)
                return
        await inner(scope, receive, send)

    return app


def _strict_tools(server: MCPServer[Any]) -> None:
    """Make every tool's arguments as strict as the HTTP API's: an unknown argument is
    refused naming the close match (``additionalProperties: false`` in its input
    schema, and checked on the server), and types are not coerced (``"0.9"`` is not
    a confidence). The SDK builds a lenient model from each function's signature;
    a strict subclass of it replaces it."""
    for tool in server._tool_manager.list_tools():
        lenient = tool.fn_metadata.arg_model
        strict: type[ArgModelBase] = type(
            lenient.__name__,
            (KnownOnly, lenient),
            {
                "__module__": lenient.__module__,
                "model_config": ConfigDict(extra="forbid", strict=True, allow_inf_nan=False),
            },
        )
        tool.fn_metadata.arg_model = strict
        tool.parameters = strict.model_json_schema(by_alias=True)
        for name, prop in tool.parameters.get("properties", {}).items():
            word = WORDS.get(name)
            if word is not None:  # the one vocabulary's meaning and example
                prop.setdefault("description", word.meaning)
                prop.setdefault("examples", [word.example])


def _one_line(message: str) -> str:
    """An error as one line (a model reads the first line of a tool error)."""
    return " ".join(message.split())


def _version() -> str:
    import steme_lake

    return steme_lake.__version__
