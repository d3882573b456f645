"""The two database roles of an opsdeck deployment, set up by every ``opsdeck migrate``.

- The **owner** (``database_roles.owner``, NOLOGIN) owns the schemas and every object in
  them, so a service cannot ALTER, disable a trigger on, or DROP anything. Migrations run
  as the connecting administrator (a migration may create a role or an extension, which a
  bare owner cannot) and every object they leave is handed to the owner straight after,
  existing ones included; the SECURITY DEFINER functions of the audit chain then run as
  the owner.
- The **service** role (``database_roles.service``, LOGIN; password from
  ``database_roles.service_password`` when set) is what the exporter, the worker and the
  API connect as. It gets what they need and no more: DML on the ops tables, read on the
  platform tables and on every view, the gateway's upsert of ``platform.psp_transactions``,
  sequences, functions, and ``pg_read_all_stats`` (the commit horizon reads other sessions'
  transactions; without it the horizon trails the clock instead). On ``ops.audit_log`` it
  may only SELECT and INSERT, and ``ops.audit_chain_head`` it cannot touch at all: the
  chain moves only through the owner's functions (0016_database_roles).

Grants are recomputed from nothing on every run (revoke all, grant the table below), so a
table a later migration adds is covered without a revision of its own, and a privilege
taken away here is gone everywhere. Roles are shared by every database of a server, so
their creation tolerates another migrate creating them at the same moment.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import errors, sql

from core.application_names import CLI
from core.database import connect, libpq_url
from core.queries import roles as q
from core.settings import DatabaseRoleSettings, SettingsError

log = logging.getLogger(__name__)

OPS = "ops"
PLATFORM = "platform"
# Tables the service reaches otherwise than its schema's rule (ops: DML, platform: read).
APPEND_ONLY = frozenset({(OPS, "audit_log")})
NO_ACCESS = frozenset({(OPS, "audit_chain_head")})
UPSERT = frozenset({(PLATFORM, "psp_transactions")})  # the inbound PSP webhook gateway


class UnsafeRole(SettingsError):
    """The service role could rewrite the audit log (superuser, owner, or owner's member)."""


def _ident(template: str, *names: str) -> sql.Composed:
    return sql.SQL(template).format(*(sql.Identifier(name) for name in names))


def _one(conn: psycopg.Connection[Any], query: str, params: Any = None) -> Any:
    row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def _create_role(conn: psycopg.Connection[Any], template: str, role: str) -> None:
    if conn.execute(q.ROLE, {"role": role}).fetchone() is not None:
        return
    try:
        conn.execute(_ident(template, role))
        log.info("created database role %s", role)
    except (errors.DuplicateObject, errors.UniqueViolation):
        # Roles belong to the server: a migrate of another database created it meanwhile.
        log.info("database role %s was created by another migrate meanwhile", role)


def _grant_once(conn: psycopg.Connection[Any], statement: sql.Composed, done: bool) -> None:
    if done:
        return
    try:
        conn.execute(statement)
    except errors.UniqueViolation:
        log.info("%s: granted by another migrate meanwhile", statement.as_string(conn))


def _check_service(conn: psycopg.Connection[Any], roles: DatabaseRoleSettings) -> None:
    label = "OPSDECK_DATABASE_ROLES__SERVICE (database_roles.service)"
    if roles.service == roles.owner:
        raise UnsafeRole(label, "the same role as database_roles.owner")
    superuser, _ = conn.execute(q.ROLE, {"role": roles.service}).fetchone() or (False, True)
    if superuser or _one(conn, q.IS_MEMBER, {"member": roles.service, "role": roles.owner}):
        raise UnsafeRole(
            label,
            f"{roles.service} is a superuser or acts as {roles.owner}: it could rewrite "
            "the audit log",
        )


def _password(conn: psycopg.Connection[Any], roles: DatabaseRoleSettings) -> None:
    if roles.service_password is None:
        return
    # Only the SCRAM verifier travels: the server never sees (nor logs) the password.
    verifier = conn.pgconn.encrypt_password(
        roles.service_password.get_secret_value().encode(),
        roles.service.encode(),
        b"scram-sha-256",
    )
    statement = sql.SQL(q.SET_PASSWORD).format(
        sql.Identifier(roles.service), sql.Literal(verifier.decode())
    )
    conn.execute(statement)


def prepare_roles(conn: psycopg.Connection[Any], roles: DatabaseRoleSettings) -> None:
    """Create both roles when missing, set the service's password, and let the connecting
    administrator act as the owner (to hand objects to it). ``conn`` is in autocommit."""
    _create_role(conn, q.CREATE_OWNER, roles.owner)
    _create_role(conn, q.CREATE_SERVICE, roles.service)
    _check_service(conn, roles)
    _password(conn, roles)
    if not _one(conn, q.IS_SUPERUSER):
        member = _one(conn, q.IS_MEMBER, {"member": _current_user(conn), "role": roles.owner})
        _grant_once(conn, _ident(q.GRANT_MEMBERSHIP, roles.owner, _current_user(conn)), member)
    if _one(conn, q.CAN_GRANT_STATS):
        member = _one(conn, q.IS_MEMBER, {"member": roles.service, "role": "pg_read_all_stats"})
        _grant_once(conn, _ident(q.GRANT_STATS, roles.service), member)
    else:
        log.warning(
            "cannot grant pg_read_all_stats to %s: the commit horizon will trail the clock "
            "by exporter.horizon_lookback_seconds",
            roles.service,
        )


def _current_user(conn: psycopg.Connection[Any]) -> str:
    return str(_one(conn, "SELECT current_user"))


def _hand_to_owner(conn: psycopg.Connection[Any], owner: str, schemas: list[str]) -> None:
    params = {"schemas": schemas, "owner": owner}
    for schema in schemas:
        conn.execute(_ident(q.OWN_SCHEMA, schema, owner))
    for schema, name, kind in conn.execute(q.FOREIGN_RELATIONS, params).fetchall():
        conn.execute(_ident(q.OWN_RELATION[kind], schema, name, owner))
    for (routine,) in conn.execute(q.FOREIGN_ROUTINES, params).fetchall():
        conn.execute(sql.SQL(q.OWN_ROUTINE).format(sql.SQL(routine), sql.Identifier(owner)))


def _table_grant(schema: str, table: str, is_table: bool) -> str | None:
    if (schema, table) in NO_ACCESS:
        return None
    if (schema, table) in APPEND_ONLY:
        return q.GRANT_APPEND
    if (schema, table) in UPSERT:
        return q.GRANT_UPSERT
    return q.GRANT_WRITE if is_table and schema == OPS else q.GRANT_READ


def _grant_service(conn: psycopg.Connection[Any], service: str, schemas: list[str]) -> None:
    database = str(_one(conn, q.CURRENT_DATABASE))
    conn.execute(_ident(q.GRANT_DATABASE, database, service))
    for schema in schemas:
        for template in (q.REVOKE_SCHEMA, q.REVOKE_SEQUENCES, q.GRANT_USAGE):
            conn.execute(_ident(template, schema, service))
        conn.execute(_ident(q.GRANT_SEQUENCES, schema, service))
        conn.execute(_ident(q.GRANT_FUNCTIONS, schema, service))
        for table, is_table in conn.execute(q.RELATIONS, {"schema": schema}).fetchall():
            grant = _table_grant(schema, table, is_table)
            if grant is not None:
                conn.execute(_ident(grant, schema, table, service))


def set_up(url: str, roles: DatabaseRoleSettings, schemas: list[str]) -> None:
    """The roles, then the objects of ``schemas`` in ``url``'s database handed to the owner
    and granted to the service (in one transaction: all of it or none)."""
    with connect(url, application_name=CLI, autocommit=True) as conn:
        prepare_roles(conn, roles)
        present = [row[0] for row in conn.execute(q.SCHEMAS, {"schemas": schemas}).fetchall()]
        with conn.transaction():
            _hand_to_owner(conn, roles.owner, present)
            _grant_service(conn, roles.service, present)


def service_url(url: str, roles: DatabaseRoleSettings) -> str:
    """The administrator's ``url`` as the services connect: same server and database, as
    the service role (with its password when one is set)."""
    parts = urlsplit(libpq_url(url))
    host = parts.netloc.rpartition("@")[2]
    user = quote(roles.service, safe="")
    if roles.service_password is not None:
        user += ":" + quote(roles.service_password.get_secret_value(), safe="")
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))
