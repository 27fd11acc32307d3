"""The explorer's logic: each control changes what the panels show exactly as the
plain API says it should (`blame`, `timeline`, `diff`, `trace`, `provenance`,
`impact`, ``trust.scores``), and bad input is said in the panel, never raised."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

import steme_lake as sl
from steme_lake.widgets import Explorer
from steme_lake.widgets._explorer import MAX_RESOLVED
from tests.conftest import child_env

BELIEF = {"subject": "auth/jwt", "predicate": "signing_algorithm"}
TIMES = ("2025-12-18T10:00:00Z", "2026-01-15T14:29:00Z", "2026-01-15T14:30:00Z",
         "2026-01-15T21:09:00Z", "2026-01-15T21:10:00Z", "2026-01-15T21:11:00Z")  # fmt: skip


def _at(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def _text(value: object) -> str:
    return str(value).strip('"')


class TestTheBelief:
    def test_the_slider_follows_blame(self, corrected: tuple[sl.Lake, str]) -> None:
        lake, es = corrected
        x = Explorer(lake, **BELIEF, as_of="2026-01-15T20:55:00Z")
        assert x.shown_value == "ES256" and x.blame is not None and x.blame.answer.assertion == es
        for when in TIMES:
            x.when.value = _at(when)
            want = lake.blame(**BELIEF, as_of=when).answer
            assert x.shown_value == _text(want.value), when
            shown = set(x.pick.options and [v for _, v in x.pick.options])
            assert shown == {c.assertion for c in want.candidates}, when
            assert x.when_text.value == when
        assert x.timings["as of"] and "error" not in x.status.value

    def test_lens_and_lifecycle(self, corrected: tuple[sl.Lake, str]) -> None:
        lake, _ = corrected
        x = Explorer(lake, **BELIEF, as_of="2026-01-15T20:59:00Z")
        assert x.shown_value == "ES256"
        x.lifecycle.value = "approved"  # the filter the deploy agent did not use
        assert x.shown_value == "RS256"
        want = lake.blame(**BELIEF, as_of="2026-01-15T20:59:00Z", lens="consensus",
                          lifecycle="approved").answer  # fmt: skip
        x.lens.value = "consensus"
        assert x.shown_value == _text(want.value)
        assert f"{want.confidence:.2f}" in x.answer.value

    def test_timeline_is_the_api_timeline(self, corrected: tuple[sl.Lake, str]) -> None:
        lake, _ = corrected
        x = Explorer(lake, **BELIEF)
        for zoom in (0, 86_400, 3_600):  # the whole history, a day, an hour around as-of
            x.zoom.value = zoom
            data = x.timeline.data
            assert data is not None and x.view is not None
            lo, hi = x.view
            events = lake.timeline(**BELIEF, since=lo, until=hi, max_resolved=MAX_RESOLVED)
            shown = events.filter(pl.col("resolved_status").is_not_null())
            opening = lake.blame(**BELIEF, as_of=lo).answer  # the line starts at the view's start
            assert data.resolved_y[0] == (_text(opening.value) if opening.answered else "(none)")
            assert data.resolved_y[1:] == [_text(v) for v in shown["resolved_value"]]
            assert set(data.resolved_y) <= set(data.values)  # every point on the y axis
            assert list(x.timeline.resolved.y) == data.resolved_y
            assert len(data.assertions_x) == events.filter(pl.col("event") == "asserted").height
            asked = lake.audit.filter(
                pl.col("subject") == "auth/jwt", pl.col("predicate") == "signing_algorithm",
                pl.col("recorded_at") > lo, pl.col("recorded_at") <= hi,
            ).collect()  # fmt: skip
            assert sorted(data.questions_agent) == sorted(asked["agent"].to_list())
        x.zoom.value = 0
        data = x.timeline.data
        assert data is not None
        full = lake.timeline(**BELIEF)
        assert data.resolved_y[1:] == [_text(v) for v in full["resolved_value"]]  # all resolved
        assert "superseded" in data.events_kind  # the correction is marked
        assert set(data.values) >= {"RS256", "ES256"}
        x.when.value = _at("2026-01-15T21:00:00Z")
        for zoom, width in ((3_600, 3_600), (86_400, 86_400), (0, None)):
            x.zoom.value = zoom
            lo, hi = x.timeline.x.min, x.timeline.x.max
            seconds = (hi - lo) / np.timedelta64(1, "s")
            assert lo <= np.datetime64("2026-01-15T21:00:00") <= hi
            assert seconds == width if width else seconds > 86_400 * 20  # the lake's month

    def test_events_step_the_slider(self, corrected: tuple[sl.Lake, str]) -> None:
        lake, _ = corrected
        x = Explorer(lake, **BELIEF, as_of="2026-01-15T20:59:00Z")
        x.next_event.click()  # the deploy agent's question, 20:59:30 -> the 21:00 stop
        assert x.as_of == datetime(2026, 1, 15, 21, 0, tzinfo=UTC) and x.shown_value == "ES256"
        x.next_event.click()  # the correction
        assert x.as_of == datetime(2026, 1, 15, 21, 10, tzinfo=UTC) and x.shown_value == "RS256"
        x.previous_event.click()
        assert x.as_of == datetime(2026, 1, 15, 21, 0, tzinfo=UTC)

    def test_a_glob_offers_its_beliefs(self, corrected: tuple[sl.Lake, str]) -> None:
        lake, _ = corrected
        x = Explorer(lake)
        assert "auth/*" in x.subject.options and "auth/jwt" in x.subject.options
        x.subject.value = "services/*"  # completion drills down a level at a time
        assert x.subject.options == ("services/auth/*", "services/auth", "services/auth/config")
        x.subject.value = "auth/*"
        want = (
            lake.assertions.filter(pl.col("subject").str.starts_with("auth/"))
            .select("subject", "predicate")
            .unique()
            .sort("subject", "predicate")
            .collect()
        )
        assert [v for _, v in x.predicate.options] == list(want.iter_rows())
        x.predicate.value = ("auth/jwt", "token_ttl_seconds")
        assert x.shown_value == _text(lake.blame("auth/jwt", "token_ttl_seconds").answer.value)


class TestInvestigation:
    def test_diff_between_two_times(self, corrected: tuple[sl.Lake, str]) -> None:
        lake, _ = corrected
        x = Explorer(lake, subject="auth/*")
        x.window.value = (_at("2026-01-15T14:00:00Z"), _at("2026-01-15T21:05:00Z"))
        want = lake.diff("2026-01-15T14:00:00Z", "2026-01-15T21:05:00Z", "auth/*")
        assert x.diff is not None and x.diff.beliefs.equals(want.beliefs)
        assert x.diff.records.equals(want.records)
        assert "ES256" in x.diff_view.value

    def test_two_times_chosen_on_the_timeline(self, corrected: tuple[sl.Lake, str]) -> None:
        lake, _ = corrected
        x = Explorer(lake, subject="auth/*", predicate="signing_algorithm")
        x.timeline.brush.selected = np.array(
            ["2026-01-15T21:04:20", "2026-01-15T13:59:10"], dtype="datetime64[ms]"
        )  # dragged right to left: the order does not matter; minutes round outwards
        assert (x.window.value[0], x.window.value[1]) == (
            _at("2026-01-15T13:59:00Z"),
            _at("2026-01-15T21:05:00Z"),
        )
        want = lake.diff("2026-01-15T13:59:00Z", "2026-01-15T21:05:00Z", "auth/*")
        assert x.diff is not None and x.diff.beliefs.equals(want.beliefs)
        assert "now compares 2026-01-15T13:59:00Z" in x.status.value

    def test_who_asked_opens_provenance(self, corrected: tuple[sl.Lake, str]) -> None:
        lake, es = corrected
        x = Explorer(lake, **BELIEF, as_of="2026-01-15T21:05:00Z", agent="deploy-agent")
        assert x.agent.value == "deploy-agent" and x.trace is None  # drawn when opened
        x.tabs.selected_index = 3
        assert x.trace is not None and x.trace.height
        x.window.value = (_at("2026-01-15T00:00:00Z"), _at("2026-01-16T00:00:00Z"))
        assert Explorer(lake, agent="nobody").agent.value is None
        want = lake.trace("deploy-agent", "2026-01-15T00:00:00Z", "2026-01-16T00:00:00Z")
        assert x.trace is not None and x.trace.equals(want)
        assert [v for _, v in x.trace_pick.options] == want["query_id"].to_list()
        asked = want.filter(pl.col("predicate") == "signing_algorithm")["query_id"][0]
        x.trace_pick.value = asked
        assert x.record.value == asked and x.tabs.selected_index == 2
        chain = x.chain
        assert chain is not None
        nodes = chain.frame()
        prov = lake.provenance(asked)
        impact = lake.impact(es, depth=1, until=x.as_of)
        by_layer = {k[0]: set(g["key"]) for k, g in nodes.group_by("layer")}
        assert by_layer["source"] == {f"s:{h}" for h in prov["source_hash"]}
        assert by_layer["assertion"] == {f"a:{a}" for a in prov["assertion"]}
        assert f"q:{asked}" in by_layer["answer"]
        assert by_layer["received by"] == {f"r:{a}" for a in impact.agents["asked_by"]} | {
            "r:deploy-agent"
        }
        assert by_layer["derived"] == {f"d:{a}" for a in impact.assertions["id"]}
        assert (f"a:{es}", f"q:{asked}") in chain.edges
        assert "<svg" in x.chain_view.value and "deploy-agent" in x.chain_view.value

    def test_an_assertion_s_chain(self, corrected: tuple[sl.Lake, str]) -> None:
        lake, es = corrected
        x = Explorer(lake, **BELIEF, as_of="2026-01-15T20:59:00Z")
        x.pick.value = es
        x.explain_pick.click()
        assert x.record.value == es and x.chain is not None
        impact = lake.impact(es, depth=1, until=x.as_of)
        answers = {k for k in x.chain.frame()["key"] if k.startswith("q:")}
        assert answers == {f"q:{q}" for q in impact.queries["query_id"]}
        assert "Its lifecycle" in x.record_view.value
        assert (
            x.chain.until == x.as_of and "followed up to 2026-01-15T20:59:00Z" in x.chain_view.value
        )
        x.zoom.value = 3_600  # downstream at most the timeline's width after it was written
        x.record.value = ""
        x.record.value = es
        assert x.chain.until == datetime(2026, 1, 15, 15, 30, tzinfo=UTC)
        assert not {k for k in x.chain.frame()["key"] if k.startswith("q:")}  # asked at 20:55

    def test_trust_panel(self, corrected: tuple[sl.Lake, str]) -> None:
        lake, _ = corrected
        x = Explorer(lake, **BELIEF, as_of="2026-01-15T20:59:00Z")
        assert x.trust_view.value == ""  # not drawn until its tab is opened
        x.tabs.selected_index = 4
        assert "No trust scores yet" in x.trust_view.value
        lake.trust.run()
        x.refresh()
        x.tabs.selected_index = 4  # Trust: drawn when opened
        scores = lake.trust.scores()
        for agent in ("research-agent", "platform-team"):
            assert agent in x.trust_view.value
            assert agent in scores.filter(pl.col("topic") == "auth")["agent"].to_list()
        assert "payments-agent" not in x.trust_view.value  # not involved in this belief
        x.when.value = _at("2026-01-15T21:00:00Z")  # the panel on view follows the slider
        assert "2026-01-15T21:00:00Z" in x.trust_view.value
        x.tabs.selected_index = 0
        x.when.value = _at("2026-01-15T21:02:00Z")
        assert "21:02:00Z" not in x.trust_view.value  # out of view: drawn when opened again
        x.tabs.selected_index = 4
        assert "2026-01-15T21:02:00Z" in x.trust_view.value


class TestActing:
    def test_mark_incorrect_needs_a_reason_and_a_confirmation(
        self, corrected: tuple[sl.Lake, str]
    ) -> None:
        lake, _ = corrected
        x = Explorer(lake, subject="auth/jwt", predicate="token_ttl_seconds", actor="human-sre")
        target = x.pick.value
        before = lake.supersessions.collect().height
        x.mark_incorrect.click()
        assert "reason" in x.status.value and x.confirm.layout.display == "none"
        x.reason.value = "900 s is too long for this service"
        x.mark_incorrect.click()
        assert x.confirm.layout.display != "none" and "permanent" in x.act_view.value
        x.cancel.click()
        assert lake.supersessions.collect().height == before
        x.mark_incorrect.click()
        x.confirm.click()
        fix = lake.supersessions.collect().filter(pl.col("target") == target)
        assert fix.height == 1 and fix["agent"][0] == "human-sre" and fix["kind"][0] == "invalidate"
        assert "marked incorrect" in x.act_view.value

    def test_add_constraint(self, corrected: tuple[sl.Lake, str]) -> None:
        lake, es = corrected
        x = Explorer(lake, **BELIEF, as_of="2026-01-15T20:59:00Z", actor="human-sre")
        x.reason.value = "proposals are not decisions"
        x.add_constraint.click()
        assert "forbidden" in x.status.value  # nothing to constrain yet
        x.forbidden.value, x.must_use.value = "ES256", "RS256"
        x.add_constraint.click()
        x.confirm.click()
        rule = lake.constraints.filter(pl.col("agent") == "human-sre").collect()
        assert rule.height == 1 and rule["cites"][0] == es
        assert rule["forbidden"][0] == '"ES256"' and rule["must_use"][0] == '"RS256"'
        check = lake.check_constraints(
            "auth/jwt", agent="deploy-agent", proposed="ES256", predicate="signing_algorithm"
        )
        assert check.violations


class TestBadInput:
    def test_a_glob_that_matches_nothing(self, corrected: tuple[sl.Lake, str]) -> None:
        lake, _ = corrected
        x = Explorer(lake, **BELIEF)
        x.subject.value = "nothing/here/*"
        assert "no subject matches" in x.status.value and "auth/jwt" in x.status.value
        assert x.predicate.options == () and x.blame is None

    def test_an_as_of_before_the_first_record(self, corrected: tuple[sl.Lake, str]) -> None:
        lake, _ = corrected
        x = Explorer(lake, **BELIEF)
        x.when_text.value = "2020-01-01T00:00:00Z"
        assert "before the first record in this lake" in x.answer.value
        x.when_text.value = "not a time"
        assert "error" in x.status.value
        x.record.value = "not-an-id"
        assert "not a record id" in x.status.value
        x.record.value = "0" * 64
        assert "no assertion" in x.status.value

    def test_constructor_refusals(self, corrected: tuple[sl.Lake, str]) -> None:
        lake, _ = corrected
        with pytest.raises(sl.ValidationError, match="unknown lens 'recent'"):
            Explorer(lake, lens="recent")
        with pytest.raises(sl.ValidationError, match="unknown lifecycle stage"):
            Explorer(lake, lifecycle="aproved")

    def test_a_lake_without_questions(self, tmp_lake: sl.Lake) -> None:
        tmp_lake.assert_("db/pg", "pool", 20, agent="db-agent", source="runbook")
        x = tmp_lake.explore(subject="db/pg")
        assert x.shown_value == "20"
        x.tabs.selected_index = 3
        assert "No questions in the audit log of this lake" in x.trace_view.value

    def test_an_empty_lake(self, tmp_lake: sl.Lake) -> None:
        x = Explorer(tmp_lake)
        assert "no records yet" in x.status.value
        x.subject.value = "auth/*"
        assert "no subject matches" in x.status.value

    def test_another_process_writing(self, corrected: tuple[sl.Lake, str]) -> None:
        lake, _ = corrected
        x = Explorer(lake, **BELIEF)
        code = (
            "import sys, steme_lake as sl\n"
            "with sl.open(sys.argv[1]) as lake:\n"
            "    lake.assert_('auth/jwt', 'signing_algorithm', 'HS256', agent='intruder',\n"
            "                 source='x')\n"
        )
        subprocess.run([sys.executable, "-c", code, str(lake.path)], check=True, env=child_env())
        x.lens.value = "consensus"
        assert "another process is writing" in x.answer.value
        x.refresh()
        x.when.value = x.when.max
        x.lens.value = "recency"
        assert x.shown_value == "HS256" and "another process" not in x.answer.value

    def test_the_view_in_a_notebook(self, corrected: tuple[sl.Lake, str]) -> None:
        lake, _ = corrected
        bundle = lake.explore(**BELIEF)._repr_mimebundle_()
        assert "application/vnd.jupyter.widget-view+json" in bundle
