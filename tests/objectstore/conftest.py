"""A real S3 server (SeaweedFS on 127.0.0.1) for the object-storage tests; no mocks."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._seaweed import SeaweedFS

BUCKET = "lakes"
_names = itertools.count()


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """One server for the session, with the bucket ``lakes``."""
    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs")).start()
    server.make_bucket(BUCKET)
    yield server
    server.stop()


@pytest.fixture
def own_s3(tmp_path: Path) -> Iterator[SeaweedFS]:
    """A server of the test's own, for the tests that kill it."""
    server = SeaweedFS(tmp_path / "seaweedfs").start()
    server.make_bucket(BUCKET)
    yield server
    server.stop()


@pytest.fixture
def url(request: pytest.FixtureRequest) -> str:
    """A fresh lake prefix in the bucket, named after the test."""
    name = request.node.name.replace("[", "-").replace("]", "").replace("_", "-")[:60]
    return f"s3://{BUCKET}/{name}-{next(_names)}"
