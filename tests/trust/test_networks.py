"""Batch trust analysis on the real SNAP Bitcoin networks (Kumar et al., ICDM 2016):
stored in a lake as self-assertions and votes, ranked per topic and as of past
dates, and analysed straight from the ratings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

import steme_lake as sl
from steme_lake.io.snap_signed import read_signed_edges
from steme_lake.trust import analyze
from tests.conftest import SHARED_DATASETS

OTC = SHARED_DATASETS / "soc-sign-bitcoinotc.csv"
ALPHA = SHARED_DATASETS / "soc-sign-bitcoinalpha.csv"
needs_data = pytest.mark.skipif(
    not OTC.exists(), reason="shared/datasets is not beside this checkout"
)


@needs_data
class TestBitcoinOtc:
    """35,592 ratings among 5,881 agents, 2010-2016."""

    @pytest.fixture(scope="class")
    @classmethod
    def otc(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[sl.Lake]:
        lake = sl.open(tmp_path_factory.mktemp("otc") / "lake")
        counts = lake.trust.import_ratings(OTC, topic="bitcoin-otc")
        assert counts == {"agents": 5858, "ratings": 35592}
        yield lake
        lake.close()

    def test_the_lake_and_the_raw_ratings_agree(self, otc: sl.Lake) -> None:
        stored = otc.trust.run(topics=["bitcoin-otc"])
        raw = read_signed_edges(OTC).with_columns(pl.col("rating") / 10)
        direct = analyze(raw, weight="rating")
        top = lambda f: f.sort("rank").head(20)["agent"].to_list()  # noqa: E731
        assert top(stored) == top(direct)
        assert otc.trust.scores(topic="bitcoin-otc").height == stored.height

    def test_as_of_a_past_date(self, otc: sl.Lake) -> None:
        early = otc.trust.run(topics=["bitcoin-otc"], as_of="2011-06-01", store=False)
        late = otc.trust.run(topics=["bitcoin-otc"], store=False)
        assert 0 < early.height < late.height  # fewer agents had been rated by then
        edges = otc.trust.graph(topic="bitcoin-otc", as_of="2011-06-01")
        assert edges["at"].max() <= datetime(2011, 6, 1, tzinfo=UTC)

    def test_explain_a_low_score(self, otc: sl.Lake) -> None:
        scores = otc.trust.run(topics=["bitcoin-otc"], store=False)
        rated = set(otc.trust.graph(topic="bitcoin-otc")["target"])
        low = scores.filter(pl.col("agent").is_in(rated)).sort("score")["agent"][0]
        why = otc.trust.explain(low, "bitcoin-otc")
        assert (why["weight"] < 0).any()  # someone distrusted it

    def test_fairness_goodness(self) -> None:
        ratings = read_signed_edges(OTC)
        fg = analyze(ratings, method="fairness_goodness", weight="rating")
        assert fg.height == 5881
        assert fg["fairness"].is_between(0, 1).all() and fg["goodness"].is_between(-1, 1).all()
        # Agents with the most negative ratings received are the least good.
        worst = fg.sort("goodness").head(50)["agent"]
        negative = ratings.filter(pl.col("rating") < 0).group_by("target").len()
        assert negative.filter(pl.col("target").is_in(worst.implode()))["len"].sum() > 50

    def test_the_cli(self, tmp_path: Path) -> None:
        from steme_lake.cli import main

        lake = str(tmp_path / "lake")
        assert main(["init", lake]) == 0
        assert main(["import", str(ALPHA), "--format", "snap-signed", "--topic",
                     "bitcoin-alpha", "--lake", lake]) == 0  # fmt: skip
        with sl.open(lake) as opened:
            assert opened.trust.run(topics=["bitcoin-alpha"]).height == 3783  # all its agents


class TestBadInput:
    """Edge lists that name no column, or hold no number, are refused clearly."""

    def test_columns_named(self) -> None:
        with pytest.raises(sl.ValidationError, match="no column"):
            analyze(pl.DataFrame({"a": ["x"], "b": ["y"], "w": [1.0]}))
        with pytest.raises(sl.ValidationError, match="unknown method"):
            analyze(
                pl.DataFrame({"source": ["x"], "target": ["y"], "weight": [1.0]}), method="hits"
            )

    def test_parquet(self, tmp_path: Path) -> None:
        path = tmp_path / "edges.parquet"
        pl.DataFrame(
            {"source": ["x", "y"], "target": ["y", "z"], "weight": [1.0, 1.0]}
        ).write_parquet(path)
        assert analyze(path)["agent"].to_list()[0] == "z"
        with pytest.raises(sl.ValidationError, match="no Parquet"):
            analyze(tmp_path / "nothing.parquet")
