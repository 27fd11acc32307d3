"""The Dojo's samples, mined from the JWT incident and from small lakes built for
each kind, each prompt built from the lake as it stood at the sample's event."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

import steme_lake as sl
from tests.conftest import JWT_EVENTS


def _at(hour: int, minute: int = 0) -> str:
    return f"2026-03-01T{hour:02d}:{minute:02d}:00Z"


@pytest.fixture
def small(tmp_path: Path) -> Iterator[sl.Lake]:
    lake = sl.open(tmp_path / "small")
    yield lake
    lake.close()


class TestTheIncident:
    """The proposal taken for a decision, and the answer later invalidated."""

    def test_proposal_as_decision(self, incident: tuple[sl.Lake, str]) -> None:
        lake, es = incident
        samples = lake.dojo.samples(kinds=["proposal_as_decision"])
        # the deploy agent asked the same question with the same candidates: one
        # sample, its copy counted (the SRE's as-of question is no sample at all)
        assert samples.height == 1
        first = samples.row(0, named=True)
        assert first["agent"] == "lead-orchestrator" and first["duplicates"] == 1
        assert first["rejected"] == [{"role": "assistant", "content": "ES256"}]
        assert first["chosen"][0]["content"].startswith("RS256: the approved decision")
        question = first["prompt"][-1]
        assert question["role"] == "user" and "2026-01-15T20:55:00Z" in question["content"]
        assert "- RS256: approved, by platform-team" in question["content"]
        assert "- ES256: proposed, by research-agent" in question["content"]
        assert first["prompt"][0]["role"] == "system"
        assert first["rejected_assertion"] == es
        assert lake.get(first["query_id"]).agent == "lead-orchestrator"  # type: ignore[attr-defined]
        assert lake.get(first["chosen_assertion"]).object == "RS256"  # type: ignore[attr-defined]
        assert {"lead-orchestrator", "platform-team", "research-agent"} <= set(first["agents"])

    def test_invalidated_answer_only_once_corrected(self, incident: tuple[sl.Lake, str]) -> None:
        lake, es = incident
        assert lake.dojo.samples(kinds=["invalidated_answer"]).is_empty()
        stamp = lake.status().last_time
        fix = lake.supersede(es, agent="human-sre", kind="invalidate", reason="ES256 broke auth")
        after = lake.dojo.samples(kinds=["invalidated_answer"])
        assert after.height == 1 and after["supersession"].to_list() == [fix]
        chosen = after["chosen"][0][0]["content"]
        assert chosen.startswith("RS256:") and "ES256 broke auth" in chosen
        assert "invalidated by human-sre" in chosen
        # as of before the correction, nothing was known to be wrong
        assert lake.dojo.samples(kinds=["invalidated_answer"], as_of=stamp).is_empty()
        # and the corrected path: the question at the correction, answered RS256
        path = lake.dojo.samples(kinds=["corrected_path"])
        assert path.height == 1 and path["label"][0] == "positive"
        assert path["chosen"][0][0]["content"].startswith("RS256: ES256 was invalidated")
        assert path["rejected"].to_list() == [[]]

    def test_derived_from_a_corrected_parent_is_no_positive(
        self, incident: tuple[sl.Lake, str]
    ) -> None:
        lake, es = incident
        lake.supersede(es, agent="human-sre", kind="invalidate", reason="ES256 broke auth")
        good = lake.dojo.samples(kinds=["approved_answer"])
        assert good.height > 0 and set(good["label"]) == {"positive"}
        # the implementation agent's config (derived from ES256) taught nothing good
        assert "services/auth/config" not in set(good["subject"])

    def test_deterministic_and_filtered(self, incident: tuple[sl.Lake, str]) -> None:
        lake, _ = incident
        assert lake.dojo.samples().equals(lake.dojo.samples())
        assert lake.dojo.samples(subject="db/*", kinds="proposal_as_decision").is_empty()
        assert lake.dojo.samples(
            until="2026-01-15T20:54:00Z", kinds="proposal_as_decision"
        ).is_empty()
        assert (
            lake.dojo.samples(until="2026-01-15T20:56:00Z", kinds="proposal_as_decision").height
            == 1
        )

    def test_unknown_kind_and_bad_knobs(self, incident: tuple[sl.Lake, str]) -> None:
        lake, _ = incident
        with pytest.raises(sl.ValidationError, match="did you mean 'proposal_as_decision'"):
            lake.dojo.samples(kinds=["proposal_as_decisoin"])
        with pytest.raises(sl.ValidationError, match="kinds is empty"):
            lake.dojo.samples(kinds=[])
        with pytest.raises(sl.ValidationError, match="show must be"):
            lake.dojo.samples(show=0)
        with pytest.raises(sl.ValidationError, match="in the future"):
            lake.dojo.samples(as_of="2999-01-01")
        with pytest.raises(sl.ValidationError, match="swap them"):
            lake.dojo.samples(since="2026-02-01", until="2026-01-01")


class TestKinds:
    """Each kind on a lake built for it."""

    def test_contested_acted_on(self, small: sl.Lake) -> None:
        a = small.assert_("svc/cache", "ttl", 60, agent="a1", source="s1", at=_at(9))
        small.assert_("svc/cache", "ttl", 600, agent="a2", source="s2", at=_at(9, 5))
        ans = small.query("svc/cache", "ttl", agent="worker", lens="skeptic", as_of=None)
        assert ans.status == "contested"
        assert small.dojo.samples(kinds="contested_acted_on").is_empty()  # not acted on yet
        small.assert_("svc/cache/eu", "ttl", 60, agent="worker", source="s3", parent=a)
        got = small.dojo.samples(kinds="contested_acted_on")
        assert got.height == 1
        row = got.row(0, named=True)
        assert row["agent"] == "worker" and row["query_id"] == ans.query_id
        assert row["rejected"][0]["content"] == "60"  # what it acted on: the parent's value
        assert row["chosen"][0]["content"].startswith("No settled answer")
        assert "60 vs 600" in row["chosen"][0]["content"]

    def test_constraint_violation_and_honoured(self, small: sl.Lake) -> None:
        small.add_constraint("auth", forbidden="ES256", must_use="RS256",
                             reason="auth verifies RSA only", agent="human-sre")  # fmt: skip
        small.check_constraints("auth/jwt", agent="impl", proposed="ES256")
        small.check_constraints("auth/jwt", agent="impl2", proposed="RS256")
        small.assert_("auth/jwt", "alg", "ES256", agent="rogue", source="blog")
        got = small.dojo.samples(kinds=["constraint_violation", "constraint_honoured"])
        kinds = got["kind"].to_list()
        assert kinds.count("constraint_violation") == 2 and kinds.count("constraint_honoured") == 1
        check = got.filter(pl.col("agent") == "impl").row(0, named=True)
        assert check["rejected"][0]["content"] == "ES256"
        assert check["chosen"][0]["content"].startswith("RS256: constraint: auth verifies RSA")
        assert 'never "ES256"; must use "RS256"' in check["prompt"][1]["content"]
        write = got.filter(pl.col("agent") == "rogue").row(0, named=True)
        assert write["rejected_assertion"] is not None and write["constraint"] is not None
        assert "is about to record" in write["prompt"][1]["content"]
        ok = got.filter(pl.col("kind") == "constraint_honoured").row(0, named=True)
        assert ok["chosen"][0]["content"].startswith("RS256: it honours")

    def test_prompt_is_as_of_the_question(self, small: sl.Lake) -> None:
        """Candidates and votes recorded after the question never leak into its prompt."""
        good = small.assert_("db/pool", "size", 20, agent="dba", source="adr",
                             lifecycle="approved", at=_at(8))  # fmt: skip
        small.assert_("db/pool", "size", 50, agent="bot", source="guess", at=_at(9))
        small.query("db/pool", "size", agent="app")
        small.vote(good, agent="human-x", weight=1.0)
        small.assert_("db/pool", "size", 99, agent="late", source="later")
        row = small.dojo.samples(kinds="proposal_as_decision").row(0, named=True)
        text = row["prompt"][1]["content"]
        assert "99" not in text and "votes +0.0" in text and "votes +1.0" not in text
        assert row["votes"] == []

    def test_prompt_caps_candidates(self, small: sl.Lake) -> None:
        small.assert_("x/y", "p", "keep", agent="team", source="adr", lifecycle="approved",
                      at=_at(1))  # fmt: skip
        for i in range(30):
            small.assert_("x/y", "p", f"v{i}", agent=f"bot{i}", source=f"s{i}", at=_at(2, i))
        small.query("x/y", "p", agent="asker")
        text = small.dojo.samples(kinds="proposal_as_decision", show=5)["prompt"][0][1]["content"]
        lines = [x for x in text.splitlines() if x.startswith("- ")]
        # the five latest, and the approved decision the sample is about
        assert len(lines) == 6 and "- keep: approved" in text and "- v29:" in text
        assert "(and 25 more candidates not shown)" in text

    def test_excluded_sources_never_appear(self, small: sl.Lake) -> None:
        small.assert_("db/pool", "size", 20, agent="dba", source="adr", lifecycle="approved",
                      at=_at(8))  # fmt: skip
        bad = small.assert_("db/pool", "size", 50, agent="bot", source="secret", at=_at(9))
        small.query("db/pool", "size", agent="app")
        secret = small.get(bad).source_hash  # type: ignore[attr-defined]
        assert small.dojo.samples(kinds="proposal_as_decision").height == 1
        assert small.dojo.samples(kinds="proposal_as_decision",
                                  exclude_sources=[secret]).is_empty()  # fmt: skip


def test_a_limited_preview_is_the_start_of_the_whole(tmp_lake: sl.Lake) -> None:
    tmp_lake.import_events(JWT_EVENTS)
    tmp_lake.query("auth/jwt", "signing_algorithm", agent="late-agent")
    whole = tmp_lake.dojo.samples()
    assert whole.height > 3
    first = tmp_lake.dojo.samples(limit=3)
    assert first.height == 3
    assert first["sample_id"].to_list() == whole["sample_id"].head(3).to_list()
    with pytest.raises(sl.ValidationError, match="limit must be a positive integer"):
        tmp_lake.dojo.samples(limit=0)
