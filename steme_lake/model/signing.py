"""ed25519 signatures over record ids (pynacl).

Two forms, both documented in ``docs/format.md``:

* signed at commit (``sign_with=``, imports with ``at=``): the signature signs
  ``b"steme_lake/sig/v1\\n" + bytes.fromhex(record_id)``. The id covers the
  content and the commit time.
* signed by a client before the lake assigns the time (HTTP, MCP): the
  signature carries ``signed_at`` (microseconds) and signs
  ``b"steme_lake/sig/v2\\n" + bytes.fromhex(content_id) + b"\\n" + str(signed_at)``,
  where ``content_id`` is the record id without its time
  (`steme_lake.model.ids.content_id`). The server refuses a ``signed_at``
  outside its freshness window and a signature it has seen before (replay).

Either way a signature cannot be moved to other content. A record may carry
several signatures (multi-sig).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import blake3
import nacl.exceptions
import nacl.signing

from steme_lake._exceptions import SignatureError, ValidationError
from steme_lake.model.ids import is_record_id

__all__ = [
    "READ_SIGNATURE_HEADER",
    "AgentKey",
    "Signature",
    "read_message",
    "verify_signature",
    "verify_signatures",
]

_DOMAIN = b"steme_lake/sig/v1\n"
_DOMAIN_V2 = b"steme_lake/sig/v2\n"
_DOMAIN_READ = b"steme_lake/read/v1\n"
READ_SIGNATURE_HEADER = "X-Steme-Signature"
_HEX = frozenset("0123456789abcdef")


def _message(record_id: str) -> bytes:
    if not is_record_id(record_id):
        raise ValidationError(f"record id must be 64 lowercase hex characters, got {record_id!r}")
    return _DOMAIN + bytes.fromhex(record_id)


def _content_message(content_id: str, signed_at: int) -> bytes:
    if not is_record_id(content_id):
        raise ValidationError(f"content id must be 64 lowercase hex characters, got {content_id!r}")
    return _DOMAIN_V2 + bytes.fromhex(content_id) + b"\n%d" % signed_at


def read_message(method: str, path: str, payload: bytes, signed_at: int) -> bytes:
    """What an agent signs to ask a question as itself (a signed read): the method,
    the path, the BLAKE3 of the body (of the query string for GET) and the time.

    Examples
    --------
    >>> read_message("POST", "/query", b"{}", 1)[:19]
    b'steme_lake/read/v1\\n'
    """
    digest = blake3.blake3(payload).digest()
    return b"%s%s\n%s\n%s\n%d" % (
        _DOMAIN_READ,
        method.upper().encode(),
        path.encode(),
        digest,
        signed_at,
    )


@dataclass(frozen=True, slots=True)
class Signature:
    """One ed25519 signature: the signer's public key and the signature, in hex.

    ``signed_at`` (microseconds since the epoch) is set when a client signed the
    record's content id before commit; it is ``None`` for a signature of the
    record id itself.
    """

    public_key: str
    signature: str
    signed_at: int | None = None

    def __post_init__(self) -> None:
        if not (
            isinstance(self.public_key, str)
            and len(self.public_key) == 64
            and set(self.public_key) <= _HEX
        ):
            raise ValidationError("signature public_key must be 64 lowercase hex characters")
        if not (
            isinstance(self.signature, str)
            and len(self.signature) == 128
            and set(self.signature) <= _HEX
        ):
            raise ValidationError("signature must be 128 lowercase hex characters")
        if self.signed_at is not None and (
            type(self.signed_at) is not int or not 0 <= self.signed_at < 2**62
        ):
            raise ValidationError(
                "signed_at must be an integer number of microseconds since 1970-01-01 UTC"
            )

    def as_dict(self) -> dict[str, Any]:
        return {
            "public_key": self.public_key,
            "signature": self.signature,
            "signed_at": self.signed_at,
        }


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
        """Sign a record id (the lake's own form: the id covers the commit time)."""
        signed = self._signing.sign(_message(record_id))
        return Signature(public_key=self.public_key, signature=signed.signature.hex())

    def sign_content(self, content_id: str, signed_at: int) -> Signature:
        """Sign a record's content id at ``signed_at`` (microseconds): a client's form."""
        signed = self._signing.sign(_content_message(content_id, signed_at))
        return Signature(
            public_key=self.public_key, signature=signed.signature.hex(), signed_at=signed_at
        )

    def sign_read(self, method: str, path: str, payload: bytes, signed_at: int) -> str:
        """The ``X-Steme-Signature`` header value of a signed read:
        ``<public key>.<signed_at>.<signature>``, all hex but the decimal time."""
        signed = self._signing.sign(read_message(method, path, payload, signed_at))
        return f"{self.public_key}.{signed_at}.{signed.signature.hex()}"

    def __repr__(self) -> str:
        return f"AgentKey(public_key={self.public_key[:16]}...)"


def verify_signature(
    record_id: str, signature: Signature, *, content_id: str | None = None
) -> bool:
    """True when ``signature`` is a valid signature of the record by its key.

    A signature with ``signed_at`` signs the content id, which must then be given.
    """
    if signature.signed_at is None:
        message = _message(record_id)
    elif content_id is None:
        raise ValidationError(
            "this signature signs the record's content id (it has signed_at): pass content_id="
        )
    else:
        message = _content_message(content_id, signature.signed_at)
    try:
        key = nacl.signing.VerifyKey(bytes.fromhex(signature.public_key))
        key.verify(message, bytes.fromhex(signature.signature))
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
        return False
    return True


def verify_signatures(
    record_id: str,
    signatures: Iterable[Signature],
    *,
    content_id: str | None = None,
    only: Literal["content", "record"] | None = None,
) -> None:
    """Raise `SignatureError` naming the first signature that does not verify.

    ``only`` checks just the signatures of the content id (``signed_at``), which
    can be checked before the record's time and id exist, or just the others."""
    for index, sig in enumerate(signatures):
        if only is not None and (sig.signed_at is None) is (only == "content"):
            continue
        if not verify_signature(record_id, sig, content_id=content_id):
            what = (
                f"record {record_id}; sign the record's id with the agent's key"
                if sig.signed_at is None
                else f"content id {content_id} signed at {sig.signed_at}; sign that content "
                "id and time with the agent's key (see docs/api.md, 'Signing a write')"
            )
            raise SignatureError(
                f"signature #{index} (key {sig.public_key[:16]}...) does not verify for {what}"
            )
