"""How beliefs are resolved: decay half-lives, default trust, skeptic threshold."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from steme_lake._exceptions import ValidationError

__all__ = ["DEFAULT_HALF_LIFE_DAYS", "ResolutionOptions"]

DEFAULT_HALF_LIFE_DAYS = 180.0
DEFAULT_TRUST = 0.5
SEED_TRUST = 1.0
DEFAULT_SEED_AGENTS = ("human*",)
SKEPTIC_CONTRADICTION = 0.5
_DAY_US = 86_400_000_000


@dataclass(frozen=True, slots=True)
class ResolutionOptions:
    """Knobs of belief resolution. The same options and as-of give the same answer.

    Attributes
    ----------
    half_life_days
        Default confidence half-life; ``None`` means no decay.
    half_lives
        Per subject prefix (``{"auth": 365, "news": 2}``): the longest matching
        prefix wins; a value of ``None`` turns decay off under that prefix.
    default_trust
        Trust of an agent with no trust score for the topic.
    seed_agents
        Names (or ``prefix*`` patterns) of agents trusted before any score
        exists, e.g. humans; they get ``seed_trust``.
    seed_trust
        Their trust.
    skeptic_contradiction
        The skeptic lens refuses to answer when another value has a candidate
        with effective confidence at or above this.
    """

    half_life_days: float | None = DEFAULT_HALF_LIFE_DAYS
    half_lives: Mapping[str, float | None] = field(default_factory=dict)
    default_trust: float = DEFAULT_TRUST
    seed_agents: tuple[str, ...] = DEFAULT_SEED_AGENTS
    seed_trust: float = SEED_TRUST
    skeptic_contradiction: float = SKEPTIC_CONTRADICTION

    def __post_init__(self) -> None:
        for prefix, days in {"(default)": self.half_life_days, **dict(self.half_lives)}.items():
            if days is not None and (not math.isfinite(days) or days <= 0):
                raise ValidationError(f"half-life for {prefix} must be a positive number of days")
        for name in ("default_trust", "seed_trust", "skeptic_contradiction"):
            value: Any = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValidationError(f"{name} must be a finite number >= 0")

    def half_life_us(self, subject: str) -> float | None:
        """The half-life that applies to ``subject``, in microseconds (None: no decay)."""
        from steme_lake.query._paths import covers

        best: tuple[int, float | None] | None = None
        for prefix, days in self.half_lives.items():
            if covers(prefix, subject) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), days)
        days = self.half_life_days if best is None else best[1]
        return None if days is None else days * _DAY_US

    def is_seed(self, agent: str) -> bool:
        return any(
            agent.startswith(p[:-1]) if p.endswith("*") else agent == p for p in self.seed_agents
        )
