"""Key indexes: a lookup through them returns exactly the rows a scan finds, and
an index that is missing, damaged or made for another file is not believed."""

from __future__ import annotations

import random
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import steme_lake as sl
from steme_lake.model.schema import RecordKind, spec
from steme_lake.storage.fs import LakeFS
from steme_lake.storage.keyindex import (
    INDEX_DIR,
    INDEXED,
    TEXT_KEYS,
    Keyed,
    KeyIndexes,
    index_path,
    key_prefixes,
)
from steme_lake.storage.manifest import Manifest
from steme_lake.storage.tables import FileVerifier
from steme_lake.storage.writer import write_partitions


def _lake_with_history(lake: sl.Lake, seed: int) -> list[str]:
    """Assertions (some with parents), votes and queries, flushed in several
    files with some rows left unflushed; the assertion ids."""
    rng = random.Random(seed)
    ids: list[str] = []
    for step in range(120):
        roll = rng.random()
        if roll < 0.5 or not ids:
            parent = rng.choice(ids) if ids and rng.random() < 0.4 else None
            ids.append(
                lake.assert_(
                    f"s/{rng.randrange(4)}", "p", step, agent=f"a{rng.randrange(3)}",
                    source=f"src-{step}", parent=parent,
                )
            )  # fmt: skip
        elif roll < 0.7:
            lake.vote(rng.choice(ids), agent=f"v{step}", weight=1.0)
        else:
            lake.query(f"s/{rng.randrange(4)}", "p", agent="asker", lens="consensus")
        if step % 30 == 29 and step < 100:  # the last thirty stay in the tail
            lake.flush()
    return ids


def _by_scan(frame: pl.DataFrame, column: str, keys: list[str]) -> set[str]:
    if frame.schema[column] == pl.List(pl.String):
        hit = pl.col(column).list.eval(pl.element().is_in(keys)).list.any().fill_null(False)
    else:
        hit = pl.col(column).is_in(keys)
    return set(frame.filter(hit)["id"])


def _check_matched(
    keyed: Keyed, kind: RecordKind, column: str, keys: list[str], whole: pl.DataFrame
) -> None:
    """``matched``: the same rows, each with the wanted ids it holds, only those."""
    got = keyed.rows(kind, column, keys, ("id", column), matched=True)
    wanted = set(keys)
    expected = {
        rid: sorted(set(held) & wanted)
        for rid, held in whole.select("id", column).iter_rows()
        if held and set(held) & wanted
    }
    assert {rid: sorted(held) for rid, held in got.iter_rows()} == expected


