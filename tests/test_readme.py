"""The README is a test: every Python and shell block runs, in order, as written.

The blocks run in a fresh folder holding only a link to the repository's
``datasets/`` (a user runs them from a clone), the Python blocks in one
namespace (the way a person pastes them into one session), the shell blocks
with ``bash -e`` and the project's ``steme`` first on the PATH. A block is
left out only when the comment line right before it says
``<!-- readme-test: skip (why) -->`` (the commands that run these tests, and
servers that never return).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SKIP = re.compile(r"<!-- readme-test: skip \((.+)\) -->\s*$")


def blocks() -> list[tuple[int, str, str, str | None]]:
    """(line, language, code, why skipped) for every fenced block of README.md."""
    lines = (REPO / "README.md").read_text().splitlines()
    out = []
    i = 0
    while i < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        start = i
        j = i + 1
        while not lines[j].startswith("```"):
            j += 1
        before = next((lines[k] for k in range(start - 1, -1, -1) if lines[k].strip()), "")
        skipped = SKIP.match(before)
        language = fence.group(1) or "shell"
        out.append((start + 1, language, "\n".join(lines[i + 1 : j]), skipped and skipped[1]))
        i = j + 1
    return out


def test_every_block_runs_in_order(tmp_path: Path) -> None:
    (tmp_path / "datasets").symlink_to(REPO / "datasets")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "COLUMNS": "120",
    }
    env.pop("STEME_LAKE", None)
    namespace: dict[str, object] = {"__name__": "__readme__"}
    here = Path.cwd()
    ran = {"python": 0, "shell": 0}
    os.chdir(tmp_path)
    try:
        for line, language, code, skipped in blocks():
            if skipped:
                continue
            where = f"README.md line {line} ({language})"
            if language == "python":
                try:
                    exec(compile(code, where, "exec"), namespace)  # the README's own code
                except Exception as exc:  # noqa: BLE001  any failure of a block is the finding
                    pytest.fail(f"{where} fails as written: {type(exc).__name__}: {exc}")
            elif language == "shell":
                done = subprocess.run(
                    ["bash", "-e", "-c", code], capture_output=True, text=True, env=env,
                    timeout=300,
                )  # fmt: skip
                assert done.returncode == 0, f"{where} fails as written:\n{done.stderr[-3000:]}"
            else:
                pytest.fail(f"{where}: unknown block language {language!r}")
            ran[language] += 1
    finally:
        lake = namespace.get("lake")
        close = getattr(lake, "close", None)
        if callable(close):
            close()
        os.chdir(here)
    assert ran["python"] >= 5 and ran["shell"] >= 2, ran
