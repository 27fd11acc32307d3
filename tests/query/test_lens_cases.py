"""Exact lens cases, through both the index (Python) path and the scan (Polars) path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import steme_lake as sl
from steme_lake import LakeOptions
from steme_lake.query import ResolutionOptions, _index

NO_DECAY = ResolutionOptions(half_life_days=None)


# eager: the index, Python lenses; hot: the index, every key sent to the vectorized
# lenses as a busy key is; off: the scan (Polars) path.
@pytest.fixture(params=["eager", "hot", "off"])
def lake(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[sl.Lake]:
    if request.param == "hot":
        monkeypatch.setattr(_index, "HOT_ROWS", 0)
    mode = "off" if request.param == "off" else "eager"
    opened = sl.open(tmp_path / "lake", options=LakeOptions(state_index=mode, resolution=NO_DECAY))
    assert opened.status().state_index == ("off" if mode == "off" else "ready")
    yield opened
    opened.close()


def _a(lake: sl.Lake, value: str, agent: str, conf: float, source: str, at: str) -> str:
    return lake.assert_(
        "auth/jwt", "alg", value, agent=agent, confidence=conf, source=source, at=at
    )


class TestConsensus:
    """Support = own confidence + votes x voter trust; a voter's latest vote counts."""

    def test_latest_vote_of_each_voter(self, lake: sl.Lake) -> None:
        rs = _a(lake, "RS256", "ag0", 0.5, "https://a", "2026-01-01T00:00:00Z")
        es = _a(lake, "ES256", "ag1", 0.75, "https://b", "2026-01-01T01:00:00Z")
        lake.vote(rs, agent="ag2", weight=-1.0, at="2026-01-01T02:00:00Z")
        lake.vote(rs, agent="ag2", weight=2.0, at="2026-01-01T03:00:00Z")  # changes its mind
        ans = lake.query("auth/jwt", "alg", agent="t", lens="consensus")
        # RS256: 0.5 + 2.0 * 0.5 = 1.5; ES256: 0.75 -> 1.5 / 2.25
        assert (ans.value, ans.assertion) == ("RS256", rs)
        assert ans.confidence == pytest.approx(1.5 / 2.25)
        before = lake.query(
            "auth/jwt", "alg", agent="t", lens="consensus", as_of="2026-01-01T02:30:00Z"
        )
        # Only the -1 vote exists then: RS256 0.5 - 0.5 = 0.0; ES256 0.75.
        assert (before.value, before.assertion, before.confidence) == ("ES256", es, 1.0)

    def test_seed_voter_counts_double(self, lake: sl.Lake) -> None:
        _a(lake, "RS256", "ag0", 0.5, "https://a", "2026-01-01T00:00:00Z")
        es = _a(lake, "ES256", "ag1", 0.5, "https://b", "2026-01-01T01:00:00Z")
        lake.vote(es, agent="human-sre", weight=-0.4, at="2026-01-01T02:00:00Z")
        ans = lake.query("auth/jwt", "alg", agent="t", lens="consensus")
        assert ans.value == "RS256"  # ES256: 0.5 - 0.4 * 1.0 = 0.1 < 0.5

    def test_no_positive_support(self, lake: sl.Lake) -> None:
        rs = _a(lake, "RS256", "ag0", 0.0, "https://a", "2026-01-01T00:00:00Z")
        lake.vote(rs, agent="ag1", weight=-1.0, at="2026-01-01T01:00:00Z")
        ans = lake.query("auth/jwt", "alg", agent="t", lens="consensus")
        assert (ans.status, ans.value, ans.assertion) == ("no_answer", None, None)
        assert ans.contributing == (rs,)


class TestAuthority:
    """Trust on the topic times effective confidence; scores are as of T."""

    def test_trust_scores_change_the_winner(self, lake: sl.Lake) -> None:
        human = _a(lake, "RS256", "human-sre", 0.5, "https://a", "2026-01-01T00:00:00Z")
        bot = _a(lake, "ES256", "ag0", 0.75, "https://b", "2026-01-01T01:00:00Z")
        lake.record_trust("ag0", "auth", 4.0, at="2026-01-01T02:00:00Z")
        lake.record_trust("ag0", "billing", 0.0, at="2026-01-01T02:00:00Z")  # another topic
        lake.record_trust("ag0", "auth/jwt", 0.1, at="2026-01-01T03:00:00Z")  # longer topic wins

        def ask(when):
            return lake.query("auth/jwt", "alg", agent="t", lens="authority", as_of=when)

        assert ask("2026-01-01T01:30:00Z").assertion == human  # seed trust 1.0 x 0.5 > 0.5 x 0.75
        assert ask("2026-01-01T02:30:00Z").assertion == bot  # 4.0 x 0.75
        assert ask("2026-01-01T03:30:00Z").assertion == human  # 0.1 x 0.75


