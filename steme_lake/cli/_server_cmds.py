"""Commands for agents' interfaces: serve (HTTP), mcp, and keys (wallet and registry)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from steme_lake._exceptions import StemeLakeError
from steme_lake.cli._common import (
    lake_arg,
    lake_path,
    open_lake,
    passphrase,
    print_json,
    storage_options,
)

__all__ = ["register"]


def _serve(args: argparse.Namespace) -> int:
    from steme_lake._utils.extras import require

    uvicorn = require("uvicorn", extra="api", purpose="steme serve")
    require("fastapi", extra="api", purpose="steme serve")
    wait = _wait_ms(args.batch_wait_ms)
    path = serve_target(args)
    # The workers build their app from these (uvicorn starts them as fresh processes).
    os.environ["STEME_LAKE"] = str(path)
    if args.export_root:
        os.environ["STEME_EXPORT_ROOT"] = str(Path(args.export_root).resolve())
    os.environ["STEME_SERVE_OPTIONS"] = (
        f"{int(not args.no_auth)},{int(args.read_tokens)},{args.max_body_bytes},{wait}"
    )
    print(
        f"steme serve: lake {path} on http://{args.host}:{args.port} "
        f"(signatures {'off' if args.no_auth else 'required'}, "
        f"read tokens {'required' if args.read_tokens else 'off'}, batch wait {wait:g} ms, "
        f"{args.workers} worker(s)); "
        f"OpenAPI at /docs",
        file=sys.stderr,
    )
    uvicorn.run(
        "steme_lake.api._http:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        access_log=args.access_log,
    )
    return 0


def serve_target(args: argparse.Namespace) -> str | Path:
    """The lake a server opens: a local folder, or an object-storage URL whose settings
    (storage options, the WAL folder) the workers read from the environment."""
    from steme_lake.storage.objectstore import is_remote

    if not (args.lake and is_remote(args.lake)):
        return lake_path(args)
    if not args.wal or args.read_only or args.take_over:
        raise StemeLakeError(
            f"{args.lake}: a server writes (every question is audited): pass --wal DIR, the "
            "local folder of the lake's WAL, and not --read-only or --take-over (take over "
            "once with `steme status --take-over`, then serve)"
        )
    os.environ["STEME_STORAGE_OPTIONS"] = json.dumps(storage_options(args.storage_option))
    os.environ["STEME_WAL"] = str(Path(args.wal).resolve())
    with open_lake(args):  # the same checks the workers will make, before serving
        pass
    return str(args.lake)


def registry_root(args: argparse.Namespace) -> Path:
    """Where a lake's agent registry is: its folder, or on object storage its WAL folder."""
    from steme_lake.storage.objectstore import is_remote

    if args.lake and is_remote(args.lake):
        if not args.wal:
            raise StemeLakeError(
                f"{args.lake}: its agents are registered in its WAL folder: pass --wal DIR"
            )
        with open_lake(args) as lake:
            return Path(lake.path)
    return lake_path(args)


def _wait_ms(text: str) -> float:
    from steme_lake._exceptions import ValidationError
    from steme_lake.api._ops import check_batch_wait_ms

    try:
        value = float(text)
    except ValueError:
        raise ValidationError(
            f"--batch-wait-ms {text!r} is not a number of milliseconds (e.g. 1 or 0.5)"
        ) from None
    return check_batch_wait_ms(value, name="--batch-wait-ms")


def _mcp(args: argparse.Namespace) -> int:
    from steme_lake._utils.extras import require

    require("mcp", extra="api", purpose="steme mcp")
    from steme_lake.api import ServerOptions, create_mcp_server
    from steme_lake.keys import Wallet

    wallet = Wallet(args.wallet)
    key = None
    if args.agent in wallet.agents():
        key = wallet.unlock(args.agent, passphrase=passphrase())
    elif not args.no_auth:
        print(
            f"steme mcp: no wallet key for {args.agent!r}: reads work, writes will be refused "
            f"(create one with `steme keys create {args.agent} --lake {args.lake}`)",
            file=sys.stderr,
        )
    with open_lake(args) as lake:
        server = create_mcp_server(
            lake,
            args.agent,
            key=key,
            options=ServerOptions(
                require_signatures=not args.no_auth,
                export_root=str(Path(args.export_root).resolve()) if args.export_root else None,
            ),
        )
        if args.http:
            import uvicorn

            from steme_lake.api._mcp import mcp_http_app

            print(
                f"steme mcp: serving {args.agent!r} on http://{args.host}:{args.port}/mcp; "
                f"clients must send a read token of {args.agent!r} (`steme keys token "
                f"{args.agent}`)",
                file=sys.stderr,
            )
            uvicorn.run(mcp_http_app(server, lake, args.agent), host=args.host, port=args.port)
        else:
            server.run("stdio")
    return 0


def _keys_create(args: argparse.Namespace) -> int:
    from steme_lake.keys import AgentRegistry, Wallet

    wallet = Wallet(args.wallet)
    key = wallet.create(args.agent, passphrase=passphrase(confirm=True))
    token = None
    if args.lake:
        token = AgentRegistry(registry_root(args)).register(
            args.agent, key.public_key, token=args.token
        )
    out = {
        "agent": args.agent,
        "public_key": key.public_key,
        "wallet": str(wallet.path),
        "registered_in": str(args.lake) if args.lake else None,
        "token": token,
    }
    if args.json:
        print_json(out)
    else:
        print(f"agent {args.agent}: public key {key.public_key}")
        print(f"  stored encrypted in {wallet.path}")
        if args.lake:
            print(f"  registered in {args.lake}")
        else:
            print(
                f"  register it with: steme keys register {args.agent} {key.public_key} --lake PATH"
            )
        if token:
            print(f"  read token (shown once): {token}")
    return 0


