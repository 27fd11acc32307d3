"""A FUSE filesystem that passes everything through to a backing folder and
records, in order, every operation that changes what a disk would hold: file
writes and truncations, fsyncs of files and folders, creations, renames, links
and removals. `tests.powerloss.model` replays a prefix of that record under the
rule of a power cut (only what was fsync'd survives) to build the disk as it
would be found after the cut at that point.

Run as ``python -m tests.powerloss.recorder BACKING MOUNTPOINT LOG``; it serves
in the foreground until unmounted (``fusermount3 -u``), then writes the record
to LOG (pickle). A workload marks its acknowledged writes in the record by
looking up ``<mount>/.powerloss-mark-<n>`` (which does not exist).

This is a test seam (a fault-injecting filesystem), not a mock of the product:
the lake under test does real I/O through the kernel.
"""

from __future__ import annotations

import errno
import os
import pickle
import sys
import threading
from typing import Any

import mfusepy as fuse

MARK = ".powerloss-mark-"


class Recorder(fuse.Operations):  # type: ignore[misc]
    use_ns = True

    def __init__(self, root: str, log_path: str) -> None:
        self.root = os.path.realpath(root)
        self.log_path = log_path
        self.ops: list[tuple[Any, ...]] = []
        self._mutex = threading.Lock()

    # -------------------------------------------------------------- helpers

    def _p(self, path: str) -> str:
        return os.path.join(self.root, path.lstrip("/"))

    def _ino(self, path: str) -> int:
        return os.lstat(self._p(path)).st_ino

    def _parent(self, path: str) -> tuple[int, str]:
        head, name = os.path.split(path.rstrip("/"))
        return self._ino(head or "/"), name

    def _log(self, *op: Any) -> None:
        with self._mutex:
            self.ops.append(op)

    # -------------------------------------------------------------- reads

    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        name = os.path.basename(path)
        if name.startswith(MARK):
            self._log("mark", int(name[len(MARK) :]))
            raise fuse.FuseOSError(errno.ENOENT)
        try:
            st = os.fstat(fh) if fh is not None else os.lstat(self._p(path))
        except OSError as exc:
            raise fuse.FuseOSError(exc.errno) from None
        keys = ("st_mode", "st_nlink", "st_size", "st_uid", "st_gid", "st_ino")
        out = {k: getattr(st, k) for k in keys}
        out.update(st_atime=st.st_atime_ns, st_mtime=st.st_mtime_ns, st_ctime=st.st_ctime_ns)
        return out

    def readdir(self, path: str, fh: int) -> list[str]:
        return [".", "..", *os.listdir(self._p(path))]

    def open(self, path: str, flags: int) -> int:
        try:
            # The kernel gives every write its offset (also for O_APPEND).
            fd = os.open(self._p(path), flags & ~(os.O_CREAT | os.O_APPEND | os.O_EXCL))
        except OSError as exc:
            raise fuse.FuseOSError(exc.errno) from None
        if flags & os.O_TRUNC:
            self._log("truncate", os.fstat(fd).st_ino, 0)
        return fd

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        return os.pread(fh, size, offset)

    def opendir(self, path: str) -> int:
        return os.open(self._p(path), os.O_RDONLY)

    def releasedir(self, path: str, fh: int) -> int:
        os.close(fh)
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        st = os.statvfs(self._p(path))
        keys = ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree", "f_files")
        return {k: getattr(st, k) for k in (*keys, "f_flag", "f_frsize", "f_namemax")}

    def access(self, path: str, amode: int) -> int:
        if not os.access(self._p(path), amode):
            raise fuse.FuseOSError(errno.EACCES)
        return 0

    # -------------------------------------------------------------- changes

    def create(self, path: str, mode: int, fi: Any = None) -> int:
        fd = os.open(self._p(path), os.O_RDWR | os.O_CREAT, mode)
        parent, name = self._parent(path)
        self._log("create", parent, name, os.fstat(fd).st_ino)
        return fd

    def mkdir(self, path: str, mode: int) -> int:
        try:
            os.mkdir(self._p(path), mode)
        except OSError as exc:
            raise fuse.FuseOSError(exc.errno) from None
        parent, name = self._parent(path)
        self._log("mkdir", parent, name, self._ino(path))
        return 0

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        written = os.pwrite(fh, data, offset)
        self._log("write", os.fstat(fh).st_ino, offset, bytes(data[:written]))
        return written

    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        if fh is not None:
            os.ftruncate(fh, length)
            ino = os.fstat(fh).st_ino
        else:
            os.truncate(self._p(path), length)
            ino = self._ino(path)
        self._log("truncate", ino, length)
        return 0

    def fsync(self, path: str, datasync: int, fh: int) -> int:
        self._log("fsync", os.fstat(fh).st_ino)
        return 0

    def fsyncdir(self, path: str, datasync: int, fh: int) -> int:
        self._log("fsyncdir", os.fstat(fh).st_ino)
        return 0

    def rename(self, old: str, new: str) -> int:
        src, src_name = self._parent(old)
        dst, dst_name = self._parent(new)
        try:
            os.rename(self._p(old), self._p(new))
        except OSError as exc:
            raise fuse.FuseOSError(exc.errno) from None
        self._log("rename", src, src_name, dst, dst_name)
        return 0

    def link(self, target: str, source: str) -> int:
        try:
            os.link(self._p(source), self._p(target))
        except OSError as exc:
            raise fuse.FuseOSError(exc.errno) from None
        parent, name = self._parent(target)
        self._log("link", parent, name, self._ino(target))
        return 0

    def unlink(self, path: str) -> int:
        parent, name = self._parent(path)
        try:
            os.unlink(self._p(path))
        except OSError as exc:
            raise fuse.FuseOSError(exc.errno) from None
        self._log("unlink", parent, name)
        return 0

    def rmdir(self, path: str) -> int:
        parent, name = self._parent(path)
        os.rmdir(self._p(path))
        self._log("unlink", parent, name)
        return 0

    def flush(self, path: str, fh: int) -> int:
        return 0

    def release(self, path: str, fh: int) -> int:
        os.close(fh)
        return 0

    def chmod(self, path: str, mode: int) -> int:
        os.chmod(self._p(path), mode)
        return 0

    def utimens(self, path: str, times: Any = None) -> int:
        return 0

    def destroy(self, path: str) -> None:
        with open(self.log_path, "wb") as out:
            pickle.dump({"root_ino": os.lstat(self.root).st_ino, "ops": self.ops}, out)


def main() -> None:
    backing, mountpoint, log_path = sys.argv[1:4]
    fuse.FUSE(Recorder(backing, log_path), mountpoint, foreground=True, nothreads=True)


if __name__ == "__main__":
    main()
