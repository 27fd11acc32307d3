"""The trust graph as of T, per topic: who vouched for whom, and who was corrected.

One row per piece of evidence, ``source -> target`` with a signed ``weight``:

| kind | source -> target | weight |
|---|---|---|
| ``vote`` | voter -> the assertion's author | the vote's weight (the voter's latest vote on it) |
| ``approval`` | approver -> author | ``approval_weight`` |
| ``confirmation`` | who used it successfully -> author | ``confirmation_weight`` |
| ``correction`` | corrector -> author of an invalidated assertion | ``-correction_weight`` |
| ``endorsed_bad`` | corrector -> each earlier voter for it | ``-correction_weight * voter`` |
| ``downstream`` | corrector -> each agent that built on it | ``-correction_weight * decay ** d`` |
| ``unfiltered`` | corrector -> each agent told it unapproved, unfiltered | ``-corr. * decay`` |

(An ``endorsed_bad`` voter's own vote edge is dropped; ``voter`` is
``voter_penalty``, ``d`` the distance, ``decay`` ``downstream_decay``.)

"Built on it": assertions derived from it through parent links (d = 1, 2, 3
along the chain), and agents that were answered with it (the audit's winner)
and then wrote on the same topic (d = 1). Every edge is on the topic of the
assertion it is about, so a correction on ``auth`` costs nothing on ``db``.
Self-edges (voting for oneself, correcting oneself) carry nothing and are
dropped.
"""

from __future__ import annotations

import polars as pl
import polars_hash as plh

from steme_lake.query._candidates import ORDER, Tables, _until, as_of_lit
from steme_lake.trust._options import TrustOptions

__all__ = ["EDGE_SCHEMA", "build_edges", "share_of", "topic_expr"]

EDGE_SCHEMA = pl.Schema(
    [
        ("source", pl.String()),
        ("target", pl.String()),
        ("weight", pl.Float64()),
        ("kind", pl.String()),
        ("topic", pl.String()),
        ("at", pl.Datetime("us", "UTC")),
        ("assertion", pl.String()),
    ]
)


def topic_expr(subject: pl.Expr, depth: int) -> pl.Expr:
    """The topic of a subject: its first ``depth`` path parts."""
    return subject.str.strip_chars("/").str.split("/").list.slice(0, depth).list.join("/")


def _edges(frame: pl.DataFrame, kind: str, weight: pl.Expr) -> pl.DataFrame:
    return frame.select(
        pl.col("source"),
        pl.col("target"),
        weight.cast(pl.Float64).alias("weight"),
        pl.lit(kind).alias("kind"),
        pl.col("topic"),
        pl.col("at"),
        pl.col("assertion"),
    )


def share_of(topic: str, shares: int) -> pl.Expr:
    """Which of ``shares`` tasks builds the edges of the topic in column ``topic``
    (xxHash64 of its name: the same in every process and version)."""
    return (plh.col(topic).nchash.xxhash64() % shares).cast(pl.Int64)


