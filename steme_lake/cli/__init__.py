"""The ``steme`` command line: a thin layer over the Python API.

Commands are kebab-case mirrors of the API; every command has ``--json``;
errors are one line and a non-zero exit code (``--debug`` for a traceback).
The lake comes from ``--lake`` or the ``STEME_LAKE`` environment variable.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import traceback
import warnings
from collections.abc import Sequence
from typing import Any, NoReturn

from steme_lake._exceptions import StemeLakeError
from steme_lake._vocabulary import SYNONYMS
from steme_lake.cli import (
    _dojo_cmds,
    _explore_cmds,
    _investigate_cmds,
    _lake_cmds,
    _server_cmds,
    _trust_cmds,
)
from steme_lake.cli._common import fill_help, lake_arg

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="steme", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, run: Any) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        lake_arg(sub)
        sub.set_defaults(run=run)
        return sub

    _lake_cmds.register(commands, command)
    _investigate_cmds.register(commands, command)
    _server_cmds.register(commands, command)
    _trust_cmds.register(commands, command)
    _dojo_cmds.register(commands, command)
    _explore_cmds.register(commands, command)
    fill_help(parser)
    return parser


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse, refusing an unknown option with the close match named (a typo must
    never be ignored, and ``--repiar`` should say ``--repair``)."""
    args, extras = parser.parse_known_args(argv)
    if extras:
        known: list[str] = []
        current: argparse.ArgumentParser | None = parser
        while current is not None:  # the parser and each subcommand chosen below it
            known += list(current._option_string_actions)
            chosen = None
            for action in current._actions:
                if isinstance(action, argparse._SubParsersAction):
                    chosen = action.choices.get(getattr(args, action.dest or "", None) or "")
            current = chosen
        hints = []
        for extra in extras:
            name = extra.split("=", 1)[0]
            if not name.startswith("--"):  # a value (-1h), or a short flag
                continue
            # the one vocabulary first (--window-from means --since), then spelling
            ours = SYNONYMS.get(name[2:].replace("-", "_"), "").replace("_", "-")
            close = [f"--{ours}"] if f"--{ours}" in known else []
            close = close or difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            if close:
                hints.append(f"{extra!r}: did you mean {close[0]!r}?")
        parser.error(
            f"unrecognized arguments: {' '.join(extras)}"
            + (f" ({'; '.join(hints)})" if hints else "")
        )
    return args


def run() -> NoReturn:
    """The ``steme`` command: `main`, then out of the process without tearing the
    interpreter down. Native thread pools (Arrow's) sometimes abort the teardown
    ("terminate called without an active exception", apache/arrow#34314), which
    would turn a command that succeeded, and said so, into exit -6. Everything a
    command writes is durable before it returns (the lake's own commits and
    closes), so only the output streams need flushing."""
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _note(message: Warning | str, *_: Any, **__: Any) -> None:
    print(f"note: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = _parse(parser, argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")  # shown once each, as notes
            warnings.showwarning = _note  # one line, not a file path and source line
            return int(args.run(args))
    except StemeLakeError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"steme: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
