"""Regenerate datasets/jwt_incident.jsonl: the JWT incident of MISSION.md.

Deterministic (seeded). The story: the platform team approved RS256 weeks
before; at 14:30 a research agent stores an ES256 proposal; at 20:55 the lead
orchestrator asks with no lifecycle filter (recency) and hands ES256 down; the
implementation agent derives a config from it; at 21:00 the deploy agent
ships it; every token fails. Around it: ordinary background traffic on other
subjects. Run: python datasets/make_jwt_incident.py
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from pathlib import Path

OUT = Path(__file__).with_name("jwt_incident.jsonl")
rng = random.Random(20260115)
events: list[dict] = []


def t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def add(at: datetime, op: str, agent: str, **fields: object) -> None:
    events.append({"op": op, "at": at.isoformat().replace("+00:00", "Z"), "agent": agent, **fields})


# --- weeks before: the approved decision and the background knowledge --------
add(
    t("2025-12-18T10:00:00Z"),
    "assert",
    "platform-team",
    ref="decision",
    subject="auth/jwt",
    predicate="signing_algorithm",
    object="RS256",
    confidence=0.92,
    lifecycle="approved",
    source="https://wiki.internal/platform/adr-017-jwt-signing",
    meta={"reason": "auth-service verifies with the RSA public key set", "context": "ADR-017"},
)
add(t("2025-12-18T10:05:00Z"), "vote", "human-supervisor", target="decision", weight=1.0)
add(
    t("2025-12-18T11:00:00Z"),
    "assert",
    "platform-team",
    ref="jwt-ttl",
    subject="auth/jwt",
    predicate="token_ttl_seconds",
    object=3600,
    confidence=0.9,
    lifecycle="approved",
    source="https://wiki.internal/platform/adr-017-jwt-signing",
)

BACKGROUND = [
    ("payments/retry", "max_attempts", [3, 5], "payments-agent"),
    ("db/postgres", "pool_size", [20, 32], "db-agent"),
    ("http/client", "library", ["axios", "node-fetch"], "frontend-agent"),
    ("cache/redis", "ttl_seconds", [300, 600], "platform-team"),
    ("search/index", "refresh_interval", ["1s", "30s"], "search-agent"),
    ("observability/logs", "retention_days", [14, 30], "sre-agent"),
]
refs: dict[str, str] = {}
start = t("2025-12-20T09:00:00Z")
for i, (subject, predicate, values, agent) in enumerate(BACKGROUND):
    at = start + timedelta(days=i, minutes=rng.randint(0, 300))
    ref = f"bg-{i}"
    refs[subject] = ref
    add(
        at,
        "assert",
        agent,
        ref=ref,
        subject=subject,
        predicate=predicate,
        object=values[0],
        confidence=round(rng.uniform(0.8, 0.95), 2),
        lifecycle="approved",
        source=f"https://wiki.internal/{subject}/{predicate}",
    )
    add(at + timedelta(hours=2), "vote", "platform-team", target=ref, weight=1.0)
    add(
        at + timedelta(hours=3),
        "vote",
        "sre-agent",
        target=ref,
        weight=round(rng.uniform(0.5, 1), 2),
    )

# A lifecycle move and a proposal that was reviewed and rejected, long before.
add(
    t("2026-01-05T10:00:00Z"),
    "assert",
    "search-agent",
    ref="bg-proposal",
    subject="search/index",
    predicate="refresh_interval",
    object="5s",
    confidence=0.7,
    lifecycle="proposed",
    source="https://forum.example/es-tuning",
)
add(
    t("2026-01-06T15:00:00Z"),
    "lifecycle",
    "human-supervisor",
    target="bg-proposal",
    stage="deprecated",
    reason="benchmarks showed no gain",
)
add(
    t("2026-01-10T08:00:00Z"),
    "constraint",
    "human-supervisor",
    context="http/client",
    forbidden="request",
    must_use="axios",
    reason="request is unmaintained (CVE backlog)",
)

# --- the incident day, 2026-01-15 ---------------------------------------------
day = t("2026-01-15T08:00:00Z")
background_times = sorted(day + timedelta(minutes=rng.randint(0, 12 * 60)) for _ in range(30))
AGENTS = ["payments-agent", "db-agent", "frontend-agent", "search-agent", "sre-agent"]
STORY = [
    (
        t("2026-01-15T14:30:00Z"),
        "assert",
        "research-agent",
        dict(
            ref="rfc",
            subject="auth/jwt",
            predicate="signing_algorithm",
            object="ES256",
            confidence=0.87,
            lifecycle="proposed",
            source="https://rfc.example/jwt-es256",
            meta={"context": "RFC survey: ES256 gives smaller tokens and faster signing"},
        ),
    ),
    (t("2026-01-15T14:31:00Z"), "vote", "research-agent", dict(target="rfc", weight=0.8)),
    (
        t("2026-01-15T20:55:00Z"),
        "query",
        "lead-orchestrator",
        dict(subject="auth/jwt", predicate="signing_algorithm", lens="recency"),
    ),
    (
        t("2026-01-15T20:56:30Z"),
        "query",
        "implementation-agent",
        dict(subject="auth/jwt", predicate="token_ttl_seconds", lens="recency"),
    ),
    (
        t("2026-01-15T20:57:00Z"),
        "assert",
        "implementation-agent",
        dict(
            ref="impl",
            subject="services/auth/config",
            predicate="jwt_algorithm",
            object="ES256",
            confidence=0.87,
            lifecycle="approved",
            parent="rfc",
            source="https://git.internal/auth-service/pull/4242",
            meta={"context": "told by lead-orchestrator: use ES256"},
        ),
    ),
    (
        t("2026-01-15T20:59:00Z"),
        "query",
        "deploy-agent",
        dict(subject="services/auth/config", predicate="jwt_algorithm", lens="recency"),
    ),
    (
        t("2026-01-15T20:59:30Z"),
        "query",
        "deploy-agent",
        dict(subject="auth/jwt", predicate="signing_algorithm", lens="recency"),
    ),
    (
        t("2026-01-15T21:00:00Z"),
        "assert",
        "deploy-agent",
        dict(
            ref="deploy",
            subject="deploy/auth-service",
            predicate="config_version",
            object="v2026.01.15-es256",
            confidence=1.0,
            lifecycle="approved",
            parent="impl",
            source="https://ci.internal/deploy/auth-service/8812",
        ),
    ),
    (
        t("2026-01-15T21:04:00Z"),
        "assert",
        "monitoring-agent",
        dict(
            subject="services/auth",
            predicate="status",
            object="401 for all requests",
            confidence=0.99,
            lifecycle="approved",
            source="https://alerts.internal/incident/auth-401",
        ),
    ),
]
bg = []
for at in background_times:
    subject, predicate, values, _owner = rng.choice(BACKGROUND)
    agent = rng.choice(AGENTS)
    if rng.random() < 0.75:
        bg.append(
            (
                at,
                "query",
                agent,
                dict(
                    subject=subject,
                    predicate=predicate,
                    lens=rng.choice(["recency", "consensus", "authority"]),
                    lifecycle="approved",
                ),
            )
        )
    else:
        bg.append(
            (at, "vote", agent, dict(target=refs[subject], weight=round(rng.uniform(-0.5, 1), 2)))
        )
for at, op, agent, fields in sorted(STORY + bg, key=lambda e: e[0]):
    add(at, op, agent, **fields)

OUT.write_text("".join(json.dumps(e, sort_keys=False) + "\n" for e in events), encoding="utf-8")
print(f"wrote {len(events)} events to {OUT}")
