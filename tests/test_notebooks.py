"""Every notebook runs top to bottom under papermill, and its outputs are checked.

The notebooks share one data directory (a module fixture): ``01_batch_ingest`` runs
first with its defaults and ingests the bundled sample lecture; ``02``, ``03`` and ``04``
then run with their defaults on that collection (their ingest finds the video there).
The quick start runs against the test lecture served on 127.0.0.1.
"""

from __future__ import annotations

import base64
import csv
import json
import os
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SAMPLE = "Sample lectures"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """The data directory the notebooks' kernels use (through VIDRAG_* variables)."""
    root = tmp_path_factory.mktemp("notebooks")
    env = {
        "VIDRAG_HOME": str(root / "home"),
        "VIDRAG_USER": "tester",
        "VIDRAG_FETCH_ALLOW_HOSTS": "127.0.0.1",
        "VIDRAG_CHUNK_TOKENS": "40",
        "VIDRAG_CHUNK_MIN_TOKENS": "8",
        "VIDRAG_CHUNK_OVERLAP_TOKENS": "0",
        "HF_HUB_OFFLINE": "1",
    }
    saved = {k: os.environ.get(k) for k in [*env, "JUPYTERHUB_API_TOKEN"]}
    os.environ.update(env)
    os.environ.pop("JUPYTERHUB_API_TOKEN", None)  # never reach a hub from these kernels
    yield root
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def run(name: str, out: Path, **parameters):
    """Execute ``notebooks/name`` with papermill; the executed notebook."""
    import nbformat
    import papermill

    papermill.execute_notebook(
        str(NOTEBOOKS / name),
        str(out),
        parameters=parameters,
        cwd=str(NOTEBOOKS),
        kernel_name="python3",
        progress_bar=False,
    )
    return nbformat.read(out, as_version=4)


def outputs(nb) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def html_of(nb) -> str:
    return "".join(o.get("data", {}).get("text/html", "") for o in outputs(nb))


def text_of(nb) -> str:
    return "".join(o.get("text", "") for o in outputs(nb) if o.get("output_type") == "stream") + "".join(
        o.get("data", {}).get("text/plain", "") for o in outputs(nb)
    )


def pictures(nb) -> list[bytes]:
    """The PNG images the notebook drew (each a real PNG)."""
    images = [
        base64.b64decode(o["data"]["image/png"]) for o in outputs(nb) if "image/png" in o.get("data", {})
    ]
    assert all(i.startswith(b"\x89PNG") for i in images)
    return images


@pytest.fixture(scope="module")
def sample(home):
    """01_batch_ingest with its defaults: the bundled sample folder into "Sample lectures"."""
    summary = home / "summary.json"
    nb = run("01_batch_ingest.ipynb", home / "01.ipynb", summary_path=str(summary))
    return nb, json.loads(summary.read_text())


def test_batch_ingest_notebook_summarises_and_plots_the_run(home, sample):
    nb, summary = sample
    assert summary["collection"] == SAMPLE and summary["stopped"] is None and summary["failed"] == []
    (added,) = summary["added"]
    assert added["title"] == "lecture" and added["transcript_source"] == "asr" and added["chunks"] > 3
    assert 120 < added["duration_s"] < 140 and added["seconds"]["transcribe"] > 0
    html = html_of(nb)
    table = re.search(r"<table class='vidrag-batch-summary'>.*?</table>", html, re.S).group(0)
    assert "<td>lecture</td>" in table and "<td>ASR</td>" in table and "<td>added</td>" in table
    assert len(pictures(nb)) == 1
    # run again: nothing new, the video is skipped with the reason
    again = home / "summary-again.json"
    nb = run("01_batch_ingest.ipynb", home / "01-again.ipynb", summary_path=str(again))
    data = json.loads(again.read_text())
    assert data["added"] == [] and [s["reason"] for s in data["skipped"]] == ["already in the collection"]
    assert len(pictures(nb)) == 1


