"""The hot paths of the HTTP API (``POST /assert``, ``POST /query``) as plain ASGI.

Agents write and ask far more often than they do anything else. Through
FastAPI each of these requests paid for Starlette's middleware chain,
FastAPI's dependency solving and two thread-pool hops: more than half the
server's time, more than the lake's own work (py-spy, benchmarks/README.md).
Here the same request is read and handed to one worker thread, which takes
every request that arrived meanwhile as a batch: it validates each with the
same pydantic model, answers the questions, and commits all their records in
one group (one fsync, one frame), then replies to all. One thread does the
lake's work: eight request threads traded the GIL at every Polars and system
call, which cost more than the work itself (benchmarks/README.md).

The contract is FastAPI's, so clients cannot tell the paths apart: the same
request models, the same JSON error bodies and status codes (422 for schema
problems with ``loc`` starting at ``body``, 400 for a body too deeply nested
to parse, 413 for an oversized body), ``Cache-Control: no-store``. The
OpenAPI document still comes from the FastAPI routes, which stay registered
(and answer any other method or path). ``tests/api/test_http.py::TestHotPaths``
sends the same requests down both paths and requires identical answers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import email.message
import functools
import json
import logging
import queue
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from steme_lake._exceptions import StemeLakeError
from steme_lake.api._models import AssertIn, QueryIn, QueryParams, query_string_errors
from steme_lake.api._ops import Credentials, Operations, Plan, to_json
from steme_lake.model.signing import READ_SIGNATURE_HEADER

__all__ = ["HotPaths"]

log = logging.getLogger("steme_lake.api")

Handler = Callable[[Operations, BaseModel, Credentials], Plan]
Reply = tuple[int, bytes]
Route = tuple[type[BaseModel], Handler, int]
MAX_BATCH = 64  # requests the worker takes at once


def _assert(ops: Operations, body: BaseModel, creds: Credentials) -> Plan:
    assert isinstance(body, AssertIn)
    return ops.assert_plan(body)


def _query(ops: Operations, body: BaseModel, creds: Credentials) -> Plan:
    assert isinstance(body, QueryIn)
    return ops.query_plan(body, ops.reader(creds, body.agent))


def _query_get(ops: Operations, params: BaseModel, creds: Credentials) -> Plan:
    assert isinstance(params, QueryParams)
    body = QueryIn(**params.model_dump())  # as the FastAPI route builds it
    return ops.query_plan(body, ops.reader(creds, params.agent))


# path -> (request model, handler, status on success)
ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/assert"): (AssertIn, _assert, 201),
    ("POST", "/query"): (QueryIn, _query, 200),
    ("GET", "/query"): (QueryParams, _query_get, 200),  # parameters from the query string
}


encode = to_json
_GET_QUERY_NAMES = frozenset(QueryParams.model_fields)


def error_body(status: int, message: str, kind: str, **extra: Any) -> bytes:
    return encode({"success": False, "error": message, "type": kind, "status": status, **extra})


def schema_error(errors: list[dict[str, Any]]) -> Reply:
    """A 422 in FastAPI's shape (``loc`` from ``body``), worded as the framework path."""
    from steme_lake.api._http import _clean_errors, _schema_message  # one wording

    cleaned = _clean_errors(errors)
    return 422, error_body(422, _schema_message(cleaned), "RequestValidationError", detail=cleaned)


_NOT_AN_OBJECT = {
    "loc": ("body",),
    "msg": "Input should be a valid dictionary or object to extract fields from",
    "type": "model_attributes_type",
}


_JSON_TYPES: dict[bytes, bool] = {}  # content-type header -> is JSON (clients send few)


def _is_json(content_type: bytes | None) -> bool:
    if not content_type:
        return False
    known = _JSON_TYPES.get(content_type)
    if known is None:
        known = _parse_is_json(content_type)
        if len(_JSON_TYPES) < 256:
            _JSON_TYPES[content_type] = known
    return known


def _parse_is_json(content_type: bytes) -> bool:
    message = email.message.Message()
    message["content-type"] = content_type.decode("latin-1")
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


def _bearer(authorization: bytes | None) -> str | None:
    # As fastapi.security.HTTPBearer(auto_error=False): no header or another scheme
    # means no token.
    if not authorization:
        return None
    scheme, _, credentials = authorization.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not credentials:
        return None
    return credentials.strip()


_SIGNATURE = READ_SIGNATURE_HEADER.lower().encode()


