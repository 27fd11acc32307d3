"""The export folder: loads in Hugging Face ``datasets`` per config and split,
provenance resolves in the lake, incidents never span splits, re-exports are
byte-identical, and bad requests leave nothing behind."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

import steme_lake as sl
from steme_lake.dojo import _export, _hygiene, _pipeline
from steme_lake.dojo._hygiene import near_duplicates

WORDS = [f"w{i}" for i in range(5000)]

CONFIGS = ("preference", "unpaired", "sft")


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


class TestTheFiles:
    def test_shapes_trainers_load(self, corrected: sl.Lake, tmp_path: Path) -> None:
        out = tmp_path / "export"
        manifest = corrected.dojo.export(out, openai=True).collect()
        assert manifest.height > 0
        assert set(manifest["kind"]) >= {"proposal_as_decision", "invalidated_answer",
                                         "constraint_violation", "approved_answer",
                                         "constraint_honoured", "corrected_path"}  # fmt: skip
        for config in CONFIGS:
            for path in (out / config).glob("*.parquet"):
                table = pq.read_table(path)
                assert table.schema.equals(_export.ARROW[config]), path
                frame = pl.from_arrow(table)
                assert isinstance(frame, pl.DataFrame)
                assert not any(dtype == pl.Null for dtype in frame.dtypes)
                msgs = "messages" if config == "sft" else "prompt"
                assert frame[msgs].list.len().min() >= 2  # type: ignore[operator]
                for prompt in frame[msgs].to_list():
                    roles = [m["role"] for m in prompt]
                    assert roles[0] == "system"
                    if config != "sft":
                        assert roles[-1] == "user"
                    else:
                        assert roles[-1] == "assistant"
                for col in ("chosen", "rejected", "completion"):
                    if col in frame.columns:
                        for msgs_ in frame[col].to_list():
                            assert [m["role"] for m in msgs_] == ["assistant"]
                            assert msgs_[0]["content"].strip()
        pref = pl.read_parquet(out / "preference" / "*.parquet")
        assert (pref["chosen"] != pref["rejected"]).all()
        jsonl = (out / "openai").glob("preference-*.jsonl")
        first = json.loads(next(iter(jsonl)).read_text().splitlines()[0])
        assert set(first) == {"input", "preferred_output", "non_preferred_output"}

    def test_datasets_loads_every_config_and_split(
        self, corrected: sl.Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        datasets = pytest.importorskip("datasets")
        monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        out = tmp_path / "export"
        corrected.dojo.export(out)
        rows = json.loads((out / "export.json").read_text())["counts"]["rows"]
        for config in CONFIGS:
            loaded = datasets.load_dataset(str(out), config, cache_dir=str(tmp_path / "hf"))
            assert {s: loaded[s].num_rows for s in loaded} == rows[config]
            for split in rows[config]:
                plain = datasets.load_dataset(
                    "parquet",
                    data_files={split: str(out / config / f"{split}-*.parquet")},
                    cache_dir=str(tmp_path / "hf"),
                )
                assert plain[split].num_rows == rows[config][split]

    def test_the_jwt_pair(self, corrected: sl.Lake, tmp_path: Path) -> None:
        out = tmp_path / "export"
        corrected.dojo.export(out, kinds=["proposal_as_decision"])
        pref = pl.read_parquet(out / "preference" / "*.parquet")
        row = pref.row(0, named=True)
        assert row["rejected"][0]["content"] == "ES256"
        assert row["chosen"][0]["content"].startswith("RS256")
        user = row["prompt"][-1]["content"]
        assert "2026-01-15T20:55:00Z" in user and "- RS256: approved" in user
        assert "- ES256: proposed" in user


class TestProvenanceAndSplits:
    def test_every_id_resolves(self, corrected: sl.Lake, tmp_path: Path) -> None:
        manifest = corrected.dojo.export(tmp_path / "export").collect()
        ids: set[str] = set()
        for col in ("query_id", "rejected_assertion", "chosen_assertion", "supersession",
                    "constraint"):  # fmt: skip
            ids |= {x for x in manifest[col].to_list() if x is not None}
        for col in ("votes",):
            ids |= {x for xs in manifest[col].to_list() for x in xs}
        assert len(ids) > 10
        for rid in ids:
            assert corrected.get(rid) is not None
        on_disk = pl.read_parquet(tmp_path / "export" / "manifest" / "samples.parquet")
        assert on_disk.equals(manifest)

    def test_no_group_in_two_splits(self, corrected: sl.Lake, tmp_path: Path) -> None:
        manifest = corrected.dojo.export(tmp_path / "export", fractions=[0.4, 0.3, 0.3]).collect()
        spread = manifest.group_by("group_key").agg(pl.col("split").n_unique())
        assert spread["split"].max() == 1
        # the JWT incident's pair, its correction and its corrected path: one group
        jwt = manifest.filter(pl.col("subject") == "auth/jwt")
        assert jwt.filter(pl.col("predicate") == "signing_algorithm")["group_key"].n_unique() == 1

    def test_new_incidents_never_move_old_samples(self, corrected: sl.Lake, tmp_path: Path) -> None:
        before = corrected.dojo.export(tmp_path / "a", fractions=[0.4, 0.3, 0.3]).collect()
        ok = corrected.assert_("queue/kafka", "acks", "all", agent="team", source="adr",
                               lifecycle="approved")  # fmt: skip
        corrected.assert_("queue/kafka", "acks", "1", agent="bot", source="blog")
        corrected.query("queue/kafka", "acks", agent="producer")
        corrected.vote(ok, agent="human-a")
        after = corrected.dojo.export(tmp_path / "b", fractions=[0.4, 0.3, 0.3]).collect()
        assert after.height > before.height
        joined = before.join(after, on="sample_id", suffix="_after")
        assert joined.height == before.height
        assert (joined["split"] == joined["split_after"]).all()

    def test_temporal_holdout(self, corrected: sl.Lake, tmp_path: Path) -> None:
        at = "2026-01-15T20:00:00Z"
        manifest = corrected.dojo.export(tmp_path / "export", test_after=at).collect()
        test = manifest.filter(pl.col("split") == "test")
        assert test.height > 0
        firsts = manifest.group_by("group_key").agg(
            pl.col("asked_at").min(), pl.col("split").first()
        )
        late = firsts.filter(
            pl.col("asked_at") >= pl.lit("2026-01-15T20:00:00Z").str.to_datetime(time_zone="UTC")
        )
        assert set(late["split"]) == {"test"}
        assert "test" not in set(
            firsts.filter(~pl.col("group_key").is_in(late["group_key"]))["split"]
        )

    def test_byte_identical_re_export(self, corrected: sl.Lake, tmp_path: Path) -> None:
        corrected.dojo.export(tmp_path / "one", openai=True)
        corrected.dojo.export(tmp_path / "two", openai=True)
        one, two = _files(tmp_path / "one"), _files(tmp_path / "two")
        assert one.keys() == two.keys() and one == two

    def test_card_counts_are_the_manifests(self, corrected: sl.Lake, tmp_path: Path) -> None:
        manifest = corrected.dojo.export(tmp_path / "export").collect()
        card = (tmp_path / "export" / "README.md").read_text()
        info = json.loads((tmp_path / "export" / "export.json").read_text())
        assert card.startswith("---\nlicense: other\n")
        assert "config_name: preference" in card and "## Motivation" in card
        for heading in (
            "Composition",
            "Collection process",
            "Preprocessing",
            "Uses",
            "Maintenance",
        ):
            assert f"## {heading}" in card
        assert f"{manifest.height} samples" in card
        assert info["counts"]["samples"] == manifest.height
        for kind, n in manifest["kind"].value_counts().iter_rows():
            assert info["counts"]["by_kind"][kind] == n
            assert f"| `{kind}` | {n} |" in card
        pref = pl.read_parquet(tmp_path / "export" / "preference" / "*.parquet")
        assert pref.height == sum(info["counts"]["rows"]["preference"].values())
        for f in info["files"]:
            assert (tmp_path / "export" / f["path"]).exists()


class TestBadInput:
    def test_empty_window_is_an_empty_export(self, corrected: sl.Lake, tmp_path: Path) -> None:
        manifest = corrected.dojo.export(tmp_path / "export", until="2020-01-01").collect()
        assert manifest.is_empty()
        card = (tmp_path / "export" / "README.md").read_text()
        assert "This export holds no samples" in card and "configs:" not in card
        assert not list((tmp_path / "export").rglob("*-of-*.parquet"))
        assert pl.read_parquet(tmp_path / "export" / "manifest" / "samples.parquet").is_empty()

    def test_refusals_leave_nothing(self, corrected: sl.Lake, tmp_path: Path) -> None:
        out = tmp_path / "export"
        out.mkdir()
        (out / "keep.txt").write_text("mine")
        with pytest.raises(sl.ValidationError, match=r"not empty.*overwrite=True"):
            corrected.dojo.export(out)
        assert (out / "keep.txt").read_text() == "mine"
        corrected.dojo.export(out, overwrite=True)
        assert not (out / "keep.txt").exists() and (out / "export.json").exists()
        with pytest.raises(sl.ValidationError, match="lake's own folder"):
            corrected.dojo.export(corrected.path / "exports")
        with pytest.raises(sl.ValidationError, match="outside the allowed folder"):
            corrected.dojo.export(tmp_path / "root" / ".." / "escape", _root=tmp_path / "root")
        with pytest.raises(sl.ValidationError, match="in the future"):
            corrected.dojo.export(tmp_path / "future", as_of="2999-01-01")
        with pytest.raises(sl.ValidationError, match="did you mean 'constraint_violation'"):
            corrected.dojo.export(tmp_path / "typo", kinds=["constraint_violaton"])
        with pytest.raises(sl.ValidationError, match="did you mean 'test_after'"):
            corrected.dojo.export(tmp_path / "typo", tset_after="2026-01-01")
        with pytest.raises(sl.ValidationError, match="sum to 1"):
            corrected.dojo.export(tmp_path / "typo", fractions=[0.5, 0.5, 0.5])
        assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl", "export", "lake"]

    def test_a_failure_midway_leaves_no_partial_export(
        self, corrected: sl.Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        calls = []
        real = _export._Shards.write

        def failing(self: object, frame: pl.DataFrame) -> None:
            calls.append(frame.height)
            if len(calls) == 3:
                raise OSError(28, "No space left on device")  # a fault injected at the edge
            real(self, frame)  # type: ignore[arg-type]

        monkeypatch.setattr(_export._Shards, "write", failing)
        with pytest.raises(OSError, match="No space left"):
            corrected.dojo.export(tmp_path / "export")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl", "lake"]


class TestNearDuplicates:
    """The vectorised MinHash clusters what a person would call the same text."""

    @staticmethod
    def _text(rng: random.Random, n: int = 120) -> list[str]:
        return [rng.choice(WORDS) for _ in range(n)]

    def test_near_copies_cluster_and_different_texts_do_not(self) -> None:
        rng = random.Random(7)
        texts: list[str] = []
        for _ in range(60):
            base = self._text(rng)
            near = list(base)
            near[rng.randrange(len(near))] = "changed"  # Jaccard of 3-grams ~0.95
            far = list(base)
            for i in rng.sample(range(len(far)), 30):  # a quarter of the words: ~0.4
                far[i] = rng.choice(WORDS)
            texts += [" ".join(base), " ".join(near), " ".join(far)]
        leader = near_duplicates(pl.Series(texts), 0.9)
        together = sum(leader[3 * k + 1] == leader[3 * k] for k in range(60))
        apart = sum(leader[3 * k + 2] != leader[3 * k] for k in range(60))
        assert together >= 55, together  # LSH finds ~98% at Jaccard 0.95
        assert apart == 60
        # leaders are the first row of their cluster
        assert all(leader[i] <= i for i in range(len(texts)))

    def test_times_and_case_do_not_make_texts_different(self) -> None:
        a = "Agent x asks, at 2026-01-15T21:00:00Z: what is the signing algorithm of auth/jwt"
        b = a.replace("2026-01-15T21:00:00Z", "2026-02-01T03:04:05Z").upper()
        c = "a completely different question about the database connection pool size"
        assert list(near_duplicates(pl.Series([a, b, c]), 0.9)) == [0, 0, 2]

    def test_densify_takes_the_next_value_round_the_row(self) -> None:
        # the rule, one bin at a time, against the vectorised version
        rng = np.random.default_rng(3)
        grid = rng.integers(0, 2**62, size=(200, _hygiene._BINS), dtype=np.uint64)
        grid[rng.random(grid.shape) < 0.7] = _hygiene._EMPTY
        grid[0] = _hygiene._EMPTY  # nothing to take from: stays empty
        grid[1, :-1] = _hygiene._EMPTY  # only the last bin: every other goes round
        grid[1, -1] = 12345
        want = grid.copy()
        for r, row in enumerate(grid):
            for j in range(_hygiene._BINS):
                if row[j] != _hygiene._EMPTY:
                    continue
                for d in range(1, _hygiene._BINS):
                    v = row[(j + d) % _hygiene._BINS]
                    if v != _hygiene._EMPTY:
                        want[r, j] = _hygiene._mix(np.array([v]) + _hygiene._STEP[d : d + 1])[0]
                        break
        _hygiene._densify(grid)
        assert np.array_equal(grid, want)
        assert (grid[0] == _hygiene._EMPTY).all() and (grid[1] != _hygiene._EMPTY).all()

    def test_whitespace_is_collapsed_as_by_any_run(self) -> None:
        # the fast pattern leaves single spaces alone; the text must be the same as
        # collapsing every run of whitespace, Unicode spaces included
        rng = random.Random(5)
        parts = ["a", "B", " ", "  ", "\n", "\t", "\u00a0", "\u2003", "\r\n", " \n "]
        texts = pl.Series(
            ["".join(rng.choice(parts) for _ in range(rng.randrange(12))) for _ in range(3000)]
        )
        want = texts.str.replace_all(r"\s+", " ").str.strip_chars().str.to_lowercase()
        got = pl.select(_hygiene.normal(pl.lit(texts))).to_series()
        assert got.to_list() == want.to_list()


class TestChunks:
    """The export renders and writes in chunks; the chunk size changes nothing."""

    def test_small_chunks_and_shards_give_the_same_rows(
        self, corrected: sl.Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        whole = corrected.dojo.export(tmp_path / "whole", shard_rows=4, openai=True).collect()
        monkeypatch.setattr(_pipeline, "CHUNK_ROWS", 3)
        monkeypatch.setattr(_pipeline, "SLICE_QUESTIONS", 4)  # time slices of 4 questions
        chunked = corrected.dojo.export(tmp_path / "chunked", shard_rows=4, openai=True).collect()
        assert whole.height > 6  # so there are several chunks
        assert chunked.equals(whole)
        for name in ("whole", "chunked"):
            assert not list((tmp_path / name).rglob(".spill*"))
        a, b = _files(tmp_path / "whole"), _files(tmp_path / "chunked")
        assert sorted(a) == sorted(b)
        for path in a:
            if path.endswith(".parquet"):
                assert pl.read_parquet(tmp_path / "chunked" / path).equals(
                    pl.read_parquet(tmp_path / "whole" / path)
                ), path
            elif path != "export.json":  # (it lists the files' hashes)
                assert a[path] == b[path], path
        info = json.loads(a["export.json"])
        assert info == {**json.loads(b["export.json"]), "files": info["files"]}
        shards = [f["path"] for f in info["files"] if f["path"].startswith("unpaired/")]
        # in order within each split (the splits come train, validation, test; which
        # samples land in test depends on their ids, and the fixture's checks are
        # stamped at run time)
        by_split: dict[str, list[str]] = {}
        for path in shards:
            by_split.setdefault(path.split("/")[1].split("-")[0], []).append(path)
        assert len(shards) > 1 and all(paths == sorted(paths) for paths in by_split.values())

    def test_stats_agree_with_the_export(self, corrected: sl.Lake, tmp_path: Path) -> None:
        manifest = corrected.dojo.export(tmp_path / "export").collect()
        stats = corrected.dojo.stats()
        assert stats["samples"].sum() == manifest.height
        by = manifest.group_by("kind", "split").len().sort("kind", "split")
        assert by.rows() == stats.select("kind", "split", "samples").sort("kind", "split").rows()
