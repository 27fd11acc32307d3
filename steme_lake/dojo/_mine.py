"""Mining the lake's history for labelled examples of agent behaviour.

Each sample is built from the lake **as of its event's time** (`_asof.History`):
the question an agent asked, its filters, and the candidates that existed then
(value, lifecycle, agent, confidence, votes, source). Never from the export
time. The kinds (`KINDS`):

Negatives (paired: ``rejected`` is what happened, ``chosen`` what should have):

- ``proposal_as_decision``: a question answered with an assertion that was not
  approved while an approved one existed for the same subject and predicate.
  Chosen: the approved value (the same question with ``lifecycle=approved``
  under the recency lens: the latest approved, unsuperseded assertion).
- ``invalidated_answer``: a question whose winning assertion was later
  superseded (``invalidate``, ``replace``, ``refine``, ``paradigm_shift``; by
  id, by source or by agent window). Chosen: the replacement the correction
  names, else the approved value at the correction's time, with the reason.
- ``contested_acted_on``: a ``contested`` answer (or a consensus below
  ``low_agreement``) that the asker then used within ``horizon``: it wrote an
  assertion derived from a candidate (``parent``) or on the same subject, while
  no approved decision settled the question (if one did, the sample is a
  ``proposal_as_decision``). Chosen: saying the belief is contested and not
  acting on it.
- ``constraint_violation``: a pre-flight check that found a violation, or an
  assertion a constraint in force forbade. Chosen: the value the constraint
  asks for (or refusing the forbidden one), with its reason.

Positives (unpaired: ``chosen`` is the completion, ``rejected`` is empty):

- ``approved_answer``: a question answered with an approved assertion that
  stayed unsuperseded through the ``holdout`` after it (and the holdout has
  passed by the export's as-of time).
- ``constraint_honoured``: a pre-flight check whose proposal honoured every
  constraint in force (a successful use).
- ``corrected_path``: each correction with a known right value: the question
  as of the correction, answered with the replacement and the reason.

Questions about the past (``as_of=``) are investigations, not decisions, and
are never mined.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import polars as pl
import polars_hash as plh

from steme_lake._utils.canonical import canonical_json_trusted
from steme_lake.dojo._asof import KEY, History
from steme_lake.dojo._hygiene import normal
from steme_lake.query._candidates import Tables, _until, as_of_lit
from steme_lake.query._values import decoded

__all__ = [
    "KINDS", "NEGATIVE", "POSITIVE", "SCHEMA", "SYSTEM", "MineOptions",
    "Miner", "dedupe", "identify", "render", "slices_of", "window_of",
]  # fmt: skip

NEGATIVE = (
    "proposal_as_decision",
    "invalidated_answer",
    "contested_acted_on",
    "constraint_violation",
)
POSITIVE = ("approved_answer", "constraint_honoured", "corrected_path")
KINDS = NEGATIVE + POSITIVE
SYSTEM = (
    "You answer an agent's question from a shared knowledge base of assertions. "
    "Each candidate has a lifecycle stage: only 'approved' ones are decisions; a "
    "'proposed' one is a claim nobody has reviewed. Constraints in force must be "
    "honoured. Answer with the value to act on and say why; if the candidates "
    "disagree and nothing settles it, say so instead of acting."
)
MESSAGE = pl.Struct({"role": pl.String(), "content": pl.String()})
MESSAGES = pl.List(MESSAGE)
SCHEMA = pl.Schema(
    [
        ("sample_id", pl.String()),
        ("kind", pl.String()),
        ("label", pl.String()),
        ("query_id", pl.String()),
        ("agent", pl.String()),
        ("subject", pl.String()),
        ("predicate", pl.String()),
        ("asked_at", pl.Datetime("us", "UTC")),
        ("prompt", MESSAGES),
        ("chosen", MESSAGES),
        ("rejected", MESSAGES),
        ("rejected_assertion", pl.String()),
        ("chosen_assertion", pl.String()),
        ("supersession", pl.String()),
        ("constraint", pl.String()),
        ("votes", pl.List(pl.String())),
        ("agents", pl.List(pl.String())),
        ("sources", pl.List(pl.String())),
        ("content_hash", pl.String()),
        ("duplicates", pl.UInt32()),
    ]
)
_TIME = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True, slots=True)
class MineOptions:
    """How samples are mined and shown.

    Attributes
    ----------
    holdout_days
        An approved answer is a positive only once it stayed unsuperseded this
        long after the question.
    horizon_hours
        How soon after a contested answer a write counts as acting on it.
    low_agreement
        A consensus answer below this confidence counts as contested.
    show
        How many candidates a prompt lists (the latest live ones, plus the ones
        the sample is about); the rest are counted ("and N more").
    exclude_sources
        Source hashes that must never appear (erased or excluded evidence):
        their candidates are left out of prompts and their samples dropped.
    """

    holdout_days: float = 7.0
    horizon_hours: float = 24.0
    low_agreement: float = 0.6
    show: int = 12
    exclude_sources: tuple[str, ...] = ()


def _us(col: str) -> pl.Expr:
    return pl.col(col).cast(pl.Datetime("us", "UTC")).cast(pl.Int64)


def _iso(col: str) -> pl.Expr:
    return pl.col(col).cast(pl.Datetime("us", "UTC")).dt.strftime(_TIME)


_shown_value = decoded  # JSON text as a person reads it: strings bare, the rest as JSON


def _done(kind: str) -> pl.Expr:
    """A supersession kind as what happened to the assertion."""
    return pl.col(kind).replace_strict(
        {
            "invalidate": "invalidated",
            "replace": "replaced",
            "refine": "refined",
            "paradigm_shift": "overtaken by a paradigm shift",
        },
        default=pl.col(kind),
    )


def _fixed(expr: pl.Expr, places: int, *, sign: bool = False) -> pl.Expr:
    """A number with ``places`` decimals (Polars has no printf)."""
    scale = 10**places
    n = (expr * scale).round(0).cast(pl.Int64)
    a = n.abs()
    text = pl.format("{}.{}", a // scale, (a % scale).cast(pl.String).str.zfill(places))
    prefix = pl.when(n < 0).then(pl.lit("-")).otherwise(pl.lit("+" if sign else ""))
    return pl.concat_str(prefix, text)


# ---------------------------------------------------------------- the events


_EVENT = pl.Schema(
    [
        ("kind", pl.String()),
        ("query_id", pl.String()),
        ("agent", pl.String()),
        ("subject", pl.String()),
        ("predicate", pl.String()),
        ("t", pl.Int64()),
        ("ask", pl.String()),  # how the question is put: query / check / record / correct
        ("filters", pl.String()),
        ("told", pl.String()),  # the assertion the agent was told or wrote (rejected side)
        ("told_value", pl.String()),  # JSON text
        ("chosen_assertion", pl.String()),
        ("chosen_value", pl.String()),  # JSON text (null: a refusal or abstention)
        ("why", pl.String()),  # the reason shown with the chosen answer
        ("supersession", pl.String()),
        ("constraint", pl.String()),
    ]
)


def _events(frame: pl.DataFrame, **fixed: Any) -> pl.DataFrame:
    cols = []
    for name, dtype in _EVENT.items():
        if name in fixed:
            cols.append(pl.lit(fixed[name], dtype=dtype).alias(name))
        elif name in frame.columns:
            cols.append(pl.col(name).cast(dtype))
        else:
            cols.append(pl.lit(None, dtype=dtype).alias(name))
    return frame.select(cols)


def _questions(audit: pl.LazyFrame, window: pl.Expr, as_of: int) -> pl.LazyFrame:
    return (
        _until(audit, as_of)
        .filter(
            window
            & (pl.col("op") == "query")
            # a question about the past is an investigation, not a decision
            & pl.col("params").str.json_path_match("$.as_of_requested").is_null()
        )
        .select(
            pl.col("id").alias("query_id"),
            "agent",
            "subject",
            "predicate",
            "status",
            "confidence",
            "winner",
            "contributing",
            pl.col("value").alias("told_value"),
            # imported audit may lack as_of: the answer was for the time it was given
            pl.coalesce(_us("as_of"), _us("recorded_at")).alias("t"),
            pl.col("lens").fill_null("recency").alias("lens"),
            # (pl.format over a list.join panics in Polars 1.x's streaming engine)
            pl.col("lifecycle_filter").list.join(",").alias("_filter"),
        )
    )


def _with_filters(q: pl.DataFrame) -> pl.DataFrame:
    return q.with_columns(
        pl.concat_str(
            pl.lit("lens "), "lens", pl.lit(", lifecycle "), pl.col("_filter").fill_null("any")
        ).alias("filters")
    ).drop("_filter")


def _checks(audit: pl.LazyFrame, window: pl.Expr, as_of: int) -> pl.DataFrame:
    return (
        _until(audit, as_of)
        .filter(window & (pl.col("op") == "check"))
        .filter(pl.col("params").str.json_path_match("$.as_of_requested").is_null())
        .select(
            pl.col("id").alias("query_id"),
            "agent",
            "subject",
            "predicate",
            "status",
            pl.col("params").str.json_path_match("$.proposed_given").alias("given"),
            pl.col("value")
            .map_elements(_proposed, return_dtype=pl.String, skip_nulls=True)
            .alias("told_value"),
            pl.col("value").str.json_path_match("$.violations[0]").alias("constraint"),
            pl.col("contributing").list.first().alias("_first"),
            # imported audit may lack as_of: the answer was for the time it was given
            pl.coalesce(_us("as_of"), _us("recorded_at")).alias("t"),
        )
        .collect()
    )


def window_of(since: int | None, until: int | None, subject: pl.Expr | None) -> pl.Expr:
    """The records an export's window keeps: recorded in ``[since, until]``, on ``subject``."""
    when = pl.lit(True)
    if since is not None:
        when = when & (pl.col("recorded_at") >= as_of_lit(since))
    if until is not None:
        when = when & (pl.col("recorded_at") <= as_of_lit(until))
    return when if subject is None else when & subject


