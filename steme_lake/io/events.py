"""The JSON-lines event format: the lake's interchange format (docs/format.md).

One event per line, ``op`` one of ``assert``, ``vote``, ``lifecycle``,
``supersede``, ``constraint``, ``query``; each with ``at`` and ``agent``.
``assert`` may carry a ``ref`` that later lines use wherever an assertion id
goes (``target``, ``parent``, ``replacement``, ``cites``). Lines are checked
completely before anything is written, and the whole file is one transaction:
a bad line is reported with its number and nothing is applied.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steme_lake._exceptions import EventImportError, ValidationError
from steme_lake._utils.timeparse import to_us, us_to_iso
from steme_lake.lake import _rows as rows
from steme_lake.model.ids import is_record_id

__all__ = ["OPS", "ParsedEvents", "QueryLine", "parse_events"]

_COMMON = {"op", "at", "agent"}
_FIELDS: dict[str, set[str]] = {
    "assert": {
        "ref",
        "subject",
        "predicate",
        "object",
        "confidence",
        "lifecycle",
        "source",
        "source_hash",
        "parent",
        "parent_hash",
        "epoch",
        "visual_hash",
        "meta",
        "signatures",
    },
    "vote": {"target", "weight", "signatures"},
    "lifecycle": {"target", "stage", "reason", "signatures"},
    "supersede": {
        "target",
        "kind",
        "reason",
        "source",
        "source_hash",
        "target_agent",
        "window_start",
        "window_end",
        "replacement",
        "epoch",
        "signatures",
    },
    "constraint": {
        "context",
        "predicate",
        "forbidden",
        "must_use",
        "reason",
        "cites",
        "signatures",
    },
    "query": {
        "subject",
        "predicate",
        "lens",
        "lifecycle",
        "min_confidence",
        "as_of",
        "include_superseded",
    },
}
OPS = tuple(_FIELDS)
_REF_FIELDS = ("target", "parent", "replacement", "cites")


@dataclass(frozen=True, slots=True)
class QueryLine:
    """A replayed question: answered as of ``as_of`` (default: its ``at``) and audited at ``at``."""

    at: int
    agent: Any
    subject: Any
    predicate: Any
    lens: Any
    lifecycle: Any
    min_confidence: Any
    as_of: int
    as_of_text: str | None
    include_superseded: Any


@dataclass(frozen=True, slots=True)
class ParsedEvents:
    rows: list[rows.PendingRow | QueryLine]
    counts: dict[str, int]


def _lines(
    source: str | os.PathLike[str] | Sequence[str | dict[str, Any]],
) -> tuple[str, Iterable[str | dict[str, Any]]]:
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        try:
            return str(path), path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise ValidationError(f"event file {path} does not exist") from None
        except UnicodeDecodeError as exc:
            raise ValidationError(f"event file {path} is not UTF-8 text: {exc}") from None
    return "<events>", list(source)


def parse_events(
    source: str | os.PathLike[str] | Sequence[str | dict[str, Any]],
    *,
    progress: Callable[[str, int, int], None] | None = None,
) -> ParsedEvents:
    """Parse and validate every line; raise `EventImportError` at the first bad one.
    ``progress("read", lines_done, lines_total)`` is called every 1000 lines."""
    name, lines = _lines(source)
    total = len(lines) if isinstance(lines, Sized) else 0
    refs: dict[str, str] = {}
    pending: list[rows.PendingRow | QueryLine] = []
    counts: Counter[str] = Counter()
    last_at: int | None = None
    for number, line in enumerate(lines, start=1):
        if progress is not None and number % 1000 == 0:
            progress("read", number, total)
        if isinstance(line, dict):  # an event already parsed: checked as its JSON would be
            try:
                line = json.dumps(line, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise EventImportError(
                    f"the event is not plain JSON data ({exc})", line=number, path=name
                ) from None
        elif not isinstance(line, str):
            raise EventImportError(
                f"each event must be a JSON line or a dict, not {type(line).__name__}",
                line=number, path=name,
            )  # fmt: skip
        if not line.strip():
            continue
        try:
            event = json.loads(line, parse_constant=_no_constant)
            if not isinstance(event, dict):
                raise ValidationError("each line must be a JSON object")
            row, at = _row(event, refs)
        except (ValidationError, json.JSONDecodeError) as exc:
            raise EventImportError(str(exc), line=number, path=name) from exc
        if last_at is not None and at < last_at:
            raise EventImportError(
                f"at={us_to_iso(at)} is earlier than the line before ({us_to_iso(last_at)}); "
                "events must be in time order",
                line=number,
                path=name,
            )
        last_at = at
        if event["op"] == "assert" and "ref" in event:
            assert isinstance(row, rows.PendingRow)
            ref = event["ref"]
            if not isinstance(ref, str) or not ref or is_record_id(ref):
                raise EventImportError(
                    "ref must be a short name (not a hex id)", line=number, path=name
                )
            if ref in refs:
                raise EventImportError(f"ref {ref!r} is defined twice", line=number, path=name)
            refs[ref] = row.id_at(at)
        pending.append(row)
        counts[event["op"]] += 1
    if not pending:
        raise EventImportError("no events found", path=name)
    if progress is not None:
        progress("read", total, total)
    return ParsedEvents(pending, dict(counts))


def _no_constant(value: str) -> Any:
    raise ValidationError(f"{value} is not valid JSON; use null or a finite number")


def _row(event: dict[str, Any], refs: dict[str, str]) -> tuple[rows.PendingRow | QueryLine, int]:
    op = event.get("op")
    if op not in _FIELDS:
        raise ValidationError(f"unknown op {op!r}; use one of: {', '.join(OPS)}")
    for required in ("at", "agent"):
        if required not in event:
            raise ValidationError(f"{op} event needs {required!r}")
    unknown = set(event) - _COMMON - _FIELDS[op]
    if unknown:
        raise ValidationError(
            f"unknown field(s) {sorted(unknown)} for op {op!r}; allowed: "
            f"{sorted(_COMMON | _FIELDS[op])}"
        )
    at = to_us(event["at"], name="at")
    args = {k: v for k, v in event.items() if k not in ("op", "ref")}
    for key in _REF_FIELDS:
        if key in args and args[key] is not None:
            args[key] = _resolve(key, args[key], refs)
    if op == "assert":
        if "parent_hash" in args:
            args["parent"] = _resolve("parent_hash", args.pop("parent_hash"), refs)
        for required in ("subject", "predicate", "object"):
            if required not in args:
                raise ValidationError(f"assert event needs {required!r}")
        return rows.assertion_row(**args), at
    if op == "vote":
        return rows.vote_row(**_need(args, "target", op)), at
    if op == "lifecycle":
        _need(args, "stage", op)
        return rows.lifecycle_row(args.pop("target", None), args.pop("stage"), **args), at
    if op == "supersede":
        start, end = args.pop("window_start", None), args.pop("window_end", None)
        if start is not None or end is not None:
            args["window"] = (start, end)
        return rows.supersession_row(**_need(args, "kind", op)), at
    if op == "constraint":
        return rows.constraint_row(**_need(args, "context", op)), at
    # A replayed question, answered as of its time by the lake at import.
    from steme_lake.lake._questions import check_query_args

    _need(args, "subject", op)
    _need(args, "predicate", op)
    as_of_text = args.get("as_of")
    as_of = at if as_of_text is None else to_us(as_of_text, name="as_of")
    if as_of > at:
        raise ValidationError("a replayed query cannot look past its own time: as_of must be <= at")
    line = QueryLine(
        at=at,
        agent=args["agent"],
        subject=args["subject"],
        predicate=args["predicate"],
        lens=args.get("lens", "recency"),
        lifecycle=args.get("lifecycle"),
        min_confidence=args.get("min_confidence"),
        as_of=as_of,
        as_of_text=None if as_of_text is None else str(as_of_text),
        include_superseded=args.get("include_superseded", False),
    )
    check_query_args(
        line.subject,
        line.predicate,
        line.lens,
        line.lifecycle,
        line.min_confidence,
        line.include_superseded,
        line.agent,
    )
    return line, at


def _need(args: dict[str, Any], key: str, op: str) -> dict[str, Any]:
    if key not in args:
        raise ValidationError(f"{op} event needs {key!r}")
    return args


def _resolve(field: str, value: Any, refs: dict[str, str]) -> str:
    if isinstance(value, str) and value in refs:
        return refs[value]
    if is_record_id(value):
        return str(value)
    raise ValidationError(
        f"{field} {value!r} is neither a ref defined on an earlier line nor a 64-hex record id"
    )
