"""`steme serve` on a lake on S3: signed writes land in the bucket, questions are audited."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import steme_lake as sl
from steme_lake.client import Client
from steme_lake.keys import AgentRegistry
from tests._seaweed import KEY, SECRET, SeaweedFS
from tests.api._server import Server
from tests.conftest import JWT_EVENTS, PYTHON, child_env


def test_a_server_serves_a_lake_on_s3(s3: SeaweedFS, url: str, tmp_path: Path) -> None:
    wal = tmp_path / "wal"
    with sl.open(url, storage_options=s3.options(), wal=wal) as lake:
        lake.import_events(JWT_EVENTS)
    agent_key = sl.AgentKey.generate()
    AgentRegistry(wal).register("research-agent", agent_key.public_key)
    store = [
        "--storage-option", f"endpoint_url={s3.endpoint}",
        "--storage-option", f"key={KEY}",
        "--storage-option", f"secret={SECRET}",
        "--storage-option", 'client_kwargs={"region_name": "us-east-1"}',
    ]  # fmt: skip
    server = Server(url, *store, "--wal", str(wal))  # type: ignore[arg-type]
    try:
        with Client(server.url, "research-agent", key=agent_key) as client:
            answer = client.query("auth/jwt", "signing_algorithm", lifecycle="approved")
            assert answer["value"] == "RS256"
            new = client.assert_("svc/x", "owner", "sre", source="https://wiki/owners")
    finally:
        server.stop(signal.SIGTERM)
    reader = sl.open(url, storage_options=s3.options(), read_only=True)
    try:  # the server flushed at shutdown: the write and the question are on the bucket
        assert reader.get(new).agent == "research-agent"
        assert reader.audit.collect()["agent"].to_list().count("research-agent") == 1
    finally:
        reader.close()


def test_a_server_on_s3_needs_a_wal_folder(s3: SeaweedFS, url: str) -> None:
    done = subprocess.run(
        [PYTHON, "-m", "steme_lake", "serve", "--lake", url,
         "--storage-option", f"endpoint_url={s3.endpoint}"],
        capture_output=True, text=True, env=child_env(), timeout=60,
    )  # fmt: skip
    assert done.returncode != 0 and "pass --wal DIR" in done.stderr
