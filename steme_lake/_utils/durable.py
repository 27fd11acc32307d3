"""Folders that survive a power cut.

``mkdir`` changes the parent folder; like any change to a folder, it is on disk
only once the parent is fsync'd. A file fsync'd inside a folder that was not is
lost with the folder after a power cut (POSIX promises no more; some
filesystems give more, none is relied on here).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["fsync_dir", "makedirs_durable"]


def fsync_dir(path: Path, fsync: Callable[[int], None] = os.fsync) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        fsync(fd)
    finally:
        os.close(fd)


def makedirs_durable(path: Path, fsync: Callable[[int], None] = os.fsync) -> None:
    """Create ``path`` and its missing parents; each new folder's parent is fsync'd
    after it is created. Nothing is done (or fsync'd) for folders that exist."""
    missing: list[Path] = []
    current = path
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue  # another process made it, and made it durable
        fsync_dir(folder.parent, fsync)
