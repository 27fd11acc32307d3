"""ed25519 signatures over record ids."""

from __future__ import annotations

import pytest

from steme_lake import AgentKey, Signature, SignatureError, ValidationError, verify_signature
from steme_lake.model import verify_signatures

RID = "12" * 32
OTHER = "34" * 32


class TestSignatures:
    """A signature verifies only for its record and its key."""

    def test_valid(self) -> None:
        key = AgentKey.generate()
        assert verify_signature(RID, key.sign(RID))

    def test_every_flipped_byte_is_rejected(self) -> None:
        key = AgentKey.generate()
        sig = key.sign(RID)
        raw = bytearray.fromhex(sig.signature)
        for i in range(len(raw)):
            flipped = bytearray(raw)
            flipped[i] ^= 0x01
            assert not verify_signature(RID, Signature(sig.public_key, flipped.hex()))

    def test_signature_of_another_record(self) -> None:
        key = AgentKey.generate()
        assert not verify_signature(OTHER, key.sign(RID))

    def test_swapped_key(self) -> None:
        alice, mallory = AgentKey.generate(), AgentKey.generate()
        sig = alice.sign(RID)
        assert not verify_signature(RID, Signature(mallory.public_key, sig.signature))

    def test_multi_sig(self) -> None:
        keys = [AgentKey.generate() for _ in range(3)]
        verify_signatures(RID, [k.sign(RID) for k in keys])
        with pytest.raises(SignatureError, match="#1"):
            verify_signatures(RID, [keys[0].sign(RID), keys[1].sign(OTHER)])

    def test_seed_round_trip(self) -> None:
        key = AgentKey.generate()
        assert AgentKey.from_seed(key.seed.hex()).public_key == key.public_key

    def test_malformed(self) -> None:
        with pytest.raises(ValidationError):
            Signature("zz", "00")
        with pytest.raises(ValidationError):
            AgentKey.generate().sign("not-an-id")


class TestContentSignatures:
    """A client's signature covers the content id and its signing time, nothing else."""

    def test_valid(self) -> None:
        key = AgentKey.generate()
        sig = key.sign_content(RID, 1_700_000_000_000_000)
        assert sig.signed_at == 1_700_000_000_000_000
        assert verify_signature("ff" * 32, sig, content_id=RID)

    def test_other_content_or_time(self) -> None:
        key = AgentKey.generate()
        sig = key.sign_content(RID, 5)
        assert not verify_signature(RID, sig, content_id=OTHER)
        moved = Signature(sig.public_key, sig.signature, signed_at=6)
        assert not verify_signature(RID, moved, content_id=RID)

    def test_not_interchangeable_with_id_signatures(self) -> None:
        key = AgentKey.generate()
        by_id = key.sign(RID)
        assert not verify_signature(
            RID, Signature(by_id.public_key, by_id.signature, 0), content_id=RID
        )

    def test_needs_the_content_id(self) -> None:
        sig = AgentKey.generate().sign_content(RID, 5)
        with pytest.raises(ValidationError, match="content_id"):
            verify_signature(RID, sig)

    @pytest.mark.parametrize("bad", [-1, 1.5, "5", True, 2**63])
    def test_bad_signed_at(self, bad: object) -> None:
        with pytest.raises(ValidationError, match="signed_at"):
            Signature("ab" * 32, "cd" * 64, signed_at=bad)  # type: ignore[arg-type]
