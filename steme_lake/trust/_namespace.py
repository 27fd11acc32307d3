"""``lake.trust``: the Gardener. Per-topic TrustRank from the lake's own evidence,
stored as time-stamped trust records (which the authority and consensus lenses
read as of any time), explained edge by edge, and the negative constraints a
correction calls for.
"""

from __future__ import annotations

import difflib
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from steme_lake._exceptions import ValidationError
from steme_lake._utils.timeparse import TimeLike
from steme_lake.engine import Engine, engine_for
from steme_lake.lake._rows import text as rows_text
from steme_lake.query._candidates import ORDER, _until
from steme_lake.trust._distributed import rank_on, ranked
from steme_lake.trust._graph import build_edges
from steme_lake.trust._options import TrustOptions
from steme_lake.trust._rank import rank_with

if TYPE_CHECKING:
    from steme_lake.lake import Lake

__all__ = ["GARDENER", "TrustNamespace"]

GARDENER = "gardener"  # the agent the Gardener's records are written as
_CHANGED = 1e-9  # a stored score is written again only when it moved more than this
_EVIDENCE = ("assertions", "votes", "lifecycle", "supersessions", "confirmations")
# Each open lake's last PageRank per topic in this process: a warm start from the
# raw vector, where the stored scores carry the distrust discount (a worse start).
_LAST_RUN: weakref.WeakKeyDictionary[Lake, dict[str, pl.DataFrame]] = weakref.WeakKeyDictionary()


