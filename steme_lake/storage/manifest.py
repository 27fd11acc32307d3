"""Manifests: which Parquet files make up the lake, one immutable JSON per version.

``_manifest/<version:020d>.json`` is published with put-if-absent, so two
flushers can never both publish version N. The newest *good* version is the
lake. Each file entry carries its row count, byte size, BLAKE3, sequence and
time range, so corruption is detected and time filters can skip whole files.

A manifest is the word on which WAL segments are retired, so it is checked
before it is believed (``docs/format.md``, "Manifest"):

- its ``checksum`` (BLAKE3 of the canonical JSON of everything else) must
  match, so one changed digit of ``flushed_seq`` is caught;
- its entries must agree with themselves: each path names its table, date and
  sequence range; no path twice; no overlapping sequence ranges in one
  (table, day); ``flushed_seq`` is the highest sequence any file holds.

A damaged newest version is skipped for the previous good one
(`load_good`); the caller checks that the WAL still covers what the skipped
versions had flushed. Never "nothing": if no version is good, the error says so.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import blake3

from steme_lake._exceptions import StorageCorruptError, StorageError
from steme_lake._utils.timeparse import now_us
from steme_lake.model.schema import RecordKind
from steme_lake.storage.fs import LakeFS

__all__ = [
    "FILE_NAME",
    "MANIFEST_DIR",
    "FileEntry",
    "LoadedManifest",
    "Manifest",
    "load_good",
    "load_latest",
    "publish",
]

MANIFEST_DIR = "_manifest"
FORMAT = "steme_lake/manifest/v2"
FORMAT_V1 = "steme_lake/manifest/v1"  # no checksum; still read
_TABLES = frozenset(kind.table for kind in RecordKind)
FILE_NAME = re.compile(
    r"^tables/(?P<table>[a-z_]+)/date=(?P<date>\d{4}-\d{2}-\d{2})/"
    r"(?P<min>\d{20})-(?P<max>\d{20})-v(?P<version>\d{8,})\.parquet$"
)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One immutable Parquet file of one table."""

    path: str
    table: str
    date: str
    rows: int
    bytes: int
    blake3: str
    min_seq: int
    max_seq: int
    min_time: int
    max_time: int

    def problems(self) -> list[str]:
        """What is inconsistent in this entry (empty when it agrees with itself)."""
        out = []
        named = FILE_NAME.match(self.path)
        if self.table not in _TABLES:
            out.append(f"{self.path}: unknown table {self.table!r}")
        if named is None:
            out.append(f"{self.path}: not a lake file name (tables/<table>/date=.../...)")
        else:
            if named["table"] != self.table:
                out.append(f"{self.path}: the entry says table {self.table!r}")
            if named["date"] != self.date:
                out.append(f"{self.path}: the entry says date {self.date!r}")
            if (int(named["min"]), int(named["max"])) != (self.min_seq, self.max_seq):
                out.append(f"{self.path}: the entry says sequences {self.min_seq}..{self.max_seq}")
        if self.rows <= 0 or self.bytes <= 0:
            out.append(f"{self.path}: {self.rows} rows in {self.bytes} bytes")
        if self.min_seq > self.max_seq or self.min_time > self.max_time:
            out.append(f"{self.path}: its sequence or time range runs backwards")
        if not _HEX64.match(self.blake3):
            out.append(f"{self.path}: its checksum is not a BLAKE3 hash")
        return out


