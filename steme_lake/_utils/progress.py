"""Progress bars for the command line and the demo (tqdm)."""

from __future__ import annotations

import sys
from typing import Any, ClassVar

__all__ = ["Bars"]


class Bars:
    """Progress bars on stderr for long work in stages (tqdm), one bar per stage,
    drawn only on a terminal (pipes and logs stay clean; ``quiet`` for none).
    Call it as ``progress(stage, done, total)``; close it when done.

    Examples
    --------
    >>> with Bars("import", quiet=True) as bars:
    ...     bars("read", 10, 10)
    """

    UNITS: ClassVar[dict[str, str]] = {
        "read": " lines", "replay": " questions", "commit": " records", "flush": " rows",
        "embed": " assertions",
    }  # fmt: skip

    def __init__(self, name: str, *, quiet: bool = False) -> None:
        self.name = name
        self.quiet = quiet
        self.bars: dict[str, Any] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.quiet:
            return
        bar = self.bars.get(stage)
        if bar is None:
            from tqdm.auto import tqdm

            for other in self.bars.values():
                other.close()
            unit = self.UNITS.get(stage, "")
            bar = tqdm(total=total or None, desc=f"{self.name}: {stage}", unit=unit,
                       disable=None, file=sys.stderr, leave=False, dynamic_ncols=True)  # fmt: skip
            self.bars[stage] = bar
        bar.update(done - bar.n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()

    def __enter__(self) -> Bars:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
