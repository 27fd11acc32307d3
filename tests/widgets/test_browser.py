"""The explorer as a person uses it: Voila serves notebooks/explorer.ipynb on
127.0.0.1, headless Chromium (Debian's ``chromium``, driven by Playwright; no
browser is downloaded) moves the as-of slider across 21:00 and on past the
SRE's correction, and the answer shown goes from ES256 to RS256. Screenshots
are saved in ``artefacts/explorer/``. Requests that leave the machine are
blocked and recorded: the widgets' JavaScript must all come from 127.0.0.1.

``make test`` installs chromium where it can (root with apt-get); elsewhere the
test is skipped, unless ``STEME_REQUIRE_BROWSER=1`` makes that a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, child_env

NOTEBOOK = REPO / "notebooks" / "explorer.ipynb"
ARTEFACTS = REPO / "artefacts" / "explorer"
pytestmark = pytest.mark.slow


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package (the dev extra)")
    if found is None:
        missing.append("Debian's chromium (make test installs it as root with apt-get)")
    if missing:
        if os.environ.get("STEME_REQUIRE_BROWSER") == "1":
            pytest.fail("the browser test needs " + " and ".join(missing))
        pytest.skip("the browser test needs " + " and ".join(missing))
    assert found is not None
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def voila(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    env = {**child_env(), "STEME_LAKE": str(tmp_path / "incident-lake")}
    log = (tmp_path / "voila.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "voila", str(NOTEBOOK), "--no-browser", f"--port={port}",
         "--Voila.ip=127.0.0.1", "--VoilaConfiguration.show_tracebacks=True"],
        cwd=NOTEBOOK.parent, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("voila did not start:\n" + (tmp_path / "voila.log").read_text())
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_the_slider_crosses_the_incident(voila: str) -> None:
    from playwright.sync_api import Route, sync_playwright

    chromium = _chromium()
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    outside: list[str] = []
    scripts: list[str] = []

    def local_only(route: Route) -> None:
        url = route.request.url
        if url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.route("**/*", local_only)
        page.on("request", lambda r: scripts.append(r.url) if r.resource_type == "script" else None)
        page.goto(voila, timeout=120_000)
        answer = page.locator(".steme-answer-value")
        answer.wait_for(timeout=180_000)
        assert answer.inner_text() == "ES256"  # 20:55: the proposal, no lifecycle filter
        page.screenshot(path=ARTEFACTS / "1-at-2055.png", full_page=True)

        handle = page.locator(".steme-as-of .noUi-handle")
        handle.focus()
        for _ in range(6):  # a minute per step: 20:55 -> 21:01, across the deploy at 21:00
            handle.press("ArrowRight")
        clock = page.locator(".steme-as-of-text input")
        page.wait_for_function(
            "document.querySelector('.steme-as-of-text input').value === '2026-01-15T21:01:00Z'",
            timeout=30_000,
        )
        page.wait_for_function(
            "document.querySelector('.steme-answer').innerText.includes('2026-01-15T21:01:00Z')",
            timeout=30_000,
        )
        assert answer.inner_text() == "ES256"  # what the deploy agent shipped
        page.screenshot(path=ARTEFACTS / "2-at-2101.png", full_page=True)
        page.locator(".steme-explorer").screenshot(path=ARTEFACTS / "explorer.png")  # README

        handle.press("End")  # on, past the SRE's correction (03:00 that night)
        page.wait_for_function(
            "document.querySelector('.steme-answer-value').innerText === 'RS256'", timeout=30_000
        )
        assert clock.input_value() > "2026-01-16T03:00:00Z"
        page.screenshot(path=ARTEFACTS / "3-after-the-correction.png", full_page=True)

        # who asked: the deploy agent's questions; clicking one opens its provenance
        page.locator(".steme-tabs .lm-TabBar-tab", has_text="Who asked").click()
        page.locator(".steme-questions option", has_text="signing_algorithm").click()
        page.locator(".steme-chain").wait_for(timeout=30_000)
        chain = page.locator(".steme-chain").text_content() or ""
        for node in ("research-agent", "deploy-agent", "lead-orchestrator", "jwt_algorithm"):
            assert node in chain, chain
        page.screenshot(path=ARTEFACTS / "4-where-it-came-from.png", full_page=True)
        assert "Traceback" not in page.content()
        browser.close()

    assert scripts and all(s.startswith("http://127.0.0.1") for s in scripts), scripts
    # Voila's page template links Font Awesome's stylesheet from a CDN; it is blocked
    # here, and nothing the explorer shows depends on it (no icon buttons).
    assert all("fontawesome" in url for url in outside), outside
