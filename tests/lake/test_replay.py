"""Client-signed writes: verified, fresh, and accepted once, across reopen and processes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import steme_lake as sl
from steme_lake._utils.timeparse import now_us
from steme_lake.lake import _rows as rows
from tests.conftest import PYTHON, child_env


def _signed(key: sl.AgentKey, value: str = "RS256", *, at: int | None = None) -> dict:
    row = rows.assertion_row("auth/jwt", "alg", value, agent="a", source="adr-17")
    sig = key.sign_content(row.content_id(), now_us() if at is None else at)
    return {"signatures": [sig]}


def _write(lake: sl.Lake, value: str = "RS256", **sigs: object) -> str:
    return lake.assert_("auth/jwt", "alg", value, agent="a", source="adr-17", **sigs)  # type: ignore[arg-type]


class TestContentSignedWrites:
    """The lake verifies content signatures and refuses stale or replayed ones."""

    def test_accepted_and_stored(self, tmp_lake: sl.Lake) -> None:
        key = sl.AgentKey.generate()
        sigs = _signed(key)
        rid = _write(tmp_lake, **sigs)
        (stored,) = tmp_lake.get(rid).signatures  # type: ignore[attr-defined]
        assert stored == sigs["signatures"][0]
        row = rows.assertion_row("auth/jwt", "alg", "RS256", agent="a", source="adr-17")
        assert sl.verify_signature(rid, stored, content_id=row.content_id())

    def test_forged_content(self, tmp_lake: sl.Lake) -> None:
        sigs = _signed(sl.AgentKey.generate(), "RS256")
        with pytest.raises(sl.SignatureError, match="does not verify"):
            _write(tmp_lake, "ES256", **sigs)
        assert tmp_lake.assertions.collect().height == 0

    def test_replay_refused(self, tmp_lake: sl.Lake) -> None:
        sigs = _signed(sl.AgentKey.generate())
        _write(tmp_lake, **sigs)
        with pytest.raises(sl.SignatureError, match="replay"):
            _write(tmp_lake, **sigs)
        assert tmp_lake.assertions.collect().height == 1

    def test_replay_in_one_batch_refused(self, tmp_lake: sl.Lake) -> None:
        sigs = _signed(sl.AgentKey.generate())["signatures"]
        one = {
            "subject": "auth/jwt",
            "predicate": "alg",
            "object": "RS256",
            "agent": "a",
            "source": "adr-17",
            "signatures": sigs,
        }
        with pytest.raises(sl.SignatureError, match="replay"):
            tmp_lake.assert_many([one, dict(one)])
        assert tmp_lake.assertions.collect().height == 0

    def test_replay_of_a_bulk_write_refused(self, tmp_lake: sl.Lake) -> None:
        """A large frame is learnt by the vectorized path: its signatures are known too."""
        key = sl.AgentKey.generate()
        batch = []
        for i in range(100):
            row = rows.assertion_row("svc/x", "p", i, agent="a", source=f"s{i}")
            sig = key.sign_content(row.content_id(), now_us())
            batch.append(
                {
                    "subject": "svc/x",
                    "predicate": "p",
                    "object": i,
                    "agent": "a",
                    "source": f"s{i}",
                    "signatures": [sig],
                }
            )
        tmp_lake.assert_many(batch)
        with sl.open(tmp_lake.path) as other:
            # Learnt from the committed frame while catching up, before any seeding.
            assert len(other._ledger) == 100 and not other._ledger.seeded
            with pytest.raises(sl.SignatureError, match="replay"):
                other.assert_many([batch[73]])
        assert tmp_lake.assertions.collect().height == 100

    @pytest.mark.parametrize("offset_s", [-301, 301])
    def test_stale_or_future_refused(self, tmp_lake: sl.Lake, offset_s: int) -> None:
        sigs = _signed(sl.AgentKey.generate(), at=now_us() + offset_s * 1_000_000)
        with pytest.raises(sl.SignatureError, match="window"):
            _write(tmp_lake, **sigs)

    def test_replay_refused_after_flush_and_reopen(self, lake_path: Path) -> None:
        sigs = _signed(sl.AgentKey.generate())
        with sl.open(lake_path) as lake:
            _write(lake, **sigs)
            lake.flush()
        with sl.open(lake_path) as lake, pytest.raises(sl.SignatureError, match="replay"):
            _write(lake, **sigs)

    def test_replay_refused_in_another_process(self, lake_path: Path, tmp_path: Path) -> None:
        """A second process that has the lake open learns the first one's signatures."""
        key = sl.AgentKey.generate()
        row = rows.assertion_row("auth/jwt", "alg", "RS256", agent="a", source="adr-17")
        sig = key.sign_content(row.content_id(), now_us())
        with sl.open(lake_path) as lake:
            lake.query("x", "y", agent="warm")  # open and seeded before the other writes
            script = (
                "import sys, steme_lake as sl\n"
                "lake = sl.open(sys.argv[1])\n"
                "sig = sl.Signature(sys.argv[2], sys.argv[3], int(sys.argv[4]))\n"
                "lake.assert_('auth/jwt', 'alg', 'RS256', agent='a', source='adr-17', "
                "signatures=[sig])\n"
                "lake.close()\n"
            )
            subprocess.run(
                [
                    PYTHON,
                    "-c",
                    script,
                    str(lake_path),
                    sig.public_key,
                    sig.signature,
                    str(sig.signed_at),
                ],
                check=True,
                env=child_env(),
                timeout=120,
            )
            with pytest.raises(sl.SignatureError, match="replay"):
                _write(lake, signatures=[sig])
            assert lake.assertions.collect().height == 1

    def test_ready_id_signature_still_needs_at(self, tmp_lake: sl.Lake) -> None:
        key = sl.AgentKey.generate()
        with pytest.raises(sl.ValidationError, match="at="):
            _write(tmp_lake, signatures=[key.sign("ab" * 32)])
