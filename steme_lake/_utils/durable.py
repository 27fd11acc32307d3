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

__all__ = ["fsync_dir", "makedirs_durable", "makedirs_durable_many"]


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


def makedirs_durable_many(paths: list[Path], fsync: Callable[[int], None] = os.fsync) -> None:
    """`makedirs_durable` for many folders, each parent fsync'd once however many
    of its new children were made (a flush of a thousand days adds a thousand
    ``date=`` folders to one table folder: one fsync of it, not a thousand)."""
    missing: set[Path] = set()
    for path in paths:
        current = path
        while current not in missing and not current.is_dir():
            missing.add(current)
            if current.parent == current:
                break
            current = current.parent
    made: set[Path] = set()
    for folder in sorted(missing, key=lambda p: len(p.parts)):  # parents first
        try:
            folder.mkdir()
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue  # another process made it, and made it durable
        made.add(folder)
    for parent in sorted({folder.parent for folder in made}, key=lambda p: -len(p.parts)):
        fsync_dir(parent, fsync)  # (order is free: nothing names these folders yet)
