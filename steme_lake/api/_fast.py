"""The hot paths of the HTTP API (``POST /assert``, ``POST /query``) as plain ASGI.

Agents write and ask far more often than they do anything else. Through
FastAPI each of these requests paid for Starlette's middleware chain,
FastAPI's dependency solving and two thread-pool hops: more than half the
server's time, more than the lake's own work (py-spy, benchmarks/README.md).
Here the same request is read, validated with the same pydantic model,
executed and serialized in one worker-thread call.

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
import email.message
import json
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from steme_lake._exceptions import StemeLakeError
from steme_lake.api._models import AssertIn, QueryIn
from steme_lake.api._ops import Operations, to_json

__all__ = ["HotPaths"]

log = logging.getLogger("steme_lake.api")

Handler = Callable[[Operations, BaseModel, str | None], dict[str, Any]]
Reply = tuple[int, bytes]


def _assert(ops: Operations, body: BaseModel, token: str | None) -> dict[str, Any]:
    assert isinstance(body, AssertIn)
    return ops.assert_(body)


def _query(ops: Operations, body: BaseModel, token: str | None) -> dict[str, Any]:
    assert isinstance(body, QueryIn)
    return ops.query(body, ops.reader(token, body.agent))


# path -> (request model, handler, status on success)
ROUTES: dict[str, tuple[type[BaseModel], Handler, int]] = {
    "/assert": (AssertIn, _assert, 201),
    "/query": (QueryIn, _query, 200),
}


encode = to_json


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


def _is_json(content_type: bytes | None) -> bool:
    if not content_type:
        return False
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


class HotPaths:
    """Serve ``POST /assert`` and ``POST /query`` directly; hand the rest to ``app``.

    ``ops`` returns the server's `Operations` (opened on first use);
    ``status_of`` maps the package's errors to HTTP statuses.
    """

    def __init__(
        self,
        app: Callable[[Any, Any, Any], Awaitable[None]],
        ops: Callable[[], Operations],
        status_of: Callable[[StemeLakeError], int],
        max_body_bytes: int,
        threads: int = 32,
    ) -> None:
        self.app = app
        self.ops = ops
        self.status_of = status_of
        self.limit = max_body_bytes
        self.threads = threads
        self._pool: ThreadPoolExecutor | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        route = None
        if scope["type"] == "http" and scope["method"] == "POST":
            route = ROUTES.get(scope["path"])
        if route is None:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        status, payload = await self._read(headers, receive)
        if status == 0:
            if self._pool is None:
                # Blocking lake calls run here; enough threads for concurrent writes
                # to share one fsync.
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="steme-api")
            loop = asyncio.get_running_loop()
            status, payload = await loop.run_in_executor(
                self._pool, self._run, route, payload, headers
            )
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

    def _run(
        self,
        route: tuple[type[BaseModel], Handler, int],
        raw: bytes,
        headers: dict[bytes, bytes],
    ) -> Reply:
        model, handler, ok = route
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
            body = model.model_validate(data)
            return ok, encode(handler(self.ops(), body, _bearer(headers.get(b"authorization"))))
        except PydanticValidationError as exc:
            return schema_error([{**e, "loc": ("body", *e.get("loc", ()))} for e in exc.errors()])
        except StemeLakeError as exc:
            status = self.status_of(exc)
            if status >= 500:
                log.error("request POST failed: %s", exc)
            return status, error_body(status, str(exc), type(exc).__name__)
        except Exception as exc:
            log.exception("unexpected error in a POST")
            return 500, error_body(
                500, f"internal error ({type(exc).__name__}); see the server log", "Internal"
            )

    def close(self) -> None:
        """Stop the worker threads (after the server stopped taking requests)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
