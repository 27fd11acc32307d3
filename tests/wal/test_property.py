"""WAL append -> replay, as a property."""

from __future__ import annotations

import tempfile

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from steme_lake.wal import PreparedFrame, WalFrame, WriteAheadLog

TXNS = st.lists(
    st.lists(st.lists(st.text(max_size=30), max_size=5), min_size=1, max_size=3),
    min_size=1,
    max_size=12,
)


class TestReplay:
    """Every committed transaction is replayed, whole and in order, across segment rolls."""

    @settings(max_examples=40, deadline=None)
    @given(txns=TXNS, segment_bytes=st.sampled_from([256, 2048, 1 << 20]))
    def test_append_replay(self, txns: list[list[list[str]]], segment_bytes: int) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            live: list[WalFrame] = []
            wal = WriteAheadLog(tmp, sink=live.extend, segment_bytes=segment_bytes)
            for frames in txns:

                def build(seq: int, last: int, frames=frames) -> list[PreparedFrame]:
                    return [
                        PreparedFrame(
                            2, seq + i, last + 1, pa.table({"v": pa.array(rows, pa.string())})
                        )
                        for i, rows in enumerate(frames)
                    ]

                wal.commit(build)
            replayed: list[WalFrame] = []
            WriteAheadLog(tmp, sink=replayed.extend).catch_up()
            expected = [rows for frames in txns for rows in frames]
            assert [f.table["v"].to_pylist() for f in replayed] == expected
            assert [f.seq for f in replayed] == list(range(1, len(expected) + 1))
            assert [f.seq for f in live] == [f.seq for f in replayed]
            times = [f.commit_time for f in replayed]
            assert times == sorted(times)
