"""The Gardener: per-topic TrustRank from votes, approvals, confirmations and
corrections; scores stored as trust records the lenses read as of any time.

Reached from a lake as ``lake.trust`` (`TrustNamespace`); the ranking
functions work on any signed edge list.
"""

from steme_lake.trust._batch import METHODS, analyze, read_edges
from steme_lake.trust._namespace import GARDENER, TrustNamespace
from steme_lake.trust._options import TrustOptions
from steme_lake.trust._rank import RankResult, fairness_goodness, trustrank

__all__ = [
    "GARDENER",
    "METHODS",
    "RankResult",
    "TrustNamespace",
    "TrustOptions",
    "analyze",
    "fairness_goodness",
    "read_edges",
    "trustrank",
]
