"""``lake.vectors``: semantic search over the lake's assertions."""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

import polars as pl

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

    def sync(self) -> int:
        """Embed the assertions written since the last search; how many."""
        return self._store().sync()

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
            "path": str(store.folder),
        }
