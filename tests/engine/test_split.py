"""The distributed TrustRank's split, run in this process (`LocalEngine`): every
split gives the single-process scores bit for bit, and engine choices are checked."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import steme_lake as sl
from steme_lake.engine import LocalEngine, RayEngine, engine_for
from steme_lake.trust import TrustOptions
from tests.engine._lakes import random_lake


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10_000),
    tasks=st.integers(1, 7),
    flush_every=st.sampled_from([0, 40, 1000]),
    depth=st.sampled_from([1, 2]),
)
def test_any_split_gives_the_same_scores(
    tmp_path_factory: pytest.TempPathFactory, seed: int, tasks: int, flush_every: int, depth: int
) -> None:
    lake = random_lake(tmp_path_factory.mktemp("lake"), seed, flush_every=flush_every)
    try:
        options = TrustOptions(depth=depth, half_lives={"auth": 3.0})
        # (as of a fixed time: as of now, the half-lives decay the weights a bit more
        # on every run)
        middle = lake.audit.select("recorded_at").collect()["recorded_at"].median()
        for as_of in (lake.status().last_time, middle):
            plain = lake.trust.run(as_of=as_of, options=options, store=False, constraints=False)
            split = lake.trust.run(
                as_of=as_of, options=options, store=False, constraints=False,
                engine=LocalEngine(tasks=tasks),
            )  # fmt: skip
            assert plain.height > 0
            assert split.equals(plain), (seed, tasks, as_of)
    finally:
        lake.close()


def test_stored_the_same_way(tmp_path: Path) -> None:
    """Run with an engine, the scores are stored from the driver as a plain run stores
    them: a plain run afterwards has nothing new to store."""
    lake = random_lake(tmp_path / "lake", 7, flush_every=50)
    split = lake.trust.run(engine=LocalEngine(tasks=3))
    records = lake.trust.records.collect().height
    assert records > 0
    plain = lake.trust.run()
    assert plain.equals(split)
    assert lake.trust.records.collect().height == records
    lake.close()


def test_topics_are_chosen_and_checked_after_the_split(tmp_path: Path) -> None:
    lake = random_lake(tmp_path / "lake", 3)
    plain = lake.trust.run(topics=["auth", ""], store=False)
    split = lake.trust.run(topics=["auth", ""], store=False, engine=LocalEngine(tasks=2))
    assert split.equals(plain) and set(split["topic"]) == {"auth", ""}
    # without the global topic, the tasks send no edges back and the driver ranks nothing
    alone = lake.trust.run(topics=["auth"], store=False, engine=LocalEngine(tasks=2))
    assert alone.equals(plain.filter(pl.col("topic") == "auth"))
    with pytest.raises(sl.ValidationError, match=r"did you mean 'auth'"):
        lake.trust.run(topics=["auht"], store=False, engine=LocalEngine(tasks=2))
    lake.close()


def test_an_empty_lake(tmp_lake: sl.Lake) -> None:
    assert lake_run(tmp_lake).equals(tmp_lake.trust.run(store=False))


def lake_run(lake: sl.Lake) -> pl.DataFrame:
    return lake.trust.run(store=False, engine=LocalEngine(tasks=2))


class TestChoices:
    def test_names(self) -> None:
        assert engine_for(None) is None and engine_for("local") is None
        assert isinstance(engine_for("ray"), RayEngine)
        with pytest.raises(sl.ValidationError, match=r"did you mean 'ray'"):
            engine_for("rya")
        with pytest.raises(sl.ValidationError, match=r"engine='ray'"):
            engine_for("local", address="127.0.0.1:6379")
        with pytest.raises(sl.ValidationError, match=r"engine must be"):
            engine_for(42)  # type: ignore[arg-type]
        with pytest.raises(sl.ValidationError, match=r"tasks must be"):
            LocalEngine(tasks=0)
        with pytest.raises(sl.ValidationError, match=r"tasks_per_cpu"):
            RayEngine(tasks_per_cpu=0)

    def test_warm_runs_stay_local(self, tmp_lake: sl.Lake) -> None:
        with pytest.raises(sl.ValidationError, match=r"local engine only"):
            tmp_lake.trust.run(warm=True, engine=LocalEngine())

    def test_an_unreachable_cluster_is_named(self, tmp_lake: sl.Lake) -> None:
        pytest.importorskip("ray")
        import ray

        if ray.is_initialized():
            pytest.skip("a Ray cluster is already connected in this process")
        with pytest.raises(sl.EngineError, match=r"127\.0\.0\.1:9.*ray start --head"):
            tmp_lake.trust.run(store=False, engine="ray", address="127.0.0.1:9")


def test_every_error_travels_between_processes_as_itself() -> None:
    """An error raised in a task reaches the driver with its type, message and fields."""
    import pickle

    from steme_lake import _exceptions

    def every(cls: type) -> list[type]:
        return [cls, *(s for sub in cls.__subclasses__() for s in every(sub))]

    samples = {
        _exceptions.StorageCorruptError: {"path": "tables/x.parquet"},
        _exceptions.ServerConnectionError: {"sent": True},
    }
    checked = 0
    for cls in every(_exceptions.StemeLakeError):
        if cls in samples:
            error = cls("what went wrong", **samples[cls])
        else:
            try:
                error = cls("what went wrong")
            except TypeError:
                error = cls.__new__(cls)
                Exception.__init__(error, "what went wrong")
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is cls and str(back) == str(error)
        assert back.__dict__ == error.__dict__
        checked += 1
    assert checked >= 20
