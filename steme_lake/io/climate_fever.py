"""CLIMATE-FEVER as events: claims, their Wikipedia evidence, annotators' votes.

Diggelmann et al., 2020, "CLIMATE-FEVER: A Dataset for Verification of
Real-World Climate Claims", arXiv:2012.00614.

Mapping: each claim is an assertion ``climate/claim/<id> claim_label <label>``
by ``climate-fever``; each evidence sentence is an assertion
``climate/claim/<id> evidence {...}`` by ``wikipedia-retriever`` whose source
is its Wikipedia article and whose parent is the claim; each annotator's
label on an evidence sentence is a vote by ``annotator-<n>``: +1 when it
agrees with the evidence's label, -1 when it does not. The data set has no
times, so events are spaced one minute apart from ``start``, in file order.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from steme_lake._exceptions import ValidationError

__all__ = ["DEFAULT_START", "climate_fever_events"]

DEFAULT_START = datetime(2020, 12, 1, tzinfo=UTC)
_LABELS = ("SUPPORTS", "REFUTES", "NOT_ENOUGH_INFO", "DISPUTED")


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def climate_fever_events(
    path: str | Path, *, start: datetime = DEFAULT_START, limit: int | None = None
) -> Iterator[str]:
    """Yield event lines (the import format) for the CLIMATE-FEVER JSON-lines file."""
    at = start
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if limit is not None and number > limit:
                return
            try:
                claim = json.loads(line)
                events = list(_claim_events(claim, at))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValidationError(f"{path}:{number}: not a CLIMATE-FEVER claim: {exc}") from exc
            for event in events:
                yield json.dumps(event, ensure_ascii=False)
            at += timedelta(minutes=1)


def _claim_events(claim: dict[str, Any], at: datetime) -> Iterator[dict[str, Any]]:
    cid = str(claim["claim_id"])
    label = claim["claim_label"]
    if label not in _LABELS:
        raise ValueError(f"unknown claim_label {label!r}")
    ref = f"claim-{cid}"
    entropies = [float(e["entropy"]) for e in claim["evidences"]]
    agreement = 1.0 - (sum(entropies) / len(entropies)) / math.log(3) if entropies else 0.5
    yield {
        "op": "assert",
        "ref": ref,
        "at": _iso(at),
        "agent": "climate-fever",
        "subject": f"climate/claim/{cid}",
        "predicate": "claim_label",
        "object": label,
        "confidence": round(min(1.0, max(0.0, agreement)), 4),
        "lifecycle": "approved",
        "source": f"climate-fever:claim:{cid}",
        "meta": {"claim": claim["claim"]},
    }
    for k, evidence in enumerate(claim["evidences"]):
        eref = f"{ref}-ev{k}"
        ev_at = _iso(at + timedelta(seconds=1 + k))
        entropy = float(evidence["entropy"])
        yield {
            "op": "assert",
            "ref": eref,
            "at": ev_at,
            "agent": "wikipedia-retriever",
            "subject": f"climate/claim/{cid}",
            "predicate": "evidence",
            "object": {
                "evidence_id": evidence["evidence_id"],
                "label": evidence["evidence_label"],
                "text": evidence["evidence"],
            },
            "confidence": round(max(0.0, 1.0 - entropy / math.log(3)), 4),
            "lifecycle": "under_review",
            "parent": ref,
            "source": "https://en.wikipedia.org/wiki/" + evidence["article"].replace(" ", "_"),
        }
        for n, vote in enumerate(evidence.get("votes") or []):
            if vote is None:
                continue
            yield {
                "op": "vote",
                "at": ev_at,
                "agent": f"annotator-{n + 1}",
                "target": eref,
                "weight": 1.0 if vote == evidence["evidence_label"] else -1.0,
            }
