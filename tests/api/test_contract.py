"""The OpenAPI document and the MCP tools say what the server really does: every
reply of every operation matches its declared model, every error the one error
model; security is declared only where it is required; every parameter has a
meaning and an example; the server hashes evidence it is given as ``source``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from mcp import Client
from pydantic import BaseModel

import steme_lake as sl
from steme_lake.api import ServerOptions, create_app, create_mcp_server
from steme_lake.api import _out as out
from steme_lake.model.ids import source_hash_of


@pytest.fixture
def open_http(incident: tuple[sl.Lake, str], tmp_path: Any) -> Iterator[TestClient]:
    lake, _ = incident
    (tmp_path / "exports").mkdir()
    options = ServerOptions(require_signatures=False, export_root=str(tmp_path / "exports"))
    with TestClient(create_app(lake, options)) as http:
        yield http


def _model_of(doc: dict[str, Any], path: str, method: str, status: str) -> type[BaseModel]:
    schema = doc["paths"][path][method]["responses"][status]["content"]["application/json"]
    name = schema["schema"]["$ref"].rsplit("/", 1)[1]
    model: type[BaseModel] = getattr(out, name)
    return model


def test_every_reply_matches_its_declared_model(
    open_http: TestClient, incident: tuple[sl.Lake, str]
) -> None:
    _, es = incident
    doc = open_http.get("/openapi.json").json()
    asked = open_http.post("/query", json={"subject": "auth/jwt", "predicate": "signing_algorithm"})
    query_id = asked.json()["query_id"]
    written = open_http.post(
        "/assert",
        json={
            "subject": "x/y",
            "predicate": "p",
            "object": 1,
            "source": "text",
            "confidence": 0.5,
            "agent": "a",
        },
    )
    calls: list[tuple[str, str, str, dict[str, Any]]] = [
        (
            "post",
            "/query",
            "/query",
            {"json": {"subject": "auth/jwt", "predicate": "signing_algorithm"}},
        ),
        (
            "post",
            "/assert",
            "/assert",
            {
                "json": {
                    "subject": "x/y",
                    "predicate": "q",
                    "object": [1],
                    "source_hash": "ab" * 32,
                    "confidence": 1.0,
                    "agent": "a",
                }
            },
        ),
        ("post", "/vote", "/vote", {"json": {"hash": es, "weight": -1.0, "agent": "a"}}),
        (
            "post",
            "/lifecycle",
            "/lifecycle",
            {"json": {"hash": es, "stage": "deprecated", "agent": "a"}},
        ),
        (
            "post",
            "/constraints",
            "/constraints",
            {"json": {"context": "auth/jwt", "reason": "r", "forbidden": "ES256", "agent": "a"}},
        ),
        (
            "post",
            "/constraints/check",
            "/constraints/check",
            {"json": {"context": "auth/jwt", "proposed": "ES256"}},
        ),
        ("get", "/trace", "/trace", {"params": {"agent": "deploy-agent", "since": "2026-01-01"}}),
        ("get", "/diff", "/diff", {"params": {"since": "2026-01-15", "until": "2026-01-16"}}),
        (
            "get",
            "/blame",
            "/blame",
            {"params": {"subject": "auth/jwt", "predicate": "signing_algorithm"}},
        ),
        ("get", "/impact", "/impact", {"params": {"hash": es}}),
        ("get", "/trust", "/trust", {}),
        ("get", "/dojo/stats", "/dojo/stats", {}),
        ("get", "/dojo/samples", "/dojo/samples", {"params": {"limit": 2}}),
        ("post", "/dojo/export", "/dojo/export", {"json": {"path": "one"}}),
        ("get", "/provenance/{query_id}", f"/provenance/{query_id}", {}),
        ("get", "/records/{record_id}", f"/records/{written.json()['hash']}", {}),
        ("get", "/health", "/health", {}),
        (
            "post",
            "/search",
            "/search",
            {"json": {"text": "how are tokens signed?", "k": 3, "lifecycle": "approved"}},
        ),
        (
            "post",
            "/supersede",
            "/supersede",
            {"json": {"hash": es, "kind": "invalidate", "reason": "broke auth", "agent": "sre"}},
        ),
    ]
    declared = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert declared == {(m, p) for m, p, _, _ in calls}  # every operation is tried
    for method, template, path, kwargs in calls:
        r = open_http.request(method.upper(), path, **kwargs)
        assert r.status_code < 300, (path, r.text)
        model = _model_of(doc, template, method, str(r.status_code))
        model.model_validate(r.json())  # raises, naming the field, if they drifted


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("get", "/trace", {"params": {"agent": "a"}}, 422),
        ("get", "/impact", {"params": {"hash": "00" * 32}}, 404),
        (
            "post",
            "/query",
            {"content": b"{bad", "headers": {"content-type": "application/json"}},
            422,
        ),
        ("get", "/diff", {"params": {"since": "yesterday-ish"}}, 400),
    ],
)
def test_every_error_matches_the_error_model(
    open_http: TestClient, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    doc = open_http.get("/openapi.json").json()
    r = open_http.request(method.upper(), path, **kwargs)
    assert r.status_code == status, r.text
    template = path
    model = _model_of(doc, template, method, str(status))
    assert model is out.ErrorOut
    error = out.ErrorOut.model_validate(r.json())
    assert "\n" not in error.error and error.status == status


def test_security_is_declared_only_where_it_is_required(tmp_lake: sl.Lake) -> None:
    with TestClient(create_app(tmp_lake, ServerOptions())) as http:
        open_doc = http.get("/openapi.json").json()
    with TestClient(create_app(tmp_lake, ServerOptions(read_tokens=True))) as http:
        token_doc = http.get("/openapi.json").json()
    ops = [(p, m, op) for p, o in open_doc["paths"].items() for m, op in o.items()]
    assert not [op["operationId"] for _, _, op in ops if "security" in op]
    assert "securitySchemes" not in open_doc.get("components", {})
    secured = {
        op["operationId"]
        for o in token_doc["paths"].values()
        for op in o.values()
        if op.get("security")
    }
    assert {"query", "check_constraints", "trace", "diff", "blame", "impact"} <= secured
    # writes are signed in the body, health is open to anyone
    assert not secured & {
        "assert",
        "vote",
        "supersede",
        "set_lifecycle",
        "add_constraint",
        "health",
    }
    assert set(token_doc["components"]["securitySchemes"]) == {"HTTPBearer", "SignedRead"}


def test_every_parameter_has_a_meaning_and_an_example(tmp_lake: sl.Lake) -> None:
    with TestClient(create_app(tmp_lake, ServerOptions())) as http:
        doc = http.get("/openapi.json").json()
    lacking = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for p in op.get("parameters", ()):
                if not (p.get("description") or p["schema"].get("description")):
                    lacking.append(f"{method} {path} {p['name']}: description")
                if "example" not in p and "examples" not in p["schema"]:
                    lacking.append(f"{method} {path} {p['name']}: example")
            assert op.get("description") or op.get("summary"), (method, path)
    for name, schema in doc["components"]["schemas"].items():
        if name.endswith("In"):
            for field, prop in schema["properties"].items():
                if not prop.get("description"):
                    lacking.append(f"{name}.{field}: description")
                if "examples" not in prop:
                    lacking.append(f"{name}.{field}: example")
    assert not lacking


def test_the_server_hashes_evidence_given_as_source(tmp_lake: sl.Lake) -> None:
    """An agent cannot compute BLAKE3; it sends the URL or text and the server hashes it."""
    options = ServerOptions(require_signatures=False)
    body = {"subject": "auth/jwt", "predicate": "p", "object": "v", "confidence": 0.5, "agent": "a"}
    with TestClient(create_app(tmp_lake, options)) as http:
        r = http.post("/assert", json={**body, "source": "https://rfc-editor.org/rfc/rfc7518"})
        assert r.status_code == 201, r.text
        record = tmp_lake.get(r.json()["hash"])
        assert record.source_hash == source_hash_of("https://rfc-editor.org/rfc/rfc7518")  # type: ignore[attr-defined]
        for bad in ({}, {"source": "x", "source_hash": "ab" * 32}):
            r = http.post("/assert", json={**body, **bad})
            assert r.status_code == 422 and "exactly one" in r.json()["error"]


class TestMCPSchemas:
    def _tools(self, lake: sl.Lake) -> dict[str, Any]:
        server = create_mcp_server(lake, "research-agent", options=ServerOptions(False))
        return {t.name: t for t in asyncio.run(server.list_tools())}

    def test_every_tool_has_a_typed_output_schema(self, tmp_lake: sl.Lake) -> None:
        for name, tool in self._tools(tmp_lake).items():
            schema = tool.output_schema
            assert schema and schema.get("properties"), name  # not empty, not bare object

    def test_inputs_are_strict_with_enums_patterns_and_meanings(self, tmp_lake: sl.Lake) -> None:
        tools = self._tools(tmp_lake)
        for name, tool in tools.items():
            schema = tool.input_schema
            assert schema.get("additionalProperties") is False, name
            for field, prop in schema.get("properties", {}).items():
                assert prop.get("description"), f"{name}.{field}"
        text = json.dumps(tools["supersede"].input_schema)
        assert '"invalidate"' in text and "^[0-9a-f]{64}$" in text
        assert '"approved"' in json.dumps(tools["query"].input_schema)

    def test_a_tool_reply_is_structured_and_an_error_is_one_line(
        self, incident: tuple[sl.Lake, str]
    ) -> None:
        lake, _ = incident
        server = create_mcp_server(lake, "research-agent", options=ServerOptions(False))
        args = {"subject": "auth/jwt", "predicate": "signing_algorithm", "lifecycle": "approved"}

        async def calls() -> tuple[Any, Any]:
            async with Client(server) as client:
                answer = await client.call_tool("query", args)
                failed = await client.call_tool("trace", {"agent": "a", "since": "whenever"})
            return answer, failed

        result, failed = asyncio.run(calls())
        structured = result.structured_content
        assert structured["value"] == "RS256" and structured["lifecycle"] == "approved"
        out.QueryOut.model_validate(structured)
        assert failed.is_error
        (message,) = [c.text for c in failed.content]
        assert "\n" not in message and "since" in message
