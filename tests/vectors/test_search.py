"""Semantic search with the lake's semantics: as of T, through the lifecycle and
supersession filters exactly as a lens applies them, checked against exact
search over the lens's own candidates."""

from __future__ import annotations

import random
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import steme_lake as sl
from steme_lake import ValidationError
from steme_lake._utils.timeparse import to_us
from steme_lake.query._candidates import candidates
from tests.conftest import JWT_EVENTS, PYTHON, child_env

PHRASES = [
    "token signing algorithm", "database connection pool size", "cache time to live",
    "retry policy for payments", "TLS certificate rotation", "rate limit per client",
    "log retention period", "feature flag rollout", "queue consumer concurrency",
    "session cookie lifetime",
]  # fmt: skip
SUBJECTS = ["auth/jwt", "auth/jwt/keys", "auth/jwtx", "db/postgres", "cache/redis", "payments"]
START = datetime(2026, 1, 1, tzinfo=UTC)


def _history(lake: sl.Lake, seed: int) -> list[datetime]:
    """Assertions, lifecycle moves and supersessions (by id, source and agent window)
    at known times; the times, for as-of cuts."""
    rng = random.Random(seed)
    at = START
    times, ids = [], []
    for i in range(120):
        at += timedelta(minutes=rng.randint(1, 30))
        aid = lake.assert_(
            rng.choice(SUBJECTS), rng.choice(["setting", "value", "policy"]),
            f"{rng.choice(PHRASES)} {i}", agent=rng.choice(["a1", "a2", "a3"]),
            confidence=rng.choice([0.2, 0.5, 0.9]),
            lifecycle=rng.choice(["proposed", "proposed", "approved", "under_review"]),
            source=f"src-{rng.randint(0, 15)}", at=at,
        )  # fmt: skip
        ids.append(aid)
        times.append(at)
        if i % 9 == 4:
            at += timedelta(minutes=1)
            lake.set_lifecycle(rng.choice(ids), rng.choice(["approved", "deprecated"]),
                               agent="human", at=at)  # fmt: skip
        if i % 23 == 11:
            at += timedelta(minutes=1)
            lake.supersede(rng.choice(ids), agent="human", kind="invalidate", reason="wrong", at=at)
        if i == 60:
            at += timedelta(minutes=1)
            lake.supersede(source="src-3", agent="human", kind="invalidate", reason="bad", at=at)
        if i == 90:
            at += timedelta(minutes=1)
            lake.supersede(target_agent="a2", window=(START, times[40]), agent="human",
                           kind="invalidate", reason="a2's first day", at=at)  # fmt: skip
        times.append(at)
    return times


def _exact(
    lake: sl.Lake,
    text: str,
    k: int,
    *,
    at: datetime,
    lifecycle: str | None,
    subject: str | None,
    min_confidence: float | None,
    include_superseded: bool,
) -> list[str]:
    """Brute force: the lens's own candidates at T, ranked by cosine in NumPy."""
    from steme_lake.vectors._search import _subject_expr

    store = lake.vectors._store()
    rows = store.table().to_arrow().to_pydict()
    vectors = dict(zip(rows["id"], np.array(rows["vector"], dtype=np.float32), strict=True))
    eligible = (
        candidates(
            lake._tables(), as_of=to_us(at), lifecycle=(lifecycle,) if lifecycle else None,
            min_confidence=min_confidence, include_superseded=include_superseded,
            opts=lake.options.resolution,
            subject_filter=None if subject is None else _subject_expr(subject),
        )
        .select("id")
        .collect()["id"]
        .to_list()
    )  # fmt: skip
    q = store.embedder.embed([text])[0]
    scored = sorted(eligible, key=lambda i: -float(vectors[i] @ q))
    return scored[:k]


@pytest.fixture
def history(tmp_lake: sl.Lake) -> tuple[sl.Lake, list[datetime]]:
    return tmp_lake, _history(tmp_lake, seed=3)