def slices_of(questions: pl.LazyFrame, size: int) -> list[tuple[int | None, int | None]]:
    """Time slices ``[lo, hi)`` of about ``size`` of ``questions`` each, in order (a
    slice never splits one microsecond)."""
    times = questions.select("t").sort("t").collect()["t"]
    cuts: list[int] = []
    for k in range(size, times.len(), size):
        cut = times[k]
        if not cuts or cut > cuts[-1]:
            cuts.append(cut)
    bounds: list[int | None] = [None, *cuts, None]
    return list(pairwise(bounds))


class Miner:
    """The lake's history, ready to give the events of any time slice.

    Questions (one per audit record: millions) stay lazy; the rest (checks,
    forbidden writes, corrections) is small and collected once. The `History`
    covers every subject and predicate any event is about."""

    def __init__(
        self,
        tables: Tables,
        audit: pl.LazyFrame,
        *,
        kinds: tuple[str, ...],
        since: int | None,
        until: int | None,
        subject: pl.Expr | None,
        as_of: int,
        options: MineOptions,
    ) -> None:
        when = window_of(since, until, None)
        window = window_of(since, until, subject)
        self.tables, self.kinds, self.as_of, self.options = tables, kinds, as_of, options
        self.a_all = _until(tables.assertions, as_of)
        self.questions = _questions(audit, window, as_of)
        keys = [
            self.questions.filter(pl.col("predicate").is_not_null()).select(KEY).unique().collect()
        ]
        wants_checks = bool({"constraint_violation", "constraint_honoured"} & set(kinds))
        self.checks = _checks(audit, window, as_of) if wants_checks else None
        if self.checks is not None:
            keys.append(self.checks.filter(pl.col("predicate").is_not_null()).select(KEY))
        broke = (
            _forbidden_writes(tables, self.a_all, window, as_of)
            if "constraint_violation" in kinds
            else None
        )
        self.broke = broke if broke is not None and broke.height else None
        if self.broke is not None:  # (no constraints: a frame with no columns)
            keys.append(self.broke.select(KEY))
        self.fixes = (
            _until(tables.supersessions, as_of)
            .filter(when & (pl.col("scope") == "assertion"))
            .join(self.a_all.select("id", *KEY), left_on="target", right_on="id", how="inner")
            .filter(pl.lit(True) if subject is None else subject)
            .collect()
            if "corrected_path" in kinds
            else None
        )
        if self.fixes is not None:
            keys.append(self.fixes.select(KEY))
        self.history = History.build(tables, as_of, pl.concat(keys).unique())
        self._small: pl.DataFrame | None = None

    def slices(self, questions: int) -> list[tuple[int | None, int | None]]:
        """Time slices ``[lo, hi)`` of about ``questions`` questions each, in order."""
        return slices_of(self.questions, questions)

    def events(self, lo: int | None, hi: int | None) -> pl.DataFrame:
        """The events with ``lo <= t < hi`` (``None``: unbounded), in event order."""
        in_slice = pl.lit(True)
        if lo is not None:
            in_slice = in_slice & (pl.col("t") >= lo)
        if hi is not None:
            in_slice = in_slice & (pl.col("t") < hi)
        q = _with_filters(self.questions.filter(in_slice).collect())
        parts = self._question_events(q)
        del q
        if self._small is None:
            self._small = self._other_events()
        parts.append(self._small.filter(in_slice))
        events = pl.concat(parts) if parts else pl.DataFrame(schema=_EVENT)
        return events.sort("t", "kind", "query_id", "told", "constraint", nulls_last=True)

    def _other_events(self) -> pl.DataFrame:
        parts: list[pl.DataFrame] = [pl.DataFrame(schema=_EVENT)]
        if self.checks is not None and self.checks.height:
            parts.extend(_check_events(self.checks, self.tables, self.as_of, self.kinds))
        if self.broke is not None:
            parts.append(_events(self.broke, kind="constraint_violation", ask="record"))
        if self.fixes is not None and self.fixes.height:
            parts.append(_corrected(self.fixes, self.history))
        return pl.concat(parts)

    def _question_events(self, q: pl.DataFrame) -> list[pl.DataFrame]:
        kinds, options, as_of, history = self.kinds, self.options, self.as_of, self.history
        parts: list[pl.DataFrame] = []
        asked = q.filter(pl.col("winner").is_not_null() & pl.col("predicate").is_not_null())
        a = history.assertions
        obj = a.select(pl.col("id"), pl.col("object"))

        if asked.height:
            told = asked.join(
                a.select(
                    pl.col("id").alias("winner"),
                    pl.col("object").alias("told_object"),
                    pl.col("lifecycle").alias("_recorded_stage"),
                    *[
                        pl.col(c)
                        for c in (
                            "fixed_at",
                            "fix_id",
                            "fix_kind",
                            "fix_reason",
                            "fix_agent",
                            "replacement",
                        )
                    ],
                ),
                on="winner",
                how="inner",
            )
            told = history.stage_at(
                told, "winner", "t", "told_stage", recorded="_recorded_stage"
            ).with_columns(pl.col("winner").alias("told"))
            if "proposal_as_decision" in kinds:
                p = history.approved_at(
                    told.filter(pl.col("told_stage") != "approved"), "t", "chosen_assertion"
                ).join(
                    obj.rename({"id": "chosen_assertion", "object": "chosen_value"}),
                    on="chosen_assertion",
                    how="inner",
                )
                p = p.filter(pl.col("chosen_value") != pl.col("told_object")).with_columns(
                    pl.format(
                        "the approved decision, which a {} claim does not override",
                        pl.col("told_stage"),
                    ).alias("why"),
                    pl.col("told_object").alias("told_value"),
                )
                parts.append(_events(p, kind="proposal_as_decision", ask="query"))
            if "invalidated_answer" in kinds:
                f = told.filter(
                    pl.col("fixed_at").is_not_null() & (pl.col("fixed_at") > pl.col("t"))
                )
                f = history.approved_at(f, "fixed_at", "_approved").with_columns(
                    pl.coalesce("replacement", "_approved").alias("chosen_assertion")
                )
                f = f.join(
                    obj.rename({"id": "chosen_assertion", "object": "chosen_value"}),
                    on="chosen_assertion",
                    how="inner",
                )
                f = f.filter(pl.col("chosen_value") != pl.col("told_object")).with_columns(
                    pl.format(
                        "{} was later {} by {} ({})",
                        _shown_value("told_object"),
                        _done("fix_kind"),
                        "fix_agent",
                        pl.col("fix_reason").fill_null("no reason given"),
                    ).alias("why"),
                    pl.col("told_object").alias("told_value"),
                    pl.col("fix_id").alias("supersession"),
                )
                parts.append(_events(f, kind="invalidated_answer", ask="query"))
            if "approved_answer" in kinds:
                hold = int(options.holdout_days * 86_400_000_000)
                tainted = a.filter(pl.col("fixed_at").is_not_null()).select(
                    pl.col("id").alias("parent")
                )
                g = told.join(
                    a.select(pl.col("id").alias("winner"), "parent"), on="winner", how="left"
                ).join(
                    tainted.with_columns(pl.lit(True).alias("_tainted")), on="parent", how="left"
                )
                g = g.filter(
                    pl.col("_tainted").is_null()
                    & (pl.col("told_stage") == "approved")
                    & (pl.col("t") + hold <= as_of)
                    & (pl.col("fixed_at").is_null() | (pl.col("fixed_at") > pl.col("t") + hold))
                ).with_columns(
                    pl.col("winner").alias("chosen_assertion"),
                    pl.col("told_object").alias("chosen_value"),
                    pl.lit(None, pl.String).alias("told"),
                    pl.lit(
                        "the approved decision, unchallenged for "
                        f"{options.holdout_days:g} days after"
                    ).alias("why"),
                )
                parts.append(_events(g, kind="approved_answer", ask="query"))
        if "contested_acted_on" in kinds and q.height:
            parts.append(_contested(q, self.a_all, history, options))
        return parts


