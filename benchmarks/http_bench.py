"""HTTP API throughput: durable single-assertion writes and audited queries, 8 clients.

Starts ``steme serve`` on 127.0.0.1 against a fresh lake, registers one agent
per client, pre-signs every request body (so the load generator measures the
server, not the client's signing), then runs 8 client threads over keep-alive
connections (``http.client``: the cheapest client in the standard library).

    python benchmarks/http_bench.py [--seconds 10] [--workers 1] [--out FILE.json]

Reports requests/s and latency percentiles (p50/p90/p99/max) per workload.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import steme_lake as sl
from steme_lake._utils.timeparse import now_us
from steme_lake.keys import AgentRegistry
from steme_lake.lake import _rows as rows

CLIENTS = 8


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _percentiles(samples: list[float]) -> dict[str, float]:
    data = sorted(samples)
    if not data:
        return {}

    def pick(q: float) -> float:
        return round(data[min(len(data) - 1, int(q * len(data)))] * 1000, 3)

    return {
        "p50_ms": pick(0.50),
        "p90_ms": pick(0.90),
        "p99_ms": pick(0.99),
        "max_ms": round(data[-1] * 1000, 3),
    }


def _bodies(key: sl.AgentKey, agent: str, n: int, client: int) -> list[bytes]:
    out = []
    for i in range(n):
        body = {
            "subject": f"svc/{client}/{i % 500}/auth/jwt",
            "predicate": "signing_algorithm",
            "object": f"v{i}",
            "source_hash": sl.source_hash_of(f"{client}-{i}"),
            "confidence": 0.9,
            "agent": agent,
        }
        row = rows.assertion_row(
            body["subject"],
            body["predicate"],
            body["object"],
            agent=agent,
            confidence=0.9,
            source_hash=body["source_hash"],
        )
        sig = key.sign_content(row.content_id(), now_us())
        out.append(json.dumps({**body, "signatures": [sig.as_dict()]}).encode())
    return out


def _run(
    port: int, bodies: list[list[bytes]], path: str, method: str, seconds: float
) -> dict[str, Any]:
    latencies: list[list[float]] = [[] for _ in bodies]
    errors: list[int] = [0] * len(bodies)
    stop = time.perf_counter() + seconds
    barrier = threading.Barrier(len(bodies) + 1)

    def client(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        headers = {"content-type": "application/json"}
        barrier.wait()
        for body in bodies[n]:
            if time.perf_counter() >= stop:
                break
            t = time.perf_counter()
            if method == "POST":
                conn.request("POST", path, body=body, headers=headers)
            else:
                conn.request("GET", path + body.decode())
            response = conn.getresponse()
            response.read()
            latencies[n].append(time.perf_counter() - t)
            if response.status >= 300:
                errors[n] += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(len(bodies))]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    flat = [x for lat in latencies for x in lat]
    return {
        "requests": len(flat),
        "errors": sum(errors),
        "seconds": round(elapsed, 3),
        "per_second": round(len(flat) / elapsed, 1),
        **_percentiles(flat),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="steme-http-bench-"))
    lake_path = root / "lake"
    sl.open(lake_path).close()
    registry = AgentRegistry(lake_path)
    keys = [sl.AgentKey.generate() for _ in range(CLIENTS)]
    for n, key in enumerate(keys):
        registry.register(f"agent-{n}", key.public_key)
    per_client = int(args.seconds * 1500)  # more than any client can send in time
    print(f"pre-signing {per_client * CLIENTS} write bodies...", file=sys.stderr)
    bodies = [_bodies(k, f"agent-{n}", per_client, n) for n, k in enumerate(keys)]

    port = _port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "steme_lake",
            "serve",
            "--lake",
            str(lake_path),
            "--port",
            str(port),
            "--workers",
            str(args.workers),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(600):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            try:
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
            finally:
                conn.close()
        else:
            raise SystemExit("server did not start")
        writes = _run(port, bodies, "/assert", "POST", args.seconds)
        print(f"writes: {writes}", file=sys.stderr)
        queries_params = [
            [
                f"?subject=svc/{n}/{i % 500}/auth/jwt&predicate=signing_algorithm"
                f"&agent=agent-{n}".encode()
                for i in range(per_client)
            ]
            for n in range(CLIENTS)
        ]
        queries = _run(port, queries_params, "/query", "GET", args.seconds)
        print(f"queries (GET): {queries}", file=sys.stderr)
        queries_bodies = [
            [
                json.dumps(
                    {
                        "subject": f"svc/{n}/{i % 500}/auth/jwt",
                        "predicate": "signing_algorithm",
                        "agent": f"agent-{n}",
                    }
                ).encode()
                for i in range(per_client)
            ]
            for n in range(CLIENTS)
        ]
        posted = _run(port, queries_bodies, "/query", "POST", args.seconds)
        print(f"queries (POST): {posted}", file=sys.stderr)
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=60)
        shutil.rmtree(root, ignore_errors=True)
    result = {
        "benchmark": "http",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "clients": CLIENTS,
        "server_workers": args.workers,
        "durable_writes": writes,
        "queries": queries,
        "queries_post": posted,
        "targets": {"writes_per_second": 2000, "write_p99_ms": 20, "queries_per_second": 3000},
    }
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
