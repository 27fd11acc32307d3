"""Commands over the lake itself: init, writes, questions, import/export, flush, status."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from steme_lake._exceptions import StemeLakeError, ValidationError
from steme_lake._utils.progress import Bars
from steme_lake.cli._common import (
    emit,
    lake_arg,
    lake_path,
    open_lake,
    parse_value,
    passphrase,
    print_json,
)

__all__ = ["register"]

EXPORT_FORMATS = ("parquet", "csv", "jsonl")


def _signer(args: argparse.Namespace) -> list[Any] | None:
    if not args.sign:
        return None
    from steme_lake.keys import Wallet

    return [Wallet(args.wallet).unlock(args.agent, passphrase=passphrase())]


def _written(args: argparse.Namespace, kind: str, rid: str) -> int:
    if args.json:
        print_json({"hash": rid, "kind": kind, "success": True})
    else:
        print(f"{kind} {rid}")
    return 0


def _init(args: argparse.Namespace) -> int:
    import steme_lake as sl

    path = Path(args.path)
    existed = (path / "steme_lake.json").exists()
    with sl.open(path) as lake:
        status = lake.status()
    if args.json:
        print_json({"path": status.path, "created": not existed})
    else:
        print(f"{'opened existing' if existed else 'created'} lake {status.path}")
    return 0


def _assert(args: argparse.Namespace) -> int:
    meta = None if args.meta is None else _json_arg("--meta", args.meta)
    with open_lake(args) as lake:
        rid = lake.assert_(
            args.subject,
            args.predicate,
            parse_value(args.value, as_string=args.string),
            agent=args.agent,
            confidence=args.confidence,
            lifecycle=args.lifecycle,
            source=args.source,
            source_hash=args.source_hash,
            parent=args.parent,
            meta=meta,
            sign_with=_signer(args),
        )
    return _written(args, "assertion", rid)


def _json_arg(name: str, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValidationError(f"{name} must be JSON ({exc})") from None


def _vote(args: argparse.Namespace) -> int:
    with open_lake(args) as lake:
        rid = lake.vote(args.hash, agent=args.agent, weight=args.weight, sign_with=_signer(args))
    return _written(args, "vote", rid)


def _lifecycle(args: argparse.Namespace) -> int:
    with open_lake(args) as lake:
        rid = lake.set_lifecycle(
            args.hash, args.stage, agent=args.agent, reason=args.reason, sign_with=_signer(args)
        )
    return _written(args, "lifecycle change", rid)


def _supersede(args: argparse.Namespace) -> int:
    window = None
    if args.since or args.until:
        window = (args.since, args.until)
    with open_lake(args) as lake:
        rid = lake.supersede(
            args.hash,
            agent=args.agent,
            kind=args.kind,
            reason=args.reason,
            source_hash=args.source_hash,
            target_agent=args.target_agent,
            window=window,
            replacement=args.replacement,
            sign_with=_signer(args),
        )
    return _written(args, "supersession", rid)


def _constrain(args: argparse.Namespace) -> int:
    if args.forbidden is None and args.must_use is None:
        raise ValidationError("a constraint needs --forbidden VALUE, --must-use VALUE or both")
    with open_lake(args) as lake:
        rid = lake.add_constraint(
            args.context,
            agent=args.agent,
            reason=args.reason,
            forbidden=None
            if args.forbidden is None
            else parse_value(args.forbidden, as_string=False),
            must_use=None if args.must_use is None else parse_value(args.must_use, as_string=False),
            predicate=args.predicate,
            cites=args.cites,
            sign_with=_signer(args),
        )
    return _written(args, "constraint", rid)


def _check(args: argparse.Namespace) -> int:
    kwargs: dict[str, Any] = {"predicate": args.predicate, "as_of": args.as_of}
    if args.proposed is not None:
        kwargs["proposed"] = parse_value(args.proposed, as_string=False)
    with open_lake(args) as lake:
        check = lake.check_constraints(args.context, agent=args.agent, **kwargs)
    if args.json:
        print_json(check.to_dict())
        return 0 if check.ok else 1
    verdict = "ok" if check.ok else f"{len(check.violations)} VIOLATION(S)"
    print(f"constraints for {check.context}: {len(check.constraints)} in force, {verdict}")
    bad = {c.id for c in check.violations}
    for c in check.constraints:
        mark = "✗" if c.id in bad else " "
        print(
            f" {mark} {c.context}: forbidden={c.forbidden!r} must_use={c.must_use!r} "
            f"({c.reason}; by {c.agent})"
        )
    print(f"query_id {check.query_id}")
    return 0 if check.ok else 1


def _query(args: argparse.Namespace) -> int:
    with open_lake(args) as lake:
        answer = lake.query(
            args.subject,
            args.predicate,
            agent=args.agent,
            lens=args.lens,
            lifecycle=args.lifecycle,
            min_confidence=args.min_confidence,
            as_of=args.as_of,
            include_superseded=args.include_superseded,
        )
    if args.json:
        print_json(answer.to_dict())
        return 0
    conf = "-" if answer.confidence is None else f"{answer.confidence:.3f}"
    print(f"{answer.subject} {answer.predicate} = {json.dumps(answer.value)}")
    print(
        f"  status {answer.status}, lens {answer.lens}, confidence {conf}, "
        f"lifecycle {answer.lifecycle}"
    )
    print(f"  assertion {answer.assertion}")
    print(f"  {len(answer.candidates)} candidate(s); query_id {answer.query_id}")
    return 0


def _search(args: argparse.Namespace) -> int:
    with open_lake(args) as lake:
        found = lake.vectors.search(
            args.text, k=args.k, as_of=args.as_of, lifecycle=args.lifecycle,
            subject=args.subject, min_confidence=args.min_confidence,
            include_superseded=args.include_superseded, hybrid=args.hybrid,
            agent=args.agent,
        )  # fmt: skip
    query_id = found["query_id"][0] if found.height else None
    shown = found.select(
        "score", "subject", "predicate", "value", "lifecycle", "superseded", "agent",
        "recorded_at", "id",
    )  # fmt: skip
    if not args.json and found.is_empty():
        print(f"nothing matched {args.text!r} with these filters (the search is audited)")
        return 0
    return emit(args, {"results": shown, "query_id": query_id} if args.json else {"results": shown})


def _import(args: argparse.Namespace) -> int:
    with open_lake(args) as lake, Bars("import", quiet=args.json) as bars:
        if args.format == "events":
            counts = lake.import_events(args.file, progress=bars)
        elif args.format == "snap-signed":
            if not args.topic:
                raise StemeLakeError("--format snap-signed needs --topic (e.g. bitcoin-otc)")
            counts = lake.trust.import_ratings(args.file, topic=args.topic)
        else:
            from steme_lake.io.climate_fever import climate_fever_events

            lines = list(climate_fever_events(args.file, limit=args.limit))
            counts = lake.import_events(lines, progress=bars)
    if args.json:
        print_json(counts)
    else:
        print(", ".join(f"{n} {op}" for op, n in counts.items()) or "nothing imported")
    return 0


def _json_cell(value: Any) -> str:
    """A nested cell as JSON (Polars hands list cells over as Series)."""
    import polars as pl

    if isinstance(value, pl.Series):
        value = value.to_list()
    return json.dumps(value, default=str, ensure_ascii=False)


def _export(args: argparse.Namespace) -> int:
    import polars as pl

    from steme_lake._utils.timeparse import to_us, us_to_datetime

    def as_of_datetime(text: str, name: str) -> Any:
        return us_to_datetime(to_us(text, name=name))

    fmt = args.format or Path(args.out).suffix.lstrip(".") or "parquet"
    if fmt not in EXPORT_FORMATS:
        raise ValidationError(f"--format must be one of {EXPORT_FORMATS}, got {fmt!r}")
    with open_lake(args) as lake:
        frame = lake.table(args.table)
        if args.since:
            frame = frame.filter(pl.col("recorded_at") > as_of_datetime(args.since, "since"))
        if args.until:
            frame = frame.filter(pl.col("recorded_at") <= as_of_datetime(args.until, "until"))
        data = frame.collect()
    out = Path(args.out)
    tmp = out.with_name(out.name + ".partial")
    try:
        if fmt == "parquet":
            data.write_parquet(tmp)
        elif fmt == "csv":  # CSV has no nested values: lists and structs as JSON text
            data.with_columns(
                pl.col(pl.List, pl.Struct).map_elements(_json_cell, return_dtype=pl.String)
            ).write_csv(tmp)
        else:
            data.write_ndjson(tmp)
        tmp.replace(out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StemeLakeError(f"cannot write {out}: {exc}") from exc
    if args.json:
        print_json({"path": str(out), "rows": data.height, "format": fmt, "table": args.table})
    else:
        print(f"wrote {data.height} {args.table} rows to {out} ({fmt})")
    return 0


def _flush(args: argparse.Namespace) -> int:
    with open_lake(args) as lake, Bars("flush", quiet=args.json) as bars:
        frames = lake.flush(progress=lambda done, total: bars("flush", done, total))
        compacted = lake.compact() if args.compact else 0
    if args.json:
        print_json({"flushed_frames": frames, "compacted_partitions": compacted})
    else:
        print(f"flushed {frames} frame(s); compacted {compacted} partition(s)")
    return 0


def _status(args: argparse.Namespace) -> int:
    import polars as pl

    with open_lake(args) as lake:
        status = lake.status()
    if args.json:
        print_json(status.to_dict())
        return 0
    print(f"lake {status.path}")
    print(
        f"  manifest v{status.manifest_version}; last seq {status.last_seq} at {status.last_time}"
    )
    print(
        f"  WAL: {status.wal_segments} segment(s), {status.wal_bytes:,} bytes, "
        f"{status.unflushed_frames} unflushed frame(s); flushed through seq {status.flushed_seq}"
    )
    checkpoint = status.state_checkpoint
    print(
        f"  state index: {status.state_index}"
        + (f"; checkpoint {checkpoint}" if checkpoint else "")
    )
    recovery = status.last_recovery
    print(f"  last recovery: {json.dumps(recovery) if recovery else 'none (clean)'}")
    rows = [{"table": t, **v} for t, v in status.tables.items()]
    with pl.Config(tbl_rows=20, tbl_hide_dataframe_shape=True):
        print(pl.DataFrame(rows))
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from steme_lake.doctor import doctor

    report = doctor(
        lake_path(args), repair=args.repair, truncate_at=args.truncate_at, segment=args.segment
    )
    if args.json:
        print_json(report.to_dict())
    else:
        print(report)
    return 0 if report.ok else 1


def register(commands: Any, command: Any) -> None:
    """Add this module's commands to the ``steme`` parser."""
    ini = commands.add_parser("init", help="create a lake folder (or check an existing one)")
    ini.add_argument("path", help="the folder")
    lake_arg(ini, lake=False)
    ini.set_defaults(run=_init)

    def signing(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--agent", required=True, help="who writes")
        sub.add_argument("--sign", action="store_true", help="sign with the agent's wallet key")
        sub.add_argument(
            "--wallet", help="wallet folder (default: $STEME_WALLET or ~/.steme/wallet)"
        )

    a = command("assert", "store an assertion: SUBJECT PREDICATE VALUE", _assert)
    a.add_argument("subject")
    a.add_argument("predicate")
    a.add_argument("value", help="a JSON value; plain words are text (RS256)")
    a.add_argument("--string", action="store_true", help="take VALUE as text even if it is JSON")
    a.add_argument("--confidence", type=float, default=1.0)
    a.add_argument("--lifecycle", default="proposed")
    a.add_argument("--source", help="the evidence: a URL or text (its BLAKE3 is stored)")
    a.add_argument("--source-hash", dest="source_hash", help="or a ready BLAKE3 hash")
    a.add_argument("--parent", help="the assertion this one refines")
    a.add_argument("--meta", help='JSON object, e.g. \'{"reason": "..."}\'')
    signing(a)

    v = command("vote", "vote on an assertion (negative weight: against)", _vote)
    v.add_argument("hash")
    v.add_argument("--weight", type=float, default=1.0)
    signing(v)

    lc = command("lifecycle", "move an assertion to a lifecycle stage", _lifecycle)
    lc.add_argument("hash")
    lc.add_argument("stage", help="proposed, under_review, approved or deprecated")
    lc.add_argument("--reason")
    signing(lc)

    s = command("supersede", "mark assertions superseded (never deleted)", _supersede)
    s.add_argument("hash", nargs="?", help="the assertion (or use --source-hash / --target-agent)")
    s.add_argument(
        "--kind",
        required=True,
        choices=["invalidate", "refine", "replace", "paradigm_shift"],
        help="invalidate (it was wrong), refine or replace (a better one exists), "
        "paradigm_shift (the ground moved)",
    )
    s.add_argument("--reason", required=True)
    s.add_argument(
        "--source-hash",
        dest="source_hash",
        help="supersede every assertion resting on this evidence (its BLAKE3, 64 hex)",
    )
    s.add_argument("--target-agent", dest="target_agent")
    s.add_argument("--since", help="with --target-agent: the window's start (ISO-8601 or -6h)")
    s.add_argument("--until", help="with --target-agent: the window's end (default: now)")
    s.add_argument("--replacement")
    signing(s)

    c = command("constrain", "store a constraint for a context", _constrain)
    c.add_argument("context", help="e.g. auth/jwt (applies to everything below it)")
    c.add_argument("--forbidden", help="a value that must not be used (JSON or text)")
    c.add_argument("--must-use", dest="must_use", help="the value to use (JSON or text)")
    c.add_argument("--reason", required=True)
    c.add_argument("--predicate")
    c.add_argument("--cites", help="the assertion it comes from")
    signing(c)

    ck = command(
        "check", "pre-flight constraint check (exit 1 when the proposal violates one)", _check
    )
    ck.add_argument("context")
    ck.add_argument("--proposed", help="the value about to be used")
    ck.add_argument("--predicate")
    ck.add_argument("--as-of", dest="as_of")
    ck.add_argument("--agent", default="cli", help="who asks (audited; default cli)")

    q = command("query", "ask SUBJECT PREDICATE through a lens (audited)", _query)
    q.add_argument("subject")
    q.add_argument("predicate")
    q.add_argument("--lens", default="recency")
    q.add_argument("--lifecycle", help="e.g. approved: never act on a proposal")
    q.add_argument("--min-confidence", dest="min_confidence", type=float)
    q.add_argument("--as-of", dest="as_of", help="time travel: ISO-8601 or -6h")
    q.add_argument("--include-superseded", dest="include_superseded", action="store_true")
    q.add_argument("--agent", default="cli", help="who asks (audited; default cli)")

    se = command(
        "search",
        "semantic search: the assertions closest in meaning to TEXT (audited)",
        _search,
    )
    se.add_argument("text", help="what to search for, in words: 'how are tokens signed?'")
    se.add_argument("-k", "--k", type=int, default=10, help="how many results (default 10)")
    se.add_argument("--as-of", dest="as_of", help="time travel: ISO-8601 or -6h")
    se.add_argument("--lifecycle", help="e.g. approved: decisions only")
    se.add_argument("--subject", help="a path (it and everything under it) or a glob")
    se.add_argument("--min-confidence", dest="min_confidence", type=float)
    se.add_argument("--include-superseded", dest="include_superseded", action="store_true")
    se.add_argument(
        "--hybrid",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fuse full-text and vector ranks (default); --no-hybrid: vectors only",
    )
    se.add_argument("--agent", default="cli", help="who asks (audited; default cli)")

    im = command(
        "import",
        "import a JSON-lines event file (or CLIMATE-FEVER, or a SNAP signed network)",
        _import,
    )
    im.add_argument("file")
    im.add_argument(
        "--format", choices=("events", "climate-fever", "snap-signed"), default="events"
    )
    im.add_argument("--limit", type=int, help="climate-fever: at most this many claims")
    im.add_argument("--topic", help="snap-signed: the topic its ratings are on (bitcoin-otc)")

    ex = command("export", "write one table to Parquet, CSV or JSON lines", _export)
    ex.add_argument(
        "table", help="assertions, votes, lifecycle, supersessions, constraints, audit, ..."
    )
    ex.add_argument("--out", required=True, help="the file to write")
    ex.add_argument("--format", choices=EXPORT_FORMATS, help="default: from --out's suffix")
    ex.add_argument("--since")
    ex.add_argument("--until")

    f = command("flush", "flush the WAL to Parquet now (and --compact partitions)", _flush)
    f.add_argument("--compact", action="store_true")

    command("status", "WAL, partitions, sizes and the last recovery report", _status)
    d = command(
        "doctor",
        "rebuild the lake's state from its WAL and Parquet files and compare it with the "
        "manifest; exit 1 if anything is wrong (works on a lake that will not open)",
        _doctor,
    )
    d.add_argument(
        "--repair",
        action="store_true",
        help="if wrong, publish a good manifest built from the files (never deletes data)",
    )
    d.add_argument(
        "--truncate-at",
        dest="truncate_at",
        type=int,
        metavar="OFFSET",
        help="cut the last WAL segment at this byte offset (the one a WalCorruptError "
        "names); the cut bytes are saved beside the log first",
    )
    d.add_argument("--segment", help="with --truncate-at: the segment file (default: the last)")
