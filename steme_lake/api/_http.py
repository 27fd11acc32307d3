"""The HTTP API (FastAPI): the ADK-Go tool shapes over one lake.

FastAPI because it derives the OpenAPI document and the request validation
from one set of pydantic models (which the MCP tools share), runs blocking
handlers in a thread pool (the lake's group commit then shares one fsync
between concurrent writes), and is what agent developers already know.

Every error is JSON: ``{"success": false, "error": "<what to fix>", "type":
"<exception>", "status": <code>}``. Bad input is always a 4xx.
"""

from __future__ import annotations

import functools
import gc
import logging
from contextlib import asynccontextmanager
from pathlib import Path as PathLib
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError as PydanticValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

import steme_lake
from steme_lake._exceptions import (
    AuthError,
    FrameTooLargeError,
    KeyStoreError,
    LakeClosedError,
    OutOfOrderError,
    SignatureError,
    StemeLakeError,
    UnknownRecordError,
    ValidationError,
    WalFailedError,
)
from steme_lake.api._fast import HotPaths
from steme_lake.api._models import (
    HEX64,
    LENS_HELP,
    LIFECYCLE_HELP,
    TIME_HELP,
    AssertIn,
    ConstraintAddIn,
    ConstraintCheckIn,
    DojoExportIn,
    Lens,
    LifecycleIn,
    QueryIn,
    SearchIn,
    Stage,
    SupersedeIn,
    VoteIn,
    query_string_errors,
)
from steme_lake.api._openapi import ERRORS, document
from steme_lake.api._ops import Credentials, Operations, ServerOptions, to_json
from steme_lake.api._out import (
    BlameOut,
    CheckOut,
    DiffOut,
    DojoExportOut,
    DojoSamplesOut,
    DojoStatsOut,
    HealthOut,
    ImpactOut,
    ProvenanceOut,
    QueryOut,
    RecordOut,
    SearchOut,
    TraceOut,
    TrustOut,
    WriteOut,
)
from steme_lake.lake import Lake
from steme_lake.lake._impact import MAX_DEPTH
from steme_lake.model.signing import READ_SIGNATURE_HEADER

__all__ = ["app_from_env", "create_app", "status_of"]

log = logging.getLogger("steme_lake.api")

_bearer = HTTPBearer(auto_error=False, description="a registered agent's read token")
Creds = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def _credentials(request: Request, creds: Creds) -> Credentials:
    """The request's read token and signed-read header, with what the signature
    covers: the method, the path and the raw body (the query string for GET)."""
    payload = request.scope.get("query_string", b"")
    if request.method != "GET":
        payload = await request.body()
    return Credentials(
        token=None if creds is None else creds.credentials,
        signature=request.headers.get(READ_SIGNATURE_HEADER),
        method=request.method,
        path=request.url.path,
        payload=payload,
    )


Auth = Annotated[Credentials, Depends(_credentials)]


def _query_names(route: APIRoute) -> frozenset[str]:
    names = getattr(route, "_steme_query_names", None)
    if names is None:
        names = frozenset(_declared(route.dependant))
        route._steme_query_names = names  # type: ignore[attr-defined]
    return names


def _declared(dependant: Dependant) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _declared(sub)
    return names


