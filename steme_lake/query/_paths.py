"""Path-like subjects: ``auth`` covers ``auth`` and ``auth/jwt``, never ``authz``."""

from __future__ import annotations

import polars as pl

__all__ = ["covers", "covers_expr", "parents"]


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
