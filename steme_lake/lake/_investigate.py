"""Incident investigation: trace, diff, blame, provenance, impact, timeline.

The on-call questions (``../shared/reference/perspective-oncall-sre.md``),
each answered with Polars frames. These are analysis calls by people: they
read the lake and the audit log but do not write to it.
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from steme_lake._exceptions import UnknownRecordError, ValidationError
from steme_lake._utils.timeparse import TimeLike, to_us, us_to_datetime
from steme_lake.lake import _rows as rows
from steme_lake.lake._quiet import asks
from steme_lake.model.schema import RecordKind, spec
from steme_lake.query._answer import Answer
from steme_lake.query._candidates import Tables, as_of_lit, candidates
from steme_lake.query._paths import subject_matcher
from steme_lake.query._resolve import ENGINE, KEY_ORDER, snapshot

if TYPE_CHECKING:
    from collections.abc import Sequence

    from steme_lake.lake._options import LakeOptions
    from steme_lake.query._index import StateIndex
    from steme_lake.storage.keyindex import Keyed

__all__ = ["Blame", "Diff", "Impact", "InvestigateMixin", "NoMatchWarning"]


class NoMatchWarning(UserWarning):
    """An investigation matched nothing, probably because of a typo; the message suggests names."""


def _frame_html(title: str, frame: pl.DataFrame) -> str:
    body = frame._repr_html_() if frame.height else "<p><i>none</i></p>"
    return f"<h4>{html.escape(title)}</h4>{body}"


@dataclass(frozen=True, slots=True)
class Diff:
    """What changed in a window: the belief diff (read it first) and the records written."""

    since: Any
    until: Any
    beliefs: pl.DataFrame
    records: pl.DataFrame

    def _repr_html_(self) -> str:
        return _frame_html("beliefs that changed", self.beliefs) + _frame_html(
            "records written", self.records
        )


class Blame:
    """Who and what put an answer there: the ``answer``, and the winning
    ``assertion``, its ``lifecycle`` and the ``votes`` on it (read from the lake
    as it was when `Lake.blame` was called, on first use: a reader who wants only
    the answer does not pay for three scans)."""

    __slots__ = ("_frames", "_read", "answer")

    def __init__(
        self, answer: Answer, read: Callable[[], tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]]
    ) -> None:
        self.answer = answer
        self._read = read
        self._frames: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame] | None = None

    def _get(self) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        if self._frames is None:
            self._frames = self._read()
        return self._frames

    @property
    def assertion(self) -> pl.DataFrame:
        return self._get()[0]

    @property
    def lifecycle(self) -> pl.DataFrame:
        return self._get()[1]

    @property
    def votes(self) -> pl.DataFrame:
        return self._get()[2]

    def __repr__(self) -> str:
        return f"Blame(answer={self.answer!r})"

    def _repr_html_(self) -> str:
        return (
            self.answer._repr_html_()
            + _frame_html("winning assertion", self.assertion)
            + _frame_html("its lifecycle", self.lifecycle)
            + _frame_html("votes on it", self.votes)
        )


@dataclass(frozen=True, slots=True)
class Impact:
    """Everything one assertion touched."""

    assertion: str
    summary: pl.DataFrame
    queries: pl.DataFrame
    agents: pl.DataFrame
    assertions: pl.DataFrame
    constraints: pl.DataFrame
    votes: pl.DataFrame
    depth: int = 1

    def _repr_html_(self) -> str:
        levels = "" if self.depth == 1 else f", {self.depth} levels down"
        return "".join(
            _frame_html(t, f)
            for t, f in (
                ("summary" + levels, self.summary),
                ("queries it (or what came of it) contributed to", self.queries),
                ("agents that received it", self.agents),
                ("later assertions derived from it", self.assertions),
                ("constraints citing it", self.constraints),
                ("votes on it", self.votes),
            )
        )


def _window(since: TimeLike, until: TimeLike | None) -> tuple[int, int]:
    start = to_us(since, name="since")
    end = to_us("now", name="until") if until is None else to_us(until, name="until")
    if end <= start:
        raise ValidationError(
            f"the window is empty: until ({us_to_datetime(end)}) is not after since "
            f"({us_to_datetime(start)}); pass an earlier since or a later until"
        )
    return start, end


def _in_window(start: int, end: int) -> pl.Expr:
    return (pl.col("recorded_at") > as_of_lit(start)) & (pl.col("recorded_at") <= as_of_lit(end))


class InvestigateMixin:
    """The investigation half of `Lake`."""

    if TYPE_CHECKING:
        options: LakeOptions
        _index: StateIndex | None

        def _tables(self) -> Tables: ...
        def _resolution_tables(self) -> Tables: ...
        def _keyed(self) -> Keyed: ...
        def _refresh_to_read(self) -> None: ...
        def _ready_index(self) -> StateIndex | None: ...
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
        ) -> Answer: ...
        def _as_of(self, as_of: TimeLike | None) -> int: ...
        @property
        def audit(self) -> pl.LazyFrame: ...

    @asks
    def trace(
        self, agent: str, since: TimeLike, until: TimeLike | None = None, subject: str | None = None
    ) -> pl.DataFrame:
        """The agent's queries and constraint checks in a window, oldest first.

        ``since``/``until`` take ISO-8601 or relative text (``"-6h"``);
        ``subject`` takes a glob such as ``"auth/*"``.
        """
        agent = str(rows.text("agent", agent, limit=rows.MAX_AGENT))
        start, end = _window(since, until)
        audit = self._tables_audit()
        frame = audit.filter(pl.col("agent") == agent, _in_window(start, end))
        match = subject_matcher(subject)
        if match is not None:
            frame = frame.filter(match)
        out = (
            frame.sort("recorded_at", "id")
            .select(
                pl.col("id").alias("query_id"),
                "recorded_at",
                "op",
                "subject",
                "predicate",
                "lens",
                "lifecycle_filter",
                "min_confidence",
                "as_of",
                "status",
                "value",
                "confidence",
                "winner",
                "contributing",
            )
            .collect()
        )
        if out.height == 0:
            known = audit.select(pl.col("agent").unique()).collect()["agent"].to_list()
            if agent not in known:
                close = sorted(known, key=lambda k: _distance(k, agent))[:5]
                warnings.warn(
                    f"agent {agent!r} never asked the lake anything; agents that did include: "
                    f"{', '.join(close) or '(none)'}",
                    NoMatchWarning,
                    stacklevel=2,
                )
        return out

    def _tables_audit(self) -> pl.LazyFrame:
        return self.audit

    @asks
    def diff(
        self,
        since: TimeLike,
        until: TimeLike | None = None,
        subject: str | None = None,
        *,
        lens: str = "recency",
        lifecycle: str | Sequence[str] | None = None,
    ) -> Diff:
        """What changed in a window: beliefs whose answer differs, and the records written."""
        from steme_lake.lake._questions import normalize_lifecycle
        from steme_lake.query.lenses import get_lens

        get_lens(lens)
        start, end = _window(since, until)
        stages = normalize_lifecycle(lifecycle)
        keyed = self._keyed()
        state = self._resolution_tables()
        match = subject_matcher(subject)
        opts = self.options.resolution

        def snap(t: int) -> pl.LazyFrame:
            return snapshot(
                state,
                lens=lens,
                as_of=t,
                lifecycle=stages,
                min_confidence=None,
                include_superseded=False,
                opts=opts,
                subject_filter=match,
                ordered=False,  # joined below, then sorted once
            )

        before, after = pl.collect_all([snap(start), snap(end)], engine=ENGINE)
        joined = before.join(
            after, on=["subject", "predicate"], how="full", coalesce=True, suffix="_after"
        )
        changed = joined.filter(
            pl.col("value").ne_missing(pl.col("value_after"))
            | pl.col("status").ne_missing(pl.col("status_after"))
            | pl.col("assertion").ne_missing(pl.col("assertion_after"))
        )
        records = self._records_in(keyed, start, end, match)
        causes = records.select("id", "table", "target", "recorded_at", "agent")
        beliefs = changed.select(
            "subject",
            "predicate",
            pl.col("value").alias("before"),
            pl.col("value_after").alias("after"),
            pl.col("lifecycle").alias("before_lifecycle"),
            pl.col("lifecycle_after").alias("after_lifecycle"),
            pl.col("assertion").alias("before_assertion"),
            pl.col("assertion_after").alias("after_assertion"),
        )
        # The cause: the new winner if it was written in the window, else the record in
        # the window that changed the old winner (a lifecycle change or a supersession).
        new_winner = causes.filter(pl.col("table") == "assertions").select(
            pl.col("id").alias("after_assertion"),
            pl.col("id").alias("_c1"),
            pl.col("agent").alias("_a1"),
            pl.col("recorded_at").alias("_t1"),
        )
        touched_old = (
            causes.filter(pl.col("table").is_in(["lifecycle", "supersessions"]))
            .sort("recorded_at", "id")
            .group_by("target")
            .agg(
                pl.col("id").last().alias("_c2"),
                pl.col("agent").last().alias("_a2"),
                pl.col("recorded_at").last().alias("_t2"),
            )
            .rename({"target": "before_assertion"})
        )
        beliefs = (
            beliefs.join(new_winner, on="after_assertion", how="left")
            .join(touched_old, on="before_assertion", how="left")
            .with_columns(
                pl.coalesce("_c1", "_c2").alias("cause"),
                pl.coalesce("_a1", "_a2").alias("cause_agent"),
                pl.coalesce("_t1", "_t2").alias("changed_at"),
            )
            .drop("_c1", "_a1", "_t1", "_c2", "_a2", "_t2")
            .sort(KEY_ORDER)
        )
        return Diff(us_to_datetime(start), us_to_datetime(end), beliefs, records)

    def _records_in(
        self, keyed: Keyed, start: int, end: int, match: pl.Expr | None
    ) -> pl.DataFrame:
        """Every record written in the window, one row each, with the subject it is about."""
        window = _in_window(start, end)
        asserted, votes, stages, sups, confirmed, constraints = pl.collect_all(
            [
                keyed.scan(RecordKind.ASSERTION)
                .filter(window)
                .select(
                    "recorded_at", "id", "agent", "subject", "predicate", "object",
                    "lifecycle", "confidence",
                ),
                keyed.scan(RecordKind.VOTE)
                .filter(window)
                .select("recorded_at", "id", "agent", "target", "weight"),
                keyed.scan(RecordKind.LIFECYCLE)
                .filter(window)
                .select("recorded_at", "id", "agent", "target", "stage"),
                keyed.scan(RecordKind.SUPERSESSION)
                .filter(window)
                .select("recorded_at", "id", "agent", "target", "kind", "scope", "reason"),
                keyed.scan(RecordKind.CONFIRMATION)
                .filter(window)
                .select("recorded_at", "id", "agent", "target"),
                keyed.scan(RecordKind.CONSTRAINT)
                .filter(window)
                .select("recorded_at", "id", "agent", "context", "forbidden", "must_use", "reason"),
            ],
            engine=ENGINE,
        )  # fmt: skip
        # The subject of each record aimed at an assertion: from the window's own
        # assertions, else found by id (the key index), never from a read of every
        # assertion's id.
        subjects = asserted.select(pl.col("id").alias("target"), pl.col("subject").alias("_s"))
        targets = (
            pl.concat([f["target"] for f in (votes, stages, sups, confirmed)]).drop_nulls().unique()
        )
        missing = targets.filter(~targets.is_in(subjects["target"].implode()))
        if missing.len():
            found = keyed.rows(RecordKind.ASSERTION, "id", missing.to_list(), ("id", "subject"))
            subjects = pl.concat(
                [
                    subjects,
                    found.select(pl.col("id").alias("target"), pl.col("subject").alias("_s")),
                ]
            )
        parts = [
            asserted.select(
                "recorded_at",
                pl.lit("assertions").alias("table"),
                "id",
                "agent",
                "subject",
                pl.lit(None, pl.String).alias("target"),
                _text(
                    "subject",
                    " ",
                    "predicate",
                    " = ",
                    "object",
                    " (",
                    "lifecycle",
                    ", ",
                    pl.col("confidence").round(2),
                    ")",
                ).alias("summary"),
            )
        ]
        for table, frame, text in (
            ("votes", votes, _text("vote ", "weight")),
            ("lifecycle", stages, _text("lifecycle -> ", "stage")),
            ("supersessions", sups, _text("kind", " (", "scope", "): ", "reason")),
            ("confirmations", confirmed, pl.lit("confirmed")),
        ):
            parts.append(
                frame.join(subjects, on="target", how="left").select(
                    "recorded_at",
                    pl.lit(table).alias("table"),
                    "id",
                    "agent",
                    pl.col("_s").alias("subject"),
                    "target",
                    text.alias("summary"),
                )
            )
        parts.append(
            constraints.select(
                "recorded_at",
                pl.lit("constraints").alias("table"),
                "id",
                "agent",
                pl.col("context").alias("subject"),
                pl.lit(None, pl.String).alias("target"),
                _text(
                    "forbidden ",
                    pl.col("forbidden").fill_null("-"),
                    " must_use ",
                    pl.col("must_use").fill_null("-"),
                    ": ",
                    "reason",
                ).alias("summary"),
            )
        )
        records = pl.concat(parts, how="vertical_relaxed")
        if match is not None:
            records = records.filter(match | pl.col("subject").is_null())
        return records.sort("recorded_at", "id")

    @asks
    def blame(
        self,
        subject: str,
        predicate: str,
        *,
        as_of: TimeLike | None = None,
        lens: str = "recency",
        lifecycle: str | Sequence[str] | None = None,
    ) -> Blame:
        """Who and what put the (current or as-of) answer there."""
        from steme_lake.lake._questions import check_query_args

        subject, predicate, lens, stages, _, _, _ = check_query_args(
            subject, predicate, lens, lifecycle, None, False, "blame"
        )
        tables = self._tables()
        at = self._as_of(as_of)
        answer = self._answer(
            None,  # the lake itself: the state index answers when ready
            subject,
            predicate,
            lens=lens,
            stages=stages,
            min_confidence=None,
            include_superseded=False,
            as_of=at,
            requested=as_of,
        )

        def read() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
            # A typed literal: with no answer, None must match nothing (not warn).
            winner = pl.lit(answer.assertion, dtype=pl.String)
            t = as_of_lit(at)
            assertion = tables.assertions.filter(pl.col("id") == winner).collect()
            initial = assertion.select(
                "recorded_at",
                pl.col("lifecycle").alias("stage"),
                "agent",
                pl.lit("asserted").alias("reason"),
            )
            changes = (
                tables.lifecycle.filter(pl.col("target") == winner, pl.col("recorded_at") <= t)
                .select("recorded_at", "stage", "agent", "reason")
                .collect()
            )
            history = pl.concat([initial, changes], how="vertical_relaxed").sort("recorded_at")
            votes = (
                tables.votes.filter(pl.col("target") == winner, pl.col("recorded_at") <= t)
                .select("recorded_at", "agent", "weight", "id")
                .sort("recorded_at")
                .collect()
            )
            return assertion, history, votes

        return Blame(answer, read)

    @asks
    def provenance(self, query_id: str) -> pl.DataFrame:
        """The chain source -> agent -> assertion -> query result for one answer.

        One row per assertion the question weighed (its candidates, found again
        with the question's own filters as of its time: the lake never changes
        its past) and per assertion its audit record cites, with its lifecycle
        and whether it was superseded *at the time of the query*; ``won``,
        ``cited`` (the answer rested on it: the winner for recency and
        authority, every candidate for consensus and skeptic) and ``weighed``.
        The winner comes first, then the rest oldest first.
        """
        return self._provenance(query_id, None)

    def _provenance(self, query_id: str, recorded_at: Any) -> pl.DataFrame:
        """`provenance`; ``recorded_at``, the question's own time when the caller
        knows it (a trace row), finds its audit record in that time's files alone
        instead of the whole log (ids are hashes: no file statistics prune them)."""
        rows.ref_id("query_id", query_id)
        tables = self._tables()
        found = self.audit.filter(pl.col("id") == query_id)
        if recorded_at is not None:
            found = found.filter(pl.col("recorded_at") == as_of_lit(to_us(recorded_at)))
        audit = found.collect()
        if audit.height == 0 and recorded_at is not None:  # a wrong hint costs a scan
            audit = self.audit.filter(pl.col("id") == query_id).collect()
        if audit.height == 0:
            raise UnknownRecordError(
                f"no query {query_id} in the audit log; query ids come from Answer.query_id "
                "or lake.trace(...)['query_id']"
            )
        q = audit.row(0, named=True)
        cited = q["contributing"] or []
        as_of = q["as_of"] or q["recorded_at"]
        from steme_lake._utils.timeparse import datetime_to_us

        t = datetime_to_us(as_of)
        # the key's candidates from its own rows in the state index (in memory)
        keyed = tables
        if q["predicate"] is not None:
            keyed = self._key_tables(q["subject"], q["predicate"], busy_only=False) or tables
        weighed: list[str] = []
        if q["op"] == "query" and q["predicate"] is not None and q["lens"] != "constraints":
            stages = q["lifecycle_filter"]
            weighed = (
                candidates(
                    keyed,
                    as_of=t,
                    subject=q["subject"],
                    predicate=q["predicate"],
                    lifecycle=None if stages is None else tuple(stages),
                    min_confidence=q["min_confidence"],
                    include_superseded=q["include_superseded"],
                    opts=self.options.resolution,
                )
                .select("id")
                .collect()["id"]
                .to_list()
            )
        ids = list(dict.fromkeys([*weighed, *cited]))
        at_query = (
            candidates(
                keyed,
                as_of=t,
                subject=q["subject"],
                predicate=q["predicate"],
                include_superseded=True,
                opts=self.options.resolution,
            )
            .filter(pl.col("id").is_in(ids))
            .select(
                "id",
                pl.col("stage").alias("lifecycle_at_query"),
                pl.col("superseded").alias("superseded_at_query"),
                pl.col("eff").alias("effective_confidence_at_query"),
            )
        )
        # what it weighed or cited existed at its as-of time: later files are not read
        existed = pl.col("recorded_at") <= as_of_lit(t)
        return (
            tables.assertions.filter(existed, pl.col("id").is_in(ids))
            .join(at_query, on="id", how="left")
            .select(
                "source_hash",
                "agent",
                pl.col("id").alias("assertion"),
                "subject",
                "predicate",
                pl.col("object").alias("value"),
                "confidence",
                "effective_confidence_at_query",
                pl.col("lifecycle").alias("lifecycle_when_asserted"),
                "lifecycle_at_query",
                "superseded_at_query",
                "recorded_at",
                (pl.col("id") == q["winner"]).fill_null(False).alias("won"),
                pl.col("id").is_in(cited).alias("cited"),
                pl.col("id").is_in(weighed).alias("weighed"),
                pl.lit(query_id).alias("query_id"),
                pl.lit(q["agent"]).alias("asked_by"),
                pl.lit(q["recorded_at"]).alias("asked_at"),
                pl.lit(q["value"]).alias("answer"),
                pl.lit(q["lens"]).alias("lens"),
            )
            .sort(["won", "recorded_at"], descending=[True, False])
            .collect()
        )

    @asks
    def impact(self, assertion_id: str, *, depth: int = 3, until: TimeLike | None = None) -> Impact:
        """Everything an assertion touched, and what that touched, ``depth`` levels down.

        Level 1: the queries whose answer rested on it (their audit records cite
        it: the ones it won, and consensus or skeptic answers it weighed into),
        the agents that asked them, the assertions derived from it (its parent
        chain, and what the agents it won answers for wrote afterwards on its
        subject or under it) and the constraints citing it. Level 2: the same for
        each assertion found at level 1, and so on (``depth=1`` is the direct
        impact alone). Every row has its ``depth`` and ``via``, the ids from this
        assertion to the row. ``until``: only what happened up to then (e.g. the
        incident's end), so the investigators' own later questions never count.
        A level that reaches more than 20,000 assertions, or assertions cited by
        more than 200,000 audit records, is not followed further (on a busy
        subject the next level would hold most of the lake); the summary's
        ``levels followed`` and ``assertions not followed further`` say where it
        stopped."""
        from steme_lake.lake._impact import check_depth, follow

        rows.ref_id("assertion id", assertion_id)
        depth = check_depth(depth)
        until_us = None if until is None else to_us(until, name="until")
        keyed = self._keyed()
        me = keyed.rows(
            RecordKind.ASSERTION, "id", [assertion_id], ("id", "subject", "recorded_at")
        )
        if me.height == 0:
            raise UnknownRecordError(f"no assertion {assertion_id} in this lake")
        in_window = pl.lit(True)
        if until_us is not None:
            in_window = pl.col("recorded_at") <= us_to_datetime(until_us)
        # Citations, parents, subject trees, votes and assertions by id come
        # through the key indexes (a few row groups each, whatever the lake's
        # size); the constraints (a small table) are scanned.
        index = self._index  # (ready: caught up by `_keyed`, as the view is)
        followed = follow(
            keyed,
            keyed.scan(RecordKind.CONSTRAINT).filter(in_window),
            assertion_id,
            depth,
            root_row=me,
            until=until_us,
            written=None if index is None else index.written,
            known=None if index is None else index.assertions,
            shared=None if index is None else index.prefixes_shared,
        )
        queries, assertions, constraints = (
            followed.queries,
            followed.assertions,
            followed.constraints,
        )
        agents = (
            queries.group_by("asked_by")
            .agg(
                pl.len().alias("queries"),
                pl.col("won").sum().alias("won"),
                pl.col("depth").min().alias("depth"),
                pl.col("recorded_at").min().alias("first"),
                pl.col("recorded_at").max().alias("last"),
            )
            .sort("first")
        )
        # (nothing votes for it before it exists: earlier files are never read)
        votes = keyed.rows(
            RecordKind.VOTE,
            "target",
            [assertion_id],
            spec(RecordKind.VOTE).schema.names,
            since=int(me["recorded_at"].dt.epoch("us")[0]),
            until=until_us,
        ).sort("recorded_at")

        def span(frame: pl.DataFrame, kind: str) -> dict[str, Any]:
            times = (
                frame["recorded_at"]
                if frame.height
                else pl.Series([], dtype=pl.Datetime("us", "UTC"))
            )
            return {"kind": kind, "count": frame.height, "first": times.min(), "last": times.max()}

        summary = pl.DataFrame(
            [
                span(queries, "queries"),
                span(queries.filter(pl.col("won")), "queries won"),
                {
                    "kind": "agents",
                    "count": agents.height,
                    "first": agents["first"].min() if agents.height else None,
                    "last": agents["last"].max() if agents.height else None,
                },
                span(assertions, "derived assertions"),
                span(constraints, "constraints citing it"),
                span(votes, "votes"),
                {"kind": "levels followed", "count": followed.levels, "first": None, "last": None},
                # found, but too many to follow further (see _impact.FRONTIER_LIMIT)
                {
                    "kind": "assertions not followed further",
                    "count": followed.not_followed,
                    "first": None,
                    "last": None,
                },
            ],
            schema={
                "kind": pl.String,
                "count": pl.Int64,
                "first": pl.Datetime("us", "UTC"),
                "last": pl.Datetime("us", "UTC"),
            },
        )
        return Impact(assertion_id, summary, queries, agents, assertions, constraints, votes, depth)

    def _key_tables(self, subject: str, predicate: str, *, busy_only: bool) -> Tables | None:
        """What resolution reads about one key, from the state index, in memory:
        its assertions, their lifecycle, votes and confirmations, every
        supersession and trust record (the columns resolution needs, not all).
        None before the index is ready, and with ``busy_only`` for a quiet key
        (the index answers those from Python rows, faster than from frames)."""
        self._refresh_to_read()
        index = self._ready_index()
        if index is None:
            return None
        point = index.rows(subject, predicate)
        if busy_only and not point.hot:
            return None
        return point.tables(votes=True, confirmations=True)

    @asks
    def timeline(
        self,
        subject: str,
        predicate: str,
        *,
        lens: str = "recency",
        lifecycle: str | Sequence[str] | None = None,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        max_resolved: int | None = None,
    ) -> pl.DataFrame:
        """Every event about a belief over time, with the resolved answer after each one.

        One row per assertion, lifecycle change, supersession or vote touching
        the (subject, predicate): the data behind a plot of the belief.
        ``since``/``until`` keep the events in that window (``since`` excluded,
        as in `diff`). Resolving costs one as-of answer per event; on a busy
        belief ``max_resolved`` resolves only that many events, evenly spread
        (always the last), and leaves the other rows' ``resolved_*`` null.
        """
        from steme_lake.lake._questions import check_query_args

        subject, predicate, lens, stages, _, _, _ = check_query_args(
            subject, predicate, lens, lifecycle, None, False, "timeline"
        )
        if max_resolved is not None and (
            isinstance(max_resolved, bool) or not isinstance(max_resolved, int) or max_resolved < 1
        ):
            raise ValidationError(f"max_resolved must be a whole number >= 1, got {max_resolved!r}")
        window = pl.lit(True)
        if since is not None:
            window = window & (pl.col("recorded_at") > as_of_lit(to_us(since, name="since")))
        if until is not None:
            window = window & (pl.col("recorded_at") <= as_of_lit(to_us(until, name="until")))
        tables = self._tables()
        mine_rows = tables.assertions.filter(
            pl.col("subject") == subject, pl.col("predicate") == predicate
        ).collect()
        mine = mine_rows.lazy()
        ids = mine_rows["id"].to_list()
        sources = mine_rows["source_hash"].unique().to_list()
        agents = mine_rows["agent"].unique().to_list()
        events = (
            pl.concat(
                [
                    mine.select(
                        "recorded_at",
                        pl.lit("asserted").alias("event"),
                        pl.col("id").alias("assertion"),
                        pl.col("object").alias("value"),
                        "agent",
                        pl.col("lifecycle").alias("detail"),
                    ),
                    tables.lifecycle.filter(pl.col("target").is_in(ids)).select(
                        "recorded_at",
                        pl.lit("lifecycle").alias("event"),
                        pl.col("target").alias("assertion"),
                        pl.lit(None, pl.String).alias("value"),
                        "agent",
                        pl.col("stage").alias("detail"),
                    ),
                    tables.votes.filter(pl.col("target").is_in(ids)).select(
                        "recorded_at",
                        pl.lit("vote").alias("event"),
                        pl.col("target").alias("assertion"),
                        pl.lit(None, pl.String).alias("value"),
                        "agent",
                        pl.col("weight").cast(pl.String).alias("detail"),
                    ),
                    tables.supersessions.filter(
                        pl.col("target").is_in(ids)
                        | pl.col("source_hash").is_in(sources)
                        | pl.col("target_agent").is_in(agents)
                    ).select(
                        "recorded_at",
                        pl.lit("superseded").alias("event"),
                        pl.col("target").alias("assertion"),
                        pl.lit(None, pl.String).alias("value"),
                        "agent",
                        _text("kind", ": ", "reason").alias("detail"),
                    ),
                ],
                how="vertical_relaxed",
            )
            .filter(window)
            .sort("recorded_at")
            .collect()
        )
        resolved: list[tuple[Any, ...]] = []
        from steme_lake._utils.timeparse import datetime_to_us

        busy = self._key_tables(subject, predicate, busy_only=True) if events.height else None
        n = events.height
        chosen = set(range(n))
        if max_resolved is not None and n > max_resolved:
            step = (n - 1) / max(1, max_resolved - 1)
            chosen = {round(i * step) for i in range(max_resolved)} | {n - 1}
        for i, when in enumerate(events["recorded_at"]):
            if i not in chosen:
                resolved.append((None, None, None, None))
                continue
            ans = self._answer(
                busy,  # a busy key: its own rows, read once; else the state index
                subject,
                predicate,
                lens=lens,
                stages=stages,
                min_confidence=None,
                include_superseded=False,
                as_of=datetime_to_us(when),
                requested=None,
            )
            resolved.append(
                (
                    rows_json(ans.value) if ans.answered else None,
                    ans.assertion,
                    ans.status,
                    ans.confidence,
                )
            )
        return events.with_columns(
            pl.Series("resolved_value", [r[0] for r in resolved], dtype=pl.String),
            pl.Series("resolved_assertion", [r[1] for r in resolved], dtype=pl.String),
            pl.Series("resolved_status", [r[2] for r in resolved], dtype=pl.String),
            pl.Series("resolved_confidence", [r[3] for r in resolved], dtype=pl.Float64),
        )


def _text(*parts: str | pl.Expr) -> pl.Expr:
    """Concatenate columns (named by a bare word) and literals, as text.

    ``pl.format`` panics in Polars 2.1 on some float inputs; explicit casts do not.
    """
    exprs = [
        p.cast(pl.String)
        if isinstance(p, pl.Expr)
        else pl.col(p).cast(pl.String)
        if p.isidentifier()
        else pl.lit(p)
        for p in parts
    ]
    return pl.concat_str(exprs, ignore_nulls=False)


def rows_json(value: Any) -> str:
    from steme_lake._utils.canonical import canonical_json

    return canonical_json(value)


def _distance(a: str, b: str) -> int:
    """Edit distance, to suggest the agent name the user probably meant."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]
