"""The agents' operations, independent of transport: HTTP and MCP both call these.

Each operation validates its request (a pydantic model from `_models`), checks
who may do it (`Identity`), calls the lake and returns plain JSON data: times
as ISO-8601 text, frames as lists of rows.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

import steme_lake
from steme_lake._exceptions import AuthError, InternalError, StemeLakeError, ValidationError
from steme_lake._utils.timeparse import now_us
from steme_lake.api._models import (
    AssertIn,
    ConstraintAddIn,
    ConstraintCheckIn,
    LifecycleIn,
    QueryIn,
    SearchIn,
    SignatureIn,
    SupersedeIn,
    VoteIn,
)
from steme_lake.keys import AgentRegistry
from steme_lake.lake import Lake, NoMatchWarning
from steme_lake.lake._rows import PendingRow
from steme_lake.model.ids import source_hash_of
from steme_lake.model.signing import READ_SIGNATURE_HEADER, AgentKey, read_message
from steme_lake.query._answer import Candidates

log = logging.getLogger("steme_lake.api")

__all__ = [
    "ANONYMOUS",
    "Asker",
    "Credentials",
    "Operations",
    "Plan",
    "ServerOptions",
    "jsonable",
    "to_json",
]

ANONYMOUS = "anonymous"
_warn_lock = threading.Lock()


# orjson writes datetimes as ISO-8601 with "Z" for UTC, NaN and infinities as
# null, tuples as lists: the same JSON as `_jsonable_slow`, about 20 times faster
# (the query answer's encoding was a fifth of an HTTP query's server time).
_ORJSON = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


def _frame_rows(value: Any) -> Any:
    if isinstance(value, pl.DataFrame):
        return value.to_dicts()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def to_json(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON, by the rules of `jsonable`."""
    try:
        return orjson.dumps(value, default=_frame_rows, option=_ORJSON)
    except orjson.JSONEncodeError:
        # orjson refuses integers beyond 64 bits, which JSON (and an agent's value) allows.
        return json.dumps(
            _jsonable_slow(value), ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode()


def jsonable(value: Any) -> Any:
    """JSON-ready data: datetimes as ISO-8601 (Z), frames as row lists, no NaN."""
    try:
        return orjson.loads(orjson.dumps(value, default=_frame_rows, option=_ORJSON))
    except orjson.JSONEncodeError:
        return _jsonable_slow(value)


def _jsonable_slow(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, pl.DataFrame):
        return [_jsonable_slow(r) for r in value.to_dicts()]
    if isinstance(value, Mapping):
        return {str(k): _jsonable_slow(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable_slow(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _obj(value: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = jsonable(value)
    return out


@dataclass(frozen=True, slots=True)
class Plan:
    """A request checked (and a question answered), its rows not yet committed;
    ``finish`` makes the reply from their ids: data `to_json` encodes (it may
    hold datetimes; `run` returns it `jsonable`)."""

    rows: list[PendingRow]
    finish: Callable[[list[str]], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """Who may do what.

    Attributes
    ----------
    require_signatures
        Writes must carry a valid signature by a key registered to the writing
        agent (401 without one, 403 with another agent's key). ``False`` is for
        a single-user laptop: signatures, when sent, are still verified.
    read_tokens
        Reads need ``Authorization: Bearer <token>`` of a registered agent; the
        audit then records that agent as the asker.
    max_body_bytes
        Larger request bodies are refused with 413.
    batch_wait_ms
        Under load, how long the server may hold a batch of writes and questions
        for the requests about to arrive, so that more of them share one fsync
        (see `steme_lake.api._fast`). 0 turns the wait off; a lone client never
        waits.
    export_root
        The folder Dojo exports may be written to (paths are taken relative to
        it and may not leave it); None: this server writes no exports.
    """

    require_signatures: bool = True
    read_tokens: bool = False
    max_body_bytes: int = 1 << 20
    batch_wait_ms: float = 1.0
    export_root: str | None = None

    def __post_init__(self) -> None:
        check_batch_wait_ms(self.batch_wait_ms)


def _given(params: dict[str, Any]) -> dict[str, Any]:
    """The Dojo parameters a caller gave (None: the default); ``kinds`` as a list."""
    out = {k: v for k, v in params.items() if v is not None}
    if isinstance(out.get("kinds"), str):
        out["kinds"] = [k.strip() for k in out["kinds"].split(",") if k.strip()]
    return out


def check_batch_wait_ms(wait: Any, *, name: str = "batch_wait_ms") -> float:
    """``wait`` if it is a batch wait the server takes (0 to 100 ms), else a
    `ValidationError` naming ``name`` (the option, or the CLI flag)."""
    if isinstance(wait, bool) or not isinstance(wait, int | float) or not 0 <= wait <= 100:
        raise ValidationError(
            f"{name} must be 0 (no waiting) to 100 milliseconds (1 is the default); "
            f"{wait!r} is out of range"
        )
    return float(wait)


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a request offers as its identity: a read token, and/or a signed read
    (``X-Steme-Signature`` over its method, path and body or query string)."""

    token: str | None = None
    signature: str | None = None
    method: str = ""
    path: str = ""
    payload: bytes = b""


@dataclass(frozen=True, slots=True)
class Asker:
    """Who asks: the agent the audit records, and, for an unauthenticated caller
    (recorded as ``anonymous``), the name it claimed (kept in the audit's params)."""

    agent: str
    claimed: str | None = None

    @property
    def audit_params(self) -> dict[str, Any] | None:
        return {"claimed_agent": self.claimed} if self.claimed is not None else None


class Operations:
    """The operations of the HTTP API and the MCP server over one open lake."""

    def __init__(self, lake: Lake, options: ServerOptions | None = None) -> None:
        self.lake = lake
        self.options = options or ServerOptions()
        self.registry = AgentRegistry(lake.path)
        self._seen_reads: dict[str, int] = {}  # signed reads: signature -> when to forget
        self._reads_lock = threading.Lock()

    # ------------------------------------------------------------ identity

    def reader(self, creds: Credentials | str | None, claimed: str | None) -> Asker:
        """Who a read is recorded for: the agent its token is bound to or whose
        registered key signed it, or, with neither (where the server allows that),
        ``anonymous``, the name the caller gave kept beside it as ``claimed_agent``:
        a name merely claimed is never recorded as the asker (else anyone could
        write into deploy-agent's trace)."""
        if not isinstance(creds, Credentials):
            creds = Credentials(token=creds)
        agents = []
        if creds.token is not None:
            agent = self.registry.agent_for_token(creds.token)
            if agent is None:
                raise AuthError(
                    "unknown read token; get one with `steme keys token AGENT`", status=401
                )
            agents.append(agent)
        if creds.signature is not None:
            agents.append(self._signed_reader(creds))
        if agents:
            agent = agents[0]
            for other in (*agents[1:], claimed):
                if other is not None and other != agent:
                    raise AuthError(
                        f"this request's credentials belong to agent {agent!r}, not {other!r}",
                        status=403,
                    )
            return Asker(agent)
        if self.options.read_tokens:
            raise AuthError(
                "this server requires an authenticated read: send 'Authorization: Bearer "
                "<token>' (`steme keys token AGENT` makes one) or sign the request "
                "(X-Steme-Signature, docs/api.md)",
                status=401,
            )
        return Asker(ANONYMOUS, claimed)

    def _signed_reader(self, creds: Credentials) -> str:
        """The agent whose registered key signed this read (fresh, and not seen before)."""
        assert creds.signature is not None
        try:
            public_key, at_text, signature = creds.signature.split(".")
            signed_at = int(at_text)
            message = read_message(creds.method, creds.path, creds.payload, signed_at)
            VerifyKey(bytes.fromhex(public_key)).verify(message, bytes.fromhex(signature))
        except (ValueError, TypeError, BadSignatureError) as exc:
            raise AuthError(
                f"{READ_SIGNATURE_HEADER} does not verify for this request ({exc}); sign "
                "'steme_lake/read/v1' LF method LF path LF BLAKE3(body or query string) LF "
                "signed_at as docs/api.md says, and send <public key>.<signed_at>.<signature>",
                status=401,
            ) from None
        owner = self.registry.agent_of(public_key)
        if owner is None:
            raise AuthError(
                f"key {public_key[:16]}... is not registered to any agent (or was revoked)",
                status=403,
            )
        now = now_us()
        max_age = int(self.lake.options.signature_max_age_seconds * 1e6)
        ahead = int(self.lake.options.max_future_seconds * 1e6)
        if not now - max_age <= signed_at <= now + ahead:
            raise AuthError(
                f"this signed read is stale or from the future (signed_at {signed_at}); "
                "sign each request when sending it",
                status=401,
            )
        with self._reads_lock:
            if len(self._seen_reads) > 4096:
                self._seen_reads = {k: t for k, t in self._seen_reads.items() if t >= now}
            if signature in self._seen_reads:
                raise AuthError("this signed read was sent before: a replay", status=401)
            self._seen_reads[signature] = signed_at + max_age
        return owner

    def _writer(self, agent: str, signatures: Sequence[SignatureIn]) -> list[dict[str, Any]]:
        """Check the signatures speak for ``agent``; the lake then verifies them."""
        sigs = [s.model_dump() for s in signatures]
        if not self.options.require_signatures:
            return sigs
        if not sigs:
            raise AuthError(
                f"this write needs a signature by agent {agent!r}'s registered key; see "
                "docs/api.md 'Signing a write' (steme_lake.client.Client signs for you, and "
                "any httpx client does with auth=steme_lake.client.SigningAuth)",
                status=401,
            )
        owners = [self.registry.agent_of(s["public_key"]) for s in sigs]
        for sig, owner in zip(sigs, owners, strict=True):
            if owner is None:
                raise AuthError(
                    f"key {sig['public_key'][:16]}... is not registered to any agent "
                    "(or was revoked); register it with `steme keys register AGENT KEY`",
                    status=403,
                )
        if agent not in owners:
            raise AuthError(
                f"no signature by agent {agent!r}'s key: the keys sent belong to "
                f"{sorted({o for o in owners if o})!r}; an agent can only write as itself",
                status=403,
            )
        return sigs

    # ------------------------------------------------------------ writes

    def _signing(
        self, agent: str | None, signatures: Sequence[SignatureIn], sign_with: AgentKey | None
    ) -> dict[str, Any]:
        """The lake's signing arguments: the request's checked signatures, or the
        server's own key for the agent it speaks for (MCP)."""
        if agent is None:
            raise ValidationError(
                "agent: say which agent writes this (the signing hook, "
                "steme_lake.client.SigningAuth, fills it in for its agent)"
            )
        if sign_with is not None:
            return {"sign_with": [sign_with]}
        return {"signatures": self._writer(agent, signatures) or None}

    def assert_(self, req: AssertIn, *, sign_with: AgentKey | None = None) -> dict[str, Any]:
        return self.run(self.assert_plan(req, sign_with=sign_with))

    def assert_plan(self, req: AssertIn, *, sign_with: AgentKey | None = None) -> Plan:
        """`assert_`, checked and ready to commit."""
        signing = self._signing(req.agent, req.signatures, sign_with)
        assert req.agent is not None  # `_signing` refuses a write without one
        source_hash = req.source_hash
        if req.source is not None:  # the server hashes the evidence it is given
            source_hash = source_hash_of(req.source)
        row = self.lake._assertion_row(
            req.subject,
            req.predicate,
            req.object,
            agent=req.agent,
            confidence=req.confidence,
            lifecycle=req.lifecycle,
            source_hash=source_hash,
            parent=req.parent_hash,
            epoch=req.epoch,
            visual_hash=req.visual_hash,
            meta=req.meta,
            **signing,
        )
        if not req.check_contradictions:
            return Plan([row], lambda ids: self._written(ids[0]))
        # what the claim contests, as the lake stood before it was written
        contested = self.lake.vectors.contradictions(req.subject, req.predicate, req.object)

        def finish(ids: list[str]) -> dict[str, Any]:
            return {**self._written(ids[0]), "contradictions": contested}

        return Plan([row], finish)

    # ------------------------------------------------------------ commits

    def run(self, plan: Plan) -> dict[str, Any]:
        """Commit one plan; its reply, as JSON-ready data."""
        out: dict[str, Any] = jsonable(plan.finish(self.lake._commit(plan.rows)))
        return out

    def run_many(self, plans: Sequence[Plan]) -> list[dict[str, Any] | StemeLakeError]:
        """Commit plans together (one fsync): each one's reply, or the error that
        refused it (the others still commit)."""
        results = self.lake._commit_each([p.rows for p in plans])
        return [
            r if isinstance(r, StemeLakeError) else _finished(p, r)
            for p, r in zip(plans, results, strict=True)
        ]

    def vote(self, req: VoteIn, *, sign_with: AgentKey | None = None) -> dict[str, Any]:
        signing = self._signing(req.agent, req.signatures, sign_with)
        assert req.agent is not None  # `_signing` refuses a write without one
        rid = self.lake.vote(
            req.hash,
            agent=req.agent,
            weight=req.weight,
            **signing,
        )
        return self._written(rid)

    def lifecycle(self, req: LifecycleIn, *, sign_with: AgentKey | None = None) -> dict[str, Any]:
        signing = self._signing(req.agent, req.signatures, sign_with)
        assert req.agent is not None  # `_signing` refuses a write without one
        rid = self.lake.set_lifecycle(
            req.hash,
            req.stage,
            agent=req.agent,
            reason=req.reason,
            **signing,
        )
        return self._written(rid)

    def supersede(self, req: SupersedeIn, *, sign_with: AgentKey | None = None) -> dict[str, Any]:
        signing = self._signing(req.agent, req.signatures, sign_with)
        assert req.agent is not None
        window = None
        if req.since is not None or req.until is not None:
            window = (req.since, req.until)
        rid = self.lake.supersede(
            req.hash,
            agent=req.agent,
            kind=req.kind,
            reason=req.reason,
            source=req.source,
            source_hash=req.source_hash,
            target_agent=req.target_agent,
            window=window,
            replacement=req.replacement,
            epoch=req.epoch,
            **signing,
        )
        return self._written(rid)

    def add_constraint(
        self, req: ConstraintAddIn, *, sign_with: AgentKey | None = None
    ) -> dict[str, Any]:
        signing = self._signing(req.agent, req.signatures, sign_with)
        assert req.agent is not None  # `_signing` refuses a write without one
        rid = self.lake.add_constraint(
            req.context,
            agent=req.agent,
            reason=req.reason,
            forbidden=req.forbidden,
            must_use=req.must_use,
            predicate=req.predicate,
            cites=req.cites,
            **signing,
        )
        return self._written(rid)

    def _written(self, rid: str) -> dict[str, Any]:
        return {"hash": rid, "success": True}

    # ------------------------------------------------------------ questions

    def query(self, req: QueryIn, asker: Asker) -> dict[str, Any]:
        return self.run(self.query_plan(req, asker))

    def query_plan(self, req: QueryIn, asker: Asker) -> Plan:
        """`query`, answered, with its audit record ready to commit."""
        agent = asker.agent
        answer, audit = self.lake._question(
            req.subject,
            req.predicate,
            agent=agent,
            audit_params=asker.audit_params,
            lens=req.lens,
            lifecycle=req.lifecycle,
            min_confidence=req.min_confidence,
            as_of=req.as_of,
            include_superseded=req.include_superseded,
        )

        def finish(ids: list[str]) -> dict[str, Any]:
            # A hot key can have thousands of candidates: send the best few, say how many.
            best = Candidates(answer.candidates).best(req.max_candidates)
            out = answer.to_dict(iso=False, candidates=best)  # datetimes: see `Plan`
            out["query_id"] = ids[0]
            out["candidate_count"] = len(answer.candidates)
            out["agent"] = agent
            return out

        return Plan([audit], finish)

    def search(self, req: SearchIn, asker: Asker) -> dict[str, Any]:
        """`lake.vectors.search`, audited as ``asker``."""
        found, query_id = self.lake.vectors._search(
            req.text, k=req.k, as_of=req.as_of, lifecycle=req.lifecycle, subject=req.subject,
            min_confidence=req.min_confidence, include_superseded=req.include_superseded,
            hybrid=req.hybrid, agent=asker.agent, audit_params=asker.audit_params,
        )  # fmt: skip
        return _obj({"query_id": query_id, "agent": asker.agent, "results": found})

    def check_constraints(self, req: ConstraintCheckIn, asker: Asker) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"predicate": req.predicate, "as_of": req.as_of}
        if req.proposed is not None:
            kwargs["proposed"] = req.proposed
        agent = asker.agent
        check = self.lake.check_constraints(
            req.context, agent=agent, _audit_params=asker.audit_params, **kwargs
        )
        out: dict[str, Any] = jsonable(check.to_dict())
        # The ADK tool shape: subject / must_use / forbidden / reason per constraint.
        for item in out["constraints"] + out["violations"]:
            item["subject"] = item["context"]
        out["agent"] = agent
        return out

    def trace(
        self, agent: str, since: str, until: str | None, subject: str | None
    ) -> dict[str, Any]:
        with _warn_lock, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", NoMatchWarning)
            frame = self.lake.trace(agent, since, until, subject=subject)
        queries = [
            {
                "query_id": r["query_id"],
                "timestamp": r["recorded_at"],
                "op": r["op"],
                "subject": r["subject"],
                "predicate": r["predicate"],
                "lens": r["lens"],
                "lifecycle_filter": r["lifecycle_filter"],
                "result": r["value"],
                "status": r["status"],
                "confidence": r["confidence"],
                "contributing_assertions": r["contributing"] or [],
                "winner": r["winner"],
            }
            for r in frame.to_dicts()
        ]
        return _obj(
            {
                "agent": agent,
                "queries": queries,
                "warnings": [str(w.message) for w in caught],
            }
        )

    def diff(
        self,
        since: str,
        until: str | None,
        subject: str | None,
        lens: str,
        lifecycle: str | None,
    ) -> dict[str, Any]:
        d = self.lake.diff(since, until, subject=subject, lens=lens, lifecycle=lifecycle)
        return _obj({"beliefs": d.beliefs, "records": d.records})

    def blame(
        self,
        subject: str,
        predicate: str,
        as_of: str | None,
        lens: str,
        lifecycle: str | None,
    ) -> dict[str, Any]:
        b = self.lake.blame(subject, predicate, as_of=as_of, lens=lens, lifecycle=lifecycle)
        return _obj(
            {
                "answer": b.answer.to_dict(),
                "assertion": b.assertion,
                "lifecycle": b.lifecycle,
                "votes": b.votes,
            }
        )

    def impact(self, assertion: str, until: str | None = None, depth: int = 3) -> dict[str, Any]:
        check_time_text("until", until)
        i = self.lake.impact(assertion, depth=depth, until=until)
        return _obj(
            {
                "hash": assertion,
                "depth": depth,
                "summary": i.summary,
                "queries": i.queries,
                "agents": i.agents,
                "assertions": i.assertions,
                "constraints": i.constraints,
                "votes": i.votes,
            }
        )

    def trust(
        self, topic: str | None, agent: str | None, as_of: str | None, top: int | None
    ) -> dict[str, Any]:
        """The Gardener's stored scores (``topic``, ``top`` per topic) or, with ``agent``
        and ``topic``, why that agent has its score there."""
        check_time_text("as_of", as_of)
        if agent is not None:
            if topic is None:
                raise ValidationError("explaining an agent's trust needs its topic ('' for global)")
            why = self.lake.trust.explain(agent, topic, as_of=as_of)
            return _obj({"agent": agent, "topic": topic, "explain": why})
        scores = self.lake.trust.scores(topic=topic, as_of=as_of)
        if top is not None:
            scores = scores.filter(pl.col("rank") <= top)
        return _obj({"topic": topic, "scores": scores})

    # ------------------------------------------------------------ the Dojo

    def dojo_stats(self, params: dict[str, Any]) -> dict[str, Any]:
        """How many samples of each kind each split would get."""
        return _obj({"stats": self.lake.dojo.stats(**_given(params))})

    def dojo_samples(self, params: dict[str, Any], limit: int) -> dict[str, Any]:
        """The first ``limit`` samples (prompt, chosen, rejected, provenance), and
        whether there are more (mining stops there: a preview of a big lake)."""
        samples = self.lake.dojo.samples(**_given(params), limit=limit + 1)
        return _obj({"more": samples.height > limit, "samples": samples.head(limit)})

    def dojo_export(
        self, path: str, params: dict[str, Any], *, overwrite: bool, openai: bool
    ) -> dict[str, Any]:
        """Export to ``path`` under the server's export folder; the summary."""
        root = self.options.export_root
        if root is None:
            raise ValidationError(
                "this server writes no Dojo exports: start it with --export-root FOLDER "
                "(or export from Python or the CLI: steme dojo export)"
            )
        if Path(path).is_absolute():
            raise ValidationError(
                f"export path {path!r} must be relative to the server's export folder"
            )
        manifest = self.lake.dojo.export(
            Path(root) / path, overwrite=overwrite, openai=openai, _root=root,
            **_given(params),
        )  # fmt: skip
        from steme_lake.dojo._export import summary as summarise

        summary = summarise(manifest)
        return _obj({"path": path, "samples": int(summary["samples"].sum()), "summary": summary})

    def provenance(self, query_id: str) -> dict[str, Any]:
        return _obj({"query_id": query_id, "chain": self.lake.provenance(query_id)})

    def record(self, record_id: str) -> dict[str, Any]:
        record = self.lake.get(record_id)
        return _obj({"kind": type(record).__name__.lower(), "record": record.to_dict()})

    def health(self, token: str | None = None) -> dict[str, Any]:
        """Liveness for anyone; the lake's path and status only for a caller the
        server would let read (with ``read_tokens``: a valid token)."""
        if self.options.read_tokens and (
            token is None or self.registry.agent_for_token(token) is None
        ):
            return {"status": "ok", "version": steme_lake.__version__, "read_tokens": True}
        status = self.lake.status()
        return _obj(
            {
                "status": "ok",
                "version": steme_lake.__version__,
                "lake": str(self.lake.path),
                "require_signatures": self.options.require_signatures,
                "read_tokens": self.options.read_tokens,
                "agents_registered": len(self.registry),
                "lake_status": status.to_dict(),
            }
        )


def _finished(plan: Plan, ids: list[str]) -> dict[str, Any] | StemeLakeError:
    """A committed plan's reply; a failure to make it is that request's alone."""
    try:
        return plan.finish(ids)
    except StemeLakeError as exc:
        return exc
    except Exception as exc:
        log.exception("unexpected error making a reply")
        return InternalError.wrap(exc, "the reply to this request (it was committed)")


def check_time_text(name: str, value: str | None) -> None:
    """Refuse over-long time text early (the lake parses and explains the rest)."""
    if value is not None and len(value) > 64:
        raise ValidationError(f"{name} is too long to be a time: {TIME_HELP_SHORT}")


TIME_HELP_SHORT = "use ISO-8601 (2024-01-15T21:00:00Z) or relative text such as -6h"
