"""Point resolution in plain Python over the rows of one (subject, predicate).

The same semantics as the vectorized lenses (``lenses.py``), for the few rows a
point query touches, without a query plan: microseconds instead of
milliseconds. Times here are integer UTC microseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from steme_lake.query._answer import Candidates, decode_value
from steme_lake.query._candidates import decayed
from steme_lake.query._index import PointRows
from steme_lake.query._options import ResolutionOptions
from steme_lake.query._paths import covers

__all__ = ["POINT_LENSES", "resolve_rows"]

Row = dict[str, Any]


def _key(row: Row) -> tuple[int, str]:
    return (row["recorded_at"], row["id"])


def _superseded(a: Row, sups: list[Row], t: int) -> bool:
    """Whether one of ``sups`` (those aimed at ``a``'s id, source or agent)
    covers ``a`` as of ``t``."""
    for s in sups:
        if s["recorded_at"] > t:
            continue
        scope = s["scope"]
        if scope == "assertion" and s["target"] == a["id"]:
            return True
        if (
            scope == "source"
            and s["source_hash"] == a["source_hash"]
            and a["recorded_at"] <= s["recorded_at"]
        ):
            return True
        if scope == "agent_window" and s["target_agent"] == a["agent"]:
            start, end = s["window_start"], s["window_end"]
            if (start is None or a["recorded_at"] >= start) and (
                end is None or a["recorded_at"] <= end
            ):
                return True
    return False


def _trust(rows: PointRows, agent: str, subject: str, t: int, opts: ResolutionOptions) -> float:
    best: tuple[tuple[int, int, str], float] | None = None
    for r in rows.trust(agent):
        if r["recorded_at"] <= t and covers(r["topic"], subject):
            key = (len(r["topic"].rstrip("/")), r["recorded_at"], r["id"])
            if best is None or key > best[0]:
                best = (key, r["score"])
    if best is not None:
        return best[1]
    return opts.seed_trust if opts.is_seed(agent) else opts.default_trust


def candidates(
    rows: PointRows,
    *,
    as_of: int,
    lifecycle: tuple[str, ...] | None,
    min_confidence: float | None,
    include_superseded: bool,
    opts: ResolutionOptions,
) -> list[Row]:
    out: list[Row] = []
    if not rows.assertions:
        return out
    # One (subject, predicate): one half-life for all of them.
    half = opts.half_life_us(rows.assertions[0]["subject"])
    for a in rows.assertions:
        recorded = a["recorded_at"]
        if recorded > as_of:
            continue
        aid = a["id"]
        stage = a["lifecycle"]
        changes = rows.lifecycle[aid]
        if changes:
            latest = None
            for c in changes:
                if c["recorded_at"] <= as_of and (latest is None or _key(c) > _key(latest)):
                    latest = c
            if latest is not None:
                stage = latest["stage"]
        if lifecycle is not None and stage not in lifecycle:
            continue
        superseded = _superseded(a, rows.supersessions(a), as_of)
        if superseded and not include_superseded:
            continue
        eff = a["confidence"]
        last_use = recorded
        if half is not None:
            for c in rows.confirmations[aid]:
                if last_use < c["recorded_at"] <= as_of:
                    last_use = c["recorded_at"]
            eff = decayed(eff, last_use, as_of, half)
        if min_confidence is not None and eff < min_confidence:
            continue
        out.append(
            {**a, "stage": stage, "superseded": superseded, "eff": eff, "last_use": last_use}
        )
    out.sort(key=_key)
    return out


# A point lens: (candidates, oldest first; rows; as_of; opts) -> (status, winner, confidence)
PointLens = Callable[
    [list[Row], PointRows, int, ResolutionOptions], tuple[str, Row | None, float | None]
]


def _recency(
    c: list[Row], rows: PointRows, t: int, opts: ResolutionOptions
) -> tuple[str, Row | None, float | None]:
    return ("answered", c[-1], c[-1]["eff"])


def _authority(
    c: list[Row], rows: PointRows, t: int, opts: ResolutionOptions
) -> tuple[str, Row | None, float | None]:
    win = max(
        c, key=lambda r: (_trust(rows, r["agent"], r["subject"], t, opts) * r["eff"], *_key(r))
    )
    return ("answered", win, win["eff"])


def _by_value(c: list[Row]) -> dict[str, list[Row]]:
    groups: dict[str, list[Row]] = {}
    for r in c:
        groups.setdefault(r["object"], []).append(r)
    return groups


def _consensus(
    c: list[Row], rows: PointRows, t: int, opts: ResolutionOptions
) -> tuple[str, Row | None, float | None]:
    totals: dict[str, float] = {}
    best: dict[str, tuple[tuple[float, int, str], Row]] = {}
    groups = _by_value(c)
    for value, members in groups.items():
        total = 0.0
        for r in members:
            latest: dict[str, Row] = {}  # each voter's latest vote counts
            for v in rows.votes[r["id"]]:
                if v["recorded_at"] <= t and (
                    v["agent"] not in latest or _key(v) > _key(latest[v["agent"]])
                ):
                    latest[v["agent"]] = v
            support = r["eff"] + sum(
                v["weight"] * _trust(rows, v["agent"], r["subject"], t, opts)
                for v in latest.values()
            )
            total += support
            key = (support, *_key(r))
            if value not in best or key > best[value][0]:
                best[value] = (key, r)
        totals[value] = total
    win = max(groups, key=lambda v: (totals[v], *_key(groups[v][-1])))
    if totals[win] <= 0:
        return ("no_answer", None, None)
    positive = sum(max(x, 0.0) for x in totals.values())
    return ("answered", best[win][1], totals[win] / positive)


def _skeptic(
    c: list[Row], rows: PointRows, t: int, opts: ResolutionOptions
) -> tuple[str, Row | None, float | None]:
    groups = _by_value(c)
    strong = {v: max(r["eff"] for r in g) >= opts.skeptic_contradiction for v, g in groups.items()}
    passing = [
        v
        for v, g in groups.items()
        if len({r["agent"] for r in g}) >= 2
        and len({r["source_hash"] for r in g}) >= 2
        and not any(strong[o] for o in groups if o != v)
    ]
    if len(passing) != 1:
        return ("contested", None, None)
    members = groups[passing[0]]
    product = 1.0
    for r in members:
        product *= 1.0 - r["eff"]
    return ("answered", members[-1], 1.0 - product)


POINT_LENSES: dict[str, PointLens] = {
    "recency": _recency,
    "authority": _authority,
    "consensus": _consensus,
    "skeptic": _skeptic,
}


def resolve_rows(
    rows: PointRows,
    *,
    lens: str,
    as_of: int,
    lifecycle: tuple[str, ...] | None,
    min_confidence: float | None,
    include_superseded: bool,
    opts: ResolutionOptions,
) -> Any:
    """A `PointResult`, or None when the lens has no point implementation.

    A hot key (thousands of assertions) goes to the vectorized lenses over its
    own rows: the same answers (the tests compare them), without a Python row
    per candidate."""
    from steme_lake.query._resolve import PointResult, resolve_point

    fn = POINT_LENSES.get(lens)
    if fn is None:
        return None
    if rows.hot:
        assert rows.frame is not None
        first = rows.frame.row(0, named=True)
        subject, predicate = first["subject"], first["predicate"]
        tables = rows.tables(
            votes=lens == "consensus",
            confirmations=opts.half_life_us(subject) is not None,
        )
        return resolve_point(
            tables,
            subject,
            predicate,
            lens=lens,
            as_of=as_of,
            lifecycle=lifecycle,
            min_confidence=min_confidence,
            include_superseded=include_superseded,
            opts=opts,
        )
    c = candidates(
        rows,
        as_of=as_of,
        lifecycle=lifecycle,
        min_confidence=min_confidence,
        include_superseded=include_superseded,
        opts=opts,
    )
    found = Candidates.of_rows(c)
    if not c:
        return PointResult("no_answer", None, None, None, None, found)
    status, win, confidence = fn(c, rows, as_of, opts)
    if win is None:
        return PointResult(status, None, None, None, None, found)
    return PointResult(
        status, decode_value(win["object"]), confidence, win["stage"], win["id"], found
    )
