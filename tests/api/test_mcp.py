"""``steme mcp`` over stdio, driven by the official MCP client as a real process."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import nacl.pwhash
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

import steme_lake as sl
from steme_lake.keys import AgentRegistry, Wallet
from tests.conftest import PYTHON, child_env

FAST = {
    "opslimit": nacl.pwhash.argon2id.OPSLIMIT_MIN,
    "memlimit": nacl.pwhash.argon2id.MEMLIMIT_MIN,
}
TOOLS = {
    "query",
    "search",
    "assert",
    "vote",
    "check_constraints",
    "trace",
    "diff",
    "blame",
    "impact",
    "supersede",
    "provenance",
    "trust",
    "dojo_stats",
    "dojo_export",
}


def _params(lake: Path, wallet: Path, agent: str) -> StdioServerParameters:
    env = {**child_env(), "STEME_WALLET_PASSPHRASE": "pw"}
    return StdioServerParameters(
        command=PYTHON,
        args=[
            "-m",
            "steme_lake",
            "mcp",
            "--lake",
            str(lake),
            "--agent",
            agent,
            "--wallet",
            str(wallet),
        ],
        env=env,
    )


def _data(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    if result.structured_content is not None:
        return dict(result.structured_content)
    return dict(json.loads(result.content[0].text))


@pytest.fixture
def setup(lake_path: Path, tmp_path: Path) -> tuple[Path, Path]:
    sl.open(lake_path).close()
    wallet = tmp_path / "wallet"
    key = Wallet(wallet, **FAST).create("research-agent", passphrase="pw")
    AgentRegistry(lake_path).register("research-agent", key.public_key)
    return lake_path, wallet


class TestMcpOverStdio:
    """List tools, assert, query, trace: the agent's loop through MCP."""

    def test_agent_loop(self, setup: tuple[Path, Path]) -> None:
        lake, wallet = setup

        async def session() -> None:
            async with Client(_params(lake, wallet, "research-agent")) as client:
                tools = {t.name: t for t in (await client.list_tools()).tools}
                assert set(tools) == TOOLS
                assert "approved" in tools["query"].description
                # hosts ask a person before anything not read-only: questions are reads
                hints = {n: t.annotations for n, t in tools.items()}
                assert all(h is not None for h in hints.values()), hints
                writes = {n for n, h in hints.items() if not h.read_only_hint}
                assert writes == {"assert", "vote", "supersede", "dojo_export"}, writes
                assert hints["dojo_export"].destructive_hint is True
                assert not any(hints[n].destructive_hint for n in ("assert", "vote", "supersede"))
                written = _data(
                    await client.call_tool(
                        "assert",
                        {
                            "subject": "auth/jwt",
                            "predicate": "signing_algorithm",
                            "object": "ES256",
                            "source_hash": "ab" * 32,
                            "confidence": 0.87,
                        },
                    )
                )
                answer = _data(
                    await client.call_tool(
                        "query", {"subject": "auth/jwt", "predicate": "signing_algorithm"}
                    )
                )
                assert answer["value"] == "ES256" and answer["assertion"] == written["hash"]
                trace = _data(await client.call_tool("trace", {"agent": "research-agent"}))
                assert [q["query_id"] for q in trace["queries"]] == [answer["query_id"]]
                impact = _data(
                    await client.call_tool("impact", {"hash": written["hash"], "depth": 2})
                )
                assert impact["depth"] == 2
                ((asked),) = impact["queries"]
                assert asked["via"] == [written["hash"]] and asked["depth"] == 1
                too_deep = await client.call_tool("impact", {"hash": written["hash"], "depth": 0})
                assert too_deep.is_error and "depth" in too_deep.content[0].text
                refused = await client.call_tool("vote", {"hash": "12" * 32})
                assert refused.is_error and "not in this lake" in refused.content[0].text

        asyncio.run(session())
        with sl.open(lake) as opened:
            (row,) = opened.assertions.collect().iter_rows(named=True)
            assert row["agent"] == "research-agent"
            assert row["signatures"][0]["public_key"] == Wallet(wallet).public_key("research-agent")

    def test_without_a_key_reads_work_and_writes_are_refused(
        self, setup: tuple[Path, Path]
    ) -> None:
        lake, wallet = setup

        async def session() -> None:
            async with Client(_params(lake, wallet, "keyless-agent")) as client:
                answer = _data(await client.call_tool("query", {"subject": "a", "predicate": "b"}))
                assert answer["status"] == "no_answer" or answer["value"] is None
                refused = await client.call_tool(
                    "assert",
                    {
                        "subject": "a",
                        "predicate": "b",
                        "object": 1,
                        "source_hash": "ab" * 32,
                        "confidence": 0.5,
                    },
                )
                assert refused.is_error and "cannot sign" in refused.content[0].text

        asyncio.run(session())
