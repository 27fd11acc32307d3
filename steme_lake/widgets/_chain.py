"""Where an answer came from, as a small layered graph: sources -> agents ->
assertions -> answers -> agents that received them -> derived assertions.

`chain` gathers the nodes and edges from the lake's own investigation calls
(`Lake.provenance`, `Lake.impact`); `svg` draws them as an SVG picture (no
JavaScript, so it renders the same in Jupyter, Voila and a saved notebook).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import polars as pl

from steme_lake._exceptions import UnknownRecordError
from steme_lake.widgets._text import short, shown

if TYPE_CHECKING:
    from steme_lake.lake import Lake

__all__ = ["LAYERS", "Chain", "chain_of_assertion", "chain_of_query", "downstream_until", "svg"]

LAYERS = ("source", "agent", "assertion", "answer", "received by", "derived")
_MAX_PER_LAYER = 8  # more than this in one column is summarised as "+N more"


@dataclass(slots=True)
class Chain:
    """Nodes per layer (``(key, label, flag)``; flag ``"bad"`` marks the selected
    record, ``"won"`` an assertion an answer rested on) and edges (key, key)."""

    nodes: dict[str, list[tuple[str, str, str]]] = field(
        default_factory=lambda: {layer: [] for layer in LAYERS}
    )
    edges: list[tuple[str, str]] = field(default_factory=list)
    more: dict[str, int] = field(default_factory=dict)
    until: datetime | None = None  # how far downstream was followed
    _shown: set[str] = field(default_factory=set)
    _hidden: dict[str, set[str]] = field(default_factory=dict)
    _linked: set[tuple[str, str]] = field(default_factory=set)

    def add(self, layer: str, key: str, label: str, flag: str = "") -> None:
        """A node, unless its column is full: then it is counted in ``more``
        (a question on a busy belief weighs thousands of candidates)."""
        if key in self._shown:
            return
        column = self.nodes[layer]
        if len(column) >= _MAX_PER_LAYER:
            hidden = self._hidden.setdefault(layer, set())
            hidden.add(key)
            self.more[layer] = len(hidden)
            return
        column.append((key, label, flag))
        self._shown.add(key)

    def link(self, a: str, b: str) -> None:
        """An edge between two nodes on the picture (others are not drawn)."""
        if a in self._shown and b in self._shown and (a, b) not in self._linked:
            self._linked.add((a, b))
            self.edges.append((a, b))

    def frame(self) -> pl.DataFrame:
        """The nodes as a frame (layer, key, label, flag): what the picture shows."""
        rows = [
            (layer, key, label, flag) for layer in LAYERS for key, label, flag in self.nodes[layer]
        ]
        return (
            pl.DataFrame(rows, schema=["layer", "key", "label", "flag"], orient="row")
            if rows
            else pl.DataFrame(schema={c: pl.String for c in ("layer", "key", "label", "flag")})
        )


def downstream_until(
    start: datetime, until: datetime | None, horizon: timedelta | None
) -> datetime | None:
    """How far downstream to follow: ``until``, and at most ``horizon`` after ``start``."""
    if horizon is None:
        return until
    end = start + horizon
    return end if until is None else min(until, end)


def _downstream(lake: Lake, c: Chain, assertion: str, until: datetime | None) -> None:
    """The answers resting on ``assertion``, who received them and what they derived."""
    impact = lake.impact(assertion, depth=1, until=until)
    c.until = until
    queries = impact.queries
    for q in queries.head(_MAX_PER_LAYER * 2).iter_rows(named=True):
        key = f"q:{q['query_id']}"
        when = q["recorded_at"].strftime("%m-%d %H:%M")
        c.add("answer", key, f"{when} → {short(shown(q['value']), 12)}")
        c.link(f"a:{assertion}", key)
        c.add("received by", f"r:{q['asked_by']}", q["asked_by"])
        c.link(key, f"r:{q['asked_by']}")
    for d in impact.assertions.iter_rows(named=True):
        key = f"d:{d['id']}"
        c.add("derived", key, f"{short(d['predicate'], 14)} = {short(shown(d['object']), 10)}")
        writer = f"r:{d['agent']}"
        if any(k == writer for k, _, _ in c.nodes["received by"]):
            c.link(writer, key)
        else:
            c.link(f"a:{assertion}", key)


def chain_of_query(
    lake: Lake,
    query_id: str,
    *,
    until: datetime | None = None,
    horizon: timedelta | None = None,
    provenance: pl.DataFrame | None = None,
) -> Chain:
    """The chain behind one audited answer: the assertions it weighed (the cited
    ones marked), their agents and sources, the answer, who received it (the
    asker, and who else was answered with the winner) and what was
    derived from the winner, up to ``until`` and at most ``horizon`` after the
    question. ``provenance``: `Lake.provenance` of the question, if already read."""
    prov = lake.provenance(query_id) if provenance is None else provenance
    c = Chain()
    if prov.is_empty():
        return c
    first = prov.row(0, named=True)
    answer = f"q:{query_id}"
    asked = f"{first['asked_at']:%m-%d %H:%M} → {short(shown(first['answer']), 12)}"
    c.add("answer", answer, asked, "bad")
    for r in prov.iter_rows(named=True):
        src, who, a = f"s:{r['source_hash']}", f"w:{r['agent']}", f"a:{r['assertion']}"
        c.add("source", src, short(r["source_hash"], 12))
        c.add("agent", who, r["agent"])
        flag = "won" if r["cited"] else ""
        label = f"{short(shown(r['value']), 12)} ({r['lifecycle_at_query'] or '?'})"
        c.add("assertion", a, label, flag)
        c.link(src, who)
        c.link(who, a)
        if r["cited"]:
            c.link(a, answer)
    c.add("received by", f"r:{first['asked_by']}", first["asked_by"])
    c.link(answer, f"r:{first['asked_by']}")
    winner = prov.filter(pl.col("won"))
    if winner.height:
        end = downstream_until(first["asked_at"], until, horizon)
        _downstream(lake, c, winner["assertion"][0], end)
    return c


def chain_of_assertion(
    lake: Lake,
    assertion: str,
    *,
    until: datetime | None = None,
    horizon: timedelta | None = None,
) -> Chain:
    """The chain through one assertion: its source and agent, the answers that
    rested on it (up to ``until``, and at most ``horizon`` after it was written),
    who received them and what they derived."""
    found = lake.assertions.filter(pl.col("id") == assertion).collect()
    if found.is_empty():
        raise UnknownRecordError(f"no assertion {assertion} in this lake")
    record = found.row(0, named=True)
    c = Chain()
    src, who, a = f"s:{record['source_hash']}", f"w:{record['agent']}", f"a:{assertion}"
    c.add("source", src, short(record["source_hash"], 12))
    c.add("agent", who, record["agent"])
    label = f"{short(shown(record['object']), 12)} ({record['lifecycle']})"
    c.add("assertion", a, label, "bad")
    c.link(src, who)
    c.link(who, a)
    end = downstream_until(record["recorded_at"], until, horizon)
    _downstream(lake, c, assertion, end)
    return c


_W, _H, _COL, _ROW, _TOP = 150, 30, 178, 44, 34
_FILL = {"bad": "#fde2e1", "won": "#fff4ce", "": "#eef3fb"}
_STROKE = {"bad": "#c62828", "won": "#b7950b", "": "#5b7db1"}


def svg(c: Chain) -> str:
    """The chain as an SVG picture: one column per layer, left to right."""
    at: dict[str, tuple[float, float]] = {}
    tallest = max([len(v) + (1 if c.more.get(k) else 0) for k, v in c.nodes.items()] + [1])
    width, height = _COL * len(LAYERS) + 10, _TOP + tallest * _ROW + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="steme-chain" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">'
    ]
    for i, layer in enumerate(LAYERS):
        x = 5 + i * _COL
        parts.append(f'<text x="{x}" y="16" font-weight="bold" fill="#444">{layer}</text>')
        for j, (key, _, _) in enumerate(c.nodes[layer]):
            at[key] = (x, _TOP + j * _ROW)
    for a, b in c.edges:
        if a in at and b in at:
            (x1, y1), (x2, y2) = at[a], at[b]
            parts.append(
                f'<line x1="{x1 + _W}" y1="{y1 + _H / 2}" x2="{x2}" y2="{y2 + _H / 2}" '
                'stroke="#9aa5b1" stroke-width="1.2"/>'
            )
    for layer in LAYERS:
        for key, label, flag in c.nodes[layer]:
            x0, y0 = at[key]
            parts.append(
                f'<g class="steme-node" data-key="{html.escape(key)}"><title>{html.escape(key[2:])}'
                f'</title><rect x="{x0}" y="{y0}" width="{_W}" height="{_H}" rx="6" '
                f'fill="{_FILL[flag]}" stroke="{_STROKE[flag]}"/>'
                f'<text x="{x0 + 6}" y="{y0 + 19}">{html.escape(label)}</text></g>'
            )
        if c.more.get(layer):
            x = 5 + LAYERS.index(layer) * _COL
            y = _TOP + len(c.nodes[layer]) * _ROW + 14
            parts.append(f'<text x="{x + 6}" y="{y}" fill="#666">+{c.more[layer]} more</text>')
    parts.append("</svg>")
    return "".join(parts)
