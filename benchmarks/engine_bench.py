"""TrustRank of every topic on Ray (1 and 2 worker nodes) against the single-process engine.

    python benchmarks/engine_bench.py [--votes 10k,100k,1M] [--workers 1,2] [--repeat 3] \
        [--out FILE.json]

For each size, a lake on S3 (SeaweedFS on 127.0.0.1, started here) with
``--votes`` votes on a fifth as many assertions, over ``--topics`` topics and
5,000 agents, 2% approvals and 0.2% invalidations, flushed. Then, on the same
files and as of the same time:

- ``local``: ``lake.trust.run(store=False)`` in this process; ``cold`` is a
  new read-only open with an empty cache (every file downloaded), ``warm``
  the best of ``--repeat`` runs after it;
- ``ray-N``: a Ray cluster of a head node with no CPUs (it only schedules)
  and N worker nodes of one CPU each, all on this machine; ``cold`` is the
  first run (worker processes start, download and import), ``warm`` the best
  of ``--repeat`` after it. Every run's scores are checked equal to the local
  engine's.

It re-runs itself in a network namespace of its own (``tests/_netns.py``) so
Ray stays on loopback. ``--address`` uses a running cluster instead of
starting one (then ``--workers`` is ignored). Reports seconds and ratios to
the local engine; never asserts on time.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent)]

import polars as pl  # noqa: E402

import steme_lake as sl  # noqa: E402
from steme_lake.engine import RayEngine  # noqa: E402
from tests._netns import stop_ray_here  # noqa: E402
from tests._seaweed import SeaweedFS  # noqa: E402

BATCH = sl.LakeOptions(state_index="off")  # batch jobs: no point-query index
AGENTS = 5_000


def _size(text: str) -> int:
    text = text.strip().lower().replace("_", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * scale)


def build(lake: sl.Lake, votes: int, topics: int, seed: int = 5) -> None:
    """``votes`` votes on ``votes // 5`` assertions, with approvals and invalidations."""
    rng = np.random.default_rng(seed)
    n = max(10, votes // 5)
    agents = np.array([f"agent-{i:05d}" for i in range(AGENTS)])
    popular = 1.0 / np.arange(1, AGENTS + 1) ** 0.9
    popular /= popular.sum()
    ids: list[str] = []
    for lo in range(0, n, 50_000):
        k = min(50_000, n - lo)
        topic = rng.integers(0, topics, k)
        ids += lake.assert_many(
            pl.DataFrame(
                {
                    "subject": [
                        f"svc{t:03d}/thing{j % 997}"
                        for t, j in zip(topic, range(lo, lo + k), strict=True)
                    ],
                    "predicate": "state",
                    "object": [f"v{x}" for x in rng.integers(0, 6, k)],
                    "agent": rng.choice(agents, k, p=popular).tolist(),
                    "source_hash": [f"{x:064x}" for x in rng.integers(0, 2**62, k)],
                }
            )
        )
    pool = np.array(ids)
    for lo in range(0, votes, 100_000):
        k = min(100_000, votes - lo)
        lake.vote_many(
            pl.DataFrame(
                {
                    "target": rng.choice(pool, k).tolist(),
                    "agent": rng.choice(agents, k, p=popular).tolist(),
                    "weight": rng.choice([1.0, 1.0, 1.0, -1.0, 0.5], k).tolist(),
                }
            )
        )
    for target in rng.choice(pool, max(1, n // 50), replace=False):
        lake.set_lifecycle(str(target), "approved", agent=str(rng.choice(agents[:50])))
    for target in rng.choice(pool, max(1, n // 500), replace=False):
        lake.supersede(str(target), agent="human-sre", kind="invalidate", reason="wrong")
    lake.flush()


def _dojo_lake(server: SeaweedFS, work: Path, assertions: int) -> tuple[str, str]:
    """A generated lake (``generate.py``) on S3, flushed: its URL and WAL folder."""
    sys.path.insert(0, str(HERE))
    import generate

    url, wal = f"s3://bench/dojo-{assertions}", str(work / "wal-dojo")
    lake = sl.open(url, storage_options=server.options(), wal=wal, options=BATCH)
    plan = generate.plan_for(str(assertions))  # 30 days; a tiny lake (a smoke test) one
    if assertions < 10_000:
        plan = generate.Plan(assertions=assertions, hours=24, seed=plan.seed)
    t, _ = _timed(lambda: generate.generate(lake, plan))
    lake.flush()
    lake.close()
    print(f"generated a {assertions:,}-assertion lake on S3 in {t:.1f} s", file=sys.stderr)
    return url, wal


def _export(server: SeaweedFS, where: tuple[str, str], out: Path, engine: Any) -> dict[str, Any]:
    """The whole export (pass one on ``engine``), timed from a writer's open."""
    url, wal = where
    t = time.perf_counter()
    lake = sl.open(url, storage_options=server.options(), wal=wal, options=BATCH)
    manifest = lake.dojo.export(out, engine=engine)
    seconds = time.perf_counter() - t
    samples = manifest.select(pl.len()).collect().item()
    lake.close()
    files = {
        str(p.relative_to(out)): hashlib.blake2b(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }
    shutil.rmtree(out)
    return {"seconds": round(seconds, 2), "samples": samples, "files": files}


def _timed(fn: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def _ray_bin() -> str:
    return str(Path(sys.executable).parent / "ray")


def _start_cluster(workers: int, temp: Path) -> str:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    node = ["--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    subprocess.run(
        [_ray_bin(), "start", "--head", f"--port={port}", "--num-cpus=0",
         "--include-dashboard=false", f"--temp-dir={temp}", *node],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    for _ in range(workers):
        subprocess.run(
            [_ray_bin(), "start", f"--address=127.0.0.1:{port}", "--num-cpus=1", *node],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
    return f"127.0.0.1:{port}"


def _stop_cluster() -> None:
    import ray

    ray.shutdown()
    stop_ray_here()  # this namespace's cluster only: `ray stop` would stop every one


def _runs(run: Any, repeat: int, expected: pl.DataFrame | None) -> dict[str, Any]:
    cold, scores = _timed(run)
    if expected is not None and not scores.equals(expected):
        raise SystemExit("the engines disagree: the benchmark stops (a bug to report)")
    warm = [_timed(run)[0] for _ in range(repeat)]
    return {"cold_s": round(cold, 3), "warm_s": round(min(warm), 3), "scores": scores}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", default="10k,100k,1M", help="sizes, comma-separated")
    parser.add_argument("--topics", type=int, default=64)
    parser.add_argument("--workers", default="1,2", help="worker nodes, comma-separated")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--address", help="a running Ray cluster to use instead")
    parser.add_argument("--tasks-per-cpu", dest="tasks_per_cpu", default="1,2",
                        help="RayEngine(tasks_per_cpu=...) values, comma-separated")  # fmt: skip
    dojo_help = "also the Dojo export of a generated lake of this many assertions (0: not)"
    parser.add_argument("--dojo", default="0", help=dojo_help)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if os.environ.get("STEME_NETNS") != "1" and argv is None:
        netns = HERE.parent / "tests" / "_netns.py"
        os.execv(sys.executable, [sys.executable, str(netns), sys.executable, *sys.argv])
    sizes = [_size(v) for v in args.votes.split(",")]
    workers = [int(w) for w in args.workers.split(",")] if not args.address else [0]
    work = Path(tempfile.mkdtemp(prefix="steme-engine-bench-"))
    server = SeaweedFS(work / "seaweedfs").start()
    rows: list[dict[str, Any]] = []
    try:
        server.make_bucket("bench")
        lakes: dict[int, tuple[str, str]] = {}
        for votes in sizes:
            url = f"s3://bench/votes-{votes}"
            writer = sl.open(url, storage_options=server.options(), wal=work / f"wal-{votes}")
            t, _ = _timed(lambda w=writer, v=votes: build(w, v, args.topics))
            stamp = writer.status().last_time
            writer.close()
            lakes[votes] = (url, stamp)
            print(f"built {votes:,} votes on S3 in {t:.1f} s", file=sys.stderr)
        dojo_lake = _dojo_lake(server, work, _size(args.dojo)) if _size(args.dojo) else None
        dojo: dict[str, Any] = {}
        if dojo_lake is not None:
            dojo["local"] = _export(server, dojo_lake, work / "dojo-local", None)
            rows.append({"job": "dojo", "engine": "local", "workers": 1,
                         "seconds": dojo["local"]["seconds"],
                         "samples": dojo["local"]["samples"]})  # fmt: skip
            print(rows[-1], file=sys.stderr)
        local: dict[int, dict[str, Any]] = {}
        for votes, (url, stamp) in lakes.items():
            reader = sl.open(url, storage_options=server.options(reader=True), read_only=True,
                             options=BATCH)  # fmt: skip
            result = _runs(
                lambda r=reader, s=stamp: r.trust.run(as_of=s, store=False, constraints=False),
                args.repeat,
                None,
            )
            reader.close()
            local[votes] = result
            rows.append({"job": "trustrank", "votes": votes, "engine": "local", "workers": 1,
                         "cold_s": result["cold_s"], "warm_s": result["warm_s"],
                         "topics_ranked": result["scores"]["topic"].n_unique()})  # fmt: skip
        for n in workers:
            temp = Path(tempfile.mkdtemp(prefix="sr-", dir="/tmp"))
            address = args.address or _start_cluster(n, temp)
            try:
                import ray

                owned = not ray.is_initialized()  # (a test's driver may be connected already)
                if owned:
                    ray.init(address=address, log_to_driver=False)
                cpus = int(ray.cluster_resources().get("CPU", 0))
                for (votes, (url, stamp)), per_cpu in itertools.product(
                    lakes.items(), [int(x) for x in args.tasks_per_cpu.split(",")]
                ):
                    reader = sl.open(url, storage_options=server.options(reader=True),
                                     read_only=True, options=BATCH)  # fmt: skip
                    engine = RayEngine(address, tasks_per_cpu=per_cpu)
                    result = _runs(
                        lambda engine=engine, reader=reader, stamp=stamp: reader.trust.run(
                            as_of=stamp, store=False, constraints=False, engine=engine
                        ),
                        args.repeat,
                        local[votes]["scores"],
                    )
                    reader.close()
                    base = local[votes]
                    rows.append({
                        "job": "trustrank", "votes": votes, "engine": "ray", "workers": cpus,
                        "tasks": engine.tasks(),
                        "cold_s": result["cold_s"], "warm_s": result["warm_s"],
                        "cold_ratio": round(result["cold_s"] / base["cold_s"], 2),
                        "warm_ratio": round(result["warm_s"] / base["warm_s"], 2),
                    })  # fmt: skip
                    print(rows[-1], file=sys.stderr)
                if dojo_lake is not None:
                    got = _export(server, dojo_lake, work / f"dojo-ray-{cpus}", RayEngine(address))
                    if got["files"] != dojo["local"]["files"]:
                        raise SystemExit("the Dojo exports differ: the benchmark stops (a bug)")
                    ratio = round(got["seconds"] / dojo["local"]["seconds"], 2)
                    rows.append({"job": "dojo", "engine": "ray", "workers": cpus,
                                 "seconds": got["seconds"], "samples": got["samples"],
                                 "ratio": ratio})  # fmt: skip
                    print(rows[-1], file=sys.stderr)
            finally:
                if not args.address:
                    _stop_cluster()
                elif owned:
                    ray.shutdown()
                shutil.rmtree(temp, ignore_errors=True)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    out = {
        "benchmark": "engine",
        "job": "lake.trust.run(store=False): every topic, as of the lake's last record",
        "topics": args.topics,
        "agents": AGENTS,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "rows": rows,
        # (every Ray run's scores were compared with the local engine's: a difference
        # stops the benchmark)
    }
    print(pl.DataFrame(rows))
    if args.out:
        args.out.write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
