"""Helpers shared by the CLI commands: the lake argument, opening, printing."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from steme_lake._exceptions import KeyStoreError, StemeLakeError

__all__ = [
    "emit",
    "engine_options",
    "lake_arg",
    "open_lake",
    "parse_value",
    "passphrase",
    "print_json",
    "storage_options",
]


# What each parameter means, the same on every command (and in Python, HTTP and MCP);
# `fill_help` gives it to every option and argument that has no help of its own.
HELP = {
    "subject": "a subject: a canonical path such as auth/jwt",
    "--subject": "a subject path or glob (auth/*; * crosses /)",
    "predicate": "the predicate, such as signing_algorithm",
    "--predicate": "only this predicate",
    "context": "the subject about to be acted on (its constraints and its parents')",
    "agent": "the agent's name",
    "public_key": "the agent's ed25519 public key (64 hex)",
    "hash": "the assertion's id (64 hex)",
    "assertion": "the assertion's id (64 hex)",
    "query_id": "the query's id (64 hex), from an answer or a trace",
    "file": "the file to import",
    "--confidence": "how sure the agent is, 0..1",
    "--lifecycle": "a lifecycle stage (proposed, under_review, approved, deprecated, archived)",
    "--weight": "the vote's weight: > 0 for, < 0 against",
    "--reason": "why, in a sentence (kept with the record)",
    "--target-agent": "supersede every assertion of this agent (in the window)",
    "--replacement": "the assertion that replaces it (64 hex)",
    "--as-of": "as of this time (ISO-8601 or relative, e.g. -6h; default: now)",
    "--lens": "how to weigh the candidates (recency, consensus, authority, skeptic, constraints)",
    "--min-confidence": "leave out candidates below this effective confidence, 0..1",
    "--include-superseded": "also weigh superseded assertions",
    "--format": "the file's format",
    "--since": "from this time (ISO-8601 or relative, e.g. -6h; relative needs --since=-6h)",
    "--until": "up to this time (default: now)",
    "--compact": "also merge small Parquet files per partition and write missing key indexes",
    "--host": "the address to listen on (default 127.0.0.1: this machine only)",
    "--port": "the port to listen on",
    "--max-body-bytes": "refuse requests with a larger body (413)",
    "--log-level": "the server's log level (debug, info, warning, error)",
    "--access-log": "log every request",
}


def fill_help(parser: argparse.ArgumentParser) -> None:
    """Give every option and argument without help its meaning from `HELP`."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                fill_help(sub)
        elif not action.help and not isinstance(action, argparse._HelpAction):
            for name in [*action.option_strings, action.dest]:
                if name in HELP:
                    action.help = HELP[name]
                    break


def lake_arg(parser: argparse.ArgumentParser, *, lake: bool = True) -> None:
    if lake:
        parser.add_argument(
            "--lake",
            default=os.environ.get("STEME_LAKE"),
            help="the lake folder, or s3://bucket/prefix (default: $STEME_LAKE)",
        )
        remote = parser.add_argument_group("a lake on object storage (s3://bucket/prefix)")
        remote.add_argument(
            "--storage-option",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="an fsspec storage option, repeatable: endpoint_url=http://127.0.0.1:8333, "
            "key=KEY, secret=SECRET (a VALUE that is JSON is read as JSON; AWS_* variables work "
            "too)",
        )
        remote.add_argument(
            "--wal",
            default=os.environ.get("STEME_WAL"),
            metavar="DIR",
            help="the local folder for its WAL, locks and cache (default: $STEME_WAL); "
            "a writer needs one",
        )
        remote.add_argument(
            "--read-only", action="store_true", help="read with only the bucket (no WAL)"
        )
        remote.add_argument(
            "--take-over",
            action="store_true",
            help="become its writer although another WAL folder was",
        )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument(
        "--wide", action="store_true", help="tables with full ids, wider than the terminal"
    )
    # also after the command (steme status --debug), not only before it
    parser.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
    )


def lake_path(args: argparse.Namespace) -> Path:
    """A local lake's folder (the commands that need one: serve, mcp, keys, doctor)."""
    from steme_lake.storage.objectstore import is_remote

    if not args.lake:
        raise StemeLakeError("no lake given: pass --lake PATH or set STEME_LAKE")
    if is_remote(args.lake):
        raise StemeLakeError(
            f"{args.lake}: this command works on a local lake folder; on object storage "
            "use the Python API (steme_lake.open(url, storage_options=OPTIONS, wal=DIR)) or "
            "the commands that open a lake (status, snapshot, diff, blame, trace, impact)"
        )
    path = Path(args.lake)
    if not (path / "steme_lake.json").exists():
        raise StemeLakeError(
            f"{args.lake} is not a steme_lake (no steme_lake.json); check --lake, "
            f"or create one with `steme init {args.lake}`"
        )
    return path


