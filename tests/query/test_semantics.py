"""Decay, constraint prefixes, the skeptic, and arguments that explain themselves."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

import steme_lake as sl
from steme_lake import LakeOptions, ValidationError
from steme_lake._utils.timeparse import to_us, us_to_datetime
from steme_lake.query import ResolutionOptions

T0 = "2026-01-01T00:00:00Z"


def _at(days: float) -> str:
    return us_to_datetime(to_us(T0) + int(days * 86_400_000_000)).isoformat()


class TestDecay:
    """Effective confidence halves every half-life; a use restarts the clock."""

    def test_half_life_and_reproducibility(self, lake_path: Path) -> None:
        opts = ResolutionOptions(half_life_days=10, half_lives={"auth": 100, "news": None})
        with sl.open(lake_path, options=LakeOptions(resolution=opts)) as lake:
            lake.assert_(
                "weather/today", "sky", "blue", agent="a", confidence=0.8, source="x", at=T0
            )
            lake.assert_("auth/jwt", "alg", "RS256", agent="a", confidence=0.8, source="x", at=T0)
            lake.assert_("news/x", "headline", "h", agent="a", confidence=0.8, source="x", at=T0)

            def ask(s, p):
                return lake.query(s, p, agent="t", as_of=_at(10)).confidence

            assert ask("weather/today", "sky") == pytest.approx(0.4)
            assert ask("auth/jwt", "alg") == pytest.approx(0.8 * 0.5**0.1)
            assert ask("news/x", "headline") == 0.8
            first = lake.query("weather/today", "sky", agent="t", as_of=_at(10))
            again = lake.query("weather/today", "sky", agent="t", as_of=_at(10))
            assert first.confidence == again.confidence and first.query_id != again.query_id
            assert (
                lake.query(
                    "weather/today", "sky", agent="t", as_of=_at(10), min_confidence=0.5
                ).status
                == "no_answer"
            )

    def test_confirm_resets_the_clock(self, tmp_lake: sl.Lake) -> None:
        aid = tmp_lake.assert_("s", "p", 1, agent="a", confidence=1.0, source="x", at=T0)
        tmp_lake.confirm(aid, agent="impl", reason="used in deploy 8812", at=_at(180))
        assert tmp_lake.query("s", "p", agent="t", as_of=_at(180)).confidence == pytest.approx(1.0)
        assert tmp_lake.query("s", "p", agent="t", as_of=_at(179)).confidence == pytest.approx(
            0.5 ** (179 / 180)
        )


class TestConstraints:
    """A context sees its own and its parents' constraints, never a sibling's."""

    def test_prefix_inheritance(self, tmp_lake: sl.Lake) -> None:
        top = tmp_lake.add_constraint("auth", forbidden="none", reason="never alg=none", agent="h")
        jwt = tmp_lake.add_constraint(
            "auth/jwt/",
            forbidden=["ES256", "HS256"],
            must_use="RS256",
            reason="RSA only",
            agent="h",
            predicate="signing_algorithm",
        )
        tmp_lake.add_constraint("authz", forbidden="x", reason="other tree", agent="h")
        seen = tmp_lake.check_constraints("auth/jwt/keys", agent="impl")
        assert {c.id for c in seen.constraints} == {top, jwt}
        assert {c.id for c in tmp_lake.check_constraints("auth", agent="impl").constraints} == {top}
        check = tmp_lake.check_constraints(
            "auth/jwt", agent="impl", proposed="HS256", predicate="signing_algorithm"
        )
        assert [c.id for c in check.violations] == [jwt]
        other = tmp_lake.check_constraints(
            "auth/jwt", agent="impl", proposed="RS256", predicate="ttl"
        )
        assert [c.id for c in other.constraints] == [top] and other.ok

    def test_retired_constraint(self, tmp_lake: sl.Lake) -> None:
        cid = tmp_lake.add_constraint("auth", forbidden="x", reason="r", agent="h")
        tmp_lake.supersede(cid, agent="h", kind="invalidate", reason="obsolete")
        assert tmp_lake.check_constraints("auth", agent="impl").constraints == ()

    def test_lens_constraints(self, tmp_lake: sl.Lake) -> None:
        tmp_lake.add_constraint("auth", forbidden="none", reason="r", agent="h")
        ans = tmp_lake.query("auth/jwt", "alg", agent="t", lens="constraints")
        assert ans.status == "answered" and ans.value[0]["forbidden"] == "none"


class TestSkeptic:
    """Two independent witnesses and no strong contradiction, or it is contested."""

    def test_contested_then_answered(self, tmp_lake: sl.Lake) -> None:
        tmp_lake.assert_(
            "auth/jwt", "alg", "RS256", agent="a", confidence=0.9, source="https://adr"
        )
        ans = tmp_lake.query("auth/jwt", "alg", agent="t", lens="skeptic")
        assert ans.status == "contested" and ans.value is None and len(ans.candidates) == 1
        tmp_lake.assert_(
            "auth/jwt", "alg", "RS256", agent="a", confidence=0.9, source="https://rfc"
        )
        assert tmp_lake.query("auth/jwt", "alg", agent="t", lens="skeptic").status == "contested"
        tmp_lake.assert_(
            "auth/jwt", "alg", "RS256", agent="b", confidence=0.8, source="https://rfc"
        )
        ans = tmp_lake.query("auth/jwt", "alg", agent="t", lens="skeptic")
        assert (ans.status, ans.value) == ("answered", "RS256")
        assert ans.confidence == pytest.approx(1 - 0.1 * 0.1 * 0.2, rel=1e-3)
        tmp_lake.assert_(
            "auth/jwt", "alg", "ES256", agent="c", confidence=0.7, source="https://blog"
        )
        contested = tmp_lake.query("auth/jwt", "alg", agent="t", lens="skeptic")
        assert contested.status == "contested"
        assert {c.value for c in contested.candidates} == {"RS256", "ES256"}


class TestArguments:
    """Bad lens, lifecycle, time and thresholds are refused with a clear message."""

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            (
                {"lens": "newest"},
                "unknown lens 'newest'; the lenses are: authority, consensus, constraints",
            ),
            ({"lifecycle": "aproved"}, "unknown lifecycle stage 'aproved'"),
            ({"lifecycle": []}, "a stage, a list of stages, or None"),
            ({"as_of": "last tuesday"}, "cannot read 'last tuesday' as a time"),
            ({"as_of": 1234}, "expected a datetime"),
            ({"min_confidence": 2}, "between 0 and 1"),
            ({"include_superseded": "yes"}, "True or False"),
            ({"agent": ""}, "agent must not be empty"),
        ],
    )
    def test_refused(self, tmp_lake: sl.Lake, kwargs: dict, message: str) -> None:
        args = {"agent": "t", **kwargs}
        with pytest.raises(ValidationError, match=message):
            tmp_lake.query("s", "p", **args)
        assert tmp_lake.audit.collect().height == 0

    def test_relative_as_of(self, tmp_lake: sl.Lake) -> None:
        tmp_lake.assert_("s", "p", 1, agent="a", source="x", at="-3h")
        assert tmp_lake.query("s", "p", agent="t", as_of="-4h").status == "no_answer"
        ans = tmp_lake.query("s", "p", agent="t", as_of="-2h")
        assert ans.value == 1 and abs(
            ans.as_of - (us_to_datetime(to_us("now")) - timedelta(hours=2))
        ) < timedelta(minutes=1)

    def test_unknown_snapshot_lens(self, tmp_lake: sl.Lake) -> None:
        with pytest.raises(ValidationError, match="unknown lens"):
            tmp_lake.snapshot(lens="vibes")

    def test_custom_lens_registry(self, tmp_lake: sl.Lake) -> None:
        from steme_lake.query import lens_names, register_lens

        assert tmp_lake.lenses == lens_names()
        assert {"recency", "consensus", "authority", "skeptic", "constraints"} <= set(lens_names())
        with pytest.raises(ValueError, match="already registered"):
            register_lens("recency")(lambda c, ctx: c)
