"""The owner and service roles (core.database_roles): catalog reads and the statements
that create the roles, hand objects to the owner and grant the service what it needs.

Role, schema and object names are composed in with :class:`psycopg.sql.Identifier` (they
come from settings and the catalog); everything else is a bound parameter.
"""

from __future__ import annotations

ROLE = "SELECT rolsuper, rolcanlogin FROM pg_roles WHERE rolname = %(role)s"
IS_SUPERUSER = "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
IS_MEMBER = "SELECT pg_has_role(%(member)s, %(role)s, 'MEMBER')"
CAN_GRANT_STATS = (
    "SELECT pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER WITH ADMIN OPTION')"
)
CURRENT_DATABASE = "SELECT current_database()"
SCHEMAS = "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%(schemas)s) ORDER BY nspname"

CREATE_OWNER = "CREATE ROLE {} NOLOGIN"
CREATE_SERVICE = "CREATE ROLE {} LOGIN"
SET_PASSWORD = "ALTER ROLE {} LOGIN PASSWORD {}"  # noqa: S105 - a statement; {} a verifier
GRANT_MEMBERSHIP = "GRANT {} TO {}"
GRANT_STATS = "GRANT pg_read_all_stats TO {}"

# Everything in the schemas not yet the owner's. Sequences that belong to a column (serial,
# identity) follow their table and cannot be handed over on their own.
FOREIGN_RELATIONS = """
SELECT n.nspname, c.relname, c.relkind FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  AND c.relowner <> %(owner)s::regrole
  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype IN ('a', 'i') AND c.relkind = 'S')
ORDER BY 1, 2
"""
FOREIGN_ROUTINES = """
SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = ANY(%(schemas)s) AND p.prokind IN ('f', 'p')
  AND p.proowner <> %(owner)s::regrole
ORDER BY 1
"""
# Relations the service gets DML on (tables) or only reads (views); by kind.
RELATIONS = """
SELECT c.relname, c.relkind IN ('r', 'p') FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
ORDER BY 1
"""

OWN_SCHEMA = "ALTER SCHEMA {} OWNER TO {}"
OWN_RELATION = {
    "r": "ALTER TABLE {}.{} OWNER TO {}",
    "p": "ALTER TABLE {}.{} OWNER TO {}",
    "f": "ALTER FOREIGN TABLE {}.{} OWNER TO {}",
    "v": "ALTER VIEW {}.{} OWNER TO {}",
    "m": "ALTER MATERIALIZED VIEW {}.{} OWNER TO {}",
    "S": "ALTER SEQUENCE {}.{} OWNER TO {}",
}
# {} is a regprocedure's text, already quoted by the server.
OWN_ROUTINE = "ALTER ROUTINE {} OWNER TO {}"

GRANT_DATABASE = "GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}"
# Start from nothing on every migrate, so a privilege taken away here is gone there too.
REVOKE_SCHEMA = "REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}"
REVOKE_SEQUENCES = "REVOKE ALL ON ALL SEQUENCES IN SCHEMA {} FROM {}"
GRANT_USAGE = "GRANT USAGE ON SCHEMA {} TO {}"
GRANT_SEQUENCES = "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}"
GRANT_FUNCTIONS = "GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {} TO {}"
GRANT_READ = "GRANT SELECT ON {}.{} TO {}"
GRANT_WRITE = "GRANT SELECT, INSERT, UPDATE, DELETE ON {}.{} TO {}"
GRANT_APPEND = "GRANT SELECT, INSERT ON {}.{} TO {}"
GRANT_UPSERT = "GRANT SELECT, INSERT, UPDATE ON {}.{} TO {}"
