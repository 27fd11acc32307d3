"""How the explorer writes values: JSON text as a person reads it."""

from __future__ import annotations

from typing import Any

__all__ = ["short", "shown"]


def shown(value: Any) -> str:
    """A value as shown: JSON text for a string loses its quotes, the rest as written.

    >>> shown('"ES256"'), shown("20"), shown(None)
    ('ES256', '20', '')
    """
    s = "" if value is None else str(value)
    return s[1:-1] if len(s) >= 2 and s[0] == s[-1] == '"' else s


def short(text: Any, n: int = 22) -> str:
    """``text`` cut to ``n`` characters, the cut marked."""
    s = "" if text is None else str(text)
    return s if len(s) <= n else s[: n - 1] + "…"
