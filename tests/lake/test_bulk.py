"""`assert_many` given columns (the columnar path) against the same rows as dicts
(the row path): the same stored records, the same ids, the same errors."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import steme_lake as sl
from steme_lake import LakeOptions
from steme_lake._exceptions import StemeLakeError
from steme_lake.lake._bulk import bulk_assertions, bulk_audit, bulk_votes, stamp
from steme_lake.model.ids import content_json, record_id
from steme_lake.model.schema import LIFECYCLE_STAGES, RecordKind

START = datetime(2026, 3, 1, tzinfo=UTC)
HEX = "0123456789abcdef"

# Text that exercises the JSON encoder: quotes, backslashes, control characters,
# non-ASCII, Python-only white space (\x1c-\x1f), and plain ASCII most of the time.
text = st.one_of(
    st.text(alphabet="abcxyz/._-0123456789", min_size=1, max_size=12),
    st.text(
        alphabet=st.sampled_from(
            ['"', "\\", "\n", "\t", "\x00", "\x1f", "é", "雪", " ", "a", "\u2028"]
        ),
        min_size=1,
        max_size=6,
    ),
)
readable = st.text(alphabet="abcxyz/._-0123456789", min_size=1, max_size=12)


@st.composite
def frames(draw: Any) -> pl.DataFrame:
    n = draw(st.integers(1, 12))
    kind = draw(st.sampled_from(["str", "int", "bool", "mixed_null"]))
    if kind == "str":
        objects: list[Any] = draw(st.lists(text, min_size=n, max_size=n))
    elif kind == "int":
        objects = draw(st.lists(st.integers(-(2**62), 2**62), min_size=n, max_size=n))
    elif kind == "bool":
        objects = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    else:
        objects = draw(st.lists(st.one_of(st.none(), readable), min_size=n, max_size=n))
    columns: dict[str, Any] = {
        "subject": draw(st.lists(text, min_size=n, max_size=n)),
        "predicate": draw(st.lists(readable, min_size=n, max_size=n)),
        "object": objects,
        "agent": draw(st.lists(text, min_size=n, max_size=n)),
    }
    if draw(st.booleans()):
        columns["confidence"] = draw(
            st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=n, max_size=n)
        )
    if draw(st.booleans()):
        columns["lifecycle"] = draw(
            st.lists(st.sampled_from(LIFECYCLE_STAGES), min_size=n, max_size=n)
        )
    if draw(st.booleans()):
        columns["source_hash"] = draw(
            st.lists(st.text(alphabet=HEX, min_size=64, max_size=64), min_size=n, max_size=n)
        )
    else:
        columns["source"] = draw(st.lists(text, min_size=n, max_size=n))
    if draw(st.booleans()):
        columns["epoch"] = draw(st.lists(st.one_of(st.none(), readable), min_size=n, max_size=n))
    steps = draw(st.lists(st.integers(1, 3_600_000_000), min_size=n, max_size=n))
    at, t = [], START
    for step in steps:
        t += timedelta(microseconds=step)
        at.append(t)
    columns["at"] = at
    return pl.DataFrame(columns, strict=False)


def _stored(lake: sl.Lake) -> pl.DataFrame:
    return lake.assertions.sort("seq", "recorded_at", "id").collect().drop("seq")


class TestSameAsRows:
    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(df=frames())
    def test_columns_and_dicts_store_the_same_records(self, df: pl.DataFrame) -> None:
        taken = bulk_assertions(df) is not None
        with (
            tempfile.TemporaryDirectory() as tmp,
            sl.open(Path(tmp) / "a", options=LakeOptions(state_index="off")) as a,
            sl.open(Path(tmp) / "b", options=LakeOptions(state_index="off")) as b,
        ):
            try:
                expected = b.assert_many(df.to_dicts())
            except StemeLakeError as exc:  # blank text, say: both paths refuse it
                with pytest.raises(type(exc)) as refused:
                    a.assert_many(df)
                assert str(refused.value) == str(exc)
                assert a.assertions.collect().height == 0
                return
            assert taken  # every frame the row path accepts takes the columnar path
            assert a.assert_many(df) == expected
            assert _stored(a).equals(_stored(b))

    def test_arrow_tables_take_the_columnar_path(self, tmp_path: Path) -> None:
        table = pa.table(
            {
                "subject": ["svc/1/auth", "svc/2/auth"],
                "predicate": ["alg", "alg"],
                "object": ["RS256", 'say "hi"'],
                "agent": ["ag0", "ag1"],
                "source": ["https://a", "https://b"],
            }
        )
        assert bulk_assertions(table) is not None
        with sl.open(tmp_path / "lake") as lake:
            ids = lake.assert_many(table)
            for row in lake.assertions.collect().iter_rows(named=True):
                content = content_json(RecordKind.ASSERTION, row)
                assert (
                    record_id(RecordKind.ASSERTION, content, _us(row["recorded_at"])) == row["id"]
                )
            assert lake.query("svc/2/auth", "alg", agent="t").value == 'say "hi"'
            assert len(set(ids)) == 2

    def test_lake_assigned_times_strictly_increase(self, tmp_path: Path) -> None:
        df = pl.DataFrame(
            {
                "subject": ["s"] * 5000,
                "predicate": ["p"] * 5000,
                "object": list(range(5000)),
                "agent": ["ag"] * 5000,
                "source_hash": ["a" * 64] * 5000,
            }
        )
        with sl.open(tmp_path / "lake") as lake:
            lake.assert_("s", "p", "before", agent="ag", source="x")
            ids = lake.assert_many(df)
            stored = lake.assertions.sort("recorded_at").collect()
            assert stored["recorded_at"].is_unique().all()
            assert stored["id"].to_list()[1:] == ids
            assert lake.query("s", "p", agent="t").value == 4999

    def test_columns_the_row_path_takes(self) -> None:
        base = {"subject": ["s"], "predicate": ["p"], "agent": ["a"], "source": ["x"]}
        assert bulk_assertions(pl.DataFrame({**base, "object": [[1, 2]]})) is None
        assert bulk_assertions(pl.DataFrame({**base, "object": [1.5]})) is None
        assert bulk_assertions(pl.DataFrame({**base, "object": ["v"], "meta": [{"k": 1}]})) is None
        assert (
            bulk_assertions(pl.DataFrame({**base, "object": ["v"], "at": ["2026-01-01"]})) is None
        )
        assert bulk_assertions(pl.DataFrame({**base, "object": ["v"], "weird": [1]})) is None
        assert bulk_assertions([{"subject": "s"}]) is None

    def test_confidences_are_written_as_python_writes_them(self) -> None:
        # Polars' text of a float stands in for repr() from 1e-4 up: around that
        # edge (3.5e-06 against 3.5e-6) and in the ordinary range, the content
        # (so the id) must be the row path's
        rng = np.random.default_rng(7)
        edge = [0.0, -0.0, 1.0, 1e-4, 9.999e-5, 1e-5, 5e-324, 0.1 + 0.2, 1 / 3, 0.5]
        confidence = [
            *edge,
            *rng.uniform(0, 1, 5_000).tolist(),
            *(10 ** rng.uniform(-9, 0, 5_000)).tolist(),
            *np.round(rng.uniform(0, 1, 2_000), 3).tolist(),
        ]
        n = len(confidence)
        df = pl.DataFrame(
            {
                "subject": ["s"] * n,
                "predicate": ["p"] * n,
                "object": ["v"] * n,
                "agent": ["a"] * n,
                "source_hash": ["0" * 64] * n,
                "confidence": confidence,
            }
        )
        bulk = bulk_assertions(df)
        assert bulk is not None
        stored = pl.from_arrow(bulk.stored)
        assert isinstance(stored, pl.DataFrame)
        expected = [content_json(RecordKind.ASSERTION, row) for row in stored.to_dicts()]
        assert bulk.content.to_list() == expected


def _us(t: datetime) -> int:
    return (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


GOOD: dict[str, Any] = {
    "subject": "svc/1/auth",
    "predicate": "alg",
    "object": "RS256",
    "agent": "ag0",
    "confidence": 0.5,
    "lifecycle": "proposed",
    "source_hash": "a" * 64,
}
BAD = {
    "blank subject": {"subject": "  \x1f "},
    "long agent": {"agent": "x" * 300},
    "null agent": {"agent": None},
    "NaN confidence": {"confidence": float("nan")},
    "confidence above 1": {"confidence": 1.5},
    "unknown stage": {"lifecycle": "validated"},
    "bad source hash": {"source_hash": "XYZ"},
    "upper-case source hash": {"source_hash": "A" * 64},
    "source hash a digit short": {"source_hash": "a" * 63},
    "source hash not hex": {"source_hash": "g" * 64},
    "NaN object": {"object": float("nan")},
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_columns_get_the_row_paths_error(tmp_path: Path, case: str) -> None:
    rows = [dict(GOOD), {**GOOD, **BAD[case]}, dict(GOOD, object="ES256")]
    if case == "NaN object":  # a float column (a text column would turn NaN into "NaN")
        rows[0]["object"], rows[2]["object"] = 0.5, 2.5
    with sl.open(tmp_path / "lake") as lake:
        with pytest.raises(StemeLakeError) as by_rows:
            lake.assert_many(rows)
        with pytest.raises(StemeLakeError) as by_columns:
            lake.assert_many(pl.DataFrame(rows, strict=False))
        assert type(by_columns.value) is type(by_rows.value)
        assert str(by_columns.value) == str(by_rows.value)
        assert lake.assertions.collect().height == 0


@pytest.mark.parametrize("case", ["out of order", "in the future", "duplicate", "before the lake"])
def test_commit_time_rules_get_the_row_paths_error(tmp_path: Path, case: str) -> None:
    t = [START, START + timedelta(hours=1), START + timedelta(hours=2)]
    if case == "out of order":
        t[2] = START
    elif case == "in the future":
        t[2] = datetime.now(UTC) + timedelta(days=30)
    rows = [dict(GOOD, at=x, object=f"v{i}") for i, x in enumerate(t)]
    if case == "duplicate":
        rows[2] = dict(rows[1])
    with sl.open(tmp_path / "lake") as lake:
        if case == "before the lake":
            lake.assert_("x", "y", 1, agent="a", source="s", at=START + timedelta(days=1))
        before = lake.assertions.collect().height
        with pytest.raises(StemeLakeError) as by_rows:
            lake.assert_many(rows)
        with pytest.raises(StemeLakeError) as by_columns:
            lake.assert_many(pl.DataFrame(rows))
        assert type(by_columns.value) is type(by_rows.value)
        assert str(by_columns.value) == str(by_rows.value)
        assert lake.assertions.collect().height == before


ids = st.text(alphabet=HEX, min_size=64, max_size=64)


@st.composite
def audit_frames(draw: Any) -> pl.DataFrame:
    n = draw(st.integers(1, 10))

    def column(values: Any) -> list[Any]:
        return draw(st.lists(values, min_size=n, max_size=n))

    op = draw(st.sampled_from(["query", "check"]))
    statuses = ["answered", "no_answer", "contested"] if op == "query" else ["ok", "violation"]
    columns: dict[str, Any] = {
        "agent": column(text),
        "subject": column(text),
        "op": [op] * n,
        "status": column(st.sampled_from(statuses)),
    }
    optional = {
        "predicate": st.one_of(st.none(), text),
        "lens": st.one_of(st.none(), st.sampled_from(["recency", "consensus", "skeptic"])),
        "value": st.one_of(st.none(), text),
        "confidence": st.one_of(st.none(), st.floats(0.0, 1.0)),
        "winner": st.one_of(st.none(), ids),
        "contributing": st.one_of(st.none(), st.lists(ids, max_size=3)),
        "latency_us": st.one_of(st.none(), st.integers(0, 10**9)),
        "include_superseded": st.booleans(),
    }
    for name, values in optional.items():
        if draw(st.booleans()):
            columns[name] = column(values)
    steps = column(st.integers(1, 10**9))
    at, t = [], START
    for step in steps:
        t += timedelta(microseconds=step)
        at.append(t)
    columns["at"] = at
    schema = {"contributing": pl.List(pl.String)} if "contributing" in columns else None
    return pl.DataFrame(columns, schema_overrides=schema)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(df=audit_frames())
def test_imported_audit_columns_and_dicts_store_the_same_records(df: pl.DataFrame) -> None:
    taken = bulk_audit(df) is not None
    with (
        tempfile.TemporaryDirectory() as tmp,
        sl.open(Path(tmp) / "a", options=LakeOptions(state_index="off")) as a,
        sl.open(Path(tmp) / "b", options=LakeOptions(state_index="off")) as b,
    ):
        try:
            expected = b.import_audit(df.to_dicts())
        except StemeLakeError as exc:
            with pytest.raises(type(exc)) as refused:
                a.import_audit(df)
            assert str(refused.value) == str(exc)
            return
        assert taken
        assert a.import_audit(df) == expected
        left = a.audit.sort("recorded_at").collect().drop("seq")
        right = b.audit.sort("recorded_at").collect().drop("seq")
        assert left.equals(right)


@st.composite
def vote_frames(draw: Any) -> tuple[pl.DataFrame, int]:
    n = draw(st.integers(1, 10))
    targets = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    columns: dict[str, Any] = {
        "target": targets,  # indexes into the assertions written first
        "agent": draw(st.lists(text, min_size=n, max_size=n)),
    }
    if draw(st.booleans()):
        columns["weight"] = draw(
            st.lists(
                st.one_of(st.floats(-5, 5, allow_nan=False), st.integers(-3, 3)),
                min_size=n,
                max_size=n,
            )
        )
    steps = draw(st.lists(st.integers(1, 10**9), min_size=n, max_size=n))
    at, t = [], START + timedelta(days=1)
    for step in steps:
        t += timedelta(microseconds=step)
        at.append(t)
    columns["at"] = at
    unknown = draw(st.integers(-1, n - 1))  # >= 0: that row votes on an id the lake lacks
    return pl.DataFrame(columns, strict=False), unknown


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=vote_frames())
def test_votes_columns_and_dicts_store_the_same_records(case: tuple[pl.DataFrame, int]) -> None:
    df, unknown = case
    with (
        tempfile.TemporaryDirectory() as tmp,
        sl.open(Path(tmp) / "a", options=LakeOptions(state_index="off")) as a,
        sl.open(Path(tmp) / "b", options=LakeOptions(state_index="off")) as b,
    ):
        written = [
            lake.assert_many(
                [dict(GOOD, object=i, at=START + timedelta(minutes=i)) for i in range(4)]
            )
            for lake in (a, b)
        ]
        assert written[0] == written[1]
        ids = [written[0][i] for i in df["target"]]
        if unknown >= 0:
            ids[unknown] = "0" * 64
        df = df.with_columns(pl.Series("target", ids))
        try:
            expected = b.vote_many(df.to_dicts())
        except StemeLakeError as exc:
            with pytest.raises(type(exc)) as refused:
                a.vote_many(df)
            assert str(refused.value) == str(exc)
            assert a.votes.collect().height == 0
            return
        assert unknown < 0 and bulk_votes(df) is not None
        assert a.vote_many(df) == expected
        left = a.votes.sort("recorded_at").collect().drop("seq")
        right = b.votes.sort("recorded_at").collect().drop("seq")
        assert left.equals(right)


def test_ids_come_from_the_blake3_package_if_the_polars_plugin_hashes_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from steme_lake.lake import _bulk

    expected = [record_id(RecordKind.VOTE, f"c{i}", i) for i in range(5)]
    messages = pl.Series(
        [_bulk._PREFIXES[RecordKind.VOTE].decode() + f"c{i}\n{i}" for i in range(5)]
    )
    assert _bulk.record_ids(messages).to_list() == expected

    class Wrong:  # a plugin that loads but hashes otherwise (the edge: a foreign build)
        def __init__(self, name: str) -> None:
            self.chash = self
            self.name = name

        def blake3(self) -> pl.Expr:
            return pl.col(self.name).str.reverse()

    monkeypatch.setattr(_bulk.plh, "col", Wrong)
    assert _bulk.record_ids(messages).to_list() == expected


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 3_000), min_size=1, max_size=40),
    budget=st.integers(200, 6_000),
)
def test_rows_are_cut_into_frames_as_they_come(lengths: list[int], budget: int) -> None:
    """Frames of whole rows, each as many as fit in the budget (a row larger than
    the budget alone), in order: what adding the rows one by one would make."""
    n = len(lengths)
    df = pl.DataFrame(
        {
            "subject": ["s"] * n,
            "predicate": ["p"] * n,
            "object": ["x" * k for k in lengths],
            "agent": ["a"] * n,
            "source_hash": ["0" * 64] * n,
        }
    )
    bulk = bulk_assertions(df)
    assert bulk is not None
    sizes = (bulk.content.str.len_chars() + 200).to_list()
    # and a budget the first two rows fill exactly
    for limit in (budget, sum(sizes[:2])):
        frames = stamp(bulk, 1, 0, now=lambda: 10**15, max_future_us=0, frame_budget=limit)
        assert frames is not None
        expected, size = [], 0
        for row in sizes:
            if expected and size + row > limit:
                expected.append(0)
                size = 0
            if not expected:
                expected.append(0)
            expected[-1] += 1
            size += row
        assert [f.table.num_rows for f in frames] == expected
        assert [f.seq for f in frames] == list(range(1, len(frames) + 1))


@pytest.mark.parametrize("large", [False, True])
def test_text_bytes_are_read_through_slices_and_nulls(large: bool) -> None:
    """`_plain_text` looks at a text column's bytes at once: it sees each value of a
    slice (an offset into shared buffers), of either offset width, and only those."""
    from steme_lake.lake import _bulk

    kind = pa.large_string() if large else pa.string()
    values = pa.array(['a"b', "plain", None, "é雪", "x\\y", "tab\there"], kind)
    assert [_bulk._plain_text(values.slice(i, 1)) for i in range(6)] == [
        False, True, True, True, False, False,
    ]  # fmt: skip
    assert _bulk._plain_text(values.slice(1, 3))
    assert not _bulk._plain_text(values.slice(1, 4))
    assert not _bulk._plain_text(pa.chunked_array([values.slice(1, 1), values.slice(0, 1)]))
    assert not _bulk._plain_text(pa.array([1, 2]))  # not text: the per-row test decides
    ids = pl.Series(["a" * 64, "0123456789abcdef" * 4, "b" * 64])
    assert _bulk._hex_ids(ids) and _bulk._hex_ids(ids.slice(1, 2))
    assert not _bulk._hex_ids(pl.Series(["a" * 64, None]))
    assert not _bulk._hex_ids(pl.Series(["a" * 64, "a" * 63 + "/"]))


def test_columns_free_of_escapes_are_quoted_without_a_test_per_row() -> None:
    """The content of a batch whose text needs no escaping, of one where a single
    row does, and of one with a column of nulls only: each row as the row path
    words it."""
    from steme_lake.lake import _bulk

    base = {**GOOD, "at": START}
    for odd in ({}, {"subject": 'svc/"quoted"'}, {"agent": "a\\b"}, {"object": "x\ny"}):
        rows = [dict(base, at=START + timedelta(seconds=i)) for i in range(3)]
        rows[1].update(odd)
        bulk = bulk_assertions(pl.DataFrame(rows))
        assert bulk is not None
        stored = pl.from_arrow(bulk.stored)
        assert isinstance(stored, pl.DataFrame)
        forms = dict(
            zip(
                [n for n, _k, _h in _bulk._LAYOUT[RecordKind.ASSERTION]],
                _bulk._forms(RecordKind.ASSERTION, stored, bulk.stored),
                strict=True,
            )
        )
        assert forms["parent"] == "null" and forms["source_hash"] == "plain"
        for name in odd:
            if name != "object":  # (object is canonical JSON by then: quoted apart)
                assert forms[name] == ""
        for row, content in zip(stored.to_dicts(), bulk.content, strict=True):
            assert content == content_json(RecordKind.ASSERTION, row)