def _forbidden_writes(
    tables: Tables, a_all: pl.LazyFrame, window: pl.Expr, as_of: int
) -> pl.DataFrame:
    """Assertions whose value a constraint in force when they were written forbade."""
    cons = _until(tables.constraints, as_of).collect()
    if cons.is_empty():
        return pl.DataFrame()
    retired = (
        _until(tables.supersessions, as_of)
        .filter(pl.col("scope") == "assertion")
        .group_by("target")
        .agg(_us("recorded_at").min().alias("_retired"))
        .collect()
    )
    rows: list[tuple[str, str]] = []
    for c in cons.iter_rows(named=True):
        forbidden = None if c["forbidden"] is None else json.loads(c["forbidden"])
        values = forbidden if isinstance(forbidden, list) else [forbidden]
        for v in values:
            if v is not None:
                rows.append((c["id"], canonical_json_trusted(v)))
    if not rows:
        return pl.DataFrame()
    bad = pl.DataFrame(rows, schema={"constraint": pl.String, "object": pl.String}, orient="row")
    found = (
        cons.select(
            pl.col("id").alias("constraint"),
            "context",
            pl.col("predicate").alias("_cpred"),
            "must_use",
            "reason",
            _us("recorded_at").alias("_ct"),
        )
        .join(bad, on="constraint")
        .join(retired, left_on="constraint", right_on="target", how="left")
    )
    hits = (
        a_all.filter(window)
        .join(found.lazy(), on="object", how="inner")
        .with_columns(_us("recorded_at").alias("t"))
        .filter(
            (pl.col("_ct") <= pl.col("t"))
            & (pl.col("_retired").is_null() | (pl.col("_retired") > pl.col("t")))
            & (pl.col("_cpred").is_null() | (pl.col("_cpred") == pl.col("predicate")))
            & (
                (pl.col("context").str.strip_chars_end("/") == "")
                | (pl.col("subject") == pl.col("context").str.strip_chars_end("/"))
                | pl.col("subject").str.starts_with(
                    pl.col("context").str.strip_chars_end("/") + "/"
                )
            )
        )
        .sort("t", "id", "constraint")
        .group_by("id", maintain_order=True)
        .first()
        .collect()
    )
    # The earlier moment the agent chose: just before its write, what it saw.
    return hits.select(
        "agent",
        *KEY,
        (pl.col("t") - 1).alias("t"),
        pl.col("id").alias("told"),
        pl.col("object").alias("told_value"),
        pl.col("must_use").alias("chosen_value"),
        pl.format("constraint: {}", pl.col("reason").fill_null("no reason given")).alias("why"),
        "constraint",
    )


