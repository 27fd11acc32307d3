"""docs/object-storage.md's recipe: another engine reads the lake with only the bucket."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import s3fs

import steme_lake as sl
from tests._seaweed import SeaweedFS
from tests.conftest import JWT_EVENTS


def test_duckdb_reads_the_live_files_from_the_newest_manifest(
    s3: SeaweedFS, url: str, tmp_path: Path
) -> None:
    with sl.open(url, storage_options=s3.options(), wal=tmp_path / "wal") as lake:
        lake.import_events(JWT_EVENTS)
        lake.flush()
        lake.compact()  # replaced files stay on the bucket for a while: a glob would double
        expected = lake.assertions.collect().height
        listed = lake.files("assertions")

    # The recipe, as documented: nothing of steme_lake, only fsspec and the manifest.
    fs = s3fs.S3FileSystem(**s3.options())
    prefix = url.removeprefix("s3://")
    newest = max(fs.ls(f"{prefix}/_manifest", refresh=True))
    manifest = json.loads(fs.cat_file(newest))
    files = [f"s3://{prefix}/{f['path']}" for f in manifest["files"] if f["table"] == "assertions"]
    con = duckdb.connect()
    con.register_filesystem(fs)
    ((count,),) = con.sql(f"select count(*) from read_parquet({files})").fetchall()
    assert count == expected
    assert sorted(files) == sorted(listed)