class TestSemantics:
    @pytest.mark.parametrize(
        ("cut", "lifecycle", "subject", "min_confidence", "include_superseded"),
        [
            (1.0, None, None, None, False),
            (0.5, "approved", None, None, False),
            (0.8, "proposed", "auth/jwt", None, False),
            (1.0, None, "auth/*", 0.4, True),
            (0.3, "deprecated", None, None, True),
            (0.95, ["approved", "under_review"], "db", None, False),
        ],
    )  # fmt: skip
    def test_same_as_exact_search_over_the_lens_candidates(
        self, history: tuple[sl.Lake, list[datetime]], cut: float, lifecycle: object,
        subject: str | None, min_confidence: float | None, include_superseded: bool,
    ) -> None:  # fmt: skip
        lake, times = history
        at = times[int(cut * (len(times) - 1))]
        stage = lifecycle if not isinstance(lifecycle, list) else None
        for text in ("how are tokens signed?", "payments retries"):
            found = lake.vectors.search(
                text, k=8, as_of=at, lifecycle=lifecycle, subject=subject,  # type: ignore[arg-type]
                min_confidence=min_confidence, include_superseded=include_superseded,
                hybrid=False, agent="sre",
            )  # fmt: skip
            if isinstance(lifecycle, list):
                both = {"at": at, "subject": subject, "min_confidence": min_confidence,
                        "include_superseded": include_superseded}  # fmt: skip
                expected = sorted(
                    set(_exact(lake, text, 50, lifecycle=lifecycle[0], **both))  # type: ignore[arg-type]
                    | set(_exact(lake, text, 50, lifecycle=lifecycle[1], **both))  # type: ignore[arg-type]
                )
                assert set(found["id"]) <= set(expected)
                assert found.height == min(8, len(expected))
                continue
            expected = _exact(lake, text, 8, at=at, lifecycle=stage, subject=subject,
                              min_confidence=min_confidence,
                              include_superseded=include_superseded)  # fmt: skip
            assert found["id"].to_list() == expected
            assert (found["recorded_at"] <= at).all()
            if lifecycle is not None:
                assert set(found["lifecycle"]) <= {lifecycle}
            if not include_superseded:
                assert not found["superseded"].any()

    def test_lifecycle_and_supersession_as_they_stood_at_t(self, tmp_lake: sl.Lake) -> None:
        """The best match moves out of 'proposed' (and another one in) at 12:00, and is
        superseded at 13:00: each filter sees it as it stood at the time asked."""
        day = datetime(2026, 1, 1, tzinfo=UTC)
        best = tmp_lake.assert_("auth/jwt", "alg", "ES256 signs the tokens", agent="r",
                                source="s", at=day)  # fmt: skip
        other = tmp_lake.assert_("auth/jwt", "alg", "RS256 signs the tokens", agent="p",
                                 source="s", lifecycle="approved",
                                 at=day + timedelta(hours=1))  # fmt: skip
        tmp_lake.set_lifecycle(best, "approved", agent="h", at=day + timedelta(hours=12))
        tmp_lake.set_lifecycle(other, "deprecated", agent="h", at=day + timedelta(hours=12))
        tmp_lake.supersede(best, agent="h", kind="invalidate", reason="x",
                           at=day + timedelta(hours=13))  # fmt: skip

        def ids(at: datetime, stage: str, **kw: object) -> list[str]:
            found = tmp_lake.vectors.search(
                "ES256 signs the tokens", k=5, as_of=at, lifecycle=stage, hybrid=False, **kw
            )  # type: ignore[arg-type]
            return found["id"].to_list()

        morning, noon, later = (day + timedelta(hours=h) for h in (6, 12, 14))
        assert ids(morning, "proposed") == [best] and ids(morning, "approved") == [other]
        assert ids(noon, "proposed") == [] and ids(noon, "approved") == [best]
        assert ids(noon, "deprecated") == [other]
        assert ids(later, "approved") == []  # superseded by then
        kept = tmp_lake.vectors.search("ES256", as_of=later, lifecycle="approved",
                                       include_superseded=True, hybrid=False)  # fmt: skip
        assert kept["id"].to_list() == [best] and kept["superseded"].to_list() == [True]

    def test_a_record_at_exactly_t_is_in_and_one_microsecond_later_out(
        self, tmp_lake: sl.Lake
    ) -> None:
        at = datetime(2026, 1, 1, 12, tzinfo=UTC)
        aid = tmp_lake.assert_("auth/jwt", "alg", "RS256", agent="p", source="s", at=at)
        found = tmp_lake.vectors.search("jwt algorithm", as_of=at, hybrid=False)
        assert found["id"].to_list() == [aid]
        early = tmp_lake.vectors.search("jwt algorithm", as_of=at - timedelta(microseconds=1))
        assert early.is_empty()

    def test_subject_is_a_path_and_everything_under_it(self, tmp_lake: sl.Lake) -> None:
        ids = {
            s: tmp_lake.assert_(s, "alg", "RS256", agent="p", source="s")
            for s in ("auth/jwt", "auth/jwt/x", "auth/jwtx")
        }
        found = set(tmp_lake.vectors.search("alg", k=10, subject="auth/jwt")["id"])
        assert found == {ids["auth/jwt"], ids["auth/jwt/x"]}
        assert set(tmp_lake.vectors.search("alg", subject="auth/*")["id"]) == set(ids.values())

    def test_k_results_come_back_when_k_exist_behind_a_narrow_filter(
        self, tmp_lake: sl.Lake
    ) -> None:
        """A post-filter would return fewer: most of the closest are proposals."""
        for i in range(60):
            tmp_lake.assert_("auth/jwt", "alg", f"ES256 variant {i}", agent="r", source="s")
        approved = [
            tmp_lake.assert_("billing", "currency", f"EUR {i}", agent="p", source="s",
                             lifecycle="approved")
            for i in range(5)
        ]  # fmt: skip
        found = tmp_lake.vectors.search("ES256 variant", k=5, lifecycle="approved", hybrid=False)
        assert sorted(found["id"]) == sorted(approved)

    def test_the_jwt_incident_as_of_2100(self, tmp_lake: sl.Lake) -> None:
        tmp_lake.import_events(JWT_EVENTS)
        at = "2026-01-15T21:00:00Z"
        anything = tmp_lake.vectors.search("which algorithm signs tokens?", k=3, as_of=at)
        assert "auth/jwt" in set(anything["subject"])
        decided = tmp_lake.vectors.search(
            "which algorithm signs tokens?", k=1, as_of=at, lifecycle="approved", agent="sre"
        )
        assert decided["value"].to_list() == ['"RS256"']


