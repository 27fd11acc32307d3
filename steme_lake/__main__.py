"""``python -m steme_lake``: the ``steme`` command."""

from steme_lake.cli import run

run()