@pytest.fixture(params=["one group", "small groups", "id groups", "small reads", "no memory"])
def groups(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Files of one row group each (read whole), or of many small row groups in
    data and index files (a lookup reads a few of them: pyarrow's row groups;
    id indexes are read whole for many ids at once, or never: "id groups"),
    or files larger than a read (their groups read a few at a time: 2 here), or
    id indexes given no memory (each one read drops the others held)."""
    if request.param == "id groups":
        monkeypatch.setattr("steme_lake.storage.keyindex.FEW_GROUPS", 0)
    if request.param in ("small groups", "id groups", "small reads"):
        monkeypatch.setattr("steme_lake.storage.writer.DATA_GROUP", 4)
        monkeypatch.setattr("steme_lake.storage.keyindex.KEY_GROUP", 3)
    if request.param == "small reads":
        monkeypatch.setattr("steme_lake.storage.keyindex.WHOLE_ROWS", 9)
    if request.param == "no memory":
        monkeypatch.setattr(KeyIndexes, "MEMORY", 0)
    return str(request.param)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_lookup_finds_what_a_scan_finds(lake_path: Path, seed: int, groups: str) -> None:
    with sl.open(lake_path) as lake:
        ids = _lake_with_history(lake, seed)
        assert lake.status().tables["audit"]["unflushed_rows"] > 0  # the tail counts too
        assert (lake_path / INDEX_DIR / "audit" / "contributing").is_dir()
        keyed = lake._keyed()
        rng = random.Random(seed)
        for kind, columns in INDEXED.items():
            whole = lake.table(kind.table).collect()
            for column in columns:
                if (kind, column) in TEXT_KEYS:
                    continue  # subject trees: the next test
                for n in (1, 3, 20):
                    keys = [*rng.sample(ids, n), "f" * 64]  # one that is nowhere
                    got = keyed.rows(kind, column, keys, ("id", column))
                    assert got["id"].is_unique().all()
                    assert set(got["id"]) == _by_scan(whole, column, keys), (kind, column)
                    if whole.schema[column] == pl.List(pl.String):
                        _check_matched(keyed, kind, column, keys, whole)
        held = [i.nbytes for i in keyed.indexes._indexes.values() if i.nbytes]
        if groups == "id groups":  # only row groups were read
            assert held == [] and keyed.indexes._held == 0
        elif groups == "no memory":  # only the one read last is held
            assert len(held) == 1 and keyed.indexes._held == held[0]
        else:
            assert len(held) > 1 and keyed.indexes._held == sum(held)


@pytest.mark.parametrize("seed", [1, 2])
def test_parent_links_are_those_a_scan_finds(lake_path: Path, seed: int, groups: str) -> None:
    with sl.open(lake_path) as lake:
        ids = _lake_with_history(lake, seed)
        whole = lake.assertions.select("id", "parent").collect()
        links = dict(whole.filter(pl.col("parent").is_not_null()).iter_rows())
        assert links and len(links) < whole.height  # some have a parent, some not
        keyed = lake._keyed()
        rng = random.Random(seed)
        for n in (1, 5, 40, len(ids)):
            keys = [*rng.sample(ids, n), "f" * 64]  # one that is nowhere
            got = keyed.parents(keys)
            assert got["id"].is_unique().all()
            assert dict(got.iter_rows()) == {k: links[k] for k in keys if k in links}


def test_a_subject_tree_is_the_subject_and_what_is_under_it(lake_path: Path, groups: str) -> None:
    subjects = ["a", "a/b", "a/b/c", "a/bc", "a-b", "a0", "ab", "b/a", "a/b.x", "é/x", "é"]
    with sl.open(lake_path) as lake:
        for i, subject in enumerate(subjects * 3):
            lake.assert_(subject, "p", i, agent="x", source=f"s{i}")
            if i % 7 == 6:
                lake.flush()
        whole = lake.assertions.collect()
        keyed = lake._keyed()
        for roots in (["a"], ["a/b"], ["a/b", "b"], ["a-b", "é"], ["zz"], ["a/b/"], ["a", "a/b"]):
            got = keyed.rows(RecordKind.ASSERTION, "subject", roots, ("id", "subject"))
            want = whole.filter(
                pl.col("subject").map_elements(
                    lambda s, roots=roots: any(s == r or s.startswith(r + "/") for r in roots),
                    return_dtype=pl.Boolean,
                )
            )
            assert sorted(got["id"]) == sorted(want["id"]), roots


def test_a_window_keeps_the_rows_recorded_in_it(lake_path: Path) -> None:
    with sl.open(lake_path) as lake:
        ids = _lake_with_history(lake, 3)
        whole = lake.assertions.collect()
        middle = int(whole["recorded_at"].dt.epoch("us").median())  # type: ignore[arg-type]
        keyed = lake._keyed()
        got = keyed.rows(RecordKind.ASSERTION, "id", ids, ("id",), since=middle)
        late = whole.filter(pl.col("recorded_at").dt.epoch("us") >= middle)
        assert set(got["id"]) == set(late["id"])
        got = keyed.rows(RecordKind.ASSERTION, "id", ids, ("id",), until=middle)
        assert set(got["id"]) == set(ids) - set(late["id"]) | {
            r for r, t in zip(late["id"], late["recorded_at"].dt.epoch("us"), strict=True)
            if t == middle
        }  # fmt: skip


def _one_file(tmp_path: Path, kind: RecordKind, rows: list[dict[str, object]]) -> Keyed:
    """``rows`` (ids ``0...0``, ``0...1``, ...) written as one file of ``kind``
    with its key indexes, and a view of it."""
    schema = spec(kind).schema
    now = pa.scalar(1_700_000_000_000_000, pa.timestamp("us", "UTC"))
    full = [{"id": f"{i:064x}", "seq": i + 1, "recorded_at": now, **r} for i, r in enumerate(rows)]
    table = pa.Table.from_pylist(
        [{f.name: r.get(f.name) for f in schema} for r in full], schema=schema
    )
    fs = LakeFS(tmp_path / "lake")
    entries = write_partitions(fs, kind, table, 1)
    return Keyed(KeyIndexes(fs, FileVerifier(fs)), Manifest(version=1, files=tuple(entries)), {})


def test_keys_sharing_a_prefix_are_told_apart(tmp_path: Path) -> None:
    """Indexes hold the first 64 bits of a key: ids with the same first 16 hex
    digits land on the same index rows, and the lookup keeps only the right one."""
    head = "0123456789abcdef"
    a, b, c = head + "a" * 48, head + "b" * 48, "f" * 64
    assert len(set(key_prefixes(pa.array([a, b])).tolist())) == 1
    votes = [{"target": t, "agent": "x", "weight": 1.0, "signatures": []} for t in [a, b, c, a, b]]
    keyed = _one_file(tmp_path, RecordKind.VOTE, votes)
    got = keyed.rows(RecordKind.VOTE, "target", [a], ("id", "target"))
    assert sorted(got["target"]) == [a, a]
    got = keyed.rows(RecordKind.VOTE, "target", [b, c], ("id", "target"))
    assert sorted(got["target"]) == [b, b, c]


def test_wanted_ids_sharing_a_prefix_are_read_from_the_data(tmp_path: Path) -> None:
    """``matched`` takes which wanted ids a row holds from the index's pairs,
    which cannot tell two wanted ids of one prefix apart: those are read. (A
    wanted id and an unwanted one of the same prefix cannot be told apart from
    the pairs: the lake does not ask for ``matched`` then; see
    test_state_index.py.)"""
    head = "0123456789abcdef"
    a, b, c = head + "a" * 48, head + "b" * 48, "f" * 64
    cites = [[a], [b, c], [c], [a, b], ["e" * 64]]
    queries = [
        {"agent": "x", "op": "query", "subject": "s", "include_superseded": False,
         "status": "answered", "contributing": held}
        for held in cites
    ]  # fmt: skip
    keyed = _one_file(tmp_path, RecordKind.AUDIT, queries)
    for wanted in ([a, b], [a, b, c]):
        got = keyed.rows(
            RecordKind.AUDIT, "contributing", wanted, ("id", "contributing"), matched=True
        )
        expected = {
            f"{i:064x}": sorted(set(held) & set(wanted))
            for i, held in enumerate(cites)
            if set(held) & set(wanted)
        }
        assert {rid: sorted(held) for rid, held in got.iter_rows()} == expected, wanted


def _index_files(lake_path: Path) -> list[Path]:
    return sorted((lake_path / INDEX_DIR).rglob("*.parquet"))


@pytest.mark.parametrize("harm", ["missing", "damaged", "another file's"])
def test_an_index_not_to_be_believed_is_not_used(lake_path: Path, harm: str) -> None:
    with sl.open(lake_path) as lake:
        ids = _lake_with_history(lake, 4)
        lake.flush()
        expected = {
            column: set(lake._keyed().rows(RecordKind.ASSERTION, column, ids, ("id",))["id"])
            for column in ("id", "parent")
        }
    files = [p for p in _index_files(lake_path) if "/assertions/" in p.as_posix()]
    assert len(files) >= 6
    for i, path in enumerate(files):
        if harm == "missing":
            path.unlink()
        elif harm == "damaged":
            data = bytearray(path.read_bytes())
            data[len(data) // 3 : len(data) // 3 + 64] = bytes(64)  # a page, zeroed
            path.write_bytes(bytes(data))
        else:  # a well-formed index of another data file, under this one's name
            other = files[(i + 2) % len(files)]
            pq.write_table(pq.read_table(other), path)
    with sl.open(lake_path) as lake:
        for column, want in expected.items():
            got = lake._keyed().rows(RecordKind.ASSERTION, column, ids, ("id",))
            assert set(got["id"]) == want, (harm, column)
        # the citations, their index files harmed the same way: read from the data
        for path in [p for p in _index_files(lake_path) if "/audit/" in p.as_posix()]:
            path.unlink()
        lake.query("s/1", "p", agent="asker")  # and one in the unflushed tail
        audit = lake.audit.collect()
        _check_matched(lake._keyed(), RecordKind.AUDIT, "contributing", ids, audit)


@pytest.mark.parametrize("harm", ["missing", "another file's"])
def test_compact_writes_the_indexes_files_lack(lake_path: Path, harm: str) -> None:
    """A lake written before key indexes (or one whose indexes were lost) gets
    them from `Lake.compact`, and the process that compacted uses them at once."""
    opts = sl.LakeOptions(compact_min_files=100)  # nothing to merge: only the indexes
    with sl.open(lake_path, options=opts) as lake:
        ids = _lake_with_history(lake, 5)
        lake.flush()
    before = {p: p.read_bytes() for p in _index_files(lake_path)}
    for i, path in enumerate(before):
        if harm == "missing":
            path.unlink()
        else:
            pq.write_table(pq.read_table(list(before)[(i + 1) % len(before)]), path)
    with sl.open(lake_path, options=opts) as lake:
        expected = {
            column: set(lake._keyed().rows(RecordKind.ASSERTION, column, ids, ("id",))["id"])
            for column in ("id", "parent")
        }  # by scans: no index is believed
        assert any(i.metadata is None and i.keys is None for i in lake._keys._indexes.values())
        assert lake.compact() == 0
        assert {p: p.read_bytes() for p in _index_files(lake_path)} == before
        for column, want in expected.items():
            got = lake._keyed().rows(RecordKind.ASSERTION, column, ids, ("id",))
            assert set(got["id"]) == want
        used = [i for r, i in lake._keys._indexes.items() if r.startswith("index/assertions/id/")]
        assert used and all(i.keys is not None for i in used)  # read from the new indexes


def test_compaction_indexes_its_output_and_vacuum_takes_the_old_ones(lake_path: Path) -> None:
    opts = sl.LakeOptions(compact_min_files=100, vacuum_retain_seconds=0)
    with sl.open(lake_path, options=opts) as lake:
        ids = _lake_with_history(lake, 6)
        lake.flush()
        before = set(lake._keyed().rows(RecordKind.ASSERTION, "parent", ids, ("id",))["id"])
        with sl.open(lake_path, options=sl.LakeOptions(compact_min_files=2)) as other:
            assert other.compact() > 0
        lake.vacuum(retain_seconds=0)
        live = {e.path for e in lake._keyed().manifest.files}
        indexes = {p.relative_to(lake_path).as_posix() for p in _index_files(lake_path)}
        assert indexes == {
            index_path(path, column)
            for path in live
            for kind, columns in INDEXED.items()
            if path.split("/")[1] == kind.table
            for column in columns
        }
        after = lake._keyed().rows(RecordKind.ASSERTION, "parent", ids, ("id",))
        assert set(after["id"]) == before


def test_an_unindexed_column_is_refused(tmp_lake: sl.Lake) -> None:
    with pytest.raises(ValueError, match=r"assertions\.agent has no key index"):
        tmp_lake._keyed().rows(RecordKind.ASSERTION, "agent", ["x"], ("id",))
