"""The engine benchmark's harness runs (on the session's cluster, tiny sizes); timings
are never checked, only that it measures both engines and they agree."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.conftest import REPO


def test_engine_bench_smoke(ray_address: str, tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import engine_bench  # type: ignore[import-not-found]

        out = tmp_path / "engine.json"
        result = engine_bench.main(
            ["--votes", "2k", "--topics", "8", "--repeat", "1", "--address", ray_address,
             "--dojo", "3000", "--out", str(out)]
        )  # fmt: skip
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
        sys.modules.pop("engine_bench", None)
    engines = {(r["engine"], r["workers"]) for r in result["rows"] if r["job"] == "trustrank"}
    assert engines == {("local", 1), ("ray", 2)}
    dojo = {r["engine"]: r["samples"] for r in result["rows"] if r["job"] == "dojo"}
    assert dojo.keys() == {"local", "ray"} and dojo["ray"] == dojo["local"] > 0
    ray = [r for r in result["rows"] if r["engine"] == "ray" and r["job"] == "trustrank"]
    assert ray and all(r["warm_ratio"] > 0 for r in ray)
    assert json.loads(out.read_text())["rows"] == result["rows"]
