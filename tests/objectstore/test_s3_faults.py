"""Faults against a real S3 server: killed mid-flush, racing publishers, slow and stalled."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import steme_lake as sl
from steme_lake.storage import manifest as manifests
from steme_lake.storage import writer
from steme_lake.storage.objectstore import ObjectStoreFS
from tests._seaweed import SeaweedFS
from tests.conftest import PYTHON, child_env

from ._proxy import SlowProxy

FAST_FAIL = {"connect_timeout": 1, "read_timeout": 2, "retries": {"max_attempts": 1}}


def _events(n: int, days: int = 6) -> list[dict[str, Any]]:
    """``n`` assertions over ``days`` UTC days: a flush writes a file per day."""
    start, step = datetime(2026, 1, 1, tzinfo=UTC), timedelta(days=days) / n
    return [
        {
            "op": "assert",
            "at": (start + i * step).isoformat(),
            "agent": f"agent-{i % 7}",
            "subject": f"svc/{i % 13}",
            "predicate": "p",
            "object": i,
            "source": "fault-test",
        }
        for i in range(n)
    ]


def _check_manifests(lake: sl.Lake) -> None:
    """Every published version reads back good and agrees with itself."""
    for version in manifests.versions(lake._fs):
        assert manifests.load_version(lake._fs, version).problems() == []


def test_a_server_killed_mid_flush_loses_nothing(
    own_s3: SeaweedFS, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "UPLOAD_BATCH_BYTES", 1)  # one file per upload
    url, wal = "s3://lakes/killed", tmp_path / "wal"
    options = own_s3.options(**FAST_FAIL)
    lake = sl.open(url, storage_options=options, wal=wal)
    lake.import_events(_events(3000))  # acknowledged: in the WAL
    before = manifests.versions(lake._fs)
    written: list[int] = []

    def kill_after_first_file(done: int, total: int) -> None:
        written.append(done)
        if len(written) == 1:
            own_s3.kill()  # SIGKILL, between two files of one flush

    with pytest.raises(sl.StorageError, match="nothing was published"):
        lake.flush(progress=kill_after_first_file)
    assert len(written) == 1  # it died after the first of six files
    lake._release()  # this process is done with it, as after a crash: no final flush

    own_s3.start()  # the same data folder and ports
    with sl.open(url, storage_options=options, wal=wal) as lake:
        assert manifests.versions(lake._fs) == before  # no half-published version
        assert lake.assertions.collect().height == 3000
        assert lake.flush() >= 3000
        _check_manifests(lake)
    reader = sl.open(url, storage_options=own_s3.options(), read_only=True)
    try:
        objects = reader.assertions.select("object").collect()["object"]
        assert sorted(int(o) for o in objects) == list(range(3000))
    finally:
        reader.close()


_RACER = textwrap.dedent(
    """
    import sys, json, time
    from steme_lake.storage.objectstore import ObjectStoreFS
    url, options, home, start, name, me = sys.argv[1:]
    fs = ObjectStoreFS(url, json.loads(options), home=home)
    while time.time() < float(start):
        time.sleep(0.001)
    print(json.dumps(fs.put_if_absent(name, me.encode())))
    """
)


def test_of_processes_racing_for_one_manifest_version_exactly_one_wins(
    s3: SeaweedFS, url: str, tmp_path: Path
) -> None:
    options = json.dumps(s3.options())
    for round_ in range(3):
        name = f"_manifest/{round_ + 1:020d}.json"
        start = time.time() + 2.0
        procs = [
            subprocess.Popen(
                [
                    PYTHON,
                    "-c",
                    _RACER,
                    url,
                    options,
                    str(tmp_path / f"h{i}"),
                    str(start),
                    name,
                    f"process-{i}",
                ],
                stdout=subprocess.PIPE,
                env=child_env(),
            )
            for i in range(4)
        ]
        results = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
        assert results.count(True) == 1, results
        winner = results.index(True)
        fs = ObjectStoreFS(url, s3.options(), home=tmp_path / "check")
        assert fs.read_bytes(name) == f"process-{winner}".encode()


# Both racers count the lost races they retried (the lake logs each one).
_COUNT_RETRIES = textwrap.dedent(
    """
    import sys, json, logging, time, pathlib
    import steme_lake as sl
    url, options, wal, stop = sys.argv[1:]
    retries = []
    class Count(logging.Handler):
        def emit(self, record):
            if "retrying on it" in record.getMessage():
                retries.append(1)
    logging.getLogger("steme_lake").addHandler(Count())
    logging.getLogger("steme_lake").setLevel(logging.INFO)
    """
)
_FLUSHER = _COUNT_RETRIES + textwrap.dedent(
    """
    lake = sl.open(url, storage_options=json.loads(options), wal=wal,
                   options=sl.LakeOptions(compact_min_files=1000))
    n = 0
    while not pathlib.Path(stop).exists() and n < 400:
        lake.assert_("race/a", "n", n, agent="flusher", source="race")
        print("ACK", n, flush=True)
        lake.flush()
        n += 1
    lake.close()
    print("RETRIES", len(retries), flush=True)
    """
)
_COMPACTOR = _COUNT_RETRIES + textwrap.dedent(
    """
    lake = sl.open(url, storage_options=json.loads(options), wal=wal,
                   options=sl.LakeOptions(compact_min_files=2, vacuum_retain_seconds=3600))
    deadline = time.monotonic() + 90
    merged = 0
    while time.monotonic() < deadline and (len(retries) < 3 or merged < 3):
        merged += bool(lake.compact())
    pathlib.Path(stop).touch()
    lake.close()
    print("RETRIES", len(retries), "MERGED", merged, flush=True)
    """
)


def test_a_flusher_and_a_compactor_racing_lose_nothing(
    s3: SeaweedFS, url: str, tmp_path: Path
) -> None:
    """Two processes publish to one lake at once (a flush loop and a compaction loop,
    each with its own flush lock): each lost race is retried on the newest manifest."""
    options = json.dumps(s3.options())
    sl.open(url, storage_options=s3.options(), wal=tmp_path / "a").close()
    (tmp_path / "b").mkdir()  # the same writer identity, another folder (and lock)
    shutil.copy(tmp_path / "a" / "home.json", tmp_path / "b" / "home.json")
    stop = tmp_path / "stop"
    flusher = subprocess.Popen(
        [PYTHON, "-c", _FLUSHER, url, options, str(tmp_path / "a"), str(stop)],
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    compactor = subprocess.Popen(
        [PYTHON, "-c", _COMPACTOR, url, options, str(tmp_path / "b"), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    out_c, err_c = compactor.communicate(timeout=180)
    out_f = flusher.communicate(timeout=180)[0]
    assert compactor.returncode == 0 and flusher.returncode == 0, (
        out_c,
        err_c[-3000:].replace("\n", " | "),
    )
    acked = [int(line.split()[1]) for line in out_f.splitlines() if line.startswith("ACK")]
    retries = int(out_f.split("RETRIES")[1]) + int(out_c.split("RETRIES")[1].split()[0])
    assert retries > 0, (out_f, out_c)  # the race happened, and was retried
    assert int(out_c.split("MERGED")[1]) > 0
    reader = sl.open(url, storage_options=s3.options(), read_only=True)
    try:
        got = reader.assertions.select(pl.col("object").cast(pl.Int64)).collect()["object"]
        assert sorted(got.to_list()) == acked  # every acknowledged row, once
        _check_manifests(reader)
        reader.verify()
    finally:
        reader.close()


def test_a_slow_server_answers_the_same(s3: SeaweedFS, url: str, tmp_path: Path) -> None:
    proxy = SlowProxy(s3.ports["s3.port"], delay=0.02)
    options = s3.options()
    options["client_kwargs"] = dict(options["client_kwargs"], endpoint_url=proxy.endpoint)
    try:
        with sl.open(url, storage_options=options, wal=tmp_path / "wal") as lake:
            lake.import_events(_events(500))
            started = time.monotonic()
            assert lake.flush() == 500
            slow = time.monotonic() - started
            assert lake.assertions.collect().height == 500
        reader = sl.open(url, storage_options=options, read_only=True)
        try:
            assert reader.assertions.collect().height == 500
        finally:
            reader.close()
    finally:
        proxy.close()
    assert slow > 0.02  # it was slowed


def test_a_stalled_server_fails_the_flush_and_the_next_one_publishes(
    s3: SeaweedFS, url: str, tmp_path: Path
) -> None:
    proxy = SlowProxy(s3.ports["s3.port"])
    options = s3.options(**FAST_FAIL)
    options["client_kwargs"] = dict(options["client_kwargs"], endpoint_url=proxy.endpoint)
    try:
        with sl.open(url, storage_options=options, wal=tmp_path / "wal") as lake:
            lake.import_events(_events(200))
            proxy.stalled = True
            started = time.monotonic()
            with pytest.raises(sl.StorageError, match="object store is reachable"):
                lake.flush()
            waited = time.monotonic() - started
            proxy.stalled = False
            assert lake.flush() == 200
            assert lake.assertions.collect().height == 200
            _check_manifests(lake)
    finally:
        proxy.close()
    assert waited < 60  # bounded by the client's timeouts, not forever
