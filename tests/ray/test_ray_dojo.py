"""The Dojo export on a local Ray cluster, its tasks reading the lake from a real S3
server: the export folder is the same bytes as the single-process export's."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

import steme_lake as sl
from steme_lake.dojo import _pipeline
from tests._seaweed import SeaweedFS
from tests.conftest import PYTHON, REPO, child_env
from tests.engine.test_dojo_split import _files
from tests.ray.conftest import BUCKET, cli_lake

sys.path.insert(0, str(REPO / "benchmarks"))
import generate

_names = itertools.count()


def test_on_s3_the_export_is_the_same_bytes(
    s3: SeaweedFS, ray_address: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # chunks smaller than a slice (the workers are given the chunk size with the job)
    monkeypatch.setattr(_pipeline, "CHUNK_ROWS", 400)
    url = f"s3://{BUCKET}/dojo-{next(_names)}"
    lake = sl.open(url, storage_options=s3.options(), wal=tmp_path / "wal")
    generate.generate(lake, generate.Plan(assertions=1500, hours=24, seed=3))
    lake.flush()
    plain = lake.dojo.export(tmp_path / "plain", openai=True, shard_rows=900).collect()
    on_ray = lake.dojo.export(tmp_path / "ray", openai=True, shard_rows=900, engine="ray")
    assert plain.height > 1000
    assert on_ray.collect().equals(plain)
    one, two = _files(tmp_path / "plain"), _files(tmp_path / "ray")
    assert one.keys() == two.keys() and [k for k in one if one[k] != two[k]] == []
    lake.close()

    where = cli_lake(s3, url, tmp_path / "wal")
    done = subprocess.run(
        [PYTHON, "-m", "steme_lake", "dojo", "export", str(tmp_path / "cli"), *where,
         "--openai", "--shard-rows", "900", "--engine", "ray", "--ray-address", ray_address,
         "--json"],
        capture_output=True, text=True, env=child_env(), timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["samples"] == plain.height
    # (the CLI's chunks are the default size: the same bytes all the same)
    cli = _files(tmp_path / "cli")
    assert cli.keys() == one.keys() and [k for k in one if one[k] != cli[k]] == []
