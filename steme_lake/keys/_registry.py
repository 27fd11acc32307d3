"""The agent registry of a lake: which ed25519 public keys speak for which agent.

The registry is one JSON file inside the lake folder, ``_agents/registry.json``,
rewritten whole (temp file, fsync, rename) under a file lock, so the CLI can
register an agent while a server runs; the server re-reads the file when it
changes. Read tokens are stored as SHA-256 digests, never in clear.

Examples
--------
>>> import tempfile, steme_lake as sl
>>> root = tempfile.mkdtemp() + "/lake"
>>> sl.open(root).close()
>>> registry = AgentRegistry(root)
>>> key = sl.AgentKey.generate()
>>> registry.register("deploy-agent", key.public_key)
>>> registry.agent_of(key.public_key)
'deploy-agent'
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
from pathlib import Path
from typing import Any

import polars as pl

from steme_lake._exceptions import KeyStoreError, ValidationError
from steme_lake._utils.locks import ProcessFileLock
from steme_lake._utils.timeparse import now_us, us_to_iso
from steme_lake.model.signing import Signature
from steme_lake.storage.fs import LakeFS

__all__ = ["REGISTRY_FILE", "AgentRegistry"]

REGISTRY_FILE = "_agents/registry.json"
_LOCK_FILE = "_agents/registry.lock"
_FORMAT = "steme_lake/agents/v1"
MAX_AGENT = 256


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _check_agent(agent: Any) -> str:
    if not isinstance(agent, str) or not agent or len(agent) > MAX_AGENT or agent != agent.strip():
        raise ValidationError(
            f"agent must be non-empty text of at most {MAX_AGENT} characters without "
            f"surrounding spaces, got {agent!r}"
        )
    return agent


def _check_key(public_key: Any) -> str:
    try:
        Signature(public_key=public_key, signature="0" * 128)
    except ValidationError:
        raise ValidationError(
            "public_key must be an ed25519 public key as 64 lowercase hex characters "
            "(AgentKey.public_key, or `steme keys create`)"
        ) from None
    return str(public_key)


class AgentRegistry:
    """Agents, their public keys and their read-token digests, for one lake."""

    def __init__(self, lake_path: str | os.PathLike[str]) -> None:
        root = Path(lake_path)
        # A local lake's folder, or the WAL folder (home.json) of a lake on object storage.
        if not ((root / "steme_lake.json").exists() or (root / "home.json").exists()):
            raise KeyStoreError(
                f"{root} is not a steme_lake folder; create it first (`steme init {root}`)"
            )
        self._fs = LakeFS(root)
        self._file = self._fs.path(REGISTRY_FILE)
        self._plock = ProcessFileLock(self._fs.makedirs("_agents") / Path(_LOCK_FILE).name)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._data: dict[str, Any] = {"format": _FORMAT, "agents": {}}
        self._by_key: dict[str, str] = {}
        self._by_token: dict[str, str] = {}

    # ------------------------------------------------------------ reading

    def _load(self) -> dict[str, Any]:
        """The current file, re-read only when it changed."""
        try:
            st = self._file.stat()
        except FileNotFoundError:
            return self._data
        stamp = (st.st_mtime_ns, st.st_ino)
        with self._lock:
            if stamp != self._stamp:
                try:
                    data = json.loads(self._file.read_bytes())
                except (OSError, ValueError) as exc:
                    raise KeyStoreError(
                        f"cannot read the agent registry {self._file}: {exc}"
                    ) from exc
                if not isinstance(data, dict) or data.get("format") != _FORMAT:
                    raise KeyStoreError(f"{self._file} is not a steme_lake agent registry")
                self._data = data
                self._by_key = {
                    k["public_key"]: name
                    for name, entry in data["agents"].items()
                    for k in entry["keys"]
                    if k.get("revoked_at") is None
                }
                self._by_token = {
                    entry["token_sha256"]: name
                    for name, entry in data["agents"].items()
                    if entry.get("token_sha256")
                }
                self._stamp = stamp
            return self._data

    def agent_of(self, public_key: str) -> str | None:
        """The agent a (non-revoked) public key is registered to, or None."""
        self._load()
        return self._by_key.get(public_key)

    def agent_for_token(self, token: str) -> str | None:
        """The agent a read token belongs to, or None."""
        self._load()
        return self._by_token.get(_token_digest(token))

    def __contains__(self, agent: object) -> bool:
        return agent in self._load()["agents"]

    def __len__(self) -> int:
        return len(self._load()["agents"])

    def agents(self) -> pl.DataFrame:
        """One row per registered key: agent, public_key, added_at, revoked_at, has_token."""
        rows = [
            {
                "agent": name,
                "public_key": k["public_key"],
                "added_at": k["added_at"],
                "revoked_at": k.get("revoked_at"),
                "has_token": bool(entry.get("token_sha256")),
            }
            for name, entry in sorted(self._load()["agents"].items())
            for k in entry["keys"]
        ]
        schema = {
            "agent": pl.String,
            "public_key": pl.String,
            "added_at": pl.String,
            "revoked_at": pl.String,
            "has_token": pl.Boolean,
        }
        return pl.DataFrame(rows, schema=schema)

    # ------------------------------------------------------------ writing

    def _update(self, change: Any) -> Any:
        with self._plock.hold():
            self._stamp = None  # another process may have written since we read
            data = json.loads(json.dumps(self._load()))
            result = change(data)
            self._fs.write_atomic(REGISTRY_FILE, json.dumps(data, indent=1).encode())
            self._stamp = None
        return result

    def register(self, agent: str, public_key: str, *, token: bool = False) -> str | None:
        """Register ``public_key`` for ``agent`` (a new agent, or another key of it).

        With ``token=True`` a new read token is made and returned (shown once;
        only its digest is stored). A key can speak for one agent only.
        """
        agent, public_key = _check_agent(agent), _check_key(public_key)

        def change(data: dict[str, Any]) -> str | None:
            for name, entry in data["agents"].items():
                for k in entry["keys"]:
                    if k["public_key"] == public_key and name != agent:
                        raise KeyStoreError(
                            f"key {public_key[:16]}... is already registered to agent {name!r}; "
                            "a key speaks for one agent only: generate a new key"
                        )
            entry = data["agents"].setdefault(agent, {"keys": [], "token_sha256": None})
            known = {k["public_key"]: k for k in entry["keys"]}
            if public_key in known:
                known[public_key]["revoked_at"] = None
            else:
                entry["keys"].append(
                    {"public_key": public_key, "added_at": us_to_iso(now_us()), "revoked_at": None}
                )
            if not token:
                return None
            fresh = secrets.token_urlsafe(32)
            entry["token_sha256"] = _token_digest(fresh)
            return fresh

        result: str | None = self._update(change)
        return result

    def new_token(self, agent: str) -> str:
        """Make (or replace) the agent's read token; return it (shown once)."""
        fresh = secrets.token_urlsafe(32)

        def change(data: dict[str, Any]) -> None:
            self._entry(data, agent)["token_sha256"] = _token_digest(fresh)

        self._update(change)
        return fresh

    def revoke(self, agent: str, public_key: str | None = None) -> int:
        """Revoke one key of the agent, or all its keys and its token; return keys revoked."""

        def change(data: dict[str, Any]) -> int:
            entry = self._entry(data, agent)
            count = 0
            for k in entry["keys"]:
                if k.get("revoked_at") is None and public_key in (None, k["public_key"]):
                    k["revoked_at"] = us_to_iso(now_us())
                    count += 1
            if public_key is None:
                entry["token_sha256"] = None
            elif count == 0:
                raise KeyStoreError(
                    f"agent {agent!r} has no active key {public_key[:16]}...; see `steme keys list`"
                )
            return count

        result: int = self._update(change)
        return result

    @staticmethod
    def _entry(data: dict[str, Any], agent: str) -> dict[str, Any]:
        try:
            entry: dict[str, Any] = data["agents"][agent]
        except KeyError:
            raise KeyStoreError(
                f"agent {agent!r} is not registered; register it first "
                "(`steme keys register AGENT PUBLIC_KEY`)"
            ) from None
        return entry
