"""Embeddings on ONNX Runtime (``vidrag_kernel.onnx_embed``): the bundled MiniLM exported
for real, its vectors against PyTorch's, a pipeline it cannot run, and the setting."""

from __future__ import annotations

import numpy as np
import pytest

from vidrag_kernel import onnx_embed
from vidrag_kernel.embed import SentenceTransformerEmbedder
from vidrag_kernel.errors import InvalidInput, ModelError
from vidrag_kernel.settings import Settings

TEXTS = [
    "What did Wegener propose about the continents?",
    "ok",
    "",
    "Slab pull drags the cold, dense plate down into the mantle at a subduction zone. " * 30,  # truncated
    "Ein Satz auf Deutsch, damit nicht alles Englisch ist.",
]


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty model cache and no runner built yet in this process."""
    monkeypatch.setenv("VIDRAG_MODEL_CACHE", str(tmp_path / "models"))
    monkeypatch.setattr(onnx_embed, "_runners", {})
    return tmp_path / "models"


def test_the_bundled_model_runs_on_onnx_with_pytorch_s_vectors(fresh_cache):
    embedder = SentenceTransformerEmbedder(Settings(embed_runtime="onnx", embed_threads=1))
    assert embedder.onnx is not None
    exported = list(fresh_cache.glob("onnx/*/model.onnx"))
    assert len(exported) == 1  # exported once, into the model cache
    expected = embedder.model.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    got = embedder.embed(TEXTS)  # one batch: padding to the longest, the long one truncated
    assert got.shape == (len(TEXTS), 384) and got.dtype == np.float32
    assert np.abs(got - expected).max() < 1e-4
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    # one at a time, as questions come, and in small batches: the same rows, in order
    singles = np.stack([embedder.embed_query(t) for t in TEXTS])
    assert np.abs(singles - expected).max() < 1e-4
    assert np.abs(embedder.onnx.encode(TEXTS, batch_size=2) - expected).max() < 1e-4
    # a second process (here: a new runner) loads the export instead of exporting again
    stamp = exported[0].stat().st_mtime_ns
    onnx_embed._runners.clear()
    assert SentenceTransformerEmbedder(Settings(embed_runtime="onnx", embed_threads=1)).onnx is not None
    assert exported[0].stat().st_mtime_ns == stamp


def test_a_pipeline_onnx_cannot_reproduce_stays_on_pytorch(fresh_cache, dense128):
    auto = SentenceTransformerEmbedder(Settings(embedding_model=str(dense128), embed_threads=1))
    assert auto.onnx is None  # Dense after the pooling: PyTorch runs it
    assert auto.embed(["a question"]).shape == (1, 128)
    onnx_embed._runners.clear()
    with pytest.raises(ModelError, match="cannot run on ONNX Runtime"):
        SentenceTransformerEmbedder(
            Settings(embedding_model=str(dense128), embed_threads=1, embed_runtime="onnx")
        )
    assert not list(fresh_cache.glob("onnx/*/model.onnx"))  # nothing was exported for it


def test_torch_is_chosen_by_setting_and_a_wrong_value_is_refused(fresh_cache):
    assert SentenceTransformerEmbedder(Settings(embed_runtime="torch", embed_threads=1)).onnx is None
    assert not fresh_cache.exists()
    with pytest.raises(InvalidInput, match="VIDRAG_EMBED_RUNTIME must be one of auto, onnx, torch"):
        Settings.from_env({"VIDRAG_EMBED_RUNTIME": "tensorrt"})


def test_a_cache_that_cannot_hold_the_export_leaves_pytorch_running(tmp_path, monkeypatch):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the model cache should be")
    monkeypatch.setenv("VIDRAG_MODEL_CACHE", str(blocked))
    monkeypatch.setattr(onnx_embed, "_runners", {})
    embedder = SentenceTransformerEmbedder(Settings(embed_threads=1))
    assert embedder.onnx is None
    assert embedder.embed(["a question"]).shape == (1, 384)
    onnx_embed._runners.clear()
    with pytest.raises(ModelError, match="cannot hold its export"):
        SentenceTransformerEmbedder(Settings(embed_threads=1, embed_runtime="onnx"))
