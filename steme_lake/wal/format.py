"""The WAL's byte format: segment headers and frames (documented in docs/format.md).

Segment file ``<first_seq:020d>.wal``::

    0   8  magic  b"STEMEWAL"
    8   4  format version (u32 LE)
    12  4  reserved (0)
    16  8  first sequence number of the segment (u64 LE)
    24  8  commit time of the last frame before this segment (i64 LE, UTC us)
    32  8  BLAKE3 of bytes 0..32, first 8 bytes

then frames, back to back::

    0   4  magic  b"SLFR"
    4   1  frame version
    5   1  record kind (model.schema.RecordKind)
    6   2  flags (bit 0: the transaction continues in the next frame)
    8   8  sequence number (u64 LE)
    16  8  commit time: the largest recorded_at in the frame (i64 LE, UTC us)
    24  4  payload length (u32 LE)
    28  4  row count (u32 LE)
    32  8  BLAKE3 of header bytes 0..32, first 8 bytes (a torn or flipped
           length can never pass as a valid header)
    40  n  payload: one Arrow IPC stream holding one record batch
    40+n 32 BLAKE3 of header and payload
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import blake3
import pyarrow as pa

__all__ = [
    "FLAG_TXN_CONTINUES",
    "FRAME_HEADER_SIZE",
    "FRAME_OVERHEAD",
    "SEGMENT_HEADER_SIZE",
    "FrameHeader",
    "SegmentHeader",
    "WalFrame",
    "decode_payload",
    "encode_frame",
    "encode_payload",
    "encode_segment_header",
    "frame_checksum_ok",
    "parse_frame_header",
    "parse_segment_header",
    "segment_name",
    "segment_first_seq",
]

SEGMENT_MAGIC = b"STEMEWAL"
SEGMENT_VERSION = 1
_SEGMENT = struct.Struct("<8sIIQq")
SEGMENT_HEADER_SIZE = _SEGMENT.size + 8

FRAME_MAGIC = b"SLFR"
FRAME_VERSION = 1
_FRAME = struct.Struct("<4sBBHQqII")
FRAME_HEADER_SIZE = _FRAME.size + 8
FRAME_TRAILER_SIZE = 32
FRAME_OVERHEAD = FRAME_HEADER_SIZE + FRAME_TRAILER_SIZE
FLAG_TXN_CONTINUES = 0x1

_SUFFIX = ".wal"


def _check8(data: bytes) -> bytes:
    return bytes(blake3.blake3(data).digest(length=8))


@dataclass(frozen=True, slots=True)
class WalFrame:
    """A committed frame as delivered to readers: its kind, sequence, time and rows."""

    kind: int
    seq: int
    commit_time: int
    table: pa.Table


@dataclass(frozen=True, slots=True)
class SegmentHeader:
    first_seq: int
    prev_time: int


@dataclass(frozen=True, slots=True)
class FrameHeader:
    kind: int
    flags: int
    seq: int
    commit_time: int
    length: int
    rows: int

    @property
    def size(self) -> int:
        """Bytes of the whole frame on disk."""
        return FRAME_OVERHEAD + self.length

    @property
    def continues(self) -> bool:
        return bool(self.flags & FLAG_TXN_CONTINUES)


def segment_name(first_seq: int) -> str:
    return f"{first_seq:020d}{_SUFFIX}"


def segment_first_seq(name: str) -> int | None:
    """The first sequence number a segment file name encodes, or None if not a segment."""
    stem = name[: -len(_SUFFIX)]
    if not name.endswith(_SUFFIX) or len(stem) != 20 or not stem.isdigit():
        return None
    return int(stem)


def encode_segment_header(header: SegmentHeader) -> bytes:
    body = _SEGMENT.pack(SEGMENT_MAGIC, SEGMENT_VERSION, 0, header.first_seq, header.prev_time)
    return body + _check8(body)


def parse_segment_header(data: bytes) -> SegmentHeader | None:
    """The header, or None if the bytes are short or fail their checksum."""
    if len(data) < SEGMENT_HEADER_SIZE:
        return None
    body = data[: _SEGMENT.size]
    if _check8(body) != data[_SEGMENT.size : SEGMENT_HEADER_SIZE]:
        return None
    magic, version, _reserved, first_seq, prev_time = _SEGMENT.unpack(body)
    if magic != SEGMENT_MAGIC or version != SEGMENT_VERSION:
        return None
    return SegmentHeader(first_seq=first_seq, prev_time=prev_time)


def encode_frame(
    *, kind: int, flags: int, seq: int, commit_time: int, rows: int, payload: bytes
) -> bytes:
    body = _FRAME.pack(
        FRAME_MAGIC, FRAME_VERSION, kind, flags, seq, commit_time, len(payload), rows
    )
    header = body + _check8(body)
    hasher = blake3.blake3(header)
    hasher.update(payload)
    return b"".join((header, payload, hasher.digest()))


def parse_frame_header(data: bytes) -> FrameHeader | None:
    """The frame header at the start of ``data``, or None if short or invalid."""
    if len(data) < FRAME_HEADER_SIZE:
        return None
    body = data[: _FRAME.size]
    if body[:4] != FRAME_MAGIC or _check8(body) != data[_FRAME.size : FRAME_HEADER_SIZE]:
        return None
    _magic, version, kind, flags, seq, commit_time, length, rows = _FRAME.unpack(body)
    if version != FRAME_VERSION:
        return None
    return FrameHeader(kind, flags, seq, commit_time, length, rows)


def frame_checksum_ok(frame: bytes) -> bool:
    """True when a whole frame's trailing BLAKE3 matches its header and payload."""
    split = len(frame) - FRAME_TRAILER_SIZE
    return bytes(blake3.blake3(frame[:split]).digest()) == frame[split:]


def encode_payload(batch: pa.RecordBatch | pa.Table) -> bytes:
    """One Arrow IPC stream (schema + batches) as bytes."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write(batch)
    return bytes(sink.getvalue().to_pybytes())


def decode_payload(payload: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(payload)).read_all()
