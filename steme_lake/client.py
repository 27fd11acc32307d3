"""A small Python client for the HTTP API that signs every write for its agent.

The client holds one agent's key (from the encrypted wallet, or an `AgentKey`)
and signs each write's content id with the current time before sending it
(see ``docs/api.md``, "Signing a write"). Errors come back as the package's
own exceptions: `ValidationError` for bad input, `UnknownRecordError` for a
404, `AuthError` for 401/403, `ApiError` otherwise, and
`ServerConnectionError` when no answer came (server down, connection broken,
timeout).

Usage (against a running ``steme serve``)::

    from steme_lake.client import Client

    with Client.from_wallet("http://127.0.0.1:8750", "research-agent") as c:
        h = c.assert_("auth/jwt", "signing_algorithm", "ES256", confidence=0.87,
                      source="https://rfc-editor.org/rfc/rfc7518")
        c.query("auth/jwt", "signing_algorithm", lifecycle="approved")["value"]
"""

from __future__ import annotations

import json as _json
import os
from collections.abc import Mapping
from typing import Any

from steme_lake._exceptions import (
    ApiError,
    AuthError,
    OutOfOrderError,
    ServerConnectionError,
    SignatureError,
    UnknownRecordError,
    ValidationError,
)
from steme_lake._utils.extras import require
from steme_lake._utils.timeparse import TimeLike, now_us, to_us, us_to_iso
from steme_lake.keys import Wallet
from steme_lake.lake import _rows as rows
from steme_lake.model.ids import source_hash_of
from steme_lake.model.signing import READ_SIGNATURE_HEADER, AgentKey

__all__ = ["Client", "SigningAuth"]

_BY_TYPE: dict[str, type[Exception]] = {
    "UnknownRecordError": UnknownRecordError,
    "SignatureError": SignatureError,
    "OutOfOrderError": OutOfOrderError,
}


def _time_text(value: TimeLike | None) -> str | None:
    # Relative times ("-6h") are fixed here, so client and server hash the same content.
    return None if value is None else us_to_iso(to_us(value))


# The requests that write (a question writes only its own audit record).
_WRITES = frozenset({"/assert", "/vote", "/lifecycle", "/supersede", "/constraints"})


