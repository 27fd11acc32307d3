"""Questions first: background work waits while questions are answered.

The check of a state checkpoint (at 10M, 4.4 GB read and hashed) waits while
any question is being answered: beside it, the first impact after an open
took 6 s instead of 2.8. The warm-up of busy keys' answers waits while point
questions are asked (its Python takes the interpreter lock from theirs for up
to 5 ms at a time), not during longer ones (an impact, a snapshot): its
answers are for the point questions that follow, and under back-to-back
questions of every kind it would never run. The two run side by side (the
warm-up once ran after the check, so not at all in the 1M benchmark: its
point p99 went from 6.4 to 11 ms).

Both also give way to writes, for at most `WRITE_PATIENCE_S` at a time (a
steady stream of writes must not hold the check off for good: it gates the
next checkpoint). Single durable writes right after an open of the 1M lake
met the check: p99 80-84 ms, and 5-9 ms once they hold it off.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = ["QUIET_S", "Quiet", "asks"]

# Background work resumes after this long without a question or a write.
QUIET_S = 0.05
# ... but waits for writes no longer than this at a time (see `Quiet.wait`).
WRITE_PATIENCE_S = 1.0

F = TypeVar("F", bound=Callable[..., Any])


class Quiet:
    """Whether a question is being answered, or was in the last `QUIET_S`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active = 0
        self.last_ns = 0  # when a question last started or ended
        self.point_ns = 0  # when a point question last started
        self.write_ns = 0  # when a write last started

    @contextmanager
    def asking(self) -> Iterator[None]:
        with self._lock:
            self._active += 1
            self.last_ns = time.perf_counter_ns()
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1
                self.last_ns = time.perf_counter_ns()

    def mark(self) -> int:
        """A point question starts now (cheaper than `asking`); its start."""
        self.last_ns = self.point_ns = now = time.perf_counter_ns()
        return now

    def mark_write(self) -> None:
        """A write starts now (a plain store: the commit path takes no lock for it)."""
        self.write_ns = time.perf_counter_ns()

    def busy(self, *, points_only: bool = False) -> bool:
        now = time.perf_counter_ns()
        if points_only:
            return now - self.point_ns < QUIET_S * 1e9
        return bool(self._active) or now - self.last_ns < QUIET_S * 1e9

    def wait(self, stop: threading.Event, *, points_only: bool = False) -> bool:
        """Wait until no question is being answered (``points_only``: no point
        question was asked lately) and no write was made lately, or ``stop`` is
        set; whether to go on. Writes are waited for `WRITE_PATIENCE_S` at most:
        a steady stream of them must not hold the work off for good (the
        checkpoint's check gates the next checkpoint)."""
        started = time.perf_counter_ns()
        while not stop.is_set():
            now = time.perf_counter_ns()
            writing = now - self.write_ns < QUIET_S * 1e9
            if not (
                self.busy(points_only=points_only)
                or (writing and now - started < WRITE_PATIENCE_S * 1e9)
            ):
                break
            stop.wait(QUIET_S)
        return not stop.is_set()


def asks(method: F) -> F:
    """A lake method that answers a question: background work waits meanwhile."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self._quiet.asking():
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
