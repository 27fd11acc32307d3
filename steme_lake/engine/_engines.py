"""Where a batch job's tasks run: in this process, or on a Ray cluster.

A job (TrustRank over every topic, a Dojo export) is split by its own code into
tasks that each read the lake themselves through a `PinnedView`; an engine only
runs ``fn(shared, item)`` for every item and gives the results back in order.
The driver then finishes the job (and, for a writer, stores what it found), so
a job's answer never depends on the engine that ran its tasks.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import os
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

from steme_lake._exceptions import (
    EngineError,
    MissingExtraError,
    StemeLakeError,
    ValidationError,
)

__all__ = ["ENGINES", "Engine", "LocalEngine", "RayEngine", "engine_for"]

ENGINES = ("local", "ray")

S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")


class Engine(Protocol):
    """Runs a job's tasks: ``fn(shared, item)`` for each item, results in item order.

    ``fn`` must be a module-level function (a Ray worker imports it by name), and
    ``shared`` and the items picklable; ``shared`` is sent to the cluster once."""

    name: str

    def tasks(self) -> int:
        """How many tasks a job should be split into to keep every worker busy."""

    def imap(
        self,
        fn: Callable[[S, T], R],
        shared: S,
        items: Sequence[T],
        *,
        label: str,
        progress: Callable[[int, int], None] | None = None,
    ) -> Iterator[R]:
        """The results one at a time, in item order (each can be let go before the next)."""


class LocalEngine:
    """The tasks one after another in this process: the distributed split, run
    where it can be stepped through (``tasks``: how many to split a job into)."""

    name = "local"

    def __init__(self, tasks: int = 1) -> None:
        if isinstance(tasks, bool) or not isinstance(tasks, int) or not 1 <= tasks <= 4096:
            raise ValidationError(f"tasks must be an integer from 1 to 4096, got {tasks!r}")
        self._tasks = tasks

    def tasks(self) -> int:
        return self._tasks

    def imap(
        self,
        fn: Callable[[S, T], R],
        shared: S,
        items: Sequence[T],
        *,
        label: str,
        progress: Callable[[int, int], None] | None = None,
    ) -> Iterator[R]:
        for done, item in enumerate(items, 1):
            yield fn(shared, item)
            if progress is not None:
                progress(done, len(items))

    def __repr__(self) -> str:
        return f"LocalEngine(tasks={self._tasks})"


class RayEngine:
    """The tasks on a Ray cluster, each reading the lake's files itself.

    Parameters
    ----------
    address
        The cluster (``127.0.0.1:6379``, ``ray://host:10001``); None: ``RAY_ADDRESS``,
        else Ray's default (a running local cluster, or a new one in this process).
    tasks_per_cpu
        Tasks per CPU of the cluster (1). More even out uneven tasks, but each
        TrustRank task scans the whole votes table for its share's votes: at 1M
        votes on two workers, 2 per CPU took 1.2 times as long as 1
        (`benchmarks/README.md`, TrustRank on Ray).
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, tasks_per_cpu: int = 1) -> None:
        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise ValidationError(
                f"address must be a Ray address such as 127.0.0.1:6379, got {address!r}"
            )
        if (
            isinstance(tasks_per_cpu, bool)
            or not isinstance(tasks_per_cpu, int)
            or not 1 <= tasks_per_cpu <= 64
        ):
            raise ValidationError(
                f"tasks_per_cpu must be an integer from 1 to 64, got {tasks_per_cpu!r}"
            )
        self.address = address
        self.tasks_per_cpu = tasks_per_cpu
        self._remote: dict[Any, Any] = {}

    def _ray(self) -> Any:
        try:
            import ray
        except ImportError:
            raise MissingExtraError(
                "engine='ray' needs Ray; install the ray extra: pip install 'steme_lake[ray]'"
            ) from None
        if not ray.is_initialized():
            address = self.address or os.environ.get("RAY_ADDRESS") or None
            if address is not None:
                _check_reachable(address)
            # A cluster this process starts itself sends no usage statistics.
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            try:
                ray.init(
                    address=address,
                    logging_level=logging.WARNING,
                    log_to_driver=False,
                    configure_logging=True,
                )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = address or "the local machine (RAY_ADDRESS is not set)"
                raise EngineError(
                    f"could not reach a Ray cluster at {where}: {exc}. Start one with "
                    "`ray start --head`, or give its address (address=, --ray-address, "
                    "or RAY_ADDRESS)"
                ) from None
        elif self.address is not None and "://" not in self.address:
            connected = str(ray.get_runtime_context().gcs_address)
            if connected.rsplit(":", 1)[-1] != self.address.rsplit(":", 1)[-1]:
                raise ValidationError(
                    f"this process is connected to the Ray cluster at {connected}, not "
                    f"{self.address}; leave the address out to use it, or call "
                    "ray.shutdown() first"
                )
        return ray

    def tasks(self) -> int:
        ray = self._ray()
        cpus = int(ray.cluster_resources().get("CPU", 1) or 1)
        return max(1, cpus * self.tasks_per_cpu)

    def imap(
        self,
        fn: Callable[[S, T], R],
        shared: S,
        items: Sequence[T],
        *,
        label: str,
        progress: Callable[[int, int], None] | None = None,
    ) -> Iterator[R]:
        ray = self._ray()
        remote = self._remote.get(fn)
        if remote is None:
            # SPREAD: the tasks go to every node, not packed onto the first; a task
            # whose worker dies is run again (its work is read-only).
            # One CPU a task, as Ray counts them: Polars in the task uses one thread
            # (else every task of a node would start a thread per core of the node).
            remote = self._remote[fn] = ray.remote(fn).options(
                scheduling_strategy="SPREAD",
                max_retries=2,
                num_cpus=1,
                runtime_env={"env_vars": {"POLARS_MAX_THREADS": "1"}},
            )
        shared_ref = ray.put(shared)
        pending = [remote.remote(shared_ref, item) for item in items]
        total = len(pending)
        try:
            while pending:
                result = ray.get(pending[0])
                pending.pop(0)  # (the driver's reference goes: Ray may free the result)
                if progress is not None:
                    progress(total - len(pending), total)
                yield result
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, StemeLakeError):
                raise cause from None  # the job's own refusal, as the local engine gives it
            raise EngineError(
                f"{label}: a task failed on the Ray cluster: {cause or exc}"
            ) from None
        except ray.exceptions.RayError as exc:
            raise EngineError(
                f"{label}: the Ray cluster lost a task ({type(exc).__name__}: {exc}); "
                "nothing was stored, run it again"
            ) from None
        finally:
            _cancel(ray, pending)  # a caller that stopped early leaves nothing running

    def __repr__(self) -> str:
        return f"RayEngine(address={self.address!r})"