def strict_query(request: Request) -> None:
    """Refuse query parameters the route does not declare, or gives twice (a typo
    such as ``lifecyle`` must never silently drop a filter), naming the close match.
    A dependency of every route, solved before the route's own parameters."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    errors = query_string_errors(request.query_params.multi_items(), _query_names(route))
    if errors:
        raise RequestValidationError(errors)


TimeText = Annotated[str, Query(min_length=1, max_length=64, description=TIME_HELP)]
OptTimeText = Annotated[str | None, Query(min_length=1, max_length=64, description=TIME_HELP)]
PathText = Annotated[str, Query(min_length=1, max_length=4096)]
OptPathText = Annotated[
    str | None, Query(min_length=1, max_length=4096, description="a path or a glob: auth/*")
]
AgentQ = Annotated[str | None, Query(min_length=1, max_length=256)]
KindsQ = Annotated[
    str | None, Query(max_length=1024, description="Dojo sample kinds, comma-separated (all)")
]


def status_of(exc: StemeLakeError) -> int:
    """The HTTP status for an error the package raised on purpose."""
    if isinstance(exc, AuthError):
        return exc.status
    if isinstance(exc, SignatureError):
        return 401
    if isinstance(exc, UnknownRecordError):
        return 404
    if isinstance(exc, OutOfOrderError):
        return 409
    if isinstance(exc, FrameTooLargeError):
        return 413
    if isinstance(exc, ValidationError):
        return 400
    if isinstance(exc, LakeClosedError | WalFailedError | KeyStoreError):
        return 503
    return 500


class FastJSON(JSONResponse):
    """Our handlers return plain JSON data already (`jsonable`): skip FastAPI's
    encoder pass over it and serialize once."""

    def render(self, content: Any) -> bytes:
        return to_json(content)


def _ok(data: dict[str, Any], status: int = 200) -> Response:
    return FastJSON(data, status_code=status)


def _error(status: int, message: str, kind: str, **extra: Any) -> JSONResponse:
    body = {"success": False, "error": message, "type": kind, "status": status, **extra}
    return JSONResponse(body, status_code=status)


def _schema_message(errors: list[dict[str, Any]]) -> str:
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


def _clean_errors(errors: Any) -> list[dict[str, Any]]:
    # Drop the offending input: it may be huge, or hold NaN, which JSON cannot carry.
    out = []
    for e in errors:
        loc, msg = [str(p) for p in e.get("loc", ())], str(e.get("msg"))
        if loc == ["body"] and e.get("type") == "model_attributes_type":
            msg = "send one JSON object, with 'Content-Type: application/json'"
        if e.get("type") == "json_invalid":
            detail = (e.get("ctx") or {}).get("error", "")
            loc, msg = ["body"], f"the body is not valid JSON: {detail} (at character {loc[-1]})"
        out.append({"loc": loc, "msg": msg, "type": e.get("type")})
    return out


class _BodyTooLarge(StarletteHTTPException):
    # An HTTPException, so that FastAPI's body reader lets it through to our handler.
    def __init__(self) -> None:
        super().__init__(status_code=413, detail="request body too large")


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with a JSON 413, before parsing;
    mark every response ``Cache-Control: no-store``. Plain ASGI: Starlette's
    ``BaseHTTPMiddleware`` costs more than the lake's own work per request."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        try:
            declared = int(headers.get(b"content-length", b"0"))
        except ValueError:
            declared = 0
        if declared > self.limit:
            await self._refuse(send)
            return
        seen = 0
        started = False

        async def counted() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _BodyTooLarge
            return message

        async def tracking(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                # Answers are facts as of now: never cache them.
                message["headers"] = [*message.get("headers", ()), (b"cache-control", b"no-store")]
            await send(message)

        try:
            await self.app(scope, counted, tracking)
        except _BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Any) -> None:
        response = _error(
            413,
            f"request body too large (limit {self.limit} bytes); split the request",
            "BodyTooLarge",
        )
        response.headers["cache-control"] = "no-store"
        await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> dict[str, Any]:
    return {"type": "http.disconnect"}


_DOCS_ASSETS = "/docs-assets"


def _offline_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` from the assets fastapi-offline ships,
    so the pages work on a machine with no internet (at 3 a.m., behind a firewall)."""
    import fastapi_offline
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    static = PathLib(fastapi_offline.__file__).parent / "static"
    app.mount(_DOCS_ASSETS, StaticFiles(directory=static), name="docs-assets")
    openapi = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi,
            title=f"{app.title}: Swagger UI",
            swagger_js_url=f"{_DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{_DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{_DOCS_ASSETS}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi,
            title=f"{app.title}: ReDoc",
            redoc_js_url=f"{_DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{_DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )


