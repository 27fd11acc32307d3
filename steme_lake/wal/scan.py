"""Reading one segment: complete transactions, torn tails, and corruption.

The rules (MISSION.md, "Storage principles"):

- a frame at the end of the *last* segment that the end of the file cuts
  short (or zeros from a page boundary to the end, data that never arrived),
  with no valid frame after it, is crash residue: a torn tail, never
  acknowledged (its fsync cannot have completed), reported and dropped by a
  caller that holds the commit lock;
- a damaged frame anywhere else, one followed by a valid frame, or a last
  frame whose bytes are all there but fail their checksum, is corruption:
  `WalCorruptError` names the file and byte offset (``steme doctor
  --truncate-at`` is the explicit, logged repair);
- frames of a transaction become visible only with its closing frame, so an
  import that crashed half-way leaves nothing behind.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from steme_lake._exceptions import WalCorruptError
from steme_lake.wal import format as fmt
from steme_lake.wal.format import WalFrame

__all__ = ["SegmentScan", "TornTail", "scan_segment"]


@dataclass(frozen=True, slots=True)
class TornTail:
    """Crash residue found at the end of the last segment."""

    path: str
    first_seq: int
    offset: int
    dropped_bytes: int
    reason: str


@dataclass(slots=True)
class SegmentScan:
    frames: list[WalFrame] = field(default_factory=list)
    end_offset: int = 0
    next_seq: int = 0
    last_time: int = 0
    torn: TornTail | None = None


def scan_segment(
    fd: int,
    *,
    path: str,
    first_seq: int,
    start_offset: int,
    next_seq: int,
    last_time: int,
    final: bool,
    locked: bool,
    skip_below: int = 0,
) -> SegmentScan:
    """Scan a segment from ``start_offset`` (0: from its header)."""
    size = os.fstat(fd).st_size
    data = os.pread(fd, max(0, size - start_offset), start_offset) if size > start_offset else b""
    base = start_offset
    pos = 0
    if start_offset == 0:
        seg_header = fmt.parse_segment_header(data)
        if seg_header is None:
            if final and len(data) < fmt.SEGMENT_HEADER_SIZE:
                torn = TornTail(path, first_seq, 0, len(data), "segment header incomplete")
                return SegmentScan([], 0, first_seq, last_time, torn)
            raise WalCorruptError("segment header is damaged", path=path, offset=0)
        if seg_header.first_seq != first_seq:
            raise WalCorruptError(
                f"segment header says first sequence {seg_header.first_seq}, "
                f"its name says {first_seq}",
                path=path,
                offset=0,
            )
        next_seq = first_seq
        last_time = max(last_time, seg_header.prev_time)
        pos = fmt.SEGMENT_HEADER_SIZE

    scan = SegmentScan(end_offset=base + pos, next_seq=next_seq, last_time=last_time)
    pending: list[WalFrame] = []
    expected, latest = next_seq, last_time
    while pos < len(data):
        header = fmt.parse_frame_header(data[pos : pos + fmt.FRAME_HEADER_SIZE])
        end = pos + header.size if header is not None else -1
        if header is None or end > len(data) or not fmt.frame_checksum_ok(data[pos:end]):
            return _damaged(scan, data, base, pos, path, first_seq, final)
        if header.seq != expected:
            raise WalCorruptError(
                f"frame has sequence number {header.seq}, expected {expected}",
                path=path,
                offset=base + pos,
            )
        if header.seq >= skip_below:
            payload = data[pos + fmt.FRAME_HEADER_SIZE : end - fmt.FRAME_TRAILER_SIZE]
            table = fmt.decode_payload(payload)
            pending.append(WalFrame(header.kind, header.seq, header.commit_time, table))
        expected += 1
        latest = max(latest, header.commit_time)
        pos = end
        if not header.continues:
            scan.frames.extend(pending)
            pending = []
            scan.end_offset, scan.next_seq, scan.last_time = base + pos, expected, latest
    if expected != scan.next_seq:  # a transaction without its closing frame
        if not final:
            raise WalCorruptError(
                "transaction is missing its closing frame", path=path, offset=scan.end_offset
            )
        scan.torn = TornTail(
            path, first_seq, scan.end_offset, size - scan.end_offset, "transaction incomplete"
        )
    return scan


def _damaged(
    scan: SegmentScan, data: bytes, base: int, pos: int, path: str, first_seq: int, final: bool
) -> SegmentScan:
    if not final:
        raise WalCorruptError("damaged frame in a sealed segment", path=path, offset=base + pos)
    if _valid_frame_after(data, pos + 1):
        raise WalCorruptError(
            "damaged frame followed by valid frames (corruption, not a torn write)",
            path=path,
            offset=base + pos,
        )
    reason = _cut_short(data, base, pos)
    if reason is None:
        raise WalCorruptError(
            "the last frame is all there but fails its checksum: that is damage, not a "
            "write cut short by a crash, and it may hold an acknowledged write, so the lake "
            "will not drop it by itself. Copy the segment aside, then `steme doctor "
            f"--truncate-at {base + pos}` drops it (and reports what it held)",
            path=path,
            offset=base + pos,
        )
    size = base + len(data)
    scan.torn = TornTail(path, first_seq, scan.end_offset, size - scan.end_offset, reason)
    return scan


PAGE = 4096


def _cut_short(data: bytes, base: int, pos: int) -> str | None:
    """Why the frame at ``pos`` is crash residue, or None if it is not.

    Residue is a frame the end of the file cuts short: its header incomplete, or
    its header valid and its length past the end. Zeros from a page boundary to
    the end count as missing (a filesystem may extend a file before the data of
    an unfinished write arrives). A frame whose bytes are all there is never
    residue, whatever its checksum says: that is damage."""
    end = len(data)
    zeros = len(data.rstrip(b"\0"))
    if zeros <= pos:
        end = pos  # nothing but zeros where the frame should be
    else:
        boundary = -(-(base + zeros) // PAGE) * PAGE - base  # first page boundary after data
        end = min(end, boundary)
    available = end - pos
    if available < fmt.FRAME_HEADER_SIZE:
        return "the last frame's header is cut short by the end of the file"
    header = fmt.parse_frame_header(data[pos : pos + fmt.FRAME_HEADER_SIZE])
    if header is not None and header.size > available:
        return "the last frame is cut short by the end of the file"
    return None


def _valid_frame_after(data: bytes, start: int) -> bool:
    pos = data.find(fmt.FRAME_MAGIC, start)
    while pos != -1:
        header = fmt.parse_frame_header(data[pos : pos + fmt.FRAME_HEADER_SIZE])
        if header is not None:
            end = pos + header.size
            if end <= len(data) and fmt.frame_checksum_ok(data[pos:end]):
                return True
        pos = data.find(fmt.FRAME_MAGIC, pos + 1)
    return False
