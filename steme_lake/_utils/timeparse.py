"""Times: everything is UTC microseconds since the epoch (an ``int``).

Public calls accept a ``datetime`` (naive means UTC), ISO-8601 text
(``"2026-01-15T21:00:00Z"``, ``"2026-01-15"``), or relative text measured
from now (``"-6h"``, ``"-30m"``, ``"-2d"``, ``"now"``).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime, timedelta

from steme_lake._exceptions import ValidationError

TimeLike = datetime | date | str

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNITS_US = {
    "us": 1,
    "ms": 1_000,
    "s": 1_000_000,
    "m": 60_000_000,
    "min": 60_000_000,
    "h": 3_600_000_000,
    "d": 86_400_000_000,
    "w": 604_800_000_000,
}
_RELATIVE = re.compile(r"^\s*([+-])\s*(\d+(?:\.\d+)?)\s*(us|ms|s|min|m|h|d|w)\s*$")
# Datetimes outside these years are almost surely unit mistakes (seconds vs microseconds).
MIN_US = int((datetime(1970, 1, 1, tzinfo=UTC) - _EPOCH).total_seconds()) * 1_000_000
MAX_US = int((datetime(9999, 12, 31, tzinfo=UTC) - _EPOCH).total_seconds()) * 1_000_000


def now_us() -> int:
    """The current time in UTC microseconds."""
    return time.time_ns() // 1_000


def datetime_to_us(value: datetime) -> int:
    """A datetime in UTC microseconds; a naive datetime means UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def us_to_datetime(us: int) -> datetime:
    """UTC microseconds as an aware UTC datetime."""
    return _EPOCH + timedelta(microseconds=us)


def us_to_iso(us: int) -> str:
    """UTC microseconds as ISO-8601 text ending in ``Z``."""
    return us_to_datetime(us).isoformat().replace("+00:00", "Z")


def to_us(value: TimeLike, *, name: str = "time", now: int | None = None) -> int:
    """Parse a time argument into UTC microseconds.

    Parameters
    ----------
    value
        A ``datetime`` (naive means UTC), a ``date`` (midnight UTC), ISO-8601
        text, ``"now"``, or relative text such as ``"-6h"``.
    name
        The argument's name, used in the error message.
    now
        The reference for relative times (default: the clock).

    Examples
    --------
    >>> to_us("1970-01-01T00:00:01Z")
    1000000
    >>> to_us("-1s", now=5_000_000)
    4000000
    """
    if isinstance(value, bool):
        raise ValidationError(f"{name}: expected a datetime or ISO-8601 text, got a bool")
    if isinstance(value, datetime):
        us = datetime_to_us(value)
    elif isinstance(value, date):
        us = datetime_to_us(datetime(value.year, value.month, value.day))
    elif isinstance(value, str):
        us = _parse_text(value, name=name, now=now)
    else:
        raise ValidationError(
            f"{name}: expected a datetime, ISO-8601 text or relative text like '-6h', "
            f"got {type(value).__name__} {value!r}"
        )
    if not MIN_US <= us <= MAX_US:
        raise ValidationError(f"{name}: {value!r} is outside the years 1970..9999")
    return us


def _parse_text(text: str, *, name: str, now: int | None) -> int:
    stripped = text.strip()
    if stripped.lower() == "now":
        return now_us() if now is None else now
    match = _RELATIVE.match(stripped)
    if match:
        sign, amount, unit = match.groups()
        offset = round(float(amount) * _UNITS_US[unit])
        base = now_us() if now is None else now
        return base - offset if sign == "-" else base + offset
    try:
        parsed = datetime.fromisoformat(stripped.replace("z", "Z"))
    except ValueError:
        raise ValidationError(
            f"{name}: cannot read {text!r} as a time; use ISO-8601 such as "
            "'2026-01-15T21:00:00Z' or relative text such as '-6h', '-30m', '-2d'"
        ) from None
    return datetime_to_us(parsed)
