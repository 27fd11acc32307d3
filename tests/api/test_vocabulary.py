"""One vocabulary: the same parameter names, with the same meanings, in Python,
the CLI, the OpenAPI document and the MCP tools (issue 19: ``/trace`` said
``agent_id`` and ``from``/``to``, supersede said ``type`` and ``window_from``
while everything else said ``agent``, ``since``/``until`` and ``kind``)."""

from __future__ import annotations

import argparse
import asyncio
import inspect
from typing import Any

import pytest
from fastapi.testclient import TestClient

import steme_lake as sl
from steme_lake._vocabulary import SYNONYMS, WORDS, unknown_parameter
from steme_lake.api import ServerOptions, create_app, create_mcp_server
from steme_lake.cli import build_parser
from steme_lake.client import Client
from steme_lake.lake import Lake
from steme_lake.vectors import VectorsNamespace

# The operations every surface offers, and the Python method each one is.
PYTHON = {
    "query": Lake.query,
    "check_constraints": Lake.check_constraints,
    "assert": Lake.assert_,
    "vote": Lake.vote,
    "set_lifecycle": Lake.set_lifecycle,
    "supersede": Lake.supersede,
    "add_constraint": Lake.add_constraint,
    "trace": Lake.trace,
    "diff": Lake.diff,
    "blame": Lake.blame,
    "search": VectorsNamespace.search,
}
# Names only the wire has: the record an operation acts on is a positional
# argument in Python (``lake.vote(h)``), ``hash`` on the wire; ``window`` is
# Python's (since, until) pair; ``max_candidates`` trims a reply;
# ``check_contradictions`` saves an agent a second call (in Python it is
# ``lake.vectors.contradictions``, the same words).
WIRE_ONLY = {"hash", "max_candidates", "signatures", "check_contradictions"}
PYTHON_SPELLING = {"parent_hash": "parent", "stage": "stage"}


def _http_params(doc: dict[str, Any]) -> dict[str, set[str]]:
    """operationId -> its parameter names (query, path and request body fields)."""
    schemas = doc["components"]["schemas"]
    out = {}
    for ops in doc["paths"].values():
        for op in ops.values():
            names = {p["name"] for p in op.get("parameters", ())}
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            ref = body.get("schema", {}).get("$ref")
            if ref:
                names |= set(schemas[ref.rsplit("/", 1)[1]]["properties"])
            out[op["operationId"]] = names
    return out


def _mcp_params(lake: sl.Lake) -> dict[str, set[str]]:
    server = create_mcp_server(lake, "research-agent", options=ServerOptions(False))
    tools = asyncio.run(server.list_tools())
    return {t.name: set(t.input_schema.get("properties", {})) for t in tools}


def _cli_options(
    parser: argparse.ArgumentParser | None = None, prefix: str = ""
) -> dict[str, set[str]]:
    """command (``dojo export`` for a nested one) -> its long options, as names."""
    out: dict[str, set[str]] = {}
    for action in (parser or build_parser())._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out[prefix + name] = {
                    o[2:].replace("-", "_")
                    for a in sub._actions
                    for o in a.option_strings
                    if o.startswith("--")
                }
                out.update(_cli_options(sub, f"{prefix}{name} "))
    return out


@pytest.fixture
def surfaces(tmp_lake: sl.Lake) -> dict[str, dict[str, set[str]]]:
    with TestClient(create_app(tmp_lake, ServerOptions())) as http:
        doc = http.get("/openapi.json").json()
    python = {
        op: {
            p.name
            for p in list(inspect.signature(fn).parameters.values())[1:]
            if p.kind is not p.POSITIONAL_ONLY
        }
        for op, fn in PYTHON.items()
    }
    python["client"] = {
        p
        for name, fn in inspect.getmembers(Client, inspect.isfunction)
        if not name.startswith("_")
        for p in inspect.signature(fn).parameters
    }
    return {
        "http": _http_params(doc),
        "mcp": _mcp_params(tmp_lake),
        "cli": _cli_options(),
        "python": python,
    }


def test_no_surface_uses_a_synonym(surfaces: dict[str, dict[str, set[str]]]) -> None:
    found = [
        f"{surface} {op}: {name!r} (say {SYNONYMS[name]!r})"
        for surface, ops in surfaces.items()
        for op, names in ops.items()
        for name in names
        if name in SYNONYMS
    ]
    assert not found


def test_every_agent_facing_name_has_one_meaning(surfaces: dict[str, dict[str, set[str]]]) -> None:
    """Each parameter of HTTP and MCP is a word of the vocabulary (its meaning and
    example in one place), so a name cannot mean two things on two surfaces."""
    missing = sorted(
        f"{surface} {op}: {name}"
        for surface in ("http", "mcp")
        for op, names in surfaces[surface].items()
        for name in names
        if name not in WORDS
    )
    assert not missing


def test_each_operation_has_the_same_parameters_everywhere(
    surfaces: dict[str, dict[str, set[str]]],
) -> None:
    http, mcp, python = surfaces["http"], surfaces["mcp"], surfaces["python"]
    assert set(mcp) <= set(http)  # every MCP tool is an HTTP operation, by the same name
    for op, names in mcp.items():
        assert names <= http[op], f"MCP {op} has {names - http[op]} that HTTP {op} lacks"
    for op, fn_names in python.items():
        if op == "client":
            continue
        python_names = {PYTHON_SPELLING.get(n, n) for n in fn_names}
        if "window" in python_names:
            python_names |= {"since", "until"}
        wire = {PYTHON_SPELLING.get(n, n) for n in http[op] - WIRE_ONLY}
        assert wire <= python_names, f"{op}: {wire - python_names} on the wire, not in Python"


def test_the_cli_says_the_same_words(surfaces: dict[str, dict[str, set[str]]]) -> None:
    cli, http = surfaces["cli"], surfaces["http"]
    for op, command in (("supersede", "supersede"), ("trace", "trace"), ("diff", "diff"),
                        ("query", "query"), ("blame", "blame"), ("search", "search")):  # fmt: skip
        if command in cli:
            shared = {n for n in cli[command] if n in WORDS}
            assert shared <= http[op] | {"lake", "json", "wide", "debug", "sign", "wallet"}, (
                command,
                shared - http[op],
            )


@pytest.mark.parametrize(("given", "ours"), sorted(SYNONYMS.items()))
def test_a_synonym_is_refused_naming_ours(given: str, ours: str) -> None:
    assert f"did you mean {ours!r}" in unknown_parameter(given, [ours, "subject"])


def test_the_wire_refuses_old_names_naming_the_new(tmp_lake: sl.Lake) -> None:
    with TestClient(create_app(tmp_lake, ServerOptions(require_signatures=False))) as http:
        r = http.get("/trace", params={"agent_id": "a", "since": "-1h"})
        assert r.status_code == 422 and "did you mean 'agent'" in r.json()["error"]
        body = {"hash": "ab" * 32, "reason": "x", "type": "invalidate", "agent": "sre"}
        r = http.post("/supersede", json=body)
        assert r.status_code == 422 and "did you mean 'kind'" in r.json()["error"]
