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
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = ["QUIET_S", "Quiet", "asks"]

# Background work resumes after this long without a question.
QUIET_S = 0.05

F = TypeVar("F", bound=Callable[..., Any])


class Quiet:
    """Whether a question is being answered, or was in the last `QUIET_S`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active = 0
        self.last_ns = 0  # when a question last started or ended
        self.point_ns = 0  # when a point question last started

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

    def busy(self, *, points_only: bool = False) -> bool:
        now = time.perf_counter_ns()
        if points_only:
            return now - self.point_ns < QUIET_S * 1e9
        return bool(self._active) or now - self.last_ns < QUIET_S * 1e9

    def wait(self, stop: threading.Event, *, points_only: bool = False) -> bool:
        """Wait until no question is being answered (``points_only``: no point
        question was asked lately), or ``stop`` is set; whether to go on."""
        while not stop.is_set() and self.busy(points_only=points_only):
            stop.wait(QUIET_S)
        return not stop.is_set()


def asks(method: F) -> F:
    """A lake method that answers a question: background work waits meanwhile."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self._quiet.asking():
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
