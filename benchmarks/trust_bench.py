"""TrustRank: steme_lake against networkx and igraph on the same graphs, in one run.

1. **Bitcoin OTC** (SNAP, ``../shared/datasets``): from the lake to stored scores
   (`lake.trust.run`, the graph read from the lake's votes), and the ranking of
   the raw ratings by steme_lake, networkx and igraph (graph build included).
2. **A synthetic topic**, ``--agents`` agents and ``--edges`` edges (1M / 10M by
   default; heavy-tailed out-degrees, 10% negative): steme_lake and igraph at full
   size, networkx on a tenth of the edges (and at full size with
   ``--networkx-full``: minutes and gigabytes), each in its own process so its
   peak memory is its own.
3. **A warm start** after 1% new edges: iterations against a cold run, on the
   Bitcoin OTC and Alpha lakes (the newest 1% of ratings, as a Gardener
   following the lake sees them: ``lake.trust.run(warm=True)``) and on the
   synthetic graph (1% random new edges, at three tolerances).

    python benchmarks/trust_bench.py [--agents 1000000] [--edges 10000000] [--out FILE.json]

Reports seconds (best of ``--repeat``), peak RSS and ratios; never asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"
OTC = DATASETS / "soc-sign-bitcoinotc.csv"
ALPHA = DATASETS / "soc-sign-bitcoinalpha.csv"


def _best(fn: Any, repeat: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def synthetic(agents: int, edges: int, seed: int = 7) -> pl.DataFrame:
    """Heavy-tailed out-degrees (Zipf-like), uniform targets, 10% distrust."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, agents + 1) ** 0.8
    src = rng.choice(agents, size=edges, p=weights / weights.sum())
    dst = rng.integers(0, agents, size=edges)
    sign = np.where(rng.random(edges) < 0.1, -1.0, 1.0)
    return pl.DataFrame(
        {
            "source": pl.Series(src).cast(pl.String),
            "target": pl.Series(dst).cast(pl.String),
            "weight": sign * rng.uniform(0.1, 1.0, edges),
        }
    )


# ----------------------------------------------------------------- the engines


def run_steme(edges: pl.DataFrame, seeds: list[str]) -> int:
    from steme_lake.trust import trustrank

    return trustrank(edges, seeds=seeds, tolerance=1e-8).iterations


def run_networkx(edges: pl.DataFrame, seeds: list[str]) -> int:
    import networkx as nx

    pos = edges.filter(pl.col("weight") > 0)
    g = nx.DiGraph()
    g.add_nodes_from(pl.concat([edges["source"], edges["target"]]).unique().to_list())
    g.add_weighted_edges_from(pos.iter_rows())
    personal = dict.fromkeys(seeds, 1.0) if seeds else None
    nx.pagerank(g, alpha=0.85, personalization=personal, dangling=personal, tol=1e-8)
    return 0


def run_igraph(edges: pl.DataFrame, seeds: list[str]) -> int:
    import igraph as ig

    pos = edges.filter(pl.col("weight") > 0)
    names = pl.concat([edges["source"], edges["target"]]).unique()
    index = {n: i for i, n in enumerate(names.to_list())}
    g = ig.Graph(
        n=len(index),
        edges=list(zip(pos["source"].replace_strict(index).to_list(),
                       pos["target"].replace_strict(index).to_list(), strict=True)),
        directed=True,
    )  # fmt: skip
    reset = [index[s] for s in seeds] if seeds else None
    g.personalized_pagerank(damping=0.85, weights=pos["weight"].to_list(), reset_vertices=reset)
    return 0


ENGINES = {"steme_lake": run_steme, "networkx": run_networkx, "igraph": run_igraph}


def _child(engine: str, path: str, seeds: list[str], repeat: int) -> None:
    """In a process of its own: time one engine on a Parquet edge list, report JSON."""
    import importlib

    importlib.import_module({"steme_lake": "steme_lake.trust"}.get(engine, engine))
    import scipy.sparse  # noqa: F401 - loaded before the clock starts, for every engine

    edges = pl.read_parquet(path)
    seconds, iterations = _best(lambda: ENGINES[engine](edges, seeds), repeat)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "peak_bytes": peak, "iterations": iterations}))


