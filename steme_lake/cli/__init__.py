"""The ``steme`` command line: a thin layer over the Python API.

Commands are kebab-case mirrors of the API; every command has ``--json``;
errors are one line and a non-zero exit code (``--debug`` for a traceback).
The lake comes from ``--lake`` or the ``STEME_LAKE`` environment variable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from steme_lake._exceptions import StemeLakeError

__all__ = ["main"]


def _lake_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lake",
        default=os.environ.get("STEME_LAKE"),
        help="the lake folder (default: $STEME_LAKE)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def _open(args: argparse.Namespace) -> Any:
    import steme_lake as sl

    if not args.lake:
        raise StemeLakeError("no lake given: pass --lake PATH or set STEME_LAKE")
    if not (Path(args.lake) / "steme_lake.json").exists():
        raise StemeLakeError(f"{args.lake} is not a steme_lake (no steme_lake.json); check --lake")
    return sl.open(args.lake)


def _postmortem(args: argparse.Namespace) -> int:
    from steme_lake.report import postmortem, postmortem_markdown

    with _open(args) as lake:
        report = postmortem(
            lake, subject=args.subject, at=args.at, agent=args.agent, window_hours=args.hours
        )
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(postmortem_markdown(report))
    return 0


def _emit(args: argparse.Namespace, frames: dict[str, Any]) -> int:
    """Print frames as readable tables, or all of them as one JSON object."""
    import polars as pl

    if args.json:
        out = {
            name: (f.to_dicts() if isinstance(f, pl.DataFrame) else f) for name, f in frames.items()
        }
        print(json.dumps(out, indent=2, default=str))
        return 0
    with pl.Config(tbl_rows=50, tbl_cols=-1, fmt_str_lengths=40, tbl_width_chars=220):
        for name, frame in frames.items():
            print(f"{name}:")
            print(frame if isinstance(frame, pl.DataFrame) else json.dumps(frame, default=str))
            print()
    return 0


def _trace(args: argparse.Namespace) -> int:
    with _open(args) as lake:
        frame = lake.trace(args.agent, args.since, args.until, subject=args.subject)
    return _emit(args, {"trace": frame})


def _diff(args: argparse.Namespace) -> int:
    with _open(args) as lake:
        diff = lake.diff(
            args.since, args.until, subject=args.subject, lens=args.lens, lifecycle=args.lifecycle
        )
    return _emit(args, {"beliefs": diff.beliefs, "records": diff.records})


def _blame(args: argparse.Namespace) -> int:
    with _open(args) as lake:
        blame = lake.blame(
            args.subject, args.predicate, as_of=args.as_of, lens=args.lens, lifecycle=args.lifecycle
        )
    return _emit(
        args,
        {
            "answer": blame.answer.to_dict(),
            "assertion": blame.assertion,
            "lifecycle": blame.lifecycle,
            "votes": blame.votes,
        },
    )


def _provenance(args: argparse.Namespace) -> int:
    with _open(args) as lake:
        return _emit(args, {"provenance": lake.provenance(args.query_id)})


def _impact(args: argparse.Namespace) -> int:
    with _open(args) as lake:
        impact = lake.impact(args.assertion)
    return _emit(
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
    with _open(args) as lake:
        frame = lake.timeline(
            args.subject, args.predicate, lens=args.lens, lifecycle=args.lifecycle
        )
    return _emit(args, {"timeline": frame})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="steme", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    pm = commands.add_parser(
        "postmortem",
        help="the incident investigation as a Markdown report",
        description="What the agents believed about SUBJECT at AT, what they "
        "asked, where answers came from, what changed, what it touched.",
    )
    _lake_arg(pm)
    pm.add_argument("--subject", required=True, help="a glob ('auth/*') or a path ('auth/jwt')")
    pm.add_argument("--at", required=True, help="when it broke: ISO-8601 or relative ('-6h')")
    pm.add_argument("--agent", help="the agent whose questions to trace (e.g. deploy-agent)")
    pm.add_argument("--hours", type=float, default=24.0, help="how far back to look (default 24)")
    pm.set_defaults(run=_postmortem)

    def command(name: str, help_text: str, run: Any) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        _lake_arg(sub)
        sub.set_defaults(run=run)
        return sub

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
    im = command("impact", "everything an assertion touched", _impact)
    im.add_argument("assertion")
    tl = command(
        "timeline", "a belief over time, with the resolved answer after each event", _timeline
    )
    tl.add_argument("subject")
    tl.add_argument("predicate")
    tl.add_argument("--lens", default="recency")
    tl.add_argument("--lifecycle")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except StemeLakeError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"steme: error: {exc}", file=sys.stderr)
        return 2