def _check_events(
    checks: pl.DataFrame, tables: Tables, as_of: int, kinds: tuple[str, ...]
) -> list[pl.DataFrame]:
    cons = (
        _until(tables.constraints, as_of)
        .select(pl.col("id").alias("constraint"), "must_use", "reason")
        .collect()
    )
    given = checks.filter(pl.col("given") == "true")
    out = []
    if "constraint_violation" in kinds:
        v = given.filter(pl.col("status") == "violation").join(cons, on="constraint", how="inner")
        v = v.with_columns(
            pl.col("must_use").alias("chosen_value"),
            pl.format("constraint: {}", pl.col("reason").fill_null("no reason given")).alias("why"),
        )
        out.append(_events(v, kind="constraint_violation", ask="check"))
    if "constraint_honoured" in kinds:
        ok = given.filter(pl.col("status") == "ok").join(
            cons, left_on="_first", right_on="constraint", how="inner"
        )
        ok = ok.with_columns(
            pl.col("told_value").alias("chosen_value"),
            pl.lit(None, pl.String).alias("told_value"),
            pl.col("_first").alias("constraint"),
            pl.format(
                "it honours the constraints in force ({})", pl.col("reason").fill_null("")
            ).alias("why"),
        )
        out.append(_events(ok, kind="constraint_honoured", ask="check"))
    return out


