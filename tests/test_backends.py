"""Backends by name: the built-ins, a real plugin distribution found through its entry
points, broken plugins, missing extras, and ``vidrag backends``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.support.cli import VIDRAG
from tests.support.settings import make_settings
from tests.test_architecture import HEAVY
from vidrag_kernel.backends import ANSWERERS, EMBEDDERS, TRANSCRIBERS, Registry
from vidrag_kernel.embed import HashingEmbedder, get_embedder
from vidrag_kernel.errors import Conflict, InvalidInput, MissingDependency, ModelError
from vidrag_kernel.settings import Settings
from vidrag_kernel.transcribe import get_transcriber

PLUGIN = '''
"""A third-party package adding vidrag backends (written by tests/test_backends.py)."""
import zlib

import numpy as np

from vidrag_kernel.answer.types import Generation


class TrigramEmbedder:
    """Character trigrams hashed into 64 dimensions: another model, another dimension."""

    model_name = "char-trigrams-64"

    def __init__(self, settings):
        self.dim = 64

    def _vector(self, text):
        v = np.zeros(self.dim, dtype=np.float32)
        t = f"  {text.lower()}  "
        for i in range(len(t) - 2):
            v[zlib.crc32(t[i : i + 3].encode()) % self.dim] += 1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def embed(self, texts, report=None):
        out = np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)
        if report is not None:
            report(1.0, f"{len(texts)} passages")
        return out.astype(np.float32)

    def embed_query(self, text):
        return self._vector(text)


class FirstSentenceAnswerer:
    """Answers with the first sentence of the best source, cited."""

    mode = "first-sentence"
    model = "demo-1"

    def __init__(self, settings, embed=None):
        self.embed = embed

    def complete(self, question, sources, history=()):
        first = sources[0].text.split(". ")[0].rstrip(".")
        return Generation(f"{first} [1].", self.mode, self.model)

    def stream(self, question, sources, history=()):
        generation = self.complete(question, sources, history)
        yield generation.text
        yield generation
'''

ENTRY_POINTS = """
[vidrag.embedders]
trigrams = vidrag_demo_backends:TrigramEmbedder
missing-module = vidrag_demo_backends.nowhere:Embedder
hashing = vidrag_demo_backends:TrigramEmbedder

[vidrag.answerers]
first-sentence = vidrag_demo_backends:FirstSentenceAnswerer

