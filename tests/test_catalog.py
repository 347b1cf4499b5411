"""The catalog on SQLite and PostgreSQL: migrations, collections, cascades, stable ids."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, select

from vidrag_kernel.catalog import Catalog, Chunk, Segment, Video, chunk_uuid, vector_id
from vidrag_kernel.collections import Collections
from vidrag_kernel.context import Context
from vidrag_kernel.errors import Conflict, InvalidInput, NotFound
from vidrag_kernel.layout import Layout
from vidrag_kernel.settings import Settings


@pytest.fixture
def ctx(catalog_url, tmp_path):
    catalog = Catalog(catalog_url)
    yield Context(Settings(home=tmp_path, user="ada"), catalog, Layout(tmp_path))
    catalog.close()


def test_migrations_create_every_table(ctx):
    tables = set(inspect(ctx.catalog.engine).get_table_names())
    assert {"collections", "videos", "collection_videos", "segments", "chunks", "ingest_jobs"} <= tables
    assert {"conversations", "messages", "citations", "alembic_version"} <= tables
    # a second open is a no-op upgrade
    Catalog(ctx.catalog.url).close()
    # the migrations build exactly the schema the models describe
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from vidrag_kernel.catalog.models import Base

    with ctx.catalog.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    assert "media_url" in {c["name"] for c in inspect(ctx.catalog.engine).get_columns("videos")}


def test_collections_crud_and_default(ctx):
    cols = Collections(ctx)
    assert [c.name for c in cols.list()] == ["Uncategorized"]
    c = cols.create("CS101", "Intro", instructor="Ada", semester="Fall 2026", tags=["cs", "intro", "cs"])
    assert c.tags == ["cs", "intro"] and c.instructor == "Ada"
    with pytest.raises(Conflict):
        cols.create("CS101")
    with pytest.raises(InvalidInput):
        cols.create("   ")
    with pytest.raises(InvalidInput):
        cols.create("X", color="red")
    renamed = cols.update("CS101", name="CS 101", subject="Computing")
    assert renamed.name == "CS 101" and renamed.subject == "Computing" and renamed.instructor == "Ada"
    assert cols.get(c.id).name == "CS 101"
    assert [x.name for x in cols.list(search="computing")] == ["CS 101"]
    cols.delete("CS 101")
    with pytest.raises(NotFound):
        cols.get("CS 101")


def test_collections_are_per_owner(ctx):
    Collections(ctx).create("Mine")
    other = Context(ctx.settings.with_(user="bob"), ctx.catalog, ctx.layout)
    with pytest.raises(NotFound):
        Collections(other).get("Mine")
    Collections(other).create("Mine")  # same name, other owner: allowed


def test_video_delete_cascades_and_chunk_ids_are_stable(ctx):
    with ctx.catalog.session() as s:
        v = Video(source_key="url:abc", url="http://x/y.m4a", title="T")
        s.add(v)
        s.flush()
        s.add(Segment(video_id=v.id, start=0, end=1, text="hello"))
        cid = chunk_uuid(v.id, 0)
        s.add(Chunk(id=cid, vector_id=vector_id(cid), video_id=v.id, index=0, start=0, end=1, text="hello"))
        vid = v.id
    assert chunk_uuid(vid, 0) == cid and 0 < vector_id(cid) < 2**63
    with ctx.catalog.session() as s:
        s.delete(s.get(Video, vid))
    with ctx.catalog.session() as s:
        assert s.scalars(select(Chunk)).all() == []
        assert s.scalars(select(Segment)).all() == []