def _proposed(value: str) -> str:
    """The proposal a check recorded, as canonical JSON text."""
    return canonical_json_trusted(json.loads(value).get("proposed"))


def _contested(
    q: pl.DataFrame, a_all: pl.LazyFrame, history: History, options: MineOptions
) -> pl.DataFrame:
    """Contested or low-agreement answers the asker acted on soon after."""
    horizon = int(options.horizon_hours * 3_600_000_000)
    c = q.filter(
        (pl.col("status") == "contested")
        | (
            (pl.col("lens") == "consensus")
            & (pl.col("status") == "answered")
            & (pl.col("confidence") < options.low_agreement)
        )
    ).filter(pl.col("predicate").is_not_null())
    if c.is_empty():
        return pl.DataFrame(schema=_EVENT)
    later = (
        a_all.select("id", "agent", "subject", "parent", _us("recorded_at").alias("_wt"), "object")
        .join(c.select("agent").unique().lazy(), on="agent", how="semi")
        .collect()
        .sort("_wt")
    )
    by_parent = (
        c.select("query_id", "agent", "t", pl.col("contributing").alias("parent"))
        .explode("parent")
        .join(later.filter(pl.col("parent").is_not_null()), on=["agent", "parent"], how="inner")
        .filter((pl.col("_wt") > pl.col("t")) & (pl.col("_wt") <= pl.col("t") + horizon))
        .join(
            history.assertions.select(
                pl.col("id").alias("parent"), pl.col("object").alias("_acted")
            ),
            on="parent",
            how="left",
        )
        .sort("_wt", "id")
        .group_by("query_id", maintain_order=True)
        .first()
        .select("query_id", pl.col("id").alias("_wrote"), "_acted")
    )
    by_subject = (
        c.sort("t")
        .join_asof(
            later.select("agent", "subject", "_wt", pl.col("id").alias("_wrote2")),
            left_on="t",
            right_on="_wt",
            by=["agent", "subject"],
            strategy="forward",
            check_sortedness=False,
        )
        .filter(pl.col("_wt").is_not_null() & (pl.col("_wt") <= pl.col("t") + horizon))
        .filter(pl.col("_wt") > pl.col("t"))
        .select("query_id", "_wrote2")
    )
    acted = (
        c.join(by_parent, on="query_id", how="left")
        .join(by_subject, on="query_id", how="left")
        .with_columns(
            pl.coalesce("told_value", "_acted").alias("told_value"),
            pl.coalesce("_wrote", "_wrote2").alias("_written"),
        )
        .filter(pl.col("_written").is_not_null() & pl.col("told_value").is_not_null())
    )
    # an approved decision settles the question: acting against it is a
    # proposal_as_decision, not a contested belief, and abstaining is wrong
    acted = (
        history.approved_at(acted, "t", "_settled")
        .filter(pl.col("_settled").is_null())
        .with_columns(
            pl.format("then wrote {}", "_written").alias("why"),
            pl.coalesce("winner", "_written").alias("told"),
        )
    )
    return _events(acted, kind="contested_acted_on", ask="query")


