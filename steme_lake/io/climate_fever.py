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

`climate_fever_review_events` is the same data as a review workload for the
Dojo (what agents asked, what a reviewer approved, what they acted on); its
docstring has the mapping.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from steme_lake._exceptions import ValidationError

__all__ = ["DEFAULT_START", "climate_fever_events", "climate_fever_review_events"]

DEFAULT_START = datetime(2020, 12, 1, tzinfo=UTC)
_LABELS = ("SUPPORTS", "REFUTES", "NOT_ENOUGH_INFO", "DISPUTED")


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _lines(
    path: str | Path,
    events_of: Callable[[dict[str, Any], datetime], Iterator[dict[str, Any]]],
    start: datetime,
    step: timedelta,
    limit: int | None,
) -> Iterator[str]:
    """Event lines for each claim of the file (``step`` apart), with the file's line
    number in the error when a claim is not one."""
    at = start
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if limit is not None and number > limit:
                return
            try:
                events = list(events_of(json.loads(line), at))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValidationError(f"{path}:{number}: not a CLIMATE-FEVER claim: {exc}") from exc
            for event in events:
                yield json.dumps(event, ensure_ascii=False)
            at += step


def climate_fever_events(
    path: str | Path, *, start: datetime = DEFAULT_START, limit: int | None = None
) -> Iterator[str]:
    """Yield event lines (the import format) for the CLIMATE-FEVER JSON-lines file."""
    return _lines(path, _claim_events, start, timedelta(minutes=1), limit)


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


_VERDICTS = ("SUPPORTS", "REFUTES")


def climate_fever_review_events(
    path: str | Path, *, start: datetime = DEFAULT_START, limit: int | None = None
) -> Iterator[str]:
    """Yield event lines for CLIMATE-FEVER as a review workload (one hour per claim).

    The claim's own label never enters the lake; it stays in the file, to grade
    what the Dojo mines from this workload against. For claim ``<id>`` (subject
    ``climate/claim/<id>``, predicate ``verdict``):

    - each evidence sentence is a ``proposed`` verdict (its evidence label) by
      ``wikipedia-retriever``, its source the Wikipedia article, the sentence
      as its reason, its confidence the annotators' agreement (1 - entropy/ln 3);
      each annotator's label is a vote, +1 agreeing with it, -1 not;
    - ten minutes later ``human-reviewer`` approves a verdict only when the
      evidence is one-sided (all the SUPPORTS/REFUTES sentences say the same)
      and at least one such sentence has more votes for than against;
    - ``fast-checker`` then proposes the label of the most agreed sentence;
    - ``analyst`` asks (recency lens, any lifecycle) and gets that proposal;
      ``planner`` asks under the consensus lens and then writes an ``action``
      on the claim (acting on whatever it was told); ``deploy-agent`` asks for
      the approved verdict only.
    """
    return _lines(path, _review_events, start, timedelta(hours=1), limit)


def _review_events(claim: dict[str, Any], at: datetime) -> Iterator[dict[str, Any]]:
    cid = str(claim["claim_id"])
    if claim["claim_label"] not in _LABELS:
        raise ValueError(f"unknown claim_label {claim['claim_label']!r}")
    subject = f"climate/claim/{cid}"
    ref = f"claim-{cid}"
    evidences = claim["evidences"]
    net: list[float] = []
    agreement: list[float] = []
    for k, evidence in enumerate(evidences):
        eref = f"{ref}-ev{k}"
        ev_at = _iso(at + timedelta(seconds=1 + k))
        agreement.append(round(max(0.0, 1.0 - float(evidence["entropy"]) / math.log(3)), 4))
        yield {
            "op": "assert",
            "ref": eref,
            "at": ev_at,
            "agent": "wikipedia-retriever",
            "subject": subject,
            "predicate": "verdict",
            "object": evidence["evidence_label"],
            "confidence": agreement[-1],
            "lifecycle": "proposed",
            "source": "https://en.wikipedia.org/wiki/" + evidence["article"].replace(" ", "_"),
            "meta": {"reason": evidence["evidence"], "evidence_id": evidence["evidence_id"]},
        }
        total = 0.0
        for n, vote in enumerate(evidence.get("votes") or []):
            if vote is None:
                continue
            weight = 1.0 if vote == evidence["evidence_label"] else -1.0
            total += weight
            yield {
                "op": "vote",
                "at": ev_at,
                "agent": f"annotator-{n + 1}",
                "target": eref,
                "weight": weight,
            }
        net.append(total)
    sides = {e["evidence_label"] for e in evidences} & set(_VERDICTS)
    endorsed = [
        e for e, n in zip(evidences, net, strict=True) if e["evidence_label"] in sides and n > 0
    ]
    if len(sides) == 1 and endorsed:
        (side,) = sides
        yield {
            "op": "assert",
            "ref": f"{ref}-review",
            "at": _iso(at + timedelta(minutes=10)),
            "agent": "human-reviewer",
            "subject": subject,
            "predicate": "verdict",
            "object": side,
            "confidence": 0.9,
            "lifecycle": "approved",
            "source": f"climate-fever:review:{cid}",
            "meta": {
                "reason": f"{len(endorsed)} of {len(evidences)} evidence sentences "
                f"{side.lower().removesuffix('s')} it, endorsed by the annotators"
            },
        }
    if evidences:
        best = max(range(len(evidences)), key=lambda k: (agreement[k], -k))
        yield {
            "op": "assert",
            "ref": f"{ref}-fast",
            "at": _iso(at + timedelta(minutes=20)),
            "agent": "fast-checker",
            "subject": subject,
            "predicate": "verdict",
            "object": evidences[best]["evidence_label"],
            "confidence": agreement[best],
            "lifecycle": "proposed",
            "source": f"climate-fever:fast-check:{cid}",
            "meta": {"reason": "the evidence sentence the annotators agreed on most"},
        }
    yield {"op": "query", "at": _iso(at + timedelta(minutes=30)), "agent": "analyst",
           "subject": subject, "predicate": "verdict", "lens": "recency"}  # fmt: skip
    yield {"op": "query", "at": _iso(at + timedelta(minutes=31)), "agent": "planner",
           "subject": subject, "predicate": "verdict", "lens": "consensus"}  # fmt: skip
    yield {
        "op": "assert",
        "at": _iso(at + timedelta(minutes=35)),
        "agent": "planner",
        "subject": subject,
        "predicate": "action",
        "object": "cite the verdict in the climate report",
        "confidence": 0.7,
        "lifecycle": "proposed",
        "source": f"planner:{cid}",
    }
    yield {"op": "query", "at": _iso(at + timedelta(minutes=40)), "agent": "deploy-agent",
           "subject": subject, "predicate": "verdict", "lens": "recency",
           "lifecycle": "approved"}  # fmt: skip
