"""Torn tails are dropped and reported; corruption is named, never skipped."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from steme_lake import WalCorruptError
from steme_lake.wal import PreparedFrame, WalFrame, WriteAheadLog
from steme_lake.wal import format as fmt


def _builder(n_frames: int = 1):
    def build(seq: int, last: int) -> list[PreparedFrame]:
        return [
            PreparedFrame(1, seq + i, last + 1 + i, pa.table({"x": [seq + i]}))
            for i in range(n_frames)
        ]

    return build


def _write(path: Path, txns: list[int], segment_bytes: int = 1 << 20) -> WriteAheadLog:
    wal = WriteAheadLog(path, sink=lambda frames: None, segment_bytes=segment_bytes)
    for n in txns:
        wal.commit(_builder(n))
    return wal


def _read(path: Path, *, locked: bool = True) -> tuple[list[int], WriteAheadLog]:
    got: list[WalFrame] = []
    wal = WriteAheadLog(path, sink=got.extend)
    wal.catch_up()
    return [f.seq for f in got], wal


def _frame_offsets(segment: Path) -> list[tuple[int, int]]:
    data = segment.read_bytes()
    pos, out = fmt.SEGMENT_HEADER_SIZE, []
    while pos < len(data):
        header = fmt.parse_frame_header(data[pos : pos + fmt.FRAME_HEADER_SIZE])
        assert header is not None
        out.append((pos, pos + header.size))
        pos += header.size
    return out


class TestTornTail:
    """A cut anywhere in the last frames leaves exactly the complete prefix."""

    def test_every_byte_offset_of_the_last_frames(self, tmp_path: Path) -> None:
        src = tmp_path / "src"
        _write(src, [1, 1, 2, 1])  # seqs 1, 2, (3, 4 as one transaction), 5
        segment = sorted(src.glob("*.wal"))[0]
        frames = _frame_offsets(segment)
        full = segment.read_bytes()
        # Complete transactions end after frames 0, 1, 3 and 4 (seqs 1, 2, 4, 5).
        txn_ends = {frames[0][1]: 1, frames[1][1]: 2, frames[3][1]: 4, frames[4][1]: 5}
        start = frames[1][0]
        work = tmp_path / "work"
        for cut in range(start, len(full)):
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir()
            (work / segment.name).write_bytes(full[:cut])
            seqs, wal = _read(work)
            complete = max(seq for end, seq in txn_ends.items() if end <= cut)
            assert seqs == list(range(1, complete + 1)), f"cut at {cut}"
            torn = cut not in txn_ends
            assert bool(wal.recovered) == torn, f"cut at {cut}"
            if torn:
                assert (work / segment.name).stat().st_size == max(e for e in txn_ends if e <= cut)
                assert wal.last_recovery() is not None
            # The log is writable again after recovery and numbering continues.
            wal.commit(_builder())
            assert _read(work)[0] == [*range(1, complete + 1), complete + 1]

    def test_header_only_segment_is_repaired(self, tmp_path: Path) -> None:
        _write(tmp_path, [1, 1], segment_bytes=100)
        last = sorted(tmp_path.glob("*.wal"))[-1]
        last.write_bytes(last.read_bytes()[:10])  # crash while creating the segment
        seqs, wal = _read(tmp_path)
        assert seqs == [1]
        wal.commit(_builder())
        assert _read(tmp_path)[0] == [1, 2]


class TestCorruption:
    """A bad frame that is not the tail raises WalCorruptError with file and offset."""

    @pytest.mark.parametrize("where", ["header", "payload", "checksum"])
    def test_flip_in_a_middle_frame(self, tmp_path: Path, where: str) -> None:
        _write(tmp_path, [1, 1, 1])
        segment = sorted(tmp_path.glob("*.wal"))[0]
        start, end = _frame_offsets(segment)[1]
        offset = {"header": start + 9, "payload": start + 60, "checksum": end - 3}[where]
        data = bytearray(segment.read_bytes())
        data[offset] ^= 0x10
        segment.write_bytes(bytes(data))
        with pytest.raises(WalCorruptError) as info:
            _read(tmp_path)
        assert info.value.path == str(segment)
        assert info.value.offset == start
        assert segment.stat().st_size == len(data)  # nothing was truncated

    def test_flip_in_a_sealed_segment(self, tmp_path: Path) -> None:
        _write(tmp_path, [1, 1, 1], segment_bytes=100)  # one frame per segment
        first = sorted(tmp_path.glob("*.wal"))[0]
        data = bytearray(first.read_bytes())
        data[-5] ^= 0xFF
        first.write_bytes(bytes(data))
        with pytest.raises(WalCorruptError, match="sealed") as info:
            _read(tmp_path)
        assert info.value.path == str(first)

    @pytest.mark.parametrize("where", ["header", "payload", "checksum", "last byte"])
    def test_flip_in_the_last_frame_is_corruption(self, tmp_path: Path, where: str) -> None:
        """The last frame is all there but fails its checksum: it may be an
        acknowledged write, so it is refused (never taken for a torn tail)."""
        _write(tmp_path, [1, 1, 1])
        segment = sorted(tmp_path.glob("*.wal"))[0]
        start, end = _frame_offsets(segment)[2]
        offset = {"header": start + 9, "payload": start + 50, "checksum": end - 3}.get(
            where, end - 1
        )
        data = bytearray(segment.read_bytes())
        data[offset] ^= 0x01
        segment.write_bytes(bytes(data))
        with pytest.raises(WalCorruptError, match="steme doctor --truncate-at") as info:
            _read(tmp_path)
        assert (info.value.path, info.value.offset) == (str(segment), start)
        assert segment.read_bytes() == bytes(data)  # nothing was truncated

    def test_zero_filled_tail_is_residue(self, tmp_path: Path) -> None:
        """A file extended past what reached the disk (whole pages of zeros after the
        first page of an unfinished frame) is crash residue; so is a tail of zeros."""
        big = pa.table({"x": list(range(3000))})  # a frame of several pages

        def build(seq: int, last: int) -> list[PreparedFrame]:
            return [PreparedFrame(1, seq, last + 1, big)]

        _write(tmp_path, [1, 1])
        segment = sorted(tmp_path.glob("*.wal"))[0]
        data = segment.read_bytes()
        wal = WriteAheadLog(tmp_path / "longer", sink=lambda frames: None)
        for _ in range(2):
            wal.commit(_builder())
        wal.commit(build)
        longer = sorted((tmp_path / "longer").glob("*.wal"))[0].read_bytes()
        assert len(longer) > 3 * 4096
        torn = longer[:4096] + b"\0" * 8192  # the first page arrived, the next two did not
        segment.write_bytes(torn)
        seqs, wal = _read(tmp_path)
        assert seqs == [1, 2]
        assert wal.recovered[0].offset == len(data)
        assert segment.stat().st_size == len(data)
        segment.write_bytes(data + b"\0" * 100)  # nothing of the frame arrived
        assert _read(tmp_path)[0] == [1, 2]
        damaged = bytearray(longer)  # all pages there, one byte flipped: corruption
        damaged[5000] ^= 0x01
        segment.write_bytes(bytes(damaged))
        with pytest.raises(WalCorruptError):
            _read(tmp_path)

    def test_sequence_gap_is_corruption(self, tmp_path: Path) -> None:
        _write(tmp_path, [1, 1, 1])
        segment = sorted(tmp_path.glob("*.wal"))[0]
        frames = _frame_offsets(segment)
        data = segment.read_bytes()
        # Drop the middle frame whole: the remaining frames are valid but out of sequence.
        segment.write_bytes(data[: frames[1][0]] + data[frames[1][1] :])
        with pytest.raises(WalCorruptError, match="sequence"):
            _read(tmp_path)

    def test_unlocked_reader_does_not_truncate(self, tmp_path: Path) -> None:
        # A reader that meets an incomplete tail takes the lock to decide; with the
        # writer holding it, the reader waits instead of cutting the writer's frame.
        _write(tmp_path, [1])
        seqs, _ = _read(tmp_path)
        assert seqs == [1]