def _corrected(fixes: pl.DataFrame, history: History) -> pl.DataFrame:
    """Each correction with a known right value, as of the moment before it."""
    a = history.assertions
    f = fixes.select(
        pl.col("id").alias("supersession"),
        "agent",
        *KEY,
        (_us("recorded_at") - 1).alias("t"),
        _us("recorded_at").alias("_at"),
        pl.col("target").alias("told"),
        "kind",
        "reason",
        "replacement",
    ).join(a.select(pl.col("id").alias("told"), pl.col("object").alias("told_value")), on="told")
    f = history.approved_at(f, "_at", "_approved").with_columns(
        pl.coalesce("replacement", "_approved").alias("chosen_assertion")
    )
    f = f.join(
        a.select(pl.col("id").alias("chosen_assertion"), pl.col("object").alias("chosen_value")),
        on="chosen_assertion",
    ).filter(pl.col("chosen_value") != pl.col("told_value"))
    f = f.with_columns(
        pl.format(
            "{} was {} by {} ({})",
            _shown_value("told_value"),
            _done("kind"),
            "agent",
            pl.col("reason").fill_null("no reason given"),
        ).alias("why"),
        pl.lit(None, pl.String).alias("told"),
    )
    return _events(f, kind="corrected_path", ask="correct")


# ---------------------------------------------------------------- rendering


_RENDERED = pl.Schema(
    [("sample", pl.UInt32()), *[(k, v) for k, v in SCHEMA.items() if k != "duplicates"]]
)


