"""The lake's columnar storage: manifests, Parquet partitions, the tail."""

from steme_lake.storage.fs import LakeFS
from steme_lake.storage.manifest import FileEntry, Manifest
from steme_lake.storage.tables import FileVerifier, TailBuffer, scan_table
from steme_lake.storage.writer import compact, vacuum, write_partitions

__all__ = [
    "FileEntry",
    "FileVerifier",
    "LakeFS",
    "Manifest",
    "TailBuffer",
    "compact",
    "scan_table",
    "vacuum",
    "write_partitions",
]
