"""Mining the lake's history for labelled examples of agent behaviour.

Each sample is built from the lake **as of the event's time**: the question
an agent asked, its filters, and every candidate that existed then (value,
lifecycle, agent, confidence, votes, source). Never from the export time.

Kinds mined so far (the first part of issue 18):

- ``proposal_as_decision`` (negative, paired): a question answered with an
  assertion that was not approved while an approved one existed for the same
  subject and predicate. Rejected: what the agent was told; chosen: the
  approved value (the JWT incident).
- ``invalidated_answer`` (negative, paired): a question whose winning
  assertion was later invalidated, replaced, refined or overtaken by a
  paradigm shift. Rejected: what the agent was told; chosen: the replacement
  the correction names, or else the approved value at the correction's time,
  with the correction's reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import blake3
import polars as pl

from steme_lake._utils.timeparse import datetime_to_us, us_to_datetime, us_to_iso
from steme_lake.query._candidates import _until, as_of_lit

if TYPE_CHECKING:
    from steme_lake.lake import Lake
    from steme_lake.query._answer import Answer

__all__ = ["KINDS", "SYSTEM", "mine"]

KINDS = ("proposal_as_decision", "invalidated_answer")
SYSTEM = (
    "You answer an agent's question from a shared knowledge base of assertions. "
    "Each candidate has a lifecycle stage: only 'approved' ones are decisions; a "
    "'proposed' one is a claim nobody has reviewed. Answer with the value to act "
    "on and say why."
)
MESSAGE = pl.Struct({"role": pl.String(), "content": pl.String()})
SCHEMA = pl.Schema(
    [
        ("sample_id", pl.String()),
        ("kind", pl.String()),
        ("label", pl.String()),
        ("query_id", pl.String()),
        ("agent", pl.String()),
        ("subject", pl.String()),
        ("predicate", pl.String()),
        ("asked_at", pl.Datetime("us", "UTC")),
        ("prompt", pl.List(MESSAGE)),
        ("chosen", pl.List(MESSAGE)),
        ("rejected", pl.List(MESSAGE)),
        ("rejected_assertion", pl.String()),
        ("chosen_assertion", pl.String()),
        ("supersession", pl.String()),
    ]
)


@dataclass(frozen=True, slots=True)
class _Asked:
    query_id: str
    agent: str
    subject: str
    predicate: str
    lens: str
    lifecycle: list[str] | None
    at: int
    winner: str


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _prompt(lake: Lake, asked: _Asked) -> list[dict[str, str]]:
    """The question as the agent asked it, and every candidate that existed then."""
    everything = lake._answer(
        None, asked.subject, asked.predicate, lens="recency", stages=None,
        min_confidence=None, include_superseded=False, as_of=asked.at, requested=None,
    )  # fmt: skip
    votes = dict(
        _until(lake._tables().votes, asked.at)
        .group_by("target")
        .agg(pl.col("weight").sum())
        .collect()
        .iter_rows()
    )
    lines = [
        f"- {_show(c.value)}: {c.lifecycle}, by {c.agent}, confidence {c.confidence:.2f}, "
        f"votes {votes.get(c.assertion, 0.0):+.1f}, source {c.source_hash[:12]}, "
        f"recorded {us_to_iso(datetime_to_us(c.recorded_at))}"
        for c in everything.candidates
    ]
    filters = f"lens {asked.lens}, lifecycle {asked.lifecycle or 'any'}"
    question = (
        f"Agent {asked.agent} asks, at {us_to_iso(asked.at)}: what is the {asked.predicate} "
        f"of {asked.subject}? ({filters})\nCandidates:\n" + "\n".join(lines)
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]


def _say(content: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": content}]


def _sample(kind: str, asked: _Asked, prompt: list[dict[str, str]], chosen: str,
            rejected: str, chosen_id: str | None, fix: str | None) -> dict[str, Any]:  # fmt: skip
    body = json.dumps([kind, prompt, chosen, rejected], sort_keys=True, ensure_ascii=False)
    return {
        "sample_id": blake3.blake3(body.encode()).hexdigest(),
        "kind": kind,
        "label": "negative",
        "query_id": asked.query_id,
        "agent": asked.agent,
        "subject": asked.subject,
        "predicate": asked.predicate,
        "asked_at": us_to_datetime(asked.at),
        "prompt": prompt,
        "chosen": _say(chosen),
        "rejected": _say(rejected),
        "rejected_assertion": asked.winner,
        "chosen_assertion": chosen_id,
        "supersession": fix,
    }


def _approved(lake: Lake, asked: _Asked, at: int) -> Answer:
    return lake._answer(
        None, asked.subject, asked.predicate, lens="authority", stages=("approved",),
        min_confidence=None, include_superseded=False, as_of=at, requested=None,
    )  # fmt: skip


def mine(
    lake: Lake,
    *,
    kinds: tuple[str, ...],
    since: int | None,
    until: int | None,
    subject: pl.Expr | None,
    as_of: int,
) -> pl.DataFrame:
    """The samples of ``kinds`` from questions asked in ``[since, until]``, as the
    lake stood at ``as_of`` (corrections after it are not known)."""
    audit = _until(lake.audit, as_of).filter(
        (pl.col("op") == "query")
        & pl.col("winner").is_not_null()
        # a question about the past (as_of) is an investigation, not a decision
        & pl.col("params").str.json_path_match("$.as_of_requested").is_null()
    )
    if since is not None:
        audit = audit.filter(pl.col("recorded_at") >= as_of_lit(since))
    if until is not None:
        audit = audit.filter(pl.col("recorded_at") <= as_of_lit(until))
    if subject is not None:
        audit = audit.filter(subject)
    rows = audit.sort("recorded_at", "id").collect()
    tables = lake._tables()
    fixes = (
        _until(tables.supersessions, as_of)
        .filter(pl.col("scope") == "assertion")
        .sort("recorded_at", "id")
        .collect()
    )
    by_target = {r["target"]: r for r in fixes.iter_rows(named=True)}
    out: list[dict[str, Any]] = []
    for row in rows.iter_rows(named=True):
        asked = _Asked(
            query_id=row["id"], agent=row["agent"], subject=row["subject"],
            predicate=row["predicate"], lens=row["lens"] or "recency",
            lifecycle=row["lifecycle_filter"], at=datetime_to_us(row["as_of"]),
            winner=row["winner"],
        )  # fmt: skip
        told = lake._answer(
            None, asked.subject, asked.predicate, lens=asked.lens,
            stages=tuple(asked.lifecycle) if asked.lifecycle else None, min_confidence=None,
            include_superseded=bool(row["include_superseded"]), as_of=asked.at, requested=None,
        )  # fmt: skip
        if told.assertion != asked.winner:  # asked with filters not replayed here
            continue
        prompt: list[dict[str, str]] | None = None
        if "proposal_as_decision" in kinds and told.lifecycle != "approved":
            good = _approved(lake, asked, asked.at)
            if good.status == "answered" and good.value != told.value:
                prompt = _prompt(lake, asked)
                out.append(_sample(
                    "proposal_as_decision", asked, prompt,
                    f"{_show(good.value)}: the approved decision, which a {told.lifecycle} "
                    f"claim does not override.",
                    f"{_show(told.value)}", good.assertion, None,
                ))  # fmt: skip
        fix = by_target.get(asked.winner)
        if "invalidated_answer" in kinds and fix is not None:
            fixed_at = datetime_to_us(fix["recorded_at"])
            if fixed_at > asked.at:
                chosen_id, chosen = None, None
                if fix["replacement"] is not None:
                    chosen_id = fix["replacement"]
                    chosen = lake.get(chosen_id).object  # type: ignore[attr-defined]
                else:
                    good = _approved(lake, asked, fixed_at)
                    if good.status == "answered" and good.value != told.value:
                        chosen_id, chosen = good.assertion, good.value
                if chosen_id is not None:
                    prompt = prompt or _prompt(lake, asked)
                    out.append(_sample(
                        "invalidated_answer", asked, prompt,
                        f"{_show(chosen)}: {told.value!r} was later marked {fix['kind']} "
                        f"({fix['reason']}).",
                        f"{_show(told.value)}", chosen_id, fix["id"],
                    ))  # fmt: skip
    return pl.DataFrame(out, schema=SCHEMA) if out else pl.DataFrame(schema=SCHEMA)
