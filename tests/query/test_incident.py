"""The JWT incident, end to end, from datasets/jwt_incident.jsonl."""

from __future__ import annotations

import polars as pl
import pytest

import steme_lake as sl
from tests.conftest import JWT_EVENTS

AT_2055 = "2026-01-15T20:55:00Z"


@pytest.fixture
def incident(tmp_lake: sl.Lake) -> sl.Lake:
    tmp_lake.import_events(JWT_EVENTS)
    return tmp_lake


def _rfc(lake: sl.Lake) -> str:
    return (
        lake.assertions.filter(pl.col("subject") == "auth/jwt", pl.col("object") == '"ES256"')
        .select("id").collect().item()
    )  # fmt: skip


class TestIncident:
    """What the agents believed, why, and how the correction changes the future only."""

    def test_the_bug_and_the_correct_path(self, incident: sl.Lake) -> None:
        bug = incident.query("auth/jwt", "signing_algorithm", agent="sre", as_of=AT_2055)
        assert (bug.value, bug.lifecycle, bug.status) == ("ES256", "proposed", "answered")
        assert bug.confidence == pytest.approx(0.87, abs=0.01)
        right = incident.query(
            "auth/jwt", "signing_algorithm", agent="sre", as_of=AT_2055, lifecycle="approved"
        )
        assert (right.value, right.lifecycle) == ("RS256", "approved")
        assert right.contributing == (right.assertion,)

    def test_the_replayed_question_is_in_the_audit(self, incident: sl.Lake) -> None:
        rfc = _rfc(incident)
        row = (
            incident.audit.filter(pl.col("agent") == "lead-orchestrator")
            .collect().row(0, named=True)
        )  # fmt: skip
        assert str(row["recorded_at"]) == "2026-01-15 20:55:00+00:00"
        assert (row["value"], row["winner"], row["lifecycle_filter"]) == ('"ES256"', rfc, None)
        # Recency: the answer rests on the winner alone; the older RS256 could not change it.
        assert row["contributing"] == [rfc]
        deploy = incident.audit.filter(pl.col("agent") == "deploy-agent").collect()
        assert deploy["value"].to_list() == ['"ES256"', '"ES256"']

    def test_supersession_changes_the_future_not_the_past(self, incident: sl.Lake) -> None:
        rfc = _rfc(incident)
        incident.supersede(
            rfc,
            agent="human-supervisor",
            kind="invalidate",
            reason="ES256 was a proposal; auth-service verifies RS256 only",
        )
        now = incident.query("auth/jwt", "signing_algorithm", agent="sre")
        assert now.value == "RS256"
        assert rfc not in now.contributing
        then = incident.query("auth/jwt", "signing_algorithm", agent="sre", as_of=AT_2055)
        assert (then.value, then.assertion) == ("ES256", rfc)  # history never changes
        seen = incident.query("auth/jwt", "signing_algorithm", agent="sre", include_superseded=True)
        assert rfc in seen.contributing and {c.superseded for c in seen.candidates} == {True, False}

    def test_negative_constraint_and_preflight(self, incident: sl.Lake) -> None:
        cid = incident.add_constraint(
            "auth/jwt",
            forbidden="ES256",
            must_use="RS256",
            reason="auth-service verifies RS256 only",
            agent="human-supervisor",
            cites=_rfc(incident),
        )
        bad = incident.check_constraints("auth/jwt", agent="implementation-agent", proposed="ES256")
        assert not bad.ok and [c.id for c in bad.violations] == [cid]
        good = incident.check_constraints(
            "auth/jwt", agent="implementation-agent", proposed="RS256"
        )
        assert good.ok and [c.id for c in good.constraints] == [cid]
        assert incident.confirmations.filter(pl.col("target") == cid).collect().height == 1
        checks = incident.audit.filter(pl.col("op") == "check").collect()
        assert checks["status"].to_list() == ["violation", "ok"]
        assert incident.check_constraints("auth/jwt", agent="x", as_of=AT_2055).constraints == ()

    def test_snapshot_at_2100_is_what_the_agents_saw(self, incident: sl.Lake) -> None:
        snap = incident.snapshot("2026-01-15T21:00:00Z").collect()
        beliefs = dict(
            zip(
                (snap["subject"] + " " + snap["predicate"]).to_list(),
                snap["value"].to_list(),
                strict=True,
            )
        )
        assert beliefs["auth/jwt signing_algorithm"] == '"ES256"'
        assert beliefs["deploy/auth-service config_version"] == '"v2026.01.15-es256"'
        assert "services/auth status" not in beliefs  # the 401s came at 21:04
        approved = incident.snapshot("2026-01-15T21:00:00Z", lifecycle="approved").collect()
        row = approved.filter(
            pl.col("subject") == "auth/jwt", pl.col("predicate") == "signing_algorithm"
        )
        assert row["value"].item() == '"RS256"'
