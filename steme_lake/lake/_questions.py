"""Asking the lake: queries through lenses, snapshots, constraint checks, confirmations.

Every query and constraint check is written to the audit log (in the WAL,
fsync'd) before its answer is returned.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import polars as pl

from steme_lake._exceptions import ValidationError
from steme_lake._utils.canonical import canonical_json
from steme_lake._utils.timeparse import TimeLike, now_us, to_us, us_to_datetime
from steme_lake.lake import _rows as rows
from steme_lake.lake._quiet import Quiet, asks
from steme_lake.model.schema import LIFECYCLE_STAGES
from steme_lake.query._answer import Answer, Candidates, ConstraintCheck
from steme_lake.query._candidates import Tables
from steme_lake.query._paths import subject_matcher
from steme_lake.query._point import resolve_rows
from steme_lake.query._resolve import (
    ENGINE,
    active_constraints,
    resolve_point,
    snapshot,
    violations,
)
from steme_lake.query.lenses import get_lens, lens_names

if TYPE_CHECKING:
    from steme_lake.lake._options import LakeOptions
    from steme_lake.query._index import StateIndex
    from steme_lake.wal import WriteAheadLog

__all__ = ["NOT_GIVEN", "QuestionsMixin", "normalize_lifecycle"]


class _NotGiven:
    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Any = _NotGiven()


def normalize_lifecycle(value: Any) -> tuple[str, ...] | None:
    """A stage, a list of stages, or None (all stages)."""
    if value is None:
        return None
    stages = [value] if isinstance(value, str) else value
    if not isinstance(stages, list | tuple) or not stages:
        raise ValidationError(
            f"lifecycle must be a stage, a list of stages, or None; got {value!r}"
        )
    for stage in stages:
        rows.choice("lifecycle stage", stage, LIFECYCLE_STAGES)
    return tuple(dict.fromkeys(stages))


def check_query_args(
    subject: Any,
    predicate: Any,
    lens: Any,
    lifecycle: Any,
    min_confidence: Any,
    include_superseded: Any,
    agent: Any,
) -> tuple[str, str, str, tuple[str, ...] | None, float | None, bool, str]:
    """Validate a question's arguments (shared by the API, the import and the servers)."""
    if lens != "constraints":
        get_lens(lens)
    if not isinstance(include_superseded, bool):
        raise ValidationError("include_superseded must be True or False")
    return (
        rows.subject_text(subject),
        str(rows.text("predicate", predicate)),
        str(lens),
        normalize_lifecycle(lifecycle),
        None if min_confidence is None else rows.unit_float("min_confidence", min_confidence),
        include_superseded,
        str(rows.text("agent", agent, limit=rows.MAX_AGENT)),
    )


