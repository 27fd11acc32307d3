"""Batch jobs beyond one process: TrustRank and the Dojo export on an engine.

``lake.trust.run(engine="ray")`` and ``lake.dojo.export(..., engine="ray")``
split their work into tasks that each read the lake's Parquet themselves
(from its folder or its object-storage prefix) through a `PinnedView`; the
driver gathers the results and finishes the job. The answer is the one the
single-process path gives, bit for bit (tested).
"""

from typing import TYPE_CHECKING, Any

from steme_lake.engine._engines import ENGINES, Engine, LocalEngine, RayEngine, engine_for

if TYPE_CHECKING:
    from steme_lake.engine._pinned import PinnedView, pin


def __getattr__(name: str) -> Any:
    # The pin reads the lake (polars, pyarrow): loaded when first used, so that
    # the CLI can name the engines without paying for it.
    if name in ("PinnedView", "pin"):
        from steme_lake.engine import _pinned

        return getattr(_pinned, name)
    raise AttributeError(f"module 'steme_lake.engine' has no attribute {name!r}")


__all__ = ["ENGINES", "Engine", "LocalEngine", "PinnedView", "RayEngine", "engine_for", "pin"]
