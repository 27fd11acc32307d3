"""The Dojo on real labels: CLIMATE-FEVER's claims (``benchmarks/dojo_climate.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import SHARED_DATASETS

REPO = Path(__file__).resolve().parents[2]
DATA = SHARED_DATASETS / "climate-fever.jsonl"


@pytest.mark.skipif(not DATA.exists(), reason=f"{DATA} is not here")
def test_chosen_sides_agree_with_the_labels_and_unsure_claims_stay_unsure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import dojo_climate  # type: ignore[import-not-found]

    result = dojo_climate.main(["--data", str(DATA), "--limit", "250"])
    sys.modules.pop("dojo_climate", None)
    kinds = {row["kind"] for row in result["by_kind_and_claim_label"]}
    assert {"proposal_as_decision", "contested_acted_on", "approved_answer"} <= kinds
    assert result["preference_pairs"] > 20
    # the chosen side is the claim's own label (never seen by the lake) ...
    assert result["pairs_chosen_agrees_rate"] >= 0.95, result["disagreements"]
    assert result["positives_chosen_agrees_rate"] >= 0.95, result["disagreements"]
    # ... no pair teaches the wrong direction ...
    assert result["pairs_rejected_agrees"] == 0
    # ... and a claim the annotators could not settle never gets a confident answer
    assert result["unsure_claim_samples"] > 0
    assert result["unsure_claim_confident_chosen"] == 0
