"""Path-like subjects: ``auth`` covers ``auth`` and ``auth/jwt``, never ``authz``."""

from __future__ import annotations

import re

import polars as pl

from steme_lake._exceptions import ValidationError
from steme_lake._utils.canonical import nfc_text

__all__ = ["covers", "covers_expr", "parents", "subject_matcher"]


def _norm(prefix: str) -> str:
    return prefix.rstrip("/")


def covers(prefix: str, subject: str) -> bool:
    """True when ``prefix`` is ``subject`` or one of its parent paths ("" covers all).

    Examples
    --------
    >>> covers("auth", "auth/jwt"), covers("auth/", "auth/jwt"), covers("auth", "authz")
    (True, True, False)
    """
    p = _norm(prefix)
    return p == "" or subject == p or subject.startswith(p + "/")


def covers_expr(prefix: pl.Expr, subject: pl.Expr) -> pl.Expr:
    """`covers` as a Polars expression over two string columns."""
    p = prefix.str.strip_chars_end("/")
    return (p == "") | (subject == p) | subject.str.starts_with(p + "/")


def parents(subject: str) -> list[str]:
    """``subject`` and every parent path, longest first.

    Examples
    --------
    >>> parents("auth/jwt/keys")
    ['auth/jwt/keys', 'auth/jwt', 'auth']
    """
    parts = _norm(subject).split("/")
    return ["/".join(parts[:i]) for i in range(len(parts), 0, -1)]


def subject_matcher(pattern: str | None) -> pl.Expr | None:
    """A filter on ``subject``: a glob (``auth/*``; ``*`` crosses ``/``, ``?`` is one
    character) or, without wildcards, a path and everything under it.

    Examples
    --------
    >>> import polars as pl
    >>> df = pl.DataFrame({"subject": ["auth/jwt", "auth", "authz", "db/auth"]})
    >>> df.filter(subject_matcher("auth/*"))["subject"].to_list()
    ['auth/jwt']
    >>> df.filter(subject_matcher("auth"))["subject"].to_list()
    ['auth/jwt', 'auth']
    """
    if pattern is None:
        return None
    if not isinstance(pattern, str) or not pattern.strip():
        raise ValidationError(
            "subject pattern must be non-empty text such as 'auth/*' or 'auth/jwt'"
        )
    pattern = nfc_text("subject", pattern)  # subjects are stored in NFC
    if "*" not in pattern and "?" not in pattern:
        return covers_expr(pl.lit(pattern), pl.col("subject"))
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return pl.col("subject").str.contains(f"^(?s:{regex})$")
