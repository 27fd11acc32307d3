"""Incident investigation: the SRE's six questions, impact, belief diff, and arguments."""

from __future__ import annotations

import random
import warnings
from pathlib import Path

import polars as pl
import pytest

import steme_lake as sl
from steme_lake import ValidationError
from steme_lake.lake._investigate import NoMatchWarning
from tests.conftest import JWT_EVENTS

RFC_URL = "https://rfc.example/jwt-es256"


@pytest.fixture
def incident(tmp_lake: sl.Lake) -> sl.Lake:
    tmp_lake.import_events(JWT_EVENTS)
    return tmp_lake


def _rfc(lake: sl.Lake) -> str:
    return (
        lake.assertions.filter(pl.col("source_hash") == sl.source_hash_of(RFC_URL))
        .select("id").collect().item()
    )  # fmt: skip


class TestSixQuestions:
    """The on-call SRE's questions, answered on the incident."""

    def test_1_what_did_the_system_believe_at_2100(self, incident: sl.Lake) -> None:
        ans = incident.query(
            "auth/jwt", "signing_algorithm", agent="sre", as_of="2026-01-15T21:00:00Z"
        )
        assert (ans.value, ans.lifecycle, ans.assertion) == ("ES256", "proposed", _rfc(incident))

    def test_2_what_did_the_deploy_agent_ask_before_the_deploy(self, incident: sl.Lake) -> None:
        trace = incident.trace("deploy-agent", "2026-01-15T15:00:00Z", "2026-01-15T21:00:00Z")
        assert trace["predicate"].to_list() == ["jwt_algorithm", "signing_algorithm"]
        assert trace["value"].to_list() == ['"ES256"', '"ES256"']
        assert trace["recorded_at"].is_sorted()
        assert _rfc(incident) in trace["contributing"][1]

    def test_3_where_did_es256_come_from(self, incident: sl.Lake) -> None:
        (qid,) = incident.trace(
            "lead-orchestrator", "2026-01-15T20:00:00Z", "2026-01-15T21:00:00Z", subject="auth/*"
        )["query_id"]
        chain = incident.provenance(qid)
        won = chain.filter(pl.col("won")).row(0, named=True)
        assert won["source_hash"] == sl.source_hash_of(RFC_URL)
        assert (won["agent"], won["value"], won["lifecycle_at_query"]) == (
            "research-agent",
            '"ES256"',
            "proposed",
        )
        assert won["asked_by"] == "lead-orchestrator" and won["answer"] == '"ES256"'
        lost = chain.filter(~pl.col("won")).row(0, named=True)
        assert (lost["agent"], lost["lifecycle_at_query"]) == ("platform-team", "approved")
        # A recency answer rests on its winner alone; the approved RS256 was weighed
        # and lost (the question had no lifecycle filter), so it is shown, not cited.
        assert (won["cited"], won["weighed"]) == (True, True)
        assert (lost["cited"], lost["weighed"]) == (False, True)

    def test_4_what_changed_about_auth_in_24h(self, incident: sl.Lake) -> None:
        diff = incident.diff("2026-01-14T21:00:00Z", "2026-01-15T21:00:00Z", subject="auth/*")
        (row,) = diff.beliefs.iter_rows(named=True)
        assert (row["subject"], row["before"], row["after"]) == ("auth/jwt", '"RS256"', '"ES256"')
        assert (row["cause"], row["cause_agent"]) == (_rfc(incident), "research-agent")
        assert set(diff.records["table"]) == {"assertions", "votes"}
        assert set(diff.records["subject"]) == {"auth/jwt"}

    def test_5_what_else_used_the_bad_answer(self, incident: sl.Lake) -> None:
        impact = incident.impact(_rfc(incident), depth=1)
        assert set(impact.queries["asked_by"]) == {"lead-orchestrator", "deploy-agent"}
        assert impact.queries["won"].all()
        derived = dict(zip(impact.assertions["subject"], impact.assertions["why"], strict=True))
        assert derived == {
            "services/auth/config": "parent chain",
            "deploy/auth-service": "parent chain",
        }
        counts = dict(zip(impact.summary["kind"], impact.summary["count"], strict=True))
        assert counts["queries"] == 2 and counts["votes"] == 1

    def test_5c_impact_follows_the_bad_data_downstream(self, incident: sl.Lake) -> None:
        """The proposal fed a derived assertion (the config, by a parent link) that
        the deploy agent then asked about and used: two levels down, found."""
        rfc = _rfc(incident)
        impact = incident.impact(rfc)  # three levels by default
        config = impact.assertions.filter(pl.col("subject") == "services/auth/config")
        (config_id,) = config["id"]
        second = impact.queries.filter(pl.col("depth") == 2)
        assert second.select("asked_by", "subject", "cites", "won").rows() == [
            ("deploy-agent", "services/auth/config", config_id, True)
        ]
        assert second["via"].to_list() == [[rfc, config_id]]
        assert impact.agents.filter(pl.col("asked_by") == "deploy-agent")["queries"].item() == 2
        deploy = impact.assertions.filter(pl.col("subject") == "deploy/auth-service")
        assert deploy.select("depth", "why").row(0) == (1, "parent chain")
        assert deploy["via"].to_list() == [[rfc, config_id]]
        # level 1 alone is the direct impact
        direct = incident.impact(rfc, depth=1)
        assert direct.queries.height == 2 and set(direct.queries["depth"]) == {1}
        for bad in (0, 11, 1.5, True, "3"):
            with pytest.raises(ValidationError, match="depth must be a whole number"):
                incident.impact(rfc, depth=bad)  # type: ignore[arg-type]

    def test_5b_the_investigators_own_questions_are_not_impact(self, incident: sl.Lake) -> None:
        """Asking about the bad answer afterwards is audited, and cites it; ``until``
        keeps the impact to the incident (the demo used to count its own questions)."""
        rfc = _rfc(incident)
        incident.query("auth/jwt", "signing_algorithm", agent="sre", as_of="2026-01-15T21:00:00Z")
        incident.vote(rfc, agent="sre", weight=-1.0)
        later = incident.impact(rfc)
        assert "sre" in set(later.queries["asked_by"]) and later.votes.height == 2
        during = incident.impact(rfc, until="2026-01-15T21:04:00Z")
        assert set(during.queries["asked_by"]) == {"lead-orchestrator", "deploy-agent"}
        assert during.votes.height == 1
        counts = dict(zip(during.summary["kind"], during.summary["count"], strict=True))
        # the two that got the RFC's answer, and the deploy agent's on the config
        assert counts["queries"] == 3 and counts["agents"] == 2
        before_it = incident.impact(rfc, until="2026-01-15T14:31:00Z")  # just after it was made
        assert before_it.queries.height == 0 and before_it.assertions.height == 0
        with pytest.raises(ValidationError, match="until"):
            incident.impact(rfc, until="not a time")

    def test_6_mark_it_incorrect_right_now(self, incident: sl.Lake) -> None:
        rfc = _rfc(incident)
        fix = incident.supersede(
            rfc, agent="human-sre", kind="invalidate", reason="ES256 broke auth"
        )
        assert incident.query("auth/jwt", "signing_algorithm", agent="sre").value == "RS256"
        diff = incident.diff("-1h", subject="auth/jwt")
        (row,) = diff.beliefs.iter_rows(named=True)
        assert (row["before"], row["after"], row["cause"]) == ('"ES256"', '"RS256"', fix)
        assert "supersessions" in set(diff.records["table"])
        blame = incident.blame("auth/jwt", "signing_algorithm")
        assert blame.answer.value == "RS256" and blame.assertion["agent"][0] == "platform-team"
        timeline = incident.timeline("auth/jwt", "signing_algorithm")
        assert timeline["resolved_value"].to_list()[-1] == '"RS256"'
        assert "superseded" in set(timeline["event"])

    def test_timeline_window_and_sampling(self, incident: sl.Lake) -> None:
        """A window keeps its events (since excluded, until included); max_resolved
        resolves evenly spread rows, the last always, each as the full timeline does."""
        for i in range(12):  # a busier belief: votes back and forth
            incident.vote(_rfc(incident), agent=f"voter-{i}", weight=1.0 if i % 2 else -1.0)
        full = incident.timeline("auth/jwt", "signing_algorithm", lens="consensus")
        times = full["recorded_at"]
        part = incident.timeline("auth/jwt", "signing_algorithm", lens="consensus",
                                 since=times[1], until=times[-3])  # fmt: skip
        assert part.equals(full.slice(2, full.height - 4))
        some = incident.timeline("auth/jwt", "signing_algorithm", lens="consensus", max_resolved=4)
        done = some.with_row_index("i").filter(pl.col("resolved_status").is_not_null())
        assert done.height == 4 and done["i"][-1] == full.height - 1
        picked = full.with_row_index("i").filter(pl.col("i").is_in(done["i"].implode()))
        assert done.drop("i").equals(picked.drop("i"))
        with pytest.raises(ValidationError, match="max_resolved"):
            incident.timeline("auth/jwt", "signing_algorithm", max_resolved=0)

    def test_provenance_with_the_question_s_time(self, incident: sl.Lake) -> None:
        """The explorer passes a trace row's time: the same rows, and a wrong time
        only costs the full search."""
        row = incident.trace("deploy-agent", "2026-01-15T00:00:00Z").row(-1, named=True)
        plain = incident.provenance(row["query_id"])
        assert incident._provenance(row["query_id"], row["recorded_at"]).equals(plain)
        assert incident._provenance(row["query_id"], "2020-01-01T00:00:00Z").equals(plain)

    def test_provenance_from_the_state_index(
        self, incident: sl.Lake, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The candidates a question weighed, read from the key's rows in the state
        index, equal those read from the lake's tables."""
        path = incident.path
        incident.close()
        with sl.open(path, options=sl.LakeOptions(state_index="eager")) as lake:
            ids = lake.audit.select("id").collect()["id"].to_list()
            assert lake._key_tables("auth/jwt", "signing_algorithm", busy_only=False) is not None
            indexed = [lake.provenance(q) for q in ids]
            monkeypatch.setattr(type(lake), "_key_tables", lambda *a, **k: None)
            plain = [lake.provenance(q) for q in ids]
        assert all(a.equals(b) for a, b in zip(indexed, plain, strict=True))

    def test_blame_with_no_answer(self, incident: sl.Lake) -> None:
        """With every candidate filtered out, blame says so (and warns about nothing)."""
        blame = incident.blame("auth/jwt", "signing_algorithm", lifecycle="deprecated")
        assert blame.answer.value is None
        assert blame.assertion.height == blame.lifecycle.height == blame.votes.height == 0


class TestImpactPlanted:
    """Impact finds every query that used a planted bad assertion, and nothing else."""

    def test_synthetic_history(self, lake_path: Path) -> None:
        rng = random.Random(7)
        with sl.open(lake_path) as lake:
            subjects = [f"svc/{i}/auth" for i in range(8)]
            for s in subjects:
                lake.assert_many(
                    [
                        {
                            "subject": s,
                            "predicate": "alg",
                            "object": rng.choice(["RS256", "HS256"]),
                            "agent": f"ag{rng.randint(0, 4)}",
                            "source": f"https://{s}/{k}",
                        }
                        for k in range(3)
                    ]
                )
            bad = lake.assert_("svc/3/auth", "alg", "ES256", agent="rogue", source="https://bad")
            used, won = set(), set()
            for i in range(120):
                s = rng.choice(subjects)
                ans = lake.query(
                    s,
                    "alg",
                    agent=f"caller{i % 6}",
                    lens=rng.choice(["recency", "consensus", "authority"]),
                    lifecycle=rng.choice([None, "proposed"]),
                )
                if bad in ans.contributing:
                    used.add(ans.query_id)
                    if ans.assertion == bad:
                        won.add(ans.query_id)
            impact = lake.impact(bad)
        assert used and set(impact.queries["query_id"]) == used
        assert set(impact.queries.filter(pl.col("won"))["query_id"]) == won


class TestBeliefDiff:
    """The belief diff equals comparing two snapshots by hand."""

    def test_against_snapshots(self, incident: sl.Lake) -> None:
        since, until = "2026-01-10T00:00:00Z", "2026-01-15T21:05:00Z"
        diff = incident.diff(since, until)
        a = incident.snapshot(since).collect()
        b = incident.snapshot(until).collect()
        before = {(r["subject"], r["predicate"]): r["value"] for r in a.iter_rows(named=True)}
        after = {(r["subject"], r["predicate"]): r["value"] for r in b.iter_rows(named=True)}
        expected = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        got = set(zip(diff.beliefs["subject"], diff.beliefs["predicate"], strict=True))
        assert got == expected and len(expected) >= 4  # the RFC and the 20:57-21:04 writes

    @pytest.mark.parametrize("flushed", [True, False])
    def test_records_aimed_at_older_assertions(self, tmp_lake: sl.Lake, flushed: bool) -> None:
        """A vote or lifecycle change in the window names the subject of the
        assertion it is aimed at, even one written long before the window (found
        by id, in the files or in the unflushed tail), and the glob keeps it."""
        old = tmp_lake.assert_(
            "auth/jwt", "alg", "RS256", agent="a", source="https://rfc", at="2026-01-01T00:00:00Z"
        )
        other = tmp_lake.assert_(
            "db/pool", "size", 10, agent="a", source="https://ops", at="2026-01-01T00:00:00Z"
        )
        if flushed:
            tmp_lake.flush()
        tmp_lake.vote(old, agent="b", weight=1.0, at="2026-01-10T10:00:00Z")
        tmp_lake.set_lifecycle(other, "approved", agent="b", at="2026-01-10T11:00:00Z")
        diff = tmp_lake.diff("2026-01-10T00:00:00Z", "2026-01-11T00:00:00Z", subject="auth/*")
        assert diff.records.select("table", "subject", "target").rows() == [
            ("votes", "auth/jwt", old)
        ]
        everything = tmp_lake.diff("2026-01-10T00:00:00Z", "2026-01-11T00:00:00Z")
        assert everything.records.select("table", "subject").rows() == [
            ("votes", "auth/jwt"),
            ("lifecycle", "db/pool"),
        ]


class TestArguments:
    """Globs, relative times, empty windows and unknown agents behave and explain themselves."""

    def test_globs(self, incident: sl.Lake) -> None:
        everything = incident.trace("deploy-agent", "2026-01-01T00:00:00Z", "2026-01-16T00:00:00Z")
        services = incident.trace(
            "deploy-agent", "2026-01-01T00:00:00Z", "2026-01-16T00:00:00Z", subject="services/*"
        )
        assert set(services["subject"]) == {"services/auth/config"} and everything.height == 2
        assert (
            incident.trace(
                "deploy-agent", "2026-01-01T00:00:00Z", "2026-01-16T00:00:00Z", subject="auth"
            ).height
            == 1
        )  # a plain path: it and what is under it
        assert (
            incident.trace(
                "deploy-agent", "2026-01-01T00:00:00Z", "2026-01-16T00:00:00Z", subject="a?th/j*"
            ).height
            == 1
        )

    def test_relative_times(self, tmp_lake: sl.Lake) -> None:
        tmp_lake.assert_("s", "p", 1, agent="a", source="x")
        tmp_lake.query("s", "p", agent="asker")
        assert tmp_lake.trace("asker", "-30m").height == 1
        assert tmp_lake.trace("asker", "-2h", "-1h").height == 0
        assert tmp_lake.diff("-1h").records.height == 1

    def test_empty_window(self, incident: sl.Lake) -> None:
        with pytest.raises(ValidationError, match="window is empty"):
            incident.trace("deploy-agent", "2026-01-16T00:00:00Z", "2026-01-15T00:00:00Z")
        with pytest.raises(ValidationError, match="window is empty"):
            incident.diff("-1h", "-2h")

    def test_unknown_agent_warns_with_suggestions(self, incident: sl.Lake) -> None:
        with pytest.warns(NoMatchWarning, match="deploy-agent"):
            assert incident.trace("deploy-agnet", "2026-01-01T00:00:00Z").height == 0
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a known agent with an empty window is not a warning
            assert (
                incident.trace(
                    "deploy-agent", "2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z"
                ).height
                == 0
            )

    def test_unknown_ids(self, incident: sl.Lake) -> None:
        with pytest.raises(sl.UnknownRecordError, match="audit log"):
            incident.provenance("ab" * 32)
        with pytest.raises(sl.UnknownRecordError):
            incident.impact("cd" * 32)
        with pytest.raises(ValidationError, match="record id"):
            incident.impact("nope")
        with pytest.raises(ValidationError, match="subject pattern"):
            incident.trace("deploy-agent", "-1d", subject="")

    def test_html(self, incident: sl.Lake) -> None:
        assert (
            "<table" in incident.diff("2026-01-14T21:00:00Z", "2026-01-15T21:00:00Z")._repr_html_()
        )
        assert "winning assertion" in incident.blame("auth/jwt", "signing_algorithm")._repr_html_()
        assert "summary" in incident.impact(_rfc(incident))._repr_html_()


def test_decoded_values_filter_as_a_person_types_them(tmp_lake: sl.Lake) -> None:
    """``pl.col("value") == "ES256"`` found nothing while the answer's value is ES256."""
    tmp_lake.import_events(JWT_EVENTS)
    trace = tmp_lake.trace("lead-orchestrator", since="2026-01-01")
    answer = trace.filter(pl.col("op") == "query")["value"][0]
    assert answer == '"ES256"'  # JSON text in the frame
    assert trace.filter(sl.decoded("value") == "ES256").height == 1
    assert trace.filter(sl.decoded("value") == '"ES256"').height == 0
