"""The lake as it stood at many moments, in one pass: the Dojo's engine.

A sample's prompt is built from the lake as of its own event's time. Asking
the point API once per sample would cost milliseconds each (seconds per
thousand samples); this module answers the same questions for every sample
at once with sorted as-of joins on the few keys the samples touch:

- `History.fixes`: the first supersession that reached each assertion (by id,
  by source or by an agent's window), so "superseded at t" is ``fixed_at <= t``;
- `History.stage_at`, `History.votes_at`: an assertion's lifecycle stage and
  vote total at a time;
- `History.approved_at`: the answer of the recency lens filtered to
  ``approved`` at a time (the latest approved, unsuperseded assertion), from a
  per-key timeline built by one sweep;
- `History.shown`: the candidates a prompt lists (the latest few live at t,
  plus the ones the sample is about) and how many more there were.

Times are integer microseconds throughout (``recorded_at`` cast to Int64).
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass
from functools import cached_property

import polars as pl

from steme_lake.query._candidates import Tables, _until

__all__ = ["KEY", "History"]

KEY = ["subject", "predicate"]
_US = pl.Int64
_FIX_COLUMNS = ["fix_id", "fixed_at", "fix_kind", "fix_reason", "fix_agent", "replacement"]


def _us(col: str) -> pl.Expr:
    return pl.col(col).cast(pl.Datetime("us", "UTC")).cast(_US)


def _last_per_time(frame: pl.DataFrame, by: str, value: str) -> pl.DataFrame:
    """One row per (by, time): the last in (time, id) order, sorted by time for as-of joins."""
    return (
        frame.sort("t", "id")
        .group_by(by, "t", maintain_order=True)
        .agg(pl.col(value).last())
        .sort("t")
    )


@dataclass
class History:
    """The assertions on the keys of interest and everything that happened to them,
    up to the export's as-of time."""

    assertions: pl.DataFrame  # id, subject, predicate, object, confidence, source_hash, agent,
    # lifecycle, parent, t (recorded), order (global rank of (t, id)), pos (rank within key),
    # fixed_at, fix_id, fix_kind, fix_reason, fix_agent, replacement
    lifecycle: pl.DataFrame  # target, t, stage (last per time), sorted by t
    votes: pl.DataFrame  # target, t, total (cumulative), sorted by t
    vote_rows: pl.DataFrame  # id, target, t
    approved: pl.DataFrame  # subject, predicate, t, approved (id or null), sorted by t
    fixed: pl.DataFrame  # subject, predicate, t, n_fixed (cumulative per key), sorted by t

    @classmethod
    def build(cls, tables: Tables, as_of: int, keys: pl.DataFrame) -> History:
        """``keys``: the distinct (subject, predicate) pairs the samples are about."""
        a = (
            _until(tables.assertions, as_of)
            .join(keys.lazy(), on=KEY, how="semi")
            .select(
                "id",
                "subject",
                "predicate",
                "object",
                "confidence",
                "source_hash",
                "agent",
                "lifecycle",
                "parent",
                _us("recorded_at").alias("t"),
            )
            .collect()
            .sort("t", "id")
            .with_row_index("order")
        )
        a = a.with_columns(pl.col("order").cast(pl.Int64))
        a = a.with_columns(
            (pl.col("order").rank("ordinal").over(KEY).cast(pl.Int64) - 1).alias("pos")
        )
        ids = a.select(pl.col("id").alias("target"))
        sup = _until(tables.supersessions, as_of).with_columns(_us("recorded_at").alias("t"))
        a = a.join(_first_fix(a, sup), on="id", how="left")
        life = (
            _until(tables.lifecycle, as_of)
            .join(ids.lazy(), on="target", how="semi")
            .select("id", "target", "stage", _us("recorded_at").alias("t"))
            .collect()
        )
        vote_rows = (
            _until(tables.votes, as_of)
            .join(ids.lazy(), on="target", how="semi")
            .select("id", "target", "weight", _us("recorded_at").alias("t"))
            .collect()
            .sort("t", "id")
        )
        votes = _last_per_time(
            vote_rows.with_columns(pl.col("weight").cum_sum().over("target").alias("total")),
            "target",
            "total",
        )
        fixed = (
            a.filter(pl.col("fixed_at").is_not_null())
            .group_by(*KEY, pl.col("fixed_at").alias("t"))
            .agg(pl.len().cast(pl.Int64).alias("n"))
            .sort("t")
            .with_columns(pl.col("n").cum_sum().over(KEY).alias("n_fixed"))
            .drop("n")
        )
        return cls(
            assertions=a,
            lifecycle=_last_per_time(life, "target", "stage"),
            votes=votes,
            vote_rows=vote_rows.drop("weight"),
            approved=_approved_timeline(a, life),
            fixed=fixed,
        )

    # ------------------------------------------------------------ lookups

    def stage_at(
        self, pairs: pl.DataFrame, id_col: str, t_col: str, out: str, *, recorded: str
    ) -> pl.DataFrame:
        """``pairs`` with ``out``: the lifecycle stage of ``id_col`` at ``t_col``.
        ``recorded``: the column of ``pairs`` holding the stage each assertion was
        recorded with (the caller has it from its join with `assertions`; a map of
        every assertion by id, made per call, cost a quarter second at 1M)."""
        at = self._asof(pairs, id_col, t_col, self.lifecycle.rename({"stage": "_stage"}), "target")
        return at.with_columns(pl.coalesce("_stage", recorded).alias(out)).drop("_stage")

    def votes_at(self, pairs: pl.DataFrame, id_col: str, t_col: str, out: str) -> pl.DataFrame:
        """``pairs`` with ``out``: the sum of the votes on ``id_col`` up to ``t_col``."""
        return (
            self._asof(pairs, id_col, t_col, self.votes.rename({"total": "_total"}), "target")
            .with_columns(pl.col("_total").fill_null(0.0).alias(out))
            .drop("_total")
        )

    def approved_at(self, pairs: pl.DataFrame, t_col: str, out: str) -> pl.DataFrame:
        """``pairs`` (with subject, predicate) with ``out``: the latest approved,
        unsuperseded assertion at ``t_col`` (null: none)."""
        return _backward(pairs, t_col, self.approved.rename({"t": "_t", "approved": out}), KEY)

    @cached_property
    def _recorded(self) -> pl.DataFrame:
        """Each key's assertions by time (``_rt``) with their rank in the key: the
        assertions are sorted by time already, and sorting them again for every
        chunk cost a tenth of a second at 1M."""
        by_time = self.assertions.select(*KEY, pl.col("t").alias("_rt"), "pos")
        return by_time.set_sorted("_rt") if by_time["_rt"].is_sorted() else by_time.sort("_rt")

    def _asof(
        self, pairs: pl.DataFrame, id_col: str, t_col: str, right: pl.DataFrame, by: str
    ) -> pl.DataFrame:
        return _backward(pairs, t_col, right.rename({by: id_col, "t": "_t"}), [id_col])

    def shown(self, samples: pl.DataFrame, *, show: int, also: list[str]) -> pl.DataFrame:
        """The candidates each sample's prompt lists: the ``show`` latest live at the
        sample's ``t`` (recorded by then, not superseded by then), plus the
        assertions named in the ``also`` columns, with ``stage`` and ``votes`` at
        ``t``. One row per (``sample``, candidate), and ``hidden``: how many live
        candidates were left out."""
        a = self.assertions
        keyed = samples.select("sample", *KEY, "t").sort("t")
        last = keyed.join_asof(
            self._recorded,
            left_on="t",
            right_on="_rt",
            by=KEY,
            strategy="backward",
            check_sortedness=False,
        ).join_asof(
            self.fixed.rename({"t": "_ft"}),
            left_on="t",
            right_on="_ft",
            by=KEY,
            strategy="backward",
            check_sortedness=False,
        )
        live = last.select(
            "sample",
            "t",
            (pl.col("pos").fill_null(-1) + 1 - pl.col("n_fixed").fill_null(0)).alias("live"),
            "pos",
            *KEY,
        )
        scan = max(4 * show, show + 8)
        window = (
            live.filter(pl.col("pos").is_not_null())
            .with_columns(pl.int_ranges(0, scan).alias("_off"))
            .explode("_off")
            .with_columns((pl.col("pos") - pl.col("_off")).alias("pos"))
            .filter(pl.col("pos") >= 0)
            .join(a.select(*KEY, "pos", "id", "fixed_at"), on=[*KEY, "pos"], how="inner")
            .filter(pl.col("fixed_at").is_null() | (pl.col("fixed_at") > pl.col("t")))
            .sort("sample", "pos", descending=[False, True])
            .group_by("sample", maintain_order=True)
            .head(show)
            .select("sample", "id")
        )
        named = [
            samples.select("sample", pl.col(c).alias("id")).filter(pl.col("id").is_not_null())
            for c in also
        ]
        rows = (
            pl.concat([window, *named])
            .unique(maintain_order=True)
            .join(samples.select("sample", "t"), on="sample", how="left")
            .join(a, on="id", how="inner", suffix="_rec")
            .filter(pl.col("t_rec") <= pl.col("t"))
        )
        rows = self.stage_at(rows, "id", "t", "stage", recorded="lifecycle")
        rows = self.votes_at(rows, "id", "t", "votes")
        counted = rows.group_by("sample").agg(pl.len().alias("_n"))
        return (
            rows.join(
                live.select("sample", "live").join(counted, on="sample", how="left"),
                on="sample",
                how="left",
            )
            .with_columns((pl.col("live") - pl.col("_n")).clip(lower_bound=0).alias("hidden"))
            .drop("_n", "live")
        )


