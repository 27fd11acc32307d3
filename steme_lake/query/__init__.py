"""Belief resolution: candidates as of a time, lenses, answers, constraint checks."""

from steme_lake.query._answer import ActiveConstraint, Answer, Candidate, ConstraintCheck
from steme_lake.query._options import ResolutionOptions
from steme_lake.query._values import decoded
from steme_lake.query.lenses import get_lens, lens_names, register_lens

__all__ = [
    "ActiveConstraint",
    "Answer",
    "Candidate",
    "ConstraintCheck",
    "ResolutionOptions",
    "decoded",
    "get_lens",
    "lens_names",
    "register_lens",
]
