"""The ``steme`` command line: a thin layer over the Python API.

Commands are kebab-case mirrors of the API; every command has ``--json``;
errors are one line and a non-zero exit code (``--debug`` for a traceback).
The lake comes from ``--lake`` or the ``STEME_LAKE`` environment variable.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from steme_lake._exceptions import StemeLakeError
from steme_lake.cli import _investigate_cmds, _lake_cmds, _server_cmds
from steme_lake.cli._common import lake_arg

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
    except KeyboardInterrupt:
        return 130
