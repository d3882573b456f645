"""Alembic environment: plain SQL revisions, one connection, URL from opsdeck settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from core.database import sqlalchemy_url
from core.settings import load_settings


def _url() -> str:
    configured = context.config.attributes.get("url")
    if configured:
        return str(configured)
    return load_settings().require("database_url", "alembic")


def run_migrations_online() -> None:
    engine = create_engine(sqlalchemy_url(_url()), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, transactional_ddl=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    context.configure(url=sqlalchemy_url(_url()), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