def build_edges(
    tables: Tables,
    audit: pl.LazyFrame,
    as_of: int,
    options: TrustOptions,
    *,
    share: tuple[int, int] | None = None,
) -> pl.DataFrame:
    """Every piece of trust evidence recorded at or before ``as_of`` (µs), as edges.

    ``share=(k, n)``: only the edges on the topics `share_of` gives to task ``k``
    of ``n`` (every edge is on the topic of the assertion it is about, so the
    shares' edges, concatenated and sorted, are exactly all the edges)."""
    o = options
    everything = _until(tables.assertions, as_of).with_columns(
        topic_expr(pl.col("subject"), o.depth).alias("topic")
    )
    mine = everything
    if share is not None:
        mine = everything.filter(share_of("topic", share[1]) == share[0])
    assertions = mine.select(
        "id", "subject", "agent", "parent", "source_hash", "lifecycle", "recorded_at", "topic"
    ).collect()
    authors = assertions.select(
        pl.col("id").alias("assertion"), pl.col("agent").alias("target"), "topic"
    )
    votes_until = _until(tables.votes, as_of)
    if share is not None:  # only votes on this share's assertions, before the latest-per-voter
        votes_until = votes_until.join(
            authors.lazy().select(pl.col("assertion").alias("target")), on="target", how="semi"
        )
    votes = (
        votes_until.sort(ORDER)
        .group_by("agent", "target", maintain_order=True)
        .last()
        .select(
            pl.col("agent").alias("source"),
            pl.col("target").alias("assertion"),
            "weight",
            pl.col("recorded_at").alias("at"),
        )
        .collect()
        .join(authors, on="assertion", how="inner")
    )
    approvals = _acts(
        _until(tables.lifecycle, as_of).filter(pl.col("stage") == "approved"), authors
    )
    confirmations = _acts(_until(tables.confirmations, as_of), authors)
    corrected = _corrected(tables, assertions, as_of)
    # A voter's endorsement of an assertion later invalidated is withdrawn.
    endorsed = votes.join(
        corrected.select("assertion", pl.col("at").alias("_fixed_at")), on="assertion", how="left"
    )
    withdrawn = pl.col("_fixed_at").is_not_null() & (pl.col("at") < pl.col("_fixed_at"))
    kept_votes = endorsed.filter(~withdrawn).drop("_fixed_at")
    # (A vote for one's own assertion carries nothing, so costs nothing either.)
    bad_votes = endorsed.filter(
        withdrawn & (pl.col("weight") > 0) & (pl.col("source") != pl.col("target"))
    )
    parts = [
        _edges(kept_votes, "vote", pl.col("weight")),
        _edges(approvals, "approval", pl.lit(o.approval_weight)),
        _edges(confirmations, "confirmation", pl.lit(o.confirmation_weight)),
        _edges(
            corrected.join(authors, on="assertion", how="inner"),
            "correction",
            pl.lit(-o.correction_weight),
        ),
        _edges(
            bad_votes.join(
                corrected.select("assertion", pl.col("source").alias("_corrector")),
                on="assertion",
            ).select(
                pl.col("_corrector").alias("source"),
                pl.col("source").alias("target"),
                "topic",
                pl.col("_fixed_at").alias("at"),
                "assertion",
            ),
            "endorsed_bad",
            pl.lit(-o.correction_weight * o.voter_penalty),
        ),
        _downstream(assertions, audit, corrected, as_of, o, everything if share else None),
        _unfiltered(assertions, tables, audit, corrected, as_of, o),
    ]
    found = [p.cast(EDGE_SCHEMA) for p in parts if p.height]
    if not found:
        return pl.DataFrame(schema=EDGE_SCHEMA)
    edges = pl.concat(found, how="vertical")
    edges = edges.filter((pl.col("source") != pl.col("target")) & (pl.col("weight") != 0))
    # One order for the same evidence, whatever order the joins produced it in: the
    # ranking numbers nodes by first appearance, so the same as-of gives the same bytes.
    edges = edges.sort("topic", "source", "target", "kind", "assertion", "at", "weight")
    return _decayed(edges, as_of, o)


def _acts(records: pl.LazyFrame, authors: pl.DataFrame) -> pl.DataFrame:
    """Records by ``agent`` about a ``target`` assertion, with the author it is about."""
    return (
        records.select(
            pl.col("agent").alias("source"),
            pl.col("target").alias("assertion"),
            pl.col("recorded_at").alias("at"),
        )
        .collect()
        .join(authors, on="assertion", how="inner")
    )


