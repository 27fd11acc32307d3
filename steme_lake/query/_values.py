"""Values in frames, as a person reads them."""

from __future__ import annotations

import polars as pl

__all__ = ["decoded"]


def decoded(column: str | pl.Expr = "value") -> pl.Expr:
    """A frame's JSON-text value as a person reads it: a JSON string without its
    quotes (``ES256``), anything else as its JSON text (``3600``, ``[1, 2]``).

    Values are stored and shown as canonical JSON, so ``pl.col("value") ==
    "ES256"`` finds nothing (the cell holds ``"ES256"``, quotes included);
    filter on ``decoded("value") == "ES256"`` instead.

    Examples
    --------
    >>> import polars as pl
    >>> frame = pl.DataFrame({"value": ['"ES256"', "3600", '{"a": 1}', None]})
    >>> frame.select(decoded("value"))["value"].to_list()
    ['ES256', '3600', '{"a": 1}', None]
    >>> frame.filter(decoded("value") == "ES256").height
    1
    """
    e = pl.col(column) if isinstance(column, str) else column
    return pl.when(e.str.starts_with('"')).then(e.str.json_path_match("$")).otherwise(e)
