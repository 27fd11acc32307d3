"""Remembered current answers equal answers resolved afresh.

Every key is remembered here (``REMEMBER_ROWS`` is lowered), so every current
recency question may be answered from memory: resolved by the vectorized
lenses (``HOT_ROWS`` lowered too: candidates as a frame) or by the Python
lenses (candidates as rows). After each kind of write, the current answer must
equal the same question asked as of the answer's own time, which is always
resolved afresh (an as-of question is never remembered).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import steme_lake as sl
from steme_lake import LakeOptions
from steme_lake.query import _index
from steme_lake.query._options import ResolutionOptions

KEY = ("svc/auth/jwt", "alg")
OPTS = ResolutionOptions(half_life_days=2.0)


def _seen(answer: sl.Answer) -> tuple:
    return (
        answer.status,
        answer.assertion,
        answer.value,
        answer.confidence,
        answer.lifecycle,
        tuple(c.assertion for c in answer.candidates),
        tuple(c.effective_confidence for c in answer.candidates),
        answer.contributing,
    )


def _small_keys_remembered(monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    monkeypatch.setattr(_index, "REMEMBER_ROWS", 2)
    if how == "frames":
        monkeypatch.setattr(_index, "HOT_ROWS", 2)


@pytest.fixture(params=["frames", "rows"])
def lake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> sl.Lake:
    _small_keys_remembered(monkeypatch, request.param)
    lake = sl.open(tmp_path / "lake", options=LakeOptions(state_index="eager", resolution=OPTS))
    for i in range(6):
        lake.assert_(*KEY, f"v{i}", agent=f"ag{i % 3}", source=f"https://s/{i}", confidence=0.9)
    return lake


def _remembered(lake: sl.Lake, slot: tuple) -> bool:
    index = lake._index  # the test checks the index's own memory
    assert index is not None
    with index.lock:
        return index.current.get(slot, 2**62) is not None


def _forget_rows(lake: sl.Lake) -> None:
    """Drop the busy keys' kept rows: the next question reads them afresh."""
    index = lake._index
    assert index is not None
    with index.lock:
        index.current._kept.clear()


def _check(lake: sl.Lake, **filters: object) -> sl.Answer:
    """The current answer (maybe from memory) equals the same as-of question."""
    now = lake.query(*KEY, agent="t", **filters)  # type: ignore[arg-type]
    _forget_rows(lake)
    fresh = lake.query(*KEY, agent="t", as_of=now.as_of, **filters)  # type: ignore[arg-type]
    assert _seen(now) == _seen(fresh)
    # the same as the answer's candidates read as a frame
    assert now.candidates.frame.equals(fresh.candidates.frame)
    return now


FILTERS = pytest.mark.parametrize(
    "filters",
    [{}, {"lifecycle": ["approved", "proposed"]}, {"include_superseded": True}],
    ids=["plain", "lifecycle", "superseded"],
)


def _slot(filters: dict) -> tuple:
    """Where the current answer to ``KEY`` with ``filters`` is remembered."""
    stages = filters.get("lifecycle")
    return (
        *KEY,
        None if stages is None else tuple(stages),
        filters.get("include_superseded", False),
    )


@FILTERS
def test_remembered_answers_follow_every_write(lake: sl.Lake, filters: dict) -> None:
    slot = _slot(filters)
    first = _check(lake, **filters)
    assert _remembered(lake, slot)
    time.sleep(0.01)  # the clock moves: confidences decay, the answer is the same
    again = _check(lake, **filters)
    assert again.assertion == first.assertion and again.confidence < first.confidence
    assert _remembered(lake, slot)
    winner = again.assertion
    assert winner is not None

    writes = [
        lambda: lake.assert_("svc/other", "alg", "x", agent="ag0", source="https://o"),
        lambda: lake.vote(winner, agent="ag1", weight=1.0),  # recency does not weigh votes
        lambda: lake.set_lifecycle(winner, "deprecated", agent="ag0"),
        lambda: lake.confirm(winner, agent="ag2"),
        lambda: lake.supersede(winner, agent="ag1", kind="invalidate", reason="wrong"),
        lambda: lake.assert_(*KEY, "v-new", agent="ag2", source="https://s/new"),
    ]
    # (a new assertion on the key is taken into the answer: see the next test)
    stale = [False, False, True, True, True, False]
    for write, makes_stale in zip(writes, stale, strict=True):
        write()
        assert _remembered(lake, slot) is not makes_stale
        _check(lake, **filters)
        assert _remembered(lake, slot)
    lake.close()


