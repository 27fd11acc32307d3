"""Durable file primitives over fsspec.

The lake's columnar files and manifests go through an fsspec filesystem.
Durability needs more than fsspec's generic API offers, so the local
filesystem gets the full protocol: temporary name, fsync, rename (or hard
link for put-if-absent), directory fsync.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from steme_lake._exceptions import StorageError, ValidationError
from steme_lake._utils.durable import fsync_dir, makedirs_durable, makedirs_durable_many

__all__ = ["LakeFS"]

WRITERS = 8  # files written and fsync'd at once by `LakeFS.write_many` (fsync waits on the disk)


class LakeFS:
    """The lake's root folder, reached through fsspec.

    Parameters
    ----------
    root
        A local path or ``file://`` URL.
    storage_options
        Passed to fsspec as they are.
    fsync
        The fsync function (a test seam for fault injection).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        storage_options: dict[str, Any] | None = None,
        *,
        fsync: Callable[[int], None] = os.fsync,
    ) -> None:
        fs, path = fsspec.core.url_to_fs(str(root), **(storage_options or {}))
        if not isinstance(fs, LocalFileSystem):
            raise ValidationError(
                f"{root!r}: a lake's write-ahead log needs a local folder (fsync and file "
                "locks); use a local path. Engines such as DuckDB or Spark can read the "
                "lake's Parquet files after you copy them to object storage."
            )
        self.fs = fs
        self.root = Path(path).resolve()
        self._fsync = fsync
        # Resolved paths, by lake-relative path: every read names each data file
        # (immutable, under names never reused), and resolving is a system call per
        # path component (2 ms of every query at a few hundred files).
        self._resolved: dict[str, Path] = {}

    remote = False  # object storage (`ObjectStoreFS`) overrides the methods below

    def url(self, relative: str) -> str:
        """Where another engine reads a lake-relative file (a path here; a URL remote)."""
        return str(self.path(relative))

    def where(self, relative: str) -> str:
        """A lake-relative path as messages name it (nothing is fetched)."""
        return str(self.root / relative)

    def fetch(self, relatives: list[str]) -> None:
        """Make files readable at `path` (object storage downloads them at once)."""

    def drop_cached(self, relative: str) -> None:
        """Forget a local copy of a remote file (nothing to forget here)."""

    def exists(self, relative: str) -> bool:
        return self.path(relative).exists()

    def mtime_us(self, relative: str) -> int:
        return self.path(relative).stat().st_mtime_ns // 1000

    def walk(self, relative: str) -> list[tuple[str, int]]:
        """Every file under a folder: (lake-relative path, modified time in µs)."""
        root = self.path(relative)
        if not root.is_dir():
            return []
        return [
            (path.relative_to(self.root).as_posix(), path.stat().st_mtime_ns // 1000)
            for path in sorted(root.rglob("*"))
            if path.is_file()
        ]

    def changed(self, relative: str) -> int | None:
        """A stamp that changes when files are added to a folder (None: no folder)."""
        try:
            return (self.root / relative).stat().st_mtime_ns
        except FileNotFoundError:
            return None

    def path(self, relative: str) -> Path:
        """The absolute path of a lake-relative path; it never leaves the root."""
        known = self._resolved.get(relative)
        if known is not None:
            return known
        resolved = (self.root / relative).resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise ValidationError(f"path {relative!r} would leave the lake folder")
        if len(self._resolved) >= 100_000:
            self._resolved.clear()
        self._resolved[relative] = resolved
        return resolved

    def makedirs(self, relative: str) -> Path:
        """A folder under the root, created (durably: see `makedirs_durable`) if missing."""
        path = self.path(relative)
        with self._io(path, "creating the folder"):
            makedirs_durable(path, self._fsync)
        return path

    @staticmethod
    @contextmanager
    def _io(path: Path, what: str) -> Iterator[None]:
        """An I/O failure as a `StorageError` naming the file (and never retried)."""
        try:
            yield
        except FileExistsError:
            raise
        except OSError as exc:
            raise StorageError(
                f"{what} {path} failed ({exc.strerror or exc}); nothing was published and "
                "the rows stay in the WAL: check the disk (space, permissions, errors) and "
                "flush again"
            ) from exc

    def fsync_dir(self, path: Path) -> None:
        with self._io(path, "syncing the folder"):
            fsync_dir(path, self._fsync)

    def _write_temp(self, final: Path, data: bytes, *, folder_made: bool = False) -> Path:
        with self._io(final, "writing"):
            if not folder_made:
                makedirs_durable(final.parent, self._fsync)
            tmp = final.parent / f".tmp-{uuid.uuid4().hex}-{final.name}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                self._fsync(fd)
            except BaseException:
                os.close(fd)
                tmp.unlink(missing_ok=True)
                raise
            os.close(fd)
        return tmp

    def write_atomic(self, relative: str, data: bytes) -> Path:
        """Write a whole file: temp name, fsync, rename, directory fsync."""
        final = self.path(relative)
        tmp = self._write_temp(final, data)
        with self._io(final, "renaming into place"):
            tmp.replace(final)
        self.fsync_dir(final.parent)
        return final

    def write_many(self, files: dict[str, bytes]) -> None:
        """Write whole files, each as durably as `write_atomic`, and faster.

        The folders are made first (each parent fsync'd once); the files are
        written and fsync'd under temporary names on `WRITERS` threads (an fsync
        waits on the disk, not the CPU, and releases the GIL); then renamed into
        place, and each folder fsync'd once. On a failure the temporaries are
        removed and the error names the first failing file in the given order;
        a file renamed before it stays (unpublished: no manifest names it yet,
        and vacuum removes it).
        """
        finals = [self.path(relative) for relative in files]
        if len(finals) <= 1:
            for relative, data in files.items():
                self.write_atomic(relative, data)
            return
        parents = sorted({final.parent for final in finals})
        with self._io(finals[0].parent, "creating the folders for"):
            makedirs_durable_many(parents, self._fsync)
        datas = list(files.values())
        with ThreadPoolExecutor(max_workers=min(WRITERS, len(finals))) as pool:
            futures = [
                pool.submit(self._write_temp, final, data, folder_made=True)
                for final, data in zip(finals, datas, strict=True)
            ]
            outcomes: list[Path | BaseException] = []
            for future in futures:
                try:
                    outcomes.append(future.result())
                except BaseException as exc:  # noqa: BLE001 - re-raised below, after cleanup
                    outcomes.append(exc)
        failed = next((o for o in outcomes if isinstance(o, BaseException)), None)
        if failed is not None:
            for outcome in outcomes:
                if isinstance(outcome, Path):
                    outcome.unlink(missing_ok=True)
            raise failed
        temps = [o for o in outcomes if isinstance(o, Path)]
        for tmp, final in zip(temps, finals, strict=True):
            with self._io(final, "renaming into place"):
                tmp.replace(final)
        for parent in parents:
            self.fsync_dir(parent)

    def put_if_absent(self, relative: str, data: bytes) -> bool:
        """Publish a whole file only if none exists at that name; False if one does.

        A hard link from a fully written temporary file is atomic and fails
        when the name is taken, so a reader never sees a partial file.
        """
        final = self.path(relative)
        tmp = self._write_temp(final, data)
        try:
            with self._io(final, "publishing"):
                os.link(tmp, final)
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)
        self.fsync_dir(final.parent)
        return True

    def read_bytes(self, relative: str) -> bytes:
        return bytes(self.fs.cat_file(str(self.path(relative))))

    def listdir(self, relative: str) -> list[str]:
        """File names in a folder (empty if it does not exist)."""
        folder = self.path(relative)
        if not folder.is_dir():
            return []
        return sorted(entry.name for entry in os.scandir(folder))

    def remove(self, relative: str) -> None:
        self.path(relative).unlink(missing_ok=True)