class TestSkeptic:
    """Independence means distinct agents and distinct sources."""

    def test_two_agents_one_source_is_not_independent(self, lake: sl.Lake) -> None:
        _a(lake, "RS256", "ag0", 0.9, "https://same", "2026-01-01T00:00:00Z")
        _a(lake, "RS256", "ag1", 0.9, "https://same", "2026-01-01T01:00:00Z")
        _a(lake, "RS256", "ag1", 0.9, "https://other", "2026-01-01T02:00:00Z")

        def ask(when):
            return lake.query("auth/jwt", "alg", agent="t", lens="skeptic", as_of=when)

        assert ask("2026-01-01T01:30:00Z").status == "contested"
        assert ask("2026-01-01T02:30:00Z").status == "answered"

    def test_weak_contradiction_is_tolerated(self, lake: sl.Lake) -> None:
        _a(lake, "RS256", "ag0", 0.9, "https://a", "2026-01-01T00:00:00Z")
        _a(lake, "RS256", "ag1", 0.9, "https://b", "2026-01-01T01:00:00Z")
        _a(lake, "ES256", "ag2", 0.25, "https://c", "2026-01-01T02:00:00Z")  # below 0.5
        ans = lake.query("auth/jwt", "alg", agent="t", lens="skeptic")
        assert (ans.status, ans.value) == ("answered", "RS256")


class TestLifecycleAndSupersession:
    """Lifecycle as of T is the last change; a source supersession covers earlier assertions."""

    def test_lifecycle_as_of(self, lake: sl.Lake) -> None:
        rid = _a(lake, "RS256", "ag0", 0.9, "https://a", "2026-01-01T00:00:00Z")
        lake.set_lifecycle(rid, "approved", agent="h", at="2026-01-02T00:00:00Z")
        lake.set_lifecycle(rid, "deprecated", agent="h", at="2026-01-03T00:00:00Z")

        def ask(when):
            return lake.query("auth/jwt", "alg", agent="t", lifecycle="approved", as_of=when)

        assert ask("2026-01-01T12:00:00Z").status == "no_answer"
        assert ask("2026-01-02T12:00:00Z").value == "RS256"
        assert ask("2026-01-03T12:00:00Z").status == "no_answer"

    def test_source_supersession_is_not_retroactive_for_later_assertions(
        self, lake: sl.Lake
    ) -> None:
        old = _a(lake, "ES256", "ag0", 0.9, "https://feed", "2026-01-01T00:00:00Z")
        lake.supersede(
            agent="h",
            kind="replace",
            reason="bad feed",
            source="https://feed",
            at="2026-01-02T00:00:00Z",
        )
        new = _a(lake, "RS256", "ag0", 0.9, "https://feed", "2026-01-03T00:00:00Z")
        then = lake.query("auth/jwt", "alg", agent="t", as_of="2026-01-02T12:00:00Z")
        assert then.status == "no_answer"
        ans = lake.query("auth/jwt", "alg", agent="t")
        assert ans.assertion == new and old not in ans.contributing


class TestWhatAnAnswerRestsOn:
    """``contributing`` (what the audit cites, what impact finds): the winner alone for
    recency and authority, every candidate weighed for consensus and skeptic."""

    def test_per_lens(self, lake: sl.Lake) -> None:
        old = _a(lake, "RS256", "ag0", 0.9, "https://a", "2026-01-01T00:00:00Z")
        mid = _a(lake, "RS256", "ag1", 0.8, "https://b", "2026-01-01T01:00:00Z")
        new = _a(lake, "ES256", "ag2", 0.4, "https://c", "2026-01-01T02:00:00Z")
        every = (old, mid, new)
        pairs = (("https://a", "ag0"), ("https://b", "ag1"), ("https://c", "ag2"))
        sources = {
            a: sl.source_hash_of(s) for a, s in zip(every, [p[0] for p in pairs], strict=True)
        }
        got = {
            lens: lake.query("auth/jwt", "alg", agent="t", lens=lens)
            for lens in ("recency", "authority", "consensus", "skeptic")
        }
        assert got["recency"].contributing == (new,)
        assert got["recency"].sources == ((sources[new], "ag2"),)
        assert got["authority"].assertion == old and got["authority"].contributing == (old,)
        assert got["consensus"].value == "RS256" and got["consensus"].contributing == every
        assert got["skeptic"].status == "answered" and got["skeptic"].contributing == every
        assert got["consensus"].sources == tuple(
            (sources[a], p[1]) for a, p in zip(every, pairs, strict=True)
        )
        for ans in got.values():  # all three were weighed every time
            assert [c.assertion for c in ans.candidates] == list(every)
        # Impact follows the citations: the loser `mid` touched the consensus and
        # skeptic answers (skeptic names the value's latest), not the recency or
        # authority ones.
        hit = lake.impact(mid).queries
        won = dict(zip(hit["query_id"], hit["won"], strict=True))
        assert won == {got["consensus"].query_id: False, got["skeptic"].query_id: True}