def _corrected(tables: Tables, assertions: pl.DataFrame, as_of: int) -> pl.DataFrame:
    """(corrector as ``source``, invalidated ``assertion``, correction time ``at``):
    the assertions each ``invalidate`` supersession covers, by id, by source or by
    an agent's window, recorded before it."""
    sup = (
        _until(tables.supersessions, as_of)
        .filter(pl.col("kind") == "invalidate")
        .select(
            pl.col("agent").alias("source"),
            "scope",
            "target",
            "source_hash",
            "target_agent",
            "window_start",
            "window_end",
            pl.col("recorded_at").alias("at"),
        )
        .collect()
    )
    a = assertions.select("id", "agent", "source_hash", "recorded_at")
    by_id = sup.filter(pl.col("scope") == "assertion").select(
        "source", pl.col("target").alias("assertion"), "at"
    )
    by_source = (
        sup.filter(pl.col("scope") == "source")
        .join(a, on="source_hash", how="inner")
        .filter(pl.col("recorded_at") <= pl.col("at"))
        .select("source", pl.col("id").alias("assertion"), "at")
    )
    by_window = (
        sup.filter(pl.col("scope") == "agent_window")
        .join(a, left_on="target_agent", right_on="agent", how="inner")
        .filter(
            (pl.col("window_start").is_null() | (pl.col("recorded_at") >= pl.col("window_start")))
            & (pl.col("window_end").is_null() | (pl.col("recorded_at") <= pl.col("window_end")))
        )
        .select("source", pl.col("id").alias("assertion"), "at")
    )
    out = pl.concat([by_id, by_source, by_window], how="vertical")
    # The first correction of an assertion is the one that counts.
    return out.sort("at").unique("assertion", keep="first", maintain_order=True)


def _downstream(
    assertions: pl.DataFrame,
    audit: pl.LazyFrame,
    corrected: pl.DataFrame,
    as_of: int,
    o: TrustOptions,
    everything: pl.LazyFrame | None = None,
) -> pl.DataFrame:
    """Penalty edges to the agents that built on invalidated assertions (``everything``:
    all assertions, when ``assertions`` holds one share's: a child may be on any topic)."""
    if corrected.is_empty() or o.downstream_depth == 0:
        return pl.DataFrame(schema=EDGE_SCHEMA)
    roots = corrected.join(
        assertions.select(pl.col("id").alias("assertion"), "topic"), on="assertion"
    ).select(pl.col("source").alias("corrector"), "assertion", "at", "topic")
    if roots.is_empty():
        return pl.DataFrame(schema=EDGE_SCHEMA)
    children = (
        (assertions.lazy() if everything is None else everything)
        .select(pl.col("parent"), pl.col("id").alias("child"), pl.col("agent").alias("target"))
        .filter(pl.col("parent").is_not_null())
        .collect()
    )
    rows = []
    frontier = roots.select(
        "corrector", pl.col("assertion").alias("node"), "at", "topic", "assertion"
    )
    for distance in range(1, o.downstream_depth + 1):
        step = frontier.join(children, left_on="node", right_on="parent", how="inner")
        if step.is_empty():
            break
        weight = -o.correction_weight * o.downstream_decay**distance
        rows.append(
            step.select(
                pl.col("corrector").alias("source"),
                "target",
                pl.lit(weight).alias("weight"),
                "topic",
                "at",
                "assertion",
            )
        )
        frontier = step.select(
            "corrector", pl.col("child").alias("node"), "at", "topic", "assertion"
        )
    # Agents answered with it, who then wrote on its topic before the correction.
    told = (
        _until(audit, as_of)
        .filter(pl.col("op") == "query", pl.col("winner").is_not_null())
        .select(
            pl.col("winner").alias("assertion"),
            pl.col("agent").alias("target"),
            pl.col("recorded_at").alias("_told"),
        )
        .collect()
        .join(roots, on="assertion", how="inner")
        .filter(pl.col("_told") < pl.col("at"))
    )
    wrote = assertions.select(
        pl.col("agent").alias("target"), "topic", pl.col("recorded_at").alias("_wrote")
    )
    acted = (
        told.join(wrote, on=["target", "topic"], how="inner")
        .filter((pl.col("_wrote") > pl.col("_told")) & (pl.col("_wrote") <= pl.col("at")))
        .unique(["corrector", "target", "assertion"])
    )
    if acted.height:
        rows.append(
            acted.select(
                pl.col("corrector").alias("source"),
                "target",
                pl.lit(-o.correction_weight * o.downstream_decay).alias("weight"),
                "topic",
                "at",
                "assertion",
            )
        )
    if not rows:
        return pl.DataFrame(schema=EDGE_SCHEMA)
    found = pl.concat(rows, how="vertical")
    # One penalty per (corrector, agent, bad assertion): the nearest.
    found = found.sort("weight").unique(["source", "target", "assertion"], keep="last")
    return found.with_columns(pl.lit("downstream").alias("kind")).select(list(EDGE_SCHEMA))


