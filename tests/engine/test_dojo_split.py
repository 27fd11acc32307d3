"""The Dojo export's pass one split into time-slice tasks (`LocalEngine`): the
export folder is the same bytes as the single-process export's."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import steme_lake as sl
from steme_lake.dojo import _distributed
from steme_lake.engine import LocalEngine
from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import generate


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_sliced_export_is_the_same_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """11k samples over 30 days: the plain run renders them in one chunk, three slices
    in three; shards of 4,000 rows, so row groups gather rows of several chunks."""
    tasks, shard_rows = 3, 4_000
    lake = sl.open(tmp_path / "lake")
    generate.generate(lake, generate.Plan(assertions=3000, hours=720, seed=8))
    lake.flush()
    subject, predicate = lake.assertions.select("subject", "predicate").head(1).collect().row(0)
    for agent in ("late-1", "late-2"):  # questions in the WAL's tail, shipped with the job
        lake.query(subject, predicate, agent=agent)
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