def render(
    events: pl.DataFrame, history: History, tables: Tables, as_of: int, options: MineOptions
) -> pl.DataFrame:
    """The prompts and answers of ``events`` (some or all of `Miner.events`'s, numbered), in
    ``sample`` order; ``sample_id`` and ``content_hash`` are set by `identify`."""
    if events.is_empty():
        return pl.DataFrame(schema={**_RENDERED, "_same": pl.String()})
    e = events
    shown = history.shown(e, show=options.show, also=["told", "chosen_assertion"])
    # The evidence a sample rests on (what was told, what is chosen) is always in
    # its sources; other candidates from excluded sources are left out of the prompt.
    named = (
        e.select(
            "sample",
            pl.concat_list(
                pl.col("told").fill_null(""), pl.col("chosen_assertion").fill_null("")
            ).alias("id"),
        )
        .explode("id")
        .join(history.assertions.select("id", "source_hash"), on="id", how="inner")
        .group_by("sample")
        .agg(pl.col("source_hash").alias("_own"))
    )
    if options.exclude_sources:
        shown = shown.filter(~pl.col("source_hash").is_in(list(options.exclude_sources)))
    lines = (
        shown.sort("sample", "t_rec", "id")
        .with_columns(
            pl.format(
                "- {}: {}, by {}, confidence {}, votes {}, source {}, recorded {}",
                _shown_value("object"),
                "stage",
                "agent",
                _fixed(pl.col("confidence"), 2),
                _fixed(pl.col("votes"), 1, sign=True),
                pl.col("source_hash").str.slice(0, 12),
                pl.col("t_rec").cast(pl.Datetime("us", "UTC")).dt.strftime(_TIME),
            ).alias("line")
        )
        .group_by("sample")
        .agg(
            pl.col("line").str.join("\n").alias("lines"),
            pl.col("hidden").first(),
            pl.col("object").unique(maintain_order=True).alias("_values"),
            pl.col("agent").unique().alias("_authors"),
            pl.col("source_hash").unique().alias("sources"),
        )
    )
    votes = (
        e.select(
            "sample",
            "t",
            pl.concat_list(
                pl.col("told").fill_null(""), pl.col("chosen_assertion").fill_null("")
            ).alias("target"),
        )
        .explode("target")
        .join(history.vote_rows.rename({"t": "_vt", "id": "vote"}), on="target", how="inner")
        .filter(pl.col("_vt") <= pl.col("t"))
        .group_by("sample")
        .agg(pl.col("vote").sort())
    )
    cons = (
        _until(tables.constraints, as_of)
        .select(
            pl.col("id").alias("constraint"),
            pl.format(
                "- for {}{}: never {}; must use {} ({}, by {})",
                "context",
                pl.when(pl.col("predicate").is_null())
                .then(pl.lit(""))
                .otherwise(pl.format(" {}", "predicate")),
                pl.col("forbidden").fill_null("-"),
                pl.col("must_use").fill_null("-"),
                pl.col("reason").fill_null("no reason given"),
                "agent",
            ).alias("_constraint_line"),
        )
        .collect()
    )
    r = (
        e.join(lines, on="sample", how="left")
        .join(named, on="sample", how="left")
        .join(votes, on="sample", how="left")
        .join(cons, on="constraint", how="left")
        .with_columns(
            _iso_us("t").alias("_when"),
            pl.col("lines").fill_null("(none)"),
            pl.col("hidden").fill_null(0),
        )
    )
    candidates = pl.concat_str(
        pl.lit("Candidates:\n"),
        pl.col("lines"),
        pl.when(pl.col("hidden") > 0)
        .then(pl.format("\n(and {} more candidates not shown)", "hidden"))
        .otherwise(pl.lit("")),
    )
    constraint_lines = (
        pl.when(pl.col("_constraint_line").is_not_null())
        .then(pl.format("Constraints in force:\n{}\n", "_constraint_line"))
        .otherwise(pl.lit(""))
    )
    question = (
        pl.when(pl.col("ask") == "query")
        .then(
            pl.format(
                "Agent {} asks, at {}: what is the {} of {}? ({})\n",
                "agent",
                "_when",
                "predicate",
                "subject",
                "filters",
            )
        )
        .when(pl.col("ask") == "check")
        .then(
            pl.format(
                "Agent {} checks, at {}, before using {} for the {} of {}.\n",
                "agent",
                "_when",
                _shown_value("told_value").fill_null(_shown_value("chosen_value")),
                pl.col("predicate").fill_null("anything"),
                "subject",
            )
        )
        .when(pl.col("ask") == "record")
        .then(
            pl.format(
                "Agent {} is about to record, at {}, the {} of {}.\n",
                "agent",
                "_when",
                "predicate",
                "subject",
            )
        )
        .otherwise(
            pl.format(
                "At {}, what is the {} of {}? (an answer to correct)\n",
                "_when",
                "predicate",
                "subject",
            )
        )
    )
    abstain = pl.format(
        "No settled answer: the candidates disagree ({}). Do not act on it yet; ask for "
        "a review or an approved decision.",
        pl.col("_values").list.eval(_shown_value(pl.element())).list.join(" vs "),
    )
    chosen_text = (
        pl.when(pl.col("kind") == "contested_acted_on")
        .then(abstain)
        .when(pl.col("chosen_value").is_null())
        .then(pl.format("Not {}: {}.", _shown_value("told_value"), "why"))
        .otherwise(pl.format("{}: {}.", _shown_value("chosen_value"), "why"))
    )
    # a contested sample needs the disagreement in its prompt: two values at least
    r = r.filter((pl.col("kind") != "contested_acted_on") | (pl.col("_values").list.len() >= 2))
    r = r.with_columns(
        pl.concat_str(question, constraint_lines, candidates).alias("_user"),
        chosen_text.alias("_chosen"),
        pl.when(pl.col("kind").is_in(list(NEGATIVE)))
        .then(_shown_value("told_value"))
        .alias("_rejected"),
    )
    # a sample whose text could not be built (a value missing in imported history) is
    # no sample: an empty message must never reach a trainer
    r = r.filter(pl.col("_user").is_not_null() & pl.col("_chosen").is_not_null())
    out = r.select(
        "sample",
        pl.lit(None, pl.String).alias("sample_id"),
        "kind",
        pl.when(pl.col("kind").is_in(list(NEGATIVE)))
        .then(pl.lit("negative"))
        .otherwise(pl.lit("positive"))
        .alias("label"),
        "query_id",
        "agent",
        *KEY,
        pl.col("t").cast(pl.Datetime("us", "UTC")).alias("asked_at"),
        pl.concat_list(
            pl.struct(role=pl.lit("system"), content=pl.lit(SYSTEM)),
            pl.struct(role=pl.lit("user"), content=pl.col("_user")),
        ).alias("prompt"),
        pl.concat_list(pl.struct(role=pl.lit("assistant"), content=pl.col("_chosen"))).alias(
            "chosen"
        ),
        pl.when(pl.col("_rejected").is_not_null())
        .then(pl.concat_list(pl.struct(role=pl.lit("assistant"), content=pl.col("_rejected"))))
        .otherwise(pl.lit([], dtype=MESSAGES))
        .alias("rejected"),
        pl.col("told").alias("rejected_assertion"),
        "chosen_assertion",
        "supersession",
        "constraint",
        pl.col("vote").fill_null([]).alias("votes"),
        _distinct_sorted(pl.concat_list(pl.col("agent"), pl.col("_authors").fill_null([]))).alias(
            "agents"
        ),
        _distinct_sorted(
            pl.concat_list(pl.col("sources").fill_null([]), pl.col("_own").fill_null([]))
        ).alias("sources"),
        # what makes two samples the same: the content without the asker and the times
        pl.concat_str(
            "kind",
            pl.col("_user")
            .str.replace_all(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "T")
            .str.replace_all(r"^Agent \S+", "Agent"),
            "_chosen",
            pl.col("_rejected").fill_null(""),
            separator="\x1f",
        ).alias("_same"),
    ).cast({k: v for k, v in _RENDERED.items() if k != "content_hash"})
    return out.sort("sample")