def _credentials(raw: bytes, headers: dict[bytes, bytes]) -> Credentials:
    """A request's read token and signed-read header, with what the signature covers
    (the method and path are put in ``headers`` by the ASGI entry)."""
    signature = headers.get(_SIGNATURE)
    return Credentials(
        token=_bearer(headers.get(b"authorization")),
        signature=None if signature is None else signature.decode("latin-1").strip(),
        method=headers.get(b":method", b"").decode(),
        path=headers.get(b":path", b"").decode("latin-1"),
        payload=raw,
    )


class _Batches:
    """One thread that runs requests in batches: all that queued while it was busy,
    and, under load, the few about to arrive.

    Each batch ends in one fsync, which costs a query about as much as answering
    it, so a batch of eight costs a fifth less per request than two of four. Left
    alone, clients that wait for their answer settle into halves: while one half
    is served the other half's requests arrive, and the batches stay half the
    size they could be. So the worker counts how many requests were in the
    server at once during the last batch (the clients that are busy now) and
    waits, at most ``wait`` seconds, until that many have arrived. A lone client
    never waits (the count is one), and when a client goes away the wait times
    out once and the count follows (commit_delay and commit_siblings in
    PostgreSQL serve the same purpose)."""

    def __init__(
        self, run: Callable[[list[Any]], Sequence[Reply | Later[Reply]]], wait: float
    ) -> None:
        self._run = run
        self._wait = wait
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        # Requests handed in (by the event loop) and answered (by the worker): each
        # counter has one writer. ``_peak`` is the most in the server at once since
        # the current batch began.
        self._submitted = 0
        self._answered = 0
        self._peak = 0
        self.timed_out = 0  # batches whose wait ran out (a client went away)

    def submit(self, item: Any) -> asyncio.Future[Reply]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Reply] = loop.create_future()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                # The first request, or the worker died (see `_died`): a new one.
                self._thread = threading.Thread(
                    target=self._serve, name="steme-api-batches", daemon=True
                )
                self._thread.start()
            self._submitted += 1
            self._peak = max(self._peak, self._submitted - self._answered)
            self._queue.put((item, future, loop))
        return future

    def _gather(self, first: Any) -> tuple[list[Any], bool]:
        """``first`` and the requests queued behind it, waiting for as many as were in
        the server at once during the last batch; and whether the stop mark came."""
        want = min(MAX_BATCH, self._peak) if self._wait > 0 else 1
        self._peak = max(1, self._submitted - self._answered)
        batch = [first]
        deadline = time.monotonic() + self._wait
        while len(batch) < MAX_BATCH:
            try:
                if len(batch) >= want:
                    item = self._queue.get_nowait()
                else:
                    left = deadline - time.monotonic()
                    item = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
            except queue.Empty:
                if len(batch) < want:
                    self.timed_out += 1
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _serve(self) -> None:
        batch: list[Any] = []
        try:
            stop = False
            while not stop:
                first = self._queue.get()
                if first is None:
                    return
                batch, stop = self._gather(first)
                try:
                    replies = self._run([item for item, _, _ in batch])
                except Exception as exc:
                    log.exception("unexpected error in a batch of requests")
                    replies = [_internal(type(exc).__name__)] * len(batch)
                self._answered += len(batch)
                _deliver(batch, replies)
                batch = []
        except BaseException as exc:  # noqa: BLE001 - reported and answered in _died
            self._died(batch, exc)

    def _died(self, batch: list[Any], exc: BaseException) -> None:
        """The worker is dying of something no request caused: its requests, and
        those queued, are answered 500 at once (not left waiting for ever), and
        the next request starts a new worker."""
        log.critical("the batch worker stopped (%r); starting another", exc, exc_info=exc)
        with self._lock:  # no request is queued while the queue is drained
            if self._thread is threading.current_thread():
                self._thread = None
            stranded = list(batch)
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    stranded.append(item)
        self._answered += len(stranded)
        _deliver(stranded, [_internal(type(exc).__name__)] * len(stranded))

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()


Later = concurrent.futures.Future  # a reply still being made (a busy key's question)


def _deliver(batch: list[Any], replies: Sequence[Reply | Later[Reply]]) -> None:
    """Hand each reply to the event loop its request came from; a reply still
    being made is handed on when it is ready."""
    by_loop: dict[Any, list[tuple[asyncio.Future[Reply], Reply]]] = {}
    for entry, reply in zip(batch, replies, strict=True):
        if isinstance(reply, Later):
            reply.add_done_callback(functools.partial(_deliver_later, entry))
            continue
        _, future, loop = entry
        by_loop.setdefault(loop, []).append((future, reply))
    for loop, done in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits
            loop.call_soon_threadsafe(_resolve, done)


