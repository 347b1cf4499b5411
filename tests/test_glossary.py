"""A collection's glossary: stored in the catalog, and heard by the real speech model.

The clip is generated speech with a name tiny.en gets wrong on its own ("Kamerlingh
Onnes" comes out as "Camarillion yarns"); with the glossary as its prompt it spells it
right. espeak-ng and the model are deterministic, so the test asserts both sides.
"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect

from tests.support.speech import speak
from vidrag_kernel import Workbench
from vidrag_kernel.collections import clean_glossary
from vidrag_kernel.errors import InvalidInput
from vidrag_kernel.transcribe.faster import glossary_options

SENTENCE = "The bacterium Staphylococcus was studied by Kamerlingh Onnes."
GLOSSARY = "Staphylococcus, Kamerlingh Onnes"


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return speak([SENTENCE], tmp_path_factory.mktemp("glossary") / "names.wav").wav


def test_glossary_is_cleaned_and_stored(settings):
    assert clean_glossary(" Wegener,Pangaea ,, slab  pull\nwegener") == ["Wegener", "Pangaea", "slab pull"]
    assert clean_glossary(["Ohm", " ohm "]) == ["Ohm"]
    with pytest.raises(InvalidInput, match="at most 200 terms"):
        clean_glossary([f"term{i}" for i in range(201)])

    wb = Workbench(settings)
    try:
        info = wb.collections.create("Geology", glossary="Wegener, Pangaea, slab pull")
        assert info.glossary == ["Wegener", "Pangaea", "slab pull"]
        assert wb.collections.update("Geology", description="rocks").glossary == info.glossary
        assert wb.collections.update("Geology", glossary=["Hess"]).glossary == ["Hess"]
        assert wb.collections.update("Geology", glossary="").glossary == []
        assert wb.collections.get("Geology").to_dict()["glossary"] == []
    finally:
        wb.close()


def test_migration_adds_and_removes_the_column_on_sqlite(tmp_path):
    from alembic import command
    from alembic.config import Config

    from vidrag_kernel.catalog.db import MIGRATIONS

    engine = create_engine(f"sqlite:///{tmp_path / 'c.db'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")
    columns = {c["name"] for c in inspect(engine).get_columns("collections")}
    assert "glossary" in columns and "corrections" in inspect(engine).get_table_names()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0003")
    assert "glossary" not in {c["name"] for c in inspect(engine).get_columns("collections")}
    assert "corrections" not in inspect(engine).get_table_names()
    engine.dispose()


def test_glossary_options():
    assert glossary_options(None) == {} == glossary_options([" "])
    assert glossary_options(["Ohm", "Volta"]) == {"initial_prompt": "Terms in this lecture: Ohm, Volta."}
    assert glossary_options(["Ohm", "Volta"], "hotwords") == {"hotwords": "Ohm, Volta"}
    both = glossary_options(["Ohm"], "both")
    assert both["hotwords"] == "Ohm" and "Ohm" in both["initial_prompt"]
    with pytest.raises(InvalidInput):
        glossary_options(["Ohm"], "shout")


@pytest.mark.slow
def test_the_stage_gives_the_glossary_to_the_model(clip, settings):
    from vidrag_kernel import stages

    plain = " ".join(s.text for s in stages.transcribe(clip, settings).segments)
    hinted = " ".join(
        s.text for s in stages.transcribe(clip, settings, glossary=clean_glossary(GLOSSARY)).segments
    )
    assert "Kamerlingh Onnes" not in plain, plain
    assert "Kamerlingh Onnes" in hinted, hinted


@pytest.mark.slow
def test_an_ingest_uses_its_collections_glossary(clip, settings):
    wb = Workbench(settings)
    try:
        wb.collections.create("Physics", glossary=GLOSSARY)
        result = wb.ingest(str(clip), collection="Physics")[0]
        assert result.status == "done", result.error
        text = wb.videos.transcript(result.video_id, "txt")
        assert "Kamerlingh Onnes" in text, text
    finally:
        wb.close()


def test_cli_sets_and_shows_the_glossary(tmp_path):
    import json

    from tests.support.cli import vidrag

    home = tmp_path / "home"
    r = vidrag(home, "collections", "create", "Geology", "--glossary", "Wegener, Pangaea, slab pull")
    assert r.returncode == 0, r.stderr
    r = vidrag(home, "collections", "edit", "Geology", "--glossary", "Wegener, Hess", "--subject", "rocks")
    assert r.returncode == 0, r.stderr
    shown = json.loads(vidrag(home, "collections", "show", "Geology", "--json").stdout)
    assert shown["glossary"] == ["Wegener", "Hess"] and shown["subject"] == "rocks"
    assert "glossary: Wegener, Hess" in vidrag(home, "collections", "show", "Geology").stdout
    r = vidrag(home, "collections", "edit", "Nope", "--glossary", "x")
    assert r.returncode != 0 and "No collection named 'Nope'" in r.stderr
