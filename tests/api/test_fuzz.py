"""Property-based fuzz of the OpenAPI document (schemathesis): no input yields a 5xx.

Each operation gets generated requests, valid and invalid (wrong types, missing
and unknown fields, odd strings, huge numbers); every response must be a
deliberate answer: 2xx, or 4xx with a JSON body that names the problem.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import steme_lake as sl
from steme_lake.api import ServerOptions, create_app

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

_ROOT = Path(tempfile.mkdtemp(prefix="steme-fuzz-"))
_LAKE = sl.open(_ROOT / "lake")
_SEED = _LAKE.assert_(
    "auth/jwt",
    "signing_algorithm",
    "RS256",
    agent="platform",
    lifecycle="approved",
    source="adr-17",
    confidence=0.9,
)
# Unsigned writes are accepted here so generated writes reach the lake, not just the
# signature check (which tests/api/test_http.py covers).
APP = create_app(_LAKE, ServerOptions(require_signatures=False, max_body_bytes=64 * 1024))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
SEEN: Counter[int] = Counter()
EXAMPLES = 90  # per operation; 14 operations -> well over 1,000 requests


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_errors(case: schemathesis.Case) -> None:
    response = case.call()
    SEEN[response.status_code] += 1
    assert response.status_code < 500, (case.method, case.path, response.text[:500])
    if response.status_code >= 400:
        body = response.json()
        assert body["success"] is False and body["error"], body


# ------------------------------------------------- hostile requests inside batches

_HOSTILE_TEXT = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1),
    st.text(min_size=1).map(lambda t: t + "\udc00"),
    st.text(alphabet=st.characters(codec=None), min_size=0, max_size=20),
)
_HOSTILE_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _HOSTILE_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_HOSTILE_TEXT, inner, max_size=3),
    max_leaves=6,
)
_FIELDS = {
    "/assert": ["subject", "predicate", "object", "meta", "agent", "source_hash", "confidence"],
    "/query": ["subject", "predicate", "agent", "lifecycle", "as_of", "lens", "lifecyle"],
}


@given(
    hostile=st.lists(
        st.tuples(st.sampled_from(sorted(_FIELDS)), st.data()), min_size=1, max_size=6
    ),
    order=st.randoms(use_true_random=False),
)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_hostile_fields_inside_batches(hostile: list[Any], order: Any) -> None:
    """Good writes and questions share batches with requests carrying hostile
    fields (lone surrogates, odd types, unknown names): every good one is answered
    as if alone, and no hostile one gets a 5xx."""
    from steme_lake.api._fast import ROUTES

    hot = APP.hot  # type: ignore[attr-defined]
    items: list[tuple[bool, Any]] = []
    for i in range(3):
        write = {"subject": "fuzz/batch", "predicate": "p", "object": i, "agent": "fuzz",
                 "source_hash": "cd" * 32, "confidence": 0.5}  # fmt: skip
        items.append((True, ("/assert", write)))
        items.append((True, ("/query", {"subject": "auth/jwt", "predicate": "signing_algorithm",
                                        "agent": "fuzz"})))  # fmt: skip
    for path, data in hostile:
        base = dict(items[0 if path == "/assert" else 1][1][1])
        field = data.draw(st.sampled_from(_FIELDS[path]))
        base[field] = data.draw(_HOSTILE_JSON)
        items.append((False, (path, base)))
    order.shuffle(items)
    batch = [
        (ROUTES["POST", path], json.dumps(body).encode(), {b"content-type": b"application/json"})
        for _, (path, body) in items
    ]
    replies = hot._run_batch(batch)
    for (good, (path, body)), (status, payload) in zip(items, replies, strict=True):
        if good:
            assert status == (201 if path == "/assert" else 200), (body, payload)
        else:
            assert status < 500, (body, payload)


def test_enough_requests_were_made() -> None:
    """Runs after the fuzz: it must have sent at least 1,000 requests, some accepted."""
    total = sum(SEEN.values())
    print(f"fuzz responses by status: {dict(sorted(SEEN.items()))}")
    try:
        assert total >= 1000, SEEN
        assert sum(n for code, n in SEEN.items() if code < 300) > 50, SEEN
        assert sum(n for code, n in SEEN.items() if 400 <= code < 500) > 50, SEEN
    finally:
        _LAKE.close()
        shutil.rmtree(_ROOT, ignore_errors=True)
