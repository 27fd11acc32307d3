"""The Dojo notebook runs top to bottom, headless: the JWT incident exported and
loaded with Hugging Face ``datasets``, and a CLIMATE-FEVER lake graded."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "dojo.ipynb"
pytestmark = [pytest.mark.slow]


def test_runs_headless(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("datasets")
    monkeypatch.setenv("STEME_DOJO_WORK", str(tmp_path))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    ).execute()  # fmt: skip
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = "\n".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs
    )
    assert "== proposal_as_decision (asked by lead-orchestrator" in text
    assert "rejected: ES256" in text and "chosen:   RS256" in text
    assert "preference/train-00000-of-00001.parquet" in text
    assert "unpaired labels:" in text and "[False, True]" in text
    assert "the same bytes: True" in text  # the export split into time-slice tasks
    assert not any(o.get("output_type") == "error" for o in outputs)
    if (NOTEBOOK.parents[2] / "shared" / "datasets" / "climate-fever.jsonl").exists():
        assert "contested_acted_on" in text and "No settled answer" in text
        assert "is not here" not in text
