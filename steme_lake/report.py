"""The postmortem report: the incident investigation as Markdown (or a dict for JSON).

It answers the on-call questions for a subject pattern at the moment things
broke: what the agents believed, what an agent asked before, where the bad
answer came from, what changed in the 24 hours before, who put each changed
belief there, and what else it touched.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import polars as pl

from steme_lake._utils.timeparse import TimeLike, to_us, us_to_datetime, us_to_iso

__all__ = ["postmortem", "postmortem_markdown"]

_SUPERSEDE = 'lake.supersede("{}", agent="<you>", kind="invalidate", reason="...")'


def _rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return [
        {
            k: (v.isoformat().replace("+00:00", "Z") if hasattr(v, "isoformat") else v)
            for k, v in r.items()
        }
        for r in frame.iter_rows(named=True)
    ]


def postmortem(
    lake: Any, *, subject: str, at: TimeLike, agent: str | None = None, window_hours: float = 24.0
) -> dict[str, Any]:
    """The investigation of ``subject`` (a glob or a path) at time ``at``, as plain data."""
    t = to_us(at, name="at")
    since = us_to_datetime(t) - timedelta(hours=window_hours)
    until = us_to_datetime(t)
    beliefs = lake.snapshot(until, subject=subject).collect()
    approved = lake.snapshot(until, subject=subject, lifecycle="approved").collect()
    right = {(r["subject"], r["predicate"]): r["value"] for r in approved.iter_rows(named=True)}
    believed = [
        {**r, "approved_value": right.get((r["subject"], r["predicate"]))}
        for r in _rows(
            beliefs.select("subject", "predicate", "value", "lifecycle", "confidence", "assertion")
        )
    ]
    diff = lake.diff(since, until, subject=subject)
    out: dict[str, Any] = {
        "subject": subject,
        "at": us_to_iso(t),
        "window_start": us_to_iso(to_us(since)),
        "beliefs": believed,
        "changed": _rows(diff.beliefs),
        "records": _rows(diff.records.drop("target")),
        "asked": [],
        "provenance": [],
        "blame": [],
        "impact": [],
    }
    if not believed and diff.beliefs.is_empty() and diff.records.is_empty():
        out["note"] = _nothing_matched(lake, subject, us_to_iso(t))
    if agent is not None:
        trace = lake.trace(agent, since, until)
        out["asked"] = _rows(trace.drop("contributing"))
        if trace.height:
            last = trace.filter(pl.col("op") == "query").tail(1)
            if last.height:
                out["provenance"] = _rows(lake.provenance(last["query_id"][0]))
    for change in diff.beliefs.iter_rows(named=True):
        winner = change["after_assertion"]
        if winner is None:
            continue
        blame = lake.blame(change["subject"], change["predicate"], as_of=until)
        a = blame.assertion.row(0, named=True) if blame.assertion.height else {}
        out["blame"].append(
            {
                "subject": change["subject"],
                "predicate": change["predicate"],
                "value": change["after"],
                "assertion": winner,
                "agent": a.get("agent"),
                "source_hash": a.get("source_hash"),
                "lifecycle": a.get("lifecycle"),
                "recorded_at": us_to_iso(to_us(a["recorded_at"])) if a else None,
            }
        )
        impact = lake.impact(winner, until=at)  # not the investigators' questions
        out["impact"].append(
            {
                "assertion": winner,
                **{r["kind"]: r["count"] for r in impact.summary.iter_rows(named=True)},
                "queries won directly": int(
                    impact.queries.filter(pl.col("won"), pl.col("depth") == 1).height
                ),
                "queries further down": int(impact.queries.filter(pl.col("depth") > 1).height),
                "agents": impact.agents["asked_by"].to_list(),
                "derived": [
                    f"{r['subject']} {r['predicate']} = {r['object']}"
                    for r in impact.assertions.iter_rows(named=True)
                ],
            }
        )
    return out


def _md_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    if not rows:
        return "_none_\n"

    def cell(v: Any) -> str:
        text = "" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))
        return text.replace("|", "\\|")[:80]

    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    return head + "".join("| " + " | ".join(cell(r.get(c)) for c in columns) + " |\n" for r in rows)


def _nothing_matched(lake: Any, subject: str, at: str) -> str:
    """What was searched, and the subjects that exist close to it (a typo at 3 a.m.)."""
    import difflib

    known = lake.assertions.select(pl.col("subject").unique()).collect()["subject"].to_list()
    stem = subject.rstrip("*/?").rstrip("/") or subject
    tops = sorted({s.split("/")[0] for s in known})
    close = difflib.get_close_matches(stem, known, n=5, cutoff=0.5)
    close += [t + "/*" for t in difflib.get_close_matches(stem.split("/")[0], tops, n=3)]
    hint = f"; subjects close to it: {', '.join(dict.fromkeys(close))}" if close else ""
    return f"nothing matched subject {subject!r} as of {at} (or in the window before){hint}"


def postmortem_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown a person can paste into an incident document."""
    lines = [
        f"# Postmortem: `{report['subject']}` at {report['at']}\n",
        *([f"> {report['note']}\n"] if report.get("note") else []),
        "## What the agents believed at that moment\n",
        "Resolved with the recency lens and no lifecycle filter (what an unfiltered question got), "
        "next to the answer restricted to approved decisions.\n",
        _md_table(
            report["beliefs"],
            ["subject", "predicate", "value", "lifecycle", "confidence", "approved_value"],
        ),
    ]
    mismatched = [
        b
        for b in report["beliefs"]
        if b["approved_value"] is not None and b["approved_value"] != b["value"]
    ]
    for b in mismatched:
        lines.append(
            f"> **{b['subject']} {b['predicate']}** resolved to {b['value']} ({b['lifecycle']}) "
            f"while the approved decision is {b['approved_value']}.\n"
        )
    if report["asked"]:
        lines += [
            "\n## What the agent asked before\n",
            _md_table(
                report["asked"],
                [
                    "recorded_at",
                    "op",
                    "subject",
                    "predicate",
                    "lens",
                    "lifecycle_filter",
                    "value",
                    "confidence",
                ],
            ),
        ]
        unfiltered = [
            q for q in report["asked"] if q["op"] == "query" and q["lifecycle_filter"] is None
        ]
        if unfiltered:
            lines.append(
                f"> {len(unfiltered)} of these queries had **no lifecycle filter**: "
                "proposals could be returned as if they were decisions.\n"
            )
    if report["provenance"]:
        lines += [
            "\n## Where the last answer came from (source -> agent -> assertion -> answer)\n",
            _md_table(
                report["provenance"],
                ["won", "source_hash", "agent", "value", "lifecycle_at_query", "recorded_at"],
            ),
        ]
    lines += [
        f"\n## What changed since {report['window_start']}\n",
        _md_table(
            report["changed"],
            ["subject", "predicate", "before", "after", "cause_agent", "changed_at"],
        ),
        "\nRecords written in the window:\n",
        _md_table(report["records"], ["recorded_at", "table", "agent", "subject", "summary"]),
    ]
    if report["blame"]:
        lines += [
            "\n## Who put the changed beliefs there\n",
            _md_table(
                report["blame"],
                [
                    "subject",
                    "predicate",
                    "value",
                    "agent",
                    "lifecycle",
                    "recorded_at",
                    "source_hash",
                ],
            ),
        ]
    if report["impact"]:
        lines += [
            "\n## What else those assertions touched\n",
            _md_table(
                report["impact"],
                [
                    "assertion",
                    "queries",
                    "queries won",
                    "queries further down",
                    "agents",
                    "derived assertions",
                    "derived",
                ],
            ),
        ]
        lines += [
            "\n## Remediation\n",
            "Mark a bad assertion incorrect (history is kept; only later answers change):\n",
            "```python\n"
            + "\n".join(_SUPERSEDE.format(i["assertion"]) for i in report["impact"])
            + "\n```\n",
            "Then store a negative constraint so a pre-flight check catches it next time "
            "(`lake.add_constraint(context, forbidden=..., must_use=..., reason=...)`).\n",
        ]
    return "\n".join(lines)
