"""``steme dojo``: training data from the command line (export, stats)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from steme_lake.cli._common import emit, engine_options, lake_arg, open_lake

__all__ = ["register"]


def _list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _floats(text: str) -> list[float]:
    try:
        return [float(part) for part in _list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, such as 0.8,0.1,0.1, got {text!r}"
        ) from None


def _params(args: argparse.Namespace) -> dict[str, Any]:
    """The filters and knobs given on the command line (the API's defaults otherwise)."""
    names = (
        "kinds",
        "since",
        "until",
        "subject",
        "as_of",
        "test_after",
        "fractions",
        "salt",
        "near",
        "holdout_days",
        "horizon_hours",
        "low_agreement",
        "show",
    )
    out = {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
    if args.exclude_source:
        out["exclude_sources"] = list(args.exclude_source)
    return out


def _export(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    with open_lake(args) as lake:
        bar = tqdm(total=None, desc="dojo export", unit=" rows", disable=None, file=sys.stderr)
        try:
            manifest = lake.dojo.export(
                args.out,
                overwrite=args.overwrite,
                openai=args.openai,
                shard_rows=args.shard_rows,
                license=args.license,
                name=args.name,
                progress=bar.update,
                engine=args.engine,
                address=args.ray_address,
                **_params(args),
            )
        finally:
            bar.close()

    from steme_lake.dojo._export import summary as summarise

    summary = summarise(manifest)
    samples = int(summary["samples"].sum())
    if args.json:
        return emit(args, {"out": str(args.out), "samples": samples, "summary": summary})
    print(f"wrote {samples} samples to {args.out} (README.md says what is in it)")
    return emit(args, {"summary": summary}) if samples else 0


def _stats(args: argparse.Namespace) -> int:
    with open_lake(args) as lake:
        return emit(args, {"stats": lake.dojo.stats(**_params(args))})


def register(commands: Any, command: Any) -> None:
    """Add ``steme dojo`` and its subcommands to the ``steme`` parser."""
    group = command("dojo", "the Dojo: incidents and corrections as training data", None)
    sub = group.add_subparsers(dest="dojo_command", required=True, metavar="DOJO_COMMAND")

    def dc(name: str, help_text: str, run: Any) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
        lake_arg(p)
        p.add_argument("--kinds", type=_list, help="sample kinds, comma-separated (all)")
        p.add_argument("--since", help="events from this time (ISO-8601 or -24h)")
        p.add_argument("--until", help="events up to this time")
        p.add_argument("--subject", help="a subject path or glob (auth/*)")
        p.add_argument("--as-of", dest="as_of", help="the lake as of this time (its last record)")
        p.add_argument("--test-after", dest="test_after", help="incidents from then on: test")
        p.add_argument("--fractions", type=_floats, help="train,validation,test (0.8,0.1,0.1)")
        p.add_argument("--salt", help="the split hash's salt (steme-dojo-v1)")
        p.add_argument("--near", type=float, help="MinHash Jaccard of near-duplicates (0.9)")
        p.add_argument(
            "--holdout-days",
            dest="holdout_days",
            type=float,
            help="days an approved answer must stay unsuperseded (7)",
        )
        p.add_argument(
            "--horizon-hours",
            dest="horizon_hours",
            type=float,
            help="hours after a contested answer a write counts as acting (24)",
        )
        p.add_argument(
            "--low-agreement",
            dest="low_agreement",
            type=float,
            help="consensus confidence under which it is contested (0.6)",
        )
        p.add_argument("--show", type=int, help="candidates listed in a prompt (12)")
        p.add_argument(
            "--exclude-source",
            dest="exclude_source",
            action="append",
            help="a source hash that must never appear (repeat)",
        )
        p.set_defaults(run=run)
        return p

    e = dc("export", "write the samples as Parquet (preference, unpaired, sft) + card", _export)
    e.add_argument("out", help="the export folder (new, or empty; --overwrite replaces)")
    e.add_argument("--overwrite", action="store_true", help="replace a non-empty folder")
    e.add_argument("--openai", action="store_true", help="also write OpenAI fine-tuning JSONL")
    e.add_argument(
        "--shard-rows",
        dest="shard_rows",
        type=int,
        default=100_000,
        help="rows per Parquet file (100000)",
    )
    e.add_argument("--license", default="other", help="the card's license (other)")
    e.add_argument("--name", help="the card's title")
    engine_options(e)
    dc("stats", "how many samples of each kind each split would get", _stats)
