"""Manifests: which Parquet files make up the lake, one immutable JSON per version.

``_manifest/<version:020d>.json`` is published with put-if-absent, so two
flushers can never both publish version N. The newest version is the lake.
Each file entry carries its row count, byte size, BLAKE3, sequence and time
range, so corruption is detected and time filters can skip whole files.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from steme_lake._exceptions import StorageCorruptError, StorageError
from steme_lake._utils.timeparse import now_us
from steme_lake.storage.fs import LakeFS

__all__ = ["MANIFEST_DIR", "FileEntry", "Manifest", "load_latest", "publish"]

MANIFEST_DIR = "_manifest"
FORMAT = "steme_lake/manifest/v1"


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


@dataclass(frozen=True, slots=True)
class Manifest:
    """One version of the lake's file list."""

    version: int = 0
    flushed_seq: int = 0
    flushed_time: int = 0
    created_at: int = 0
    files: tuple[FileEntry, ...] = ()
    # Files dropped from the lake by compaction: (path, version that dropped it, time).
    removed: tuple[tuple[str, int, int], ...] = field(default_factory=tuple)

    def files_of(self, table: str) -> list[FileEntry]:
        return [f for f in self.files if f.table == table]

    def to_json(self) -> bytes:
        body = {
            "format": FORMAT,
            "version": self.version,
            "flushed_seq": self.flushed_seq,
            "flushed_time": self.flushed_time,
            "created_at": self.created_at,
            "files": [asdict(f) for f in self.files],
            "removed": [list(r) for r in self.removed],
        }
        return json.dumps(body, indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes, *, path: str) -> Manifest:
        try:
            body: dict[str, Any] = json.loads(data)
            if body.get("format") != FORMAT:
                raise ValueError(f"unknown format {body.get('format')!r}")
            return cls(
                version=int(body["version"]),
                flushed_seq=int(body["flushed_seq"]),
                flushed_time=int(body["flushed_time"]),
                created_at=int(body["created_at"]),
                files=tuple(FileEntry(**f) for f in body["files"]),
                removed=tuple((str(p), int(v), int(t)) for p, v, t in body["removed"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise StorageCorruptError(f"manifest is not readable: {exc}", path=path) from exc

    def next(self, **changes: Any) -> Manifest:
        return replace(self, version=self.version + 1, created_at=now_us(), **changes)


def manifest_name(version: int) -> str:
    return f"{version:020d}.json"


def latest_version(fs: LakeFS) -> int:
    versions = [
        int(name[:-5])
        for name in fs.listdir(MANIFEST_DIR)
        if name.endswith(".json") and name[:-5].isdigit()
    ]
    return max(versions, default=0)


def load_version(fs: LakeFS, version: int) -> Manifest:
    if version == 0:
        return Manifest()
    rel = f"{MANIFEST_DIR}/{manifest_name(version)}"
    return Manifest.from_json(fs.read_bytes(rel), path=str(fs.path(rel)))


def load_latest(fs: LakeFS) -> Manifest:
    return load_version(fs, latest_version(fs))


def publish(fs: LakeFS, manifest: Manifest) -> None:
    """Publish a new version; refuses if that version already exists."""
    rel = f"{MANIFEST_DIR}/{manifest_name(manifest.version)}"
    if not fs.put_if_absent(rel, manifest.to_json()):
        raise StorageError(
            f"manifest version {manifest.version} was published by another process "
            "at the same time; retry the flush"
        )
