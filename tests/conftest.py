"""Real services for the test suite.

PostgreSQL comes from DATABASE_URL and Redis from REDIS_URL when they are set; otherwise
the suite starts embedded ones (the same the demo uses) for the session. Every test that
asks for ``db_url`` gets a database of its own, cloned from a migrated template, so tests
never see each other's rows.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from core.audit import use_key
from core.database import libpq_url
from core.database_roles import service_url as as_service
from core.migrate import migrate
from core.sealed_secrets import SecretBox
from core.settings import ENV_PREFIX, WELL_KNOWN_ENV, DatabaseRoleSettings
from opsdeck.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from opsdeck.supervisor import Supervisor
from tests.scheduling import LaneScheduling, longest_first, recorded

TEMPLATE = f"opsdeck_template_{os.getpid()}"
REPO = Path(__file__).resolve().parent.parent
# A valid secrets_key (Fernet: 32 bytes, URL-safe base64) for the suite's processes.
TEST_SECRETS_KEY = "b3BzZGVjay10ZXN0LXNlY3JldHMta2V5LTMyYnl0ZXM="
# The audit chain's HMAC key of every process of the suite, this one included.
TEST_AUDIT_CHAIN_KEY = "test-audit-chain-key-0123456789-abcdefghij"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest files first (tests/scheduling.py), so no long file is left to the end."""
    items[:] = longest_first(items, recorded())


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> LaneScheduling | None:
    """``--dist loadfile`` with the files of one stack lane kept in one process."""
    return LaneScheduling(config, log) if config.getvalue("dist") == "loadfile" else None


def suite_box() -> SecretBox:
    """What the suite's services seal stored secrets with (:data:`TEST_SECRETS_KEY`)."""
    return SecretBox(TEST_SECRETS_KEY)


def with_database(url: str, name: str) -> str:
    base, _, _ = libpq_url(url).rpartition("/")
    return f"{base}/{name}"


_SET_UP_WITH: dict[str, str] = {}


def service_url(url: str) -> str:
    """``url`` as the services connect: as the service role ``opsdeck migrate`` created
    (the suite's server trusts local connections, so no password), never as the superuser
    the fixtures set up their databases with (:func:`setup_url` gives that one back)."""
    served = as_service(url, DatabaseRoleSettings())
    _SET_UP_WITH[served] = _SET_UP_WITH.get(url, url)
    return served


def setup_url(url: str) -> str:
    """The fixtures' own URL of a database :func:`service_url` handed to a service."""
    return _SET_UP_WITH.get(url, url)


@pytest.fixture(scope="session", autouse=True)
def audit_chain_key() -> Iterator[str]:
    """The chain key of this process, as `opsdeck`'s entry point sets it for a command."""
    use_key(TEST_AUDIT_CHAIN_KEY)
    yield TEST_AUDIT_CHAIN_KEY
    use_key(None)


def _redis_of_this_worker(url: str) -> str:
    """With parallel test processes (pytest-xdist), each flushes a database of its own."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # gw0, gw1, ...
    if not worker.startswith("gw"):
        return url
    return urlunsplit(urlsplit(url)._replace(path=f"/{int(worker[2:]) + 1}"))


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Server URLs: from the environment, or embedded servers started for this session."""
    supervisor = Supervisor()
    urls: dict[str, str] = {}
    root = tmp_path_factory.mktemp("services")
    try:
        if os.environ.get("DATABASE_URL"):
            urls["postgres"] = os.environ["DATABASE_URL"]
        else:
            pg = EmbeddedPostgres(root / "postgres", free_port(0))
            pg.initialize()
            supervisor.start(pg.service(root / "postgres.log"))
            urls["postgres"] = pg.url
        if os.environ.get("REDIS_URL"):
            urls["redis"] = _redis_of_this_worker(os.environ["REDIS_URL"])
        else:
            redis = EmbeddedRedis(root / "redis", free_port(0))
            supervisor.start(redis.service(root / "redis.log"))
            urls["redis"] = redis.url
        yield urls
    finally:
        supervisor.stop_all()


@pytest.fixture(scope="session")
def admin_url(services: dict[str, str]) -> str:
    return with_database(services["postgres"], "postgres")