class Client:
    """An agent's connection to a steme_lake server.

    Parameters
    ----------
    base_url
        E.g. ``http://127.0.0.1:8750``.
    agent
        The agent this client speaks for (writes are signed as it; questions
        are audited as it).
    key
        The agent's `AgentKey`; without one, writes go unsigned (accepted only
        by a server started with ``--no-auth``).
    token
        A read token (``steme keys token AGENT``) for servers that require one.
    timeout
        Seconds per request.
    http
        A ready ``httpx.Client`` to send through (e.g. FastAPI's ``TestClient``
        for in-process tests); ``base_url`` and ``token`` are then ignored.
    """

    def __init__(
        self,
        base_url: str,
        agent: str,
        *,
        key: AgentKey | None = None,
        token: str | None = None,
        timeout: float = 30.0,
        http: Any = None,
    ) -> None:
        self.agent = agent
        self.key = key
        httpx = require("httpx", extra="api", purpose="the HTTP client")
        self._httpx = httpx
        if http is not None:
            self._http = http
            return
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout)

    @classmethod
    def from_wallet(
        cls,
        base_url: str,
        agent: str,
        *,
        passphrase: str | None = None,
        wallet: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> Client:
        """Unlock ``agent``'s key from the wallet (passphrase or ``$STEME_WALLET_PASSPHRASE``)."""
        key = Wallet(wallet).unlock(agent, passphrase=passphrase)
        return cls(base_url, agent, key=key, **kwargs)

    # ------------------------------------------------------------ plumbing

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(
        self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None
    ) -> Any:
        clean = None if params is None else {k: v for k, v in params.items() if v is not None}
        try:
            if self.key is not None and path not in _WRITES:
                response = self._signed_read(method, path, json, clean)
            else:
                response = self._http.request(method, path, json=json, params=clean)
        except self._httpx.TransportError as exc:
            raise self._no_answer(method, path, exc) from exc
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text}
        if response.status_code < 400:
            return body
        message = body.get("error") if isinstance(body, dict) else str(body)
        status = response.status_code
        kind = body.get("type") if isinstance(body, dict) else None
        if kind in _BY_TYPE:
            raise _BY_TYPE[kind](message)
        if status in (401, 403):
            raise AuthError(str(message), status=status)
        if status == 404:
            raise UnknownRecordError(str(message))
        if status in (400, 409, 413, 422):
            raise ValidationError(str(message))
        raise ApiError(str(message), status=status)

    def _signed_read(
        self, method: str, path: str, body: Any, params: Mapping[str, Any] | None
    ) -> Any:
        """Send a read signed by the agent's key (``X-Steme-Signature``), so the
        server records it as this agent, not as an anonymous caller."""
        assert self.key is not None
        if method == "GET":
            query = str(self._httpx.QueryParams(params or {}))
            payload, target, headers = query.encode(), f"{path}?{query}" if query else path, {}
        else:
            payload = _json.dumps(body, separators=(",", ":")).encode()
            target, headers = path, {"content-type": "application/json"}
        headers[READ_SIGNATURE_HEADER] = self.key.sign_read(method, path, payload, now_us())
        return self._http.request(method, target, content=payload or None, headers=headers)

    def _no_answer(self, method: str, path: str, exc: Exception) -> ServerConnectionError:
        """What a request that got no answer means, and what to do about it."""
        where = f"the steme server at {self._http.base_url}"
        detail = str(exc) or type(exc).__name__
        if isinstance(exc, self._httpx.ConnectError | self._httpx.ConnectTimeout):
            return ServerConnectionError(
                f"{method} {path}: cannot connect to {where} ({detail}); is `steme serve` "
                "running there? Nothing was sent.",
                sent=False,
            )
        if isinstance(exc, self._httpx.TimeoutException):
            what = f"no answer from {where} in time ({detail}); raise Client(timeout=...)"
        else:
            what = f"the connection to {where} broke before its answer ({detail})"
        if method == "POST" and path in _WRITES:
            what += (
                "; the write may or may not have been committed: look for it (e.g. "
                "Client.trace or blame) before writing it again"
            )
        return ServerConnectionError(f"{method} {path}: {what}", sent=True)

    def _write(self, path: str, body: dict[str, Any]) -> str:
        """Send a write, signed (with a key) as `SigningAuth` signs it; its id."""
        if self.key is not None:
            body = SigningAuth(self.agent, self.key).sign_body(path, body)
        return str(self._call("POST", path, json=body)["hash"])

    # ------------------------------------------------------------ writes

    def assert_(
        self,
        subject: str,
        predicate: str,
        object: Any,
        *,
        confidence: float = 1.0,
        lifecycle: str = "proposed",
        source: str | bytes | None = None,
        source_hash: str | None = None,
        parent: str | None = None,
        epoch: str | None = None,
        visual_hash: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> str:
        """Store an assertion; return its id (the ``hash``) once the server made it durable."""
        if source is not None:
            if source_hash is not None:
                raise ValidationError("pass either source= or source_hash=, not both")
            source_hash = source_hash_of(source)
        body = {
            "subject": subject,
            "predicate": predicate,
            "object": object,
            "source_hash": source_hash,
            "confidence": float(confidence),
            "lifecycle": lifecycle,
            "parent_hash": parent,
            "epoch": epoch,
            "visual_hash": visual_hash,
            "meta": meta,
            "agent": self.agent,
        }
        return self._write("/assert", body)

    def vote(self, target: str, *, weight: float = 1.0) -> str:
        """Vote on an assertion; return the vote's id."""
        body = {"hash": target, "weight": float(weight), "agent": self.agent}
        return self._write("/vote", body)

    def set_lifecycle(self, target: str, stage: str, *, reason: str | None = None) -> str:
        """Move an assertion to another lifecycle stage; return the change's id."""
        body = {"hash": target, "stage": stage, "reason": reason, "agent": self.agent}
        return self._write("/lifecycle", body)

    def supersede(
        self,
        target: str | None = None,
        *,
        kind: str,
        reason: str,
        source_hash: str | None = None,
        target_agent: str | None = None,
        window: tuple[TimeLike | None, TimeLike | None] | None = None,
        replacement: str | None = None,
        epoch: str | None = None,
    ) -> str:
        """Mark assertions superseded (``kind``: invalidate, refine, replace, paradigm_shift)."""
        start, end = (None, None) if window is None else window
        body = {
            "hash": target,
            "kind": kind,
            "reason": reason,
            "source_hash": source_hash,
            "target_agent": target_agent,
            "since": _time_text(start),
            "until": _time_text(end),
            "replacement": replacement,
            "epoch": epoch,
            "agent": self.agent,
        }
        return self._write("/supersede", body)

    def add_constraint(
        self,
        context: str,
        *,
        reason: str,
        forbidden: Any = None,
        must_use: Any = None,
        predicate: str | None = None,
        cites: str | None = None,
    ) -> str:
        """Store a constraint for a context; return its id."""
        body = {
            "context": context,
            "reason": reason,
            "forbidden": forbidden,
            "must_use": must_use,
            "predicate": predicate,
            "cites": cites,
            "agent": self.agent,
        }
        return self._write("/constraints", body)

    # ------------------------------------------------------------ questions

    def query(
        self,
        subject: str,
        predicate: str,
        *,
        lens: str = "recency",
        lifecycle: str | None = None,
        min_confidence: float | None = None,
        as_of: TimeLike | None = None,
        include_superseded: bool = False,
    ) -> dict[str, Any]:
        """Ask through a lens; the answer has ``value``, ``confidence``, ``query_id``, ..."""
        body = {
            "subject": subject,
            "predicate": predicate,
            "lens": lens,
            "lifecycle": lifecycle,
            "min_confidence": min_confidence,
            "as_of": _time_text(as_of),
            "include_superseded": include_superseded,
            "agent": self.agent,
        }
        result: dict[str, Any] = self._call("POST", "/query", json=body)
        return result

    def check_constraints(
        self,
        context: str,
        *,
        proposed: Any = None,
        predicate: str | None = None,
        as_of: TimeLike | None = None,
    ) -> dict[str, Any]:
        """Pre-flight: the constraints in force for ``context``; ``ok`` is False on a violation."""
        body = {
            "context": context,
            "proposed": proposed,
            "predicate": predicate,
            "as_of": _time_text(as_of),
            "agent": self.agent,
        }
        result: dict[str, Any] = self._call("POST", "/constraints/check", json=body)
        return result

    def trace(
        self,
        agent: str,
        since: TimeLike,
        until: TimeLike | None = None,
        subject: str | None = None,
    ) -> dict[str, Any]:
        params = {"agent": agent, "since": _time_text(since), "until": _time_text(until)}
        result: dict[str, Any] = self._call("GET", "/trace", params={**params, "subject": subject})
        return result

    def diff(
        self,
        since: TimeLike,
        until: TimeLike | None = None,
        subject: str | None = None,
        *,
        lens: str = "recency",
        lifecycle: str | None = None,
    ) -> dict[str, Any]:
        params = {
            "since": _time_text(since),
            "until": _time_text(until),
            "subject": subject,
            "lens": lens,
            "lifecycle": lifecycle,
        }
        result: dict[str, Any] = self._call("GET", "/diff", params=params)
        return result

    def blame(
        self,
        subject: str,
        predicate: str,
        *,
        as_of: TimeLike | None = None,
        lens: str = "recency",
        lifecycle: str | None = None,
    ) -> dict[str, Any]:
        params = {
            "subject": subject,
            "predicate": predicate,
            "as_of": _time_text(as_of),
            "lens": lens,
            "lifecycle": lifecycle,
        }
        result: dict[str, Any] = self._call("GET", "/blame", params=params)
        return result

    def impact(
        self, assertion: str, *, depth: int = 3, until: TimeLike | None = None
    ) -> dict[str, Any]:
        params = {"hash": assertion, "until": _time_text(until), "depth": depth}
        result: dict[str, Any] = self._call("GET", "/impact", params=params)
        return result

    def provenance(self, query_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/provenance/{query_id}")
        return result

    def get(self, record_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/records/{record_id}")
        return result

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/health")
        return result


# ---------------------------------------------------------------- the signing hook


def _write_row(path: str, body: dict[str, Any]) -> tuple[dict[str, Any], rows.PendingRow]:
    """``body`` checked by the server's own model, and the record the server will
    make of it (whose content id the signature covers)."""
    from steme_lake.api import _models as m

    if path == "/assert":
        a = m.AssertIn.model_validate(body)
        row = rows.assertion_row(
            a.subject, a.predicate, a.object, agent=a.agent or "", confidence=a.confidence,
            lifecycle=a.lifecycle, source_hash=a.source_hash, parent=a.parent_hash,
            epoch=a.epoch, visual_hash=a.visual_hash, meta=a.meta,
        )  # fmt: skip
    elif path == "/vote":
        v = m.VoteIn.model_validate(body)
        row = rows.vote_row(v.hash, agent=v.agent or "", weight=v.weight)
    elif path == "/lifecycle":
        c = m.LifecycleIn.model_validate(body)
        row = rows.lifecycle_row(c.hash, c.stage, agent=c.agent or "", reason=c.reason)
    elif path == "/supersede":
        s = m.SupersedeIn.model_validate(body)
        window = None if s.since is None and s.until is None else (s.since, s.until)
        row = rows.supersession_row(
            s.hash, agent=s.agent or "", kind=s.kind, reason=s.reason,
            source_hash=s.source_hash, target_agent=s.target_agent, window=window,
            replacement=s.replacement, epoch=s.epoch,
        )  # fmt: skip
    else:
        k = m.ConstraintAddIn.model_validate(body)
        row = rows.constraint_row(
            k.context, agent=k.agent or "", reason=k.reason, forbidden=k.forbidden,
            must_use=k.must_use, predicate=k.predicate, cites=k.cites,
        )  # fmt: skip
    return body, row


class SigningAuth:
    """An httpx auth hook that makes any HTTP client write and read as one agent.

    Tools generated from the OpenAPI document (Google ADK's ``OpenAPIToolset``,
    openapi-python-client) send the fields a model filled in; no model can sign.
    This hook completes each write before it leaves: it fills ``agent``, turns
    ``source`` (evidence text or URL) into its ``source_hash`` and relative
    window times into absolute ones (so the signed content is what the server
    stores), and adds the agent's signature of the record's content id. Reads
    without a bearer token are signed (``X-Steme-Signature``) so the server
    audits them as this agent, not as ``anonymous``.

    Pass it as ``auth=`` to ``httpx.Client`` or ``httpx.AsyncClient``; for ADK,
    ``OpenAPIToolset(..., httpx_client_factory=auth.async_client_factory())``.

    Examples
    --------
    >>> from steme_lake import AgentKey
    >>> auth = SigningAuth("research-agent", AgentKey.generate())
    >>> body = auth.sign_body("/vote", {"hash": "ab" * 32})
    >>> body["agent"], len(body["signatures"])
    ('research-agent', 1)
    """

    def __init__(self, agent: str, key: AgentKey, *, sign_reads: bool = True) -> None:
        self.agent = agent
        self.key = key
        self.sign_reads = sign_reads

    @classmethod
    def from_wallet(
        cls, agent: str, *, passphrase: str | None = None, wallet: str | None = None
    ) -> SigningAuth:
        """The hook for ``agent``, its key unlocked from the wallet."""
        return cls(agent, Wallet(wallet).unlock(agent, passphrase=passphrase))

    def sign_body(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """The write ``body`` for ``path`` completed and signed (a new dict)."""
        if path not in _WRITES:
            raise ValidationError(f"{path} is not a write; writes are {sorted(_WRITES)}")
        body = {k: v for k, v in body.items() if v is not None}
        given = body.setdefault("agent", self.agent)
        if given != self.agent:
            raise AuthError(
                f"this hook signs for {self.agent!r}; the request writes as {given!r}",
                status=403,
            )
        if "source" in body:
            if "source_hash" in body:
                raise ValidationError("give source or source_hash, not both")
            body["source_hash"] = source_hash_of(body.pop("source"))
        for name in ("since", "until"):
            if path == "/supersede" and name in body:
                body[name] = _time_text(body[name])
        body.pop("signatures", None)
        body, row = _write_row(path, body)
        body["signatures"] = [self.key.sign_content(row.content_id(), now_us()).as_dict()]
        return body

    def __call__(self, request: Any) -> Any:
        """httpx's function-auth protocol: the request, signed."""
        httpx = require("httpx", extra="api", purpose="the signing hook")
        path = request.url.path
        headers = [(k, v) for k, v in request.headers.multi_items() if k != "content-length"]
        if request.method == "POST" and path in _WRITES:
            body = _json.loads(request.content or b"{}")
            if not isinstance(body, dict):
                return request  # the server refuses it, with the reason
            content = _json.dumps(self.sign_body(path, body), separators=(",", ":")).encode()
            return httpx.Request(
                request.method, request.url, headers=headers, content=content,
                extensions=request.extensions,
            )  # fmt: skip
        if self.sign_reads and "authorization" not in request.headers:
            payload = request.url.query if request.method == "GET" else request.content
            request.headers[READ_SIGNATURE_HEADER] = self.key.sign_read(
                request.method, path, payload, now_us()
            )
        return request

    def async_client_factory(self, **kwargs: Any) -> Any:
        """A zero-argument factory of ``httpx.AsyncClient`` signing with this hook
        (ADK's ``httpx_client_factory``; ``kwargs`` go to each client)."""
        httpx = require("httpx", extra="api", purpose="the signing hook")
        return lambda: httpx.AsyncClient(auth=self, **kwargs)