class TrustNamespace:
    """The Gardener, reached as ``lake.trust``.

    Examples
    --------
    >>> import steme_lake as sl, tempfile
    >>> lake = sl.open(tempfile.mkdtemp())
    >>> a = lake.assert_("auth/jwt", "alg", "RS256", agent="bot", source="adr")
    >>> _ = lake.vote(a, agent="human-sre")
    >>> lake.trust.run().filter(topic="auth")["agent"].to_list()
    ['human-sre', 'bot']
    >>> lake.close()
    """

    def __init__(self, lake: Lake) -> None:
        self._lake = lake

    @property
    def records(self) -> pl.LazyFrame:
        """Every trust record (the Gardener's and any recorded by hand)."""
        return self._lake.table("trust")

    # ------------------------------------------------------------ the graph

    def graph(
        self,
        *,
        topic: str | None = None,
        as_of: TimeLike | None = None,
        options: TrustOptions | None = None,
    ) -> pl.DataFrame:
        """The trust evidence as of T, one edge per row (see `steme_lake.trust._graph`);
        ``topic`` keeps one topic's edges (``""``: all of them, the global topic)."""
        edges = self._edges(self._lake._as_of(as_of), options or TrustOptions())[0]
        return edges if topic in (None, "") else edges.filter(pl.col("topic") == topic)

    def _edges(self, as_of: int, options: TrustOptions) -> tuple[pl.DataFrame, int]:
        tables, covered = self._lake._view()
        return build_edges(tables, self._lake.audit, as_of, options), covered

    # ------------------------------------------------------------ running

    def run(
        self,
        *,
        topics: list[str] | None = None,
        as_of: TimeLike | None = None,
        options: TrustOptions | None = None,
        store: bool = True,
        constraints: bool = True,
        warm: bool = False,
        engine: str | Engine | None = None,
        address: str | None = None,
    ) -> pl.DataFrame:
        """Rank every topic (or ``topics``; ``""`` is the global one) as of now or T.

        Run as of now with ``store`` (the default), the scores that moved are
        written as trust records (method: the parameters and the lake position
        read), so the lenses use them from now on, and each ``invalidate``
        correction with a known good value gets its negative constraint. Run
        as of a past T, nothing is written (the lake records what was known when).
        Running twice on an unchanged lake writes nothing new. ``warm`` starts
        each topic's iteration from its stored scores (fewer iterations after a
        few new edges; the result then agrees with a cold run within
        ``tolerance``, where a cold run reproduces a past run exactly).

        ``engine="ray"`` builds and ranks the topics on a Ray cluster (``address``,
        else ``RAY_ADDRESS``), each task reading the lake's files itself; the
        scores equal this process's bit for bit, and are stored from here
        (`steme_lake.engine`).
        """
        o = options or TrustOptions()
        t = self._lake._as_of(as_of)
        chosen = engine_for(engine, address=address)
        if chosen is not None and warm:
            raise ValidationError(
                "warm=True starts from this process's last run; it runs on the local "
                "engine only (leave engine out, or run cold on the cluster)"
            )
        if as_of is not None and store:
            store = constraints = False  # a past run is computed, never recorded as now
        previous = self.scores(as_of=as_of)
        last = _LAST_RUN.setdefault(self._lake, {})
        if chosen is not None:
            every = topics is None or any(isinstance(x, str) and not x.strip("/") for x in topics)
            found, covered = rank_on(chosen, self._lake, t, o, with_global=every)
            known = sorted({"", *found["topic"].unique().to_list()})
            wanted = known if topics is None else [self._topic(x, known) for x in topics]
            frames = [found.filter(pl.col("topic") == topic) for topic in wanted]
        else:
            edges, covered = self._edges(t, o)
            known = sorted({"", *edges["topic"].unique().to_list()})
            wanted = known if topics is None else [self._topic(x, known) for x in topics]
            frames = []
            by_topic = edges.partition_by("topic", as_dict=True, maintain_order=True)
            for topic in wanted:
                part = edges if topic == "" else by_topic.get((topic,), edges.clear())
                start = self._start(topic, part, previous, last) if warm else None
                frames.append(ranked(topic, part, o, start=start))
        for topic, frame in zip(wanted, frames, strict=True):
            last[topic] = frame.select("agent", "pagerank")
        scores = (
            pl.concat(frames, how="vertical")
            if frames
            else pl.DataFrame(schema={"topic": pl.String, "agent": pl.String})
        )
        if scores.height:
            scores = scores.sort("topic", "rank")
        if store and scores.height:
            self._store(scores, previous, f"{o.describe()} seq={covered}")
        if constraints:
            self.constrain()
        return scores

    def follow(
        self,
        *,
        interval: float = 2.0,
        options: TrustOptions | None = None,
        stop: threading.Event | None = None,
        on_run: Callable[[pl.DataFrame], None] | None = None,
    ) -> int:
        """Keep the scores current: run now, then again (warm-started) whenever new
        trust evidence arrives (votes, lifecycle changes, corrections, confirmations,
        assertions: not questions), checking every ``interval`` seconds, until
        ``stop`` is set. Returns how many runs it made."""
        if not (isinstance(interval, int | float) and 0 < interval <= 3600):
            raise ValidationError(f"interval must be 0 to 3600 seconds, got {interval!r}")
        stop = stop or threading.Event()
        seen: tuple[int, ...] | None = None
        runs = 0
        while not stop.is_set():
            now = self._evidence_counts()
            if now != seen:
                result = self.run(options=options, warm=seen is not None)
                runs += 1
                seen = now
                if on_run is not None:
                    on_run(result)
            stop.wait(interval)
        return runs

    @staticmethod
    def _start(
        topic: str, part: pl.DataFrame, previous: pl.DataFrame, last: dict[str, pl.DataFrame]
    ) -> pl.DataFrame | None:
        """Where a warm run of ``topic`` starts: this process's last PageRank of it,
        else the PageRank behind its stored scores (None: a cold start)."""
        if topic in last:
            return last[topic]
        before = previous.filter(pl.col("topic") == topic)
        if before.is_empty():
            return None
        nodes = max(1, pl.concat([part["source"], part["target"]]).n_unique())
        score = pl.col("score")
        usable = score.is_finite() & (score >= 0) & (score < 1)
        pagerank = pl.when(usable).then(score / (1 - score) / nodes).otherwise(0.0)
        return before.select("agent", pagerank.alias("pagerank"))

    def _evidence_counts(self) -> tuple[int, ...]:
        tables = self._lake.status().tables
        return tuple(tables[t]["rows"] for t in _EVIDENCE)

    def _topic(self, topic: Any, known: list[str]) -> str:
        if not isinstance(topic, str):
            raise ValidationError(f"a topic is a subject prefix such as 'auth', got {topic!r}")
        name = str(topic).strip("/")
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise ValidationError(
                f"no trust evidence on topic {name!r}{hint} (topics: {', '.join(known[:12])})"
            )
        return name

    def _store(self, scores: pl.DataFrame, previous: pl.DataFrame, method: str) -> None:
        moved = (
            scores.join(
                previous.select("topic", "agent", pl.col("score").alias("_was")),
                on=["topic", "agent"],
                how="left",
            )
            .filter(
                pl.col("_was").is_null() | ((pl.col("score") - pl.col("_was")).abs() > _CHANGED)
            )
            .select("agent", "topic", "score", pl.lit(method).alias("method"))
        )
        if moved.height:
            self._lake.record_trust_many(moved)

    def import_ratings(
        self, path: str | Path, *, topic: str, prefix: str = "", source: str | None = None
    ) -> dict[str, int]:
        """Import a signed who-trusts-whom network (SNAP Bitcoin OTC or Alpha CSV):
        each rated agent's assertion ``<topic>/<agent> trustworthy true`` and each
        rating as a vote on it, ``rating / 10``, at its time (see
        `steme_lake.io.snap_signed`). History is imported in time order, so into a
        lake whose records are all older than the network's first rating."""
        from steme_lake.io.snap_signed import signed_network_frames

        topic = str(rows_text("topic", topic)).strip("/")
        assertions, votes = signed_network_frames(path, topic=topic, prefix=prefix, source=source)
        ids = self._lake.assert_many(assertions)
        by_subject = dict(zip(assertions["subject"].to_list(), ids, strict=True))
        targeted = votes.select(
            pl.col("subject").replace_strict(by_subject).alias("target"), "agent", "weight", "at"
        )
        self._lake.vote_many(targeted)
        return {"agents": assertions.height, "ratings": votes.height}

    # ------------------------------------------------------------ reading

    def scores(self, *, topic: str | None = None, as_of: TimeLike | None = None) -> pl.DataFrame:
        """The stored Gardener scores as of T: the latest per (topic, agent), ranked
        within each topic."""
        t = self._lake._as_of(as_of)
        stored = (
            _until(self.records, t)  # (the trust table alone: nothing else is read)
            .filter(pl.col("method").str.starts_with("trustrank/"))
            .sort(ORDER)
            .group_by("topic", "agent", maintain_order=True)
            .last()
            .select("topic", "agent", "score", "method", "recorded_at")
            .collect()
        )
        if topic is not None:
            stored = stored.filter(pl.col("topic") == topic.strip("/"))
        return stored.with_columns(
            pl.col("score").rank("ordinal", descending=True).over("topic").alias("rank")
        ).sort("topic", "rank")

    def explain(
        self,
        agent: str,
        topic: str,
        *,
        as_of: TimeLike | None = None,
        options: TrustOptions | None = None,
    ) -> pl.DataFrame:
        """Why ``agent`` has its score on ``topic``: each piece of evidence about it,
        largest effect first. ``contribution`` is the PageRank it brought
        (``damping * score(from) * weight / from's positive weight``) or, for
        distrust, the discount it cost (``-score(from) * |weight| / from's weight``);
        a seed's row ``teleport`` is its share of the restart."""
        o = options or TrustOptions()
        t = self._lake._as_of(as_of)
        edges = self._edges(t, o)[0]
        known = sorted({"", *edges["topic"].unique().to_list()})
        topic = self._topic(topic, known)
        part = edges if topic == "" else edges.filter(pl.col("topic") == topic)
        nodes = set(part["source"]) | set(part["target"])
        if agent not in nodes:
            close = difflib.get_close_matches(agent, sorted(nodes), n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise ValidationError(f"agent {agent!r} has no trust evidence on {topic!r}{hint}")
        seeds = [a for a in nodes if o.is_seed(a)]
        result = rank_with(part, o, seeds=seeds)
        pr = result.scores.select("agent", pl.col("pagerank").alias("from_pagerank"))
        out_weights = part.group_by("source").agg(
            pl.col("weight").clip(lower_bound=0).sum().alias("_pos"),
            pl.col("weight").abs().sum().alias("_abs"),
        )
        rows = (
            part.filter(pl.col("target") == agent)
            .join(pr, left_on="source", right_on="agent", how="left")
            .join(out_weights, on="source", how="left")
            .with_columns(
                pl.when(pl.col("weight") > 0)
                .then(o.damping * pl.col("from_pagerank") * pl.col("weight") / pl.col("_pos"))
                .otherwise(-pl.col("from_pagerank") * pl.col("weight").abs() / pl.col("_abs"))
                .alias("contribution")
            )
            .select(
                pl.col("source").alias("from_agent"),
                "kind",
                "weight",
                "from_pagerank",
                "contribution",
                "assertion",
                "at",
            )
        )
        if agent in seeds:
            teleport = (1 - o.damping) / len(seeds)
            rows = pl.concat(
                [
                    rows,
                    pl.DataFrame(
                        {"from_agent": [agent], "kind": ["teleport"], "contribution": [teleport]}
                    ),
                ],
                how="diagonal_relaxed",
            )
        return rows.sort(pl.col("contribution").abs(), descending=True)

    # ------------------------------------------------------------ corrections

    def constrain(self) -> list[str]:
        """Store the negative constraint each ``invalidate`` correction calls for:
        for its subject (and predicate), forbidden the invalidated value, must_use
        the correction's replacement or else the approved, unsuperseded value
        there, citing the invalidated assertion. Each is stored once; the ids of
        those stored now."""
        lake = self._lake
        tables = lake._tables()
        fixes = (
            tables.supersessions.filter(
                (pl.col("kind") == "invalidate") & (pl.col("scope") == "assertion")
            )
            .select("id", "agent", "target", "replacement", "reason")
            .collect()
        )
        if fixes.is_empty():
            return []
        cited = set(tables.constraints.select("cites").collect()["cites"].drop_nulls())
        stored = []
        for fix in fixes.iter_rows(named=True):
            if fix["target"] in cited:
                continue
            bad = lake.get(fix["target"])
            good = self._good_value(bad, fix["replacement"])
            if good is None or good == bad.object:  # type: ignore[attr-defined]
                continue
            stored.append(
                lake.add_constraint(
                    bad.subject,  # type: ignore[attr-defined]
                    agent=GARDENER,
                    predicate=bad.predicate,  # type: ignore[attr-defined]
                    forbidden=bad.object,  # type: ignore[attr-defined]
                    must_use=good,
                    reason=f"invalidated by {fix['agent']}: {fix['reason']} (correction "
                    f"{fix['id'][:12]})",
                    cites=fix["target"],
                )
            )
            cited.add(fix["target"])
        return stored

    def _good_value(self, bad: Any, replacement: str | None) -> Any:
        lake = self._lake
        if replacement is not None:
            try:
                return lake.get(replacement).object  # type: ignore[attr-defined]
            except KeyError:
                return None
        answer = lake._answer(
            None,
            bad.subject,
            bad.predicate,
            lens="authority",
            stages=("approved",),
            min_confidence=None,
            include_superseded=False,
            as_of=lake._as_of(None),
            requested=None,
        )
        return answer.value if answer.status == "answered" else None
