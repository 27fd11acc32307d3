"""Every ``steme`` command runs, prints help, and its ``--json`` output parses."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

import steme_lake as sl
from steme_lake.cli import build_parser, main
from tests.conftest import JWT_EVENTS

SERVERS = {"serve", "mcp", "explore"}  # long-running: real processes in tests/api, tests/widgets


def _commands(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((*prefix, name))
                found.extend(_commands(sub, (*prefix, name)))
    return found


ALL = _commands(build_parser())


class Runner:
    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.ran: set[tuple[str, ...]] = set()

    def __call__(self, *args: str, code: int = 0) -> Any:
        rc = main(list(args))
        out, err = self.capsys.readouterr()
        assert rc == code, err
        words = tuple(a for a in args if not a.startswith("-"))
        for cmd in ALL:
            if words[: len(cmd)] == cmd:
                self.ran.add(cmd)
        return json.loads(out)


class TestEveryCommand:
    """The whole command group, scripted like an operator would use it."""

    @pytest.mark.parametrize("command", ALL, ids=" ".join)
    def test_help(self, command: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
        with pytest.raises(SystemExit) as done:
            main([*command, "--help"])
        assert done.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith("usage: steme " + " ".join(command))
        if command != ("keys",):
            assert "--json" in out

    def test_json_everywhere(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("STEME_WALLET", str(tmp_path / "wallet"))
        monkeypatch.setenv("STEME_WALLET_PASSPHRASE", "test passphrase")
        lake = str(tmp_path / "lake")
        run = Runner(capsys)
        assert run("init", lake, "--json")["created"] is True
        L = ("--lake", lake, "--json")
        run("import", str(JWT_EVENTS), *L)
        key = run("keys", "create", "sre", *L, "--token")
        assert key["registered_in"] == lake and key["token"]
        assert run("keys", "show", "sre", "--json")["public_key"] == key["public_key"]
        other = sl.AgentKey.generate().public_key
        run("keys", "register", "bot", other, *L)
        assert {r["agent"] for r in run("keys", "list", *L)["keys"]} == {"sre", "bot"}
        assert run("keys", "token", "bot", *L)["token"]
        assert run("keys", "revoke", "bot", other, *L)["revoked"] == 1

        es = run(
            "assert",
            "auth/jwt",
            "signing_algorithm",
            "ES256",
            "--agent",
            "sre",
            "--confidence",
            "0.5",
            "--source",
            "https://rfc",
            "--sign",
            *L,
        )["hash"]
        stored = sl.open(lake)
        try:
            (sig,) = stored.get(es).signatures  # type: ignore[attr-defined]
            assert sig.public_key == key["public_key"]
        finally:
            stored.close()
        run("vote", es, "--agent", "sre", "--weight", "-1", *L)
        run("lifecycle", es, "deprecated", "--agent", "sre", "--reason", "wrong", *L)
        run("supersede", es, "--kind", "invalidate", "--reason", "broke auth", "--agent", "sre", *L)
        run(
            "constrain",
            "auth/jwt",
            "--forbidden",
            "ES256",
            "--must-use",
            "RS256",
            "--reason",
            "JWT incident",
            "--agent",
            "sre",
            *L,
        )
        check = run("check", "auth/jwt", "--proposed", "ES256", "--agent", "impl", *L, code=1)
        assert check["ok"] is False and check["violations"]
        answer = run(
            "query",
            "auth/jwt",
            "signing_algorithm",
            "--lifecycle",
            "approved",
            "--agent",
            "impl",
            *L,
        )
        assert answer["value"] == "RS256"
        assert run("provenance", answer["query_id"], *L)["provenance"]
        assert run("trace", "impl", "--since=-1h", *L)["trace"]
        run("diff", "--since=-1h", "--subject", "auth/*", *L)
        run("blame", "auth/jwt", "signing_algorithm", *L)
        assert run("impact", es, "--depth", "1", *L)["summary"]
        run("timeline", "auth/jwt", "signing_algorithm", *L)
        found = run("search", "which algorithm signs tokens?", "--lifecycle", "approved", *L)
        assert found["results"][0]["value"] == '"RS256"' and len(found["query_id"]) == 64
        run("postmortem", "--subject", "auth/*", "--at", "2026-01-15T21:04:00Z", *L)
        out = tmp_path / "assertions.parquet"
        exported = run("export", "assertions", "--out", str(out), *L)
        assert exported["rows"] == len(pl_read(out))
        run("export", "audit", "--out", str(tmp_path / "audit.csv"), *L)
        run("export", "votes", "--out", str(tmp_path / "votes.jsonl"), *L)
        assert set(run("flush", "--compact", *L)) == {"flushed_frames", "compacted_partitions"}
        status = run("status", *L)
        assert status["tables"]["assertions"]["rows"] == exported["rows"]
        assert run("doctor", *L)["ok"] is True
        ranked = run("trust", "run", *L)["scores"]
        assert {r["topic"] for r in ranked} >= {"", "auth"}
        assert run("trust", "scores", "--topic", "auth", "--top", "3", *L)["scores"]
        why = run("trust", "explain", "platform-team", "--topic", "auth", *L)["explain"]
        assert why[0]["kind"] == "vote"
        assert run("garden", *L)["scores"] > 0
        assert run("dojo", "stats", *L)["stats"]
        assert run("dojo", "export", str(tmp_path / "dojo"), *L)["samples"] > 0

        missing = {c for c in ALL if c[0] not in SERVERS and c != ("keys",)} - run.ran
        assert not missing, f"commands without a --json run: {sorted(missing)}"

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["query", "a", "b"], "no lake given"),
            (["query", "a", "b", "--lake", "/nonexistent"], "is not a steme_lake"),
            (["query", "a", "b", "--lake", "LAKE", "--lens", "vibes"], "unknown lens"),
            (["vote", "12" * 32, "--agent", "x", "--lake", "LAKE"], "not in this lake"),
            (["assert", "a", "b", "c", "--agent", "x", "--lake", "LAKE"], "evidence"),
            (
                [
                    "assert",
                    "a",
                    "b",
                    "c",
                    "--agent",
                    "x",
                    "--source",
                    "s",
                    "--meta",
                    "{",
                    "--lake",
                    "LAKE",
                ],
                "--meta must be JSON",
            ),
            (["keys", "show", "ghost", "--wallet", "WALLET"], "no key for 'ghost'"),
            (["export", "nope", "--out", "x.parquet", "--lake", "LAKE"], "table"),
            (["serve", "--lake", "LAKE", "--batch-wait-ms", "-1"], "out of range"),
            (["serve", "--lake", "LAKE", "--batch-wait-ms", "soon"], "not a number"),
        ],
    )
    def test_errors_are_one_line(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
    ) -> None:
        lake = tmp_path / "lake"
        sl.open(lake).close()
        args = [
            str(lake) if a == "LAKE" else str(tmp_path / "w") if a == "WALLET" else a for a in args
        ]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("steme: error: ") and message in err and err.count("\n") == 1


def pl_read(path: Path) -> Any:
    import polars as pl

    return pl.read_parquet(path)


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["query", "a", "b", "--lifecyle", "approved"], "--lifecycle"),
        (["trust", "scores", "--topc", "auth"], "--topic"),
        (["doctor", "--repiar"], "--repair"),
    ],
)
def test_misspelled_options_name_the_close_match(
    argv: list[str], hint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A typo is refused (exit 2), never ignored, and the option meant is named."""
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    assert f"did you mean '{hint}'?" in capsys.readouterr().err


