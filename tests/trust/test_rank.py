"""TrustRank and fairness/goodness against independent references (networkx, a
plain-Python transcription of the paper) and their documented invariants."""

from __future__ import annotations

import math
import random

import networkx as nx
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steme_lake import ValidationError
from steme_lake.trust import fairness_goodness, trustrank


def _graph(seed: int, nodes: int = 12, edges: int = 30, negative: float = 0.0) -> pl.DataFrame:
    rng = random.Random(seed)
    rows = []
    for _ in range(edges):
        a, b = rng.sample(range(nodes), 2)
        sign = -1.0 if rng.random() < negative else 1.0
        rows.append((f"n{a}", f"n{b}", sign * rng.uniform(0.1, 2.0)))
    return pl.DataFrame(rows, schema=["source", "target", "weight"], orient="row")


def _networkx(edges: pl.DataFrame, seeds: list[str]) -> dict[str, float]:
    g = nx.DiGraph()
    g.add_nodes_from(set(edges["source"]) | set(edges["target"]))
    for s, t, w in edges.iter_rows():
        if w > 0:
            g.add_edge(s, t, weight=g.get_edge_data(s, t, {"weight": 0})["weight"] + w)
    personal = {n: (1.0 if n in seeds else 0.0) for n in g} if seeds else None
    return nx.pagerank(g, alpha=0.85, personalization=personal, dangling=personal,
                       weight="weight", tol=1e-13, max_iter=1000)  # fmt: skip


class TestAgainstNetworkx:
    """Positive-weight graphs: the PageRank vector is networkx's, seeded or not."""

    @pytest.mark.parametrize("seed", range(6))
    @pytest.mark.parametrize("seeds", [[], ["n0"], ["n1", "n2", "n3"]])
    def test_pagerank(self, seed: int, seeds: list[str]) -> None:
        edges = _graph(seed)
        ours = trustrank(edges, seeds=seeds, tolerance=1e-13, max_iterations=1000)
        assert ours.converged and ours.seeded == bool(seeds)
        reference = _networkx(edges, seeds)
        for agent, pagerank in ours.scores.select("agent", "pagerank").iter_rows():
            assert pagerank == pytest.approx(reference[agent], abs=1e-9)
        assert ours.scores["pagerank"].sum() == pytest.approx(1.0, abs=1e-12)


class TestEigenTrustExample:
    """The worked example of the go-eigentrust README (Karma3Labs): local trust
    ek->sd 100, vm->sd 100, ek->vm 75; pre-trust ek 50, vm 100; alpha 0.5 (our
    damping is 1 - alpha). Its published output: ek 0.21705, sd 0.30233, vm 0.48062."""

    def test_published_values(self) -> None:
        edges = pl.DataFrame({"source": ["ek", "vm", "ek"], "target": ["sd", "sd", "vm"],
                              "weight": [100.0, 100.0, 75.0]})  # fmt: skip
        result = trustrank(edges, seeds={"ek": 50, "vm": 100}, damping=0.5, tolerance=1e-15)
        got = dict(result.scores.select("agent", "pagerank").iter_rows())
        # Their run stopped at its own tolerance: its figures agree to 1e-7.
        assert got["ek"] == pytest.approx(0.21705427907166472, abs=1e-7)
        assert got["sd"] == pytest.approx(0.3023255429103218, abs=1e-7)
        assert got["vm"] == pytest.approx(0.4806201780180134, abs=1e-7)

    def test_bad_pretrust(self) -> None:
        edges = pl.DataFrame({"source": ["a"], "target": ["b"], "weight": [1.0]})
        with pytest.raises(ValidationError, match="pre-trust"):
            trustrank(edges, seeds={"a": -1.0})
        with pytest.raises(ValidationError, match="list of agents"):
            trustrank(edges, seeds="a")  # type: ignore[arg-type]


