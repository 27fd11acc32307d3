"""A busy key (more than HOT_ROWS assertions) through the vectorized lenses.

Its candidates stay a Polars frame until read; every way of reading them must
equal the plain Python path's, which a key below the threshold takes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import steme_lake as sl
from steme_lake import LakeOptions
from steme_lake.query import ResolutionOptions, _index
from steme_lake.query._answer import Candidates

N = 1_200


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hot") / "lake"
    with sl.open(path) as lake:
        lake.assert_many(
            pl.DataFrame(
                {
                    "subject": ["svc/0/auth/jwt"] * N,
                    "predicate": ["alg"] * N,
                    "object": [["RS256", "ES256", "HS256"][i % 3] for i in range(N)],
                    "agent": [f"ag{i % 40}" for i in range(N)],
                    "source": [f"https://s/{i % 90}" for i in range(N)],
                    # Repeats, so that ties in effective confidence exist.
                    "confidence": [round(0.2 + (i % 7) / 10, 1) for i in range(N)],
                    "lifecycle": [["proposed", "approved"][i % 2] for i in range(N)],
                }
            )
        )
    return path


# Without decay, effective confidences are exact (no float noise between the two
# paths' arithmetic), so ties are real ties. Decay on hot keys: test_state_index.
OPTIONS = LakeOptions(state_index="eager", resolution=ResolutionOptions(half_life_days=None))
AT = datetime(2030, 1, 1, tzinfo=UTC)


def _ask(path: Path, hot_rows: int, monkeypatch: pytest.MonkeyPatch, **kw: object) -> sl.Answer:
    monkeypatch.setattr(_index, "HOT_ROWS", hot_rows)
    with sl.open(path, options=OPTIONS) as lake:
        return lake.query("svc/0/auth/jwt", "alg", agent="t", as_of=AT, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("kw", [{}, {"lens": "consensus"}, {"lifecycle": "approved"}])
def test_hot_equals_python(busy: Path, monkeypatch: pytest.MonkeyPatch, kw: dict) -> None:
    hot = _ask(busy, 1_000, monkeypatch, **kw)
    plain = _ask(busy, 10**9, monkeypatch, **kw)
    assert isinstance(hot.candidates, Candidates) and isinstance(plain.candidates, Candidates)
    assert (hot.value, hot.assertion, hot.confidence) == (
        plain.value,
        plain.assertion,
        pytest.approx(plain.confidence),
    )
    assert (hot.contributing, hot.sources) == (plain.contributing, plain.sources)
    n = len(plain.candidates)
    assert len(hot.candidates) == n and n >= N // 2
    assert hot.candidates.best(25) == plain.candidates.best(25)  # ties: oldest first
    assert hot.candidates.latest(3) == plain.candidates.latest(3) == tuple(plain.candidates)[-3:]
    assert hot.candidates.frame.equals(plain.candidates.frame)
    assert hot.candidates == plain.candidates and hot.candidates[7] == plain.candidates[7]


def test_best_breaks_ties_oldest_first(busy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ans = _ask(busy, 1_000, monkeypatch)
    every = list(ans.candidates)
    expected = sorted(every, key=lambda c: c.effective_confidence, reverse=True)[:40]
    assert list(ans.candidates.best(40)) == expected


def test_a_busy_answer_renders_the_latest_few(busy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ans = _ask(busy, 1_000, monkeypatch)
    page = ans._repr_html_()
    assert f"the latest 50 of {N:,} candidates" in page
    assert page.count("<tr>") == 51  # header and 50 rows
    assert "★" in page  # recency's winner is the latest, so it is shown
    assert f"{N} candidates" in repr(ans)


def test_the_audit_cites_what_the_answer_rests_on(
    busy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_index, "HOT_ROWS", 1_000)
    with sl.open(busy) as lake:
        recent = lake.query("svc/0/auth/jwt", "alg", agent="t")
        consensus = lake.query("svc/0/auth/jwt", "alg", agent="t", lens="consensus")
        audit = lake.audit.collect()
    cited = dict(zip(audit["id"], audit["contributing"].to_list(), strict=True))
    assert cited[recent.query_id] == [recent.assertion]
    assert len(cited[consensus.query_id]) == N


# (not consensus: its near-ties fall either way with the order of a float sum)
@pytest.mark.parametrize("kw", [{}, {"lifecycle": "approved"}, {"lens": "authority"}])
def test_a_busy_timeline_equals_the_plain_one(
    busy: Path, monkeypatch: pytest.MonkeyPatch, kw: dict, tmp_path: Path
) -> None:
    """`Lake.timeline` resolves a busy key over its own rows from the state index;
    the answers after each event equal those of a key below the threshold."""
    import shutil

    path = tmp_path / "lake"
    shutil.copytree(busy, path)
    with sl.open(path) as lake:
        first = lake.assertions.head(3).collect()["id"].to_list()
        for i, target in enumerate(first * 3):
            lake.vote(target, agent=f"voter{i}", weight=1.0 if i % 2 else -1.0)
        lake.set_lifecycle(first[0], "deprecated", agent="human-sre", reason="old")
    runs = {}
    for hot_rows in (1_000, 10**9):
        monkeypatch.setattr(_index, "HOT_ROWS", hot_rows)
        with sl.open(path, options=OPTIONS) as lake:
            runs[hot_rows] = lake.timeline("svc/0/auth/jwt", "alg", max_resolved=8, **kw)
    assert runs[1_000]["resolved_status"].is_not_null().sum() == 8
    assert_frame_equal(runs[1_000], runs[10**9], check_exact=False, rel_tol=1e-12)


def test_keys_joined_alike_stay_apart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Subject and predicate are joined with a separator a subject may hold: the
    busy key ("svc/a\x1fb", "c") and ("svc/a", "b\x1fc") share their joined key,
    and each is answered from its own assertions only."""
    monkeypatch.setattr(_index, "HOT_ROWS", 2)
    keys = [("svc/a\x1fb", "c", "left"), ("svc/a", "b\x1fc", "right")]
    with sl.open(tmp_path / "lake", options=OPTIONS) as lake:
        for subject, predicate, value in keys:
            n = 3 if value == "left" else 4
            lake.assert_many(
                pl.DataFrame(
                    {
                        "subject": [subject] * n,
                        "predicate": [predicate] * n,
                        "object": [value] * n,
                        "agent": [f"ag{i}" for i in range(n)],
                        "source": [f"https://s/{i}" for i in range(n)],
                    }
                )
            )
        for subject, predicate, value in keys:
            for as_of in (None, AT):
                answer = lake.query(subject, predicate, agent="t", as_of=as_of)
                assert answer.value == value
                assert len(answer.candidates) == (3 if value == "left" else 4)
