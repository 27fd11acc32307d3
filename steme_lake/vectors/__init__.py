"""Semantic and hybrid search over the lake's assertions (LanceDB, issue 20).

Reached from a lake as ``lake.vectors`` (`VectorsNamespace`).
"""

from steme_lake.vectors._model import Embedder, MiniLM
from steme_lake.vectors._namespace import VectorsNamespace

__all__ = ["Embedder", "MiniLM", "VectorsNamespace"]
