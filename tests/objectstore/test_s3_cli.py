"""`steme` on a lake on S3: the same commands, with --storage-option, --wal, --read-only."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests._seaweed import KEY, SECRET, SeaweedFS
from tests.conftest import JWT_EVENTS, PYTHON, child_env


def _steme(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "steme_lake", *args],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )


def test_the_cli_writes_and_reads_a_lake_on_s3(s3: SeaweedFS, url: str, tmp_path: Path) -> None:
    store = [
        "--storage-option", f"endpoint_url={s3.endpoint}",
        "--storage-option", f"key={KEY}",
        "--storage-option", f"secret={SECRET}",
        "--storage-option", '{"region_name": "us-east-1"}'.join(["client_kwargs=", ""]),
    ]  # fmt: skip
    wal = ["--wal", str(tmp_path / "wal")]
    done = _steme("import", str(JWT_EVENTS), "--lake", url, *store, *wal)
    assert done.returncode == 0, done.stderr
    done = _steme("flush", "--lake", url, *store, *wal)
    assert done.returncode == 0, done.stderr
    done = _steme(
        "blame", "auth/jwt", "signing_algorithm", "--as-of", "2026-01-15T21:00:00Z",
        "--lake", url, *store, "--read-only", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["answer"]["value"] == "ES256"
    done = _steme("status", "--lake", url, *store, "--read-only", "--json")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["path"] == url and status["tables"]["assertions"]["files"] >= 1


def test_the_cli_names_what_is_wrong(s3: SeaweedFS, url: str, tmp_path: Path) -> None:
    done = _steme("status", "--lake", url, "--storage-option", "endpoint_url")
    assert done.returncode != 0 and "is not KEY=VALUE" in done.stderr
    done = _steme("status", "--lake", url, "--storage-option", f"endpoint_url={s3.endpoint}")
    assert done.returncode != 0 and "wal='./wal'" in done.stderr
    done = _steme("status", "--lake", str(tmp_path / "local"), "--read-only")
    assert done.returncode != 0 and "for a lake on object storage" in done.stderr
    done = _steme("status", "--lake", url, "--wall", "x")
    assert done.returncode != 0 and "did you mean '--wal'" in done.stderr
    done = _steme("doctor", "--lake", url)
    assert done.returncode != 0 and "works on a local lake folder" in done.stderr
