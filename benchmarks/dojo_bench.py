"""The Dojo's export at scale: seconds, peak memory and time per 1k samples.

On a generated lake (`generate.py`: 1M assertions and 10M audit records by
default), the export runs in its own process so its peak RSS is its own. Side
by side, the way one would build the prompts by hand: one as-of point query per
sample (the lake's own point path, no audit), timed on ``--peer-samples``
samples and reported per 1k samples against the batch engine's.

    python benchmarks/dojo_bench.py [--size 1M] [--lake DIR] [--out FILE.json]

Reports; never asserts.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO))


def _child(lake_path: str, peer: int) -> dict[str, Any]:
    import polars as pl
    from tqdm import tqdm

    import steme_lake as sl
    from steme_lake._utils.timeparse import datetime_to_us

    t0 = time.perf_counter()
    lake = sl.open(lake_path)
    opened = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t1 = time.perf_counter()
        with tqdm(desc="dojo export", unit=" rows", disable=None, file=sys.stderr) as bar:
            manifest = lake.dojo.export(Path(tmp) / "export", progress=bar.update)
        seconds = time.perf_counter() - t1
        files = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())
        by_kind = manifest.group_by("kind").len().collect()
        some = (
            manifest.filter(pl.col("predicate").is_not_null())
            .select("subject", "predicate", "asked_at")
            .head(peer)
            .collect()
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    samples = int(by_kind["len"].sum())
    n = max(1, samples)
    # the hand-written way: one as-of point query per sample
    t2 = time.perf_counter()
    for s, p, at in some.select("subject", "predicate", "asked_at").iter_rows():
        lake._answer(
            None, s, p, lens="recency", stages=None, min_confidence=None,
            include_superseded=False, as_of=datetime_to_us(at), requested=None,
        )  # fmt: skip
    point = (time.perf_counter() - t2) / max(1, some.height)
    lake.close()
    return {
        "open_s": round(opened, 3),
        "export_s": round(seconds, 2),
        "peak_rss_mib": round(rss, 1),
        "samples": samples,
        "by_kind": dict(sorted(by_kind.iter_rows())),
        "export_bytes": files,
        "batch_s_per_1k_samples": round(seconds / n * 1000, 3),
        "point_query_s_per_1k_samples": round(point * 1000, 3),
        "point_queries_timed": some.height,
        "batch_vs_point_ratio": round(point * n / seconds, 1) if seconds else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1M", help="100k, 1M, 10M or a number (1M)")
    parser.add_argument("--lake", help="a generated lake to reuse (made when missing)")
    parser.add_argument("--peer-samples", dest="peer", type=int, default=300)
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.peer)))
        return
    import generate

    lake_path = (
        Path(args.lake) if args.lake else Path(tempfile.mkdtemp(prefix="dojo-bench-")) / "lake"
    )
    made = generate.ensure(lake_path, args.size, bar=True)
    run = subprocess.run(
        [sys.executable, __file__, "--child", str(lake_path), "--peer-samples", str(args.peer)],
        check=True, stdout=subprocess.PIPE, text=True,  # its progress bar on our stderr
    )  # fmt: skip
    result = {
        "benchmark": "dojo_export",
        "size": args.size,
        "lake": str(lake_path),
        "generated_s": made,
        "machine": {"cpus": platform.machine(), "python": platform.python_version()},
        **json.loads(run.stdout.strip().splitlines()[-1]),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
