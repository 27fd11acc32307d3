"""The slow tier: the export trains, as it is, with TRL's DPO, KTO and SFT trainers.

Builds a separate environment (``.venv-trl`` in the repository, kept between
runs) with ``trl`` and a CPU ``torch`` (``STEME_TRL_TORCH``, default
``torch==2.13.0``: the CPU build a plain ``torch`` would not pick), exports the
corrected JWT incident, and runs ``trl_step.py`` in it: every row through TRL's
chat-template helper, then one step of each trainer on a tiny random model.
Skipped, with the reason, when the environment cannot be installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

import steme_lake as sl

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
ENV = REPO / ".venv-trl"
STEP = Path(__file__).with_name("trl_step.py")


def _trl_python() -> Path:
    """The environment's Python, installed once (skip when it cannot be)."""
    python = ENV / "bin" / "python"
    stamp = ENV / ".installed"
    torch = os.environ.get("STEME_TRL_TORCH", "torch==2.13.0")
    if stamp.exists() and stamp.read_text() == torch:
        return python
    venv.EnvBuilder(with_pip=True, clear=True).create(ENV)
    for args in ([torch], ["trl", "datasets", torch]):
        run = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *args],
            capture_output=True, text=True, timeout=1200,
        )  # fmt: skip
        if run.returncode != 0:
            pytest.skip(f"cannot install {' '.join(args)} for the TRL tier: {run.stderr[-600:]}")
    stamp.write_text(torch)
    return python


def test_dpo_kto_and_sft_train_one_step_on_the_export(corrected: sl.Lake, tmp_path: Path) -> None:
    python = _trl_python()
    out = tmp_path / "export"
    manifest = corrected.dojo.export(out, fractions=(1.0, 0.0, 0.0)).collect()
    run = subprocess.run(
        [str(python), str(STEP), str(out), str(tmp_path / "work")],
        capture_output=True, text=True, timeout=900,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
             "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": ""},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    negatives = int((manifest["label"] == "negative").sum())
    # every row of every config went through TRL's chat template
    assert result["templated"] == {
        "preference": negatives,
        "unpaired": manifest.height + negatives,
        "sft": manifest.height,
    }
    assert set(result["losses"]) == {"dpo", "kto", "sft"}
    assert sys.float_info.max > result["losses"]["dpo"] > 0