def _check_reachable(address: str) -> None:
    """Refuse at once an address nothing answers at (Ray itself retries for minutes)."""
    where = address.split("://", 1)[-1]
    if where in ("auto", "local"):
        return
    host, _, port = where.rpartition(":")
    if not host or not port.isdigit():
        raise ValidationError(
            f"Ray address {address!r} is not host:port (such as 127.0.0.1:6379, or "
            "ray://host:10001 for Ray Client)"
        )
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=5):
            pass
    except OSError as exc:
        raise EngineError(
            f"could not reach a Ray cluster at {address} ({exc.strerror or exc}). Start one "
            "with `ray start --head`, or give its address (address=, --ray-address, or "
            "RAY_ADDRESS)"
        ) from None


def _cancel(ray: Any, refs: list[Any]) -> None:
    for ref in refs:
        with contextlib.suppress(Exception):  # best effort: the job has already failed
            ray.cancel(ref, force=True)


def engine_for(engine: str | Engine | None, *, address: str | None = None) -> Engine | None:
    """An engine from its name (``"local"``/None: None, the plain single-process path;
    ``"ray"``) or an `Engine` as it is."""
    if engine is None or engine == "local":
        if address is not None:
            raise ValidationError(
                "a Ray address was given but the engine is local; add engine='ray'"
            )
        return None
    if engine == "ray":
        return RayEngine(address)
    if isinstance(engine, str):
        close = difflib.get_close_matches(engine, ENGINES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValidationError(f"unknown engine {engine!r}{hint} (engines: {', '.join(ENGINES)})")
    if not callable(getattr(engine, "imap", None)) or not callable(getattr(engine, "tasks", None)):
        raise ValidationError(
            f"engine must be 'local', 'ray' or an Engine (LocalEngine, RayEngine), got {engine!r}"
        )
    return engine


def progress_bar(label: str) -> Callable[[int, int], None] | None:
    """A tqdm bar of tasks done, on a terminal."""
    if not sys.stderr.isatty():
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    bar: Any = None

    def tick(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=label, unit="task", leave=False)
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return tick
