"""The vector table: one row per assertion, in an embedded LanceDB under the lake.

It lives in ``<lake>/vectors/`` (never outside the lake's root) and is derived
from the lake: every assertion's text (subject, predicate, value, and the meta
``reason``/``context``) embedded once, with the immutable columns a search
filters on. It is brought up to the lake's position before each search
(`VectorStore.sync`: the assertions with a higher ``seq`` than the table's
highest), so a crash loses nothing (the lake is the truth) and nothing is
embedded twice (the position is read from the table itself, which LanceDB
commits atomically). `VectorStore.rebuild` makes it again from scratch.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute

from steme_lake._exceptions import LakeClosedError, ValidationError
from steme_lake.query._candidates import Tables
from steme_lake.vectors._model import Embedder

if TYPE_CHECKING:
    from steme_lake.lake import Lake

__all__ = ["VectorStore", "text_of"]

TABLE = "assertions"
FOLDER = "vectors"
BUILT = "index.json"  # beside the table: the size its vector index was built for
CHUNK = 4096  # assertions embedded and added per step
# Below INDEX_ROWS every search is exact (a flat scan of the filtered rows is fast
# enough). Above it an IVF index with 8-bit scalar quantization is built in the
# background and searched with refinement (the top NPROBES partitions, REFINE x k
# candidates re-ranked by exact distance: quantized indexes without refinement
# reach only ~0.4 recall@10 at 1M);
# rows added after the build are searched exactly beside it, and a filter that
# leaves at most EXACT_ROWS rows is searched exactly.
# Measured: exact search over 50k clustered vectors took 23-39 ms (p50), over
# 100k about 100 ms, while the index answers in 10-20 ms from 100k to 1M; on the
# CLIMATE-FEVER lake (9,210 real sentences) an index made no difference to how
# much of a claim's own evidence came back (0.236 with it and without).
INDEX_ROWS = 25_000
EXACT_ROWS = 2_000  # flat search reads each kept row's vector: ~10 us a row at 1M
FOLLOW_DELAY = 0.5  # seconds the follower waits after a commit for more of them
FOLLOW_IDLE = 2.0  # seconds between its checks that the lake is still open
# The index has about sqrt(rows) partitions (1,000 at 1M: LanceDB's default of
# one per 8,192 rows made 122, and 16 of them meant 150k comparisons a search);
# a search probes at least NPROBES of them, and more when a filter leaves fewer
# than k rows in those (so k results come back when k exist).
NPROBES = 16  # at 1M clustered vectors and 1,000 partitions: recall@10 1.0
REFINE = 10


def _schema(dim: int, model: str) -> pa.Schema:
    # Plain `string` columns: LanceDB's scalar (BTREE) index refuses `large_string`.
    return pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("seq", pa.int64(), nullable=False),
            pa.field("recorded_us", pa.int64(), nullable=False),
            pa.field("subject", pa.string(), nullable=False),
            pa.field("predicate", pa.string(), nullable=False),
            pa.field("value", pa.string(), nullable=False),
            pa.field("agent", pa.string(), nullable=False),
            pa.field("lifecycle", pa.string(), nullable=False),
            pa.field("confidence", pa.float64(), nullable=False),
            pa.field("source_hash", pa.string(), nullable=False),
            pa.field("text", pa.string(), nullable=False),
            pa.field("vector", pa.list_(pa.float32(), dim), nullable=False),
        ],
        metadata={"steme_lake.model": model},
    )


def _plain(value_json: str) -> str:
    """A stored value as a person reads it: strings without their JSON quotes, an
    object as ``key: value`` pairs.

    Examples
    --------
    >>> _plain('{"label":"SUPPORTS","text":"Ice is melting"}')
    'label: SUPPORTS; text: Ice is melting'
    """
    value = json.loads(value_json)
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "; ".join(
            f"{k}: {v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)}"
            for k, v in value.items()
        )
    return json.dumps(value, ensure_ascii=False)


def text_of(subject: str, predicate: str, value_json: str, meta_json: str | None) -> str:
    """The text embedded for an assertion.

    Examples
    --------
    >>> text_of("auth/jwt", "signing_algorithm", '"ES256"', '{"reason":"RFC 7518"}')
    'auth/jwt signing_algorithm: ES256. RFC 7518'
    """
    parts = [f"{subject} {predicate}: {_plain(value_json)}"]
    if meta_json:
        meta = json.loads(meta_json)
        if isinstance(meta, dict):
            parts += [str(meta[k]) for k in ("reason", "context", "claim") if meta.get(k)]
    return ". ".join(parts)


class VectorStore:
    """The lake's vector table for one embedding model."""

    def __init__(self, lake: Lake, embedder: Embedder) -> None:
        import lancedb

        self.lake = lake
        self.embedder = embedder
        self.folder = Path(lake.path) / FOLDER
        self._lancedb = lancedb
        self._lock = threading.Lock()
        self._db = lancedb.connect(str(self.folder))
        self._table: Any = None
        self._fts_rows = -1  # rows the full-text index covers
        self._checked = -1  # the lake's sequence number the table was last brought to
        self._position: int | None = None  # the highest seq the table holds (read once)
        self._newest = 0  # the latest recorded_us it holds
        # every row's recorded_us, sorted: how many rows a time filter keeps, exactly
        # and in microseconds (8 bytes a row), so a search as of T picks its plan
        self._times = np.empty(0, dtype=np.int64)
        # Whether the rows of the table's highest commit are all in: a commit's rows
        # share one seq and are added in chunks, so after a crash (or a failed
        # embedding) mid-commit the rest of that commit is still to add.
        self._whole = False
        self._building: threading.Thread | None = None
        self._index_lock = threading.Lock()  # one index change at a time (LanceDB refuses two)
        # Kept current in the background: commits of assertions wake a follower that
        # embeds them, so a search rarely has any catching up to do.
        self._wake = threading.Event()
        self._follower = threading.Thread(
            target=self._follow, name="steme-vectors-follow", daemon=True
        )
        lake._assertion_listeners.append(self._wake.set)
        self._follower.start()

    # ------------------------------------------------------------ the table

    def table(self) -> Any:
        if self._table is None:
            names = self._db.list_tables()
            names = getattr(names, "tables", names)
            if TABLE in names:
                table = self._db.open_table(TABLE)
                model = (table.schema.metadata or {}).get(b"steme_lake.model", b"").decode()
                if model != self.embedder.name:
                    raise ValidationError(
                        f"the lake's vectors were made by {model or 'another model'!r}, not "
                        f"{self.embedder.name!r}: rebuild them (lake.vectors.rebuild())"
                    )
                self._table = table
            else:
                self._table = self._db.create_table(
                    TABLE, schema=_schema(self.embedder.dim, self.embedder.name)
                )
        return self._table

    def position(self) -> int:
        """The highest lake ``seq`` the table holds (0: empty)."""
        if self._position is None:
            table = self.table()
            if table.count_rows() == 0:
                self._position, self._newest = 0, 0
                self._times = np.empty(0, dtype=np.int64)
            else:
                held = table.search().select(["seq", "recorded_us"]).limit(None).to_arrow()
                self._position = int(pa.compute.max(held["seq"]).as_py())
                self._times = np.sort(held["recorded_us"].to_numpy())
                self._newest = int(self._times[-1])
        return self._position

    def share_by(self, t: int) -> float:
        """The share of the table's rows recorded at or before ``t`` (1.0 when empty)."""
        self.position()
        times = self._times
        return float(np.searchsorted(times, t, side="right")) / len(times) if len(times) else 1.0

    def newest(self) -> int:
        """The latest ``recorded_us`` the table holds: a search as of then or later
        needs no time filter (the common case, "now")."""
        self.position()
        return self._newest

    def sync(self, progress: Any = None, *, view: tuple[Tables, int] | None = None) -> int:
        """Embed the assertions the table does not hold yet; how many were added.
        ``view``: the lake's tables and the sequence number they cover, when the
        caller holds them already (a search): nothing is read when it is unchanged."""
        with self._lock:
            tables, covered = view if view is not None else self.lake._view()
            if covered == self._checked:
                return 0
            table = self.table()
            start = self.position()
            resume = start > 0 and not self._whole
            after = pl.col("seq") >= start if resume else pl.col("seq") > start
            new = (
                tables.assertions.filter(after)
                .select(
                    "id", "seq", "recorded_at", "subject", "predicate", "object", "agent",
                    "lifecycle", "confidence", "source_hash", "meta",
                )
                .sort("seq")
                .collect()
            )  # fmt: skip
            if resume:
                held = table.search().where(f"seq = {start}").select(["id"]).limit(None).to_arrow()
                new = new.filter(~pl.col("id").is_in(held["id"].to_pylist()))
            self._whole = False
            for offset in range(0, new.height, CHUNK):
                chunk = new.slice(offset, CHUNK)
                texts = [
                    text_of(s, p, o, m)
                    for s, p, o, m in chunk.select(
                        "subject", "predicate", "object", "meta"
                    ).iter_rows()
                ]
                vectors = self.embedder.embed(texts).astype(np.float32)
                data = pa.table(
                    {
                        "id": chunk["id"].to_arrow().cast(pa.string()),
                        "seq": chunk["seq"].cast(pl.Int64).to_arrow(),
                        "recorded_us": chunk["recorded_at"].dt.epoch("us").to_arrow(),
                        "subject": chunk["subject"].to_arrow().cast(pa.string()),
                        "predicate": chunk["predicate"].to_arrow().cast(pa.string()),
                        "value": chunk["object"].to_arrow().cast(pa.string()),
                        "agent": chunk["agent"].to_arrow().cast(pa.string()),
                        "lifecycle": chunk["lifecycle"].to_arrow().cast(pa.string()),
                        "confidence": chunk["confidence"].cast(pl.Float64).to_arrow(),
                        "source_hash": chunk["source_hash"].to_arrow().cast(pa.string()),
                        "text": pa.array(texts, pa.string()),
                        "vector": pa.FixedSizeListArray.from_arrays(
                            pa.array(vectors.ravel(), pa.float32()), self.embedder.dim
                        ),
                    },
                    schema=table.schema,
                )
                table.add(data)
                self._position = int(chunk["seq"].max())  # type: ignore[arg-type]
                added = np.sort(data["recorded_us"].to_numpy())
                self._times = np.insert(self._times, np.searchsorted(self._times, added), added)
                self._newest = int(self._times[-1])
                if progress is not None:
                    progress(min(offset + CHUNK, new.height), new.height)
            self._whole = True
            self._checked = covered
        if new.height:
            self.maintain()
        return new.height

    def _follow(self) -> None:
        """Embed new assertions shortly after they are committed, until the lake closes."""
        import logging

        while True:
            woken = self._wake.wait(timeout=FOLLOW_IDLE)
            if self.lake._closed:
                return
            if not woken:
                continue
            time.sleep(FOLLOW_DELAY)  # let a burst of commits land first
            self._wake.clear()
            try:
                self.sync()
            except LakeClosedError:
                return
            except Exception:  # the next search catches up, and says what failed
                logging.getLogger("steme_lake.vectors").exception("keeping the vectors current")

    # ------------------------------------------------------------ the ANN index

    def indexed_rows(self) -> int:
        """How many rows the vector index covers (0: no index)."""
        for index in self.table().list_indices():
            if index.name == "vector_idx":
                return int(index.num_indexed_rows)
        return 0

    def build_index(self) -> bool:
        """Build (or rebuild) the vector index and the filter columns' scalar indexes,
        when the table has at least INDEX_ROWS rows; whether it built."""
        from lancedb.index import Bitmap, BTree, IvfSq

        table = self.table()
        rows = table.count_rows()
        if rows < INDEX_ROWS:
            return False
        # 8-bit scalar quantization: measured at 200k clustered vectors, recall@10 1.0
        # (IVF-PQ with 48 sub-vectors: 0.49, and 0.86 with 5x the refinement) and a
        # build 15 times faster (2.6 s against 38 s).
        config = IvfSq(distance_type="cosine", num_partitions=max(1, round(rows**0.5)))
        with self._index_lock:
            # one file instead of one per added chunk first: at 1M rows, 245 files
            # made every search 5 ms slower (12 s to rewrite, in the background)
            table.optimize()
            table.create_index("vector", config=config, replace=True)
            for column in ("id", "recorded_us", "subject"):
                table.create_index(column, config=BTree(), replace=True)
            table.create_index("lifecycle", config=Bitmap(), replace=True)
            # the size the partitions were made for (optimize folds rows into them,
            # never makes more): maintain rebuilds once the table is 4 times larger
            (self.folder / BUILT).write_text(json.dumps({"rows": rows}) + "\n")
        return True

    def built_for(self) -> int:
        """The rows the vector index's partitions were made for (0: unknown)."""
        try:
            return int(json.loads((self.folder / BUILT).read_text())["rows"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def optimize(self) -> None:
        """Fold rows added since the indexes were built into them (and compact)."""
        with self._index_lock:
            self.table().optimize()

    def maintain(self) -> None:
        """In the background: build the vector index once the table reaches
        INDEX_ROWS rows, fold added rows into the indexes (LanceDB's
        ``optimize``) once a tenth of the rows are outside them, and build it again
        (with more partitions) once the table is 4 times the size it was built for."""
        if self._building is not None and self._building.is_alive():
            return
        table = self.table()
        rows, indexed = table.count_rows(), self.indexed_rows()
        work: Callable[[], object]
        built = self.built_for()
        if rows >= INDEX_ROWS and (indexed == 0 or (built and rows > 4 * built)):
            work = self.build_index
        elif indexed and rows - indexed > indexed // 10:
            work = self.optimize
        else:
            return
        self._building = threading.Thread(
            target=_quietly, args=(work,), name="steme-vector-index", daemon=True
        )
        self._building.start()

    def wait(self) -> None:
        """Wait for a background index build to finish."""
        if self._building is not None:
            self._building.join()

    def plan(self, narrow: str | None) -> str:
        """How to search: ``"exact"`` (no index yet), ``"flat"`` (exact, because
        ``narrow``, a filter the scalar indexes count in a millisecond or two that
        keeps at least the rows the search's filter keeps, leaves few rows) or
        ``"index"``."""
        if self.indexed_rows() == 0:
            return "exact"
        if narrow is not None and self.table().count_rows(narrow) <= EXACT_ROWS:
            return "flat"
        return "index"

    @staticmethod
    def tune(query: Any, plan: str) -> Any:
        """``query`` searched as ``plan`` says; ``"wide"``: through the index, probing
        past NPROBES partitions until enough rows pass the filter (LanceDB is 3 to
        6 times slower with a probe range than with a fixed count even when the
        first probes suffice, so this is the second try, never the first)."""
        if plan == "flat":
            return query.bypass_vector_index()
        if plan == "index":
            return query.nprobes(NPROBES).refine_factor(REFINE)
        if plan == "wide":
            return query.minimum_nprobes(NPROBES).maximum_nprobes(0).refine_factor(REFINE)
        return query

    def full_text_ready(self) -> None:
        """Make the full-text index if there is none. Rows added after it are
        searched without it (LanceDB scans them), until `maintain` folds them in."""
        from lancedb.index import FTS

        if self._fts_rows >= 0:
            return
        table = self.table()
        with self._index_lock:
            if not any(i.name == "text_idx" for i in table.list_indices()):
                table.create_index("text", config=FTS(), replace=True)
        self._fts_rows = table.count_rows()

    def rebuild(self) -> int:
        """Drop the table and embed every assertion again; the rows embedded."""
        with self._lock:
            self._table = None
            self._fts_rows = -1
            self._checked = -1
            self._position = None
            self._whole = False
            self._times = np.empty(0, dtype=np.int64)
            shutil.rmtree(self.folder / f"{TABLE}.lance", ignore_errors=True)
            (self.folder / BUILT).unlink(missing_ok=True)
        return self.sync()


def _quietly(work: Any) -> None:
    import logging

    try:
        work()
    except Exception:  # a failed build leaves exact search, which stays correct
        logging.getLogger("steme_lake.vectors").exception("maintaining the vector index failed")
