"""Lake-relative paths never leave the lake folder (and are resolved once); many
files are written at once as durably as one."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from steme_lake._exceptions import ValidationError
from steme_lake.storage.fs import LakeFS


def test_paths_stay_under_the_root(tmp_path: Path) -> None:
    fs = LakeFS(tmp_path / "lake")
    assert fs.path("data/assertions/x.parquet") == (tmp_path / "lake").resolve() / (
        "data/assertions/x.parquet"
    )
    assert fs.path("data/assertions/x.parquet") is fs.path("data/assertions/x.parquet")
    for bad in ("../outside", "data/../../outside", "/etc/passwd"):
        with pytest.raises(ValidationError, match="would leave the lake folder"):
            fs.path(bad)


def test_a_symlink_out_of_the_lake_is_refused(tmp_path: Path) -> None:
    (tmp_path / "lake").mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "lake" / "data")
    fs = LakeFS(tmp_path / "lake")
    with pytest.raises(ValidationError, match="would leave the lake folder"):
        fs.path("data/x.parquet")


def _fsync_counting(counts: dict[str, int], fail: set[str] | None = None) -> Callable[[int], None]:
    """An fsync that counts the paths it syncs, and fails (EIO) for names in ``fail``."""
    import errno

    def fsync(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        name = Path(path).name
        if name.startswith(".tmp-"):  # a file is synced under its temporary name
            name = name.split("-", 2)[2]
            path = str(Path(path).with_name(name))
        if fail and any(name.endswith(f) for f in fail):
            raise OSError(errno.EIO, "Input/output error")
        counts[path] = counts.get(path, 0) + 1
        os.fsync(fd)

    return fsync


def test_write_many_publishes_every_file_and_syncs_each_folder_once(tmp_path: Path) -> None:
    counts: dict[str, int] = {}
    fs = LakeFS(tmp_path / "lake", fsync=_fsync_counting(counts))
    files = {
        f"tables/t/date=2026-01-{day:02d}/{part}.parquet": f"{day}-{part}".encode()
        for day in range(1, 21)
        for part in ("a", "b")
    }
    fs.write_many(files)
    root = fs.root
    for rel, data in files.items():
        assert (root / rel).read_bytes() == data
    assert not list(root.rglob(".tmp-*"))
    # each file fsync'd once; each new folder's parent once (for all its new
    # children), each day folder once more after its renames
    assert all(counts[str(root / rel)] == 1 for rel in files)
    assert counts[str(root / "tables" / "t")] == 1
    assert counts[str(root / "tables")] == 1
    assert all(counts[str(root / f"tables/t/date=2026-01-{d:02d}")] == 1 for d in range(1, 21))


def test_write_many_failing_names_the_first_file_and_publishes_none(tmp_path: Path) -> None:
    from steme_lake._exceptions import StorageError

    fs = LakeFS(tmp_path / "lake", fsync=_fsync_counting({}, fail={"05.parquet", "09.parquet"}))
    files = {f"tables/t/date=2026-01-{n:02d}/{n:02d}.parquet": b"x" * 100 for n in range(1, 13)}
    with pytest.raises(StorageError, match=r"writing .*date=2026-01-05/05\.parquet failed"):
        fs.write_many(files)
    assert not [p for p in fs.root.rglob("*") if p.is_file()]  # no file, no temporary
    fs_ok = LakeFS(tmp_path / "lake")
    fs_ok.write_many(files)  # the same files again, on a disk that works
    assert len([p for p in fs_ok.root.rglob("*.parquet")]) == 12
