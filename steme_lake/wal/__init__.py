"""The write-ahead log: fsync'd segment files of Arrow record batches."""

from steme_lake.wal.log import (
    DEFAULT_MAX_FRAME_BYTES,
    DEFAULT_SEGMENT_BYTES,
    FrameBuilder,
    PendingFrame,
    PreparedFrame,
    SegmentsRetired,
    TornTail,
    WalFrame,
    WriteAheadLog,
    first_segment_seq,
)

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "DEFAULT_SEGMENT_BYTES",
    "FrameBuilder",
    "PendingFrame",
    "PreparedFrame",
    "SegmentsRetired",
    "TornTail",
    "WalFrame",
    "WriteAheadLog",
    "first_segment_seq",
]