@FILTERS
def test_new_assertions_on_a_remembered_key_keep_it_remembered(
    lake: sl.Lake, filters: dict
) -> None:
    """Agents keep writing to a busy key: each new assertion joins its
    remembered answers (the winner when it is the latest), so the next question
    is still answered from memory, and equals the answer resolved afresh:
    one, several at one microsecond (ties go to the greater id), one in a stage
    the filter leaves out, many at once. A lifecycle change is not a new
    assertion (the answer is stale), nor is a new assertion that a supersession
    is aimed at already (its source's)."""
    slot = _slot(filters)
    first = _check(lake, **filters)
    assert _remembered(lake, slot)

    def same_time() -> None:  # several at one microsecond: ties go to the greater id
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"
        lake.assert_many(
            [
                {"subject": KEY[0], "predicate": KEY[1], "object": f"v-tie{i}", "at": stamp}
                | {"agent": f"ag{i % 3}", "source": f"https://s/t{i}"}
                for i in range(4)
            ]
        )

    writes = [
        lambda: lake.assert_(*KEY, "v-now", agent="ag1", source="https://s/a"),
        same_time,
        lambda: lake.assert_(
            *KEY, "v-draft", agent="ag1", source="https://s/c", lifecycle="deprecated"
        ),
        lambda: lake.assert_many(
            [
                {"subject": KEY[0], "predicate": KEY[1], "object": f"v-many{i}"}
                | {"agent": f"ag{i % 3}", "source": f"https://s/m{i}"}
                for i in range(5)
            ]
        ),
    ]
    for write in writes:
        write()
        assert _remembered(lake, slot)
        _check(lake, **filters)
        assert _remembered(lake, slot)
    # a lifecycle change of a candidate is not a new assertion: the answer is stale
    lake.set_lifecycle(first.assertion, "approved", agent="ag0")
    assert not _remembered(lake, slot)
    _check(lake, **filters)
    # a new assertion from a source superseded already: stale (worked out afresh)
    lake.supersede(source="https://s/gone", agent="ag1", kind="invalidate", reason="bad feed")
    _check(lake, **filters)
    assert _remembered(lake, slot)
    lake.assert_(*KEY, "v-gone", agent="ag1", source="https://s/gone")
    assert not _remembered(lake, slot)
    _check(lake, **filters)
    assert _remembered(lake, slot)
    lake.close()


@pytest.mark.parametrize("how", ["frames", "rows"])
def test_without_decay_a_grown_answer_is_the_fresh_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """Without a half-life nothing is worked out again when asked: the new
    candidates' confidences must be right when they are taken in."""
    _small_keys_remembered(monkeypatch, how)
    opts = LakeOptions(state_index="eager", resolution=ResolutionOptions(half_life_days=None))
    lake = sl.open(tmp_path / "lake", options=opts)
    for i in range(4):
        lake.assert_(*KEY, f"v{i}", agent=f"ag{i % 3}", source=f"https://s/{i}", confidence=0.9)
    _check(lake)
    for i in range(3):
        lake.assert_(*KEY, f"w{i}", agent="ag1", source=f"https://s/w{i}", confidence=0.3 + i / 10)
        assert _remembered(lake, (*KEY, None, False))
        assert _check(lake).confidence == pytest.approx(0.3 + i / 10)
    lake.close()


