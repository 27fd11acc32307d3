"""The agent wallet: keys encrypted at rest, unlocked by a passphrase."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import nacl.pwhash
import pytest

import steme_lake as sl
from steme_lake.keys import PASSPHRASE_ENV, Wallet

FAST = {
    "opslimit": nacl.pwhash.argon2id.OPSLIMIT_MIN,
    "memlimit": nacl.pwhash.argon2id.MEMLIMIT_MIN,
}


@pytest.fixture
def wallet(tmp_path: Path) -> Wallet:
    return Wallet(tmp_path / "wallet", **FAST)


class TestWallet:
    """Create, unlock, refuse the wrong passphrase, never store the seed in clear."""

    def test_round_trip(self, wallet: Wallet) -> None:
        key = wallet.create("research-agent", passphrase="pw")
        assert wallet.unlock("research-agent", passphrase="pw").seed == key.seed
        assert wallet.public_key("research-agent") == key.public_key
        assert wallet.agents() == ["research-agent"]

    def test_seed_not_in_clear(self, wallet: Wallet) -> None:
        key = wallet.create("a", passphrase="pw")
        (file,) = wallet.path.glob("*.key.json")
        assert key.seed.hex() not in file.read_text()
        assert stat.S_IMODE(file.stat().st_mode) == 0o600

    def test_wrong_passphrase(self, wallet: Wallet) -> None:
        wallet.create("a", passphrase="pw")
        with pytest.raises(sl.KeyStoreError, match="wrong passphrase"):
            wallet.unlock("a", passphrase="nope")

    def test_tampered_file(self, wallet: Wallet) -> None:
        wallet.create("a", passphrase="pw")
        (file,) = wallet.path.glob("*.key.json")
        text = file.read_text()
        i = text.index('"sealed_seed": "') + 20
        file.write_text(text[:i] + ("0" if text[i] != "0" else "1") + text[i + 1 :])
        with pytest.raises(sl.KeyStoreError, match=r"wrong passphrase|altered"):
            wallet.unlock("a", passphrase="pw")

    def test_passphrase_from_environment(
        self, wallet: Wallet, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv(PASSPHRASE_ENV, "from-env")
        key = wallet.create("a")
        assert wallet.unlock("a").public_key == key.public_key
        monkeypatch.delenv(PASSPHRASE_ENV)
        with pytest.raises(sl.KeyStoreError, match=PASSPHRASE_ENV):
            wallet.unlock("a")

    def test_no_overwrite_and_unknown(self, wallet: Wallet) -> None:
        wallet.create("a", passphrase="pw")
        with pytest.raises(sl.KeyStoreError, match="already holds"):
            wallet.create("a", passphrase="pw")
        with pytest.raises(sl.KeyStoreError, match="no key for 'b'"):
            wallet.unlock("b", passphrase="pw")

    def test_agent_names_stay_inside(self, wallet: Wallet) -> None:
        wallet.create("../../etc/passwd", passphrase="pw")
        wallet.create("team/agent", passphrase="pw")
        files = sorted(os.listdir(wallet.path))
        assert len(files) == 2 and all("/" not in f for f in files)
        assert sorted(wallet.agents()) == ["../../etc/passwd", "team/agent"]

    def test_import_seed(self, wallet: Wallet) -> None:
        key = sl.AgentKey.generate()
        assert wallet.create("a", passphrase="pw", seed=key.seed).public_key == key.public_key
