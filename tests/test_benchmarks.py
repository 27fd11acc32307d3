"""The benchmark scripts run (a smoke run: it checks they work, never timings)."""

from __future__ import annotations

import json
import shutil
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


@pytest.mark.parametrize(("loadgen", "clients"), [("python", 3), ("wrk", 8)])
def test_http_bench_smoke(http_bench: object, tmp_path: Path, loadgen: str, clients: int) -> None:
    if loadgen == "wrk" and shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (apt install wrk); the Python clients ran instead")
    out = tmp_path / "http.json"
    argv = ["--seconds", "0.5", "--loadgen", loadgen, "--clients", str(clients)]
    result = http_bench.main([*argv, "--out", str(out)])  # type: ignore[attr-defined]
    assert json.loads(out.read_text()) == result
    assert result["load_generator"].startswith(loadgen)
    assert result["clients"] == clients and result["server_batch_wait_ms"] == 1.0
    for workload in ("durable_writes", "queries", "queries_post"):
        figures = result[workload]
        assert figures["requests"] > 0 and figures["errors"] == 0, figures
        assert figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]


def test_busy_keys_bench_smoke(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import busy_keys_bench  # type: ignore[import-not-found]

    out = tmp_path / "busy.json"
    argv = ["--busy", "1", "--rows", "1500", "--seconds", "0.5", "--out", str(out)]
    result = busy_keys_bench.main(argv)
    sys.modules.pop("busy_keys_bench", None)
    assert json.loads(out.read_text()) == result
    assert set(result["all_ordinary"]) == {"ordinary"}
    assert result["one_busy_client"]["busy"]["clients"] == 1
    assert result["one_busy_client"]["ordinary"]["clients"] == 7
    writing = result["one_busy_client_while_written_to"]
    assert {name: f["clients"] for name, f in writing.items()} == {
        "writer": 1,
        "busy": 1,
        "ordinary": 6,
    }
    for mix in ("all_ordinary", "one_busy_client", "one_busy_client_while_written_to"):
        for figures in result[mix].values():
            assert figures["requests"] > 0 and figures["errors"] == 0, figures
            assert figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]


@pytest.fixture
def lake_bench(monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import lake_bench  # type: ignore[import-not-found]

    yield lake_bench
    sys.modules.pop("lake_bench", None)
    sys.modules.pop("generate", None)


def test_lake_bench_smoke_100k(lake_bench: object, tmp_path: Path) -> None:
    """The 100k run of `make bench`: every workload on every system, the same answers."""
    result = lake_bench.main(  # type: ignore[attr-defined]
        ["--size", "100k", "--points", "50", "--single-writes", "20", "--quiet",
         "--out", str(tmp_path)]
    )  # fmt: skip
    written = json.loads(next(tmp_path.glob("lake-100k-*.json")).read_text())
    assert written == json.loads(json.dumps(result))
    table = next(tmp_path.glob("lake-100k-*.md")).read_text()
    for label in ("durable batch ingest", "as-of point query", "agent trace, 6 h", "peak memory"):
        assert label in table
    assert result["rows"]["assertions"] == 100_000
    assert result["rows"]["audit"] == 1_000_000  # ten audit records per assertion
    for kind in ("votes", "lifecycle", "supersessions", "constraints"):
        assert result["rows"][kind] > 0, kind
    for system in ("steme_lake", "duckdb", "sqlite"):
        figures = result["questions"][system]
        for workload in (
            "point",
            "point_as_of",
            "snapshot",
            "diff_24h",
            "trace_6h",
            "impact",
            "impact_depth3",
        ):
            assert figures[workload]["n"] > 0, (system, workload)
        assert figures["peak_rss_mib"] > 0
    # The lake's index came from the checkpoint its last open wrote (and the rows after).
    assert result["questions"]["steme_lake"]["state_checkpoint"].startswith("state/")
    # The systems answer the same questions the same way: the comparison is fair.
    for system, counts in result["disagreements"].items():
        assert all(v == 0 for k, v in counts.items() if not k.endswith("examples")), (
            system,
            counts,
        )


def test_generator_is_seeded(lake_bench: object, tmp_path: Path) -> None:
    import generate  # type: ignore[import-not-found]

    import steme_lake as sl

    tables = []
    for n in range(2):
        lake = sl.open(tmp_path / f"lake-{n}")
        generate.generate(lake, generate.Plan(assertions=2000, hours=48, seed=7))
        tables.append(lake.assertions.select("id").collect()["id"].to_list())
        lake.close()
    assert tables[0] == tables[1] and len(tables[0]) == 2000


def test_trust_bench_smoke(tmp_path: Path) -> None:
    """The TrustRank benchmark runs every engine on a small graph and reports each."""
    import subprocess

    out = tmp_path / "trust.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "trust_bench.py"), "--agents", "2000",
         "--edges", "20000", "--repeat", "1", "--networkx-full", "--out", str(out)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    for engine in ("steme_lake", "igraph", "networkx", "networkx_tenth", "steme_lake_tenth"):
        figures = report["synthetic"][engine]
        assert "error" not in figures, figures
        assert figures["seconds"] > 0 and figures["peak_bytes"] > 0
    assert report["warm_start"]["tolerance 1e-10"]["warm_iterations"] > 0
    if "bitcoin_otc" in report["warm_start"]:  # the shared datasets are there
        real = report["warm_start"]["bitcoin_otc"]
        assert 0 < real["warm_iterations"] < real["cold_iterations"]
        assert real["max_score_difference"] < 1e-6
    if "bitcoin_otc" in report:
        assert report["bitcoin_otc"]["lake_to_stored_scores_seconds"] > 0


def test_dojo_bench_smoke(tmp_path: Path) -> None:
    import subprocess

    out = tmp_path / "dojo.json"
    run = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "dojo_bench.py"), "--size", "2000",
         "--peer-samples", "5", "--lake", str(tmp_path / "lake"), "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["samples"] > 0 and result["samples"] == sum(result["by_kind"].values())
    assert result["point_queries_timed"] == 5


