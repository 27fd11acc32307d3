"""Power loss, simulated: a lake's life is recorded through a FUSE filesystem, and
the disk a power cut would leave is rebuilt at hundreds of points of it (only
what was fsync'd survives: file data at its last fsync, folder entries at the
folder's last fsync; also with unsynced lengths left as zeros). At every point
the lake must open cleanly, hold every write acknowledged before the cut, show
no row twice, and pass `steme doctor`.

Needs /dev/fuse, fusermount3 (Debian's fuse3; `make test` installs it where it
can) and mfusepy; skipped cleanly where FUSE is not available.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

import steme_lake as sl
from tests.conftest import PYTHON, REPO, child_env
from tests.powerloss.model import Disk, cut_points

pytestmark = pytest.mark.slow

CUTS_PER_SCENARIO = 250  # and every durability boundary: over 500 in all


def _fuse_missing() -> str | None:
    if not Path("/dev/fuse").exists():
        return "/dev/fuse is not available"
    if shutil.which("fusermount3") is None:
        return "fusermount3 is not installed (apt-get install fuse3)"
    if importlib.util.find_spec("mfusepy") is None:
        return "mfusepy is not installed (pip install -e '.[dev]')"
    return None


def _record(tmp: Path, scenario: str) -> tuple[Disk, list[dict[str, Any]]]:
    """Run the workload on the recording filesystem; its record and its acks."""
    if (why := _fuse_missing()) is not None:
        pytest.skip(why)
    back, mount, log, acks = tmp / "back", tmp / "mnt", tmp / "record.pkl", tmp / "acks.jsonl"
    back.mkdir()
    mount.mkdir()
    errors = tmp / "recorder.err"
    with errors.open("wb") as err:
        recorder = subprocess.Popen(
            [PYTHON, "-m", "tests.powerloss.recorder", str(back), str(mount), str(log)],
            cwd=REPO,
            env=child_env(),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        deadline = time.monotonic() + 15
        while not os.path.ismount(mount):
            if recorder.poll() is not None or time.monotonic() > deadline:
                why = errors.read_text(errors="replace").strip()[-300:]
                pytest.skip(f"FUSE cannot mount here: {why}")
            time.sleep(0.05)
        done = subprocess.run(
            [PYTHON, "-m", "tests.powerloss.workload", str(mount), str(acks), scenario],
            cwd=REPO,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    finally:
        subprocess.run(["fusermount3", "-u", str(mount)], check=False, capture_output=True)
        try:
            recorder.wait(timeout=30)
        except subprocess.TimeoutExpired:
            recorder.kill()
    record = pickle.loads(log.read_bytes())
    return Disk(record), [json.loads(line) for line in acks.read_text().splitlines()]


def _check(lake_dir: Path, acknowledged: list[str]) -> None:
    """The lake after a power cut: it opens, holds every acknowledged write, shows
    no row twice, and doctor finds nothing wrong."""
    options = sl.LakeOptions(state_index="off")
    with sl.open(lake_dir, options=options) as lake:
        have: set[str] = set()
        for table in ("assertions", "votes", "audit"):
            ids = lake.table(table).select("id").collect()["id"]
            assert ids.n_unique() == len(ids), f"rows of {table} shown twice"
            have |= set(ids)
    missing = [i for i in acknowledged if i not in have]
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:2]}"
    report = sl.doctor(lake_dir)
    assert report.ok, str(report)


@pytest.mark.parametrize("scenario", ["writes", "flush"])
def test_no_acknowledged_write_is_lost(tmp_path: Path, scenario: str) -> None:
    disk, acks = _record(tmp_path, scenario)
    marks = disk.marks()
    assert len(marks) == len(acks) > 20
    kinds = {op[0] for op in disk.ops}
    assert {"write", "fsync", "fsyncdir", "create"} <= kinds
    if scenario == "flush":  # Parquet files and manifests published, segments retired
        assert {"rename", "link", "unlink"} <= kinds
    points = cut_points(disk, CUTS_PER_SCENARIO)
    assert len(points) >= CUTS_PER_SCENARIO
    failures: list[str] = []
    for k in points:
        acknowledged = [i for a in acks if marks[a["mark"]] < k for i in a["ids"]]
        for zero_fill in (False, True):
            where = tmp_path / f"cut-{k}-{int(zero_fill)}"
            disk.cut(k, where, zero_fill=zero_fill)
            lake_dir = where / "lake"
            if not acknowledged and not (lake_dir / "steme_lake.json").exists():
                continue  # cut before the lake existed durably, with nothing promised
            try:
                _check(lake_dir, acknowledged)
            except (AssertionError, sl.StemeLakeError) as exc:
                failures.append(f"cut after operation {k} (zeros: {zero_fill}): {exc}")
            shutil.rmtree(where)
    assert not failures, f"{len(failures)} of {2 * len(points)} cuts failed:\n" + "\n".join(
        failures[:5]
    )
