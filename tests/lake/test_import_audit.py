"""`Lake.import_audit`: another system's query log, stored as given, checked like any record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest

import steme_lake as sl
from steme_lake import OutOfOrderError, ValidationError

T0 = datetime(2026, 10, 1, 12, tzinfo=UTC)


def _row(**over: Any) -> dict[str, Any]:
    rid = sl.source_hash_of("some assertion")  # any 64-hex id
    row = {
        "agent": "deploy-agent",
        "subject": "auth/jwt",
        "predicate": "signing_algorithm",
        "lens": "recency",
        "status": "answered",
        "value": "ES256",
        "confidence": 0.87,
        "winner": rid,
        "contributing": [rid],
        "latency_us": 800,
        "at": T0,
    }
    return {**row, **over}


def test_rows_land_in_the_audit_and_trace_finds_them(tmp_lake: sl.Lake) -> None:
    rows = [_row(at=T0 + timedelta(minutes=i), value=f"v{i}") for i in range(3)]
    ids = tmp_lake.import_audit(pl.DataFrame(rows))
    assert len(ids) == 3 and len(set(ids)) == 3
    audit = tmp_lake.audit.sort("recorded_at").collect()
    assert audit["id"].to_list() == ids
    assert audit["value"].to_list() == ['"v0"', '"v1"', '"v2"']  # JSON text, as queries store
    assert audit["recorded_at"][0] == T0
    trace = tmp_lake.trace("deploy-agent", T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    assert trace["query_id"].to_list() == ids
    # Survives a flush to Parquet like every other record.
    tmp_lake.flush()
    assert tmp_lake.audit.collect().height == 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"at": None}, "needs at="),
        ({"op": "guess"}, "op"),
        ({"status": "ok"}, "status"),  # a check's status on a query
        ({"lens": "vibes"}, "lens"),
        ({"confidence": 1.5}, "confidence"),
        ({"latency_us": -1}, "latency_us"),
        ({"winner": "not-an-id"}, "winner"),
        ({"contributing": "abc"}, "contributing"),
        ({"contributing": ["zz"]}, "contributing"),
        ({"lifecycle": "final"}, "lifecycle"),
        ({"colour": "blue"}, "unknown audit field"),
        ({"agent": ""}, "agent"),
    ],
)
def test_bad_rows_are_refused_and_nothing_is_written(
    tmp_lake: sl.Lake, change: dict[str, Any], message: str
) -> None:
    good = _row()
    bad = _row(**{"at": T0 + timedelta(seconds=1), **change})
    if bad["at"] is None:
        bad.pop("at")
    with pytest.raises(ValidationError, match=message):
        tmp_lake.import_audit([good, bad])
    assert tmp_lake.audit.collect().height == 0


def test_history_only_in_time_order(tmp_lake: sl.Lake) -> None:
    tmp_lake.import_audit([_row(at=T0)])
    with pytest.raises(OutOfOrderError):
        tmp_lake.import_audit([_row(at=T0 - timedelta(days=1))])
    assert tmp_lake.audit.collect().height == 1