def _deliver_later(entry: Any, later: Later[Reply]) -> None:
    try:
        reply = later.result()
    except BaseException as exc:  # whatever stopped it, its request is answered 500
        log.error("a busy key's question failed", exc_info=exc)
        reply = _internal(type(exc).__name__)
    _deliver([entry], [reply])


def _resolve(done: list[tuple[asyncio.Future[Reply], Reply]]) -> None:
    for future, reply in done:
        if not future.done():  # a client that went away cancelled its future
            future.set_result(reply)


def _internal(kind: str) -> Reply:
    return 500, error_body(500, f"internal error ({kind}); see the server log", "Internal")


class HotPaths:
    """Serve ``POST /assert``, ``POST /query`` and ``GET /query`` directly; hand the rest
    to ``app``.

    ``ops`` returns the server's `Operations` (opened on first use);
    ``status_of`` maps the package's errors to HTTP statuses.
    """

    def __init__(
        self,
        app: Callable[[Any, Any, Any], Awaitable[None]],
        ops: Callable[[], Operations],
        status_of: Callable[[StemeLakeError], int],
        max_body_bytes: int,
        batch_wait: float = 0.001,
        busy_pool: concurrent.futures.Executor | None = None,
    ) -> None:
        self.app = app
        self.ops = ops
        self.status_of = status_of
        self.limit = max_body_bytes
        self._batches = _Batches(self._run_batch, batch_wait)
        # Questions about busy keys (thousands of assertions: milliseconds of Polars
        # each) are answered here, beside the batches, so that the other requests
        # of their batch are not kept waiting for them.
        self._own_busy = busy_pool is None
        self._busy = busy_pool or concurrent.futures.ThreadPoolExecutor(
            max_workers=2, thread_name_prefix="steme-api-busy-keys"
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        route = None
        if scope["type"] == "http":
            route = ROUTES.get((scope["method"], scope["path"]))
        if route is None:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        query = scope.get("query_string", b"")
        if scope["method"] == "GET":
            status, payload = 0, query
        elif query:  # a POST route takes no query parameters: none is ignored
            items = urllib.parse.parse_qsl(query.decode("latin-1"), keep_blank_values=True)
            status, payload = schema_error(query_string_errors(items, ()))
            if not items:
                status, payload = await self._read(headers, receive)
        else:
            status, payload = await self._read(headers, receive)
        if status == 0:
            headers[b":method"], headers[b":path"] = (
                scope["method"].encode(),
                scope["path"].encode(),
            )
            status, payload = await self._batches.submit((route, payload, headers))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _read(self, headers: dict[bytes, bytes], receive: Any) -> Reply:
        """The request body (status 0), or the error reply that refuses it."""
        too_large = (
            413,
            error_body(
                413,
                f"request body too large (limit {self.limit} bytes); split the request",
                "BodyTooLarge",
            ),
        )
        try:
            declared = int(headers.get(b"content-length", b"0"))
        except ValueError:
            declared = 0
        if declared > self.limit:
            return too_large
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return 400, error_body(400, "the client went away mid-request", "Disconnected")
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.limit:
                return too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                return 0, b"".join(chunks)

    def _run_batch(
        self, items: list[tuple[Route, bytes, dict[bytes, bytes]]]
    ) -> list[Reply | concurrent.futures.Future[Reply]]:
        """Check and plan each request, commit all the plans in one group, reply. A
        question about a busy key goes to the busy-key pool: its reply is a future."""
        replies: list[Reply | concurrent.futures.Future[Reply] | None] = []
        plans: list[tuple[int, Plan, int]] = []  # reply slot, plan, status on success
        lake = self.ops().lake
        with lake._batch_reads():
            for route, raw, headers in items:
                try:
                    planned = self._plan(lake, route, raw, headers)
                except Exception as exc:  # one request's bug is its own 500, not the batch's
                    log.exception("unexpected error reading a request")
                    planned = _internal(type(exc).__name__)
                if isinstance(planned, Plan):
                    plans.append((len(replies), planned, route[2]))
                    replies.append(None)
                else:
                    replies.append(planned)
        for slot, reply in zip((slot for slot, _, _ in plans), self._commit(plans), strict=True):
            replies[slot] = reply
        return [reply if reply is not None else _internal("NoReply") for reply in replies]

    def _plan(
        self, lake: Any, route: Route, raw: bytes, headers: dict[bytes, bytes]
    ) -> Plan | Reply | concurrent.futures.Future[Reply]:
        """One request checked and planned; or its refusal; or, for a question about
        a busy key, the future of its reply from the busy-key pool."""
        parsed = self._parse(route, raw, headers)
        if isinstance(parsed, tuple):  # refused
            return parsed
        if isinstance(parsed, QueryIn | QueryParams) and lake._is_busy(
            parsed.subject, parsed.predicate
        ):
            with contextlib.suppress(RuntimeError):  # the pool is shut down: answer it here
                return self._busy.submit(self._alone, route, parsed, _credentials(raw, headers))
        return self._handled(route[1], parsed, _credentials(raw, headers))

    def _commit(self, plans: list[tuple[int, Plan, int]]) -> list[Reply]:
        """Commit the plans in one group (one fsync); each one's reply."""
        if not plans:
            return []
        try:
            results = self.ops().run_many([plan for _, plan, _ in plans])
        except StemeLakeError as exc:
            results = [exc] * len(plans)
        return [
            self._refused(result) if isinstance(result, StemeLakeError) else (ok, encode(result))
            for (_, _, ok), result in zip(plans, results, strict=True)
        ]

    def _alone(self, route: Route, parsed: BaseModel, creds: Credentials) -> Reply:
        """One request answered and committed on its own (in the busy-key pool)."""
        planned = self._handled(route[1], parsed, creds)
        if not isinstance(planned, Plan):
            return planned
        (reply,) = self._commit([(0, planned, route[2])])
        return reply

    def _refused(self, exc: StemeLakeError) -> Reply:
        status = self.status_of(exc)
        if status >= 500:
            log.error("request POST failed: %s", exc)
        return status, error_body(status, str(exc), type(exc).__name__)

    def _parse_get(self, query: bytes) -> BaseModel | Reply:
        # As Starlette reads a query string: blank values kept, the last of a repeated
        # name wins; FastAPI then validates each parameter, ``loc`` from ``query``.
        items = urllib.parse.parse_qsl(query.decode("latin-1"), keep_blank_values=True)
        refused = query_string_errors(items, _GET_QUERY_NAMES)
        if refused:
            return schema_error(refused)
        params = dict(items)
        try:
            return QueryParams.model_validate(params)
        except PydanticValidationError as exc:
            return schema_error([{**e, "loc": ("query", *e.get("loc", ()))} for e in exc.errors()])

    def _handled(self, handler: Handler, body: BaseModel, creds: Credentials) -> Plan | Reply:
        try:
            return handler(self.ops(), body, creds)
        except PydanticValidationError as exc:
            return schema_error([dict(e) for e in exc.errors()])
        except StemeLakeError as exc:
            return self._refused(exc)
        except Exception as exc:
            log.exception("unexpected error in a request")
            return _internal(type(exc).__name__)

    def _parse(self, route: Route, raw: bytes, headers: dict[bytes, bytes]) -> BaseModel | Reply:
        """The request's body (or query string) checked against its model, or the
        reply that refuses it."""
        model, _, _ = route
        if model is QueryParams:
            return self._parse_get(raw)
        if not raw:
            return schema_error([{"loc": ("body",), "msg": "Field required", "type": "missing"}])
        if not _is_json(headers.get(b"content-type")):
            return schema_error([_NOT_AN_OBJECT])
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            return schema_error(
                [
                    {
                        "loc": ("body", exc.pos),
                        "msg": "JSON decode error",
                        "type": "json_invalid",
                        "ctx": {"error": exc.msg},
                    }
                ]
            )
        except (RecursionError, ValueError):
            return 400, error_body(400, "There was an error parsing the body", "HTTPException")
        if not isinstance(data, dict):
            return schema_error([_NOT_AN_OBJECT])
        try:
            return model.model_validate(data)
        except PydanticValidationError as exc:
            return schema_error([{**e, "loc": ("body", *e.get("loc", ()))} for e in exc.errors()])

    def close(self) -> None:
        """Stop the worker thread and the busy-key pool (after the server stopped
        taking requests); the requests they hold are answered first."""
        self._batches.close()
        if self._own_busy:
            self._busy.shutdown(wait=True)
