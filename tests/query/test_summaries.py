"""Busy keys answered from their summaries equal answers resolved afresh.

A summary (`_current.Summary`) is a busy key's current recency answer to the
default question without its candidates, worked out for every busy key in one
vectorized pass (`StateIndex.summarize`). Here every key is busy
(``REMEMBER_ROWS`` lowered), resolved by the vectorized lenses (``HOT_ROWS``
lowered: a frame) or by the Python lenses (rows), with decay, so confidences
move with the clock. Each answer from a summary must equal the same question
asked as of its own time (always resolved afresh), to the bit, candidates
included (worked out when read).
"""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl
import pytest

import steme_lake as sl
from steme_lake import LakeOptions
from steme_lake._utils.timeparse import now_us
from steme_lake.query import _current, _index
from steme_lake.query._answer import Candidates
from steme_lake.query._options import ResolutionOptions

OPTS = ResolutionOptions(half_life_days=2.0)
KEYS = [(f"svc/{i}/auth", "alg") for i in range(5)]


def _seen(answer: sl.Answer) -> tuple:
    return (
        answer.status,
        answer.assertion,
        answer.value,
        answer.confidence,
        answer.lifecycle,
        answer.contributing,
        answer.sources,
        len(answer.candidates),
    )


def _candidates(answer: sl.Answer) -> tuple:
    return (
        tuple(c.assertion for c in answer.candidates),
        tuple(c.effective_confidence for c in answer.candidates),
    )


@pytest.fixture(params=["frames", "rows"])
def lake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> sl.Lake:
    monkeypatch.setattr(_index, "REMEMBER_ROWS", 2)
    if request.param == "frames":
        monkeypatch.setattr(_index, "HOT_ROWS", 2)
    lake = sl.open(tmp_path / "lake", options=LakeOptions(state_index="eager", resolution=OPTS))
    ids: dict[int, list[str]] = {}
    for n, key in enumerate(KEYS):
        ids[n] = [
            lake.assert_(
                *key, f"v{i}", agent=f"ag{i % 3}", source=f"https://s/{n}/{i % 2}", confidence=0.9
            )
            for i in range(6)
        ]
    # What the summaries must take into account: stages, uses, supersessions
    # of an id, of a source, of an agent's window, and a key left with none.
    lake.set_lifecycle(ids[0][5], "deprecated", agent="ag0")
    lake.set_lifecycle(ids[1][2], "approved", agent="ag0")
    lake.confirm(ids[1][5], agent="ag1")
    lake.supersede(ids[2][5], agent="ag1", kind="invalidate", reason="wrong")
    lake.supersede(agent="ag1", kind="invalidate", reason="a bad feed", source="https://s/3/1")
    last = lake._wal.last_time  # (an agent's window: what it wrote up to now)
    lake.assert_("svc/elsewhere", "alg", "x", agent="ag9", source="https://s/9")
    lake.supersede(
        agent="ag1",
        kind="invalidate",
        reason="ag9 was compromised",
        target_agent="ag9",
        window=(None, None),
    )
    del last
    for i in ids[4]:
        lake.supersede(i, agent="ag1", kind="invalidate", reason="all wrong")
    return lake


def _index_of(lake: sl.Lake) -> _index.StateIndex:
    index = lake._index  # the tests read the index's own memory
    assert index is not None
    return index


def _summarize(lake: sl.Lake) -> int:
    index = _index_of(lake)
    with index.lock:  # nothing remembered: questions go to the summaries
        index.current._entries.clear()
        index.current._kept.clear()
    return index.summarize(now_us(), OPTS)


def _summary(lake: sl.Lake, key: tuple[str, str]) -> _current.Summary | None:
    index = _index_of(lake)
    with index.lock:
        return index.current.summary(*key, 2**62)


def _unwatch(lake: sl.Lake) -> None:
    """Forget the watched keys (not their summaries)."""
    index = _index_of(lake)
    with index.lock:
        for key in list(index.current._versions):
            index.current._forget(key)


def _check(lake: sl.Lake, key: tuple[str, str], *, from_summary: bool = True) -> sl.Answer:
    """The current answer equals the same question as of its time, read afresh."""
    index = _index_of(lake)
    with index.lock:
        index.current._entries.clear()  # (an answer remembered whole would be used first)
    now = lake.query(*key, agent="t")
    assert isinstance(now.candidates, Candidates)
    assert now.candidates.is_deferred is from_summary
    fresh = lake.query(*key, agent="t", as_of=now.as_of)
    assert _seen(now) == _seen(fresh)
    assert now.candidates.is_deferred is from_summary  # (nothing above read them)
    assert _candidates(now) == _candidates(fresh)
    assert now.candidates.frame.equals(fresh.candidates.frame)
    return now


def test_summaries_answer_as_a_fresh_resolution_would(lake: sl.Lake) -> None:
    assert _summarize(lake) == len(KEYS)
    answers = [_check(lake, key) for key in KEYS]
    assert answers[4].status == "no_answer" and len(answers[4].candidates) == 0
    assert answers[0].lifecycle == "deprecated"
    time.sleep(0.01)  # the clock moves: the winner's confidence decays, to the bit
    again = _check(lake, KEYS[1])
    assert again.confidence is not None and answers[1].confidence is not None
    assert again.confidence < answers[1].confidence


def test_a_new_assertion_grows_the_summary(lake: sl.Lake) -> None:
    _summarize(lake)
    before = _check(lake, KEYS[0])
    new = lake.assert_(*KEYS[0], "v-new", agent="ag2", source="https://s/new")
    summary = _summary(lake, KEYS[0])
    assert summary is not None and summary.winner is not None
    assert summary.winner["id"] == new and summary.count == len(before.candidates) + 1
    assert _check(lake, KEYS[0]).assertion == new
    # a key left with no candidate gets its first
    first = lake.assert_(*KEYS[4], "back", agent="ag2", source="https://s/back")
    assert _check(lake, KEYS[4]).assertion == first


