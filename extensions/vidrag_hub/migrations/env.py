"""Alembic environment of the service's tables (its own version table, beside the kernel's)."""

from alembic import context
from vidrag_hub.db import VERSION_TABLE
from vidrag_hub.models import ServiceBase

config = context.config


def run() -> None:
    connection = config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=ServiceBase.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


run()