def test_explorer_bench_smoke(tmp_path: Path) -> None:
    """The explorer driven on a small generated lake: every interaction timed,
    beside the plain API calls, and the plot update beside a matplotlib redraw."""
    import subprocess

    out = tmp_path / "explorer.json"
    run = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "explorer_bench.py"), "--size", "3000",
         "--rounds", "2", "--lake", str(tmp_path / "lake"), "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(out.read_text())
    for name in ("subject", "belief", "as of", "filters", "window", "trace", "tab", "zoom"):
        assert result["explorer"][name]["n"] > 0, name
    assert result["plain_api"]["as of"]["n"] == 10
    plot = result["plot_update"]
    assert 0 < plot["bqplot_move"]["bytes_sent"] < plot["matplotlib_png_redraw"]["bytes_sent"]


def test_vector_bench_smoke(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import vector_bench  # type: ignore[import-not-found]

    try:
        out = tmp_path / "vectors.json"
        result = vector_bench.main(
            [
                "--size",
                "3000",
                "--queries",
                "3",
                "--claims",
                "10",
                "--climate-limit",
                "40",
                "--catch-up",
                "30",
                "--out",
                str(out),
            ]
        )
    finally:
        sys.modules.pop("vector_bench", None)
    assert json.loads(out.read_text()) == result
    for case in result["synthetic"].values():
        if isinstance(case, dict) and "recall_at_10" in case:
            assert case["recall_at_10"] == 1.0 and case["as_of_or_lifecycle_violations"] == 0
    hybrid = result["synthetic"]["hybrid, approved, whole search with its audit"]
    assert 0 < hybrid["p50_ms"] <= hybrid["p99_ms"]
    if "climate_fever" in result:
        assert result["climate_fever"]["hybrid"]["claims_with_own_evidence_at_10"] > 0
        assert result["climate_fever"]["catch_up"]["assertions"] == 30
    assert result["synthetic"]["rows_added_after_the_build"] == 30


def test_objectstore_bench_smoke(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The S3-against-local benchmark on a small history: both lakes answer alike."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import objectstore_bench  # type: ignore[import-not-found]

    out = tmp_path / "objectstore.json"
    result = objectstore_bench.main(
        ["--size", "1000", "--hours", "24", "--snapshots", "3", "--out", str(out)]
    )
    sys.modules.pop("objectstore_bench", None)
    assert json.loads(out.read_text()) == result
    assert result["local"]["rows_flushed"] == result["s3"]["rows_flushed"] > 1000
    assert result["local"]["snapshot_rows"] == result["s3"]["snapshot_rows"] > 0
    assert set(result["ratio_s3_over_local"]) >= {"flush_s", "snapshot_p50_s"}
