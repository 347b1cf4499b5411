"""Sentence-transformers models run on ONNX Runtime: the same vectors, a third of the time.

A question is a dozen word pieces, and PyTorch's eager Python per layer is most of what
embedding one costs: the bundled MiniLM took 19 ms per question on one thread here, and
the same graph on ONNX Runtime 7 ms, with vectors equal to within 2e-7. Questions are the
service's main cost per search, so this is where its CPU goes down.

``runner(name, model, threads)`` exports a loaded ``SentenceTransformer`` once into
vidrag's model cache (``VIDRAG_MODEL_CACHE``, beside the speech models), keyed by the
model's files and the library versions that export depends on, and returns an
``OnnxRunner`` that encodes as ``model.encode(..., normalize_embeddings=True)`` does. It
runs only models it can reproduce exactly: a Transformer, mean pooling and (optionally)
Normalize, which is what the bundled model and most sentence-transformers models are. Any
other pipeline (a ``Dense`` layer, CLS pooling...) returns None, and the caller keeps
PyTorch. Every runner is checked against PyTorch on a few texts before it is used: a
difference above ``TOLERANCE`` is refused the same way. ``embed_runtime`` (setting
``VIDRAG_EMBED_RUNTIME``) is ``auto`` (this, else PyTorch), ``onnx`` (this or an error) or
``torch``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np

from .errors import ModelError

log = logging.getLogger(__name__)

#: largest difference from PyTorch's vector, per component, that a runner may show
TOLERANCE = 1e-4
#: texts a runner is checked on before use (short and long, so padding is exercised)
PROBES = (
    "What did Wegener propose about the continents?",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen in the leaves of plants.",
    "ok",
)
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_runners: dict[tuple, OnnxRunner | None] = {}
_lock = threading.Lock()


class OnnxRunner:
    """Encodes texts to normalised vectors with an exported model on ONNX Runtime."""

    def __init__(self, path: Path, tokenizer, max_length: int, inputs: list[str], threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(0, threads)  # 0: ONNX Runtime's default (every core)
        options.inter_op_num_threads = 1
        # idle threads would otherwise spin, taking a core from the hub and the proxy
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.inputs = inputs

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """One normalised float32 row per text, in order (longest first within batches, as
        sentence-transformers does, so little of a batch is padding)."""
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out: list[np.ndarray | None] = [None] * len(texts)
        for start in range(0, len(order), max(1, batch_size)):
            chosen = order[start : start + max(1, batch_size)]
            features = self.tokenizer(
                [texts[i] for i in chosen],
                padding=True,
                truncation="longest_first",
                max_length=self.max_length,
                return_tensors="np",
            )
            feed = {name: features[name].astype(np.int64) for name in self.inputs}
            (vectors,) = self.session.run(None, feed)
            for i, vector in zip(chosen, vectors, strict=True):
                out[i] = vector
        if not out:
            return np.zeros((0, self.session.get_outputs()[0].shape[-1] or 0), dtype=np.float32)
        return np.asarray(out, dtype=np.float32)


def runner(name: str, model, threads: int, runtime: str = "auto") -> OnnxRunner | None:
    """The ONNX runner for the loaded ``model`` (``name``: what it was loaded from), or
    None where PyTorch must run it (``runtime`` ``torch``, an unsupported pipeline, no
    onnxruntime, a failed export or check; ``auto`` logs why). ``runtime="onnx"`` raises
    ``ModelError`` instead of returning None. One runner per model and thread count."""
    if runtime == "torch":
        return None
    key = (name, threads)
    with _lock:
        if key not in _runners:
            try:
                _runners[key] = _build(name, model, threads)
            except ModelError as exc:
                if runtime == "onnx":
                    raise ModelError(f"{_refusal(name)}: {exc}") from exc
                log.info("embedding %s with PyTorch: %s", name, exc)
                _runners[key] = None
        found = _runners[key]
    if found is None and runtime == "onnx":
        raise ModelError(f"{_refusal(name)} (the log says why)")
    return found


def _refusal(name: str) -> str:
    return f"VIDRAG_EMBED_RUNTIME=onnx, but the embedding model {name!r} cannot run on ONNX Runtime"


def _build(name: str, model, threads: int) -> OnnxRunner:
    kinds = [type(module).__name__ for module in model]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise ModelError(f"its pipeline ({' + '.join(kinds)}) is not a transformer with mean pooling")
    pooling = model[1]
    mode = getattr(pooling, "pooling_mode", None)
    if mode is None and hasattr(pooling, "get_pooling_mode_str"):
        mode = pooling.get_pooling_mode_str()
    if mode != "mean":
        raise ModelError(f"its pooling is {mode!r}, not mean")
    try:
        import onnxruntime  # noqa: F401 - only whether it is there
    except ImportError as exc:
        raise ModelError(
            "onnxruntime is not installed (pip install onnxruntime onnx, or VIDRAG_EMBED_RUNTIME=torch)"
        ) from exc
    tokenizer = model.tokenizer
    inputs = [n for n in _INPUTS if n in tokenizer.model_input_names]
    path = _exported(name, model, inputs)
    built = OnnxRunner(path, tokenizer, model.max_seq_length, inputs, threads)
    expected = model.encode(list(PROBES), normalize_embeddings=True, convert_to_numpy=True)
    difference = float(np.abs(built.encode(list(PROBES)) - expected).max())
    if not difference <= TOLERANCE:  # also refuses NaN
        raise ModelError(f"its ONNX export differs from PyTorch by {difference:.2g} (more than {TOLERANCE})")
    return built


def _exported(name: str, model, inputs: list[str]) -> Path:
    """The exported graph in the model cache, exporting it once (under a file lock: several
    processes may start on a fresh cache at once)."""
    from .transcribe.models import model_cache

    folder = model_cache() / "onnx" / _fingerprint(name)
    target = folder / "model.onnx"
    if target.is_file():
        return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return _export_once(folder, target, name, model, inputs)
    except OSError as exc:  # a read-only or full cache: PyTorch then runs the model
        raise ModelError(f"the model cache {folder} cannot hold its export ({exc})") from exc


def _export_once(folder: Path, target: Path, name: str, model, inputs: list[str]) -> Path:
    from filelock import FileLock

    with FileLock(str(folder) + ".lock", timeout=600):
        if target.is_file():
            return target
        partial = folder / f"model.onnx.{os.getpid()}.part"
        try:
            _export(model, inputs, partial)
            partial.replace(target)
        except ModelError:
            raise
        except Exception as exc:  # the exporter's errors are many and version-specific
            raise ModelError(f"exporting it to ONNX failed ({type(exc).__name__}: {exc})") from exc
        finally:
            partial.unlink(missing_ok=True)
        (folder / "source.json").write_text(json.dumps({"model": name, "inputs": inputs}, indent=1))
    return target


def _export(model, inputs: list[str], path: Path) -> None:
    try:
        import onnx  # noqa: F401 - torch's exporter needs it
    except ImportError as exc:
        raise ModelError("the onnx package is not installed (pip install onnx)") from exc
    import torch

    transformer = model[0].auto_model

    class Graph(torch.nn.Module):
        """The transformer, mean pooling over real tokens, then L2 normalisation."""

        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, *tensors):
            named = dict(zip(inputs, tensors, strict=True))
            hidden = self.transformer(**named).last_hidden_state
            mask = named["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    sample = model.tokenizer(
        ["a short sample", "and a second, longer sample text"], padding=True, return_tensors="pt"
    )
    axes = {n: {0: "batch", 1: "tokens"} for n in inputs}
    axes["vector"] = {0: "batch"}
    was_training = transformer.training
    transformer.eval()
    try:
        # the tracer's warnings are about branches taken on shapes, the same for every
        # input here (the attention mask is always given); the check after export is the test
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Graph(),
                tuple(sample[n] for n in inputs),
                str(path),
                input_names=inputs,
                output_names=["vector"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,  # the TorchScript exporter: no onnxscript needed
            )
    finally:
        transformer.train(was_training)


def _fingerprint(name: str) -> str:
    """A name for one export: the model's files (path, size, time) and the versions of the
    libraries the exported graph depends on."""
    parts: list[str] = [name]
    folder = Path(name)
    if folder.is_dir():
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            stat = file.stat()
            parts.append(f"{file.relative_to(folder)}:{stat.st_size}:{int(stat.st_mtime)}")
    for distribution in ("torch", "transformers", "sentence-transformers", "onnx"):
        try:
            parts.append(f"{distribution}={metadata.version(distribution)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{distribution}=none")
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    return f"{Path(name).name or 'model'}-{digest}"
