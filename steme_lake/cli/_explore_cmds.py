"""``steme explore``: the explorer (`steme_lake.widgets.Explorer`) as a web app.

Writes a one-cell notebook that opens the lake in the explorer and serves it
with Voila on ``--host``/``--port`` (127.0.0.1 by default); the page runs its
own kernel, and everything it shows comes from the lake's API.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from steme_lake._exceptions import ValidationError
from steme_lake.cli._common import lake_path, print_json

__all__ = ["register"]


def _notebook(lake: Path, opening: dict[str, Any]) -> dict[str, Any]:
    source = (
        "import steme_lake as sl\n"
        f"lake = sl.open({str(lake.resolve())!r})\n"
        f"lake.explore(**{opening!r})"
    )
    return {
        "cells": [{"cell_type": "code", "execution_count": None, "id": "explore",
                   "metadata": {}, "outputs": [], "source": source}],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                    "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5,
    }  # fmt: skip


def _explore(args: argparse.Namespace) -> int:
    from steme_lake._utils.extras import require
    from steme_lake.widgets import Explorer

    require("voila", extra="notebooks", purpose="steme explore")
    path = lake_path(args)
    opening = {
        k: v
        for k, v in {
            "subject": args.subject, "predicate": args.predicate, "as_of": args.as_of,
            "lens": args.lens, "lifecycle": args.lifecycle, "agent": args.agent,
            "actor": args.actor,
        }.items()
        if v is not None
    }  # fmt: skip
    if not 0 < args.port < 65536:
        raise ValidationError(f"--port must be 1 to 65535, got {args.port}")
    import steme_lake as sl

    with sl.open(path) as lake:  # the same checks as the page will make, before serving
        Explorer(lake, **opening)
    url = f"http://{args.host}:{args.port}/"
    with tempfile.TemporaryDirectory(prefix="steme-explore-") as tmp:
        notebook = Path(tmp) / "explorer.ipynb"
        notebook.write_text(json.dumps(_notebook(path, opening)))
        if args.json:
            print_json({"url": url, "lake": str(path), "opening": opening})
        else:
            print(f"steme explore: the explorer on {path} at {url} (Ctrl-C stops it)")
        sys.stdout.flush()
        command = [sys.executable, "-m", "voila", str(notebook), "--no-browser",
                   f"--port={args.port}", f"--Voila.ip={args.host}"]  # fmt: skip
        server = subprocess.Popen(command, cwd=tmp)

        def stop(signum: int, _: Any) -> None:  # never leave Voila (and its kernel) behind
            server.send_signal(signum)

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            return 0 if server.wait() in (0, -signal.SIGTERM, -signal.SIGINT) else 1
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if server.poll() is None:
                server.kill()


def register(commands: Any, command: Any) -> None:
    """Add ``explore`` to the ``steme`` parser."""
    ex = command("explore", "the explorer as a web app (Voila) on the lake", _explore)
    ex.add_argument("--subject", help="a path or a glob to open on (e.g. auth/jwt)")
    ex.add_argument("--predicate", help="the belief's predicate (e.g. signing_algorithm)")
    ex.add_argument("--as-of", dest="as_of", help="the time to open on (ISO-8601 or -6h)")
    ex.add_argument("--lens", help="recency (default), consensus, authority or skeptic")
    ex.add_argument("--lifecycle", help="a stage to filter the belief by (e.g. approved)")
    ex.add_argument("--agent", help="the agent whose questions 'Who asked' lists")
    ex.add_argument("--actor", help="the name the actions are written under (human-<login>)")
    ex.add_argument("--host", default="127.0.0.1")
    ex.add_argument("--port", type=int, default=8752)
