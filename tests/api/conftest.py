"""Fixtures for the agents' interfaces: an app over a real lake, registered agents."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

import steme_lake as sl
from steme_lake.api import ServerOptions, create_app
from steme_lake.client import Client
from steme_lake.keys import AgentRegistry


@dataclass
class Agents:
    research: sl.AgentKey
    deploy: sl.AgentKey
    stranger: sl.AgentKey  # never registered
    deploy_token: str


@pytest.fixture
def agents(tmp_lake: sl.Lake) -> Agents:
    registry = AgentRegistry(tmp_lake.path)
    research, deploy, stranger = (sl.AgentKey.generate() for _ in range(3))
    registry.register("research-agent", research.public_key)
    token = registry.register("deploy-agent", deploy.public_key, token=True)
    assert token is not None
    return Agents(research, deploy, stranger, token)


@pytest.fixture
def http(tmp_lake: sl.Lake) -> Iterator[TestClient]:
    with TestClient(create_app(tmp_lake, ServerOptions())) as client:
        yield client


@pytest.fixture
def research(http: TestClient, agents: Agents) -> Client:
    return Client("http://test", "research-agent", key=agents.research, http=http)


def counts(lake: sl.Lake) -> dict[str, int]:
    """Rows per table except the audit log (reads are audited; writes must not be)."""
    tables = ("assertions", "votes", "lifecycle", "supersessions", "constraints")
    return {t: lake.table(t).collect().height for t in tables}
