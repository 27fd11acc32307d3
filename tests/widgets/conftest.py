"""The JWT incident with its correction: ES256 (a proposal) answered from 14:30,
invalidated by the SRE at 21:10, after which RS256 (approved) is the answer again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import steme_lake as sl
from tests.conftest import JWT_EVENTS

FIXED_AT = "2026-01-15T21:10:00Z"


def build_incident(path: Path) -> tuple[sl.Lake, str]:
    lake = sl.open(path)
    lake.import_events(JWT_EVENTS)
    es = lake.blame("auth/jwt", "signing_algorithm", as_of="2026-01-15T21:00:00Z").answer.assertion
    assert es is not None
    lake.supersede(es, agent="human-sre", kind="invalidate", reason="ES256 broke every token",
                   at=FIXED_AT)  # fmt: skip
    return lake, es


@pytest.fixture
def corrected(lake_path: Path) -> Iterator[tuple[sl.Lake, str]]:
    lake, es = build_incident(lake_path)
    yield lake, es
    lake.close()
