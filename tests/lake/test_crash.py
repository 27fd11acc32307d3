"""Real processes, killed for real: acknowledged writes survive, nothing half-written shows."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import polars as pl
import pytest

import steme_lake as sl
from tests.conftest import PYTHON, REPO, child_env

CHILD = str(REPO / "tests" / "_procs.py")
KILL_ROUNDS = 25  # two writers killed per round: 50 kill points
pytestmark = pytest.mark.slow


class _Child:
    def __init__(self, *args: str) -> None:
        # Closed in _close(), after the child is gone: a context manager cannot span that.
        self.stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [PYTHON, CHILD, *args],
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            env=child_env(),
            text=True,
        )
        self.acks: list[dict] = []
        self.first_ack = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("ACK "):
                self.acks.append(json.loads(line[4:]))
                self.first_ack.set()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._close()

    def finish(self, timeout: float = 180) -> str:
        self.proc.wait(timeout=timeout)
        return self._close()

    def error_text(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()[-3000:]

    def _close(self) -> str:
        self._reader.join()
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        text = self.error_text()
        self.stderr.close()
        return text


def _check_single(lake: sl.Lake, tag: str, acks: list[dict]) -> None:
    rows = lake.assertions.filter(pl.col("subject") == f"crash/{tag}").collect()
    objects = sorted(int(o) for o in rows["object"])
    assert objects == list(range(len(objects))), "a gap or duplicate: a write was lost or repeated"
    ids = set(rows["id"])
    for a in acks:
        assert a["id"] in ids, f"acknowledged write {a['n']} is missing"
    assert len(objects) - len(acks) in (0, 1)  # at most one durable-but-unacknowledged write


def _check_bulk(lake: sl.Lake, tag: str, acks: list[dict]) -> None:
    rows = lake.assertions.filter(pl.col("subject") == f"crash/{tag}").collect()
    batches = rows.group_by(pl.col("meta")).len()
    assert set(batches["len"].to_list()) <= {20}, "a half-written multi-frame commit is visible"
    ids = set(rows["id"])
    for a in acks:
        assert set(a["ids"]) <= ids


class TestKillNine:
    """kill -9 at random moments during streams of acknowledged writes."""

    def test_fifty_kill_points(self, tmp_path: Path) -> None:
        rng = random.Random(1234)
        lake_path = tmp_path / "lake"
        sl.open(lake_path).close()
        modes = ["single", "bulk", "single_flush"]
        kills = acked = 0
        for round_no in range(KILL_ROUNDS):
            children = []
            for k in range(2):
                mode = modes[(round_no + k) % len(modes)]
                tag = f"r{round_no}w{k}"
                args = [mode.replace("_flush", ""), str(lake_path), tag]
                if mode == "single_flush":
                    args.append("6000")  # tiny flush threshold: flush and compaction under fire
                children.append((mode, tag, _Child(*args)))
            for _, _, child in children:
                assert child.first_ack.wait(60), child.error_text()
            time.sleep(rng.uniform(0.0, 0.4))
            for _, _, child in children:
                time.sleep(rng.uniform(0.0, 0.05))
                child.kill()
                kills += 1
            acked += sum(len(c.acks) for _, _, c in children)
            with sl.open(lake_path) as lake:
                for mode, tag, child in children:
                    if mode == "bulk":
                        _check_bulk(lake, tag, child.acks)
                    else:
                        _check_single(lake, tag, child.acks)
                dup = lake.assertions.group_by("id").len().filter(pl.col("len") > 1).collect()
                assert dup.height == 0, "a record is visible twice"
        assert kills >= 50
        assert acked > 500  # the kills interrupted real streams of writes


class TestAuditDurability:
    """The record of an answer that was given survives kill -9."""

    def test_acknowledged_queries_are_audited(self, tmp_path: Path) -> None:
        lake_path = tmp_path / "lake"
        sl.open(lake_path).close()
        rng = random.Random(99)
        for round_no in range(5):
            child = _Child("queries", str(lake_path), f"q{round_no}")
            assert child.first_ack.wait(60), child.error_text()
            time.sleep(rng.uniform(0.05, 0.3))
            child.kill()
            given = {a["query_id"] for a in child.acks}
            assert given and all(a["value"] == "RS256" for a in child.acks)
            with sl.open(lake_path) as lake:
                audited = set(lake.audit.filter(pl.col("agent") == f"q{round_no}").collect()["id"])
            assert given <= audited
            assert len(audited) - len(given) in (0, 1)


class TestConcurrentProcesses:
    """Four processes write one lake at once, each also reading."""

    def test_four_writers(self, tmp_path: Path) -> None:
        lake_path, barrier = tmp_path / "lake", tmp_path / "barrier"
        barrier.mkdir()
        sl.open(lake_path).close()
        per, peers = 150, 4
        children = [
            _Child("concurrent", str(lake_path), f"p{i}", str(per), str(barrier), str(peers))
            for i in range(peers)
        ]
        for child in children:
            err = child.finish()
            assert child.proc.returncode == 0, err
        for child in children:
            (report,) = child.acks
            assert report["total"] == per * peers  # each process sees every other's writes
        assert any(c.acks[0]["seen_others_while_writing"] > 0 for c in children)
        with sl.open(lake_path) as lake:
            rows = lake.assertions.collect()
        assert rows.height == per * peers
        assert rows["id"].n_unique() == per * peers
        seqs = sorted(rows["seq"].to_list())
        assert seqs == list(range(1, per * peers + 1)), "sequence numbers reused or skipped"
        for i in range(peers):
            mine = rows.filter(pl.col("subject") == f"conc/p{i}").sort("seq")
            assert mine["object"].cast(pl.Int64).to_list() == list(range(per))


class TestFullDisk:
    """A write refused by the kernel (file size limit) stops the writer and loses nothing."""

    def test_efbig(self, tmp_path: Path) -> None:
        lake_path = tmp_path / "lake"
        sl.open(lake_path).close()
        child = _Child("full_disk", str(lake_path), "d", "40000")
        err = child.finish(timeout=120)
        assert child.proc.returncode == 0, err
        errors = [a for a in child.acks if "error" in a]
        assert errors and errors[0]["error"] == "WalFailedError", child.acks[-3:]
        assert child.acks[-1] == {"after": "WalFailedError"}  # stopped: no retry
        written = [a for a in child.acks if "id" in a]
        with sl.open(lake_path) as lake:
            rows = lake.assertions.collect()
        assert set(rows["id"]) == {a["id"] for a in written}
