"""``steme import`` and ``steme flush`` draw progress bars on a terminal (a real
pseudo-terminal here), and nothing but their answer into a pipe or ``--json``."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import termios
from pathlib import Path

import steme_lake as sl
from tests.conftest import JWT_EVENTS, PYTHON, child_env


def _on_a_terminal(*args: str) -> str:
    """Run ``steme args`` with a 100-column terminal as its stdout and stderr."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: its terminal is the pty
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        os.execve(PYTHON, [PYTHON, "-m", "steme_lake", *args], child_env())
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, b"".join(chunks)[-2000:]
    return b"".join(chunks).decode(errors="replace").replace("\r", "\n")


def test_import_and_flush_draw_bars_on_a_terminal(lake_path: Path) -> None:
    sl.open(lake_path).close()
    out = _on_a_terminal("import", "--lake", str(lake_path), str(JWT_EVENTS))
    assert "import: commit" in out and "%|" in out and "records" in out  # a tqdm bar
    with sl.open(lake_path) as writer:  # another process's tail, not yet flushed
        for i in range(50):
            writer.assert_("a/b", "p", i, agent="x", source="s")
        out = _on_a_terminal("flush", "--lake", str(lake_path))
    assert "flush: flush" in out and "rows" in out and "%|" in out


def test_no_bar_in_json_or_a_pipe(lake_path: Path) -> None:
    sl.open(lake_path).close()
    run = subprocess.run(
        [PYTHON, "-m", "steme_lake", "import", "--lake", str(lake_path), str(JWT_EVENTS),
         "--json"], capture_output=True, text=True, timeout=120, env=child_env(),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["assert"] > 0
    assert "%|" not in run.stderr and "%|" not in run.stdout
    writer = sl.open(lake_path)  # a tail for the flush below
    writer.assert_("a/b", "p", 1, agent="x", source="s")
    out = _on_a_terminal("flush", "--lake", str(lake_path), "--json")
    writer.close()
    assert "%|" not in out and json.loads(out[out.index("{") :])["flushed_frames"] > 0
