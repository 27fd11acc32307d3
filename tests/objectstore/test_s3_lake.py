"""A lake on S3 (SeaweedFS on loopback) answers exactly as the same lake on local disk."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl
import pytest
import s3fs

import steme_lake as sl
from steme_lake.storage import manifest as manifests
from steme_lake.storage.objectstore import ObjectStoreFS
from tests._seaweed import SeaweedFS
from tests.conftest import JWT_EVENTS, PYTHON, child_env

AT_2100 = "2026-01-15T21:00:00Z"


def _same(a: pl.DataFrame, b: pl.DataFrame, name: str) -> None:
    assert a.columns == b.columns, name
    a, b = a.sort(a.columns), b.sort(b.columns)
    assert a.equals(b), (name, a.join(b, on=a.columns, how="anti"))


@contextmanager
def _incident(s3: SeaweedFS, url: str, wal: Path) -> Iterator[sl.Lake]:
    """A writer on S3 with the JWT incident imported and flushed to the bucket."""
    with sl.open(url, storage_options=s3.options(), wal=wal) as lake:
        lake.import_events(JWT_EVENTS)
        lake.flush()
        yield lake


def _answers(lake: sl.Lake) -> dict[str, object]:
    """Every reading call of the incident investigation, as comparable values."""
    es = lake.blame("auth/jwt", "signing_algorithm", as_of=AT_2100, lifecycle=None).answer.assertion
    assert es is not None
    out: dict[str, object] = {}
    for lens in lake.lenses:
        for lifecycle in (None, "approved"):
            b = lake.blame(
                "auth/jwt", "signing_algorithm", as_of=AT_2100, lens=lens, lifecycle=lifecycle
            )
            out[f"blame/{lens}/{lifecycle}"] = (b.answer.value, b.answer.assertion)
    out["snapshot"] = lake.snapshot(AT_2100).collect()
    out["snapshot/approved"] = lake.snapshot("2026-01-16", lifecycle="approved").collect()
    d = lake.diff("2026-01-15T20:00:00Z", "2026-01-16T00:00:00Z", "auth/*")
    out["diff"] = (d.beliefs, d.records)
    out["timeline"] = lake.timeline("auth/jwt", "signing_algorithm")
    out["trace"] = lake.trace("deploy-agent", "2026-01-15T00:00:00Z", "2026-01-17T00:00:00Z")
    impact = lake.impact(es, depth=3)
    out["impact"] = (impact.queries, impact.agents, impact.assertions, impact.constraints)
    for table in ("assertions", "votes", "lifecycle", "supersessions", "constraints", "audit"):
        out[f"table/{table}"] = lake.table(table).collect()
    return out


def _upload(local: Path, url: str, options: dict[str, object]) -> None:
    """A flushed local lake's published files, copied as they are (the move to S3)."""
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **options)
    prefix = url.removeprefix("s3://")
    for path in sorted(local.rglob("*")):
        rel = path.relative_to(local).as_posix()
        if path.is_file() and rel.split("/")[0] in ("steme_lake.json", "_manifest", "tables"):
            fs.pipe_file(f"{prefix}/{rel}", path.read_bytes())


def test_an_s3_lake_answers_every_call_as_the_local_lake_does(
    s3: SeaweedFS, url: str, tmp_path: Path
) -> None:
    with sl.open(tmp_path / "local") as local:
        local.import_events(JWT_EVENTS)
        local.flush()
        expected = _answers(local)
    _upload(tmp_path / "local", url, s3.options())
    reader = sl.open(url, storage_options=s3.options(reader=True), read_only=True)
    try:
        got = _answers(reader)
    finally:
        reader.close()
    with sl.open(url, storage_options=s3.options(), wal=tmp_path / "wal") as writer:
        written = _answers(writer)
        asked = writer.query("auth/jwt", "signing_algorithm", agent="sre", as_of=AT_2100)
        assert asked.value == "ES256"  # a lens answers the same through `query` (audited)
    for answers in (got, written):
        assert answers.keys() == expected.keys()
        for name, value in expected.items():
            if isinstance(value, pl.DataFrame):
                _same(answers[name], value, name)  # type: ignore[arg-type]
            elif isinstance(value, tuple) and isinstance(value[0], pl.DataFrame):
                for a, b in zip(answers[name], value, strict=True):  # type: ignore[call-overload]
                    _same(a, b, name)
            else:
                assert answers[name] == value, name


def test_an_import_on_s3_flushes_to_the_bucket(s3: SeaweedFS, url: str, tmp_path: Path) -> None:
    with sl.open(url, storage_options=s3.options(), wal=tmp_path / "wal") as lake:
        lake.import_events(JWT_EVENTS)
        assert lake.flush() > 0
        assert all(f.startswith(f"{url}/tables/assertions/") for f in lake.files("assertions"))
        b = lake.blame("auth/jwt", "signing_algorithm", as_of=AT_2100)
        assert b.answer.value == "ES256"
        approved = lake.query("auth/jwt", "signing_algorithm", agent="sre", lifecycle="approved")
        assert approved.value == "RS256"


