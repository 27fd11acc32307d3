"""A seeded generator of realistic lakes, written through the public bulk API.

Thirty days of agent activity, hour by hour. Each hour holds:

- assertions (`Lake.assert_many`): Zipf-spread subjects such as
  ``svc/421/auth/jwt``, about 50 predicates, about 1,000 agents (also
  Zipf: a few agents write most), a lifecycle mix (50% proposed, 15% under
  review, 30% approved, 5% deprecated), sources shared by a few assertions;
- votes on recent assertions (`Lake.vote_many`), half as many;
- lifecycle changes (5%), supersessions (0.3%, by assertion and by source)
  and constraints (0.1%) (`Lake.import_events`);
- query-audit records, ten per assertion (`Lake.import_audit`), asked by
  the same Zipf agents about the same Zipf subjects, citing recent
  assertions.

Within an hour the kinds keep to their own minutes (assertions in the first
40, then votes, lifecycle, supersessions, constraints, audit), because the
lake takes history only in time order. The same seed gives the same lake.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

import steme_lake as sl

__all__ = ["Plan", "ensure", "generate", "plan_for"]

AREAS = ["auth", "db", "cache", "queue", "deploy", "net", "storage", "billing", "search", "ml"]
THINGS = ["jwt", "tls", "pool", "ttl", "retry", "limits", "region", "version", "owner", "quota"]
PREDICATES = [
    f"{verb}_{noun}"
    for verb in ("max", "min", "default", "signing", "preferred")
    for noun in ("algorithm", "size", "timeout", "replicas", "version", "owner", "region",
                 "mode", "limit", "policy")
]  # fmt: skip
STAGES = ["proposed", "under_review", "approved", "deprecated"]
STAGE_WEIGHTS = [0.50, 0.15, 0.30, 0.05]
LENSES = ["recency", "recency", "recency", "consensus", "authority", "skeptic"]

DAYS = 30
HOURS = DAYS * 24


def default_start() -> datetime:
    """2026-10-01 00:00 UTC: a fixed start, so that a seed gives the same ids every
    run; a machine whose clock is earlier gets the 30 days before its "now"."""
    fixed = datetime(2026, 10, 1, tzinfo=UTC)
    latest = (datetime.now(UTC) - timedelta(days=DAYS + 1)).replace(
        minute=0, second=0, microsecond=0
    )
    return min(fixed, latest)


START = default_start()


@dataclass(frozen=True)
class Plan:
    """How big a lake to make: counts and the spread of keys."""

    assertions: int
    seed: int = 42
    audit_per_assertion: int = 10
    agents: int = 1000
    subjects: int = 0  # 0: one subject per 10 assertions
    votes_per_assertion: float = 0.5
    lifecycle_rate: float = 0.05
    supersession_rate: float = 0.003
    constraint_rate: float = 0.001
    zipf: float = 1.1
    start: datetime = START
    hours: int = HOURS
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_subjects(self) -> int:
        return self.subjects or max(100, self.assertions // 10)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(hours=self.hours)


SIZES = {"100k": 100_000, "1M": 1_000_000, "10M": 10_000_000}


def plan_for(size: str, seed: int = 42) -> Plan:
    """The plan for a size name (``100k``, ``1M``, ``10M``) or a plain number."""
    n = SIZES.get(size)
    if n is None:
        try:
            n = int(size.replace("_", ""))
        except ValueError:
            raise SystemExit(f"unknown size {size!r}: use 100k, 1M, 10M or a number") from None
    return Plan(assertions=n, seed=seed)


def subject_name(k: int) -> str:
    """Subject number ``k`` as a path: ``svc/<service>/<area>/<thing>``."""
    return f"svc/{k // 100}/{AREAS[(k // 10) % 10]}/{THINGS[k % 10]}"


def _zipf(rng: np.random.Generator, n: int, size: int, s: float) -> np.ndarray:
    """``size`` draws from 0..n-1, rank k with weight 1/(k+1)^s, ranks shuffled once."""
    weights = 1.0 / np.arange(1, n + 1) ** s
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    return np.searchsorted(cdf, rng.random(size))


def _times(rng: np.random.Generator, start_us: int, span_us: int, n: int) -> pl.Series:
    """``n`` sorted times in [start, start + span), as UTC datetimes."""
    offsets = np.sort(rng.integers(0, span_us, n)) + start_us
    return pl.Series("at", offsets, dtype=pl.Int64).cast(pl.Datetime("us", "UTC"))


def _per_hour(total: float, hours: int, rng: np.random.Generator) -> np.ndarray:
    """Split ``total`` over the hours, busier by day (a daily cycle) than by night."""
    hour_of_day = np.arange(hours) % 24
    weight = 1.0 + 0.8 * np.sin((hour_of_day - 6) / 24 * 2 * np.pi)
    raw = weight / weight.sum() * total
    counts = np.floor(raw).astype(np.int64)
    short = round(total) - int(counts.sum())
    if short > 0:
        counts[rng.choice(hours, short, replace=False)] += 1
    return counts


@dataclass
class Ingest:
    """What writing the lake cost, per record kind."""

    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    assertion_batches_s: list[float] = field(default_factory=list)

    def add(self, kind: str, n: int, seconds: float) -> None:
        self.rows[kind] = self.rows.get(kind, 0) + n
        self.seconds[kind] = self.seconds.get(kind, 0.0) + seconds

    def to_dict(self) -> dict[str, Any]:
        return {
            kind: {
                "rows": self.rows[kind],
                "seconds": round(self.seconds[kind], 3),
                "rows_per_second": round(self.rows[kind] / max(self.seconds[kind], 1e-9), 1),
            }
            for kind in self.rows
        }


def _timed(ingest: Ingest, kind: str, n: int, call: Callable[[Any], Any], data: Any) -> Any:
    t = time.perf_counter()
    out = call(data)
    ingest.add(kind, n, time.perf_counter() - t)
    return out


def generate(
    lake: sl.Lake, plan: Plan, progress: Callable[[int, int], None] | None = None
) -> Ingest:
    """Write ``plan`` into ``lake`` (which should be empty); return the ingest costs."""
    rng = np.random.default_rng(plan.seed)
    ingest = Ingest()
    agents = [f"agent-{i:04d}" for i in range(plan.agents)]
    per_hour = _per_hour(plan.assertions, plan.hours, rng)
    sources = [rng.bytes(32).hex() for _ in range(max(100, plan.assertions // 3))]
    recent: list[str] = []  # ids of the last few hours' assertions, for votes and audit
    recent_sources: list[str] = []
    hour_us = 3_600_000_000
    minute = hour_us // 60
    start_us = int(plan.start.timestamp() * 1_000_000)
    for h in range(plan.hours):
        n = int(per_hour[h])
        t0 = start_us + h * hour_us
        if n:
            subj = _zipf(rng, plan.n_subjects, n, plan.zipf)
            preds = rng.integers(0, len(PREDICATES), n)
            who = _zipf(rng, plan.agents, n, plan.zipf)
            src = rng.integers(0, len(sources), n)
            batch = pl.DataFrame(
                {
                    "subject": [subject_name(int(k)) for k in subj],
                    "predicate": [PREDICATES[int(p)] for p in preds],
                    "object": [f"v{int(x)}" for x in rng.integers(0, 8, n)],
                    "confidence": np.round(rng.uniform(0.4, 1.0, n), 3),
                    "agent": [agents[int(a)] for a in who],
                    "lifecycle": rng.choice(STAGES, n, p=STAGE_WEIGHTS).tolist(),
                    "source_hash": [sources[int(s)] for s in src],
                    "at": _times(rng, t0, 40 * minute, n),
                }
            )
            ids = _timed(ingest, "assertions", n, lake.assert_many, batch)
            recent = (recent + ids)[-max(10_000, 4 * n) :]
            recent_sources = (recent_sources + batch["source_hash"].to_list())[-10_000:]
        if not recent:
            continue
        pick = functools.partial(_pick, rng, recent)
        nv = int(rng.poisson(n * plan.votes_per_assertion))
        if nv:
            votes = pl.DataFrame(
                {
                    "target": pick(nv),
                    "agent": [agents[int(a)] for a in _zipf(rng, plan.agents, nv, plan.zipf)],
                    "weight": rng.choice([1.0, 1.0, 1.0, -1.0, 0.5], nv).tolist(),
                    "at": _times(rng, t0 + 40 * minute, 5 * minute, nv),
                }
            )
            _timed(ingest, "votes", nv, lake.vote_many, votes)
        events = _events(rng, plan, n, t0 + 45 * minute, minute, pick, recent_sources, agents)
        if events:
            _timed(ingest, "events", len(events), lake.import_events, events)
        na = n * plan.audit_per_assertion
        if na:
            audit = _audit(rng, plan, na, t0 + 50 * minute, 10 * minute, pick, agents)
            _timed(ingest, "audit", na, lake.import_audit, audit)
        if progress is not None:
            progress(h + 1, plan.hours)
    return ingest


def ensure(path: Path, size: str, *, bar: bool = False) -> float | None:
    """The generated lake of ``size`` at ``path``, made (and flushed) when missing;
    the seconds it took to make, or None when it was there already. ``bar``: a
    progress bar on stderr (tqdm)."""
    if (path / "steme_lake.json").exists():
        return None
    t = time.perf_counter()
    plan = plan_for(size)
    with sl.open(path) as lake:
        if bar:
            from tqdm import tqdm

            with tqdm(total=plan.hours, unit="h", desc="generate", disable=None) as progress:
                generate(lake, plan, lambda done, total: progress.update(done - progress.n))
        else:
            generate(lake, plan)
        lake.flush()
    return round(time.perf_counter() - t, 1)


def _pick(rng: np.random.Generator, pool: list[str], k: int) -> list[str]:
    return [pool[int(i)] for i in rng.integers(0, len(pool), k)]


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _events(
    rng: np.random.Generator,
    plan: Plan,
    n: int,
    t0: int,
    minute: int,
    pick: Callable[[int], list[str]],
    recent_sources: list[str],
    agents: list[str],
) -> list[str]:
    """Lifecycle changes, supersessions and constraints of one hour, as event lines."""
    lines: list[str] = []
    nl = int(rng.poisson(n * plan.lifecycle_rate))
    for t, target in zip(_times(rng, t0, 3 * minute, nl), pick(nl), strict=True):
        stage = str(rng.choice(["approved", "deprecated", "under_review"], p=[0.6, 0.3, 0.1]))
        lines.append(
            json.dumps(
                {"op": "lifecycle", "at": _iso(t), "agent": "platform-team", "target": target,
                 "stage": stage}
            )
        )  # fmt: skip
    ns = int(rng.poisson(n * plan.supersession_rate))
    for t in _times(rng, t0 + 3 * minute, minute, ns):
        event: dict[str, Any] = {
            "op": "supersede",
            "at": _iso(t),
            "agent": "sre-oncall",
            "kind": str(rng.choice(["invalidate", "refine", "replace"])),
            "reason": "found wrong in review",
        }
        if rng.random() < 0.8 or not recent_sources:
            event["target"] = pick(1)[0]
        else:
            event["source_hash"] = recent_sources[int(rng.integers(0, len(recent_sources)))]
        lines.append(json.dumps(event))
    nc = int(rng.poisson(n * plan.constraint_rate))
    for t in _times(rng, t0 + 4 * minute, minute, nc):
        k = int(_zipf(rng, plan.n_subjects, 1, plan.zipf)[0])
        lines.append(
            json.dumps(
                {"op": "constraint", "at": _iso(t), "agent": "sre-oncall",
                 "context": subject_name(k), "forbidden": f"v{int(rng.integers(0, 8))}",
                 "reason": "caused an incident"}
            )
        )  # fmt: skip
    return lines


def _audit(
    rng: np.random.Generator,
    plan: Plan,
    n: int,
    t0: int,
    span: int,
    pick: Callable[[int], list[str]],
    agents: list[str],
) -> pl.DataFrame:
    """``n`` query-audit records: who asked what, what they were told, from which ids."""
    subj = _zipf(rng, plan.n_subjects, n, plan.zipf)
    who = _zipf(rng, plan.agents, n, plan.zipf)
    cites = rng.integers(1, 4, n)
    cited = pick(int(cites.sum()))
    # The lists built from one flat column and their offsets: Polars took 19 s to
    # read a million Python lists (a third of the 100k lake's generation).
    ends = np.cumsum(cites)
    offsets = pa.array(np.concatenate([[0], ends]), pa.int32())
    contributing = pl.Series(pa.ListArray.from_arrays(offsets, pa.array(cited, pa.string())))
    return pl.DataFrame(
        {
            "agent": [agents[int(a)] for a in who],
            "subject": [subject_name(int(k)) for k in subj],
            "predicate": [PREDICATES[int(p)] for p in rng.integers(0, len(PREDICATES), n)],
            "lens": rng.choice(LENSES, n).tolist(),
            "status": "answered",
            "value": [f"v{int(x)}" for x in rng.integers(0, 8, n)],
            "confidence": np.round(rng.uniform(0.4, 1.0, n), 3),
            "winner": [cited[int(e) - 1] for e in ends],
            "contributing": contributing,
            "latency_us": rng.integers(200, 5000, n),
            "at": _times(rng, t0, span, n),
        }
    )