class TestDistrust:
    """Distrust is a one-step discount weighted by the distruster's own standing."""

    def test_enemy_of_my_enemy_is_no_friend(self) -> None:
        base = pl.DataFrame({"source": ["h", "h", "h", "b"], "target": ["a", "b", "c", "c"],
                             "weight": [1.0, 1.0, 1.0, -1.0]})  # fmt: skip
        # a now distrusts b, the one who distrusts c: c gains nothing from it.
        feud = pl.concat([base, pl.DataFrame({"source": ["a"], "target": ["b"],
                                              "weight": [-1.0]})])  # fmt: skip
        score = lambda f, a: f.filter(pl.col("agent") == a)["discounted"].item()  # noqa: E731
        alone = trustrank(base, seeds=["h"]).scores
        fought = trustrank(feud, seeds=["h"]).scores
        assert score(fought, "b") < score(alone, "b")  # a's distrust costs b
        assert score(fought, "c") == pytest.approx(score(alone, "c"), abs=1e-15)
        assert score(alone, "c") < alone.filter(pl.col("agent") == "c")["pagerank"].item()

    def test_a_trusted_correction_weighs_more(self) -> None:
        edges = pl.DataFrame(
            {"source": ["h", "h", "nobody", "h2", "x"], "target": ["x", "y", "y", "x", "x2"],
             "weight": [1.0, 1.0, -1.0, -1.0, 1.0]}
        )  # fmt: skip
        scores = trustrank(edges, seeds=["h", "h2"]).scores
        pagerank = dict(scores.select("agent", "pagerank").iter_rows())
        lost = {a: pagerank[a] - d for a, d in scores.select("agent", "discounted").iter_rows()}
        assert lost["x"] > lost["y"]  # h2 (a seed) corrected x; "nobody" corrected y

    def test_a_correction_never_raises_its_author(self) -> None:
        edges = _graph(3, negative=0.0)
        before = trustrank(edges, seeds=["n0"]).scores
        corrected = pl.concat(
            [edges, pl.DataFrame({"source": ["n5"], "target": ["n6"], "weight": [-1.0]})]
        )
        after = trustrank(corrected, seeds=["n0"]).scores
        was = before.filter(pl.col("agent") == "n5")["score"].item()
        assert after.filter(pl.col("agent") == "n5")["score"].item() <= was + 1e-12