@pytest.mark.parametrize("how", ["lifecycle", "confirm", "winner", "other"])
def test_what_aims_at_a_keys_assertion_drops_its_summary(lake: sl.Lake, how: str) -> None:
    _summarize(lake)
    answer = _check(lake, KEYS[0])
    assert answer.assertion is not None
    loser = next(c.assertion for c in answer.candidates if c.assertion != answer.assertion)
    _unwatch(lake)  # (reading the candidates watched the key: only the id map finds it now)
    if how == "lifecycle":
        lake.set_lifecycle(loser, "approved", agent="ag0")
    elif how == "confirm":
        lake.confirm(loser, agent="ag0")
    elif how == "winner":
        lake.supersede(answer.assertion, agent="ag0", kind="invalidate", reason="wrong")
    else:  # a supersession of anything may touch any key
        lake.supersede(agent="ag0", kind="invalidate", reason="x", source="https://elsewhere")
    assert _summary(lake, KEYS[0]) is None
    assert (_summary(lake, KEYS[1]) is None) is (how in ("winner", "other"))
    _check(lake, KEYS[0], from_summary=False)  # resolved afresh, and summarized again
    assert _summary(lake, KEYS[0]) is not None
    _check(lake, KEYS[0])
    # its assertions are still found: a later change drops the new summary too
    _unwatch(lake)
    lake.set_lifecycle(loser, "deprecated", agent="ag0")
    assert _summary(lake, KEYS[0]) is None


def test_candidates_read_later_are_those_of_the_answers_time(lake: sl.Lake) -> None:
    _summarize(lake)
    answer = lake.query(*KEYS[1], agent="t")
    assert isinstance(answer.candidates, Candidates) and answer.candidates.is_deferred
    lake.assert_(*KEYS[1], "later", agent="ag2", source="https://s/later")
    lake.set_lifecycle(answer.assertion or "", "deprecated", agent="ag0")
    fresh = lake.query(*KEYS[1], agent="t", as_of=answer.as_of)
    assert _candidates(answer) == _candidates(fresh)


@pytest.mark.parametrize("how", ["assertion", "lifecycle"])
def test_a_write_while_summaries_are_worked_out_leaves_its_key_out(
    lake: sl.Lake, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    index = _index_of(lake)
    target = _check(lake, KEYS[0], from_summary=False).assertion
    assert target is not None
    taken = index.tables

    def tables_then_a_write() -> object:
        view = taken()  # the view summaries are worked out from: the write is not in it
        if how == "assertion":
            lake.assert_(*KEYS[0], "meanwhile", agent="ag2", source="https://s/m")
        else:
            lake.set_lifecycle(target, "approved", agent="ag0")
        return view

    monkeypatch.setattr(index, "tables", tables_then_a_write)
    with index.lock:
        index.current._entries.clear()
        index.current._sums.clear()
    assert index.summarize(now_us(), OPTS) == len(KEYS) - 1
    assert _summary(lake, KEYS[0]) is None and _summary(lake, KEYS[1]) is not None
    monkeypatch.undo()
    _check(lake, KEYS[0], from_summary=False)


def test_no_summary_when_a_row_is_dated_after_it(lake: sl.Lake) -> None:
    index = _index_of(lake)
    assert index.summarize(index.latest - 1, OPTS) == 0


def test_the_id_map_hashes_as_the_bulk_pass_does() -> None:
    ids = [f"{i:064x}" for i in range(1000)]
    bulk = pl.DataFrame({"id": ids}).select(pl.col("id").hash())["id"].to_numpy()
    assert (bulk == _current.id_hashes(ids)).all()
    idmap = _current._IdMap()
    for start in range(0, 1000, 100):  # chunks merged as they come
        idmap.add(
            _current.id_hashes(ids[start : start + 100]), pl.Series([start // 100] * 100).to_numpy()
        )
        idmap.key_number(f"k{start // 100}")
    assert idmap.size == 1000
    assert idmap.keys_of(_current.id_hashes([ids[5], ids[950]])) == {"k0", "k9"}
    assert idmap.keys_of(_current.id_hashes(["nope"])) == set()


def test_a_lake_works_out_summaries_once_its_index_is_ready(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_index, "REMEMBER_ROWS", 2)
    path = tmp_path / "lake"
    with sl.open(path) as lake:
        for i in range(4):
            lake.assert_(*KEYS[0], f"v{i}", agent="a", source="https://s")
    with sl.open(path) as lake:  # (the index is built in the background)
        deadline = time.monotonic() + 30
        while _index_of_when_ready(lake) is None or _summary(lake, KEYS[0]) is None:
            assert time.monotonic() < deadline, "no summary 30 s after open"
            time.sleep(0.05)
        answer = lake.query(*KEYS[0], agent="t")
        assert answer.value == "v3"


def _index_of_when_ready(lake: sl.Lake) -> _index.StateIndex | None:
    return lake._index if lake.status().state_index == "ready" else None


def test_a_server_answers_a_hot_summarized_key_beside_its_batches(
    lake: sl.Lake, request: pytest.FixtureRequest
) -> None:
    """Its candidates are worked out when a server lists the best few: as slow
    as a fresh answer, so not inside a batch."""
    hot = "frames" in request.node.callspec.id
    assert not lake._is_busy(*KEYS[0])
    _summarize(lake)
    assert lake._is_busy(*KEYS[0]) is hot
    assert not lake._is_busy("svc/none", "alg")