@dataclass(frozen=True, slots=True)
class Manifest:
    """One version of the lake's file list."""

    version: int = 0
    flushed_seq: int = 0
    flushed_time: int = 0
    created_at: int = 0
    files: tuple[FileEntry, ...] = ()
    # Files dropped from the lake by compaction and not yet deleted:
    # (path, version that dropped it, time). Vacuum forgets them once deleted.
    removed: tuple[tuple[str, int, int], ...] = field(default_factory=tuple)
    # Sequence ranges (first, last) that `steme doctor --repair` found in no file
    # and no WAL segment: lost before the repair, written down so that the
    # manifest still accounts for every sequence up to ``flushed_seq``.
    lost: tuple[tuple[int, int], ...] = field(default_factory=tuple)
    # On object storage: the id of the home (WAL) that publishes; another home's
    # writer is refused (its sequence numbers would collide). "" on a local lake.
    writer: str = ""

    def files_of(self, table: str) -> list[FileEntry]:
        return [f for f in self.files if f.table == table]

    def _body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "format": FORMAT,
            "version": self.version,
            "flushed_seq": self.flushed_seq,
            "flushed_time": self.flushed_time,
            "created_at": self.created_at,
            "files": [asdict(f) for f in self.files],
            "removed": [list(r) for r in self.removed],
        }
        if self.lost:
            body["lost"] = [list(r) for r in self.lost]
        if self.writer:
            body["writer"] = self.writer
        return body

    def to_json(self) -> bytes:
        body = self._body()
        body["checksum"] = _checksum(body)
        return json.dumps(body, indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes, *, path: str) -> Manifest:
        """Parse and check a manifest; `StorageCorruptError` names what is wrong."""
        try:
            body: dict[str, Any] = json.loads(data)
            if not isinstance(body, dict):
                raise ValueError("not a JSON object")
            form = body.get("format")
            if form == FORMAT:
                stated = body.pop("checksum", None)
                if stated != _checksum(body):
                    raise StorageCorruptError(
                        "manifest checksum does not match its contents (the file was changed "
                        "or damaged after it was written)",
                        path=path,
                    )
            elif form != FORMAT_V1:
                raise ValueError(f"unknown format {form!r}")
            manifest = cls(
                version=int(body["version"]),
                flushed_seq=int(body["flushed_seq"]),
                flushed_time=int(body["flushed_time"]),
                created_at=int(body["created_at"]),
                files=tuple(FileEntry(**f) for f in body["files"]),
                removed=tuple((str(p), int(v), int(t)) for p, v, t in body["removed"]),
                lost=tuple((int(a), int(b)) for a, b in body.get("lost", ())),
                writer=str(body.get("writer", "")),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise StorageCorruptError(f"manifest is not readable: {exc}", path=path) from exc
        problems = manifest.problems()
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            raise StorageCorruptError(
                "manifest contradicts itself: " + "; ".join(problems[:3]) + more, path=path
            )
        return manifest

    def problems(self) -> list[str]:
        """Every way the manifest disagrees with itself (empty when consistent)."""
        out: list[str] = []
        seen: set[str] = set()
        by_day: dict[tuple[str, str], list[FileEntry]] = {}
        for entry in self.files:
            out.extend(entry.problems())
            if entry.path in seen:
                out.append(f"{entry.path} is listed twice")
            seen.add(entry.path)
            by_day.setdefault((entry.table, entry.date), []).append(entry)
        for entries in by_day.values():
            entries.sort(key=lambda e: e.min_seq)
            for a, b in itertools.pairwise(entries):
                if b.min_seq <= a.max_seq:
                    out.append(f"{a.path} and {b.path} hold the same sequence numbers")
        top = max((e.max_seq for e in self.files), default=0)
        top = max(top, max((last for _, last in self.lost), default=0))
        if top != self.flushed_seq:
            out.append(
                f"flushed_seq is {self.flushed_seq} but the files hold sequences up to {top}"
            )
        return out

    def next(self, **changes: Any) -> Manifest:
        return replace(self, version=self.version + 1, created_at=now_us(), **changes)


def _checksum(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return str(blake3.blake3(canonical.encode()).hexdigest())


def manifest_name(version: int) -> str:
    return f"{version:020d}.json"


def versions(fs: LakeFS) -> list[int]:
    """The published versions on disk, oldest first."""
    return sorted(
        int(name[:-5])
        for name in fs.listdir(MANIFEST_DIR)
        if name.endswith(".json") and name[:-5].isdigit()
    )


def latest_version(fs: LakeFS) -> int:
    return max(versions(fs), default=0)


def load_version(fs: LakeFS, version: int) -> Manifest:
    if version == 0:
        return Manifest()
    rel = f"{MANIFEST_DIR}/{manifest_name(version)}"
    path = fs.where(rel)
    try:
        data = fs.read_bytes(rel)
    except OSError as exc:
        raise StorageCorruptError(f"manifest cannot be read ({exc})", path=path) from exc
    manifest = Manifest.from_json(data, path=path)
    if manifest.version != version:
        raise StorageCorruptError(
            f"manifest says version {manifest.version}, its name says {version}", path=path
        )
    return manifest


@dataclass(frozen=True, slots=True)
class LoadedManifest:
    """The newest good manifest, and the newer versions skipped as damaged."""

    manifest: Manifest
    latest: int  # the newest version on disk, good or not
    skipped: tuple[StorageCorruptError, ...] = ()


def load_good(fs: LakeFS) -> LoadedManifest:
    """The newest version that reads and checks as good, with the damaged versions
    above it (an empty manifest for a new lake). `StorageCorruptError` if every
    version on disk is damaged: never "nothing" in place of a damaged lake."""
    found = versions(fs)
    latest = max(found, default=0)
    skipped: list[StorageCorruptError] = []
    for version in reversed(found):
        try:
            return LoadedManifest(load_version(fs, version), latest, tuple(skipped))
        except StorageCorruptError as exc:
            skipped.append(exc)
    if skipped:
        raise StorageCorruptError(
            f"none of the {len(found)} manifest versions is good ("
            + "; ".join(str(e) for e in skipped[:2])
            + "); run `steme doctor --repair` to rebuild one from the Parquet files and the WAL",
            path=fs.where(MANIFEST_DIR),
        )
    return LoadedManifest(Manifest(), 0)


def load_latest(fs: LakeFS) -> Manifest:
    """The newest version, which must be good (`load_good` falls back instead)."""
    return load_version(fs, latest_version(fs))


def try_publish(fs: LakeFS, manifest: Manifest) -> bool:
    """Publish a new version; False if that version exists already (a lost race)."""
    rel = f"{MANIFEST_DIR}/{manifest_name(manifest.version)}"
    return fs.put_if_absent(rel, manifest.to_json())


def publish(fs: LakeFS, manifest: Manifest) -> None:
    """Publish a new version; refuses if that version already exists."""
    if not try_publish(fs, manifest):
        raise StorageError(
            f"manifest version {manifest.version} was published by another process "
            "at the same time; retry the flush"
        )


def fall_back(fs: LakeFS, loaded: LoadedManifest, *, wal_first_seq: int | None) -> Manifest:
    """Accept the newest good version in place of the damaged newer ones, if that
    loses nothing, and publish it again as the newest version (so every process,
    and the next flush, goes on from it). The damaged files stay for inspection.

    Nothing is lost when the WAL still holds every frame after the good version's
    ``flushed_seq`` (flushes retire segments only after publishing, so the frames
    the damaged versions had flushed are either still in the WAL or in their
    Parquet files alone; in the second case this refuses, naming the repair).
    """
    good = loaded.manifest
    damaged = "; ".join(str(e) for e in loaded.skipped)
    if wal_first_seq is not None and wal_first_seq > good.flushed_seq + 1:
        raise StorageCorruptError(
            f"the newest manifest is damaged ({damaged}); the newest good version, "
            f"{good.version}, covers sequences up to {good.flushed_seq}, but the WAL begins "
            f"at {wal_first_seq}: sequences {good.flushed_seq + 1}..{wal_first_seq - 1} are "
            "only in Parquet files that no good manifest lists. Nothing was changed: run "
            "`steme doctor` to see them and `steme doctor --repair` to write a good manifest",
            path=fs.where(MANIFEST_DIR),
        )
    healed = replace(good, version=loaded.latest + 1, created_at=now_us())
    publish(fs, healed)
    return healed


def published(fs: LakeFS, manifest: Manifest) -> None:
    """Read back a version just published and check it is the one meant: a WAL
    segment is retired only on the word of a manifest that reads back as written."""
    back = load_version(fs, manifest.version)
    if back != manifest:
        raise StorageCorruptError(
            f"manifest version {manifest.version} reads back different from what was "
            "written; no WAL segment was retired",
            path=fs.where(f"{MANIFEST_DIR}/{manifest_name(manifest.version)}"),
        )