def test_quickstart_notebook_plays_citations_from_the_cited_second(home, sample, media_server):
    nb = run(
        "00_quickstart.ipynb",
        home / "00.ipynb",
        source=media_server.url("lecture.html"),
        collection="Papermill course",
        question="Who was executed by guillotine?",
    )
    html = html_of(nb)
    assert "guillotine" in html.lower()
    # an embedded player per citation, starting at the cited second (media fragment)
    players = re.findall(r"<(video|audio) controls[^>]* src='([^']+)#t=([\d.]+),([\d.]+)'", html)
    assert players, html[-2000:]
    assert all(media_server.url("") in src for _tag, src, _s, _e in players)
    assert any(float(start) > 10 for _tag, _src, start, _end in players)  # the king is not at 0:00
    assert len(pictures(nb)) == 1


def test_retrieval_eval_notebook_shows_recall_per_video_and_the_worst_questions(home, sample):
    nb = run("02_retrieval_eval.ipynb", home / "02.ipynb")
    html = html_of(nb)
    table = re.search(r"<table class='vidrag-eval'>.*?</table>", html, re.S).group(0)
    figures = dict(re.findall(r"<th scope='row'>([^<]+)</th><td>([\d.]+)</td>", table))
    assert set(figures) == {"Recall@1", "Recall@5", "Recall@10", "MRR"}
    assert float(figures["Recall@10"]) >= 0.7 and 0 < float(figures["MRR"]) <= 1
    assert float(figures["Recall@1"]) <= float(figures["Recall@5"]) <= float(figures["Recall@10"])
    assert "lecture: recall@1" in text_of(nb)  # the per-video line
    # the worst questions: each with what was retrieved and where the answer really is
    assert html.count("<section><h3>") == 5 and "retrieved:" in html and "the answer is at" in html
    assert len(pictures(nb)) == 1


def test_class_insights_notebook_falls_back_to_own_conversations_and_hides_small_groups(home, sample):
    nb = run("03_class_insights.ipynb", home / "03.ipynb")
    text = text_of(nb)
    assert "LOCAL FALLBACK" in text and "Asked 25 demo questions" in text
    assert "from 25 conversations" in text
    # topics from the question embeddings: packets, routing, TCP, and the bread nobody answered
    topic_lines = [line for line in text.splitlines() if " questions, e.g. " in line]
    assert len(topic_lines) >= 3
    assert any("packet" in line for line in topic_lines) and any("bread" in line for line in topic_lines)
    html = html_of(nb)
    unanswered = re.search(r"<table class='vidrag-unanswered'>.*?</table>", html, re.S).group(0)
    assert "bread" in unanswered.lower()
    assert len(pictures(nb)) == 3  # over time, topics, cited moments


def test_exports_notebook_writes_files_that_parse(home, sample):
    import nbformat
    import pyarrow.parquet as pq
    import webvtt

    out = home / "exports"
    nb = run("04_exports.ipynb", home / "04.ipynb", out_dir=str(out))
    (srt,) = (out / "transcripts").glob("*.srt")
    (vtt,) = (out / "transcripts").glob("*.vtt")
    (txt,) = (out / "transcripts").glob("*.txt")
    assert len(webvtt.from_srt(str(srt))) == len(webvtt.read(str(vtt))) > 5
    assert "packets" in txt.read_text().lower()
    mds = list((out / "conversations").glob("*.md"))
    notebooks = list((out / "conversations").glob("*.ipynb"))
    assert len(mds) == len(notebooks) >= 1  # the class-insights demo left conversations too
    assert all(m.read_text().startswith("# ") for m in mds)
    for path in notebooks:
        nbformat.validate(nbformat.read(path, as_version=4))
    with (out / "catalog.csv").open() as f:
        rows = list(csv.DictReader(f))
    parquet = pq.read_table(out / "catalog.parquet").to_pylist()
    assert [r["title"] for r in rows] == [r["title"] for r in parquet] == ["lecture"]
    assert parquet[0]["transcript_source"] == "asr" and parquet[0]["chunks"] > 3
    assert 120 < parquet[0]["duration_s"] < 140 and float(rows[0]["duration_s"]) == parquet[0]["duration_s"]
    assert "catalog.parquet" in html_of(nb) and len(pictures(nb)) == 1