[vidrag.transcribers]
no-such-attr = vidrag_demo_backends:NotDefinedHere
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """A folder holding one installed distribution, as pip would leave it: the package and
    its ``*.dist-info`` with METADATA and entry_points.txt."""
    root = tmp_path_factory.mktemp("site")
    (root / "vidrag_demo_backends").mkdir()
    (root / "vidrag_demo_backends" / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    info = root / "vidrag_demo_backends-0.3.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vidrag-demo-backends\nVersion: 0.3.0\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    (info / "RECORD").write_text("")
    return root


@pytest.fixture
def plugin(site, monkeypatch) -> Path:
    """The distribution on sys.path: the real importlib.metadata machinery finds it."""
    monkeypatch.syspath_prepend(str(site))
    return site


# -- built-ins -------------------------------------------------------------------------------
def test_built_ins_are_registered_by_name():
    assert TRANSCRIBERS.names()[:2] == ["faster-whisper", "whisperx"]
    assert EMBEDDERS.names()[:2] == ["sentence-transformers", "hashing"]
    assert ANSWERERS.names()[:2] == ["extractive", "llm"]
    assert isinstance(get_embedder(Settings(embedder="hashing")), HashingEmbedder)
    assert get_transcriber(Settings()).engine == "faster-whisper"


def test_unknown_names_list_the_known_ones():
    with pytest.raises(InvalidInput) as err:
        get_embedder(Settings(embedder="nope"))
    assert "unknown embedder 'nope'" in err.value.message
    assert "VIDRAG_EMBEDDER" in err.value.message and "sentence-transformers, hashing" in err.value.message
    with pytest.raises(InvalidInput, match="unknown transcriber 'nope'.*faster-whisper, whisperx"):
        get_transcriber(Settings(transcriber="nope"))
    from vidrag_kernel.answer import get_answerer

    with pytest.raises(InvalidInput, match="unknown answerer 'nope'.*extractive, llm"):
        get_answerer(Settings(answerer="nope"))


def test_the_answerer_follows_the_llm_setting_unless_named():
    from vidrag_kernel.answer import answerer_name, get_answerer

    assert answerer_name(Settings()) == "extractive"
    assert answerer_name(Settings(llm_model="openai/x")) == "llm"
    assert answerer_name(Settings(llm_model="openai/x", answerer="extractive")) == "extractive"
    llm = get_answerer(Settings(llm_model="openai/x"))
    assert (llm.mode, llm.model) == ("llm", "openai/x")
    extractive = get_answerer(Settings(), embed=HashingEmbedder().embed)
    assert extractive.mode == "extractive"
    # naming the llm engine without a model is a clear error, not an empty request
    with pytest.raises(ModelError, match="VIDRAG_LLM_MODEL"):
        get_answerer(Settings(answerer="llm"))


def test_a_missing_extra_names_the_pip_install(tmp_path):
    import importlib.util

    if importlib.util.find_spec("whisperx") is None:  # everywhere but the whisperx environment
        with pytest.raises(MissingDependency, match=r"pip install 'vidrag\[whisperx\]'"):
            get_transcriber(Settings(transcriber="whisperx"))
        [row] = [b.to_dict() for b in TRANSCRIBERS.backends() if b.name == "whisperx"]
        assert row["status"] == "missing" and row["install"] == "pip install 'vidrag[whisperx]'"
    # the same for any backend behind an extra, without importing the backend's module
    registry = Registry("embedder", "vidrag.test-none", "VIDRAG_TEST")
    registry.register(
        "fancy", "vidrag_fancy_model:Embedder", requires=("vidrag_fancy_model_dep",), extra="fancy"
    )
    with pytest.raises(MissingDependency) as err:
        registry.create("fancy", Settings())
    assert "pip install 'vidrag[fancy]'" in err.value.message and err.value.status == 501
    assert "vidrag_fancy_model" not in sys.modules


def test_listing_backends_imports_no_heavy_module():
    code = (
        "import sys, json; from vidrag_kernel.cli import main; main(['backends', '--json']); "
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]; print(json.dumps(heavy), file=sys.stderr)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stderr.strip().splitlines()[-1]) == []
    rows = json.loads(r.stdout)
    assert {(x["kind"], x["name"]) for x in rows} >= {("embedder", "hashing"), ("answerer", "llm")}


# -- a plugin distribution ---------------------------------------------------------------------
def test_entry_points_add_backends_and_broken_ones_break_nothing(plugin):
    assert EMBEDDERS.names() == ["sentence-transformers", "hashing", "missing-module", "trigrams"]
    embedder = get_embedder(Settings(embedder="trigrams"))
    assert type(embedder).__module__ == "vidrag_demo_backends" and embedder.dim == 64
    vectors = embedder.embed(["binary search", "binary search", "the French king"])
    assert vectors.shape == (3, 64) and np.allclose(vectors[0], vectors[1])

    rows = {(b.kind, b.name, b.source): b for b in [*EMBEDDERS.backends(), *TRANSCRIBERS.backends()]}
    trigrams = rows["embedder", "trigrams", "entry point"].to_dict()
    assert (trigrams["package"], trigrams["version"], trigrams["status"]) == (
        "vidrag-demo-backends",
        "0.3.0",
        "available",
    )
    # a plugin whose module is missing, whose attribute is missing, or whose name is taken
    broken = rows["embedder", "missing-module", "entry point"].to_dict()
    assert broken["status"] == "broken" and "vidrag_demo_backends.nowhere" in broken["reason"]
    with pytest.raises(ModelError, match="vidrag-demo-backends cannot be used"):
        get_embedder(Settings(embedder="missing-module"))
    no_attr = rows["transcriber", "no-such-attr", "entry point"].to_dict()
    assert no_attr["status"] == "broken" and "NotDefinedHere" in no_attr["reason"]
    taken = [b for b in EMBEDDERS.backends() if b.name == "hashing" and b.source == "entry point"]
    assert [b.to_dict()["reason"] for b in taken] == ["the name 'hashing' is taken by the built-in embedder"]
    # ...and every other backend still works, the built-in "hashing" included
    assert isinstance(get_embedder(Settings(embedder="hashing")), HashingEmbedder)
    assert get_transcriber(Settings()).engine == "faster-whisper"


