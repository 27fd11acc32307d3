"""`sorted_unique`, which replaces `np.unique` on the hot paths (key indexes,
impact's lookups, the state index, the writer's days)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from steme_lake._utils.arrays import sorted_unique


@given(
    hnp.arrays(
        st.sampled_from([np.uint64, np.int64, np.int32]),
        st.integers(0, 300),
        elements=st.integers(0, 40),
    )
)
def test_sorted_unique_is_np_unique(values: np.ndarray) -> None:
    ours = sorted_unique(values)
    assert ours.dtype == values.dtype
    assert ours.tolist() == np.unique(values).tolist()


def test_sorted_unique_takes_the_largest_uint64_and_flattens() -> None:
    top = np.array([2**64 - 1, 0, 2**64 - 1, 2**63], dtype=np.uint64)
    assert sorted_unique(top).tolist() == [0, 2**63, 2**64 - 1]
    assert sorted_unique(np.array([[3, 1], [1, 2]])).tolist() == [1, 2, 3]
