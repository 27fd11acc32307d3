"""A lake's life on the recording filesystem: single writes, bulk writes,
questions, flushes, compactions and manifest publications. After each
acknowledged write it notes what was acknowledged (outside the mount) and marks
the record (a lookup of ``<mount>/.powerloss-mark-<n>``), so the test knows
which writes a power cut at any later point must not lose.

``python -m tests.powerloss.workload MOUNT ACKS SCENARIO``
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

import steme_lake as sl
from steme_lake import LakeOptions

MARK = ".powerloss-mark-"

OPTIONS = LakeOptions(
    segment_bytes=8192,  # several segments, and flushes that retire some
    flush_bytes=1 << 30,  # flushes happen when the workload says
    flush_age_seconds=3600,
    compact_min_files=3,
    vacuum_retain_seconds=0,  # compaction deletes what it replaced at once
    state_index="off",
)


class Acks:
    def __init__(self, mount: Path, path: Path) -> None:
        self.mount, self.out, self.n = mount, path.open("w"), 0

    def __call__(self, kind: str, ids: list[str]) -> None:
        self.out.write(json.dumps({"mark": self.n, "kind": kind, "ids": ids}) + "\n")
        self.out.flush()
        with contextlib.suppress(FileNotFoundError):
            os.stat(self.mount / f"{MARK}{self.n}")
        self.n += 1


def run(mount: Path, acks: Acks, scenario: str) -> None:
    lake = sl.open(mount / "lake", options=OPTIONS)
    value = 0
    rounds = {"writes": 10, "flush": 6}[scenario]
    for r in range(rounds):
        for _ in range(3):  # single writes, each its own commit and fsync
            value += 1
            aid = lake.assert_(f"svc/{r}", "version", value, agent="deployer", source=f"s{value}")
            acks("assert", [aid])
        batch = [
            {"subject": f"bulk/{r}", "predicate": "n", "object": i, "agent": "importer",
             "source": f"b{r}-{i}"}
            for i in range(25)
        ]  # fmt: skip
        acks("bulk", lake.assert_many(batch))
        answer = lake.query(f"svc/{r}", "version", agent="sre")
        acks("query", [answer.query_id])
        acks("vote", [lake.vote(aid, agent="reviewer", weight=1.0)])
        if scenario == "flush":
            lake.flush()  # Parquet, manifest, WAL retirement (and compaction every 3rd)
            acks("flush", [])
    lake.close()


def main() -> None:
    mount, ack_path, scenario = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    run(mount, Acks(mount, ack_path), scenario)


if __name__ == "__main__":
    main()
