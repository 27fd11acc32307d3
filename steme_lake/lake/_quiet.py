"""Questions first: background work (the warm-up of busy keys' answers, the
check of a state checkpoint) waits while a question is being answered.

On two cores a background thread's Python takes the interpreter lock from a
question's for up to 5 ms at a time, and its hashing takes a core from the
question's Polars threads: at 10M the first impact after an open took 6 s
instead of 2.8 while a checkpoint's 4.4 GB were hashed beside it.
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
        """A short question starts now (cheaper than `asking`); its start."""
        self.last_ns = now = time.perf_counter_ns()
        return now

    def busy(self) -> bool:
        return bool(self._active) or time.perf_counter_ns() - self.last_ns < QUIET_S * 1e9

    def wait(self, stop: threading.Event) -> bool:
        """Wait until no question is being answered (or ``stop`` is set);
        whether to go on (``stop`` not set)."""
        while not stop.is_set() and self.busy():
            stop.wait(QUIET_S)
        return not stop.is_set()


def asks(method: F) -> F:
    """A lake method that answers a question: background work waits meanwhile."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self._quiet.asking():
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