def _unfiltered(
    assertions: pl.DataFrame,
    tables: Tables,
    audit: pl.LazyFrame,
    corrected: pl.DataFrame,
    as_of: int,
    o: TrustOptions,
) -> pl.DataFrame:
    """Penalty edges (kind ``unfiltered``, one step away) to the agents that asked
    with no lifecycle filter and were answered with an assertion that was not
    approved then and was invalidated later: they took a proposal for a decision
    and handed it on (the lead orchestrator of the JWT incident)."""
    if corrected.is_empty() or o.downstream_depth == 0:
        return pl.DataFrame(schema=EDGE_SCHEMA)
    told = (
        _until(audit, as_of)
        .filter(
            (pl.col("op") == "query")
            & pl.col("winner").is_not_null()
            & pl.col("lifecycle_filter").is_null()
            # a question about the past (as_of) is an investigation, not a decision
            & pl.col("params").str.json_path_match("$.as_of_requested").is_null()
        )
        .select(
            pl.col("winner").alias("assertion"),
            pl.col("agent").alias("target"),
            pl.col("recorded_at").alias("_told"),
        )
        .collect()
        .join(corrected.rename({"source": "corrector"}), on="assertion", how="inner")
        .filter(pl.col("_told") < pl.col("at"))
        .join(
            assertions.select(pl.col("id").alias("assertion"), "topic", "lifecycle", "agent"),
            on="assertion",
        )
        .filter(pl.col("target") != pl.col("agent"))
    )
    if told.is_empty():
        return pl.DataFrame(schema=EDGE_SCHEMA)
    changes = (
        _until(tables.lifecycle, as_of)
        .select(
            pl.col("target").alias("assertion"), "stage", pl.col("recorded_at").alias("_changed")
        )
        .collect()
    )
    stage_then = (
        told.join(changes, on="assertion", how="left")
        .filter(pl.col("_changed").is_null() | (pl.col("_changed") <= pl.col("_told")))
        .sort("_changed", nulls_last=False)
        .group_by("corrector", "target", "assertion", "_told", maintain_order=True)
        .agg(
            pl.col("stage").drop_nulls().last().alias("_stage"),
            pl.col("lifecycle").first(),
            pl.col("topic").first(),
            pl.col("at").first(),
        )
        .with_columns(pl.coalesce("_stage", "lifecycle").alias("_stage"))
        .filter(pl.col("_stage") != "approved")
        .unique(["corrector", "target", "assertion"])
    )
    return stage_then.select(
        pl.col("corrector").alias("source"),
        "target",
        pl.lit(-o.correction_weight * o.downstream_decay).alias("weight"),
        pl.lit("unfiltered").alias("kind"),
        "topic",
        "at",
        "assertion",
    ).cast(EDGE_SCHEMA)


def _decayed(edges: pl.DataFrame, as_of: int, o: TrustOptions) -> pl.DataFrame:
    if not o.half_lives:
        return edges
    half: pl.Expr = pl.lit(o.half_lives.get(""), dtype=pl.Float64)
    for topic, days in sorted(o.half_lives.items(), key=lambda kv: len(kv[0])):
        if topic:
            covered = (pl.col("topic") == topic) | pl.col("topic").str.starts_with(topic + "/")
            half = pl.when(covered).then(pl.lit(float(days))).otherwise(half)
    age_days = (as_of_lit(as_of) - pl.col("at")).dt.total_microseconds() / 86_400_000_000
    factor = pl.when(half.is_null()).then(1.0).otherwise(pl.lit(0.5).pow(age_days / half))
    return edges.with_columns(pl.col("weight") * factor)
