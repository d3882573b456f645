"""Connections to PostgreSQL: one place that turns a settings URL into a connection."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg.rows import dict_row

log = logging.getLogger(__name__)

SQLALCHEMY_DRIVER = "postgresql+psycopg"


def libpq_url(url: str) -> str:
    """The URL as libpq understands it (SQLAlchemy's driver suffix removed)."""
    scheme, sep, rest = url.partition("://")
    if scheme in ("postgresql+psycopg", "postgres"):
        scheme = "postgresql"
    return f"{scheme}{sep}{rest}"


def sqlalchemy_url(url: str) -> str:
    """The URL with SQLAlchemy's psycopg 3 driver named."""
    return SQLALCHEMY_DRIVER + "://" + libpq_url(url).partition("://")[2]


def connect(
    url: str,
    *,
    application_name: str,
    autocommit: bool = False,
    statement_timeout_seconds: float | None = None,
    connect_timeout_seconds: int = 5,
    dict_rows: bool = False,
) -> psycopg.Connection[Any]:
    """Open a connection named for its job, optionally with a statement timeout."""
    options = ""
    if statement_timeout_seconds is not None:
        options = f"-c statement_timeout={int(statement_timeout_seconds * 1000)}"
    kwargs: dict[str, Any] = {
        "autocommit": autocommit,
        "application_name": application_name,
        "connect_timeout": connect_timeout_seconds,
    }
    if options:
        kwargs["options"] = options
    if dict_rows:
        kwargs["row_factory"] = dict_row
    return psycopg.connect(libpq_url(url), **kwargs)


def close_quietly(*conns: psycopg.Connection[Any] | None) -> None:
    """Close connections that may already be broken: a failed close is not news (the
    failure that broke them was logged when it happened)."""
    for conn in conns:
        if conn is not None:
            try:
                conn.close()
            except psycopg.Error as exc:
                log.debug("closing a broken connection: %s", exc)
