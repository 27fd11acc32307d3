"""Strict parameters everywhere: a misspelled or repeated parameter is refused on
every HTTP route and MCP tool, naming the close match, never silently dropped.

The incident this guards against: ``GET /query?lifecyle=approved`` used to drop the
filter and return the ES256 proposal as the answer.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from mcp import Client

import steme_lake as sl
from steme_lake.api import ServerOptions, create_app
from steme_lake.api._mcp import create_mcp_server

JWT = {"subject": "auth/jwt", "predicate": "signing_algorithm"}
HASH = "ab" * 32


def _typo(name: str) -> str:
    """A plausible misspelling: the last two letters swapped, or a doubled letter."""
    return name[:-2] + name[-1] + name[-2] if len(name) > 3 else name + name[-1]


@pytest.fixture
def incident_lake(tmp_lake: sl.Lake) -> sl.Lake:
    tmp_lake.assert_("auth/jwt", "signing_algorithm", "RS256", agent="platform-team",
                     confidence=0.92, lifecycle="approved", source="adr-17",
                     at="2026-01-01T00:00:00Z")  # fmt: skip
    tmp_lake.assert_("auth/jwt", "signing_algorithm", "ES256", agent="research-agent",
                     confidence=0.87, lifecycle="proposed", source="rfc",
                     at="2026-01-15T14:30:00Z")  # fmt: skip
    return tmp_lake


class TestHttp:
    """Every route refuses an unknown query parameter; the typo of the incident
    gets a 422 that names ``lifecycle``, on both the hot path and the framework."""

    @pytest.mark.parametrize("typo", ["lifecyle", "as_off", "min_confidance", "lense"])
    def test_incident_typos_on_get_query(self, incident_lake: sl.Lake, typo: str) -> None:
        with TestClient(create_app(incident_lake, ServerOptions())) as http:
            answer = http.get("/query", params={**JWT, "lifecycle": "approved"})
            assert answer.status_code == 200 and answer.json()["value"] == "RS256"
            refused = http.get("/query", params={**JWT, typo: "approved"})
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert f"unknown parameter {typo!r}; did you mean" in error
        assert refused.json()["detail"][0]["loc"] == ["query", typo]

    def test_every_route_refuses_a_misspelled_parameter(self, incident_lake: sl.Lake) -> None:
        app = create_app(incident_lake, ServerOptions(require_signatures=False))
        routes = [r for r in app.routes if isinstance(r, APIRoute)]
        assert len(routes) >= 13
        with TestClient(app) as http:
            for route in routes:
                (method,) = route.methods
                path = route.path.replace("{query_id}", HASH).replace("{record_id}", HASH)
                if method == "GET":
                    names = [p.alias for p in route.dependant.query_params] or ["subject"]
                    bad = _typo(names[0])
                    reply = http.get(path, params={bad: "x"})
                else:
                    model = route.body_field.field_info.annotation if route.body_field else None
                    assert model is not None, route.path
                    name = next(iter(model.model_fields))
                    bad = _typo(name)
                    reply = http.post(path, json={bad: "x"})
                    assert reply.status_code == 422, (route.path, reply.text)
                    assert f"unknown parameter {bad!r}" in reply.json()["error"], route.path
                    # and no POST route takes query parameters
                    reply = http.post(path + "?lifecyle=approved", json={})
                    bad = "lifecyle"
                assert reply.status_code == 422, (method, route.path, reply.text)
                assert f"unknown parameter {bad!r}" in reply.json()["error"], route.path

    def test_repeated_parameters(self, incident_lake: sl.Lake) -> None:
        with TestClient(create_app(incident_lake, ServerOptions())) as http:
            reply = http.get("/query?subject=auth/jwt&predicate=signing_algorithm"
                             "&lifecycle=approved&lifecycle=proposed")  # fmt: skip
            assert reply.status_code == 422
            assert "'lifecycle' is given more than once" in reply.json()["error"]
            reply = http.get("/diff?since=-1h&since=-2h")
            assert reply.status_code == 422
            assert "'since' is given more than once" in reply.json()["error"]

    def test_schemas_forbid_extra_properties(self, incident_lake: sl.Lake) -> None:
        schemas = create_app(incident_lake).openapi()["components"]["schemas"]
        bodies = [s for name, s in schemas.items() if name.endswith("In")]
        assert len(bodies) >= 7
        assert all(s.get("additionalProperties") is False for s in bodies)


class TestMcp:
    """Every tool refuses an unknown argument (and says which it meant), its input
    schema says ``additionalProperties: false``, and types are as strict as HTTP's."""

    @staticmethod
    def _run(lake: sl.Lake, calls: list[tuple[str, dict[str, Any]]]) -> tuple[Any, list[Any]]:
        server = create_mcp_server(lake, "sre", options=ServerOptions(require_signatures=False))

        async def session() -> tuple[Any, list[Any]]:
            async with Client(server) as client:
                tools = (await client.list_tools()).tools
                return tools, [await client.call_tool(n, a) for n, a in calls]

        return asyncio.run(session())

    def test_every_tool(self, incident_lake: sl.Lake) -> None:
        tools, _ = self._run(incident_lake, [])
        calls = []
        for tool in tools:
            assert tool.input_schema.get("additionalProperties") is False, tool.name
            name = sorted(tool.input_schema["properties"])[0]
            calls.append((tool.name, {_typo(name): "x"}))
        _, results = self._run(incident_lake, calls)
        for (tool, args), result in zip(calls, results, strict=True):
            (bad,) = args
            assert result.is_error, tool
            assert f"unknown parameter {bad!r}" in result.content[0].text, tool

    def test_incident_typo_and_text_numbers(self, incident_lake: sl.Lake) -> None:
        _, (good, typo, text_number) = self._run(
            incident_lake,
            [
                ("query", {**JWT, "lifecycle": "approved"}),
                ("query", {**JWT, "lifecyle": "approved"}),
                ("assert", {**JWT, "object": "x", "source_hash": HASH, "confidence": "0.9"}),
            ],
        )
        assert not good.is_error and good.structured_content["value"] == "RS256"
        assert typo.is_error
        assert "unknown parameter 'lifecyle'; did you mean 'lifecycle'?" in typo.content[0].text
        assert text_number.is_error and "confidence" in text_number.content[0].text
        assert incident_lake.audit.collect().height == 1  # only the good question