@pytest.fixture(scope="session")
def template_db(admin_url: str) -> Iterator[str]:
    """A migrated database that per-test databases are cloned from."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(TEMPLATE)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE)))
    url = with_database(admin_url, TEMPLATE)
    migrate(url, url)
    yield TEMPLATE
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(TEMPLATE))
        )


def create_database(admin_url: str, template: str | None = None) -> str:
    name = f"opsdeck_test_{uuid.uuid4().hex[:12]}"
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template:
        statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(statement)
    return name


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@contextmanager
def scratch_database(admin_url: str, template: str | None = None) -> Iterator[str]:
    """A new database, a clone of ``template`` (else empty): its URL, dropped on exit."""
    name = create_database(admin_url, template)
    try:
        yield with_database(admin_url, name)
    finally:
        drop_database(admin_url, name)


@pytest.fixture
def db_url(admin_url: str, template_db: str) -> Iterator[str]:
    """A migrated database of this test's own."""
    with scratch_database(admin_url, template_db) as url:
        yield url


@pytest.fixture
def empty_db_url(admin_url: str) -> Iterator[str]:
    """An empty database of this test's own (nothing migrated)."""
    with scratch_database(admin_url) as url:
        yield url


@pytest.fixture
def redis_url(services: dict[str, str]) -> Iterator[str]:
    import redis

    client = redis.Redis.from_url(services["redis"])
    client.flushdb()
    yield services["redis"]
    client.flushdb()
    client.close()


def _is_setting(name: str) -> bool:
    return name.startswith(ENV_PREFIX) or name.removesuffix("_FILE") in WELL_KNOWN_ENV.values()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No opsdeck settings inherited from the environment running the suite."""
    for name in list(os.environ):
        if _is_setting(name):
            monkeypatch.delenv(name)
    return monkeypatch


# What every opsdeck process of the suite runs with unless a test says otherwise: the key
# stored secrets are sealed with, the audit chain's key, and plain-HTTP cookies (the suite
# serves HTTP locally).
SUITE_SETTINGS = {
    "OPSDECK_SECRETS_KEY": TEST_SECRETS_KEY,
    "OPSDECK_AUDIT__CHAIN_KEY": TEST_AUDIT_CHAIN_KEY,
    "OPSDECK_API__COOKIE_SECURE": "false",
}


def opsdeck_env(**settings: str) -> dict[str, str]:
    """The suite's environment without opsdeck settings, plus :data:`SUITE_SETTINGS`, plus
    ``settings``."""
    env = {k: v for k, v in os.environ.items() if not _is_setting(k)}
    env["PYTHONPATH"] = str(REPO)
    return {**env, **SUITE_SETTINGS, **settings}


def run_opsdeck(
    *args: str,
    env: dict[str, str],
    timeout: float = 300,
    module: str = "opsdeck",
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would, from the repository root (``stdin``: what they type)."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        env=env,
        cwd=REPO,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def history_template(admin_url: str, template_db: str) -> Iterator[str]:
    """A migrated database holding two days of small-scale history, cloned by tests."""
    from datetime import UTC, datetime

    from core.settings import SimulatorSettings
    from simulator.backfill import BackfillPlan, run_backfill
    from simulator.vocabulary import SCALES

    name = create_database(admin_url, template_db)
    url = with_database(admin_url, name)
    plan = BackfillPlan(2, SCALES["small"], 7, datetime.now(UTC).replace(microsecond=0))
    run_backfill(url, plan, SimulatorSettings(), lambda table, rows: None)
    yield name
    drop_database(admin_url, name)


@pytest.fixture(scope="session")
def demo_history_template(admin_url: str, template_db: str) -> Iterator[str]:
    """A migrated database holding two days of history at the demo's rate, as ``opsdeck
    demo`` loads it: its live traffic raises no alert (tests/alerting/test_quiet.py)."""
    from datetime import UTC, datetime

    from core.settings import SimulatorSettings
    from opsdeck.cli.demo import DEMO_RATE
    from simulator.backfill import BackfillPlan, run_backfill, scale_at_rate
    from simulator.vocabulary import SCALES

    name = create_database(admin_url, template_db)
    url = with_database(admin_url, name)
    scale = scale_at_rate(SCALES["small"], DEMO_RATE)
    plan = BackfillPlan(2, scale, 7, datetime.now(UTC).replace(microsecond=0))
    run_backfill(url, plan, SimulatorSettings(), lambda table, rows: None)
    yield name
    drop_database(admin_url, name)


@pytest.fixture
def history_url(admin_url: str, history_template: str) -> Iterator[str]:
    """A database of this test's own with two days of history in it."""
    with scratch_database(admin_url, history_template) as url:
        yield url