class _Server(FastAPI):
    """FastAPI with the hot paths (`_fast.HotPaths`) in front of its middleware."""

    hot: HotPaths | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.hot is not None:
            await self.hot(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(
    lake: Lake | str,
    options: ServerOptions | None = None,
    *,
    close_lake: bool | None = None,
    freeze_gc: bool = False,
) -> FastAPI:
    """The FastAPI application serving ``lake`` (an open `Lake` or a lake path).

    A path is opened when the app starts and closed when it stops; an open
    `Lake` is left open unless ``close_lake=True``. ``freeze_gc`` (for a process
    that only serves, as ``steme serve``'s) freezes what exists once the lake is
    open, out of the garbage collector's reach (`gc.freeze`).
    """
    options = options or ServerOptions()
    state: dict[str, Operations] = {}
    owns = isinstance(lake, str) if close_lake is None else close_lake

    def ops() -> Operations:
        if "ops" not in state:
            state["ops"] = Operations(
                steme_lake.open(lake) if isinstance(lake, str) else lake, options
            )
        return state["ops"]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        ops()
        if freeze_gc:
            _freeze_startup_objects()
        yield
        if isinstance(app, _Server) and app.hot is not None:
            app.hot.close()
        if owns and "ops" in state:
            state["ops"].lake.close()

    app = _Server(
        title="steme_lake",
        version=steme_lake.__version__,
        description=(
            "Git for Truth for AI agents: signed assertions and votes; every question "
            "answered through a lens, with lifecycle filters and time travel, and audited. "
            "Writes are acknowledged only once durable. See docs/api.md."
        ),
        lifespan=lifespan,
        docs_url=None,  # served below from local assets: a CDN is no use offline
        redoc_url=None,
        openapi_url=None,  # served below, with `servers` for the address asked
        dependencies=[Depends(strict_query)],
        responses=ERRORS,
        default_response_class=FastJSON,
    )

    @app.exception_handler(StemeLakeError)
    async def _lake_error(request: Request, exc: StemeLakeError) -> JSONResponse:
        status = status_of(exc)
        if status >= 500:
            log.error("request %s %s failed: %s", request.method, request.url.path, exc)
        return _error(status, str(exc), type(exc).__name__)

    @app.exception_handler(RequestValidationError)
    async def _schema_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _clean_errors(exc.errors())
        return _error(422, _schema_message(errors), "RequestValidationError", detail=errors)

    @app.exception_handler(PydanticValidationError)
    async def _model_error(request: Request, exc: PydanticValidationError) -> JSONResponse:
        errors = _clean_errors(exc.errors())
        return _error(422, _schema_message(errors), "RequestValidationError", detail=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 413:
            message = f"request body too large (limit {options.max_body_bytes} bytes)"
        return _error(exc.status_code, message, "HTTPException")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        return _error(500, f"internal error ({type(exc).__name__}); see the server log", "Internal")

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_json(request: Request) -> Response:
        """The OpenAPI document, its ``servers`` the address the caller used (so
        ADK and generators call back where they fetched it)."""
        return _ok(document(app, options, str(request.base_url)))

    _offline_docs(app)
    app.add_middleware(BodyLimit, limit=options.max_body_bytes)
    app.hot = HotPaths(
        functools.partial(FastAPI.__call__, app),
        ops,
        status_of,
        options.max_body_bytes,
        batch_wait=options.batch_wait_ms / 1000,
    )

    def token(creds: HTTPAuthorizationCredentials | None) -> str | None:
        return None if creds is None else creds.credentials

    # ------------------------------------------------------------ writes

    @app.post(
        "/assert", status_code=201, tags=["write"], operation_id="assert", response_model=WriteOut
    )
    def post_assert(body: AssertIn) -> Response:
        """Store a claim (subject predicate = object) with its evidence (``source``, a URL
        or text the server hashes, or its ``source_hash``) and an honest confidence. New
        knowledge enters as lifecycle 'proposed'. Answered once durable, with its
        ``hash`` (id). Signed by the writing agent's key (the signing hook adds it)."""
        return _ok(ops().assert_(body), 201)

    @app.post(
        "/vote", status_code=201, tags=["write"], operation_id="vote", response_model=WriteOut
    )
    def post_vote(body: VoteIn) -> Response:
        """Vote on an assertion (404 if it does not exist)."""
        return _ok(ops().vote(body), 201)

    @app.post(
        "/lifecycle",
        status_code=201,
        tags=["write"],
        operation_id="set_lifecycle",
        response_model=WriteOut,
    )
    def post_lifecycle(body: LifecycleIn) -> Response:
        """Move an assertion to another lifecycle stage (e.g. approve it)."""
        return _ok(ops().lifecycle(body), 201)

    @app.post(
        "/supersede",
        status_code=201,
        tags=["write"],
        operation_id="supersede",
        response_model=WriteOut,
    )
    def post_supersede(body: SupersedeIn) -> Response:
        """Mark assertions superseded (never deleted): e.g. ``kind: invalidate`` after an
        incident, ``refine``/``replace`` with a ``replacement``."""
        return _ok(ops().supersede(body), 201)

    @app.post(
        "/constraints",
        status_code=201,
        tags=["write"],
        operation_id="add_constraint",
        response_model=WriteOut,
    )
    def post_constraint(body: ConstraintAddIn) -> Response:
        """Store a constraint (forbidden / must_use / reason) for a context."""
        return _ok(ops().add_constraint(body), 201)

    # ------------------------------------------------------------ questions

    @app.post("/query", tags=["read"], operation_id="query", response_model=QueryOut)
    def post_query(body: QueryIn, auth: Auth) -> Response:
        """Ask what is believed: subject + predicate -> value, confidence, lifecycle,
        sources and a ``query_id`` (the audit trail). Use lifecycle 'approved' and lens
        'authority' before acting on a decision: the default recency lens returns the
        newest claim even if it is only a proposal."""
        o = ops()
        return _ok(o.query(body, o.reader(auth, body.agent)))

    # The same operation for curl and browsers; one operation in the document, so a
    # tool set built from it has one query tool.
    @app.get("/query", tags=["read"], include_in_schema=False)
    def get_query(
        auth: Auth,
        subject: PathText,
        predicate: PathText,
        lens: Annotated[Lens, Query(description=LENS_HELP)] = "recency",
        lifecycle: Annotated[Stage | None, Query(description=LIFECYCLE_HELP)] = None,
        min_confidence: Annotated[float | None, Query(ge=0.0, le=1.0)] = None,
        as_of: OptTimeText = None,
        include_superseded: bool = False,
        max_candidates: Annotated[int, Query(ge=0, le=1000)] = 10,
        agent: AgentQ = None,
    ) -> Response:
        """The same question as ``POST /query``, as query parameters."""
        body = QueryIn(
            subject=subject,
            predicate=predicate,
            lens=lens,
            lifecycle=lifecycle,
            min_confidence=min_confidence,
            as_of=as_of,
            include_superseded=include_superseded,
            max_candidates=max_candidates,
            agent=agent,
        )
        o = ops()
        return _ok(o.query(body, o.reader(auth, agent)))

    @app.post("/search", tags=["read"], operation_id="search", response_model=SearchOut)
    def post_search(body: SearchIn, auth: Auth) -> Response:
        """Semantic search: "what do we believe about things like this?" The assertions
        closest in meaning to ``text`` (full-text and vector ranks fused, unless
        ``hybrid`` is false) among those that existed at ``as_of`` and pass the
        lifecycle and supersession filters as they stood then. Audited like a query."""
        o = ops()
        return _ok(o.search(body, o.reader(auth, body.agent)))

    @app.post(
        "/constraints/check",
        tags=["read"],
        operation_id="check_constraints",
        response_model=CheckOut,
    )
    def post_check(body: ConstraintCheckIn, auth: Auth) -> Response:
        """Pre-flight: the constraints in force for ``context`` (and its parents), and
        which ``proposed`` violates. Audited; an honoured check keeps constraints fresh."""
        o = ops()
        return _ok(o.check_constraints(body, o.reader(auth, body.agent)))

    # ------------------------------------------------------------ investigation

    @app.get("/trace", tags=["investigate"], operation_id="trace", response_model=TraceOut)
    def get_trace(
        auth: Auth,
        agent: Annotated[str, Query(min_length=1, max_length=256)],
        since: TimeText,
        until: OptTimeText = None,
        subject: OptPathText = None,
    ) -> Response:
        """An agent's queries and checks between ``since`` and ``until``, oldest first."""
        o = ops()
        o.reader(auth, None)
        return _ok(o.trace(agent, since, until, subject))

    @app.get("/diff", tags=["investigate"], operation_id="diff", response_model=DiffOut)
    def get_diff(
        auth: Auth,
        since: TimeText,
        until: OptTimeText = None,
        subject: OptPathText = None,
        lens: Annotated[Lens, Query(description=LENS_HELP)] = "recency",
        lifecycle: Annotated[Stage | None, Query(description=LIFECYCLE_HELP)] = None,
    ) -> Response:
        """What changed in a window: beliefs whose answer differs, and records written."""
        o = ops()
        o.reader(auth, None)
        return _ok(o.diff(since, until, subject, lens, lifecycle))

    @app.get("/blame", tags=["investigate"], operation_id="blame", response_model=BlameOut)
    def get_blame(
        auth: Auth,
        subject: PathText,
        predicate: PathText,
        as_of: OptTimeText = None,
        lens: Annotated[Lens, Query(description=LENS_HELP)] = "recency",
        lifecycle: Annotated[Stage | None, Query(description=LIFECYCLE_HELP)] = None,
    ) -> Response:
        """Who and what put the (current or as-of) answer there."""
        o = ops()
        o.reader(auth, None)
        return _ok(o.blame(subject, predicate, as_of, lens, lifecycle))

    @app.get("/impact", tags=["investigate"], operation_id="impact", response_model=ImpactOut)
    def get_impact(
        auth: Auth,
        hash: Annotated[str, Query(pattern=HEX64, description="an assertion id")],
        until: Annotated[
            str | None,
            Query(
                min_length=1,
                max_length=64,
                description="only what happened up to then "
                "(e.g. the incident's end), not the investigators' later questions",
            ),
        ] = None,
        depth: Annotated[int, Query(ge=1, le=MAX_DEPTH)] = 3,
    ) -> Response:
        """Everything an assertion touched, and what that touched, ``depth`` levels
        down: queries, agents, derived assertions, constraints, each row with its
        depth and the path (``via``) that reached it."""
        o = ops()
        o.reader(auth, None)
        return _ok(o.impact(hash, until, depth))

    @app.get("/trust", tags=["investigate"], operation_id="trust", response_model=TrustOut)
    def get_trust(
        auth: Auth,
        topic: Annotated[
            str | None, Query(max_length=4096, description="a topic, e.g. auth")
        ] = None,
        agent: AgentQ = None,
        as_of: OptTimeText = None,
        top: Annotated[int | None, Query(ge=1, le=100_000)] = None,
    ) -> Response:
        """The Gardener's per-topic trust scores as of a time; with ``agent`` (and
        ``topic``), the evidence behind that agent's score, largest first."""
        o = ops()
        o.reader(auth, None)
        return _ok(o.trust(topic, agent, as_of, top))

    @app.get("/dojo/stats", tags=["dojo"], operation_id="dojo_stats", response_model=DojoStatsOut)
    def get_dojo_stats(
        auth: Auth,
        kinds: KindsQ = None,
        since: OptTimeText = None,
        until: OptTimeText = None,
        subject: OptPathText = None,
        as_of: OptTimeText = None,
    ) -> Response:
        """How many training samples of each kind each split would get."""
        o = ops()
        o.reader(auth, None)
        params = {"kinds": kinds, "since": since, "until": until, "subject": subject,
                  "as_of": as_of}  # fmt: skip
        return _ok(o.dojo_stats(params))

    @app.get(
        "/dojo/samples", tags=["dojo"], operation_id="dojo_samples", response_model=DojoSamplesOut
    )
    def get_dojo_samples(
        auth: Auth,
        kinds: KindsQ = None,
        since: OptTimeText = None,
        until: OptTimeText = None,
        subject: OptPathText = None,
        as_of: OptTimeText = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    ) -> Response:
        """A preview of the training samples (prompt, chosen, rejected, provenance)."""
        o = ops()
        o.reader(auth, None)
        params = {"kinds": kinds, "since": since, "until": until, "subject": subject,
                  "as_of": as_of}  # fmt: skip
        return _ok(o.dojo_samples(params, limit))

    @app.post(
        "/dojo/export",
        status_code=201,
        tags=["dojo"],
        operation_id="dojo_export",
        response_model=DojoExportOut,
    )
    def post_dojo_export(body: DojoExportIn, auth: Auth) -> Response:
        """Write the samples as Parquet under the server's export folder."""
        o = ops()
        o.reader(auth, None)
        params = body.model_dump(exclude={"path", "overwrite", "openai"})
        return _ok(
            o.dojo_export(body.path, params, overwrite=body.overwrite, openai=body.openai), 201
        )

    @app.get(
        "/provenance/{query_id}",
        tags=["investigate"],
        operation_id="provenance",
        response_model=ProvenanceOut,
    )
    def get_provenance(auth: Auth, query_id: Annotated[str, Path(pattern=HEX64)]) -> Response:
        """Source -> agent -> assertion -> answer for one audited query."""
        o = ops()
        o.reader(auth, None)
        return _ok(o.provenance(query_id))

    @app.get(
        "/records/{record_id}",
        tags=["investigate"],
        operation_id="get_record",
        response_model=RecordOut,
    )
    def get_record(auth: Auth, record_id: Annotated[str, Path(pattern=HEX64)]) -> Response:
        """One record of any kind, by id."""
        o = ops()
        o.reader(auth, None)
        return _ok(o.record(record_id))

    @app.get("/health", tags=["ops"], operation_id="health", response_model=HealthOut)
    def get_health(auth: Auth) -> Response:
        """Liveness; and the lake's status (WAL, files, index) for a caller who may read."""
        return _ok(ops().health(auth.token))

    return app


def _freeze_startup_objects() -> None:
    """Exclude what the server holds from the start (the framework's functions,
    types and models, the open lake) from the garbage collector's full passes.

    A full pass over them took 50 to 70 ms, every second or so under load: the
    largest stalls of the HTTP API (benchmarks/README.md). Only for the process
    ``steme serve`` owns; the garbage is collected first, so none is frozen."""
    gc.collect()
    gc.freeze()


def app_from_env() -> FastAPI:
    """The app for ``steme serve`` workers: lake from $STEME_LAKE, options from
    $STEME_SERVE_OPTIONS (``require_signatures,read_tokens,max_body_bytes[,batch_wait_ms]``),
    the Dojo's export folder from $STEME_EXPORT_ROOT."""
    import os

    lake = os.environ.get("STEME_LAKE")
    if not lake:
        raise ValidationError("STEME_LAKE is not set; start the server with `steme serve --lake`")
    raw = os.environ.get("STEME_SERVE_OPTIONS", "1,0,1048576").split(",")
    options = ServerOptions(
        require_signatures=raw[0] == "1",
        read_tokens=raw[1] == "1",
        max_body_bytes=int(raw[2]),
        batch_wait_ms=float(raw[3]) if len(raw) > 3 else ServerOptions().batch_wait_ms,
        export_root=os.environ.get("STEME_EXPORT_ROOT") or None,
    )
    stored = os.environ.get("STEME_STORAGE_OPTIONS")
    if stored is not None:  # a lake on object storage (`steme serve --lake s3://`)
        import json

        import steme_lake

        opened = steme_lake.open(
            lake, storage_options=json.loads(stored), wal=os.environ.get("STEME_WAL")
        )
        return create_app(opened, options, freeze_gc=True, close_lake=True)
    return create_app(lake, options, freeze_gc=True)
