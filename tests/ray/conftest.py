"""A local Ray cluster (a head node and a worker node, both on 127.0.0.1) and a real
S3 server (SeaweedFS), for the engine tests; no mocks.

These tests run in a network namespace of their own, with only loopback up:
``make test`` runs them as ``python tests/_netns.py pytest tests/ray``. Ray binds
every interface of a machine and probes a public DNS server for its address;
in that namespace it sees only 127.0.0.1. Run anywhere else, they skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._netns import stop_ray_here
from tests._seaweed import KEY, SECRET, SeaweedFS

BUCKET = "lakes"
RAY = Path(sys.executable).parent / "ray"
NODE = [
    "--node-ip-address=127.0.0.1",
    "--num-cpus=1",
    "--object-store-memory=400000000",
    "--disable-usage-stats",
]


def cli_lake(s3: SeaweedFS, url: str, wal: Path) -> list[str]:
    """The `steme` options that open the lake at ``url`` on ``s3`` as its writer."""
    return [
        "--lake", url, "--wal", str(wal),
        "--storage-option", f"endpoint_url={s3.endpoint}",
        "--storage-option", f"key={KEY}", "--storage-option", f"secret={SECRET}",
    ]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ray(*args: str, env: dict[str, str]) -> None:
    done = subprocess.run([str(RAY), *args], env=env, capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        raise RuntimeError(f"ray {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    """``ray start --head`` and one more ``ray start`` (a worker node), one CPU each;
    this process is connected to it as the driver."""
    if os.environ.get("STEME_NETNS") != "1":
        pytest.skip(
            "the Ray tests run in a network namespace of their own (loopback only): "
            "make test runs them; by hand: python tests/_netns.py "
            f"{sys.executable} -m pytest tests/ray"
        )
    ray = pytest.importorskip("ray")
    temp = tempfile.mkdtemp(prefix="sr-", dir="/tmp")  # short: Ray's socket paths
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    port = _free_port()
    address = f"127.0.0.1:{port}"
    _ray("start", "--head", f"--port={port}", "--include-dashboard=false",
         f"--temp-dir={temp}", *NODE, env=env)  # fmt: skip
    try:
        _ray("start", f"--address={address}", *NODE, env=env)
        ray.init(address=address, _node_ip_address="127.0.0.1", log_to_driver=False)
        deadline = time.monotonic() + 60
        while sum(n["Alive"] for n in ray.nodes()) < 2:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker node did not join: {ray.nodes()}")
            time.sleep(0.2)
        yield address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        stop_ray_here()  # this namespace's cluster only: `ray stop` would stop every one
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="session")
def s3(ray_address: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs")).start()
    server.make_bucket(BUCKET)
    yield server
    server.stop()
