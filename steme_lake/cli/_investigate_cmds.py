"""Investigation commands: postmortem, trace, diff, blame, provenance, impact, timeline."""

from __future__ import annotations

import argparse
import json
from typing import Any

from steme_lake.cli._common import emit, lake_arg, open_lake

__all__ = ["register"]


def _postmortem(args: argparse.Namespace) -> int:
    from steme_lake.report import postmortem, postmortem_markdown

    with open_lake(args) as lake:
        report = postmortem(
            lake, subject=args.subject, at=args.at, agent=args.agent, window_hours=args.hours
        )
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(postmortem_markdown(report))
    return 0


def _trace(args: argparse.Namespace) -> int:
    with open_lake(args) as lake:
        frame = lake.trace(args.agent, args.since, args.until, subject=args.subject)
    return emit(args, {"trace": frame})


def _diff(args: argparse.Namespace) -> int:
    with open_lake(args) as lake:
        diff = lake.diff(
            args.since, args.until, subject=args.subject, lens=args.lens, lifecycle=args.lifecycle
        )
    return emit(args, {"beliefs": diff.beliefs, "records": diff.records})


def _blame(args: argparse.Namespace) -> int:
    with open_lake(args) as lake:
        blame = lake.blame(
            args.subject, args.predicate, as_of=args.as_of, lens=args.lens, lifecycle=args.lifecycle
        )
        return emit(
            args,
            {
                "answer": blame.answer.to_dict(),
                "assertion": blame.assertion,
                "lifecycle": blame.lifecycle,
                "votes": blame.votes,
            },
        )


def _provenance(args: argparse.Namespace) -> int:
    with open_lake(args) as lake:
        return emit(args, {"provenance": lake.provenance(args.query_id)})


def _impact(args: argparse.Namespace) -> int:
    with open_lake(args) as lake:
        impact = lake.impact(args.assertion, depth=args.depth, until=args.until)
    return emit(
        args,
        {
            "summary": impact.summary,
            "queries": impact.queries,
            "agents": impact.agents,
            "assertions": impact.assertions,
            "constraints": impact.constraints,
            "votes": impact.votes,
        },
    )


def _timeline(args: argparse.Namespace) -> int:
    with open_lake(args) as lake:
        frame = lake.timeline(
            args.subject, args.predicate, lens=args.lens, lifecycle=args.lifecycle,
            since=args.since, until=args.until, max_resolved=args.max_resolved,
        )  # fmt: skip
    return emit(args, {"timeline": frame})


def register(commands: Any, command: Any) -> None:
    """Add the investigation commands to the ``steme`` parser."""
    pm = commands.add_parser(
        "postmortem",
        help="the incident investigation as a Markdown report",
        description="What the agents believed about SUBJECT at AT, what they "
        "asked, where answers came from, what changed, what it touched.",
    )
    lake_arg(pm)
    pm.add_argument("--subject", required=True, help="a glob ('auth/*') or a path ('auth/jwt')")
    pm.add_argument("--at", required=True, help="when it broke: ISO-8601 or relative ('-6h')")
    pm.add_argument("--agent", help="the agent whose questions to trace (e.g. deploy-agent)")
    pm.add_argument("--hours", type=float, default=24.0, help="how far back to look (default 24)")
    pm.set_defaults(run=_postmortem)

    tr = command("trace", "an agent's queries and checks in a window, oldest first", _trace)
    tr.add_argument("agent")
    tr.add_argument("--since", required=True, help="ISO-8601 or relative ('-6h')")
    tr.add_argument("--until", help="default: now")
    tr.add_argument("--subject", help="a glob ('auth/*') or a path")
    df = command("diff", "what changed in a window: beliefs, then records", _diff)
    df.add_argument("--since", required=True)
    df.add_argument("--until")
    df.add_argument("--subject")
    df.add_argument("--lens", default="recency")
    df.add_argument("--lifecycle", help="a stage to filter beliefs by")
    bl = command("blame", "who and what put an answer there", _blame)
    bl.add_argument("subject")
    bl.add_argument("predicate")
    bl.add_argument("--as-of", dest="as_of")
    bl.add_argument("--lens", default="recency")
    bl.add_argument("--lifecycle")
    pv = command("provenance", "source -> agent -> assertion -> answer for one query", _provenance)
    pv.add_argument("query_id")
    im = command(
        "impact", "everything an assertion touched, and what that touched, levels down", _impact
    )
    im.add_argument("assertion")
    im.add_argument(
        "--depth",
        type=int,
        default=3,
        help="levels to follow (default 3; 1: what it touched directly)",
    )
    im.add_argument(
        "--until",
        help="only what happened up to then (e.g. the incident's end), not later questions",
    )
    tl = command(
        "timeline", "a belief over time, with the resolved answer after each event", _timeline
    )
    tl.add_argument("subject")
    tl.add_argument("predicate")
    tl.add_argument("--lens", default="recency")
    tl.add_argument("--lifecycle")
    tl.add_argument("--since", help="only events after this time (ISO-8601 or -6h)")
    tl.add_argument("--until", help="only events up to this time")
    tl.add_argument(
        "--max-resolved", dest="max_resolved", type=int,
        help="resolve the answer after at most N events, evenly spread (busy beliefs)",
    )  # fmt: skip
