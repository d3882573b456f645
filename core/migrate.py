"""Schema migrations, run through Alembic from code (``opsdeck migrate``).

One script directory holds independent branches. ``platform`` is the contract the
simulator writes and a real platform maps onto. Everything else belongs to schema ``ops``:
its base revision (label ``ops``) and one branch per part that owns tables (``kpi``,
``access``, ``webhooks``, ``incidents``), each growing from the ops base, so parts evolve
their tables without queueing behind each other. A real deployment whose platform tables
already exist runs ``opsdeck migrate --ops-only``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

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


def migrate(ops_url: str, platform_url: str, *, ops_only: bool = False) -> list[str]:
    """Bring the schemas to their heads; return what was migrated, for the CLI to print."""
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
    return done


def downgrade_to_base(url: str) -> None:
    command.downgrade(alembic_config(url), "base")
