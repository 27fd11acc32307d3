"""``make demo`` runs and tells the incident on the incident's own clock."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.conftest import PYTHON, child_env


def test_the_demo_tells_the_story_in_the_incident_night(tmp_path: Path) -> None:
    run = subprocess.run(
        [PYTHON, "-m", "steme_lake.demo", "--lake", str(tmp_path / "demo-lake")],
        capture_output=True, text=True, timeout=600, env=child_env(),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    # the impact is the incident's: the demo's own questions (asked after it) never count
    assert "it won 2 queries (agents: lead-orchestrator, deploy-agent)" in out
    # ... and impact follows the config derived from it to the deploy agent's question
    assert "1 more question(s) used what was derived from it" in out
    # the correction is stamped in the incident's night, not on the day the demo runs
    assert re.search(
        r"marks ES256 incorrect at 03:\d\d on 2026-01-16 \(the incident's night\)", out
    )
    assert "authority lens: as of 20:55 ES256; now RS256" in out
    searched = out.split("Searching by meaning", 1)[1].splitlines()
    assert 'auth/jwt signing_algorithm = "RS256"' in searched[1]