def open_lake(args: argparse.Namespace) -> Any:
    import steme_lake as sl
    from steme_lake.storage.objectstore import is_remote

    if args.lake and is_remote(args.lake):
        return sl.open(
            args.lake,
            storage_options=storage_options(args.storage_option),
            wal=args.wal,
            read_only=args.read_only,
            take_over=args.take_over,
        )
    given = [
        flag
        for flag, value in (
            ("--storage-option", args.storage_option),
            ("--read-only", args.read_only),
            ("--take-over", args.take_over),
        )
        if value
    ]
    if given:
        raise StemeLakeError(
            f"{' and '.join(given)}: for a lake on object storage (--lake s3://bucket/prefix); "
            "a local lake keeps its WAL in its own folder"
        )
    return sl.open(lake_path(args))


def storage_options(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs as fsspec storage options (a JSON VALUE is read as JSON).

    >>> storage_options(["endpoint_url=http://127.0.0.1:8333", "anon=true"])
    {'endpoint_url': 'http://127.0.0.1:8333', 'anon': True}
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise StemeLakeError(
                f"--storage-option {pair!r} is not KEY=VALUE (e.g. "
                "endpoint_url=http://127.0.0.1:8333)"
            )
        out[key.strip()] = parse_value(text, as_string=False)
    return out


def print_json(value: Any) -> None:
    from steme_lake.api._ops import jsonable

    print(json.dumps(jsonable(value), indent=2, default=str))


def emit(args: argparse.Namespace, frames: dict[str, Any]) -> int:
    """Print frames as readable tables, or all of them as one JSON object.

    Tables fit the terminal: no shape or type rows, 64-hex ids and hashes shown
    by their first 12 characters (``--wide``: everything, full width)."""
    import polars as pl

    if args.json:
        print_json(frames)
        return 0
    wide = bool(getattr(args, "wide", False))
    width = shutil.get_terminal_size((120, 24)).columns
    with pl.Config(
        tbl_rows=50,
        tbl_cols=-1,
        fmt_str_lengths=1000 if wide else 40,
        tbl_width_chars=60_000 if wide else width,  # (Polars takes a u16)
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
        tbl_hide_dtype_separator=True,
    ):
        for name, frame in frames.items():
            print(f"{name}:")
            if isinstance(frame, pl.DataFrame):
                if wide:
                    print(frame)
                else:
                    shown, hidden = _fit(_short_ids(frame), width)
                    print(shown)
                    if hidden:
                        print(f"({hidden} more columns: --wide shows them, --json all of it)")
            else:
                print(json.dumps(frame, default=str))
            print()
    return 0


def _fit(frame: Any, width: int) -> tuple[Any, int]:
    """The first columns that fit ``width`` characters, and how many were left out."""
    total = 1
    keep: list[str] = []
    for name in frame.columns:
        if frame.height and frame[name].null_count() == frame.height:
            continue  # nothing to show (a filter not given, say)
        cells = [len(str(v)) for v in frame[name].head(50).to_list()]
        need = min(max([len(name), *cells]), 40) + 3
        if keep and total + need > width:
            break
        keep.append(name)
        total += need
    return frame.select(keep), frame.width - len(keep)


def _short_ids(frame: Any) -> Any:
    """Ids and hashes (64 hex characters) as their first 12, like git's short hashes."""
    import polars as pl

    hexes = r"^[0-9a-f]{64}$"

    def shorter(e: pl.Expr) -> pl.Expr:
        return pl.when(e.str.contains(hexes)).then(e.str.slice(0, 12) + "…").otherwise(e)

    short = [
        (
            shorter(pl.col(name))
            if dtype == pl.String
            else pl.col(name).list.eval(shorter(pl.element()))
        ).alias(name)
        for name, dtype in frame.schema.items()
        if dtype == pl.String or dtype == pl.List(pl.String)
    ]
    return frame.with_columns(short) if short else frame


def parse_value(text: str, *, as_string: bool) -> Any:
    """A JSON value from the command line; plain words are strings (ES256, RS256)."""
    if as_string:
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def passphrase(*, confirm: bool = False) -> str:
    """The wallet passphrase: $STEME_WALLET_PASSPHRASE, or asked on the terminal."""
    from steme_lake.keys import PASSPHRASE_ENV

    value = os.environ.get(PASSPHRASE_ENV)
    if value:
        return value
    if not sys.stdin.isatty():
        raise KeyStoreError(f"set ${PASSPHRASE_ENV} (no terminal to ask for the passphrase)")
    value = getpass.getpass("wallet passphrase: ")
    if confirm and getpass.getpass("again: ") != value:
        raise KeyStoreError("the passphrases differ")
    if not value:
        raise KeyStoreError("an empty passphrase protects nothing; choose one")
    return value


def engine_options(p: argparse.ArgumentParser) -> None:
    """``--engine`` and ``--ray-address``, for the batch jobs (TrustRank, the Dojo export)."""
    from steme_lake.engine._engines import ENGINES

    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="local",
        help="where the job runs: this process (local) or a Ray cluster (ray)",
    )
    p.add_argument(
        "--ray-address",
        dest="ray_address",
        help="the Ray cluster for --engine ray (host:port; default: $RAY_ADDRESS)",
    )
