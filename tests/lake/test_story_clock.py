"""A lake on a story's clock (`LakeOptions.clock_start`): a demo or a drill that
follows an incident stamps its questions and corrections in the incident's night."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import steme_lake as sl
from steme_lake import ValidationError
from tests.conftest import JWT_EVENTS

NIGHT = "2026-01-16T03:00:00Z"


def test_records_are_stamped_on_the_story_clock(lake_path: Path) -> None:
    options = sl.LakeOptions(clock_start=NIGHT)
    with sl.open(lake_path, options=options) as lake:
        lake.import_events(JWT_EVENTS)  # its own times, up to 21:04
        answer = lake.query("auth/jwt", "signing_algorithm", agent="sre")
        asked = lake.get(answer.query_id).recorded_at  # type: ignore[arg-type]
        start = datetime(2026, 1, 16, 3, tzinfo=UTC)
        assert start <= asked < start + timedelta(minutes=5)
        fix = lake.supersede(answer.assertion, agent="sre", kind="invalidate", reason="broke auth")
        assert asked < lake.get(fix).recorded_at < start + timedelta(minutes=5)
    with sl.open(lake_path) as lake:  # reopened on the system clock: later, never earlier
        vote = lake.vote(answer.assertion, agent="sre", weight=-1.0)  # type: ignore[arg-type]
        assert lake.get(vote).recorded_at > datetime.now(UTC) - timedelta(minutes=5)


def test_a_story_clock_never_goes_backwards(lake_path: Path) -> None:
    with sl.open(lake_path) as lake:
        first = lake.assert_("a/b", "p", 1, agent="x", source="s")
    options = sl.LakeOptions(clock_start="2020-01-01T00:00:00Z")  # before the lake's last record
    with sl.open(lake_path, options=options) as lake:
        second = lake.assert_("a/b", "p", 2, agent="x", source="s")
        assert lake.get(second).recorded_at > lake.get(first).recorded_at


def test_a_clock_ahead_of_real_time_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"clock_start .* is in the future"):
        sl.LakeOptions(clock_start="2999-01-01T00:00:00Z")
    with pytest.raises(ValidationError, match="clock_start"):
        sl.LakeOptions(clock_start="three in the morning")
