"""Shared fixtures of the Dojo's tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import steme_lake as sl
from tests.conftest import JWT_EVENTS

# runs in the TRL environment only (test_trl.py); its imports are not in ours
collect_ignore = ["trl_step.py"]


@pytest.fixture
def corrected(tmp_lake: sl.Lake, tmp_path: Path) -> Iterator[sl.Lake]:
    """The JWT incident, corrected two weeks later (so approved answers have passed
    their holdout) with a negative constraint, then two pre-flight checks."""
    extra = [
        {"op": "supersede", "at": "2026-01-30T03:00:00Z", "agent": "human-sre",
         "target": "rfc", "kind": "invalidate", "reason": "ES256 broke auth"},
        {"op": "constraint", "at": "2026-01-30T03:05:00Z", "agent": "human-sre",
         "context": "auth/jwt", "forbidden": "ES256", "must_use": "RS256",
         "reason": "auth-service verifies RSA only"},
    ]  # fmt: skip
    events = tmp_path / "events.jsonl"
    events.write_text(JWT_EVENTS.read_text() + "".join(json.dumps(e) + "\n" for e in extra))
    tmp_lake.import_events(events)
    tmp_lake.check_constraints("auth/jwt", agent="impl-2", proposed="ES256")
    tmp_lake.check_constraints("auth/jwt", agent="impl-3", proposed="RS256")
    yield tmp_lake
