"""Background work (the checkpoint's check, the busy keys' warm-up) gives way to
writes as to questions, but a steady stream of writes holds it off for no longer
than `WRITE_PATIENCE_S` at a time; questions hold it off while they last."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import steme_lake as sl
from steme_lake.lake import _quiet
from steme_lake.lake._quiet import QUIET_S, Quiet


def _waiter(quiet: Quiet, **kw: bool) -> tuple[threading.Thread, threading.Event, list[float]]:
    stop, done = threading.Event(), []
    started = time.perf_counter()
    thread = threading.Thread(
        target=lambda: (quiet.wait(stop, **kw), done.append(time.perf_counter() - started))
    )
    thread.start()
    return thread, stop, done


@pytest.mark.parametrize("points_only", [False, True])
def test_writes_hold_background_work_off_for_a_while(
    monkeypatch: pytest.MonkeyPatch, points_only: bool
) -> None:
    monkeypatch.setattr(_quiet, "WRITE_PATIENCE_S", 1.0)
    quiet = Quiet()
    quiet.mark_write()
    thread, _, done = _waiter(quiet, points_only=points_only)
    deadline = time.perf_counter() + 0.3
    while time.perf_counter() < deadline:  # writes keep coming: it waits
        quiet.mark_write()
        time.sleep(QUIET_S / 5)
    assert thread.is_alive()
    while time.perf_counter() < deadline + 5 and thread.is_alive():  # ... but not for good
        quiet.mark_write()
        time.sleep(QUIET_S / 5)
    thread.join(1)
    assert not thread.is_alive()
    assert 1.0 <= done[0] < 5


def test_writes_that_stop_let_it_go_at_once() -> None:
    quiet = Quiet()
    quiet.mark_write()
    thread, _, done = _waiter(quiet)
    thread.join(2)
    assert not thread.is_alive() and done[0] < 0.5


def test_a_question_holds_it_off_beyond_the_writes_patience(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_quiet, "WRITE_PATIENCE_S", 0.1)
    quiet = Quiet()
    with quiet.asking():
        quiet.mark_write()
        thread, _, _ = _waiter(quiet)
        thread.join(0.5)
        assert thread.is_alive()
    thread.join(2)
    assert not thread.is_alive()


def test_the_lake_marks_its_writes(tmp_path: Path) -> None:
    with sl.open(tmp_path / "lake") as lake:
        before = lake._quiet.write_ns
        lake.assert_("svc/a", "owner", "team-a", agent="a", source="s")
        after = lake._quiet.write_ns
        lake.assert_many([{"subject": "svc/b", "predicate": "owner", "object": "b",
                           "agent": "a", "source": "s"}])  # fmt: skip
        assert before < after < lake._quiet.write_ns