def _backward(pairs: pl.DataFrame, t_col: str, right: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """``pairs`` (order kept) with the latest row of ``right`` (time ``_t``) at or
    before each pair's ``t_col``, matched on ``by``."""
    return (
        pairs.with_row_index("_row")
        .sort(t_col)
        .join_asof(
            right,
            left_on=t_col,
            right_on="_t",
            by=by,
            strategy="backward",
            check_sortedness=False,
        )
        .sort("_row")
        .drop("_row", "_t")
    )


def _first_fix(a: pl.DataFrame, sup: pl.LazyFrame) -> pl.DataFrame:
    """For each assertion, the earliest supersession reaching it: by its id, by its
    source (a source supersession retires what was recorded before it), or by a
    window on its agent's assertions."""
    cols: list[pl.Expr | str] = [
        pl.col("id").alias("fix_id"),
        pl.col("t").alias("fixed_at"),
        pl.col("kind").alias("fix_kind"),
        pl.col("reason").alias("fix_reason"),
        pl.col("agent").alias("fix_agent"),
        "replacement",
    ]
    s = sup.collect()
    by_id = a.select("id").join(
        s.filter(pl.col("scope") == "assertion").select("target", *cols),
        left_on="id",
        right_on="target",
        how="inner",
    )
    by_source = (
        a.select("id", "source_hash", pl.col("t").alias("_at"))
        .join(
            s.filter(pl.col("scope") == "source").select("source_hash", *cols),
            on="source_hash",
            how="inner",
        )
        .filter(pl.col("fixed_at") >= pl.col("_at"))
        .select("id", *_FIX_COLUMNS)
    )
    windows = s.filter(pl.col("scope") == "agent_window").select(
        pl.col("target_agent").alias("_agent"),
        _us("window_start").alias("_start"),
        _us("window_end").alias("_end"),
        *cols,
    )
    by_window = (
        a.select("id", pl.col("agent").alias("_agent"), pl.col("t").alias("_at"))
        .join(windows, on="_agent", how="inner")
        .filter(
            (pl.col("_start").is_null() | (pl.col("_at") >= pl.col("_start")))
            & (pl.col("_end").is_null() | (pl.col("_at") <= pl.col("_end")))
        )
        .select("id", *_FIX_COLUMNS)
    )
    return (
        pl.concat([by_id.select("id", *_FIX_COLUMNS), by_source, by_window])
        .sort("fixed_at", "fix_id")
        .group_by("id", maintain_order=True)
        .first()
    )


def _approved_timeline(a: pl.DataFrame, life: pl.DataFrame) -> pl.DataFrame:
    """Per key, the times at which the latest approved, unsuperseded assertion
    changes, and which it became (null: none)."""
    steps = (
        pl.concat(
            [
                a.select(
                    pl.col("id").alias("target"),
                    "t",
                    pl.lit("").alias("lid"),
                    pl.col("lifecycle").alias("stage"),
                ),
                life.select("target", "t", pl.col("id").alias("lid"), "stage"),
            ]
        )
        .sort("target", "t", "lid")
        .with_columns((pl.col("stage") == "approved").alias("on"))
        .with_columns(pl.col("on").shift(1, fill_value=False).over("target").alias("was"))
        .filter(pl.col("on") != pl.col("was"))
    )
    starts = steps.filter(pl.col("on")).with_columns(
        pl.int_range(pl.len()).over("target").alias("k")
    )
    ends = steps.filter(~pl.col("on")).with_columns(
        pl.int_range(pl.len()).over("target").alias("k")
    )
    spans = (
        starts.select("target", "k", pl.col("t").alias("start"))
        .join(ends.select("target", "k", pl.col("t").alias("end")), on=["target", "k"], how="left")
        .join(
            a.select(pl.col("id").alias("target"), *KEY, "order", "fixed_at"),
            on="target",
            how="inner",
        )
        .with_columns(pl.min_horizontal("end", "fixed_at").alias("end"))
        .filter(pl.col("end").is_null() | (pl.col("end") > pl.col("start")))
        .sort(*KEY, "start")
    )
    out_s: list[str] = []
    out_p: list[str] = []
    out_t: list[int] = []
    out_w: list[str | None] = []
    rows = spans.select(*KEY, "target", "order", "start", "end").rows()
    for key, part in itertools.groupby(rows, key=lambda r: (r[0], r[1])):
        events: list[tuple[int, int, int, str]] = []
        for _, _, target, order, start, end in part:
            events.append((start, 1, order, target))
            if end is not None:
                events.append((end, 0, order, target))
        events.sort()
        active: list[tuple[int, str]] = []
        gone: set[str] = set()
        current: str | None = None
        i = 0
        while i < len(events):
            now = events[i][0]
            while i < len(events) and events[i][0] == now:
                _, starting, order, target = events[i]
                if starting:
                    gone.discard(target)
                    heapq.heappush(active, (-order, target))
                else:
                    gone.add(target)
                i += 1
            while active and active[0][1] in gone:
                heapq.heappop(active)
            winner = active[0][1] if active else None
            if winner != current:
                out_s.append(key[0])
                out_p.append(key[1])
                out_t.append(now)
                out_w.append(winner)
                current = winner
    return pl.DataFrame(
        {"subject": out_s, "predicate": out_p, "t": out_t, "approved": out_w},
        schema={"subject": pl.String, "predicate": pl.String, "t": _US, "approved": pl.String},
    ).sort("t")