def test_a_bulk_import_makes_the_answers_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New assertions on more watched keys than `GROW_KEYS` in one commit (an
    import) make their answers stale, worked out again when asked; on fewer,
    they join them."""
    _small_keys_remembered(monkeypatch, "frames")
    monkeypatch.setattr(_index, "GROW_KEYS", 1)
    lake = sl.open(tmp_path / "lake", options=LakeOptions(state_index="eager", resolution=OPTS))
    other = ("svc/db/pool", "max_size")
    for key in (KEY, other):
        for i in range(4):
            lake.assert_(*key, f"v{i}", agent=f"ag{i % 3}", source=f"https://{key[0]}/{i}")
        lake.query(*key, agent="t")
        assert _remembered(lake, (*key, None, False))

    def write(*keys: tuple[str, str]) -> None:
        lake.assert_many(
            [
                {"subject": s, "predicate": p, "object": "new", "agent": "ag1"}
                | {"source": f"https://{s}/{time.time_ns()}"}
                for s, p in keys
            ]
        )

    write(KEY)  # one watched key: joined
    assert _remembered(lake, (*KEY, None, False)) and _remembered(lake, (*other, None, False))
    write(KEY, other)  # two: stale
    assert not _remembered(lake, (*KEY, None, False))
    assert not _remembered(lake, (*other, None, False))
    _check(lake)
    lake.close()


def test_a_question_read_before_a_write_is_not_stored_after_it() -> None:
    """A question that read a key's rows before new assertions arrived holds an
    old version: its answer (without them) is not stored over the grown one."""
    from steme_lake.query import _current

    memory = _current.CurrentAnswers()
    slot = ("s", "p", None, False)
    first = memory.watch("s\x1fp", ["a"], frame=False)
    from steme_lake.query._resolve import PointResult

    result = PointResult("no_answer", None, None, None, None, _current.Candidates.of_rows([]))
    memory.store(slot, first, 10, result)
    assert memory.get(slot, 10) is result
    late = memory.watch("s\x1fp", ["a"], frame=False)  # a reader, before the write
    memory.grow({"s\x1fp": []}, hot_rows=1000)  # nothing new: nothing moves
    memory.grow({"other": [{"id": "b", "recorded_at": 11}]}, hot_rows=1000)  # not watched
    assert memory.holds(late)
    row = {"id": "b", "recorded_at": 11, "lifecycle": "proposed", "confidence": 0.5}
    row |= {"object": '"x"', "subject": "s", "predicate": "p"}
    memory._entries.clear()  # (the stand-in result has no candidates to grow)
    memory.grow({"s\x1fp": [row]}, hot_rows=1000)
    assert not memory.holds(late)
    memory.store(slot, late, 12, result)
    assert memory.get(slot, 12) is None
    assert memory._ids["s\x1fp"] == ["a", "b"] and memory._key_of["b"] == "s\x1fp"


def test_other_questions_are_not_remembered(lake: sl.Lake) -> None:
    """Other lenses, min_confidence and as-of questions are resolved afresh."""
    lake.query(*KEY, agent="t", lens="consensus")
    lake.query(*KEY, agent="t", min_confidence=0.1)
    lake.query(*KEY, agent="t", as_of="2100-01-01T00:00:00Z")
    index = lake._index
    assert index is not None
    assert not index.current._entries
    lake.close()


def test_a_row_dated_ahead(lake: sl.Lake) -> None:
    """A row written with an `at` a little ahead of the clock: "now" is never
    earlier than the latest write, so it is seen at once, and the remembered
    answer stays right as the clock passes it."""
    ahead = time.time() + 0.3
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ahead))
    stamp += f".{int(ahead % 1 * 1e6):06d}Z"
    late = lake.assert_(*KEY, "v-late", agent="ag0", source="https://late", at=stamp)
    assert _check(lake).assertion == late
    time.sleep(max(0.0, ahead - time.time()) + 0.05)
    assert _check(lake).assertion == late
    lake.close()


@pytest.mark.parametrize("how", ["frames", "rows"])
def test_the_busiest_keys_are_worked_out_after_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """Once the index is built in the background, the busy keys' default
    answers are worked out before anyone asks (and not audited: nobody asked)."""
    _small_keys_remembered(monkeypatch, how)
    path = tmp_path / "lake"
    with sl.open(path, options=LakeOptions(state_index="off", resolution=OPTS)) as lake:
        for i in range(6):
            lake.assert_(*KEY, f"v{i}", agent=f"ag{i % 3}", source=f"https://s/{i}")
        lake.assert_("svc/quiet", "alg", "x", agent="ag0", source="https://q")
    lake = sl.open(path, options=LakeOptions(state_index="background", resolution=OPTS))
    assert lake._index_thread is not None
    lake._index_thread.join()
    assert _remembered(lake, (*KEY, None, False))
    assert not _remembered(lake, ("svc/quiet", "alg", None, False))
    assert lake.audit.collect().height == 0
    _check(lake)
    lake.close()


def test_what_is_remembered_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A key answered by the Python lenses counts ``ROW_COST`` frame rows a
    candidate; past ``MAX_ROWS`` the key asked about least recently goes."""
    from steme_lake.query import _current

    monkeypatch.setattr(_current, "MAX_ROWS", 100)
    memory = _current.CurrentAnswers()
    memory.watch("busy", [f"b{i}" for i in range(60)], frame=True)  # counts 60
    memory.watch("small", [f"s{i}" for i in range(8)], frame=False)  # counts 40
    assert set(memory._versions) == {"busy", "small"}
    memory.watch("busy", [f"b{i}" for i in range(60)], frame=True)  # asked again: newest
    memory.watch("other", ["o1"], frame=False)  # 105 > 100: "small" goes, not "busy"
    assert set(memory._versions) == {"busy", "other"}
    memory.touch_ids(["s1"])  # a forgotten key's ids are no longer watched
    assert memory._rows == 65


