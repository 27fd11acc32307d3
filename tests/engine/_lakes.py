"""Random lakes with every kind of trust evidence, for the engines' differential tests."""

from __future__ import annotations

import random
from pathlib import Path

import steme_lake as sl

TOPICS = ("auth", "db", "payments", "cache", "auth-v2", "search")
AGENTS = ("research-agent", "impl-agent", "deploy-agent", "lead", "human-sre", "human-lead")


def random_lake(path: Path | str, seed: int, *, events: int = 160, flush_every: int = 0) -> sl.Lake:
    """A new lake at ``path`` (see `fill`)."""
    return fill(sl.open(path), seed, events=events, flush_every=flush_every)


def fill(lake: sl.Lake, seed: int, *, events: int = 160, flush_every: int = 0) -> sl.Lake:
    """``events`` random records into ``lake``: assertions (some derived from another,
    on any topic), votes, approvals, confirmations, questions (some unfiltered),
    and invalidations by id, by source and by an agent's window. ``flush_every``:
    flush after that many events (0: all of it stays in the WAL tail)."""
    rng = random.Random(seed)
    ids: list[str] = []
    keys: list[tuple[str, str]] = []
    for i in range(events):
        r = rng.random()
        agent = rng.choice(AGENTS)
        if r < 0.35 or len(ids) < 3:
            subject = f"{rng.choice(TOPICS)}/{rng.choice(['jwt', 'pool', 'ttl', 'keys'])}"
            predicate = rng.choice(["alg", "size", "mode"])
            parent = rng.choice(ids) if ids and rng.random() < 0.3 else None
            ids.append(
                lake.assert_(
                    subject, predicate, rng.choice(["A", "B", "C", 1, 2]), agent=agent,
                    source=rng.choice(["rfc", "adr", "blog", "slack"]), parent=parent,
                    lifecycle=rng.choice(["proposed", "proposed", "approved"]),
                )
            )  # fmt: skip
            keys.append((subject, predicate))
        elif r < 0.6:
            lake.vote(rng.choice(ids), agent=agent, weight=rng.choice([1.0, 1.0, 0.5, -1.0]))
        elif r < 0.66:
            lake.set_lifecycle(rng.choice(ids), "approved", agent=agent)
        elif r < 0.72:
            lake.confirm(rng.choice(ids), agent=agent)
        elif r < 0.86:
            subject, predicate = rng.choice(keys)
            lifecycle = None if rng.random() < 0.6 else "approved"
            lake.query(subject, predicate, agent=agent, lifecycle=lifecycle)
        elif r < 0.93:
            lake.supersede(rng.choice(ids), agent=agent, kind="invalidate", reason="wrong")
        elif r < 0.96:
            lake.supersede(agent=agent, kind="invalidate", reason="bad source", source="blog")
        else:
            lake.supersede(
                agent=agent, kind="invalidate", reason="bad run",
                target_agent=rng.choice(AGENTS), window=(None, None),
            )  # fmt: skip
        if flush_every and i % flush_every == flush_every - 1:
            lake.flush()
    return lake
