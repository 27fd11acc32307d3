"""``steme trust``: the Gardener from the command line (run, scores, explain)."""

from __future__ import annotations

import argparse
import contextlib
import json
from typing import Any

from steme_lake._exceptions import ValidationError
from steme_lake.cli._common import emit, engine_options, lake_arg, open_lake

__all__ = ["register"]


def _options(args: argparse.Namespace) -> Any:
    from steme_lake.trust import TrustOptions

    changes: dict[str, Any] = {}
    if args.depth is not None:
        changes["depth"] = args.depth
    if args.seed:
        changes["seeds"] = tuple(args.seed)
    if getattr(args, "damping", None) is not None:
        changes["damping"] = args.damping
    return TrustOptions(**changes)


def _run(args: argparse.Namespace) -> int:
    with open_lake(args) as lake:
        scores = lake.trust.run(
            topics=args.topic or None,
            as_of=args.as_of,
            options=_options(args),
            store=not args.no_store,
            constraints=not args.no_store,
            warm=args.warm,
            engine=args.engine,
            address=args.ray_address,
        )
    if args.top:
        scores = scores.filter(scores["rank"] <= args.top)
    return emit(args, {"scores": scores.drop("pagerank", "discounted")})


def _scores(args: argparse.Namespace) -> int:
    with open_lake(args) as lake:
        scores = lake.trust.scores(topic=args.topic, as_of=args.as_of)
    if args.top:
        scores = scores.filter(scores["rank"] <= args.top)
    return emit(args, {"scores": scores.drop("method")})


def _explain(args: argparse.Namespace) -> int:
    with open_lake(args) as lake:
        why = lake.trust.explain(args.agent, args.topic, as_of=args.as_of, options=_options(args))
    return emit(args, {"explain": why})


def _garden(args: argparse.Namespace) -> int:
    import signal
    import sys
    import threading

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def report(scores: Any) -> None:
        topics = scores["topic"].n_unique() if scores.height else 0
        if args.json:
            print(json.dumps({"topics": topics, "scores": scores.height}), flush=True)
        else:
            print(f"ranked {scores.height} agent scores on {topics} topic(s)", flush=True)

    with open_lake(args) as lake:
        if not args.follow:
            report(
                lake.trust.run(options=_options(args), engine=args.engine, address=args.ray_address)
            )
            return 0
        if args.engine != "local":
            raise ValidationError(
                "--follow warm-starts each run from the last one in this process: it runs on "
                "the local engine; leave --engine out, or run without --follow on a schedule"
            )
        print(
            f"steme garden: following {lake.path} every {args.interval:g} s (Ctrl-C stops)",
            file=sys.stderr,
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends a follow cleanly
            lake.trust.follow(
                interval=args.interval, options=_options(args), stop=stop, on_run=report
            )
    return 0


def register(commands: Any, command: Any) -> None:
    """Add ``steme trust`` and its subcommands to the ``steme`` parser."""
    group = command("trust", "the Gardener: per-topic TrustRank of the agents", None)
    sub = group.add_subparsers(dest="trust_command", required=True, metavar="TRUST_COMMAND")

    def tc(name: str, help_text: str, run: Any) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
        lake_arg(p)
        p.add_argument("--as-of", dest="as_of", help="as of this time (ISO-8601 or -6h)")
        p.set_defaults(run=run)
        return p

    def graph_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--depth", type=int, help="topic = the first DEPTH subject parts (1)")
        p.add_argument(
            "--seed", action="append", help="a pre-trusted agent or prefix* (repeat; human*)"
        )

    r = tc("run", "rank every topic (or --topic) and store the scores that moved", _run)
    r.add_argument("--topic", action="append", help="a topic to rank (repeat; '' is global)")
    graph_options(r)
    r.add_argument("--damping", type=float, help="follow-an-edge probability (0.85)")
    r.add_argument("--no-store", dest="no_store", action="store_true", help="compute only")
    r.add_argument("--warm", action="store_true", help="start from the stored scores")
    r.add_argument("--top", type=int, help="show the first N of each topic")
    engine_options(r)

    s = tc("scores", "the stored scores, ranked per topic", _scores)
    s.add_argument("--topic", help="one topic")
    s.add_argument("--top", type=int, help="show the first N of each topic")

    g = command(
        "garden",
        "run the Gardener: rank every topic, store the scores and the constraints "
        "corrections call for; --follow keeps it running on new evidence",
        _garden,
    )
    g.add_argument("--follow", action="store_true", help="keep running; wake on new evidence")
    g.add_argument("--interval", type=float, default=2.0, help="seconds between checks (2)")
    graph_options(g)
    g.add_argument("--damping", type=float, help="follow-an-edge probability (0.85)")
    engine_options(g)

    e = tc(
        "explain", "why an agent has its score on a topic: the evidence, largest first", _explain
    )
    e.add_argument("agent")
    e.add_argument("--topic", required=True, help="the topic ('' for global)")
    graph_options(e)