class TestInvariants:
    """Labels do not matter; seeds alone keep the pre-trust vector; bad input is refused."""

    @settings(max_examples=25, deadline=None)
    @given(seed=st.integers(0, 10_000))
    def test_renaming_changes_only_labels(self, seed: int) -> None:
        edges = _graph(seed, negative=0.3)
        rename = {f"n{i}": f"agent-{(i * 7) % 101}" for i in range(12)}
        renamed = edges.with_columns(
            pl.col("source").replace_strict(rename), pl.col("target").replace_strict(rename)
        )
        a = trustrank(edges, seeds=["n0"]).scores
        b = trustrank(renamed, seeds=[rename["n0"]]).scores
        mapped = a.with_columns(pl.col("agent").replace_strict(rename)).sort("agent")
        got = b.sort("agent")
        assert mapped["agent"].to_list() == got["agent"].to_list()
        for col in ("score", "pagerank", "discounted"):
            assert mapped[col].to_list() == pytest.approx(got[col].to_list(), abs=1e-12)

    def test_seeds_without_positive_edges_keep_the_pretrust_vector(self) -> None:
        edges = pl.DataFrame({"source": ["h1", "h2"], "target": ["h2", "h3"],
                              "weight": [-1.0, -0.5]})  # fmt: skip
        result = trustrank(edges, seeds=["h1", "h2", "h3"])
        assert result.scores["pagerank"].to_list() == pytest.approx([1 / 3] * 3)

    def test_no_seed_in_the_graph_is_plain_pagerank(self) -> None:
        edges = _graph(1)
        result = trustrank(edges, seeds=["somebody-else"], tolerance=1e-13, max_iterations=1000)
        assert not result.seeded
        reference = _networkx(edges, [])
        for agent, pagerank in result.scores.select("agent", "pagerank").iter_rows():
            assert pagerank == pytest.approx(reference[agent], abs=1e-9)

    @pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
    def test_non_finite_weights(self, bad: float) -> None:
        edges = pl.DataFrame({"source": ["a"], "target": ["b"], "weight": [bad]})
        with pytest.raises(ValidationError, match="finite"):
            trustrank(edges)
        with pytest.raises(ValidationError, match="finite"):
            fairness_goodness(edges)

    def test_hash_collisions_fall_back_to_the_names(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Names are factorised by hash, then checked; a collision (forced here: every
        name hashes alike) falls back to matching the text, with the same result."""
        edges = _graph(2, negative=0.3)
        honest = trustrank(edges, seeds=["n0"]).scores.sort("agent")

        def collide(self: pl.Series, seed: int = 0, *_: object) -> pl.Series:
            return pl.Series([7] * len(self), dtype=pl.UInt64)

        monkeypatch.setattr(pl.Series, "hash", collide)
        forced = trustrank(edges, seeds=["n0"]).scores.sort("agent")
        assert forced["agent"].to_list() == honest["agent"].to_list()
        assert forced["score"].to_list() == pytest.approx(honest["score"].to_list(), abs=1e-15)

    def test_missing_columns_and_empty(self) -> None:
        with pytest.raises(ValidationError, match="weight"):
            trustrank(pl.DataFrame({"source": ["a"], "target": ["b"]}))
        self_only = pl.DataFrame({"source": ["a"], "target": ["a"], "weight": [1.0]})
        assert trustrank(self_only).scores.is_empty()  # a self-vote carries nothing


class TestWarmStart:
    """A warm start changes where the iteration starts, never where it ends."""

    def test_same_fixed_point_in_fewer_steps(self) -> None:
        graph = _graph(3, nodes=60, edges=400)
        more = pl.concat([graph, _graph(4, nodes=60, edges=4)])
        before = trustrank(graph, seeds=["n1"]).scores
        cold = trustrank(more, seeds=["n1"])
        for start in (
            before.select("agent", "pagerank"),
            dict(before.select("agent", "pagerank").iter_rows()),
        ):
            warm = trustrank(more, seeds=["n1"], start=start)
            assert warm.converged and warm.iterations < cold.iterations
            both = cold.scores.join(warm.scores, on="agent", suffix="_w")
            assert (both["pagerank"] - both["pagerank_w"]).abs().max() < 1e-9

    def test_unusable_starts_fall_back_to_cold(self) -> None:
        graph = _graph(5, nodes=20, edges=80)
        cold = trustrank(graph, seeds=["n1"])
        for start in ({}, {"nobody": 1.0}, {"n1": math.nan, "n2": -1.0, "n3": math.inf}):
            warm = trustrank(graph, seeds=["n1"], start=start)
            assert warm.iterations == cold.iterations
            assert warm.scores.equals(cold.scores)


def _fg_reference(edges: list[tuple[str, str, float]]) -> tuple[dict, dict]:
    """Fairness and goodness transcribed from the paper, one node at a time."""
    top = max(abs(w) for _, _, w in edges)
    edges = [(s, t, w / top) for s, t, w in edges]
    nodes = {s for s, _, _ in edges} | {t for _, t, _ in edges}
    fair, good = dict.fromkeys(nodes, 1.0), dict.fromkeys(nodes, 1.0)
    for _ in range(200):
        new_good = {}
        for v in nodes:
            ins = [(s, w) for s, t, w in edges if t == v]
            new_good[v] = sum(fair[s] * w for s, w in ins) / len(ins) if ins else 0.0
        new_fair = {}
        for u in nodes:
            outs = [(t, w) for s, t, w in edges if s == u]
            new_fair[u] = (
                1 - sum(abs(w - new_good[t]) for t, w in outs) / (2 * len(outs)) if outs else 1.0
            )
        moved = max(abs(new_good[n] - good[n]) + abs(new_fair[n] - fair[n]) for n in nodes)
        fair, good = new_fair, new_good
        if moved < 1e-12:
            break
    return fair, good


class TestFairnessGoodness:
    """Kumar et al. (ICDM 2016), vectorised, against a node-by-node transcription."""

    @pytest.mark.parametrize("seed", range(4))
    def test_reference(self, seed: int) -> None:
        edges = _graph(seed, negative=0.4).with_columns(pl.col("weight") * 5)
        ours = fairness_goodness(edges, tolerance=1e-13)
        fair, good = _fg_reference(list(edges.iter_rows()))
        for agent, f, g in ours.select("agent", "fairness", "goodness").iter_rows():
            assert f == pytest.approx(fair[agent], abs=1e-9)
            assert g == pytest.approx(good[agent], abs=1e-9)
        assert ours["fairness"].is_between(0, 1).all()
        assert ours["goodness"].is_between(-1, 1).all()
