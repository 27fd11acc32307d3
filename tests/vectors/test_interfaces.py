"""``steme search``, ``POST /search`` and the MCP ``search`` tool: one search, the
same parameters, audited as the asker."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import polars as pl
from fastapi.testclient import TestClient
from mcp import Client

import steme_lake as sl
from steme_lake.api import ServerOptions, create_app, create_mcp_server
from tests.conftest import JWT_EVENTS, PYTHON, child_env

QUESTION = {"text": "which algorithm signs our tokens?", "k": 2, "lifecycle": "approved",
            "as_of": "2026-01-15T21:00:00Z"}  # fmt: skip


def test_http(tmp_lake: sl.Lake) -> None:
    tmp_lake.import_events(JWT_EVENTS)
    with TestClient(create_app(tmp_lake, ServerOptions())) as http:
        r = http.post("/search", json={**QUESTION, "agent": "curl"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["results"][0]["value"] == '"RS256"' and body["agent"] == "anonymous"
        assert {h["lifecycle"] for h in body["results"]} == {"approved"}
        (row,) = (
            tmp_lake.audit.filter(pl.col("id") == body["query_id"]).collect().iter_rows(named=True)
        )
        assert row["op"] == "search" and json.loads(row["params"])["claimed_agent"] == "curl"
        bad = http.post("/search", json={"text": "x", "lifecycel": "approved"})
        assert bad.status_code == 422 and "did you mean 'lifecycle'" in bad.json()["error"]
        empty = http.post("/search", json={"text": "x", "as_of": "2020-01-01T00:00:00Z"})
        assert empty.json()["results"] == [] and len(empty.json()["query_id"]) == 64


def test_mcp(tmp_lake: sl.Lake) -> None:
    tmp_lake.import_events(JWT_EVENTS)
    server = create_mcp_server(tmp_lake, "research-agent", options=ServerOptions(False))

    async def call() -> tuple[object, object]:
        async with Client(server) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            return tools["search"], await client.call_tool("search", QUESTION)

    tool, result = asyncio.run(call())
    assert tool.annotations.read_only_hint is True  # type: ignore[attr-defined]
    hits = result.structured_content["results"]  # type: ignore[attr-defined]
    assert hits[0]["value"] == '"RS256"' and hits[0]["subject"] == "auth/jwt"


def test_cli(lake_path: Path) -> None:
    with sl.open(lake_path) as lake:
        lake.import_events(JWT_EVENTS)
    run = subprocess.run(
        [PYTHON, "-m", "steme_lake", "search", "--lake", str(lake_path), QUESTION["text"],
         "-k", "2", "--lifecycle", "approved", "--as-of", QUESTION["as_of"], "--json"],
        capture_output=True, text=True, timeout=300, env=child_env(),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["results"][0]["value"] == '"RS256"' and len(out["query_id"]) == 64
    text = subprocess.run(
        [PYTHON, "-m", "steme_lake", "search", "--lake", str(lake_path), "tokens",
         "--no-hybrid", "--as-of", "2020-01-01T00:00:00Z"],
        capture_output=True, text=True, timeout=300, env=child_env(),
    )  # fmt: skip
    assert text.returncode == 0 and "nothing matched" in text.stdout


def test_an_assert_can_report_what_it_contests(tmp_lake: sl.Lake) -> None:
    """The research agent's ES256 claim, checked: the approved RS256 comes back."""
    tmp_lake.import_events(JWT_EVENTS)
    claim = {"subject": "auth/jwt", "predicate": "signing_algorithm", "object": "ES512",
             "source": "https://rfc-editor.org/rfc/rfc7518", "confidence": 0.8,
             "agent": "research-agent"}  # fmt: skip
    with TestClient(create_app(tmp_lake, ServerOptions(require_signatures=False))) as http:
        plain = http.post("/assert", json=claim)
        assert plain.status_code == 201 and "contradictions" not in plain.json()
        checked = http.post("/assert", json={**claim, "object": "PS256",
                                             "check_contradictions": True})  # fmt: skip
        assert checked.status_code == 201, checked.text
        contested = {(c["value"], c["lifecycle"]) for c in checked.json()["contradictions"]}
        assert ('"RS256"', "approved") in contested
        assert ('"PS256"', "proposed") not in contested  # not itself
    server = create_mcp_server(tmp_lake, "research-agent", options=ServerOptions(False))

    async def call() -> object:
        async with Client(server) as client:
            args = {"subject": "auth/jwt", "predicate": "signing_algorithm", "object": "EdDSA",
                    "source": "a blog post", "confidence": 0.6,
                    "check_contradictions": True}  # fmt: skip
            return await client.call_tool("assert", args)

    result = asyncio.run(call())
    values = {c["value"] for c in result.structured_content["contradictions"]}  # type: ignore[attr-defined]
    assert '"RS256"' in values
