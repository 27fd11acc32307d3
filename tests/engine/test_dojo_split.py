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


@pytest.mark.parametrize(("seed", "tasks", "flush"), [(7, 3, True), (8, 5, False)])
def test_sliced_export_is_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, tasks: int, flush: bool
) -> None:
    # small chunks, so that the slices cut them elsewhere than the plain run does
    monkeypatch.setattr(_pipeline, "CHUNK_ROWS", 300)
    lake = sl.open(tmp_path / "lake")
    generate.generate(lake, generate.Plan(assertions=1500, hours=24, seed=seed))
    if flush:
        lake.flush()
    plain = lake.dojo.export(tmp_path / "plain", openai=True, shard_rows=700).collect()
    slices: list[object] = []
    render = _distributed.render_slice
    monkeypatch.setattr(
        _distributed, "render_slice", lambda *a, **k: slices.append(a[2]) or render(*a, **k)
    )
    split = lake.dojo.export(
        tmp_path / "split", openai=True, shard_rows=700, engine=LocalEngine(tasks=tasks)
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