def _measure(engine: str, edges: pl.DataFrame, seeds: list[str], repeat: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "edges.parquet"
        edges.write_parquet(path)
        command = [sys.executable, __file__, "--child", engine, str(path)]
        done = subprocess.run(
            [*command, json.dumps(seeds), str(repeat)],
            capture_output=True, text=True, check=False, timeout=3600,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip
    if done.returncode != 0:
        return {"error": done.stderr.strip()[-400:]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["edges"] = edges.height
    return result


# ----------------------------------------------------------------- workloads


def otc(repeat: int) -> dict[str, Any]:
    import steme_lake as sl
    from steme_lake.io.snap_signed import read_signed_edges

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        lake = sl.open(Path(tmp) / "lake")
        t = time.perf_counter()
        lake.trust.import_ratings(OTC, topic="bitcoin-otc")
        out["import_seconds"] = time.perf_counter() - t
        t = time.perf_counter()
        lake.trust.run(topics=["bitcoin-otc"])  # the first run stores every score
        out["lake_to_stored_scores_seconds"] = time.perf_counter() - t
        out["rerun_seconds"], _ = _best(lambda: lake.trust.run(topics=["bitcoin-otc"]), repeat)
        lake.close()
    raw = read_signed_edges(OTC).select("source", "target", pl.col("rating").alias("weight"))
    for engine in ENGINES:
        out[engine] = _measure(engine, raw, [], repeat)
    return out


def big(agents: int, edges: int, repeat: int, networkx_full: bool) -> dict[str, Any]:
    graph = synthetic(agents, edges)
    seeds = [str(i) for i in range(10)]
    out: dict[str, Any] = {"agents": agents, "edges": edges}
    out["steme_lake"] = _measure("steme_lake", graph, seeds, repeat)
    out["igraph"] = _measure("igraph", graph, seeds, repeat)
    tenth = graph.head(edges // 10)
    out["steme_lake_tenth"] = _measure("steme_lake", tenth, seeds, repeat)
    out["networkx_tenth"] = _measure("networkx", tenth, seeds, 1)
    if networkx_full:
        out["networkx"] = _measure("networkx", graph, seeds, 1)
    return out


def warm_lake(path: Path) -> dict[str, Any]:
    """On a lake holding a real network: the Gardener's run as of just before the
    newest 1% of ratings, then a warm and a cold run with them (the product path,
    `lake.trust.run`, default options), and how far the two runs' scores differ."""
    import datetime as dt

    import steme_lake as sl
    from steme_lake.io.snap_signed import read_signed_edges

    times = read_signed_edges(path)["at"].sort()
    cut = times[int(len(times) * 0.99)]
    out: dict[str, Any] = {"ratings": len(times), "new_ratings": int((times >= cut).sum())}
    with tempfile.TemporaryDirectory() as tmp:
        lake = sl.open(Path(tmp) / "lake")
        lake.trust.import_ratings(path, topic="net")
        before = lake.trust.run(topics=["net"], as_of=cut - dt.timedelta(microseconds=1))
        t = time.perf_counter()
        warm_run = lake.trust.run(topics=["net"], store=False, warm=True)
        warm_seconds = time.perf_counter() - t
        t = time.perf_counter()
        cold = lake.trust.run(topics=["net"], store=False)
        cold_seconds = time.perf_counter() - t
        lake.close()
    both = cold.join(warm_run, on="agent", suffix="_warm")
    out.update(
        before_iterations=int(before["iterations"][0]),
        cold_iterations=int(cold["iterations"][0]),
        warm_iterations=int(warm_run["iterations"][0]),
        ratio=int(warm_run["iterations"][0]) / int(cold["iterations"][0]),
        cold_seconds=cold_seconds,
        warm_seconds=warm_seconds,
        max_score_difference=float((both["score"] - both["score_warm"]).abs().max() or 0.0),
    )
    return out


def warm(agents: int, edges: int) -> dict[str, Any]:
    """Iterations of a warm-started run after 1% new random edges against a cold
    one, at the Gardener's default tolerance (1e-10, L1) and at looser ones."""
    from steme_lake.trust import trustrank

    graph = synthetic(agents, edges)
    more = pl.concat([graph, synthetic(agents, edges // 100, seed=99)])
    seeds = [str(i) for i in range(10)]
    out: dict[str, Any] = {"agents": agents, "edges": edges, "new_edges": edges // 100}
    for tolerance in (1e-10, 1e-8, 1e-6):
        before = trustrank(graph, seeds=seeds, tolerance=tolerance)
        start = dict(before.scores.select("agent", "pagerank").iter_rows())
        cold = trustrank(more, seeds=seeds, tolerance=tolerance)
        warm_run = trustrank(more, seeds=seeds, tolerance=tolerance, start=start)
        out[f"tolerance {tolerance:g}"] = {
            "cold_iterations": cold.iterations,
            "warm_iterations": warm_run.iterations,
            "ratio": warm_run.iterations / cold.iterations,
        }
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1_000_000)
    parser.add_argument("--edges", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out")
    parser.add_argument(
        "--networkx-full", action="store_true", help="networkx at full size too (minutes, GBs)"
    )
    args = parser.parse_args()
    report: dict[str, Any] = {
        "benchmark": "trust_bench",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
    }
    if OTC.exists():
        report["bitcoin_otc"] = otc(args.repeat)
    report["synthetic"] = big(args.agents, args.edges, args.repeat, args.networkx_full)
    report["warm_start"] = warm(min(args.agents, 200_000), min(args.edges, 2_000_000))
    for name, path in (("bitcoin_otc", OTC), ("bitcoin_alpha", ALPHA)):
        if path.exists():
            report["warm_start"][name] = warm_lake(path)
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