def test_csv_export_keeps_nested_values_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every table's list and struct columns survive a CSV export as JSON text."""
    import polars as pl

    lake_path = tmp_path / "lake"
    with sl.open(lake_path) as lake:
        lake.import_events(JWT_EVENTS)
    run = Runner(capsys)
    L = ["--lake", str(lake_path), "--json"]
    for table in ("assertions", "votes", "lifecycle", "supersessions", "constraints", "audit"):
        with sl.open(lake_path) as lake:
            original = lake.table(table).collect()
        out = tmp_path / f"{table}.csv"
        assert run("export", table, "--out", str(out), *L)["rows"] == original.height
        back = pl.read_csv(out, infer_schema=False)
        for name, dtype in original.schema.items():
            if isinstance(dtype, pl.List | pl.Struct):
                want = [None if v is None else json.loads(json.dumps(v, default=str))
                        for v in original[name].to_list()]  # fmt: skip
                got = [None if v is None else json.loads(v) for v in back[name].to_list()]
                assert got == want, (table, name)


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_works_before_and_after_the_command(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--debug`` only worked before the command."""
    missing = ["status", "--lake", str(tmp_path / "nowhere" / "lake")]
    argv = ["--debug", *missing] if where == "before" else [*missing, "--debug"]
    assert main(missing) == 2  # without it: one line, no traceback
    assert "Traceback" not in capsys.readouterr().err
    assert main(argv) == 2  # with it: the traceback too
    err = capsys.readouterr().err
    assert "Traceback" in err and "steme: error:" in err


def test_warnings_are_one_note_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Warnings printed as raw Python warnings, with a file path and a source line."""
    lake_path = tmp_path / "lake"
    with sl.open(lake_path) as lake:
        lake.import_events(JWT_EVENTS)
    assert (
        main(["trace", "lead-orchestratr", "--since", "2026-01-01", "--lake", str(lake_path)]) == 0
    )
    err = capsys.readouterr().err
    assert err.startswith("note: agent 'lead-orchestratr' never asked"), err
    assert "lead-orchestrator" in err and ".py:" not in err and err.count("\n") == 1


def test_tables_fit_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tables were 220 characters wide, with shape and type rows and 64-hex ids."""
    import re

    lake_path = tmp_path / "lake"
    with sl.open(lake_path) as lake:
        lake.import_events(JWT_EVENTS)
    monkeypatch.setenv("COLUMNS", "100")
    argv = ["trace", "lead-orchestrator", "--since", "2026-01-01", "--lake", str(lake_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 100, out
    assert "shape:" not in out and " str " not in out and not re.search(r"[0-9a-f]{64}", out)
    assert re.search(r"[0-9a-f]{12}…", out) and "--wide shows them" in out
    assert main([*argv, "--wide"]) == 0
    wide = capsys.readouterr().out
    assert re.search(r"[0-9a-f]{64}", wide) and "contributing" in wide


def test_every_option_and_argument_has_help() -> None:
    """Help text on every option, the same words for the same parameter everywhere."""
    missing = []

    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, (*path, name))
            elif not action.help and not isinstance(action, argparse._HelpAction):
                missing.append((" ".join(path), action.option_strings or action.dest))

    walk(build_parser(), ())
    assert not missing, missing
