"""Identity on reads: every audited read is recorded for an authenticated agent (a
read token, or a request signed by the agent's registered key) or as ``anonymous``,
the claimed name kept beside it, never as the name a caller merely gives."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

import steme_lake as sl
from steme_lake._utils.timeparse import now_us
from steme_lake.api import ServerOptions, create_app
from steme_lake.api._mcp import create_mcp_server, mcp_http_app
from steme_lake.client import Client
from steme_lake.model.signing import READ_SIGNATURE_HEADER
from tests.api.conftest import Agents

QUESTION = {"subject": "auth/jwt", "predicate": "signing_algorithm"}


def _audit(lake: sl.Lake) -> list[dict[str, Any]]:
    return list(lake.audit.sort("recorded_at").collect().iter_rows(named=True))


def _signed(key: sl.AgentKey, body: dict[str, Any], *, at: int | None = None) -> dict[str, Any]:
    raw = json.dumps(body).encode()
    header = key.sign_read("POST", "/query", raw, now_us() if at is None else at)
    return {"content": raw, "headers": {"content-type": "application/json",
                                        READ_SIGNATURE_HEADER: header}}  # fmt: skip


class TestBorrowedNames:
    """A read that only claims a name is anonymous; it never enters that agent's trace."""

    def test_claimed_name_is_not_the_asker(self, http: TestClient, tmp_lake: sl.Lake) -> None:
        for reply in (
            http.post("/query", json={**QUESTION, "agent": "deploy-agent"}),
            http.get("/query", params={**QUESTION, "agent": "deploy-agent"}),
            http.post("/constraints/check", json={"context": "auth", "agent": "deploy-agent"}),
        ):
            assert reply.status_code == 200, reply.text
            assert reply.json()["agent"] == "anonymous"
        rows = _audit(tmp_lake)
        assert [r["agent"] for r in rows] == ["anonymous"] * 3
        assert {json.loads(r["params"])["claimed_agent"] for r in rows} == {"deploy-agent"}
        with pytest.warns(sl.NoMatchWarning):
            assert tmp_lake.trace("deploy-agent", "-1h").height == 0

    def test_keyless_mcp_server_reads_as_anonymous(self, tmp_lake: sl.Lake) -> None:
        import asyncio

        from mcp import Client as McpClient

        server = create_mcp_server(tmp_lake, "deploy-agent")  # no key: nothing proves who

        async def ask() -> None:
            async with McpClient(server) as client:
                await client.call_tool("query", QUESTION)

        asyncio.run(ask())
        (row,) = _audit(tmp_lake)
        assert row["agent"] == "anonymous"
        assert json.loads(row["params"])["claimed_agent"] == "deploy-agent"


class TestSignedReads:
    """A read signed by an agent's registered key is that agent's; a bad, stale,
    replayed or borrowed signature is refused and nothing is audited."""

    def test_client_signs_its_reads(
        self, http: TestClient, agents: Agents, tmp_lake: sl.Lake
    ) -> None:
        deploy = Client("http://test", "deploy-agent", key=agents.deploy, http=http)
        answer = deploy.query("auth/jwt", "signing_algorithm")
        check = deploy.check_constraints("auth/jwt", proposed="ES256")
        assert answer["agent"] == check["agent"] == "deploy-agent"
        trace = tmp_lake.trace("deploy-agent", "-1h")
        assert set(trace["query_id"]) == {answer["query_id"], check["query_id"]}
        assert deploy.trace("deploy-agent", "-1h")["queries"]  # signed GETs pass too

    @pytest.mark.parametrize("attack", ["tampered", "stale", "replayed", "other agent", "garbage"])
    def test_refused(
        self, http: TestClient, agents: Agents, tmp_lake: sl.Lake, attack: str
    ) -> None:
        body = {**QUESTION, "agent": "deploy-agent"}
        request = _signed(agents.deploy, body)
        if attack == "tampered":
            request["content"] = json.dumps({**body, "lifecycle": "approved"}).encode()
        elif attack == "stale":
            request = _signed(agents.deploy, body, at=now_us() - 3600 * 10**6)
        elif attack == "replayed":
            assert http.post("/query", **request).status_code == 200
        elif attack == "other agent":
            request = _signed(agents.research, body)  # research's key, claiming deploy
        else:
            request["headers"][READ_SIGNATURE_HEADER] = "not.a.signature"
        before = len(_audit(tmp_lake))
        reply = http.post("/query", **request)
        assert reply.status_code in (401, 403), reply.text
        assert reply.json()["type"] == "AuthError"
        assert len(_audit(tmp_lake)) == before

    def test_the_framework_route_checks_the_same(self, agents: Agents, tmp_lake: sl.Lake) -> None:
        """``POST /constraints/check`` is a framework route: same signature rules."""
        with TestClient(create_app(tmp_lake, ServerOptions())) as http:
            raw = json.dumps({"context": "auth/jwt"}).encode()
            header = agents.deploy.sign_read("POST", "/constraints/check", raw, now_us())
            ok = http.post("/constraints/check", content=raw,
                           headers={"content-type": "application/json",
                                    READ_SIGNATURE_HEADER: header})  # fmt: skip
            assert ok.status_code == 200 and ok.json()["agent"] == "deploy-agent"
            again = http.post("/constraints/check", content=raw,
                              headers={"content-type": "application/json",
                                       READ_SIGNATURE_HEADER: header})  # fmt: skip
            assert again.status_code == 401 and "replay" in again.json()["error"]


class TestReadTokens:
    """With read tokens required, an unauthenticated caller learns only liveness."""

    def test_health(self, tmp_lake: sl.Lake, agents: Agents) -> None:
        app = create_app(tmp_lake, ServerOptions(read_tokens=True))
        with TestClient(app) as http:
            public = http.get("/health").json()
            assert public == {"status": "ok", "version": sl.__version__, "read_tokens": True}
            auth = {"Authorization": f"Bearer {agents.deploy_token}"}
            full = http.get("/health", headers=auth).json()
            assert full["lake"] == str(tmp_lake.path) and "lake_status" in full
            assert http.post("/query", json=QUESTION).status_code == 401


class TestMcpOverHttp:
    """``steme mcp --http`` serves only a caller with a read token of its agent."""

    def test_token_required(self, tmp_lake: sl.Lake, agents: Agents) -> None:
        server = create_mcp_server(tmp_lake, "deploy-agent")
        hello = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "test", "version": "1"},
            },
        }
        accept = {"Accept": "application/json, text/event-stream"}
        app = mcp_http_app(server, tmp_lake, "deploy-agent")
        with TestClient(app, base_url="http://127.0.0.1:8000") as http:
            none = http.post("/mcp", json=hello, headers=accept)
            assert none.status_code == 401 and "steme keys token" in none.json()["error"]
            bad = http.post("/mcp", json=hello, headers={**accept, "Authorization": "Bearer x"})
            assert bad.status_code == 401
            auth = {**accept, "Authorization": f"Bearer {agents.deploy_token}"}
            ok = http.post("/mcp", json=hello, headers=auth)
            assert ok.status_code == 200, ok.text
            assert "steme_lake" in ok.text  # the server's own initialize answer
