"""A file lock that also excludes the threads of this process.

``flock`` locks belong to an open file, not to a thread: inside one process a
second thread's ``flock`` succeeds at once, and one thread's unlock releases
the lock for all of them. `ProcessFileLock` pairs the flock with a re-entrant
thread lock, so a holder is alone both among processes and among threads.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["ProcessFileLock"]


class ProcessFileLock:
    """An exclusive lock on ``path`` for one thread of one process at a time."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        self._threads = threading.RLock()
        self._depth = 0

    @contextmanager
    def hold(self, *, wait: bool = True) -> Iterator[bool]:
        """Hold the lock; yields False (without holding it) if ``wait=False`` and it is taken."""
        if not self._threads.acquire(blocking=wait):
            yield False
            return
        try:
            if self._depth == 0:
                if self._fd is None:
                    raise ValueError(f"lock {self.path} is closed")
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
                except BlockingIOError:
                    yield False
                    return
            self._depth += 1
            try:
                yield True
            finally:
                self._depth -= 1
                if self._depth == 0 and self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def close(self) -> None:
        with self._threads:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
