"""``steme explore``: the explorer served by Voila as a real process on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import child_env
from tests.widgets.conftest import build_incident
from tests.widgets.test_browser import _free_port

pytestmark = pytest.mark.slow


def _steme(*args: str) -> list[str]:
    return [sys.executable, "-m", "steme_lake", *args]


def test_serves_the_explorer(tmp_path: Path) -> None:
    lake, _ = build_incident(tmp_path / "lake")
    lake.close()
    port = _free_port()
    server = subprocess.Popen(
        _steme("explore", "--lake", str(tmp_path / "lake"), "--subject", "auth/jwt",
               "--predicate", "signing_algorithm", "--as-of", "2026-01-15T20:55:00Z",
               "--port", str(port), "--json"),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=child_env(),
    )  # fmt: skip
    try:
        assert server.stdout is not None
        lines = [server.stdout.readline()]
        while lines[-1] and lines[-1].rstrip() != "}":  # the JSON object, then the server
            lines.append(server.stdout.readline())
        told = json.loads("".join(lines))
        assert told["url"] == f"http://127.0.0.1:{port}/"
        assert told["opening"]["predicate"] == "signing_algorithm"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(told["url"], timeout=60) as page:
                    body = page.read().decode()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.3)
        assert "voila" in body.lower()
    finally:
        server.terminate()
        server.wait(timeout=30)
        if server.stdout is not None:
            server.stdout.close()
    assert not _running(f"--port={port}"), "Voila outlived steme explore"


def _running(marker: str) -> list[str]:
    """Command lines of this machine's processes that contain ``marker``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        if marker in text:
            found.append(text)
    return found


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--lake", "nowhere"], "is not a steme_lake"),
        (["--lens", "recnt"], "unknown lens 'recnt'"),
        (["--as-of", "yesterday-ish"], "as_of: cannot read"),
        (["--port", "0"], "--port must be 1 to 65535"),
        (["--subjct", "auth/jwt"], "did you mean '--subject'"),
    ],
)
def test_refusals_before_serving(tmp_path: Path, args: list[str], said: str) -> None:
    lake, _ = build_incident(tmp_path / "lake")
    lake.close()
    full = ["explore", "--lake", str(tmp_path / "lake"), *args]
    done = subprocess.run(_steme(*full), capture_output=True, text=True, env=child_env(),
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode != 0
    assert said in done.stderr, done.stderr