def _keys_register(args: argparse.Namespace) -> int:
    from steme_lake.keys import AgentRegistry

    token = AgentRegistry(registry_root(args)).register(
        args.agent, args.public_key, token=args.token
    )
    if args.json:
        print_json({"agent": args.agent, "public_key": args.public_key, "token": token})
    else:
        print(f"registered {args.public_key[:16]}... for agent {args.agent}")
        if token:
            print(f"read token (shown once): {token}")
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    import polars as pl

    from steme_lake.keys import AgentRegistry, Wallet

    wallet = Wallet(args.wallet)
    held = set(wallet.agents())
    if args.lake:
        frame = (
            AgentRegistry(registry_root(args))
            .agents()
            .with_columns(pl.col("agent").is_in(sorted(held)).alias("in_wallet"))
        )
    else:
        frame = pl.DataFrame(
            {"agent": sorted(held), "public_key": [wallet.public_key(a) for a in sorted(held)]},
            schema={"agent": pl.String, "public_key": pl.String},
        )
    if args.json:
        print_json({"keys": frame})
    else:
        with pl.Config(tbl_rows=100, fmt_str_lengths=70, tbl_width_chars=200):
            print(frame)
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    from steme_lake.keys import AgentRegistry

    count = AgentRegistry(registry_root(args)).revoke(args.agent, args.public_key)
    if args.json:
        print_json({"agent": args.agent, "revoked": count})
    else:
        print(f"revoked {count} key(s) of {args.agent}")
    return 0


def _keys_token(args: argparse.Namespace) -> int:
    from steme_lake.keys import AgentRegistry

    token = AgentRegistry(registry_root(args)).new_token(args.agent)
    if args.json:
        print_json({"agent": args.agent, "token": token})
    else:
        print(token)
    return 0


def _keys_show(args: argparse.Namespace) -> int:
    from steme_lake.keys import Wallet

    key = Wallet(args.wallet).public_key(args.agent)
    if args.json:
        print_json({"agent": args.agent, "public_key": key})
    else:
        print(key)
    return 0


def register(commands: Any, command: Any) -> None:
    """Add serve, mcp and keys to the ``steme`` parser."""
    sv = command("serve", "serve the HTTP API (FastAPI + uvicorn)", _serve)
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=8750)
    sv.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes sharing the lake (each reads the others' writes: on 2 cores "
        "one process is faster today, see benchmarks/README.md)",
    )
    sv.add_argument(
        "--no-auth",
        dest="no_auth",
        action="store_true",
        help="accept unsigned writes (a single-user laptop only)",
    )
    sv.add_argument(
        "--read-tokens",
        dest="read_tokens",
        action="store_true",
        help="reads need 'Authorization: Bearer <token>' of a registered agent",
    )
    sv.add_argument("--max-body-bytes", dest="max_body_bytes", type=int, default=1 << 20)
    sv.add_argument(
        "--batch-wait-ms",
        dest="batch_wait_ms",
        default="1.0",
        help="under load, how long a batch may wait for the requests about to arrive, so "
        "that more share one fsync (0: never; a lone client never waits; default 1.0)",
    )
    sv.add_argument("--log-level", dest="log_level", default="warning")
    sv.add_argument(
        "--export-root", dest="export_root", help="the folder Dojo exports may be written to"
    )
    sv.add_argument("--access-log", dest="access_log", action="store_true")

    mc = command("mcp", "serve the MCP tools (stdio by default) as one agent", _mcp)
    mc.add_argument("--agent", required=True, help="the agent this server speaks for")
    mc.add_argument("--wallet", help="wallet folder holding the agent's key")
    mc.add_argument("--http", action="store_true", help="streamable HTTP instead of stdio")
    mc.add_argument("--host", default="127.0.0.1")
    mc.add_argument("--port", type=int, default=8751)
    mc.add_argument("--no-auth", dest="no_auth", action="store_true", help="write unsigned")
    mc.add_argument(
        "--export-root", dest="export_root", help="the folder Dojo exports may be written to"
    )

    keys = command("keys", "agent keys: the encrypted wallet and the lake's registry", None)
    sub = keys.add_subparsers(dest="keys_command", required=True, metavar="KEYS_COMMAND")

    def kc(name: str, help_text: str, run: Any, *, needs_lake: bool = False) -> Any:
        p = sub.add_parser(name, help=help_text, description=help_text)
        lake_arg(p)
        p.add_argument("--wallet", help="wallet folder (default: $STEME_WALLET or ~/.steme/wallet)")
        p.set_defaults(run=run)
        return p

    c = kc(
        "create",
        "generate an agent key, store it encrypted (and --lake: register it)",
        _keys_create,
    )
    c.add_argument("agent")
    c.add_argument("--token", action="store_true", help="also make a read token")
    r = kc("register", "register an agent's public key in a lake", _keys_register)
    r.add_argument("agent")
    r.add_argument("public_key")
    r.add_argument("--token", action="store_true", help="also make a read token")
    kc("list", "the lake's registered keys (--lake) or the wallet's keys", _keys_list)
    rv = kc("revoke", "revoke one key of an agent, or all its keys and its token", _keys_revoke)
    rv.add_argument("agent")
    rv.add_argument("public_key", nargs="?")
    t = kc("token", "make (or replace) an agent's read token", _keys_token)
    t.add_argument("agent")
    sh = kc("show", "an agent's public key from the wallet", _keys_show)
    sh.add_argument("agent")