def test_the_warm_up_waits_while_questions_are_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Point questions come first: the warm-up works out nothing while one was
    asked lately, and goes on once they stop; a longer question (an impact,
    say) does not hold it up."""
    import threading

    from steme_lake.lake import _quiet

    _small_keys_remembered(monkeypatch, "rows")
    monkeypatch.setattr(_quiet, "QUIET_S", 0.05)
    lake = sl.open(tmp_path / "lake", options=LakeOptions(state_index="eager", resolution=OPTS))
    for i in range(6):
        lake.assert_(*KEY, f"v{i}", agent=f"ag{i % 3}", source=f"https://s/{i}")
    warm = threading.Thread(target=lake._warm, args=(threading.Event(),))
    lake._quiet.point_ns = time.perf_counter_ns() + 3_600 * 10**9  # "asked just now", for an hour
    warm.start()
    warm.join(0.3)
    assert warm.is_alive() and not _remembered(lake, (*KEY, None, False))
    lake._quiet.point_ns = 0  # the questions stop
    with lake._quiet.asking():  # an impact, being answered: the warm-up goes on
        warm.join(5)
        assert not warm.is_alive() and _remembered(lake, (*KEY, None, False))
    lake.close()


def test_a_busy_keys_kept_rows_answer_as_rows_read_afresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A busy key's rows, kept after a current question, answer every lens as
    of any time as the rows read again would, after each kind of write
    (votes do not touch the key: they are never kept)."""
    _small_keys_remembered(monkeypatch, "frames")
    lake = sl.open(tmp_path / "lake", options=LakeOptions(state_index="eager", resolution=OPTS))
    ids = [
        lake.assert_(*KEY, f"v{i}", agent=f"ag{i % 3}", source=f"https://s/{i}", confidence=0.9)
        for i in range(6)
    ]
    middle = lake.query(*KEY, agent="t").as_of
    for i in range(6, 9):
        ids.append(lake.assert_(*KEY, f"v{i}", agent=f"ag{i % 3}", source=f"https://s/{i}"))
    index = lake._index
    assert index is not None
    key = KEY[0] + _index.SEP + KEY[1]

    questions = [
        (lens, as_of)
        for lens in ("recency", "consensus", "authority", "skeptic")
        for as_of in (middle, "2100-01-01T00:00:00Z")
    ]

    def asked() -> dict:
        return {q: _seen(lake.query(*KEY, agent="t", lens=q[0], as_of=q[1])) for q in questions}

    def kept_and_used() -> None:
        index.rows(*KEY, watch=True)  # as a current question reads them: kept
        with index.lock:
            assert index.current.rows_of(key) is not None
        asked()  # every lens reads the kept rows (and keeps what it gathers)

    kept_and_used()
    writes = [
        lambda: lake.vote(ids[-1], agent="ag1", weight=1.0),
        lambda: lake.vote(ids[2], agent="ag2", weight=-1.0),
        lambda: lake.set_lifecycle(ids[-1], "deprecated", agent="ag0"),
        lambda: lake.confirm(ids[1], agent="ag2"),
        lambda: lake.record_trust("ag2", "", 5.0),
        lambda: lake.supersede(ids[-2], agent="ag1", kind="invalidate", reason="wrong"),
        lambda: lake.assert_(*KEY, "v-new", agent="ag2", source="https://s/new"),
    ]
    for n, write in enumerate(writes):
        write()
        kept = asked()
        _forget_rows(lake)
        assert kept == asked(), n
        kept_and_used()
    lake.close()