def test_a_plugin_leaves_the_registry_with_its_distribution(site, monkeypatch):
    with monkeypatch.context() as m:
        m.syspath_prepend(str(site))
        assert "trigrams" in EMBEDDERS.names()
    assert "trigrams" not in EMBEDDERS.names()
    with pytest.raises(InvalidInput, match="unknown embedder 'trigrams'"):
        get_embedder(Settings(embedder="trigrams"))


def test_vidrag_backends_lists_the_plugin(site, tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
        "VIDRAG_HOME": str(tmp_path),
        "VIDRAG_EMBEDDER": "trigrams",
        "VIDRAG_ANSWERER": "first-sentence",
    }
    r = subprocess.run([VIDRAG, "backends", "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = {(x["kind"], x["name"], x["source"]): x for x in json.loads(r.stdout)}
    trigrams = rows["embedder", "trigrams", "entry point"]
    assert trigrams["available"] and trigrams["selected"] and trigrams["package"] == "vidrag-demo-backends"
    first = rows["answerer", "first-sentence", "entry point"]
    assert first["available"] and first["selected"]
    assert not rows["answerer", "extractive", "built-in"]["selected"]
    assert not rows["embedder", "sentence-transformers", "built-in"]["selected"]
    assert rows["embedder", "sentence-transformers", "built-in"]["available"]
    assert rows["embedder", "missing-module", "entry point"]["status"] == "broken"

    r = subprocess.run([VIDRAG, "backends"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    [line] = [x for x in lines if " trigrams " in x]
    assert line.lstrip().startswith("*") and "entry point (vidrag-demo-backends 0.3.0)" in line
    assert "available" in line
    [line] = [x for x in lines if " missing-module " in x]
    assert (
        "broken: ModuleNotFoundError" in line and "pip install --force-reinstall vidrag-demo-backends" in line
    )


def test_a_plugin_embedder_and_answerer_serve_a_collection(plugin, tmp_path, media_server):
    """The plugin's 64-d vectors go through ingest, the index and search; its answerer
    answers; the configured MiniLM then meets a clear Conflict instead of wrong results."""
    from vidrag_kernel import Workbench

    settings = make_settings(tmp_path / "home", embedder="trigrams")
    wb = Workbench(settings.with_(answerer="first-sentence"))
    try:
        wb.collections.create("Lectures")
        [result] = wb.ingest(media_server.url("lecture.html"), "Lectures", captions="only")
        assert result.status == "done", result.error
        manifest = json.loads(
            (wb.ctx.layout.index_dir(wb.collections.get("Lectures").id) / "manifest.json").read_text()
        )
        assert manifest["dim"] == 64
        assert manifest["embedder"] == {"engine": "trigrams", "model": "char-trigrams-64", "dim": 64}
        hits = wb.search("guillotine", "Lectures", k=3)
        assert any("guillotine" in h.text.lower() for h in hits)
        answer = wb.ask("How was the king executed?", "Lectures", save=False)
        assert (answer.mode, answer.model) == ("first-sentence", "demo-1") and answer.citations
    finally:
        wb.close()

    minilm = Workbench(make_settings(tmp_path / "home"))
    try:
        with pytest.raises(Conflict) as err:
            minilm.search("guillotine", "Lectures")
        message = err.value.message
        assert "char-trigrams-64 (trigrams, 64 dimensions)" in message
        assert 'vidrag reindex "Lectures"' in message and err.value.status == 409
    finally:
        minilm.close()
