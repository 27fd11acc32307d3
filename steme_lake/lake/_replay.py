"""Replay refusal for signatures a client made before commit.

A signature with ``signed_at`` signs a record's content id, not its id (the
lake assigns the time, and so the id, at commit). The same signed request sent
twice would therefore make two records. The ledger refuses that: a content
signature is accepted only while fresh (``signed_at`` within the window around
the commit clock) and only once. It learns every committed frame, this
process's and other processes' (the WAL delivers those under the commit lock
before a commit is built), so the check holds across processes sharing a lake.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from steme_lake._exceptions import SignatureError
from steme_lake._utils.timeparse import us_to_iso
from steme_lake.model.schema import RecordKind, spec
from steme_lake.model.signing import Signature
from steme_lake.wal import WalFrame

__all__ = ["SignatureLedger"]

SIGNED_KINDS = tuple(k for k in RecordKind if spec(k).signed)
_SMALL = 64  # rows: below this a frame is read in Python


class SignatureLedger:
    """The content signatures used within the freshness window."""

    def __init__(self, *, max_age_us: int, max_future_us: int) -> None:
        self.max_age_us = max_age_us
        self.max_future_us = max_future_us
        self._seen: dict[str, int] = {}  # signature hex -> signed_at
        self._lock = threading.Lock()
        self.seeded = False
        self._pruned_at = 0

    # ------------------------------------------------------------ learning

    def add_frames(self, frames: Iterable[WalFrame]) -> None:
        for frame in frames:
            if RecordKind(frame.kind) in SIGNED_KINDS:
                self._add_table(frame.table)

    def _add_table(self, table: pa.Table) -> None:
        column = table.column("signatures")
        if table.num_rows <= _SMALL:
            # The common commit (one write): plain Python beats five compute kernels.
            found = {
                s["signature"]: s["signed_at"]
                for sigs in column.to_pylist()
                for s in sigs or ()
                if s["signed_at"] is not None
            }
        else:
            flat = pc.list_flatten(column)
            signed_at = pc.struct_field(flat, "signed_at")
            if len(flat) == 0 or signed_at.null_count == len(signed_at):
                return
            mask = pc.is_valid(signed_at)
            sigs = pc.filter(pc.struct_field(flat, "signature"), mask).to_pylist()
            times = pc.filter(signed_at, mask).to_pylist()
            found = dict(zip(sigs, times, strict=True))
        if found:
            with self._lock:
                self._seen.update(found)

    def seed(self, tables: Callable[[RecordKind], pl.LazyFrame], now: int) -> None:
        """Learn the content signatures already stored within the window."""
        since = now - self.max_age_us - self.max_future_us
        found: dict[str, int] = {}
        for kind in SIGNED_KINDS:
            frame = (
                tables(kind)
                .filter(pl.col("recorded_at").dt.epoch("us") >= since)
                .select(pl.col("signatures").explode())
                .filter(pl.col("signatures").is_not_null())
                .unnest("signatures")
                .filter(pl.col("signed_at").is_not_null())
                .select("signature", "signed_at")
                .collect()
            )
            found.update(zip(frame["signature"], frame["signed_at"], strict=True))
        with self._lock:
            self._seen.update(found)
            self.seeded = True

    # ------------------------------------------------------------ checking

    def check(
        self, record_id: str, signatures: Iterable[Signature], now: int, batch: dict[str, int]
    ) -> None:
        """Refuse stale or used content signatures; add the fresh ones to ``batch``."""
        for sig in signatures:
            if sig.signed_at is None:
                continue
            if sig.signed_at < now - self.max_age_us or sig.signed_at > now + self.max_future_us:
                raise SignatureError(
                    f"signature by key {sig.public_key[:16]}... was made at "
                    f"{us_to_iso(sig.signed_at)}, outside the accepted window "
                    f"({self.max_age_us // 1_000_000} s before to "
                    f"{self.max_future_us // 1_000_000} s after the lake's clock, now "
                    f"{us_to_iso(now)}); sign the record again with the current time "
                    "(and check the client's clock)"
                )
            if sig.signature in self._seen or sig.signature in batch:
                raise SignatureError(
                    f"signature by key {sig.public_key[:16]}... was already used for a "
                    f"record (a replay); record {record_id[:16]}... was not written. "
                    "Sign each write anew"
                )
            batch[sig.signature] = sig.signed_at

    def claim(self, claimed: dict[str, int], now: int) -> None:
        with self._lock:
            self._seen.update(claimed)
            if now - self._pruned_at > self.max_age_us:
                horizon = now - self.max_age_us - self.max_future_us
                self._seen = {s: t for s, t in self._seen.items() if t >= horizon}
                self._pruned_at = now

    def __len__(self) -> int:
        return len(self._seen)
