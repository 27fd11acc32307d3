"""Record ids and canonical JSON."""

from __future__ import annotations

import json

import blake3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from steme_lake import ValidationError
from steme_lake._utils.canonical import canonical_json
from steme_lake.lake._rows import assertion_row
from steme_lake.model import RecordKind, content_json, record_id, source_hash_of
from steme_lake.model.schema import spec
from steme_lake.query._answer import decode_value

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


class TestIds:
    """An id is BLAKE3 of a documented canonical encoding, stable across machines."""

    def test_golden_id(self) -> None:
        # A fixed record and time must always give this id: it is the on-disk contract.
        row = assertion_row(
            "auth/jwt",
            "signing_algorithm",
            "RS256",
            agent="platform-team",
            confidence=0.92,
            lifecycle="approved",
            source="https://wiki/auth-decision",
        )
        assert row.content == (
            '{"agent":"platform-team","confidence":0.92,"epoch":null,"lifecycle":"approved",'
            '"meta":null,"object":"RS256","parent":null,"predicate":"signing_algorithm",'
            f'"source_hash":"{source_hash_of("https://wiki/auth-decision")}",'
            '"subject":"auth/jwt","visual_hash":null}'
        )
        rid = row.id_at(1_768_487_400_000_000)
        assert rid == record_id(RecordKind.ASSERTION, row.content, 1_768_487_400_000_000)
        # The documented layout, computed here with blake3 directly.
        expected = blake3.blake3(
            b"steme_lake/assertions/v1\n" + row.content.encode() + b"\n1768487400000000"
        ).hexdigest()
        assert rid == expected == "50c3ca3f386f85bcba017d8de619ef134046452a304d03adbc499df32e57cb64"

    def test_time_and_content_change_the_id(self) -> None:
        row = assertion_row("s", "p", 1, agent="a", source="x")
        other = assertion_row("s", "p", 2, agent="a", source="x")
        assert row.id_at(1) != row.id_at(2)
        assert row.id_at(1) != other.id_at(1)

    def test_key_order_does_not_matter(self) -> None:
        a = assertion_row("s", "p", {"b": 1, "a": [1.5, "é"]}, agent="a", source="x")
        b = assertion_row("s", "p", {"a": [1.5, "é"], "b": 1}, agent="a", source="x")
        assert a.content == b.content

    @given(JSON)
    def test_stored_json_gives_the_same_content(self, value: object) -> None:
        # Recomputing from the stored (text) form must reproduce the id's input.
        row = assertion_row("s", "p", value, agent="a", source="x")
        assert content_json(RecordKind.ASSERTION, row.row) == row.content


def _reference_content(kind: RecordKind, row: dict[str, object]) -> str:
    """The content JSON by the documented rule, through the canonical encoder alone."""
    kspec = spec(kind)
    content: dict[str, object] = {}
    for name in kspec.content_names:
        value = row.get(name)
        if value is not None and name in kspec.json_columns:
            value = json.loads(str(value))
        content[name] = value
    return canonical_json(content)


class TestContentJson:
    """`content_json` encodes column by column (fast paths for text, numbers, lists
    of text); every path must give the canonical encoder's bytes."""

    @given(
        st.text(),
        st.text(min_size=1),
        st.one_of(st.none(), st.text()),
        st.integers(),
        st.booleans(),
        st.one_of(st.none(), st.lists(st.text(), max_size=4)),
        st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
        JSON,
    )
    def test_audit_rows(
        self,
        agent: str,
        subject: str,
        predicate: str | None,
        latency: int,
        superseded: bool,
        cited: list[str] | None,
        confidence: float | None,
        value: object,
    ) -> None:
        row = {
            "agent": agent,
            "op": "query",
            "subject": subject,
            "predicate": predicate,
            "include_superseded": superseded,
            "latency_us": latency,
            "contributing": cited,
            "lifecycle_filter": cited,
            "confidence": confidence,
            "value": canonical_json(value),
            "as_of": 1_768_487_400_000_000,
        }
        assert content_json(RecordKind.AUDIT, row) == _reference_content(RecordKind.AUDIT, row)

    @pytest.mark.parametrize(
        "text", ['"', "\\", "\x00\x1f\x7f", "é ü 中文", "\u2028\u2029", "emoji 🙂"]
    )
    def test_awkward_text(self, text: str) -> None:
        row = {"agent": text, "op": "query", "subject": text, "contributing": [text, text]}
        assert content_json(RecordKind.AUDIT, row) == _reference_content(RecordKind.AUDIT, row)


class TestCanonicalJson:
    """Only plain, finite JSON is accepted."""

    @pytest.mark.parametrize(
        "bad",
        [float("nan"), float("inf"), {1: "x"}, {"a": object()}, b"x", "\ud800", {"\udc00": 1}],
    )
    def test_refused(self, bad: object) -> None:
        with pytest.raises(ValidationError):
            canonical_json(bad)

    def test_too_deep(self) -> None:
        value: object = 1
        for _ in range(100):
            value = [value]
        with pytest.raises(ValidationError, match="deeper"):
            canonical_json(value)


class TestDecodeValue:
    """Stored values are decoded without the parser when they are plain text; the
    result must be the parser's."""

    @given(JSON)
    def test_same_as_the_parser(self, value: object) -> None:
        text = canonical_json(value)
        assert decode_value(text) == json.loads(text)

    @pytest.mark.parametrize(
        "text", ['"a\\"b"', '"\\u00e9"', '"tab\\t"', '""', '"é"', "1", "[]", '"padded" ']
    )
    def test_escapes_go_to_the_parser(self, text: str) -> None:
        assert decode_value(text) == json.loads(text)
