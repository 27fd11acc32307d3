"""The Dojo export's pass one as tasks on an engine (`steme_lake.engine`).

A first task reads the question times from the audit log and cuts the window
into time slices (an equal share of the questions per task, at most
`SLICE_QUESTIONS` each). Each slice is then one task: it reads the lake itself
(a `PinnedView`), mines the slice's events, renders them in chunks and gives
back the rows and their index rows. The driver numbers the samples on in
slice order, spills them, and runs the same hygiene and pass two as the
single-process export, so the files are the same bytes (Parquet row groups
do not depend on where the chunks were cut: `steme_lake.dojo._export`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from steme_lake.dojo._hygiene import Hygiene
from steme_lake.dojo._mine import MineOptions
from steme_lake.dojo._pipeline import (
    CHUNK_ROWS,
    SLICE_QUESTIONS,
    Gathered,
    Prepared,
    render_slice,
    slice_bounds,
)
from steme_lake.engine import Engine, PinnedView, pin
from steme_lake.engine._engines import progress_bar
from steme_lake.query._paths import subject_matcher

if TYPE_CHECKING:
    from steme_lake.lake import Lake

__all__ = ["prepare_on"]

Bounds = tuple[int | None, int | None]


@dataclass(frozen=True, slots=True)
class _Job:
    """What every task of one export is given (once)."""

    view: PinnedView
    kinds: tuple[str, ...]
    since: int | None
    until: int | None
    subject: str | None  # the pattern: a task makes its own matcher
    as_of: int
    options: MineOptions
    hygiene: Hygiene
    chunk_rows: int
    most: int  # questions per slice at most


def _slices(job: _Job, parts: int) -> list[Bounds]:
    return slice_bounds(
        job.view.audit(), since=job.since, until=job.until,
        subject=subject_matcher(job.subject), as_of=job.as_of, parts=parts, most=job.most,
    )  # fmt: skip


def _render(job: _Job, bounds: Bounds) -> tuple[int, list[tuple[pl.DataFrame, pl.DataFrame]]]:
    view = job.view
    return render_slice(
        view.tables(), view.audit(), bounds, kinds=job.kinds, since=job.since,
        until=job.until, subject=subject_matcher(job.subject), as_of=job.as_of,
        options=job.options, hygiene=job.hygiene, chunk_rows=job.chunk_rows,
    )  # fmt: skip


def prepare_on(
    engine: Engine,
    lake: Lake,
    *,
    kinds: tuple[str, ...],
    since: int | None,
    until: int | None,
    subject: str | None,
    as_of: int,
    options: MineOptions,
    hygiene: Hygiene,
    spill: Path | None,
    progress: Callable[[int], None] | None = None,
    chunk_rows: int = CHUNK_ROWS,
    most: int = SLICE_QUESTIONS,
) -> Prepared:
    """Pass one on ``engine``: the `Prepared` that `steme_lake.dojo._pipeline.prepare`
    gives for the same lake and parameters."""
    job = _Job(
        view=pin(lake), kinds=kinds, since=since, until=until, subject=subject, as_of=as_of,
        options=options, hygiene=hygiene, chunk_rows=chunk_rows, most=most,
    )  # fmt: skip
    (bounds,) = engine.imap(_slices, job, [engine.tasks()], label="Dojo slices")
    gathered = Gathered(spill, progress)
    offset = 0
    for events, chunks in engine.imap(
        _render, job, bounds, label="Dojo export", progress=progress_bar("Dojo slices")
    ):
        for rows, index in chunks:
            gathered.add(rows, index, offset=offset)
        offset += events
        del chunks
    return gathered.finish(hygiene)
