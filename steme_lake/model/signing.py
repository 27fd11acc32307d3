"""ed25519 signatures over record ids (pynacl).

A signature signs ``b"steme_lake/sig/v1\\n" + bytes.fromhex(record_id)``. The
id already covers the content and the commit time, so a signature cannot be
moved to another record or replayed at another time. A record may carry
several signatures (multi-sig).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import nacl.exceptions
import nacl.signing

from steme_lake._exceptions import SignatureError, ValidationError
from steme_lake.model.ids import is_record_id

__all__ = ["AgentKey", "Signature", "verify_signature", "verify_signatures"]

_DOMAIN = b"steme_lake/sig/v1\n"
_HEX = frozenset("0123456789abcdef")


def _message(record_id: str) -> bytes:
    if not is_record_id(record_id):
        raise ValidationError(f"record id must be 64 lowercase hex characters, got {record_id!r}")
    return _DOMAIN + bytes.fromhex(record_id)


@dataclass(frozen=True, slots=True)
class Signature:
    """One ed25519 signature: the signer's public key and the signature, in hex."""

    public_key: str
    signature: str

    def __post_init__(self) -> None:
        if not (len(self.public_key) == 64 and set(self.public_key) <= _HEX):
            raise ValidationError("signature public_key must be 64 lowercase hex characters")
        if not (len(self.signature) == 128 and set(self.signature) <= _HEX):
            raise ValidationError("signature must be 128 lowercase hex characters")

    def as_dict(self) -> dict[str, str]:
        return {"public_key": self.public_key, "signature": self.signature}


class AgentKey:
    """An agent's ed25519 key pair.

    Examples
    --------
    >>> key = AgentKey.generate()
    >>> sig = key.sign("ab" * 32)
    >>> verify_signature("ab" * 32, sig)
    True
    >>> verify_signature("cd" * 32, sig)
    False
    """

    __slots__ = ("_signing",)

    def __init__(self, signing_key: nacl.signing.SigningKey) -> None:
        self._signing = signing_key

    @classmethod
    def generate(cls) -> AgentKey:
        return cls(nacl.signing.SigningKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes | str) -> AgentKey:
        """A key from its 32-byte seed (bytes or 64 hex characters)."""
        raw = bytes.fromhex(seed) if isinstance(seed, str) else seed
        if len(raw) != 32:
            raise ValidationError("an ed25519 seed is 32 bytes (64 hex characters)")
        return cls(nacl.signing.SigningKey(raw))

    @property
    def public_key(self) -> str:
        return bytes(self._signing.verify_key).hex()

    @property
    def seed(self) -> bytes:
        """The private seed. Keep it secret."""
        return bytes(self._signing)

    def sign(self, record_id: str) -> Signature:
        signed = self._signing.sign(_message(record_id))
        return Signature(public_key=self.public_key, signature=signed.signature.hex())

    def __repr__(self) -> str:
        return f"AgentKey(public_key={self.public_key[:16]}...)"


def verify_signature(record_id: str, signature: Signature) -> bool:
    """True when ``signature`` is a valid signature of ``record_id`` by its key."""
    try:
        key = nacl.signing.VerifyKey(bytes.fromhex(signature.public_key))
        key.verify(_message(record_id), bytes.fromhex(signature.signature))
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
        return False
    return True


def verify_signatures(record_id: str, signatures: Iterable[Signature]) -> None:
    """Raise `SignatureError` naming the first signature that does not verify."""
    for index, sig in enumerate(signatures):
        if not verify_signature(record_id, sig):
            raise SignatureError(
                f"signature #{index} (key {sig.public_key[:16]}...) does not verify for "
                f"record {record_id}; sign the record's id with the agent's key"
            )
