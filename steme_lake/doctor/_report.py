"""What `doctor` found: problems with the file and what to do, and the counts."""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["DoctorReport", "Problem"]

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One difference between what the manifest says and what is on disk."""

    severity: Severity
    path: str
    detail: str
    fix: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.path}: {self.detail}\n  fix: {self.fix}"


def ranges(seqs: list[int]) -> list[tuple[int, int]]:
    """Sorted sequence numbers as (first, last) runs.

    Examples
    --------
    >>> ranges([1, 2, 3, 7, 9, 10])
    [(1, 3), (7, 7), (9, 10)]
    """
    out: list[tuple[int, int]] = []
    for seq in sorted(seqs):
        if out and seq == out[-1][1] + 1:
            out[-1] = (out[-1][0], seq)
        else:
            out.append((seq, seq))
    return out


def show_ranges(seqs: list[int], limit: int = 4) -> str:
    runs = ranges(seqs)
    text = ", ".join(f"{a}" if a == b else f"{a}..{b}" for a, b in runs[:limit])
    return text + (f" (and {len(runs) - limit} more runs)" if len(runs) > limit else "")


@dataclass(frozen=True, slots=True)
class DoctorReport:
    """The lake rebuilt from its WAL and Parquet files, compared with its manifest.

    ``problems`` lists every difference (errors first); ``ok`` is True when there
    is no error. ``tables`` counts rows per table: in the files the manifest lists,
    in files on disk it does not list, and in the WAL beyond ``flushed_seq``.
    """

    path: str
    manifest_version: int | None  # the newest good version; None if none is good
    manifest_versions: int
    flushed_seq: int
    wal_first_seq: int | None
    wal_last_seq: int
    tables: dict[str, dict[str, int]]
    problems: tuple[Problem, ...]
    repaired: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    def to_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self.__slots__}
        out["problems"] = [asdict(p) for p in self.problems]
        out["repaired"] = list(self.repaired)
        out["ok"] = self.ok
        return out

    def __str__(self) -> str:
        head = (
            f"{self.path}: manifest v{self.manifest_version} of {self.manifest_versions}, "
            f"flushed to seq {self.flushed_seq}; WAL seq {self.wal_first_seq}..{self.wal_last_seq}"
        )
        lines = [head]
        for table, counts in self.tables.items():
            if any(counts.values()):
                lines.append(
                    f"  {table:<14} {counts['listed_rows']:>12,} rows in files"
                    f" {counts['unlisted_rows']:>10,} unlisted {counts['wal_rows']:>10,} in WAL"
                )
        lines += [str(p) for p in self.problems]
        lines += [f"repaired: {r}" for r in self.repaired]
        lines.append("ok: nothing is wrong" if self.ok else "NOT OK: see the errors above")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(p.severity)}</td><td>{html.escape(p.path)}</td>"
            f"<td>{html.escape(p.detail)}</td><td>{html.escape(p.fix)}</td></tr>"
            for p in self.problems
        )
        verdict = "ok" if self.ok else "<b>NOT OK</b>"
        return (
            f"<p>{html.escape(self.path)}: {verdict}; manifest v{self.manifest_version}, "
            f"flushed to seq {self.flushed_seq}</p>"
            "<table><tr><th>severity</th><th>where</th><th>what</th><th>fix</th></tr>"
            f"{rows}</table>"
        )
