"""What knowing who asks costs a question: anonymous, read token, signed read.

In-process (no HTTP, so the figures are the identity check and the question,
not the transport): a lake with 2,000 keys, one registered agent with a key
and a token; each question is planned and committed alone, as the server's
busy-key path does, 400 times per way. The signed reads are signed before the
clock starts (each with its own time: a replay would be refused), so the
figure is the server's side: parsing the header, one ed25519 verification,
the registry lookup and the replay check.

    python benchmarks/identity_bench.py [--questions 400] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import steme_lake as sl
from steme_lake._utils.timeparse import now_us
from steme_lake.api._models import QueryIn
from steme_lake.api._ops import Credentials, Operations, ServerOptions
from steme_lake.keys import AgentRegistry

KEYS = 2_000


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    at = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50_us": at(0.5), "p90_us": at(0.9), "p99_us": at(0.99),
            "mean_us": statistics.fmean(ordered)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=400)
    parser.add_argument("--out")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lake = sl.open(Path(tmp) / "lake", options=sl.LakeOptions(state_index="eager"))
        lake.assert_many(
            [{"subject": f"svc/{i}", "predicate": "version", "object": i, "agent": "w",
              "source": f"s{i}"} for i in range(KEYS)]
        )  # fmt: skip
        key = sl.AgentKey.generate()
        token = AgentRegistry(lake.path).register("deploy-agent", key.public_key, token=True)
        ops = Operations(lake, ServerOptions())
        bodies = [
            json.dumps({"subject": f"svc/{i % KEYS}", "predicate": "version"}).encode()
            for i in range(args.questions)
        ]
        ways = {
            "anonymous": [Credentials() for _ in bodies],
            "read token": [Credentials(token=token) for _ in bodies],
            "signed read": [
                Credentials(
                    signature=key.sign_read("POST", "/query", raw, now_us() + i),
                    method="POST",
                    path="/query",
                    payload=raw,
                )
                for i, raw in enumerate(bodies)
            ],
        }
        results: dict[str, dict[str, dict[str, float]]] = {}
        for way, creds in ways.items():
            check, whole = [], []
            for raw, cred in zip(bodies, creds, strict=True):
                body = QueryIn.model_validate_json(raw)
                t0 = time.perf_counter_ns()
                asker = ops.reader(cred, None)
                t1 = time.perf_counter_ns()
                ops.run(ops.query_plan(body, asker))
                t2 = time.perf_counter_ns()
                check.append((t1 - t0) / 1000)
                whole.append((t2 - t0) / 1000)
            results[way] = {"identity": _percentiles(check), "question": _percentiles(whole)}
        lake.close()
    report = {
        "benchmark": "identity_bench",
        "machine": platform.platform(),
        "python": sys.version.split()[0],
        "questions": args.questions,
        "keys": KEYS,
        "results": results,
    }
    for way, figures in results.items():
        print(
            f"{way:<12} identity p50 {figures['identity']['p50_us']:7.1f} us  "
            f"p99 {figures['identity']['p99_us']:7.1f} us   question+audit p50 "
            f"{figures['question']['p50_us']:7.1f} us  p99 {figures['question']['p99_us']:7.1f} us"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