def _distinct_sorted(lists: pl.Expr) -> pl.Expr:
    """Each list's distinct values, sorted (through ``list.eval``: ``list.sort`` on
    lists of text took ten times as long, measured on Polars 2.1)."""
    return lists.list.eval(pl.element().unique().sort())


def _iso_us(col: str) -> pl.Expr:
    return pl.col(col).cast(pl.Datetime("us", "UTC")).dt.strftime(_TIME)


def identify(out: pl.DataFrame) -> pl.DataFrame:
    """`render`'s rows with their ids and content hashes.

    ``sample_id`` is the BLAKE3 of the kind and every message's text;
    ``content_hash`` that of the content with the asker and the times set
    aside, whitespace collapsed and lowercased (polars-hash: stable across
    Polars versions)."""
    text = pl.concat_str(
        "kind",
        *(
            pl.col(c).list.eval(pl.element().struct.field("content")).list.join("\x1e")
            for c in ("prompt", "chosen", "rejected")
        ),
        separator="\x1f",
    )
    same = normal("_same")
    return (
        out.with_columns(text.alias("_t"), same.alias("_s"))
        .with_columns(
            plh.col("_t").chash.blake3().alias("sample_id"),
            plh.col("_s").chash.blake3().alias("content_hash"),
        )
        .select(_RENDERED.names())
        .cast(_RENDERED)
    )


def dedupe(out: pl.DataFrame) -> pl.DataFrame:
    """Exact duplicates (the same ``content_hash``) kept once, the earliest, with
    how many were merged in ``duplicates``."""
    return (
        out.with_columns((pl.len().over("content_hash") - 1).cast(pl.UInt32).alias("duplicates"))
        .unique("content_hash", keep="first", maintain_order=True)
        .select(SCHEMA.names())
        .cast(SCHEMA)
    )
