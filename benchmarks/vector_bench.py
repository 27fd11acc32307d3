"""Semantic search: quality against exact search and on real labels, and speed,
side by side with a brute-force NumPy search on the same vectors, in one run.

1. **CLIMATE-FEVER** (``../shared/datasets``): the claims and their evidence
   sentences imported as the demo imports them; for each claim, the share of its
   own evidence sentences in the top 10 of ``lake.vectors.search`` over all of
   them (hybrid, and vectors only), and the embedding throughput.
2. **Synthetic** ``--size`` assertions (100k by default) with clustered vectors
   (the model is not run: embedding a million real texts takes hours on two
   cores), filtered at three selectivities (everything, ~30%: one lifecycle
   stage, ~1%: one subject prefix) as of a time: recall@10 of the lake's search
   against exact search over the lens's own candidates, p50/p99 latency of both,
   and as-of or lifecycle violations (must be zero).

    python benchmarks/vector_bench.py [--size 100000] [--queries 50] [--claims 300]
                                      [--catch-up 10000] [--out FILE.json]

Reports; never asserts.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import resource
import sys
import tempfile
import time
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CLIMATE = REPO.parent / "shared" / "datasets" / "climate-fever.jsonl"

import steme_lake as sl  # noqa: E402
from steme_lake._utils.progress import Bars  # noqa: E402
from steme_lake._utils.timeparse import to_us  # noqa: E402
from steme_lake.query._candidates import candidates  # noqa: E402
from steme_lake.vectors._search import _subject_expr, nearest  # noqa: E402

DIM = 384


def _pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)) * 1000, 2)


def climate(
    path: Path, claims: int, lake_dir: Path, limit: int | None, catch_up: int
) -> dict[str, Any]:
    """Does a claim find its own evidence sentences? (among all claims' evidence,
    or the first ``limit`` claims') And how long the vectors take to catch up
    with ``catch_up`` new assertions (the evidence sentences written again by
    another agent, so the texts are real ones of the same length)."""
    from steme_lake.io.climate_fever import climate_fever_events

    lake = sl.open(lake_dir / "climate")
    with Bars("CLIMATE-FEVER") as bars:
        lake.import_events(list(climate_fever_events(path, limit=limit)), progress=bars)
    lake.flush()  # as the lake does on its own after 64 MB or 5 minutes
    t = time.perf_counter()
    embedded = lake.vectors.sync()
    embed_s = time.perf_counter() - t
    rows = [json.loads(line) for line in path.read_text().splitlines()[:claims]]
    out: dict[str, Any] = {
        "claims": len(rows),
        "assertions_embedded": embedded,
        "embedding_sentences_per_s": round(embedded / embed_s, 1),
    }
    for hybrid in (True, False):
        shares, hits, times = [], [], []
        for claim in rows:
            own = f"climate/claim/{claim['claim_id']}"
            t = time.perf_counter()
            found = lake.vectors.search(claim["claim"], k=10, hybrid=hybrid, agent="bench")
            times.append(time.perf_counter() - t)
            evidence = found.filter(pl.col("predicate") == "evidence")
            mine = int((evidence["subject"] == own).sum())
            shares.append(mine / min(10, len(claim["evidences"])))
            hits.append(mine > 0)
        out["hybrid" if hybrid else "vector"] = {
            "own_evidence_share_at_10": round(float(np.mean(shares)), 4),
            "claims_with_own_evidence_at_10": round(float(np.mean(hits)), 4),
            "p50_ms": _pct(times, 50),
            "p99_ms": _pct(times, 99),
        }
    # after the quality measure: the copies would compete with the originals
    if catch_up:
        texts = (
            lake.assertions.filter(pl.col("predicate") == "evidence")
            .select("object").collect()["object"].to_list()
        )  # fmt: skip
        new = [
            {"op": "assert", "agent": "copier", "subject": f"climate/copy/{i}",
             "predicate": "evidence", "object": json.loads(texts[i % len(texts)]),
             "source": f"copy-{i}"}
            for i in range(catch_up)
        ]  # fmt: skip
        at = datetime.now(UTC).isoformat()
        lake.import_events([{**e, "at": at} for e in new])
        t = time.perf_counter()
        caught = lake.vectors.sync()
        out["catch_up"] = {"assertions": caught, "seconds": round(time.perf_counter() - t, 1)}
        lake.vectors._store().wait()  # an index build the new rows may have started
    lake.close()
    return out


class Clustered:
    """A stand-in model: each text's vector is its cluster's centre plus noise,
    decided by the text (so the same text gives the same vector)."""

    name = "synthetic-clustered"
    dim = DIM

    def __init__(self, clusters: int = 64, seed: int = 5) -> None:
        rng = np.random.default_rng(seed)
        self.centres = rng.normal(size=(clusters, DIM)).astype(np.float32)

    def embed(self, texts: list[str]) -> np.ndarray:
        seeds = np.array([zlib.crc32(t.encode()) for t in texts], dtype=np.uint64)
        rng = np.random.default_rng(int(seeds.sum() % (2**32)) if len(texts) else 0)
        centre = seeds % len(self.centres)
        out = self.centres[centre] + 0.6 * rng.normal(size=(len(texts), DIM)).astype(np.float32)
        if len(texts) == 1:  # a probe: its own noise, so the same probe gives the same vector
            out = self.centres[centre] + 0.6 * np.random.default_rng(int(seeds[0])).normal(
                size=(1, DIM)
            ).astype(np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


START = datetime(2026, 1, 1, tzinfo=UTC)
CASES: dict[str, dict[str, Any]] = {
    "all, as of now (no time filter)": {"stages": None, "subject": None, "now": True},
    "all (100%)": {"stages": None, "subject": None},
    "approved (~30%)": {"stages": ("approved",), "subject": None},
    "one subject prefix (~1%)": {"stages": None, "subject": "s/7"},
}


def _cut(size: int) -> datetime:
    return START + timedelta(seconds=int(size * 0.9))


def searches(lake_dir: Path, size: int, queries: int) -> dict[str, Any]:
    """The lake's side, in a process of its own (as a server would run it, not
    beside the brute-force side's 1.5 GB matrix and million ids): open, search,
    and report each search's time and results."""
    t = time.perf_counter()
    lake = sl.open(lake_dir)
    model = Clustered()
    vectors = lake.vectors
    vectors._embedder = model
    store = vectors._store()
    nearest(store, model.embed(["warm up"])[0], k=10, t=lake._as_of(None), stages=None,
            subject=None, include_superseded=False)  # fmt: skip
    out: dict[str, Any] = {"first_search_after_open_ms": round((time.perf_counter() - t) * 1000, 1)}
    gc.collect()
    gc.freeze()  # what the open made, as the server does after its start
    for label, case in CASES.items():
        t_us = lake._as_of(None) if case.get("now") else to_us(_cut(size))
        stages = None if case["stages"] is None else tuple(case["stages"])
        nearest(store, model.embed(["warm up"])[0], k=10, t=t_us, stages=stages,
                subject=case["subject"], include_superseded=False)  # fmt: skip
        times, found = [], []
        for q in range(queries):
            probe = model.embed([f"query {q}"])[0]
            t = time.perf_counter()
            got = nearest(store, probe, k=10, t=t_us, stages=stages, subject=case["subject"],
                          include_superseded=False)  # fmt: skip
            times.append(time.perf_counter() - t)
            found.append({"id": got["id"].to_list(), "lifecycle": got["lifecycle"].to_list(),
                          "recorded_us": got["recorded_at"].dt.epoch("us").to_list()})  # fmt: skip
        out[label] = {"times": times, "found": found}
    # Hybrid (full text + vectors, fused) through the whole search: prefilter,
    # query, annotation and the audit record. Latency only: fusion has no exact twin.
    t = time.perf_counter()
    store.full_text_ready()
    out["full_text_index_s"] = round(time.perf_counter() - t, 1)
    times = []
    vectors._search("warm up", k=10, lifecycle="approved", agent="bench")
    for q in range(queries):
        t = time.perf_counter()
        vectors._search(f"value {q * 7919 % size}", k=10, lifecycle="approved", agent="bench")
        times.append(time.perf_counter() - t)
    out["hybrid"] = times
    lake.close()
    return out


def synthetic(size: int, queries: int, lake_dir: Path) -> dict[str, Any]:
    import subprocess

    rng = np.random.default_rng(11)
    path = lake_dir / "synthetic"
    lake = sl.open(path)
    stages = rng.choice(["proposed", "approved", "under_review"], p=[0.6, 0.3, 0.1], size=size)
    lines = [
        json.dumps({"op": "assert", "at": (START + timedelta(seconds=i)).isoformat(),
                    "agent": f"agent-{i % 50}", "subject": f"s/{i % 100}/item-{i}",
                    "predicate": "p", "object": f"value {i}", "confidence": 0.9,
                    "lifecycle": str(stages[i]), "source": f"src-{i % 1000}"})
        for i in range(size)
    ]  # fmt: skip
    t = time.perf_counter()
    with Bars("synthetic lake") as bars:
        for first in range(0, size, 100_000):  # bounded memory: a transaction per 100k
            lake.import_events(lines[first : first + 100_000], progress=bars)
    del lines
    lake.flush()
    built = time.perf_counter() - t
    vectors = lake.vectors
    vectors._embedder = Clustered()  # the stand-in model (the namespace's pluggable embedder)
    t = time.perf_counter()
    vectors.sync()
    added = time.perf_counter() - t
    store = vectors._store()
    store.wait()  # the index build the sync started in the background, if any
    indexed = time.perf_counter() - t
    # Rows added after the build (1%, recorded after every as-of case's T, so the
    # "now" case is the one that must find them): searched exactly beside the index.
    later = max(1, size // 100)
    lake.import_events([
        json.dumps({"op": "assert", "at": (START + timedelta(seconds=size + i)).isoformat(),
                    "agent": "late", "subject": f"s/{i % 100}/late-{i}", "predicate": "p",
                    "object": f"late value {i}", "confidence": 0.9, "lifecycle": "approved",
                    "source": "late"})
        for i in range(later)
    ])  # fmt: skip
    lake.flush()
    vectors.sync()
    report: dict[str, Any] = {
        "assertions": size, "lake_import_s": round(built, 1),
        "vectors_added_s": round(added, 1), "indexed_s": round(indexed, 1),
        "indexed_rows": store.indexed_rows(), "rows_added_after_the_build": later,
    }  # fmt: skip
    table = store.table().to_arrow()
    lake.close()
    done = subprocess.run(
        [sys.executable, __file__, "--searches", str(path), "--size", str(size),
         "--queries", str(queries)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"the lake's searches failed:\n{done.stderr[-4000:]}")
    lake_side = json.loads(done.stdout)
    report["first_search_after_open_ms"] = lake_side["first_search_after_open_ms"]
    # The brute-force side: the lens's own candidates (Polars), then an exact dot
    # product over their vectors.
    lake = sl.open(path)
    ids = table["id"].to_pylist()
    matrix = table["vector"].combine_chunks().values.to_numpy().reshape(-1, DIM)
    where = {n: i for i, n in enumerate(ids)}
    del table
    gc.collect()
    gc.freeze()
    model = Clustered()
    cut = _cut(size)
    for label, case in CASES.items():
        recalls, brute_times, violations = [], [], 0
        t_us = lake._as_of(None) if case.get("now") else to_us(cut)
        stages = None if case["stages"] is None else tuple(case["stages"])
        side = lake_side[label]
        for q, found in enumerate(side["found"]):
            probe = model.embed([f"query {q}"])[0]
            t = time.perf_counter()
            eligible = (
                candidates(
                    lake._tables(), as_of=t_us, lifecycle=stages, opts=lake.options.resolution,
                    subject_filter=None if case["subject"] is None
                    else _subject_expr(case["subject"]),
                ).select("id").collect()["id"].to_list()
            )  # fmt: skip
            rows = np.array([where[i] for i in eligible])
            scores = matrix[rows] @ probe
            best = rows[np.argsort(-scores)[:10]]
            brute_times.append(time.perf_counter() - t)
            exact = {ids[i] for i in best}
            recalls.append(len(exact & set(found["id"])) / max(1, len(exact)))
            if not case.get("now"):
                violations += sum(r > to_us(cut) for r in found["recorded_us"])
            if stages is not None:
                violations += sum(s not in stages for s in found["lifecycle"])
        report[label] = {
            "recall_at_10": round(float(np.mean(recalls)), 4),
            "lake_p50_ms": _pct(side["times"], 50), "lake_p99_ms": _pct(side["times"], 99),
            "numpy_p50_ms": _pct(brute_times, 50), "numpy_p99_ms": _pct(brute_times, 99),
            "as_of_or_lifecycle_violations": violations,
        }  # fmt: skip
    report["full_text_index_s"] = lake_side["full_text_index_s"]
    report["hybrid, approved, whole search with its audit"] = {
        "p50_ms": _pct(lake_side["hybrid"], 50), "p99_ms": _pct(lake_side["hybrid"], 99),
    }  # fmt: skip
    lake.close()
    gc.unfreeze()
    return report


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--claims", type=int, default=300)
    parser.add_argument("--data", type=Path, default=CLIMATE)
    parser.add_argument("--climate-limit", dest="climate_limit", type=int,
                        help="import only the first N claims (default: all 1,535)")  # fmt: skip
    parser.add_argument("--catch-up", dest="catch_up", type=int, default=10_000,
                        help="new assertions whose embedding is timed")  # fmt: skip
    parser.add_argument("--out", type=Path)
    parser.add_argument("--searches", type=Path, help=argparse.SUPPRESS)  # the lake's side
    args = parser.parse_args(argv)
    if args.searches is not None:
        lake_side = searches(args.searches, args.size, args.queries)
        print(json.dumps(lake_side))
        return lake_side
    result: dict[str, Any] = {
        "benchmark": "vector_search",
        "machine": {"cpus": platform.machine(), "python": platform.python_version()},
    }
    with tempfile.TemporaryDirectory() as tmp:
        if args.data.exists() and args.claims > 0:
            result["climate_fever"] = climate(
                args.data, args.claims, Path(tmp), args.climate_limit, args.catch_up
            )
        result["synthetic"] = synthetic(args.size, args.queries, Path(tmp))
    result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
