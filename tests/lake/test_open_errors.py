"""Opening a lake where it cannot be one is a clear error, never an OSError trace."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import steme_lake as sl


def test_a_file_or_a_foreign_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(sl.ValidationError, match="is a file, not a lake folder"):
        sl.open(tmp_path / "file")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(sl.ValidationError, match="not a steme_lake"):
        sl.open(tmp_path / "other")


def test_a_read_only_lake_is_named_as_such(tmp_path: Path) -> None:
    """On a read-only mount (a real one: a bind mount remounted read-only in a mount
    namespace of its own), opening says what is wrong and what to do."""
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-m", "true"]).returncode != 0:
        pytest.skip("cannot make a mount namespace here (unshare -m)")
    src, ro = tmp_path / "src", tmp_path / "ro"
    ro.mkdir()
    with sl.open(src / "lake") as lake:
        lake.assert_("a/b", "p", 1, agent="x", source="s")
    script = (
        "import steme_lake as sl\n"
        "try:\n"
        f"    sl.open({str(ro / 'lake')!r})\n"
        "except sl.StemeLakeError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    (tmp_path / "try.py").write_text(script)
    shell = (
        f"mount --bind {src} {ro} && mount -o remount,ro,bind {ro} && "
        f"{sys.executable} {tmp_path / 'try.py'}"
    )
    done = subprocess.run([unshare, "-m", "sh", "-c", shell], capture_output=True, text=True)
    if "mount:" in done.stderr:
        pytest.skip(f"cannot mount here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("StorageError"), done.stdout
    assert "is read-only" in done.stdout and "copy the folder" in done.stdout
