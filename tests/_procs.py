"""Child processes for the crash and concurrency tests (run as a script).

Each mode writes to a lake and prints one ``ACK`` line per write *after* the
write returned, so the parent knows exactly which writes were acknowledged.
"""

from __future__ import annotations

import json
import resource
import signal
import sys
import time
from pathlib import Path

import steme_lake as sl
from steme_lake import LakeOptions


def ack(payload: object) -> None:
    sys.stdout.write("ACK " + json.dumps(payload) + "\n")
    sys.stdout.flush()


def single(lake: sl.Lake, tag: str) -> None:
    for n in range(1_000_000):
        rid = lake.assert_(f"crash/{tag}", "n", n, agent=tag, source="kill-test")
        ack({"n": n, "id": rid})


def bulk(lake: sl.Lake, tag: str) -> None:
    for b in range(1_000_000):
        rows = [
            {
                "subject": f"crash/{tag}",
                "predicate": "n",
                "object": i,
                "agent": tag,
                "source": "kill-test",
                "meta": {"batch": b},
            }
            for i in range(20)
        ]
        ack({"batch": b, "ids": lake.assert_many(rows)})


def concurrent(lake: sl.Lake, tag: str, count: int, barrier: Path, peers: int) -> None:
    seen_others = 0
    for n in range(count):
        lake.assert_(f"conc/{tag}", "n", n, agent=tag, source="concurrency-test")
        if n % 25 == 0:
            others = lake.assertions.filter(~sl_col_subject_is(tag)).select("id").collect().height
            seen_others = max(seen_others, others)
    (barrier / tag).touch()
    deadline = time.monotonic() + 120
    while len(list(barrier.iterdir())) < peers and time.monotonic() < deadline:
        time.sleep(0.01)
    total = lake.assertions.collect().height
    ack({"total": total, "seen_others_while_writing": seen_others})


def sl_col_subject_is(tag: str):
    import polars as pl

    return pl.col("subject") == f"conc/{tag}"


def queries(lake: sl.Lake, tag: str) -> None:
    lake.assert_(f"q/{tag}", "alg", "RS256", agent=tag, lifecycle="approved", source="kill-test")
    for n in range(1_000_000):
        ans = lake.query(f"q/{tag}", "alg", agent=tag, lens=("recency", "consensus")[n % 2])
        ack({"n": n, "query_id": ans.query_id, "value": ans.value})


def full_disk(lake: sl.Lake, tag: str, limit: int) -> None:
    # A real write limit: past it the kernel refuses writes (EFBIG), as a full disk would.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    for n in range(1_000_000):
        try:
            rid = lake.assert_(
                f"disk/{tag}", "n", n, agent=tag, source="x" * 50, meta={"pad": "y" * 300}
            )
        except sl.StemeLakeError as exc:
            ack({"error": type(exc).__name__, "message": str(exc)})
            try:
                lake.assert_(f"disk/{tag}", "n", n, agent=tag, source="again")
            except sl.StemeLakeError as again:
                ack({"after": type(again).__name__})
            return
        ack({"n": n, "id": rid})


def main() -> None:
    mode, path, tag = sys.argv[1], sys.argv[2], sys.argv[3]
    options = LakeOptions(
        flush_bytes=int(sys.argv[4]) if len(sys.argv) > 4 and mode != "concurrent" else 64 << 20,
        max_frame_bytes=4096 if mode == "bulk" else 64 << 20,
        compact_min_files=3,
        vacuum_retain_seconds=0.0,
    )
    lake = sl.open(path, options=options)
    if mode == "single":
        single(lake, tag)
    elif mode == "bulk":
        bulk(lake, tag)
    elif mode == "concurrent":
        concurrent(lake, tag, int(sys.argv[4]), Path(sys.argv[5]), int(sys.argv[6]))
        lake.close()
    elif mode == "queries":
        queries(lake, tag)
    elif mode == "full_disk":
        full_disk(lake, tag, int(sys.argv[4]))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
