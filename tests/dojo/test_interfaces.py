"""``steme dojo``, the HTTP routes and the MCP tools: the same parameters and the
same refusals as the Python API."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from mcp import Client
from mcp.client.stdio import StdioServerParameters

import steme_lake as sl
from steme_lake.api import ServerOptions, create_app
from steme_lake.cli import main
from tests.conftest import PYTHON, child_env


class TestCli:
    def test_export_and_stats(
        self, incident: tuple[sl.Lake, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        lake, _ = incident
        path = str(lake.path)
        lake.close()
        assert main(["dojo", "stats", "--lake", path, "--json"]) == 0
        stats = json.loads(capsys.readouterr().out)["stats"]
        assert {"kind": "proposal_as_decision", "label": "negative", "split": "train",
                "samples": 1, "duplicates": 1} in stats  # fmt: skip
        out = tmp_path / "out"
        argv = ["dojo", "export", "--lake", path, str(out), "--kinds", "proposal_as_decision",
                "--openai", "--json"]  # fmt: skip
        assert main(argv) == 0
        done = json.loads(capsys.readouterr().out)
        assert done["samples"] == 1 and (out / "openai" / "preference-train.jsonl").exists()
        assert main(argv) == 2  # exists: refused, kept
        assert "--overwrite" in capsys.readouterr().err
        assert main([*argv, "--overwrite"]) == 0
        capsys.readouterr()
        with pytest.raises(SystemExit):
            main(["dojo", "export", "--lake", path, str(out), "--test-aftr", "2026-01-01"])
        assert "did you mean '--test-after'" in capsys.readouterr().err
        assert main(["dojo", "stats", "--lake", path, "--kinds", "proposal"]) == 2
        assert "unknown sample kind 'proposal'" in capsys.readouterr().err
        info = json.loads((out / "export.json").read_text())
        assert info["command"].startswith(f"steme dojo export --lake {path} OUT")


class TestHttp:
    def test_routes(self, incident: tuple[sl.Lake, str], tmp_path: Path) -> None:
        lake, _ = incident
        root = tmp_path / "exports"
        root.mkdir()
        app = create_app(lake, ServerOptions(export_root=str(root)))
        with TestClient(app) as http:
            stats = http.get("/dojo/stats", params={"kinds": "proposal_as_decision"})
            assert stats.status_code == 200, stats.text
            assert stats.json()["stats"][0]["samples"] == 1
            got = http.get("/dojo/samples", params={"limit": 1, "subject": "auth/*"})
            assert got.status_code == 200 and len(got.json()["samples"]) == 1
            sample = got.json()["samples"][0]
            assert sample["rejected"] == [{"role": "assistant", "content": "ES256"}]
            made = http.post("/dojo/export", json={"path": "jwt", "kinds": "proposal_as_decision"})
            assert made.status_code == 201, made.text
            assert made.json()["samples"] == 1 and (root / "jwt" / "export.json").exists()
            again = http.post("/dojo/export", json={"path": "jwt"})
            assert again.status_code == 400 and "overwrite" in again.text
            escape = http.post("/dojo/export", json={"path": "../elsewhere"})
            assert escape.status_code == 400 and "outside the allowed folder" in escape.text
            absolute = http.post("/dojo/export", json={"path": str(tmp_path / "abs")})
            assert absolute.status_code == 400 and "relative" in absolute.text
            typo = http.get("/dojo/stats", params={"kind": "proposal_as_decision"})
            assert typo.status_code in (400, 422) and "kinds" in typo.text
            bad = http.get("/dojo/stats", params={"kinds": "nope"})
            assert bad.status_code == 400 and "unknown sample kind" in bad.text
            typo_body = http.post("/dojo/export", json={"path": "x", "test_aftr": "2026-01-01"})
            assert typo_body.status_code == 422 and "test_after" in typo_body.text
        assert not (tmp_path / "elsewhere").exists() and not (tmp_path / "abs").exists()

    def test_no_export_root_no_exports(self, incident: tuple[sl.Lake, str]) -> None:
        lake, _ = incident
        with TestClient(create_app(lake, ServerOptions())) as http:
            refused = http.post("/dojo/export", json={"path": "x"})
            assert refused.status_code == 400 and "--export-root" in refused.text


class TestMcp:
    def test_tools(self, incident: tuple[sl.Lake, str], tmp_path: Path) -> None:
        lake, _ = incident
        path = str(lake.path)
        lake.close()
        root = tmp_path / "exports"
        root.mkdir()
        params = StdioServerParameters(
            command=PYTHON,
            args=[
                "-m",
                "steme_lake",
                "mcp",
                "--lake",
                path,
                "--agent",
                "ml-engineer",
                "--no-auth",
                "--export-root",
                str(root),
            ],
            env=child_env(),
        )

        def data(result: Any) -> dict[str, Any]:
            assert not result.is_error, result.content
            return dict(json.loads(result.content[0].text))

        async def session() -> None:
            async with Client(params) as client:
                tools = {t.name: t for t in (await client.list_tools()).tools}
                assert tools["dojo_stats"].annotations.read_only_hint is True
                stats = data(
                    await client.call_tool("dojo_stats", {"kinds": "proposal_as_decision"})
                )
                assert stats["stats"][0]["samples"] == 1
                done = data(await client.call_tool("dojo_export", {"path": "jwt"}))
                assert done["samples"] >= 1
                typo = await client.call_tool("dojo_stats", {"kind": "x"})
                assert typo.is_error and "kinds" in typo.content[0].text

        asyncio.run(session())
        assert (root / "jwt" / "README.md").exists()
