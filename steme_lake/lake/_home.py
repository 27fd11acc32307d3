"""The local folder of a lake on object storage: its WAL, locks and file cache.

``sl.open("s3://bucket/lake", wal="./wal")`` publishes Parquet files and
manifests to the bucket and keeps here what needs a local disk. The folder
remembers its lake and its writer id, so one WAL folder never feeds two lakes
and a second writer is noticed (`Lake._claim_writer`). A read-only open gets a
temporary folder, deleted when the process ends.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steme_lake._exceptions import StorageError, ValidationError
from steme_lake._utils.durable import makedirs_durable
from steme_lake.storage.fs import LakeFS
from steme_lake.storage.objectstore import ObjectStoreFS

__all__ = ["FORMAT_FILE", "FORMAT_TEXT", "HOME_FILE", "Home"]

FORMAT_FILE = "steme_lake.json"
FORMAT_TEXT = b'{"format": "steme_lake/lake/v1"}\n'
HOME_FILE = "home.json"
HOME_FORMAT = "steme_lake/home/v1"


@dataclass(frozen=True, slots=True)
class Home:
    """An object-storage lake's files store and its local folder."""

    fs: ObjectStoreFS
    writer: str  # this folder's WAL id, named in the manifests it publishes
    temporary: bool  # a read-only open's own folder, deleted at exit

    @classmethod
    def open(
        cls,
        url: str,
        storage_options: dict[str, Any] | None,
        *,
        wal: str | os.PathLike[str] | None,
        read_only: bool,
    ) -> Home:
        if wal is None and not read_only:
            raise ValidationError(
                f"{url}: a lake on object storage keeps its write-ahead log on a local disk "
                "(fsync and locks): pass wal='./wal' (a local folder) to write, or "
                "read_only=True to only read"
            )
        temporary = wal is None
        folder = Path(tempfile.mkdtemp(prefix="steme-lake-reader-") if wal is None else wal)
        try:
            fs = ObjectStoreFS(url, storage_options, home=folder)
            writer = _check_home(fs, folder, temporary=temporary)
            _check_store(fs, create=not read_only)
        except BaseException:
            if temporary:
                shutil.rmtree(folder, ignore_errors=True)
            raise
        return cls(fs, writer, temporary)

    def close(self) -> None:
        """A read-only open's folder goes when the process ends, not at close: frames
        built before `close` still read their files afterwards, as on a local lake."""
        if self.temporary:
            atexit.register(shutil.rmtree, self.fs.root, ignore_errors=True)


def _check_store(fs: ObjectStoreFS, *, create: bool) -> None:
    """The prefix holds a lake (or nothing, and one is created); else a clear error."""
    names = fs.check_bucket()
    if FORMAT_FILE in names:
        try:
            form = json.loads(fs.read_bytes(FORMAT_FILE)).get("format")
        except (ValueError, AttributeError):
            form = None
        if form != "steme_lake/lake/v1":
            raise ValidationError(
                f"{fs.where(FORMAT_FILE)} is not a steme_lake marker (format {form!r}); "
                "this prefix holds something else: choose another prefix"
            )
        return
    if names:
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise ValidationError(
            f"{fs.display} holds something else ({shown}) and no steme_lake marker: "
            "choose an empty or new prefix for the lake"
        )
    if not create:
        raise StorageError(
            f"there is no lake at {fs.display} (the prefix is empty): check the URL, or "
            "open it with wal='./wal' to create one"
        )
    fs.put_if_absent(FORMAT_FILE, FORMAT_TEXT)


def _check_home(fs: ObjectStoreFS, folder: Path, *, temporary: bool) -> str:
    """The folder's writer id, creating the folder's marker; refuses a folder that
    belongs to another lake or holds something else."""
    marker = folder / HOME_FILE
    if marker.exists():
        try:
            data = json.loads(marker.read_bytes())
            lake, writer = str(data["lake"]), str(data["writer"])
        except (ValueError, KeyError, TypeError) as exc:
            raise StorageError(f"{marker} is damaged ({exc}); move the folder aside") from None
        if lake != fs.display:
            raise ValidationError(
                f"the WAL folder {folder} belongs to the lake {lake}, not {fs.display}: "
                "give each lake its own wal= folder"
            )
        return writer
    if not temporary and folder.is_dir() and any(folder.iterdir()):
        raise ValidationError(
            f"{folder} is a non-empty folder that is not a steme_lake WAL folder; "
            "pass an empty or new folder as wal="
        )
    makedirs_durable(folder)
    writer = uuid.uuid4().hex
    body = {"format": HOME_FORMAT, "lake": fs.display, "writer": writer}
    LakeFS(folder).put_if_absent(HOME_FILE, json.dumps(body, indent=1).encode() + b"\n")
    return str(json.loads(marker.read_bytes())["writer"])  # a racing opener's, if it won
