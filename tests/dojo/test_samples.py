"""The Dojo's first part: samples mined from the JWT incident, each built from the
lake as it stood when the question was asked."""

from __future__ import annotations

import polars as pl
import pytest

import steme_lake as sl


class TestTheIncident:
    """The proposal taken for a decision, and the answer later invalidated."""

    def test_proposal_as_decision(self, incident: tuple[sl.Lake, str]) -> None:
        lake, _ = incident
        samples = lake.dojo.samples(kinds=["proposal_as_decision"])
        assert set(samples["agent"]) == {"lead-orchestrator", "deploy-agent"}  # not the SRE's as-of
        first = samples.filter(pl.col("agent") == "lead-orchestrator").row(0, named=True)
        assert first["rejected"] == [{"role": "assistant", "content": "ES256"}]
        assert first["chosen"][0]["content"].startswith("RS256: the approved decision")
        question = first["prompt"][-1]
        assert question["role"] == "user" and "2026-01-15T20:55:00Z" in question["content"]
        assert "- RS256: approved, by platform-team" in question["content"]
        assert "- ES256: proposed, by research-agent" in question["content"]
        assert first["prompt"][0]["role"] == "system"
        assert lake.get(first["query_id"]).agent == "lead-orchestrator"  # type: ignore[attr-defined]

    def test_invalidated_answer_only_once_corrected(self, incident: tuple[sl.Lake, str]) -> None:
        lake, es = incident
        assert lake.dojo.samples(kinds=["invalidated_answer"]).is_empty()
        stamp = lake.status().last_time
        fix = lake.supersede(es, agent="human-sre", kind="invalidate", reason="ES256 broke auth")
        after = lake.dojo.samples(kinds=["invalidated_answer"])
        assert after.height == 2 and set(after["supersession"]) == {fix}
        assert "ES256 broke auth" in after["chosen"][0][0]["content"]
        assert lake.dojo.samples(kinds=["invalidated_answer"], as_of=stamp).is_empty()

    def test_deterministic_and_filtered(self, incident: tuple[sl.Lake, str]) -> None:
        lake, _ = incident
        assert lake.dojo.samples().equals(lake.dojo.samples())
        assert lake.dojo.samples(subject="db/*").is_empty()
        assert lake.dojo.samples(until="2026-01-15T20:56:00Z").height == 1

    def test_unknown_kind(self, incident: tuple[sl.Lake, str]) -> None:
        lake, _ = incident
        with pytest.raises(sl.ValidationError, match="did you mean 'proposal_as_decision'"):
            lake.dojo.samples(kinds=["proposal_as_decisoin"])
