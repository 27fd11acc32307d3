"""Property-based fuzz of the OpenAPI document (schemathesis): no input yields a 5xx.

Each operation gets generated requests, valid and invalid (wrong types, missing
and unknown fields, odd strings, huge numbers); every response must be a
deliberate answer: 2xx, or 4xx with a JSON body that names the problem.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

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
