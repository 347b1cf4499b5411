"""The notebooks run top to bottom under papermill, with their parameters cells."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.mark.slow
def test_quickstart_notebook_runs_with_parameters(tmp_path, media_server, monkeypatch):
    import nbformat
    import papermill

    monkeypatch.setenv("VIDRAG_FETCH_ALLOW_HOSTS", "127.0.0.1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS / "quickstart.ipynb"),
        str(out),
        parameters={
            "source": media_server.url("lecture.html"),
            "collection": "Papermill course",
            "question": "Who was executed by guillotine?",
            "vidrag_home": str(tmp_path / "home"),
        },
        cwd=str(NOTEBOOKS),
        kernel_name="python3",
        progress_bar=False,
    )
    nb = nbformat.read(out, as_version=4)
    html = "".join(
        o.get("data", {}).get("text/html", "")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
    )
    assert "guillotine" in html.lower() and "#t=" in html
    assert any("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
