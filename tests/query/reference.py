"""A deliberately plain reference implementation of belief resolution.

Written from the semantics in MISSION.md and the lens docstrings, with loops
and dicts only (no Polars), to check the real implementation against.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from steme_lake.query import ResolutionOptions

DAY_US = 86_400_000_000


def covers(prefix: str, subject: str) -> bool:
    p = prefix.rstrip("/")
    return p == "" or subject == p or subject.startswith(p + "/")


@dataclass
class History:
    """Everything written, as plain dicts (times are UTC microseconds)."""

    assertions: list[dict[str, Any]] = field(default_factory=list)
    votes: list[dict[str, Any]] = field(default_factory=list)
    lifecycle: list[dict[str, Any]] = field(default_factory=list)
    supersessions: list[dict[str, Any]] = field(default_factory=list)
    confirmations: list[dict[str, Any]] = field(default_factory=list)
    trust: list[dict[str, Any]] = field(default_factory=list)


def _latest(records: list[dict[str, Any]]) -> dict[str, Any]:
    best = records[0]
    for r in records[1:]:
        if (r["t"], r["id"]) > (best["t"], best["id"]):
            best = r
    return best


def trust_of(h: History, agent: str, subject: str, t: int, opts: ResolutionOptions) -> float:
    best = None
    for r in h.trust:
        if r["t"] <= t and r["agent"] == agent and covers(r["topic"], subject):
            key = (len(r["topic"].rstrip("/")), r["t"], r["id"])
            if best is None or key > best[0]:
                best = (key, r["score"])
    if best is not None:
        return best[1]
    seed = any(
        agent.startswith(p[:-1]) if p.endswith("*") else agent == p for p in opts.seed_agents
    )
    return opts.seed_trust if seed else opts.default_trust


def candidates(
    h: History,
    subject: str,
    predicate: str,
    t: int,
    lifecycle: Any,
    min_conf: float | None,
    include_superseded: bool,
    opts: ResolutionOptions,
) -> list[dict[str, Any]]:
    out = []
    for a in h.assertions:
        if a["t"] > t or a["subject"] != subject or a["predicate"] != predicate:
            continue
        changes = [c for c in h.lifecycle if c["target"] == a["id"] and c["t"] <= t]
        stage = _latest(changes)["stage"] if changes else a["lifecycle"]
        superseded = False
        for s in h.supersessions:
            if s["t"] > t:
                continue
            if s["scope"] == "assertion" and s["target"] == a["id"]:
                superseded = True
            if s["scope"] == "source" and s["source_hash"] == a["source_hash"] and a["t"] <= s["t"]:
                superseded = True
            if (
                s["scope"] == "agent_window"
                and s["target_agent"] == a["agent"]
                and (s["start"] is None or a["t"] >= s["start"])
                and (s["end"] is None or a["t"] <= s["end"])
            ):
                superseded = True
        last_use = max(
            [a["t"]] + [c["t"] for c in h.confirmations if c["target"] == a["id"] and c["t"] <= t]
        )
        half = opts.half_life_us(subject)
        eff = a["confidence"] if half is None else a["confidence"] * 0.5 ** ((t - last_use) / half)
        if lifecycle is not None and stage not in lifecycle:
            continue
        if superseded and not include_superseded:
            continue
        if min_conf is not None and eff < min_conf:
            continue
        out.append({**a, "stage": stage, "eff": eff})
    return out


def resolve(
    h: History,
    subject: str,
    predicate: str,
    *,
    lens: str,
    t: int,
    lifecycle: Any = None,
    min_conf: float | None = None,
    include_superseded: bool = False,
    opts: ResolutionOptions,
) -> tuple[str, str | None, Any, float | None]:
    """(status, winning id, value, confidence)."""
    cands = candidates(h, subject, predicate, t, lifecycle, min_conf, include_superseded, opts)
    if not cands:
        return ("no_answer", None, None, None)
    if lens == "recency":
        w = _latest(cands)
        return ("answered", w["id"], w["object"], w["eff"])
    if lens == "authority":
        best = None
        for c in cands:
            key = (trust_of(h, c["agent"], subject, t, opts) * c["eff"], c["t"], c["id"])
            if best is None or key > best[0]:
                best = (key, c)
        w = best[1]
        return ("answered", w["id"], w["object"], w["eff"])
    values: dict[str, list[dict[str, Any]]] = {}
    for c in cands:
        values.setdefault(c["object_json"], []).append(c)
    if lens == "consensus":
        totals = {}
        best_in = {}
        for value, group in values.items():
            total = 0.0
            best = None
            for c in group:
                mine: dict[str, dict[str, Any]] = {}  # each agent's latest vote counts
                for v in h.votes:
                    if v["target"] != c["id"] or v["t"] > t:
                        continue
                    old = mine.get(v["agent"])
                    if old is None or (v["t"], v["id"]) > (old["t"], old["id"]):
                        mine[v["agent"]] = v
                support = c["eff"] + sum(
                    v["weight"] * trust_of(h, v["agent"], subject, t, opts) for v in mine.values()
                )
                total += support
                key = (support, c["t"], c["id"])
                if best is None or key > best[0]:
                    best = (key, c)
            totals[value] = total
            best_in[value] = best[1]

        def rank(value: str) -> tuple:
            latest = _latest(values[value])
            return (totals[value], latest["t"], latest["id"])

        win = max(values, key=rank)
        positive = sum(max(x, 0.0) for x in totals.values())
        if totals[win] <= 0:
            return ("no_answer", None, None, None)
        w = best_in[win]
        return ("answered", w["id"], w["object"], totals[win] / positive)
    if lens == "skeptic":
        strong = {
            v: max(c["eff"] for c in g) >= opts.skeptic_contradiction for v, g in values.items()
        }
        passing = []
        for value, group in values.items():
            independent = any(
                x["agent"] != y["agent"] and x["source_hash"] != y["source_hash"]
                for x in group
                for y in group
            )
            contradicted = any(strong[o] for o in values if o != value)
            if independent and not contradicted:
                passing.append(value)
        if len(passing) != 1:
            return ("contested", None, None, None)
        group = values[passing[0]]
        prod = 1.0
        for c in group:
            prod *= 1.0 - c["eff"]
        w = _latest(group)
        return ("answered", w["id"], w["object"], 1.0 - prod)
    raise ValueError(lens)
