"""Alembic environment: runs on the connection handed over by gateway.store.db.upgrade."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from gateway.model import Base

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    from gateway.store.db import make_engine

    with make_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///var/gateway.db").begin() as conn:
        _run(conn)
