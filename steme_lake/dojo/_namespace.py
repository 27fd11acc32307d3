"""``lake.dojo``: the lake's history as training samples (the first part: mining)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import TYPE_CHECKING

import polars as pl

from steme_lake._exceptions import ValidationError
from steme_lake._utils.timeparse import TimeLike, to_us
from steme_lake.dojo._mine import KINDS, mine
from steme_lake.query._paths import subject_matcher

if TYPE_CHECKING:
    from steme_lake.lake import Lake

__all__ = ["DojoNamespace"]


class DojoNamespace:
    """The Dojo, reached as ``lake.dojo``: labelled examples of agent behaviour.

    So far it mines samples for a preview (`samples`); the export to Parquet in
    the shapes trainers load is the next part (issue 18).
    """

    def __init__(self, lake: Lake) -> None:
        self._lake = lake

    def samples(
        self,
        *,
        kinds: Sequence[str] | None = None,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        subject: str | None = None,
        as_of: TimeLike | None = None,
    ) -> pl.DataFrame:
        """The samples mined from questions asked in ``[since, until]`` on ``subject``
        (a path or glob), with the lake as it stood at ``as_of`` (default: now).

        One row per sample: its ``kind`` (`steme_lake.dojo.KINDS`), ``label``, the
        question's ``query_id``, ``agent``, ``subject``, ``predicate`` and
        ``asked_at``, the ``prompt``, ``chosen`` and ``rejected`` chat messages
        (lists of ``{role, content}``: TRL's conversational preference shape), and
        the provenance ids.
        """
        wanted = tuple(KINDS if kinds is None else kinds)
        for kind in wanted:
            if kind not in KINDS:
                close = difflib.get_close_matches(str(kind), KINDS, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValidationError(
                    f"unknown sample kind {kind!r}{hint} (kinds: {', '.join(KINDS)})"
                )
        t = self._lake._as_of(as_of)
        return mine(
            self._lake,
            kinds=wanted,
            since=None if since is None else to_us(since, name="since"),
            until=None if until is None else to_us(until, name="until"),
            subject=subject_matcher(subject),
            as_of=t,
        )
