"""Above a size the vectors get an ANN index (IVF with scalar quantization, searched
with refinement); results stay those of exact search, rows added after the build
are found, and a narrow filter is searched exactly."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

import steme_lake as sl
from steme_lake.vectors import VectorsNamespace
from steme_lake.vectors import _store as store_module
from steme_lake.vectors._search import nearest

DIM = 64


class Clustered:
    """A stand-in model (the real one is not needed to test the index): a text's
    vector is one of 16 centres plus noise, fixed by the text."""

    name = "test-clustered"
    dim = DIM

    def __init__(self) -> None:
        self.centres = np.random.default_rng(1).normal(size=(16, DIM)).astype(np.float32)

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), DIM), dtype=np.float32)
        for i, text in enumerate(texts):
            rng = np.random.default_rng(
                int.from_bytes(text.encode()[-8:].ljust(8, b"\0"), "little")
            )
            v = self.centres[rng.integers(16)] + 0.5 * rng.normal(size=DIM)
            out[i] = v / np.linalg.norm(v)
        return out


def _fill(lake: sl.Lake, n: int, start: datetime, first: int = 0) -> None:
    lines = [
        json.dumps({"op": "assert", "at": (start + timedelta(seconds=i)).isoformat(),
                    "agent": "a", "subject": f"s/{i % 40}", "predicate": "p",
                    "object": f"v{first + i}", "source": "x",
                    "lifecycle": "approved" if i % 10 == 0 else "proposed"})
        for i in range(n)
    ]  # fmt: skip
    lake.import_events(lines)


def _indexed(
    lake: sl.Lake, monkeypatch: pytest.MonkeyPatch, n: int, exact_rows: int | None = None
) -> tuple[VectorsNamespace, store_module.VectorStore, datetime]:
    """``n`` rows (from 2026-01-01, a second apart), embedded and indexed (the
    index from 1,000 rows)."""
    monkeypatch.setattr(store_module, "INDEX_ROWS", 1000)
    if exact_rows is not None:
        monkeypatch.setattr(store_module, "EXACT_ROWS", exact_rows)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    _fill(lake, n, start)
    vectors = VectorsNamespace(lake, embedder=Clustered())
    store = vectors._store()
    store.sync()
    store.wait()  # the background build started by the sync
    return vectors, store, start


def test_indexed_search_matches_exact_search(
    tmp_lake: sl.Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    vectors, store, start = _indexed(tmp_lake, monkeypatch, 3000, exact_rows=100)
    assert store.indexed_rows() == 3000
    assert vectors.status()["indexed_rows"] == 3000
    _fill(tmp_lake, 50, start + timedelta(hours=2), first=3000)  # after the build
    model = store.embedder
    table = store.table()
    t = tmp_lake._as_of(None)

    def exact(probe: np.ndarray, approved: bool) -> list[str]:
        rows = table.to_arrow().to_pydict()
        keep = [i for i, s in enumerate(rows["lifecycle"]) if not approved or s == "approved"]
        m = np.array([rows["vector"][i] for i in keep], dtype=np.float32)
        order = np.argsort(-(m @ probe))[:10]
        return [rows["id"][keep[i]] for i in order]

    recalls = []
    for q in range(20):
        probe = model.embed([f"probe {q}"])[0]
        found = nearest(store, probe, k=10, t=t, stages=None, subject=None,
                        include_superseded=False)  # fmt: skip
        assert len(table.to_arrow()) == 3050  # the added rows were brought in
        recalls.append(len(set(found["id"]) & set(exact(probe, False))) / 10)
        # a narrow filter (305 approved rows > EXACT_ROWS) still uses the index...
        narrow = nearest(store, probe, k=10, t=t, stages=("approved",), subject=None,
                         include_superseded=False)  # fmt: skip
        assert set(narrow["lifecycle"]) == {"approved"} and narrow.height == 10
    assert float(np.mean(recalls)) >= 0.9
    # ... and one under EXACT_ROWS is searched exactly
    probe = model.embed(["probe exact"])[0]
    tiny = nearest(store, probe, k=5, t=t, stages=None, subject="s/7", include_superseded=False)
    rows = table.to_arrow().to_pydict()
    keep = [i for i, s in enumerate(rows["subject"]) if s == "s/7"]
    m = np.array([rows["vector"][i] for i in keep], dtype=np.float32)
    best = [rows["id"][keep[i]] for i in np.argsort(-(m @ probe))[:5]]
    assert tiny["id"].to_list() == best


def test_a_new_row_closest_to_the_probe_is_found_after_the_build(
    tmp_lake: sl.Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "INDEX_ROWS", 1000)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    _fill(tmp_lake, 1500, start)
    vectors = VectorsNamespace(tmp_lake, embedder=Clustered())
    assert vectors.build_index() is True
    late = tmp_lake.assert_("late/one", "p", "the newest", agent="a", source="x")
    store = vectors._store()
    probe = store.embedder.embed(["late/one p: the newest"])[0]  # its own text
    found = nearest(store, probe, k=3, t=tmp_lake._as_of(None), stages=None, subject=None,
                    include_superseded=False)  # fmt: skip
    assert found["id"][0] == late


def test_as_of_searches_match_exact_search_at_every_share_of_the_rows(
    tmp_lake: sl.Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As of T the time bound is applied after the search when most rows were
    recorded by T (asking for more rows), in the filter otherwise, and again in the
    filter when too few of the rows found were recorded by T: every way gives the
    k best rows recorded by T."""
    from steme_lake.vectors import _search

    _, store, start = _indexed(tmp_lake, monkeypatch, 3000, exact_rows=100)
    rows = store.table().to_arrow().to_pydict()
    matrix = np.array(rows["vector"], dtype=np.float32)
    times = np.array(rows["recorded_us"])
    model = store.embedder
    plans: list[str] = []
    real_knn = _search._knn

    def spy(
        store_: object, vector: object, flt: _search.Prefilter, k: int, extra: str = ""
    ) -> object:
        plans.append("post" if flt.t is not None and flt.share >= _search.POST_SHARE else "filter")
        return real_knn(store_, vector, flt, k, extra)  # type: ignore[arg-type]

    monkeypatch.setattr(_search, "_knn", spy)
    for share in (0.1, 0.5, 0.95):
        t = int(np.quantile(times, share))
        assert store.share_by(t) == pytest.approx(share, abs=0.01)
        for q in range(5):
            probe = model.embed([f"probe {q}"])[0]
            found = nearest(store, probe, k=10, t=t, stages=None, subject=None,
                            include_superseded=False)  # fmt: skip
            keep = np.flatnonzero(times <= t)
            best = keep[np.argsort(-(matrix[keep] @ probe))[:10]]
            assert len(set(found["id"]) & {rows["id"][i] for i in best}) >= 9
            assert (found["recorded_at"].dt.epoch("us") <= t).all()
    assert set(plans) == {"post", "filter"}
    # the 200 rows nearest the probe are all after T: the first pass keeps none of
    # them, and the search is made again with the bound in the filter
    t = int(times.max())
    tmp_lake.import_events([
        {"op": "assert", "at": (start + timedelta(hours=5, seconds=i)).isoformat(),
         "agent": "a", "subject": "late", "predicate": "p", "object": "same", "source": "x"}
        for i in range(200)
    ])  # fmt: skip
    plans.clear()
    probe = model.embed(["late p: same"])[0]
    found = nearest(store, probe, k=10, t=t, stages=None, subject=None, include_superseded=False)
    assert plans == ["post"] and found.height == 10
    assert (found["recorded_at"].dt.epoch("us") <= t).all()
    keep = np.flatnonzero(times <= t)
    best = keep[np.argsort(-(matrix[keep] @ probe))[:10]]
    assert len(set(found["id"]) & {rows["id"][i] for i in best}) >= 9


