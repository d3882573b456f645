"""Schema migrations, run through Alembic from code (``opsdeck migrate``).

One script directory holds independent branches. ``platform`` is the contract the
simulator writes and a real platform maps onto. Everything else belongs to schema ``ops``:
its base revision (label ``ops``) and one branch per part that owns tables (``kpi``,
``access``, ``webhooks``, ``incidents``), each growing from the ops base, so parts evolve
their tables without queueing behind each other. A real deployment whose platform tables
already exist runs ``opsdeck migrate --ops-only``.

After the heads, every run sets up the database roles (core.database_roles): the owner
that every object is handed to and the service role the processes connect as, granted
afresh each time so that whatever the revisions added is covered.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from core.database_roles import OPS, PLATFORM, set_up
from core.settings import DatabaseRoleSettings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
PLATFORM_BRANCH = "platform"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    config.attributes["url"] = url
    return config


def _heads(config: Config) -> tuple[list[str], list[str]]:
    """Head revisions of the platform branch and of every ops branch."""
    script = ScriptDirectory.from_config(config)
    platform: list[str] = []
    ops: list[str] = []
    for head in script.get_heads():
        labels = {
            label for rev in script.iterate_revisions(head, "base") for label in rev.branch_labels
        }
        (platform if PLATFORM_BRANCH in labels else ops).append(head)
    return platform, ops


def migrate(
    ops_url: str,
    platform_url: str,
    *,
    ops_only: bool = False,
    roles: DatabaseRoleSettings | None = None,
) -> list[str]:
    """Bring the schemas to their heads, then set up the roles (``roles``: the settings'
    names, default ones when None); return what was migrated, for the CLI to print."""
    done = []
    if not ops_only:
        config = alembic_config(platform_url)
        for head in _heads(config)[0]:
            command.upgrade(config, head)
        done.append("platform")
    config = alembic_config(ops_url)
    for head in _heads(config)[1]:
        command.upgrade(config, head)
    done.append("ops")
    _set_up_roles(ops_url, platform_url, ops_only, roles or DatabaseRoleSettings())
    return done


def _set_up_roles(
    ops_url: str, platform_url: str, ops_only: bool, roles: DatabaseRoleSettings
) -> None:
    """A platform owned by a real platform (``ops_only``) is left alone."""
    together = not ops_only and platform_url == ops_url
    set_up(ops_url, roles, [OPS, PLATFORM] if together else [OPS])
    if not ops_only and not together:
        set_up(platform_url, roles, [PLATFORM])


def downgrade_to_base(url: str) -> None:
    command.downgrade(alembic_config(url), "base")
