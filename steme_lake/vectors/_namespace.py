"""``lake.vectors``: semantic search over the lake's assertions."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import polars as pl

from steme_lake._exceptions import ValidationError
from steme_lake._utils.timeparse import TimeLike
from steme_lake.vectors._model import Embedder, default_embedder
from steme_lake.vectors._search import search
from steme_lake.vectors._store import VectorStore

if TYPE_CHECKING:
    from steme_lake.lake import Lake

__all__ = ["VectorsNamespace"]

# One store per open lake (its table handle and full-text index state), made on
# first use; it goes when the lake does.
_STORES: weakref.WeakKeyDictionary[Any, VectorStore] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


class VectorsNamespace:
    """Semantic search: "what do we believe about things like this?", as of any
    time, through the same lifecycle filters as every question, and audited.

    Reached as ``lake.vectors``. The vectors live in ``<lake>/vectors/`` (an
    embedded LanceDB), made from the lake and kept current before each search.
    """

    def __init__(self, lake: Lake, embedder: Embedder | None = None) -> None:
        self._lake = lake
        self._embedder = embedder

    def _store(self) -> VectorStore:
        self._lake._check_open()
        with _LOCK:
            store = _STORES.get(self._lake)
            wanted = self._embedder
            if store is None or (wanted is not None and store.embedder is not wanted):
                store = VectorStore(self._lake, wanted or default_embedder())
                _STORES[self._lake] = store
            return store

    def search(
        self,
        text: str,
        k: int = 10,
        *,
        as_of: TimeLike | None = None,
        lifecycle: str | list[str] | None = None,
        subject: str | None = None,
        min_confidence: float | None = None,
        include_superseded: bool = False,
        hybrid: bool = True,
        agent: str = "anonymous",
    ) -> pl.DataFrame:
        """The ``k`` assertions closest to ``text`` that existed at ``as_of``
        (default now) and pass the filters as they stood then.

        Returns a frame of ``score`` (hybrid: reciprocal-rank fusion of the vector
        and full-text ranks; ``hybrid=False``: cosine similarity), ``id``,
        ``subject``, ``predicate``, ``value`` (JSON text), ``lifecycle`` and
        ``superseded`` as of T, ``agent``, ``confidence``, ``recorded_at``,
        ``text`` (what was embedded) and ``query_id``: the search is written to
        the audit log (op ``search``, its results as contributing ids), so
        ``trace`` and ``impact`` see it. ``subject`` is a path (it and
        everything under it) or a glob.

        Examples
        --------
        >>> import steme_lake as sl, tempfile
        >>> lake = sl.open(tempfile.mkdtemp() + "/lake")
        >>> _ = lake.assert_("auth/jwt", "signing_algorithm", "RS256", agent="platform",
        ...                  lifecycle="approved", source="adr-7")
        >>> hits = lake.vectors.search("which algorithm signs our tokens?", k=1, agent="sre")
        >>> hits["subject"].to_list(), hits["lifecycle"].to_list()
        (['auth/jwt'], ['approved'])
        >>> lake.close()
        """
        found, query_id = self._search(
            text, k=k, as_of=as_of, lifecycle=lifecycle, subject=subject,
            min_confidence=min_confidence, include_superseded=include_superseded,
            hybrid=hybrid, agent=agent,
        )  # fmt: skip
        return found.with_columns(pl.lit(query_id, pl.String).alias("query_id"))

    def _search(self, text: str, **kwargs: Any) -> tuple[pl.DataFrame, str]:
        """`search`'s results, and its audit id (which an empty result cannot carry)."""
        return search(self._store(), text, **kwargs)

    def similar(
        self,
        assertion_id: str,
        k: int = 10,
        *,
        as_of: TimeLike | None = None,
        lifecycle: str | list[str] | None = None,
        subject: str | None = None,
        include_superseded: bool = False,
    ) -> pl.DataFrame:
        """The assertions closest in meaning to one assertion (itself left out):
        "has anyone claimed this before?". ``score`` is the cosine similarity; the
        filters are `search`'s."""
        from steme_lake.vectors._search import _check, nearest, vector_of

        _check("similar", k)
        store = self._store()
        stages = _stages(lifecycle)
        return nearest(
            store, vector_of(store, assertion_id), k=k, t=self._lake._as_of(as_of),
            stages=stages, subject=_subject(subject), include_superseded=include_superseded,
            exclude=assertion_id,
        )  # fmt: skip

    def contradictions(
        self,
        subject: str,
        predicate: str,
        value: Any,
        *,
        threshold: float = 0.65,
        k: int = 10,
        as_of: TimeLike | None = None,
    ) -> pl.DataFrame:
        """What a new claim would contest: existing assertions (not superseded, as of
        ``as_of``) about the same or nearly the same subject and predicate (the
        cosine similarity of their text to "subject predicate" at least
        ``threshold``) with a different value. The same key scores about 0.75,
        a neighbouring one (``services/auth/config jwt_algorithm`` for
        ``auth/jwt signing_algorithm``) about 0.6. The research agent's ES256
        finding against the approved RS256 decision is one; run it before asserting.

        Examples
        --------
        >>> import steme_lake as sl, tempfile
        >>> lake = sl.open(tempfile.mkdtemp() + "/lake")
        >>> _ = lake.assert_("auth/jwt", "signing_algorithm", "RS256", agent="platform",
        ...                  lifecycle="approved", source="adr-7")
        >>> seen = lake.vectors.contradictions("auth/jwt", "signing_algorithm", "ES256")
        >>> seen.select("value", "lifecycle").rows()
        [('"RS256"', 'approved')]
        >>> lake.close()
        """
        from steme_lake._utils.canonical import canonical_json
        from steme_lake.lake import _rows as rows
        from steme_lake.vectors._search import _check, nearest

        _check("contradictions", k)
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, int | float)
            or not (0.0 <= threshold <= 1.0)
        ):
            raise ValidationError(f"threshold must be a cosine similarity 0..1, got {threshold!r}")
        subject = rows.subject_text(subject)
        predicate = str(rows.text("predicate", predicate))
        value_json = canonical_json(value, name="value")
        store = self._store()
        # The key alone: a claim's own value would pull its twins up and the contest down.
        vector = store.embedder.embed([f"{subject} {predicate}"])[0]
        near = nearest(
            store, vector, k=k, t=self._lake._as_of(as_of), stages=None, subject=None,
            include_superseded=False,
        )  # fmt: skip
        return near.filter(pl.col("score") >= threshold, pl.col("value") != value_json)

    def search_image(
        self,
        image: Any,
        *,
        max_distance: int = 8,
        as_of: TimeLike | None = None,
        lifecycle: str | list[str] | None = None,
        include_superseded: bool = False,
    ) -> pl.DataFrame:
        """Assertions whose evidence image looks like ``image`` (a PIL image, a path,
        bytes, or a visual hash): Hamming distance of the perceptual hashes
        (``visual_hash``) at most ``max_distance`` bits, nearest first, among the
        assertions a lens would weigh at ``as_of``."""
        from steme_lake.model.visual import hamming_distance, visual_hash
        from steme_lake.query._candidates import candidates

        if (
            isinstance(max_distance, bool)
            or not isinstance(max_distance, int)
            or not (0 <= max_distance <= 4096)
        ):
            raise ValidationError(f"max_distance must be 0..4096 bits, got {max_distance!r}")
        wanted = image.lower() if isinstance(image, str) and _is_hex(image) else visual_hash(image)
        lake = self._lake
        t = lake._as_of(as_of)
        tables = lake._tables()
        hashes = (
            tables.assertions.filter(pl.col("visual_hash").str.len_chars() == len(wanted))
            .select("id", "visual_hash")
            .collect()
        )
        found = (
            candidates(
                tables, as_of=t, lifecycle=_stages(lifecycle),
                include_superseded=include_superseded, opts=lake.options.resolution,
                subject_filter=pl.col("id").is_in(hashes["id"].to_list()),
            )
            .collect()
            .join(hashes, on="id", how="inner")
            .select("id", "subject", "predicate", pl.col("object").alias("value"),
                    pl.col("stage").alias("lifecycle"), "superseded", "agent", "confidence",
                    "recorded_at", "visual_hash")
        )  # fmt: skip
        distance = [hamming_distance(wanted, h) for h in found["visual_hash"]]
        return (
            found.with_columns(pl.Series("distance", distance, dtype=pl.Int64))
            .filter(pl.col("distance") <= max_distance)
            .sort("distance", "recorded_at")
            .select("distance", pl.exclude("distance"))
        )

    def build_index(self) -> bool:
        """Build the ANN index now (it is built in the background once the table
        has 25,000 rows); False when the table is too small to need one."""
        store = self._store()
        store.sync()
        store.wait()  # a build the sync may have started
        if store.indexed_rows() and store.indexed_rows() == store.table().count_rows():
            return True
        return store.build_index()

    def sync(self, *, progress: Callable[[int, int], None] | None = None) -> int:
        """Embed the assertions written since the last search; how many.
        ``progress(done, total)`` is told as each chunk is embedded (a first sync of
        a big lake takes minutes: about 300 assertions a second on two cores)."""
        return self._store().sync(progress)

    def rebuild(self) -> int:
        """Make the vector table again from every assertion; how many were embedded."""
        return self._store().rebuild()

    def status(self) -> dict[str, Any]:
        """The model, the rows held, and how far behind the lake the table is."""
        store = self._store()
        held = store.position()
        latest = self._lake.assertions.select(pl.col("seq").max()).collect().item()
        behind = self._lake.assertions.filter(pl.col("seq") > held).select(pl.len()).collect()
        return {
            "model": store.embedder.name,
            "dim": store.embedder.dim,
            "rows": store.table().count_rows(),
            "position": held,
            "lake_position": latest or 0,
            "behind": int(behind.item()),
            "indexed_rows": store.indexed_rows(),
            "path": str(store.folder),
        }


def _stages(lifecycle: str | list[str] | None) -> tuple[str, ...] | None:
    from steme_lake.lake import _rows as rows
    from steme_lake.model.schema import LIFECYCLE_STAGES

    if lifecycle is None:
        return None
    stages = (lifecycle,) if isinstance(lifecycle, str) else tuple(lifecycle)
    for stage in stages:
        rows.choice("lifecycle", stage, LIFECYCLE_STAGES)
    return stages


def _subject(subject: str | None) -> str | None:
    from steme_lake.lake import _rows as rows

    return None if subject is None else rows.subject_text(subject.rstrip("/") or subject)


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in "0123456789abcdefABCDEF" for c in text)