def test_rows_survive_reopen_and_a_reader_sees_only_the_bucket(
    s3: SeaweedFS, url: str, tmp_path: Path
) -> None:
    wal = tmp_path / "wal"
    with sl.open(url, storage_options=s3.options(), wal=wal) as lake:
        lake.import_events(JWT_EVENTS)
        asked = lake.query("auth/jwt", "signing_algorithm", agent="sre", lifecycle="approved")
    with sl.open(url, storage_options=s3.options(), wal=wal) as lake:
        audit = lake.audit.filter(pl.col("id") == asked.query_id).collect()
        assert audit["value"].to_list() == ['"RS256"']
        n_assertions = lake.assertions.collect().height
    # A reader with read-only credentials and nothing local but a temporary cache.
    reader = sl.open(url, storage_options=s3.options(reader=True), read_only=True)
    try:
        assert reader.assertions.collect().height == n_assertions
        b = reader.blame("auth/jwt", "signing_algorithm", lifecycle="approved")
        assert b.answer.value == "RS256"
        assert reader.audit.filter(pl.col("id") == asked.query_id).collect().height == 1
        with pytest.raises(sl.ReadOnlyError, match="wal="):
            reader.query("auth/jwt", "signing_algorithm", agent="sre")
        with pytest.raises(sl.ReadOnlyError, match="read-only"):
            reader.assert_("auth/jwt", "x", 1, agent="a", source="s")
        later = reader.snapshot()
    finally:
        reader.close()
    assert later.collect().height > 0  # frames built before close still read, as locally


def test_a_readers_temporary_folder_goes_when_its_process_ends(
    s3: SeaweedFS, url: str, tmp_path: Path
) -> None:
    sl.open(url, storage_options=s3.options(), wal=tmp_path / "wal").close()
    script = (
        "import json, sys, steme_lake as sl\n"
        "lake = sl.open(sys.argv[1], storage_options=json.loads(sys.argv[2]), read_only=True)\n"
        "lake.assertions.collect()\n"
        "print(lake.path)\n"
        "lake.close()\n"
    )
    done = subprocess.run(
        [PYTHON, "-c", script, url, json.dumps(s3.options())],
        capture_output=True, text=True, env=child_env(), check=True,
    )  # fmt: skip
    home = Path(done.stdout.strip())
    assert home.name.startswith("steme-lake-reader-") and not home.exists()


def test_a_reader_sees_what_the_writer_flushes_while_both_are_open(
    s3: SeaweedFS, url: str, tmp_path: Path
) -> None:
    with sl.open(url, storage_options=s3.options(), wal=tmp_path / "wal") as writer:
        writer.assert_("a/b", "c", 1, agent="w", source="s")
        writer.flush()
        reader = sl.open(url, storage_options=s3.options(), read_only=True)
        try:
            assert reader.assertions.collect().height == 1
            writer.assert_("a/b", "c", 2, agent="w", source="s")
            assert reader.assertions.collect().height == 1  # unflushed: in the writer's WAL
            writer.flush()
            reader._manifest_mtime = -1  # no need to wait for the next poll
            assert reader.assertions.collect().height == 2
        finally:
            reader.close()


def test_every_object_stays_under_the_lake_prefix(s3: SeaweedFS, url: str, tmp_path: Path) -> None:
    with _incident(s3, url, tmp_path / "wal") as lake:
        lake.compact()
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **s3.options())
    prefix = url.removeprefix("s3://")
    objects = fs.find(prefix)
    assert objects and all(o.startswith(prefix + "/") for o in objects)
    top = {o[len(prefix) + 1 :].split("/")[0] for o in objects}
    assert top == {"steme_lake.json", "_manifest", "tables", "index"}
    store = ObjectStoreFS(url, s3.options(), home=tmp_path / "x")
    for bad in ("../other/x", "/etc/passwd", "tables/../../other", "..", "a\\b"):
        with pytest.raises(sl.ValidationError, match="leave the lake's prefix"):
            store.key(bad)


def test_manifests_are_good_and_name_their_writer(s3: SeaweedFS, url: str, tmp_path: Path) -> None:
    with _incident(s3, url, tmp_path / "wal") as lake:
        store = lake._fs
        versions = manifests.versions(store)
        assert versions == sorted(versions) and len(versions) >= 2
        for version in versions:
            m = manifests.load_version(store, version)
            assert m.writer == lake._home.writer  # type: ignore[union-attr]
        assert lake.verify() == len(lake._manifest.files)


def test_a_damaged_or_deleted_cached_copy_is_fetched_again(
    s3: SeaweedFS, url: str, tmp_path: Path
) -> None:
    wal = tmp_path / "wal"
    with _incident(s3, url, wal) as lake:
        n = lake.assertions.collect().height
    cached = sorted((wal / "cache" / "tables" / "assertions").rglob("*.parquet"))
    assert cached
    cached[0].write_bytes(b"not parquet")  # damaged on this disk, whole on the bucket
    cached[-1].unlink()
    with sl.open(url, storage_options=s3.options(), wal=wal) as lake:
        assert lake.assertions.collect().height == n
        assert lake.verify() == len(lake._manifest.files)
    assert cached[0].read_bytes()[:4] == b"PAR1"


def test_a_file_missing_from_the_bucket_is_named(s3: SeaweedFS, url: str, tmp_path: Path) -> None:
    with _incident(s3, url, tmp_path / "wal") as lake:
        gone = lake.files("assertions")[0]
    s3fs.S3FileSystem(skip_instance_cache=True, **s3.options()).rm_file(gone)
    reader = sl.open(url, storage_options=s3.options(), read_only=True)
    try:
        with pytest.raises(sl.StorageCorruptError, match="missing from the bucket"):
            reader.assertions.collect()
    finally:
        reader.close()
