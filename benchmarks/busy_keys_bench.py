"""Busy keys beside ordinary ones over HTTP: does a slow question hold up the rest?

A busy key (one subject and predicate with thousands of assertions: a topic
every agent writes about) is answered by the vectorized lenses, in
milliseconds of Polars instead of microseconds. This builds a lake with
``--busy`` such keys of ``--rows`` assertions each (default 4 x 30,000, about
the size of the busiest keys of the 10M benchmark) and 500 ordinary keys of 7
assertions, starts ``steme serve --no-auth`` on it, asks every key once (so
the server knows which keys are busy), then runs two mixes of 8 clients
(``http.client`` threads, one keep-alive connection each, ``POST /query``):

- ``ordinary``: all 8 clients ask ordinary keys;
- ``mixed``: 1 client asks busy keys, the other 7 ordinary keys;
- ``writing``: as ``mixed``, and 1 more client writes new assertions to the
  busy keys (about 30 a second) in place of an ordinary one: do the busy
  keys' answers stay remembered while agents keep writing to them?

    python benchmarks/busy_keys_bench.py [--busy 4] [--rows 30000] [--seconds 10]
                                         [--out FILE.json]

Reports requests/s and latency percentiles per group of clients.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import steme_lake as sl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_bench import _percentiles, _port, stamp, start_server, stop_server  # beside this script

CLIENTS = 8
ORDINARY_KEYS = 500
# The writer's pause between two assertions on the busy keys: about 30 writes a
# second on this VM, a busy topic's pace (each of 4 keys written to every 130 ms or so).
WRITE_PAUSE = 0.02


def _build(lake_path: Path, busy: int, rows: int) -> tuple[list[str], list[str]]:
    """The lake, and its busy and ordinary subjects (predicate ``alg``)."""
    busy_subjects = [f"busy/{k}/auth/jwt" for k in range(busy)]
    ordinary = [f"svc/{k}/auth/jwt" for k in range(ORDINARY_KEYS)]
    with sl.open(lake_path) as lake:
        for subject in busy_subjects:
            for start in range(0, rows, 10_000):
                lake.assert_many(
                    [
                        {"subject": subject, "predicate": "alg", "object": f"v{i % 50}"}
                        | {"agent": f"agent-{i % 20}", "source": f"{subject}#{i}"}
                        for i in range(start, min(rows, start + 10_000))
                    ]
                )
        lake.assert_many(
            [
                {"subject": subject, "predicate": "alg", "object": f"v{i}"}
                | {"agent": f"agent-{i % 20}", "source": f"{subject}#{i}"}
                for subject in ordinary
                for i in range(7)
            ]
        )
    return busy_subjects, ordinary


def _ask(port: int, subject: str, conn: http.client.HTTPConnection) -> int:
    body = json.dumps({"subject": subject, "predicate": "alg", "agent": "bench"})
    conn.request("POST", "/query", body=body, headers={"content-type": "application/json"})
    response = conn.getresponse()
    response.read()
    return response.status


_written = iter(range(10**9))  # numbers the writer's assertions (distinct sources)


def _write(port: int, subject: str, conn: http.client.HTTPConnection) -> int:
    """One new assertion on a busy key (what the ``writer`` group sends)."""
    n = next(_written)
    body = json.dumps(
        {"subject": subject, "predicate": "alg", "object": f"w{n % 50}", "confidence": 0.8}
        | {"agent": f"writer-{n % 4}", "source": f"{subject}#w{n}"}
    )
    conn.request("POST", "/assert", body=body, headers={"content-type": "application/json"})
    response = conn.getresponse()
    response.read()
    return response.status if response.status != 201 else 200


def _mix(port: int, groups: list[tuple[str, list[str]]], seconds: float) -> dict[str, Any]:
    """One client per (group, subjects); each group's throughput and latencies.
    A ``writer`` group writes (`_write`, paced by ``WRITE_PAUSE``); the others ask."""
    latencies: dict[str, list[float]] = {name: [] for name, _ in groups}
    errors: dict[str, int] = dict.fromkeys(latencies, 0)
    lock = threading.Lock()
    barrier = threading.Barrier(len(groups) + 1)
    stop: list[float] = []

    def client(n: int, name: str, subjects: list[str]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        mine: list[float] = []
        failed = 0
        barrier.wait()
        i = n
        send = _write if name == "writer" else _ask
        while time.perf_counter() < stop[0]:
            t = time.perf_counter()
            status = send(port, subjects[i % len(subjects)], conn)
            mine.append(time.perf_counter() - t)
            failed += status != 200
            # (the writer and the busy client go round the busy keys, each key in turn)
            i += CLIENTS if name == "ordinary" else 1
            if name == "writer":
                time.sleep(WRITE_PAUSE)
        conn.close()
        with lock:
            latencies[name].extend(mine)
            errors[name] += failed

    threads = [
        threading.Thread(target=client, args=(n, name, subjects))
        for n, (name, subjects) in enumerate(groups)
    ]
    for t in threads:
        t.start()
    stop.append(time.perf_counter() + seconds)
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return {
        name: {
            "clients": sum(1 for g, _ in groups if g == name),
            "requests": len(samples),
            "errors": errors[name],
            "per_second": round(len(samples) / elapsed, 1),
            **_percentiles(samples),
        }
        for name, samples in latencies.items()
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", type=int, default=4, help="busy keys (default 4)")
    parser.add_argument(
        "--rows", type=int, default=30_000, help="assertions per busy key (default 30,000)"
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.busy < 1:
        parser.error(f"--busy {args.busy}: give at least 1")
    if args.rows <= 1_000:
        parser.error(f"--rows {args.rows}: a busy key has more than 1,000 assertions")

    root = Path(tempfile.mkdtemp(prefix="steme-busy-bench-"))
    lake_path = root / "lake"
    print(f"building {args.busy} x {args.rows:,} busy assertions...", file=sys.stderr)
    busy, ordinary = _build(lake_path, args.busy, args.rows)
    port = _port()
    server = start_server(lake_path, port, "--no-auth")
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        # Every key once: the server's lake finds the busy ones (and its index is
        # built; `GET /health` answers before it is).
        started = time.perf_counter()
        for subject in busy + ordinary:
            if _ask(port, subject, conn) != 200:
                raise SystemExit(f"the warm-up question about {subject} failed")
        conn.close()
        warm = time.perf_counter() - started
        ordinary_mix = _mix(port, [("ordinary", ordinary)] * CLIENTS, args.seconds)
        print(f"8 ordinary: {ordinary_mix}", file=sys.stderr)
        mixed = _mix(
            port, [("busy", busy)] + [("ordinary", ordinary)] * (CLIENTS - 1), args.seconds
        )
        print(f"1 busy + 7 ordinary: {mixed}", file=sys.stderr)
        writing = _mix(
            port,
            [("writer", busy), ("busy", busy)] + [("ordinary", ordinary)] * (CLIENTS - 2),
            args.seconds,
        )
        print(f"1 writer + 1 busy + 6 ordinary: {writing}", file=sys.stderr)
    finally:
        stop_server(server)
        shutil.rmtree(root, ignore_errors=True)
    result = {
        "benchmark": "busy_keys",
        **stamp(),
        "busy_keys": args.busy,
        "rows_per_busy_key": args.rows,
        "ordinary_keys": ORDINARY_KEYS,
        "warm_up_seconds": round(warm, 3),
        "load_generator": f"python http.client ({CLIENTS} threads)",
        "all_ordinary": ordinary_mix,
        "one_busy_client": mixed,
        "one_busy_client_while_written_to": writing,
    }
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
