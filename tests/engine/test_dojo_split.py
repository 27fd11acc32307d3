"""The Dojo export's pass one split into time-slice tasks (`LocalEngine`): the
export folder is the same bytes as the single-process export's."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import steme_lake as sl
from steme_lake.dojo import _distributed, _pipeline
from steme_lake.engine import LocalEngine
from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import generate


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize(
    ("seed", "tasks", "flush", "chunk_rows", "shard_rows"),
    [
        # small chunks, cut elsewhere by the slices than by the plain run
        (7, 3, True, 300, 700),
        # the plain run's one chunk against the slices' two, in row groups of
        # several pages (11k samples over 30 days)
        (8, 2, False, _pipeline.CHUNK_ROWS, 100_000),
    ],
)
def test_sliced_export_is_the_same_bytes(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    seed: int,
    tasks: int,
    flush: bool,
    chunk_rows: int,
    shard_rows: int,
) -> None:
    monkeypatch.setattr(_pipeline, "CHUNK_ROWS", chunk_rows)
    lake = sl.open(tmp_path / "lake")
    big = chunk_rows == _pipeline.CHUNK_ROWS
    plan = generate.Plan(assertions=3000 if big else 1500, hours=720 if big else 24, seed=seed)
    generate.generate(lake, plan)
    if flush:
        lake.flush()
    plain = lake.dojo.export(tmp_path / "plain", openai=True, shard_rows=shard_rows).collect()
    slices: list[object] = []
    render = _distributed.render_slice
    monkeypatch.setattr(
        _distributed, "render_slice", lambda *a, **k: slices.append(a[2]) or render(*a, **k)
    )
    split = lake.dojo.export(
        tmp_path / "split", openai=True, shard_rows=shard_rows, engine=LocalEngine(tasks=tasks)
    )
    assert plain.height > 1000 and plain["kind"].n_unique() >= 4
    assert split.collect().equals(plain)
    assert len(slices) == tasks  # one slice per task, each an equal share of the questions
    one, two = _files(tmp_path / "plain"), _files(tmp_path / "split")
    assert one.keys() == two.keys()
    assert [k for k in one if one[k] != two[k]] == []
    lake.close()


def test_refusals_come_before_any_work(tmp_lake: sl.Lake, tmp_path: Path) -> None:
    with pytest.raises(sl.ValidationError, match=r"did you mean 'ray'"):
        tmp_lake.dojo.export(tmp_path / "out", engine="rya")
    assert not (tmp_path / "out").exists()
