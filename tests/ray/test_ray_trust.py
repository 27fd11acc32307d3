"""TrustRank on a local Ray cluster, its tasks reading the lake's Parquet from a real
S3 server themselves: the scores equal the single-process engine's bit for bit."""

from __future__ import annotations

import itertools
import json
import subprocess
from pathlib import Path

import polars as pl
import pytest
import s3fs

import steme_lake as sl
from tests._seaweed import SeaweedFS
from tests.conftest import PYTHON, child_env
from tests.engine._lakes import fill, random_lake
from tests.ray.conftest import BUCKET, cli_lake

_names = itertools.count()


@pytest.fixture
def url(s3: SeaweedFS) -> str:
    return f"s3://{BUCKET}/ray-{next(_names)}"


def _ranked(lake: sl.Lake, **kw: object) -> pl.DataFrame:
    return lake.trust.run(as_of=lake.status().last_time, store=False, constraints=False, **kw)


def test_on_s3_the_cluster_gives_the_same_scores(
    s3: SeaweedFS, url: str, ray_address: str, tmp_path: Path
) -> None:
    lake = sl.open(url, storage_options=s3.options(), wal=tmp_path / "wal")
    fill(lake, 11, events=400, flush_every=90)  # files on S3, and a tail in the WAL
    assert lake.status().tables["votes"]["rows"] > 0
    plain = _ranked(lake)
    on_ray = _ranked(lake, engine="ray")
    assert on_ray.equals(plain)
    assert set(on_ray["topic"]) >= {"", "auth", "db"}
    # Stored from the driver, as a plain run stores them: a plain run after it stores nothing.
    lake.trust.run(engine="ray")
    records = lake.trust.records.collect().height
    assert records > 0
    lake.trust.run()
    assert lake.trust.records.collect().height == records
    lake.close()


def test_a_reader_with_only_the_bucket_leaves_the_reading_to_the_workers(
    s3: SeaweedFS, url: str, ray_address: str, tmp_path: Path
) -> None:
    writer = sl.open(url, storage_options=s3.options(), wal=tmp_path / "wal")
    fill(writer, 5, events=300)
    writer.flush()
    expected = _ranked(writer)
    stamp = writer.status().last_time
    writer.close()
    # (no state index: it would read the lake in the background, for point questions)
    batch = sl.LakeOptions(state_index="off")
    reader = sl.open(url, storage_options=s3.options(reader=True), read_only=True, options=batch)
    on_ray = reader.trust.run(as_of=stamp, store=False, constraints=False, engine="ray")
    assert on_ray.equals(expected)
    # The driver downloaded none of the evidence: the tasks read it from S3 themselves.
    cached = [p.as_posix() for p in (reader.path / "cache").rglob("*.parquet")]
    assert not [p for p in cached if "/tables/votes/" in p or "/tables/assertions/" in p], cached
    reader.close()


def test_a_local_lake_on_the_cluster(ray_address: str, tmp_path: Path) -> None:
    lake = random_lake(tmp_path / "lake", 23, events=300, flush_every=70)
    assert _ranked(lake, engine="ray").equals(_ranked(lake))
    lake.close()


def test_a_file_gone_from_the_bucket_is_the_task_s_error_as_it_would_be_here(
    s3: SeaweedFS, url: str, ray_address: str, tmp_path: Path
) -> None:
    lake = sl.open(url, storage_options=s3.options(), wal=tmp_path / "wal")
    fill(lake, 2, events=120)
    lake.flush()
    lake.close()
    store = s3fs.S3FileSystem(**s3.options())
    (gone,) = [k for k in store.find(url) if "/tables/votes/" in k and k.endswith(".parquet")]
    store.rm(gone)
    reader = sl.open(url, storage_options=s3.options(reader=True), read_only=True)
    with pytest.raises(sl.StorageCorruptError, match="votes"):
        reader.trust.run(store=False, constraints=False, engine="ray")
    reader.close()


def test_the_cli(s3: SeaweedFS, url: str, ray_address: str, tmp_path: Path) -> None:
    lake = sl.open(url, storage_options=s3.options(), wal=tmp_path / "wal")
    fill(lake, 8, events=200)
    lake.flush()
    stamp = lake.status().last_time
    expected = _ranked(lake)
    lake.close()
    where = cli_lake(s3, url, tmp_path / "wal")
    ray = ["--engine", "ray", "--ray-address", ray_address]

    def steme(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PYTHON, "-m", "steme_lake", *args], capture_output=True, text=True,
            env=child_env(), timeout=300,
        )  # fmt: skip

    ran = steme("trust", "run", *where, *ray, "--as-of", stamp, "--no-store", "--json")
    assert ran.returncode == 0, ran.stderr
    rows = json.loads(ran.stdout)["scores"]
    assert [(r["topic"], r["agent"], r["score"]) for r in rows] == list(
        expected.select("topic", "agent", "score").iter_rows()
    )
    garden = steme("garden", *where, *ray, "--json")
    assert garden.returncode == 0, garden.stderr
    assert json.loads(garden.stdout)["scores"] == expected.height
    follow = steme("garden", *where, *ray, "--follow")
    assert follow.returncode != 0 and "--follow" in follow.stderr


def test_another_cluster_s_address_is_refused(ray_address: str, tmp_path: Path) -> None:
    lake = random_lake(tmp_path / "lake", 1, events=40)
    host, port = ray_address.rsplit(":", 1)
    with pytest.raises(sl.ValidationError, match=r"connected to the Ray cluster at"):
        lake.trust.run(store=False, engine="ray", address=f"{host}:{int(port) + 1}")
    assert lake.trust.run(store=False, engine="ray", address=ray_address).height > 0
    lake.close()
