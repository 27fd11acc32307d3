"""NumPy helpers for the hot paths."""

from __future__ import annotations

import numpy as np

__all__ = ["sorted_unique"]


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """The distinct values of a 1-D array, sorted: ``np.unique(values)`` by a sort
    and one comparison. NumPy 2.3 made `np.unique` hash first, then sort: on this
    project's integers (id hashes and prefixes, row numbers, days) that is 10 to 50
    times slower (25k hashes 4.6 against 0.4 ms; 1M, 900 against 16 ms).

    >>> sorted_unique(np.array([3, 1, 3, 2, 1])).tolist()
    [1, 2, 3]
    >>> sorted_unique(np.array([], dtype=np.int64)).tolist()
    []
    """
    ordered = np.sort(np.asarray(values).ravel())
    if len(ordered) < 2:
        return ordered
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]
