"""The service's tables migrate beside the kernel catalog, on SQLite and PostgreSQL, with
their own Alembic version table; sharing rules that need no hub run on both."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import inspect, text
from vidrag_hub import sharing
from vidrag_hub.auth import HubUser
from vidrag_hub.db import VERSION_TABLE, downgrade, head, open_database, upgrade

from vidrag_kernel.catalog import Collection

TABLES = {"vidrag_grants", "vidrag_invites", "vidrag_invite_answers", "vidrag_share_links"}


def test_migrations_both_ways_beside_the_kernel(catalog_url):
    catalog = open_database(catalog_url)
    try:
        names = set(inspect(catalog.engine).get_table_names())
        assert names >= TABLES and {"collections", "alembic_version", VERSION_TABLE} <= names
        with catalog.engine.connect() as c:
            assert c.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar() == head()
            kernel = c.execute(text("SELECT version_num FROM alembic_version")).scalar()
        downgrade(catalog.engine)
        names = set(inspect(catalog.engine).get_table_names())
        assert not TABLES & names and "collections" in names
        with catalog.engine.connect() as c:
            # the kernel's history is untouched by the service's
            assert c.execute(text("SELECT version_num FROM alembic_version")).scalar() == kernel
        upgrade(catalog.engine)
        assert set(inspect(catalog.engine).get_table_names()) >= TABLES
    finally:
        catalog.close()
    # opening again is a no-op upgrade
    open_database(catalog_url).close()


def test_links_expire_run_out_and_count_on_both_databases(catalog_url):
    catalog = open_database(catalog_url)
    try:
        with catalog.session() as s:
            row = Collection(owner="alice", name="Course", description="", meta={})
            s.add(row)
            s.flush()
            link, token = sharing.create_link(s, row, "viewer", "alice", max_uses=1)
            stored = [link.token_hash]
            assert token not in stored and len(token) >= 22  # >= 128 bits, only the hash kept
            with pytest.raises(Exception, match="viewer or editor"):
                sharing.create_link(s, row, "owner", "alice")
            with pytest.raises(Exception, match="future"):
                sharing.create_link(
                    s, row, "viewer", "alice", expires_at=sharing.now() - timedelta(seconds=1)
                )
            assert sharing.redeem(s, HubUser("bob"), token)["role"] == "viewer"
            with pytest.raises(sharing.LinkUnusable, match="used as many times"):
                sharing.redeem(s, HubUser("carol"), token)
            assert sharing.link_view(link)["uses"] == 1
            old, old_token = sharing.create_link(s, row, "editor", "alice")
            old.expires_at = sharing.now() - timedelta(minutes=1)
            s.flush()
            with pytest.raises(sharing.LinkUnusable, match="expired"):
                sharing.redeem(s, HubUser("carol"), old_token)
    finally:
        catalog.close()
