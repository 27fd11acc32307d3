"""How the Gardener builds the trust graph and ranks it (one frozen dataclass)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from steme_lake._exceptions import ValidationError

__all__ = ["TrustOptions"]

DEFAULT_SEEDS = ("human*",)


@dataclass(frozen=True, slots=True)
class TrustOptions:
    """The Gardener's knobs; every run stores them with its scores.

    Attributes
    ----------
    depth
        A topic is a subject's first ``depth`` path parts (``auth`` for
        ``auth/jwt`` at depth 1); the global topic ``""`` holds every edge.
    seeds
        Pre-trusted agents (names, or prefixes ending in ``*``): the
        personalisation of PageRank. With none of them in a topic's graph, the
        teleport is uniform (plain PageRank) and the result says so.
    damping
        The probability of following an edge rather than teleporting to a seed.
    tolerance, max_iterations
        Power iteration stops when the L1 change is below ``tolerance``, or after
        ``max_iterations`` (the result says whether it converged).
    approval_weight, confirmation_weight
        Edge weights of an approval (lifecycle to ``approved``) and of a
        confirmation (a successful use) of another agent's assertion. A vote's
        edge weight is the vote's weight.
    correction_weight
        The penalty a correction (supersession of kind ``invalidate``) puts on
        the author of each assertion it invalidates.
    voter_penalty
        The share of that penalty put on each agent that voted for the
        invalidated assertion before the correction (its endorsement is dropped).
    downstream_decay, downstream_depth
        Agents that built on the bad assertion (assertions derived from it
        through parent links, or written on the same topic after an answer that
        rested on it) take ``correction_weight * downstream_decay ** distance``,
        up to ``downstream_depth`` steps away.
    half_lives
        Optional half-life in days per topic (``""`` for all): evidence that old
        weighs half as much.
    """

    depth: int = 1
    seeds: tuple[str, ...] = DEFAULT_SEEDS
    damping: float = 0.85
    tolerance: float = 1e-10
    max_iterations: int = 200
    approval_weight: float = 1.0
    confirmation_weight: float = 0.5
    correction_weight: float = 1.0
    voter_penalty: float = 0.5
    downstream_decay: float = 0.5
    downstream_depth: int = 3
    half_lives: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.depth, int) or self.depth < 1:
            raise ValidationError(f"depth must be a whole number >= 1, got {self.depth!r}")
        if not 0 < self.damping < 1:
            raise ValidationError(
                f"damping must be between 0 and 1 (exclusive), got {self.damping}"
            )
        if not self.tolerance > 0 or self.max_iterations < 1:
            raise ValidationError("tolerance must be > 0 and max_iterations >= 1")
        if not 0 <= self.downstream_depth <= 3:
            raise ValidationError("downstream_depth must be 0 to 3")
        for name in (
            "approval_weight",
            "confirmation_weight",
            "correction_weight",
            "voter_penalty",
            "downstream_decay",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValidationError(f"{name} must be a number, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise ValidationError(f"{name} must be a finite number >= 0, got {value!r}")
        if isinstance(self.seeds, str) or not all(isinstance(s, str) and s for s in self.seeds):
            raise ValidationError(
                "seeds must be a tuple of agent names or prefixes such as 'human*'"
            )
        for topic, days in self.half_lives.items():
            if not (isinstance(days, int | float) and math.isfinite(days) and days > 0):
                raise ValidationError(
                    f"half-life of topic {topic!r} must be days > 0, got {days!r}"
                )

    def is_seed(self, agent: str) -> bool:
        return any(agent.startswith(s[:-1]) if s.endswith("*") else agent == s for s in self.seeds)

    def describe(self) -> str:
        """The parameters as the ``method`` text of the stored scores."""
        return (
            f"trustrank/v1 depth={self.depth} seeds={','.join(self.seeds)} damping={self.damping} "
            f"correction={self.correction_weight} voter={self.voter_penalty} "
            f"downstream={self.downstream_decay}^{self.downstream_depth}"
        )
