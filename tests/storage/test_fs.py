"""Lake-relative paths never leave the lake folder (and are resolved once)."""

from __future__ import annotations

import os
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
