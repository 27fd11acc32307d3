"""The agent wallet: ed25519 keys stored encrypted at rest.

One file per agent in the wallet folder (``$STEME_WALLET``, default
``~/.steme/wallet``), written whole with mode 0600. The 32-byte seed is sealed
with XSalsa20-Poly1305 (``nacl.secret.SecretBox``) under a key derived from
the passphrase with Argon2id (``nacl.pwhash``); the KDF parameters, the salt
and the public key are stored beside it, so the public key can be read
without the passphrase. The passphrase comes from the caller or from
``$STEME_WALLET_PASSPHRASE``.

Examples
--------
>>> import tempfile
>>> wallet = Wallet(tempfile.mkdtemp())
>>> key = wallet.create("research-agent", passphrase="correct horse")
>>> wallet.unlock("research-agent", passphrase="correct horse").public_key == key.public_key
True
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import blake3
import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils

from steme_lake._exceptions import KeyStoreError
from steme_lake.keys._registry import _check_agent
from steme_lake.model.signing import AgentKey

__all__ = ["PASSPHRASE_ENV", "WALLET_ENV", "Wallet"]

WALLET_ENV = "STEME_WALLET"
PASSPHRASE_ENV = "STEME_WALLET_PASSPHRASE"
_FORMAT = "steme_lake/wallet-key/v1"
_KDF = nacl.pwhash.argon2id
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def default_wallet_path() -> Path:
    """``$STEME_WALLET``, or ``~/.steme/wallet``."""
    return Path(os.environ.get(WALLET_ENV) or Path.home() / ".steme" / "wallet")


class Wallet:
    """A folder of passphrase-encrypted agent keys.

    Parameters
    ----------
    path
        The folder; default ``$STEME_WALLET`` or ``~/.steme/wallet``.
    opslimit, memlimit
        Argon2id cost (defaults: libsodium's "moderate" level, about half a
        second and 256 MiB per unlock on a laptop). Stored per key file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        opslimit: int = _KDF.OPSLIMIT_MODERATE,
        memlimit: int = _KDF.MEMLIMIT_MODERATE,
    ) -> None:
        self.path = Path(path) if path is not None else default_wallet_path()
        self.opslimit = opslimit
        self.memlimit = memlimit

    def _file(self, agent: str) -> Path:
        agent = _check_agent(agent)
        # A readable stem plus a hash: distinct agents never share a file, and a
        # name with "/" or ".." never leaves the folder.
        stem = _SAFE.sub("_", agent)[:64]
        return self.path / f"{stem}-{blake3.blake3(agent.encode()).hexdigest()[:12]}.key.json"

    @staticmethod
    def _passphrase(passphrase: str | None) -> bytes:
        value = passphrase if passphrase is not None else os.environ.get(PASSPHRASE_ENV)
        if not value:
            raise KeyStoreError(
                f"the wallet needs a passphrase: pass passphrase= or set ${PASSPHRASE_ENV}"
            )
        return value.encode("utf-8")

    def _box(self, passphrase: bytes, salt: bytes, opslimit: int, memlimit: int) -> Any:
        key = _KDF.kdf(
            nacl.secret.SecretBox.KEY_SIZE, passphrase, salt, opslimit=opslimit, memlimit=memlimit
        )
        return nacl.secret.SecretBox(key)

    def create(
        self, agent: str, *, passphrase: str | None = None, seed: bytes | None = None
    ) -> AgentKey:
        """Generate (or import, from ``seed``) the agent's key and store it encrypted."""
        target = self._file(agent)
        if target.exists():
            raise KeyStoreError(
                f"the wallet already holds a key for {agent!r} ({target}); "
                "remove that file first to replace it"
            )
        secret = self._passphrase(passphrase)
        key = AgentKey.from_seed(seed) if seed is not None else AgentKey.generate()
        salt = nacl.utils.random(_KDF.SALTBYTES)
        sealed = self._box(secret, salt, self.opslimit, self.memlimit).encrypt(key.seed)
        record = {
            "format": _FORMAT,
            "agent": agent,
            "public_key": key.public_key,
            "kdf": "argon2id",
            "opslimit": self.opslimit,
            "memlimit": self.memlimit,
            "salt": salt.hex(),
            "sealed_seed": bytes(sealed).hex(),
        }
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = target.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, json.dumps(record, indent=1).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        tmp.replace(target)
        return key

    def _read(self, agent: str) -> dict[str, Any]:
        target = self._file(agent)
        try:
            record: dict[str, Any] = json.loads(target.read_bytes())
        except FileNotFoundError:
            raise KeyStoreError(
                f"the wallet {self.path} holds no key for {agent!r}; create one with "
                f"`steme keys create {agent}`"
            ) from None
        except (OSError, ValueError) as exc:
            raise KeyStoreError(f"cannot read wallet key file {target}: {exc}") from exc
        if record.get("format") != _FORMAT or record.get("agent") != agent:
            raise KeyStoreError(f"{target} is not a wallet key file for {agent!r}")
        return record

    def public_key(self, agent: str) -> str:
        """The agent's public key (no passphrase needed)."""
        return str(self._read(agent)["public_key"])

    def unlock(self, agent: str, *, passphrase: str | None = None) -> AgentKey:
        """Decrypt the agent's key with the passphrase (or ``$STEME_WALLET_PASSPHRASE``)."""
        record = self._read(agent)
        secret = self._passphrase(passphrase)
        try:
            box = self._box(
                secret,
                bytes.fromhex(record["salt"]),
                int(record["opslimit"]),
                int(record["memlimit"]),
            )
            seed = box.decrypt(bytes.fromhex(record["sealed_seed"]))
        except nacl.exceptions.CryptoError:
            raise KeyStoreError(
                f"wrong passphrase for {agent!r}'s key (or the key file was altered)"
            ) from None
        except (KeyError, ValueError, TypeError) as exc:
            raise KeyStoreError(f"damaged wallet key file for {agent!r}: {exc}") from exc
        key = AgentKey.from_seed(seed)
        if key.public_key != record["public_key"]:
            raise KeyStoreError(f"the wallet key file for {agent!r} does not match its public key")
        return key

    def agents(self) -> list[str]:
        """The agents whose keys this wallet holds."""
        if not self.path.is_dir():
            return []
        names = []
        for file in sorted(self.path.glob("*.key.json")):
            try:
                names.append(str(json.loads(file.read_bytes())["agent"]))
            except (OSError, ValueError, KeyError):
                continue  # not ours; listing never fails on a stray file
        return sorted(names)
