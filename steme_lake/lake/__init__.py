"""The lake facade: writes, reads, flush and upkeep over the lower layers."""

from steme_lake.lake._investigate import NoMatchWarning
from steme_lake.lake._lake import Lake, LakeStatus, open_lake
from steme_lake.lake._options import LakeOptions

__all__ = ["Lake", "LakeOptions", "LakeStatus", "NoMatchWarning", "open_lake"]
