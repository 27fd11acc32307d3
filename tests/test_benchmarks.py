"""The benchmark scripts run (a smoke run: it checks they work, never timings)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def http_bench(monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import http_bench  # type: ignore[import-not-found]

    yield http_bench
    sys.modules.pop("http_bench", None)


def test_http_bench_smoke(http_bench: object, tmp_path: Path) -> None:
    out = tmp_path / "http.json"
    result = http_bench.main(["--seconds", "0.5", "--out", str(out)])  # type: ignore[attr-defined]
    assert json.loads(out.read_text()) == result
    for workload in ("durable_writes", "queries", "queries_post"):
        figures = result[workload]
        assert figures["requests"] > 0 and figures["errors"] == 0, figures
        assert figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]
