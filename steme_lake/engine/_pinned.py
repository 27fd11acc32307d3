"""A lake's consistent view, pinned so that another process can read it itself.

The driver pins what it would read (one manifest version and the unflushed
tail, as `Lake._view` takes them); a worker, in another process or on another
machine, opens the files that manifest lists straight from where the lake
lives (its folder, or its object-storage prefix with the same
``storage_options``) and sees exactly the rows the driver would have seen,
in the same order. Only the tail (rows the writer has not flushed yet, a few
megabytes at most) travels with the pin.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from steme_lake.model.schema import RecordKind
from steme_lake.query._candidates import Tables
from steme_lake.storage.fs import LakeFS
from steme_lake.storage.manifest import Manifest
from steme_lake.storage.objectstore import ObjectStoreFS, is_remote
from steme_lake.storage.tables import FileVerifier, empty_table, scan_table

if TYPE_CHECKING:
    from steme_lake.lake import Lake

__all__ = ["PinnedView", "pin"]


@dataclass(frozen=True, slots=True)
class PinnedView:
    """What a worker needs to read the lake as the driver saw it (picklable)."""

    uri: str  # the lake's folder or object-storage URL
    storage_options: dict[str, Any]
    manifest: Manifest
    tails: dict[str, pa.Table]  # by table name: rows above the manifest's flushed_seq
    covered: int  # the highest sequence number the view holds
    verify: str = "first_use"

    def scan(self, kind: RecordKind) -> pl.LazyFrame:
        """One table as the driver would have read it."""
        fs = _fs_for(self.uri, self.storage_options)
        tail = self.tails.get(kind.table, empty_table(kind))
        return scan_table(fs, self.manifest, tail, kind, _verifier_for(fs, self.verify))

    def tables(self) -> Tables:
        """Every table but the audit log (see `audit`)."""
        return Tables(
            assertions=self.scan(RecordKind.ASSERTION),
            votes=self.scan(RecordKind.VOTE),
            lifecycle=self.scan(RecordKind.LIFECYCLE),
            supersessions=self.scan(RecordKind.SUPERSESSION),
            constraints=self.scan(RecordKind.CONSTRAINT),
            confirmations=self.scan(RecordKind.CONFIRMATION),
            trust=self.scan(RecordKind.TRUST),
        )

    def audit(self) -> pl.LazyFrame:
        return self.scan(RecordKind.AUDIT)


def pin(lake: Lake) -> PinnedView:
    """The lake's current view (every acknowledged write), pinned for workers."""
    lake._check_open()
    lake._refresh()
    with lake._lock:
        manifest = lake._manifest
        tail_seq, tails = lake._tail.snapshot()
    fs = lake._fs
    if isinstance(fs, ObjectStoreFS):
        uri, options = fs.display, dict(fs.storage_options)
    else:
        uri, options = str(fs.root), {}
    return PinnedView(
        uri=uri,
        storage_options=options,
        manifest=manifest,
        tails={kind.table: t for kind, t in tails.items() if t.num_rows},
        covered=max(manifest.flushed_seq, tail_seq),
        verify=lake.options.verify,
    )


# One filesystem (and, for object storage, one download cache) per lake per worker
# process: a worker that runs several tasks on the same lake downloads each file once.
_FS: dict[tuple[str, str], LakeFS] = {}
_VERIFIERS: dict[tuple[int, str], FileVerifier] = {}
_LOCK = threading.Lock()


def _fs_for(uri: str, options: dict[str, Any]) -> LakeFS:
    key = (uri, repr(sorted(options.items())))
    with _LOCK:
        fs = _FS.get(key)
        if fs is None:
            if is_remote(uri):
                home = tempfile.mkdtemp(prefix="steme-worker-")
                atexit.register(shutil.rmtree, home, True)
                fs = ObjectStoreFS(uri, options, home=home)
            else:
                fs = LakeFS(uri)
            _FS[key] = fs
        return fs


def _verifier_for(fs: LakeFS, mode: str) -> FileVerifier:
    key = (id(fs), mode)
    with _LOCK:
        verifier = _VERIFIERS.get(key)
        if verifier is None:
            verifier = _VERIFIERS[key] = FileVerifier(fs, mode)
        return verifier
