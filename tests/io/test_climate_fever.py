"""CLIMATE-FEVER as events (Diggelmann et al., 2020, arXiv:2012.00614)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

import steme_lake as sl
from steme_lake import ValidationError
from steme_lake.io.climate_fever import climate_fever_events
from tests.conftest import SHARED_DATASETS

SAMPLE = {
    "claim_id": "7",
    "claim": "CO2 is plant food",
    "claim_label": "DISPUTED",
    "evidences": [
        {
            "evidence_id": "Carbon dioxide:1",
            "evidence_label": "SUPPORTS",
            "article": "Carbon dioxide",
            "evidence": "Plants use CO2.",
            "entropy": 0.0,
            "votes": ["SUPPORTS", "SUPPORTS", None],
        },
        {
            "evidence_id": "Climate change:9",
            "evidence_label": "REFUTES",
            "article": "Climate change",
            "evidence": "More CO2 harms crops.",
            "entropy": 0.69,
            "votes": ["REFUTES", "SUPPORTS"],
        },
    ],
}


class TestMapping:
    """Claims, evidence (parent = claim, source = article) and agreeing/disagreeing votes."""

    def test_sample(self, tmp_path: Path, tmp_lake: sl.Lake) -> None:
        path = tmp_path / "cf.jsonl"
        path.write_text(json.dumps(SAMPLE) + "\n")
        counts = tmp_lake.import_events(list(climate_fever_events(path)))
        assert counts == {"assert": 3, "vote": 4}
        rows = tmp_lake.assertions.collect()
        claim = rows.filter(pl.col("predicate") == "claim_label")
        evidence = rows.filter(pl.col("predicate") == "evidence")
        assert claim["object"].to_list() == ['"DISPUTED"']
        assert set(evidence["parent"]) == {claim["id"][0]}
        assert sl.source_hash_of("https://en.wikipedia.org/wiki/Carbon_dioxide") in set(
            evidence["source_hash"]
        )
        votes = tmp_lake.votes.sort("agent", "target").collect()
        assert sorted(votes["weight"].to_list()) == [-1.0, 1.0, 1.0, 1.0]

    def test_bad_line(self, tmp_path: Path) -> None:
        path = tmp_path / "cf.jsonl"
        path.write_text(json.dumps({**SAMPLE, "claim_label": "MAYBE"}) + "\n")
        with pytest.raises(ValidationError, match=r"cf.jsonl:1: .*MAYBE"):
            list(climate_fever_events(path))

    def test_real_file(self, tmp_lake: sl.Lake) -> None:
        real = SHARED_DATASETS / "climate-fever.jsonl"
        if not real.exists():
            pytest.skip("shared/datasets is not beside this checkout")
        counts = tmp_lake.import_events(list(climate_fever_events(real, limit=50)))
        assert counts["assert"] == 50 * 6
        assert tmp_lake.assertions.select(pl.col("subject").n_unique()).collect().item() == 50