class QuestionsMixin:
    """The question-answering half of `Lake`."""

    if TYPE_CHECKING:
        options: LakeOptions
        _wal: WriteAheadLog
        _index: StateIndex | None
        _busy_keys: set[tuple[str, str]]
        _quiet: Quiet

        def _refresh(self) -> None: ...
        def _refresh_to_read(self) -> None: ...
        def _ready_index(self) -> StateIndex | None: ...

        def _check_open(self) -> None: ...
        def _tables(self) -> Tables: ...
        def _resolution_tables(self) -> Tables: ...
        def _commit(self, pending: Sequence[rows.PendingRow]) -> list[str]: ...

    def _warm(self, stop: threading.Event) -> None:
        """Work out the busiest keys' current recency answers (the default question),
        make the orders impact's lookups read (`query/_lookups.py`), then work out
        the largest keys' candidates, largest first, so that their first questions
        are answered from memory too (`query/_current.py`). Runs once the state
        index is ready, in its thread; not audited (nobody asked). A write to a
        key makes its next question resolve it again. Point questions come first:
        while one was asked in the last `_quiet.QUIET_S`, it waits (its Python
        would take the interpreter lock from theirs, for up to 5 ms a time: the
        1M benchmark's point p99 rose during the 2.5 s it took)."""
        index = self._index
        if index is None:
            return
        if not self._quiet.wait(stop, points_only=True):
            return
        # Every busy key's answer to the default question, in one pass.
        index.summarize(self._now_as_of(), self.options.resolution)
        if not self._quiet.wait(stop, points_only=True):
            return
        # The assertions by id and by agent, for impact (`query/_lookups.py`).
        index.prepare_lookups()
        for subject, predicate in index.busiest():
            if not self._quiet.wait(stop, points_only=True):
                return
            self._busy_keys.add((subject, predicate))
            # ... and the largest keys' candidates too (a server lists the best
            # few of them in each answer): worked out, they are remembered.
            answer = self._answer(
                None,
                subject,
                predicate,
                lens="recency",
                stages=None,
                min_confidence=None,
                include_superseded=False,
                as_of=self._now_as_of(),
                requested=None,
            )
            if isinstance(answer.candidates, Candidates):
                answer.candidates.load()

    def _now_as_of(self) -> int:
        return max(now_us(), self._wal.last_time)

    def _as_of(self, as_of: TimeLike | None) -> int:
        return self._now_as_of() if as_of is None else to_us(as_of, name="as_of")

    @property
    def lenses(self) -> list[str]:
        """The registered lens names."""
        return lens_names()

    def query(
        self,
        subject: str,
        predicate: str,
        *,
        agent: str,
        lens: str = "recency",
        lifecycle: str | Sequence[str] | None = None,
        min_confidence: float | None = None,
        as_of: TimeLike | None = None,
        include_superseded: bool = False,
    ) -> Answer:
        """Answer ``subject predicate ?`` through a lens; the question is audited.

        Parameters
        ----------
        subject, predicate
            What is asked, e.g. ``"auth/jwt", "signing_algorithm"``.
        agent
            Who asks (recorded in the audit log).
        lens
            ``recency`` (latest wins), ``consensus`` (votes weighted by trust),
            ``authority`` (most trusted agent times confidence), ``skeptic``
            (only uncontested, independently supported answers) or
            ``constraints`` (the constraints in force for the subject).
        lifecycle
            A stage, a list of stages, or None for all. Without it a proposal
            can be returned as if it were a decision.
        min_confidence
            On effective (decayed) confidence.
        as_of
            Time travel: only records at or before this time exist.
        include_superseded
            Also weigh superseded assertions.

        Examples
        --------
        >>> import steme_lake as sl, tempfile
        >>> lake = sl.open(tempfile.mkdtemp())
        >>> _ = lake.assert_("auth/jwt", "signing_algorithm", "RS256", agent="platform-team",
        ...                  lifecycle="approved", source="https://wiki/adr-17")
        >>> lake.query("auth/jwt", "signing_algorithm", agent="me", lifecycle="approved").value
        'RS256'
        >>> lake.close()
        """
        answer, audit = self._question(
            subject,
            predicate,
            agent=agent,
            lens=lens,
            lifecycle=lifecycle,
            min_confidence=min_confidence,
            as_of=as_of,
            include_superseded=include_superseded,
        )
        (query_id,) = self._commit([audit])
        return _with_id(answer, query_id)

    def _question(
        self,
        subject: str,
        predicate: str,
        *,
        agent: str,
        lens: str = "recency",
        lifecycle: str | Sequence[str] | None = None,
        min_confidence: float | None = None,
        as_of: TimeLike | None = None,
        include_superseded: bool = False,
        audit_params: Mapping[str, Any] | None = None,
    ) -> tuple[Answer, rows.PendingRow]:
        """`query`'s answer (without its id) and its audit row, not yet committed
        (``audit_params``: more for the record's ``params``, e.g. a claimed name)."""
        started = self._quiet.mark()
        self._check_open()
        subject, predicate, lens, stages, min_confidence, include_superseded, agent = (
            check_query_args(
                subject, predicate, lens, lifecycle, min_confidence, include_superseded, agent
            )
        )
        t = self._as_of(as_of)
        answer = self._answer(
            None,
            subject,
            predicate,
            lens=lens,
            stages=stages,
            min_confidence=min_confidence,
            include_superseded=include_superseded,
            as_of=t,
            requested=as_of,
        )
        return answer, self._audit_row(answer, agent, started, at=None, extra=audit_params)

    def _answer(
        self,
        tables: Tables | None,
        subject: str,
        predicate: str,
        *,
        lens: str,
        stages: tuple[str, ...] | None,
        min_confidence: float | None,
        include_superseded: bool,
        as_of: int,
        requested: TimeLike | None,
    ) -> Answer:
        filters = {
            "lifecycle": None if stages is None else list(stages),
            "min_confidence": min_confidence,
            "include_superseded": include_superseded,
            "as_of_requested": None if requested is None else str(requested),
        }
        if lens == "constraints":
            tables = tables if tables is not None else self._tables()
            found = active_constraints(
                tables, subject, predicate, as_of=as_of, opts=self.options.resolution
            )
            value = [
                {
                    "id": c.id,
                    "context": c.context,
                    "forbidden": c.forbidden,
                    "must_use": c.must_use,
                    "reason": c.reason,
                }
                for c in found
            ]
            return Answer(
                subject,
                predicate,
                lens,
                "answered" if found else "no_answer",
                value if found else None,
                1.0 if found else None,
                None,
                None,
                tuple(c.id for c in found),
                (),
                (),
                us_to_datetime(as_of),
                None,
                filters,
            )
        result = None
        # How to resolve, the same on every path below.
        how: dict[str, Any] = {
            "lens": lens,
            "as_of": as_of,
            "lifecycle": stages,
            "min_confidence": min_confidence,
            "include_superseded": include_superseded,
            "opts": self.options.resolution,
        }
        if tables is None:  # the lake itself, not an overlay: the index answers if ready
            self._refresh_to_read()
            index = self._ready_index()
            if index is not None:
                # A busy key's current recency answer is remembered between the
                # writes that change it (`query/_current.py`).
                current = lens == "recency" and min_confidence is None and requested is None
                slot = (subject, predicate, stages, include_superseded)
                if current:
                    result = index.current_answer(slot, as_of, self.options.resolution)
                if result is None:
                    point = index.rows(subject, predicate, watch=current)
                    if point.hot:
                        self._busy_keys.add((subject, predicate))
                    result = resolve_rows(point, **how)
                    if current and point.watch is not None and result is not None:
                        index.remember(slot, point, as_of, result)
            if result is None:
                tables = self._tables()
        if result is None:
            assert tables is not None
            result = resolve_point(tables, subject, predicate, **how)
        contributing, sources = result.candidates.cited(lens, result.winner)
        return Answer(
            subject=subject,
            predicate=predicate,
            lens=lens,
            status=result.status,
            value=result.value,
            confidence=result.confidence,
            lifecycle=result.lifecycle,
            assertion=result.winner,
            contributing=contributing,
            sources=sources,
            candidates=result.candidates,
            as_of=us_to_datetime(as_of),
            filters=filters,
        )

    def _is_busy(self, subject: str, predicate: str) -> bool:
        """Whether a question about this key was found slow to answer: it has more
        than ``HOT_ROWS`` assertions (keys only grow, so once busy, always busy).
        A server answers such questions beside its batches, not inside them (a
        busy key answered from its summary works out its candidates when they
        are read, as a server does to list the best few: as slow)."""
        if (subject, predicate) in self._busy_keys:
            return True
        index = self._index
        return index is not None and index.hot_summary(subject, predicate)

    def _audit_row(
        self,
        answer: Answer,
        agent: str,
        started_ns: int,
        *,
        at: TimeLike | None,
        extra: Mapping[str, Any] | None = None,
    ) -> rows.PendingRow:
        return rows.audit_row(
            agent=agent,
            op="query",
            subject=answer.subject,
            predicate=answer.predicate,
            lens=answer.lens,
            lifecycle=answer.filters["lifecycle"],
            min_confidence=answer.filters["min_confidence"],
            as_of=answer.as_of,
            include_superseded=answer.filters["include_superseded"],
            params={"as_of_requested": answer.filters["as_of_requested"], **(extra or {})},
            status=answer.status,
            value=answer.value,
            confidence=answer.confidence,
            winner=answer.assertion,
            contributing=list(answer.contributing),
            latency_us=(time.perf_counter_ns() - started_ns) // 1000,
            at=at,
        )

    @asks
    def snapshot(
        self,
        as_of: TimeLike | None = None,
        *,
        lens: str = "recency",
        lifecycle: str | Sequence[str] | None = None,
        min_confidence: float | None = None,
        include_superseded: bool = False,
        subject: str | None = None,
    ) -> pl.LazyFrame:
        """The resolved belief for every (subject, predicate) as of a time.

        The whole world as the agents would have seen it then: one row per
        (subject, predicate) with ``value`` (JSON text), ``confidence``,
        ``lifecycle``, ``assertion``, ``status`` and the number of candidates.
        An analysis call: not written to the audit log.

        The answer is worked out when called, from the state index in memory
        once it is ready, and handed back as a LazyFrame (``.collect()`` is
        then immediate): narrow it with ``subject=`` (a glob), which prunes
        before resolving, rather than with a filter afterwards.
        """
        self._check_open()
        get_lens(lens)
        if not isinstance(include_superseded, bool):
            raise ValidationError("include_superseded must be True or False")
        plan = snapshot(
            self._resolution_tables(),
            lens=lens,
            as_of=self._as_of(as_of),
            lifecycle=normalize_lifecycle(lifecycle),
            min_confidence=None
            if min_confidence is None
            else rows.unit_float("min_confidence", min_confidence),
            include_superseded=include_superseded,
            opts=self.options.resolution,
            subject_filter=subject_matcher(subject),
        )
        return plan.collect(engine=ENGINE).lazy()

    def check_constraints(
        self,
        context: str,
        *,
        agent: str,
        proposed: Any = NOT_GIVEN,
        predicate: str | None = None,
        as_of: TimeLike | None = None,
        _audit_params: Mapping[str, Any] | None = None,
    ) -> ConstraintCheck:
        """Pre-flight check: the constraints in force for ``context`` and its parents.

        With ``proposed=``, also says which constraints the proposal violates.
        A proposal that honours every constraint found counts as a successful
        use of them (their decay clock restarts). The check is audited.

        Examples
        --------
        >>> import steme_lake as sl, tempfile
        >>> lake = sl.open(tempfile.mkdtemp())
        >>> _ = lake.add_constraint("auth", forbidden="ES256", must_use="RS256",
        ...                         reason="auth-service verifies RSA only", agent="human-sre")
        >>> lake.check_constraints("auth/jwt", agent="impl", proposed="ES256").ok
        False
        >>> lake.close()
        """
        started = time.perf_counter_ns()
        self._check_open()
        context = str(rows.text("context", context))
        predicate = rows.text("predicate", predicate, optional=True)
        agent = str(rows.text("agent", agent, limit=rows.MAX_AGENT))
        if proposed is not NOT_GIVEN:
            canonical_json(proposed, name="proposed")
        t = self._as_of(as_of)
        found = active_constraints(
            self._tables(), context, predicate, as_of=t, opts=self.options.resolution
        )
        broken = violations(found, proposed) if proposed is not NOT_GIVEN else []
        status = "no_constraints" if not found else ("violation" if broken else "ok")
        audit = rows.audit_row(
            agent=agent,
            op="check",
            subject=context,
            predicate=predicate,
            lens="constraints",
            as_of=us_to_datetime(t),
            status=status,
            params={
                "as_of_requested": None if as_of is None else str(as_of),
                "proposed_given": proposed is not NOT_GIVEN,
                **(_audit_params or {}),
            },
            value={
                "proposed": None if proposed is NOT_GIVEN else proposed,
                "violations": [c.id for c in broken],
            },
            contributing=[c.id for c in found],
            latency_us=(time.perf_counter_ns() - started) // 1000,
        )
        pending = [audit]
        if proposed is not NOT_GIVEN and found and not broken and as_of is None:
            # Found and honoured: a successful use keeps the constraints fresh.
            pending += [
                rows.confirmation_row(c.id, agent=agent, reason="honoured in a constraint check")
                for c in found
            ]
        query_id = self._commit(pending)[0]
        return ConstraintCheck(
            context=context,
            proposed=None if proposed is NOT_GIVEN else proposed,
            constraints=tuple(found),
            violations=tuple(broken),
            as_of=us_to_datetime(t),
            query_id=query_id,
        )

    def confirm(
        self, target: str, *, agent: str, reason: str | None = None, at: TimeLike | None = None
    ) -> str:
        """Record a successful use of an assertion or constraint: its decay clock restarts."""
        return self._commit([rows.confirmation_row(target, agent=agent, reason=reason, at=at)])[0]

    def record_trust(
        self,
        agent: str,
        topic: str,
        score: float,
        *,
        method: str = "manual",
        at: TimeLike | None = None,
    ) -> str:
        """Record an agent's trust on a topic (a subject prefix; "" for every topic)."""
        return self._commit([rows.trust_row(agent, topic, score, method=method, at=at)])[0]

    def record_trust_many(self, data: Any) -> list[str]:
        """Record many trust scores (columns agent, topic, score, method, at) in one commit."""
        from steme_lake.lake._lake import _records

        return self._commit([rows.trust_row(**r) for r in _records(data, "record_trust_many")])


def _with_id(answer: Answer, query_id: str) -> Answer:
    return replace(answer, query_id=query_id)
