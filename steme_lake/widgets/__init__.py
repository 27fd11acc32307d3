"""The explorer: an ipywidgets investigation console for notebooks (issue 22).

``sl.widgets.Explorer(lake)`` or ``lake.explore()``; needs the ``notebooks``
extra (ipywidgets and bqplot).
"""

from steme_lake.widgets._explorer import Explorer

__all__ = ["Explorer"]
