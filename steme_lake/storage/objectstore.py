"""A lake's Parquet files and manifests on object storage (S3 and compatibles).

The write-ahead log, the locks and a cache of the immutable files stay on
this machine's disk (the *home* folder): fsync and ``flock`` need a local
file system, an object store offers neither. Everything that is published
goes to the store through fsspec, with the ``storage_options`` passed as
they are (s3fs: ``key``, ``secret``, ``endpoint_url``, ``client_kwargs`` and the rest).

- A data file is one PUT under a name never used before (the sequence range
  and the manifest version are in it): whole or absent, never partial.
- A manifest version is published with a conditional PUT (``If-None-Match:
  *``): of two flushers, exactly one wins; the other learns it.
- Reading downloads a file once into the home's cache (names are never
  reused, and each copy is checked against the manifest's BLAKE3), so every
  query reads local Parquet, as on a local lake.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

import fsspec

from steme_lake._exceptions import (
    MissingExtraError,
    StorageCorruptError,
    StorageError,
    ValidationError,
)
from steme_lake.storage.fs import LakeFS

__all__ = ["ObjectStoreFS", "StorageAccessError", "is_remote", "remote_ok"]

T = TypeVar("T")

# How often a process looks for manifests published by another one (a list
# request): the writer installs its own at once; readers see a flush within it.
POLL_SECONDS = 1.0


class StorageAccessError(StorageError):
    """The object store refused the credentials (a `StorageError`)."""


def is_remote(uri: str | os.PathLike[str]) -> bool:
    """Whether ``uri`` names object storage (``s3://bucket/prefix``), not a local folder."""
    text = str(uri)
    if "://" not in text:
        return False
    return text.split("://", 1)[0].lower() not in ("file", "local")


def remote_ok(error: BaseException) -> bool:
    """Whether an error of the store's client is a refusal or an outage (not a bug)."""
    if isinstance(error, OSError):
        return True
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # pragma: no cover - s3fs always brings botocore
        return False
    return isinstance(error, BotoCoreError | ClientError)


class ObjectStoreFS(LakeFS):
    """The lake's published files under one prefix of an object store.

    Parameters
    ----------
    url
        ``s3://bucket/prefix`` (any fsspec protocol that has a driver installed).
    storage_options
        Passed to fsspec as they are.
    home
        The local folder for the WAL, the locks and the cache.
    """

    remote = True

    def __init__(
        self, url: str, storage_options: dict[str, Any] | None, *, home: str | os.PathLike[str]
    ) -> None:
        options = dict(storage_options or {})
        try:
            fs, prefix = fsspec.core.url_to_fs(url, **options)
        except ImportError as exc:
            protocol = url.split("://", 1)[0]
            raise MissingExtraError(
                f"{url!r}: fsspec has no driver for {protocol}:// installed ({exc}); for S3 "
                "install the s3 extra: pip install 'steme_lake[s3]'"
            ) from None
        except (TypeError, ValueError) as exc:
            raise ValidationError(
                f"storage_options {sorted(options)} were refused by the {url.split(':')[0]} "
                f"driver ({exc}); for S3 they are s3fs's: key, secret, endpoint_url, "
                "client_kwargs, anon"
            ) from None
        self.fs = fs
        self.storage_options = options  # for other processes that read the same lake
        self.prefix = prefix.strip("/")
        if not self.prefix or "/" not in self.prefix:
            raise ValidationError(
                f"{url!r}: give the lake its own prefix in the bucket, e.g. "
                f"{url.rstrip('/')}/lake (a lake never shares a bucket's root)"
            )
        self.protocol = url.split("://", 1)[0].lower()
        self.bucket = self.prefix.split("/", 1)[0]
        self.display = f"{self.protocol}://{self.prefix}"
        self.root = Path(home).resolve()
        self.cache = self.root / "cache"
        self._fsync = os.fsync
        self._resolved: dict[str, Path] = {}

    # ----------------------------------------------------------- names

    def key(self, relative: str) -> str:
        """The object key of a lake-relative path; it never leaves the lake's prefix."""
        clean = posixpath.normpath(relative)
        if (
            relative.startswith("/")
            or clean != relative.rstrip("/")
            or clean == ".."
            or clean.startswith("../")
            or "\\" in relative
        ):
            raise ValidationError(f"path {relative!r} would leave the lake's prefix")
        return f"{self.prefix}/{clean}" if clean != "." else self.prefix

    def _local(self, relative: str) -> Path:
        """Where the cache keeps a copy of a published file."""
        return self.cache / self.key(relative)[len(self.prefix) + 1 :]

    def url(self, relative: str) -> str:
        return f"{self.protocol}://{self.key(relative)}"

    def where(self, relative: str) -> str:
        return self.url(relative)

    def path(self, relative: str) -> Path:
        """A local copy of a published file, downloaded on first use."""
        known = self._resolved.get(relative)  # downloaded by this process (`drop_cached` forgets)
        if known is not None:
            return known
        local = self._local(relative)
        if not local.exists():
            self._download([relative])
        self._resolved[relative] = local
        return local

    def fetch(self, relatives: list[str]) -> None:
        missing = [r for r in relatives if r not in self._resolved and not self._local(r).exists()]
        if missing:
            try:
                self._download(missing)
            except FileNotFoundError:
                gone = [r for r in missing if not self.exists(r)]
                raise StorageCorruptError(
                    f"{len(gone)} file(s) listed in the manifest are missing from the bucket "
                    f"(the first: {self.where(gone[0] if gone else missing[0])}); restore them "
                    "from the bucket's versions or a backup",
                    path=self.display,
                ) from None
        if len(self._resolved) >= 100_000:
            self._resolved.clear()
        for relative in relatives:
            self._resolved.setdefault(relative, self._local(relative))

    def _download(self, relatives: list[str]) -> None:
        """Fetch files into the cache: each to a temporary name, renamed when whole."""
        pairs = []
        for rel in relatives:
            final = self._local(rel)
            final.parent.mkdir(parents=True, exist_ok=True)
            pairs.append((rel, final, final.parent / f".tmp-{uuid.uuid4().hex}-{final.name}"))
        try:
            self._call(
                "reading",
                relatives[0],
                self.fs.get,
                [self.key(r) for r, _, _ in pairs],
                [str(t) for _, _, t in pairs],
            )
            for _, final, tmp in pairs:
                tmp.replace(final)
        finally:
            for _, _, tmp in pairs:
                tmp.unlink(missing_ok=True)

    def drop_cached(self, relative: str) -> None:
        self._resolved.pop(relative, None)
        self._local(relative).unlink(missing_ok=True)

    def _cache_copy(self, relative: str, data: bytes) -> Path:
        """Keep what was just published, so this process never downloads it."""
        final = self._local(relative)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".tmp-{uuid.uuid4().hex}-{final.name}"
        tmp.write_bytes(data)
        tmp.replace(final)
        return final

    # ----------------------------------------------------------- calls

    @contextmanager
    def _errors(self, what: str, relative: str) -> Iterator[None]:
        """The store's refusals and outages as a `StorageError` naming what to fix."""
        try:
            yield
        except (FileNotFoundError, FileExistsError, StorageError, ValidationError):
            raise
        except PermissionError as exc:
            raise StorageAccessError(
                f"{what} {self.where(relative)}: access denied ({exc}); check the "
                "credentials in storage_options (key and secret, or the AWS_* variables) "
                "and that they may read and write the bucket"
            ) from None
        except Exception as exc:
            if not remote_ok(exc):
                raise
            kept = (
                "nothing was published and unflushed rows stay in the WAL; "
                if what in ("writing", "publishing", "deleting")
                else ""
            )
            raise StorageError(
                f"{what} {self.where(relative)} failed ({type(exc).__name__}: {exc}); {kept}"
                "check that the object store is reachable (endpoint_url in storage_options) "
                "and the credentials (key and secret, or the AWS_* variables), then try again"
            ) from None

    def _call(self, what: str, relative: str, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        with self._errors(what, relative):
            return fn(*args, **kw)

    # ----------------------------------------------------------- LakeFS

    def makedirs(self, relative: str) -> Path:
        """A folder of the local home (an object store has no folders to make)."""
        path = self.root / relative
        path.mkdir(parents=True, exist_ok=True)
        return path

    def fsync_dir(self, path: Path) -> None:
        """Nothing to sync: a PUT is durable once acknowledged."""

    def write_atomic(self, relative: str, data: bytes) -> Path:
        """One PUT: the object is whole or absent."""
        self._call("writing", relative, self.fs.pipe_file, self.key(relative), data)
        return self._cache_copy(relative, data)

    def write_many(self, files: dict[str, bytes]) -> None:
        """Concurrent PUTs (fsspec's ``pipe`` of many paths), each object whole or absent."""
        if not files:
            return
        first = next(iter(files))
        self._call("writing", first, self.fs.pipe, {self.key(r): d for r, d in files.items()})
        for relative, data in files.items():
            self._cache_copy(relative, data)

    def put_if_absent(self, relative: str, data: bytes) -> bool:
        """A conditional PUT (``If-None-Match: *``); False if the name was taken.

        When the answer is lost (a timeout after the store wrote it), the
        object is read back: it is ours if it holds exactly our bytes."""
        key = self.key(relative)
        try:
            with self._errors("publishing", relative):
                try:
                    self.fs.pipe_file(key, data, mode="create")
                except OSError as exc:
                    if _condition_failed(exc):
                        raise FileExistsError(key) from None
                    raise
        except FileExistsError:
            return False
        except StorageAccessError:
            raise
        except StorageError as exc:
            # The condition failed (the name is taken), or the answer was lost.
            try:
                there = self.read_bytes(relative)
            except FileNotFoundError:
                raise exc from None
            if there != data:
                return False
        self._cache_copy(relative, data)
        return True

    def read_bytes(self, relative: str) -> bytes:
        return bytes(self._call("reading", relative, self.fs.cat_file, self.key(relative)))

    def listdir(self, relative: str) -> list[str]:
        key = self.key(relative)
        try:
            names = self._call("listing", relative, self.fs.ls, key, detail=False, refresh=True)
        except FileNotFoundError:
            return []
        return sorted(posixpath.basename(str(n).rstrip("/")) for n in names)

    def walk(self, relative: str) -> list[tuple[str, int]]:
        key = self.key(relative)
        self.fs.invalidate_cache(key)
        try:
            found = self._call("listing", relative, self.fs.find, key, detail=True)
        except FileNotFoundError:
            return []
        out = []
        for name, info in sorted(found.items()):
            rel = str(name)[len(self.prefix) + 1 :]
            out.append((rel, _mtime_us(info)))
        return out

    def exists(self, relative: str) -> bool:
        key = self.key(relative)
        self.fs.invalidate_cache(posixpath.dirname(key))
        return bool(self._call("checking", relative, self.fs.exists, key))

    def mtime_us(self, relative: str) -> int:
        key = self.key(relative)
        self.fs.invalidate_cache(posixpath.dirname(key))
        return _mtime_us(self._call("checking", relative, self.fs.info, key))

    def remove(self, relative: str) -> None:
        with suppress(FileNotFoundError):
            self._call("deleting", relative, self.fs.rm_file, self.key(relative))
        self.drop_cached(relative)

    def changed(self, relative: str) -> int | None:
        """A stamp that changes every `POLL_SECONDS`: listing costs a request."""
        return int(time.monotonic() / POLL_SECONDS)

    def clear_cache(self) -> None:
        shutil.rmtree(self.cache, ignore_errors=True)
        self._resolved.clear()

    # ----------------------------------------------------------- the lake's place

    def check_bucket(self) -> list[str]:
        """What the lake's prefix holds now (top-level names); a clear error when the
        bucket is missing or the credentials are refused."""
        try:
            self._call("opening", ".", self.fs.ls, self.bucket, detail=False, refresh=True)
        except FileNotFoundError:
            raise StorageError(
                f"the bucket {self.bucket!r} does not exist at this endpoint: create it, or "
                f"fix the URL ({self.display}) or endpoint_url in storage_options"
            ) from None
        return self.listdir(".")


def _condition_failed(error: BaseException) -> bool:
    """The store refused a conditional PUT: the name is taken (412), or another
    conditional write of it is under way (409): either way this one lost."""
    cause = error.__cause__
    code = getattr(cause, "response", {}).get("Error", {}).get("Code")
    return code in ("PreconditionFailed", "ConditionalRequestConflict")


def _mtime_us(info: dict[str, Any]) -> int:
    stamp = info.get("LastModified") or info.get("mtime") or info.get("last_modified")
    if stamp is None:
        return 0
    if hasattr(stamp, "timestamp"):
        return int(stamp.timestamp() * 1_000_000)
    return int(float(stamp) * 1_000_000)