def test_the_index_is_built_again_for_a_table_four_times_larger(
    tmp_lake: sl.Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LanceDB's optimize folds new rows into the partitions it has; a table that
    grew fourfold gets an index made for its size."""
    monkeypatch.setattr(store_module, "INDEX_ROWS", 1000)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    _fill(tmp_lake, 1000, start)
    vectors = VectorsNamespace(tmp_lake, embedder=Clustered())
    store = vectors._store()
    store.sync()
    store.wait()
    assert store.built_for() == 1000
    _fill(tmp_lake, 1500, start + timedelta(hours=1), first=1000)
    store.sync()
    store.wait()
    assert store.built_for() == 1000 and store.indexed_rows() == 2500  # folded in
    _fill(tmp_lake, 2000, start + timedelta(hours=2), first=2500)
    store.sync()
    store.wait()
    assert store.built_for() == 4500 and store.indexed_rows() == 4500


def test_a_filter_sparse_in_the_probed_partitions_still_gets_k_rows(
    tmp_lake: sl.Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index probes a fixed number of partitions first; when too few of their
    rows pass the filter it probes as widely as needed."""
    monkeypatch.setattr(store_module, "NPROBES", 2)
    # 75 rows on each of 40 subjects, all over the space
    _, store, _ = _indexed(tmp_lake, monkeypatch, 3000, exact_rows=10)
    plans: list[str] = []
    real = store_module.VectorStore.tune

    def spy(query: object, plan: str) -> object:
        plans.append(plan)
        return real(query, plan)

    monkeypatch.setattr(store_module.VectorStore, "tune", staticmethod(spy))
    probe = store.embedder.embed(["probe wide"])[0]
    found = nearest(store, probe, k=60, t=tmp_lake._as_of(None), stages=None, subject="s/3",
                    include_superseded=False)  # fmt: skip
    assert plans == ["index", "wide"]
    assert found.height == 60 and set(found["subject"]) == {"s/3"}
