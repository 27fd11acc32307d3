"""Threads and lake objects sharing one lake inside one process."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import polars as pl

import steme_lake as sl
from steme_lake import LakeOptions


class TestRetiredSegments:
    """A writer whose WAL segments were retired by another's flush catches up and writes."""

    def test_commit_after_foreign_flush(self, lake_path: Path) -> None:
        small = LakeOptions(segment_bytes=2048)
        a = sl.open(lake_path, options=small)
        b = sl.open(lake_path, options=small)
        try:
            a.assert_("s", "p", 0, agent="a", source="x")
            for i in range(30):
                b.assert_("s", "p", i + 1, agent="b", source="x")
            b.flush()  # retires the segment a's cursor sits in
            a.assert_("s", "p", 31, agent="a", source="x")
            a.vote(b.assertions.select("id").head(1).collect().item(), agent="a")
            got = a.assertions.collect()
            assert sorted(int(x) for x in got["object"]) == list(range(32))
            assert got["seq"].n_unique() == 32
        finally:
            a.close()
            b.close()


class TestThreads:
    """Writers, a flusher and a reader on one lake object, at once."""

    def test_write_flush_read(self, lake_path: Path) -> None:
        # Default retention: compacted-away files stay for readers still using them.
        opts = LakeOptions(segment_bytes=4096, compact_min_files=3)
        lake = sl.open(lake_path, options=opts)
        other = sl.open(lake_path, options=opts)  # a second lake object: its own file handles
        errors: list[BaseException] = []
        stop = threading.Event()

        def guard(fn: Callable[[], None]) -> Callable[[], None]:
            def run() -> None:
                try:
                    fn()
                except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                    errors.append(exc)

            return run

        def writer(tag: str, target: sl.Lake) -> None:
            for i in range(60):
                target.assert_(f"t/{tag}", "n", i, agent=tag, source="x")

        def flusher() -> None:
            while not stop.is_set():
                other.flush()
                lake.flush()

        def reader() -> None:
            while not stop.is_set():
                lake.assertions.select(pl.len()).collect()

        workers = [threading.Thread(target=guard(lambda t=t: writer(t, lake))) for t in "abc"]
        workers.append(threading.Thread(target=guard(lambda: writer("d", other))))
        helpers = [threading.Thread(target=guard(flusher)), threading.Thread(target=guard(reader))]
        for t in workers + helpers:
            t.start()
        for t in workers:
            t.join()
        stop.set()
        for t in helpers:
            t.join()
        assert not errors, errors
        for target in (lake, other):
            rows = target.assertions.collect()
            assert rows.height == 240
            assert rows["id"].n_unique() == 240
            # Concurrent one-row writes may share a frame (and its sequence number);
            # the numbers have no gaps.
            seqs = sorted(set(rows["seq"].to_list()))
            assert seqs == list(range(1, len(seqs) + 1))
            assert len(seqs) <= 240
        lake.close()
        other.close()


class TestIndexFollowsOtherWriters:
    """The current-state index sees other lake objects' commits, flushes and retirements."""

    def test_point_queries_see_foreign_writes(self, lake_path: Path) -> None:
        reader = sl.open(lake_path, options=LakeOptions(state_index="eager", segment_bytes=2048))
        writer = sl.open(lake_path, options=LakeOptions(state_index="off", segment_bytes=2048))
        try:
            assert reader.query("auth/jwt", "alg", agent="r").status == "no_answer"
            first = writer.assert_("auth/jwt", "alg", "RS256", agent="w", source="x")
            assert reader.query("auth/jwt", "alg", agent="r").assertion == first
            for i in range(30):  # several segments, then a flush that retires them
                writer.assert_("other", "n", i, agent="w", source="x")
            second = writer.assert_("auth/jwt", "alg", "ES256", agent="w", source="y")
            writer.flush()
            ans = reader.query("auth/jwt", "alg", agent="r")
            assert (ans.assertion, len(ans.candidates)) == (second, 2)
            writer.supersede(second, agent="h", kind="invalidate", reason="r")
            assert reader.query("auth/jwt", "alg", agent="r").assertion == first
            assert reader.status().state_index == "ready"
        finally:
            reader.close()
            writer.close()

    def test_a_batch_of_questions_catches_up_once(self, lake_path: Path) -> None:
        """A server's batch catches up with other writers once, at its start: what
        was acknowledged before is seen by every question of the batch."""
        reader = sl.open(lake_path, options=LakeOptions(state_index="eager"))
        writer = sl.open(lake_path, options=LakeOptions(state_index="off"))
        try:
            first = writer.assert_("auth/jwt", "alg", "RS256", agent="w", source="x")
            calls = []
            real = reader._refresh
            reader._refresh = lambda: calls.append(1) or real()  # type: ignore[method-assign]
            with reader._batch_reads():
                answers = [reader.query("auth/jwt", "alg", agent="r") for _ in range(3)]
            assert [a.assertion for a in answers] == [first] * 3
            assert len(calls) == 1  # once for the batch, not once per question
            second = writer.assert_("auth/jwt", "alg", "ES256", agent="w", source="y")
            assert reader.query("auth/jwt", "alg", agent="r").assertion == second
            assert len(calls) == 2  # outside a batch, each question catches up
        finally:
            reader.close()
            writer.close()
