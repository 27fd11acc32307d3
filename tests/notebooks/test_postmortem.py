"""The postmortem notebook runs top to bottom, headless."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "postmortem.ipynb"
pytestmark = pytest.mark.slow


class TestPostmortemNotebook:
    """Every cell runs without error on a fresh incident lake, and tells the story."""

    def test_runs_headless(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("STEME_LAKE", str(tmp_path / "incident"))
        nb = nbformat.read(NOTEBOOK, as_version=4)
        client = NotebookClient(
            nb,
            timeout=180,
            kernel_name="python3",
            resources={"metadata": {"path": str(NOTEBOOK.parent)}},
        )
        client.execute()
        text = "\n".join(
            str(out.get("text", "")) + str(out.get("data", {}).get("text/plain", ""))
            for cell in nb.cells
            if cell.cell_type == "code"
            for out in cell.get("outputs", [])
        )
        assert "now: RS256 | as of 21:00 (history unchanged): ES256" in text
        # the story's clock: the correction is stamped in the incident's night, and the
        # impact up to the outage does not count the investigation's own questions
        assert "corrected at 2026-01-16 03:" in text
        (reached,) = [line for line in text.splitlines() if line.startswith("agents it reached:")]
        assert "deploy-agent" in reached and "sre-oncall" not in reached
        (found,) = [line for line in text.splitlines() if line.startswith("found:")]
        assert "auth/jwt signing_algorithm" in found and "services/auth/config" in found
        assert "db scores unchanged: True" in text and "authority lens now: RS256" in text
        assert any(
            "image/png" in out.get("data", {})
            for cell in nb.cells
            if cell.cell_type == "code"
            for out in cell.get("outputs", [])
        )
