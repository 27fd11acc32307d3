"""Lake options: a small frozen dataclass with named defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

from steme_lake._exceptions import ValidationError
from steme_lake.query._options import ResolutionOptions
from steme_lake.storage.tables import VERIFY_MODES
from steme_lake.wal import DEFAULT_MAX_FRAME_BYTES, DEFAULT_SEGMENT_BYTES

__all__ = ["LakeOptions"]

DEFAULT_FLUSH_BYTES = 64 * 1024 * 1024
DEFAULT_FLUSH_AGE_SECONDS = 300.0
DEFAULT_COMPACT_MIN_FILES = 8
DEFAULT_VACUUM_RETAIN_SECONDS = 3600.0
DEFAULT_MAX_FUTURE_SECONDS = 300.0
DEFAULT_SIGNATURE_MAX_AGE_SECONDS = 300.0
STATE_INDEX_MODES = ("background", "eager", "off")


@dataclass(frozen=True, slots=True)
class LakeOptions:
    """How a lake flushes, compacts and checks itself.

    Attributes
    ----------
    flush_bytes
        Flush the WAL tail to Parquet once it holds this many bytes.
    flush_age_seconds
        ... or once unflushed data is this old (checked at each commit).
    segment_bytes
        Start a new WAL segment once the current one reaches this size.
    max_frame_bytes
        Largest encoded commit frame; bulk writes are split below it.
    compact_min_files
        Merge a (table, day) partition once it has this many files.
    verify
        ``"first_use"`` checks each Parquet file's BLAKE3 the first time this
        process reads it, ``"open"`` checks all files at open, ``"off"`` never.
    vacuum_retain_seconds
        Files dropped by compaction stay this long for readers still using them.
    max_future_seconds
        How far ahead of the clock an ``at=`` time (or a client's ``signed_at``)
        may be.
    signature_max_age_seconds
        How old a client's content signature (``signed_at``) may be at commit;
        within this window each such signature is accepted once (replays are
        refused).
    resolution
        How questions are answered: half-lives, default and seed trust, the
        skeptic's threshold (`ResolutionOptions`).
    state_index
        The in-memory current-state index that answers point queries without
        scanning: ``"background"`` builds it after open (queries scan until it
        is ready; loaded from its checkpoint, a fraction of a second, they
        wait for it), ``"eager"`` builds it during open, ``"off"`` never
        (batch jobs that only scan). A local lake's index is written down
        under ``state/`` once it is big (`docs/format.md`).
    clock_start
        Stamp this process's records on a story's clock: it reads this time
        (ISO-8601) when the lake opens and runs at real speed from there. For
        demos, drills and notebooks that follow an incident ("03:00, the pager
        says..."), so their questions and corrections land in the incident's
        night, not months later. Times still never go backwards (a record is
        never stamped before the lake's last one), and a clock ahead of the
        real one is refused. None (the default): the system clock.
    """

    flush_bytes: int = DEFAULT_FLUSH_BYTES
    flush_age_seconds: float = DEFAULT_FLUSH_AGE_SECONDS
    segment_bytes: int = DEFAULT_SEGMENT_BYTES
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    compact_min_files: int = DEFAULT_COMPACT_MIN_FILES
    verify: str = "first_use"
    vacuum_retain_seconds: float = DEFAULT_VACUUM_RETAIN_SECONDS
    max_future_seconds: float = DEFAULT_MAX_FUTURE_SECONDS
    signature_max_age_seconds: float = DEFAULT_SIGNATURE_MAX_AGE_SECONDS
    resolution: ResolutionOptions = field(default_factory=ResolutionOptions)
    state_index: str = "background"
    clock_start: str | None = None

    def __post_init__(self) -> None:
        if self.clock_start is not None:
            from steme_lake._utils.timeparse import now_us, to_us

            if to_us(self.clock_start, name="clock_start") > now_us():
                raise ValidationError(
                    f"clock_start {self.clock_start!r} is in the future; a story's clock "
                    "replays the past (records are never stamped ahead of real time)"
                )
        if self.verify not in VERIFY_MODES:
            raise ValidationError(f"verify must be one of {VERIFY_MODES}, got {self.verify!r}")
        for name in ("flush_bytes", "segment_bytes", "max_frame_bytes"):
            if getattr(self, name) < 1024:
                raise ValidationError(f"{name} must be at least 1024 bytes")
        if self.state_index not in STATE_INDEX_MODES:
            raise ValidationError(
                f"state_index must be one of {STATE_INDEX_MODES}, got {self.state_index!r}"
            )
        if self.compact_min_files < 2:
            raise ValidationError("compact_min_files must be at least 2")
