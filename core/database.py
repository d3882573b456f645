"""Connections to PostgreSQL: the one place that turns a settings URL into a connection.

Every opsdeck process opens its sessions here, so they are all alike: named for their job
(``application_name``, from ``core/application_names.py``: the commit horizon tells the
sessions that write the platform from those that do not by that name), bounded in how long
they wait for the server (``connect_timeout``), and optionally bounded in how long a
statement runs and kept from writing. Three shapes:

- :func:`connect`: one blocking connection (threads, the CLI, the simulator);
- :func:`async_connect`: one asyncio connection a task keeps (LISTEN, a metrics reader);
- :func:`async_pool`: an asyncio pool in autocommit, its connections checked before each
  use, opened by its owner (``await pool.open()``) and closed by it.

``read_only`` sets ``default_transaction_read_only``: a session that must never write
(the API's drilldowns on the platform) is refused by the server if it tries.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

log = logging.getLogger(__name__)

SQLALCHEMY_DRIVER = "postgresql+psycopg"
SETTING_NAME = re.compile(r"[a-z_][a-z0-9_.]*")
SETTING_VALUE = re.compile(r"[^\s\\]+")


def libpq_url(url: str) -> str:
    """The URL as libpq understands it (SQLAlchemy's driver suffix removed)."""
    scheme, sep, rest = url.partition("://")
    if scheme in ("postgresql+psycopg", "postgres"):
        scheme = "postgresql"
    return f"{scheme}{sep}{rest}"


def sqlalchemy_url(url: str) -> str:
    """The URL with SQLAlchemy's psycopg 3 driver named."""
    return SQLALCHEMY_DRIVER + "://" + libpq_url(url).partition("://")[2]


def server_options(
    *,
    statement_timeout_seconds: float | None = None,
    read_only: bool = False,
    parameters: Mapping[str, str | int] | None = None,
) -> str:
    """The ``options`` connection parameter that sets these server settings per session."""
    settings: dict[str, str | int] = {}
    if statement_timeout_seconds is not None:
        settings["statement_timeout"] = int(statement_timeout_seconds * 1000)
    settings.update(parameters or {})
    if read_only:
        settings["default_transaction_read_only"] = "on"
    for key, value in settings.items():
        # libpq splits ``options`` at whitespace: a setting that holds some would be misread.
        if not SETTING_NAME.fullmatch(key) or not SETTING_VALUE.fullmatch(str(value)):
            raise ValueError(f"not a server setting: {key}={value!r}")
    return " ".join(f"-c {key}={value}" for key, value in settings.items())


def _kwargs(
    application_name: str,
    autocommit: bool,
    connect_timeout_seconds: int,
    options: str,
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "autocommit": autocommit,
        "application_name": application_name,
        "connect_timeout": connect_timeout_seconds,
    }
    if options:
        kwargs["options"] = options
    return kwargs


def connect(
    url: str,
    *,
    application_name: str,
    autocommit: bool = False,
    statement_timeout_seconds: float | None = None,
    connect_timeout_seconds: int = 5,
    dict_rows: bool = False,
    read_only: bool = False,
) -> psycopg.Connection[Any]:
    """Open a connection named for its job, optionally with a statement timeout."""
    options = server_options(
        statement_timeout_seconds=statement_timeout_seconds, read_only=read_only
    )
    kwargs = _kwargs(application_name, autocommit, connect_timeout_seconds, options)
    if dict_rows:
        kwargs["row_factory"] = dict_row
    return psycopg.connect(libpq_url(url), **kwargs)


async def async_connect(
    url: str,
    *,
    application_name: str,
    autocommit: bool = False,
    statement_timeout_seconds: float | None = None,
    connect_timeout_seconds: int = 5,
    read_only: bool = False,
) -> psycopg.AsyncConnection[Any]:
    """:func:`connect` for asyncio: one connection named for its job."""
    options = server_options(
        statement_timeout_seconds=statement_timeout_seconds, read_only=read_only
    )
    kwargs = _kwargs(application_name, autocommit, connect_timeout_seconds, options)
    return await psycopg.AsyncConnection.connect(libpq_url(url), **kwargs)


def async_pool(
    url: str,
    application_name: str,
    max_size: int,
    *,
    read_only: bool = False,
    statement_timeout_seconds: float | None = None,
    parameters: Mapping[str, str | int] | None = None,
    min_size: int = 1,
    connect_timeout_seconds: int = 5,
    name: str | None = None,
) -> AsyncConnectionPool:
    """An asyncio pool of autocommit connections named ``application_name``, not yet open.

    ``parameters`` are further server settings of every session; ``name`` names the pool in
    psycopg_pool's logs (default: the application name)."""
    options = server_options(
        statement_timeout_seconds=statement_timeout_seconds,
        read_only=read_only,
        parameters=parameters,
    )
    return AsyncConnectionPool(
        libpq_url(url),
        min_size=min_size,
        max_size=max_size,
        kwargs=_kwargs(application_name, True, connect_timeout_seconds, options),
        open=False,
        check=AsyncConnectionPool.check_connection,
        name=name or application_name,
    )


def close_quietly(*conns: psycopg.Connection[Any] | None) -> None:
    """Close connections that may already be broken: a failed close is not news (the
    failure that broke them was logged when it happened)."""
    for conn in conns:
        if conn is not None:
            try:
                conn.close()
            except psycopg.Error as exc:
                log.debug("closing a broken connection: %s", exc)
