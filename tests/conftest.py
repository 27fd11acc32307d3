"""Shared fixtures: real lakes in real temporary folders."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import steme_lake as sl

REPO = Path(__file__).resolve().parents[1]

# pytest-xdist's workers (make test) set COLUMNS=80 and LINES=24; the tests, and the
# CLI processes they start, see the same terminal as under a plain pytest.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)

SHARED_DATASETS = REPO.parent / "shared" / "datasets"
JWT_EVENTS = REPO / "datasets" / "jwt_incident.jsonl"


@pytest.fixture
def lake_path(tmp_path: Path) -> Path:
    return tmp_path / "lake"


@pytest.fixture
def tmp_lake(lake_path: Path) -> Iterator[sl.Lake]:
    """A lake on disk, closed after the test."""
    lake = sl.open(lake_path)
    yield lake
    lake.close()


def child_env() -> dict[str, str]:
    """Environment for child processes: this checkout first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


PYTHON = sys.executable


@pytest.fixture
def incident(tmp_lake: sl.Lake) -> Iterator[tuple[sl.Lake, str]]:
    """The JWT incident imported, and the ES256 proposal's id (what the agents were told)."""
    tmp_lake.import_events(JWT_EVENTS)
    es = tmp_lake.query(
        "auth/jwt", "signing_algorithm", agent="sre", as_of="2026-01-15T21:00:00Z"
    ).assertion
    assert es is not None
    yield tmp_lake, es
