"""HTTP API throughput: durable single-assertion writes and audited queries, 8 clients.

Starts ``steme serve`` on 127.0.0.1 against a fresh lake, registers one agent
per client, pre-signs every request body (so the load generator measures the
server, not the client's signing), then sends them over 8 keep-alive
connections.

The load generator is wrk (C, ``apt install wrk``; ``wrk_bodies.lua`` feeds it
the pre-signed bodies) when it is installed: on a 2-core machine a load
generator written in Python takes a core's share from the server it measures.
Without wrk (or with ``--loadgen python``) it is 8 threads of ``http.client``.

    python benchmarks/http_bench.py [--seconds 10] [--workers 1] [--loadgen auto|wrk|python]
                                    [--clients 8] [--batch-wait-ms 1.0]
                                    [--out FILE.json]

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
WRK_THREADS = 2  # one per core of the machine the targets are set for
LUA = Path(__file__).resolve().parent / "wrk_bodies.lua"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(lake_path: Path, port: int, *flags: str) -> subprocess.Popen[bytes]:
    """``steme serve`` on 127.0.0.1:``port`` over ``lake_path``, answering ``/health``."""
    command = [sys.executable, "-m", "steme_lake", "serve", "--lake", str(lake_path)]
    server = subprocess.Popen(
        [*command, "--port", str(port), *flags],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    for _ in range(600):
        if server.poll() is not None:
            raise SystemExit(f"the server exited: {server.communicate()[1].decode()}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.1)
        finally:
            conn.close()
    stop_server(server)
    raise SystemExit("the server did not start in 60 s")


def stamp() -> dict[str, Any]:
    """When and where a result was measured."""
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
    }


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.send_signal(signal.SIGTERM)
    server.communicate(timeout=60)


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
                conn.request("GET", path + "?" + body.decode())
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


def _run_wrk(
    port: int, lines: list[list[bytes]], path: str, method: str, seconds: float, work: Path
) -> dict[str, Any]:
    """The same load from wrk: ``lines[n]`` are client n's bodies (query strings
    for GET); wrk thread t sends those of clients t, t + WRK_THREADS, ...
    interleaved, over its share of the 8 connections."""
    prefix = work / f"{method}-{path.strip('/').replace('/', '-')}"
    for t in range(WRK_THREADS):
        mine = lines[t::WRK_THREADS]
        interleaved = [b for group in zip(*mine, strict=True) for b in group]
        Path(f"{prefix}-{t}.txt").write_bytes(b"\n".join(interleaved) + b"\n")
    out = subprocess.run(
        [
            "wrk",
            f"-t{WRK_THREADS}",
            f"-c{len(lines)}",
            f"-d{max(1, round(seconds))}s",
            "-s",
            str(LUA),
            f"http://127.0.0.1:{port}{path}",
            "--",
            str(prefix),
            method,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    found = json.loads([line for line in out.stdout.splitlines() if line.startswith("{")][-1])
    if found["reused_bodies"]:
        raise SystemExit(f"wrk ran out of pre-signed bodies on {path}: pre-sign more")
    return {
        "requests": found["requests"],
        "errors": found["errors"] + found["socket_errors"],
        "seconds": round(found["seconds"], 3),
        "per_second": round(found["requests"] / found["seconds"], 1),
        **{k: found[k] for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")},
    }


def _wrk_version() -> str | None:
    if shutil.which("wrk") is None:
        return None
    out = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    return (out.stdout or out.stderr).split(" [")[0].strip() or "wrk"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument(
        "--batch-wait-ms",
        dest="batch_wait_ms",
        default="1.0",
        help="passed to steme serve (0 turns the server's batch wait off)",
    )
    parser.add_argument(
        "--clients",
        type=int,
        default=CLIENTS,
        help=f"concurrent clients (default {CLIENTS}, the count the targets are set for)",
    )
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 256:
        parser.error(f"--clients {args.clients}: give 1 to 256")
    clients = args.clients
    wrk = _wrk_version()
    if args.loadgen == "wrk" and wrk is None:
        raise SystemExit("--loadgen wrk: wrk is not installed (apt install wrk)")
    use_wrk = wrk is not None and args.loadgen != "python"

    root = Path(tempfile.mkdtemp(prefix="steme-http-bench-"))
    lake_path = root / "lake"
    sl.open(lake_path).close()
    registry = AgentRegistry(lake_path)
    keys = [sl.AgentKey.generate() for _ in range(clients)]
    for n, key in enumerate(keys):
        registry.register(f"agent-{n}", key.public_key)
    # More than the clients can send in time (about 600 requests/s per client).
    per_client = int(args.seconds * 1500) + 200
    print(f"pre-signing {per_client * clients} write bodies...", file=sys.stderr)
    bodies = [_bodies(k, f"agent-{n}", per_client, n) for n, k in enumerate(keys)]

    port = _port()
    server = start_server(
        lake_path,
        port,
        "--workers",
        str(args.workers),
        "--batch-wait-ms",
        args.batch_wait_ms,
    )
    try:

        def run(lines: list[list[bytes]], path: str, method: str) -> dict[str, Any]:
            if use_wrk:
                return _run_wrk(port, lines, path, method, args.seconds, root)
            return _run(port, lines, path, method, args.seconds)

        writes = run(bodies, "/assert", "POST")
        print(f"writes: {writes}", file=sys.stderr)
        queries_params = [
            [
                f"subject=svc/{n}/{i % 500}/auth/jwt&predicate=signing_algorithm"
                f"&agent=agent-{n}".encode()
                for i in range(per_client)
            ]
            for n in range(clients)
        ]
        queries = run(queries_params, "/query", "GET")
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
            for n in range(clients)
        ]
        posted = run(queries_bodies, "/query", "POST")
        print(f"queries (POST): {posted}", file=sys.stderr)
    finally:
        stop_server(server)
        shutil.rmtree(root, ignore_errors=True)
    result = {
        "benchmark": "http",
        **stamp(),
        "clients": clients,
        "server_workers": args.workers,
        "server_batch_wait_ms": float(args.batch_wait_ms),
        "load_generator": (
            f"{wrk} ({WRK_THREADS} threads, {clients} connections)"
            if use_wrk
            else f"python http.client ({clients} threads)"
        ),
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
