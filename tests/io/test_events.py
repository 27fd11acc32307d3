"""The JSON-lines event import: all or nothing, errors with line numbers."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

import steme_lake as sl
from steme_lake import EventImportError, OutOfOrderError
from tests.conftest import JWT_EVENTS


def _lines(*events: dict) -> list[str]:
    return [json.dumps(e) for e in events]


GOOD = {
    "op": "assert",
    "ref": "rfc",
    "at": "2026-01-15T14:30:00Z",
    "agent": "research-agent",
    "subject": "auth/jwt",
    "predicate": "signing_algorithm",
    "object": "ES256",
    "confidence": 0.87,
    "lifecycle": "proposed",
    "source": "https://rfc.example/jwt-es256",
}


class TestJwtIncident:
    """The shipped incident file imports completely, with its real times."""

    def test_counts_and_refs(self, tmp_lake: sl.Lake) -> None:
        counts = tmp_lake.import_events(JWT_EVENTS)
        lines = [json.loads(x) for x in JWT_EVENTS.read_text().splitlines()]
        assert counts == {op: sum(1 for e in lines if e["op"] == op) for op in counts}
        assertions = tmp_lake.assertions.collect()
        rfc = assertions.filter(pl.col("object") == '"ES256"', pl.col("subject") == "auth/jwt")
        impl = assertions.filter(pl.col("subject") == "services/auth/config")
        assert impl["parent"][0] == rfc["id"][0]  # the ref resolved to the real id
        assert str(rfc["recorded_at"][0]) == "2026-01-15 14:30:00+00:00"
        queries = tmp_lake.audit.filter(pl.col("agent") == "lead-orchestrator").collect()
        assert queries["status"].to_list() == ["answered"]  # replayed as of its own time
        assert queries["value"].to_list() == ['"ES256"']
        assert queries["lifecycle_filter"][0] is None  # the bug: no lifecycle filter


class TestBadFiles:
    """A bad line is named by number and nothing from the file is applied."""

    @pytest.mark.parametrize(
        ("bad", "message"),
        [
            ("{not json", "Expecting property name"),
            ('["a list"]', "JSON object"),
            ('{"op": "delete", "at": "2026-01-15T15:00:00Z", "agent": "x"}', "unknown op 'delete'"),
            ('{"op": "vote", "agent": "x", "target": "rfc"}', "needs 'at'"),
            (
                '{"op": "vote", "at": "2026-01-15T15:00:00Z", "agent": "x", "target": "nope"}',
                "neither a ref",
            ),
            (
                '{"op": "vote", "at": "2026-01-15T15:00:00Z", "agent": "x", "target": "rfc", '
                '"weight": NaN}',
                "NaN is not valid JSON",
            ),
            (
                '{"op": "vote", "at": "2026-01-15T15:00:00Z", "agent": "x", "target": "rfc", '
                '"colour": "red"}',
                "unknown field",
            ),
            (
                '{"op": "vote", "at": "2026-01-15T14:00:00Z", "agent": "x", "target": "rfc"}',
                "time order",
            ),
            (
                '{"op": "lifecycle", "at": "2026-01-15T15:00:00Z", "agent": "x", "target": "rfc", '
                '"stage": "done"}',
                "unknown lifecycle stage",
            ),
        ],
    )
    def test_line_numbers(self, tmp_lake: sl.Lake, bad: str, message: str) -> None:
        lines = [*_lines(GOOD), "", bad]
        with pytest.raises(EventImportError, match=message) as info:
            tmp_lake.import_events(lines)
        assert info.value.line == 3
        assert ":3:" in str(info.value)
        assert tmp_lake.status().last_seq == 0

    def test_events_as_dicts(self, tmp_lake: sl.Lake) -> None:
        """Events already parsed are taken as they are, and checked as their JSON is."""
        assert tmp_lake.import_events([GOOD]) == {"assert": 1}
        nan = {**GOOD, "object": float("nan"), "ref": "other"}
        with pytest.raises(EventImportError, match=":1: the event is not plain JSON"):
            tmp_lake.import_events([nan])
        with pytest.raises(EventImportError, match="a JSON line or a dict, not int"):
            tmp_lake.import_events([7])  # type: ignore[list-item]
        assert tmp_lake.assertions.collect().height == 1

    def test_file_errors(self, tmp_lake: sl.Lake, tmp_path: Path) -> None:
        with pytest.raises(sl.ValidationError, match="does not exist"):
            tmp_lake.import_events(tmp_path / "missing.jsonl")
        empty = tmp_path / "empty.jsonl"
        empty.write_text("\n")
        with pytest.raises(EventImportError, match="no events"):
            tmp_lake.import_events(empty)

    def test_history_before_the_lake_refused_whole(self, tmp_lake: sl.Lake) -> None:
        tmp_lake.assert_("x", "y", 1, agent="a", source="s", at="2026-02-01T00:00:00Z")
        with pytest.raises(OutOfOrderError):
            tmp_lake.import_events(JWT_EVENTS)
        assert tmp_lake.assertions.collect().height == 1

    def test_vote_on_existing_assertion_by_id(self, tmp_lake: sl.Lake) -> None:
        aid = tmp_lake.assert_("x", "y", 1, agent="a", source="s", at="2026-01-01T00:00:00Z")
        counts = tmp_lake.import_events(
            _lines(
                {"op": "vote", "at": "2026-01-02T00:00:00Z", "agent": "b", "target": aid},
            )
        )
        assert counts == {"vote": 1}
