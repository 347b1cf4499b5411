"""The service's database: the kernel catalog of the shared root, plus the service's tables.

One engine for the process. ``open_database`` migrates the kernel schema (its
``alembic_version``) and then the service's tables (``vidrag_service_version``), so the
two migration histories never collide.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from vidrag_kernel.catalog import Catalog

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "vidrag_service_version"


def head() -> str:
    """The newest revision of the service's migrations (what ``open_database`` brings a database to)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the service's tables to ``revision`` (the kernel's schema must exist first)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    """Undo the service's migrations down to ``revision`` (tests check both directions)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)


def open_database(url: str) -> Catalog:
    """The shared catalog at ``url``, with the kernel's and the service's schema up to date."""
    catalog = Catalog(url)
    upgrade(catalog.engine)
    return catalog
