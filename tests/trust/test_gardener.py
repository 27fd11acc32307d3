"""The Gardener on the JWT incident: a correction costs the agents that introduced,
endorsed and propagated the bad belief their trust on ``auth`` (only), stores the
negative constraint once, and the authority lens reads trust as of T."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

import steme_lake as sl
from steme_lake.trust import GARDENER, TrustOptions

BLAMED = {"research-agent", "lead-orchestrator", "implementation-agent", "deploy-agent"}


def _scores(run: pl.DataFrame, topic: str) -> dict[str, float]:
    return dict(run.filter(pl.col("topic") == topic).select("agent", "score").iter_rows())


class TestTheLoop:
    """Correction -> Gardener -> lower trust on auth -> constraint -> authority lens."""

    def test_end_to_end(self, incident: tuple[sl.Lake, str]) -> None:
        lake, es = incident
        before = lake.trust.run()
        stamp = lake.status().last_time
        lake.supersede(es, agent="human-sre", kind="invalidate", reason="ES256 broke auth")
        after = lake.trust.run()
        auth = _scores(after, "auth")
        assert {a for a, s in auth.items() if s == 0.0} == BLAMED
        assert auth["human-sre"] > 0.5 and auth["platform-team"] > 0.5
        # Other topics: the same evidence, the same scores to the bit.
        for topic in ("db", "payments", "cache"):
            assert _scores(after, topic) == _scores(before, topic)
        # The global topic also sees the correction; the research agent had no standing there.
        assert _scores(after, "")["research-agent"] == 0.0
        # The authority lens now prefers the approved RS256; as of before the run, ES256.
        now = lake.query("auth/jwt", "signing_algorithm", agent="sre", lens="authority")
        assert now.value == "RS256"
        then = lake.query("auth/jwt", "signing_algorithm", agent="sre", lens="authority",
                          as_of=stamp, include_superseded=True)  # fmt: skip
        assert then.value == "ES256"
        # The negative constraint, stored once, found by a fresh agent's pre-flight check.
        (rule,) = (
            lake.constraints.filter(pl.col("agent") == GARDENER).collect().iter_rows(named=True)
        )
        assert (rule["context"], rule["predicate"]) == ("auth/jwt", "signing_algorithm")
        check = lake.check_constraints("auth/jwt", agent="new-impl-agent", proposed="ES256")
        assert not check.ok and check.violations[0].must_use == "RS256"
        records = lake.trust.records.collect().height
        again = lake.trust.run()
        assert lake.trust.records.collect().height == records  # nothing new to store
        assert lake.constraints.filter(pl.col("agent") == GARDENER).collect().height == 1
        assert again.equals(after)  # a cold run reproduces the same numbers

    def test_explain(self, incident: tuple[sl.Lake, str]) -> None:
        lake, es = incident
        lake.supersede(es, agent="human-sre", kind="invalidate", reason="ES256 broke auth")
        why = lake.trust.explain("research-agent", "auth")
        assert why["kind"].to_list()[0] == "correction"
        assert why["from_agent"][0] == "human-sre" and why["contribution"][0] < 0
        good = lake.trust.explain("platform-team", "auth")
        assert good.filter(pl.col("kind") == "vote")["contribution"].item() > 0


class TestReadsAndRefusals:
    """Past runs write nothing; unknown topics and agents are named with close matches."""

    def test_past_run_writes_nothing(self, incident: tuple[sl.Lake, str]) -> None:
        lake, _ = incident
        lake.trust.run(as_of="2026-01-15T21:00:00Z")
        assert lake.trust.records.collect().is_empty()
        lake.trust.run()
        assert lake.trust.scores(topic="auth").height > 0

    def test_warm_runs_agree_with_cold_ones(self, incident: tuple[sl.Lake, str]) -> None:
        from steme_lake.trust import _namespace

        lake, es = incident
        lake.trust.run()
        lake.vote(es, agent="human-sre", weight=-1.0)
        lake.vote(es, agent="deploy-agent")
        warm_runs = [lake.trust.run(store=False, warm=True)]  # from this process's last run
        _namespace._LAST_RUN.pop(lake, None)
        warm_runs.append(lake.trust.run(store=False, warm=True))  # from the stored scores
        cold = lake.trust.run(store=False)
        for warm in warm_runs:
            both = cold.join(warm, on=["topic", "agent"], suffix="_w")
            assert both.height == cold.height
            assert (both["score"] - both["score_w"]).abs().max() < 1e-6
            assert both["iterations_w"].sum() <= both["iterations"].sum()

    def test_unknown_topic_and_agent(self, incident: tuple[sl.Lake, str]) -> None:
        lake, _ = incident
        with pytest.raises(sl.ValidationError, match="did you mean 'auth'"):
            lake.trust.run(topics=["atuh"])
        with pytest.raises(sl.ValidationError, match="did you mean 'platform-team'"):
            lake.trust.explain("platform-tema", "auth")

    def test_topics_and_depth(self, incident: tuple[sl.Lake, str]) -> None:
        lake, _ = incident
        deep = lake.trust.run(topics=["auth/jwt"], options=TrustOptions(depth=2), store=False)
        assert set(deep["topic"]) == {"auth/jwt"}
        with pytest.raises(sl.ValidationError, match="depth"):
            TrustOptions(depth=0)

    def test_half_life(self, incident: tuple[sl.Lake, str]) -> None:
        """With a half-life on a topic, evidence that old weighs half; other topics keep theirs."""
        lake, _ = incident
        at = "2026-01-16T00:00:00Z"
        plain = lake.trust.graph(as_of=at)
        decayed = lake.trust.graph(as_of=at, options=TrustOptions(half_lives={"auth": 30}))
        joined = plain.join(decayed, on=["source", "target", "kind", "assertion"], suffix="_d")
        auth = joined.filter(pl.col("topic") == "auth")
        assert (auth["weight_d"] < auth["weight"]).all()
        vote = auth.filter(pl.col("kind") == "vote").row(0, named=True)
        age = (datetime(2026, 1, 16, tzinfo=UTC) - vote["at"]).total_seconds() / 86_400
        assert vote["weight_d"] == pytest.approx(vote["weight"] * 0.5 ** (age / 30))
        other = joined.filter(pl.col("topic") != "auth")
        assert (other["weight_d"] == other["weight"]).all()

    def test_as_of_before_the_first_record(self, incident: tuple[sl.Lake, str]) -> None:
        lake, _ = incident
        assert lake.trust.run(as_of="1990-01-01").is_empty()  # nothing known then
        assert lake.trust.graph(as_of="1990-01-01").is_empty()
        assert lake.trust.records.collect().is_empty()

    def test_empty_lake(self, tmp_lake: sl.Lake) -> None:
        assert tmp_lake.trust.run().is_empty()
        assert tmp_lake.trust.scores().is_empty()


class TestInterfaces:
    """GET /trust and the MCP tool ``trust`` take the same parameters and answer alike."""

    def test_http_and_mcp(self, incident: tuple[sl.Lake, str]) -> None:
        import asyncio

        from fastapi.testclient import TestClient
        from mcp import Client as McpClient

        from steme_lake.api import ServerOptions, create_app
        from steme_lake.api._mcp import create_mcp_server

        lake, es = incident
        lake.supersede(es, agent="human-sre", kind="invalidate", reason="ES256 broke auth")
        lake.trust.run()
        with TestClient(create_app(lake, ServerOptions())) as http:
            scores = http.get("/trust", params={"topic": "auth", "top": 2}).json()["scores"]
            why = http.get("/trust", params={"topic": "auth", "agent": "research-agent"}).json()
            typo = http.get("/trust", params={"topci": "auth"})
        assert [r["rank"] for r in scores] == [1, 2]
        assert why["explain"][0]["kind"] == "correction"
        assert typo.status_code == 422 and "did you mean 'topic'" in typo.json()["error"]
        server = create_mcp_server(lake, "sre", options=ServerOptions(require_signatures=False))

        async def ask() -> tuple[dict, dict]:
            async with McpClient(server) as client:
                a = await client.call_tool("trust", {"topic": "auth", "top": 2})
                b = await client.call_tool("trust", {"topic": "auth", "agent": "research-agent"})
                return a.structured_content, b.structured_content

        by_mcp, why_mcp = asyncio.run(ask())
        assert [r["agent"] for r in by_mcp["scores"]] == [r["agent"] for r in scores]
        assert why_mcp["explain"][0]["kind"] == "correction"


class TestGardenFollow:
    """``steme garden --follow`` is a real process: it ranks at start, wakes on a
    correction written by another process, stores its constraint, and stops on
    SIGTERM."""

    def test_wakes_on_a_correction(self, incident: tuple[sl.Lake, str]) -> None:
        import subprocess
        import time

        from tests.conftest import PYTHON, child_env

        lake, es = incident
        garden = subprocess.Popen(
            [PYTHON, "-m", "steme_lake", "garden", "--follow", "--interval", "0.2",
             "--lake", str(lake.path), "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(),
        )  # fmt: skip
        try:
            assert garden.stdout is not None
            first = garden.stdout.readline()  # the first run
            assert '"scores"' in first, garden.stderr.read() if garden.poll() else first
            lake.supersede(es, agent="human-sre", kind="invalidate", reason="ES256 broke auth")
            second = garden.stdout.readline()  # woken by the correction
            assert '"scores"' in second
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                found = lake.constraints.filter(pl.col("agent") == GARDENER).collect()
                if found.height:
                    break
                time.sleep(0.1)
            assert found.height == 1
            auth = lake.trust.scores(topic="auth")
            assert auth.filter(pl.col("agent") == "research-agent")["score"].item() == 0.0
        finally:
            garden.terminate()
            garden.communicate(timeout=20)  # and close its pipes
        assert garden.returncode == 0
