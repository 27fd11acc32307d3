"""The agent registry: keys speak for one agent; tokens are stored as digests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import steme_lake as sl
from steme_lake.keys import REGISTRY_FILE, AgentRegistry


@pytest.fixture
def registry(tmp_lake: sl.Lake) -> AgentRegistry:
    return AgentRegistry(tmp_lake.path)


class TestRegistry:
    """Registration, revocation, tokens, and sharing between instances."""

    def test_register_and_look_up(self, registry: AgentRegistry) -> None:
        key = sl.AgentKey.generate()
        assert registry.register("deploy-agent", key.public_key) is None
        assert registry.agent_of(key.public_key) == "deploy-agent"
        assert "deploy-agent" in registry and len(registry) == 1
        assert registry.agents()["public_key"].to_list() == [key.public_key]

    def test_key_speaks_for_one_agent(self, registry: AgentRegistry) -> None:
        key = sl.AgentKey.generate()
        registry.register("a", key.public_key)
        with pytest.raises(sl.KeyStoreError, match="already registered to agent 'a'"):
            registry.register("b", key.public_key)

    def test_revoke(self, registry: AgentRegistry) -> None:
        k1, k2 = sl.AgentKey.generate(), sl.AgentKey.generate()
        registry.register("a", k1.public_key)
        registry.register("a", k2.public_key)
        assert registry.revoke("a", k1.public_key) == 1
        assert registry.agent_of(k1.public_key) is None
        assert registry.agent_of(k2.public_key) == "a"
        with pytest.raises(sl.KeyStoreError, match="no active key"):
            registry.revoke("a", k1.public_key)
        with pytest.raises(sl.KeyStoreError, match="not registered"):
            registry.revoke("nobody")

    def test_tokens_are_digests(self, registry: AgentRegistry, lake_path: Path) -> None:
        token = registry.register("a", sl.AgentKey.generate().public_key, token=True)
        assert token is not None and registry.agent_for_token(token) == "a"
        assert token not in (lake_path / REGISTRY_FILE).read_text()
        fresh = registry.new_token("a")
        assert registry.agent_for_token(token) is None
        assert registry.agent_for_token(fresh) == "a"

    def test_another_instance_sees_changes(self, registry: AgentRegistry, lake_path: Path) -> None:
        other = AgentRegistry(lake_path)
        key = sl.AgentKey.generate()
        assert other.agent_of(key.public_key) is None
        registry.register("a", key.public_key)
        assert other.agent_of(key.public_key) == "a"

    @pytest.mark.parametrize("bad", ["", " a", "x" * 300, 5])
    def test_bad_agent(self, registry: AgentRegistry, bad: object) -> None:
        with pytest.raises(sl.ValidationError, match="agent"):
            registry.register(bad, sl.AgentKey.generate().public_key)  # type: ignore[arg-type]

    def test_bad_key(self, registry: AgentRegistry) -> None:
        with pytest.raises(sl.ValidationError, match="64 lowercase hex"):
            registry.register("a", "XYZ")

    def test_not_a_lake(self, tmp_path: Path) -> None:
        with pytest.raises(sl.KeyStoreError, match="steme init"):
            AgentRegistry(tmp_path)

    def test_damaged_file(self, registry: AgentRegistry, lake_path: Path) -> None:
        registry.register("a", sl.AgentKey.generate().public_key)
        (lake_path / REGISTRY_FILE).write_text(json.dumps({"format": "other"}))
        with pytest.raises(sl.KeyStoreError, match="not a steme_lake agent registry"):
            registry.agent_of("ab" * 32)