class TestAudit:
    def test_a_search_is_audited_and_seen_by_trace_and_impact(self, tmp_lake: sl.Lake) -> None:
        aid = tmp_lake.assert_("auth/jwt", "alg", "RS256", agent="p", source="s")
        found = tmp_lake.vectors.search("jwt signing", agent="sre", lifecycle="proposed")
        (row,) = tmp_lake.audit.filter(pl.col("op") == "search").collect().iter_rows(named=True)
        assert row["id"] == found["query_id"][0] and row["agent"] == "sre"
        assert row["contributing"] == [aid] and row["winner"] == aid
        assert row["lifecycle_filter"] == ["proposed"]
        traced = tmp_lake.trace("sre", "-1h")
        assert traced["op"].to_list() == ["search"]
        assert tmp_lake.impact(aid).queries["op"].to_list() == ["search"]


class TestBadInput:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"text": "  "}, "non-empty"),
            ({"text": "x", "k": 0}, "k must be"),
            ({"text": "x", "k": 5000}, "k must be"),
            ({"text": "x", "lifecycle": "aproved"}, "lifecycle"),
            ({"text": "x", "min_confidence": 2.0}, "min_confidence"),
            ({"text": "x", "subject": "auth/../x"}, "subject"),
            ({"text": "x", "as_of": "yesterday-ish"}, "as_of"),
        ],
    )
    def test_refused_with_a_clear_error(
        self, tmp_lake: sl.Lake, kwargs: dict[str, object], message: str
    ) -> None:
        tmp_lake.assert_("a/b", "p", 1, agent="x", source="s")
        with pytest.raises(ValidationError, match=message):
            tmp_lake.vectors.search(**kwargs)  # type: ignore[arg-type]
        assert tmp_lake.audit.collect().is_empty()  # nothing written


class TestStore:
    def test_kept_current_and_rebuilt_from_the_lake(self, tmp_lake: sl.Lake) -> None:
        tmp_lake.assert_("a/b", "p", "one", agent="x", source="s")
        assert tmp_lake.vectors.sync() == 1 and tmp_lake.vectors.sync() == 0
        tmp_lake.assert_("a/c", "p", "two", agent="x", source="s")
        status = tmp_lake.vectors.status()
        assert status["behind"] == 1 and status["rows"] == 1
        assert tmp_lake.vectors.search("two", hybrid=False)["value"][0] == '"two"'
        assert tmp_lake.vectors.status()["behind"] == 0
        assert tmp_lake.vectors.rebuild() == 2
        assert Path(status["path"]).is_relative_to(tmp_lake.path)

    def test_kept_current_in_the_background(self, tmp_lake: sl.Lake) -> None:
        """Once searched, new assertions are embedded shortly after their commit, with
        no search to wait for."""
        import time

        tmp_lake.assert_("a/b", "p", "one", agent="x", source="s")
        tmp_lake.vectors.sync()
        store = tmp_lake.vectors._store()
        later = tmp_lake.assert_("a/c", "p", "two", agent="x", source="s")
        deadline = time.monotonic() + 30
        while store.table().count_rows() < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        ids = store.table().search().select(["id"]).limit(None).to_arrow()["id"].to_pylist()
        assert later in ids

    def test_a_lost_table_is_made_again(self, tmp_lake: sl.Lake) -> None:
        tmp_lake.assert_("a/b", "p", "one", agent="x", source="s")
        tmp_lake.vectors.sync()
        path = Path(tmp_lake.vectors.status()["path"])
        tmp_lake.close()
        shutil.rmtree(path)
        with sl.open(tmp_lake.path) as lake:
            assert lake.vectors.search("one", hybrid=False).height == 1


def test_search_runs_with_no_network(tmp_path: Path) -> None:
    """The model comes from installed packages: nothing is fetched, even on first use."""
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-rn", "true"]).returncode != 0:
        pytest.skip("cannot make a network namespace here (unshare -rn)")
    script = (
        "import steme_lake as sl\n"
        f"lake = sl.open({str(tmp_path / 'lake')!r})\n"
        "lake.assert_('auth/jwt', 'alg', 'RS256', agent='p', source='s')\n"
        "print(lake.vectors.search('token signing')['subject'][0])\n"
        "lake.close()\n"
    )
    run = subprocess.run([unshare, "-rn", PYTHON, "-c", script], capture_output=True,
                         text=True, timeout=300, env=child_env())  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "auth/jwt"
