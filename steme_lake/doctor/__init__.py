"""``steme doctor``: the lake rebuilt from its WAL and Parquet files, compared
with what its manifest says, and the explicit repairs.

It reads a lake that will not open (a damaged manifest, a damaged last frame),
so it takes a path, not an open `Lake`::

    report = steme_lake.doctor("./lake")              # read only
    report = steme_lake.doctor("./lake", repair=True)  # + a good manifest, if needed
    report = steme_lake.doctor("./lake", truncate_at=1234)  # cut a damaged last frame

Neither repair deletes data: a rebuilt manifest is a new version above the
old ones (which stay), and cut WAL bytes are saved beside the log first.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from steme_lake.doctor._report import DoctorReport, Problem

if TYPE_CHECKING:
    from steme_lake.doctor._repair import Truncation

__all__ = ["DoctorReport", "Problem", "Truncation", "doctor"]


def __getattr__(name: str) -> Any:
    # the checks need pyarrow: imported when used, so `import steme_lake` stays light
    if name == "Truncation":
        from steme_lake.doctor._repair import Truncation

        return Truncation
    raise AttributeError(f"module 'steme_lake.doctor' has no attribute {name!r}")


def doctor(
    path: str | os.PathLike[str],
    *,
    repair: bool = False,
    truncate_at: int | None = None,
    segment: str | None = None,
) -> DoctorReport:
    """Check a lake against its own files; optionally repair it.

    Parameters
    ----------
    path
        The lake folder (it need not open).
    repair
        When the check finds an error, publish a new manifest built from the
        Parquet files on disk and the WAL (never deleting anything); sequences
        found nowhere are written down in it as lost.
    truncate_at
        Cut the last WAL segment (or ``segment``) at this byte offset, the one a
        `WalCorruptError` names; the bytes are saved to ``wal/dropped-*.bin`` first.

    Returns
    -------
    DoctorReport
        Every difference, with the file and what to do; ``ok`` when none is an
        error. After a repair, the lake as checked again.
    """
    from steme_lake.doctor._examine import examine, open_fs, report
    from steme_lake.doctor._repair import check_repairable, rebuild_manifest, truncate_wal
    from steme_lake.query import _checkpoint

    fs = open_fs(path)
    done: list[str] = []

    def forget_checkpoints() -> None:
        # The state index's checkpoints may hold rows the repair left out.
        if not fs.remote and (n := _checkpoint.clear(fs.root)):
            done.append(f"removed {n} state index checkpoint(s): the next open builds it")

    if truncate_at is not None:
        cut = truncate_wal(fs.root, truncate_at, segment)
        done.append(
            f"cut {cut.segment} at byte {cut.offset} ({cut.dropped_bytes} bytes, first frame "
            f"{cut.frame}); saved to {cut.saved_to}"
        )
        forget_checkpoints()
    found = examine(fs)
    if repair and any(p.severity == "error" for p in found.problems):
        check_repairable(found)
        manifest, lost = rebuild_manifest(found)
        done.append(
            f"published manifest version {manifest.version} ({len(manifest.files)} files, "
            f"flushed_seq {manifest.flushed_seq})"
            + (f"; {len(lost)} sequence numbers are in no file and no WAL segment" if lost else "")
        )
        forget_checkpoints()
        found = examine(fs)
    return report(found, tuple(done))
