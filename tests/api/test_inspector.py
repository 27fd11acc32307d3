"""The MCP Inspector's CLI (the MCP project's own client, in Node) lists the tools
of ``steme mcp`` and calls ``query`` with the approved filter. Skipped, with the
reason, where Node's ``npx`` is missing or cannot fetch the Inspector."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

import steme_lake as sl
from tests.conftest import JWT_EVENTS, PYTHON, child_env

INSPECTOR = "@modelcontextprotocol/inspector"


def _inspect(lake: Path, *args: str) -> Any:
    npx = shutil.which("npx")
    if npx is None:
        pytest.skip("Node's npx is not installed: the MCP Inspector check needs it")
    command = [npx, "-y", INSPECTOR, "--cli", PYTHON, "-m", "steme_lake", "mcp",
               "--lake", str(lake), "--agent", "research-agent", *args]  # fmt: skip
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=600, env=child_env())
    except subprocess.TimeoutExpired:
        pytest.skip("npx did not fetch and start the MCP Inspector within 10 minutes")
    if run.returncode != 0 and ("npm" in run.stderr and "ERR" in run.stderr):
        pytest.skip(f"npx cannot fetch the MCP Inspector: {run.stderr[-400:]}")
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout)


@pytest.fixture
def jwt_lake(lake_path: Path) -> Path:
    with sl.open(lake_path) as lake:
        lake.import_events(JWT_EVENTS)
    return lake_path


def test_the_inspector_lists_the_tools_and_asks_for_the_approved_answer(jwt_lake: Path) -> None:
    listed = _inspect(jwt_lake, "--method", "tools/list")
    tools = {t["name"]: t for t in listed["tools"]}
    assert {"query", "assert", "check_constraints", "trace", "impact"} <= set(tools)
    assert tools["query"]["annotations"]["readOnlyHint"] is True
    assert tools["query"]["outputSchema"]["properties"]["value"] is not None
    answer = _inspect(
        jwt_lake, "--method", "tools/call", "--tool-name", "query",
        "--tool-arg", "subject=auth/jwt", "--tool-arg", "predicate=signing_algorithm",
        "--tool-arg", "lifecycle=approved",
    )  # fmt: skip
    assert not answer.get("isError"), answer
    assert answer["structuredContent"]["value"] == "RS256"
    assert answer["structuredContent"]["lifecycle"] == "approved"
