"""The TrustRank notebook runs top to bottom on Bitcoin OTC, headless, with its plots."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import SHARED_DATASETS

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "trustrank.ipynb"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (SHARED_DATASETS / "soc-sign-bitcoinotc.csv").exists(),
        reason="shared/datasets is not beside this checkout",
    ),
]


def test_runs_headless(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEME_TRUST_LAKE", str(tmp_path / "otc"))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    ).execute()  # fmt: skip
    outputs = [
        out for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])
    ]
    text = "\n".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs
    )
    assert "agents ranked in" in text and "converged: True" in text
    assert "same ranking on the topic and globally: True" in text
    assert "equal to the bit: True" in text  # the distributed split, run in the kernel
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 2
