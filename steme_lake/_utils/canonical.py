"""Canonical JSON: the one byte encoding that record ids are computed from.

Rules (documented in ``docs/format.md``): keys sorted by code point, no
insignificant white space, UTF-8 without escaping non-ASCII, integers as
integers, floats in Python's shortest round-trip form (``repr``), no NaN or
Infinity, nesting at most ``MAX_DEPTH`` deep.
"""

from __future__ import annotations

import json
import math
import unicodedata
from typing import Any

from steme_lake._exceptions import ValidationError

MAX_DEPTH = 64

_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def check_unicode(name: str, value: str) -> None:
    """Raise `ValidationError` unless ``value`` encodes to UTF-8.

    Python text may hold lone surrogates (``"\\udc00"``: JSON allows the escape)
    that no UTF-8 file can store; they are refused here, at the boundary, with
    the field named, so they never reach an id, a frame or a batch of others.
    """
    if value.isascii():
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = value[exc.start]
        raise ValidationError(
            f"{name}: character {exc.start} (U+{ord(bad):04X}) is a lone surrogate, not "
            "text; send valid UTF-8 (a \\ud800-\\udfff escape must come in a pair)"
        ) from None


def nfc_text(name: str, value: str) -> str:
    """``value`` checked by `check_unicode` and in Unicode normal form C.

    Subjects, predicates, agents, contexts and every other text field are
    stored in NFC, so ``"café"`` typed on two keyboards (NFC and NFD) is one
    subject and one agent.

    Examples
    --------
    >>> nfc_text("subject", "cafe\u0301") == "caf\u00e9"
    True
    """
    if value.isascii():
        return value
    check_unicode(name, value)
    return unicodedata.normalize("NFC", value)


def check_json_value(value: Any, *, name: str, depth: int = 0) -> None:
    """Raise `ValidationError` unless ``value`` is plain JSON data."""
    if depth > MAX_DEPTH:
        raise ValidationError(f"{name}: nested deeper than {MAX_DEPTH} levels; flatten it")
    if isinstance(value, str):
        check_unicode(name, value)
        return
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(
                f"{name}: {value!r} is not valid JSON; use null or a finite number"
            )
        return
    if isinstance(value, list | tuple):
        for item in value:
            check_json_value(item, name=name, depth=depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(
                    f"{name}: object keys must be text, got {type(key).__name__} {key!r}"
                )
            check_unicode(name, key)
            check_json_value(item, name=name, depth=depth + 1)
        return
    raise ValidationError(
        f"{name}: {type(value).__name__} is not JSON-serialisable; "
        "pass text, a number, a bool, None, a list or a dict of those"
    )


def canonical_json(value: Any, *, name: str = "value") -> str:
    """Encode ``value`` canonically, after checking it is plain JSON data.

    Examples
    --------
    >>> canonical_json({"b": 1, "a": [1.5, "é"]})
    '{"a":[1.5,"é"],"b":1}'
    """
    check_json_value(value, name=name)
    return _ENCODER.encode(value)


def canonical_json_trusted(value: Any) -> str:
    """Encode a value already checked by `check_json_value`."""
    return _ENCODER.encode(value)
