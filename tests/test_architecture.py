"""The dependency rules of DESIGN.md, checked on the real import graph."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = [
    "torch",
    "sentence_transformers",
    "faster_whisper",
    "faiss",
    "yt_dlp",
    "ctranslate2",
    "bm25s",
    "litellm",
]
FRAMEWORKS = ["jupyterhub", "tornado", "panel", "ipywidgets", "stripe", "bokeh"]


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return set(json.loads(out))


def test_importing_the_kernel_is_light():
    loaded = _loaded_after("import vidrag_kernel")
    assert not loaded & set(HEAVY + FRAMEWORKS)


def test_building_a_workbench_loads_no_model_or_framework(tmp_path):
    loaded = _loaded_after(
        "from vidrag_kernel import Workbench, Settings\n"
        f"wb = Workbench(Settings(home=__import__('pathlib').Path({str(tmp_path)!r})))\n"
        "wb.collections.list()"
    )
    assert not loaded & set(HEAVY + FRAMEWORKS)


def test_the_cli_parser_is_light():
    loaded = _loaded_after("from vidrag_kernel.cli import build_parser; build_parser()")
    assert not loaded & set(HEAVY + FRAMEWORKS)
