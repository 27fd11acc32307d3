"""The Dojo: incidents and corrections as training data (issue 18, first part:
the samples mined from the lake's history, each built as of its event's time).

Reached from a lake as ``lake.dojo`` (`DojoNamespace`).
"""

from steme_lake.dojo._mine import KINDS
from steme_lake.dojo._namespace import DojoNamespace

__all__ = ["KINDS", "DojoNamespace"]
